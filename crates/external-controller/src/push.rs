//! PushSecret (`external-secrets.io/v1alpha1`, ESO's `pushsecret` controller): pushes keys of
//! a Secret of its namespace (by name or label selector, optionally through `template`) to the
//! stores of `secretStoreRefs`, through the providers' write half of the `hush-sync` seam.
//!
//! As ESO: `updatePolicy: IfNotExists` leaves existing remote secrets alone; `deletionPolicy:
//! Delete` puts `pushsecret.externalsecrets.io/finalizer` on the PushSecret and removes what is
//! no longer pushed (an entry dropped from `data`, a store dropped, the PushSecret deleted, the
//! source Secret deleted); `status.syncedPushSecrets` maps `<Kind>/<store>` → `remoteKey[/property]`
//! → the entry; `Ready` is `Synced` or `Errored`; a push is repeated every `refreshInterval`
//! (1h unset; `0` once per spec change). Providers refuse to overwrite or delete a remote
//! secret without ESO's ownership marker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hush_api::external_secrets::Condition;
use hush_api::push_secrets::{PushSecret, PushSecretData, PushSecretStatus};
use hush_operator::events::EventType;
use hush_sync::cache::Freshness;
use hush_sync::{ProviderError, PushRef, PushSource, SecretBytes, SecretProvider as _};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::Error;
use crate::context::{Context, ResolvedStore, namespace_allowed};
use crate::shared::{now_rfc3339, patch_finalizers, secret_data};

/// ESO's finalizer on a PushSecret with `deletionPolicy: Delete`.
pub const FINALIZER: &str = "pushsecret.externalsecrets.io/finalizer";
/// `refreshInterval` when unset (ESO's CRD default).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
const SYNCED: &str = "Synced";
const ERRORED: &str = "Errored";
const SYNCED_MESSAGE: &str = "PushSecret synced successfully";
const SOURCE_MISSING: &str = "could not get source secret";

/// `status.syncedPushSecrets`.
pub type Synced = BTreeMap<String, BTreeMap<String, PushSecretData>>;

/// The spec, checked: what the reconcile does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How often to push again (`None`: once per spec change).
    pub refresh: Option<Duration>,
    /// `updatePolicy: IfNotExists`.
    pub if_not_exists: bool,
    /// `deletionPolicy: Delete`.
    pub delete: bool,
}

/// Checks the spec; the error names the field (the PushSecret goes `Ready=False`).
pub fn plan(ps: &PushSecret) -> Result<Plan, String> {
    let s = &ps.spec;
    if !s.data_to.is_empty() {
        return Err(
            "spec.dataTo is not supported by hush (ESO v0.16.2, the release hush is checked \
             against, has no dataTo); use spec.data"
                .into(),
        );
    }
    match (&s.selector.secret, &s.selector.generator_ref) {
        (Some(_), Some(_)) => {
            return Err("spec.selector: set either secret or generatorRef, not both".into());
        }
        (None, Some(_)) => {}
        (None, None) => return Err("spec.selector.secret or generatorRef is required".into()),
        (Some(sec), None)
            if sec.name.as_deref().is_none_or(str::is_empty) && sec.selector.is_none() =>
        {
            return Err("spec.selector.secret needs a name or a selector".into());
        }
        (Some(_), None) => {}
    }
    for (i, r) in s.secret_store_refs.iter().enumerate() {
        if r.name.as_deref().is_none_or(str::is_empty) && r.label_selector.is_none() {
            return Err(format!(
                "spec.secretStoreRefs[{i}] needs a name or a labelSelector"
            ));
        }
        if let Some(k) = r.kind.as_deref()
            && !matches!(k, "" | "SecretStore" | "ClusterSecretStore")
        {
            return Err(format!(
                "spec.secretStoreRefs[{i}].kind {k:?} (SecretStore or ClusterSecretStore)"
            ));
        }
    }
    for (i, d) in s.data.iter().enumerate() {
        let c = d.conversion_strategy.as_deref().unwrap_or_default();
        if !matches!(c, "" | "None" | "ReverseUnicode") {
            return Err(format!(
                "spec.data[{i}].conversionStrategy {c:?} (None or ReverseUnicode)"
            ));
        }
        if d.match_.remote_ref.remote_key.is_empty() {
            return Err(format!("spec.data[{i}].match.remoteRef.remoteKey is empty"));
        }
    }
    let refresh = match s.refresh_interval.as_deref().filter(|t| !t.is_empty()) {
        None => Some(DEFAULT_REFRESH),
        Some(t) => {
            let d = hush_operator::duration::parse(t)
                .map_err(|e| format!("spec.refreshInterval {t:?}: {e}"))?;
            (!d.is_zero()).then_some(d)
        }
    };
    let if_not_exists = match s.update_policy.as_deref().unwrap_or_default() {
        "" | "Replace" => false,
        "IfNotExists" => true,
        other => {
            return Err(format!(
                "spec.updatePolicy {other:?} (Replace or IfNotExists)"
            ));
        }
    };
    let delete = match s.deletion_policy.as_deref().unwrap_or_default() {
        "" | "None" => false,
        "Delete" => true,
        other => return Err(format!("spec.deletionPolicy {other:?} (Delete or None)")),
    };
    Ok(Plan {
        refresh,
        if_not_exists,
        delete,
    })
}

