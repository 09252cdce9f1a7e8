//! sops `gcp_kms` master keys: the data key encrypted by Cloud KMS `encrypt` with the key's
//! `resource_id`; the metadata `enc` is the ciphertext in standard base64, as sops writes it
//! (`getsops/sops:gcpkms/keysource.go`). Calls go through the shared `hush-gcp` client.
//!
//! Credentials, as sops takes them: `GOOGLE_OAUTH_ACCESS_TOKEN` (a token), `GOOGLE_CREDENTIALS`
//! (a service-account JSON key or its path), `GOOGLE_APPLICATION_CREDENTIALS` (its path), or a
//! Flux `sops.gcp-kms` file; with none of them, the GKE/GCE metadata server
//! (`GCE_METADATA_HOST` or `metadata.google.internal`), as Google's client libraries fall back
//! to it. Endpoints: `HUSH_GCP_KMS_ENDPOINT`, `HUSH_GCP_TOKEN_ENDPOINT`.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hush_gcp::{AccessToken, Client, Credentials, Endpoints, ServiceAccountKey};
use zeroize::Zeroizing;

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// The sops metadata key of this service.
pub const TYPE_ID: &str = "gcp_kms";

/// Largest credentials file read.
const CREDENTIALS_LIMIT: u64 = 64 << 10;

/// A Cloud KMS crypto key (`projects/P/locations/L/keyRings/R/cryptoKeys/K`) and a client, or
/// why there is none (missing credentials fail the key's use, not its construction, so a file
/// with other keys still opens).
#[derive(Clone)]
pub struct GcpKmsKey {
    resource_id: String,
    client: Result<Client, String>,
    /// The metadata server this key's token comes from when no `GOOGLE_*` credential was set
    /// (named in errors, so a user off GCP sees why it was asked).
    metadata_fallback: Option<String>,
}

impl fmt::Debug for GcpKmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKmsKey")
            .field("resource_id", &self.resource_id)
            .finish_non_exhaustive()
    }
}

fn config(message: impl Into<String>) -> KeyError {
    KeyError::Config {
        type_id: TYPE_ID.into(),
        message: message.into(),
    }
}

impl GcpKmsKey {
    /// The key `resource_id` reached with `credentials` at `endpoints`.
    pub fn new(
        resource_id: &str,
        credentials: Credentials,
        endpoints: Endpoints,
    ) -> Result<Self, KeyError> {
        let resource_id = resource_id.trim().to_owned();
        if resource_id.is_empty() {
            return Err(config("resource_id is empty"));
        }
        let client =
            Client::new(credentials, endpoints, None).map_err(|e| config(e.to_string()))?;
        Ok(Self {
            resource_id,
            client: Ok(client),
            metadata_fallback: None,
        })
    }

    /// The key with credentials from the environment (see the module documentation) or, when
    /// given, a service-account JSON key (Flux's `sops.gcp-kms`).
    pub fn from_env(resource_id: &str, key_json: Option<&[u8]>) -> Result<Self, KeyError> {
        let resource_id = resource_id.trim().to_owned();
        if resource_id.is_empty() {
            return Err(config("resource_id is empty"));
        }
        let credentials = env_credentials(key_json);
        let metadata_fallback = match &credentials {
            Ok(Credentials::MetadataServer(url)) => Some(url.clone()),
            _ => None,
        };
        let client = credentials
            .and_then(|c| {
                Client::new(c, Endpoints::from_env(), None).map_err(|e| config(e.to_string()))
            })
            .map_err(|e| e.to_string());
        Ok(Self {
            resource_id,
            client,
            metadata_fallback,
        })
    }

    fn client(&self) -> Result<&Client, KeyError> {
        self.client.as_ref().map_err(|why| self.service_error(why))
    }

    /// The crypto key's resource name.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    fn service_error(&self, e: impl fmt::Display) -> KeyError {
        let message = match &self.metadata_fallback {
            Some(url) => format!(
                "{e} (no GOOGLE_OAUTH_ACCESS_TOKEN, GOOGLE_CREDENTIALS or \
                 GOOGLE_APPLICATION_CREDENTIALS is set, so the metadata server {url} was asked)"
            ),
            None => e.to_string(),
        };
        KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: self.resource_id.clone(),
            message,
        }
    }
}

