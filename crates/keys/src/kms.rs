//! AWS KMS keys as sops uses them (`getsops/sops:kms/keysource.go`).
//!
//! - Wrap: `Encrypt(KeyId = arn, Plaintext = data key, EncryptionContext = context)`;
//!   [`WrappedKey::body`] is `base64(CiphertextBlob)` (standard alphabet, padded), exactly the
//!   sops metadata `enc`; [`WrappedKey::key_id`] is the ARN.
//! - Unwrap: `Decrypt(CiphertextBlob, EncryptionContext = context)`.
//! - `role`: credentials come from STS `AssumeRole` (session `sops@<hostname>`) with the base
//!   credentials; `aws_profile` names the shared-config profile of the base credentials
//!   (see [`credentials`] for the chain).
//! - Region: from the ARN. Endpoint: `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL_STS`, else
//!   `AWS_ENDPOINT_URL`, else `https://<service>.<region>.amazonaws.com`.
//!
//! A small client (SigV4 over reqwest) instead of the AWS SDK: see `docs/decisions.md`.
//! sops binds nothing else to the wrapping, so the `aad` argument of [`KeyService`] is ignored.

/// The AWS credential types and chain (moved to `hush-aws`).
pub use hush_aws::credentials;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};
use credentials::Credentials;

/// Type id of AWS KMS keys; the sops metadata key.
pub const TYPE_ID: &str = "kms";

fn config_error(message: impl Into<String>) -> KeyError {
    KeyError::Config {
        type_id: TYPE_ID.into(),
        message: message.into(),
    }
}

/// One AWS KMS key as a sops master key.
#[derive(Clone)]
pub struct KmsKey {
    arn: String,
    region: String,
    role: Option<String>,
    context: BTreeMap<String, String>,
    aws_profile: Option<String>,
    credentials: Option<Credentials>,
    endpoint: Option<String>,
    client: reqwest::Client,
}

impl fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKey")
            .field("arn", &self.arn)
            .field("role", &self.role)
            .field("context", &self.context)
            .field("aws_profile", &self.aws_profile)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl KmsKey {
    /// From the sops metadata fields `arn`, `role`, `context` and `aws_profile` (empty strings
    /// mean "not set", as sops writes them).
    pub fn from_metadata(
        arn: &str,
        role: Option<&str>,
        context: BTreeMap<String, String>,
        aws_profile: Option<&str>,
    ) -> Result<Self, KeyError> {
        let arn = arn.trim();
        let region = region_of(arn)?;
        Ok(Self {
            arn: arn.to_owned(),
            region,
            role: role
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            context,
            aws_profile: aws_profile
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            credentials: None,
            endpoint: None,
            client: reqwest::Client::new(),
        })
    }

    /// From `--kms arn[+role],arn…` (also `SOPS_KMS_ARN`, `.sops.yaml` `kms`), with the
    /// `--encryption-context` map and `--aws-profile` applied to every key.
    pub fn parse_list(
        list: &str,
        context: &BTreeMap<String, String>,
        aws_profile: Option<&str>,
    ) -> Result<Vec<Self>, KeyError> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        list.split(',')
            .map(|item| {
                let item = item.trim();
                let (arn, role) = match item.split_once('+') {
                    Some((arn, role)) => (arn, Some(role)),
                    None => (item, None),
                };
                Self::from_metadata(arn, role, context.clone(), aws_profile)
            })
            .collect()
    }

    /// Parses `--encryption-context key:value,key2:value2` as sops does.
    pub fn parse_context(text: &str) -> Result<BTreeMap<String, String>, KeyError> {
        let mut out = BTreeMap::new();
        if text.is_empty() {
            return Ok(out);
        }
        for pair in text.split(',') {
            let parts: Vec<&str> = pair.split(':').collect();
            if parts.len() != 2 {
                return Err(config_error(format!(
                    "invalid encryption context pair {pair:?}: expected key:value"
                )));
            }
            out.insert(parts[0].to_owned(), parts[1].to_owned());
        }
        Ok(out)
    }

    /// Uses these credentials as the base instead of resolving the chain per call.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sends KMS and STS requests to `url` instead of the endpoint from the environment or
    /// the region (one URL serves both in moto and LocalStack).
    #[must_use]
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    fn endpoint(&self, service: &str) -> Result<String, KeyError> {
        match &self.endpoint {
            Some(url) => Ok(url.clone()),
            None => endpoint(service, &self.region).map_err(|e| self.service_error(e)),
        }
    }

    /// Uses `client` for requests.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// The `arn` metadata field.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The `role` metadata field.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// The `context` metadata field.
    pub fn context(&self) -> &BTreeMap<String, String> {
        &self.context
    }

    /// The `aws_profile` metadata field.
    pub fn aws_profile(&self) -> Option<&str> {
        self.aws_profile.as_deref()
    }

    fn service_error(&self, message: impl Into<String>) -> KeyError {
        KeyError::Service {
            type_id: TYPE_ID.into(),
            key_id: self.arn.clone(),
            message: message.into(),
        }
    }

    async fn credentials(&self) -> Result<Credentials, KeyError> {
        let base = match &self.credentials {
            Some(c) => c.clone(),
            None => hush_aws::resolve_credentials(
                self.aws_profile.as_deref(),
                &self.client,
                &self.region,
            )
            .await
            .map_err(|e| self.service_error(e.to_string()))?,
        };
        match &self.role {
            Some(role) => {
                let url = self.endpoint("sts")?;
                let session = session_name();
                let role = hush_aws::RoleRequest {
                    role_arn: role,
                    session_name: &session,
                    external_id: None,
                };
                hush_aws::assume_role_at(&self.client, &url, &self.region, &base, role)
                    .await
                    .map_err(|e| self.service_error(e.to_string()))
            }
            None => Ok(base),
        }
    }

    /// Calls `TrentService.<action>` with `request`; returns the JSON answer.
    async fn call(&self, action: &str, request: Value) -> Result<Value, KeyError> {
        let credentials = self.credentials().await?;
        let url = self.endpoint("kms")?;
        // AWS error answers name the error and describe the request, never key material.
        hush_aws::json_call(
            &self.client,
            &url,
            &credentials,
            &self.region,
            "kms",
            "TrentService",
            action,
            &request,
        )
        .await
        .map_err(|e| self.service_error(e.to_string()))
    }
}

