//! HashiCorp Vault / OpenBao transit keys as sops uses them (`getsops/sops:hcvault/keysource.go`).
//!
//! - Wrap: `POST <vault_address>/v1/<engine_path>/encrypt/<key_name>` with
//!   `{"plaintext": base64(data key)}`; [`WrappedKey::body`] is the returned ciphertext string
//!   (`vault:v1:…`), exactly the sops metadata `enc`.
//! - Unwrap: `POST …/decrypt/<key_name>` with `{"ciphertext": enc}`; the base64 plaintext is
//!   decoded.
//! - [`WrappedKey::key_id`] is `<vault_address>/v1/<engine_path>/keys/<key_name>`, the form of
//!   `--hc-vault-transit` and of `.sops.yaml` `hc_vault_transit_uri`.
//! - Token: `VAULT_TOKEN`, else `~/.vault-token` (what the Vault client sops uses reads);
//!   `VAULT_NAMESPACE` is sent as `X-Vault-Namespace`. An empty `vault_address` in the metadata
//!   falls back to `VAULT_ADDR`.
//! - TLS as the Vault client sops uses configures it ([`VaultTls::from_env`]): `VAULT_CACERT` /
//!   `VAULT_CAPATH` (these roots only), `VAULT_CLIENT_CERT` + `VAULT_CLIENT_KEY`,
//!   `VAULT_SKIP_VERIFY`.
//!
//! sops binds nothing to the wrapping, so the `aad` argument of [`KeyService`] is ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// Type id of Vault transit keys; the sops metadata key.
pub const TYPE_ID: &str = "hc_vault";

fn config_error(message: impl Into<String>) -> KeyError {
    KeyError::Config {
        type_id: TYPE_ID.into(),
        message: message.into(),
    }
}

/// A Vault token (the shared `hush-vault` type): zeroized on drop, `Debug` redacted.
pub use hush_vault::VaultToken;

/// `VAULT_TOKEN`, else the token file `~/.vault-token` (what the Vault client sops uses
/// reads). `Ok(None)` when neither exists.
pub fn token_from_env() -> Result<Option<VaultToken>, KeyError> {
    if let Ok(token) = std::env::var("VAULT_TOKEN")
        && !token.is_empty()
    {
        return Ok(Some(VaultToken::new(token)));
    }
    match std::env::var_os("HOME") {
        Some(home) => token_from_file(&Path::new(&home).join(".vault-token")),
        None => Ok(None),
    }
}

/// The token in `path` (surrounding whitespace trimmed). `Ok(None)` if the file is missing.
pub fn token_from_file(path: &Path) -> Result<Option<VaultToken>, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| config_error(format!("token file {} is not UTF-8", path.display())))?;
            let text = text.trim();
            if text.is_empty() {
                Ok(None)
            } else {
                Ok(Some(VaultToken::new(text)))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(config_error(format!(
            "cannot read token file {}: {e}",
            path.display()
        ))),
    }
}

/// TLS settings of the Vault client.
#[derive(Debug, Clone, Default)]
pub struct VaultTls {
    /// `VAULT_CACERT`: a PEM bundle; when set (or `ca_path`), only these roots are trusted.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_CAPATH`: a directory of PEM files.
    pub ca_path: Option<PathBuf>,
    /// `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`: PEM files for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `VAULT_SKIP_VERIFY`: do not verify the server certificate.
    pub skip_verify: bool,
}

