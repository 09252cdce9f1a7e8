//! ESO's `kubernetes` provider on the real kube-apiserver, from the manifests of ESO v0.16.2's
//! docs/provider/kubernetes.md, applied unchanged but for names (the namespaces, unique to the
//! run; `apiVersion: external-secrets.io/v1`, the only version hush serves; the ExternalSecret's
//! store name) and the `server: # ...` the page leaves to the reader (filled with the page's own
//! `caProvider` example):
//!
//! - "Access from different namespace in same cluster": a ServiceAccount of another namespace
//!   bound to a Role there, its `kubectl create token` token in a Secret of the tenant's
//!   namespace, a SecretStore with `remoteNamespace` and `caProvider` (`kube-root-ca.crt`) and no
//!   `server.url` (the cluster's own API server); `data`, `dataFrom.find` by name and by tags
//!   (the page's `fetch-tls-and-nginx`), `extract`, `metadataPolicy: Fetch`.
//! - `auth.serviceAccount` (the tenant's own ServiceAccount, bound to the Role of the other
//!   namespace) and `auth.cert` (a client certificate of a user bound to it).
//! - Tenancy: the Role's limits hold (a namespace it does not cover is `Ready=False`); a
//!   SecretStore cannot borrow a ServiceAccount of another namespace; a store without `auth`
//!   is anonymous, never the controller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;

use anyhow::{Context as _, Result, ensure};
use eso_peer::{doc_named, eso_provider_doc};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

const V1: &str = "external-secrets.io/v1";

/// Creates a documented object in `ns` (ESO's kinds at `external-secrets.io/v1`).
async fn apply_doc(client: &Client, ns: &str, mut doc: Value) -> Result<()> {
    let api_version = doc["apiVersion"].as_str().context("no apiVersion")?;
    if api_version.starts_with("external-secrets.io/") {
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

/// The page's document of `kind`/`name` placed in the namespace `shared-secrets`.
fn shared_doc(docs: &[Value], kind: &str, name: &str) -> Result<Value> {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"] == "shared-secrets"
        })
        .cloned()
        .with_context(|| format!("ESO's kubernetes.md has no {kind} {name} in shared-secrets"))
}

/// A RoleBinding of the page's `eso-store-role` in `ns` to `subject` (what
/// `kubectl create rolebinding my-store --role=eso-store-role --serviceaccount=…` writes).
fn role_binding(ns: &str, name: &str, subject: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "eso-store-role"},
        "subjects": [subject]})
}

/// The page's server block (`caProvider` of the cluster's `kube-root-ca.crt`), without `url`.
fn documented_server(docs: &[Value]) -> Result<Value> {
    let mut server = doc_named(docs, "SecretStore", "k8s-store-default-ns")?["spec"]["provider"]
        ["kubernetes"]["server"]
        .clone();
    server.as_object_mut().context("server")?.remove("url");
    Ok(server)
}

