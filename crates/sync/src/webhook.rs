//! ESO's `webhook` provider: one HTTP request per read, built from Go templates over
//! `remoteRef` and the Secrets the store names (`ESO:pkg/provider/webhook`,
//! `ESO:pkg/common/webhook`, v0.16).
//!
//! - `url` is rendered with `remoteRef` values query-escaped (Go's `url.QueryEscape`); `body`,
//!   `headers` and `result.jsonPath` with them raw. Templates use ESO's functions (sprig, …) and
//!   Go's default missing-key behaviour (`<no value>`), as ESO's webhook does.
//! - `secrets[]` expose every key of a Secret under `name`. The Secret must carry the label
//!   `external-secrets.io/type: webhook` (ESO's rule). A SecretStore reads only its own
//!   namespace; a ClusterSecretStore must name the namespace (ESO: "no namespace on
//!   ClusterScoped webhook secret").
//! - 404 is "not found" (drives `deletionPolicy`); another non-2xx status is an error naming it.
//! - `result.jsonPath` picks the value (JSONPath); ESO's formatting of what it picks is kept
//!   (numbers rounded to integers for `data`, `float64` text for `dataFrom.extract`, objects as
//!   Go's `json.Marshal`, the first element of an array).
//! - PushSecret (ESO's `PushWebhookData`): one request per entry, `POST` unless `method` is
//!   set; templates see `remoteRef.remoteKey`, `remoteRef.secretKey` (when set) and the value
//!   itself as `remoteRef.<remoteKey>` (query-escaped in `url`); with no `body` the value is
//!   the body. The answer is ignored but for its status. As ESO, a webhook store cannot tell
//!   whether a remote secret exists or delete one: `updatePolicy: IfNotExists` and
//!   `deletionPolicy: Delete` are refused naming the field (ESO fails the first and, for the
//!   second, leaves the PushSecret's finalizer stuck). `property` and `metadata`, which ESO
//!   ignores here, are refused.
//!
//! Budgets (hostile tenants write stores; [`Limits`], the controller's `--webhook-*` flags): a
//! request times out after `timeout` (default [`DEFAULT_TIMEOUT`], at most [`MAX_TIMEOUT`]), a
//! response body larger than [`MAX_RESPONSE_BYTES`] is refused, redirects are not followed (a redirect would carry the
//! templated headers, credentials included, to a host the store did not name). Rendered URLs,
//! headers, bodies and responses never appear in errors or logs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use hush_template::{MissingKey, Options, Preset, Template, Value as TplValue};
use jsonpath_rust::JsonPath as _;
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::calls::Calls;
use crate::json::{go_float_text, go_marshal_any};
use crate::{
    Built, CaProviderPaths, Capabilities, CredentialSource, FindQuery, ProviderError,
    ProviderFactory, PushRef, RemoteRef, SecretBytes, SecretProvider, StoreScope, ca_provider_pem,
    decode, digest, ref_namespace, refuse_unknown_fields,
};

/// Request timeout when the store sets none (ESO has none: a hung endpoint holds a worker);
/// `--webhook-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest `timeout` a store may set; `--webhook-max-timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest response body read (ESO reads any size into memory);
/// `--webhook-max-response-bytes`.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The operator's budgets for webhook stores (the controller's flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Timeout of a store without `timeout` (`--webhook-timeout`).
    pub default_timeout: Duration,
    /// The largest `timeout` a store may set (`--webhook-max-timeout`).
    pub max_timeout: Duration,
    /// The largest response body read (`--webhook-max-response-bytes`).
    pub max_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_timeout: DEFAULT_TIMEOUT,
            max_timeout: MAX_TIMEOUT,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}
/// How long store validation waits for a TCP connection to the URL's host (ESO's 15 s).
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(15);
/// The label a Secret needs before a webhook store may read it (ESO's).
const TYPE_LABEL: &str = "external-secrets.io/type";
/// ESO's provider label and call name in `externalsecret_provider_api_calls_count`.
const METRIC_PROVIDER: &str = "Webhook";
const METRIC_CALL: &str = "HTTPRequest";

