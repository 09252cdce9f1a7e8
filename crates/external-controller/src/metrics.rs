//! External Secrets Operator's metric names and labels on the shared metrics endpoint, so ESO's
//! dashboards and alerts keep working (`ESO:docs/api/metrics.md`):
//!
//! - `externalsecret_sync_calls_total{name,namespace}`: reconciles (counter);
//! - `externalsecret_sync_calls_error{name,namespace}`: failed reconciles;
//! - `externalsecret_status_condition{name,namespace,condition,status}`: 1 for the current
//!   `Ready` status, 0 for the other;
//! - `externalsecret_reconcile_duration{name,namespace}`: the last reconcile, in nanoseconds;
//! - `externalsecret_provider_api_calls_count{provider,call,status}`: provider API calls
//!   (`hush_sync::calls`; reads the cache answered are not calls);
//! - `secretstore_`, `clustersecretstore_` and `clusterexternalsecret_status_condition` /
//!   `_reconcile_duration`, labelled as the ExternalSecret ones (`namespace=""` for the
//!   cluster-scoped kinds, as ESO's request namespace).
//!
//! ESO exposes `sync_calls_error` and `provider_api_calls_count` without a `_total` suffix; the
//! OpenMetrics encoder adds one to every counter, so they are gauges that only go up (PromQL's
//! `rate`/`increase` work on them).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hush_operator::metrics::Labels;
use kube::runtime::controller::Action;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Error;

/// `<kind>_status_condition` and `<kind>_reconcile_duration` of one kind of object, and the
/// objects they have series for (so that a deleted object's series can go, as ESO's
/// `RemoveMetrics`).
#[derive(Debug, Clone, Default)]
struct KindFamilies {
    condition: Family<Labels, Gauge>,
    duration: Family<Labels, Gauge<f64, AtomicU64>>,
    objects: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl KindFamilies {
    fn register(registry: &mut Registry, kind: &str, what: &str) -> Self {
        let this = Self::default();
        registry.register(
            format!("{kind}_status_condition"),
            format!("The status condition of a specific {what}"),
            this.condition.clone(),
        );
        registry.register(
            format!("{kind}_reconcile_duration"),
            format!("The duration time to reconcile the {what}"),
            this.duration.clone(),
        );
        this
    }

    /// The last reconcile's duration and, when it wrote `Ready` (`ready` 1 False, 2 True), 1 for
    /// that status and 0 for the other.
    fn record(&self, labels: &Labels, took_ns: f64, ready: u8) {
        if let [(_, name), (_, namespace)] = labels.as_slice() {
            self.objects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((namespace.clone(), name.clone()));
        }
        self.duration.get_or_create(labels).set(took_ns);
        if ready != 0 {
            for (status, value) in [("True", ready == 2), ("False", ready == 1)] {
                let mut l = labels.clone();
                l.push(("condition".to_owned(), "Ready".to_owned()));
                l.push(("status".to_owned(), status.to_owned()));
                self.condition.get_or_create(&l).set(i64::from(value));
            }
        }
    }
}

impl KindFamilies {
    /// Drops the series of every object `exists` denies; returns their label sets.
    fn forget_missing(&self, exists: impl Fn(&str, &str) -> bool) -> Vec<Labels> {
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let gone: Vec<(String, String)> = objects
            .iter()
            .filter(|(ns, name)| !exists(ns, name))
            .cloned()
            .collect();
        let mut dropped = Vec::with_capacity(gone.len());
        for (namespace, name) in gone {
            objects.remove(&(namespace.clone(), name.clone()));
            let labels: Labels = vec![
                ("name".to_owned(), name),
                ("namespace".to_owned(), namespace),
            ];
            self.duration.remove(&labels);
            for status in ["True", "False"] {
                let mut l = labels.clone();
                l.push(("condition".to_owned(), "Ready".to_owned()));
                l.push(("status".to_owned(), status.to_owned()));
                self.condition.remove(&l);
            }
            dropped.push(labels);
        }
        dropped
    }
}

/// The kinds whose series [`EsoMetrics::forget_missing`] sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ExternalSecret (also its `sync_calls` series).
    ExternalSecret,
    /// SecretStore.
    SecretStore,
    /// ClusterSecretStore.
    ClusterSecretStore,
    /// ClusterExternalSecret.
    ClusterExternalSecret,
}

