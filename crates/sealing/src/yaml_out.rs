//! A YAML writer that reproduces what kubeseal prints with `-o yaml`: the object goes through
//! `sigs.k8s.io/yaml.JSONToYAML`, i.e. go-yaml v2 (`go.yaml.in/yaml/v2` v2.4.3) with its
//! defaults: block style, two-space indent, sequences not indented inside mappings, keys in
//! go-yaml's "natural" order, strings quoted only when they would read back as another type,
//! and line folding at column 80. The scalar analysis and the writers are ported from go-yaml's
//! `emitterc.go` (itself a port of libyaml); only the parts a JSON value can reach are kept.

use serde_json::{Map, Value};

use hush_goyaml::{analyze, is_base60_float, is_break, is_printable, v2_key_cmp};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: usize = 2;
/// libyaml writes longer mapping keys in the explicit `? key` form.
const MAX_SIMPLE_KEY: usize = 128;

/// Writes a JSON value (a mapping at the root) as go-yaml v2 does.
pub(crate) fn to_string(value: &Value) -> String {
    let mut w = Writer {
        out: String::new(),
        column: 0,
    };
    match value {
        Value::Object(map) if !map.is_empty() => w.mapping(map, 0),
        other => {
            w.inline_value(other, 0);
            w.end_line();
        }
    }
    w.out
}

struct Writer {
    out: String,
    column: usize,
}

impl Writer {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// go-yaml's `write_break`: `\n` ends the line; other breaks (CR, NEL, U+2028, U+2029) are
    /// copied as they are and only reset the column.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.newline();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    /// Ends the current line unless a literal block already did.
    fn end_line(&mut self) {
        if self.column != 0 {
            self.newline();
        }
    }

    fn pad_to(&mut self, indent: usize) {
        while self.column < indent {
            self.put(' ');
        }
    }

