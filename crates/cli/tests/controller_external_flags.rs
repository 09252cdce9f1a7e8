//! `hush controller --controllers external` flags through the real binary on the real API server
//! (`scripts/kube-testenv.sh`), ESO's fake provider as the store: `--namespace` (objects of
//! another namespace stay untouched: no status, no Secret) and
//! `--enable-cluster-store-reconciler=false` (a ClusterSecretStore is still used, its status is
//! never written, while SecretStores are still validated).
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush --test
//! controller_external_flags -- --include-ignored`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use hush_testkit::process::free_port;
use hush_testkit::{TestNamespace, client, install_repo_crds};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

/// The controller process; killed when dropped.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("external-secrets.io", "v1", kind))
}

async fn create(api: &Api<DynamicObject>, object: Value) -> Result<()> {
    let object: DynamicObject = serde_json::from_value(object)?;
    api.create(&PostParams::default(), &object).await?;
    Ok(())
}

/// A SecretStore (or ClusterSecretStore) of ESO's fake provider with key `k` = `value`, served
/// by controller class `class` only.
fn fake_store(kind: &str, name: &str, class: &str, value: &str) -> Value {
    json!({"apiVersion": "external-secrets.io/v1", "kind": kind, "metadata": {"name": name},
        "spec": {"controller": class, "provider": {"fake": {"data": [{"key": "k", "value": value}]}}}})
}

fn external_secret(name: &str, store_kind: &str, store: &str) -> Value {
    json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": store, "kind": store_kind},
            "target": {"name": name},
            "data": [{"secretKey": "v", "remoteRef": {"key": "k"}}]}})
}

/// The Ready condition's status of `object`, if it has one.
fn ready(object: &DynamicObject) -> Option<String> {
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .map(str::to_owned)
}

async fn wait_ready(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let object = api.get(name).await?;
        if ready(&object).as_deref() == Some("True") {
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{name} not Ready: {:?}",
            object.data["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn namespace_and_cluster_store_reconciler_flags_through_the_cli() -> Result<()> {
    let client = client().await?;
    install_repo_crds(&client).await?;
    let watched = TestNamespace::create(&client, "ext-flags").await?;
    let other = TestNamespace::create(&client, "ext-flags-other").await?;
    let (w, o) = (watched.name().to_owned(), other.name().to_owned());
    // A class of this test's own, so other tests' stores are not this controller's.
    let class = w.clone();
    let css_name = format!("{w}-css");
    let css: Api<DynamicObject> = Api::all_with(client.clone(), &resource("ClusterSecretStore"));
    create(
        &css,
        fake_store("ClusterSecretStore", &css_name, &class, "from-cluster"),
    )
    .await?;
    for ns in [&w, &o] {
        let stores: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &resource("SecretStore"));
        create(&stores, fake_store("SecretStore", "fake", &class, ns)).await?;
        let es: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &resource("ExternalSecret"));
        create(&es, external_secret("own", "SecretStore", "fake")).await?;
        create(
            &es,
            external_secret("shared", "ClusterSecretStore", &css_name),
        )
        .await?;
    }

    let metrics = free_port()?;
    let child = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args([
            "controller",
            "--controllers",
            "external",
            "--leader-elect=false",
        ])
        .args(["--namespace", &w, "--controller-class", &class])
        .args(["--enable-cluster-store-reconciler=false"])
        .args(["--listen-metrics-addr", &format!("127.0.0.1:{metrics}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting hush controller")?;
    let controller = Controller(child);

    // The watched namespace: both ExternalSecrets sync, through the SecretStore and through the
    // ClusterSecretStore (used although its reconciler is off); its SecretStore is validated.
    let es: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &w, &resource("ExternalSecret"));
    wait_ready(&es, "own").await?;
    wait_ready(&es, "shared").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &w);
    let value = |s: &Secret| {
        s.data
            .as_ref()
            .and_then(|d| d.get("v"))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    ensure!(value(&secrets.get("own").await?).as_deref() == Some(w.as_str()));
    ensure!(value(&secrets.get("shared").await?).as_deref() == Some("from-cluster"));
    let stores: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &w, &resource("SecretStore"));
    wait_ready(&stores, "fake").await?;

    // Long enough for anything the controller would do elsewhere (it synced the watched
    // namespace in less).
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        css.get(&css_name).await?.data["status"].is_null(),
        "--enable-cluster-store-reconciler=false, yet the ClusterSecretStore has a status"
    );
    let other_es: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &o, &resource("ExternalSecret"));
    for name in ["own", "shared"] {
        let object = other_es.get(name).await?;
        ensure!(
            object.data["status"].is_null(),
            "{o}/{name} outside --namespace got a status: {:?}",
            object.data["status"]
        );
        ensure!(
            object.metadata.finalizers.is_none(),
            "{o}/{name} outside --namespace got finalizers"
        );
    }
    let other_secrets: Api<Secret> = Api::namespaced(client.clone(), &o);
    for name in ["own", "shared"] {
        ensure!(
            other_secrets.get_opt(name).await?.is_none(),
            "Secret {o}/{name} written outside --namespace"
        );
    }
    let other_stores: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &o, &resource("SecretStore"));
    ensure!(
        other_stores.get("fake").await?.data["status"].is_null(),
        "SecretStore outside --namespace validated"
    );

    drop(controller);
    css.delete(&css_name, &DeleteParams::default()).await?;
    Ok(())
}
