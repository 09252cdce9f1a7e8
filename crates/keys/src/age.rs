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

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::{ExposeSecret, SecretString};
use age::{DecryptError, Decryptor, Encryptor};
use age_core::format::{FileKey, Stanza};
use async_trait::async_trait;
use zeroize::Zeroizing;

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

// ---------------------------------------------------------------------------------------------
// Prompting (passphrases, plugin interaction)
// ---------------------------------------------------------------------------------------------

/// How age asks the user for a passphrase (encrypted key files, SSH keys) and how plugins
/// talk to the user.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum AgePrompt {
    /// The controlling terminal (`/dev/tty`); messages go to stderr.
    #[default]
    Terminal,
    /// A fixed passphrase (automation and tests); plugin questions are refused.
    Passphrase(Arc<SecretString>),
    /// Never ask: encrypted identities stay locked.
    Never,
}

impl fmt::Debug for AgePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Terminal => "AgePrompt::Terminal",
            Self::Passphrase(_) => "AgePrompt::Passphrase(<redacted>)",
            Self::Never => "AgePrompt::Never",
        })
    }
}

impl age::Callbacks for AgePrompt {
    fn display_message(&self, message: &str) {
        if matches!(self, Self::Terminal) {
            eprintln!("age: {message}");
        }
    }

    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        if !matches!(self, Self::Terminal) {
            return None;
        }
        let choices = match no_string {
            Some(no) => format!("[{yes_string}/{no}]"),
            None => format!("[{yes_string}]"),
        };
        let answer = read_tty_line(&format!("age: {message} {choices} "))?;
        let answer = answer.trim();
        if answer.eq_ignore_ascii_case(yes_string) {
            Some(true)
        } else if no_string.is_some_and(|no| answer.eq_ignore_ascii_case(no)) {
            Some(false)
        } else {
            None
        }
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        if !matches!(self, Self::Terminal) {
            return None;
        }
        read_tty_line(&format!("age: {description} "))
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        match self {
            Self::Terminal => rpassword::prompt_password(format!("age: {description} "))
                .ok()
                .map(SecretString::from),
            Self::Passphrase(p) => Some(SecretString::from(p.expose_secret().to_owned())),
            Self::Never => None,
        }
    }
}

/// Reads one visible line from the controlling terminal (never stdin: it may carry the file).
fn read_tty_line(prompt: &str) -> Option<String> {
    let tty = std::fs::File::open("/dev/tty").ok()?;
    eprint!("{prompt}");
    let mut line = String::new();
    BufReader::new(tty).read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

// ---------------------------------------------------------------------------------------------
// Identity sources
// ---------------------------------------------------------------------------------------------

/// Where identities come from: the environment sops reads, captured in one value so tests
/// (and callers with their own configuration) do not touch the process environment.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct IdentitySources {
    /// `SOPS_AGE_KEY`: identities, one or more per line.
    pub age_key: Option<SecretString>,
    /// `SOPS_AGE_KEY_FILE`.
    pub age_key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY_CMD`: split like a shell would, run without a shell.
    pub age_key_cmd: Option<String>,
    /// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`.
    pub ssh_key_file: Option<PathBuf>,
    /// `SOPS_AGE_SSH_PRIVATE_KEY_CMD`.
    pub ssh_key_cmd: Option<String>,
    /// The home directory (`~/.ssh/id_ed25519`, `~/.ssh/id_rsa`).
    pub home: Option<PathBuf>,
    /// The user config directory (`<dir>/sops/age/keys.txt`).
    pub config_dir: Option<PathBuf>,
    /// How to ask for passphrases.
    pub prompt: AgePrompt,
}

impl fmt::Debug for IdentitySources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySources")
            .field("age_key", &self.age_key.as_ref().map(|_| "<redacted>"))
            .field("age_key_file", &self.age_key_file)
            .field("age_key_cmd", &self.age_key_cmd.is_some())
            .field("ssh_key_file", &self.ssh_key_file)
            .field("ssh_key_cmd", &self.ssh_key_cmd.is_some())
            .field("home", &self.home)
            .field("config_dir", &self.config_dir)
            .field("prompt", &self.prompt)
            .finish()
    }
}

