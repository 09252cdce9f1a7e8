//! The ExternalSecret reconciler: plain [`reconcile`] and [`error_policy`] functions
//! (controller-rs shape) with ESO's semantics (`ESO:pkg/controllers/externalsecret`,
//! `docs/external-secrets.md` §4).

mod fetch;
mod schedule;
mod spec;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hush_api::external_secrets::{Condition, ExternalSecret};
use hush_operator::events::EventType;
use hush_sync::cache::Freshness;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource as _, ResourceExt as _};
use serde_json::json;

use self::fetch::{fetch_all, resolve_stores};
use self::schedule::{WAKE_SLACK, read_freshness, refresh_due, secret_valid, should_refresh};
pub(crate) use self::spec::target_name;
use self::spec::{CreationPolicy, DeletionPolicy, Policies, refresh_interval, validate};
pub use self::write::FINALIZER;
use self::write::{Outcome, delete_orphans, finalize, write_secret};
use crate::context::{Context, ResolvedStore};
use crate::shared::now_rfc3339;
use crate::{Error, eso, lane};

/// Reconciles one ExternalSecret: a deleted one is finalized; otherwise [`plan`] decides
/// whether a sync is due, and a due sync fetches, writes the target and reports `Ready`.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let started_at = now_rfc3339();
    if es.meta().deletion_timestamp.is_some() {
        return finalize_deleted(&es, &ctx).await;
    }
    let ns = es.namespace().unwrap_or_default();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut sync = match plan(&es, &ctx, &api).await? {
        Plan::Done(action) => return Ok(action),
        Plan::Sync(sync) => sync,
    };
    let Some(_admission) = ctx.lanes.admit(sync.first_sync).await else {
        return Ok(Action::requeue(lane::yield_delay()));
    };
    let data = fetch(&es, &ctx, &api, &sync).await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    // ESO's deleteOrphanedSecrets: Secrets this ExternalSecret created under a former target
    // name. Only a changed spec renames the target, so only then is the cache searched.
    let deletion = sync.policies.deletion;
    if sync.policies.creation == CreationPolicy::Owner
        && sync.spec_changed
        && !(data.is_empty() && matches!(deletion, DeletionPolicy::Delete | DeletionPolicy::Retain))
        && let Err(e) = delete_orphans(&es, &ctx, &secrets, &sync.target_name).await
    {
        mark_failed(
            &api,
            &ctx,
            &es,
            "could not delete orphaned secrets",
            e.to_string(),
        )
        .await?;
        return Err(e);
    }
    let existing = sync.existing.take();
    let outcome = match write_target(&es, &ctx, &secrets, &sync, existing, &data).await? {
        Ok(o) => o,
        Err(e) => return write_failed(&api, &ctx, &es, e).await,
    };
    let action = synced(&api, &ctx, &es, &sync, &outcome, started_at).await?;
    tracing::debug!(namespace = %ns, name = %es.name_any(), elapsed_ms = start.elapsed().as_millis() as u64, "externalsecret synced");
    Ok(action)
}

/// A deleted ExternalSecret: forgotten by the scheduling state, its finalizer handled unless
/// its store belongs to another controller class (ESO during a migration), which cleans up.
async fn finalize_deleted(es: &ExternalSecret, ctx: &Context) -> Result<Action, Error> {
    ctx.recent.forget(es);
    ctx.first_seen.forget(es);
    if matches!(resolve_stores(es, ctx).await, Err(Error::NotOurs)) {
        return Ok(Action::await_change());
    }
    // Owned Secrets go with their ExternalSecret through the ownerReference.
    finalize(es, ctx).await
}

/// What [`plan`] decided.
enum Plan {
    /// Nothing to sync now: come back as the action says.
    Done(Action),
    /// A sync is due.
    Sync(Box<Sync>),
}

