//! How the ExternalSecret controller reaches a store's credentials and the cluster, as the chart's
//! ServiceAccount (external_harness): a ClusterSecretStore admitted by a `namespaceSelector`
//! with `matchExpressions` (the Namespace's labels), Vault JWT auth with a TokenRequest token of a ServiceAccount (OpenBao
//! checks it against the test API server's service-account key), the CA from a ConfigMap
//! (`caProvider`), and `deletionPolicy: Delete` removing the Secret when the value is gone.
//! These are the calls behind the chart rules on `namespaces`, `serviceaccounts/token`,
//! `configmaps` and `secrets` delete (scripts/rbac-evidence.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::ExternalSecret;
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn cluster_store_with_namespace_selector_jwt_token_request_and_ca_config_map() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-access").await?;
    let n = ns.name().to_owned();
    // Admitted by label only: the store's conditions name no namespace.
    Api::<Namespace>::all(client.clone())
        .patch(
            &n,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"hush.test/store": n}}})),
        )
        .await?;
    let password = canary("access");
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": password}})),
    )
    .await?;
    bao(
        "POST",
        &format!("secret/data/{n}/gone"),
        Some(json!({"data": {"v": "soon deleted"}})),
    )
    .await?;
    bao("POST", &format!("sys/policies/acl/{n}"), Some(json!({"policy": format!("path \"secret/data/{n}/*\" {{ capabilities = [\"read\"] }}")}))).await?;
    // JWT auth that trusts the test API server's service-account signing key.
    bao(
        "POST",
        &format!("sys/auth/jwt-{n}"),
        Some(json!({"type": "jwt"})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/jwt-{n}/config"),
        Some(json!({"jwt_validation_pubkeys": [kte_file("pki/sa.pub")?]})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/jwt-{n}/role/reader"),
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": ["vault"],
            "user_claim": "sub",
            "bound_subject": format!("system:serviceaccount:{n}:vault-reader"),
            "token_policies": [n],
            "token_ttl": "1h",
        })),
    )
    .await?;
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "vault-reader"}}))?;
    ns.api::<ServiceAccount>()
        .create(&Default::default(), &account)
        .await?;
    let ca: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "vault-ca"},
        "data": {"ca.crt": kte_file("pki/ca.crt")?},
    }))?;
    ns.api::<ConfigMap>()
        .create(&Default::default(), &ca)
        .await?;

    let store = format!("{n}-jwt");
    let stores: Api<hush_api::external_secrets::ClusterSecretStore> = Api::all(client.clone());
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
        "metadata": {"name": store},
        "spec": {"controller": n,
            "conditions": [{"namespaceSelector": {"matchExpressions": [
                {"key": "hush.test/store", "operator": "In", "values": [n]},
                {"key": "kubernetes.io/metadata.name", "operator": "Exists"}]}}],
            "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
                "caProvider": {"type": "ConfigMap", "name": "vault-ca", "key": "ca.crt", "namespace": n},
                "auth": {"jwt": {"path": format!("jwt-{n}"), "role": "reader",
                    "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "vault-reader", "namespace": n}}}}}}}})).await?;
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "app"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "gone"},
        "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
            "target": {"deletionPolicy": "Delete"},
            "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/gone"), "property": "v"}}]}})).await?;
    wait_ready(&es, "app", "True", "SecretSynced").await?;
    let secrets: Api<Secret> = ns.api();
    ensure!(value(&secrets.get("app").await?, "password") == password);
    wait_ready(&es, "gone", "True", "SecretSynced").await?;
    ensure!(secrets.get_opt("gone").await?.is_some());

    // The value disappears from Vault: deletionPolicy Delete removes the Secret.
    let resp = reqwest::Client::new()
        .delete(format!(
            "{}/v1/secret/metadata/{n}/gone",
            env("HUSH_VAULT_ADDR")
        ))
        .header("X-Vault-Token", env("HUSH_VAULT_TOKEN"))
        .send()
        .await?;
    ensure!(
        resp.status().is_success(),
        "deleting the Vault secret: {}",
        resp.status()
    );
    wait_ready(&es, "gone", "True", "SecretDeleted").await?;
    ensure!(
        secrets.get_opt("gone").await?.is_none(),
        "the Secret survived deletionPolicy Delete"
    );
    assert_no_canary(&client, &ns, &es, &password).await?;
    ctl.stop().await?;
    stores.delete(&store, &DeleteParams::default()).await?;
    Ok(())
}
