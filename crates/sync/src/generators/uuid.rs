//! ESO's `UUID` generator: `{"uuid": <a random version 4 UUID>}` (no settings).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use super::Generator;
use crate::{CredentialSource, ProviderError, SecretBytes, StoreScope, refuse_unknown_fields};

/// The `UUID` generator.
#[derive(Debug)]
pub struct Uuid;

/// A random (version 4, RFC 9562) UUID in lowercase hex.
pub fn v4() -> Result<String, ProviderError> {
    use hush_crypto::Entropy as _;
    let mut b = [0u8; 16];
    hush_crypto::SystemEntropy
        .fill(&mut b)
        .map_err(|_| ProviderError::Transient("the OS random source failed".into()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[async_trait]
impl Generator for Uuid {
    fn kind(&self) -> &'static str {
        "UUID"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "uuidSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        _scope: &StoreScope,
        _creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        refuse_unknown_fields("spec", spec, &[])?;
        Ok([("uuid".to_owned(), SecretBytes::from(v4()?.as_str()))].into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_4_shape() {
        let u = v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, v4().unwrap());
    }
}
