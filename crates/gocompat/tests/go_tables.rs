//! hush-gocompat against Go: the tables below are the output of `go run ./tools/gocompat-oracle`
//! (Go 1.26), pasted unchanged. Regenerate them when the cases change.
#![allow(clippy::unreadable_literal)]

use hush_gocompat::json::Encoder;
use hush_gocompat::strconv::{parse_int, parse_uint};
use hush_gocompat::time::{Timestamp, parse_rfc3339, parse_yaml_timestamp};

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

/// (input, go-yaml's timestamp as RFC3339Nano, time.Parse(RFC3339) as RFC3339)
const TIMES: &[(&str, Option<&str>, Option<&str>)] = &[
    ("2024-01-02", Some("2024-01-02T00:00:00Z"), None),
    ("2024-1-2", Some("2024-01-02T00:00:00Z"), None),
    (
        "2024-01-02T03:04:05Z",
        Some("2024-01-02T03:04:05Z"),
        Some("2024-01-02T03:04:05Z"),
    ),
    ("2024-01-02t03:04:05Z", Some("2024-01-02T03:04:05Z"), None),
    (
        "2024-01-02T03:04:05.123+02:00",
        Some("2024-01-02T03:04:05.123+02:00"),
        Some("2024-01-02T03:04:05+02:00"),
    ),
    (
        "2024-01-02T03:04:05.1234567890123-07:30",
        Some("2024-01-02T03:04:05.123456789-07:30"),
        Some("2024-01-02T03:04:05-07:30"),
    ),
    ("2024-01-02 03:04:05", Some("2024-01-02T03:04:05Z"), None),
    ("2024-01-02  3:4:5.5", Some("2024-01-02T03:04:05.5Z"), None),
    ("2024-1-2T3:4:5Z", Some("2024-01-02T03:04:05Z"), None),
    (
        "2024-01-02T03:04:05+00:00",
        Some("2024-01-02T03:04:05Z"),
        Some("2024-01-02T03:04:05Z"),
    ),
    ("2024-01-02T03:04:05", None, None),
    ("2024-01-02T03:04:05.Z", None, None),
    ("2024-01-02 03:04:05Z", None, None),
    ("2024-13-02", None, None),
    ("2023-02-29", None, None),
    ("2024-02-29", Some("2024-02-29T00:00:00Z"), None),
    ("2024-01-02T24:00:00Z", None, None),
    (
        "2024-01-02T03:04:05+24:00",
        Some("2024-01-02T03:04:05+24:00"),
        Some("2024-01-02T03:04:05+24:00"),
    ),
    (
        "2024-01-02T03:04:05+23:59",
        Some("2024-01-02T03:04:05+23:59"),
        Some("2024-01-02T03:04:05+23:59"),
    ),
    ("2024-01-02T03:04:05+25:00", None, None),
    (
        "2024-01-02T03:04:05+01:60",
        Some("2024-01-02T03:04:05+02:00"),
        Some("2024-01-02T03:04:05+02:00"),
    ),
    ("2024-01-02T03:04:05+1:00", None, None),
    ("1234", None, None),
    ("12024-01-02", None, None),
    ("2024-01-02x", None, None),
    (
        "2024-01-02T03:04:05,5Z",
        Some("2024-01-02T03:04:05.5Z"),
        Some("2024-01-02T03:04:05Z"),
    ),
    ("2024-01-02 03:04:05.", None, None),
    ("0000-01-01", Some("0000-01-01T00:00:00Z"), None),
    (
        "2024-01-02T3:04:05Z",
        Some("2024-01-02T03:04:05Z"),
        Some("2024-01-02T03:04:05Z"),
    ),
    ("2024-01-02T03:4:05Z", Some("2024-01-02T03:04:05Z"), None),
    ("2024-1-02T03:04:05Z", Some("2024-01-02T03:04:05Z"), None),
    ("2024-01-02T03:04:5Z", Some("2024-01-02T03:04:05Z"), None),
    ("2024-01-02 ", None, None),
    ("2024-01-02T03:04:05+01:00x", None, None),
    ("2024-01-02T03:04:05ZZ", None, None),
    (
        "2024-01-02T03:04:05-00:30",
        Some("2024-01-02T03:04:05-00:30"),
        Some("2024-01-02T03:04:05-00:30"),
    ),
    (
        "2024-01-02T03:04:05.000Z",
        Some("2024-01-02T03:04:05Z"),
        Some("2024-01-02T03:04:05Z"),
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

#[test]
fn timestamps_match_go() {
    for (s, yaml, rfc3339) in TIMES {
        let got = parse_yaml_timestamp(s).map(|t| t.nano());
        assert_eq!(got.as_deref(), *yaml, "go-yaml parseTimestamp({s:?})");
        let got = parse_rfc3339(s).map(|t| t.rfc3339());
        assert_eq!(got.as_deref(), *rfc3339, "time.Parse(RFC3339, {s:?})");
    }
    // time.Unix(1700000000, 0).UTC().Format(time.RFC3339)
    assert_eq!(
        Timestamp::from_unix(1_700_000_000).rfc3339(),
        "2023-11-14T22:13:20Z"
    );
}