impl VaultTls {
    /// The `VAULT_*` TLS variables.
    pub fn from_env() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            ca_cert: path("VAULT_CACERT"),
            ca_path: path("VAULT_CAPATH"),
            client_cert: path("VAULT_CLIENT_CERT").zip(path("VAULT_CLIENT_KEY")),
            // Go's strconv.ParseBool.
            skip_verify: std::env::var("VAULT_SKIP_VERIFY")
                .is_ok_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")),
        }
    }

    /// A client with these settings. Errors name the variable whose file is unusable.
    pub fn client(&self) -> Result<reqwest::Client, KeyError> {
        let mut builder = reqwest::Client::builder();
        let mut roots = Vec::new();
        let mut add_pem = |path: &Path, var: &str| -> Result<(), KeyError> {
            let bytes = std::fs::read(path)
                .map_err(|e| config_error(format!("{var} {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&bytes).map_err(|e| {
                config_error(format!(
                    "{var} {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            roots.extend(certs);
            Ok(())
        };
        if let Some(file) = &self.ca_cert {
            add_pem(file, "VAULT_CACERT")?;
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| config_error(format!("VAULT_CAPATH {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    add_pem(&entry.path(), "VAULT_CAPATH")?;
                }
            }
        }
        if self.ca_cert.is_some() || self.ca_path.is_some() {
            if roots.is_empty() {
                return Err(config_error(
                    "VAULT_CACERT/VAULT_CAPATH hold no certificate",
                ));
            }
            builder = builder.tls_certs_only(roots);
        }
        if let Some((cert, key)) = &self.client_cert {
            let mut pem =
                Zeroizing::new(std::fs::read(cert).map_err(|e| {
                    config_error(format!("VAULT_CLIENT_CERT {}: {e}", cert.display()))
                })?);
            let key_pem =
                Zeroizing::new(std::fs::read(key).map_err(|e| {
                    config_error(format!("VAULT_CLIENT_KEY {}: {e}", key.display()))
                })?);
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| config_error(format!("VAULT_CLIENT_CERT/VAULT_CLIENT_KEY: {e}")))?;
            builder = builder.identity(identity);
        }
        if self.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))
    }
}

/// One Vault transit key as a sops master key.
#[derive(Clone)]
pub struct VaultTransitKey {
    address: String,
    engine_path: String,
    key_name: String,
    token: Option<VaultToken>,
    namespace: Option<String>,
    client: reqwest::Client,
}

impl fmt::Debug for VaultTransitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultTransitKey")
            .field("key_id", &self.key_id())
            .field("token", &self.token)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl VaultTransitKey {
    /// From the sops metadata fields `vault_address`, `engine_path` and `key_name`. An empty
    /// address falls back to `VAULT_ADDR`; TLS settings come from [`VaultTls::from_env`].
    pub fn from_metadata(
        vault_address: &str,
        engine_path: &str,
        key_name: &str,
    ) -> Result<Self, KeyError> {
        let address = if vault_address.is_empty() {
            std::env::var("VAULT_ADDR")
                .map_err(|_| config_error("vault_address is empty and VAULT_ADDR is not set"))?
        } else {
            vault_address.to_owned()
        };
        let address = address.trim_end_matches('/').to_owned();
        let engine_path = engine_path.trim_matches('/').to_owned();
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(config_error(format!(
                "vault address {address:?} must start with http:// or https://"
            )));
        }
        if engine_path.is_empty() || key_name.is_empty() || key_name.contains('/') {
            return Err(config_error(format!(
                "invalid engine path {engine_path:?} or key name {key_name:?}"
            )));
        }
        Ok(Self {
            address,
            engine_path,
            key_name: key_name.to_owned(),
            token: None,
            namespace: std::env::var("VAULT_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty()),
            client: VaultTls::from_env().client()?,
        })
    }

    /// From a URI `https://vault.example.com:8200/v1/<engine path>/keys/<key name>` (the
    /// `--hc-vault-transit` flag, `.sops.yaml` `hc_vault_transit_uri`), parsed as sops does.
    pub fn from_uri(uri: &str) -> Result<Self, KeyError> {
        let uri = uri.trim();
        let example = "should be like https://vault.example.com:8200/v1/transit/keys/keyName";
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            config_error(format!("missing scheme in Vault URL {uri:?} ({example})"))
        })?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || path.contains(['?', '#']) {
            return Err(config_error(format!(
                "invalid Vault URL {uri:?} ({example})"
            )));
        }
        let dirs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let versioned = dirs.first().is_some_and(|d| {
            d.len() > 1 && d.starts_with('v') && d[1..].bytes().all(|b| b.is_ascii_digit())
        });
        if !versioned || dirs.len() < 4 || dirs.iter().any(|d| d.is_empty()) {
            return Err(config_error(format!(
                "Vault path of {uri:?} is not formatted correctly ({example}; a prefixed URL is not supported)"
            )));
        }
        let key_name = dirs[dirs.len() - 1];
        let engine_path = dirs[1..dirs.len() - 2].join("/");
        Self::from_metadata(&format!("{scheme}://{authority}"), &engine_path, key_name)
    }

    /// From a comma-separated list of URIs (`--hc-vault-transit a,b`).
    pub fn parse_list(list: &str) -> Result<Vec<Self>, KeyError> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        list.split(',').map(Self::from_uri).collect()
    }

    /// Uses `token` instead of resolving `VAULT_TOKEN` / `~/.vault-token` at call time.
    #[must_use]
    pub fn with_token(mut self, token: VaultToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Sends `namespace` as `X-Vault-Namespace` (default: `VAULT_NAMESPACE`).
    #[must_use]
    pub fn with_namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }

    /// Uses these TLS settings instead of the `VAULT_*` variables.
    pub fn with_tls(mut self, tls: &VaultTls) -> Result<Self, KeyError> {
        self.client = tls.client()?;
        Ok(self)
    }

    /// Uses `client` for requests (shared connection pool, custom TLS roots).
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// The `vault_address` metadata field.
    pub fn vault_address(&self) -> &str {
        &self.address
    }

    /// The `engine_path` metadata field.
    pub fn engine_path(&self) -> &str {
        &self.engine_path
    }

    /// The `key_name` metadata field.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    fn service_error(&self, message: impl Into<String>) -> KeyError {
        KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: self.key_id(),
            message: message.into(),
        }
    }

    fn token(&self) -> Result<VaultToken, KeyError> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        token_from_env()?.ok_or_else(|| {
            self.service_error("no Vault token: set VAULT_TOKEN or write ~/.vault-token")
        })
    }

    /// The shared Vault client for this key's address and HTTP client.
    fn vault(&self) -> Result<hush_vault::Client, KeyError> {
        Ok(
            hush_vault::Client::new(&self.address, hush_vault::ClientOptions::default())
                .map_err(|e| self.service_error(e.to_string()))?
                .with_http(self.client.clone()),
        )
    }

    /// POSTs `body` to `<address>/v1/<engine>/<operation>/<key>` and returns `data.<field>`.
    async fn call(
        &self,
        operation: &str,
        body: Zeroizing<Vec<u8>>,
        field: &str,
    ) -> Result<Zeroizing<String>, KeyError> {
        let token = self.token()?;
        let path = format!("{}/{operation}/{}", self.engine_path, self.key_name);
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| self.service_error(format!("encoding request: {e}")))?;
        // Vault's errors are messages about the request, never key material.
        let parsed = self
            .vault()?
            .request(
                hush_vault::Method::Post,
                &path,
                Some(&token),
                Some(&body),
                self.namespace.as_deref(),
            )
            .await
            .map_err(|e| self.service_error(transit_error(operation, &e)))?
            .ok_or_else(|| self.service_error(format!("{operation}: empty response")))?;
        let value = parsed["data"][field].as_str().ok_or_else(|| {
            self.service_error(format!("{operation}: response has no data.{field}"))
        })?;
        Ok(Zeroizing::new(value.to_owned()))
    }
}

