//! Take-over both ways with the real ESO (v0.16.2) on one API server (`HUSH_ESO_KUBECONFIG`),
//! as a team migrates (docs/migrate-from-eso.md): the stores' `spec.controller` moves from one
//! controller's class to the other's while the first one is stopped.
//!
//! - ESO → hush: hush adopts what ESO wrote without reading Vault (OpenBao's audit log) and
//!   without writing a Secret or an ExternalSecret (their resourceVersions stay).
//! - hush → ESO: ESO adopts what hush wrote the same way (so a team can switch back).
//!
//! Each direction then proves the new controller is live: a Secret edited by hand is repaired
//! (one read, one write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use eso_peer::{Eso, eso_client, eso_kubeconfig, metric_sum, suffix, vault_put, vault_requests};
use external_harness::{Controller, env, vault_audit_len};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

const ES: &str = "external-secrets.io/v1";

/// The ExternalSecrets of the scenario: the common shapes of ESO's docs.
fn manifests(ns: &str, class: &str, role_id: &str) -> Vec<Value> {
    let k = format!("{ns}/app");
    let es = |name: &str, spec: Value| json!({"apiVersion": ES, "kind": "ExternalSecret", "metadata": {"name": name, "namespace": ns}, "spec": spec});
    let store = json!({"name": "vault-backend", "kind": "SecretStore"});
    let data = json!([{"secretKey": "password", "remoteRef": {"key": k, "property": "password"}}]);
    vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token", "namespace": ns},
            "stringData": {"token": env("HUSH_VAULT_TOKEN")}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "existing", "namespace": ns},
            "stringData": {"foreign": "kept"}}),
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "vault-backend", "namespace": ns},
            "spec": {"controller": class, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"),
                "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}}),
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "vault-approle", "namespace": ns},
            "spec": {"controller": class, "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"),
                "path": "secret", "version": "v2",
                "auth": {"appRole": {"path": format!("approle-{ns}"), "roleId": role_id,
                    "secretRef": {"name": "approle", "key": "secret-id"}}}}}}}),
        es(
            "plain",
            json!({"refreshInterval": "1h", "secretStoreRef": store, "data": data}),
        ),
        es(
            "labelled",
            json!({"refreshInterval": "1h", "secretStoreRef": store, "data": data}),
        ),
        es(
            "extract",
            json!({"refreshInterval": "1h", "secretStoreRef": store,
            "dataFrom": [{"extract": {"key": k}}]}),
        ),
        es(
            "templated",
            json!({"refreshInterval": "1h", "secretStoreRef": store,
            "target": {"name": "templated-secret", "template": {"engineVersion": "v2", "type": "example.com/t",
                "metadata": {"labels": {"app": "x"}, "annotations": {"a": "{{ .password | upper }}"}},
                "data": {"dsn": "postgres://admin:{{ .password }}@db"}}},
            "data": data}),
        ),
        es(
            "orphan",
            json!({"refreshInterval": "1h", "secretStoreRef": store,
            "target": {"creationPolicy": "Orphan"}, "data": data}),
        ),
        es(
            "merge",
            json!({"refreshInterval": "1h", "secretStoreRef": store,
            "target": {"name": "existing", "creationPolicy": "Merge"}, "data": data}),
        ),
        es(
            "approle",
            json!({"refreshInterval": "1h",
            "secretStoreRef": {"name": "vault-approle", "kind": "SecretStore"}, "data": data}),
        ),
    ]
}

/// Vault data, an AppRole (with its secret id in the namespace) and the namespace on ESO's
/// server; returns the AppRole's role id.
async fn prepare(client: &Client, ns: &str) -> Result<String> {
    vault_put(
        &format!("{ns}/app"),
        json!({"password": "from-vault", "user": "admin"}),
    )
    .await?;
    let mount = format!("approle-{ns}");
    let (role_id, secret_id) = external_harness::vault_approle(&mount, ns).await?;
    let namespace: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {hush_testkit::TEST_NAMESPACE_LABEL: "true"}}}))?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "approle", "namespace": ns},
        "stringData": {"secret-id": secret_id}}))?;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(role_id)
}

fn dynamic(client: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version, plural) = match kind {
        "Secret" => ("", "v1", "secrets"),
        "ExternalSecret" => ("external-secrets.io", "v1", "externalsecrets"),
        _ => ("external-secrets.io", "v1", "secretstores"),
    };
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

async fn create_all(client: &Client, ns: &str, objects: &[Value]) -> Result<()> {
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        let obj: DynamicObject = serde_json::from_value(o.clone())?;
        dynamic(client, ns, kind)
            .create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating {kind} {}", obj.name_any()))?;
    }
    // One ExternalSecret carries labels and annotations (copied to its Secret, hashed into
    // syncedResourceVersion).
    dynamic(client, ns, "ExternalSecret")
        .patch("labelled", &PatchParams::default(), &Patch::Merge(json!({"metadata": {
            "labels": {"team": "payments", "tier": "1"}, "annotations": {"owner": "ops@example.com"}}})))
        .await?;
    Ok(())
}

/// Waits until every ExternalSecret is `Ready=True` (reason `SecretSynced`).
async fn wait_synced(client: &Client, ns: &str, log: &dyn Fn() -> String) -> Result<()> {
    let api = dynamic(client, ns, "ExternalSecret");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let items = api.list(&ListParams::default()).await?.items;
        let pending: Vec<String> = items
            .iter()
            .filter(|e| {
                !e.data["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["type"] == "Ready"
                            && c["status"] == "True"
                            && c["reason"] == "SecretSynced"
                    })
                })
            })
            .map(|e| format!("{}: {}", e.name_any(), e.data["status"]))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "not synced after 60 s: {pending:?}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// resourceVersion (and for ExternalSecrets the status) of every Secret and ExternalSecret.
