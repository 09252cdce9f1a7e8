//! go-yaml v2's block writer: what `yaml.Marshal` prints for the values a JSON document decodes
//! to (`sigs.k8s.io/yaml`, used by kubeseal's `-o yaml` and ESO's `toYaml`). Ported from go-yaml
//! v2's `emitterc.go` (itself a port of libyaml) with its defaults: block style, two-space indent,
//! sequences not indented inside mappings, keys in go-yaml's natural order, strings quoted only
//! when they would read back as another type, folding at column 80, and mapping keys over 128
//! bytes or with line breaks in the explicit `? key` / `: value` form. Only the states a decoded
//! JSON value can reach are kept: no anchors, tags, comments or flow collections other than `[]`
//! and `{}`.

use crate::{analyze, is_base60_float, is_break, is_printable, resolves_to_string_v2, v2_key_cmp};

/// A value as go-yaml v2 marshals it: what `yaml.Unmarshal` gives for a JSON document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, already in the text go-yaml prints for it (Go's `strconv` formatting of the
    /// `int`, `uint64` or `float64` it decoded to); written unquoted. The callers decide the text
    /// because they reach go-yaml through different JSON encoders.
    Number(String),
    /// A string, quoted or written as a block only where go-yaml would.
    Str(String),
    /// A sequence; `[]` when empty.
    Seq(Vec<Node>),
    /// A mapping with string keys, written in go-yaml v2's key order ([`crate::v2_key_cmp`])
    /// whatever the order here; `{}` when empty.
    Map(Vec<(String, Node)>),
}

/// What go-yaml v2's `yaml.Marshal` writes for `node`: one document without `---`, ending with a
/// line break.
pub fn marshal(node: &Node) -> String {
    marshal_within(node, usize::MAX).unwrap_or_default()
}

/// [`marshal`], or `None` as soon as the text passes `max` bytes: indentation makes the text
/// grow with depth times nodes, far beyond the size of the value.
pub fn marshal_within(node: &Node, max: usize) -> Option<String> {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        indent: None,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
        max,
    };
    e.node(node, Context::Root);
    // libyaml's document end: finish the last line (a literal block already did).
    e.write_indent();
    (e.out.len() <= max).then_some(e.out)
}

const BEST_INDENT: usize = 2;
const BEST_WIDTH: usize = 80;
/// libyaml's `check_simple_key`: longer keys (in bytes) take the explicit `? ` form.
const MAX_SIMPLE_KEY: usize = 128;

/// Where a node sits; libyaml's `root_context`, `mapping_context` and `simple_key_context`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    SequenceItem,
    /// A mapping value, or a key in the explicit `? ` form.
    MappingEntry,
    /// A key written as `key: value`.
    SimpleKey,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// libyaml's emitter state, reduced to what block output needs.
