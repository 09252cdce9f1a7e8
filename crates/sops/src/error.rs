/// Errors of the sops engine. No variant carries a plaintext value or key material: values are
/// named by their key path only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A document could not be parsed by its store.
    #[error("{format} parse error at line {line}: {message}")]
    Parse {
        /// The store ("YAML", "JSON", …).
        format: &'static str,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The document has a shape the store cannot represent.
    #[error("{0}")]
    Unsupported(String),
    /// The input file is empty.
    #[error("file cannot be completely empty, it must contain at least one document")]
    Empty,
    /// The file has no `sops` metadata.
    #[error("sops metadata not found: the file is not encrypted with sops")]
    MetadataNotFound,
    /// The file already has `sops` metadata (or a reserved key).
    #[error(
        "the file already contains a `{0}` key reserved for sops metadata: it is already encrypted"
    )]
    AlreadyEncrypted(String),
    /// The metadata block is invalid.
    #[error("invalid sops metadata: {0}")]
    Metadata(String),
    /// A value that must be encrypted is not a valid `ENC[…]` string.
    #[error(
        "value at `{path}` does not match sops' data format (ENC[AES256_GCM,data:…,iv:…,tag:…,type:…])"
    )]
    NotEncrypted {
        /// Key path of the value.
        path: String,
    },
    /// An `ENC[…]` value failed to decrypt (tampered, wrong key, or moved to another key path).
    #[error("could not decrypt the value at `{path}`: {reason}")]
    Decrypt {
        /// Key path of the value.
        path: String,
        /// Why (never the value).
        reason: String,
    },
    /// The stored MAC did not match the computed one. Neither MAC is kept: both are hashes of
    /// the plaintext (sops prints them; a low-entropy value could be guessed from them where the
    /// message is shown, such as Argo CD's UI).
    #[error("MAC mismatch: the file was modified outside sops or its lastmodified was changed")]
    MacMismatch,
    /// The file has no MAC.
    #[error("the file has no MAC; use --ignore-mac to decrypt it anyway")]
    NoMac,
    /// The MAC value itself could not be decrypted (tampered MAC or lastmodified).
    #[error("could not decrypt the MAC: the MAC or the lastmodified timestamp was changed")]
    MacDecrypt,
    /// A regex from the metadata or a rule is invalid.
    #[error("invalid regular expression {0:?}: {1}")]
    Regex(String, String),
    /// No master key could unwrap the data key.
    #[error("{0}")]
    DataKey(String),
    /// The file still has git merge conflict markers.
    #[error("the file has unresolved git merge conflict markers (<<<<<<< … >>>>>>>); conflicting keys: {}. Resolve the conflict (for example decrypt both sides, merge the plaintext, and encrypt again) before using it", .keys.join(", "))]
    Conflict {
        /// Names of the keys on conflicting lines (never their values).
        keys: Vec<String>,
    },
    /// A crypto primitive failed.
    #[error(transparent)]
    Crypto(#[from] hush_crypto::Error),
}

/// Result alias of the sops engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn parse(format: &'static str, line: usize, message: impl Into<String>) -> Self {
        Self::Parse {
            format,
            line,
            message: message.into(),
        }
    }
}
