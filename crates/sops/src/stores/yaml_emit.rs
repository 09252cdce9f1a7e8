//! A YAML writer that produces what go-yaml v3's encoder produces for sops' trees: block style,
//! configurable indentation (sops uses 4), sequences indented inside mappings, compact
//! `- key: value` items, no line wrapping, and libyaml's scalar style rules (plain when it
//! reads back as the same string, else single-quoted, else double-quoted; multi-line strings
//! as literal blocks).

use base64::Engine as _;

use hush_goyaml::{analyze, is_base60_float, is_break, is_printable};

use crate::goformat;
use crate::stores::yaml_parse::resolve_plain;
use crate::tree::{Branch, Item, Value};

/// Writes documents separated by `---`.
pub fn emit(docs: &[Branch], indent: usize) -> String {
    let indent = indent.clamp(2, 9);
    let mut e = Emitter {
        out: String::new(),
        best: indent,
    };
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            e.out.push_str("---\n");
        }
        if doc.iter().all(|i| matches!(i, Item::Comment(_))) && !doc.is_empty() {
            for item in doc {
                if let Item::Comment(c) = item {
                    e.comment(0, c);
                }
            }
            e.out.push_str("{}\n");
        } else if doc.is_empty() {
            e.out.push_str("{}\n");
        } else {
            e.map(doc, 0, false);
        }
    }
    e.out
}

/// Writes one value as `sops decrypt --extract` prints a non-string value.
pub fn emit_value(v: &Value, indent: usize) -> String {
    let mut e = Emitter {
        out: String::new(),
        best: indent.clamp(2, 9),
    };
    match v {
        Value::Map(m) if !m.is_empty() => e.map(m, 0, false),
        Value::List(l) if l.iter().any(|v| !matches!(v, Value::Comment(_))) => e.seq(l, 0, false),
        Value::Map(_) => e.out.push_str("{}\n"),
        Value::List(_) => e.out.push_str("[]\n"),
        v => {
            e.scalar_value(v, 0, 0);
        }
    }
    e.out
}

struct Emitter {
    out: String,
    best: usize,
}

impl Emitter {
    fn next_indent(&self, indent: usize) -> usize {
        self.best * ((indent + self.best) / self.best)
    }

    fn pad(&mut self, n: usize) {
        for _ in 0..n {
            self.out.push(' ');
        }
    }

    fn comment(&mut self, indent: usize, text: &str) {
        for line in text.split('\n') {
            self.pad(indent);
            self.out.push('#');
            self.out.push_str(line);
            self.out.push('\n');
        }
    }

    /// A mapping whose keys are at column `indent`; `inline` when the first key follows a
    /// `- ` already written.
    fn map(&mut self, items: &[Item], indent: usize, mut inline: bool) {
        let mut line_comment: Option<&str> = None;
        for item in items {
            match item {
                Item::InlineComment(c) => {
                    if let Some(prev) = line_comment.replace(c) {
                        // Two for one entry (not from a parsed file): the first becomes a head comment.
                        self.comment(indent, prev);
                    }
                }
                Item::Comment(c) => {
                    if inline {
                        // A head comment of the first key of a sequence item: go-yaml writes it
                        // after the dash; keep the structure readable on the next line.
                        self.out.push('\n');
                        inline = false;
                    }
                    self.comment(indent, c);
                }
                Item::Entry(k, v) => {
                    let start = self.out.len();
                    let after_dash = inline;
                    if !inline {
                        self.pad(indent);
                    }
                    inline = false;
                    self.key(k, indent);
                    self.out.push(':');
                    self.value_after_key(v, indent);
                    if let Some(c) = line_comment.take() {
                        self.line_comment(start, after_dash, indent, c);
                    }
                }
            }
        }
        if let Some(c) = line_comment {
            self.comment(indent, c);
        }
        if inline {
            self.out.push_str("{}\n");
        }
    }

