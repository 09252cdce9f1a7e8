//! ESO's `kubernetes` provider: the Secrets of one namespace (`remoteNamespace`) of a
//! Kubernetes API server (`server.url`, the controller's own cluster by default), read with
//! the store's own credentials (`auth.token`, `auth.serviceAccount`, `auth.cert`), never the
//! controller's (`ESO:providers/v1/kubernetes`, `docs/compatibility.md`).
//!
//! - `data[].remoteRef`: `property` empty → the whole Secret as a JSON object of strings
//!   (ESO's `JSONMarshal`: sorted, not HTML-escaped); otherwise a key of the Secret, or
//!   `<key>.<gjson path>` into a key holding JSON. `metadataPolicy: Fetch` reads labels and
//!   annotations (`labels`, `labels.<name>`, …).
//! - `dataFrom.extract`: every key of the Secret; with `property`, the key's value parsed as a
//!   JSON object whose members are written as JSON (strings quoted, as ESO).
//! - `dataFrom.find`: `tags` is a label selector (takes precedence, as ESO), `name.regexp` a
//!   filter over names; each match as the JSON object of its data. `find.path` is refused
//!   (ESO ignores it).
//! - `server.url` naming `kubernetes.default` (or left out) is the API server the controller
//!   itself talks to: in a cluster the same server, outside one (tests, a laptop) the
//!   controller's kubeconfig server.
//! - Store validation: SelfSubjectRulesReview, then SelfSubjectAccessReview (`get secrets`).
//! - PushSecret writes Secrets of `remoteNamespace` with the same credentials ([`push`]).
//!
//! Budgets (the server is a tenant's choice; [`Limits`], the controller's
//! `--kubernetes-provider-*` flags): [`TIMEOUT`] per request, [`MAX_RESPONSE_BYTES`] per
//! response, LISTs in pages of [`LIST_PAGE`] up to [`MAX_FIND`] Secrets and [`MAX_FIND_BYTES`];
//! redirects are not followed (they would carry the credentials elsewhere).

mod push;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::calls::Calls;
use crate::json::{gjson_string, go_marshal_any, zeroize_strings as zeroize_value};
use crate::{
    Built, CaProvider, CaProviderPaths, Capabilities, CredentialSource, DocumentRef, FindQuery,
    ProviderError, ProviderFactory, PushRef, RemoteRef, SecretBytes, SecretKeySelector,
    SecretProvider, ServiceAccountSelector, StoreScope, decode, digest, key_ref, ref_namespace,
    refuse_unknown_fields,
};

/// How long one request to the API server may take; `--kubernetes-provider-timeout`.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response read (a Secret holds at most 1 MiB; a LIST page [`LIST_PAGE`] of them).
/// `--kubernetes-provider-max-response-bytes`.
pub const MAX_RESPONSE_BYTES: usize = 24 * 1024 * 1024;
/// Secrets asked for per LIST page (`limit`).
pub const LIST_PAGE: usize = 16;
/// The most Secrets a `find` returns before it is refused.
/// `--kubernetes-provider-max-find-secrets`.
pub const MAX_FIND: usize = 10_000;
/// The most bytes of Secret data a `find` returns before it is refused.
/// `--kubernetes-provider-max-find-bytes`.
pub const MAX_FIND_BYTES: usize = 64 * 1024 * 1024;