/// The families (cheap to clone: handles). [`Default`] gives unregistered ones.
#[derive(Debug, Clone, Default)]
pub struct EsoMetrics {
    sync_calls: Family<Labels, Counter>,
    sync_errors: Family<Labels, Gauge>,
    external_secret: KindFamilies,
    provider_calls: Family<Labels, Gauge>,
    secret_store: KindFamilies,
    cluster_secret_store: KindFamilies,
    cluster_external_secret: KindFamilies,
}

/// The `Ready` status each running reconcile wrote, for the status-condition families: the
/// reconcilers note it where they write it, the metric wrappers (`instrumented.rs`) take it
/// when the reconcile ends. kube-runtime never runs two reconciles of one object at once, so
/// kind, namespace and name name one reconcile.
#[derive(Debug, Default)]
pub(crate) struct ReadyNotes(Mutex<HashMap<(String, String, String), bool>>);

impl ReadyNotes {
    fn key<K: kube::Resource<DynamicType = ()>>(obj: &K) -> (String, String, String) {
        let meta = obj.meta();
        (
            K::kind(&()).into_owned(),
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }

    /// `obj`'s reconcile writes `Ready` = `ready`.
    pub(crate) fn note<K: kube::Resource<DynamicType = ()>>(&self, obj: &K, ready: bool) {
        let mut notes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        notes.insert(Self::key(obj), ready);
    }

    /// The `Ready` `obj`'s reconcile wrote, forgotten: 0 none, 1 False, 2 True.
    pub(crate) fn take<K: kube::Resource<DynamicType = ()>>(&self, obj: &K) -> u8 {
        let mut notes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match notes.remove(&Self::key(obj)) {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        }
    }
}

impl EsoMetrics {
    /// Registers every family in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let mut this = Self::default();
        registry.register(
            "externalsecret_sync_calls",
            "Total number of the External Secret sync calls",
            this.sync_calls.clone(),
        );
        registry.register(
            "externalsecret_sync_calls_error",
            "Total number of the External Secret sync errors",
            this.sync_errors.clone(),
        );
        this.external_secret =
            KindFamilies::register(registry, "externalsecret", "External Secret");
        registry.register(
            "externalsecret_provider_api_calls_count",
            "Number of API calls towards the secret provider",
            this.provider_calls.clone(),
        );
        this.secret_store = KindFamilies::register(registry, "secretstore", "Secret Store");
        this.cluster_secret_store =
            KindFamilies::register(registry, "clustersecretstore", "Cluster Secret Store");
        this.cluster_external_secret =
            KindFamilies::register(registry, "clusterexternalsecret", "ClusterExternalSecret");
        this
    }

    /// Where the providers of this controller count their API calls
    /// (`externalsecret_provider_api_calls_count`): handed to them in [`hush_sync::Settings`].
    pub fn provider_calls(&self) -> hush_sync::calls::Calls {
        let calls = self.provider_calls.clone();
        hush_sync::calls::Calls::new(Arc::new(move |provider, call, ok| {
            let labels: Labels = vec![
                ("provider".to_owned(), provider.to_owned()),
                ("call".to_owned(), call.to_owned()),
                (
                    "status".to_owned(),
                    if ok { "success" } else { "error" }.to_owned(),
                ),
            ];
            calls.get_or_create(&labels).inc();
        }))
    }

    /// One reconcile of `obj` (a `kind` object): its duration, the `Ready` it wrote (see
    /// [`KindFamilies::record`]) and, for ExternalSecrets, the sync call and whether it failed.
    pub(crate) fn record<K: kube::Resource>(
        &self,
        kind: Kind,
        obj: &K,
        took_ns: f64,
        ok: bool,
        ready: u8,
    ) {
        let labels = object_labels(obj);
        if kind == Kind::ExternalSecret {
            self.sync_calls.get_or_create(&labels).inc();
            if !ok {
                self.sync_errors.get_or_create(&labels).inc();
            }
        }
        self.families(kind).record(&labels, took_ns, ready);
    }

    fn families(&self, kind: Kind) -> &KindFamilies {
        match kind {
            Kind::ExternalSecret => &self.external_secret,
            Kind::SecretStore => &self.secret_store,
            Kind::ClusterSecretStore => &self.cluster_secret_store,
            Kind::ClusterExternalSecret => &self.cluster_external_secret,
        }
    }

