//! The `SecretProvider` seam of hush's ExternalSecret controller (ESO's `SecretsClient`, cut
//! down to what we sync), the providers behind Cargo features, one registration list
//! ([`registry`]) and the cache that makes a refresh cheap ([`cache`]).
//!
//! - Providers read; those that support ESO's PushSecret also write ([`SecretProvider::push`],
//!   [`SecretProvider::exists`], [`SecretProvider::delete`]; a read-only provider keeps the
//!   defaults, which refuse). One seam, one registry: a provider is one module either way.
//! - [`ProviderError::NotFound`] drives ExternalSecret `deletionPolicy`.
//! - Providers know nothing about Kubernetes: credentials referenced by a store come through
//!   [`CredentialSource`], implemented by the controller.
//! - Values are [`SecretBytes`] (zeroized, `Debug` redacted); errors never carry them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azurekv;
pub mod cache;
pub mod calls;
#[cfg(any(feature = "gcp", feature = "azure"))]
mod cloud;
pub mod fake;
#[cfg(feature = "gcp")]
pub mod gcpsm;
pub mod generators;
pub mod json;
pub mod kubernetes;
pub mod retry;
#[cfg(test)]
mod testing;
#[cfg(feature = "vault")]
pub mod vault;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
pub use hush_crypto::SecretBytes;
use serde_json::Value;

/// ESO's `remoteRef`: what to read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteRef {
    /// Provider key (Vault path, AWS secret name).
    pub key: String,
    /// Sub-value: exact top-level key first, then a gjson path.
    pub property: String,
    /// Provider version ("" = latest).
    pub version: String,
    /// Read the metadata (tags, custom_metadata) instead of the value.
    pub metadata: bool,
}

/// ESO's `dataFrom[].find`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FindQuery {
    /// Path prefix.
    pub path: String,
    /// Name regexp (Go RE2 syntax).
    pub name_regexp: String,
    /// Tags (AWS: prefix filters; Vault: exact custom_metadata).
    pub tags: BTreeMap<String, String>,
}

/// A whole secret addressed as argocd-vault-plugin addresses it (`<path:…#key#version>`): the
/// render plugin's backends are adapters over [`SecretProvider::document`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentRef {
    /// The provider's own path (Vault: the API path, `secret/data/app` for KV v2; AWS: the
    /// `SecretId`), used verbatim.
    pub path: String,
    /// A version (Vault: the KV v2 version; AWS: the `VersionId`); `None` = the latest.
    pub version: Option<String>,
    /// Vault's KV version for this read (`avp.kubernetes.io/kv-version`); `None` = the store's.
    pub kv_version: Option<u8>,
    /// The one key wanted, for a provider whose keys are secrets of their own (Azure Key Vault,
    /// where argocd-vault-plugin reads an inline placeholder's secret alone); `None` = the
    /// whole document. A provider that reads whole documents may ignore it: the caller takes
    /// the key from what it returns.
    pub key: Option<String>,
}

/// ESO's PushSecret `remoteRef` and the entry's provider `metadata`: where to write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushRef {
    /// Provider key (Vault path, AWS secret or parameter name).
    pub remote_key: String,
    /// Property of a JSON object value ("" = the whole value).
    pub property: String,
    /// The entry's `metadata` (ESO's `PushSecretMetadata` envelope), provider-specific.
    pub metadata: Option<Value>,
    /// The entry's `match.secretKey` ("" = the whole Secret, pushed as a JSON object).
    pub secret_key: String,
    /// The Secret pushed from, for providers that write more than the one value (the
    /// `kubernetes` provider copies keys, labels, annotations and type); `None` on deletes.
    pub source: Option<Arc<PushSource>>,
}

/// The Secret a PushSecret pushes from, as ESO hands it to a provider: its data after
/// `template` and the entry's `conversionStrategy`, its labels and annotations (with the
/// template's), and its type ("" = `Opaque`; with a `template`, the template's type).
#[derive(Clone, Default, PartialEq)]
pub struct PushSource {
    /// Every key of the Secret.
    pub data: BTreeMap<String, SecretBytes>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `type`.
    pub type_: String,
}

impl fmt::Debug for PushSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values redacted: only the data keys.
        f.debug_struct("PushSource")
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .field("type_", &self.type_)
            .finish()
    }
}

