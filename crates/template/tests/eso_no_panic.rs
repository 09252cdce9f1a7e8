//! ESO's functions on hostile input: random bytes and damaged copies of real PEM, PKCS#12 and
//! JWK data must give a value or an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use hush_crypto::SecretBytes;
use hush_template::{Options, Preset, Template};
use proptest::prelude::*;

const TEMPLATES: &[&str] = &[
    r#"{{ filterPEM "CERTIFICATE" .in }}"#,
    r#"{{ filterCertChain "leaf" .in }}{{ filterCertChain "intermediate" .in }}{{ filterCertChain "root" .in }}"#,
    r#"{{ certSANs .in }}"#,
    r#"{{ pkcs12key .in }}{{ pkcs12cert .in }}"#,
    r#"{{ pkcs12keyPass "s3cret" .in }}"#,
    r#"{{ pemToPkcs12 .in .in }}"#,
    r#"{{ fullPemToPkcs12Pass .in .in "x" }}"#,
    r#"{{ pemTruststoreToPKCS12 .in }}"#,
    r#"{{ jwkPublicKeyPem .in }}{{ jwkPrivateKeyPem .in }}"#,
    r#"{{ fromYaml .in | toYaml }}"#,
    r#"{{ fromYaml .in | toJson }}"#,
    r#"{{ rsaDecrypt "RSA-OAEP" "SHA256" .in .in }}"#,
];

fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/eso");
    let mut out: Vec<Vec<u8>> = [
        "chain.pem",
        "leaf.key",
        "ec.sec1.key",
        "leaf-pass.pfx",
        "leaf-legacy.pfx",
    ]
    .iter()
    .map(|n| std::fs::read(dir.join(n)).unwrap())
    .collect();
    out.push(br#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","d":"AAAA"}"#.to_vec());
    out.push(br#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"AQ","q":"AQ","dp":"AQ","dq":"AQ","qi":"AQ"}"#.to_vec());
    out.push(b"a: &x [1, *x]\nb: {c: [d, {e: f}]}\n".to_vec());
    out.push(b"-----BEGIN X-----\nK: v\n-----END X-----\n".to_vec());
    out
}

fn run(input: Vec<u8>) {
    let data = BTreeMap::from([("in".to_owned(), SecretBytes::from(input))]);
    for t in TEMPLATES {
        let t = Template::parse("t", t, &Options::preset(Preset::ExternalSecrets)).unwrap();
        let _ = t.render(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes(input in prop::collection::vec(any::<u8>(), 0..400)) {
        run(input);
    }

    #[test]
    fn damaged_real_data(seed in 0usize..9, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut b = seeds().swap_remove(seed);
        for (at, byte) in edits {
            let i = at.index(b.len());
            b[i] = byte;
        }
        let keep = cut.index(b.len() + 1);
        b.truncate(keep.max(b.len() / 2));
        run(b);
    }
}

#[test]
fn base64_of_garbage_pkcs12_is_an_error() {
    let junk =
        base64::engine::general_purpose::STANDARD.encode([0x30u8, 0x82, 0xff, 0xff, 1, 2, 3]);
    let data = BTreeMap::from([("in".to_owned(), SecretBytes::from(junk.as_str()))]);
    let t = Template::parse(
        "t",
        "{{ .in | b64dec | pkcs12key }}",
        &Options::preset(Preset::ExternalSecrets),
    )
    .unwrap();
    assert!(t.render(&data).is_err());
}