impl IdentitySources {
    /// Reads the sops environment variables, the home and the user config directory.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let text = |name: &str| var(name).map(|v| v.to_string_lossy().into_owned());
        let home = var("HOME").map(PathBuf::from);
        Self {
            age_key: std::env::var("SOPS_AGE_KEY").ok().map(SecretString::from),
            age_key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            age_key_cmd: text("SOPS_AGE_KEY_CMD"),
            ssh_key_file: var("SOPS_AGE_SSH_PRIVATE_KEY_FILE").map(PathBuf::from),
            ssh_key_cmd: text("SOPS_AGE_SSH_PRIVATE_KEY_CMD"),
            config_dir: user_config_dir(var("XDG_CONFIG_HOME").map(PathBuf::from), home.clone()),
            home,
            prompt: AgePrompt::Terminal,
        }
    }
}

/// Go's `os.UserConfigDir` as sops uses it: `$XDG_CONFIG_HOME` (absolute) first on every Unix,
/// then the platform default.
fn user_config_dir(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(xdg) = xdg.filter(|p| p.is_absolute()) {
        return Some(xdg);
    }
    if cfg!(windows) {
        return std::env::var_os("AppData").map(PathBuf::from);
    }
    let home = home?;
    if cfg!(target_os = "macos") {
        Some(home.join("Library").join("Application Support"))
    } else {
        Some(home.join(".config"))
    }
}

// ---------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------

/// One loaded identity and where it came from.
struct Loaded {
    source: String,
    /// The X25519 recipient, when known: lets us skip identities for other recipients.
    recipient: Option<String>,
    identity: BoxIdentity,
    /// Set for passphrase-protected identities: tried after the others, errors reported.
    locked: Option<Arc<Locked>>,
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

