//! sops `gcp_kms` and `azure_kv` key services against the Google Cloud and Azure test servers
//! (scripts/services/{gcp,azure}.sh; scripts/test.sh runs these with `--include-ignored`).
#![cfg(all(feature = "gcp-kms", feature = "azure-kv"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use hush_keys::azure_kv::AzureKvKey;
use hush_keys::gcp_kms::GcpKmsKey;
use hush_keys::{KeyService, SecretBytes, WrappedKey};
use serde_json::{Value, json};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: start scripts/services/gcp.sh and azure.sh"))
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut r = http
        .request(method, url)
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

#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn gcp_kms_wraps_and_unwraps_a_data_key_as_sops_writes_it() {
    let url = env("HUSH_GCP_URL");
    let http = reqwest::Client::new();
    let email = format!(
        "sops-{}@hush-test.iam.gserviceaccount.com",
        std::process::id()
    );
    let key_json = send(
        &http,
        reqwest::Method::POST,
        &format!("{url}/hush/service-accounts"),
        None,
        json!({"email": email, "project": "hush-test"}),
    )
    .await
    .to_string();
    let endpoints = hush_gcp::Endpoints {
        secret_manager: url.clone(),
        kms: url.clone(),
        token: format!("{url}/token"),
        ..hush_gcp::Endpoints::default()
    };
    let creds = hush_gcp::Credentials::ServiceAccount(
        hush_gcp::ServiceAccountKey::from_json(key_json.as_bytes()).unwrap(),
    );
    let seeding = hush_gcp::Client::new(creds.clone(), endpoints.clone(), None).unwrap();
    let token = seeding.tokens().token().await.unwrap();
    let ring = format!("sops-{}", std::process::id());
    send(
        &http,
        reqwest::Method::POST,
        &format!("{url}/v1/projects/hush-test/locations/global/keyRings?keyRingId={ring}"),
        Some(token.expose()),
        json!({}),
    )
    .await;
    for k in ["a", "b"] {
        send(&http, reqwest::Method::POST,
            &format!("{url}/v1/projects/hush-test/locations/global/keyRings/{ring}/cryptoKeys?cryptoKeyId={k}"),
            Some(token.expose()), json!({"purpose": "ENCRYPT_DECRYPT"})).await;
    }
    let resource =
        |k: &str| format!("projects/hush-test/locations/global/keyRings/{ring}/cryptoKeys/{k}");
    let key = GcpKmsKey::new(&resource("a"), creds.clone(), endpoints.clone()).unwrap();
    assert_eq!(key.key_id(), resource("a"));
    let data_key = SecretBytes::from_slice(&[5u8; 32]);
    let wrapped = key.wrap(&data_key, b"").await.unwrap();
    assert_eq!(wrapped.type_id, "gcp_kms");
    // `enc` is standard base64 of the KMS ciphertext.
    let enc = std::str::from_utf8(&wrapped.body).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(enc)
        .unwrap();
    let back = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(back.expose(), data_key.expose());
    // Another key's entry is not ours; the same ciphertext under another key fails.
    let other = GcpKmsKey::new(&resource("b"), creds, endpoints).unwrap();
    assert!(other.unwrap(&wrapped, b"").await.unwrap().is_none());
    let moved = WrappedKey::new("gcp_kms", "", wrapped.body.clone());
    assert!(other.unwrap(&moved, b"").await.is_err());
}

#[tokio::test]
#[ignore = "needs the Azure test server (scripts/services/azure.sh)"]
async fn azure_kv_wraps_and_unwraps_a_data_key_as_sops_writes_it() {
    let url = env("HUSH_AZURE_URL");
    let cloud = hush_azure::Cloud {
        authority_host: url.clone(),
        vault_domain: url.trim_start_matches("https://").to_owned(),
        vault_resource: "https://vault.azure.net".into(),
        ca_pem: Some(std::fs::read(env("HUSH_AZURE_CA")).unwrap()),
    };
    let http = cloud.http_client().unwrap();
    let app = send(
        &http,
        reqwest::Method::POST,
        &format!("{url}/hush/apps"),
        None,
        json!({}),
    )
    .await;
    let s = |k: &str| app[k].as_str().unwrap().to_owned();
    let credential = hush_azure::Credential {
        tenant_id: s("tenant_id"),
        client_id: s("client_id"),
        secret: hush_azure::Secret::client_secret(&s("client_secret")),
    };
    let tokens = hush_azure::TokenSource::new(
        http.clone(),
        credential.clone(),
        &url,
        &cloud.vault_scope(),
        None,
    )
    .unwrap();
    let token = tokens.token().await.unwrap();
    let name = format!("sops-{}", std::process::id());
    let created = send(
        &http,
        reqwest::Method::POST,
        &format!("{url}/keys/{name}/create?api-version=7.4"),
        Some(token.expose()),
        json!({"kty": "RSA", "key_size": 2048}),
    )
    .await;
    let version = created["key"]["kid"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let key = AzureKvKey::new(&url, &name, &version, credential.clone(), &cloud).unwrap();
    assert_eq!(key.key_id(), format!("{url}/keys/{name}/{version}"));
    let data_key = SecretBytes::from_slice(&[6u8; 32]);
    let wrapped = key.wrap(&data_key, b"").await.unwrap();
    // `enc` is base64url without padding of the 256-byte RSA-OAEP-256 result.
    let enc = std::str::from_utf8(&wrapped.body).unwrap();
    assert!(
        !enc.contains('=') && !enc.contains('+') && !enc.contains('/'),
        "{enc}"
    );
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(enc)
            .unwrap()
            .len(),
        256
    );
    let back = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(back.expose(), data_key.expose());
    // The current version when the entry names none.
    let latest = AzureKvKey::new(&url, &name, "", credential, &cloud).unwrap();
    let moved = WrappedKey::new("azure_kv", "", wrapped.body.clone());
    assert_eq!(
        latest.unwrap(&moved, b"").await.unwrap().unwrap().expose(),
        data_key.expose()
    );
    // A vault outside the cloud's domain is refused before any request.
    let err = AzureKvKey::new(
        "https://evil.example",
        &name,
        "",
        hush_azure::Credential {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: hush_azure::Secret::client_secret("x"),
        },
        &cloud,
    )
    .unwrap_err();
    assert!(err.to_string().contains("Key Vault domain"), "{err}");
}
