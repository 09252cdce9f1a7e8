//! `hush controller --shards K` on the real API server: replicas split the shards through
//! Leases, each decrypts only its shards' SealedSecrets, a killed replica's shards move to the
//! others within the lease duration, and scaling from one replica to three and back neither
//! misses nor repeats an object (the decrypt counters, summed over replicas, equal the number of
//! SealedSecrets). The replicas run in-process as the chart's ServiceAccount with the chart's
//! shard RBAC (`sealed.shards=3`, see `hush_testkit::chart`).
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush-e2e --test sealed_shards -- --include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sealed_harness;

use std::time::Duration;

use anyhow::{Result, ensure};
use hush_api::sealed_secret::SealedSecret;
use hush_operator::ShardConfig;
use hush_operator::leader::LeaseConfig;
use hush_operator::shards::{GROUP_LABEL, ROLE_LABEL};
use hush_testkit::handover::Handover;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use sealed_harness::*;

const SHARDS: u32 = 6;
/// The lease duration of these tests: a dead replica's shards move after it.
const LEASE: Duration = Duration::from_secs(6);
/// The retry period of these tests: how often a replica renews and looks for free shards.
const RETRY: Duration = Duration::from_secs(1);
/// How soon after the survivors hold a killed replica's shards the objects created after the
/// kill must be synced (the "lease duration + 5 s", widened for a loaded test machine).
const NEW_AFTER_HANDOVER: Duration = Duration::from_secs(8);

fn lease(ns: &str, id: &str) -> LeaseConfig {
    let mut l = LeaseConfig::new(ns.to_owned(), "hush-controller".into(), id.into());
    l.lease_duration = LEASE;
    l.renew_deadline = Duration::from_secs(4);
    l.retry_period = RETRY;
    l
}

fn shards(ns: &str, id: &str) -> ShardConfig {
    let mut s = ShardConfig::new(SHARDS, ns.to_owned(), "hush-controller".into(), id.into());
    s.lease_duration = LEASE;
    s.renew_deadline = Duration::from_secs(4);
    s.retry_period = RETRY;
    s
}

async fn replica(client: &kube::Client, keys: &str, app: &str, id: &str) -> Result<Controller> {
    Controller::start_sharded(client, keys, &[app], lease(keys, id), shards(keys, id)).await
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

async fn create_sealed(
    api: &Api<SealedSecret>,
    cert: &str,
    ns: &str,
    names: impl Iterator<Item = String>,
) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for name in names {
        let ss = seal(cert, ns, &name, &[("k", &format!("v-{name}"))], json!({}))?;
        api.create(&PostParams::default(), &ss).await?;
        created.push(name);
    }
    Ok(created)
}

