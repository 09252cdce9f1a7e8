//! The SealedSecret controller, a drop-in for Bitnami's: the same key Secrets, CRD, HTTP API,
//! Secret semantics and metric names.
//!
//! - [`keys`]: the key registry (load, watch, generate, renew).
//! - [`reconcile`]: the plain `reconcile` / `error_policy` pair and its [`reconcile::Context`].
//! - [`http`]: `/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, `/healthz`.
//! - [`metrics`]: Bitnami's metric families plus hush's.
//! - [`start`]: builds the controller's [`hush_operator::Component`] for a
//!   [`hush_operator::Process`] (the `hush controller` command, or a test).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod reconcile;
pub mod retire;

mod cache;
mod prime;
mod watch;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use hush_api::sealed_secret::SealedSecret;
use hush_operator::{Component, Process, RunConfig};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{Controller, WatchStreamExt as _, reflector, watcher};

pub use config::{Config, KeyOrderPriority, Namespaces};
pub use keys::SealingKeys;
pub use reconcile::{Context, error_policy, reconcile};

use crate::cache::Stage;

/// The controller's name in `--controllers` and in metrics.
pub const NAME: &str = "sealed";

/// Errors of the controller. None carries plaintext or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Key generation or parsing failed.
    #[error("{0}")]
    Crypto(#[source] hush_crypto::Error),
    /// The SealedSecret could not be unsealed.
    #[error("{0}")]
    Unseal(#[source] hush_sealing::Error),
    /// The SealedSecret cannot be read.
    #[error("invalid SealedSecret: {0}")]
    Invalid(String),
    /// The Secret exists and is neither owned by this SealedSecret nor marked `managed`/`patch`.
    #[error("Resource {name:?} already exists and is not managed by SealedSecret")]
    Unmanaged {
        /// The Secret's name.
        name: String,
    },
    /// The Secret is immutable (or has another type) and is not owned, so it cannot be replaced.
    #[error(
        "Secret {name:?} is immutable or of another type and not owned by this SealedSecret; delete it to let the controller recreate it"
    )]
    Immutable {
        /// The Secret's name.
        name: String,
    },
    /// There are no sealing keys yet.
    #[error("no key could decrypt secret: the controller has no sealing keys")]
    NoKeys,
    /// An internal task failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// The runtime failed.
    #[error(transparent)]
    Operator(#[from] hush_operator::Error),
}

impl Error {
    /// Bitnami's `reason` label of `sealed_secrets_controller_unseal_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { what, .. } if what.starts_with("get") => "fetch",
            Error::Kube { .. } | Error::Immutable { .. } | Error::Operator(_) => "update",
            Error::Unmanaged { .. } => "unmanaged",
            Error::Crypto(_)
            | Error::Unseal(_)
            | Error::Invalid(_)
            | Error::NoKeys
            | Error::Internal(_) => "unseal",
        }
    }

    /// Bitnami's event reason.
    pub fn event_reason(&self) -> &'static str {
        match self.metric_label() {
            "unseal" => "ErrUnsealFailed",
            _ => "ErrUpdateFailed",
        }
    }

    /// Whether retrying cannot help until something changes (keys, spec, the blocking Secret).
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            Error::Kube { .. } | Error::Internal(_) | Error::Operator(_)
        )
    }
}

/// Result alias of the controller.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A started controller: its component for the process, and what tests want to reach.
#[derive(Debug)]
pub struct Started {
    /// Run it with [`Process::run`].
    pub component: Component,
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// The key registry.
    pub keys: Arc<SealingKeys>,
}

