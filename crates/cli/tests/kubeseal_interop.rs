//! Interop of `hush seal` with the real kubeseal v0.36.6 and with kubesealpy's Python API.
//!
//! Peers come from the env file named by `HUSH_PEERS_ENV` (default
//! `$HOME/.cache/hush/peers.env`, written by `scripts/dev-env.sh`): `HUSH_PEER_KUBESEAL` and
//! `HUSH_PEER_PYTHON` (a venv with kubesealpy). A missing peer fails the test. The tests are
//! ignored by default; `scripts/test.sh` runs them with `--include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use hush_crypto::SystemEntropy;
use hush_crypto::cert;
use hush_crypto::rsa::RsaPrivateKey;

fn peer(name: &str) -> PathBuf {
    let file = std::env::var_os("HUSH_PEERS_ENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hush/peers.env"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "peer {name}: cannot read {} ({e}); run scripts/dev-env.sh",
            file.display()
        )
    });
    let key = format!("HUSH_PEER_{name}=");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "peer {name} missing from {}; run scripts/dev-env.sh",
                file.display()
            )
        });
    assert!(
        path.exists(),
        "peer {name}: {} does not exist; run scripts/dev-env.sh",
        path.display()
    );
    path
}

struct Keys {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn make_keys(bits: usize) -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let key = RsaPrivateKey::generate(bits).unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let c = cert::self_signed(&key, "", now - 60, now + 3650 * 86_400, &mut SystemEntropy).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, c.to_pem()).unwrap();
    std::fs::write(&key_path, key.to_pkcs1_pem().unwrap().expose()).unwrap();
    Keys {
        _dir: dir,
        cert: cert_path,
        key: key_path,
    }
}

/// The sealing key the controller would have: RSA-4096.
fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| make_keys(4096))
}

fn wrong_keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| make_keys(4096))
}

fn run(bin: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("SEALED_SECRETS_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// hush, called through a `kubeseal` symlink (the persona).
fn hush_bin() -> PathBuf {
    static L: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    L.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("kubeseal");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hush"), &link).unwrap();
        (dir, link)
    })
    .1
    .clone()
}

fn hush(args: &[&str], stdin: &[u8]) -> Output {
    run(&hush_bin(), args, stdin)
}

fn kubeseal(args: &[&str], stdin: &[u8]) -> Output {
    run(&peer("KUBESEAL"), args, stdin)
}

fn python(args: &[&str], stdin: &[u8]) -> Output {
    let harness = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/sealing/kubesealpy_harness.py"
    );
    let mut all = vec![harness];
    all.extend_from_slice(args);
    run(&peer("PYTHON"), &all, stdin)
}

fn ok(o: &Output, what: &str) -> Vec<u8> {
    assert!(
        o.status.success(),
        "{what} failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout.clone()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Replaces every run of 64+ base64 characters (a ciphertext) with `<CT>`.
fn normalize(out: &[u8]) -> String {
    let s = text(out);
    let mut result = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, result: &mut String| {
        if run.len() >= 64 {
            result.push_str("<CT>");
        } else {
            result.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
            run.push(c);
        } else {
            flush(&mut run, &mut result);
            result.push(c);
        }
    }
    flush(&mut run, &mut result);
    result
}

fn cert() -> String {
    keys().cert.to_str().unwrap().to_owned()
}

fn key() -> String {
    keys().key.to_str().unwrap().to_owned()
}

/// A Secret with binary, empty, multi-line and stringData values, in each scope.
fn secret(scope_annotation: &str, namespace: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: db-creds
{namespace}  labels:
    app.kubernetes.io/name: web
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"data":{{"password":"c2VjcmV0"}}}}'
    note: "a long annotation value with several words, long enough that go-yaml folds it at eighty columns"
{scope_annotation}type: Opaque
data:
  password: c2VjcmV0
  binary: AP8Agxj+
  empty: ""
stringData:
  multi: "line one\nline two\n"
  password: from-string-data
"#
    )
}

