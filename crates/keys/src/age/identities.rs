//! The age identities a process holds: loaded from what [`IdentitySources::discover`] finds,
//! they unwrap data keys (the unwrapping half of the age key service).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};

use age::armor::ArmoredReader;
use age::{DecryptError, Decryptor};
use async_trait::async_trait;
use zeroize::Zeroizing;

use super::discovery::{Found, IdentitySources, run_command};
use super::lines::parse_identity_lines;
use super::locked::{Locked, LockedKind, SharedLocked};
use super::prompt::AgePrompt;
use super::{BoxIdentity, SIZE_LIMIT, TYPE_ID, ssh};
use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// One loaded identity and where it came from.
struct Loaded {
    source: String,
    /// The X25519 recipient, when known: lets us skip identities for other recipients.
    recipient: Option<String>,
    identity: BoxIdentity,
    /// Set for passphrase-protected identities: tried after the others, errors reported.
    locked: Option<Arc<Locked>>,
}

impl Loaded {
    fn unlocked(source: &str, recipient: Option<String>, identity: BoxIdentity) -> Self {
        Self {
            source: source.to_owned(),
            recipient,
            identity,
            locked: None,
        }
    }
}

/// [`parse_identity_lines`], each identity labelled with `source`.
fn parse_loaded(source: &str, bytes: &[u8], prompt: &AgePrompt) -> Result<Vec<Loaded>, String> {
    let parsed = parse_identity_lines(source, bytes, prompt)?;
    Ok(parsed
        .into_iter()
        .map(|p| Loaded::unlocked(source, p.recipient, p.identity))
        .collect())
}

/// The age identities a process holds, loaded from every source sops reads.
///
/// Load errors do not fail loading (sops combines what it finds); they are reported with the
/// unwrap error when no identity opens a key.
pub struct Identities {
    loaded: Vec<Loaded>,
    key_cmd: Option<String>,
    /// Identities from `SOPS_AGE_KEY_CMD`, per recipient (the command sees `SOPS_AGE_RECIPIENT`).
    from_cmd: Mutex<HashMap<String, Arc<Vec<Loaded>>>>,
    errors: Vec<String>,
    unused: Vec<String>,
    prompt: AgePrompt,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field(
                "sources",
                &self.loaded.iter().map(|l| &l.source).collect::<Vec<_>>(),
            )
            .field("key_cmd", &self.key_cmd.is_some())
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl Identities {
    /// Loads identities from the process environment ([`IdentitySources::from_env`]). This is
    /// the I/O step: it reads files and may run `SOPS_AGE_SSH_PRIVATE_KEY_CMD`.
    pub fn from_env() -> Self {
        Self::load(IdentitySources::from_env())
    }

    /// Loads identities from `sources`, in sops' order.
    pub fn load(sources: IdentitySources) -> Self {
        let mut ids = Self {
            loaded: Vec::new(),
            key_cmd: sources.age_key_cmd.clone(),
            from_cmd: Mutex::new(HashMap::new()),
            errors: Vec::new(),
            unused: Vec::new(),
            prompt: sources.prompt.clone(),
        };

        sources.discover(|found| match found {
            Found::Ssh { source, bytes } => ids.add_ssh(&source, &bytes),
            Found::Age { source, bytes } => ids.add_age(&source, &bytes),
            Found::Error(message) => ids.errors.push(message),
            Found::Unused(source) => ids.unused.push(source),
        });
        ids
    }

    /// Parses identities from text (a key file's content) without touching the environment.
    pub fn from_text(source: &str, text: &str, prompt: AgePrompt) -> Self {
        let mut ids = Self::load(IdentitySources {
            prompt,
            ..IdentitySources::default()
        });
        ids.unused.clear();
        ids.add_age(source, text.as_bytes());
        ids
    }

    /// Number of loaded identities (locked ones count; `SOPS_AGE_KEY_CMD` ones do not).
    pub fn len(&self) -> usize {
        self.loaded.len()
    }

    /// Whether no identity was loaded and no `SOPS_AGE_KEY_CMD` is set.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.key_cmd.is_none()
    }

