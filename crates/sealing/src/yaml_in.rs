//! Reading YAML as kubeseal's decoder does (`yaml.NewYAMLOrJSONDecoder` → `sigs.k8s.io/yaml` →
//! go-yaml v2): YAML 1.1 resolution of plain scalars ([`crate::yaml11`]), anchors and aliases,
//! `<<` merge keys, non-string keys turned into strings; then, for Secret and SealedSecret
//! documents, booleans and numbers in string fields become Go's text of them (`y` → `"true"`,
//! `0755` → `"493"`, `1e3` → `"1000"`), as `sigs.k8s.io/yaml` does for a string-typed target.
//!
//! Built on saphyr-parser's event API, which keeps scalar styles (a quoted `"yes"` stays a
//! string). Iterative, with bounds on nesting and alias expansion, so hostile input cannot
//! overflow the stack or exhaust memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};

use hush_goyaml::alias::{AliasBudget, Size};
use hush_goyaml::{Resolved, resolve_v2 as resolve};

use crate::yaml11::go_format_float32;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 256;

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        /// The collection's size so far: what an alias to it will copy.
        size: Size,
    },
    Map {
        map: Map<String, Value>,
        key: Option<Key>,
        anchor: usize,
        /// Entries from `<<` merges, applied where the mapping has no own key.
        merges: Vec<Map<String, Value>>,
        size: Size,
    },
}

impl Frame {
    fn size_mut(&mut self) -> &mut Size {
        match self {
            Frame::Seq { size, .. } | Frame::Map { size, .. } => size,
        }
    }
}

enum Key {
    Name(String),
    Merge,
}

/// Parses a YAML stream into one JSON value per non-empty document. Aliases are expanded within
/// [`hush_goyaml::alias`]'s budget.
pub(crate) fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut reader = Reader::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| e.to_string())?;
        let line = span.start.line();
        let at = move || format!("line {line}");
        let finished = reader.event(event, &at)?;
        if reader.stack.len() > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} at {}", at()));
        }
        if let Some(finished) = finished {
            reader.place(finished, &at)?;
        }
    }
    if let Some(v) = reader.current.filter(|v| !v.is_null()) {
        reader.docs.push(v);
    }
    Ok(reader.docs)
}

/// A value complete with its anchor id (0: none) and its size for the alias budget.
type Finished = (Value, usize, Size);

/// The state of [`documents`] between parser events.
#[derive(Default)]
struct Reader {
    docs: Vec<Value>,
    /// The collections being read, innermost last.
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, Size)>,
    budget: AliasBudget,
    /// The current document's top-level value.
    current: Option<Value>,
}

