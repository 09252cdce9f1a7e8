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
use crate::metrics::ReconcileMetrics;

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
    let metrics = config.metrics.clone();
    controller
        .with_config(ControllerConfig::default().concurrency(config.concurrency))
        .graceful_shutdown_on(stop_rx.map(|_| ()))
        .run(
            move |obj, ctx| {
                let metrics = metrics.clone();
                let start = Instant::now();
                let fut = reconcile(obj, ctx);
                async move {
                    let result = fut.await;
                    metrics.observe(name, result.is_ok(), start.elapsed());
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
        })
        .await;
    tracing::info!(controller = name, "controller stopped");
}
