//! Periodic refreshes come in waves that read each key once: ExternalSecrets with the same
//! `refreshInterval` fall due on the same boundary (a multiple of the interval), and every
//! refresh of a wave shares a provider read made since the wave became due. Counted from the
//! test OpenBao's audit log. Also: a pre-existing unlabelled target is taken over (the
//! controller's Secret cache does not hold it). Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::ExternalSecret;
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

const INTERVAL_SECS: i64 = 4;
const KEYS: usize = 3;
const OBJECTS: usize = 24;

/// Reads of `secret/data/<prefix>…` in the audit log after byte `from`.
fn kv_reads(from: u64, prefix: &str) -> Result<usize> {
    Ok(vault_request_paths(from)?
        .iter()
        .filter(|p| p.starts_with(prefix))
        .count())
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

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn a_refresh_wave_reads_each_key_once() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-wave").await?;
    let n = ns.name().to_owned();
    for k in 0..KEYS {
        bao(
            "POST",
            &format!("secret/data/{n}/k{k}"),
            Some(json!({"data": {"v": format!("value-{k}")}})),
        )
        .await?;
    }
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let stores: Api<hush_api::external_secrets::SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    // A target that exists without the managed label (so not in the controller's Secret
    // cache): the create is refused and the controller takes the Secret over, as ESO does.
    secret_from_literals(&secrets, "es-0", &[("v", "stale")]).await?;
    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    // Two batches created well apart (more than the harness's 500 ms read window): without
    // aligned waves their refreshes would not share reads.
    for i in 0..OBJECTS {
        if i == OBJECTS / 2 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": format!("es-{i}")},
            "spec": {"refreshInterval": format!("{INTERVAL_SECS}s"), "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/k{}", i % KEYS), "property": "v"}}]}})).await?;
    }
    for i in 0..OBJECTS {
        wait_ready(&es, &format!("es-{i}"), "True", "SecretSynced").await?;
    }
    // Wait for a boundary to pass, then watch the next whole wave.
    let prefix = format!("secret/data/{n}/");
    let mut waves_checked = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while waves_checked < 2 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no complete refresh wave"
        );
        // Start counting 3 s into a period (any earlier wave is over), stop 3 s into the next.
        let now_ms = || {
            let t = k8s_openapi::jiff::Timestamp::now();
            t.as_second() * 1000 + i64::from(t.subsec_millisecond())
        };
        let period_ms = INTERVAL_SECS * 1000;
        let into = now_ms().rem_euclid(period_ms);
        if into < 3000 {
            tokio::time::sleep(Duration::from_millis(u64::try_from(3000 - into)?)).await;
        }
        let start = now_ms();
        let before_wave = vault_audit_len()?;
        let boundary = (start - start.rem_euclid(period_ms) + period_ms) / 1000;
        let stop = boundary * 1000 + 3000;
        tokio::time::sleep(Duration::from_millis(u64::try_from(stop - now_ms())?)).await;
        let items = es.list(&Default::default()).await?.items;
        let times: Vec<i64> = items.iter().filter_map(refresh_second).collect();
        ensure!(times.len() == OBJECTS, "refresh times missing: {times:?}");
        // Every ExternalSecret refreshed in this wave, on this boundary (within its run time).
        let due: BTreeSet<i64> = times
            .iter()
            .map(|t| t - t.rem_euclid(INTERVAL_SECS))
            .collect();
        if due != BTreeSet::from([boundary]) {
            // The first wave after the initial sync may be split; take the next one.
            eprintln!("wave at {boundary}: refresh boundaries {due:?}; waiting for the next");
            continue;
        }
        let reads = kv_reads(before_wave, &prefix)?;
        ensure!(
            reads <= KEYS,
            "wave at {boundary}: {reads} KV reads for {OBJECTS} ExternalSecrets over {KEYS} keys (ESO: {OBJECTS})"
        );
        ensure!(reads > 0, "wave at {boundary}: no KV read at all");
        waves_checked += 1;
    }
    for i in 0..OBJECTS {
        assert_eq!(
            value(&secrets.get(&format!("es-{i}")).await?, "v"),
            format!("value-{}", i % KEYS)
        );
    }
    let taken = secrets.get("es-0").await?;
    ensure!(
        taken
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("reconcile.external-secrets.io/managed"))
            == Some(&"true".to_owned()),
        "the pre-existing target was not taken over: {:?}",
        taken.metadata.labels
    );
    ctl.stop().await?;
    Ok(())
}
