//! Go's `encoding/json` encoder applied to decoded JSON: object keys sorted, compact, strings
//! escaped as `appendString` escapes them.

use serde_json::Value;

/// How Go's encoder is set up and what the value went through before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    /// Numbers are Go `float64`s (the value went through `json.Unmarshal` into `any`): `1.0`
    /// prints `1`, `1e21` prints `1e+21`. Otherwise numbers keep their JSON text
    /// (`json.Number`).
    pub float64: bool,
    /// `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026` (`json.Marshal`); false is an encoder
    /// with `SetEscapeHTML(false)`.
    pub escape_html: bool,
}

impl Encoder {
    /// `json.Marshal` of a value decoded with `UseNumber`: numbers as written.
    pub const MARSHAL: Encoder = Encoder {
        float64: false,
        escape_html: true,
    };

    /// `json.Marshal` of a value decoded into `any`: numbers are `float64`.
    pub const MARSHAL_ANY: Encoder = Encoder {
        float64: true,
        escape_html: true,
    };

    /// The encoding of `v`.
    pub fn encode(self, v: &Value) -> String {
        let mut out = String::new();
        self.write(&mut out, v);
        out
    }

    /// Appends the encoding of `v` to `out`.
    pub fn write(self, out: &mut String, v: &Value) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) if self.float64 => out.push_str(&float64_text(n)),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => write_string(out, s, self.escape_html),
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(out, x);
                }
                out.push(']');
            }
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, k, self.escape_html);
                    out.push(':');
                    self.write(out, &o[k.as_str()]);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string as Go's encoder writes it (`encoding/json` `appendString`, Go 1.22 and later:
/// `\b` and `\f` have short escapes).
pub fn write_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => push_u_escape(out, c),
            // Line and paragraph separators break JavaScript; Go always escapes them.
            '\u{2028}' | '\u{2029}' => push_u_escape(out, c),
            c if u32::from(c) < 0x20 => push_u_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_u_escape(out: &mut String, c: char) {
    out.push_str(&format!("\\u{:04x}", u32::from(c)));
}

/// Go's `float64` JSON text: `'f'` format, `'e'` (with a sign and at least one exponent digit)
/// below 1e-6 and from 1e21.
fn float64_text(n: &serde_json::Number) -> String {
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}
