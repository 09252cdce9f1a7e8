//! ESO's AWS token generators (`ESO:pkg/generator/sts`, `ESO:pkg/generator/ecr`):
//!
//! - `STSSessionToken`: STS `GetSessionToken` (`requestParameters`: `sessionDuration`,
//!   `serialNumber`, `tokenCode`) → `access_key_id`, `secret_access_key`, `session_token`,
//!   `expiration` (Unix seconds).
//! - `ECRAuthorizationToken`: ECR `GetAuthorizationToken` → `username`, `password`,
//!   `proxy_endpoint`, `expires_at` (Unix seconds). `scope: public` (ECR Public) is refused by
//!   name: hush has no test server for it.
//!
//! Both sign with `spec.auth` (`secretRef` or `jwt`; none = the controller's own credentials,
//! for a ClusterGenerator only) and assume `spec.role` first when set. Endpoints as the `aws`
//! provider (`AWS_STS_ENDPOINT`; ECR: `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Value, json};

use super::Generator;
use crate::aws::{generator_credentials, provider_error};
use crate::{CredentialSource, ProviderError, SecretBytes, StoreScope, refuse_unknown_fields};

/// The `STSSessionToken` generator.
#[derive(Debug)]
pub struct StsSessionToken;

/// The `ECRAuthorizationToken` generator.
#[derive(Debug)]
pub struct EcrAuthorizationToken;

fn http() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ProviderError::Invalid(format!("HTTP client: {e}")))
}

fn region(spec: &Value) -> Result<&str, ProviderError> {
    spec["region"]
        .as_str()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ProviderError::Invalid("spec.region is required".into()))
}

#[async_trait]
impl Generator for StsSessionToken {
    fn kind(&self) -> &'static str {
        "STSSessionToken"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "stsSessionTokenSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        refuse_unknown_fields(
            "spec",
            spec,
            &["region", "auth", "role", "requestParameters"],
        )?;
        let rp = &spec["requestParameters"];
        refuse_unknown_fields(
            "spec.requestParameters",
            rp,
            &["sessionDuration", "serialNumber", "tokenCode"],
        )?;
        let params = hush_aws::SessionTokenParams {
            duration_seconds: rp["sessionDuration"].as_i64(),
            serial_number: rp["serialNumber"].as_str().map(str::to_owned),
            token_code: rp["tokenCode"].as_str().map(str::to_owned),
        };
        let region = region(spec)?;
        let http = http()?;
        let base = generator_credentials(
            &spec["auth"],
            spec["role"].as_str(),
            region,
            scope,
            creds,
            &http,
        )
        .await?;
        let (c, expiration) = hush_aws::get_session_token(&http, region, &base, &params)
            .await
            .map_err(provider_error)?;
        let token = c.session_token.as_ref().ok_or_else(|| {
            ProviderError::Invalid("GetSessionToken: no credentials found".into())
        })?;
        let expiration = hush_gocompat::time::parse_rfc3339(&expiration)
            .ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "GetSessionToken: Expiration {expiration:?} is not an RFC 3339 time"
                ))
            })?
            .unix();
        Ok(BTreeMap::from([
            (
                "access_key_id".to_owned(),
                SecretBytes::from(c.access_key_id.as_str()),
            ),
            (
                "expiration".to_owned(),
                SecretBytes::from(expiration.to_string().as_str()),
            ),
            (
                "secret_access_key".to_owned(),
                SecretBytes::from(c.secret_access_key.expose()),
            ),
            (
                "session_token".to_owned(),
                SecretBytes::from(token.expose()),
            ),
        ]))
    }
}

#[async_trait]
impl Generator for EcrAuthorizationToken {
    fn kind(&self) -> &'static str {
        "ECRAuthorizationToken"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "ecrAuthorizationTokenSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        refuse_unknown_fields("spec", spec, &["region", "auth", "role", "scope"])?;
        match spec["scope"].as_str().unwrap_or_default() {
            "" | "private" => {}
            "public" => {
                return Err(ProviderError::Invalid(
                    "spec.scope public (ECR Public) is not supported by hush yet; use a \
                     private registry"
                        .into(),
                ));
            }
            // ESO treats anything but "public" as private.
            _ => {}
        }
        let region = region(spec)?;
        let http = http()?;
        let c = generator_credentials(
            &spec["auth"],
            spec["role"].as_str(),
            region,
            scope,
            creds,
            &http,
        )
        .await?;
        let url = hush_aws::endpoint("ecr", region).map_err(provider_error)?;
        let answer = hush_aws::json_call(
            &http,
            &url,
            &c,
            region,
            "ecr",
            "AmazonEC2ContainerRegistry_V20150921",
            "GetAuthorizationToken",
            &json!({}),
        )
        .await
        .map_err(provider_error)?;
        ecr_values(&answer)
    }
}

/// The generator's data from a `GetAuthorizationToken` answer.
fn ecr_values(answer: &Value) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
    let data = answer["authorizationData"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [d] = data else {
        return Err(ProviderError::Invalid(format!(
            "unexpected number of authorization tokens. expected 1, found {}",
            data.len()
        )));
    };
    let token = d["authorizationToken"].as_str().unwrap_or_default();
    let decoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| ProviderError::Invalid("authorization token is not base64".into()))?,
    );
    let text = std::str::from_utf8(&decoded)
        .map_err(|_| ProviderError::Invalid("unexpected token format".into()))?;
    let parts: Vec<&str> = text.split(':').collect();
    let [user, password] = parts.as_slice() else {
        return Err(ProviderError::Invalid("unexpected token format".into()));
    };
    // A JSON-protocol timestamp: seconds since the epoch (a float); Go's Unix() truncates.
    #[allow(clippy::cast_possible_truncation)]
    let expires = d["expiresAt"].as_f64().unwrap_or_default().floor() as i64;
    Ok(BTreeMap::from([
        ("username".to_owned(), SecretBytes::from(*user)),
        ("password".to_owned(), SecretBytes::from(*password)),
        (
            "proxy_endpoint".to_owned(),
            SecretBytes::from(d["proxyEndpoint"].as_str().unwrap_or_default()),
        ),
        (
            "expires_at".to_owned(),
            SecretBytes::from(expires.to_string().as_str()),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_answer_as_eso() {
        let a = json!({"authorizationData": [{"authorizationToken": "QVdTOnNlY3JldA==",
            "expiresAt": 1_420_070_400.5, "proxyEndpoint": "https://1.dkr.ecr.eu-west-1.amazonaws.com"}]});
        let v = ecr_values(&a).unwrap();
        assert_eq!(v["username"].expose(), b"AWS");
        assert_eq!(v["password"].expose(), b"secret");
        assert_eq!(v["expires_at"].expose(), b"1420070400");
        assert!(ecr_values(&json!({"authorizationData": []})).is_err());
        let bad = json!({"authorizationData": [{"authorizationToken": "YTpiOmM="}]});
        assert!(ecr_values(&bad).is_err());
    }

    #[test]
    fn expiration_is_unix_seconds() {
        let t = hush_gocompat::time::parse_rfc3339("2015-01-01T00:00:00Z").unwrap();
        assert_eq!(t.unix(), 1_420_070_400);
        let t = hush_gocompat::time::parse_rfc3339("2026-12-07T20:30:15.123+01:00").unwrap();
        assert_eq!(t.unix(), 1_796_671_815);
    }
}
