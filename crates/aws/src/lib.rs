//! The one AWS client of hush, shared by the sops KMS key service (`hush-keys`, feature `kms`)
//! and the ExternalSecret providers (`hush-sync`, feature `aws`).
//!
//! - [`sigv4`]: Signature Version 4 (checked against the AWS SigV4 test suite).
//! - [`credentials`]: the SDK credential chain (environment, shared files, web identity,
//!   container, IMDSv2) and static credentials.
//! - [`assume_role`] / [`assume_role_with_web_identity`] / [`get_session_token`]: STS (query
//!   protocol).
//! - [`endpoint`]: endpoint resolution: ESO's `AWS_SECRETSMANAGER_ENDPOINT`, `AWS_SSM_ENDPOINT`,
//!   `AWS_STS_ENDPOINT`, then the SDK's `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL`,
//!   then `https://<service>.<region>.amazonaws.com`.
//! - [`json_call`]: one call of the AWS JSON 1.1 protocol (KMS, Secrets Manager, SSM).
//! - [`s3::put_object`]: S3 `PutObject` (`sops publish` to an `s3_bucket`).
//!
//! A small client over reqwest instead of the AWS SDK: see `docs/decisions.md`. Errors never
//! carry request or response bodies (they hold key material and secret values), only AWS's
//! error code and message.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod credentials;
mod keys;
pub mod s3;
pub mod sigv4;
mod sts;

use serde_json::Value;
use zeroize::Zeroizing;

pub use keys::{Credentials, Secret};

/// Largest response body read from AWS.
const RESPONSE_LIMIT: usize = 4 << 20;

/// Errors of AWS calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// Bad configuration (endpoint URL, region).
    #[error("AWS configuration: {0}")]
    Config(String),
    /// Credentials could not be resolved or exchanged (STS).
    #[error("AWS credentials: {0}")]
    Credentials(String),
    /// The request did not complete (connection, TLS, timeout) or the answer was unreadable.
    #[error("{service}: {message}")]
    Transport {
        /// The service signing name.
        service: String,
        /// What failed.
        message: String,
    },
    /// AWS answered with an error.
    #[error("{action}: HTTP {status}: {code} {message}")]
    Api {
        /// The API action (`GetSecretValue`).
        action: String,
        /// The HTTP status.
        status: u16,
        /// The error code (`ResourceNotFoundException`), without the namespace prefix.
        code: String,
        /// AWS's message (about the request, never secret values).
        message: String,
    },
}

impl AwsError {
    /// The AWS error code of an [`AwsError::Api`] answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True for throttling answers (HTTP 429, `ThrottlingException`, `TooManyRequestsException`,
    /// `RequestLimitExceeded`).
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::Api { status, code, .. } => {
                *status == 429
                    || matches!(
                        code.as_str(),
                        "ThrottlingException"
                            | "Throttling"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                            | "ThrottledException"
                    )
            }
            _ => false,
        }
    }

    /// True when retrying later may succeed (transport failures, throttling, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => self.is_throttling() || *status >= 500,
            _ => false,
        }
    }
}

/// The endpoint of `service` (signing name: `kms`, `sts`, `secretsmanager`, `ssm`) in `region`,
/// from the environment (see the crate docs) or AWS's public endpoint.
pub fn endpoint(service: &str, region: &str) -> Result<String, AwsError> {
    endpoint_with(service, region, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
    .map_err(AwsError::Config)
}

/// [`endpoint`] with `env` in place of the process environment.
pub fn endpoint_with(
    service: &str,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    // ESO's own variables (`ESO:providers/v1/aws/util/provider.go`) win, as in ESO.
    let eso = match service {
        "secretsmanager" => Some("AWS_SECRETSMANAGER_ENDPOINT"),
        "ssm" => Some("AWS_SSM_ENDPOINT"),
        "sts" => Some("AWS_STS_ENDPOINT"),
        _ => None,
    };
    // The SDKs' service ids (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    let sdk_id = match service {
        "secretsmanager" => "SECRETS_MANAGER".to_owned(),
        other => other.to_ascii_uppercase().replace('-', "_"),
    };
    let from_env = eso
        .and_then(&env)
        .or_else(|| env(&format!("AWS_ENDPOINT_URL_{sdk_id}")))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    let url = match from_env {
        Some(url) => url,
        None => {
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!("invalid AWS region {region:?}"));
            }
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{service}.{region}.{suffix}")
        }
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "endpoint {url:?} must start with http:// or https://"
        ));
    }
    Ok(url)
}

