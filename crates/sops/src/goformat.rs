//! Go's number, boolean and time text forms, as sops produces and parses them.
//!
//! - `format_f`: `strconv.FormatFloat(v, 'f', -1, 64)` (value plaintext, never an exponent).
//! - `format_g`: `strconv.FormatFloat(v, 'g', -1, 64)` with go-yaml's `.inf`/`.nan` (YAML output).
//! - `format_json`: `encoding/json`'s float form (`1e+21`, `1e-7`).
//! - timestamps: go-yaml v3's accepted layouts, Go's RFC 3339 (nano) output.

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

/// A parsed timestamp with its offset (seconds east of UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: i32,
}

impl Timestamp {
    /// Go's `time.RFC3339Nano` text: fraction without trailing zeros, `Z` for a zero offset.
    pub fn nano(&self) -> String {
        let mut s = self.base();
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push_str(&self.zone());
        s
    }

    /// Go's `time.RFC3339` text (whole seconds), as sops writes `lastmodified` and uses as the
    /// MAC's associated data.
    pub fn rfc3339(&self) -> String {
        let mut s = self.base();
        s.push_str(&self.zone());
        s
    }

    fn base(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    fn zone(&self) -> String {
        if self.offset == 0 {
            "Z".into()
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let a = self.offset.unsigned_abs();
            format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
        }
    }

    /// Now, in UTC, whole seconds.
    pub fn now_utc() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    /// A UTC timestamp from Unix seconds.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
            nanos: 0,
            offset: 0,
        }
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn parse_ts(s: &str, strict: bool) -> Option<Timestamp> {
    let mut c = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let (dmin, dmax) = if strict { (2, 2) } else { (1, 2) };
    let year = c.num(4, 4)? as i32;
    if !c.eat(b'-') {
        return None;
    }
    let month = c.num(dmin, dmax)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.num(dmin, dmax)?;
    let mut ts = Timestamp {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if c.done() {
        return if strict { None } else { Some(ts) };
    }
    let sep = c.s[c.i];
    let space = sep == b' ';
    if !(sep == b'T' || (!strict && (sep == b't' || space))) {
        return None;
    }
    c.i += 1;
    ts.hour = c.num(dmin, dmax)?;
    if !c.eat(b':') {
        return None;
    }
    ts.minute = c.num(dmin, dmax)?;
    if !c.eat(b':') {
        return None;
    }
    ts.second = c.num(dmin, dmax)?;
    if ts.hour > 23 || ts.minute > 59 || ts.second > 59 {
        return None;
    }
    if c.eat(b'.') {
        let start = c.i;
        while c.i < c.s.len() && c.s[c.i].is_ascii_digit() {
            c.i += 1;
        }
        let frac = &s[start..c.i];
        if frac.is_empty() {
            return None;
        }
        let mut n = 0u32;
        for (k, d) in frac.bytes().take(9).enumerate() {
            n += u32::from(d - b'0') * 10u32.pow(8 - k as u32);
        }
        ts.nanos = n;
    }
    if c.done() {
        // "2006-1-2 15:4:5" has no zone (UTC); the T forms require one.
        return if space { Some(ts) } else { None };
    }
    if space {
        return None;
    }
    if c.eat(b'Z') {
        return c.done().then_some(ts);
    }
    let neg = if c.eat(b'+') {
        false
    } else if c.eat(b'-') {
        true
    } else {
        return None;
    };
    let h = c.num(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let m = c.num(2, 2)?;
    if !c.done() || h > 23 || m > 59 {
        return None;
    }
    let off = (h * 3600 + m * 60) as i32;
    ts.offset = if neg { -off } else { off };
    Some(ts)
}

/// A plain YAML scalar that go-yaml v3 resolves to a timestamp.
pub fn parse_yaml_timestamp(s: &str) -> Option<Timestamp> {
    parse_ts(s, false)
}

/// Go's `time.Parse(time.RFC3339, s)` (fractional seconds accepted).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    parse_ts(s, true)
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

    #[test]
    fn timestamps_like_go() {
        let t = parse_yaml_timestamp("2024-01-02").map(|t| t.nano());
        assert_eq!(t.as_deref(), Some("2024-01-02T00:00:00Z"));
        let t = parse_yaml_timestamp("2024-01-02T03:04:05.123+02:00").map(|t| t.nano());
        assert_eq!(t.as_deref(), Some("2024-01-02T03:04:05.123+02:00"));
        let t = parse_rfc3339("2026-11-26T03:43:09.123+00:00").map(|t| t.rfc3339());
        assert_eq!(t.as_deref(), Some("2026-11-26T03:43:09Z"));
        assert!(parse_yaml_timestamp("2024-13-02").is_none());
        assert!(parse_yaml_timestamp("2024-01-02T03:04:05").is_none());
        assert!(parse_yaml_timestamp("1234").is_none());
        assert_eq!(
            Timestamp::from_unix(1_700_000_000).rfc3339(),
            "2023-11-14T22:13:20Z"
        );
    }
}