        // SSH keys.
        match &sources.ssh_key_file {
            Some(path) => {
                let label = format!("SOPS_AGE_SSH_PRIVATE_KEY_FILE ({})", path.display());
                match read_limited(path) {
                    Ok(bytes) => ids.add_ssh(&label, &bytes),
                    Err(e) => ids.errors.push(format!("{label}: {e}")),
                }
            }
            None => ids.unused.push("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into()),
        }
        match &sources.ssh_key_cmd {
            Some(cmd) => match run_command(cmd, None) {
                Ok(out) => ids.add_ssh("SOPS_AGE_SSH_PRIVATE_KEY_CMD", &out),
                Err(e) => ids
                    .errors
                    .push(format!("SOPS_AGE_SSH_PRIVATE_KEY_CMD: {e}")),
            },
            None => ids.unused.push("SOPS_AGE_SSH_PRIVATE_KEY_CMD".into()),
        }
        if let Some(home) = &sources.home {
            for name in ["id_ed25519", "id_rsa"] {
                let path = home.join(".ssh").join(name);
                if path.exists() {
                    let label = path.display().to_string();
                    match read_limited(&path) {
                        Ok(bytes) => ids.add_ssh(&label, &bytes),
                        Err(e) => ids.errors.push(format!("{label}: {e}")),
                    }
                } else {
                    ids.unused.push(path.display().to_string());
                }
            }
        }

        // age identities.
        match &sources.age_key {
            Some(key) => {
                let text = Zeroizing::new(key.expose_secret().as_bytes().to_vec());
                ids.add_age("SOPS_AGE_KEY", &text);
            }
            None => ids.unused.push("SOPS_AGE_KEY".into()),
        }
        match &sources.age_key_file {
            Some(path) => {
                let label = format!("SOPS_AGE_KEY_FILE ({})", path.display());
                match read_limited(path) {
                    Ok(bytes) => ids.add_age(&label, &bytes),
                    Err(e) => ids.errors.push(format!("{label}: {e}")),
                }
            }
            None => ids.unused.push("SOPS_AGE_KEY_FILE".into()),
        }
        if sources.age_key_cmd.is_none() {
            ids.unused.push("SOPS_AGE_KEY_CMD".into());
        }
        if let Some(dir) = &sources.config_dir {
            let path = dir.join("sops").join("age").join("keys.txt");
            let label = path.display().to_string();
            match read_limited(&path) {
                Ok(bytes) => ids.add_age(&label, &bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ids.unused.push(label),
                Err(e) => ids.errors.push(format!("{label}: {e}")),
            }
        }
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
                self.loaded.push(Loaded {
                    source: source.to_owned(),
                    recipient: None,
                    identity: Box::new(age::ssh::Identity::Unencrypted(key)),
                    locked: None,
                });
                // sops >= 3.12 (getsops/sops#1999): an Ed25519 SSH key also opens keys wrapped
                // for its X25519 form (the ssh-to-age recipient).
                if let Some(id) = ssh::x25519_from_openssh(bytes) {
                    self.loaded.push(Loaded {
                        source: source.to_owned(),
                        recipient: Some(id.to_public().to_string()),
                        identity: Box::new(id),
                        locked: None,
                    });
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
        match parse_identity_lines(source, bytes, &self.prompt) {
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
        let list = Arc::new(parse_identity_lines(
            "SOPS_AGE_KEY_CMD",
            &out,
            &self.prompt,
        )?);
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

/// Parses identity lines as sops does: blank and `#` lines skipped; each remaining line holds
/// one or more whitespace-separated `AGE-SECRET-KEY-1…` or `AGE-PLUGIN-…` identities.
/// Errors name the source and line, never the content.
fn parse_identity_lines(
    source: &str,
    bytes: &[u8],
    prompt: &AgePrompt,
) -> Result<Vec<Loaded>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("{source}: identities are not UTF-8"))?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for word in line.split_whitespace() {
            if word.starts_with("AGE-PLUGIN-") {
                let parsed = word.parse::<age::plugin::Identity>().map_err(|e| {
                    format!(
                        "{source}: line {}: invalid plugin identity: {e}",
                        number + 1
                    )
                })?;
                let plugin = age::plugin::IdentityPluginV1::new(
                    parsed.plugin(),
                    std::slice::from_ref(&parsed),
                    prompt.clone(),
                )
                .map_err(|e| format!("{source}: line {}: {e}", number + 1))?;
                out.push(Loaded {
                    source: source.to_owned(),
                    recipient: None,
                    identity: Box::new(plugin),
                    locked: None,
                });
            } else if word.starts_with("AGE-SECRET-KEY-1") {
                let id = word.parse::<age::x25519::Identity>().map_err(|_| {
                    format!("{source}: line {}: invalid age secret key", number + 1)
                })?;
                out.push(Loaded {
                    source: source.to_owned(),
                    recipient: Some(id.to_public().to_string()),
                    identity: Box::new(id),
                    locked: None,
                });
            } else {
                return Err(format!(
                    "{source}: line {}: unknown identity type",
                    number + 1
                ));
            }
        }
    }
    Ok(out)
}

fn read_limited(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let file = std::fs::File::open(path)?;
    let mut out = Zeroizing::new(Vec::new());
    BufReader::new(file)
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

/// Runs `cmd` (split like a shell, no shell) and returns its stdout. stderr goes to ours, so
/// prompts of the command reach the user.
fn run_command(cmd: &str, recipient: Option<&str>) -> Result<Zeroizing<Vec<u8>>, String> {
    let args = shlex::split(cmd).ok_or_else(|| "cannot parse the command".to_owned())?;
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| "the command is empty".to_owned())?;
    let mut command = std::process::Command::new(program);
    command
        .args(rest)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit());
    if let Some(r) = recipient {
        command.env("SOPS_AGE_RECIPIENT", r);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run {program:?}: {e}"))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(format!("{program:?} failed: {}", output.status));
    }
    if stdout.len() > SIZE_LIMIT {
        return Err(format!("{program:?} printed too much"));
    }
    Ok(stdout)
}

// ---------------------------------------------------------------------------------------------
// Passphrase-protected identities
// ---------------------------------------------------------------------------------------------

enum LockedKind {
    /// An age-encrypted (scrypt) identity file, armored or binary.
    Age(Zeroizing<Vec<u8>>),
    /// An encrypted OpenSSH key.
    Ssh(age::ssh::EncryptedKey),
}

/// An identity that needs a passphrase; unlocked on first use, at most once.
struct Locked {
    source: String,
    kind: LockedKind,
    prompt: AgePrompt,
    unlocked: OnceLock<Result<Vec<BoxIdentity>, String>>,
}

impl Locked {
    fn new(source: &str, kind: LockedKind, prompt: AgePrompt) -> Self {
        Self {
            source: source.to_owned(),
            kind,
            prompt,
            unlocked: OnceLock::new(),
        }
    }

