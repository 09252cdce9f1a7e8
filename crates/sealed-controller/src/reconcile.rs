//! SealedSecret → Secret, with Bitnami's semantics (bitnami-labs/sealed-secrets
//! `Controller.unseal`):
//!
//! - the Secret gets the template's labels, annotations, type and immutability, the SealedSecret's
//!   name and namespace, and one controller ownerReference unless the template annotation
//!   `sealedsecrets.bitnami.com/skip-set-owner-references` is `"true"`;
//! - an existing Secret is written only if this SealedSecret controls it, or it carries
//!   `sealedsecrets.bitnami.com/managed: "true"` (adopted: replaced) or `…/patch: "true"` (data,
//!   labels and annotations merged; ownerReferences replaced only together with `managed`);
//!   otherwise it is left alone and the SealedSecret gets `Synced=False` and a Warning event;
//! - otherwise data, labels, annotations and ownerReferences are **replaced**, so an item removed
//!   from the SealedSecret disappears from the Secret; an owned Secret whose type or immutable
//!   content must change is deleted and created again;
//! - `status.conditions[0]` is `Synced` with `observedGeneration`; events `Unsealed`,
//!   `ErrUnsealFailed`, `ErrUpdateFailed`.
//!
//! Beyond Bitnami: the Secret carries a hash of everything that determines it
//! ([`SPEC_HASH_ANNOTATION`]) and a keyed HMAC of its data ([`DATA_MAC_ANNOTATION`]); when both
//! still match, the data is known to be right and nothing is decrypted, so restarts and resyncs
//! cost one GET per SealedSecret. The key that opened the values ([`KEY_ANNOTATION`]) is tried
//! first next time. Decryption runs on the blocking pool, bounded by the number of cores.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac as _};
use hush_api::sealed_secret::{CONDITION_SYNCED, SealedSecret};
use hush_operator::drift;
use hush_operator::events::{EventPoster, EventType, Note};
use hush_sealing::unseal::UnsealOptions;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Client, Resource as _, ResourceExt as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use crate::cache::{self, Memo, Primed, SecretStores, Seen, Stage, StatusMemo};
use crate::config::Config;
use crate::keys::{KeySet, SealingKeys};
use crate::metrics::SealedMetrics;
use crate::{Error, Result};

/// Annotation on an existing Secret that lets the controller adopt and overwrite it.
pub const MANAGED_ANNOTATION: &str = "sealedsecrets.bitnami.com/managed";
/// Annotation on an existing Secret that makes the controller merge instead of replace.
pub const PATCH_ANNOTATION: &str = "sealedsecrets.bitnami.com/patch";
/// hush: SHA-256 of everything that determines the Secret (spec, scope, name, namespace, uid).
pub const SPEC_HASH_ANNOTATION: &str = "sealedsecrets.hush.dev/spec-hash";
/// hush: HMAC-SHA256, under a key derived from the oldest sealing key, of the spec hash and the
/// Secret's items.
pub const DATA_MAC_ANNOTATION: &str = "sealedsecrets.hush.dev/data-mac";
/// hush: ids (key Secret names) of the keys that opened the values, comma-separated: first the
/// key of the first item (tried first next time), then any other in name order. `hush status`
/// counts from it how many SealedSecrets still need each key.
pub const KEY_ANNOTATION: &str = "sealedsecrets.hush.dev/key";

/// The key ids in a [`KEY_ANNOTATION`] value (one id, as written before, reads the same).
pub fn annotated_keys(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|k| !k.is_empty())
}

/// The [`KEY_ANNOTATION`] value for the keys that opened each item (`opened_by`: item → key).
fn key_annotation(opened_by: &BTreeMap<String, String>) -> Option<String> {
    let first = opened_by.values().next()?;
    let others: BTreeSet<&String> = opened_by.values().filter(|k| *k != first).collect();
    let mut out = first.clone();
    for k in others {
        out.push(',');
        out.push_str(k);
    }
    Some(out)
}
/// Event component, as Bitnami's.
pub const EVENT_COMPONENT: &str = "sealed-secrets";

const MAX_MESSAGE: usize = 1000;