impl Reader {
    /// Handles one parser event (saphyr's event stream is the state machine here: each arm is one
    /// transition); returns the value it completes, if any.
    fn event(
        &mut self,
        event: Event<'_>,
        at: &dyn Fn() -> String,
    ) -> Result<Option<Finished>, String> {
        Ok(match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                self.current = None;
                self.anchors.clear();
                self.budget = AliasBudget::new();
                None
            }
            Event::DocumentEnd => {
                if let Some(v) = self.current.take().filter(|v| !v.is_null()) {
                    self.docs.push(v);
                }
                None
            }
            Event::Alias(id) => Some(self.alias(id, at)?),
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = self.stack.last_mut()
                {
                    // A mapping key.
                    self.budget.read(Size::node(text.len()));
                    *key = Some(map_key(&text, style, tag.is_none(), at)?);
                    None
                } else {
                    let tag = tag.map(|t| t.suffix.clone());
                    let size = Size::node(text.len());
                    self.budget.read(size);
                    Some((scalar(&text, style, tag.as_deref()), anchor, size))
                }
            }
            Event::SequenceStart(anchor, _) => {
                self.open(
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        size: Size::node(0),
                    },
                    at,
                )?;
                None
            }
            Event::MappingStart(anchor, _) => {
                self.open(
                    Frame::Map {
                        map: Map::new(),
                        key: None,
                        anchor,
                        merges: Vec::new(),
                        size: Size::node(0),
                    },
                    at,
                )?;
                None
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    size,
                }) => Some((Value::Array(items), anchor, size)),
                _ => return Err(format!("unbalanced sequence at {}", at())),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    mut map,
                    anchor,
                    merges,
                    size,
                    ..
                }) => {
                    for merged in merges {
                        for (k, v) in merged {
                            map.entry(k).or_insert(v);
                        }
                    }
                    Some((Value::Object(map), anchor, size))
                }
                _ => return Err(format!("unbalanced mapping at {}", at())),
            },
        })
    }

    /// A copy of the anchored value, charged to the alias budget before it is made.
    fn alias(&mut self, id: usize, at: &dyn Fn() -> String) -> Result<Finished, String> {
        let (v, size) = self
            .anchors
            .get(&id)
            .ok_or_else(|| format!("unknown anchor at {}", at()))?;
        self.budget.read(Size::node(0));
        self.budget
            .expand(*size)
            .map_err(|e| format!("alias at {}: {e}", at()))?;
        if self.stack.len() + size.depth > MAX_DEPTH {
            return Err(format!("alias at {} nests deeper than {MAX_DEPTH}", at()));
        }
        Ok((v.clone(), 0, *size))
    }

    /// Starts a collection.
    fn open(&mut self, frame: Frame, at: &dyn Fn() -> String) -> Result<(), String> {
        check_key_position(&self.stack, at)?;
        self.budget.read(Size::node(0));
        self.stack.push(frame);
        Ok(())
    }

    /// Records a completed value's anchor and puts the value where it belongs: the document, the
    /// enclosing sequence, or the enclosing mapping under its key (or among its `<<` merges).
    fn place(
        &mut self,
        (value, anchor, size): Finished,
        at: &dyn Fn() -> String,
    ) -> Result<(), String> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        if let Some(parent) = self.stack.last_mut() {
            // The key counts in the mapping's size too.
            let key = match parent {
                Frame::Map {
                    key: Some(Key::Name(k)),
                    ..
                } => Size::node(k.len()),
                _ => Size::default(),
            };
            let total = parent.size_mut();
            *total = total.with_child(size).plus(key);
        }
        match self.stack.last_mut() {
            None => self.current = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map, key, merges, ..
            }) => match key.take() {
                Some(Key::Name(k)) => {
                    map.insert(k, value);
                }
                Some(Key::Merge) => merge_sources(value, merges, at)?,
                None => return Err(format!("unsupported map key at {}", at())),
            },
        }
        Ok(())
    }
}

/// A plain, untagged `<<` is a merge key; any other key is its text as `sigs.k8s.io/yaml` spells it.
fn map_key(
    text: &str,
    style: ScalarStyle,
    untagged: bool,
    at: &dyn Fn() -> String,
) -> Result<Key, String> {
    if style == ScalarStyle::Plain && text == "<<" && untagged {
        return Ok(Key::Merge);
    }
    key_text(text, style)
        .map(Key::Name)
        .ok_or_else(|| format!("unsupported map key (null) at {}", at()))
}

/// The maps a `<<` value merges: one map or a sequence of maps.
fn merge_sources(
    value: Value,
    merges: &mut Vec<Map<String, Value>>,
    at: &dyn Fn() -> String,
) -> Result<(), String> {
    match value {
        Value::Object(m) => merges.push(m),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) => merges.push(m),
                    _ => return Err(format!("map merge requires maps at {}", at())),
                }
            }
        }
        _ => return Err(format!("map merge requires a map at {}", at())),
    }
    Ok(())
}

fn check_key_position(stack: &[Frame], at: &dyn Fn() -> String) -> Result<(), String> {
    match stack.last() {
        Some(Frame::Map { key: None, .. }) => {
            Err(format!("unsupported map key (a collection) at {}", at()))
        }
        _ => Ok(()),
    }
}

/// A mapping key as `sigs.k8s.io/yaml` spells it; `None` for a null key (refused there too).
fn key_text(text: &str, style: ScalarStyle) -> Option<String> {
    if style != ScalarStyle::Plain {
        return Some(text.to_owned());
    }
    match resolve(text) {
        Resolved::Null => None,
        Resolved::Bool(b) => Some(b.to_string()),
        Resolved::Int(i) => Some(i.to_string()),
        Resolved::Uint(u) => Some(u.to_string()),
        Resolved::Float(f) => Some(go_format_float32(f)),
        Resolved::Timestamp(_) | Resolved::Merge | Resolved::Str => Some(text.to_owned()),
    }
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    if style != ScalarStyle::Plain || tag == Some("str") {
        return Value::String(text.to_owned());
    }
    match resolve(text) {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Number(i.into()),
        Resolved::Uint(u) => Value::Number(u.into()),
        // JSON has no NaN or infinity; Go would fail to marshal them anyway.
        Resolved::Float(f) => {
            Number::from_f64(f).map_or_else(|| Value::String(go_format_float32(f)), Value::Number)
        }
        Resolved::Timestamp(_) | Resolved::Merge | Resolved::Str => Value::String(text.to_owned()),
    }
}

