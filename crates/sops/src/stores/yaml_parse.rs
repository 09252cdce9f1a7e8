//! A YAML reader for the subset sops round-trips, resolving scalars as go-yaml v3 does and
//! keeping comments as tree items where sops' YAML store puts them.
//!
//! Supported: block maps and sequences (incl. compact `- k: v`, `- - a`, indentless sequences
//! as map values), flow collections, plain/single/double-quoted scalars (multi-line folding),
//! literal and folded block scalars with chomping and indentation indicators, anchors and
//! aliases (expanded), tags (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!binary`,
//! `!!timestamp`; others ignored), documents (`---`, `...`, directives).
//! Comments: full-line comments become [`Item::Comment`]s of the map (or [`Value::Comment`]s of
//! the list) they are written in; a comment after a scalar map value on the same line is an
//! [`Item::InlineComment`] before that entry (written back inline, as sops 3.13 does); other
//! same-line comments are placed before their entry or item (sops 3.11's behaviour).

use std::collections::HashMap;

use base64::Engine as _;
use hush_goyaml::alias::{AliasBudget, Size};

use crate::tree::{Branch, Item, Value};
use crate::{Error, Result};

const MAX_DEPTH: usize = 256;

/// Parses a YAML stream into documents. Each document must be a mapping (or empty).
pub fn parse(src: &str) -> Result<Vec<Branch>> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        pos: 0,
        anchors: HashMap::new(),
        pending: Vec::new(),
        depth: 0,
        budget: AliasBudget::new(),
        nodes_read: 0,
        read_mark: (0, 0),
    };
    p.stream()
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    /// Anchored values with their sizes: what an alias to each will copy.
    anchors: HashMap<String, (Value, Size)>,
    /// Comment lines seen but not yet placed: (column, text after `#`).
    pending: Vec<(usize, String)>,
    depth: usize,
    /// Alias expansion of the current document (`hush_goyaml::alias`).
    budget: AliasBudget,
    /// Nodes parsed from the text so far, and (text position, nodes) already counted in
    /// `budget`: what the document itself holds, against which aliases are weighed.
    nodes_read: u64,
    read_mark: (usize, u64),
}

enum Scalar {
    Plain(String),
    Quoted(String),
}

struct Props {
    tag: Option<String>,
    anchor: Option<String>,
}

impl<'a> Parser<'a> {
    // Positions are byte offsets that an error path may leave inside a UTF-8 character, so
    // line and column are counted on bytes, never by slicing `src`.
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::parse("YAML", super::line_at(self.s, self.pos), msg)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at(&self, off: usize) -> Option<u8> {
        self.s.get(self.pos + off).copied()
    }

    fn col(&self) -> usize {
        self.col_at(self.pos)
    }

    fn is_blank_at(&self, off: usize) -> bool {
        matches!(self.at(off), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn rest_of_line(&mut self) -> &'a str {
        let start = self.pos;
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.pos += 1;
        }
        let s = &self.src[start..self.pos];
        s.strip_suffix('\r').unwrap_or(s)
    }

    /// After a value: spaces, an optional comment, then end of line. Returns the comment.
    fn end_of_line(&mut self) -> Result<Option<String>> {
        self.skip_spaces();
        let comment = if self.peek() == Some(b'#') {
            self.pos += 1;
            Some(self.rest_of_line().to_owned())
        } else {
            None
        };
        match self.peek() {
            None => Ok(comment),
            Some(b'\n') => {
                self.pos += 1;
                Ok(comment)
            }
            Some(b'\r') if self.at(1) == Some(b'\n') => {
                self.pos += 2;
                Ok(comment)
            }
            Some(_) => Err(self.err("unexpected content after a value")),
        }
    }

    /// Skips blank lines and comment lines (collected into `pending`); stops at the first
    /// content byte. Returns false at the end of input or at a document marker.
    fn skip_to_content(&mut self) -> bool {
        loop {
            let line_start = self.pos;
            self.skip_spaces();
            match self.peek() {
                None => return false,
                Some(b'\n') => self.pos += 1,
                Some(b'\r') if self.at(1) == Some(b'\n') => self.pos += 2,
                Some(b'#') => {
                    let col = self.col();
                    self.pos += 1;
                    let text = self.rest_of_line().to_owned();
                    self.pending.push((col, text));
                }
                Some(_) => {
                    if self.pos == line_start && self.is_doc_marker() {
                        return false;
                    }
                    return true;
                }
            }
        }
    }

    fn is_doc_marker(&self) -> bool {
        let s = &self.s[self.pos..];
        (s.starts_with(b"---") || s.starts_with(b"...")) && self.is_blank_at(3)
    }

    fn take_pending(&mut self, min_col: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (c, t) in self.pending.drain(..) {
            if c >= min_col {
                out.push(t);
            } else {
                keep.push((c, t));
            }
        }
        // Comments before a less-indented one belong to the outer scope as well.
        if let Some(first_keep) = keep.first().map(|(c, _)| *c) {
            let _ = first_keep;
        }
        self.pending = keep;
        out
    }

