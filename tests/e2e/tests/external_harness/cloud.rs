//! The Google Cloud and Azure test servers (scripts/services/{gcp,azure}.sh): credentials for
//! stores, seeding through a separate identity, the servers' call counters, and the refresh-wave
//! read count of the call-count discipline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hush_api::external_secrets::ExternalSecret;
use kube::api::Api;
use serde_json::{Value, json};

use super::env;

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Value> {
    let mut r = http.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let response = r.send().await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "{url}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The Google Cloud test server and a seeding identity of its own.
pub struct Gcp {
    pub url: String,
    http: reqwest::Client,
    seeder: hush_gcp::Client,
}

impl Gcp {
    pub async fn new() -> Result<Self> {
        let url = env("HUSH_GCP_URL");
        let http = reqwest::Client::new();
        let (_, json) = Self::key(&http, &url, "seeder").await?;
        let key = hush_gcp::ServiceAccountKey::from_json(json.as_bytes())?;
        let endpoints = hush_gcp::Endpoints {
            secret_manager: url.clone(),
            kms: url.clone(),
            token: format!("{url}/token"),
            ..hush_gcp::Endpoints::default()
        };
        let seeder =
            hush_gcp::Client::new(hush_gcp::Credentials::ServiceAccount(key), endpoints, None)?;
        Ok(Self { url, http, seeder })
    }

    async fn key(http: &reqwest::Client, url: &str, tag: &str) -> Result<(String, String)> {
        let email = format!(
            "{tag}-{}@hush-test.iam.gserviceaccount.com",
            super::canary("sa")
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let key = send(
            http,
            reqwest::Method::POST,
            &format!("{url}/hush/service-accounts"),
            None,
            Some(json!({"email": email, "project": "hush-test"})),
        )
        .await?;
        Ok((email, key.to_string()))
    }

    /// A new service account: its email and JSON key.
    pub async fn service_account(&self, tag: &str) -> Result<(String, String)> {
        Self::key(&self.http, &self.url, tag).await
    }

    /// Creates secret `id` with `labels` and one version per payload.
    pub async fn put_secret(&self, id: &str, labels: Value, versions: &[&str]) -> Result<()> {
        self.put_secret_in("projects/hush-test", id, labels, versions)
            .await
    }

    /// As [`Gcp::put_secret`] under `parent` (`projects/hush-test/locations/L` for a regional one).
    pub async fn put_secret_in(
        &self,
        parent: &str,
        id: &str,
        labels: Value,
        versions: &[&str],
    ) -> Result<()> {
        let token = self.seeder.tokens().token().await?;
        let t = Some(token.expose());
        let base = format!("{}/v1/{parent}/secrets", self.url);
        send(
            &self.http,
            reqwest::Method::POST,
            &format!("{base}?secretId={id}"),
            t,
            Some(json!({"replication": {"automatic": {}}, "labels": labels})),
        )
        .await?;
        for v in versions {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD.encode(v);
            send(
                &self.http,
                reqwest::Method::POST,
                &format!("{base}/{id}:addVersion"),
                t,
                Some(json!({"payload": {"data": data}})),
            )
            .await?;
        }
        Ok(())
    }

    /// Makes the metadata server hand out tokens of a new service account; returns its email.
    pub async fn metadata_identity(&self, tag: &str) -> Result<String> {
        let email = format!(
            "{tag}-{}@hush-test.iam.gserviceaccount.com",
            super::canary("md")
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/hush/metadata-identity", self.url),
            None,
            Some(json!({ "email": email })),
        )
        .await?;
        Ok(email)
    }

    /// A management call (`/hush/...`) of the server: workload-identity providers,
    /// impersonation grants, the metadata server's cluster attributes.
    pub async fn manage(&self, path: &str, body: Value) -> Result<Value> {
        send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/hush/{path}", self.url),
            None,
            Some(body),
        )
        .await
    }

    /// Token grants of `email` and calls of each route.
    pub async fn calls(&self) -> Result<Value> {
        send(
            &self.http,
            reqwest::Method::GET,
            &format!("{}/hush/calls", self.url),
            None,
            None,
        )
        .await
    }

    /// Reads (`versions/…:access`) of secrets whose id starts with `prefix`.
    pub async fn reads(&self, prefix: &str) -> Result<usize> {
        let calls = self.calls().await?;
        let needle = format!("GET /v1/projects/hush-test/secrets/{prefix}");
        Ok(sum_calls(&calls, |route| {
            route.starts_with(&needle) && route.ends_with(":access")
        }))
    }
}

/// The kube-apiserver's ServiceAccount token issuer and the JWK set it signs with
/// (`/.well-known/openid-configuration`, `/openid/v1/jwks`): what a cloud's federated
/// credential trusts.
pub async fn cluster_issuer(client: &kube::Client) -> Result<(String, Value)> {
    let get = |path: &str| http::Request::get(path).body(Vec::new());
    let config: Value = client
        .request(get("/.well-known/openid-configuration")?)
        .await?;
    let jwks: Value = client.request(get("/openid/v1/jwks")?).await?;
    let issuer = config["issuer"]
        .as_str()
        .context("the API server's discovery document has no issuer")?
        .to_owned();
    Ok((issuer, jwks))
}

fn sum_calls(calls: &Value, wanted: impl Fn(&str) -> bool) -> usize {
    calls["calls"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| wanted(k))
                .map(|(_, v)| v.as_u64().unwrap_or(0) as usize)
                .sum()
        })
        .unwrap_or(0)
}

