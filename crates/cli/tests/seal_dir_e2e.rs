//! `hush seal --re-encrypt --dir` through a real controller: `hush controller` on the real API
//! server (`scripts/kube-testenv.sh`), a new sealing key (SIGUSR1), and a repository of
//! SealedSecret files re-sealed for it in place, with the JSON summary.
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
use kube::api::{Api, ListParams};

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

/// The key Secret whose certificate is `cert`, written as a backup file kubeseal reads.
async fn key_backup(keys: &Api<Secret>, cert: &str, dir: &Path) -> Result<PathBuf> {
    let list = keys
        .list(&ListParams::default().labels("sealedsecrets.bitnami.com/sealed-secrets-key"))
        .await?;
    for s in list.items {
        let data = s.data.clone().unwrap_or_default();
        if data.get("tls.crt").map(|b| b.0.as_slice()) == Some(cert.as_bytes()) {
            let path = dir.join(format!(
                "{}.json",
                s.metadata.name.clone().unwrap_or_default()
            ));
            std::fs::write(&path, serde_json::to_vec(&s)?)?;
            return Ok(path);
        }
    }
    bail!("no key Secret holds the served certificate")
}

fn secret(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: app\nstringData:\n  password: {value}\n"
    )
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
async fn re_encrypt_dir_reseals_a_repository_for_the_newest_key() -> Result<()> {
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
    for (file, name) in [("apps/db.yaml", "db"), ("apps/web/api.json", "api")] {
        let out = repo.path().join(file);
        let o = hush(
            &[
                "seal",
                "--cert",
                cert_file.to_str().unwrap(),
                "-w",
                out.to_str().unwrap(),
            ],
            secret(name, "s3cr3t").as_bytes(),
        );
        ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::write(repo.path().join("apps/config.yaml"), "kind: ConfigMap\n")?;

    // A new key (SIGUSR1, as Bitnami's controller), then the repository is re-sealed for it.
    let pid = controller.0.id().to_string();
    ensure!(
        Command::new("kill")
            .args(["-USR1", &pid])
            .status()?
            .success()
    );
    let new_cert = wait_for_cert(&url, Some(&old_cert))?;
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
        summary["re-sealed"] == 2 && summary["skipped"] == 1 && summary["failed"] == 0,
        "{summary}"
    );
    ensure!(!String::from_utf8_lossy(&o.stdout).contains("s3cr3t"));

    let keys: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let dir = tempfile::tempdir()?;
    let old_key = key_backup(&keys, &old_cert, dir.path()).await?;
    let new_key = key_backup(&keys, &new_cert, dir.path()).await?;
    for file in ["apps/db.yaml", "apps/web/api.json"] {
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

    // A SealedSecret no key opens fails alone, named; exit 1.
    let foreign = hush(
        &["seal", "--cert", new_cert_of_other().to_str().unwrap()],
        secret("x", "y").as_bytes(),
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
        err.contains("4 files: 2 re-sealed, 0 unchanged, 1 skipped, 1 failed")
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