    fn stream(&mut self) -> Result<Vec<Branch>> {
        let mut docs = Vec::new();
        let mut explicit = false;
        loop {
            // Directives and document markers.
            let has_content = self.skip_to_content();
            if !has_content {
                if self.peek().is_none() {
                    if explicit || !self.pending.is_empty() || docs.is_empty() {
                        let items: Branch = self
                            .pending
                            .drain(..)
                            .map(|(_, t)| Item::Comment(t))
                            .collect();
                        if explicit || !items.is_empty() {
                            docs.push(items);
                        }
                    }
                    break;
                }
                // A document marker.
                let marker = self.s[self.pos];
                self.pos += 3;
                if marker == b'.' {
                    if explicit || !self.pending.is_empty() {
                        docs.push(
                            self.pending
                                .drain(..)
                                .map(|(_, t)| Item::Comment(t))
                                .collect(),
                        );
                    }
                    explicit = false;
                    self.end_of_line()?;
                    continue;
                }
                // `---`: flush a previous explicit empty document.
                if explicit {
                    docs.push(
                        self.pending
                            .drain(..)
                            .map(|(_, t)| Item::Comment(t))
                            .collect(),
                    );
                }
                explicit = true;
                self.skip_spaces();
                if !matches!(self.peek(), None | Some(b'\n' | b'#' | b'\r')) {
                    return Err(self.err("content on the `---` line is not supported; start the document on the next line"));
                }
                if let Some(c) = self.end_of_line()? {
                    self.pending.push((0, c));
                }
                continue;
            }
            if self.peek() == Some(b'%') && self.col() == 0 {
                self.rest_of_line();
                continue;
            }
            // go-yaml weighs aliases per document.
            self.budget = AliasBudget::new();
            self.read_mark = (self.pos, self.nodes_read);
            let value = self.block_node(0, None)?;
            let mut branch = match value {
                Value::Map(items) => items,
                Value::Null => Vec::new(),
                Value::List(_) => {
                    return Err(Error::Unsupported(
                        "YAML documents that are sequences are not supported: the top level must be a mapping".into(),
                    ));
                }
                _ => {
                    return Err(Error::Unsupported(
                        "YAML documents that are values are not supported: the top level must be a mapping".into(),
                    ));
                }
            };
            let has_more = self.skip_to_content();
            if has_more {
                return Err(self.err(
                    "unexpected content after the document's top-level mapping (bad indentation?)",
                ));
            }
            branch.extend(self.pending.drain(..).map(|(_, t)| Item::Comment(t)));
            docs.push(branch);
            explicit = false;
            if self.peek().is_none() {
                break;
            }
        }
        Ok(docs)
    }

    fn props(&mut self) -> Result<Props> {
        let mut props = Props {
            tag: None,
            anchor: None,
        };
        loop {
            match self.peek() {
                Some(b'&') => {
                    self.pos += 1;
                    props.anchor = Some(self.word()?);
                }
                Some(b'!') => {
                    let start = self.pos;
                    while !self.is_blank_at(0) {
                        self.pos += 1;
                    }
                    props.tag = Some(self.src[start..self.pos].to_owned());
                }
                _ => return Ok(props),
            }
            self.skip_spaces();
        }
    }

