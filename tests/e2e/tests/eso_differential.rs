//! The real External Secrets Operator (v0.16.2) and hush reconcile the same manifests — ESO's
//! documented shapes, unchanged between the sides — against the same OpenBao and moto data, and
//! what a user sees must match (harness: `eso_peer/mod.rs`; deliberate differences:
//! docs/compatibility.md, "hush and ESO v0.16.2").
//!
//! Each case is one small function over a [`Pair`]: write provider data, apply manifests,
//! `compare` after each step. All cases run in one test (one ESO and one hush controller), a few
//! at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;
mod webhook_server;

use std::collections::BTreeMap;

use anyhow::Result;
use eso_peer::{
    API_CA, API_URL, Pair, Peer, PeerOptions, SIDE, Wait, aws_credentials_secret, aws_parameter,
    aws_secret, eso_provider_doc, eso_snippet, vault_delete, vault_put, vault_token_secret,
    vault_tree,
};
use external_harness::{aws, bao, env};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use serde_json::{Value, json};

const ES: &str = "external-secrets.io/v1";

type Case = for<'a> fn(&'a mut Pair<'_>) -> BoxFuture<'a, Result<()>>;

/// Every case, by name.
const CASES: &[(&str, Case)] = &[
    ("vault-kv2-token", |p| Box::pin(vault_kv2_token(p))),
    ("vault-kv1-token", |p| Box::pin(vault_kv1_token(p))),
    ("vault-approle", |p| Box::pin(vault_approle(p))),
    ("vault-find-rewrite", |p| Box::pin(vault_find_rewrite(p))),
    ("aws-secretsmanager", |p| Box::pin(aws_secrets_manager(p))),
    ("aws-parameterstore", |p| Box::pin(aws_parameter_store(p))),
    ("template-data", |p| Box::pin(template_data(p))),
    ("template-from", |p| Box::pin(template_from(p))),
    ("merge-policy", |p| Box::pin(merge_policy(p))),
    ("creation-policy", |p| Box::pin(creation_policy(p))),
    ("deletion-policy", |p| Box::pin(deletion_policy(p))),
    ("es-deleted", |p| Box::pin(es_deleted(p))),
    ("immutable", |p| Box::pin(immutable(p))),
    ("errors", |p| Box::pin(errors(p))),
    ("decoding", |p| Box::pin(decoding(p))),
    ("target-renamed", |p| Box::pin(target_renamed(p))),
    ("cluster-es", |p| Box::pin(cluster_external_secret(p))),
    ("fake-documented", |p| Box::pin(fake_documented(p))),
    ("webhook-documented", |p| Box::pin(webhook_documented(p))),
    ("kubernetes", |p| Box::pin(kubernetes_provider(p))),
    ("push-vault", |p| Box::pin(push_vault(p))),
    ("push-aws", |p| Box::pin(push_aws(p))),
    ("push-kubernetes", |p| Box::pin(push_kubernetes(p))),
    ("push-webhook", |p| Box::pin(push_webhook(p))),
    ("cluster-push", |p| Box::pin(cluster_push(p))),
    ("generators", |p| Box::pin(generators(p))),
];

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn eso_peer_cases_agree() -> Result<()> {
    let peer = Peer::start(PeerOptions {
        cluster_external_secrets: true,
        push_secrets: true,
        cluster_push_secrets: true,
        ..PeerOptions::default()
    })
    .await?;
    let only = std::env::var("HUSH_DIFF_CASES").unwrap_or_default();
    let results: Vec<Result<()>> = futures::stream::iter(
        CASES
            .iter()
            .filter(|(name, _)| only.is_empty() || only.split(',').any(|o| name.contains(o))),
    )
    .map(|(name, case)| {
        let peer = &peer;
        async move {
            let mut pair = peer.case(name).await?;
            case(&mut pair)
                .await
                .map_err(|e| anyhow::anyhow!("case {name}: {e:#}"))
        }
    })
    .buffer_unordered(6)
    .collect()
    .await;
    peer.finish_cases(results).await
}

// ---------------------------------------------------------------------------------------------
// Manifests in ESO's documented shapes.

fn vault_store(name: &str, path: &str, version: &str, auth: Value) -> Value {
    json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": path,
            "version": version, "auth": auth}}}})
}

fn token_auth() -> Value {
    json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}})
}

fn external_secret(name: &str, spec: Value) -> Value {
    json!({"apiVersion": ES, "kind": "ExternalSecret", "metadata": {"name": name}, "spec": spec})
}

fn store_ref() -> Value {
    json!({"name": "vault-backend", "kind": "SecretStore"})
}

fn remote(secret_key: &str, key: &str, property: Option<&str>) -> Value {
    let mut r = json!({"key": key});
    if let Some(p) = property {
        r["property"] = json!(p);
    }
    json!({"secretKey": secret_key, "remoteRef": r})
}

/// The namespace's token-auth KV v2 store `vault-backend` and its token Secret.
fn vault_backend() -> Vec<Value> {
    vec![
        vault_token_secret(),
        vault_store("vault-backend", "secret", "v2", token_auth()),
    ]
}

