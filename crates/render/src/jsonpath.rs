//! Kubernetes JSONPath templates, evaluated as `k8s.io/client-go/util/jsonpath` does with
//! `AllowMissingKeys(false)` — the dialect of argocd-vault-plugin's `jsonPath` modifier.
//!
//! Supported: text outside `{…}`; inside, `$`/`@` (the current object), `.field` (backslash
//! escapes, e.g. `kubernetes\.io/name`), `['key']`, `[n]`, `[start:end:step]`, `[*]`, `.*`,
//! `..` (recursive descent), unions `[a,b]` and `['a.b','c']`, filters `[?(@.x == "y")]` with
//! `==`, `!=`, `<`, `<=`, `>`, `>=` or existence `[?(@.x)]`, quoted literals, numbers, `true`/
//! `false`, and `{range …}…{end}`.
//!
//! Values follow Go's rules, because AVP hands the JSON to Go as `interface{}`: every JSON
//! number is a `float64` (printed as `%v` prints it: `8080`, `1e+06`, `0.5`), a comparison of a
//! JSON number with an integer literal is an error ("incompatible types for comparison"; write
//! `8080.0`), `null` prints `<nil>`, maps and lists print as compact JSON with sorted keys and
//! HTML-safe escapes, and several results of one `{…}` are separated by spaces.
//!
//! Deliberate differences: map members come out in document order where Go's order is random;
//! `range` must start its action, and a `range` without `end` is refused (client-go repeats the
//! body); an unknown filter operator is refused while parsing. Errors name fields, indexes and
//! types, never a value.

use hush_gocompat::json::Encoder;
use serde_json::Value as Json;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Action(Vec<Node>),
    Range { expr: Vec<Node>, body: Vec<Segment> },
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Field(String),
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: Op,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Wildcard,
    Recursive,
    Union(Vec<Vec<Node>>),
    Identifier(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Param {
    value: i64,
    known: bool,
    derived: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Exists,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Longest template accepted (a placeholder is one line of a manifest).
const MAX_TEMPLATE: usize = 4096;
/// Deepest nesting of filters, unions and dictionary keys.
const MAX_DEPTH: usize = 32;

impl Template {
    /// Parses a template. Errors start with `jsonPath:` and quote the template's syntax only.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_TEMPLATE {
            return Err(format!(
                "jsonPath: template longer than {MAX_TEMPLATE} bytes"
            ));
        }
        let raw = Parser::new(text, 0)
            .segments()
            .map_err(|e| format!("jsonPath: {e}"))?;
        let mut it = raw.into_iter();
        let segments = nest(&mut it, false).map_err(|e| format!("jsonPath: {e}"))?;
        Ok(Self { segments })
    }

    /// Evaluates the template against `data`.
    pub fn execute(&self, data: &Json) -> Result<String, String> {
        let root = if data.is_null() {
            Val::Nothing
        } else {
            Val::Json(data)
        };
        let mut out = String::new();
        run(&self.segments, &[root], &mut out).map_err(|e| format!("jsonPath: {e}"))?;
        Ok(out)
    }
}

/// Checks a template.
pub fn parse(t: &str) -> Result<(), String> {
    Template::parse(t).map(|_| ())
}

/// Parses and executes a template against `obj`.
pub fn execute(t: &str, obj: &Json) -> Result<String, String> {
    Template::parse(t)?.execute(obj)
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

enum Raw {
    Text(String),
    Action(Vec<Node>),
}

/// Builds `range … end` blocks from the flat list of actions.
fn nest(it: &mut std::vec::IntoIter<Raw>, in_range: bool) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    while let Some(raw) = it.next() {
        match raw {
            Raw::Text(t) => out.push(Segment::Text(t)),
            Raw::Action(nodes) => match nodes.first() {
                Some(Node::Identifier(id)) if id == "end" => {
                    if nodes.len() > 1 {
                        return Err("`end` must stand alone in its action".into());
                    }
                    if !in_range {
                        return Err("not in range, nothing to end".into());
                    }
                    return Ok(out);
                }
                Some(Node::Identifier(id)) if id == "range" => {
                    let expr = nodes[1..].to_vec();
                    check_keywords(&expr)?;
                    let body = nest(it, true)?;
                    out.push(Segment::Range { expr, body });
                }
                _ => {
                    check_keywords(&nodes)?;
                    out.push(Segment::Action(nodes));
                }
            },
        }
    }
    if in_range {
        return Err("`range` without `end`".into());
    }
    Ok(out)
}