/// What every reconciliation shares.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) config: Arc<Config>,
    pub(crate) keys: Arc<SealingKeys>,
    pub(crate) metrics: SealedMetrics,
    pub(crate) events: EventPoster,
    decrypt_slots: Arc<Semaphore>,
    retries: Mutex<HashMap<(String, String), u32>>,
    pub(crate) secret_stores: SecretStores,
    pub(crate) memo: Memo,
    pub(crate) primed: Primed,
    status_memo: StatusMemo,
    /// This replica's shards: a SealedSecret is reconciled only with a permit for its shard.
    pub(crate) shards: hush_operator::Shards,
    /// The last drift count of each Secret seen, kept when a deletion takes the annotations.
    drift: drift::DriftLedger,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context; decryption is bounded to the number of cores.
    pub fn new(
        client: Client,
        config: Arc<Config>,
        keys: Arc<SealingKeys>,
        metrics: SealedMetrics,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let events = EventPoster::new(
            client.clone(),
            EVENT_COMPONENT,
            std::env::var("POD_NAME").ok(),
        );
        Self {
            client,
            config,
            keys,
            metrics,
            events,
            decrypt_slots: Arc::new(Semaphore::new(cores)),
            retries: Mutex::new(HashMap::new()),
            secret_stores: SecretStores::default(),
            memo: Memo::default(),
            primed: Primed::default(),
            status_memo: StatusMemo::default(),
            shards: hush_operator::Shards::unsharded(),
            drift: drift::DriftLedger::default(),
        }
    }

    /// This context reconciling only the objects of `shards` held by this replica.
    #[must_use]
    pub fn with_shards(mut self, shards: hush_operator::Shards) -> Self {
        self.shards = shards;
        self
    }
}

/// What a successful reconciliation did to the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to change.
    Unchanged,
    /// Created.
    Created,
    /// Updated in place.
    Updated,
    /// Deleted and created again (type or immutable content changed).
    Recreated,
}