    fn word(&mut self) -> Result<String> {
        let start = self.pos;
        while !self.is_blank_at(0) && !matches!(self.peek(), Some(b',' | b'[' | b']' | b'{' | b'}'))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("empty anchor or alias name"));
        }
        Ok(self.src[start..self.pos].to_owned())
    }

    fn enter(&mut self) -> Result<()> {
        self.nodes_read += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }

    /// The value of alias `name`, charged to the document's alias budget before it is copied.
    fn alias(&mut self, name: &str) -> Result<Value> {
        let (bytes, nodes) = self.read_mark;
        self.budget.read(Size {
            nodes: self.nodes_read - nodes,
            bytes: (self.pos - bytes) as u64,
            depth: 0,
        });
        self.read_mark = (self.pos, self.nodes_read);
        let Some((_, size)) = self.anchors.get(name) else {
            return Err(self.err(format!("unknown anchor {name:?}")));
        };
        let size = *size;
        if let Err(e) = self.budget.expand(size) {
            return Err(self.err(format!("alias {name:?}: {e}")));
        }
        if self.depth + size.depth > MAX_DEPTH {
            return Err(self.err(format!("alias {name:?} nests too deep")));
        }
        Ok(self.anchors[name].0.clone())
    }

    fn anchor(&mut self, name: String, v: &Value) {
        self.anchors.insert(name, (v.clone(), tree_size(v)));
    }

    /// A block node starting at the current content byte, whose lines are at column ≥
    /// `min_col`. `parent` is the indentation of the enclosing block (for block scalars).
    fn block_node(&mut self, min_col: usize, parent: Option<usize>) -> Result<Value> {
        self.enter()?;
        let r = self.block_node_inner(min_col, parent);
        self.depth -= 1;
        r
    }

    fn block_node_inner(&mut self, min_col: usize, parent: Option<usize>) -> Result<Value> {
        let col = self.col();
        if col < min_col {
            return Ok(Value::Null);
        }
        let props_start = self.pos;
        let props = self.props()?;
        if props.anchor.is_some() || props.tag.is_some() {
            // Properties alone on a line: the node follows on the next lines.
            if matches!(self.peek(), None | Some(b'\n' | b'#' | b'\r')) {
                if let Some(c) = self.end_of_line()? {
                    self.pending.push((col, c));
                }
                let v = if self.skip_to_content() && self.col() >= min_col {
                    let c = self.col();
                    self.block_node(c, parent)?
                } else {
                    Value::Null
                };
                return self.finish_props(v, props);
            }
        }
        let v = match self.peek() {
            Some(b'-') if self.is_blank_at(1) => self.block_seq(self.col())?,
            Some(b'*') => {
                let save = self.pos;
                self.pos += 1;
                let name = self.word()?;
                self.skip_spaces();
                if self.peek() == Some(b':') && self.is_blank_at(1) {
                    self.pos = save;
                    return Err(self.err("aliases as mapping keys are not supported"));
                }
                self.pos = save + 1 + name.len();
                self.alias(&name)?
            }
            Some(b'|' | b'>') => {
                let indent = parent.unwrap_or(0);
                let s = self.block_scalar(indent)?;
                return self.finish_props(Value::Str(s), props);
            }
            Some(b'[' | b'{') => {
                let v = self.flow_node()?;
                self.skip_spaces();
                if self.peek() == Some(b':') && self.is_blank_at(1) {
                    return Err(Error::Unsupported(
                        "only string keys are supported (found a flow collection as a key)".into(),
                    ));
                }
                v
            }
            _ => {
                let start = self.pos;
                let key_col = self.col();
                let (scalar, is_key) = self.block_scalar_or_key(key_col)?;
                if is_key {
                    if props.anchor.is_some() || props.tag.is_some() {
                        // Properties on the line of an implicit key are the key's, and the
                        // mapping starts where they do (libyaml saves the simple key at the
                        // properties): `!!merge <<: x` then `b: y` below it is one mapping.
                        self.pos = props_start;
                        return self.block_map(col);
                    }
                    self.pos = start;
                    let v = self.block_map(key_col)?;
                    return self.finish_props(v, props);
                }
                let v = match scalar {
                    Scalar::Quoted(s) => Value::Str(s),
                    Scalar::Plain(s) => {
                        resolve_plain(&s, props.tag.as_deref()).map_err(|m| self.err(m))?
                    }
                };
                let binary_only = Props {
                    tag: props.tag.filter(|t| t == "!!binary"),
                    anchor: props.anchor,
                };
                return self.finish_props(v, binary_only);
            }
        };
        self.finish_props(v, props)
    }

    fn finish_props(&mut self, v: Value, props: Props) -> Result<Value> {
        let v = match (props.tag.as_deref(), v) {
            (Some("!!binary"), Value::Str(s)) => {
                let clean: String = s.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(clean)
                    .map_err(|_| self.err("invalid !!binary value"))?;
                match String::from_utf8(bytes) {
                    Ok(s) => Value::Str(s),
                    Err(e) => Value::Bytes(e.into_bytes()),
                }
            }
            (Some(tag), Value::Str(s)) if tag != "!!str" && tag != "!" => {
                resolve_plain(&s, Some(tag)).map_err(|m| self.err(m))?
            }
            (_, v) => v,
        };
        if let Some(a) = props.anchor {
            self.anchor(a, &v);
        }
        Ok(v)
    }

    /// Reads a scalar in block context; tells whether it is followed by `: ` (a mapping key).
    fn block_scalar_or_key(&mut self, col: usize) -> Result<(Scalar, bool)> {
        let scalar = match self.peek() {
            Some(b'"') => Scalar::Quoted(self.double_quoted()?),
            Some(b'\'') => Scalar::Quoted(self.single_quoted()?),
            _ => {
                // Plain: up to `: `, ` #` or end of line; then continuation lines.
                let start = self.pos;
                loop {
                    match self.peek() {
                        None | Some(b'\n') => break,
                        Some(b'\r') if self.at(1) == Some(b'\n') => break,
                        Some(b':') if self.is_blank_at(1) => break,
                        Some(b'#')
                            if self.pos > start && matches!(self.s[self.pos - 1], b' ' | b'\t') =>
                        {
                            break;
                        }
                        _ => self.pos += 1,
                    }
                }
                let first = self.src[start..self.pos]
                    .trim_end_matches([' ', '\t'])
                    .to_owned();
                if self.peek() == Some(b':') {
                    return Ok((Scalar::Plain(first), true));
                }
                let s = self.plain_continuation(first, col)?;
                return Ok((Scalar::Plain(s), false));
            }
        };
        let save = self.pos;
        self.skip_spaces();
        if self.peek() == Some(b':') && self.is_blank_at(1) {
            return Ok((scalar, true));
        }
        self.pos = save;
        Ok((scalar, false))
    }

    /// Folds continuation lines of a plain scalar (lines indented more than `col`… or at least
    /// more than the enclosing block).
    fn plain_continuation(&mut self, mut s: String, col: usize) -> Result<String> {
        loop {
            let save = self.pos;
            // Move past the line break.
            match self.peek() {
                Some(b'\n') => self.pos += 1,
                Some(b'\r') if self.at(1) == Some(b'\n') => self.pos += 2,
                _ => return Ok(s),
            }
            let mut blank_lines = 0;
            loop {
                let ls = self.pos;
                self.skip_spaces();
                match self.peek() {
                    Some(b'\n') => {
                        self.pos += 1;
                        blank_lines += 1;
                    }
                    Some(b'\r') if self.at(1) == Some(b'\n') => {
                        self.pos += 2;
                        blank_lines += 1;
                    }
                    _ => {
                        let c = self.pos - ls;
                        let ok =
                            self.peek().is_some() && c >= col.max(1) && self.peek() != Some(b'#');
                        if !ok || self.line_is_key_or_item() {
                            self.pos = save;
                            return Ok(s);
                        }
                        break;
                    }
                }
            }
            let start = self.pos;
            loop {
                match self.peek() {
                    None | Some(b'\n') => break,
                    Some(b'\r') if self.at(1) == Some(b'\n') => break,
                    Some(b':') if self.is_blank_at(1) => {
                        return Err(self.err("mapping values are not allowed in this context"));
                    }
                    Some(b'#') if matches!(self.s[self.pos - 1], b' ' | b'\t') => break,
                    _ => self.pos += 1,
                }
            }
            let part = self.src[start..self.pos].trim_end_matches([' ', '\t']);
            if blank_lines == 0 {
                s.push(' ');
            } else {
                for _ in 0..blank_lines {
                    s.push('\n');
                }
            }
            s.push_str(part);
        }
    }

    fn line_is_key_or_item(&self) -> bool {
        (self.peek() == Some(b'-') && self.is_blank_at(1)) || {
            // A `key: ` on this line ends the plain scalar (it is the next entry).
            let rest = &self.s[self.pos..];
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let line = &rest[..end];
            line.windows(2)
                .any(|w| w[0] == b':' && (w[1] == b' ' || w[1] == b'\t'))
                || line.ends_with(b":")
        }
    }

    fn block_map(&mut self, indent: usize) -> Result<Value> {
        let mut items: Vec<Item> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        loop {
            // Comments before this entry belong to this map.
            for c in self.take_pending(0) {
                items.push(Item::Comment(c));
            }
            let key_start = self.pos;
            let (key, is_key) = match self.peek() {
                Some(b'?') if self.is_blank_at(1) => {
                    return Err(self.err("complex mapping keys (`? `) are not supported"));
                }
                Some(b'[' | b'{') => {
                    return Err(Error::Unsupported(
                        "only string keys are supported (found a flow collection as a key)".into(),
                    ));
                }
                Some(b'-') if self.is_blank_at(1) => {
                    return Err(self.err(
                        "a sequence item where a mapping key was expected (bad indentation?)",
                    ));
                }
                _ => {
                    let props = self.props()?;
                    let (s, k) = self.block_scalar_or_key(indent)?;
                    let key = match s {
                        Scalar::Quoted(s) => s,
                        Scalar::Plain(s) => match resolve_plain(&s, props.tag.as_deref())
                            .map_err(|m| self.err(m))?
                        {
                            Value::Str(s) => s,
                            _ if props.tag.as_deref() == Some("!!str") => s,
                            _ => {
                                self.pos = key_start;
                                return Err(Error::Unsupported(format!(
                                    "only string keys are supported; the key at line {} is not a string (quote it)",
                                    self.err("").line()
                                )));
                            }
                        },
                    };
                    if let Some(anchor) = props.anchor {
                        // An anchored key: an alias to it reads as the key's text.
                        self.anchor(anchor, &Value::Str(key.clone()));
                    }
                    (key, k)
                }
            };
            if !is_key {
                self.pos = key_start;
                return Err(self.err("expected a `key: value` mapping entry"));
            }
            self.skip_spaces();
            self.pos += 1; // ':'
            if !seen.insert(key.clone()) {
                return Err(self.err(format!("mapping key {key:?} already defined")));
            }
            let value = self.map_value(indent, &mut items)?;
            items.push(Item::Entry(key, value));
            // Next entry?
            if !self.skip_to_content() {
                break;
            }
            let col = self.col();
            if col < indent {
                break;
            }
            if col > indent {
                return Err(self.err("bad indentation of a mapping entry"));
            }
            if self.peek() == Some(b'-') && self.is_blank_at(1) {
                break;
            }
        }
        // Trailing comments at or beyond this map's indentation stay here.
        let next_col = if self.peek().is_some() && !self.is_doc_marker_here() {
            self.col()
        } else {
            0
        };
        if next_col < indent {
            for c in self.take_pending(indent) {
                items.push(Item::Comment(c));
            }
        }
        Ok(Value::Map(items))
    }

    fn is_doc_marker_here(&self) -> bool {
        self.col() == 0 && self.is_doc_marker()
    }

    /// The value after `key:`; a same-line comment is placed before the entry (inline after a
    /// scalar).
    fn map_value(&mut self, indent: usize, items: &mut Vec<Item>) -> Result<Value> {
        self.skip_spaces();
        let props = self.props()?;
        match self.peek() {
            None | Some(b'\n' | b'#' | b'\r') => {
                if let Some(c) = self.end_of_line()? {
                    items.push(Item::Comment(c));
                }
                let v = if self.skip_to_content() {
                    let col = self.col();
                    if col > indent {
                        self.block_node(col, Some(indent))?
                    } else if col == indent && self.peek() == Some(b'-') && self.is_blank_at(1) {
                        self.enter()?;
                        let v = self.block_seq(col);
                        self.depth -= 1;
                        v?
                    } else {
                        Value::Null
                    }
                } else {
                    Value::Null
                };
                self.finish_props(v, props)
            }
            Some(b'|' | b'>') => {
                let s = self.block_scalar(indent)?;
                self.finish_props(Value::Str(s), props)
            }
            Some(b'[' | b'{') => {
                let v = self.flow_node()?;
                if let Some(c) = self.end_of_line()? {
                    items.push(Item::Comment(c));
                }
                self.finish_props(v, props)
            }
            Some(b'*') => {
                self.pos += 1;
                let name = self.word()?;
                let v = self.alias(&name)?;
                if let Some(c) = self.end_of_line()? {
                    items.push(Item::Comment(c));
                }
                Ok(v)
            }
            Some(b'-') if self.is_blank_at(1) => {
                Err(self.err("a block sequence cannot start on the same line as its key"))
            }
            _ => {
                let (s, is_key) = self.block_scalar_or_key(indent + 1)?;
                if is_key {
                    return Err(self.err("mapping values are not allowed in this context"));
                }
                let v = match s {
                    Scalar::Quoted(s) => Value::Str(s),
                    Scalar::Plain(s) => {
                        resolve_plain(&s, props.tag.as_deref()).map_err(|m| self.err(m))?
                    }
                };
                if let Some(c) = self.end_of_line()? {
                    items.push(Item::InlineComment(c));
                }
                self.finish_props(
                    v,
                    Props {
                        tag: props.tag.filter(|t| t == "!!binary"),
                        anchor: props.anchor,
                    },
                )
            }
        }
    }

    fn block_seq(&mut self, indent: usize) -> Result<Value> {
        let mut items: Vec<Value> = Vec::new();
        loop {
            for c in self.take_pending(0) {
                items.push(Value::Comment(c));
            }
            // At '-'.
            self.pos += 1;
            self.skip_spaces();
            let v = match self.peek() {
                None | Some(b'\n' | b'#' | b'\r') => {
                    if let Some(c) = self.end_of_line()? {
                        items.push(Value::Comment(c));
                    }
                    if self.skip_to_content() && self.col() > indent {
                        let col = self.col();
                        self.block_node(col, Some(indent))?
                    } else {
                        Value::Null
                    }
                }
                Some(b'|' | b'>') => Value::Str(self.block_scalar(indent)?),
                _ => {
                    let col = self.col();
                    let mut trailing = Vec::new();
                    let v = self.block_node(col, Some(indent))?;
                    if (v.is_leaf() || is_flow_end(self))
                        && let Some(c) = self.end_of_line()?
                    {
                        trailing.push(Value::Comment(c));
                    }
                    // A same-line comment goes before the item.
                    items.extend(trailing);
                    v
                }
            };
            items.push(v);
            if !self.skip_to_content() {
                break;
            }
            let col = self.col();
            if col < indent {
                break;
            }
            if col > indent || !(self.peek() == Some(b'-') && self.is_blank_at(1)) {
                if col == indent {
                    // A mapping key at the sequence's column ends an indentless sequence.
                    break;
                }
                return Err(self.err("bad indentation of a sequence item"));
            }
        }
        let next_col = if self.peek().is_some() && !self.is_doc_marker_here() {
            self.col()
        } else {
            0
        };
        if next_col < indent {
            for c in self.take_pending(indent) {
                items.push(Value::Comment(c));
            }
        }
        Ok(Value::List(items))
    }

    /// A literal (`|`) or folded (`>`) block scalar; `indent` is the enclosing block's.
    fn block_scalar(&mut self, indent: usize) -> Result<String> {
        let literal = self.peek() == Some(b'|');
        self.pos += 1;
        let mut chomp = 0i8; // 0 clip, -1 strip, 1 keep
        let mut explicit: Option<usize> = None;
        for _ in 0..2 {
            match self.peek() {
                Some(b'-') => {
                    chomp = -1;
                    self.pos += 1;
                }
                Some(b'+') => {
                    chomp = 1;
                    self.pos += 1;
                }
                Some(d @ b'1'..=b'9') => {
                    explicit = Some(usize::from(d - b'0'));
                    self.pos += 1;
                }
                _ => {}
            }
        }
        // The header's comment is dropped (go-yaml keeps it as a line comment of the key).
        if let Some(c) = self.end_of_line()? {
            self.pending.push((indent, c));
        }
        let (lines, ci) = self.block_scalar_lines(indent, explicit.map(|e| indent + e));
        Ok(block_scalar_value(&lines, ci, literal, chomp))
    }

    /// The lines of a block scalar's body, raw, and their content indentation (detected from the
    /// first non-blank line unless the header gave it); stops before the first line indented
    /// less, or a document marker.
    fn block_scalar_lines(
        &mut self,
        indent: usize,
        mut content_indent: Option<usize>,
    ) -> (Vec<&'a str>, usize) {
        let mut lines: Vec<&'a str> = Vec::new();
        let mut auto_max_blank = 0usize;
        loop {
            if self.peek().is_none() {
                break;
            }
            let ls = self.pos;
            let mut n = 0;
            while self.at(n) == Some(b' ') {
                n += 1;
            }
            let after = self.at(n);
            let is_blank = matches!(after, None | Some(b'\n') | Some(b'\r'));
            if is_blank {
                if content_indent.is_none() {
                    auto_max_blank = auto_max_blank.max(n);
                }
                self.pos = ls + n;
                let _ = self.rest_of_line();
                lines.push(&self.src[ls..self.pos]);
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                continue;
            }
            let ci = match content_indent {
                Some(ci) => ci,
                None => {
                    let ci = n.max(auto_max_blank);
                    if ci <= indent {
                        // No content: empty scalar.
                        self.pos = ls;
                        break;
                    }
                    content_indent = Some(ci);
                    ci
                }
            };
            if n < ci || (ls > 0 && self.col_at(ls) == 0 && n == 0 && self.doc_marker_at(ls)) {
                self.pos = ls;
                break;
            }
            self.pos = ls;
            let _ = self.rest_of_line();
            lines.push(&self.src[ls..self.pos]);
            if self.peek() == Some(b'\n') {
                self.pos += 1;
            }
        }
        // Trailing blank lines that are not part of the scalar stay unconsumed logically; we
        // already consumed them, which only affects comment placement.
        (lines, content_indent.unwrap_or(indent + 1))
    }

    fn col_at(&self, pos: usize) -> usize {
        let pos = pos.min(self.s.len());
        let start = self.s[..pos]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        pos - start
    }

    fn doc_marker_at(&self, pos: usize) -> bool {
        let s = &self.s[pos..];
        (s.starts_with(b"---") || s.starts_with(b"..."))
            && matches!(s.get(3), None | Some(b' ' | b'\n' | b'\r' | b'\t'))
    }

    fn double_quoted(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated double-quoted string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.pos += 1;
                    let c = match e {
                        b'0' => '\0',
                        b'a' => '\x07',
                        b'b' => '\x08',
                        b't' | b'\t' => '\t',
                        b'n' => '\n',
                        b'v' => '\x0b',
                        b'f' => '\x0c',
                        b'r' => '\r',
                        b'e' => '\x1b',
                        b' ' => ' ',
                        b'"' => '"',
                        b'/' => '/',
                        b'\\' => '\\',
                        b'N' => '\u{85}',
                        b'_' => '\u{a0}',
                        b'L' => '\u{2028}',
                        b'P' => '\u{2029}',
                        b'x' | b'u' | b'U' => {
                            let n = match e {
                                b'x' => 2,
                                b'u' => 4,
                                _ => 8,
                            };
                            let hex = self
                                .src
                                .get(self.pos..self.pos + n)
                                .ok_or_else(|| self.err("truncated escape"))?;
                            let code = u32::from_str_radix(hex, 16)
                                .map_err(|_| self.err("invalid hex escape"))?;
                            self.pos += n;
                            char::from_u32(code)
                                .ok_or_else(|| self.err("invalid Unicode escape"))?
                        }
                        b'\n' | b'\r' => {
                            // Escaped line break: join without a space, skip indentation.
                            if e == b'\r' && self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                            self.skip_spaces();
                            continue;
                        }
                        _ => return Err(self.err("invalid escape in a double-quoted string")),
                    };
                    out.push(c);
                }
                b'\n' | b'\r' => {
                    self.fold_quoted_break(&mut out);
                }
                _ => {
                    let ch = self.src[self.pos..]
                        .chars()
                        .next()
                        .ok_or_else(|| self.err("invalid UTF-8"))?;
                    self.pos += ch.len_utf8();
                    out.push(ch);
                    self.skip_after_unicode_break(ch);
                }
            }
        }
    }

    /// A line break inside a quoted scalar: trailing spaces dropped, one break folds to a
    /// space, each further empty line to a newline.
    fn fold_quoted_break(&mut self, out: &mut String) {
        while out.ends_with([' ', '\t']) {
            out.pop();
        }
        let mut breaks = 0;
        loop {
            match self.peek() {
                // A lone CR is a line break too (YAML 1.2 §5.4).
                Some(b'\r') => {
                    self.pos += if self.at(1) == Some(b'\n') { 2 } else { 1 };
                    breaks += 1;
                }
                Some(b'\n') => {
                    self.pos += 1;
                    breaks += 1;
                }
                Some(b' ' | b'\t') => self.pos += 1,
                _ => break,
            }
        }
        if breaks == 1 {
            out.push(' ');
        } else {
            for _ in 1..breaks {
                out.push('\n');
            }
        }
    }

    /// go-yaml (YAML 1.1) treats NEL, LS and PS as line breaks: kept as written, and the
    /// indentation after them is not content.
    fn skip_after_unicode_break(&mut self, ch: char) {
        if matches!(ch, '\u{85}' | '\u{2028}' | '\u{2029}') {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated single-quoted string"));
            };
            match b {
                b'\'' if self.at(1) == Some(b'\'') => {
                    out.push('\'');
                    self.pos += 2;
                }
                b'\'' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\n' | b'\r' => self.fold_quoted_break(&mut out),
                _ => {
                    let ch = self.src[self.pos..]
                        .chars()
                        .next()
                        .ok_or_else(|| self.err("invalid UTF-8"))?;
                    self.pos += ch.len_utf8();
                    out.push(ch);
                    self.skip_after_unicode_break(ch);
                }
            }
        }
    }

    fn flow_ws(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'#')
                    if self.pos == 0 || matches!(self.s[self.pos - 1], b' ' | b'\t' | b'\n') =>
                {
                    let _ = self.rest_of_line();
                }
                _ => return,
            }
        }
    }

    fn flow_node(&mut self) -> Result<Value> {
        self.enter()?;
        let r = self.flow_node_inner();
        self.depth -= 1;
        r
    }

    fn flow_node_inner(&mut self) -> Result<Value> {
        self.flow_ws();
        let props = self.props()?;
        self.flow_ws();
        let v = match self.peek() {
            Some(b'[') => self.flow_sequence()?,
            Some(b'{') => self.flow_mapping()?,
            Some(b'*') => {
                self.pos += 1;
                let name = self.word()?;
                self.alias(&name)?
            }
            None => return Err(self.err("unterminated flow collection")),
            _ => match self.flow_scalar()? {
                Scalar::Quoted(s) => Value::Str(s),
                Scalar::Plain(s) => {
                    resolve_plain(&s, props.tag.as_deref()).map_err(|m| self.err(m))?
                }
            },
        };
        self.finish_props(
            v,
            Props {
                tag: props.tag.filter(|t| t == "!!binary"),
                anchor: props.anchor,
            },
        )
    }

    /// `[a, b, …]`, from its `[`.
    fn flow_sequence(&mut self) -> Result<Value> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.flow_ws();
            if self.peek() == Some(b']') {
                self.pos += 1;
                break;
            }
            let v = self.flow_node()?;
            self.flow_ws();
            if self.peek() == Some(b':') {
                return Err(
                    self.err("single-pair mappings inside flow sequences are not supported")
                );
            }
            items.push(v);
            if self.flow_next(b']', "expected `,` or `]` in a flow sequence")? {
                break;
            }
        }
        Ok(Value::List(items))
    }

    /// `{k: v, …}`, from its `{`.
    fn flow_mapping(&mut self) -> Result<Value> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.flow_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.flow_key()?;
            self.flow_ws();
            let v = if self.peek() == Some(b':') {
                self.pos += 1;
                self.flow_ws();
                if matches!(self.peek(), Some(b',' | b'}')) {
                    Value::Null
                } else {
                    self.flow_node()?
                }
            } else {
                Value::Null
            };
            if items
                .iter()
                .any(|i| matches!(i, Item::Entry(k, _) if *k == key))
            {
                return Err(self.err(format!("mapping key {key:?} already defined")));
            }
            items.push(Item::Entry(key, v));
            if self.flow_next(b'}', "expected `,` or `}` in a flow mapping")? {
                break;
            }
        }
        Ok(Value::Map(items))
    }

    /// A key in a flow mapping: quoted, or plain resolving to a string.
    fn flow_key(&mut self) -> Result<String> {
        match self.flow_scalar()? {
            Scalar::Quoted(s) => Ok(s),
            Scalar::Plain(s) => match resolve_plain(&s, None).map_err(|m| self.err(m))? {
                Value::Str(s) => Ok(s),
                _ => Err(Error::Unsupported(
                    "only string keys are supported (quote the key)".into(),
                )),
            },
        }
    }

    /// After a flow collection's entry: `false` after a `,`, `true` after `close`.
    fn flow_next(&mut self, close: u8, expected: &str) -> Result<bool> {
        self.flow_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.err(expected)),
        }
    }

    fn flow_scalar(&mut self) -> Result<Scalar> {
        match self.peek() {
            Some(b'"') => Ok(Scalar::Quoted(self.double_quoted()?)),
            Some(b'\'') => Ok(Scalar::Quoted(self.single_quoted()?)),
            _ => {
                let start = self.pos;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None | Some(b',' | b'[' | b']' | b'{' | b'}') => break,
                        Some(b':')
                            if self.is_blank_at(1)
                                || matches!(self.at(1), Some(b',' | b']' | b'}')) =>
                        {
                            break;
                        }
                        Some(b'#')
                            if self.pos > start && matches!(self.s[self.pos - 1], b' ' | b'\t') =>
                        {
                            break;
                        }
                        // A line break in a flow plain scalar folds to a space (below).
                        _ => self.pos += 1,
                    }
                }
                let raw = &self.src[start..self.pos];
                for (i, line) in raw.lines().enumerate() {
                    let t = line.trim();
                    if t.is_empty() {
                        continue;
                    }
                    if i > 0 && !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(t);
                }
                if out.is_empty() {
                    return Err(self.err("expected a value in a flow collection"));
                }
                Ok(Scalar::Plain(out))
            }
        }
    }
}