/// The operator's budgets for `kubernetes` stores (the controller's flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time one request may take (`--kubernetes-provider-timeout`).
    pub timeout: Duration,
    /// The largest answer read (`--kubernetes-provider-max-response-bytes`).
    pub max_response_bytes: usize,
    /// The most Secrets a `find` returns (`--kubernetes-provider-max-find-secrets`).
    pub max_find: usize,
    /// The most bytes a `find` reads (`--kubernetes-provider-max-find-bytes`).
    pub max_find_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: TIMEOUT,
            max_response_bytes: MAX_RESPONSE_BYTES,
            max_find: MAX_FIND,
            max_find_bytes: MAX_FIND_BYTES,
        }
    }
}
/// Lifetime asked for a `serviceAccount` token (ESO's).
const TOKEN_SECONDS: i64 = 3600;
/// ESO's provider label and call names in `externalsecret_provider_api_calls_count`.
const METRIC_PROVIDER: &str = "Kubernetes";
/// The in-cluster name of the API server (ESO's default `server.url`).
const IN_CLUSTER_HOSTS: &[&str] = &[
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubernetesSpec {
    #[serde(default)]
    remote_namespace: String,
    #[serde(default)]
    server: Server,
    #[serde(default)]
    auth: Option<AuthSpec>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Server {
    #[serde(default)]
    url: String,
    #[serde(default)]
    ca_bundle: Option<String>,
    #[serde(default)]
    ca_provider: Option<CaProvider>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthSpec {
    #[serde(default)]
    token: Option<TokenAuth>,
    #[serde(default)]
    service_account: Option<ServiceAccountSelector>,
    #[serde(default)]
    cert: Option<CertAuth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAuth {
    bearer_token: SecretKeySelector,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertAuth {
    client_cert: SecretKeySelector,
    client_key: SecretKeySelector,
}

/// Refuses, by name, every field hush does not implement (`authRef`, a kubeconfig in a
/// Secret, among them).
fn check_fields(spec: &Value) -> Result<(), ProviderError> {
    const P: &str = "spec.provider.kubernetes";
    refuse_unknown_fields(P, spec, &["remoteNamespace", "server", "auth"])?;
    refuse_unknown_fields(
        &format!("{P}.server"),
        &spec["server"],
        &["url", "caBundle", "caProvider"],
    )?;
    let auth = &spec["auth"];
    refuse_unknown_fields(
        &format!("{P}.auth"),
        auth,
        &["token", "serviceAccount", "cert"],
    )?;
    refuse_unknown_fields(&format!("{P}.auth.token"), &auth["token"], &["bearerToken"])?;
    refuse_unknown_fields(
        &format!("{P}.auth.serviceAccount"),
        &auth["serviceAccount"],
        &["name", "namespace", "audiences"],
    )?;
    refuse_unknown_fields(
        &format!("{P}.auth.cert"),
        &auth["cert"],
        &["clientCert", "clientKey"],
    )?;
    let set = ["token", "serviceAccount", "cert"]
        .iter()
        .filter(|k| !auth[**k].is_null())
        .count();
    if auth.is_object() && set != 1 {
        return Err(ProviderError::Invalid(format!(
            "{P}.auth must set exactly one of token, serviceAccount, cert (found {set})"
        )));
    }
    Ok(())
}

/// A Kubernetes object name (DNS-1123 subdomain): it goes into a URL path, so anything else
/// is refused before a request is made.
fn object_name(what: &str, name: &str) -> Result<(), ProviderError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "{what} {name:?} is not a Kubernetes object name (lower-case letters, digits, '-' \
             and '.')"
        )))
    }
}

/// The API server's base URL: `server.url` with `https://` when it names no scheme;
/// `kubernetes.default` (or nothing) is the controller's own API server when it knows it.
fn base_url(url: &str, local: Option<String>) -> Result<String, ProviderError> {
    let url = url.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .unwrap_or(url)
        .split(':')
        .next()
        .unwrap_or_default();
    if url.is_empty() || (IN_CLUSTER_HOSTS.contains(&host) && !url.starts_with("http://")) {
        if let Some(local) = local {
            return Ok(local.trim_end_matches('/').to_owned());
        }
        let host = if url.is_empty() {
            IN_CLUSTER_HOSTS[0]
        } else {
            url
        };
        return Ok(format!("https://{}", host.trim_start_matches("https://")));
    }
    let full = if url.contains("://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    };
    let parsed = reqwest::Url::parse(&full).map_err(|_| {
        ProviderError::Invalid(format!(
            "spec.provider.kubernetes.server.url {url:?} is not a URL"
        ))
    })?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(ProviderError::Invalid(format!(
            "spec.provider.kubernetes.server.url {url:?} must be an http(s) URL with a host"
        )));
    }
    Ok(full)
}

