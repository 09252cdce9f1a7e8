//! `dataFrom[].rewrite[]`: operations on the whole fetched map, in order (ESO's `RewriteMap`):
//! `regexp` and `transform` rename keys, `merge` combines JSON object values.
//! Errors name the operation and keys, never values.

use std::collections::BTreeMap;

use hush_api::external_secrets::{Rewrite, RewriteMerge};
use hush_sync::SecretBytes;
use hush_sync::json::{go_float_text, go_marshal_any};
use serde_json::Value;

use crate::Error;

/// The fetched values of one `dataFrom` entry, by key.
pub type SecretMap = BTreeMap<String, SecretBytes>;

/// Applies `rewrites` in order; `transform` templates render within `limits`.
pub fn rewrite_map(
    mut map: SecretMap,
    rewrites: &[Rewrite],
    limits: hush_template::Limits,
) -> Result<SecretMap, Error> {
    for (i, r) in rewrites.iter().enumerate() {
        map = if let Some(re) = &r.regexp {
            let rx = regex::Regex::new(&re.source).map_err(|e| {
                Error::Spec(format!("rewrite[{i}].regexp.source {:?}: {e}", re.source))
            })?;
            map.into_iter()
                .map(|(k, v)| (rx.replace_all(&k, re.target.as_str()).into_owned(), v))
                .collect()
        } else if let Some(t) = &r.transform {
            // ESO's RewriteTransform: its function map, but Go's defaults otherwise (no
            // missingkey=error, no custom delimiters); parsed once per rewrite.
            let opts = hush_template::Options::preset(hush_template::Preset::ExternalSecrets)
                .missing_key(hush_template::MissingKey::Default)
                .limits(limits);
            let tpl = hush_template::Template::parse("transform", &t.template, &opts)
                .map_err(|e| Error::Template(format!("rewrite[{i}].transform: {e}")))?;
            let mut out = SecretMap::new();
            for (k, v) in map {
                let data = BTreeMap::from([("value".to_owned(), SecretBytes::from(k.as_str()))]);
                let key = tpl
                    .render(&data)
                    .map_err(|e| Error::Template(format!("rewrite[{i}].transform: {e}")))?;
                let key = String::from_utf8(key.expose().to_vec()).map_err(|_| {
                    Error::Template(format!("rewrite[{i}].transform: output is not UTF-8"))
                })?;
                out.insert(key, v);
            }
            out
        } else if let Some(m) = &r.merge {
            merge(m, map).map_err(|e| match e {
                Error::Spec(msg) => Error::Spec(format!("rewrite[{i}].merge: {msg}")),
                other => other,
            })?
        } else {
            map
        };
    }
    Ok(map)
}

/// ESO's `RewriteMerge`: every value is a JSON object; they are merged in key order (sorted,
/// then the `priority` keys in their order, so those win); a key seen twice is a conflict.
/// Extract makes each merged key a Secret key; JSON writes the merged object to `into` and keeps
/// the input keys.
pub fn merge(m: &RewriteMerge, input: SecretMap) -> Result<SecretMap, Error> {
    let priority_policy = policy(
        m.priority_policy.as_deref(),
        "Strict",
        &["Strict", "IgnoreNotFound"],
        "priorityPolicy",
    )?;
    let conflict_policy = policy(
        m.conflict_policy.as_deref(),
        "Error",
        &["Error", "Ignore"],
        "conflictPolicy",
    )?;
    let strategy = policy(
        m.strategy.as_deref(),
        "Extract",
        &["Extract", "JSON"],
        "strategy",
    )?;
    if strategy == "JSON" && m.into.as_deref().unwrap_or_default().is_empty() {
        return Err(Error::Spec(
            "strategy JSON needs `into` (the key to write)".into(),
        ));
    }
    let order = input
        .keys()
        .filter(|k| !m.priority.contains(k))
        .chain(m.priority.iter());
    let mut merged: serde_json::Map<String, Value> = serde_json::Map::new();
    let mut conflicts: Vec<String> = Vec::new();
    for key in order {
        let Some(value) = input.get(key) else {
            if priority_policy == "IgnoreNotFound" {
                continue;
            }
            return Err(Error::Spec(format!(
                "priority key {key:?} is not in the fetched data (priorityPolicy Strict; use IgnoreNotFound to skip it)"
            )));
        };
        // `null` decodes to an empty object in Go.
        let object: Option<serde_json::Map<String, Value>> = serde_json::from_slice(value.expose())
            .map_err(|_| Error::Spec(format!("value of key {key:?} is not a JSON object")))?;
        for (k, v) in object.unwrap_or_default() {
            if merged.contains_key(&k) {
                conflicts.push(k.clone());
            }
            merged.insert(k, v);
        }
    }
    if conflict_policy != "Ignore" && !conflicts.is_empty() {
        return Err(Error::Spec(format!(
            "keys in more than one value: {} (set conflictPolicy Ignore to let the later value win)",
            conflicts.join(", ")
        )));
    }
    if strategy == "JSON" {
        let into = m.into.clone().unwrap_or_default();
        let mut out = input;
        let object = Value::Object(merged);
        out.insert(
            into,
            SecretBytes::from(go_marshal_any(&object, false).as_str()),
        );
        return Ok(out);
    }
    Ok(merged
        .into_iter()
        .map(|(k, v)| {
            let bytes = match &v {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Number(n) => go_float_text(n).into_bytes(),
                Value::Bool(b) => b.to_string().into_bytes(),
                Value::Null => Vec::new(),
                Value::Array(_) | Value::Object(_) => go_marshal_any(&v, true).into_bytes(),
            };
            (k, SecretBytes::new(bytes))
        })
        .collect())
}

