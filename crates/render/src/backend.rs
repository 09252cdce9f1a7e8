//! Where placeholder values come from. A render asks a [`Backend`] once per distinct
//! [`SecretRef`]. argocd-vault-plugin's backends (`AVP_TYPE`) are thin adapters over the
//! hush-sync providers the ExternalSecret controller uses ([`ProviderBackend`]): the plugin's
//! settings become the provider spec of the same service, built by the same registry, so an
//! AVP backend and an ESO provider are one implementation with one client, one session cache
//! and one call counter (`hush_sync::calls`).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use hush_sync::{
    CredentialSource, DocumentRef, KeyRef, ProviderError, SecretBytes, SecretProvider, StoreScope,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value as Json, json};
use zeroize::Zeroize;

use crate::config::{AzureProof, VaultAuth};

/// A whole secret: its keys and values. Every string in it (keys and values, nested ones too)
/// is zeroized on drop; `Debug` shows only how many keys it has.
#[derive(Clone, Default, PartialEq)]
pub struct SecretData(Map<String, Json>);

impl Deref for SecretData {
    type Target = Map<String, Json>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Map<String, Json>> for SecretData {
    fn from(map: Map<String, Json>) -> Self {
        Self(map)
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretData({} keys, <redacted>)", self.0.len())
    }
}

impl Drop for SecretData {
    fn drop(&mut self) {
        zeroize_map(&mut self.0);
    }
}

fn zeroize_map(map: &mut Map<String, Json>) {
    for (mut key, mut value) in std::mem::take(map) {
        key.zeroize();
        zeroize_json(&mut value);
    }
}

fn zeroize_json(value: &mut Json) {
    match value {
        Json::String(s) => s.zeroize(),
        Json::Array(items) => items.iter_mut().for_each(zeroize_json),
        Json::Object(map) => zeroize_map(map),
        Json::Null | Json::Bool(_) | Json::Number(_) => *value = Json::Null,
    }
}

/// One read: a path at a version, with the object's `kv-version` override.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    /// The backend path (for Vault: the API path, `secret/data/app` for KV v2).
    pub path: String,
    /// `#version` or `avp.kubernetes.io/secret-version`.
    pub version: Option<String>,
    /// `avp.kubernetes.io/kv-version` (`1`/`2`); `None` = the backend default.
    pub kv_version: Option<u8>,
    /// An inline placeholder's key, for a backend that reads keys one by one
    /// ([`Backend::reads_keys`]); `None` otherwise.
    pub key: Option<String>,
}

/// Errors of backends. Messages describe requests, never values or credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend could not be set up from the plugin's settings.
    #[error("{backend}: {error}")]
    Setup {
        /// `AVP_TYPE`.
        backend: &'static str,
        /// What the provider refused.
        error: ProviderError,
    },
    /// A read failed.
    #[error("{backend} read {path}: {error}")]
    Read {
        /// `AVP_TYPE`.
        backend: &'static str,
        /// The path read.
        path: String,
        /// What the provider answered.
        error: ProviderError,
    },
}

/// A source of secrets.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// Reads a whole secret; `Ok(None)` when it does not exist. Errors never contain values.
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, BackendError>;
    /// Reads made so far (for figures and tests).
    fn reads(&self) -> u64;
    /// Whether an inline placeholder is read alone, its key in [`SecretRef::key`] (Azure Key
    /// Vault, where every key is a secret of its own), rather than as its path's document.
    fn reads_keys(&self) -> bool {
        false
    }
}

/// The name of the in-memory Secret the plugin's own credentials are offered under.
const PLUGIN_SECRET: &str = "argocd-vault-plugin";

/// The plugin's credentials (from its environment), offered to the provider as the keys of one
/// Secret the spec references: a render has no Kubernetes objects to read credentials from.
struct PluginCredentials(BTreeMap<&'static str, SecretBytes>);

#[async_trait]
impl CredentialSource for PluginCredentials {
    async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError> {
        self.0
            .get(r.key.as_str())
            .filter(|_| r.name == PLUGIN_SECRET)
            .cloned()
            .ok_or_else(|| ProviderError::Invalid(format!("no plugin credential {:?}", r.key)))
    }

    async fn config_map_key(&self, r: &KeyRef) -> Result<String, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "config map {:?}: the render plugin reads no Kubernetes objects",
            r.name
        )))
    }

    async fn service_account_token(
        &self,
        _namespace: Option<&str>,
        name: &str,
        _audiences: &[String],
        _expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "service account {name:?}: the render plugin requests no tokens"
        )))
    }
}

fn secret_ref(key: &str) -> Json {
    json!({ "name": PLUGIN_SECRET, "key": key })
}

