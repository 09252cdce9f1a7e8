//! YAML 1.1 scalar resolution as go-yaml v2 (`resolve.go`) does it, which is what kubeseal's
//! input decoder (`sigs.k8s.io/yaml` over go-yaml v2) sees: plain `yes`, `on`, `y` are booleans,
//! `0755` is octal, `1e3` a float, `~` null. Used to read input like kubeseal and to decide which
//! strings kubeseal's YAML output quotes.

/// What a plain scalar resolves to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    /// `~`, `null`, `Null`, `NULL`, or empty.
    Null,
    /// YAML 1.1 booleans (`y`, `yes`, `on`, `true`, … and their negatives).
    Bool(bool),
    /// An integer that fits `int64`.
    Int(i64),
    /// An integer that fits only `uint64`.
    Uint(u64),
    /// A float (including `.inf`, `.nan`).
    Float(f64),
    /// A timestamp (`2001-12-14`, …); decoded as its text.
    Timestamp,
    /// Anything else, including `<<` when not used as a merge key.
    Str,
}

/// go-yaml v2 `resolve("", s)` for a plain scalar.
pub(crate) fn resolve(s: &str) -> Resolved {
    let Some(first) = s.bytes().next() else {
        return Resolved::Null;
    };
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match first {
        b'.' => go_parse_float(s).map_or(Resolved::Str, Resolved::Float),
        b'+' | b'-' | b'0'..=b'9' => {
            if is_timestamp(s) {
                return Resolved::Timestamp;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            if let Some(r) = go_parse_int(&plain) {
                return r;
            }
            if yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Resolved::Float(f);
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`: how `sigs.k8s.io/yaml` turns a YAML float into the
/// string a string-typed field receives.
pub(crate) fn go_format_float32(f: f64) -> String {
    // Go converts to float32 first; the narrowing is the point.
    #[allow(clippy::cast_possible_truncation)]
    let x = f as f32;
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest round-trip digits, as Go's 'g' with precision -1.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = usize::try_from(exp + 1).unwrap_or(1);
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        let (i, f) = digits.split_at(int_len);
        format!("{sign}{i}.{f}")
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: base prefixes `0x`, `0o`,
/// `0b`, a leading `0` for octal, an optional sign.
fn go_parse_int(s: &str) -> Option<Resolved> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i128::try_from(v).ok()?;
        i64::try_from(-v).ok().map(Resolved::Int)
    } else if let Ok(i) = i64::try_from(v) {
        Some(Resolved::Int(i))
    } else {
        u64::try_from(v).ok().map(Resolved::Uint)
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
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
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for the inputs that reach it (decimal forms; Rust's parser
/// also accepts "inf"/"nan" words, which are refused here).
fn go_parse_float(s: &str) -> Option<f64> {
    if s.chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// go-yaml's `parseTimestamp` quick check plus the formats it tries: `YYYY-M-D`, optionally
/// followed by `T`/`t` and `h:m:s[.frac]` with `Z` or an offset, or by a space and
/// `h:m:s[.frac]` without zone.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        (*i > start).then(|| s[start..*i].parse().ok()).flatten()
    };
    let Some(month) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let Some(h) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(m) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(sec) = num(&mut i, 2) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if num(&mut i, 9).is_none() {
            return false;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let rest = &s[i + 1..];
            rest.len() == 5 && rest.as_bytes()[2] == b':'
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_go_yaml_v2() {
        assert_eq!(resolve("yes"), Resolved::Bool(true));
        assert_eq!(resolve("Off"), Resolved::Bool(false));
        assert_eq!(resolve("y"), Resolved::Bool(true));
        assert_eq!(resolve("~"), Resolved::Null);
        assert_eq!(resolve("0755"), Resolved::Int(493));
        assert_eq!(resolve("0x1F"), Resolved::Int(31));
        assert_eq!(resolve("1_000"), Resolved::Int(1000));
        assert_eq!(resolve("-0b11"), Resolved::Int(-3));
        assert_eq!(resolve("18446744073709551615"), Resolved::Uint(u64::MAX));
        assert_eq!(resolve("08080"), Resolved::Float(8080.0));
        assert_eq!(resolve("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve(".5"), Resolved::Float(0.5));
        assert_eq!(resolve("2024-01-02"), Resolved::Timestamp);
        assert_eq!(resolve("1.2.3"), Resolved::Str);
        assert_eq!(resolve("<<"), Resolved::Str);
        assert_eq!(resolve("+"), Resolved::Str);
        assert_eq!(resolve("hello"), Resolved::Str);
    }

    #[test]
    fn formats_floats_like_go_g_32() {
        assert_eq!(go_format_float32(8080.0), "8080");
        assert_eq!(go_format_float32(1000.0), "1000");
        assert_eq!(go_format_float32(1.5), "1.5");
        assert_eq!(go_format_float32(0.5), "0.5");
        assert_eq!(go_format_float32(0.0001), "0.0001");
        assert_eq!(go_format_float32(0.00001), "1e-05");
        assert_eq!(go_format_float32(1_000_000.0), "1e+06");
        assert_eq!(go_format_float32(1_234_567.0), "1.234567e+06");
        assert_eq!(go_format_float32(std::f64::consts::PI), "3.1415927");
        assert_eq!(go_format_float32(-2.5), "-2.5");
        assert_eq!(go_format_float32(123_456.0), "123456");
        assert_eq!(
            go_format_float32(1.844_674_407_370_955_2e19),
            "1.8446744e+19"
        );
    }
}
