//! The argocd-vault-plugin placeholder parser (hush-render): scanning any text never panics,
//! every placeholder found is the exact slice it claims to be, and every modifier pipeline
//! applied to any string value either works or returns an error. The input is also run as a
//! Kubernetes JSONPath template against a fixed document (filters, ranges, recursion).
#![no_main]

use hush_render::jsonpath;
use hush_render::placeholder::{apply, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = serde_json::json!({
        "items": [
            {"name": "a", "n": 1.5, "tags": ["x", "y"], "m": {"k.v": null}},
            {"name": "b", "n": -2, "ok": true, "s": "<&>"}
        ],
        "empty": [], "text": "abc"
    });
    let _ = jsonpath::execute(text, &doc);
    for generic in [false, true] {
        if let Ok(found) = scan(text, generic) {
            let mut end = 0;
            for p in found {
                assert!(p.range.start >= end, "placeholders overlap");
                assert_eq!(&text[p.range.clone()], p.text);
                end = p.range.end;
                let mut v = serde_json::Value::String(text.to_owned());
                for m in &p.modifiers {
                    match apply(m, v) {
                        Ok(next) => v = next,
                        Err(_) => break,
                    }
                }
            }
        }
    }
});
