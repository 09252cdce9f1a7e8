//! Local RSA-OAEP master keys, as Sealed Secrets uses them: the wrapped body is the RSA
//! ciphertext of the key material and `aad` is the OAEP label (the scope).

use async_trait::async_trait;
use hush_crypto::rsa::{RsaPrivateKey, RsaPublicKey};

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// Type id of local RSA-OAEP keys.
pub const TYPE_ID: &str = "rsa-oaep";

/// A local RSA key: a private key (wrap and unwrap) or a certificate's public key (wrap only).
#[derive(Debug, Clone)]
pub struct RsaKeyService {
    public: RsaPublicKey,
    private: Option<RsaPrivateKey>,
}

impl RsaKeyService {
    /// A service that can wrap and unwrap.
    pub fn from_private(key: RsaPrivateKey) -> Self {
        Self {
            public: key.public_key().clone(),
            private: Some(key),
        }
    }

    /// A service that can only wrap (from a certificate).
    pub fn from_public(public: RsaPublicKey) -> Self {
        Self {
            public,
            private: None,
        }
    }

    /// The private key, when held.
    pub fn private_key(&self) -> Option<&RsaPrivateKey> {
        self.private.as_ref()
    }
}

#[async_trait]
impl KeyService for RsaKeyService {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        self.public.fingerprint().to_owned()
    }

    async fn wrap(&self, key: &SecretBytes, aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let body = self.public.encrypt_oaep(key.expose(), aad)?;
        Ok(WrappedKey::new(TYPE_ID, self.key_id(), body))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != TYPE_ID
            || (!wrapped.key_id.is_empty() && wrapped.key_id != self.public.fingerprint())
        {
            return Ok(None);
        }
        let Some(private) = &self.private else {
            return Err(KeyError::Unsupported {
                type_id: TYPE_ID.into(),
                key_id: self.key_id(),
                operation: "unwrap",
                reason: "only the public key (certificate) is available".into(),
            });
        };
        if wrapped.body.len() != private.size_bytes() {
            return Ok(None);
        }
        // Sealed Secrets carries no key id, so a failed OAEP decryption means "not mine".
        match private.decrypt_oaep(&wrapped.body, aad) {
            Ok(key) => Ok(Some(key)),
            Err(hush_crypto::Error::DecryptionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyRegistry;
    use std::sync::Arc;

    #[tokio::test]
    async fn registry_finds_the_key_that_wrapped() {
        let a = RsaKeyService::from_private(RsaPrivateKey::generate(2048).unwrap());
        let b = RsaKeyService::from_private(RsaPrivateKey::generate(2048).unwrap());
        let mut reg = KeyRegistry::new();
        reg.register(Arc::new(a.clone()));
        reg.register(Arc::new(b.clone()));
        let secret = SecretBytes::from_slice(&[5u8; 32]);
        let mut wrapped = b.wrap(&secret, b"ns/name").await.unwrap();
        wrapped.key_id.clear(); // as in Sealed Secrets: no key id on the wire
        let got = reg
            .unwrap(&wrapped, b"ns/name", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.index, 1);
        assert_eq!(got.key.expose(), secret.expose());
        // Wrong label: nobody is addressed.
        assert!(
            reg.unwrap(&wrapped, b"ns/other", Some(1))
                .await
                .unwrap()
                .is_none()
        );
        // Public-only service refuses to unwrap with a clear error.
        let public_only = RsaKeyService::from_public(b.public.clone());
        let err = public_only.unwrap(&wrapped, b"ns/name").await.unwrap_err();
        assert!(err.to_string().contains("only the public key"), "{err}");
    }
}
