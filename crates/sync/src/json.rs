//! JSON as ESO's providers write it, byte for byte: Go's `json.Marshal` (sorted keys, compact,
//! `<`, `>`, `&`, U+2028, U+2029 escaped), gjson paths for `property`, and the scalar formats of
//! `extract`.

use std::collections::BTreeMap;

use hush_gocompat::json::Encoder;
use serde_json::Value;
use serde_json::value::RawValue;

/// Go's `json.Marshal` of a decoded JSON value: object keys sorted, compact, HTML-escaped.
pub fn go_marshal(v: &Value) -> String {
    Encoder::MARSHAL.encode(v)
}

/// Go's encoding of a value that went through `json.Unmarshal` into `any`: numbers are
/// `float64` (`1.0` → `1`, `1e21` → `1e+21`); `escape_html` false is an encoder with
/// `SetEscapeHTML(false)`.
pub fn go_marshal_any(v: &Value, escape_html: bool) -> String {
    Encoder {
        float64: true,
        escape_html,
    }
    .encode(v)
}

/// A property value as ESO writes it: strings raw, numbers as their JSON text, booleans
/// `true`/`false`, objects and arrays as compact JSON, null as `null`.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => go_marshal(other),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` of a JSON number (Vault `extract` numbers go
/// through `float64`).
pub fn go_float_text(n: &serde_json::Number) -> String {
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    // Rust's Display of f64 is the shortest round-trip digits, never with an exponent: the
    // same text as Go's 'f' format with precision -1 ("1", "1.5", "1000000000000000000000").
    format!("{f}")
}

/// Looks up `path` in `v` as ESO does for `property`: an exact top-level key first, then a
/// gjson path (`a.b.c`, `\.` for a literal dot, numeric segments index arrays).
pub fn property<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(x) = v.as_object().and_then(|o| o.get(path)) {
        return Some(x);
    }
    gjson_get(v, path)
}

/// The subset of gjson paths ESO users write: dot-separated segments, `\` escapes the next
/// character, a numeric segment indexes an array, `#` is the array length. Wildcards, queries
/// and modifiers are not supported (they return `None`).
pub fn gjson_get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let segments = gjson_segments(path, &['*', '?', '|', '@'])?;
    let mut node = v;
    for seg in &segments {
        node = match node {
            Value::Object(o) => o.get(seg.as_str())?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// A gjson path's dot-separated segments (`\` escapes the next character); `None` when the
/// path ends in a lone `\` or holds one of `unsupported` (wildcards, queries, modifiers).
pub(crate) fn gjson_segments(path: &str, unsupported: &[char]) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push(chars.next()?),
            '.' => segments.push(std::mem::take(&mut cur)),
            c if unsupported.contains(&c) => return None,
            c => cur.push(c),
        }
    }
    segments.push(cur);
    Some(segments)
}

/// gjson with dots in `property` tried as literal first (AWS: `a.b` → `a\.b`, then `a.b`).
pub fn property_dotted<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.contains('.') {
        let escaped = path.replace('.', "\\.");
        if let Some(x) = gjson_get(v, &escaped) {
            return Some(x);
        }
    }
    gjson_get(v, path)
}

/// ESO's `extract` of AWS, Google Secret Manager and Azure Key Vault values: a JSON object;
/// string values unquoted, other values as their raw JSON text.
pub(crate) fn extract_raw(
    raw: &[u8],
) -> Result<std::collections::BTreeMap<String, crate::SecretBytes>, crate::ProviderError> {
    use serde_json::value::RawValue;
    let map: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_slice(raw)
        .map_err(|_| crate::ProviderError::Invalid("secret value is not a JSON object".into()))?;
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let text = match serde_json::from_str::<String>(v.get()) {
                Ok(s) => s,
                Err(_) => v.get().to_owned(),
            };
            (k, crate::SecretBytes::from(text.as_str()))
        })
        .collect())
}

