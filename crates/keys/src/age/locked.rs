//! Passphrase-protected identities (age scrypt identity files, encrypted OpenSSH keys),
//! unlocked on first use with a passphrase from the [`AgePrompt`].

use std::io::Read;
use std::sync::{Arc, OnceLock};

use age::armor::ArmoredReader;
use age::{DecryptError, Decryptor};
use age_core::format::{FileKey, Stanza};
use zeroize::Zeroizing;

use super::lines::parse_identity_lines;
use super::prompt::AgePrompt;
use super::{BoxIdentity, SIZE_LIMIT};

pub(super) enum LockedKind {
    /// An age-encrypted (scrypt) identity file, armored or binary.
    Age(Zeroizing<Vec<u8>>),
    /// An encrypted OpenSSH key.
    Ssh(age::ssh::EncryptedKey),
}

/// An identity that needs a passphrase; unlocked on first use, at most once.
pub(super) struct Locked {
    source: String,
    kind: LockedKind,
    prompt: AgePrompt,
    unlocked: OnceLock<Result<Vec<BoxIdentity>, String>>,
}

impl Locked {
    pub(super) fn new(source: &str, kind: LockedKind, prompt: AgePrompt) -> Self {
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
                    .map(|list| list.into_iter().map(|p| p.identity).collect())
            }
        }
    }

    /// Why unlocking failed, once it was tried.
    pub(super) fn error(&self) -> Option<String> {
        self.unlocked.get()?.as_ref().err().cloned()
    }
}

/// A shared [`Locked`] as an age identity. A key that cannot be unlocked is "not mine" (so
/// other identities are still tried); the reason is reported with the unwrap error.
pub(super) struct SharedLocked(pub(super) Arc<Locked>);

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