fn check_keywords(nodes: &[Node]) -> Result<(), String> {
    for n in nodes {
        if let Node::Identifier(id) = n
            && (id == "range" || id == "end")
        {
            return Err(format!("`{id}` must start its action"));
        }
    }
    Ok(())
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    depth: usize,
}

fn is_terminator(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
        ),
    }
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, depth: usize) -> Self {
        Self {
            input,
            pos: 0,
            depth,
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Text and `{…}` actions, flat.
    fn segments(mut self) -> Result<Vec<Raw>, String> {
        let mut out = Vec::new();
        while !self.rest().is_empty() {
            match self.rest().find('{') {
                None => {
                    out.push(Raw::Text(self.rest().to_owned()));
                    break;
                }
                Some(i) => {
                    if i > 0 {
                        out.push(Raw::Text(self.rest()[..i].to_owned()));
                    }
                    self.pos += i + 1;
                    out.push(Raw::Action(self.action()?));
                }
            }
        }
        Ok(out)
    }

    /// The nodes of one action, up to and including its `}`.
    fn action(&mut self) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                return Ok(nodes);
            }
            if rest.starts_with("[?(") {
                self.pos += 3;
                nodes.push(self.filter()?);
                continue;
            }
            if rest.starts_with("..") {
                if nodes.last() == Some(&Node::Recursive) {
                    return Err("invalid multiple recursive descent".into());
                }
                self.pos += 2;
                nodes.push(Node::Recursive);
                if self.peek().is_some_and(is_alphanumeric) {
                    nodes.push(self.field());
                }
                continue;
            }
            match self.bump() {
                None | Some('\r' | '\n') => return Err("unclosed action".into()),
                Some(' ' | '@' | '$') => {}
                Some('[') => self.array(&mut nodes)?,
                Some(q @ ('"' | '\'')) => nodes.push(Node::Text(self.quote(q)?)),
                Some('.') => nodes.push(self.field()),
                Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                    self.pos -= c.len_utf8();
                    nodes.push(self.number()?);
                }
                Some(c) if is_alphanumeric(c) => {
                    self.pos -= c.len_utf8();
                    nodes.push(self.identifier());
                }
                Some(c) => return Err(format!("unrecognized character in action: {c:?}")),
            }
        }
    }

    /// A field name up to the next unescaped terminator; backslashes are removed.
    fn field(&mut self) -> Node {
        let start = self.pos;
        loop {
            match self.peek() {
                Some('\\') => {
                    self.bump();
                    self.bump();
                }
                c if is_terminator(c) => break,
                _ => {
                    self.bump();
                }
            }
        }
        let value = &self.input[start..self.pos];
        if value == "*" {
            Node::Wildcard
        } else {
            Node::Field(value.replace('\\', ""))
        }
    }

    fn identifier(&mut self) -> Node {
        let start = self.pos;
        while !is_terminator(self.peek()) {
            self.bump();
        }
        match &self.input[start..self.pos] {
            "true" => Node::Bool(true),
            "false" => Node::Bool(false),
            other => Node::Identifier(other.to_owned()),
        }
    }

    fn number(&mut self) -> Result<Node, String> {
        let start = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.bump();
        }
        while self.peek().is_some_and(|c| c == '.' || c.is_ascii_digit()) {
            self.bump();
        }
        let text = &self.input[start..self.pos];
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Node::Int(i));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Node::Float(f)),
            _ => Err(format!("cannot parse number {text}")),
        }
    }

    /// Parses `text` as the inside of an action (client-go's `parseAction`).
    fn sub(&self, text: &str) -> Result<Vec<Node>, String> {
        if self.depth >= MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        let wrapped = format!("{{{text}}}");
        let mut p = Parser::new(&wrapped, self.depth + 1);
        p.pos = 1;
        p.action()
    }

    /// `[…]` after its `[`: union, dictionary key or slice.
    fn array(&mut self, nodes: &mut Vec<Node>) -> Result<(), String> {
        let start = self.pos;
        loop {
            match self.bump() {
                None | Some('\n') => return Err("unterminated array".into()),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let mut text = &self.input[start..self.pos - 1];
        if text == "*" {
            text = ":";
        }
        if text.contains(',') {
            let lists = text
                .split(',')
                .map(|part| self.sub(&format!("[{}]", part.trim_matches(' '))))
                .collect::<Result<Vec<_>, _>>()?;
            nodes.push(Node::Union(lists));
            return Ok(());
        }
        if let Some(key) = text
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .filter(|k| !k.contains('\''))
        {
            nodes.extend(self.sub(&format!(".{key}"))?);
            return Ok(());
        }
        nodes.push(Node::Array(slice_params(text)?));
        Ok(())
    }

    /// `[?(…)]` after its `[?(`.
    fn filter(&mut self) -> Result<Node, String> {
        let start = self.pos;
        let (mut begin, mut end, mut pair) = (false, false, '\0');
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => return Err("unterminated filter".into()),
                Some(q @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = q;
                        continue;
                    }
                    if q == pair && (at == 0 || self.input.as_bytes()[at - 1] != b'\\') {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        if self.bump() != Some(']') {
            return Err("unclosed array expect ]".into());
        }
        let text = &self.input[start..self.pos - 2];
        let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
        let left_end = text.find(is_op).unwrap_or(text.len());
        let op_end = text[left_end..]
            .find(|c| !is_op(c))
            .map_or(text.len(), |i| left_end + i);
        let (left, op, right) = (&text[..left_end], &text[left_end..op_end], &text[op_end..]);
        if left.is_empty() || op.is_empty() || right.is_empty() {
            return Ok(Node::Filter {
                left: self.sub(text)?,
                right: Vec::new(),
                op: Op::Exists,
            });
        }
        let op = match op {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            other => return Err(format!("unrecognized filter operator {other}")),
        };
        Ok(Node::Filter {
            left: self.sub(left)?,
            right: self.sub(right)?,
            op,
        })
    }

    /// A quoted literal after its opening quote `q`, unquoted as Go's `strconv` does (single
    /// quotes allowed).
    fn quote(&mut self, q: char) -> Result<String, String> {
        let start = self.pos - 1;
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => return Err("unterminated quoted string".into()),
                Some(c) if c == q && self.input.as_bytes()[at - 1] != b'\\' => break,
                Some(_) => {}
            }
        }
        let raw = &self.input[start..self.pos];
        unquote(&raw[1..raw.len() - 1], q).ok_or_else(|| format!("unquote string {raw} error"))
    }
}