async fn versions(client: &Client, ns: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kind in ["Secret", "ExternalSecret"] {
        for o in dynamic(client, ns, kind)
            .list(&ListParams::default())
            .await?
            .items
        {
            out.insert(
                format!("{kind}/{}", o.name_any()),
                o.resource_version().unwrap_or_default(),
            );
        }
    }
    Ok(out)
}

async fn move_stores(client: &Client, ns: &str, class: &str) -> Result<()> {
    for store in ["vault-backend", "vault-approle"] {
        dynamic(client, ns, "SecretStore")
            .patch(
                store,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"controller": class}})),
            )
            .await?;
    }
    Ok(())
}

/// Waits until the controller whose metrics are at `url` reconciled every ExternalSecret of the
/// scenario at least once (controller-runtime's counter, which hush also exports under ESO's
/// controller name), and 2 s more.
async fn wait_reconciled(who: &str, url: &str, log: &dyn Fn() -> String) -> Result<()> {
    let want = 7.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = reqwest::get(url).await?.text().await?;
        let n = metric_sum(
            &text,
            "controller_runtime_reconcile_total",
            &["controller=\"externalsecret\""],
        );
        if n >= want {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{who} reconciled {n} ExternalSecrets, want {want}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// After a take-over: nothing was read from Vault and nothing written; then a hand edit of one
/// Secret is repaired (the new controller is live and checks the hash).
async fn assert_adopted(
    client: &Client,
    ns: &str,
    audit_from: u64,
    before: &BTreeMap<String, String>,
    who: &str,
) -> Result<()> {
    let after = versions(client, ns).await?;
    let changed: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let reads = vault_requests(audit_from, &format!("secret/data/{ns}/"))?;
    println!(
        "{who}: Vault requests of the take-over besides reads (store validation): {:?}",
        vault_requests(audit_from, ns)?
            .into_iter()
            .filter(|p| !p.starts_with("secret/"))
            .collect::<Vec<_>>()
    );
    ensure!(
        changed.is_empty() && reads.is_empty(),
        "{who} did not adopt without work: objects written {changed:?}, Vault requests {reads:?}"
    );
    // Control: a hand edit is repaired from Vault.
    let secrets = dynamic(client, ns, "Secret");
    secrets
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"password": "dGFtcGVyZWQ="}})),
        )
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = secrets.get("plain").await?;
        if s.data["data"]["password"] == "ZnJvbS12YXVsdA==" {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{who} did not repair a hand edit"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(
        !vault_requests(audit_from, &format!("secret/data/{ns}/app"))?.is_empty(),
        "{who} repaired the Secret without reading Vault?"
    );
    Ok(())
}

/// The last lines hush logged at warn or error.
fn hush_log() -> String {
    let text = String::from_utf8_lossy(&external_harness::logs().text()).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn eso_peer_hush_adopts_what_eso_wrote_without_a_read_or_a_write() -> Result<()> {
    let client = eso_client().await?;
    let ns = format!("eso-to-hush-{}", suffix());
    let (eso_class, hush_class) = (format!("eso-{}", suffix()), format!("hush-{}", suffix()));
    let role_id = prepare(&client, &ns).await?;
    // hush's CRDs are ESO's on this server; hush reads them as they are.
    let eso = Eso::start(
        &eso_kubeconfig()?,
        &eso_class,
        &["--enable-cluster-external-secret-reconciler=false".into()],
    )
    .await?;
    create_all(&client, &ns, &manifests(&ns, &eso_class, &role_id)).await?;
    wait_synced(&client, &ns, &|| eso.tail(30)).await?;
    eso.stop().await?;

    move_stores(&client, &ns, &hush_class).await?;
    let before = versions(&client, &ns).await?;
    let audit = vault_audit_len()?;
    let hush = Controller::start_on(&client, &eso_kubeconfig()?, &ns, &hush_class).await?;
    // Every ExternalSecret reconciled at least once (controller-runtime's counter, as ESO names it).
    let url = format!("http://{}/metrics", hush.metrics_addr);
    wait_reconciled("hush", &url, &hush_log).await?;
    assert_adopted(&client, &ns, audit, &before, "hush").await?;
    hush.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn eso_peer_eso_adopts_what_hush_wrote_without_a_read_or_a_write() -> Result<()> {
    let client = eso_client().await?;
    let ns = format!("hush-to-eso-{}", suffix());
    let (eso_class, hush_class) = (format!("eso-{}", suffix()), format!("hush-{}", suffix()));
    let role_id = prepare(&client, &ns).await?;
    let hush = Controller::start_on(&client, &eso_kubeconfig()?, &ns, &hush_class).await?;
    create_all(&client, &ns, &manifests(&ns, &hush_class, &role_id)).await?;
    wait_synced(&client, &ns, &hush_log).await?;
    hush.stop().await?;

    move_stores(&client, &ns, &eso_class).await?;
    let before = versions(&client, &ns).await?;
    let audit = vault_audit_len()?;
    let eso = Eso::start(
        &eso_kubeconfig()?,
        &eso_class,
        &["--enable-cluster-external-secret-reconciler=false".into()],
    )
    .await?;
    let url = format!("http://{}/metrics", eso.metrics);
    wait_reconciled("ESO", &url, &|| eso.tail(30)).await?;
    let adopted = assert_adopted(&client, &ns, audit, &before, "ESO").await;
    let log = eso.tail(40);
    eso.stop().await?;
    adopted.map_err(|e| anyhow::anyhow!("{e:#}\n--- ESO log ---\n{log}"))
}