fn config_map(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn secret(name: &str, string_data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": string_data})
}

// ---------------------------------------------------------------------------------------------
// Cases.

async fn vault_kv2_token(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let db = format!("{ns}/db");
    vault_put(
        &db,
        json!({"password": "s3cr3t", "user": "admin", "port": 5432, "ratio": 0.5,
            "nested": {"host": "db.local", "list": [1, "two"]}, "html": "<a&b>"}),
    )
    .await?;
    let mut manifests = vault_backend();
    manifests.extend([
        external_secret(
            "db",
            json!({"refreshInterval": "2s", "secretStoreRef": store_ref(),
                "target": {"name": "db-credentials"},
                "data": [remote("password", &db, Some("password")),
                    remote("port", &db, Some("port")),
                    remote("host", &db, Some("nested.host")),
                    remote("list", &db, Some("nested.list")),
                    remote("whole", &db, None)]}),
        ),
        external_secret(
            "db-all",
            json!({"refreshInterval": "1h", "secretStoreRef": store_ref(),
                "dataFrom": [{"extract": {"key": db}}]}),
        ),
        external_secret(
            "db-v1",
            json!({"refreshInterval": "1h", "secretStoreRef": store_ref(),
                "data": [{"secretKey": "password", "remoteRef": {"key": db, "property": "password", "version": "1"}}]}),
        ),
    ]);
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await?;
    vault_put(
        &db,
        json!({"password": "rotated", "user": "admin", "port": 5432, "ratio": 0.5,
        "nested": {"host": "db.local", "list": [1, "two"]}, "html": "<a&b>"}),
    )
    .await?;
    p.compare("rotated in Vault", Wait::Refreshed).await
}

async fn vault_kv1_token(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let mount = format!("kv1-{ns}");
    bao(
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await?;
    bao(
        "POST",
        &format!("{mount}/app"),
        Some(json!({"token": "v1-value", "n": 7})),
    )
    .await?;
    p.apply(vec![
        vault_token_secret(),
        vault_store("vault-kv1", &mount, "v1", token_auth()),
        external_secret(
            "app",
            json!({"refreshInterval": "1h", "secretStoreRef": {"name": "vault-kv1", "kind": "SecretStore"},
                "data": [remote("token", "app", Some("token")), remote("all", "app", None)],
                "dataFrom": [{"extract": {"key": "app"}}]}),
        ),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

async fn vault_approle(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let mount = format!("approle-{ns}");
    vault_put(&format!("{ns}/app"), json!({"password": "from-approle"})).await?;
    let (role_id, secret_id) = external_harness::vault_approle(&mount, &ns).await?;
    let approle = |namespace: Option<&str>| {
        let mut r = json!({"name": "approle-secret", "key": "secret-id"});
        if let Some(n) = namespace {
            r["namespace"] = json!(n);
        }
        json!({"appRole": {"path": mount, "roleId": role_id, "secretRef": r}})
    };
    let css = format!("{ns}-vault");
    p.apply(vec![
        secret("approle-secret", json!({"secret-id": secret_id})),
        vault_store("vault-approle", "secret", "v2", approle(None)),
        json!({"apiVersion": ES, "kind": "ClusterSecretStore", "metadata": {"name": css},
            "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret",
                "version": "v2", "auth": approle(Some(&ns))}}}}),
        external_secret(
            "namespaced",
            json!({"secretStoreRef": {"name": "vault-approle", "kind": "SecretStore"},
                "data": [remote("password", &format!("{ns}/app"), Some("password"))]}),
        ),
        external_secret(
            "cluster",
            json!({"secretStoreRef": {"name": css, "kind": "ClusterSecretStore"},
                "data": [remote("password", &format!("{ns}/app"), Some("password"))]}),
        ),
        external_secret(
            "denied",
            json!({"secretStoreRef": {"name": "vault-approle", "kind": "SecretStore"},
                "data": [remote("password", "elsewhere/app", Some("password"))]}),
        ),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

async fn vault_find_rewrite(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    for (k, v) in [
        ("app/db", "d"),
        ("app/api", "a"),
        ("app/nested/deep", "n"),
        ("other/x", "o"),
    ] {
        vault_put(
            &format!("{ns}/{k}"),
            json!({"value": v, "extra": format!("{v}{v}")}),
        )
        .await?;
    }
    let mut manifests = vault_backend();
    manifests.extend([
        external_secret(
            "by-name",
            json!({"secretStoreRef": store_ref(), "dataFrom": [
                {"find": {"path": format!("{ns}/app"), "name": {"regexp": ".*"}}}]}),
        ),
        external_secret(
            "unicode",
            json!({"secretStoreRef": store_ref(), "dataFrom": [
                {"find": {"path": ns, "name": {"regexp": "app/d"}, "conversionStrategy": "Unicode"}}]}),
        ),
        external_secret(
            "rewritten",
            json!({"secretStoreRef": store_ref(), "target": {"name": "rewritten-secret"}, "dataFrom": [
                {"find": {"path": format!("{ns}/app"), "name": {"regexp": "a"}},
                 "rewrite": [{"regexp": {"source": format!("{ns}/app/(.*)"), "target": "app-$1"}},
                    {"regexp": {"source": "/", "target": "-"}}]},
                {"extract": {"key": format!("{ns}/other/x")},
                 "rewrite": [{"transform": {"template": "x_{{ .value | upper }}"}}]}]}),
        ),
        external_secret(
            "bad-key",
            json!({"secretStoreRef": store_ref(), "dataFrom": [
                {"find": {"path": format!("{ns}/app"), "name": {"regexp": ".*"}},
                 "rewrite": [{"regexp": {"source": "(.*)", "target": "bad key $1"}}]}]}),
        ),
    ]);
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await
}

fn aws_store(name: &str, service: &str) -> Value {
    json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"provider": {"aws": {"service": service, "region": "us-east-1",
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
                "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}}}}}}})
}

async fn aws_secrets_manager(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    aws_secret(
        &format!("{ns}/db"),
        &json!({"password": "sm-pw", "port": 5432, "nested": {"a": true}}).to_string(),
    )
    .await?;
    aws_secret(&format!("{ns}/plain"), "just text").await?;
    aws_secret(
        &format!("{ns}/dotted"),
        &json!({"a.b": "dotted-key", "a": {"b": "nested"}}).to_string(),
    )
    .await?;
    let store = json!({"name": "aws-sm", "kind": "SecretStore"});
    p.apply(vec![
        aws_credentials_secret(),
        aws_store("aws-sm", "SecretsManager"),
        external_secret(
            "db",
            json!({"secretStoreRef": store, "data": [
                remote("password", &format!("{ns}/db"), Some("password")),
                remote("port", &format!("{ns}/db"), Some("port")),
                remote("nested", &format!("{ns}/db"), Some("nested")),
                remote("plain", &format!("{ns}/plain"), None),
                remote("dotted", &format!("{ns}/dotted"), Some("a.b"))]}),
        ),
        external_secret(
            "extract",
            json!({"secretStoreRef": store, "dataFrom": [{"extract": {"key": format!("{ns}/db")}}]}),
        ),
        external_secret(
            "find",
            json!({"secretStoreRef": store, "dataFrom": [{"find": {"name": {"regexp": format!("^{ns}/(db|plain)$")}}}]}),
        ),
        external_secret(
            "missing",
            json!({"secretStoreRef": store, "data": [remote("x", &format!("{ns}/nope"), None)]}),
        ),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

async fn aws_parameter_store(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    aws_parameter(&format!("/{ns}/api-key"), "ssm-value").await?;
    aws_parameter(
        &format!("/{ns}/json"),
        &json!({"user": "u", "n": 1}).to_string(),
    )
    .await?;
    let store = json!({"name": "aws-ps", "kind": "SecretStore"});
    p.apply(vec![
        aws_credentials_secret(),
        aws_store("aws-ps", "ParameterStore"),
        external_secret(
            "params",
            json!({"secretStoreRef": store, "data": [
                remote("api-key", &format!("/{ns}/api-key"), None),
                remote("user", &format!("/{ns}/json"), Some("user"))],
                "dataFrom": [{"extract": {"key": format!("/{ns}/json")}}]}),
        ),
        external_secret(
            "by-path",
            json!({"secretStoreRef": store, "dataFrom": [{"find": {"path": format!("/{ns}"), "name": {"regexp": ".*"}}}]}),
        ),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

async fn template_data(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let creds = format!("{ns}/registry");
    vault_put(
        &creds,
        json!({"user": "robot", "password": "p@ss", "host": "registry.example"}),
    )
    .await?;
    let mut manifests = vault_backend();
    manifests.push(external_secret(
        "registry",
        json!({"secretStoreRef": store_ref(), "target": {"name": "pull-secret", "template": {
            "type": "kubernetes.io/dockerconfigjson", "engineVersion": "v2",
            "metadata": {"labels": {"app": "{{ .user }}", "static": "yes"},
                "annotations": {"registry": "{{ .host | upper }}"}},
            "data": {".dockerconfigjson": "{\"auths\":{\"{{ .host }}\":{\"auth\":\"{{ printf \"%s:%s\" .user .password | b64enc }}\"}}}",
                "info": "{{ .user | quote }} {{ len .password }} {{ index . \"missing\" | default \"none\" }}"}}},
            "data": [remote("user", &creds, Some("user")), remote("password", &creds, Some("password")),
                remote("host", &creds, Some("host"))]}),
    ));
    manifests.push(external_secret(
        "broken",
        json!({"secretStoreRef": store_ref(), "target": {"template": {"engineVersion": "v2",
            "data": {"x": "{{ .nope.deeper }}"}}},
            "data": [remote("user", &creds, Some("user"))]}),
    ));
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await
}

async fn template_from(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let g = format!("{ns}/grafana");
    vault_put(
        &g,
        json!({"user": "admin", "password": "pw", "uri": "oci://grafana"}),
    )
    .await?;
    let mut manifests = vault_backend();
    manifests.push(config_map(
        "grafana-config-tpl",
        json!({"config.yaml": "datasources:\n  - name: Graphite\n    url: \"{{ .uri }}\"\n    password: \"{{ .password }}\"\n",
            "templated": "my-application-{{ .user }}: {{ .password | b64enc }}\n{{- if hasPrefix \"oci://\" .uri }}\nenableOCI: \"true\"\n{{- else }}\nenableOCI: \"false\"\n{{- end }}\n",
            "annotations": "last-synced-for-user/{{ .user }}: \"yes\"\n",
            "labels": "team: {{ .user }}\n"}),
    ));
    manifests.push(secret(
        "tpl-secret",
        json!({"extra": "from-secret {{ .user }}"}),
    ));
    manifests.push(external_secret(
        "grafana",
        json!({"secretStoreRef": store_ref(), "target": {"name": "secret-to-be-created", "template": {
            "engineVersion": "v2",
            "templateFrom": [
                {"target": "Data", "configMap": {"name": "grafana-config-tpl", "items": [
                    {"key": "config.yaml", "templateAs": "Values"},
                    {"key": "templated", "templateAs": "KeysAndValues"}]}},
                {"target": "Annotations", "configMap": {"name": "grafana-config-tpl", "items": [
                    {"key": "annotations", "templateAs": "KeysAndValues"}]}},
                {"target": "Labels", "configMap": {"name": "grafana-config-tpl", "items": [
                    {"key": "labels", "templateAs": "KeysAndValues"}]}},
                {"secret": {"name": "tpl-secret", "items": [{"key": "extra"}]}},
                {"literal": "literal-key: {{ .uri | lower }}"}]}},
            "data": [remote("user", &g, Some("user")), remote("password", &g, Some("password")),
                remote("uri", &g, Some("uri"))]}),
    ));
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await
}

async fn merge_policy(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let c = format!("{ns}/credentials");
    vault_put(&c, json!({"password": "cGFzcw==", "username": "user"})).await?;
    let mut manifests = vault_backend();
    for policy in ["Merge", "Replace"] {
        manifests.push(external_secret(
            &format!("template-{}", policy.to_lowercase()),
            json!({"secretStoreRef": store_ref(), "target": {"template": {"mergePolicy": policy,
                "engineVersion": "v2", "data": {"name": "admin", "password": "{{ .password | b64dec }}"}}},
                "data": [remote("password", &c, Some("password")), remote("username", &c, Some("username"))]}),
        ));
    }
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await
}

async fn creation_policy(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/app");
    vault_put(&k, json!({"password": "pw"})).await?;
    let mut manifests = vault_backend();
    manifests.push(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "existing", "labels": {"keep": "me"}, "annotations": {"note": "hand-made"}},
        "type": "Opaque", "stringData": {"foreign": "kept", "password": "old"}}));
    for (name, policy, target) in [
        ("owner", "Owner", "owner-target"),
        ("orphan", "Orphan", "orphan-target"),
        ("merge", "Merge", "existing"),
        ("merge-missing", "Merge", "missing-target"),
        ("none", "None", "none-target"),
    ] {
        manifests.push(external_secret(
            name,
            json!({"secretStoreRef": store_ref(), "target": {"name": target, "creationPolicy": policy},
                "data": [remote("password", &k, Some("password"))]}),
        ));
    }
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await
}

async fn deletion_policy(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let mut manifests = vault_backend();
    for policy in ["Retain", "Delete", "Merge"] {
        let lower = policy.to_lowercase();
        vault_put(&format!("{ns}/{lower}-a"), json!({"v": "a"})).await?;
        vault_put(&format!("{ns}/{lower}-b"), json!({"v": "b"})).await?;
        manifests.push(external_secret(
            &lower,
            json!({"refreshInterval": "2s", "secretStoreRef": store_ref(),
                "target": {"deletionPolicy": policy},
                "data": [remote("a", &format!("{ns}/{lower}-a"), Some("v")),
                    remote("b", &format!("{ns}/{lower}-b"), Some("v"))]}),
        ));
    }
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await?;
    for policy in ["retain", "delete", "merge"] {
        vault_delete(&format!("{ns}/{policy}-a")).await?;
    }
    p.compare("one key deleted in Vault", Wait::Refreshed)
        .await?;
    for policy in ["retain", "delete", "merge"] {
        vault_delete(&format!("{ns}/{policy}-b")).await?;
    }
    p.compare("all keys deleted in Vault", Wait::Refreshed)
        .await
}

async fn es_deleted(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/app");
    vault_put(&k, json!({"password": "pw"})).await?;
    let mut manifests = vault_backend();
    manifests.push(secret("merge-target", json!({"foreign": "kept"})));
    for (name, creation, deletion) in [
        ("owner-retain", "Owner", "Retain"),
        ("owner-delete", "Owner", "Delete"),
        ("orphan", "Orphan", "Retain"),
        ("merge", "Merge", "Retain"),
    ] {
        let target = if creation == "Merge" {
            "merge-target"
        } else {
            name
        };
        manifests.push(external_secret(
            name,
            json!({"secretStoreRef": store_ref(),
                "target": {"name": target, "creationPolicy": creation, "deletionPolicy": deletion},
                "data": [remote("password", &k, Some("password"))]}),
        ));
    }
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await?;
    for name in ["owner-retain", "owner-delete", "orphan", "merge"] {
        p.delete(ES, "ExternalSecret", name).await?;
    }
    p.compare("ExternalSecrets deleted", Wait::Settled).await
}

async fn immutable(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/app");
    vault_put(&k, json!({"password": "first"})).await?;
    let mut manifests = vault_backend();
    manifests.push(external_secret(
        "frozen",
        json!({"refreshInterval": "2s", "secretStoreRef": store_ref(), "target": {"immutable": true},
            "data": [remote("password", &k, Some("password"))]}),
    ));
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await?;
    vault_put(&k, json!({"password": "second"})).await?;
    p.compare("changed in Vault", Wait::Refreshed).await
}

async fn errors(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/app");
    vault_put(&k, json!({"password": "pw", "binary": "\u{0}x"})).await?;
    let mut manifests = vault_backend();
    manifests.extend([
        external_secret(
            "missing-key",
            json!({"secretStoreRef": store_ref(),
            "data": [remote("x", &format!("{ns}/absent"), Some("password"))]}),
        ),
        external_secret(
            "missing-property",
            json!({"secretStoreRef": store_ref(),
            "data": [remote("x", &k, Some("nope"))]}),
        ),
        // A property missing from an existing secret is an error, not "not found".
        external_secret(
            "missing-property-merge",
            json!({"secretStoreRef": store_ref(),
            "target": {"deletionPolicy": "Merge"},
            "data": [remote("password", &k, Some("password")), remote("x", &k, Some("nope"))]}),
        ),
        // A skipped missing secret is reported even when a later entry fails.
        external_secret(
            "missing-then-error",
            json!({"secretStoreRef": store_ref(), "target": {"deletionPolicy": "Merge"},
                "dataFrom": [{"extract": {"key": format!("{ns}/absent")}}],
                "data": [remote("x", &k, Some("nope"))]}),
        ),
        // No provider data: retained (no Secret), whatever the template would render.
        external_secret(
            "template-no-data",
            json!({"secretStoreRef": store_ref(),
                "target": {"template": {"metadata": {"labels": {"from": "template"}},
                    "data": {"static": "value"}}},
                "dataFrom": [{"find": {"path": ns, "name": {"regexp": "^matches-nothing$"}}}]}),
        ),
        external_secret(
            "missing-property-delete",
            json!({"secretStoreRef": store_ref(),
            "target": {"deletionPolicy": "Delete"},
            "data": [remote("x", &k, Some("nope.deeper"))]}),
        ),
        external_secret(
            "missing-store",
            json!({"secretStoreRef": {"name": "no-such-store", "kind": "SecretStore"},
            "data": [remote("x", &k, Some("password"))]}),
        ),
        external_secret(
            "missing-key-delete",
            json!({"secretStoreRef": store_ref(),
            "target": {"deletionPolicy": "Delete"},
            "data": [remote("x", &format!("{ns}/absent"), Some("password"))]}),
        ),
        external_secret(
            "bad-store-token",
            json!({"secretStoreRef": {"name": "bad-token", "kind": "SecretStore"},
            "data": [remote("x", &k, Some("password"))]}),
        ),
        secret("wrong-token", json!({"token": "not-a-token"})),
        vault_store(
            "bad-token",
            "secret",
            "v2",
            json!({"tokenSecretRef": {"name": "wrong-token", "key": "token"}}),
        ),
    ]);
    p.apply(manifests).await?;
    p.compare("settled", Wait::Settled).await
}

async fn decoding(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/encoded");
    vault_put(
        &k,
        json!({"std": "aGVsbG8=", "url": "aGk_Pz8-", "plain": "not base64!", "bad": "@@@"}),
    )
    .await?;
    let mut manifests = vault_backend();
    let entry = |key: &str, strategy: &str| {
        json!({"secretKey": format!("{key}-{}", strategy.to_lowercase()),
            "remoteRef": {"key": k, "property": key, "decodingStrategy": strategy}})
    };
    manifests.extend([
        external_secret("auto", json!({"secretStoreRef": store_ref(), "data": [
            entry("std", "Auto"), entry("url", "Auto"), entry("plain", "Auto"), entry("std", "Base64"),
            entry("url", "Base64URL"), entry("std", "None")]})),
        external_secret("invalid", json!({"secretStoreRef": store_ref(), "data": [entry("bad", "Base64")]})),
        external_secret("extract-decoded", json!({"secretStoreRef": store_ref(), "dataFrom": [
            {"extract": {"key": k, "decodingStrategy": "Auto"}}]})),
    ]);
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await
}

async fn target_renamed(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/app");
    vault_put(&k, json!({"password": "pw"})).await?;
    let mut manifests = vault_backend();
    manifests.push(external_secret(
        "app",
        json!({"secretStoreRef": store_ref(), "target": {"name": "first-name"},
            "data": [remote("password", &k, Some("password"))]}),
    ));
    p.apply(manifests).await?;
    p.compare("synced", Wait::Settled).await?;
    p.patch(
        ES,
        "ExternalSecret",
        "app",
        json!({"spec": {"target": {"name": "second-name"}}}),
    )
    .await?;
    p.compare("target renamed", Wait::Refreshed).await?;
    p.patch(
        ES,
        "ExternalSecret",
        "app",
        json!({"metadata": {"labels": {"team": "a"}, "annotations": {"note": "b"}}}),
    )
    .await?;
    p.compare("labels and annotations added", Wait::Refreshed)
        .await
}

async fn cluster_external_secret(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let k = format!("{ns}/shared");
    vault_put(&k, json!({"password": "fan-out"})).await?;
    let selector = BTreeMap::from([("eso-diff-ces".to_owned(), ns.clone())]);
    let a = p.extra_namespace("a", &selector).await?;
    let b = p.extra_namespace("b", &selector).await?;
    p.extra_namespace("c", &BTreeMap::new()).await?;
    let css = format!("{ns}-vault");
    p.apply(vec![
        vault_token_secret(),
        json!({"apiVersion": ES, "kind": "ClusterSecretStore", "metadata": {"name": css},
            "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": ns}}}}}}),
        json!({"apiVersion": ES, "kind": "ClusterExternalSecret", "metadata": {"name": format!("{ns}-ces")},
            "spec": {"externalSecretName": "hello-world-es",
                "externalSecretMetadata": {"labels": {"from": "ces"}, "annotations": {"note": "fan-out"}},
                "namespaceSelectors": [{"matchLabels": {"eso-diff-ces": ns}}],
                "refreshTime": "1m",
                "externalSecretSpec": {"secretStoreRef": {"name": css, "kind": "ClusterSecretStore"},
                    "refreshInterval": "1h", "target": {"name": "my-secret"},
                    "data": [remote("password", &k, Some("password"))]}}}),
    ])
    .await?;
    p.compare("fanned out", Wait::Settled).await?;
    // A third namespace joins, the first leaves.
    p.patch(
        "v1",
        "Namespace",
        &format!("{ns}-c"),
        json!({"metadata": {"labels": {"eso-diff-ces": ns}}}),
    )
    .await?;
    p.patch(
        "v1",
        "Namespace",
        &a,
        json!({"metadata": {"labels": {"eso-diff-ces": null}}}),
    )
    .await?;
    p.compare("namespaces relabelled", Wait::Settled).await?;
    p.delete(ES, "ClusterExternalSecret", &format!("{ns}-ces"))
        .await?;
    let _ = b;
    p.compare("ClusterExternalSecret deleted", Wait::Settled)
        .await
}

/// ESO's documented fake store and ExternalSecret (docs/snippets/fake-provider-{store,es}.yaml),
/// unchanged but for `apiVersion` v1 and the cluster store's name (it must start with the case's
/// namespace), plus `find` by name, properties, a missing version and a namespaced store.
async fn fake_documented(p: &mut Pair<'_>) -> Result<()> {
    let store_name = format!("{}-fake", p.ns);
    let mut store = eso_snippet("fake-provider-store.yaml")?;
    store["apiVersion"] = json!(ES);
    store["metadata"]["name"] = json!(store_name);
    let mut es = eso_snippet("fake-provider-es.yaml")?;
    es["apiVersion"] = json!(ES);
    es["spec"]["secretStoreRef"]["name"] = json!(store_name);
    let fake_ref = json!({"name": "fake-ns", "kind": "SecretStore"});
    p.apply(vec![
        store,
        es,
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "fake-ns"},
            "spec": {"provider": {"fake": {"data": [
                {"key": "/app/db", "value": "{\"user\":\"admin\",\"port\":5432,\"opts\":{\"b\": 1,\"a\":[true]}}"},
                {"key": "/app/api", "value": "k1", "version": "1"},
                {"key": "/app/api", "value": "k2", "version": "2"},
                {"key": "/other", "value": "o"}]}}}}),
        external_secret(
            "props",
            json!({"refreshInterval": "1h", "secretStoreRef": fake_ref,
                "data": [remote("user", "/app/db", Some("user")),
                    remote("port", "/app/db", Some("port")),
                    remote("opts", "/app/db", Some("opts")),
                    remote("first", "/app/db", Some("opts.a.0")),
                    remote("whole", "/app/db", None)],
                "dataFrom": [{"extract": {"key": "/app/db"}}]}),
        ),
        external_secret(
            "found",
            json!({"refreshInterval": "1h", "secretStoreRef": fake_ref,
                "dataFrom": [{"find": {"name": {"regexp": "^/app/"}}}]}),
        ),
        external_secret(
            "missing-version",
            json!({"refreshInterval": "1h", "secretStoreRef": fake_ref,
                "data": [{"secretKey": "k", "remoteRef": {"key": "/app/api", "version": "3"}}]}),
        ),
        external_secret(
            "missing-property",
            json!({"refreshInterval": "1h", "secretStoreRef": fake_ref,
                "data": [remote("x", "/app/db", Some("nope"))]}),
        ),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

/// ESO's documented webhook store, credentials and ExternalSecret (docs/provider/webhook.md, the
/// URL's host being a local httpbin-shaped server), plus headers from the credentials, POST with
/// a templated body and a templated jsonPath, `dataFrom.extract`, and 404 under deletionPolicy
/// Delete.
async fn webhook_documented(p: &mut Pair<'_>) -> Result<()> {
    let server = webhook_server::start().await;
    let base = &server.base;
    let auth = "Basic {{ print .auth.username \":\" .auth.password | b64enc }}";
    let store = |name: &str, webhook: Value| {
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"provider": {"webhook": webhook}}})
    };
    let es = |name: &str, store: &str, mut spec: Value| {
        spec["refreshInterval"] = json!("1h");
        spec["secretStoreRef"] = json!({"name": store, "kind": "SecretStore"});
        external_secret(name, spec)
    };
    p.apply(vec![
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "webhook-credentials", "labels": {"external-secrets.io/type": "webhook"}},
            "data": {"username": "dGVzdA==", "password": "dGVzdA=="}}),
        store("webhook-backend", json!({"url": format!("{base}/get?parameter={{{{ .remoteRef.key }}}}"),
            "result": {"jsonPath": "$.args.parameter"},
            "headers": {"Content-Type": "application/json", "Authorization": auth},
            "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}]})),
        store("echo-auth", json!({"url": format!("{base}/get?k={{{{ .remoteRef.key }}}}"),
            "result": {"jsonPath": "$.headers.Authorization"},
            "headers": {"Authorization": auth},
            "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}]})),
        store("post", json!({"url": format!("{base}/post"), "method": "POST",
            "body": "{\"key\": \"{{ .remoteRef.key }}\", \"version\": \"{{ .remoteRef.version }}\"}",
            "result": {"jsonPath": "$.json.{{ .remoteRef.property }}"}})),
        store("object", json!({"url": format!("{base}/object"), "result": {}})),
        store("status", json!({"url": format!("{base}/status/{{{{ .remoteRef.key }}}}"), "result": {}})),
        json!({"apiVersion": ES, "kind": "ExternalSecret", "metadata": {"name": "webhook-example"},
            "spec": {"refreshInterval": "15s",
                "secretStoreRef": {"name": "webhook-backend", "kind": "SecretStore"},
                "target": {"name": "example-sync"},
                "data": [{"secretKey": "foobar", "remoteRef": {"key": "secret"}}]}}),
        es("auth", "echo-auth", json!({"data": [{"secretKey": "authorization", "remoteRef": {"key": "a b&c"}}]})),
        es("post", "post", json!({"data": [
            {"secretKey": "key", "remoteRef": {"key": "k/1", "property": "key"}},
            {"secretKey": "version", "remoteRef": {"key": "k/1", "version": "v7", "property": "version"}}]})),
        es("object", "object", json!({"data": [{"secretKey": "whole", "remoteRef": {"key": "x"}}],
            "dataFrom": [{"extract": {"key": "x"}}]})),
        es("gone", "status", json!({"target": {"deletionPolicy": "Delete"},
            "data": [{"secretKey": "v", "remoteRef": {"key": "404"}}]})),
        es("failing", "status", json!({"data": [{"secretKey": "v", "remoteRef": {"key": "500"}}]})),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

/// ESO's `kubernetes` provider, each side reading its own API server (`server.url` and `caBundle`
/// are the one thing that differs): ESO's documented Role (docs/provider/kubernetes.md) in a
/// second namespace bound to a ServiceAccount of the case's namespace, `auth.serviceAccount`;
/// `data` (a key, the whole Secret, a gjson path), `extract` (with a property), `find` by name and
/// by tags, `metadataPolicy: Fetch`, a missing Secret under deletionPolicy Delete, a missing key,
/// a store whose Role does not cover its `remoteNamespace`.
async fn kubernetes_provider(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let docs = eso_provider_doc("kubernetes.md")?;
    let remote = p.extra_namespace("remote", &BTreeMap::new()).await?;
    let uncovered = p.extra_namespace("none", &BTreeMap::new()).await?;
    let mut role = docs
        .iter()
        .find(|d| {
            d["kind"] == "Role"
                && d["metadata"]["name"] == "eso-store-role"
                && d["metadata"]["namespace"] == "shared-secrets"
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("kubernetes.md has no Role eso-store-role"))?;
    role["metadata"]["namespace"] = json!(remote);
    let in_remote = |mut v: Value| {
        v["metadata"]["namespace"] = json!(remote);
        v
    };
    let store = |name: &str, remote_namespace: &str| {
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"provider": {"kubernetes": {"remoteNamespace": remote_namespace,
                "server": {"url": API_URL, "caBundle": API_CA},
                "auth": {"serviceAccount": {"name": "eso-reader"}}}}}})
    };
    let k8s = json!({"name": "k8s", "kind": "SecretStore"});
    let es = |name: &str, mut spec: Value| {
        spec["refreshInterval"] = json!("1h");
        spec["secretStoreRef"] = k8s.clone();
        external_secret(name, spec)
    };
    p.apply(vec![
        role,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "eso-reader"}}),
        in_remote(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "eso-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "eso-store-role"},
            "subjects": [{"kind": "ServiceAccount", "name": "eso-reader", "namespace": ns}]})),
        in_remote(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "database", "labels": {"app": "db", "tier": "data"},
                "annotations": {"owner": "team-a"}},
            "stringData": {"username": "admin", "password": "k8s-pw",
                "config": "{\"port\":5432,\"tls\":{\"on\":true}}"}})),
        in_remote(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-tls", "labels": {"app": "web"}},
            "stringData": {"tls.crt": "CERT", "tls.key": "KEY"}})),
        in_remote(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-config", "labels": {"app": "web"}},
            "stringData": {"mode": "prod"}})),
        store("k8s", &remote),
        store("uncovered", &uncovered),
        es("keys", json!({"data": [
            {"secretKey": "password", "remoteRef": {"key": "database", "property": "password"}},
            {"secretKey": "port", "remoteRef": {"key": "database", "property": "config.port"}},
            {"secretKey": "whole", "remoteRef": {"key": "database"}},
            {"secretKey": "labels", "remoteRef": {"key": "database", "metadataPolicy": "Fetch"}},
            {"secretKey": "owner", "remoteRef": {"key": "database", "metadataPolicy": "Fetch",
                "property": "annotations.owner"}}]})),
        es("extract", json!({"dataFrom": [{"extract": {"key": "database"}},
            {"extract": {"key": "database", "property": "config"}}]})),
        es("find-tags", json!({"dataFrom": [{"find": {"tags": {"app": "web"}}}]})),
        es("find-name", json!({"dataFrom": [{"find": {"name": {"regexp": "^web-"}}}]})),
        es("gone", json!({"target": {"deletionPolicy": "Delete"},
            "data": [{"secretKey": "x", "remoteRef": {"key": "no-such-secret", "property": "x"}}]})),
        es("missing-key", json!({
            "data": [{"secretKey": "x", "remoteRef": {"key": "database", "property": "nope"}}]})),
        external_secret("uncovered", json!({"refreshInterval": "1h",
            "secretStoreRef": {"name": "uncovered", "kind": "SecretStore"},
            "data": [{"secretKey": "x", "remoteRef": {"key": "database", "property": "password"}}]})),
    ])
    .await?;
    p.compare("synced", Wait::Settled).await
}

