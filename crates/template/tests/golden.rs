//! Golden tests: every case in `tests/golden/cases.json` must render to the bytes Go's
//! text/template + sprig produced (`expected.json`, written by `tools/gotemplate-oracle`), or fail
//! where Go fails. Regenerate with `scripts/check-template-oracle.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hush_crypto::SecretBytes;
use hush_template::{Options, Preset, Template};

fn load(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Go strings in the fixtures are JSON strings; the oracle decodes `\u00XX` escapes in the data
/// as UTF-8 text, so we do the same.
fn render(case: &serde_json::Value) -> Result<Vec<u8>, String> {
    let preset = match case["preset"].as_str().unwrap() {
        "sealed-secrets" => Preset::SealedSecrets,
        _ => Preset::ExternalSecrets,
    };
    let opts = Options::preset(preset).delimiters(
        case["left"].as_str().unwrap_or_default(),
        case["right"].as_str().unwrap_or_default(),
    );
    let data: BTreeMap<String, SecretBytes> = case["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), SecretBytes::from(v.as_str().unwrap())))
        .collect();
    let name = case["name"].as_str().unwrap();
    let t = Template::parse(name, case["template"].as_str().unwrap(), &opts)
        .map_err(|e| e.to_string())?;
    t.render(&data)
        .map(|o| o.expose().to_vec())
        .map_err(|e| e.to_string())
}

/// Cases where hush knowingly differs (docs/template.md, "Known differences").
const KNOWN_DIFFERENCES: &[&str] = &[];

#[test]
fn matches_go() {
    compare(&load("cases.json"), &load("expected.json"));
}

/// Differential run over any case file and the oracle's output for it, e.g. generated ones:
/// `HUSH_TEMPLATE_CASES=c.json HUSH_TEMPLATE_EXPECTED=e.json cargo test -p hush-template
/// --test golden differential -- --ignored`.
#[test]
#[ignore = "needs generated cases"]
fn differential() {
    let Ok(cases) = std::env::var("HUSH_TEMPLATE_CASES") else {
        eprintln!("HUSH_TEMPLATE_CASES not set: nothing to compare");
        return;
    };
    let read = |path: &str| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let expected = std::env::var("HUSH_TEMPLATE_EXPECTED").expect("HUSH_TEMPLATE_EXPECTED");
    compare(&read(&cases), &read(&expected));
}

fn compare(cases: &serde_json::Value, expected: &serde_json::Value) {
    let expected: BTreeMap<&str, &serde_json::Value> = expected
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    let mut failures = Vec::new();
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if KNOWN_DIFFERENCES.contains(&name) {
            continue;
        }
        let want = expected[name];
        let got = render(case);
        match (want.get("output").and_then(|o| o.as_str()), &got) {
            (Some(w), Ok(g)) if w.as_bytes() == g.as_slice() => {}
            (None, Err(_)) => {}
            (w, g) => failures.push(format!(
                "{name}:\n  go:   {w:?}\n  hush: {:?}",
                g.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The committed fixtures are what Go produces today (regenerates them with the oracle).
#[test]
#[ignore = "needs go"]
fn fixtures_match_go_oracle() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/check-template-oracle.sh"
    );
    let status = std::process::Command::new("bash")
        .arg(script)
        .status()
        .expect("run oracle script");
    assert!(status.success(), "golden fixtures differ from Go's output");
}
