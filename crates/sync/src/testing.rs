//! What the unit tests of several providers and generators share.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{CredentialSource, KeyRef, ProviderError, SecretBytes};

/// A cluster without the Secrets, ConfigMaps and tokens a test never expects to be read: each
/// is refused by name. ServiceAccounts exist, without annotations.
pub(crate) struct NoCreds;

#[async_trait]
impl CredentialSource for NoCreds {
    async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError> {
        Err(ProviderError::Invalid(format!("no secret {}", r.name)))
    }

    async fn config_map_key(&self, r: &KeyRef) -> Result<String, ProviderError> {
        Err(ProviderError::Invalid(format!("no configmap {}", r.name)))
    }

    async fn service_account_token(
        &self,
        _namespace: Option<&str>,
        name: &str,
        _audiences: &[String],
        _expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError> {
        Err(ProviderError::Invalid(format!("no service account {name}")))
    }

    async fn service_account_annotations(
        &self,
        _namespace: Option<&str>,
        _name: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        Ok(BTreeMap::new())
    }
}
