//! ESO's documented Vault auth methods not covered elsewhere, with ESO's manifests unchanged
//! apart from names: `userPass` (password in a Secret) and `kubernetes` (a TokenRequest token of
//! the `serviceAccountRef`, reviewed by OpenBao against the test API server with a reviewer
//! token bound to `system:auth-delegator`); ExternalSecrets applied before their SecretStore /
//! ClusterSecretStore sync when it appears. Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use anyhow::{Context as _, Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn service_account(ns: &TestNamespace, name: &str) -> Result<()> {
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn user_pass_and_kubernetes_auth_as_eso_documents_them() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-auth").await?;
    let n = ns.name().to_owned();
    let password = canary("userpass");
    let db = canary("k8s");
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": password, "db": db}})),
    )
    .await?;
    bao("POST", &format!("sys/policies/acl/{n}"), Some(json!({"policy": format!("path \"secret/data/{n}/*\" {{ capabilities = [\"read\"] }}")}))).await?;

    // userpass: a user whose password the store reads from a Secret.
    let user_password = canary("login");
    bao(
        "POST",
        &format!("sys/auth/userpass-{n}"),
        Some(json!({"type": "userpass"})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/userpass-{n}/users/app"),
        Some(json!({"password": user_password, "token_policies": [n], "token_ttl": "1h"})),
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(&secrets, "vault-userpass", &[("password", &user_password)]).await?;

    // kubernetes: OpenBao reviews the controller's TokenRequest tokens through the test API
    // server, with a reviewer allowed to create TokenReviews.
    service_account(&ns, "vault-reviewer").await?;
    service_account(&ns, "app").await?;
    let binding = format!("{n}-vault-reviewer");
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
                "subjects": [{"kind": "ServiceAccount", "name": "vault-reviewer", "namespace": n}],
            }))?,
        )
        .await?;
    let reviewer = ns
        .api::<ServiceAccount>()
        .create_token_request(
            "vault-reviewer",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            },
        )
        .await?
        .status
        .context("no TokenRequest status")?
        .token;
    let host = kube::Config::infer().await?.cluster_url.to_string();
    bao(
        "POST",
        &format!("sys/auth/kubernetes-{n}"),
        Some(json!({"type": "kubernetes"})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/kubernetes-{n}/config"),
        Some(json!({
            "kubernetes_host": host.trim_end_matches('/'),
            "kubernetes_ca_cert": kte_file("pki/ca.crt")?,
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": true,
        })),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/kubernetes-{n}/role/demo"),
        Some(json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": [n],
            "token_policies": [n],
            "token_ttl": "1h",
        })),
    )
    .await?;

    let stores: Api<SecretStore> = ns.api();
    let server = env("HUSH_VAULT_ADDR");
    // ESO's docs/provider/hashicorp-vault.md examples.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-userpass"},
        "spec": {"controller": n, "provider": {"vault": {"server": server, "path": "secret", "version": "v2",
            "auth": {"userPass": {"path": format!("userpass-{n}"), "username": "app",
                "secretRef": {"name": "vault-userpass", "key": "password"}}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-kubernetes"},
        "spec": {"controller": n, "provider": {"vault": {"server": server, "path": "secret", "version": "v2",
            "auth": {"kubernetes": {"mountPath": format!("kubernetes-{n}"), "role": "demo",
                "serviceAccountRef": {"name": "app"}}}}}}})).await?;
    // Its own class: the ClusterSecretStore below is left alone by other tests' controllers.
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "by-userpass"},
        "spec": {"refreshInterval": "15s", "secretStoreRef": {"name": "vault-userpass", "kind": "SecretStore"},
            "target": {"name": "by-userpass", "creationPolicy": "Owner"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "by-kubernetes"},
        "spec": {"refreshInterval": "15s", "secretStoreRef": {"name": "vault-kubernetes", "kind": "SecretStore"},
            "target": {"name": "by-kubernetes", "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": format!("{n}/app")}}]}})).await?;
    let result = async {
        wait_ready(&es, "by-userpass", "True", "SecretSynced").await?;
        wait_ready(&es, "by-kubernetes", "True", "SecretSynced").await?;
        ensure!(value(&secrets.get("by-userpass").await?, "password") == password);
        let k = secrets.get("by-kubernetes").await?;
        ensure!(value(&k, "db") == db && value(&k, "password") == password);
        // Both stores validated with their own login.
        for s in ["vault-userpass", "vault-kubernetes"] {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let store = stores.get(s).await?;
                let ready = store
                    .status
                    .as_ref()
                    .and_then(|st| st.conditions.iter().find(|c| c.type_ == "Ready"))
                    .map(|c| (c.status.clone(), c.reason.clone()));
                if ready == Some(("True".into(), Some("Valid".into()))) {
                    break;
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "store {s}: Ready {ready:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        // ExternalSecrets applied before their stores (as `kubectl apply -f dir/` may): not
        // ready, then synced as soon as the store appears, well before their retry (60 s).
        let cluster_store = format!("{n}-late");
        for (name, kind, store) in [
            ("late", "SecretStore", "vault-late".to_owned()),
            ("late-cluster", "ClusterSecretStore", cluster_store.clone()),
        ] {
            apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
                "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": store, "kind": kind},
                    "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
            wait_ready(&es, name, "False", "SecretSyncedError").await?;
        }
        let userpass = |namespace: Option<&str>| {
            json!({"userPass": {"path": format!("userpass-{n}"), "username": "app",
                "secretRef": {"name": "vault-userpass", "key": "password", "namespace": namespace}}})
        };
        let appeared = tokio::time::Instant::now();
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-late"},
            "spec": {"controller": n, "provider": {"vault": {"server": server, "path": "secret", "version": "v2",
                "auth": userpass(None)}}}})).await?;
        let cluster_stores: Api<hush_api::external_secrets::ClusterSecretStore> =
            Api::all(client.clone());
        apply(&cluster_stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": cluster_store},
            "spec": {"controller": n, "conditions": [{"namespaces": [n]}],
                "provider": {"vault": {"server": server, "path": "secret", "version": "v2",
                    "auth": userpass(Some(&n))}}}})).await?;
        for name in ["late", "late-cluster"] {
            wait_ready(&es, name, "True", "SecretSynced").await?;
            ensure!(value(&secrets.get(name).await?, "password") == password);
        }
        ensure!(
            appeared.elapsed() < std::time::Duration::from_secs(30),
            "ExternalSecrets waited {:?} for their new stores",
            appeared.elapsed()
        );
        cluster_stores
            .delete(&cluster_store, &DeleteParams::default())
            .await?;
        for c in [&password, &db, &user_password] {
            assert_no_canary(&client, &ns, &es, c).await?;
        }
        Ok(())
    }
    .await;
    ctl.stop().await?;
    bindings.delete(&binding, &DeleteParams::default()).await?;
    result
}
