//! The `ENC[AES256_GCM,…]` parser and value decryption: never panics on any text.
#![no_main]

use hush_crypto::DataKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = hush_sops::enc::parse(s);
        let _ = hush_sops::enc::decrypt_value(&DataKey::from_bytes([7; 32]), s, b"a:");
    }
});
