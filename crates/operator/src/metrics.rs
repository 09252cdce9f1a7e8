//! The process's metrics: one [`Registry`] that every controller registers into at start-up and
//! the metrics endpoint serves, plus the runtime's own families
//! (`hush_reconcile_total{controller,result}`, `hush_reconcile_duration_seconds{controller}`,
//! `hush_leader`).

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

/// The runtime's reconcile metrics.
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    reconciles: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    leader: Gauge,
}

impl ReconcileMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            reconciles: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            leader: Gauge::default(),
        };
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

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}
