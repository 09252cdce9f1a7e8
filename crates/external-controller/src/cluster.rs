//! ClusterExternalSecret fan-out (ESO's `clusterexternalsecret` controller): one ExternalSecret
//! per matching namespace, owned by the ClusterExternalSecret (controller ownerReference),
//! removed from namespaces that stop matching; `status.provisionedNamespaces`,
//! `failedNamespaces`, `externalSecretName`, `Ready`.
//!
//! Like ESO, a finalizer on the ClusterExternalSecret deletes its ExternalSecrets before it goes.
//! Unlike ESO, no finalizer is put on Namespaces (a controller outage would block namespace
//! deletion); the per-ClusterExternalSecret finalizers ESO left on Namespaces are removed when
//! the namespace terminates or the ClusterExternalSecret is deleted, so a take-over never
//! leaves a namespace stuck.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hush_api::external_secrets::{
    ClusterExternalSecret, ClusterExternalSecretStatus, ExternalSecret, NamespaceFailure,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::Error;
use crate::context::Context;
use crate::eso::ANNOTATION_FORCE_SYNC;
use crate::fanout::{self, FanOut};
use crate::shared::patch_finalizers;

/// ESO's finalizer on a ClusterExternalSecret.
pub const FINALIZER: &str = "externalsecrets.external-secrets.io/clusterexternalsecret-cleanup";
/// ESO's per-ClusterExternalSecret finalizer on Namespaces (removed, never added, by hush).
pub fn namespace_finalizer(ces_name: &str) -> String {
    format!("externalsecrets.external-secrets.io/ces-{ces_name}")
}
/// `spec.refreshTime` when unset (ESO's CRD default).
pub const DEFAULT_REFRESH: Duration = fanout::DEFAULT_REFRESH;
const KIND: &str = "ClusterExternalSecret";

/// Reconciles one ClusterExternalSecret.
pub async fn reconcile(
    ces: Arc<ClusterExternalSecret>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let api: Api<ClusterExternalSecret> = Api::all(ctx.client.clone());
    let name = ces.name_any();
    if ces.meta().deletion_timestamp.is_some() {
        cleanup(&ces, &ctx).await?;
        if ces.finalizers().iter().any(|f| f == FINALIZER) {
            let rest: Vec<&String> = ces
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .collect();
            patch_finalizers(&api, &*ces, json!(rest)).await?;
        }
        return Ok(Action::await_change());
    }
    if !ces.finalizers().iter().any(|f| f == FINALIZER) {
        let mut all: Vec<String> = ces.finalizers().to_vec();
        all.push(FINALIZER.to_owned());
        patch_finalizers(&api, &*ces, json!(all)).await?;
    }
    let refresh = fanout::refresh_time(KIND, &name, ces.spec.refresh_time.as_deref())?;
    let old = ces.status.clone().unwrap_or_default();
    let es_name = ces
        .spec
        .external_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let mut status = ClusterExternalSecretStatus {
        external_secret_name: Some(es_name.clone()),
        ..old.clone()
    };

    // A renamed ExternalSecret: the old ones go first.
    if let Some(prev) = old
        .external_secret_name
        .as_deref()
        .filter(|p| !p.is_empty() && *p != es_name)
    {
        for ns in &old.provisioned_namespaces {
            if let Err(e) = delete_owned(&ctx, prev, &name, ns).await {
                failed.insert(ns.clone(), e);
            }
        }
        if !failed.is_empty() {
            write_status(&api, &ctx, &old, &ces, status, failed).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    }

    let namespaces = match target_namespaces(&ctx, &ces).await {
        Ok(n) => n,
        Err(e) => {
            failed.insert("unknown".into(), e.to_string());
            write_status(&api, &ctx, &old, &ces, status, failed).await?;
            return Err(e);
        }
    };
    let wanted: BTreeSet<&str> = namespaces
        .iter()
        .filter(|n| n.meta().deletion_timestamp.is_none())
        .map(|n| n.metadata.name.as_deref().unwrap_or_default())
        .collect();
    for ns in &old.provisioned_namespaces {
        if !wanted.contains(ns.as_str())
            && let Err(e) = delete_owned(&ctx, &es_name, &name, ns).await
        {
            failed.insert(ns.clone(), e);
        }
    }

    // One list for all namespaces (not a GET per namespace): this runs on every child's change.
    let mut existing: BTreeMap<String, ExternalSecret> = BTreeMap::new();
    if !namespaces.is_empty() {
        let children = Api::<ExternalSecret>::all(ctx.client.clone())
            .list(&ListParams::default().fields(&format!("metadata.name={es_name}")))
            .await
            .map_err(Error::Kube)?;
        for es in children {
            existing.insert(es.namespace().unwrap_or_default(), es);
        }
    }
    let mut provisioned = Vec::new();
    for namespace in &namespaces {
        let ns = namespace.name_any();
        if namespace.meta().deletion_timestamp.is_some() {
            // Terminating: let it go (and drop a finalizer ESO may have left).
            if let Err(e) = remove_namespace_finalizer(&ctx, namespace, &name).await {
                tracing::warn!(namespace = %ns, error = %e, "cannot remove ESO's namespace finalizer");
            }
            continue;
        }
        match provision(&ctx, &ces, &es_name, &ns, existing.remove(&ns)).await {
            Ok(()) => provisioned.push(ns),
            Err(e) => {
                failed.insert(ns, e);
            }
        }
    }
    provisioned.sort();
    status.provisioned_namespaces = provisioned;
    write_status(&api, &ctx, &old, &ces, status, failed).await?;
    Ok(Action::requeue(refresh))
}

/// Requeue after an error (a bad selector or `refreshTime`: the spec must change first).
pub fn error_policy(ces: Arc<ClusterExternalSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = %ces.name_any(), error = %err, "clusterexternalsecret reconcile failed");
    Action::requeue(err.retry_after())
}

