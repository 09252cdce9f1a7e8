//! hush (opt-in, `--key-retire-after`): retire sealing keys no SealedSecret needs any more.
//!
//! Bitnami's controller keeps every key forever (sealed-secrets #336). The leader checks, every
//! resync period, each key older than the cut-off except the newest: when every SealedSecret in
//! the controller's namespaces is synced for its current generation and the keys that opened it
//! are recorded on its Secret (`reconcile::KEY_ANNOTATION`), a key none of them names is retired.
//! Any SealedSecret that is not synced, or whose keys are not recorded, stops the whole round:
//! a key in use is never retired.
//!
//! Retiring relabels the key Secret `sealedsecrets.bitnami.com/sealed-secrets-key: retired`
//! (hush and Bitnami load only `active` keys; relabelling back to `active` undoes it) and notes
//! the time in `sealedsecrets.hush.dev/retired-at`; an event `KeyRetired` names the key and the
//! counter `hush_sealed_keys_retired_total` grows. The Secret itself is left for the operator
//! to back up and delete.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use hush_api::sealed_secret::SealedSecret;
use hush_operator::events::{EventType, Note};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams, PostParams};

use crate::config::Namespaces;
use crate::keys::{KEY_LABEL, KeyEntry};
use crate::reconcile::{Context, KEY_ANNOTATION, annotated_keys};
use crate::{Error, Result};

/// The label value of a retired key.
pub const KEY_LABEL_RETIRED: &str = "retired";
/// When a key was retired (RFC 3339).
pub const RETIRED_AT_ANNOTATION: &str = "sealedsecrets.hush.dev/retired-at";

/// Why no key can be retired this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// A SealedSecret is not synced for its current generation.
    NotSynced(String),
    /// A synced SealedSecret's Secret does not record its keys.
    NoRecordedKey(String),
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::NotSynced(s) => write!(f, "SealedSecret {s} is not synced"),
            Blocked::NoRecordedKey(s) => {
                write!(f, "the Secret of SealedSecret {s} does not record its key")
            }
        }
    }
}

/// The leader's retirement loop: a round at once, then every resync period, until `shutdown`.
/// Does nothing when `--key-retire-after` is zero.
pub async fn run(ctx: Arc<Context>, shutdown: hush_operator::Shutdown) {
    if ctx.config.key_retire_after.is_zero() {
        return;
    }
    loop {
        match round(&ctx).await {
            Ok(retired) if !retired.is_empty() => {
                tracing::info!(keys = ?retired, "sealing keys retired");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "key retirement round failed"),
        }
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(ctx.config.resync_period.max(std::time::Duration::from_secs(1))) => {}
        }
    }
}

/// One round: the names of the keys retired.
pub(crate) async fn round(ctx: &Context) -> Result<Vec<String>> {
    let snapshot = ctx.keys.snapshot();
    let cutoff = Timestamp::now()
        .as_second()
        .saturating_sub(i64::try_from(ctx.config.key_retire_after.as_secs()).unwrap_or(i64::MAX));
    let candidates = candidates(snapshot.entries(), snapshot.newest(), cutoff);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let needed = match keys_in_use(ctx).await? {
        Ok(needed) => needed,
        Err(blocked) => {
            tracing::info!(reason = %blocked, "no sealing key retired this round");
            return Ok(Vec::new());
        }
    };
    let mut retired = Vec::new();
    for key in candidates {
        if !needed.contains(&key.name) {
            retire(ctx, key).await?;
            retired.push(key.name.clone());
        }
    }
    Ok(retired)
}

/// Keys old enough to retire: older than `cutoff` (Unix seconds), never the newest.
fn candidates<'a>(
    entries: &'a [KeyEntry],
    newest: Option<&KeyEntry>,
    cutoff: i64,
) -> Vec<&'a KeyEntry> {
    let newest = newest.map(|k| k.name.as_str());
    entries
        .iter()
        .filter(|k| Some(k.name.as_str()) != newest && k.ordering <= cutoff)
        .collect()
}

