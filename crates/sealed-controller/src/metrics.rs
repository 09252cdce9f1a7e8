//! Metrics with Bitnami's names and labels (namespace `sealed_secrets_controller`), so existing
//! dashboards and the `SealedSecretsUnsealErrorHigh` alert keep working, plus hush's own
//! (`hush_sealed_*`: decrypts, skipped decrypts, key count and age, unseal latency).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use hush_operator::metrics::{Labels, duration_histogram};

fn http_histogram() -> Histogram {
    // Prometheus' default buckets, as promhttp's.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The labels of `sealed_secrets_controller_condition_info`, in Bitnami's order. One set per
/// SealedSecret: a struct holds two short strings where `Vec<(String, String)>` held eight
/// strings and the vector (5.6 MB of the controller's heap at 10,000 SealedSecrets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConditionLabels {
    namespace: String,
    name: String,
    condition: &'static str,
    ss_app_kubernetes_io_instance: String,
}

/// The controller's metric families (cheap to clone: every field is a handle).
#[derive(Debug, Clone)]
pub struct SealedMetrics {
    unseal_requests: Counter,
    unseal_errors: Family<Labels, Counter>,
    condition_info: Family<ConditionLabels, Gauge>,
    http_requests: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram, fn() -> Histogram>,
    decrypts: Counter,
    skips: Counter,
    keys_retired: Counter,
    keys: Gauge,
    newest_key_timestamp: Gauge,
    unseal_duration: Histogram,
}

