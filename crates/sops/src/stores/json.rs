//! JSON as sops reads and writes it: key order kept, integers typed `int` when they fit in 64
//! bits (sops 3.13.2), Go's `encoding/json` escaping (HTML-safe) and `json.Indent` layout
//! (tab by default, or N spaces), trailing newline.

use base64::Engine as _;

use crate::goformat;
use crate::tree::{Branch, Item, Value};
use crate::{Error, Result};

const MAX_DEPTH: usize = 512;

/// Parses a JSON document whose top level is an object.
pub fn parse(src: &[u8]) -> Result<Branch> {
    let mut p = Parser {
        s: src,
        pos: 0,
        depth: 0,
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.err(
            "the top level of a JSON document must be an object (sops does not support other documents)",
        ));
    }
    let v = p.value()?;
    p.ws();
    if p.pos != src.len() {
        return Err(p.err("unexpected data after the top-level object"));
    }
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(p.err("expected an object")),
    }
}

/// Parses any JSON value (used by `sops set`).
pub fn parse_value(src: &[u8]) -> Result<Value> {
    let mut p = Parser {
        s: src,
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.pos != src.len() {
        return Err(p.err("unexpected data after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> Error {
        Error::parse("JSON", super::line_at(self.s, self.pos), msg)
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
    fn lit(&mut self, word: &[u8], v: Value) -> Result<Value> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }
    fn value(&mut self) -> Result<Value> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') => self.lit(b"true", Value::Bool(true)),
            Some(b'f') => self.lit(b"false", Value::Bool(false)),
            Some(b'n') => self.lit(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }
    /// Enters the object or array whose opening bracket is next; `true` when `close` follows
    /// at once (consumed: the container is empty and left).
    fn enter(&mut self, close: u8) -> Result<bool> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.pos += 1;
        self.ws();
        Ok(self.leave_at(close))
    }
    /// After a member: `false` after a `,`, `true` at `close` (consumed, container left).
    fn next_member(&mut self, close: u8, expected: &str) -> Result<bool> {
        self.ws();
        if self.peek() == Some(b',') {
            self.pos += 1;
            return Ok(false);
        }
        if self.leave_at(close) {
            return Ok(true);
        }
        Err(self.err(expected))
    }
    fn leave_at(&mut self, close: u8) -> bool {
        if self.peek() != Some(close) {
            return false;
        }
        self.pos += 1;
        self.depth -= 1;
        true
    }
    fn object(&mut self) -> Result<Value> {
        let mut items = Vec::new();
        if self.enter(b'}')? {
            return Ok(Value::Map(items));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let k = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after an object key"));
            }
            self.pos += 1;
            let v = self.value()?;
            items.push(Item::Entry(k, v));
            if self.next_member(b'}', "expected `,` or `}`")? {
                return Ok(Value::Map(items));
            }
        }
    }
    fn array(&mut self) -> Result<Value> {
        let mut items = Vec::new();
        if self.enter(b']')? {
            return Ok(Value::List(items));
        }
        loop {
            items.push(self.value()?);
            if self.next_member(b']', "expected `,` or `]`")? {
                return Ok(Value::List(items));
            }
        }
    }
    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.digits();
        if int_digits == 0 || (self.s[int_start] == b'0' && int_digits > 1) {
            return Err(self.err("invalid number"));
        }
        let mut is_int = true;
        if self.peek() == Some(b'.') {
            is_int = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            is_int = false;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos])
            .map_err(|_| self.err("invalid number"))?;
        if is_int && let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err("invalid number"))
    }
    /// Skips a run of decimal digits; how many.
    fn digits(&mut self) -> usize {
        let from = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - from
    }
    fn hex4(&mut self) -> Result<u32> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.pos += 4;
        Ok(h)
    }
    /// The character of the escape after a backslash; lone surrogates become U+FFFD, as Go's
    /// `encoding/json` decodes them.
    fn escape(&mut self) -> Result<char> {
        let Some(e) = self.peek() else {
            return Err(self.err("unterminated escape"));
        };
        self.pos += 1;
        Ok(match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\x08',
            b'f' => '\x0c',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => return Err(self.err("invalid escape")),
        })
    }
    fn unicode_escape(&mut self) -> Result<char> {
        let hi = self.hex4()?;
        if !((0xD800..0xDC00).contains(&hi) && self.s[self.pos..].starts_with(b"\\u")) {
            return Ok(char::from_u32(hi).unwrap_or('\u{fffd}'));
        }
        let save = self.pos;
        self.pos += 2;
        let lo = self.hex4()?;
        if (0xDC00..0xE000).contains(&lo) {
            Ok(
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    .unwrap_or('\u{fffd}'),
            )
        } else {
            self.pos = save;
            Ok('\u{fffd}')
        }
    }
    fn string(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let c = self.escape()?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in a string")),
                b => out.push(b),
            }
        }
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// Go's `encoding/json` string encoding with HTML escaping (as `json.Marshal` writes strings).
fn write_string(out: &mut String, s: &str) {
    hush_gocompat::json::write_string(out, s, true);
}

