//! Resource bombs through the CLI: `hush sops`, `hush seal`, `hush render` and `hush krm` given
//! alias bombs, template bombs, deep nesting, wide printf formats, giant base64 and device files.
//! Each run is a child process under an address-space limit (`prlimit --as`, util-linux) and a
//! deadline, and must end with a clean non-zero exit (no signal, no panic message) whose error
//! names the input file and what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Address space each run may map: far below what any bomb here would allocate, well above what
/// hush needs for a normal run (runtime threads, malloc arenas, the binary itself).
const ADDRESS_SPACE: u64 = 1 << 30;

/// A debug build handles every input here in seconds; only a runaway run gets near this.
const DEADLINE: Duration = Duration::from_secs(90);

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crypto/tests/vectors")
}

/// util-linux's `prlimit`: sets RLIMIT_AS in the child, so our crates need no unsafe code.
fn prlimit() -> PathBuf {
    ["/usr/bin/prlimit", "/bin/prlimit"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("prlimit (util-linux) is needed to limit the children's address space")
}

struct Outcome {
    code: Option<i32>,
    output: String,
    took: Duration,
}

/// Runs `hush ARGS` in `dir` under the limits, with `stdin`.
fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let mut child = Command::new(prlimit())
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(hush())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // The child may stop reading early (an error): a broken pipe is fine.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let start = Instant::now();
    let (out_pipe, err_pipe) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut p: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = p.read_to_end(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out_pipe)), read(Box::new(err_pipe)));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hush {args:?} ran past {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let _ = writer.join();
    let mut output = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    output.push_str(&String::from_utf8_lossy(&err.join().unwrap()));
    Outcome {
        code: status.code(),
        output,
        took,
    }
}

/// A clean refusal: an exit code (not a signal), not 0, no panic, naming `file` and `what`.
fn assert_refused(o: &Outcome, args: &str, file: &str, what: &str) {
    let shown: String = o.output.chars().take(2000).collect();
    let Some(code) = o.code else {
        panic!(
            "hush {args}: killed by a signal after {:?}\n{shown}",
            o.took
        );
    };
    assert_ne!(code, 0, "hush {args}: succeeded\n{shown}");
    assert!(
        !o.output.contains("panicked") && !o.output.contains("RUST_BACKTRACE"),
        "hush {args}: panicked\n{shown}"
    );
    assert!(
        !o.output.contains("memory allocation"),
        "hush {args}: ran out of memory\n{shown}"
    );
    assert!(
        o.output.contains(file),
        "hush {args}: the error does not name {file}\n{shown}"
    );
    assert!(
        o.output.contains(what),
        "hush {args}: the error does not say {what:?}\n{shown}"
    );
}

/// Ten levels of ten aliases each: 10^10 nodes once expanded.
fn laughs(indent_items: bool) -> String {
    let mut s = String::from(
        "kind: Secret\napiVersion: v1\nmetadata:\n  name: s\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    if indent_items {
        s.push_str("data:\n  k: *a9\n");
    }
    s
}

/// 2000 aliases of a 100 KB string: few nodes, 200 MB once expanded.
fn wide_aliases() -> String {
    let mut s = format!(
        "kind: Secret\napiVersion: v1\nmetadata:\n  name: s\nv: &v {}\nl:\n",
        "x".repeat(100_000)
    );
    s.push_str(&"  - *v\n".repeat(2000));
    s
}

fn deep_yaml() -> String {
    format!("a: {}\n", "[".repeat(100_000))
}

fn deep_json() -> String {
    "[".repeat(100_000) + &"]".repeat(100_000)
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    std::fs::write(dir.join(name), content).unwrap();
}

#[test]
fn sops_refuses_bombs_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let recipient = "age19jrxsx28jhppzdzycnw0ls9g7xt7xmu7zk9gfe7554naus0tkacsaqd3rs";
    for (file, content, what) in [
        ("laughs.yaml", laughs(true), "excessive aliasing"),
        ("wide.yaml", wide_aliases(), "excessive aliasing"),
        ("deep.yaml", deep_yaml(), "deep"),
        ("deep.json", deep_json(), "deep"),
    ] {
        write(d, file, content.as_bytes());
        for args in [
            vec!["sops", "-d", file],
            vec!["sops", "-e", "--age", recipient, file],
        ] {
            let o = run(d, &args, b"");
            assert_refused(&o, &args.join(" "), file, what);
        }
    }
}

#[test]
fn sops_handles_giant_values_within_bounds() {
    // A 48 MiB ENC[] value: decoded and refused (no key can open it) without blowing up.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let blob = "A".repeat(48 << 20);
    let text = format!(
        "k: ENC[AES256_GCM,data:{blob},iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\nsops:\n    age:\n        - recipient: age19jrxsx28jhppzdzycnw0ls9g7xt7xmu7zk9gfe7554naus0tkacsaqd3rs\n          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n            YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n            -----END AGE ENCRYPTED FILE-----\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    mac: ENC[AES256_GCM,data:AA==,iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n    version: 3.11.0\n"
    );
    write(d, "giant.yaml", text.as_bytes());
    let o = run(d, &["sops", "-d", "giant.yaml"], b"");
    assert_refused(&o, "sops -d giant.yaml", "giant.yaml", "");
}