struct Emitter {
    out: String,
    column: usize,
    /// libyaml's `indent`; `None` is its -1 (before the root node).
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    /// The last character written was whitespace.
    whitespace: bool,
    /// Only indentation (and indicators such as `- `) has been written on this line.
    indention: bool,
    /// Past this many bytes no further node is written (the result is then refused).
    max: usize,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// go-yaml's `write_break`: `\n` ends the line; other breaks (CR, NEL, LS, PS) are copied
    /// as they are and only reset the column.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_ws: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        self.put_str(indicator);
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None => Some(if flow { BEST_INDENT } else { 0 }),
            Some(i) if !indentless => Some(i + BEST_INDENT),
            same => same,
        };
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn node(&mut self, node: &Node, ctx: Context) {
        if self.out.len() > self.max {
            return;
        }
        match node {
            Node::Null => self.scalar("null", Style::Plain, ctx),
            Node::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, ctx),
            Node::Number(n) => self.scalar(n, Style::Plain, ctx),
            Node::Str(s) => self.string(s, ctx),
            // Empty collections are the only flow collections go-yaml writes by default.
            Node::Seq(items) if items.is_empty() => self.empty_flow("[", "]"),
            Node::Map(entries) if entries.is_empty() => self.empty_flow("{", "}"),
            Node::Seq(items) => self.block_sequence(items, ctx),
            Node::Map(entries) => self.block_mapping(entries),
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.indicator(open, true, true, false);
        self.indicator(close, false, false, false);
    }

    fn block_sequence(&mut self, items: &[Node], ctx: Context) {
        // A sequence right after `key:` keeps the key's indentation (`- ` under the key).
        let indentless = ctx == Context::MappingEntry && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.indicator("-", true, false, true);
            self.node(item, Context::SequenceItem);
        }
        self.pop_indent();
    }

    fn block_mapping(&mut self, entries: &[(String, Node)]) {
        let mut entries: Vec<&(String, Node)> = entries.iter().collect();
        entries.sort_by(|a, b| v2_key_cmp(&a.0, &b.0));
        self.increase_indent(false, false);
        for (key, value) in entries {
            self.write_indent();
            if key.len() <= MAX_SIMPLE_KEY && !analyze(key).multiline {
                self.string(key, Context::SimpleKey);
                self.indicator(":", false, false, false);
            } else {
                // The key may take any style and fold; `:` starts the next line.
                self.indicator("?", true, false, true);
                self.string(key, Context::MappingEntry);
                self.write_indent();
                self.indicator(":", true, false, true);
            }
            self.node(value, Context::MappingEntry);
        }
        self.pop_indent();
    }

    /// go-yaml's `stringv`: plain unless the text would read back as another type, a literal
    /// block for multi-line text.
    fn string(&mut self, s: &str, ctx: Context) {
        let style = if s.contains('\n') {
            Style::Literal
        } else if resolves_to_string_v2(s) && !is_base60_float(s) {
            Style::Plain
        } else {
            Style::Double
        };
        self.scalar(s, style, ctx);
    }

    /// libyaml's `select_scalar_style` and `process_scalar`.
    fn scalar(&mut self, s: &str, requested: Style, ctx: Context) {
        let a = analyze(s);
        let simple_key = ctx == Context::SimpleKey;
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
        // Simple keys must stay on one line.
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, allow_breaks),
            Style::Single => self.single(s, allow_breaks),
            Style::Double => self.double(s, allow_breaks),
            Style::Literal => self.literal(s),
        }
        self.pop_indent();
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
                // Plain scalars never hold line breaks (the analysis forbids it).
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
                // A `\n` inside single quotes is folded on reading, so it is written twice.
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
                let short = match c {
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
                match short {
                    Some(e) => self.put(e),
                    None => {
                        let v = u32::from(c);
                        let (letter, digits) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        self.put_str(&format!("{v:0digits$X}"));
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
                    // A second space would be eaten by the fold; escape it.
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
        // Leading space or break: the reader could not guess the indentation.
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        // Chomping: strip without a final break, keep with two or more, clip with exactly one.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Node {
        Node::Str(text.to_owned())
    }

    fn map(entries: Vec<(&str, Node)>) -> Node {
        Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }

    #[test]
    fn root_scalars_and_empty_collections() {
        // ESO's toYaml goldens (tools/gotemplate-oracle), plus the final newline toYaml trims.
        for (node, expected) in [
            (s("hello"), "hello\n"),
            (s("a\nb"), "|-\n  a\n  b\n"),
            (s("a\n\n"), "|+\n  a\n\n"),
            (s("\n"), "|2+\n\n"),
            (s(""), "\"\"\n"),
            (Node::Null, "null\n"),
            (Node::Bool(true), "true\n"),
            (Node::Number("42".into()), "42\n"),
            (Node::Seq(vec![]), "[]\n"),
            (Node::Map(vec![]), "{}\n"),
        ] {
            assert_eq!(marshal(&node), expected, "{node:?}");
        }
    }

    #[test]
    fn nested_shapes_and_key_order() {
        let node = map(vec![
            ("z", Node::Null),
            (
                "a",
                map(vec![
                    ("e", Node::Map(vec![])),
                    (
                        "b",
                        Node::Seq(vec![
                            map(vec![
                                ("d", Node::Seq(vec![])),
                                ("c", Node::Number("1".into())),
                            ]),
                            s("x"),
                            Node::Seq(vec![s("y"), s("z")]),
                        ]),
                    ),
                ]),
            ),
        ]);
        assert_eq!(
            marshal(&node),
            "a:\n  b:\n  - c: 1\n    d: []\n  - x\n  - - \"y\"\n    - z\n  e: {}\nz: null\n"
        );
    }

    #[test]
    fn explicit_keys_with_collection_values() {
        // The `m` part of hush-sealing's golden test (sigs.k8s.io/yaml `JSONToYAML`, go-yaml v2).
        let (q, r, t) = ("q".repeat(130), "r".repeat(130), "t".repeat(130));
        let node = map(vec![(
            "m",
            map(vec![
                (&q, map(vec![("n", s("x")), ("o", s("y"))])),
                (&r, Node::Seq(vec![s("a"), s("b")])),
                (&t, Node::Seq(vec![])),
            ]),
        )]);
        assert_eq!(
            marshal(&node),
            format!(
                "m:\n  ? {q}\n  : \"n\": x\n    o: \"y\"\n  ? {r}\n  : - a\n    - b\n  ? {t}\n  : []\n"
            )
        );
    }

    #[test]
    fn a_key_of_128_bytes_is_still_simple() {
        let key = "k".repeat(128);
        assert_eq!(marshal(&map(vec![(&key, s("v"))])), format!("{key}: v\n"));
        // Any line break makes it explicit (CR is not printable: double quotes).
        assert_eq!(marshal(&map(vec![("a\rb", s("v"))])), "? \"a\\rb\"\n: v\n");
    }
}