impl PushRef {
    /// ESO's key of `status.syncedPushSecrets` entries: `remoteKey` or `remoteKey/property`.
    pub fn status_key(&self) -> String {
        if self.property.is_empty() {
            self.remote_key.clone()
        } else {
            format!("{}/{}", self.remote_key, self.property)
        }
    }
}

/// ESO's ownership marker on pushed secrets (Vault `custom_metadata`, AWS tags): a secret
/// without it was not written by a PushSecret and is never overwritten or deleted.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "external-secrets");

/// The `spec` of ESO's `PushSecretMetadata` envelope (`apiVersion:
/// kubernetes.external-secrets.io/v1alpha1`, `kind: PushSecretMetadata`), with only `known`
/// fields allowed (others are refused by name: never silently ignored).
pub fn push_metadata_spec(
    r: &PushRef,
    known: &[&str],
) -> Result<serde_json::Map<String, Value>, ProviderError> {
    let Some(m) = r.metadata.as_ref().filter(|m| !m.is_null()) else {
        return Ok(serde_json::Map::new());
    };
    refuse_unknown_fields("metadata", m, &["apiVersion", "kind", "spec"])?;
    if let Some(kind) = m["kind"].as_str()
        && kind != "PushSecretMetadata"
    {
        return Err(ProviderError::Invalid(format!(
            "metadata.kind {kind:?} is not PushSecretMetadata"
        )));
    }
    let spec = &m["spec"];
    if spec.is_null() {
        return Ok(serde_json::Map::new());
    }
    refuse_unknown_fields("metadata.spec", spec, known)?;
    spec.as_object()
        .cloned()
        .ok_or_else(|| ProviderError::Invalid("metadata.spec must be an object".into()))
}

fn read_only() -> ProviderError {
    ProviderError::Invalid(
        "this provider is read-only: hush does not support PushSecret to it".into(),
    )
}

/// What a provider can do (ESO's `status.capabilities`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capabilities {
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

impl Capabilities {
    /// ESO's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "ReadOnly",
            Self::ReadWrite => "ReadWrite",
        }
    }
}

/// Errors of providers. Messages describe requests, never values or credentials.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderError {
    /// The secret (or version) does not exist. A property missing from an existing secret is
    /// [`ProviderError::Invalid`]: ESO reports it as an error whatever the deletionPolicy.
    #[error("secret not found: {0}")]
    NotFound(String),
    /// The provider refused the credentials or the access.
    #[error("access denied: {0}")]
    Denied(String),
    /// Rate limited (HTTP 429, ThrottlingException): retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The provider is unreachable or failed; retrying may help.
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// The store or the request is invalid (bad config, undecodable value).
    #[error("invalid: {0}")]
    Invalid(String),
}

impl ProviderError {
    /// True for [`ProviderError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// True when a retry may succeed without a spec change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled(_) | Self::Transient(_) | Self::Denied(_)
        )
    }
}

/// A source of secret values.
#[async_trait]
pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// One value (`data[].remoteRef`).
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError>;
    /// A value that is a JSON object, as many keys (`dataFrom[].extract`).
    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError>;
    /// Many secrets (`dataFrom[].find`); keys are provider names.
    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError>;
    /// Checks that the store works (login, credentials); used for store `Ready`.
    async fn validate(&self) -> Result<(), ProviderError>;
    /// What the provider can do.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
    /// A whole secret that is a JSON object, values as stored (argocd-vault-plugin's model);
    /// `Ok(None)` when it does not exist. A provider argocd-vault-plugin has no backend for
    /// keeps this default: refused.
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        Err(ProviderError::Invalid(format!(
            "{}: this provider has no argocd-vault-plugin backend",
            r.path
        )))
    }
    /// PushSecret: writes `value` at `r` (a `property` merges into a JSON object), refusing a
    /// secret that exists without ESO's ownership marker ([`MANAGED_BY`]), and marks what it
    /// creates with it. A write that would change nothing is skipped.
    async fn push(&self, value: &SecretBytes, r: &PushRef) -> Result<(), ProviderError> {
        let _ = (value, r);
        Err(read_only())
    }
    /// PushSecret `updatePolicy: IfNotExists`: whether `r` (its property, if set) exists.
    async fn exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        let _ = r;
        Err(read_only())
    }
    /// PushSecret `deletionPolicy: Delete`: removes `r` (only its property, if set) when it
    /// carries ESO's ownership marker; an absent or unmarked secret is left alone (`Ok`).
    async fn delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        let _ = r;
        Err(read_only())
    }
    /// Whether [`SecretProvider::delete`] can remove what [`SecretProvider::push`] wrote: a
    /// provider that pushes but cannot delete (ESO's webhook) answers `false`, and a PushSecret
    /// with `deletionPolicy: Delete` is refused before anything is pushed (no finalizer that
    /// could never be removed).
    fn deletes_pushed(&self) -> bool {
        true
    }
}

