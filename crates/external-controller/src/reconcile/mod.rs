//! The ExternalSecret reconciler: plain [`reconcile`] and [`error_policy`] functions
//! (controller-rs shape) with ESO's semantics (`ESO:pkg/controllers/externalsecret`,
//! `docs/external-secrets.md` §4).

mod fetch;
mod schedule;
mod spec;
mod write;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hush_api::external_secrets::{Condition, ExternalSecret};
use hush_operator::events::EventType;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource as _, ResourceExt as _};
use serde_json::json;

use self::fetch::{fetch_all, resolve_stores};
use self::schedule::{WAKE_SLACK, read_freshness, refresh_due, secret_valid, should_refresh};
pub(crate) use self::spec::target_name;
use self::spec::{CreationPolicy, DeletionPolicy, refresh_interval, validate};
pub use self::write::FINALIZER;
use self::write::{Outcome, delete_orphans, finalize, write_secret};
use crate::context::Context;
use crate::shared::now_rfc3339;
use crate::{Error, eso, lane};

/// Reconciles one ExternalSecret.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let started_at = now_rfc3339();
    let ns = es.namespace().unwrap_or_default();
    let name = es.name_any();
    if es.meta().deletion_timestamp.is_some() {
        ctx.recent.forget(&es);
        ctx.first_seen.forget(&es);
        // An ExternalSecret whose store belongs to another controller class (ESO during a
        // migration) is cleaned up by that controller.
        if matches!(resolve_stores(&es, &ctx).await, Err(Error::NotOurs)) {
            return Ok(Action::await_change());
        }
        // Owned Secrets go with their ExternalSecret through the ownerReference.
        return finalize(&es, &ctx).await;
    }
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);

    // Stores of another controller class are not ours (ESO's `shouldSkipClusterSecretStore`).
    let stores = match resolve_stores(&es, &ctx).await {
        Ok(s) => s,
        Err(Error::NotOurs) => return Ok(Action::await_change()),
        Err(e) => {
            let msg = e.to_string();
            mark_failed(&api, &ctx, &es, &msg, msg.clone()).await?;
            return Err(e);
        }
    };

    let policies = match validate(&es) {
        Ok(p) => p,
        Err(msg) => {
            mark_failed(&api, &ctx, &es, &msg, msg.clone()).await?;
            return Ok(Action::await_change());
        }
    };

    let target_name = target_name(&es);
    let (creation, deletion) = (policies.creation, policies.deletion);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let (existing, from_cache) = ctx
        .secret(&ns, &target_name, creation == CreationPolicy::Owner)
        .await?;

    let current_rv = eso::synced_resource_version(
        es.meta().generation.unwrap_or(0),
        es.labels(),
        es.annotations(),
    );
    let interval = refresh_interval(&es)?;
    let mut status = es.status.clone().unwrap_or_default();
    ctx.recent.apply(&es, &current_rv, &mut status);
    let spec_changed = status.synced_resource_version.as_deref() != Some(current_rv.as_str());
    let now = SystemTime::now();
    if !should_refresh(&es, &status, &current_rv, interval, now)
        && secret_valid(creation, existing.as_ref())
    {
        let wait = interval
            .and_then(|i| refresh_due(status.refresh_time.as_deref(), i))
            .and_then(|due| due.duration_since(now).ok())
            .filter(|d| !d.is_zero());
        return Ok(wait.map_or_else(Action::await_change, |w| Action::requeue(w + WAKE_SLACK)));
    }
    let first_sync = spec_changed || !secret_valid(creation, existing.as_ref());
    let freshness = read_freshness(
        &es,
        ctx.first_seen.get(&es),
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
    let drifted = synced_before && !spec_changed && !secret_valid(creation, existing.as_ref());
    let Some(_admission) = ctx.lanes.admit(first_sync).await else {
        return Ok(Action::requeue(lane::yield_delay()));
    };

    // Fetch.
    let data = match fetch_all(&es, &ctx, &stores, &ns, deletion, freshness).await {
        Ok(d) => d,
        Err(e) => {
            let uids: Vec<&str> = stores.values().map(|s| s.uid.as_str()).collect();
            let e = lane::throttled(e, &ctx.cache, &uids).await;
            // The last good Secret stays; the real error goes to the event only.
            mark_failed(
                &api,
                &ctx,
                &es,
                "could not get secret data from provider",
                e.to_string(),
            )
            .await?;
            return Err(e);
        }
    };

    // ESO's deleteOrphanedSecrets: Secrets this ExternalSecret created under a former target
    // name. Only a changed spec renames the target, so only then is the cache searched.
    if creation == CreationPolicy::Owner
        && spec_changed
        && !(data.is_empty() && matches!(deletion, DeletionPolicy::Delete | DeletionPolicy::Retain))
        && let Err(e) = delete_orphans(&es, &ctx, &secrets, &target_name).await
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

    let write = |existing: Option<Secret>, drifted: bool| {
        let (es, ctx, secrets, target) = (&*es, &*ctx, &secrets, &target_name);
        write_secret(es, ctx, secrets, target, existing, &data, policies, drifted)
    };
    let mut written = write(existing, drifted).await;
    // The watch cache had not seen the latest write yet: once more on what the API server has.
    if from_cache && matches!(&written, Err(Error::Kube(kube::Error::Api(s))) if s.code == 409) {
        let live = secrets.get_opt(&target_name).await.map_err(Error::Kube)?;
        // Judged again on the live Secret: one this process just wrote is no hand edit.
        let drifted = synced_before && !spec_changed && !secret_valid(creation, live.as_ref());
        written = write(live, drifted).await;
    }
    let outcome = match written {
        Ok(o) => o,
        Err(e) => return write_failed(&api, &ctx, &es, e).await,
    };
    // ESO binds the Secret it created or updated; otherwise the binding stays as it was.
    let bound = matches!(outcome, Outcome::Synced { .. });
    let (reason, message) = report(&ctx, &es, &outcome).await;
    let synced = (started_at.clone(), current_rv.clone());
    let binding = bound.then_some(target_name);
    ctx.ready.note(&*es, true);
    set_ready(
        &api,
        &es,
        true,
        reason,
        message,
        Some((started_at, current_rv, binding)),
    )
    .await?;
    ctx.recent.record(&es, &synced.1, &synced.0);
    ctx.first_seen.forget(&es);
    tracing::debug!(namespace = %ns, name = %name, elapsed_ms = start.elapsed().as_millis() as u64, "externalsecret synced");
    let next = interval
        .and_then(|i| refresh_due(Some(&synced.0), i))
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
