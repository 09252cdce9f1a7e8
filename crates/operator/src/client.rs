//! The kube client of a controller process: configuration from `KUBECONFIG`/`~/.kube/config` or
//! the in-cluster service account (kube's `Config::infer`), plus a client-side QPS/burst limit as
//! client-go's (`--kubeclient-qps`, `--kubeclient-burst`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use kube::Client;
use kube::client::ClientBuilder;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::{Error, Result};

/// Builds a client from the inferred configuration, limited to `qps` requests per second with
/// bursts of `burst`. `qps <= 0` disables the limit (client-go's convention).
pub async fn build(qps: f32, burst: u32) -> Result<Client> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::Config(Box::new(e)))?;
    from_config(config, qps, burst)
}

/// Builds a limited client from an explicit configuration.
pub fn from_config(config: kube::Config, qps: f32, burst: u32) -> Result<Client> {
    let builder = ClientBuilder::try_from(config).map_err(Error::Client)?;
    Ok(builder.with_layer(&RateLimitLayer::new(qps, burst)).build())
}

/// A token bucket: `qps` tokens per second, at most `burst` stored. Requests wait for a token
/// when they are polled, not when they are created.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Bucket>>,
}

impl RateLimitLayer {
    /// A limiter of `qps` per second and `burst`; `qps <= 0` (or not finite) disables it.
    pub fn new(qps: f32, burst: u32) -> Self {
        let bucket = (qps.is_finite() && qps > 0.0).then(|| {
            let burst = f64::from(burst.max(1));
            Arc::new(Bucket {
                qps: f64::from(qps),
                burst,
                state: Mutex::new((burst, Instant::now())),
            })
        });
        Self { bucket }
    }
}

#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    /// Tokens available and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// Takes a token, or says how long to wait for one.
    fn try_take(&self) -> Option<Duration> {
        // A poisoned lock only means another request panicked mid-update; the counter is still
        // a valid number, so keep using it.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, at) = *state;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.qps).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            None
        } else {
            *state = (tokens, now);
            Some(Duration::from_secs_f64((1.0 - tokens) / self.qps))
        }
    }

    async fn acquire(&self) {
        while let Some(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Option<Arc<Bucket>>,
}

impl<S, Req> Service<Req> for RateLimit<S>
where
    S: Service<Req>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let fut = self.inner.call(req);
        let bucket = self.bucket.clone();
        Box::pin(async move {
            if let Some(bucket) = bucket {
                bucket.acquire().await;
            }
            fut.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_burst_then_qps() {
        let layer = RateLimitLayer::new(10.0, 3);
        let Some(bucket) = layer.bucket else {
            panic!("limiter expected");
        };
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.try_take(), None);
        }
        assert!(bucket.try_take().is_some());
        for _ in 0..5 {
            bucket.acquire().await;
        }
        // The burst is spent: five more tokens at 10/s take about half a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(450), "{took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(RateLimitLayer::new(0.0, 3).bucket.is_none());
        assert!(RateLimitLayer::new(-1.0, 3).bucket.is_none());
    }
}
