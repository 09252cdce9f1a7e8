//! External Secrets Operator's metric names and labels on the shared metrics endpoint, so ESO's
//! dashboards and alerts keep working (`ESO:docs/api/metrics.md`):
//!
//! - `externalsecret_sync_calls_total{name,namespace}`: reconciles (counter);
//! - `externalsecret_sync_calls_error{name,namespace}`: failed reconciles;
//! - `externalsecret_status_condition{name,namespace,condition,status}`: 1 for the current
//!   `Ready` status, 0 for the other;
//! - `externalsecret_reconcile_duration{name,namespace}`: the last reconcile, in nanoseconds;
//! - `externalsecret_provider_api_calls_count{provider,call,status}`: provider API calls
//!   (`hush_sync::calls`; reads the cache answered are not calls).
//!
//! ESO exposes `sync_calls_error` and `provider_api_calls_count` without a `_total` suffix; the
//! OpenMetrics encoder adds one to every counter, so they are gauges that only go up (PromQL's
//! `rate`/`increase` work on them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use hush_api::external_secrets::ExternalSecret;
use hush_operator::metrics::Labels;
use kube::ResourceExt as _;
use kube::runtime::controller::Action;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Error;
use crate::reconcile::Context;

/// The families (cheap to clone: handles). [`Default`] gives unregistered ones.
#[derive(Debug, Clone, Default)]
pub struct EsoMetrics {
    sync_calls: Family<Labels, Counter>,
    sync_errors: Family<Labels, Gauge>,
    condition: Family<Labels, Gauge>,
    duration: Family<Labels, Gauge<f64, AtomicU64>>,
    provider_calls: Family<Labels, Gauge>,
}

tokio::task_local! {
    /// The `Ready` status the running reconcile wrote: 0 none, 1 False, 2 True.
    static READY: Arc<AtomicU8>;
}

/// Called where the reconciler sets `Ready` (no-op outside [`reconcile`]).
pub(crate) fn note_ready(ready: bool) {
    let _ = READY.try_with(|r| r.store(if ready { 2 } else { 1 }, Ordering::Relaxed));
}

impl EsoMetrics {
    /// Registers every family in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
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
        registry.register(
            "externalsecret_status_condition",
            "The status condition of a specific External Secret",
            this.condition.clone(),
        );
        registry.register(
            "externalsecret_reconcile_duration",
            "The duration time to reconcile the External Secret",
            this.duration.clone(),
        );
        registry.register(
            "externalsecret_provider_api_calls_count",
            "Number of API calls towards the secret provider",
            this.provider_calls.clone(),
        );
        // One observer per process: the first registry counts the provider calls.
        let calls = this.provider_calls.clone();
        hush_sync::calls::observe_with(Arc::new(move |provider, call, ok| {
            let labels: Labels = vec![
                ("provider".to_owned(), provider.to_owned()),
                ("call".to_owned(), call.to_owned()),
                (
                    "status".to_owned(),
                    if ok { "success" } else { "error" }.to_owned(),
                ),
            ];
            calls.get_or_create(&labels).inc();
        }));
        this
    }

    fn record(&self, es: &ExternalSecret, took_ns: f64, ok: bool, ready: u8) {
        let labels: Labels = vec![
            ("name".to_owned(), es.name_any()),
            ("namespace".to_owned(), es.namespace().unwrap_or_default()),
        ];
        self.sync_calls.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).set(took_ns);
        if !ok {
            self.sync_errors.get_or_create(&labels).inc();
        }
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

/// [`crate::reconcile::reconcile`] with ESO's metrics recorded.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let metrics = ctx.config.eso_metrics.clone();
    let start = Instant::now();
    let ready = Arc::new(AtomicU8::new(0));
    let result = READY
        .scope(
            Arc::clone(&ready),
            crate::reconcile::reconcile(Arc::clone(&es), ctx),
        )
        .await;
    let took = start.elapsed().as_nanos() as f64;
    metrics.record(&es, took, result.is_ok(), ready.load(Ordering::Relaxed));
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
        m.record(&es, 1500.0, true, 2);
        m.record(&es, 2500.0, false, 1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            r#"externalsecret_sync_calls_total{name="db",namespace="team"} 2"#,
            r#"externalsecret_sync_calls_error{name="db",namespace="team"} 1"#,
            r#"externalsecret_status_condition{name="db",namespace="team",condition="Ready",status="True"} 0"#,
            r#"externalsecret_status_condition{name="db",namespace="team",condition="Ready",status="False"} 1"#,
            r#"externalsecret_reconcile_duration{name="db",namespace="team"} 2500.0"#,
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
    }
}
