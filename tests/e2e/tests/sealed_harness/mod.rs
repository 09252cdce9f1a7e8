//! Harness of the SealedSecret controller e2e tests: the controller in-process (the binary's
//! library entry point) as the Helm chart's ServiceAccount, a log buffer for canary checks,
//! a minimal HTTP client for its API and metrics, and sealing as kubeseal does.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_crypto::cert::Certificate;
use hush_operator::leader::LeaseConfig;
pub use hush_operator::server::HttpLimits;
use hush_operator::{Process, ProcessConfig, ShardConfig, Shutdown};
use hush_sealed_controller::{Config, Namespaces, SealingKeys};
use hush_testkit::chart::{ChartProfile, controller_client};
use hush_testkit::{TestNamespace, client, install_repo_crd};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Log capture: every test in this binary logs into one buffer, which the canary checks read.

/// This process's captured logs (hush_testkit::logs).
pub fn logs() -> &'static hush_testkit::logs::LogBuffer {
    hush_testkit::logs::captured()
}

pub fn logs_contain(needle: &str) -> bool {
    logs().contains(needle)
}

// ---------------------------------------------------------------------------------------------
// Controller harness.

pub struct Controller {
    pub shutdown: Shutdown,
    pub handle: JoinHandle<hush_operator::Result<()>>,
    pub api: SocketAddr,
    pub metrics: SocketAddr,
    pub keys: Arc<SealingKeys>,
}

impl Controller {
    pub async fn start(client: &Client, key_ns: &str, watch: &[&str]) -> Result<Self> {
        Self::start_with(client, key_ns, watch, None, |_| {}).await
    }

    pub async fn start_with(
        client: &Client,
        key_ns: &str,
        watch: &[&str],
        lease: Option<LeaseConfig>,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::start_limited(client, key_ns, watch, lease, tweak, HttpLimits::default()).await
    }

    /// [`Self::start_with`] with the process's HTTP endpoints under `limits`.
    pub async fn start_limited(
        client: &Client,
        key_ns: &str,
        watch: &[&str],
        lease: Option<LeaseConfig>,
        tweak: impl FnOnce(&mut Config),
        limits: HttpLimits,
    ) -> Result<Self> {
        Self::start_process(client, key_ns, watch, lease, None, tweak, limits).await
    }

    /// One replica of a sharded controller (`--shards`).
    pub async fn start_sharded(
        client: &Client,
        key_ns: &str,
        watch: &[&str],
        lease: LeaseConfig,
        shards: ShardConfig,
    ) -> Result<Self> {
        let limits = HttpLimits::default();
        Self::start_process(
            client,
            key_ns,
            watch,
            Some(lease),
            Some(shards),
            |_| {},
            limits,
        )
        .await
    }

    async fn start_process(
        client: &Client,
        key_ns: &str,
        watch: &[&str],
        lease: Option<LeaseConfig>,
        shards: Option<ShardConfig>,
        tweak: impl FnOnce(&mut Config),
        limits: HttpLimits,
    ) -> Result<Self> {
        logs();
        let mut config = Config::new(key_ns);
        config.key_size = 2048;
        config.listen_addr = "127.0.0.1:0".into();
        config.namespaces = Namespaces::List(watch.iter().map(|s| (*s).to_owned()).collect());
        config.rate_limit = 0.0;
        config.max_unseal_retries = 3;
        tweak(&mut config);
        let shutdown = Shutdown::new();
        // The controller runs as the Helm chart's ServiceAccount, with the chart's RBAC and the
        // key namespace as release namespace: the scenarios prove the rules suffice, and the
        // audit log shows what they use (scripts/rbac-evidence.sh).
        let identity = controller_client(client, key_ns, ChartProfile::Sealed).await?;
        let mut process = Process::new(
            identity,
            ProcessConfig {
                metrics_addr: "127.0.0.1:0".into(),
                leader_election: lease,
                shards,
            },
            shutdown.clone(),
        );
        process.set_http_limits(limits);
        let metrics = process.bind_metrics().await?;
        let started = hush_sealed_controller::start(&mut process, config).await?;
        let handle = tokio::spawn(process.run(vec![started.component]));
        Ok(Self {
            shutdown,
            handle,
            api: started.api_addr,
            metrics,
            keys: started.keys,
        })
    }

    pub async fn stop(self) -> Result<()> {
        if std::env::var_os("HUSH_E2E_DUMP_LOGS").is_some() {
            let text = logs().text();
            std::fs::write("/tmp/hush-e2e-logs.txt", text)?;
        }
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .context("controller did not stop within 30 s")???;
        Ok(())
    }

    pub async fn cert(&self) -> Result<String> {
        let (code, body) = http(self.api, "GET", "/v1/cert.pem", b"").await?;
        ensure!(code == 200, "GET /v1/cert.pem: {code} {body}");
        Ok(body)
    }

    pub async fn metric(&self, name: &str) -> Result<f64> {
        let (code, body) = http(self.metrics, "GET", "/metrics", b"").await?;
        ensure!(code == 200, "GET /metrics: {code}");
        Ok(body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// A minimal HTTP/1.1 client (one request per connection).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req = Vec::new();
    write!(
        req,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n",
        body.len()
    )?;
    req.extend_from_slice(body);
    stream.write_all(&req).await?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).await?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    Ok((code, body.to_owned()))
}

pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() > deadline {
            let text = logs().text();
            let _ = std::fs::write("/tmp/hush-e2e-logs.txt", text);
            bail!("timed out waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn setup(prefix: &str) -> Result<(Client, TestNamespace, TestNamespace)> {
    let client = client().await?;
    install_repo_crd(&client, "sealedsecrets.bitnami.com.yaml").await?;
    let keys = TestNamespace::create(&client, &format!("{prefix}-keys")).await?;
    let app = TestNamespace::create(&client, prefix).await?;
    Ok((client, keys, app))
}

pub fn canary(tag: &str) -> String {
    hush_testkit::logs::canary(tag)
}

/// Seals `items` for `namespace/name` (scope from `annotations`) with the controller's
/// certificate, as kubeseal does.
pub fn seal(
    cert_pem: &str,
    namespace: &str,
    name: &str,
    items: &[(&str, &str)],
    extra: serde_json::Value,
) -> Result<SealedSecret> {
    let cert = Certificate::from_pem(cert_pem.as_bytes())?;
    let mut input = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": namespace },
        "type": "Opaque",
        "stringData": items.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    merge(&mut input, extra);
    let secret: hush_sealing::Secret = serde_json::from_value(input)?;
    let sealed = hush_sealing::seal::seal_secret(&cert.public_key, &secret, &mut SystemEntropy)?;
    let text =
        hush_sealing::codec::write_sealed_secret(&sealed, hush_sealing::codec::Format::Json)?;
    Ok(serde_json::from_str(&text)?)
}

pub fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

pub async fn synced(api: &Api<SealedSecret>, name: &str, want: &str) -> Result<SealedSecret> {
    wait_for(&format!("SealedSecret {name} Synced={want}"), || async {
        let ss = api.get(name).await?;
        Ok(has_synced(&ss, want).then_some(ss))
    })
    .await
}

/// Whether `ss`'s status says its generation was synced with `Synced=want`.
pub fn has_synced(ss: &SealedSecret, want: &str) -> bool {
    ss.status
        .as_ref()
        .and_then(|s| s.conditions.first())
        .is_some_and(|c| c.type_ == "Synced" && c.status == want)
        && ss.status.as_ref().and_then(|s| s.observed_generation) == ss.metadata.generation
}

pub fn data_of(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}
