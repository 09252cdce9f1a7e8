//! The one HashiCorp Vault / OpenBao client of hush, shared by the sops transit key service
//! (`hush-keys`, feature `hc-vault`) and the ExternalSecret Vault/OpenBao provider (`hush-sync`).
//!
//! - [`Client`]: address, `X-Vault-Namespace`, extra headers, custom CA and mTLS, JSON requests
//!   with Vault's error format; never logs or returns bodies in errors.
//! - [`Auth`]: token, AppRole, userpass (and LDAP, same shape), Kubernetes, JWT, TLS cert.
//! - [`Session`]: one login shared by all callers, renewed (`renew-self`) or repeated before
//!   the token expires; never revoked per use (ESO's churn, `docs/external-secrets.md`).
//! - KV: [`Client::kv_read`], [`Client::kv_metadata`], [`Client::list`], [`Client::kv_write`]
//!   (`hush sops publish`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Largest response body read from Vault.
const RESPONSE_LIMIT: usize = 4 << 20;

/// Errors of Vault calls. No variant holds a token or a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Bad configuration (address, CA bundle, client certificate).
    #[error("vault configuration: {0}")]
    Config(String),
    /// The request did not complete (connection refused, TLS, timeout).
    #[error("vault {operation}: request failed: {message}")]
    Transport {
        /// What was being done (`read secret/data/app`).
        operation: String,
        /// reqwest's error without the URL.
        message: String,
    },
    /// Vault answered with an error status.
    #[error("vault {operation}: HTTP {status}: {errors}")]
    Api {
        /// What was being done.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// Vault's `errors` (messages about the request).
        errors: String,
    },
    /// The answer was not what Vault sends.
    #[error("vault {operation}: {message}")]
    Decode {
        /// What was being done.
        operation: String,
        /// What was wrong.
        message: String,
    },
}

impl VaultError {
    /// The HTTP status of an [`VaultError::Api`] answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when retrying later may succeed (transport errors, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A Vault token. Zeroized on drop; `Debug` never prints it.
#[derive(Clone)]
pub struct VaultToken(Arc<SecretString>);

impl fmt::Debug for VaultToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultToken(<redacted>)")
    }
}

impl VaultToken {
    /// Wraps a token string (surrounding whitespace trimmed).
    pub fn new(token: impl Into<String>) -> Self {
        let token = Zeroizing::new(token.into());
        Self(Arc::new(SecretString::from(token.trim().to_owned())))
    }

    /// The token text, for the `X-Vault-Token` header.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when both are the same issued token (the same login), without comparing text.
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// TLS and header options of a [`Client`] (ESO's `caBundle`/`caProvider`, `tls`, `headers`,
/// `readYourWrites`, `forwardInconsistent`).
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// `X-Vault-Namespace` for every request (auth may override it).
    pub namespace: Option<String>,
    /// PEM CA certificates to trust in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key (mTLS, cert auth).
    pub client_identity_pem: Option<Zeroizing<Vec<u8>>>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// `X-Vault-Inconsistent: forward-active-node`.
    pub forward_inconsistent: bool,
    /// Request timeout (default 30 s).
    pub timeout: Option<Duration>,
    /// Told about every API call (metrics): see [`CallObserver`].
    pub observer: Option<CallObserver>,
}

/// Called after each Vault API call with External Secrets Operator's call name (`Login`,
/// `LookupSelf`, `RenewSelf`, `ReadSecretData`, `ListSecrets`) and whether it succeeded (a
/// missing secret is a success, as for ESO).
pub type CallObserver = Arc<dyn Fn(&'static str, bool) + Send + Sync>;

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("namespace", &self.namespace)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_identity", &self.client_identity_pem.is_some())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("forward_inconsistent", &self.forward_inconsistent)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// A Vault server: one connection pool, address, namespace and headers.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    address: String,
    options: Arc<ClientOptions>,
}

/// An HTTP method Vault uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// GET.
    Get,
    /// POST / PUT.
    Post,
    /// LIST (sent as `GET …?list=true`).
    List,
    /// DELETE.
    Delete,
}

