/// Errors of the crypto core. No variant carries secret bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// RSA-OAEP decryption failed. Wrong key and wrong label (scope) are deliberately
    /// indistinguishable: telling them apart would be an oracle.
    #[error("decryption failed: the value was sealed with another key or for another scope")]
    DecryptionFailed,
    /// AES-GCM authentication failed: the ciphertext, tag, nonce or associated data was changed.
    #[error("authentication failed: the ciphertext or its tag was modified, or the key is wrong")]
    BadTag,
    /// The input ended before a complete structure was read.
    #[error("ciphertext is truncated: need at least {needed} bytes, got {got}")]
    Truncated {
        /// Bytes required by the structure.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The envelope's length prefix points past the end of the input.
    #[error(
        "ciphertext length prefix ({prefix} bytes) is larger than the remaining input ({remaining} bytes)"
    )]
    LengthPrefixTooLarge {
        /// Declared RSA ciphertext length.
        prefix: usize,
        /// Bytes that follow the prefix.
        remaining: usize,
    },
    /// A session or data key had the wrong size.
    #[error("invalid key length: expected {expected} bytes, got {got}")]
    KeyLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A nonce had the wrong size.
    #[error("invalid nonce length: expected {expected} bytes, got {got}")]
    NonceLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A PEM, DER or certificate could not be parsed.
    #[error("invalid {what}: {reason}")]
    Parse {
        /// What was being parsed ("certificate", "private key", ...).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// RSA key generation or an RSA operation on our own key failed.
    #[error("RSA operation failed: {0}")]
    Rsa(&'static str),
    /// Certificate creation failed.
    #[error("certificate creation failed: {0}")]
    Certificate(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Entropy,
    /// Shamir secret sharing rejected its input.
    #[error("shamir: {0}")]
    Shamir(&'static str),
}

/// Result alias of the crypto core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
