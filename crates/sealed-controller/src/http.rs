//! The HTTP API on `--listen-addr` (Bitnami's paths and status codes):
//!
//! | path | method | response |
//! |---|---|---|
//! | `/healthz` | any | `200 ok` |
//! | `/v1/cert.pem` | any | `200 application/x-pem-file`, the newest certificate; `500` without keys |
//! | `/v1/verify` | POST | `200` if a key opens every value, `409` if not, `500` on a bad document, `429` over the rate limit |
//! | `/v1/rotate` | POST | `200` with the SealedSecret re-sealed with the newest key (scope kept); `500` on any error, `429` over the rate limit |
//!
//! Every replica serves it with the full key set. `/v1/rotate` first copies the top-level
//! metadata over `spec.template.metadata` when they differ (Bitnami v0.36.0), so a template-only
//! scope annotation cannot widen the scope. Response bodies never contain plaintext.
//!
//! The API is unauthenticated (as Bitnami's), so every request is bounded beyond the server's
//! [`hush_operator::server::HttpLimits`]: a rate limit per client for `/v1/verify` and
//! `/v1/rotate`, keyed on the peer address (`X-Forwarded-For` only from `--trusted-proxies`); a
//! budget of RSA private-key operations per request; decryption on `--api-workers` blocking
//! threads of its own, apart from the reconciles' slots; and a `method` label bounded to the
//! standard methods (client_golang CVE-2022-21698).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use hush_crypto::SystemEntropy;
use hush_sealing::codec::{self, Format};
use hush_sealing::unseal::UnsealOptions;
use tokio::sync::Semaphore;

use crate::config::{Cidr, Config};
use crate::keys::SealingKeys;
use crate::metrics::SealedMetrics;

/// Shared state of the API.
#[derive(Clone)]
pub struct ApiState {
    keys: Arc<SealingKeys>,
    metrics: SealedMetrics,
    verify_limiter: Arc<Limiter>,
    rotate_limiter: Arc<Limiter>,
    trusted_proxies: Arc<[Cidr]>,
    workers: Arc<Semaphore>,
    opts: UnsealOptions,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    /// State over `keys` with `config`'s limits.
    pub fn new(keys: Arc<SealingKeys>, metrics: SealedMetrics, config: &Config) -> Self {
        Self {
            keys,
            metrics,
            verify_limiter: Arc::new(Limiter::new(config.rate_limit, config.rate_limit_burst)),
            rotate_limiter: Arc::new(Limiter::new(
                config.rotate_rate_limit,
                config.rotate_rate_limit_burst,
            )),
            trusted_proxies: config.trusted_proxies.clone().into(),
            workers: Arc::new(Semaphore::new(config.api_workers.max(1))),
            opts: UnsealOptions {
                accept_deprecated_v1_data: config.accept_deprecated_v1_data,
                max_key_operations: Some(config.api_max_decrypt_operations),
                template_limits: config.template_limits,
            },
        }
    }

    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        client_address(peer, headers, &self.trusted_proxies)
    }

    /// Runs `work` on a blocking thread once one of the API's workers is free.
    async fn decrypt<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let _worker = self
            .workers
            .acquire()
            .await
            .map_err(|_| "shutting down".to_owned())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| "internal error".to_owned())
    }
}

/// The client a request counts against: the peer, or, when the peer is a trusted proxy, the
/// nearest `X-Forwarded-For` hop that is not a trusted proxy itself (hops are appended, so the
/// ones before it were written by whoever the proxy served and prove nothing).
fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let peer = peer.ip().to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(ip) => client = ip,
            Ok(ip) => return ip,
            // Not an address: nothing the proxy wrote; the last trusted hop counts.
            Err(_) => return client,
        }
    }
    client
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", any(healthz))
        .route("/v1/cert.pem", any(cert))
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = state.client(peer, &headers);
    let answer = verify_answer(&state, &body);
    limited(
        &state,
        &state.verify_limiter,
        client,
        "/v1/verify",
        &method,
        answer,
    )
    .await
}

