//! Lexer for Go `text/template` (`text/template/parse/lex.go`), item by item.

use crate::Pos;

/// What a lexed item is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    /// Left delimiter (trim markers are applied to the neighbouring text by the lexer).
    Left,
    Right,
    Space,
    Ident(String),
    Keyword(Keyword),
    Field(String),
    Variable(String),
    Str(String),
    Char(char),
    Number(String),
    Bool(bool),
    Nil,
    Dot,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) tok: Tok,
    pub(crate) pos: Pos,
}

/// A lexing failure: message and position. Messages never quote template data.
#[derive(Debug)]
pub(crate) struct LexError {
    pub(crate) msg: String,
    pub(crate) pos: Pos,
}

struct Lexer<'a> {
    src: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    items: Vec<Item>,
    paren_depth: usize,
    /// The position of the last emitted item (byte offset, line, byte offset of its line's
    /// start): items come in order, so each position is counted on from the last one instead of
    /// from the start of the text (which made lexing quadratic).
    mark: (usize, usize, usize),
}

fn line_col(src: &str, offset: usize) -> Pos {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    Pos { line, col }
}

const TRIM_MARKER: char = '-';

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Lexes `src` with the given delimiters.
pub(crate) fn lex(src: &str, left: &str, right: &str) -> Result<Vec<Item>, LexError> {
    let mut l = Lexer {
        src,
        left,
        right,
        pos: 0,
        items: Vec::new(),
        paren_depth: 0,
        mark: (0, 1, 0),
    };
    l.run()?;
    Ok(l.items)
}