/// Reconciles one SealedSecret: unseal, write the Secret, record status, events and metrics.
pub async fn reconcile(ss: Arc<SealedSecret>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let shard = ctx.shards.shard_of(&namespace, &name);
    // Its Secret is proved in bulk soon, then every object is reconciled again (the priming in
    // lib.rs triggers it); meanwhile its slot goes to objects that need a decryption.
    if ctx.primed.stage(shard) < Stage::Done && synced_as_is(&ss) {
        return Ok(Action::await_change());
    }
    ctx.metrics.unseal_request();
    let instance = ss
        .labels()
        .get("app.kubernetes.io/instance")
        .cloned()
        .unwrap_or_default();
    if ss.metadata.deletion_timestamp.is_some() {
        ctx.metrics
            .set_condition(&namespace, &name, &instance, None);
        return Ok(Action::await_change());
    }
    // Held until this reconciliation ends: the shard is not given to another replica meanwhile.
    let Some(_permit) = ctx.shards.write_permit(&namespace, &name) else {
        let shard = ctx.shards.shard_of(&namespace, &name);
        if ctx.shards.owned().contains(&shard) {
            // Held, but its renewal is late: try again once the keeper renewed or dropped it.
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        tracing::debug!(%namespace, %name, "not this replica's shard (any more)");
        return Ok(Action::await_change());
    };
    let outcome = sync(&ss, &ctx).await;
    match &outcome {
        Ok(done) => {
            if let Ok(mut retries) = ctx.retries.lock() {
                retries.remove(&(namespace.clone(), name.clone()));
            }
            if *done != Outcome::Unchanged {
                tracing::info!(%namespace, %name, outcome = ?done, "SealedSecret unsealed");
                publish(
                    &ctx,
                    &ss,
                    EventType::Normal,
                    "Unsealed",
                    "SealedSecret unsealed successfully".into(),
                )
                .await;
            }
        }
        Err(e) => {
            ctx.metrics.unseal_error(e.metric_label(), &namespace);
            tracing::warn!(%namespace, %name, reason = e.metric_label(), error = %e, "cannot unseal SealedSecret");
            let note = match e.event_reason() {
                "ErrUnsealFailed" => format!("Failed to unseal: {e}"),
                _ => e.to_string(),
            };
            publish(&ctx, &ss, EventType::Warning, e.event_reason(), note).await;
        }
    }
    ctx.metrics
        .set_condition(&namespace, &name, &instance, Some(outcome.is_ok()));
    if ctx.config.update_status {
        let message = outcome.as_ref().err().map(ToString::to_string);
        if let Err(e) = update_status(&ss, &ctx, message).await {
            ctx.metrics.unseal_error("status", &namespace);
            tracing::warn!(%namespace, %name, error = %e, "cannot update SealedSecret status");
        }
    }
    outcome.map(|_| Action::requeue(ctx.config.resync_period))
}

/// Requeue policy: unseal failures that need a change (keys, spec, the blocking Secret) are
/// retried `--max-unseal-retries` times with growing delays, then at the resync period; API
/// failures are retried with backoff up to five minutes.
pub fn error_policy(ss: Arc<SealedSecret>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = (ss.namespace().unwrap_or_default(), ss.name_any());
    let attempts = match ctx.retries.lock() {
        Ok(mut retries) => {
            if retries.len() > 100_000 {
                retries.clear();
            }
            let n = retries.entry(key).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    let backoff = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(9))
        .min(Duration::from_secs(300));
    if err.is_permanent() && attempts > ctx.config.max_unseal_retries {
        Action::requeue(ctx.config.resync_period)
    } else {
        Action::requeue(backoff)
    }
}

async fn publish(ctx: &Context, ss: &SealedSecret, type_: EventType, reason: &str, note: String) {
    let note = Note {
        type_,
        reason,
        note: truncate(note, MAX_MESSAGE),
        action: "Unseal",
    };
    if let Err(e) = ctx.events.post(&ss.object_ref(&()), note).await {
        tracing::warn!(name = %ss.name_any(), error = %e, "cannot publish event");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        s.truncate(s.floor_char_boundary(max));
        s.push('…');
    }
    s
}

async fn update_status(
    ss: &SealedSecret,
    ctx: &Context,
    message: Option<String>,
) -> std::result::Result<(), kube::Error> {
    let status_value = if message.is_none() { "True" } else { "False" };
    let message = message.map(|m| truncate(m, 4 * MAX_MESSAGE));
    let generation = ss.metadata.generation;
    let current = ss.status.as_ref();
    let synced = current.and_then(|s| s.synced());
    let same = synced.is_some_and(|c| {
        c.status == status_value
            && c.message.as_deref().unwrap_or("") == message.as_deref().unwrap_or("")
    }) && current.and_then(|s| s.observed_generation) == generation;
    if same {
        return Ok(());
    }
    let namespace = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let based_on = ss.metadata.resource_version.clone().unwrap_or_default();
    let written = format!(
        "{generation:?}\0{status_value}\0{}",
        message.as_deref().unwrap_or("")
    );
    // This status was already written over this very version: the watch has not delivered the
    // write yet (e.g. the reconcile our Secret creation triggered), so writing again is waste.
    if ctx
        .status_memo
        .in_flight(&namespace, &name, &based_on, &written)
    {
        return Ok(());
    }
    let now = Timestamp::from_second(Timestamp::now().as_second())
        .unwrap_or_else(|_| Timestamp::now())
        .to_string();
    let transition = match synced {
        Some(c) if c.status == status_value => {
            c.last_transition_time.clone().unwrap_or(now.clone())
        }
        _ => now.clone(),
    };
    let mut condition = json!({
        "type": CONDITION_SYNCED,
        "status": status_value,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
    });
    if let Some(m) = message {
        condition["message"] = Value::String(m);
    }
    let patch =
        json!({ "status": { "conditions": [condition], "observedGeneration": generation } });
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    ctx.status_memo
        .record(&namespace, &name, &based_on, &written);
    Ok(())
}

/// The Secret a SealedSecret asks for, in the shape compared with and written to the cluster.
#[derive(Clone, PartialEq, Default)]
struct Desired {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owner_references: Vec<OwnerReference>,
    finalizers: Vec<String>,
    type_: String,
    immutable: Option<bool>,
    data: BTreeMap<String, ByteString>,
}

/// Who may write an existing Secret: (controlled by this SealedSecret, `managed`, `patch`).
#[derive(Debug, Clone, Copy, Default)]
struct Rights {
    owned: bool,
    managed: bool,
    patch: bool,
}

impl Rights {
    fn of(secret: &Secret, uid: &str) -> Self {
        let owned = secret
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && o.uid == uid);
        let flag = |k: &str| secret.annotations().get(k).is_some_and(|v| v == "true");
        Self {
            owned,
            managed: flag(MANAGED_ANNOTATION),
            patch: flag(PATCH_ANNOTATION),
        }
    }

    fn any(self) -> bool {
        self.owned || self.managed || self.patch
    }
}

async fn get_secret(secrets: &Api<Secret>, name: &str) -> Result<Option<Secret>> {
    secrets.get_opt(name).await.map_err(|source| Error::Kube {
        what: "get the Secret",
        source,
    })
}

/// The items a MAC covers (`None` for the deprecated v1 `spec.data`, which has no item names).
fn mac_items(sealed: &hush_sealing::SealedSecret) -> Option<BTreeSet<String>> {
    sealed.spec.data.is_none().then(|| {
        sealed
            .spec
            .encrypted_data
            .keys()
            .chain(sealed.spec.template.data.keys())
            .cloned()
            .collect()
    })
}

/// Whether the status says this generation was synced (its Secret most likely still is).
fn synced_as_is(ss: &SealedSecret) -> bool {
    ss.status.as_ref().is_some_and(|status| {
        status.observed_generation.is_some()
            && status.observed_generation == ss.metadata.generation
            && status.synced().is_some_and(|c| c.status == "True")
    })
}

async fn sync(ss: &SealedSecret, ctx: &Context) -> Result<Outcome> {
    let namespace = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    let shard = ctx.shards.shard_of(&namespace, &name);
    // The Secret stores must have listed: they say whether the Secret exists (no GET).
    ctx.primed.wait(shard, Stage::Proving).await;
    let sealed = to_sealing(ss)?;
    let keys = ctx.keys.snapshot();
    let spec_hash = spec_hash(ss)?;
    let mac_key = mac_key(&keys);
    let mac_key_id = cache::mac_key_id(&mac_key);
    let seen = ctx.secret_stores.lookup(shard, &namespace, &name);
    // The Secret is still exactly as last written or proved (e.g. the reconcile triggered by our
    // own status write or Secret creation): nothing to read, decrypt or write.
    if let Seen::Present(rv) = &seen
        && !keys.is_empty()
        && ctx.memo.fresh(
            &namespace,
            &name,
            rv,
            &spec_hash,
            mac_key_id,
            ctx.config.resync_period.mul_f32(0.9),
        )
    {
        ctx.metrics.skipped();
        return Ok(Outcome::Unchanged);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    // First sight and the watch has no such Secret: create without a GET (409 falls back).
    let create_first = matches!(seen, Seen::Absent) && !ctx.memo.knows(&namespace, &name);
    let existing = if create_first {
        None
    } else {
        get_secret(&secrets, &name).await?
    };
    let uid = ss.uid().unwrap_or_default();
    let rights = existing
        .as_ref()
        .map(|s| Rights::of(s, &uid))
        .unwrap_or_default();
    if existing.is_some() && !rights.any() {
        ctx.memo.forget(&namespace, &name);
        return Err(Error::Unmanaged { name });
    }
    if keys.is_empty() {
        return Err(Error::NoKeys);
    }
    let items = mac_items(&sealed);
    let reused = existing
        .as_ref()
        .zip(items.as_ref())
        .and_then(|(s, items)| reuse_data(s, &spec_hash, &mac_key, items));
    let (secret, key_id) = match reused {
        Some(data) => {
            ctx.metrics.skipped();
            let key_id = existing
                .as_ref()
                .and_then(|s| s.annotations().get(KEY_ANNOTATION).cloned());
            (template_secret_with(&sealed, data), key_id)
        }
        None => {
            let preferred = existing
                .as_ref()
                .and_then(|s| s.annotations().get(KEY_ANNOTATION))
                .and_then(|v| annotated_keys(v).next().map(str::to_owned));
            let keyring = keys.keyring_preferring(preferred.as_deref());
            let opts = UnsealOptions {
                accept_deprecated_v1_data: ctx.config.accept_deprecated_v1_data,
                max_key_operations: Some(ctx.config.max_decrypt_operations),
                template_limits: ctx.config.template_limits,
            };
            let n = sealed.spec.encrypted_data.len().max(1);
            let _slot = ctx
                .decrypt_slots
                .acquire()
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            let start = Instant::now();
            let unsealed = tokio::task::spawn_blocking(move || keyring.unseal(&sealed, &opts))
                .await
                .map_err(|e| Error::Internal(format!("unseal task: {e}")))?
                .map_err(Error::Unseal)?;
            ctx.metrics.decrypted(n, start.elapsed());
            let key_id = key_annotation(&unsealed.opened_by);
            (unsealed.secret, key_id)
        }
    };
    let mut desired = desired(secret, &spec_hash, &mac_key, key_id, items.as_ref())?;
    mark_drift(
        &ctx.drift,
        ss,
        existing.as_ref(),
        &mut desired,
        rights.patch,
    );
    let (outcome, written) = match existing {
        Some(current) => apply(&secrets, &name, &namespace, current, desired, rights).await?,
        None => match create(&secrets, &name, &namespace, &desired).await {
            Ok(created) => (Outcome::Created, created),
            Err(Error::Kube { source, .. }) if create_first && is_already_exists(&source) => {
                // The watch had not seen it yet: take the ordinary path.
                let Some(current) = get_secret(&secrets, &name).await? else {
                    return Err(Error::Kube {
                        what: "create the Secret (it existed, then was deleted)",
                        source,
                    });
                };
                let rights = Rights::of(&current, &uid);
                if !rights.any() {
                    return Err(Error::Unmanaged { name });
                }
                apply(&secrets, &name, &namespace, current, desired, rights).await?
            }
            Err(e) => return Err(e),
        },
    };
    ctx.memo.record(
        &namespace,
        &name,
        written.metadata.resource_version.as_deref(),
        &spec_hash,
        mac_key_id,
    );
    Ok(outcome)
}

/// Counts a correction on the Secret (hush_operator::drift) when this spec was already synced yet
/// the Secret is gone or its data differs: someone deleted or edited it by hand.
fn mark_drift(
    ledger: &drift::DriftLedger,
    ss: &SealedSecret,
    existing: Option<&Secret>,
    desired: &mut Desired,
    patch: bool,
) {
    let synced_before = ss.status.as_ref().is_some_and(|s| {
        s.observed_generation == ss.metadata.generation
            && s.synced().is_some_and(|c| c.status == "True")
    });
    let namespace = ss.namespace().unwrap_or_default();
    let name = ss.name_any();
    if let Some(found) = existing {
        ledger.remember(&namespace, &name, found.annotations());
    }
    let data = existing.and_then(|s| s.data.as_ref());
    let drifted = match data {
        None => existing.is_none() || !desired.data.is_empty(),
        Some(data) if patch => desired.data.iter().any(|(k, v)| data.get(k) != Some(v)),
        Some(data) => *data != desired.data,
    };
    if synced_before && drifted {
        let now = Timestamp::from_second(Timestamp::now().as_second())
            .unwrap_or_else(|_| Timestamp::now())
            .to_string();
        let count = ledger.record(
            &namespace,
            &name,
            existing.map(|s| s.annotations()),
            &mut desired.annotations,
            &now,
        );
        tracing::info!(%namespace, %name, count, "Secret edited or deleted by hand: putting it back");
    }
    if let Some(found) = existing {
        drift::carry(found.annotations(), &mut desired.annotations);
    }
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// The spec hash when `existing` is exactly the Secret `ss` asks for, proved by the data MAC
/// (no decryption); `None` when it is not or cannot be proved.
pub(crate) fn up_to_date(ss: &SealedSecret, existing: &Secret, mac_key: &[u8]) -> Option<String> {
    let rights = Rights::of(existing, &ss.uid().unwrap_or_default());
    if !rights.any() {
        return None;
    }
    let sealed = to_sealing(ss).ok()?;
    let spec_hash = spec_hash(ss).ok()?;
    let items = mac_items(&sealed)?;
    let data = reuse_data(existing, &spec_hash, mac_key, &items)?;
    let key_id = existing.annotations().get(KEY_ANNOTATION).cloned();
    let secret = template_secret_with(&sealed, data);
    let desired = desired(secret, &spec_hash, mac_key, key_id, Some(&items)).ok()?;
    let merged = merge(existing, &desired, rights);
    same_content(&merged, existing).then_some(spec_hash)
}

/// The SealedSecret in hush-sealing's types (what unsealing reads).
fn to_sealing(ss: &SealedSecret) -> Result<hush_sealing::SealedSecret> {
    let value = serde_json::to_value(ss).map_err(|e| Error::Invalid(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| Error::Invalid(e.to_string()))
}

/// The Secret as `Keyring::unseal` would make it, with `data` already known to be right.
fn template_secret_with(
    sealed: &hush_sealing::SealedSecret,
    data: BTreeMap<String, ByteString>,
) -> hush_sealing::Secret {
    let mut secret = template_secret(sealed);
    secret.data = data
        .into_iter()
        .map(|(k, v)| (k, hush_crypto::SecretBytes::new(v.0)))
        .collect();
    secret
}

/// The Secret without data, as `Keyring::unseal` shapes it (template metadata, type,
/// immutability, name, namespace, ownerReference), for the path that needs no decryption.
fn template_secret(sealed: &hush_sealing::SealedSecret) -> hush_sealing::Secret {
    let template = &sealed.spec.template;
    let mut secret = hush_sealing::Secret {
        metadata: template.metadata.clone(),
        type_: template.type_.clone(),
        immutable: template.immutable,
        ..hush_sealing::Secret::default()
    };
    hush_sealing::unseal::own(sealed, &mut secret);
    secret
}

fn desired(
    secret: hush_sealing::Secret,
    spec_hash: &str,
    mac_key: &[u8],
    key_id: Option<String>,
    items: Option<&BTreeSet<String>>,
) -> Result<Desired> {
    let meta = secret.metadata;
    let owner_references = meta
        .owner_references
        .into_iter()
        .map(serde_json::from_value::<OwnerReference>)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("spec.template.metadata.ownerReferences: {e}")))?;
    let data: BTreeMap<String, ByteString> = secret
        .data
        .into_iter()
        .map(|(k, v)| (k, ByteString(v.into_zeroizing().to_vec())))
        .collect();
    let mut annotations = meta.annotations;
    annotations.insert(SPEC_HASH_ANNOTATION.into(), spec_hash.into());
    if let Some(mac) = items.and_then(|items| data_mac(mac_key, spec_hash, &data, items)) {
        annotations.insert(DATA_MAC_ANNOTATION.into(), mac);
    }
    if let Some(k) = key_id {
        annotations.insert(KEY_ANNOTATION.into(), k);
    }
    let type_ = if secret.type_.is_empty() {
        "Opaque".to_owned()
    } else {
        secret.type_
    };
    Ok(Desired {
        labels: meta.labels,
        annotations,
        owner_references,
        finalizers: meta.finalizers,
        type_,
        immutable: secret.immutable,
        data,
    })
}

/// The existing Secret with what the SealedSecret asks for written over it (replace, or merge
/// for `patch`).
fn merge(existing: &Secret, desired: &Desired, rights: Rights) -> Secret {
    let mut updated = existing.clone();
    if rights.patch {
        let mut data = existing.data.clone().unwrap_or_default();
        data.extend(desired.data.clone());
        updated.data = Some(data);
        let mut labels = existing.metadata.labels.clone().unwrap_or_default();
        labels.extend(desired.labels.clone());
        updated.metadata.labels = Some(labels);
        let mut annotations = existing.metadata.annotations.clone().unwrap_or_default();
        annotations.extend(desired.annotations.clone());
        updated.metadata.annotations = Some(annotations);
        if rights.managed {
            updated.metadata.owner_references = Some(desired.owner_references.clone());
        }
    } else {
        updated.data = Some(desired.data.clone());
        updated.metadata.labels = Some(desired.labels.clone());
        let mut annotations = desired.annotations.clone();
        drift::carry(existing.annotations(), &mut annotations);
        updated.metadata.annotations = Some(annotations);
        updated.metadata.owner_references = Some(desired.owner_references.clone());
    }
    updated.type_ = Some(desired.type_.clone());
    if desired.immutable.is_some() {
        updated.immutable = desired.immutable;
    }
    updated
}

/// Whether two Secrets have the same data, labels, annotations, ownerReferences, type and
/// immutability.
fn same_content(a: &Secret, b: &Secret) -> bool {
    let norm = |s: &Secret| {
        (
            s.data.clone().unwrap_or_default(),
            s.metadata.labels.clone().unwrap_or_default(),
            s.metadata.annotations.clone().unwrap_or_default(),
            s.metadata.owner_references.clone().unwrap_or_default(),
            s.type_.clone().unwrap_or_else(|| "Opaque".into()),
            s.immutable.unwrap_or(false),
        )
    };
    norm(a) == norm(b)
}

/// Writes `desired` over `existing`; returns what was done and the Secret as it now is.
async fn apply(
    secrets: &Api<Secret>,
    name: &str,
    namespace: &str,
    existing: Secret,
    desired: Desired,
    rights: Rights,
) -> Result<(Outcome, Secret)> {
    let updated = merge(&existing, &desired, rights);
    if same_content(&updated, &existing) {
        return Ok((Outcome::Unchanged, existing));
    }
    let type_changed = existing.type_.as_deref().unwrap_or("Opaque") != desired.type_;
    let immutable_blocked = existing.immutable == Some(true)
        && (updated.data != existing.data || updated.immutable != existing.immutable);
    if type_changed || immutable_blocked {
        if !(rights.owned || rights.managed) {
            return Err(Error::Immutable {
                name: name.to_owned(),
            });
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: existing.metadata.uid.clone(),
                resource_version: existing.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        secrets
            .delete(name, &dp)
            .await
            .map_err(|source| Error::Kube {
                what: "delete the Secret to recreate it",
                source,
            })?;
        let mut recreated = desired;
        if rights.patch {
            recreated.data = updated.data.unwrap_or_default();
            recreated.labels = updated.metadata.labels.unwrap_or_default();
            recreated.annotations = updated.metadata.annotations.unwrap_or_default();
        }
        let created = create(secrets, name, namespace, &recreated).await?;
        return Ok((Outcome::Recreated, created));
    }
    let replaced = secrets
        .replace(name, &PostParams::default(), &updated)
        .await
        .map_err(|source| Error::Kube {
            what: "update the Secret",
            source,
        })?;
    Ok((Outcome::Updated, replaced))
}

async fn create(secrets: &Api<Secret>, name: &str, namespace: &str, d: &Desired) -> Result<Secret> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: (!d.labels.is_empty()).then(|| d.labels.clone()),
            annotations: (!d.annotations.is_empty()).then(|| d.annotations.clone()),
            owner_references: (!d.owner_references.is_empty()).then(|| d.owner_references.clone()),
            finalizers: (!d.finalizers.is_empty()).then(|| d.finalizers.clone()),
            ..ObjectMeta::default()
        },
        type_: Some(d.type_.clone()),
        immutable: d.immutable,
        data: Some(d.data.clone()),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|source| Error::Kube {
            what: "create the Secret",
            source,
        })
}