async fn expect_store_refused(stores: &Api<SecretStore>, name: &str, needle: &str) -> Result<()> {
    let (status, reason, message) = store_ready(stores, name).await?;
    ensure!(
        status == "False" && message.contains(needle),
        "store {name}: {status}/{reason}: {message} (want False naming {needle:?})"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn documented_kubernetes_stores_read_another_namespace() -> Result<()> {
    let client = setup().await?;
    let target = TestNamespace::create(&client, "es-k8s").await?;
    let shared = TestNamespace::create(&client, "es-k8s-shared").await?;
    let (t, sh) = (target.name().to_owned(), shared.name().to_owned());
    let docs = eso_provider_doc("kubernetes.md")?;

    // shared-secrets.yaml: the Secret, the Role, the ServiceAccount and its RoleBinding.
    apply_doc(
        &client,
        &sh,
        shared_doc(&docs, "Secret", "user-credentials")?,
    )
    .await?;
    apply_doc(&client, &sh, shared_doc(&docs, "Role", "eso-store-role")?).await?;
    apply_doc(
        &client,
        &sh,
        shared_doc(&docs, "ServiceAccount", "eso-service-account")?,
    )
    .await?;
    let mut binding = shared_doc(
        &docs,
        "RoleBinding",
        "bind-eso-store-role-to-eso-service-account",
    )?;
    binding["subjects"][0]["namespace"] = json!(sh);
    apply_doc(&client, &sh, binding).await?;
    // More Secrets of the shared namespace for find, extract and metadata; one a canary.
    let password = canary("k8s-provider");
    let shared_secrets: Api<Secret> = shared.api();
    secret_from_literals(&shared_secrets, "tls-web", &[("tls.crt", "CERT")]).await?;
    secret_from_literals(&shared_secrets, "unrelated", &[("x", "y")]).await?;
    apply(
        &shared_secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "nginx-conf", "labels": {"app": "nginx"}},
            "stringData": {"password": password, "cfg": "{\"port\":8080,\"tls\":true}"}}),
    )
    .await?;

    // `kubectl create token eso-service-account`: a TokenRequest.
    let token = shared
        .api::<ServiceAccount>()
        .create_token_request(
            "eso-service-account",
            &PostParams::default(),
            &TokenRequest::default(),
        )
        .await?
        .status
        .context("no TokenRequest status")?
        .token;
    let mut token_secret = doc_named(&docs, "Secret", "eso-token")?;
    token_secret["stringData"]["token"] = json!(token);
    apply_doc(&client, &t, token_secret).await?;
    // What kube-controller-manager publishes in every namespace (this API server runs none).
    let ca = kte_file("pki/ca.crt")?;
    apply_doc(
        &client,
        &t,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca}}),
    )
    .await?;
    let mut store = doc_named(&docs, "SecretStore", "kubernetes-secret-store")?;
    store["spec"]["provider"]["kubernetes"]["remoteNamespace"] = json!(sh);
    apply_doc(&client, &t, store).await?;
    apply_doc(
        &client,
        &t,
        doc_named(&docs, "ExternalSecret", "eso-kubernetes-secret")?,
    )
    .await?;
    let mut find = doc_named(&docs, "ExternalSecret", "fetch-tls-and-nginx")?;
    find["spec"]["secretStoreRef"]["name"] = json!("kubernetes-secret-store");
    apply_doc(&client, &t, find).await?;
    let ess: Api<ExternalSecret> = target.api();
    apply(
        &ess,
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": "extras"},
        "spec": {"refreshInterval": "1h",
            "secretStoreRef": {"name": "kubernetes-secret-store", "kind": "SecretStore"},
            "data": [
                {"secretKey": "app", "remoteRef": {"key": "nginx-conf", "metadataPolicy": "Fetch", "property": "labels.app"}},
                {"secretKey": "port", "remoteRef": {"key": "nginx-conf", "property": "cfg.port"}},
                {"secretKey": "whole", "remoteRef": {"key": "tls-web"}}],
            "dataFrom": [{"extract": {"key": "nginx-conf"}}]}}),
    )
    .await?;

    let ctl = Controller::start_with_class(&client, &t, &t).await?;
    let secrets: Api<Secret> = target.api();
    wait_ready(&ess, "eso-kubernetes-secret", "True", "SecretSynced").await?;
    let got = secrets.get("eso-kubernetes-secret").await?;
    assert_eq!(value(&got, "username"), "peter");

    wait_ready(&ess, "fetch-tls-and-nginx", "True", "SecretSynced").await?;
    let found = secrets.get("fetch-tls-and-nginx").await?;
    let keys: Vec<&String> = found.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["nginx-conf", "tls-web"], "find by name and by tags");
    assert_eq!(value(&found, "tls-web"), r#"{"tls.crt":"CERT"}"#);
    assert_eq!(
        value(&found, "nginx-conf"),
        format!(r#"{{"cfg":"{{\"port\":8080,\"tls\":true}}","password":"{password}"}}"#)
    );

    wait_ready(&ess, "extras", "True", "SecretSynced").await?;
    let extras = secrets.get("extras").await?;
    assert_eq!(value(&extras, "app"), "nginx");
    assert_eq!(value(&extras, "port"), "8080");
    assert_eq!(value(&extras, "whole"), r#"{"tls.crt":"CERT"}"#);
    assert_eq!(value(&extras, "password"), password);

    let stores: Api<SecretStore> = target.api();
    let server = documented_server(&docs)?;
    let store = |name: &str, remote: &str, auth: Value| {
        let mut s = json!({"apiVersion": V1, "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"provider": {"kubernetes": {"remoteNamespace": remote, "server": server}}}});
        if !auth.is_null() {
            s["spec"]["provider"]["kubernetes"]["auth"] = auth;
        }
        s
    };
    let es = |name: &str, store: &str| {
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": name},
        "spec": {"refreshInterval": "1h",
            "secretStoreRef": {"name": store, "kind": "SecretStore"},
            "data": [{"secretKey": "username", "remoteRef": {"key": "user-credentials", "property": "username"}}]}})
    };

    // The page's serviceAccount store: the tenant's own ServiceAccount, bound to the Role of
    // the shared namespace.
    apply_doc(
        &client,
        &t,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "my-store"}}),
    )
    .await?;
    apply_doc(
        &client,
        &sh,
        role_binding(
            &sh,
            "my-store",
            json!({"kind": "ServiceAccount", "name": "my-store", "namespace": t}),
        ),
    )
    .await?;
    let mut sa_store = doc_named(&docs, "SecretStore", "k8s-store-sa-auth")?;
    sa_store["spec"]["provider"]["kubernetes"]["remoteNamespace"] = json!(sh);
    sa_store["spec"]["provider"]["kubernetes"]["server"] = server.clone();
    apply_doc(&client, &t, sa_store).await?;
    apply(&ess, es("via-sa", "k8s-store-sa-auth")).await?;

    // The page's client-certificate store: `kubectl create secret tls tls-secret` of a user
    // the Role of the shared namespace is bound to.
    apply_doc(
        &client,
        &t,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls-secret"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": kte_file("pki/tenant.crt")?, "tls.key": kte_file("pki/tenant.key")?}}),
    )
    .await?;
    apply_doc(
        &client,
        &sh,
        role_binding(
            &sh,
            "tenant-user",
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "hush-kube-testenv-tenant"}),
        ),
    )
    .await?;
    let mut cert_store = doc_named(&docs, "SecretStore", "k8s-store-cert-auth")?;
    cert_store["spec"]["provider"]["kubernetes"]["remoteNamespace"] = json!(sh);
    cert_store["spec"]["provider"]["kubernetes"]["server"] = server.clone();
    apply_doc(&client, &t, cert_store).await?;
    apply(&ess, es("via-cert", "k8s-store-cert-auth")).await?;

    for name in ["via-sa", "via-cert"] {
        wait_ready(&ess, name, "True", "SecretSynced").await?;
        assert_eq!(
            value(&secrets.get(name).await?, "username"),
            "peter",
            "{name}"
        );
    }
    for name in [
        "kubernetes-secret-store",
        "k8s-store-sa-auth",
        "k8s-store-cert-auth",
    ] {
        let (status, reason, message) = store_ready(&stores, name).await?;
        ensure!(
            status == "True",
            "store {name}: {status}/{reason}: {message}"
        );
    }

    // The Role's limits hold: the same token in a namespace it has no Role in.
    let token_auth = json!({"token": {"bearerToken": {"name": "eso-token", "key": "token"}}});
    apply(&stores, store("elsewhere", &t, token_auth.clone())).await?;
    expect_store_refused(&stores, "elsewhere", "not allowed to get secrets").await?;
    apply(&ess, es("denied", "elsewhere")).await?;
    wait_ready(&ess, "denied", "False", "SecretSyncedError").await?;
    // A SecretStore cannot borrow a ServiceAccount of another namespace.
    apply(
        &stores,
        store(
            "borrowed",
            &sh,
            json!({"serviceAccount": {"name": "eso-service-account", "namespace": sh}}),
        ),
    )
    .await?;
    expect_store_refused(&stores, "borrowed", "is not allowed in a SecretStore").await?;
    // No auth is anonymous: the controller's own identity (which may read Secrets) is not used.
    apply(&stores, store("anonymous", &sh, Value::Null)).await?;
    expect_store_refused(&stores, "anonymous", "HTTP 40").await?;
    apply(&ess, es("anonymous", "anonymous")).await?;
    wait_ready(&ess, "anonymous", "False", "SecretSyncedError").await?;
    // retrySettings are honoured within the budget, refused by name beyond it.
    let mut retrying = store("retrying", &sh, token_auth.clone());
    retrying["spec"]["retrySettings"] = json!({"maxRetries": 2, "retryInterval": "1s"});
    apply(&stores, retrying).await?;
    let (status, reason, message) = store_ready(&stores, "retrying").await?;
    ensure!(
        status == "True",
        "store retrying: {status}/{reason}: {message}"
    );
    let mut greedy = store("greedy", &sh, token_auth.clone());
    greedy["spec"]["retrySettings"] = json!({"maxRetries": 1000});
    apply(&stores, greedy).await?;
    expect_store_refused(&stores, "greedy", "spec.retrySettings.maxRetries").await?;
    // A field hush does not implement is refused by name.
    let mut odd = store("odd", &sh, Value::Null);
    odd["spec"]["provider"]["kubernetes"]["authRef"] = json!({"name": "kubeconfig", "key": "k"});
    apply(&stores, odd).await?;
    expect_store_refused(&stores, "odd", "spec.provider.kubernetes.authRef").await?;
    assert_no_canary(&client, &target, &ess, &password).await?;
    ctl.stop().await?;

    // The operator's budget (--kubernetes-provider-max-find-secrets): a find that lists more
    // Secrets fails, naming the flag.
    let ctl = Controller::start_configured(&client, &t, &t, |c| {
        c.providers.kubernetes.max_find = 1;
    })
    .await?;
    let mut capped = doc_named(&docs, "ExternalSecret", "fetch-tls-and-nginx")?;
    capped["metadata"]["name"] = json!("find-capped");
    capped["spec"]["secretStoreRef"]["name"] = json!("kubernetes-secret-store");
    capped["spec"]["target"] = json!({"name": "find-capped"});
    apply_doc(&client, &t, capped).await?;
    let es = wait_ready(&ess, "find-capped", "False", "SecretSyncedError").await?;
    // The condition carries ESO's generic message; the reason is logged (and in the event).
    ensure!(
        wait_for_logs(&["more than 1 secrets", "--kubernetes-provider-max-find"]).await,
        "find-capped: the budget is not named: {:?}",
        es.status
    );
    ctl.stop().await
}