/// Loads the keys, binds the HTTP API and returns the controller's component. Every replica
/// runs the key watch and the API; the leader also generates and renews keys and reconciles.
pub async fn start(process: &mut Process, config: Config) -> Result<Started> {
    config::validate_key_prefix(&config.key_prefix).map_err(Error::Invalid)?;
    config::validate_retirement(&config).map_err(Error::Invalid)?;
    let config = Arc::new(config);
    let client = process.client().clone();
    let metrics = metrics::SealedMetrics::register(process.registry());
    let keys = Arc::new(SealingKeys::new(
        client.clone(),
        config.clone(),
        metrics.clone(),
    ));
    let n = keys.load().await?;
    tracing::info!(keys = n, namespace = %config.key_namespace, "sealing keys loaded");

    let listener = hush_operator::server::bind(&config.listen_addr).await?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("listener address: {e}")))?;
    tracing::info!(addr = %api_addr, "serving the Sealed Secrets API");
    let router = http::router(http::ApiState::new(keys.clone(), metrics.clone(), &config));
    let shutdown = process.shutdown();
    let limits = process.http_limits().clone();
    let serve = hush_operator::server::serve(listener, router, limits, shutdown.clone())
        .map(|r| r.map_err(|e| e.to_string()))
        .boxed();
    let watch = keys
        .clone()
        .watch(shutdown.clone())
        .map(|r| r.map_err(|e| e.to_string()))
        .boxed();
    // Installed before `start` returns, so SIGUSR1 never kills a starting controller.
    let sigusr1 = keys
        .renew_on_sigusr1(shutdown)?
        .map(|r| r.map_err(|e| e.to_string()))
        .boxed();

    let shards = process.shards();
    let ctx = Arc::new(
        Context::new(client.clone(), config.clone(), keys.clone(), metrics)
            .with_shards(shards.clone()),
    );
    let reconcile_metrics = process.reconcile_metrics();
    let mut always = vec![serve, watch, sigusr1];
    // Sharded, every replica reconciles its shards; the leader only makes and retires keys.
    let leader_reconciles = !shards.is_sharded();
    if shards.is_sharded() {
        always.push(
            run_sharded(
                client.clone(),
                config.clone(),
                ctx.clone(),
                reconcile_metrics.clone(),
                process.shutdown(),
            )
            .map(Ok)
            .boxed(),
        );
    }
    let renew_keys = keys.clone();
    let leader: hush_operator::LeaderTask = Box::new(move |shutdown| {
        async move {
            // Keys first, so that nothing is reconciled (and failed) before the first key exists.
            let requests = renew_keys.renewal_requests();
            renew_keys
                .ensure_initial()
                .await
                .map_err(|e| e.to_string())?;
            let renew = renew_keys.renew(requests, shutdown.clone());
            let retire = retire::run(ctx.clone(), shutdown.clone());
            let controllers = async {
                if leader_reconciles {
                    let all = None;
                    run_controllers(
                        client,
                        config,
                        ctx,
                        reconcile_metrics,
                        shutdown.clone(),
                        all,
                    )
                    .await;
                }
            };
            let (renewed, (), ()) = futures::join!(
                async {
                    let r = renew.await;
                    if r.is_err() {
                        shutdown.trigger();
                    }
                    r
                },
                controllers,
                retire
            );
            renewed.map_err(|e| e.to_string())
        }
        .boxed()
    });
    Ok(Started {
        component: Component {
            name: NAME,
            always,
            leader,
        },
        api_addr,
        keys,
    })
}

/// An `Api` over one namespace, or every namespace for `None`.
fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    namespace.map_or_else(
        || Api::all(client.clone()),
        |ns| Api::namespaced(client.clone(), ns),
    )
}