    /// Drops the series of the `kind` objects that no longer exist (`exists(namespace, name)`
    /// is false; `namespace` is empty for cluster-scoped kinds), as ESO does on deletion, so
    /// that churn does not grow the endpoint without bound.
    pub fn forget_missing(&self, kind: Kind, exists: impl Fn(&str, &str) -> bool) {
        for labels in self.families(kind).forget_missing(exists) {
            if kind == Kind::ExternalSecret {
                self.sync_calls.remove(&labels);
                self.sync_errors.remove(&labels);
            }
        }
    }
}

fn object_labels<K: kube::Resource>(obj: &K) -> Labels {
    vec![
        (
            "name".to_owned(),
            obj.meta().name.clone().unwrap_or_default(),
        ),
        (
            "namespace".to_owned(),
            obj.meta().namespace.clone().unwrap_or_default(),
        ),
    ]
}

/// Runs `reconcile`; returns its result and the time it took in nanoseconds.
pub(crate) async fn measured<F>(reconcile: F) -> (Result<Action, Error>, f64)
where
    F: std::future::Future<Output = Result<Action, Error>>,
{
    let start = Instant::now();
    let result = reconcile.await;
    (result, start.elapsed().as_nanos() as f64)
}

#[cfg(test)]
mod tests {
    use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret};

    use super::*;

    #[test]
    fn names_and_labels_are_esos() {
        let mut registry = Registry::default();
        let m = EsoMetrics::register(&mut registry);
        let es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "team"}, "spec": {}
        }))
        .unwrap();
        m.record(Kind::ExternalSecret, &es, 1500.0, true, 2);
        m.record(Kind::ExternalSecret, &es, 2500.0, false, 1);
        let css: ClusterSecretStore = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": {"name": "vault"}, "spec": {"provider": {}}
        }))
        .unwrap();
        m.record(Kind::ClusterSecretStore, &css, 900.0, true, 2);
        // No Ready written (a store of another controller class): no condition series.
        m.record(Kind::SecretStore, &es, 100.0, true, 0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            r#"externalsecret_sync_calls_total{name="db",namespace="team"} 2"#,
            r#"externalsecret_sync_calls_error{name="db",namespace="team"} 1"#,
            r#"externalsecret_status_condition{name="db",namespace="team",condition="Ready",status="True"} 0"#,
            r#"externalsecret_status_condition{name="db",namespace="team",condition="Ready",status="False"} 1"#,
            r#"externalsecret_reconcile_duration{name="db",namespace="team"} 2500.0"#,
            r#"clustersecretstore_status_condition{name="vault",namespace="",condition="Ready",status="True"} 1"#,
            r#"clustersecretstore_status_condition{name="vault",namespace="",condition="Ready",status="False"} 0"#,
            r#"clustersecretstore_reconcile_duration{name="vault",namespace=""} 900.0"#,
            r#"secretstore_reconcile_duration{name="db",namespace="team"} 100.0"#,
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
        assert!(!text.contains("secretstore_status_condition{name=\"db\""));

        // Deleted objects lose their series; others keep them.
        m.forget_missing(Kind::ExternalSecret, |_, _| false);
        m.forget_missing(Kind::ClusterSecretStore, |ns, name| {
            ns.is_empty() && name == "vault"
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            !text.contains(r#"externalsecret_sync_calls_total{name="db""#),
            "{text}"
        );
        assert!(
            !text.contains(r#"externalsecret_status_condition{name="db""#),
            "{text}"
        );
        assert!(
            !text.contains(r#"externalsecret_reconcile_duration{name="db""#),
            "{text}"
        );
        assert!(
            !text.contains(r#"externalsecret_sync_calls_error{name="db""#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"clustersecretstore_reconcile_duration{name="vault",namespace=""} 900.0"#
            )
        );
    }

    #[test]
    fn ready_notes_are_per_object_and_taken_once() {
        use hush_api::external_secrets::SecretStore;
        let notes = ReadyNotes::default();
        let es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "team"}, "spec": {}
        }))
        .unwrap();
        let store: SecretStore = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "team"}, "spec": {"provider": {}}
        }))
        .unwrap();
        notes.note(&es, false);
        notes.note(&es, true);
        notes.note(&store, false);
        assert_eq!(notes.take(&es), 2, "the last Ready written");
        assert_eq!(notes.take(&es), 0, "taken once");
        assert_eq!(
            notes.take(&store),
            1,
            "another kind of the same name is its own"
        );
    }
}