/// The ESO `vault` provider spec of AVP's Vault settings, and the credentials it references.
fn vault_spec(
    address: &str,
    namespace: Option<String>,
    auth: VaultAuth,
    kv_version: u8,
) -> (Json, PluginCredentials) {
    let secret = |s: &SecretString| SecretBytes::from(s.expose_secret());
    let (auth, credentials) = match auth {
        VaultAuth::Token(t) => (
            json!({ "tokenSecretRef": secret_ref("token") }),
            BTreeMap::from([("token", secret(&t))]),
        ),
        VaultAuth::AppRole {
            role_id,
            secret_id,
            mount,
        } => (
            json!({ "appRole": { "path": mount, "roleId": role_id, "secretRef": secret_ref("secret-id") } }),
            BTreeMap::from([("secret-id", secret(&secret_id))]),
        ),
        VaultAuth::UserPass {
            username,
            password,
            mount,
        } => (
            json!({ "userPass": { "path": mount, "username": username, "secretRef": secret_ref("password") } }),
            BTreeMap::from([("password", secret(&password))]),
        ),
        VaultAuth::Kubernetes { role, jwt, mount } => (
            json!({ "kubernetes": { "mountPath": mount, "role": role, "secretRef": secret_ref("jwt") } }),
            BTreeMap::from([("jwt", secret(&jwt))]),
        ),
    };
    let spec = json!({
        "server": address,
        "namespace": namespace,
        "version": if kv_version == 1 { "v1" } else { "v2" },
        "auth": auth,
    });
    (spec, PluginCredentials(credentials))
}

/// Which provider reads a path. argocd-vault-plugin's `kubernetessecret` and `azurekeyvault`
/// name a namespace or a vault in the path, so they get one provider (one ESO store) per
/// namespace or vault, built on first use; the others have one provider for every path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// One provider reads every path as written.
    One,
    /// `NAMESPACE:NAME`, or `NAME` in `argocd` (AVP's default): the store's `remoteNamespace`.
    Namespace,
    /// The path is a vault's name: the store's `vaultUrl` in this Key Vault domain.
    Vault(String),
}

/// AVP's namespace when a `kubernetessecret` path names none.
const DEFAULT_NAMESPACE: &str = "argocd";

impl Route {
    /// The scope of `path` (which provider reads it), the spec member that selects that
    /// provider, and the path it reads.
    fn split<'a>(&self, path: &'a str) -> Result<(String, Json, &'a str), ProviderError> {
        match self {
            Self::One => Ok((String::new(), Json::Null, path)),
            Self::Namespace => {
                let (namespace, name) = match path.split(':').collect::<Vec<_>>()[..] {
                    [name] => (DEFAULT_NAMESPACE, name),
                    [namespace, name] => (namespace, name),
                    _ => {
                        return Err(ProviderError::Invalid(format!(
                            "{path}: expected NAME or NAMESPACE:NAME"
                        )));
                    }
                };
                let patch = json!({ "remoteNamespace": namespace });
                Ok((namespace.to_owned(), patch, name))
            }
            Self::Vault(domain) => {
                let name = path.to_ascii_lowercase();
                if !vault_name(&name) {
                    return Err(ProviderError::Invalid(format!(
                        "{path}: not a Key Vault name (3 to 24 letters, digits and '-', starting \
                         with a letter)"
                    )));
                }
                let patch = json!({ "vaultUrl": vault_url(&name, domain) });
                Ok((name, patch, path))
            }
        }
    }
}

fn vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `https://<name>.<domain>`; a domain that is an IP address or `localhost` (a test server)
/// is a single vault, which every name reads.
fn vault_url(name: &str, domain: &str) -> String {
    let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
    if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
        format!("https://{domain}")
    } else {
        format!("https://{name}.{domain}")
    }
}

/// An argocd-vault-plugin backend over hush-sync providers.
pub struct ProviderBackend {
    backend: &'static str,
    /// The key of the ESO `spec.provider` and the spec every store of this backend shares.
    provider: &'static str,
    spec: Json,
    credentials: PluginCredentials,
    route: Route,
    /// Providers by scope ([`Route::split`]); the lock is held while one is built, so a scope
    /// logs in once however many reads wait for it.
    built: futures::lock::Mutex<BTreeMap<String, Arc<dyn SecretProvider>>>,
    reads: AtomicU64,
}