/// The Azure test server and a seeding application of its own.
pub struct Azure {
    pub url: String,
    http: reqwest::Client,
    seeder: Arc<hush_azure::TokenSource>,
}

impl Azure {
    pub async fn new() -> Result<Self> {
        let url = env("HUSH_AZURE_URL");
        let cloud = hush_azure::Cloud {
            authority_host: url.clone(),
            vault_domain: url.trim_start_matches("https://").to_owned(),
            vault_resource: "https://vault.azure.net".to_owned(),
            ca_pem: Some(std::fs::read(env("HUSH_AZURE_CA")).context("HUSH_AZURE_CA")?),
        };
        let http = cloud.http_client()?;
        let app = send(
            &http,
            reqwest::Method::POST,
            &format!("{url}/hush/apps"),
            None,
            Some(json!({})),
        )
        .await?;
        let s = |k: &str| app[k].as_str().unwrap_or_default().to_owned();
        let seeder = hush_azure::TokenSource::new(
            http.clone(),
            hush_azure::Credential {
                tenant_id: s("tenant_id"),
                client_id: s("client_id"),
                secret: hush_azure::Secret::client_secret(&s("client_secret")),
            },
            &url,
            &cloud.vault_scope(),
            None,
        )?;
        Ok(Self {
            url,
            http,
            seeder: Arc::new(seeder),
        })
    }

