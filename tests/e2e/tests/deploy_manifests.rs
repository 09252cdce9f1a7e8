//! The rendered Helm chart (`deploy/manifests/`, written by `scripts/render-manifests.sh`) against
//! the real API server: every object passes a strict server-side dry-run apply, and the
//! controller's Pod template is admitted under the `restricted` Pod Security level.
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush-e2e --test deploy_manifests
//! -- --include-ignored`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use hush_testkit::chart::{ChartProfile, controller_client};
use hush_testkit::{TestNamespace, client};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt as _};
use serde::Deserialize as _;
use serde_json::{Value, json};

const MANAGER: &str = "hush-e2e-deploy";

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/manifests")
}

/// Every non-empty YAML document of a file, as JSON values.
fn documents(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let value = Value::deserialize(document)
            .with_context(|| format!("{} document {index}", path.display()))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

fn all_manifests() -> Result<Vec<(String, Value)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests_dir())
        .context("reading deploy/manifests")?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    ensure!(!files.is_empty(), "deploy/manifests holds no YAML file");
    let mut out = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for doc in documents(&file)? {
            out.push((name.clone(), doc));
        }
    }
    Ok(out)
}

fn gvk_of(obj: &Value) -> Result<GroupVersionKind> {
    let api_version = obj["apiVersion"].as_str().context("no apiVersion")?;
    let kind = obj["kind"].as_str().context("no kind")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

/// Server-side apply of `obj` with `dryRun=All` and strict field validation (an unknown or
/// duplicated field is an error, not a warning); returns the server's answer.
async fn dry_run_apply(client: &Client, obj: &Value, namespace: &str) -> Result<DynamicObject> {
    let gvk = gvk_of(obj)?;
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("discovering {gvk:?}"))?;
    let name = obj["metadata"]["name"]
        .as_str()
        .context("object without metadata.name")?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or(namespace);
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams::apply(MANAGER)
        .force()
        .dry_run()
        .validation_strict();
    api.patch(name, &params, &Patch::Apply(obj))
        .await
        .with_context(|| format!("dry-run apply of {} {name}", gvk.kind))
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn every_rendered_manifest_passes_a_strict_server_side_dry_run() -> Result<()> {
    let client = client().await?;
    let manifests = all_manifests()?;
    // The ConfigMap for Argo CD lives in `argocd`; a dry run needs the namespace to exist.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (_, obj) in &manifests {
        if let Some(ns) = obj["metadata"]["namespace"].as_str()
            && namespaces.get_opt(ns).await?.is_none()
        {
            let object: Namespace = serde_json::from_value(json!({ "metadata": { "name": ns } }))?;
            namespaces.create(&PostParams::default(), &object).await?;
        }
    }
    let mut kinds = Vec::new();
    for (file, obj) in &manifests {
        // CRDs first would be needed for custom resources; the chart renders none.
        let answer = dry_run_apply(&client, obj, "default")
            .await
            .with_context(|| format!("in deploy/manifests/{file}"))?;
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        ensure!(
            answer.name_any() == obj["metadata"]["name"].as_str().unwrap_or_default(),
            "the dry run of {kind} answered with another object"
        );
        kinds.push(kind);
    }
    for want in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ConfigMap",
    ] {
        ensure!(
            kinds.iter().any(|k| k == want),
            "deploy/manifests renders no {want}"
        );
    }
    ensure!(
        !kinds.iter().any(|k| k == "ServiceMonitor"),
        "the plain manifests must not need the prometheus-operator CRDs"
    );
    Ok(())
}

/// Every Deployment's Pod template as a Pod in `namespace`.
fn pods_from_deployments(manifests: &[(String, Value)], namespace: &str) -> Result<Vec<Value>> {
    let pods: Vec<Value> = manifests
        .iter()
        .filter(|(_, o)| o["kind"] == "Deployment")
        .map(|(_, deployment)| {
            let template = &deployment["spec"]["template"];
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": format!("{}-restricted-check", deployment["metadata"]["name"].as_str().unwrap_or("hush")),
                    "namespace": namespace,
                    "labels": template["metadata"]["labels"],
                },
                "spec": template["spec"],
            })
        })
        .collect();
    if pods.is_empty() {
        bail!("deploy/manifests renders no Deployment");
    }
    Ok(pods)
}

