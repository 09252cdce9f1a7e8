//! `hush sops encrypt --gcp-kms` / `--azure-kv` and decrypt against the Google Cloud and Azure
//! test servers (scripts/services/{gcp,azure}.sh, which also export hush's endpoint variables;
//! scripts/test.sh runs these with `--include-ignored`). Credentials as sops takes them:
//! `GOOGLE_CREDENTIALS`, `AZURE_TENANT_ID`/`AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: start scripts/services/gcp.sh and azure.sh"))
}

async fn send(http: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> Value {
    let mut r = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// Encrypts a file for `flag key` with `envs`, checks the metadata list `list`, decrypts.
fn round_trip(flag: &str, key: &str, list: &str, envs: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("s.yaml");
    std::fs::write(&plain, "password: CANARY-cloud\n").unwrap();
    let hush = env!("CARGO_BIN_EXE_hush");
    let out = Command::new(hush)
        .args(["sops", "encrypt", flag, key])
        .arg(&plain)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let encrypted = String::from_utf8(out.stdout).unwrap();
    assert!(encrypted.contains(&format!("    {list}:\n")), "{encrypted}");
    assert!(!encrypted.contains("CANARY"));
    let enc = dir.path().join("s.enc.yaml");
    std::fs::write(&enc, &encrypted).unwrap();
    let out = Command::new(hush)
        .args(["sops", "decrypt"])
        .arg(&enc)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "password: CANARY-cloud\n"
    );
    // Without credentials the file does not open, and the error names the key.
    let out = Command::new(hush)
        .args(["sops", "decrypt"])
        .arg(&enc)
        .env_remove("GOOGLE_CREDENTIALS")
        .env_remove("AZURE_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(list) && !err.contains("CANARY"), "{err}");
}

#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn gcp_kms_encrypt_and_decrypt() {
    let url = env("HUSH_GCP_URL");
    let http = reqwest::Client::new();
    let email = format!(
        "cli-{}@hush-test.iam.gserviceaccount.com",
        std::process::id()
    );
    let key_json = send(
        &http,
        &format!("{url}/hush/service-accounts"),
        None,
        json!({"email": email}),
    )
    .await
    .to_string();
    let creds = hush_gcp::Credentials::ServiceAccount(
        hush_gcp::ServiceAccountKey::from_json(key_json.as_bytes()).unwrap(),
    );
    let endpoints = hush_gcp::Endpoints {
        secret_manager: url.clone(),
        kms: url.clone(),
        token: format!("{url}/token"),
    };
    let token = hush_gcp::Client::new(creds, endpoints, None)
        .unwrap()
        .tokens()
        .token()
        .await
        .unwrap();
    let ring = format!("cli-{}", std::process::id());
    let base = format!("{url}/v1/projects/hush-test/locations/global/keyRings");
    send(
        &http,
        &format!("{base}?keyRingId={ring}"),
        Some(token.expose()),
        json!({}),
    )
    .await;
    send(
        &http,
        &format!("{base}/{ring}/cryptoKeys?cryptoKeyId=sops"),
        Some(token.expose()),
        json!({"purpose": "ENCRYPT_DECRYPT"}),
    )
    .await;
    let resource = format!("projects/hush-test/locations/global/keyRings/{ring}/cryptoKeys/sops");
    round_trip(
        "--gcp-kms",
        &resource,
        "gcp_kms",
        &[("GOOGLE_CREDENTIALS", &key_json)],
    );
}

#[tokio::test]
#[ignore = "needs the Azure test server (scripts/services/azure.sh)"]
async fn azure_kv_encrypt_and_decrypt() {
    let url = env("HUSH_AZURE_URL");
    let cloud = hush_azure::Cloud {
        authority_host: url.clone(),
        vault_domain: url.trim_start_matches("https://").to_owned(),
        vault_resource: "https://vault.azure.net".into(),
        ca_pem: Some(std::fs::read(env("HUSH_AZURE_CA")).unwrap()),
    };
    let http = cloud.http_client().unwrap();
    let app = send(&http, &format!("{url}/hush/apps"), None, json!({})).await;
    let s = |k: &str| app[k].as_str().unwrap().to_owned();
    let tokens = hush_azure::TokenSource::new(
        http.clone(),
        hush_azure::Credential {
            tenant_id: s("tenant_id"),
            client_id: s("client_id"),
            secret: hush_azure::Secret::client_secret(&s("client_secret")),
        },
        &url,
        &cloud.vault_scope(),
        None,
    )
    .unwrap();
    let token = tokens.token().await.unwrap();
    let name = format!("cli-{}", std::process::id());
    let created = send(
        &http,
        &format!("{url}/keys/{name}/create?api-version=7.4"),
        Some(token.expose()),
        json!({"kty": "RSA"}),
    )
    .await;
    let kid = created["key"]["kid"].as_str().unwrap().to_owned();
    let (tenant, client, secret) = (s("tenant_id"), s("client_id"), s("client_secret"));
    round_trip(
        "--azure-kv",
        &kid,
        "azure_kv",
        &[
            ("AZURE_TENANT_ID", &tenant),
            ("AZURE_CLIENT_ID", &client),
            ("AZURE_CLIENT_SECRET", &secret),
        ],
    );
}
