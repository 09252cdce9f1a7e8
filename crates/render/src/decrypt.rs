//! SOPS-encrypted manifests, decrypted with hush-sops (MAC verified).
//!
//! Key sources: sops' own environment (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`,
//! `~/.config/sops/age/keys.txt`, SSH keys; `VAULT_TOKEN` for `hc_vault`; the AWS chain for
//! `kms`) plus a Flux-style key directory (`--sops-keys-dir` / `HUSH_SOPS_KEYS_DIR`), whose
//! entries are recognised by name as Flux's kustomize-controller does: `*.agekey` (age
//! identities), `*.asc` (armored OpenPGP secret keys, used by hush-keys' pure-Rust PGP; the
//! `gpg` binary is never run), `sops.vault-token` (Vault/OpenBao token for `hc_vault` keys) and
//! `sops.aws-kms` (static AWS credentials for `kms` keys, Flux's YAML: `aws_access_key_id`,
//! `aws_secret_access_key`, optional `aws_session_token`). `sops.azure-kv` and `sops.gcp-kms`
//! are not supported: a file that needs a key the render does not have fails with an error that
//! names them instead of ignoring them silently.
//!
//! A file's `hc_vault` `vault_address` is written by whoever writes the repository; the token is
//! the operator's. A Vault transit key gets the token only when its address is one the operator
//! configured ([`VaultAddresses`]: `VAULT_ADDR` and `HUSH_SOPS_VAULT_ADDRS` of the plugin's own
//! environment); any other address fails the file with an error naming it, and nothing is sent.
//!
//! kustomize and other KRM orchestrators add annotations to every object, which changes the
//! document and breaks the MAC. [`open_doc`] detaches `config.kubernetes.io/*`,
//! `internal.config.kubernetes.io/*`, `config.k8s.io/id` and `kustomize.config.k8s.io/id`
//! before verifying and puts them back afterwards (the kpt SOPS function does the same).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hush_keys::age::{AgePrompt, Identities};
use hush_keys::kms::KmsKey;
use hush_keys::kms::credentials::Credentials;
use hush_keys::pgp::{GpgConfig, PgpKey, PgpKeyring};
use hush_keys::vault_transit::{VaultToken, VaultTransitKey};
use hush_keys::{KeyError, KeyRegistry, KeyService, SecretBytes, WrappedKey};
use hush_sops::Format;
use hush_sops::metadata::Metadata;
use hush_sops::tree::{Branch, Item, Value};

use crate::{Error, Result};

/// The keys a render may decrypt with.
#[derive(Debug, Default)]
pub struct Keys {
    identities: Vec<Arc<Identities>>,
    vault_token: Option<VaultToken>,
    /// OpenPGP secret keys from `*.asc` files.
    pgp: Arc<PgpKeyring>,
    /// Static AWS credentials for KMS from `sops.aws-kms`.
    aws: Option<Credentials>,
    order: Vec<String>,
    /// Key files this build does not use (reported when a file needs a key).
    unsupported: Vec<String>,
    /// The Vault addresses `hc_vault` keys may send a token to.
    vault_addresses: VaultAddresses,
}

/// The Vault addresses the operator configured: only these receive a token for a file's
/// `hc_vault` key. Compared by origin (scheme, host, port).
#[derive(Debug, Clone, Default)]
pub struct VaultAddresses {
    origins: Vec<String>,
}

impl VaultAddresses {
    /// From the configured addresses (`VAULT_ADDR`, `HUSH_SOPS_VAULT_ADDRS`, `--sops-vault-addr`);
    /// an address that is not an http(s) URL is a configuration error.
    pub fn new<S: AsRef<str>>(addresses: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut origins = Vec::new();
        for a in addresses {
            let a = a.as_ref().trim();
            if a.is_empty() {
                continue;
            }
            origins.push(origin(a).ok_or_else(|| {
                Error::Config(format!(
                    "Vault address {a:?} is not an http:// or https:// URL without credentials"
                ))
            })?);
        }
        Ok(Self { origins })
    }

    /// Whether a token may be sent to `address`.
    pub fn allows(&self, address: &str) -> bool {
        origin(address).is_some_and(|o| self.origins.contains(&o))
    }
}