/// A block scalar's value from its raw `lines` (content indented by `ci`): kept as written
/// (`literal`) or folded, then chomped (`chomp`: 0 clip, -1 strip, 1 keep).
fn block_scalar_value(lines: &[&str], ci: usize, literal: bool, chomp: i8) -> String {
    let body: Vec<String> = lines
        .iter()
        .map(|l| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if l.len() >= ci {
                l[ci..].to_owned()
            } else {
                String::new()
            }
        })
        .collect();
    // Split trailing empty lines from content.
    let last_content = body.iter().rposition(|l| !l.is_empty());
    let (content, trailing) = match last_content {
        Some(i) => (&body[..=i], body.len() - i - 1),
        None => (&body[..0], body.len()),
    };
    let mut out = String::new();
    if literal {
        for (i, l) in content.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(l);
        }
    } else {
        // Folding: a line break between two non-empty, non-indented lines becomes a space.
        let mut prev_more = false;
        let mut prev_empty = true;
        let mut first = true;
        for l in content {
            let more = l.starts_with(' ') || l.starts_with('\t');
            if first {
                out.push_str(l);
                first = false;
                prev_more = more;
                prev_empty = l.is_empty();
                continue;
            }
            if l.is_empty() {
                out.push('\n');
                prev_empty = true;
                continue;
            }
            if prev_empty && !out.is_empty() && !prev_more && !more {
                // Blank lines already produced the breaks.
            } else if prev_more || more {
                out.push('\n');
            } else {
                out.push(' ');
            }
            out.push_str(l);
            prev_more = more;
            prev_empty = false;
        }
    }
    if !content.is_empty() {
        match chomp {
            -1 => {}
            0 => out.push('\n'),
            _ => {
                out.push('\n');
                for _ in 0..trailing {
                    out.push('\n');
                }
            }
        }
    } else if chomp == 1 {
        for _ in 0..trailing {
            out.push('\n');
        }
    }
    out
}

