//! The one Google Cloud client of hush, shared by the sops `gcp_kms` key service (`hush-keys`)
//! and the ExternalSecret `gcpsm` provider (`hush-sync`).
//!
//! - [`auth`]: service-account JSON keys, the OAuth2 JWT-bearer token exchange, the metadata
//!   server, workload identity (STS token exchange, then IAM Credentials `generateAccessToken`),
//!   a token cache per credential (one exchange per lifetime, refreshed early).
//! - [`Client`]: Secret Manager (access a version, read a secret's metadata, list with a
//!   filter) and Cloud KMS (encrypt, decrypt) over REST v1, endpoints overridable
//!   ([`Endpoints::from_env`]) for test servers.
//!
//! Errors name resources and Google's status, never a token, key or payload.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub use auth::{
    CLOUD_PLATFORM_SCOPE, Credentials, GOOGLE_STS_URI, GOOGLE_TOKEN_URI, METADATA_HOST,
    ServiceAccountKey, TokenSource, WorkloadIdentity, metadata_server_url_from_env, metadata_text,
};
/// Called after each API call with its name (`AccessSecretVersion`, `GetSecret`,
/// `ListSecrets`, `Encrypt`, `Decrypt`, `GetToken`) and whether it succeeded.
pub use hush_cloud::CallObserver;
pub use hush_cloud::{AccessToken, CallError, CloudError};
pub use hush_cloud::{SubjectTokenFuture, SubjectTokenSource};

/// Most pages one listing reads (at 25,000 secrets a page).
const MAX_PAGES: usize = 100;

/// Errors of Google Cloud calls. No variant holds a token, a key or a payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcpError {
    /// Bad configuration (an endpoint, a resource name).
    #[error("google cloud configuration: {0}")]
    Config(String),
    /// The credentials could not be used (an unreadable key, a refused token endpoint).
    #[error("google cloud credentials: {0}")]
    Credentials(String),
    /// A call failed: not sent, an error status, or an answer Google does not send.
    #[error("google cloud {operation}: {error}")]
    Call {
        /// What was being done.
        operation: String,
        /// What went wrong (Google's `error.status` or the OAuth2 `error` as the code).
        error: CallError,
    },
}

// The same constructor and `CloudError` impl stand in hush-azure, deliberately: each client keeps
// its own error type, whose messages name its cloud; what they answer alike is `CloudError`'s
// default methods (hush-cloud).
impl GcpError {
    /// A failed call while doing `operation`.
    pub fn call(operation: impl Into<String>, error: CallError) -> Self {
        Self::Call {
            operation: operation.into(),
            error,
        }
    }
}

impl CloudError for GcpError {
    fn failed_call(&self) -> Option<&CallError> {
        match self {
            Self::Call { error, .. } => Some(error),
            _ => None,
        }
    }

    fn is_credentials(&self) -> bool {
        matches!(self, Self::Credentials(_))
    }
}

/// Where requests go. Defaults are Google's; tests and private endpoints override them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Secret Manager (`https://secretmanager.googleapis.com`).
    pub secret_manager: String,
    /// Cloud KMS (`https://cloudkms.googleapis.com`).
    pub kms: String,
    /// The token endpoint service-account assertions are sent to. A key whose `token_uri`
    /// names another endpoint is refused: an assertion goes only where the operator said.
    pub token: String,
    /// Google's Security Token Service token exchange (`https://sts.googleapis.com/v1/token`),
    /// where workload identity's subject tokens go.
    pub sts: String,
    /// IAM Service Account Credentials (`https://iamcredentials.googleapis.com`), where a
    /// federated token becomes a Google service account's access token.
    pub iam_credentials: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            secret_manager: "https://secretmanager.googleapis.com".into(),
            kms: "https://cloudkms.googleapis.com".into(),
            token: GOOGLE_TOKEN_URI.into(),
            sts: GOOGLE_STS_URI.into(),
            iam_credentials: "https://iamcredentials.googleapis.com".into(),
        }
    }
}

