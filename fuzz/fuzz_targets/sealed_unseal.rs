//! The sealed controller's request path as a library call, as `/v1/verify` and `/v1/rotate` run
//! it (no server): read a SealedSecret (JSON or YAML), unseal it with the controller's key and
//! render its `spec.template.data` over what opened, then reseal the result. Any bytes give a
//! Secret or an error within the template and YAML budgets, never a panic.
#![no_main]

use std::sync::OnceLock;

use hush_crypto::rsa::RsaPrivateKey;
use hush_sealing::codec;
use hush_sealing::unseal::{Keyring, UnsealOptions};
use libfuzzer_sys::fuzz_target;

/// A fixed key (the crypto crate's test vector), so the corpus can hold values sealed to it.
fn keyring() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| {
        let pem = include_bytes!("../../crates/crypto/tests/vectors/rsa2048.pkcs1.pem");
        let mut ring = Keyring::new();
        ring.add(RsaPrivateKey::from_pem(pem).expect("test vector key"));
        ring
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = codec::read_sealed_secret(data) else {
        return;
    };
    for accept_deprecated_v1_data in [false, true] {
        // The HTTP API's budget (--api-max-decrypt-operations' default).
        let opts = UnsealOptions {
            accept_deprecated_v1_data,
            max_key_operations: Some(1_000),
            ..UnsealOptions::default()
        };
        if let Ok(unsealed) = keyring().unseal(&sealed, &opts) {
            let public = keyring_public();
            let _ = hush_sealing::seal::seal_secret(
                public,
                &unsealed.secret,
                &mut hush_crypto::SystemEntropy,
            );
        }
    }
});

fn keyring_public() -> &'static hush_crypto::rsa::RsaPublicKey {
    static P: OnceLock<hush_crypto::rsa::RsaPublicKey> = OnceLock::new();
    P.get_or_init(|| {
        let pem = include_bytes!("../../crates/crypto/tests/vectors/rsa2048.pkcs1.pem");
        RsaPrivateKey::from_pem(pem)
            .expect("test vector key")
            .public_key()
            .clone()
    })
}
