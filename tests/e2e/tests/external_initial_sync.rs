//! The initial sync reads each distinct key once: ExternalSecrets that exist when the controller
//! starts share the provider reads of their keys, including the newest, created in the same
//! second as the controller's first reads (issue 21: the benchmark's start read 136–189 keys for
//! 100, because a never-synced ExternalSecret accepted only reads started after its whole-second
//! creation timestamp had passed). Counted from the test OpenBao's audit log, with the
//! controller's default read window. Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use external_harness::*;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::json;

const KEYS: usize = 10;
const OBJECTS: usize = 60;
/// Start-ups tried until one reads before the newest creation second ends (a loaded machine
/// may start too slowly for that).
const ATTEMPTS: usize = 5;

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn an_initial_sync_reads_each_key_once() -> Result<()> {
    let client = setup().await?;
    for attempt in 1..=ATTEMPTS {
        let run = start_up(&client).await?;
        if run.first_read >= run.newest_second_end {
            eprintln!(
                "attempt {attempt}: first read at {}, after the newest creation second ended ({}); again",
                run.first_read, run.newest_second_end
            );
            continue;
        }
        ensure!(
            run.reads == KEYS,
            "initial sync: {} KV reads for {OBJECTS} ExternalSecrets over {KEYS} keys (want \
             {KEYS}); the first at {}, {} ExternalSecrets created in the second ending {}",
            run.reads,
            run.first_read,
            run.in_newest_second,
            run.newest_second_end
        );
        ensure!(
            run.logins == 1,
            "initial sync: {} AppRole logins (want 1)",
            run.logins
        );
        return Ok(());
    }
    bail!(
        "in {ATTEMPTS} start-ups the controller never read before the newest ExternalSecret's \
         creation second ended: the case was not exercised (machine too slow?)"
    )
}

/// What one start-up did.
struct StartUp {
    reads: usize,
    logins: usize,
    first_read: Timestamp,
    /// The end of the creation second of the newest ExternalSecret.
    newest_second_end: Timestamp,
    in_newest_second: usize,
}

/// A namespace with KEYS Vault keys behind an AppRole SecretStore and OBJECTS ExternalSecrets
/// created at the start of a second; then the controller starts at once and syncs them all.
async fn start_up(client: &Client) -> Result<StartUp> {
    let ns = TestNamespace::create(client, "es-first").await?;
    let n = ns.name().to_owned();
    for k in 0..KEYS {
        bao(
            "POST",
            &format!("secret/data/{n}/k{k}"),
            Some(json!({"data": {"v": format!("value-{k}")}})),
        )
        .await?;
    }
    let mount = format!("approle-{n}");
    let (role_id, secret_id) = vault_approle(&mount, &n).await?;
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(&secrets, "approle", &[("secret-id", &secret_id)]).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"appRole": {"path": mount, "roleId": role_id,
                "secretRef": {"name": "approle", "key": "secret-id"}}}}}}}))
    .await?;

    // At the start of a second: all ExternalSecrets at once, then the controller.
    let into = Timestamp::now().subsec_nanosecond();
    tokio::time::sleep(Duration::from_nanos(u64::try_from(1_000_000_000 - into)?)).await;
    let es: Api<ExternalSecret> = ns.api();
    let created: Vec<ExternalSecret> = stream::iter(0..OBJECTS)
        .map(|i| {
            let es = es.clone();
            let n = n.clone();
            async move {
                apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "metadata": {"name": format!("es-{i}")},
                    "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                        "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/k{}", i % KEYS), "property": "v"}}]}}))
                .await
            }
        })
        .buffer_unordered(OBJECTS)
        .try_collect()
        .await?;
    let before = vault_audit_len()?;
    let ctl = Controller::start_unelected_with_default_window(client, &n).await?;
    let synced = wait_all_synced(&es).await;
    ctl.stop().await?;
    synced?;

    let seconds: Vec<i64> = created
        .iter()
        .filter_map(|e| Some(e.metadata.creation_timestamp.as_ref()?.0.as_second()))
        .collect();
    let newest = *seconds.iter().max().context("no creation timestamps")?;
    let requests = vault_requests_timed(before)?;
    let prefix = format!("secret/data/{n}/");
    let reads: Vec<Timestamp> = requests
        .iter()
        .filter(|(_, p)| p.starts_with(&prefix))
        .map(|(t, _)| *t)
        .collect();
    let login = format!("auth/{mount}/login");
    for i in (0..OBJECTS).step_by(7) {
        assert_eq!(
            value(&secrets.get(&format!("es-{i}")).await?, "v"),
            format!("value-{}", i % KEYS)
        );
    }
    Ok(StartUp {
        reads: reads.len(),
        logins: requests.iter().filter(|(_, p)| *p == login).count(),
        first_read: *reads.iter().min().context("no KV read")?,
        newest_second_end: Timestamp::from_second(newest)? + SignedDuration::from_secs(1),
        in_newest_second: seconds.iter().filter(|s| **s == newest).count(),
    })
}

async fn wait_all_synced(es: &Api<ExternalSecret>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let items = es.list(&ListParams::default()).await?.items;
        let synced = items
            .iter()
            .filter(|e| ready(e) == Some(("True".into(), "SecretSynced".into())))
            .count();
        if synced == OBJECTS {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{synced} of {OBJECTS} ExternalSecrets Ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
