//! Differential harness: the real External Secrets Operator and hush's ExternalSecret controller
//! reconcile the same manifests, and the tests compare what a user or a tool sees.
//!
//! - **hush** runs in this process against the run's API server (`KUBECONFIG`), cluster-wide, as
//!   the Helm chart's ServiceAccount (`external_harness::Controller`).
//! - **ESO** v0.16.2 (`HUSH_PEER_ESO`, built by `scripts/peers/eso.sh`) runs as a child process
//!   against a second, separate API server (`HUSH_ESO_KUBECONFIG`, started by
//!   `scripts/services/eso-apiserver.sh`) with ESO's own CRD bundle, and is killed when the test
//!   ends.
//! - Both read the same OpenBao and moto. Each [`Peer`] has its own controller class: the harness
//!   writes `spec.controller: <class>` into every SecretStore and ClusterSecretStore on both sides
//!   (the one field it adds), so tests that run at once never share objects.
//! - A case ([`Pair`]) has the same namespace name on both servers (ESO's `created-by` label
//!   hashes it), applies manifests to both, waits until both sides have settled, and compares
//!   normalized snapshots: Secrets (type, data, labels, annotations, ownerReferences, immutable,
//!   finalizers, the ExternalSecret field managers' managedFields), ExternalSecret and store
//!   status (conditions' type, status, reason and message, binding, syncedResourceVersion),
//!   ClusterExternalSecret status and children, and the event reasons per object.
//! - A bare API server runs no garbage collector: a snapshot leaves out the objects whose
//!   controller owner is gone on that side (what the collector would delete).
//! - Every difference is a finding. Findings listed in [`KNOWN`] (each a row of
//!   docs/compatibility.md, "hush and ESO v0.16.2") are reported and pass; any other fails
//!   [`Peer::finish`].
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::external_harness::{Controller, setup};

/// How long a side may take to settle after a step.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A snapshot counts as settled when it stayed the same this long.
const STABLE_FOR: Duration = Duration::from_millis(2500);
const POLL: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Peers and ESO.

/// A peer binary: `$VAR`, or that line of `$HUSH_PEERS_ENV` (default
/// `~/.cache/hush/peers.env`, written by `scripts/dev-env.sh`).
pub fn peer_path(var: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    let file = std::env::var_os("HUSH_PEERS_ENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hush/peers.env"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {} (run scripts/dev-env.sh)", file.display()))?;
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{var}=")))
        .map(PathBuf::from)
        .with_context(|| {
            format!(
                "{var} missing from {} (run scripts/dev-env.sh)",
                file.display()
            )
        })?;
    ensure!(path.exists(), "{var}: {} does not exist", path.display());
    Ok(path)
}

/// ESO's CRD bundle, which `scripts/peers/eso.sh` puts next to the binary.
pub fn eso_crds() -> Result<PathBuf> {
    let bin = peer_path("HUSH_PEER_ESO")?;
    let crds = bin
        .parent()
        .context("HUSH_PEER_ESO has no parent directory")?
        .join("crds/bundle.yaml");
    ensure!(
        crds.exists(),
        "{} is missing (run scripts/peers/eso.sh)",
        crds.display()
    );
    Ok(crds)
}

/// One of ESO's documented example manifests (`docs/snippets/<file>` of the ESO module, copied
/// beside the peer binary by `scripts/peers/eso.sh`), as JSON.
pub fn eso_snippet(file: &str) -> Result<Value> {
    let bin = peer_path("HUSH_PEER_ESO")?;
    let path = bin
        .parent()
        .context("HUSH_PEER_ESO has no parent directory")?
        .join("snippets")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run scripts/peers/eso.sh)", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The manifests written inline in one of ESO's provider pages (`docs/provider/<file>` of the
/// peer's module, copied beside it by scripts/peers/eso.sh): every document of every `yaml`
/// block, in order. A block that is not valid YAML (kubernetes.md has one indented with tabs)
/// is left out; tests look documents up by kind and name and fail when one is missing.
pub fn eso_provider_doc(file: &str) -> Result<Vec<Value>> {
    let bin = peer_path("HUSH_PEER_ESO")?;
    let path = bin
        .parent()
        .context("HUSH_PEER_ESO has no parent directory")?
        .join("provider-docs")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run scripts/peers/eso.sh)", path.display()))?;
    let mut docs = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut block, fence) {
            (None, Some(lang)) if lang.eq_ignore_ascii_case("yaml") => block = Some(String::new()),
            (Some(b), Some(_)) => {
                for doc in b.split("\n---\n") {
                    if let Ok(v) = serde_norway::from_str::<Value>(doc)
                        && v.is_object()
                    {
                        docs.push(v);
                    }
                }
                block = None;
            }
            // Jekyll's raw markers are not part of the manifest.
            (Some(b), None) if !line.trim_start().starts_with("{%") => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    Ok(docs)
}

/// The document of `kind` named `name` among `docs`.
pub fn doc_named(docs: &[Value], kind: &str, name: &str) -> Result<Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .cloned()
        .with_context(|| format!("ESO's documentation has no {kind} {name}"))
}

/// A client for ESO's API server (`HUSH_ESO_KUBECONFIG`), with ESO's CRDs installed.
pub async fn eso_client() -> Result<Client> {
    let kubeconfig = eso_kubeconfig()?;
    let client = hush_testkit::client_from_kubeconfig(&kubeconfig).await?;
    hush_testkit::install_crd_file(&client, &eso_crds()?, Duration::from_secs(120)).await?;
    Ok(client)
}

pub fn eso_kubeconfig() -> Result<PathBuf> {
    std::env::var_os("HUSH_ESO_KUBECONFIG")
        .map(PathBuf::from)
        .context(
            "HUSH_ESO_KUBECONFIG is not set: run through scripts/test.sh, or \
         eval \"$(scripts/services/eso-apiserver.sh start)\"",
        )
}

/// The real ESO controller, a child process killed when dropped.
pub struct Eso {
    child: tokio::process::Child,
    pub metrics: String,
    pub log: PathBuf,
}

