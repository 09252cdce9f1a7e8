//! The HTTP API on `--listen-addr` (Bitnami's paths and status codes):
//!
//! | path | method | response |
//! |---|---|---|
//! | `/healthz` | any | `200 ok` |
//! | `/v1/cert.pem` | any | `200 application/x-pem-file`, the newest certificate; `500` without keys |
//! | `/v1/verify` | POST | `200` if a key opens every value, `409` if not, `500` on a bad document, `429` over the rate limit |
//! | `/v1/rotate` | POST | `200` with the SealedSecret re-sealed with the newest key (scope kept); `500` on any error |
//!
//! Every replica serves it with the full key set. `/v1/rotate` first copies the top-level
//! metadata over `spec.template.metadata` when they differ (Bitnami v0.36.0), so a template-only
//! scope annotation cannot widen the scope. Response bodies never contain plaintext.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use hush_crypto::SystemEntropy;
use hush_sealing::codec::{self, Format};
use hush_sealing::unseal::UnsealOptions;

use crate::keys::KeyRegistry;
use crate::metrics::SealedMetrics;

/// Largest accepted request body (Kubernetes objects are at most about 1.5 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Shared state of the API.
#[derive(Clone)]
pub struct ApiState {
    keys: Arc<KeyRegistry>,
    metrics: SealedMetrics,
    limiter: Arc<Limiter>,
    accept_deprecated_v1_data: bool,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    /// State over `keys`; `/v1/verify` limited to `rate` per second with `burst` per client.
    pub fn new(
        keys: Arc<KeyRegistry>,
        metrics: SealedMetrics,
        rate: f64,
        burst: u32,
        accept_deprecated_v1_data: bool,
    ) -> Self {
        Self {
            keys,
            metrics,
            limiter: Arc::new(Limiter::new(rate, burst)),
            accept_deprecated_v1_data,
        }
    }
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", any(healthz))
        .route("/v1/cert.pem", any(cert))
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

fn observe(
    state: &ApiState,
    path: &str,
    method: &Method,
    start: Instant,
    resp: Response,
) -> Response {
    state.metrics.http_request(
        path,
        method.as_str(),
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp
}

async fn cert(State(state): State<ApiState>, method: Method) -> Response {
    let start = Instant::now();
    let resp = match state.keys.snapshot().newest() {
        Some(k) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            k.cert.to_pem(),
        )
            .into_response(),
        None => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot get certificate\n",
        ),
    };
    observe(&state, "/v1/cert.pem", &method, start, resp)
}

/// Reads exactly one SealedSecret (Bitnami refuses multi-document input).
fn read_one(body: &[u8]) -> Result<hush_sealing::SealedSecret, String> {
    let mut all = codec::read_sealed_secrets(body).map_err(|e| e.to_string())?;
    if all.len() > 1 {
        return Err("multi-document input is not supported".into());
    }
    all.pop()
        .ok_or_else(|| "the request holds no SealedSecret".to_owned())
        .and_then(|s| {
            if s.kind.is_empty() || s.kind == hush_sealing::types::SEALED_SECRET_KIND {
                Ok(s)
            } else {
                Err(format!("unexpected kind {:?}", s.kind))
            }
        })
}

async fn verify(
    State(state): State<ApiState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !state.limiter.allow(&client) {
        let resp = text(StatusCode::TOO_MANY_REQUESTS, "limit exceeded\n");
        return observe(&state, "/v1/verify", &method, start, resp);
    }
    let resp = match read_one(&body) {
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Ok(sealed) => {
            let keys = state.keys.snapshot();
            let opts = UnsealOptions {
                accept_deprecated_v1_data: state.accept_deprecated_v1_data,
                ..Default::default()
            };
            match tokio::task::spawn_blocking(move || {
                keys.keyring().unseal(&sealed, &opts).map(|_| ())
            })
            .await
            {
                Ok(Ok(())) => text(StatusCode::OK, ""),
                Ok(Err(e)) => text(StatusCode::CONFLICT, format!("{e}\n")),
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
            }
        }
    };
    observe(&state, "/v1/verify", &method, start, resp)
}

async fn rotate(State(state): State<ApiState>, method: Method, body: Bytes) -> Response {
    let start = Instant::now();
    let keys = state.keys.snapshot();
    let accept_v1 = state.accept_deprecated_v1_data;
    let result = match read_one(&body) {
        Err(e) => Err(e),
        Ok(mut sealed) => tokio::task::spawn_blocking(move || {
            let newest = keys.newest().ok_or("cannot get certificate")?;
            if sealed.metadata != sealed.spec.template.metadata {
                sealed.spec.template.metadata = sealed.metadata.clone();
            }
            let opts = UnsealOptions {
                accept_deprecated_v1_data: accept_v1,
                ..Default::default()
            };
            let unsealed = keys
                .keyring()
                .unseal(&sealed, &opts)
                .map_err(|e| e.to_string())?;
            let resealed = hush_sealing::seal::seal_secret(
                &newest.cert.public_key,
                &unsealed.secret,
                &mut SystemEntropy,
            )
            .map_err(|e| e.to_string())?;
            codec::write_sealed_secret(&resealed, Format::Json).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err("internal error".to_owned())),
    };
    let resp = match result {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    observe(&state, "/v1/rotate", &method, start, resp)
}

/// Per-client token buckets for `/v1/verify` (Bitnami: 2/s, burst 2, keyed on
/// `X-Forwarded-For`).
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// `rate <= 0` disables the limit.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client` if one is available.
    pub fn allow(&self, client: &str) -> bool {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return true;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        if buckets.len() > 10_000 {
            // Forget idle clients (a full bucket is the same as no bucket).
            let full = self.burst / self.rate;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full);
        }
        let (tokens, at) = buckets.get(client).copied().unwrap_or((self.burst, now));
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            buckets.insert(client.to_owned(), (tokens - 1.0, now));
            true
        } else {
            buckets.insert(client.to_owned(), (tokens, now));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_burst_per_client() {
        let l = Limiter::new(0.001, 2);
        assert!(l.allow("a"));
        assert!(l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"));
        let off = Limiter::new(0.0, 1);
        assert!((0..10).all(|_| off.allow("a")));
    }

    #[test]
    fn read_one_refuses_multi_documents_and_other_kinds() {
        assert!(read_one(b"{\"kind\":\"SealedSecret\",\"metadata\":{\"name\":\"a\"}}").is_ok());
        assert!(read_one(b"kind: Secret\nmetadata: {name: a}\n").is_err());
        assert!(
            read_one(b"kind: SealedSecret\nmetadata: {name: a}\n---\nkind: SealedSecret\nmetadata: {name: b}\n")
                .is_err()
        );
        assert!(read_one(b"not yaml: [").is_err());
    }
}