/// Namespaces selected by `namespaceSelector`, `namespaceSelectors` (any matches) and
/// `namespaces` (by name), sorted by name.
async fn target_namespaces(
    ctx: &Context,
    ces: &ClusterExternalSecret,
) -> Result<Vec<Namespace>, Error> {
    let selectors = selectors(ces)?;
    let mut out: Vec<Namespace> = Vec::new();
    for n in fanout::namespaces(&ctx.client).await? {
        if matches(ces, &selectors, &n)? {
            out.push(n);
        }
    }
    out.sort_by_key(|n| n.name_any());
    Ok(out)
}

fn selectors(ces: &ClusterExternalSecret) -> Result<Vec<LabelSelector>, Error> {
    let name = ces.name_any();
    let parse = |o, field: &str| fanout::label_selector(o, KIND, &name, field);
    let mut out = Vec::new();
    if let Some(s) = &ces.spec.namespace_selector {
        out.push(parse(s, "spec.namespaceSelector")?);
    }
    for (i, s) in ces.spec.namespace_selectors.iter().enumerate() {
        out.push(parse(s, &format!("spec.namespaceSelectors[{i}]"))?);
    }
    Ok(out)
}

fn matches(
    ces: &ClusterExternalSecret,
    selectors: &[LabelSelector],
    n: &Namespace,
) -> Result<bool, Error> {
    let name = n.metadata.name.as_deref().unwrap_or_default();
    if ces.spec.namespaces.iter().any(|x| x == name) {
        return Ok(true);
    }
    fanout::any_selects(selectors, n, |e| {
        Error::Spec(format!(
            "ClusterExternalSecret {}: namespace selector: {e}",
            ces.name_any()
        ))
    })
}

fn owned_by(es: &ExternalSecret, ces_name: &str) -> bool {
    es.owner_references().iter().any(|o| {
        o.controller == Some(true)
            && o.kind == "ClusterExternalSecret"
            && o.api_version.split('/').next() == Some(hush_api::external_secrets::GROUP)
            && o.name == ces_name
    })
}

