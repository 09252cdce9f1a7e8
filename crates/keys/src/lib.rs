//! The key-service seam of hush.
//!
//! A [`KeyService`] is one sops master key: it wraps key material (a data key or a Shamir share)
//! and unwraps what was wrapped for it. Sealed Secrets' RSA-OAEP does not go through it:
//! hush-sealing is synchronous and calls hush-crypto directly. "Not addressed to me" is
//! `Ok(None)`, never an error, so a caller can offer a wrapped key to every service it holds
//! (rage's "one joint"). Implementations live one module each behind a Cargo feature and are
//! listed once in the table of key kinds, [`kinds::KINDS`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use async_trait::async_trait;
pub use hush_crypto::SecretBytes;

#[cfg(feature = "age")]
pub mod age;
#[cfg(feature = "azure-kv")]
pub mod azure_kv;
#[cfg(feature = "gcp-kms")]
pub mod gcp_kms;
pub mod kinds;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "pgp")]
pub mod pgp;
pub mod registry;
mod sources;
#[cfg(feature = "hc-vault")]
pub mod vault_transit;

pub use kinds::{EntryFields, KINDS, KeyKind, KeySources};
pub use registry::KeyRegistry;

/// Key material wrapped by one master key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappedKey {
    /// The key service type ("age", "kms", "hc_vault", "pgp", …).
    pub type_id: String,
    /// Which master key wrapped it (fingerprint, recipient, ARN, URL); empty when unknown.
    pub key_id: String,
    /// The wrapped bytes in the service's own encoding.
    pub body: Vec<u8>,
}

impl WrappedKey {
    /// A wrapped key of `type_id` for `key_id`.
    pub fn new(type_id: impl Into<String>, key_id: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            type_id: type_id.into(),
            key_id: key_id.into(),
            body,
        }
    }

    /// Whether it is addressed to the master key `key_id` of `type_id`: the same type, and its
    /// key id (trimmed) is `key_id` or unknown (empty).
    pub fn is_for(&self, type_id: &str, key_id: &str) -> bool {
        self.type_id == type_id && (self.key_id.is_empty() || self.key_id.trim() == key_id)
    }

    /// The body decoded from standard base64 (the `enc` of AWS and Google KMS keys); `None`
    /// when it is not base64.
    #[cfg(any(feature = "kms", feature = "gcp-kms"))]
    pub fn body_from_base64(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let text = std::str::from_utf8(&self.body).ok()?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("type_id", &self.type_id)
            .field("key_id", &self.key_id)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One master key.
#[async_trait]
pub trait KeyService: Send + Sync + fmt::Debug {
    /// The service type; equals the sops metadata key where one exists ("age", "kms", …).
    fn type_id(&self) -> &str;

    /// Identifies this master key (fingerprint, recipient, ARN, URL).
    fn key_id(&self) -> String;

    /// Wraps `key` for this master key. `aad` binds it to a context (the OAEP label for RSA).
    async fn wrap(&self, key: &SecretBytes, aad: &[u8]) -> Result<WrappedKey, KeyError>;

    /// Unwraps `wrapped`. `Ok(None)` when it was not wrapped for this key.
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError>;
}

/// Errors of key services. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The crypto core refused the operation.
    #[error(transparent)]
    Crypto(#[from] hush_crypto::Error),
    /// This service can only unwrap (or only wrap).
    #[error("{type_id} key {key_id} cannot {operation}: {reason}")]
    Unsupported {
        /// Service type.
        type_id: String,
        /// Key id.
        key_id: String,
        /// "wrap" or "unwrap".
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// A remote key service (KMS, Vault, gpg) failed.
    #[error("{type_id} key {key_id}: {message}")]
    Service {
        /// Service type.
        type_id: String,
        /// Key id.
        key_id: String,
        /// What went wrong, without key material.
        message: String,
    },
    /// The configuration of a key (a sops metadata entry, a flag) is invalid.
    #[error("invalid {type_id} key configuration: {message}")]
    Config {
        /// Service type.
        type_id: String,
        /// What is wrong.
        message: String,
    },
}