/// Builds `kubernetes` providers.
#[derive(Debug)]
pub struct Factory {
    /// The operator's budgets.
    pub limits: Limits,
    /// Where its providers count their API calls.
    pub calls: Calls,
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        check_fields(spec)?;
        let s: KubernetesSpec = decode("kubernetes", spec)?;
        let namespace = if s.remote_namespace.is_empty() {
            "default".to_owned()
        } else {
            s.remote_namespace.clone()
        };
        object_name("spec.provider.kubernetes.remoteNamespace", &namespace)?;
        let base = base_url(&s.server.url, creds.local_api_server().await)?;
        let mut identity: Vec<Vec<u8>> = vec![
            b"kubernetes".to_vec(),
            base.clone().into_bytes(),
            namespace.clone().into_bytes(),
        ];
        let mut builder = reqwest::Client::builder()
            .timeout(self.limits.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem(&s.server, scope, creds).await? {
            identity.push(pem.clone());
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                ProviderError::Invalid(
                    "spec.provider.kubernetes.server CA is not a PEM certificate bundle".into(),
                )
            })?;
            if certs.is_empty() {
                return Err(ProviderError::Invalid(
                    "spec.provider.kubernetes.server CA holds no certificate".into(),
                ));
            }
            // As client-go's CAData: only these CAs, not the system's as well.
            builder = builder.tls_certs_only(certs);
        }
        let auth = s.auth.unwrap_or_default();
        let mut token = None;
        if let Some(t) = &auth.token {
            let sel = &t.bearer_token;
            required(sel, "auth.token.bearerToken")?;
            let v = creds.secret_key(&key_ref(sel, None, scope)?).await?;
            identity.push(b"token".to_vec());
            identity.push(digest(&[v.expose()]).into_bytes());
            token = Some(bearer(&v, "auth.token.bearerToken")?);
        } else if let Some(sa) = &auth.service_account {
            // A SecretStore's service account is always of its own namespace (ref_namespace
            // refuses another); the token is the tenant's, never the controller's.
            let ns = ref_namespace(sa.namespace.as_deref(), scope)?;
            let v = creds
                .service_account_token(ns.as_deref(), &sa.name, &sa.audiences, TOKEN_SECONDS)
                .await?;
            identity.push(format!("sa:{ns:?}:{}:{:?}", sa.name, sa.audiences).into_bytes());
            token = Some(bearer(&v, "auth.serviceAccount token")?);
        } else if let Some(c) = &auth.cert {
            required(&c.client_cert, "auth.cert.clientCert")?;
            required(&c.client_key, "auth.cert.clientKey")?;
            let cert = creds
                .secret_key(&key_ref(&c.client_cert, None, scope)?)
                .await?;
            let key = creds
                .secret_key(&key_ref(&c.client_key, None, scope)?)
                .await?;
            let mut pem = Zeroizing::new(cert.expose().to_vec());
            pem.push(b'\n');
            pem.extend_from_slice(key.expose());
            identity.push(digest(&[b"cert", &pem]).into_bytes());
            let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                ProviderError::Invalid(
                    "spec.provider.kubernetes.auth.cert: the client certificate or key is not \
                     valid PEM"
                        .into(),
                )
            })?;
            builder = builder.identity(id);
        }
        let http = builder
            .build()
            .map_err(|e| ProviderError::Invalid(format!("HTTP client: {e}")))?;
        let parts: Vec<&[u8]> = identity.iter().map(Vec::as_slice).collect();
        Ok(Built {
            provider: Arc::new(KubernetesProvider {
                limits: self.limits,
                http,
                base,
                namespace,
                token,
                calls: self.calls.clone(),
            }),
            identity: digest(&parts),
            referent: scope.kind == "ClusterSecretStore" && crate::auth_is_referent(spec),
        })
    }
}

/// ESO's ValidateStore: a secret selector of `auth` names both the Secret and the key.
fn required(sel: &SecretKeySelector, path: &str) -> Result<(), ProviderError> {
    if sel.name.is_empty() || sel.key.as_deref().is_none_or(str::is_empty) {
        return Err(ProviderError::Invalid(format!(
            "spec.provider.kubernetes.{path} needs name and key"
        )));
    }
    Ok(())
}

