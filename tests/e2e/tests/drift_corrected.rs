//! "Drift corrected" (hush_operator::drift): both controllers, running as the chart's
//! ServiceAccounts, put back a managed Secret that was edited or deleted by hand, and count it on
//! the Secret (`hush.dev/drift-corrected`, `hush.dev/drift-corrected-at`), the count surviving
//! the deletion. A spec change that rewrites the Secret is not drift. `hush status` shows these
//! annotations (crates/cli/tests/status_e2e.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use external_harness::{apply, env, wait_ready};
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_operator::drift::{COUNT_ANNOTATION, LAST_ANNOTATION};
use hush_operator::{Process, ProcessConfig, Shutdown};
use hush_testkit::chart::{ChartProfile, controller_client};
use hush_testkit::{TestNamespace, install_repo_crd};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Waits until `name` exists with `key` = `value` and a drift count of `count` (0: no annotation).
async fn restored(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
    value: &str,
    count: u64,
) -> Result<Secret> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = secrets.get_opt(name).await?;
        if let Some(s) = &found {
            let data = s
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.0.clone());
            let published = s
                .annotations()
                .get(COUNT_ANNOTATION)
                .map_or(Ok(0), |c| c.parse::<u64>())?;
            if data.as_deref() == Some(value.as_bytes()) && published == count {
                return found.context("present");
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "Secret {name}: want {key} restored and drift count {count}, have annotations {:?}",
                found.map(|s| s.annotations().clone())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Overwrites one data item by hand, as `kubectl edit` would.
async fn edit(secrets: &Api<Secret>, name: &str, key: &str) -> Result<()> {
    let mut s = secrets.get(name).await?;
    s.data
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_owned(), ByteString(b"edited by hand".to_vec()));
    secrets.replace(name, &PostParams::default(), &s).await?;
    Ok(())
}

fn stamped(s: &Secret) -> Result<()> {
    let at = s
        .annotations()
        .get(LAST_ANNOTATION)
        .context("no drift time")?;
    ensure!(
        at.len() == 20 && at.ends_with('Z'),
        "drift time {at:?} is not RFC 3339 UTC seconds"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn sealed_controller_counts_hand_edits_and_deletions() -> Result<()> {
    let admin = hush_testkit::client().await?;
    install_repo_crd(&admin, "sealedsecrets.bitnami.com.yaml").await?;
    let keys = TestNamespace::create(&admin, "drift-sealed-keys").await?;
    let app = TestNamespace::create(&admin, "drift-sealed").await?;
    let identity = controller_client(&admin, keys.name(), ChartProfile::Sealed).await?;
    let mut config = hush_sealed_controller::Config::new(keys.name());
    config.key_size = 2048;
    config.listen_addr = "127.0.0.1:0".into();
    config.namespaces = hush_sealed_controller::Namespaces::List(vec![app.name().to_owned()]);
    let shutdown = Shutdown::new();
    let mut process = Process::new(
        identity,
        ProcessConfig {
            metrics_addr: "127.0.0.1:0".into(),
            leader_election: None,
            shards: None,
        },
        shutdown.clone(),
    );
    process.bind_metrics().await?;
    let started = hush_sealed_controller::start(&mut process, config).await?;
    let handle = tokio::spawn(process.run(vec![started.component]));

    // The first key may still be in the making.
    let deadline = tokio::time::Instant::now() + WAIT;
    let cert = loop {
        let answer = reqwest::get(format!("http://{}/v1/cert.pem", started.api_addr)).await?;
        if answer.status().is_success() {
            break answer.text().await?;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no certificate: {}",
            answer.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seal = |value: &str| -> Result<SealedSecret> {
        let cert = hush_crypto::cert::Certificate::from_pem(cert.as_bytes())?;
        let secret: hush_sealing::Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "db", "namespace": app.name() },
            "stringData": { "password": value },
        }))?;
        let sealed =
            hush_sealing::seal::seal_secret(&cert.public_key, &secret, &mut SystemEntropy)?;
        let text =
            hush_sealing::codec::write_sealed_secret(&sealed, hush_sealing::codec::Format::Json)?;
        Ok(serde_json::from_str(&text)?)
    };
    let sealed: Api<SealedSecret> = app.api();
    sealed.create(&PostParams::default(), &seal("v1")?).await?;
    let secrets: Api<Secret> = app.api();
    restored(&secrets, "db", "password", "v1", 0).await?;

    // The owner changes: a rewrite, not drift.
    let mut changed = seal("v2")?;
    changed.metadata.resource_version = sealed.get("db").await?.metadata.resource_version;
    sealed
        .replace("db", &PostParams::default(), &changed)
        .await?;
    restored(&secrets, "db", "password", "v2", 0).await?;

    edit(&secrets, "db", "password").await?;
    stamped(&restored(&secrets, "db", "password", "v2", 1).await?)?;
    secrets.delete("db", &DeleteParams::default()).await?;
    stamped(&restored(&secrets, "db", "password", "v2", 2).await?)?;

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .context("controller did not stop")???;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn external_controller_counts_hand_edits_and_deletions() -> Result<()> {
    let client: Client = external_harness::setup().await?;
    let ns = TestNamespace::create(&client, "drift-external").await?;
    let n = ns.name().to_owned();
    external_harness::bao(
        "POST",
        &format!("secret/data/{n}/db"),
        Some(json!({"data": {"password": "from-vault"}})),
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    external_harness::secret_from_literals(
        &secrets,
        "vault-token",
        &[("token", &env("HUSH_VAULT_TOKEN"))],
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let ctl = external_harness::Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "db"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
            "target": {"name": "db-secret"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/db"), "property": "password"}}]}})).await?;
    wait_ready(&es, "db", "True", "SecretSynced").await?;
    restored(&secrets, "db-secret", "password", "from-vault", 0).await?;

    // A spec change (new target item) rewrites the Secret: not drift.
    es.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"data": [
            {"secretKey": "password", "remoteRef": {"key": format!("{n}/db"), "property": "password"}},
            {"secretKey": "copy", "remoteRef": {"key": format!("{n}/db"), "property": "password"}}]}})),
    )
    .await?;
    restored(&secrets, "db-secret", "copy", "from-vault", 0).await?;

    edit(&secrets, "db-secret", "password").await?;
    stamped(&restored(&secrets, "db-secret", "password", "from-vault", 1).await?)?;
    secrets
        .delete("db-secret", &DeleteParams::default())
        .await?;
    stamped(&restored(&secrets, "db-secret", "password", "from-vault", 2).await?)?;
    ctl.stop().await?;
    Ok(())
}
