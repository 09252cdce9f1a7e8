//! A ClusterSecretStore with AppRole (credentials in a named namespace, `conditions`) serves many
//! ExternalSecrets. Its own test binary: one controller per process, as in production.
//! Open: with `secret_id_num_uses: 1` a second login still happens (store validation and the
//! ExternalSecrets do not yet share one session in every interleaving); see docs/external-secrets.md.
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
        Some(json!({"token_policies": [n], "token_ttl": "1h"})),
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
    ctl.stop().await?;
    css.delete(&css_name, &Default::default()).await?;
    ns.delete().await?;
    Ok(())
}
