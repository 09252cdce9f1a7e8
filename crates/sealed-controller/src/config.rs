//! Settings of the SealedSecret controller (Bitnami's controller flags; the CLI maps them).

use std::collections::BTreeMap;
use std::net::IpAddr;
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
    /// `/v1/rotate` requests per second per client; 0 disables the limit.
    pub rotate_rate_limit: f64,
    /// `/v1/rotate` burst per client.
    pub rotate_rate_limit_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client for the rate limits; from any other
    /// peer the header is ignored and the peer address is the client.
    pub trusted_proxies: Vec<Cidr>,
    /// RSA private-key operations one SealedSecret's unseal may cost in a reconcile.
    pub max_decrypt_operations: usize,
    /// RSA private-key operations one `/v1/verify` or `/v1/rotate` request may cost.
    pub api_max_decrypt_operations: usize,
    /// `/v1/verify` and `/v1/rotate` requests decrypting at once (others wait); apart from the
    /// reconciles' own decryption slots, so requests cannot hold up reconciles.
    pub api_workers: usize,
    /// Budgets of each `spec.template.data` template, in reconciles and in the HTTP API (the
    /// `--template-max-*` flags).
    pub template_limits: hush_template::Limits,
    /// SealedSecrets reconciled at once.
    pub concurrency: u16,
    /// hush: retire keys older than this that no SealedSecret needs (`retire`); zero: never.
    pub key_retire_after: Duration,
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
            rotate_rate_limit: 10.0,
            rotate_rate_limit_burst: 20,
            trusted_proxies: Vec::new(),
            max_decrypt_operations: 10_000,
            api_max_decrypt_operations: 1_000,
            api_workers: (std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
                / 2)
            .max(1),
            template_limits: hush_template::Limits::default(),
            concurrency: 8,
            key_retire_after: Duration::ZERO,
        }
    }
}

/// An address range of `--trusted-proxies`: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an address or an address range (10.0.0.0/8)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Self {
            net: net.to_canonical(),
            prefix,
        })
    }
}

impl Cidr {
    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip.to_canonical() {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((net, width), (ip, ip_width)) = (bits(self.net), bits(ip));
        if width != ip_width {
            return false;
        }
        let host_bits = u32::from(width - self.prefix);
        net.checked_shr(host_bits).unwrap_or(0) == ip.checked_shr(host_bits).unwrap_or(0)
    }
}

/// Key retirement needs to see every SealedSecret's sync state: it cannot be combined with a
/// label selector (SealedSecrets outside it are never synced here) or without status updates.
pub fn validate_retirement(config: &Config) -> Result<(), String> {
    if config.key_retire_after.is_zero() {
        return Ok(());
    }
    if config.label_selector.is_some() {
        return Err(
            "--key-retire-after cannot be used with --label-selector: SealedSecrets \
                    outside the selector may need any key"
                .into(),
        );
    }
    if !config.update_status {
        return Err(
            "--key-retire-after needs --update-status: a key is retired only when \
                    every SealedSecret is known to be synced"
                .into(),
        );
    }
    Ok(())
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

    #[test]
    fn address_ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let range: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(range.contains(ip("10.1.200.3")));
        assert!(range.contains(ip("::ffff:10.1.0.1")));
        assert!(!range.contains(ip("10.2.0.1")));
        assert!(!range.contains(ip("::1")));
        let one: Cidr = "192.168.0.7".parse().unwrap();
        assert!(one.contains(ip("192.168.0.7")) && !one.contains(ip("192.168.0.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
