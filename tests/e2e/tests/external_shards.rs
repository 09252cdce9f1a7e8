//! `hush controller --controllers external --shards K` on the real API server and OpenBao:
//! replicas split the shards through Leases and each syncs only its shards' ExternalSecrets,
//! ClusterExternalSecrets and PushSecrets; a killed replica's shards move to the others within
//! the lease duration; scaling from one replica to three and back neither misses nor repeats an
//! object. "Repeats" is counted where it costs: OpenBao's audit log (every ExternalSecret reads
//! its own key, refreshInterval 1h, so each key must be read exactly once over all replicas;
//! every PushSecret writes its own key, so each must be written exactly once). The replicas run
//! in-process as the chart's ServiceAccount with the chart's shard RBAC
//! (`controllers.external.shards=3`, see `hush_testkit::chart`).
//!
//! Run: `scripts/test.sh` (stage e2e), or with the servers of `scripts/kube-testenv.sh` and
//! `scripts/services/openbao.sh` exported: `cargo test -p hush-e2e --test external_shards --
//! --include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use external_harness::*;
use hush_api::external_secrets::{ClusterExternalSecret, ExternalSecret, SecretStore};
use hush_api::push_secrets::PushSecret;
use hush_operator::ShardConfig;
use hush_operator::leader::LeaseConfig;
use hush_operator::shards::{GROUP_LABEL, ROLE_LABEL};
use hush_testkit::TestNamespace;
use hush_testkit::chart::ChartProfile;
use hush_testkit::handover::Handover;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::json;
use tokio::time::Instant;

const SHARDS: u32 = 6;
/// The lease duration of these tests: a dead replica's shards move after it.
const LEASE: Duration = Duration::from_secs(6);
/// The retry period of these tests: how often a replica renews and looks for free shards.
const RETRY: Duration = Duration::from_secs(1);

fn group() -> String {
    ChartProfile::External.lease_name().to_owned()
}

fn lease(release: &str, id: &str) -> LeaseConfig {
    let mut l = LeaseConfig::new(release.to_owned(), group(), id.into());
    l.lease_duration = LEASE;
    l.renew_deadline = Duration::from_secs(4);
    l.retry_period = RETRY;
    l
}

fn shards(release: &str, id: &str) -> ShardConfig {
    let mut s = ShardConfig::new(SHARDS, release.to_owned(), group(), id.into());
    s.lease_duration = LEASE;
    s.renew_deadline = Duration::from_secs(4);
    s.retry_period = RETRY;
    s
}

/// One test's world: its namespace (store, objects), release namespace (Leases), class.
struct World {
    client: kube::Client,
    ns: TestNamespace,
    release: TestNamespace,
    /// Cluster-wide replicas (ClusterExternalSecrets need one), or only `ns`.
    cluster_wide: bool,
    /// OpenBao's audit log length before the test's first object.
    audit_from: u64,
}