/// The keys the SealedSecrets in the controller's namespaces need, or why that is not known.
async fn keys_in_use(ctx: &Context) -> Result<std::result::Result<BTreeSet<String>, Blocked>> {
    let scopes: Vec<Option<&str>> = match &ctx.config.namespaces {
        Namespaces::All => vec![None],
        Namespaces::List(list) => list.iter().map(|ns| Some(ns.as_str())).collect(),
    };
    let mut needed = BTreeSet::new();
    for scope in scopes {
        let sealed: Api<SealedSecret> = crate::api(&ctx.client, scope);
        let secrets: Api<Secret> = crate::api(&ctx.client, scope);
        let list = sealed
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::Kube {
                what: "list SealedSecrets (key retirement)",
                source,
            })?;
        let recorded: HashMap<(String, String), String> = secrets
            .list_metadata(&ListParams::default())
            .await
            .map_err(|source| Error::Kube {
                what: "list Secret metadata (key retirement)",
                source,
            })?
            .items
            .into_iter()
            .filter_map(|m| {
                let keys = m.annotations().get(KEY_ANNOTATION)?.clone();
                Some(((m.namespace()?, m.name_any()), keys))
            })
            .collect();
        for ss in &list.items {
            match keys_of(ss, &recorded) {
                Ok(keys) => needed.extend(keys),
                Err(blocked) => return Ok(Err(blocked)),
            }
        }
    }
    Ok(Ok(needed))
}

/// The keys one SealedSecret needs: recorded on its Secret, trusted only when the SealedSecret
/// is synced for its current generation.
fn keys_of(
    ss: &SealedSecret,
    recorded: &HashMap<(String, String), String>,
) -> std::result::Result<Vec<String>, Blocked> {
    let id = (ss.namespace().unwrap_or_default(), ss.name_any());
    let synced = ss.status.as_ref().is_some_and(|s| {
        s.observed_generation == ss.metadata.generation
            && s.synced().is_some_and(|c| c.status == "True")
    });
    if !synced {
        return Err(Blocked::NotSynced(format!("{}/{}", id.0, id.1)));
    }
    match recorded.get(&id) {
        Some(v) => Ok(annotated_keys(v).map(str::to_owned).collect()),
        None => Err(Blocked::NoRecordedKey(format!("{}/{}", id.0, id.1))),
    }
}

/// Relabels the key Secret as retired (get and update: the verbs the chart grants), then posts
/// the event and counts it.
async fn retire(ctx: &Context, key: &KeyEntry) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.key_namespace);
    let kube = |what, source| Error::Kube { what, source };
    let mut secret = api
        .get(&key.name)
        .await
        .map_err(|e| kube("get the key Secret to retire", e))?;
    secret
        .labels_mut()
        .insert(KEY_LABEL.into(), KEY_LABEL_RETIRED.into());
    secret
        .annotations_mut()
        .insert(RETIRED_AT_ANNOTATION.into(), Timestamp::now().to_string());
    api.replace(&key.name, &PostParams::default(), &secret)
        .await
        .map_err(|e| kube("relabel the retired key Secret", e))?;
    ctx.metrics.key_retired();
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Secret".into()),
        name: Some(key.name.clone()),
        namespace: Some(ctx.config.key_namespace.clone()),
        uid: secret.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let note = Note {
        type_: EventType::Normal,
        reason: "KeyRetired",
        note: format!(
            "sealing key {} retired: no SealedSecret needs it and it is older than {}s; the \
             Secret is kept, labelled {KEY_LABEL}={KEY_LABEL_RETIRED} (back it up, then delete it)",
            key.name,
            ctx.config.key_retire_after.as_secs()
        ),
        action: "RetireKey",
    };
    if let Err(e) = ctx.events.post(&regarding, note).await {
        tracing::warn!(error = %e, key = %key.name, "cannot publish the KeyRetired event");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sealed(generation: i64, observed: i64, synced: &str) -> SealedSecret {
        serde_json::from_value(json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "s", "namespace": "ns", "generation": generation},
            "spec": {"encryptedData": {}},
            "status": {"observedGeneration": observed, "conditions": [
                {"type": "Synced", "status": synced}
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn only_synced_sealed_secrets_with_recorded_keys_count() {
        let recorded: HashMap<(String, String), String> =
            [(("ns".into(), "s".into()), "k1,k2".into())].into();
        assert_eq!(
            keys_of(&sealed(2, 2, "True"), &recorded).unwrap(),
            ["k1", "k2"]
        );
        assert_eq!(
            keys_of(&sealed(3, 2, "True"), &recorded),
            Err(Blocked::NotSynced("ns/s".into()))
        );
        assert_eq!(
            keys_of(&sealed(2, 2, "False"), &recorded),
            Err(Blocked::NotSynced("ns/s".into()))
        );
        assert_eq!(
            keys_of(&sealed(2, 2, "True"), &HashMap::new()),
            Err(Blocked::NoRecordedKey("ns/s".into()))
        );
    }
}