const SCOPES: [(&str, &str); 3] = [
    ("strict", ""),
    (
        "namespace-wide",
        "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
    ),
    (
        "cluster-wide",
        "    sealedsecrets.bitnami.com/cluster-wide: \"true\"\n",
    ),
];

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn each_opens_the_others_output_in_every_scope() {
    for (scope, annotation) in SCOPES {
        let input = secret(annotation, "  namespace: prod\n");
        for (sealer, opener) in [("hush", "kubeseal"), ("kubeseal", "hush")] {
            let seal = |args: &[&str]| match sealer {
                "hush" => hush(args, input.as_bytes()),
                _ => kubeseal(args, input.as_bytes()),
            };
            let sealed = ok(&seal(&["--cert", &cert(), "-o", "yaml"]), sealer);
            let unseal_args = ["--recovery-unseal", "--recovery-private-key", &key()];
            let by_kubeseal = ok(
                &kubeseal(&unseal_args, &sealed),
                &format!("{opener} opening {sealer}/{scope}"),
            );
            let by_hush = ok(
                &hush(&unseal_args, &sealed),
                &format!("hush opening {sealer}/{scope}"),
            );
            assert_eq!(
                text(&by_hush),
                text(&by_kubeseal),
                "{sealer}/{scope}: unsealed Secrets differ"
            );
            let secret = text(&by_kubeseal);
            assert!(
                secret.contains("\"password\": \"ZnJvbS1zdHJpbmctZGF0YQ==\""),
                "{secret}"
            );
            assert!(secret.contains("\"binary\": \"AP8Agxj+\""), "{secret}");
            assert!(secret.contains("\"empty\": null"), "{secret}");
            assert!(
                secret.contains("\"multi\": \"bGluZSBvbmUKbGluZSB0d28K\""),
                "{secret}"
            );
        }
    }
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn output_is_byte_equal_apart_from_ciphertext() {
    let multi_doc = format!(
        "{}---\n{}",
        secret("", "  namespace: prod\n"),
        secret(SCOPES[2].1, "")
    );
    let concatenated = r#"{"metadata":{"name":"a","namespace":"x"},"data":{"k":"dg=="}} {"metadata":{"name":"b"},"stringData":{"k":"v"},"type":"kubernetes.io/basic-auth","immutable":true}"#;
    let no_ns = secret("", "");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![], secret("", "  namespace: prod\n")),
        (vec![], multi_doc.clone()),
        (vec![], concatenated.into()),
        (
            vec!["--scope".into(), "namespace-wide".into()],
            secret(SCOPES[2].1, "  namespace: prod\n"),
        ),
        (vec!["--scope".into(), "cluster-wide".into()], no_ns.clone()),
        (vec![], secret(SCOPES[2].1, "")),
        (vec!["-n".into(), "from-flag".into()], no_ns.clone()),
        (
            vec!["--name".into(), "renamed".into()],
            secret("", "  namespace: prod\n"),
        ),
        (
            vec!["-n".into(), "other".into()],
            secret("", "  namespace: prod\n"),
        ),
        (vec![], "metadata: {name: x}\n".into()),
        (
            vec!["--allow-empty-data".into()],
            "metadata: {name: x, namespace: y}\n".into(),
        ),
        (vec![], "data: {k: dg==}\n".into()),
        (vec![], "".into()),
    ];
    for format in ["json", "yaml"] {
        for (extra, input) in &cases {
            let mut args: Vec<&str> = vec!["--cert", keys().cert.to_str().unwrap(), "-o", format];
            args.extend(extra.iter().map(String::as_str));
            let k = kubeseal(&args, input.as_bytes());
            let h = hush(&args, input.as_bytes());
            assert_eq!(
                h.status.code(),
                k.status.code(),
                "{args:?}\n{input}\nhush: {}\nkubeseal: {}",
                text(&h.stderr),
                text(&k.stderr)
            );
            assert_eq!(text(&h.stderr), text(&k.stderr), "{args:?}\n{input}");
            assert_eq!(
                normalize(&h.stdout),
                normalize(&k.stdout),
                "{args:?}\n{input}"
            );
        }
    }
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn raw_values_open_across_tools_in_every_scope() {
    for (scope, _) in SCOPES {
        let args = [
            "--cert",
            &cert(),
            "--raw",
            "--scope",
            scope,
            "-n",
            "prod",
            "--name",
            "db",
        ];
        for (sealer, out) in [
            ("hush", hush(&args, b"\x00raw\xffvalue")),
            ("kubeseal", kubeseal(&args, b"\x00raw\xffvalue")),
        ] {
            let raw = text(&ok(&out, sealer));
            assert!(
                !raw.ends_with('\n') && raw.starts_with("Ag"),
                "{sealer}: {raw}"
            );
            let annotation = match scope {
                "strict" => String::new(),
                s => format!(r#","annotations":{{"sealedsecrets.bitnami.com/{s}":"true"}}"#),
            };
            let ss = format!(
                r#"{{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{{"name":"db","namespace":"prod"{annotation}}},"spec":{{"encryptedData":{{"v":"{raw}"}}}}}}"#
            );
            let unseal = ["--recovery-unseal", "--recovery-private-key", &key()];
            let k = text(&ok(&kubeseal(&unseal, ss.as_bytes()), "kubeseal recovery"));
            let h = text(&ok(&hush(&unseal, ss.as_bytes()), "hush recovery"));
            assert_eq!(h, k);
            assert!(k.contains("\"v\": \"AHJhd/92YWx1ZQ==\""), "{k}");
        }
    }
    // --from-file, key ignored; empty value.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v");
    std::fs::write(&file, b"").unwrap();
    let from = format!("ignored={}", file.display());
    let args = [
        "--cert",
        &cert(),
        "--raw",
        "--scope",
        "cluster-wide",
        "--from-file",
        &from,
    ];
    assert_eq!(
        normalize(&ok(&hush(&args, b""), "hush")),
        normalize(&ok(&kubeseal(&args, b""), "kubeseal"))
    );
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn merge_into_matches_kubeseal() {
    let dir = tempfile::tempdir().unwrap();
    let base = ok(
        &kubeseal(
            &["--cert", &cert()],
            secret("", "  namespace: prod\n").as_bytes(),
        ),
        "kubeseal",
    );
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&a, &base).unwrap();
    std::fs::write(&b, &base).unwrap();
    let update = "metadata:\n  name: ignored\n  labels: {tier: db}\n  annotations: {rotated: \"2024\"}\nstringData:\n  token: new-token\n  password: changed\n";
    ok(
        &kubeseal(
            &["--cert", &cert(), "--merge-into", a.to_str().unwrap()],
            update.as_bytes(),
        ),
        "kubeseal merge",
    );
    ok(
        &hush(
            &["--cert", &cert(), "--merge-into", b.to_str().unwrap()],
            update.as_bytes(),
        ),
        "hush merge",
    );
    let (ka, hb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(normalize(&hb), normalize(&ka));
    let unseal = ["--recovery-unseal", "--recovery-private-key", &key()];
    assert_eq!(
        text(&ok(&kubeseal(&unseal, &hb), "kubeseal opens hush merge")),
        text(&ok(&hush(&unseal, &ka), "hush opens kubeseal merge"))
    );
}

/// Negative cases on values kubeseal wrote: hush refuses clearly, never panics, never prints the
/// plaintext; kubeseal refuses too.
#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn moved_tampered_truncated_and_foreign_values_are_refused() {
    let plaintext = "TOP-SECRET-PLAINTEXT";
    let input = |annotation: &str| {
        format!(
            "metadata:\n  name: db\n  namespace: prod\n  annotations: {{{annotation}}}\nstringData:\n  a: {plaintext}\n  b: {plaintext}\n"
        )
    };
    let strict = text(&ok(
        &kubeseal(&["--cert", &cert()], input("").as_bytes()),
        "kubeseal",
    ));
    let ns_wide = text(&ok(
        &kubeseal(
            &["--cert", &cert()],
            input("sealedsecrets.bitnami.com/namespace-wide: \"true\"").as_bytes(),
        ),
        "kubeseal",
    ));
    let value = |doc: &str, item: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(doc).unwrap();
        v["spec"]["encryptedData"][item]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a = value(&strict, "a");
    let mut bytes = base64_decode(&a);
    let flip = |b: &mut Vec<u8>, i: usize| b[i] ^= 0x01;
    let mut cases: Vec<(&str, String, &str)> = vec![
        (
            "strict moved to another namespace",
            strict.replace("\"namespace\": \"prod\"", "\"namespace\": \"staging\""),
            "sealed for another namespace/name",
        ),
        (
            "strict renamed",
            strict.replacen("\"name\": \"db\"", "\"name\": \"db2\"", 1),
            "sealed for another namespace/name",
        ),
        (
            "namespace-wide moved",
            ns_wide.replace("\"namespace\": \"prod\"", "\"namespace\": \"staging\""),
            "sealed for another namespace/name",
        ),
        (
            "namespace-wide annotation dropped",
            ns_wide.replace(
                "\"sealedsecrets.bitnami.com/namespace-wide\": \"true\"",
                "\"x\": \"y\"",
            ),
            "sealed for namespace-wide scope",
        ),
    ];
    // One flip in the AES part (tampered), one in each of two envelopes' RSA part.
    let last = bytes.len() - 3;
    flip(&mut bytes, last);
    cases.push((
        "AES byte flip",
        strict.replace(&a, &base64_encode(&bytes)),
        "the value was modified",
    ));
    let b = value(&strict, "b");
    let (mut ra, mut rb) = (base64_decode(&a), base64_decode(&b));
    flip(&mut ra, 100);
    flip(&mut rb, 200);
    cases.push((
        "RSA byte flips in two envelopes",
        strict
            .replace(&a, &base64_encode(&ra))
            .replace(&b, &base64_encode(&rb)),
        "(a, b)",
    ));
    let full = base64_decode(&a);
    cases.push((
        "truncated",
        strict.replace(&a, &base64_encode(&full[..300])),
        "malformed",
    ));
    cases.push((
        "two bytes",
        strict.replace(&a, &base64_encode(&full[..2])),
        "malformed",
    ));
    let mut big = full.clone();
    big[0] = 0xff;
    big[1] = 0xff;
    cases.push((
        "length prefix beyond input",
        strict.replace(&a, &base64_encode(&big)),
        "length prefix",
    ));
    cases.push((
        "not base64",
        strict.replace(&a, "!!!notbase64"),
        "illegal base64 data at input byte 0",
    ));

    let unseal = ["--recovery-unseal", "--recovery-private-key", &key()];
    for (what, doc, expected) in &cases {
        let h = hush(&unseal, doc.as_bytes());
        let err = text(&h.stderr);
        assert_eq!(h.status.code(), Some(1), "{what}: {err}");
        assert!(err.starts_with("error: "), "{what}: {err}");
        assert!(
            err.contains(expected),
            "{what}: expected {expected:?} in {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains(plaintext) && h.stdout.is_empty(),
            "{what}: {err}"
        );
        let k = kubeseal(&unseal, doc.as_bytes());
        assert_eq!(k.status.code(), Some(1), "kubeseal accepted {what}");
    }
    // The right document with only a wrong key.
    let wrong = [
        "--recovery-unseal",
        "--recovery-private-key",
        wrong_keys().key.to_str().unwrap(),
    ];
    let h = hush(&wrong, strict.as_bytes());
    assert_eq!(h.status.code(), Some(1));
    assert!(
        text(&h.stderr).contains("or with a key this cluster does not have (a, b)"),
        "{}",
        text(&h.stderr)
    );
    // Both keys: the right one is found whatever the order; the file format kubeseal accepts
    // (comma-separated) works.
    let both = format!("{},{}", wrong_keys().key.display(), key());
    let h = hush(
        &["--recovery-unseal", "--recovery-private-key", &both],
        strict.as_bytes(),
    );
    assert!(text(&ok(&h, "two keys")).contains("\"a\": \"VE9QLVNFQ1JFVC1QTEFJTlRFWFQ=\""));
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn kubesealpy_agrees() {
    for (scope, annotation) in SCOPES {
        // kubesealpy seals, hush opens.
        let doc = r#"{"name":"db","namespace":"prod","data":{"bin":"AP8A","empty":""}}"#;
        let sealed = ok(
            &python(&["seal", &cert(), scope], doc.as_bytes()),
            "kubesealpy seal",
        );
        let opened = text(&ok(
            &hush(
                &["--recovery-unseal", "--recovery-private-key", &key()],
                &sealed,
            ),
            "hush opens kubesealpy",
        ));
        assert!(
            opened.contains("\"bin\": \"AP8A\"") && opened.contains("\"empty\": null"),
            "{scope}: {opened}"
        );
        // hush seals, kubesealpy opens (one document at a time).
        let input = secret(annotation, "  namespace: prod\n");
        let sealed = ok(
            &hush(&["--cert", &cert(), "-o", "yaml"], input.as_bytes()),
            "hush seal",
        );
        let data = text(&ok(
            &python(&["unseal", &key()], &sealed),
            "kubesealpy unseal",
        ));
        assert!(
            data.contains("\"binary\": \"AP8Agxj+\"") && data.contains("\"empty\": \"\""),
            "{scope}: {data}"
        );
        assert!(
            data.contains("\"password\": \"ZnJvbS1zdHJpbmctZGF0YQ==\""),
            "{scope}: {data}"
        );
        // Raw values both ways with build_label.
        let (ns, name) = ("prod", "db");
        let ct = text(&ok(
            &python(&["encrypt", &cert(), scope, ns, name], b"raw\x00value"),
            "kubesealpy encrypt",
        ));
        let annotation_json = match scope {
            "strict" => String::new(),
            s => format!(r#","annotations":{{"sealedsecrets.bitnami.com/{s}":"true"}}"#),
        };
        let ss = format!(
            r#"{{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{{"name":"{name}","namespace":"{ns}"{annotation_json}}},"spec":{{"encryptedData":{{"v":"{ct}"}}}}}}"#
        );
        let opened = text(&ok(
            &hush(
                &["--recovery-unseal", "--recovery-private-key", &key()],
                ss.as_bytes(),
            ),
            "hush opens raw",
        ));
        assert!(opened.contains("\"v\": \"cmF3AHZhbHVl\""), "{opened}");
        let raw = ok(
            &hush(
                &[
                    "--cert",
                    &cert(),
                    "--raw",
                    "--scope",
                    scope,
                    "-n",
                    ns,
                    "--name",
                    name,
                ],
                b"raw\x00value",
            ),
            "hush raw",
        );
        let plain = text(&ok(
            &python(&["decrypt", &key(), scope, ns, name], &raw),
            "kubesealpy decrypt",
        ));
        assert_eq!(plain, "cmF3AHZhbHVl");
        // And kubesealpy refuses a value moved to another namespace.
        let moved = python(&["decrypt", &key(), scope, "staging", name], &raw);
        assert_eq!(moved.status.success(), scope == "cluster-wide", "{scope}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    hush_sealing::b64::decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    hush_sealing::b64::encode(b)
}

/// kubeseal reads YAML 1.1 through go-yaml v2: plain `yes`, `on`, `0755`, `1e3`, `y` change
/// meaning. hush must seal the same bytes.
#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn yaml_1_1_scalars_are_sealed_as_kubeseal_reads_them() {
    let input = "metadata:\n  name: app\n  namespace: prod\n  labels: {enabled: on, y: n}\nstringData:\n  flag: yes\n  mode: 0755\n  ratio: 1e3\n  port: 08080\n  quoted: \"yes\"\n  empty:\n  date: 2024-01-02\n  big: 18446744073709551615\n  pi: 3.14159265358979\n";
    let unseal = ["--recovery-unseal", "--recovery-private-key", &key()];
    let by_kubeseal = ok(
        &kubeseal(&["--cert", &cert()], input.as_bytes()),
        "kubeseal",
    );
    let by_hush = ok(&hush(&["--cert", &cert()], input.as_bytes()), "hush");
    assert_eq!(normalize(&by_hush), normalize(&by_kubeseal));
    let k = text(&ok(
        &kubeseal(&unseal, &by_kubeseal),
        "kubeseal opens its own",
    ));
    let h = text(&ok(&kubeseal(&unseal, &by_hush), "kubeseal opens hush"));
    assert_eq!(h, k);
    // `yes` was sealed as "true", `0755` as "493".
    assert!(
        k.contains("\"flag\": \"dHJ1ZQ==\"") && k.contains("\"mode\": \"NDkz\""),
        "{k}"
    );
}

/// `spec.template.data` Go templates (Sprig) render as the controller renders them.
#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn template_data_renders_as_kubeseal_renders_it() {
    let input =
        "metadata: {name: db, namespace: prod}\nstringData: {password: hunter2, user: admin}\n";
    let sealed = ok(
        &kubeseal(&["--cert", &cert()], input.as_bytes()),
        "kubeseal",
    );
    let mut doc: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
    doc["spec"]["template"]["data"] = serde_json::json!({
        "dsn": "postgres://{{ .user }}:{{ .password | urlquery }}@db:5432/app",
        "upper": "{{ index . \"password\" | upper }}",
        "json": "{{ toJson . }}",
        "literal": "no actions here",
        "password": "{{ .password | b64enc }}",
        "missing": "{{ .nope }}"
    });
    let doc = serde_json::to_vec(&doc).unwrap();
    let unseal = ["--recovery-unseal", "--recovery-private-key", &key()];
    let k = text(&ok(&kubeseal(&unseal, &doc), "kubeseal renders"));
    let h = text(&ok(&hush(&unseal, &doc), "hush renders"));
    assert_eq!(h, k);
    // A template that does not parse fails in both, naming the item, never the values.
    let mut bad: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
    bad["spec"]["template"]["data"] = serde_json::json!({"broken": "{{ .password "});
    let bad = serde_json::to_vec(&bad).unwrap();
    let h = hush(&unseal, &bad);
    assert_eq!(h.status.code(), Some(1));
    assert_eq!(kubeseal(&unseal, &bad).status.code(), Some(1));
    assert!(
        text(&h.stderr).contains("broken") && !text(&h.stderr).contains("hunter2"),
        "{}",
        text(&h.stderr)
    );
}

/// go-yaml v2's quoting, escaping, folding and literal blocks on awkward strings, compared with
/// the real kubeseal's `-o yaml` (and JSON escaping with `-o json`).
#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn awkward_strings_are_written_as_kubeseal_writes_them() {
    let values: Vec<String> = vec![
        "".into(), " ".into(), " leading".into(), "trailing ".into(), "a: b".into(), "a:b".into(),
        "#hash".into(), "a #b".into(), "a# b".into(), "- dash".into(), "-dash".into(), "?q".into(),
        "? q".into(), ":colon".into(), "[x]".into(), "{y}".into(), "&a".into(), "*b".into(), "!c".into(),
        "|d".into(), ">e".into(), "'f'".into(), "\"g\"".into(), "%h".into(), "@i".into(), "`j`".into(),
        "it's".into(), "say \"hi\"".into(), "back\\slash".into(), "tab\there".into(), "nul\u{0}x".into(),
        "bell\u{7}".into(), "esc\u{1b}".into(), "nbsp\u{a0}x".into(), "ünïcödé".into(),
        "emoji 😀".into(), "bom\u{feff}".into(), "line\u{2028}sep".into(), "cr\rlf".into(),
        "one\ntwo".into(), "one\ntwo\n".into(), "one\ntwo\n\n".into(), "\nleading newline".into(),
        "  indented\nblock".into(), "trailing space \nline".into(), "x\n \ny".into(), "tab\tand\nnewline".into(),
        "true".into(), "False".into(), "yes".into(), "No".into(), "on".into(), "OFF".into(), "y".into(),
        "n".into(), "~".into(), "null".into(), "NULL".into(), "123".into(), "-1".into(), "+1".into(),
        "0x1F".into(), "0o17".into(), "0b101".into(), "0755".into(), "08080".into(), "1_000".into(),
        "1.5".into(), ".5".into(), "1e3".into(), "1E-3".into(), ".inf".into(), "-.Inf".into(), ".NaN".into(),
        "1:20".into(), "190:20:30.15".into(), "2024-01-02".into(), "2024-1-2".into(),
        "2001-12-14t21:59:43.10-05:00".into(), "2001-12-14 21:59:43.10".into(), "12:30".into(),
        "<<".into(), "---".into(), "...".into(), "--- x".into(), "a,b".into(), "<a&b>".into(),
        "1.2.3".into(), "v1".into(), "=".into(), "http://example.com/a?b=c#d".into(),
        "word ".repeat(40).trim_end().into(),
        format!("{}x", "a".repeat(100)),
        format!("short {} tail", "b".repeat(90)),
        "two  spaces  between  words  that  go  past  the  eighty  column  limit  of  go-yaml  v2".into(),
        "'quoted' and \"double\" with a very long tail so the line passes the eighty column mark ok".into(),
        format!("line one\n{}\nline three", "long ".repeat(30)),
    ];
    let mut annotations = serde_json::Map::new();
    for (i, v) in values.iter().enumerate() {
        annotations.insert(format!("k{i:03}"), serde_json::Value::String(v.clone()));
    }
    // Keys exercise go-yaml's natural sort and key quoting too.
    for k in [
        "a10", "a9", "A", "b.c", "b-c", "b_c", "b1", "b01", "true", "123", "x y", "ü",
    ] {
        annotations.insert(k.into(), serde_json::Value::String(k.into()));
    }
    let secret = serde_json::json!({
        "metadata": {"name": "s", "namespace": "n", "annotations": annotations, "labels": {"l": "v"}},
        "stringData": {"k": "v"}
    });
    let input = serde_json::to_vec(&secret).unwrap();
    // A raw DEL (which Go's JSON encoder does not escape) stops go-yaml's reader: both refuse.
    let del = br#"{"metadata":{"name":"s","namespace":"n","annotations":{"a":"del\u007f"}},"stringData":{"k":"v"}}"#;
    for format in ["yaml", "json"] {
        let args = ["--cert", &cert(), "-o", format];
        let (k, h) = (kubeseal(&args, del), hush(&args, del));
        assert_eq!(h.status.code(), k.status.code(), "{format}");
        assert_eq!(text(&h.stderr), text(&k.stderr), "{format}");
    }
    for format in ["yaml", "json"] {
        let args = ["--cert", &cert(), "-o", format];
        let k = normalize(&ok(&kubeseal(&args, &input), "kubeseal"));
        let h = normalize(&ok(&hush(&args, &input), "hush"));
        if h != k {
            let (hl, kl): (Vec<&str>, Vec<&str>) = (h.lines().collect(), k.lines().collect());
            let first = hl
                .iter()
                .zip(&kl)
                .position(|(a, b)| a != b)
                .unwrap_or(hl.len().min(kl.len()));
            panic!(
                "{format}: first difference at line {}\nhush:     {:?}\nkubeseal: {:?}",
                first + 1,
                hl.get(first..first + 3),
                kl.get(first..first + 3)
            );
        }
    }
}
