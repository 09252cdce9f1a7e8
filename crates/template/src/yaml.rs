//! ESO's `toYaml`/`fromYaml`: `sigs.k8s.io/yaml` over go-yaml v2, byte for byte.
//!
//! `toYaml` is `json.Marshal` → go-yaml v2 decode (JSON numbers become `int`/`uint64`/`float64`)
//! → go-yaml v2 encode ([`hush_goyaml::v2`], shared with kubeseal's output) with the final
//! newline trimmed. `fromYaml` parses with YAML 1.1 scalar resolution (`yes` is `true`) and
//! returns what `json.Unmarshal` into `map[string]interface{}` gives (numbers are `float64`).

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use hush_goyaml::alias::{AliasBudget, Size};
use hush_goyaml::v2::{self, Node};
use hush_goyaml::{Resolved, resolve_v2 as resolve_plain};

use crate::Budget;
use crate::value::{Value, format_float_g};

/// Go's `json.Marshal` turns invalid UTF-8 into one U+FFFD per bad byte.
fn go_utf8(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = &rest[good + 1..];
            }
        }
    }
    out
}

/// go-yaml reads a raw NEL, LS or PS inside the intermediate JSON as a YAML line break and folds
/// it; hush refuses those strings instead of guessing.
fn has_yaml_only_break(s: &str) -> bool {
    s.contains(['\u{85}', '\u{2028}', '\u{2029}'])
}

fn checked_string(b: &[u8]) -> Option<String> {
    let s = go_utf8(b);
    (!has_yaml_only_break(&s)).then_some(s)
}

/// The go-yaml value a template value becomes after the JSON round trip; `None` where
/// `json.Marshal` fails (NaN, infinities), which makes `toYaml` print "".
fn to_node(v: &Value) -> Option<Node> {
    Some(match v {
        Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Node::Number(i.to_string()),
        Value::Float(f) => {
            if !f.is_finite() {
                return None;
            }
            // encoding/json writes floats in [1e-6, 1e21) as shortest decimals without an
            // exponent (Rust's `Display` is the same digits), and go-yaml then reads integral
            // text as an integer when it fits.
            if f.abs() < 1e21 && f.fract() == 0.0 {
                match resolve_plain(&format!("{f}")) {
                    Resolved::Int(i) => Node::Number(i.to_string()),
                    Resolved::Uint(u) => Node::Number(u.to_string()),
                    _ => Node::Number(format_float_g(*f, None)),
                }
            } else {
                // go-yaml v2's `floatv`: strconv.FormatFloat(f, 'g', -1, 64).
                Node::Number(format_float_g(*f, None))
            }
        }
        Value::Str(s) => Node::Str(checked_string(s)?),
        Value::List(l) => Node::Seq(l.iter().map(to_node).collect::<Option<_>>()?),
        Value::Map(m) => Node::Map(
            m.iter()
                .map(|(k, x)| Some((k.clone(), to_node(x)?)))
                .collect::<Option<_>>()?,
        ),
        Value::StrMap(m) => Node::Map(
            m.iter()
                .map(|(k, x)| Some((k.clone(), Node::Str(checked_string(x)?))))
                .collect::<Option<_>>()?,
        ),
    })
}

fn contains_yaml_only_break(v: &Value) -> bool {
    match v {
        Value::Str(s) => has_yaml_only_break(&go_utf8(s)),
        Value::List(l) => l.iter().any(contains_yaml_only_break),
        Value::Map(m) => m
            .iter()
            .any(|(k, x)| has_yaml_only_break(k) || contains_yaml_only_break(x)),
        Value::StrMap(m) => m
            .iter()
            .any(|(k, x)| has_yaml_only_break(k) || has_yaml_only_break(&go_utf8(x))),
        _ => false,
    }
}

