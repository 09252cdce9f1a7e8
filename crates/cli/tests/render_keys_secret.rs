//! `hush render` with a Flux-style SOPS key directory (`--sops-keys-dir`,
//! `HUSH_SOPS_KEYS_DIR`) holding keys for manifests encrypted by the real sops 3.11 (PGP from a
//! gpg-made key, AWS KMS in moto, Vault transit in OpenBao), and with AVP's `-s/--secret-name`
//! configuration Secret read from the real kube-apiserver of `scripts/kube-testenv.sh`.
//!
//! Needs `scripts/test.sh` services: the peers (`HUSH_PEER_SOPS`, `HUSH_PEER_GPG`,
//! `HUSH_PEER_PYTHON`, `HUSH_PEER_BAO`), `HUSH_MOTO_URL`, `HUSH_VAULT_ADDR`/`HUSH_VAULT_TOKEN`
//! and `KUBECONFIG`; a missing one fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

fn peer(name: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(format!("HUSH_PEER_{name}")) {
        return PathBuf::from(v);
    }
    let file = std::env::var_os("HUSH_PEERS_ENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hush/peers.env"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("peer {name}: cannot read {} ({e})", file.display()));
    let key = format!("HUSH_PEER_{name}=");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("peer {name} missing from {}", file.display()));
    assert!(path.exists(), "peer {name}: {} is missing", path.display());
    path
}

fn service(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: start the services (scripts/test.sh does)"))
}

