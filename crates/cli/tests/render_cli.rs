//! `hush render`, `hush krm` and the `argocd-vault-plugin` / `ksops` personas as Argo CD and
//! kustomize run them: cwd = the app directory, `ARGOCD_APP_*` in the environment, golden app
//! directories from `tests/render/`. Tests marked `#[ignore]` need `scripts/test.sh` services
//! or peers (`HUSH_PEER_KUSTOMIZE`,
//! `HUSH_PEER_HELM`, `HUSH_PEER_KUBESEAL`, `HUSH_PEER_OPENSSL`, `HUSH_PEER_BAO`); a missing one
//! fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/render")
}

fn keys() -> PathBuf {
    root().join("keys")
}

fn peer(name: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(format!("HUSH_PEER_{name}")) {
        return PathBuf::from(v);
    }
    let file = std::env::var_os("HUSH_PEERS_ENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hush/peers.env"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "peer {name}: cannot read {} ({e}); run scripts/dev-env.sh",
            file.display()
        )
    });
    let key = format!("HUSH_PEER_{name}=");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "peer {name} missing from {}; run scripts/dev-env.sh",
                file.display()
            )
        });
    assert!(
        path.exists(),
        "peer {name}: {} does not exist",
        path.display()
    );
    path
}

/// A directory on `PATH` with the persona links (`argocd-vault-plugin`, `ksops`, `hush`).
fn personas() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["argocd-vault-plugin", "ksops", "hush"] {
        std::os::unix::fs::symlink(hush(), dir.path().join(name)).unwrap();
    }
    dir
}

/// A clean command: no SOPS or Vault variables from the developer's shell.
fn cmd(program: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(cwd);
    for v in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "AVP_TYPE",
        "HUSH_RESEAL_CERT",
        "HUSH_RESEAL_SECRET",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", cwd).env("XDG_CONFIG_HOME", cwd);
    c
}

