//! sprig's dict functions.

use super::*;

pub(super) fn dict(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    let mut m = BTreeMap::new();
    for pair in a.chunks(2) {
        let k = String::from_utf8_lossy(&strval(&pair[0])).into_owned();
        m.insert(k, pair.get(1).cloned().unwrap_or(Value::str("")));
    }
    Ok(Value::Map(m))
}

pub(super) fn get(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let m = dict_arg(&a[0])?;
    let k = s_string(&a[1])?;
    Ok(m.get(&k).cloned().unwrap_or(Value::str("")))
}

pub(super) fn set(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let mut m = dict_arg(&a[0])?.clone();
    m.insert(s_string(&a[1])?, a[2].clone());
    Ok(Value::Map(m))
}

pub(super) fn unset(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let mut m = dict_arg(&a[0])?.clone();
    m.remove(&s_string(&a[1])?);
    Ok(Value::Map(m))
}

pub(super) fn has_key(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Bool(
        dict_arg(&a[0])?.contains_key(&s_string(&a[1])?),
    ))
}

pub(super) fn pluck(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    let k = s_string(&a[0])?;
    let mut out = Vec::new();
    for d in &a[1..] {
        if let Some(v) = dict_arg(d)?.get(&k) {
            out.push(v.clone());
        }
    }
    Ok(Value::List(out))
}

pub(super) fn keys(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    let mut out = Vec::new();
    for d in &a {
        out.extend(dict_arg(d)?.keys().cloned());
    }
    Ok(strs(out))
}

pub(super) fn values(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::List(dict_arg(&a[0])?.values().cloned().collect()))
}

pub(super) fn pick_omit(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    let m = dict_arg(&a[0])?;
    let names: Vec<String> = a[1..].iter().map(s_string).collect::<Result<_, _>>()?;
    let keep = c.name == "pick";
    Ok(Value::Map(
        m.iter()
            .filter(|(k, _)| names.contains(k) == keep)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
}

pub(super) fn dig(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity_min(&a, 3)?;
    let n = a.len();
    // sprig type-asserts the last argument: nil is an error here.
    if let Value::Nil = a[n - 1] {
        return Err(ferr("interface conversion: value is nil, not a map"));
    }
    let m = dict_arg(&a[n - 1])?;
    let default = &a[n - 2];
    let mut cur = Value::Map(m.clone());
    for k in &a[..n - 2] {
        let k = s_string(k)?;
        let next = match &cur {
            Value::Map(m) => m.get(&k).cloned(),
            _ => return Err(ferr("interface conversion: value is not a map")),
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(default.clone()),
        }
    }
    Ok(cur)
}

pub(super) fn merge(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity_min(&a, 1)?;
    let mut dst = dict_arg(&a[0])?.clone();
    for src in &a[1..] {
        merge_into(&mut dst, dict_arg(src)?, c.name == "mergeOverwrite");
    }
    Ok(Value::Map(dst))
}

/// A `map[string]interface{}` parameter: `map[string]string` is a different Go type.
fn dict_arg(v: &Value) -> Result<&BTreeMap<String, Value>, FuncError> {
    match v {
        Value::Map(m) => Ok(m),
        // A nil map is a valid (empty) map argument.
        Value::Nil => Ok(&EMPTY_MAP),
        other => Err(ferr(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        ))),
    }
}

static EMPTY_MAP: BTreeMap<String, Value> = BTreeMap::new();

fn strs(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::str).collect())
}

fn merge_into(dst: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>, overwrite: bool) {
    // mergo.Merge: fill keys that are missing or empty in dst; recurse into maps.
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Map(d)), Value::Map(s)) => merge_into(d, s, overwrite),
            (Some(d), _) => {
                if overwrite || is_empty(d) {
                    *d = v.clone();
                }
            }
            (None, _) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}