/// A bearer token as an `Authorization` header value (marked sensitive).
fn bearer(v: &SecretBytes, what: &str) -> Result<reqwest::header::HeaderValue, ProviderError> {
    let text = std::str::from_utf8(v.expose())
        .map_err(|_| ProviderError::Invalid(format!("{what} is not UTF-8")))?;
    let value = Zeroizing::new(format!("Bearer {}", text.trim()));
    let mut h = reqwest::header::HeaderValue::from_str(&value)
        .map_err(|_| ProviderError::Invalid(format!("{what} is not a valid bearer token")))?;
    h.set_sensitive(true);
    Ok(h)
}

async fn ca_pem(
    s: &Server,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<Option<Vec<u8>>, ProviderError> {
    if let Some(ca) = s.ca_bundle.as_deref().filter(|c| !c.is_empty()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca.trim())
            .map_err(|_| {
                ProviderError::Invalid(
                    "spec.provider.kubernetes.server.caBundle is not base64".into(),
                )
            })?;
        return Ok(Some(pem));
    }
    let Some(cp) = &s.ca_provider else {
        return Ok(None);
    };
    if scope.kind == "SecretStore" && cp.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
        // ESO's ValidateStore.
        return Err(ProviderError::Invalid(
            "spec.provider.kubernetes.server.caProvider.namespace must be empty in a SecretStore"
                .into(),
        ));
    }
    let paths = CaProviderPaths {
        namespace: "spec.provider.kubernetes.server.caProvider.namespace",
        kind: "spec.provider.kubernetes.server.caProvider.type",
    };
    let pem = cp.pem(scope, creds, &paths).await?;
    Ok(Some(pem))
}

/// A Secret as the API server returns it (data still base64, decoded on demand).
#[derive(Deserialize)]
struct SecretObject {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: BTreeMap<String, Bytes>,
}

#[derive(Default, Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct SecretList {
    #[serde(default)]
    items: Vec<SecretObject>,
    #[serde(default)]
    metadata: ListMeta,
}

#[derive(Default, Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

/// A base64 member decoded straight into zeroizing bytes.
struct Bytes(Zeroizing<Vec<u8>>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Bytes, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(|v| Bytes(Zeroizing::new(v)))
                    .map_err(|_| E::custom("secret data is not base64"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A built `kubernetes` store: one HTTP client with the store's credentials.
pub struct KubernetesProvider {
    limits: Limits,
    http: reqwest::Client,
    base: String,
    namespace: String,
    token: Option<reqwest::header::HeaderValue>,
    calls: Calls,
}

impl std::fmt::Debug for KubernetesProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvider")
            .field("base", &self.base)
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Go's `string([]byte)` then JSON: invalid UTF-8 becomes U+FFFD.
fn text_value(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// ESO's `JSONMarshal` (no HTML escaping) of a Secret's data as strings.
fn data_json(data: &BTreeMap<String, Bytes>) -> Zeroizing<String> {
    let map: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.clone(), text_value(&v.0)))
        .collect();
    let v = Value::Object(map);
    let out = Zeroizing::new(go_marshal_any(&v, false));
    zeroize_value(v);
    out
}

/// ESO's JSON of a string map that may be nil (`null`).
fn string_map_json(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "null".to_owned(),
        Some(m) => go_marshal_any(
            &Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
            false,
        ),
    }
}

/// `metadataPolicy: Fetch` with a property: `labels` / `annotations`, then a name, then (ESO's
/// quirk, kept) the remaining segments joined without dots as a gjson path into the value.
fn metadata_property(meta: &ObjectMeta, property: &str) -> Option<String> {
    let path: Vec<&str> = property.split('.').collect();
    let m = match path[0] {
        "labels" => meta.labels.as_ref(),
        "annotations" => meta.annotations.as_ref(),
        _ => return None,
    };
    if path.len() == 1 {
        return Some(string_map_json(m));
    }
    let v = m?.get(path[1])?;
    if path.len() == 2 {
        return Some(v.clone());
    }
    gjson_string(v, &path[2..].concat())
}

/// A property of the Secret's data: an exact key first (`tls.crt`), else `<key>.<gjson path>`
/// split at the first dot.
fn data_property(data: &BTreeMap<String, Bytes>, property: &str) -> Option<Zeroizing<Vec<u8>>> {
    if let Some(v) = data.get(property) {
        return Some(Zeroizing::new(v.0.to_vec()));
    }
    let (key, path) = property.split_once('.')?;
    if key.is_empty() || path.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(&data.get(key)?.0).ok()?;
    gjson_string(text, path).map(|s| Zeroizing::new(s.into_bytes()))
}

/// `extract` with a property: the key's value is a JSON object; each member is written as
/// ESO's `JSONMarshal` of the decoded value (strings keep their quotes, numbers are float64).
fn property_map(
    data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    key: &str,
    property: &str,
) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
    let raw = data.get(property).ok_or_else(|| {
        ProviderError::Invalid(format!("property {property} does not exist in key {key}"))
    })?;
    // No parser message: it could quote the value.
    let invalid =
        || ProviderError::Invalid("failed to unmarshal secret: invalid JSON format".into());
    let parsed: Value = serde_json::from_slice(raw).map_err(|_| invalid())?;
    let members = match parsed {
        Value::Object(o) => o,
        Value::Null => serde_json::Map::new(),
        other => {
            zeroize_value(other);
            return Err(invalid());
        }
    };
    let mut out = BTreeMap::new();
    for (k, v) in members {
        out.insert(k, SecretBytes::new(go_marshal_any(&v, false).into_bytes()));
        zeroize_value(v);
    }
    Ok(out)
}

