//! Keys and encryption rules from flags, merged with the matching `.sops.yaml` creation rule.

use std::path::Path;

use anyhow::Result;
use hush_sops::crypt::Rule;
use hush_sops::file::EncryptOptions;
use hush_sops::tree::Value;

use super::args::Opts;
use super::config::{Config, KeyRef};
use super::exit::{codes, exit};
use super::keys;

pub(super) fn split_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The comma-separated entries of a key flag: of every occurrence when `repeat` (sops'
/// `groups add`), else of the last one (sops keeps only the last of a repeated flag).
pub(super) fn split_all(values: &[String], repeat: bool) -> Vec<String> {
    let used = if repeat {
        values
    } else {
        &values[values.len().saturating_sub(1)..]
    };
    used.iter().flat_map(|v| split_list(Some(v))).collect()
}

pub(super) fn kms_context(o: &Opts) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for pair in split_list(o.encryption_context.as_deref()) {
        let (k, v) = pair.split_once(':').ok_or_else(|| {
            exit(
                6,
                format!("invalid encryption context {pair:?}: expected key:value"),
            )
        })?;
        out.push((k.to_owned(), Value::Str(v.to_owned())));
    }
    Ok(out)
}

/// Keys named by flags, as one group; `repeat`: every occurrence of a repeated flag counts.
pub(super) fn flag_keys(o: &Opts, repeat: bool) -> Result<Vec<KeyRef>> {
    let mut g = Vec::new();
    let ctx = kms_context(o)?;
    let profile = o.aws_profile.as_deref().unwrap_or("");
    for kind in hush_keys::KINDS {
        let Some(flag) = kind.flag else { continue };
        for id in split_all(o.key_flag(flag), repeat) {
            g.push(flag_key(kind, &id, profile, &ctx)?);
        }
    }
    Ok(g)
}

/// A key of `kind` named on a flag: checked by its row first (a HuaweiCloud KMS id must be
/// `region:key-uuid`; sops' messages, exit 1).
pub(super) fn flag_key(
    kind: &hush_keys::KeyKind,
    id: &str,
    profile: &str,
    ctx: &[(String, Value)],
) -> Result<KeyRef> {
    (kind.check_id)(id.trim()).map_err(|message| exit(codes::GENERIC, message))?;
    Ok(KeyRef::named(kind, id, profile, ctx))
}

pub(super) fn flag_rule(o: &Opts) -> Result<Option<(String, String)>> {
    let all = [
        ("unencrypted_suffix", &o.unencrypted_suffix),
        ("encrypted_suffix", &o.encrypted_suffix),
        ("unencrypted_regex", &o.unencrypted_regex),
        ("encrypted_regex", &o.encrypted_regex),
        ("unencrypted_comment_regex", &o.unencrypted_comment_regex),
        ("encrypted_comment_regex", &o.encrypted_comment_regex),
    ];
    let set: Vec<(String, String)> = all
        .iter()
        .filter_map(|(f, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| ((*f).to_owned(), v.clone()))
        })
        .collect();
    if set.len() > 1 {
        return Err(exit(
            8,
            "error: cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file",
        ));
    }
    Ok(set.into_iter().next())
}

pub(super) fn encrypt_options(o: &Opts, cfg: &Config, rules_path: &Path) -> Result<EncryptOptions> {
    let rule = cfg.rule_for(rules_path)?;
    let flags = flag_keys(o, false)?;
    let groups = if !flags.is_empty() {
        vec![flags]
    } else {
        rule.as_ref().map(|r| r.groups.clone()).unwrap_or_default()
    };
    if groups.iter().all(Vec::is_empty) {
        return Err(exit(
            codes::NO_ENCRYPTION_KEY,
            format!(
                "{}: no master keys: pass --age (or --pgp, --kms, --hc-vault-transit), set SOPS_AGE_RECIPIENTS, or add a creation rule for this path to .sops.yaml",
                rules_path.display()
            ),
        ));
    }
    let crypt = match flag_rule(o)? {
        Some(r) => Some(r),
        None => rule.as_ref().and_then(|r| r.crypt_rule.clone()),
    };
    let crypt = match crypt {
        Some((f, t)) => Rule::from_field(&f, &t)?,
        None => None,
    };
    Ok(EncryptOptions {
        rule: crypt,
        mac_only_encrypted: o.mac_only_encrypted
            || rule.as_ref().is_some_and(|r| r.mac_only_encrypted),
        shamir_threshold: o
            .shamir_secret_sharing_threshold
            .or(rule.as_ref().map(|r| r.shamir_threshold))
            .unwrap_or(0),
        groups: keys::specs(o, &groups)?,
    })
}
