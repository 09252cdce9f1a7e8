//! PushSecret to the `kubernetes`, `webhook` and `fake` providers on the real kube-apiserver,
//! from the manifests of ESO v0.16.2's docs/provider/kubernetes.md and webhook.md (applied
//! unchanged but for names, namespaces and, where the page leaves them out with `# ...`, the
//! store and source of its PushSecrets; the page's `remoteKey: backend_secrets` is not a
//! Kubernetes name and becomes `backend-secrets`).
//!
//! - kubernetes: a key pushed into a Secret of another namespace with the store's own token
//!   (the page's `eso-store-push-role`), following a change of the source; the source's type
//!   or `template.type`; labels and annotations from the source, the template and
//!   `PushSecretMetadata`; other keys of an existing Secret kept; the whole Secret copied;
//!   `updatePolicy: IfNotExists`; `deletionPolicy: Delete` removing a key, then the Secret with
//!   its last key; `secretKey` without `property` refused by name.
//! - webhook: the page's store (POST to its URL with the templated query and body, the
//!   credentials' Basic auth); `deletionPolicy: Delete` and `updatePolicy: IfNotExists` refused
//!   by name, nothing pushed.
//! - fake: pushed values read back by an ExternalSecret through the same store; deleted with
//!   `deletionPolicy: Delete`.
//!
//! Canaries: no pushed value in PushSecret status, events or the controller's logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;
mod webhook_server;

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use eso_peer::{doc_named, eso_provider_doc};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_api::push_secrets::PushSecret;
use hush_testkit::TestNamespace;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Event, Secret, ServiceAccount};
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

const V1: &str = "external-secrets.io/v1";
const PS: &str = "external-secrets.io/v1alpha1";

