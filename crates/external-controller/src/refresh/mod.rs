//! Refresh on demand, beyond ESO (its issues #675 and #2975): an HTTP endpoint, served by every
//! replica, that makes one ExternalSecret, or every ExternalSecret reading through one
//! SecretStore or ClusterSecretStore, read its provider again now, without anyone editing the
//! ExternalSecret:
//!
//! - `POST /v1/namespaces/{namespace}/externalsecrets/{name}/refresh`
//! - `POST /v1/namespaces/{namespace}/secretstores/{name}/refresh`
//! - `POST /v1/clustersecretstores/{name}/refresh`
//!
//! The caller sends `Authorization: Bearer <token>`. The token is checked with a TokenReview
//! (401), and its user with a SubjectAccessReview for `patch` on the object in the path (403):
//! on the ExternalSecret, or on the store for a store's refresh (whoever may patch a store may
//! already point every ExternalSecret using it elsewhere, a stronger power than a re-read).
//!
//! The controller records the request as annotation [`REQUESTED_AT`] on each ExternalSecret.
//! Any change of an ExternalSecret's annotations changes ESO's `syncedResourceVersion`, so the
//! replica that reconciles it (the leader, or with `--shards` the holder of its shard, whichever
//! replica took the request) sees the change through its watch and reads the provider past the
//! read cache, as after a spec change. ExternalSecrets that would not read again on such a change
//! (`refreshPolicy: CreatedOnce`, `refreshInterval: 0` once synced) are refused (409), as are
//! requests for one refreshed less than `--refresh-min-interval` ago (429).
//!
//! Every request is bounded: the server's connection, head and time limits
//! (`hush_operator::server`), a 1 KiB body, [`access::MAX_TOKEN_BYTES`] of token, a request
//! budget taken before any review (`--refresh-rate`, `--refresh-burst`: 429 beyond), and at most
//! `--refresh-max-objects` ExternalSecrets per store request (422 beyond). docs/security.md.

mod access;
mod budget;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use hush_operator::metrics::Labels;
use hush_operator::{Process, TaskResult};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;

use self::access::Caller;
use self::budget::Budget;

/// The annotation the endpoint sets on an ExternalSecret: when a refresh was last requested
/// (RFC 3339). Its change is what makes the ExternalSecret read again.
pub const REQUESTED_AT: &str = "externalsecrets.hush.dev/refresh-requested-at";

/// The endpoint's field manager on the ExternalSecrets it annotates.
const FIELD_MANAGER: &str = "hush-refresh";

/// Largest request body: the endpoint reads none.
const MAX_BODY_BYTES: usize = 1024;

/// ExternalSecrets annotated at once for a store's refresh.
const PATCHES_AT_ONCE: usize = 8;

/// Settings of the endpoint (`--refresh-*` flags of `hush controller`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Token audiences a caller's token must be for (`--refresh-token-audience`, repeatable);
    /// empty: the API server's own.
    pub audiences: Vec<String>,
    /// Requests a second, over all callers (`--refresh-rate`).
    pub rate: f64,
    /// Requests at once above the rate (`--refresh-burst`).
    pub burst: u32,
    /// An ExternalSecret whose refresh was requested less than this ago is not requested again
    /// (`--refresh-min-interval`).
    pub min_interval: Duration,
    /// ExternalSecrets one store request may refresh (`--refresh-max-objects`).
    pub max_objects: usize,
    /// The namespace the controller watches (`--namespace`): others are not served.
    pub namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            audiences: Vec::new(),
            rate: 5.0,
            burst: 20,
            min_interval: Duration::from_secs(5),
            max_objects: 1000,
            namespace: None,
        }
    }
}

/// What a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    ExternalSecret { namespace: String, name: String },
    SecretStore { namespace: String, name: String },
    ClusterSecretStore { name: String },
}

