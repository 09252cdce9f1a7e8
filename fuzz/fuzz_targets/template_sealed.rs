//! hush-template with the Sealed Secrets preset (sprig's function set): any template text, parsed
//! and rendered over data that is partly the fuzz input, gives output or an error within the
//! default budgets, never a panic, a hang or an unbounded allocation. Input: template text, then
//! after the first 0xFF byte a data value.
#![no_main]

mod template_common;

use hush_template::Preset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| template_common::run(Preset::SealedSecrets, data));