/// `toYaml`. Errors only for strings with NEL, LS or PS characters; a text over `max` bytes
/// is refused as it grows (the outer error).
pub(crate) fn to_yaml(v: &Value, max: usize) -> Result<Result<Vec<u8>, String>, Budget> {
    let Some(node) = to_node(v) else {
        if contains_yaml_only_break(v) {
            return Ok(Err(
                "toYaml: strings with NEL, LS or PS characters are not supported by \
                        hush-template"
                    .into(),
            ));
        }
        // json.Marshal failed (NaN or an infinity): ESO's toYaml prints nothing.
        return Ok(Ok(Vec::new()));
    };
    // One byte of slack: the final newline is trimmed below.
    let Some(text) = v2::marshal_within(&node, max.saturating_add(1)) else {
        return Err(Budget::OutputBytes);
    };
    let mut out = text.into_bytes();
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    Ok(Ok(out))
}

// ---- fromYaml

/// Deepest nesting read, in the text or through aliases (`to_value` stops at 200 too).
const MAX_DEPTH: usize = 200;

/// Collects parser events into a tree (anchors resolved, within `hush_goyaml::alias`'s budget).
#[derive(Default)]
struct Builder {
    /// Open collections: node, anchor, size so far.
    stack: Vec<(YNode, Option<usize>, Size)>,
    pending_key: Vec<Option<YNode>>,
    anchors: BTreeMap<usize, (YNode, Size)>,
    budget: AliasBudget,
    docs: Vec<YNode>,
    error: Option<String>,
}

#[derive(Clone)]
enum YNode {
    Scalar {
        text: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq(Vec<YNode>),
    Map(Vec<(YNode, YNode)>),
}

impl Builder {
    fn push_value(&mut self, v: YNode, size: Size) {
        let depth = self.stack.len();
        let Some((top, _, top_size)) = self.stack.last_mut() else {
            self.docs.push(v);
            return;
        };
        *top_size = top_size.with_child(size);
        match top {
            YNode::Seq(items) => items.push(v),
            YNode::Map(entries) => {
                let slot = &mut self.pending_key[depth - 1];
                match slot.take() {
                    None => *slot = Some(v),
                    Some(k) => entries.push((k, v)),
                }
            }
            YNode::Scalar { .. } => {}
        }
    }
}

impl Builder {
    fn on_event(&mut self, ev: Event<'_>) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let size = Size::node(text.len());
                self.budget.read(size);
                let v = YNode::Scalar {
                    text: text.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), size));
                }
                self.push_value(v, size);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.error = Some(format!("nesting deeper than {MAX_DEPTH}"));
                    return;
                }
                self.budget.read(Size::node(0));
                let node = if matches!(ev, Event::SequenceStart(..)) {
                    YNode::Seq(Vec::new())
                } else {
                    YNode::Map(Vec::new())
                };
                self.stack.push((node, Some(anchor), Size::node(0)));
                self.pending_key.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.pending_key.pop();
                if let Some((v, anchor, size)) = self.stack.pop() {
                    if let Some(a) = anchor.filter(|a| *a > 0) {
                        self.anchors.insert(a, (v.clone(), size));
                    }
                    self.push_value(v, size);
                }
            }
            Event::Alias(id) => {
                self.budget.read(Size::node(0));
                let Some((_, size)) = self.anchors.get(&id) else {
                    self.error = Some("unknown anchor".into());
                    return;
                };
                let size = *size;
                // Charged before the copy is made.
                if let Err(e) = self.budget.expand(size) {
                    self.error = Some(e.to_string());
                    return;
                }
                if self.stack.len() + size.depth > MAX_DEPTH {
                    self.error = Some(format!("an alias nests deeper than {MAX_DEPTH}"));
                    return;
                }
                let v = self.anchors[&id].0.clone();
                self.push_value(v, size);
            }
            _ => {}
        }
    }
}

