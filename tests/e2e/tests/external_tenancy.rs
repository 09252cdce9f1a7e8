//! Tenant isolation of the ExternalSecret controller (docs/security.md): whoever may write a
//! SecretStore or an ExternalSecret in one namespace cannot make the controller authenticate as
//! itself, take over a Secret another controller owns, or stall the other ExternalSecrets. Real
//! kube-apiserver and OpenBao; the "servers" a hostile store names are loopback listeners that
//! record what reaches them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A loopback "Vault" that records every request (head and body) and refuses it.
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = Vec::new();
                    // One read of whatever arrives within a second is enough for a login.
                    while let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await
                    {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    log.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&got).into_owned());
                    let body = r#"{"errors":["permission denied"]}"#;
                    let answer = format!(
                        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        Ok(Self { url, seen })
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The Ready condition (status, reason, message) of a store.
fn store_ready(
    status: Option<&hush_api::external_secrets::SecretStoreStatus>,
) -> Option<(String, String, String)> {
    let c = status?.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

async fn wait_store_not_ready(stores: &Api<SecretStore>, name: &str, needle: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = stores.get(name).await?;
        let ready = store_ready(s.status.as_ref());
        if let Some((status, reason, message)) = &ready
            && status == "False"
            && reason == "InvalidProviderConfig"
            && message.contains(needle)
        {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store {name}: Ready {ready:?}, want False/InvalidProviderConfig with {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn secret_stores_cannot_borrow_the_controllers_identity() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-identity").await?;
    let n = ns.name().to_owned();
    // The controller's "own" ServiceAccount token, and a server for each kind of store.
    let own_token = canary("own-token");
    let token_file = std::env::temp_dir().join(format!("{n}-controller-token"));
    std::fs::write(&token_file, &own_token)?;
    let tenant_server = Recorder::start().await?;
    let admin_server = Recorder::start().await?;

    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "own-token"},
        "spec": {"controller": n, "provider": {"vault": {"server": tenant_server.url, "path": "secret",
            "auth": {"kubernetes": {"role": "any"}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "aws-default"},
        "spec": {"controller": n, "provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
            "role": "arn:aws:iam::000000000000:role/someone-elses"}}}})).await?;
    let cluster_stores: Api<ClusterSecretStore> = Api::all(client.clone());
    let cluster_store = format!("{n}-own-token");
    apply(
        &cluster_stores,
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
        "metadata": {"name": cluster_store},
        "spec": {"controller": n, "conditions": [{"namespaces": [n]}],
            "provider": {"vault": {"server": admin_server.url, "path": "secret",
                "auth": {"kubernetes": {"role": "any"}}}}}}),
    )
    .await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "borrowed"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "own-token", "kind": "SecretStore"},
            "data": [{"secretKey": "x", "remoteRef": {"key": "anything"}}]}})).await?;

    let path = token_file.clone();
    let ctl = Controller::start_configured(&client, &n, &n, move |c| {
        c.controller_token_file = path;
    })
    .await?;
    let result = async {
        wait_store_not_ready(
            &stores,
            "own-token",
            "auth.kubernetes: a SecretStore may not authenticate as the controller itself",
        )
        .await?;
        wait_store_not_ready(
            &stores,
            "aws-default",
            "auth: a SecretStore may not authenticate",
        )
        .await?;
        wait_ready(&es, "borrowed", "False", "SecretSyncedError").await?;
        // A ClusterSecretStore is a cluster admin's: it may log in as the controller, and that
        // login reaches its server (so the silence of the tenant's server below is no accident).
        let deadline = tokio::time::Instant::now() + WAIT;
        while !admin_server
            .requests()
            .iter()
            .any(|r| r.contains(&own_token))
        {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the ClusterSecretStore's login never reached its server"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ensure!(
            tenant_server.requests().is_empty(),
            "the SecretStore's server was called: {:?}",
            tenant_server.requests()
        );
        // The token is in no status, event or log.
        let events: Api<Event> = ns.api();
        for e in events.list(&ListParams::default()).await? {
            ensure!(
                !serde_json::to_string(&e)?.contains(&own_token),
                "token in an event"
            );
        }
        ensure!(!logs_contain(&own_token), "token in the logs");
        Ok(())
    }
    .await;
    ctl.stop().await?;
    cluster_stores
        .delete(&cluster_store, &Default::default())
        .await?;
    let _ = std::fs::remove_file(&token_file);
    result?;
    ns.delete().await
}

