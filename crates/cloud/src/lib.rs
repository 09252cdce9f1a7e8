//! What the cloud clients of hush (`hush-gcp`, `hush-azure`) share, so that each holds only what
//! is particular to its cloud:
//!
//! - [`AccessToken`] and [`TokenCache`]: one bearer token per credential, fetched once, shared
//!   by every caller and fetched again shortly before it expires.
//! - [`token_answer`]: the OAuth2 token endpoint's answer (RFC 6749 §5.1/§5.2), which Google's
//!   token endpoint, its STS and metadata server, Entra ID and Azure's IMDS all send.
//! - [`read_limited`], [`CallError`]: a response body read within a budget, and what can go
//!   wrong with one HTTP call (never holding a token or a payload).
//! - [`SubjectTokenSource`]: where a workload identity's subject token (a Kubernetes
//!   ServiceAccount token) comes from each time an access token is exchanged for.
//! - [`CloudError`]: what the clients' errors tell about a failed call.
//! - [`form_escape`], [`clip`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use zeroize::Zeroizing;

/// Largest response body the cloud clients read.
pub const RESPONSE_LIMIT: usize = 4 << 20;

/// Called after each API call with its name (`GetToken`, `GetSecret`, …) and whether it
/// succeeded; the test servers' counters and hush's metrics hear the same calls.
pub type CallObserver = Arc<dyn Fn(&'static str, bool) + Send + Sync>;

/// What went wrong with one HTTP call. No variant holds a token, a key or a payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The request did not complete (connection refused, TLS, timeout).
    #[error("request failed: {message}")]
    Transport {
        /// reqwest's error without the URL.
        message: String,
    },
    /// The server answered with an error status.
    #[error("HTTP {status} {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The service's error code (`NOT_FOUND`, `SecretNotFound`, the OAuth2 `error`).
        code: String,
        /// The service's message about the request (at most 300 characters).
        message: String,
    },
    /// The answer was not what the service sends.
    #[error("{message}")]
    Decode {
        /// What was wrong.
        message: String,
    },
}

/// What a cloud client's error (`hush_gcp::GcpError`, `hush_azure::AzureError`) tells about a
/// failed call: the two clients classify failures alike, so the questions are answered once.
pub trait CloudError: std::error::Error {
    /// The failed call, when the error is one.
    fn failed_call(&self) -> Option<&CallError>;

    /// True when the credentials themselves could not be used.
    fn is_credentials(&self) -> bool;

    /// The HTTP status of an error answer.
    fn status(&self) -> Option<u16> {
        self.failed_call().and_then(CallError::status)
    }

    /// True for 404 (`NOT_FOUND`, `SecretNotFound`, `KeyNotFound`).
    fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when retrying later may succeed (transport errors, 429, 5xx).
    fn is_transient(&self) -> bool {
        self.failed_call().is_some_and(CallError::is_transient)
    }
}

impl CallError {
    /// A transport error from reqwest, without the URL (which may carry a query).
    pub fn transport(e: reqwest::Error) -> Self {
        Self::Transport {
            message: e.without_url().to_string(),
        }
    }

    /// A [`CallError::Decode`].
    pub fn decode(message: impl Into<String>) -> Self {
        Self::Decode {
            message: message.into(),
        }
    }

    /// The HTTP status of an [`CallError::Api`] answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's error code of an [`CallError::Api`] answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when retrying later may succeed (transport errors, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Decode { .. } => false,
        }
    }
}

/// An OAuth2 access token. Zeroized on drop; `Debug` never prints it.
#[derive(Clone)]
pub struct AccessToken(Arc<SecretString>);

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl AccessToken {
    /// Wraps a token (whitespace trimmed).
    pub fn new(token: &str) -> Self {
        Self(Arc::new(SecretString::from(token.trim().to_owned())))
    }

    /// The token, for the `Authorization: Bearer` header.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A subject token future ([`SubjectTokenSource::subject_token`]).
pub type SubjectTokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Zeroizing<String>, String>> + Send + 'a>>;

/// Hands out a fresh subject token (a Kubernetes ServiceAccount token from a TokenRequest)
/// whenever a workload identity exchanges one for an access token: the cached client outlives
/// any one subject token, so it asks again at every exchange rather than keeping one. The
/// error says what failed (never a token).
pub trait SubjectTokenSource: Send + Sync + fmt::Debug {
    /// A new subject token.
    fn subject_token(&self) -> SubjectTokenFuture<'_>;
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// One credential's token: fetched once, shared by every caller, fetched again shortly before
/// it expires (a quarter of its lifetime, at most 5 minutes, early). Callers wait on one
/// fetch rather than each starting their own.
#[derive(Default)]
pub struct TokenCache {
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCache")
    }
}

impl TokenCache {
    /// The cached token, or the one `fetch` returns (with its lifetime), which is then cached.
    /// `observer` hears `GetToken` for every fetch.
    pub async fn get<E, F>(
        &self,
        observer: Option<&CallObserver>,
        fetch: F,
    ) -> Result<AccessToken, E>
    where
        F: Future<Output = Result<(AccessToken, Duration), E>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let answer = fetch.await;
        if let Some(observer) = observer {
            observer("GetToken", answer.is_ok());
        }
        let (token, lifetime) = answer?;
        let margin = (lifetime / 4).min(Duration::from_secs(300));
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }
}

