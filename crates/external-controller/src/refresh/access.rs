//! Who is asking and may they: the caller's bearer token checked with a TokenReview, the user it
//! names checked with a SubjectAccessReview. The token goes to the API server only, in the
//! review's body; it is never logged, put in an error or kept after the review.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use secrecy::{ExposeSecret as _, SecretString};

use super::{Refusal, Target};

/// The longest bearer token read; a longer header is refused before any review.
pub(super) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// An authenticated caller, as the TokenReview named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Caller {
    pub(super) username: String,
    pub(super) uid: Option<String>,
    pub(super) groups: Vec<String>,
    pub(super) extra: BTreeMap<String, Vec<String>>,
}

/// The bearer token of `Authorization: Bearer <token>`.
pub(super) fn bearer(headers: &HeaderMap) -> Result<SecretString, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Refusal::Unauthorized(
            "send one Authorization: Bearer <token> header (a Kubernetes token)",
        ));
    };
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(Refusal::Unauthorized("the bearer token is too long"));
    }
    let text = value
        .to_str()
        .map_err(|_| Refusal::Unauthorized("the Authorization header is not ASCII"))?;
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(Refusal::Unauthorized(
                "the Authorization header is not `Bearer <token>`",
            ));
        }
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(Refusal::Unauthorized(
            "the bearer token is empty or malformed",
        ));
    }
    Ok(SecretString::from(token.to_owned()))
}

/// The user `token` belongs to, for a token meant for one of `audiences` (empty: the API
/// server's own).
pub(super) async fn authenticate(
    client: &kube::Client,
    token: SecretString,
    audiences: &[String],
) -> Result<Caller, Refusal> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.expose_secret().to_owned(),
            audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
        },
        ..TokenReview::default()
    };
    drop(token);
    let api: Api<TokenReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await;
    // The request body held the token; dropped before anything else happens.
    drop(review);
    let answer = answer.map_err(|e| {
        tracing::warn!(error = %e, "refresh endpoint: TokenReview failed");
        Refusal::Unavailable("cannot check the token with the Kubernetes API (TokenReview)")
    })?;
    let status = answer.status.unwrap_or_default();
    let user = status.user.unwrap_or_default();
    let audience_ok = audiences.is_empty()
        || status
            .audiences
            .iter()
            .flatten()
            .any(|a| audiences.contains(a));
    match user.username {
        Some(username) if status.authenticated == Some(true) && audience_ok => Ok(Caller {
            username,
            uid: user.uid,
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        }),
        _ => Err(Refusal::Unauthorized(
            "the bearer token is not valid (TokenReview), or not for this endpoint's audience",
        )),
    }
}

/// Whether `caller` may `patch` the object of `target` (SubjectAccessReview).
pub(super) async fn authorize(
    client: &kube::Client,
    caller: &Caller,
    target: &Target,
) -> Result<(), Refusal> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(caller.username.clone()),
            uid: caller.uid.clone(),
            groups: Some(caller.groups.clone()),
            extra: Some(caller.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some("external-secrets.io".into()),
                resource: Some(target.resource().into()),
                namespace: target.namespace().map(str::to_owned),
                name: Some(target.name().to_owned()),
                verb: Some("patch".into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "refresh endpoint: SubjectAccessReview failed");
            Refusal::Unavailable(
                "cannot check the permission with the Kubernetes API (SubjectAccessReview)",
            )
        })?;
    if answer.status.is_some_and(|s| s.allowed) {
        return Ok(());
    }
    Err(Refusal::Forbidden(format!(
        "{} may not patch {}: the refresh needs that permission",
        caller.username,
        target.describe()
    )))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(
            bearer(&headers(&["Bearer abc.def"]))
                .unwrap()
                .expose_secret(),
            "abc.def"
        );
        assert_eq!(
            bearer(&headers(&["bearer  xyz "])).unwrap().expose_secret(),
            "xyz"
        );
        for bad in [
            &[][..],
            &["Basic dXNlcjpwdw=="],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a", "Bearer b"],
        ] {
            assert!(
                matches!(bearer(&headers(bad)), Err(Refusal::Unauthorized(_))),
                "{bad:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(bearer(&headers(&[long.as_str()])).is_err());
    }
}
