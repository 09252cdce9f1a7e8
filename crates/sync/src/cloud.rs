//! What the Google Cloud (`gcpsm`) and Azure (`azurekv`) providers share: how a failed cloud
//! call maps onto the seam's errors, ESO's `property` of a JSON secret value, the
//! `find.name.regexp` filter, and workload identity's ServiceAccount tokens.

use std::sync::Arc;

use hush_cloud::{CallError, CloudError, SubjectTokenFuture, SubjectTokenSource};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::json::{property_dotted, scalar_text};
use crate::{ProviderError, SecretBytes, ServiceAccountTokens};

/// Lifetime asked for a workload identity's ServiceAccount token: the TokenRequest minimum, as
/// the token is exchanged at once and never kept.
const SUBJECT_TOKEN_SECONDS: i64 = 600;

/// A workload identity's subject tokens: a TokenRequest for `audiences` at every exchange.
#[derive(Debug)]
pub(crate) struct TokenRequests {
    pub(crate) tokens: Arc<dyn ServiceAccountTokens>,
    pub(crate) audiences: Vec<String>,
}

impl SubjectTokenSource for TokenRequests {
    fn subject_token(&self) -> SubjectTokenFuture<'_> {
        Box::pin(async move {
            let token = self
                .tokens
                .token(&self.audiences, SUBJECT_TOKEN_SECONDS)
                .await
                .map_err(|e| e.to_string())?;
            std::str::from_utf8(token.expose())
                .map(|t| Zeroizing::new(t.trim().to_owned()))
                .map_err(|_| "the ServiceAccount token is not UTF-8".to_owned())
        })
    }
}

/// A cloud client's error as the seam sees it.
pub(crate) fn map_err(e: impl CloudError) -> ProviderError {
    classify(e.to_string(), e.failed_call(), e.is_credentials())
}

/// A cloud error as the seam sees it. `text` is the error's message, `call` its failed call
/// (if any) and `credentials` whether the credentials themselves were unusable.
pub(crate) fn classify(text: String, call: Option<&CallError>, credentials: bool) -> ProviderError {
    let status = call.and_then(CallError::status);
    let code = call.and_then(CallError::code).unwrap_or_default();
    match status {
        Some(404) => ProviderError::NotFound(text),
        Some(429) => ProviderError::Throttled(text),
        Some(401 | 403) => ProviderError::Denied(text),
        // OAuth2 errors of a token endpoint (`invalid_grant`, `unauthorized_client`).
        _ if credentials || code.starts_with("invalid_") || code.starts_with("unauthorized_") => {
            ProviderError::Denied(text)
        }
        _ if call.is_some_and(CallError::is_transient) => ProviderError::Transient(text),
        _ => ProviderError::Invalid(text),
    }
}

/// `remoteRef.property` of a secret value as ESO's Google and Azure providers read it: the
/// whole value when empty, else the exact key or gjson path of the JSON value.
pub(crate) fn property_of(
    raw: SecretBytes,
    key: &str,
    property: &str,
) -> Result<SecretBytes, ProviderError> {
    if property.is_empty() {
        return Ok(raw);
    }
    let v: Value = serde_json::from_slice(raw.expose()).map_err(|_| {
        ProviderError::Invalid(format!(
            "key {property:?} does not exist in secret {key} (the secret is not JSON)"
        ))
    })?;
    let x = property_dotted(&v, property).ok_or_else(|| {
        ProviderError::Invalid(format!("key {property:?} does not exist in secret {key}"))
    })?;
    Ok(SecretBytes::from(scalar_text(x).as_str()))
}

/// `find.name.regexp` compiled (`None` when empty: every name).
pub(crate) fn name_filter(regexp: &str) -> Result<Option<regex::Regex>, ProviderError> {
    if regexp.is_empty() {
        return Ok(None);
    }
    regex::Regex::new(regexp)
        .map(Some)
        .map_err(|e| ProviderError::Invalid(format!("find.name.regexp: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_onto_the_seam() {
        let api = |status: u16, code: &str| CallError::Api {
            status,
            code: code.into(),
            message: String::new(),
        };
        let class = |status, code| classify(String::new(), Some(&api(status, code)), false);
        assert!(class(404, "NOT_FOUND").is_not_found());
        for (status, code) in [
            (403, "PERMISSION_DENIED"),
            (401, "invalid_client"),
            (400, "invalid_grant"),
            (400, "unauthorized_client"),
        ] {
            assert!(
                matches!(class(status, code), ProviderError::Denied(_)),
                "{status} {code}"
            );
        }
        assert!(matches!(
            class(429, "RESOURCE_EXHAUSTED"),
            ProviderError::Throttled(_)
        ));
        assert!(matches!(
            class(503, "UNAVAILABLE"),
            ProviderError::Transient(_)
        ));
        assert!(matches!(
            class(400, "FAILED_PRECONDITION"),
            ProviderError::Invalid(_)
        ));
        assert!(matches!(
            classify(String::new(), None, true),
            ProviderError::Denied(_)
        ));
        assert!(matches!(
            classify(String::new(), None, false),
            ProviderError::Invalid(_)
        ));
    }

    #[test]
    fn properties() {
        let raw = || SecretBytes::from(r#"{"a":{"b":1},"s":"x"}"#);
        assert_eq!(
            property_of(raw(), "k", "").unwrap().expose(),
            raw().expose()
        );
        assert_eq!(property_of(raw(), "k", "a.b").unwrap().expose(), b"1");
        assert_eq!(property_of(raw(), "k", "s").unwrap().expose(), b"x");
        assert!(property_of(raw(), "k", "nope").is_err());
        assert!(property_of(SecretBytes::from("plain"), "k", "a").is_err());
        assert!(name_filter("").unwrap().is_none());
        assert!(name_filter("(").is_err());
    }
}
