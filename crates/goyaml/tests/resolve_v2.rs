//! `resolve_v2` against Go: tests/fixtures/resolve_v2_go.jsonl is what go-yaml v2
//! (`sigs.k8s.io/yaml/goyaml.v2` v1.4.0) decodes for `k: <scalar>`, one line per case of
//! resolve_v2_cases.txt (curated edge cases plus random digit/sign/dot/colon strings and dates).
//! Regenerate: `cd tools/goyaml-oracle && go build -o /tmp/goyaml-oracle . &&
//! /tmp/goyaml-oracle < ../../crates/goyaml/tests/fixtures/resolve_v2_cases.txt`.

use hush_goyaml::{Resolved, resolve_v2};
use serde_json::Value;

/// Go's `strconv.FormatFloat(f, 'b', -1, 64)`: the exact binary value, `mantissa p exponent`.
fn go_format_b(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let bits = f.to_bits();
    let sign = if bits >> 63 == 1 { "-" } else { "" };
    let exp = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let frac = bits & ((1 << 52) - 1);
    let (mant, e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), exp - 1075)
    };
    format!("{sign}{mant}p{e:+}")
}

#[test]
fn plain_scalars_resolve_as_go_yaml_v2() {
    let fixture = include_str!("fixtures/resolve_v2_go.jsonl");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in fixture.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let input = case["in"].as_str().unwrap();
        let value = case["value"].as_str().unwrap_or_default();
        let expected = case["type"].as_str().unwrap();
        if expected == "error" {
            continue; // not a plain scalar in this position (e.g. `- x`)
        }
        let got = match resolve_v2(input) {
            Resolved::Null => ("null", String::new()),
            Resolved::Bool(b) => ("bool", b.to_string()),
            Resolved::Int(i) => ("int", i.to_string()),
            Resolved::Uint(u) => ("uint", u.to_string()),
            Resolved::Float(f) => ("float", go_format_b(f)),
            Resolved::Timestamp(t) => ("timestamp", format!("\"{t}\"")),
            Resolved::Merge | Resolved::Str => ("str", String::new()),
        };
        checked += 1;
        // Go resolves a `+24:00` offset but cannot print it as JSON: compare the type only.
        let unprintable = expected == "timestamp" && value.is_empty();
        if got.0 != expected || (!unprintable && got.1 != value) {
            wrong.push(format!("{input:?}: Go {expected} {value}, hush {got:?}"));
        }
    }
    assert!(checked > 2500, "fixture too small: {checked}");
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
