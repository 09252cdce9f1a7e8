//! ClusterPushSecret fan-out (ESO's `clusterpushsecret` controller): one PushSecret per
//! namespace matching any of `namespaceSelectors`, controlled by the ClusterPushSecret (so the
//! garbage collector removes them with it, and each PushSecret's own finalizer removes what it
//! pushed), deleted from namespaces that stop matching; `status.pushSecretName`,
//! `provisionedNamespaces`, `failedNamespaces` and `Ready`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hush_api::push_secrets::{
    ClusterPushSecret, ClusterPushSecretNamespaceFailure, ClusterPushSecretStatus, PushSecret,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::context::Context;
use crate::fanout::{self, FanOut};

/// `spec.refreshTime` when unset.
pub const DEFAULT_REFRESH: Duration = fanout::DEFAULT_REFRESH;
const KIND: &str = "ClusterPushSecret";

/// Reconciles one ClusterPushSecret.
pub async fn reconcile(cps: Arc<ClusterPushSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    if cps.meta().deletion_timestamp.is_some() {
        // Its PushSecrets are its dependents: the garbage collector deletes them.
        return Ok(Action::await_change());
    }
    let name = cps.name_any();
    let api: Api<ClusterPushSecret> = Api::all(ctx.client.clone());
    let refresh = fanout::refresh_time(KIND, &name, cps.spec.refresh_time.as_deref())?;
    let old = cps.status.clone().unwrap_or_default();
    let ps_name = cps
        .spec
        .push_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let wanted = match target_namespaces(&ctx, &cps).await {
        Ok(n) => n,
        Err(e) => {
            failed.insert("unknown".into(), e.to_string());
            write_status(&api, &old, &cps, &ps_name, Vec::new(), failed).await?;
            return Err(e);
        }
    };
    let previous_name = old
        .push_secret_name
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ps_name.clone());
    for ns in &old.provisioned_namespaces {
        let renamed = previous_name != ps_name;
        if (renamed || !wanted.contains(ns))
            && let Err(e) = delete_owned(&ctx, &previous_name, &name, ns).await
        {
            failed.insert(ns.clone(), e);
        }
    }
    let mut provisioned = Vec::new();
    for ns in &wanted {
        match provision(&ctx, &cps, &ps_name, ns).await {
            Ok(()) => provisioned.push(ns.clone()),
            Err(e) => {
                failed.insert(ns.clone(), e);
            }
        }
    }
    write_status(&api, &old, &cps, &ps_name, provisioned, failed).await?;
    Ok(Action::requeue(refresh))
}

/// Requeue after an error.
pub fn error_policy(cps: Arc<ClusterPushSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %cps.name_any(), error = %err, "clusterpushsecret reconcile failed");
    Action::requeue(err.retry_after())
}

fn selectors(cps: &ClusterPushSecret) -> Result<Vec<LabelSelector>, Error> {
    let name = cps.name_any();
    cps.spec
        .namespace_selectors
        .iter()
        .enumerate()
        .map(|(i, o)| {
            fanout::label_selector(o, KIND, &name, &format!("spec.namespaceSelectors[{i}]"))
        })
        .collect()
}

fn matches(selectors: &[LabelSelector], ns: &Namespace) -> Result<bool, Error> {
    fanout::any_selects(selectors, ns, |e| {
        Error::Spec(format!("spec.namespaceSelectors: {e}"))
    })
}

/// Live namespaces matching any selector, by name.
async fn target_namespaces(
    ctx: &Context,
    cps: &ClusterPushSecret,
) -> Result<BTreeSet<String>, Error> {
    let selectors = selectors(cps)?;
    let mut out = BTreeSet::new();
    for n in fanout::namespaces(&ctx.client).await? {
        if n.meta().deletion_timestamp.is_none() && matches(&selectors, &n)? {
            out.insert(n.name_any());
        }
    }
    Ok(out)
}

fn owned_by(ps: &PushSecret, cps_name: &str) -> bool {
    ps.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == "ClusterPushSecret" && o.name == cps_name)
}

