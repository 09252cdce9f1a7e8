//! The reconcilers as the runtime runs them: each wrapped to record ESO's metric families
//! ([`crate::metrics`]) for its kind.

use std::sync::Arc;

use hush_api::external_secrets::{
    ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SecretStore,
};
use kube::runtime::controller::Action;

use crate::context::Context;
use crate::metrics::{Kind, measured};
use crate::{Error, cluster, store};

/// [`crate::reconcile::reconcile`] with ESO's `externalsecret_*` metrics recorded.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let metrics = ctx.config.eso_metrics.clone();
    let notes = Arc::clone(&ctx);
    let (result, took) = measured(crate::reconcile::reconcile(Arc::clone(&es), ctx)).await;
    let ready = notes.ready.take(&*es);
    metrics.record(Kind::ExternalSecret, &*es, took, result.is_ok(), ready);
    result
}

/// [`store::reconcile_store`] with ESO's `secretstore_*` metrics recorded.
pub async fn reconcile_store(s: Arc<SecretStore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let metrics = ctx.config.eso_metrics.clone();
    let notes = Arc::clone(&ctx);
    let (result, took) = measured(store::reconcile_store(Arc::clone(&s), ctx)).await;
    let ready = notes.ready.take(&*s);
    metrics.record(Kind::SecretStore, &*s, took, result.is_ok(), ready);
    result
}

/// [`store::reconcile_cluster_store`] with ESO's `clustersecretstore_*` metrics recorded.
pub async fn reconcile_cluster_store(
    s: Arc<ClusterSecretStore>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let metrics = ctx.config.eso_metrics.clone();
    let notes = Arc::clone(&ctx);
    let (result, took) = measured(store::reconcile_cluster_store(Arc::clone(&s), ctx)).await;
    let ready = notes.ready.take(&*s);
    metrics.record(Kind::ClusterSecretStore, &*s, took, result.is_ok(), ready);
    result
}

/// [`cluster::reconcile`] with ESO's `clusterexternalsecret_*` metrics recorded.
pub async fn reconcile_cluster_external_secret(
    ces: Arc<ClusterExternalSecret>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let metrics = ctx.config.eso_metrics.clone();
    let notes = Arc::clone(&ctx);
    let (result, took) = measured(cluster::reconcile(Arc::clone(&ces), ctx)).await;
    let ready = notes.ready.take(&*ces);
    metrics.record(
        Kind::ClusterExternalSecret,
        &*ces,
        took,
        result.is_ok(),
        ready,
    );
    result
}
