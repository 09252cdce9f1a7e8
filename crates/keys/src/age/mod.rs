//! age master keys as sops uses them (`getsops/sops:age/keysource.go`).
//!
//! - Wrap: the data key (or a Shamir share) is encrypted to one recipient and ASCII-armored;
//!   [`WrappedKey::body`] is exactly the sops metadata `enc` string
//!   (`-----BEGIN AGE ENCRYPTED FILE-----\n…\n-----END AGE ENCRYPTED FILE-----\n`) and
//!   [`WrappedKey::key_id`] is the recipient. Plain `age -d` opens it.
//! - Recipients: X25519 (`age1…`), SSH (`ssh-ed25519`, `ssh-rsa`) and plugins (`age1<name>1…`).
//! - Unwrap: with [`Identities`], loaded once by the CLI from the sources sops reads
//!   ([`Identities::from_env`]): `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `SOPS_AGE_SSH_PRIVATE_KEY_CMD`,
//!   `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`, `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
//!   `SOPS_AGE_KEY_CMD` (run lazily, with `SOPS_AGE_RECIPIENT` set) and
//!   `<user config dir>/sops/age/keys.txt`. Passphrase-protected age key files and SSH keys are
//!   decrypted on first use with a passphrase from an [`AgePrompt`].
//!
//! sops binds nothing to the wrapping, so the `aad` argument of [`KeyService`] is ignored.
//!
//! Layout (rage keeps its CLI's identity handling in `cli_common`, apart from the format):
//! this module is the wrapping key service ([`AgeKey`]); `discovery` finds identity sources
//! as sops does, `identities` turns them into the unwrapping [`Identities`] (with `lines`
//! parsing identity text, `locked` the passphrase-protected ones and `ssh` the X25519 form of
//! SSH keys), and `prompt` asks the user.

mod discovery;
mod identities;
mod lines;
mod locked;
mod prompt;
mod ssh;

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use age::Encryptor;
use age::armor::{ArmoredWriter, Format};
use async_trait::async_trait;

pub use discovery::IdentitySources;
pub use identities::Identities;
pub use prompt::AgePrompt;

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// Type id of age keys; the sops metadata key.
pub const TYPE_ID: &str = "age";

/// Largest wrapped key or identity source read (age's own identity-file limit).
const SIZE_LIMIT: usize = 1 << 24;

type BoxIdentity = Box<dyn age::Identity + Send + Sync>;

fn config_error(message: impl Into<String>) -> KeyError {
    KeyError::Config {
        type_id: TYPE_ID.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Recipients
// ---------------------------------------------------------------------------------------------

/// A parsed age recipient.
#[derive(Clone)]
enum Recipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
    Plugin(age::plugin::Recipient),
}

impl Recipient {
    /// Parses as sops' `parseRecipient`: `age1` with more than one `1` is a plugin recipient.
    fn parse(s: &str) -> Result<Self, KeyError> {
        if s.starts_with("age1") && s.matches('1').count() > 1 {
            s.parse::<age::plugin::Recipient>()
                .map(Self::Plugin)
                .map_err(|e| config_error(format!("invalid age plugin recipient {s:?}: {e}")))
        } else if s.starts_with("age1") {
            s.parse::<age::x25519::Recipient>()
                .map(Self::X25519)
                .map_err(|e| config_error(format!("invalid age recipient {s:?}: {e}")))
        } else if s.starts_with("ssh-") {
            s.parse::<age::ssh::Recipient>()
                .map(Self::Ssh)
                .map_err(|e| config_error(format!("invalid age SSH recipient {s:?}: {e:?}")))
        } else {
            Err(config_error(format!("unknown age recipient type: {s:?}")))
        }
    }
}

/// One age recipient as a master key. Wraps for its recipient; unwraps with attached
/// [`Identities`].
#[derive(Clone)]
pub struct AgeKey {
    recipient: String,
    parsed: Recipient,
    identities: Option<Arc<Identities>>,
    prompt: AgePrompt,
}

impl fmt::Debug for AgeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeKey")
            .field("recipient", &self.recipient)
            .field("identities", &self.identities.is_some())
            .finish()
    }
}

