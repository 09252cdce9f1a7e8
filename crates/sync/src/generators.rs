//! The `Generator` seam: ESO's generators (`generators.external-secrets.io/v1alpha1`) that
//! ExternalSecrets (`dataFrom[].sourceRef.generatorRef`) and PushSecrets (`selector.generatorRef`)
//! reference, with one registration list ([`registry`]). A generator turns its spec into a map of
//! values, afresh on every call (ESO regenerates on every refresh). Adding one: a module and a
//! line in [`registry_with`].
//!
//! Generator state and cleanup: ESO (v0.16) keeps a `GeneratorState` only for generators whose
//! `Cleanup` undoes something remote (Grafana service-account tokens). Every kind here answers
//! `Cleanup` with nothing in ESO (Vault leases expire on their own, STS and ECR tokens too), so
//! there is no state to keep.

#[cfg(feature = "aws")]
pub mod aws_token;
pub mod fake;
pub mod password;
pub mod uuid;
#[cfg(feature = "vault")]
pub mod vault_dynamic;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::{CredentialSource, ProviderError, SecretBytes, Settings, StoreScope};

/// Makes values from a spec.
#[async_trait]
pub trait Generator: Send + Sync {
    /// The kind (`Password`), as in `generatorRef.kind` and `ClusterGenerator.spec.kind`.
    fn kind(&self) -> &'static str;
    /// The member of a ClusterGenerator's `spec.generator` holding this kind's spec
    /// (`passwordSpec`).
    fn cluster_spec_key(&self) -> &'static str;
    /// New values from `spec` (the generator object's `spec`). Credentials the spec names
    /// resolve in `scope`: a `SecretStore`-like scope of the referring object's namespace (ESO
    /// resolves a generator's references there), which may use the controller's own identity
    /// only for a ClusterGenerator.
    async fn generate(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError>;
}

/// Every generator hush implements, with default [`Settings`].
pub fn registry() -> Vec<Arc<dyn Generator>> {
    registry_with(&Settings::default())
}

/// Every generator hush implements: the one registration list.
#[allow(unused_mut, clippy::vec_init_then_push)]
pub fn registry_with(settings: &Settings) -> Vec<Arc<dyn Generator>> {
    let mut r: Vec<Arc<dyn Generator>> = vec![
        Arc::new(password::Password),
        Arc::new(uuid::Uuid),
        Arc::new(fake::Fake),
        Arc::new(webhook::Webhook {
            limits: settings.webhook,
            calls: settings.calls.clone(),
        }),
    ];
    #[cfg(feature = "vault")]
    r.push(Arc::new(vault_dynamic::VaultDynamicSecret::new(
        settings.calls.clone(),
    )));
    #[cfg(feature = "aws")]
    r.push(Arc::new(aws_token::StsSessionToken));
    #[cfg(feature = "aws")]
    r.push(Arc::new(aws_token::EcrAuthorizationToken));
    r
}

/// Renames a provider's field paths in `e` (`spec.provider.webhook.url`) to the generator's
/// (`spec.url`), so errors name the field the user wrote.
pub(crate) fn relabel(e: ProviderError, from: &str, to: &str) -> ProviderError {
    let fix = |m: String| m.replace(from, to);
    match e {
        ProviderError::Invalid(m) => ProviderError::Invalid(fix(m)),
        ProviderError::Transient(m) => ProviderError::Transient(fix(m)),
        ProviderError::Denied(m) => ProviderError::Denied(fix(m)),
        ProviderError::NotFound(m) => ProviderError::NotFound(fix(m)),
        ProviderError::Throttled(m) => ProviderError::Throttled(fix(m)),
    }
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
