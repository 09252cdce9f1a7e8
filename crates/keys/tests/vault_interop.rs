//! Vault transit keys against a real OpenBao dev server and the real sops 3.11.0.
//!
//! Needs `eval "$(scripts/services/openbao.sh start)"` (HUSH_VAULT_ADDR, HUSH_VAULT_TOKEN) and the
//! sops peer; fails when they are missing.
#![cfg(feature = "hc-vault")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hush_keys::vault_transit::{VaultToken, VaultTransitKey};
use hush_keys::{KeyService, SecretBytes, WrappedKey};

/// Creates a fresh transit key and returns its `--hc-vault-transit` URI.
async fn fresh_key() -> (String, String) {
    let addr = common::env("HUSH_VAULT_ADDR");
    let token = common::env("HUSH_VAULT_TOKEN");
    let name = format!("hush-{}", hex(&common::fresh_data_key()[..6]));
    let status = reqwest::Client::new()
        .post(format!("{addr}/v1/transit/keys/{name}"))
        .header("X-Vault-Token", &token)
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "creating the transit key: {status}");
    (format!("{addr}/v1/transit/keys/{name}"), token)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
#[ignore = "needs scripts/services/openbao.sh"]
async fn round_trip_and_errors() {
    let (uri, token) = fresh_key().await;
    let key = VaultTransitKey::from_uri(&uri)
        .unwrap()
        .with_token(VaultToken::new(token));
    assert_eq!(key.key_id(), uri);
    let data_key = SecretBytes::from_slice(&common::fresh_data_key());
    let wrapped = key.wrap(&data_key, b"").await.unwrap();
    assert!(wrapped.body.starts_with(b"vault:v1:"));
    assert_eq!(wrapped.key_id, uri);
    let got = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());

    // A wrong token: an error with Vault's message, never the token.
    let bad = VaultTransitKey::from_uri(&uri)
        .unwrap()
        .with_token(VaultToken::new("s.wrong-token"));
    let err = bad.unwrap(&wrapped, b"").await.unwrap_err().to_string();
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("wrong-token"), "{err}");
    // A tampered ciphertext is refused.
    let mut tampered = wrapped.clone();
    let last = tampered.body.len() - 2;
    tampered.body[last] = if tampered.body[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert!(key.unwrap(&tampered, b"").await.is_err());
    // Another key's entry is not ours.
    let other = WrappedKey::new("hc_vault", format!("{uri}x"), wrapped.body.clone());
    assert!(key.unwrap(&other, b"").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs scripts/services/openbao.sh and the sops peer"]
async fn interop_with_sops_both_ways() {
    let (uri, token) = fresh_key().await;
    let dir = tempfile::tempdir().unwrap();
    let key = VaultTransitKey::from_uri(&uri)
        .unwrap()
        .with_token(VaultToken::new(token.clone()));

    // sops wraps, hush unwraps.
    let doc = common::sops_encrypt(dir.path(), &["--hc-vault-transit", &uri], |c| {
        c.env("VAULT_TOKEN", &token);
    });
    let entry = &doc["sops"]["hc_vault"][0];
    let addr = entry["vault_address"].as_str().unwrap();
    let from_meta = VaultTransitKey::from_metadata(
        addr,
        entry["engine_path"].as_str().unwrap(),
        entry["key_name"].as_str().unwrap(),
    )
    .unwrap()
    .with_token(VaultToken::new(token.clone()));
    assert_eq!(from_meta.key_id(), uri);
    let wrapped = WrappedKey::new(
        "hc_vault",
        uri.clone(),
        entry["enc"].as_str().unwrap().as_bytes().to_vec(),
    );
    let data_key = from_meta.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(
        common::decrypt_secret(&doc, data_key.expose()),
        "s3cr3t value"
    );

    // hush wraps, sops unwraps.
    let data_key = common::fresh_data_key();
    let wrapped = key
        .wrap(&SecretBytes::from_slice(&data_key), b"")
        .await
        .unwrap();
    let file = common::hand_made_sops_json(
        &data_key,
        "hc_vault",
        serde_json::json!({
            "vault_address": key.vault_address(),
            "engine_path": key.engine_path(),
            "key_name": key.key_name(),
            "created_at": "2026-01-02T03:04:05Z",
            "enc": String::from_utf8(wrapped.body).unwrap(),
        }),
    );
    let plain = common::sops_decrypt_secret(dir.path(), &file, |c| {
        c.env("VAULT_TOKEN", &token);
    });
    assert_eq!(plain, "made by hush");
}

/// A dev server with TLS and its own CA, owned by this test (killed on drop).
struct TlsBao {
    child: std::process::Child,
    addr: String,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsBao {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(common::env("HUSH_PEER_BAO"))
            .args(["server", "-dev", "-dev-tls", "-dev-root-token-id=tls-root"])
            .arg(format!("-dev-tls-cert-dir={}", certs.display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            addr: format!("https://127.0.0.1:{port}"),
            ca: certs.join("vault-ca.pem"),
            _dir: dir,
        }
    }
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[ignore = "needs the bao peer (scripts/dev-env.sh)"]
async fn tls_with_a_private_ca() {
    use hush_keys::vault_transit::VaultTls;
    let bao = TlsBao::start();
    let trusted = VaultTls {
        ca_cert: Some(bao.ca.clone()),
        ..VaultTls::default()
    };
    // The CA file appears, then the server answers.
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = trusted.client()
            && c.post(format!("{}/v1/sys/mounts/transit", bao.addr))
                .header("X-Vault-Token", "tls-root")
                .body(r#"{"type":"transit"}"#)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let client = client.expect("the TLS dev server did not come up");
    let status = client
        .post(format!("{}/v1/transit/keys/tls", bao.addr))
        .header("X-Vault-Token", "tls-root")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());

    let uri = format!("{}/v1/transit/keys/tls", bao.addr);
    let data_key = SecretBytes::from_slice(&common::fresh_data_key());
    let key = VaultTransitKey::from_uri(&uri)
        .unwrap()
        .with_token(VaultToken::new("tls-root"))
        .with_tls(&trusted)
        .unwrap();
    let wrapped = key.wrap(&data_key, b"").await.unwrap();
    assert_eq!(
        key.unwrap(&wrapped, b"").await.unwrap().unwrap().expose(),
        data_key.expose()
    );
    // The system roots do not know the dev CA: refused.
    let untrusted = VaultTransitKey::from_uri(&uri)
        .unwrap()
        .with_token(VaultToken::new("tls-root"))
        .with_tls(&VaultTls::default())
        .unwrap();
    assert!(untrusted.unwrap(&wrapped, b"").await.is_err());
    // VAULT_SKIP_VERIFY accepts it.
    let skip = VaultTransitKey::from_uri(&uri)
        .unwrap()
        .with_token(VaultToken::new("tls-root"))
        .with_tls(&VaultTls {
            skip_verify: true,
            ..VaultTls::default()
        })
        .unwrap();
    assert!(skip.unwrap(&wrapped, b"").await.unwrap().is_some());
    // An unreadable CA file is a configuration error naming the variable.
    let bad = VaultTls {
        ca_cert: Some(bao.ca.with_file_name("missing.pem")),
        ..VaultTls::default()
    };
    let err = bad.client().unwrap_err().to_string();
    assert!(err.contains("VAULT_CACERT"), "{err}");
}
