//! `.sops.yaml` `destination_rules`: the first rule whose `path_regex` matches the path as given
//! on the command line (sops matches it unchanged, not relative to the config file) names one
//! destination and, optionally, a `recreation_rule` whose keys re-encrypt the file for it.
//!
//! The configuration is repository content. Every field of the matching rule is honoured or
//! refused by name; Vault paths and mounts with `.`/`..` segments are refused (a URL parser would
//! collapse them into another API path); a `vault_address` gets the operator's Vault token only
//! when the operator allowed that address (`VAULT_ADDR`, `HUSH_SOPS_VAULT_ADDRS`).

use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result};
use hush_render::decrypt::VaultAddresses;
use hush_sops::tree::{Item, Value};
use hush_vault::KvVersion;
use regex::Regex;

use super::super::config::{self, Config, CreationRule, get, string};
use super::super::exit::{codes, exit};

/// Where a file is published.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Destination {
    /// `s3_bucket`, `s3_prefix`: the (re-encrypted) file as an object.
    S3 { bucket: String, prefix: String },
    /// `vault_path`, `vault_address`, `vault_kv_mount_name`, `vault_kv_version`: the decrypted
    /// values as one KV secret.
    Vault {
        address: String,
        path: String,
        mount: String,
        kv: KvVersion,
    },
    /// hush: `local_dir`: the (re-encrypted) file under a directory inside the configuration
    /// file's directory (`root`), which it may not leave (no absolute path, no `..`, no
    /// symbolic link out of it).
    Local { dir: PathBuf, root: PathBuf },
}

/// The matching destination rule.
#[derive(Debug, Clone)]
pub(super) struct DestinationRule {
    pub(super) destination: Destination,
    /// The `recreation_rule`; no keys = publish the file as it is.
    pub(super) recreation: CreationRule,
    pub(super) omit_extensions: bool,
}

/// Fields of a destination rule (sops 3.11's, plus hush's `local_dir`).
const FIELDS: &[&str] = &[
    "path_regex",
    "s3_bucket",
    "s3_prefix",
    "gcs_bucket",
    "gcs_prefix",
    "vault_path",
    "vault_address",
    "vault_kv_mount_name",
    "vault_kv_version",
    "recreation_rule",
    "omit_extensions",
    "local_dir",
];

/// The Vault address the Go Vault client uses when neither the rule nor `VAULT_ADDR` names one.
const DEFAULT_VAULT_ADDR: &str = "https://127.0.0.1:8200";

impl DestinationRule {
    /// The first destination rule that matches `file` (as given), parsed and checked.
    pub(super) fn for_file(cfg: &Config, file: &Path) -> Result<Self> {
        let Some(cfg_path) = cfg.path.as_deref() else {
            return Err(exit(
                codes::GENERIC,
                "config file not found: publish needs a .sops.yaml (or --config) with destination_rules",
            ));
        };
        let (index, rule) = matching(cfg, cfg_path, file)?.ok_or_else(|| {
            exit(
                codes::GENERIC,
                format!(
                    "error loading config: no matching destination found in config ({}: no \
                     destination_rules entry matches {})",
                    cfg_path.display(),
                    file.display()
                ),
            )
        })?;
        let at = format!("{} destination_rules[{index}]", cfg_path.display());
        check_fields(rule, &at)?;
        let destination = destination(rule, cfg_path, &at)?;
        let omit_extensions = match get(rule, "omit_extensions") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(field_error(&at, "omit_extensions", "must be true or false")),
        };
        let recreation = match get(rule, "recreation_rule") {
            Some(Value::Map(r)) => {
                config::parse_rule(r, cfg_path).with_context(|| format!("{at}: recreation_rule"))?
            }
            None | Some(Value::Null) => CreationRule::default(),
            Some(_) => return Err(field_error(&at, "recreation_rule", "must be a mapping")),
        };
        if matches!(destination, Destination::Vault { .. }) && !recreation.groups.is_empty() {
            eprintln!(
                "[hush sops] warning: {at}: recreation_rule is not used for a Vault destination \
                 (Vault receives the decrypted values)"
            );
        }
        Ok(Self {
            destination,
            recreation,
            omit_extensions,
        })
    }
}

