//! `hush status` against the real API server (`scripts/kube-testenv.sh`): rows from the
//! controllers' conditions, keys from the key Secrets' certificates, the shards two replicas of
//! a sharded controller hold, the exit status, and a user whose RBAC hides part of it.
//!
//! Here rather than in tests/e2e because it runs the `hush` binary (`CARGO_BIN_EXE_hush`).
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush --test status_e2e --
//! --include-ignored`.

use std::path::Path;
use std::process::Output;

use anyhow::{Context as _, Result, ensure};
use hush_crypto::SystemEntropy;
use hush_crypto::rsa::RsaPrivateKey;
use hush_testkit::{TestNamespace, client, install_repo_crds};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Creates an object and sets its status through the status subresource.
async fn create_with_status(api: &Api<DynamicObject>, obj: Value, status: Value) -> Result<()> {
    let obj: DynamicObject = serde_json::from_value(obj)?;
    let name = obj.name_any();
    api.create(&PostParams::default(), &obj).await?;
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

fn hush_status(kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    Ok(std::process::Command::new(env!("CARGO_BIN_EXE_hush"))
        .arg("status")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("SEALED_SECRETS_CONTROLLER_NAMESPACE")
        .output()?)
}

/// A kubeconfig for `account` in `ns` with a fresh token, next to the admin kubeconfig's server.
async fn kubeconfig_for(client: &Client, ns: &str, account: &str, dir: &Path) -> Result<String> {
    let admin = std::env::var("KUBECONFIG").context("KUBECONFIG")?;
    let admin: Value = read_kubeconfig(Path::new(&admin))?;
    let cluster = admin["clusters"][0]["cluster"].clone();
    let request: TokenRequest = serde_json::from_value(json!({
        "spec": { "audiences": [], "expirationSeconds": 600 }
    }))?;
    let token = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(account, &PostParams::default(), &request)
        .await?
        .status
        .context("no token")?
        .token;
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{ "name": "c", "cluster": cluster }],
        "users": [{ "name": "u", "user": { "token": token } }],
        "contexts": [{ "name": "x", "context": { "cluster": "c", "user": "u" } }],
        "current-context": "x",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&config)?)?;
    Ok(path.to_string_lossy().into_owned())
}