pub(crate) fn endpoint_str(service: &str, region: &str) -> Result<String, String> {
    endpoint_with(service, region, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

/// The region the SDK would use: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the `region` of
/// `AWS_PROFILE` (or `default`) in the shared config files; `None` when none is set.
pub fn default_region() -> Result<Option<String>, AwsError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return Ok(Some(region));
    }
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let loaded = credentials::Profile::load(&profile).map_err(AwsError::Config)?;
    Ok(loaded.and_then(|p| p.get("region").map(str::to_owned)))
}

/// Resolves credentials for `profile` (or the standard chain when `None`).
pub async fn resolve_credentials(
    profile: Option<&str>,
    client: &reqwest::Client,
    region: &str,
) -> Result<Credentials, AwsError> {
    credentials::resolve(profile, client, region)
        .await
        .map_err(AwsError::Credentials)
}

/// What STS `AssumeRole` asks for.
#[derive(Clone, Copy, Debug)]
pub struct RoleRequest<'a> {
    /// `RoleArn`.
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub session_name: &'a str,
    /// `ExternalId`; left out when `None` or empty.
    pub external_id: Option<&'a str>,
}

/// STS `AssumeRole` of `role` with `base` credentials.
pub async fn assume_role(
    client: &reqwest::Client,
    region: &str,
    base: &Credentials,
    role: RoleRequest<'_>,
) -> Result<Credentials, AwsError> {
    let url = endpoint("sts", region)?;
    assume_role_at(client, &url, region, base, role).await
}

/// STS `AssumeRole` of `role` at the STS endpoint `url`.
pub async fn assume_role_at(
    client: &reqwest::Client,
    url: &str,
    region: &str,
    base: &Credentials,
    role: RoleRequest<'_>,
) -> Result<Credentials, AwsError> {
    sts::assume_role(client, url, region, base, role)
        .await
        .map_err(AwsError::Credentials)
}

/// STS `AssumeRoleWithWebIdentity` (unsigned; `token` is the proof).
pub async fn assume_role_with_web_identity(
    client: &reqwest::Client,
    region: &str,
    role_arn: &str,
    session_name: &str,
    token: &str,
) -> Result<Credentials, AwsError> {
    sts::assume_role_with_web_identity(client, region, role_arn, session_name, token)
        .await
        .map_err(AwsError::Credentials)
}

/// The optional inputs of STS `GetSessionToken`.
#[derive(Clone, Debug, Default)]
pub struct SessionTokenParams {
    /// `DurationSeconds`.
    pub duration_seconds: Option<i64>,
    /// `SerialNumber` (an MFA device).
    pub serial_number: Option<String>,
    /// `TokenCode` (the MFA code).
    pub token_code: Option<String>,
}

/// STS `GetSessionToken` with `base` credentials at the STS endpoint of `region`: temporary
/// credentials and their `Expiration` (RFC 3339 text).
pub async fn get_session_token(
    client: &reqwest::Client,
    region: &str,
    base: &Credentials,
    params: &SessionTokenParams,
) -> Result<(Credentials, String), AwsError> {
    let url = endpoint("sts", region)?;
    sts::get_session_token(client, &url, region, base, params)
        .await
        .map_err(AwsError::Credentials)
}

/// POSTs `body` to `url`, signed with SigV4; returns the status and the body text.
pub async fn send_signed(
    client: &reqwest::Client,
    url: &str,
    credentials: &Credentials,
    region: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Zeroizing<String>), AwsError> {
    send_signed_str(client, url, credentials, region, service, headers, body)
        .await
        .map_err(|message| AwsError::Transport {
            service: service.to_owned(),
            message,
        })
}

pub(crate) async fn send_signed_str(
    client: &reqwest::Client,
    url: &str,
    credentials: &Credentials,
    region: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, Zeroizing<String>), String> {
    let request = Signed {
        method: "POST",
        url,
        headers,
        body,
    };
    send_signed_request(client, request, credentials, region, service).await
}

/// One request to sign and send: the method, the URL (its path already URI-encoded, no query)
/// and the headers to sign besides `host` and `x-amz-date`.
pub(crate) struct Signed<'a> {
    pub(crate) method: &'static str,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: Vec<u8>,
}