/// A reference to a key of a Kubernetes Secret or ConfigMap, as a store names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// Object name.
    pub name: String,
    /// Key in `data`.
    pub key: String,
    /// Namespace; `None` = the namespace the store resolves in.
    pub namespace: Option<String>,
}

/// Where a pod's own ServiceAccount token is mounted.
pub const POD_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Resolves what stores reference in Kubernetes (implemented by the controller).
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// The value of a Secret key.
    async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError>;
    /// The value of a ConfigMap key.
    async fn config_map_key(&self, r: &KeyRef) -> Result<String, ProviderError>;
    /// A service account token (TokenRequest) for `name` in `namespace` with `audiences`.
    async fn service_account_token(
        &self,
        namespace: Option<&str>,
        name: &str,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError>;
    /// Tokens of ServiceAccount `name` in `namespace`, requested whenever the returned handle is
    /// asked: a cached client keeps the handle and exchanges a fresh token each time its cloud
    /// access token is renewed (GCP and Azure workload identity), rather than keeping one token
    /// past its expiry.
    fn service_account_tokens(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<dyn ServiceAccountTokens>, ProviderError> {
        let _ = namespace;
        Err(ProviderError::Invalid(format!(
            "service account {name:?}: this credential source requests no tokens"
        )))
    }
    /// The controller's own ServiceAccount token (its pod's mounted token). Providers ask for it
    /// only where [`StoreScope::controller_identity`] allows it.
    async fn controller_token(&self) -> Result<SecretBytes, ProviderError> {
        let path = POD_TOKEN_FILE;
        std::fs::read(path).map(SecretBytes::new).map_err(|e| {
            ProviderError::Invalid(format!("cannot read the controller's token {path}: {e}"))
        })
    }
    /// Every key of Secret `name` in `namespace`, and its labels (the webhook provider exposes
    /// whole Secrets labelled for it).
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, SecretBytes>, BTreeMap<String, String>), ProviderError> {
        let _ = namespace;
        Err(ProviderError::Invalid(format!(
            "secret {name:?}: this credential source cannot read whole secrets"
        )))
    }
    /// The URL of the API server the controller itself talks to (the `kubernetes` provider's
    /// `kubernetes.default`); `None` when unknown.
    async fn local_api_server(&self) -> Option<String> {
        None
    }
    /// The annotations of ServiceAccount `name` in `namespace` (AWS `auth.jwt` reads the role
    /// to assume from one).
    async fn service_account_annotations(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let _ = namespace;
        Err(ProviderError::Invalid(format!(
            "service account {name:?}: this credential source cannot read service accounts"
        )))
    }
}

