//! Go's `encoding/json` encoder output for template values (sprig's `toJson` family).

use crate::Budget;
use crate::value::Value;

/// `json.Marshal` (`escape_html`) or an Encoder with `SetEscapeHTML(false)`; `pretty` is
/// `MarshalIndent(v, "", "  ")`. Refused as soon as the text passes `max` bytes (indentation
/// makes pretty output grow with depth times elements).
pub(crate) fn encode(
    v: &Value,
    escape_html: bool,
    pretty: bool,
    max: usize,
) -> Result<Vec<u8>, Budget> {
    let mut out = Vec::new();
    write(
        &mut out,
        v,
        escape_html,
        if pretty { Some(0) } else { None },
        max,
    )?;
    if out.len() > max {
        return Err(Budget::OutputBytes);
    }
    Ok(out)
}

fn newline(out: &mut Vec<u8>, indent: Option<usize>) {
    if let Some(n) = indent {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', 2 * n));
    }
}

fn write(
    out: &mut Vec<u8>,
    v: &Value,
    esc: bool,
    indent: Option<usize>,
    max: usize,
) -> Result<(), Budget> {
    if out.len() > max {
        return Err(Budget::OutputBytes);
    }
    let inner = indent.map(|n| n + 1);
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Int64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(float(*f).as_bytes()),
        Value::Str(s) => string(out, s, esc),
        Value::List(l) => {
            if l.is_empty() {
                out.extend_from_slice(b"[]");
                return Ok(());
            }
            out.push(b'[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, inner);
                write(out, x, esc, inner, max)?;
            }
            newline(out, indent);
            out.push(b']');
        }
        Value::Map(m) => {
            if m.is_empty() {
                out.extend_from_slice(b"{}");
                return Ok(());
            }
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, inner);
                string(out, k.as_bytes(), esc);
                out.push(b':');
                if indent.is_some() {
                    out.push(b' ');
                }
                write(out, x, esc, inner, max)?;
            }
            newline(out, indent);
            out.push(b'}');
        }
        Value::StrMap(m) => {
            let m: std::collections::BTreeMap<String, Value> = m
                .iter()
                .map(|(k, x)| (k.clone(), Value::Str(x.clone())))
                .collect();
            write(out, &Value::Map(m), esc, indent, max)?;
        }
    }
    Ok(())
}

/// Go's float encoding: `'f'` unless the exponent is < -6 or >= 21, then `'e'` with a short exponent.
fn float(f: f64) -> String {
    if !f.is_finite() {
        // json.Marshal fails on these; sprig's toJson then prints "".
        return String::new();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
            .replace("e-0", "e-")
            .replace("e+0", "e+")
    } else {
        // Shortest round-trip digits in positional notation.
        let s = format!("{f}");
        if s == "-0" { "-0".into() } else { s }
    }
}

fn string(out: &mut Vec<u8>, s: &[u8], esc: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        let (c, n) = crate::gofmt::decode_rune(rest);
        match c {
            None => out.extend_from_slice(b"\\ufffd"),
            Some('"') => out.extend_from_slice(b"\\\""),
            Some('\\') => out.extend_from_slice(b"\\\\"),
            Some('\n') => out.extend_from_slice(b"\\n"),
            Some('\r') => out.extend_from_slice(b"\\r"),
            Some('\t') => out.extend_from_slice(b"\\t"),
            Some(c @ ('<' | '>' | '&')) if esc => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c as usize) >> 4]);
                out.push(HEX[(c as usize) & 0xf]);
            }
            Some(c) if (c as u32) < 0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c as usize) >> 4]);
                out.push(HEX[(c as usize) & 0xf]);
            }
            Some('\u{2028}') => out.extend_from_slice(b"\\u2028"),
            Some('\u{2029}') => out.extend_from_slice(b"\\u2029"),
            Some(_) => out.extend_from_slice(&rest[..n]),
        }
        rest = &rest[n..];
    }
    out.push(b'"');
}