impl Eso {
    /// Starts ESO against `kubeconfig` with `--controller-class class` and `args`, and waits
    /// until its metrics endpoint answers.
    pub async fn start(kubeconfig: &Path, class: &str, args: &[String]) -> Result<Self> {
        let bin = peer_path("HUSH_PEER_ESO")?;
        let port = hush_testkit::process::free_port()?;
        let metrics = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("hush-eso-{class}.log"));
        let file = std::fs::File::create(&log)?;
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(["--controller-class", class, "--metrics-addr", &metrics])
            .args(["--loglevel", "info"])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("ESO exited with {status}: {}", tail(&log, 30));
            }
            if http
                .get(format!("http://{metrics}/metrics"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "ESO's metrics endpoint did not answer within 60 s: {}",
                tail(&log, 30)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self {
            child,
            metrics,
            log,
        })
    }

    /// The process id (CPU and memory from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last lines of ESO's log.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Stops ESO (SIGKILL: it keeps no state) and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A short random lowercase suffix for names.
pub fn suffix() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let mut n = h.finish();
    (0..6)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize];
            n /= 36;
            c as char
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The two sides.

/// Options of a [`Peer`].
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// Run ESO's ClusterExternalSecret reconciler (it has no controller class: only one test
    /// binary at a time may enable it).
    pub cluster_external_secrets: bool,
    /// Run ESO's PushSecret reconciler (it skips stores of other controller classes, as hush).
    pub push_secrets: bool,
    /// Run ESO's ClusterPushSecret reconciler (no controller class, as ClusterExternalSecrets).
    pub cluster_push_secrets: bool,
    /// More ESO flags.
    pub eso_args: Vec<String>,
}

/// hush and ESO, each on its own API server, with one controller class.
pub struct Peer {
    pub class: String,
    pub hush: Client,
    pub eso: Client,
    hush_controller: Option<Controller>,
    eso_process: Option<Eso>,
    findings: Mutex<Vec<Finding>>,
}

impl Peer {
    pub async fn start(options: PeerOptions) -> Result<Self> {
        let hush = setup().await?;
        let eso = eso_client().await?;
        let class = format!("diff-{}", suffix());
        let hush_controller = Controller::start_cluster_wide(&hush, &class).await?;
        let mut args = vec![
            format!(
                "--enable-cluster-external-secret-reconciler={}",
                options.cluster_external_secrets
            ),
            format!("--enable-push-secret-reconciler={}", options.push_secrets),
            format!(
                "--enable-cluster-push-secret-reconciler={}",
                options.cluster_push_secrets
            ),
        ];
        args.extend(options.eso_args);
        let eso_process = Eso::start(&eso_kubeconfig()?, &class, &args).await?;
        Ok(Self {
            class,
            hush,
            eso,
            hush_controller: Some(hush_controller),
            eso_process: Some(eso_process),
            findings: Mutex::new(Vec::new()),
        })
    }

    /// A new case: a namespace of the same name on both servers.
    pub async fn case(&self, name: &str) -> Result<Pair<'_>> {
        let ns = format!("eso-{name}-{}", suffix());
        ensure!(ns.len() <= 50, "case name {name:?} is too long");
        create_namespace(self, &ns, &BTreeMap::new()).await?;
        Ok(Pair {
            peer: self,
            strict: true,
            shape: None,
            case: name.to_owned(),
            ns: ns.clone(),
            namespaces: vec![ns],
            before: None,
        })
    }

    fn record(&self, found: Vec<Finding>) {
        self.findings.lock().unwrap().extend(found);
    }

    /// The ESO log's tail (for failure messages).
    pub fn eso_log(&self) -> String {
        self.eso_process
            .as_ref()
            .map(|e| e.tail(40))
            .unwrap_or_default()
    }

    /// [`Peer::finish`] after cases ran: also fails when a case returned an error.
    pub async fn finish_cases(self, results: Vec<Result<()>>) -> Result<()> {
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect();
        self.finish().await?;
        ensure!(errors.is_empty(), "cases failed:\n{}", errors.join("\n"));
        Ok(())
    }

    /// Stops both controllers and fails on any finding not in [`KNOWN`].
    pub async fn finish(mut self) -> Result<()> {
        if let Some(c) = self.hush_controller.take() {
            c.stop().await?;
        }
        let log = self.eso_log();
        if let Some(e) = self.eso_process.take() {
            e.stop().await?;
        }
        let findings = std::mem::take(&mut *self.findings.lock().unwrap());
        let mut unknown = Vec::new();
        for f in &findings {
            match known(f) {
                Some(why) => println!("known difference: {f}\n    ({why})"),
                None => unknown.push(f.to_string()),
            }
        }
        ensure!(
            unknown.is_empty(),
            "{} difference(s) between ESO and hush:\n{}\n--- ESO log (tail) ---\n{log}",
            unknown.len(),
            unknown.join("\n")
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Findings.

/// One difference between what ESO and hush produced.
#[derive(Debug, Clone)]
pub struct Finding {
    pub case: String,
    pub step: String,
    pub path: String,
    pub eso: String,
    pub hush: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{} / {}] {}: ESO {} | hush {}",
            self.case, self.step, self.path, self.eso, self.hush
        )
    }
}

/// A deliberate difference: findings whose case, path, ESO side and hush side contain these
/// are reported, not failed. `why` names the docs/compatibility.md row.
pub struct Known {
    pub case: &'static str,
    pub path: &'static str,
    pub eso: &'static str,
    pub hush: &'static str,
    pub why: &'static str,
}