impl Target {
    fn resource(&self) -> &'static str {
        match self {
            Self::ExternalSecret { .. } => "externalsecrets",
            Self::SecretStore { .. } => "secretstores",
            Self::ClusterSecretStore { .. } => "clustersecretstores",
        }
    }

    fn namespace(&self) -> Option<&str> {
        match self {
            Self::ExternalSecret { namespace, .. } | Self::SecretStore { namespace, .. } => {
                Some(namespace)
            }
            Self::ClusterSecretStore { .. } => None,
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::ExternalSecret { name, .. }
            | Self::SecretStore { name, .. }
            | Self::ClusterSecretStore { name } => name,
        }
    }

    /// `ExternalSecret team/db`.
    fn describe(&self) -> String {
        let kind = match self {
            Self::ExternalSecret { .. } => "ExternalSecret",
            Self::SecretStore { .. } => "SecretStore",
            Self::ClusterSecretStore { .. } => "ClusterSecretStore",
        };
        match self.namespace() {
            Some(ns) => format!("{kind} {ns}/{}", self.name()),
            None => format!("{kind} {}", self.name()),
        }
    }

    /// Names as the API server accepts them: a namespace is a DNS label, a name a DNS
    /// subdomain. Checked before any review, so nothing else reaches the API server.
    fn validate(&self) -> Result<(), Refusal> {
        if let Some(ns) = self.namespace()
            && !is_dns_name(ns, 63, false)
        {
            return Err(Refusal::BadRequest(format!(
                "namespace {ns:.63?} is not a valid namespace name"
            )));
        }
        if !is_dns_name(self.name(), 253, true) {
            return Err(Refusal::BadRequest(format!(
                "name {:.253?} is not a valid object name",
                self.name()
            )));
        }
        Ok(())
    }
}

/// RFC 1123 label (or, with `dots`, subdomain) of at most `max` bytes.
fn is_dns_name(s: &str, max: usize, dots: bool) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !s.is_empty()
        && s.len() <= max
        && if dots {
            s.split('.').all(label_ok)
        } else {
            label_ok(s)
        }
}