/// Hash of everything that determines the Secret: the whole spec, the scope, name, namespace
/// and uid (the ownerReference), as canonical JSON (keys sorted).
fn spec_hash(ss: &SealedSecret) -> Result<String> {
    let spec = serde_json::to_value(&ss.spec).map_err(|e| Error::Invalid(e.to_string()))?;
    let annotations = ss.annotations();
    let scope = hush_sealing::Scope::from_annotations(annotations);
    let input = json!({
        "v": 1,
        "name": ss.name_any(),
        "namespace": ss.namespace().unwrap_or_default(),
        "uid": ss.uid().unwrap_or_default(),
        "scope": scope.as_str(),
        "spec": spec,
    });
    let mut text = String::new();
    canonical(&input, &mut text);
    Ok(hex::encode(Sha256::digest(text.as_bytes())))
}

/// JSON with object keys sorted at every level.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The data MAC key: derived from the oldest sealing key's private key, so that only a holder of
/// the sealing keys can produce a MAC the controller accepts, and stable across key renewals.
pub(crate) fn mac_key(keys: &KeySet) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"hush sealed-secrets data MAC v1\0");
    if let Some(k) = keys.oldest() {
        h.update(k.key.to_pkcs8_der().expose());
    }
    h.finalize().to_vec()
}