fn run(mut c: Command, stdin: Option<&[u8]>) -> Output {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn expected(case: &str) -> String {
    std::fs::read_to_string(root().join(case).join("expected.yaml")).unwrap()
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

const CANARIES: &[&str] = &[
    "canary-sops-yaml-7f3a",
    "canary-sops-json-91c2",
    "canary-sops-multi-a",
    "canary-vault-pass-5d1e",
    "canary-vault-old-pass-0b7c",
    "canary-api-key-v1",
    "canary-api-key-v2",
    "canary-kv1-value-44aa",
    "canary-ksops-ini-3e9d",
    "canary-ksops-env-8a1f",
];

fn assert_no_canary(text: &[u8], what: &str) {
    let text = String::from_utf8_lossy(text);
    for c in CANARIES {
        assert!(!text.contains(c), "{what} leaks the secret value {c}");
    }
}

#[test]
fn argocd_style_render_of_plain_and_sops_apps() {
    let links = personas();
    for case in ["plain", "sops"] {
        let app = root().join(case).join("app");
        // `hush render` with no argument renders the working directory, as the CMP does.
        let mut c = cmd(&hush(), &app);
        c.arg("render")
            .env("ARGOCD_APP_NAME", "shop")
            .env("ARGOCD_APP_NAMESPACE", "shop")
            .env("HUSH_SOPS_KEYS_DIR", keys());
        let out = run(c, None);
        assert_eq!(assert_ok(&out, case), expected(case), "{case}");
        assert_no_canary(&out.stderr, case);
        // The argocd-vault-plugin persona.
        let mut c = cmd(&links.path().join("argocd-vault-plugin"), &app);
        c.args(["generate", "."]).env("HUSH_SOPS_KEYS_DIR", keys());
        assert_eq!(
            assert_ok(&run(c, None), case),
            expected(case),
            "{case} (persona)"
        );
    }
}

#[test]
fn stdin_mode_and_persona_generate_dash() {
    let links = personas();
    let input = std::fs::read(root().join("stdin/input.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = cmd(&hush(), dir.path());
    c.args(["render", "-", "--sops-keys-dir"]).arg(keys());
    assert_eq!(
        assert_ok(&run(c, Some(&input)), "render -"),
        expected("stdin")
    );
    let mut c = cmd(&links.path().join("argocd-vault-plugin"), dir.path());
    c.args(["generate", "-"]).env("HUSH_SOPS_KEYS_DIR", keys());
    assert_eq!(
        assert_ok(&run(c, Some(&input)), "generate -"),
        expected("stdin")
    );
}

#[test]
fn failures_exit_non_zero_with_empty_stdout_and_no_secrets() {
    // Zero objects.
    let mut c = cmd(&hush(), &root().join("empty/app"));
    c.arg("render");
    let out = run(c, None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Kubernetes objects"));
    // ... unless allowed.
    let mut c = cmd(&hush(), &root().join("empty/app"));
    c.arg("render").env("ARGOCD_ENV_HUSH_ALLOW_EMPTY", "true");
    assert!(run(c, None).status.success());
    // SOPS without a key.
    let mut c = cmd(&hush(), &root().join("sops/app"));
    c.arg("render");
    let out = run(c, None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_no_canary(&out.stderr, "SOPS failure");
    // Placeholders without a backend.
    let mut c = cmd(&hush(), &root().join("placeholders/app"));
    c.arg("render");
    let out = run(c, None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret backend"));
}

// ---------------------------------------------------------------------------------------------
// OpenBao
// ---------------------------------------------------------------------------------------------

fn bao(args: &[&str], addr: &str, token: &str) -> String {
    let out = Command::new(peer("BAO"))
        .args(args)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env("VAULT_ADDR", addr)
        .env("VAULT_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies `tests/render/<case>` with the Vault paths moved under fresh mounts, seeds OpenBao with
/// its `vault.json` and returns (dir, kv2 mount, kv1 mount).
fn seed_openbao(
    case: &str,
    addr: &str,
    token: &str,
    tag: &str,
) -> (tempfile::TempDir, String, String) {
    let kv2 = format!("render-{tag}");
    let kv1 = format!("render-{tag}-v1");
    bao(
        &[
            "secrets",
            "enable",
            &format!("-path={kv2}"),
            "-version=2",
            "kv",
        ],
        addr,
        token,
    );
    bao(
        &[
            "secrets",
            "enable",
            &format!("-path={kv1}"),
            "-version=1",
            "kv",
        ],
        addr,
        token,
    );
    let rewrite = |s: &str| {
        s.replace("secret/data/", &format!("{kv2}/data/"))
            .replace("kv1/", &format!("{kv1}/"))
    };
    let dir = tempfile::tempdir().unwrap();
    let src = root().join(case);
    for entry in std::fs::read_dir(src.join("app")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(
            dir.path().join("app").join(p.file_name().unwrap()),
            rewrite(&text),
        )
        .unwrap();
    }
    if let Ok(e) = std::fs::read_to_string(src.join("expected.yaml")) {
        std::fs::write(dir.path().join("expected.yaml"), rewrite(&e)).unwrap();
    }
    let seed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("vault.json")).unwrap()).unwrap();
    for (path, versions) in seed.as_object().unwrap() {
        let path = rewrite(path);
        let mut ordered: Vec<_> = versions.as_object().unwrap().iter().collect();
        ordered.sort_by_key(|(v, _)| {
            if *v == "latest" {
                u32::MAX
            } else {
                v.parse().unwrap()
            }
        });
        for (_, data) in ordered {
            let file = dir.path().join("seed.json");
            std::fs::write(&file, data.to_string()).unwrap();
            let (mount, rest) = path.split_once('/').unwrap();
            let logical = rest.strip_prefix("data/").unwrap_or(rest);
            bao(
                &[
                    "kv",
                    "put",
                    &format!("-mount={mount}"),
                    logical,
                    &format!("@{}", file.display()),
                ],
                addr,
                token,
            );
        }
    }
    (dir, kv2, kv1)
}

/// KV reads under `mounts` in OpenBao's file audit log (logins and lookups excluded).
fn audited_reads(log: &Path, mounts: &[&str]) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "request" && v["request"]["operation"] == "read")
        .filter(|v| {
            let p = v["request"]["path"].as_str().unwrap_or("");
            mounts.iter().any(|m| p.starts_with(&format!("{m}/")))
        })
        .count()
}

/// A private OpenBao dev server with a file audit device. OpenBao refuses `bao audit enable`
/// ("use declarative, config-based audit device management"), so the device comes from a config
/// file; the shared `scripts/services/openbao.sh` server cannot be used for counting.
struct AuditedBao {
    child: std::process::Child,
    addr: String,
    token: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl AuditedBao {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let config = dir.path().join("audit.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"render\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                log.display()
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token = format!("render-test-{}", std::process::id());
        let child = Command::new(peer("BAO"))
            .args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-config={}", config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let bao = Self {
            child,
            addr,
            token,
            log,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                std::thread::sleep(std::time::Duration::from_millis(300));
                return bao;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("OpenBao did not start");
    }
}

impl Drop for AuditedBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs scripts/test.sh services"]
fn placeholders_against_openbao_read_each_path_once() {
    let server = AuditedBao::start();
    let (addr, token) = (server.addr.clone(), server.token.clone());
    let tag = format!("{}", std::process::id());
    let (dir, kv2, kv1) = seed_openbao("placeholders", &addr, &token, &tag);
    let log = server.log.clone();
    let before = audited_reads(&log, &[&kv2, &kv1]);
    let mut c = cmd(&hush(), &dir.path().join("app"));
    c.args(["render", "--stats"])
        .env("AVP_TYPE", "vault")
        .env("AVP_AUTH_TYPE", "token")
        .env("VAULT_ADDR", &addr)
        .env("VAULT_TOKEN", &token)
        .env("ARGOCD_APP_NAMESPACE", "shop")
        // An Application author must not be able to redirect the plugin.
        .env("ARGOCD_ENV_VAULT_ADDR", "http://127.0.0.1:9")
        .env("ARGOCD_ENV_AVP_PATH_VALIDATION", "^nothing$");
    let out = run(c, None);
    let stdout = assert_ok(&out, "render against OpenBao");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stdout,
        std::fs::read_to_string(dir.path().join("expected.yaml")).unwrap()
    );
    assert!(
        stderr.contains("ARGOCD_ENV_VAULT_ADDR is ignored"),
        "{stderr}"
    );
    assert!(
        stderr.contains("5 distinct reads, 5 backend reads"),
        "{stderr}"
    );
    assert_no_canary(&out.stderr, "render stderr");
    assert_eq!(
        audited_reads(&log, &[&kv2, &kv1]) - before,
        5,
        "OpenBao audit log: KV reads"
    );

    // A missing value fails, naming the placeholder, never a value.
    let (dir, _, _) = seed_openbao("missing", &addr, &token, &format!("{tag}m"));
    let mut c = cmd(&hush(), &dir.path().join("app"));
    c.arg("render")
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", &addr)
        .env("VAULT_TOKEN", &token);
    let out = run(c, None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing value for placeholder"), "{stderr}");
    assert!(!stderr.contains("shop-user"), "{stderr}");
    assert_no_canary(&out.stderr, "missing-value error");
}

/// `AVP_AUTH_TYPE=userpass` (AVP's `AVP_USERNAME`, `AVP_PASSWORD`, `AVP_MOUNT_PATH`): the render
/// logs in to OpenBao's userpass method with a policy that reads only the seeded mounts.
#[test]
#[ignore = "needs scripts/test.sh services"]
fn userpass_login_against_openbao() {
    let server = AuditedBao::start();
    let (addr, token) = (server.addr.clone(), server.token.clone());
    let tag = format!("{}u", std::process::id());
    let (dir, kv2, kv1) = seed_openbao("placeholders", &addr, &token, &tag);
    let mount = format!("userpass-{tag}");
    bao(
        &["auth", "enable", &format!("-path={mount}"), "userpass"],
        &addr,
        &token,
    );
    let policy = dir.path().join("policy.hcl");
    std::fs::write(
        &policy,
        format!("path \"{kv2}/*\" {{ capabilities = [\"read\"] }}\npath \"{kv1}/*\" {{ capabilities = [\"read\"] }}\n"),
    )
    .unwrap();
    bao(
        &[
            "policy",
            "write",
            &format!("render-{tag}"),
            &policy.display().to_string(),
        ],
        &addr,
        &token,
    );
    let password = "canary-userpass-password-7f3e";
    bao(
        &[
            "write",
            &format!("auth/{mount}/users/render"),
            &format!("password={password}"),
            &format!("policies=render-{tag}"),
        ],
        &addr,
        &token,
    );
    let render = |password: &str| {
        let mut c = cmd(&hush(), &dir.path().join("app"));
        c.arg("render")
            .env("AVP_TYPE", "vault")
            .env("AVP_AUTH_TYPE", "userpass")
            .env("AVP_USERNAME", "render")
            .env("AVP_PASSWORD", password)
            .env("AVP_MOUNT_PATH", format!("auth/{mount}"))
            .env("VAULT_ADDR", &addr)
            .env("ARGOCD_APP_NAMESPACE", "shop")
            .env_remove("VAULT_TOKEN");
        run(c, None)
    };
    let out = render(password);
    let stdout = assert_ok(&out, "render with userpass");
    assert_eq!(
        stdout,
        std::fs::read_to_string(dir.path().join("expected.yaml")).unwrap()
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(password));
    // A wrong password fails the login, and says so without either password.
    let out = render("wrong-canary-password");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("canary"), "{stderr}");
    assert!(stderr.contains("vault"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// kustomize and helm
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs scripts/test.sh services"]
fn krm_function_and_kustomize_input_under_real_kustomize() {
    let kustomize = peer("KUSTOMIZE");
    let links = personas();
    let path = format!(
        "{}:{}",
        links.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for case in ["ksops", "krm-transformer"] {
        let app = root().join(case).join("app");
        let mut c = cmd(&kustomize, &app);
        c.args(["build", "--enable-alpha-plugins", "--enable-exec", "."])
            .env("PATH", &path)
            .env("HUSH_SOPS_KEYS_DIR", keys());
        let out = run(c, None);
        assert_eq!(assert_ok(&out, case), expected(case), "{case}");
        assert_no_canary(&out.stderr, case);
    }
    // Without keys the function fails the build (exit code, not only `results`).
    let mut c = cmd(&kustomize, &root().join("ksops/app"));
    c.args(["build", "--enable-alpha-plugins", "--enable-exec", "."])
        .env("PATH", &path);
    let out = run(c, None);
    assert!(!out.status.success());
    assert_no_canary(&out.stderr, "ksops failure");
    // Legacy one-argument mode.
    let mut c = cmd(&links.path().join("ksops"), &root().join("ksops/app"));
    c.arg("secret-generator.yaml")
        .env("HUSH_SOPS_KEYS_DIR", keys());
    let legacy = assert_ok(&run(c, None), "ksops legacy");
    assert!(legacy.contains("canary-ksops-env-8a1f") && legacy.contains("name: shop-files"));
    // An app directory with a kustomization renders through kustomize build.
    let mut c = cmd(&hush(), &root().join("kustomize/app"));
    c.arg("render")
        .env("HUSH_KUSTOMIZE", &kustomize)
        .env("HUSH_SOPS_KEYS_DIR", keys());
    assert_eq!(
        assert_ok(&run(c, None), "kustomize app"),
        expected("kustomize")
    );
}

#[test]
#[ignore = "needs scripts/test.sh services"]
fn helm_chart_renders_with_argocd_environment() {
    let helm = peer("HELM");
    let mut c = cmd(&hush(), &root().join("helm/app"));
    c.arg("render")
        .env("HUSH_HELM", &helm)
        .env("HUSH_SOPS_KEYS_DIR", keys());
    for line in std::fs::read_to_string(root().join("helm/env"))
        .unwrap()
        .lines()
    {
        let (k, v) = line.split_once('=').unwrap();
        c.env(k, v);
    }
    assert_eq!(assert_ok(&run(c, None), "helm app"), expected("helm"));
    // A values file outside the app directory is refused.
    let mut c = cmd(&hush(), &root().join("helm/app"));
    c.arg("render")
        .env("HUSH_HELM", &helm)
        .env("PARAM_VALUES_FILES_0", "../../keys/test.agekey");
    let out = run(c, None);
    assert!(!out.status.success());
}

// ---------------------------------------------------------------------------------------------
// Reseal
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs scripts/test.sh services"]
fn reseal_is_stable_hides_plaintext_and_opens_with_kubeseal() {
    let openssl = peer("OPENSSL");
    let kubeseal = peer("KUBESEAL");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let st = Command::new(&openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sealed-secret",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(st.status.success());
    let render = |secret: Option<&str>| {
        let mut c = cmd(&hush(), &root().join("sops/app"));
        c.args(["render", "--reseal-cert"])
            .arg(&cert)
            .env("HUSH_SOPS_KEYS_DIR", keys())
            .env("ARGOCD_APP_NAMESPACE", "shop");
        if let Some(s) = secret {
            c.env("HUSH_RESEAL_SECRET", s);
        }
        run(c, None)
    };
    let a = render(Some("render-secret-for-tests-0123456789"));
    let b = render(Some("render-secret-for-tests-0123456789"));
    let first = assert_ok(&a, "reseal");
    assert_eq!(
        first,
        assert_ok(&b, "reseal again"),
        "resealing is not stable"
    );
    // Secrets are sealed; the ConfigMap of config.enc.json stays a ConfigMap (reseal covers
    // Secrets only: values placed in other kinds are not protected).
    for c in [
        "canary-sops-yaml-7f3a",
        "canary-sops-multi-a",
        "Y2FuYXJ5LXNvcHMtbXVsdGktYg==",
    ] {
        assert!(!first.contains(c), "resealed output leaks {c}");
    }
    assert_eq!(first.matches("kind: SealedSecret").count(), 3, "{first}");
    assert!(first.contains("kind: ConfigMap"));
    // Another render secret, or none: different ciphertext (and a warning without one).
    let other = assert_ok(
        &render(Some("another-render-secret-abcdefghij")),
        "other secret",
    );
    assert_ne!(first, other);
    let fresh = render(None);
    assert!(String::from_utf8_lossy(&fresh.stderr).contains("will change on every render"));
    // kubeseal opens every SealedSecret to the original values.
    let mut opened = String::new();
    for doc in first
        .split("\n---\n")
        .filter(|d| d.contains("kind: SealedSecret"))
    {
        let mut c = Command::new(&kubeseal);
        c.args(["--recovery-unseal", "--recovery-private-key"])
            .arg(&key)
            .args(["-o", "yaml"]);
        let out = run(c, Some(doc.as_bytes()));
        opened.push_str(&assert_ok(&out, "kubeseal --recovery-unseal"));
    }
    for (b64, what) in [
        ("Y2FuYXJ5LXNvcHMteWFtbC03ZjNh", "canary-sops-yaml-7f3a"),
        ("Y2FuYXJ5LXNvcHMtbXVsdGktYQ==", "canary-sops-multi-a"),
        ("Y2FuYXJ5LXNvcHMtbXVsdGktYg==", "canary-sops-multi-b"),
    ] {
        assert!(
            opened.contains(b64),
            "kubeseal did not recover {what}: {opened}"
        );
    }
    assert!(opened.contains("namespace: shop"));
}

// ---------------------------------------------------------------------------------------------
// AWS Secrets Manager (AVP_TYPE=awssecretsmanager) against moto
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs scripts/test.sh services"]
fn placeholders_against_aws_secrets_manager_in_moto() {
    let moto = std::env::var("HUSH_MOTO_URL")
        .expect("HUSH_MOTO_URL is not set: start scripts/services/moto.sh (scripts/test.sh does)");
    let name = format!("hush-render/{}", std::process::id());
    let canary = "canary-aws-sm-6c2b";
    // Seed with boto3 from the peers venv (moto's own client library).
    let seed = format!(
        "import boto3, json\n\
         c = boto3.client('secretsmanager', endpoint_url='{moto}', region_name='us-east-1',\n\
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         c.create_secret(Name='{name}', SecretString=json.dumps({{'user': 'shop', 'password': '{canary}'}}))\n"
    );
    let out = Command::new(peer("PYTHON"))
        .args(["-c", &seed])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seeding moto: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  user: <path:{name}#user>\n  password: <path:{name}#password>\n"
        ),
    )
    .unwrap();
    let aws = |c: &mut Command| {
        c.env("AVP_TYPE", "awssecretsmanager")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &moto)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SECRETSMANAGER_ENDPOINT");
    };
    let mut c = cmd(&hush(), &app);
    c.args(["render", "--stats"]);
    aws(&mut c);
    let out = run(c, None);
    let stdout = assert_ok(&out, "render against moto");
    assert!(stdout.contains("user: shop"), "{stdout}");
    assert!(stdout.contains(&format!("password: {canary}")), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 distinct reads, 1 backend reads"),
        "{stderr}"
    );
    assert!(!stderr.contains(canary), "stderr leaks the value: {stderr}");

    // A secret that does not exist fails the render, naming the placeholder only.
    std::fs::write(
        app.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  x: <path:hush-render/absent#x>\n",
    )
    .unwrap();
    let mut c = cmd(&hush(), &app);
    c.arg("render");
    aws(&mut c);
    let out = run(c, None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("<path:hush-render/absent#x>"), "{stderr}");
}
