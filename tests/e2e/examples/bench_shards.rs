//! Benchmark of `hush controller --shards` on the real API server (run by hand through
//! `scripts/bench-shards.sh`, which starts the test environment with audit logging and builds the
//! binary).
//!
//! `N` SealedSecrets (one 32-byte value each, RSA-4096, one key made beforehand) are created
//! before the controllers start, once for one unsharded replica and once, in fresh namespaces, for
//! `REPLICAS` replicas with `--shards SHARDS`. Measured for each: time until every Secret exists,
//! RSA decrypts summed over the replicas, API calls (the API server's `apiserver_request_total`
//! for secrets, sealedsecrets and events, reads and writes, not LIST/WATCH), controller CPU seconds
//! summed over replicas, and each replica's peak RSS (VmHWM). Then one replica is SIGKILLed and
//! `N / 10` more SealedSecrets are created at once: time until the survivors hold every shard
//! (their `hush_shards_owned`) and until every new Secret exists. Finally, from the audit log
//! (`AUDIT_LOG`, Metadata level): Secrets created per name in the sharded namespace (each must be
//! created once) and Secret updates there (expected 0).
//!
//! `bench_shards HUSH_BINARY N REPLICAS SHARDS`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures::{StreamExt as _, stream};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_testkit::apiserver::{api_calls, calls_between};
use hush_testkit::process::{free_port, vm_hwm_kib};
use hush_testkit::{TestNamespace, client, install_repo_crd};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::core::PartialObjectMeta;
use serde_json::{Value, json};

/// What the controller's reconciles touch on the API server.
const RESOURCES: &[&str] = &["secrets", "sealedsecrets", "events"];

async fn metric(port: u16, name: &str) -> Result<f64> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

struct Replica {
    child: Child,
    metrics: u16,
}

