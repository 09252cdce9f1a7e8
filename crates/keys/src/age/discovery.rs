//! Identity discovery: where sops looks for age identities (environment variables, SSH keys in
//! the home directory, the user config directory) and the reading of those files and commands.
//! What the bytes mean is [`super::identities`]' job.

use std::fmt;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::SIZE_LIMIT;
use super::prompt::AgePrompt;

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
pub(super) fn user_config_dir(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
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

/// One finding of [`IdentitySources::discover`], in the order sops looks.
pub(super) enum Found {
    /// An SSH private key (a file or a command's output).
    Ssh {
        source: String,
        bytes: Zeroizing<Vec<u8>>,
    },
    /// age identity lines, or an age-encrypted identity file.
    Age {
        source: String,
        bytes: Zeroizing<Vec<u8>>,
    },
    /// A source that could not be read, named in the message.
    Error(String),
    /// A source that was looked at and held nothing.
    Unused(String),
}

impl IdentitySources {
    /// Reads every source in sops' order (SSH keys first, then age identities), handing each
    /// finding to `found` as soon as it is read. `SOPS_AGE_KEY_CMD` is not run here: it runs per
    /// recipient when a key is unwrapped.
    pub(super) fn discover(&self, mut found: impl FnMut(Found)) {
        let ssh = |source: String, bytes| Found::Ssh { source, bytes };
        let age = |source: String, bytes| Found::Age { source, bytes };
        match &self.ssh_key_file {
            Some(path) => {
                let label = format!("SOPS_AGE_SSH_PRIVATE_KEY_FILE ({})", path.display());
                found(read_file(path, label, ssh));
            }
            None => found(Found::Unused("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into())),
        }
        found(match &self.ssh_key_cmd {
            Some(cmd) => match run_command(cmd, None) {
                Ok(out) => ssh("SOPS_AGE_SSH_PRIVATE_KEY_CMD".into(), out),
                Err(e) => Found::Error(format!("SOPS_AGE_SSH_PRIVATE_KEY_CMD: {e}")),
            },
            None => Found::Unused("SOPS_AGE_SSH_PRIVATE_KEY_CMD".into()),
        });
        if let Some(home) = &self.home {
            for name in ["id_ed25519", "id_rsa"] {
                let path = home.join(".ssh").join(name);
                found(if path.exists() {
                    read_file(&path, path.display().to_string(), ssh)
                } else {
                    Found::Unused(path.display().to_string())
                });
            }
        }

        found(match &self.age_key {
            Some(key) => age(
                "SOPS_AGE_KEY".into(),
                Zeroizing::new(key.expose_secret().as_bytes().to_vec()),
            ),
            None => Found::Unused("SOPS_AGE_KEY".into()),
        });
        match &self.age_key_file {
            Some(path) => {
                let label = format!("SOPS_AGE_KEY_FILE ({})", path.display());
                found(read_file(path, label, age));
            }
            None => found(Found::Unused("SOPS_AGE_KEY_FILE".into())),
        }
        if self.age_key_cmd.is_none() {
            found(Found::Unused("SOPS_AGE_KEY_CMD".into()));
        }
        if let Some(dir) = &self.config_dir {
            let path = dir.join("sops").join("age").join("keys.txt");
            let label = path.display().to_string();
            found(match read_limited(&path) {
                Ok(bytes) => age(label, bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Unused(label),
                Err(e) => Found::Error(format!("{label}: {e}")),
            });
        }
    }
}

/// Reads `path` into a finding made by `kind`, or an error naming `label`.
fn read_file(
    path: &Path,
    label: String,
    kind: impl FnOnce(String, Zeroizing<Vec<u8>>) -> Found,
) -> Found {
    match read_limited(path) {
        Ok(bytes) => kind(label, bytes),
        Err(e) => Found::Error(format!("{label}: {e}")),
    }
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
pub(super) fn run_command(
    cmd: &str,
    recipient: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, String> {
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