impl fmt::Debug for ProviderBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderBackend")
            .field("backend", &self.backend)
            .field("provider", &self.provider)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl ProviderBackend {
    /// A backend whose providers are `provider` (the key of an ESO `spec.provider`) built from
    /// `spec` by hush-sync's registry, each as a cluster-wide store of the operator (the
    /// plugin's own environment is the operator's: the standard AWS chain, its Vault token).
    /// With [`Route::One`], the provider is built now, so bad settings fail before any read.
    async fn new(
        backend: &'static str,
        provider: &'static str,
        spec: Json,
        credentials: PluginCredentials,
        route: Route,
    ) -> Result<Self, BackendError> {
        let me = Self {
            backend,
            provider,
            spec,
            credentials,
            route,
            built: futures::lock::Mutex::new(BTreeMap::new()),
            reads: AtomicU64::new(0),
        };
        if me.route == Route::One {
            me.provider_for(String::new(), Json::Null)
                .await
                .map_err(|error| BackendError::Setup { backend, error })?;
        }
        Ok(me)
    }

    /// The provider of `scope`, built with `patch` merged into the spec on first use.
    async fn provider_for(
        &self,
        scope: String,
        patch: Json,
    ) -> Result<Arc<dyn SecretProvider>, ProviderError> {
        let mut built = self.built.lock().await;
        if let Some(p) = built.get(&scope) {
            return Ok(p.clone());
        }
        let mut spec = self.spec.clone();
        if let (Some(spec), Json::Object(patch)) = (spec.as_object_mut(), patch) {
            spec.extend(patch);
        }
        let registry = hush_sync::registry();
        let block = json!({ self.provider: spec });
        let (factory, spec) = hush_sync::select(&registry, &block)?;
        let store = StoreScope::new("ClusterSecretStore", PLUGIN_SECRET, None);
        let provider = factory
            .build(spec, &store, &self.credentials)
            .await?
            .provider;
        built.insert(scope, provider.clone());
        Ok(provider)
    }
}

#[async_trait]
impl Backend for ProviderBackend {
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, BackendError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let failed = |error| BackendError::Read {
            backend: self.backend,
            path: r.path.clone(),
            error,
        };
        let (scope, patch, path) = self.route.split(&r.path).map_err(failed)?;
        let provider = self.provider_for(scope, patch).await.map_err(failed)?;
        let document = DocumentRef {
            path: path.to_owned(),
            version: r.version.clone(),
            kv_version: r.kv_version,
            key: r.key.clone(),
        };
        match provider.document(&document).await {
            Ok(data) => Ok(data.map(SecretData)),
            Err(error) => Err(failed(error)),
        }
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn reads_keys(&self) -> bool {
        matches!(self.route, Route::Vault(_))
    }
}

/// The ESO `kubernetes` spec of the plugin's in-cluster configuration.
fn kubernetes_spec(server: &str, ca_pem: &[u8], token: &SecretString) -> (Json, PluginCredentials) {
    let spec = json!({
        "server": { "url": server, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem) },
        "auth": { "token": { "bearerToken": secret_ref("token") } },
    });
    let credentials = BTreeMap::from([("token", SecretBytes::from(token.expose_secret()))]);
    (spec, PluginCredentials(credentials))
}

/// The ESO `azurekv` spec of an application's credentials (the vault comes from each path).
fn azure_spec(tenant_id: &str, client_id: &str, proof: &AzureProof) -> (Json, PluginCredentials) {
    let (field, key, value) = match proof {
        AzureProof::Secret(s) => ("clientSecret", "client-secret", s),
        AzureProof::Certificate(pem) => ("clientCertificate", "client-certificate", pem),
    };
    let spec = json!({
        "tenantId": tenant_id,
        "authType": "ServicePrincipal",
        "authSecretRef": { "clientId": secret_ref("client-id"), field: secret_ref(key) },
    });
    let credentials = BTreeMap::from([
        ("client-id", SecretBytes::from(client_id)),
        (key, SecretBytes::from(value.expose_secret())),
    ]);
    (spec, PluginCredentials(credentials))
}

/// The backend a render's settings name.
pub async fn from_settings(
    settings: crate::config::BackendSettings,
) -> Result<Box<dyn Backend>, BackendError> {
    use crate::config::BackendSettings;
    let none = || PluginCredentials(BTreeMap::new());
    let backend = match settings {
        BackendSettings::Vault {
            address,
            namespace,
            auth,
            kv_version,
        } => {
            let (spec, credentials) = vault_spec(&address, namespace, auth, kv_version);
            ProviderBackend::new("vault", "vault", spec, credentials, Route::One).await?
        }
        BackendSettings::AwsSecretsManager { region } => {
            let spec = json!({ "service": "SecretsManager", "region": region });
            ProviderBackend::new("awssecretsmanager", "aws", spec, none(), Route::One).await?
        }
        BackendSettings::KubernetesSecret {
            server,
            ca_pem,
            token,
        } => {
            let (spec, credentials) = kubernetes_spec(&server, &ca_pem, &token);
            let (b, p) = ("kubernetessecret", "kubernetes");
            ProviderBackend::new(b, p, spec, credentials, Route::Namespace).await?
        }
        BackendSettings::GcpSecretManager { key } => {
            let spec = json!({ "auth": { "secretRef": {
                "secretAccessKeySecretRef": secret_ref("service-account-key") } } });
            let key = SecretBytes::from(key.expose_secret());
            let credentials = PluginCredentials(BTreeMap::from([("service-account-key", key)]));
            ProviderBackend::new("gcpsecretmanager", "gcpsm", spec, credentials, Route::One).await?
        }
        BackendSettings::AzureKeyVault {
            tenant_id,
            client_id,
            proof,
            vault_domain,
        } => {
            let (spec, credentials) = azure_spec(&tenant_id, &client_id, &proof);
            let route = Route::Vault(vault_domain);
            ProviderBackend::new("azurekeyvault", "azurekv", spec, credentials, route).await?
        }
    };
    Ok(Box::new(backend))
}

