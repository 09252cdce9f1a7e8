//! Go's text/template builtins (`and` and `or` short-circuit in `exec.rs`).

use super::*;

pub(super) fn not(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Bool(!a[0].truthy()))
}

pub(super) fn len(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Int(match &a[0] {
        Value::Str(s) => s.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.len() as i64,
        Value::StrMap(m) => m.len() as i64,
        Value::Nil => return Err(ferr("len of nil pointer")),
        other => return Err(ferr(format!("len of type {}", other.type_name()))),
    }))
}

pub(super) fn index(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    if let Value::Nil = a[0] {
        return Err(ferr("index of untyped nil"));
    }
    let mut v = a[0].clone();
    for ix in &a[1..] {
        v = index1(&v, ix)?;
    }
    Ok(v)
}

pub(super) fn slice(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    sprig_slice(&a)
}

pub(super) fn print(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Str(gofmt::sprint_args(&a)))
}

pub(super) fn println(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Str(gofmt::sprintln_args(&a)))
}

pub(super) fn printf(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    Ok(Value::Str(gofmt::sprintf(
        s_arg(&a[0])?,
        &a[1..],
        c.meter.max_bytes(),
    )?))
}

pub(super) fn html(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Str(html_escape(&eval_args_str(&a))))
}

pub(super) fn js(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Str(js_escape(&eval_args_str(&a))))
}

pub(super) fn urlquery(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::str(query_escape(&eval_args_str(&a))))
}

pub(super) fn eq(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 2)?;
    for b in &a[1..] {
        if go_eq(&a[0], b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

pub(super) fn ne(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Bool(!go_eq(&a[0], &a[1])?))
}

pub(super) fn compare(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let lt = go_lt(&a[0], &a[1])?;
    let eq = !lt && go_eq(&a[0], &a[1])?;
    Ok(Value::Bool(match c.name {
        "lt" => lt,
        "le" => lt || eq,
        "gt" => !lt && !eq,
        _ => !lt,
    }))
}

fn eval_args_str(a: &[Value]) -> Vec<u8> {
    // text/template's evalArgs: a single string argument is used as is, else fmt.Sprint.
    if let [Value::Str(s)] = a {
        return s.clone();
    }
    // printableValue turns a missing value into the string "<no value>".
    let a: Vec<Value> = a
        .iter()
        .map(|v| {
            if let Value::Nil = v {
                Value::str("<no value>")
            } else {
                v.clone()
            }
        })
        .collect();
    gofmt::sprint_args(&a)
}

/// text/template's `index` step.
pub(crate) fn index1(v: &Value, ix: &Value) -> FResult {
    match v {
        Value::List(l) => {
            let (Value::Int(i) | Value::Int64(i)) = ix else {
                return Err(ferr(format!(
                    "cannot index slice/array with type {}",
                    ix.type_name()
                )));
            };
            usize::try_from(*i)
                .ok()
                .and_then(|i| l.get(i).cloned())
                .ok_or_else(|| ferr("index out of range"))
        }
        Value::Str(s) => {
            let (Value::Int(i) | Value::Int64(i)) = ix else {
                return Err(ferr(format!(
                    "cannot index slice/array with type {}",
                    ix.type_name()
                )));
            };
            usize::try_from(*i)
                .ok()
                .and_then(|i| s.get(i))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| ferr("index out of range"))
        }
        Value::Map(m) => match ix {
            Value::Str(k) => Ok(m
                .get(String::from_utf8_lossy(k).as_ref())
                .cloned()
                .unwrap_or(Value::Nil)),
            Value::Nil => Ok(Value::Nil),
            other => Err(ferr(format!(
                "value has type {}; should be string",
                other.type_name()
            ))),
        },
        Value::StrMap(m) => match ix {
            // map[string]string: a missing key is the zero value "", never <no value>.
            Value::Str(k) => Ok(Value::Str(
                m.get(String::from_utf8_lossy(k).as_ref())
                    .cloned()
                    .unwrap_or_default(),
            )),
            Value::Nil => Ok(Value::str("")),
            other => Err(ferr(format!(
                "value has type {}; should be string",
                other.type_name()
            ))),
        },
        Value::Nil => Err(ferr("index of untyped nil")),
        other => Err(ferr(format!(
            "can't index item of type {}",
            other.type_name()
        ))),
    }
}

/// sprig's `slice`: lists only.
fn sprig_slice(a: &[Value]) -> FResult {
    let l = match &a[0] {
        Value::List(l) => l,
        other => return Err(ferr(format!("Cannot slice on type {}", other.kind()))),
    };
    let len = l.len() as i64;
    let (start, end) = match a.len() {
        1 => (0, len),
        2 => (to_i64(&a[1]), len),
        _ => (to_i64(&a[1]), to_i64(&a[2])),
    };
    if start < 0 || end > len || start > end {
        return Err(ferr("slice bounds out of range"));
    }
    Ok(Value::List(l[start as usize..end as usize].to_vec()))
}

#[derive(PartialEq)]
enum Basic {
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn basic(v: &Value) -> Basic {
    match v {
        Value::Bool(_) => Basic::Bool,
        Value::Int(_) | Value::Int64(_) => Basic::Int,
        Value::Float(_) => Basic::Float,
        Value::Str(_) => Basic::Str,
        _ => Basic::Other,
    }
}

/// text/template's `eq` for one pair.
fn go_eq(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (basic(a), basic(b));
    if ka != kb {
        if matches!(a, Value::Nil) || matches!(b, Value::Nil) {
            return Ok(matches!(a, Value::Nil) && matches!(b, Value::Nil));
        }
        return Err(ferr("incompatible types for comparison"));
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x == y),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, _) | (_, Value::Nil) => Ok(false),
        _ => Err(ferr("non-comparable types")),
    }
}

/// text/template's `lt`.
fn go_lt(a: &Value, b: &Value) -> Result<bool, FuncError> {
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        (Value::Bool(_), Value::Bool(_))
        | (Value::List(_), _)
        | (Value::Map(_), _)
        | (Value::StrMap(_), _) => Err(ferr("invalid type for comparison")),
        _ if basic(a) != basic(b) => Err(ferr("incompatible types for comparison")),
        _ => Err(ferr("invalid type for comparison")),
    }
}

/// template.HTMLEscapeString.
fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            c => out.push(c),
        }
    }
    out
}

/// template.JSEscapeString.
fn js_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (c, n) = decode_rune(rest);
        let b = rest[0];
        match c {
            Some('\\') => out.extend_from_slice(b"\\\\"),
            Some('\'') => out.extend_from_slice(b"\\'"),
            Some('"') => out.extend_from_slice(b"\\\""),
            Some('<') => out.extend_from_slice(b"\\u003C"),
            Some('>') => out.extend_from_slice(b"\\u003E"),
            Some('&') => out.extend_from_slice(b"\\u0026"),
            Some('=') => out.extend_from_slice(b"\\u003D"),
            Some(c) if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes())
            }
            Some(c) if c.is_ascii() => out.push(b),
            Some(c) if is_js_print(c) => out.extend_from_slice(&rest[..n]),
            Some(c) => out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes()),
            None => out.extend_from_slice(b"\\uFFFD"),
        }
        rest = &rest[n..];
    }
    out
}

fn is_js_print(c: char) -> bool {
    !c.is_control() && !c.is_whitespace()
}

/// url.QueryEscape.
fn query_escape(s: &[u8]) -> String {
    let mut out = String::new();
    for &c in s {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(c as char)
            }
            b' ' => out.push('+'),
            c => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}
