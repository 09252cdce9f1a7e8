//! PGP keys as sops uses them (`getsops/sops:pgp/keysource.go`).
//!
//! - [`WrappedKey::body`] is the ASCII-armored `PGP MESSAGE` of the raw data key, trimmed (the
//!   sops metadata `enc`); [`WrappedKey::key_id`] is the fingerprint (`fp`).
//! - Pure Rust first (rpgp): keys from [`PgpKeyring`] files (armored or binary, public or secret)
//!   and, like sops, the legacy `pubring.gpg` / `secring.gpg` of the GnuPG home.
//! - Then the `gpg` binary, as sops calls it, for keys held by a keyring (`.kbx`) or gpg-agent
//!   (smartcards, passphrases): `gpg --no-default-recipient --yes --encrypt -a -r <fp>
//!   --trusted-key <short id> --no-encrypt-to` and `gpg --use-agent -d`. The binary is
//!   `SOPS_GPG_EXEC` or `gpg`; the home is the configured one, else `GNUPGHOME`, else gpg's default.
//!
//! sops binds nothing to the wrapping, so the `aad` argument of [`KeyService`] is ignored.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use pgp::composed::SignedPublicSubKey;
use pgp::composed::{
    ArmorOptions, Message, MessageBuilder, PublicOrSecret, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Password, Timestamp};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// Type id of PGP keys; the sops metadata key.
pub const TYPE_ID: &str = "pgp";

/// Largest key file or gpg output read.
const SIZE_LIMIT: usize = 1 << 24;

fn config_error(message: impl Into<String>) -> KeyError {
    KeyError::Config {
        type_id: TYPE_ID.into(),
        message: message.into(),
    }
}

/// The upper-case hex fingerprint of a key.
fn fingerprint_of(key: &impl KeyDetails) -> String {
    hex::encode_upper(key.fingerprint().as_bytes())
}

/// OpenPGP keys loaded from files, for the pure-Rust path.
#[derive(Default, Clone)]
pub struct PgpKeyring {
    public: Vec<SignedPublicKey>,
    secret: Vec<SignedSecretKey>,
}

impl fmt::Debug for PgpKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgpKeyring")
            .field(
                "public",
                &self.public.iter().map(fingerprint_of).collect::<Vec<_>>(),
            )
            .field("secret_keys", &self.secret.len())
            .finish()
    }
}

impl PgpKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every key in `bytes` (armored or binary; public and/or secret keys). `source` names
    /// the input in errors. Returns how many keys were added.
    pub fn add_bytes(&mut self, source: &str, bytes: &[u8]) -> Result<usize, KeyError> {
        let error =
            |e: pgp::errors::Error| config_error(format!("{source}: not OpenPGP keys: {e}"));
        let (keys, _) = PublicOrSecret::from_reader_many(bytes).map_err(error)?;
        let mut added = 0;
        for key in keys {
            match key.map_err(error)? {
                PublicOrSecret::Public(key) => self.public.push(key),
                PublicOrSecret::Secret(key) => {
                    self.public.push(key.to_public_key());
                    self.secret.push(key);
                }
            }
            added += 1;
        }
        if added == 0 {
            return Err(config_error(format!("{source}: no OpenPGP key found")));
        }
        Ok(added)
    }

    /// Adds the keys in the file at `path`.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, KeyError> {
        let bytes =
            read_limited(path).map_err(|e| config_error(format!("{}: {e}", path.display())))?;
        self.add_bytes(&path.display().to_string(), &bytes)
    }

    /// The legacy keyrings sops' pure path reads: `<home>/pubring.gpg` and `<home>/secring.gpg`,
    /// when present. Modern GnuPG keeps keys in `pubring.kbx` and gpg-agent; those go through
    /// the `gpg` binary.
    pub fn from_gnupg_home(home: &Path) -> Result<Self, KeyError> {
        let mut ring = Self::new();
        for name in ["pubring.gpg", "secring.gpg"] {
            let path = home.join(name);
            if path.exists() {
                ring.add_file(&path)?;
            }
        }
        Ok(ring)
    }

    /// [`Self::from_gnupg_home`] of `GNUPGHOME`, else `~/.gnupg` (sops' `gnuPGHome`). An absent
    /// home or keyring gives an empty keyring; the `gpg` binary then does the work.
    pub fn from_env() -> Result<Self, KeyError> {
        let home = std::env::var_os("GNUPGHOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".gnupg")));
        match home {
            Some(home) => Self::from_gnupg_home(&home),
            None => Ok(Self::new()),
        }
    }

    /// Number of keys (public and secret).
    pub fn len(&self) -> usize {
        self.public.len()
    }

    /// Whether the keyring holds no key.
    pub fn is_empty(&self) -> bool {
        self.public.is_empty()
    }

    fn public_key(&self, fingerprint: &str) -> Option<&SignedPublicKey> {
        self.public
            .iter()
            .find(|k| fingerprint_of(*k).eq_ignore_ascii_case(fingerprint))
    }
}

