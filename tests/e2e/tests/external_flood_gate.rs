//! ESO's flood gate (`--enable-flood-gate`) on the real kube-apiserver and OpenBao: with it on,
//! an ExternalSecret whose SecretStore is not `Ready` (a rejected token) fails naming the store
//! and OpenBao sees no read for it, while one through a Ready store syncs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::Api;
use serde_json::json;

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and OpenBao"]
async fn flood_gate_keeps_unready_stores_out() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-flood").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    secret_from_literals(&secrets, "bad-token", &[("token", "not-a-token")]).await?;
    bao(
        "POST",
        &format!("secret/data/{n}/gate"),
        Some(json!({"data": {"v": "through"}})),
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    for (name, token) in [("good", "vault-token"), ("bad", "bad-token")] {
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": token, "key": "token"}}}}}})).await?;
    }
    let ctl = Controller::start_configured(&client, &n, "default", |c| c.flood_gate = true).await?;
    // Let the store controller judge both stores before any ExternalSecret exists.
    store_ready(&stores, "good").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = stores.get("bad").await?;
        let judged = s.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False")
        });
        if judged {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "bad store not judged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = vault_audit_len()?;
    let es: Api<ExternalSecret> = ns.api();
    for store in ["good", "bad"] {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": store},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": store, "kind": "SecretStore"},
                "target": {"name": store},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/gate"), "property": "v"}}]}})).await?;
    }
    wait_ready(&es, "good", "True", "SecretSynced").await?;
    ensure!(value(&secrets.get("good").await?, "v") == "through");
    wait_ready(&es, "bad", "False", "SecretSyncedError").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = serde_json::to_string(
            &Api::<Event>::namespaced(client.clone(), &n)
                .list(&Default::default())
                .await?
                .items,
        )?;
        if events.contains(r#"SecretStore \"bad\" is not ready"#) {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no event names the unready store: {events}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The gated ExternalSecret read nothing: one KV read in all (the good one's).
    let reads = vault_request_paths(before)?
        .into_iter()
        .filter(|p| p.contains(&format!("{n}/gate")))
        .count();
    ensure!(reads == 1, "{reads} KV reads");
    ctl.stop().await
}
