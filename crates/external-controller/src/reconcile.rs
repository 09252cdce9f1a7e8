//! The ExternalSecret reconciler: plain [`reconcile`] and [`error_policy`] functions
//! (controller-rs shape) with ESO's semantics (`ESO:pkg/controllers/externalsecret`,
//! `docs/external-secrets.md` §4).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::FutureExt as _;
use hush_api::external_secrets::{
    ClusterSecretStore, Condition, ExternalSecret, ExternalSecretDataFromRemoteRef,
    ExternalSecretStatus, RemoteRef as ApiRemoteRef, SecretStore, SecretStoreRef,
};
use hush_operator::drift;
use hush_sync::cache::{Freshness, ProviderCache, StoreKey};
use hush_sync::{
    CredentialSource, FindQuery, KeyRef, ProviderError, ProviderFactory, RemoteRef, SecretBytes,
    SecretProvider, StoreScope,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::eso;
use crate::{Config, Error};

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
    /// Compiled-in providers.
    pub factories: Vec<Arc<dyn ProviderFactory>>,
    /// ESO's generators hush implements.
    pub generators: Vec<Arc<dyn hush_sync::generators::Generator>>,
    /// The refresh budget behind the first-sync fast lane.
    pub lanes: crate::lane::Lanes,
    /// Where `target.template` renders.
    pub render: crate::templating::RenderPool,
    /// This process's last syncs, for reconciles on a stale cached ExternalSecret.
    pub recent: crate::lane::RecentSyncs,
    /// When the watch first delivered each not yet synced ExternalSecret.
    pub first_seen: Arc<crate::lane::FirstSeen>,
    /// The watch caches of stores and managed Secrets, when the controllers run: reconciles
    /// read them instead of GETting each time (a miss falls back to a GET).
    pub caches: OnceLock<Caches>,
    recorder: Recorder,
    store_recorder: Recorder,
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

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, config: Arc<Config>) -> Self {
        let reporter = |c: &str| Reporter {
            controller: c.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter(EVENT_COMPONENT)),
            store_recorder: Recorder::new(client.clone(), reporter("secret-store")),
            cache: Arc::new(ProviderCache::new(
                config.read_window,
                config.client_ttl,
                config.per_store_concurrency,
            )),
            factories: hush_sync::registry_with(&config.providers),
            generators: hush_sync::generators::registry(),
            lanes: crate::lane::Lanes::new(usize::from(config.concurrency.max(1))),
            render: crate::templating::RenderPool::new(
                config.template_workers,
                config.template_timeout,
            ),
            recent: crate::lane::RecentSyncs::default(),
            first_seen: Arc::default(),
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
    async fn secret(
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
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, 1024)),
            action: if store { "Validate" } else { "Sync" }.into(),
            secondary: None,
        };
        let recorder = if store {
            &self.store_recorder
        } else {
            &self.recorder
        };
        if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::debug!(error = %e, "cannot publish event");
        }
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Credentials from the API server (live GETs; ESO does not cache them either).
pub(crate) struct KubeCredentials {
    pub(crate) client: Client,
    /// The controller's own ServiceAccount token ([`Config::controller_token_file`]).
    pub(crate) token_file: std::path::PathBuf,
}

#[async_trait]
impl CredentialSource for KubeCredentials {
    async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError> {
        let ns = r.namespace.as_deref().ok_or_else(|| {
            ProviderError::Invalid(format!("secret reference {:?} needs a namespace", r.name))
        })?;
        let secret = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(&r.name)
            .await
            .map_err(|e| ProviderError::Transient(format!("reading secret {ns}/{}: {e}", r.name)))?
            .ok_or_else(|| ProviderError::Invalid(format!("secret {ns}/{} not found", r.name)))?;
        let value = secret
            .data
            .and_then(|mut d| d.remove(&r.key))
            .ok_or_else(|| {
                ProviderError::Invalid(format!("secret {ns}/{} has no key {:?}", r.name, r.key))
            })?;
        Ok(SecretBytes::new(value.0))
    }

    async fn config_map_key(&self, r: &KeyRef) -> Result<String, ProviderError> {
        let ns = r.namespace.as_deref().ok_or_else(|| {
            ProviderError::Invalid(format!(
                "configmap reference {:?} needs a namespace",
                r.name
            ))
        })?;
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), ns)
            .get_opt(&r.name)
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("reading configmap {ns}/{}: {e}", r.name))
            })?
            .ok_or_else(|| {
                ProviderError::Invalid(format!("configmap {ns}/{} not found", r.name))
            })?;
        cm.data.and_then(|mut d| d.remove(&r.key)).ok_or_else(|| {
            ProviderError::Invalid(format!("configmap {ns}/{} has no key {:?}", r.name, r.key))
        })
    }

    async fn service_account_token(
        &self,
        namespace: Option<&str>,
        name: &str,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<SecretBytes, ProviderError> {
        let ns = namespace.ok_or_else(|| {
            ProviderError::Invalid(format!("service account {name:?} needs a namespace"))
        })?;
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(audiences.to_vec()),
                expiration_seconds: Some(expiration_seconds),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| ProviderError::Denied(format!("TokenRequest for {ns}/{name}: {e}")))?;
        let token = answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Denied(format!("TokenRequest for {ns}/{name}: no token"))
            })?;
        Ok(SecretBytes::from(token.as_str()))
    }

    async fn controller_token(&self) -> Result<SecretBytes, ProviderError> {
        let path = &self.token_file;
        tokio::fs::read(path)
            .await
            .map(SecretBytes::new)
            .map_err(|e| {
                ProviderError::Invalid(format!(
                    "cannot read the controller's token {}: {e}",
                    path.display()
                ))
            })
    }

    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, SecretBytes>, BTreeMap<String, String>), ProviderError> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("reading secret {namespace}/{name}: {e}"))
            })?
            .ok_or_else(|| {
                ProviderError::Invalid(format!("secret {namespace}/{name} not found"))
            })?;
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(v.0)))
            .collect();
        Ok((data, secret.metadata.labels.unwrap_or_default()))
    }

    async fn local_api_server(&self) -> Option<String> {
        // The configuration this process was started with (in a cluster: the service
        // address, outside one: the kubeconfig's server); only its URL is used.
        kube::Config::infer()
            .await
            .ok()
            .map(|c| c.cluster_url.to_string())
    }

    async fn service_account_annotations(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let ns = namespace.ok_or_else(|| {
            ProviderError::Invalid(format!("service account {name:?} needs a namespace"))
        })?;
        let sa = Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|e| {
                ProviderError::Transient(format!("reading service account {ns}/{name}: {e}"))
            })?
            .ok_or_else(|| {
                ProviderError::Invalid(format!("service account {ns}/{name} not found"))
            })?;
        Ok(sa.metadata.annotations.unwrap_or_default())
    }
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
}

