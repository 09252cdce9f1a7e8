//! Master keys for the `sops` commands: flags and creation rules become hush-keys services.

use std::sync::Arc;

use anyhow::{Result, bail};
use hush_keys::age::{AgeKey, Identities};
use hush_keys::{KeyRegistry, KeyService};
use hush_sops::keys::KeySpec;
use hush_sops::metadata::MasterKey;

use super::config::KeyRef;

/// The key service that wraps for `k`.
pub(crate) fn spec(k: &KeyRef) -> Result<KeySpec> {
    let service: Arc<dyn KeyService> = match k.type_id.as_str() {
        "age" => Arc::new(AgeKey::from_recipient(&k.key_id())?),
        other => bail!(
            "cannot encrypt for the {other} key {}: this hush build supports age master keys only for encryption; \
             use --age (or an `age:` creation rule), or sops itself for {other}",
            k.key_id()
        ),
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

/// The identities this process can decrypt with: age identities from the environment
/// (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, SSH keys, `keys.txt`).
pub(crate) fn registry() -> KeyRegistry {
    let mut r = KeyRegistry::new();
    r.register(Arc::new(Identities::from_env()));
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