/// Creates or updates the ExternalSecret in `ns`; the error text goes to `failedNamespaces`.
async fn provision(
    ctx: &Context,
    ces: &ClusterExternalSecret,
    es_name: &str,
    ns: &str,
    existing: Option<ExternalSecret>,
) -> Result<(), String> {
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), ns);
    if let Some(es) = &existing
        && !owned_by(es, &ces.name_any())
    {
        return Err("external secret already exists in namespace".into());
    }
    let meta = ces
        .spec
        .external_secret_metadata
        .clone()
        .unwrap_or_default();
    let labels = meta.labels.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    // ESO mirrors force-sync, so annotating the ClusterExternalSecret refreshes every child.
    if let Some(v) = ces.annotations().get(ANNOTATION_FORCE_SYNC) {
        annotations.insert(ANNOTATION_FORCE_SYNC.into(), v.clone());
    } else {
        annotations.remove(ANNOTATION_FORCE_SYNC);
    }
    // A refresh requested on the child (crate::refresh) stays: dropping the annotation would
    // change the child again and read its provider once more.
    if let Some(v) = existing
        .as_ref()
        .and_then(|es| es.annotations().get(crate::refresh::REQUESTED_AT))
    {
        annotations
            .entry(crate::refresh::REQUESTED_AT.into())
            .or_insert_with(|| v.clone());
    }
    let owner = ces
        .controller_owner_ref(&())
        .ok_or_else(|| "the ClusterExternalSecret has no uid yet".to_owned())?;
    let create_or_update =
        |e: kube::Error| format!("could not create or update ExternalSecret: {e}");
    match existing {
        None => {
            let es = ExternalSecret {
                metadata: ObjectMeta {
                    name: Some(es_name.to_owned()),
                    namespace: Some(ns.to_owned()),
                    labels: (!labels.is_empty()).then_some(labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    owner_references: Some(vec![owner]),
                    ..ObjectMeta::default()
                },
                spec: ces.spec.external_secret_spec.clone(),
                status: None,
            };
            api.create(&PostParams::default(), &es)
                .await
                .map_err(create_or_update)?;
        }
        Some(old) => {
            let mut es = old.clone();
            es.metadata.labels = (!labels.is_empty()).then_some(labels);
            es.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
            es.spec = ces.spec.external_secret_spec.clone();
            let refs: &mut Vec<OwnerReference> =
                es.metadata.owner_references.get_or_insert_with(Vec::new);
            refs.retain(|r| r.uid != owner.uid);
            refs.push(owner);
            if old.labels() == es.labels()
                && old.annotations() == es.annotations()
                && old.spec == es.spec
                && old.owner_references() == es.owner_references()
            {
                return Ok(());
            }
            es.status = None;
            api.replace(es_name, &PostParams::default(), &es)
                .await
                .map_err(create_or_update)?;
        }
    }
    Ok(())
}

/// Deletes the ExternalSecret `es_name` in `ns` if this ClusterExternalSecret owns it.
async fn delete_owned(
    ctx: &Context,
    es_name: &str,
    ces_name: &str,
    ns: &str,
) -> Result<(), String> {
    fanout::delete_owned(
        &Api::<ExternalSecret>::namespaced(ctx.client.clone(), ns),
        es_name,
        |es| owned_by(es, ces_name),
        "could not get existing ExternalSecret",
        "external secret in non matching namespace could not be deleted",
    )
    .await
}