/// PushSecret to Vault KV v2 and v1, both sides pushing to their own mounts (the mount is the one
/// thing that differs): ESO's documented Vault PushSecret (docs/snippets/vault-pushsecret.yaml),
/// a property per entry with `customMetadata`, `deletionPolicy: Delete`, `updatePolicy:
/// IfNotExists`, a template, the whole Secret to KV v1, a secret no PushSecret wrote (refused).
/// Compared: the PushSecrets, their events, and everything in both mounts, after the first push,
/// a change of the source, an entry dropped and the PushSecrets deleted.
async fn push_vault(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let mount = |side: &str, v: &str| format!("push{v}-{side}-{ns}");
    for side in ["eso", "hush"] {
        for v in ["1", "2"] {
            bao(
                "POST",
                &format!("sys/mounts/{}", mount(side, v)),
                Some(json!({"type": "kv", "options": {"version": v}})),
            )
            .await?;
        }
        // What no PushSecret wrote: no managed-by marker.
        bao(
            "POST",
            &format!("{}/data/unmanaged", mount(side, "2")),
            Some(json!({"data": {"kept": "yes"}})),
        )
        .await?;
        bao(
            "POST",
            &format!("{}/unmanaged", mount(side, "1")),
            Some(json!({"kept": "yes"})),
        )
        .await?;
    }
    let shared_mount = |v: &str| format!("push{v}-{SIDE}-{ns}");
    let docs = snippet_documents("vault-pushsecret.yaml")?;
    let mut source = doc_kind(&docs, "Secret")?;
    source["metadata"]
        .as_object_mut()
        .map(|m| m.remove("namespace"));
    let mut documented = doc_kind(&docs, "PushSecret")?;
    documented["metadata"]
        .as_object_mut()
        .map(|m| m.remove("namespace"));
    let push = |name: &str, spec: Value| {
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": name}, "spec": spec})
    };
    let entry = |key: &str, remote_key: &str, property: Option<&str>| {
        let mut r = json!({"remoteKey": remote_key});
        if let Some(p) = property {
            r["property"] = json!(p);
        }
        json!({"match": {"secretKey": key, "remoteRef": r}})
    };
    let v2 = json!([{"name": "vault-secretstore", "kind": "SecretStore"}]);
    let v1 = json!([{"name": "vault-v1", "kind": "SecretStore"}]);
    let selector = json!({"secret": {"name": "source-secret"}});
    let mut followed = entry("source-key2", "followed/second", Some("value"));
    followed["metadata"] = json!({"apiVersion": "kubernetes.external-secrets.io/v1alpha1",
        "kind": "PushSecretMetadata", "spec": {"customMetadata": {"team": "kanto"}}});
    p.apply(vec![
        vault_token_secret(),
        vault_store("vault-secretstore", &shared_mount("2"), "v2", token_auth()),
        vault_store("vault-v1", &shared_mount("1"), "v1", token_auth()),
        source,
        documented,
        push(
            "followed",
            json!({"refreshInterval": "2s", "deletionPolicy": "Delete", "secretStoreRefs": v2,
                "selector": selector, "data": [
                    entry("source-key1", "followed/first", None), followed]}),
        ),
        push(
            "if-not-exists",
            json!({"refreshInterval": "2s", "updatePolicy": "IfNotExists", "secretStoreRefs": v2,
                "selector": selector, "data": [entry("source-key2", "vault/secret2", Some("foo"))]}),
        ),
        push(
            "templated",
            json!({"refreshInterval": "1h", "secretStoreRefs": v2, "selector": selector,
                "template": {"engineVersion": "v2",
                    "data": {"greeting": "hello {{ index . \"source-key2\" | upper }}"}},
                "data": [entry("greeting", "templated", Some("text"))]}),
        ),
        // As ESO's docs/snippets/full-pushsecret.yaml writes it: `.source-key2` is not a Go
        // template field name.
        push(
            "broken-template",
            json!({"refreshInterval": "1h", "secretStoreRefs": v2, "selector": selector,
                "template": {"data": {"greeting": "{{ .source-key2 | toString | upper }}"}},
                "data": [entry("greeting", "broken", Some("text"))]}),
        ),
        push(
            "whole-v1",
            json!({"refreshInterval": "2s", "secretStoreRefs": v1, "selector": selector,
                "data": [{"match": {"remoteRef": {"remoteKey": "whole"}}}]}),
        ),
        push(
            "unmanaged",
            json!({"refreshInterval": "1h", "secretStoreRefs": v2, "selector": selector,
                "data": [entry("source-key2", "unmanaged", Some("kept"))]}),
        ),
        push(
            "unmanaged-v1",
            json!({"refreshInterval": "1h", "secretStoreRefs": v1, "selector": selector,
                "data": [entry("source-key2", "unmanaged", Some("kept"))]}),
        ),
    ])
    .await?;
    p.compare("pushed", Wait::Settled).await?;
    compare_vault(p, &ns, "pushed").await?;
    p.patch(
        "v1",
        "Secret",
        "source-secret",
        json!({"stringData": {"source-key1": "{\"foo\":\"changed\"}", "source-key2": "baz"}}),
    )
    .await?;
    // PushSecrets do not watch their source: the change arrives with the 2 s refresh.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    p.compare("source changed", Wait::Settled).await?;
    compare_vault(p, &ns, "source changed").await?;
    p.patch(
        "external-secrets.io/v1alpha1",
        "PushSecret",
        "followed",
        json!({"spec": {"data": [entry("source-key1", "followed/first", None)]}}),
    )
    .await?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    p.compare("entry dropped", Wait::Settled).await?;
    compare_vault(p, &ns, "entry dropped").await?;
    for name in ["followed", "whole-v1", "pushsecret-example"] {
        p.delete("external-secrets.io/v1alpha1", "PushSecret", name)
            .await?;
    }
    p.compare("PushSecrets deleted", Wait::Settled).await?;
    compare_vault(p, &ns, "PushSecrets deleted").await
}