/// The plain manifests run each controller in its own Deployment under its own ServiceAccount,
/// and no binding gives one controller's account the other's rules: a flaw in the ExternalSecret
/// controller does not reach the sealing keys.
#[test]
fn each_controller_runs_alone_under_its_own_service_account() -> Result<()> {
    let manifests = all_manifests()?;
    let deployments: Vec<&Value> = manifests
        .iter()
        .map(|(_, o)| o)
        .filter(|o| o["kind"] == "Deployment")
        .collect();
    let mut accounts = std::collections::BTreeMap::new();
    for d in &deployments {
        let args = d["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        let controllers = ["sealed", "external"]
            .into_iter()
            .filter(|c| args.contains(&format!("--controllers={c}\"")))
            .collect::<Vec<_>>();
        ensure!(
            controllers.len() == 1,
            "a Deployment runs {controllers:?}: {args}"
        );
        let account = d["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .context("a Deployment names no ServiceAccount")?;
        ensure!(
            accounts
                .insert(account.to_owned(), controllers[0])
                .is_none(),
            "two Deployments share the ServiceAccount {account}"
        );
    }
    ensure!(
        accounts.len() == 2,
        "want one Deployment per controller: {accounts:?}"
    );
    let role_of = |binding: &Value| {
        binding["roleRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for (_, binding) in manifests.iter().filter(|(_, o)| {
        matches!(
            o["kind"].as_str(),
            Some("RoleBinding" | "ClusterRoleBinding")
        )
    }) {
        for subject in binding["subjects"].as_array().into_iter().flatten() {
            let Some(controller) = subject["name"].as_str().and_then(|n| accounts.get(n)) else {
                continue;
            };
            let other = if *controller == "sealed" {
                "external"
            } else {
                "sealed"
            };
            ensure!(
                !role_of(binding).contains(&format!("-{other}")),
                "the {controller} controller's account is bound to {}",
                role_of(binding)
            );
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn the_controller_pod_is_admitted_under_restricted_pod_security() -> Result<()> {
    let client = client().await?;
    let manifests = all_manifests()?;
    let ns = TestNamespace::create(&client, "deploy-psa").await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            ns.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})),
        )
        .await?;
    let pods = pods_from_deployments(&manifests, ns.name())?;
    for pod in &pods {
        let account = pod["spec"]["serviceAccountName"]
            .as_str()
            .context("the Pod template names no ServiceAccount")?;
        let sa: ServiceAccount =
            serde_json::from_value(json!({ "metadata": { "name": account } }))?;
        ns.api::<ServiceAccount>()
            .create(&PostParams::default(), &sa)
            .await?;
        dry_run_apply(&client, pod, ns.name())
            .await
            .with_context(|| {
                format!(
                    "the chart's Pod template {} under restricted Pod Security",
                    pod["metadata"]["name"]
                )
            })?;
    }
    let pod = &pods[0];

    // Control: the same Pod allowed to escalate privileges is refused, so the level is enforced
    // here and the acceptance above means something.
    let mut weakened = pod.clone();
    weakened["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let refused = dry_run_apply(&client, &weakened, ns.name()).await;
    let message = format!(
        "{:#}",
        refused.err().context("a weakened Pod was admitted")?
    );
    ensure!(
        message.contains("PodSecurity") || message.contains("restricted"),
        "refused for another reason: {message}"
    );
    ns.delete().await
}

/// The chart's ServiceAccount and RBAC, installed for real in a fresh namespace
/// (`hush_testkit::chart`: release name = namespace, so cluster-scoped names never collide), are
/// enough for the SealedSecret controller to win the Lease, sync its caches cluster-wide and
/// create its first key.
#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn the_chart_rbac_lets_the_sealed_controller_start_elect_and_create_a_key() -> Result<()> {
    use hush_operator::leader::LeaseConfig;
    use hush_operator::{Process, ProcessConfig, Shutdown};
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ListParams;

    let admin = client().await?;
    hush_testkit::install_repo_crds(&admin).await?;
    let ns = TestNamespace::create(&admin, "deploy-rbac").await?;
    let release = ns.name().to_owned();
    let controller = controller_client(&admin, &release, ChartProfile::Sealed).await?;
    let mut config = hush_sealed_controller::Config::new(&release);
    config.key_size = 2048;
    config.listen_addr = "127.0.0.1:0".into();
    let shutdown = Shutdown::new();
    let lease_name = ChartProfile::Sealed.lease_name();
    let mut lease = LeaseConfig::new(release.clone(), lease_name.into(), "e2e".into());
    lease.retry_period = std::time::Duration::from_millis(200);
    let mut process = Process::new(
        controller,
        ProcessConfig {
            metrics_addr: "127.0.0.1:0".into(),
            leader_election: Some(lease),
            shards: None,
        },
        shutdown.clone(),
    );
    process.bind_metrics().await?;
    let started = hush_sealed_controller::start(&mut process, config).await?;
    let handle = tokio::spawn(process.run(vec![started.component]));

    let keys: Api<Secret> = Api::namespaced(admin.clone(), &release);
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &release);
    let mut result = Err(anyhow::anyhow!("no key Secret within 60 s"));
    for _ in 0..240 {
        let found = keys
            .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"))
            .await?;
        if !found.items.is_empty() {
            let holder = leases
                .get(lease_name)
                .await?
                .spec
                .and_then(|s| s.holder_identity)
                .unwrap_or_default();
            result = if holder == "e2e" {
                Ok(())
            } else {
                Err(anyhow::anyhow!("the Lease is held by {holder:?}"))
            };
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    shutdown.trigger();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), handle).await;
    ns.delete().await?;
    result
}
