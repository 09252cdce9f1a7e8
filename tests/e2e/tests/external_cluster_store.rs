//! A ClusterSecretStore with AppRole (credentials in a named namespace, `conditions`) serves many
//! ExternalSecrets. Its own test binary: one controller per process, as in production.
//! The AppRole secret id may be used once: store validation, 20 ExternalSecrets, a forced
//! re-sync of all of them and an ExternalSecret reading a path the policy denies must all live
//! on one login: a second login would be refused and show as a Warning event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::ExternalSecret;
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn cluster_store_with_approle_serves_many_external_secrets() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-css").await?;
    let n = ns.name().to_owned();
    for i in 0..5 {
        bao(
            "POST",
            &format!("secret/data/{n}/k{i}"),
            Some(json!({"data": {"v": format!("value-{i}")}})),
        )
        .await?;
    }
    bao("POST", &format!("sys/policies/acl/{n}"), Some(json!({"policy": format!("path \"secret/data/{n}/*\" {{ capabilities = [\"read\"] }}\npath \"auth/token/lookup-self\" {{ capabilities = [\"read\"] }}")}))).await?;
    bao(
        "POST",
        &format!("sys/auth/approle-{n}"),
        Some(json!({"type": "approle"})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/approle-{n}/role/eso"),
        Some(json!({"token_policies": [n], "token_ttl": "1h", "secret_id_num_uses": 1})),
    )
    .await?;
    let role_id =
        bao("GET", &format!("auth/approle-{n}/role/eso/role-id"), None).await?["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let secret_id = bao(
        "POST",
        &format!("auth/approle-{n}/role/eso/secret-id"),
        Some(json!({})),
    )
    .await?["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(&secrets, "approle", &[("secret-id", &secret_id)]).await?;
    let css: Api<hush_api::external_secrets::ClusterSecretStore> = Api::all(client.clone());
    let css_name = format!("{n}-vault");
    apply(&css, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": css_name},
        // Its own controller class: the other tests' controllers (same cluster) leave it alone.
        "spec": {"controller": n, "conditions": [{"namespaces": [n]}],
            "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
                "auth": {"appRole": {"path": format!("approle-{n}"), "roleId": role_id,
                    "secretRef": {"name": "approle", "key": "secret-id", "namespace": n}}}}}}})).await?;
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    // A path outside the policy: Vault answers 403 with a live token.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "denied"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": css_name, "kind": "ClusterSecretStore"},
            "data": [{"secretKey": "v", "remoteRef": {"key": format!("not-{n}/k"), "property": "v"}}]}})).await?;
    for i in 0..20 {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": format!("es-{i}")},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": css_name, "kind": "ClusterSecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/k{}", i % 5), "property": "v"}}]}})).await?;
    }
    for i in 0..20 {
        wait_ready(&es, &format!("es-{i}"), "True", "SecretSynced").await?;
        assert_eq!(
            value(&secrets.get(&format!("es-{i}")).await?, "v"),
            format!("value-{}", i % 5)
        );
    }
    wait_ready(&es, "denied", "False", "SecretSyncedError").await?;
    // Force a re-sync of every ExternalSecret after the denied read: still the first login.
    let mut synced = Vec::new();
    for i in 0..20 {
        let name = format!("es-{i}");
        let before = es
            .get(&name)
            .await?
            .status
            .and_then(|s| s.synced_resource_version);
        es.patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await?;
        synced.push((name, before));
    }
    for (name, before) in synced {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = es.get(&name).await?;
            let now = e
                .status
                .as_ref()
                .and_then(|s| s.synced_resource_version.clone());
            if now != before && ready(&e) == Some(("True".into(), "SecretSynced".into())) {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{name} not re-synced after force-sync: {:?}",
                e.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The store itself is validated.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = css.get(&css_name).await?;
        let reason = s
            .status
            .as_ref()
            .and_then(|st| st.conditions.first())
            .and_then(|c| c.reason.clone());
        if reason.as_deref() == Some("Valid") {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "cluster store not valid: {:?}",
            s.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The only Warning is the denied read's; the store and the 20 never failed.
    let events: Api<k8s_openapi::api::core::v1::Event> = ns.api();
    for e in events.list(&Default::default()).await? {
        if e.type_.as_deref() == Some("Warning") {
            ensure!(
                e.involved_object.name.as_deref() == Some("denied"),
                "unexpected warning {:?} on {:?}: {:?}",
                e.reason,
                e.involved_object.name,
                e.message
            );
        }
    }
    let store_events: Api<k8s_openapi::api::core::v1::Event> = Api::all(client.clone());
    for e in store_events
        .list(&kube::api::ListParams::default().fields(&format!("involvedObject.name={css_name}")))
        .await?
    {
        ensure!(
            e.type_.as_deref() != Some("Warning"),
            "store warning {:?}: {:?}",
            e.reason,
            e.message
        );
    }
    ctl.stop().await?;
    css.delete(&css_name, &Default::default()).await?;
    ns.delete().await?;
    Ok(())
}
