//! ClusterExternalSecret fan-out on the real API server with OpenBao: ExternalSecrets in the
//! selected namespaces (label selectors OR names), a namespace created or relabelled later, a
//! foreign ExternalSecret in the way, a rename, and deletion. Its own test binary: the
//! controller runs cluster-wide, as ClusterExternalSecrets need.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::collections::BTreeSet;

use anyhow::{Result, bail, ensure};
use external_harness::*;
use hush_api::external_secrets::{
    ClusterExternalSecret, ClusterExternalSecretStatus, ClusterSecretStore, ExternalSecret,
};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// ClusterExternalSecrets have no controller class: one cluster-wide fan-out per cluster (the
/// leader). The tests of this binary each start one, so they take turns.
static ONE_FAN_OUT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// Waits until the status satisfies `check`.
async fn wait_status(
    api: &Api<ClusterExternalSecret>,
    name: &str,
    what: &str,
    check: impl Fn(&ClusterExternalSecretStatus) -> bool,
) -> Result<ClusterExternalSecretStatus> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = api.get(name).await?.status.unwrap_or_default();
        if check(&status) {
            return Ok(status);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("ClusterExternalSecret {name}: {what}; status {status:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn ready(s: &ClusterExternalSecretStatus) -> Option<(String, Option<String>)> {
    s.conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.message.clone()))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

