//! hush's ExternalSecret controller: External Secrets Operator's API (`external-secrets.io/v1`)
//! and semantics, with providers from `hush-sync` (Vault/OpenBao, AWS Secrets Manager and
//! Parameter Store) and their per-store client and read cache.
//!
//! - [`reconcile`] / [`error_policy`]: ExternalSecrets ([`reconcile`] module: spec, schedule,
//!   fetch, write), over the shared [`Context`] ([`context`] module).
//! - [`store::reconcile_store`] / [`store::reconcile_cluster_store`]: store validation and
//!   `Ready`.
//! - [`cluster::reconcile`]: ClusterExternalSecret fan-out (cluster-wide controllers only).
//! - [`push::reconcile`]: PushSecrets; [`cluster_push::reconcile`]: ClusterPushSecret fan-out.
//! - [`instrumented`]: the reconcilers with ESO's metrics, as the runtime runs them.
//! - [`refresh`]: the refresh-on-demand endpoint (TokenReview + SubjectAccessReview).
//! - [`start`]: the component for `hush controller --controllers external`; [`run_controllers`]
//!   runs the reconcilers on any client (used by the e2e tests).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod cluster_push;
pub mod context;
mod credentials;
pub mod eso;
mod fanout;
pub mod generators;
pub mod instrumented;
pub mod lane;
pub mod metrics;
pub mod push;
pub mod reconcile;
pub mod refresh;
pub mod rewrite;
mod shard;
mod shared;
pub mod store;
pub mod templating;

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, TryStreamExt as _};
use hush_api::external_secrets::{
    ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SecretStore,
};
use hush_operator::{Component, Process, RunConfig, Shutdown};
use hush_sync::ProviderError;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::ResourceExt as _;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{Controller, WatchStreamExt as _, predicates};

pub use context::Context;
pub use reconcile::{error_policy, reconcile};

/// The controller's name in `--controllers` and metrics.
pub const NAME: &str = "external";

/// Settings (ESO's flags where they exist).
#[derive(Debug, Clone)]
pub struct Config {
    /// `--controller-class`: stores with another `spec.controller` are left alone.
    pub controller_class: String,
    /// ExternalSecrets reconciled at once (`--concurrent`; ESO's default is 1).
    pub concurrency: u16,
    /// Reads of the same ref through the same store and credentials share one provider call
    /// within this window.
    pub read_window: Duration,
    /// Provider clients are rebuilt (credentials re-read) after this long.
    pub client_ttl: Duration,
    /// Provider calls at once per store client.
    pub per_store_concurrency: usize,
    /// Store revalidation interval when the store sets none (`--store-requeue-interval`).
    pub store_requeue_interval: Duration,
    /// Namespace to watch (`--namespace`); `None` = all.
    pub namespace: Option<String>,
    /// Reconcile ClusterExternalSecrets (ESO's `--enable-cluster-external-secret-reconciler`);
    /// only a cluster-wide controller does. They have no controller class: while ESO runs, only
    /// one of the two may fan them out.
    pub cluster_external_secrets: bool,
    /// Reconcile PushSecrets (ESO's `--enable-push-secret-reconciler`).
    pub push_secrets: bool,
    /// Validate ClusterSecretStores and write their status (ESO's
    /// `--enable-cluster-store-reconciler`). Off, they are still used: only their status is
    /// left to another controller.
    pub cluster_stores: bool,
    /// ESO's flood gate (`--enable-flood-gate`): an ExternalSecret is not fetched through a
    /// store whose `Ready` condition is not True.
    pub flood_gate: bool,
    /// Reconcile ClusterPushSecrets (ESO's `--enable-cluster-push-secret-reconciler`); only a
    /// cluster-wide controller does.
    pub cluster_push_secrets: bool,
    /// ESO's metric families ([`start`] registers them on the process's endpoint).
    pub eso_metrics: metrics::EsoMetrics,
    /// How often the metric series of deleted objects are dropped.
    pub metrics_sweep_interval: Duration,
    /// Let SecretStores authenticate as the controller itself (its ServiceAccount token for
    /// Vault `kubernetes` auth without credentials, the default AWS chain): ESO's behaviour and a
    /// risk, since a SecretStore's author then borrows the controller's identity
    /// (`--secret-stores-use-controller-identity`, off by default; docs/security.md).
    /// ClusterSecretStores always may.
    pub secret_stores_use_controller_identity: bool,
    /// The controller's own ServiceAccount token (the pod's mounted token).
    pub controller_token_file: std::path::PathBuf,
    /// Templates rendering at once, on blocking threads (`--template-workers`).
    pub template_workers: usize,
    /// Time one ExternalSecret's templates may take to render (`--template-timeout`).
    pub template_timeout: Duration,
    /// Template delimiters and budgets (`--template-left-delimiter`, `--template-max-*`).
    pub templates: templating::TemplateSettings,
    /// Provider settings (`--webhook-*` budgets).
    pub providers: hush_sync::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            controller_class: "default".into(),
            concurrency: 8,
            read_window: Duration::from_secs(10),
            client_ttl: Duration::from_secs(300),
            per_store_concurrency: 16,
            store_requeue_interval: Duration::from_secs(300),
            namespace: None,
            cluster_external_secrets: true,
            push_secrets: true,
            cluster_stores: true,
            flood_gate: false,
            cluster_push_secrets: true,
            eso_metrics: metrics::EsoMetrics::default(),
            metrics_sweep_interval: Duration::from_secs(60),
            secret_stores_use_controller_identity: false,
            controller_token_file: hush_sync::POD_TOKEN_FILE.into(),
            template_workers: std::thread::available_parallelism()
                .map_or(2, std::num::NonZero::get),
            template_timeout: Duration::from_secs(10),
            templates: templating::TemplateSettings::default(),
            providers: hush_sync::Settings::default(),
        }
    }
}

