//! Microsoft Entra ID's client-credentials grant (`/{tenant}/oauth2/v2.0/token`) with a client
//! secret, a client certificate (an RS256 assertion with `x5t`) or a federated token (workload
//! identity: the file `AZURE_FEDERATED_TOKEN_FILE` names, read at every exchange because the
//! kubelet rotates it, or a ServiceAccount token requested afresh for every exchange), and the
//! token cache.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hush_crypto::Entropy as _;
use hush_crypto::jws::Rs256Signer;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha1::Digest as _;
use zeroize::Zeroizing;

use hush_cloud::{AccessToken, CallObserver, SubjectTokenSource, TokenCache, form_escape};

use crate::AzureError;

/// The audience of a federated token Entra ID exchanges (workload identity).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Largest federated token file read.
const TOKEN_FILE_LIMIT: u64 = 64 << 10;

/// How an application proves who it is.
#[derive(Clone)]
pub enum Secret {
    /// A client secret.
    ClientSecret(Arc<SecretString>),
    /// A certificate's private key and the certificate's SHA-1 thumbprint (base64url).
    Certificate {
        /// Signs the assertion.
        signer: Arc<Rs256Signer>,
        /// `x5t` of the assertion header.
        x5t: String,
    },
    /// A federated token in a file (workload identity).
    FederatedTokenFile(PathBuf),
    /// A federated token from a source asked at every exchange (workload identity through a
    /// Kubernetes TokenRequest, audience `api://AzureADTokenExchange`).
    FederatedToken(Arc<dyn SubjectTokenSource>),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret(_) => f.write_str("ClientSecret(<redacted>)"),
            Self::Certificate { x5t, .. } => write!(f, "Certificate(x5t {x5t})"),
            Self::FederatedTokenFile(p) => write!(f, "FederatedTokenFile({})", p.display()),
            Self::FederatedToken(source) => write!(f, "FederatedToken({source:?})"),
        }
    }
}

impl Secret {
    /// A client secret (whitespace trimmed).
    pub fn client_secret(secret: &str) -> Self {
        Self::ClientSecret(Arc::new(SecretString::from(secret.trim().to_owned())))
    }

    /// A client certificate from PEM holding the certificate and its private key (either order,
    /// as Azure's tools write them).
    pub fn certificate(pem_text: &[u8]) -> Result<Self, AzureError> {
        let blocks = pem::parse_many(pem_text)
            .map_err(|_| AzureError::Credentials("the client certificate is not PEM".into()))?;
        let cert = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| {
                AzureError::Credentials(
                    "the client certificate PEM has no CERTIFICATE block".into(),
                )
            })?;
        let signer = Rs256Signer::from_pem(pem_text).map_err(|_| {
            AzureError::Credentials(
                "the client certificate PEM has no RSA private key (PRIVATE KEY or RSA PRIVATE KEY)"
                    .into(),
            )
        })?;
        let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha1::Sha1::digest(cert.contents()));
        Ok(Self::Certificate {
            signer: Arc::new(signer),
            x5t,
        })
    }
}

/// An application of a tenant.
#[derive(Clone, Debug)]
pub struct Credential {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Its proof.
    pub secret: Secret,
}

impl Credential {
    /// The pod's own workload identity as the Azure workload identity webhook injects it:
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and `AZURE_FEDERATED_TOKEN_FILE`, all required (the
    /// error names the missing ones).
    pub fn workload_identity_from_env() -> Result<Self, AzureError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let names = [
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
        ];
        let [client_id, tenant_id, file] = names.map(var);
        match (client_id, tenant_id, file) {
            (Some(client_id), Some(tenant_id), Some(file)) => Ok(Self {
                tenant_id,
                client_id,
                secret: Secret::FederatedTokenFile(PathBuf::from(file)),
            }),
            (c, t, f) => {
                let missing: Vec<&str> = names
                    .iter()
                    .zip([c.is_none(), t.is_none(), f.is_none()])
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
                Err(AzureError::Credentials(format!(
                    "workload identity of this process: {} not set (AZURE_CLIENT_ID, \
                     AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE must be set, as the Azure \
                     workload identity webhook sets them)",
                    missing.join(", ")
                )))
            }
        }
    }
}

