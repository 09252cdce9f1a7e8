//! Harness of the ExternalSecret e2e tests: the controller against the real kube-apiserver, the OpenBao dev server and moto
//! (all started by `scripts/test.sh`; see `HUSH_VAULT_ADDR`, `HUSH_VAULT_TOKEN`,
//! `AWS_SECRETSMANAGER_ENDPOINT` from `scripts/services/*.sh`). ESO's own manifests, unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_external_controller::Config;
use hush_operator::leader::LeaseConfig;
use hush_operator::{Process, ProcessConfig, Shutdown};
use hush_testkit::chart::{ChartProfile, controller_client};
use hush_testkit::{TestNamespace, client, install_repo_crd};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub mod cloud;

pub const WAIT: Duration = Duration::from_secs(60);

/// The harness controller's read window: short, so that tests which change provider data see
/// the change on the next sync.
const HARNESS_READ_WINDOW: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Log capture, for the canary checks.

/// This process's captured logs (hush_testkit::logs).
pub fn logs() -> &'static hush_testkit::logs::LogBuffer {
    hush_testkit::logs::captured()
}

pub fn logs_contain(needle: &str) -> bool {
    logs().contains(needle)
}

/// Waits (up to 10 s) until the captured logs hold every needle: the controller writes the
/// status before it logs the error, so a test that saw the status may be ahead of the log line.
pub async fn wait_for_logs(needles: &[&str]) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if needles.iter().all(|n| logs_contain(n)) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn canary(tag: &str) -> String {
    hush_testkit::logs::canary(tag)
}

// ---------------------------------------------------------------------------------------------
// Harness.

pub struct Controller {
    shutdown: Shutdown,
    handle: JoinHandle<hush_operator::Result<()>>,
    /// The metrics endpoint (`127.0.0.1:<port>`).
    pub metrics_addr: std::net::SocketAddr,
    /// The refresh endpoint, when started with one.
    pub refresh_addr: Option<std::net::SocketAddr>,
}

impl Controller {
    pub async fn start(client: &Client, ns: &str) -> Result<Self> {
        Self::start_with_class(client, ns, "default").await
    }

    pub async fn start_with_class(client: &Client, ns: &str, class: &str) -> Result<Self> {
        Self::start_in(client, Some(ns), class, |_| {}).await
    }

    /// A controller for `ns` and `class` with settings changed by `configure`.
    pub async fn start_configured(
        client: &Client,
        ns: &str,
        class: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::start_in(client, Some(ns), class, configure).await
    }

    /// As [`Controller::start`] with the controller's default read window (10 s, not the
    /// harness's 500 ms) and without leader election, so that it lists and syncs at once.
    pub async fn start_unelected_with_default_window(client: &Client, ns: &str) -> Result<Self> {
        let leader_election = false;
        Self::start_as(
            client,
            None,
            Some(ns),
            "default",
            leader_election,
            None,
            |c| {
                c.read_window = Config::default().read_window;
            },
        )
        .await
    }

    /// A controller for all namespaces (ClusterExternalSecrets run only there): give the
    /// stores it should serve `spec.controller: <class>`, and run it in its own test binary.
    pub async fn start_cluster_wide(client: &Client, class: &str) -> Result<Self> {
        Self::start_in(client, None, class, |_| {}).await
    }

    /// As [`Controller::start_with_class`], on the API server of `kubeconfig` (whose admin
    /// `client` is), not the run's own (`KUBECONFIG`).
    pub async fn start_on(
        client: &Client,
        kubeconfig: &std::path::Path,
        ns: &str,
        class: &str,
    ) -> Result<Self> {
        Self::start_as(
            client,
            Some(kubeconfig),
            Some(ns),
            class,
            true,
            None,
            |_| {},
        )
        .await
    }

    async fn start_in(
        client: &Client,
        ns: Option<&str>,
        class: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::start_as(client, None, ns, class, true, None, configure).await
    }

    /// A controller for `ns` (all namespaces for `None`) that also serves the refresh endpoint
    /// (`--enable-refresh-endpoint`) on loopback with `settings`, as the chart's ServiceAccount.
    pub async fn start_with_refresh(
        client: &Client,
        ns: Option<&str>,
        settings: hush_external_controller::refresh::Settings,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::start_as(client, None, ns, "default", true, Some(settings), configure).await
    }