/// A due sync: what the reconcile found before reading any provider.
struct Sync {
    stores: BTreeMap<(String, String), ResolvedStore>,
    policies: Policies,
    target_name: String,
    /// The target as last seen (taken by the write).
    existing: Option<Secret>,
    /// `existing` came from the watch cache, which may lag behind this process's writes.
    from_cache: bool,
    /// `syncedResourceVersion` this sync will record.
    current_rv: String,
    interval: Option<Duration>,
    spec_changed: bool,
    /// `Ready=True` before this sync.
    synced_before: bool,
    /// The spec changed or the target is not valid: the first-sync lane admits it.
    first_sync: bool,
    /// The synced spec's Secret was deleted or edited by hand.
    drifted: bool,
    freshness: Freshness,
}

/// Whether `es` needs a sync now (ESO's shouldRefresh and a valid target) and, if so, what it
/// works from: its stores (another controller class's: left alone), policies and target. An
/// unusable spec or store is marked failed.
async fn plan(
    es: &ExternalSecret,
    ctx: &Context,
    api: &Api<ExternalSecret>,
) -> Result<Plan, Error> {
    // Stores of another controller class are not ours (ESO's `shouldSkipClusterSecretStore`).
    let stores = match resolve_stores(es, ctx).await {
        Ok(s) => s,
        Err(Error::NotOurs) => return Ok(Plan::Done(Action::await_change())),
        Err(e) => {
            let msg = e.to_string();
            mark_failed(api, ctx, es, &msg, msg.clone()).await?;
            return Err(e);
        }
    };
    let policies = match validate(es) {
        Ok(p) => p,
        Err(msg) => {
            mark_failed(api, ctx, es, &msg, msg.clone()).await?;
            return Ok(Plan::Done(Action::await_change()));
        }
    };
    let ns = es.namespace().unwrap_or_default();
    let target_name = target_name(es);
    let creation = policies.creation;
    let (existing, from_cache) = ctx
        .secret(&ns, &target_name, creation == CreationPolicy::Owner)
        .await?;
    let current_rv = eso::synced_resource_version(
        es.meta().generation.unwrap_or(0),
        es.labels(),
        es.annotations(),
    );
    let interval = refresh_interval(es)?;
    let mut status = es.status.clone().unwrap_or_default();
    ctx.recent.apply(es, &current_rv, &mut status);
    let spec_changed = status.synced_resource_version.as_deref() != Some(current_rv.as_str());
    let now = SystemTime::now();
    let valid = secret_valid(creation, existing.as_ref());
    if !should_refresh(es, &status, &current_rv, interval, now) && valid {
        let wait = interval
            .and_then(|i| refresh_due(status.refresh_time.as_deref(), i))
            .and_then(|due| due.duration_since(now).ok())
            .filter(|d| !d.is_zero());
        let action = wait.map_or_else(Action::await_change, |w| Action::requeue(w + WAKE_SLACK));
        return Ok(Plan::Done(action));
    }
    let first_sync = spec_changed || !valid;
    let freshness = read_freshness(
        es,
        ctx.first_seen.get(es),
        &status,
        spec_changed,
        first_sync,
        interval,
        ctx.config.read_window,
        now,
    );
    // This spec was synced, yet the Secret is gone or not what was written: a hand edit or
    // deletion, counted on the Secret (hush_operator::drift).
    if let Some(found) = &existing {
        ctx.drift.remember(&ns, &target_name, found.annotations());
    }
    let synced_before = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Ok(Plan::Sync(Box::new(Sync {
        stores,
        policies,
        target_name,
        existing,
        from_cache,
        current_rv,
        interval,
        spec_changed,
        synced_before,
        first_sync,
        drifted: synced_before && !spec_changed && !valid,
        freshness,
    })))
}

/// The provider data of a due sync; on failure the last good Secret stays and `es` is marked
/// failed (the real error goes to the event only).
async fn fetch(
    es: &ExternalSecret,
    ctx: &Context,
    api: &Api<ExternalSecret>,
    sync: &Sync,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let ns = es.namespace().unwrap_or_default();
    let deletion = sync.policies.deletion;
    match fetch_all(es, ctx, &sync.stores, &ns, deletion, sync.freshness).await {
        Ok(data) => Ok(data),
        Err(e) => {
            let uids: Vec<&str> = sync.stores.values().map(|s| s.uid.as_str()).collect();
            let e = lane::throttled(e, &ctx.cache, &uids).await;
            mark_failed(
                api,
                ctx,
                es,
                "could not get secret data from provider",
                e.to_string(),
            )
            .await?;
            Err(e)
        }
    }
}

