//! The ini store: parse, and when it parses, what it wrote must parse again.
#![no_main]

use hush_sops::stores::{Format, emit_plain, load_plain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(docs) = load_plain(Format::Ini, data)
        && let Ok(out) = emit_plain(Format::Ini, &docs, None)
    {
        let again = load_plain(Format::Ini, &out);
        // An empty document is written as an empty file, which sops refuses to read; a key
        // that looks like a git conflict marker is refused on purpose.
        assert!(
            again.is_ok()
                || out.is_empty()
                || matches!(again, Err(hush_sops::Error::Conflict { .. })),
            "the ini writer produced text its reader refuses"
        );
    }
});
