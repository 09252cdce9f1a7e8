//! age keys against the real sops 3.11.0, both directions.
#![cfg(feature = "age")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use hush_keys::age::{AgeKey, AgePrompt, Identities};
use hush_keys::{KeyService, SecretBytes, WrappedKey};

fn keygen(dir: &std::path::Path) -> (String, String) {
    let path = dir.join("key.txt");
    common::run(
        std::process::Command::new(common::env("HUSH_PEER_AGE_KEYGEN"))
            .arg("-o")
            .arg(&path),
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (recipient, text)
}

#[tokio::test]
#[ignore = "needs the sops and age-keygen peers (scripts/dev-env.sh)"]
async fn hush_unwraps_what_sops_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, key_text) = keygen(dir.path());
    let doc = common::sops_encrypt(dir.path(), &["--age", &recipient], |_| {});
    let entry = &doc["sops"]["age"][0];
    assert_eq!(entry["recipient"], recipient.as_str());
    let enc = entry["enc"].as_str().unwrap();

    let ids = Arc::new(Identities::from_text(
        "key.txt",
        &key_text,
        AgePrompt::Never,
    ));
    let key = AgeKey::from_recipient(&recipient)
        .unwrap()
        .with_identities(ids);
    let wrapped = WrappedKey::new("age", recipient.clone(), enc.as_bytes().to_vec());
    let data_key = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(data_key.len(), 32);
    assert_eq!(
        common::decrypt_secret(&doc, data_key.expose()),
        "s3cr3t value"
    );
}

#[tokio::test]
#[ignore = "needs the sops and age-keygen peers (scripts/dev-env.sh)"]
async fn sops_unwraps_what_hush_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, _) = keygen(dir.path());
    let data_key = common::fresh_data_key();
    let key = AgeKey::from_recipient(&recipient).unwrap();
    let wrapped = key
        .wrap(&SecretBytes::from_slice(&data_key), b"")
        .await
        .unwrap();
    let enc = String::from_utf8(wrapped.body).unwrap();
    let file = common::hand_made_sops_json(
        &data_key,
        "age",
        serde_json::json!({ "recipient": recipient, "enc": enc }),
    );
    let key_file = dir.path().join("key.txt");
    let plain = common::sops_decrypt_secret(dir.path(), &file, |c| {
        c.env("SOPS_AGE_KEY_FILE", &key_file);
    });
    assert_eq!(plain, "made by hush");
    // And plain `age -d` opens the armored data key, as the reference says.
    let enc_path = dir.path().join("dk.age");
    std::fs::write(&enc_path, &enc).unwrap();
    let out = std::process::Command::new(common::env("HUSH_PEER_AGE"))
        .arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(&enc_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, data_key);
}
