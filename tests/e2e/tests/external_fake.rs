//! ESO's `fake` provider on the real kube-apiserver: ESO's documented store and ExternalSecret
//! (docs/snippets/fake-provider-{store,es}.yaml of ESO v0.16.2, applied unchanged but for
//! `apiVersion: external-secrets.io/v1` — the only version ESO ≥ 0.17 and hush serve — and the
//! cluster-scoped store's name, made unique to this run) give the Secret ESO documents
//! (fake-provider-secret.yaml); `find`, a missing version, and a field hush does not implement
//! (the store goes Ready=False naming it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use base64::Engine as _;
use eso_peer::eso_snippet;
use external_harness::*;
use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const V1: &str = "external-secrets.io/v1";

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn documented_fake_store_gives_the_documented_secret() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-fake").await?;
    let n = ns.name().to_owned();
    let store_name = format!("{n}-fake");

    let mut store = eso_snippet("fake-provider-store.yaml")?;
    store["apiVersion"] = json!(V1);
    store["metadata"]["name"] = json!(store_name);
    // Its own controller class: the other tests' controllers (same cluster) leave it alone.
    store["spec"]["controller"] = json!(n);
    let mut es = eso_snippet("fake-provider-es.yaml")?;
    es["apiVersion"] = json!(V1);
    es["spec"]["secretStoreRef"]["name"] = json!(store_name);
    let expected = eso_snippet("fake-provider-secret.yaml")?;

    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    apply(&css, store).await?;
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(&ess, es).await?;
    // find by name: each key's greatest version, keys converted (`/` → `_`).
    apply(
        &ess,
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": "found"},
        "spec": {"refreshInterval": "1h",
            "secretStoreRef": {"name": store_name, "kind": "ClusterSecretStore"},
            "dataFrom": [{"find": {"name": {"regexp": "^/foo/"}}}]}}),
    )
    .await?;
    // A version the store does not have: not found, an error (deletionPolicy Retain).
    apply(
        &ess,
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": "missing"},
        "spec": {"refreshInterval": "1h",
            "secretStoreRef": {"name": store_name, "kind": "ClusterSecretStore"},
            "data": [{"secretKey": "x", "remoteRef": {"key": "/foo/bar", "version": "v9"}}]}}),
    )
    .await?;

    wait_ready(&ess, "example", "True", "SecretSynced").await?;
    let secrets: Api<Secret> = ns.api();
    let got = secrets.get("secret-to-be-created").await?;
    let want: BTreeMap<String, String> = serde_json::from_value(expected["data"].clone())?;
    for (key, b64) in &want {
        let plain = base64::engine::general_purpose::STANDARD.decode(b64)?;
        assert_eq!(value(&got, key).as_bytes(), plain, "key {key}");
    }
    assert_eq!(got.data.as_ref().map(BTreeMap::len), Some(want.len()));

    wait_ready(&ess, "found", "True", "SecretSynced").await?;
    let found = secrets.get("found").await?;
    assert_eq!(value(&found, "_foo_bar"), "HELLO2");
    assert_eq!(value(&found, "_foo_baz"), "{\"john\": \"doe\"}");
    wait_ready(&ess, "missing", "False", "SecretSyncedError").await?;

    // A field hush does not implement is refused by name, never ignored.
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        json!({"apiVersion": V1, "kind": "SecretStore", "metadata": {"name": "odd"},
        "spec": {"controller": n, "provider": {"fake": {"data": [
            {"key": "k", "value": "v", "secretRef": {"name": "x"}}]}}}}),
    )
    .await?;
    let (status, reason, message) = store_ready(&stores, "odd").await?;
    ensure!(
        status == "False"
            && reason == "InvalidProviderConfig"
            && message.contains("spec.provider.fake.data[0].secretRef"),
        "store odd: {status}/{reason}: {message}"
    );

    css.delete(&store_name, &DeleteParams::default()).await?;
    ctl.stop().await
}