/// A Secret in `ns` controlled by `owner` (apiVersion, kind, name, uid).
async fn owned_secret(
    secrets: &Api<Secret>,
    name: &str,
    owner: serde_json::Value,
) -> Result<Secret> {
    apply(
        secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "ownerReferences": [owner]},
        "data": {"theirs": "b3JpZ2luYWw="}}),
    )
    .await
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn owner_policy_never_takes_over_another_controllers_secret() -> Result<()> {
    let client = setup().await?;
    hush_testkit::install_repo_crds(&client).await?;
    let ns = TestNamespace::create(&client, "es-owner").await?;
    let n = ns.name().to_owned();
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": "from-vault"}})),
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"controller": n, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    // Real owners, so that nothing about them is made up: a SealedSecret and a ConfigMap.
    let sealed: Api<hush_api::sealed_secret::SealedSecret> = ns.api();
    let owner = apply(
        &sealed,
        json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db"}, "spec": {"encryptedData": {}}}),
    )
    .await?;
    let config_maps: Api<ConfigMap> = ns.api();
    let cm = apply(
        &config_maps,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "issuer"}}),
    )
    .await?;
    let by_sealed = owned_secret(
        &secrets,
        "db",
        json!({"apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret", "name": "db", "uid": owner.uid(), "controller": true}),
    )
    .await?;
    let by_cm = owned_secret(
        &secrets,
        "tls",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "name": "issuer", "uid": cm.uid(), "controller": true}),
    )
    .await?;

    let es: Api<ExternalSecret> = ns.api();
    let sync = |name: &str, target: &str, policy: &str| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                "target": {"name": target, "creationPolicy": policy},
                "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})
    };
    apply(&es, sync("takes-db", "db", "Owner")).await?;
    apply(&es, sync("takes-tls", "tls", "Owner")).await?;
    apply(&es, sync("merges-db", "db", "Merge")).await?;
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let result = async {
        for (name, owner) in [
            ("takes-db", "SealedSecret.bitnami.com \"db\""),
            ("takes-tls", "ConfigMap \"issuer\""),
        ] {
            let got = wait_ready(&es, name, "False", "SecretSyncedError").await?;
            let message = got
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            ensure!(
                message.contains(&format!("already controlled by {owner}")),
                "{name}: {message}"
            );
        }
        // Merge never becomes the controller: it writes its key and leaves the owner alone.
        wait_ready(&es, "merges-db", "True", "SecretSynced").await?;
        let db = secrets.get("db").await?;
        ensure!(value(&db, "password") == "from-vault" && value(&db, "theirs") == "original");
        ensure!(
            db.owner_references() == by_sealed.owner_references(),
            "db's owner changed: {:?}",
            db.owner_references()
        );
        let tls = secrets.get("tls").await?;
        ensure!(
            tls.data == by_cm.data && tls.owner_references() == by_cm.owner_references(),
            "tls was written"
        );
        // The refusal is an event on the ExternalSecret too.
        let events: Api<Event> = ns.api();
        let found = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("takes-tls")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("ConfigMap \"issuer\""))
            });
        ensure!(found, "no event names the owner");
        Ok(())
    }
    .await;
    ctl.stop().await?;
    result?;
    ns.delete().await
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn a_template_bomb_fails_only_its_own_external_secret() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-bomb").await?;
    let n = ns.name().to_owned();
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": "fine"}})),
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"controller": n, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let es: Api<ExternalSecret> = ns.api();
    let with_template = |name: &str, template: &str| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                "target": {"template": {"engineVersion": "v2", "data": {"out": template}}},
                "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})
    };
    let bombs = [
        (
            "endless",
            "{{ range 9223372036854775807 }}{{ end }}",
            "step budget",
        ),
        (
            "doubling",
            &format!(
                "{{{{ $s := .password }}}}{}{{{{ $s }}}}",
                "{{ $s = print $s $s }}".repeat(40)
            ),
            "output bytes budget",
        ),
        (
            "deep",
            &format!(
                "{}x{}",
                "{{ if true }}".repeat(5000),
                "{{ end }}".repeat(5000)
            ),
            "nesting depth budget",
        ),
    ];
    for (name, template, _) in &bombs {
        apply(&es, with_template(name, template)).await?;
    }
    for i in 0..12 {
        apply(&es, with_template(&format!("ok-{i}"), "pw={{ .password }}")).await?;
    }
    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let started = std::time::Instant::now();
    let result = async {
        for i in 0..12 {
            wait_ready(&es, &format!("ok-{i}"), "True", "SecretSynced").await?;
            ensure!(value(&secrets.get(&format!("ok-{i}")).await?, "out") == "pw=fine");
        }
        for (name, _, budget) in &bombs {
            let got = wait_ready(&es, name, "False", "SecretSyncedError").await?;
            let message = got
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            ensure!(message.contains(budget), "{name}: {message}");
            ensure!(
                secrets.get_opt(name).await?.is_none(),
                "{name}: a Secret was written"
            );
        }
        eprintln!(
            "12 ExternalSecrets synced and 3 bombs refused in {:?}",
            started.elapsed()
        );
        Ok(())
    }
    .await;
    ctl.stop().await?;
    result?;
    ns.delete().await
}
