//! How age asks the user: passphrases of encrypted identities and plugin questions (rage keeps
//! this in `cli_common` apart from the key handling).

use std::fmt;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use age::secrecy::{ExposeSecret, SecretString};

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
