//! hush-template with the External Secrets preset (sprig plus ESO's functions, missingkey=error):
//! as `template_sealed`, with ESO's function set (PEM, PKCS#12, JWK, YAML, RSA).
#![no_main]

mod template_common;

use hush_template::Preset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| template_common::run(Preset::ExternalSecrets, data));
