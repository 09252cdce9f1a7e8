//! Go's `fmt.Sprintf` for the verbs templates use: `%s %d %v %q %x %X %f %F %e %E %g %G %t %c %o
//! %b %T %%`, flags `-+# 0`, width and precision (`*` too). Mismatches print Go's `%!v(type=…)`.

use crate::Budget;
use crate::value::{Value, format_float_g, sprint, write_value};

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
    /// The output budget: padding that would pass it is not written (see [`pad`]).
    max: usize,
}

/// Go's fmt refuses widths and precisions past this (`tooLarge`).
const GO_MAX_WIDTH: i64 = 1_000_000;

/// `fmt.Sprintf(format, args...)`, refused past `max` bytes of output.
pub(crate) fn sprintf(format: &[u8], args: &[Value], max: usize) -> Result<Vec<u8>, Budget> {
    let mut out = Vec::new();
    let mut argi = 0;
    let mut i = 0;
    let end = format.len();
    while i < end {
        if out.len() > max {
            return Err(Budget::OutputBytes);
        }
        let c = format[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec {
            max,
            ..Spec::default()
        };
        while i < format.len() {
            match format[i] {
                b'-' => spec.minus = true,
                b'+' => spec.plus = true,
                b'#' => spec.sharp = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        if i < end && format[i] == b'*' {
            i += 1;
            match int_arg(args.get(argi)) {
                Some(n) => {
                    if n < 0 {
                        // Go: a negative width pads on the right, never with zeros.
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(n.unsigned_abs() as usize);
                }
                None => out.extend_from_slice(b"%!(BADWIDTH)"),
            }
            if argi < args.len() {
                argi += 1;
            }
        } else {
            let (n, next) = parse_num(format, i);
            spec.width = n;
            i = next;
        }
        // Go reads a precision only when a verb can follow the dot.
        if i + 1 < end && format[i] == b'.' {
            i += 1;
            if format[i] == b'*' {
                i += 1;
                match int_arg(args.get(argi)) {
                    Some(n) if n >= 0 => spec.prec = Some(n as usize),
                    _ => out.extend_from_slice(b"%!(BADPREC)"),
                }
                if argi < args.len() {
                    argi += 1;
                }
            } else {
                let (n, next) = parse_num(format, i);
                spec.prec = Some(n.unwrap_or(0));
                i = next;
            }
        }
        if i >= end {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        }
        // Verbs are runes; templates only use ASCII ones.
        let verb_len = utf8_len(format[i]);
        let verb_bytes = &format[i..(i + verb_len).min(format.len())];
        let verb = std::str::from_utf8(verb_bytes)
            .ok()
            .and_then(|s| s.chars().next())
            .unwrap_or('?');
        i += verb_len;
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.extend_from_slice(format!("%!{verb}(MISSING)").as_bytes());
            continue;
        };
        argi += 1;
        // The output is at least the width, and at least the precision of a number.
        let numeric = matches!(arg, Value::Int(_) | Value::Int64(_) | Value::Float(_));
        if spec.width.unwrap_or(0) > max || (numeric && spec.prec.unwrap_or(0) > max) {
            return Err(Budget::OutputBytes);
        }
        format_arg(&mut out, verb, spec, arg);
    }
    if out.len() > max {
        return Err(Budget::OutputBytes);
    }
    if argi < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (k, a) in args[argi..].iter().enumerate() {
            if k > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(a.type_name().as_bytes());
            out.push(b'=');
            write_value(&mut out, a, false);
        }
        out.push(b')');
    }
    if out.len() > max {
        return Err(Budget::OutputBytes);
    }
    Ok(out)
}

/// Go's `intFromArg`: an int argument within Go's width bound, else `None` (BADWIDTH/BADPREC).
fn int_arg(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::Int(n) | Value::Int64(n)) if (-GO_MAX_WIDTH..=GO_MAX_WIDTH).contains(n) => {
            Some(*n)
        }
        _ => None,
    }
}

