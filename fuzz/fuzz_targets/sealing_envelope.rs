//! The Sealed Secrets envelope parser and opener: any bytes, as raw envelope and as the base64 a
//! SealedSecret carries, must give a result or an error, never a panic, and never open under a
//! key that did not seal them.
#![no_main]

use std::sync::OnceLock;

use hush_crypto::envelope;
use hush_crypto::rsa::RsaPrivateKey;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| RsaPrivateKey::generate(2048).expect("RSA-2048 key generation"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = envelope::split(data) {
        assert_eq!(2 + parts.rsa_ciphertext.len() + parts.sealed.len(), data.len());
        // Random bytes cannot pass OAEP and GCM under our key.
        assert!(envelope::open(key(), data, b"ns/name").is_err());
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(bytes) = hush_sealing::b64::decode(text)
    {
        let _ = envelope::split(&bytes);
        // Encoding what was decoded gives the input back, minus CR/LF (Go's leniency).
        let clean: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        let again = hush_sealing::b64::encode(&bytes);
        assert!(again == clean || again.len() == clean.len(), "base64 round trip");
    }
});
