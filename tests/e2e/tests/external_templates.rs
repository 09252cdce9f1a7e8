//! ExternalSecret `templateFrom` (ConfigMap, Secret, literal; Values / KeysAndValues; Data /
//! Labels / Annotations; valuesDecodingStrategy) and `dataFrom[].rewrite[].merge` (Extract and
//! JSON) on the real API server with OpenBao, ESO's manifests as users write them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use anyhow::Result;
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

async fn vault_store(ns: &TestNamespace) -> Result<()> {
    vault_token_secret(&ns.api()).await?;
    apply(&ns.api::<SecretStore>(), json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and scripts/services/openbao.sh"]
async fn template_from_configmap_secret_and_literals() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-tplfrom").await?;
    let n = ns.name().to_owned();
    let password = canary("tplfrom");
    bao(
        "POST",
        &format!("secret/data/{n}/a"),
        Some(json!({"data": {"user": "alice", "common": "from-a"}})),
    )
    .await?;
    bao(
        "POST",
        &format!("secret/data/{n}/b"),
        Some(json!({"data": {"pw": password, "common": "from-b"}})),
    )
    .await?;
    vault_store(&ns).await?;
    apply(
        &ns.api::<ConfigMap>(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tpl"},
        "data": {"config.yaml": "user: {{ .user }}\npassword: {{ .pw }}\n",
                 "labels": "team: \"{{ .user }}\"\ntier: gold"}}),
    )
    .await?;
    secret_from_literals(
        &ns.api(),
        "stpl",
        &[("dsn", "postgres://{{ .user }}:{{ .pw }}@db:5432/app")],
    )
    .await?;
    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "target": {"name": "app", "template": {
                "type": "hush.test/app",
                "metadata": {"annotations": {"static": "yes"}},
                "templateFrom": [
                    {"configMap": {"name": "tpl", "items": [
                        {"key": "labels", "templateAs": "KeysAndValues"}]}, "target": "Labels"},
                    {"configMap": {"name": "tpl", "items": [{"key": "config.yaml", "templateAs": "Values"}]}},
                    {"secret": {"name": "stpl", "items": [{"key": "dsn"}]}},
                    {"literal": "origin: \"{{ .common }}\"", "target": "Annotations"},
                    {"literal": "encoded: \"{{ .user | b64enc }}\"", "valuesDecodingStrategy": "Base64"}
                ],
                "data": {"username": "{{ .user }}"}}},
            "dataFrom": [{"extract": {"key": format!("{n}/a")}}, {"extract": {"key": format!("{n}/b")}}]}})).await?;
    wait_ready(&es, "app", "True", "SecretSynced").await?;
    let secret = ns.api::<Secret>().get("app").await?;
    let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["config.yaml", "dsn", "encoded", "username"]);
    assert_eq!(
        value(&secret, "config.yaml"),
        format!("user: alice\npassword: {password}\n")
    );
    assert_eq!(
        value(&secret, "dsn"),
        format!("postgres://alice:{password}@db:5432/app")
    );
    assert_eq!(value(&secret, "encoded"), "alice");
    assert_eq!(value(&secret, "username"), "alice");
    assert_eq!(secret.type_.as_deref(), Some("hush.test/app"));
    assert_eq!(
        secret.labels().get("team").map(String::as_str),
        Some("alice")
    );
    assert_eq!(
        secret.labels().get("tier").map(String::as_str),
        Some("gold")
    );
    // Later dataFrom entries win: `common` is b's.
    assert_eq!(
        secret.annotations().get("origin").map(String::as_str),
        Some("from-b")
    );
    assert_eq!(
        secret.annotations().get("static").map(String::as_str),
        Some("yes")
    );

    // A ConfigMap edit is picked up on the next sync (force-sync), as ESO reads it live.
    ns.api::<ConfigMap>()
        .patch(
            "tpl",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"config.yaml": "only: {{ .user }}"}})),
        )
        .await?;
    es.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = ns.api::<Secret>().get("app").await?;
        if value(&s, "config.yaml") == "only: alice" {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the ConfigMap change did not reach the Secret"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A missing template key: Ready=False naming the ConfigMap and key, Secret kept.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "broken"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "target": {"template": {"templateFrom": [{"configMap": {"name": "tpl", "items": [{"key": "absent"}]}}]}},
            "dataFrom": [{"extract": {"key": format!("{n}/b")}}]}})).await?;
    let broken = wait_ready(&es, "broken", "False", "SecretSyncedError").await?;
    let message = broken.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains("\"tpl\"") && message.contains("\"absent\""),
        "{message}"
    );
    // A privileged target is refused.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "typed"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "target": {"template": {"templateFrom": [{"literal": "a: b", "target": "type"}]}},
            "dataFrom": [{"extract": {"key": format!("{n}/b")}}]}})).await?;
    wait_ready(&es, "typed", "False", "SecretSyncedError").await?;
    ensure_absent(&ns, "broken").await?;
    ensure_absent(&ns, "typed").await?;
    assert_no_canary(&client, &ns, &es, &password).await?;
    ctl.stop().await?;
    Ok(())
}

