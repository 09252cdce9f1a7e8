//! The template engine's YAML reader (ESO's `fromYaml` and `templateAs: KeysAndValues`): any
//! bytes give a value or an error, within the alias expansion budget and the nesting bound, and
//! what `toYaml` writes of a value reads back.
#![no_main]

use std::collections::BTreeMap;

use hush_crypto::SecretBytes;
use hush_template::{Options, Preset, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hush_template::yaml_string_map(data);
    let values = BTreeMap::from([("in".to_owned(), SecretBytes::from(data.to_vec()))]);
    let opts = Options::preset(Preset::ExternalSecrets);
    for text in [
        "{{ fromYaml .in | toYaml }}",
        "{{ fromYaml .in | toJson }}",
        "{{ fromYaml (fromYaml .in | toYaml) | toJson }}",
    ] {
        let t = Template::parse("fuzz", text, &opts).expect("fixed template parses");
        let _ = t.render(&values);
    }
});
