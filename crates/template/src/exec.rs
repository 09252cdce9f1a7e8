//! Executes a parsed template (`text/template/exec.go`).

use std::collections::BTreeMap;

use crate::funcs::{self, FuncError};
use crate::limits::{Meter, too_deep};
use crate::parse::{Arg, Branch, Cmd, Node, Number, Pipe};
use crate::value::{Value, write_value};
use crate::{Budget, Limits, MissingKey, Pos};

/// An execution failure: message and position. Messages never quote data values.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) msg: String,
    pub(crate) pos: Pos,
    /// Set when a budget ran out (the message is then empty).
    pub(crate) budget: Option<Budget>,
}

fn over(budget: Budget, pos: Pos) -> ExecError {
    ExecError {
        msg: String::new(),
        pos,
        budget: Some(budget),
    }
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
    /// Open control structures, parenthesized pipelines and template calls.
    depth: usize,
    meter: Meter,
    /// The position of the last action reached: text has none of its own, and a budget that
    /// runs out while writing it is reported here.
    last_pos: Pos,
}

fn err<T>(pos: Pos, msg: impl Into<String>) -> EResult<T> {
    Err(ExecError {
        msg: msg.into(),
        pos,
        budget: None,
    })
}

impl<'t> State<'t> {
    pub(crate) fn new(
        defines: &'t BTreeMap<String, Vec<Node>>,
        missing_key: MissingKey,
        funcs: &'t funcs::FuncSet,
        limits: Limits,
    ) -> Self {
        State {
            defines,
            missing_key,
            funcs,
            out: Vec::new(),
            vars: Vec::new(),
            depth: 0,
            meter: Meter::new(limits),
            last_pos: Pos { line: 1, col: 1 },
        }
    }

    pub(crate) fn run(&mut self, list: &[Node], dot: &Value) -> EResult<()> {
        if too_deep(dot, self.meter.max_depth()) {
            return Err(over(Budget::Depth, Pos::default()));
        }
        self.vars = vec![("$".into(), dot.clone())];
        self.walk_list(list, dot)?;
        Ok(())
    }

    fn charge(&mut self, n: u64, pos: Pos) -> EResult<()> {
        self.meter.charge(n).map_err(|b| over(b, pos))
    }

    /// Charges a copy of `v`, before it is made.
    fn charge_value(&mut self, v: &Value, pos: Pos) -> EResult<()> {
        self.meter.charge_value(v).map_err(|b| over(b, pos))
    }

