//! The one Azure client of hush, shared by the sops `azure_kv` key service (`hush-keys`) and
//! the ExternalSecret `azurekv` provider (`hush-sync`).
//!
//! - [`credential`]: Microsoft Entra ID client credentials (secret, certificate, workload
//!   identity's federated token file) and a token cache per credential.
//! - [`Cloud`]: the authority host and Key Vault domain of an Azure cloud, overridable by the
//!   operator (`AZURE_AUTHORITY_HOST`, `HUSH_AZURE_VAULT_DOMAIN`, `HUSH_AZURE_CA_FILE`) for
//!   private endpoints and test servers.
//! - [`VaultClient`]: Key Vault secrets (get, list) and keys (wrap, unwrap) over REST
//!   (api-version 7.4). A vault URL outside the cloud's Key Vault domain is refused: a token is
//!   sent only to a vault the cloud would accept it for.
//!
//! Errors name vaults, objects and Azure's error codes, never a token, secret or value.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod credential;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub use credential::{
    Credential, IMDS_TOKEN_URL, ManagedIdentity, Secret, TOKEN_EXCHANGE_AUDIENCE, TokenSource,
    imds_endpoint_from_env,
};
/// Called after each API call with its name (`GetSecret`, `ListSecrets`, `WrapKey`,
/// `UnwrapKey`, `GetToken`) and whether it succeeded.
pub use hush_cloud::CallObserver;
pub use hush_cloud::{AccessToken, CallError, CloudError};
pub use hush_cloud::{SubjectTokenFuture, SubjectTokenSource};

/// Most pages one listing reads (25 items a page by default).
const MAX_PAGES: usize = 1000;
/// The Key Vault REST API version.
const API_VERSION: &str = "7.4";

/// Errors of Azure calls. No variant holds a token, a client secret or a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzureError {
    /// Bad configuration (a vault URL, a tenant id, an object name).
    #[error("azure configuration: {0}")]
    Config(String),
    /// The credentials could not be used.
    #[error("azure credentials: {0}")]
    Credentials(String),
    /// A call failed: not sent, an error status, or an answer Azure does not send.
    #[error("azure {operation}: {error}")]
    Call {
        /// What was being done.
        operation: String,
        /// What went wrong (Azure's error code, `SecretNotFound`, `invalid_client`, as the code).
        error: CallError,
    },
}

// The same constructor and `CloudError` impl stand in hush-gcp, deliberately: each client keeps
// its own error type, whose messages name its cloud; what they answer alike is `CloudError`'s
// default methods (hush-cloud).
impl AzureError {
    /// A failed call while doing `operation`.
    pub fn call(operation: impl Into<String>, error: CallError) -> Self {
        Self::Call {
            operation: operation.into(),
            error,
        }
    }
}

impl CloudError for AzureError {
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

/// An Azure cloud: where tokens come from and which hosts are its key vaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// Entra ID's authority host (`https://login.microsoftonline.com`).
    pub authority_host: String,
    /// Key Vault's DNS domain (`vault.azure.net`); vault hosts are `<name>.<domain>`.
    pub vault_domain: String,
    /// Key Vault's token audience in this cloud (`https://vault.azure.net`).
    pub vault_resource: String,
    /// PEM CA certificates trusted besides the system roots (a private CA, a test server).
    pub ca_pem: Option<Vec<u8>>,
}