/// PushSecret to the webhook provider: ESO's documented push store and PushSecret
/// (docs/provider/webhook.md; httpbin.org → a recording loopback server, the side in the query,
/// and the `result: {}` ESO's CRD requires), plus a store with `method: PUT`, no `body` and a
/// `headers` template over the pushed value, pushing a key and the whole Secret (no
/// `secretKey`). Compared: the PushSecrets, and the distinct requests each side made (method,
/// query, body, `Content-Type`, `Authorization`, the templated header).
async fn push_webhook(p: &mut Pair<'_>) -> Result<()> {
    let server = webhook_server::start().await;
    let docs = eso_provider_doc("webhook.md")?;
    let mut store = docs
        .iter()
        .find(|d| {
            d["kind"] == "SecretStore"
                && d["spec"]["provider"]["webhook"]["url"]
                    .as_str()
                    .is_some_and(|u| u.contains("/push?"))
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("webhook.md has no push store"))?;
    let url = store["spec"]["provider"]["webhook"]["url"]
        .as_str()
        .unwrap_or_default()
        .replace(
            "http://httpbin.org/push?",
            &format!("{}/push?side={SIDE}&", server.base),
        );
    store["apiVersion"] = json!(ES);
    store["spec"]["provider"]["webhook"]["url"] = json!(url);
    // ESO v0.16.2's CRD requires `result`, which the page leaves out.
    store["spec"]["provider"]["webhook"]["result"] = json!({});
    let documented = doc_named_in(&docs, "PushSecret", "pushsecret-example")?;
    let push = |name: &str, store: &str, data: Value| {
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": name}, "spec": {"refreshInterval": "1h",
                "secretStoreRefs": [{"name": store, "kind": "SecretStore"}],
                "selector": {"secret": {"name": "test-secret"}}, "data": data}})
    };
    let put_url = format!(
        "{}/push?side={SIDE}&k={{{{ .remoteRef.remoteKey }}}}&v={{{{ index .remoteRef .remoteRef.remoteKey }}}}",
        server.base
    );
    p.apply(vec![
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "webhook-credentials", "labels": {"external-secrets.io/type": "webhook"}},
            "stringData": {"username": "test", "password": "pw"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "test-secret"},
            "stringData": {"testsecret": "a b&c=d", "other": "<o>"}}),
        store,
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "put"},
            "spec": {"provider": {"webhook": {"method": "PUT", "url": put_url, "result": {},
                "headers": {"X-Value": "{{ index .remoteRef .remoteRef.remoteKey | b64enc }}"}}}}}),
        documented,
        // The whole Secret through the PUT store: the page's URL writes `{{ .remoteRef.secretKey }}`,
        // which without a secretKey renders `<no value>`, a space ESO sends unencoded in the
        // request line (the server answers 400) and hush percent-encodes.
        push(
            "whole",
            "put",
            json!([{"match": {"remoteRef": {"remoteKey": "whole"}}}]),
        ),
        push(
            "put",
            "put",
            json!([{"match": {"secretKey": "testsecret", "remoteRef": {"remoteKey": "putkey"}}}]),
        ),
    ])
    .await?;
    p.compare("pushed", Wait::Settled).await?;
    let side = |name: &str| -> Value {
        let mut seen: Vec<Value> = server
            .pushes()
            .into_iter()
            .filter(|r| r["args"]["side"] == name)
            .map(|r| {
                let mut args = r["args"].clone();
                args["side"] = json!("<side>");
                json!({"method": r["method"], "args": args, "body": r["body"],
                    "contentType": r["headers"]["Content-Type"],
                    "authorization": r["headers"]["Authorization"],
                    "xValue": r["headers"]["X-Value"]})
            })
            .collect();
        seen.sort_by_key(Value::to_string);
        seen.dedup();
        json!(seen)
    };
    let (eso, hush) = (side("eso"), side("hush"));
    anyhow::ensure!(
        hush.as_array().is_some_and(|a| a.len() == 3),
        "hush made {hush}"
    );
    p.compare_values("pushed", "webhook requests", &eso, &hush);
    Ok(())
}