/// The message of a failed transit call, in the words sops users know.
fn transit_error(operation: &str, e: &hush_vault::VaultError) -> String {
    match e {
        hush_vault::VaultError::Transport { message, .. } => {
            format!("{operation} request failed: {message}")
        }
        hush_vault::VaultError::Api { status, errors, .. } => {
            format!("{operation} failed: HTTP {status}: {errors}")
        }
        other => format!("{operation}: {other}"),
    }
}

#[async_trait]
impl KeyService for VaultTransitKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        format!(
            "{}/v1/{}/keys/{}",
            self.address, self.engine_path, self.key_name
        )
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let plaintext = Zeroizing::new(B64.encode(key.expose()));
        let body = Zeroizing::new(
            serde_json::to_vec(&json!({ "plaintext": plaintext.as_str() }))
                .map_err(|e| self.service_error(format!("encoding request: {e}")))?,
        );
        let ciphertext = self.call("encrypt", body, "ciphertext").await?;
        Ok(WrappedKey::new(
            TYPE_ID,
            self.key_id(),
            ciphertext.as_bytes().to_vec(),
        ))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != TYPE_ID
            || (!wrapped.key_id.is_empty() && wrapped.key_id != self.key_id())
        {
            return Ok(None);
        }
        let ciphertext = std::str::from_utf8(&wrapped.body)
            .map_err(|_| self.service_error("wrapped key is not text"))?;
        let body = Zeroizing::new(
            serde_json::to_vec(&json!({ "ciphertext": ciphertext }))
                .map_err(|e| self.service_error(format!("encoding request: {e}")))?,
        );
        let plaintext = self.call("decrypt", body, "plaintext").await?;
        let key = B64
            .decode(plaintext.as_bytes())
            .map_err(|_| self.service_error("decrypt: plaintext is not base64"))?;
        Ok(Some(SecretBytes::new(key)))
    }
}