const FIELDS: &[&str] = &[
    "url",
    "method",
    "headers",
    "body",
    "timeout",
    "result",
    "secrets",
    "caBundle",
    "caProvider",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookSpec {
    #[serde(default)]
    url: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    result: ResultSpec,
    #[serde(default)]
    secrets: Vec<SecretSpec>,
    #[serde(default)]
    ca_bundle: Option<String>,
    #[serde(default)]
    ca_provider: Option<CaProvider>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResultSpec {
    #[serde(default)]
    json_path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretSpec {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret_ref: SecretRef,
}

#[derive(Deserialize, Default)]
struct SecretRef {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// The webhook's `caProvider`: every field may be left out, where [`crate::CaProvider`] (the
/// `vault` and `kubernetes` providers') requires `type` and `name`; kept apart so that a
/// store decodes as it always has.
#[derive(Deserialize)]
struct CaProvider {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// Builds `webhook` providers within the operator's [`Limits`].
#[derive(Debug, Default)]
pub struct Factory {
    /// The budgets.
    pub limits: Limits,
    /// Where its providers count their requests.
    pub calls: Calls,
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        let (provider, identity) = self.build_webhook(spec, scope, creds).await?;
        Ok(Built {
            provider: Arc::new(provider),
            identity,
            referent: false,
        })
    }
}

impl Factory {
    /// ESO's `Webhook` generator: one request for `spec` (the store's fields; templates see the
    /// `secrets` but no `remoteRef`), its JSON answer's members as the data (`dataFrom`'s rules).
    pub(crate) async fn generate(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let (mut provider, _) = self.build_webhook(spec, scope, creds).await?;
        provider.remote_ref = false;
        provider.get_map(&RemoteRef::default()).await
    }

    async fn build_webhook(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<(WebhookProvider, String), ProviderError> {
        check_fields(spec)?;
        let s: WebhookSpec = decode("webhook", spec)?;
        if s.url.is_empty() {
            return Err(ProviderError::Invalid(
                "spec.provider.webhook.url is required".into(),
            ));
        }
        let timeout = match s.timeout.as_deref().filter(|t| !t.is_empty()) {
            None => self.limits.default_timeout,
            Some(t) => parse_timeout(t, &self.limits)?,
        };
        let method = if s.method.is_empty() {
            None
        } else {
            Some(
                reqwest::Method::from_bytes(s.method.as_bytes()).map_err(|_| {
                    ProviderError::Invalid(format!(
                        "spec.provider.webhook.method {:?} is not an HTTP method",
                        s.method
                    ))
                })?,
            )
        };
        let mut headers = Vec::new();
        for (name, text) in &s.headers {
            let header =
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    ProviderError::Invalid(format!(
                        "spec.provider.webhook.headers: {name:?} is not a header name"
                    ))
                })?;
            headers.push((header, parse(&format!("headers.{name}"), text)?));
        }
        let mut identity: Vec<Vec<u8>> = vec![b"webhook".to_vec(), spec.to_string().into_bytes()];
        let secrets = read_secrets(&s.secrets, scope, creds, &mut identity).await?;
        let ca = ca_pem(&s, scope, creds).await?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &ca {
            identity.push(pem.clone());
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
                ProviderError::Invalid("webhook CA is not a PEM certificate bundle".into())
            })?;
            if certs.is_empty() {
                return Err(ProviderError::Invalid(
                    "webhook CA holds no certificate".into(),
                ));
            }
            // ESO trusts only the given CAs (its RootCAs pool), not the system's as well.
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ProviderError::Invalid(format!("HTTP client: {e}")))?;
        let parts: Vec<&[u8]> = identity.iter().map(Vec::as_slice).collect();
        let provider = WebhookProvider {
            http,
            method,
            url_text: s.url.clone(),
            url: parse("url", &s.url)?,
            body: (!s.body.is_empty())
                .then(|| parse("body", &s.body))
                .transpose()?,
            headers,
            json_path: s.result.json_path.clone(),
            json_path_template: parse("result.jsonPath", &s.result.json_path)?,
            secrets,
            max_response_bytes: self.limits.max_response_bytes,
            remote_ref: true,
            calls: self.calls.clone(),
        };
        Ok((provider, digest(&parts)))
    }
}

/// Refuses fields hush does not implement, by name (`auth.ntlm` among them).
fn check_fields(spec: &Value) -> Result<(), ProviderError> {
    refuse_unknown_fields("spec.provider.webhook", spec, FIELDS)?;
    refuse_unknown_fields(
        "spec.provider.webhook.result",
        &spec["result"],
        &["jsonPath"],
    )?;
    if let Some(list) = spec["secrets"].as_array() {
        for (i, s) in list.iter().enumerate() {
            let path = format!("spec.provider.webhook.secrets[{i}]");
            refuse_unknown_fields(&path, s, &["name", "secretRef"])?;
            // ESO exposes the whole Secret: a `key` would be ignored, so it is refused.
            refuse_unknown_fields(
                &format!("{path}.secretRef"),
                &s["secretRef"],
                &["name", "namespace"],
            )?;
        }
    }
    refuse_unknown_fields(
        "spec.provider.webhook.caProvider",
        &spec["caProvider"],
        &["type", "name", "key", "namespace"],
    )
}

fn parse(field: &str, text: &str) -> Result<Template, ProviderError> {
    let options = Options::preset(Preset::ExternalSecrets).missing_key(MissingKey::Default);
    Template::parse(field, text, &options)
        .map_err(|e| ProviderError::Invalid(format!("spec.provider.webhook.{field}: {e}")))
}

/// A Go duration (`1s`, `1m30s`, `500ms`) within `limits.max_timeout`.
fn parse_timeout(text: &str, limits: &Limits) -> Result<Duration, ProviderError> {
    let bad = || {
        ProviderError::Invalid(format!(
            "spec.provider.webhook.timeout {text:?} is not a duration such as 10s or 1m"
        ))
    };
    let d = crate::go_duration(text).ok_or_else(bad)?;
    if d.is_zero() {
        return Ok(limits.default_timeout);
    }
    if d > limits.max_timeout {
        return Err(ProviderError::Invalid(format!(
            "spec.provider.webhook.timeout {text:?} is longer than the controller allows ({} s, \
             --webhook-max-timeout)",
            limits.max_timeout.as_secs()
        )));
    }
    Ok(d)
}

type SecretData = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// Reads `secrets[]`: every key of each Secret, labelled for webhook use, in the namespace the
/// store may read.
async fn read_secrets(
    list: &[SecretSpec],
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    identity: &mut Vec<Vec<u8>>,
) -> Result<BTreeMap<String, SecretData>, ProviderError> {
    let mut out: BTreeMap<String, SecretData> = BTreeMap::new();
    for (i, s) in list.iter().enumerate() {
        let field = format!("spec.provider.webhook.secrets[{i}]");
        if s.name.is_empty() || s.secret_ref.name.is_empty() {
            return Err(ProviderError::Invalid(format!(
                "{field}: name and secretRef.name are required"
            )));
        }
        let ns = s.secret_ref.namespace.as_deref().filter(|n| !n.is_empty());
        if scope.kind == "ClusterSecretStore" && ns.is_none() {
            return Err(ProviderError::Invalid(format!(
                "{field}.secretRef.namespace is required in a ClusterSecretStore (no namespace on \
                 ClusterScoped webhook secret {})",
                s.secret_ref.name
            )));
        }
        let ns = ref_namespace(ns, scope)?.ok_or_else(|| {
            ProviderError::Invalid(format!("{field}.secretRef: no namespace to read it in"))
        })?;
        let (data, labels) = creds.secret_data(&ns, &s.secret_ref.name).await?;
        match labels.get(TYPE_LABEL).map(String::as_str) {
            Some("webhook") => {}
            Some(_) => {
                return Err(ProviderError::Invalid(format!(
                    "secret {ns}/{}: secret type is not 'webhook'",
                    s.secret_ref.name
                )));
            }
            None => {
                return Err(ProviderError::Invalid(format!(
                    "secret {ns}/{} does not contain needed label '{TYPE_LABEL}: webhook'. \
                     Update secret label to use it with webhook",
                    s.secret_ref.name
                )));
            }
        }
        let entry = out.entry(s.name.clone()).or_default();
        for (k, v) in data {
            identity.push(digest(&[k.as_bytes(), v.expose()]).into_bytes());
            entry.insert(k, Zeroizing::new(v.expose().to_vec()));
        }
    }
    Ok(out)
}

async fn ca_pem(
    s: &WebhookSpec,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<Option<Vec<u8>>, ProviderError> {
    if let Some(ca) = s.ca_bundle.as_deref().filter(|c| !c.is_empty()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca.trim())
            .map_err(|_| {
                ProviderError::Invalid("spec.provider.webhook.caBundle is not base64".into())
            })?;
        return Ok(Some(pem));
    }
    let Some(cp) = &s.ca_provider else {
        return Ok(None);
    };
    let paths = CaProviderPaths {
        namespace: "spec.provider.webhook.caProvider.namespace",
        kind: "spec.provider.webhook.caProvider.type",
    };
    let pem = ca_provider_pem(
        &cp.kind,
        &cp.name,
        &cp.key,
        cp.namespace.as_deref(),
        scope,
        creds,
        &paths,
    )
    .await?;
    Ok(Some(pem))
}

/// A built webhook store.
pub struct WebhookProvider {
    http: reqwest::Client,
    /// `method`; unset: GET to read, POST to push (ESO's defaults).
    method: Option<reqwest::Method>,
    url_text: String,
    url: Template,
    body: Option<Template>,
    headers: Vec<(reqwest::header::HeaderName, Template)>,
    json_path: String,
    json_path_template: Template,
    secrets: BTreeMap<String, SecretData>,
    max_response_bytes: usize,
    /// Templates see `remoteRef` (a store; a generator has none, as in ESO).
    remote_ref: bool,
    calls: Calls,
}

impl std::fmt::Debug for WebhookProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookProvider")
            .field("method", &self.method)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl WebhookProvider {
    /// The template data: `remoteRef` (query-escaped for the URL) and each named Secret.
    fn data(&self, r: &RemoteRef, escape: bool) -> TplValue {
        let text = |s: &str| {
            if escape {
                query_escape(s).into_bytes()
            } else {
                s.as_bytes().to_vec()
            }
        };
        let mut top = BTreeMap::new();
        if self.remote_ref {
            top.insert(
                "remoteRef".to_owned(),
                TplValue::StrMap(BTreeMap::from([
                    ("key".to_owned(), text(&r.key)),
                    ("version".to_owned(), text(&r.version)),
                    ("property".to_owned(), text(&r.property)),
                ])),
            );
        }
        for (name, data) in &self.secrets {
            top.insert(
                name.clone(),
                TplValue::StrMap(data.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect()),
            );
        }
        TplValue::Map(top)
    }

    fn render(
        &self,
        t: &Template,
        data: &TplValue,
        field: &str,
    ) -> Result<SecretBytes, ProviderError> {
        t.render_value(data)
            .map_err(|e| ProviderError::Invalid(format!("spec.provider.webhook.{field}: {e}")))
    }

    /// One request for `r`: the response body, within [`MAX_RESPONSE_BYTES`].
    async fn fetch(&self, r: &RemoteRef) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        if r.metadata {
            return Err(ProviderError::Invalid(
                "metadataPolicy Fetch is not supported by the webhook provider".into(),
            ));
        }
        let method = self.method.clone().unwrap_or(reqwest::Method::GET);
        let req = self.request(method, &self.data(r, false), &self.data(r, true), None)?;
        let result = self.send(req, r).await;
        self.calls
            .record(METRIC_PROVIDER, METRIC_CALL, result.is_ok());
        result
    }

    /// The template data of a push: `remoteRef` with `remoteKey`, `secretKey` (when set) and
    /// the value under the remote key's name (ESO's `GetTemplatePushData`).
    fn push_data(&self, value: &SecretBytes, r: &PushRef, escape: bool) -> TplValue {
        let text = |s: &[u8]| {
            if escape {
                query_escape(&String::from_utf8_lossy(s)).into_bytes()
            } else {
                s.to_vec()
            }
        };
        let mut remote = BTreeMap::from([("remoteKey".to_owned(), text(r.remote_key.as_bytes()))]);
        if !r.secret_key.is_empty() {
            remote.insert("secretKey".to_owned(), text(r.secret_key.as_bytes()));
        }
        remote.insert(r.remote_key.clone(), text(value.expose()));
        let mut top = BTreeMap::from([("remoteRef".to_owned(), TplValue::StrMap(remote))]);
        for (name, data) in &self.secrets {
            top.insert(
                name.clone(),
                TplValue::StrMap(data.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect()),
            );
        }
        TplValue::Map(top)
    }

    /// The request: `url` rendered over `escaped`, `headers` and `body` over `raw`; without a
    /// `body` template, `default_body` (a push's value) when given.
    fn request(
        &self,
        method: reqwest::Method,
        raw: &TplValue,
        escaped: &TplValue,
        default_body: Option<&SecretBytes>,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let url = self.render(&self.url, escaped, "url")?;
        let url = std::str::from_utf8(url.expose())
            .ok()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .ok_or_else(|| {
                ProviderError::Invalid(
                    "spec.provider.webhook.url: the rendered URL does not parse".into(),
                )
            })?;
        let mut req = self.http.request(method, url);
        for (name, t) in &self.headers {
            let v = self.render(t, raw, &format!("headers.{name}"))?;
            let v = reqwest::header::HeaderValue::from_bytes(v.expose()).map_err(|_| {
                ProviderError::Invalid(format!(
                    "spec.provider.webhook.headers.{name}: the rendered value is not a valid \
                     header value"
                ))
            })?;
            req = req.header(name.clone(), v);
        }
        let body = match &self.body {
            Some(t) => Some(self.render(t, raw, "body")?),
            None => default_body.cloned(),
        };
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            req = req.body(body.expose().to_vec());
        }
        Ok(req)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        r: &RemoteRef,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let transient = |e: reqwest::Error| {
            ProviderError::Transient(format!("webhook request: {}", e.without_url()))
        };
        let mut resp = req.send().await.map_err(transient)?;
        let status = resp.status();
        match status.as_u16() {
            200..=299 => {}
            404 => {
                return Err(ProviderError::NotFound(format!(
                    "webhook answered 404 for key {:?}",
                    r.key
                )));
            }
            429 => {
                return Err(ProviderError::Throttled(format!(
                    "endpoint gave error {status}"
                )));
            }
            401 | 403 => {
                return Err(ProviderError::Denied(format!(
                    "endpoint gave error {status}"
                )));
            }
            _ => {
                return Err(ProviderError::Transient(format!(
                    "endpoint gave error {status}"
                )));
            }
        }
        let max = self.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large(max));
        }
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = resp.chunk().await.map_err(transient)? {
            if body.len() + chunk.len() > max {
                return Err(too_large(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large(max: usize) -> ProviderError {
    ProviderError::Invalid(format!(
        "webhook response is larger than {max} bytes (--webhook-max-response-bytes)"
    ))
}

fn parse_json(body: &[u8]) -> Result<Value, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::Invalid(format!(
            "failed to parse response json (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// The value `path` selects: one match as itself, several as an array (as a JSONPath with a
/// wildcard gives in ESO).
fn select(v: &Value, path: &str) -> Result<Value, ProviderError> {
    let found = v
        .query(path)
        .map_err(|e| ProviderError::Invalid(format!("failed to get response path {path}: {e}")))?;
    match found.as_slice() {
        [] => Err(ProviderError::Invalid(format!(
            "failed to get response path {path}: nothing matched"
        ))),
        [one] => Ok((*one).clone()),
        many => Ok(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
    }
}

/// ESO's `extractSecretData`: one value as bytes for `data[]`.
fn single_value(v: &Value) -> Result<Vec<u8>, ProviderError> {
    Ok(match v {
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Null => Vec::new(),
        // Go's FormatFloat(f, 'f', 0, 64): rounded to an integer.
        Value::Number(n) => format!("{:.0}", n.as_f64().unwrap_or_default()).into_bytes(),
        Value::String(s) => s.clone().into_bytes(),
        Value::Array(a) => match a.first() {
            Some(first) => single_value(first)?,
            None => {
                return Err(ProviderError::Invalid(
                    "filter worked but didn't get any result".into(),
                ));
            }
        },
        Value::Object(_) => go_marshal_any(v, true).into_bytes(),
    })
}

/// ESO's `GetByteValue`: one member of an extracted object.
fn member_value(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Number(n) => go_float_text(n).into_bytes(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Null => Vec::new(),
        Value::Object(_) | Value::Array(_) => go_marshal_any(v, true).into_bytes(),
    }
}

#[async_trait]
impl SecretProvider for WebhookProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let body = self.fetch(r).await?;
        let path = self.render(
            &self.json_path_template,
            &self.data(r, false),
            "result.jsonPath",
        )?;
        if path.is_empty() {
            return Ok(SecretBytes::from_slice(&body));
        }
        let path = String::from_utf8_lossy(path.expose()).into_owned();
        let v = parse_json(&body)?;
        Ok(SecretBytes::new(single_value(&select(&v, &path)?)?))
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let body = self.fetch(r).await?;
        let mut v = parse_json(&body)?;
        // ESO does not template the path for dataFrom.
        if !self.json_path.is_empty() {
            v = select(&v, &self.json_path)?;
        }
        if let Value::String(s) = &v {
            v = serde_json::from_str(s).map_err(|_| {
                ProviderError::Invalid("failed to parse response json from jsonpath".into())
            })?;
        }
        let Value::Object(members) = &v else {
            return Err(ProviderError::Invalid(
                "webhook response is not a JSON object".into(),
            ));
        };
        Ok(members
            .iter()
            .map(|(k, v)| (k.clone(), SecretBytes::new(member_value(v))))
            .collect())
    }

    async fn find(&self, _q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        Err(ProviderError::Invalid(
            "dataFrom.find is not supported by the webhook provider (ESO: not implemented)".into(),
        ))
    }

    /// ESO's check: a TCP connection to the URL's host and port.
    async fn validate(&self) -> Result<(), ProviderError> {
        let url = reqwest::Url::parse(&self.url_text).map_err(|e| {
            ProviderError::Invalid(format!("spec.provider.webhook.url could not parse: {e}"))
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(VALIDATE_TIMEOUT, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ProviderError::Transient(format!(
                "error accessing external store {host}:{port}: {e}"
            ))),
            Err(_) => Err(ProviderError::Transient(format!(
                "error accessing external store {host}:{port}: timed out"
            ))),
        }
    }

    /// ESO's answer, although pushes work: `status.capabilities` reads as in ESO.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }

    async fn push(&self, value: &SecretBytes, r: &PushRef) -> Result<(), ProviderError> {
        if r.remote_key.is_empty() {
            return Err(ProviderError::Invalid("remote key must be defined".into()));
        }
        if !r.property.is_empty() {
            return Err(ProviderError::Invalid(
                "remoteRef.property is not used by the webhook provider (ESO ignores it): \
                 leave it out, or use the value in the store's url/body templates"
                    .into(),
            ));
        }
        if r.metadata.as_ref().is_some_and(|m| !m.is_null()) {
            return Err(ProviderError::Invalid(
                "metadata is not used by the webhook provider (ESO ignores it): leave it out"
                    .into(),
            ));
        }
        let method = self.method.clone().unwrap_or(reqwest::Method::POST);
        let raw = self.push_data(value, r, false);
        let escaped = self.push_data(value, r, true);
        let req = self.request(method, &raw, &escaped, Some(value))?;
        let target = RemoteRef {
            key: r.remote_key.clone(),
            ..RemoteRef::default()
        };
        let result = self.send(req, &target).await.map(|_| ());
        self.calls
            .record(METRIC_PROVIDER, METRIC_CALL, result.is_ok());
        result
    }

    async fn exists(&self, _r: &PushRef) -> Result<bool, ProviderError> {
        Err(ProviderError::Invalid(
            "spec.updatePolicy IfNotExists: a webhook store cannot tell whether a remote secret \
             exists (ESO: not implemented); use updatePolicy Replace"
                .into(),
        ))
    }

    async fn delete(&self, _r: &PushRef) -> Result<(), ProviderError> {
        Err(ProviderError::Invalid(
            "spec.deletionPolicy Delete: a webhook store cannot delete what it pushed (ESO: not \
             implemented); use deletionPolicy None"
                .into(),
        ))
    }

    fn deletes_pushed(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_query_escape() {
        assert_eq!(query_escape("a b/c?d=é~"), "a+b%2Fc%3Fd%3D%C3%A9~");
    }

    #[test]
    fn timeouts_are_go_durations_within_the_budget() {
        let l = Limits::default();
        assert_eq!(parse_timeout("1s", &l).unwrap(), Duration::from_secs(1));
        assert_eq!(parse_timeout("1m30s", &l).unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_timeout("500ms", &l).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_timeout("0s", &l).unwrap(), DEFAULT_TIMEOUT);
        for bad in ["10", "1x", "s", "10m", "-1s"] {
            assert!(parse_timeout(bad, &l).is_err(), "{bad}");
        }
        let tight = Limits {
            max_timeout: Duration::from_secs(5),
            ..l
        };
        assert!(
            parse_timeout("6s", &tight)
                .unwrap_err()
                .to_string()
                .contains("--webhook-max-timeout")
        );
    }

    #[test]
    fn values_are_formatted_as_eso() {
        let v = json!({"n": 2.5, "i": 7, "b": true, "z": null, "s": "x",
            "o": {"b": 1.0, "a": "<"}, "l": ["first", 2]});
        let one =
            |p: &str| String::from_utf8(single_value(&select(&v, p).unwrap()).unwrap()).unwrap();
        assert_eq!(one("$.n"), "2");
        assert_eq!(one("$.i"), "7");
        assert_eq!(one("$.b"), "true");
        assert_eq!(one("$.z"), "");
        assert_eq!(one("$.s"), "x");
        assert_eq!(one("$.o"), "{\"a\":\"\\u003c\",\"b\":1}");
        assert_eq!(one("$.l"), "first");
        assert_eq!(one("$.l[*]"), "first");
        assert!(select(&v, "$.missing").is_err());
        assert_eq!(String::from_utf8(member_value(&json!(2.5))).unwrap(), "2.5");
        assert_eq!(
            String::from_utf8(member_value(&json!([1, "a"]))).unwrap(),
            "[1,\"a\"]"
        );
    }

    #[test]
    fn unimplemented_fields_are_refused_by_name() {
        let err = |spec: Value| check_fields(&spec).unwrap_err().to_string();
        assert!(
            err(json!({"url": "http://x", "auth": {"ntlm": {}}}))
                .contains("spec.provider.webhook.auth")
        );
        assert!(
            err(json!({"url": "http://x", "secrets": [{"name": "a",
            "secretRef": {"name": "s", "key": "k"}}]}))
            .contains("spec.provider.webhook.secrets[0].secretRef.key")
        );
        assert!(
            err(json!({"url": "http://x", "result": {"jsonPath": "$", "x": 1}}))
                .contains("spec.provider.webhook.result.x")
        );
        check_fields(
            &json!({"url": "http://x", "method": "GET", "headers": {}, "body": "",
            "timeout": "1s", "result": {"jsonPath": "$"}, "secrets": [], "caBundle": ""}),
        )
        .unwrap();
    }
}
