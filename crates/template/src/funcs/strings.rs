//! sprig's string functions.

use super::*;

pub(super) fn hello(_: Vec<Value>, _: &mut Call<'_>) -> FResult {
    Ok(Value::str("Hello!"))
}

pub(super) fn trim(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| s.trim_matches(go_space).to_owned())
}

pub(super) fn trim_all(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let cut = s_string(&a[0])?;
    let s = s_string(&a[1])?;
    Ok(Value::str(s.trim_matches(|c| cut.contains(c))))
}

pub(super) fn trim_prefix(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let p = s_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    Ok(Value::str(s.strip_prefix(p).unwrap_or(s)))
}

pub(super) fn trim_suffix(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let p = s_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    Ok(Value::str(s.strip_suffix(p).unwrap_or(s)))
}

pub(super) fn upper(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| s.chars().map(|c| simple_case(c, true)).collect())
}

pub(super) fn lower(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| s.chars().map(|c| simple_case(c, false)).collect())
}

pub(super) fn title_fn(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, title)
}

pub(super) fn untitle(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| {
        let mut out = String::new();
        let mut prev_space = true;
        for c in s.chars() {
            out.push(if prev_space { simple_case(c, false) } else { c });
            prev_space = c.is_whitespace();
        }
        out
    })
}

pub(super) fn swapcase(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| {
        s.chars()
            .map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().collect::<String>()
                } else {
                    c.to_uppercase().collect()
                }
            })
            .collect()
    })
}

pub(super) fn repeat(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let n = i_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    if n < 0 {
        return Err(ferr("negative repeat count"));
    }
    let n = usize::try_from(n).map_err(|_| Budget::OutputBytes)?;
    c.meter.check_product(n, s.len(), 0)?;
    Ok(Value::Str(s.repeat(n)))
}

pub(super) fn substr(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let start = i_arg(&a[0])?;
    let end = i_arg(&a[1])?;
    let s = s_arg(&a[2])?;
    let len = s.len() as i64;
    // Go slicing panics (a template error) out of bounds.
    let oob = || ferr("slice bounds out of range");
    Ok(Value::Str(if start < 0 {
        s.get(..usize::try_from(end).map_err(|_| oob())?)
            .ok_or_else(oob)?
            .to_vec()
    } else if end < 0 || end > len {
        s.get(start as usize..).ok_or_else(oob)?.to_vec()
    } else {
        s.get(start as usize..end as usize)
            .ok_or_else(oob)?
            .to_vec()
    }))
}

pub(super) fn nospace(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    // goutils.DeleteWhiteSpace works byte by byte, reading each byte as a Latin-1 rune.
    arity(&a, 1)?;
    let s = s_arg(&a[0])?;
    let out: String = s
        .iter()
        .map(|&b| char::from(b))
        .filter(|c| !c.is_whitespace())
        .collect();
    Ok(Value::str(out))
}

pub(super) fn trunc(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let c = i_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    let len = s.len() as i64;
    Ok(Value::Str(if c < 0 && len + c > 0 {
        s[(len + c) as usize..].to_vec()
    } else if c >= 0 && len > c {
        s[..c as usize].to_vec()
    } else {
        s.to_vec()
    }))
}

pub(super) fn abbrev(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let w = i_arg(&a[0])?;
    let s = s_string(&a[1])?;
    Ok(Value::str(abbreviate(&s, 0, w)))
}

pub(super) fn abbrevboth(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let l = i_arg(&a[0])?;
    let r = i_arg(&a[1])?;
    let s = s_string(&a[2])?;
    Ok(Value::str(abbreviate(&s, l, r)))
}

pub(super) fn initials(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    // goutils.Initials works byte by byte, reading each byte as a Latin-1 rune.
    arity(&a, 1)?;
    let mut out = String::new();
    let mut gap = true;
    for &b in s_arg(&a[0])? {
        let c = char::from(b);
        if c.is_whitespace() {
            gap = true;
        } else if gap {
            out.push(c);
            gap = false;
        }
    }
    Ok(Value::str(out))
}

pub(super) fn contains(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let sub = s_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    Ok(Value::Bool(memchr::memmem::find(s, sub).is_some()))
}

pub(super) fn has_prefix(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Bool(s_arg(&a[1])?.starts_with(s_arg(&a[0])?)))
}

pub(super) fn has_suffix(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    Ok(Value::Bool(s_arg(&a[1])?.ends_with(s_arg(&a[0])?)))
}

pub(super) fn quote_each(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    let mut parts = Vec::new();
    for v in &a {
        if matches!(v, Value::Nil) {
            continue;
        }
        let s = strval(v);
        parts.push(if c.name == "quote" {
            quote(&s, false).into_bytes()
        } else {
            let mut q = b"'".to_vec();
            q.extend_from_slice(&s);
            q.push(b'\'');
            q
        });
    }
    Ok(Value::Str(parts.join(&b' ')))
}

pub(super) fn cat(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    let parts: Vec<Vec<u8>> = a
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(strval)
        .collect();
    Ok(Value::Str(parts.join(&b' ')))
}

