//! YAML 1.1 resolution of a plain scalar as go-yaml v2 (`resolve.go`) does it — what
//! `sigs.k8s.io/yaml` (kubeseal's input, ESO's `fromYaml`) sees, and what decides which strings
//! its writer quotes: plain `yes`/`on`/`y` are booleans, `0755` is octal, `1_000` an int, `1e3`
//! a float, `2001-12-14` a timestamp, `~` null. Checked against Go in `tests/resolve_v2.rs`.

use hush_gocompat::strconv::{parse_int, parse_uint};

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
    if let Some(ts) = parse_timestamp(s) {
        return Resolved::Timestamp(ts);
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

/// go-yaml's `parseTimestamp`: `2006-1-2`, `2006-1-2 15:4:5.999999999` and the RFC 3339 forms
/// with `T`/`t` and a zone; returns the RFC 3339 text `json.Marshal` prints for the time.
fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let year_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year_digits != 4 || b.get(4) != Some(&b'-') {
        return None;
    }
    let mut p = Cursor { b, i: 5 };
    let year: u32 = s[..4].parse().ok()?;
    let month = p.num(1, 2)?;
    p.lit(b'-')?;
    let day = p.num(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if p.i == b.len() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let sep = b[p.i];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    p.i += 1;
    if sep == b' ' {
        // A space in a Go layout matches a run of spaces.
        while b.get(p.i) == Some(&b' ') {
            p.i += 1;
        }
    }
    // Go's stdHour "15", minute "4" and second "5" each take one or two digits.
    let hour = p.num(1, 2)?;
    p.lit(b':')?;
    let min = p.num(1, 2)?;
    p.lit(b':')?;
    let sec = p.num(1, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if p.i < b.len() && b[p.i] == b'.' {
        p.i += 1;
        let st = p.i;
        while p.i < b.len() && b[p.i].is_ascii_digit() {
            p.i += 1;
        }
        if p.i == st {
            return None;
        }
        // Go reads every digit and keeps nanoseconds (the first nine).
        let digits = &s[st..p.i];
        frac = digits[..digits.len().min(9)]
            .trim_end_matches('0')
            .to_owned();
    }
    let time = format!("{hour:02}:{min:02}:{sec:02}");
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let zone = if sep == b' ' {
        if p.i != b.len() {
            return None;
        }
        "Z".to_owned()
    } else {
        match b.get(p.i) {
            Some(b'Z') if p.i + 1 == b.len() => "Z".to_owned(),
            Some(b'+' | b'-') => {
                let sign = b[p.i];
                p.i += 1;
                let zh = p.num(2, 2)?;
                p.lit(b':')?;
                let zm = p.num(2, 2)?;
                // Go accepts offsets up to 24 hours and 60 minutes.
                if p.i != b.len() || zh > 24 || zm > 60 {
                    return None;
                }
                if zh == 0 && zm == 0 {
                    "Z".to_owned()
                } else {
                    format!("{}{zh:02}:{zm:02}", sign as char)
                }
            }
            _ => return None,
        }
    };
    Some(format!("{date}T{time}{frac}{zone}"))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let st = self.i;
        while self.i < self.b.len() && self.i - st < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - st < min {
            return None;
        }
        std::str::from_utf8(&self.b[st..self.i]).ok()?.parse().ok()
    }

    fn lit(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
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