#[test]
fn seal_refuses_bombs_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cert = vectors().join("rsa4096.cert.pem");
    let cert = cert.to_str().unwrap();
    for (file, content, what) in [
        ("laughs.yaml", laughs(true), "excessive aliasing"),
        ("wide.yaml", wide_aliases(), "excessive aliasing"),
        ("deep.yaml", deep_yaml(), "deep"),
        ("deep.json", deep_json(), "recursion"),
    ] {
        write(d, file, content.as_bytes());
        let args = ["seal", "--cert", cert, "-f", file];
        assert_refused(&run(d, &args, b""), &args.join(" "), file, what);
    }
}

/// A SealedSecret with nothing encrypted and one template: the template is rendered anyway (over
/// the values that opened: none), so it alone is the bomb.
fn templated(template: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"encryptedData": {}, "template": {"data": {"bomb": template}}}
    }))
    .unwrap()
}

#[test]
fn recovery_unseal_refuses_template_bombs_by_budget() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = vectors().join("rsa4096.pkcs8.pem");
    let key = key.to_str().unwrap();
    for (i, (template, budget)) in [
        (
            "{{ range 9223372036854775807 }}{{ end }}",
            "--template-max-steps",
        ),
        (
            "{{ range until 1048576 }}{{ range until 1048576 }}{{ end }}{{ end }}",
            "--template-max-steps",
        ),
        (
            "{{ printf \"%9999999d\" 1 }}",
            "--template-max-output-bytes",
        ),
        (
            "{{ \"x\\ny\" | indent 1000000000 }}",
            "--template-max-output-bytes",
        ),
        (
            "{{ repeat 1000000000 \"abc\" }}",
            "--template-max-output-bytes",
        ),
        (
            &("{{ ".to_owned() + &"(".repeat(50_000) + "1" + &")".repeat(50_000) + " }}"),
            "--template-max-depth",
        ),
        (
            "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}",
            "--template-max-depth",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("bomb{i}.json");
        write(d, &file, &templated(template));
        let args = [
            "seal",
            "--recovery-unseal",
            "--recovery-private-key",
            key,
            "-f",
            &file,
        ];
        assert_refused(&run(d, &args, b""), &args.join(" "), &file, budget);
    }
    // The flags change the budgets: the same small template passes, then fails at 2 steps.
    write(d, "small.json", &templated("{{ range until 3 }}x{{ end }}"));
    let args = [
        "seal",
        "--recovery-unseal",
        "--recovery-private-key",
        key,
        "-f",
        "small.json",
    ];
    let o = run(d, &args, b"");
    assert_eq!(o.code, Some(0), "{}", o.output);
    let mut strict = args.to_vec();
    strict.extend(["--template-max-steps", "2"]);
    assert_refused(
        &run(d, &strict, b""),
        &strict.join(" "),
        "small.json",
        "step budget of 2",
    );
}

#[test]
fn recovery_unseal_handles_giant_base64() {
    // 48 MiB of base64 in one value: decoded, tried against the key, refused.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = vectors().join("rsa4096.pkcs8.pem");
    let body = serde_json::json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {"encryptedData": {"k": "QUFB".repeat(12 << 20)}}
    });
    write(d, "giant.json", &serde_json::to_vec(&body).unwrap());
    let args = [
        "seal",
        "--recovery-unseal",
        "--recovery-private-key",
        key.to_str().unwrap(),
        "-f",
        "giant.json",
    ];
    assert_refused(&run(d, &args, b""), &args.join(" "), "giant.json", "k");
}

#[test]
fn render_refuses_bombs_naming_the_file() {
    for (file, content, what) in [
        ("laughs.yaml", laughs(true), "excessive aliasing"),
        ("wide.yaml", wide_aliases(), "excessive aliasing"),
        ("deep.yaml", deep_yaml(), "deep"),
        ("deep.json", deep_json(), "deep"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), file, content.as_bytes());
        assert_refused(&run(dir.path(), &["render"], b""), "render", file, what);
    }
    // A manifest that is a symlink (here to an endless device) is not read at all.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    assert_refused(
        &run(dir.path(), &["render"], b""),
        "render",
        "no Kubernetes objects",
        "",
    );
}

#[test]
fn krm_refuses_bombs_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    for (content, what) in [
        (laughs(true), "excessive aliasing"),
        (wide_aliases(), "excessive aliasing"),
        (deep_yaml(), "deep"),
    ] {
        let o = run(dir.path(), &["krm"], content.as_bytes());
        assert_refused(&o, "krm", "<stdin>", what);
    }
    // A KSOPS generator naming a file that is a symlink to an endless device: its size says 0,
    // reading it never ends.
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    let generator =
        "apiVersion: viaduct.ai/v1\nkind: ksops\nmetadata:\n  name: g\nfiles:\n  - zero.yaml\n";
    let o = run(dir.path(), &["krm"], generator.as_bytes());
    assert_refused(&o, "krm", "zero.yaml", "not a regular file");
}
