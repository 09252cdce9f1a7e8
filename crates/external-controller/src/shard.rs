//! `--shards K` for the ExternalSecret controller, over [`hush_operator::shards`]: each replica
//! watches and caches only the ExternalSecrets, ClusterExternalSecrets, PushSecrets and
//! ClusterPushSecrets of the shards it holds (and the managed Secrets their owners are in), and
//! reconciles an object only with a write permit for its shard. Stores are cached whole (every
//! replica's ExternalSecrets read them) but validated only by their shard's holder (by the run
//! that serves the shard: a replica runs the controllers once per batch of shards it took). The provider
//! cache lives across the restarts a change of held shards causes, so reads stay deduplicated
//! per store within a replica.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt as _, Stream};
use hush_operator::Shards;
use hush_operator::metrics::ReconcileMetrics;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use crate::context::Lasting;
use crate::{Config, Context};

/// Which objects one run of the controllers serves.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) shards: Shards,
    /// The shards held when the run started (`None`: every object).
    pub(crate) owned: Option<BTreeSet<u32>>,
}

impl Scope {
    /// Every object, with permits always granted (one shard).
    pub(crate) fn all() -> Self {
        Self {
            shards: Shards::unsharded(),
            owned: None,
        }
    }

    /// Whether this run serves `namespace/name`'s shard.
    pub(crate) fn serves(&self, namespace: &str, name: &str) -> bool {
        self.owned
            .as_ref()
            .is_none_or(|owned| owned.contains(&self.shards.shard_of(namespace, name)))
    }

    /// Whether another run of this replica serves `namespace/name` (it is held here but not in
    /// this run's shards): its objects are not in this run's caches, yet they exist.
    pub(crate) fn served_elsewhere(&self, namespace: &str, name: &str) -> bool {
        !self.serves(namespace, name)
            && self
                .shards
                .owned()
                .contains(&self.shards.shard_of(namespace, name))
    }

    /// `events` without the objects of other shards.
    pub(crate) fn objects<K, S>(
        &self,
        events: S,
    ) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K, S>
    where
        K: Resource + Send,
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    {
        hush_operator::shards::in_shards(events, self.shards.clone(), self.owned.clone())
    }

    /// Managed Secrets without those whose controlling ExternalSecret is in another shard
    /// (Secrets without one, e.g. `creationPolicy: Merge` targets, pass: reconciles GET those).
    pub(crate) fn secrets<S>(
        &self,
        events: S,
    ) -> impl Stream<Item = Result<watcher::Event<Secret>, watcher::Error>> + Send + use<S>
    where
        S: Stream<Item = Result<watcher::Event<Secret>, watcher::Error>> + Send,
    {
        hush_operator::shards::in_shards_by(
            events,
            self.shards.clone(),
            self.owned.clone(),
            owning_external_secret,
        )
    }

    /// `reconcile` run only while this replica may write the object's shard, holding the
    /// permit until it ends (the shard is not handed over meanwhile).
    pub(crate) fn fence<K, E, F, Fut>(
        &self,
        reconcile: F,
    ) -> impl FnMut(Arc<K>, Arc<Context>) -> BoxFuture<'static, Result<Action, E>> + use<K, E, F, Fut>
    where
        K: Resource + Send + Sync + 'static,
        E: Send + 'static,
        F: Fn(Arc<K>, Arc<Context>) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let (shards, run) = (self.shards.clone(), self.clone());
        move |object, ctx| {
            let meta = object.meta();
            let namespace = meta.namespace.clone().unwrap_or_default();
            let name = meta.name.clone().unwrap_or_default();
            // Stores are cached whole by every run: only the run serving its shard reconciles one.
            if !run.serves(&namespace, &name) {
                return futures::future::ready(Ok(Action::await_change())).boxed();
            }
            let Some(permit) = shards.write_permit(&namespace, &name) else {
                let action = if shards.owned().contains(&shards.shard_of(&namespace, &name)) {
                    // Held, but its renewal is late: again once the keeper renewed or dropped it.
                    Action::requeue(Duration::from_secs(1))
                } else {
                    tracing::debug!(%namespace, %name, "not this replica's shard (any more)");
                    Action::await_change()
                };
                return futures::future::ready(Ok(action)).boxed();
            };
            let work = reconcile(object, ctx);
            async move {
                let result = work.await;
                drop(permit);
                result
            }
            .boxed()
        }
    }
}

/// The ExternalSecret controlling `secret` (its namespace and name), if any.
fn owning_external_secret(secret: &Secret) -> Option<(String, String)> {
    let owner = secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "ExternalSecret" && o.controller == Some(true))?;
    Some((
        secret.metadata.namespace.clone().unwrap_or_default(),
        owner.name.clone(),
    ))
}

/// Runs the controllers over the shards this replica holds until `shutdown`: shards it takes in
/// a run of their own (listing their objects), and when it loses one, the run that held it again
/// over its other shards (dropping the lost shard's objects from the caches).
pub(crate) async fn run_sharded(
    client: kube::Client,
    config: Arc<Config>,
    metrics: ReconcileMetrics,
    shards: Shards,
    shutdown: hush_operator::Shutdown,
) {
    // One provider cache and drift ledger for every run: a hand-over does not cost the other
    // shards' reads.
    let lasting = Lasting::new(&config);
    hush_operator::shards::for_each_shard_set(
        &shards,
        "external",
        &shutdown,
        |owned, generation| {
            let scope = Scope {
                shards: shards.clone(),
                owned: Some(owned),
            };
            crate::run_scoped(
                client.clone(),
                config.clone(),
                metrics.clone(),
                generation,
                scope,
                Some(lasting.clone()),
            )
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_secret_follows_its_controlling_external_secret() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "target", "namespace": "team", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1", "controller": false},
                {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "db",
                 "uid": "2", "controller": true}
            ]}
        }))
        .unwrap_or_default();
        assert_eq!(
            owning_external_secret(&secret),
            Some(("team".into(), "db".into()))
        );
        let merged: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "target", "namespace": "team"}
        }))
        .unwrap_or_default();
        assert_eq!(owning_external_secret(&merged), None);
    }
}
