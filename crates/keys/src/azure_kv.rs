//! sops `azure_kv` master keys: the data key wrapped by Key Vault `wrapkey` with RSA-OAEP-256;
//! the metadata `enc` is the result in base64url without padding, as sops writes it
//! (`getsops/sops:azkv/keysource.go`). Calls go through the shared `hush-azure` client.
//!
//! Credentials, as azure-identity's environment credential (what sops' default credential tries
//! first): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`, or
//! `AZURE_CLIENT_CERTIFICATE_PATH` (PEM), or `AZURE_FEDERATED_TOKEN_FILE` (workload identity);
//! `AZURE_AUTHORITY_HOST`. Flux's `sops.azure-kv` (`tenantId`, `clientId`, `clientSecret`) too.
//! Managed identity and the Azure CLI's login are not supported.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hush_azure::{Cloud, Credential, Secret, TokenSource, VaultClient};

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// The sops metadata key of this service.
pub const TYPE_ID: &str = "azure_kv";
/// The wrapping algorithm sops uses.
const ALGORITHM: &str = "RSA-OAEP-256";

/// A Key Vault key (`vault_url`, `name`, `version`) and a client, or why there is none
/// (missing credentials fail the key's use, not its construction).
#[derive(Clone)]
pub struct AzureKvKey {
    vault_url: String,
    name: String,
    version: String,
    client: Result<VaultClient, String>,
}

impl fmt::Debug for AzureKvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKvKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

fn config(message: impl Into<String>) -> KeyError {
    KeyError::Config {
        type_id: TYPE_ID.into(),
        message: message.into(),
    }
}

impl AzureKvKey {
    /// Key `name` at `version` (empty = current) of the vault at `vault_url`, as `credential`
    /// in `cloud`.
    pub fn new(
        vault_url: &str,
        name: &str,
        version: &str,
        credential: Credential,
        cloud: &Cloud,
    ) -> Result<Self, KeyError> {
        let http = cloud.http_client().map_err(|e| config(e.to_string()))?;
        let tokens = TokenSource::new(
            http.clone(),
            credential,
            &cloud.authority_host,
            &cloud.vault_scope(),
            None,
        )
        .map_err(|e| config(e.to_string()))?;
        let client = VaultClient::new(http, vault_url, cloud, Arc::new(tokens), None)
            .map_err(|e| config(e.to_string()))?;
        Ok(Self {
            vault_url: client.vault_url().to_owned(),
            name: name.trim().to_owned(),
            version: version.trim().to_owned(),
            client: Ok(client),
        })
    }

    /// The key with credentials from the environment, or `credential` (Flux's file) when given.
    pub fn from_env(
        vault_url: &str,
        name: &str,
        version: &str,
        credential: Option<Credential>,
    ) -> Result<Self, KeyError> {
        let cloud = Cloud::from_env("").map_err(|e| config(e.to_string()))?;
        let credential = match credential {
            Some(c) => Ok(c),
            None => env_credential(),
        };
        match credential {
            Ok(c) => Self::new(vault_url, name, version, c, &cloud),
            Err(e) => Ok(Self {
                vault_url: vault_url.trim().trim_end_matches('/').to_owned(),
                name: name.trim().to_owned(),
                version: version.trim().to_owned(),
                client: Err(e.to_string()),
            }),
        }
    }
}

/// azure-identity's environment credential.
pub fn env_credential() -> Result<Credential, KeyError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(tenant_id), Some(client_id)) = (var("AZURE_TENANT_ID"), var("AZURE_CLIENT_ID"))
    else {
        return Err(config(
            "no Azure credentials: set AZURE_TENANT_ID and AZURE_CLIENT_ID with \
             AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE \
             (managed identity and the Azure CLI's login are not supported)",
        ));
    };
    let secret = if let Some(s) = var("AZURE_CLIENT_SECRET") {
        Secret::client_secret(&zeroize::Zeroizing::new(s))
    } else if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
        let pem = zeroize::Zeroizing::new(
            std::fs::read(&path).map_err(|e| config(format!("{path}: {e}")))?,
        );
        Secret::certificate(&pem).map_err(|e| config(format!("{path}: {e}")))?
    } else if let Some(path) = var("AZURE_FEDERATED_TOKEN_FILE") {
        Secret::FederatedTokenFile(path.into())
    } else {
        return Err(config(
            "AZURE_CLIENT_ID is set but none of AZURE_CLIENT_SECRET, \
             AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE",
        ));
    };
    Ok(Credential {
        tenant_id,
        client_id,
        secret,
    })
}