/// The documented differences (docs/compatibility.md, "hush and ESO v0.16.2").
pub const KNOWN: &[Known] = &[
    Known {
        case: "",
        path: "ownerReferences",
        eso: "\"blockOwnerDeletion\":true",
        hush: "\"blockOwnerDeletion\":null",
        why: "ownerReferences without blockOwnerDeletion",
    },
    Known {
        case: "",
        path: "status.capabilities",
        eso: "",
        hush: "ReadOnly",
        why: "store capabilities: ESO sets none on a store that fails validation",
    },
    Known {
        case: "kubernetes",
        path: "/gone",
        eso: "",
        hush: "",
        why: "kubernetes provider: a missing Secret in data is not found",
    },
    Known {
        case: "",
        path: ".conversionStrategy",
        eso: "\"None\"",
        hush: "absent",
        why: "no CRD defaults (conversionStrategy echoed in PushSecret status)",
    },
    Known {
        case: "push",
        path: "custom_metadata.team",
        eso: "absent",
        hush: "kanto",
        why: "PushSecretMetadata customMetadata written to Vault KV v2",
    },
    Known {
        case: "push",
        path: "/broken-template",
        eso: "",
        hush: "",
        why: "a PushSecret whose template fails is Ready=False",
    },
    Known {
        case: "generators",
        path: "Events",
        eso: "\"Normal Updated\"",
        hush: "[\"Normal Created\"]",
        why: "a generator's value made once per refresh",
    },
    Known {
        case: "push",
        path: "status.conditions",
        eso: ": secret not managed by external-secrets",
        hush: "is not managed by external-secrets",
        why: "a PushSecret refused over an unmanaged remote secret names it",
    },
    Known {
        case: "",
        path: ".status.binding",
        eso: "{\"name\":\"\"}",
        hush: "null",
        why: "status.binding left out until a Secret is written",
    },
    Known {
        case: "",
        path: "status.conditions",
        eso: "\"message\":\"could not update secret\"",
        hush: "\"message\":\"template: ",
        why: "template errors named in the Ready message",
    },
    Known {
        case: "",
        path: "status.conditions",
        eso: "\"message\":\"could not get secret data from provider\"",
        hush: "\"message\":\"store: ",
        why: "a missing or unusable store named in the Ready message",
    },
    Known {
        case: "",
        path: "",
        eso: "ValidationFailed",
        hush: "InvalidProviderConfig",
        why: "store validation refused: reason InvalidProviderConfig (ESO 2.x)",
    },
    Known {
        case: "fake",
        path: "Events",
        eso: "StoreUnmaintained",
        hush: "",
        why: "no StoreUnmaintained warning for the fake provider",
    },
    Known {
        case: "immutable",
        path: "data-hash",
        eso: "",
        hush: "",
        why: "immutable target whose provider data changed",
    },
    Known {
        case: "",
        path: ".labels.reconcile.external-secrets.io/managed",
        eso: "\"true\"",
        hush: "absent",
        why: "no managed label on a target before the first write",
    },
    Known {
        case: "",
        path: ".managedFields",
        eso: "[{\"manager\":\"externalsecrets.external-secrets.io/",
        hush: "[]",
        why: "no managed label on a target before the first write",
    },
    Known {
        case: "",
        path: ".status.binding",
        eso: "{\"name\":\"existing-",
        hush: "null",
        why: "status.binding left out until a Secret is written",
    },
    Known {
        case: "",
        path: "finalizers",
        eso: "[]",
        hush: "clusterexternalsecret-cleanup",
        why: "ClusterExternalSecret cleanup finalizer (ESO 2.x)",
    },
];

fn known(f: &Finding) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|k| {
            f.case.contains(k.case)
                && f.path.contains(k.path)
                && f.eso.contains(k.eso)
                && f.hush.contains(k.hush)
        })
        .map(|k| k.why)
}

// ---------------------------------------------------------------------------------------------
// Cases.

/// What a generated Secret value is compared as: its shape (length, character classes…).
pub type Shape = fn(&str, &str) -> Value;

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Eso,
    Hush,
}

/// What a step waits for before the snapshots are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Both sides stable (and every ExternalSecret has a `Ready` condition, or the timeout).
    Settled,
    /// As `Settled`, after every ExternalSecret was reconciled again (its `refreshTime` or
    /// `Ready` changed): a provider-side change seen through a refresh.
    Refreshed,
}

/// One case: the same namespace on both servers.
pub struct Pair<'p> {
    peer: &'p Peer,
    /// Writes both sides refuse are findings (hand-written cases); random manifests may be
    /// refused by both.
    pub strict: bool,
    /// Secret values are compared through this (`key`, `value`) → shape, not as they are:
    /// generated values differ between the sides by design.
    pub shape: Option<Shape>,
    pub case: String,
    pub ns: String,
    namespaces: Vec<String>,
    before: Option<(Snapshot, Snapshot)>,
}

/// A namespace of the same name with `labels` on both servers.
async fn create_namespace(
    peer: &Peer,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<()> {
    let mut labels = labels.clone();
    labels.insert(hush_testkit::TEST_NAMESPACE_LABEL.into(), "true".into());
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}))?;
    for (side, client) in [("ESO", &peer.eso), ("hush", &peer.hush)] {
        Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name} ({side})"))?;
    }
    Ok(())
}

/// In a manifest, replaced by `eso` or `hush`: a name of the side's own (a Vault mount both
/// sides push to would otherwise be shared).
pub const SIDE: &str = "@side@";
/// In a manifest, replaced by the side's own API server URL (the Kubernetes provider's
/// `server.url`).
pub const API_URL: &str = "@api-url@";
/// In a manifest, replaced by the side's API server CA, base64 PEM (`server.caBundle`).
pub const API_CA: &str = "@api-ca@";

/// `obj` with the placeholders filled in for `side`.
fn fill(obj: &Value, side: Side) -> Result<Value> {
    let mut text = obj.to_string();
    if !text.contains('@') {
        return Ok(obj.clone());
    }
    let name = match side {
        Side::Eso => "eso",
        Side::Hush => "hush",
    };
    text = text.replace(SIDE, name);
    if text.contains(API_URL) || text.contains(API_CA) {
        let (url, ca) = api_server(side)?;
        text = text.replace(API_URL, &url).replace(API_CA, &ca);
    }
    Ok(serde_json::from_str(&text)?)
}

/// The URL and base64 CA of `side`'s API server, from its kubeconfig.
fn api_server(side: Side) -> Result<(String, String)> {
    let path = match side {
        Side::Eso => eso_kubeconfig()?,
        Side::Hush => PathBuf::from(
            std::env::var_os("KUBECONFIG").context("KUBECONFIG is not set (the run's server)")?,
        ),
    };
    let config = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let cluster = config
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .with_context(|| format!("{} has no cluster", path.display()))?;
    Ok((
        cluster
            .server
            .context("the kubeconfig's cluster has no server")?,
        cluster
            .certificate_authority_data
            .context("the kubeconfig's cluster has no certificate-authority-data")?,
    ))
}