/// The size of a value for the alias budget (depth is bounded: nesting in the text and through
/// aliases is checked as the document is read).
fn tree_size(v: &Value) -> Size {
    match v {
        Value::Map(items) => items.iter().fold(Size::node(0), |acc, item| match item {
            Item::Entry(k, v) => acc.with_child(tree_size(v)).plus(Size::node(k.len())),
            Item::Comment(c) | Item::InlineComment(c) => acc.plus(Size::node(c.len())),
        }),
        Value::List(items) => items
            .iter()
            .fold(Size::node(0), |acc, x| acc.with_child(tree_size(x))),
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => Size::node(s.len()),
        Value::Bytes(b) => Size::node(b.len()),
        Value::Null | Value::Int(_) | Value::Float(_) | Value::Bool(_) => Size::node(8),
    }
}

fn is_flow_end(p: &Parser<'_>) -> bool {
    p.pos > 0 && matches!(p.s[p.pos - 1], b']' | b'}')
}

impl Error {
    fn line(&self) -> usize {
        match self {
            Error::Parse { line, .. } => *line,
            _ => 0,
        }
    }
}

/// go-yaml v3's resolution of a plain scalar (or a quoted one with an explicit tag).
pub(crate) fn resolve_plain(s: &str, tag: Option<&str>) -> Result<Value, String> {
    match tag {
        Some("!!str") => return Ok(Value::Str(s.to_owned())),
        Some("!!null") => return Ok(Value::Null),
        Some("!!bool") => {
            return match s {
                "true" | "True" | "TRUE" => Ok(Value::Bool(true)),
                "false" | "False" | "FALSE" => Ok(Value::Bool(false)),
                _ => Err(format!("cannot decode {:?} as a !!bool", "…")),
            };
        }
        Some("!!int") => {
            return match resolve_untagged(s) {
                v @ Value::Int(_) => Ok(v),
                _ => Err("cannot decode the value as an !!int".into()),
            };
        }
        Some("!!float") => {
            return match resolve_untagged(s) {
                Value::Int(i) => Ok(Value::Float(i as f64)),
                v @ Value::Float(_) => Ok(v),
                _ => Err("cannot decode the value as a !!float".into()),
            };
        }
        Some("!!timestamp") => {
            return hush_gocompat::time::parse_yaml_timestamp(s)
                .map(|t| Value::Time(t.nano()))
                .ok_or_else(|| "cannot decode the value as a !!timestamp".into());
        }
        Some("!!binary") => return Ok(Value::Str(s.to_owned())),
        _ => {}
    }
    if resolves_to_uint64(s) {
        // yaml.v3 gives these a uint64, and sops 3.11 then refuses the whole file ("Cannot walk
        // value, unknown type: uint64"); read as a float it would change on the round trip.
        return Err(
            "an integer above 9223372036854775807 (Go's uint64), which sops cannot \
                    store; quote it to keep it as a string"
                .into(),
        );
    }
    Ok(resolve_untagged(s))
}