fn matching<'a>(
    cfg: &'a Config,
    cfg_path: &Path,
    file: &Path,
) -> Result<Option<(usize, &'a [Item])>> {
    let name = file.to_string_lossy();
    for (index, rule) in cfg.destination_rules.iter().enumerate() {
        let Value::Map(r) = rule else {
            return Err(exit(
                codes::GENERIC,
                format!(
                    "{} destination_rules[{index}]: must be a mapping",
                    cfg_path.display()
                ),
            ));
        };
        match string(get(r, "path_regex")).filter(|re| !re.is_empty()) {
            None => return Ok(Some((index, r))),
            Some(re) => {
                let re = Regex::new(&re).with_context(|| {
                    format!(
                        "{} destination_rules[{index}]: invalid path_regex {re:?}",
                        cfg_path.display()
                    )
                })?;
                if re.is_match(&name) {
                    return Ok(Some((index, r)));
                }
            }
        }
    }
    Ok(None)
}

fn field_error(at: &str, field: &str, what: &str) -> anyhow::Error {
    exit(codes::GENERIC, format!("{at}: {field} {what}"))
}

fn check_fields(rule: &[Item], at: &str) -> Result<()> {
    for item in rule {
        let Item::Entry(k, _) = item else { continue };
        if FIELDS.contains(&k.as_str()) {
            continue;
        }
        let hint = if k == "reencryption_rule" {
            " (the field is recreation_rule)"
        } else {
            ""
        };
        return Err(exit(
            codes::GENERIC,
            format!(
                "{at}: unknown field {k:?}{hint}; a destination rule has {}",
                FIELDS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A string field; "" when absent; an error naming it when it is not a scalar.
fn text(rule: &[Item], field: &str, at: &str) -> Result<String> {
    match get(rule, field) {
        None | Some(Value::Null) => Ok(String::new()),
        v @ Some(Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)) => {
            Ok(string(v).unwrap_or_default())
        }
        Some(_) => Err(field_error(at, field, "must be a string")),
    }
}

fn destination(rule: &[Item], cfg_path: &Path, at: &str) -> Result<Destination> {
    let s3 = text(rule, "s3_bucket", at)?;
    let gcs = text(rule, "gcs_bucket", at)?;
    let vault = text(rule, "vault_path", at)?;
    let local = text(rule, "local_dir", at)?;
    let named = [&s3, &gcs, &vault, &local]
        .iter()
        .filter(|v| !v.is_empty())
        .count();
    if named > 1 {
        return Err(exit(
            codes::GENERIC,
            format!(
                "error loading config: more than one destinations were found in a single \
                 destination rule, you can only use one per rule ({at})"
            ),
        ));
    }
    if !gcs.is_empty() {
        return Err(exit(
            codes::GENERIC,
            format!(
                "{at}: gcs_bucket {gcs:?}: hush cannot publish to Google Cloud Storage (it has \
                 no GCS client); use s3_bucket, vault_path or local_dir, or publish this file \
                 with sops"
            ),
        ));
    }
    if !s3.is_empty() {
        hush_aws::s3::check_bucket(&s3).map_err(|e| exit(codes::GENERIC, format!("{at}: {e}")))?;
        let prefix = text(rule, "s3_prefix", at)?;
        return Ok(Destination::S3 { bucket: s3, prefix });
    }
    if !vault.is_empty() {
        return vault_destination(rule, vault, at);
    }
    if !local.is_empty() {
        let relative = Path::new(&local);
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(field_error(
                at,
                "local_dir",
                &format!(
                    "{local:?} must be a relative path inside the directory of the .sops.yaml \
                     (no absolute path, no '..'): a repository's configuration may not choose \
                     where on this machine files are written"
                ),
            ));
        }
        let root = cfg_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        return Ok(Destination::Local {
            dir: root.join(relative),
            root,
        });
    }
    Err(exit(
        codes::GENERIC,
        format!(
            "no destination configured for this file ({at} names none of s3_bucket, \
             gcs_bucket, vault_path, local_dir)"
        ),
    ))
}

fn vault_destination(rule: &[Item], path: String, at: &str) -> Result<Destination> {
    let with_slash = |s: String| {
        if s.ends_with('/') { s } else { s + "/" }
    };
    let path = with_slash(path);
    let mount = text(rule, "vault_kv_mount_name", at)?;
    let mount = with_slash(if mount.is_empty() {
        "secret".to_owned()
    } else {
        mount
    });
    for (field, value) in [("vault_path", &path), ("vault_kv_mount_name", &mount)] {
        check_vault_path(value).map_err(|e| field_error(at, field, &e))?;
    }
    let kv = match get(rule, "vault_kv_version") {
        None | Some(Value::Null) | Some(Value::Int(0 | 2)) => KvVersion::V2,
        Some(Value::Int(1)) => KvVersion::V1,
        Some(_) => return Err(field_error(at, "vault_kv_version", "must be 1 or 2")),
    };
    let address = vault_address(&text(rule, "vault_address", at)?, at)?;
    Ok(Destination::Vault {
        address,
        path,
        mount,
        kv,
    })
}

/// A Vault API path piece from the configuration: no `.`/`..` segment, no `?`, `#`, `%` or
/// control character (they would change which API path the request reaches).
fn check_vault_path(p: &str) -> std::result::Result<(), String> {
    let bad_char = p
        .chars()
        .find(|c| c.is_control() || matches!(c, '?' | '#' | '%' | '\\'));
    if let Some(c) = bad_char {
        return Err(format!("{p:?} has the character {c:?}"));
    }
    if p.starts_with('/') || p.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "{p:?} must be a relative path without '.' or '..' segments"
        ));
    }
    Ok(())
}

