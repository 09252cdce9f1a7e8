//! The sealing-key lifecycle through a real controller (`hush controller` on the real API server,
//! `scripts/kube-testenv.sh`): SealedSecrets unsealed with the first key, `hush status` counting
//! them per key, a new key (SIGUSR1), `hush seal --re-encrypt --dir` re-sealing the repository for
//! it in place (JSON summary), the re-sealed files deployed, the old key needed by none and then
//! retired by `--key-retire-after` (label, event, metric) while the newest stays.
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush --test seal_dir_e2e --
//! --include-ignored`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use hush_testkit::process::free_port;
use hush_testkit::{TestNamespace, client, install_repo_crds};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};

fn hush(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hush");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The controller process; killed when dropped.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fetch_cert(url: &str) -> Option<String> {
    let o = hush(&["seal", "--controller-url", url, "--fetch-cert"], b"");
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Waits until the controller's certificate is there and differs from `old`.
fn wait_for_cert(url: &str, old: Option<&str>) -> Result<String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(cert) = fetch_cert(url)
            && Some(cert.as_str()) != old
        {
            return Ok(cert);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    bail!("the controller at {url} served no new certificate within 60 s")
}

/// The key Secret whose certificate is `cert`: its name, and a backup file kubeseal reads.
async fn key_backup(keys: &Api<Secret>, cert: &str, dir: &Path) -> Result<(String, PathBuf)> {
    let list = keys
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"))
        .await?;
    for s in list.items {
        let data = s.data.clone().unwrap_or_default();
        if data.get("tls.crt").map(|b| b.0.as_slice()) == Some(cert.as_bytes()) {
            let name = s.metadata.name.clone().unwrap_or_default();
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, serde_json::to_vec(&s)?)?;
            return Ok((name, path));
        }
    }
    bail!("no key Secret holds the served certificate")
}

fn secret(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\nstringData:\n  password: {value}\n"
    )
}

/// Applies the SealedSecret in a JSON file to the cluster (server-side apply).
async fn apply(api: &Api<DynamicObject>, file: &Path) -> Result<()> {
    let obj: DynamicObject = serde_json::from_slice(&std::fs::read(file)?)?;
    let name = obj.metadata.name.clone().context("no name")?;
    api.patch(
        &name,
        &PatchParams::apply("seal-dir-test").force(),
        &Patch::Apply(&obj),
    )
    .await?;
    Ok(())
}

/// Waits until the controller recorded `key` as the key of the Secret `name`.
async fn wait_for_key(secrets: &Api<Secret>, name: &str, key: &str) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(s) = secrets.get_opt(name).await?
            && s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("sealedsecrets.hush.dev/key"))
                .map(String::as_str)
                == Some(key)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("Secret {name} was not unsealed with key {key} within 60 s")
}

/// The `sealed-secrets-key` label of a key Secret.
async fn key_label(keys: &Api<Secret>, name: &str) -> Result<String> {
    let s = keys.get(name).await?;
    Ok(s.metadata
        .labels
        .and_then(|l| {
            l.get("sealedsecrets.bitnami.com/sealed-secrets-key")
                .cloned()
        })
        .unwrap_or_default())
}