impl AzureKvKey {
    fn client(&self) -> Result<&VaultClient, KeyError> {
        self.client.as_ref().map_err(|why| self.service_error(why))
    }

    fn service_error(&self, e: impl fmt::Display) -> KeyError {
        KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: self.key_id(),
            message: e.to_string(),
        }
    }
}

#[async_trait]
impl KeyService for AzureKvKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        format!("{}/keys/{}/{}", self.vault_url, self.name, self.version)
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let wrapped = self
            .client()?
            .wrap_key(&self.name, &self.version, ALGORITHM, key.expose())
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(WrappedKey::new(
            TYPE_ID,
            self.key_id(),
            B64URL.encode(wrapped).into_bytes(),
        ))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != TYPE_ID
            || (!wrapped.key_id.is_empty()
                && wrapped.key_id.trim().trim_end_matches('/')
                    != self.key_id().trim_end_matches('/'))
        {
            return Ok(None);
        }
        // sops writes base64url without padding; accept padding too.
        let body = std::str::from_utf8(&wrapped.body)
            .ok()
            .and_then(|b| B64URL.decode(b.trim().trim_end_matches('=')).ok())
            .ok_or_else(|| self.service_error("enc is not base64url"))?;
        let plain = self
            .client()?
            .unwrap_key(&self.name, &self.version, ALGORITHM, &body)
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(Some(SecretBytes::from_slice(&plain)))
    }
}

/// Flux's `sops.azure-kv`: an application's credentials, used instead of the environment.
#[derive(Clone, Default)]
pub(crate) struct FluxCredential(Option<Credential>);

/// The key service of an `azure_kv` metadata entry (the key-kind table's `build`).
pub(crate) fn build(
    entry: &dyn crate::sources::EntryFields,
    sources: &crate::sources::KeySources,
) -> Result<Option<Arc<dyn KeyService>>, KeyError> {
    let flux = sources
        .get::<FluxCredential>(TYPE_ID)
        .and_then(|c| c.0.clone());
    let key = AzureKvKey::from_env(
        entry.field("vault_url"),
        entry.field("name"),
        entry.field("version"),
        flux,
    )?;
    Ok(Some(Arc::new(key)))
}

/// Loads Flux's `sops.azure-kv` (JSON or YAML with `tenantId`, `clientId` and `clientSecret`;
/// other authentication forms of Flux's file are refused by name).
pub(crate) fn load_flux_file(
    sources: &mut crate::sources::KeySources,
    file: &crate::sources::FluxFile<'_>,
) -> Result<(), KeyError> {
    let path = file.path.display();
    let docs =
        (file.yaml_maps)(file.text).ok_or_else(|| config(format!("{path}: not JSON or YAML")))?;
    let fields = docs
        .first()
        .ok_or_else(|| config(format!("{path}: empty")))?;
    let get = |k: &str| {
        fields
            .get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (Some(tenant_id), Some(client_id), Some(secret)) =
        (get("tenantId"), get("clientId"), get("clientSecret"))
    else {
        return Err(config(format!(
            "{path}: hush reads tenantId, clientId and clientSecret (client certificates, managed \
             identity and authority hosts in this file are not supported)"
        )));
    };
    let secret = zeroize::Zeroizing::new(secret);
    sources.set(
        TYPE_ID,
        FluxCredential(Some(Credential {
            tenant_id,
            client_id,
            secret: Secret::client_secret(&secret),
        })),
    );
    Ok(())
}