    /// Errors met while loading, each naming its source.
    pub fn load_errors(&self) -> &[String] {
        &self.errors
    }

    /// Sources that were looked at and held nothing.
    pub fn unused_locations(&self) -> &[String] {
        &self.unused
    }

    /// The X25519 recipients of the loaded (unlocked, non-plugin) identities.
    pub fn recipients(&self) -> Vec<String> {
        self.loaded
            .iter()
            .filter_map(|l| l.recipient.clone())
            .collect()
    }

    fn add_ssh(&mut self, source: &str, bytes: &[u8]) {
        match age::ssh::Identity::from_buffer(bytes, Some(source.to_owned())) {
            Ok(age::ssh::Identity::Unencrypted(key)) => {
                self.loaded.push(Loaded::unlocked(
                    source,
                    None,
                    Box::new(age::ssh::Identity::Unencrypted(key)),
                ));
                // sops >= 3.12 (getsops/sops#1999): an Ed25519 SSH key also opens keys wrapped
                // for its X25519 form (the ssh-to-age recipient).
                if let Some(id) = ssh::x25519_from_openssh(bytes) {
                    let recipient = Some(id.to_public().to_string());
                    self.loaded
                        .push(Loaded::unlocked(source, recipient, Box::new(id)));
                }
            }
            Ok(age::ssh::Identity::Encrypted(key)) => {
                self.push_locked(source, LockedKind::Ssh(key));
            }
            Ok(age::ssh::Identity::Unsupported(_)) => self
                .errors
                .push(format!("{source}: unsupported SSH key type for age")),
            Err(e) => self
                .errors
                .push(format!("{source}: not an SSH private key: {e}")),
        }
    }

    fn push_locked(&mut self, source: &str, kind: LockedKind) {
        let locked = Arc::new(Locked::new(source, kind, self.prompt.clone()));
        self.loaded.push(Loaded {
            source: source.to_owned(),
            recipient: None,
            identity: Box::new(SharedLocked(locked.clone())),
            locked: Some(locked),
        });
    }

    fn add_age(&mut self, source: &str, bytes: &[u8]) {
        let armored = bytes.starts_with(b"-----BEGIN AGE");
        if armored || bytes.starts_with(b"age-encryption") {
            self.push_locked(source, LockedKind::Age(Zeroizing::new(bytes.to_vec())));
            return;
        }
        match parse_loaded(source, bytes, &self.prompt) {
            Ok(list) if list.is_empty() => self.unused.push(source.to_owned()),
            Ok(list) => self.loaded.extend(list),
            Err(e) => self.errors.push(e),
        }
    }

    /// Identities from `SOPS_AGE_KEY_CMD` for `recipient`, running the command once per
    /// recipient.
    fn cmd_identities(&self, recipient: &str) -> Result<Option<Arc<Vec<Loaded>>>, String> {
        let Some(cmd) = &self.key_cmd else {
            return Ok(None);
        };
        let mut cache = self
            .from_cmd
            .lock()
            .map_err(|_| "SOPS_AGE_KEY_CMD: identity cache poisoned".to_owned())?;
        if let Some(found) = cache.get(recipient) {
            return Ok(Some(found.clone()));
        }
        let out =
            run_command(cmd, Some(recipient)).map_err(|e| format!("SOPS_AGE_KEY_CMD: {e}"))?;
        let list = Arc::new(parse_loaded("SOPS_AGE_KEY_CMD", &out, &self.prompt)?);
        cache.insert(recipient.to_owned(), list.clone());
        Ok(Some(list))
    }

    /// Decrypts the armored age file `body` (wrapped for `recipient`, empty when unknown).
    pub fn unwrap_for(&self, recipient: &str, body: &[u8]) -> Result<SecretBytes, KeyError> {
        self.try_unwrap(recipient, body)?.ok_or_else(|| {
            let mut message = if self.is_empty() {
                "failed to load age identities".to_owned()
            } else {
                "no age identity matched this recipient".to_owned()
            };
            let unlock_errors = self
                .loaded
                .iter()
                .filter_map(|l| l.locked.as_ref()?.error())
                .collect::<Vec<_>>();
            let errors: Vec<&str> = self
                .errors
                .iter()
                .map(String::as_str)
                .chain(unlock_errors.iter().map(String::as_str))
                .collect();
            if !errors.is_empty() {
                message.push_str(". Errors while loading age identities: ");
                message.push_str(&errors.join("; "));
            }
            if !self.unused.is_empty() {
                message.push_str(". Did not find keys in: ");
                message.push_str(&self.unused.join(", "));
            }
            KeyError::Service {
                type_id: TYPE_ID.into(),
                key_id: recipient.to_owned(),
                message,
            }
        })
    }

