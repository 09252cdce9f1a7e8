//! AWS KMS keys against a real moto server and the real sops 3.11.0.
//!
//! Needs `eval "$(scripts/services/moto.sh start)"` (HUSH_MOTO_URL) and the sops peer; fails when
//! they are missing.
#![cfg(feature = "kms")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use hush_keys::kms::KmsKey;
use hush_keys::kms::credentials::Credentials;
use hush_keys::{KeyService, SecretBytes, WrappedKey};

/// Creates a KMS key in moto (moto does not check signatures) and returns its ARN.
async fn fresh_key(url: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "TrentService.CreateKey")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    answer["KeyMetadata"]["Arn"].as_str().unwrap().to_owned()
}

fn testing() -> Credentials {
    Credentials::new("testing", "testing", None)
}

fn context() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_owned(), "hush".to_owned()),
        ("env".to_owned(), "test".to_owned()),
    ])
}

/// The environment sops needs to talk to moto.
fn aws_env(c: &mut std::process::Command, url: &str) {
    c.env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

#[tokio::test]
#[ignore = "needs scripts/services/moto.sh"]
async fn round_trip_context_and_role() {
    let url = common::env("HUSH_MOTO_URL");
    let arn = fresh_key(&url).await;
    let key = KmsKey::from_metadata(&arn, None, context(), None)
        .unwrap()
        .with_endpoint(&url)
        .with_credentials(testing());
    let data_key = SecretBytes::from_slice(&common::fresh_data_key());
    let wrapped = key.wrap(&data_key, b"").await.unwrap();
    assert_eq!(wrapped.key_id, arn);
    let got = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());

    // Another encryption context does not open it.
    let other_ctx = KmsKey::from_metadata(&arn, None, BTreeMap::new(), None)
        .unwrap()
        .with_endpoint(&url)
        .with_credentials(testing());
    let err = other_ctx
        .unwrap(&wrapped, b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Decrypt"), "{err}");
    assert!(!err.contains("testing"), "{err}");

    // Through an assumed role (STS AssumeRole at the same endpoint).
    let with_role = KmsKey::from_metadata(
        &arn,
        Some("arn:aws:iam::123456789012:role/sops"),
        context(),
        None,
    )
    .unwrap()
    .with_endpoint(&url)
    .with_credentials(testing());
    let got = with_role.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());

    // An unknown key is an error naming the AWS error.
    let missing = KmsKey::from_metadata(
        "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        None,
        BTreeMap::new(),
        None,
    )
    .unwrap()
    .with_endpoint(&url)
    .with_credentials(testing());
    let err = missing.wrap(&data_key, b"").await.unwrap_err().to_string();
    assert!(err.contains("NotFound"), "{err}");
}

#[tokio::test]
#[ignore = "needs scripts/services/moto.sh and the sops peer"]
async fn interop_with_sops_both_ways() {
    let url = common::env("HUSH_MOTO_URL");
    let arn = fresh_key(&url).await;
    let dir = tempfile::tempdir().unwrap();

    // sops wraps (with an encryption context), hush unwraps from the metadata.
    let doc = common::sops_encrypt(
        dir.path(),
        &["--kms", &arn, "--encryption-context", "app:hush,env:test"],
        |c| aws_env(c, &url),
    );
    let entry = &doc["sops"]["kms"][0];
    let ctx: BTreeMap<String, String> = serde_json::from_value(entry["context"].clone()).unwrap();
    assert_eq!(ctx, context());
    let key = KmsKey::from_metadata(
        entry["arn"].as_str().unwrap(),
        entry["role"].as_str(),
        ctx,
        entry["aws_profile"].as_str(),
    )
    .unwrap()
    .with_endpoint(&url)
    .with_credentials(testing());
    let wrapped = WrappedKey::new(
        "kms",
        arn.clone(),
        entry["enc"].as_str().unwrap().as_bytes().to_vec(),
    );
    let data_key = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
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
        "kms",
        serde_json::json!({
            "arn": arn,
            "context": context(),
            "created_at": "2026-01-02T03:04:05Z",
            "enc": String::from_utf8(wrapped.body).unwrap(),
            "aws_profile": "",
        }),
    );
    let plain = common::sops_decrypt_secret(dir.path(), &file, |c| aws_env(c, &url));
    assert_eq!(plain, "made by hush");
}
