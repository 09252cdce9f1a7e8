//! `hush render` as argocd-vault-plugin with `AVP_TYPE=gcpsecretmanager` and `azurekeyvault`
//! against the Google Cloud and Azure test servers (`scripts/services/gcp.sh`, `azure.sh`): the
//! render's backends are the hush-sync `gcpsm` and `azurekv` providers the ExternalSecret
//! controller uses, set up from AVP's settings (`GOOGLE_APPLICATION_CREDENTIALS`; `AZURE_*`),
//! with AVP's paths (`projects/P/secrets/S#S#version`; the vault's name, `#NAME#version`).
//! The servers count token grants and calls: one token per render, one read per distinct key.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start scripts/services/gcp.sh and azure.sh (scripts/test.sh does)"
        )
    })
}

/// Runs `hush render .` in `app` over `manifest` with `vars`.
fn render(app: &Path, manifest: &str, vars: &[(&str, String)]) -> Output {
    std::fs::write(app.join("secret.yaml"), manifest).unwrap();
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
    c.env("HOME", app);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("canary"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success() && out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("canary"), "{stderr}");
    stderr
}

/// `application/x-www-form-urlencoded` escaping of a value.
fn form_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn calls(http: &reqwest::Client, base: &str) -> Value {
    let text = http
        .get(format!("{base}/hush/calls"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON body.
fn json_body(r: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    r.header("Content-Type", "application/json")
        .body(body.to_string())
}

async fn send(http: &reqwest::RequestBuilder) -> Value {
    let response = http.try_clone().unwrap().send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn placeholders_from_gcp_secret_manager() {
    let base = env("HUSH_GCP_URL");
    let http = reqwest::Client::new();
    let id = std::process::id();
    let email = format!("avp-{id}@hush-test.iam.gserviceaccount.com");
    let key = send(&json_body(
        http.post(format!("{base}/hush/service-accounts")),
        &json!({"email": email, "project": "hush-test"}),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.json");
    std::fs::write(&key_file, key.to_string()).unwrap();
    // The test seeds the project with a token of the same service account.
    let client = hush_gcp::Client::new(
        hush_gcp::Credentials::ServiceAccount(
            hush_gcp::ServiceAccountKey::from_json(key.to_string().as_bytes()).unwrap(),
        ),
        hush_gcp::Endpoints::from_env(),
        None,
    )
    .unwrap();
    let token = client.tokens().token().await.unwrap();
    let secret = format!("avp-db-{id}");
    let secrets = format!("{base}/v1/projects/hush-test/secrets");
    send(&json_body(
        http.post(format!("{secrets}?secretId={secret}"))
            .bearer_auth(token.expose()),
        &json!({"replication": {"automatic": {}}}),
    ))
    .await;
    // base64 of canary-gcp-1 and canary-gcp-2.
    for data in ["Y2FuYXJ5LWdjcC0x", "Y2FuYXJ5LWdjcC0y"] {
        send(&json_body(
            http.post(format!("{secrets}/{secret}:addVersion"))
                .bearer_auth(token.expose()),
            &json!({"payload": {"data": data}}),
        ))
        .await;
    }
    let before = calls(&http, &base).await["tokens"][&email]
        .as_u64()
        .unwrap_or(0);
    let vars = [
        ("AVP_TYPE", "gcpsecretmanager".to_owned()),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            key_file.display().to_string(),
        ),
        (
            "HUSH_GCP_SECRET_MANAGER_ENDPOINT",
            env("HUSH_GCP_SECRET_MANAGER_ENDPOINT"),
        ),
        ("HUSH_GCP_TOKEN_ENDPOINT", env("HUSH_GCP_TOKEN_ENDPOINT")),
    ];
    let path = format!("projects/hush-test/secrets/{secret}");
    let app = dir.path();
    // AVP's documented forms: the annotation with `<SECRET>`, inline `#SECRET`, `#SECRET#version`.
    let out = render(
        app,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  annotations:\n    \
             avp.kubernetes.io/path: {path}\nstringData:\n  current: <{secret}>\n  \
             again: <path:{path}#{secret}#latest>\n  old: <path:{path}#{secret}#1>\n"
        ),
        &vars,
    );
    let stdout = ok(&out);
    for want in [
        "current: canary-gcp-2",
        "again: canary-gcp-2",
        "old: canary-gcp-1",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    let after = calls(&http, &base).await;
    assert_eq!(after["tokens"][&email].as_u64().unwrap(), before + 1);

    // The key of a GCP document is the secret's id; another key is a missing value (as AVP).
    let out = render(
        app,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  \
             p: <path:{path}#password>\n"
        ),
        &vars,
    );
    assert!(failed(&out).contains(&format!("<path:{path}#password>")));
    // A path that is not a Secret Manager name is refused, naming it.
    let out = render(
        app,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  p: <path:hush-test/x#x>\n",
        &vars,
    );
    let stderr = failed(&out);
    assert!(
        stderr.contains("hush-test/x") && stderr.contains("projects/PROJECT/secrets/SECRET"),
        "{stderr}"
    );
    // Without a key file: refused naming the variable.
    let out = render(app, "", &[("AVP_TYPE", "gcpsecretmanager".to_owned())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs the Azure test server (scripts/services/azure.sh)"]
async fn placeholders_from_azure_key_vault() {
    let base = env("HUSH_AZURE_URL");
    let ca = env("HUSH_AZURE_CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let a = send(&json_body(
        http.post(format!("{base}/hush/apps")),
        &json!({}),
    ))
    .await;
    let s = |k: &str| a[k].as_str().unwrap().to_owned();
    let (tenant, client_id, client_secret) = (s("tenant_id"), s("client_id"), s("client_secret"));
    let token = send(
        &http
            .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={client_id}&client_secret={}\
                 &scope=https%3A%2F%2Fvault.azure.net%2F.default",
                form_escape(&client_secret)
            )),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = std::process::id();
    let name = format!("avp-db-{id}");
    let put = |secret: &str, value: &str| {
        json_body(
            http.put(format!("{base}/secrets/{secret}?api-version=7.4"))
                .bearer_auth(&token),
            &json!({ "value": value }),
        )
    };
    let first = send(&put(&name, "canary-az-1")).await;
    send(&put(&name, "canary-az-2")).await;
    let v1 = first["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let other = format!("avp-user-{id}");
    send(&put(&other, "shop")).await;
    let disabled = format!("avp-off-{id}");
    send(&put(&disabled, "canary-az-off")).await;
    send(&json_body(
        http.patch(format!("{base}/secrets/{disabled}?api-version=7.4"))
            .bearer_auth(&token),
        &json!({"attributes": {"enabled": false}}),
    ))
    .await;

    let before = calls(&http, &base).await;
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("AVP_TYPE", "azurekeyvault".to_owned()),
        ("AZURE_TENANT_ID", tenant.clone()),
        ("AZURE_CLIENT_ID", client_id.clone()),
        ("AZURE_CLIENT_SECRET", client_secret.clone()),
        ("AZURE_AUTHORITY_HOST", env("AZURE_AUTHORITY_HOST")),
        ("HUSH_AZURE_VAULT_DOMAIN", env("HUSH_AZURE_VAULT_DOMAIN")),
        ("HUSH_AZURE_CA_FILE", ca.clone()),
    ];
    // AVP's documented forms: inline `<path:VAULT#NAME>` and `#NAME#VERSION`, read secret by
    // secret; the annotation `avp.kubernetes.io/path: VAULT` reads every enabled secret.
    let out = render(
        dir.path(),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: inline\nstringData:\n  \
             current: <path:keyvault#{name}>\n  again: <path:keyvault#{name}>\n  \
             old: <path:keyvault#{name}#{v1}>\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: annotated\n  annotations:\n    \
             avp.kubernetes.io/path: keyvault\nstringData:\n  user: <{other}>\n  \
             password: <{name}>\n"
        ),
        &vars,
    );
    let stdout = ok(&out);
    for want in [
        "current: canary-az-2",
        "again: canary-az-2",
        "old: canary-az-1",
        "user: shop",
        "password: canary-az-2",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    let after = calls(&http, &base).await;
    let count = |v: &Value, what: &str| v["calls"][what].as_u64().unwrap_or(0);
    let tokens = |v: &Value| v["tokens"][&client_id].as_u64().unwrap_or(0);
    assert_eq!(tokens(&after), tokens(&before) + 1, "one token per render");
    // The inline placeholder read once (two occurrences), its version once, and once more by
    // the annotated object's listing; the listing once.
    let get = format!("GET /secrets/{name}/");
    assert_eq!(count(&after, &get) - count(&before, &get), 2, "{after}");
    let get_v1 = format!("GET /secrets/{name}/{v1}");
    assert_eq!(count(&after, &get_v1) - count(&before, &get_v1), 1);
    assert_eq!(
        count(&after, "GET /secrets") - count(&before, "GET /secrets"),
        1
    );
    // A disabled secret is skipped by the listing: its placeholder has no value.
    let out = render(
        dir.path(),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  annotations:\n    \
             avp.kubernetes.io/path: keyvault\nstringData:\n  p: <{disabled}>\n"
        ),
        &vars,
    );
    assert!(failed(&out).contains(&format!("<{disabled}>")));
    // Versions only inline, as AVP documents: refused on the annotation.
    let out = render(
        dir.path(),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  annotations:\n    \
             avp.kubernetes.io/path: keyvault\n    avp.kubernetes.io/secret-version: {v1}\n\
             stringData:\n  p: <{name}>\n"
        ),
        &vars,
    );
    assert!(failed(&out).contains("inline placeholder"));
    // A missing secret is a missing value naming the placeholder; a bad vault name is refused.
    let out = render(
        dir.path(),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  p: <path:keyvault#absent-x>\n",
        &vars,
    );
    assert!(failed(&out).contains("<path:keyvault#absent-x>"));
    let out = render(
        dir.path(),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  p: <path:evil.example#x>\n",
        &vars,
    );
    assert!(failed(&out).contains("not a Key Vault name"));
}