/// A label selector from `find.tags` as `labels.ValidatedSelectorFromSet` writes it (sorted
/// `k=v` pairs), refusing keys and values that are not label syntax.
fn label_selector(tags: &BTreeMap<String, String>) -> Result<String, ProviderError> {
    let valid_value = |v: &str| {
        v.len() <= 63
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))))
    };
    let valid_key = |k: &str| {
        let (prefix, name) = k.rsplit_once('/').unwrap_or(("", k));
        !name.is_empty()
            && valid_value(name)
            && (prefix.is_empty() && !k.contains('/') || object_name("", prefix).is_ok())
    };
    let mut parts = Vec::new();
    for (k, v) in tags {
        if !valid_key(k) || !valid_value(v) {
            return Err(ProviderError::Invalid(format!(
                "unable to validate selector tags: {k:?}={v:?} is not a valid label"
            )));
        }
        parts.push(format!("{k}={v}"));
    }
    Ok(parts.join(","))
}

fn status_error(what: &str, status: reqwest::StatusCode) -> ProviderError {
    let msg = format!("kubernetes {what}: HTTP {status}");
    match status.as_u16() {
        404 => ProviderError::NotFound(msg),
        401 | 403 => ProviderError::Denied(msg),
        429 => ProviderError::Throttled(msg),
        400..=499 => ProviderError::Invalid(msg),
        _ => ProviderError::Transient(msg),
    }
}