/// Whether yaml.v3 resolves the untagged plain scalar `s` to a uint64: not an int64 under
/// `ParseInt(plain, 0, 64)` but one under `ParseUint(plain, 0, 64)`, `_` removed first.
fn resolves_to_uint64(s: &str) -> bool {
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    hush_gocompat::strconv::parse_int(&plain).is_none()
        && hush_gocompat::strconv::parse_uint(&plain).is_some()
}

fn resolve_untagged(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        if let Some(f) = parse_yaml_float(s) {
            return Value::Float(f);
        }
        return Value::Str(s.to_owned());
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Value::Str(s.to_owned());
    }
    if first.is_ascii_digit()
        && let Some(t) = hush_gocompat::time::parse_yaml_timestamp(s)
    {
        return Value::Time(t.nano());
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(i) = hush_gocompat::strconv::parse_int(&plain) {
        return Value::Int(i);
    }
    // Reached untagged only through `!!float` (resolve_plain refuses untagged uint64s).
    if let Some(u) = hush_gocompat::strconv::parse_uint(&plain) {
        return Value::Float(u as f64);
    }
    if let Some(f) = parse_yaml_float(&plain) {
        return Value::Float(f);
    }
    // yaml.v3's own `0b`/`0o` branches: ParseInt(digits, radix) for `0b…`/`0o…` (the digits may
    // carry a sign: `0b-101` is -5) and ParseInt("-" + digits) for `-0b…`/`-0o…` (`-0b-101` is
    // then no number); a leading `+` has no branch, so `+0b-101` stays a string.
    for (prefix, radix) in [("0b", 2), ("0o", 8)] {
        if let Some(d) = plain.strip_prefix(prefix)
            && let Ok(v) = i64::from_str_radix(d, radix)
        {
            return Value::Int(v);
        }
        if let Some(d) = plain.strip_prefix('-').and_then(|p| p.strip_prefix(prefix))
            && let Ok(v) = i64::from_str_radix(&format!("-{d}"), radix)
        {
            return Value::Int(v);
        }
    }
    Value::Str(s.to_owned())
}