/// Where the `gpg` binary and its home are.
#[derive(Debug, Clone, Default)]
pub struct GpgConfig {
    /// The binary (`SOPS_GPG_EXEC`, else `gpg` from `PATH`).
    pub exec: PathBuf,
    /// `--homedir`; `None` leaves it to gpg (`GNUPGHOME`, `~/.gnupg`).
    pub home: Option<PathBuf>,
    /// Do not run gpg at all (pure Rust only).
    pub disabled: bool,
}

impl GpgConfig {
    /// `SOPS_GPG_EXEC` and `GNUPGHOME` from the environment.
    pub fn from_env() -> Self {
        let exec = std::env::var_os("SOPS_GPG_EXEC")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("gpg"), PathBuf::from);
        let home = std::env::var_os("GNUPGHOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self {
            exec,
            home,
            disabled: false,
        }
    }
}

/// One PGP key (by fingerprint) as a sops master key.
#[derive(Clone)]
pub struct PgpKey {
    fingerprint: String,
    keyring: Arc<PgpKeyring>,
    gpg: GpgConfig,
    passphrase: Option<Arc<Zeroizing<String>>>,
}

impl fmt::Debug for PgpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgpKey")
            .field("fingerprint", &self.fingerprint)
            .field("keyring", &self.keyring)
            .field("gpg", &self.gpg)
            .finish_non_exhaustive()
    }
}

impl PgpKey {
    /// From the sops metadata field `fp` (or one `--pgp` item); spaces are removed as sops does.
    /// The `gpg` settings come from the environment ([`GpgConfig::from_env`]).
    pub fn from_fingerprint(fp: &str) -> Result<Self, KeyError> {
        let fingerprint: String = fp.chars().filter(|c| !c.is_whitespace()).collect();
        if fingerprint.len() < 16 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(config_error(format!(
                "{fp:?} is not a PGP fingerprint (hex, at least 16 digits)"
            )));
        }
        Ok(Self {
            fingerprint,
            keyring: Arc::new(PgpKeyring::new()),
            gpg: GpgConfig::from_env(),
            passphrase: None,
        })
    }

    /// From a comma-separated list (`--pgp FP,FP`, `SOPS_PGP_FP`, `.sops.yaml` `pgp`).
    pub fn parse_list(list: &str) -> Result<Vec<Self>, KeyError> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        list.split(',').map(Self::from_fingerprint).collect()
    }

    /// Uses `keyring` for the pure-Rust path.
    #[must_use]
    pub fn with_keyring(mut self, keyring: Arc<PgpKeyring>) -> Self {
        self.keyring = keyring;
        self
    }

    /// Uses these gpg settings.
    #[must_use]
    pub fn with_gpg(mut self, gpg: GpgConfig) -> Self {
        self.gpg = gpg;
        self
    }

    /// Unlocks passphrase-protected secret keys of the keyring (pure-Rust path).
    #[must_use]
    pub fn with_passphrase(mut self, passphrase: Zeroizing<String>) -> Self {
        self.passphrase = Some(Arc::new(passphrase));
        self
    }

    /// The fingerprint, as written in the sops metadata `fp`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn service_error(&self, message: impl Into<String>) -> KeyError {
        KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: self.fingerprint.clone(),
            message: message.into(),
        }
    }

    /// Pure Rust: encrypt to the key's encryption-capable (sub)key. `None` when the keyring does
    /// not hold the key.
    fn wrap_rust(&self, key: &SecretBytes) -> Option<Result<String, String>> {
        let public = self.keyring.public_key(&self.fingerprint)?;
        Some(encrypt_to(public, key.expose()))
    }

    /// Pure Rust: decrypt with any secret key of the keyring.
    fn unwrap_rust(&self, armored: &str) -> Option<SecretBytes> {
        if self.keyring.secret.is_empty() {
            return None;
        }
        let password = match &self.passphrase {
            Some(p) => Password::from(p.as_str()),
            None => Password::empty(),
        };
        self.keyring.secret.iter().find_map(|secret| {
            let (message, _) = Message::from_armor(armored.as_bytes()).ok()?;
            let mut plain = message.decrypt(&password, secret).ok()?;
            if plain.is_compressed() {
                plain = plain.decompress().ok()?;
            }
            plain.as_data_vec().ok().map(SecretBytes::new)
        })
    }

    async fn gpg(&self, args: &[&str], input: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        if self.gpg.disabled {
            return Err("the gpg binary is disabled".into());
        }
        let mut command = tokio::process::Command::new(&self.gpg.exec);
        if let Some(home) = &self.gpg.home {
            command.arg("--homedir").arg(home);
        }
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.gpg.exec.display()))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| "gpg stdin unavailable".to_owned())?;
        let input = Zeroizing::new(input.to_vec());
        let writer = async move {
            let result = stdin.write_all(&input).await;
            drop(stdin);
            result
        };
        let (written, output) = tokio::join!(writer, child.wait_with_output());
        let output = output.map_err(|e| format!("gpg: {e}"))?;
        let stdout = Zeroizing::new(output.stdout);
        if !output.status.success() {
            // gpg's stderr describes keys and failures, never the plaintext.
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("gpg failed ({}): {}", output.status, stderr.trim()));
        }
        written.map_err(|e| format!("writing to gpg: {e}"))?;
        if stdout.len() > SIZE_LIMIT {
            return Err("gpg printed too much".into());
        }
        Ok(stdout)
    }
}