/// Writes a document (a map) with `indent` (`None` = tab) and a trailing newline.
pub fn emit(branch: &[Item], indent: Option<usize>) -> Result<String> {
    let mut out = String::new();
    write_map(&mut out, branch, &indent_unit(indent), 0)?;
    out.push('\n');
    Ok(out)
}

/// Writes one value as JSON (used by `--extract`).
pub fn emit_value(v: &Value, indent: Option<usize>) -> Result<String> {
    let mut out = String::new();
    write_value(&mut out, v, &indent_unit(indent), 0)?;
    out.push('\n');
    Ok(out)
}

/// One level of indentation: `indent` spaces, or a tab.
fn indent_unit(indent: Option<usize>) -> String {
    match indent {
        None => "\t".to_owned(),
        Some(n) => " ".repeat(n),
    }
}

fn newline(out: &mut String, unit: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(unit);
    }
}

fn write_map(out: &mut String, items: &[Item], unit: &str, depth: usize) -> Result<()> {
    let entries: Vec<(&String, &Value)> = items
        .iter()
        .filter_map(|i| match i {
            Item::Entry(k, v) => Some((k, v)),
            Item::Comment(_) | Item::InlineComment(_) => None,
        })
        .collect();
    write_members(out, ('{', '}'), &entries, unit, depth, |out, (k, v)| {
        write_string(out, k);
        out.push_str(": ");
        write_value(out, v, unit, depth + 1)
    })
}

/// `open`, each member on its own line one level deeper, `close`; `{}`/`[]` when empty
/// (Go's `json.Indent`).
fn write_members<T>(
    out: &mut String,
    (open, close): (char, char),
    members: &[T],
    unit: &str,
    depth: usize,
    mut member: impl FnMut(&mut String, &T) -> Result<()>,
) -> Result<()> {
    out.push(open);
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, unit, depth + 1);
        member(out, m)?;
    }
    if !members.is_empty() {
        newline(out, unit, depth);
    }
    out.push(close);
    Ok(())
}

fn write_value(out: &mut String, v: &Value, unit: &str, depth: usize) -> Result<()> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&goformat::format_json(*f).ok_or_else(|| {
            Error::Unsupported("JSON cannot represent NaN or infinite numbers".into())
        })?),
        Value::Str(s) | Value::Time(s) => write_string(out, s),
        Value::Bytes(b) => write_string(out, &base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Comment(_) => {}
        Value::Map(m) => write_map(out, m, unit, depth)?,
        Value::List(l) => {
            let vals: Vec<&Value> = l
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            write_members(out, ('[', ']'), &vals, unit, depth, |out, v| {
                write_value(out, v, unit, depth + 1)
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layout_and_escaping() {
        let b = parse(
            br#"{"a":"<x&y>","n":5,"f":1.0,"big":12345678901234567890,"arr":[1,{"k":"v"}],"e":{}}"#,
        );
        let b = b.unwrap_or_default();
        assert_eq!(b.len(), 6);
        let out = emit(&b, None).unwrap_or_default();
        assert_eq!(
            out,
            "{\n\t\"a\": \"\\u003cx\\u0026y\\u003e\",\n\t\"n\": 5,\n\t\"f\": 1,\n\t\"big\": 12345678901234567000,\n\t\"arr\": [\n\t\t1,\n\t\t{\n\t\t\t\"k\": \"v\"\n\t\t}\n\t],\n\t\"e\": {}\n}\n"
        );
    }

    #[test]
    fn refuses_non_objects_and_garbage() {
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"{\"a\":}").is_err());
        assert!(parse(b"{\"a\":1} x").is_err());
        assert!(parse(b"{\"a\":01}").is_err());
    }
}
