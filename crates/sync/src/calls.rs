//! Provider API calls for metrics, named as External Secrets Operator names them
//! (`externalsecret_provider_api_calls_count{provider, call, status}`): provider
//! `HashiCorp/Vault`, `AWS/SecretsManager`, `AWS/ParameterStore`; the call (`ReadSecretData`,
//! `GetSecretValue`, …); success or error. Whoever builds providers hands them a [`Calls`]
//! in [`crate::Settings`] (the external controller's metrics); without one calls are not
//! counted.

use std::fmt;
use std::sync::Arc;

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

/// Where the providers one registry builds count their API calls: cloned into every factory
/// and every client it builds. [`Default`] counts nothing.
#[derive(Clone, Default)]
pub struct Calls(Option<Observer>);

impl Calls {
    /// Counts every call into `observer`.
    pub fn new(observer: Observer) -> Self {
        Self(Some(observer))
    }

    /// Counts one call.
    pub(crate) fn record(&self, provider: &'static str, call: &str, ok: bool) {
        if let Some(observer) = &self.0 {
            observer(provider, call, ok);
        }
    }

    /// The observer a client library (`hush_vault`, `hush_gcp`, `hush_azure`) hears its calls
    /// with, labelled `provider`; `None` when nothing counts.
    #[cfg_attr(
        not(any(feature = "vault", feature = "gcp", feature = "azure")),
        expect(dead_code, reason = "no client library compiled in")
    )]
    pub(crate) fn labelled(
        &self,
        provider: &'static str,
    ) -> Option<Arc<dyn Fn(&'static str, bool) + Send + Sync>> {
        let observer = self.0.clone()?;
        Some(Arc::new(move |call, ok| observer(provider, call, ok)))
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.0.is_some() {
            "counted"
        } else {
            "not counted"
        };
        f.debug_tuple("Calls").field(&state).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    type Seen = Arc<Mutex<Vec<(&'static str, String, bool)>>>;

    fn recording() -> (Calls, Seen) {
        let seen = Seen::default();
        let log = seen.clone();
        let calls = Calls::new(Arc::new(move |provider, call, ok| {
            log.lock().unwrap().push((provider, call.to_owned(), ok));
        }));
        (calls, seen)
    }

    #[test]
    fn each_handle_counts_its_own_calls() {
        let (a, a_seen) = recording();
        let (b, b_seen) = recording();
        a.record(VAULT, "ReadSecretData", true);
        a.clone().record(VAULT, "ReadSecretData", false);
        let observe = a.labelled(GCP_SECRET_MANAGER).expect("a counts");
        observe("AccessSecretVersion", true);
        b.record(AWS_SECRETS_MANAGER, "GetSecretValue", true);
        Calls::default().record(VAULT, "ReadSecretData", true);
        assert!(Calls::default().labelled(VAULT).is_none());
        assert_eq!(
            *a_seen.lock().unwrap(),
            [
                (VAULT, "ReadSecretData".to_owned(), true),
                (VAULT, "ReadSecretData".to_owned(), false),
                (GCP_SECRET_MANAGER, "AccessSecretVersion".to_owned(), true),
            ]
        );
        assert_eq!(
            *b_seen.lock().unwrap(),
            [(AWS_SECRETS_MANAGER, "GetSecretValue".to_owned(), true)]
        );
    }
}