/// The address the token goes to: the rule's `vault_address` only when the operator allowed
/// it (`VAULT_ADDR` or `HUSH_SOPS_VAULT_ADDRS`), else `VAULT_ADDR`, else the Vault client's
/// default.
fn vault_address(from_rule: &str, at: &str) -> Result<String> {
    let env_addr = std::env::var("VAULT_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty());
    if from_rule.trim().is_empty() {
        return Ok(env_addr.unwrap_or_else(|| DEFAULT_VAULT_ADDR.to_owned()));
    }
    let extra = std::env::var("HUSH_SOPS_VAULT_ADDRS").unwrap_or_default();
    let allowed = VaultAddresses::new(
        env_addr
            .iter()
            .map(String::as_str)
            .chain(extra.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty()),
    )
    .map_err(|e| {
        exit(
            codes::GENERIC,
            format!("VAULT_ADDR/HUSH_SOPS_VAULT_ADDRS: {e}"),
        )
    })?;
    if allowed.allows(from_rule) {
        return Ok(from_rule.trim().to_owned());
    }
    Err(exit(
        codes::GENERIC,
        format!(
            "{at}: vault_address {from_rule:?} is not a Vault address this environment allows \
             (VAULT_ADDR, HUSH_SOPS_VAULT_ADDRS), so the Vault token is not sent there; add it \
             to HUSH_SOPS_VAULT_ADDRS (comma-separated) to publish to it"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_paths_that_would_reach_another_api_path_are_refused() {
        for ok in ["sops/", "team/app/", "secret/", "kv-v1/"] {
            assert!(check_vault_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "../sys/policy/",
            "a/../../sys/",
            "./x/",
            "/abs/",
            "a?b/",
            "a#b/",
            "a%2e%2e/",
            "a\nb/",
            "a\\b/",
        ] {
            assert!(check_vault_path(bad).is_err(), "{bad:?}");
        }
    }
}
