//! The `Generator` seam: ESO's generators (`generators.external-secrets.io/v1alpha1`) that
//! ExternalSecrets (`dataFrom[].sourceRef.generatorRef`) and PushSecrets (`selector.generatorRef`)
//! reference, with one registration list ([`registry`]). A generator turns its spec into a map of
//! values, afresh on every call (ESO regenerates on every refresh). Adding one: a module and a
//! line in [`registry`].

pub mod fake;
pub mod password;
pub mod uuid;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::{CredentialSource, ProviderError, SecretBytes};

/// Makes values from a spec.
#[async_trait]
pub trait Generator: Send + Sync {
    /// The kind (`Password`), as in `generatorRef.kind` and `ClusterGenerator.spec.kind`.
    fn kind(&self) -> &'static str;
    /// The member of a ClusterGenerator's `spec.generator` holding this kind's spec
    /// (`passwordSpec`).
    fn cluster_spec_key(&self) -> &'static str;
    /// New values from `spec` (the generator object's `spec`), for a user in `namespace`.
    async fn generate(
        &self,
        spec: &Value,
        namespace: &str,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError>;
}

/// Every generator hush implements: the one registration list.
pub fn registry() -> Vec<Arc<dyn Generator>> {
    vec![
        Arc::new(password::Password),
        Arc::new(uuid::Uuid),
        Arc::new(fake::Fake),
    ]
}

/// The generator of `kind`, or an error naming the kinds hush implements.
pub fn select<'a>(
    generators: &'a [Arc<dyn Generator>],
    kind: &str,
) -> Result<&'a Arc<dyn Generator>, ProviderError> {
    generators.iter().find(|g| g.kind() == kind).ok_or_else(|| {
        let known: Vec<&str> = generators.iter().map(|g| g.kind()).collect();
        ProviderError::Invalid(format!(
            "generator kind {kind:?} is not supported by hush (supported: {})",
            known.join(", ")
        ))
    })
}

/// A uniformly random index below `n` from the OS CSPRNG (rejection sampling, no modulo bias).
pub(crate) fn random_below(n: usize) -> Result<usize, ProviderError> {
    use hush_crypto::Entropy as _;
    let n = u64::try_from(n).map_err(|_| ProviderError::Invalid("range too large".into()))?;
    if n == 0 {
        return Err(ProviderError::Invalid("empty character set".into()));
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let mut b = [0u8; 8];
        hush_crypto::SystemEntropy
            .fill(&mut b)
            .map_err(|_| ProviderError::Transient("the OS random source failed".into()))?;
        let v = u64::from_le_bytes(b);
        if v < zone {
            return usize::try_from(v % n)
                .map_err(|_| ProviderError::Invalid("range too large".into()));
        }
    }
}
