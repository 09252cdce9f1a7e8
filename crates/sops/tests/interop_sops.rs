//! Interop with the real sops 3.11.0 in both directions, every store, age keys.
//!
//! Needs the peers that `scripts/dev-env.sh` installs (`HUSH_PEERS_ENV`, default
//! `$HOME/.cache/hush/peers.env`: `HUSH_PEER_SOPS`, `HUSH_PEER_AGE_KEYGEN`). A missing peer is a
//! failure, never a skip. Run with `cargo test -p hush-sops -- --ignored`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hush_crypto::SystemEntropy;
use hush_keys::KeyRegistry;
use hush_keys::age::{AgeKey, AgePrompt, Identities};
use hush_sops::Error;
use hush_sops::file::{self, EncryptOptions};
use hush_sops::keys::KeySpec;
use hush_sops::stores::{self, Format};

fn peers() -> HashMap<String, String> {
    let path = std::env::var("HUSH_PEERS_ENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/hush/peers.env",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("peers env file {path}: {e}; run scripts/dev-env.sh"));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

fn peer(name: &str) -> PathBuf {
    let p = peers();
    let v = p.get(name).unwrap_or_else(|| {
        panic!("{name} missing from the peers env file; run scripts/dev-env.sh")
    });
    assert!(Path::new(v).exists(), "{name}={v} does not exist");
    PathBuf::from(v)
}

struct Env {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    key_text: String,
    recipient: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key.txt");
    let out = Command::new(peer("HUSH_PEER_AGE_KEYGEN"))
        .arg("-o")
        .arg(&key_file)
        .output()
        .expect("age-keygen");
    assert!(out.status.success(), "age-keygen failed");
    let key_text = std::fs::read_to_string(&key_file).expect("key file");
    let recipient = key_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    Env {
        dir,
        key_file,
        key_text,
        recipient,
    }
}

fn sops(env: &Env, args: &[&str]) -> std::process::Output {
    Command::new(peer("HUSH_PEER_SOPS"))
        .args(args)
        .current_dir(env.dir.path())
        .env("SOPS_AGE_KEY_FILE", &env.key_file)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_RECIPIENTS")
        .output()
        .expect("run sops")
}

fn registry(env: &Env) -> KeyRegistry {
    let mut r = KeyRegistry::new();
    r.register(Arc::new(Identities::from_text(
        "test key",
        &env.key_text,
        AgePrompt::default(),
    )));
    r
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn hush_decrypt(env: &Env, bytes: &[u8], format: Format) -> Result<Vec<u8>, Error> {
    let opened = rt().block_on(file::open(bytes, format, &registry(env), &[], false))?;
    stores::emit_plain(format, &opened.branches, None)
}

fn hush_encrypt(env: &Env, bytes: &[u8], format: Format) -> Vec<u8> {
    let key = AgeKey::from_recipient(&env.recipient).expect("recipient");
    let opts = EncryptOptions {
        groups: vec![vec![KeySpec::from_service(Arc::new(key))]],
        ..EncryptOptions::default()
    };
    rt().block_on(file::encrypt(
        bytes,
        format,
        format,
        opts,
        None,
        &mut SystemEntropy,
    ))
    .expect("hush encrypt")
}

const YAML: &str = r#"# top comment
db:
  user: admin  # inline comment
  password: s3cr3t
  port: 5432
  ratio: 0.5
  big: 1.0e+20
  enabled: true
  disabled: false
  empty: ""
  nothing: null
  when: 2024-01-02T03:04:05Z
  day: 2024-01-02
  hex: 0x1F
  unicode: "héllo wörld ✓"
  emoji: "😀"
  quoted: "yes"
  number_string: "42"
  multi: |
    line one
    line two
  stripped: |-
    no newline
  spaced: 'a: b'
list:
  - one
  - 2
  - 3.25
  - {nested: x}
  # comment in list
  - [a, b]
plain_unencrypted: visible
anchors:
  base: &b {k: v}
  copy: *b
empty_map: {}
empty_list: []
---
second: doc
n: 7
"#;

/// `user: admin  # inline comment` of [`YAML`] as hush (like sops 3.13) and sops 3.11 print it.
const INLINE_HUSH: &str = "    user: admin # inline comment\n";
const INLINE_SOPS311: &str = "    # inline comment\n    user: admin\n";

const JSON: &str = r#"{"a":"x","n":5,"f":1.5,"big":12345678901234567890,"b":false,"nul":null,"arr":[1,"two",{"k":"v"}],"o":{"p":{"q":"deep <&>"}},"u":"\u00e9\u2028","e":{},"l":[]}"#;

const DOTENV: &str =
    "# comment line\nKEY=value\nMULTI=line1\\nline2\nEMPTY=\nNUM=42\nSPACED = yes \n";

const INI: &str = "[DEFAULT]\ntop = t\n\n[sec]\n; c1\nk = v\nn = 3\n\n[other]\n# hash comment\nlonger_key = some value\n";

fn binary() -> Vec<u8> {
    (0..1000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

fn cases() -> Vec<(&'static str, Format, Vec<u8>)> {
    vec![
        ("doc.yaml", Format::Yaml, YAML.as_bytes().to_vec()),
        ("doc.json", Format::Json, JSON.as_bytes().to_vec()),
        ("doc.env", Format::Dotenv, DOTENV.as_bytes().to_vec()),
        ("doc.ini", Format::Ini, INI.as_bytes().to_vec()),
        ("doc.bin", Format::Binary, binary()),
    ]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn sops_encrypts_hush_decrypts_byte_identical_to_sops_decrypt() {
    let env = env();
    for (name, format, plain) in cases() {
        let path = env.dir.path().join(name);
        std::fs::write(&path, &plain).expect("write");
        let out = sops(&env, &["encrypt", "--age", &env.recipient, name]);
        assert!(
            out.status.success(),
            "sops encrypt {name}: {}",
            text(&out.stderr)
        );
        let enc = out.stdout;
        let enc_path = env.dir.path().join(format!("enc.{name}"));
        std::fs::write(&enc_path, &enc).expect("write");
        let expected = sops(&env, &["decrypt", &format!("enc.{name}")]);
        assert!(
            expected.status.success(),
            "sops decrypt {name}: {}",
            text(&expected.stderr)
        );
        let ours = hush_decrypt(&env, &enc, format)
            .unwrap_or_else(|e| panic!("hush decrypt of sops' {name}: {e}"));
        assert_eq!(
            text(&ours),
            text(&expected.stdout),
            "hush's decryption of sops' {name} differs from sops'"
        );
    }
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn hush_encrypts_sops_decrypts() {
    let env = env();
    for (name, format, plain) in cases() {
        let enc = hush_encrypt(&env, &plain, format);
        let enc_name = format!("hush.{name}");
        std::fs::write(env.dir.path().join(&enc_name), &enc).expect("write");
        let out = sops(&env, &["decrypt", &enc_name]);
        assert!(
            out.status.success(),
            "sops could not decrypt hush's {name}: {}\n{}",
            text(&out.stderr),
            text(&enc)
        );
        // What sops prints must equal what hush prints for the same file, except that hush
        // keeps `k: v # c` inline (sops 3.13) where sops 3.11 moves it above the key.
        let ours = text(&hush_decrypt(&env, &enc, format).expect("hush decrypt"));
        if format == Format::Yaml {
            assert!(ours.contains(INLINE_HUSH), "{ours}");
        }
        assert_eq!(
            text(&out.stdout),
            ours.replace(INLINE_HUSH, INLINE_SOPS311),
            "{name}"
        );
        if format == Format::Binary {
            assert_eq!(out.stdout, plain, "binary round trip");
        }
    }
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn sops_set_and_updatekeys_accept_hush_files() {
    let env = env();
    let enc = hush_encrypt(&env, YAML.as_bytes(), Format::Yaml);
    std::fs::write(env.dir.path().join("s.yaml"), &enc).expect("write");
    let out = sops(
        &env,
        &["set", "s.yaml", r#"["db"]["password"]"#, r#""rotated""#],
    );
    assert!(out.status.success(), "sops set: {}", text(&out.stderr));
    let after = std::fs::read(env.dir.path().join("s.yaml")).expect("read");
    let plain = hush_decrypt(&env, &after, Format::Yaml).expect("hush decrypt after sops set");
    assert!(text(&plain).contains("password: rotated"));
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn tampered_sops_files_are_refused_without_plaintext() {
    let env = env();
    std::fs::write(env.dir.path().join("t.yaml"), YAML).expect("write");
    let out = sops(&env, &["encrypt", "--age", &env.recipient, "t.yaml"]);
    assert!(out.status.success());
    let enc = text(&out.stdout);
    let line = |prefix: &str| -> String {
        enc.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix}"))
            .to_owned()
    };
    let flip = |s: &str, field: &str| -> String {
        // Change the first base64 character of `field` in the line.
        let i = s.find(field).expect("field") + field.len();
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).expect("utf8")
    };
    let pw = line("password:");
    let mac = line("mac:");
    let lm = line("lastmodified:");
    let cases: Vec<(String, Expect)> = vec![
        (
            enc.replacen(&pw, &flip(&pw, "data:"), 1),
            |e| matches!(e, Error::Decrypt { path, .. } if path == "db.password"),
        ),
        (enc.replacen(&pw, &flip(&pw, "iv:"), 1), |e| {
            matches!(e, Error::Decrypt { .. })
        }),
        (enc.replacen(&pw, &flip(&pw, "tag:"), 1), |e| {
            matches!(e, Error::Decrypt { .. })
        }),
        (enc.replacen(&mac, &flip(&mac, "data:"), 1), |e| {
            matches!(e, Error::MacDecrypt)
        }),
        (enc.replacen(&lm, &lm.replace("\"20", "\"19"), 1), |e| {
            matches!(e, Error::MacDecrypt)
        }),
        (
            enc.replacen(
                "plain_unencrypted: visible",
                "plain_unencrypted: visiblE",
                1,
            ),
            |e| matches!(e, Error::MacMismatch),
        ),
        // A value moved to another key fails its associated data.
        (enc.replacen("    user: ", "    usr: ", 1), |e| {
            matches!(e, Error::Decrypt { .. })
        }),
    ];
    for (i, (tampered, expect)) in cases.into_iter().enumerate() {
        assert!(tampered != enc, "case {i} did not change the file");
        let err = hush_decrypt(&env, tampered.as_bytes(), Format::Yaml)
            .expect_err(&format!("case {i}: tampered file accepted"));
        assert!(expect(&err), "case {i}: unexpected error {err}");
        let msg = err.to_string();
        for secret in ["s3cr3t", "admin", "5432"] {
            assert!(
                !msg.contains(secret),
                "case {i}: error leaks plaintext: {msg}"
            );
        }
        // sops refuses it too.
        std::fs::write(env.dir.path().join("tampered.yaml"), &tampered).expect("write");
        let out = sops(&env, &["decrypt", "tampered.yaml"]);
        assert!(
            !out.status.success(),
            "case {i}: sops accepted the tampered file"
        );
    }
}

/// What a tamper case must be refused with.
type Expect = fn(&Error) -> bool;

/// Replaces every `ENC[…]` value with a placeholder and cuts the metadata off.
fn shape(format: Format, enc: &str) -> String {
    let mut out = String::new();
    for line in enc.lines() {
        let stop = match format {
            Format::Yaml => line == "sops:",
            Format::Json | Format::Binary => line.trim_start().starts_with("\"sops\""),
            Format::Dotenv => line.starts_with("sops_"),
            Format::Ini => line == "[sops]",
            Format::Toml => line.starts_with("[sops"),
        };
        if stop {
            // YAML: skip to the next document.
            if format != Format::Yaml {
                break;
            }
            out.push_str("<sops>\n");
            continue;
        }
        if format == Format::Yaml && line.starts_with(' ') && out.ends_with("<sops>\n") {
            continue;
        }
        let mut l = line.to_owned();
        while let Some(start) = l.find("ENC[AES256_GCM,") {
            let end = l[start..].find(']').map_or(l.len(), |e| start + e + 1);
            l.replace_range(start..end, "ENC");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn hush_output_has_the_shape_sops_writes() {
    let env = env();
    for (name, format, plain) in cases() {
        std::fs::write(env.dir.path().join(name), &plain).expect("write");
        let out = sops(&env, &["encrypt", "--age", &env.recipient, name]);
        assert!(out.status.success(), "sops encrypt {name}");
        let ours = hush_encrypt(&env, &plain, format);
        // sops 3.11 writes the inline comment above its key; hush keeps it on the line.
        let theirs = shape(format, &text(&out.stdout))
            .replace("    #ENC\n    user: ENC\n", "    user: ENC #ENC\n");
        let mine = shape(format, &text(&ours));
        assert_eq!(
            mine, theirs,
            "encrypted {name}: hush's layout differs from sops'"
        );
    }
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn hush_shamir_groups_open_in_sops_with_threshold_keys() {
    let env1 = env();
    let env2 = env();
    let env3 = env();
    let group = |e: &Env| {
        vec![KeySpec::from_service(Arc::new(
            AgeKey::from_recipient(&e.recipient).expect("recipient"),
        ))]
    };
    let opts = EncryptOptions {
        groups: vec![group(&env1), group(&env2), group(&env3)],
        shamir_threshold: 2,
        ..EncryptOptions::default()
    };
    let enc = rt()
        .block_on(file::encrypt(
            YAML.as_bytes(),
            Format::Yaml,
            Format::Yaml,
            opts,
            None,
            &mut SystemEntropy,
        ))
        .expect("encrypt");
    let text = String::from_utf8(enc).expect("utf8");
    assert!(
        text.contains("    shamir_threshold: 2\n") && text.contains("    key_groups:\n"),
        "{text}"
    );
    std::fs::write(env1.dir.path().join("shamir.yaml"), &text).expect("write");
    let run = |keys: &[&Env]| {
        let joined: String = keys.iter().map(|e| e.key_text.clone()).collect();
        Command::new(peer("HUSH_PEER_SOPS"))
            .args(["decrypt", "shamir.yaml"])
            .current_dir(env1.dir.path())
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("SOPS_AGE_KEY", joined)
            .env("HOME", env1.dir.path())
            .output()
            .expect("sops")
    };
    let two = run(&[&env1, &env3]);
    assert!(
        two.status.success(),
        "sops with 2 of 3 groups: {}",
        text_of(&two.stderr)
    );
    let ours = hush_decrypt(&env1, text.as_bytes(), Format::Yaml);
    assert!(
        matches!(ours, Err(Error::DataKey(_))),
        "one group must not be enough"
    );
    let one = run(&[&env2]);
    assert!(
        !one.status.success(),
        "sops opened a 2-of-3 file with one group"
    );
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// ~100 awkward strings and keys (quoting, YAML 1.1 booleans, numbers-as-strings, timestamps,
/// indicators, unicode, emoji, LS/NBSP, `<<`, block scalars with every chomping and an
/// indentation indicator, floats): hush prints exactly what sops prints, both directions.
#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn awkward_yaml_prints_byte_identical_to_sops() {
    let env = env();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/awkward.yaml");
    std::fs::copy(&src, env.dir.path().join("awkward.yaml")).expect("copy");
    let out = sops(&env, &["encrypt", "--age", &env.recipient, "awkward.yaml"]);
    assert!(out.status.success(), "sops encrypt: {}", text(&out.stderr));
    std::fs::write(env.dir.path().join("a.enc.yaml"), &out.stdout).expect("write");
    let theirs = sops(&env, &["decrypt", "a.enc.yaml"]);
    assert!(theirs.status.success());
    let ours = hush_decrypt(&env, &out.stdout, Format::Yaml).expect("hush decrypt");
    assert_eq!(
        text(&ours),
        text(&theirs.stdout),
        "hush decrypt of sops' file"
    );
    let plain = std::fs::read(&src).expect("read");
    let enc = hush_encrypt(&env, &plain, Format::Yaml);
    std::fs::write(env.dir.path().join("h.enc.yaml"), &enc).expect("write");
    let theirs2 = sops(&env, &["decrypt", "h.enc.yaml"]);
    assert!(
        theirs2.status.success(),
        "sops decrypt of hush's file: {}",
        text(&theirs2.stderr)
    );
    assert_eq!(
        text(&theirs2.stdout),
        text(&theirs.stdout),
        "sops decrypt of hush's file"
    );
}
