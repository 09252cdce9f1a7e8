//! ClusterPushSecret fan-out on the real API server with OpenBao: one PushSecret per namespace
//! matching `namespaceSelectors`, each pushing its namespace's Secret through a
//! ClusterSecretStore; a spec change rolled out; a namespace that stops matching loses its
//! PushSecret; a foreign PushSecret in the way is reported. Its own test binary: the controller
//! runs cluster-wide, as ClusterPushSecrets need.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, bail};
use external_harness::*;
use hush_api::external_secrets::ClusterSecretStore;
use hush_api::push_secrets::{ClusterPushSecret, ClusterPushSecretStatus, PushSecret};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn labelled(
    client: &Client,
    prefix: &str,
    labels: serde_json::Value,
) -> Result<TestNamespace> {
    let ns = TestNamespace::create(client, prefix).await?;
    Api::<Namespace>::all(client.clone())
        .patch(
            ns.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await?;
    Ok(ns)
}

async fn wait_status(
    api: &Api<ClusterPushSecret>,
    name: &str,
    what: &str,
    check: impl Fn(&ClusterPushSecretStatus) -> bool,
) -> Result<ClusterPushSecretStatus> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = api.get(name).await?.status.unwrap_or_default();
        if check(&status) {
            return Ok(status);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("ClusterPushSecret {name}: {what}; status {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await? {
        if tokio::time::Instant::now() > deadline {
            bail!("{what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn cluster_push_secret_fans_out_to_selected_namespaces() -> Result<()> {
    let client = setup().await?;
    let home = TestNamespace::create(&client, "cps-home").await?;
    let h = home.name().to_owned();
    let class = format!("cps-{h}");
    let team = format!("team-{h}");
    let a = labelled(&client, "cps-a", json!({"push": team})).await?;
    let b = labelled(&client, "cps-b", json!({"push": team})).await?;
    let other = TestNamespace::create(&client, "cps-other").await?;
    let value = canary("cps");
    for ns in [&a, &b, &other] {
        secret_from_literals(&ns.api::<Secret>(), "src", &[("v", &value)]).await?;
    }
    // A PushSecret of the same name that the ClusterPushSecret does not own.
    let b_pushes: Api<PushSecret> = b.api();
    vault_token_secret(&home.api::<Secret>()).await?;
    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    apply(&css, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": class},
        "spec": {"controller": class, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": h}}}}}})).await?;
    let spec = |key: &str| {
        json!({"updatePolicy": "Replace", "deletionPolicy": "None", "refreshInterval": "1h",
        "secretStoreRefs": [{"name": class, "kind": "ClusterSecretStore"}],
        "selector": {"secret": {"name": "src"}},
        "data": [{"match": {"secretKey": "v", "remoteRef": {"remoteKey": format!("{h}/fanout"), "property": key}}}]})
    };
    let ctl = Controller::start_cluster_wide(&client, &class).await?;
    let cps: Api<ClusterPushSecret> = Api::all(client.clone());
    // ESO's documented ClusterPushSecret (docs/api/clusterpushsecret.md), names changed.
    apply(&cps, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "ClusterPushSecret", "metadata": {"name": class},
        "spec": {"pushSecretName": "fanned", "refreshTime": "1m",
            "pushSecretMetadata": {"labels": {"from": "cps"}},
            "namespaceSelectors": [{"matchLabels": {"push": team}}],
            "pushSecretSpec": spec("v")}})).await?;
    let want: BTreeSet<String> = [a.name(), b.name()]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    wait_status(&cps, &class, "both namespaces provisioned", |s| {
        s.provisioned_namespaces
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            == want
            && s.push_secret_name.as_deref() == Some("fanned")
    })
    .await?;
    for ns in [&a, &b] {
        let api: Api<PushSecret> = ns.api();
        wait_until("child PushSecret synced", async || {
            let ps = api.get("fanned").await?;
            Ok(ps
                .status
                .iter()
                .flat_map(|s| &s.conditions)
                .any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .await?;
        let ps = api.get("fanned").await?;
        assert_eq!(ps.labels().get("from").map(String::as_str), Some("cps"));
        assert!(
            ps.owner_references()
                .iter()
                .any(|o| o.kind == "ClusterPushSecret" && o.controller == Some(true))
        );
    }
    assert_eq!(
        bao("GET", &format!("secret/data/{h}/fanout"), None).await?["data"]["data"]["v"],
        value
    );
    assert!(other.api::<PushSecret>().get_opt("fanned").await?.is_none());

    // A spec change reaches the children (replaced, not recreated).
    cps.patch(
        &class,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"pushSecretSpec": spec("w")}})),
    )
    .await?;
    wait_until("the new property pushed", async || {
        Ok(
            bao("GET", &format!("secret/data/{h}/fanout"), None).await?["data"]["data"]["w"]
                == value,
        )
    })
    .await?;

    // b stops matching: its PushSecret goes (deletionPolicy None: the remote secret stays).
    Api::<Namespace>::all(client.clone())
        .patch(
            b.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"push": null}}})),
        )
        .await?;
    wait_status(&cps, &class, "b no longer provisioned", |s| {
        s.provisioned_namespaces == vec![a.name().to_owned()]
    })
    .await?;
    wait_until("b's PushSecret deleted", async || {
        Ok(b_pushes.get_opt("fanned").await?.is_none())
    })
    .await?;

    // A foreign PushSecret in a matching namespace is reported, not taken over.
    let c = labelled(&client, "cps-c", json!({"push": team})).await?;
    let c_pushes: Api<PushSecret> = c.api();
    apply(&c_pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret", "metadata": {"name": "fanned"},
        "spec": spec("mine")})).await?;
    let status = wait_status(&cps, &class, "c failed", |s| {
        s.failed_namespaces.iter().any(|f| f.namespace == c.name())
    })
    .await?;
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False")
    );
    assert!(c_pushes.get("fanned").await?.owner_references().is_empty());
    ctl.stop().await
}