/// Errors of the reconcilers. Messages never hold secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// A provider failed.
    #[error("{0}")]
    Provider(#[source] ProviderError),
    /// The provider throttled the store; retried when its backoff ends.
    #[error("{source}; retrying in {} s", retry_after.as_secs().max(1))]
    Throttled {
        /// The remaining backoff of the store's client.
        retry_after: Duration,
        /// The provider's answer.
        #[source]
        source: ProviderError,
    },
    /// The spec is invalid.
    #[error("invalid ExternalSecret: {0}")]
    Spec(String),
    /// A store is missing or unusable.
    #[error("store: {0}")]
    Store(String),
    /// Template parse or render error.
    #[error("template: {0}")]
    Template(String),
    /// The target Secret is immutable and its data would change.
    #[error("could not update secret, target is immutable")]
    Immutable,
    /// Another ExternalSecret owns the target.
    #[error("target is owned by another ExternalSecret")]
    OwnedByOther,
    /// With `creationPolicy: Owner`, the target is controlled by another object (a SealedSecret,
    /// a cert-manager Certificate, …): refused as ESO's `SetControllerReference` refuses it.
    #[error(
        "target is already controlled by {kind} {name:?}; creationPolicy Owner does not take it \
         over (remove that owner, or use creationPolicy Merge)"
    )]
    ControlledByOther {
        /// The controller's kind (with its API group when not core).
        kind: String,
        /// The controller's name.
        name: String,
    },
    /// The store belongs to another controller class.
    #[error("store belongs to another controller class")]
    NotOurs,
}

impl Error {
    /// How long to wait before retrying.
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Throttled { retry_after, .. } => lane::jitter(*retry_after),
            Self::Provider(ProviderError::Throttled(_)) => Duration::from_secs(30),
            Self::Provider(_) | Self::Kube(_) => Duration::from_secs(5),
            _ => Duration::from_secs(60),
        }
    }

    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Provider(_) => "provider",
            Self::Throttled { .. } => "throttled",
            Self::Spec(_) => "spec",
            Self::Store(_) => "store",
            Self::Template(_) => "template",
            Self::Immutable => "immutable",
            Self::OwnedByOther => "owned_by_other",
            Self::ControlledByOther { .. } => "controlled_by_other",
            Self::NotOurs => "not_ours",
        }
    }
}

