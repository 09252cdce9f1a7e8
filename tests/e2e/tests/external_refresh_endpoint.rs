//! Refresh on demand (`--enable-refresh-endpoint`) on the real kube-apiserver and OpenBao, the
//! controller running as the chart's ServiceAccount with the chart's RBAC (TokenReview and
//! SubjectAccessReview `create`): a ServiceAccount allowed to patch an ExternalSecret makes it read
//! OpenBao again at once (audit log and new value), one that may only read it gets 403, a bad or
//! missing token 401; a SecretStore's or ClusterSecretStore's refresh needs `patch` on the store;
//! CreatedOnce answers 409, a
//! repeat within `--refresh-min-interval` 429. No token reaches the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use hush_external_controller::refresh::{REQUESTED_AT, Settings};
use hush_testkit::TestNamespace;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
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
        let which = if bad.is_some() {
            "a forged token"
        } else {
            "no token"
        };
        ensure!(code == 401, "{which}: {code} {answer}");
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

    // A ClusterSecretStore's refresh needs `patch` on it (cluster-scoped), and covers the
    // ExternalSecrets of the watched namespace that use it.
    let css_name = format!("{n}-css");
    let css: Api<ClusterSecretStore> = Api::all(client.clone());
    apply(&css, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
        "metadata": {"name": css_name},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token", "namespace": n}}}}}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "via-css"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": css_name, "kind": "ClusterSecretStore"},
            "target": {"name": "via-css"},
            "data": [{"secretKey": "v", "remoteRef": {"key": key, "property": "v"}}]}})).await?;
    wait_value(&secrets, "via-css", "three").await?;
    let cluster_patcher = format!("{n}-css-patcher");
    apply(
        &ns.api::<ServiceAccount>(),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "css-patcher"}}),
    )
    .await?;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    apply(
        &roles,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": cluster_patcher},
        "rules": [{"apiGroups": ["external-secrets.io"], "resources": ["clustersecretstores"],
            "resourceNames": [css_name], "verbs": ["patch"]}]}),
    )
    .await?;
    apply(&bindings, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": cluster_patcher},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_patcher},
        "subjects": [{"kind": "ServiceAccount", "name": "css-patcher", "namespace": n}]})).await?;
    let css_path = format!("/v1/clustersecretstores/{css_name}/refresh");
    put("four").await?;
    let (code, answer) = post(&ctl, &css_path, Some(&store_patcher)).await?;
    ensure!(
        code == 403,
        "store-patcher on the ClusterSecretStore: {code} {answer}"
    );
    let css_token = token(&ns, "css-patcher", None).await?;
    let (code, answer) = post(&ctl, &css_path, Some(&css_token)).await?;
    ensure!(code == 202, "css-patcher: {code} {answer}");
    ensure!(
        answer["refreshRequested"] == json!([format!("{n}/via-css")]),
        "{answer}"
    );
    wait_value(&secrets, "via-css", "four").await?;
    ensure!(
        value(&secrets.get("db").await?, "v") == "three",
        "the SecretStore's ExternalSecret was refreshed too"
    );
    let (code, _) = post(
        &ctl,
        "/v1/clustersecretstores/no-such-store/refresh",
        Some(&css_token),
    )
    .await?;
    ensure!(code == 403, "a store the caller may not patch: {code}");
    css.delete(&css_name, &Default::default()).await?;
    bindings
        .delete(&cluster_patcher, &Default::default())
        .await?;
    roles.delete(&cluster_patcher, &Default::default()).await?;

    // Every answer counted on the metrics endpoint by resource and code.
    let metrics = reqwest::get(format!("http://{}/metrics", ctl.metrics_addr))
        .await?
        .text()
        .await?;
    for series in [
        r#"hush_refresh_requests_total{resource="externalsecrets",code="401"} 2"#,
        r#"hush_refresh_requests_total{resource="externalsecrets",code="202"} 1"#,
        r#"hush_refresh_requests_total{resource="secretstores",code="202"} 1"#,
        r#"hush_refresh_requests_total{resource="clustersecretstores",code="403"} 2"#,
    ] {
        ensure!(metrics.contains(series), "no {series} in\n{metrics}");
    }

    assert_no_canary(&client, &ns, &es, &forged).await?;
    for t in [&patcher, &reader, &store_patcher, &css_token] {
        ensure!(!logs_contain(t), "a caller's token is in the logs");
    }
    ctl.stop().await
}

