//! `hush render` as argocd-vault-plugin with `AVP_TYPE=awssecretsmanager` against a real moto
//! server (`scripts/services/moto.sh`): the render's backend is the hush-sync AWS provider the
//! ExternalSecret controller uses, reached through `SecretProvider::document`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

fn moto() -> String {
    std::env::var("HUSH_MOTO_URL").unwrap_or_else(|_| {
        panic!("HUSH_MOTO_URL is not set: eval \"$(scripts/services/moto.sh start)\"")
    })
}

/// Runs boto3 against moto; returns its standard output.
fn boto(script: &str, args: &[&str]) -> String {
    let peers = hush_testkit::peers().unwrap_or_else(|e| panic!("{e:#}"));
    let o = Command::new(peers.get("HUSH_PEER_PYTHON").expect("HUSH_PEER_PYTHON"))
        .arg("-c")
        .arg(format!(
            "import boto3, sys\nsm = boto3.client('secretsmanager', endpoint_url=sys.argv[1], \
             region_name='us-east-1', aws_access_key_id='testing', \
             aws_secret_access_key='testing')\n{script}"
        ))
        .arg(moto())
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn render(app: &Path) -> Output {
    let mut c = Command::new(hush());
    c.args(["render", "."]).current_dir(app);
    for v in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "VAULT_ADDR",
        "VAULT_TOKEN",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", app)
        .env("AVP_TYPE", "awssecretsmanager")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_SECRETSMANAGER_ENDPOINT", moto())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs scripts/services/moto.sh and the python peer (boto3)"]
fn placeholders_from_aws_secrets_manager_latest_and_by_version_id() {
    let name = format!("hush-render-aws-{}", std::process::id());
    let first = boto(
        "print(sm.create_secret(Name=sys.argv[2], SecretString=sys.argv[3])['VersionId'])",
        &[
            &name,
            r#"{"user":"shop","password":"canary-aws-render-1","port":5432}"#,
        ],
    );
    boto(
        "sm.put_secret_value(SecretId=sys.argv[2], SecretString=sys.argv[3])",
        &[
            &name,
            r#"{"user":"shop","password":"canary-aws-render-2","port":5432}"#,
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  \
             user: <path:{name}#user>\n  latest: <path:{name}#password>\n  \
             first: <path:{name}#password#{first}>\n  port: <path:{name}#port>\n"
        ),
    )
    .unwrap();
    let out = render(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for want in [
        "user: shop",
        "latest: canary-aws-render-2",
        "first: canary-aws-render-1",
        "port: 5432",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    assert!(!stderr.contains("canary"), "{stderr}");

    // A secret that does not exist is a missing value naming the placeholder, not a crash.
    std::fs::write(
        dir.path().join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gone\nstringData:\n  \
         x: <path:hush-render-aws-absent#x>\n",
    )
    .unwrap();
    let out = render(dir.path());
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hush-render-aws-absent"), "{stderr}");
}