    /// Appends to the output within the output budget.
    fn emit(&mut self, bytes: &[u8], pos: Pos) -> EResult<()> {
        self.meter
            .check_len(self.out.len().saturating_add(bytes.len()))
            .map_err(|b| over(b, pos))?;
        self.meter
            .charge_bytes(bytes.len())
            .map_err(|b| over(b, pos))?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Runs `f` one nesting level down: Rust recursion per level, bounded by the depth budget.
    fn nested<T>(&mut self, pos: Pos, f: impl FnOnce(&mut Self) -> EResult<T>) -> EResult<T> {
        if self.depth >= self.meter.max_depth() {
            return Err(over(Budget::Depth, pos));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
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
        if let Some(pos) = node_pos(node) {
            self.last_pos = pos;
        }
        self.charge(1, self.last_pos)?;
        match node {
            Node::Text(t) => self.emit(t.as_bytes(), self.last_pos)?,
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    // The printed form is at most a few bytes per element more than the value's
                    // cost; it is built aside and then put through the output budget.
                    let mut printed = Vec::new();
                    write_value(&mut printed, &v, true);
                    self.emit(&printed, pipe.pos)?;
                }
            }
            Node::If(br) => {
                return self.nested(br.pipe.pos, |st| st.walk_if_with(br, dot, false));
            }
            Node::With(br) => return self.nested(br.pipe.pos, |st| st.walk_if_with(br, dot, true)),
            Node::Range(br) => return self.nested(br.pipe.pos, |st| st.walk_range(br, dot)),
            Node::Template { name, pipe, pos } => {
                let Some(body) = self.defines.get(name) else {
                    return err(*pos, format!("no such template {name:?}"));
                };
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                self.charge_value(&new_dot, *pos)?;
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let r = self.nested(*pos, |st| st.walk_list(body, &new_dot));
                self.vars = saved;
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
        let pos = br.pipe.pos;
        // The pipeline's declaration pushed the whole value; iterations overwrite it. The value
        // is consumed, so elements are moved out, not copied; ints are iterated lazily
        // (`{{range 1000000000}}` must not allocate; the step budget ends it).
        let (len, items): (i64, Box<dyn Iterator<Item = (Value, Value)>>) = match v {
            Value::List(l) => (
                l.len() as i64,
                Box::new(
                    l.into_iter()
                        .enumerate()
                        .map(|(i, x)| (Value::Int(i as i64), x)),
                ),
            ),
            Value::Map(m) => (
                m.len() as i64,
                Box::new(m.into_iter().map(|(k, x)| (Value::str(k), x))),
            ),
            Value::StrMap(m) => (
                m.len() as i64,
                Box::new(m.into_iter().map(|(k, x)| (Value::str(k), Value::Str(x)))),
            ),
            Value::Int(n) | Value::Int64(n) => {
                if br.pipe.decl.len() > 1 {
                    return err(pos, "can't use int to iterate over more than one variable");
                }
                (n, Box::new((0..n).map(|i| (Value::Int(i), Value::Int(i)))))
            }
            Value::Nil => (0, Box::new(std::iter::empty())),
            // Go's message quotes the value; ours names only its type.
            other => {
                return err(
                    pos,
                    format!("range can't iterate over {}", other.type_name()),
                );
            }
        };
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
            self.charge(1, pos)?;
            let inner = self.vars.len();
            match br.pipe.decl.len() {
                0 => {}
                1 => {
                    self.charge_value(&x, pos)?;
                    self.set_decl(&br.pipe, 0, x.clone());
                }
                _ => {
                    self.charge_value(&x, pos)?;
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
        Ok(Flow::Normal)
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
            self.charge(1, cmd.pos)?;
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        if !pipe.decl.is_empty() {
            self.charge_value(&value, pipe.pos)?;
        }
        for (i, name) in pipe.decl.iter().enumerate() {
            if pipe.is_assign {
                let slot = self.find_var(name, pipe.pos)?;
                self.vars[slot].1 = value.clone();
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
                self.fields_of_dot(dot, fields, cmd.pos, has_args)
            }
            Arg::Variable(name, fields) => {
                if fields.is_empty() && has_args {
                    return err(cmd.pos, "can't give argument to non-function");
                }
                self.fields_of_var(name, fields, cmd.pos, has_args)
            }
            Arg::Chain(base, fields) => {
                let v = self.eval_arg(dot, base, cmd.pos)?;
                self.fields_of_dot(&v, fields, cmd.pos, has_args)
            }
            Arg::Ident(name) => self.eval_function(dot, name, cmd, fin),
            Arg::Pipe(p) => {
                if has_args {
                    return err(cmd.pos, "can't give argument to non-function");
                }
                self.eval_pipeline_scoped(dot, p, cmd.pos)
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

    /// A parenthesized pipeline: one nesting level down, its declarations scoped to it.
    fn eval_pipeline_scoped(&mut self, dot: &Value, p: &Pipe, pos: Pos) -> EResult<Value> {
        self.nested(pos, |st| {
            let mark = st.vars.len();
            let v = st.eval_pipeline(dot, p);
            if !p.is_assign {
                st.vars.truncate(mark);
            }
            v
        })
    }

    /// The index of the innermost variable `name`; the scan is charged (one step per 16
    /// variables in scope), so thousands of declarations cannot make each lookup free.
    fn find_var(&mut self, name: &str, pos: Pos) -> EResult<usize> {
        let found = self.vars.iter().rposition(|(n, _)| n == name);
        let scanned = self.vars.len() - found.unwrap_or(0);
        self.charge((scanned / 16) as u64, pos)?;
        found.ok_or_else(|| ExecError {
            msg: format!("undefined variable: {name}"),
            pos,
            budget: None,
        })
    }

    /// `.a.b` on `base`: walks by reference and copies only the result, after charging it.
    fn fields_of_dot(
        &mut self,
        base: &Value,
        fields: &[String],
        pos: Pos,
        has_args: bool,
    ) -> EResult<Value> {
        let found = resolve_fields(base, fields, self.missing_key, pos, has_args)?;
        self.take_found(found, pos)
    }

    /// `$x.a.b`, as [`Self::fields_of_dot`] on the variable's value.
    fn fields_of_var(
        &mut self,
        name: &str,
        fields: &[String],
        pos: Pos,
        has_args: bool,
    ) -> EResult<Value> {
        let slot = self.find_var(name, pos)?;
        let found = resolve_fields(&self.vars[slot].1, fields, self.missing_key, pos, has_args)?;
        match found {
            Found::Ref(r) => {
                self.meter.charge_value(r).map_err(|b| over(b, pos))?;
                Ok(r.clone())
            }
            Found::Owned(v) => Ok(v),
        }
    }

    fn take_found(&mut self, found: Found<'_>, pos: Pos) -> EResult<Value> {
        match found {
            Found::Ref(r) => {
                self.charge_value(r, pos)?;
                Ok(r.clone())
            }
            Found::Owned(v) => Ok(v),
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg, pos: Pos) -> EResult<Value> {
        Ok(match arg {
            Arg::Dot => {
                self.charge_value(dot, pos)?;
                dot.clone()
            }
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Str(s) => {
                self.meter.charge_bytes(s.len()).map_err(|b| over(b, pos))?;
                Value::str(s.as_str())
            }
            Arg::Number(n) => number_value(n).ok_or_else(|| ExecError {
                msg: format!("{} overflows int", n.text),
                pos,
                budget: None,
            })?,
            Arg::Field(fields) => self.fields_of_dot(dot, fields, pos, false)?,
            Arg::Variable(name, fields) => self.fields_of_var(name, fields, pos, false)?,
            Arg::Chain(base, fields) => {
                let v = self.eval_arg(dot, base, pos)?;
                self.fields_of_dot(&v, fields, pos, false)?
            }
            Arg::Pipe(p) => self.eval_pipeline_scoped(dot, p, pos)?,
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
        if name == "index"
            && fin.is_none()
            && let Some(v) = self.index_in_place(dot, args, pos)?
        {
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(args.len() + 1);
        for a in args {
            argv.push(self.eval_arg(dot, a, pos)?);
        }
        if let Some(f) = fin {
            argv.push(f);
        }
        match funcs::call(self.funcs, name, argv, &mut self.meter) {
            Ok(v) => {
                // What a function built is charged like a copy, and refused past the budgets.
                self.charge_value(&v, pos)?;
                if let Value::Str(s) = &v {
                    self.meter.check_len(s.len()).map_err(|b| over(b, pos))?;
                }
                if funcs::mutates_first_arg(name)
                    && let Some(Arg::Variable(var, fields)) = args.first()
                {
                    self.write_back(var, fields, &v);
                }
                Ok(v)
            }
            Err(FuncError::Msg(msg)) => err(pos, format!("error calling {name}: {msg}")),
            Err(FuncError::Budget(b)) => Err(over(b, pos)),
        }
    }

    /// `index . "k"` (or `index .a $x "k"`) without copying the collection: in Go `.` is a
    /// reference, so a template may index a large data map as often as it likes. Only when the
    /// indices are plain operands (no pipelines or calls, which could assign variables); `None`
    /// leaves the call to the ordinary path.
    fn index_in_place(&mut self, dot: &Value, args: &[Arg], pos: Pos) -> EResult<Option<Value>> {
        let plain = |a: &Arg| !matches!(a, Arg::Pipe(_) | Arg::Chain(..) | Arg::Ident(_));
        let (Some(base), Some(_)) = (args.first(), args.get(1)) else {
            return Ok(None);
        };
        if !args.iter().all(plain) || !matches!(base, Arg::Dot | Arg::Field(_) | Arg::Variable(..))
        {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(args.len() - 1);
        for a in &args[1..] {
            keys.push(self.eval_arg(dot, a, pos)?);
        }
        let slot = match base {
            Arg::Variable(name, _) => Some(self.find_var(name, pos)?),
            _ => None,
        };
        let found = match base {
            Arg::Dot => Found::Ref(dot),
            Arg::Field(fields) => resolve_fields(dot, fields, self.missing_key, pos, false)?,
            Arg::Variable(_, fields) => {
                let Some(slot) = slot else { return Ok(None) };
                resolve_fields(&self.vars[slot].1, fields, self.missing_key, pos, false)?
            }
            _ => return Ok(None),
        };
        let collection: &Value = match &found {
            Found::Ref(r) => r,
            Found::Owned(v) => v,
        };
        let call_err = |e: FuncError| match e {
            FuncError::Msg(msg) => ExecError {
                msg: format!("error calling index: {msg}"),
                pos,
                budget: None,
            },
            FuncError::Budget(b) => over(b, pos),
        };
        if let Value::Nil = collection {
            return Err(call_err(FuncError::Msg("index of untyped nil".into())));
        }
        let mut v = funcs::index1(collection, &keys[0]).map_err(call_err)?;
        for k in &keys[1..] {
            v = funcs::index1(&v, k).map_err(call_err)?;
        }
        self.meter.charge_value(&v).map_err(|b| over(b, pos))?;
        Ok(Some(v))
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

/// The value a field chain ends at: borrowed from the receiver, or made (a missing key's value,
/// a `map[string]string` entry).
enum Found<'v> {
    Ref(&'v Value),
    Owned(Value),
}

/// Walks `.a.b.c` from `base` without copying (Go's evalField for maps).
fn resolve_fields<'v>(
    base: &'v Value,
    fields: &[String],
    missing_key: MissingKey,
    pos: Pos,
    has_args: bool,
) -> EResult<Found<'v>> {
    let mut cur = Found::Ref(base);
    for (i, f) in fields.iter().enumerate() {
        let calls_map = |r: &Value| {
            has_args && i + 1 == fields.len() && matches!(r, Value::Map(_) | Value::StrMap(_))
        };
        cur = match cur {
            Found::Ref(r) => {
                if calls_map(r) {
                    return err(pos, format!("{f} is not a method but has arguments"));
                }
                field_of(r, f, missing_key, pos)?
            }
            // Only strings, nil and zero values are owned; their fields are values too.
            Found::Owned(v) => {
                if calls_map(&v) {
                    return err(pos, format!("{f} is not a method but has arguments"));
                }
                match field_of(&v, f, missing_key, pos)? {
                    Found::Ref(r) => Found::Owned(r.clone()),
                    Found::Owned(o) => Found::Owned(o),
                }
            }
        };
    }
    Ok(cur)
}

fn field_of<'v>(
    receiver: &'v Value,
    name: &str,
    missing_key: MissingKey,
    pos: Pos,
) -> EResult<Found<'v>> {
    let missing = |zero: Value| -> EResult<Found<'v>> {
        match missing_key {
            MissingKey::Default => Ok(Found::Owned(Value::Nil)),
            MissingKey::Zero => Ok(Found::Owned(zero)),
            MissingKey::Error => err(pos, format!("map has no entry for key {name:?}")),
        }
    };
    match receiver {
        Value::StrMap(m) => match m.get(name) {
            Some(s) => Ok(Found::Owned(Value::Str(s.clone()))),
            None => missing(Value::str("")),
        },
        Value::Map(m) => match m.get(name) {
            Some(x) => Ok(Found::Ref(x)),
            None => missing(Value::Nil),
        },
        Value::Nil => {
            if missing_key == MissingKey::Error {
                return err(pos, format!("nil data; no entry for key {name:?}"));
            }
            Ok(Found::Owned(Value::Nil))
        }
        other => err(
            pos,
            format!("can't evaluate field {name} in type {}", other.type_name()),
        ),
    }
}

fn node_pos(node: &Node) -> Option<Pos> {
    match node {
        Node::Action(p) => Some(p.pos),
        Node::If(b) | Node::With(b) | Node::Range(b) => Some(b.pipe.pos),
        Node::Template { pos, .. } => Some(*pos),
        Node::Text(_) | Node::Break | Node::Continue => None,
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
