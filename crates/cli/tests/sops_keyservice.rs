//! sops' key service protocol both ways with the real sops 3.11: sops encrypts and decrypts
//! through `hush sops keyservice` only, and hush through a real `sops keyservice` only
//! (`--keyservice URI --enable-local-keyservice=false`, no key material or credentials on the
//! client's side), over TCP and a Unix socket, for age, Vault transit (OpenBao) and AWS KMS
//! (moto) keys.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn peers() -> HashMap<String, String> {
    hush_testkit::peers().unwrap_or_else(|e| panic!("{e:#}"))
}

fn service_env(name: &str, script: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: eval \"$(scripts/services/{script} start)\"")
    })
}

fn key_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sops/tests/fixtures/age-key.txt")
}

fn recipient() -> String {
    std::fs::read_to_string(key_file())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned()
}

/// A running `hush sops keyservice`; killed when dropped.
struct Server {
    child: Child,
    uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the key service with `env` (its keys and credentials) and waits for it to listen.
fn start(network: &str, address: &str, env: &[(&str, String)]) -> Server {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hush"));
    c.args([
        "sops",
        "keyservice",
        "--network",
        network,
        "--address",
        address,
    ])
    .env_remove("SOPS_AGE_KEY")
    .env_remove("SOPS_AGE_KEY_FILE")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("hush sops keyservice");
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "keyservice: {line}");
    let uri = format!("{network}://{}", line.trim().rsplit("://").next().unwrap());
    Server { child, uri }
}

/// The real sops with nothing of the keys: no age identity, no Vault token, no AWS credentials.
fn real_sops(dir: &Path, args: &[&str]) -> Output {
    let sops = peers()
        .get("HUSH_PEER_SOPS")
        .cloned()
        .expect("HUSH_PEER_SOPS missing; run scripts/dev-env.sh");
    Command::new(sops)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("VAULT_TOKEN")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("sops")
}

