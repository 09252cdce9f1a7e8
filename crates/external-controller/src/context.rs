//! What every reconciler of this crate shares: the [`Context`] (kube client, settings, provider
//! cache, scheduling state, render pool, watch caches, event posters) and the stores it resolves
//! ([`ResolvedStore`]: a SecretStore or ClusterSecretStore with its provider through the cache).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use futures::FutureExt as _;
use hush_api::external_secrets::{ClusterSecretStore, SecretStore};
use hush_operator::drift::DriftLedger;
use hush_operator::events::{EventPoster, EventType, Note};
use hush_sync::cache::{Freshness, ProviderCache, StoreKey};
use hush_sync::{ProviderError, ProviderFactory, StoreScope};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use crate::credentials::KubeCredentials;
use crate::shared::selector_matches;
use crate::{Config, Error, lane, metrics, templating};

/// Events' reporting component, as ESO.
pub const EVENT_COMPONENT: &str = "external-secrets";

/// Shared state of the ExternalSecret and store reconcilers.
pub struct Context {
    /// The kube client.
    pub client: Client,
    /// Settings.
    pub config: Arc<Config>,
    /// Provider clients and reads.
    pub cache: Arc<ProviderCache>,
    /// The last drift count of each managed Secret seen (`hush_operator::drift`).
    pub drift: Arc<DriftLedger>,
    /// Compiled-in providers.
    pub factories: Vec<Arc<dyn ProviderFactory>>,
    /// ESO's generators hush implements.
    pub generators: Vec<Arc<dyn hush_sync::generators::Generator>>,
    /// The refresh budget behind the first-sync fast lane.
    pub lanes: lane::Lanes,
    /// Where `target.template` renders.
    pub render: templating::RenderPool,
    /// This process's last syncs, for reconciles on a stale cached ExternalSecret.
    pub recent: lane::RecentSyncs,
    /// When the watch first delivered each not yet synced ExternalSecret.
    pub first_seen: Arc<lane::FirstSeen>,
    /// The `Ready` each running reconcile wrote, for ESO's status-condition metrics.
    pub(crate) ready: metrics::ReadyNotes,
    /// The watch caches of stores and managed Secrets, when the controllers run: reconciles
    /// read them instead of GETting each time (a miss falls back to a GET).
    pub caches: OnceLock<Caches>,
    events: EventPoster,
    store_events: EventPoster,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Watch caches shared with the reconcilers (filled by [`crate::run_controllers`]).
#[derive(Clone)]
pub struct Caches {
    /// SecretStores.
    pub stores: Store<SecretStore>,
    /// ClusterSecretStores.
    pub cluster_stores: Store<ClusterSecretStore>,
    /// Secrets labelled `reconcile.external-secrets.io/managed=true` (no managedFields).
    pub secrets: Store<Secret>,
}

impl std::fmt::Debug for Caches {
    // Counts only: the cached Secrets hold values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("stores", &self.stores.state().len())
            .field("cluster_stores", &self.cluster_stores.state().len())
            .field("secrets", &self.secrets.state().len())
            .finish()
    }
}

/// What outlives a restart of the controllers on a shard-set change (`shard.rs`): provider
/// clients and reads, so a hand-over does not cost the other shards' reads, and the drift counts.
#[derive(Clone)]
pub(crate) struct Lasting {
    pub(crate) cache: Arc<ProviderCache>,
    pub(crate) drift: Arc<DriftLedger>,
}