/// The controller's metrics page (plain HTTP/1.0 over loopback).
fn reqwest_metrics(port: u16) -> Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// `hush status -o json` for the test namespace: each key's `neededBy`.
fn needed_by(ns: &str) -> Result<serde_json::Value> {
    let o = hush(
        &[
            "status",
            "-n",
            ns,
            "--controller-namespace",
            ns,
            "-o",
            "json",
        ],
        b"",
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .with_context(|| String::from_utf8_lossy(&o.stderr).into_owned())?;
    let mut out = serde_json::Map::new();
    for k in report["keys"].as_array().context("keys")? {
        out.insert(
            k["name"].as_str().unwrap_or_default().to_owned(),
            k["neededBy"].clone(),
        );
    }
    Ok(out.into())
}

fn opens_with(file: &Path, key: &Path) -> bool {
    hush(
        &[
            "seal",
            "--recovery-unseal",
            "--recovery-private-key",
            key.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ],
        b"",
    )
    .status
    .success()
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh (KUBECONFIG)"]
async fn key_lifecycle_reseal_a_repository_count_and_retire_the_old_key() -> Result<()> {
    let client = client().await?;
    install_repo_crds(&client).await?;
    let ns = TestNamespace::create(&client, "seal-dir").await?;
    let port = free_port()?;
    let metrics = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args([
            "controller",
            "--controllers",
            "sealed",
            "--key-namespace",
            ns.name(),
        ])
        .args(["--listen-addr", &format!("127.0.0.1:{port}")])
        .args(["--listen-metrics-addr", &format!("127.0.0.1:{metrics}")])
        .args(["--leader-election-id", "seal-dir-test"])
        // Only its own namespace: other tests' SealedSecrets are not this controller's.
        .args(["--all-namespaces=false"])
        // Retire keys no SealedSecret needs once they are a second old, checked every 2 s.
        .args(["--key-retire-after", "1s", "--resync-period", "2s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting hush controller")?;
    let controller = Controller(child);
    let old_cert = wait_for_cert(&url, None)?;

    // A repository sealed for the first key, with a file that is not a SealedSecret.
    let repo = tempfile::tempdir()?;
    let cert_file = repo.path().join("old-cert.pem");
    std::fs::write(&cert_file, &old_cert)?;
    std::fs::create_dir_all(repo.path().join("apps/web"))?;
    for (file, name) in [
        ("apps/db.yaml", "db"),
        ("apps/web/api.json", "api"),
        ("apps/cache.json", "cache"),
    ] {
        let out = repo.path().join(file);
        let o = hush(
            &[
                "seal",
                "--cert",
                cert_file.to_str().unwrap(),
                "-w",
                out.to_str().unwrap(),
            ],
            secret(ns.name(), name, "s3cr3t").as_bytes(),
        );
        ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::write(repo.path().join("apps/config.yaml"), "kind: ConfigMap\n")?;
    // One file of 30 SealedSecrets: more than the burst of the controller's /v1/rotate limit
    // (20), so re-sealing it goes through 429s.
    let many: String = (0..30)
        .map(|i| format!("---\n{}", secret(ns.name(), &format!("bulk-{i}"), "s3cr3t")))
        .collect();
    let bulk = repo.path().join("apps/bulk.yaml");
    let o = hush(
        &[
            "seal",
            "--cert",
            cert_file.to_str().unwrap(),
            "-w",
            bulk.to_str().unwrap(),
        ],
        many.as_bytes(),
    );
    ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Two of them are in the cluster, unsealed with the first key.
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("bitnami.com", "v1alpha1", "SealedSecret"),
        "sealedsecrets",
    );
    let sealed_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    let keys: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let backups = tempfile::tempdir()?;
    let (old_name, old_key) = key_backup(&keys, &old_cert, backups.path()).await?;
    let deployed = ["apps/web/api.json", "apps/cache.json"];
    for file in deployed {
        apply(&sealed_api, &repo.path().join(file)).await?;
    }
    for name in ["api", "cache"] {
        wait_for_key(&keys, name, &old_name).await?;
    }
    let needed = needed_by(ns.name())?;
    ensure!(needed[&old_name] == 2, "{needed}");
    ensure!(key_label(&keys, &old_name).await? == "active");

    // A new key (SIGUSR1, as Bitnami's controller), then the repository is re-sealed for it.
    let pid = controller.0.id().to_string();
    ensure!(
        Command::new("kill")
            .args(["-USR1", &pid])
            .status()?
            .success()
    );
    let new_cert = wait_for_cert(&url, Some(&old_cert))?;
    // The old key is old enough but still needed: several retirement rounds leave it alone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(
        key_label(&keys, &old_name).await? == "active",
        "a needed key was retired"
    );
    let apps = repo.path().join("apps");
    let o = hush(
        &[
            "seal",
            "--controller-url",
            &url,
            "--re-encrypt",
            "--dir",
            apps.to_str().unwrap(),
            "--output-format",
            "json",
        ],
        b"",
    );
    ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    ensure!(
        summary["re-sealed"] == 4 && summary["skipped"] == 1 && summary["failed"] == 0,
        "{summary}"
    );
    ensure!(!String::from_utf8_lossy(&o.stdout).contains("s3cr3t"));

    let (new_name, new_key) = key_backup(&keys, &new_cert, backups.path()).await?;
    for file in ["apps/db.yaml", "apps/web/api.json", "apps/cache.json"] {
        let f = repo.path().join(file);
        ensure!(
            opens_with(&f, &new_key),
            "{file} does not open with the new key"
        );
        ensure!(
            !opens_with(&f, &old_key),
            "{file} still opens with the old key"
        );
    }
    ensure!(std::fs::read_to_string(repo.path().join("apps/config.yaml"))? == "kind: ConfigMap\n");
    // Deployed, the re-sealed files move the cluster to the new key: the old one is needed by
    // no SealedSecret any more (the runbook's check before retiring it).
    for file in deployed {
        apply(&sealed_api, &repo.path().join(file)).await?;
    }
    for name in ["api", "cache"] {
        wait_for_key(&keys, name, &new_name).await?;
    }
    // Needed by none now: the controller retires it (label, event, metric); the newest stays.
    let start = Instant::now();
    while key_label(&keys, &old_name).await? != "retired" {
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the unused key was not retired"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(key_label(&keys, &new_name).await? == "active");
    // The event and the metric follow the relabelling: wait for them (bounded).
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    let start = Instant::now();
    loop {
        let retired_events: Vec<Event> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("KeyRetired"))
            .collect();
        let scrape = reqwest_metrics(metrics)?;
        let seen = retired_events.len() == 1
            && retired_events[0]
                .regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                == Some(old_name.as_str())
            && scrape.contains("hush_sealed_keys_retired_total 1");
        if seen {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(10) && retired_events.len() <= 1,
            "KeyRetired events {retired_events:?}; metrics {scrape}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The bulk file went through the rotate limit's 429s (retried, none failed).
    let scrape = reqwest_metrics(metrics)?;
    ensure!(
        scrape.lines().any(
            |l| l.starts_with("sealed_secrets_controller_http_requests_total")
                && l.contains("/v1/rotate")
                && l.contains("code=\"429\"")
        ),
        "no 429 from /v1/rotate: {scrape}"
    );
    // hush status lists the active keys only, each needed by what it opens.
    let needed = needed_by(ns.name())?;
    ensure!(
        needed.get(&old_name).is_none() && needed[&new_name] == 2,
        "{needed}"
    );
    // The files still open with the new key only; the retired key's Secret is kept (a backup).
    ensure!(keys.get_opt(&old_name).await?.is_some());

    // A SealedSecret no key opens fails alone, named; exit 1.
    let foreign = hush(
        &["seal", "--cert", new_cert_of_other().to_str().unwrap()],
        secret(ns.name(), "x", "y").as_bytes(),
    );
    ensure!(foreign.status.success());
    std::fs::write(apps.join("foreign.json"), &foreign.stdout)?;
    let o = hush(
        &[
            "seal",
            "--controller-url",
            &url,
            "--re-encrypt",
            "--dir",
            apps.to_str().unwrap(),
        ],
        b"",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(o.status.code() == Some(1), "{err}");
    ensure!(
        err.contains("6 files: 4 re-sealed, 0 unchanged, 1 skipped, 1 failed")
            && err.contains("foreign.json"),
        "{err}"
    );
    drop(controller);
    ns.delete().await?;
    Ok(())
}

/// A certificate of a key no controller has.
fn new_cert_of_other() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hush-seal-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("other.pem");
    let key = hush_crypto::rsa::RsaPrivateKey::generate(2048).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let c = hush_crypto::cert::self_signed(
        &key,
        "",
        now - 60,
        now + 3600,
        &mut hush_crypto::SystemEntropy,
    )
    .unwrap();
    std::fs::write(&cert, c.to_pem()).unwrap();
    cert
}