async fn wait_exists(api: &Api<ExternalSecret>, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get_opt(name).await?.is_none() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "ExternalSecret {name} not created"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn wait_gone(api: &Api<ExternalSecret>, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get_opt(name).await?.is_some() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "ExternalSecret {name} still there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and scripts/services/openbao.sh"]
async fn cluster_external_secret_fans_out_to_selected_namespaces() -> Result<()> {
    let _turn = ONE_FAN_OUT.lock().await;
    let client = setup().await?;
    let home = TestNamespace::create(&client, "ces-home").await?;
    let tag = home.name().to_owned();
    let password = canary("ces");
    bao(
        "POST",
        &format!("secret/data/{tag}/db"),
        Some(json!({"data": {"password": password}})),
    )
    .await?;
    vault_token_secret(&home.api()).await?;
    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    let store = format!("{tag}-vault");
    apply(&css, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": store},
        "spec": {"controller": tag, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": tag}}}}}})).await?;

    let select = format!("ces-{}", &tag[tag.len() - 5..]);
    let team_a = labelled(&client, "ces-a", json!({select.as_str(): "yes"})).await?;
    let team_b = labelled(&client, "ces-b", json!({"tier": "gold", "owner": select})).await?;
    let by_name = TestNamespace::create(&client, "ces-named").await?;
    let other = TestNamespace::create(&client, "ces-other").await?;

    let ctl = Controller::start_cluster_wide(&client, &tag).await?;
    let ces_api: Api<ClusterExternalSecret> = Api::all(client.clone());
    let ces_name = format!("{tag}-db");
    apply(&ces_api, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
        "metadata": {"name": ces_name},
        "spec": {
            "externalSecretName": "db",
            "externalSecretMetadata": {"labels": {"app": "shop"}, "annotations": {"note": "from-ces"}},
            // The deprecated single selector, the list (any matches) and names.
            "namespaceSelector": {"matchLabels": {select.as_str(): "yes"}},
            "namespaceSelectors": [{"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["gold"]},
                {"key": "owner", "operator": "In", "values": [select.as_str()]}]}],
            "namespaces": [by_name.name()],
            // Long: new and relabelled namespaces must come from the Namespace watch.
            "refreshTime": "1h",
            "externalSecretSpec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
                "target": {"name": "app-db"},
                "data": [{"secretKey": "password", "remoteRef": {"key": format!("{tag}/db"), "property": "password"}}]
            }
        }})).await?;

    let want = set(&[team_a.name(), team_b.name(), by_name.name()]);
    let status = wait_status(&ces_api, &ces_name, "three namespaces provisioned", |s| {
        s.provisioned_namespaces
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            == want
    })
    .await?;
    assert_eq!(ready(&status), Some(("True".into(), None)));
    assert_eq!(status.external_secret_name.as_deref(), Some("db"));
    let mut sorted = status.provisioned_namespaces.clone();
    sorted.sort();
    assert_eq!(
        status.provisioned_namespaces, sorted,
        "ESO sorts provisionedNamespaces"
    );
    let ces = ces_api.get(&ces_name).await?;
    assert!(
        ces.finalizers()
            .iter()
            .any(|f| f == hush_external_controller::cluster::FINALIZER)
    );
    for ns in [&team_a, &team_b, &by_name] {
        let es_api: Api<ExternalSecret> = ns.api();
        let es = wait_ready(&es_api, "db", "True", "SecretSynced").await?;
        assert_eq!(es.labels().get("app").map(String::as_str), Some("shop"));
        assert_eq!(
            es.annotations().get("note").map(String::as_str),
            Some("from-ces")
        );
        let owner = es
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .unwrap();
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ClusterExternalSecret", ces_name.as_str())
        );
        assert_eq!(es.spec, ces.spec.external_secret_spec);
        let secret = ns.api::<Secret>().get("app-db").await?;
        assert_eq!(value(&secret, "password"), password);
    }
    ensure!(
        other.api::<ExternalSecret>().get_opt("db").await?.is_none(),
        "an unselected namespace got the ExternalSecret"
    );

    // A namespace created later with the label, and one in the way (a foreign ExternalSecret).
    let late = labelled(&client, "ces-late", json!({select.as_str(): "yes"})).await?;
    let blocked = TestNamespace::create(&client, "ces-blocked").await?;
    apply(&blocked.api::<ExternalSecret>(), json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "db"},
        "spec": {"secretStoreRef": {"name": "nowhere"}, "data": [{"secretKey": "x", "remoteRef": {"key": "y"}}]}})).await?;
    Api::<Namespace>::all(client.clone())
        .patch(
            blocked.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {select.as_str(): "yes"}}})),
        )
        .await?;
    let status = wait_status(
        &ces_api,
        &ces_name,
        "late provisioned, blocked failed",
        |s| {
            s.provisioned_namespaces.iter().any(|n| n == late.name())
                && s.failed_namespaces
                    .iter()
                    .any(|f| f.namespace == blocked.name())
        },
    )
    .await?;
    assert_eq!(
        ready(&status),
        Some(("False".into(), Some("one or more namespaces failed".into())))
    );
    let failure = status
        .failed_namespaces
        .iter()
        .find(|f| f.namespace == blocked.name())
        .unwrap();
    assert_eq!(
        failure.reason.as_deref(),
        Some("external secret already exists in namespace")
    );
    let foreign = blocked.api::<ExternalSecret>().get("db").await?;
    assert!(
        foreign.owner_references().is_empty(),
        "the foreign ExternalSecret was taken over"
    );
    wait_ready(&late.api(), "db", "True", "SecretSynced").await?;

    // team_b stops matching: its ExternalSecret goes (the Namespace watch, not refreshTime).
    Api::<Namespace>::all(client.clone())
        .patch(
            team_b.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "silver"}}})),
        )
        .await?;
    wait_gone(&team_b.api(), "db").await?;
    wait_status(&ces_api, &ces_name, "team_b no longer provisioned", |s| {
        !s.provisioned_namespaces.iter().any(|n| n == team_b.name())
    })
    .await?;

    // A spec change reaches every child; a rename replaces them.
    ces_api
        .patch(&ces_name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"externalSecretName": "db2",
            "externalSecretMetadata": {"labels": {"app": "shop", "v": "2"}, "annotations": null}}})))
        .await?;
    for ns in [&team_a, &by_name, &late] {
        wait_gone(&ns.api(), "db").await?;
        // The old child's Secret is still there (no garbage collector on this API server): the
        // new child waits for its name. Deleting it (the collector's part) must wake the new
        // child at once, through the Secret watch mapped by target name as in ESO.
        wait_exists(&ns.api(), "db2").await?;
        wait_ready(&ns.api(), "db2", "False", "SecretSyncedError").await?;
        ns.api::<Secret>()
            .delete("app-db", &DeleteParams::default())
            .await?;
        wait_ready(&ns.api(), "db2", "True", "SecretSynced").await?;
    }
    // force-sync on the ClusterExternalSecret is mirrored to every child.
    ces_api
        .patch(
            &ces_name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"external-secrets.io/force-sync": "1"}}}),
            ),
        )
        .await?;
    for ns in [&team_a, &by_name, &late] {
        let es_api: Api<ExternalSecret> = ns.api();
        let deadline = tokio::time::Instant::now() + WAIT;
        let es = loop {
            let es = es_api.get("db2").await?;
            let mirrored =
                es.annotations().get("external-secrets.io/force-sync") == Some(&"1".to_owned());
            if mirrored
                && external_harness::ready(&es) == Some(("True".into(), "SecretSynced".into()))
            {
                break es;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "db2 in {}: not synced with the mirrored force-sync: {:?}",
                ns.name(),
                es.status
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        assert_eq!(es.labels().get("v").map(String::as_str), Some("2"));
        ensure!(
            es.annotations().get("note").is_none(),
            "old annotation kept"
        );
        assert_eq!(
            value(&ns.api::<Secret>().get("app-db").await?, "password"),
            password
        );
    }
    // The foreign ExternalSecret named like the old children is not ours: it stays.
    ensure!(
        blocked
            .api::<ExternalSecret>()
            .get_opt("db")
            .await?
            .is_some(),
        "foreign ExternalSecret deleted"
    );
    let status = wait_status(&ces_api, &ces_name, "renamed, all provisioned", |s| {
        s.external_secret_name.as_deref() == Some("db2")
            && s.failed_namespaces.is_empty()
            && s.provisioned_namespaces.len() == 4
    })
    .await?;
    assert_eq!(ready(&status), Some(("True".into(), None)));

    // Deletion: the finalizer removes the children (no garbage collector on this API server).
    ces_api.delete(&ces_name, &DeleteParams::default()).await?;
    for ns in [&team_a, &by_name, &late, &blocked] {
        wait_gone(&ns.api(), "db2").await?;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while ces_api.get_opt(&ces_name).await?.is_some() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "ClusterExternalSecret not deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    ensure!(
        blocked
            .api::<ExternalSecret>()
            .get_opt("db")
            .await?
            .is_some(),
        "foreign ExternalSecret deleted"
    );

    for ns in [&home, &team_a, &team_b, &by_name, &late, &blocked, &other] {
        assert_no_canary(&client, ns, &ns.api(), &password).await?;
    }
    let events: Api<Event> = Api::all(client.clone());
    for e in events.list(&ListParams::default()).await? {
        ensure!(
            !serde_json::to_string(&e)?.contains(&password),
            "canary in an event"
        );
    }
    ctl.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn eso_namespace_finalizer_is_removed_on_deletion() -> Result<()> {
    let _turn = ONE_FAN_OUT.lock().await;
    // A take-over: ESO left its per-ClusterExternalSecret finalizer on a namespace.
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "ces-eso-fin").await?;
    let tag = ns.name().to_owned();
    let ces_name = format!("{tag}-eso");
    let finalizer = hush_external_controller::cluster::namespace_finalizer(&ces_name);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            &tag,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [finalizer]}})),
        )
        .await?;
    let ctl = Controller::start_cluster_wide(&client, &tag).await?;
    let ces_api: Api<ClusterExternalSecret> = Api::all(client.clone());
    apply(&ces_api, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
        "metadata": {"name": ces_name},
        "spec": {"namespaces": [tag], "refreshTime": "1h",
            "externalSecretSpec": {"secretStoreRef": {"name": "none"}, "data": [{"secretKey": "x", "remoteRef": {"key": "y"}}]}}})).await?;
    wait_status(&ces_api, &ces_name, "provisioned", |s| {
        s.provisioned_namespaces == [tag.clone()]
    })
    .await?;
    ces_api.delete(&ces_name, &DeleteParams::default()).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = namespaces.get(&tag).await?;
        if !n.finalizers().contains(&finalizer) && ces_api.get_opt(&ces_name).await?.is_none() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "ESO's namespace finalizer kept: {:?}",
            n.finalizers()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    wait_gone(&ns.api(), &ces_name).await?;
    ctl.stop().await?;
    Ok(())
}