#[async_trait]
impl KeyService for KmsKey {
    fn type_id(&self) -> &str {
        TYPE_ID
    }

    fn key_id(&self) -> String {
        self.arn.clone()
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let plaintext = Zeroizing::new(B64.encode(key.expose()));
        let mut request = json!({ "KeyId": self.arn, "Plaintext": plaintext.as_str() });
        if !self.context.is_empty() {
            request["EncryptionContext"] = json!(self.context);
        }
        let answer = self.call("Encrypt", request).await?;
        let blob = answer["CiphertextBlob"]
            .as_str()
            .and_then(|b| B64.decode(b).ok())
            .ok_or_else(|| self.service_error("Encrypt: response has no CiphertextBlob"))?;
        Ok(WrappedKey::new(
            TYPE_ID,
            self.arn.clone(),
            B64.encode(blob).into_bytes(),
        ))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if !wrapped.is_for(TYPE_ID, &self.arn) {
            return Ok(None);
        }
        let blob = wrapped
            .body_from_base64()
            .ok_or_else(|| self.service_error("wrapped key is not base64"))?;
        let mut request = json!({ "CiphertextBlob": B64.encode(blob) });
        if !self.context.is_empty() {
            request["EncryptionContext"] = json!(self.context);
        }
        let answer = self.call("Decrypt", request).await?;
        let plaintext = answer["Plaintext"]
            .as_str()
            .and_then(|p| B64.decode(p).ok())
            .ok_or_else(|| self.service_error("Decrypt: response has no Plaintext"))?;
        Ok(Some(SecretBytes::new(plaintext)))
    }
}

/// The region of a KMS ARN (`arn:<partition>:kms:<region>:<account>:key/<id>`).
fn region_of(arn: &str) -> Result<String, KeyError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "kms", region, _account, resource]
            if !partition.is_empty()
                && !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !resource.is_empty() =>
        {
            Ok((*region).to_owned())
        }
        _ => Err(config_error(format!(
            "{arn:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
        ))),
    }
}

/// The endpoint of `service` ("kms", "sts") in `region` (see [`hush_aws::endpoint`]).
fn endpoint(service: &str, region: &str) -> Result<String, String> {
    hush_aws::endpoint(service, region).map_err(|e| e.to_string())
}

/// `sops@<hostname>`, restricted to the characters STS accepts.
fn session_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(*c))
        .collect();
    let mut name = format!("sops@{host}");
    name.truncate(64);
    name
}

