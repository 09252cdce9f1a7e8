//! Vault (OpenBao) helpers shared by the benchmark drivers: a token-authenticated HTTP client and
//! request counts from a file audit device.
#![allow(dead_code, reason = "each driver uses a part")]

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;

/// A Vault HTTP API client with one token.
pub(crate) struct Vault {
    pub(crate) http: reqwest::Client,
    pub(crate) addr: String,
    pub(crate) token: String,
}

impl Vault {
    pub(crate) fn new(addr: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            addr: addr.to_owned(),
            token: token.to_owned(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        ensure!(status.is_success(), "{method} {path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Vault requests in the audit log from byte `from` on, by kind.
#[derive(Debug, Default)]
pub(crate) struct AuditCounts {
    pub(crate) logins: usize,
    /// Requests under the KV prefix (reads: the drivers' tokens may only read there).
    pub(crate) kv_reads: usize,
    /// Distinct paths among `kv_reads`.
    pub(crate) kv_keys: usize,
    pub(crate) other_kv_reads: usize,
    pub(crate) lookups: usize,
    pub(crate) renewals: usize,
    pub(crate) revokes: usize,
    pub(crate) total: usize,
}

/// The audit log's length now: where the next count starts.
pub(crate) fn audit_len(path: &str) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("audit log {path}"))?
        .len())
}

/// Counts the requests logged after byte `from`: reads under `kv_prefix` (except `other_key`,
/// counted apart), logins and token calls.
pub(crate) fn audit_counts(
    path: &str,
    from: u64,
    kv_prefix: &str,
    other_key: &str,
) -> Result<AuditCounts> {
    audit_counts_between(path, from..u64::MAX, kv_prefix, other_key)
}

/// As [`audit_counts`], for the requests logged between two lengths of the log.
pub(crate) fn audit_counts_between(
    path: &str,
    range: std::ops::Range<u64>,
    kv_prefix: &str,
    other_key: &str,
) -> Result<AuditCounts> {
    let bytes = std::fs::read(path).with_context(|| format!("audit log {path}"))?;
    let end = usize::try_from(range.end)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let start = usize::try_from(range.start)?.min(end);
    let mut c = AuditCounts::default();
    let mut keys = std::collections::HashSet::new();
    for line in String::from_utf8_lossy(&bytes[start..end]).lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if e["type"] != "request" {
            continue;
        }
        let p = e["request"]["path"].as_str().unwrap_or_default();
        c.total += 1;
        if p == "auth/approle/login" {
            c.logins += 1;
        } else if p == other_key {
            c.other_kv_reads += 1;
        } else if p.starts_with(kv_prefix) {
            c.kv_reads += 1;
            keys.insert(p.to_owned());
        } else if p == "auth/token/lookup-self" {
            c.lookups += 1;
        } else if p == "auth/token/renew-self" {
            c.renewals += 1;
        } else if p.starts_with("auth/token/revoke") {
            c.revokes += 1;
        }
    }
    c.kv_keys = keys.len();
    Ok(c)
}