/// Reconciles one PushSecret.
pub async fn reconcile(ps: Arc<PushSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = ps.namespace().unwrap_or_default();
    let api: Api<PushSecret> = Api::namespaced(ctx.client.clone(), &ns);
    if ps.meta().deletion_timestamp.is_some() {
        return finalize(&ps, &ctx, &api).await;
    }
    let old = ps.status.clone().unwrap_or_default();
    let plan = match plan(&ps) {
        Ok(p) => p,
        Err(msg) => {
            report(&ctx, &api, &ps, &old, Outcome::Failed(msg, None)).await?;
            return Ok(Action::await_change());
        }
    };
    let has_finalizer = ps.finalizers().iter().any(|f| f == FINALIZER);
    if plan.delete != has_finalizer {
        let mut all: Vec<String> = ps
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        if plan.delete {
            all.push(FINALIZER.to_owned());
        }
        patch_finalizers(&api, &*ps, json!(all)).await?;
    }
    let rv = crate::eso::synced_resource_version(
        ps.meta().generation.unwrap_or_default(),
        ps.labels(),
        ps.annotations(),
    );
    if let Some(wait) = not_due(&old, &rv, plan.refresh) {
        return Ok(wait);
    }
    let start = now_rfc3339();
    let sources = match sources(&ctx, &ps, &ns).await {
        Ok(s) => s,
        Err(e) => return source_failed(&ctx, &api, &ps, &old, &plan, e).await,
    };
    let stores = match push_stores(&ctx, &ps, &ns).await {
        Ok(s) => s,
        Err(e) => {
            report(&ctx, &api, &ps, &old, Outcome::Failed(e.to_string(), None)).await?;
            return Err(e);
        }
    };
    if stores.is_empty() && !ps.spec.secret_store_refs.is_empty() {
        // Every store belongs to another controller class (ESO's removeUnmanagedStores).
        return Ok(Action::await_change());
    }
    let mut all = Synced::new();
    for secret in &sources {
        let values = match push_source(&ctx, &ps, secret).await {
            Ok(v) => v,
            Err(e) => {
                report(&ctx, &api, &ps, &old, Outcome::Failed(e.to_string(), None)).await?;
                return Err(e);
            }
        };
        let (synced, result) = push_all(&ctx, &ps, &plan, &stores, &values, &ns).await;
        all = merge(all, &synced);
        if let Err(e) = result {
            let state = merge(all, &old.synced_push_secrets);
            let msg = format!("set secret failed: {e}");
            report(&ctx, &api, &ps, &old, Outcome::Failed(msg, Some(state))).await?;
            return Err(e);
        }
    }
    if plan.delete
        && let Err((state, e)) = delete_stale(&ctx, &ns, &old.synced_push_secrets, &all).await
    {
        let msg = format!("Failed to Delete Secrets from Provider: {e}");
        report(&ctx, &api, &ps, &old, Outcome::Failed(msg, Some(state))).await?;
        return Err(e);
    }
    let done = Outcome::Done {
        synced: all,
        refresh_time: start,
        resource_version: rv,
        if_not_exists: plan.if_not_exists,
    };
    report(&ctx, &api, &ps, &old, done).await?;
    Ok(plan
        .refresh
        .map_or_else(Action::await_change, Action::requeue))
}