/// The first YAML document of `s` (go-yaml's Unmarshal reads only that one); `None` if empty.
fn first_document(s: &[u8], what: &str) -> Result<Option<YNode>, String> {
    let text = std::str::from_utf8(s).map_err(|_| format!("{what}: input is not UTF-8"))?;
    if has_yaml_only_break(text) {
        return Err(format!(
            "{what}: NEL, LS and PS characters are not supported by hush-template"
        ));
    }
    let mut b = Builder::default();
    for ev in Parser::new_from_str(text) {
        let (ev, _) =
            ev.map_err(|e| format!("{what}: invalid YAML at line {}", e.marker().line()))?;
        if matches!(ev, Event::DocumentEnd) {
            break;
        }
        b.on_event(ev);
        if b.error.is_some() {
            break;
        }
    }
    if let Some(e) = b.error {
        return Err(format!("{what}: {e}"));
    }
    Ok(b.docs.into_iter().next())
}

/// `k8s.io/apimachinery/pkg/util/yaml.Unmarshal` into `map[string]string` (ESO's
/// `templateAs: KeysAndValues`): YAML 1.1 through JSON as sigs.k8s.io/yaml, so `yes`, numbers
/// and maps are not strings (an error naming the key), keys become strings, `null` is "", and
/// an empty document is an empty map. Errors never hold values.
pub fn yaml_string_map(s: &[u8]) -> Result<BTreeMap<String, String>, String> {
    const WHAT: &str = "the rendered template";
    let Some(doc) = first_document(s, WHAT)? else {
        return Ok(BTreeMap::new());
    };
    let v = to_value(&doc, 0).map_err(|e| match e {
        ToValueError::NonFinite(_) => format!("{WHAT}: a value is not a finite number"),
        ToValueError::Unsupported(e) => e,
    })?;
    let kind = |v: &Value| match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Bool(_) => "a boolean (quote it)",
        _ => "a number (quote it)",
    };
    match v {
        Value::Nil => Ok(BTreeMap::new()),
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::Nil => Ok((k, String::new())),
                Value::Str(b) => String::from_utf8(b)
                    .map(|s| (k.clone(), s))
                    .map_err(|_| format!("{WHAT}: the value of key {k:?} is not UTF-8")),
                other => Err(format!(
                    "{WHAT}: the value of key {k:?} is {}, not a string",
                    kind(&other)
                )),
            })
            .collect(),
        other => Err(format!(
            "{WHAT} is {}, not a map of strings",
            if matches!(other, Value::Str(_)) {
                "a string"
            } else {
                kind(&other)
            }
        )),
    }
}

/// `fromYaml`: the first document as `map[string]interface{}` after the JSON round trip.
pub(crate) fn from_yaml(s: &[u8]) -> Result<Value, String> {
    let Some(doc) = first_document(s, "fromYaml")? else {
        return Ok(Value::Map(BTreeMap::new()));
    };
    // ESO's fromYaml puts conversion errors into the map under "Error"; these two have fixed
    // texts (a YAML syntax error's text is go-yaml's own and is an error here instead).
    let go_error =
        |msg: String| Value::Map(BTreeMap::from([("Error".to_owned(), Value::str(msg))]));
    let v = match to_value(&doc, 0) {
        Ok(v) => v,
        Err(ToValueError::NonFinite(f)) => {
            return Ok(go_error(format!(
                "error converting YAML to JSON: json: unsupported value: {}",
                format_float_g(f, None)
            )));
        }
        Err(ToValueError::Unsupported(e)) => return Err(e),
    };
    let kind = match v {
        Value::Map(m) => return Ok(Value::Map(m)),
        Value::Nil => return Ok(Value::Map(BTreeMap::new())),
        Value::List(_) => "array",
        Value::Str(_) => "string",
        Value::Bool(_) => "bool",
        _ => "number",
    };
    Ok(go_error(format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value \
         of type map[string]interface {{}}"
    )))
}

enum ToValueError {
    /// `.inf`/`.nan`: json.Marshal's "unsupported value".
    NonFinite(f64),
    /// Something hush does not convert (message without data).
    Unsupported(String),
}

