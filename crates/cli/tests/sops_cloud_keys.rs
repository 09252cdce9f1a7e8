//! `hush sops encrypt --gcp-kms` / `--azure-kv` and decrypt against the Google Cloud and Azure
//! test servers (scripts/services/{gcp,azure}.sh, which also export hush's endpoint variables;
//! scripts/test.sh runs these with `--include-ignored`). Credentials as sops takes them:
//! `GOOGLE_CREDENTIALS`, `AZURE_TENANT_ID`/`AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`; the metadata
//! server without `GOOGLE_*`; `AZURE_FEDERATED_TOKEN_FILE`. Each kind also
//! goes through `.sops.yaml` creation rules, `rotate --add-/--rm-`, `key_groups` and `updatekeys`.
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
    // Without credentials the file does not open, and the error names the key. (Google's last
    // resort, the metadata server, is pointed at a closed port.)
    let out = Command::new(hush)
        .args(["sops", "decrypt"])
        .arg(&enc)
        .env_remove("GOOGLE_CREDENTIALS")
        .env_remove("AZURE_CLIENT_SECRET")
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(list) && !err.contains("CANARY"), "{err}");
}

/// One key of a kind in the lifecycle test: its id on a flag and in `.sops.yaml`, how it looks
/// in the file's metadata, and its `key_groups` map entry.
struct LifeKey {
    id: String,
    marker: String,
    group_entry: String,
}

