//! The process's metrics: one [`Registry`] that every controller registers into at start-up and
//! the metrics endpoint serves, plus the runtime's own families
//! (`hush_reconcile_total{controller,result}`, `hush_reconcile_duration_seconds{controller}`,
//! `hush_leader`), and controller-runtime's reconcile families for the controllers that replace
//! a controller-runtime one (ESO's dashboards and SLOs read them):
//! `controller_runtime_reconcile_total{controller,result}` (`success`, `requeue_after`, `error`),
//! `controller_runtime_reconcile_errors_total{controller}`,
//! `controller_runtime_reconcile_time_seconds{controller}` (controller-runtime's buckets),
//! `controller_runtime_max_concurrent_reconciles{controller}` and
//! `controller_runtime_active_workers{controller}`.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set type used by hush's families: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

/// Histogram of durations in seconds from 1 ms to about 16 s.
pub fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// controller-runtime's `reconcile_time_seconds` buckets.
fn runtime_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
        0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
        15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
    ])
}

/// How a reconciliation ended, in controller-runtime's `result` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Done until something changes.
    Success,
    /// Done, and due again after a while.
    RequeueAfter,
    /// Failed.
    Error,
}

/// The runtime's reconcile metrics.
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    reconciles: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    leader: Gauge,
    runtime_reconciles: Family<Labels, Counter>,
    runtime_errors: Family<Labels, Counter>,
    runtime_duration: Family<Labels, Histogram, fn() -> Histogram>,
    runtime_max_concurrent: Family<Labels, Gauge>,
    runtime_active: Family<Labels, Gauge>,
}

impl ReconcileMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            reconciles: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            leader: Gauge::default(),
            runtime_reconciles: Family::default(),
            runtime_errors: Family::default(),
            runtime_duration: Family::new_with_constructor(runtime_histogram),
            runtime_max_concurrent: Family::default(),
            runtime_active: Family::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            this.runtime_reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            this.runtime_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            this.runtime_duration.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            this.runtime_max_concurrent.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            this.runtime_active.clone(),
        );
        registry.register(
            "hush_reconcile",
            "Reconciliations by controller and result (ok, error)",
            this.reconciles.clone(),
        );
        registry.register(
            "hush_reconcile_duration_seconds",
            "Time spent in one reconciliation",
            this.duration.clone(),
        );
        registry.register(
            "hush_leader",
            "1 while this replica holds the leader Lease (or runs without leader election)",
            this.leader.clone(),
        );
        this
    }

    /// Records one reconciliation.
    pub fn observe(&self, controller: &str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&vec![
                ("controller".to_owned(), controller.to_owned()),
                ("result".to_owned(), result.to_owned()),
            ])
            .inc();
        self.duration
            .get_or_create(&vec![("controller".to_owned(), controller.to_owned())])
            .observe(took.as_secs_f64());
    }

    /// Records one reconciliation of the controller-runtime controller `controller`.
    pub fn observe_runtime(&self, controller: &str, result: ReconcileResult, took: Duration) {
        let name = vec![("controller".to_owned(), controller.to_owned())];
        let result = match result {
            ReconcileResult::Success => "success",
            ReconcileResult::RequeueAfter => "requeue_after",
            ReconcileResult::Error => "error",
        };
        let mut labels = name.clone();
        labels.push(("result".to_owned(), result.to_owned()));
        self.runtime_reconciles.get_or_create(&labels).inc();
        // Present from the first reconcile on, as controller-runtime initialises it.
        let errors = self.runtime_errors.get_or_create(&name);
        if result == "error" {
            errors.inc();
        }
        self.runtime_duration
            .get_or_create(&name)
            .observe(took.as_secs_f64());
    }

    /// Sets `controller_runtime_max_concurrent_reconciles` of `controller`.
    pub fn set_max_concurrent(&self, controller: &str, workers: u16) {
        self.runtime_max_concurrent
            .get_or_create(&vec![("controller".to_owned(), controller.to_owned())])
            .set(i64::from(workers));
    }

    /// Moves `controller_runtime_active_workers` of `controller` by `delta`.
    pub fn add_active(&self, controller: &str, delta: i64) {
        self.runtime_active
            .get_or_create(&vec![("controller".to_owned(), controller.to_owned())])
            .inc_by(delta);
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_runtime_families_have_its_names_and_labels() {
        let mut registry = Registry::default();
        let m = ReconcileMetrics::register(&mut registry);
        m.set_max_concurrent("externalsecret", 16);
        m.add_active("externalsecret", 1);
        m.observe_runtime(
            "externalsecret",
            ReconcileResult::RequeueAfter,
            Duration::from_millis(20),
        );
        m.observe_runtime(
            "externalsecret",
            ReconcileResult::Success,
            Duration::from_millis(7),
        );
        m.add_active("externalsecret", -1);
        m.observe_runtime(
            "secretstore",
            ReconcileResult::Success,
            Duration::from_millis(3),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            r#"controller_runtime_reconcile_total{controller="externalsecret",result="requeue_after"} 1"#,
            r#"controller_runtime_reconcile_total{controller="externalsecret",result="success"} 1"#,
            r#"controller_runtime_reconcile_errors_total{controller="secretstore"} 0"#,
            r#"controller_runtime_reconcile_time_seconds_count{controller="externalsecret"} 2"#,
            r#"controller_runtime_reconcile_time_seconds_bucket{le="0.01",controller="externalsecret"} 1"#,
            r#"controller_runtime_max_concurrent_reconciles{controller="externalsecret"} 16"#,
            r#"controller_runtime_active_workers{controller="externalsecret"} 0"#,
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
    }
}
