//! sprig's regular-expression functions (Go RE2 syntax; the `regex` crate is RE2-compatible).

use super::*;

pub(super) fn regex_match(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let s = s_arg(&a[1])?;
    match regex(&a[0], c.meter) {
        Ok(re) => Ok(Value::Bool(re.is_match(s))),
        // sprig's regexMatch ignores a bad pattern; mustRegexMatch reports it.
        Err(e @ FuncError::Budget(_)) => Err(e),
        Err(e) if c.must => Err(e),
        Err(_) => Ok(Value::Bool(false)),
    }
}

pub(super) fn regex_find(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let re = regex(&a[0], c.meter)?;
    Ok(Value::Str(
        re.find(s_arg(&a[1])?)
            .map(|m| m.as_bytes().to_vec())
            .unwrap_or_default(),
    ))
}

pub(super) fn regex_find_all(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let re = regex(&a[0], c.meter)?;
    let s = s_arg(&a[1])?;
    let n = i_arg(&a[2])?;
    let take = usize::try_from(n).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for m in re.find_iter(s).take(take) {
        c.meter.charge(1)?;
        out.push(Value::Str(m.as_bytes().to_vec()));
    }
    Ok(Value::List(out))
}

pub(super) fn regex_replace(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let re = regex(&a[0], c.meter)?;
    let s = s_arg(&a[1])?;
    let repl = s_arg(&a[2])?;
    let literal = c.name == "regexReplaceAllLiteral";
    Ok(Value::Str(regex_replace_all(
        &re, s, repl, literal, c.meter,
    )?))
}

pub(super) fn regex_split(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let re = regex(&a[0], c.meter)?;
    let s = s_arg(&a[1])?;
    let n = i_arg(&a[2])?;
    if n == 0 {
        return Ok(Value::List(Vec::new()));
    }
    Ok(Value::List(
        go_regex_split(&re, s, n, c.meter)?
            .into_iter()
            .map(Value::Str)
            .collect(),
    ))
}

pub(super) fn regex_quote_meta(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, regex::escape)
}

/// Compiled regular expressions are bounded (Go's regexp refuses large programs too); a
/// pattern over the bound is a bad pattern.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn regex(pat: &Value, meter: &mut Meter) -> Result<regex::bytes::Regex, FuncError> {
    let p = s_string(pat)?;
    meter.charge(REGEX_COMPILE_STEPS)?;
    regex::bytes::RegexBuilder::new(&p)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| ferr("error parsing regexp"))
}

/// Steps a regex compilation costs: compiling is far more work than a step.
const REGEX_COMPILE_STEPS: u64 = 1000;

/// Go's `Regexp.Split`: empty matches at the start do not produce an empty first element.
/// `regexp.ReplaceAll` (`$1`, `${name}` expanded) or `ReplaceAllLiteral`, refusing a result
/// over the output budget as it grows (every match may add the whole replacement).
fn regex_replace_all(
    re: &regex::bytes::Regex,
    s: &[u8],
    repl: &[u8],
    literal: bool,
    meter: &mut Meter,
) -> Result<Vec<u8>, FuncError> {
    let template = if literal {
        Vec::new()
    } else {
        go_expand_template(repl)
    };
    let mut out = Vec::new();
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else { continue };
        meter.charge(1)?;
        out.extend_from_slice(&s[last..m.start()]);
        if literal {
            out.extend_from_slice(repl);
        } else {
            caps.expand(&template, &mut out);
        }
        last = m.end();
        meter.check_len(out.len())?;
    }
    out.extend_from_slice(&s[last..]);
    meter.check_len(out.len())?;
    Ok(out)
}

fn go_regex_split(
    re: &regex::bytes::Regex,
    s: &[u8],
    n: i64,
    meter: &mut Meter,
) -> Result<Vec<Vec<u8>>, Budget> {
    if s.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in re.find_iter(s) {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        meter.charge(1)?;
        end = m.start();
        if m.end() != 0 {
            out.push(s[beg..end].to_vec());
        }
        beg = m.end();
    }
    if end != s.len() {
        out.push(s[beg..].to_vec());
    }
    Ok(out)
}

/// Go's `Regexp.Expand` template syntax (`$1`, `${name}`) in the `regex` crate's syntax: the same
/// except that Go treats `$1a` as the group named `1a`, which the crate also does.
fn go_expand_template(repl: &[u8]) -> Vec<u8> {
    repl.to_vec()
}