/// A render command as Argo CD runs it, with no SOPS, Vault, AWS or GnuPG settings from the
/// developer's shell (the key directory must be the only key source).
fn render_cmd(cwd: &Path, home: &Path) -> Command {
    let mut c = Command::new(hush());
    c.current_dir(cwd);
    for v in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "AVP_TYPE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "HUSH_SOPS_KEYS_DIR",
        "HUSH_RESEAL_CERT",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("GNUPGHOME", home.join("no-gnupg"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("no-aws-credentials"),
        )
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"));
    c
}

fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn check(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Secret manifest encrypted by the real sops with `flags` (data only, as Flux asks).
fn sops_encrypt(dir: &Path, name: &str, canary: &str, flags: &[&str], env: &[(&str, String)]) {
    let plain = dir.join(format!("{name}.plain.yaml"));
    std::fs::write(
        &plain,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: shop\n\
             type: Opaque\nstringData:\n  password: {canary}\n"
        ),
    )
    .unwrap();
    let mut c = Command::new(peer("SOPS"));
    c.current_dir(dir)
        .args(["--encrypt", "--encrypted-regex", "^(data|stringData)$"])
        .args(flags)
        .arg(&plain);
    for (k, v) in env {
        c.env(k, v);
    }
    let enc = check(&mut c, &format!("sops --encrypt {flags:?}"));
    assert!(enc.contains("ENC[") && !enc.contains(canary));
    std::fs::remove_file(&plain).unwrap();
    std::fs::write(dir.join("app").join(format!("{name}.enc.yaml")), enc).unwrap();
}

const PGP_CANARY: &str = "canary-flux-pgp-4d21";
const KMS_CANARY: &str = "canary-flux-kms-8b3e";
const VAULT_CANARY: &str = "canary-flux-vault-2a9c";

fn assert_no_canary(text: &[u8], what: &str) {
    let text = String::from_utf8_lossy(text);
    for c in [PGP_CANARY, KMS_CANARY, VAULT_CANARY] {
        assert!(!text.contains(c), "{what} leaks {c}");
    }
}

#[test]
#[ignore = "needs scripts/test.sh services (sops, gpg, moto, OpenBao)"]
fn flux_key_directory_opens_pgp_kms_and_vault_files_made_by_sops() {
    let moto = service("HUSH_MOTO_URL");
    let bao_addr = service("HUSH_VAULT_ADDR");
    let bao_token = service("HUSH_VAULT_TOKEN");
    let dir = tempfile::tempdir().unwrap();
    let (app, keys, home) = (
        dir.path().join("app"),
        dir.path().join("keys"),
        dir.path().join("home"),
    );
    for d in [&app, &keys, &home] {
        std::fs::create_dir(d).unwrap();
    }

    // PGP: a passwordless key made by gpg; sops encrypts with gpg, hush decrypts from the
    // exported armored key alone (Flux's `*.asc`).
    let gnupg = dir.path().join("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        check(
            Command::new(peer("GPG"))
                .args(args)
                .env("GNUPGHOME", &gnupg),
            &format!("gpg {args:?}"),
        )
    };
    gpg(&[
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "hush flux test <flux@example.invalid>",
        "default",
        "default",
        "never",
    ]);
    let fp = gpg(&["--batch", "--with-colons", "--list-secret-keys"])
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_owned())
        .expect("fingerprint");
    let armored = gpg(&["--batch", "--armor", "--export-secret-keys", &fp]);
    std::fs::write(keys.join("identity.asc"), armored).unwrap();
    let gnupg_env = [("GNUPGHOME", gnupg.display().to_string())];
    sops_encrypt(dir.path(), "pgp", PGP_CANARY, &["--pgp", &fp], &gnupg_env);

    // AWS KMS in moto, with an encryption context; hush gets credentials from `sops.aws-kms`.
    let seed = format!(
        "import boto3\n\
         c = boto3.client('kms', endpoint_url='{moto}', region_name='us-east-1',\n\
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         print(c.create_key()['KeyMetadata']['Arn'])\n"
    );
    let arn = check(
        Command::new(peer("PYTHON")).args(["-c", &seed]),
        "creating a KMS key in moto",
    )
    .trim()
    .to_owned();
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    sops_encrypt(
        dir.path(),
        "kms",
        KMS_CANARY,
        &["--kms", &arn, "--encryption-context", "app:shop"],
        &aws_env,
    );
    let aws_kms =
        "aws_access_key_id: testing\naws_secret_access_key: testing\naws_session_token: \"\"\n";
    std::fs::write(keys.join("sops.aws-kms"), aws_kms).unwrap();

    // Vault transit in OpenBao; hush gets the token from `sops.vault-token`.
    let mount = format!("flux-transit-{}", std::process::id());
    let bao = |args: &[&str]| {
        check(
            Command::new(peer("BAO"))
                .args(args)
                .env("BAO_ADDR", &bao_addr)
                .env("BAO_TOKEN", &bao_token),
            &format!("bao {args:?}"),
        )
    };
    bao(&["secrets", "enable", &format!("-path={mount}"), "transit"]);
    bao(&["write", "-f", &format!("{mount}/keys/sops")]);
    let vault_env = [
        ("VAULT_ADDR", bao_addr.clone()),
        ("VAULT_TOKEN", bao_token.clone()),
    ];
    sops_encrypt(
        dir.path(),
        "vault",
        VAULT_CANARY,
        &[
            "--hc-vault-transit",
            &format!("{bao_addr}/v1/{mount}/keys/sops"),
        ],
        &vault_env,
    );
    std::fs::write(keys.join("sops.vault-token"), format!("{bao_token}\n")).unwrap();

    // Everything opens through the key directory (`AWS_ENDPOINT_URL` only says where moto is,
    // as it would name a VPC endpoint), once the operator names the Vault the token may go to
    // (the file's `vault_address` is the repository's choice; docs/security.md).
    let mut c = render_cmd(&app, &home);
    c.args([
        "render",
        "--stats",
        "--sops-vault-addr",
        &bao_addr,
        "--sops-keys-dir",
    ])
    .arg(&keys)
    .env("AWS_ENDPOINT_URL", &moto);
    let out = run(c);
    let stdout = ok(&out, "render with the key directory");
    for (name, canary) in [
        ("pgp", PGP_CANARY),
        ("kms", KMS_CANARY),
        ("vault", VAULT_CANARY),
    ] {
        assert!(
            stdout.contains(&format!("name: {name}\n")) && stdout.contains(canary),
            "{name} not decrypted: {stdout}"
        );
    }
    assert!(!stdout.contains("ENC["), "{stdout}");
    assert!(!stdout.contains("sops:"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 SOPS decryptions"), "{stderr}");
    assert_no_canary(&out.stderr, "render stderr");

    // The persona with HUSH_SOPS_KEYS_DIR from the sidecar's environment.
    let bin = tempfile::tempdir().unwrap();
    let avp = bin.path().join("argocd-vault-plugin");
    std::os::unix::fs::symlink(hush(), &avp).unwrap();
    let mut c = render_cmd(&app, &home);
    c.env("HUSH_SOPS_KEYS_DIR", &keys)
        .env("HUSH_SOPS_VAULT_ADDRS", &bao_addr)
        .env("AWS_ENDPOINT_URL", &moto)
        .arg0_persona(&avp, &["generate", "."]);
    let out = run(c);
    assert_eq!(ok(&out, "argocd-vault-plugin generate"), stdout);

    // Without `sops.aws-kms` the KMS file cannot be opened: the credentials came from it.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::copy(keys.join("identity.asc"), partial.join("identity.asc")).unwrap();
    let mut c = render_cmd(&app, &home);
    c.args(["render", "--sops-keys-dir"])
        .arg(&partial)
        .env("AWS_ENDPOINT_URL", &moto);
    let out = run(c);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kms.enc.yaml"), "{stderr}");
    assert_no_canary(&out.stderr, "failed render");

    // A Flux key file that cannot be used (here a Google key without its fields) is named, with
    // what is wrong, before anything is decrypted.
    std::fs::write(partial.join("sops.gcp-kms"), "{}\n").unwrap();
    let mut c = render_cmd(&app, &home);
    c.args(["render", "--sops-keys-dir"])
        .arg(&partial)
        .env("AWS_ENDPOINT_URL", &moto);
    let out = run(c);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sops.gcp-kms") && stderr.contains("no \"type\""),
        "{stderr}"
    );
    std::fs::remove_file(partial.join("sops.gcp-kms")).unwrap();

    // A malformed `sops.aws-kms` names the file and the field, never a value.
    std::fs::write(
        partial.join("sops.aws-kms"),
        "aws_access_key_id: AKIDCANARY\n",
    )
    .unwrap();
    let mut c = render_cmd(&app, &home);
    c.args(["render", "--sops-keys-dir"]).arg(&partial);
    let out = run(c);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sops.aws-kms") && stderr.contains("aws_secret_access_key is missing"),
        "{stderr}"
    );
    assert!(!stderr.contains("AKIDCANARY"), "{stderr}");
}