/// PushSecret to the kubernetes provider: ESO's four documented PushSecrets
/// (docs/provider/kubernetes.md; the two written `spec: # ...` get the store and source of the
/// first, and `remoteKey: backend_secrets`, not a Kubernetes name, becomes `backend-secrets`)
/// through a store whose ServiceAccount holds the page's `eso-store-push-role` in another
/// namespace, which already has a Secret the push merges into; a whole-Secret push and a
/// two-key push with `deletionPolicy: Delete`, both refreshing every 2 s. Compared: every Secret
/// of both namespaces and the PushSecrets, after the first push, a change of the source, an
/// entry dropped and a PushSecret deleted.
async fn push_kubernetes(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    let docs = eso_provider_doc("kubernetes.md")?;
    let remote = p.extra_namespace("remote", &BTreeMap::new()).await?;
    let mut role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "eso-store-push-role")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("kubernetes.md has no Role eso-store-push-role"))?;
    role["metadata"]["namespace"] = json!(remote);
    let in_remote = |mut v: Value| {
        v["metadata"]["namespace"] = json!(remote);
        v
    };
    let documented: Vec<Value> = docs
        .iter()
        .filter(|d| d["kind"] == "PushSecret")
        .cloned()
        .collect();
    anyhow::ensure!(documented.len() == 4, "kubernetes.md has 4 PushSecrets");
    let store_ref = json!([{"name": "k8s-store-remote-ns", "kind": "SecretStore"}]);
    let selector = json!({"secret": {"name": "pokedex-credentials"}});
    let named = |mut d: Value, name: &str, fill: bool| {
        d["metadata"]["name"] = json!(name);
        if fill {
            d["spec"]["secretStoreRefs"] = store_ref.clone();
            d["spec"]["selector"] = selector.clone();
        }
        d
    };
    let mut templated = named(documented[2].clone(), "example-template", true);
    templated["spec"]["data"][0]["match"]["remoteRef"]["remoteKey"] = json!("backend-secrets");
    let push = |name: &str, spec: Value| {
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": name}, "spec": spec})
    };
    let entry = |key: &str, property: &str| {
        json!({"match": {"secretKey": key,
            "remoteRef": {"remoteKey": "two-keys", "property": property}}})
    };
    p.apply(vec![
        role,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "eso-pusher"}}),
        in_remote(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "eso-pusher"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "eso-store-push-role"},
            "subjects": [{"kind": "ServiceAccount", "name": "eso-pusher", "namespace": ns}]})),
        in_remote(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "remote-best-pokemon", "labels": {"kept": "yes"}},
            "stringData": {"other": "keep"}})),
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "k8s-store-remote-ns"},
            "spec": {"provider": {"kubernetes": {"remoteNamespace": remote,
                "server": {"url": API_URL, "caBundle": API_CA},
                "auth": {"serviceAccount": {"name": "eso-pusher"}}}}}}),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "pokedex-credentials", "labels": {"team": "kanto"},
                "annotations": {"note": "from-source"}},
            "stringData": {"best-pokemon": "pikachu", "dockerconfigjson": "{\"auths\":{}}",
                "hostname": "db", "database": "pokedex", "example-1": "https://x"}}),
        documented[0].clone(),
        named(documented[1].clone(), "example-type", false),
        templated,
        named(documented[3].clone(), "example-metadata", true),
        push(
            "whole",
            json!({"refreshInterval": "2s", "secretStoreRefs": store_ref, "selector": selector,
                "data": [{"match": {"remoteRef": {"remoteKey": "whole-copy"}}}]}),
        ),
        // A template over a whole-Secret push: ESO renders into the source Secret, so its keys
        // stay beside the template's.
        push(
            "templated-whole",
            json!({"refreshInterval": "2s", "secretStoreRefs": store_ref, "selector": selector,
                "template": {"data": {"url": "https://{{ .hostname }}/{{ .database }}"}},
                "data": [{"match": {"remoteRef": {"remoteKey": "templated-copy"}}}]}),
        ),
        push(
            "deleting",
            json!({"refreshInterval": "2s", "deletionPolicy": "Delete",
                "secretStoreRefs": store_ref, "selector": selector,
                "data": [entry("hostname", "host"), entry("database", "db")]}),
        ),
    ])
    .await?;
    p.compare("pushed", Wait::Settled).await?;
    p.patch(
        "v1",
        "Secret",
        "pokedex-credentials",
        json!({"stringData": {"hostname": "db2", "best-pokemon": "mew"}}),
    )
    .await?;
    // PushSecrets do not watch their source: the change arrives with the 2 s refresh.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    p.compare("source changed", Wait::Settled).await?;
    p.patch(
        "external-secrets.io/v1alpha1",
        "PushSecret",
        "deleting",
        json!({"spec": {"data": [entry("hostname", "host")]}}),
    )
    .await?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    p.compare("entry dropped", Wait::Settled).await?;
    p.delete("external-secrets.io/v1alpha1", "PushSecret", "deleting")
        .await?;
    p.compare("PushSecret deleted", Wait::Settled).await
}