async fn remove_namespace_finalizer(
    ctx: &Context,
    ns: &Namespace,
    ces_name: &str,
) -> Result<(), kube::Error> {
    let finalizer = namespace_finalizer(ces_name);
    if !ns.finalizers().contains(&finalizer) {
        return Ok(());
    }
    let rest: Vec<&String> = ns
        .finalizers()
        .iter()
        .filter(|f| **f != finalizer)
        .collect();
    // resourceVersion in the patch: a concurrent change makes it fail (and retry) instead of
    // dropping another party's finalizer.
    let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": ns.resource_version()}});
    match Api::<Namespace>::all(ctx.client.clone())
        .patch(
            &ns.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// On deletion: the ExternalSecrets in `provisionedNamespaces` and ESO's namespace finalizers.
async fn cleanup(ces: &ClusterExternalSecret, ctx: &Context) -> Result<(), Error> {
    let name = ces.name_any();
    let status = ces.status.clone().unwrap_or_default();
    let es_name = status
        .external_secret_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| name.clone());
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let mut errors = Vec::new();
    for ns in &status.provisioned_namespaces {
        match namespaces.get_opt(ns).await {
            Ok(Some(n)) => {
                if let Err(e) = remove_namespace_finalizer(ctx, &n, &name).await {
                    errors.push(format!("{ns}: {e}"));
                }
            }
            Ok(None) => continue,
            Err(e) => {
                errors.push(format!("{ns}: {e}"));
                continue;
            }
        }
        if let Err(e) = delete_owned(ctx, &es_name, &name, ns).await {
            errors.push(format!("{ns}: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Store(format!(
            "ClusterExternalSecret {name}: cleanup failed: {}",
            errors.join("; ")
        )))
    }
}

/// Writes `failedNamespaces` and `Ready` (True when nothing failed); nothing when unchanged.
async fn write_status(
    api: &Api<ClusterExternalSecret>,
    ctx: &Context,
    old: &ClusterExternalSecretStatus,
    ces: &ClusterExternalSecret,
    mut status: ClusterExternalSecretStatus,
    failed: BTreeMap<String, String>,
) -> Result<(), Error> {
    status.failed_namespaces = fanout::failures(failed, |namespace, reason| NamespaceFailure {
        namespace,
        reason,
    });
    let ready = status.failed_namespaces.is_empty();
    ctx.ready.note(ces, ready);
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(fanout::ready_condition(ready));
    if &status == old {
        return Ok(());
    }
    let body = json!({
        "externalSecretName": status.external_secret_name,
        "provisionedNamespaces": status.provisioned_namespaces,
        "failedNamespaces": status.failed_namespaces,
        "conditions": status.conditions,
    });
    fanout::patch_status(api, &ces.name_any(), body).await
}

impl FanOut for ClusterExternalSecret {
    fn provisioned_namespaces(&self) -> &[String] {
        self.status
            .as_ref()
            .map_or(&[], |s| s.provisioned_namespaces.as_slice())
    }

    fn selects(&self, ns: &Namespace) -> bool {
        selectors(self).is_ok_and(|sel| matches(self, &sel, ns).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ces(spec: serde_json::Value) -> ClusterExternalSecret {
        serde_json::from_value(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
            "metadata": {"name": "c"}, "spec": spec
        }))
        .unwrap()
    }

    fn ns(name: &str, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    #[test]
    fn selectors_or_names() {
        let c = ces(json!({"externalSecretSpec": {},
            "namespaceSelector": {"matchLabels": {"team": "a"}},
            "namespaceSelectors": [{"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "stage"]},
                                                          {"key": "skip", "operator": "DoesNotExist"}]}],
            "namespaces": ["by-name"]}));
        let sel = selectors(&c).unwrap();
        assert!(matches(&c, &sel, &ns("x", json!({"team": "a"}))).unwrap());
        assert!(matches(&c, &sel, &ns("x", json!({"env": "prod"}))).unwrap());
        assert!(!matches(&c, &sel, &ns("x", json!({"env": "prod", "skip": "1"}))).unwrap());
        assert!(!matches(&c, &sel, &ns("x", json!({"env": "dev"}))).unwrap());
        assert!(matches(&c, &sel, &ns("by-name", json!({}))).unwrap());
        // No selector and no names: nothing.
        let none = ces(json!({"externalSecretSpec": {}}));
        assert!(!matches(&none, &[], &ns("x", json!({"a": "b"}))).unwrap());
        // An empty selector selects every namespace.
        let all = ces(json!({"externalSecretSpec": {}, "namespaceSelectors": [{}]}));
        assert!(matches(&all, &selectors(&all).unwrap(), &ns("x", json!({}))).unwrap());
    }

    #[test]
    fn bad_selectors_are_errors() {
        let c = ces(json!({"externalSecretSpec": {},
            "namespaceSelectors": [{"matchExpressions": [{"key": "env", "operator": "Near"}]}]}));
        let sel = selectors(&c).unwrap();
        let err = matches(&c, &sel, &ns("x", json!({})))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Near") && err.contains("ClusterExternalSecret c"),
            "{err}"
        );
        let c = ces(json!({"externalSecretSpec": {}, "namespaceSelector": {"matchLabels": "x"}}));
        assert!(selectors(&c).is_err());
    }

    #[test]
    fn ownership_is_the_controller_reference() {
        let es = |owner: serde_json::Value| -> ExternalSecret {
            serde_json::from_value(
                json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": "e", "namespace": "n", "ownerReferences": owner}, "spec": {}}),
            )
            .unwrap()
        };
        let mine = json!([{"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret", "name": "c", "uid": "u", "controller": true}]);
        assert!(owned_by(&es(mine), "c"));
        let old_version = json!([{"apiVersion": "external-secrets.io/v1beta1", "kind": "ClusterExternalSecret", "name": "c", "uid": "u", "controller": true}]);
        assert!(owned_by(&es(old_version), "c"));
        let other = json!([{"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret", "name": "d", "uid": "u", "controller": true}]);
        assert!(!owned_by(&es(other), "c"));
        let not_controller = json!([{"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret", "name": "c", "uid": "u"}]);
        assert!(!owned_by(&es(not_controller), "c"));
    }
}