/// Which managed identity of the machine or pod (Azure's instance metadata service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedIdentity {
    /// The system-assigned identity.
    System,
    /// A user-assigned identity by its client id (IMDS `client_id`).
    ClientId(String),
    /// A user-assigned identity by its ARM resource id (IMDS `msi_res_id`).
    ResourceId(String),
}

/// Where a token source's tokens come from.
#[derive(Clone, Debug)]
enum Grant {
    /// Entra ID's client-credentials grant.
    Application(Credential),
    /// The instance metadata service at this URL.
    Managed {
        url: String,
        identity: ManagedIdentity,
    },
}

/// The instance metadata service's token URL: `HUSH_AZURE_IMDS_ENDPOINT` or Azure's
/// `http://169.254.169.254/metadata/identity/oauth2/token`.
pub fn imds_endpoint_from_env() -> String {
    std::env::var("HUSH_AZURE_IMDS_ENDPOINT")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| IMDS_TOKEN_URL.to_owned())
}

/// Azure's instance metadata service token endpoint.
pub const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// One credential's tokens for one scope: fetched once, shared, fetched again shortly before
/// they expire (a quarter of the lifetime, at most 5 minutes, early).
pub struct TokenSource {
    http: reqwest::Client,
    grant: Grant,
    token_url: String,
    scope: String,
    cache: TokenCache,
    observer: Option<CallObserver>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("grant", &self.grant)
            .field("token_url", &self.token_url)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Tokens of `credential` from `authority_host` (`https://login.microsoftonline.com`) for
    /// `scope` (`https://vault.azure.net/.default`).
    pub fn new(
        http: reqwest::Client,
        credential: Credential,
        authority_host: &str,
        scope: &str,
        observer: Option<CallObserver>,
    ) -> Result<Self, AzureError> {
        if !is_guid_or_domain(&credential.tenant_id) {
            return Err(AzureError::Config(format!(
                "tenant id {:?} is not a GUID or a domain name",
                credential.tenant_id
            )));
        }
        if credential.client_id.is_empty() {
            return Err(AzureError::Config("the client id is empty".into()));
        }
        let authority = authority_host.trim().trim_end_matches('/');
        if !authority.starts_with("https://") {
            return Err(AzureError::Config(format!(
                "authority host {authority:?} must start with https://"
            )));
        }
        Ok(Self {
            http,
            token_url: format!("{authority}/{}/oauth2/v2.0/token", credential.tenant_id),
            grant: Grant::Application(credential),
            scope: scope.to_owned(),
            cache: TokenCache::default(),
            observer,
        })
    }

    /// Tokens of the managed `identity` from the instance metadata service at `url`
    /// ([`imds_endpoint_from_env`]) for `scope` (its resource is the scope without `/.default`).
    pub fn managed_identity(
        http: reqwest::Client,
        url: &str,
        identity: ManagedIdentity,
        scope: &str,
        observer: Option<CallObserver>,
    ) -> Result<Self, AzureError> {
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains('?') {
            return Err(AzureError::Config(format!(
                "managed identity endpoint {url:?} must be an http(s) URL without a query"
            )));
        }
        Ok(Self {
            http,
            token_url: url.to_owned(),
            grant: Grant::Managed {
                url: url.to_owned(),
                identity,
            },
            scope: scope.to_owned(),
            cache: TokenCache::default(),
            observer,
        })
    }

    /// A valid access token: the cached one, or a new one from Entra ID or the metadata service.
    pub async fn token(&self) -> Result<AccessToken, AzureError> {
        let observer = self.observer.as_ref();
        match &self.grant {
            Grant::Application(c) => self.cache.get(observer, self.exchange(c)).await,
            Grant::Managed { url, identity } => {
                self.cache
                    .get(observer, self.imds_token(url, identity))
                    .await
            }
        }
    }

