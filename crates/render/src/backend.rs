//! Where placeholder values come from. A render asks a [`Backend`] once per distinct
//! [`SecretRef`]; the Vault/OpenBao backend uses the one hush Vault client (hush-vault) with a
//! shared [`hush_vault::Session`] (one login, token cached for the render).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use hush_vault::{Auth, AuthMethod, Client, ClientOptions, KvVersion, Session, VaultToken};
use secrecy::SecretString;
use serde_json::{Map, Value as Json};

/// A whole secret: its keys and values.
pub type SecretData = Map<String, Json>;

/// One read: a path at a version, with the object's `kv-version` override.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    /// The backend path (for Vault: the API path, `secret/data/app` for KV v2).
    pub path: String,
    /// `#version` or `avp.kubernetes.io/secret-version`.
    pub version: Option<String>,
    /// `avp.kubernetes.io/kv-version` (`1`/`2`); `None` = the backend default.
    pub kv_version: Option<u8>,
}

/// A source of secrets.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// Reads a whole secret; `Ok(None)` when it does not exist. Errors never contain values.
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, String>;
    /// Reads made so far (for figures and tests).
    fn reads(&self) -> u64;
}

/// Vault/OpenBao KV v1/v2 (`AVP_TYPE=vault`).
pub struct VaultBackend {
    session: Session,
    default_kv: KvVersion,
    reads: AtomicU64,
}

impl fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultBackend")
            .field("session", &self.session)
            .field("default_kv", &self.default_kv)
            .finish_non_exhaustive()
    }
}

