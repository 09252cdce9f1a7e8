//! ESO's `Fake` generator: returns `spec.data` as it is (for tests and examples).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use super::Generator;
use crate::{CredentialSource, ProviderError, SecretBytes, StoreScope, refuse_unknown_fields};

/// The `Fake` generator.
#[derive(Debug)]
pub struct Fake;

#[async_trait]
impl Generator for Fake {
    fn kind(&self) -> &'static str {
        "Fake"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "fakeSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        _scope: &StoreScope,
        _creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        // `controller` is the class, checked by the controller before it gets here.
        refuse_unknown_fields("spec", spec, &["data", "controller"])?;
        let Some(data) = spec.get("data").filter(|d| !d.is_null()) else {
            return Ok(BTreeMap::new());
        };
        let map = data
            .as_object()
            .ok_or_else(|| ProviderError::Invalid("spec.data must be a map of strings".into()))?;
        map.iter()
            .map(|(k, v)| {
                let v = v.as_str().ok_or_else(|| {
                    ProviderError::Invalid(format!("spec.data.{k} must be a string"))
                })?;
                Ok((k.clone(), SecretBytes::from(v)))
            })
            .collect()
    }
}
