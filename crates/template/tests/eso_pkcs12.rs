//! ESO's PKCS#12 *encoders* (`pemToPkcs12*`, `fullPemToPkcs12*`, `pemTruststoreToPKCS12*`) use
//! random salts, so their bytes cannot be compared with Go's. These tests open what hush writes:
//! with hush's own decoder (`pkcs12key`/`pkcs12cert`), and (ignored, run in CI) with openssl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use hush_crypto::SecretBytes;
use hush_template::{Options, Preset, Template};

fn fixtures() -> BTreeMap<String, SecretBytes> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/eso");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "pfx"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, SecretBytes::from(std::fs::read(&p).unwrap()))
        })
        .collect()
}

fn render(tmpl: &str) -> Result<String, String> {
    let t = Template::parse("t", tmpl, &Options::preset(Preset::ExternalSecrets))
        .map_err(|e| e.to_string())?;
    t.render(&fixtures())
        .map(|o| String::from_utf8(o.expose().to_vec()).unwrap())
        .map_err(|e| e.to_string())
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/eso")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn key_and_certificate_round_trip_through_hush_decoder() {
    let key = render(
        r#"{{ pemToPkcs12Pass (index . "leaf.crt") (index . "leaf.key") "pw" | b64dec | pkcs12keyPass "pw" }}"#,
    )
    .unwrap();
    assert_eq!(key, fixture("leaf.key"));
    let cert = render(
        r#"{{ pemToPkcs12Pass (index . "chain.pem") (index . "leaf.key") "pw" | b64dec | pkcs12certPass "pw" }}"#,
    )
    .unwrap();
    // Only the first certificate: pemToPkcs12 ignores the rest of the bundle.
    assert_eq!(cert, fixture("leaf.crt"));
    let wrong = render(
        r#"{{ pemToPkcs12Pass (index . "leaf.crt") (index . "leaf.key") "pw" | b64dec | pkcs12keyPass "other" }}"#,
    );
    assert!(wrong.is_err());
}

#[test]
fn full_chain_and_key_formats() {
    // PKCS#1 RSA key, whole chain, empty password: certificates come back leaf first.
    let cert = render(
        r#"{{ fullPemToPkcs12 (index . "chain-shuffled.pem") (index . "leaf.pkcs1.key") | b64dec | pkcs12cert }}"#,
    );
    // chain-shuffled starts with the root: that is the "leaf" argument, so the chain is root +
    // leaf + intermediate, which still orders to leaf -> intermediate -> root.
    assert_eq!(cert.unwrap(), fixture("chain.pem"));
    let key = render(
        r#"{{ fullPemToPkcs12 (index . "chain.pem") (index . "leaf.pkcs1.key") | b64dec | pkcs12key }}"#,
    )
    .unwrap();
    assert_eq!(key, fixture("leaf.key"));
    // SEC1 EC key: Go's PKCS#8 form comes back.
    let ec = render(
        r#"{{ pemToPkcs12 (index . "ec.crt") (index . "ec.sec1.key") | b64dec | pkcs12key }}"#,
    )
    .unwrap();
    assert_eq!(ec, fixture("ec.key"));
}

#[test]
fn bad_input_is_an_error_without_data() {
    for t in [
        r#"{{ pemToPkcs12 "not pem" (index . "leaf.key") }}"#,
        r#"{{ pemToPkcs12 (index . "leaf.crt") "not pem" }}"#,
        r#"{{ pemToPkcs12 (index . "leaf.key") (index . "leaf.key") }}"#,
        r#"{{ fullPemToPkcs12 (printf "%s\n\n" (index . "chain.pem")) (index . "leaf.key") }}"#,
        r#"{{ pemTruststoreToPKCS12 "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }}"#,
    ] {
        let e = render(t).unwrap_err();
        assert!(!e.contains("MII"), "error shows data: {e}");
    }
}

/// Writes the rendered base64 PKCS#12 to a file and runs `openssl pkcs12` on it.
fn openssl_open(tmpl: &str, password: &str, extra: &[&str]) -> String {
    let b64 = render(tmpl).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.p12");
    std::fs::write(&file, der).unwrap();
    let out = Command::new("openssl")
        .args(["pkcs12", "-in"])
        .arg(&file)
        .args(["-passin", &format!("pass:{password}"), "-nodes", "-info"])
        .args(extra)
        .output()
        .expect("openssl must be installed for this test");
    assert!(
        out.status.success(),
        "openssl refused the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = String::from_utf8(out.stdout).unwrap();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

fn der_of(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn pem_bodies(text: &str, kind: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {kind}-----");
    let end = format!("-----END {kind}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let after = &rest[i..];
        let j = after.find(&end).unwrap() + end.len();
        out.push(der_of(&after[..j]));
        rest = &after[j..];
    }
    out
}

#[test]
#[ignore = "interop: needs openssl (run in CI with --include-ignored)"]
fn openssl_opens_keystores() {
    let out = openssl_open(
        r#"{{ fullPemToPkcs12Pass (index . "chain.pem") (index . "leaf.key") "s3cret" }}"#,
        "s3cret",
        &[],
    );
    assert!(out.contains("PBES2, PBKDF2, AES-256-CBC"), "{out}");
    assert!(out.contains("MAC: sha256"), "{out}");
    assert_eq!(
        pem_bodies(&out, "PRIVATE KEY"),
        vec![der_of(&fixture("leaf.key"))]
    );
    let mut certs = pem_bodies(&out, "CERTIFICATE");
    let mut want = pem_bodies(&fixture("chain.pem"), "CERTIFICATE");
    certs.sort();
    want.sort();
    assert_eq!(certs, want);

    // Empty password, EC key.
    let out = openssl_open(
        r#"{{ pemToPkcs12 (index . "ec.crt") (index . "ec.key") }}"#,
        "",
        &[],
    );
    assert_eq!(
        pem_bodies(&out, "PRIVATE KEY"),
        vec![der_of(&fixture("ec.key"))]
    );
    assert_eq!(
        pem_bodies(&out, "CERTIFICATE"),
        vec![der_of(&fixture("ec.crt"))]
    );
}

#[test]
#[ignore = "interop: needs openssl (run in CI with --include-ignored)"]
fn openssl_opens_truststores() {
    let out = openssl_open(
        r#"{{ pemTruststoreToPKCS12Pass (index . "chain.pem") "pw" }}"#,
        "pw",
        &["-nokeys"],
    );
    let mut certs = pem_bodies(&out, "CERTIFICATE");
    let mut want = pem_bodies(&fixture("chain.pem"), "CERTIFICATE");
    certs.sort();
    want.sort();
    assert_eq!(certs, want);
    assert!(pem_bodies(&out, "PRIVATE KEY").is_empty());
    // Java's trusted-certificate attribute (2.16.840.1.113894.746875.1.1).
    assert!(out.contains("2.16.840.1.113894.746875.1.1"), "{out}");
}
