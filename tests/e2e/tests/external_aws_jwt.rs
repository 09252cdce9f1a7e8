//! AWS `auth.jwt` against moto: the store's ServiceAccount (IRSA annotation
//! `eks.amazonaws.com/role-arn`) gets a TokenRequest token, exchanged through STS
//! AssumeRoleWithWebIdentity for the annotated role (moto's recorded sessions prove which role
//! and session name); a ServiceAccount without the annotation makes the store invalid with a
//! message naming it. Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use serde_json::{Value, json};

async fn assumed_roles() -> Result<Vec<Value>> {
    let text = reqwest::get(format!("{}/moto-api/data.json", env("HUSH_MOTO_URL")))
        .await?
        .text()
        .await?;
    let data: Value = serde_json::from_str(&text)?;
    Ok(data["sts"]["AssumedRole"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn aws_jwt_auth_assumes_the_service_accounts_role() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-jwt").await?;
    let n = ns.name().to_owned();
    let role = format!("arn:aws:iam::123456789012:role/eso-{n}");
    aws(
        "secretsmanager",
        "secretsmanager",
        "CreateSecret",
        json!({"Name": format!("{n}/db"), "SecretString": "jwt-value"}),
    )
    .await?;
    let sas: Api<ServiceAccount> = ns.api();
    apply(
        &sas,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "eso-aws", "annotations": {"eks.amazonaws.com/role-arn": role}}}),
    )
    .await?;
    apply(
        &sas,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "plain"}}),
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    for (store, sa) in [("aws-jwt", "eso-aws"), ("aws-plain", "plain")] {
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": store},
            "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
                "auth": {"jwt": {"serviceAccountRef": {"name": sa}}}}}}})).await?;
    }
    // As deployed: the chart's ServiceAccount and RBAC (reading the store's ServiceAccount
    // needs `get serviceaccounts`).
    let controller = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "db"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws-jwt"},
            "data": [{"secretKey": "v", "remoteRef": {"key": format!("{n}/db")}}]}})).await?;
    wait_ready(&es, "db", "True", "SecretSynced").await?;
    let secrets: Api<Secret> = ns.api();
    ensure!(value(&secrets.get("db").await?, "v") == "jwt-value");
    let sessions: Vec<Value> = assumed_roles()
        .await?
        .into_iter()
        .filter(|r| r["role_arn"] == role.as_str())
        .collect();
    ensure!(
        !sessions.is_empty()
            && sessions
                .iter()
                .all(|r| r["session_name"] == "external-secrets-provider-aws"),
        "AssumeRoleWithWebIdentity for {role}: {sessions:?}"
    );

    // Without the annotation the store is invalid, and the message says what is missing.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = stores.get("aws-plain").await?;
        let c = s
            .status
            .as_ref()
            .and_then(|st| st.conditions.first().cloned());
        if let Some(c) = &c
            && c.reason.as_deref() == Some("InvalidProviderConfig")
        {
            let msg = c.message.clone().unwrap_or_default();
            ensure!(
                msg.contains(&format!("service account {n}/plain"))
                    && msg.contains("eks.amazonaws.com/role-arn"),
                "{msg}"
            );
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store aws-plain: {:?}",
            s.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    controller.stop().await?;
    ns.delete().await?;
    Ok(())
}
