//! hush-gcp against the Google Cloud test server (tests/cloud/gcp_server.py, started by
//! scripts/services/gcp.sh; scripts/test.sh runs these with `--include-ignored`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_gcp::{Client, CloudError as _, Credentials, Endpoints, ServiceAccountKey};
use serde_json::{Value, json};

fn url() -> String {
    std::env::var("HUSH_GCP_URL")
        .expect("HUSH_GCP_URL is not set: start scripts/services/gcp.sh (scripts/test.sh does)")
}

async fn post(path: &str, token: Option<&str>, body: Value) -> Value {
    let mut r = reqwest::Client::new()
        .post(format!("{}{path}", url()))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn tokens_of(email: &str) -> u64 {
    let text = reqwest::get(format!("{}/hush/calls", url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["tokens"][email].as_u64().unwrap_or(0)
}

fn endpoints() -> Endpoints {
    Endpoints {
        secret_manager: url(),
        kms: url(),
        token: format!("{}/token", url()),
        sts: format!("{}/v1/token", url()),
        iam_credentials: url(),
    }
}

async fn service_account(tag: &str, lifetime: u64) -> (String, ServiceAccountKey) {
    let email = format!(
        "{tag}-{}@hush-test.iam.gserviceaccount.com",
        std::process::id()
    );
    let key = post(
        "/hush/service-accounts",
        None,
        json!({"email": email, "project": "hush-test", "token_lifetime": lifetime}),
    )
    .await;
    let key = ServiceAccountKey::from_json(key.to_string().as_bytes()).unwrap();
    (email, key)
}

#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn secret_manager_reads_with_one_cached_token_refreshed_before_expiry() {
    let (email, key) = service_account("sm", 3).await;
    let observed = Arc::new(Mutex::new(Vec::new()));
    let seen = observed.clone();
    let client = Client::new(
        Credentials::ServiceAccount(key),
        endpoints(),
        Some(Arc::new(move |name, ok| {
            seen.lock().unwrap().push((name, ok))
        })),
    )
    .unwrap();
    let token = client.tokens().token().await.unwrap();
    let t = token.expose();
    let id = format!("db-{}", std::process::id());
    post(
        &format!("/v1/projects/hush-test/secrets?secretId={id}"),
        Some(t),
        json!({"replication": {"automatic": {}}, "labels": {"team": "a"}}),
    )
    .await;
    for data in ["djE=", "AP8K"] {
        post(
            &format!("/v1/projects/hush-test/secrets/{id}:addVersion"),
            Some(t),
            json!({"payload": {"data": data}}),
        )
        .await;
    }
    let latest = client
        .access_secret_version("hush-test", &id, "")
        .await
        .unwrap();
    assert_eq!(latest.as_slice(), [0, 0xff, b'\n']);
    let v1 = client
        .access_secret_version("hush-test", &id, "1")
        .await
        .unwrap();
    assert_eq!(v1.as_slice(), b"v1");
    let missing = client
        .access_secret_version("hush-test", "no-such-secret", "latest")
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let meta = client.get_secret("hush-test", &id).await.unwrap();
    assert_eq!(meta.labels["team"], "a");
    let listed = client
        .list_secrets("hush-test", "labels.team=a")
        .await
        .unwrap();
    assert!(listed.iter().any(|s| s.id == id), "{listed:?}");
    let none = client
        .list_secrets("hush-test", "labels.team=zzz")
        .await
        .unwrap();
    assert!(none.iter().all(|s| s.id != id));
    // Every read above shared one token.
    assert_eq!(tokens_of(&email).await, 1);
    assert!(
        observed
            .lock()
            .unwrap()
            .contains(&("AccessSecretVersion", true))
    );
    // The token lives 3 s: it is fetched again before it expires, once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    client
        .access_secret_version("hush-test", &id, "1")
        .await
        .unwrap();
    client
        .access_secret_version("hush-test", &id, "2")
        .await
        .unwrap();
    assert_eq!(tokens_of(&email).await, 2);
    // A hostile path segment never reaches the server.
    let err = client
        .access_secret_version("hush-test", "../../x", "1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a valid"), "{err}");
}

#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn kms_encrypts_and_decrypts_a_data_key() {
    let (_, key) = service_account("kms", 3600).await;
    let client = Client::new(Credentials::ServiceAccount(key), endpoints(), None).unwrap();
    let token = client.tokens().token().await.unwrap();
    let ring = format!("ring-{}", std::process::id());
    post(
        &format!("/v1/projects/hush-test/locations/global/keyRings?keyRingId={ring}"),
        Some(token.expose()),
        json!({}),
    )
    .await;
    post(
        &format!(
            "/v1/projects/hush-test/locations/global/keyRings/{ring}/cryptoKeys?cryptoKeyId=sops"
        ),
        Some(token.expose()),
        json!({"purpose": "ENCRYPT_DECRYPT"}),
    )
    .await;
    let resource = format!("projects/hush-test/locations/global/keyRings/{ring}/cryptoKeys/sops");
    let data_key = [7u8; 32];
    let ciphertext = client.kms_encrypt(&resource, &data_key).await.unwrap();
    let plain = client.kms_decrypt(&resource, &ciphertext).await.unwrap();
    assert_eq!(plain.as_slice(), data_key);
    let other = resource.replace("/sops", "/missing");
    assert!(
        client
            .kms_decrypt(&other, &ciphertext)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
#[ignore = "needs the Google Cloud test server (scripts/services/gcp.sh)"]
async fn assertions_go_only_to_the_configured_token_endpoint() {
    let (_, key) = service_account("uri", 3600).await;
    // The key names the test server's token endpoint; an operator who did not point hush there
    // (Google's endpoints) gets a refusal naming token_uri, before any request.
    let err =
        Client::new(Credentials::ServiceAccount(key), Endpoints::default(), None).unwrap_err();
    assert!(err.to_string().contains("token_uri"), "{err}");
    // A refused assertion is an API error with Google's OAuth2 code.
    let (_, mut stranger) = service_account("stranger", 3600).await;
    stranger.client_email = "nobody@hush-test.iam.gserviceaccount.com".into();
    let client = Client::new(Credentials::ServiceAccount(stranger), endpoints(), None).unwrap();
    let err = client
        .access_secret_version("hush-test", "x", "1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_grant"), "{err}");
}
