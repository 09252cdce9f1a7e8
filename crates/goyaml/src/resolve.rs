//! YAML 1.1 resolution of a plain scalar as go-yaml v2 (`resolve.go`) does it — what
//! `sigs.k8s.io/yaml` (kubeseal's input, ESO's `fromYaml`) sees, and what decides which strings
//! its writer quotes: plain `yes`/`on`/`y` are booleans, `0755` is octal, `1_000` an int, `1e3`
//! a float, `2001-12-14` a timestamp, `~` null. Checked against Go in `tests/resolve_v2.rs`.

use hush_gocompat::strconv::{parse_int, parse_uint};
use hush_gocompat::time::parse_yaml_timestamp;

/// A plain scalar's resolved value under go-yaml v2's rules (YAML 1.1 booleans, `~`, ints with
/// `_`, `0x`/`0o`/`0b`/leading-zero octal, floats, timestamps).
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// empty, `~`, `null`, `Null`, `NULL`.
    Null,
    /// YAML 1.1 booleans (`y`, `yes`, `on`, `true`, … and their negatives).
    Bool(bool),
    /// An integer that fits Go's `int` (64 bits).
    Int(i64),
    /// An integer that fits only `uint64`.
    Uint(u64),
    /// A float, `.inf` and `.nan` included; out-of-range decimals stay strings.
    Float(f64),
    /// A timestamp, as the RFC 3339 text `json.Marshal` prints for it.
    Timestamp(String),
    /// `<<`, the merge key.
    Merge,
    /// Anything else.
    Str,
}

/// True when go-yaml v2's writer leaves the string plain (it reads back as a string). `<<`
/// counts: go-yaml prints it unquoted (`k: <<`), as kubeseal's output shows.
pub fn resolves_to_string(s: &str) -> bool {
    matches!(resolve(s), Resolved::Str | Resolved::Merge)
}

/// go-yaml v2 `resolve("", s)` for a plain (unquoted, untagged) scalar.
pub fn resolve(s: &str) -> Resolved {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        "<<" => return Resolved::Merge,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        return go_parse_float(s).map_or(Resolved::Str, Resolved::Float);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Resolved::Str;
    }
    if let Some(ts) = parse_yaml_timestamp(s) {
        return Resolved::Timestamp(ts.nano());
    }
    let plain = s.replace('_', "");
    if let Some(i) = parse_int(&plain) {
        return Resolved::Int(i);
    }
    if let Some(u) = parse_uint(&plain) {
        return Resolved::Uint(u);
    }
    if is_yaml_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Resolved::Float(f);
    }
    if let Some(bits) = plain.strip_prefix("0b") {
        if let Ok(i) = i64::from_str_radix(bits, 2) {
            return Resolved::Int(i);
        }
        if let Ok(u) = u64::from_str_radix(bits, 2) {
            return Resolved::Uint(u);
        }
    } else if let Some(bits) = plain.strip_prefix("-0b")
        && let Ok(i) = i64::from_str_radix(&format!("-{bits}"), 2)
    {
        return Resolved::Int(i);
    }
    Resolved::Str
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if b.first() == Some(&b'.') {
        i = 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms YAML produces (no hex floats, `inf`
/// or `nan` words, which go-yaml never passes here). Out of range is an error in Go, so the
/// scalar stays a string. `_` is Go literal syntax: only between two digits.
fn go_parse_float(s: &str) -> Option<f64> {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    if b.is_empty()
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+' | b'_'))
    {
        return None;
    }
    let digit_at = |i: Option<usize>| i.and_then(|i| b.get(i)).is_some_and(u8::is_ascii_digit);
    let underscores_ok = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'_')
        .all(|(i, _)| digit_at(i.checked_sub(1)) && digit_at(Some(i + 1)));
    if !underscores_ok {
        return None;
    }
    s.replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_key_is_written_plain() {
        // Go: yaml.Marshal(map[string]string{"k": "<<"}) == "k: <<\n".
        assert_eq!(resolve("<<"), Resolved::Merge);
        assert!(resolves_to_string("<<"));
        assert!(!resolves_to_string("yes"));
    }
}
