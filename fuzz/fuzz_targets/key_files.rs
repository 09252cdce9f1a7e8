//! Key and certificate files hush reads from tenants and operators: X.509 certificates
//! (`--cert`, `/v1/cert.pem`), RSA keys (`--recovery-private-key`, controller key Secrets), age
//! identity files and recipient lists, OpenPGP key files (`*.asc` in the render plugin's key
//! directory). Any bytes give keys or an error, never a panic.
#![no_main]

use std::sync::Arc;

use hush_keys::age::{AgeKey, AgePrompt, Identities};
use hush_keys::pgp::PgpKeyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hush_crypto::cert::Certificate::from_pem(data);
    let _ = hush_crypto::rsa::RsaPublicKey::from_pem(data);
    let _ = hush_crypto::rsa::RsaPrivateKey::from_pem(data);
    let _ = hush_sealing::keys::parse_private_keys(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let prompt = AgePrompt::Passphrase(Arc::new(secrecy::SecretString::from("fuzz")));
        let ids = Identities::from_text("fuzz", text, prompt);
        let _ = ids.recipients();
        let _ = AgeKey::parse_list(text);
    }
    let _ = PgpKeyring::new().add_bytes("fuzz", data);
});