fn push_ready(ps: &PushSecret) -> Option<(String, String, String)> {
    ps.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn wait_push(api: &Api<PushSecret>, name: &str, status: &str) -> Result<PushSecret> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ps = api.get(name).await?;
        if push_ready(&ps).is_some_and(|(s, _, _)| s == status) {
            return Ok(ps);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "PushSecret {name}: Ready is {:?}, want {status}",
                push_ready(&ps)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls Secret `name` of `api` until `check` holds (`None`: absent).
async fn eventually_secret(
    api: &Api<Secret>,
    name: &str,
    what: &str,
    check: impl Fn(Option<&Secret>) -> bool,
) -> Result<Option<Secret>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = api.get_opt(name).await?;
        if check(s.as_ref()) {
            return Ok(s);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{what}: Secret {name} is {:?}",
                s.map(|s| s.data.map(|d| d.into_keys().collect::<Vec<_>>()))
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn keys(s: &Secret) -> Vec<String> {
    s.data.clone().unwrap_or_default().into_keys().collect()
}

/// Creates a documented object in `ns` (ESO's store kinds at `external-secrets.io/v1`).
async fn apply_doc(client: &Client, ns: &str, mut doc: Value) -> Result<()> {
    if doc["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("external-secrets.io/") && doc["kind"] != "PushSecret")
    {
        doc["apiVersion"] = json!(V1);
    }
    doc["metadata"]["namespace"] = json!(ns);
    let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let kind = doc["kind"].as_str().context("no kind")?;
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let obj: DynamicObject = serde_json::from_value(doc)?;
    api.create(&PostParams::default(), &obj).await?;
    Ok(())
}

/// No value in PushSecret statuses, the namespace's events or the logs.
async fn assert_no_values(client: &Client, ns: &str, values: &[&str]) -> Result<()> {
    let pushes = serde_json::to_string(
        &Api::<PushSecret>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await?
            .items,
    )?;
    let events = serde_json::to_string(
        &Api::<Event>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await?
            .items,
    )?;
    for v in values {
        ensure!(!pushes.contains(v), "a value in a PushSecret");
        ensure!(!events.contains(v), "a value in an event");
        ensure!(!logs_contain(v), "a value in the logs");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn push_secret_to_the_kubernetes_provider() -> Result<()> {
    let client = setup().await?;
    let tenant = TestNamespace::create(&client, "ps-k8s").await?;
    let remote = TestNamespace::create(&client, "ps-k8s-remote").await?;
    let (t, r) = (tenant.name().to_owned(), remote.name().to_owned());
    let docs = eso_provider_doc("kubernetes.md")?;
    let first = canary("k8s-push-first");
    let second = canary("k8s-push-second");

    // The page's push Role in the remote namespace, bound to a ServiceAccount there whose
    // token the tenant's store holds (the page's `kubernetes-secret-store`, renamed to the
    // `k8s-store-remote-ns` its PushSecrets name).
    let mut role = doc_named(&docs, "Role", "eso-store-push-role")?;
    role["metadata"]["namespace"] = json!(r);
    apply_doc(&client, &r, role).await?;
    apply_doc(
        &client,
        &r,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "pusher"}}),
    )
    .await?;
    apply_doc(&client, &r, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "pusher"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "eso-store-push-role"},
        "subjects": [{"kind": "ServiceAccount", "name": "pusher", "namespace": r}]})).await?;
    let token = remote
        .api::<ServiceAccount>()
        .create_token_request("pusher", &PostParams::default(), &TokenRequest::default())
        .await?
        .status
        .context("no TokenRequest status")?
        .token;
    let mut token_secret = doc_named(&docs, "Secret", "eso-token")?;
    token_secret["stringData"]["token"] = json!(token);
    apply_doc(&client, &t, token_secret).await?;
    apply_doc(
        &client,
        &t,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": kte_file("pki/ca.crt")?}}),
    )
    .await?;
    let mut store = doc_named(&docs, "SecretStore", "kubernetes-secret-store")?;
    store["metadata"]["name"] = json!("k8s-store-remote-ns");
    store["spec"]["provider"]["kubernetes"]["remoteNamespace"] = json!(r);
    apply_doc(&client, &t, store).await?;

    // The source, with a label and an annotation that travel, and what the templates use.
    let secrets: Api<Secret> = tenant.api();
    apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "pokedex-credentials", "labels": {"team": "kanto"},
            "annotations": {"note": "from-source"}},
        "stringData": {"best-pokemon": first, "dockerconfigjson": "{\"auths\":{}}",
            "hostname": "db", "database": "pokedex", "example-1": "https://x"}}),
    )
    .await?;
    // A remote Secret that exists already: its other keys stay (ESO has no ownership marker
    // for this provider; the store's RBAC is the boundary).
    let remote_secrets: Api<Secret> = remote.api();
    secret_from_literals(&remote_secrets, "remote-best-pokemon", &[("other", "keep")]).await?;

    let ctl = Controller::start(&client, &t).await?;
    let pushes: Api<PushSecret> = tenant.api();
    let documented: Vec<Value> = docs
        .iter()
        .filter(|d| d["kind"] == "PushSecret")
        .cloned()
        .collect();
    ensure!(documented.len() == 4, "the page has 4 PushSecrets");
    let with_source = |mut d: Value, name: &str| {
        d["metadata"]["name"] = json!(name);
        d["spec"]["secretStoreRefs"] =
            json!([{"name": "k8s-store-remote-ns", "kind": "SecretStore"}]);
        d["spec"]["selector"] = json!({"secret": {"name": "pokedex-credentials"}});
        d
    };
    apply_doc(&client, &t, documented[0].clone()).await?;
    let mut typed = documented[1].clone();
    typed["metadata"]["name"] = json!("example-type");
    apply_doc(&client, &t, typed).await?;
    let mut templated = with_source(documented[2].clone(), "example-template");
    templated["spec"]["data"][0]["match"]["remoteRef"]["remoteKey"] = json!("backend-secrets");
    apply_doc(&client, &t, templated).await?;
    apply_doc(
        &client,
        &t,
        with_source(documented[3].clone(), "example-metadata"),
    )
    .await?;

    wait_push(&pushes, "example", "True").await?;
    let got = remote_secrets.get("remote-best-pokemon").await?;
    assert_eq!(value(&got, "best-pokemon"), first);
    assert_eq!(value(&got, "other"), "keep");
    assert_eq!(got.labels()["team"], "kanto");
    assert_eq!(got.annotations()["note"], "from-source");
    assert_eq!(got.type_.as_deref(), Some("Opaque"));

    wait_push(&pushes, "example-type", "True").await?;
    let docker = remote_secrets.get("remote-dockerconfigjson").await?;
    assert_eq!(
        docker.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert_eq!(value(&docker, ".dockerconfigjson"), "{\"auths\":{}}");

    wait_push(&pushes, "example-template", "True").await?;
    let backend = remote_secrets.get("backend-secrets").await?;
    assert_eq!(
        value(&backend, "mysql_connection_string"),
        "mysql://db:3306/pokedex"
    );
    assert_eq!(backend.labels()["app.kubernetes.io/part-of"], "argocd");
    assert_eq!(backend.labels()["team"], "kanto");

    wait_push(&pushes, "example-metadata", "True").await?;
    let meta = remote_secrets.get("example-remote-secret").await?;
    assert_eq!(value(&meta, "url"), "https://x");
    assert_eq!(meta.labels()["color"], "red");
    assert_eq!(meta.labels()["team"], "kanto");
    ensure!(
        meta.annotations().values().any(|v| v == "please"),
        "{:?}",
        meta.annotations()
    );

    // A change of the source is pushed on the next reconcile (an annotation forces one).
    secrets
        .patch(
            "pokedex-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"best-pokemon": second}})),
        )
        .await?;
    pushes
        .patch(
            "example",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await?;
    eventually_secret(
        &remote_secrets,
        "remote-best-pokemon",
        "the new value",
        |s| s.is_some_and(|s| value(s, "best-pokemon") == second),
    )
    .await?;

    // Whole Secret (no secretKey, no property): every key copied; IfNotExists leaves an existing
    // key alone; secretKey without property refused by name; deletionPolicy Delete.
    apply(
        &pushes,
        json!({"apiVersion": PS, "kind": "PushSecret", "metadata": {"name": "whole"},
        "spec": {"deletionPolicy": "Delete", "secretStoreRefs": [{"name": "k8s-store-remote-ns"}],
            "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"remoteRef": {"remoteKey": "whole-copy"}}}]}}),
    )
    .await?;
    apply(&pushes, json!({"apiVersion": PS, "kind": "PushSecret", "metadata": {"name": "if-not-exists"},
        "spec": {"updatePolicy": "IfNotExists", "secretStoreRefs": [{"name": "k8s-store-remote-ns"}],
            "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"secretKey": "hostname", "remoteRef": {"remoteKey": "remote-best-pokemon", "property": "other"}}}]}})).await?;
    apply(&pushes, json!({"apiVersion": PS, "kind": "PushSecret", "metadata": {"name": "no-property"},
        "spec": {"secretStoreRefs": [{"name": "k8s-store-remote-ns"}],
            "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"secretKey": "hostname", "remoteRef": {"remoteKey": "no-property"}}}]}})).await?;
    apply(&pushes, json!({"apiVersion": PS, "kind": "PushSecret", "metadata": {"name": "deleting"},
        "spec": {"deletionPolicy": "Delete", "secretStoreRefs": [{"name": "k8s-store-remote-ns"}],
            "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [
                {"match": {"secretKey": "hostname", "remoteRef": {"remoteKey": "two-keys", "property": "host"}}},
                {"match": {"secretKey": "database", "remoteRef": {"remoteKey": "two-keys", "property": "db"}}}]}})).await?;
    wait_push(&pushes, "whole", "True").await?;
    let whole = remote_secrets.get("whole-copy").await?;
    assert_eq!(
        keys(&whole),
        [
            "best-pokemon",
            "database",
            "dockerconfigjson",
            "example-1",
            "hostname"
        ]
    );
    assert_eq!(value(&whole, "best-pokemon"), second);
    let ps = wait_push(&pushes, "if-not-exists", "True").await?;
    ensure!(
        push_ready(&ps)
            .unwrap()
            .2
            .contains("Existing secrets in providers unchanged")
    );
    assert_eq!(
        value(&remote_secrets.get("remote-best-pokemon").await?, "other"),
        "keep"
    );
    let ps = wait_push(&pushes, "no-property", "False").await?;
    let msg = push_ready(&ps).unwrap().2;
    ensure!(msg.contains("remoteRef.property"), "{msg}");
    ensure!(remote_secrets.get_opt("no-property").await?.is_none());
    wait_push(&pushes, "deleting", "True").await?;
    assert_eq!(keys(&remote_secrets.get("two-keys").await?), ["db", "host"]);

    // An entry dropped: its key removed, the other kept; the PushSecret deleted: the Secret
    // goes with its last key. The whole-Secret push's Secret goes too.
    pushes
        .patch("deleting", &PatchParams::default(), &Patch::Merge(json!({"spec": {"data": [
            {"match": {"secretKey": "hostname", "remoteRef": {"remoteKey": "two-keys", "property": "host"}}}]}})))
        .await?;
    eventually_secret(
        &remote_secrets,
        "two-keys",
        "the dropped key removed",
        |s| s.is_some_and(|s| keys(s) == ["host"]),
    )
    .await?;
    pushes.delete("deleting", &DeleteParams::default()).await?;
    pushes.delete("whole", &DeleteParams::default()).await?;
    eventually_secret(
        &remote_secrets,
        "two-keys",
        "deleted with its last key",
        |s| s.is_none(),
    )
    .await?;
    eventually_secret(
        &remote_secrets,
        "whole-copy",
        "the whole-Secret push deleted",
        |s| s.is_none(),
    )
    .await?;
    // deletionPolicy None (the page's PushSecrets): deleting one leaves what it pushed.
    pushes.delete("example", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        value(
            &remote_secrets.get("remote-best-pokemon").await?,
            "best-pokemon"
        ),
        second
    );

    assert_no_values(&client, &t, &[&first, &second]).await?;
    ctl.stop().await
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn push_secret_to_the_webhook_and_fake_providers() -> Result<()> {
    let server = webhook_server::start().await;
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "ps-webhook").await?;
    let n = ns.name().to_owned();
    let docs = eso_provider_doc("webhook.md")?;
    let pushed = canary("webhook-push");
    let password = canary("webhook-password");

    let secrets: Api<Secret> = ns.api();
    apply(&secrets, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "webhook-credentials", "labels": {"external-secrets.io/type": "webhook"}},
        "stringData": {"username": "test", "password": password}})).await?;
    secret_from_literals(
        &secrets,
        "test-secret",
        &[("testsecret", &pushed), ("other", "o")],
    )
    .await?;
    // The page's push store, httpbin.org → the local server's recording /push.
    // The page names two stores `webhook-backend`: the push one is the one with `/push`.
    let mut store = docs
        .iter()
        .find(|d| {
            d["kind"] == "SecretStore"
                && d["spec"]["provider"]["webhook"]["url"]
                    .as_str()
                    .is_some_and(|u| u.contains("/push?"))
        })
        .cloned()
        .context("webhook.md has no push store")?;
    let url = store["spec"]["provider"]["webhook"]["url"]
        .as_str()
        .context("url")?
        .replace("http://httpbin.org", &server.base);
    store["spec"]["provider"]["webhook"]["url"] = json!(url);
    apply_doc(&client, &n, store).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        json!({"apiVersion": V1, "kind": "SecretStore", "metadata": {"name": "fake"},
        "spec": {"provider": {"fake": {"data": [{"key": "taken", "value": "store"}]}}}}),
    )
    .await?;

    let ctl = Controller::start(&client, &n).await?;
    let pushes: Api<PushSecret> = ns.api();
    apply_doc(
        &client,
        &n,
        doc_named(&docs, "PushSecret", "pushsecret-example")?,
    )
    .await?;
    wait_push(&pushes, "pushsecret-example", "True").await?;
    let got = server.pushes();
    ensure!(got.len() == 1, "{} requests", got.len());
    let req = &got[0];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["args"]["id"], "remotekey");
    assert_eq!(req["args"]["secret"], "testsecret");
    assert_eq!(req["headers"]["Content-Type"], "application/json");
    let body: Value = serde_json::from_str(req["body"].as_str().unwrap())?;
    assert_eq!(body["secret-field"], pushed.as_str());
    let auth = req["headers"]["Authorization"].as_str().unwrap();
    ensure!(auth.starts_with("Basic "), "{auth}");

    // A webhook store cannot delete or tell what exists: refused by name before any request.
    for (name, field, value) in [
        ("delete", "deletionPolicy", "Delete"),
        ("if-not-exists", "updatePolicy", "IfNotExists"),
    ] {
        apply(&pushes, json!({"apiVersion": PS, "kind": "PushSecret", "metadata": {"name": name},
            "spec": {field: value, "secretStoreRefs": [{"name": "webhook-backend"}],
                "selector": {"secret": {"name": "test-secret"}},
                "data": [{"match": {"secretKey": "testsecret", "remoteRef": {"remoteKey": "x"}}}]}})).await?;
        let ps = wait_push(&pushes, name, "False").await?;
        let msg = push_ready(&ps).unwrap().2;
        ensure!(msg.contains(&format!("spec.{field}")), "{msg}");
    }
    // The delete one keeps no finalizer it could never remove once deleted.
    pushes.delete("delete", &DeleteParams::default()).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pushes.get_opt("delete").await?.is_some() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "PushSecret delete stuck"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(server.pushes().len() == 1, "a refused PushSecret pushed");

    // fake: what is pushed is read back through the same store; Delete removes it.
    apply(&pushes, json!({"apiVersion": PS, "kind": "PushSecret", "metadata": {"name": "to-fake"},
        "spec": {"deletionPolicy": "Delete", "secretStoreRefs": [{"name": "fake"}],
            "selector": {"secret": {"name": "test-secret"}},
            "data": [{"match": {"secretKey": "testsecret", "remoteRef": {"remoteKey": "pushed", "property": "value"}}},
                     {"match": {"secretKey": "other", "remoteRef": {"remoteKey": "taken"}}}]}})).await?;
    let ps = wait_push(&pushes, "to-fake", "False").await?;
    ensure!(
        push_ready(&ps).unwrap().2.contains("already exists"),
        "{:?}",
        push_ready(&ps)
    );
    pushes
        .patch("to-fake", &PatchParams::default(), &Patch::Merge(json!({"spec": {"data": [
            {"match": {"secretKey": "testsecret", "remoteRef": {"remoteKey": "pushed", "property": "value"}}}]}})))
        .await?;
    wait_push(&pushes, "to-fake", "True").await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": "read-back"},
        "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
            "data": [{"secretKey": "v", "remoteRef": {"key": "pushed", "property": "value"}}]}}),
    )
    .await?;
    wait_ready(&ess, "read-back", "True", "SecretSynced").await?;
    assert_eq!(value(&secrets.get("read-back").await?, "v"), pushed);
    pushes.delete("to-fake", &DeleteParams::default()).await?;
    wait_ready(&ess, "read-back", "False", "SecretSyncedError").await?;

    assert_no_values(&client, &n, &[&pushed, &password]).await?;
    ctl.stop().await
}