    /// A new application: tenant id, client id, client secret.
    pub async fn app(&self) -> Result<(String, String, String)> {
        let app = send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/hush/apps", self.url),
            None,
            Some(json!({})),
        )
        .await?;
        let s = |k: &str| app[k].as_str().unwrap_or_default().to_owned();
        Ok((s("tenant_id"), s("client_id"), s("client_secret")))
    }

    /// Sets secret `name` to `value` with `tags`; returns the new version.
    pub async fn put_secret(&self, name: &str, value: &str, tags: Value) -> Result<String> {
        let token = self.seeder.token().await?;
        let answer = send(
            &self.http,
            reqwest::Method::PUT,
            &format!("{}/secrets/{name}?api-version=7.4", self.url),
            Some(token.expose()),
            Some(json!({"value": value, "tags": tags})),
        )
        .await?;
        Ok(answer["id"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned())
    }

    /// A new application whose federated credential trusts ServiceAccount tokens of `issuer`
    /// (signed by a key of `jwks`) for `subject` (`system:serviceaccount:NS:NAME`): tenant id,
    /// client id.
    pub async fn federated_app(
        &self,
        issuer: &str,
        subject: &str,
        jwks: &Value,
    ) -> Result<(String, String)> {
        let app = send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/hush/apps", self.url),
            None,
            Some(json!({"federated": {"issuer": issuer, "subject": subject, "jwks": jwks}})),
        )
        .await?;
        let s = |k: &str| app[k].as_str().unwrap_or_default().to_owned();
        Ok((s("tenant_id"), s("client_id")))
    }

    /// Registers a user-assigned managed identity for the metadata service; returns its client id.
    pub async fn managed_identity(&self) -> Result<String> {
        let id = uuid_like();
        send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/hush/managed-identities", self.url),
            None,
            Some(json!({ "client_id": id })),
        )
        .await?;
        Ok(id)
    }

    /// Creates RSA key `name`; returns the key as the server answers (`key.kid`, `key.n`, …).
    pub async fn create_key(&self, name: &str) -> Result<Value> {
        let token = self.seeder.token().await?;
        send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/keys/{name}/create?api-version=7.4", self.url),
            Some(token.expose()),
            Some(json!({"kty": "RSA"})),
        )
        .await
    }

    /// Imports certificate `name` from PEM; returns the answer (`cer` is the DER in base64).
    pub async fn import_certificate(&self, name: &str, pem: &str) -> Result<Value> {
        let token = self.seeder.token().await?;
        send(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/certificates/{name}/import?api-version=7.4", self.url),
            Some(token.expose()),
            Some(json!({"value": pem, "policy": {"secret_props": {"contentType": "application/x-pem-file"}}})),
        )
        .await
    }

    pub async fn calls(&self) -> Result<Value> {
        send(
            &self.http,
            reqwest::Method::GET,
            &format!("{}/hush/calls", self.url),
            None,
            None,
        )
        .await
    }

    /// Reads (`GET /secrets/NAME/…`) of secrets whose name starts with `prefix`.
    pub async fn reads(&self, prefix: &str) -> Result<usize> {
        let calls = self.calls().await?;
        let needle = format!("GET /secrets/{prefix}");
        Ok(sum_calls(&calls, |route| route.starts_with(&needle)))
    }
}

/// A client-id-shaped id (8-4-4-4-12 hex) from the run's canary randomness.
fn uuid_like() -> String {
    let hex: String = super::canary("id")
        .bytes()
        .rev()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn refresh_second(es: &ExternalSecret) -> Option<i64> {
    es.status
        .as_ref()?
        .refresh_time
        .as_deref()?
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Watches whole refresh waves of the `objects` ExternalSecrets named `prefix…` (all due on one boundary of
/// `interval_secs`) and checks that each wave read at most `keys` values (`reads` counts them
/// at the server) and at least one. Returns after two such waves.
pub async fn check_waves<F, Fut>(
    es: &Api<ExternalSecret>,
    prefix: &str,
    objects: usize,
    keys: usize,
    interval_secs: i64,
    reads: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    let now_ms = || {
        let t = k8s_openapi::jiff::Timestamp::now();
        t.as_second() * 1000 + i64::from(t.subsec_millisecond())
    };
    let period_ms = interval_secs * 1000;
    let deadline = tokio::time::Instant::now() + super::WAIT;
    let mut checked = 0;
    while checked < 2 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no complete refresh wave"
        );
        // Start 3 s into a period (the previous wave is over), stop 3 s into the next.
        let into = now_ms().rem_euclid(period_ms);
        if into < 3000 {
            tokio::time::sleep(Duration::from_millis(u64::try_from(3000 - into)?)).await;
        }
        let start = now_ms();
        let before = reads().await?;
        let boundary = (start - start.rem_euclid(period_ms) + period_ms) / 1000;
        let stop = boundary * 1000 + 3000;
        tokio::time::sleep(Duration::from_millis(u64::try_from(stop - now_ms())?)).await;
        let items = es.list(&Default::default()).await?.items;
        let times: Vec<i64> = items
            .iter()
            .filter(|e| {
                e.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .filter_map(refresh_second)
            .collect();
        ensure!(times.len() == objects, "refresh times missing: {times:?}");
        let due: std::collections::BTreeSet<i64> = times
            .iter()
            .map(|t| t - t.rem_euclid(interval_secs))
            .collect();
        if due != std::collections::BTreeSet::from([boundary]) {
            eprintln!("wave at {boundary}: refresh boundaries {due:?}; waiting for the next");
            continue;
        }
        let n = reads().await? - before;
        ensure!(
            n <= keys,
            "wave at {boundary}: {n} reads for {objects} ExternalSecrets over {keys} keys"
        );
        ensure!(n > 0, "wave at {boundary}: no read at all");
        checked += 1;
    }
    Ok(())
}
