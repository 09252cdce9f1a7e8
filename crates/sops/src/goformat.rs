//! Go's number, boolean and time text forms, as sops produces and parses them.
//!
//! - `format_f`: `strconv.FormatFloat(v, 'f', -1, 64)` (value plaintext, never an exponent).
//! - `format_g`: `strconv.FormatFloat(v, 'g', -1, 64)` with go-yaml's `.inf`/`.nan` (YAML output).
//! - `format_json`: `encoding/json`'s float form (`1e+21`, `1e-7`).
//!
//! Timestamps are hush_gocompat::time's (go-yaml's layouts, RFC 3339).

/// `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, no exponent.
pub fn format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Rust's Display is the shortest round-trip representation without an exponent.
        format!("{v}")
    }
}

/// Shortest digits and decimal exponent of a finite, non-zero float: `(digits, exp)` with the
/// value = 0.d1d2… × 10^(exp+1), i.e. `exp` is the exponent of the first digit.
fn shortest_digits(v: f64) -> (String, i32) {
    let s = format!("{:e}", v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn format_e(neg: bool, digits: &str, exp: i32, e: char) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn format_g_with(v: f64, e: char) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_f(v);
    }
    let (digits, exp) = shortest_digits(v);
    // strconv: shortest %g uses an exponent below 1e-4 or from 1e6 on (eprec = 6).
    if !(-4..6).contains(&exp) {
        format_e(v < 0.0, &digits, exp, e)
    } else {
        format_f(v)
    }
}

/// `strconv.FormatFloat(v, 'g', -1, 64)` as go-yaml writes floats (`.inf`, `-.inf`, `.nan`).
pub fn format_yaml_float(v: f64) -> String {
    if v.is_nan() {
        return ".nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    format_g_with(v, 'e')
}

/// `strconv.FormatFloat(v, 'G', -1, 64)` (sops' `ValToString` for the flat stores).
pub fn format_g_upper(v: f64) -> String {
    format_g_with(v, 'E')
}

/// `encoding/json`'s float form; `None` for NaN and infinities (Go refuses them).
pub fn format_json(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, exp) = shortest_digits(v);
        let mut s = format_e(v < 0.0, &digits, exp, 'e');
        // Go cleans e-09 to e-9 (and e+09 stays? no: only negative two-digit exponents).
        if let Some(pos) = s.find("e-0") {
            s.remove(pos + 2);
        } else if let Some(pos) = s.find("e+0") {
            s.remove(pos + 2);
        }
        Some(s)
    } else {
        Some(format_f(v))
    }
}

/// `strconv.Atoi` on 64-bit: optional sign and decimal digits.
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `strconv.ParseFloat(s, 64)` for the forms sops writes (decimal, exponent, `±Inf`, `NaN`).
pub fn parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse().ok()
}

/// `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(format_f(0.5), "0.5");
        assert_eq!(format_f(1e20), "100000000000000000000");
        assert_eq!(
            format_f(1.2345678901234568e29),
            "123456789012345680000000000000"
        );
        assert_eq!(format_f(f64::INFINITY), "+Inf");
        assert_eq!(format_f(f64::NAN), "NaN");
        assert_eq!(format_f(-0.0), "-0");
        assert_eq!(format_f(1.0), "1");
        assert_eq!(format_yaml_float(1e20), "1e+20");
        assert_eq!(format_yaml_float(0.5), "0.5");
        assert_eq!(format_yaml_float(1234567.0), "1.234567e+06");
        assert_eq!(format_yaml_float(123456.0), "123456");
        assert_eq!(format_yaml_float(0.0001), "0.0001");
        assert_eq!(format_yaml_float(0.00001), "1e-05");
        assert_eq!(format_yaml_float(-0.0), "-0");
        assert_eq!(format_yaml_float(3.25), "3.25");
        assert_eq!(
            format_yaml_float(1.2345678901234567e19),
            "1.2345678901234567e+19"
        );
        assert_eq!(format_json(1e21).as_deref(), Some("1e+21"));
        assert_eq!(format_json(1e20).as_deref(), Some("100000000000000000000"));
        assert_eq!(format_json(1.0).as_deref(), Some("1"));
        assert_eq!(format_json(1e-7).as_deref(), Some("1e-7"));
        assert_eq!(format_json(1.5).as_deref(), Some("1.5"));
    }
}
