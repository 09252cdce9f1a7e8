//! hush-azure against the Azure test server (tests/cloud/azure_server.py, started by
//! scripts/services/azure.sh; scripts/test.sh runs these with `--include-ignored`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use hush_azure::{Cloud, CloudError as _, Credential, Secret, TokenSource, VaultClient};
use serde_json::{Value, json};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start scripts/services/azure.sh (scripts/test.sh does)")
    })
}

fn cloud() -> Cloud {
    let url = env("HUSH_AZURE_URL");
    Cloud {
        authority_host: url.clone(),
        vault_domain: url.trim_start_matches("https://").to_owned(),
        vault_resource: "https://vault.azure.net".to_owned(),
        ca_pem: Some(std::fs::read(env("HUSH_AZURE_CA")).unwrap()),
    }
}

async fn call(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let http = cloud().http_client().unwrap();
    let mut r = http.request(method, format!("{}{path}", env("HUSH_AZURE_URL")));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let response = r.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn tokens_of(client_id: &str) -> u64 {
    let v = call(reqwest::Method::GET, "/hush/calls", None, None).await;
    v["tokens"][client_id].as_u64().unwrap_or(0)
}

async fn app(body: Value) -> (String, String, String) {
    let a = call(reqwest::Method::POST, "/hush/apps", None, Some(body)).await;
    let s = |k: &str| a[k].as_str().unwrap().to_owned();
    (s("tenant_id"), s("client_id"), s("client_secret"))
}

fn vault(credential: Credential) -> (VaultClient, Arc<TokenSource>) {
    let cloud = cloud();
    let http = cloud.http_client().unwrap();
    let tokens = Arc::new(
        TokenSource::new(
            http.clone(),
            credential,
            &cloud.authority_host,
            "https://vault.azure.net/.default",
            None,
        )
        .unwrap(),
    );
    let client =
        VaultClient::new(http, &env("HUSH_AZURE_URL"), &cloud, tokens.clone(), None).unwrap();
    (client, tokens)
}

#[tokio::test]
#[ignore = "needs the Azure test server (scripts/services/azure.sh)"]
async fn secrets_with_a_client_secret_one_token_refreshed_before_expiry() {
    let (tenant_id, client_id, secret) = app(json!({"token_lifetime": 3})).await;
    let (client, tokens) = vault(Credential {
        tenant_id,
        client_id: client_id.clone(),
        secret: Secret::client_secret(&secret),
    });
    // The test seeds the vault with the application's own (shared, cached) token.
    let token = tokens.token().await.unwrap();
    let token = token.expose();
    let name = format!("db-{}", std::process::id());
    let put = |value: &str| json!({"value": value, "tags": {"team": "a"}});
    let path = format!("/secrets/{name}?api-version=7.4");
    let first = call(reqwest::Method::PUT, &path, Some(token), Some(put("v1"))).await;
    call(
        reqwest::Method::PUT,
        &path,
        Some(token),
        Some(put("v2-CANARY")),
    )
    .await;
    let v1 = first["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let latest = client.get_secret(&name, "").await.unwrap();
    assert_eq!(latest.value.as_str(), "v2-CANARY");
    assert_eq!(latest.tags["team"], "a");
    assert!(!format!("{latest:?}").contains("CANARY"));
    assert_eq!(
        client.get_secret(&name, &v1).await.unwrap().value.as_str(),
        "v1"
    );
    assert!(
        client
            .get_secret("no-such-secret", "")
            .await
            .unwrap_err()
            .is_not_found()
    );
    let listed = client.list_secrets().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|s| s.name == name && s.tags["team"] == "a" && s.enabled)
    );
    assert_eq!(tokens_of(&client_id).await, 1);
    // The token lives 3 s: it is fetched again before it expires, once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    client.get_secret(&name, "").await.unwrap();
    client.get_secret(&name, &v1).await.unwrap();
    assert_eq!(tokens_of(&client_id).await, 2);
    // Disabled versions are refused with Key Vault's code.
    let token = tokens.token().await.unwrap();
    call(
        reqwest::Method::PATCH,
        &format!("/secrets/{name}/{v1}?api-version=7.4"),
        Some(token.expose()),
        Some(json!({"attributes": {"enabled": false}})),
    )
    .await;
    let err = client.get_secret(&name, &v1).await.unwrap_err();
    assert!(err.to_string().contains("SecretDisabled"), "{err}");
    assert!(client.get_secret("../keys", "").await.is_err());
    // A wrong client secret: Entra ID's error code, no secret in the message.
    let (tenant_id, client_id, _) = app(json!({})).await;
    let (bad, _) = vault(Credential {
        tenant_id,
        client_id,
        secret: Secret::client_secret("WRONG-CANARY"),
    });
    let err = bad.get_secret(&name, "").await.unwrap_err().to_string();
    assert!(
        err.contains("invalid_client") && !err.contains("CANARY"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs the Azure test server (scripts/services/azure.sh)"]
async fn keys_wrap_and_unwrap_with_a_client_certificate() {
    let key = hush_crypto::rsa::RsaPrivateKey::generate(2048).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cert = hush_crypto::cert::self_signed(
        &key,
        "hush-test-app",
        now - 60,
        now + 3600,
        &mut hush_crypto::SystemEntropy,
    )
    .unwrap();
    let (tenant_id, client_id, _) = app(json!({"certificate_pem": cert.to_pem()})).await;
    let mut pem = cert.to_pem().into_bytes();
    pem.extend_from_slice(key.to_pkcs1_pem().unwrap().expose());
    let (client, tokens) = vault(Credential {
        tenant_id,
        client_id: client_id.clone(),
        secret: Secret::certificate(&pem).unwrap(),
    });
    let token = tokens.token().await.unwrap();
    let name = format!("sops-{}", std::process::id());
    let created = call(
        reqwest::Method::POST,
        &format!("/keys/{name}/create?api-version=7.4"),
        Some(token.expose()),
        Some(json!({"kty": "RSA", "key_size": 2048})),
    )
    .await;
    let version = created["key"]["kid"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let data_key = [9u8; 32];
    let wrapped = client
        .wrap_key(&name, &version, "RSA-OAEP-256", &data_key)
        .await
        .unwrap();
    assert_eq!(wrapped.len(), 256);
    let unwrapped = client
        .unwrap_key(&name, &version, "RSA-OAEP-256", &wrapped)
        .await
        .unwrap();
    assert_eq!(unwrapped.as_slice(), data_key);
    // The latest version when none is named.
    let unwrapped = client
        .unwrap_key(&name, "", "RSA-OAEP-256", &wrapped)
        .await
        .unwrap();
    assert_eq!(unwrapped.as_slice(), data_key);
    assert_eq!(tokens_of(&client_id).await, 1);
}

#[tokio::test]
#[ignore = "needs the Azure test server (scripts/services/azure.sh)"]
async fn workload_identity_reads_the_federated_token_file() {
    let issuer_key = hush_crypto::rsa::RsaPrivateKey::generate(2048).unwrap();
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let subject = "system:serviceaccount:team-a:app";
    let (tenant_id, client_id, _) = app(json!({"federated": {"issuer": issuer, "subject": subject,
        "public_keys_pem": [issuer_key.public_key().to_pem()]}}))
    .await;
    let pkcs8 = pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        issuer_key.to_pkcs8_der().expose(),
    ));
    let signer = hush_crypto::jws::Rs256Signer::from_pem(pkcs8.as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = signer
        .sign(
            br#"{"alg":"RS256","typ":"JWT"}"#,
            json!({"iss": issuer, "sub": subject, "aud": ["api://AzureADTokenExchange"], "iat": now, "exp": now + 600})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let dir = tempfile_dir();
    let file = dir.join("azure-identity-token");
    std::fs::write(&file, format!("{jwt}\n")).unwrap();
    let (client, _) = vault(Credential {
        tenant_id,
        client_id: client_id.clone(),
        secret: Secret::FederatedTokenFile(file.clone()),
    });
    client.list_secrets().await.unwrap();
    assert_eq!(tokens_of(&client_id).await, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hush-azure-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
