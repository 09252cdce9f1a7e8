//! Parser for Go `text/template` (`text/template/parse/parse.go`) into a small AST.

use std::collections::BTreeMap;

use crate::lex::{Item, Keyword, Tok};
use crate::{Budget, Pos};

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        name: String,
        pipe: Option<Pipe>,
        pos: Pos,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: Pos,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Str(String),
    Number(Number),
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b`
    Variable(String, Vec<String>),
    /// `(pipe).a.b`
    Chain(Box<Arg>, Vec<String>),
    Pipe(Box<Pipe>),
    Ident(String),
}

/// A numeric constant: Go keeps every representation the literal allows.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) int: Option<i64>,
    pub(crate) float: Option<f64>,
    pub(crate) is_char: bool,
    pub(crate) text: String,
}

/// A parse failure: message and position. Messages never quote template data.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) msg: String,
    pub(crate) pos: Pos,
    /// Set when the nesting depth budget ran out.
    pub(crate) budget: Option<Budget>,
}

type PResult<T> = Result<T, ParseError>;

pub(crate) struct Parser<'f> {
    items: Vec<Item>,
    at: usize,
    vars: Scope,
    range_depth: usize,
    funcs: &'f dyn Fn(&str) -> FuncLookup,
    pub(crate) defines: BTreeMap<String, Vec<Node>>,
    /// Open control structures, `define`s and parentheses: parsing recurses once per level.
    depth: usize,
    max_depth: usize,
}

/// What the function table says about a name.
pub(crate) enum FuncLookup {
    Known,
    /// A function of the Go function set that hush does not implement.
    Unimplemented,
    Unknown,
}

enum EndKind {
    End,
    Else(Pos),
}

impl<'f> Parser<'f> {
    pub(crate) fn new(
        items: Vec<Item>,
        funcs: &'f dyn Fn(&str) -> FuncLookup,
        max_depth: usize,
    ) -> Self {
        Parser {
            items,
            at: 0,
            vars: Scope::new(),
            range_depth: 0,
            funcs,
            defines: BTreeMap::new(),
            depth: 0,
            max_depth,
        }
    }

    /// Opens one nesting level; past the depth budget the template is refused (Go allows 10000
    /// levels; ours are bounded so parsing and rendering fit a thread's stack).
    fn enter(&mut self, pos: Pos) -> PResult<()> {
        if self.depth >= self.max_depth {
            return Err(ParseError {
                msg: String::new(),
                pos,
                budget: Some(Budget::Depth),
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn peek(&self) -> &Item {
        &self.items[self.at.min(self.items.len() - 1)]
    }

    fn next(&mut self) -> Item {
        let it = self.peek().clone();
        if self.at < self.items.len() {
            self.at += 1;
        }
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.tok != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.at -= 1;
        it
    }

    fn err<T>(&self, pos: Pos, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            msg: msg.into(),
            pos,
            budget: None,
        })
    }

    /// Parses the top level: the main template's nodes; `define`s go to `self.defines`.
    pub(crate) fn parse(&mut self) -> PResult<Vec<Node>> {
        let mut list = Vec::new();
        loop {
            let it = self.peek().clone();
            match it.tok {
                Tok::Eof => return Ok(list),
                Tok::Left => {
                    let save = self.at;
                    self.next();
                    let kw = self.peek_non_space();
                    if kw.tok == Tok::Keyword(Keyword::Define) {
                        self.next_non_space();
                        self.parse_define(kw.pos)?;
                        continue;
                    }
                    self.at = save;
                    match self.text_or_action()? {
                        Ok(n) => list.push(n),
                        Err(EndKind::End) => return self.err(it.pos, "unexpected {{end}}"),
                        Err(EndKind::Else(p)) => return self.err(p, "unexpected {{else}}"),
                    }
                }
                _ => match self.text_or_action()? {
                    Ok(n) => list.push(n),
                    Err(_) => return self.err(it.pos, "unexpected end"),
                },
            }
        }
    }

    fn parse_define(&mut self, pos: Pos) -> PResult<()> {
        let name_it = self.next_non_space();
        let Tok::Str(name) = name_it.tok else {
            return self.err(name_it.pos, "unexpected name in define clause");
        };
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, Scope::new());
        self.enter(pos)?;
        let listed = self.item_list();
        self.leave();
        let (list, end) = listed?;
        self.vars = saved;
        if let EndKind::Else(p) = end {
            return self.err(p, "unexpected {{else}} in define");
        }
        self.add_define(name, list, pos)
    }

    fn add_define(&mut self, name: String, list: Vec<Node>, pos: Pos) -> PResult<()> {
        // Go allows redefinition only when one of the two bodies is empty.
        let empty = |l: &[Node]| {
            l.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        if let Some(old) = self.defines.get(&name)
            && !empty(old)
            && !empty(&list)
        {
            return self.err(
                pos,
                format!("template: multiple definition of template {name:?}"),
            );
        }
        if !(self.defines.contains_key(&name) && empty(&list)) {
            self.defines.insert(name, list);
        }
        Ok(())
    }

    fn expect_right(&mut self, ctx: &str) -> PResult<()> {
        let it = self.next_non_space();
        if it.tok != Tok::Right {
            return self.err(it.pos, format!("unexpected token in {ctx}"));
        }
        Ok(())
    }

    /// Parses nodes up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(Vec<Node>, EndKind)> {
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return self.err(self.peek().pos, "unexpected EOF");
            }
            match self.text_or_action()? {
                Ok(n) => list.push(n),
                Err(end) => return Ok((list, end)),
            }
        }
    }

    fn text_or_action(&mut self) -> PResult<Result<Node, EndKind>> {
        let it = self.next();
        match it.tok {
            Tok::Text(t) => Ok(Ok(Node::Text(t))),
            Tok::Left => self.action(),
            _ => self.err(it.pos, "unexpected token"),
        }
    }

    fn action(&mut self) -> PResult<Result<Node, EndKind>> {
        let it = self.next_non_space();
        let pos = it.pos;
        match it.tok {
            Tok::Keyword(Keyword::Block) => self.block(pos).map(Ok),
            Tok::Keyword(Keyword::Break) | Tok::Keyword(Keyword::Continue) => {
                let is_break = it.tok == Tok::Keyword(Keyword::Break);
                if self.range_depth == 0 {
                    let w = if is_break { "break" } else { "continue" };
                    return self.err(pos, format!("{{{{{w}}}}} outside {{{{range}}}}"));
                }
                self.expect_right("break/continue")?;
                Ok(Ok(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword(Keyword::Define) => self.err(pos, "unexpected define"),
            Tok::Keyword(Keyword::Else) => {
                // `{{else}}`, `{{else if …}}`, `{{else with …}}`: the caller handles the chain.
                let next = self.peek_non_space();
                match next.tok {
                    Tok::Keyword(Keyword::If) | Tok::Keyword(Keyword::With) => {
                        // The enclosing control parses the keyword as a nested control.
                        Ok(Err(EndKind::Else(pos)))
                    }
                    _ => {
                        self.expect_right("else")?;
                        Ok(Err(EndKind::Else(pos)))
                    }
                }
            }
            Tok::Keyword(Keyword::End) => {
                self.expect_right("end")?;
                Ok(Err(EndKind::End))
            }
            Tok::Keyword(Keyword::If) => self.control(pos, Ctl::If).map(Ok),
            Tok::Keyword(Keyword::Range) => self.control(pos, Ctl::Range).map(Ok),
            Tok::Keyword(Keyword::With) => self.control(pos, Ctl::With).map(Ok),
            Tok::Keyword(Keyword::Template) => self.template(pos).map(Ok),
            _ => {
                self.at -= 1;
                let pipe = self.pipeline("command", true)?;
                Ok(Ok(Node::Action(pipe)))
            }
        }
    }

    fn block(&mut self, pos: Pos) -> PResult<Node> {
        let name_it = self.next_non_space();
        let Tok::Str(name) = name_it.tok else {
            return self.err(name_it.pos, "unexpected name in block clause");
        };
        let pipe = self.pipeline("block clause", true)?;
        let saved = std::mem::replace(&mut self.vars, Scope::new());
        self.enter(pos)?;
        let listed = self.item_list();
        self.leave();
        let (list, end) = listed?;
        self.vars = saved;
        if let EndKind::Else(p) = end {
            return self.err(p, "unexpected {{else}} in block");
        }
        self.add_define(name.clone(), list, pos)?;
        Ok(Node::Template {
            name,
            pipe: Some(pipe),
            pos,
        })
    }

    fn template(&mut self, pos: Pos) -> PResult<Node> {
        let name_it = self.next_non_space();
        let Tok::Str(name) = name_it.tok else {
            return self.err(name_it.pos, "unexpected name in template clause");
        };
        let next = self.peek_non_space();
        let pipe = if next.tok == Tok::Right {
            self.next_non_space();
            None
        } else {
            Some(self.pipeline("template clause", true)?)
        };
        Ok(Node::Template { name, pipe, pos })
    }

    fn control(&mut self, pos: Pos, ctl: Ctl) -> PResult<Node> {
        self.enter(pos)?;
        let node = self.control_inner(ctl);
        self.leave();
        node
    }

    fn control_inner(&mut self, ctl: Ctl) -> PResult<Node> {
        let vars_len = self.vars.len();
        let pipe = self.pipeline(ctl.name(), true)?;
        if ctl == Ctl::Range {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if ctl == Ctl::Range {
            self.range_depth -= 1;
        }
        let (list, end) = listed?;
        let else_list = match end {
            EndKind::End => None,
            EndKind::Else(epos) => {
                let next = self.peek_non_space();
                let chained = match next.tok {
                    Tok::Keyword(Keyword::If) if ctl == Ctl::If => Some(Ctl::If),
                    Tok::Keyword(Keyword::With) if ctl == Ctl::With => Some(Ctl::With),
                    Tok::Keyword(Keyword::If) | Tok::Keyword(Keyword::With) => {
                        return self.err(epos, "unexpected token in else");
                    }
                    _ => None,
                };
                if let Some(c) = chained {
                    // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`: the nested
                    // control consumes the shared {{end}}.
                    let kw = self.next_non_space();
                    let nested = self.control(kw.pos, c)?;
                    Some(vec![nested])
                } else {
                    let (else_list, end) = self.item_list()?;
                    if let EndKind::Else(p) = end {
                        return self.err(p, "expected end; found {{else}}");
                    }
                    Some(else_list)
                }
            }
        };
        self.vars.truncate(vars_len);
        let br = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match ctl {
            Ctl::If => Node::If(br),
            Ctl::Range => Node::Range(br),
            Ctl::With => Node::With(br),
        })
    }

    /// Parses a pipeline up to the right delimiter (`{{…}}`) or right paren (inside `(…)`).
    fn pipeline(&mut self, ctx: &str, allow_decl: bool) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (range only).
        if allow_decl && let Tok::Variable(_) = start.tok {
            let save = self.at;
            let v = self.next_non_space();
            let after = self.peek_non_space();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    self.next_non_space();
                    let Tok::Variable(name) = v.tok else {
                        return Err(internal());
                    };
                    pipe.is_assign = after.tok == Tok::Assign;
                    if pipe.is_assign && !self.vars.contains(&name) {
                        return self.err(v.pos, format!("undefined variable {name:?}"));
                    }
                    pipe.decl.push(name);
                }
                Tok::Comma if ctx == "range" => {
                    self.next_non_space();
                    let v2 = self.next_non_space();
                    let Tok::Variable(name2) = v2.tok else {
                        return self.err(v2.pos, "range can only initialize variables");
                    };
                    let op = self.next_non_space();
                    if op.tok != Tok::Declare && op.tok != Tok::Assign {
                        return self.err(op.pos, "range can only initialize variables");
                    }
                    pipe.is_assign = op.tok == Tok::Assign;
                    let Tok::Variable(name) = v.tok else {
                        return Err(internal());
                    };
                    pipe.decl.push(name);
                    pipe.decl.push(name2);
                }
                _ => self.at = save,
            }
            if !pipe.is_assign {
                for d in &pipe.decl {
                    self.vars.push(d.clone());
                }
            }
        }
        let end_tok = if ctx == "parenthesized pipeline" {
            Tok::RParen
        } else {
            Tok::Right
        };
        loop {
            let it = self.peek_non_space();
            if it.tok == end_tok {
                self.next_non_space();
                if pipe.cmds.is_empty() {
                    return self.err(it.pos, format!("missing value for {ctx}"));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if let Some(Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Number(_) | Arg::Str(_)) =
                        c.args.first()
                    {
                        let _ = i;
                        return self.err(c.pos, "non executable command in pipeline stage");
                    }
                }
                return Ok(pipe);
            }
            match it.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LParen => {
                    let cmd = self.command(&end_tok)?;
                    pipe.cmds.push(cmd);
                }
                Tok::Eof | Tok::Right | Tok::RParen => {
                    return self.err(it.pos, format!("unclosed action in {ctx}"));
                }
                _ => return self.err(it.pos, format!("unexpected token in {ctx}")),
            }
        }
    }

    fn command(&mut self, end_tok: &Tok) -> PResult<Cmd> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Cmd {
            pos,
            args: Vec::new(),
        };
        loop {
            self.skip_spaces();
            let Some(op) = self.operand()? else { break };
            cmd.args.push(op);
            let it = self.peek().clone();
            match &it.tok {
                Tok::Space => {
                    self.skip_spaces();
                    continue;
                }
                t if t == end_tok => break,
                Tok::Right | Tok::RParen => break,
                Tok::Pipe => break,
                _ => return self.err(it.pos, "unexpected token in operand"),
            }
        }
        let it = self.peek_non_space();
        if it.tok == Tok::Pipe {
            self.next_non_space();
            let after = self.peek_non_space();
            if after.tok == *end_tok {
                return self.err(after.pos, "missing command after pipe");
            }
        }
        if cmd.args.is_empty() {
            return self.err(pos, "empty command");
        }
        Ok(cmd)
    }

    fn skip_spaces(&mut self) {
        while self.peek().tok == Tok::Space {
            self.next();
        }
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        let mut pos = None;
        while let Tok::Field(f) = &self.peek().tok {
            pos.get_or_insert(self.peek().pos);
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut base) => {
                base.extend(fields);
                Arg::Field(base)
            }
            Arg::Variable(name, mut base) => {
                base.extend(fields);
                Arg::Variable(name, base)
            }
            Arg::Bool(_) | Arg::Str(_) | Arg::Number(_) | Arg::Nil | Arg::Dot => {
                return self.err(pos.unwrap_or_default(), "unexpected . after term");
            }
            other => Arg::Chain(Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space();
        Ok(Some(match it.tok {
            Tok::Ident(name) => {
                match (self.funcs)(&name) {
                    FuncLookup::Known => {}
                    FuncLookup::Unimplemented => {
                        return self.err(
                            it.pos,
                            format!("function {name:?} is not implemented by hush-template"),
                        );
                    }
                    FuncLookup::Unknown => {
                        return self.err(it.pos, format!("function {name:?} not defined"));
                    }
                }
                Arg::Ident(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(it.pos, format!("undefined variable {name:?}"));
                }
                Arg::Variable(name, Vec::new())
            }
            Tok::Field(f) => Arg::Field(vec![f]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Char(c) => Arg::Number(Number {
                int: Some(i64::from(u32::from(c))),
                float: Some(f64::from(u32::from(c))),
                is_char: true,
                text: c.to_string(),
            }),
            Tok::Number(text) => match parse_number(&text) {
                Some(n) => Arg::Number(n),
                None => return self.err(it.pos, format!("illegal number syntax: {text:?}")),
            },
            Tok::Str(s) => Arg::Str(s),
            Tok::LParen => {
                self.enter(it.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", false);
                self.leave();
                Arg::Pipe(Box::new(pipe?))
            }
            _ => {
                self.at -= 1;
                return Ok(None);
            }
        }))
    }
}

/// Variables in scope while parsing: a stack for scoping and a count per name, so checking a
/// name is one lookup however many variables a template declares.
struct Scope {
    names: Vec<String>,
    counts: std::collections::HashMap<String, usize>,
}

impl Scope {
    /// A new scope with only `$`.
    fn new() -> Self {
        let mut s = Scope {
            names: Vec::new(),
            counts: std::collections::HashMap::new(),
        };
        s.push("$".into());
        s
    }

    fn push(&mut self, name: String) {
        *self.counts.entry(name.clone()).or_default() += 1;
        self.names.push(name);
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    fn truncate(&mut self, len: usize) {
        while self.names.len() > len {
            if let Some(name) = self.names.pop()
                && let Some(n) = self.counts.get_mut(&name)
            {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&name);
                }
            }
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.counts.contains_key(name)
    }
}

fn internal() -> ParseError {
    ParseError {
        msg: "internal parser error".into(),
        pos: Pos::default(),
        budget: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctl {
    If,
    Range,
    With,
}

impl Ctl {
    fn name(self) -> &'static str {
        match self {
            Ctl::If => "if",
            Ctl::Range => "range",
            Ctl::With => "with",
        }
    }
}

/// Parses a Go number literal (decimal, hex, octal, binary, float, hex float; `_` separators).
fn parse_number(text: &str) -> Option<Number> {
    // Go's strconv (base 0, as parse.newNumber calls it) takes `_` only between digits.
    if text.contains('_') && !hush_gocompat::strconv::underscores_between_digits(text) {
        return None;
    }
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body
        .chars()
        .filter(|&c| c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    let radix_int = |digits: &str, radix: u32| i128::from_str_radix(digits, radix).ok();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        radix_int(h, 16)
    } else if let Some(b) = lower.strip_prefix("0b") {
        radix_int(b, 2)
    } else if let Some(o) = lower.strip_prefix("0o") {
        radix_int(o, 8)
    } else if lower.len() > 1 && lower.bytes().all(|b| b.is_ascii_digit()) && lower.starts_with('0')
    {
        radix_int(&lower[1..], 8)
    } else if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        lower.parse::<i128>().ok()
    } else {
        None
    };
    let int = int
        .map(|i| if neg { -i } else { i })
        .and_then(|i| i64::try_from(i).ok());
    let float = if let Some(h) = lower.strip_prefix("0x") {
        hex_float(h)
    } else if lower.starts_with("0b") || lower.starts_with("0o") {
        int.map(|i| i as f64)
    } else {
        lower.parse::<f64>().ok().filter(|f| f.is_finite())
    };
    let float = float.map(|f| if neg { -f } else { f });
    if int.is_none() && float.is_none() {
        return None;
    }
    // Go: a float literal whose value is integral is also an int ("1e3" is 1000).
    let int = int.or_else(|| {
        float
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    });
    Some(Number {
        int,
        float,
        is_char: false,
        text: text.to_owned(),
    })
}

/// A hex float mantissa and optional binary exponent (`1p4`, `1.8p-2`, `ff`).
fn hex_float(h: &str) -> Option<f64> {
    let (mant, exp) = match h.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (h, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    if ip.is_empty() && fp.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in ip.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in fp.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}