/// Go's `parsenum`: the decimal number at `i` and the index after it. A number that grows past
/// 10^6 before its last digit makes Go skip the rest of the format (`%!(NOVERB)` follows).
fn parse_num(b: &[u8], i: usize) -> (Option<usize>, usize) {
    let mut num: i64 = 0;
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        if num > GO_MAX_WIDTH {
            return (None, b.len());
        }
        num = num * 10 + i64::from(b[j] - b'0');
        j += 1;
    }
    ((j > i).then_some(num as usize), j)
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// fmt's badVerb: `%!verb(type=value)`, the value printed with `%v` and the verb's flags.
fn bad_verb(out: &mut Vec<u8>, verb: char, spec: Spec, v: &Value) {
    out.extend_from_slice(format!("%!{verb}(").as_bytes());
    match v {
        Value::Nil => out.extend_from_slice(b"<nil>"),
        _ => {
            out.extend_from_slice(v.type_name().as_bytes());
            out.push(b'=');
            format_arg(out, 'v', spec, v);
        }
    }
    out.push(b')');
}

fn format_arg(out: &mut Vec<u8>, verb: char, spec: Spec, v: &Value) {
    if verb == 'T' {
        pad(out, spec, v.type_name().as_bytes().to_vec(), false);
        return;
    }
    match v {
        Value::Nil => match verb {
            'v' => pad(out, spec, b"<nil>".to_vec(), false),
            _ => bad_verb(out, verb, spec, v),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(
                out,
                spec,
                if *b {
                    b"true".to_vec()
                } else {
                    b"false".to_vec()
                },
                false,
            ),
            _ => bad_verb(out, verb, spec, v),
        },
        Value::Int(i) | Value::Int64(i) => fmt_int(out, verb, spec, *i, v),
        Value::Float(f) => fmt_float(out, verb, spec, *f, v),
        Value::Str(s) => fmt_str(out, verb, spec, s, v),
        Value::List(l) => {
            out.push(b'[');
            for (k, x) in l.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                format_elem(out, verb, spec, x);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.extend_from_slice(b"map[");
            for (k, (key, x)) in m.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                format_arg(out, verb, spec, &Value::str(key.as_str()));
                out.push(b':');
                format_elem(out, verb, spec, x);
            }
            out.push(b']');
        }
        Value::StrMap(m) => {
            out.extend_from_slice(b"map[");
            for (k, (key, x)) in m.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                format_arg(out, verb, spec, &Value::str(key.as_str()));
                out.push(b':');
                fmt_str(out, verb, spec, x, &Value::Str(x.clone()));
            }
            out.push(b']');
        }
    }
}

/// An element of a list or map: a nil interface prints `<nil>` whatever the verb.
fn format_elem(out: &mut Vec<u8>, verb: char, spec: Spec, v: &Value) {
    match v {
        Value::Nil => pad(out, spec, b"<nil>".to_vec(), false),
        _ => format_arg(out, verb, spec, v),
    }
}