/// A ClusterPushSecret (ESO's documented `full-cluster-push-secret.yaml` shape) fanning PushSecrets
/// out to labelled namespaces, each pushing its namespace's Secret through a ClusterSecretStore to
/// each side's own KV v2 mount; then a namespace joins and one leaves, then the ClusterPushSecret
/// is deleted. Compared: the ClusterPushSecret, its PushSecrets, events and both mounts.
async fn cluster_push(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    for side in ["eso", "hush"] {
        for v in ["1", "2"] {
            bao(
                "POST",
                &format!("sys/mounts/push{v}-{side}-{ns}"),
                Some(json!({"type": "kv", "options": {"version": v}})),
            )
            .await?;
        }
        bao(
            "POST",
            &format!("push2-{side}-{ns}/data/unmanaged"),
            Some(json!({"data": {"kept": "yes"}})),
        )
        .await?;
        bao(
            "POST",
            &format!("push1-{side}-{ns}/unmanaged"),
            Some(json!({"kept": "yes"})),
        )
        .await?;
    }
    let selector = BTreeMap::from([("eso-diff-cps".to_owned(), ns.clone())]);
    let a = p.extra_namespace("a", &selector).await?;
    let b = p.extra_namespace("b", &selector).await?;
    let c = p.extra_namespace("c", &BTreeMap::new()).await?;
    let css = format!("{ns}-vault");
    let mut manifests = vec![
        vault_token_secret(),
        json!({"apiVersion": ES, "kind": "ClusterSecretStore", "metadata": {"name": css},
            "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"),
                "path": format!("push2-{SIDE}-{ns}"), "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": ns}}}}}}),
    ];
    for n in [&a, &b, &c] {
        // The same value everywhere: every namespace's PushSecret writes the same remote key.
        let mut s = secret("pokedex-credentials", json!({"best-pokemon": "pikachu"}));
        s["metadata"]["namespace"] = json!(n);
        manifests.push(s);
    }
    manifests.push(
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "ClusterPushSecret",
        "metadata": {"name": format!("{ns}-cps")},
        "spec": {"pushSecretName": "hello-world-ps",
            "pushSecretMetadata": {"labels": {"from": "cps"}, "annotations": {"note": "fan-out"}},
            "namespaceSelectors": [{"matchLabels": {"eso-diff-cps": ns}}],
            "refreshTime": "1m",
            "pushSecretSpec": {"updatePolicy": "Replace", "deletionPolicy": "Delete",
                "refreshInterval": "1h",
                "secretStoreRefs": [{"name": css, "kind": "ClusterSecretStore"}],
                "selector": {"secret": {"name": "pokedex-credentials"}},
                "data": [{"match": {"secretKey": "best-pokemon",
                    "remoteRef": {"remoteKey": "pokedex", "property": "best-pokemon"}}}]}}}),
    );
    p.apply(manifests).await?;
    p.compare("fanned out", Wait::Settled).await?;
    compare_vault(p, &ns, "fanned out").await?;
    // One at a time: a PushSecret leaving deletes the shared remote key, one joining writes it.
    p.patch(
        "v1",
        "Namespace",
        &a,
        json!({"metadata": {"labels": {"eso-diff-cps": null}}}),
    )
    .await?;
    p.compare("a namespace left", Wait::Settled).await?;
    compare_vault(p, &ns, "a namespace left").await?;
    p.patch(
        "v1",
        "Namespace",
        &c,
        json!({"metadata": {"labels": {"eso-diff-cps": ns}}}),
    )
    .await?;
    p.compare("a namespace joined", Wait::Settled).await?;
    compare_vault(p, &ns, "a namespace joined").await?;
    p.delete(
        "external-secrets.io/v1alpha1",
        "ClusterPushSecret",
        &format!("{ns}-cps"),
    )
    .await?;
    p.compare("ClusterPushSecret deleted", Wait::Settled)
        .await?;
    compare_vault(p, &ns, "ClusterPushSecret deleted").await
}