impl<'a> Lexer<'a> {
    fn err<T>(&self, at: usize, msg: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            msg: msg.into(),
            pos: line_col(self.src, at),
        })
    }

    fn emit(&mut self, tok: Tok, at: usize) {
        let pos = self.pos_of(at);
        self.items.push(Item { tok, pos });
    }

    /// [`line_col`] counted on from the previous item.
    fn pos_of(&mut self, at: usize) -> Pos {
        let at = at.min(self.src.len());
        let (from, mut line, mut line_start) = self.mark;
        if at < from {
            return line_col(self.src, at);
        }
        for i in memchr::memchr_iter(b'\n', &self.src.as_bytes()[from..at]) {
            line += 1;
            line_start = from + i + 1;
        }
        self.mark = (at, line, line_start);
        Pos {
            line,
            col: self.src[line_start..at].len() + 1,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn run(&mut self) -> Result<(), LexError> {
        let mut trim_next_text = false;
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let next = self.rest().find(self.left).map(|i| self.pos + i);
            let end = next.unwrap_or(self.src.len());
            let mut text = &self.src[start..end];
            if trim_next_text {
                text = text.trim_start_matches(is_space);
            }
            let mut trim_before = false;
            if let Some(n) = next {
                let after = &self.src[n + self.left.len()..];
                if has_left_trim(after) {
                    trim_before = true;
                }
            }
            if trim_before {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                self.emit(Tok::Text(text.to_owned()), start);
            }
            let Some(n) = next else {
                self.emit(Tok::Eof, self.src.len());
                return Ok(());
            };
            self.pos = n + self.left.len();
            if trim_before {
                self.pos += 2;
            }
            trim_next_text = self.lex_action(n)?;
        }
    }

    /// Lexes from after the left delimiter (and trim marker) through the right delimiter. Returns
    /// whether the right delimiter trims the following text.
    fn lex_action(&mut self, left_at: usize) -> Result<bool, LexError> {
        // Comment: `/*` right after the delimiter (and its trim marker).
        if self.rest().starts_with("/*") {
            return self.lex_comment(left_at);
        }
        self.emit(Tok::Left, left_at);
        self.paren_depth = 0;
        loop {
            let (trim, ok) = self.at_right_delim();
            if ok && self.paren_depth == 0 {
                let at = self.pos;
                self.pos += self.right.len() + if trim { 2 } else { 0 };
                self.emit(Tok::Right, at);
                return Ok(trim);
            }
            let at = self.pos;
            let Some(c) = self.peek() else {
                return self.err(at, "unclosed action");
            };
            if ok {
                return self.err(at, "unclosed left paren");
            }
            self.lex_item(c, at)?;
        }
    }

    /// A comment action, from its `/*` through the right delimiter; emits nothing.
    fn lex_comment(&mut self, left_at: usize) -> Result<bool, LexError> {
        let Some(end) = self.rest()[2..].find("*/") else {
            return self.err(left_at, "unclosed comment");
        };
        self.pos += 2 + end + 2;
        let (trim, ok) = self.at_right_delim();
        if !ok {
            return self.err(left_at, "comment ends before closing delimiter");
        }
        self.pos += self.right.len() + if trim { 2 } else { 0 };
        Ok(trim)
    }

    /// One item inside an action, starting with `c` at `at` (Go's `lexInsideAction` switch).
    fn lex_item(&mut self, c: char, at: usize) -> Result<(), LexError> {
        match c {
            c if is_space(c) => self.lex_space(at),
            '=' => self.punct(Tok::Assign, 1, at),
            ':' => {
                if !self.rest().starts_with(":=") {
                    return self.err(at, "expected :=");
                }
                self.punct(Tok::Declare, 2, at);
            }
            '|' => self.punct(Tok::Pipe, 1, at),
            ',' => self.punct(Tok::Comma, 1, at),
            '"' => self.lex_quote(at)?,
            '`' => {
                let Some(end) = self.rest()[1..].find('`') else {
                    return self.err(at, "unterminated raw quoted string");
                };
                let s = self.rest()[1..1 + end].replace('\r', "");
                self.pos += end + 2;
                self.emit(Tok::Str(s), at);
            }
            '\'' => self.lex_char(at)?,
            '$' => {
                self.pos += 1;
                let n = self.alnum_len();
                let name = format!("${}", &self.rest()[..n]);
                self.pos += n;
                self.emit(Tok::Variable(name), at);
            }
            '.' => self.lex_dot(at)?,
            '+' | '-' | '0'..='9' => self.lex_number(at)?,
            '(' => {
                self.paren_depth += 1;
                self.punct(Tok::LParen, 1, at);
            }
            ')' => {
                self.pos += 1;
                if self.paren_depth == 0 {
                    return self.err(at, "unexpected right paren");
                }
                self.paren_depth -= 1;
                self.emit(Tok::RParen, at);
            }
            c if is_alnum(c) => {
                let n = self.alnum_len();
                let word = self.rest()[..n].to_owned();
                self.pos += n;
                self.emit(word_token(word), at);
            }
            _ => return self.err(at, format!("unrecognized character in action: {c:?}")),
        }
        Ok(())
    }

    /// A token of `len` bytes that carries no text.
    fn punct(&mut self, tok: Tok, len: usize, at: usize) {
        self.pos += len;
        self.emit(tok, at);
    }

    /// The length of the run of letters, digits and `_` at the input.
    fn alnum_len(&self) -> usize {
        self.rest()
            .find(|c| !is_alnum(c))
            .unwrap_or(self.rest().len())
    }

    fn lex_space(&mut self, at: usize) {
        let mut n = self
            .rest()
            .find(|c| !is_space(c))
            .unwrap_or(self.rest().len());
        // The last space before "-}}" belongs to the trim marker (Go's lexSpace).
        let after = &self.rest()[n..];
        if after
            .strip_prefix(TRIM_MARKER)
            .is_some_and(|r| r.starts_with(self.right))
        {
            n -= 1;
        }
        self.pos += n;
        if n > 0 {
            self.emit(Tok::Space, at);
        }
    }

    /// `.` alone, a field `.Name`, or a number `.5`.
    fn lex_dot(&mut self, at: usize) -> Result<(), LexError> {
        let next = self.rest()[1..].chars().next();
        if next.is_some_and(|c| c.is_ascii_digit()) {
            return self.lex_number(at);
        }
        self.pos += 1;
        let n = self.alnum_len();
        if n == 0 {
            self.emit(Tok::Dot, at);
        } else {
            let name = self.rest()[..n].to_owned();
            self.pos += n;
            self.emit(Tok::Field(name), at);
        }
        Ok(())
    }

    /// Whether the input is at the right delimiter, possibly preceded by " -" (trim marker).
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        if r.len() >= 2 {
            let mut cs = r.chars();
            if let (Some(a), Some(b)) = (cs.next(), cs.next())
                && is_space(a)
                && b == TRIM_MARKER
                && r[2..].starts_with(self.right)
            {
                return (true, true);
            }
        }
        (false, r.starts_with(self.right))
    }

    /// The byte offset of the `close` quote ending the quoted item at the input, skipping
    /// backslash escapes; `unterminated` is the error for a newline or the end of the input.
    fn quoted_end(&self, at: usize, close: char, unterminated: &str) -> Result<usize, LexError> {
        let mut escaped = false;
        for (i, c) in self.rest().char_indices().skip(1) {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                '\n' => break,
                c if c == close => return Ok(i),
                _ => {}
            }
        }
        self.err(at, unterminated)
    }

    fn lex_quote(&mut self, at: usize) -> Result<(), LexError> {
        let end = self.quoted_end(at, '"', "unterminated quoted string")?;
        let raw = &self.rest()[1..end];
        let Some(s) = unquote(raw) else {
            return self.err(at, "invalid escape in quoted string");
        };
        self.pos += end + 1;
        self.emit(Tok::Str(s), at);
        Ok(())
    }

    fn lex_char(&mut self, at: usize) -> Result<(), LexError> {
        let end = self.quoted_end(at, '\'', "unterminated character constant")?;
        let raw = &self.rest()[1..end];
        let s = if raw == "\"" {
            Some("\"".to_owned())
        } else {
            unquote(&raw.replace("\\'", "'"))
        };
        let mut chars = s.as_deref().unwrap_or("").chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return self.err(at, "malformed character constant");
        };
        self.pos += end + 1;
        self.emit(Tok::Char(c), at);
        Ok(())
    }

    fn lex_number(&mut self, at: usize) -> Result<(), LexError> {
        let r = self.rest();
        let n = r
            .char_indices()
            .skip(1)
            .find(|&(i, c)| {
                let prev = r[..i].chars().last().unwrap_or(' ');
                let exp_sign = (c == '+' || c == '-') && matches!(prev, 'e' | 'E' | 'p' | 'P');
                !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || exp_sign)
            })
            .map_or(r.len(), |(i, _)| i);
        let text = &r[..n];
        if text == "+" || text == "-" {
            return self.err(at, format!("bad number syntax: {text:?}"));
        }
        self.pos += n;
        self.emit(Tok::Number(text.to_owned()), at);
        Ok(())
    }
}