/// gjson's `Get(json, path).String()` for the paths ESO users write: the value's own JSON text
/// (strings unquoted, `null` as ""), `None` when the path does not exist or the text is not JSON.
pub fn gjson_string(text: &str, path: &str) -> Option<String> {
    let segments = gjson_segments(path, &['*', '?', '|', '@', '#'])?;
    let mut raw: Box<RawValue> = serde_json::from_str(text).ok()?;
    for seg in &segments {
        let next = if raw.get().starts_with('{') {
            let mut o: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw.get()).ok()?;
            o.remove(seg.as_str())?
        } else if raw.get().starts_with('[') {
            let mut a: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).ok()?;
            let i: usize = seg.parse().ok()?;
            (i < a.len()).then(|| a.swap_remove(i))?
        } else {
            return None;
        };
        raw = next;
    }
    Some(unquote(&raw))
}

/// A JSON member as ESO writes it: a string unquoted, anything else as its JSON text
/// (`null` as "", as gjson's `String()`).
pub(crate) fn unquote(raw: &RawValue) -> String {
    match serde_json::from_str::<String>(raw.get()) {
        Ok(s) => s,
        Err(_) if raw.get() == "null" => String::new(),
        Err(_) => raw.get().to_owned(),
    }
}

/// Best effort: the strings of a JSON value built from secret data are wiped when dropped.
pub(crate) fn zeroize_strings(v: Value) {
    match v {
        Value::String(s) => drop(zeroize::Zeroizing::new(s)),
        Value::Object(o) => o.into_iter().for_each(|(_, v)| zeroize_strings(v)),
        Value::Array(a) => a.into_iter().for_each(zeroize_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marshal_matches_go() {
        let v: Value = serde_json::from_str(
            r#"{"z":1,"a":"<b>&\u2028","m":{"y":[true,null,1.5],"b":"x\ny"}}"#,
        )
        .unwrap();
        assert_eq!(
            go_marshal(&v),
            r#"{"a":"\u003cb\u003e\u0026\u2028","m":{"b":"x\ny","y":[true,null,1.5]},"z":1}"#
        );
        assert_eq!(go_marshal(&json!("\u{1}")), r#""\u0001""#);
    }

    #[test]
    fn marshal_of_any_has_float64_numbers() {
        let v: Value =
            serde_json::from_str(r#"{"i":1.0,"big":1e21,"small":1.5e-7,"n":-0.5,"h":"<&>"}"#)
                .unwrap();
        // Go: json.Unmarshal into any, then an encoder with SetEscapeHTML(false).
        assert_eq!(
            go_marshal_any(&v, false),
            r#"{"big":1e+21,"h":"<&>","i":1,"n":-0.5,"small":1.5e-7}"#
        );
        assert_eq!(
            go_marshal_any(&json!({"h": "<"}), true),
            r#"{"h":"\u003c"}"#
        );
    }

    #[test]
    fn properties_and_gjson() {
        let v = json!({"a.b": "literal", "a": {"b": "nested", "c": [10, {"d": "deep"}]}, "n": 5});
        assert_eq!(property(&v, "a.b").unwrap(), "literal");
        assert_eq!(gjson_get(&v, "a.b").unwrap(), "nested");
        assert_eq!(gjson_get(&v, "a\\.b").unwrap(), "literal");
        assert_eq!(property(&v, "a.c.1.d").unwrap(), "deep");
        assert_eq!(property_dotted(&v, "a.b").unwrap(), "literal");
        assert!(property(&v, "a.x").is_none());
        assert!(property(&v, "a.*").is_none());
        assert!(gjson_get(&v, "a.c.9").is_none());
        assert_eq!(scalar_text(&v["n"]), "5");
        assert_eq!(scalar_text(&v["a"]["c"]), r#"[10,{"d":"deep"}]"#);
    }

    #[test]
    fn floats_like_go() {
        for (input, want) in [
            ("1", "1"),
            ("1.5", "1.5"),
            ("1e21", "1000000000000000000000"),
            ("0.000001", "0.000001"),
            ("-3", "-3"),
        ] {
            let n: serde_json::Number = serde_json::from_str(input).unwrap();
            assert_eq!(go_float_text(&n), want, "{input}");
        }
    }
}