/// Compares both sides' push mounts (see [`push_vault`]).
async fn compare_vault(p: &Pair<'_>, ns: &str, step: &str) -> Result<()> {
    for (v, what) in [("2", "vault kv2"), ("1", "vault kv1")] {
        let eso = vault_tree(&format!("push{v}-eso-{ns}"), &format!("v{v}")).await?;
        let hush = vault_tree(&format!("push{v}-hush-{ns}"), &format!("v{v}")).await?;
        // Each mount keeps at least the secret no PushSecret wrote.
        anyhow::ensure!(
            eso.as_object().is_some_and(|o| !o.is_empty())
                && hush.as_object().is_some_and(|o| !o.is_empty()),
            "{step}: nothing read from the {what} mounts"
        );
        p.compare_values(step, what, &eso, &hush);
    }
    Ok(())
}

/// PushSecret to AWS Secrets Manager and Parameter Store, each side under its own store `prefix`
/// (`<side>/<ns>/`, `/<side>/<ns>/`; the one thing that differs): a value with tags, a property
/// into a JSON secret, the whole Secret, a secret no PushSecret wrote (refused), `deletionPolicy:
/// Delete` with an entry dropped and the PushSecret deleted. Compared: the PushSecrets, their
/// events, and every secret and parameter under each side's prefix (value, tags, deletion).
async fn push_aws(p: &mut Pair<'_>) -> Result<()> {
    let ns = p.ns.clone();
    for side in ["eso", "hush"] {
        aws_secret(&format!("{side}/{ns}/foreign"), "keep").await?;
    }
    let store = |name: &str, service: &str, prefix: String| {
        let mut s = aws_store(name, service);
        s["spec"]["provider"]["aws"]["prefix"] = json!(prefix);
        s["spec"]["provider"]["aws"]["secretsManager"] =
            json!({"forceDeleteWithoutRecovery": true});
        s
    };
    let push = |name: &str, spec: Value| {
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": name}, "spec": spec})
    };
    let selector = json!({"secret": {"name": "source"}});
    let sm = json!([{"name": "aws-sm", "kind": "SecretStore"}]);
    let ps = json!([{"name": "aws-ps", "kind": "SecretStore"}]);
    let tagged = json!({"match": {"secretKey": "password", "remoteRef": {"remoteKey": "tagged"}},
        "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1",
            "kind": "PushSecretMetadata", "spec": {"tags": {"team": "kanto"}}}});
    p.apply(vec![
        aws_credentials_secret(),
        secret("source", json!({"password": "pw-1", "user": "ash"})),
        store("aws-sm", "SecretsManager", format!("{SIDE}/{ns}/")),
        store("aws-ps", "ParameterStore", format!("/{SIDE}/{ns}/")),
        push(
            "sm",
            json!({"refreshInterval": "2s", "deletionPolicy": "Delete", "secretStoreRefs": sm,
                "selector": selector, "data": [tagged,
                    {"match": {"secretKey": "password", "remoteRef": {"remoteKey": "json", "property": "db.password"}}},
                    {"match": {"remoteRef": {"remoteKey": "whole"}}}]}),
        ),
        push(
            "parameter",
            json!({"refreshInterval": "2s", "deletionPolicy": "Delete", "secretStoreRefs": ps,
                "selector": selector, "data": [
                    {"match": {"secretKey": "password", "remoteRef": {"remoteKey": "password"}}},
                    {"match": {"secretKey": "user", "remoteRef": {"remoteKey": "user"}}}]}),
        ),
        push(
            "foreign",
            json!({"refreshInterval": "1h", "secretStoreRefs": sm, "selector": selector,
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "foreign"}}}]}),
        ),
    ])
    .await?;
    p.compare("pushed", Wait::Settled).await?;
    compare_aws(p, &ns, "pushed").await?;
    p.patch(
        "v1",
        "Secret",
        "source",
        json!({"stringData": {"password": "pw-2"}}),
    )
    .await?;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    p.compare("source changed", Wait::Settled).await?;
    compare_aws(p, &ns, "source changed").await?;
    p.patch(
        "external-secrets.io/v1alpha1",
        "PushSecret",
        "parameter",
        json!({"spec": {"data": [
            {"match": {"secretKey": "password", "remoteRef": {"remoteKey": "password"}}}]}}),
    )
    .await?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    p.compare("entry dropped", Wait::Settled).await?;
    compare_aws(p, &ns, "entry dropped").await?;
    for name in ["sm", "parameter"] {
        p.delete("external-secrets.io/v1alpha1", "PushSecret", name)
            .await?;
    }
    p.compare("PushSecrets deleted", Wait::Settled).await?;
    compare_aws(p, &ns, "PushSecrets deleted").await
}