/// The subkey to encrypt to, as GnuPG picks it: a validly bound subkey that can encrypt, whose
/// latest binding allows encryption (when it carries key flags), is neither revoked nor
/// expired; the newest of them.
fn encryption_subkey(public: &SignedPublicKey) -> Option<&SignedPublicSubKey> {
    let now = u64::from(Timestamp::now().as_secs());
    public
        .public_subkeys
        .iter()
        .filter(|k| k.key.algorithm().can_encrypt())
        .filter(|k| k.verify_bindings(&public.primary_key).is_ok())
        .filter(|k| {
            !k.signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
        })
        .filter(|k| {
            let Some(binding) = k
                .signatures
                .iter()
                .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                .max_by_key(|s| s.created().map(|t| t.as_secs()))
            else {
                return false;
            };
            let flags = binding.key_flags();
            let flagged = flags.encrypt_comms() || flags.encrypt_storage();
            let has_flags = binding.config().is_some_and(|c| {
                c.hashed_subpackets()
                    .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
            });
            let expired = binding
                .key_expiration_time()
                .filter(|d| d.as_secs() > 0)
                .is_some_and(|d| {
                    u64::from(k.key.created_at().as_secs()) + u64::from(d.as_secs()) <= now
                });
            (flagged || !has_flags) && !expired
        })
        .max_by_key(|k| k.key.created_at().as_secs())
}