/// Signs and sends `request`; returns the status and the body text (at most
/// [`RESPONSE_LIMIT`] bytes).
pub(crate) async fn send_signed_request(
    client: &reqwest::Client,
    request: Signed<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
) -> Result<(u16, Zeroizing<String>), String> {
    let Signed {
        method,
        url,
        headers,
        body,
    } = request;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed = sigv4::sign(
        &sigv4::Request {
            method,
            host,
            path,
            headers,
            body: &body,
        },
        credentials,
        region,
        service,
        &sigv4::amz_date(now),
    );
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("{service}: invalid HTTP method {method}"))?;
    let mut request = client.request(method, url).body(body);
    for (k, v) in headers.iter().copied() {
        request = request.header(k, v);
    }
    for (k, v) in signed {
        request = request.header(k, v);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{service} request failed: {}", e.without_url()))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("{service} response: {}", e.without_url()))?;
    if bytes.len() > RESPONSE_LIMIT {
        return Err(format!("{service} response too large"));
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    Ok((status, text))
}

/// Calls `<target_prefix>.<action>` of the JSON 1.1 protocol (`TrentService` for KMS,
/// `secretsmanager` for Secrets Manager, `AmazonSSM` for Parameter Store) and returns the
/// JSON answer. Error answers become [`AwsError::Api`] with AWS's code and message only.
#[allow(clippy::too_many_arguments)]
pub async fn json_call(
    client: &reqwest::Client,
    url: &str,
    credentials: &Credentials,
    region: &str,
    service: &str,
    target_prefix: &str,
    action: &str,
    request: &Value,
) -> Result<Value, AwsError> {
    let body = Zeroizing::new(
        serde_json::to_vec(request).map_err(|e| AwsError::Transport {
            service: service.to_owned(),
            message: format!("encoding {action} request: {e}"),
        })?,
    );
    let target = format!("{target_prefix}.{action}");
    let (status, text) = send_signed(
        client,
        url,
        credentials,
        region,
        service,
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &target),
        ],
        body.to_vec(),
    )
    .await?;
    let answer: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) if !(200..300).contains(&status) => {
            return Err(AwsError::Api {
                action: action.to_owned(),
                status,
                code: String::new(),
                message: "response is not JSON".into(),
            });
        }
        Err(_) => {
            return Err(AwsError::Transport {
                service: service.to_owned(),
                message: format!("{action}: HTTP {status}, response is not JSON"),
            });
        }
    };
    if !(200..300).contains(&status) {
        return Err(api_error(action, status, &answer));
    }
    Ok(answer)
}

/// An [`AwsError::Api`] from a JSON error answer (`__type`, `message`/`Message`).
fn api_error(action: &str, status: u16, answer: &Value) -> AwsError {
    let kind = answer["__type"].as_str().unwrap_or_default();
    let kind = kind.rsplit('#').next().unwrap_or(kind);
    let message = answer["message"]
        .as_str()
        .or(answer["Message"].as_str())
        .unwrap_or_default();
    AwsError::Api {
        action: action.to_owned(),
        status,
        code: kind.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn endpoints_follow_eso_then_sdk_then_public() {
        let env = env_of(&[
            ("AWS_SECRETSMANAGER_ENDPOINT", "http://eso-sm:1"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://sdk-sm:1"),
            ("AWS_ENDPOINT_URL_SSM", "http://sdk-ssm:1"),
            ("AWS_ENDPOINT_URL", "http://all:1"),
        ]);
        assert_eq!(
            endpoint_with("secretsmanager", "eu-west-1", &env).unwrap(),
            "http://eso-sm:1"
        );
        assert_eq!(
            endpoint_with("ssm", "eu-west-1", &env).unwrap(),
            "http://sdk-ssm:1"
        );
        assert_eq!(
            endpoint_with("sts", "eu-west-1", &env).unwrap(),
            "http://all:1"
        );
        let none = env_of(&[]);
        assert_eq!(
            endpoint_with("secretsmanager", "eu-west-1", &none).unwrap(),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint_with("kms", "cn-north-1", &none).unwrap(),
            "https://kms.cn-north-1.amazonaws.com.cn"
        );
        assert!(endpoint_with("ssm", "", &none).is_err());
        assert!(endpoint_with("ssm", "evil.com/x", &none).is_err());
        assert!(
            endpoint_with(
                "ssm",
                "us-east-1",
                env_of(&[("AWS_SSM_ENDPOINT", "ftp://x")])
            )
            .is_err()
        );
    }

    #[test]
    fn api_errors_carry_code_and_classify() {
        let e = api_error(
            "GetSecretValue",
            400,
            &serde_json::json!({"__type": "com.amazonaws#ResourceNotFoundException", "Message": "nope"}),
        );
        assert_eq!(e.code(), Some("ResourceNotFoundException"));
        assert!(!e.is_transient());
        let t = api_error(
            "GetParameter",
            400,
            &serde_json::json!({"__type": "ThrottlingException"}),
        );
        assert!(t.is_throttling() && t.is_transient());
        assert!(api_error("X", 503, &serde_json::json!({})).is_transient());
    }
}
