//! Master keys for the `sops` commands: flags and creation rules become hush-keys services.

use std::sync::Arc;

use anyhow::{Result, bail};
use std::collections::BTreeMap;

use hush_keys::age::{AgeKey, Identities};
use hush_keys::kms::KmsKey;
use hush_keys::pgp::{PgpKey, PgpKeyring};
use hush_keys::vault_transit::VaultTransitKey;
use hush_keys::{KeyRegistry, KeyService};
use hush_sops::keys::KeySpec;
use hush_sops::metadata::{MasterKey, Metadata};
use hush_sops::tree::{Item, Value};

use super::config::KeyRef;

fn field<'a>(fields: &'a [(String, Value)], name: &str) -> &'a str {
    fields
        .iter()
        .find_map(|(k, v)| match v {
            Value::Str(s) if k == name => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// The hush-keys service for a metadata entry (or a flag/rule key); `None` for key types this
/// build has no service for (they are kept verbatim but cannot be used).
pub(super) fn service_for(
    type_id: &str,
    fields: &[(String, Value)],
) -> Result<Option<Arc<dyn KeyService>>> {
    Ok(Some(match type_id {
        "age" => Arc::new(AgeKey::from_recipient(field(fields, "recipient"))?),
        "pgp" => {
            // Pure Rust for the legacy keyrings of the GnuPG home; the `gpg` binary otherwise.
            let home = std::env::var_os("GNUPGHOME")
                .filter(|h| !h.is_empty())
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".gnupg"))
                });
            let keyring = home
                .and_then(|h| PgpKeyring::from_gnupg_home(&h).ok())
                .unwrap_or_default();
            Arc::new(PgpKey::from_fingerprint(field(fields, "fp"))?.with_keyring(Arc::new(keyring)))
        }
        "hc_vault" => Arc::new(VaultTransitKey::from_metadata(
            field(fields, "vault_address"),
            field(fields, "engine_path"),
            field(fields, "key_name"),
        )?),
        "kms" => {
            let context: BTreeMap<String, String> = fields
                .iter()
                .find_map(|(k, v)| match v {
                    Value::Map(m) if k == "context" => Some(
                        m.iter()
                            .filter_map(|i| match i {
                                Item::Entry(k, v) => Some((k.clone(), v.to_flat_string()?)),
                                Item::Comment(_) | Item::InlineComment(_) => None,
                            })
                            .collect(),
                    ),
                    _ => None,
                })
                .unwrap_or_default();
            let role = field(fields, "role");
            let profile = field(fields, "aws_profile");
            Arc::new(KmsKey::from_metadata(
                field(fields, "arn"),
                Some(role),
                context,
                Some(profile),
            )?)
        }
        _ => return Ok(None),
    }))
}

/// The key service that wraps for `k`.
pub(crate) fn spec(k: &KeyRef) -> Result<KeySpec> {
    let Some(service) = service_for(&k.type_id, &k.fields)? else {
        bail!(
            "cannot encrypt for the {} key {}: this hush build has key services for age, pgp, \
             hc_vault (Vault transit) and kms (AWS KMS) only",
            k.type_id,
            k.key_id()
        );
    };
    Ok(KeySpec {
        service,
        entry: MasterKey::new(k.type_id.clone(), k.fields.clone()),
    })
}

/// Key groups of specs.
pub(crate) fn specs(groups: &[Vec<KeyRef>]) -> Result<Vec<Vec<KeySpec>>> {
    groups
        .iter()
        .map(|g| g.iter().map(spec).collect::<Result<Vec<_>>>())
        .collect()
}

/// The services that can open `meta`'s data key: age identities from the environment
/// (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, SSH keys, `keys.txt`), and one
/// service per PGP, Vault transit and AWS KMS entry of the file (credentials from the environment).
pub(crate) fn registry_for(meta: &Metadata) -> KeyRegistry {
    let mut r = KeyRegistry::new();
    r.register(Arc::new(Identities::from_env()));
    for k in meta.key_groups.iter().flatten() {
        if k.type_id == "age" {
            continue;
        }
        match service_for(&k.type_id, &k.fields) {
            Ok(Some(service)) => r.register(service),
            Ok(None) => {}
            Err(e) => eprintln!(
                "[hush sops] warning: the {} key {} cannot be used: {e}",
                k.type_id,
                k.key_id()
            ),
        }
    }
    r
}

/// `--decryption-order` / `SOPS_DECRYPTION_ORDER` (default `age,pgp`).
pub(crate) fn order(flag: Option<&str>) -> Vec<String> {
    flag.unwrap_or("age,pgp")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