/// Why a request was not carried out; the message names what to do and never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadRequest(String),
    Unauthorized(&'static str),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    TooMany {
        retry_after: Duration,
        message: String,
    },
    TooLarge(String),
    Unavailable(&'static str),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Unauthorized(m) | Self::Unavailable(m) => m,
            Self::BadRequest(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::TooLarge(m)
            | Self::TooMany { message: m, .. } => m,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let code = self.status();
        let body = json!({"code": code.as_u16(), "message": self.message()}).to_string();
        let mut response =
            (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooMany { retry_after, .. } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0);
                if let Ok(v) = HeaderValue::from_str(&format!("{secs:.0}")) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

/// What a carried-out request did.
#[derive(Debug, Default)]
struct Requested {
    /// `namespace/name` of each ExternalSecret annotated.
    refreshed: Vec<String>,
    /// `namespace/name` and why, of each one left alone.
    skipped: Vec<(String, Refusal)>,
}

impl IntoResponse for Requested {
    fn into_response(self) -> Response {
        let skipped: Vec<_> = self
            .skipped
            .iter()
            .map(|(es, why)| json!({"externalSecret": es, "code": why.status().as_u16(), "reason": why.message()}))
            .collect();
        let body = json!({"refreshRequested": self.refreshed, "skipped": skipped}).to_string();
        (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

#[derive(Clone)]
struct Endpoint {
    client: kube::Client,
    settings: Arc<Settings>,
    budget: Arc<Budget>,
    /// `hush_refresh_requests_total{resource,code}`.
    requests: Family<Labels, Counter>,
}

/// The endpoint's router (see the module docs), answering as `client`.
fn router(client: kube::Client, settings: Settings, requests: Family<Labels, Counter>) -> Router {
    let endpoint = Endpoint {
        client,
        budget: Arc::new(Budget::new(settings.rate, settings.burst)),
        settings: Arc::new(settings),
        requests,
    };
    Router::new()
        .route(
            "/v1/namespaces/{namespace}/externalsecrets/{name}/refresh",
            post(
                |State(e): State<Endpoint>, Path((namespace, name)), headers: HeaderMap| async move {
                    e.handle(Target::ExternalSecret { namespace, name }, &headers).await
                },
            ),
        )
        .route(
            "/v1/namespaces/{namespace}/secretstores/{name}/refresh",
            post(
                |State(e): State<Endpoint>, Path((namespace, name)), headers: HeaderMap| async move {
                    e.handle(Target::SecretStore { namespace, name }, &headers).await
                },
            ),
        )
        .route(
            "/v1/clustersecretstores/{name}/refresh",
            post(
                |State(e): State<Endpoint>, Path(name), headers: HeaderMap| async move {
                    e.handle(Target::ClusterSecretStore { name }, &headers).await
                },
            ),
        )
        .fallback(|| async {
            Refusal::NotFound(
                "no such endpoint: POST /v1/namespaces/{namespace}/externalsecrets/{name}/refresh, \
                 /v1/namespaces/{namespace}/secretstores/{name}/refresh or \
                 /v1/clustersecretstores/{name}/refresh"
                    .into(),
            )
        })
        .with_state(endpoint)
}

/// The endpoint served on `listener` by every replica of `process` until it shuts down, within
/// the process's HTTP limits (a 1 KiB body); its requests are counted on the process's metrics
/// endpoint as `hush_refresh_requests_total{resource,code}`.
pub fn serve(
    process: &mut Process,
    listener: tokio::net::TcpListener,
    settings: Settings,
) -> BoxFuture<'static, TaskResult> {
    let requests = Family::<Labels, Counter>::default();
    process.registry().register(
        "hush_refresh_requests",
        "Requests to the refresh endpoint by the resource they named and the answer's status code",
        requests.clone(),
    );
    let limits = hush_operator::server::HttpLimits {
        max_body_bytes: MAX_BODY_BYTES,
        ..process.http_limits().clone()
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the refresh endpoint");
    }
    let router = router(process.client().clone(), settings, requests);
    hush_operator::server::serve(listener, router, limits, process.shutdown())
        .map(|r| r.map_err(|e| e.to_string()))
        .boxed()
}

impl Endpoint {
    async fn handle(&self, target: Target, headers: &HeaderMap) -> Response {
        let response = match self.carry_out(&target, headers).await {
            Ok(done) => done.into_response(),
            Err(refusal) => {
                tracing::debug!(target = %target.describe(), code = refusal.status().as_u16(), reason = refusal.message(), "refresh refused");
                refusal.into_response()
            }
        };
        // Bounded labels: three resources, the few codes above.
        self.requests
            .get_or_create(&vec![
                ("resource".to_owned(), target.resource().to_owned()),
                ("code".to_owned(), response.status().as_u16().to_string()),
            ])
            .inc();
        response
    }

    /// Budget, names, token, permission, then the annotations.
    async fn carry_out(&self, target: &Target, headers: &HeaderMap) -> Result<Requested, Refusal> {
        self.budget.take().map_err(|retry_after| Refusal::TooMany {
            retry_after,
            message: "too many refresh requests (--refresh-rate, --refresh-burst); retry later"
                .into(),
        })?;
        target.validate()?;
        let token = access::bearer(headers)?;
        let caller = access::authenticate(&self.client, token, &self.settings.audiences).await?;
        access::authorize(&self.client, &caller, target).await?;
        self.watched(target)?;
        let requested = match target {
            Target::ExternalSecret { namespace, name } => self.one(namespace, name).await?,
            Target::SecretStore { .. } | Target::ClusterSecretStore { .. } => {
                self.store(target).await?
            }
        };
        log_accepted(&caller, target, &requested);
        Ok(requested)
    }

    /// Objects outside `--namespace` are not this controller's.
    fn watched(&self, target: &Target) -> Result<(), Refusal> {
        match (&self.settings.namespace, target.namespace()) {
            (Some(watched), Some(ns)) if watched != ns => Err(Refusal::NotFound(format!(
                "namespace {ns} is not watched by this controller (--namespace={watched})"
            ))),
            _ => Ok(()),
        }
    }

    /// One ExternalSecret: any reason it is left alone is the answer.
    async fn one(&self, namespace: &str, name: &str) -> Result<Requested, Refusal> {
        let api: Api<ExternalSecret> = Api::namespaced(self.client.clone(), namespace);
        let es = api
            .get_opt(name)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                Refusal::NotFound(format!("ExternalSecret {namespace}/{name} not found"))
            })?;
        let mut done = Requested::default();
        self.request(&es).await?;
        done.refreshed.push(format!("{namespace}/{name}"));
        Ok(done)
    }

    /// Every ExternalSecret reading through the store of `target`.
    async fn store(&self, target: &Target) -> Result<Requested, Refusal> {
        let (kind, api): (&str, Api<ExternalSecret>) = match target {
            Target::SecretStore { namespace, name } => {
                let stores: Api<SecretStore> = Api::namespaced(self.client.clone(), namespace);
                self.exists(stores.get_opt(name).await, target)?;
                (
                    "SecretStore",
                    Api::namespaced(self.client.clone(), namespace),
                )
            }
            Target::ClusterSecretStore { name } => {
                let stores: Api<ClusterSecretStore> = Api::all(self.client.clone());
                self.exists(stores.get_opt(name).await, target)?;
                let api = match &self.settings.namespace {
                    Some(ns) => Api::namespaced(self.client.clone(), ns),
                    None => Api::all(self.client.clone()),
                };
                ("ClusterSecretStore", api)
            }
            Target::ExternalSecret { .. } => return Ok(Requested::default()),
        };
        let users = self.users_of(&api, kind, target.name()).await?;
        let outcomes: Vec<_> = futures::stream::iter(users)
            .map(|es| async move {
                let id = format!("{}/{}", es.namespace().unwrap_or_default(), es.name_any());
                (id, self.request(&es).await)
            })
            .buffer_unordered(PATCHES_AT_ONCE)
            .collect()
            .await;
        let mut done = Requested::default();
        for (id, outcome) in outcomes {
            match outcome {
                Ok(()) => done.refreshed.push(id),
                Err(why) => done.skipped.push((id, why)),
            }
        }
        done.refreshed.sort();
        done.skipped.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(done)
    }

    fn exists<K>(
        &self,
        got: Result<Option<K>, kube::Error>,
        target: &Target,
    ) -> Result<(), Refusal> {
        match got.map_err(unavailable)? {
            Some(_) => Ok(()),
            None => Err(Refusal::NotFound(format!(
                "{} not found",
                target.describe()
            ))),
        }
    }

    /// The ExternalSecrets of `api` that read through store `name` of `kind`, listed page by
    /// page; more than `--refresh-max-objects` is refused.
    async fn users_of(
        &self,
        api: &Api<ExternalSecret>,
        kind: &str,
        name: &str,
    ) -> Result<Vec<ExternalSecret>, Refusal> {
        let max = self.settings.max_objects;
        let mut users = Vec::new();
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await.map_err(unavailable)?;
            users.extend(
                page.items
                    .into_iter()
                    .filter(|es| crate::uses_store(es, kind, name)),
            );
            if users.len() > max {
                return Err(Refusal::TooLarge(format!(
                    "more than {max} ExternalSecrets use {kind} {name} (--refresh-max-objects): \
                     refresh them one by one, or raise the limit"
                )));
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return Ok(users),
            }
        }
    }

    /// Annotates `es` unless it would not read again or was requested a moment ago.
    async fn request(&self, es: &ExternalSecret) -> Result<(), Refusal> {
        let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
        if let Some(reason) = crate::reconcile::refresh_refused(es) {
            return Err(Refusal::Conflict(format!(
                "ExternalSecret {namespace}/{name} is not refreshed on demand: {reason}"
            )));
        }
        let now = k8s_openapi::jiff::Timestamp::now();
        if let Some(wait) = too_soon(es, now, self.settings.min_interval) {
            return Err(Refusal::TooMany {
                retry_after: wait,
                message: format!(
                    "a refresh of ExternalSecret {namespace}/{name} was requested less than {} s \
                     ago (--refresh-min-interval)",
                    self.settings.min_interval.as_secs_f64()
                ),
            });
        }
        let api: Api<ExternalSecret> = Api::namespaced(self.client.clone(), &namespace);
        let patch = json!({"metadata": {"annotations": {REQUESTED_AT: now.to_string()}}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api.patch(&name, &params, &Patch::Merge(patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(Refusal::NotFound(format!(
                "ExternalSecret {namespace}/{name} not found"
            ))),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// How much of `min_interval` is left since the last request recorded on `es`.
fn too_soon(
    es: &ExternalSecret,
    now: k8s_openapi::jiff::Timestamp,
    min_interval: Duration,
) -> Option<Duration> {
    let last = es
        .annotations()
        .get(REQUESTED_AT)?
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()?;
    // A time in the future (a clock ahead, a hand-set value) holds nothing back.
    let age = Duration::try_from(now.duration_since(last)).ok()?;
    min_interval.checked_sub(age).filter(|left| !left.is_zero())
}

fn unavailable(e: kube::Error) -> Refusal {
    tracing::warn!(error = %e, "refresh endpoint: Kubernetes API call failed");
    Refusal::Unavailable("the Kubernetes API call failed; retry later")
}

fn log_accepted(caller: &Caller, target: &Target, requested: &Requested) {
    tracing::info!(
        user = %caller.username,
        target = %target.describe(),
        refreshed = requested.refreshed.len(),
        skipped = requested.skipped.len(),
        "refresh requested"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_review() {
        let es = |namespace: &str, name: &str| Target::ExternalSecret {
            namespace: namespace.into(),
            name: name.into(),
        };
        assert!(es("team-a", "db.creds-1").validate().is_ok());
        for (ns, name) in [
            ("Team", "db"),
            ("team", "DB"),
            ("team", ""),
            ("-team", "db"),
            ("team", "a..b"),
            ("team", "a/b"),
            (&"n".repeat(64)[..], "db"),
        ] {
            assert!(
                matches!(es(ns, name).validate(), Err(Refusal::BadRequest(_))),
                "{ns}/{name}"
            );
        }
        let long = "a".repeat(254);
        assert!(
            Target::ClusterSecretStore { name: long }
                .validate()
                .is_err()
        );
    }

    #[test]
    fn a_recent_request_holds_the_next_back() {
        let es: ExternalSecret = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "n",
                         "annotations": {REQUESTED_AT: "2026-12-07T10:00:00Z"}},
            "spec": {}
        }))
        .unwrap();
        let at = |s: &str| s.parse::<k8s_openapi::jiff::Timestamp>().unwrap();
        let five = Duration::from_secs(5);
        assert_eq!(
            too_soon(&es, at("2026-12-07T10:00:02Z"), five),
            Some(Duration::from_secs(3))
        );
        assert_eq!(too_soon(&es, at("2026-12-07T10:00:05Z"), five), None);
        assert_eq!(too_soon(&es, at("2026-12-07T09:00:00Z"), five), None);
        let mut garbled = es.clone();
        garbled
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(REQUESTED_AT.into(), "yesterday".into());
        assert_eq!(too_soon(&garbled, at("2026-12-07T10:00:02Z"), five), None);
    }

    #[test]
    fn refusals_answer_with_their_code_and_headers() {
        let r = Refusal::Unauthorized("x").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let r = Refusal::TooMany {
            retry_after: Duration::from_millis(1500),
            message: "m".into(),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