/// Encrypts `data` to `public` as an armored, trimmed `PGP MESSAGE`.
fn encrypt_to(public: &SignedPublicKey, data: &[u8]) -> Result<String, String> {
    let mut rng = rand::thread_rng();
    let mut builder = MessageBuilder::from_bytes("", data.to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    match encryption_subkey(public) {
        Some(subkey) => builder.encrypt_to_key(&mut rng, subkey),
        None if public.algorithm().can_encrypt() => builder.encrypt_to_key(&mut rng, public),
        None => return Err("the key has no usable encryption (sub)key".into()),
    }
    .map_err(|e| format!("PGP encryption failed: {e}"))?;
    let armored = builder
        .to_armored_string(&mut rng, ArmorOptions::default())
        .map_err(|e| format!("PGP encryption failed: {e}"))?;
    Ok(armored.trim().to_owned())
}

#[async_trait]
impl KeyService for PgpKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        self.fingerprint.clone()
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let mut errors = Vec::new();
        match self.wrap_rust(key) {
            Some(Ok(armored)) => {
                return Ok(WrappedKey::new(
                    TYPE_ID,
                    self.fingerprint.clone(),
                    armored.into_bytes(),
                ));
            }
            Some(Err(e)) => errors.push(format!("rpgp: {e}")),
            None => errors.push("rpgp: key not in the loaded keyrings".to_owned()),
        }
        let short = &self.fingerprint[self.fingerprint.len().saturating_sub(16)..];
        let args = [
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "-a",
            "-r",
            &self.fingerprint,
            "--trusted-key",
            short,
            "--no-encrypt-to",
        ];
        match self.gpg(&args, key.expose()).await {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out).trim().to_owned();
                Ok(WrappedKey::new(
                    TYPE_ID,
                    self.fingerprint.clone(),
                    text.into_bytes(),
                ))
            }
            Err(e) => {
                errors.push(e);
                Err(self.service_error(format!(
                    "could not encrypt the data key: {}",
                    errors.join("; ")
                )))
            }
        }
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != TYPE_ID
            || (!wrapped.key_id.is_empty()
                && !wrapped
                    .key_id
                    .replace(' ', "")
                    .eq_ignore_ascii_case(&self.fingerprint))
        {
            return Ok(None);
        }
        let armored = std::str::from_utf8(&wrapped.body)
            .map_err(|_| self.service_error("wrapped key is not text"))?;
        if !armored
            .trim_start()
            .starts_with("-----BEGIN PGP MESSAGE-----")
        {
            return Err(self.service_error("wrapped key is not an armored PGP message"));
        }
        if let Some(key) = self.unwrap_rust(armored) {
            return Ok(Some(key));
        }
        match self.gpg(&["--use-agent", "-d"], armored.as_bytes()).await {
            Ok(out) => Ok(Some(SecretBytes::from_slice(&out))),
            Err(e) => Err(self.service_error(format!("could not decrypt the data key: {e}"))),
        }
    }
}

fn read_limited(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let mut out = Zeroizing::new(Vec::new());
    std::fs::File::open(path)?
        .take(SIZE_LIMIT as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > SIZE_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file too large",
        ));
    }
    Ok(out)
}

/// PGP keys from files only (the render's Flux key directory): when set in
/// [`crate::sources::KeySources`], PGP entries use this keyring and never run `gpg`, and without a
/// key file no PGP entry gets a service. Unset, entries use the GnuPG home and `gpg`, as sops.
#[derive(Debug, Clone, Default)]
pub struct KeyFiles {
    /// The secret keys of the `*.asc` files.
    pub keyring: Arc<PgpKeyring>,
}

/// The [`crate::kinds::KINDS`] row's builder.
pub(crate) fn build(
    entry: &dyn crate::sources::EntryFields,
    sources: &crate::sources::KeySources,
) -> Result<Option<Arc<dyn KeyService>>, KeyError> {
    let key = PgpKey::from_fingerprint(entry.field("fp"))?;
    Ok(Some(match sources.get::<KeyFiles>(TYPE_ID) {
        // Pure Rust for the legacy keyrings of the GnuPG home; the `gpg` binary otherwise.
        None => Arc::new(key.with_keyring(Arc::new(PgpKeyring::from_env().unwrap_or_default()))),
        Some(files) if files.keyring.is_empty() => return Ok(None),
        Some(files) => {
            let gpg = GpgConfig {
                disabled: true,
                ..GpgConfig::default()
            };
            Arc::new(key.with_keyring(files.keyring.clone()).with_gpg(gpg))
        }
    }))
}

/// A Flux `*.asc` file: armored OpenPGP secret keys (errors name the file, never key material).
pub(crate) fn load_flux_file(
    sources: &mut crate::sources::KeySources,
    file: &crate::sources::FluxFile<'_>,
) -> Result<(), KeyError> {
    sources.update(TYPE_ID, |files: &mut KeyFiles| {
        Arc::make_mut(&mut files.keyring)
            .add_bytes(&file.path.display().to_string(), file.text.as_bytes())
            .map(drop)
    })
}

#[cfg(test)]
mod tests;