async fn all_synced(api: &Api<SealedSecret>, names: &[String]) -> Result<()> {
    for name in names {
        synced(api, name, "True").await?;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn three_replicas_split_the_shards_and_a_killed_ones_move() -> Result<()> {
    let (client, keys, app) = setup("shards-kill").await?;
    let (k, a) = (keys.name(), app.name());
    let r1 = replica(&client, k, a, "r1").await?;
    let r2 = replica(&client, k, a, "r2").await?;
    let r3 = replica(&client, k, a, "r3").await?;
    let cert = wait_for("the certificate", || async { Ok(r1.cert().await.ok()) }).await?;
    balanced(&[&r1, &r2, &r3], 2.0).await?;

    let api: Api<SealedSecret> = app.api();
    let names = create_sealed(&api, &cert, a, (0..24).map(|i| format!("s{i}"))).await?;
    all_synced(&api, &names).await?;
    let decrypts = sum(&[&r1, &r2, &r3], "hush_sealed_decrypts_total").await?;
    ensure!(
        decrypts == 24.0,
        "24 SealedSecrets, {decrypts} decrypts over the replicas"
    );
    for r in [&r1, &r2, &r3] {
        ensure!(
            r.metric("hush_sealed_decrypts_total").await? > 0.0,
            "a replica decrypted nothing: the work was not spread"
        );
    }

    let before_kill = sum(&[&r3], "hush_sealed_decrypts_total").await?;
    // SIGKILL-like: the task is dropped, its Leases stay held until they expire.
    r3.handle.abort();
    let killed = Instant::now();
    let leases: Api<Lease> = Api::namespaced(client.clone(), k);
    let handover = Handover::start(
        leases,
        &format!("{GROUP_LABEL}=hush-controller,{ROLE_LABEL}=shard"),
        "r3",
    )
    .await?;
    // Created right after the kill: those in r3's shards wait for the hand-over, then must not
    // wait behind the synced objects the survivors take over (NEW_AFTER_HANDOVER).
    let later = create_sealed(&api, &cert, a, (24..36).map(|i| format!("s{i}"))).await?;
    balanced(&[&r1, &r2], 3.0).await?;
    let took = handover.check(LEASE, RETRY).await?;
    let deadline = took + NEW_AFTER_HANDOVER;
    let synced_all = wait_for("the objects created after the kill", || async {
        let mut done = true;
        for name in &later {
            done &= has_synced(&api.get(name).await?, "True");
        }
        Ok(done.then_some(killed.elapsed()))
    })
    .await?;
    ensure!(
        synced_all <= deadline,
        "objects created after the kill synced {synced_all:?} after it: over the hand-over ({took:?}) + {NEW_AFTER_HANDOVER:?}"
    );
    let decrypts = sum(&[&r1, &r2], "hush_sealed_decrypts_total").await? + before_kill;
    ensure!(
        decrypts == 36.0,
        "the survivors decrypted again what r3 had synced: {decrypts} decrypts for 36 SealedSecrets"
    );
    let handovers = sum(&[&r1, &r2], "hush_shard_handovers_total").await?;
    ensure!(handovers >= 2.0, "{handovers} handovers counted");

    r1.stop().await?;
    r2.stop().await?;
    // Stopped replicas give their shards back and delete their member Leases.
    let leases: Api<Lease> = Api::namespaced(client.clone(), k);
    let left = leases
        .list(&ListParams::default().labels(&format!("{GROUP_LABEL}=hush-controller")))
        .await?;
    for l in &left.items {
        let holder = l.spec.as_ref().and_then(|s| s.holder_identity.as_deref());
        ensure!(
            holder.is_none_or(|h| h == "r3"),
            "a stopped replica still holds {:?}",
            l.metadata.name
        );
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn scaling_one_to_three_and_back_misses_and_repeats_nothing() -> Result<()> {
    let (client, keys, app) = setup("shards-scale").await?;
    let (k, a) = (keys.name(), app.name());
    let r1 = replica(&client, k, a, "r1").await?;
    let cert = wait_for("the certificate", || async { Ok(r1.cert().await.ok()) }).await?;
    balanced(&[&r1], 6.0).await?;
    let api: Api<SealedSecret> = app.api();
    let first = create_sealed(&api, &cert, a, (0..12).map(|i| format!("a{i}"))).await?;
    all_synced(&api, &first).await?;

    // Scale up: the new replicas take their share and check the existing Secrets without
    // decrypting them again.
    let r2 = replica(&client, k, a, "r2").await?;
    let r3 = replica(&client, k, a, "r3").await?;
    balanced(&[&r1, &r2, &r3], 2.0).await?;
    let second = create_sealed(&api, &cert, a, (0..12).map(|i| format!("b{i}"))).await?;
    all_synced(&api, &second).await?;
    let decrypts = sum(&[&r1, &r2, &r3], "hush_sealed_decrypts_total").await?;
    ensure!(
        decrypts == 24.0,
        "24 SealedSecrets, {decrypts} decrypts after scaling up"
    );

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
    let third = create_sealed(&api, &cert, a, (0..6).map(|i| format!("c{i}"))).await?;
    all_synced(&api, &third).await?;
    r1.stop().await?;
    Ok(())
}
