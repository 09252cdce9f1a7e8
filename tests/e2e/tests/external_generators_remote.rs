//! Generators that call a remote service, referenced from ExternalSecrets'
//! `dataFrom[].sourceRef.generatorRef`, on the real kube-apiserver with OpenBao, moto and a
//! loopback httpbin-shaped server: ESO's documented `VaultDynamicSecret` (PKI issue, and
//! `auth/token/create` with `resultType: Auth`), `STSSessionToken` (also through a
//! `ClusterGenerator`), `ECRAuthorizationToken` and `Webhook` manifests; an empty Vault answer
//! refused unless `allowEmptyResponse`; a field hush does not implement named in the event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;
mod webhook_server;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::ExternalSecret;
use hush_api::generators::{
    ClusterGenerator, ECRAuthorizationToken, STSSessionToken, VaultDynamicSecret, Webhook,
};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};

const GEN: &str = "generators.external-secrets.io/v1alpha1";
/// moto's fixed GetSessionToken secret (a canary: must never reach the logs).
const MOTO_STS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";

fn generated(name: &str, kind: &str, gen_name: &str) -> Value {
    json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"refreshInterval": "768h", "target": {"name": name},
            "dataFrom": [{"sourceRef": {"generatorRef": {"apiVersion": GEN, "kind": kind, "name": gen_name}}}]}})
}

/// A PKI engine at `mount` with ESO's example role `example-dot-com`.
async fn pki(mount: &str) -> Result<()> {
    bao(
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(json!({"type": "pki"})),
    )
    .await?;
    bao(
        "POST",
        &format!("{mount}/root/generate/internal"),
        Some(json!({"common_name": "example.com", "ttl": "87600h"})),
    )
    .await?;
    bao(
        "POST",
        &format!("{mount}/roles/example-dot-com"),
        Some(json!({"allow_any_name": true, "allow_ip_sans": true, "max_ttl": "72h"})),
    )
    .await?;
    Ok(())
}