/// The component for `hush controller`: the reconcilers run while this replica leads, or, with
/// `--shards`, on every replica over the shards it holds.
pub fn start(process: &mut Process, mut config: Config) -> Component {
    config.eso_metrics = metrics::EsoMetrics::register(process.registry());
    config.providers.calls = config.eso_metrics.provider_calls();
    let client = process.client().clone();
    let metrics = process.reconcile_metrics();
    let config = Arc::new(config);
    let shards = process.shards();
    if shards.is_sharded() {
        let sharded = shard::run_sharded(client, config, metrics, shards, process.shutdown());
        // Nothing of this controller needs a leader when sharded.
        let leader: hush_operator::LeaderTask = Box::new(|shutdown| {
            async move {
                shutdown.wait().await;
                Ok(())
            }
            .boxed()
        });
        return Component {
            name: NAME,
            always: vec![sharded.map(Ok).boxed()],
            leader,
        };
    }
    let leader: hush_operator::LeaderTask = Box::new(move |shutdown| {
        async move {
            run_controllers(client, config, metrics, shutdown).await;
            Ok(())
        }
        .boxed()
    });
    Component {
        name: NAME,
        always: Vec::new(),
        leader,
    }
}

/// The ExternalSecrets a managed Secret's event concerns: its owner, and (as ESO's index on the
/// target name) those that target its name — when the garbage collector deletes a Secret another
/// ExternalSecret owned, the one waiting for that name syncs at once.
fn for_secret(
    cached: &kube::runtime::reflector::Store<ExternalSecret>,
    secret: &Secret,
) -> Vec<kube::runtime::reflector::ObjectRef<ExternalSecret>> {
    use kube::ResourceExt as _;
    let ns = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let mut out: Vec<kube::runtime::reflector::ObjectRef<ExternalSecret>> = secret
        .owner_references()
        .iter()
        .filter(|o| o.kind == "ExternalSecret" && o.controller == Some(true))
        .map(|o| kube::runtime::reflector::ObjectRef::new(&o.name).within(&ns))
        .collect();
    // The common case (its owner is known) needs no scan of all ExternalSecrets.
    if !out.is_empty() && out.iter().all(|r| cached.get(r).is_some()) {
        return out;
    }
    for es in cached.state() {
        let target = reconcile::target_name(&es);
        if target == name && es.namespace().as_deref() == Some(ns.as_str()) {
            let r = kube::runtime::reflector::ObjectRef::from_obj(&*es);
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// The ExternalSecrets that name store `name` of `kind` (a SecretStore only from its namespace).
fn for_store(
    cached: &kube::runtime::reflector::Store<ExternalSecret>,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Vec<kube::runtime::reflector::ObjectRef<ExternalSecret>> {
    cached
        .state()
        .into_iter()
        .filter(|es| namespace.is_none() || es.namespace().as_deref() == namespace)
        .filter(|es| uses_store(es, kind, name))
        .map(|es| kube::runtime::reflector::ObjectRef::from_obj(&*es))
        .collect()
}

/// Whether `es` reads through store `name` of `kind` (`SecretStore` or `ClusterSecretStore`):
/// its `secretStoreRef` or a `sourceRef.storeRef` of `data` or `dataFrom`.
pub(crate) fn uses_store(es: &ExternalSecret, kind: &str, name: &str) -> bool {
    let names = |r: &hush_api::external_secrets::SecretStoreRef| {
        let ref_kind = match r.kind.as_deref() {
            Some("ClusterSecretStore") => "ClusterSecretStore",
            _ => "SecretStore",
        };
        ref_kind == kind && r.name.as_deref() == Some(name)
    };
    es.spec.secret_store_ref.as_ref().is_some_and(names)
        || es.spec.data.iter().any(|d| {
            d.source_ref
                .as_ref()
                .and_then(|s| s.store_ref.as_ref())
                .is_some_and(names)
        })
        || es.spec.data_from.iter().any(|d| {
            d.source_ref
                .as_ref()
                .and_then(|s| s.store_ref.as_ref())
                .is_some_and(names)
        })
}

/// Runs the ExternalSecret, SecretStore and ClusterSecretStore reconcilers until `shutdown`, and
/// the ClusterExternalSecret one when not restricted to a namespace (it writes into many).
pub async fn run_controllers(
    client: kube::Client,
    config: Arc<Config>,
    metrics: hush_operator::metrics::ReconcileMetrics,
    shutdown: Shutdown,
) {
    run_scoped(client, config, metrics, shutdown, shard::Scope::all(), None).await;
}

/// [`run_controllers`] over the objects of `scope`, with `lasting` when given (it outlives the
/// run).
async fn run_scoped(
    client: kube::Client,
    config: Arc<Config>,
    metrics: hush_operator::metrics::ReconcileMetrics,
    shutdown: Shutdown,
    scope: shard::Scope,
    lasting: Option<context::Lasting>,
) {
    let ctx = Arc::new(match lasting {
        Some(lasting) => Context::with_lasting(client.clone(), config.clone(), lasting),
        None => Context::new(client.clone(), config.clone()),
    });
    let runs = Runs {
        client,
        config: &config,
        ctx: &ctx,
        scope: &scope,
        metrics,
        shutdown,
    };
    let store_api: Api<SecretStore> = runs.watched();
    let (es_controller, secrets) = external_secret_controller(&runs, store_api.clone());
    let ss_controller = Controller::new(store_api, watcher::Config::default());
    let css_controller = Controller::new(
        Api::<ClusterSecretStore>::all(runs.client.clone()),
        watcher::Config::default(),
    );
    let _ = ctx.caches.set(context::Caches {
        stores: ss_controller.store(),
        cluster_stores: css_controller.store(),
        secrets,
    });
    let sweeps = futures::future::join3(
        runs.forget_deleted(metrics::Kind::ExternalSecret, es_controller.store()),
        runs.forget_deleted(metrics::Kind::SecretStore, ss_controller.store()),
        runs.forget_deleted(metrics::Kind::ClusterSecretStore, css_controller.store()),
    );
    // Twice the refresh budget (lane.rs): refreshes never hold every worker slot.
    let es_concurrency = config.concurrency.max(1).saturating_mul(2);
    let es = runs.run(
        es_controller,
        instrumented::reconcile,
        error_policy,
        (NAME, "externalsecret"),
        es_concurrency,
    );
    let ss = runs.run(
        ss_controller,
        instrumented::reconcile_store,
        store::error_policy,
        ("secretstore", "secretstore"),
        2,
    );
    let css = runs.run(
        css_controller,
        instrumented::reconcile_cluster_store,
        store::error_policy,
        ("clustersecretstore", "clustersecretstore"),
        2,
    );
    let ces = run_cluster_external_secrets(&runs);
    let push = run_push_controllers(&runs);
    futures::join!(es, ss, css, ces, sweeps, push);
}

/// What the reconcilers of one [`run_scoped`] share.
struct Runs<'a> {
    client: kube::Client,
    config: &'a Config,
    ctx: &'a Arc<Context>,
    scope: &'a shard::Scope,
    metrics: hush_operator::metrics::ReconcileMetrics,
    shutdown: Shutdown,
}

impl Runs<'_> {
    /// Runs `controller` until shutdown with `reconcile` fenced to this run's shards, `names`
    /// being hush's and controller-runtime's names for it (ESO's metric label
    /// `controller_runtime_*{controller}`).
    async fn run<K, E, F, Fut>(
        &self,
        controller: Controller<K>,
        reconcile: F,
        error_policy: impl Fn(Arc<K>, &E, Arc<Context>) -> kube::runtime::controller::Action,
        (name, runtime_name): (&'static str, &'static str),
        concurrency: u16,
    ) where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
        E: std::error::Error + Send + 'static,
        F: Fn(Arc<K>, Arc<Context>) -> Fut,
        Fut: Future<Output = Result<kube::runtime::controller::Action, E>> + Send + 'static,
    {
        let config = RunConfig {
            name,
            concurrency,
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
            runtime_name: Some(runtime_name),
        };
        let reconcile = self.scope.fence(reconcile);
        hush_operator::run(
            controller,
            reconcile,
            error_policy,
            self.ctx.clone(),
            config,
        )
        .await;
    }

    /// The API of a namespaced kind in the watched namespace (`--namespace`), or in all.
    fn watched<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.config.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Whether the cluster-wide fan-outs may run: not when restricted to a namespace (they
    /// write into many) or when their ESO switch (`enabled`) is off.
    fn cluster_wide(&self, enabled: bool) -> bool {
        self.config.namespace.is_none() && enabled
    }

    /// [`forget_deleted`] for `kind`, until this run's shutdown.
    async fn forget_deleted<K>(&self, kind: metrics::Kind, store: reflector::Store<K>)
    where
        K: kube::Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        forget_deleted(self.config, kind, store, self.scope, &self.shutdown).await;
    }
}

/// The ExternalSecret controller: its own watch (each first arrival noted, lane::FirstSeen),
/// the managed Secrets (which also fill the returned cache), and the stores whose creation or
/// new generation makes the ExternalSecrets that name them sync at once.
fn external_secret_controller(
    runs: &Runs<'_>,
    store_api: Api<SecretStore>,
) -> (Controller<ExternalSecret>, reflector::Store<Secret>) {
    // Controller::new's watch, with each ExternalSecret's first arrival noted before the
    // reflector stores it (lane::FirstSeen).
    let (es_reader, es_writer) = reflector::store();
    let first_seen = Arc::clone(&runs.ctx.first_seen);
    let es_events = runs
        .scope
        .objects(watcher(runs.watched(), watcher::Config::default()))
        .inspect_ok(move |event| first_seen.observe(event));
    let es_controller =
        Controller::for_stream(reflector(es_writer, es_events).applied_objects(), es_reader);
    let es_cached = es_controller.store();
    // One watch of the managed Secrets both triggers reconciles and fills the cache that
    // reconciles read instead of GETting the target each time.
    let (secret_reader, secret_writer) = reflector::store();
    let managed = reflector(
        secret_writer,
        runs.scope
            .secrets(watcher(
                runs.watched(),
                watcher::Config::default().labels(&format!("{}=true", eso::LABEL_MANAGED)),
            ))
            .default_backoff()
            // Only ESO's field managers' entries: they say which keys a write removes first.
            .modify(|s: &mut Secret| {
                s.managed_fields_mut().retain(|m| {
                    m.manager
                        .as_deref()
                        .is_some_and(|n| n.starts_with(eso::FIELD_MANAGER_PREFIX))
                });
            }),
    )
    .touched_objects();
    let es_controller =
        es_controller.watches_stream(managed, move |secret| for_secret(&es_cached, &secret));
    // A store created or changed (new generation): the ExternalSecrets that name it sync now,
    // not when their retry comes (an ExternalSecret applied before its store).
    let es_cached = es_controller.store();
    let es_controller =
        es_controller.watches_stream(generations(store_api), move |s: SecretStore| {
            for_store(
                &es_cached,
                "SecretStore",
                s.namespace().as_deref(),
                &s.name_any(),
            )
        });
    let es_cached = es_controller.store();
    let es_controller = es_controller.watches_stream(
        generations(Api::<ClusterSecretStore>::all(runs.client.clone())),
        move |s: ClusterSecretStore| {
            for_store(&es_cached, "ClusterSecretStore", None, &s.name_any())
        },
    );
    (es_controller, secret_reader)
}

/// The objects of `api` as they are created and whenever their generation changes.
fn generations<K>(api: Api<K>) -> impl futures::Stream<Item = Result<K, watcher::Error>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .predicate_filter(predicates::generation, Default::default())
}

/// The ClusterExternalSecret fan-out, cluster-wide only and behind its ESO switch.
async fn run_cluster_external_secrets(runs: &Runs<'_>) {
    if !runs.cluster_wide(runs.config.cluster_external_secrets) {
        return;
    }
    let client = &runs.client;
    let controller = scoped_controller(
        Api::<ClusterExternalSecret>::all(client.clone()),
        runs.scope,
    )
    .owns(
        Api::<ExternalSecret>::all(client.clone()),
        watcher::Config::default(),
    );
    // Every child's status write is an event: collapse bursts into one reconcile.
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(1)));
    let cached = controller.store();
    let sweep = runs.forget_deleted(metrics::Kind::ClusterExternalSecret, controller.store());
    // A new or relabelled Namespace: the ClusterExternalSecrets that select it, or did.
    let controller = controller.watches(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        move |ns| fanout::for_namespace(&cached, &ns),
    );
    let run = runs.run(
        controller,
        instrumented::reconcile_cluster_external_secret,
        cluster::error_policy,
        ("clusterexternalsecret", "clusterexternalsecret"),
        2,
    );
    futures::join!(run, sweep);
}

