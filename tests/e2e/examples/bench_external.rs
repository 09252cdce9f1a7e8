//! Benchmark of an ExternalSecret controller — `hush controller --controllers external` or the real
//! External Secrets Operator — on a fresh API server with a private OpenBao that has a file audit
//! device (run by hand through `scripts/bench-external.sh`, which starts both per controller).
//!
//! `N` ExternalSecrets (default 1000) in `NS` namespaces (default 10) read `KEYS` distinct Vault
//! KV v2 keys (default 100) through one ClusterSecretStore with AppRole auth (for hush a secret
//! id that may be used once; ESO logs in on every reconcile, so for ESO an unlimited one). They
//! exist before the controller starts. Measured:
//! 1. initial sync: time from the controller's start until every ExternalSecret is
//!    `Ready=True`, and the Vault requests it took (from the audit log);
//! 2. one periodic full refresh (`refreshInterval` = `REFRESH` seconds, default 30): the Vault
//!    requests until every ExternalSecret has a newer `refreshTime`, how long the wave took, and
//!    how long a new ExternalSecret created when the wave starts waits for `Ready`;
//! 3. the controller's CPU time and peak RSS.
//!
//! The last line is `RESULT key=value …` for the script's table.
//!
//! `bench_external CONTROLLER VAULT_ADDR VAULT_TOKEN AUDIT_LOG [N] [NS] [KEYS] [REFRESH]` with
//! CONTROLLER `hush=PATH` or `eso=PATH[:CONCURRENT]` (ESO's binary, its CRD bundle in
//! `crds/bundle.yaml` next to it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/vault.rs"]
mod vault;

use anyhow::{Context as _, Result, bail, ensure};
use futures::{StreamExt as _, TryStreamExt as _, stream};
use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret};
use hush_testkit::apiserver::{api_calls, calls_between};
use hush_testkit::process::{cpu_seconds, free_port, vm_hwm_kib};
use hush_testkit::{
    DEFAULT_CRD_TIMEOUT, TestNamespace, client, install_crd_file, install_repo_crd,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use vault::{Vault, audit_counts, audit_len};

const LABEL: &str = "hush-bench=external";

fn ready(es: &ExternalSecret) -> bool {
    es.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn refresh_time(es: &ExternalSecret) -> Option<String> {
    es.status.as_ref().and_then(|s| s.refresh_time.clone())
}

async fn list(api: &Api<ExternalSecret>) -> Result<Vec<ExternalSecret>> {
    Ok(api.list(&ListParams::default().labels(LABEL)).await?.items)
}

fn es_object(name: &str, store: &str, key: &str, refresh: u64) -> Result<ExternalSecret> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name, "labels": {"hush-bench": "external"}},
        "spec": {"refreshInterval": format!("{refresh}s"),
            "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
            "data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}
    }))?)
}

/// The controller under test.
enum Subject {
    Hush { binary: String },
    Eso { binary: String, concurrent: u32 },
}

impl Subject {
    fn parse(arg: &str) -> Result<Self> {
        match arg.split_once('=') {
            Some(("hush", binary)) => Ok(Self::Hush {
                binary: binary.to_owned(),
            }),
            Some(("eso", rest)) => {
                let (binary, concurrent) = match rest.rsplit_once(':') {
                    Some((b, c)) => (b, c.parse().with_context(|| format!("concurrency {c:?}"))?),
                    None => (rest, 1),
                };
                Ok(Self::Eso {
                    binary: binary.to_owned(),
                    concurrent,
                })
            }
            _ => bail!("CONTROLLER must be hush=PATH or eso=PATH[:CONCURRENT], not {arg:?}"),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Hush { .. } => "hush".into(),
            Self::Eso { concurrent, .. } => format!("eso-concurrent-{concurrent}"),
        }
    }