fn hush_in(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hush"))
        .current_dir(dir)
        .arg("sops")
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hush sops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `.sops.yaml` creation rule → encrypt, `rotate --add-FLAG`, `rotate --rm-FLAG`, then
/// `key_groups` map entries → `updatekeys`; after each step the metadata names exactly the
/// expected keys and the file decrypts against the server.
fn lifecycle(flag: &str, rule_key: &str, keys: &[LifeKey; 2], envs: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = "password: CANARY-life\n";
    std::fs::write(d.join("s.yaml"), plain).unwrap();
    let has = |present: &[bool; 2]| {
        let text = std::fs::read_to_string(d.join("s.yaml")).unwrap();
        assert!(!text.contains("CANARY"), "{text}");
        for (k, want) in keys.iter().zip(present) {
            assert_eq!(text.contains(&k.marker), *want, "{}: {text}", k.marker);
        }
        assert_eq!(hush_in(d, &["decrypt", "s.yaml"], envs), plain);
    };
    std::fs::write(
        d.join(".sops.yaml"),
        format!(
            "creation_rules:\n  - path_regex: s\\.yaml$\n    {rule_key}: {}\n",
            keys[0].id
        ),
    )
    .unwrap();
    hush_in(d, &["encrypt", "-i", "s.yaml"], envs);
    has(&[true, false]);
    let add = format!("--add-{flag}");
    hush_in(d, &["rotate", "-i", &add, &keys[1].id, "s.yaml"], envs);
    has(&[true, true]);
    let rm = format!("--rm-{flag}");
    hush_in(d, &["rotate", "-i", &rm, &keys[0].id, "s.yaml"], envs);
    has(&[false, true]);
    std::fs::write(
        d.join(".sops.yaml"),
        format!(
            "creation_rules:\n  - path_regex: s\\.yaml$\n    key_groups:\n      - {rule_key}:\n          - {}\n",
            keys[0].group_entry
        ),
    )
    .unwrap();
    hush_in(d, &["updatekeys", "-y", "s.yaml"], envs);
    has(&[true, false]);
}

async fn gcp_key(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    ring: &str,
    name: &str,
) -> LifeKey {
    let base = format!("{url}/v1/projects/hush-test/locations/global/keyRings");
    send(
        http,
        &format!("{base}/{ring}/cryptoKeys?cryptoKeyId={name}"),
        Some(token),
        json!({"purpose": "ENCRYPT_DECRYPT"}),
    )
    .await;
    let id = format!("projects/hush-test/locations/global/keyRings/{ring}/cryptoKeys/{name}");
    LifeKey {
        marker: format!("resource_id: {id}"),
        group_entry: format!("resource_id: {id}"),
        id,
    }
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
        ..hush_gcp::Endpoints::default()
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
    let first = gcp_key(&http, &url, token.expose(), &ring, "sops").await;
    // No GOOGLE_* credentials: the metadata server (GCE_METADATA_HOST, exported by gcp.sh) as
    // Google's clients fall back to it; one token per hush process.
    let node = format!(
        "node-{}@hush-test.iam.gserviceaccount.com",
        std::process::id()
    );
    send(
        &http,
        &format!("{url}/hush/metadata-identity"),
        None,
        json!({"email": node}),
    )
    .await;
    round_trip("--gcp-kms", &first.id, "gcp_kms", &[]);
    let calls = reqwest_get(&http, &format!("{url}/hush/calls")).await;
    assert_eq!(calls["tokens"][&node], 2, "{calls}");
    // Off GCP nothing answers: the error names the variables and the server that was asked.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("s.yaml");
    std::fs::write(&plain, "a: b\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(["sops", "encrypt", "--gcp-kms", &first.id])
        .arg(&plain)
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("GOOGLE_CREDENTIALS") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    let envs = [("GOOGLE_CREDENTIALS", key_json.as_str())];
    round_trip("--gcp-kms", &first.id, "gcp_kms", &envs);
    let second = gcp_key(&http, &url, token.expose(), &ring, "second").await;
    lifecycle("gcp-kms", "gcp_kms", &[first, second], &envs);
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
    let make = async |suffix: &str| {
        let name = format!("cli-{}-{suffix}", std::process::id());
        let created = send(
            &http,
            &format!("{url}/keys/{name}/create?api-version=7.4"),
            Some(token.expose()),
            json!({"kty": "RSA"}),
        )
        .await;
        let kid = created["key"]["kid"].as_str().unwrap().to_owned();
        let (vault, rest) = kid.split_once("/keys/").unwrap();
        let version = rest.rsplit('/').next().unwrap();
        LifeKey {
            marker: format!("name: {name}\n"),
            group_entry: format!("{{vaultUrl: \"{vault}\", key: {name}, version: {version}}}"),
            id: kid,
        }
    };
    let first = make("a").await;
    let second = make("b").await;
    let (tenant, client, secret) = (s("tenant_id"), s("client_id"), s("client_secret"));
    let envs = [
        ("AZURE_TENANT_ID", tenant.as_str()),
        ("AZURE_CLIENT_ID", client.as_str()),
        ("AZURE_CLIENT_SECRET", secret.as_str()),
    ];
    round_trip("--azure-kv", &first.id, "azure_kv", &envs);
    // Workload identity: AZURE_FEDERATED_TOKEN_FILE (what the Azure workload identity webhook
    // mounts) instead of a secret; the server checks the token's issuer key and audience.
    let issuer_key = hush_crypto::rsa::RsaPrivateKey::generate(2048).unwrap();
    let (issuer, subject) = ("https://issuer.hush.test", "system:serviceaccount:ci:sops");
    let fed = send(
        &http,
        &format!("{url}/hush/apps"),
        None,
        json!({"federated": {"issuer": issuer, "subject": subject,
            "public_keys_pem": [issuer_key.public_key().to_pem()]}}),
    )
    .await;
    let signer =
        hush_crypto::jws::Rs256Signer::from_pem(issuer_key.to_pkcs1_pem().unwrap().expose())
            .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = signer
        .sign(
            br#"{"alg":"RS256","typ":"JWT"}"#,
            json!({"iss": issuer, "sub": subject, "aud": ["api://AzureADTokenExchange"],
                "iat": now, "exp": now + 600})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, &jwt).unwrap();
    let fed_client = fed["client_id"].as_str().unwrap().to_owned();
    let token_path = token_file.to_str().unwrap().to_owned();
    let fed_envs = [
        ("AZURE_TENANT_ID", tenant.as_str()),
        ("AZURE_CLIENT_ID", fed_client.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", token_path.as_str()),
    ];
    round_trip("--azure-kv", &first.id, "azure_kv", &fed_envs);
    let calls = reqwest_get(&http, &format!("{url}/hush/calls")).await;
    // One exchange per hush process that opened the key (encrypt, decrypt).
    assert_eq!(calls["tokens"][&fed_client], 2, "{calls}");
    lifecycle("azure-kv", "azure_keyvault", &[first, second], &envs);
}

async fn reqwest_get(http: &reqwest::Client, url: &str) -> Value {
    let response = http.get(url).send().await.unwrap();
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// A file real sops 3.13.3 wrote against this test server (`sops_golden/README.md` says how):
/// hush decrypts it once the server has a key of the name it names.
#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn gcp_kms_file_written_by_sops_3_13_3_decrypts() {
    let url = env("HUSH_GCP_URL");
    let http = reqwest::Client::new();
    let email = format!(
        "golden-{}@hush-test.iam.gserviceaccount.com",
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
    let key = hush_gcp::ServiceAccountKey::from_json(key_json.as_bytes()).unwrap();
    let endpoints = hush_gcp::Endpoints {
        kms: url.clone(),
        token: format!("{url}/token"),
        ..hush_gcp::Endpoints::default()
    };
    let token = hush_gcp::Client::new(hush_gcp::Credentials::ServiceAccount(key), endpoints, None)
        .unwrap()
        .tokens()
        .token()
        .await
        .unwrap();
    // The key ring may exist from an earlier run against the same server.
    let rings = format!("{url}/v1/projects/hush-test/locations/global/keyRings");
    for path in [
        format!("{rings}?keyRingId=golden-dc8528"),
        format!("{rings}/golden-dc8528/cryptoKeys?cryptoKeyId=sops"),
    ] {
        let body = if path.contains("cryptoKeys") {
            json!({"purpose": "ENCRYPT_DECRYPT"})
        } else {
            json!({})
        };
        let status = http
            .post(&path)
            .bearer_auth(token.expose())
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status.is_success() || status.as_u16() == 409,
            "{path}: {status}"
        );
    }
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sops_golden/gcp_kms.sops-3.13.3.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(["sops", "decrypt"])
        .arg(&golden)
        .env("GOOGLE_CREDENTIALS", &key_json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "password: CANARY-golden\nnested:\n    a: 1\n"
    );
}
