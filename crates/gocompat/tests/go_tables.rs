//! hush-gocompat against Go: the tables below are the output of `go run ./tools/gocompat-oracle`
//! (Go 1.26), pasted unchanged. Regenerate them when the cases change.
#![allow(clippy::unreadable_literal)]

use hush_gocompat::json::Encoder;
use hush_gocompat::strconv::{parse_int, parse_uint};

const INTS: &[(&str, Option<i64>, Option<u64>)] = &[
    ("0", Some(0), Some(0)),
    ("00", Some(0), Some(0)),
    ("07", Some(7), Some(7)),
    ("08", None, None),
    ("010", Some(8), Some(8)),
    ("-010", Some(-8), None),
    ("+5", Some(5), None),
    ("-0", Some(0), None),
    ("42", Some(42), Some(42)),
    ("-42", Some(-42), None),
    ("0x1F", Some(31), Some(31)),
    ("0X1f", Some(31), Some(31)),
    ("-0x80", Some(-128), None),
    ("0o17", Some(15), Some(15)),
    ("0O17", Some(15), Some(15)),
    ("0b101", Some(5), Some(5)),
    ("0B11", Some(3), Some(3)),
    ("0x", None, None),
    ("0b", None, None),
    ("0o", None, None),
    ("0x_1", Some(1), Some(1)),
    ("0_7", Some(7), Some(7)),
    ("1_000", Some(1000), Some(1000)),
    ("1__0", None, None),
    ("_1", None, None),
    ("1_", None, None),
    ("0_", None, None),
    ("0x-5", None, None),
    ("0x+5", None, None),
    ("--1", None, None),
    ("+-1", None, None),
    ("", None, None),
    ("+", None, None),
    ("-", None, None),
    (" 1", None, None),
    ("1 ", None, None),
    ("1.0", None, None),
    (
        "9223372036854775807",
        Some(9223372036854775807),
        Some(9223372036854775807),
    ),
    ("9223372036854775808", None, Some(9223372036854775808)),
    ("-9223372036854775808", Some(-9223372036854775808), None),
    ("-9223372036854775809", None, None),
    (
        "0x7fffffffffffffff",
        Some(9223372036854775807),
        Some(9223372036854775807),
    ),
    ("0x8000000000000000", None, Some(9223372036854775808)),
    ("18446744073709551615", None, Some(18446744073709551615)),
    ("18446744073709551616", None, None),
    ("0xffffffffffffffff", None, Some(18446744073709551615)),
    ("1e3", None, None),
    ("0b2", None, None),
    ("0o8", None, None),
    ("0xg", None, None),
    ("٣", None, None),
];
/// (input, Marshal with UseNumber, Marshal of any, SetEscapeHTML(false) of any)
const JSON: &[(&str, &str, &str, &str)] = &[
    (
        r#"{"z":1,"a":"<b>&\u2028\u2029","m":{"y":[true,null,1.5],"b":"x\ny"}}"#,
        r#"{"a":"\u003cb\u003e\u0026\u2028\u2029","m":{"b":"x\ny","y":[true,null,1.5]},"z":1}"#,
        r#"{"a":"\u003cb\u003e\u0026\u2028\u2029","m":{"b":"x\ny","y":[true,null,1.5]},"z":1}"#,
        r#"{"a":"<b>&\u2028\u2029","m":{"b":"x\ny","y":[true,null,1.5]},"z":1}"#,
    ),
    (
        r#""\u0001\u0008\u000c\t\r\n\"\\\u001f é""#,
        r#""\u0001\b\f\t\r\n\"\\\u001f é""#,
        r#""\u0001\b\f\t\r\n\"\\\u001f é""#,
        r#""\u0001\b\f\t\r\n\"\\\u001f é""#,
    ),
    (
        r#"{"h":"<&>","k\u003c":{"":[]}}"#,
        r#"{"h":"\u003c\u0026\u003e","k\u003c":{"":[]}}"#,
        r#"{"h":"\u003c\u0026\u003e","k\u003c":{"":[]}}"#,
        r#"{"h":"<&>","k<":{"":[]}}"#,
    ),
    (
        r#"[1, -2, 0.5, 1.5e-7, 100]"#,
        r#"[1,-2,0.5,1.5e-7,100]"#,
        r#"[1,-2,0.5,1.5e-7,100]"#,
        r#"[1,-2,0.5,1.5e-7,100]"#,
    ),
    (
        r#"[1.0, 1e21, 1.5e-7, -0.5, 0.000001, 1e-7, 100, 12.50]"#,
        r#"[1.0,1e21,1.5e-7,-0.5,0.000001,1e-7,100,12.50]"#,
        r#"[1,1e+21,1.5e-7,-0.5,0.000001,1e-7,100,12.5]"#,
        r#"[1,1e+21,1.5e-7,-0.5,0.000001,1e-7,100,12.5]"#,
    ),
];

/// How many documents at the start of `JSON` keep their numbers' text through serde_json.
const NUMBER_TEXT_DOCS: usize = 4;

#[test]
fn parse_int_and_uint_match_go() {
    for (s, int, uint) in INTS {
        assert_eq!(parse_int(s), *int, "ParseInt({s:?}, 0, 64)");
        assert_eq!(parse_uint(s), *uint, "ParseUint({s:?}, 0, 64)");
    }
}

#[test]
fn marshal_matches_go() {
    for (i, (input, use_number, any, no_html)) in JSON.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(input).unwrap();
        if i < NUMBER_TEXT_DOCS {
            assert_eq!(Encoder::MARSHAL.encode(&v), *use_number, "{input}");
        }
        assert_eq!(Encoder::MARSHAL_ANY.encode(&v), *any, "{input}");
        let encoder = Encoder {
            escape_html: false,
            ..Encoder::MARSHAL_ANY
        };
        assert_eq!(encoder.encode(&v), *no_html, "{input}");
    }
}