/// One controller process: unsharded without leader election, or replica `id` of `shards`.
fn start(hush: &str, key_ns: &str, app_ns: &str, shards: Option<(&str, u32)>) -> Result<Replica> {
    let metrics = free_port()?;
    let api = free_port()?;
    let mut cmd = Command::new(hush);
    cmd.args([
        "controller",
        "--key-namespace",
        key_ns,
        "--all-namespaces=false",
        "--additional-namespaces",
        app_ns,
        "--key-renew-period=0",
        "--log-level=warn",
        "--listen-addr",
        &format!("127.0.0.1:{api}"),
        "--listen-metrics-addr",
        &format!("127.0.0.1:{metrics}"),
    ]);
    match shards {
        None => {
            cmd.arg("--leader-elect=false");
        }
        Some((id, count)) => {
            cmd.args([
                "--leader-elect=true",
                "--leader-election-identity",
                id,
                &format!("--shards={count}"),
            ]);
        }
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting hush controller")?;
    Ok(Replica { child, metrics })
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {sig} {pid}");
    Ok(())
}

/// SIGTERM; returns the peak RSS in KiB.
fn stop(mut r: Replica) -> Result<u64> {
    let pid = r.child.id();
    let hwm = vm_hwm_kib(pid).unwrap_or(0);
    signal(pid, "-TERM")?;
    let code = r.child.wait()?;
    ensure!(code.success(), "controller exited with {code}");
    Ok(hwm)
}

fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
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

async fn create_sealed(
    api: &Api<SealedSecret>,
    ns: &str,
    public: &hush_crypto::rsa::RsaPublicKey,
    names: std::ops::Range<usize>,
) -> Result<()> {
    let results: Vec<Result<()>> = stream::iter(names)
        .map(|i| {
            let api = api.clone();
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
                api.create(&PostParams::default(), &ss).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Fresh key and app namespaces with the key Secret and `n` SealedSecrets.
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
    create_sealed(&app.api(), app.name(), public, 0..n).await?;
    eprintln!("created {n} SealedSecrets in {:.1?}", t.elapsed());
    Ok((keys, app))
}

/// Counts the distinct Secrets in a namespace from one metadata watch.
struct SecretCount(
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
);

impl SecretCount {
    fn start(client: &kube::Client, namespace: &str) -> Self {
        use kube::runtime::{WatchStreamExt as _, watcher};
        let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), namespace);
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let task = tokio::spawn(async move {
            let mut names = std::collections::HashSet::new();
            let mut stream = std::pin::pin!(
                watcher::watcher(api, watcher::Config::default())
                    .default_backoff()
                    .applied_objects()
            );
            while let Some(item) = stream.next().await {
                if let Ok(secret) = item {
                    names.insert(secret.metadata.name.unwrap_or_default());
                    seen.store(names.len(), std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        Self(count, task)
    }

    fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for SecretCount {
    fn drop(&mut self) {
        self.1.abort();
    }
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> Result<bool>) -> Result<Duration> {
    let t = Instant::now();
    while !done().await? {
        if t.elapsed() > Duration::from_secs(3600) {
            bail!("{what}: not within an hour");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(t.elapsed())
}

async fn sum(replicas: &[Replica], name: &str) -> f64 {
    let mut total = 0.0;
    for r in replicas {
        total += metric(r.metrics, name).await.unwrap_or(0.0);
    }
    total
}

/// Secret creates (201) per name and Secret updates/patches in `ns`, from the audit log.
fn audit_writes(path: &str, ns: &str) -> Result<(BTreeMap<String, usize>, usize)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("audit log {path}"))?;
    let mut creates: BTreeMap<String, usize> = BTreeMap::new();
    let mut updates = 0;
    for event in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let object = &event["objectRef"];
        if event["stage"] != "ResponseComplete"
            || object["resource"] != "secrets"
            || object["namespace"] != ns
        {
            continue;
        }
        match event["verb"].as_str() {
            Some("create") if event["responseStatus"]["code"] == 201 => {
                let name = object["name"].as_str().unwrap_or("?").to_owned();
                *creates.entry(name).or_default() += 1;
            }
            Some("update" | "patch") => updates += 1,
            _ => {}
        }
    }
    Ok((creates, updates))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(hush), Some(n), Some(replicas), Some(shards)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        bail!("usage: bench_shards HUSH_BINARY N REPLICAS SHARDS");
    };
    let (n, replicas, shards): (usize, usize, u32) =
        (n.parse()?, replicas.parse()?, shards.parse()?);
    let client = client().await?;
    install_repo_crd(&client, "sealedsecrets.bitnami.com.yaml").await?;
    let key = hush_crypto::rsa::RsaPrivateKey::generate(4096)?;
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let cert = hush_crypto::cert::self_signed(&key, "", now, now + 3600, &mut SystemEntropy)?;
    let key_secret = Secret {
        metadata: kube::api::ObjectMeta {
            generate_name: Some("sealed-secrets-key".into()),
            labels: Some(BTreeMap::from([(
                "sealedsecrets.bitnami.com/sealed-secrets-key".to_owned(),
                "active".to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.to_pem().into_bytes())),
            (
                "tls.key".to_owned(),
                ByteString(key.to_pkcs1_pem()?.expose().to_vec()),
            ),
        ])),
        ..Default::default()
    };

    // One replica, no sharding.
    let (keys, app) = prepare(&client, &key_secret, &cert.public_key, n).await?;
    let count = SecretCount::start(&client, app.name());
    let calls_before = api_calls(&client, RESOURCES).await?;
    let one = start(hush, keys.name(), app.name(), None)?;
    let took = wait_until("one replica's first sync", async || Ok(count.get() >= n)).await?;
    let calls = calls_between(&calls_before, &api_calls(&client, RESOURCES).await?);
    let decrypts = metric(one.metrics, "hush_sealed_decrypts_total").await?;
    let cpu = cpu_seconds(one.child.id());
    let rss = stop(one)?;
    drop(count);
    println!(
        "one replica: n={n} first_sync={:.1}s decrypts={decrypts} api_calls={} ({:.2}/object) cpu_s={cpu:.1} peak_rss_mib={:.1}",
        took.as_secs_f64(),
        calls.0,
        calls.0 / n as f64,
        rss as f64 / 1024.0
    );
    let single_rss = rss as f64;

    // REPLICAS replicas, --shards SHARDS, fresh namespaces.
    let (keys, app) = prepare(&client, &key_secret, &cert.public_key, n).await?;
    let count = SecretCount::start(&client, app.name());
    let calls_before = api_calls(&client, RESOURCES).await?;
    let mut running = Vec::new();
    for i in 0..replicas {
        running.push(start(
            hush,
            keys.name(),
            app.name(),
            Some((&format!("r{i}"), shards)),
        )?);
    }
    let took = wait_until("the replicas' first sync", async || Ok(count.get() >= n)).await?;
    let calls = calls_between(&calls_before, &api_calls(&client, RESOURCES).await?);
    let mut per = Vec::new();
    for r in &running {
        per.push(format!(
            "{}",
            metric(r.metrics, "hush_sealed_decrypts_total").await?
        ));
    }
    let decrypts = sum(&running, "hush_sealed_decrypts_total").await;
    let owned: Vec<String> = {
        let mut v = Vec::new();
        for r in &running {
            v.push(format!("{}", metric(r.metrics, "hush_shards_owned").await?));
        }
        v
    };
    let cpu: f64 = running.iter().map(|r| cpu_seconds(r.child.id())).sum();
    let rss: Vec<u64> = running
        .iter()
        .map(|r| vm_hwm_kib(r.child.id()).unwrap_or(0))
        .collect();
    let max_rss = rss.iter().copied().max().unwrap_or(0) as f64;
    println!(
        "{replicas} replicas --shards {shards}: n={n} first_sync={:.1}s decrypts={decrypts} (per replica {}) shards_owned={} api_calls={} ({:.2}/object) cpu_s_sum={cpu:.1} peak_rss_mib={} (max = {:.0}% of one replica)",
        took.as_secs_f64(),
        per.join("/"),
        owned.join("/"),
        calls.0,
        calls.0 / n as f64,
        rss.iter()
            .map(|k| format!("{:.1}", *k as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join("/"),
        100.0 * max_rss / single_rss
    );

    // SIGKILL one replica and create N / 10 more at once.
    let mut killed = running.remove(0);
    signal(killed.child.id(), "-KILL")?;
    let _ = killed.child.wait();
    let t = Instant::now();
    let more = n / 10;
    let api: Api<SealedSecret> = app.api();
    let created = create_sealed(&api, app.name(), &cert.public_key, n..n + more);
    let held = async {
        wait_until("the shards held again", async || {
            Ok(sum(&running, "hush_shards_owned").await >= f64::from(shards))
        })
        .await
    };
    let (created, held) = futures::join!(created, held);
    created?;
    let held = held?;
    wait_until("the new objects synced", async || {
        Ok(count.get() >= n + more)
    })
    .await?;
    let synced = t.elapsed();
    println!(
        "SIGKILL r0 after the first sync: survivors hold all {shards} shards after {:.1}s; {more} SealedSecrets created after the kill all synced {:.1}s after it",
        held.as_secs_f64(),
        synced.as_secs_f64()
    );
    drop(count);
    let mut survivors_rss = Vec::new();
    for r in running {
        survivors_rss.push(format!("{:.1}", stop(r)? as f64 / 1024.0));
    }
    println!("survivors' peak RSS MiB: {}", survivors_rss.join("/"));
    if let Ok(path) = std::env::var("AUDIT_LOG") {
        let (creates, updates) = audit_writes(&path, app.name())?;
        let twice = creates.values().filter(|&&c| c > 1).count();
        println!(
            "audit log, sharded namespace: {} Secrets created ({} expected), {twice} created more than once, {updates} Secret updates/patches",
            creates.values().sum::<usize>(),
            n + more
        );
    }
    Ok(())
}