/// The Vault addresses an operator configured: only these receive a token for a file's
/// `hc_vault` key. Compared by origin (scheme, host, port).
#[derive(Debug, Clone, Default)]
pub struct AllowedAddresses {
    origins: Vec<String>,
}

impl AllowedAddresses {
    /// From the configured addresses (empty ones skipped); `Err` names an address that is not
    /// an http(s) URL without credentials.
    pub fn new<S: AsRef<str>>(addresses: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut origins = Vec::new();
        for a in addresses {
            let a = a.as_ref().trim();
            if a.is_empty() {
                continue;
            }
            origins.push(origin(a).ok_or_else(|| a.to_owned())?);
        }
        Ok(Self { origins })
    }

    /// Whether a token may be sent to `address`.
    pub fn allows(&self, address: &str) -> bool {
        origin(address).is_some_and(|o| self.origins.contains(&o))
    }
}

/// `scheme://host:port` of an http(s) URL without user info (`https://ok@evil` is evil's).
fn origin(address: &str) -> Option<String> {
    let url = reqwest::Url::parse(address.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
}

/// The render's rule for `hc_vault` keys: a file's `vault_address` is written by whoever writes
/// the repository, the token is the operator's. When set in [`crate::sources::KeySources`], a key
/// gets `token` only at an [`AllowedAddresses`] address; any other fails without a request.
/// Unset, keys resolve `VAULT_TOKEN` / `~/.vault-token` themselves, as sops.
#[derive(Debug, Clone, Default)]
pub struct TokenPolicy {
    /// The token (`VAULT_TOKEN`, Flux's `sops.vault-token`).
    pub token: Option<VaultToken>,
    /// Where it may be sent.
    pub allowed: AllowedAddresses,
}

/// An `hc_vault` key whose address the operator did not configure: it never calls Vault; its
/// unwrap fails with an error naming the address (the file name is added by the caller).
#[derive(Debug)]
struct RefusedVaultKey {
    key_id: String,
    address: String,
}

#[async_trait]
impl KeyService for RefusedVaultKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    async fn wrap(&self, _key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        Err(self.refusal("wrap"))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != self.type_id()
            || (!wrapped.key_id.is_empty() && wrapped.key_id != self.key_id)
        {
            return Ok(None);
        }
        Err(self.refusal("unwrap"))
    }
}

impl RefusedVaultKey {
    fn refusal(&self, operation: &'static str) -> KeyError {
        KeyError::Unsupported {
            type_id: TYPE_ID.into(),
            key_id: self.key_id.clone(),
            operation,
            reason: format!(
                "vault_address {:?} is not a Vault address the plugin is configured for \
                 (VAULT_ADDR, HUSH_SOPS_VAULT_ADDRS), so no token is sent to it",
                self.address
            ),
        }
    }
}

