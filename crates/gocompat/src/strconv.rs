//! Go's `strconv` integer parsing.

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then decimal, `0x`, `0o`, `0b` or
/// leading-zero octal digits, with `_` allowed only between digits; `None` where Go returns an
/// error (syntax or range).
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(body)?;
    if neg {
        // -(1 << 63) is the one magnitude past i64::MAX that fits.
        (magnitude <= 1 << 63).then(|| (magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: as [`parse_int`] without a sign.
pub fn parse_uint(s: &str) -> Option<u64> {
    let (radix, digits) = split_base_prefix(s);
    if digits.is_empty() {
        // Go reads "0" as an empty octal body after the leading zero: zero.
        return (s == "0").then_some(0);
    }
    let mut value: u64 = 0;
    let mut underscores = false;
    for c in digits.chars() {
        if c == '_' {
            underscores = true;
            continue;
        }
        let d = c.to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
    }
    if underscores && !underscores_between_digits(s) {
        return None;
    }
    Some(value)
}

/// The radix a base-0 literal names and the digits after its prefix.
fn split_base_prefix(s: &str) -> (u32, &str) {
    let b = s.as_bytes();
    if b.first() != Some(&b'0') {
        return (10, s);
    }
    // Go needs a digit after a two-letter prefix ("0x" alone is octal "x": an error).
    match b.get(1).map(u8::to_ascii_lowercase) {
        Some(b'x') if b.len() >= 3 => (16, &s[2..]),
        Some(b'o') if b.len() >= 3 => (8, &s[2..]),
        Some(b'b') if b.len() >= 3 => (2, &s[2..]),
        _ => (8, &s[1..]),
    }
}

/// Go's `underscoreOK`: each `_` follows a digit (or the base prefix) and precedes a digit.
/// `ParseInt`, `ParseUint` and `ParseFloat` refuse a base-0 literal where this is false.
pub fn underscores_between_digits(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let (mut i, mut hex) = (0, false);
    // What the previous character was: a digit or base prefix, an underscore, or neither.
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let mut saw = Saw::Start;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = Saw::Digit;
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else if saw == Saw::Underscore {
            return false;
        } else {
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}