/// Turns booleans, numbers and map-entry nulls in the string fields of a Secret or SealedSecret
/// (or a `v1.List` of them) into the strings Go would decode, leaving the typed fields alone.
pub(crate) fn coerce_kube_strings(value: &mut Value) {
    let mut path = Vec::new();
    coerce(value, &mut path);
}

fn coerce(value: &mut Value, path: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                path.push(k.clone());
                coerce(child, path);
                path.pop();
            }
        }
        Value::Array(items) => {
            for item in items {
                path.push("[]".into());
                coerce(item, path);
                path.pop();
            }
        }
        Value::Bool(b) if !typed(path) => *value = Value::String(b.to_string()),
        Value::Number(n) if !typed(path) => {
            let text = if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                go_format_float32(n.as_f64().unwrap_or(0.0))
            };
            *value = Value::String(text);
        }
        Value::Null if in_string_map(path) => *value = Value::String(String::new()),
        _ => {}
    }
}

/// The path inside one object (a `v1.List` item's `items/[]/` prefix removed).
fn relative(path: &[String]) -> Vec<&str> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["items", "[]", rest @ ..] => rest.to_vec(),
        _ => p,
    }
}

/// Fields whose Go type is not a string (or that keep their raw JSON).
fn typed(path: &[String]) -> bool {
    let p = relative(path);
    let meta = |m: &[&str]| {
        matches!(
            m,
            ["generation"
                | "deletionGracePeriodSeconds"
                | "creationTimestamp"
                | "deletionTimestamp"]
                | ["managedFields", ..]
                | ["ownerReferences", "[]", "controller" | "blockOwnerDeletion"]
        )
    };
    match p.as_slice() {
        ["status", ..] | ["immutable"] | ["spec", "encryptedData", ..] => true,
        ["spec", "template", "immutable"] => true,
        ["metadata", rest @ ..] => meta(rest),
        ["spec", "template", "metadata", rest @ ..] => meta(rest),
        _ => false,
    }
}

/// Values of `map[string]string` / `map[string][]byte` fields, where a null entry decodes to
/// the empty value.
fn in_string_map(path: &[String]) -> bool {
    let p = relative(path);
    matches!(
        p.as_slice(),
        ["data" | "stringData", _]
            | ["metadata", "labels" | "annotations", _]
            | ["spec", "template", "data", _]
            | ["spec", "template", "metadata", "labels" | "annotations", _]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_1_1_scalars_and_go_coercion() {
        let text = "metadata:\n  name: y\n  generation: 3\n  labels: {a: on, b: 0755, c: 1e3, d: '0755', e: ~}\nimmutable: yes\nstringData:\n  num: 08080\n  t: 2024-01-02\n  q: \"yes\"\n";
        let mut docs = documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        coerce_kube_strings(&mut docs[0]);
        assert_eq!(
            docs[0],
            json!({
                "metadata": {"name": "true", "generation": 3,
                             "labels": {"a": "true", "b": "493", "c": "1000", "d": "0755", "e": ""}},
                "immutable": true,
                "stringData": {"num": "8080", "t": "2024-01-02", "q": "yes"}
            })
        );
    }

    #[test]
    fn anchors_merges_and_multiple_documents() {
        let text =
            "---\nbase: &b {x: 1, w: 2}\nm:\n  <<: *b\n  w: 3\n---\n---\n~\n---\nk: v\ny: no-key\n";
        let docs = documents(text).unwrap();
        assert_eq!(
            docs,
            vec![
                json!({"base": {"x": 1, "w": 2}, "m": {"x": 1, "w": 3}}),
                json!({"k": "v", "true": "no-key"})
            ]
        );
    }

    #[test]
    fn hostile_input_is_refused_not_fatal() {
        let deep = "[".repeat(10_000);
        assert!(documents(&deep).is_err());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(
            documents(&bomb)
                .unwrap_err()
                .contains("document contains excessive aliasing")
        );
        // Few nodes, long scalars: bounded by bytes (each alias copies 100 KB).
        let mut wide = format!("a: &a {}\nl:\n", "x".repeat(100_000));
        wide.push_str(&"- *a\n".repeat(2_000));
        let err = documents(&wide).unwrap_err();
        assert!(
            err.contains("excessive aliasing") && err.contains("bytes"),
            "{err}"
        );
        assert!(documents("{[a]: b}").is_err());
        assert!(documents("~: v").is_err());
    }
}
