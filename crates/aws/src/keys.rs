//! Access keys: [`Credentials`] (key id, secret key, session token) and the [`Secret`] string
//! that holds their secret parts. A leaf: the credential chain (`credentials.rs`), STS and the
//! signer all use these types.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// A secret string: zeroized on drop, `Debug` redacted.
#[derive(Clone)]
pub struct Secret(Arc<SecretString>);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Arc::new(SecretString::from(s.into())))
    }

    /// The secret text (for a caller that must hand it on, e.g. a generated Secret).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// AWS credentials.
#[derive(Clone)]
pub struct Credentials {
    /// Access key id (not secret).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Static credentials.
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: Secret::new(secret_access_key),
            session_token: session_token.filter(|t| !t.is_empty()).map(Secret::new),
        }
    }
}