fn slice_params(text: &str) -> Result<[Param; 3], String> {
    let invalid = || format!("invalid array index {text}");
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(invalid());
    }
    let valid = |p: &str| {
        let digits = p.strip_prefix('-').unwrap_or(p);
        digits.bytes().all(|b| b.is_ascii_digit())
    };
    if !parts.iter().all(|p| valid(p)) {
        return Err(invalid());
    }
    let number = |p: &str| {
        p.parse::<i64>()
            .map_err(|_| format!("array index {p} is not a number"))
    };
    let mut params = [Param::default(); 3];
    // client-go: `[n]` is `[n:n+1]` with a derived end; `[a:]` has an unknown end.
    if !parts[0].is_empty() {
        params[0] = Param {
            value: number(parts[0])?,
            known: true,
            derived: false,
        };
    }
    match parts.get(1) {
        None => {
            params[1] = Param {
                value: params[0].value.saturating_add(1),
                known: true,
                derived: true,
            };
        }
        Some(&"") => {}
        Some(p) => {
            params[1] = Param {
                value: number(p)?,
                known: true,
                derived: false,
            };
        }
    }
    if let Some(p) = parts.get(2).filter(|p| !p.is_empty()) {
        params[2] = Param {
            value: number(p)?,
            known: true,
            derived: false,
        };
    }
    Ok(params)
}

