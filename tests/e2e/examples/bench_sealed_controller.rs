//! Benchmark of `hush controller` on the real API server (run by hand through
//! `scripts/bench-sealed-controller.sh`, which starts the test environment and builds the binary).
//!
//! `N` SealedSecrets (one 32-byte value each, RSA-4096, one key made beforehand) are created
//! before the controller starts. Measured: time until every Secret exists, RSA decrypts, time to
//! be fully reconciled after a restart and the decrypts it needed, peak RSS (VmHWM), the API
//! calls the controller made (the API server's `apiserver_request_total`, reads and writes, not
//! LIST/WATCH) and the CPU seconds of the controller, kube-apiserver, etcd and
//! kube-controller-manager in each phase (pids from `$KTE_DIR/*.pid`).
//!
//! `bench_sealed_controller HUSH_BINARY N [BITNAMI_CONTROLLER]`
//!
//! Environment: `HUSH_QPS`/`HUSH_BURST` (passed as `--kubeclient-qps`/`--kubeclient-burst` when
//! set), `BITNAMI_QPS`/`BITNAMI_BURST` (default 5 / 10, Bitnami's defaults),
//! `BITNAMI_MAX_WAIT` (seconds per Bitnami phase, default 1800; when it runs out the rate so far
//! is printed instead of a time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/sealed_bench.rs"]
mod sealed_bench;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures::{StreamExt as _, stream};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_testkit::apiserver::{api_calls, calls_between};
use hush_testkit::process::{free_port, vm_hwm_kib};
use hush_testkit::{TestNamespace, client, install_repo_crd};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use sealed_bench::{SecretCount, sealing_key};

/// What the controller's reconciles touch on the API server.
const RESOURCES: &[&str] = &["secrets", "sealedsecrets", "events"];

async fn metric(port: u16, name: &str) -> Result<f64> {
    let client = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut r, mut w) = client.into_split();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    w.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    r.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

struct Run {
    child: Child,
    metrics: u16,
}

/// Bitnami's controller only takes in-cluster configuration: it runs in a private mount
/// namespace with a tmpfs on /var/run/secrets holding a ServiceAccount token and the CA, and
/// `KUBERNETES_SERVICE_HOST`/`PORT` pointing at the test API server.
struct InCluster {
    dir: std::path::PathBuf,
    host: String,
    port: String,
}

fn start_bitnami(bin: &str, ic: &InCluster, key_ns: &str, app_ns: &str) -> Result<Run> {
    let metrics = free_port()?;
    let api = free_port()?;
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "mkdir -p /var/run/secrets && mount -t tmpfs none /var/run/secrets && mkdir -p {sa} && \
         cp {dir}/token {dir}/ca.crt {dir}/namespace {sa}/ && exec \"$0\" \"$@\"",
        dir = ic.dir.display()
    );
    let child = Command::new("unshare")
        .args(["-m", "sh", "-c", &script, bin])
        .args([
            "--key-renew-period=0",
            "--all-namespaces=false",
            "--additional-namespaces",
            app_ns,
            "--kubeclient-qps",
            &std::env::var("BITNAMI_QPS").unwrap_or_else(|_| "5".into()),
            "--kubeclient-burst",
            &std::env::var("BITNAMI_BURST").unwrap_or_else(|_| "10".into()),
            "--listen-addr",
            &format!("127.0.0.1:{api}"),
            "--listen-metrics-addr",
            &format!("127.0.0.1:{metrics}"),
            "--log-level",
            "WARN",
        ])
        .env("POD_NAMESPACE", key_ns)
        .env("KUBERNETES_SERVICE_HOST", &ic.host)
        .env("KUBERNETES_SERVICE_PORT", &ic.port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Bitnami's controller")?;
    Ok(Run { child, metrics })
}

