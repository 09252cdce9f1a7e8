//! Refresh on demand (`--enable-refresh-endpoint`) on the real kube-apiserver and OpenBao, the
//! controller running as the chart's ServiceAccount with the chart's RBAC (TokenReview and
//! SubjectAccessReview `create`): a ServiceAccount allowed to patch an ExternalSecret makes it read
//! OpenBao again at once (audit log and new value), one that may only read it gets 403, a bad or
//! missing token 401; a store's refresh needs `patch` on the store; CreatedOnce answers 409, a
//! repeat within `--refresh-min-interval` 429. No token reaches the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_external_controller::refresh::{REQUESTED_AT, Settings};
use hush_testkit::TestNamespace;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt as _;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// A token of ServiceAccount `name` (TokenRequest), for `audience` or the API server's own.
async fn token(ns: &TestNamespace, name: &str, audience: Option<&str>) -> Result<String> {
    let accounts: Api<ServiceAccount> = ns.api();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: audience.map(|a| vec![a.to_owned()]),
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let answer = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await?;
    answer
        .status
        .and_then(|s| s.token)
        .context("TokenRequest without a token")
}

/// ServiceAccount `name` with a Role allowing `verbs` on `resources` of external-secrets.io.
async fn account(ns: &TestNamespace, name: &str, resources: &[&str], verbs: &[&str]) -> Result<()> {
    apply(
        &ns.api::<ServiceAccount>(),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name}}),
    )
    .await?;
    apply(
        &ns.api::<Role>(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["external-secrets.io"], "resources": resources, "verbs": verbs}]}),
    )
    .await?;
    apply(
        &ns.api::<RoleBinding>(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns.name()}]}),
    )
    .await?;
    Ok(())
}

