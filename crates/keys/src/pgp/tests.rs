//! Unit tests of the PGP key service that need no gpg (the gpg and sops interop is in
//! `tests/pgp_interop.rs`).

use super::*;

const FP: &str = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4";

#[test]
fn parses_fingerprints_like_sops() {
    let keys = PgpKey::parse_list(&format!(
        "{FP}, 85D7 7543 B3D6 24B6 3CEA  9E6D BC17 301B 491B 3F21"
    ))
    .unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].fingerprint(), FP);
    assert_eq!(
        keys[1].fingerprint(),
        "85D77543B3D624B63CEA9E6DBC17301B491B3F21"
    );
    assert!(PgpKey::parse_list("").unwrap().is_empty());
    for bad in [
        "",
        "xyz",
        "ABCD",
        "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381BZ",
    ] {
        assert!(PgpKey::from_fingerprint(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn not_addressed_and_garbage() {
    let key = PgpKey::from_fingerprint(FP).unwrap().with_gpg(GpgConfig {
        disabled: true,
        ..GpgConfig::default()
    });
    let other = WrappedKey::new(
        TYPE_ID,
        "85D77543B3D624B63CEA9E6DBC17301B491B3F21",
        b"x".to_vec(),
    );
    assert!(key.unwrap(&other, b"").await.unwrap().is_none());
    // The same fingerprint written with spaces and lower case is ours.
    let spaced = WrappedKey::new(TYPE_ID, FP.to_lowercase(), b"not armor".to_vec());
    let err = key.unwrap(&spaced, b"").await.unwrap_err().to_string();
    assert!(err.contains("not an armored PGP message"), "{err}");
    for body in [
        b"-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----".to_vec(),
        b"-----BEGIN PGP MESSAGE-----\nzzzz\n".to_vec(),
        vec![0xff; 64],
    ] {
        assert!(
            key.unwrap(&WrappedKey::new(TYPE_ID, FP, body), b"")
                .await
                .is_err()
        );
    }
    // Without the key and without gpg, wrapping fails with both reasons.
    let err = key
        .wrap(&SecretBytes::from_slice(&[1; 32]), b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not in the loaded keyrings") && err.contains("disabled"),
        "{err}"
    );
}

#[test]
fn keyring_errors_name_the_source() {
    let mut ring = PgpKeyring::new();
    let err = ring
        .add_bytes("keys.asc", b"garbage")
        .unwrap_err()
        .to_string();
    assert!(err.contains("keys.asc"), "{err}");
    let err = ring
        .add_bytes(
            "k2",
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("k2"), "{err}");
    assert!(ring.is_empty());
}

/// A fresh Ed25519 certification key with a Curve25519 encryption subkey (rpgp).
fn generated() -> &'static SignedSecretKey {
    use pgp::composed::{EncryptionCaps, KeyType, SecretKeyParamsBuilder, SubkeyParamsBuilder};
    use pgp::crypto::ecc_curve::ECCCurve;
    static KEY: std::sync::OnceLock<SignedSecretKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut encrypt = SubkeyParamsBuilder::default();
        encrypt
            .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
            .can_sign(false)
            .can_encrypt(EncryptionCaps::All)
            .can_authenticate(false);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(false)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id("Hush Unit <unit@example.invalid>".into())
            .subkeys(vec![encrypt.build().unwrap()]);
        params
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap()
    })
}

fn rust_only(secret: bool) -> PgpKey {
    let key = generated();
    let mut ring = PgpKeyring::new();
    let bytes = if secret {
        key.to_armored_string(ArmorOptions::default()).unwrap()
    } else {
        key.to_public_key()
            .to_armored_string(ArmorOptions::default())
            .unwrap()
    };
    assert_eq!(ring.add_bytes("generated", bytes.as_bytes()).unwrap(), 1);
    PgpKey::from_fingerprint(&fingerprint_of(&key.to_public_key()))
        .unwrap()
        .with_keyring(Arc::new(ring))
        .with_gpg(GpgConfig {
            disabled: true,
            ..GpgConfig::default()
        })
}

#[tokio::test]
async fn pure_rust_round_trip() {
    let data_key = SecretBytes::from_slice(&[42u8; 32]);
    // The public key alone wraps; only the secret key unwraps.
    let public_only = rust_only(false);
    let wrapped = public_only.wrap(&data_key, b"").await.unwrap();
    let text = std::str::from_utf8(&wrapped.body).unwrap();
    assert!(text.starts_with("-----BEGIN PGP MESSAGE-----\n"), "{text}");
    assert!(text.ends_with("-----END PGP MESSAGE-----"), "{text}");
    let err = public_only
        .unwrap(&wrapped, b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not decrypt"), "{err}");
    let with_secret = rust_only(true);
    let got = with_secret.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());
    // Debug shows fingerprints and counts, never key material.
    let debug = format!("{with_secret:?}");
    assert!(
        debug.contains("secret_keys: 1") && !debug.contains("PRIVATE"),
        "{debug}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_messages_never_panic(lines in proptest::collection::vec("[A-Za-z0-9+/=]{0,76}", 0..12)) {
        let body = format!(
            "-----BEGIN PGP MESSAGE-----\n\n{}\n-----END PGP MESSAGE-----",
            lines.join("\n")
        );
        let key = rust_only(true);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let result = rt.block_on(key.unwrap(&WrappedKey::new(TYPE_ID, "", body.into_bytes()), b""));
        proptest::prop_assert!(result.is_err());
    }

    #[test]
    fn arbitrary_key_files_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = PgpKeyring::new().add_bytes("fuzz", &bytes);
    }
}

#[test]
fn legacy_keyrings_of_a_gnupg_home() {
    let home = tempfile::tempdir().unwrap();
    assert!(PgpKeyring::from_gnupg_home(home.path()).unwrap().is_empty());
    let key = generated();
    let public = key
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .unwrap();
    std::fs::write(home.path().join("pubring.gpg"), public).unwrap();
    let ring = PgpKeyring::from_gnupg_home(home.path()).unwrap();
    assert_eq!(ring.len(), 1);
    std::fs::write(home.path().join("secring.gpg"), b"not a keyring").unwrap();
    let err = PgpKeyring::from_gnupg_home(home.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("secring.gpg"), "{err}");
}