/// `scheme://host:port` of an http(s) URL without user info (`https://ok@evil` is evil's).
fn origin(address: &str) -> Option<String> {
    let url = reqwest::Url::parse(address.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
}

/// An `hc_vault` key whose address the operator did not configure: it never calls Vault; its
/// unwrap fails with an error naming the address (the file name is added by the caller).
#[derive(Debug)]
struct RefusedVaultKey {
    key_id: String,
    address: String,
}

#[async_trait::async_trait]
impl KeyService for RefusedVaultKey {
    fn type_id(&self) -> &str {
        hush_keys::vault_transit::TYPE_ID
    }

    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    async fn wrap(&self, _key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        Err(self.refusal("wrap"))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != self.type_id()
            || (!wrapped.key_id.is_empty() && wrapped.key_id != self.key_id)
        {
            return Ok(None);
        }
        Err(self.refusal("unwrap"))
    }
}

impl RefusedVaultKey {
    fn refusal(&self, operation: &'static str) -> KeyError {
        KeyError::Unsupported {
            type_id: hush_keys::vault_transit::TYPE_ID.into(),
            key_id: self.key_id.clone(),
            operation,
            reason: format!(
                "vault_address {:?} is not a Vault address the plugin is configured for \
                 (VAULT_ADDR, HUSH_SOPS_VAULT_ADDRS), so no token is sent to it",
                self.address
            ),
        }
    }
}

impl Keys {
    /// sops' environment plus the key directory, if any.
    pub fn load(keys_dir: Option<&Path>) -> Result<Self> {
        let mut keys = Self {
            identities: vec![Arc::new(Identities::from_env())],
            vault_token: std::env::var("VAULT_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(VaultToken::new),
            pgp: Arc::default(),
            aws: None,
            order: vec!["age".into(), "pgp".into()],
            unsupported: Vec::new(),
            vault_addresses: VaultAddresses::default(),
        };
        if let Some(dir) = keys_dir {
            keys.add_dir(dir)?;
        }
        Ok(keys)
    }

    /// Lets `hc_vault` keys at these addresses use the Vault token (no address may otherwise).
    pub fn with_vault_addresses(mut self, addresses: VaultAddresses) -> Self {
        self.vault_addresses = addresses;
        self
    }

    /// Only the given age identities (tests, `hush demo`).
    pub fn from_age_identities(text: &str) -> Self {
        Self {
            identities: vec![Arc::new(Identities::from_text(
                "identities",
                text,
                AgePrompt::Never,
            ))],
            order: vec!["age".into()],
            ..Self::default()
        }
    }

    /// Adds the keys of a Flux-style directory.
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        let io = |error| Error::Io {
            path: dir.to_path_buf(),
            error,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<std::result::Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // Kubernetes Secret volumes hold `..data` symlinks; the keys are the plain names.
            if name.starts_with('.') || !path.is_file() {
                continue;
            }
            let read = |path: &Path| {
                std::fs::read_to_string(path)
                    .map(zeroize::Zeroizing::new)
                    .map_err(|error| Error::Io {
                        path: path.to_path_buf(),
                        error,
                    })
            };
            if name.ends_with(".agekey") {
                let text = read(&path)?;
                self.identities.push(Arc::new(Identities::from_text(
                    &format!("{} ({name})", dir.display()),
                    &text,
                    AgePrompt::Never,
                )));
            } else if name.ends_with(".asc") {
                // The error names the file and what rpgp disliked, never key material.
                Arc::make_mut(&mut self.pgp)
                    .add_file(&path)
                    .map_err(|e| Error::Config(format!("SOPS key directory: {e}")))?;
            } else if name == "sops.vault-token" {
                let text = read(&path)?;
                let token = text.trim();
                if !token.is_empty() {
                    self.vault_token = Some(VaultToken::new(token));
                }
            } else if name == "sops.aws-kms" {
                self.aws = Some(aws_credentials(&read(&path)?, &path)?);
            } else if matches!(name.as_str(), "sops.azure-kv" | "sops.gcp-kms") {
                self.unsupported.push(path.display().to_string());
            }
        }
        Ok(())
    }

    fn registry_for(&self, meta: &Metadata) -> KeyRegistry {
        let mut r = KeyRegistry::new();
        for ids in &self.identities {
            r.register(ids.clone());
        }
        for k in meta.key_groups.iter().flatten() {
            let field = |name: &str| k.field(name).unwrap_or("");
            let service: Option<Arc<dyn KeyService>> = match k.type_id.as_str() {
                "hc_vault" => VaultTransitKey::from_metadata(
                    field("vault_address"),
                    field("engine_path"),
                    field("key_name"),
                )
                .ok()
                .map(|key| {
                    if !self.vault_addresses.allows(key.vault_address()) {
                        return Arc::new(RefusedVaultKey {
                            key_id: key.key_id(),
                            address: key.vault_address().to_owned(),
                        }) as Arc<dyn KeyService>;
                    }
                    match &self.vault_token {
                        Some(t) => Arc::new(key.with_token(t.clone())) as Arc<dyn KeyService>,
                        None => Arc::new(key),
                    }
                }),
                "kms" => KmsKey::from_metadata(
                    field("arn"),
                    Some(field("role")),
                    kms_context(k),
                    Some(field("aws_profile")),
                )
                .ok()
                .map(|key| match &self.aws {
                    Some(c) => Arc::new(key.with_credentials(c.clone())) as Arc<dyn KeyService>,
                    None => Arc::new(key),
                }),
                "pgp" if !self.pgp.is_empty() => {
                    PgpKey::from_fingerprint(field("fp")).ok().map(|key| {
                        let gpg = GpgConfig {
                            disabled: true,
                            ..GpgConfig::default()
                        };
                        Arc::new(key.with_keyring(self.pgp.clone()).with_gpg(gpg))
                            as Arc<dyn KeyService>
                    })
                }
                _ => None,
            };
            if let Some(s) = service {
                r.register(s);
            }
        }
        r
    }

    async fn open(&self, branches: Vec<Branch>, meta: Metadata, file: &str) -> Result<Vec<Branch>> {
        let registry = self.registry_for(&meta);
        let sops = |error| Error::Sops {
            file: file.to_owned(),
            error,
        };
        let key = match hush_sops::keys::unwrap_data_key(&meta, &registry, &self.order).await {
            Ok(k) => k,
            Err(e) if !self.unsupported.is_empty() => {
                return Err(Error::Config(format!(
                    "{file}: SOPS decryption failed: {e} (the key directory holds {}: Azure Key \
                     Vault and GCP KMS keys are not supported by hush; add an age, PGP, AWS KMS \
                     or Vault transit key to the file's key groups)",
                    self.unsupported.join(", ")
                )));
            }
            Err(e) => return Err(sops(e)),
        };
        let opened = hush_sops::file::open_with_key(branches, meta, key, false).map_err(sops)?;
        Ok(opened.branches)
    }
}

/// The `context` map of a `kms` metadata entry.
fn kms_context(k: &hush_sops::metadata::MasterKey) -> BTreeMap<String, String> {
    k.fields
        .iter()
        .find_map(|(name, v)| match v {
            Value::Map(m) if name == "context" => Some(
                m.iter()
                    .filter_map(|i| match i {
                        Item::Entry(k, v) => Some((k.clone(), v.to_flat_string()?)),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Flux's `sops.aws-kms`: YAML with `aws_access_key_id`, `aws_secret_access_key` and an optional
/// `aws_session_token`. Errors name the file and the field, never a value.
fn aws_credentials(text: &str, path: &Path) -> Result<Credentials> {
    let bad = |what: &str| Error::Config(format!("{}: {what}", path.display()));
    let docs = hush_sops::stores::yaml_parse::parse(text)
        .map_err(|_| bad("not YAML (expected aws_access_key_id, aws_secret_access_key)"))?;
    let [doc] = docs.as_slice() else {
        return Err(bad("expected one YAML map"));
    };
    let field = |name: &str| {
        crate::value::get_str(doc, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let id = field("aws_access_key_id").ok_or_else(|| bad("aws_access_key_id is missing"))?;
    let key =
        field("aws_secret_access_key").ok_or_else(|| bad("aws_secret_access_key is missing"))?;
    Ok(Credentials::new(id, key, field("aws_session_token")))
}

/// Decrypts a whole SOPS file (every document; the MAC covers them all).
pub async fn open_file(
    bytes: &[u8],
    format: Format,
    keys: &Keys,
    file: &str,
) -> Result<Vec<Branch>> {
    let (branches, meta) =
        hush_sops::stores::load_encrypted(format, bytes).map_err(|error| Error::Sops {
            file: file.to_owned(),
            error,
        })?;
    keys.open(branches, meta, file).await
}

/// Whether an annotation is added by a KRM orchestrator (and so not covered by the MAC).
pub fn is_orchestrator_annotation(key: &str) -> bool {
    key.starts_with("config.kubernetes.io/")
        || key.starts_with("internal.config.kubernetes.io/")
        || key == "config.k8s.io/id"
        || key == "kustomize.config.k8s.io/id"
}

/// Decrypts one SOPS-encrypted object that arrived in a stream (stdin, a `ResourceList`),
/// detaching orchestrator annotations around the MAC check.
pub async fn open_doc(mut doc: Branch, keys: &Keys, file: &str) -> Result<Branch> {
    let detached = detach(&mut doc);
    let Some(meta_value) = crate::value::remove(&mut doc, "sops") else {
        return Ok(doc);
    };
    let meta = Metadata::from_value(&meta_value).map_err(|error| Error::Sops {
        file: file.to_owned(),
        error,
    })?;
    let mut out = keys.open(vec![doc], meta, file).await?;
    let mut doc = out.pop().unwrap_or_default();
    reattach(&mut doc, detached);
    Ok(doc)
}

/// Orchestrator annotations taken off an object (an `annotations` map that held only them is
/// removed, and recreated on reattach).
struct Detached {
    items: Vec<Item>,
}

fn detach(doc: &mut Branch) -> Detached {
    let Some(Value::Map(meta)) = crate::value::get_mut(doc, "metadata") else {
        return Detached { items: Vec::new() };
    };
    let Some(Value::Map(ann)) = crate::value::get_mut(meta, "annotations") else {
        return Detached { items: Vec::new() };
    };
    let (items, keep): (Vec<Item>, Vec<Item>) = std::mem::take(ann)
        .into_iter()
        .partition(|i| matches!(i, Item::Entry(k, _) if is_orchestrator_annotation(k)));
    *ann = keep;
    if ann.is_empty() && !items.is_empty() {
        crate::value::remove(meta, "annotations");
    }
    Detached { items }
}

fn reattach(doc: &mut Branch, d: Detached) {
    if d.items.is_empty() {
        return;
    }
    if let Some(ann) = crate::value::annotations_mut(doc) {
        ann.extend(d.items);
    }
}

/// Plaintexts of the SOPS files of an app, indexed by ciphertext.
///
/// `kustomize build` re-orders fields and drops comments, and kustomize's namespace, label and
/// annotation transformers change the object, so the MAC of a SOPS object that went through it
/// can no longer be checked. Instead of skipping the MAC (Flux's answer), hush decrypts the
/// *source* files (MAC verified) and maps each `ENC[…]` value to its plaintext: an object in the
/// build output is decrypted by looking up its ciphertexts, which all came from verified files.
/// Objects with a ciphertext not in the index fall back to [`open_doc`] (MAC verified as is).
#[derive(Default)]
pub struct Plaintexts {
    map: std::collections::HashMap<String, Value>,
    files: usize,
}

impl std::fmt::Debug for Plaintexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plaintexts")
            .field("values", &self.map.len())
            .field("files", &self.files)
            .finish()
    }
}

impl Plaintexts {
    /// Indexes every SOPS-encrypted YAML/JSON file under `dirs` (recursively, dotfiles
    /// skipped). A file that cannot be decrypted or verified is an error.
    pub async fn index(dirs: &[std::path::PathBuf], keys: &Keys) -> Result<Self> {
        let mut out = Self::default();
        let mut seen = std::collections::BTreeSet::new();
        for dir in dirs {
            for path in crate::manifest::discover(dir)? {
                let Ok(canonical) = path.canonicalize() else {
                    continue;
                };
                if !seen.insert(canonical) {
                    continue;
                }
                let bytes = crate::manifest::read_file(&path)?;
                let marker: &[u8] = if path.extension().is_some_and(|e| e == "json") {
                    b"\"mac\": \"ENC["
                } else {
                    b"mac: ENC["
                };
                if !bytes.windows(marker.len()).any(|w| w == marker) {
                    continue;
                }
                let format = Format::from_path(&path);
                let file = path.display().to_string();
                let (enc, meta) =
                    hush_sops::stores::load_encrypted(format, &bytes).map_err(|error| {
                        Error::Sops {
                            file: file.clone(),
                            error,
                        }
                    })?;
                let plain = keys.open(enc.clone(), meta, &file).await?;
                for (e, p) in enc.iter().zip(&plain) {
                    pair_items(e, p, &mut out.map);
                }
                out.files += 1;
            }
        }
        Ok(out)
    }

    /// Number of files indexed.
    pub fn files(&self) -> usize {
        self.files
    }

    /// Decrypts `doc` by lookup: `true` (and `sops` removed) when every `ENC[…]` value of the
    /// document is known; `false` (document untouched) otherwise.
    pub fn apply(&self, doc: &mut Branch) -> bool {
        let mut copy: Vec<Item> = doc
            .iter()
            .filter(|i| !matches!(i, Item::Entry(k, _) if k == "sops"))
            .cloned()
            .collect();
        let mut ok = true;
        for item in &mut copy {
            if let Item::Entry(_, v) = item {
                ok &= self.replace(v);
            }
        }
        self.comments(&mut copy);
        if ok {
            *doc = copy;
        }
        ok
    }

    /// Encrypted comments (`#ENC[…]`) are decrypted when known and dropped otherwise.
    fn comments(&self, items: &mut Vec<Item>) {
        items.retain_mut(|i| match i {
            Item::Comment(c) | Item::InlineComment(c) if c.trim().starts_with("ENC[") => {
                match self.map.get(c.trim()) {
                    Some(Value::Str(p)) => {
                        *c = p.clone();
                        true
                    }
                    _ => false,
                }
            }
            Item::Entry(_, Value::Map(m)) => {
                self.comments(m);
                true
            }
            _ => true,
        });
    }

    fn replace(&self, v: &mut Value) -> bool {
        match v {
            Value::Str(s) if s.starts_with("ENC[") => match self.map.get(s.as_str()) {
                Some(p) => {
                    *v = p.clone();
                    true
                }
                None => false,
            },
            Value::Map(m) => m.iter_mut().all(|i| match i {
                Item::Entry(_, v) => self.replace(v),
                _ => true,
            }),
            Value::List(l) => l.iter_mut().all(|v| self.replace(v)),
            _ => true,
        }
    }
}

fn pair_items(enc: &[Item], plain: &[Item], map: &mut std::collections::HashMap<String, Value>) {
    for (e, p) in enc.iter().zip(plain) {
        match (e, p) {
            (Item::Entry(_, ev), Item::Entry(_, pv)) => pair_values(ev, pv, map),
            (Item::Comment(ec), Item::Comment(pc))
            | (Item::InlineComment(ec), Item::InlineComment(pc))
                if ec.trim().starts_with("ENC[") =>
            {
                map.insert(ec.trim().to_owned(), Value::Str(pc.clone()));
            }
            _ => {}
        }
    }
}

fn pair_values(e: &Value, p: &Value, map: &mut std::collections::HashMap<String, Value>) {
    match (e, p) {
        (Value::Str(s), p) if s.starts_with("ENC[") => {
            map.insert(s.clone(), p.clone());
        }
        (Value::Map(em), Value::Map(pm)) => pair_items(em, pm, map),
        (Value::List(el), Value::List(pl)) => {
            for (e, p) in el.iter().zip(pl) {
                pair_values(e, p, map);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_comments_full_line_and_inline_are_decrypted_by_lookup() {
        let entry = |k: &str, v: &str| Item::Entry(k.into(), Value::Str(v.into()));
        let enc = vec![
            Item::Comment("ENC[head]".into()),
            entry("k", "ENC[value]"),
            Item::InlineComment("ENC[inline]".into()),
        ];
        let plain = vec![
            Item::Comment("about k".into()),
            entry("k", "v"),
            Item::InlineComment("note".into()),
        ];
        let mut index = Plaintexts::default();
        pair_items(&enc, &plain, &mut index.map);
        let mut doc = enc.clone();
        assert!(index.apply(&mut doc));
        assert!(doc == plain, "an ENC[] comment was left in the output");
    }
}