/// Secrets held in memory (tests, `hush demo`, and renders that only decrypt SOPS files).
#[derive(Default)]
pub struct MemoryBackend {
    secrets: BTreeMap<(String, Option<String>), SecretData>,
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
    pub fn insert(&mut self, path: &str, version: Option<&str>, data: impl Into<SecretData>) {
        self.secrets
            .insert((path.to_owned(), version.map(str::to_owned)), data.into());
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn read(&self, r: &SecretRef) -> Result<Option<SecretData>, BackendError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_data_debug_shows_no_value() {
        let mut map = Map::new();
        map.insert("password".into(), json!("canary-backend-5e1d"));
        let text = format!("{:?}", SecretData::from(map));
        assert!(!text.contains("canary"), "{text}");
        assert!(text.contains("1 keys"), "{text}");
    }

    #[tokio::test]
    async fn plugin_credentials_answer_only_for_the_plugin_secret() {
        let creds = PluginCredentials(BTreeMap::from([("token", SecretBytes::from("t"))]));
        let r = |name: &str| KeyRef {
            name: name.into(),
            key: "token".into(),
            namespace: None,
        };
        assert!(creds.secret_key(&r(PLUGIN_SECRET)).await.is_ok());
        assert!(creds.secret_key(&r("kube-system-secret")).await.is_err());
    }

    #[test]
    fn paths_name_the_namespace_or_the_vault_as_avp_does() {
        let (scope, patch, name) = Route::Namespace.split("prod:db").unwrap();
        assert_eq!((scope.as_str(), name), ("prod", "db"));
        assert_eq!(patch["remoteNamespace"], "prod");
        let (scope, _, name) = Route::Namespace.split("db").unwrap();
        assert_eq!((scope.as_str(), name), (DEFAULT_NAMESPACE, "db"));
        assert!(Route::Namespace.split("a:b:c").is_err());

        let public = Route::Vault("vault.azure.net".into());
        let (scope, patch, _) = public.split("KeyVault-1").unwrap();
        assert_eq!(scope, "keyvault-1");
        assert_eq!(patch["vaultUrl"], "https://keyvault-1.vault.azure.net");
        for bad in ["kv", "1vault", "vault-", "a.b.evil", "x/y", &"v".repeat(25)] {
            assert!(public.split(bad).is_err(), "{bad}");
        }
        let test_server = Route::Vault("127.0.0.1:8443".into());
        let (_, patch, _) = test_server.split("keyvault").unwrap();
        assert_eq!(patch["vaultUrl"], "https://127.0.0.1:8443");
        let (scope, patch, path) = Route::One.split("secret/data/x").unwrap();
        assert_eq!(
            (scope.as_str(), path, patch),
            ("", "secret/data/x", Json::Null)
        );
    }

    #[test]
    fn vault_settings_become_the_eso_vault_spec() {
        let (spec, creds) = vault_spec(
            "http://127.0.0.1:8200",
            Some("ns1".into()),
            VaultAuth::AppRole {
                role_id: "rid".into(),
                secret_id: SecretString::from("sid"),
                mount: None,
            },
            1,
        );
        assert_eq!(spec["version"], "v1");
        assert_eq!(spec["namespace"], "ns1");
        assert_eq!(spec["auth"]["appRole"]["roleId"], "rid");
        assert!(!spec.to_string().contains("sid\""), "{spec}");
        assert!(creds.0.contains_key("secret-id"));
        let (spec, creds) = vault_spec(
            "http://127.0.0.1:8200",
            None,
            VaultAuth::UserPass {
                username: "render".into(),
                password: SecretString::from("pw-canary"),
                mount: Some("people".into()),
            },
            2,
        );
        assert_eq!(spec["auth"]["userPass"]["username"], "render");
        assert_eq!(spec["auth"]["userPass"]["path"], "people");
        assert!(!spec.to_string().contains("pw-canary"), "{spec}");
        assert!(creds.0.contains_key("password"));
    }
}