/// A word in an action: a keyword, `true`, `false`, `nil` or an identifier.
fn word_token(word: String) -> Tok {
    match word.as_str() {
        "block" => Tok::Keyword(Keyword::Block),
        "break" => Tok::Keyword(Keyword::Break),
        "continue" => Tok::Keyword(Keyword::Continue),
        "define" => Tok::Keyword(Keyword::Define),
        "else" => Tok::Keyword(Keyword::Else),
        "end" => Tok::Keyword(Keyword::End),
        "if" => Tok::Keyword(Keyword::If),
        "range" => Tok::Keyword(Keyword::Range),
        "template" => Tok::Keyword(Keyword::Template),
        "with" => Tok::Keyword(Keyword::With),
        "true" => Tok::Bool(true),
        "false" => Tok::Bool(false),
        "nil" => Tok::Nil,
        _ => Tok::Ident(word),
    }
}

fn has_left_trim(after: &str) -> bool {
    let mut cs = after.chars();
    matches!((cs.next(), cs.next()), (Some(TRIM_MARKER), Some(c)) if is_space(c))
}

/// Interprets Go escape sequences in a double-quoted string body.
pub(crate) fn unquote(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = raw.chars().peekable();
    // Go strings may hold arbitrary bytes via \x and octal escapes; collect bytes then validate.
    let flush = |out: &mut String, bytes: &mut Vec<u8>| {
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut out, &mut bytes);
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(s) = simple {
            flush(&mut out, &mut bytes);
            out.push(s);
            continue;
        }
        match e {
            'x' => {
                let h: String = [chars.next()?, chars.next()?].iter().collect();
                bytes.push(u8::from_str_radix(&h, 16).ok()?);
            }
            '0'..='7' => {
                let o: String = [e, chars.next()?, chars.next()?].iter().collect();
                bytes.push(u8::from_str_radix(&o, 8).ok()?);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let mut h = String::new();
                for _ in 0..n {
                    h.push(chars.next()?);
                }
                flush(&mut out, &mut bytes);
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    flush(&mut out, &mut bytes);
    Some(out)
}
