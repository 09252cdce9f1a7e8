//! ESO's `webhook` provider on the real kube-apiserver against a real HTTP server on loopback
//! (`webhook_server`, httpbin's `/get` shape): ESO's documented SecretStore, credentials Secret
//! and ExternalSecret (docs/provider/webhook.md; only the URL's host is the local server's and
//! `apiVersion` is v1), headers templated from the credentials, POST with a templated body,
//! `dataFrom.extract`, 404 as "not found"; and the hostile-tenant rules: a SecretStore cannot
//! read another namespace's Secret, a Secret without the `external-secrets.io/type: webhook`
//! label is refused, responses over 1 MiB and requests over `timeout` fail, an unimplemented
//! field (`auth.ntlm`) makes the store Ready=False naming it, and the credentials never appear in
//! logs, events or status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;
mod webhook_server;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};

const V1: &str = "external-secrets.io/v1";

fn store(name: &str, class: &str, webhook: Value) -> Value {
    json!({"apiVersion": V1, "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"controller": class, "provider": {"webhook": webhook}}})
}

fn es(name: &str, store: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["refreshInterval"] = json!("1h");
    spec["secretStoreRef"] = json!({"name": store, "kind": "SecretStore"});
    json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": name}, "spec": spec})
}

fn credentials(name: &str, labelled: bool, password: &str) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"username": "test", "password": password}});
    if labelled {
        s["metadata"]["labels"] = json!({"external-secrets.io/type": "webhook"});
    }
    s
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn documented_webhook_store_and_hostile_inputs() -> Result<()> {
    let server = webhook_server::start().await;
    let base = &server.base;
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-webhook").await?;
    let other = TestNamespace::create(&client, "es-webhook-other").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    let stores: Api<SecretStore> = ns.api();
    let ess: Api<ExternalSecret> = ns.api();
    let canary = canary("webhook");

    // ESO's documented store and credentials (docs/provider/webhook.md), httpbin → local server.
    apply(&secrets, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "webhook-credentials", "labels": {"external-secrets.io/type": "webhook"}},
        "data": {"username": "dGVzdA==", "password": "dGVzdA=="}})).await?;
    let auth = "Basic {{ print .auth.username \":\" .auth.password | b64enc }}";
    let documented = json!({"url": format!("{base}/get?parameter={{{{ .remoteRef.key }}}}"),
        "result": {"jsonPath": "$.args.parameter"},
        "headers": {"Content-Type": "application/json", "Authorization": auth},
        "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}]});
    apply(&stores, store("webhook-backend", &n, documented)).await?;
    apply(
        &stores,
        store(
            "echo-auth",
            &n,
            json!({"url": format!("{base}/get?k={{{{ .remoteRef.key }}}}"),
        "result": {"jsonPath": "$.headers.Authorization"},
        "headers": {"Authorization": auth},
        "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}]}),
        ),
    )
    .await?;
    apply(
        &stores,
        store(
            "post",
            &n,
            json!({"url": format!("{base}/post"), "method": "POST",
        "body": "{\"key\": \"{{ .remoteRef.key }}\", \"version\": \"{{ .remoteRef.version }}\"}",
        "result": {"jsonPath": "$.json.{{ .remoteRef.property }}"}}),
        ),
    )
    .await?;
    apply(
        &stores,
        store(
            "object",
            &n,
            json!({"url": format!("{base}/object"), "result": {}}),
        ),
    )
    .await?;
    apply(
        &stores,
        store(
            "status",
            &n,
            json!({"url": format!("{base}/status/{{{{ .remoteRef.key }}}}"), "result": {}}),
        ),
    )
    .await?;
    apply(
        &stores,
        store("big", &n, json!({"url": format!("{base}/big")})),
    )
    .await?;
    apply(
        &stores,
        store(
            "slow",
            &n,
            json!({"url": format!("{base}/slow"), "timeout": "1s"}),
        ),
    )
    .await?;
    // Hostile stores: another namespace's Secret, an unlabelled Secret, an unimplemented field.
    apply(&other.api::<Secret>(), credentials("theirs", true, &canary)).await?;
    apply(&secrets, credentials("unlabelled", false, &canary)).await?;
    apply(
        &stores,
        store(
            "cross-ns",
            &n,
            json!({"url": format!("{base}/get"),
        "secrets": [{"name": "auth", "secretRef": {"name": "theirs", "namespace": other.name()}}]}),
        ),
    )
    .await?;
    apply(
        &stores,
        store(
            "no-label",
            &n,
            json!({"url": format!("{base}/get"),
        "secrets": [{"name": "auth", "secretRef": {"name": "unlabelled"}}]}),
        ),
    )
    .await?;
    apply(
        &stores,
        store(
            "ntlm",
            &n,
            json!({"url": format!("{base}/get"),
        "auth": {"ntlm": {"usernameSecret": {"name": "unlabelled", "key": "username"},
            "passwordSecret": {"name": "unlabelled", "key": "password"}}}}),
        ),
    )
    .await?;
    // The canary as a credential of a working store whose read fails: never in any output.
    apply(&secrets, credentials("canary-creds", true, &canary)).await?;
    apply(
        &stores,
        store(
            "canary",
            &n,
            json!({"url": format!("{base}/status/500?p={{{{ .auth.password }}}}"),
        "headers": {"X-Token": "{{ .auth.password }}"},
        "secrets": [{"name": "auth", "secretRef": {"name": "canary-creds"}}]}),
        ),
    )
    .await?;

    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    // ESO's documented ExternalSecret.
    apply(
        &ess,
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": "webhook-example"},
        "spec": {"refreshInterval": "15s",
            "secretStoreRef": {"name": "webhook-backend", "kind": "SecretStore"},
            "target": {"name": "example-sync"},
            "data": [{"secretKey": "foobar", "remoteRef": {"key": "secret"}}]}}),
    )
    .await?;
    apply(
        &ess,
        es(
            "auth",
            "echo-auth",
            json!({"data": [{"secretKey": "authorization", "remoteRef": {"key": "a b&c"}}]}),
        ),
    )
    .await?;
    apply(&ess, es("post", "post", json!({"data": [
        {"secretKey": "key", "remoteRef": {"key": "k/1", "property": "key"}},
        {"secretKey": "version", "remoteRef": {"key": "k/1", "version": "v7", "property": "version"}}]}))).await?;
    apply(
        &ess,
        es(
            "object",
            "object",
            json!({"data": [{"secretKey": "whole", "remoteRef": {"key": "x"}}],
        "dataFrom": [{"extract": {"key": "x"}}]}),
        ),
    )
    .await?;
    apply(
        &ess,
        es(
            "gone",
            "status",
            json!({"target": {"deletionPolicy": "Delete"},
        "data": [{"secretKey": "v", "remoteRef": {"key": "404"}}]}),
        ),
    )
    .await?;
    apply(
        &ess,
        es(
            "big",
            "big",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": "x"}}]}),
        ),
    )
    .await?;
    apply(
        &ess,
        es(
            "slow",
            "slow",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": "x"}}]}),
        ),
    )
    .await?;
    apply(
        &ess,
        es(
            "canary",
            "canary",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": "x"}}]}),
        ),
    )
    .await?;

    wait_ready(&ess, "webhook-example", "True", "SecretSynced").await?;
    assert_eq!(
        value(&secrets.get("example-sync").await?, "foobar"),
        "secret"
    );
    wait_ready(&ess, "auth", "True", "SecretSynced").await?;
    assert_eq!(
        value(&secrets.get("auth").await?, "authorization"),
        "Basic dGVzdDp0ZXN0"
    );
    wait_ready(&ess, "post", "True", "SecretSynced").await?;
    let post = secrets.get("post").await?;
    assert_eq!(
        (value(&post, "key"), value(&post, "version")),
        ("k/1".into(), "v7".into())
    );
    wait_ready(&ess, "object", "True", "SecretSynced").await?;
    let obj = secrets.get("object").await?;
    for (k, v) in [
        ("user", "admin"),
        ("port", "5432"),
        ("ratio", "1.5"),
        ("flag", "true"),
        ("nested", "{\"a\":\"\\u003cx\\u003e\",\"b\":1}"),
        ("list", "[1,\"two\"]"),
    ] {
        assert_eq!(value(&obj, k), v, "extract {k}");
    }
    ensure!(value(&obj, "whole").contains("\"user\":\"admin\""));
    // 404 is "not found": deletionPolicy Delete syncs an empty result (no Secret).
    wait_ready(&ess, "gone", "True", "SecretDeleted").await?;
    for name in ["big", "slow", "canary"] {
        wait_ready(&ess, name, "False", "SecretSyncedError").await?;
    }
    for (name, needle) in [
        ("cross-ns", "is not allowed in a SecretStore"),
        (
            "no-label",
            "does not contain needed label 'external-secrets.io/type: webhook'",
        ),
        ("ntlm", "spec.provider.webhook.auth"),
    ] {
        let (status, reason, message) = store_ready(&stores, name).await?;
        ensure!(
            status == "False" && reason == "InvalidProviderConfig" && message.contains(needle),
            "store {name}: {status}/{reason}: {message}"
        );
    }
    assert_no_canary(&client, &ns, &ess, &canary).await?;
    ctl.stop().await
}

/// The store's Ready condition (status, reason, message), once it has one.
async fn store_ready(api: &Api<SecretStore>, name: &str) -> Result<(String, String, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = api.get(name).await?;
        if let Some(c) = s
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == "Ready")
        {
            return Ok((
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            ));
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store {name} has no Ready condition"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