/// A rate-limited call: `429 limit exceeded` over `limiter`'s budget for `client`, else
/// `answer`'s response (not started when refused); observed under `path` either way.
async fn limited(
    state: &ApiState,
    limiter: &Limiter,
    client: IpAddr,
    path: &'static str,
    method: &Method,
    answer: impl Future<Output = Response>,
) -> Response {
    let start = Instant::now();
    let resp = if limiter.allow(client) {
        answer.await
    } else {
        text(StatusCode::TOO_MANY_REQUESTS, "limit exceeded\n")
    };
    observe(state, path, method, start, resp)
}

/// `/v1/verify`: 200 if a key opens every value, 409 if not.
async fn verify_answer(state: &ApiState, body: &[u8]) -> Response {
    match read_one(body) {
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Ok(sealed) => {
            let keys = state.keys.snapshot();
            let opts = state.opts;
            match state
                .decrypt(move || keys.keyring().unseal(&sealed, &opts).map(|_| ()))
                .await
            {
                Ok(Ok(())) => text(StatusCode::OK, ""),
                Ok(Err(e)) => text(StatusCode::CONFLICT, format!("{e}\n")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            }
        }
    }
}

async fn rotate(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = state.client(peer, &headers);
    let answer = rotate_answer(&state, &body);
    limited(
        &state,
        &state.rotate_limiter,
        client,
        "/v1/rotate",
        &method,
        answer,
    )
    .await
}

/// `/v1/rotate`: 200 with the SealedSecret re-sealed with the newest key.
async fn rotate_answer(state: &ApiState, body: &[u8]) -> Response {
    let keys = state.keys.snapshot();
    let opts = state.opts;
    let result = match read_one(body) {
        Err(e) => Err(e),
        Ok(mut sealed) => state
            .decrypt(move || {
                let newest = keys.newest().ok_or("cannot get certificate")?;
                if sealed.metadata != sealed.spec.template.metadata {
                    sealed.spec.template.metadata = sealed.metadata.clone();
                }
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
            .and_then(|r| r),
    };
    match result {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// Per-client token buckets (Bitnami's for `/v1/verify`: 2/s, burst 2).
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
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
    pub fn allow(&self, client: IpAddr) -> bool {
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
        let (tokens, at) = buckets.get(&client).copied().unwrap_or((self.burst, now));
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            buckets.insert(client, (tokens - 1.0, now));
            true
        } else {
            buckets.insert(client, (tokens, now));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let peer = |s: &str| SocketAddr::new(ip(s), 40000);
        let xff = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", v.parse().unwrap());
            h
        };
        let none: Vec<Cidr> = Vec::new();
        // Untrusted peer: the header is ignored, whatever it claims.
        assert_eq!(
            client_address(peer("203.0.113.9"), &xff("1.2.3.4"), &none),
            ip("203.0.113.9")
        );
        let proxies: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_address(peer("203.0.113.9"), &xff("1.2.3.4"), &proxies),
            ip("203.0.113.9")
        );
        // A trusted proxy: the nearest hop it did not write itself.
        assert_eq!(
            client_address(
                peer("10.0.0.5"),
                &xff("6.6.6.6, 198.51.100.7, 10.0.0.9"),
                &proxies
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(peer("10.0.0.5"), &HeaderMap::new(), &proxies),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_address(peer("10.0.0.5"), &xff("junk"), &proxies),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn limiter_allows_burst_per_client() {
        let l = Limiter::new(0.001, 2);
        assert!(l.allow(ip("10.0.0.1")));
        assert!(l.allow(ip("10.0.0.1")));
        assert!(!l.allow(ip("10.0.0.1")));
        assert!(l.allow(ip("10.0.0.2")));
        let off = Limiter::new(0.0, 1);
        assert!((0..10).all(|_| off.allow(ip("10.0.0.1"))));
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
