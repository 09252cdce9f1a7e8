//! Settings of the SealedSecret controller (Bitnami's controller flags; the CLI maps them).

use std::collections::BTreeMap;
use std::time::Duration;

/// How the newest key is chosen (`--key-order-priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyOrderPriority {
    /// The certificate's NotBefore (Bitnami's default).
    #[default]
    CertNotBefore,
    /// The key Secret's creationTimestamp.
    SecretCreationTimestamp,
}

impl std::str::FromStr for KeyOrderPriority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CertNotBefore" => Ok(Self::CertNotBefore),
            "SecretCreationTimestamp" => Ok(Self::SecretCreationTimestamp),
            _ => Err(format!(
                "unknown key order priority {s:?} (CertNotBefore or SecretCreationTimestamp)"
            )),
        }
    }
}

/// Which namespaces' SealedSecrets are reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// Every namespace (`--all-namespaces`, the default).
    All,
    /// These namespaces only (the controller's own plus `--additional-namespaces`).
    List(Vec<String>),
}

/// Controller settings. [`Config::new`] gives Bitnami's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace of the key Secrets (and of the leader Lease).
    pub key_namespace: String,
    /// `generateName` of key Secrets; also the name of the legacy key Secret.
    pub key_prefix: String,
    /// RSA key size in bits.
    pub key_size: usize,
    /// Certificate validity.
    pub key_ttl: Duration,
    /// Certificate CN.
    pub my_cn: String,
    /// Interval between new keys; zero disables renewal.
    pub key_renew_period: Duration,
    /// Generate a key at start when the newest is older than this (Unix seconds).
    pub key_cutoff_time: Option<i64>,
    /// How the newest key is chosen.
    pub key_order_priority: KeyOrderPriority,
    /// Labels added to new key Secrets.
    pub privatekey_labels: BTreeMap<String, String>,
    /// Annotations added to new key Secrets.
    pub privatekey_annotations: BTreeMap<String, String>,
    /// Namespaces to reconcile.
    pub namespaces: Namespaces,
    /// Label selector for SealedSecrets.
    pub label_selector: Option<String>,
    /// Write `.status`.
    pub update_status: bool,
    /// Do not watch Secrets (deleted or edited Secrets are then restored only on resync).
    pub skip_recreate: bool,
    /// Accept the deprecated v1 `spec.data`.
    pub accept_deprecated_v1_data: bool,
    /// Quick retries of an unseal failure before waiting for a change or the resync.
    pub max_unseal_retries: u32,
    /// Interval at which every SealedSecret is reconciled again.
    pub resync_period: Duration,
    /// Address of the HTTP API (`:8080`).
    pub listen_addr: String,
    /// `/v1/verify` requests per second per client.
    pub rate_limit: f64,
    /// `/v1/verify` burst per client.
    pub rate_limit_burst: u32,
    /// SealedSecrets reconciled at once.
    pub concurrency: u16,
}

impl Config {
    /// Bitnami's defaults, keys in `key_namespace`.
    pub fn new(key_namespace: impl Into<String>) -> Self {
        Self {
            key_namespace: key_namespace.into(),
            key_prefix: "sealed-secrets-key".into(),
            key_size: 4096,
            key_ttl: Duration::from_secs(87_600 * 3600),
            my_cn: String::new(),
            key_renew_period: Duration::from_secs(720 * 3600),
            key_cutoff_time: None,
            key_order_priority: KeyOrderPriority::CertNotBefore,
            privatekey_labels: BTreeMap::new(),
            privatekey_annotations: BTreeMap::new(),
            namespaces: Namespaces::All,
            label_selector: None,
            update_status: true,
            skip_recreate: false,
            accept_deprecated_v1_data: true,
            max_unseal_retries: 5,
            resync_period: Duration::from_secs(30 * 60),
            listen_addr: ":8080".into(),
            rate_limit: 2.0,
            rate_limit_burst: 2,
            concurrency: 8,
        }
    }
}

/// Checks `--key-prefix` as Bitnami does: `[a-z0-9-]`, at most 245 characters.
pub fn validate_key_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty()
        || prefix.len() > 245
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "key prefix {prefix:?} must be 1-245 characters of [a-z0-9-]"
        ));
    }
    Ok(())
}

/// Parses `k=v,k2=v2` (`--privatekey-labels`, `--privatekey-annotations`).
pub fn parse_key_values(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_and_prefix() {
        let m = parse_key_values("a=1, b=x=y,,").unwrap_or_default();
        assert_eq!(m.get("a").map(String::as_str), Some("1"));
        assert_eq!(m.get("b").map(String::as_str), Some("x=y"));
        assert!(parse_key_values("nope").is_err());
        assert!(validate_key_prefix("sealed-secrets-key").is_ok());
        assert!(validate_key_prefix("Sealed").is_err());
        assert!(validate_key_prefix("").is_err());
    }
}
