//! Executes a parsed template (`text/template/exec.go`).

use std::collections::BTreeMap;

use crate::funcs::{self, FuncError};
use crate::parse::{Arg, Branch, Cmd, Node, Number, Pipe};
use crate::value::{Value, write_value};
use crate::{MissingKey, Pos};

/// Go's `maxExecDepth` is 100000; ours bounds Rust stack use.
const MAX_DEPTH: usize = 200;

/// Rendering stops past this many bytes (a Secret holds at most 1 MiB).
const MAX_OUTPUT: usize = 16 << 20;

/// An execution failure: message and position. Messages never quote data values.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) msg: String,
    pub(crate) pos: Pos,
}

type EResult<T> = Result<T, ExecError>;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'t> {
    pub(crate) defines: &'t BTreeMap<String, Vec<Node>>,
    pub(crate) missing_key: MissingKey,
    pub(crate) funcs: &'t funcs::FuncSet,
    pub(crate) out: Vec<u8>,
    vars: Vec<(String, Value)>,
    depth: usize,
}

fn err<T>(pos: Pos, msg: impl Into<String>) -> EResult<T> {
    Err(ExecError {
        msg: msg.into(),
        pos,
    })
}

impl<'t> State<'t> {
    pub(crate) fn new(
        defines: &'t BTreeMap<String, Vec<Node>>,
        missing_key: MissingKey,
        funcs: &'t funcs::FuncSet,
    ) -> Self {
        State {
            defines,
            missing_key,
            funcs,
            out: Vec::new(),
            vars: Vec::new(),
            depth: 0,
        }
    }

    pub(crate) fn run(&mut self, list: &[Node], dot: &Value) -> EResult<()> {
        self.vars = vec![("$".into(), dot.clone())];
        self.walk_list(list, dot)?;
        Ok(())
    }

