//! Whole-file operations: encrypt a plaintext document set, open (decrypt and verify) an
//! encrypted file, and re-seal an opened file after changes (keeping unchanged values' IVs).

use hush_crypto::{DataKey, Entropy};
use hush_keys::KeyRegistry;

use crate::crypt::{self, CryptConfig, IvStash, Rule};
use crate::keys::{self, KeySpec};
use crate::metadata::Metadata;
use crate::stores::{self, Format};
use crate::tree::Branch;
use crate::{Error, Result};
use hush_gocompat::time::Timestamp;

/// What to encrypt with.
#[derive(Debug, Default)]
pub struct EncryptOptions {
    /// The selection rule; `None` uses sops' default (`_unencrypted` suffix), except for the
    /// binary store, which encrypts its one value and writes no rule.
    pub rule: Option<Rule>,
    /// Cover only encrypted values with the MAC.
    pub mac_only_encrypted: bool,
    /// Shares needed when there are several key groups (0 = all).
    pub shamir_threshold: usize,
    /// Key groups to wrap the data key for.
    pub groups: Vec<Vec<KeySpec>>,
}

/// An opened (decrypted) file.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext documents.
    pub branches: Vec<Branch>,
    /// Its metadata.
    pub metadata: Metadata,
    /// The data key.
    pub key: DataKey,
    /// IVs of the values as they were, for minimal diffs on re-encryption.
    pub stash: IvStash,
}

/// Encrypts plaintext `input` (in `input_format`) and writes it in `output_format`.
pub async fn encrypt(
    input: &[u8],
    input_format: Format,
    output_format: Format,
    opts: EncryptOptions,
    indent: Option<usize>,
    rng: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    let mut branches = stores::load_plain(input_format, input)?;
    if let Some(k) = stores::has_metadata(input_format, &branches) {
        return Err(Error::AlreadyEncrypted(k));
    }
    let rule = match (opts.rule, output_format) {
        (Some(r), _) => Some(r),
        (None, Format::Binary) => None,
        (None, _) => Some(Metadata::default_rule()),
    };
    let mut meta = Metadata::new(Vec::new(), rule);
    meta.mac_only_encrypted = opts.mac_only_encrypted;
    meta.shamir_threshold = if opts.groups.len() > 1 {
        opts.shamir_threshold
    } else {
        0
    };
    if output_format == Format::Toml {
        branches.iter_mut().for_each(stores::toml::normalize);
    }
    let key = DataKey::generate(rng)?;
    keys::wrap_data_key(&mut meta, &key, &opts.groups, rng).await?;
    seal_branches(&mut branches, &mut meta, &key, rng, None)?;
    stores::emit_encrypted(output_format, &branches, &meta, indent)
}

/// Encrypts `branches` in place, sets `lastmodified` to now, the MAC and the writer version.
pub fn seal_branches(
    branches: &mut [Branch],
    meta: &mut Metadata,
    key: &DataKey,
    rng: &mut dyn Entropy,
    stash: Option<&IvStash>,
) -> Result<()> {
    let config = CryptConfig {
        rule: meta.rule.as_ref(),
        mac_only_encrypted: meta.mac_only_encrypted,
    };
    let mac = crypt::encrypt_tree(branches, key, &config, rng, stash)?;
    meta.last_modified = Timestamp::now_utc();
    meta.version = crate::metadata::WRITE_VERSION.to_owned();
    meta.mac = crypt::encrypt_mac(key, &mac, &meta.last_modified.rfc3339(), rng)?;
    Ok(())
}

/// Opens an encrypted file: recovers the data key with `registry` (types in `order` tried
/// first), decrypts every value and verifies the MAC unless `ignore_mac`.
pub async fn open(
    input: &[u8],
    format: Format,
    registry: &KeyRegistry,
    order: &[String],
    ignore_mac: bool,
) -> Result<Opened> {
    let (branches, metadata) = stores::load_encrypted(format, input)?;
    let key = keys::unwrap_data_key(&metadata, registry, order).await?;
    open_with_key(branches, metadata, key, ignore_mac)
}

/// Decrypts loaded branches with a known data key.
pub fn open_with_key(
    mut branches: Vec<Branch>,
    metadata: Metadata,
    key: DataKey,
    ignore_mac: bool,
) -> Result<Opened> {
    let mut stash = IvStash::default();
    let config = CryptConfig {
        rule: metadata.rule.as_ref(),
        mac_only_encrypted: metadata.mac_only_encrypted,
    };
    let computed = crypt::decrypt_tree(&mut branches, &key, &config, Some(&mut stash))?;
    if !ignore_mac {
        crypt::verify_mac(
            &key,
            &metadata.mac,
            &metadata.last_modified.rfc3339(),
            &computed,
        )?;
    }
    Ok(Opened {
        branches,
        metadata,
        key,
        stash,
    })
}

impl Opened {
    /// Re-encrypts the (possibly changed) documents: unchanged values keep their IV, the MAC
    /// and `lastmodified` are renewed.
    pub fn seal(
        mut self,
        format: Format,
        indent: Option<usize>,
        rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>> {
        if format == Format::Toml {
            self.branches.iter_mut().for_each(stores::toml::normalize);
        }
        seal_branches(
            &mut self.branches,
            &mut self.metadata,
            &self.key,
            rng,
            Some(&self.stash),
        )?;
        stores::emit_encrypted(format, &self.branches, &self.metadata, indent)
    }
}
