//! The Helm chart's ServiceAccount and RBAC for controllers under test.
//!
//! [`controller_client`] renders `deploy/helm/hush` with the real Helm (`HUSH_PEER_HELM`), using the
//! test's key namespace as release name and release namespace, applies the ServiceAccount, Roles,
//! ClusterRoles and their bindings, and returns a client that impersonates that ServiceAccount. A
//! controller started with it may do exactly what the chart allows, and the API server's audit log
//! attributes its calls to `system:serviceaccount:<namespace>:<account>` (the evidence that
//! `scripts/rbac-evidence.sh` compares with the chart).
//!
//! `HUSH_E2E_RBAC_OMIT=<Kind>/<name>#<index>` drops one rule before applying (the name with the
//! release written `{release}`, e.g. `ClusterRole/{release}-sealed#2`); `scripts/rbac-minimality.sh`
//! uses it to show which scenario needs each rule.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::{FIELD_MANAGER, TEST_NAMESPACE_LABEL};

/// Environment variable naming one chart rule to leave out (see the module docs).
pub const OMIT_RULE_ENV: &str = "HUSH_E2E_RBAC_OMIT";

/// Which controller of the chart a test runs. The chart is rendered with both controllers
/// enabled, as most installs run it; each controller has its own ServiceAccount there, and a
/// profile applies only that account and the Roles and ClusterRoles bound to it, so a scenario
/// passing proves its controller needs none of the other's rules (and the audit log tells the
/// two apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartProfile {
    /// The SealedSecret controller (Bitnami's ServiceAccount name).
    Sealed,
    /// The ExternalSecret controller.
    External,
}

impl ChartProfile {
    /// The ServiceAccount the chart creates for this profile.
    pub fn service_account(self) -> &'static str {
        match self {
            Self::Sealed => "sealed-secrets-controller",
            Self::External => "hush-external-controller",
        }
    }

    /// `helm template --set` values (the same for both profiles, and in
    /// `scripts/lib/rbac_evidence.py`).
    pub fn helm_values(self) -> &'static str {
        "controllers.sealed.enabled=true,controllers.external.enabled=true,sealed.shards=3,controllers.external.shards=3,controllers.external.refreshEndpoint.enabled=true"
    }

    /// The name of the leader Lease the chart lets this controller hold.
    pub fn lease_name(self) -> &'static str {
        match self {
            Self::Sealed => "hush-controller",
            Self::External => "hush-controller-external",
        }
    }
}