    /// `Ok(None)` when no identity matches.
    fn try_unwrap(&self, recipient: &str, body: &[u8]) -> Result<Option<SecretBytes>, KeyError> {
        let service_error = |message: String| KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: recipient.to_owned(),
            message,
        };
        if body.len() > SIZE_LIMIT {
            return Err(service_error("wrapped age key is too large".into()));
        }
        let matching = |l: &&Loaded| {
            recipient.is_empty() || l.recipient.as_deref().is_none_or(|r| r == recipient)
        };
        // Unlocked identities first, so a passphrase is asked only when nothing else opens it.
        let first: Vec<&dyn age::Identity> = self
            .loaded
            .iter()
            .filter(|l| l.locked.is_none())
            .chain(self.loaded.iter().filter(|l| l.locked.is_some()))
            .filter(matching)
            .map(|l| l.identity.as_ref() as &dyn age::Identity)
            .collect();
        if let Some(key) = decrypt_armored(body, &first).map_err(service_error)? {
            return Ok(Some(key));
        }
        let cmd = self.cmd_identities(recipient).map_err(service_error)?;
        let Some(cmd) = cmd else {
            return Ok(None);
        };
        let second: Vec<&dyn age::Identity> = cmd
            .iter()
            .filter(matching)
            .map(|l| l.identity.as_ref() as &dyn age::Identity)
            .collect();
        decrypt_armored(body, &second).map_err(service_error)
    }
}

#[async_trait]
impl KeyService for Identities {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    /// The loaded identities have no single id; this names their sources.
    fn key_id(&self) -> String {
        let sources: Vec<&str> = self.loaded.iter().map(|l| l.source.as_str()).collect();
        format!("age identities from [{}]", sources.join(", "))
    }

    async fn wrap(&self, _key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        Err(KeyError::Unsupported {
            type_id: TYPE_ID.into(),
            key_id: self.key_id(),
            operation: "wrap",
            reason: "identities only unwrap; wrap with an AgeKey recipient".into(),
        })
    }

    /// Offers the key to every identity; `Ok(None)` when none matches. With no identity loaded
    /// at all, an error that lists where sops looks (and what failed to load), as sops reports it.
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != TYPE_ID {
            return Ok(None);
        }
        if self.is_empty() {
            return self
                .unwrap_for(wrapped.key_id.trim(), &wrapped.body)
                .map(Some);
        }
        self.try_unwrap(wrapped.key_id.trim(), &wrapped.body)
    }
}

/// Decrypts an armored (or binary) age file with `identities`. `Ok(None)`: no identity matched.
fn decrypt_armored(
    body: &[u8],
    identities: &[&dyn age::Identity],
) -> Result<Option<SecretBytes>, String> {
    if identities.is_empty() {
        return Ok(None);
    }
    let decryptor = Decryptor::new_buffered(ArmoredReader::new(body))
        .map_err(|e| format!("invalid age-encrypted data key: {e}"))?;
    let mut reader = match decryptor.decrypt(identities.iter().copied()) {
        Ok(r) => r,
        Err(DecryptError::NoMatchingKeys) => return Ok(None),
        Err(e) => return Err(format!("age decryption failed: {e}")),
    };
    let mut out = Zeroizing::new(Vec::with_capacity(64));
    reader
        .by_ref()
        .take(SIZE_LIMIT as u64)
        .read_to_end(&mut out)
        .map_err(|e| format!("age decryption failed: {e}"))?;
    Ok(Some(SecretBytes::new(std::mem::take(&mut *out))))
}
