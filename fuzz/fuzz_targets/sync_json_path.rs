//! ESO's gjson-style property paths (hush-sync): any path against any JSON document finds a
//! value or nothing, never a panic. Input: a path, then after the first newline a JSON document
//! (a fixed one when that does not parse).
#![no_main]

use hush_sync::json::{gjson_get, go_marshal, go_marshal_any, property, property_dotted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, doc) = text.split_once('\n').unwrap_or((text, ""));
    let doc: serde_json::Value = serde_json::from_str(doc).unwrap_or_else(|_| {
        serde_json::json!({"a": {"b": [1, {"c.d": "x"}], "e": null}, "a.b": true, "#": 1})
    });
    for found in [
        property(&doc, path),
        gjson_get(&doc, path),
        property_dotted(&doc, path),
    ]
    .into_iter()
    .flatten()
    {
        let _ = go_marshal(found);
        let _ = go_marshal_any(found, true);
    }
});