/// Runs `program` (a persona link) with `args` in place of the command's program.
trait Persona {
    fn arg0_persona(&mut self, program: &Path, args: &[&str]) -> &mut Self;
}

impl Persona for Command {
    fn arg0_persona(&mut self, program: &Path, args: &[&str]) -> &mut Self {
        let mut c = Command::new(program);
        if let Some(dir) = self.get_current_dir() {
            c.current_dir(dir);
        }
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.args(args);
        *self = c;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// -s / --secret-name against the real kube-apiserver
// ---------------------------------------------------------------------------------------------

async fn put_secret(client: &kube::Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, PostParams};
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns_obj: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    match namespaces.create(&PostParams::default(), &ns_obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating namespace {ns}: {e}"),
    }
    let string_data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns},
        "stringData": string_data,
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("creating Secret {ns}/{name}: {e}"));
}

async fn delete_secret(client: &kube::Client, ns: &str, name: &str) {
    use k8s_openapi::api::core::v1::Secret;
    let _ = kube::Api::<Secret>::namespaced(client.clone(), ns)
        .delete(name, &kube::api::DeleteParams::default())
        .await;
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh (KUBECONFIG)"]
async fn secret_name_configures_the_render_from_the_api_server() {
    let kubeconfig = service("KUBECONFIG");
    let client = hush_testkit::client().await.unwrap();
    let id = std::process::id();
    let default_name = format!("avp-config-{id}");
    let team_ns = format!("hush-render-team-{id}");
    // The argocd namespace is AVP's default for `-s NAME`.
    put_secret(
        &client,
        "argocd",
        &default_name,
        &[("HUSH_ALLOW_EMPTY", "true")],
    )
    .await;
    put_secret(
        &client,
        &team_ns,
        "avp-config",
        &[
            ("AVP_TYPE", "vault"),
            ("VAULT_ADDR", "http://127.0.0.1:9"),
            ("VAULT_TOKEN", "canary-secret-name-token-7e1d"),
            ("AVP_PATH_VALIDATION", "^secret/data/team-a/"),
        ],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let (empty, app) = (dir.path().join("empty"), dir.path().join("app"));
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: <path:secret/data/team-b/db#password>\n",
    )
    .unwrap();
    let home = dir.path().to_path_buf();
    let render = |cwd: &Path, args: &[&str]| {
        let mut c = render_cmd(cwd, &home);
        c.args(args).env("KUBECONFIG", &kubeconfig);
        run(c)
    };

    // Without the Secret an empty app is refused; with `-s NAME` (namespace argocd) it is
    // allowed by the Secret's HUSH_ALLOW_EMPTY.
    let out = render(&empty, &["render"]);
    assert!(!out.status.success());
    let out = render(&empty, &["render", "-s", &default_name]);
    assert_eq!(ok(&out, "render -s NAME"), "");

    // `NAMESPACE:NAME`: the Secret's AVP_PATH_VALIDATION refuses the path before any read.
    let out = render(
        &app,
        &["render", "--secret-name", &format!("{team_ns}:avp-config")],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secret/data/team-b/db") && stderr.contains("AVP_PATH_VALIDATION"),
        "{stderr}"
    );
    assert!(!stderr.contains("canary-secret-name-token"), "{stderr}");

    // The persona takes the same flag.
    let bin = tempfile::tempdir().unwrap();
    let avp = bin.path().join("argocd-vault-plugin");
    std::os::unix::fs::symlink(hush(), &avp).unwrap();
    let mut c = render_cmd(&empty, &home);
    c.env("KUBECONFIG", &kubeconfig)
        .arg0_persona(&avp, &["generate", ".", "-s", &default_name]);
    assert_eq!(ok(&run(c), "argocd-vault-plugin generate -s"), "");

    // A Secret that does not exist is named in the error.
    let out = render(&empty, &["render", "-s", "argocd:no-such-config"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("argocd/no-such-config"), "{stderr}");

    delete_secret(&client, "argocd", &default_name).await;
    delete_secret(&client, &team_ns, "avp-config").await;
}
