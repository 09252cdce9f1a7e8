//! Template values: the subset of Go types that JSON data and sprig produce, and Go's `%v` printing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A template value. Strings are byte strings, as in Go: decrypted secrets need not be UTF-8.
///
/// `Debug` never shows contents: values are secrets.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Go's invalid `reflect.Value` (a missing map key) or an untyped `nil`; prints `<no value>`
    /// at top level and `<nil>` inside containers.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i64),
    /// `int64` (sprig's integer math results); Go rejects it where an `int` is wanted.
    Int64(i64),
    /// `float64`.
    Float(f64),
    /// `string` (bytes).
    Str(Vec<u8>),
    /// `[]interface{}`.
    List(Vec<Value>),
    /// `map[string]interface{}`.
    Map(BTreeMap<String, Value>),
    /// `map[string]string`: the controllers' data. A missing key indexes to `""`, and sprig's dict
    /// functions reject it, as in Go.
    StrMap(BTreeMap<String, Vec<u8>>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value::{}(<redacted>)", self.kind())
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Vec<u8>>) -> Self {
        Value::Str(s.into())
    }

    /// Go's `reflect.Kind` name, as sprig's `kindOf` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) | Value::StrMap(_) => "map",
        }
    }

    /// Go's type name, as `printf "%T"` and sprig's `typeOf` print it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::StrMap(_) => "map[string]string",
        }
    }

    /// Go's truth (`if`, `and`, `or`, `not`): the zero value and empty containers are false.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
        }
    }

    /// Converts JSON data (numbers become `float64`, as Go's `encoding/json` does).
    pub fn from_json(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON; strings that are not UTF-8 are converted lossily.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) | Value::Int64(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(String::from_utf8_lossy(s).into_owned()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::StrMap(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            serde_json::Value::String(String::from_utf8_lossy(v).into()),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// Appends Go's `%v` rendering of `v` (`fmt.Fprint`). `top` renders `Nil` as `<no value>`
/// (text/template's printValue), otherwise as `<nil>`.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value, top: bool) {
    match v {
        Value::Nil if top => out.extend_from_slice(b"<no value>"),
        Value::Nil => out.extend_from_slice(b"<nil>"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) | Value::Int64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(format_float_g(*f, None).as_bytes()),
        Value::Str(s) => out.extend_from_slice(s),
        Value::List(l) => {
            out.push(b'[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_value(out, x, false);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.extend_from_slice(b"map[");
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b':');
                write_value(out, x, false);
            }
            out.push(b']');
        }
        Value::StrMap(m) => {
            out.extend_from_slice(b"map[");
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b':');
                out.extend_from_slice(x);
            }
            out.push(b']');
        }
    }
}

/// `fmt.Sprint(v)` as bytes.
pub(crate) fn sprint(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v, false);
    out
}

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` (`prec` None = shortest), as `%v` prints floats.
pub(crate) fn format_float_g(f: f64, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Digits and decimal exponent via Rust's shortest / fixed-precision scientific formatting.
    // Past 767 significant digits an f64's decimal expansion is all zeros, which are trimmed
    // below; Rust's formatter refuses precisions over 65535.
    let sci = match prec {
        None => format!("{f:e}"),
        Some(p) => format!("{:.*e}", (p.max(1) - 1).min(800), f),
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut digits = digits.trim_end_matches('0').to_string();
    if digits.is_empty() {
        digits.push('0');
    }
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1);
            if p > digits.len() && digits.len() >= (exp + 1).max(0) as usize {
                digits.len()
            } else {
                p
            }
        }
    };
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp < -4 || exp >= eprec as i32 {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let _ = write!(s, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(&digits);
    } else {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            s.push_str(&digits);
            for _ in digits.len()..int_len {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..int_len]);
            s.push('.');
            s.push_str(&digits[int_len..]);
        }
    }
    s
}
