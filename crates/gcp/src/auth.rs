//! Google credentials: service-account JSON keys, the OAuth2 JWT-bearer grant (RFC 7523, as
//! `oauth2.googleapis.com/token` takes it) and the token cache.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_crypto::jws::Rs256Signer;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use hush_cloud::{AccessToken, CallObserver, TokenCache, form_escape};

use crate::GcpError;

/// Google's token endpoint: the only place a service-account assertion goes unless the operator
/// names another ([`crate::Endpoints::token`]).
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
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
}

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
    /// Tokens of `credentials` from `token_uri` for `scope`.
    pub(crate) fn new(
        http: reqwest::Client,
        credentials: Credentials,
        token_uri: String,
        scope: &str,
        observer: Option<CallObserver>,
    ) -> Self {
        Self {
            http,
            credentials,
            token_uri,
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
        }
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
    }
}
