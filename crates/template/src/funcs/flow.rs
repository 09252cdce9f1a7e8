//! sprig's defaults, flow control and type functions.

use super::*;

pub(super) fn default_fn(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    if a.len() < 2 || is_empty(&a[1]) {
        Ok(a[0].clone())
    } else {
        Ok(a[1].clone())
    }
}

pub(super) fn empty(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Bool(is_empty(&a[0])))
}

pub(super) fn coalesce(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(a.iter()
        .find(|v| !is_empty(v))
        .cloned()
        .unwrap_or(Value::Nil))
}

pub(super) fn all(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Bool(a.iter().all(|v| !is_empty(v))))
}

pub(super) fn any(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::Bool(a.iter().any(|v| !is_empty(v))))
}

pub(super) fn ternary(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    match &a[2] {
        Value::Bool(b) => Ok(if *b { a[0].clone() } else { a[1].clone() }),
        _ => Err(ferr("wrong type for value; expected bool")),
    }
}

pub(super) fn fail(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    s_arg(&a[0])?;
    Err(ferr("fail called"))
}

pub(super) fn type_of(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::str(a[0].type_name()))
}

pub(super) fn type_is(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let t = s_string(&a[0])?;
    let actual = a[1].type_name();
    Ok(Value::Bool(
        t == actual || (c.name == "typeIsLike" && t == format!("*{actual}")),
    ))
}

pub(super) fn kind_of(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::str(a[0].kind()))
}

pub(super) fn kind_is(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Bool(s_string(&a[0])? == a[1].kind()))
}

pub(super) fn deep_equal(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Bool(a[0] == a[1]))
}

pub(super) fn deep_copy(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(a[0].clone())
}