    /// IMDS' `GET …/oauth2/token?api-version=2018-02-01&resource=…` with `Metadata: true`.
    async fn imds_token(
        &self,
        url: &str,
        identity: &ManagedIdentity,
    ) -> Result<(AccessToken, Duration), AzureError> {
        let resource = self.scope.trim_end_matches("/.default");
        let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
        let which = match identity {
            ManagedIdentity::System => "the system-assigned identity".to_owned(),
            ManagedIdentity::ClientId(id) => {
                query.push(("client_id", id));
                format!("managed identity {id}")
            }
            ManagedIdentity::ResourceId(id) => {
                query.push(("msi_res_id", id));
                format!("managed identity {id}")
            }
        };
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", form_escape(v)))
            .collect();
        let request = self
            .http
            .get(format!("{url}?{}", query.join("&")))
            .header("Metadata", "true");
        hush_cloud::fetch_token(request)
            .await
            .map_err(|e| AzureError::call(format!("token for {which}"), e))
    }

    async fn exchange(&self, c: &Credential) -> Result<(AccessToken, Duration), AzureError> {
        let operation = format!(
            "token for application {} of tenant {}",
            c.client_id, c.tenant_id
        );
        let mut form = Zeroizing::new(format!(
            "grant_type=client_credentials&client_id={}&scope={}",
            form_escape(&c.client_id),
            form_escape(&self.scope)
        ));
        match &c.secret {
            Secret::ClientSecret(s) => {
                form.push_str("&client_secret=");
                form.push_str(&form_escape(s.expose_secret()));
            }
            Secret::Certificate { signer, x5t } => {
                let assertion = self.certificate_assertion(&c.client_id, signer, x5t)?;
                push_assertion(&mut form, &assertion);
            }
            Secret::FederatedTokenFile(path) => {
                let assertion = read_token_file(path)?;
                push_assertion(&mut form, &assertion);
            }
            Secret::FederatedToken(source) => {
                let assertion = source.subject_token().await.map_err(|why| {
                    AzureError::Credentials(format!("federated token for {operation}: {why}"))
                })?;
                push_assertion(&mut form, &assertion);
            }
        }
        let request = self
            .http
            .post(&self.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.as_bytes().to_vec());
        hush_cloud::fetch_token(request)
            .await
            .map_err(|e| AzureError::call(operation, e))
    }

    fn certificate_assertion(
        &self,
        client_id: &str,
        signer: &Rs256Signer,
        x5t: &str,
    ) -> Result<Zeroizing<String>, AzureError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut jti = [0u8; 16];
        hush_crypto::SystemEntropy
            .fill(&mut jti)
            .map_err(|e| AzureError::Credentials(e.to_string()))?;
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
        let claims = json!({
            "aud": self.token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": hex::encode(jti),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        signer
            .sign(header.to_string().as_bytes(), claims.to_string().as_bytes())
            .map(Zeroizing::new)
            .map_err(|e| AzureError::Credentials(format!("signing the client assertion: {e}")))
    }
}

fn push_assertion(form: &mut String, assertion: &str) {
    form.push_str("&client_assertion_type=");
    form.push_str(&form_escape(ASSERTION_TYPE));
    form.push_str("&client_assertion=");
    form.push_str(&form_escape(assertion));
}

fn read_token_file(path: &std::path::Path) -> Result<Zeroizing<String>, AzureError> {
    use std::io::Read as _;
    let err = |why: String| {
        AzureError::Credentials(format!("federated token file {}: {why}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = Zeroizing::new(String::new());
    file.take(TOKEN_FILE_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > TOKEN_FILE_LIMIT {
        return Err(err(format!("larger than {TOKEN_FILE_LIMIT} bytes")));
    }
    let trimmed = Zeroizing::new(text.trim().to_owned());
    if trimmed.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(trimmed)
}

/// A tenant is a GUID or a domain (`contoso.onmicrosoft.com`): it goes into the token URL path.
fn is_guid_or_domain(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 253
        && !tenant.starts_with('.')
        && !tenant.contains("..")
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_and_secrets_are_checked_and_redacted() {
        assert!(is_guid_or_domain("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(is_guid_or_domain("contoso.onmicrosoft.com"));
        for bad in ["", "../x", "a/b", "a?b", ".."] {
            assert!(!is_guid_or_domain(bad), "{bad}");
        }
        let s = Secret::client_secret("CANARY");
        assert_eq!(format!("{s:?}"), "ClientSecret(<redacted>)");
        assert!(Secret::certificate(b"CANARY").is_err());
        let err = read_token_file(std::path::Path::new("/nonexistent/token")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/token"));
    }
}