impl Lasting {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            cache: Arc::new(ProviderCache::new(
                config.read_window,
                config.client_ttl,
                config.per_store_concurrency,
            )),
            drift: Arc::default(),
        }
    }
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, config: Arc<Config>) -> Self {
        let lasting = Lasting::new(&config);
        Self::with_lasting(client, config, lasting)
    }

    /// A context that reads through and counts into `lasting`.
    pub(crate) fn with_lasting(client: Client, config: Arc<Config>, lasting: Lasting) -> Self {
        let poster = |controller: &str| {
            EventPoster::new(client.clone(), controller, std::env::var("POD_NAME").ok())
        };
        Self {
            events: poster(EVENT_COMPONENT),
            store_events: poster("secret-store"),
            cache: lasting.cache,
            drift: lasting.drift,
            factories: hush_sync::registry_with(&config.providers),
            generators: generator_registry(&config.providers),
            lanes: lane::Lanes::new(usize::from(config.concurrency.max(1))),
            render: templating::RenderPool::new(
                config.template_workers,
                config.template_timeout,
                &config.templates,
            ),
            recent: lane::RecentSyncs::default(),
            first_seen: Arc::default(),
            ready: metrics::ReadyNotes::default(),
            caches: OnceLock::new(),
            client,
            config,
        }
    }

    /// The store `name` (`kind` SecretStore in `ns`, or ClusterSecretStore): from the watch
    /// cache, else from the API server.
    pub(crate) async fn store(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<ResolvedStore>, Error> {
        let caches = self.caches.get();
        if kind == "ClusterSecretStore" {
            if let Some(s) = caches.and_then(|c| c.cluster_stores.get(&ObjectRef::new(name))) {
                return Ok(Some(ResolvedStore::from_css(&s)));
            }
            return Ok(Api::<ClusterSecretStore>::all(self.client.clone())
                .get_opt(name)
                .await
                .map_err(Error::Kube)?
                .map(|s| ResolvedStore::from_css(&s)));
        }
        if let Some(s) = caches.and_then(|c| c.stores.get(&ObjectRef::new(name).within(ns))) {
            return Ok(Some(ResolvedStore::from_ss(&s)));
        }
        Ok(Api::<SecretStore>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(Error::Kube)?
            .map(|s| ResolvedStore::from_ss(&s)))
    }

    /// The Secret `name` in `ns` and whether the answer came from the watch cache (which may
    /// lag behind this process's own writes: a write based on it that conflicts is retried with
    /// a GET). The cache holds every managed Secret, so once it is filled a miss means "absent"
    /// for a target the ExternalSecret creates and owns; other policies ask the API server, as
    /// their target need not carry the managed label.
    pub(crate) async fn secret(
        &self,
        ns: &str,
        name: &str,
        owner: bool,
    ) -> Result<(Option<Secret>, bool), Error> {
        if let Some(cache) = self.caches.get().map(|c| &c.secrets) {
            if let Some(s) = cache.get(&ObjectRef::new(name).within(ns)) {
                return Ok((Some((*s).clone()), true));
            }
            if owner
                && cache
                    .wait_until_ready()
                    .now_or_never()
                    .is_some_and(|r| r.is_ok())
            {
                return Ok((None, true));
            }
        }
        let live = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(Error::Kube)?;
        Ok((live, false))
    }

    pub(crate) async fn event<K: Resource<DynamicType = ()>>(
        &self,
        store: bool,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let note = Note {
            type_,
            reason,
            note: truncate(note, 1024),
            action: if store { "Validate" } else { "Sync" },
        };
        let poster = if store {
            &self.store_events
        } else {
            &self.events
        };
        if let Err(e) = poster.post(&obj.object_ref(&()), note).await {
            tracing::debug!(error = %e, "cannot publish event");
        }
    }
}

/// The generators with the providers' settings: the Webhook generator has the `--webhook-*`
/// budgets of webhook stores (it speaks the same protocol), and every generator counts its
/// provider calls where `providers` says.
fn generator_registry(
    providers: &hush_sync::Settings,
) -> Vec<Arc<dyn hush_sync::generators::Generator>> {
    hush_sync::generators::registry_with(providers)
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    s.truncate(s.floor_char_boundary(max));
    s
}

/// A resolved store: spec provider block, scope, identity for the cache.
pub(crate) struct ResolvedStore {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) resource_version: String,
    pub(crate) controller: Option<String>,
    pub(crate) provider: serde_json::Value,
    pub(crate) store_namespace: Option<String>,
    pub(crate) conditions: Vec<hush_api::external_secrets::ClusterSecretStoreCondition>,
    /// `spec.retrySettings`.
    pub(crate) retry: Option<hush_api::external_secrets::RetrySettings>,
    /// `status.conditions` has `Ready=True` (ESO's flood gate reads it).
    pub(crate) ready: bool,
}