impl Cloud {
    /// ESO's `environmentType` (`PublicCloud` when empty, `USGovernmentCloud`, `ChinaCloud`),
    /// then the operator's environment: `AZURE_AUTHORITY_HOST` (azure-identity's variable) and
    /// `HUSH_AZURE_VAULT_DOMAIN` (a host[:port] that is a vault itself or whose subdomains are).
    pub fn from_env(environment_type: &str) -> Result<Self, AzureError> {
        let (authority, domain) = match environment_type {
            "" | "PublicCloud" => ("https://login.microsoftonline.com", "vault.azure.net"),
            "USGovernmentCloud" => (
                "https://login.microsoftonline.us",
                "vault.usgovcloudapi.net",
            ),
            "ChinaCloud" => ("https://login.chinacloudapi.cn", "vault.azure.cn"),
            other => {
                return Err(AzureError::Config(format!(
                    "environmentType {other:?} is not supported (PublicCloud, USGovernmentCloud, ChinaCloud)"
                )));
            }
        };
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let ca_pem = match std::env::var_os("HUSH_AZURE_CA_FILE").filter(|v| !v.is_empty()) {
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                AzureError::Config(format!(
                    "HUSH_AZURE_CA_FILE {}: {e}",
                    std::path::Path::new(&path).display()
                ))
            })?),
            None => None,
        };
        Ok(Self {
            authority_host: var("AZURE_AUTHORITY_HOST", authority),
            vault_domain: var("HUSH_AZURE_VAULT_DOMAIN", domain),
            vault_resource: format!("https://{domain}"),
            ca_pem,
        })
    }

    /// An HTTP client for this cloud (30 s timeout; the system roots and [`Cloud::ca_pem`]).
    pub fn http_client(&self) -> Result<reqwest::Client, AzureError> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(ca) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| AzureError::Config("the CA file holds no PEM certificate".into()))?;
            builder = builder.tls_certs_merge(certs);
        }
        builder
            .build()
            .map_err(|e| AzureError::Config(format!("cannot build HTTP client: {e}")))
    }

    /// The token scope of Key Vault in this cloud (`https://vault.azure.net/.default`).
    pub fn vault_scope(&self) -> String {
        format!("{}/.default", self.vault_resource)
    }
}

/// A Key Vault secret version.
pub struct SecretBundle {
    /// The value.
    pub value: Zeroizing<String>,
    /// The version id.
    pub version: String,
    /// `tags`.
    pub tags: BTreeMap<String, String>,
    /// `contentType`.
    pub content_type: Option<String>,
}

impl std::fmt::Debug for SecretBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBundle")
            .field("value", &"<redacted>")
            .field("version", &self.version)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// A secret in a listing (no value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretItem {
    /// The secret name.
    pub name: String,
    /// `tags`.
    pub tags: BTreeMap<String, String>,
    /// `attributes.enabled`.
    pub enabled: bool,
}