/// Retried after the error's delay; a provider refusal that a retry cannot fix (an unmanaged
/// remote secret, a bad value) after a minute, not every few seconds.
pub fn error_policy(ps: Arc<PushSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = ?ps.namespace(), name = %ps.name_any(), error = %err, "pushsecret reconcile failed");
    match err {
        Error::Provider(p) if !p.is_retryable() => Action::requeue(Duration::from_secs(60)),
        other => Action::requeue(other.retry_after()),
    }
}

/// ESO's `shouldRefresh`: a changed spec (generation, labels, annotations) pushes now; else
/// the next push is due `refresh` after the last; `None` (interval 0) never repeats.
fn not_due(old: &PushSecretStatus, rv: &str, refresh: Option<Duration>) -> Option<Action> {
    if old.synced_resource_version.as_deref() != Some(rv) {
        return None;
    }
    let Some(refresh) = refresh else {
        return Some(Action::await_change());
    };
    let last = old
        .refresh_time
        .as_deref()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())?;
    let age = k8s_openapi::jiff::Timestamp::now().duration_since(last);
    let age = Duration::try_from(age).ok()?;
    (age < refresh).then(|| Action::requeue(refresh - age + Duration::from_secs(1)))
}

/// The source Secrets: by name (a missing one is an error), every Secret matching the label
/// selector, in name order, or the values of `selector.generatorRef`, new on every push (ESO's
/// `___generated-secret`).
async fn sources(ctx: &Context, ps: &PushSecret, ns: &str) -> Result<Vec<Secret>, Error> {
    if let Some(r) = &ps.spec.selector.generator_ref {
        let values = crate::generators::generate(ctx, ns, r, "spec.selector.generatorRef")
            .await
            .map_err(|e| match e {
                Error::NotOurs => Error::Spec(
                    "spec.selector.generatorRef: the generator belongs to another controller \
                     class"
                        .into(),
                ),
                other => other,
            })?;
        let data = values
            .into_iter()
            .map(|(k, v)| (k, k8s_openapi::ByteString(v.expose().to_vec())))
            .collect();
        let mut secret = Secret {
            data: Some(data),
            ..Secret::default()
        };
        secret.metadata.name = Some("___generated-secret".into());
        secret.metadata.namespace = Some(ns.to_owned());
        return Ok(vec![secret]);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(sel) = &ps.spec.selector.secret else {
        return Err(Error::Spec("spec.selector.secret is required".into()));
    };
    if let Some(name) = sel.name.as_deref().filter(|n| !n.is_empty()) {
        return match api.get_opt(name).await.map_err(Error::Kube)? {
            Some(s) => Ok(vec![s]),
            None => Err(Error::Spec(format!(
                "{SOURCE_MISSING}: Secret {ns}/{name} not found"
            ))),
        };
    }
    let selector = label_selector(sel.selector.as_ref(), "spec.selector.secret.selector")?;
    // An unknown operator is an error, not "matches nothing".
    crate::shared::selector_matches(&selector, &BTreeMap::new())
        .map_err(|e| Error::Spec(format!("spec.selector.secret.selector: {e}")))?;
    let mut out: Vec<Secret> = api
        .list(&ListParams::default())
        .await
        .map_err(Error::Kube)?
        .items
        .into_iter()
        .filter(|s| crate::shared::selector_matches(&selector, s.labels()).unwrap_or(false))
        .collect();
    out.sort_by_key(ResourceExt::name_any);
    Ok(out)
}

fn label_selector(
    sel: Option<&hush_api::external_secrets::OpenObject>,
    field: &str,
) -> Result<LabelSelector, Error> {
    let v = sel.map_or(Value::Null, |o| Value::Object(o.0.clone()));
    serde_json::from_value(v)
        .map_err(|e| Error::Spec(format!("{field} is not a label selector: {e}")))
}

/// A missing source: with `deletionPolicy: Delete` what was pushed is removed (ESO's
/// `handleSourceSecretDeleted`); either way the PushSecret is `Errored`.
async fn source_failed(
    ctx: &Context,
    api: &Api<PushSecret>,
    ps: &PushSecret,
    old: &PushSecretStatus,
    plan: &Plan,
    err: Error,
) -> Result<Action, Error> {
    let missing = matches!(&err, Error::Spec(m) if m.starts_with(SOURCE_MISSING));
    let ns = ps.namespace().unwrap_or_default();
    let mut state = None;
    if missing && plan.delete && !old.synced_push_secrets.is_empty() {
        match delete_stale(ctx, &ns, &old.synced_push_secrets, &Synced::new()).await {
            Ok(()) => state = Some(Synced::new()),
            Err((left, e)) => {
                let msg = format!("failed to cleanup provider secrets: {e}");
                report(ctx, api, ps, old, Outcome::Failed(msg, Some(left))).await?;
                return Err(e);
            }
        }
    }
    let msg = if missing {
        SOURCE_MISSING.to_owned()
    } else {
        err.to_string()
    };
    report(ctx, api, ps, old, Outcome::Failed(msg, state)).await?;
    Err(err)
}

/// The stores of `secretStoreRefs` this controller serves, as `(<Kind>/<name>, store)`.
async fn push_stores(
    ctx: &Context,
    ps: &PushSecret,
    ns: &str,
) -> Result<Vec<(String, ResolvedStore)>, Error> {
    let mut out: BTreeMap<String, ResolvedStore> = BTreeMap::new();
    for (i, r) in ps.spec.secret_store_refs.iter().enumerate() {
        let kind = match r.kind.as_deref() {
            Some("ClusterSecretStore") => "ClusterSecretStore",
            _ => "SecretStore",
        };
        let found = match &r.label_selector {
            Some(sel) => {
                let field = format!("spec.secretStoreRefs[{i}].labelSelector");
                stores_by_label(ctx, kind, ns, &label_selector(Some(sel), &field)?, &field).await?
            }
            None => {
                let name = r.name.clone().unwrap_or_default();
                let store = ctx.store(kind, ns, &name).await?.ok_or_else(|| {
                    Error::Store(format!("could not get {kind} {name:?}: not found"))
                })?;
                vec![store]
            }
        };
        for store in found {
            if !store.is_ours(&ctx.config.controller_class) {
                continue;
            }
            if kind == "ClusterSecretStore" && !namespace_allowed(ctx, &store, ns).await? {
                return Err(Error::Store(format!(
                    "using ClusterSecretStore {:?} is not allowed from namespace {ns:?}",
                    store.name
                )));
            }
            out.insert(format!("{kind}/{}", store.name), store);
        }
    }
    Ok(out.into_iter().collect())
}

async fn stores_by_label(
    ctx: &Context,
    kind: &str,
    ns: &str,
    sel: &LabelSelector,
    field: &str,
) -> Result<Vec<ResolvedStore>, Error> {
    let matches = |labels: &BTreeMap<String, String>| {
        crate::shared::selector_matches(sel, labels)
            .map_err(|e| Error::Spec(format!("{field}: {e}")))
    };
    let mut out = Vec::new();
    if kind == "ClusterSecretStore" {
        let api = Api::<hush_api::external_secrets::ClusterSecretStore>::all(ctx.client.clone());
        for s in api
            .list(&ListParams::default())
            .await
            .map_err(Error::Kube)?
        {
            if matches(s.labels())? {
                out.push(ResolvedStore::from_css(&s));
            }
        }
    } else {
        let api =
            Api::<hush_api::external_secrets::SecretStore>::namespaced(ctx.client.clone(), ns);
        for s in api
            .list(&ListParams::default())
            .await
            .map_err(Error::Kube)?
        {
            if matches(s.labels())? {
                out.push(ResolvedStore::from_ss(&s));
            }
        }
    }
    Ok(out)
}

/// The Secret as pushed: through `template` when set (same engine as ExternalSecrets). As
/// ESO's `applyTemplate`, the template renders into the source Secret itself: its keys are added
/// to the Secret's (whatever `mergePolicy` says; ESO does not read it here), it sets the type
/// (its own, "" when it has none) and adds its labels and annotations to the Secret's.
async fn push_source(ctx: &Context, ps: &PushSecret, secret: &Secret) -> Result<PushSource, Error> {
    let data = secret_data(secret);
    let mut source = PushSource {
        data: BTreeMap::new(),
        labels: secret.labels().clone(),
        annotations: secret.annotations().clone(),
        type_: secret.type_.clone().unwrap_or_default(),
    };
    let Some(t) = &ps.spec.template else {
        source.data = secret_bytes(data);
        return Ok(source);
    };
    let ns = ps.namespace().unwrap_or_default();
    let sources = if t.template_from.is_empty() {
        crate::templating::Sources::default()
    } else {
        crate::templating::fetch_sources(&ctx.client, &ns, t).await?
    };
    let rendered = ctx.render.apply(t, &data, sources).await?;
    source.type_ = rendered.type_.clone().unwrap_or_default();
    source.labels.extend(rendered.labels.clone());
    source.annotations.extend(rendered.annotations.clone());
    let mut merged = data;
    merged.extend(rendered.data);
    source.data = secret_bytes(merged);
    Ok(source)
}

fn secret_bytes(data: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, SecretBytes> {
    data.into_iter()
        .map(|(k, v)| (k, SecretBytes::new(v)))
        .collect()
}

/// Pushes every `data` entry to every store; returns what was synced so far and the first
/// error.
async fn push_all(
    ctx: &Context,
    ps: &PushSecret,
    plan: &Plan,
    stores: &[(String, ResolvedStore)],
    values: &PushSource,
    ns: &str,
) -> (Synced, Result<(), Error>) {
    let mut out = Synced::new();
    for (key, store) in stores {
        let entries = out.entry(key.clone()).or_default();
        let provider = match store.provider(ctx, Some(ns), Freshness::Window).await {
            Ok(p) => p,
            Err(e) => {
                let e = prefixed(
                    e,
                    &format!("could not get secrets client for store {}", store.name),
                );
                return (out, Err(Error::Provider(e)));
            }
        };
        for d in &ps.spec.data {
            match push_entry(&provider, plan, d, values).await {
                Ok(r) => {
                    entries.insert(r.status_key(), d.clone());
                }
                Err(e) => {
                    let key = d.match_.secret_key.clone().unwrap_or_default();
                    let e = prefixed(
                        e,
                        &format!(
                            "could not write remote ref {key} to target secretstore {}",
                            store.name
                        ),
                    );
                    return (out, Err(Error::Provider(e)));
                }
            }
        }
    }
    (out, Ok(()))
}

async fn push_entry(
    provider: &hush_sync::cache::CachedProvider,
    plan: &Plan,
    d: &PushSecretData,
    source: &PushSource,
) -> Result<PushRef, ProviderError> {
    if plan.delete && !provider.deletes_pushed() {
        // Refused before anything is pushed: the finalizer could never be removed.
        return Err(ProviderError::Invalid(
            "spec.deletionPolicy Delete: this store's provider cannot delete what it pushes \
             (ESO: not implemented); use deletionPolicy None"
                .into(),
        ));
    }
    let mut source = source.clone();
    if d.conversion_strategy.as_deref() == Some("ReverseUnicode") {
        source.data = std::mem::take(&mut source.data)
            .into_iter()
            .map(|(k, v)| (reverse_unicode(&k), v))
            .collect();
    }
    let value = entry_value(d, &source.data)?;
    let mut r = push_ref(d);
    r.source = Some(Arc::new(source));
    if plan.if_not_exists && provider.exists(&r).await? {
        return Ok(r);
    }
    provider.push(&value, &r).await?;
    Ok(r)
}

fn push_ref(d: &PushSecretData) -> PushRef {
    PushRef {
        remote_key: d.match_.remote_ref.remote_key.clone(),
        property: d.match_.remote_ref.property.clone().unwrap_or_default(),
        metadata: d.metadata.as_ref().map(|m| m.0.clone()),
        secret_key: d.match_.secret_key.clone().unwrap_or_default(),
        source: None,
    }
}

/// ESO's `ExtractSecretData`: the key's value, or with no `secretKey` the whole Secret as a
/// JSON object of strings (Go's `json.Marshal` without HTML escaping).
pub fn entry_value(
    d: &PushSecretData,
    values: &BTreeMap<String, SecretBytes>,
) -> Result<SecretBytes, ProviderError> {
    match d.match_.secret_key.as_deref().filter(|k| !k.is_empty()) {
        Some(key) => values
            .get(key)
            .cloned()
            .ok_or_else(|| ProviderError::Invalid(format!("secret key {key} does not exist"))),
        None => {
            let map: serde_json::Map<String, Value> = values
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value::String(String::from_utf8_lossy(v.expose()).into_owned()),
                    )
                })
                .collect();
            let text = hush_sync::json::go_marshal_any(&Value::Object(map), false);
            Ok(SecretBytes::new(text.into_bytes()))
        }
    }
}