    /// The CRDs the controller ships (hush's copies, or ESO's bundle).
    async fn install_crds(&self, client: &kube::Client) -> Result<()> {
        match self {
            Self::Hush { .. } => {
                for f in [
                    "externalsecrets.external-secrets.io.yaml",
                    "secretstores.external-secrets.io.yaml",
                    "clustersecretstores.external-secrets.io.yaml",
                    "clusterexternalsecrets.external-secrets.io.yaml",
                ] {
                    install_repo_crd(client, f).await?;
                }
            }
            Self::Eso { binary, .. } => {
                let bundle = std::path::Path::new(binary)
                    .parent()
                    .context("ESO binary without a directory")?
                    .join("crds/bundle.yaml");
                install_crd_file(client, &bundle, DEFAULT_CRD_TIMEOUT).await?;
            }
        }
        Ok(())
    }

    /// How often the AppRole secret id may be used: hush logs in once per credential; ESO on
    /// every reconcile.
    fn secret_id_uses(&self) -> u32 {
        match self {
            Self::Hush { .. } => 1,
            Self::Eso { .. } => 0,
        }
    }

    fn start(&self) -> Result<Child> {
        let metrics = free_port()?;
        let mut cmd = match self {
            Self::Hush { binary } => {
                let mut cmd = Command::new(binary);
                cmd.args([
                    "controller",
                    "--controllers=external",
                    "--leader-elect=false",
                    "--log-level=warn",
                    "--listen-addr",
                    &format!("127.0.0.1:{}", free_port()?),
                    "--listen-metrics-addr",
                    &format!("127.0.0.1:{metrics}"),
                ]);
                cmd
            }
            Self::Eso { binary, concurrent } => {
                let mut cmd = Command::new(binary);
                cmd.args([
                    "--concurrent",
                    &concurrent.to_string(),
                    "--loglevel=warn",
                    "--metrics-addr",
                    &format!("127.0.0.1:{metrics}"),
                ]);
                cmd
            }
        };
        cmd.stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.name()))
    }
}