/// The Kubernetes resource of a kind the cases use.
fn resource(api_version: &str, kind: &str) -> Result<(ApiResource, bool)> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) = match kind {
        "Secret" => ("secrets", true),
        "ConfigMap" => ("configmaps", true),
        "Namespace" => ("namespaces", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Event" => ("events", true),
        "ExternalSecret" => ("externalsecrets", true),
        "SecretStore" => ("secretstores", true),
        "ClusterSecretStore" => ("clustersecretstores", false),
        "ClusterExternalSecret" => ("clusterexternalsecrets", false),
        "PushSecret" => ("pushsecrets", true),
        "ClusterPushSecret" => ("clusterpushsecrets", false),
        "Password" => ("passwords", true),
        "UUID" => ("uuids", true),
        "Fake" => ("fakes", true),
        other => bail!("the harness does not know kind {other:?}"),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Ok((ApiResource::from_gvk_with_plural(&gvk, plural), namespaced))
}

fn es_resource(kind: &str) -> ApiResource {
    let api_version = match kind {
        "Secret" | "ConfigMap" | "Event" | "Namespace" => "v1",
        "PushSecret" | "ClusterPushSecret" => "external-secrets.io/v1alpha1",
        _ => "external-secrets.io/v1",
    };
    resource(api_version, kind).expect("known kind").0
}

fn api(client: &Client, ns: &str, api_version: &str, kind: &str) -> Result<Api<DynamicObject>> {
    let (ar, namespaced) = resource(api_version, kind)?;
    Ok(if namespaced {
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    })
}

/// The outcome of a write, compared between the sides.
fn outcome(r: &Result<DynamicObject, kube::Error>) -> String {
    match r {
        Ok(_) => "accepted".into(),
        Err(kube::Error::Api(s)) => format!("refused ({} {})", s.code, s.reason),
        Err(e) => format!("failed ({e})"),
    }
}

impl Pair<'_> {
    pub fn peer(&self) -> &Peer {
        self.peer
    }

    fn client(&self, side: Side) -> &Client {
        match side {
            Side::Eso => &self.peer.eso,
            Side::Hush => &self.peer.hush,
        }
    }

    /// Another namespace for this case (`<ns>-<suffix>`) with `labels`, on both servers.
    pub async fn extra_namespace(
        &mut self,
        suffix: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let name = format!("{}-{suffix}", self.ns);
        create_namespace(self.peer, &name, labels).await?;
        self.namespaces.push(name.clone());
        Ok(name)
    }

    /// The manifest as it goes to both servers: the case's namespace, the peer's controller
    /// class on stores, and the [`SIDE`], [`API_URL`] and [`API_CA`] placeholders filled in for
    /// each side (ESO's first).
    fn prepare(&self, obj: Value) -> Result<(Api<DynamicObject>, Api<DynamicObject>, [Value; 2])> {
        let (eso, hush, obj) = self.prepare_shared(obj)?;
        Ok((eso, hush, [fill(&obj, Side::Eso)?, fill(&obj, Side::Hush)?]))
    }

    fn prepare_shared(
        &self,
        mut obj: Value,
    ) -> Result<(Api<DynamicObject>, Api<DynamicObject>, Value)> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        let (_, namespaced) = resource(&api_version, &kind)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&self.ns)
            .to_owned();
        if namespaced {
            obj["metadata"]["namespace"] = json!(ns);
        } else {
            ensure!(
                name.starts_with(&self.ns),
                "cluster-scoped {kind} {name:?} must start with the case's namespace {}",
                self.ns
            );
        }
        if kind == "SecretStore" || kind == "ClusterSecretStore" {
            obj["spec"]["controller"] = json!(self.peer.class);
        }
        Ok((
            api(&self.peer.eso, &ns, &api_version, &kind)?,
            api(&self.peer.hush, &ns, &api_version, &kind)?,
            obj,
        ))
    }

    /// Creates `manifests` on both servers: first everything but ExternalSecrets and
    /// ClusterExternalSecrets, then (once every new store has a `Ready` condition on both sides,
    /// so ESO's flood gate does not turn the first sync into a timing-dependent error) those.
    /// A write one side refuses and the other accepts is a finding.
    pub async fn apply(&mut self, manifests: Vec<Value>) -> Result<()> {
        let (syncing, first): (Vec<Value>, Vec<Value>) = manifests.into_iter().partition(|m| {
            matches!(
                m["kind"].as_str(),
                Some("ExternalSecret" | "ClusterExternalSecret")
            )
        });
        let stores: Vec<(String, String)> = first
            .iter()
            .filter(|m| {
                matches!(
                    m["kind"].as_str(),
                    Some("SecretStore" | "ClusterSecretStore")
                )
            })
            .map(|m| {
                (
                    m["kind"].as_str().unwrap_or_default().to_owned(),
                    m["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        self.create(first).await?;
        for (kind, name) in &stores {
            for client in [&self.peer.eso, &self.peer.hush] {
                self.wait_store_condition(client, kind, name).await?;
            }
        }
        self.create(syncing).await
    }

    async fn wait_store_condition(&self, client: &Client, kind: &str, name: &str) -> Result<()> {
        let api = api(client, &self.ns, "external-secrets.io/v1", kind)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(o) = api.get_opt(name).await?
                && o.data["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"))
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // No condition is itself a difference the snapshots show.
        Ok(())
    }

    async fn create(&mut self, manifests: Vec<Value>) -> Result<()> {
        for m in manifests {
            let (eso, hush, [eso_obj, hush_obj]) = self.prepare(m)?;
            let what = format!(
                "create {} {}",
                eso_obj["kind"].as_str().unwrap_or_default(),
                eso_obj["metadata"]["name"].as_str().unwrap_or_default()
            );
            let (eso_obj, hush_obj): (DynamicObject, DynamicObject) = (
                serde_json::from_value(eso_obj)?,
                serde_json::from_value(hush_obj)?,
            );
            let pp = PostParams::default();
            let (a, b) = futures::join!(eso.create(&pp, &eso_obj), hush.create(&pp, &hush_obj));
            self.outcomes(&what, &a, &b);
        }
        Ok(())
    }

    /// A JSON merge patch of one object on both servers.
    pub async fn patch(
        &mut self,
        api_version: &str,
        kind: &str,
        name: &str,
        patch: Value,
    ) -> Result<()> {
        let obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        let (eso, hush, _) = self.prepare_shared(obj)?;
        let pp = PatchParams::default();
        let (eso_patch, hush_patch) = (fill(&patch, Side::Eso)?, fill(&patch, Side::Hush)?);
        let (eso_patch, hush_patch) = (Patch::Merge(&eso_patch), Patch::Merge(&hush_patch));
        let (a, b) = futures::join!(
            eso.patch(name, &pp, &eso_patch),
            hush.patch(name, &pp, &hush_patch)
        );
        self.outcomes(&format!("patch {kind} {name}"), &a, &b);
        Ok(())
    }

    /// Deletes one object on both servers.
    pub async fn delete(&mut self, api_version: &str, kind: &str, name: &str) -> Result<()> {
        let obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        let (eso, hush, _) = self.prepare_shared(obj)?;
        let dp = DeleteParams::default();
        let (a, b) = futures::join!(eso.delete(name, &dp), hush.delete(name, &dp));
        let (a, b) = (a.map(|_| ()), b.map(|_| ()));
        let show = |r: &Result<(), kube::Error>| match r {
            Ok(()) => "accepted".to_owned(),
            Err(kube::Error::Api(s)) => format!("refused ({} {})", s.code, s.reason),
            Err(e) => format!("failed ({e})"),
        };
        if show(&a) != show(&b) {
            self.peer.record(vec![self.finding(
                "write",
                &format!("delete {kind} {name}"),
                show(&a),
                show(&b),
            )]);
        }
        Ok(())
    }

    fn outcomes(
        &self,
        what: &str,
        eso: &Result<DynamicObject, kube::Error>,
        hush: &Result<DynamicObject, kube::Error>,
    ) {
        let (a, b) = (outcome(eso), outcome(hush));
        if a != b {
            self.peer.record(vec![self.finding("write", what, a, b)]);
        } else if self.strict && eso.is_err() {
            // Both refused: the case did not test what it was written for.
            self.peer.record(vec![self.finding(
                "write",
                what,
                format!("{a} on both sides (a written case must be accepted)"),
                format!("{hush:?}"),
            )]);
        }
    }

    fn finding(&self, step: &str, path: &str, eso: String, hush: String) -> Finding {
        Finding {
            case: self.case.clone(),
            step: step.to_owned(),
            path: path.to_owned(),
            eso,
            hush,
        }
    }

    /// Waits until both sides settle, then compares them; differences are findings of `step`.
    pub async fn compare(&mut self, step: &str, wait: Wait) -> Result<()> {
        let before = self.before.take();
        // The step's change was made before this: a refresh counts only if it began later.
        let since = k8s_openapi::jiff::Timestamp::now();
        let (eso, hush) = futures::join!(
            settle(
                &self.peer.eso,
                &self.namespaces,
                &self.ns,
                self.shape,
                wait,
                before.as_ref().map(|b| (&b.0, since))
            ),
            settle(
                &self.peer.hush,
                &self.namespaces,
                &self.ns,
                self.shape,
                wait,
                before.as_ref().map(|b| (&b.1, since))
            ),
        );
        let (eso, hush) = (eso.context("ESO side")?, hush.context("hush side")?);
        let mut found = Vec::new();
        for (side, s) in [("ESO", &eso), ("hush", &hush)] {
            if !s.settled {
                found.push(self.finding(
                    step,
                    "settle",
                    format!("{side} did not settle within {SETTLE_TIMEOUT:?}"),
                    s.unstable.join("; "),
                ));
            }
        }
        diff_values(
            "",
            &Value::Object(eso.objects.clone().into_iter().collect()),
            &Value::Object(hush.objects.clone().into_iter().collect()),
            &mut |path, a, b| found.push(self.finding(step, path, a, b)),
        );
        self.peer.record(found);
        self.before = Some((eso, hush));
        Ok(())
    }

    /// Compares what each side left somewhere outside the API servers (what a PushSecret wrote
    /// to Vault): every difference is a finding of `step` under `what`.
    pub fn compare_values(&self, step: &str, what: &str, eso: &Value, hush: &Value) {
        let mut found = Vec::new();
        diff_values(what, eso, hush, &mut |path, a, b| {
            found.push(self.finding(step, path, a, b));
        });
        self.peer.record(found);
    }

    /// The last snapshot of `side` (after [`Pair::compare`]).
    pub fn snapshot(&self, side: Side) -> Option<&Snapshot> {
        self.before.as_ref().map(|(e, h)| match side {
            Side::Eso => e,
            Side::Hush => h,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

/// What one side shows, normalized for comparison.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `Kind/namespace/name` → normalized object.
    pub objects: BTreeMap<String, Value>,
    /// `refreshTime` per ExternalSecret (a reconcile happened), not compared.
    pub refresh_times: BTreeMap<String, Value>,
    /// ExternalSecrets that refresh within seconds (`refreshInterval` up to 10 s).
    pub refreshing: BTreeSet<String>,
    /// Every ExternalSecret has a `Ready` condition.
    pub ready: bool,
    pub settled: bool,
    /// When not settled: what changed between the last two looks.
    pub unstable: Vec<String>,
}

impl Snapshot {
    /// The normalized object `Kind/namespace/name`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.objects.get(key)
    }
}

async fn settle(
    client: &Client,
    namespaces: &[String],
    prefix: &str,
    shape: Option<Shape>,
    wait: Wait,
    before: Option<(&Snapshot, k8s_openapi::jiff::Timestamp)>,
) -> Result<Snapshot> {
    let start = Instant::now();
    let mut last: Option<Snapshot> = None;
    let mut stable_since = Instant::now();
    loop {
        let snap = snapshot(client, namespaces, prefix, shape).await?;
        let reconciled = match (wait, before) {
            (Wait::Refreshed, Some((b, since))) => es_reconciled_since(b, &snap, since),
            _ => true,
        };
        let same = last.as_ref().is_some_and(|l| l.objects == snap.objects);
        if !same {
            stable_since = Instant::now();
        }
        let waited = start.elapsed();
        if same
            && reconciled
            && stable_since.elapsed() >= STABLE_FOR
            && (snap.ready || waited > SETTLE_TIMEOUT / 2)
        {
            return Ok(Snapshot {
                settled: true,
                ..snap
            });
        }
        if waited > SETTLE_TIMEOUT {
            let mut unstable = Vec::new();
            if let Some(l) = &last {
                diff_values(
                    "",
                    &Value::Object(l.objects.clone().into_iter().collect()),
                    &Value::Object(snap.objects.clone().into_iter().collect()),
                    &mut |p, a, b| unstable.push(format!("{p}: {a} -> {b}")),
                );
            }
            if !snap.ready {
                unstable.push("an ExternalSecret has no Ready condition".into());
            }
            if !reconciled {
                unstable.push("an ExternalSecret was not reconciled again".into());
            }
            return Ok(Snapshot {
                settled: false,
                unstable,
                ..snap
            });
        }
        last = Some(snap);
        tokio::time::sleep(POLL).await;
    }
}

/// A Go duration of whole seconds, minutes or hours (`2s`, `1m`, `1h`), in seconds.
fn seconds(d: &str) -> Option<f64> {
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    })
}

/// Every ExternalSecret of `before` that refreshes within seconds was reconciled again: its
/// status moved, or its refresh time (whole seconds, when the reconcile began) is after `since`
/// (a refresh between the last snapshot and the step's change read the old data).
fn es_reconciled_since(
    before: &Snapshot,
    now: &Snapshot,
    since: k8s_openapi::jiff::Timestamp,
) -> bool {
    let after_since = |t: Option<&Value>| {
        t.and_then(Value::as_str)
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .is_some_and(|t| t.as_second() > since.as_second())
    };
    before.refreshing.iter().all(|k| {
        // A failing ExternalSecret shows no progress (refreshTime moves only on success).
        let failing = now.objects.get(k).is_some_and(|o| {
            o["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "False")
            })
        });
        failing
            || !now.objects.contains_key(k)
            || after_since(now.refresh_times.get(k))
            || before.objects.get(k).map(|o| &o["status"])
                != now.objects.get(k).map(|o| &o["status"])
    })
}

async fn list(client: &Client, ns: Option<&str>, kind: &str) -> Result<Vec<Value>> {
    let ar = es_resource(kind);
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    Ok(api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {kind}"))?
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
        .collect())
}

/// One side's objects of a case: the namespaces' Secrets, ExternalSecrets, SecretStores and
/// event reasons, and the cluster-scoped stores and ClusterExternalSecrets named after it.
pub async fn snapshot(
    client: &Client,
    namespaces: &[String],
    prefix: &str,
    shape: Option<Shape>,
) -> Result<Snapshot> {
    let mut raw: Vec<(String, Value)> = Vec::new();
    for ns in namespaces {
        for kind in ["Secret", "ExternalSecret", "SecretStore", "PushSecret"] {
            for o in list(client, Some(ns), kind).await? {
                raw.push((kind.to_owned(), o));
            }
        }
    }
    for kind in [
        "ClusterSecretStore",
        "ClusterExternalSecret",
        "ClusterPushSecret",
    ] {
        for o in list(client, None, kind).await? {
            if o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
            {
                raw.push((kind.to_owned(), o));
            }
        }
    }
    let key = |kind: &str, o: &Value| {
        format!(
            "{kind}/{}/{}",
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        )
    };
    let uids: HashMap<String, String> = raw
        .iter()
        .filter_map(|(kind, o)| {
            Some((
                o["metadata"]["uid"].as_str()?.to_owned(),
                format!("{kind}/{}", o["metadata"]["name"].as_str()?),
            ))
        })
        .collect();
    // What the garbage collector would delete: objects whose controller owner is gone, and
    // then their dependents.
    let mut live = uids.clone();
    loop {
        let gone: Vec<String> = raw
            .iter()
            .filter(|(_, o)| owner_gone(o, &live))
            .filter_map(|(_, o)| o["metadata"]["uid"].as_str().map(str::to_owned))
            .filter(|u| live.contains_key(u))
            .collect();
        if gone.is_empty() {
            break;
        }
        for u in gone {
            live.remove(&u);
        }
    }
    let mut snap = Snapshot {
        ready: true,
        ..Snapshot::default()
    };
    for (kind, o) in &raw {
        if o["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !live.contains_key(u))
        {
            continue;
        }
        let k = key(kind, o);
        let normalized = match kind.as_str() {
            "Secret" => normalize_secret(o, &uids, shape),
            "PushSecret" => {
                snap.ready &= has_ready_condition(o);
                normalize_push_secret(o, &uids)
            }
            "ExternalSecret" => {
                snap.refresh_times
                    .insert(k.clone(), o["status"]["refreshTime"].clone());
                if o["spec"]["refreshInterval"]
                    .as_str()
                    .and_then(seconds)
                    .is_some_and(|s| s > 0.0 && s <= 10.0)
                {
                    snap.refreshing.insert(k.clone());
                }
                snap.ready &= has_ready_condition(o);
                normalize_external_secret(o, &uids)
            }
            "ClusterExternalSecret" => normalize_ces(o),
            "ClusterPushSecret" => normalize_cps(o),
            _ => normalize_store(o),
        };
        snap.objects.insert(k, normalized);
    }
    for ns in namespaces {
        for (object, reasons) in event_reasons(client, ns).await? {
            snap.objects
                .insert(format!("Events/{ns}/{object}"), json!(reasons));
        }
    }
    Ok(snap)
}

fn owner_gone(o: &Value, uids: &HashMap<String, String>) -> bool {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["controller"] == true)
        .filter(|r| {
            matches!(
                r["kind"].as_str(),
                Some("ExternalSecret" | "ClusterExternalSecret" | "ClusterPushSecret")
            )
        })
        .any(|r| r["uid"].as_str().is_none_or(|u| !uids.contains_key(u)))
}

fn owner_refs(o: &Value, uids: &HashMap<String, String>) -> Value {
    let refs: Vec<Value> = o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let uid = r["uid"].as_str().unwrap_or_default();
            json!({
                "apiVersion": r["apiVersion"], "kind": r["kind"], "name": r["name"],
                "controller": r["controller"], "blockOwnerDeletion": r["blockOwnerDeletion"],
                "uid": uids.get(uid).map_or_else(|| "<foreign>".to_owned(), |o| format!("<uid of {o}>")),
            })
        })
        .collect();
    json!(refs)
}