/// Runs the controllers over the shards this replica holds: shards it takes in a run of their
/// own (listing their objects), and when it loses one, the run that held it again over its other
/// shards (dropping the lost shard's objects from the caches).
async fn run_sharded(
    client: kube::Client,
    config: Arc<Config>,
    ctx: Arc<Context>,
    metrics: hush_operator::metrics::ReconcileMetrics,
    shutdown: hush_operator::Shutdown,
) {
    // Reconciling needs a sealing key: wait for the leader's (or the key watch's) first one.
    while ctx.keys.snapshot().is_empty() {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
    let shards = ctx.shards.clone();
    hush_operator::shards::for_each_shard_set(&shards, "sealed", &shutdown, |owned, generation| {
        run_controllers(
            client.clone(),
            config.clone(),
            ctx.clone(),
            metrics.clone(),
            generation,
            Some(owned),
        )
    })
    .await;
}

/// Runs the controllers over every namespace in scope; with `shards`, only over the objects of
/// those shards (filtered before the caches, so the caches hold only them).
async fn run_controllers(
    client: kube::Client,
    config: Arc<Config>,
    ctx: Arc<Context>,
    metrics: hush_operator::metrics::ReconcileMetrics,
    shutdown: hush_operator::Shutdown,
    shards: Option<BTreeSet<u32>>,
) {
    let mut wc = watcher::Config::default();
    if let Some(selector) = &config.label_selector {
        wc = wc.labels(selector);
    }
    // `None`: every namespace.
    let scopes: Vec<Option<&str>> = match &config.namespaces {
        Namespaces::All => vec![None],
        Namespaces::List(list) => list.iter().map(|ns| Some(ns.as_str())).collect(),
    };
    // The shards this run serves (unsharded: every object is in shard 0).
    let group: BTreeSet<u32> = shards
        .clone()
        .unwrap_or_else(|| (0..ctx.shards.count()).collect());
    let watches = Watches {
        client: &client,
        ctx: &ctx,
        config: wc,
        shards,
    };
    let mut secret_stores = Vec::new();
    let mut to_prime = Vec::new();
    let mut primed_triggers = Vec::new();
    let mut controllers = Vec::new();
    for scope in scopes {
        let mut controller = watches.sealed_secrets(scope);
        if !config.skip_recreate {
            let (trigger, reader) = watches.secret_metadata(scope);
            controller = controller.owns_stream(trigger);
            secret_stores.push(reader);
            let secrets: Api<Secret> = api(&client, scope);
            to_prime.push((controller.store(), secrets));
            // Objects synced before wait for priming; once it ends they are all reconciled.
            let (done, primed) = futures::channel::oneshot::channel::<()>();
            primed_triggers.push(done);
            controller = controller.reconcile_all_on(
                futures::stream::once(primed).filter_map(|r| std::future::ready(r.ok())),
            );
        }
        controllers.push(controller);
    }
    ctx.secret_stores.insert(&group, secret_stores);
    if !to_prime.is_empty() {
        ctx.primed.set(&group, Stage::Listing);
    }
    let prime = prime::run(
        ctx.clone(),
        group.clone(),
        to_prime,
        primed_triggers,
        shutdown.clone(),
    );
    let runs = controllers.into_iter().map(|controller| {
        hush_operator::run(
            controller,
            reconcile,
            error_policy,
            ctx.clone(),
            RunConfig {
                name: NAME,
                concurrency: config.concurrency,
                metrics: metrics.clone(),
                shutdown: shutdown.clone(),
                runtime_name: None,
            },
        )
    });
    futures::join!(prime, futures::future::join_all(runs));
    ctx.secret_stores.remove(&group);
    ctx.primed.set(&group, Stage::Done);
}

/// The watches of one [`run_controllers`]: `--label-selector` applies to both, as Bitnami's
/// informers, and with `shards` they pass only the objects of those shards.
struct Watches<'a> {
    client: &'a kube::Client,
    ctx: &'a Arc<Context>,
    config: watcher::Config,
    shards: Option<std::collections::BTreeSet<u32>>,
}

impl Watches<'_> {
    /// The SealedSecret controller of one namespace (`None`: every namespace), over a slim
    /// cache.
    fn sealed_secrets(&self, scope: Option<&str>) -> Controller<SealedSecret> {
        let sealed: Api<SealedSecret> = api(self.client, scope);
        let (sealed_reader, sealed_writer) = reflector::store();
        let on_delete = self.ctx.metrics.clone();
        let sealed_events = watch::cached(
            hush_operator::shards::in_shards(
                watcher::watcher(sealed, self.config.clone()),
                self.ctx.shards.clone(),
                self.shards.clone(),
            ),
            watch::slim_sealed_secret,
            sealed_writer,
        )
        // kube-runtime does not reconcile a deletion: its condition gauge goes here (Bitnami
        // unregisters it on the informer's delete).
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(ss) = event {
                on_delete.set_condition(
                    &ss.namespace().unwrap_or_default(),
                    &ss.name_any(),
                    ss.labels()
                        .get("app.kubernetes.io/instance")
                        .map_or("", String::as_str),
                    None,
                );
            }
        })
        .applied_objects();
        Controller::for_stream(sealed_events, sealed_reader)
    }

    /// One metadata watch of the Secrets of one namespace: it both triggers drift repair and
    /// fills the store that lets reconciliations skip GETs. `Api<PartialObjectMeta<_>>` asks
    /// for metadata only: the Secrets' values never reach the controller.
    fn secret_metadata(
        &self,
        scope: Option<&str>,
    ) -> (
        impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + use<>,
        reflector::Store<PartialObjectMeta<Secret>>,
    ) {
        let (reader, writer) = reflector::store();
        let metadata: Api<PartialObjectMeta<Secret>> = api(self.client, scope);
        let trigger = watch::cached(
            hush_operator::shards::in_shards(
                watcher::watcher(metadata, self.config.clone()).default_backoff(),
                self.ctx.shards.clone(),
                self.shards.clone(),
            ),
            cache::slim,
            writer,
        )
        .touched_objects();
        (trigger, reader)
    }
}
