//! sprig's list functions.

use super::*;

pub(super) fn list(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::List(a))
}

pub(super) fn list_transform(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    if matches!(a[0], Value::Nil) {
        // sprig calls reflect.TypeOf(nil).Kind(): a panic, i.e. an error.
        return Err(ferr(format!("Cannot find {} on type invalid", c.name)));
    }
    let l = list_arg(&a[0], c.name)?;
    Ok(match c.name {
        "first" => l.first().cloned().unwrap_or(Value::Nil),
        "last" => l.last().cloned().unwrap_or(Value::Nil),
        "rest" => Value::List(l.get(1..).unwrap_or(&[]).to_vec()),
        "initial" => Value::List(l[..l.len().saturating_sub(1)].to_vec()),
        "reverse" => Value::List(l.into_iter().rev().collect()),
        "uniq" => {
            // Quadratic, as sprig's: every comparison is paid for.
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                c.meter.charge(out.len() as u64)?;
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::List(out)
        }
        _ => Value::List(l.into_iter().filter(|v| !is_empty(v)).collect()),
    })
}

pub(super) fn append(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let mut l = list_arg(&a[0], "append")?;
    l.push(a[1].clone());
    Ok(Value::List(l))
}

pub(super) fn prepend(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let mut l = list_arg(&a[0], "prepend")?;
    l.insert(0, a[1].clone());
    Ok(Value::List(l))
}

pub(super) fn concat(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    let mut out = Vec::new();
    for v in &a {
        out.extend(list_arg(v, "concat")?);
    }
    Ok(Value::List(out))
}

pub(super) fn without(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    let l = list_arg(&a[0], "without")?;
    c.meter
        .charge((l.len() as u64).saturating_mul(a.len() as u64))?;
    Ok(Value::List(
        l.into_iter().filter(|v| !a[1..].contains(v)).collect(),
    ))
}

pub(super) fn has(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        other => {
            let l = list_arg(other, "has")?;
            c.meter.charge(l.len() as u64)?;
            Ok(Value::Bool(l.contains(&a[0])))
        }
    }
}

pub(super) fn chunk(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let n = i_arg(&a[0])?;
    let l = list_arg(&a[1], "chunk")?;
    if n <= 0 {
        return Ok(Value::List(Vec::new()));
    }
    Ok(Value::List(
        l.chunks(n as usize)
            .map(|c| Value::List(c.to_vec()))
            .collect(),
    ))
}

fn list_arg(v: &Value, func: &str) -> Result<Vec<Value>, FuncError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(ferr(format!("Cannot find {func} on type {}", other.kind()))),
    }
}