fn map_or_empty(v: &Value) -> Value {
    if v.is_object() { v.clone() } else { json!({}) }
}

fn replace_uids(v: &Value, uids: &HashMap<String, String>) -> Value {
    let mut text = v.to_string();
    for (uid, name) in uids {
        text = text.replace(uid, &format!("<uid of {name}>"));
    }
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

const DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";

fn has_ready_condition(o: &Value) -> bool {
    o["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"))
}

fn normalize_secret(o: &Value, uids: &HashMap<String, String>, shape: Option<Shape>) -> Value {
    let data: BTreeMap<String, Value> = o["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            let shown = match (String::from_utf8(bytes.clone()), shape) {
                (Ok(s), Some(shape)) => shape(k, &s),
                (Ok(s), None) => json!(s),
                (Err(_), _) => json!({"base64": v}),
            };
            (k.clone(), shown)
        })
        .collect();
    // The ExternalSecret field managers' entries: what a later write removes (ESO's
    // getManagedDataKeys) and what a server-side-apply tool sees.
    let managers: Vec<Value> = o["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["manager"]
                .as_str()
                .is_some_and(|n| n.starts_with("externalsecrets.external-secrets.io/"))
        })
        .map(|m| {
            json!({"manager": m["manager"], "operation": m["operation"],
                "subresource": m["subresource"], "fields": replace_uids(&m["fieldsV1"], uids)})
        })
        .collect();
    let mut annotations = map_or_empty(&o["metadata"]["annotations"]);
    if shape.is_some() && !annotations[DATA_HASH].is_null() {
        // The hash of generated values.
        annotations[DATA_HASH] = json!("<hash of the data>");
    }
    json!({
        "type": o["type"],
        "immutable": o["immutable"].as_bool().unwrap_or(false),
        "data": data,
        "labels": map_or_empty(&o["metadata"]["labels"]),
        "annotations": annotations,
        "ownerReferences": owner_refs(o, uids),
        "finalizers": o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default(),
        "managedFields": managers,
    })
}

