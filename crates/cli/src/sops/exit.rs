//! sops' exit codes (`getsops/sops:cmd/sops/codes/codes.go`) and the error that carries one.

use std::path::Path;

/// sops' exit codes.
pub(super) mod codes {
    pub(in crate::sops) const GENERIC: u8 = 1;
    pub(in crate::sops) const COULD_NOT_READ_INPUT: u8 = 2;
    pub(in crate::sops) const COULD_NOT_WRITE_OUTPUT: u8 = 3;
    pub(in crate::sops) const ERROR_DECRYPTING_MAC: u8 = 24;
    pub(in crate::sops) const ERROR_DECRYPTING_TREE: u8 = 25;
    pub(in crate::sops) const MAC_MISMATCH: u8 = 51;
    pub(in crate::sops) const INVALID_TREE_PATH: u8 = 91;
    pub(in crate::sops) const NEED_AT_LEAST_ONE_DOCUMENT: u8 = 92;
    pub(in crate::sops) const NO_ENCRYPTION_KEY: u8 = 111;
    pub(in crate::sops) const COULD_NOT_RETRIEVE_KEY: u8 = 128;
    pub(in crate::sops) const FILE_NOT_MODIFIED: u8 = 200;
    pub(in crate::sops) const NO_EDITOR: u8 = 201;
    pub(in crate::sops) const ALREADY_ENCRYPTED: u8 = 203;
}

/// An error with sops' exit code.
#[derive(Debug)]
pub(super) struct Exit {
    pub(super) code: u8,
    message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub(super) fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        message: message.into(),
    })
}

/// Maps an engine error on `file` to sops' exit code and a message naming the file.
pub(super) fn engine(file: &Path, e: hush_sops::Error) -> anyhow::Error {
    use hush_sops::Error as E;
    let code = match &e {
        E::MacMismatch | E::NoMac => codes::MAC_MISMATCH,
        E::MacDecrypt => codes::ERROR_DECRYPTING_MAC,
        E::Decrypt { .. } | E::NotEncrypted { .. } => codes::ERROR_DECRYPTING_TREE,
        E::DataKey(_) => codes::COULD_NOT_RETRIEVE_KEY,
        E::Empty => codes::NEED_AT_LEAST_ONE_DOCUMENT,
        E::AlreadyEncrypted(_) => codes::ALREADY_ENCRYPTED,
        _ => codes::GENERIC,
    };
    let hint = match &e {
        E::MacMismatch => {
            "\nThe file was changed outside sops (or merged by git). Fix the change, or decrypt with --ignore-mac to inspect it."
        }
        E::Decrypt { .. } => {
            "\nThe value was changed or moved to another key; restore it from version control."
        }
        E::MetadataNotFound => "\nEncrypt it first with `sops encrypt`.",
        _ => "",
    };
    exit(code, format!("{}: {e}{hint}", file.display()))
}
