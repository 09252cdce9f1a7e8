//! The `azurekv` provider against the real kube-apiserver and the Azure test server
//! (scripts/services/azure.sh): ESO's ServicePrincipal store with a client secret, `secret/`
//! keys, versions, properties, extract, find by name and tags, refusals naming the field, and
//! the call-count discipline (one token for the application over the whole run, at most one
//! read per key per refresh wave), counted by the server. `authType: WorkloadIdentity`: this API
//! server's ServiceAccount tokens, exchanged at the server's Entra ID, which checks them against
//! the API server's issuer and JWK set. Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use anyhow::{Result, ensure};
use external_harness::cloud::{Azure, check_waves, cluster_issuer};
use external_harness::*;
use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use serde_json::json;

const INTERVAL_SECS: i64 = 4;
const KEYS: usize = 3;
const OBJECTS: usize = 12;

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and scripts/services/azure.sh"]
async fn azurekv_reads_versions_finds_and_keeps_one_token() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-az").await?;
    let n = ns.name().to_owned();
    let az = Azure::new().await?;
    let pw = canary("azure");
    let old = az
        .put_secret(&format!("{n}-db"), r#"{"password": "old"}"#, json!({}))
        .await?;
    az.put_secret(
        &format!("{n}-db"),
        &json!({"password": pw, "port": 5432}).to_string(),
        json!({}),
    )
    .await?;
    az.put_secret(
        &format!("{n}-app-one"),
        "one",
        json!({"team": n, "tier": "web"}),
    )
    .await?;
    az.put_secret(&format!("{n}-app-two"), "two", json!({"team": n}))
        .await?;
    for k in 0..KEYS {
        az.put_secret(&format!("{n}-k{k}"), &format!("value-{k}"), json!({}))
            .await?;
    }
    let (tenant, client_id, client_secret) = az.app().await?;
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(
        &secrets,
        "azure-secret-sp",
        &[("ClientID", &client_id), ("ClientSecret", &client_secret)],
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    // ESO's documented ServicePrincipal store (docs/provider/azure-key-vault.md), names changed.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "azure-store"},
        "spec": {"controller": n, "provider": {"azurekv": {"tenantId": tenant, "vaultUrl": az.url,
            "authSecretRef": {"clientId": {"name": "azure-secret-sp", "key": "ClientID"},
                "clientSecret": {"name": "azure-secret-sp", "key": "ClientSecret"}}}}}})).await?;
    // ManagedIdentity is the controller's own identity: a ClusterSecretStore may use it (here a
    // user-assigned one by client id), a SecretStore may not. Own controller class as in
    // external_cluster_store.rs, so other tests' controllers leave the cluster store alone.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "azure-mi"},
        "spec": {"controller": n, "provider": {"azurekv": {"authType": "ManagedIdentity", "vaultUrl": az.url}}}})).await?;
    let mi_id = az.managed_identity().await?;
    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    let css_name = format!("{n}-mi");
    apply(&css, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": css_name},
        "spec": {"controller": n, "conditions": [{"namespaces": [n]}],
            "provider": {"azurekv": {"authType": "ManagedIdentity", "identityId": mi_id, "vaultUrl": az.url}}}})).await?;
    // WorkloadIdentity: an application federated with this API server's tokens for one
    // ServiceAccount; another account annotated with the same client id is refused by Entra ID.
    let (issuer, jwks) = cluster_issuer(&client).await?;
    let (wi_tenant, wi_client) = az
        .federated_app(&issuer, &format!("system:serviceaccount:{n}:wi-app"), &jwks)
        .await?;
    let sas: Api<ServiceAccount> = ns.api();
    for sa in ["wi-app", "wi-stranger"] {
        apply(
            &sas,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa,
            "annotations": {"azure.workload.identity/client-id": wi_client,
                "azure.workload.identity/tenant-id": wi_tenant}}}),
        )
        .await?;
    }
    for (store, sa) in [("azure-wi", "wi-app"), ("azure-wi-stranger", "wi-stranger")] {
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": store},
            "spec": {"controller": n, "provider": {"azurekv": {"authType": "WorkloadIdentity", "vaultUrl": az.url,
                "serviceAccountRef": {"name": sa}}}}})).await?;
    }
    // Without serviceAccountRef it is the controller's own identity: not for a SecretStore.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "azure-wi-own"},
        "spec": {"controller": n, "provider": {"azurekv": {"authType": "WorkloadIdentity", "vaultUrl": az.url}}}})).await?;
    let rsa = az.create_key(&format!("{n}-rsa")).await?;
    let cert = rcgen::generate_simple_self_signed(vec!["hush.example".to_owned()])?;
    let imported = az
        .import_certificate(&format!("{n}-cert"), &cert.cert.pem())
        .await?;
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "db"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "azure-store", "kind": "SecretStore"},
            "target": {"name": "db-secret"},
            "data": [
                {"secretKey": "password", "remoteRef": {"key": format!("secret/{n}-db"), "property": "password"}},
                {"secretKey": "old", "remoteRef": {"key": format!("{n}-db"), "version": old, "property": "password"}}
            ],
            "dataFrom": [
                {"extract": {"key": format!("secret/{n}-db")}},
                {"find": {"name": {"regexp": format!("^{n}-app-")}}},
                {"find": {"tags": {"team": n.clone(), "tier": "web"}}, "rewrite": [{"regexp": {"source": "(.*)", "target": "tagged-$1"}}]}
            ]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "objects"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": css_name, "kind": "ClusterSecretStore"},
            "target": {"name": "objects-secret"},
            "data": [
                {"secretKey": "jwk", "remoteRef": {"key": format!("key/{n}-rsa")}},
                {"secretKey": "n", "remoteRef": {"key": format!("key/{n}-rsa"), "property": "n"}},
                {"secretKey": "cert", "remoteRef": {"key": format!("cert/{n}-cert")}},
                {"secretKey": "password", "remoteRef": {"key": format!("secret/{n}-db"), "property": "password"}},
                {"secretKey": "tier", "remoteRef": {"key": format!("secret/{n}-app-one"), "metadataPolicy": "Fetch", "property": "tier"}},
                {"secretKey": "tags", "remoteRef": {"key": format!("{n}-app-one"), "metadataPolicy": "Fetch"}}
            ]}})).await?;
    for i in 0..OBJECTS {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": format!("w-{i}")},
            "spec": {"refreshInterval": format!("{INTERVAL_SECS}s"), "secretStoreRef": {"name": "azure-store"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("secret/{n}-k{}", i % KEYS)}}]}})).await?;
    }
    for i in 0..3 {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": format!("wi-{i}")},
            "spec": {"refreshInterval": "2s", "secretStoreRef": {"name": "azure-wi"},
                "data": [{"secretKey": "password", "remoteRef": {"key": format!("secret/{n}-db"), "property": "password"}}]}})).await?;
    }
    wait_ready(&es, "db", "True", "SecretSynced").await?;
    for i in 0..3 {
        wait_ready(&es, &format!("wi-{i}"), "True", "SecretSynced").await?;
        assert_eq!(
            value(&secrets.get(&format!("wi-{i}")).await?, "password"),
            pw
        );
    }
    let s = secrets.get("db-secret").await?;
    assert_eq!(value(&s, "password"), pw);
    assert_eq!(value(&s, "old"), "old");
    assert_eq!(value(&s, "port"), "5432");
    assert_eq!(value(&s, &format!("{n}-app-one")), "one");
    assert_eq!(value(&s, &format!("{n}-app-two")), "two");
    assert_eq!(value(&s, &format!("tagged-{n}-app-one")), "one");
    ensure!(
        value(&s, &format!("tagged-{n}-app-two")).is_empty(),
        "tags filter ignored"
    );
    wait_ready(&es, "objects", "True", "SecretSynced").await?;
    let o = secrets.get("objects-secret").await?;
    let key = &rsa["key"];
    // ESO: json.Marshal of the SDK's JSONWebKey, fields in struct order.
    assert_eq!(
        value(&o, "jwk"),
        format!(
            r#"{{"kid":{},"kty":{},"key_ops":{},"n":{},"e":{}}}"#,
            key["kid"], key["kty"], key["key_ops"], key["n"], key["e"]
        )
    );
    assert_eq!(value(&o, "n"), key["n"].as_str().unwrap());
    use base64::Engine as _;
    let der =
        base64::engine::general_purpose::STANDARD.decode(imported["cer"].as_str().unwrap())?;
    let got = o.data.as_ref().unwrap()["cert"].0.clone();
    assert_eq!(got, der, "cert/ is the certificate's DER");
    assert_eq!(value(&o, "password"), pw);
    assert_eq!(value(&o, "tier"), "web");
    assert_eq!(
        value(&o, "tags"),
        format!(r#"{{"team":"{n}","tier":"web"}}"#)
    );
    for i in 0..OBJECTS {
        wait_ready(&es, &format!("w-{i}"), "True", "SecretSynced").await?;
    }
    store_message(
        &stores,
        "azure-mi",
        &[
            "azurekv.authType ManagedIdentity",
            "may not authenticate as the controller",
        ],
    )
    .await?;
    store_message(
        &stores,
        "azure-wi-own",
        &[
            "azurekv.authType WorkloadIdentity without serviceAccountRef",
            "may not authenticate as the controller",
        ],
    )
    .await?;
    store_message(
        &stores,
        "azure-wi-stranger",
        &[&format!(
            "subject 'system:serviceaccount:{n}:wi-stranger' has no federated credential"
        )],
    )
    .await?;
    let wave_keys = format!("{n}-k");
    check_waves(&es, "w-", OBJECTS, KEYS, INTERVAL_SECS, || {
        az.reads(&wave_keys)
    })
    .await?;
    for i in 0..OBJECTS {
        assert_eq!(
            value(&secrets.get(&format!("w-{i}")).await?, "v"),
            format!("value-{}", i % KEYS)
        );
    }
    let calls = az.calls().await?;
    assert_eq!(calls["tokens"][&client_id], 1, "{calls}");
    assert_eq!(calls["tokens"][&mi_id], 1, "{calls}");
    // Three ExternalSecrets refreshed every 2 s through the whole run: one exchange.
    assert_eq!(calls["tokens"][&wi_client], 1, "{calls}");
    // No ServiceAccount token (a JWT: base64 of `{"`) reached the logs.
    ensure!(!logs_contain("eyJ"), "a JWT in the controller's logs");
    css.delete(&css_name, &Default::default()).await?;
    assert_no_canary(&client, &ns, &es, &pw).await?;
    assert_no_canary(&client, &ns, &es, &client_secret).await?;
    ctl.stop().await?;
    Ok(())
}

/// Waits until store `name`'s Ready condition message holds every one of `needles`.
async fn store_message(stores: &Api<SecretStore>, name: &str, needles: &[&str]) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let store = stores.get(name).await?;
        let msg = store
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        if needles.iter().all(|n| msg.contains(n)) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store {name} message: {msg:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
