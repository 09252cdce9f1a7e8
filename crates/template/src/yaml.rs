//! ESO's `toYaml`/`fromYaml`: `sigs.k8s.io/yaml` over go-yaml v2, byte for byte.
//!
//! `toYaml` is `json.Marshal` → go-yaml v2 decode (JSON numbers become `int`/`uint64`/`float64`)
//! → go-yaml v2 encode (block style, sorted keys, 80-column folding) with the final newline
//! trimmed. The emitter below follows libyaml's scalar analysis and style choice, which is what
//! decides quoting. `fromYaml` parses with YAML 1.1 scalar resolution (`yes` is `true`) and
//! returns what `json.Unmarshal` into `map[string]interface{}` gives (numbers are `float64`).

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

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
                let text = format!("{f}");
                if let Some(i) = go_parse_int(&text) {
                    Node::Int(i)
                } else if let Some(u) = go_parse_uint(&text) {
                    Node::Uint(u)
                } else {
                    Node::Float(*f)
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

/// go-yaml v2's map key order: letters before other runes, digit runs compared as numbers.
fn key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_numeric() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_numeric() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u32).wrapping_sub('0' as i64));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_numeric() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u32).wrapping_sub('0' as i64));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
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

/// What libyaml's scalar analysis allows.
struct Analysis {
    multiline: bool,
    block_plain: bool,
    single_quoted: bool,
    block: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `is_printable` (on the UTF-8 encoding; the non-BMP planes are not printable).
fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single_quoted: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let blank = |c: Option<&char>| matches!(c, None | Some(' ' | '\t'));
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = blank(chars.get(i + 1));
        let last = i + 1 == chars.len();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_by_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_ind = true,
                '#' if preceded_by_ws => block_ind = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = matches!(c, ' ' | '\t') || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single_quoted = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.block_plain = false;
    }
    a
}

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
                entries.sort_by(|a, b| {
                    if key_less(&a.0, &b.0) {
                        std::cmp::Ordering::Less
                    } else if key_less(&b.0, &a.0) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                });
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
        if style == Style::Plain && (!a.block_plain || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || simple_key) {
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

/// go-yaml's `isBase60Float`: `1:20` and the like are quoted on output.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_digit() || b[0] == b'+' || b[0] == b'-' || b[0] == b'.') {
        return false;
    }
    if !s.contains(':') {
        return false;
    }
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (head, frac) = match rest.find('.') {
        Some(p) => (&rest[..p], Some(&rest[p + 1..])),
        None => (rest, None),
    };
    if frac.is_some_and(|f| !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')) {
        return false;
    }
    let mut parts = head.split(':');
    let first = parts.next().unwrap_or_default();
    let fb = first.as_bytes();
    if fb.is_empty()
        || !fb[0].is_ascii_digit()
        || !fb.iter().all(|c| c.is_ascii_digit() || *c == b'_')
    {
        return false;
    }
    let mut n = 0;
    for p in parts {
        n += 1;
        let pb = p.as_bytes();
        let ok = match pb {
            [d] => d.is_ascii_digit(),
            [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    n > 0
}

/// A plain scalar's resolved value under go-yaml v2's rules (YAML 1.1 booleans, `~`, ints with
/// `_`, `0x`/`0o`/`0b`/leading-zero octal, floats, timestamps).
#[derive(Debug, PartialEq)]
enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Timestamp(String),
    Merge,
    Str,
}

fn resolves_to_string(s: &str) -> bool {
    resolve_plain(s) == Resolved::Str
}

fn resolve_plain(s: &str) -> Resolved {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        "<<" => return Resolved::Merge,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        return go_parse_float(s).map_or(Resolved::Str, Resolved::Float);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Resolved::Str;
    }
    if let Some(ts) = parse_timestamp(s) {
        return Resolved::Timestamp(ts);
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Resolved::Int(i);
    }
    if let Some(u) = go_parse_uint(&plain) {
        return Resolved::Uint(u);
    }
    if is_yaml_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Resolved::Float(f);
    }
    if let Some(bits) = plain.strip_prefix("0b") {
        if let Ok(i) = i64::from_str_radix(bits, 2) {
            return Resolved::Int(i);
        }
        if let Ok(u) = u64::from_str_radix(bits, 2) {
            return Resolved::Uint(u);
        }
    } else if let Some(bits) = plain.strip_prefix("-0b")
        && let Ok(i) = i64::from_str_radix(&format!("-{bits}"), 2)
    {
        return Resolved::Int(i);
    }
    Resolved::Str
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if b.first() == Some(&b'.') {
        i = 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseInt(s, 0, 64)` (base prefixes; `_` already removed).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = go_parse_uint_body(body)?;
    if neg {
        if u <= 1u64 << 63 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: no sign allowed.
fn go_parse_uint(s: &str) -> Option<u64> {
    go_parse_uint_body(s)
}

fn go_parse_uint_body(body: &str) -> Option<u64> {
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms YAML produces (no hex floats, `inf`
/// or `nan` words, which go-yaml never passes here).
fn go_parse_float(s: &str) -> Option<f64> {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    if b.is_empty()
        || !b
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// go-yaml's `parseTimestamp`: `2006-1-2`, `2006-1-2 15:4:5.999999999` and the RFC 3339 forms
/// with `T`/`t` and a zone; returns the RFC 3339 text `json.Marshal` prints for the time.
fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let year_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year_digits != 4 || b.get(4) != Some(&b'-') {
        return None;
    }
    let mut p = Cursor { b, i: 5 };
    let year: u32 = s[..4].parse().ok()?;
    let month = p.num(1, 2)?;
    p.lit(b'-')?;
    let day = p.num(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if p.i == b.len() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let sep = b[p.i];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    p.i += 1;
    // Go's stdHour "15" takes two digits; minute "4" and second "5" one or two.
    let hour = p.num(2, 2)?;
    p.lit(b':')?;
    let min = p.num(1, 2)?;
    p.lit(b':')?;
    let sec = p.num(1, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if p.i < b.len() && b[p.i] == b'.' {
        p.i += 1;
        let st = p.i;
        while p.i < b.len() && b[p.i].is_ascii_digit() {
            p.i += 1;
        }
        if p.i == st || p.i - st > 9 {
            return None;
        }
        frac = s[st..p.i].trim_end_matches('0').to_owned();
    }
    let time = format!("{hour:02}:{min:02}:{sec:02}");
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let zone = if sep == b' ' {
        if p.i != b.len() {
            return None;
        }
        "Z".to_owned()
    } else {
        match b.get(p.i) {
            Some(b'Z') if p.i + 1 == b.len() => "Z".to_owned(),
            Some(b'+' | b'-') => {
                let sign = b[p.i];
                p.i += 1;
                let zh = p.num(2, 2)?;
                p.lit(b':')?;
                let zm = p.num(2, 2)?;
                if p.i != b.len() || zh > 23 || zm > 59 {
                    return None;
                }
                if zh == 0 && zm == 0 {
                    "Z".to_owned()
                } else {
                    format!("{}{zh:02}:{zm:02}", sign as char)
                }
            }
            _ => return None,
        }
    };
    Some(format!("{date}T{time}{frac}{zone}"))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let st = self.i;
        while self.i < self.b.len() && self.i - st < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - st < min {
            return None;
        }
        std::str::from_utf8(&self.b[st..self.i]).ok()?.parse().ok()
    }

    fn lit(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
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

/// `fromYaml`: the first document as `map[string]interface{}` after the JSON round trip.
pub(crate) fn from_yaml(s: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(s).map_err(|_| "fromYaml: input is not UTF-8".to_owned())?;
    if has_yaml_only_break(text) {
        return Err(
            "fromYaml: NEL, LS and PS characters are not supported by hush-template".into(),
        );
    }
    let mut b = Builder::default();
    for ev in Parser::new_from_str(text) {
        let (ev, _) =
            ev.map_err(|e| format!("fromYaml: invalid YAML at line {}", e.marker().line()))?;
        // Only the first document counts, as in go-yaml's Unmarshal.
        if matches!(ev, Event::DocumentEnd) {
            break;
        }
        b.on_event(ev);
    }
    if let Some(e) = b.error {
        return Err(format!("fromYaml: {e}"));
    }
    let Some(doc) = b.docs.into_iter().next() else {
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
    fn key_order_is_go_yaml_v2() {
        // The order go-yaml printed for these keys (tools/gotemplate-oracle).
        let mut keys = vec!["a010", "10", "K", "a", "2", "_u", "a10b", "1"];
        keys.sort_by(|a, b| {
            if key_less(a, b) {
                std::cmp::Ordering::Less
            } else if key_less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        assert_eq!(keys, vec!["_u", "1", "2", "10", "K", "a", "a10b", "a010"]);
    }

    #[test]
    fn resolution_follows_yaml_1_1() {
        assert_eq!(resolve_plain("yes"), Resolved::Bool(true));
        assert_eq!(resolve_plain("0x1F"), Resolved::Int(31));
        assert_eq!(resolve_plain("017"), Resolved::Int(15));
        assert_eq!(resolve_plain("1_000"), Resolved::Int(1000));
        assert_eq!(resolve_plain("1.5e3"), Resolved::Float(1500.0));
        assert_eq!(
            resolve_plain("2001-12-14"),
            Resolved::Timestamp("2001-12-14T00:00:00Z".into())
        );
        assert_eq!(resolve_plain("1.2.3"), Resolved::Str);
        assert!(is_base60_float("1:20"));
        assert!(!is_base60_float("1:2a"));
    }

    #[test]
    fn refuses_what_go_yaml_would_fold() {
        assert!(to_yaml(&Value::str("a\u{2028}b")).is_err());
        assert!(from_yaml("a: \"x\u{85}y\"".as_bytes()).is_err());
        // A YAML syntax error is an error (go-yaml's message text is not reproduced).
        assert!(from_yaml(b"a: [").is_err());
        assert!(to_yaml(&Value::Map(BTreeMap::from([("k".repeat(129), Value::Nil)]))).is_err());
    }
}
