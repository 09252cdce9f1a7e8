//! Files written by the real sops 3.11.0 (in `fixtures/`, generated once with a throw-away age
//! key that lives next to them): hush must decrypt each to exactly what `sops decrypt` printed
//! (`*.plain`), refuse tampered copies, and keep IVs of unchanged values when re-sealing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hush_crypto::SystemEntropy;
use hush_keys::KeyRegistry;
use hush_keys::age::{AgePrompt, Identities};
use hush_sops::Error;
use hush_sops::file::{self, Opened};
use hush_sops::stores::{self, Format};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn registry(key_file: &str) -> KeyRegistry {
    let text = std::fs::read_to_string(fixture(key_file)).expect("key");
    let mut r = KeyRegistry::new();
    r.register(Arc::new(Identities::from_text(
        key_file,
        &text,
        AgePrompt::default(),
    )));
    r
}

fn open(name: &str, format: Format, key_file: &str) -> Result<Opened, Error> {
    let bytes = std::fs::read(fixture(name)).expect("fixture");
    open_bytes(&bytes, format, key_file)
}

fn open_bytes(bytes: &[u8], format: Format, key_file: &str) -> Result<Opened, Error> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(file::open(bytes, format, &registry(key_file), &[], false))
}

const CASES: [(&str, Format, &str); 7] = [
    ("sops311.doc.yaml", Format::Yaml, "age-key.txt"),
    ("sops311.doc.json", Format::Json, "age-key.txt"),
    ("sops311.doc.env", Format::Dotenv, "age-key.txt"),
    ("sops311.doc.ini", Format::Ini, "age-key.txt"),
    ("sops311.doc.bin", Format::Binary, "age-key.txt"),
    ("sops311.regex.yaml", Format::Yaml, "age-key.txt"),
    ("sops311.shamir.yaml", Format::Yaml, "age-keys-shamir.txt"),
];

#[test]
fn files_written_by_sops_decrypt_to_what_sops_prints() {
    for (name, format, key) in CASES {
        let opened = open(name, format, key).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = stores::emit_plain(format, &opened.branches, None).expect("emit");
        let expected = std::fs::read(fixture(&format!("{name}.plain"))).expect("plain");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
    }
}

#[test]
fn shamir_needs_the_threshold_of_groups() {
    // One identity opens one of three groups; the threshold is 2.
    let err = open("sops311.shamir.yaml", Format::Yaml, "age-key.txt").expect_err("opened");
    let msg = err.to_string();
    assert!(matches!(err, Error::DataKey(_)), "{msg}");
    assert!(msg.contains("recovered 1 of the 2"), "{msg}");
    assert!(msg.contains("Group 0: FAILED"), "{msg}");
}

#[test]
fn a_foreign_key_cannot_open() {
    let err = open("sops311.doc.yaml", Format::Yaml, "age-keys-other.txt");
    assert!(matches!(err, Err(Error::DataKey(_))));
}

#[test]
fn tampering_is_refused_with_the_right_error_and_no_plaintext() {
    let original = std::fs::read_to_string(fixture("sops311.doc.yaml")).expect("fixture");
    let line = |prefix: &str| -> String {
        original
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .expect("line")
            .to_owned()
    };
    // Change one base64 character right after `field` (keeps the text valid base64).
    let flip = |l: &str, field: &str| -> String {
        let i = l.find(field).expect("field") + field.len();
        let mut b = l.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).expect("utf8")
    };
    let pw = line("password:");
    let mac = line("mac:");
    let lm = line("lastmodified:");
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, String, Check)> = vec![
        (
            "data",
            original.replacen(&pw, &flip(&pw, "data:"), 1),
            |e| matches!(e, Error::Decrypt { path, .. } if path == "db.password"),
        ),
        ("iv", original.replacen(&pw, &flip(&pw, "iv:"), 1), |e| {
            matches!(e, Error::Decrypt { .. })
        }),
        ("tag", original.replacen(&pw, &flip(&pw, "tag:"), 1), |e| {
            matches!(e, Error::Decrypt { .. })
        }),
        (
            "type",
            original.replacen(&pw, &pw.replace("type:str", "type:int"), 1),
            |e| matches!(e, Error::Decrypt { .. }),
        ),
        (
            "mac",
            original.replacen(&mac, &flip(&mac, "data:"), 1),
            |e| matches!(e, Error::MacDecrypt),
        ),
        (
            "lastmodified",
            original.replacen(&lm, &lm.replace("\"20", "\"19"), 1),
            |e| matches!(e, Error::MacDecrypt),
        ),
        (
            "unencrypted value",
            original.replacen(
                "plain_unencrypted: visible",
                "plain_unencrypted: visiblE",
                1,
            ),
            |e| matches!(e, Error::MacMismatch),
        ),
        (
            "moved key",
            original.replacen("    user: ", "    usr: ", 1),
            |e| matches!(e, Error::Decrypt { .. }),
        ),
        (
            "removed value",
            original
                .lines()
                .filter(|l| !l.trim_start().starts_with("ratio:"))
                .collect::<Vec<_>>()
                .join("\n"),
            |e| matches!(e, Error::MacMismatch),
        ),
        ("no mac", original.replace(&mac, "    mac: \"\""), |e| {
            matches!(e, Error::NoMac)
        }),
    ];
    for (what, tampered, check) in cases {
        assert!(tampered != original, "{what}: no change");
        let err = open_bytes(tampered.as_bytes(), Format::Yaml, "age-key.txt")
            .expect_err(&format!("{what}: tampered file accepted"));
        assert!(check(&err), "{what}: unexpected error: {err}");
        let shown = format!("{err} {err:?}");
        for secret in ["s3cr3t", "admin", "5432", "héllo"] {
            assert!(
                !shown.contains(secret),
                "{what}: error shows plaintext: {shown}"
            );
        }
    }
}

#[test]
fn resealing_keeps_unchanged_values_byte_identical() {
    let original = std::fs::read_to_string(fixture("sops311.doc.yaml")).expect("fixture");
    let opened = open("sops311.doc.yaml", Format::Yaml, "age-key.txt").expect("open");
    let out = opened
        .seal(Format::Yaml, None, &mut SystemEntropy)
        .expect("seal");
    let out = String::from_utf8(out).expect("utf8");
    let enc_lines = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains("ENC[") && !l.trim_start().starts_with("mac:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(enc_lines(&out), enc_lines(&original));
    assert!(out.contains("version: 3.13.2"));
    // And it still opens.
    assert!(open_bytes(out.as_bytes(), Format::Yaml, "age-key.txt").is_ok());
}

#[test]
fn metadata_written_by_sops_311_survives_a_rewrite_alphabetically() {
    let opened = open("sops311.shamir.yaml", Format::Yaml, "age-keys-shamir.txt").expect("open");
    let out = opened
        .seal(Format::Yaml, None, &mut SystemEntropy)
        .expect("seal");
    let out = String::from_utf8(out).expect("utf8");
    let meta: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "sops:")
        .filter(|l| l.starts_with("    ") && !l[4..].starts_with([' ', '-']))
        .collect();
    let keys: Vec<String> = meta
        .iter()
        .map(|l| l.trim().split(':').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "key_groups",
            "lastmodified",
            "mac",
            "shamir_threshold",
            "unencrypted_suffix",
            "version"
        ]
    );
    assert!(open_bytes(out.as_bytes(), Format::Yaml, "age-keys-shamir.txt").is_ok());
}