fn policy<'a>(
    value: Option<&'a str>,
    default: &'a str,
    allowed: &[&str],
    field: &str,
) -> Result<&'a str, Error> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) if allowed.contains(&v) => Ok(v),
        Some(v) => Err(Error::Spec(format!(
            "unknown {field} {v:?} (one of {})",
            allowed.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(items: &[(&str, &str)]) -> SecretMap {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretBytes::from(*v)))
            .collect()
    }

    fn text(m: &SecretMap) -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.clone(), String::from_utf8(v.expose().to_vec()).unwrap()))
            .collect()
    }

    fn rewrites(v: serde_json::Value) -> Vec<Rewrite> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn regexp_then_transform() {
        let r = rewrites(json!([
            {"regexp": {"source": "^app/(.*)", "target": "${1}"}},
            {"regexp": {"source": "/", "target": "-"}},
            {"transform": {"template": "x-{{ .value }}"}}
        ]));
        let out = rewrite_map(
            map(&[("app/db/pw", "v")]),
            &r,
            hush_template::Limits::default(),
        )
        .unwrap();
        assert_eq!(text(&out), BTreeMap::from([("x-db-pw".into(), "v".into())]));
        let bad = rewrites(json!([{"regexp": {"source": "(", "target": ""}}]));
        assert!(rewrite_map(map(&[("x", "v")]), &bad, hush_template::Limits::default()).is_err());
        // As in ESO's RewriteTransform: ESO's functions, Go's default missing-key mode.
        let r = rewrites(json!([{"transform": {"template": "{{ .value | upper }}{{ .absent }}"}}]));
        let out = rewrite_map(map(&[("k", "v")]), &r, hush_template::Limits::default()).unwrap();
        assert_eq!(
            text(&out),
            BTreeMap::from([("K<no value>".into(), "v".into())])
        );
        let r = rewrites(json!([{"transform": {"template": "{{ .value | toYaml | nope }}"}}]));
        let err = rewrite_map(map(&[("k", "v")]), &r, hush_template::Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"function "nope" not defined"#), "{err}");
    }

    #[test]
    fn merge_extract_sorted_then_priority() {
        let input = map(&[
            ("b", r#"{"user": "b-user", "n": 1.0, "deep": {"x": "<"}}"#),
            ("a", r#"{"user": "a-user", "flag": true, "none": null}"#),
            ("c", r#"{"user": "c-user"}"#),
        ]);
        let m: RewriteMerge =
            serde_json::from_value(json!({"priority": ["a"], "conflictPolicy": "Ignore"})).unwrap();
        // Order b, c, then a (priority): a wins.
        let out = merge(&m, input.clone()).unwrap();
        assert_eq!(
            text(&out),
            BTreeMap::from([
                ("user".into(), "a-user".into()),
                ("n".into(), "1".into()),
                ("flag".into(), "true".into()),
                ("none".into(), String::new()),
                ("deep".into(), r#"{"x":"\u003c"}"#.into()),
            ])
        );
        // Without a priority the last in sorted order (c) wins.
        let m: RewriteMerge = serde_json::from_value(json!({"conflictPolicy": "Ignore"})).unwrap();
        assert_eq!(text(&merge(&m, input.clone()).unwrap())["user"], "c-user");
        // Conflicts are errors by default, naming the keys only.
        let err = merge(&RewriteMerge::default(), input)
            .unwrap_err()
            .to_string();
        assert!(err.contains("user") && !err.contains("a-user"), "{err}");
    }

    #[test]
    fn merge_json_into_keeps_input() {
        let input = map(&[("a", r#"{"k": "<v>", "n": 1e21}"#), ("b", r#"{"m": 2}"#)]);
        let m: RewriteMerge =
            serde_json::from_value(json!({"strategy": "JSON", "into": "all"})).unwrap();
        let out = text(&merge(&m, input).unwrap());
        assert_eq!(out["all"], r#"{"k":"<v>","m":2,"n":1e+21}"#);
        assert_eq!(out["b"], r#"{"m": 2}"#);
        let no_into: RewriteMerge = serde_json::from_value(json!({"strategy": "JSON"})).unwrap();
        assert!(merge(&no_into, map(&[("a", "{}")])).is_err());
    }

    #[test]
    fn merge_policies_and_bad_values() {
        let strict: RewriteMerge = serde_json::from_value(json!({"priority": ["zz"]})).unwrap();
        assert!(merge(&strict, map(&[("a", "{}")])).is_err());
        let lenient: RewriteMerge =
            serde_json::from_value(json!({"priority": ["zz"], "priorityPolicy": "IgnoreNotFound"}))
                .unwrap();
        assert!(merge(&lenient, map(&[("a", r#"{"x":"1"}"#)])).is_ok());
        let err = merge(&RewriteMerge::default(), map(&[("a", "secret-canary")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"a\"") && !err.contains("canary"), "{err}");
        let bad: RewriteMerge = serde_json::from_value(json!({"strategy": "Yaml"})).unwrap();
        assert!(merge(&bad, map(&[("a", "{}")])).is_err());
        assert_eq!(
            merge(&RewriteMerge::default(), map(&[("a", "null")]))
                .unwrap()
                .len(),
            0
        );
    }
}
