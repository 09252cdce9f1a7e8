//! SecretStore / ClusterSecretStore validation (`ESO:pkg/controllers/secretstore/common.go`):
//! `Ready=True/Valid`, `Ready=False/InvalidProviderConfig`, or `Ready=True/ValidationUnknown`
//! for referent auth; `status.capabilities`; an event on every validation.

use std::sync::Arc;
use std::time::Duration;

use hush_api::external_secrets::{ClusterSecretStore, Condition, SecretStore, SecretStoreStatus};
use hush_operator::events::EventType;
use hush_sync::SecretProvider as _;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::context::{Context, ResolvedStore};

/// Validates a SecretStore.
pub async fn reconcile_store(s: Arc<SecretStore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<SecretStore> =
        Api::namespaced(ctx.client.clone(), &s.namespace().unwrap_or_default());
    let store = ResolvedStore::from_ss(&s);
    let interval = s.spec.refresh_interval;
    validate(&*s, &api, s.status.clone(), store, interval, &ctx).await
}

/// Validates a ClusterSecretStore.
pub async fn reconcile_cluster_store(
    s: Arc<ClusterSecretStore>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if !ctx.config.cluster_stores {
        // --enable-cluster-store-reconciler=false: the store is used, its status left alone.
        return Ok(Action::await_change());
    }
    let api: Api<ClusterSecretStore> = Api::all(ctx.client.clone());
    let store = ResolvedStore::from_css(&s);
    let interval = s.spec.refresh_interval;
    validate(&*s, &api, s.status.clone(), store, interval, &ctx).await
}

/// Stores are retried after a minute.
pub fn error_policy<K>(_s: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "store validation failed");
    Action::requeue(Duration::from_secs(60))
}

async fn validate<K>(
    obj: &K,
    api: &Api<K>,
    old: Option<SecretStoreStatus>,
    store: ResolvedStore,
    interval: Option<i64>,
    ctx: &Context,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if !store.is_ours(&ctx.config.controller_class) {
        return Ok(Action::await_change());
    }
    let requeue = interval
        .filter(|i| *i > 0)
        .map_or(ctx.config.store_requeue_interval, |i| {
            Duration::from_secs(i.unsigned_abs())
        });
    let referent = store.kind == "ClusterSecretStore"
        && hush_sync::select(&ctx.factories, &store.provider)
            .is_ok_and(|(_, spec)| hush_sync::auth_is_referent(spec));
    // ESO reports capabilities only once a store validated; before that the old value stays.
    let mut capabilities = None;
    let (ready, reason, message) = if referent {
        // Credentials resolve in each ExternalSecret's namespace: nothing to check here.
        (true, "ValidationUnknown", "store validated".to_owned())
    } else {
        match store
            .provider(ctx, None, hush_sync::cache::Freshness::Window)
            .await
        {
            Err(e) => (
                false,
                "InvalidProviderConfig",
                format!("unable to create client: {e}"),
            ),
            Ok(p) => match p.validate().await {
                Ok(()) => {
                    capabilities = Some(p.capabilities());
                    (true, "Valid", "store validated".to_owned())
                }
                Err(e) => (
                    false,
                    "InvalidProviderConfig",
                    format!("unable to validate store: {e}"),
                ),
            },
        }
    };
    ctx.ready.note(obj, ready);
    if ready {
        ctx.event(true, obj, EventType::Normal, reason, message.clone())
            .await;
    } else {
        ctx.event(true, obj, EventType::Warning, reason, message.clone())
            .await;
    }
    let old = old.unwrap_or_default();
    let status_text = if ready { "True" } else { "False" };
    let ltt = match old.conditions.iter().find(|c| c.type_ == "Ready") {
        Some(p) if p.status == status_text => p.last_transition_time.clone(),
        _ => Some(
            k8s_openapi::jiff::Timestamp::from_second(
                k8s_openapi::jiff::Timestamp::now().as_second(),
            )
            .map(|t| t.to_string())
            .unwrap_or_default(),
        ),
    };
    let status = SecretStoreStatus {
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: status_text.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: ltt,
        }],
        capabilities: match (capabilities, referent) {
            (Some(c), _) => Some(c.as_str().into()),
            (None, true) => Some(hush_sync::Capabilities::ReadOnly.as_str().into()),
            (None, false) => old.capabilities.clone(),
        },
    };
    if status != old {
        api.patch_status(
            &obj.meta().name.clone().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(Error::Kube)?;
    }
    Ok(Action::requeue(if ready {
        requeue
    } else {
        requeue.min(Duration::from_secs(30))
    }))
}