/// Compares what each side pushed to AWS (see [`push_aws`]).
async fn compare_aws(p: &Pair<'_>, ns: &str, step: &str) -> Result<()> {
    let eso = aws_tree(&format!("eso/{ns}/")).await?;
    let hush = aws_tree(&format!("hush/{ns}/")).await?;
    // Each side keeps at least the secret no PushSecret wrote: empty means the read is wrong.
    anyhow::ensure!(
        eso.as_object().is_some_and(|o| !o.is_empty())
            && hush.as_object().is_some_and(|o| !o.is_empty()),
        "{step}: nothing read from AWS under eso/{ns}/ or hush/{ns}/"
    );
    p.compare_values(step, "aws", &eso, &hush);
    Ok(())
}

/// Every Secrets Manager secret named `prefix…` and parameter named `/prefix…`: value (string or
/// base64 binary), tags, and whether it is scheduled for deletion; names without the prefix.
async fn aws_tree(prefix: &str) -> Result<Value> {
    let mut out = serde_json::Map::new();
    let listed = aws(
        "secretsmanager",
        "secretsmanager",
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": [prefix]}], "IncludePlannedDeletion": true,
            "MaxResults": 100}),
    )
    .await?;
    for s in listed["SecretList"].as_array().into_iter().flatten() {
        let name = s["Name"].as_str().unwrap_or_default();
        let Some(short) = name.strip_prefix(prefix) else {
            continue;
        };
        let value = aws(
            "secretsmanager",
            "secretsmanager",
            "GetSecretValue",
            json!({"SecretId": name}),
        )
        .await
        .map_or(Value::Null, |v| {
            if v["SecretString"].is_string() {
                v["SecretString"].clone()
            } else {
                json!({"binary": v["SecretBinary"]})
            }
        });
        let mut tags: Vec<Value> = s["Tags"].as_array().cloned().unwrap_or_default();
        tags.sort_by_key(ToString::to_string);
        out.insert(
            format!("secretsmanager {short}"),
            json!({"value": value, "tags": tags, "deleted": !s["DeletedDate"].is_null()}),
        );
    }
    let path = format!("/{}", prefix.trim_end_matches('/'));
    let params = aws(
        "ssm",
        "AmazonSSM",
        "GetParametersByPath",
        json!({"Path": path, "Recursive": true, "WithDecryption": true}),
    )
    .await?;
    for prm in params["Parameters"].as_array().into_iter().flatten() {
        let name = prm["Name"].as_str().unwrap_or_default();
        let short = name.strip_prefix(&format!("{path}/")).unwrap_or(name);
        let tags = aws(
            "ssm",
            "AmazonSSM",
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": name}),
        )
        .await?;
        let mut tags: Vec<Value> = tags["TagList"].as_array().cloned().unwrap_or_default();
        tags.sort_by_key(ToString::to_string);
        out.insert(
            format!("parameter {short}"),
            json!({"value": prm["Value"], "type": prm["Type"], "tags": tags}),
        );
    }
    Ok(Value::Object(out))
}

/// Every document of one of ESO's snippet files.
fn snippet_documents(file: &str) -> Result<Vec<Value>> {
    let path = eso_peer::peer_path("HUSH_PEER_ESO")?
        .parent()
        .map(|d| d.join("snippets").join(file))
        .ok_or_else(|| anyhow::anyhow!("HUSH_PEER_ESO has no parent directory"))?;
    let text = std::fs::read_to_string(&path)?;
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Ok(serde::Deserialize::deserialize(d)?))
        .collect()
}

fn doc_named_in(docs: &[Value], kind: &str, name: &str) -> Result<Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no {kind} {name} in the page"))
}

fn doc_kind(docs: &[Value], kind: &str) -> Result<Value> {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no {kind} in the snippet"))
}

/// The Password and UUID generators (ESO's documented generators and ExternalSecrets,
/// docs/snippets/generator-{password,uuid}{,-example}.yaml, at `external-secrets.io/v1`), a
/// strict Password (no upper case, no repeats, its own symbols) regenerated every 2 s, and the
/// Fake generator. Generated values are compared by shape ([`generated_shape`]), not value.
async fn generators(p: &mut Pair<'_>) -> Result<()> {
    p.shape = Some(generated_shape);
    let with_v1 = |file: &str| -> Result<Value> {
        let mut v = eso_snippet(file)?;
        if v["kind"] == "ExternalSecret" {
            v["apiVersion"] = json!(ES);
        }
        Ok(v)
    };
    let generated = |name: &str, kind: &str, refresh: &str| {
        external_secret(
            name,
            json!({"refreshInterval": refresh, "dataFrom": [{"sourceRef": {"generatorRef": {
                "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": kind, "name": name}}}]}),
        )
    };
    p.apply(vec![
        with_v1("generator-password.yaml")?,
        with_v1("generator-uuid.yaml")?,
        with_v1("generator-password-example.yaml")?,
        with_v1("generator-uuid-example.yaml")?,
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
            "metadata": {"name": "strict"},
            "spec": {"length": 20, "digits": 3, "symbols": 2, "symbolCharacters": "#%",
                "noUpper": true, "allowRepeat": false}}),
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
            "metadata": {"name": "defaults"}, "spec": {"length": 32, "allowRepeat": true}}),
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Fake",
            "metadata": {"name": "fake"}, "spec": {"data": {"user": "robot", "token": "t0k3n"}}}),
        generated("strict", "Password", "2s"),
        generated("defaults", "Password", "1h"),
        generated("fake", "Fake", "1h"),
        external_secret(
            "rewritten",
            json!({"refreshInterval": "1h", "target": {"template": {"engineVersion": "v2",
                    "data": {"dsn": "user:{{ .uuid_value }}"}}},
                "dataFrom": [{"sourceRef": {"generatorRef": {
                    "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "UUID",
                    "name": "my-uuid"}},
                "rewrite": [{"regexp": {"source": "(.*)", "target": "$1_value"}}]}]}),
        ),
        external_secret(
            "missing",
            json!({"refreshInterval": "1h", "dataFrom": [{"sourceRef": {"generatorRef": {
                "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
                "name": "no-such-generator"}}}]}),
        ),
    ])
    .await?;
    p.compare("generated", Wait::Settled).await?;
    p.compare("regenerated", Wait::Refreshed).await
}

/// A generated value's shape, by key: a version-4 UUID (`uuid`, `uuid_value`, after `user:` in
/// `dsn`), or a password's length, digit and symbol counts, which letter cases occur, whether all
/// characters differ and the symbol set they come from; other keys (the Fake generator's) as they
/// are.
fn generated_shape(key: &str, value: &str) -> Value {
    match key {
        "uuid" | "uuid_value" => uuid_shape(value),
        "dsn" => match value.strip_prefix("user:") {
            Some(rest) => json!(["user:", uuid_shape(rest)]),
            None => json!(value),
        },
        "password" => password_shape(value),
        _ => json!(value),
    }
}

fn uuid_shape(value: &str) -> Value {
    let parts: Vec<&str> = value.split('-').collect();
    let is_uuid4 = parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
        && parts[2].starts_with('4')
        && parts[3].starts_with(['8', '9', 'a', 'b']);
    if is_uuid4 {
        json!("uuid v4")
    } else {
        json!(format!("not a version-4 UUID ({} characters)", value.len()))
    }
}

fn password_shape(value: &str) -> Value {
    let chars: Vec<char> = value.chars().collect();
    let distinct: std::collections::BTreeSet<char> = chars.iter().copied().collect();
    let symbols: String = chars
        .iter()
        .filter(|c| !c.is_ascii_alphanumeric())
        .collect();
    let within = |set: &str| symbols.chars().all(|c| set.contains(c));
    let from = if within("-_$@") {
        "-_$@"
    } else if within("#%") {
        "#%"
    } else if within("~!@#$%^&*()_+`-={}|[]\\:\"<>?,./") {
        "ESO's default symbols"
    } else {
        "other"
    };
    json!({
        "length": chars.len(),
        "digits": chars.iter().filter(|c| c.is_ascii_digit()).count(),
        "symbols": symbols.chars().count(),
        "symbols from": from,
        "upper case": chars.iter().any(char::is_ascii_uppercase),
        "lower case": chars.iter().any(char::is_ascii_lowercase),
        "all distinct": distinct.len() == chars.len(),
    })
}
