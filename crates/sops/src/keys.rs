//! Wrapping the data key for every master key of every group (Shamir shares across groups),
//! and recovering it with the key services a process holds.

use std::sync::Arc;

use hush_crypto::{DataKey, Entropy, SecretBytes, shamir};
use hush_keys::{KeyRegistry, KeyService, WrappedKey};

use crate::metadata::{MasterKey, Metadata};
use crate::tree::Value;
use crate::{Error, Result};
use hush_gocompat::time::Timestamp;

/// A master key to encrypt for: the service that wraps, and its metadata entry's identifying
/// fields (`recipient`, `arn`+`role`+`context`+`aws_profile`, …; `enc`/`created_at` are added).
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// The key service.
    pub service: Arc<dyn KeyService>,
    /// The metadata entry (type and identifying fields).
    pub entry: MasterKey,
}

impl KeySpec {
    /// A spec whose metadata entry is derived from the service's type and key id
    /// (`age` → `recipient`, `pgp` → `fp`, `kms` → `arn`, `hc_vault` → address/engine/key).
    pub fn from_service(service: Arc<dyn KeyService>) -> Self {
        let type_id = service.type_id().to_owned();
        let id = service.key_id();
        let fields = default_fields(&type_id, &id);
        Self {
            service,
            entry: MasterKey::new(type_id, fields),
        }
    }
}

/// The identifying metadata fields sops writes for a key of `type_id` with `key_id`.
pub fn default_fields(type_id: &str, key_id: &str) -> Vec<(String, Value)> {
    match hush_keys::kinds::kind(type_id) {
        Some(kind) => (kind.fields_from_id)(key_id)
            .into_iter()
            .map(|(name, v)| (name.to_owned(), Value::Str(v)))
            .collect(),
        None => vec![(format!("{type_id}_id"), Value::Str(key_id.to_owned()))],
    }
}

fn stamp(entry: &mut MasterKey, enc: &[u8]) -> Result<()> {
    let enc = std::str::from_utf8(enc).map_err(|_| {
        Error::DataKey(format!(
            "the {} key {} produced a wrapped key that is not text",
            entry.type_id,
            entry.key_id()
        ))
    })?;
    entry.set_field("enc", Value::Str(enc.to_owned()));
    if entry.type_id != "age" {
        entry.set_field("created_at", Value::Str(Timestamp::now_utc().rfc3339()));
    }
    Ok(())
}

/// Wraps `key` for every group of `groups` and stores the result in `meta.key_groups`.
/// More than one group splits the key with Shamir (threshold `meta.shamir_threshold`, default
/// the number of groups).
pub async fn wrap_data_key(
    meta: &mut Metadata,
    key: &DataKey,
    groups: &[Vec<KeySpec>],
    rng: &mut dyn Entropy,
) -> Result<()> {
    if groups.is_empty() || groups.iter().all(Vec::is_empty) {
        return Err(Error::DataKey(
            "no master keys were provided: pass --age, --pgp, --kms or --hc-vault-transit, or add a creation rule to .sops.yaml".into(),
        ));
    }
    let parts: Vec<SecretBytes> = if groups.len() == 1 {
        vec![SecretBytes::from_slice(key.expose())]
    } else {
        if meta.shamir_threshold == 0 {
            meta.shamir_threshold = groups.len();
        }
        if meta.shamir_threshold > groups.len() {
            return Err(Error::DataKey(format!(
                "the Shamir threshold {} is larger than the number of key groups {}",
                meta.shamir_threshold,
                groups.len()
            )));
        }
        shamir::split(key.expose(), groups.len(), meta.shamir_threshold, rng)?
    };
    let mut out = Vec::with_capacity(groups.len());
    for (group, part) in groups.iter().zip(&parts) {
        let mut entries = Vec::with_capacity(group.len());
        for spec in group {
            let wrapped = spec.service.wrap(part, b"").await.map_err(|e| {
                Error::DataKey(format!(
                    "could not encrypt the data key with {} key {}: {e}",
                    spec.entry.type_id,
                    spec.entry.key_id()
                ))
            })?;
            let mut entry = spec.entry.clone();
            stamp(&mut entry, &wrapped.body)?;
            entries.push(entry);
        }
        out.push(entries);
    }
    meta.key_groups = out;
    Ok(())
}

/// Recovers the data key: for each group, offers its keys (types in `order` first) to
/// `registry` until one opens; then combines Shamir shares. The error lists every key tried.
pub async fn unwrap_data_key(
    meta: &Metadata,
    registry: &KeyRegistry,
    order: &[String],
) -> Result<DataKey> {
    let mut parts = Vec::new();
    let mut report = String::new();
    for (gi, group) in meta.key_groups.iter().enumerate() {
        let mut keys: Vec<&MasterKey> = Vec::with_capacity(group.len());
        for t in order {
            keys.extend(group.iter().filter(|k| &k.type_id == t));
        }
        keys.extend(group.iter().filter(|k| !order.contains(&k.type_id)));
        let mut found = None;
        let mut lines = String::new();
        for k in keys {
            let wrapped =
                WrappedKey::new(k.type_id.clone(), k.key_id(), k.enc().as_bytes().to_vec());
            match registry.unwrap(&wrapped, b"", None).await {
                Ok(Some(u)) => {
                    found = Some(u.key);
                    break;
                }
                Ok(None) => lines.push_str(&format!(
                    "  {} {}: no matching identity or credentials available\n",
                    k.type_id,
                    k.key_id()
                )),
                Err(e) => lines.push_str(&format!("  {} {}: {e}\n", k.type_id, k.key_id())),
            }
        }
        match found {
            Some(p) => parts.push(p),
            None => report.push_str(&format!("Group {gi}: FAILED\n{lines}")),
        }
        if meta.key_groups.len() > 1 && parts.len() >= meta.threshold() {
            break;
        }
    }
    let fail = |report: &str| {
        Error::DataKey(format!(
            "failed to get the data key required to decrypt the SOPS file:\n{report}Provide an identity for one of these keys (for age: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or ~/.config/sops/age/keys.txt)."
        ))
    };
    if meta.key_groups.len() == 1 {
        let Some(part) = parts.pop() else {
            return Err(fail(&report));
        };
        return Ok(DataKey::try_from_slice(part.expose())?);
    }
    if parts.len() < meta.threshold() {
        return Err(fail(&format!(
            "{report}recovered {} of the {} key group shares needed\n",
            parts.len(),
            meta.threshold()
        )));
    }
    // sops cannot combine a single share either (threshold 1 over several groups): exit 128.
    let secret = shamir::combine(&parts).map_err(|e| {
        Error::DataKey(format!(
            "could not get the data key from the Shamir shares: {e}"
        ))
    })?;
    Ok(DataKey::try_from_slice(secret.expose())?)
}