impl World {
    async fn new(prefix: &str, cluster_wide: bool) -> Result<Self> {
        let client = setup().await?;
        let ns = TestNamespace::create(&client, prefix).await?;
        let release = TestNamespace::create(&client, &format!("{prefix}-rel")).await?;
        let n = ns.name().to_owned();
        let secrets: Api<Secret> = ns.api();
        vault_token_secret(&secrets).await?;
        // Only this test's replicas serve this store (cluster-wide replicas see every namespace).
        let stores: Api<SecretStore> = ns.api();
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
            "spec": {"controller": n, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
        Ok(Self {
            client,
            ns,
            release,
            cluster_wide,
            audit_from: vault_audit_len()?,
        })
    }

    fn n(&self) -> &str {
        self.ns.name()
    }

    async fn replica(&self, id: &str) -> Result<Controller> {
        let (class, cluster_wide) = (self.n().to_owned(), self.cluster_wide);
        let ns = (!cluster_wide).then_some(self.n());
        Controller::start_sharded(
            &self.client,
            self.release.name(),
            ns,
            lease(self.release.name(), id),
            shards(self.release.name(), id),
            |c| {
                c.controller_class = class;
                // ClusterExternalSecrets and ClusterPushSecrets have no class: only the
                // cluster-wide test's replicas fan them out.
                c.cluster_external_secrets = cluster_wide;
                c.cluster_push_secrets = cluster_wide;
            },
        )
        .await
    }

    /// ExternalSecrets `<prefix><i>`, each reading its own key `<n>/<prefix><i>`.
    async fn external_secrets(&self, prefix: &str, count: usize) -> Result<Vec<String>> {
        let n = self.n();
        let es: Api<ExternalSecret> = self.ns.api();
        let mut names = Vec::new();
        for i in 0..count {
            let name = format!("{prefix}{i}");
            bao(
                "POST",
                &format!("secret/data/{n}/{name}"),
                Some(json!({"data": {"v": format!("value-{name}")}})),
            )
            .await?;
            apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
                "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                    "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/{name}"), "property": "v"}}]}})).await?;
            names.push(name);
        }
        Ok(names)
    }

    /// PushSecrets `<prefix><i>`, each pushing Secret `src-<prefix><i>` to its own key.
    async fn push_secrets(&self, prefix: &str, count: usize) -> Result<Vec<String>> {
        let n = self.n();
        let secrets: Api<Secret> = self.ns.api();
        let pushes: Api<PushSecret> = self.ns.api();
        let mut names = Vec::new();
        for i in 0..count {
            let name = format!("{prefix}{i}");
            secret_from_literals(&secrets, &format!("src-{name}"), &[("v", &name)]).await?;
            apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
                "metadata": {"name": name},
                "spec": {"refreshInterval": "1h", "secretStoreRefs": [{"name": "vault", "kind": "SecretStore"}],
                    "selector": {"secret": {"name": format!("src-{name}")}},
                    "data": [{"match": {"secretKey": "v", "remoteRef": {"remoteKey": format!("{n}/{name}"), "property": "v"}}}]}})).await?;
            names.push(name);
        }
        Ok(names)
    }

    async fn all_synced(&self, external: &[String], pushes: &[String]) -> Result<()> {
        let es: Api<ExternalSecret> = self.ns.api();
        let secrets: Api<Secret> = self.ns.api();
        for name in external {
            wait_ready(&es, name, "True", "SecretSynced").await?;
            let got = value(&secrets.get(name).await?, "v");
            ensure!(got == format!("value-{name}"), "{name}: {got:?}");
        }
        let api: Api<PushSecret> = self.ns.api();
        for name in pushes {
            wait_for(&format!("PushSecret {name} Synced"), || async {
                let ps = api.get(name).await?;
                let synced = ps.status.iter().flat_map(|s| &s.conditions).any(|c| {
                    c.type_ == "Ready"
                        && c.status == "True"
                        && c.reason.as_deref() == Some("Synced")
                });
                Ok(synced.then_some(()))
            })
            .await?;
        }
        Ok(())
    }

    /// Every key of `external` read exactly once and every key of `pushes` written exactly
    /// once, over all replicas since the test began.
    fn each_once(&self, external: &[String], pushes: &[String]) -> Result<()> {
        let n = self.n();
        let mut reads: BTreeMap<String, usize> = BTreeMap::new();
        let mut writes: BTreeMap<String, usize> = BTreeMap::new();
        for (operation, path) in vault_operations(self.audit_from)? {
            let Some(key) = path.strip_prefix(&format!("secret/data/{n}/")) else {
                continue;
            };
            let counts = match operation.as_str() {
                "read" => &mut reads,
                "create" | "update" => &mut writes,
                _ => continue,
            };
            *counts.entry(key.to_owned()).or_default() += 1;
        }
        for name in external {
            let got = reads.get(name).copied().unwrap_or(0);
            ensure!(got == 1, "key {name} read {got} times (want 1): {reads:?}");
        }
        for name in pushes {
            let got = writes.get(name).copied().unwrap_or(0);
            ensure!(
                got == 1,
                "key {name} written {got} times (want 1): {writes:?}"
            );
        }
        Ok(())
    }
}

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + WAIT;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn sum(replicas: &[&Controller], metric: &str) -> Result<f64> {
    let mut total = 0.0;
    for r in replicas {
        total += r.metric(metric).await?;
    }
    Ok(total)
}

/// Waits until the replicas hold every shard, `each` apiece.
async fn balanced(replicas: &[&Controller], each: f64) -> Result<()> {
    wait_for("the shards to be balanced", || async {
        let mut owned = Vec::new();
        for r in replicas {
            owned.push(r.metric("hush_shards_owned").await?);
        }
        let all = owned.iter().sum::<f64>() == f64::from(SHARDS);
        Ok((all && owned.iter().all(|&o| o == each)).then_some(()))
    })
    .await
}