/// Creates or updates the PushSecret in `ns`; the error goes to `failedNamespaces`.
async fn provision(
    ctx: &Context,
    cps: &ClusterPushSecret,
    ps_name: &str,
    ns: &str,
) -> Result<(), String> {
    let api: Api<PushSecret> = Api::namespaced(ctx.client.clone(), ns);
    let existing = api
        .get_opt(ps_name)
        .await
        .map_err(|e| format!("could not get PushSecret: {e}"))?;
    let meta = cps.spec.push_secret_metadata.clone().unwrap_or_default();
    let labels = meta.labels.filter(|l| !l.is_empty());
    let annotations = meta.annotations.filter(|a| !a.is_empty());
    let owner = cps
        .controller_owner_ref(&())
        .ok_or_else(|| "the ClusterPushSecret has no uid yet".to_owned())?;
    let failed = |e: kube::Error| format!("could not create or update PushSecret: {e}");
    match existing {
        None => {
            let ps = PushSecret {
                metadata: ObjectMeta {
                    name: Some(ps_name.to_owned()),
                    namespace: Some(ns.to_owned()),
                    labels,
                    annotations,
                    owner_references: Some(vec![owner]),
                    ..ObjectMeta::default()
                },
                spec: cps.spec.push_secret_spec.clone(),
                status: None,
            };
            api.create(&PostParams::default(), &ps)
                .await
                .map_err(failed)?;
        }
        Some(old) => {
            if !owned_by(&old, &cps.name_any()) {
                return Err("push secret already exists in namespace".into());
            }
            if old.spec == cps.spec.push_secret_spec
                && old.metadata.labels == labels
                && old.metadata.annotations == annotations
            {
                return Ok(());
            }
            let mut ps = old.clone();
            ps.metadata.labels = labels;
            ps.metadata.annotations = annotations;
            ps.spec = cps.spec.push_secret_spec.clone();
            ps.status = None;
            api.replace(ps_name, &PostParams::default(), &ps)
                .await
                .map_err(failed)?;
        }
    }
    Ok(())
}

/// Deletes PushSecret `ps_name` in `ns` if this ClusterPushSecret controls it.
async fn delete_owned(
    ctx: &Context,
    ps_name: &str,
    cps_name: &str,
    ns: &str,
) -> Result<(), String> {
    fanout::delete_owned(
        &Api::<PushSecret>::namespaced(ctx.client.clone(), ns),
        ps_name,
        |ps| owned_by(ps, cps_name),
        "could not get PushSecret",
        "could not delete PushSecret",
    )
    .await
}

async fn write_status(
    api: &Api<ClusterPushSecret>,
    old: &ClusterPushSecretStatus,
    cps: &ClusterPushSecret,
    ps_name: &str,
    provisioned: Vec<String>,
    failed: BTreeMap<String, String>,
) -> Result<(), Error> {
    let failed_namespaces = fanout::failures(failed, |namespace, reason| {
        ClusterPushSecretNamespaceFailure { namespace, reason }
    });
    let ready = failed_namespaces.is_empty();
    let status = ClusterPushSecretStatus {
        failed_namespaces,
        provisioned_namespaces: provisioned,
        push_secret_name: Some(ps_name.to_owned()),
        conditions: vec![fanout::ready_condition(ready)],
    };
    if &status == old {
        return Ok(());
    }
    let body = json!({
        "pushSecretName": status.push_secret_name,
        "provisionedNamespaces": status.provisioned_namespaces,
        "failedNamespaces": status.failed_namespaces,
        "conditions": status.conditions,
    });
    fanout::patch_status(api, &cps.name_any(), body).await
}

impl FanOut for ClusterPushSecret {
    fn provisioned_namespaces(&self) -> &[String] {
        self.status
            .as_ref()
            .map_or(&[], |s| s.provisioned_namespaces.as_slice())
    }

    fn selects(&self, ns: &Namespace) -> bool {
        selectors(self).is_ok_and(|sel| matches(&sel, ns).unwrap_or(false))
    }
}