/// Go's `strconv.UnquoteChar` rules over the inside of a quoted literal.
fn unquote(s: &str, q: char) -> Option<String> {
    if !s.contains('\\') && !s.contains(q) {
        return Some(s.to_owned());
    }
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| {
        let mut v: u32 = 0;
        for _ in 0..n {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    };
    while let Some(c) = chars.next() {
        if c == q {
            return None;
        }
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '\'' | '"' if e == q => u8::try_from(e).ok(),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        match e {
            'x' => out.push(u8::try_from(hex(&mut chars, 2)?).ok()?),
            'u' | 'U' => {
                let c = char::from_u32(hex(&mut chars, if e == 'u' { 4 } else { 8 })?)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                out.push(u8::try_from(v).ok()?);
            }
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// A value during evaluation: part of the data, or a literal of the template (Go's types).
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Json(&'a Json),
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// One byte of a string (Go indexes strings by byte).
    Byte(u8),
    /// Go's invalid `reflect.Value`: the data of an empty `range` or a `null` document.
    Nothing,
}

impl<'a> Val<'a> {
    /// Go's type name, for errors.
    fn type_name(&self) -> &'static str {
        match self {
            Val::Json(Json::Object(_)) => "map[string]interface {}",
            Val::Json(Json::Array(_)) => "[]interface {}",
            Val::Json(Json::String(_)) | Val::Text(_) => "string",
            Val::Json(Json::Number(_)) | Val::Float(_) => "float64",
            Val::Json(Json::Bool(_)) | Val::Bool(_) => "bool",
            Val::Json(Json::Null) => "<nil>",
            Val::Int(_) => "int",
            Val::Byte(_) => "uint8",
            Val::Nothing => "invalid value",
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Val::Json(Json::Null))
    }

    fn as_str(&self) -> Option<&'a str> {
        match self {
            Val::Json(Json::String(s)) => Some(s),
            Val::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The members of a map, list or string (Go's wildcard).
    fn children(&self) -> Vec<Val<'a>> {
        match self {
            Val::Json(Json::Object(m)) => m.values().map(Val::Json).collect(),
            Val::Json(Json::Array(a)) => a.iter().map(Val::Json).collect(),
            other => other
                .as_str()
                .map(|s| s.bytes().map(Val::Byte).collect())
                .unwrap_or_default(),
        }
    }
}

fn run<'a>(segments: &'a [Segment], cur: &[Val<'a>], out: &mut String) -> Result<(), String> {
    for seg in segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Action(nodes) => print(&eval_list(cur, nodes)?, out),
            Segment::Range { expr, body } => {
                let items = eval_list(cur, expr)?;
                if items.is_empty() {
                    // client-go still walks the body (with no data), so its errors surface.
                    run(body, &[Val::Nothing], &mut String::new())?;
                }
                for item in items {
                    run(body, &[item], out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_list<'a>(input: &[Val<'a>], nodes: &'a [Node]) -> Result<Vec<Val<'a>>, String> {
    let mut cur = input.to_vec();
    for node in nodes {
        cur = eval(&cur, node)?;
    }
    Ok(cur)
}

fn eval<'a>(input: &[Val<'a>], node: &'a Node) -> Result<Vec<Val<'a>>, String> {
    match node {
        Node::Text(t) => Ok(vec![Val::Text(t)]),
        Node::Int(i) => Ok(vec![Val::Int(*i); input.len()]),
        Node::Float(f) => Ok(vec![Val::Float(*f); input.len()]),
        Node::Bool(b) => Ok(vec![Val::Bool(*b); input.len()]),
        Node::Identifier(id) => Err(format!("unrecognized identifier {id}")),
        Node::Field(name) => field(input, name),
        Node::Array(params) => array(input, params),
        Node::Filter { left, right, op } => filter(input, left, right, *op),
        Node::Wildcard => Ok(input
            .iter()
            .filter(|v| !v.is_nil())
            .flat_map(Val::children)
            .collect()),
        Node::Recursive => {
            let mut out = Vec::new();
            recursive(input, &mut out);
            Ok(out)
        }
        Node::Union(lists) => {
            let mut out = Vec::new();
            for list in lists {
                out.extend(eval_list(input, list)?);
            }
            Ok(out)
        }
    }
}

fn field<'a>(input: &[Val<'a>], name: &str) -> Result<Vec<Val<'a>>, String> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let out: Vec<Val<'a>> = input
        .iter()
        .filter_map(|v| match v {
            Val::Json(Json::Object(m)) => m.get(name).map(Val::Json),
            _ => None,
        })
        .collect();
    if out.is_empty() {
        return Err(format!("{name} is not found"));
    }
    Ok(out)
}

fn array<'a>(input: &[Val<'a>], params: &[Param; 3]) -> Result<Vec<Val<'a>>, String> {
    let mut out = Vec::new();
    for v in input {
        if v.is_nil() {
            continue;
        }
        let Val::Json(Json::Array(list)) = v else {
            return Err(format!("{} is not array or slice", v.type_name()));
        };
        let len = i64::try_from(list.len()).unwrap_or(i64::MAX);
        let mut p = *params;
        if !p[0].known {
            p[0].value = 0;
        }
        if p[0].value < 0 {
            p[0].value += len;
        }
        if !p[1].known {
            p[1].value = len;
        }
        if p[1].value < 0 || (p[1].value == 0 && p[1].derived) {
            p[1].value += len;
        }
        if p[1].value == p[0].value {
            return Ok(out);
        }
        if p[0].value >= len || p[0].value < 0 {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                p[0].value
            ));
        }
        if p[1].value > len || p[1].value < 0 {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                p[1].value - 1
            ));
        }
        if p[0].value > p[1].value {
            return Err(format!(
                "starting index {} is greater than ending index {}",
                p[0].value, p[1].value
            ));
        }
        let step = if p[2].known {
            if p[2].value <= 0 {
                return Err("step must be > 0".into());
            }
            usize::try_from(p[2].value).unwrap_or(usize::MAX)
        } else {
            1
        };
        let (from, to) = (
            usize::try_from(p[0].value).unwrap_or(0),
            usize::try_from(p[1].value).unwrap_or(0),
        );
        out.extend(list[from..to].iter().step_by(step).map(Val::Json));
    }
    Ok(out)
}