/// Tokens of one ServiceAccount ([`CredentialSource::service_account_tokens`]). `Debug` shows
/// which account, never a token.
#[async_trait]
pub trait ServiceAccountTokens: Send + Sync + fmt::Debug {
    /// A new token (TokenRequest) for `audiences`, valid for `expiration_seconds`.
    async fn token(
        &self,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError>;
}

/// ESO's `SecretKeySelector`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Secret name.
    #[serde(default)]
    pub name: String,
    /// Key.
    #[serde(default)]
    pub key: Option<String>,
    /// Namespace (ClusterSecretStore only).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The namespace a credential reference resolves in: a SecretStore's own (another namespace
/// is refused, as ESO's ValidateStore does); a ClusterSecretStore's selector namespace, or the
/// ExternalSecret's (referent auth).
pub fn ref_namespace(
    ns: Option<&str>,
    scope: &StoreScope,
) -> Result<Option<String>, ProviderError> {
    let ns = ns.filter(|n| !n.is_empty());
    if scope.kind == "SecretStore" {
        // A namespaced store may not reach into another namespace (ESO's ValidateStore).
        if let (Some(ns), Some(own)) = (ns, scope.namespace.as_deref())
            && ns != own
        {
            return Err(ProviderError::Invalid(format!(
                "namespace {ns:?} is not allowed in a SecretStore of namespace {own:?}"
            )));
        }
        return Ok(scope.namespace.clone());
    }
    Ok(ns.map(str::to_owned).or_else(|| scope.namespace.clone()))
}

/// ESO's `ServiceAccountSelector`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// Service account name.
    pub name: String,
    /// Namespace (ClusterSecretStore only).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Token audiences.
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// Resolves a selector in the right namespace: a SecretStore's own; a ClusterSecretStore's
/// selector namespace, or the ExternalSecret's (referent auth).
pub(crate) fn key_ref(
    sel: &SecretKeySelector,
    default_key: Option<&str>,
    scope: &StoreScope,
) -> Result<KeyRef, ProviderError> {
    let key = sel
        .key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| default_key.map(str::to_owned))
        .ok_or_else(|| {
            ProviderError::Invalid(format!("secret reference {:?} has no key", sel.name))
        })?;
    if sel.name.is_empty() {
        return Err(ProviderError::Invalid(
            "secret reference has no name".into(),
        ));
    }
    Ok(KeyRef {
        name: sel.name.clone(),
        key,
        namespace: ref_namespace(sel.namespace.as_deref(), scope)?,
    })
}

/// How a provider words the `caProvider` fields in its errors (each keeps its own wording).
pub(crate) struct CaProviderPaths {
    /// The path named when a ClusterSecretStore leaves out the namespace.
    pub namespace: &'static str,
    /// The path named when the type is neither Secret nor ConfigMap.
    pub kind: &'static str,
}

/// ESO's `CAProvider` as the `vault` and `kubernetes` providers decode it (`type` and `name`
/// required; the `webhook` provider decodes its own with every field optional).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct CaProvider {
    /// `Secret` or `ConfigMap`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The key holding the PEM bundle.
    #[serde(default)]
    pub key: String,
    /// The object's namespace (required in a ClusterSecretStore).
    #[serde(default)]
    pub namespace: Option<String>,
}

impl CaProvider {
    /// The CA it names: [`ca_provider_pem`].
    pub(crate) async fn pem(
        &self,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
        paths: &CaProviderPaths,
    ) -> Result<Vec<u8>, ProviderError> {
        let namespace = self.namespace.as_deref();
        ca_provider_pem(
            &self.kind, &self.name, &self.key, namespace, scope, creds, paths,
        )
        .await
    }
}

/// A store's `caProvider` CA (ESO: a Secret or ConfigMap key); a ClusterSecretStore must name
/// the namespace (no referent CA).
pub(crate) async fn ca_provider_pem(
    kind: &str,
    name: &str,
    key: &str,
    namespace: Option<&str>,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    paths: &CaProviderPaths,
) -> Result<Vec<u8>, ProviderError> {
    if scope.kind == "ClusterSecretStore" && namespace.is_none_or(str::is_empty) {
        return Err(ProviderError::Invalid(format!(
            "{} is required in a ClusterSecretStore",
            paths.namespace
        )));
    }
    let r = KeyRef {
        name: name.to_owned(),
        key: key.to_owned(),
        namespace: ref_namespace(namespace, scope)?,
    };
    match kind {
        "Secret" => Ok(creds.secret_key(&r).await?.expose().to_vec()),
        "ConfigMap" => Ok(creds.config_map_key(&r).await?.into_bytes()),
        other => Err(ProviderError::Invalid(format!(
            "{} {other:?} (Secret or ConfigMap)",
            paths.kind
        ))),
    }
}

/// Where a store is used: its kind and the namespace credential references resolve in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreScope {
    /// `SecretStore` or `ClusterSecretStore`.
    pub kind: String,
    /// Store name.
    pub name: String,
    /// The namespace of a `SecretStore`, or the ExternalSecret's namespace for a
    /// `ClusterSecretStore` (referent auth).
    pub namespace: Option<String>,
    /// Whether the store may authenticate as the controller itself (its own ServiceAccount
    /// token, its default cloud credentials). A ClusterSecretStore may: its author is a cluster
    /// admin. A SecretStore's author is whoever may write in one namespace, so it may not, unless
    /// the operator restores that with `--secret-stores-use-controller-identity`.
    pub controller_identity: bool,
}

