//! ESO's `toYaml`/`fromYaml`: `sigs.k8s.io/yaml` over go-yaml v2, byte for byte.
//!
//! `toYaml` is `json.Marshal` → go-yaml v2 decode (JSON numbers become `int`/`uint64`/`float64`)
//! → go-yaml v2 encode (block style, sorted keys, 80-column folding) with the final newline
//! trimmed. The emitter below follows libyaml's scalar analysis and style choice, which is what
//! decides quoting. `fromYaml` parses with YAML 1.1 scalar resolution (`yes` is `true`) and
//! returns what `json.Unmarshal` into `map[string]interface{}` gives (numbers are `float64`).

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use hush_goyaml::{
    Resolved, analyze, is_base60_float, is_break, is_printable, resolve_v2 as resolve_plain,
    resolves_to_string_v2 as resolves_to_string, v2_key_cmp,
};

use crate::value::{Value, format_float_g};

/// go-yaml's decoded value (what `toYaml` re-encodes).
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

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
        Value::Int(i) | Value::Int64(i) => Node::Int(*i),
        Value::Float(f) => {
            if !f.is_finite() {
                return None;
            }
            // encoding/json writes floats in [1e-6, 1e21) as shortest decimals without an
            // exponent (Rust's `Display` is the same digits), and go-yaml then reads integral
            // text as an integer when it fits.
            if f.abs() < 1e21 && f.fract() == 0.0 {
                match resolve_plain(&format!("{f}")) {
                    Resolved::Int(i) => Node::Int(i),
                    Resolved::Uint(u) => Node::Uint(u),
                    _ => Node::Float(*f),
                }
            } else {
                Node::Float(*f)
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

/// `toYaml`. Errors where go-yaml would need a complex (`? `) key, which hush does not write.
pub(crate) fn to_yaml(v: &Value) -> Result<Vec<u8>, String> {
    let Some(node) = to_node(v) else {
        if contains_yaml_only_break(v) {
            return Err(
                "toYaml: strings with NEL, LS or PS characters are not supported by \
                        hush-template"
                    .into(),
            );
        }
        // json.Marshal failed (NaN or an infinity): ESO's toYaml prints nothing.
        return Ok(Vec::new());
    };
    let mut e = Emitter {
        out: Vec::new(),
        column: 0,
        indent: -1,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
    };
    e.node(&node, Ctx::Root)?;
    // Document end: go-yaml ends the last line.
    e.write_indent();
    if e.out.last() == Some(&b'\n') {
        e.out.pop();
    }
    Ok(e.out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Sequence,
    MappingValue,
    SimpleKey,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: Vec<u8>,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
}

const BEST_INDENT: i64 = 2;
const BEST_WIDTH: usize = 80;

impl Emitter {
    fn put(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.put(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn node(&mut self, n: &Node, ctx: Ctx) -> Result<(), String> {
        match n {
            Node::Null => self.scalar("null", Style::Plain, ctx),
            Node::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, ctx),
            Node::Int(i) => self.scalar(&i.to_string(), Style::Plain, ctx),
            Node::Uint(u) => self.scalar(&u.to_string(), Style::Plain, ctx),
            Node::Float(f) => self.scalar(&format_float_g(*f, None), Style::Plain, ctx),
            Node::Str(s) => self.string(s, ctx),
            Node::Seq(items) if items.is_empty() => {
                self.indicator("[", true, true, false);
                self.indicator("]", false, false, false);
                Ok(())
            }
            Node::Map(entries) if entries.is_empty() => {
                self.indicator("{", true, true, false);
                self.indicator("}", false, false, false);
                Ok(())
            }
            Node::Seq(items) => {
                let indentless = ctx == Ctx::MappingValue && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.indicator("-", true, false, true);
                    self.node(item, Ctx::Sequence)?;
                }
                self.pop_indent();
                Ok(())
            }
            Node::Map(entries) => {
                let mut entries: Vec<&(String, Node)> = entries.iter().collect();
                entries.sort_by(|a, b| v2_key_cmp(&a.0, &b.0));
                self.increase_indent(false, false);
                for (k, v) in entries {
                    self.write_indent();
                    // libyaml's check_simple_key: at most 128 bytes, one line.
                    if k.len() > 128 || k.chars().any(is_break) {
                        return Err(
                            "toYaml: map keys longer than 128 bytes or with line breaks are not \
                             supported by hush-template"
                                .into(),
                        );
                    }
                    self.string(k, Ctx::SimpleKey)?;
                    self.indicator(":", false, false, false);
                    self.node(v, Ctx::MappingValue)?;
                }
                self.pop_indent();
                Ok(())
            }
        }
    }

    /// go-yaml's `stringv`: plain unless the text would read back as another type, literal
    /// block style for multi-line text.
    fn string(&mut self, s: &str, ctx: Ctx) -> Result<(), String> {
        let can_plain = resolves_to_string(s) && !is_base60_float(s);
        let style = if s.contains('\n') {
            Style::Literal
        } else if can_plain {
            Style::Plain
        } else {
            Style::Double
        };
        self.scalar(s, style, ctx)
    }

    fn scalar(&mut self, s: &str, requested: Style, ctx: Ctx) -> Result<(), String> {
        let a = analyze(s);
        let simple_key = ctx == Ctx::SimpleKey;
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.plain_allowed || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, allow_breaks),
            Style::Single => self.single(s, allow_breaks),
            Style::Double => self.double(s, allow_breaks),
            Style::Literal => self.literal(s),
        }
        self.pop_indent();
        Ok(())
    }

    fn plain(&mut self, s: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                // Plain scalars never hold line breaks (analysis forbids it).
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single(&mut self, s: &str, allow_breaks: bool) {
        self.indicator("'", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, s: &str, allow_breaks: bool) {
        self.indicator("\"", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let esc = match c {
                    '\0' => Some('0'),
                    '\u{07}' => Some('a'),
                    '\u{08}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{0B}' => Some('v'),
                    '\u{0C}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1B}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{A0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match esc {
                    Some(e) => self.put(e),
                    None => {
                        let u = c as u32;
                        let (letter, digits) = if u <= 0xFF {
                            ('x', 2)
                        } else if u <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{u:0digits$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, s: &str) {
        self.indicator("|", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let chomp = match chars.as_slice() {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., prev, _] if is_break(*prev) => Some("+"),
            _ => None,
        };
        if let Some(h) = chomp {
            self.indicator(h, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

// ---- fromYaml

/// Collects parser events into a tree (anchors resolved).
#[derive(Default)]
struct Builder {
    stack: Vec<(YNode, Option<usize>)>,
    pending_key: Vec<Option<YNode>>,
    anchors: BTreeMap<usize, YNode>,
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
    fn push_value(&mut self, v: YNode) {
        let depth = self.stack.len();
        let Some((top, _)) = self.stack.last_mut() else {
            self.docs.push(v);
            return;
        };
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
                let v = YNode::Scalar {
                    text: text.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((YNode::Seq(Vec::new()), Some(anchor)));
                self.pending_key.push(None);
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((YNode::Map(Vec::new()), Some(anchor)));
                self.pending_key.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.pending_key.pop();
                if let Some((v, anchor)) = self.stack.pop() {
                    if let Some(a) = anchor.filter(|a| *a > 0) {
                        self.anchors.insert(a, v.clone());
                    }
                    self.push_value(v);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => self.push_value(v),
                None => self.error = Some("unknown anchor".into()),
            },
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
        assert!(to_yaml(&Value::str("a\u{2028}b")).is_err());
        assert!(from_yaml("a: \"x\u{85}y\"".as_bytes()).is_err());
        // A YAML syntax error is an error (go-yaml's message text is not reproduced).
        assert!(from_yaml(b"a: [").is_err());
        assert!(to_yaml(&Value::Map(BTreeMap::from([("k".repeat(129), Value::Nil)]))).is_err());
    }
}