/// The Lease holder of each of the `count` shards of `group` in `release`, once every shard has
/// one and `replicas` distinct replicas hold them.
async fn shard_holders(
    client: &kube::Client,
    release: &str,
    group: &str,
    count: u32,
    replicas: usize,
) -> Result<Vec<String>> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), release);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut holders = Vec::new();
        for shard in 0..count {
            let holder = leases
                .get_opt(&format!("{group}-shard-{shard}"))
                .await?
                .and_then(|l| l.spec?.holder_identity)
                .filter(|h| !h.is_empty());
            holders.extend(holder);
        }
        let distinct: std::collections::BTreeSet<_> = holders.iter().collect();
        if holders.len() == count as usize && distinct.len() == replicas {
            return Ok(holders);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "shards not split over {replicas} replicas: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and OpenBao"]
async fn a_replica_without_the_shard_still_makes_the_refresh_happen() -> Result<()> {
    use hush_operator::ShardConfig;
    use hush_operator::leader::LeaseConfig;
    use hush_testkit::chart::ChartProfile;

    const SHARDS: u32 = 2;
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-refresh-sh").await?;
    let release = TestNamespace::create(&client, "es-refresh-rel").await?;
    let (n, rel) = (ns.name().to_owned(), release.name().to_owned());
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    apply(&ns.api::<SecretStore>(), json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"controller": n, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let es: Api<ExternalSecret> = ns.api();
    let names: Vec<String> = (0..6).map(|i| format!("es{i}")).collect();
    for name in &names {
        bao(
            "POST",
            &format!("secret/data/{n}/{name}"),
            Some(json!({"data": {"v": "old"}})),
        )
        .await?;
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/{name}"), "property": "v"}}]}})).await?;
    }
    account(&ns, "patcher", &["externalsecrets"], &["patch"]).await?;

    // Two replicas, both serving the endpoint; callers' tokens must be for `hush-refresh`.
    let group = ChartProfile::External.lease_name().to_owned();
    let settings = Settings {
        audiences: vec!["hush-refresh".into()],
        namespace: Some(n.clone()),
        ..Settings::default()
    };
    let mut replicas = Vec::new();
    for id in ["a", "b"] {
        let mut lease = LeaseConfig::new(rel.clone(), group.clone(), id.into());
        lease.retry_period = Duration::from_millis(500);
        let mut shards = ShardConfig::new(SHARDS, rel.clone(), group.clone(), id.into());
        shards.retry_period = Duration::from_millis(500);
        let class = n.clone();
        replicas.push(
            Controller::start_sharded_with(
                &client,
                &rel,
                Some(&n),
                lease,
                shards,
                Some(settings.clone()),
                |c| {
                    c.controller_class = class;
                },
            )
            .await?,
        );
    }
    let holders = shard_holders(&client, &rel, &group, SHARDS, 2).await?;
    for name in &names {
        wait_ready(&es, name, "True", "SecretSynced").await?;
    }
    // An ExternalSecret whose shard replica `b` holds, asked of replica `a`.
    let name = names
        .iter()
        .find(|name| holders[hush_operator::shards::shard_of(&n, name, SHARDS) as usize] == "b")
        .context("no ExternalSecret in b's shard")?
        .clone();
    let key = format!("{n}/{name}");
    bao(
        "POST",
        &format!("secret/data/{key}"),
        Some(json!({"data": {"v": "new"}})),
    )
    .await?;
    let path = format!("/v1/namespaces/{n}/externalsecrets/{name}/refresh");

    // A token for the API server's audience is refused here; one for `hush-refresh` is taken.
    let (code, answer) = post(
        &replicas[0],
        &path,
        Some(&token(&ns, "patcher", None).await?),
    )
    .await?;
    ensure!(code == 401, "API-server audience: {code} {answer}");
    let before = vault_audit_len()?;
    let good = token(&ns, "patcher", Some("hush-refresh")).await?;
    let (code, answer) = post(&replicas[0], &path, Some(&good)).await?;
    ensure!(code == 202, "replica a: {code} {answer}");
    wait_value(&secrets, &name, "new").await?;
    // Read once, by b (a does not hold the shard and did not read).
    ensure!(
        reads_of(&key, before)? == 1,
        "reads of {key}: {}",
        reads_of(&key, before)?
    );
    ensure!(!logs_contain(&good), "a caller's token is in the logs");
    for replica in replicas {
        replica.stop().await?;
    }
    Ok(())
}