fn recursive<'a>(input: &[Val<'a>], out: &mut Vec<Val<'a>>) {
    for v in input {
        if v.is_nil() {
            continue;
        }
        let children = v.children();
        if !children.is_empty() {
            out.push(*v);
            recursive(&children, out);
        }
    }
}

fn filter<'a>(
    input: &[Val<'a>],
    left: &'a [Node],
    right: &'a [Node],
    op: Op,
) -> Result<Vec<Val<'a>>, String> {
    let mut out = Vec::new();
    for v in input {
        let Val::Json(Json::Array(list)) = v else {
            return Err(format!(
                "{} is not array or slice and cannot be filtered",
                v.type_name()
            ));
        };
        for item in list {
            let here = [Val::Json(item)];
            let lefts = eval_list(&here, left);
            if op == Op::Exists {
                if lefts.is_ok_and(|l| !l.is_empty()) {
                    out.push(Val::Json(item));
                }
                continue;
            }
            let lefts = lefts?;
            let l = match lefts.as_slice() {
                [] => continue,
                [one] => *one,
                _ => return Err("can only compare one element at a time".into()),
            };
            let rights = eval_list(&here, right)?;
            let r = match rights.as_slice() {
                [] => continue,
                [one] => *one,
                _ => return Err("can only compare one element at a time".into()),
            };
            if compare(l, r, op)? {
                out.push(Val::Json(item));
            }
        }
    }
    Ok(out)
}

/// Go's basic kinds, as text/template's comparison functions see them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Basic<'a> {
    Bool(bool),
    Int(i64),
    Uint(u8),
    Float(f64),
    Str(&'a str),
}

fn basic<'a>(v: Val<'a>) -> Result<Basic<'a>, String> {
    Ok(match v {
        Val::Json(Json::Bool(b)) => Basic::Bool(*b),
        Val::Bool(b) => Basic::Bool(b),
        Val::Json(Json::Number(n)) => Basic::Float(n.as_f64().unwrap_or(f64::NAN)),
        Val::Json(Json::String(s)) => Basic::Str(s),
        Val::Text(s) => Basic::Str(s),
        Val::Int(i) => Basic::Int(i),
        Val::Float(f) => Basic::Float(f),
        Val::Byte(b) => Basic::Uint(b),
        _ => return Err("invalid type for comparison".into()),
    })
}