pub(super) fn indent(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let n = i_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    let n = usize::try_from(n.max(0)).map_err(|_| Budget::OutputBytes)?;
    let lines = memchr::memchr_iter(b'\n', s).count() + 1;
    c.meter.check_product(lines, n, s.len() + 1)?;
    let pad = vec![b' '; n];
    let mut out = Vec::with_capacity(lines * n + s.len() + 1);
    if c.name == "nindent" {
        out.push(b'\n');
    }
    out.extend_from_slice(&pad);
    for &c in s {
        out.push(c);
        if c == b'\n' {
            out.extend_from_slice(&pad);
        }
    }
    Ok(Value::Str(out))
}

pub(super) fn replace(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let old = s_arg(&a[0])?;
    let new = s_arg(&a[1])?;
    let s = s_arg(&a[2])?;
    Ok(Value::Str(replace_all(s, old, new, c.meter)?))
}

pub(super) fn plural(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let one = s_arg(&a[0])?;
    let many = s_arg(&a[1])?;
    let n = i_arg(&a[2])?;
    Ok(Value::Str(if n == 1 {
        one.to_vec()
    } else {
        many.to_vec()
    }))
}

pub(super) fn snakecase(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| words_case(s, '_'))
}

pub(super) fn kebabcase(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| words_case(s, '-'))
}

pub(super) fn camelcase(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str1(&a, |s| {
        s.split(['_', '-', ' '])
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    })
}

pub(super) fn wrap(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let n = i_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    Ok(Value::Str(word_wrap(s, n, b"\n", false, c.meter)?))
}

pub(super) fn wrap_with(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let n = i_arg(&a[0])?;
    let sep = s_arg(&a[1])?;
    let s = s_arg(&a[2])?;
    Ok(Value::Str(word_wrap(s, n, sep, true, c.meter)?))
}

pub(super) fn to_string(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(Value::Str(strval(&a[0])))
}

pub(super) fn to_strings(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    Ok(match &a[0] {
        Value::List(l) => Value::List(l.iter().map(|v| Value::Str(strval(v))).collect()),
        Value::Nil => Value::List(Vec::new()),
        other => Value::List(vec![Value::Str(strval(other))]),
    })
}

pub(super) fn split(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let sep = s_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    // map[string]string, as in sprig.
    Ok(Value::StrMap(
        split_bytes(s, sep, None, c.meter)?
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), p))
            .collect(),
    ))
}

pub(super) fn splitn(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 3)?;
    let sep = s_arg(&a[0])?;
    let n = i_arg(&a[1])?;
    let s = s_arg(&a[2])?;
    let parts = if n == 0 {
        Vec::new()
    } else {
        split_bytes(s, sep, usize::try_from(n).ok(), c.meter)?
    };
    Ok(Value::StrMap(
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), p))
            .collect(),
    ))
}

pub(super) fn split_list(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let sep = s_arg(&a[0])?;
    let s = s_arg(&a[1])?;
    Ok(Value::List(
        split_bytes(s, sep, None, c.meter)?
            .into_iter()
            .map(Value::Str)
            .collect(),
    ))
}

pub(super) fn join(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let sep = s_arg(&a[0])?;
    let items: Vec<Vec<u8>> = match &a[1] {
        Value::List(l) => l
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    };
    let bytes = items
        .iter()
        .map(Vec::len)
        .fold(0usize, usize::saturating_add);
    c.meter
        .check_product(items.len().saturating_sub(1), sep.len(), bytes)?;
    Ok(Value::Str(items.join(sep)))
}

pub(super) fn sort_alpha(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    match &a[0] {
        Value::List(l) => {
            let mut v: Vec<Vec<u8>> = l.iter().map(strval).collect();
            c.meter.charge(sort_cost(v.len()))?;
            v.sort();
            Ok(Value::List(v.into_iter().map(Value::Str).collect()))
        }
        other => Ok(Value::List(vec![Value::Str(strval(other))])),
    }
}

/// Steps of sorting `n` items (n log n comparisons).
fn sort_cost(n: usize) -> u64 {
    let n = n as u64;
    n.saturating_mul(u64::from(u64::BITS - n.leading_zeros()))
}

fn go_space(c: char) -> bool {
    c.is_whitespace()
}

fn title(s: &str) -> String {
    // strings.Title: uppercase letters that follow a separator.
    let mut out = String::new();
    let mut prev = ' ';
    for c in s.chars() {
        let sep = !(prev.is_alphanumeric()
            || prev == '_'
            || (!prev.is_ascii() && !prev.is_whitespace() && !prev.is_ascii_punctuation()));
        out.push(if sep { simple_case(c, true) } else { c });
        prev = c;
    }
    out
}

