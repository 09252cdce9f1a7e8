//! Property tests: every round trip of the crypto core holds for arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the assertion

use hush_crypto::rsa::RsaPrivateKey;
use hush_crypto::{DataKey, SecretBytes, SystemEntropy, aead, envelope, shamir};
use proptest::prelude::*;
use std::sync::OnceLock;

fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::generate(2048).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sops_gcm_roundtrip(key in any::<[u8; 32]>(), pt in proptest::collection::vec(any::<u8>(), 0..512), aad in ".{0,40}") {
        let key = DataKey::from_bytes(key);
        let ct = aead::sops_encrypt(&key, &pt, aad.as_bytes(), &mut SystemEntropy).unwrap();
        let back = aead::sops_decrypt(&key, &ct.iv, &ct.data, &ct.tag, aad.as_bytes()).unwrap();
        prop_assert_eq!(back.expose(), pt.as_slice());
    }

    #[test]
    fn envelope_roundtrip(pt in proptest::collection::vec(any::<u8>(), 0..300), label in "[a-z0-9/-]{0,30}") {
        let env = envelope::seal(key().public_key(), &pt, label.as_bytes(), &mut SystemEntropy).unwrap();
        prop_assert_eq!(env.len(), 2 + 256 + pt.len() + 16);
        let back = envelope::open(key(), &env, label.as_bytes()).unwrap();
        prop_assert_eq!(back.expose(), pt.as_slice());
    }

    #[test]
    fn envelope_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = envelope::split(&data);
    }

    #[test]
    fn shamir_any_threshold_subset(secret in proptest::collection::vec(any::<u8>(), 1..48), parts in 2usize..7, t in 2usize..7, pick in any::<u64>()) {
        prop_assume!(t <= parts);
        let shares = shamir::split(&secret, parts, t, &mut SystemEntropy).unwrap();
        // Choose t distinct shares from `pick`.
        let mut idx: Vec<usize> = (0..parts).collect();
        let mut p = pick;
        for i in (1..idx.len()).rev() {
            idx.swap(i, (p % (i as u64 + 1)) as usize);
            p /= i as u64 + 1;
        }
        let subset: Vec<SecretBytes> = idx[..t].iter().map(|&i| shares[i].clone()).collect();
        let combined = shamir::combine(&subset).unwrap();
        prop_assert_eq!(combined.expose(), secret.as_slice());
    }
}