fn vault_provider() -> Value {
    json!({"server": env("HUSH_VAULT_ADDR"),
        "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}})
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh, OpenBao and moto"]
async fn vault_sts_ecr_and_webhook_generators() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-genr").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let mount = format!("pki-{n}");
    pki(&mount).await?;

    // docs/snippets/generator-vault.yaml, with the test's server and a token.
    let vds: Api<VaultDynamicSecret> = ns.api();
    apply(
        &vds,
        json!({"apiVersion": GEN, "kind": "VaultDynamicSecret",
        "metadata": {"name": "pki-example"},
        "spec": {"path": format!("/{mount}/issue/example-dot-com"), "method": "POST",
            "parameters": {"common_name": "localhost", "ip_sans": "127.0.0.1,127.0.0.11"},
            "resultType": "Data", "provider": vault_provider()}}),
    )
    .await?;
    apply(
        &vds,
        json!({"apiVersion": GEN, "kind": "VaultDynamicSecret",
        "metadata": {"name": "token"},
        "spec": {"path": "/auth/token/create", "method": "POST",
            "parameters": {"policies": ["default"], "ttl": "1h"},
            "resultType": "Auth", "provider": vault_provider()}}),
    )
    .await?;
    let missing = format!("secret/data/missing-{n}");
    apply(
        &vds,
        json!({"apiVersion": GEN, "kind": "VaultDynamicSecret",
        "metadata": {"name": "empty"}, "spec": {"path": missing, "provider": vault_provider()}}),
    )
    .await?;
    apply(
        &vds,
        json!({"apiVersion": GEN, "kind": "VaultDynamicSecret",
        "metadata": {"name": "empty-ok"},
        "spec": {"path": missing, "allowEmptyResponse": true, "provider": vault_provider()}}),
    )
    .await?;
    let mut iam = vault_provider();
    iam["auth"] = json!({"iam": {"region": "eu-west-1"}});
    apply(
        &vds,
        json!({"apiVersion": GEN, "kind": "VaultDynamicSecret",
        "metadata": {"name": "iam"}, "spec": {"path": "auth/token/lookup-self", "provider": iam}}),
    )
    .await?;

    // docs/snippets/generator-sts.yaml and generator-ecr.yaml with static credentials (moto
    // takes any); a role ARN as AWS wants it.
    secret_from_literals(
        &secrets,
        "my-aws-creds",
        &[("key-id", "AKIDTEST"), ("access-secret", "not-a-secret")],
    )
    .await?;
    let aws_auth = json!({"secretRef": {
        "accessKeyIDSecretRef": {"name": "my-aws-creds", "key": "key-id"},
        "secretAccessKeySecretRef": {"name": "my-aws-creds", "key": "access-secret"}}});
    let role = "arn:aws:iam::123456789012:role/my-role";
    apply(
        &ns.api::<STSSessionToken>(),
        json!({"apiVersion": GEN, "kind": "STSSessionToken",
        "metadata": {"name": "sts-gen"},
        "spec": {"region": "eu-west-1", "role": role, "auth": aws_auth,
            "requestParameters": {"sessionDuration": 900}}}),
    )
    .await?;
    apply(
        &ns.api::<ECRAuthorizationToken>(),
        json!({"apiVersion": GEN, "kind": "ECRAuthorizationToken",
        "metadata": {"name": "ecr-gen"},
        "spec": {"region": "eu-west-1", "role": role, "auth": aws_auth}}),
    )
    .await?;
    let cg_name = format!("sts-{n}");
    apply(
        &Api::<ClusterGenerator>::all(client.clone()),
        json!({"apiVersion": GEN,
        "kind": "ClusterGenerator", "metadata": {"name": cg_name},
        "spec": {"kind": "STSSessionToken", "generator": {"stsSessionTokenSpec":
            {"region": "eu-west-1", "auth": aws_auth}}}}),
    )
    .await?;

    // docs/snippets/generator-webhook.yaml against the loopback httpbin.
    let server = webhook_server::start().await;
    apply(&secrets, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "webhook-credentials", "labels": {"external-secrets.io/type": "webhook"}},
        "data": {"username": "dGVzdA==", "password": "dGVzdA==", "param": "dGVzdA=="}})).await?;
    apply(
        &ns.api::<Webhook>(),
        json!({"apiVersion": GEN, "kind": "Webhook",
        "metadata": {"name": "webhook"},
        "spec": {"url": format!("{}/get?parameter={{{{ .auth.param }}}}", server.base),
            "result": {"jsonPath": "$.args"},
            "headers": {"Content-Type": "application/json",
                "Authorization": "Basic {{ print .auth.username \":\" .auth.password | b64enc }}"},
            "secrets": [{"name": "auth", "secretRef": {"name": "webhook-credentials"}}]}}),
    )
    .await?;

    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    for (name, kind, gen_name) in [
        ("pki-example-com", "VaultDynamicSecret", "pki-example"),
        ("token", "VaultDynamicSecret", "token"),
        ("empty", "VaultDynamicSecret", "empty"),
        ("empty-ok", "VaultDynamicSecret", "empty-ok"),
        ("iam", "VaultDynamicSecret", "iam"),
        ("sts-secret", "STSSessionToken", "sts-gen"),
        ("ecr-secret", "ECRAuthorizationToken", "ecr-gen"),
        ("sts-cluster", "ClusterGenerator", &cg_name),
        ("webhook-secret", "Webhook", "webhook"),
    ] {
        apply(&es, generated(name, kind, gen_name)).await?;
    }
    for name in [
        "pki-example-com",
        "token",
        "empty-ok",
        "sts-secret",
        "ecr-secret",
        "sts-cluster",
        "webhook-secret",
    ] {
        wait_ready(&es, name, "True", "SecretSynced").await?;
    }

    // PKI: ESO's Data result, numbers as text, arrays as JSON.
    let cert = secrets.get("pki-example-com").await?;
    ensure!(value(&cert, "certificate").starts_with("-----BEGIN CERTIFICATE-----"));
    ensure!(value(&cert, "private_key").contains("PRIVATE KEY"));
    ensure!(
        value(&cert, "expiration")
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    ensure!(value(&cert, "ca_chain").starts_with("[\""));
    let private_key = value(&cert, "private_key");
    // Auth: the token Vault made, usable, with the policies asked for.
    let token = secrets.get("token").await?;
    ensure!(
        value(&token, "policies") == r#"["default"]"#,
        "{:?}",
        value(&token, "policies")
    );
    ensure!(value(&token, "renewable") == "true");
    let looked = bao(
        "POST",
        "auth/token/lookup",
        Some(json!({"token": value(&token, "client_token")})),
    )
    .await?;
    ensure!(
        looked["data"]["ttl"].as_i64().unwrap_or(0) > 3000,
        "{looked}"
    );
    // An empty answer with allowEmptyResponse is no data (the ExternalSecret is synced).
    ensure!(
        secrets
            .get_opt("empty-ok")
            .await?
            .and_then(|s| s.data)
            .unwrap_or_default()
            .is_empty(),
        "allowEmptyResponse wrote data"
    );
    // STS and ECR from moto.
    for name in ["sts-secret", "sts-cluster"] {
        let sts = secrets.get(name).await?;
        ensure!(value(&sts, "access_key_id") == "AKIAIOSFODNN7EXAMPLE");
        ensure!(value(&sts, "secret_access_key") == MOTO_STS_SECRET);
        ensure!(!value(&sts, "session_token").is_empty());
        let exp: i64 = value(&sts, "expiration").parse()?;
        ensure!(exp > 1_700_000_000, "{exp}");
    }
    let ecr = secrets.get("ecr-secret").await?;
    ensure!(value(&ecr, "username") == "AWS");
    ensure!(value(&ecr, "password") == "123456789012-auth-token");
    ensure!(value(&ecr, "proxy_endpoint").contains(".dkr.ecr.eu-west-1."));
    ensure!(value(&ecr, "expires_at") == "1420070400");
    // Webhook: httpbin's /get args, the templated query parameter from the labelled Secret.
    let wh = secrets.get("webhook-secret").await?;
    ensure!(value(&wh, "parameter") == "test", "{:?}", wh.data);

    // Refusals, named in the UpdateFailed events (the Ready message is ESO's fixed text).
    wait_ready(&es, "empty", "False", "SecretSyncedError").await?;
    wait_ready(&es, "iam", "False", "SecretSyncedError").await?;
    wait_events(
        &client,
        &n,
        &["empty response from Vault", "spec.provider.auth.iam"],
    )
    .await?;
    ensure!(
        !logs_contain(MOTO_STS_SECRET),
        "an STS secret key in the logs"
    );
    ensure!(!logs_contain(&private_key), "a private key in the logs");
    ctl.stop().await
}

/// The Webhook generator keeps the controller's `--webhook-*` budgets, as webhook stores do: a
/// response over `--webhook-max-response-bytes` fails the ExternalSecret, named in its event.
#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn webhook_generator_keeps_the_webhook_budgets() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-genwh").await?;
    let n = ns.name().to_owned();
    let server = webhook_server::start().await;
    apply(
        &ns.api::<Webhook>(),
        json!({"apiVersion": GEN, "kind": "Webhook",
        "metadata": {"name": "webhook"},
        "spec": {"url": format!("{}/get?parameter=more-than-sixteen-bytes", server.base),
            "result": {"jsonPath": "$.args"}}}),
    )
    .await?;
    let ctl = Controller::start_configured(&client, &n, "default", |c| {
        c.providers.webhook.max_response_bytes = 16;
    })
    .await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, generated("limited", "Webhook", "webhook")).await?;
    wait_ready(&es, "limited", "False", "SecretSyncedError").await?;
    wait_events(
        &client,
        &n,
        &["larger than 16 bytes (--webhook-max-response-bytes)"],
    )
    .await?;
    ctl.stop().await
}