impl KubernetesProvider {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_url(method, format!("{}{path}", self.base))
    }

    fn request_url(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(t) = &self.token {
            req = req.header(reqwest::header::AUTHORIZATION, t.clone());
        }
        req
    }

    /// Sends `req`; the body of a 2xx answer within [`Limits::max_response_bytes`].
    async fn send(
        &self,
        what: &str,
        call: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let result = self.send_inner(what, req).await;
        self.calls.record(METRIC_PROVIDER, call, result.is_ok());
        result
    }

    async fn send_inner(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let transient = |e: reqwest::Error| {
            ProviderError::Transient(format!("kubernetes {what}: {}", e.without_url()))
        };
        let mut resp = req.send().await.map_err(transient)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(what, status));
        }
        let max = self.limits.max_response_bytes;
        let too_large = || {
            ProviderError::Invalid(format!(
                "kubernetes {what}: the answer is larger than {max} bytes \
                 (--kubernetes-provider-max-response-bytes)"
            ))
        };
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = resp.chunk().await.map_err(transient)? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn secret(&self, name: &str) -> Result<SecretObject, ProviderError> {
        object_name("remoteRef.key", name)?;
        let what = format!("get secret {}/{name}", self.namespace);
        let path = format!("/api/v1/namespaces/{}/secrets/{name}", self.namespace);
        let body = self
            .send(
                &what,
                "GetSecret",
                self.request(reqwest::Method::GET, &path),
            )
            .await?;
        serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Invalid(format!("kubernetes {what}: not a Secret")))
    }

    /// Every Secret of the namespace matching `selector`, page by page, within the budgets.
    async fn list(&self, selector: &str) -> Result<Vec<SecretObject>, ProviderError> {
        let what = format!("list secrets of {}", self.namespace);
        let path = format!("/api/v1/namespaces/{}/secrets", self.namespace);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut next: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
                .map_err(|_| ProviderError::Invalid(format!("kubernetes {what}: bad URL")))?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("limit", &LIST_PAGE.to_string());
                if !selector.is_empty() {
                    q.append_pair("labelSelector", selector);
                }
                if let Some(c) = &next {
                    q.append_pair("continue", c);
                }
            }
            let req = self.request_url(reqwest::Method::GET, url);
            let body = self.send(&what, "ListSecrets", req).await?;
            bytes += body.len();
            let page: SecretList = serde_json::from_slice(&body).map_err(|_| {
                ProviderError::Invalid(format!("kubernetes {what}: not a SecretList"))
            })?;
            out.extend(page.items);
            let Limits {
                max_find,
                max_find_bytes,
                ..
            } = self.limits;
            if out.len() > max_find || bytes > max_find_bytes {
                return Err(ProviderError::Invalid(format!(
                    "kubernetes {what}: more than {max_find} secrets or {max_find_bytes} bytes \
                     (--kubernetes-provider-max-find-*); \
                     narrow find.name or find.tags"
                )));
            }
            next = page.metadata.next.filter(|c| !c.is_empty());
            if next.is_none() {
                return Ok(out);
            }
        }
    }

    /// POSTs an authorization review and returns its `status`.
    async fn review(&self, kind: &str, spec: Value) -> Result<Value, ProviderError> {
        let what = format!("create {kind}");
        let path = format!("/apis/authorization.k8s.io/v1/{}s", kind.to_lowercase());
        let body = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec,
        });
        let req = self
            .request(reqwest::Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let call = if kind == "SelfSubjectRulesReview" {
            "CreateSelfSubjectRulesReview"
        } else {
            "CreateSelfSubjectAccessReview"
        };
        let body = self.send(&what, call, req).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Invalid(format!("kubernetes {what}: not JSON")))?;
        Ok(v["status"].clone())
    }
}

/// Whether a SelfSubjectRulesReview status grants `get` on Secrets (ESO's test).
fn rules_allow_get_secrets(status: &Value) -> bool {
    let has = |rule: &Value, field: &str, wanted: &[&str]| {
        rule[field].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|s| wanted.contains(&s)))
        })
    };
    status["resourceRules"].as_array().is_some_and(|rules| {
        rules.iter().any(|r| {
            has(r, "resources", &["secrets", "*"])
                && has(r, "verbs", &["get", "*"])
                && (r["apiGroups"].as_array().is_none_or(Vec::is_empty)
                    || has(r, "apiGroups", &["", "*"]))
        })
    })
}