impl From<String> for ToValueError {
    fn from(s: String) -> Self {
        ToValueError::Unsupported(s)
    }
}

impl From<&str> for ToValueError {
    fn from(s: &str) -> Self {
        ToValueError::Unsupported(s.to_owned())
    }
}

fn to_value(n: &YNode, depth: usize) -> Result<Value, ToValueError> {
    if depth > 200 {
        return Err("fromYaml: nesting too deep".into());
    }
    Ok(match n {
        YNode::Scalar { text, plain, tag } => scalar_value(text, *plain, tag.as_deref())?,
        YNode::Seq(items) => Value::List(
            items
                .iter()
                .map(|x| to_value(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YNode::Map(entries) => {
            let mut m = BTreeMap::new();
            for (k, v) in entries {
                if let YNode::Scalar { text, plain, tag } = k
                    && *plain
                    && tag.is_none()
                    && text == "<<"
                {
                    return Err(
                        "fromYaml: merge keys (<<) are not supported by hush-template".into(),
                    );
                }
                let key = match k {
                    YNode::Scalar { text, plain, tag } => {
                        match scalar_value(text, *plain, tag.as_deref())? {
                            Value::Str(s) => String::from_utf8_lossy(&s).into_owned(),
                            Value::Bool(b) => b.to_string(),
                            Value::Float(f) => {
                                key_float(text, *plain, f).map_err(ToValueError::from)?
                            }
                            Value::Nil => return Err("fromYaml: null map key".into()),
                            other => {
                                String::from_utf8_lossy(&crate::value::sprint(&other)).into_owned()
                            }
                        }
                    }
                    _ => return Err("fromYaml: a map key is not a scalar".into()),
                };
                // go-yaml: a later duplicate key wins.
                m.insert(key, to_value(v, depth + 1)?);
            }
            Value::Map(m)
        }
    })
}

/// Map keys: integers print as integers; floats as go-yaml formats them.
fn key_float(text: &str, plain: bool, f: f64) -> Result<String, String> {
    if plain {
        match resolve_plain(text) {
            Resolved::Int(i) => return Ok(i.to_string()),
            Resolved::Uint(u) => return Ok(u.to_string()),
            _ => {}
        }
    }
    if !f.is_finite() {
        return Err("fromYaml: non-finite map key".into());
    }
    Ok(format_float_g(f, None))
}

/// A scalar as `json.Unmarshal` sees it after sigs.k8s.io/yaml's conversion.
fn scalar_value(text: &str, plain: bool, tag: Option<&str>) -> Result<Value, ToValueError> {
    match tag {
        None if plain => {}
        None | Some("!!str" | "tag:yaml.org,2002:str") => return Ok(Value::str(text)),
        Some(_) => return Err("fromYaml: explicit tags are not supported by hush-template".into()),
    }
    Ok(match resolve_plain(text) {
        Resolved::Null => Value::Nil,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Float(i as f64),
        Resolved::Uint(u) => Value::Float(u as f64),
        Resolved::Float(f) if f.is_finite() => Value::Float(f),
        Resolved::Float(f) => return Err(ToValueError::NonFinite(f)),
        // go-yaml v2 keeps timestamps as their text when decoding into interface{}.
        Resolved::Timestamp(_) => Value::str(text),
        Resolved::Merge => return Err("fromYaml: merge keys (<<) are not supported".into()),
        Resolved::Str => Value::str(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_go_yaml_would_fold() {
        assert!(
            to_yaml(&Value::str("a\u{2028}b"), usize::MAX)
                .unwrap()
                .is_err()
        );
        assert!(from_yaml("a: \"x\u{85}y\"".as_bytes()).is_err());
        // A YAML syntax error is an error (go-yaml's message text is not reproduced).
        assert!(from_yaml(b"a: [").is_err());
    }

    /// `fromYaml` and ESO's `KeysAndValues` read tenant text: alias bombs are refused before
    /// they expand, and deep nesting before it overflows the stack (also when dropped).
    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("l{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(", ");
            laughs.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        let err = from_yaml(laughs.as_bytes()).err().unwrap();
        assert!(
            err.contains("fromYaml: document contains excessive aliasing"),
            "{err}"
        );
        let err = yaml_string_map(laughs.as_bytes()).unwrap_err();
        assert!(err.contains("excessive aliasing"), "{err}");
        let mut wide = format!("a: &a {}\nl:\n", "x".repeat(100_000));
        wide.push_str(&"- *a\n".repeat(2_000));
        assert!(from_yaml(wide.as_bytes()).err().unwrap().contains("bytes"));
        // Unclosed (the parser's error) and closed (ours): neither overflows the stack.
        assert!(from_yaml("[".repeat(100_000).as_bytes()).is_err());
        // (saphyr-parser stops at its own bound a little deeper.)
        let deep = "[".repeat(250) + &"]".repeat(250);
        assert!(
            from_yaml(deep.as_bytes())
                .err()
                .unwrap()
                .contains("nesting")
        );
        let mut chain = format!("a0: &a0 {}x{}\n", "[".repeat(150), "]".repeat(150));
        chain.push_str(&format!("a1: {}*a0{}\n", "[".repeat(150), "]".repeat(150)));
        assert!(
            from_yaml(chain.as_bytes())
                .err()
                .unwrap()
                .contains("deeper")
        );
    }

    fn str_map(entries: &[(&str, &str)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::str(*v)))
                .collect(),
        )
    }

    #[test]
    fn long_keys_take_the_explicit_form() {
        // go-yaml v2 writes a key over 128 bytes as `? key` and the value on a `: ` line, as in
        // hush-sealing's golden test from sigs.k8s.io/yaml (`? aaa…` / `: v1` there, indented).
        let key = "k".repeat(200);
        let out = to_yaml(&str_map(&[(&key, "v")]), usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("? {key}\n: v"));
    }

    #[test]
    fn multi_line_keys_take_the_explicit_form() {
        // From the same golden: `? |-` / `line1` / `line2` / `: v`, two spaces less indented.
        let out = to_yaml(&str_map(&[("line1\nline2", "v")]), usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "? |-\n  line1\n  line2\n: v"
        );
    }

    #[test]
    fn explicit_keys_match_go_yaml_v2() {
        // Input and output of hush-sealing's golden test (sigs.k8s.io/yaml v1.4.0 `JSONToYAML`,
        // go-yaml v2): the same marshal step as toYaml, which then trims the final newline.
        let v = Value::from_json(&serde_json::from_str(SEALING_GOLDEN_INPUT).unwrap());
        let out = String::from_utf8(to_yaml(&v, usize::MAX).unwrap().unwrap()).unwrap();
        assert_eq!(out, SEALING_GOLDEN_EXPECTED.trim_end_matches('\n'));
    }

    const SEALING_GOLDEN_INPUT: &str = r#"{"annotations": {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "v1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb": "v2", "word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word": "v3", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e": "v4", "line1\nline2": "v", "a\nb\n": "v3"}, "m": {"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq": {"n": "x", "o": "y"}, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr": ["a", "b"], "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss": {}, "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt": []}}"#;
    const SEALING_GOLDEN_EXPECTED: &str = "annotations:\n  ? |\n    a\n    b\n  : v3\n  ? aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  : v1\n  bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb: v2\n  ? |-\n    line1\n    line2\n  : v\n  ? word word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word word word\n    word word word word word word word word\n  : v3\n  ? \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\"\n  : v4\nm:\n  ? qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n  : \"n\": x\n    o: \"y\"\n  ? rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\n  : - a\n    - b\n  ? ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\n  : {}\n  ? tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\n  : []\n";
}