fn pad(out: &mut Vec<u8>, spec: Spec, body: Vec<u8>, numeric: bool) {
    let width = spec.width.unwrap_or(0);
    let len = String::from_utf8_lossy(&body).chars().count();
    if len >= width {
        out.extend_from_slice(&body);
        return;
    }
    let fill = width - len;
    if out.len().saturating_add(body.len()).saturating_add(fill) > spec.max {
        // Past the output budget (each element of a list gets the width): fill up to one byte
        // past it and stop; sprintf then refuses the result.
        out.resize(spec.max.saturating_add(1).max(out.len()), b' ');
        return;
    }
    if spec.minus {
        out.extend_from_slice(&body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if spec.zero && numeric {
        // Zero padding goes after the sign.
        let (sign, rest) = match body.first() {
            Some(b'-' | b'+' | b' ') => body.split_at(1),
            _ => body.split_at(0),
        };
        out.extend_from_slice(sign);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(rest);
    } else if spec.zero && !numeric {
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(&body);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(&body);
    }
}

fn sign_prefix(spec: Spec, neg: bool) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn fmt_int(out: &mut Vec<u8>, verb: char, spec: Spec, i: i64, v: &Value) {
    let mag = i.unsigned_abs();
    let neg = i < 0;
    let digits = match verb {
        'd' | 'v' => mag.to_string(),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'o' | 'O' => format!("{mag:o}"),
        'b' => format!("{mag:b}"),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, spec, c.to_string().into_bytes(), false);
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, spec, quote_rune(c).into_bytes(), false);
            return;
        }
        'U' => {
            pad(out, spec, format!("U+{mag:04X}").into_bytes(), false);
            return;
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => {
            bad_verb(out, verb, spec, v);
            return;
        }
        _ => {
            bad_verb(out, verb, spec, v);
            return;
        }
    };
    let mut digits = digits;
    if let Some(p) = spec.prec {
        if p == 0 && mag == 0 {
            digits.clear();
        }
        if digits.len() < p {
            digits = "0".repeat(p - digits.len()) + &digits;
        }
    }
    let prefix = if spec.sharp {
        match verb {
            'x' => "0x",
            'X' => "0X",
            'o' => "0",
            'b' => "0b",
            _ => "",
        }
    } else if verb == 'O' {
        "0o"
    } else {
        ""
    };
    let body = format!("{}{prefix}{digits}", sign_prefix(spec, neg));
    let spec = if spec.prec.is_some() {
        Spec {
            zero: false,
            ..spec
        }
    } else {
        spec
    };
    pad(out, spec, body.into_bytes(), true);
}

fn fmt_float(out: &mut Vec<u8>, verb: char, spec: Spec, f: f64, v: &Value) {
    let neg = f.is_sign_negative() && !f.is_nan();
    let a = f.abs();
    let body = match verb {
        'v' | 'g' | 'G' => {
            let s = format_float_g(a, spec.prec);
            if verb == 'G' { s.to_uppercase() } else { s }
        }
        'f' | 'F' => {
            if a.is_finite() {
                fixed(a, spec.prec.unwrap_or(6))
            } else {
                format_float_g(a, None)
            }
        }
        'e' | 'E' => {
            let s = if a.is_finite() {
                let s = scientific(a, spec.prec.unwrap_or(6));
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
            } else {
                format_float_g(a, None)
            };
            if verb == 'E' { s.to_uppercase() } else { s }
        }
        'x' | 'X' if a.is_finite() => {
            let s = hex_float(a);
            if verb == 'X' { s.to_uppercase() } else { s }
        }
        'b' => {
            bad_verb(out, verb, spec, v);
            return;
        }
        _ => {
            bad_verb(out, verb, spec, v);
            return;
        }
    };
    let body = if body.starts_with('+') {
        body
    } else {
        format!("{}{body}", sign_prefix(spec, neg))
    };
    let numeric = a.is_finite();
    pad(out, spec, body.into_bytes(), numeric);
}

/// Fractional digits past which an f64's exact decimal expansion is all zeros (it has at most
/// 1074), so longer precisions are that expansion plus zeros. Rust's formatter refuses
/// precisions over 65535; Go's goes to 10^7.
const EXACT_FRACTION_DIGITS: usize = 1100;

/// Significant digits past which an f64's exact decimal expansion is all zeros (at most 767).
const EXACT_SIGNIFICANT_DIGITS: usize = 800;

/// `strconv.FormatFloat(a, 'f', prec, 64)` for a finite `a`.
fn fixed(a: f64, prec: usize) -> String {
    let mut s = format!("{:.*}", prec.min(EXACT_FRACTION_DIGITS), a);
    if prec > EXACT_FRACTION_DIGITS {
        s.extend(std::iter::repeat_n('0', prec - EXACT_FRACTION_DIGITS));
    }
    s
}

/// Rust's `{:.*e}` (mantissa digits, `e`, exponent) for any precision, exact as Go's.
fn scientific(a: f64, prec: usize) -> String {
    let s = format!("{:.*e}", prec.min(EXACT_SIGNIFICANT_DIGITS), a);
    if prec <= EXACT_SIGNIFICANT_DIGITS {
        return s;
    }
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let zeros = "0".repeat(prec - EXACT_SIGNIFICANT_DIGITS);
    format!("{mant}{zeros}e{exp}")
}