impl StoreScope {
    /// A scope of `kind` (`SecretStore`, `ClusterSecretStore`); only a ClusterSecretStore may
    /// use the controller's own identity.
    pub fn new(kind: &str, name: &str, namespace: Option<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace,
            controller_identity: kind == "ClusterSecretStore",
        }
    }

    /// `Ok` when the store may authenticate as the controller itself; otherwise an error naming
    /// `field` (the spec field that left the credentials out) and what to set instead.
    pub fn allow_controller_identity(
        &self,
        field: &str,
        instead: &str,
    ) -> Result<(), ProviderError> {
        if self.controller_identity {
            return Ok(());
        }
        Err(ProviderError::Invalid(format!(
            "{field}: a {} may not authenticate as the controller itself (its own ServiceAccount \
             token or cloud credentials); set {instead} with credentials of its own namespace, or \
             use a ClusterSecretStore",
            self.kind
        )))
    }
}

/// A built provider with the identity of its credentials (part of the cache key).
#[derive(Clone, Debug)]
pub struct Built {
    /// The provider.
    pub provider: Arc<dyn SecretProvider>,
    /// A digest of the resolved credentials and the provider spec: two stores (or two
    /// namespaces of referent auth) with different credentials never share reads.
    pub identity: String,
    /// True when credentials were resolved in the ExternalSecret's namespace (referent auth
    /// of a ClusterSecretStore).
    pub referent: bool,
}

/// Builds providers of one kind (one entry of ESO's provider union).
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// The key of the provider in `spec.provider` (`vault`, `openbao`, `aws`).
    fn name(&self) -> &'static str;
    /// Decodes `spec` (the value under the key) and builds a provider, resolving credentials.
    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError>;
}

/// The operator's settings of providers (the controller's flags) and where they count calls.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Budgets of `webhook` stores.
    pub webhook: webhook::Limits,
    /// Budgets of `kubernetes` stores.
    pub kubernetes: kubernetes::Limits,
    /// Where every provider built counts its API calls (the controller's metrics).
    pub calls: calls::Calls,
}

/// Every provider compiled in, with default [`Settings`].
pub fn registry() -> Vec<Arc<dyn ProviderFactory>> {
    registry_with(&Settings::default())
}

/// Every provider compiled in: the one registration list (ESO's `pkg/register`).
#[allow(unused_mut, clippy::vec_init_then_push)]
pub fn registry_with(settings: &Settings) -> Vec<Arc<dyn ProviderFactory>> {
    let mut r: Vec<Arc<dyn ProviderFactory>> = Vec::new();
    #[cfg(feature = "vault")]
    r.push(Arc::new(vault::Factory::vault(settings.calls.clone())));
    #[cfg(feature = "vault")]
    r.push(Arc::new(vault::Factory::openbao(settings.calls.clone())));
    #[cfg(feature = "aws")]
    r.push(Arc::new(aws::Factory {
        calls: settings.calls.clone(),
    }));
    #[cfg(feature = "gcp")]
    r.push(Arc::new(gcpsm::Factory {
        calls: settings.calls.clone(),
    }));
    #[cfg(feature = "azure")]
    r.push(Arc::new(azurekv::Factory {
        calls: settings.calls.clone(),
    }));
    r.push(Arc::new(fake::Factory::default()));
    r.push(Arc::new(kubernetes::Factory {
        limits: settings.kubernetes,
        calls: settings.calls.clone(),
    }));
    r.push(Arc::new(webhook::Factory {
        limits: settings.webhook,
        calls: settings.calls.clone(),
    }));
    r
}

/// Picks the factory for a store's `spec.provider` block: exactly one key must be set.
pub fn select<'a>(
    factories: &'a [Arc<dyn ProviderFactory>],
    provider: &'a Value,
) -> Result<(&'a Arc<dyn ProviderFactory>, &'a Value), ProviderError> {
    let obj = provider
        .as_object()
        .ok_or_else(|| ProviderError::Invalid("spec.provider must be an object".into()))?;
    let set: Vec<(&String, &Value)> = obj.iter().filter(|(_, v)| !v.is_null()).collect();
    let [(name, spec)] = set.as_slice() else {
        return Err(ProviderError::Invalid(format!(
            "spec.provider must set exactly one provider, found {}",
            set.len()
        )));
    };
    let factory = factories
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ProviderError::Invalid(format!("provider {name:?} is not supported by hush"))
        })?;
    Ok((factory, spec))
}