fn start(hush: &str, key_ns: &str, app_ns: &str) -> Result<Run> {
    let metrics = free_port()?;
    let api = free_port()?;
    let child = Command::new(hush)
        .args([
            "controller",
            "--key-namespace",
            key_ns,
            "--all-namespaces=false",
            "--additional-namespaces",
            app_ns,
            "--key-renew-period=0",
            "--leader-elect=false",
            "--log-level=warn",
            "--listen-addr",
            &format!("127.0.0.1:{api}"),
            "--listen-metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ])
        .args(
            std::env::var("HUSH_QPS")
                .ok()
                .map(|q| format!("--kubeclient-qps={q}")),
        )
        .args(
            std::env::var("HUSH_BURST")
                .ok()
                .map(|b| format!("--kubeclient-burst={b}")),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting hush controller")?;
    Ok(Run { child, metrics })
}

fn stop(mut run: Run) -> Result<u64> {
    let pid = run.child.id();
    let hwm = vm_hwm_kib(pid).unwrap_or(0);
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -TERM {pid}");
    let code = run.child.wait()?;
    ensure!(code.success(), "controller exited with {code}");
    Ok(hwm)
}

/// Creates the key Secret and `n` SealedSecrets in fresh namespaces; returns them.
async fn prepare(
    client: &kube::Client,
    key_secret: &Secret,
    public: &hush_crypto::rsa::RsaPublicKey,
    n: usize,
) -> Result<(TestNamespace, TestNamespace)> {
    let keys = TestNamespace::create(client, "bench-keys").await?;
    let app = TestNamespace::create(client, "bench").await?;
    keys.api::<Secret>()
        .create(&PostParams::default(), key_secret)
        .await?;
    let t = Instant::now();
    let ss_api: Api<SealedSecret> = app.api();
    let ns = app.name().to_owned();
    let results: Vec<Result<()>> = stream::iter(0..n)
        .map(|i| {
            let ss_api = ss_api.clone();
            let ns = ns.clone();
            let public = public.clone();
            async move {
                let mut value = [0u8; 32];
                hush_crypto::Entropy::fill(&mut SystemEntropy, &mut value)?;
                let secret: hush_sealing::Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("s{i}"), "namespace": ns},
                    "data": {"v": hush_sealing::b64::encode(&value)},
                }))?;
                let sealed = hush_sealing::seal::seal_secret(&public, &secret, &mut SystemEntropy)?;
                let text = hush_sealing::codec::write_sealed_secret(
                    &sealed,
                    hush_sealing::codec::Format::Json,
                )?;
                let ss: SealedSecret = serde_json::from_str(&text)?;
                ss_api.create(&PostParams::default(), &ss).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    eprintln!("created {n} SealedSecrets in {:.1?}", t.elapsed());
    Ok((keys, app))
}

/// Polls `progress` (how many of `n` are done) every 100 ms until it reaches `n`; `Err(done)`
/// when `limit` runs out first.
async fn wait_until(
    n: usize,
    limit: Duration,
    mut progress: impl AsyncFnMut() -> Result<usize>,
) -> Result<std::result::Result<Duration, usize>> {
    let t = Instant::now();
    loop {
        let done = progress().await?;
        if done >= n {
            return Ok(Ok(t.elapsed()));
        }
        if t.elapsed() > limit {
            return Ok(Err(done));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of the test environment's processes and the controller.
fn cpu_snapshot(controller: u32) -> Vec<(&'static str, f64)> {
    let dir = std::env::var("KTE_DIR").unwrap_or_default();
    let pid_of = |name: &str| {
        std::fs::read_to_string(format!("{dir}/{name}.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
    };
    let mut out = vec![("controller", cpu_seconds(controller))];
    for (label, file) in [
        ("apiserver", "kube-apiserver"),
        ("etcd", "etcd"),
        ("kcm", "kube-controller-manager"),
    ] {
        out.push((label, pid_of(file).map_or(0.0, cpu_seconds)));
    }
    out
}

fn cpu_between(before: &[(&'static str, f64)], after: &[(&'static str, f64)]) -> String {
    before
        .iter()
        .zip(after)
        .map(|((k, a), (_, b))| format!("{k}={:.1}", b - a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One measured phase of a controller run.
struct Phase {
    time: std::result::Result<Duration, usize>,
    calls: (f64, String),
    cpu: String,
}

impl Phase {
    fn show(&self, n: usize, limit: Duration) -> String {
        let time = match self.time {
            Ok(d) => format!("{:.2}s", d.as_secs_f64()),
            Err(done) => format!(
                "unfinished: {done}/{n} in {:.0}s ({:.1}/s)",
                limit.as_secs_f64(),
                done as f64 / limit.as_secs_f64()
            ),
        };
        format!(
            "{time} api_calls={} ({:.2}/object: {}) cpu_s[{}]",
            self.calls.0,
            self.calls.0 / n as f64,
            self.calls.1,
            self.cpu
        )
    }
}

/// Runs one phase: snapshot, wait, snapshot.
async fn phase(
    client: &kube::Client,
    pid: u32,
    n: usize,
    limit: Duration,
    progress: impl AsyncFnMut() -> Result<usize>,
) -> Result<Phase> {
    let calls_before = api_calls(client, RESOURCES).await?;
    let cpu_before = cpu_snapshot(pid);
    let time = wait_until(n, limit, progress).await?;
    let cpu_after = cpu_snapshot(pid);
    let calls_after = api_calls(client, RESOURCES).await?;
    Ok(Phase {
        time,
        calls: calls_between(&calls_before, &calls_after),
        cpu: cpu_between(&cpu_before, &cpu_after),
    })
}

async fn in_cluster(client: &kube::Client, ns: &TestNamespace) -> Result<InCluster> {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let sas: Api<ServiceAccount> = ns.api();
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bitnami"}}))?,
    )
    .await?;
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    crbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"generateName": "hush-bench-bitnami-"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "bitnami", "namespace": ns.name()}],
        }))?,
    )
    .await?;
    let tr: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 7200}}))?;
    let token = sas
        .create_token_request("bitnami", &PostParams::default(), &tr)
        .await?
        .status
        .context("token status")?
        .token;
    let kc = kube::config::Kubeconfig::read_from(std::env::var("KUBECONFIG")?)?;
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("kubeconfig cluster")?;
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(data)?
        }
        (None, Some(path)) => std::fs::read(path)?,
        _ => bail!("kubeconfig has no CA"),
    };
    let url: url_lite::Url = cluster.server.as_deref().context("server")?.parse()?;
    let dir = std::env::temp_dir().join(format!("hush-bench-incluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("token"), token.context("no token")?)?;
    std::fs::write(dir.join("ca.crt"), ca)?;
    std::fs::write(dir.join("namespace"), ns.name())?;
    Ok(InCluster {
        dir,
        host: url.host,
        port: url.port,
    })
}

/// `https://host:port` split without a URL crate.
mod url_lite {
    pub(crate) struct Url {
        pub(crate) host: String,
        pub(crate) port: String,
    }
    impl std::str::FromStr for Url {
        type Err = anyhow::Error;
        fn from_str(s: &str) -> anyhow::Result<Self> {
            let rest = s.strip_prefix("https://").unwrap_or(s);
            let rest = rest.split('/').next().unwrap_or(rest);
            let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "443"));
            Ok(Self {
                host: host.to_owned(),
                port: port.to_owned(),
            })
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(hush), Some(n)) = (args.get(1), args.get(2)) else {
        bail!("usage: bench_sealed_controller HUSH_BINARY N [BITNAMI_CONTROLLER]");
    };
    let bitnami = args.get(3);
    let n: usize = n.parse().context("N")?;
    let client = client().await?;
    install_repo_crd(&client, "sealedsecrets.bitnami.com.yaml").await?;

    // One RSA-4096 key, stored as Bitnami stores it, used by both controllers.
    let (key_secret, public_key) = sealing_key()?;

    let no_limit = Duration::from_secs(3600);
    let bitnami_limit = Duration::from_secs(
        std::env::var("BITNAMI_MAX_WAIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800),
    );

    // hush.
    let (keys, app) = prepare(&client, &key_secret, &public_key, n).await?;
    let count = SecretCount::start(&client, app.name());
    let run = start(hush, keys.name(), app.name())?;
    let first = phase(&client, run.child.id(), n, no_limit, async || {
        Ok(count.get())
    })
    .await?;
    let decrypts_first = metric(run.metrics, "hush_sealed_decrypts_total").await?;
    let rss_first = stop(run)?;
    let run = start(hush, keys.name(), app.name())?;
    let port = run.metrics;
    let restart = phase(&client, run.child.id(), n, no_limit, async || {
        let seen = metric(port, "hush_sealed_unseal_skips_total")
            .await
            .unwrap_or(0.0)
            + metric(port, "hush_sealed_decrypts_total")
                .await
                .unwrap_or(0.0);
        Ok(seen as usize)
    })
    .await?;
    let decrypts_restart = metric(run.metrics, "hush_sealed_decrypts_total").await?;
    let rss_restart = stop(run)?;
    drop(count);
    println!(
        "hush n={n} first_sync={} first_sync_decrypts={decrypts_first}",
        first.show(n, no_limit)
    );
    println!(
        "hush n={n} restart={} restart_decrypts={decrypts_restart} peak_rss_mib={:.1}/{:.1}",
        restart.show(n, no_limit),
        rss_first as f64 / 1024.0,
        rss_restart as f64 / 1024.0
    );

    // Bitnami's controller, same key, same N, fresh namespaces.
    if let Some(bin) = bitnami {
        let (keys, app) = prepare(&client, &key_secret, &public_key, n).await?;
        let ic = in_cluster(&client, &keys).await?;
        let count = SecretCount::start(&client, app.name());
        let run = start_bitnami(bin, &ic, keys.name(), app.name())?;
        let first = phase(&client, run.child.id(), n, bitnami_limit, async || {
            Ok(count.get())
        })
        .await?;
        let rss_first = stop(run)?;
        println!(
            "bitnami n={n} first_sync={} peak_rss_mib={:.1}",
            first.show(n, bitnami_limit),
            rss_first as f64 / 1024.0
        );
        let run = start_bitnami(bin, &ic, keys.name(), app.name())?;
        let port = run.metrics;
        let restart = phase(&client, run.child.id(), n, bitnami_limit, async || {
            Ok(
                metric(port, "sealed_secrets_controller_unseal_requests_total")
                    .await
                    .unwrap_or(0.0) as usize,
            )
        })
        .await?;
        let rss_restart = stop(run)?;
        println!(
            "bitnami n={n} restart={} (every SealedSecret is unsealed again) peak_rss_mib={:.1}",
            restart.show(n, bitnami_limit),
            rss_restart as f64 / 1024.0
        );
        std::fs::remove_dir_all(&ic.dir)?;
    }
    Ok(())
}