fn fmt_str(out: &mut Vec<u8>, verb: char, spec: Spec, s: &[u8], v: &Value) {
    let s = match spec.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => truncate_runes(s, p),
        _ => s,
    };
    match verb {
        's' | 'v' => pad(out, spec, s.to_vec(), false),
        'q' => {
            let q = if spec.sharp && !s.contains(&b'`') && std::str::from_utf8(s).is_ok() {
                let mut q = b"`".to_vec();
                q.extend_from_slice(s);
                q.push(b'`');
                q
            } else {
                quote(s, spec.plus).into_bytes()
            };
            pad(out, spec, q, false)
        }
        'x' | 'X' => {
            let s = match spec.prec {
                Some(p) => &s[..p.min(s.len())],
                None => s,
            };
            let mut body = String::new();
            for (k, b) in s.iter().enumerate() {
                if spec.space && k > 0 {
                    body.push(' ');
                }
                if spec.sharp && (spec.space || k == 0) {
                    body.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    body.push_str(&format!("{b:02x}"));
                } else {
                    body.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, spec, body.into_bytes(), false)
        }
        _ => bad_verb(out, verb, spec, v),
    }
}

fn truncate_runes(s: &[u8], n: usize) -> &[u8] {
    match std::str::from_utf8(s) {
        Ok(st) => match st.char_indices().nth(n) {
            Some((i, _)) => &s[..i],
            None => s,
        },
        Err(_) => &s[..n.min(s.len())],
    }
}

/// Go's `unicode.IsPrint`, approximated: graphic characters and the ASCII space.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF
        | 0xF0000..=0x10FFFF | 0xD800..=0xDFFF)
}

/// Go's `strconv.Quote` (`ascii_only` = `strconv.QuoteToASCII`, as `%+q`).
pub(crate) fn quote(s: &[u8], ascii_only: bool) -> String {
    let mut out = String::from("\"");
    let mut rest = s;
    while !rest.is_empty() {
        let (c, n) = decode_rune(rest);
        match c {
            None => {
                out.push_str(&format!("\\x{:02x}", rest[0]));
            }
            Some(c) => push_escaped(&mut out, c, '"', ascii_only),
        }
        rest = &rest[n..];
    }
    out.push('"');
    out
}

fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', false);
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, q: char, ascii_only: bool) {
    if c == q || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if (ascii_only && c.is_ascii() && is_print(c)) || (!ascii_only && is_print(c)) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Decodes one UTF-8 rune; `None` with length 1 for an invalid byte (Go's RuneError).
pub(crate) fn decode_rune(b: &[u8]) -> (Option<char>, usize) {
    let n = utf8_len(b[0]).min(b.len());
    for len in (1..=n).rev() {
        if let Ok(s) = std::str::from_utf8(&b[..len])
            && let Some(c) = s.chars().next()
            && c.len_utf8() == len
        {
            return (Some(c), len);
        }
    }
    (None, 1)
}

/// `fmt.Sprint(args...)`: spaces between operands when neither side is a string.
pub(crate) fn sprint_args(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, a) in args.iter().enumerate() {
        if k > 0 && !matches!(a, Value::Str(_)) && !matches!(args[k - 1], Value::Str(_)) {
            out.push(b' ');
        }
        out.extend_from_slice(&sprint(a));
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, and a newline.
pub(crate) fn sprintln_args(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, a) in args.iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&sprint(a));
    }
    out.push(b'\n');
    out
}

/// `strconv.FormatFloat(f, 'x', -1, 64)` for a finite, non-negative `f`.
fn hex_float(f: f64) -> String {
    if f == 0.0 {
        return "0x0p+00".into();
    }
    let bits = f.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        // Subnormal: normalise so that the leading bit is bit 52.
        exp = -1022;
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    } else {
        exp -= 1023;
    }
    let frac = format!("{mant:013x}");
    let frac = frac.trim_end_matches('0');
    let dot = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!(
        "0x1{dot}p{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}
