//! The `sops` persona end to end: exit codes as sops has them, no plaintext on failure, and
//! (ignored, needs peers) interop of every command with the real sops 3.11.0.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sops/tests/fixtures")
}

struct Env {
    dir: tempfile::TempDir,
    sops: PathBuf,
    key_file: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let sops = dir.path().join("sops");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hush"), &sops).expect("symlink");
    Env {
        key_file: fixtures().join("age-key.txt"),
        dir,
        sops,
    }
}

fn recipient(key_file: &Path) -> String {
    std::fs::read_to_string(key_file)
        .expect("key")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key")
        .to_owned()
}

impl Env {
    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut c = Command::new(&self.sops);
        c.args(args)
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", &self.key_file)
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_CONFIG")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path());
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("run hush")
    }

    fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn no_plaintext(o: &Output) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for secret in ["s3cr3t", "admin", "5432", "héllo"] {
        assert!(!all.contains(secret), "output shows plaintext: {all}");
    }
}

#[test]
fn version_is_sops_shaped() {
    let e = env();
    let o = e.run(&["--version"], &[]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sops 3.13.2 "));
    // The update-check flags are accepted; hush never looks for updates.
    for flag in ["--disable-version-check", "--check-for-updates"] {
        let o = e.run(&["--version", flag], &[]);
        assert_eq!(
            code(&o),
            0,
            "{flag}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = e.run(&["--version"], &[("SOPS_DISABLE_VERSION_CHECK", "true")]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn decrypts_sops_files_and_uses_sops_exit_codes() {
    let e = env();
    let original = std::fs::read_to_string(fixtures().join("sops311.doc.yaml")).expect("fixture");
    let expected = std::fs::read(fixtures().join("sops311.doc.yaml.plain")).expect("plain");
    e.write("ok.yaml", original.as_bytes());
    let o = e.run(&["decrypt", "ok.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, expected);
    let o = e.run(&["-d", "--extract", r#"["db"]["port"]"#, "ok.yaml"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "5432\n");

    let line = |p: &str| {
        original
            .lines()
            .find(|l| l.trim_start().starts_with(p))
            .expect("line")
            .to_owned()
    };
    let flip = |l: &str, f: &str| {
        let i = l.find(f).expect("field") + f.len();
        let mut b = l.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).expect("utf8")
    };
    let pw = line("password:");
    let mac = line("mac:");
    let cases = [
        (
            "value.yaml",
            original.replacen(&pw, &flip(&pw, "data:"), 1),
            25,
        ),
        (
            "mac.yaml",
            original.replacen(&mac, &flip(&mac, "data:"), 1),
            24,
        ),
        (
            "plain.yaml",
            original.replacen(
                "plain_unencrypted: visible",
                "plain_unencrypted: visiblE",
                1,
            ),
            51,
        ),
    ];
    for (name, content, want) in cases {
        e.write(name, content.as_bytes());
        let o = e.run(&["decrypt", name], &[]);
        assert_eq!(
            code(&o),
            want,
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.stdout.is_empty(), "{name}: printed something");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(name),
            "{name}: error does not name the file"
        );
        no_plaintext(&o);
    }
    // --ignore-mac opens the file whose plaintext value was changed.
    let o = e.run(&["decrypt", "--ignore-mac", "plain.yaml"], &[]);
    assert_eq!(code(&o), 0);

    // A key that does not open the file: 128.
    let other = fixtures().join("age-keys-other.txt");
    let o = e.run(
        &["decrypt", "ok.yaml"],
        &[("SOPS_AGE_KEY_FILE", other.to_str().expect("utf8"))],
    );
    assert_eq!(code(&o), 128);
    no_plaintext(&o);
}

#[test]
fn encrypt_edit_set_unset_and_status() {
    let e = env();
    let r = recipient(&e.key_file);
    e.write("empty.yaml", b"");
    assert_eq!(
        code(&e.run(&["encrypt", "--age", &r, "empty.yaml"], &[])),
        92
    );
    e.write("s.yaml", b"user: admin\npassword: s3cr3t\n");
    let o = e.run(&["encrypt", "--age", &r, "-i", "s.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(code(&e.run(&["encrypt", "--age", &r, "s.yaml"], &[])), 203);
    assert_eq!(
        String::from_utf8_lossy(&e.run(&["filestatus", "s.yaml"], &[]).stdout),
        "{\"encrypted\":true}\n"
    );
    let before = std::fs::read_to_string(e.dir.path().join("s.yaml")).expect("read");
    assert!(!before.contains("s3cr3t"));
    // An editor that changes nothing: exit 200, file untouched.
    let o = e.run(
        &["edit", "s.yaml"],
        &[("EDITOR", "true"), ("SOPS_EDITOR", "")],
    );
    assert_eq!(code(&o), 200);
    assert_eq!(
        std::fs::read_to_string(e.dir.path().join("s.yaml")).expect("read"),
        before
    );
    // An editor that changes one value: the other keeps its ciphertext.
    let o = e.run(&["s.yaml"], &[("SOPS_EDITOR", "sed -i s/admin/root/")]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let after = std::fs::read_to_string(e.dir.path().join("s.yaml")).expect("read");
    let pw = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("password:"))
            .expect("pw")
            .to_owned()
    };
    let user = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("user:"))
            .expect("user")
            .to_owned()
    };
    assert_eq!(pw(&after), pw(&before));
    assert_ne!(user(&after), user(&before));
    // set / unset.
    assert_eq!(
        code(&e.run(&["set", "s.yaml", r#"["db"]["port"]"#, "5432"], &[])),
        0
    );
    let o = e.run(
        &["decrypt", "--extract", r#"["db"]["port"]"#, "s.yaml"],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "5432\n");
    assert_eq!(code(&e.run(&["unset", "s.yaml", r#"["db"]"#], &[])), 0);
    assert_eq!(code(&e.run(&["unset", "s.yaml", r#"["db"]"#], &[])), 1);
    assert_eq!(
        code(&e.run(&["unset", "--idempotent", "s.yaml", r#"["db"]"#], &[])),
        0
    );
    assert_eq!(code(&e.run(&["set", "s.yaml", "not-a-path", "1"], &[])), 91);
    let o = e.run(&["decrypt", "s.yaml"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "user: root\npassword: s3cr3t\n"
    );
    // exec-env and exec-file see the plaintext; nothing is written.
    let o = e.run(&["exec-env", "s.yaml", "test \"$password\" = s3cr3t"], &[]);
    assert_eq!(code(&o), 0);
    let o = e.run(&["exec-file", "s.yaml", "grep -q 'user: root' {}"], &[]);
    assert_eq!(code(&o), 0);
}

#[test]
fn creation_rules_choose_keys_and_rules() {
    let e = env();
    let r = recipient(&e.key_file);
    e.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    encrypted_regex: ^password$\n    age: {r}\n"
        )
        .as_bytes(),
    );
    std::fs::create_dir(e.dir.path().join("secrets")).expect("mkdir");
    e.write("secrets/a.yaml", b"user: admin\npassword: s3cr3t\n");
    let o = e.run(&["encrypt", "secrets/a.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let enc = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(enc.contains("user: admin"), "{enc}");
    assert!(enc.contains("encrypted_regex: ^password$"), "{enc}");
    // No rule matches and no flag: exit 111.
    e.write("b.yaml", b"a: b\n");
    assert_eq!(code(&e.run(&["encrypt", "b.yaml"], &[])), 111);
}

// ----------------------------------------------------------------------------------------------
// With the real sops 3.11.0.

fn peers() -> HashMap<String, String> {
    hush_testkit::peers().unwrap_or_else(|e| panic!("{e:#}"))
}

fn real_sops(e: &Env, args: &[&str], key_file: &Path) -> Output {
    let p = peers();
    let sops = p
        .get("HUSH_PEER_SOPS")
        .expect("HUSH_PEER_SOPS missing; run scripts/dev-env.sh");
    Command::new(sops)
        .args(args)
        .current_dir(e.dir.path())
        .env("SOPS_AGE_KEY_FILE", key_file)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_RECIPIENTS")
        .output()
        .expect("run sops")
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn every_command_interoperates_with_real_sops() {
    let e = env();
    let r = recipient(&e.key_file);
    let other = fixtures().join("age-keys-other.txt");
    let r2 = recipient(&other);
    for (name, content) in [
        (
            "a.yaml",
            &b"user: admin\npassword: s3cr3t\nlist: [1, two]\n"[..],
        ),
        ("a.json", &b"{\"user\": \"admin\", \"n\": 5}"[..]),
        ("a.env", &b"USER=admin\nPASSWORD=s3cr3t\n"[..]),
        ("a.ini", &b"[db]\nuser = admin\n"[..]),
        ("a.bin", &b"\x00\x01binary\xff"[..]),
    ] {
        e.write(name, content);
        // hush encrypts (-i), sops decrypts.
        let o = e.run(&["-e", "-i", "--age", &r, name], &[]);
        assert_eq!(
            code(&o),
            0,
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let theirs = real_sops(&e, &["decrypt", name], &e.key_file);
        assert!(
            theirs.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let ours = e.run(&["-d", name], &[]);
        assert_eq!(ours.stdout, theirs.stdout, "{name}");
        // sops rotates with an added key; hush decrypts with the new key only.
        let o = real_sops(&e, &["rotate", "-i", "--add-age", &r2, name], &e.key_file);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = e.run(
            &["-d", name],
            &[("SOPS_AGE_KEY_FILE", other.to_str().expect("utf8"))],
        );
        assert_eq!(o.stdout, theirs.stdout, "{name} after sops rotate");
        // hush rotates and removes the first key; sops decrypts with the second.
        let o = e.run(
            &["rotate", "-i", "--rm-age", &r, name],
            &[("SOPS_AGE_KEY_FILE", other.to_str().expect("utf8"))],
        );
        assert_eq!(
            code(&o),
            0,
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = real_sops(&e, &["decrypt", name], &other);
        assert_eq!(o.stdout, theirs.stdout, "{name} after hush rotate");
        let o = real_sops(&e, &["decrypt", name], &e.key_file);
        assert!(
            !o.status.success(),
            "{name}: removed key still opens the file"
        );
    }
    // set by hush, read by sops; set by sops, read by hush.
    e.write("s.yaml", b"a: 1\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "--age", &r, "s.yaml"], &[])),
        0
    );
    assert_eq!(
        code(&e.run(&["set", "s.yaml", r#"["b"]"#, r#"{"c": "s3cr3t"}"#], &[])),
        0
    );
    let o = real_sops(
        &e,
        &["decrypt", "--extract", r#"["b"]["c"]"#, "s.yaml"],
        &e.key_file,
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "s3cr3t");
    let o = real_sops(&e, &["set", "s.yaml", r#"["d"]"#, "true"], &e.key_file);
    assert!(o.status.success());
    let o = e.run(&["decrypt", "s.yaml"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "a: 1\nb:\n    c: s3cr3t\nd: true\n"
    );
    // updatekeys from .sops.yaml: hush adds a recipient, sops opens with it.
    e.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {r},{r2}\n").as_bytes(),
    );
    let o = e.run(&["updatekeys", "-y", "s.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let o = real_sops(&e, &["decrypt", "s.yaml"], &other);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // filestatus agrees.
    for f in ["s.yaml", ".sops.yaml"] {
        let theirs = real_sops(&e, &["filestatus", f], &e.key_file);
        let ours = e.run(&["filestatus", f], &[]);
        assert_eq!(ours.stdout, theirs.stdout, "filestatus {f}");
    }
}

fn service_env(name: &str, script: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: eval \"$(scripts/services/{script} start)\"")
    })
}

/// For every store: hush encrypts for `flag value`, real sops decrypts; real sops encrypts, hush
/// decrypts; both print the same plaintext.
fn both_ways(e: &Env, flag: &str, value: &str, env: &[(&str, String)]) {
    let with = |c: &mut Command| {
        c.current_dir(e.dir.path())
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("HOME", e.dir.path());
        for (k, v) in env {
            c.env(k, v);
        }
    };
    let sops_peer = peers()
        .get("HUSH_PEER_SOPS")
        .cloned()
        .expect("HUSH_PEER_SOPS missing; run scripts/dev-env.sh");
    let stores: [(&str, &[u8]); 5] = [
        ("yaml", b"user: admin\npassword: s3cr3t\nport: 5432\n"),
        ("json", b"{\n\t\"user\": \"admin\",\n\t\"port\": 5432\n}\n"),
        ("env", b"USER=admin\nPASSWORD=s3cr3t\n"),
        ("ini", b"[db]\nuser     = admin\npassword = s3cr3t\n"),
        ("bin", b"\x00binary s3cr3t\xff"),
    ];
    for (ext, plain) in stores {
        let ours_name = format!("h.{ext}");
        let theirs_name = format!("s.{ext}");
        e.write(&ours_name, plain);
        let mut c = Command::new(&e.sops);
        c.args(["encrypt", "-i", flag, value, &ours_name]);
        with(&mut c);
        let o = c.output().expect("hush");
        assert_eq!(
            code(&o),
            0,
            "hush encrypt {flag} {ext}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut c = Command::new(&sops_peer);
        c.args(["decrypt", &ours_name]);
        with(&mut c);
        let o = c.output().expect("sops");
        assert!(
            o.status.success(),
            "sops decrypt of hush's {flag} {ext}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout, plain, "{flag} {ext}");

        e.write(&theirs_name, plain);
        let mut c = Command::new(&sops_peer);
        c.args(["encrypt", "-i", flag, value, &theirs_name]);
        with(&mut c);
        let o = c.output().expect("sops");
        assert!(
            o.status.success(),
            "sops encrypt {flag} {ext}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut c = Command::new(&e.sops);
        c.args(["decrypt", &theirs_name]);
        with(&mut c);
        let o = c.output().expect("hush");
        assert_eq!(
            code(&o),
            0,
            "hush decrypt of sops' {flag} {ext}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout, plain, "{flag} {ext}");
    }
}

#[test]
#[ignore = "needs scripts/services/openbao.sh and the sops peer"]
fn vault_transit_interoperates_with_real_sops() {
    let e = env();
    let addr = service_env("HUSH_VAULT_ADDR", "openbao.sh");
    let token = service_env("HUSH_VAULT_TOKEN", "openbao.sh");
    let bao = peers()
        .get("HUSH_PEER_BAO")
        .cloned()
        .expect("HUSH_PEER_BAO missing");
    let name = format!("hush-sops-{}", std::process::id());
    let o = Command::new(bao)
        .args(["write", "-f", &format!("transit/keys/{name}")])
        .env("VAULT_ADDR", &addr)
        .env("VAULT_TOKEN", &token)
        .output()
        .expect("bao");
    assert!(
        o.status.success(),
        "creating the transit key: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let uri = format!("{addr}/v1/transit/keys/{name}");
    both_ways(
        &e,
        "--hc-vault-transit",
        &uri,
        &[("VAULT_ADDR", addr), ("VAULT_TOKEN", token)],
    );
}

#[test]
#[ignore = "needs scripts/services/moto.sh and the sops peer"]
fn aws_kms_interoperates_with_real_sops() {
    let e = env();
    let url = service_env("HUSH_MOTO_URL", "moto.sh");
    let python = peers()
        .get("HUSH_PEER_PYTHON")
        .cloned()
        .expect("HUSH_PEER_PYTHON missing");
    let o = Command::new(python)
        .args([
            "-c",
            "import boto3,sys; print(boto3.client('kms', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing').create_key()['KeyMetadata']['Arn'])",
            &url,
        ])
        .output()
        .expect("python");
    assert!(
        o.status.success(),
        "creating the KMS key: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let arn = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let env = [
        ("AWS_ENDPOINT_URL", url),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    both_ways(&e, "--kms", &arn, &env);
}

#[test]
fn recursive_updatekeys_and_rotate_cover_every_sops_file() {
    let e = env();
    let r = recipient(&e.key_file);
    let other = fixtures().join("age-keys-other.txt");
    let r2 = recipient(&other);
    std::fs::create_dir_all(e.dir.path().join("tree/sub")).expect("mkdir");
    std::fs::create_dir_all(e.dir.path().join("tree/.git")).expect("mkdir");
    for name in ["tree/a.yaml", "tree/sub/b.json", "tree/sub/c.env"] {
        let content: &[u8] = match name {
            n if n.ends_with(".json") => b"{\"k\": \"s3cr3t\"}",
            n if n.ends_with(".env") => b"K=s3cr3t\n",
            _ => b"k: s3cr3t\n",
        };
        e.write(name, content);
        let o = e.run(&["encrypt", "-i", "--age", &r, name], &[]);
        assert_eq!(
            code(&o),
            0,
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    e.write("tree/plain.yaml", b"not: encrypted\n");
    let hidden = std::fs::read(e.dir.path().join("tree/a.yaml")).expect("read");
    e.write("tree/.git/skipped.yaml", &hidden);
    e.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {r},{r2}\n").as_bytes(),
    );

    let o = e.run(&["updatekeys", "--recursive", "tree"], &[]);
    assert_eq!(code(&o), 1, "--recursive without -y must refuse");
    let o = e.run(&["updatekeys", "--recursive", "-y", "tree"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("3 sops files: 3 updated, 0 unchanged, 0 failed"),
        "{err}"
    );
    let o = e.run(&["updatekeys", "--recursive", "-y", "tree"], &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 sops files: 0 updated, 3 unchanged"));
    for name in ["tree/a.yaml", "tree/sub/b.json", "tree/sub/c.env"] {
        let o = e.run(
            &["decrypt", name],
            &[("SOPS_AGE_KEY_FILE", other.to_str().expect("utf8"))],
        );
        assert_eq!(code(&o), 0, "{name} with the added key");
    }
    assert_eq!(
        std::fs::read(e.dir.path().join("tree/.git/skipped.yaml")).expect("read"),
        hidden
    );

    // A file with conflict markers: named in the summary, the others still rotate.
    e.write(
        "tree/conflict.yaml",
        format!(
            "<<<<<<< HEAD\nk: 1\n=======\nk: 2\n>>>>>>> other\n{}",
            String::from_utf8_lossy(&hidden)
        )
        .as_bytes(),
    );
    let before = std::fs::read_to_string(e.dir.path().join("tree/a.yaml")).expect("read");
    let o = e.run(&["rotate", "--recursive", "tree"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("4 sops files: 3 rotated, 0 unchanged, 1 failed"),
        "{err}"
    );
    assert!(
        err.contains("conflict.yaml") && err.contains("conflicting keys: k"),
        "{err}"
    );
    let after = std::fs::read_to_string(e.dir.path().join("tree/a.yaml")).expect("read");
    assert_ne!(before, after);
    let o = e.run(&["decrypt", "tree/a.yaml"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "k: s3cr3t\n");
}

#[test]
fn standard_input_with_input_type() {
    use std::io::Write as _;
    let e = env();
    let r = recipient(&e.key_file);
    let run_stdin = |args: &[&str], input: &[u8]| -> Output {
        let mut c = Command::new(&e.sops);
        c.args(args)
            .current_dir(e.dir.path())
            .env("SOPS_AGE_KEY_FILE", &e.key_file)
            .env("HOME", e.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let enc = run_stdin(
        &[
            "encrypt",
            "--input-type",
            "json",
            "--output-type",
            "json",
            "--age",
            &r,
        ],
        b"{\"a\": \"s3cr3t\"}",
    );
    assert_eq!(code(&enc), 0, "{}", String::from_utf8_lossy(&enc.stderr));
    let dec = run_stdin(
        &["decrypt", "--input-type", "json", "--output-type", "yaml"],
        &enc.stdout,
    );
    assert_eq!(code(&dec), 0, "{}", String::from_utf8_lossy(&dec.stderr));
    assert_eq!(String::from_utf8_lossy(&dec.stdout), "a: s3cr3t\n");
}

#[test]
fn toml_is_an_addition_selected_by_type() {
    let e = env();
    let r = recipient(&e.key_file);
    e.write(
        "c.toml",
        b"# app\nname = \"x\"\n\n[db]\npassword = \"s3cr3t\"\n",
    );
    let o = e.run(
        &[
            "encrypt",
            "--input-type",
            "toml",
            "--output-type",
            "toml",
            "--age",
            &r,
            "c.toml",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let enc = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        enc.contains("[db]") && enc.contains("[sops]") && !enc.contains("s3cr3t"),
        "{enc}"
    );
    e.write("c.enc.toml", enc.as_bytes());
    let o = e.run(
        &[
            "decrypt",
            "--input-type",
            "toml",
            "--output-type",
            "toml",
            "c.enc.toml",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "# app\nname = \"x\"\n\n[db]\npassword = \"s3cr3t\"\n"
    );
    // Without a type, .toml is binary, as in sops.
    let o = e.run(&["encrypt", "--age", &r, "c.toml"], &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"data\": \"ENC["));
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers (sops, gpg)"]
fn pgp_interoperates_with_real_sops() {
    let e = env();
    let gpg = peers()
        .get("HUSH_PEER_GPG")
        .cloned()
        .expect("HUSH_PEER_GPG missing; run scripts/dev-env.sh");
    let home = e.dir.path().join("gnupg");
    std::fs::create_dir(&home).expect("mkdir");
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let o = Command::new(&gpg)
        .args([
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "hush sops test <sops@example.invalid>",
            "default",
            "default",
            "never",
        ])
        .env("GNUPGHOME", &home)
        .output()
        .expect("gpg");
    assert!(
        o.status.success(),
        "gpg key generation: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(&gpg)
        .args(["--batch", "--with-colons", "--list-secret-keys"])
        .env("GNUPGHOME", &home)
        .output()
        .expect("gpg");
    let listing = String::from_utf8_lossy(&o.stdout).into_owned();
    let fp = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_owned())
        .expect("fingerprint");
    both_ways(
        &e,
        "--pgp",
        &fp,
        &[("GNUPGHOME", home.to_string_lossy().into_owned())],
    );
}

#[test]
fn extract_matches_sops_quirks() {
    let e = env();
    e.write(
        "m.yaml",
        std::fs::read(fixtures().join("sops311.doc.yaml"))
            .expect("fixture")
            .as_slice(),
    );
    // A string: raw, no newline.
    let o = e.run(
        &["decrypt", "--extract", r#"["db"]["user"]"#, "m.yaml"],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "admin");
    // A map replaces the first document; the second document is still printed (sops 3.11).
    let o = e.run(
        &[
            "decrypt",
            "--extract",
            r#"["db"]["empty_list_parent"]"#,
            "m.yaml",
        ],
        &[],
    );
    assert_eq!(code(&o), 1);
    let o = e.run(
        &["decrypt", "--extract", r#"["anchors"]["base"]"#, "m.yaml"],
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "k: v\n---\nsecond: doc\n\"n\": 7\n"
    );
    // A list item by index.
    let o = e.run(&["decrypt", "--extract", r#"["list"][1]"#, "m.yaml"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "2\n");
}

/// A key file holding both the fixture key and the "other" key.
fn both_keys(e: &Env) -> PathBuf {
    let mut text = std::fs::read_to_string(&e.key_file).expect("key");
    text.push_str(
        &std::fs::read_to_string(fixtures().join("age-keys-other.txt")).expect("other key"),
    );
    e.write("both-keys.txt", text.as_bytes())
}

/// The lines of an encrypted YAML file that `groups` must leave alone.
fn values_and_mac(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| {
            !l.starts_with(' ') && !l.starts_with("sops:")
                || l.trim_start().starts_with("mac:")
                || l.trim_start().starts_with("lastmodified:")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn groups_add_and_delete_rewrap_the_same_data_key() {
    let e = env();
    let r = recipient(&e.key_file);
    let other = fixtures().join("age-keys-other.txt");
    let r2 = recipient(&other);
    let both = both_keys(&e);
    let both = both.to_str().expect("utf8");
    let other = other.to_str().expect("utf8");
    e.write("g.yaml", b"user: admin\npassword: s3cr3t\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "--age", &r, "g.yaml"], &[])),
        0
    );
    let read = || std::fs::read_to_string(e.dir.path().join("g.yaml")).expect("read");
    let before = read();
    // No keys: refused (sops would add a group nobody can open).
    let o = e.run(&["groups", "add", "--file", "g.yaml", "-i"], &[]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--age"));
    assert_eq!(read(), before);
    // Without -i the result goes to standard output.
    let o = e.run(&["groups", "add", "-f", "g.yaml", "--age", &r2], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read(), before);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&r2));
    // A second group; both shares are needed now (threshold = number of groups).
    let o = e.run(&["groups", "add", "-i", "-f", "g.yaml", "--age", &r2], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let two = read();
    assert_eq!(values_and_mac(&two), values_and_mac(&before));
    assert!(two.contains("shamir_threshold: 2"), "{two}");
    assert_eq!(two.matches("recipient:").count(), 2, "{two}");
    let o = e.run(&["decrypt", "g.yaml"], &[("SOPS_AGE_KEY_FILE", both)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "user: admin\npassword: s3cr3t\n"
    );
    let o = e.run(&["decrypt", "g.yaml"], &[]);
    assert_eq!(code(&o), 128, "one share must not be enough");
    no_plaintext(&o);
    // Deleting a group would leave fewer groups than the threshold.
    let o = e.run(
        &["groups", "delete", "-i", "-f", "g.yaml", "0"],
        &[("SOPS_AGE_KEY_FILE", both)],
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Shamir threshold is 2"));
    // An index that does not exist.
    let o = e.run(
        &["groups", "delete", "-f", "g.yaml", "7"],
        &[("SOPS_AGE_KEY_FILE", both)],
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no key group 7"));
    assert_eq!(read(), two);
    // With the threshold lowered the first group goes; only the other key opens the file.
    let o = e.run(
        &[
            "groups",
            "delete",
            "--shamir-secret-sharing-threshold",
            "1",
            "-i",
            "--file",
            "g.yaml",
            "0",
        ],
        &[("SOPS_AGE_KEY_FILE", both)],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let one = read();
    assert_eq!(values_and_mac(&one), values_and_mac(&before));
    assert_eq!(one.matches("recipient:").count(), 1, "{one}");
    assert!(one.contains(&r2) && !one.contains(&r), "{one}");
    let o = e.run(&["decrypt", "g.yaml"], &[("SOPS_AGE_KEY_FILE", other)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(code(&e.run(&["decrypt", "g.yaml"], &[])), 128);
    // The last group cannot go.
    let o = e.run(
        &["groups", "delete", "-f", "g.yaml", "0"],
        &[("SOPS_AGE_KEY_FILE", other)],
    );
    assert_eq!(code(&o), 1);
    // Threshold 1 over two groups could never be opened: refused.
    let o = e.run(
        &["groups", "add", "-f", "g.yaml", "--age", &r],
        &[("SOPS_AGE_KEY_FILE", other)],
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("threshold of 1"));
    // --age may be repeated (as in sops' groups add) and takes comma-separated lists.
    let o = e.run(
        &[
            "groups",
            "add",
            "-i",
            "-f",
            "g.yaml",
            "--shamir-secret-sharing-threshold",
            "2",
            "--age",
            &r,
            "--age",
            &r2,
        ],
        &[("SOPS_AGE_KEY_FILE", other)],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read().matches("recipient:").count(), 3);
    // Elsewhere the last of a repeated key flag counts, as in sops.
    e.write("last.yaml", b"a: b\n");
    let o = e.run(&["encrypt", "--age", &r, "--age", &r2, "last.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let enc = String::from_utf8_lossy(&o.stdout);
    assert!(enc.contains(&r2) && !enc.contains(&r), "{enc}");
}

#[test]
fn show_master_keys_edits_the_metadata_too() {
    let e = env();
    let r = recipient(&e.key_file);
    let other = fixtures().join("age-keys-other.txt");
    let r2 = recipient(&other);
    e.write("m.yaml", b"user: admin\npassword: s3cr3t\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "--age", &r, "m.yaml"], &[])),
        0
    );
    // The editor sees the decrypted values and the sops block, and swaps the recipient.
    let editor = e.write(
        "editor.sh",
        format!(
            "#!/bin/sh\ngrep -q '^sops:' \"$1\" || exit 3\ngrep -q 'password: s3cr3t' \"$1\" || exit 4\nsed -i -e 's/{r}/{r2}/' -e 's/admin/root/' \"$1\"\n"
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let editor = editor.to_str().expect("utf8");
    // Without -s the sops block is not shown: the editor script fails.
    let o = e.run(&["edit", "m.yaml"], &[("SOPS_EDITOR", editor)]);
    assert_ne!(code(&o), 0);
    let o = e.run(&["-s", "m.yaml"], &[("SOPS_EDITOR", editor)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(e.dir.path().join("m.yaml")).expect("read");
    assert!(text.contains(&r2) && !text.contains(&r), "{text}");
    assert!(!text.contains("s3cr3t") && !text.contains("root"), "{text}");
    // The data key is wrapped for the edited recipient only.
    let o = e.run(
        &["decrypt", "m.yaml"],
        &[("SOPS_AGE_KEY_FILE", other.to_str().expect("utf8"))],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "user: root\npassword: s3cr3t\n"
    );
    assert_eq!(code(&e.run(&["decrypt", "m.yaml"], &[])), 128);
}

/// The caller's uid, from /proc (tests may run as root or not).
fn uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("uid")
}

#[test]
fn exec_env_user_runs_the_command_as_that_user() {
    let e = env();
    let r = recipient(&e.key_file);
    e.write("x.yaml", b"password: s3cr3t\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "--age", &r, "x.yaml"], &[])),
        0
    );
    let o = e.run(
        &[
            "exec-env",
            "--user",
            "nobody",
            "x.yaml",
            "test \"$(id -u)\" = 65534 && test \"$password\" = s3cr3t",
        ],
        &[],
    );
    if uid() == 0 {
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        // Only root may switch users; the failure names the user.
        assert_ne!(code(&o), 0);
        assert!(String::from_utf8_lossy(&o.stderr).contains("as user nobody"));
    }
    let o = e.run(
        &["exec-env", "--user", "no-such-user-x", "x.yaml", "echo ran"],
        &[],
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown user"));
    assert!(o.stdout.is_empty());
    no_plaintext(&o);
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn groups_and_exec_env_user_interoperate_with_real_sops() {
    let e = env();
    let r = recipient(&e.key_file);
    let other = fixtures().join("age-keys-other.txt");
    let r2 = recipient(&other);
    let both = both_keys(&e);
    e.write("g.yaml", b"user: admin\npassword: s3cr3t\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "--age", &r, "g.yaml"], &[])),
        0
    );
    // hush adds a group; sops needs both shares to open it.
    let o = e.run(&["groups", "add", "-i", "-f", "g.yaml", "--age", &r2], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let o = real_sops(&e, &["decrypt", "g.yaml"], &both);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "user: admin\npassword: s3cr3t\n"
    );
    assert!(
        !real_sops(&e, &["decrypt", "g.yaml"], &e.key_file)
            .status
            .success()
    );
    // sops deletes a group of hush's file; hush opens the rest with that group's key.
    let o = real_sops(
        &e,
        &[
            "groups",
            "delete",
            "-i",
            "--shamir-secret-sharing-threshold",
            "1",
            "--file",
            "g.yaml",
            "1",
        ],
        &both,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = e.run(&["decrypt", "g.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    // sops adds a group keeping threshold 1: a file neither sops nor hush can open (one
    // share is never combined); hush refuses to write such a file.
    let o = real_sops(
        &e,
        &["groups", "add", "--file", "g.yaml", "--age", &r2],
        &e.key_file,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    e.write("t1.yaml", &o.stdout);
    let theirs = real_sops(&e, &["decrypt", "t1.yaml"], &both);
    let ours = e.run(
        &["decrypt", "t1.yaml"],
        &[("SOPS_AGE_KEY_FILE", both.to_str().expect("utf8"))],
    );
    assert_eq!(theirs.status.code(), Some(128));
    assert_eq!(
        code(&ours),
        128,
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let o = e.run(&["groups", "add", "--file", "g.yaml", "--age", &r2], &[]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("threshold of 1"));
    // sops adds a group with threshold 2; hush needs both shares; the threshold errors agree.
    let o = real_sops(
        &e,
        &[
            "groups",
            "add",
            "-i",
            "--shamir-secret-sharing-threshold",
            "2",
            "--file",
            "g.yaml",
            "--age",
            &r2,
        ],
        &e.key_file,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(code(&e.run(&["decrypt", "g.yaml"], &[])), 128);
    let both_s = both.to_str().expect("utf8");
    let o = e.run(&["decrypt", "g.yaml"], &[("SOPS_AGE_KEY_FILE", both_s)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = real_sops(&e, &["groups", "delete", "--file", "g.yaml", "0"], &both);
    let ours = e.run(
        &["groups", "delete", "--file", "g.yaml", "0"],
        &[("SOPS_AGE_KEY_FILE", both_s)],
    );
    assert_eq!(theirs.status.code(), Some(1));
    assert_eq!(code(&ours), 1);
    // exec-env --user: the same user and environment as sops gives the child.
    let cmd = "echo $(id -u):$(id -g):$password";
    let theirs = real_sops(&e, &["exec-env", "--user", "nobody", "g.yaml", cmd], &both);
    let ours = e.run(
        &["exec-env", "--user", "nobody", "g.yaml", cmd],
        &[("SOPS_AGE_KEY_FILE", both_s)],
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout)
    );
    assert_eq!(ours.status.code(), theirs.status.code());
}

// ----------------------------------------------------------------------------------------------
// exec-file and the legacy --set.

fn encrypted_x(e: &Env) {
    let r = recipient(&e.key_file);
    e.write("x.yaml", b"password: s3cr3t\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "--age", &r, "x.yaml"], &[])),
        0
    );
}

fn stdout(o: &Output) -> String {
    assert_eq!(code(o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn exec_file_streams_through_a_fifo_in_a_private_directory() {
    let e = env();
    encrypted_x(&e);
    // Default: a FIFO (0600) in a fresh 0700 directory, gone afterwards.
    let out = stdout(&e.run(
        &[
            "exec-file",
            "x.yaml",
            "test -p {} && stat -c %a $(dirname {}) {} && echo {} && cat {}",
        ],
        &[],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["700", "600"], "{out}");
    assert!(lines[2].ends_with("/tmp-file"), "{out}");
    assert!(!Path::new(lines[2]).parent().unwrap().exists());
    assert_eq!(lines[3], "password: s3cr3t", "{out}");
    // --no-fifo: a regular 0600 file; `'{}'` and `"{}"` mean the same path.
    let out = stdout(&e.run(
        &[
            "exec-file",
            "--no-fifo",
            "x.yaml",
            "test -f '{}' && ! test -p \"{}\" && stat -c %a {} && cat {} && echo {}",
        ],
        &[],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["600", "password: s3cr3t"], "{out}");
    assert!(!Path::new(lines[2]).exists());
    // --filename and --output-type.
    let out = stdout(&e.run(
        &[
            "exec-file",
            "--filename",
            "app.env",
            "--output-type",
            "dotenv",
            "x.yaml",
            "cat {}; basename {}",
        ],
        &[],
    ));
    assert_eq!(out, "password=s3cr3t\napp.env\n");
    // A command that never opens the FIFO neither hangs hush nor loses its exit code.
    let start = std::time::Instant::now();
    assert_eq!(code(&e.run(&["exec-file", "x.yaml", "exit 3"], &[])), 3);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn exec_file_refuses_names_a_shell_would_interpret() {
    let e = env();
    encrypted_x(&e);
    for bad in ["a b", "$(id)", "../x", "a;b", "x'y"] {
        let o = e.run(&["exec-file", "--filename", bad, "x.yaml", "cat {}"], &[]);
        assert_eq!(code(&o), 1, "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--filename"));
        assert!(o.stdout.is_empty());
        no_plaintext(&o);
    }
    let spaced = e.dir.path().join("my tmp");
    std::fs::create_dir(&spaced).unwrap();
    let o = e.run(
        &["exec-file", "x.yaml", "cat {}"],
        &[("TMPDIR", spaced.to_str().unwrap())],
    );
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("TMPDIR"));
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read_dir(&spaced).unwrap().count(), 0);
}

#[test]
fn exec_file_user_gives_the_fifo_and_the_file_to_that_user() {
    let e = env();
    encrypted_x(&e);
    for fifo in [&[][..], &["--no-fifo"][..]] {
        let mut args = vec!["exec-file", "--user", "nobody"];
        args.extend_from_slice(fifo);
        args.extend_from_slice(&["x.yaml", "test \"$(id -u)\" = 65534 && cat {}"]);
        let o = e.run(&args, &[]);
        if uid() == 0 {
            assert_eq!(stdout(&o), "password: s3cr3t\n");
        } else {
            assert_ne!(code(&o), 0);
            assert!(String::from_utf8_lossy(&o.stderr).contains("--user"));
            no_plaintext(&o);
        }
    }
}

#[test]
fn legacy_set_writes_the_file_in_place() {
    let e = env();
    encrypted_x(&e);
    let o = e.run(&["--set", r#"["db"] {"port": 5432}"#, "x.yaml"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    let out = stdout(&e.run(&["decrypt", "x.yaml"], &[]));
    assert_eq!(out, "password: s3cr3t\ndb:\n    port: 5432\n");
    let o = e.run(&["--set", r#"["db"]5"#, "x.yaml"], &[]);
    assert_eq!(code(&o), 7);
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn exec_file_and_legacy_set_match_real_sops() {
    let e = env();
    encrypted_x(&e);
    let mut cmds: Vec<&[&str]> = vec![
        &[
            "exec-file",
            "x.yaml",
            "test -p {} && stat -c %a {} && cat {}",
        ],
        &[
            "exec-file",
            "--no-fifo",
            "x.yaml",
            "test -f {} && stat -c %a {} && cat {}",
        ],
        &[
            "exec-file",
            "--filename",
            "a.json",
            "--output-type",
            "json",
            "x.yaml",
            "cat {}; basename {}",
        ],
        &["exec-file", "x.yaml", "exit 4"],
    ];
    if uid() == 0 {
        cmds.push(&["exec-file", "--user", "nobody", "x.yaml", "id -u; cat {}"]);
        cmds.push(&[
            "exec-file",
            "--no-fifo",
            "--user",
            "nobody",
            "x.yaml",
            "id -u; cat {}",
        ]);
    }
    for args in cmds {
        let theirs = real_sops(&e, args, &e.key_file);
        let ours = e.run(args, &[]);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{args:?}"
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
    }
    // Legacy --set both ways, and the same exit code for a malformed one.
    let o = real_sops(
        &e,
        &["--set", r#"["a"] "from sops""#, "x.yaml"],
        &e.key_file,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        code(&e.run(&["--set", r#"["b"] [1, "two"]"#, "x.yaml"], &[])),
        0
    );
    let theirs = real_sops(&e, &["decrypt", "x.yaml"], &e.key_file);
    assert_eq!(
        String::from_utf8_lossy(&theirs.stdout),
        "password: s3cr3t\na: from sops\nb:\n    - 1\n    - two\n"
    );
    let bad = ["--set", r#"["a"]"x""#, "x.yaml"];
    assert_eq!(
        code(&e.run(&bad, &[])),
        real_sops(&e, &bad, &e.key_file).status.code().unwrap()
    );
}

// ----------------------------------------------------------------------------------------------
// encrypt/decrypt --recursive and the JSON summary.

fn json_summary(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// A repository: `.sops.yaml` selects `secrets/…yaml`; one file is already encrypted.
fn repo(e: &Env) {
    let r = recipient(&e.key_file);
    e.write(
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: ^secrets/.*\\.(yaml|env)$\n    age: {r}\n  - age: {r}\n").as_bytes(),
    );
    for dir in ["secrets/sub", "secrets/.cache", "docs"] {
        std::fs::create_dir_all(e.dir.path().join(dir)).unwrap();
    }
    e.write("secrets/a.yaml", b"password: s3cr3t\n");
    e.write("secrets/sub/b.yaml", b"user: admin\n");
    e.write("secrets/sub/.env", b"PORT=5432\n");
    e.write("secrets/done.yaml", b"token: s3cr3t\n");
    assert_eq!(
        code(&e.run(&["encrypt", "-i", "secrets/done.yaml"], &[])),
        0
    );
    e.write("secrets/.cache/c.yaml", b"cached: s3cr3t\n");
    e.write("secrets/notes.txt", b"plain notes\n");
    e.write("docs/d.yaml", b"doc: plain\n");
}

#[test]
fn encrypt_and_decrypt_recursive_follow_the_creation_rules() {
    let e = env();
    repo(&e);
    let o = e.run(&["encrypt", "--recursive", "."], &[]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("add -i"));

    let o = e.run(
        &[
            "encrypt",
            "--recursive",
            "-i",
            "--output-format",
            "json",
            ".",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let s = json_summary(&o);
    assert_eq!(
        (&s["total"], &s["encrypted"], &s["unchanged"], &s["failed"]),
        (&4.into(), &3.into(), &1.into(), &0.into()),
        "{s}"
    );
    let paths: Vec<&str> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "./secrets/a.yaml",
            "./secrets/done.yaml",
            "./secrets/sub/.env",
            "./secrets/sub/b.yaml"
        ]
    );
    // Not selected: a catch-all rule's files, hidden directories, other names.
    for (name, plain) in [
        ("docs/d.yaml", "doc: plain\n"),
        ("secrets/.cache/c.yaml", "cached: s3cr3t\n"),
        ("secrets/notes.txt", "plain notes\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(e.dir.path().join(name)).unwrap(),
            plain
        );
    }
    no_plaintext(&e.run(&["filestatus", "secrets/sub/b.yaml"], &[]));
    assert_eq!(
        stdout(&e.run(&["decrypt", "secrets/sub/.env"], &[])),
        "PORT=5432\n"
    );

    // A tampered file fails alone, named in the summary; the others are decrypted in place.
    let a = std::fs::read_to_string(e.dir.path().join("secrets/a.yaml")).unwrap();
    let tampered = a.replacen(
        "password: ENC[AES256_GCM,data:",
        "password: ENC[AES256_GCM,data:AA",
        1,
    );
    assert_ne!(a, tampered);
    e.write("secrets/a.yaml", tampered.as_bytes());
    let o = e.run(&["decrypt", "--recursive", "-i", "secrets"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("4 sops files: 3 decrypted, 0 unchanged, 1 failed")
            && err.contains("FAILED secrets/a.yaml"),
        "{err}"
    );
    no_plaintext(&o);
    assert_eq!(
        std::fs::read_to_string(e.dir.path().join("secrets/sub/b.yaml")).unwrap(),
        "user: admin\n"
    );
    let o = e.run(
        &[
            "decrypt",
            "--recursive",
            "-i",
            "--output-format",
            "json",
            "secrets",
        ],
        &[],
    );
    assert_eq!(code(&o), 1);
    let s = json_summary(&o);
    assert_eq!((&s["total"], &s["failed"]), (&1.into(), &1.into()), "{s}");
    assert_eq!(s["files"][0]["outcome"], "failed");
    assert!(
        s["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("secrets/a.yaml")
    );
    no_plaintext(&o);
}

#[test]
#[ignore = "needs scripts/dev-env.sh peers"]
fn recursive_encrypt_output_opens_with_real_sops() {
    let e = env();
    repo(&e);
    let o = e.run(&["encrypt", "--recursive", "-i", "."], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    for (name, plain) in [
        ("secrets/a.yaml", "password: s3cr3t\n"),
        ("secrets/sub/b.yaml", "user: admin\n"),
        ("secrets/sub/.env", "PORT=5432\n"),
    ] {
        let o = real_sops(&e, &["decrypt", name], &e.key_file);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), plain);
    }
    // And files real sops encrypted are decrypted in place by the tree run.
    e.write("secrets/z.yaml", b"z: s3cr3t\n");
    let o = real_sops(&e, &["encrypt", "-i", "secrets/z.yaml"], &e.key_file);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = e.run(&["decrypt", "--recursive", "-i", "secrets"], &[]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(e.dir.path().join("secrets/z.yaml")).unwrap(),
        "z: s3cr3t\n"
    );
}
