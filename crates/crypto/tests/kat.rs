//! Known-answer tests against vectors made by independent tools (openssl keys, Python
//! `cryptography`, an independent GF(2^8) implementation): see `vectors/generate.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the assertion

use base64::Engine as _;
use hush_crypto::cert::Certificate;
use hush_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use hush_crypto::{DataKey, Entropy, Error, SecretBytes, aead, envelope, shamir};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("vectors.json parses")
}

fn key(name: &str) -> RsaPrivateKey {
    let pem = std::fs::read(format!(
        "{}/tests/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    RsaPrivateKey::from_pem(&pem).unwrap()
}

fn b64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

fn hexv(s: &Value) -> Vec<u8> {
    hex::decode(s.as_str().unwrap()).unwrap()
}

/// The deterministic stream the vector generator assumes: byte k is (k * 31 + 7) mod 256.
struct Stream(usize);

impl Entropy for Stream {
    fn fill(&mut self, dest: &mut [u8]) -> hush_crypto::Result<()> {
        for b in dest {
            *b = ((self.0 * 31 + 7) & 0xff) as u8;
            self.0 += 1;
        }
        Ok(())
    }
}

#[test]
fn sealed_envelopes_from_python_cryptography_open() {
    for v in vectors()["sealed"].as_array().unwrap() {
        let k = key(v["key"].as_str().unwrap());
        let label = v["label"].as_str().unwrap().as_bytes();
        let env = b64(&v["envelope_b64"]);
        let plain = envelope::open(&k, &env, label).unwrap();
        assert_eq!(
            plain.expose(),
            b64(&v["plaintext_b64"]).as_slice(),
            "{}",
            v["label"]
        );
        // The same envelope under another scope's label is refused as one opaque error.
        let other = if label.is_empty() {
            &b"myns"[..]
        } else {
            &b""[..]
        };
        assert!(matches!(
            envelope::open(&k, &env, other),
            Err(Error::DecryptionFailed)
        ));
    }
}

#[test]
fn open_with_any_reports_the_key_that_opened() {
    let keys = [key("rsa2048.pkcs1.pem"), key("rsa4096.pkcs8.pem")];
    for v in vectors()["sealed"].as_array().unwrap() {
        let expected = usize::from(v["key"].as_str().unwrap() == "rsa4096.pkcs8.pem");
        let (plain, idx) = envelope::open_with_any(
            &keys,
            &b64(&v["envelope_b64"]),
            v["label"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(idx, expected);
        assert_eq!(plain.expose(), b64(&v["plaintext_b64"]).as_slice());
    }
}

#[test]
fn envelope_length_errors_are_distinct() {
    let k = key("rsa2048.pkcs1.pem");
    assert!(matches!(
        envelope::open(&k, &[], b""),
        Err(Error::Truncated { needed: 2, got: 0 })
    ));
    assert!(matches!(
        envelope::open(&k, &[0x01], b""),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        envelope::open(&k, &[0x02, 0x00, 1, 2, 3], b""),
        Err(Error::LengthPrefixTooLarge {
            prefix: 512,
            remaining: 3
        })
    ));
    let v = &vectors()["sealed"][0];
    let mut env = b64(&v["envelope_b64"]);
    let last = env.len() - 1;
    env[last] ^= 1; // tag
    assert!(matches!(
        envelope::open(&k, &env, b"myns/myname"),
        Err(Error::BadTag)
    ));
    env.truncate(2 + 256 + 10); // shorter than a tag after the RSA part
    assert!(matches!(
        envelope::open(&k, &env, b"myns/myname"),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn sops_gcm_32_byte_nonce_vectors() {
    for v in vectors()["sops_gcm"].as_array().unwrap() {
        let key = DataKey::try_from_slice(&hexv(&v["key_hex"])).unwrap();
        let iv: [u8; 32] = hexv(&v["iv_hex"]).try_into().unwrap();
        let aad = v["aad"].as_str().unwrap().as_bytes();
        let pt = hexv(&v["plaintext_hex"]);
        let ct = aead::sops_encrypt_with_iv(&key, &iv, &pt, aad).unwrap();
        assert_eq!(ct.data, hexv(&v["data_hex"]));
        assert_eq!(ct.tag.to_vec(), hexv(&v["tag_hex"]));
        let back = aead::sops_decrypt(&key, &iv, &ct.data, &ct.tag, aad).unwrap();
        assert_eq!(back.expose(), pt.as_slice());
        let mut wrong_aad = aad.to_vec();
        wrong_aad.push(b'x');
        assert!(matches!(
            aead::sops_decrypt(&key, &iv, &ct.data, &ct.tag, &wrong_aad),
            Err(Error::BadTag)
        ));
    }
}

#[test]
fn sops_gcm_with_injected_rng_draws_the_nonce() {
    let v = &vectors()["sops_gcm"][0];
    let key = DataKey::try_from_slice(&hexv(&v["key_hex"])).unwrap();
    let ct = aead::sops_encrypt(&key, b"hello", b"a:b:", &mut Stream(0)).unwrap();
    let mut expected_iv = [0u8; 32];
    Stream(0).fill(&mut expected_iv).unwrap();
    assert_eq!(ct.iv, expected_iv);
}

#[test]
fn shamir_vectors_from_an_independent_implementation() {
    for v in vectors()["shamir"].as_array().unwrap() {
        let secret = hexv(&v["secret_hex"]);
        let parts = v["parts"].as_u64().unwrap() as usize;
        let threshold = v["threshold"].as_u64().unwrap() as usize;
        let shares = shamir::split(&secret, parts, threshold, &mut Stream(0)).unwrap();
        let expected: Vec<Vec<u8>> = v["shares_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(hexv)
            .collect();
        let got: Vec<Vec<u8>> = shares.iter().map(|s| s.expose().to_vec()).collect();
        assert_eq!(got, expected);
        let subset: Vec<SecretBytes> = shares[parts - threshold..].to_vec();
        assert_eq!(
            shamir::combine(&subset).unwrap().expose(),
            secret.as_slice()
        );
    }
}

#[test]
fn shamir_rejects_bad_input() {
    let s = SecretBytes::from_slice(&[1, 2, 3]);
    assert!(
        shamir::combine(&[s.clone(), s.clone()]).is_err(),
        "duplicate x"
    );
    assert!(shamir::combine(&[s.clone(), SecretBytes::from_slice(&[1, 2])]).is_err());
    assert!(shamir::split(b"k", 2, 3, &mut Stream(0)).is_err());
    assert!(shamir::split(b"k", 3, 1, &mut Stream(0)).is_err());
    assert!(shamir::split(b"", 3, 2, &mut Stream(0)).is_err());
}

#[test]
fn pem_forms_and_certificates() {
    let pkcs8 = key("rsa4096.pkcs8.pem");
    let cert_pem = std::fs::read(format!(
        "{}/tests/vectors/rsa4096.cert.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let cert = Certificate::from_pem(&cert_pem).unwrap();
    assert_eq!(&cert.public_key, pkcs8.public_key());
    assert!(cert.not_after > cert.not_before);
    // PKCS#1 export round-trips and keeps the fingerprint.
    let again = RsaPrivateKey::from_pem(pkcs8.to_pkcs1_pem().unwrap().expose()).unwrap();
    assert_eq!(
        again.public_key().fingerprint(),
        pkcs8.public_key().fingerprint()
    );
    let pub_pem = std::fs::read(format!(
        "{}/tests/vectors/rsa2048.pub.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let public = RsaPublicKey::from_pem(&pub_pem).unwrap();
    assert_eq!(&public, key("rsa2048.pkcs1.pem").public_key());
    assert!(public.fingerprint().starts_with("SHA256:"));
    assert!(RsaPrivateKey::from_pem(b"not a key").is_err());
    assert!(
        Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    // `ssh-keygen -i -m PKCS8 -f rsa2048.pub.pem > k.pub && ssh-keygen -lf k.pub` prints this.
    let k = key("rsa2048.pkcs1.pem");
    assert_eq!(
        k.public_key().fingerprint(),
        "SHA256:CelmsTpP1Od5CN1l4YRp98DRPMoMMKNQkT0+cIx6IvA"
    );
}

#[test]
fn self_signed_certificate_roundtrip() {
    let k = key("rsa2048.pkcs1.pem");
    let cert = hush_crypto::cert::self_signed(
        &k,
        "sealed-secrets",
        1_700_000_000,
        1_800_000_000,
        &mut Stream(3),
    )
    .unwrap();
    let parsed = Certificate::from_pem(cert.to_pem().as_bytes()).unwrap();
    assert_eq!(parsed.not_before, 1_700_000_000);
    assert_eq!(parsed.not_after, 1_800_000_000);
    assert_eq!(&parsed.public_key, k.public_key());
}
