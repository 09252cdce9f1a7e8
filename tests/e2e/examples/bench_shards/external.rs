//! The ExternalSecret workload: `KEYS` OpenBao KV v2 keys written once (`secret/bench/k<i>`),
//! per phase a SecretStore with token auth and ExternalSecrets `es-<i>` reading key `i % KEYS`
//! (`refreshInterval` `REFRESH_S`). Provider requests come from OpenBao's audit log; after each
//! first sync one refresh wave is measured: KV reads from the moment it falls due until every
//! ExternalSecret has a newer `refreshTime` (or the next wave falls due), per distinct key
//! (target with three replicas: at most 3 per key).

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::{StreamExt as _, TryStreamExt as _, stream};
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::vault::{Vault, audit_counts_between, audit_len};
use crate::{Replica, Workload, World, metric, wait_until};

const KV_PREFIX: &str = "secret/data/bench/";

pub(crate) struct External {
    vault: Vault,
    audit: String,
    keys: usize,
    refresh: u64,
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} (scripts/services/openbao.sh start)"))
}

impl External {
    pub(crate) async fn new(client: &kube::Client, keys: usize, refresh: u64) -> Result<Self> {
        hush_testkit::install_repo_crds(client).await?;
        let vault = Vault::new(&env("HUSH_VAULT_ADDR")?, &env("HUSH_VAULT_TOKEN")?);
        stream::iter(0..keys)
            .map(|i| {
                let vault = &vault;
                async move {
                    vault
                        .call(
                            reqwest::Method::POST,
                            &format!("secret/data/bench/k{i}"),
                            Some(json!({"data": {"v": format!("value-{i}")}})),
                        )
                        .await
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(Self {
            vault,
            audit: env("HUSH_VAULT_AUDIT_LOG")?,
            keys,
            refresh,
        })
    }

    fn reads(&self, mark: u64) -> Result<String> {
        self.reads_between(mark..u64::MAX)
    }

    fn reads_between(&self, range: std::ops::Range<u64>) -> Result<String> {
        let c = audit_counts_between(&self.audit, range, KV_PREFIX, "")?;
        Ok(format!(
            "vault: {} KV reads of {} distinct keys ({:.2} per key), {} requests in all",
            c.kv_reads,
            c.kv_keys,
            c.kv_reads as f64 / c.kv_keys.max(1) as f64,
            c.total
        ))
    }
}

fn refresh_times(items: &[ExternalSecret]) -> BTreeMap<String, Option<String>> {
    items
        .iter()
        .map(|e| {
            (
                e.metadata.name.clone().unwrap_or_default(),
                e.status.as_ref().and_then(|s| s.refresh_time.clone()),
            )
        })
        .collect()
}

impl Workload for External {
    const KIND: &'static str = "ExternalSecret";
    const RESOURCES: &'static [&'static str] =
        &["secrets", "externalsecrets", "secretstores", "events"];
    const WORK: &'static str = "externalsecret_provider_api_calls_count";

    async fn world(&self, client: &kube::Client) -> Result<World> {
        let leases = TestNamespace::create(client, "bench-rel").await?;
        let app = TestNamespace::create(client, "bench-es").await?;
        let token: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "vault-token"}, "stringData": {"token": self.vault.token}}))?;
        app.api::<Secret>()
            .create(&PostParams::default(), &token)
            .await?;
        let store: SecretStore = serde_json::from_value(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
            "spec": {"provider": {"vault": {"server": self.vault.addr, "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}}))?;
        app.api::<SecretStore>()
            .create(&PostParams::default(), &store)
            .await?;
        Ok(World { leases, app })
    }

    async fn create(&self, world: &World, names: Range<usize>) -> Result<()> {
        let api: Api<ExternalSecret> = world.app.api();
        stream::iter(names)
            .map(|i| {
                let api = api.clone();
                async move {
                    let es: ExternalSecret = serde_json::from_value(json!({
                        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                        "metadata": {"name": format!("es-{i}")},
                        "spec": {"refreshInterval": format!("{}s", self.refresh),
                            "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                            "data": [{"secretKey": "v",
                                "remoteRef": {"key": format!("bench/k{}", i % self.keys), "property": "v"}}]}
                    }))?;
                    api.create(&PostParams::default(), &es).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    fn command(&self, hush: &str, world: &World) -> Command {
        let mut cmd = Command::new(hush);
        cmd.args([
            "controller",
            "--controllers=external",
            "--namespace",
            world.app.name(),
        ]);
        cmd
    }

    fn provider_mark(&self) -> Result<Option<u64>> {
        Ok(Some(audit_len(&self.audit)?))
    }

    fn provider_report(&self, mark: u64) -> Result<String> {
        self.reads(mark)
    }

    /// One refresh wave: the KV reads from the moment it falls due (the next multiple of
    /// `refreshInterval` since the epoch) until every ExternalSecret has a newer `refreshTime`
    /// or the next wave falls due, whichever comes first.
    async fn after_first_sync(&self, world: &World, replicas: &[Replica]) -> Result<()> {
        let api: Api<ExternalSecret> = world.app.api();
        let before = refresh_times(&api.list(&ListParams::default()).await?.items);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        let interval = self.refresh as f64;
        let due = (now / interval).ceil() * interval;
        tokio::time::sleep(Duration::from_secs_f64(due - now)).await;
        let mark = audit_len(&self.audit)?;
        let next = std::time::Instant::now() + Duration::from_secs(self.refresh);
        let mut calls_before = Vec::new();
        for r in replicas {
            calls_before.push(metric(r.metrics, Self::WORK).await.unwrap_or(0.0));
        }
        let mut refreshed = 0;
        let waited = wait_until("a refresh wave", async || {
            tokio::time::sleep(Duration::from_millis(900)).await;
            let now = refresh_times(&api.list(&ListParams::default()).await?.items);
            refreshed = now
                .iter()
                .filter(|(name, t)| before.get(*name).is_some_and(|b| b != *t))
                .count();
            Ok(refreshed == before.len() || std::time::Instant::now() >= next)
        })
        .await?;
        let end = audit_len(&self.audit)?;
        let mut per = Vec::new();
        for (r, b) in replicas.iter().zip(calls_before) {
            per.push(format!(
                "{}",
                metric(r.metrics, Self::WORK).await.unwrap_or(0.0) - b
            ));
        }
        println!(
            "  refresh wave (refreshInterval {}s): {refreshed} of {} refreshed {:.1}s after it fell due{}; {}; provider calls per replica {}",
            self.refresh,
            before.len(),
            waited.as_secs_f64(),
            if refreshed == before.len() {
                ""
            } else {
                " (stopped when the next wave fell due)"
            },
            self.reads_between(mark..end)?,
            per.join("/")
        );
        Ok(())
    }
}