    async fn start_as(
        client: &Client,
        kubeconfig: Option<&std::path::Path>,
        ns: Option<&str>,
        class: &str,
        leader_election: bool,
        refresh: Option<hush_external_controller::refresh::Settings>,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        logs();
        let shutdown = Shutdown::new();
        // As deployed: the Helm chart's ServiceAccount and RBAC and leader election on, the
        // watched namespace (or a fresh one) as release namespace; scripts/rbac-evidence.sh
        // reads the audit trail.
        let release = match ns {
            Some(ns) => ns.to_owned(),
            None => TestNamespace::create(client, "es-release")
                .await?
                .name()
                .to_owned(),
        };
        let mut identity = controller_client(client, &release, ChartProfile::External).await?;
        if let Some(kubeconfig) = kubeconfig {
            // controller_client impersonates on `KUBECONFIG`'s server; the RBAC it applied is
            // on `client`'s.
            let user = format!(
                "system:serviceaccount:{release}:{}",
                ChartProfile::External.service_account()
            );
            let mut config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(kubeconfig)?,
                &kube::config::KubeConfigOptions::default(),
            )
            .await?;
            config.auth_info.impersonate = Some(user);
            identity = Client::try_from(config)?;
        }
        let mut lease = LeaseConfig::new(
            release,
            ChartProfile::External.lease_name().into(),
            "e2e".into(),
        );
        lease.retry_period = Duration::from_millis(200);
        let mut process = Process::new(
            identity,
            ProcessConfig {
                metrics_addr: "127.0.0.1:0".into(),
                leader_election: leader_election.then_some(lease),
                shards: None,
            },
            shutdown.clone(),
        );
        let metrics_addr = process.bind_metrics().await?;
        let mut config = Config {
            namespace: ns.map(str::to_owned),
            controller_class: class.to_owned(),
            read_window: HARNESS_READ_WINDOW,
            ..Config::default()
        };
        configure(&mut config);
        let component = hush_external_controller::start(&mut process, config);
        let (component, refresh_addr) = with_refresh(&mut process, component, refresh).await?;
        let handle = tokio::spawn(process.run(vec![component]));
        Ok(Self {
            shutdown,
            handle,
            metrics_addr,
            refresh_addr,
        })
    }

    /// One replica of a sharded controller (`--shards`): the chart's ServiceAccount and RBAC
    /// with `release` as release namespace (its Leases live there), all namespaces or `ns`.
    pub async fn start_sharded(
        client: &Client,
        release: &str,
        ns: Option<&str>,
        lease: LeaseConfig,
        shards: hush_operator::ShardConfig,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        Self::start_sharded_with(client, release, ns, lease, shards, None, configure).await
    }

    /// [`Controller::start_sharded`] that also serves the refresh endpoint with `refresh`.
    pub async fn start_sharded_with(
        client: &Client,
        release: &str,
        ns: Option<&str>,
        lease: LeaseConfig,
        shards: hush_operator::ShardConfig,
        refresh: Option<hush_external_controller::refresh::Settings>,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        logs();
        let shutdown = Shutdown::new();
        let identity = controller_client(client, release, ChartProfile::External).await?;
        let mut process = Process::new(
            identity,
            ProcessConfig {
                metrics_addr: "127.0.0.1:0".into(),
                leader_election: Some(lease),
                shards: Some(shards),
            },
            shutdown.clone(),
        );
        let metrics_addr = process.bind_metrics().await?;
        let mut config = Config {
            namespace: ns.map(str::to_owned),
            read_window: HARNESS_READ_WINDOW,
            ..Config::default()
        };
        configure(&mut config);
        let component = hush_external_controller::start(&mut process, config);
        let (component, refresh_addr) = with_refresh(&mut process, component, refresh).await?;
        let handle = tokio::spawn(process.run(vec![component]));
        Ok(Self {
            shutdown,
            handle,
            metrics_addr,
            refresh_addr,
        })
    }

    /// Stops the replica as SIGKILL would: its tasks end at once, its Leases stay held until
    /// they expire.
    pub fn kill(self) {
        self.handle.abort();
    }

    /// The sum of the samples of metric `name` on this replica's endpoint.
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let body = reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    pub async fn stop(self) -> Result<()> {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .context("controller did not stop within 30 s")???;
        Ok(())
    }
}