/// Whether a store's status says `Ready=True`.
fn status_ready(status: Option<&hush_api::external_secrets::SecretStoreStatus>) -> bool {
    status.is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

impl ResolvedStore {
    pub(crate) fn from_ss(s: &SecretStore) -> Self {
        let spec = &s.spec;
        let (controller, retry) = (spec.controller.as_ref(), spec.retry_settings.as_ref());
        Self::new(
            s,
            controller,
            spec.provider.as_ref(),
            retry,
            s.status.as_ref(),
        )
    }

    pub(crate) fn from_css(s: &ClusterSecretStore) -> Self {
        let spec = &s.spec;
        let (controller, retry) = (spec.controller.as_ref(), spec.retry_settings.as_ref());
        Self {
            store_namespace: None,
            conditions: spec.conditions.clone(),
            ..Self::new(
                s,
                controller,
                spec.provider.as_ref(),
                retry,
                s.status.as_ref(),
            )
        }
    }

    /// What both store kinds have (their specs are distinct types with the same fields).
    fn new<K: Resource<DynamicType = ()>>(
        store: &K,
        controller: Option<&String>,
        provider: Option<&hush_api::external_secrets::OpenObject>,
        retry: Option<&hush_api::external_secrets::RetrySettings>,
        status: Option<&hush_api::external_secrets::SecretStoreStatus>,
    ) -> Self {
        Self {
            kind: K::kind(&()).into_owned(),
            name: store.name_any(),
            uid: store.uid().unwrap_or_default(),
            // The spec's generation, not resourceVersion: status writes must not drop the
            // client (and its Vault token).
            resource_version: store.meta().generation.unwrap_or_default().to_string(),
            controller: controller.cloned(),
            provider: provider
                .map(|p| serde_json::Value::Object(p.0.clone()))
                .unwrap_or(serde_json::Value::Null),
            store_namespace: store.namespace(),
            conditions: Vec::new(),
            retry: retry.cloned(),
            ready: status_ready(status),
        }
    }

    /// Whether a store of this controller class is ours (ESO: empty or equal).
    pub(crate) fn is_ours(&self, class: &str) -> bool {
        self.controller
            .as_deref()
            .is_none_or(|c| c.is_empty() || c == class)
    }

    /// A provider handle for use from `namespace` (through the cache).
    pub(crate) async fn provider(
        &self,
        ctx: &Context,
        namespace: Option<&str>,
        fresh: Freshness,
    ) -> Result<hush_sync::cache::CachedProvider, ProviderError> {
        let (factory, spec) = hush_sync::select(&ctx.factories, &self.provider)?;
        let referent = self.kind == "ClusterSecretStore" && hush_sync::auth_is_referent(spec);
        let mut scope = StoreScope::new(
            &self.kind,
            &self.name,
            self.store_namespace
                .clone()
                .or_else(|| namespace.map(str::to_owned)),
        );
        scope.controller_identity |= ctx.config.secret_stores_use_controller_identity;
        let key = StoreKey {
            kind: self.kind.clone(),
            uid: self.uid.clone(),
            resource_version: self.resource_version.clone(),
            namespace: referent.then(|| namespace.unwrap_or_default().to_owned()),
        };
        let creds = KubeCredentials {
            client: ctx.client.clone(),
            token_file: ctx.config.controller_token_file.clone(),
        };
        let retry = self.retry.as_ref().map_or(Ok(None), |r| {
            hush_sync::retry::RetrySettings::parse(r.max_retries, r.retry_interval.as_deref())
        })?;
        let factory = Arc::clone(factory);
        ctx.cache
            .client(key, fresh, || async move {
                let built = factory.build(spec, &scope, &creds).await?;
                Ok(hush_sync::Built {
                    provider: hush_sync::retry::with_retries(built.provider, retry),
                    ..built
                })
            })
            .await
    }
}

/// ClusterSecretStore `conditions`: namespaces, regexes, label selectors (`matchLabels` and
/// `matchExpressions`); any condition admits. A selector that does not decode or has an unknown
/// operator is an error naming the store, not a silent refusal.
pub(crate) async fn namespace_allowed(
    ctx: &Context,
    store: &ResolvedStore,
    ns: &str,
) -> Result<bool, Error> {
    if store.conditions.is_empty() {
        return Ok(true);
    }
    let mut labels: Option<BTreeMap<String, String>> = None;
    for c in &store.conditions {
        if c.namespaces.iter().any(|n| n == ns) {
            return Ok(true);
        }
        for re in &c.namespace_regexes {
            if regex::Regex::new(re).is_ok_and(|r| r.is_match(ns)) {
                return Ok(true);
            }
        }
        if let Some(sel) = &c.namespace_selector {
            let selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
                serde_json::from_value(serde_json::Value::Object(sel.0.clone())).map_err(|e| {
                    Error::Store(format!(
                        "ClusterSecretStore {:?}: conditions namespaceSelector: {e}",
                        store.name
                    ))
                })?;
            if labels.is_none() {
                let n = Api::<Namespace>::all(ctx.client.clone())
                    .get_opt(ns)
                    .await
                    .map_err(Error::Kube)?;
                labels = Some(n.map(|n| n.labels().clone()).unwrap_or_default());
            }
            let have = labels.as_ref().map_or_else(BTreeMap::new, Clone::clone);
            if selector_matches(&selector, &have).map_err(|e| {
                Error::Store(format!(
                    "ClusterSecretStore {:?}: conditions namespaceSelector: {e}",
                    store.name
                ))
            })? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
