//! [`run`]: drives one kube-runtime `Controller` with plain `reconcile` and `error_policy`
//! functions until shutdown, recording reconcile counts and latency.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt as _, StreamExt as _};
use kube::Resource;
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config as ControllerConfig, Error as ControllerError};

use crate::Shutdown;
use crate::metrics::{ReconcileMetrics, ReconcileResult};

/// How [`run`] drives a controller.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The controller's name in metrics and logs (`sealed`, `external`).
    pub name: &'static str,
    /// Objects reconciled at once (kube-runtime never runs one object twice at once).
    pub concurrency: u16,
    /// The runtime's metrics.
    pub metrics: ReconcileMetrics,
    /// Stops the controller: no new reconciliations start, running ones finish.
    pub shutdown: Shutdown,
    /// The name controller-runtime would give it (`externalsecret`), for the
    /// `controller_runtime_*` families; `None` for a controller that never was one.
    pub runtime_name: Option<&'static str>,
}

/// Runs `controller` until `config.shutdown` fires.
pub async fn run<K, Ctx, Fut, E>(
    controller: Controller<K>,
    mut reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: impl Fn(Arc<K>, &E, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
    config: RunConfig,
) where
    K: Resource + Clone + serde::de::DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Unpin,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    // `graceful_shutdown_on` needs a `Sync` future: bridge through a oneshot channel.
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let shutdown = config.shutdown.clone();
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = stop_tx.send(());
    });
    let name = config.name;
    let runtime_name = config.runtime_name;
    let metrics = config.metrics.clone();
    if let Some(rn) = runtime_name {
        metrics.set_max_concurrent(rn, config.concurrency);
    }
    let store = controller.store();
    let driven = controller
        .with_config(ControllerConfig::default().concurrency(config.concurrency))
        .graceful_shutdown_on(stop_rx.map(|_| ()))
        .run(
            move |obj, ctx| {
                let metrics = metrics.clone();
                let start = Instant::now();
                let fut = reconcile(obj, ctx);
                async move {
                    if let Some(rn) = runtime_name {
                        metrics.add_active(rn, 1);
                    }
                    let result = fut.await;
                    let took = start.elapsed();
                    metrics.observe(name, result.is_ok(), took);
                    if let Some(rn) = runtime_name {
                        metrics.add_active(rn, -1);
                        let outcome = match &result {
                            Err(_) => ReconcileResult::Error,
                            Ok(a) if *a == Action::await_change() => ReconcileResult::Success,
                            Ok(_) => ReconcileResult::RequeueAfter,
                        };
                        metrics.observe_runtime(rn, outcome, took);
                    }
                    result
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|result| {
            match result {
                Ok(_) => {}
                Err(ControllerError::ReconcilerFailed(err, obj)) => {
                    tracing::warn!(controller = name, object = %obj, error = %err, "reconcile failed");
                }
                Err(ControllerError::QueueError(err)) => {
                    tracing::warn!(controller = name, error = %err, "watch failed");
                }
                Err(err) => {
                    tracing::debug!(controller = name, error = %err, "controller event");
                }
            }
            std::future::ready(())
        });
    let mut driven = std::pin::pin!(driven);
    tokio::select! {
        () = &mut driven => {
            tracing::info!(controller = name, "controller stopped");
            return;
        }
        () = config.shutdown.wait() => {}
    }
    // kube-runtime holds its runner until the store has listed once, and a graceful shutdown
    // stops polling the watch that would fill it: stopped before its first list, the controller
    // would wait forever. Nothing can be running then, so it is dropped at once.
    if store.wait_until_ready().now_or_never().is_none() {
        tracing::info!(
            controller = name,
            "controller stopped before its first list"
        );
        return;
    }
    driven.await;
    tracing::info!(controller = name, "controller stopped");
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::client::Body;
    use kube::{Api, Client};

    use super::*;

    /// An API server that accepts every request and never answers.
    #[derive(Clone)]
    struct Silent;

    impl tower::Service<http::Request<Body>> for Silent {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Pending<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            std::future::pending()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    // A controller shut down before its first list used to wait for that list forever.
    #[tokio::test]
    async fn stops_when_shut_down_before_the_first_list() {
        let client = Client::new(Silent, "default");
        let controller = Controller::new(Api::<ConfigMap>::all(client), Default::default());
        let shutdown = Shutdown::new();
        let config = RunConfig {
            name: "test",
            concurrency: 2,
            metrics: ReconcileMetrics::register(
                &mut prometheus_client::registry::Registry::default(),
            ),
            shutdown: shutdown.clone(),
            runtime_name: None,
        };
        let running = tokio::spawn(run(
            controller,
            |_: Arc<ConfigMap>, _: Arc<()>| async { Ok::<_, Never>(Action::await_change()) },
            |_, _: &Never, _| Action::await_change(),
            Arc::new(()),
            config,
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.trigger();
        let stopped = tokio::time::timeout(Duration::from_secs(10), running).await;
        assert!(matches!(stopped, Ok(Ok(()))), "the controller did not stop");
    }
}
