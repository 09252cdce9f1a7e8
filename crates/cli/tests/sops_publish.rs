//! `sops publish` and `destination_rules`, the deprecated `--background` of `exec-env` /
//! `exec-file`, and the HuaweiCloud KMS flags (`--hckms`, `--add-hckms`, `--rm-hckms`).
//!
//! Local-directory publishing, hostile `.sops.yaml` destinations, the confirmation prompt and
//! the flags run everywhere; S3 (moto) and Vault KV (OpenBao) publishing, each compared with
//! the real sops 3.11 publishing the same file to the same kind of destination, are ignored
//! tests that `scripts/test.sh` runs with its services.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sops/tests/fixtures")
}

fn recipient(key_file: &Path) -> String {
    std::fs::read_to_string(key_file)
        .expect("key")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key")
        .to_owned()
}

/// The values every publish test sends (no map inside a list: sops sends those as its internal
/// key/value pairs, see docs/compatibility.md).
const PLAIN: &str = "\
db:
    user: admin
    password: s3cr3t
    port: 5432
    ratio: 0.5
    enabled: true
    when: 2024-01-02T03:04:05Z
list:
    - one
    - 2
top: héllo
";

struct Env {
    dir: tempfile::TempDir,
    sops: PathBuf,
    /// Opens the source files.
    key: PathBuf,
    /// The recreation rule's key.
    other: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let sops = dir.path().join("sops");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hush"), &sops).expect("symlink");
    Env {
        dir,
        sops,
        key: fixtures().join("age-key.txt"),
        other: fixtures().join("age-keys-other.txt"),
    }
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    fn command(&self, bin: &Path, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_CONFIG")
            .env_remove("SOPS_HUAWEICLOUD_KMS_IDS")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("HUSH_SOPS_VAULT_ADDRS")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        self.command(&self.sops, args, extra)
            .output()
            .expect("run hush")
    }

