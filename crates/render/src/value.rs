//! Helpers over hush-sops' tree (the document model of a render) and JSON values (what
//! backends return and modifiers work on).

use hush_sops::tree::{Branch, Item, Value};
use serde_json::Value as Json;

/// The value of `key` in a map.
pub fn get<'a>(map: &'a [Item], key: &str) -> Option<&'a Value> {
    map.iter().find_map(|i| match i {
        Item::Entry(k, v) if k == key => Some(v),
        _ => None,
    })
}

/// The mutable value of `key` in a map.
pub fn get_mut<'a>(map: &'a mut [Item], key: &str) -> Option<&'a mut Value> {
    map.iter_mut().find_map(|i| match i {
        Item::Entry(k, v) if k == key => Some(v),
        _ => None,
    })
}

/// A string field of a map.
pub fn get_str<'a>(map: &'a [Item], key: &str) -> Option<&'a str> {
    match get(map, key)? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Sets `key` (replacing in place, else appending).
pub fn set(map: &mut Vec<Item>, key: &str, value: Value) {
    match get_mut(map, key) {
        Some(v) => *v = value,
        None => map.push(Item::Entry(key.to_owned(), value)),
    }
}

/// Removes `key`; returns its value.
pub fn remove(map: &mut Vec<Item>, key: &str) -> Option<Value> {
    let i = map
        .iter()
        .position(|i| matches!(i, Item::Entry(k, _) if k == key))?;
    match map.remove(i) {
        Item::Entry(_, v) => Some(v),
        _ => None,
    }
}

/// `metadata` of an object.
pub fn metadata(doc: &[Item]) -> Option<&[Item]> {
    match get(doc, "metadata")? {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

/// `metadata.annotations[key]`.
pub fn annotation<'a>(doc: &'a [Item], key: &str) -> Option<&'a str> {
    match get(metadata(doc)?, "annotations")? {
        Value::Map(a) => get_str(a, key),
        _ => None,
    }
}

/// `metadata.annotations`, created when missing.
pub fn annotations_mut(doc: &mut Branch) -> Option<&mut Vec<Item>> {
    if get(doc, "metadata").is_none() {
        doc.push(Item::Entry("metadata".into(), Value::Map(Vec::new())));
    }
    let Some(Value::Map(meta)) = get_mut(doc, "metadata") else {
        return None;
    };
    if get(meta, "annotations").is_none() {
        meta.push(Item::Entry("annotations".into(), Value::Map(Vec::new())));
    }
    match get_mut(meta, "annotations") {
        Some(Value::Map(a)) => Some(a),
        _ => None,
    }
}

/// `kind`, `metadata.name` and `metadata.namespace` ("" when absent), for messages.
pub fn identity(doc: &[Item]) -> (String, String, String) {
    let kind = get_str(doc, "kind").unwrap_or("").to_owned();
    let meta = metadata(doc).unwrap_or(&[]);
    let name = get_str(meta, "name").unwrap_or("").to_owned();
    let ns = get_str(meta, "namespace").unwrap_or("").to_owned();
    (kind, name, ns)
}

/// Whether a document is a Kubernetes object (has string `apiVersion` and `kind`).
pub fn is_object(doc: &[Item]) -> bool {
    get_str(doc, "apiVersion").is_some_and(|s| !s.is_empty())
        && get_str(doc, "kind").is_some_and(|s| !s.is_empty())
}

/// A tree value as JSON (comments dropped; bytes as lossy UTF-8).
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null | Value::Comment(_) => Json::Null,
        Value::Str(s) | Value::Time(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bool(b) => Json::Bool(*b),
        Value::Map(m) => Json::Object(map_to_json(m)),
        Value::List(l) => Json::Array(
            l.iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .map(to_json)
                .collect(),
        ),
    }
}

/// A map as a JSON object.
pub fn map_to_json(m: &[Item]) -> serde_json::Map<String, Json> {
    m.iter()
        .filter_map(|i| match i {
            Item::Entry(k, v) => Some((k.clone(), to_json(v))),
            _ => None,
        })
        .collect()
}

/// A JSON value as a tree value.
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| Item::Entry(k.clone(), from_json(v)))
                .collect(),
        ),
    }
}

/// How a non-string JSON value is written into a string (AVP stringifies with `%v`; hush
/// writes numbers and booleans as JSON does and objects/arrays as compact JSON).
pub fn stringify(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}
