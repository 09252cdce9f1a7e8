//! What the two cluster-scoped fan-outs share ([`crate::cluster`]: a ClusterExternalSecret's
//! ExternalSecrets, [`crate::cluster_push`]: a ClusterPushSecret's PushSecrets): `refreshTime`,
//! namespace selectors, which of them a Namespace event concerns, deleting a child they own,
//! the `Ready` condition and the status patch. The error texts stay each kind's own (ESO's;
//! they reach `failedNamespaces`), so the callers word them.

use std::collections::BTreeMap;
use std::time::Duration;

use hush_api::external_secrets::{Condition, OpenObject};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};

use crate::Error;
use crate::shared::selector_matches;

/// `spec.refreshTime` when unset (ESO's CRD default, both kinds).
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// `Ready=False`'s message when a namespace failed.
const NAMESPACES_FAILED: &str = "one or more namespaces failed";

/// A cluster-scoped object that provisions one child per selected namespace.
pub(crate) trait FanOut: Resource<DynamicType = ()> + Clone + 'static {
    /// `status.provisionedNamespaces`.
    fn provisioned_namespaces(&self) -> &[String];
    /// Whether its selectors (or names) select `ns` now; a malformed selector selects nothing.
    fn selects(&self, ns: &Namespace) -> bool;
}

/// The fan-outs in `store` a Namespace event concerns: those that provisioned it (it may have
/// stopped matching) and those that select it now.
pub(crate) fn for_namespace<K: FanOut>(store: &Store<K>, ns: &Namespace) -> Vec<ObjectRef<K>> {
    let name = ns.name_any();
    store
        .state()
        .iter()
        .filter(|k| k.provisioned_namespaces().contains(&name) || k.selects(ns))
        .map(|k| ObjectRef::from_obj(&**k))
        .collect()
}

/// `spec.refreshTime` (`refresh_time`) of the `kind` object `name`; [`DEFAULT_REFRESH`] when
/// unset or empty.
pub(crate) fn refresh_time(
    kind: &str,
    name: &str,
    refresh_time: Option<&str>,
) -> Result<Duration, Error> {
    match refresh_time.filter(|t| !t.is_empty()) {
        None => Ok(DEFAULT_REFRESH),
        Some(t) => hush_operator::duration::parse(t)
            .map_err(|e| Error::Spec(format!("{kind} {name}: spec.refreshTime {t:?}: {e}"))),
    }
}

/// `o`, the `field` of the `kind` object `name`, as a label selector.
pub(crate) fn label_selector(
    o: &OpenObject,
    kind: &str,
    name: &str,
    field: &str,
) -> Result<LabelSelector, Error> {
    serde_json::from_value::<LabelSelector>(serde_json::Value::Object(o.0.clone())).map_err(|e| {
        Error::Spec(format!(
            "{kind} {name}: {field} is not a label selector: {e}"
        ))
    })
}

/// Whether any of `selectors` selects `ns`; `invalid` words the error of a malformed one.
pub(crate) fn any_selects(
    selectors: &[LabelSelector],
    ns: &Namespace,
    invalid: impl Fn(String) -> Error,
) -> Result<bool, Error> {
    for s in selectors {
        if selector_matches(s, ns.labels()).map_err(&invalid)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every Namespace (a fan-out lists them all, not a GET per namespace).
pub(crate) async fn namespaces(client: &kube::Client) -> Result<Vec<Namespace>, Error> {
    let list = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::Kube)?;
    Ok(list.items)
}

/// Deletes the child `name` of `api` if `owned` says this fan-out owns it (absent or gone is
/// fine); the error, `get_failed: …` or `delete_failed: …`, goes to `failedNamespaces`.
pub(crate) async fn delete_owned<K>(
    api: &Api<K>,
    name: &str,
    owned: impl Fn(&K) -> bool,
    get_failed: &str,
    delete_failed: &str,
) -> Result<(), String>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(child) = api
        .get_opt(name)
        .await
        .map_err(|e| format!("{get_failed}: {e}"))?
    else {
        return Ok(());
    };
    if !owned(&child) {
        return Ok(());
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!("{delete_failed}: {e}")),
    }
}

/// `failed` (namespace → reason) as `failedNamespaces` entries made by `entry`.
pub(crate) fn failures<T>(
    failed: BTreeMap<String, String>,
    entry: impl Fn(String, Option<String>) -> T,
) -> Vec<T> {
    failed
        .into_iter()
        .map(|(namespace, reason)| entry(namespace, Some(reason)))
        .collect()
}

/// The fan-out's `Ready` condition: True when no namespace failed.
pub(crate) fn ready_condition(ready: bool) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        reason: None,
        message: (!ready).then(|| NAMESPACES_FAILED.to_owned()),
        last_transition_time: None,
    }
}

/// Merge-patches `status` (every list whole: a merge patch replaces lists, so an emptied one is
/// cleared) of the fan-out `name`; a deleted one is fine.
pub(crate) async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let body = serde_json::json!({ "status": status });
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}