/// Reads the admin kubeconfig (YAML) through kube's own parser, as JSON.
fn read_kubeconfig(path: &Path) -> Result<Value> {
    let config = kube::config::Kubeconfig::read_from(path)?;
    Ok(serde_json::to_value(config)?)
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn status_reports_rows_keys_exit_codes_and_rbac_gaps() -> Result<()> {
    let client = client().await?;
    install_repo_crds(&client).await?;
    let ns = TestNamespace::create(&client, "status").await?;
    let n = ns.name().to_owned();

    let sealed: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &n,
        &resource("bitnami.com", "v1alpha1", "SealedSecret", "sealedsecrets"),
    );
    let sealed_obj = |name: &str| {
        json!({
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": { "name": name, "namespace": n },
            "spec": { "encryptedData": { "k": "AgA=" } },
        })
    };
    create_with_status(
        &sealed,
        sealed_obj("good"),
        json!({ "conditions": [{ "type": "Synced", "status": "True",
            "lastUpdateTime": "2024-01-01T00:00:00Z" }] }),
    )
    .await?;
    create_with_status(
        &sealed,
        sealed_obj("bad"),
        json!({ "conditions": [{ "type": "Synced", "status": "False",
            "lastUpdateTime": "2024-01-01T00:00:00Z",
            "message": "no key could decrypt secret (k)" }] }),
    )
    .await?;
    let external: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &n,
        &resource(
            "external-secrets.io",
            "v1",
            "ExternalSecret",
            "externalsecrets",
        ),
    );
    create_with_status(
        &external,
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": { "name": "ext", "namespace": n },
            "spec": { "secretStoreRef": { "name": "vault", "kind": "SecretStore" },
                      "target": { "name": "ext" } },
        }),
        json!({ "refreshTime": "2024-01-01T00:00:10Z", "conditions": [{
            "type": "Ready", "status": "True", "reason": "SecretSynced",
            "message": "secret synced" }] }),
    )
    .await?;

    // A key Secret as the controller writes it (the test namespace is the key namespace).
    let key = RsaPrivateKey::generate(2048)?;
    let not_before = 1_700_000_000;
    let cert = hush_crypto::cert::self_signed(
        &key,
        "",
        not_before,
        not_before + 86400 * 3650,
        &mut SystemEntropy,
    )?;
    let key_pem = String::from_utf8(key.to_pkcs1_pem()?.expose().to_vec())?;
    let key_body = key_pem.lines().nth(2).unwrap_or_default().to_owned();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "sealed-secrets-keyabcde", "namespace": n,
            "labels": { "sealedsecrets.bitnami.com/sealed-secrets-key": "active" } },
        "type": "kubernetes.io/tls",
        "stringData": { "tls.crt": cert.to_pem(), "tls.key": key_pem },
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    // The managed Secret of "good" as a controller left it after two hand edits it put back
    // (tests/e2e/tests/drift_corrected.rs shows the controllers writing these).
    let managed: Secret = serde_json::from_value(json!({
        "metadata": { "name": "good", "namespace": n, "annotations": {
            "hush.dev/drift-corrected": "2",
            "hush.dev/drift-corrected-at": "2024-01-01T00:00:05Z" } },
        "stringData": { "k": "v" },
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &managed)
        .await?;

    // Two replicas of a sharded controller hold 4 shards through their Leases in the controller
    // namespace (the real keeper of `--shards`).
    let stop = hush_operator::Shutdown::new();
    let mut replicas = Vec::new();
    for id in ["pod-a", "pod-b"] {
        let shards =
            hush_operator::Shards::new(4, &mut prometheus_client::registry::Registry::default());
        let mut config =
            hush_operator::ShardConfig::new(4, n.clone(), "hush-controller".into(), id.into());
        config.retry_period = std::time::Duration::from_millis(300);
        tokio::spawn(shards.clone().keep(client.clone(), config, stop.clone()));
        replicas.push(shards);
    }
    let balanced = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while replicas.iter().any(|r| r.owned().len() != 2) {
        ensure!(
            tokio::time::Instant::now() < balanced,
            "the shards were not split 2/2"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let held: Vec<Vec<u32>> = replicas
        .iter()
        .map(|r| r.owned().into_iter().collect())
        .collect();

    let admin = std::env::var("KUBECONFIG")?;
    let out = hush_status(
        Path::new(&admin),
        &["-n", &n, "--controller-namespace", &n, "-o", "json"],
    )?;
    let stdout = String::from_utf8(out.stdout)?;
    ensure!(
        out.status.code() == Some(1),
        "exit {:?}: {stdout}",
        out.status
    );
    ensure!(!stdout.contains(&key_body), "the private key was printed");
    let report: Value = serde_json::from_str(&stdout)?;
    let sealed_rows = report["sealedSecrets"]
        .as_array()
        .context("sealedSecrets")?;
    ensure!(sealed_rows.len() == 2, "{report}");
    ensure!(sealed_rows[0]["name"] == "bad" && sealed_rows[0]["synced"] == "False");
    ensure!(sealed_rows[0]["reason"] == "no key could decrypt secret (k)");
    ensure!(sealed_rows[1]["name"] == "good" && sealed_rows[1]["synced"] == "True");
    ensure!(sealed_rows[1]["lastSync"] == "2024-01-01T00:00:00Z");
    ensure!(sealed_rows[0]["driftCorrected"] == 0, "{report}");
    ensure!(sealed_rows[1]["driftCorrected"] == 2, "{report}");
    ensure!(
        sealed_rows[1]["lastDriftCorrection"] == "2024-01-01T00:00:05Z",
        "{report}"
    );
    ensure!(
        report["externalSecrets"][0]["driftCorrected"] == 0,
        "{report}"
    );
    ensure!(
        report["externalSecrets"][0]["reason"] == "SecretSynced",
        "{report}"
    );
    ensure!(report["externalSecrets"][0]["lastSync"] == "2024-01-01T00:00:10Z");
    ensure!(
        report["keys"][0]["name"] == "sealed-secrets-keyabcde",
        "{report}"
    );
    ensure!(
        report["keys"][0]["notBefore"] == "2023-11-14T22:13:20Z",
        "{report}"
    );
    // NotBefore + 720h.
    ensure!(
        report["nextKeyRenewal"] == "2023-12-14T22:13:20Z",
        "{report}"
    );
    ensure!(report["unreadable"] == json!([]), "{report}");
    // Which replica holds which shard, as the replicas themselves see it.
    let by_replica = report["shardReplicas"]
        .as_array()
        .context("shardReplicas")?;
    ensure!(by_replica.len() == 2, "{report}");
    for (row, (id, shards)) in by_replica.iter().zip(["pod-a", "pod-b"].iter().zip(&held)) {
        ensure!(row["group"] == "hush-controller", "{report}");
        ensure!(
            row["replica"] == *id && row["shards"] == json!(shards),
            "{report}"
        );
    }
    ensure!(
        report["shards"].as_array().is_some_and(|s| s.len() == 4),
        "{report}"
    );

    let table = hush_status(Path::new(&admin), &["-n", &n, "--controller-namespace", &n])?;
    let text = String::from_utf8(table.stdout)?;
    ensure!(table.status.code() == Some(1), "{text}");
    ensure!(
        text.contains("SealedSecret") && text.contains("no key could decrypt"),
        "{text}"
    );
    ensure!(
        text.contains("Next key renewal: 2023-12-14T22:13:20Z (due now)"),
        "{text}"
    );
    ensure!(text.contains("SHARD GROUP"), "{text}");
    let pod_a = text
        .lines()
        .find(|l| l.contains("pod-a"))
        .context("no row for pod-a")?;
    let listed = held[0]
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    ensure!(pod_a.ends_with(&listed), "{text}");
    let header = text.lines().next().unwrap_or_default();
    let drift_at = header.find("DRIFT CORRECTED").context("no drift column")?;
    let good = text
        .lines()
        .find(|l| l.contains(" good "))
        .context("no row for good")?;
    ensure!(
        good.get(drift_at..).is_some_and(|c| c.starts_with("2 (")),
        "{text}"
    );

    // A user who may only list ExternalSecrets: the rest is named as unreadable, exit 2.
    let sa: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": "viewer" } }))?;
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await?;
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "es-viewer" },
        "rules": [{ "apiGroups": ["external-secrets.io"], "resources": ["externalsecrets"],
                    "verbs": ["list"] }],
    }))?;
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "es-viewer" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "es-viewer" },
        "subjects": [{ "kind": "ServiceAccount", "name": "viewer", "namespace": n }],
    }))?;
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    let dir = tempfile::tempdir()?;
    let viewer = kubeconfig_for(&client, &n, "viewer", dir.path()).await?;
    // RBAC caches settle within a moment on a fresh binding.
    let mut last = None;
    for _ in 0..20 {
        let out = hush_status(
            Path::new(&viewer),
            &["-n", &n, "--controller-namespace", &n],
        )?;
        if out.status.code() == Some(2) {
            last = Some(out);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        last = Some(out);
    }
    let out = last.context("no run")?;
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    ensure!(
        out.status.code() == Some(2),
        "exit {:?}: {stdout}{stderr}",
        out.status
    );
    ensure!(
        stdout.contains("ExternalSecret") && stdout.contains("ext"),
        "{stdout}"
    );
    ensure!(
        stderr.contains(&format!(
            "could not read sealedsecrets.bitnami.com in namespace {n}: forbidden by RBAC"
        )),
        "{stderr}"
    );
    ensure!(
        stderr.contains(&format!(
            "could not read key Secrets in namespace {n}: forbidden by RBAC"
        )),
        "{stderr}"
    );
    ensure!(
        stderr.contains(&format!(
            "could not read shard Leases in namespace {n}: forbidden by RBAC"
        )),
        "{stderr}"
    );
    // Without Secret metadata the drift count is unknown, not zero.
    ensure!(
        stderr.contains(&format!(
            "could not read Secret metadata in namespace {n} (drift corrected unknown): forbidden by RBAC"
        )),
        "{stderr}"
    );
    let ext = stdout
        .lines()
        .find(|l| l.contains(" ext "))
        .context("no row for ext")?;
    ensure!(ext.contains(" ? "), "{stdout}");
    stop.trigger();
    ns.delete().await
}
