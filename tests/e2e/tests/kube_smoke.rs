//! Smoke tests of the e2e environment: the Kubernetes behaviour hush's controllers rely on,
//! checked against the real API server started by `scripts/kube-testenv.sh`.
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush-e2e -- --include-ignored`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use hush_testkit::{
    DEFAULT_CRD_TIMEOUT, TestNamespace, client, install_crd_file, install_repo_crds, read_crds,
    repo_crds_dir,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

const WIDGET_CRD: &str = "widgets.e2e.hush.test";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("e2e.hush.test", "v1alpha1", "Widget"),
        "widgets",
    )
}

/// Installs the test CRD (idempotent: every test may call it) and returns a Widget API in `ns`.
async fn widgets(client: &Client, ns: &TestNamespace) -> Result<Api<DynamicObject>> {
    install_crd_file(client, &fixture("widgets-crd.yaml"), DEFAULT_CRD_TIMEOUT).await?;
    Ok(Api::namespaced_with(
        client.clone(),
        ns.name(),
        &widget_resource(),
    ))
}

fn widget(name: &str, spec: Value) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "e2e.hush.test/v1alpha1",
        "kind": "Widget",
        "metadata": { "name": name },
        "spec": spec,
    }))?)
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn crd_becomes_established_and_prunes_unknown_fields() -> Result<()> {
    let client = client().await?;
    let crds = install_crd_file(&client, &fixture("widgets-crd.yaml"), DEFAULT_CRD_TIMEOUT).await?;
    ensure!(
        crds.len() == 1 && crds[0].name_any() == WIDGET_CRD,
        "unexpected CRDs: {crds:?}"
    );
    let established = crds[0]
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    ensure!(
        established,
        "CRD returned without Established=True: {:?}",
        crds[0].status
    );

    let ns = TestNamespace::create(&client, "prune").await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &widget_resource());
    let mut w = widget(
        "pruned",
        json!({ "size": 3, "color": "blue", "bogus": "dropped" }),
    )?;
    w.data["alsoBogus"] = json!(true);
    api.create(&PostParams::default(), &w)
        .await
        .context("creating a Widget")?;

    // Read back what was stored: known fields kept, unknown ones pruned by the structural schema.
    let stored = api.get("pruned").await?;
    ensure!(
        stored.data["spec"]["size"] == json!(3),
        "size lost: {:?}",
        stored.data
    );
    ensure!(
        stored.data["spec"]["color"] == json!("blue"),
        "color lost: {:?}",
        stored.data
    );
    ensure!(
        stored.data["spec"].get("bogus").is_none(),
        "spec.bogus not pruned: {:?}",
        stored.data
    );
    ensure!(
        stored.data.get("alsoBogus").is_none(),
        "alsoBogus not pruned: {:?}",
        stored.data
    );

    // Schema validation is enforced too: size has minimum 1.
    let invalid = widget("invalid", json!({ "size": 0 }))?;
    match api.create(&PostParams::default(), &invalid).await {
        Err(kube::Error::Api(status)) if status.code == 422 => {}
        other => bail!("expected 422 Invalid for size 0, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn secret_server_side_apply_tracks_field_owners() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "ssa").await?;
    let secrets: Api<Secret> = ns.api();

    let secret = |pairs: &[(&str, &str)]| -> Result<Secret> {
        let data: BTreeMap<String, ByteString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect();
        Ok(serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": "applied" },
            "type": "Opaque",
            "data": data,
        }))?)
    };
    let as_a = PatchParams::apply("hush-e2e-a");
    let as_b = PatchParams::apply("hush-e2e-b");

    secrets
        .patch(
            "applied",
            &as_a,
            &Patch::Apply(secret(&[("a", "1"), ("b", "1")])?),
        )
        .await
        .context("first apply")?;
    let got = secrets.get("applied").await?;
    let data = got.data.clone().unwrap_or_default();
    ensure!(
        data.get("a").map(|v| v.0.as_slice()) == Some(b"1".as_slice()),
        "{data:?}"
    );
    let managers: Vec<_> = got
        .managed_fields()
        .iter()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    ensure!(
        managers.contains(&("hush-e2e-a".to_owned(), "Apply".to_owned())),
        "managedFields without our apply: {managers:?}"
    );

    // Another manager changing a field owned by A conflicts unless it forces.
    match secrets
        .patch("applied", &as_b, &Patch::Apply(secret(&[("a", "2")])?))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        other => bail!("expected 409 Conflict for a non-forced apply, got {other:?}"),
    }
    secrets
        .patch(
            "applied",
            &as_b.clone().force(),
            &Patch::Apply(secret(&[("a", "2")])?),
        )
        .await
        .context("forced apply")?;

    // A drops b from its configuration: the field it alone owns is removed; a now belongs to B.
    let after = secrets
        .patch("applied", &as_a, &Patch::Apply(secret(&[])?))
        .await
        .context("apply without b")?;
    let data = after.data.unwrap_or_default();
    ensure!(
        data.get("a").map(|v| v.0.as_slice()) == Some(b"2".as_slice()),
        "{data:?}"
    );
    ensure!(
        !data.contains_key("b"),
        "b should be gone after A stopped applying it: {data:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn status_subresource_patch_arrives_on_watch() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "status").await?;
    let api = widgets(&client, &ns).await?;
    let created = api
        .create(
            &PostParams::default(),
            &widget("watched", json!({ "size": 1 }))?,
        )
        .await?;
    let generation = created
        .metadata
        .generation
        .context("no metadata.generation")?;

    let config = watcher::Config::default().fields("metadata.name=watched");
    let mut events = watcher(api.clone(), config).applied_objects().boxed();
    // The initial list delivers the object without status; after that the watch is live.
    let first = tokio::time::timeout(Duration::from_secs(30), events.try_next())
        .await
        .context("no initial watch event within 30 s")??
        .context("watch stream ended")?;
    ensure!(
        first.data.get("status").is_none(),
        "unexpected status: {:?}",
        first.data
    );

    let status = json!({ "status": { "phase": "Ready", "observedGeneration": generation } });
    let patched = api
        .patch_status("watched", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context("patching the status subresource")?;
    ensure!(
        patched.data["status"]["phase"] == json!("Ready"),
        "{:?}",
        patched.data
    );
    ensure!(
        patched.metadata.generation == Some(generation),
        "a status update must not bump metadata.generation"
    );

    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(obj) = events.try_next().await? {
            if obj.data["status"]["phase"] == json!("Ready") {
                return Ok(obj);
            }
        }
        bail!("watch stream ended before the status update arrived")
    })
    .await
    .context("status update not seen on the watch within 30 s")??;
    ensure!(
        seen.data["status"]["observedGeneration"] == json!(generation),
        "{:?}",
        seen.data
    );

    // Through the main resource, status is ignored (that is what the subresource is for).
    let main = api
        .patch(
            "watched",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Hacked" } })),
        )
        .await?;
    ensure!(
        main.data["status"]["phase"] == json!("Ready"),
        "{:?}",
        main.data
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn token_request_issues_a_verifiable_service_account_token() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "token").await?;
    let accounts: Api<ServiceAccount> = ns.api();
    let sa: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": "hush-e2e" } }))?;
    accounts.create(&PostParams::default(), &sa).await?;

    let request: TokenRequest = serde_json::from_value(json!({
        "spec": { "audiences": ["hush-e2e"], "expirationSeconds": 600 },
    }))?;
    let issued = accounts
        .create_token_request("hush-e2e", &PostParams::default(), &request)
        .await
        .context("TokenRequest")?;
    let token = issued
        .status
        .and_then(|s| s.token)
        .context("TokenRequest answered without a token")?;
    ensure!(token.split('.').count() == 3, "not a JWT: {token:?}");

    let review: TokenReview = serde_json::from_value(json!({
        "spec": { "token": token, "audiences": ["hush-e2e"] },
    }))?;
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .context("TokenReview")?;
    let status = reviewed.status.context("TokenReview without status")?;
    ensure!(
        status.authenticated == Some(true),
        "token rejected: {status:?}"
    );
    let username = status.user.and_then(|u| u.username).unwrap_or_default();
    ensure!(
        username == format!("system:serviceaccount:{}:hush-e2e", ns.name()),
        "unexpected user {username:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn repository_crds_are_accepted_and_established() -> Result<()> {
    // The generated CRDs in crds/ must pass the real API server's structural-schema validation.
    let client = client().await?;
    let installed = install_repo_crds(&client).await?;
    let mut expected = Vec::new();
    for entry in std::fs::read_dir(repo_crds_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            expected.extend(read_crds(&path)?.iter().map(|c| c.name_any()));
        }
    }
    let mut names: Vec<_> = installed.iter().map(|c| c.name_any()).collect();
    names.sort();
    expected.sort();
    ensure!(!names.is_empty(), "crds/ holds no CRD");
    ensure!(
        names == expected,
        "installed {names:?}, crds/ has {expected:?}"
    );
    Ok(())
}