fn compare(l: Val<'_>, r: Val<'_>, op: Op) -> Result<bool, String> {
    let (a, b) = (basic(l)?, basic(r)?);
    let incompatible = || "incompatible types for comparison".to_owned();
    let eq = || -> Result<bool, String> {
        Ok(match (a, b) {
            (Basic::Bool(x), Basic::Bool(y)) => x == y,
            (Basic::Int(x), Basic::Int(y)) => x == y,
            (Basic::Uint(x), Basic::Uint(y)) => x == y,
            (Basic::Float(x), Basic::Float(y)) => x == y,
            (Basic::Str(x), Basic::Str(y)) => x == y,
            (Basic::Int(x), Basic::Uint(y)) | (Basic::Uint(y), Basic::Int(x)) => {
                x >= 0 && x == i64::from(y)
            }
            _ => return Err(incompatible()),
        })
    };
    let lt = || -> Result<bool, String> {
        Ok(match (a, b) {
            (Basic::Int(x), Basic::Int(y)) => x < y,
            (Basic::Uint(x), Basic::Uint(y)) => x < y,
            (Basic::Float(x), Basic::Float(y)) => x < y,
            (Basic::Str(x), Basic::Str(y)) => x < y,
            (Basic::Int(x), Basic::Uint(y)) => x < i64::from(y),
            (Basic::Uint(x), Basic::Int(y)) => i64::from(x) < y,
            (Basic::Bool(_), Basic::Bool(_)) => return Err("invalid type for comparison".into()),
            _ => return Err(incompatible()),
        })
    };
    match op {
        Op::Exists => Ok(true),
        Op::Eq => eq(),
        Op::Ne => eq().map(|e| !e),
        Op::Lt => lt(),
        Op::Le => Ok(lt()? || eq()?),
        Op::Gt => Ok(!(lt()? || eq()?)),
        Op::Ge => lt().map(|l| !l),
    }
}

// ---------------------------------------------------------------------------------------------
// Output (Go's fmt.Fprint for scalars, encoding/json for maps and lists)
// ---------------------------------------------------------------------------------------------

fn print(values: &[Val<'_>], out: &mut String) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match v {
            Val::Json(j @ (Json::Object(_) | Json::Array(_))) => Encoder::MARSHAL_ANY.write(out, j),
            Val::Json(Json::String(s)) => out.push_str(s),
            Val::Json(Json::Number(n)) => out.push_str(&go_float(n.as_f64().unwrap_or(0.0))),
            Val::Json(Json::Bool(b)) | Val::Bool(b) => {
                out.push_str(if *b { "true" } else { "false" })
            }
            Val::Json(Json::Null) => out.push_str("<nil>"),
            Val::Text(s) => out.push_str(s),
            Val::Int(i) => out.push_str(&i.to_string()),
            Val::Float(f) => out.push_str(&go_float(*f)),
            Val::Byte(b) => out.push_str(&b.to_string()),
            Val::Nothing => out.push_str("<no value>"),
        }
    }
}

/// Shortest decimal mantissa and exponent of `f` (`1.5e-7` → ("1.5", -7)).
fn mantissa_exponent(f: f64) -> (String, i32) {
    let e = format!("{f:e}");
    match e.split_once('e') {
        Some((m, x)) => (m.to_owned(), x.parse().unwrap_or(0)),
        None => (e, 0),
    }
}