impl ResolvedStore {
    pub(crate) fn from_ss(s: &SecretStore) -> Self {
        Self {
            kind: "SecretStore".into(),
            name: s.name_any(),
            uid: s.uid().unwrap_or_default(),
            // The spec's generation, not resourceVersion: status writes must not drop the
            // client (and its Vault token).
            resource_version: s.meta().generation.unwrap_or_default().to_string(),
            controller: s.spec.controller.clone(),
            provider: s
                .spec
                .provider
                .clone()
                .map(|p| serde_json::Value::Object(p.0))
                .unwrap_or(serde_json::Value::Null),
            store_namespace: s.namespace(),
            conditions: Vec::new(),
            retry: s.spec.retry_settings.clone(),
        }
    }

    pub(crate) fn from_css(s: &ClusterSecretStore) -> Self {
        Self {
            kind: "ClusterSecretStore".into(),
            name: s.name_any(),
            uid: s.uid().unwrap_or_default(),
            // The spec's generation, not resourceVersion: status writes must not drop the
            // client (and its Vault token).
            resource_version: s.meta().generation.unwrap_or_default().to_string(),
            controller: s.spec.controller.clone(),
            provider: s
                .spec
                .provider
                .clone()
                .map(|p| serde_json::Value::Object(p.0))
                .unwrap_or(serde_json::Value::Null),
            store_namespace: None,
            conditions: s.spec.conditions.clone(),
            retry: s.spec.retry_settings.clone(),
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

/// Outcome of a sync, for status and events.
#[derive(Debug)]
enum Outcome {
    Synced {
        created: bool,
        changed: bool,
    },
    Retained,
    /// DeletionPolicy=Delete without data; `existed`: a Secret was deleted.
    Deleted {
        existed: bool,
    },
    Missing,
    NoWrite,
}

/// Reconciles one ExternalSecret.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let started_at = now_rfc3339();
    let ns = es.namespace().unwrap_or_default();
    let name = es.name_any();
    if es.meta().deletion_timestamp.is_some() {
        ctx.recent.forget(&es);
        ctx.first_seen.forget(&es);
        // An ExternalSecret whose store belongs to another controller class (ESO during a
        // migration) is cleaned up by that controller.
        if matches!(resolve_stores(&es, &ctx).await, Err(Error::NotOurs)) {
            return Ok(Action::await_change());
        }
        // Owned Secrets go with their ExternalSecret through the ownerReference.
        return finalize(&es, &ctx).await;
    }
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);

    // Stores of another controller class are not ours (ESO's `shouldSkipClusterSecretStore`).
    let stores = match resolve_stores(&es, &ctx).await {
        Ok(s) => s,
        Err(Error::NotOurs) => return Ok(Action::await_change()),
        Err(e) => {
            let msg = e.to_string();
            set_ready(&api, &es, false, "SecretSyncedError", &msg, None).await?;
            ctx.event(false, &*es, EventType::Warning, "UpdateFailed", msg)
                .await;
            return Err(e);
        }
    };

    if let Err(msg) = validate(&es) {
        set_ready(&api, &es, false, "SecretSyncedError", &msg, None).await?;
        ctx.event(false, &*es, EventType::Warning, "UpdateFailed", msg)
            .await;
        return Ok(Action::await_change());
    }

    let target_name = target_name(&es);
    let creation = creation_policy(&es);
    let deletion = deletion_policy(&es);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let (existing, from_cache) = ctx.secret(&ns, &target_name, creation == "Owner").await?;

    let current_rv = eso::synced_resource_version(
        es.meta().generation.unwrap_or(0),
        es.labels(),
        es.annotations(),
    );
    let interval = refresh_interval(&es)?;
    let mut status = es.status.clone().unwrap_or_default();
    ctx.recent.apply(&es, &current_rv, &mut status);
    let spec_changed = status.synced_resource_version.as_deref() != Some(current_rv.as_str());
    let now = SystemTime::now();
    if !should_refresh(&es, &status, &current_rv, interval, now)
        && secret_valid(&es, existing.as_ref())
    {
        let wait = interval
            .and_then(|i| refresh_due(status.refresh_time.as_deref(), i))
            .and_then(|due| due.duration_since(now).ok())
            .filter(|d| !d.is_zero());
        return Ok(wait.map_or_else(Action::await_change, |w| Action::requeue(w + WAKE_SLACK)));
    }
    let first_sync = spec_changed || !secret_valid(&es, existing.as_ref());
    let freshness = read_freshness(
        &es,
        ctx.first_seen.get(&es),
        &status,
        spec_changed,
        first_sync,
        interval,
        ctx.config.read_window,
        now,
    );
    // This spec was synced, yet the Secret is gone or not what was written: a hand edit or
    // deletion, counted on the Secret (hush_operator::drift).
    if let Some(found) = &existing {
        drift::DriftLedger::global().remember(&ns, &target_name, found.annotations());
    }
    let synced_before = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let drifted = synced_before && !spec_changed && !secret_valid(&es, existing.as_ref());
    let Some(_admission) = ctx.lanes.admit(first_sync).await else {
        return Ok(Action::requeue(crate::lane::yield_delay()));
    };

    // Fetch.
    let data = match fetch_all(&es, &ctx, &stores, &ns, deletion, freshness).await {
        Ok(d) => d,
        Err(e) => {
            let e = crate::lane::throttled(e, &ctx, &stores).await;
            // The last good Secret stays; the real error goes to the event only.
            mark_failed(
                &api,
                &ctx,
                &es,
                "could not get secret data from provider",
                &e,
            )
            .await?;
            return Err(e);
        }
    };

    // ESO's deleteOrphanedSecrets: Secrets this ExternalSecret created under a former target
    // name. Only a changed spec renames the target, so only then is the cache searched.
    if creation == "Owner"
        && spec_changed
        && !(data.is_empty() && matches!(deletion, "Delete" | "Retain"))
        && let Err(e) = delete_orphans(&es, &ctx, &secrets, &target_name).await
    {
        mark_failed(&api, &ctx, &es, "could not delete orphaned secrets", &e).await?;
        return Err(e);
    }

    let mut written = write_secret(
        &es,
        &ctx.render,
        &secrets,
        &target_name,
        existing,
        &data,
        creation,
        deletion,
        drifted,
    )
    .await;
    // The watch cache had not seen the latest write yet: once more on what the API server has.
    if from_cache && matches!(&written, Err(Error::Kube(kube::Error::Api(s))) if s.code == 409) {
        let live = secrets.get_opt(&target_name).await.map_err(Error::Kube)?;
        // Judged again on the live Secret: one this process just wrote is no hand edit.
        let drifted = synced_before && !spec_changed && !secret_valid(&es, live.as_ref());
        written = write_secret(
            &es,
            &ctx.render,
            &secrets,
            &target_name,
            live,
            &data,
            creation,
            deletion,
            drifted,
        )
        .await;
    }
    let outcome = match written {
        Ok(o) => o,
        Err(e) => {
            let msg = match &e {
                Error::Immutable => "could not update secret, target is immutable".to_owned(),
                Error::OwnedByOther => "target is owned by another ExternalSecret".to_owned(),
                // Names of objects and keys only, never values.
                Error::Template(_) | Error::Spec(_) | Error::ControlledByOther { .. } => {
                    e.to_string()
                }
                _ => "could not update secret".to_owned(),
            };
            set_ready(&api, &es, false, "SecretSyncedError", &msg, None).await?;
            ctx.event(
                false,
                &*es,
                EventType::Warning,
                "UpdateFailed",
                e.to_string(),
            )
            .await;
            return match e {
                Error::Immutable
                | Error::OwnedByOther
                | Error::ControlledByOther { .. }
                | Error::Template(_) => Ok(Action::await_change()),
                other => Err(other),
            };
        }
    };
    let (reason, message) = match &outcome {
        Outcome::Synced { .. } | Outcome::NoWrite => ("SecretSynced", "secret synced"),
        Outcome::Retained => (
            "SecretSynced",
            "secret retained due to DeletionPolicy=Retain",
        ),
        Outcome::Deleted { .. } => (
            "SecretDeleted",
            "secret deleted due to DeletionPolicy=Delete",
        ),
        Outcome::Missing => (
            "SecretMissing",
            "secret will not be created due to CreationPolicy=Merge",
        ),
    };
    // ESO binds the Secret it created or updated; otherwise the binding stays as it was.
    let bound = matches!(outcome, Outcome::Synced { .. });
    match outcome {
        Outcome::Synced { created: true, .. } => {
            ctx.event(
                false,
                &*es,
                EventType::Normal,
                "Created",
                "secret created".into(),
            )
            .await;
        }
        Outcome::Synced { changed: true, .. } => {
            ctx.event(
                false,
                &*es,
                EventType::Normal,
                "Updated",
                "secret updated".into(),
            )
            .await;
        }
        // As ESO: only when there was a Secret to delete.
        Outcome::Deleted { existed: true } => {
            ctx.event(
                false,
                &*es,
                EventType::Normal,
                "Deleted",
                "secret deleted due to DeletionPolicy".into(),
            )
            .await;
        }
        _ => {}
    }
    let synced = (started_at.clone(), current_rv.clone());
    let binding = bound.then_some(target_name);
    set_ready(
        &api,
        &es,
        true,
        reason,
        message,
        Some((started_at, current_rv, binding)),
    )
    .await?;
    ctx.recent.record(&es, &synced.1, &synced.0);
    ctx.first_seen.forget(&es);
    tracing::debug!(namespace = %ns, name = %name, elapsed_ms = start.elapsed().as_millis() as u64, "externalsecret synced");
    let next = interval
        .and_then(|i| refresh_due(Some(&synced.0), i))
        .map(|due| due.duration_since(SystemTime::now()).unwrap_or_default() + WAKE_SLACK);
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Requeue policy: provider throttling backs off longer; everything else retries soon.
pub fn error_policy(es: Arc<ExternalSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = %es.namespace().unwrap_or_default(), name = %es.name_any(), error = %err, "externalsecret sync failed");
    Action::requeue(err.retry_after())
}

async fn resolve_stores(
    es: &ExternalSecret,
    ctx: &Context,
) -> Result<BTreeMap<(String, String), ResolvedStore>, Error> {
    let ns = es.namespace().unwrap_or_default();
    let mut refs: Vec<SecretStoreRef> = Vec::new();
    if let Some(r) = &es.spec.secret_store_ref {
        refs.push(r.clone());
    }
    for d in &es.spec.data {
        if let Some(r) = d.source_ref.as_ref().and_then(|s| s.store_ref.clone()) {
            refs.push(r);
        }
    }
    for d in &es.spec.data_from {
        if let Some(r) = d.source_ref.as_ref().and_then(|s| s.store_ref.clone()) {
            refs.push(r);
        }
    }
    let mut out = BTreeMap::new();
    for r in refs {
        let kind = store_kind(&r);
        let name = r.name.clone().unwrap_or_default();
        if out.contains_key(&(kind.clone(), name.clone())) {
            continue;
        }
        let store = ctx
            .store(&kind, &ns, &name)
            .await?
            .ok_or_else(|| Error::Store(format!("{kind} {name:?} not found")))?;
        if !store.is_ours(&ctx.config.controller_class) {
            return Err(Error::NotOurs);
        }
        if kind == "ClusterSecretStore" && !namespace_allowed(ctx, &store, &ns).await? {
            return Err(Error::Store(format!(
                "using ClusterSecretStore {name:?} is not allowed from namespace {ns:?}"
            )));
        }
        out.insert((kind, name), store);
    }
    Ok(out)
}

fn store_kind(r: &SecretStoreRef) -> String {
    match r.kind.as_deref() {
        Some("ClusterSecretStore") => "ClusterSecretStore".into(),
        _ => "SecretStore".into(),
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
            if crate::cluster::selector_matches(&selector, &have).map_err(|e| {
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

/// ESO's webhook rules, checked by the controller.
fn validate(es: &ExternalSecret) -> Result<(), String> {
    if es.spec.data.is_empty() && es.spec.data_from.is_empty() {
        // ESO allows a template-only ExternalSecret; it needs a template then.
        if es
            .spec
            .target
            .as_ref()
            .and_then(|t| t.template.as_ref())
            .is_none()
        {
            return Err("either data or dataFrom should be specified".into());
        }
    }
    let creation = creation_policy(es);
    let deletion = deletion_policy(es);
    if !matches!(
        creation,
        "Owner" | "Orphan" | "Merge" | "None" | "CreateOrMerge"
    ) {
        return Err(format!("unknown creationPolicy {creation:?}"));
    }
    if !matches!(deletion, "Retain" | "Delete" | "Merge") {
        return Err(format!("unknown deletionPolicy {deletion:?}"));
    }
    if deletion == "Delete" && matches!(creation, "Merge" | "None" | "CreateOrMerge") {
        return Err(format!(
            "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner (creationPolicy is {creation})"
        ));
    }
    if deletion == "Merge" && creation == "None" {
        return Err("deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with".into());
    }
    if let Some(p) = es.spec.refresh_policy.as_deref()
        && !matches!(p, "" | "Periodic" | "OnChange" | "CreatedOnce")
    {
        return Err(format!("unknown refreshPolicy {p:?}"));
    }
    for (i, d) in es.spec.data_from.iter().enumerate() {
        let set = usize::from(d.extract.is_some())
            + usize::from(d.find.is_some())
            + usize::from(
                d.source_ref
                    .as_ref()
                    .is_some_and(|s| s.generator_ref.is_some()),
            );
        if set != 1 {
            return Err(format!(
                "dataFrom[{i}]: exactly one of extract, find or generatorRef must be set"
            ));
        }
        for r in &d.rewrite {
            let n = usize::from(r.regexp.is_some())
                + usize::from(r.transform.is_some())
                + usize::from(r.merge.is_some());
            if n != 1 {
                return Err(format!(
                    "dataFrom[{i}].rewrite: exactly one of regexp, transform or merge must be set"
                ));
            }
        }
    }
    for (i, d) in es.spec.data.iter().enumerate() {
        if d.source_ref
            .as_ref()
            .is_some_and(|s| s.generator_ref.is_some())
        {
            return Err(format!(
                "data[{i}].sourceRef.generatorRef is not implemented (ESO deprecated it there); use dataFrom[].sourceRef.generatorRef"
            ));
        }
    }
    if deletion == "Retain" {
        let mut seen = std::collections::BTreeSet::new();
        for d in &es.spec.data {
            if !seen.insert(&d.secret_key) {
                return Err(format!("duplicate secretKey {:?}", d.secret_key));
            }
        }
    }
    if let Some(t) = es.spec.target.as_ref().and_then(|t| t.template.as_ref()) {
        if t.type_.as_deref() == Some("bootstrap.kubernetes.io/token") {
            return Err("template type bootstrap.kubernetes.io/token is not allowed".into());
        }
        if t.type_.as_deref() == Some("kubernetes.io/service-account-token")
            && t.metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .is_some_and(|a| a.contains_key("kubernetes.io/service-account.name"))
        {
            return Err("template type kubernetes.io/service-account-token is not allowed".into());
        }
        if let Some(e) = t.engine_version.as_deref()
            && !e.is_empty()
            && e != "v2"
        {
            return Err(format!(
                "template engineVersion {e:?} is not supported (v2)"
            ));
        }
    }
    if es
        .spec
        .target
        .as_ref()
        .is_some_and(|t| t.manifest.is_some())
    {
        return Err("target.manifest (generic targets) is not supported by hush".into());
    }
    Ok(())
}

/// ESO's finalizer on ExternalSecrets. hush does not add it (the ownerReference already takes an
/// owned Secret along); it carries out and removes the one ESO put on, so that an ExternalSecret
/// taken over from ESO is not left `Terminating` once ESO is gone.
pub const FINALIZER: &str = "externalsecrets.external-secrets.io/externalsecret-cleanup";

/// A deleted ExternalSecret with ESO's finalizer: ESO's cleanup (the target Secret is deleted
/// for `deletionPolicy: Delete` with `creationPolicy: Owner`, when this ExternalSecret controls
/// it), then the finalizer goes.
async fn finalize(es: &ExternalSecret, ctx: &Context) -> Result<Action, Error> {
    if !es.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = es.namespace().unwrap_or_default();
    if deletion_policy(es) == "Delete" && creation_policy(es) == "Owner" {
        let target = target_name(es);
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        if let Some(secret) = secrets.get_opt(&target).await.map_err(Error::Kube)?
            && let Some(uid) = es.uid()
            && secret
                .owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        {
            let params = DeleteParams {
                preconditions: secret.uid().map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match secrets.delete(&target, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
    }
    let rest: Vec<&String> = es.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);
    patch_finalizers(&api, es, json!(rest)).await?;
    Ok(Action::await_change())
}

/// Sets `obj`'s finalizers to `finalizers` (a merge patch; gone is fine). The resourceVersion
/// makes the patch fail rather than drop a finalizer added meanwhile.
pub(crate) async fn patch_finalizers<K>(
    api: &Api<K>,
    obj: &K,
    finalizers: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.resource_version()}});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// `target.name`, or the ExternalSecret's name.
pub(crate) fn target_name(es: &ExternalSecret) -> String {
    es.spec
        .target
        .as_ref()
        .and_then(|t| t.name.as_deref())
        .filter(|n| !n.is_empty())
        .map_or_else(|| es.name_any(), str::to_owned)
}

fn creation_policy(es: &ExternalSecret) -> &str {
    es.spec
        .target
        .as_ref()
        .and_then(|t| t.creation_policy.as_deref())
        .filter(|p| !p.is_empty())
        .unwrap_or("Owner")
}

fn deletion_policy(es: &ExternalSecret) -> &str {
    es.spec
        .target
        .as_ref()
        .and_then(|t| t.deletion_policy.as_deref())
        .filter(|p| !p.is_empty())
        .unwrap_or("Retain")
}

/// `refreshInterval`: unset is ESO's 1h; `0` is `None` (never again).
fn refresh_interval(es: &ExternalSecret) -> Result<Option<Duration>, Error> {
    let text = es.spec.refresh_interval.as_deref().unwrap_or("1h");
    let d = hush_operator::duration::parse(text)
        .map_err(|e| Error::Spec(format!("refreshInterval {text:?}: {e}")))?;
    Ok((!d.is_zero()).then_some(d))
}

/// Seconds since the Unix epoch of an RFC 3339 time.
fn epoch_seconds(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// A requeue lands this long after the refresh is due (timers and the wall clock differ
/// slightly; waking early would only requeue again).
const WAKE_SLACK: Duration = Duration::from_millis(50);

/// When the periodic refresh after a sync at `refresh_time` is due: the first multiple of
/// `interval` since the Unix epoch after it, i.e. at most `interval` after it (ESO's time) and
/// on the same boundary for every ExternalSecret with this interval, so a refresh wave reads
/// each key once ([`Freshness::Since`]). Sub-second intervals are not aligned. `None`: never
/// synced.
fn refresh_due(refresh_time: Option<&str>, interval: Duration) -> Option<SystemTime> {
    let synced = epoch_seconds(refresh_time?)?;
    let period = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let epoch = |secs: i64| {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
    };
    if period == 0 {
        return epoch(synced)?.checked_add(interval);
    }
    let due = synced
        .checked_add(period)
        .map(|t| t - t.rem_euclid(period))?;
    epoch(due)
}

fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// ESO's `shouldRefresh`, with the periodic refresh due on [`refresh_due`]'s boundary.
fn should_refresh(
    es: &ExternalSecret,
    status: &ExternalSecretStatus,
    current_rv: &str,
    interval: Option<Duration>,
    now: SystemTime,
) -> bool {
    let synced_rv = status
        .synced_resource_version
        .as_deref()
        .unwrap_or_default();
    match es.spec.refresh_policy.as_deref().unwrap_or("Periodic") {
        "CreatedOnce" => synced_rv.is_empty() || status.refresh_time.is_none(),
        "OnChange" => synced_rv != current_rv,
        _ => {
            if interval.is_none() && !synced_rv.is_empty() {
                return false;
            }
            if synced_rv != current_rv {
                return true;
            }
            let Some(t) = status.refresh_time.as_deref() else {
                return true;
            };
            let Some(interval) = interval else {
                return false;
            };
            refresh_due(Some(t), interval).is_none_or(|due| now >= due)
        }
    }
}

/// Which cached provider read this sync may use instead of calling the provider:
/// - a changed spec or a force-sync annotation: none (ESO reads at once);
/// - never synced: a read made since the ExternalSecret was created (the later of its
///   creation second's end and when the watch first delivered it, `first_seen`, is a bound),
///   within the read window (the first sync of many ExternalSecrets at start shares reads);
/// - a periodic refresh: a read made since the refresh became due (one read per key per wave);
/// - a repair of a deleted or edited Secret: any read within the read window.
#[expect(
    clippy::too_many_arguments,
    reason = "the freshness rule's inputs come from the object, the watch, the status and the clock"
)]
fn read_freshness(
    es: &ExternalSecret,
    first_seen: Option<SystemTime>,
    status: &ExternalSecretStatus,
    spec_changed: bool,
    first_sync: bool,
    interval: Option<Duration>,
    read_window: Duration,
    now: SystemTime,
) -> Freshness {
    let never_synced = status
        .synced_resource_version
        .as_deref()
        .is_none_or(str::is_empty);
    if never_synced {
        // Creation times have whole seconds: a read must start after the next one, or after
        // the watch delivered the ExternalSecret (it existed then), whichever is earlier.
        let created = es
            .meta()
            .creation_timestamp
            .as_ref()
            .and_then(|t| u64::try_from(t.0.as_second()).ok())
            .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s + 1)));
        let created = match (created, first_seen) {
            (Some(c), Some(f)) => Some(c.min(f)),
            (c, f) => c.or(f),
        };
        let window_start = now.checked_sub(read_window).unwrap_or(now);
        return Freshness::Since(created.map_or(now, |c| c.max(window_start).min(now)));
    }
    if spec_changed {
        return Freshness::Since(now);
    }
    if first_sync {
        return Freshness::Window;
    }
    interval
        .and_then(|i| refresh_due(status.refresh_time.as_deref(), i))
        .map_or(Freshness::Since(now), |due| Freshness::Since(due.min(now)))
}

/// ESO's `isSecretValid`: managed label and matching data hash (Orphan: always valid).
fn secret_valid(es: &ExternalSecret, secret: Option<&Secret>) -> bool {
    if creation_policy(es) == "Orphan" {
        return true;
    }
    if creation_policy(es) == "None" {
        return true;
    }
    let Some(secret) = secret else {
        return false;
    };
    if secret.labels().get(eso::LABEL_MANAGED).map(String::as_str) != Some("true") {
        return false;
    }
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    secret.annotations().get(eso::ANNOTATION_DATA_HASH) == Some(&eso::data_hash(&data))
}

/// Fetches `dataFrom` then `data` into one map (later wins).
async fn fetch_all(
    es: &ExternalSecret,
    ctx: &Context,
    stores: &BTreeMap<(String, String), ResolvedStore>,
    ns: &str,
    deletion: &str,
    fresh: Freshness,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let default_ref = es.spec.secret_store_ref.clone().unwrap_or_default();
    let provider_for = |r: Option<&SecretStoreRef>| {
        let r = r.unwrap_or(&default_ref);
        let key = (store_kind(r), r.name.clone().unwrap_or_default());
        stores
            .get(&key)
            .ok_or_else(|| Error::Store(format!("no store {:?}", key.1)))
    };
    for (i, df) in es.spec.data_from.iter().enumerate() {
        let generator = df
            .source_ref
            .as_ref()
            .and_then(|s| s.generator_ref.as_ref());
        let result = if let Some(g) = generator {
            let field = format!("dataFrom[{i}].sourceRef.generatorRef");
            crate::generators::generate(ctx, ns, g, &field)
                .await
                .map(|m| (m, "Default", "None", "Ignore"))
        } else {
            let store = provider_for(df.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
            let provider = store
                .provider(ctx, Some(ns), fresh)
                .await
                .map_err(Error::Provider)?;
            fetch_data_from(df, &provider).await
        };
        let (map, conversion, decoding, null_policy) = match result {
            Ok(v) => v,
            Err(Error::Provider(e)) if e.is_not_found() && deletion != "Retain" => {
                missing_event(ctx, es, format!("spec.dataFrom[{i}]")).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        // ESO: rewrite, or the conversion strategy when there is no rewrite.
        let map = if df.rewrite.is_empty() {
            map.into_iter()
                .map(|(k, v)| (eso::convert_key(&k, conversion == "Unicode"), v))
                .collect()
        } else {
            crate::rewrite::rewrite_map(map, &df.rewrite)
                .map_err(|e| prefix_error(&format!("dataFrom[{i}]."), e))?
        };
        for (key, v) in map {
            if key.is_empty() {
                continue;
            }
            if !eso::valid_key(&key) {
                return Err(Error::Spec(format!(
                    "key {key:?} is not a valid Secret key (use conversionStrategy or rewrite)"
                )));
            }
            let value = eso::decode(v.expose().to_vec(), decoding).map_err(Error::Spec)?;
            check_null(&key, &value, null_policy)?;
            out.insert(key, value);
        }
    }
    for (i, d) in es.spec.data.iter().enumerate() {
        let store = provider_for(d.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
        let provider = store
            .provider(ctx, Some(ns), fresh)
            .await
            .map_err(Error::Provider)?;
        match provider.get(&remote_ref(&d.remote_ref)).await {
            Ok(v) => {
                let decoding = d.remote_ref.decoding_strategy.as_deref().unwrap_or("None");
                let value = eso::decode(v.expose().to_vec(), decoding).map_err(Error::Spec)?;
                check_null(
                    &d.secret_key,
                    &value,
                    d.remote_ref.null_byte_policy.as_deref().unwrap_or("Ignore"),
                )?;
                out.insert(d.secret_key.clone(), value);
            }
            Err(e) if e.is_not_found() && deletion != "Retain" => {
                let entry = format!("spec.data[{i}] (key={})", d.remote_ref.key);
                missing_event(ctx, es, entry).await;
            }
            Err(e) => return Err(Error::Provider(e)),
        }
    }
    Ok(out)
}

/// ESO's MissingProviderSecret event, one per skipped entry as it is skipped (so it is sent
/// also when a later entry fails).
async fn missing_event(ctx: &Context, es: &ExternalSecret, entry: String) {
    ctx.event(
        false,
        es,
        EventType::Normal,
        "MissingProviderSecret",
        format!("secret does not exist at provider using {entry}"),
    )
    .await;
}

type FetchedMap<'a> = (BTreeMap<String, SecretBytes>, &'a str, &'a str, &'a str);

async fn fetch_data_from<'a>(
    df: &'a ExternalSecretDataFromRemoteRef,
    provider: &hush_sync::cache::CachedProvider,
) -> Result<FetchedMap<'a>, Error> {
    if let Some(x) = &df.extract {
        let map = provider
            .get_map(&remote_ref(x))
            .await
            .map_err(Error::Provider)?;
        return Ok((
            map,
            x.conversion_strategy.as_deref().unwrap_or("Default"),
            x.decoding_strategy.as_deref().unwrap_or("None"),
            x.null_byte_policy.as_deref().unwrap_or("Ignore"),
        ));
    }
    if let Some(f) = &df.find {
        let q = FindQuery {
            path: f.path.clone().unwrap_or_default(),
            name_regexp: f
                .name
                .as_ref()
                .and_then(|n| n.regexp.clone())
                .unwrap_or_default(),
            tags: f.tags.clone().unwrap_or_default(),
        };
        let map = provider.find(&q).await.map_err(Error::Provider)?;
        return Ok((
            map,
            f.conversion_strategy.as_deref().unwrap_or("Default"),
            f.decoding_strategy.as_deref().unwrap_or("None"),
            f.null_byte_policy.as_deref().unwrap_or("Ignore"),
        ));
    }
    Err(Error::Spec(
        "dataFrom entry has neither extract nor find".into(),
    ))
}

fn check_null(key: &str, value: &[u8], policy: &str) -> Result<(), Error> {
    match policy {
        "" | "Ignore" => Ok(()),
        "Fail" if value.contains(&0) => Err(Error::Spec(format!(
            "value of key {key:?} contains a NUL byte (nullBytePolicy=Fail)"
        ))),
        "Fail" => Ok(()),
        other => Err(Error::Spec(format!("unknown nullBytePolicy {other:?}"))),
    }
}

fn remote_ref(r: &ApiRemoteRef) -> RemoteRef {
    RemoteRef {
        key: r.key.clone(),
        property: r.property.clone().unwrap_or_default(),
        version: r.version.clone().unwrap_or_default(),
        metadata: r.metadata_policy.as_deref() == Some("Fetch"),
    }
}

fn prefix_error(prefix: &str, e: Error) -> Error {
    match e {
        Error::Spec(m) => Error::Spec(format!("{prefix}{m}")),
        Error::Template(m) => Error::Template(format!("{prefix}{m}")),
        other => other,
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "ESO's policies and the drift verdict are separate inputs of one write"
)]
async fn write_secret(
    es: &ExternalSecret,
    render: &crate::templating::RenderPool,
    secrets: &Api<Secret>,
    target: &str,
    existing: Option<Secret>,
    data: &BTreeMap<String, Vec<u8>>,
    creation: &str,
    deletion: &str,
    drifted: bool,
) -> Result<Outcome, Error> {
    let ns = es.namespace().unwrap_or_default();
    // As ESO: no provider data is judged before any template (which may render keys of its
    // own from templateFrom literals).
    if data.is_empty() {
        match deletion {
            "Delete" => {
                let existed = creation == "Owner" && existing.is_some();
                if existed {
                    secrets
                        .delete(target, &DeleteParams::default())
                        .await
                        .map_err(Error::Kube)?;
                }
                return Ok(Outcome::Deleted { existed });
            }
            "Retain" => return Ok(Outcome::Retained),
            _ => {}
        }
    }
    if creation == "None" {
        return Ok(Outcome::NoWrite);
    }
    if creation == "Merge" && existing.is_none() {
        return Ok(Outcome::Missing);
    }
    if let Some(s) = &existing {
        check_controller(es, s, creation)?;
    }
    let mut secret = existing.clone().unwrap_or_else(|| Secret {
        metadata: ObjectMeta {
            name: Some(target.to_owned()),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    });
    // What this ExternalSecret wrote before (managedFields, as ESO): removed first, so that a key
    // dropped from the ExternalSecret leaves the Secret. hush's drift annotations stay.
    let previous = existing
        .as_ref()
        .map(|s| eso::ManagedKeys::of(s, &es.name_any()))
        .unwrap_or_default();
    // The PUT must not carry managedFields: a partial list (the watch cache keeps only ESO's
    // entries) would replace the server's.
    secret.metadata.managed_fields = None;
    secret
        .labels_mut()
        .retain(|k, _| !previous.labels.contains(k));
    secret.annotations_mut().retain(|k, _| {
        !previous.annotations.contains(k)
            || k == drift::COUNT_ANNOTATION
            || k == drift::LAST_ANNOTATION
    });
    let merge_data = matches!(creation, "Merge" | "CreateOrMerge");
    // Data.
    let mut new_data: BTreeMap<String, ByteString> = if merge_data {
        let mut kept = secret.data.clone().unwrap_or_default();
        kept.retain(|k, _| !previous.data.contains(k));
        kept
    } else {
        BTreeMap::new()
    };
    if let Some(t) = es.spec.target.as_ref().and_then(|t| t.template.as_ref()) {
        let sources = if t.template_from.is_empty() {
            crate::templating::Sources::default()
        } else {
            crate::templating::fetch_sources(&secrets.clone().into_client(), &ns, t).await?
        };
        let rendered = render.apply(t, data, sources).await?;
        new_data.extend(rendered.data.into_iter().map(|(k, v)| (k, ByteString(v))));
        if let Some(ty) = rendered.type_ {
            secret.type_ = Some(ty);
        }
        for (k, v) in rendered.labels {
            secret.labels_mut().insert(k, v);
        }
        for (k, v) in rendered.annotations {
            secret.annotations_mut().insert(k, v);
        }
        // Added, never removed (ESO).
        for f in t
            .metadata
            .iter()
            .flat_map(|m| m.finalizers.iter().flatten())
        {
            let fins = secret.metadata.finalizers.get_or_insert_with(Vec::new);
            if !fins.contains(f) {
                fins.push(f.clone());
            }
        }
    } else {
        for (k, v) in data {
            new_data.insert(k.clone(), ByteString(v.clone()));
        }
        // Without a template, the ExternalSecret's own labels and annotations are copied.
        for (k, v) in es.labels() {
            secret.labels_mut().insert(k.clone(), v.clone());
        }
        for (k, v) in es.annotations() {
            if k == "kubectl.kubernetes.io/last-applied-configuration" {
                continue;
            }
            secret.annotations_mut().insert(k.clone(), v.clone());
        }
    }
    let hash_input: BTreeMap<String, Vec<u8>> = new_data
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    secret.data = Some(new_data);
    secret.string_data = None;
    secret
        .labels_mut()
        .insert(eso::LABEL_MANAGED.into(), "true".into());
    secret.annotations_mut().insert(
        eso::ANNOTATION_DATA_HASH.into(),
        eso::data_hash(&hash_input),
    );
    if creation == "Owner" {
        secret.labels_mut().insert(
            eso::LABEL_CREATED_BY.into(),
            eso::created_by(&ns, &es.name_any()),
        );
        if let Some(oref) = es.controller_owner_ref(&()) {
            let refs = secret
                .metadata
                .owner_references
                .get_or_insert_with(Vec::new);
            if !refs.iter().any(|r| r.uid == oref.uid) {
                refs.retain(|r| r.controller != Some(true));
                refs.push(oref);
            }
        }
    }
    if es.spec.target.as_ref().and_then(|t| t.immutable) == Some(true) {
        secret.immutable = Some(true);
    }
    if drifted {
        let found = existing.as_ref().map(|s| s.annotations().clone());
        let count = drift::DriftLedger::global().record(
            &ns,
            target,
            found.as_ref(),
            secret.annotations_mut(),
            &now_rfc3339(),
        );
        tracing::info!(namespace = %ns, secret = %target, count, "Secret edited or deleted by hand: putting it back");
    }
    let pp = PostParams {
        field_manager: Some(eso::field_manager(&es.name_any())),
        ..PostParams::default()
    };
    match existing {
        None => {
            secrets.create(&pp, &secret).await.map_err(Error::Kube)?;
            Ok(Outcome::Synced {
                created: true,
                changed: true,
            })
        }
        Some(old) => {
            if old.data == secret.data
                && old.metadata.labels == secret.metadata.labels
                && old.metadata.annotations == secret.metadata.annotations
                && old.metadata.owner_references == secret.metadata.owner_references
                && old.type_ == secret.type_
                && old.immutable == secret.immutable
                && old.metadata.finalizers == secret.metadata.finalizers
            {
                return Ok(Outcome::Synced {
                    created: false,
                    changed: false,
                });
            }
            if old.immutable == Some(true) {
                return Err(Error::Immutable);
            }
            match secrets.replace(target, &pp, &secret).await {
                Ok(_) => Ok(Outcome::Synced {
                    created: false,
                    changed: true,
                }),
                Err(kube::Error::Api(s)) if s.code == 422 && old.immutable == Some(true) => {
                    Err(Error::Immutable)
                }
                Err(e) => Err(Error::Kube(e)),
            }
        }
    }
}

/// ESO's markAsFailed: `Ready=False/SecretSyncedError` with `message`, and a Warning
/// `UpdateFailed` event with the error's text.
async fn mark_failed(
    api: &Api<ExternalSecret>,
    ctx: &Context,
    es: &ExternalSecret,
    message: &str,
    error: &Error,
) -> Result<(), Error> {
    set_ready(api, es, false, "SecretSyncedError", message, None).await?;
    ctx.event(
        false,
        es,
        EventType::Warning,
        "UpdateFailed",
        error.to_string(),
    )
    .await;
    Ok(())
}

/// Deletes the Secrets this ExternalSecret created (its `created-by` label) under another name
/// than `target` (from the managed-Secret cache, else listed), with a `Deleted` event each.
async fn delete_orphans(
    es: &ExternalSecret,
    ctx: &Context,
    secrets: &Api<Secret>,
    target: &str,
) -> Result<(), Error> {
    let ns = es.namespace().unwrap_or_default();
    let created_by = eso::created_by(&ns, &es.name_any());
    let names: Vec<String> = match ctx.caches.get() {
        Some(c) => c
            .secrets
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
            .filter(|s| s.labels().get(eso::LABEL_CREATED_BY) == Some(&created_by))
            .map(|s| s.name_any())
            .collect(),
        None => secrets
            .list_metadata(
                &kube::api::ListParams::default()
                    .labels(&format!("{}={created_by}", eso::LABEL_CREATED_BY)),
            )
            .await
            .map_err(Error::Kube)?
            .items
            .iter()
            .map(|s| s.name_any())
            .collect(),
    };
    for name in names.iter().filter(|n| *n != target) {
        match secrets.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(Error::Kube(e)),
        }
        ctx.event(
            false,
            es,
            EventType::Normal,
            "Deleted",
            "secret deleted because it was orphaned".into(),
        )
        .await;
    }
    Ok(())
}

/// Who may write an existing target: another ExternalSecret as its controller is an error
/// whatever the policy; with `creationPolicy: Owner` (which makes this ExternalSecret the
/// controller) so is any other controller, as ESO's `SetControllerReference` refuses it — a
/// SealedSecret's or a cert-manager Certificate's Secret is never taken over.
fn check_controller(es: &ExternalSecret, secret: &Secret, creation: &str) -> Result<(), Error> {
    let Some(owner) = secret
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    else {
        return Ok(());
    };
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    let is_external_secret = owner.kind == "ExternalSecret" && group == "external-secrets.io";
    if is_external_secret && owner.name == es.name_any() && es.uid().is_none_or(|u| u == owner.uid)
    {
        return Ok(());
    }
    if is_external_secret {
        return Err(Error::OwnedByOther);
    }
    if creation != "Owner" {
        return Ok(());
    }
    Err(Error::ControlledByOther {
        kind: if group.is_empty() {
            owner.kind.clone()
        } else {
            format!("{}.{group}", owner.kind)
        },
        name: owner.name.clone(),
    })
}

/// Writes the Ready condition (and, on success, refreshTime/syncedResourceVersion/binding);
/// `lastTransitionTime` changes only when the status flips. Skipped when nothing changed.
async fn set_ready(
    api: &Api<ExternalSecret>,
    es: &ExternalSecret,
    ready: bool,
    reason: &str,
    message: &str,
    synced: Option<(String, String, Option<String>)>,
) -> Result<(), Error> {
    crate::metrics::note_ready(ready);
    let old = es.status.clone().unwrap_or_default();
    let status_text = if ready { "True" } else { "False" };
    let previous = old.conditions.iter().find(|c| c.type_ == "Ready");
    let ltt = match previous {
        Some(p) if p.status == status_text => p.last_transition_time.clone(),
        _ => Some(now_rfc3339()),
    };
    let condition = Condition {
        type_: "Ready".into(),
        status: status_text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: ltt,
    };
    let mut status = old.clone();
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(condition);
    if let Some((time, rv, binding)) = synced {
        status.refresh_time = Some(time);
        status.synced_resource_version = Some(rv);
        if let Some(target) = binding {
            status.binding = Some(hush_api::external_secrets::Binding { name: Some(target) });
        }
    }
    if status == old {
        return Ok(());
    }
    api.patch_status(
        &es.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn es(spec: serde_json::Value) -> ExternalSecret {
        serde_json::from_value(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "x", "namespace": "n", "generation": 2},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn secrets_of_other_controllers_are_never_taken_over() {
        let mut me = es(json!({}));
        me.metadata.uid = Some("me".into());
        let secret = |api_version: &str, kind: &str, name: &str, uid: &str| -> Secret {
            serde_json::from_value(json!({"metadata": {"name": "t", "ownerReferences": [
                {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true}]}}))
            .unwrap()
        };
        let sealed = secret("bitnami.com/v1alpha1", "SealedSecret", "x", "s1");
        let cert = secret("cert-manager.io/v1", "Certificate", "web", "c1");
        let lookalike = secret("kubernetes-client.io/v1", "ExternalSecret", "x", "k1");
        for (s, kind) in [
            (&sealed, "SealedSecret.bitnami.com"),
            (&cert, "Certificate.cert-manager.io"),
            (&lookalike, "ExternalSecret.kubernetes-client.io"),
        ] {
            match check_controller(&me, s, "Owner") {
                Err(Error::ControlledByOther { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{kind}: {other:?}"),
            }
            // Merge and Orphan never become the controller: they may write into it.
            assert!(check_controller(&me, s, "Merge").is_ok());
            assert!(check_controller(&me, s, "Orphan").is_ok());
        }
        let mine = secret("external-secrets.io/v1", "ExternalSecret", "x", "me");
        assert!(check_controller(&me, &mine, "Owner").is_ok());
        let other_es = secret("external-secrets.io/v1", "ExternalSecret", "y", "o");
        assert!(matches!(
            check_controller(&me, &other_es, "Merge"),
            Err(Error::OwnedByOther)
        ));
        let unowned: Secret = serde_json::from_value(json!({"metadata": {"name": "t"}})).unwrap();
        assert!(check_controller(&me, &unowned, "Owner").is_ok());
        let text = check_controller(&me, &sealed, "Owner")
            .unwrap_err()
            .to_string();
        assert!(text.contains("SealedSecret.bitnami.com \"x\""), "{text}");
    }

    #[test]
    fn webhook_rules() {
        let ok = es(json!({"data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}));
        assert!(validate(&ok).is_ok());
        assert!(validate(&es(json!({}))).is_err());
        assert!(validate(&es(json!({"target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"}, "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))).is_err());
        assert!(validate(&es(json!({"target": {"creationPolicy": "None", "deletionPolicy": "Merge"}, "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))).is_err());
        assert!(
            validate(&es(
                json!({"dataFrom": [{"extract": {"key": "a"}, "find": {"path": "x"}}]})
            ))
            .is_err()
        );
        assert!(validate(&es(json!({"data": [{"secretKey": "a", "remoteRef": {"key": "k"}}, {"secretKey": "a", "remoteRef": {"key": "j"}}]}))).is_err());
        assert!(validate(&es(json!({"target": {"creationPolicy": "Bogus"}, "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))).is_err());
    }

    #[test]
    fn refresh_decisions_follow_eso() {
        let e = es(
            json!({"refreshInterval": "1h", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        let rv = eso::synced_resource_version(2, e.labels(), e.annotations());
        let interval = refresh_interval(&e).unwrap();
        assert_eq!(interval, Some(Duration::from_secs(3600)));
        let fresh = ExternalSecretStatus {
            refresh_time: Some(now_rfc3339()),
            synced_resource_version: Some(rv.clone()),
            ..ExternalSecretStatus::default()
        };
        assert!(!should_refresh(
            &e,
            &fresh,
            &rv,
            interval,
            SystemTime::now()
        ));
        assert!(should_refresh(
            &e,
            &fresh,
            "3-other",
            interval,
            SystemTime::now()
        ));
        assert!(should_refresh(
            &e,
            &ExternalSecretStatus::default(),
            &rv,
            interval,
            SystemTime::now()
        ));
        let old = ExternalSecretStatus {
            refresh_time: Some("2020-01-01T00:00:00Z".into()),
            ..fresh.clone()
        };
        assert!(should_refresh(&e, &old, &rv, interval, SystemTime::now()));
        let once = es(
            json!({"refreshInterval": "0", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        assert_eq!(refresh_interval(&once).unwrap(), None);
        assert!(!should_refresh(
            &once,
            &old,
            "3-other",
            None,
            SystemTime::now()
        ));
        let created_once = es(
            json!({"refreshPolicy": "CreatedOnce", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        assert!(!should_refresh(
            &created_once,
            &old,
            "3-other",
            interval,
            SystemTime::now()
        ));
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn refreshes_fall_due_on_shared_boundaries_never_later_than_eso() {
        let i = Duration::from_secs(30);
        // 1_800_000_000 is a multiple of 30 (2027-01-15T08:00:00Z).
        let base = 1_800_000_000;
        let rfc = |secs: i64| {
            k8s_openapi::jiff::Timestamp::from_second(secs)
                .unwrap()
                .to_string()
        };
        // Synced anywhere in one period: all due on the same next boundary.
        for offset in [0, 1, 17, 29] {
            assert_eq!(
                refresh_due(Some(&rfc(base + offset)), i),
                Some(at(1_800_000_030))
            );
        }
        // Never later than ESO's refreshTime + interval.
        for offset in 0..90 {
            let due = refresh_due(Some(&rfc(base + offset)), i).unwrap();
            assert!(due <= at((base + offset) as u64) + i);
            assert!(due > at((base + offset) as u64));
        }
        // Sub-second intervals are not aligned; unsynced has no due time.
        assert_eq!(
            refresh_due(Some(&rfc(base + 7)), Duration::from_millis(500)),
            Some(at(1_800_000_007) + Duration::from_millis(500))
        );
        assert_eq!(refresh_due(None, i), None);
        // should_refresh follows the boundary.
        let e = es(
            json!({"refreshInterval": "30s", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        let rv = eso::synced_resource_version(2, e.labels(), e.annotations());
        let status = ExternalSecretStatus {
            refresh_time: Some(rfc(base + 29)),
            synced_resource_version: Some(rv.clone()),
            ..ExternalSecretStatus::default()
        };
        assert!(!should_refresh(
            &e,
            &status,
            &rv,
            Some(i),
            at(1_800_000_029)
        ));
        assert!(should_refresh(&e, &status, &rv, Some(i), at(1_800_000_030)));
    }

    #[test]
    fn reads_are_shared_only_where_eso_would_read_as_fresh() {
        let window = Duration::from_secs(10);
        let now = at(1_800_000_100);
        let mut e = es(
            json!({"refreshInterval": "30s", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        let rv = eso::synced_resource_version(2, e.labels(), e.annotations());
        // Never synced, created long ago: a read within the window.
        e.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        ));
        let none = ExternalSecretStatus::default();
        let i = Some(Duration::from_secs(30));
        assert_eq!(
            read_freshness(&e, None, &none, true, true, i, window, now),
            Freshness::Since(at(1_800_000_090))
        );
        // Created just now: only a read started after its creation second.
        e.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_800_000_095).unwrap(),
        ));
        assert_eq!(
            read_freshness(&e, None, &none, true, true, i, window, now),
            Freshness::Since(at(1_800_000_096))
        );
        // ... unless the watch delivered it earlier in that second: a read since then.
        let seen = at(1_800_000_095) + Duration::from_millis(300);
        assert_eq!(
            read_freshness(&e, Some(seen), &none, true, true, i, window, now),
            Freshness::Since(seen)
        );
        // Changed spec or force-sync: a new read.
        let synced = ExternalSecretStatus {
            refresh_time: Some("2027-01-15T08:01:31Z".into()),
            synced_resource_version: Some("1-old".into()),
            ..ExternalSecretStatus::default()
        };
        assert_eq!(
            read_freshness(&e, None, &synced, true, true, i, window, now),
            Freshness::Since(now)
        );
        // Periodic refresh: a read since the boundary it fell due on (08:02:00 = ...120).
        let later = at(1_800_000_125);
        let refreshed = ExternalSecretStatus {
            synced_resource_version: Some(rv),
            ..synced
        };
        assert_eq!(
            read_freshness(&e, None, &refreshed, false, false, i, window, later),
            Freshness::Since(at(1_800_000_120))
        );
        // Repairing a deleted Secret: the window.
        assert_eq!(
            read_freshness(&e, None, &refreshed, false, true, i, window, later),
            Freshness::Window
        );
    }

    #[test]
    fn secrets_written_by_eso_are_valid() {
        let e = es(json!({"data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}));
        let data = BTreeMap::from([("a".to_owned(), b"v".to_vec())]);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "x", "labels": {eso::LABEL_MANAGED: "true"},
                         "annotations": {eso::ANNOTATION_DATA_HASH: eso::data_hash(&data)}},
            "data": {"a": "dg=="}
        }))
        .unwrap();
        assert!(secret_valid(&e, Some(&secret)));
        let mut tampered = secret.clone();
        tampered
            .data
            .as_mut()
            .unwrap()
            .insert("a".into(), ByteString(b"w".to_vec()));
        assert!(!secret_valid(&e, Some(&tampered)));
        assert!(!secret_valid(&e, None));
    }
}