/// True when a ClusterSecretStore provider spec (the value under the provider key) names a
/// credential (`auth`, client `tls`) without a namespace: ESO's referent auth, resolved in each
/// ExternalSecret's namespace (so clients and reads are cached per namespace).
pub fn auth_is_referent(spec: &Value) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Object(o) => {
                let selector = o.get("name").is_some_and(Value::is_string)
                    && !o.contains_key("type")
                    && o.get("namespace")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty);
                selector || o.values().any(walk)
            }
            Value::Array(a) => a.iter().any(walk),
            _ => false,
        }
    }
    // azurekv names its credentials at the top level (`authSecretRef`, `serviceAccountRef`).
    ["auth", "tls", "authSecretRef", "serviceAccountRef"]
        .iter()
        .any(|field| walk(&spec[*field]))
}

/// sha256 hex over length-prefixed parts (credential identities; never reversible to values
/// of useful entropy, never logged).
pub fn digest(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Refuses a provider spec object with a field hush does not implement, naming it
/// (`<path>.<field>`): a field hush accepts is honoured, never silently ignored. `null` members
/// count as unset.
pub fn refuse_unknown_fields(path: &str, v: &Value, known: &[&str]) -> Result<(), ProviderError> {
    let Some(o) = v.as_object() else {
        return Ok(());
    };
    match o
        .iter()
        .find(|(k, x)| !x.is_null() && !known.contains(&k.as_str()))
    {
        Some((k, _)) => Err(ProviderError::Invalid(format!(
            "{path}.{k} is not supported by hush (supported: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Go's `time.ParseDuration` for the non-negative durations stores write (`10s`, `1m30s`,
/// `1.5h`); `None` when `text` is not one.
pub(crate) fn go_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

/// Decodes a provider spec with a clear error.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    spec: &Value,
) -> Result<T, ProviderError> {
    serde_json::from_value(spec.clone())
        .map_err(|e| ProviderError::Invalid(format!("invalid {what} provider spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn select_wants_exactly_one_known_provider() {
        let r = registry();
        let spec = json!({"vault": {"server": "http://x"}});
        assert_eq!(select(&r, &spec).unwrap().0.name(), "vault");
        let spec = json!({"openbao": {"server": "http://x"}});
        assert_eq!(select(&r, &spec).unwrap().0.name(), "openbao");
        for bad in [
            json!({}),
            json!({"vault": {}, "aws": {}}),
            json!({"alibaba": {}}),
            json!("vault"),
        ] {
            assert!(
                matches!(select(&r, &bad), Err(ProviderError::Invalid(_))),
                "{bad}"
            );
        }
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert!(auth_is_referent(
            &json!({"auth": {"tokenSecretRef": {"name": "t", "key": "k"}}})
        ));
        assert!(!auth_is_referent(
            &json!({"auth": {"tokenSecretRef": {"name": "t", "key": "k", "namespace": "v"}}})
        ));
        assert!(!auth_is_referent(&json!({"server": "x"})));
        // A client certificate of the ExternalSecret's namespace is referent too: a client built
        // with one namespace's certificate must not serve another namespace.
        assert!(auth_is_referent(
            &json!({"tls": {"certSecretRef": {"name": "c"}, "keySecretRef": {"name": "k"}}})
        ));
        // azurekv's credentials sit at the top level: a client id or a ServiceAccount of the
        // ExternalSecret's namespace is referent (a client of one namespace's application must
        // not serve another namespace).
        assert!(auth_is_referent(
            &json!({"vaultUrl": "https://v", "authSecretRef": {"clientId": {"name": "sp", "key": "id"}}})
        ));
        assert!(auth_is_referent(
            &json!({"authType": "WorkloadIdentity", "serviceAccountRef": {"name": "sa"}})
        ));
        assert!(!auth_is_referent(
            &json!({"serviceAccountRef": {"name": "sa", "namespace": "ops"}})
        ));
    }
}