    fn unlock(&self) -> Result<Vec<BoxIdentity>, String> {
        use age::Callbacks;
        let description = format!("Enter passphrase for identity '{}':", self.source);
        let passphrase = self
            .prompt
            .request_passphrase(&description)
            .ok_or_else(|| format!("{}: no passphrase available", self.source))?;
        match &self.kind {
            LockedKind::Ssh(key) => key
                .decrypt(passphrase)
                .map(|k| vec![Box::new(age::ssh::Identity::Unencrypted(k)) as BoxIdentity])
                .map_err(|e| format!("{}: cannot decrypt SSH key: {e}", self.source)),
            LockedKind::Age(bytes) => {
                let decryptor = Decryptor::new_buffered(ArmoredReader::new(&bytes[..]))
                    .map_err(|e| format!("{}: {e}", self.source))?;
                if !decryptor.is_scrypt() {
                    return Err(format!(
                        "{}: encrypted identity file is not passphrase-protected",
                        self.source
                    ));
                }
                let scrypt = age::scrypt::Identity::new(passphrase);
                let mut reader = decryptor
                    .decrypt(std::iter::once(&scrypt as &dyn age::Identity))
                    .map_err(|e| match e {
                        DecryptError::NoMatchingKeys | DecryptError::DecryptionFailed => {
                            format!("{}: incorrect passphrase", self.source)
                        }
                        e => format!("{}: {e}", self.source),
                    })?;
                let mut plain = Zeroizing::new(Vec::new());
                reader
                    .by_ref()
                    .take(SIZE_LIMIT as u64)
                    .read_to_end(&mut plain)
                    .map_err(|e| format!("{}: {e}", self.source))?;
                parse_identity_lines(&self.source, &plain, &self.prompt)
                    .map(|list| list.into_iter().map(|l| l.identity).collect())
            }
        }
    }
}

impl Locked {
    /// Why unlocking failed, once it was tried.
    fn error(&self) -> Option<String> {
        self.unlocked.get()?.as_ref().err().cloned()
    }
}

/// A shared [`Locked`] as an age identity. A key that cannot be unlocked is "not mine" (so
/// other identities are still tried); the reason is reported with the unwrap error.
struct SharedLocked(Arc<Locked>);

impl age::Identity for SharedLocked {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        let locked = &self.0;
        // An SSH key can only open SSH stanzas: do not ask for its passphrase otherwise.
        if matches!(locked.kind, LockedKind::Ssh(_))
            && !stanzas
                .iter()
                .any(|s| s.tag == "ssh-ed25519" || s.tag == "ssh-rsa")
        {
            return None;
        }
        match locked.unlocked.get_or_init(|| locked.unlock()) {
            Ok(identities) => identities.iter().find_map(|i| i.unwrap_stanzas(stanzas)),
            Err(_) => None,
        }
    }
}

