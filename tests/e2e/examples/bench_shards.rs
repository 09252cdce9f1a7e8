//! Benchmark of `hush controller --shards` on the real API server (run by hand through
//! `scripts/bench-shards.sh`, which starts the test environment with audit logging, OpenBao for
//! the `external` workload, and builds the binary).
//!
//! Two workloads share the phases below: `sealed` (SealedSecrets, one 32-byte value each,
//! RSA-4096, one key made beforehand; [`sealed`]) and `external` (ExternalSecrets over `KEYS`
//! distinct OpenBao KV v2 keys through one SecretStore with token auth; [`external`]). Objects are
//! created before the controllers start, each phase in fresh namespaces:
//!
//! 1. one unsharded replica;
//! 2. `REPLICAS` replicas with `--shards SHARDS`; after their first sync one replica is
//!    SIGKILLed and `N / 10` more objects are created at once;
//! 3. `REPLICAS` replicas again, one of them SIGKILLed **during** the first sync (once half the
//!    objects are synced).
//!
//! Measured in each: time until every target Secret exists (one Secret watch), the workload's
//! expensive operation summed over replicas (decrypts; provider calls), API calls (the API
//! server's `apiserver_request_total` for the workload's resources, reads and writes, not
//! LIST/WATCH), controller CPU seconds summed over replicas, each replica's peak RSS (VmHWM) and
//! peak `RssAnon` (sampled every 100 ms: its data without the binary's pages);
//! after a kill: time until the survivors hold every shard (their `hush_shards_owned`) and until
//! every object is synced. From the API server's audit log (`AUDIT_LOG`, Metadata level): Secrets
//! created per name in a phase's namespace (each must be created once) and Secret updates there.
//! The `external` workload also measures one refresh wave (provider reads from OpenBao's audit
//! log, per distinct key).
//!
//! `bench_shards sealed HUSH_BINARY N REPLICAS SHARDS [N_DURING]`
//! `bench_shards external HUSH_BINARY N REPLICAS SHARDS [N_DURING] [KEYS] [REFRESH_S]`
//! (external: `HUSH_VAULT_ADDR`, `HUSH_VAULT_TOKEN`, `HUSH_VAULT_AUDIT_LOG` from
//! `scripts/services/openbao.sh`). `N_DURING` (default `N`) is the size of phase 3; 0 skips it.
//! `BENCH_SINGLE_RSS_MIB=<RSS>/<anon>` skips phase 1 (the single replica's peak RSS and peak
//! `RssAnon` in MiB from an earlier run are the percentages' base), `BENCH_SKIP_AFTER=1` skips phase 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bench_shards/external.rs"]
mod external;
#[path = "bench_shards/sealed.rs"]
mod sealed;
#[path = "common/sealed_bench.rs"]
mod sealed_bench;
#[path = "common/vault.rs"]
mod vault;

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use hush_testkit::TestNamespace;
use hush_testkit::apiserver::{api_calls, calls_between};
use hush_testkit::process::{cpu_seconds, free_port, vm_hwm_kib};
use serde_json::Value;

use sealed_bench::SecretCount;

/// One phase's namespaces: the Leases' (and sealing keys') and the objects'.
pub(crate) struct World {
    pub(crate) leases: TestNamespace,
    pub(crate) app: TestNamespace,
}

/// What differs between the SealedSecret and the ExternalSecret benchmark.
pub(crate) trait Workload {
    /// The object kind, for the report.
    const KIND: &'static str;
    /// The API resources the controller's reconciles touch.
    const RESOURCES: &'static [&'static str];
    /// The per-replica counter of the expensive operation (decrypts, provider calls).
    const WORK: &'static str;

    /// Fresh namespaces with what the controller needs besides the objects.
    async fn world(&self, client: &kube::Client) -> Result<World>;
    /// Creates the objects `names` (their target Secrets have the same names).
    async fn create(&self, world: &World, names: Range<usize>) -> Result<()>;
    /// `hush controller` with the workload's flags for `world` (no listen, leader or shard flags).
    fn command(&self, hush: &str, world: &World) -> Command;
    /// Provider-side position to count from (`None`: no provider).
    fn provider_mark(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Provider requests since `mark`, for the report.
    fn provider_report(&self, _mark: u64) -> Result<String> {
        Ok(String::new())
    }
    /// Measured after a first sync, while the replicas run (the external refresh wave).
    async fn after_first_sync(&self, _world: &World, _replicas: &[Replica]) -> Result<()> {
        Ok(())
    }
}