/// ESO's `ReverseUnicode`: `_UXXXX_` back to the character (the inverse of `Unicode`).
pub fn reverse_unicode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(i) = rest.find("_U") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let decoded = tail
            .get(..5)
            .filter(|t| t.ends_with('_'))
            .and_then(|t| u32::from_str_radix(&t[..4], 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[5..];
            }
            None => {
                out.push_str("_U");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

fn prefixed(e: ProviderError, prefix: &str) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::NotFound(format!("{prefix}: {m}")),
        ProviderError::Denied(m) => ProviderError::Denied(format!("{prefix}: {m}")),
        ProviderError::Throttled(m) => ProviderError::Throttled(format!("{prefix}: {m}")),
        ProviderError::Transient(m) => ProviderError::Transient(format!("{prefix}: {m}")),
        ProviderError::Invalid(m) => ProviderError::Invalid(format!("{prefix}: {m}")),
        other => ProviderError::Invalid(format!("{prefix}: {other}")),
    }
}

/// `new` with the entries of `old` it lacks (ESO's `mergeSecretState`).
fn merge(mut new: Synced, old: &Synced) -> Synced {
    for (store, entries) in old {
        let into = new.entry(store.clone()).or_default();
        for (k, v) in entries {
            into.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    new
}

/// Deletes from the providers what `old` has and `new` lacks. On error, returns the state
/// still remote (for `status.syncedPushSecrets`).
async fn delete_stale(
    ctx: &Context,
    ns: &str,
    old: &Synced,
    new: &Synced,
) -> Result<(), (Synced, Error)> {
    let mut left = merge(new.clone(), old);
    for (store_key, entries) in old {
        let gone: Vec<(&String, &PushSecretData)> = entries
            .iter()
            .filter(|(k, _)| new.get(store_key).is_none_or(|n| !n.contains_key(*k)))
            .collect();
        if gone.is_empty() {
            continue;
        }
        let provider = match store_provider(ctx, ns, store_key).await {
            Ok(p) => p,
            Err(e) => return Err((left, e)),
        };
        for (k, d) in gone {
            if let Err(e) = provider.delete(&push_ref(d)).await {
                return Err((left, Error::Provider(e)));
            }
            if let Some(m) = left.get_mut(store_key) {
                m.remove(k);
            }
        }
        if left.get(store_key).is_some_and(BTreeMap::is_empty) {
            left.remove(store_key);
        }
    }
    Ok(())
}

async fn store_provider(
    ctx: &Context,
    ns: &str,
    store_key: &str,
) -> Result<hush_sync::cache::CachedProvider, Error> {
    let (kind, name) = store_key
        .split_once('/')
        .unwrap_or(("SecretStore", store_key));
    let store = ctx.store(kind, ns, name).await?.ok_or_else(|| {
        Error::Store(format!(
            "could not get secrets client for store {store_key}: not found"
        ))
    })?;
    store
        .provider(ctx, Some(ns), Freshness::Window)
        .await
        .map_err(|e| {
            Error::Provider(prefixed(
                e,
                &format!("could not get secrets client for store {store_key}"),
            ))
        })
}

/// A PushSecret being deleted: with its finalizer, everything pushed is removed first
/// (`deletionPolicy: Delete`); the finalizer goes once that worked.
async fn finalize(ps: &PushSecret, ctx: &Context, api: &Api<PushSecret>) -> Result<Action, Error> {
    if !ps.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let old = ps.status.clone().unwrap_or_default();
    let delete = ps.spec.deletion_policy.as_deref() == Some("Delete");
    if delete
        && let Err((left, e)) = delete_stale(
            ctx,
            &ps.namespace().unwrap_or_default(),
            &old.synced_push_secrets,
            &Synced::new(),
        )
        .await
    {
        let msg = format!("Failed to Delete Secrets from Provider: {e}");
        report(ctx, api, ps, &old, Outcome::Failed(msg, Some(left))).await?;
        return Err(e);
    }
    let rest: Vec<&String> = ps.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    patch_finalizers(api, ps, json!(rest)).await?;
    Ok(Action::await_change())
}

/// The result of a reconcile, for status and events.
enum Outcome {
    /// `Ready=True/Synced`.
    Done {
        synced: Synced,
        refresh_time: String,
        resource_version: String,
        if_not_exists: bool,
    },
    /// `Ready=False/Errored` with the message, and the synced state when it changed.
    Failed(String, Option<Synced>),
}

/// Writes the status (a merge patch; entries gone from `syncedPushSecrets` are nulled) when it
/// changed, and an event (ESO: one per reconcile).
async fn report(
    ctx: &Context,
    api: &Api<PushSecret>,
    ps: &PushSecret,
    old: &PushSecretStatus,
    outcome: Outcome,
) -> Result<(), Error> {
    let mut status = old.clone();
    let (ready, reason, message) = match outcome {
        Outcome::Done {
            synced,
            refresh_time,
            resource_version,
            if_not_exists,
        } => {
            status.synced_push_secrets = synced;
            status.refresh_time = Some(refresh_time);
            status.synced_resource_version = Some(resource_version);
            let mut msg = SYNCED_MESSAGE.to_owned();
            if if_not_exists {
                msg.push_str(". Existing secrets in providers unchanged.");
            }
            (true, SYNCED, msg)
        }
        Outcome::Failed(msg, synced) => {
            if let Some(s) = synced {
                status.synced_push_secrets = s;
            }
            (false, ERRORED, msg)
        }
    };
    set_ready(&mut status, ready, reason, &message);
    let (type_, note) = if ready {
        (EventType::Normal, message)
    } else {
        (EventType::Warning, message)
    };
    ctx.event(false, ps, type_, reason, note).await;
    if &status == old {
        return Ok(());
    }
    let mut body = serde_json::to_value(&status).unwrap_or(Value::Null);
    body["syncedPushSecrets"] = synced_patch(&old.synced_push_secrets, &status.synced_push_secrets);
    for f in ["refreshTime", "syncedResourceVersion"] {
        if body.get(f).is_none() {
            body[f] = Value::Null;
        }
    }
    api.patch_status(
        &ps.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": body })),
    )
    .await
    .map(|_| ())
    .or_else(|e| match e {
        kube::Error::Api(s) if s.code == 404 => Ok(()),
        e => Err(Error::Kube(e)),
    })
}

/// The merge patch of `syncedPushSecrets`: `new`, with `null` for what `old` had and `new` lacks.
fn synced_patch(old: &Synced, new: &Synced) -> Value {
    let mut out = serde_json::to_value(new).unwrap_or_else(|_| json!({}));
    for (store, entries) in old {
        match new.get(store) {
            None => out[store] = Value::Null,
            Some(n) => {
                for k in entries.keys().filter(|k| !n.contains_key(*k)) {
                    out[store][k] = Value::Null;
                }
            }
        }
    }
    out
}

/// Sets `Ready`; `lastTransitionTime` moves only when the status flips (ESO).
fn set_ready(status: &mut PushSecretStatus, ready: bool, reason: &str, message: &str) {
    let text = if ready { "True" } else { "False" };
    let previous = status.conditions.iter().find(|c| c.type_ == "Ready");
    if previous.is_some_and(|p| {
        p.status == text
            && p.reason.as_deref() == Some(reason)
            && p.message.as_deref() == Some(message)
    }) {
        return;
    }
    let ltt = match previous {
        Some(p) if p.status == text => p.last_transition_time.clone(),
        _ => Some(now_rfc3339()),
    };
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(Condition {
        type_: "Ready".into(),
        status: text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: ltt,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_api::push_secrets::{PushSecretMatch, PushSecretRemoteRef};

    fn ps(spec: Value) -> PushSecret {
        serde_json::from_value(json!({
            "apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": "p", "namespace": "n"}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn plans_name_the_field_they_refuse() {
        let ok = ps(
            json!({"secretStoreRefs": [{"name": "s"}], "selector": {"secret": {"name": "x"}},
            "deletionPolicy": "Delete", "updatePolicy": "IfNotExists", "refreshInterval": "0"}),
        );
        assert_eq!(
            plan(&ok).unwrap(),
            Plan {
                refresh: None,
                if_not_exists: true,
                delete: true
            }
        );
        let base = json!({"selector": {"secret": {"name": "x"}}});
        for (field, value, named) in [
            (
                "dataTo",
                json!([{"storeRef": {"name": "s"}}]),
                "spec.dataTo",
            ),
            ("updatePolicy", json!("Sometimes"), "spec.updatePolicy"),
            ("deletionPolicy", json!("Orphan"), "spec.deletionPolicy"),
            ("refreshInterval", json!("soon"), "spec.refreshInterval"),
            (
                "selector",
                json!({"generatorRef": {"kind": "Password", "name": "p"}, "secret": {"name": "x"}}),
                "not both",
            ),
            (
                "secretStoreRefs",
                json!([{"kind": "Store"}]),
                "secretStoreRefs[0]",
            ),
        ] {
            let mut spec = base.clone();
            spec[field] = value;
            let err = plan(&ps(spec)).unwrap_err();
            assert!(err.contains(named), "{err}");
        }
        let generated = json!({"selector": {"generatorRef": {"kind": "Password", "name": "p"}}});
        assert!(plan(&ps(generated)).is_ok());
    }

    #[test]
    fn whole_secret_and_reverse_unicode() {
        let values: BTreeMap<String, SecretBytes> = [
            ("b".to_owned(), SecretBytes::from("<2>")),
            ("a".to_owned(), SecretBytes::from("1")),
        ]
        .into();
        let d = PushSecretData {
            match_: PushSecretMatch {
                secret_key: None,
                remote_ref: PushSecretRemoteRef {
                    remote_key: "k".into(),
                    property: None,
                },
            },
            ..PushSecretData::default()
        };
        assert_eq!(
            entry_value(&d, &values).unwrap().expose(),
            br#"{"a":"1","b":"<2>"}"#
        );
        let mut d = d;
        d.match_.secret_key = Some("missing".into());
        assert!(entry_value(&d, &values).is_err());
        assert_eq!(reverse_unicode("a_U002f_b_U00e9_"), "a/bé");
        assert_eq!(reverse_unicode("x_Uzz_y_U"), "x_Uzz_y_U");
    }

    #[test]
    fn removed_entries_are_nulled_in_the_patch() {
        let e = PushSecretData::default();
        let old: Synced = [
            (
                "SecretStore/a".to_owned(),
                [("k1".to_owned(), e.clone()), ("k2".to_owned(), e.clone())].into(),
            ),
            (
                "SecretStore/b".to_owned(),
                [("k".to_owned(), e.clone())].into(),
            ),
        ]
        .into();
        let new: Synced = [("SecretStore/a".to_owned(), [("k1".to_owned(), e)].into())].into();
        let p = synced_patch(&old, &new);
        assert!(p["SecretStore/b"].is_null());
        assert!(p["SecretStore/a"]["k2"].is_null());
        assert!(p["SecretStore/a"]["k1"].is_object());
    }
}