    /// Runs with `input` on standard input.
    fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(&self.sops, args, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hush");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    /// Encrypts PLAIN (or `plain`) for the main key into `name`.
    fn encrypted(&self, name: &str, plain: &str) -> PathBuf {
        let p = self.write(name, plain);
        let o = self.run(
            &["encrypt", "-i", "--age", &recipient(&self.key), name],
            &[],
        );
        assert_eq!(code(&o), 0, "encrypt {name}: {}", stderr(&o));
        p
    }

    /// hush's plaintext of `file` with the key file `key`.
    fn decrypt_with(&self, file: &Path, key: &Path) -> Output {
        self.run(
            &["decrypt", file.to_str().expect("utf8")],
            &[("SOPS_AGE_KEY_FILE", key.to_str().expect("utf8"))],
        )
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn no_plaintext(o: &Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    for secret in ["s3cr3t", "admin", "5432", "héllo"] {
        assert!(!all.contains(secret), "output shows plaintext: {all}");
    }
}

/// The `sops` metadata of an encrypted YAML file: its top-level field names and the age
/// recipients it is encrypted for.
fn metadata_shape(yaml: &str) -> (Vec<String>, Vec<String>) {
    let tail = yaml.split("\nsops:\n").nth(1).expect("a sops block");
    let fields = tail
        .lines()
        .filter(|l| l.len() > 4 && l.starts_with("    ") && !l.starts_with("     "))
        .filter_map(|l| l.trim().split(':').next().map(str::to_owned))
        .filter(|f| !f.starts_with('-'))
        .collect();
    let mut recipients: Vec<String> = tail
        .lines()
        .filter_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix("recipient: ")
        })
        .map(str::to_owned)
        .collect();
    recipients.sort();
    (fields, recipients)
}

#[test]
fn publishes_to_a_local_directory_as_is_or_reencrypted_for_the_recreation_rule() {
    let e = env();
    let other = recipient(&e.other);
    e.write(
        ".sops.yaml",
        &format!(
            "destination_rules:\n\
             \x20 - path_regex: ^keep/\n\
             \x20   local_dir: out/keep\n\
             \x20 - path_regex: ^re/\n\
             \x20   local_dir: out/re\n\
             \x20   omit_extensions: true\n\
             \x20   recreation_rule:\n\
             \x20     age: {other}\n"
        ),
    );
    let keep = e.encrypted("keep/app.yaml", PLAIN);
    e.encrypted("re/app.yaml", PLAIN);
    e.encrypted("re/sub/deep.json", "{\"password\": \"s3cr3t\"}");

    // As it is: the same bytes.
    let o = e.run(&["publish", "--yes", "keep/app.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    no_plaintext(&o);
    assert_eq!(
        std::fs::read(e.path("out/keep/app.yaml")).expect("published"),
        std::fs::read(&keep).expect("source")
    );

    // Re-encrypted: only the recreation rule's key opens it, to the same plaintext; the
    // extension is omitted (omit_extensions: true); --recursive keeps the path below the root.
    let o = e.run(&["publish", "-y", "--recursive", "re"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    no_plaintext(&o);
    let published = e.path("out/re/app");
    let text = std::fs::read_to_string(&published).expect("published");
    assert!(text.contains(&other), "{text}");
    assert!(!text.contains(&recipient(&e.key)), "{text}");
    let (fields, _) = metadata_shape(&text);
    assert!(
        fields.contains(&"unencrypted_suffix".to_owned()),
        "{fields:?}"
    );
    let o = e.run(
        &[
            "decrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "out/re/app",
        ],
        &[("SOPS_AGE_KEY_FILE", e.other.to_str().unwrap())],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), PLAIN);
    let o = e.run(
        &[
            "decrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "out/re/app",
        ],
        &[],
    );
    assert_eq!(
        code(&o),
        128,
        "the old key must not open it: {}",
        stderr(&o)
    );
    let o = e.run(
        &[
            "decrypt",
            "--input-type",
            "json",
            "--output-type",
            "json",
            "out/re/sub/deep",
        ],
        &[("SOPS_AGE_KEY_FILE", e.other.to_str().unwrap())],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("s3cr3t"));

    // --recursive on a file publishes it under its name.
    let o = e.run(&["publish", "-y", "--recursive", "keep/app.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // --omit-extensions on the command line.
    let o = e.run(
        &["publish", "-y", "--omit-extensions", "keep/app.yaml"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(e.path("out/keep/app").is_file());
}

#[test]
fn the_prompt_asks_on_stdin_and_never_waits_on_a_closed_one() {
    let e = env();
    e.write(".sops.yaml", "destination_rules:\n  - local_dir: out\n");
    e.encrypted("app.yaml", PLAIN);
    let start = Instant::now();
    let o = e.run(&["publish", "app.yaml"], &[]);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert!(!e.path("out/app.yaml").exists());

    let o = e.run_with_input(&["publish", "app.yaml"], "maybe\nn\n");
    assert_eq!(code(&o), 1);
    let shown = e.path("app.yaml");
    let prompt = format!(
        "uploading {} to {} ? (y/n): ",
        shown.display(),
        e.path("out").join("app.yaml").display()
    );
    assert_eq!(stdout(&o), prompt.repeat(2), "asked again after `maybe`");
    assert!(stderr(&o).contains("Publication of"), "{}", stderr(&o));
    assert!(!e.path("out/app.yaml").exists());

    let o = e.run_with_input(&["publish", "app.yaml"], "y\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(e.path("out/app.yaml").is_file());
}

#[test]
fn hostile_destination_rules_are_refused_by_name_before_anything_is_sent() {
    let e = env();
    e.encrypted("app.yaml", PLAIN);
    // A Vault that records whether anyone connected.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let evil = format!("http://{}", listener.local_addr().expect("addr"));
    let outside = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(outside.path(), e.path("link")).expect("symlink");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("  - vault_path: sops\n    vault_address: {evil}\n"),
            "is not a Vault address this environment allows",
        ),
        (
            "  - vault_path: ../../sys/policy\n".to_owned(),
            "vault_path",
        ),
        (
            "  - vault_path: sops\n    vault_kv_mount_name: secret/../sys\n".to_owned(),
            "vault_kv_mount_name",
        ),
        (
            "  - vault_path: sops\n    vault_kv_version: 3\n".to_owned(),
            "vault_kv_version must be 1 or 2",
        ),
        (
            "  - gcs_bucket: b\n".to_owned(),
            "cannot publish to Google Cloud Storage",
        ),
        (
            "  - s3_bucket: b1\n    reencryption_rule:\n      age: x\n".to_owned(),
            "the field is recreation_rule",
        ),
        (
            "  - s3_bucket: b1\n    vault_path: x\n".to_owned(),
            "more than one destinations",
        ),
        (
            "  - s3_bucket: ../x\n".to_owned(),
            "not a valid bucket name",
        ),
        (
            "  - path_regex: ^other/\n    s3_bucket: b1\n".to_owned(),
            "no matching destination",
        ),
        (
            "  - path_regex: '('\n    s3_bucket: b1\n".to_owned(),
            "invalid path_regex",
        ),
        (
            "  - omit_extensions: true\n".to_owned(),
            "no destination configured",
        ),
        (
            "  - local_dir: out\n    omit_extensions: \"yes\"\n".to_owned(),
            "omit_extensions must be true or false",
        ),
        (
            "  - local_dir: /tmp/x\n".to_owned(),
            "must be a relative path",
        ),
        (
            "  - local_dir: ../up\n".to_owned(),
            "must be a relative path",
        ),
        (
            "  - local_dir: link/inner\n".to_owned(),
            "a symbolic link leads out",
        ),
    ];
    for (rules, want) in cases {
        e.write(".sops.yaml", &format!("destination_rules:\n{rules}"));
        let o = e.run(
            &["publish", "-y", "app.yaml"],
            &[
                ("VAULT_ADDR", "http://127.0.0.1:9"),
                ("VAULT_TOKEN", "canary-token-never-sent"),
            ],
        );
        assert_eq!(code(&o), 1, "{rules}");
        assert!(stderr(&o).contains(want), "{rules}: {}", stderr(&o));
        assert!(!stderr(&o).contains("canary-token"), "{}", stderr(&o));
        no_plaintext(&o);
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("ls").count(),
        0,
        "a file was written through the symbolic link"
    );
    assert!(
        listener.accept().is_err(),
        "hush connected to the vault_address the operator did not allow"
    );

    // The MAC is always verified; a directory needs --recursive; no .sops.yaml is an error.
    let o = e.run(&["publish", "-y", "--ignore-mac", "app.yaml"], &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--ignore-mac"), "{}", stderr(&o));
    let o = e.run(&["publish", "-y", "."], &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("without --recursive"), "{}", stderr(&o));
    std::fs::remove_file(e.path(".sops.yaml")).expect("rm");
    let o = e.run(&["publish", "-y", "app.yaml"], &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("config file not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn hckms_flags_are_checked_as_sops_checks_them_and_refused_without_a_key_service() {
    let e = env();
    e.write("p.yaml", "a: s3cr3t\n");
    let id = "cn-north-4:0a1b2c3d-0000-0000-0000-000000000000";
    for (args, env, want) in [
        (vec!["encrypt", "--hckms", id, "p.yaml"], vec![], "hckms"),
        (
            vec!["encrypt", "p.yaml"],
            vec![("SOPS_HUAWEICLOUD_KMS_IDS", id)],
            "hckms",
        ),
        (
            vec!["encrypt", "--hckms", "badformat", "p.yaml"],
            vec![],
            "invalid key ID format: expected 'region:key-uuid', got \"badformat\"",
        ),
        (
            vec!["encrypt", "--hckms", ":uuid", "p.yaml"],
            vec![],
            "region cannot be empty",
        ),
    ] {
        let o = e.run(&args, &env);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        if want == "hckms" {
            assert!(stderr(&o).contains(id), "{}", stderr(&o));
            assert!(stderr(&o).contains("--keyservice"), "{}", stderr(&o));
        }
        assert!(stdout(&o).is_empty(), "nothing written: {}", stdout(&o));
    }

    // --rm-hckms needs no HuaweiCloud: the entry goes, the age key still opens the file.
    let f = e.encrypted("r.yaml", PLAIN);
    let text = std::fs::read_to_string(&f).expect("read");
    let with_hckms = text.replace(
        "\nsops:\n",
        &format!(
            "\nsops:\n    hckms:\n        - key_id: {id}\n          created_at: \"2026-01-01T00:00:00Z\"\n          enc: bm90LWEtcmVhbC1jaXBoZXJ0ZXh0\n"
        ),
    );
    std::fs::write(&f, &with_hckms).expect("write");
    let o = e.run(&["rotate", "-i", "--add-hckms", "nocolon", "r.yaml"], &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("expected 'region:key-uuid'"),
        "{}",
        stderr(&o)
    );
    let o = e.run(&["rotate", "-i", "--rm-hckms", id, "r.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = std::fs::read_to_string(&f).expect("read");
    assert!(!after.contains(id), "{after}");
    let o = e.decrypt_with(&f, &e.key);
    assert_eq!(stdout(&o), PLAIN, "{}", stderr(&o));
}

#[test]
fn background_starts_the_command_and_returns_without_waiting() {
    let e = env();
    e.encrypted("env.yaml", "SECRET_A: s3cr3t\n");
    let marker = e.path("marker");
    // The child sleeps well past the bound, so a loaded machine cannot make it look waited for.
    let cmd = format!("sleep 8; printf %s \"$SECRET_A\" > {}", marker.display());
    let start = Instant::now();
    let o = e.run(&["exec-env", "--background", "env.yaml", &cmd], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "waited for the child"
    );
    assert!(stderr(&o).contains("deprecated"), "{}", stderr(&o));
    assert!(!marker.exists(), "the child had not finished yet");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "s3cr3t");

    // exec-file: started and not waited for; as in sops the file is gone by then.
    let seen = e.path("seen");
    let cmd = format!(
        "sleep 6; cat {{}} > {} 2>&1; echo $? >> {}",
        seen.display(),
        seen.display()
    );
    let start = Instant::now();
    let o = e.run(
        &["exec-file", "--no-fifo", "--background", "env.yaml", &cmd],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "waited for the child"
    );
    assert!(stderr(&o).contains("deprecated"), "{}", stderr(&o));
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = |t: &str| {
        t.lines()
            .last()
            .is_some_and(|l| l.trim().parse::<i32>().is_ok())
    };
    while !std::fs::read_to_string(&seen).is_ok_and(|t| finished(&t)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&seen).expect("seen");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(
        text.trim_end().ends_with('1'),
        "cat found no file, as with sops: {text}"
    );
}

// ---- servers: moto (S3) and OpenBao (Vault KV), against the real sops 3.11 ----

fn peers() -> HashMap<String, String> {
    hush_testkit::peers().unwrap_or_else(|e| panic!("{e:#}"))
}

fn service_env(name: &str, script: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: eval \"$(scripts/services/{script} start)\"")
    })
}

fn real_sops() -> PathBuf {
    PathBuf::from(
        peers()
            .get("HUSH_PEER_SOPS")
            .expect("HUSH_PEER_SOPS missing; run scripts/dev-env.sh"),
    )
}

/// Runs a Python snippet with boto3 against moto; returns its standard output.
fn boto(url: &str, script: &str, args: &[&str]) -> Vec<u8> {
    let python = peers()
        .get("HUSH_PEER_PYTHON")
        .cloned()
        .expect("HUSH_PEER_PYTHON missing");
    let prelude = "import boto3,sys\ns3=boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n";
    let o = Command::new(python)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(url)
        .args(args)
        .output()
        .expect("python");
    assert!(o.status.success(), "boto3: {}", stderr(&o));
    o.stdout
}

#[test]
#[ignore = "needs scripts/services/moto.sh and the sops peer"]
fn s3_publish_matches_real_sops() {
    let e = env();
    let url = service_env("HUSH_MOTO_URL", "moto.sh");
    let bucket = format!("hush-publish-{}", std::process::id());
    boto(&url, "s3.create_bucket(Bucket=sys.argv[2])", &[&bucket]);
    let other = recipient(&e.other);
    let rules = |prefix: &str| {
        format!(
            "destination_rules:\n  - path_regex: s3/\n    s3_bucket: {bucket}\n    s3_prefix: {prefix}\n    recreation_rule:\n      age: {other}\n"
        )
    };
    e.encrypted("s3/app.yaml", PLAIN);
    let aws = [
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let mut objects = Vec::new();
    for (who, bin) in [("hush", e.sops.clone()), ("sops", real_sops())] {
        e.write(".sops.yaml", &rules(&format!("{who}/")));
        let o = e
            .command(&bin, &["publish", "--yes", "s3/app.yaml"], &aws)
            .output()
            .expect("publish");
        assert_eq!(code(&o), 0, "{who} publish: {}", stderr(&o));
        no_plaintext(&o);
        let body = boto(
            &url,
            "sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())",
            &[&bucket, &format!("{who}/app.yaml")],
        );
        let local = e.path(&format!("{who}-published.yaml"));
        std::fs::write(&local, &body).expect("write");
        // Either tool opens either object with the recreation rule's key, to the same values.
        for (reader, rbin) in [("hush", e.sops.clone()), ("sops", real_sops())] {
            let o = e
                .command(
                    &rbin,
                    &["decrypt", local.to_str().unwrap()],
                    &[("SOPS_AGE_KEY_FILE", e.other.to_str().unwrap())],
                )
                .output()
                .expect("decrypt");
            assert_eq!(code(&o), 0, "{reader} decrypts {who}'s: {}", stderr(&o));
            assert_eq!(stdout(&o), PLAIN, "{reader} decrypts {who}'s");
        }
        objects.push(String::from_utf8(body).expect("utf8"));
    }
    let (hush_fields, hush_recipients) = metadata_shape(&objects[0]);
    let (sops_fields, sops_recipients) = metadata_shape(&objects[1]);
    assert_eq!(hush_recipients, vec![other.clone()]);
    assert_eq!(hush_recipients, sops_recipients);
    // The same fields, but hush writes the default selection rule sops leaves out (without it
    // sops encrypts `*_unencrypted` keys and then cannot open its own object: see below).
    let mut a = hush_fields.clone();
    let mut b = sops_fields.clone();
    b.push("unencrypted_suffix".to_owned());
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "metadata fields: hush {hush_fields:?}, sops {sops_fields:?}"
    );

    // A `*_unencrypted` key stays plaintext in hush's object, which both tools open; sops 3.11
    // encrypts it and its object fails the MAC check (exit 51) in both tools.
    e.encrypted(
        "s3/plainkey.yaml",
        "secret: s3cr3t\nnote_unencrypted: visible\n",
    );
    let mut opened = Vec::new();
    for (who, bin) in [("hush", e.sops.clone()), ("sops", real_sops())] {
        e.write(".sops.yaml", &rules(&format!("{who}/")));
        let o = e
            .command(&bin, &["publish", "--yes", "s3/plainkey.yaml"], &aws)
            .output()
            .expect("publish");
        assert_eq!(code(&o), 0, "{who} publish: {}", stderr(&o));
        let body = boto(
            &url,
            "sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())",
            &[&bucket, &format!("{who}/plainkey.yaml")],
        );
        let local = e.path(&format!("{who}-plainkey.yaml"));
        std::fs::write(&local, &body).expect("write");
        for rbin in [e.sops.clone(), real_sops()] {
            let o = e
                .command(
                    &rbin,
                    &["decrypt", local.to_str().unwrap()],
                    &[("SOPS_AGE_KEY_FILE", e.other.to_str().unwrap())],
                )
                .output()
                .expect("decrypt");
            opened.push((who, code(&o)));
        }
        let text = String::from_utf8(body).expect("utf8");
        assert_eq!(
            text.contains("note_unencrypted: visible"),
            who == "hush",
            "{who}: {text}"
        );
    }
    assert_eq!(
        opened,
        vec![("hush", 0), ("hush", 0), ("sops", 51), ("sops", 51)]
    );

    // Without a recreation rule the object is the file as it is.
    e.write(
        ".sops.yaml",
        &format!("destination_rules:\n  - s3_bucket: {bucket}\n    s3_prefix: raw/\n"),
    );
    // The region from the profile in the shared config file, as the SDK finds it.
    let config = e.write("aws-config", "[profile pub]\nregion = us-east-1\n");
    let o = e
        .command(
            &e.sops,
            &["publish", "-y", "s3/app.yaml"],
            &[
                ("AWS_ENDPOINT_URL", url.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_PROFILE", "pub"),
                ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ],
        )
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("publish");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let body = boto(
        &url,
        "sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())",
        &[&bucket, "raw/app.yaml"],
    );
    assert_eq!(body, std::fs::read(e.path("s3/app.yaml")).expect("read"));

    // A bucket that does not exist: S3's error, named.
    e.write(
        ".sops.yaml",
        "destination_rules:\n  - s3_bucket: no-such-bucket-hush\n",
    );
    let o = e.run(&["publish", "-y", "s3/app.yaml"], &aws);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("NoSuchBucket"), "{}", stderr(&o));
}

fn bao(addr: &str, token: &str, args: &[&str]) -> Output {
    let bin = peers()
        .get("HUSH_PEER_BAO")
        .cloned()
        .expect("HUSH_PEER_BAO missing");
    let o = Command::new(bin)
        .args(args)
        .env("VAULT_ADDR", addr)
        .env("BAO_ADDR", addr)
        .env("VAULT_TOKEN", token)
        .env("BAO_TOKEN", token)
        .output()
        .expect("bao");
    assert!(o.status.success(), "bao {args:?}: {}", stderr(&o));
    o
}

/// The secret's data and, for KV v2, its current version.
fn kv_get(addr: &str, token: &str, path: &str) -> (serde_json::Value, Option<u64>) {
    let o = bao(addr, token, &["kv", "get", "-format=json", path]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    if v["data"]["data"].is_object() && v["data"]["metadata"].is_object() {
        (
            v["data"]["data"].clone(),
            v["data"]["metadata"]["version"].as_u64(),
        )
    } else {
        (v["data"].clone(), None)
    }
}

#[test]
#[ignore = "needs scripts/services/openbao.sh and the sops peer"]
fn vault_kv_publish_matches_real_sops() {
    let e = env();
    let addr = service_env("HUSH_VAULT_ADDR", "openbao.sh");
    let token = service_env("HUSH_VAULT_TOKEN", "openbao.sh");
    let v1 = format!("kv1-{}", std::process::id());
    bao(
        &addr,
        &token,
        &[
            "secrets",
            "enable",
            "-version=1",
            &format!("-path={v1}"),
            "kv",
        ],
    );
    e.encrypted("vault/app.yaml", PLAIN);
    e.write("vault/second.yaml", "a: 1\n---\nb: s3cr3t\n");
    let o = e.run(
        &[
            "encrypt",
            "-i",
            "--age",
            &recipient(&e.key),
            "vault/second.yaml",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let vault = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
    ];
    for (mount, version) in [("secret", 2), (v1.as_str(), 1)] {
        let mut got = Vec::new();
        for (who, bin) in [("hush", e.sops.clone()), ("sops", real_sops())] {
            e.write(
                ".sops.yaml",
                &format!(
                    "destination_rules:\n  - path_regex: vault/\n    vault_path: {who}/\n    vault_kv_mount_name: {mount}/\n    vault_kv_version: {version}\n    omit_extensions: true\n"
                ),
            );
            for file in ["vault/app.yaml", "vault/second.yaml"] {
                let o = e
                    .command(&bin, &["publish", "-y", file], &vault)
                    .output()
                    .expect("publish");
                assert_eq!(
                    code(&o),
                    0,
                    "{who} publish {file} to {mount}: {}",
                    stderr(&o)
                );
                no_plaintext(&o);
            }
            let app = kv_get(&addr, &token, &format!("{mount}/{who}/app"));
            let second = kv_get(&addr, &token, &format!("{mount}/{who}/second"));
            got.push((app, second));
        }
        assert_eq!(got[0].0.0, got[1].0.0, "{mount}: same data as sops");
        assert_eq!(
            got[0].1.0, got[1].1.0,
            "{mount}: same multi-document data as sops"
        );
        assert_eq!(got[0].0.0["db"]["password"], "s3cr3t");
        assert_eq!(got[0].0.0["db"]["port"], 5432);
        assert_eq!(got[0].1.0["b"], "s3cr3t");
        if version == 2 {
            // Publishing unchanged data again makes no new version (sops' up-to-date check).
            let o = e.run(&["publish", "-y", "vault/app.yaml"], &vault);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            assert!(stderr(&o).contains("already up-to-date"), "{}", stderr(&o));
            let (_, again) = kv_get(&addr, &token, &format!("{mount}/sops/app"));
            assert_eq!(again, got[1].0.1);
        }
    }

    // vault_address in the rule: used when the operator allows it, refused otherwise.
    e.write(
        ".sops.yaml",
        &format!("destination_rules:\n  - vault_path: allowed/\n    vault_address: {addr}\n"),
    );
    let env_other = [
        ("VAULT_ADDR", "http://127.0.0.1:9"),
        ("VAULT_TOKEN", token.as_str()),
    ];
    let o = e.run(&["publish", "-y", "vault/app.yaml"], &env_other);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("HUSH_SOPS_VAULT_ADDRS"),
        "{}",
        stderr(&o)
    );
    let allowed = [
        ("VAULT_ADDR", "http://127.0.0.1:9"),
        ("VAULT_TOKEN", token.as_str()),
        ("HUSH_SOPS_VAULT_ADDRS", addr.as_str()),
    ];
    let o = e.run(&["publish", "-y", "vault/app.yaml"], &allowed);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (data, _) = kv_get(&addr, &token, "secret/allowed/app.yaml");
    assert_eq!(data["top"], "héllo");
}