async fn ensure_absent(ns: &TestNamespace, name: &str) -> Result<()> {
    anyhow::ensure!(
        ns.api::<Secret>().get_opt(name).await?.is_none(),
        "Secret {name} written despite the template error"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and scripts/services/openbao.sh"]
async fn rewrite_merge_extract_and_json() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-merge").await?;
    let n = ns.name().to_owned();
    let password = canary("merge");
    bao(
        "POST",
        &format!("secret/data/{n}/json-a"),
        Some(json!({"data": {"host": "a.example", "port": 5432, "tls": true}})),
    )
    .await?;
    bao(
        "POST",
        &format!("secret/data/{n}/json-b"),
        Some(json!({"data": {"host": "b.example", "password": password, "opts": {"x": "<y>"}}})),
    )
    .await?;
    vault_store(&ns).await?;
    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    let find = json!({"path": n, "name": {"regexp": "json-"}});
    // Extract: the merged keys; json-a has priority, so its host wins.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "extract"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "dataFrom": [{"find": find, "rewrite": [{"merge": {"priority": [format!("{n}/json-a")], "conflictPolicy": "Ignore"}}]}]}})).await?;
    // JSON: the merged object into one key, the input keys kept (then made valid by a regexp).
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "json"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "dataFrom": [{"find": find, "rewrite": [
                {"merge": {"strategy": "JSON", "into": "merged", "conflictPolicy": "Ignore"}},
                {"regexp": {"source": ".*/", "target": ""}}]}]}})).await?;
    // Conflicts are errors by default.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "conflict"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "dataFrom": [{"find": find, "rewrite": [{"merge": {}}]}]}})).await?;

    wait_ready(&es, "extract", "True", "SecretSynced").await?;
    let s = ns.api::<Secret>().get("extract").await?;
    let keys: Vec<&String> = s.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["host", "opts", "password", "port", "tls"]);
    assert_eq!(value(&s, "host"), "a.example");
    assert_eq!(value(&s, "port"), "5432");
    assert_eq!(value(&s, "tls"), "true");
    assert_eq!(value(&s, "password"), password);
    assert_eq!(value(&s, "opts"), r#"{"x":"\u003cy\u003e"}"#);

    wait_ready(&es, "json", "True", "SecretSynced").await?;
    let s = ns.api::<Secret>().get("json").await?;
    let keys: Vec<&String> = s.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["json-a", "json-b", "merged"]);
    // Sorted order without priority: json-b is merged last and wins `host`.
    assert_eq!(
        value(&s, "merged"),
        format!(
            r#"{{"host":"b.example","opts":{{"x":"<y>"}},"password":"{password}","port":5432,"tls":true}}"#
        )
    );

    let conflict = wait_ready(&es, "conflict", "False", "SecretSyncedError").await?;
    assert!(ns.api::<Secret>().get_opt("conflict").await?.is_none());
    let message = conflict.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap();
    assert!(!message.contains(&password), "{message}");
    assert_no_canary(&client, &ns, &es, &password).await?;
    ctl.stop().await?;
    Ok(())
}