#[async_trait]
impl SecretProvider for KubernetesProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let secret = self.secret(&r.key).await?;
        if r.property.is_empty() {
            if r.metadata {
                let text = format!(
                    "{{\"annotations\":{},\"labels\":{}}}",
                    string_map_json(secret.metadata.annotations.as_ref()),
                    string_map_json(secret.metadata.labels.as_ref())
                );
                return Ok(SecretBytes::new(text.into_bytes()));
            }
            return Ok(SecretBytes::new(
                data_json(&secret.data).as_bytes().to_vec(),
            ));
        }
        if r.metadata {
            return metadata_property(&secret.metadata, &r.property)
                .map(|s| SecretBytes::new(s.into_bytes()))
                .ok_or_else(|| {
                    ProviderError::Invalid(format!(
                        "property {} does not exist in metadata of secret {:?}",
                        r.property, r.key
                    ))
                });
        }
        data_property(&secret.data, &r.property)
            .map(|v| SecretBytes::new(v.to_vec()))
            .ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "property {} does not exist in data of secret {:?}",
                    r.property, r.key
                ))
            })
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let secret = self.secret(&r.key).await?;
        let map: BTreeMap<String, Zeroizing<Vec<u8>>> = if r.metadata {
            [
                ("labels", secret.metadata.labels.as_ref()),
                ("annotations", secret.metadata.annotations.as_ref()),
            ]
            .into_iter()
            .map(|(k, m)| {
                (
                    k.to_owned(),
                    Zeroizing::new(string_map_json(m).into_bytes()),
                )
            })
            .collect()
        } else {
            secret.data.into_iter().map(|(k, v)| (k, v.0)).collect()
        };
        if !r.property.is_empty() {
            return property_map(map, &r.key, &r.property);
        }
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(v.to_vec())))
            .collect())
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        if !q.path.is_empty() {
            return Err(ProviderError::Invalid(
                "find.path is not supported by the kubernetes provider (ESO ignores it); use \
                 find.name or find.tags"
                    .into(),
            ));
        }
        // ESO: tags win over name.
        let (selector, name) = if q.tags.is_empty() {
            let re = regex::Regex::new(&q.name_regexp)
                .map_err(|e| ProviderError::Invalid(format!("find.name.regexp: {e}")))?;
            (String::new(), Some(re))
        } else {
            (label_selector(&q.tags)?, None)
        };
        let mut out = BTreeMap::new();
        for s in self.list(&selector).await? {
            if name
                .as_ref()
                .is_some_and(|re| !re.is_match(&s.metadata.name))
            {
                continue;
            }
            let json = data_json(&s.data);
            out.insert(s.metadata.name, SecretBytes::new(json.as_bytes().to_vec()));
        }
        Ok(out)
    }

    /// argocd-vault-plugin's `kubernetessecret`: Secret `path` of the store's namespace, its
    /// data as text (AVP's `string(bytes)`). Secrets have no versions: one asked for is refused.
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        if let Some(v) = &r.version {
            return Err(ProviderError::Invalid(format!(
                "secret {}/{}: version {v:?}: Kubernetes Secrets have no versions",
                self.namespace, r.path
            )));
        }
        match self.secret(&r.path).await {
            Ok(s) => Ok(Some(
                s.data
                    .iter()
                    .map(|(k, v)| (k.clone(), text_value(&v.0)))
                    .collect(),
            )),
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        let ns = &self.namespace;
        let rules = self
            .review(
                "SelfSubjectRulesReview",
                serde_json::json!({"namespace": ns}),
            )
            .await?;
        if rules_allow_get_secrets(&rules) {
            return Ok(());
        }
        let access = self
            .review(
                "SelfSubjectAccessReview",
                serde_json::json!({"resourceAttributes":
                    {"resource": "secrets", "namespace": ns, "verb": "get"}}),
            )
            .await?;
        if access["allowed"].as_bool() == Some(true) {
            return Ok(());
        }
        Err(ProviderError::Denied(format!(
            "client is not allowed to get secrets in namespace {ns:?}"
        )))
    }

    // The write half lives in `push.rs` beside this file; a trait impl cannot be split across
    // files, so each pushing provider forwards to it the same way (deliberately alike).
    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }

    async fn push(&self, value: &SecretBytes, r: &PushRef) -> Result<(), ProviderError> {
        self.push_value(value, r).await
    }

    async fn exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        self.push_exists(r).await
    }

    async fn delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        self.push_delete(r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Bytes> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Bytes(Zeroizing::new(v.to_vec()))))
            .collect()
    }

    #[test]
    fn values_are_written_as_eso_writes_them() {
        let d = data(&[
            ("b", b"<x&y>"),
            ("a", b"1"),
            ("cfg", br#"{"db":{"port":5432,"host":"h"},"f":1.50}"#),
        ]);
        assert_eq!(
            &*data_json(&d),
            r#"{"a":"1","b":"<x&y>","cfg":"{\"db\":{\"port\":5432,\"host\":\"h\"},\"f\":1.50}"}"#
        );
        assert_eq!(&*data_property(&d, "a").unwrap(), b"1");
        assert_eq!(&*data_property(&d, "cfg.db.host").unwrap(), b"h");
        assert_eq!(
            &*data_property(&d, "cfg.db").unwrap(),
            br#"{"port":5432,"host":"h"}"#
        );
        assert!(data_property(&d, "cfg.nope").is_none());
        assert!(data_property(&d, "c").is_none());

        let map: BTreeMap<String, Zeroizing<Vec<u8>>> =
            d.into_iter().map(|(k, v)| (k, v.0)).collect();
        let m = property_map(map.clone(), "s", "cfg").unwrap();
        assert_eq!(m["db"].expose(), br#"{"host":"h","port":5432}"#);
        assert_eq!(m["f"].expose(), b"1.5");
        assert!(matches!(
            property_map(map.clone(), "s", "a"),
            Err(ProviderError::Invalid(m)) if m.contains("invalid JSON")
        ));
        assert!(property_map(map, "s", "zz").is_err());
    }

    #[test]
    fn metadata_properties() {
        let meta = ObjectMeta {
            name: "s".into(),
            labels: Some([("dev".to_owned(), "seb".to_owned())].into()),
            annotations: Some([("j".to_owned(), r#"{"a":{"b":"c"}}"#.to_owned())].into()),
        };
        assert_eq!(
            metadata_property(&meta, "labels").unwrap(),
            r#"{"dev":"seb"}"#
        );
        assert_eq!(metadata_property(&meta, "labels.dev").unwrap(), "seb");
        assert_eq!(
            metadata_property(&meta, "annotations.j.a").unwrap(),
            r#"{"b":"c"}"#
        );
        // ESO joins the rest without dots.
        assert_eq!(metadata_property(&meta, "annotations.j.a.b"), None);
        assert_eq!(metadata_property(&meta, "other"), None);
        let bare = ObjectMeta::default();
        assert_eq!(metadata_property(&bare, "labels").unwrap(), "null");
    }

    #[test]
    fn names_urls_and_selectors_are_checked() {
        assert!(object_name("k", "db-creds.v1").is_ok());
        for bad in ["", "../x", "A", "a/b", "-a", "a?b", "a%2f"] {
            assert!(object_name("k", bad).is_err(), "{bad}");
        }
        let local = Some("https://127.0.0.1:6443/".to_owned());
        assert_eq!(
            base_url("", local.clone()).unwrap(),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            base_url("kubernetes.default", local.clone()).unwrap(),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            base_url("https://kubernetes.default.svc:443", local.clone()).unwrap(),
            "https://127.0.0.1:6443"
        );
        assert_eq!(base_url("", None).unwrap(), "https://kubernetes.default");
        assert_eq!(
            base_url("my.api:6443", local.clone()).unwrap(),
            "https://my.api:6443"
        );
        assert!(base_url("ftp://x", local).is_err());
        let tags: BTreeMap<String, String> = [
            ("app".to_owned(), "nginx".to_owned()),
            ("a.io/tier".to_owned(), "web".to_owned()),
        ]
        .into();
        assert_eq!(label_selector(&tags).unwrap(), "a.io/tier=web,app=nginx");
        let bad: BTreeMap<String, String> = [("app".to_owned(), "a,b=c".to_owned())].into();
        assert!(label_selector(&bad).is_err());
        assert!(rules_allow_get_secrets(
            &serde_json::json!({"resourceRules": [
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]}]})
        ));
        assert!(!rules_allow_get_secrets(
            &serde_json::json!({"resourceRules": [
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
             "resources": ["selfsubjectrulesreviews"]}]})
        ));
    }

    #[test]
    fn unimplemented_and_ambiguous_fields_are_refused_by_name() {
        let e =
            check_fields(&serde_json::json!({"authRef": {"name": "kc", "key": "k"}})).unwrap_err();
        assert!(
            e.to_string().contains("spec.provider.kubernetes.authRef"),
            "{e}"
        );
        let e = check_fields(&serde_json::json!({"server": {"url": "x", "insecure": true}}))
            .unwrap_err();
        assert!(e.to_string().contains("server.insecure"), "{e}");
        let e = check_fields(&serde_json::json!({"auth": {
            "token": {"bearerToken": {"name": "t", "key": "k"}},
            "serviceAccount": {"name": "s"}}}))
        .unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        assert!(
            check_fields(&serde_json::json!({"remoteNamespace": "x",
            "auth": {"serviceAccount": {"name": "s"}}}))
            .is_ok()
        );
    }
}
