//! The `gcpsm` provider against the real kube-apiserver and the Google Cloud test server
//! (scripts/services/gcp.sh): ESO's manifests with a service-account key, versions, properties,
//! extract, find by name and labels, refusals naming the field, and the call-count discipline
//! (one token for the store's key over the whole run, at most one read per key per refresh
//! wave), counted by the server. `auth.workloadIdentity`: this API server's ServiceAccount
//! tokens exchanged at the server's STS (checked against the API server's issuer and JWK set),
//! then impersonating a Google service account. Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use anyhow::{Result, ensure};
use external_harness::cloud::{Gcp, check_waves, cluster_issuer};
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
#[ignore = "needs scripts/kube-testenv.sh and scripts/services/gcp.sh"]
async fn gcpsm_reads_versions_finds_and_keeps_one_token() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-gcp").await?;
    let n = ns.name().to_owned();
    let gcp = Gcp::new().await?;
    let pw = canary("gcp");
    gcp.put_secret(
        &format!("{n}-db"),
        json!({"team": n}),
        &[
            r#"{"password": "old"}"#,
            &json!({"password": pw, "port": 5432, "a.b": "dotted"}).to_string(),
        ],
    )
    .await?;
    gcp.put_secret(
        &format!("{n}-app-one"),
        json!({"team": n, "tier": "web"}),
        &["one"],
    )
    .await?;
    gcp.put_secret(&format!("{n}-app-two"), json!({"team": n}), &["two"])
        .await?;
    for k in 0..KEYS {
        gcp.put_secret(&format!("{n}-k{k}"), json!({}), &[&format!("value-{k}")])
            .await?;
    }
    // A regional secret of the same id holds another value: `location` must pick it.
    gcp.put_secret_in(
        "projects/hush-test/locations/europe-west1",
        &format!("{n}-app-one"),
        json!({}),
        &["regional-one"],
    )
    .await?;
    let (email, key) = gcp.service_account("store").await?;
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(
        &secrets,
        "gcpsm-secret",
        &[("secret-access-credentials", &key)],
    )
    .await?;
    // The regional store has a key of its own (a store's client holds its own token).
    let (_, regional_key) = gcp.service_account("regional").await?;
    secret_from_literals(
        &secrets,
        "gcpsm-regional",
        &[("secret-access-credentials", &regional_key)],
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    // ESO's documented store (docs/provider/google-secrets-manager.md), names changed.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "gcp-store"},
        "spec": {"controller": n, "provider": {"gcpsm": {"projectID": "hush-test",
            "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcpsm-secret", "key": "secret-access-credentials"}}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "gcp-regional"},
        "spec": {"controller": n, "provider": {"gcpsm": {"projectID": "hush-test", "location": "europe-west1",
            "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcpsm-regional", "key": "secret-access-credentials"}}}}}}})).await?;
    // Workload identity: the cluster's identity namespace trusts this API server's tokens; the
    // project and cluster name come from the metadata server, the location from the store.
    let (issuer, jwks) = cluster_issuer(&client).await?;
    let cluster = format!("c-{n}");
    gcp.manage(
        "metadata-cluster",
        json!({"project": "hush-test", "name": cluster}),
    )
    .await?;
    gcp.manage("workload-providers", json!({"audience": format!(
            "identitynamespace:hush-test.svc.id.goog:https://container.googleapis.com/v1/projects/hush-test/locations/europe-west1/clusters/{cluster}"),
        "issuer": issuer, "jwks": jwks, "subject_audience": "hush-test.svc.id.goog"}))
        .await?;
    let gsa = format!("app-{n}@hush-test.iam.gserviceaccount.com");
    let subject = |sa: &str| format!("system:serviceaccount:{n}:{sa}");
    gcp.manage(
        "impersonation",
        json!({"service_account": gsa, "members": [subject("app")]}),
    )
    .await?;
    let sas: Api<ServiceAccount> = ns.api();
    for (sa, annotations) in [
        ("app", json!({"iam.gke.io/gcp-service-account": gsa})),
        ("plain", json!({})),
        ("stranger", json!({"iam.gke.io/gcp-service-account": gsa})),
    ] {
        apply(
            &sas,
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": sa, "annotations": annotations}}),
        )
        .await?;
    }
    for (store, sa) in [
        ("gcp-wi", "app"),
        ("gcp-wi-plain", "plain"),
        ("gcp-wi-stranger", "stranger"),
    ] {
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": store},
            "spec": {"controller": n, "provider": {"gcpsm": {"projectID": "hush-test",
                "auth": {"workloadIdentity": {"clusterLocation": "europe-west1",
                    "serviceAccountRef": {"name": sa}}}}}}})).await?;
    }
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "gcp-wif"},
        "spec": {"controller": n, "provider": {"gcpsm": {"projectID": "hush-test",
            "auth": {"workloadIdentityFederation": {"audience": "x"}}}}}})).await?;
    // The controller's own identity from the metadata server: a ClusterSecretStore may use it,
    // a SecretStore may not. Its own controller class keeps other tests' controllers away.
    let node_email = gcp.metadata_identity("node").await?;
    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    let css_name = format!("{n}-node");
    apply(&css, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": css_name},
        "spec": {"controller": n, "conditions": [{"namespaces": [n]}],
            "provider": {"gcpsm": {"projectID": "hush-test"}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "gcp-node-ns"},
        "spec": {"controller": n, "provider": {"gcpsm": {"projectID": "hush-test"}}}})).await?;
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "db"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "gcp-store", "kind": "SecretStore"},
            "target": {"name": "db-secret"},
            "data": [
                {"secretKey": "password", "remoteRef": {"key": format!("{n}-db"), "property": "password"}},
                {"secretKey": "dotted", "remoteRef": {"key": format!("{n}-db"), "property": "a.b"}},
                {"secretKey": "old", "remoteRef": {"key": format!("{n}-db"), "version": "1", "property": "password"}}
            ],
            "dataFrom": [
                {"extract": {"key": format!("{n}-db")}},
                {"find": {"name": {"regexp": format!("^{n}-app-")}}},
                {"find": {"tags": {"team": n.clone(), "tier": "web"}}, "rewrite": [{"regexp": {"source": "(.*)", "target": "tagged-$1"}}]}
            ]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "missing"},
        "spec": {"secretStoreRef": {"name": "gcp-store"}, "target": {"name": "missing-secret"},
            "data": [{"secretKey": "x", "remoteRef": {"key": format!("{n}-nope")}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "node"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": css_name, "kind": "ClusterSecretStore"},
            "target": {"name": "node-secret"},
            "data": [
                {"secretKey": "value", "remoteRef": {"key": format!("{n}-app-one")}},
                {"secretKey": "meta", "remoteRef": {"key": format!("{n}-app-one"), "metadataPolicy": "Fetch"}},
                {"secretKey": "tier", "remoteRef": {"key": format!("{n}-app-one"), "metadataPolicy": "Fetch", "property": "labels.tier"}},
                {"secretKey": "labels", "remoteRef": {"key": format!("{n}-app-one"), "metadataPolicy": "Fetch", "property": "labels"}}
            ]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "regional"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "gcp-regional"},
            "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}-app-one")}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "node-ns"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "gcp-node-ns"},
            "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}-app-one")}}]}})).await?;
    for (name, store) in [
        ("wi-0", "gcp-wi"),
        ("wi-1", "gcp-wi"),
        ("wi-2", "gcp-wi"),
        ("wi-plain", "gcp-wi-plain"),
    ] {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": {"refreshInterval": "2s", "secretStoreRef": {"name": store},
                "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}-db"), "property": "password"}}]}})).await?;
    }
    for i in 0..OBJECTS {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": format!("w-{i}")},
            "spec": {"refreshInterval": format!("{INTERVAL_SECS}s"), "secretStoreRef": {"name": "gcp-store"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}-k{}", i % KEYS)}}]}})).await?;
    }
    wait_ready(&es, "db", "True", "SecretSynced").await?;
    let s = secrets.get("db-secret").await?;
    assert_eq!(value(&s, "password"), pw);
    assert_eq!(value(&s, "dotted"), "dotted");
    assert_eq!(value(&s, "old"), "old");
    assert_eq!(value(&s, "port"), "5432");
    assert_eq!(value(&s, &format!("{n}-app-one")), "one");
    assert_eq!(value(&s, &format!("{n}-app-two")), "two");
    assert_eq!(value(&s, &format!("tagged-{n}-app-one")), "one");
    ensure!(
        value(&s, &format!("tagged-{n}-app-two")).is_empty(),
        "tags filter ignored"
    );
    wait_ready(&es, "missing", "False", "SecretSyncedError").await?;
    wait_ready(&es, "node", "True", "SecretSynced").await?;
    let s = secrets.get("node-secret").await?;
    assert_eq!(value(&s, "value"), "one");
    assert_eq!(value(&s, "tier"), "web");
    assert_eq!(
        value(&s, "labels"),
        format!(r#"{{"team":"{n}","tier":"web"}}"#)
    );
    assert_eq!(
        value(&s, "meta"),
        format!(r#"{{"annotations":{{}},"labels":{{"team":"{n}","tier":"web"}}}}"#)
    );
    wait_ready(&es, "node-ns", "False", "SecretSyncedError").await?;
    wait_ready(&es, "regional", "True", "SecretSynced").await?;
    assert_eq!(value(&secrets.get("regional").await?, "v"), "regional-one");
    for i in 0..OBJECTS {
        wait_ready(&es, &format!("w-{i}"), "True", "SecretSynced").await?;
    }
    for name in ["wi-0", "wi-1", "wi-2", "wi-plain"] {
        wait_ready(&es, name, "True", "SecretSynced").await?;
        assert_eq!(value(&secrets.get(name).await?, "password"), pw);
    }
    // A field hush does not implement is refused by name; a ServiceAccount that may not
    // impersonate the Google service account is refused by IAM.
    store_message(&stores, "gcp-wif", "gcpsm.auth.workloadIdentityFederation").await?;
    store_message(
        &stores,
        "gcp-wi-stranger",
        "iam.serviceAccounts.getAccessToken",
    )
    .await?;
    let wave_keys = format!("{n}-k");
    check_waves(&es, "w-", OBJECTS, KEYS, INTERVAL_SECS, || {
        gcp.reads(&wave_keys)
    })
    .await?;
    for i in 0..OBJECTS {
        assert_eq!(
            value(&secrets.get(&format!("w-{i}")).await?, "v"),
            format!("value-{}", i % KEYS)
        );
    }
    // One token exchange for the store's key over every read and wave.
    let calls = gcp.calls().await?;
    assert_eq!(calls["tokens"][&email], 1, "{calls}");
    assert_eq!(calls["tokens"][&node_email], 1, "{calls}");
    // Workload identity: 4 ExternalSecrets refreshed every 2 s through the run, one STS
    // exchange per ServiceAccount and one generateAccessToken.
    assert_eq!(
        calls["tokens"][format!("sts:{}", subject("app"))],
        1,
        "{calls}"
    );
    assert_eq!(
        calls["tokens"][format!("sts:{}", subject("plain"))],
        1,
        "{calls}"
    );
    assert_eq!(calls["tokens"][&gsa], 1, "{calls}");
    ensure!(!logs_contain("eyJ"), "a JWT in the controller's logs");
    let ns_store = stores.get("gcp-node-ns").await?;
    let msg = serde_json::to_string(&ns_store.status)?;
    ensure!(
        msg.contains("may not authenticate as the controller"),
        "gcp-node-ns store: {msg}"
    );
    css.delete(&css_name, &Default::default()).await?;
    assert_no_canary(&client, &ns, &es, &pw).await?;
    ctl.stop().await?;
    Ok(())
}

/// Waits until store `name`'s Ready condition message contains `needle`.
async fn store_message(stores: &Api<SecretStore>, name: &str, needle: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let store = stores.get(name).await?;
        let msg = store
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        if msg.contains(needle) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store {name} message: {msg:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