fn conditions(o: &Value) -> Value {
    let mut c: Vec<Value> = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"type": c["type"], "status": c["status"], "reason": c["reason"],
                "message": c["message"]})
        })
        .collect();
    c.sort_by_key(|c| c["type"].to_string());
    json!(c)
}

fn normalize_external_secret(o: &Value, uids: &HashMap<String, String>) -> Value {
    json!({
        "labels": map_or_empty(&o["metadata"]["labels"]),
        "annotations": map_or_empty(&o["metadata"]["annotations"]),
        "ownerReferences": owner_refs(o, uids),
        "finalizers": o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default(),
        "status": {
            "conditions": conditions(o),
            "binding": o["status"]["binding"],
            "syncedResourceVersion": o["status"]["syncedResourceVersion"],
            "refreshTime": if o["status"]["refreshTime"].is_null() { "unset" } else { "set" },
        },
    })
}

/// A PushSecret as a user sees it: its metadata and status (what was pushed where is in
/// `syncedPushSecrets`, the values themselves in the provider).
fn normalize_push_secret(o: &Value, uids: &HashMap<String, String>) -> Value {
    json!({
        "labels": map_or_empty(&o["metadata"]["labels"]),
        "annotations": map_or_empty(&o["metadata"]["annotations"]),
        "ownerReferences": owner_refs(o, uids),
        "finalizers": o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default(),
        "status": {
            "conditions": conditions(o),
            "syncedPushSecrets": o["status"]["syncedPushSecrets"],
            "syncedResourceVersion": o["status"]["syncedResourceVersion"],
            "refreshTime": if o["status"]["refreshTime"].is_null() { "unset" } else { "set" },
        },
    })
}