/// The PushSecret reconciler (in the watched namespace or all) and, cluster-wide only, the
/// ClusterPushSecret fan-out, each behind its ESO switch.
async fn run_push_controllers(runs: &Runs<'_>) {
    let (client, config, scope) = (&runs.client, runs.config, runs.scope);
    let pushes = async {
        if !config.push_secrets {
            return;
        }
        runs.run(
            scoped_controller(runs.watched::<hush_api::push_secrets::PushSecret>(), scope),
            push::reconcile,
            push::error_policy,
            ("pushsecret", "pushsecret"),
            config.concurrency.max(1),
        )
        .await;
    };
    let fan_out = async {
        if !runs.cluster_wide(config.cluster_push_secrets) {
            return;
        }
        let controller = scoped_controller(
            Api::<hush_api::push_secrets::ClusterPushSecret>::all(client.clone()),
            scope,
        )
        .owns(
            Api::<hush_api::push_secrets::PushSecret>::all(client.clone()),
            watcher::Config::default(),
        )
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(1)));
        let cached = controller.store();
        let controller = controller.watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            move |ns| fanout::for_namespace(&cached, &ns),
        );
        runs.run(
            controller,
            cluster_push::reconcile,
            cluster_push::error_policy,
            ("clusterpushsecret", "clusterpushsecret"),
            2,
        )
        .await;
    };
    futures::join!(pushes, fan_out);
}

/// `Controller::new(api)` over the objects of `scope` only (filtered before its cache).
fn scoped_controller<K>(api: Api<K>, scope: &shard::Scope) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let events = scope.objects(watcher(api, watcher::Config::default()).default_backoff());
    Controller::for_stream(reflector(writer, events).applied_objects(), reader)
}

/// Drops the ESO metric series of `kind` objects that left `store` (kube-runtime does not
/// reconcile deletions, which is where ESO drops them), every `metrics_sweep_interval` until
/// `shutdown`. Objects another run of this replica serves (`scope`) are not this store's.
async fn forget_deleted<K>(
    config: &Config,
    kind: metrics::Kind,
    store: reflector::Store<K>,
    scope: &shard::Scope,
    shutdown: &Shutdown,
) where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(config.metrics_sweep_interval) => {}
        }
        // Before the first list the store is empty, which says nothing about deletions.
        if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            continue;
        }
        config.eso_metrics.forget_missing(kind, |namespace, name| {
            let object = reflector::ObjectRef::<K>::new(name);
            let object = if namespace.is_empty() {
                object
            } else {
                object.within(namespace)
            };
            store.get(&object).is_some() || scope.served_elsewhere(namespace, name)
        });
    }
}
