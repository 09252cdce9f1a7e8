//! The metadata reader, through each store that carries metadata.
#![no_main]

use hush_sops::stores::{Format, load_encrypted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for f in [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini, Format::Binary] {
        let _ = load_encrypted(f, data);
    }
});