    fn value_after_key(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Map(m) if m.iter().any(|i| matches!(i, Item::Entry(..))) => {
                self.out.push('\n');
                let ni = self.next_indent(indent);
                self.map(m, ni, false);
            }
            Value::Map(m) => {
                self.out.push_str(" {}\n");
                for i in m {
                    if let Item::Comment(c) = i {
                        let ni = self.next_indent(indent);
                        self.comment(ni, c);
                    }
                }
            }
            Value::List(l) if l.iter().any(|v| !matches!(v, Value::Comment(_))) => {
                self.out.push('\n');
                let ni = self.next_indent(indent);
                self.seq(l, ni, false);
            }
            Value::List(l) => {
                self.out.push_str(" []\n");
                for v in l {
                    if let Value::Comment(c) = v {
                        let ni = self.next_indent(indent);
                        self.comment(ni, c);
                    }
                }
            }
            v => {
                self.out.push(' ');
                let block_indent = self.next_indent(indent);
                self.scalar_value(v, block_indent, indent);
            }
        }
    }

    /// Puts `text` after the entry written from `start` when that entry is one line (go-yaml's
    /// line comment, as sops 3.13 writes it); else above the entry as a head comment.
    fn line_comment(&mut self, start: usize, after_dash: bool, indent: usize, text: &str) {
        let written = &self.out[start..];
        let one_line = written.find('\n') == Some(written.len() - 1);
        if one_line && !text.contains(['\n', '\r']) {
            self.out.pop();
            self.out.push_str(" #");
            self.out.push_str(text);
            self.out.push('\n');
            return;
        }
        let mut head = std::mem::take(&mut self.out);
        let entry = head.split_off(start);
        if after_dash {
            head.push('\n');
        }
        self.out = head;
        self.comment(indent, text);
        if after_dash {
            self.pad(indent);
        }
        self.out.push_str(&entry);
    }

    /// A sequence whose dashes are at column `indent`.
    fn seq(&mut self, items: &[Value], indent: usize, mut inline: bool) {
        for v in items {
            if let Value::Comment(c) = v {
                if inline {
                    self.out.push('\n');
                    inline = false;
                }
                self.comment(indent, c);
                continue;
            }
            if !inline {
                self.pad(indent);
            }
            inline = false;
            self.out.push('-');
            match v {
                Value::Map(m) if m.iter().any(|i| matches!(i, Item::Entry(..))) => {
                    self.out.push(' ');
                    self.map(m, indent + 2, true);
                }
                Value::List(l) if l.iter().any(|v| !matches!(v, Value::Comment(_))) => {
                    self.out.push(' ');
                    self.seq(l, indent + 2, true);
                }
                Value::Map(_) => self.out.push_str(" {}\n"),
                Value::List(_) => self.out.push_str(" []\n"),
                v => {
                    self.out.push(' ');
                    self.scalar_value(v, indent + 2, indent);
                }
            }
        }
    }

    fn key(&mut self, k: &str, indent: usize) {
        if k == "<<" {
            // go-yaml tags the merge key explicitly when it is a plain string.
            self.out.push_str("!!merge <<");
            return;
        }
        match choose_style(k, true) {
            Style::Plain => self.out.push_str(k),
            Style::Single => {
                let ki = self.next_indent(indent);
                single_quoted(&mut self.out, k, ki);
            }
            Style::Double | Style::Literal => double_quoted(&mut self.out, k),
        }
    }

    /// A scalar and its line break; block scalars put their content at `block_indent`.
    fn scalar_value(&mut self, v: &Value, block_indent: usize, _parent: usize) {
        match v {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) => self.out.push_str(&goformat::format_yaml_float(*f)),
            Value::Time(t) => self.out.push_str(t),
            Value::Bytes(b) => {
                self.out.push_str("!!binary ");
                self.out
                    .push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            }
            Value::Str(s) | Value::Comment(s) if s == "<<" => self.out.push_str("!!merge <<"),
            Value::Str(s) | Value::Comment(s) => match choose_style(s, false) {
                Style::Plain => self.out.push_str(s),
                Style::Single => single_quoted(&mut self.out, s, block_indent),
                Style::Double => double_quoted(&mut self.out, s),
                Style::Literal => {
                    self.literal(s, block_indent);
                    return;
                }
            },
            Value::Map(_) | Value::List(_) => {}
        }
        self.out.push('\n');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.out.push('|');
        let first = s.chars().next();
        if matches!(first, Some(' ' | '\n')) {
            self.out.push_str(&self.best.to_string());
        }
        // Chomping: `-` without a final break, `+` with more than one, clip otherwise.
        let chomp = if !s.ends_with('\n') {
            "-"
        } else if s == "\n" || s.ends_with("\n\n") {
            "+"
        } else {
            ""
        };
        self.out.push_str(chomp);
        self.out.push('\n');
        let mut at_line_start = true;
        for ch in s.chars() {
            if is_break(ch) {
                self.out.push(ch);
                at_line_start = true;
            } else {
                if at_line_start {
                    self.pad(indent);
                    at_line_start = false;
                }
                self.out.push(ch);
            }
        }
        if !s.ends_with('\n') {
            self.out.push('\n');
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// go-yaml's choice for a string: literal when multi-line, double-quoted when it would read
/// back as another type, plain when libyaml allows it, else single, else double.
fn choose_style(s: &str, simple_key: bool) -> Style {
    let a = analyze(s);
    let resolves_to_str = matches!(resolve_plain(s, None), Ok(Value::Str(_)))
        && !is_base60_float(s)
        && !is_old_bool(s);
    // A literal block is only used for `\n` breaks; NEL/LS/PS in a multi-line value go
    // double-quoted (go-yaml would write them raw inside the block).
    let other_breaks = s.contains(['\u{85}', '\u{2028}', '\u{2029}']);
    let requested = if s.contains('\n') && other_breaks {
        Style::Double
    } else if s.contains('\n') {
        Style::Literal
    } else if resolves_to_str {
        Style::Plain
    } else {
        Style::Double
    };
    match requested {
        Style::Literal => {
            if !a.block_allowed || simple_key {
                Style::Double
            } else {
                Style::Literal
            }
        }
        Style::Plain => {
            if !a.plain_allowed || (s.is_empty() && simple_key) {
                if a.single_quoted_allowed {
                    Style::Single
                } else {
                    Style::Double
                }
            } else {
                Style::Plain
            }
        }
        other => other,
    }
}

/// libyaml's single-quoted writer: `'` doubled; after a line-break character other than `\n`
/// (NEL, LS, PS) the next non-space character is indented to the scalar's `indent`.
fn single_quoted(out: &mut String, s: &str, indent: usize) {
    out.push('\'');
    let mut col: Option<usize> = None; // column since the last break, when inside a line
    let mut breaks = false;
    for c in s.chars() {
        if c == ' ' {
            out.push(' ');
            col = col.map(|n| n + 1);
        } else if is_break(c) {
            out.push(c);
            col = Some(0);
            breaks = true;
        } else {
            if breaks {
                let at = col.unwrap_or(0);
                for _ in at..indent {
                    out.push(' ');
                }
                breaks = false;
            }
            col = None;
            if c == '\'' {
                out.push_str("''");
            } else {
                out.push(c);
            }
        }
    }
    out.push('\'');
}

fn double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        let escape = !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\';
        if !escape {
            out.push(c);
            continue;
        }
        match c {
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c => {
                let v = c as u32;
                if v <= 0xFF {
                    out.push_str(&format!("\\x{v:02X}"));
                } else if v <= 0xFFFF {
                    out.push_str(&format!("\\u{v:04X}"));
                } else {
                    out.push_str(&format!("\\U{v:08X}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_like_go_yaml() {
        assert_eq!(choose_style("plain", false), Style::Plain);
        assert_eq!(choose_style("n", true), Style::Double);
        assert_eq!(choose_style("42", false), Style::Double);
        assert_eq!(choose_style("yes", false), Style::Double);
        assert_eq!(choose_style("", false), Style::Double);
        assert_eq!(choose_style("a: b", false), Style::Single);
        assert_eq!(choose_style("a ", false), Style::Single);
        assert_eq!(choose_style("- x", false), Style::Single);
        assert_eq!(choose_style("2026-11-26T03:43:56Z", false), Style::Double);
        assert_eq!(choose_style("1:20", false), Style::Double);
        assert_eq!(choose_style("a\nb", false), Style::Literal);
        assert_eq!(choose_style("a \nb", false), Style::Double);
        assert_eq!(choose_style("tab\there", false), Style::Double);
        assert_eq!(choose_style("emoji 😀", false), Style::Double);
        assert_eq!(choose_style("héllo", false), Style::Plain);
        assert_eq!(
            choose_style(
                "ENC[AES256_GCM,data:oYyi,iv:My+/=,tag:t5==,type:str]",
                false
            ),
            Style::Plain
        );
        assert_eq!(choose_style("3.11.0", false), Style::Plain);
        let mut s = String::new();
        double_quoted(&mut s, "😀\t\"");
        assert_eq!(s, "\"\\U0001F600\\t\\\"\"");
    }
}