fn concat(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and OpenBao"]
async fn three_replicas_split_the_work_and_a_killed_ones_shards_move() -> Result<()> {
    let world = World::new("es-shards-kill", true).await?;
    let n = world.n().to_owned();
    let r1 = world.replica("r1").await?;
    let r2 = world.replica("r2").await?;
    let r3 = world.replica("r3").await?;
    balanced(&[&r1, &r2, &r3], 2.0).await?;

    let es = world.external_secrets("es", 24).await?;
    let ps = world.push_secrets("ps", 6).await?;
    // ClusterExternalSecrets are sharded by name: each is fanned out by one replica.
    let ces_api: Api<ClusterExternalSecret> = Api::all(world.client.clone());
    let mut from_ces = Vec::new();
    for i in 0..6 {
        let name = format!("ces{i}");
        bao(
            "POST",
            &format!("secret/data/{n}/{name}"),
            Some(json!({"data": {"v": format!("value-{name}")}})),
        )
        .await?;
        apply(&ces_api, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
            "metadata": {"name": format!("{n}-{name}")},
            "spec": {"externalSecretName": name, "namespaces": [n], "refreshTime": "1h",
                "externalSecretSpec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                    "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/{name}"), "property": "v"}}]}}})).await?;
        from_ces.push(name);
    }
    world.all_synced(&concat(&[&es, &from_ces]), &ps).await?;
    world.each_once(&concat(&[&es, &from_ces]), &ps)?;
    for r in [&r1, &r2, &r3] {
        ensure!(
            r.metric("externalsecret_sync_calls_total").await? > 0.0,
            "a replica synced nothing: the work was not spread"
        );
    }

    // SIGKILL-like: the task is dropped, its Leases stay held until they expire.
    r3.kill();
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), world.release.name());
    let handover = Handover::start(
        leases,
        &format!("{GROUP_LABEL}={},{ROLE_LABEL}=shard", group()),
        "r3",
    )
    .await?;
    balanced(&[&r1, &r2], 3.0).await?;
    handover.check(LEASE, RETRY).await?;
    let later = world.external_secrets("late", 12).await?;
    let later_ps = world.push_secrets("lateps", 4).await?;
    world.all_synced(&later, &later_ps).await?;
    world.each_once(
        &concat(&[&es, &from_ces, &later]),
        &concat(&[&ps, &later_ps]),
    )?;
    let handovers = sum(&[&r1, &r2], "hush_shard_handovers_total").await?;
    ensure!(handovers >= 2.0, "{handovers} handovers counted");

    for name in &from_ces {
        ces_api
            .delete(&format!("{n}-{name}"), &DeleteParams::default())
            .await?;
    }
    r1.stop().await?;
    r2.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and OpenBao"]
async fn scaling_one_to_three_and_back_misses_and_repeats_nothing() -> Result<()> {
    let world = World::new("es-shards-scale", false).await?;
    let r1 = world.replica("r1").await?;
    balanced(&[&r1], 6.0).await?;
    let first = world.external_secrets("a", 12).await?;
    let first_ps = world.push_secrets("pa", 4).await?;
    world.all_synced(&first, &first_ps).await?;

    // Scale up: the new replicas take their share and find the existing Secrets current,
    // without reading or writing the provider again.
    let r2 = world.replica("r2").await?;
    let r3 = world.replica("r3").await?;
    balanced(&[&r1, &r2, &r3], 2.0).await?;
    let second = world.external_secrets("b", 12).await?;
    let second_ps = world.push_secrets("pb", 4).await?;
    world.all_synced(&second, &second_ps).await?;
    world.each_once(
        &concat(&[&first, &second]),
        &concat(&[&first_ps, &second_ps]),
    )?;

    // Scale down: stopped replicas hand their shards back, so the last one takes them over
    // without waiting for the Leases to expire.
    r2.stop().await?;
    r3.stop().await?;
    let stopped = Instant::now();
    balanced(&[&r1], 6.0).await?;
    ensure!(
        stopped.elapsed() < LEASE,
        "a graceful stop should hand over before the lease expires ({:?})",
        stopped.elapsed()
    );
    let third = world.external_secrets("c", 6).await?;
    let third_ps = world.push_secrets("pc", 2).await?;
    world.all_synced(&third, &third_ps).await?;
    world.each_once(
        &concat(&[&first, &second, &third]),
        &concat(&[&first_ps, &second_ps, &third_ps]),
    )?;
    r1.stop().await?;
    Ok(())
}