mod ssh {
    //! The X25519 identity of an unencrypted OpenSSH Ed25519 key, as ssh-to-age and sops derive
    //! it: the clamped first half of SHA-512(seed) (RFC 8032 §5.1.5).
    //! Format: <https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key>.

    use base64::Engine as _;
    use sha2::{Digest, Sha512};
    use zeroize::Zeroizing;

    /// `None` for anything but an unencrypted single Ed25519 key.
    pub(super) fn x25519_from_openssh(pem: &[u8]) -> Option<age::x25519::Identity> {
        let text = std::str::from_utf8(pem).ok()?;
        let body: String = text
            .trim()
            .strip_prefix("-----BEGIN OPENSSH PRIVATE KEY-----")?
            .strip_suffix("-----END OPENSSH PRIVATE KEY-----")?
            .split_whitespace()
            .collect();
        let blob = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?,
        );
        let mut r = Reader(blob.strip_prefix(b"openssh-key-v1\0")?);
        if r.string()? != b"none" || r.string()? != b"none" {
            return None; // encrypted: derived after unlocking is not supported
        }
        r.string()?; // kdf options
        if r.u32()? != 1 {
            return None;
        }
        r.string()?; // public key
        let mut private = Reader(r.string()?);
        if private.u32()? != private.u32()? || private.string()? != b"ssh-ed25519" {
            return None;
        }
        private.string()?; // public part
        let secret = private.string()?;
        let seed = secret.get(..32)?;
        let hash = Zeroizing::new(Sha512::digest(seed));
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&hash[..32]);
        scalar[0] &= 248;
        scalar[31] &= 127;
        scalar[31] |= 64;
        let encoded = Zeroizing::new(bech32_upper("age-secret-key-", &scalar[..]));
        encoded.parse().ok()
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn u32(&mut self) -> Option<u32> {
            let (head, rest) = self.0.split_first_chunk::<4>()?;
            self.0 = rest;
            Some(u32::from_be_bytes(*head))
        }

        fn string(&mut self) -> Option<&'a [u8]> {
            let len = usize::try_from(self.u32()?).ok()?;
            if len > self.0.len() {
                return None;
            }
            let (head, rest) = self.0.split_at(len);
            self.0 = rest;
            Some(head)
        }
    }

    /// BIP-173 Bech32, upper case (age's secret-key encoding).
    fn bech32_upper(hrp: &str, data: &[u8]) -> String {
        const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        fn polymod(values: &[u8]) -> u32 {
            const GEN: [u32; 5] = [
                0x3b6a_57b2,
                0x2650_8e6d,
                0x1ea1_19fa,
                0x3d42_33dd,
                0x2a14_62b3,
            ];
            let mut chk = 1u32;
            for &v in values {
                let top = chk >> 25;
                chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
                for (i, g) in GEN.iter().enumerate() {
                    if (top >> i) & 1 == 1 {
                        chk ^= g;
                    }
                }
            }
            chk
        }
        let mut five = Zeroizing::new(Vec::with_capacity(data.len() * 8 / 5 + 1));
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in data {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                five.push(((acc >> bits) & 31) as u8);
            }
        }
        if bits > 0 {
            five.push(((acc << (5 - bits)) & 31) as u8);
        }
        let mut values: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
        values.push(0);
        values.extend(hrp.bytes().map(|c| c & 31));
        values.extend_from_slice(&five);
        values.extend_from_slice(&[0; 6]);
        let checksum = polymod(&values) ^ 1;
        let mut out = String::with_capacity(hrp.len() + 1 + five.len() + 6);
        out.push_str(hrp);
        out.push('1');
        for &d in five.iter() {
            out.push(char::from(CHARSET[usize::from(d)]));
        }
        for i in 0..6 {
            out.push(char::from(
                CHARSET[((checksum >> (5 * (5 - i))) & 31) as usize],
            ));
        }
        out.to_uppercase()
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