/// One vault reached as one application.
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    vault_url: String,
    tokens: Arc<TokenSource>,
    observer: Option<CallObserver>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("vault_url", &self.vault_url)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// A client of the vault at `vault_url` (`https://<name>.vault.azure.net`), which must be
    /// in `cloud`'s Key Vault domain, with tokens from `tokens`.
    pub fn new(
        http: reqwest::Client,
        vault_url: &str,
        cloud: &Cloud,
        tokens: Arc<TokenSource>,
        observer: Option<CallObserver>,
    ) -> Result<Self, AzureError> {
        let vault_url = check_vault_url(vault_url, &cloud.vault_domain)?;
        Ok(Self {
            http,
            vault_url,
            tokens,
            observer,
        })
    }

    /// The token source (shared by clones of this client).
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// The vault URL (`https://host`, no trailing slash).
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// Secret `name` at `version` (empty = the current one). A disabled version is an
    /// error answer 403 `Forbidden`.
    pub async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError> {
        check_name("secret", name)?;
        if !version.is_empty() {
            check_name("version", version)?;
        }
        let url = format!(
            "{}/secrets/{name}/{version}?api-version={API_VERSION}",
            self.vault_url
        );
        // serde_json values cannot be zeroized; the value taken out of it is.
        let answer = self
            .call(
                "GetSecret",
                &format!("get secret {name}"),
                reqwest::Method::GET,
                &url,
                None,
            )
            .await?;
        let value = answer["value"].as_str().ok_or_else(|| {
            AzureError::call(
                format!("get secret {name}"),
                CallError::decode("the answer has no value"),
            )
        })?;
        Ok(SecretBundle {
            value: Zeroizing::new(value.to_owned()),
            version: last_segment(answer["id"].as_str().unwrap_or_default()),
            tags: tags(&answer["tags"]),
            content_type: answer["contentType"].as_str().map(str::to_owned),
        })
    }

    /// Key `name` at `version` (empty = current) as ESO returns a `key/` object: the JSON Web
    /// Key as Go's `json.Marshal` writes the SDK's `JSONWebKey` (its fields in struct order),
    /// and the key's tags.
    pub async fn get_key(
        &self,
        name: &str,
        version: &str,
    ) -> Result<(String, BTreeMap<String, String>), AzureError> {
        check_name("key", name)?;
        if !version.is_empty() {
            check_name("version", version)?;
        }
        let url = format!(
            "{}/keys/{name}/{version}?api-version={API_VERSION}",
            self.vault_url
        );
        let operation = format!("get key {name}");
        let answer = self
            .call("GetKey", &operation, reqwest::Method::GET, &url, None)
            .await?;
        let key = answer["key"].as_object().ok_or_else(|| {
            AzureError::call(&operation, CallError::decode("the answer has no key"))
        })?;
        const ORDER: [&str; 16] = [
            "kid", "kty", "key_ops", "n", "e", "d", "dp", "dq", "qi", "p", "q", "k", "key_hsm",
            "crv", "x", "y",
        ];
        let fields: Vec<String> = ORDER
            .iter()
            .filter_map(|f| Some(format!("{}:{}", json!(f), key.get(*f)?)))
            .collect();
        Ok((format!("{{{}}}", fields.join(",")), tags(&answer["tags"])))
    }

    /// Certificate `name` at `version` (empty = current): its DER bytes (`cer`), what ESO
    /// returns for a `cert/` object, and the certificate's tags.
    pub async fn get_certificate(
        &self,
        name: &str,
        version: &str,
    ) -> Result<(Vec<u8>, BTreeMap<String, String>), AzureError> {
        check_name("certificate", name)?;
        if !version.is_empty() {
            check_name("version", version)?;
        }
        let url = format!(
            "{}/certificates/{name}/{version}?api-version={API_VERSION}",
            self.vault_url
        );
        let operation = format!("get certificate {name}");
        let answer = self
            .call(
                "GetCertificate",
                &operation,
                reqwest::Method::GET,
                &url,
                None,
            )
            .await?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(answer["cer"].as_str().unwrap_or_default())
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                AzureError::call(operation, CallError::decode("the answer has no base64 cer"))
            })?;
        Ok((der, tags(&answer["tags"])))
    }

    /// Every secret of the vault (names, tags, enabled), following `nextLink` within the vault.
    pub async fn list_secrets(&self) -> Result<Vec<SecretItem>, AzureError> {
        let mut out = Vec::new();
        let mut url = format!("{}/secrets?api-version={API_VERSION}", self.vault_url);
        for _ in 0..MAX_PAGES {
            let answer = self
                .call(
                    "ListSecrets",
                    "list secrets",
                    reqwest::Method::GET,
                    &url,
                    None,
                )
                .await?;
            for item in answer["value"].as_array().into_iter().flatten() {
                out.push(SecretItem {
                    name: last_segment(item["id"].as_str().unwrap_or_default()),
                    tags: tags(&item["tags"]),
                    enabled: item["attributes"]["enabled"].as_bool().unwrap_or(true),
                });
            }
            match answer["nextLink"].as_str().filter(|l| !l.is_empty()) {
                None => return Ok(out),
                // The token goes only to this vault, whatever a page says.
                Some(next) if next.starts_with(&format!("{}/", self.vault_url)) => {
                    url = next.to_owned();
                }
                Some(_) => {
                    return Err(AzureError::call(
                        "list secrets",
                        CallError::decode("nextLink points outside the vault"),
                    ));
                }
            }
        }
        Err(AzureError::call(
            "list secrets",
            CallError::decode(format!("more than {MAX_PAGES} pages")),
        ))
    }

    /// `wrapkey` with key `name` at `version` (empty = current), algorithm `alg`
    /// (`RSA-OAEP-256`): the wrapped bytes.
    pub async fn wrap_key(
        &self,
        name: &str,
        version: &str,
        alg: &str,
        key: &[u8],
    ) -> Result<Vec<u8>, AzureError> {
        let out = self
            .key_operation("WrapKey", "wrapkey", name, version, alg, key)
            .await?;
        Ok(out.to_vec())
    }

    /// `unwrapkey` with key `name` at `version`: the key.
    pub async fn unwrap_key(
        &self,
        name: &str,
        version: &str,
        alg: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AzureError> {
        self.key_operation("UnwrapKey", "unwrapkey", name, version, alg, wrapped)
            .await
    }

    async fn key_operation(
        &self,
        call: &'static str,
        op: &str,
        name: &str,
        version: &str,
        alg: &str,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AzureError> {
        check_name("key", name)?;
        if !version.is_empty() {
            check_name("version", version)?;
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let encoded = Zeroizing::new(b64.encode(data));
        let body = Zeroizing::new(
            format!(
                "{{\"alg\":{},\"value\":\"{}\"}}",
                json!(alg),
                encoded.as_str()
            )
            .into_bytes(),
        );
        let url = format!(
            "{}/keys/{name}/{version}/{op}?api-version={API_VERSION}",
            self.vault_url
        );
        let operation = format!("{op} with key {name}");
        let answer = self
            .call(call, &operation, reqwest::Method::POST, &url, Some(body))
            .await?;
        let value = answer["value"].as_str().unwrap_or_default();
        // Key Vault writes base64url without padding; accept padding too.
        b64.decode(value.trim_end_matches('='))
            .ok()
            .filter(|v| !v.is_empty())
            .map(Zeroizing::new)
            .ok_or_else(|| {
                AzureError::call(
                    operation,
                    CallError::decode("no base64url value in the answer"),
                )
            })
    }

    async fn call(
        &self,
        name: &'static str,
        operation: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Value, AzureError> {
        let token = self.tokens.token().await?;
        let mut request = self.http.request(method, url).bearer_auth(token.expose());
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_vec());
        }
        let answer = hush_cloud::send_json(request, |v| {
            let error = &v["error"];
            (
                error["innererror"]["code"]
                    .as_str()
                    .or(error["code"].as_str()),
                error["message"].as_str(),
            )
        })
        .await
        .map_err(|e| AzureError::call(operation, e));
        if let Some(observer) = &self.observer {
            observer(
                name,
                answer
                    .as_ref()
                    .map_or_else(AzureError::is_not_found, |_| true),
            );
        }
        answer
    }
}

/// `https://host[:port]` in `domain` (the host is `domain` or a subdomain of it), no path,
/// query or user info; returned without a trailing slash.
fn check_vault_url(url: &str, domain: &str) -> Result<String, AzureError> {
    let url = url.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .ok_or_else(|| AzureError::Config(format!("vault URL {url:?} must start with https://")))?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    if !host_ok {
        return Err(AzureError::Config(format!(
            "vault URL {url:?} must be https://<vault host> with no path"
        )));
    }
    let host = host.to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    if host != domain && !host.ends_with(&format!(".{domain}")) {
        return Err(AzureError::Config(format!(
            "vault URL {url:?} is not in this cloud's Key Vault domain {domain:?}; hush sends \
             tokens only there (HUSH_AZURE_VAULT_DOMAIN sets another)"
        )));
    }
    Ok(format!("https://{host}"))
}

/// Key Vault object names and versions: `^[0-9a-zA-Z-]{1,127}$`.
fn check_name(what: &str, name: &str) -> Result<(), AzureError> {
    if !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err(AzureError::Config(format!(
            "{what} name {name:?} is not a Key Vault name (1-127 letters, digits and -)"
        )))
    }
}