/// `POST path` on the endpoint with `token` as bearer token: the status and the JSON answer.
async fn post(ctl: &Controller, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
    let addr = ctl.refresh_addr.context("no refresh endpoint")?;
    let mut request = reqwest::Client::new().post(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await?;
    let code = answer.status().as_u16();
    let body = answer.text().await?;
    let json = serde_json::from_str(&body).with_context(|| format!("answer {code}: {body}"))?;
    Ok((code, json))
}

/// Waits until key `v` of Secret `name` is `want`.
async fn wait_value(secrets: &Api<Secret>, name: &str, want: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = secrets.get_opt(name).await?.map(|s| value(&s, "v"));
        if got.as_deref() == Some(want) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "Secret {name}: v is {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads of OpenBao key `key` in the audit log after byte `from`.
fn reads_of(key: &str, from: u64) -> Result<usize> {
    let path = format!("secret/data/{key}");
    Ok(vault_request_paths(from)?
        .iter()
        .filter(|p| **p == path)
        .count())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and OpenBao"]
async fn refresh_on_demand_needs_a_token_and_patch_permission() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-refresh").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let key = format!("{n}/db");
    let data_path = format!("secret/data/{key}");
    let put = |v: &'static str| bao("POST", &data_path, Some(json!({"data": {"v": v}})));
    put("one").await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let es: Api<ExternalSecret> = ns.api();
    for (name, policy) in [("db", "Periodic"), ("once", "CreatedOnce")] {
        apply(
            &es,
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "refreshPolicy": policy,
                "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                "target": {"name": name},
                "data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}}),
        )
        .await?;
    }
    account(&ns, "patcher", &["externalsecrets"], &["patch"]).await?;
    account(
        &ns,
        "reader",
        &["externalsecrets", "secretstores"],
        &["get", "list"],
    )
    .await?;
    account(&ns, "store-patcher", &["secretstores"], &["patch"]).await?;
    let settings = Settings {
        min_interval: Duration::from_secs(3),
        namespace: Some(n.clone()),
        ..Settings::default()
    };
    let ctl = Controller::start_with_refresh(&client, Some(&n), settings, |_| {}).await?;
    wait_ready(&es, "db", "True", "SecretSynced").await?;
    wait_ready(&es, "once", "True", "SecretSynced").await?;
    wait_value(&secrets, "db", "one").await?;
    put("two").await?;
    let es_path = |name: &str| format!("/v1/namespaces/{n}/externalsecrets/{name}/refresh");
    let store_path = format!("/v1/namespaces/{n}/secretstores/vault/refresh");

    // Not authenticated: no token, a forged one (a canary: it must not reach the logs), a
    // token of the right account for another audience than the endpoint's own.
    let forged = canary("refresh-token");
    for bad in [None, Some(forged.as_str())] {
        let (code, answer) = post(&ctl, &es_path("db"), bad).await?;
        ensure!(code == 401, "token {bad:?}: {code} {answer}");
    }
    let patcher = token(&ns, "patcher", None).await?;
    let reader = token(&ns, "reader", None).await?;
    let store_patcher = token(&ns, "store-patcher", None).await?;

    // Authenticated, not allowed: 403 naming the user and the object.
    let (code, answer) = post(&ctl, &es_path("db"), Some(&reader)).await?;
    ensure!(code == 403, "reader: {code} {answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains(&format!("system:serviceaccount:{n}:reader"))
            && message.contains(&format!("ExternalSecret {n}/db")),
        "{message}"
    );
    let (code, answer) = post(&ctl, &store_path, Some(&patcher)).await?;
    ensure!(code == 403, "patcher on the store: {code} {answer}");
    ensure!(
        es.get("db")
            .await?
            .annotations()
            .get(REQUESTED_AT)
            .is_none(),
        "a refused request annotated the ExternalSecret"
    );
    // Nothing of the refused requests read OpenBao again.
    let (code, _) = post(&ctl, &es_path("missing"), Some(&patcher)).await?;
    ensure!(code == 404, "missing ExternalSecret: {code}");
    let (code, answer) = post(&ctl, &es_path("once"), Some(&patcher)).await?;
    ensure!(code == 409, "CreatedOnce: {code} {answer}");
    ensure!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("CreatedOnce")),
        "{answer}"
    );
    let (code, _) = post(
        &ctl,
        "/v1/namespaces/Bad_NS/externalsecrets/db/refresh",
        Some(&patcher),
    )
    .await?;
    ensure!(code == 400, "invalid namespace: {code}");
    ensure!(
        value(&secrets.get("db").await?, "v") == "one",
        "refreshed before any allowed request"
    );

    // Allowed: OpenBao is read again and the new value lands (the next periodic read is 1 h away).
    let before = vault_audit_len()?;
    let (code, answer) = post(&ctl, &es_path("db"), Some(&patcher)).await?;
    ensure!(code == 202, "patcher: {code} {answer}");
    ensure!(
        answer["refreshRequested"] == json!([format!("{n}/db")]),
        "{answer}"
    );
    wait_value(&secrets, "db", "two").await?;
    ensure!(reads_of(&key, before)? >= 1, "OpenBao was not read again");
    ensure!(
        es.get("db").await?.annotations().contains_key(REQUESTED_AT),
        "no {REQUESTED_AT} annotation"
    );
    // At once again: within --refresh-min-interval.
    let (code, answer) = post(&ctl, &es_path("db"), Some(&patcher)).await?;
    ensure!(code == 429, "repeat: {code} {answer}");

    // A store's refresh: every ExternalSecret using it, CreatedOnce ones reported as skipped.
    put("three").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, answer) = post(&ctl, &store_path, Some(&reader)).await?;
    ensure!(code == 403, "reader on the store: {code} {answer}");
    let before = vault_audit_len()?;
    let (code, answer) = post(&ctl, &store_path, Some(&store_patcher)).await?;
    ensure!(code == 202, "store-patcher: {code} {answer}");
    ensure!(
        answer["refreshRequested"] == json!([format!("{n}/db")]),
        "{answer}"
    );
    ensure!(
        answer["skipped"][0]["externalSecret"] == json!(format!("{n}/once")),
        "{answer}"
    );
    ensure!(answer["skipped"][0]["code"] == json!(409), "{answer}");
    wait_value(&secrets, "db", "three").await?;
    ensure!(
        reads_of(&key, before)? >= 1,
        "OpenBao was not read again for the store"
    );
    ensure!(
        value(&secrets.get("once").await?, "v") == "one",
        "CreatedOnce was refreshed"
    );

    assert_no_canary(&client, &ns, &es, &forged).await?;
    for t in [&patcher, &reader, &store_patcher] {
        ensure!(!logs_contain(t), "a caller's token is in the logs");
    }
    ctl.stop().await
}
