//! Google credentials: service-account JSON keys, the OAuth2 JWT-bearer grant (RFC 7523, as
//! `oauth2.googleapis.com/token` takes it), the metadata server, workload identity (a
//! Kubernetes ServiceAccount token exchanged at Google's STS, RFC 8693, then for a Google
//! service account's token by IAM Credentials `generateAccessToken`) and the token cache.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_crypto::jws::Rs256Signer;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use hush_cloud::{AccessToken, CallObserver, SubjectTokenSource, TokenCache, form_escape};

use crate::{Endpoints, GcpError};

/// Google's token endpoint: the only place a service-account assertion goes unless the operator
/// names another ([`crate::Endpoints::token`]).
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Google's Security Token Service token exchange.
pub const GOOGLE_STS_URI: &str = "https://sts.googleapis.com/v1/token";
/// The scope hush asks for (what ESO and sops ask for).
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime asked for in the assertion (Google's maximum).
const ASSERTION_SECONDS: u64 = 3600;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A service-account JSON key (`gcloud iam service-accounts keys create`). The private key is
/// held only as a signer; `Debug` shows the account and key id.
#[derive(Clone)]
pub struct ServiceAccountKey {
    /// `client_email`.
    pub client_email: String,
    /// `project_id` (may be empty).
    pub project_id: String,
    /// `private_key_id`, the JWT `kid`.
    pub private_key_id: String,
    /// `token_uri` as written in the key.
    pub token_uri: String,
    signer: Arc<Rs256Signer>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    token_uri: String,
}

impl ServiceAccountKey {
    /// Reads a service-account JSON key. Errors name the missing or wrong field, never a value.
    pub fn from_json(json: &[u8]) -> Result<Self, GcpError> {
        let mut file: KeyFile = serde_json::from_slice(json).map_err(|e| {
            GcpError::Credentials(format!(
                "service-account key is not JSON with string fields (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let pem = Zeroizing::new(std::mem::take(&mut file.private_key));
        match file.kind.as_str() {
            "service_account" => {}
            "" => {
                return Err(GcpError::Credentials(
                    "service-account key has no \"type\"".into(),
                ));
            }
            other => {
                return Err(GcpError::Credentials(format!(
                    "credentials of type {other:?} are not supported (a \"service_account\" JSON key is)"
                )));
            }
        }
        if file.client_email.is_empty() {
            return Err(GcpError::Credentials(
                "service-account key has no \"client_email\"".into(),
            ));
        }
        if pem.is_empty() {
            return Err(GcpError::Credentials(
                "service-account key has no \"private_key\"".into(),
            ));
        }
        let signer = Rs256Signer::from_pem(pem.as_bytes()).map_err(|_| {
            GcpError::Credentials(format!(
                "\"private_key\" of service account {} is not an RSA private key in PEM",
                file.client_email
            ))
        })?;
        Ok(Self {
            client_email: file.client_email,
            project_id: file.project_id,
            private_key_id: file.private_key_id,
            token_uri: file.token_uri,
            signer: Arc::new(signer),
        })
    }

    /// The signed assertion of the JWT-bearer grant for `audience` (the token endpoint).
    fn assertion(&self, audience: &str, scope: &str) -> Result<Zeroizing<String>, GcpError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if !self.private_key_id.is_empty() {
            header["kid"] = json!(self.private_key_id);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
        });
        let text = self
            .signer
            .sign(header.to_string().as_bytes(), claims.to_string().as_bytes())
            .map_err(|e| GcpError::Credentials(format!("signing the token request: {e}")))?;
        Ok(Zeroizing::new(text))
    }
}

/// Where access tokens come from.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A service-account key, exchanged at the token endpoint.
    ServiceAccount(ServiceAccountKey),
    /// A token obtained elsewhere (used as is, never refreshed).
    AccessToken(AccessToken),
    /// The instance's service account, from the GKE/GCE metadata server at this URL
    /// (`http://metadata.google.internal`; [`Credentials::metadata_server_from_env`]).
    MetadataServer(String),
    /// A Kubernetes workload's identity (GKE workload identity).
    WorkloadIdentity(WorkloadIdentity),
}

/// GKE workload identity as ESO's `auth.workloadIdentity` uses it: a ServiceAccount token
/// (asked afresh at every exchange) traded at Google's STS for a federated token of
/// `audience`, then, with `service_account`, for that Google service account's access token.
#[derive(Clone, Debug)]
pub struct WorkloadIdentity {
    /// Where the Kubernetes ServiceAccount tokens come from.
    pub subject: Arc<dyn SubjectTokenSource>,
    /// The STS audience: `identitynamespace:PROJECT.svc.id.goog:https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`.
    pub audience: String,
    /// The Google service account to impersonate (`iam.gke.io/gcp-service-account`); `None`:
    /// the federated token is the access token.
    pub service_account: Option<String>,
}

/// A Google service account e-mail, which becomes part of a URL path: letters, digits, `@`,
/// `.`, `-`, `_`.
fn check_service_account(email: &str) -> Result<(), GcpError> {
    let ok = email.contains('@')
        && email.len() <= 254
        && email
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(GcpError::Config(format!(
            "{email:?} is not a Google service account e-mail"
        )))
    }
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The metadata server's host when `GCE_METADATA_HOST` does not name another.
pub const METADATA_HOST: &str = "metadata.google.internal";

impl Credentials {
    /// The metadata server of this instance: `GCE_METADATA_HOST` (Google's variable, `host[:port]`)
    /// or `metadata.google.internal`, over HTTP as Google's clients reach it.
    pub fn metadata_server_from_env() -> Self {
        Self::MetadataServer(metadata_server_url_from_env())
    }
}

/// The metadata server's URL: `http://` and `GCE_METADATA_HOST` or [`METADATA_HOST`].
pub fn metadata_server_url_from_env() -> String {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .map(|h| h.trim().trim_end_matches('/').to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| METADATA_HOST.to_owned());
    format!("http://{host}")
}

/// One credential's tokens: fetched once, shared by every caller, fetched again shortly before
/// they expire (a quarter of the lifetime, at most 5 minutes, early).
pub struct TokenSource {
    http: reqwest::Client,
    credentials: Credentials,
    token_uri: String,
    sts_uri: String,
    iam_credentials: String,
    scope: String,
    cache: TokenCache,
    observer: Option<CallObserver>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("credentials", &self.credentials)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Tokens of `credentials` from `endpoints` for `scope`.
    pub(crate) fn new(
        http: reqwest::Client,
        credentials: Credentials,
        endpoints: &Endpoints,
        scope: &str,
        observer: Option<CallObserver>,
    ) -> Self {
        Self {
            http,
            credentials,
            token_uri: endpoints.token.clone(),
            sts_uri: endpoints.sts.clone(),
            iam_credentials: endpoints.iam_credentials.clone(),
            scope: scope.to_owned(),
            cache: TokenCache::default(),
            observer,
        }
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self) -> Result<AccessToken, GcpError> {
        let observer = self.observer.as_ref();
        match &self.credentials {
            Credentials::AccessToken(t) => Ok(t.clone()),
            Credentials::ServiceAccount(key) => self.cache.get(observer, self.exchange(key)).await,
            Credentials::MetadataServer(url) => {
                self.cache.get(observer, self.metadata_token(url)).await
            }
            Credentials::WorkloadIdentity(wi) => {
                self.cache.get(observer, self.workload_token(wi)).await
            }
        }
    }

    /// A fresh ServiceAccount token exchanged at STS (RFC 8693, as Google's own clients send
    /// it), then, for a Google service account, `generateAccessToken` with the federated token.
    async fn workload_token(
        &self,
        wi: &WorkloadIdentity,
    ) -> Result<(AccessToken, Duration), GcpError> {
        let subject = wi.subject.subject_token().await.map_err(|why| {
            GcpError::Credentials(format!("workload identity of {:?}: {why}", wi.subject))
        })?;
        let body = Zeroizing::new(format!(
            "grant_type={}&audience={}&scope={}&requested_token_type={}&subject_token_type={}&subject_token={}",
            form_escape(TOKEN_EXCHANGE),
            form_escape(&wi.audience),
            form_escape(&self.scope),
            form_escape(ACCESS_TOKEN_TYPE),
            form_escape(JWT_TOKEN_TYPE),
            form_escape(&subject),
        ));
        let request = self
            .http
            .post(&self.sts_uri)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.as_bytes().to_vec());
        let (federated, lifetime) = hush_cloud::fetch_token(request)
            .await
            .map_err(|e| GcpError::call(format!("token exchange for {:?}", wi.subject), e))?;
        let Some(email) = &wi.service_account else {
            return Ok((federated, lifetime));
        };
        check_service_account(email)?;
        let operation = format!("generateAccessToken for {email}");
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            self.iam_credentials
        );
        let request = self
            .http
            .post(url)
            .bearer_auth(federated.expose())
            .header("Content-Type", "application/json")
            .body(json!({ "scope": [self.scope] }).to_string());
        let answer = hush_cloud::send_json(request, |v| {
            (
                v["error"]["status"].as_str(),
                v["error"]["message"].as_str(),
            )
        })
        .await
        .map_err(|e| GcpError::call(&operation, e))?;
        let token = answer["accessToken"]
            .as_str()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                GcpError::call(
                    &operation,
                    hush_cloud::CallError::decode("the answer has no accessToken"),
                )
            })?;
        // `expireTime` is RFC 3339; a lifetime that cannot be read is Google's default hour.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let seconds = answer["expireTime"]
            .as_str()
            .and_then(hush_gocompat::time::parse_rfc3339)
            .map(|t| t.unix() - now)
            .unwrap_or(3600)
            .clamp(1, 43_200);
        Ok((AccessToken::new(token), Duration::from_secs(seconds as u64)))
    }

    /// `GET /computeMetadata/v1/instance/service-accounts/default/token` with
    /// `Metadata-Flavor: Google`; the scopes are the instance's own.
    async fn metadata_token(&self, url: &str) -> Result<(AccessToken, Duration), GcpError> {
        let request = self
            .http
            .get(format!(
                "{url}/computeMetadata/v1/instance/service-accounts/default/token"
            ))
            .header("Metadata-Flavor", "Google");
        hush_cloud::fetch_token(request)
            .await
            .map_err(|e| GcpError::call("token from the metadata server", e))
    }

    async fn exchange(&self, key: &ServiceAccountKey) -> Result<(AccessToken, Duration), GcpError> {
        let operation = format!("token for {}", key.client_email);
        let assertion = key.assertion(&self.token_uri, &self.scope)?;
        let body = Zeroizing::new(format!(
            "grant_type={}&assertion={}",
            form_escape(JWT_BEARER),
            form_escape(&assertion)
        ));
        let request = self
            .http
            .post(&self.token_uri)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.as_bytes().to_vec());
        hush_cloud::fetch_token(request)
            .await
            .map_err(|e| GcpError::call(operation, e))
    }
}

