//! PushSecret `selector.generatorRef` on the real kube-apiserver and moto: ESO's documented
//! rotation example (docs/snippets/pushsecret-generator-rotation-example.yaml: a `Password`
//! generator pushed to Parameter Store), a new password on every refresh; a selector with both
//! a Secret and a generator refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use external_harness::*;
use hush_api::external_secrets::SecretStore;
use hush_api::generators::Password;
use hush_api::push_secrets::PushSecret;
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

fn ready(ps: &PushSecret) -> Option<(String, String)> {
    let c = ps
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.message.clone().unwrap_or_default()))
}

async fn parameter(name: &str) -> Result<String> {
    let v = aws(
        "ssm",
        "AmazonSSM",
        "GetParameter",
        json!({"Name": name, "WithDecryption": true}),
    )
    .await?;
    Ok(v["Parameter"]["Value"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and moto"]
async fn push_secret_from_a_password_generator() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "ps-gen").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(
        &secrets,
        "awssm-secret",
        &[("access-key", "testing"), ("secret-access-key", "testing")],
    )
    .await?;
    apply(&ns.api::<SecretStore>(), json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "aws-parameter-store"},
        "spec": {"provider": {"aws": {"service": "ParameterStore", "region": "us-east-1",
            "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
                "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}}}}}}})).await?;
    apply(
        &ns.api::<Password>(),
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1",
        "kind": "Password", "metadata": {"name": "strong-password"},
        "spec": {"length": 128, "digits": 5, "symbols": 5, "symbolCharacters": "-_$@",
            "noUpper": false, "allowRepeat": true}}),
    )
    .await?;
    let key = format!("/{n}/myql/password");
    let pushes: Api<PushSecret> = ns.api();
    // The documented PushSecret, refreshed every 2 s instead of 6 h to see the rotation.
    apply(
        &pushes,
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "pushsecret-example"},
        "spec": {"refreshInterval": "2s",
            "secretStoreRefs": [{"name": "aws-parameter-store", "kind": "SecretStore"}],
            "selector": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1",
                "kind": "Password", "name": "strong-password"}},
            "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": key}}}]}}),
    )
    .await?;
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "both"},
        "spec": {"secretStoreRefs": [{"name": "aws-parameter-store", "kind": "SecretStore"}],
            "selector": {"secret": {"name": "awssm-secret"},
                "generatorRef": {"kind": "Password", "name": "strong-password"}},
            "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": format!("{key}-both")}}}]}})).await?;
    let ctl = Controller::start(&client, &n).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let first = loop {
        if let Ok(v) = parameter(&key).await
            && !v.is_empty()
        {
            break v;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "nothing pushed; Ready {:?}",
                ready(&pushes.get("pushsecret-example").await?)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(first.len() == 128, "{}", first.len());
    ensure!(first.chars().filter(char::is_ascii_digit).count() == 5);
    ensure!(first.chars().filter(|c| "-_$@".contains(*c)).count() == 5);
    let ps = pushes.get("pushsecret-example").await?;
    ensure!(
        ready(&ps).is_some_and(|(s, _)| s == "True"),
        "{:?}",
        ready(&ps)
    );
    // Rotated on the next refresh.
    let deadline = tokio::time::Instant::now() + WAIT;
    while parameter(&key).await? == first {
        ensure!(tokio::time::Instant::now() < deadline, "not rotated");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let both = pushes.get("both").await?;
    ensure!(
        ready(&both).is_some_and(|(s, m)| s == "False" && m.contains("not both")),
        "{:?}",
        ready(&both)
    );
    ensure!(!logs_contain(&first), "a generated password in the logs");
    ctl.stop().await
}
