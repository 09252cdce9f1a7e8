//! [`KubeCredentials`]: the credentials providers read from the API server (Secret and
//! ConfigMap keys, ServiceAccount tokens and annotations, the controller's own token).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hush_sync::{CredentialSource, KeyRef, ProviderError, SecretBytes, ServiceAccountTokens};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

/// Credentials from the API server (live GETs; ESO does not cache them either).
pub(crate) struct KubeCredentials {
    pub(crate) client: Client,
    /// The controller's own ServiceAccount token ([`crate::Config::controller_token_file`]).
    pub(crate) token_file: std::path::PathBuf,
}

#[async_trait]
impl CredentialSource for KubeCredentials {
    async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError> {
        let ns = r.namespace.as_deref().ok_or_else(|| {
            ProviderError::Invalid(format!("secret reference {:?} needs a namespace", r.name))
        })?;
        let secret = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(&r.name)
            .await
            .map_err(|e| ProviderError::Transient(format!("reading secret {ns}/{}: {e}", r.name)))?
            .ok_or_else(|| ProviderError::Invalid(format!("secret {ns}/{} not found", r.name)))?;
        let value = secret
            .data
            .and_then(|mut d| d.remove(&r.key))
            .ok_or_else(|| {
                ProviderError::Invalid(format!("secret {ns}/{} has no key {:?}", r.name, r.key))
            })?;
        Ok(SecretBytes::new(value.0))
    }

    async fn config_map_key(&self, r: &KeyRef) -> Result<String, ProviderError> {
        let ns = r.namespace.as_deref().ok_or_else(|| {
            ProviderError::Invalid(format!(
                "configmap reference {:?} needs a namespace",
                r.name
            ))
        })?;
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), ns)
            .get_opt(&r.name)
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("reading configmap {ns}/{}: {e}", r.name))
            })?
            .ok_or_else(|| {
                ProviderError::Invalid(format!("configmap {ns}/{} not found", r.name))
            })?;
        cm.data.and_then(|mut d| d.remove(&r.key)).ok_or_else(|| {
            ProviderError::Invalid(format!("configmap {ns}/{} has no key {:?}", r.name, r.key))
        })
    }

    async fn service_account_token(
        &self,
        namespace: Option<&str>,
        name: &str,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError> {
        self.service_account_tokens(namespace, name)?
            .token(audiences, expiration_seconds)
            .await
    }

    fn service_account_tokens(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<dyn ServiceAccountTokens>, ProviderError> {
        let namespace = namespace.ok_or_else(|| {
            ProviderError::Invalid(format!("service account {name:?} needs a namespace"))
        })?;
        Ok(Arc::new(KubeServiceAccountTokens {
            client: self.client.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }))
    }

    async fn controller_token(&self) -> Result<SecretBytes, ProviderError> {
        let path = &self.token_file;
        tokio::fs::read(path)
            .await
            .map(SecretBytes::new)
            .map_err(|e| {
                ProviderError::Invalid(format!(
                    "cannot read the controller's token {}: {e}",
                    path.display()
                ))
            })
    }

    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, SecretBytes>, BTreeMap<String, String>), ProviderError> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("reading secret {namespace}/{name}: {e}"))
            })?
            .ok_or_else(|| {
                ProviderError::Invalid(format!("secret {namespace}/{name} not found"))
            })?;
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(v.0)))
            .collect();
        Ok((data, secret.metadata.labels.unwrap_or_default()))
    }

    async fn local_api_server(&self) -> Option<String> {
        // The configuration this process was started with (in a cluster: the service
        // address, outside one: the kubeconfig's server); only its URL is used.
        kube::Config::infer()
            .await
            .ok()
            .map(|c| c.cluster_url.to_string())
    }

    async fn service_account_annotations(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let ns = namespace.ok_or_else(|| {
            ProviderError::Invalid(format!("service account {name:?} needs a namespace"))
        })?;
        let sa = Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("reading service account {ns}/{name}: {e}"))
            })?
            .ok_or_else(|| {
                ProviderError::Invalid(format!("service account {ns}/{name} not found"))
            })?;
        Ok(sa.metadata.annotations.unwrap_or_default())
    }
}

/// TokenRequests for one ServiceAccount, kept by clients that exchange a fresh token whenever
/// their cloud access token is renewed.
struct KubeServiceAccountTokens {
    client: Client,
    namespace: String,
    name: String,
}

impl std::fmt::Debug for KubeServiceAccountTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceAccount {}/{}", self.namespace, self.name)
    }
}

#[async_trait]
impl ServiceAccountTokens for KubeServiceAccountTokens {
    async fn token(
        &self,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError> {
        let (ns, name) = (&self.namespace, &self.name);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(audiences.to_vec()),
                expiration_seconds: Some(expiration_seconds),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| ProviderError::Denied(format!("TokenRequest for {ns}/{name}: {e}")))?;
        let token = answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Denied(format!("TokenRequest for {ns}/{name}: no token"))
            })?;
        Ok(SecretBytes::from(token.as_str()))
    }
}