/// `component` with the refresh endpoint on a loopback port, when `settings` are given (as
/// `hush controller --enable-refresh-endpoint` adds it).
async fn with_refresh(
    process: &mut Process,
    mut component: hush_operator::Component,
    settings: Option<hush_external_controller::refresh::Settings>,
) -> Result<(hush_operator::Component, Option<std::net::SocketAddr>)> {
    let Some(settings) = settings else {
        return Ok((component, None));
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    component
        .always
        .push(hush_external_controller::refresh::serve(
            process, listener, settings,
        ));
    Ok((component, Some(addr)))
}

/// A client with ESO's CRDs (hush's copies) installed.
pub async fn setup() -> Result<Client> {
    logs();
    let client = client().await?;
    for f in [
        "externalsecrets.external-secrets.io.yaml",
        "secretstores.external-secrets.io.yaml",
        "clustersecretstores.external-secrets.io.yaml",
        "clusterexternalsecrets.external-secrets.io.yaml",
        "pushsecrets.external-secrets.io.yaml",
        "clusterpushsecrets.external-secrets.io.yaml",
        "passwords.generators.external-secrets.io.yaml",
        "uuids.generators.external-secrets.io.yaml",
        "fakes.generators.external-secrets.io.yaml",
        "vaultdynamicsecrets.generators.external-secrets.io.yaml",
        "stssessiontokens.generators.external-secrets.io.yaml",
        "ecrauthorizationtokens.generators.external-secrets.io.yaml",
        "webhooks.generators.external-secrets.io.yaml",
        "clustergenerators.generators.external-secrets.io.yaml",
    ] {
        install_repo_crd(&client, f).await?;
    }
    Ok(client)
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run through scripts/test.sh (scripts/services/*.sh start)")
    })
}

/// A call to the OpenBao dev server with the root token.
pub async fn bao(method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let url = format!("{}/v1/{path}", env("HUSH_VAULT_ADDR"));
    let http = reqwest::Client::new();
    let mut req = match method {
        "GET" => http.get(&url),
        "LIST" => http.get(format!("{url}?list=true")),
        _ => http.post(&url),
    }
    .header("X-Vault-Token", env("HUSH_VAULT_TOKEN"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    ensure!(status.is_success(), "{method} {path}: {status} {text}");
    Ok(if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

/// An AppRole auth mount `mount` whose role `eso` may read `secret/data/<prefix>/*` (and look
/// its token up); returns its role id and a secret id.
pub async fn vault_approle(mount: &str, prefix: &str) -> Result<(String, String)> {
    let policy = format!(
        "path \"secret/data/{prefix}/*\" {{ capabilities = [\"read\"] }}\n\
         path \"auth/token/lookup-self\" {{ capabilities = [\"read\"] }}"
    );
    bao(
        "POST",
        &format!("sys/policies/acl/{prefix}"),
        Some(json!({"policy": policy})),
    )
    .await?;
    bao(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({"type": "approle"})),
    )
    .await?;
    let role = format!("auth/{mount}/role/eso");
    bao(
        "POST",
        &role,
        Some(json!({"token_policies": [prefix], "token_ttl": "1h"})),
    )
    .await?;
    let field = |v: Value, name: &str| -> Result<String> {
        v["data"][name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {name} from {role}"))
    };
    let role_id = field(
        bao("GET", &format!("{role}/role-id"), None).await?,
        "role_id",
    )?;
    let secret_id = field(
        bao("POST", &format!("{role}/secret-id"), Some(json!({}))).await?,
        "secret_id",
    )?;
    Ok((role_id, secret_id))
}

/// The length of OpenBao's audit log (`HUSH_VAULT_AUDIT_LOG`), to count requests after it.
pub fn vault_audit_len() -> Result<u64> {
    let path = env("HUSH_VAULT_AUDIT_LOG");
    Ok(std::fs::metadata(&path)
        .with_context(|| format!("audit log {path}"))?
        .len())
}

/// The paths of the Vault requests in the audit log after byte `from`.
pub fn vault_request_paths(from: u64) -> Result<Vec<String>> {
    Ok(vault_requests_timed(from)?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

/// The Vault requests in the audit log after byte `from`: when OpenBao received each, and its
/// path.
pub fn vault_requests_timed(from: u64) -> Result<Vec<(k8s_openapi::jiff::Timestamp, String)>> {
    let path = env("HUSH_VAULT_AUDIT_LOG");
    let bytes = std::fs::read(&path).with_context(|| format!("audit log {path}"))?;
    let start = usize::try_from(from)?.min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "request")
        .filter_map(|e| {
            let time = e["time"].as_str()?.parse().ok()?;
            Some((time, e["request"]["path"].as_str()?.to_owned()))
        })
        .collect())
}

/// The Vault requests in the audit log after byte `from`: operation (`read`, `create`,
/// `update`, …) and path.
pub fn vault_operations(from: u64) -> Result<Vec<(String, String)>> {
    let path = env("HUSH_VAULT_AUDIT_LOG");
    let bytes = std::fs::read(&path).with_context(|| format!("audit log {path}"))?;
    let start = usize::try_from(from)?.min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "request")
        .filter_map(|e| {
            Some((
                e["request"]["operation"].as_str()?.to_owned(),
                e["request"]["path"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// An AWS JSON call against moto (moto accepts any credentials).
pub async fn aws(service: &str, target: &str, action: &str, body: Value) -> Result<Value> {
    let url = match service {
        "secretsmanager" => env("AWS_SECRETSMANAGER_ENDPOINT"),
        _ => env("AWS_SSM_ENDPOINT"),
    };
    Ok(hush_aws::json_call(
        &reqwest::Client::new(),
        &url,
        &hush_aws::Credentials::new("testing", "testing", None),
        "us-east-1",
        service,
        target,
        action,
        &body,
    )
    .await?)
}

pub async fn apply<K>(api: &Api<K>, obj: Value) -> Result<K>
where
    K: kube::Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize
        + std::fmt::Debug,
{
    let o: K = serde_json::from_value(obj)?;
    Ok(api.create(&PostParams::default(), &o).await?)
}

pub async fn secret_from_literals(
    api: &Api<Secret>,
    name: &str,
    data: &[(&str, &str)],
) -> Result<()> {
    let map: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    apply(api, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": map})).await?;
    Ok(())
}

pub fn ready(es: &ExternalSecret) -> Option<(String, String)> {
    es.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// Waits until the events of namespace `ns` (as JSON) contain every one of `needles`.
pub async fn wait_events(client: &Client, ns: &str, needles: &[&str]) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = serde_json::to_string(
            &Api::<Event>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?
                .items,
        )?;
        if needles.iter().all(|n| events.contains(n)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("events of {ns} do not contain all of {needles:?}: {events}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn wait_ready(
    api: &Api<ExternalSecret>,
    name: &str,
    status: &str,
    reason: &str,
) -> Result<ExternalSecret> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // A ClusterExternalSecret creates its children a moment after the test applies it:
        // not found yet is waited for like a Ready that is not there yet.
        let Some(es) = api.get_opt(name).await? else {
            if tokio::time::Instant::now() > deadline {
                bail!("ExternalSecret {name}: not found after {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if ready(&es) == Some((status.to_owned(), reason.to_owned())) {
            return Ok(es);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "ExternalSecret {name}: Ready is {:?}, want {status}/{reason}; status {:?}",
                ready(&es),
                es.status
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The store's Ready condition (status, reason, message), once it has one.
pub async fn store_ready(api: &Api<SecretStore>, name: &str) -> Result<(String, String, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = api.get(name).await?;
        let c = s
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == "Ready");
        if let Some(c) = c {
            return Ok((
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            ));
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store {name} has no Ready condition"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The Secret `vault-token` (key `token`: the test OpenBao's root token) that token-auth
/// stores name in ESO's examples.
pub async fn vault_token_secret(secrets: &Api<Secret>) -> Result<()> {
    secret_from_literals(
        secrets,
        "vault-token",
        &[("token", &env("HUSH_VAULT_TOKEN"))],
    )
    .await
}

/// A file of the running test environment (`$KTE_DIR`, exported by scripts/kube-testenv.sh).
pub fn kte_file(relative: &str) -> Result<String> {
    let dir = std::env::var("KTE_DIR")
        .context("KTE_DIR is not set: this test needs scripts/kube-testenv.sh's key files")?;
    let path = std::path::Path::new(&dir).join(relative);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

pub fn value(s: &Secret, key: &str) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default()
}

pub async fn assert_no_canary(
    client: &Client,
    ns: &TestNamespace,
    es: &Api<ExternalSecret>,
    canary: &str,
) -> Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(canary);
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    for e in events.list(&ListParams::default()).await? {
        let text = serde_json::to_string(&e)?;
        ensure!(
            !text.contains(canary) && !text.contains(&b64),
            "canary in event {text}"
        );
    }
    for e in es.list(&ListParams::default()).await? {
        let text = serde_json::to_string(&e.status)?;
        ensure!(!text.contains(canary), "canary in status {text}");
    }
    ensure!(
        !logs_contain(canary) && !logs_contain(&b64),
        "canary in logs"
    );
    Ok(())
}

/// A loopback TCP proxy that can stop serving (a Vault outage): when down, it refuses new
/// connections and cuts the open ones (pooled keep-alive connections included).
pub struct Proxy {
    pub addr: String,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

pub async fn proxy(upstream: &str) -> Result<Proxy> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("http://{}", listener.local_addr()?);
    let (up, rx) = tokio::sync::watch::channel(true);
    let target = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !*rx.borrow() {
                drop(inbound);
                continue;
            }
            let target = target.clone();
            let mut rx = rx.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = TcpStream::connect(&target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                }
            });
        }
    });
    Ok(Proxy { addr, up })
}