impl AgeKey {
    /// From the sops metadata field `recipient` (or one `--age` item). Surrounding space is
    /// trimmed, as sops does.
    pub fn from_recipient(recipient: &str) -> Result<Self, KeyError> {
        let recipient = recipient.trim();
        Ok(Self {
            parsed: Recipient::parse(recipient)?,
            recipient: recipient.to_owned(),
            identities: None,
            prompt: AgePrompt::Terminal,
        })
    }

    /// From a comma-separated list (`--age age1…,age1…`, `SOPS_AGE_RECIPIENTS`, a `.sops.yaml`
    /// string). An empty list gives no keys.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, KeyError> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        list.split(',').map(Self::from_recipient).collect()
    }

    /// The recipients in `SOPS_AGE_RECIPIENTS`, if set.
    pub fn from_env_recipients() -> Result<Vec<Self>, KeyError> {
        match std::env::var("SOPS_AGE_RECIPIENTS") {
            Ok(list) => Self::parse_list(&list),
            Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(config_error("SOPS_AGE_RECIPIENTS is not valid UTF-8"))
            }
        }
    }

    /// Attaches the identities used to unwrap.
    #[must_use]
    pub fn with_identities(mut self, identities: Arc<Identities>) -> Self {
        self.identities = Some(identities);
        self
    }

    /// How plugins ask the user (default: the terminal).
    #[must_use]
    pub fn with_prompt(mut self, prompt: AgePrompt) -> Self {
        self.prompt = prompt;
        self
    }

    /// The recipient string, as written in the sops metadata.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// Encrypts `key` to this recipient as an armored age file (synchronous; plugins run a
    /// subprocess).
    pub fn wrap_sync(&self, key: &SecretBytes) -> Result<WrappedKey, KeyError> {
        let service_error = |message: String| KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: self.recipient.clone(),
            message,
        };
        let plugin;
        let recipient: &dyn age::Recipient = match &self.parsed {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
            Recipient::Plugin(r) => {
                plugin = age::plugin::RecipientPluginV1::new(
                    r.plugin(),
                    std::slice::from_ref(r),
                    &[],
                    self.prompt.clone(),
                )
                .map_err(|e| service_error(format!("age plugin: {e}")))?;
                &plugin
            }
        };
        let encryptor = Encryptor::with_recipients(std::iter::once(recipient))
            .map_err(|e| service_error(format!("age encryption failed: {e}")))?;
        let io_error = |e: std::io::Error| service_error(format!("age encryption failed: {e}"));
        let mut out = Vec::with_capacity(512);
        let armored = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(io_error)?;
        let mut writer = encryptor.wrap_output(armored).map_err(io_error)?;
        writer.write_all(key.expose()).map_err(io_error)?;
        writer
            .finish()
            .and_then(|armored| armored.finish())
            .map_err(io_error)?;
        Ok(WrappedKey::new(TYPE_ID, self.recipient.clone(), out))
    }
}

#[async_trait]
impl KeyService for AgeKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        self.recipient.clone()
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        self.wrap_sync(key)
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if !wrapped.is_for(TYPE_ID, &self.recipient) {
            return Ok(None);
        }
        let Some(identities) = &self.identities else {
            return Err(KeyError::Unsupported {
                type_id: TYPE_ID.into(),
                key_id: self.recipient.clone(),
                operation: "unwrap",
                reason: "no age identities were loaded".into(),
            });
        };
        identities
            .unwrap_for(&self.recipient, &wrapped.body)
            .map(Some)
    }
}

/// The [`crate::kinds::KINDS`] row's builder: a recipient to wrap for (unwrapping is the
/// identities' job, in [`crate::sources::KeySources::unwrappers`]).
pub(crate) fn build(
    entry: &dyn crate::sources::EntryFields,
    _sources: &crate::sources::KeySources,
) -> Result<Option<Arc<dyn KeyService>>, KeyError> {
    Ok(Some(Arc::new(AgeKey::from_recipient(
        entry.field("recipient"),
    )?)))
}

/// A Flux `*.agekey` file: its identities open age keys (never prompting).
pub(crate) fn load_flux_file(
    sources: &mut crate::sources::KeySources,
    file: &crate::sources::FluxFile<'_>,
) -> Result<(), KeyError> {
    sources.unwrappers.push(Arc::new(Identities::from_text(
        &format!("{} ({})", file.dir.display(), file.name),
        file.text,
        AgePrompt::Never,
    )));
    Ok(())
}

#[cfg(test)]
mod tests;