/// A value of the metadata server (`GCE_METADATA_HOST` or `metadata.google.internal`): the text
/// at `computeMetadata/v1/{path}` (`project/project-id`,
/// `instance/attributes/cluster-name`), asked with `Metadata-Flavor: Google` within 5 s.
pub async fn metadata_text(path: &str) -> Result<String, GcpError> {
    let url = format!(
        "{}/computeMetadata/v1/{path}",
        metadata_server_url_from_env()
    );
    let operation = format!("metadata server {path}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| GcpError::Config(format!("cannot build HTTP client: {e}")))?;
    let response = http
        .get(&url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(|e| GcpError::call(&operation, hush_cloud::CallError::transport(e)))?;
    let status = response.status().as_u16();
    let body = hush_cloud::read_limited(response)
        .await
        .map_err(|e| GcpError::call(&operation, e))?;
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    if status != 200 || text.is_empty() {
        return Err(GcpError::call(
            operation,
            hush_cloud::CallError::Api {
                status,
                code: "METADATA".into(),
                message: hush_cloud::clip(&text),
            },
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_errors_name_fields_not_values() {
        let err = ServiceAccountKey::from_json(b"{").unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
        let err = ServiceAccountKey::from_json(br#"{"type":"external_account"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("external_account"), "{err}");
        let err = ServiceAccountKey::from_json(
            br#"{"type":"service_account","client_email":"a@b","private_key":"CANARY-not-a-key"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("private_key") && !err.contains("CANARY"),
            "{err}"
        );
        assert_eq!(
            format!("{:?}", AccessToken::new("CANARY")),
            "AccessToken(<redacted>)"
        );
        check_service_account("app@p.iam.gserviceaccount.com").unwrap();
        for bad in ["no-at", "a@b/../c", "a@b?x", "a@b:c"] {
            assert!(check_service_account(bad).is_err(), "{bad}");
        }
    }
}
