//! `cargo bench -p hush-template --bench eso`: parse + render of ESO's own template functions on
//! the golden test PKI (compare with tools/gotemplate-oracle over the same templates; see
//! docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failure is the assertion

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use hush_crypto::SecretBytes;
use hush_template::{Options, Preset, Template};

/// (name, template) pairs; the same list is in docs/benchmarks.md for the Go run.
pub const CASES: &[(&str, &str)] = &[
    ("toYaml", r#"{{ index . "doc.json" | fromJson | toYaml }}"#),
    ("fromYaml", r#"{{ (index . "doc.yaml" | fromYaml).k7 }}"#),
    (
        "filterPEM",
        r#"{{ index . "bundle" | filterPEM "CERTIFICATE" }}"#,
    ),
    (
        "filterCertChain",
        r#"{{ index . "chain.pem" | filterCertChain "root" }}"#,
    ),
    (
        "pkcs12keyPass",
        r#"{{ index . "leaf-pass.pfx" | b64dec | pkcs12keyPass "s3cret" }}"#,
    ),
    (
        "pemToPkcs12Pass",
        r#"{{ pemToPkcs12Pass (index . "leaf.crt") (index . "leaf.key") "pw" }}"#,
    ),
    (
        "jwkPrivateKeyPem",
        r#"{{ index . "jwk" | jwkPrivateKeyPem }}"#,
    ),
    (
        "rsaDecrypt",
        r#"{{ index . "leaf.key" | rsaDecrypt "RSA-OAEP" "SHA256" (index . "oaep-sha256.b64" | b64dec) }}"#,
    ),
];

fn data() -> BTreeMap<String, SecretBytes> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/eso");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let b64 = |v: Vec<u8>| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(v)
            .into_bytes()
    };
    let doc: serde_json::Map<String, serde_json::Value> = (0..50)
        .map(|i| {
            (
                format!("k{i}"),
                serde_json::json!({"user": format!("u{i}"), "n": i, "tags": ["a b", "yes"]}),
            )
        })
        .collect();
    let doc = serde_json::Value::Object(doc);
    let yaml = (0..50)
        .map(|i| format!("k{i}: {{user: u{i}, n: {i}, tags: [a b, 'yes']}}\n"))
        .collect::<String>();
    let mut bundle = read("leaf.key");
    bundle.extend(read("chain.pem"));
    BTreeMap::from([
        (
            "doc.json".into(),
            SecretBytes::new(doc.to_string().into_bytes()),
        ),
        ("doc.yaml".into(), SecretBytes::new(yaml.into_bytes())),
        ("bundle".into(), SecretBytes::new(bundle)),
        ("chain.pem".into(), SecretBytes::new(read("chain.pem"))),
        (
            "leaf-pass.pfx".into(),
            SecretBytes::new(b64(read("leaf-pass.pfx"))),
        ),
        ("leaf.crt".into(), SecretBytes::new(read("leaf.crt"))),
        ("leaf.key".into(), SecretBytes::new(read("leaf.key"))),
        (
            "oaep-sha256.b64".into(),
            SecretBytes::new(read("oaep-sha256.b64")),
        ),
        (
            "jwk".into(),
            SecretBytes::from(
                r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#,
            ),
        ),
    ])
}

fn eso_functions(c: &mut Criterion) {
    let data = data();
    let opts = Options::preset(Preset::ExternalSecrets);
    let mut g = c.benchmark_group("eso");
    for (name, text) in CASES {
        // Fail before measuring if a case does not render.
        Template::parse(name, text, &opts)
            .unwrap()
            .render(&data)
            .unwrap();
        g.bench_function(*name, |b| {
            b.iter(|| {
                Template::parse(name, black_box(text), &opts)
                    .unwrap()
                    .render(black_box(&data))
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, eso_functions);
criterion_main!(benches);