/// Go's `%v` of a `float64` (`strconv.FormatFloat(f, 'g', -1, 64)` with two-digit exponents).
pub(crate) fn go_float(f: f64) -> String {
    let (m, exp) = mantissa_exponent(f);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, data: &Json) -> Result<String, String> {
        execute(t, data)
    }

    fn nodes() -> Json {
        json!({
          "kind": "List",
          "items": [
            {"kind": "None", "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
             "status": {"capacity": {"cpu": "4"}, "ready": true,
                        "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]}},
            {"kind": "None", "metadata": {"name": "127.0.0.2", "labels": {"kubernetes.io/hostname": "127.0.0.2"}},
             "status": {"capacity": {"cpu": "8"}, "ready": false,
                        "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.2"},
                                      {"type": "another", "address": "127.0.0.3"}]}}
          ],
          "users": [
            {"name": "myself", "user": {}},
            {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
          ]
        })
    }

    #[test]
    fn client_go_kubernetes_cases() {
        let d = nodes();
        let cases = [
            (
                r#"{range .items[*]}{.metadata.name}, {end}{.kind}"#,
                "127.0.0.1, 127.0.0.2, List",
            ),
            (
                r#"{range .items[*]}{.metadata.name}{"\t"}{end}"#,
                "127.0.0.1\t127.0.0.2\t",
            ),
            (
                "{.items[*].status.addresses[*].address}",
                "127.0.0.1 127.0.0.2 127.0.0.3",
            ),
            (
                "{range .items[*]}{range .status.addresses[*]}{.address}, {end}{end}",
                "127.0.0.1, 127.0.0.2, 127.0.0.3, ",
            ),
            (
                "{.items[*]['metadata.name', 'status.capacity']}",
                r#"127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}"#,
            ),
            (
                "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
                r#"[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] "#,
            ),
            (r#"{.users[?(@.name=="e2e")].user.password}"#, "secret"),
            (
                r"{.items[0].metadata.labels.kubernetes\.io/hostname}",
                "127.0.0.1",
            ),
            (
                r#"{.items[?(@.metadata.labels.kubernetes\.io/hostname=="127.0.0.1")].kind}"#,
                "None",
            ),
            ("{.items[?(@..ready==true)].metadata.name}", "127.0.0.1"),
            ("{..name}", "127.0.0.1 127.0.0.2 myself e2e"),
            ("{.users[?(@.user.password)].name}", "e2e"),
            (r#"{.users[?(@.name!="e2e")].name}"#, "myself"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &d).unwrap(), want, "{t}");
        }
    }

    #[test]
    fn slices_steps_and_negative_indexes() {
        let d = json!({"c": [{"n": "f0"}, {"n": "f1"}, {"n": "f2"}, {"n": "f3"}, {"n": "f4"}, {"n": "f5"}]});
        let ok = [
            ("{.c[0].n}", "f0"),
            ("{.c[0:0].n}", ""),
            ("{.c[0:-1].n}", "f0 f1 f2 f3 f4"),
            ("{.c[-1].n}", "f5"),
            ("{.c[-2:].n}", "f4 f5"),
            ("{.c[6:6].n}", ""),
            ("{.c[1:4:2].n}", "f1 f3"),
            ("{.c[0:6:5].n}", "f0 f5"),
            ("{.c[::2].n}", "f0 f2 f4"),
            ("{.c[*].n}", "f0 f1 f2 f3 f4 f5"),
            ("{.c[1,3].n}", "f1 f3"),
        ];
        for (t, want) in ok {
            assert_eq!(run(t, &d).unwrap(), want, "{t}");
        }
        for t in [
            "{.c[-7].n}",
            "{.c[3:1].n}",
            "{.c[-1:-2].n}",
            "{.c[0:6:0].n}",
            "{.c[0:6:-1].n}",
            "{.c.n}",
            "{.c[0].x}",
        ] {
            assert!(run(t, &d).is_err(), "{t} should fail");
        }
    }

    #[test]
    fn go_value_printing() {
        let d = json!({
            "ints": [1, 2, 3], "floats": [1.0, 2.2, 1000000.0, 0.00001, 123456.0],
            "mixed": [true, "one", 1, 1.1, null],
            "maps": [{"value": 1, "name": "one"}], "html": "<a&b>",
        });
        assert_eq!(run("{.ints}", &d).unwrap(), "[1,2,3]");
        assert_eq!(run("{.ints[*]}", &d).unwrap(), "1 2 3");
        assert_eq!(
            run("{.floats}", &d).unwrap(),
            "[1,2.2,1000000,0.00001,123456]"
        );
        assert_eq!(run("{.floats[*]}", &d).unwrap(), "1 2.2 1e+06 1e-05 123456");
        assert_eq!(run("{.mixed[*]}", &d).unwrap(), "true one 1 1.1 <nil>");
        assert_eq!(
            run("{.maps[0]}", &d).unwrap(),
            r#"{"name":"one","value":1}"#
        );
        assert_eq!(run("{.html}", &d).unwrap(), "<a&b>");
        assert_eq!(
            run("{$}", &json!({"h": "<a&b>"})).unwrap(),
            r#"{"h":"\u003ca\u0026b\u003e"}"#
        );
        assert_eq!(run("{..}", &json!([1, 2, 3])).unwrap(), "[1,2,3]");
        assert_eq!(run(r#"{"{"}"#, &Json::Null).unwrap(), "{");
        assert_eq!(
            run("hello jsonpath", &Json::Null).unwrap(),
            "hello jsonpath"
        );
    }

    #[test]
    fn filters_follow_go_comparisons() {
        let d = json!({"p": [
            {"id": "i1", "x": 4}, {"id": "i2", "x": -2, "z": 1}, {"id": "i3", "x": 8},
            {"id": "i5", "x": 0, "z": 1}
        ]});
        assert_eq!(run("{.p[?(@.z)].id}", &d).unwrap(), "i2 i5");
        assert_eq!(run("{.p[?(@.x<4.0)].id}", &d).unwrap(), "i2 i5");
        assert_eq!(run("{.p[?(@.x>=4.0)].id}", &d).unwrap(), "i1 i3");
        assert_eq!(run("{.p[?(@.x<=4.0)].id}", &d).unwrap(), "i1 i2 i5");
        assert_eq!(run("{.p[?(@.x>-2.0)].id}", &d).unwrap(), "i1 i3 i5");
        // JSON numbers are float64 in Go: an integer literal does not compare.
        let err = run("{.p[?(@.x==4)].id}", &d).unwrap_err();
        assert!(err.contains("incompatible types for comparison"), "{err}");
        // Missing keys are errors in compared filters (AllowMissingKeys(false)).
        assert!(
            run("{.p[?(@.z==1.0)].id}", &d)
                .unwrap_err()
                .contains("z is not found")
        );
        assert_eq!(
            run("{[?(@<5)]}", &json!([2, 6, 3, 7])).unwrap_err(),
            "jsonPath: incompatible types for comparison"
        );
        assert_eq!(run("{[?(@<5.0)]}", &json!([2, 6, 3, 7])).unwrap(), "2 3");
        assert_eq!(
            run(r#"{range .p[?(.id=="i3")]}{.x}{end}"#, &d).unwrap(),
            "8"
        );
    }

    #[test]
    fn ranges_nest_and_empty_ranges_still_check_the_body() {
        let d = json!({"items": [
            {"metadata": {"name": "pod1"}, "spec": {"containers": [{"name": "foo"}, {"name": "bar"}]}},
            {"metadata": {"name": "pod2"}, "spec": {"containers": [{"name": "baz"}]}}
        ]});
        assert_eq!(
            run(r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#, &d).unwrap(),
            "pod1:foo,bar,+pod2:baz,+"
        );
        let empty = json!({"items": []});
        assert!(run("{range .items[*]}{.name}{end}", &empty).is_err());
        assert_eq!(run("{range .items[*]}x{end}done", &empty).unwrap(), "done");
    }

    #[test]
    fn syntax_errors() {
        for t in [
            "{.a",
            "{hello}",
            "{range .a[*]}{.b}",
            "{end}",
            "{.a[?(@.b<>1)]}",
            "{.a[x]}",
            "{.a[\"b\"]}",
            "{...........a}",
            "{.a[0}",
            "{(}",
            "{'unterminated}",
        ] {
            assert!(
                run(t, &json!({"a": [{"b": 1}]})).is_err(),
                "{t} should fail"
            );
        }
        // Errors name the field, never the data.
        let err = run("{.missing}", &json!({"a": "canary-jsonpath-3b1f"})).unwrap_err();
        assert!(!err.contains("canary"), "{err}");
    }

    #[test]
    fn escapes_and_quotes() {
        let d = json!({"a.b": "dotted", "a": {"b": "nested"}});
        assert_eq!(run(r"{.a\.b}", &d).unwrap(), "dotted");
        // client-go parses ['a.b'] as .a.b.
        assert_eq!(run("{['a.b']}", &d).unwrap(), "nested");
        assert_eq!(run(r#"{"x\ty"}{'it\'s'}"#, &d).unwrap(), "x\tyit's");
    }
}