/// go-yaml's float regex `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn parse_yaml_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == fs {
            return None;
        }
    } else if int_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values yaml.v3 reads as uint64 in every base Go's ParseUint takes are refused with the
    /// line, as sops 3.11 refuses them; the value itself is not in the message.
    #[test]
    fn uint64_values_are_refused_like_sops() {
        for v in [
            "18446744073709551615",
            "9223372036854775808",
            "0xFFFFFFFFFFFFFFFF",
            "0o1777777777777777777777",
            "1_8446744073709551615",
        ] {
            let err = parse(&format!("a: 1\nb: {v}\n")).err();
            let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
            assert!(
                text.contains("line 2") && text.contains("uint64"),
                "{v}: {err:?}"
            );
            assert!(!text.contains(v), "{v} in the error: {text}");
        }
        for v in [
            "9223372036854775807",
            "-9223372036854775808",
            "'18446744073709551615'",
        ] {
            assert!(parse(&format!("b: {v}\n")).is_ok(), "{v}");
        }
        let min = format!("-0b-1{}", "0".repeat(63));
        for (v, want) in [
            ("0b-101", Some(-5)),
            ("0o-17", Some(-15)),
            ("0b+101", Some(5)),
            ("-0b-101", None),
            ("+0b-101", None),
            (min.as_str(), None),
        ] {
            let got = match resolve_plain(v, None) {
                Ok(Value::Int(i)) => Some(i),
                Ok(Value::Str(_)) => None,
                other => panic!("{v}: {other:?}"),
            };
            assert_eq!(got, want, "{v}");
        }
        let tagged = parse("b: !!float 18446744073709551615\n");
        assert!(tagged.is_ok(), "{tagged:?}");
    }

    /// Inputs the fuzzer found: each must return (an error or a tree), never hang or panic.
    #[test]
    fn fuzz_regressions_terminate() {
        for input in ["'''\r", "\"a\rb\"", "'\r'", "a: '\r\r'"] {
            let _ = parse(input);
        }
    }

    /// Fuzz finding (sops_yaml, crash-ccfa9d25): an escape followed by a multi-byte character
    /// left the position inside that character and the error report sliced the text there.
    #[test]
    fn error_inside_a_multibyte_character_reports_its_line() {
        let err = parse("\n\"\\\u{3d9}0\"\u{7f}").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("line 2")),
            "{err:?}"
        );
    }

    /// Alias bombs: each alias is charged before its copy is made (go-yaml's ratio, in nodes and
    /// in bytes, and an absolute bound), so nine lines cannot expand to 10^9 nodes, nor 2000
    /// aliases of a 100 KB value to 200 MB.
    #[test]
    fn alias_bombs_are_refused() {
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
        let err = parse(&laughs).unwrap_err().to_string();
        assert!(
            err.contains("excessive aliasing") && err.contains("line"),
            "{err}"
        );

        let mut wide = format!("a: &a {}\nl:\n", "x".repeat(100_000));
        wide.push_str(&"  - *a\n".repeat(2_000));
        let err = parse(&wide).unwrap_err().to_string();
        assert!(
            err.contains("excessive aliasing") && err.contains("bytes"),
            "{err}"
        );

        // Block and flow aliases alike; a few aliases of a small value stay fine.
        let ok = "a: &a {k: v}\nb: *a\nc: [*a, *a]\n";
        assert_eq!(parse(ok).unwrap().len(), 1);
    }

    /// An alias copies its value's nesting: nesting through aliases is bounded like nesting in
    /// the text.
    #[test]
    fn nesting_through_aliases_is_bounded() {
        let mut text = format!("a0: &a0 {}x{}\n", "[".repeat(200), "]".repeat(200));
        for i in 1..40 {
            text.push_str(&format!(
                "a{i}: &a{i} {}*a{}{}\n",
                "[".repeat(200),
                i - 1,
                "]".repeat(200)
            ));
        }
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("too deep"), "{err}");
    }
}