/// HMAC-SHA256 over the spec hash and the items in `items` (length-prefixed). `None` when an
/// item is missing.
fn data_mac(
    key: &[u8],
    spec_hash: &str,
    data: &BTreeMap<String, ByteString>,
    items: &BTreeSet<String>,
) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(spec_hash.as_bytes());
    for item in items {
        let value = data.get(item)?;
        mac.update(&(item.len() as u64).to_be_bytes());
        mac.update(item.as_bytes());
        mac.update(&(value.0.len() as u64).to_be_bytes());
        mac.update(&value.0);
    }
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// The existing Secret's items when its annotations prove they are what this spec unseals to.
fn reuse_data(
    existing: &Secret,
    spec_hash: &str,
    mac_key: &[u8],
    items: &BTreeSet<String>,
) -> Option<BTreeMap<String, ByteString>> {
    let annotations = existing.annotations();
    if annotations.get(SPEC_HASH_ANNOTATION).map(String::as_str) != Some(spec_hash) {
        return None;
    }
    let claimed = annotations.get(DATA_MAC_ANNOTATION)?;
    let data = existing.data.as_ref()?;
    let expected = data_mac(mac_key, spec_hash, data, items)?;
    // Constant-time comparison: the MAC is a keyed value.
    let ok = claimed.len() == expected.len()
        && claimed
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    ok.then(|| {
        items
            .iter()
            .filter_map(|k| data.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose API server does not answer (port 1).
    fn offline_context() -> Arc<Context> {
        let url = "http://127.0.0.1:1".parse().expect("static URL");
        let client = Client::try_from(kube::Config::new(url)).expect("client");
        let config = Arc::new(Config::new("keys"));
        let metrics =
            SealedMetrics::register(&mut prometheus_client::registry::Registry::default());
        let keys = Arc::new(SealingKeys::new(
            client.clone(),
            config.clone(),
            metrics.clone(),
        ));
        Arc::new(Context::new(client, config, keys, metrics))
    }

    /// A SealedSecret at `generation` whose status says `observed` was synced.
    fn sealed_secret(name: &str, generation: i64, observed: i64) -> Arc<SealedSecret> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "bitnami.com/v1alpha1",
                "kind": "SealedSecret",
                "metadata": {"name": name, "namespace": "ns", "uid": "u", "generation": generation},
                "spec": {"encryptedData": {"k": "AgA="}},
                "status": {
                    "observedGeneration": observed,
                    "conditions": [{"type": "Synced", "status": "True"}],
                },
            }))
            .expect("SealedSecret"),
        )
    }

    #[tokio::test]
    async fn while_priming_synced_objects_wait_and_changed_ones_start_once_secrets_listed() {
        let ctx = offline_context();
        let shards = BTreeSet::from([0]);
        ctx.primed.set(&shards, Stage::Listing);
        // In sync as its status says: no slot, no API call; priming reconciles it later.
        let action = reconcile(sealed_secret("old", 2, 2), ctx.clone()).await;
        assert_eq!(action.ok(), Some(Action::await_change()));
        // Changed since: it waits only for the Secret stores, not for the proofs.
        let changed = tokio::spawn(reconcile(sealed_secret("new", 3, 2), ctx.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !changed.is_finished(),
            "reconciled before the Secrets were listed"
        );
        ctx.primed.set(&shards, Stage::Proving);
        let result = tokio::time::timeout(Duration::from_secs(30), changed)
            .await
            .expect("a changed object must not wait for the proofs")
            .expect("joined");
        // It went to work: reading its Secret failed (no API server).
        assert!(matches!(result, Err(Error::Kube { .. })), "{result:?}");
        assert_eq!(ctx.primed.stage(0), Stage::Proving);
        ctx.primed.set(&shards, Stage::Done);
        assert_eq!(ctx.primed.stage(0), Stage::Done);
    }

    #[test]
    fn key_annotation_lists_the_first_items_key_then_the_others_once() {
        let opened = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(i, k)| ((*i).to_owned(), (*k).to_owned()))
                .collect()
        };
        assert_eq!(key_annotation(&opened(&[])), None);
        assert_eq!(
            key_annotation(&opened(&[("a", "k2"), ("b", "k2")])).as_deref(),
            Some("k2")
        );
        let v = key_annotation(&opened(&[
            ("a", "k9"),
            ("b", "k1"),
            ("c", "k9"),
            ("d", "k3"),
        ]))
        .unwrap();
        assert_eq!(v, "k9,k1,k3");
        assert_eq!(annotated_keys(&v).collect::<Vec<_>>(), ["k9", "k1", "k3"]);
        assert_eq!(
            annotated_keys("old-single").collect::<Vec<_>>(),
            ["old-single"]
        );
        assert_eq!(annotated_keys(" a, ,b ").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn mac_detects_changed_and_missing_items() {
        let items: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        let mut data = BTreeMap::from([
            ("a".to_owned(), ByteString(b"1".to_vec())),
            ("b".to_owned(), ByteString(b"2".to_vec())),
        ]);
        let mac = data_mac(b"k", "h", &data, &items).unwrap();
        assert_eq!(data_mac(b"k", "h", &data, &items).unwrap(), mac);
        assert_ne!(data_mac(b"k2", "h", &data, &items).unwrap(), mac);
        assert_ne!(data_mac(b"k", "h2", &data, &items).unwrap(), mac);
        data.insert("b".into(), ByteString(b"3".to_vec()));
        assert_ne!(data_mac(b"k", "h", &data, &items).unwrap(), mac);
        data.remove("b");
        assert!(data_mac(b"k", "h", &data, &items).is_none());
        // Length prefixes: moving a byte between key and value changes the MAC.
        let one = BTreeMap::from([("ab".to_owned(), ByteString(b"c".to_vec()))]);
        let two = BTreeMap::from([("a".to_owned(), ByteString(b"bc".to_vec()))]);
        assert_ne!(
            data_mac(b"k", "h", &one, &["ab".to_owned()].into()),
            data_mac(b"k", "h", &two, &["a".to_owned()].into())
        );
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut a = String::new();
        canonical(
            &json!({"b": 1, "a": {"d": [1, {"f": 2, "e": 3}], "c": "x"}}),
            &mut a,
        );
        assert_eq!(a, r#"{"a":{"c":"x","d":[1,{"e":3,"f":2}]},"b":1}"#);
    }

    #[test]
    fn spec_hash_covers_scope_and_uid() {
        let mut ss = SealedSecret::new("n", Default::default());
        ss.metadata.namespace = Some("ns".into());
        ss.metadata.uid = Some("u1".into());
        let h1 = spec_hash(&ss).unwrap();
        ss.metadata.uid = Some("u2".into());
        let h2 = spec_hash(&ss).unwrap();
        assert_ne!(h1, h2);
        ss.metadata.annotations = Some(BTreeMap::from([(
            hush_sealing::scope::NAMESPACE_WIDE_ANNOTATION.to_owned(),
            "true".to_owned(),
        )]));
        assert_ne!(spec_hash(&ss).unwrap(), h2);
        // Labels do not determine the Secret.
        let h3 = spec_hash(&ss).unwrap();
        ss.metadata.labels = Some(BTreeMap::from([("x".to_owned(), "y".to_owned())]));
        assert_eq!(spec_hash(&ss).unwrap(), h3);
    }

    /// The Secret the controller would write for `ss` (values given, as if decrypted).
    fn written(ss: &SealedSecret, mac_key: &[u8], values: &[(&str, &[u8])]) -> Secret {
        let sealed = to_sealing(ss).unwrap();
        let data = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
            .collect();
        let items = mac_items(&sealed).unwrap();
        let hash = spec_hash(ss).unwrap();
        let d = desired(
            template_secret_with(&sealed, data),
            &hash,
            mac_key,
            None,
            Some(&items),
        )
        .unwrap();
        Secret {
            metadata: ObjectMeta {
                name: ss.metadata.name.clone(),
                namespace: ss.metadata.namespace.clone(),
                labels: Some(d.labels),
                annotations: Some(d.annotations),
                owner_references: Some(d.owner_references),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            type_: Some(d.type_),
            data: Some(d.data),
            ..Secret::default()
        }
    }

    #[test]
    fn up_to_date_proves_only_the_secret_as_written() {
        let ss: SealedSecret = serde_json::from_value(json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "n", "namespace": "ns", "uid": "u1"},
            "spec": {
                "encryptedData": {"a": "AgA="},
                "template": {"metadata": {"labels": {"l": "1"}}},
            },
        }))
        .unwrap();
        let key = b"mac key";
        let secret = written(&ss, key, &[("a", b"value")]);
        assert_eq!(up_to_date(&ss, &secret, key), Some(spec_hash(&ss).unwrap()));
        // Another MAC key (the oldest sealing key changed): not proved.
        assert_eq!(up_to_date(&ss, &secret, b"other"), None);
        // Changed data, a dropped label, a foreign owner: not proved.
        let mut changed = secret.clone();
        changed.data = Some(BTreeMap::from([("a".into(), ByteString(b"x".to_vec()))]));
        assert_eq!(up_to_date(&ss, &changed, key), None);
        let mut relabelled = secret.clone();
        relabelled.metadata.labels = None;
        assert_eq!(up_to_date(&ss, &relabelled, key), None);
        let mut foreign = ss.clone();
        foreign.metadata.uid = Some("u2".into());
        assert_eq!(up_to_date(&foreign, &secret, key), None);
        // A changed spec: the spec hash no longer matches.
        let mut respec = ss.clone();
        respec.spec.encrypted_data.insert("b".into(), "AgB=".into());
        assert_eq!(up_to_date(&respec, &secret, key), None);
    }
}