/// Static base credentials for every KMS key (the render's Flux `sops.aws-kms`); unset, each key
/// resolves the AWS chain itself.
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Credentials);

/// The [`crate::kinds::KINDS`] row's builder.
pub(crate) fn build(
    entry: &dyn crate::sources::EntryFields,
    sources: &crate::sources::KeySources,
) -> Result<Option<std::sync::Arc<dyn KeyService>>, KeyError> {
    let key = KmsKey::from_metadata(
        entry.field("arn"),
        Some(entry.field("role")),
        entry.map("context"),
        Some(entry.field("aws_profile")),
    )?;
    Ok(Some(match sources.get::<StaticCredentials>(TYPE_ID) {
        Some(c) => std::sync::Arc::new(key.with_credentials(c.0.clone())),
        None => std::sync::Arc::new(key),
    }))
}

/// Flux's `sops.aws-kms`: YAML with `aws_access_key_id`, `aws_secret_access_key` and an optional
/// `aws_session_token`. Errors name the file and the field, never a value.
pub(crate) fn load_flux_file(
    sources: &mut crate::sources::KeySources,
    file: &crate::sources::FluxFile<'_>,
) -> Result<(), KeyError> {
    let bad = |what: &str| config_error(format!("{}: {what}", file.path.display()));
    let docs = (file.yaml_maps)(file.text)
        .ok_or_else(|| bad("not YAML (expected aws_access_key_id, aws_secret_access_key)"))?;
    let [doc] = docs.as_slice() else {
        return Err(bad("expected one YAML map"));
    };
    let field = |name: &str| doc.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let id = field("aws_access_key_id").ok_or_else(|| bad("aws_access_key_id is missing"))?;
    let key =
        field("aws_secret_access_key").ok_or_else(|| bad("aws_secret_access_key is missing"))?;
    let credentials = Credentials::new(id, key, field("aws_session_token"));
    sources.set(TYPE_ID, StaticCredentials(credentials));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:927034868273:key/e9fc75db-05e9-44c1-9c35-633922bac347";

    #[test]
    fn parses_cli_lists_and_context_like_sops() {
        let ctx = KmsKey::parse_context("Environment:production,Role:web").unwrap();
        assert_eq!(ctx["Environment"], "production");
        let keys = KmsKey::parse_list(
            &format!(" {ARN}+arn:aws:iam::927034868273:role/sops , {ARN}"),
            &ctx,
            Some("dev"),
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].arn(), ARN);
        assert_eq!(keys[0].role(), Some("arn:aws:iam::927034868273:role/sops"));
        assert_eq!(keys[1].role(), None);
        assert_eq!(keys[1].aws_profile(), Some("dev"));
        assert_eq!(keys[0].region, "us-east-1");
        assert!(KmsKey::parse_context("a:b:c").is_err());
        assert!(KmsKey::parse_context("novalue").is_err());
        for bad in [
            "",
            "key/1",
            "arn:aws:s3:us-east-1:1:key/x",
            "arn:aws:kms::1:key/x",
            "arn:aws:kms:US:1:key/x",
        ] {
            assert!(
                KmsKey::from_metadata(bad, None, BTreeMap::new(), None).is_err(),
                "{bad}"
            );
        }
        // Empty strings in metadata mean "not set".
        let k = KmsKey::from_metadata(ARN, Some(""), BTreeMap::new(), Some("")).unwrap();
        assert_eq!((k.role(), k.aws_profile()), (None, None));
    }

    #[test]
    fn session_names_are_valid() {
        let name = session_name();
        assert!(name.starts_with("sops@") && name.len() <= 64, "{name}");
    }

    #[tokio::test]
    async fn foreign_entries_are_not_ours_and_garbage_is_refused() {
        let key = KmsKey::from_metadata(ARN, None, BTreeMap::new(), None)
            .unwrap()
            .with_credentials(Credentials::new("AKIA", "secret", None));
        let other = WrappedKey::new(
            TYPE_ID,
            "arn:aws:kms:us-east-1:1:key/other",
            b"AAAA".to_vec(),
        );
        assert!(key.unwrap(&other, b"").await.unwrap().is_none());
        let garbage = WrappedKey::new(TYPE_ID, ARN, b"%%%".to_vec());
        let err = key.unwrap(&garbage, b"").await.unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
    }
}