/// How to log in to Vault (AVP's `AVP_AUTH_TYPE`).
#[derive(Clone)]
#[non_exhaustive]
pub enum VaultAuth {
    /// `token`: `VAULT_TOKEN`.
    Token(SecretString),
    /// `approle`: `AVP_ROLE_ID`, `AVP_SECRET_ID`, mount `AVP_MOUNT_PATH` (default `approle`).
    AppRole {
        /// Role id.
        role_id: String,
        /// Secret id.
        secret_id: SecretString,
        /// Mount.
        mount: Option<String>,
    },
    /// `k8s`: `AVP_K8S_ROLE`, the service account token at `AVP_K8S_TOKEN_PATH`, mount
    /// `AVP_K8S_MOUNT_PATH` (default `kubernetes`).
    Kubernetes {
        /// Vault role.
        role: String,
        /// The service account JWT.
        jwt: SecretString,
        /// Mount.
        mount: Option<String>,
    },
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::AppRole { role_id, mount, .. } => f
                .debug_struct("AppRole")
                .field("role_id", role_id)
                .field("mount", mount)
                .finish_non_exhaustive(),
            Self::Kubernetes { role, mount, .. } => f
                .debug_struct("Kubernetes")
                .field("role", role)
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

impl VaultBackend {
    /// A backend for `address` with `auth`; `default_kv` from `AVP_KV_VERSION` (default 2).
    pub fn new(
        address: &str,
        namespace: Option<String>,
        auth: VaultAuth,
        default_kv: KvVersion,
    ) -> Result<Self, String> {
        let client = Client::new(
            address,
            ClientOptions {
                namespace,
                ..ClientOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let method = match auth {
            VaultAuth::Token(t) => {
                AuthMethod::Token(VaultToken::new(secrecy::ExposeSecret::expose_secret(&t)))
            }
            VaultAuth::AppRole {
                role_id,
                secret_id,
                mount,
            } => AuthMethod::AppRole {
                mount,
                role_id,
                secret_id: Arc::new(secret_id),
            },
            VaultAuth::Kubernetes { role, jwt, mount } => AuthMethod::Kubernetes {
                mount,
                role,
                jwt: Arc::new(jwt),
            },
        };
        Ok(Self {
            session: Session::new(
                client,
                Auth {
                    method,
                    namespace: None,
                },
            ),
            default_kv,
            reads: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl Backend for VaultBackend {
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, String> {
        let token = self.session.token().await.map_err(|e| e.to_string())?;
        let kv = match r.kv_version {
            Some(1) => KvVersion::V1,
            Some(_) => KvVersion::V2,
            None => self.default_kv,
        };
        self.reads.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .session
            .client()
            .kv_read(&token, &r.path, r.version.as_deref(), kv)
            .await
            .map_err(|e| e.to_string())?;
        match answer {
            None => Ok(None),
            Some(Json::Object(m)) => Ok(Some(m)),
            Some(_) => Err(format!("vault read {}: the secret is not a map", r.path)),
        }
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// AWS Secrets Manager (`AVP_TYPE=awssecretsmanager`), through the one hush AWS client
/// (hush-aws). As argocd-vault-plugin: the placeholder path is the `SecretId`, `#version` is the
/// `VersionId`, and the secret's `SecretString` (or `SecretBinary`) must hold a JSON object.
pub struct AwsSecretsManagerBackend {
    http: reqwest::Client,
    url: String,
    region: String,
    credentials: tokio::sync::OnceCell<hush_aws::Credentials>,
    reads: AtomicU64,
}

impl fmt::Debug for AwsSecretsManagerBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSecretsManagerBackend")
            .field("url", &self.url)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManagerBackend {
    /// A backend for `region`; the endpoint honours `AWS_SECRETSMANAGER_ENDPOINT`,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL`.
    pub fn new(region: &str) -> Result<Self, String> {
        let url = hush_aws::endpoint("secretsmanager", region).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            http,
            url,
            region: region.to_owned(),
            credentials: tokio::sync::OnceCell::new(),
            reads: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl Backend for AwsSecretsManagerBackend {
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, String> {
        let credentials = self
            .credentials
            .get_or_try_init(|| hush_aws::resolve_credentials(None, &self.http, &self.region))
            .await
            .map_err(|e| e.to_string())?;
        let mut request = serde_json::json!({ "SecretId": r.path });
        if let Some(version) = &r.version {
            request["VersionId"] = Json::String(version.clone());
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let answer = match hush_aws::json_call(
            &self.http,
            &self.url,
            credentials,
            &self.region,
            "secretsmanager",
            "secretsmanager",
            "GetSecretValue",
            &request,
        )
        .await
        {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(format!("aws secrets manager read {}: {e}", r.path)),
        };
        let not_a_map = || {
            format!(
                "aws secrets manager read {}: the secret is not a JSON object",
                r.path
            )
        };
        let bytes = zeroize::Zeroizing::new(
            match (answer.get("SecretString"), answer.get("SecretBinary")) {
                (Some(Json::String(s)), _) => s.as_bytes().to_vec(),
                (_, Some(Json::String(b))) => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|_| not_a_map())?
                }
                _ => return Err(not_a_map()),
            },
        );
        match serde_json::from_slice::<Json>(&bytes) {
            Ok(Json::Object(m)) => Ok(Some(m)),
            _ => Err(not_a_map()),
        }
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// The backend a render's settings name.
pub fn from_settings(settings: crate::config::BackendSettings) -> Result<Box<dyn Backend>, String> {
    use crate::config::BackendSettings;
    Ok(match settings {
        BackendSettings::Vault {
            address,
            namespace,
            auth,
            kv_version,
        } => {
            let kv = if kv_version == 1 {
                KvVersion::V1
            } else {
                KvVersion::V2
            };
            Box::new(VaultBackend::new(&address, namespace, auth, kv)?)
        }
        BackendSettings::AwsSecretsManager { region } => {
            Box::new(AwsSecretsManagerBackend::new(&region)?)
        }
    })
}

/// Secrets held in memory (tests, `hush demo`, and renders that only decrypt SOPS files).
#[derive(Default)]
pub struct MemoryBackend {
    secrets: std::collections::BTreeMap<(String, Option<String>), SecretData>,
    reads: AtomicU64,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("paths", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret at `path` (and `version`, `None` = latest).
    pub fn insert(&mut self, path: &str, version: Option<&str>, data: SecretData) {
        self.secrets
            .insert((path.to_owned(), version.map(str::to_owned)), data);
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .secrets
            .get(&(r.path.clone(), r.version.clone()))
            .cloned())
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}