    fn walk_list(&mut self, list: &[Node], dot: &Value) -> EResult<Flow> {
        for n in list {
            match self.walk(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, node: &Node, dot: &Value) -> EResult<Flow> {
        if self.out.len() > MAX_OUTPUT {
            return err(Pos::default(), format!("output exceeds {MAX_OUTPUT} bytes"));
        }
        match node {
            Node::Text(t) => self.out.extend_from_slice(t.as_bytes()),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    write_value(&mut self.out, &v, true);
                }
            }
            Node::If(br) => return self.walk_if_with(br, dot, false),
            Node::With(br) => return self.walk_if_with(br, dot, true),
            Node::Range(br) => return self.walk_range(br, dot),
            Node::Template { name, pipe, pos } => {
                let Some(body) = self.defines.get(name) else {
                    return err(*pos, format!("no such template {name:?}"));
                };
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                if self.depth >= MAX_DEPTH {
                    return err(
                        *pos,
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    );
                }
                self.depth += 1;
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let r = self.walk_list(body, &new_dot);
                self.vars = saved;
                self.depth -= 1;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(&mut self, br: &Branch, dot: &Value, is_with: bool) -> EResult<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &br.pipe)?;
        let r = if v.truthy() {
            if is_with {
                self.walk_list(&br.list, &v)
            } else {
                self.walk_list(&br.list, dot)
            }
        } else if let Some(e) = &br.else_list {
            self.walk_list(e, dot)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, br: &Branch, dot: &Value) -> EResult<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &br.pipe)?;
        // The pipeline's declaration pushed the whole value; iterations overwrite it. Ints are
        // iterated lazily (`{{range 1000000000}}` must not allocate).
        let (len, items): (i64, Box<dyn Iterator<Item = (Value, Value)> + '_>) = match &v {
            Value::List(l) => (
                l.len() as i64,
                Box::new(
                    l.iter()
                        .enumerate()
                        .map(|(i, x)| (Value::Int(i as i64), x.clone())),
                ),
            ),
            Value::Map(m) => (
                m.len() as i64,
                Box::new(m.iter().map(|(k, x)| (Value::str(k.as_str()), x.clone()))),
            ),
            Value::StrMap(m) => (
                m.len() as i64,
                Box::new(
                    m.iter()
                        .map(|(k, x)| (Value::str(k.as_str()), Value::Str(x.clone()))),
                ),
            ),
            Value::Int(n) | Value::Int64(n) => {
                if br.pipe.decl.len() > 1 {
                    return err(
                        br.pipe.pos,
                        "can't use int to iterate over more than one variable",
                    );
                }
                (
                    *n,
                    Box::new((0..*n).map(|i| (Value::Int(i), Value::Int(i)))),
                )
            }
            Value::Nil => (0, Box::new(std::iter::empty())),
            // Go's message quotes the value; ours names only its type.
            other => {
                return err(
                    br.pipe.pos,
                    format!("range can't iterate over {}", other.type_name()),
                );
            }
        };
        let flow = Flow::Normal;
        if len <= 0 {
            self.vars.truncate(mark);
            let r = match &br.else_list {
                Some(e) => self.walk_list(e, dot),
                None => Ok(Flow::Normal),
            };
            self.vars.truncate(mark);
            return r;
        }
        for (k, x) in items {
            let inner = self.vars.len();
            match br.pipe.decl.len() {
                0 => {}
                1 => self.set_decl(&br.pipe, 0, x.clone()),
                _ => {
                    self.set_decl(&br.pipe, 0, k);
                    self.set_decl(&br.pipe, 1, x.clone());
                }
            }
            let r = self.walk_list(&br.list, &x)?;
            self.vars.truncate(inner);
            if let Flow::Break = r {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(flow)
    }

    /// Sets the pipeline's i-th declared variable (declaration pushed it already, or assignment).
    fn set_decl(&mut self, pipe: &Pipe, i: usize, v: Value) {
        let name = &pipe.decl[i];
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> EResult<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for (i, name) in pipe.decl.iter().enumerate() {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                } else {
                    return err(pipe.pos, format!("undefined variable: {name}"));
                }
            } else if i == 0 || pipe.decl.len() == 1 {
                self.vars.push((name.clone(), value.clone()));
            } else {
                self.vars.push((name.clone(), Value::Nil));
            }
        }
        Ok(value)
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> EResult<Value> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        let has_args = !rest.is_empty() || fin.is_some();
        match first {
            Arg::Field(fields) => {
                if has_args && fields.len() == 1 {
                    return err(
                        cmd.pos,
                        format!("{} is not a method but has arguments", fields[0]),
                    );
                }
                self.eval_fields(dot.clone(), fields, cmd.pos, has_args)
            }
            Arg::Variable(name, fields) => {
                let v = self.lookup_var(name, cmd.pos)?;
                if fields.is_empty() && has_args {
                    return err(cmd.pos, "can't give argument to non-function");
                }
                self.eval_fields(v, fields, cmd.pos, has_args)
            }
            Arg::Chain(base, fields) => {
                let v = self.eval_arg(dot, base, cmd.pos)?;
                self.eval_fields(v, fields, cmd.pos, has_args)
            }
            Arg::Ident(name) => self.eval_function(dot, name, cmd, fin),
            Arg::Pipe(p) => {
                if has_args {
                    return err(cmd.pos, "can't give argument to non-function");
                }
                self.eval_pipeline_scoped(dot, p)
            }
            Arg::Nil => err(cmd.pos, "nil is not a command"),
            other => {
                if has_args {
                    return err(cmd.pos, "can't give argument to non-function");
                }
                self.eval_arg(dot, other, cmd.pos)
            }
        }
    }

