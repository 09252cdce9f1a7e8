//! Provider API calls for metrics, named as External Secrets Operator names them
//! (`externalsecret_provider_api_calls_count{provider, call, status}`): provider
//! `HashiCorp/Vault`, `AWS/SecretsManager`, `AWS/ParameterStore`; the call (`ReadSecretData`,
//! `GetSecretValue`, …); success or error. The process's metrics endpoint installs one
//! observer; without it calls are not counted.

use std::sync::{Arc, OnceLock};

/// ESO's provider label for Vault / OpenBao.
pub const VAULT: &str = "HashiCorp/Vault";
/// ESO's provider label for AWS Secrets Manager.
pub const AWS_SECRETS_MANAGER: &str = "AWS/SecretsManager";
/// ESO's provider label for AWS Systems Manager Parameter Store.
pub const AWS_PARAMETER_STORE: &str = "AWS/ParameterStore";

/// ESO's provider label for Google Cloud Secret Manager.
pub const GCP_SECRET_MANAGER: &str = "GCP/SecretManager";
/// ESO's provider label for Azure Key Vault.
pub const AZURE_KEY_VAULT: &str = "Azure/KeyVault";

/// Receives `(provider, call, ok)` for every provider API call.
pub type Observer = Arc<dyn Fn(&'static str, &str, bool) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Installs the process's observer; `false` if one was installed already (the first stays).
pub fn observe_with(observer: Observer) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Counts one call.
#[cfg_attr(
    not(any(feature = "vault", feature = "aws", feature = "gcp", feature = "azure")),
    expect(dead_code, reason = "no provider compiled in")
)]
pub(crate) fn record(provider: &'static str, call: &str, ok: bool) {
    if let Some(observer) = OBSERVER.get() {
        observer(provider, call, ok);
    }
}

/// The observer for `hush_vault::ClientOptions`.
#[cfg(feature = "vault")]
pub(crate) fn vault_observer() -> hush_vault::CallObserver {
    Arc::new(|call, ok| record(VAULT, call, ok))
}