impl Client {
    /// A client for `address` (`https://vault:8200`).
    pub fn new(address: &str, options: ClientOptions) -> Result<Self, VaultError> {
        let address = address.trim().trim_end_matches('/').to_owned();
        if !(address.starts_with("http://") || address.starts_with("https://"))
            || address.len() <= "https://".len()
        {
            return Err(VaultError::Config(format!(
                "vault address {address:?} must start with http:// or https://"
            )));
        }
        let mut builder =
            reqwest::Client::builder().timeout(options.timeout.unwrap_or(Duration::from_secs(30)));
        if let Some(ca) = &options.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(|_| {
                VaultError::Config("caBundle is not a PEM certificate bundle".into())
            })?;
            if certs.is_empty() {
                return Err(VaultError::Config("caBundle holds no certificate".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(identity) = &options.client_identity_pem {
            let identity = reqwest::Identity::from_pem(identity).map_err(|_| {
                VaultError::Config("client certificate or key is not valid PEM".into())
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| VaultError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            address,
            options: Arc::new(options),
        })
    }

    /// Uses `http` for requests (shared pool, custom settings); TLS options are then the
    /// caller's.
    #[must_use]
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The server address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The default namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.options.namespace.as_deref()
    }

    fn observe(&self, call: &'static str, ok: bool) {
        if let Some(observer) = &self.options.observer {
            observer(call, ok);
        }
    }

    /// Sends `method` to `/v1/<path>` and returns the JSON answer (`None` for an empty body,
    /// e.g. 204). `namespace` overrides the client's namespace (auth `namespace`).
    /// A non-2xx status is [`VaultError::Api`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&VaultToken>,
        body: Option<&Value>,
        namespace: Option<&str>,
    ) -> Result<Option<Value>, VaultError> {
        let path = path.trim_start_matches('/');
        let operation = match method {
            Method::Get => format!("read {path}"),
            Method::Post => format!("write {path}"),
            Method::Delete => format!("delete {path}"),
            Method::List => format!("list {path}"),
        };
        let url = match method {
            Method::List => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{}/v1/{path}{sep}list=true", self.address)
            }
            _ => format!("{}/v1/{path}", self.address),
        };
        let mut request = match method {
            Method::Get | Method::List => self.http.get(&url),
            Method::Post => self.http.post(&url),
            Method::Delete => self.http.delete(&url),
        };
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token.expose());
        }
        if let Some(ns) = namespace
            .or(self.options.namespace.as_deref())
            .filter(|n| !n.is_empty())
        {
            request = request.header("X-Vault-Namespace", ns);
        }
        request = request.header("X-Vault-Request", "true");
        if self.options.forward_inconsistent {
            request = request.header("X-Vault-Inconsistent", "forward-active-node");
        }
        for (k, v) in &self.options.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        if let Some(body) = body {
            let bytes =
                Zeroizing::new(serde_json::to_vec(body).map_err(|e| VaultError::Decode {
                    operation: operation.clone(),
                    message: format!("encoding request: {e}"),
                })?);
            request = request
                .header("Content-Type", "application/json")
                .body(bytes.to_vec());
        }
        let response = request.send().await.map_err(|e| VaultError::Transport {
            operation: operation.clone(),
            message: e.without_url().to_string(),
        })?;
        let status = response.status().as_u16();
        let bytes = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| VaultError::Transport {
                    operation: operation.clone(),
                    message: e.without_url().to_string(),
                })?
                .to_vec(),
        );
        if bytes.len() > RESPONSE_LIMIT {
            return Err(VaultError::Decode {
                operation,
                message: "response too large".into(),
            });
        }
        let parsed: Option<Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => Some(v),
                Err(_) if !(200..300).contains(&status) => None,
                Err(_) => {
                    return Err(VaultError::Decode {
                        operation,
                        message: format!("HTTP {status}, response is not JSON"),
                    });
                }
            }
        };
        if !(200..300).contains(&status) {
            // Vault's errors are messages about the request, never secret values.
            let errors = parsed
                .as_ref()
                .and_then(|p| p["errors"].as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Err(VaultError::Api {
                operation,
                status,
                errors,
            });
        }
        Ok(parsed)
    }

    /// Logs in with `auth` (no request for [`Auth::Token`]).
    pub async fn login(&self, auth: &Auth) -> Result<Login, VaultError> {
        let (path, body) = match &auth.method {
            AuthMethod::Token(token) => {
                return Ok(Login {
                    token: token.clone(),
                    lease: None,
                    renewable: false,
                    is_static: true,
                });
            }
            AuthMethod::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                format!("auth/{}/login", mount_or(mount, "approle")),
                json!({"role_id": role_id, "secret_id": secret_id.expose_secret()}),
            ),
            AuthMethod::UserPass {
                mount,
                username,
                password,
            } => (
                format!(
                    "auth/{}/login/{}",
                    mount_or(mount, "userpass"),
                    path_escape(username)
                ),
                json!({"password": password.expose_secret()}),
            ),
            AuthMethod::Kubernetes { mount, role, jwt } => (
                format!("auth/{}/login", mount_or(mount, "kubernetes")),
                json!({"role": role, "jwt": jwt.expose_secret()}),
            ),
            AuthMethod::Jwt { mount, role, jwt } => (
                format!("auth/{}/login", mount_or(mount, "jwt")),
                json!({"role": role, "jwt": jwt.expose_secret()}),
            ),
            AuthMethod::Cert { mount, name } => (
                format!("auth/{}/login", mount_or(mount, "cert")),
                match name {
                    Some(n) if !n.is_empty() => json!({"name": n}),
                    _ => json!({}),
                },
            ),
        };
        // The request bytes are zeroized in `request`; the JSON tree is dropped right after.
        let answer = self
            .request(
                Method::Post,
                &path,
                None,
                Some(&body),
                auth.namespace.as_deref(),
            )
            .await;
        self.observe("Login", answer.is_ok());
        parse_auth(answer?.as_ref(), &format!("login {path}"))
    }

    /// `auth/token/renew-self`: extends the token's lease.
    pub async fn renew_self(
        &self,
        token: &VaultToken,
        namespace: Option<&str>,
    ) -> Result<Login, VaultError> {
        let answer = self
            .request(
                Method::Post,
                "auth/token/renew-self",
                Some(token),
                Some(&json!({})),
                namespace,
            )
            .await;
        self.observe("RenewSelf", answer.is_ok());
        parse_auth(answer?.as_ref(), "renew-self")
    }

    /// `auth/token/lookup-self`: the token's `data` (ttl, type, expire_time, …).
    pub async fn lookup_self(
        &self,
        token: &VaultToken,
        namespace: Option<&str>,
    ) -> Result<Value, VaultError> {
        let answer = self
            .request(
                Method::Get,
                "auth/token/lookup-self",
                Some(token),
                None,
                namespace,
            )
            .await;
        self.observe("LookupSelf", answer.is_ok());
        Ok(answer?.map(|mut a| a["data"].take()).unwrap_or(Value::Null))
    }

    /// Reads a KV secret. v2: `GET <mount>/data/<key>[?version=N]`, returns `data.data`;
    /// v1: `GET <mount>/<key>`, returns `data`. `Ok(None)` when the secret does not exist or
    /// its version is deleted (404, `data: null`).
    pub async fn kv_read(
        &self,
        token: &VaultToken,
        path: &str,
        version: Option<&str>,
        kv: KvVersion,
    ) -> Result<Option<Value>, VaultError> {
        let mut path = path.to_owned();
        if kv == KvVersion::V2
            && let Some(v) = version.filter(|v| !v.is_empty())
        {
            path = format!("{path}?version={}", query_escape(v));
        }
        let answer = self
            .request(Method::Get, &path, Some(token), None, None)
            .await;
        self.observe("ReadSecretData", not_found_is_ok(&answer));
        match answer {
            Ok(Some(mut answer)) => {
                let data = match kv {
                    KvVersion::V2 => answer["data"]["data"].take(),
                    KvVersion::V1 => answer["data"].take(),
                };
                Ok((!data.is_null()).then_some(data))
            }
            Ok(None) => Ok(None),
            Err(VaultError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a KV secret at the API `path` (v2: `<mount>/data/<key>`, the body is
    /// `{"data": data}`; v1: `<mount>/<key>`, the body is `data`). The request body is
    /// zeroized after sending.
    pub async fn kv_write(
        &self,
        token: &VaultToken,
        path: &str,
        data: &Value,
        kv: KvVersion,
    ) -> Result<(), VaultError> {
        let wrapped;
        let body = match kv {
            KvVersion::V2 => {
                wrapped = json!({ "data": data });
                &wrapped
            }
            KvVersion::V1 => data,
        };
        let answer = self
            .request(Method::Post, path, Some(token), Some(body), None)
            .await;
        self.observe("WriteSecretData", answer.is_ok());
        answer.map(|_| ())
    }

    /// `GET <path>` of KV v2 metadata (`data`); `Ok(None)` on 404.
    pub async fn kv_metadata(
        &self,
        token: &VaultToken,
        path: &str,
    ) -> Result<Option<Value>, VaultError> {
        let answer = self
            .request(Method::Get, path, Some(token), None, None)
            .await;
        self.observe("ReadSecretData", not_found_is_ok(&answer));
        match answer {
            Ok(Some(mut answer)) => Ok(Some(answer["data"].take())),
            Ok(None) => Ok(None),
            Err(VaultError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `LIST <path>`: the `keys` (folders end in `/`); empty on 404.
    pub async fn list(&self, token: &VaultToken, path: &str) -> Result<Vec<String>, VaultError> {
        let answer = self
            .request(Method::List, path, Some(token), None, None)
            .await;
        self.observe("ListSecrets", not_found_is_ok(&answer));
        match answer {
            Ok(Some(answer)) => Ok(answer["data"]["keys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()),
            Ok(None) => Ok(Vec::new()),
            Err(VaultError::Api { status: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// KV engine version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvVersion {
    /// KV v1.
    V1,
    /// KV v2 (versioned; `data/` and `metadata/` paths).
    V2,
}

fn mount_or<'a>(mount: &'a Option<String>, default: &'a str) -> &'a str {
    mount
        .as_deref()
        .map(|m| m.trim_matches('/'))
        .filter(|m| !m.is_empty())
        .unwrap_or(default)
}

/// A 404 counts as a successful call (the secret does not exist), as ESO counts it.
fn not_found_is_ok<T>(r: &Result<T, VaultError>) -> bool {
    matches!(r, Ok(_) | Err(VaultError::Api { status: 404, .. }))
}

/// Percent-escapes one path segment.
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    path_escape(s)
}

fn parse_auth(answer: Option<&Value>, operation: &str) -> Result<Login, VaultError> {
    let auth = answer.map(|a| &a["auth"]).filter(|a| a.is_object());
    let Some(auth) = auth else {
        return Err(VaultError::Decode {
            operation: operation.to_owned(),
            message: "response has no auth block".into(),
        });
    };
    let Some(token) = auth["client_token"].as_str().filter(|t| !t.is_empty()) else {
        return Err(VaultError::Decode {
            operation: operation.to_owned(),
            message: "response has no client_token".into(),
        });
    };
    let lease = auth["lease_duration"].as_u64().unwrap_or(0);
    Ok(Login {
        token: VaultToken::new(token),
        lease: (lease > 0).then(|| Duration::from_secs(lease)),
        renewable: auth["renewable"].as_bool().unwrap_or(false),
        is_static: false,
    })
}

/// How to authenticate.
#[derive(Clone, Debug)]
pub struct Auth {
    /// The method and its credentials.
    pub method: AuthMethod,
    /// `X-Vault-Namespace` of the login (ESO's `auth.namespace`); `None` = the client's.
    pub namespace: Option<String>,
}

/// An auth method with its credentials (all secrets redacted in `Debug`).
#[derive(Clone)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A static token (never renewed or revoked).
    Token(VaultToken),
    /// AppRole (`auth/<mount=approle>/login`).
    AppRole {
        /// Mount path.
        mount: Option<String>,
        /// Role id.
        role_id: String,
        /// Secret id.
        secret_id: Arc<SecretString>,
    },
    /// userpass or LDAP (`auth/<mount>/login/<username>`).
    UserPass {
        /// Mount path (`userpass`, `ldap`).
        mount: Option<String>,
        /// User name.
        username: String,
        /// Password.
        password: Arc<SecretString>,
    },
    /// Kubernetes (`auth/<mount=kubernetes>/login` with a service account JWT).
    Kubernetes {
        /// Mount path.
        mount: Option<String>,
        /// Vault role.
        role: String,
        /// The service account token.
        jwt: Arc<SecretString>,
    },
    /// JWT/OIDC (`auth/<mount=jwt>/login`).
    Jwt {
        /// Mount path.
        mount: Option<String>,
        /// Vault role.
        role: String,
        /// The JWT.
        jwt: Arc<SecretString>,
    },
    /// TLS certificates (`auth/<mount=cert>/login` over mTLS; the client's identity).
    Cert {
        /// Mount path.
        mount: Option<String>,
        /// Certificate role name.
        name: Option<String>,
    },
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
            Self::UserPass {
                mount, username, ..
            } => f
                .debug_struct("UserPass")
                .field("mount", mount)
                .field("username", username)
                .finish_non_exhaustive(),
            Self::Kubernetes { mount, role, .. } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .finish_non_exhaustive(),
            Self::Jwt { mount, role, .. } => f
                .debug_struct("Jwt")
                .field("mount", mount)
                .field("role", role)
                .finish_non_exhaustive(),
            Self::Cert { mount, name } => f
                .debug_struct("Cert")
                .field("mount", mount)
                .field("name", name)
                .finish(),
        }
    }
}

/// The result of a login or renewal.
#[derive(Clone, Debug)]
pub struct Login {
    /// The client token.
    pub token: VaultToken,
    /// Lease duration; `None` = does not expire (root, static tokens).
    pub lease: Option<Duration>,
    /// Whether `renew-self` may extend it.
    pub renewable: bool,
    /// A token given by the user (never renewed, never revoked).
    pub is_static: bool,
}

/// Counters of a [`Session`]'s calls to Vault's auth endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Logins.
    pub logins: u64,
    /// `renew-self` calls.
    pub renewals: u64,
}

struct SessionState {
    login: Option<(Login, Instant)>,
    stats: SessionStats,
}

/// One authenticated identity on one server, shared by all callers: logs in once, renews the
/// token when two thirds of its lease have passed (or logs in again when it cannot be renewed),
/// and never revokes it per use.
pub struct Session {
    client: Client,
    auth: Auth,
    state: tokio::sync::Mutex<SessionState>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("address", &self.client.address)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that logs in on first use.
    pub fn new(client: Client, auth: Auth) -> Self {
        Self {
            client,
            auth,
            state: tokio::sync::Mutex::new(SessionState {
                login: None,
                stats: SessionStats::default(),
            }),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A valid token: the cached one, renewed or replaced when it is about to expire.
    pub async fn token(&self) -> Result<VaultToken, VaultError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some((login, at)) = &state.login {
            let Some(lease) = login.lease else {
                return Ok(login.token.clone());
            };
            let age = now.saturating_duration_since(*at);
            // ESO treats tokens with less than 60 s left as expired; renew at 2/3 of the lease.
            let renew_at = (lease * 2 / 3).min(lease.saturating_sub(Duration::from_secs(60)));
            if age < renew_at {
                return Ok(login.token.clone());
            }
            if login.renewable && age < lease {
                let token = login.token.clone();
                match self
                    .client
                    .renew_self(&token, self.auth.namespace.as_deref())
                    .await
                {
                    Ok(renewed) => {
                        state.stats.renewals += 1;
                        let token = renewed.token.clone();
                        state.login = Some((renewed, now));
                        return Ok(token);
                    }
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => {
                        tracing::debug!(error = %e, "vault token renewal refused; logging in again");
                    }
                }
            }
        }
        let login = self.client.login(&self.auth).await?;
        if !login.is_static {
            state.stats.logins += 1;
        }
        let token = login.token.clone();
        state.login = Some((login, now));
        Ok(token)
    }

    /// Forgets the token (after a 403), so the next [`Session::token`] logs in again.
    pub async fn invalidate(&self) {
        self.state.lock().await.login = None;
    }

    /// After a 403 answered to `token`: true when a retry with a fresh [`Session::token`] may
    /// help. Vault says 403 both for a dead token and for a path the policy denies, so the
    /// token is checked with `lookup-self` first: a live token keeps its session (a denied
    /// path must not cost a login — one-use AppRole secret ids would be spent). Concurrent
    /// callers queue on the session lock, so a dead token is replaced by one login.
    pub async fn token_rejected(&self, token: &VaultToken) -> bool {
        let mut state = self.state.lock().await;
        match &state.login {
            Some((login, _)) if login.token.same_as(token) => {
                if login.is_static {
                    // Logging in again would return the same token.
                    return false;
                }
            }
            // Already replaced (or forgotten) by another caller: retry with the current one.
            _ => return true,
        }
        match self
            .client
            .lookup_self(token, self.auth.namespace.as_deref())
            .await
        {
            Ok(_) => false,
            Err(e) if matches!(e.status(), Some(401 | 403)) => {
                tracing::debug!("vault token no longer accepted; logging in again");
                state.login = None;
                true
            }
            Err(_) => false,
        }
    }

    /// Logins and renewals so far.
    pub async fn stats(&self) -> SessionStats {
        self.state.lock().await.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_options_are_checked() {
        assert!(Client::new("vault:8200", ClientOptions::default()).is_err());
        assert!(Client::new("https://", ClientOptions::default()).is_err());
        let c = Client::new("http://127.0.0.1:8200/", ClientOptions::default()).unwrap();
        assert_eq!(c.address(), "http://127.0.0.1:8200");
        let bad_ca = ClientOptions {
            ca_pem: Some(b"not pem".to_vec()),
            ..ClientOptions::default()
        };
        assert!(Client::new("https://v:1", bad_ca).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let auth = Auth {
            method: AuthMethod::AppRole {
                mount: None,
                role_id: "rid".into(),
                secret_id: Arc::new(SecretString::from("canary-secret-id".to_owned())),
            },
            namespace: None,
        };
        let token = VaultToken::new(" canary-token\n");
        assert_eq!(token.expose(), "canary-token");
        let debug = format!("{auth:?} {token:?}");
        assert!(!debug.contains("canary"), "{debug}");
        let opts = ClientOptions {
            headers: vec![("X-Secret".into(), "canary-header".into())],
            ..ClientOptions::default()
        };
        assert!(!format!("{opts:?}").contains("canary"));
    }

    #[test]
    fn auth_answers_parse() {
        let answer =
            json!({"auth": {"client_token": "s.x", "lease_duration": 3600, "renewable": true}});
        let login = parse_auth(Some(&answer), "login").unwrap();
        assert_eq!(login.lease, Some(Duration::from_secs(3600)));
        assert!(login.renewable && !login.is_static);
        assert!(parse_auth(Some(&json!({"auth": null})), "login").is_err());
        assert!(parse_auth(None, "login").is_err());
        assert!(parse_auth(Some(&json!({"auth": {"client_token": ""}})), "login").is_err());
        assert_eq!(path_escape("a b/c"), "a%20b%2Fc");
    }

    #[tokio::test]
    async fn unreachable_server_is_transient_and_secret_free() {
        let c = Client::new("http://127.0.0.1:1", ClientOptions::default()).unwrap();
        let token = VaultToken::new("canary-token");
        let err = c
            .kv_read(&token, "secret/data/x", None, KvVersion::V2)
            .await
            .unwrap_err();
        assert!(err.is_transient());
        assert!(!err.to_string().contains("canary"), "{err}");
    }
}