/// The [`crate::kinds::KINDS`] row's builder.
pub(crate) fn build(
    entry: &dyn crate::sources::EntryFields,
    sources: &crate::sources::KeySources,
) -> Result<Option<std::sync::Arc<dyn KeyService>>, KeyError> {
    let key = VaultTransitKey::from_metadata(
        entry.field("vault_address"),
        entry.field("engine_path"),
        entry.field("key_name"),
    )?;
    let Some(policy) = sources.get::<TokenPolicy>(TYPE_ID) else {
        return Ok(Some(std::sync::Arc::new(key)));
    };
    if !policy.allowed.allows(key.vault_address()) {
        return Ok(Some(std::sync::Arc::new(RefusedVaultKey {
            key_id: key.key_id(),
            address: key.vault_address().to_owned(),
        })));
    }
    Ok(Some(match &policy.token {
        Some(t) => std::sync::Arc::new(key.with_token(t.clone())),
        None => std::sync::Arc::new(key),
    }))
}

/// Flux's `sops.vault-token`: the token, surrounding whitespace trimmed (an empty file is none).
pub(crate) fn load_flux_file(
    sources: &mut crate::sources::KeySources,
    file: &crate::sources::FluxFile<'_>,
) -> Result<(), KeyError> {
    let token = file.text.trim();
    if !token.is_empty() {
        sources.update(TYPE_ID, |policy: &mut TokenPolicy| {
            policy.token = Some(VaultToken::new(token));
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris_like_sops() {
        let k =
            VaultTransitKey::from_uri("https://vault.example.com:8200/v1/transit/keys/k1").unwrap();
        assert_eq!(k.vault_address(), "https://vault.example.com:8200");
        assert_eq!(k.engine_path(), "transit");
        assert_eq!(k.key_name(), "k1");
        assert_eq!(
            k.key_id(),
            "https://vault.example.com:8200/v1/transit/keys/k1"
        );
        let k =
            VaultTransitKey::from_uri("http://127.0.0.1:8200/v1/team/a/transit/keys/k2/").unwrap();
        assert_eq!(k.engine_path(), "team/a/transit");
        assert_eq!(k.key_name(), "k2");
        let list =
            VaultTransitKey::parse_list("https://a:1/v1/sops/keys/x,https://b:2/v1/transit/keys/y")
                .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].key_id(), "https://b:2/v1/transit/keys/y");
        for bad in [
            "vault.example.com/v1/transit/keys/k",
            "https://vault.example.com:8200/transit/keys/k",
            "https://vault.example.com:8200/v1/keys/k",
            "https://vault.example.com:8200/v1/transit//k",
            "https://vault.example.com:8200/v1/transit/keys/k?x=1",
            "ftp://vault.example.com/v1/transit/keys/k",
            "https:///v1/transit/keys/k",
            "",
        ] {
            assert!(VaultTransitKey::from_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_file_and_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".vault-token");
        assert!(token_from_file(&path).unwrap().is_none());
        std::fs::write(&path, "  s.secret-token\n").unwrap();
        let token = token_from_file(&path).unwrap().unwrap();
        assert_eq!(token.expose(), "s.secret-token");
        let key = VaultTransitKey::from_metadata("http://127.0.0.1:1", "transit", "k")
            .unwrap()
            .with_token(token);
        let debug = format!("{key:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
    }

    #[tokio::test]
    async fn unreachable_server_is_an_error_without_secrets() {
        // Port 1 on loopback: connection refused.
        let key = VaultTransitKey::from_metadata("http://127.0.0.1:1", "transit", "k")
            .unwrap()
            .with_token(VaultToken::new("s.top-secret"));
        let err = key
            .wrap(&SecretBytes::from_slice(&[9u8; 32]), b"")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("encrypt request failed"), "{err}");
        assert!(!err.contains("top-secret"), "{err}");
        // Not addressed to this key: no request at all.
        let other = WrappedKey::new(TYPE_ID, "http://other:1/v1/transit/keys/k", b"x".to_vec());
        assert!(key.unwrap(&other, b"").await.unwrap().is_none());
    }
}