/// The real sops as a key service (`sops keyservice`) with `env`; waits until it accepts.
fn start_real(network: &str, address: &str, env: &[(&str, String)]) -> Server {
    let sops = peers()
        .get("HUSH_PEER_SOPS")
        .cloned()
        .expect("HUSH_PEER_SOPS missing; run scripts/dev-env.sh");
    let mut c = Command::new(sops);
    c.args(["keyservice", "--network", network, "--address", address])
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("sops keyservice");
    let start = std::time::Instant::now();
    loop {
        let up = match network {
            "tcp" => std::net::TcpStream::connect(address).is_ok(),
            _ => std::os::unix::net::UnixStream::connect(address).is_ok(),
        };
        if up {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "sops keyservice did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Server {
        child,
        uri: format!("{network}://{address}"),
    }
}

/// hush as sops, with nothing of the keys either.
fn hush_sops(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hush"))
        .arg("sops")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("VAULT_TOKEN")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("SOPS_KEYSERVICE")
        .output()
        .expect("hush")
}

/// sops encrypts for `flag value` and decrypts, both through `server` only; without it, the
/// file does not open.
fn through(server: &Server, flag: &str, value: &str) {
    through_with(real_sops, server, flag, value);
}

/// The same with `client` (the real sops or hush) as the client.
fn through_with(client: fn(&Path, &[&str]) -> Output, server: &Server, flag: &str, value: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.yaml"), "password: s3cr3t\n").unwrap();
    let remote = [
        "--keyservice",
        &server.uri,
        "--enable-local-keyservice=false",
    ];
    let mut args = vec!["encrypt", "-i"];
    args.extend_from_slice(&remote);
    args.extend_from_slice(&[flag, value, "x.yaml"]);
    let ok = |o: &Output| {
        assert!(
            o.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(&client(dir.path(), &args));
    let mut args = vec!["decrypt"];
    args.extend_from_slice(&remote);
    args.push("x.yaml");
    // The client and the other tool both open it through the same service.
    for tool in [client, real_sops, hush_sops] {
        let o = tool(dir.path(), &args);
        ok(&o);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "password: s3cr3t\n");
    }
    for tool in [real_sops, hush_sops] {
        let o = tool(dir.path(), &["decrypt", "x.yaml"]);
        assert_eq!(o.status.code(), Some(128), "opened without the key service");
    }
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers (sops)"]
fn real_sops_uses_hush_keyservice_for_age_over_tcp_and_unix() {
    let env = [("SOPS_AGE_KEY_FILE", key_file().display().to_string())];
    let port = hush_testkit::process::free_port().unwrap();
    let tcp = start("tcp", &format!("127.0.0.1:{port}"), &env);
    through(&tcp, "--age", &recipient());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sops.sock");
    let unix = start("unix", sock.to_str().unwrap(), &env);
    through(&unix, "--age", &recipient());
    // A gcp_kms key without Google credentials: sops gets hush's error naming the key.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("y.yaml"), "a: b\n").unwrap();
    let o = real_sops(
        work.path(),
        &[
            "encrypt",
            "--keyservice",
            &tcp.uri,
            "--enable-local-keyservice=false",
            "--gcp-kms",
            "projects/p/locations/global/keyRings/r/cryptoKeys/k",
            "y.yaml",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("desc = gcp_kms key projects/p/locations/global/keyRings/r/cryptoKeys/k"),
        "{err}"
    );
}

#[test]
#[ignore = "needs scripts/services/openbao.sh, scripts/services/moto.sh and the sops peer"]
fn real_sops_uses_hush_keyservice_for_vault_transit_and_kms() {
    let addr = service_env("HUSH_VAULT_ADDR", "openbao.sh");
    let token = service_env("HUSH_VAULT_TOKEN", "openbao.sh");
    let name = format!("hush-ks-{}", std::process::id());
    let o = Command::new(peers().get("HUSH_PEER_BAO").expect("HUSH_PEER_BAO"))
        .args(["write", "-f", &format!("transit/keys/{name}")])
        .env("VAULT_ADDR", &addr)
        .env("VAULT_TOKEN", &token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let moto = service_env("HUSH_MOTO_URL", "moto.sh");
    let o = Command::new(peers().get("HUSH_PEER_PYTHON").expect("HUSH_PEER_PYTHON"))
        .args([
            "-c",
            "import boto3,sys; print(boto3.client('kms', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing').create_key()['KeyMetadata']['Arn'])",
            &moto,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arn = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    // The credentials live with the key service only.
    let env = [
        ("VAULT_ADDR", addr.clone()),
        ("VAULT_TOKEN", token),
        ("AWS_ENDPOINT_URL", moto),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let port = hush_testkit::process::free_port().unwrap();
    let server = start("tcp", &format!("127.0.0.1:{port}"), &env);
    through(
        &server,
        "--hc-vault-transit",
        &format!("{addr}/v1/transit/keys/{name}"),
    );
    through(&server, "--kms", &arn);
    // And hush through a real sops key service holding the same credentials.
    let port = hush_testkit::process::free_port().unwrap();
    let real = start_real("tcp", &format!("127.0.0.1:{port}"), &env);
    through_with(
        hush_sops,
        &real,
        "--hc-vault-transit",
        &format!("{addr}/v1/transit/keys/{name}"),
    );
    through_with(hush_sops, &real, "--kms", &arn);
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers (sops)"]
fn hush_uses_a_real_sops_keyservice_for_age_over_tcp_and_unix() {
    let env = [("SOPS_AGE_KEY_FILE", key_file().display().to_string())];
    let port = hush_testkit::process::free_port().unwrap();
    let tcp = start_real("tcp", &format!("127.0.0.1:{port}"), &env);
    through_with(hush_sops, &tcp, "--age", &recipient());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sops.sock");
    let unix = start_real("unix", sock.to_str().unwrap(), &env);
    through_with(hush_sops, &unix, "--age", &recipient());
    // A bad address is refused naming it; no local keys without a key service is refused too.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("y.yaml"), "a: b\n").unwrap();
    let o = hush_sops(
        work.path(),
        &[
            "encrypt",
            "--keyservice",
            "127.0.0.1:1",
            "--age",
            &recipient(),
            "y.yaml",
        ],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("tcp://HOST:PORT"));
    let o = hush_sops(
        work.path(),
        &[
            "encrypt",
            "--enable-local-keyservice=false",
            "--age",
            &recipient(),
            "y.yaml",
        ],
    );
    assert!(!o.status.success());
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers (sops, gpg)"]
fn pgp_keys_through_key_services_both_ways() {
    let gpg = peers()
        .get("HUSH_PEER_GPG")
        .cloned()
        .expect("HUSH_PEER_GPG missing; run scripts/dev-env.sh");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let o = Command::new(&gpg)
        .args(["--batch", "--passphrase", "", "--quick-gen-key"])
        .args([
            "hush keyservice <ks@example.invalid>",
            "default",
            "default",
            "never",
        ])
        .env("GNUPGHOME", &home)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(&gpg)
        .args(["--batch", "--with-colons", "--list-secret-keys"])
        .env("GNUPGHOME", &home)
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_owned())
        .expect("fingerprint");
    // The keyring lives with the key services only (clients get an empty HOME).
    let env = [("GNUPGHOME", home.display().to_string())];
    let port = hush_testkit::process::free_port().unwrap();
    let ours = start("tcp", &format!("127.0.0.1:{port}"), &env);
    through(&ours, "--pgp", &fp);
    let port = hush_testkit::process::free_port().unwrap();
    let theirs = start_real("tcp", &format!("127.0.0.1:{port}"), &env);
    through_with(hush_sops, &theirs, "--pgp", &fp);
}