/// Reads a body of at most [`RESPONSE_LIMIT`] bytes, chunk by chunk.
pub async fn read_limited(
    mut response: reqwest::Response,
) -> Result<Zeroizing<Vec<u8>>, CallError> {
    let mut out = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(CallError::transport)? {
        if out.len() + chunk.len() > RESPONSE_LIMIT {
            return Err(CallError::decode(format!(
                "response larger than {RESPONSE_LIMIT} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Sends `request` and reads a JSON object answer. An error status becomes [`CallError::Api`]
/// with the code and message `error_of` finds in the answer (each service has its own shape).
pub async fn send_json(
    request: reqwest::RequestBuilder,
    error_of: fn(&Value) -> (Option<&str>, Option<&str>),
) -> Result<Value, CallError> {
    let response = request.send().await.map_err(CallError::transport)?;
    let status = response.status().as_u16();
    let bytes = read_limited(response).await?;
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !(200..300).contains(&status) {
        let (code, message) = error_of(&parsed);
        return Err(CallError::Api {
            status,
            code: code.unwrap_or("UNKNOWN").to_owned(),
            message: clip(message.unwrap_or_default()),
        });
    }
    if !parsed.is_object() {
        return Err(CallError::decode(format!(
            "HTTP {status}, the answer is not a JSON object"
        )));
    }
    Ok(parsed)
}

/// Sends a token request and reads the answer as [`token_answer`] does.
pub async fn fetch_token(
    request: reqwest::RequestBuilder,
) -> Result<(AccessToken, Duration), CallError> {
    let response = request.send().await.map_err(CallError::transport)?;
    let status = response.status().as_u16();
    let body = read_limited(response).await?;
    token_answer(status, &body)
}

/// A token endpoint's answer: `access_token` and `expires_in` (a number or a numeric string,
/// as Azure's IMDS writes it; 3600 when absent, kept within 1 s–24 h) on success; the OAuth2
/// `error` and `error_description` otherwise (they describe the request, never a secret).
pub fn token_answer(status: u16, body: &[u8]) -> Result<(AccessToken, Duration), CallError> {
    // serde_json values cannot be zeroized; the token taken out of it is held as a secret.
    let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(CallError::Api {
            status,
            code: parsed["error"]
                .as_str()
                .unwrap_or("no OAuth2 error")
                .to_owned(),
            message: clip(parsed["error_description"].as_str().unwrap_or_default()),
        });
    }
    let token = parsed["access_token"]
        .as_str()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| CallError::decode("token response has no access_token"))?;
    let lifetime = match &parsed["expires_in"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600)
    .clamp(1, 86_400);
    Ok((AccessToken::new(token), Duration::from_secs(lifetime)))
}

/// A server message cut to 300 characters.
pub fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// `application/x-www-form-urlencoded` escaping (RFC 3986 unreserved characters kept).
pub fn form_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers() {
        let (t, life) =
            token_answer(200, br#"{"access_token":"CANARY","expires_in":"120"}"#).unwrap();
        assert_eq!(t.expose(), "CANARY");
        assert_eq!(format!("{t:?}"), "AccessToken(<redacted>)");
        assert_eq!(life, Duration::from_secs(120));
        let (_, life) = token_answer(200, br#"{"access_token":"x","expires_in":0}"#).unwrap();
        assert_eq!(life, Duration::from_secs(1));
        let err = token_answer(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some("invalid_grant"));
        assert!(!err.is_transient());
        assert!(token_answer(200, b"{}").is_err());
        assert!(token_answer(503, b"oops").unwrap_err().is_transient());
        assert_eq!(form_escape("a b+/=:"), "a%20b%2B%2F%3D%3A");
    }

    #[tokio::test]
    async fn one_fetch_per_lifetime() {
        let cache = TokenCache::default();
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..3 {
            let t = cache
                .get::<CallError, _>(None, async {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok((AccessToken::new("t"), Duration::from_secs(3600)))
                })
                .await
                .unwrap();
            assert_eq!(t.expose(), "t");
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A failed fetch is not cached.
        let cache = TokenCache::default();
        let err = cache
            .get::<CallError, _>(None, async { Err(CallError::decode("no")) })
            .await;
        assert!(err.is_err());
    }
}