impl Endpoints {
    /// Google's endpoints, each replaced by the operator's environment:
    /// `HUSH_GCP_SECRET_MANAGER_ENDPOINT`, `HUSH_GCP_KMS_ENDPOINT`, `HUSH_GCP_TOKEN_ENDPOINT`,
    /// `HUSH_GCP_STS_ENDPOINT`, `HUSH_GCP_IAM_CREDENTIALS_ENDPOINT`.
    pub fn from_env() -> Self {
        let var = |name: &str, default: String| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
        };
        let d = Self::default();
        Self {
            secret_manager: var("HUSH_GCP_SECRET_MANAGER_ENDPOINT", d.secret_manager),
            kms: var("HUSH_GCP_KMS_ENDPOINT", d.kms),
            token: var("HUSH_GCP_TOKEN_ENDPOINT", d.token),
            sts: var("HUSH_GCP_STS_ENDPOINT", d.sts),
            iam_credentials: var("HUSH_GCP_IAM_CREDENTIALS_ENDPOINT", d.iam_credentials),
        }
    }
}

/// A secret's metadata (`secrets.get`, `secrets.list`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretMetadata {
    /// The secret id (last segment of `name`).
    pub id: String,
    /// `labels`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `annotations`.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// One Google Cloud identity: an HTTP connection pool and a token source.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: Arc<TokenSource>,
    observer: Option<CallObserver>,
    /// Secret Manager location of regional secrets (`None`: global secrets).
    location: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `credentials` against `endpoints`; `observer` hears every call.
    pub fn new(
        credentials: Credentials,
        endpoints: Endpoints,
        observer: Option<CallObserver>,
    ) -> Result<Self, GcpError> {
        for url in [
            &endpoints.secret_manager,
            &endpoints.kms,
            &endpoints.token,
            &endpoints.sts,
            &endpoints.iam_credentials,
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(GcpError::Config(format!(
                    "endpoint {url:?} must start with https:// or http://"
                )));
            }
        }
        if let Credentials::ServiceAccount(key) = &credentials
            && !key.token_uri.is_empty()
            && key.token_uri != endpoints.token
            && key.token_uri != GOOGLE_TOKEN_URI
        {
            return Err(GcpError::Credentials(format!(
                "the \"token_uri\" of service account {} is {:?}; hush sends assertions only to {} \
                 (HUSH_GCP_TOKEN_ENDPOINT sets another)",
                key.client_email, key.token_uri, endpoints.token
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| GcpError::Config(format!("cannot build HTTP client: {e}")))?;
        let tokens = Arc::new(TokenSource::new(
            http.clone(),
            credentials,
            &endpoints,
            CLOUD_PLATFORM_SCOPE,
            observer.clone(),
        ));
        Ok(Self {
            http,
            endpoints,
            tokens,
            observer,
            location: None,
        })
    }

    /// This client for Secret Manager's regional secrets of `location` (`us-central1`):
    /// `projects/P/locations/L/secrets/…` on the regional endpoint
    /// `https://secretmanager.L.rep.googleapis.com`, or on the operator's
    /// `HUSH_GCP_SECRET_MANAGER_ENDPOINT` when it names one.
    pub fn with_location(mut self, location: &str) -> Result<Self, GcpError> {
        // It becomes part of a host name: Google's location alphabet only.
        let ok = !location.is_empty()
            && location.len() <= 63
            && location
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(GcpError::Config(format!(
                "location {location:?} is not a Google Cloud location (lowercase letters, digits, -)"
            )));
        }
        if self.endpoints.secret_manager == Endpoints::default().secret_manager {
            self.endpoints.secret_manager =
                format!("https://secretmanager.{location}.rep.googleapis.com");
        }
        self.location = Some(location.to_owned());
        Ok(self)
    }

    /// `projects/P` or, for regional secrets, `projects/P/locations/L`.
    fn secrets_parent(&self, project: &str) -> String {
        match &self.location {
            Some(l) => format!("projects/{project}/locations/{l}"),
            None => format!("projects/{project}"),
        }
    }

    /// The token source (shared by clones of this client).
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// The payload of `projects/{project}/secrets/{secret}/versions/{version}` (`latest` or a
    /// number; empty = `latest`).
    pub async fn access_secret_version(
        &self,
        project: &str,
        secret: &str,
        version: &str,
    ) -> Result<Zeroizing<Vec<u8>>, GcpError> {
        let version = if version.is_empty() {
            "latest"
        } else {
            version
        };
        check_segment("project", project)?;
        check_segment("secret", secret)?;
        check_segment("version", version)?;
        let parent = self.secrets_parent(project);
        let path = format!("{parent}/secrets/{secret}/versions/{version}");
        let url = format!("{}/v1/{path}:access", self.endpoints.secret_manager);
        let answer = self
            .call(
                "AccessSecretVersion",
                &format!("access {path}"),
                reqwest::Method::GET,
                &url,
                None,
            )
            .await?;
        let data = answer["payload"]["data"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| {
                GcpError::call(
                    format!("access {path}"),
                    CallError::decode("payload.data is not base64"),
                )
            })?;
        Ok(Zeroizing::new(bytes))
    }

    /// A secret's labels and annotations.
    pub async fn get_secret(
        &self,
        project: &str,
        secret: &str,
    ) -> Result<SecretMetadata, GcpError> {
        check_segment("project", project)?;
        check_segment("secret", secret)?;
        let parent = self.secrets_parent(project);
        let path = format!("{parent}/secrets/{secret}");
        let url = format!("{}/v1/{path}", self.endpoints.secret_manager);
        let answer = self
            .call(
                "GetSecret",
                &format!("get {path}"),
                reqwest::Method::GET,
                &url,
                None,
            )
            .await?;
        Ok(metadata(&answer))
    }

    /// Every secret of `project` matching `filter` (Secret Manager's filter syntax; empty = all),
    /// following pages (at most 100).
    pub async fn list_secrets(
        &self,
        project: &str,
        filter: &str,
    ) -> Result<Vec<SecretMetadata>, GcpError> {
        check_segment("project", project)?;
        let mut out = Vec::new();
        let mut page_token = String::new();
        for _ in 0..MAX_PAGES {
            let mut url = format!(
                "{}/v1/{}/secrets?pageSize=25000",
                self.endpoints.secret_manager,
                self.secrets_parent(project)
            );
            if !filter.is_empty() {
                url.push_str(&format!("&filter={}", hush_cloud::form_escape(filter)));
            }
            if !page_token.is_empty() {
                url.push_str(&format!(
                    "&pageToken={}",
                    hush_cloud::form_escape(&page_token)
                ));
            }
            let answer = self
                .call(
                    "ListSecrets",
                    &format!("list secrets of {project}"),
                    reqwest::Method::GET,
                    &url,
                    None,
                )
                .await?;
            out.extend(
                answer["secrets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(metadata),
            );
            page_token = answer["nextPageToken"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if page_token.is_empty() {
                return Ok(out);
            }
        }
        Err(GcpError::call(
            format!("list secrets of {project}"),
            CallError::decode(format!("more than {MAX_PAGES} pages")),
        ))
    }

    /// Cloud KMS `encrypt` with `resource_id` (`projects/…/cryptoKeys/…`): the ciphertext.
    pub async fn kms_encrypt(
        &self,
        resource_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, GcpError> {
        check_crypto_key(resource_id)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let encoded = Zeroizing::new(b64.encode(plaintext));
        let body =
            Zeroizing::new(format!("{{\"plaintext\":\"{}\"}}", encoded.as_str()).into_bytes());
        let url = format!("{}/v1/{resource_id}:encrypt", self.endpoints.kms);
        let operation = format!("encrypt with {resource_id}");
        let answer = self
            .call(
                "Encrypt",
                &operation,
                reqwest::Method::POST,
                &url,
                Some(body),
            )
            .await?;
        b64.decode(answer["ciphertext"].as_str().unwrap_or_default())
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                GcpError::call(
                    operation,
                    CallError::decode("no base64 ciphertext in the answer"),
                )
            })
    }

    /// Cloud KMS `decrypt` with `resource_id`: the plaintext.
    pub async fn kms_decrypt(
        &self,
        resource_id: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, GcpError> {
        check_crypto_key(resource_id)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = Zeroizing::new(
            json!({ "ciphertext": b64.encode(ciphertext) })
                .to_string()
                .into_bytes(),
        );
        let url = format!("{}/v1/{resource_id}:decrypt", self.endpoints.kms);
        let operation = format!("decrypt with {resource_id}");
        // serde_json values cannot be zeroized; the decoded key is.
        let answer = self
            .call(
                "Decrypt",
                &operation,
                reqwest::Method::POST,
                &url,
                Some(body),
            )
            .await?;
        let text = answer["plaintext"].as_str().unwrap_or_default();
        b64.decode(text)
            .map(Zeroizing::new)
            .map_err(|_| GcpError::call(operation, CallError::decode("plaintext is not base64")))
    }

    async fn call(
        &self,
        name: &'static str,
        operation: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Value, GcpError> {
        let token = self.tokens.token().await?;
        let mut request = self.http.request(method, url).bearer_auth(token.expose());
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_vec());
        }
        let answer = hush_cloud::send_json(request, |v| {
            (
                v["error"]["status"].as_str(),
                v["error"]["message"].as_str(),
            )
        })
        .await
        .map_err(|e| GcpError::call(operation, e));
        if let Some(observer) = &self.observer {
            // A missing secret is a successful call (as ESO counts it).
            observer(
                name,
                answer
                    .as_ref()
                    .map_or_else(GcpError::is_not_found, |_| true),
            );
        }
        answer
    }
}

fn metadata(v: &Value) -> SecretMetadata {
    let map = |m: &Value| {
        m.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    SecretMetadata {
        id: v["name"]
            .as_str()
            .and_then(|n| n.rsplit('/').next())
            .unwrap_or_default()
            .to_owned(),
        labels: map(&v["labels"]),
        annotations: map(&v["annotations"]),
    }
}

/// A resource-name segment hush puts into a URL path: Google's id characters only, so a
/// tenant's key can never change the path (`..`, `/`, `?`, `%`).
fn check_segment(what: &str, segment: &str) -> Result<(), GcpError> {
    let ok = !segment.is_empty()
        && segment.len() <= 255
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(GcpError::Config(format!(
            "{what} {segment:?} is not a valid Google Cloud resource id (letters, digits, - _ . :)"
        )))
    }
}

/// `projects/P/locations/L/keyRings/R/cryptoKeys/K`, each id checked.
fn check_crypto_key(resource_id: &str) -> Result<(), GcpError> {
    let parts: Vec<&str> = resource_id.split('/').collect();
    let shape = [
        "projects",
        "",
        "locations",
        "",
        "keyRings",
        "",
        "cryptoKeys",
        "",
    ];
    let ok = parts.len() == shape.len()
        && parts.iter().zip(shape).all(|(p, s)| {
            if s.is_empty() {
                check_segment("id", p).is_ok()
            } else {
                *p == s
            }
        });
    if ok {
        Ok(())
    } else {
        Err(GcpError::Config(format!(
            "{resource_id:?} is not a Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_are_checked() {
        check_segment("secret", "db-password_1").unwrap();
        check_segment("project", "example.com:proj").unwrap();
        for bad in ["", "..", "a/b", "a?b", "a%2F", "a b"] {
            assert!(check_segment("secret", bad).is_err(), "{bad}");
        }
        check_crypto_key("projects/p/locations/global/keyRings/r/cryptoKeys/k").unwrap();
        for bad in [
            "projects/p/locations/global/keyRings/r",
            "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
            "projects/../locations/global/keyRings/r/cryptoKeys/k",
        ] {
            assert!(check_crypto_key(bad).is_err(), "{bad}");
        }
    }
}