pub(crate) async fn metric(port: u16, name: &str) -> Result<f64> {
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

pub(crate) struct Replica {
    child: Child,
    metrics: u16,
    /// Peak `RssAnon` in KiB, sampled every 100 ms: the memory that is the process's data,
    /// without the binary's pages (which dominate a debug build's RSS).
    anon_kib: std::sync::Arc<std::sync::atomic::AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Replica {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak RSS (VmHWM) in MiB.
    fn rss_mib(&self) -> f64 {
        vm_hwm_kib(self.pid()).unwrap_or(0) as f64 / 1024.0
    }

    /// Peak sampled `RssAnon` in MiB.
    fn anon_mib(&self) -> f64 {
        self.anon_kib.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

fn rss_anon_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One controller process: unsharded without leader election, or replica `id` of `shards`.
fn start(
    workload: &impl Workload,
    hush: &str,
    world: &World,
    shards: Option<(&str, u32)>,
) -> Result<Replica> {
    let metrics = free_port()?;
    let mut cmd = workload.command(hush, world);
    cmd.args([
        "--log-level=warn",
        "--leader-election-namespace",
        world.leases.name(),
        "--listen-addr",
        &format!("127.0.0.1:{}", free_port()?),
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
    let anon_kib = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (pid, peak) = (child.id(), anon_kib.clone());
        tokio::spawn(async move {
            while let Some(kib) = rss_anon_kib(pid) {
                peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    Ok(Replica {
        child,
        metrics,
        anon_kib,
        sampler,
    })
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {sig} {pid}");
    Ok(())
}

/// SIGTERM; returns the peak RSS and peak anonymous RSS in MiB.
fn stop(mut r: Replica) -> Result<(f64, f64)> {
    let rss = (r.rss_mib(), r.anon_mib());
    signal(r.pid(), "-TERM")?;
    let code = r.child.wait()?;
    ensure!(code.success(), "controller exited with {code}");
    Ok(rss)
}

/// SIGKILL; returns what its counters and memory showed just before.
async fn kill(mut r: Replica, work: &str) -> Result<(f64, (f64, f64))> {
    let done = metric(r.metrics, work).await.unwrap_or(0.0);
    let rss = (r.rss_mib(), r.anon_mib());
    signal(r.pid(), "-KILL")?;
    let _ = r.child.wait();
    Ok((done, rss))
}

pub(crate) async fn wait_until(
    what: &str,
    mut done: impl AsyncFnMut() -> Result<bool>,
) -> Result<Duration> {
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

async fn per_replica(replicas: &[Replica], name: &str) -> String {
    let mut v = Vec::new();
    for r in replicas {
        v.push(format!("{}", metric(r.metrics, name).await.unwrap_or(0.0)));
    }
    v.join("/")
}

fn mib(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// "rss/anon" per replica.
fn mib_pairs(values: &[(f64, f64)]) -> String {
    let (rss, anon): (Vec<f64>, Vec<f64>) = values.iter().copied().unzip();
    format!("peak_rss_mib={} peak_anon_mib={}", mib(&rss), mib(&anon))
}

/// Secret creates (201) per name and Secret updates/patches in `ns`, from the audit log.
fn audit_writes(path: &str, ns: &str) -> Result<(BTreeMap<String, usize>, usize)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("audit log {path}"))?;
    let mut creates: BTreeMap<String, usize> = BTreeMap::new();
    let mut updates = 0;
    for event in text
        .lines()
        .filter(|l| l.contains(ns))
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

fn report_audit(world: &World, expected: usize) -> Result<()> {
    let Ok(path) = std::env::var("AUDIT_LOG") else {
        return Ok(());
    };
    let (creates, updates) = audit_writes(&path, world.app.name())?;
    let twice = creates.values().filter(|&&c| c > 1).count();
    println!(
        "  audit log: {} Secrets created ({expected} expected), {twice} created more than once, {updates} Secret updates/patches",
        creates.values().sum::<usize>(),
    );
    Ok(())
}

/// What a first sync cost, measured when it ends.
struct FirstSync {
    took: Duration,
    calls: f64,
    detail: String,
    provider: String,
}

/// Waits until `want` target Secrets exist; API calls and provider requests since the start.
async fn first_sync<W: Workload>(
    w: &W,
    client: &kube::Client,
    count: &SecretCount,
    want: usize,
    from: (Instant, BTreeMap<String, f64>, Option<u64>),
) -> Result<FirstSync> {
    let (started, calls_before, mark) = from;
    wait_until("the first sync", async || Ok(count.get() >= want)).await?;
    let took = started.elapsed();
    let (calls, detail) = calls_between(&calls_before, &api_calls(client, W::RESOURCES).await?);
    let provider = match mark {
        Some(m) => w.provider_report(m)?,
        None => String::new(),
    };
    Ok(FirstSync {
        took,
        calls,
        detail,
        provider,
    })
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn prepared<W: Workload>(w: &W, client: &kube::Client, n: usize) -> Result<World> {
    let world = w.world(client).await?;
    let t = Instant::now();
    w.create(&world, 0..n).await?;
    eprintln!("created {n} {}s in {:.1?}", W::KIND, t.elapsed());
    Ok(world)
}

/// Phase 1: one unsharded replica. Returns its peak RSS and peak anonymous RSS in MiB.
async fn one_replica<W: Workload>(
    w: &W,
    hush: &str,
    client: &kube::Client,
    n: usize,
) -> Result<(f64, f64)> {
    let world = prepared(w, client, n).await?;
    let count = SecretCount::start(client, world.app.name());
    println!("one replica, n={n}: load average before {}", load());
    let from = (
        Instant::now(),
        api_calls(client, W::RESOURCES).await?,
        w.provider_mark()?,
    );
    let one = start(w, hush, &world, None)?;
    let sync = first_sync(w, client, &count, n, from).await?;
    let work = metric(one.metrics, W::WORK).await?;
    let cpu = cpu_seconds(one.pid()).unwrap_or(0.0);
    let (rss, anon) = (one.rss_mib(), one.anon_mib());
    println!(
        "  first_sync={:.1}s {}={work} api_calls={} ({:.2}/{}; {}) cpu_s={cpu:.1} peak_rss_mib={rss:.1} peak_anon_mib={anon:.1} {}",
        sync.took.as_secs_f64(),
        W::WORK,
        sync.calls,
        sync.calls / n as f64,
        W::KIND,
        sync.detail,
        sync.provider,
    );
    w.after_first_sync(&world, std::slice::from_ref(&one))
        .await?;
    let rss = stop(one)?;
    println!(
        "  at stop: {}; load average after {}",
        mib_pairs(&[rss]),
        load()
    );
    report_audit(&world, n)?;
    Ok(rss)
}

/// When phase 2 or 3 kills a replica.
#[derive(Clone, Copy, PartialEq)]
enum Kill {
    /// After the first sync, then `N / 10` more objects at once.
    After,
    /// Once half the objects are synced.
    During,
}

/// Phases 2 and 3: `replicas` replicas with `--shards shards`, one of them SIGKILLed.
async fn sharded<W: Workload>(
    w: &W,
    hush: &str,
    client: &kube::Client,
    n: usize,
    (replicas, shards): (usize, u32),
    single: (f64, f64),
    when: Kill,
) -> Result<()> {
    let world = prepared(w, client, n).await?;
    let count = SecretCount::start(client, world.app.name());
    let phase = match when {
        Kill::After => "SIGKILL after the first sync",
        Kill::During => "SIGKILL during the first sync",
    };
    println!(
        "{replicas} replicas --shards {shards}, n={n}, {phase}: load average before {}",
        load()
    );
    let from = (
        Instant::now(),
        api_calls(client, W::RESOURCES).await?,
        w.provider_mark()?,
    );
    let mut running = Vec::new();
    for i in 0..replicas {
        running.push(start(w, hush, &world, Some((&format!("r{i}"), shards)))?);
    }
    if when == Kill::During {
        wait_until("half the first sync", async || Ok(count.get() >= n / 2)).await?;
        let at = count.get();
        let (done, rss) = kill(running.remove(0), W::WORK).await?;
        let killed = Instant::now();
        println!(
            "  r0 SIGKILLed at {at} of {n} synced ({:.1}s after start), having done {}={done}, {}",
            from.0.elapsed().as_secs_f64(),
            W::WORK,
            mib_pairs(&[rss])
        );
        let held = wait_until("the shards held again", async || {
            Ok(sum(&running, "hush_shards_owned").await >= f64::from(shards))
        })
        .await?;
        let sync = first_sync(w, client, &count, n, from).await?;
        let after_kill = killed.elapsed();
        let work = sum(&running, W::WORK).await;
        let cpu: f64 = running
            .iter()
            .map(|r| cpu_seconds(r.pid()).unwrap_or(0.0))
            .sum();
        println!(
            "  survivors hold all {shards} shards {:.1}s after the kill; all {n} synced {:.1}s after it (first_sync={:.1}s from start); {}: survivors {} + r0 {done} = {} ({} more than n) api_calls={} ({:.2}/{}; {}) survivors' cpu_s={cpu:.1} {}",
            held.as_secs_f64(),
            after_kill.as_secs_f64(),
            sync.took.as_secs_f64(),
            W::WORK,
            per_replica(&running, W::WORK).await,
            work + done,
            work + done - n as f64,
            sync.calls,
            sync.calls / n as f64,
            W::KIND,
            sync.detail,
            sync.provider,
        );
        let mut rss = Vec::new();
        for r in running {
            rss.push(stop(r)?);
        }
        println!(
            "  survivors' {}; load average after {}",
            mib_pairs(&rss),
            load()
        );
        report_audit(&world, n)?;
        return Ok(());
    }

    let sync = first_sync(w, client, &count, n, from).await?;
    let work = sum(&running, W::WORK).await;
    let cpu: f64 = running
        .iter()
        .map(|r| cpu_seconds(r.pid()).unwrap_or(0.0))
        .sum();
    let rss: Vec<(f64, f64)> = running
        .iter()
        .map(|r| (r.rss_mib(), r.anon_mib()))
        .collect();
    let max_rss = rss.iter().map(|r| r.0).fold(0.0, f64::max);
    let max_anon = rss.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "  first_sync={:.1}s {}={work} (per replica {}) shards_owned={} handovers={} api_calls={} ({:.2}/{}; {}) cpu_s_sum={cpu:.1} {} (max = {:.0}% / {:.0}% of one replica) {}",
        sync.took.as_secs_f64(),
        W::WORK,
        per_replica(&running, W::WORK).await,
        per_replica(&running, "hush_shards_owned").await,
        per_replica(&running, "hush_shard_handovers_total").await,
        sync.calls,
        sync.calls / n as f64,
        W::KIND,
        sync.detail,
        mib_pairs(&rss),
        100.0 * max_rss / single.0,
        100.0 * max_anon / single.1,
        sync.provider,
    );
    w.after_first_sync(&world, &running).await?;

    // SIGKILL one replica and create N / 10 more at once.
    kill(running.remove(0), W::WORK).await?;
    let t = Instant::now();
    let more = n / 10;
    let created = w.create(&world, n..n + more);
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
        "  SIGKILL r0: survivors hold all {shards} shards after {:.1}s; {more} {}s created after the kill all synced {:.1}s after it",
        held.as_secs_f64(),
        W::KIND,
        synced.as_secs_f64()
    );
    drop(count);
    let mut survivors_rss = Vec::new();
    for r in running {
        survivors_rss.push(stop(r)?);
    }
    println!(
        "  survivors' {}; load average after {}",
        mib_pairs(&survivors_rss),
        load()
    );
    report_audit(&world, n + more)?;
    Ok(())
}

async fn run<W: Workload>(w: &W, hush: &str, args: &[String]) -> Result<()> {
    let arg = |i: usize, default: Option<usize>| -> Result<usize> {
        match (args.get(i), default) {
            (Some(v), _) => v.parse().with_context(|| format!("argument {i}: {v:?}")),
            (None, Some(d)) => Ok(d),
            (None, None) => bail!("argument {i} missing"),
        }
    };
    let (n, replicas, shards) = (arg(0, None)?, arg(1, None)?, arg(2, None)?);
    let during = arg(3, Some(n))?;
    let shards = u32::try_from(shards)?;
    let client = hush_testkit::client().await?;
    // BENCH_SINGLE_RSS_MIB skips phase 1 (its peak RSS from an earlier run); BENCH_SKIP_AFTER=1
    // skips phase 2.
    let single = match std::env::var("BENCH_SINGLE_RSS_MIB") {
        Ok(v) => {
            let (rss, anon) = v
                .split_once('/')
                .context("BENCH_SINGLE_RSS_MIB=<peak RSS>/<peak anon RSS>")?;
            (rss.parse()?, anon.parse()?)
        }
        Err(_) => one_replica(w, hush, &client, n).await?,
    };
    if std::env::var("BENCH_SKIP_AFTER").as_deref() != Ok("1") {
        sharded(w, hush, &client, n, (replicas, shards), single, Kill::After).await?;
    }
    if during > 0 {
        sharded(
            w,
            hush,
            &client,
            during,
            (replicas, shards),
            single,
            Kill::During,
        )
        .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_shards sealed|external HUSH_BINARY N REPLICAS SHARDS [N_DURING] [KEYS REFRESH_S]";
    let (Some(kind), Some(hush)) = (args.get(1), args.get(2)) else {
        bail!("{usage}");
    };
    let rest = &args[3..];
    let client = hush_testkit::client().await?;
    match kind.as_str() {
        "sealed" => run(&sealed::Sealed::new(&client).await?, hush, rest).await,
        "external" => {
            let keys = rest.get(4).map_or(Ok(500), |k| k.parse())?;
            let refresh = rest.get(5).map_or(Ok(60), |k| k.parse())?;
            run(
                &external::External::new(&client, keys, refresh).await?,
                hush,
                rest,
            )
            .await
        }
        _ => bail!("{usage}"),
    }
}