    fn eval_pipeline_scoped(&mut self, dot: &Value, p: &Pipe) -> EResult<Value> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, p);
        if !p.is_assign {
            self.vars.truncate(mark);
        }
        v
    }

    fn lookup_var(&self, name: &str, pos: Pos) -> EResult<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(pos, format!("undefined variable: {name}")),
        }
    }

    fn eval_fields(
        &self,
        mut v: Value,
        fields: &[String],
        pos: Pos,
        has_args: bool,
    ) -> EResult<Value> {
        for (i, f) in fields.iter().enumerate() {
            if has_args && i + 1 == fields.len() && matches!(v, Value::Map(_) | Value::StrMap(_)) {
                return err(pos, format!("{f} is not a method but has arguments"));
            }
            v = self.eval_field(v, f, pos)?;
        }
        Ok(v)
    }

    fn eval_field(&self, receiver: Value, name: &str, pos: Pos) -> EResult<Value> {
        let missing = |zero: Value| -> EResult<Value> {
            match self.missing_key {
                MissingKey::Default => Ok(Value::Nil),
                MissingKey::Zero => Ok(zero),
                MissingKey::Error => err(pos, format!("map has no entry for key {name:?}")),
            }
        };
        match receiver {
            Value::StrMap(m) => match m.get(name) {
                Some(s) => Ok(Value::Str(s.clone())),
                None => missing(Value::str("")),
            },
            Value::Map(mut m) => match m.remove(name) {
                Some(x) => Ok(x),
                None => missing(Value::Nil),
            },
            Value::Nil => {
                if self.missing_key == MissingKey::Error {
                    return err(pos, format!("nil data; no entry for key {name:?}"));
                }
                Ok(Value::Nil)
            }
            other => err(
                pos,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            ),
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg, pos: Pos) -> EResult<Value> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Str(s) => Value::str(s.as_str()),
            Arg::Number(n) => number_value(n).ok_or_else(|| ExecError {
                msg: format!("{} overflows int", n.text),
                pos,
            })?,
            Arg::Field(fields) => self.eval_fields(dot.clone(), fields, pos, false)?,
            Arg::Variable(name, fields) => {
                let v = self.lookup_var(name, pos)?;
                self.eval_fields(v, fields, pos, false)?
            }
            Arg::Chain(base, fields) => {
                let v = self.eval_arg(dot, base, pos)?;
                self.eval_fields(v, fields, pos, false)?
            }
            Arg::Pipe(p) => self.eval_pipeline_scoped(dot, p)?,
            Arg::Ident(name) => {
                let cmd = Cmd {
                    pos,
                    args: vec![Arg::Ident(name.clone())],
                };
                self.eval_function(dot, name, &cmd, None)?
            }
        })
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Cmd,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let pos = cmd.pos;
        let args = &cmd.args[1..];
        // `and` and `or` short-circuit and return the deciding operand.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(fin.is_some());
            if n == 0 {
                return err(
                    pos,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(dot, a, pos)?;
                if last.truthy() == (name == "or") {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut argv = Vec::with_capacity(args.len() + 1);
        for a in args {
            argv.push(self.eval_arg(dot, a, pos)?);
        }
        if let Some(f) = fin {
            argv.push(f);
        }
        match funcs::call(self.funcs, name, argv) {
            Ok(v) => {
                if funcs::MUTATES_FIRST_ARG.contains(&name)
                    && let Some(Arg::Variable(var, fields)) = args.first()
                {
                    self.write_back(var, fields, &v);
                }
                Ok(v)
            }
            Err(FuncError(msg)) => err(pos, format!("error calling {name}: {msg}")),
        }
    }

    /// Go maps are references: sprig's `set`, `unset` and `merge*` change the map they are given,
    /// so `{{ $_ := set $d "k" "v" }}` changes `$d`. Values here are copies; write the result back
    /// to the variable (or the map inside it) the map came from.
    fn write_back(&mut self, var: &str, fields: &[String], v: &Value) {
        let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == var) else {
            return;
        };
        let mut target = &mut slot.1;
        for f in fields {
            match target {
                Value::Map(m) => match m.get_mut(f) {
                    Some(next) => target = next,
                    None => return,
                },
                _ => return,
            }
        }
        if matches!(target, Value::Map(_)) {
            *target = v.clone();
        }
    }
}

/// Go's `idealConstant`: a literal with `.`, `e` or `p` (not hex) is a float, otherwise an int;
/// `None` when an integer literal overflows.
fn number_value(n: &Number) -> Option<Value> {
    let t = n.text.to_ascii_lowercase();
    let hex = t.trim_start_matches(['+', '-']).starts_with("0x");
    let floaty = if hex {
        t.contains('p') || t.contains('.')
    } else {
        t.contains(['.', 'e'])
    };
    if n.is_char {
        return Some(Value::Int(n.int.unwrap_or(0)));
    }
    match (floaty, n.int, n.float) {
        (true, _, Some(f)) => Some(Value::Float(f)),
        (_, Some(i), _) => Some(Value::Int(i)),
        _ => None,
    }
}
