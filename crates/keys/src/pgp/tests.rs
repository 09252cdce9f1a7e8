//! Unit tests of the PGP key service that need no gpg (the gpg and sops interop is in
//! `tests/pgp_interop.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