fn abbreviate(s: &str, offset: i64, width: i64) -> String {
    // goutils.AbbreviateFull.
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let ab = "...";
    if width < 4 || (offset > 0 && width < 7) || len <= width {
        return s.to_string();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    if offset <= 4 {
        return chars[..(width - 3) as usize].iter().collect::<String>() + ab;
    }
    if width < 7 {
        return s.to_string();
    }
    if offset + width - 3 < len {
        let inner: String = chars[offset as usize..].iter().collect();
        return ab.to_string() + &abbreviate(&inner, 0, width - 3);
    }
    ab.to_string()
        + &chars[(len - (width - 3)) as usize..]
            .iter()
            .collect::<String>()
}

fn words_case(s: &str, sep: char) -> String {
    // xstrings.ToSnakeCase / ToKebabCase (simplified: split on case changes and non-alnum).
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_uppercase())
                    && next.is_some_and(|n| n.is_lowercase()));
            if boundary && !out.ends_with(sep) {
                out.push(sep);
            }
            out.extend(c.to_lowercase());
        } else if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(sep) {
            out.push(sep);
        }
    }
    out.trim_end_matches(sep).to_string()
}

/// goutils.WrapCustom, byte by byte as in Go. Every line adds a separator, so the result is
/// checked against the output budget as it grows.
fn word_wrap(
    s: &[u8],
    n: i64,
    sep: &[u8],
    wrap_long: bool,
    meter: &Meter,
) -> Result<Vec<u8>, Budget> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let sep: &[u8] = if sep.is_empty() { b"\n" } else { sep };
    let n = n.max(1) as usize;
    let len = s.len();
    let mut off = 0;
    let mut out = Vec::new();
    while len - off > n {
        meter.check_len(out.len())?;
        if s[off] == b' ' {
            off += 1;
            continue;
        }
        let end = (n + off + 1).min(len);
        match s[off..end].iter().rposition(|&c| c == b' ') {
            Some(i) => {
                out.extend_from_slice(&s[off..off + i]);
                out.extend_from_slice(sep);
                off += i + 1;
            }
            None if wrap_long => {
                out.extend_from_slice(&s[off..off + n]);
                out.extend_from_slice(sep);
                off += n;
            }
            None => {
                let end = n + off;
                match s[end..].iter().position(|&c| c == b' ') {
                    None => {
                        out.extend_from_slice(&s[off..]);
                        off = len;
                    }
                    Some(i) => {
                        out.extend_from_slice(&s[off..end + i]);
                        out.extend_from_slice(sep);
                        off = end + i + 1;
                    }
                }
            }
        }
    }
    out.extend_from_slice(&s[off..]);
    meter.check_len(out.len())?;
    Ok(out)
}

/// `strings.Replace(s, old, new, -1)`; the result's size is known before it is built.
fn replace_all(s: &[u8], old: &[u8], new: &[u8], meter: &Meter) -> Result<Vec<u8>, Budget> {
    if old.is_empty() {
        // strings.Replace with an empty old inserts `new` around every rune.
        let mut runes = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let (_, n) = decode_rune(rest);
            runes += 1;
            rest = &rest[n..];
        }
        meter.check_product(runes + 1, new.len(), s.len())?;
        let mut out = new.to_vec();
        let mut rest = s;
        while !rest.is_empty() {
            let (_, n) = decode_rune(rest);
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(new);
            rest = &rest[n..];
        }
        return Ok(out);
    }
    let hits = memchr::memmem::find_iter(s, old).count();
    meter.check_product(hits, new.len(), s.len() - hits * old.len())?;
    let mut out = Vec::with_capacity(s.len() - hits * old.len() + hits * new.len());
    let mut last = 0;
    for at in memchr::memmem::find_iter(s, old) {
        out.extend_from_slice(&s[last..at]);
        out.extend_from_slice(new);
        last = at + old.len();
    }
    out.extend_from_slice(&s[last..]);
    Ok(out)
}

/// strings.SplitN semantics (`n` None = all); one step per piece.
fn split_bytes(
    s: &[u8],
    sep: &[u8],
    n: Option<usize>,
    meter: &mut Meter,
) -> Result<Vec<Vec<u8>>, Budget> {
    let mut out = Vec::new();
    if sep.is_empty() {
        let mut rest = s;
        while !rest.is_empty() {
            meter.charge(1)?;
            if n.is_some_and(|n| out.len() + 1 == n) {
                out.push(rest.to_vec());
                return Ok(out);
            }
            let (_, k) = decode_rune(rest);
            out.push(rest[..k].to_vec());
            rest = &rest[k..];
        }
        return Ok(out);
    }
    let mut start = 0;
    for at in memchr::memmem::find_iter(s, sep) {
        if n.is_some_and(|n| out.len() + 1 == n) {
            break;
        }
        meter.charge(1)?;
        out.push(s[start..at].to_vec());
        start = at + sep.len();
    }
    out.push(s[start..].to_vec());
    Ok(out)
}

/// Go's `unicode.ToUpper`/`ToLower`: one rune to one rune (no "ß" → "SS").
fn simple_case(c: char, upper: bool) -> char {
    let it: Vec<char> = if upper {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    match it.as_slice() {
        [one] => *one,
        // "İ" lowers to "i" plus a combining dot; Go's single-rune mapping gives "i".
        [first, rest @ ..] if rest.iter().all(|m| ('\u{300}'..='\u{36f}').contains(m)) => *first,
        _ => c,
    }
}