fn last_segment(id: &str) -> String {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_urls_stay_in_the_clouds_domain() {
        let d = "vault.azure.net";
        assert_eq!(
            check_vault_url("https://Kv1.vault.azure.net/", d).unwrap(),
            "https://kv1.vault.azure.net"
        );
        for bad in [
            "http://kv1.vault.azure.net",
            "https://kv1.vault.azure.net.evil.example",
            "https://evil.example/kv1.vault.azure.net",
            "https://user@kv1.vault.azure.net",
            "https://kv1.vault.azure.net/secrets",
            "https://vault.azure.net.evil",
        ] {
            assert!(check_vault_url(bad, d).is_err(), "{bad}");
        }
        assert_eq!(
            check_vault_url("https://127.0.0.1:8443", "127.0.0.1:8443").unwrap(),
            "https://127.0.0.1:8443"
        );
        check_name("secret", "db-password").unwrap();
        for bad in ["", "a/b", "a_b", "..", &"x".repeat(128)] {
            assert!(check_name("secret", bad).is_err(), "{bad}");
        }
        assert_eq!(last_segment("https://v/secrets/a/0123"), "0123");
        let c = Cloud::from_env("ChinaCloud").unwrap();
        assert!(c.vault_scope().ends_with("/.default"));
        assert!(Cloud::from_env("GermanCloud").is_err());
    }
}