fn normalize_store(o: &Value) -> Value {
    // A refused store's message quotes the provider's error, which no two clients word alike.
    let mut c = conditions(o);
    for c in c.as_array_mut().into_iter().flatten() {
        if c["status"] != "True" {
            c["message"] = json!("(provider error)");
        }
    }
    json!({
        "finalizers": o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default(),
        "status": {"conditions": c, "capabilities": o["status"]["capabilities"]},
    })
}

fn normalize_ces(o: &Value) -> Value {
    let sorted = |v: &Value| {
        let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
        items.sort_by_key(ToString::to_string);
        json!(items)
    };
    json!({
        "finalizers": o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default(),
        "status": {
            "conditions": conditions(o),
            "externalSecretName": o["status"]["externalSecretName"],
            "provisionedNamespaces": sorted(&o["status"]["provisionedNamespaces"]),
            "failedNamespaces": sorted(&o["status"]["failedNamespaces"]),
        },
    })
}

fn normalize_cps(o: &Value) -> Value {
    let sorted = |v: &Value| {
        let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
        items.sort_by_key(ToString::to_string);
        json!(items)
    };
    json!({
        "finalizers": o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default(),
        "status": {
            "conditions": conditions(o),
            "pushSecretName": o["status"]["pushSecretName"],
            "provisionedNamespaces": sorted(&o["status"]["provisionedNamespaces"]),
            "failedNamespaces": sorted(&o["status"]["failedNamespaces"]),
        },
    })
}