/// Writes the target from `existing`, and once more on what the API server has when the watch
/// cache had not seen the latest write yet (a conflict). The outer error is a failed GET; the
/// inner one the write's, for [`write_failed`].
async fn write_target(
    es: &ExternalSecret,
    ctx: &Context,
    secrets: &Api<Secret>,
    sync: &Sync,
    existing: Option<Secret>,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Result<Outcome, Error>, Error> {
    let target = &sync.target_name;
    let write = |existing: Option<Secret>, drifted: bool| {
        write_secret(
            es,
            ctx,
            secrets,
            target,
            existing,
            data,
            sync.policies,
            drifted,
        )
    };
    let written = write(existing, sync.drifted).await;
    if !(sync.from_cache
        && matches!(&written, Err(Error::Kube(kube::Error::Api(s))) if s.code == 409))
    {
        return Ok(written);
    }
    let live = secrets.get_opt(target).await.map_err(Error::Kube)?;
    // Judged again on the live Secret: one this process just wrote is no hand edit.
    let drifted = sync.synced_before
        && !sync.spec_changed
        && !secret_valid(sync.policies.creation, live.as_ref());
    Ok(write(live, drifted).await)
}

/// A written sync: its event, `Ready=True` with the sync's time and version (and the binding
/// when ESO binds: the Secret was created or updated), noted for stale cached copies of `es`;
/// the action comes back at the next refresh.
async fn synced(
    api: &Api<ExternalSecret>,
    ctx: &Context,
    es: &ExternalSecret,
    sync: &Sync,
    outcome: &Outcome,
    started_at: String,
) -> Result<Action, Error> {
    let bound = matches!(outcome, Outcome::Synced { .. });
    let (reason, message) = report(ctx, es, outcome).await;
    let binding = bound.then(|| sync.target_name.clone());
    ctx.ready.note(es, true);
    let synced = (started_at.clone(), sync.current_rv.clone(), binding);
    set_ready(api, es, true, reason, message, Some(synced)).await?;
    ctx.recent.record(es, &sync.current_rv, &started_at);
    ctx.first_seen.forget(es);
    let next = sync
        .interval
        .and_then(|i| refresh_due(Some(&started_at), i))
        .map(|due| due.duration_since(SystemTime::now()).unwrap_or_default() + WAKE_SLACK);
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Why a new annotation would not make `es` read its provider again (ESO's `shouldRefresh`):
/// `refreshPolicy: CreatedOnce`, or `refreshInterval: 0` once synced. `None`: it would.
pub(crate) fn refresh_refused(es: &ExternalSecret) -> Option<String> {
    let synced = es
        .status
        .as_ref()
        .and_then(|s| s.synced_resource_version.as_deref())
        .is_some_and(|rv| !rv.is_empty());
    match es.spec.refresh_policy.as_deref().unwrap_or("Periodic") {
        "CreatedOnce" if synced => Some(
            "refreshPolicy is CreatedOnce: it is never read again (change its spec instead)".into(),
        ),
        "Periodic" if synced => match refresh_interval(es) {
            Ok(None) => Some(
                "refreshInterval is 0: it is never read again (change its spec or refreshInterval)"
                    .into(),
            ),
            Ok(Some(_)) => None,
            Err(e) => Some(e.to_string()),
        },
        _ => None,
    }
}

/// A failed write: `Ready=False` with a message that names objects and keys only, a Warning
/// `UpdateFailed` event with the error; what no retry can fix waits for a change.
async fn write_failed(
    api: &Api<ExternalSecret>,
    ctx: &Context,
    es: &ExternalSecret,
    e: Error,
) -> Result<Action, Error> {
    let msg = match &e {
        Error::Immutable => "could not update secret, target is immutable".to_owned(),
        Error::OwnedByOther => "target is owned by another ExternalSecret".to_owned(),
        // Names of objects and keys only, never values.
        Error::Template(_) | Error::Spec(_) | Error::ControlledByOther { .. } => e.to_string(),
        _ => "could not update secret".to_owned(),
    };
    mark_failed(api, ctx, es, &msg, e.to_string()).await?;
    match e {
        Error::Immutable
        | Error::OwnedByOther
        | Error::ControlledByOther { .. }
        | Error::Template(_) => Ok(Action::await_change()),
        other => Err(other),
    }
}

/// The `Ready` reason and message of a sync's outcome, after its event (ESO's).
async fn report(
    ctx: &Context,
    es: &ExternalSecret,
    outcome: &Outcome,
) -> (&'static str, &'static str) {
    let status = match outcome {
        Outcome::Synced { .. } | Outcome::NoWrite => ("SecretSynced", "secret synced"),
        Outcome::Retained => (
            "SecretSynced",
            "secret retained due to DeletionPolicy=Retain",
        ),
        Outcome::Deleted { .. } => (
            "SecretDeleted",
            "secret deleted due to DeletionPolicy=Delete",
        ),
        Outcome::Missing => (
            "SecretMissing",
            "secret will not be created due to CreationPolicy=Merge",
        ),
    };
    match outcome {
        Outcome::Synced { created: true, .. } => {
            ctx.event(
                false,
                es,
                EventType::Normal,
                "Created",
                "secret created".into(),
            )
            .await;
        }
        Outcome::Synced { changed: true, .. } => {
            ctx.event(
                false,
                es,
                EventType::Normal,
                "Updated",
                "secret updated".into(),
            )
            .await;
        }
        // As ESO: only when there was a Secret to delete.
        Outcome::Deleted { existed: true } => {
            ctx.event(
                false,
                es,
                EventType::Normal,
                "Deleted",
                "secret deleted due to DeletionPolicy".into(),
            )
            .await;
        }
        _ => {}
    }
    status
}

/// Requeue policy: provider throttling backs off longer; everything else retries soon.
pub fn error_policy(es: Arc<ExternalSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = %es.namespace().unwrap_or_default(), name = %es.name_any(), error = %err, "externalsecret sync failed");
    Action::requeue(err.retry_after())
}

/// ESO's markAsFailed: a Warning `UpdateFailed` event with `note` (the error's text), then
/// `Ready=False/SecretSyncedError` with `message`. The event goes first, as in ESO, so whoever
/// sees the failed status also finds the event that explains it.
async fn mark_failed(
    api: &Api<ExternalSecret>,
    ctx: &Context,
    es: &ExternalSecret,
    message: &str,
    note: String,
) -> Result<(), Error> {
    ctx.event(false, es, EventType::Warning, "UpdateFailed", note)
        .await;
    ctx.ready.note(es, false);
    set_ready(api, es, false, "SecretSyncedError", message, None).await
}

/// Writes the Ready condition (and, on success, refreshTime/syncedResourceVersion/binding);
/// `lastTransitionTime` changes only when the status flips. Skipped when nothing changed.
async fn set_ready(
    api: &Api<ExternalSecret>,
    es: &ExternalSecret,
    ready: bool,
    reason: &str,
    message: &str,
    synced: Option<(String, String, Option<String>)>,
) -> Result<(), Error> {
    let old = es.status.clone().unwrap_or_default();
    let status_text = if ready { "True" } else { "False" };
    let previous = old.conditions.iter().find(|c| c.type_ == "Ready");
    let ltt = match previous {
        Some(p) if p.status == status_text => p.last_transition_time.clone(),
        _ => Some(now_rfc3339()),
    };
    let condition = Condition {
        type_: "Ready".into(),
        status: status_text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: ltt,
    };
    let mut status = old.clone();
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(condition);
    if let Some((time, rv, binding)) = synced {
        status.refresh_time = Some(time);
        status.synced_resource_version = Some(rv);
        if let Some(target) = binding {
            status.binding = Some(hush_api::external_secrets::Binding { name: Some(target) });
        }
    }
    if status == old {
        return Ok(());
    }
    api.patch_status(
        &es.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use hush_api::external_secrets::ExternalSecret;
    use serde_json::json;

    /// An ExternalSecret `n/x` of generation 2 with `spec`.
    pub(super) fn es(spec: serde_json::Value) -> ExternalSecret {
        serde_json::from_value(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "x", "namespace": "n", "generation": 2},
            "spec": spec
        }))
        .unwrap()
    }
}
