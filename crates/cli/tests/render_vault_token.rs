//! A repository's SOPS file names its own Vault (`sops.hc_vault[].vault_address`); the Vault token
//! is the operator's. `hush render` (the Argo CD plugin), the `ksops` persona and the Flux-style
//! key directory send the token only to an address the operator configured (`VAULT_ADDR`,
//! `HUSH_SOPS_VAULT_ADDRS`, `--sops-vault-addr`); any other address fails the file with an error
//! naming the file and the address, and nothing reaches it. The address here is a loopback
//! listener that records every connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "canary-operator-vault-token-6c1d";

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

/// A listener that records what every connection sends (up to a second of it) and closes it.
struct Listener {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                conn.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut got = vec![0u8; 16 * 1024];
                let n = conn.read(&mut got).unwrap_or(0);
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&got[..n]).into_owned());
            }
        });
        Self { url, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// An app directory with one SOPS-encrypted Secret whose only key is Vault transit at `address`.
fn app(address: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        r#"apiVersion: v1
kind: Secret
metadata:
    name: db
stringData:
    password: ENC[AES256_GCM,data:Ox06DPfhM7aEwmTuqfHDjyTPHBJd,iv:KqfAxeFl3qUp6wr/BuQCsEB0yrMT5ezQhdSdrloIsv8=,tag:tiSGcxa3N7AlLt+NqZmTcQ==,type:str]
sops:
    hc_vault:
        - vault_address: {address}
          engine_path: transit
          key_name: app
          created_at: "2026-11-26T05:56:40Z"
          enc: vault:v1:c2VjcmV0LWRhdGEta2V5LWNpcGhlcnRleHQ=
    lastmodified: "2026-11-26T05:56:40Z"
    mac: ENC[AES256_GCM,data:WGEJeXrwRxoXq6ZmS2ULp6lBS3aZ/HKLoOl8rj/vN23/6pYk4uymDrjpmQEUJ3+2IwTyI8bmU8J3n04nFlkpnKL3fXefNnwPKE9CsnZ5y00IKB6HvdkvqLnmUY5qrQIodzgg6pntZhLhsdCYZO232eF11tx8ltqxE82Gv0bNvQA=,iv:xUwZCGmXk5X0si1kBnW50KcryA9IW9qtiZc3XtASY2w=,tag:0t01hOxKFQHmjS/xwBDJNw==,type:str]
    encrypted_regex: ^(data|stringData)$
    version: 3.11.0
"#
    );
    std::fs::write(dir.path().join("secret.enc.yaml"), file).unwrap();
    std::fs::write(
        dir.path().join("generator.yaml"),
        "apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: g\nfiles:\n  - ./secret.enc.yaml\n",
    )
    .unwrap();
    dir
}

/// `program args…` in `cwd` with only the variables given (plus HOME in `cwd`).
fn run(program: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(program);
    c.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", cwd)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn assert_refused(out: &Output, listener: &Listener, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: succeeded");
    assert!(out.stdout.is_empty(), "{what}: printed objects");
    assert!(
        stderr.contains("secret.enc.yaml") && stderr.contains(&listener.url),
        "{what}: the error names neither the file nor the address: {stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{what}: the token is in the error");
    // Whatever the process did, it has exited: nothing more can reach the listener.
    assert!(
        listener.requests().is_empty(),
        "{what}: the repository's address was contacted: {:?}",
        listener.requests()
    );
}

#[test]
fn a_repository_cannot_make_the_plugin_send_the_token_to_its_address() {
    let listener = Listener::start();
    let dir = app(&listener.url);
    let token_env = [("VAULT_TOKEN", TOKEN)];

    let out = run(&hush(), &["render", "."], dir.path(), &token_env);
    assert_refused(&out, &listener, "hush render with VAULT_TOKEN");

    // The Flux-style key directory's token file, and the KSOPS persona (legacy exec mode).
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("sops.vault-token"), TOKEN).unwrap();
    let keys_dir = keys.path().to_str().unwrap();
    let out = run(
        &hush(),
        &["render", ".", "--sops-keys-dir", keys_dir],
        dir.path(),
        &[],
    );
    assert_refused(&out, &listener, "hush render with sops.vault-token");
    let out = run(
        &hush(),
        &["krm", "generator.yaml"],
        dir.path(),
        &[("VAULT_TOKEN", TOKEN), ("HUSH_SOPS_KEYS_DIR", keys_dir)],
    );
    assert_refused(&out, &listener, "hush krm (ksops) with a key directory");

    // An Application's environment cannot add the address (ARGOCD_ENV_ is not the operator's).
    let argocd_env = [
        ("VAULT_TOKEN", TOKEN),
        ("ARGOCD_ENV_HUSH_SOPS_VAULT_ADDRS", listener.url.as_str()),
    ];
    let out = run(&hush(), &["render", "."], dir.path(), &argocd_env);
    assert_refused(&out, &listener, "an ARGOCD_ENV_ allow-list");

    // Control: once the operator names the address, the token does go there, so the silence
    // above is the refusal and not a broken listener.
    let allowed = [
        ("VAULT_TOKEN", TOKEN),
        ("HUSH_SOPS_VAULT_ADDRS", listener.url.as_str()),
    ];
    let out = run(&hush(), &["render", "."], dir.path(), &allowed);
    assert!(!out.status.success(), "the listener is no Vault");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listener.requests().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let requests = listener.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/v1/transit/decrypt/app") && r.contains(TOKEN)),
        "the configured address did not get the token: {requests:?}"
    );
}