/// The reasons of the events about each object (`Kind/name`), by type.
async fn event_reasons(client: &Client, ns: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in list(client, Some(ns), "Event").await? {
        let object = format!(
            "{}/{}",
            e["involvedObject"]["kind"].as_str().unwrap_or_default(),
            e["involvedObject"]["name"].as_str().unwrap_or_default()
        );
        out.entry(object).or_default().insert(format!(
            "{} {}",
            e["type"].as_str().unwrap_or_default(),
            e["reason"].as_str().unwrap_or_default()
        ));
    }
    Ok(out)
}

/// Calls `found(path, eso, hush)` for every leaf where `a` (ESO) and `b` (hush) differ.
pub fn diff_values(path: &str, a: &Value, b: &Value, found: &mut impl FnMut(&str, String, String)) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_values(&p, va, vb, found),
                    (Some(va), None) => found(&p, va.to_string(), "absent".into()),
                    (None, Some(vb)) => found(&p, "absent".into(), vb.to_string()),
                    (None, None) => {}
                }
            }
        }
        _ if a == b => {}
        _ => found(path, a.to_string(), b.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Provider data shared by both sides.

/// Writes a KV v2 secret at `secret/<path>` (OpenBao dev server).
pub async fn vault_put(path: &str, data: Value) -> Result<()> {
    crate::external_harness::bao(
        "POST",
        &format!("secret/data/{path}"),
        Some(json!({"data": data})),
    )
    .await?;
    Ok(())
}

/// A GET of `path` on the OpenBao dev server (root token); `None` on 404 (also what a LIST of
/// an empty folder answers).
async fn vault_get(path: &str) -> Result<Option<Value>> {
    let url = format!(
        "{}/v1/{path}",
        crate::external_harness::env("HUSH_VAULT_ADDR")
    );
    let resp = reqwest::Client::new()
        .get(url)
        .header(
            "X-Vault-Token",
            crate::external_harness::env("HUSH_VAULT_TOKEN"),
        )
        .send()
        .await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
    Ok(Some(serde_json::from_str(&resp.text().await?)?))
}

/// Everything in the KV mount `mount` (`version` "v1" or "v2"): path → its data, and for v2
/// its `custom_metadata`, the number of versions written and which are deleted or destroyed.
pub async fn vault_tree(mount: &str, version: &str) -> Result<Value> {
    let v2 = version == "v2";
    let mut out = serde_json::Map::new();
    let mut folders = vec![String::new()];
    while let Some(folder) = folders.pop() {
        ensure!(out.len() < 1000, "more than 1000 secrets under {mount}");
        let list = if v2 {
            format!("{mount}/metadata/{folder}?list=true")
        } else {
            format!("{mount}/{folder}?list=true")
        };
        let Some(listed) = vault_get(&list).await? else {
            continue;
        };
        for key in listed["data"]["keys"].as_array().into_iter().flatten() {
            let path = format!("{folder}{}", key.as_str().unwrap_or_default());
            if path.ends_with('/') {
                folders.push(path);
                continue;
            }
            let entry = if v2 {
                let meta = vault_get(&format!("{mount}/metadata/{path}"))
                    .await?
                    .unwrap_or_default();
                let data = vault_get(&format!("{mount}/data/{path}")).await?;
                let versions: BTreeMap<String, Value> = meta["data"]["versions"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(n, v)| {
                        let state = if v["destroyed"] == true {
                            "destroyed"
                        } else if v["deletion_time"].as_str().is_some_and(|t| !t.is_empty()) {
                            "deleted"
                        } else {
                            "live"
                        };
                        (n.clone(), json!(state))
                    })
                    .collect();
                json!({"data": data.map_or(Value::Null, |d| d["data"]["data"].clone()),
                    "custom_metadata": meta["data"]["custom_metadata"], "versions": versions})
            } else {
                let data = vault_get(&format!("{mount}/{path}")).await?;
                json!({"data": data.map_or(Value::Null, |d| d["data"].clone())})
            };
            out.insert(path, entry);
        }
    }
    Ok(Value::Object(out))
}

/// Deletes every version of the KV v2 secret at `secret/<path>`.
pub async fn vault_delete(path: &str) -> Result<()> {
    let url = format!(
        "{}/v1/secret/metadata/{path}",
        crate::external_harness::env("HUSH_VAULT_ADDR")
    );
    let resp = reqwest::Client::new()
        .delete(url)
        .header(
            "X-Vault-Token",
            crate::external_harness::env("HUSH_VAULT_TOKEN"),
        )
        .send()
        .await?;
    ensure!(
        resp.status().is_success(),
        "deleting secret/{path}: {}",
        resp.status()
    );
    Ok(())
}

/// A Secrets Manager secret (moto) with a string value.
pub async fn aws_secret(name: &str, value: &str) -> Result<()> {
    crate::external_harness::aws(
        "secretsmanager",
        "secretsmanager",
        "CreateSecret",
        json!({"Name": name, "SecretString": value}),
    )
    .await?;
    Ok(())
}

/// A Parameter Store parameter (moto).
pub async fn aws_parameter(name: &str, value: &str) -> Result<()> {
    crate::external_harness::aws(
        "ssm",
        "AmazonSSM",
        "PutParameter",
        json!({"Name": name, "Value": value, "Type": "String", "Overwrite": true}),
    )
    .await?;
    Ok(())
}

/// The manifests of the Secret `vault-token` that token-auth stores read (ESO's docs name it
/// so), with the dev server's root token.
pub fn vault_token_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token"},
        "stringData": {"token": crate::external_harness::env("HUSH_VAULT_TOKEN")}})
}

/// A credentials Secret for the AWS provider (moto accepts any).
pub fn aws_credentials_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "awssm-secret"},
        "stringData": {"access-key": "testing", "secret-access-key": "testing"}})
}

// ---------------------------------------------------------------------------------------------
// Counting.

/// The sum of metric `name`'s samples whose labels contain every `label="value"` of `labels`,
/// from Prometheus text.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// The Vault requests in the audit log after byte `from` whose path contains `needle`.
pub fn vault_requests(from: u64, needle: &str) -> Result<Vec<String>> {
    Ok(crate::external_harness::vault_request_paths(from)?
        .into_iter()
        .filter(|p| p.contains(needle))
        .collect())
}