/// The credentials sops would use, in its order, then the metadata server (as Google's clients).
fn env_credentials(key_json: Option<&[u8]>) -> Result<Credentials, KeyError> {
    if let Some(json) = key_json {
        return service_account(json, "sops.gcp-kms");
    }
    if let Some(token) = env_var("GOOGLE_OAUTH_ACCESS_TOKEN") {
        return Ok(Credentials::AccessToken(AccessToken::new(&token)));
    }
    if let Some(value) = env_var("GOOGLE_CREDENTIALS") {
        return google_credentials(&Zeroizing::new(value));
    }
    if let Some(path) = env_var("GOOGLE_APPLICATION_CREDENTIALS") {
        let json = read_limited(path.trim())?;
        return service_account(&json, "GOOGLE_APPLICATION_CREDENTIALS");
    }
    // Google's application default credentials end at the metadata server (GKE, GCE, Cloud
    // Run); gcloud's user credentials are not read.
    Ok(Credentials::metadata_server_from_env())
}

/// The variable `name`, unless unset or blank.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `GOOGLE_CREDENTIALS`: a JSON key itself, or the path of one (sops accepts both).
fn google_credentials(value: &str) -> Result<Credentials, KeyError> {
    if value.trim_start().starts_with('{') {
        return service_account(value.as_bytes(), "GOOGLE_CREDENTIALS");
    }
    let json = read_limited(value.trim())?;
    service_account(&json, "GOOGLE_CREDENTIALS")
}

/// A service-account JSON key; errors name `what` held it.
fn service_account(json: &[u8], what: &str) -> Result<Credentials, KeyError> {
    ServiceAccountKey::from_json(json)
        .map(Credentials::ServiceAccount)
        .map_err(|e| config(format!("{what}: {e}")))
}

fn read_limited(path: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| config(format!("{path}: {e}")))?;
    let mut out = Zeroizing::new(Vec::new());
    file.take(CREDENTIALS_LIMIT + 1)
        .read_to_end(&mut out)
        .map_err(|e| config(format!("{path}: {e}")))?;
    if out.len() as u64 > CREDENTIALS_LIMIT {
        return Err(config(format!(
            "{path}: larger than {CREDENTIALS_LIMIT} bytes"
        )));
    }
    Ok(out)
}

#[async_trait]
impl KeyService for GcpKmsKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        self.resource_id.clone()
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let ciphertext = self
            .client()?
            .kms_encrypt(&self.resource_id, key.expose())
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(WrappedKey::new(
            TYPE_ID,
            self.resource_id.clone(),
            B64.encode(ciphertext).into_bytes(),
        ))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if !wrapped.is_for(TYPE_ID, &self.resource_id) {
            return Ok(None);
        }
        let ciphertext = wrapped
            .body_from_base64()
            .ok_or_else(|| self.service_error("enc is not base64"))?;
        let plain = self
            .client()?
            .kms_decrypt(&self.resource_id, &ciphertext)
            .await
            .map_err(|e| self.service_error(e))?;
        Ok(Some(SecretBytes::from_slice(&plain)))
    }
}

/// Flux's `sops.gcp-kms`: a service-account JSON key, used instead of the environment.
#[derive(Clone, Default)]
pub(crate) struct FluxKey(Option<std::sync::Arc<Zeroizing<Vec<u8>>>>);

/// The key service of a `gcp_kms` metadata entry (the key-kind table's `build`).
pub(crate) fn build(
    entry: &dyn crate::sources::EntryFields,
    sources: &crate::sources::KeySources,
) -> Result<Option<std::sync::Arc<dyn KeyService>>, KeyError> {
    let flux = sources
        .get::<FluxKey>(TYPE_ID)
        .and_then(|k| k.0.as_deref())
        .map(|json| json.as_slice());
    let key = GcpKmsKey::from_env(entry.field("resource_id"), flux)?;
    Ok(Some(std::sync::Arc::new(key)))
}

/// Loads Flux's `sops.gcp-kms` (the key's JSON text).
pub(crate) fn load_flux_file(
    sources: &mut crate::sources::KeySources,
    file: &crate::sources::FluxFile<'_>,
) -> Result<(), KeyError> {
    let json = Zeroizing::new(file.text.trim().as_bytes().to_vec());
    // Checked now, so a bad file is named when the directory is read.
    ServiceAccountKey::from_json(&json)
        .map_err(|e| config(format!("{}: {e}", file.path.display())))?;
    sources.set(TYPE_ID, FluxKey(Some(std::sync::Arc::new(json))));
    Ok(())
}