/// What the controller's reconciles touch on the API server.
const RESOURCES: &[&str] = &[
    "secrets",
    "externalsecrets",
    "secretstores",
    "clustersecretstores",
    "events",
];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        bail!(
            "usage: bench_external CONTROLLER VAULT_ADDR VAULT_TOKEN AUDIT_LOG [N] [NS] [KEYS] [REFRESH]"
        );
    }
    let (subject, audit) = (Subject::parse(&args[1])?, args[4].clone());
    let arg = |i: usize, default: u64| -> Result<u64> {
        args.get(i).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("argument {i}: {v:?}"))
        })
    };
    let (n, namespaces, keys, refresh) = (arg(5, 1000)?, arg(6, 10)?, arg(7, 100)?, arg(8, 30)?);
    let vault = Vault::new(&args[2], &args[3]);
    let client = client().await?;
    subject.install_crds(&client).await?;

    // Vault: KEYS secrets, a read policy, AppRole.
    stream::iter(0..=keys)
        .map(|i| {
            let vault = &vault;
            async move {
                let key = if i == keys {
                    "new".to_owned()
                } else {
                    format!("k{i}")
                };
                vault
                    .call(
                        reqwest::Method::POST,
                        &format!("secret/data/bench/{key}"),
                        Some(json!({"data": {"v": format!("value-{key}")}})),
                    )
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    vault.call(reqwest::Method::POST, "sys/policies/acl/bench", Some(json!({"policy":
        "path \"secret/data/bench/*\" { capabilities = [\"read\"] }\npath \"auth/token/lookup-self\" { capabilities = [\"read\"] }"}))).await?;
    vault
        .call(
            reqwest::Method::POST,
            "sys/auth/approle",
            Some(json!({"type": "approle"})),
        )
        .await?;
    vault
        .call(
            reqwest::Method::POST,
            "auth/approle/role/bench",
            Some(json!({
        "token_policies": ["bench"], "token_ttl": "1h",
        "secret_id_num_uses": subject.secret_id_uses()})),
        )
        .await?;
    let role_id = vault
        .call(
            reqwest::Method::GET,
            "auth/approle/role/bench/role-id",
            None,
        )
        .await?["data"]["role_id"]
        .as_str()
        .context("no role_id")?
        .to_owned();
    let secret_id = vault
        .call(
            reqwest::Method::POST,
            "auth/approle/role/bench/secret-id",
            Some(json!({})),
        )
        .await?["data"]["secret_id"]
        .as_str()
        .context("no secret_id")?
        .to_owned();

    // Kubernetes: the credential, the store, N ExternalSecrets in NS namespaces.
    let creds = TestNamespace::create(&client, "bench-creds").await?;
    let secret: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "approle"}, "stringData": {"secret-id": secret_id}}))?;
    creds
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let store = format!("{}-vault", creds.name());
    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    css.create(&PostParams::default(), &serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": store},
        "spec": {"provider": {"vault": {"server": vault.addr, "path": "secret", "version": "v2",
            "auth": {"appRole": {"roleId": role_id,
                "secretRef": {"name": "approle", "key": "secret-id", "namespace": creds.name()}}}}}}}))?).await?;
    let mut nss = Vec::new();
    for _ in 0..namespaces {
        nss.push(TestNamespace::create(&client, "bench-es").await?);
    }
    let created = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api: Api<ExternalSecret> = nss[usize::try_from(i % namespaces).unwrap()].api();
            let store = store.clone();
            async move {
                let es = es_object(
                    &format!("es-{i}"),
                    &store,
                    &format!("bench/k{}", i % keys),
                    refresh,
                )?;
                api.create(&PostParams::default(), &es).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    println!(
        "{n} ExternalSecrets in {namespaces} namespaces over {keys} Vault keys created in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    // 1. Initial sync.
    let all: Api<ExternalSecret> = Api::all(client.clone());
    let kv_prefix = "secret/data/bench/";
    let other_key = "secret/data/bench/new";
    let mark = audit_len(&audit)?;
    let calls_before = api_calls(&client, RESOURCES).await?;
    let started = Instant::now();
    let mut controller = subject.start()?;
    let pid = controller.id();
    let converged = loop {
        let items = list(&all).await?;
        if items.len() as u64 == n && items.iter().all(ready) {
            break started.elapsed();
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not converged after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let initial = audit_counts(&audit, mark, kv_prefix, other_key)?;
    let cpu_initial = cpu_seconds(pid).unwrap_or(0.0);
    let (calls, detail) = calls_between(&calls_before, &api_calls(&client, RESOURCES).await?);
    let initial_calls = calls;
    println!(
        "initial sync: all {n} Ready after {:.2} s (from controller start)",
        converged.as_secs_f64()
    );
    println!(
        "  API calls (not LIST/WATCH): {calls} = {:.2} per ExternalSecret ({detail})",
        calls / n as f64
    );
    println!(
        "  Vault requests: {} logins, {} KV reads, {} lookup-self, {} renew, {} revoke, {} total",
        initial.logins,
        initial.kv_reads,
        initial.lookups,
        initial.renewals,
        initial.revokes,
        initial.total
    );
    println!("  controller CPU: {cpu_initial:.2} s");

    // 2. One periodic full refresh, and a new ExternalSecret created as the wave starts.
    let before: BTreeMap<String, Option<String>> = list(&all)
        .await?
        .iter()
        .map(|e| {
            (
                format!(
                    "{}/{}",
                    e.metadata.namespace.clone().unwrap_or_default(),
                    e.metadata.name.clone().unwrap_or_default()
                ),
                refresh_time(e),
            )
        })
        .collect();
    let mark = audit_len(&audit)?;
    let calls_before = api_calls(&client, RESOURCES).await?;
    let deadline = Instant::now() + Duration::from_secs(refresh * 3 + 120);
    let mut wave_start: Option<Instant> = None;
    let mut new_es: Option<(Instant, Option<Duration>)> = None;
    let first_ns: Api<ExternalSecret> = nss[0].api();
    let wave = loop {
        let items = list(&all).await?;
        let refreshed = items
            .iter()
            .filter(|e| {
                let id = format!(
                    "{}/{}",
                    e.metadata.namespace.clone().unwrap_or_default(),
                    e.metadata.name.clone().unwrap_or_default()
                );
                before.get(&id).is_some_and(|t| refresh_time(e) != *t)
            })
            .count();
        if refreshed > 0 && wave_start.is_none() {
            wave_start = Some(Instant::now());
            first_ns
                .create(
                    &PostParams::default(),
                    &es_object("es-new", &store, "bench/new", 3600)?,
                )
                .await?;
            new_es = Some((Instant::now(), None));
        }
        if let Some((at, None)) = new_es
            && items
                .iter()
                .any(|e| e.metadata.name.as_deref() == Some("es-new") && ready(e))
        {
            new_es = Some((at, Some(at.elapsed())));
        }
        if refreshed as u64 == n && new_es.is_some_and(|(_, t)| t.is_some()) {
            break wave_start.map(|s| s.elapsed()).unwrap_or_default();
        }
        ensure!(
            Instant::now() < deadline,
            "refresh wave incomplete: {refreshed}/{n} refreshed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let full = audit_counts(&audit, mark, kv_prefix, other_key)?;
    let cpu_total = cpu_seconds(pid).unwrap_or(0.0);
    let (calls, detail) = calls_between(&calls_before, &api_calls(&client, RESOURCES).await?);
    let wave_calls = calls;
    println!(
        "periodic full refresh (refreshInterval {refresh}s): all {n} refreshed within {:.2} s of the first",
        wave.as_secs_f64()
    );
    println!(
        "  API calls (not LIST/WATCH; incl. the new ExternalSecret and its create): {calls} = {:.2} per ExternalSecret ({detail})",
        calls / n as f64
    );
    println!(
        "  Vault requests: {} logins, {} KV reads, {} lookup-self, {} renew, {} revoke, {} total (+ {} read for the new ExternalSecret)",
        full.logins,
        full.kv_reads,
        full.lookups,
        full.renewals,
        full.revokes,
        full.total - full.other_kv_reads,
        full.other_kv_reads
    );
    println!("  controller CPU: {:.2} s", cpu_total - cpu_initial);
    if let Some((_, Some(t))) = new_es {
        println!(
            "  new ExternalSecret created as the wave started: Ready after {:.3} s",
            t.as_secs_f64()
        );
    }

    // 3. Memory, stop, clean up.
    let hwm = vm_hwm_kib(pid).unwrap_or(0);
    ensure!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?
            .success(),
        "kill -TERM {pid}"
    );
    let code = controller.wait()?;
    ensure!(
        code.success() || matches!(subject, Subject::Eso { .. }),
        "controller exited with {code}"
    );
    println!("controller peak RSS: {:.1} MiB", hwm as f64 / 1024.0);
    println!(
        "RESULT controller={} ready_s={:.2} start_vault={} start_logins={} start_reads={} \
         start_api_per_es={:.2} start_cpu_s={cpu_initial:.2} wave_s={:.2} wave_vault={} \
         wave_logins={} wave_reads={} wave_api_per_es={:.2} wave_cpu_s={:.2} new_es_ready_s={} \
         rss_mib={:.1}",
        subject.name(),
        converged.as_secs_f64(),
        initial.total,
        initial.logins,
        initial.kv_reads,
        initial_calls / n as f64,
        wave.as_secs_f64(),
        full.total - full.other_kv_reads,
        full.logins,
        full.kv_reads,
        wave_calls / n as f64,
        cpu_total - cpu_initial,
        new_es
            .and_then(|(_, t)| t)
            .map_or_else(|| "-".to_owned(), |t| format!("{:.2}", t.as_secs_f64())),
        hwm as f64 / 1024.0,
    );
    css.delete(&store, &DeleteParams::default()).await?;
    for ns in nss {
        ns.delete().await?;
    }
    creds.delete().await?;
    Ok(())
}