impl SealedMetrics {
    /// Registers every family in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            unseal_requests: Counter::default(),
            unseal_errors: Family::default(),
            condition_info: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram),
            decrypts: Counter::default(),
            skips: Counter::default(),
            keys_retired: Counter::default(),
            keys: Gauge::default(),
            newest_key_timestamp: Gauge::default(),
            unseal_duration: duration_histogram(),
        };
        let build_info: Family<Labels, Gauge> = Family::default();
        build_info
            .get_or_create(&vec![(
                "revision".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        let r = registry;
        r.register(
            "sealed_secrets_controller_build_info",
            "Build information",
            build_info,
        );
        r.register(
            "sealed_secrets_controller_unseal_requests",
            "Total number of sealed secret unseal requests",
            this.unseal_requests.clone(),
        );
        r.register(
            "sealed_secrets_controller_unseal_errors",
            "Total number of sealed secret unseal errors by reason",
            this.unseal_errors.clone(),
        );
        r.register(
            "sealed_secrets_controller_condition_info",
            "Current SealedSecret condition status. Values are -1 (false), 0 (unknown or absent), 1 (true)",
            this.condition_info.clone(),
        );
        r.register(
            "sealed_secrets_controller_http_requests",
            "Total number of HTTP requests by path, code and method",
            this.http_requests.clone(),
        );
        r.register(
            "sealed_secrets_controller_http_request_duration_seconds",
            "HTTP request latency by path and method",
            this.http_duration.clone(),
        );
        r.register(
            "hush_sealed_decrypts",
            "Sealed values decrypted (RSA private-key operations that succeeded)",
            this.decrypts.clone(),
        );
        r.register(
            "hush_sealed_unseal_skips",
            "Reconciliations that found the Secret up to date without decrypting",
            this.skips.clone(),
        );
        r.register("hush_sealed_keys", "Sealing keys loaded", this.keys.clone());
        r.register(
            "hush_sealed_keys_retired",
            "Sealing keys retired because no SealedSecret needed them (--key-retire-after)",
            this.keys_retired.clone(),
        );
        r.register(
            "hush_sealed_newest_key_timestamp_seconds",
            "Ordering time (certificate NotBefore or Secret creation) of the newest key, Unix seconds",
            this.newest_key_timestamp.clone(),
        );
        r.register(
            "hush_sealed_unseal_duration_seconds",
            "Time to decrypt one SealedSecret",
            this.unseal_duration.clone(),
        );
        this
    }

    /// One reconcile request.
    pub fn unseal_request(&self) {
        self.unseal_requests.inc();
    }

    /// One error: `reason` ∈ {fetch, unseal, update, unmanaged, status}.
    pub fn unseal_error(&self, reason: &str, namespace: &str) {
        self.unseal_errors
            .get_or_create(&vec![
                ("reason".to_owned(), reason.to_owned()),
                ("namespace".to_owned(), namespace.to_owned()),
            ])
            .inc();
    }

    /// Sets the `Synced` condition gauge of one SealedSecret (`None` removes it).
    pub fn set_condition(&self, namespace: &str, name: &str, instance: &str, value: Option<bool>) {
        let labels = ConditionLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            condition: "Synced",
            ss_app_kubernetes_io_instance: instance.to_owned(),
        };
        match value {
            Some(v) => {
                self.condition_info
                    .get_or_create(&labels)
                    .set(if v { 1 } else { -1 });
            }
            None => {
                self.condition_info.remove(&labels);
            }
        }
    }

    /// One HTTP request to a `/v1` endpoint.
    pub fn http_request(&self, path: &str, method: &str, code: u16, took: Duration) {
        let method = method_label(method);
        self.http_requests
            .get_or_create(&vec![
                ("path".to_owned(), path.to_owned()),
                ("code".to_owned(), code.to_string()),
                ("method".to_owned(), method.to_owned()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&vec![
                ("path".to_owned(), path.to_owned()),
                ("method".to_owned(), method.to_owned()),
            ])
            .observe(took.as_secs_f64());
    }

    /// `n` values decrypted in `took`.
    pub fn decrypted(&self, n: usize, took: Duration) {
        self.decrypts.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        self.unseal_duration.observe(took.as_secs_f64());
    }

    /// A key retired (`retire`).
    pub fn key_retired(&self) {
        self.keys_retired.inc();
    }

    /// A reconciliation that needed no decryption.
    pub fn skipped(&self) {
        self.skips.inc();
    }

    /// Key count and the newest key's time (Unix seconds, 0 without keys).
    pub fn set_keys(&self, count: usize, newest: Option<i64>) {
        self.keys.set(i64::try_from(count).unwrap_or(i64::MAX));
        self.newest_key_timestamp.set(newest.unwrap_or(0));
    }
}

/// The `method` label: the standard methods in lower case, anything else `other`. A client
/// chooses the method string, so copying it would let anyone add series without end
/// (client_golang CVE-2022-21698).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "get", "head", "post", "put", "delete", "connect", "options", "trace", "patch",
    ];
    KNOWN
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_info_keeps_bitnami_labels_and_order() {
        let mut registry = Registry::default();
        let metrics = SealedMetrics::register(&mut registry);
        metrics.set_condition("ns", "n", "app", Some(true));
        metrics.set_condition("ns", "m", "", Some(false));
        metrics.set_condition("ns", "gone", "", Some(true));
        metrics.set_condition("ns", "gone", "", None);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(
            r#"sealed_secrets_controller_condition_info{namespace="ns",name="n",condition="Synced",ss_app_kubernetes_io_instance="app"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"sealed_secrets_controller_condition_info{namespace="ns",name="m",condition="Synced",ss_app_kubernetes_io_instance=""} -1"#
        ), "{text}");
        assert!(!text.contains(r#"name="gone""#), "{text}");
    }

    #[test]
    fn method_label_is_bounded() {
        let mut registry = Registry::default();
        let metrics = SealedMetrics::register(&mut registry);
        for i in 0..1000 {
            metrics.http_request("/v1/cert.pem", &format!("X{i}"), 200, Duration::ZERO);
        }
        metrics.http_request("/v1/cert.pem", "GET", 200, Duration::ZERO);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let series = text
            .lines()
            .filter(|l| l.starts_with("sealed_secrets_controller_http_requests_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(text.contains(r#"method="other""#) && text.contains(r#"method="get""#));
    }
}
