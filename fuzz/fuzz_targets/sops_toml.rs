//! The toml store: parse, and when it parses, what it wrote must parse again.
#![no_main]

use hush_sops::stores::{Format, emit_plain, load_plain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(docs) = load_plain(Format::Toml, data)
        && let Ok(out) = emit_plain(Format::Toml, &docs, None)
    {
        let again = load_plain(Format::Toml, &out);
        assert!(
            again.is_ok()
                || out.is_empty()
                || matches!(again, Err(hush_sops::Error::Conflict { .. })),
            "the toml writer produced text its reader refuses"
        );
    }
});