/// The rendered objects that make up `account`'s identity: the ServiceAccount, the bindings
/// naming it, and the Roles and ClusterRoles those bindings refer to.
fn bound_to(documents: Vec<Value>, account: &str, release: &str) -> Vec<Value> {
    let names_account = |binding: &Value| {
        binding["subjects"].as_array().is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == release
            })
        })
    };
    let roles: Vec<(String, String)> = documents
        .iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("RoleBinding" | "ClusterRoleBinding")
            )
        })
        .filter(|d| names_account(d))
        .map(|d| {
            (
                d["roleRef"]["kind"].as_str().unwrap_or_default().to_owned(),
                d["roleRef"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    documents
        .into_iter()
        .filter(|d| match d["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => d["metadata"]["name"] == account,
            "RoleBinding" | "ClusterRoleBinding" => names_account(d),
            kind @ ("Role" | "ClusterRole") => roles
                .iter()
                .any(|(k, n)| k == kind && d["metadata"]["name"].as_str() == Some(n.as_str())),
            _ => false,
        })
        .collect()
}

/// The repository's Helm chart.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/hush")
}

/// The Helm binary of the peers environment: `HUSH_PEER_HELM`, or that line of `$HUSH_PEERS_ENV`.
pub fn helm() -> Result<PathBuf> {
    if let Some(helm) = std::env::var_os("HUSH_PEER_HELM") {
        return Ok(PathBuf::from(helm));
    }
    let env = std::env::var("HUSH_PEERS_ENV").context(
        "neither HUSH_PEER_HELM nor HUSH_PEERS_ENV is set: run scripts/dev-env.sh and export \
         HUSH_PEERS_ENV=~/.cache/hush/peers.env",
    )?;
    let text = std::fs::read_to_string(&env).with_context(|| format!("reading {env}"))?;
    text.lines()
        .filter_map(|l| {
            l.trim_start_matches("export ")
                .strip_prefix("HUSH_PEER_HELM=")
        })
        .map(|v| PathBuf::from(v.trim_matches(['"', '\''])))
        .next()
        .with_context(|| format!("no HUSH_PEER_HELM line in {env}"))
}

/// `helm template <release> deploy/helm/hush --namespace <release>` for `profile`, as JSON
/// documents.
pub fn render(release: &str, profile: ChartProfile) -> Result<Vec<Value>> {
    let helm = helm()?;
    let home = std::env::temp_dir().join("hush-testkit-helm");
    let out = std::process::Command::new(&helm)
        .args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", release, "--set", profile.helm_values()])
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    if !out.status.success() {
        bail!(
            "helm template of {} failed: {}",
            chart_dir().display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout).context("helm template printed non-UTF-8")?;
    let mut documents = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let value = Value::deserialize(document)
            .with_context(|| format!("helm template output, document {index}"))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// Removes the rule named by `omit` (`<Kind>/<name>#<index>`, `{release}` standing for the
/// release name) from the rendered RBAC objects; an id that matches nothing is an error, so a
/// typo cannot make a minimality run pass.
fn omit_rule(documents: &mut [Value], release: &str, omit: &str) -> Result<()> {
    let (object, index) = omit
        .rsplit_once('#')
        .with_context(|| format!("{OMIT_RULE_ENV}={omit:?}: expected <Kind>/<name>#<index>"))?;
    let index: usize = index
        .parse()
        .with_context(|| format!("{OMIT_RULE_ENV}={omit:?}: the rule index is not a number"))?;
    let wanted = object.replace("{release}", release);
    for document in documents.iter_mut() {
        let id = format!(
            "{}/{}",
            document["kind"].as_str().unwrap_or_default(),
            document["metadata"]["name"].as_str().unwrap_or_default()
        );
        if id != wanted {
            continue;
        }
        let rules = document["rules"]
            .as_array_mut()
            .with_context(|| format!("{OMIT_RULE_ENV}: {id} has no rules"))?;
        if index >= rules.len() {
            bail!(
                "{OMIT_RULE_ENV}: {id} has {} rules, not #{index}",
                rules.len()
            );
        }
        rules.remove(index);
        return Ok(());
    }
    Err(anyhow!(
        "{OMIT_RULE_ENV}={omit:?}: the chart renders no {wanted}"
    ))
}

/// Applies the chart's ServiceAccount and RBAC for `profile` with `release_namespace` as release
/// name and namespace (it must exist), waits until the API server's authorizer grants the rules,
/// and returns a client impersonating the ServiceAccount.
///
/// Cluster-scoped objects carry the release name and the label `hush.test/e2e=true`
/// (`kubectl delete clusterrole,clusterrolebinding -l hush.test/e2e=true` on a long-lived cluster).
pub async fn controller_client(
    admin: &Client,
    release_namespace: &str,
    profile: ChartProfile,
) -> Result<Client> {
    let release = release_namespace;
    let mut documents = bound_to(
        render(release, profile)?,
        profile.service_account(),
        release,
    );
    if let Ok(omit) = std::env::var(OMIT_RULE_ENV)
        && !omit.is_empty()
    {
        omit_rule(&mut documents, release, &omit)?;
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut checks = Vec::new();
    for mut document in documents {
        let kind = document["kind"].as_str().unwrap_or_default().to_owned();
        let name = document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let what = format!("the chart's {kind} {name}");
        match kind.as_str() {
            "ServiceAccount" => {
                let sa: ServiceAccount = serde_json::from_value(document).context(what.clone())?;
                Api::<ServiceAccount>::namespaced(admin.clone(), release)
                    .patch(&name, &params, &Patch::Apply(&sa))
                    .await
                    .with_context(|| format!("applying {what}"))?;
            }
            "Role" => {
                let role: Role = serde_json::from_value(document).context(what.clone())?;
                for rule in role.rules.iter().flatten() {
                    checks.push((Some(release.to_owned()), rule.clone()));
                }
                Api::<Role>::namespaced(admin.clone(), release)
                    .patch(&name, &params, &Patch::Apply(&role))
                    .await
                    .with_context(|| format!("applying {what}"))?;
            }
            "RoleBinding" => {
                let binding: RoleBinding =
                    serde_json::from_value(document).context(what.clone())?;
                Api::<RoleBinding>::namespaced(admin.clone(), release)
                    .patch(&name, &params, &Patch::Apply(&binding))
                    .await
                    .with_context(|| format!("applying {what}"))?;
            }
            "ClusterRole" | "ClusterRoleBinding" => {
                document["metadata"]["labels"][TEST_NAMESPACE_LABEL] = json!("true");
                if kind == "ClusterRole" {
                    let role: ClusterRole =
                        serde_json::from_value(document).context(what.clone())?;
                    for rule in role.rules.iter().flatten() {
                        checks.push((None, rule.clone()));
                    }
                    Api::<ClusterRole>::all(admin.clone())
                        .patch(&name, &params, &Patch::Apply(&role))
                        .await
                        .with_context(|| format!("applying {what}"))?;
                } else {
                    let binding: ClusterRoleBinding =
                        serde_json::from_value(document).context(what.clone())?;
                    Api::<ClusterRoleBinding>::all(admin.clone())
                        .patch(&name, &params, &Patch::Apply(&binding))
                        .await
                        .with_context(|| format!("applying {what}"))?;
                }
            }
            _ => {}
        }
    }
    let user = format!(
        "system:serviceaccount:{release}:{}",
        profile.service_account()
    );
    for (namespace, rule) in &checks {
        wait_allowed(admin, &user, release, namespace.as_deref(), rule).await?;
    }
    impersonating_client(&user).await
}

/// Polls a SubjectAccessReview (as the admin, so the controller's own audit trail stays clean)
/// until the first verb and resource of `rule` is allowed for `user`: RBAC objects reach the
/// authorizer through an informer, a moment after they are written.
async fn wait_allowed(
    admin: &Client,
    user: &str,
    release: &str,
    namespace: Option<&str>,
    rule: &PolicyRule,
) -> Result<()> {
    let (Some(verb), Some(resource)) = (
        rule.verbs.first(),
        rule.resources.as_ref().and_then(|r| r.first()),
    ) else {
        return Ok(());
    };
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let group = rule
        .api_groups
        .as_ref()
        .and_then(|g| g.first())
        .cloned()
        .unwrap_or_default();
    let name = rule
        .resource_names
        .as_ref()
        .and_then(|n| n.first())
        .cloned();
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{release}"), "system:authenticated"],
            "resourceAttributes": {
                "namespace": namespace.unwrap_or_default(),
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
                "name": name.unwrap_or_default(),
            },
        },
    }))
    .context("building a SubjectAccessReview")?;
    let api: Api<SubjectAccessReview> = Api::all(admin.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .context("SubjectAccessReview")?;
        if answer.status.is_some_and(|s| s.allowed) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the chart's RBAC did not allow {user} to {verb} {group}/{resource} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client from `KUBECONFIG` that impersonates `user` (`Impersonate-User`; the API server adds
/// a ServiceAccount's groups itself).
async fn impersonating_client(user: &str) -> Result<Client> {
    let path = std::env::var_os("KUBECONFIG").context("KUBECONFIG is not set")?;
    let path = PathBuf::from(path);
    let kubeconfig = Kubeconfig::read_from(&path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    config.auth_info.impersonate = Some(user.to_owned());
    Client::try_from(config).with_context(|| format!("building a client impersonating {user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents() -> Vec<Value> {
        vec![
            json!({"kind": "ClusterRole", "metadata": {"name": "r1-sealed"},
                   "rules": [{"verbs": ["get"]}, {"verbs": ["list"]}]}),
            json!({"kind": "Role", "metadata": {"name": "other"}, "rules": [{"verbs": ["get"]}]}),
        ]
    }

    #[test]
    fn omit_removes_exactly_the_named_rule() -> Result<()> {
        let mut docs = documents();
        omit_rule(&mut docs, "r1", "ClusterRole/{release}-sealed#1")?;
        assert_eq!(docs[0]["rules"], json!([{"verbs": ["get"]}]));
        assert_eq!(docs[1]["rules"], json!([{"verbs": ["get"]}]));
        Ok(())
    }

    #[test]
    fn a_profile_gets_only_what_is_bound_to_its_account() {
        let docs = vec![
            json!({"kind": "ServiceAccount", "metadata": {"name": "a"}}),
            json!({"kind": "ServiceAccount", "metadata": {"name": "b"}}),
            json!({"kind": "ClusterRole", "metadata": {"name": "ra"}, "rules": []}),
            json!({"kind": "ClusterRole", "metadata": {"name": "rb"}, "rules": []}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "ra"},
                   "roleRef": {"kind": "ClusterRole", "name": "ra"},
                   "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "r"}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "rb"},
                   "roleRef": {"kind": "ClusterRole", "name": "rb"},
                   "subjects": [{"kind": "ServiceAccount", "name": "b", "namespace": "r"}]}),
            json!({"kind": "Deployment", "metadata": {"name": "d"}}),
        ];
        let names: Vec<String> = bound_to(docs, "a", "r")
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "ServiceAccount/a",
                "ClusterRole/ra",
                "ClusterRoleBinding/ra"
            ]
        );
    }

    #[test]
    fn omit_of_an_unknown_rule_is_an_error() {
        for bad in [
            "ClusterRole/{release}-sealed#2",
            "ClusterRole/{release}-external#0",
            "ClusterRole/{release}-sealed",
            "ClusterRole/{release}-sealed#x",
        ] {
            let mut docs = documents();
            assert!(omit_rule(&mut docs, "r1", bad).is_err(), "{bad}");
        }
    }
}