    /// A block mapping whose keys start at `indent`. The cursor is either at the start of a line
    /// or already at `indent` (after `- `).
    fn mapping(&mut self, map: &Map<String, Value>, indent: usize) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| v2_key_cmp(a, b));
        for key in keys {
            let Some(value) = map.get(key.as_str()) else {
                continue;
            };
            // After `- ` the cursor already sits at `indent`; otherwise at a line start.
            self.pad_to(indent);
            // libyaml's check_simple_key: at most 128 bytes on one line. Other keys are written
            // as `? key` (any style, folded) with `: value` on the next line.
            let simple = key.len() <= MAX_SIMPLE_KEY && !analyze(key).multiline;
            if simple {
                self.scalar(key, indent + BEST_INDENT, true);
            } else {
                self.put_str("? ");
                self.scalar(key, indent + BEST_INDENT, false);
                self.end_line();
                self.pad_to(indent);
            }
            self.put(':');
            match value {
                // `: ` then the collection starts on the same line (libyaml's indention).
                Value::Object(m) if !simple && !m.is_empty() => {
                    self.mapping(m, indent + BEST_INDENT);
                }
                Value::Array(a) if !simple && !a.is_empty() => {
                    self.sequence(a, indent + BEST_INDENT);
                }
                Value::Object(m) if !m.is_empty() => {
                    self.newline();
                    self.mapping(m, indent + BEST_INDENT);
                }
                Value::Array(a) if !a.is_empty() => {
                    self.newline();
                    self.sequence(a, indent);
                }
                other => {
                    self.put(' ');
                    self.inline_value(other, indent + BEST_INDENT);
                    self.end_line();
                }
            }
        }
    }

    /// A block sequence whose dashes sit at `indent`.
    fn sequence(&mut self, items: &[Value], indent: usize) {
        for item in items {
            self.pad_to(indent);
            self.put_str("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(m, indent + BEST_INDENT),
                Value::Array(a) if !a.is_empty() => self.sequence(a, indent + BEST_INDENT),
                other => {
                    self.inline_value(other, indent + BEST_INDENT);
                    self.end_line();
                }
            }
        }
    }

    /// Scalars and empty collections, written after `key: ` or `- `.
    fn inline_value(&mut self, value: &Value, indent: usize) {
        match value {
            Value::Null => self.put_str("null"),
            Value::Bool(b) => self.put_str(if *b { "true" } else { "false" }),
            Value::Number(n) => self.put_str(&n.to_string()),
            Value::String(s) => self.scalar(s, indent, false),
            Value::Object(_) => self.put_str("{}"),
            Value::Array(_) => self.put_str("[]"),
        }
    }

    /// A string scalar. `indent` is the emitter indent used for folded and literal lines;
    /// `simple_key` is true for mapping keys (no folding, multi-line goes double-quoted).
    fn scalar(&mut self, s: &str, indent: usize, simple_key: bool) {
        let a = analyze(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if resolves_to_non_string(s) || is_base60_float(s) {
            Style::Double
        } else {
            Style::Plain
        };
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
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, indent, allow_breaks),
            Style::Single => self.single(s, indent, allow_breaks),
            Style::Double => self.double(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn write_indent(&mut self, indent: usize) {
        self.newline();
        self.pad_to(indent);
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.put('\'');
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_space
                {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.newline();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.pad_to(indent);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                spaces = false;
                breaks = false;
            }
        }
        self.put('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.put('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{07}' => self.put('a'),
                    '\u{08}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{0b}' => self.put('v'),
                    '\u{0c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = u32::from(c);
                        let (prefix, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(prefix);
                        self.put_str(&format!("{v:0width$X}"));
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
                    self.write_indent(indent);
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
        self.put('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.put('|');
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.put(char::from(b'0' + BEST_INDENT as u8));
        }
        // Chomping: strip without a final break, keep with two or more, clip with exactly one.
        match chars.as_slice() {
            [] => self.put('-'),
            [.., last] if !is_break(*last) => self.put('-'),
            [_] => self.put('+'),
            [.., prev, _] if is_break(*prev) => self.put('+'),
            _ => {}
        }
        self.newline();
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.pad_to(indent);
                }
                self.put(c);
                breaks = false;
            }
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

/// go-yaml v2 `resolve("", s)` returning something other than `!!str`: such strings are written
/// double-quoted.
fn resolves_to_non_string(s: &str) -> bool {
    !hush_goyaml::resolves_to_string_v2(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_and_multi_line_keys_are_explicit_as_go_yaml_writes_them() {
        // Input and expected output from sigs.k8s.io/yaml v1.4.0 `JSONToYAML` (go-yaml v2).
        let v: Value = serde_json::from_str(INPUT).unwrap();
        assert_eq!(to_string(&v), EXPECTED);
        // And it reads back.
        let back = crate::yaml_in::documents(EXPECTED).unwrap();
        assert_eq!(back, vec![v]);
    }

    const INPUT: &str = r#"{"annotations": {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "v1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb": "v2", "word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word": "v3", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e\u000e": "v4", "line1\nline2": "v", "a\nb\n": "v3"}, "m": {"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq": {"n": "x", "o": "y"}, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr": ["a", "b"], "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss": {}, "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt": []}}"#;
    const EXPECTED: &str = "annotations:\n  ? |\n    a\n    b\n  : v3\n  ? aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  : v1\n  bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb: v2\n  ? |-\n    line1\n    line2\n  : v\n  ? word word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word word word\n    word word word word word word word word\n  : v3\n  ? \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\\x0E\"\n  : v4\nm:\n  ? qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n  : \"n\": x\n    o: \"y\"\n  ? rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\n  : - a\n    - b\n  ? ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\n  : {}\n  ? tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\n  : []\n";

    #[test]
    fn quoting_follows_go_yaml_v2() {
        let v = json!({
            "t": "true", "e": "", "n": "123", "o": "0x1F", "f": "1.5e3", "ts": "2024-01-02",
            "b60": "1:20", "plain": "hello world", "colon": "a: b", "star": "*x", "dash": "- x",
            "tab": "a\tb", "multi": "line1\nline2\n", "quote": "it's", "hash": "a #b", "y": "yes",
            "ver": "1.2.3", "null": null, "emoji": "\u{1F600}"
        });
        let out = to_string(&v);
        let expected = "\
b60: \"1:20\"
colon: 'a: b'
dash: '- x'
e: \"\"
emoji: \"\\U0001F600\"
f: \"1.5e3\"
hash: 'a #b'
multi: |
  line1
  line2
\"n\": \"123\"
\"null\": null
o: \"0x1F\"
plain: hello world
quote: it's
star: '*x'
t: \"true\"
tab: \"a\\tb\"
ts: \"2024-01-02\"
ver: 1.2.3
\"y\": \"yes\"
";
        assert_eq!(out, expected);
    }

    #[test]
    fn nested_shapes() {
        let v = json!({"a": {"b": [ {"c": 1, "d": []}, "x" ], "e": {}}, "z": null});
        assert_eq!(
            to_string(&v),
            "a:\n  b:\n  - c: 1\n    d: []\n  - x\n  e: {}\nz: null\n"
        );
    }

    #[test]
    fn folds_long_plain_strings_at_80_columns() {
        let long = "word ".repeat(30).trim_end().to_owned();
        let out = to_string(&json!({ "k": long }));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines[1].starts_with("  word"), "{out}");
        assert!(lines[0].len() > 80 && lines[0].len() <= 86, "{out}");
    }
}
