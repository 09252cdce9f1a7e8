//! `hush seal` / `kubeseal` persona without external peers: modes, errors and exit codes, the
//! service-proxy certificate fetch, /v1/verify and /v1/rotate against a fake API server, the
//! multi-cluster and offline re-sealing extensions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use hush_crypto::SystemEntropy;
use hush_crypto::cert;
use hush_crypto::rsa::RsaPrivateKey;

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn make_keys(not_before: i64, not_after: i64) -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let key = RsaPrivateKey::generate(2048).unwrap();
    let c = cert::self_signed(&key, "", not_before, not_after, &mut SystemEntropy).unwrap();
    std::fs::write(dir.path().join("cert.pem"), c.to_pem()).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        key.to_pkcs1_pem().unwrap().expose(),
    )
    .unwrap();
    Keys { dir }
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| make_keys(now() - 60, now() + 365 * 86_400))
}

fn other_keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| make_keys(now() - 60, now() + 365 * 86_400))
}

/// A `kubeseal` symlink to the hush binary, to exercise the persona.
fn kubeseal_link() -> PathBuf {
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

/// Runs `bin args` with `stdin`, isolated from the caller's kubeconfig and SEALED_SECRETS_*.
fn run_with(bin: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("SEALED_SECRETS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn kubeseal(args: &[&str], stdin: &[u8]) -> Output {
    run_with(&kubeseal_link(), args, stdin, &[])
}

fn hush(args: &[&str], stdin: &[u8]) -> Output {
    run_with(Path::new(env!("CARGO_BIN_EXE_hush")), args, stdin, &[])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SECRET: &str = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"prod"},"data":{"password":"aHVudGVyMg=="}}"#;

#[test]
fn version_and_errors_look_like_kubeseal() {
    let v = kubeseal(&["--version"], b"");
    assert!(v.status.success());
    assert!(
        stdout(&v).starts_with("kubeseal version: v0.36.6+hush."),
        "{}",
        stdout(&v)
    );

    let cert = keys().cert();
    let cert = cert.to_str().unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--cert", cert],
            "{}",
            "error: no secrets found. Ensure the input is valid and UTF-8 encoded\n",
        ),
        (
            &["--cert", cert, "-n", "other"],
            SECRET,
            "error: namespace mismatch: input secret is in namespace \"prod\" but \"other\" was specified\n",
        ),
        (
            &["--cert", cert],
            r#"{"metadata":{"name":"a"}}"#,
            "error: secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used\n",
        ),
        (
            &["--cert", cert],
            r#"{"data":{"a":"YQ=="}}"#,
            "error: missing metadata.name in input Secret\n",
        ),
        (
            &["--from-file", "x"],
            "",
            "error: --from-file requires --raw\n",
        ),
        (
            &["--cert", cert, "-o", "xml"],
            SECRET,
            "error: unsupported output format: xml\n",
        ),
        (
            &["--cert", cert, "--raw", "-n", "prod"],
            "v",
            "error: must provide the --name flag with --raw and --scope strict\n",
        ),
    ];
    for (args, input, expected) in cases {
        let o = kubeseal(args, input.as_bytes());
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), *expected, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // klog's flags are accepted (and ignored) as kubeseal accepts them.
    let o = kubeseal(
        &["--cert", cert, "-v", "5", "--logtostderr", "--vmodule=x=2"],
        SECRET.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Bad flags exit 2 as pflag does.
    assert_eq!(kubeseal(&["--scope", "foo"], b"").status.code(), Some(2));
    assert_eq!(kubeseal(&["--bogus"], b"").status.code(), Some(2));
}

#[test]
fn expired_certificate_is_refused_and_near_expiry_warns() {
    let expired = make_keys(now() - 10 * 86_400, now() - 86_400);
    let o = kubeseal(
        &["--cert", expired.cert().to_str().unwrap()],
        SECRET.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: failed to encrypt using an expired certificate on "),
        "{}",
        stderr(&o)
    );
    let soon = make_keys(now() - 86_400, now() + 5 * 86_400);
    let o = kubeseal(
        &["--cert", soon.cert().to_str().unwrap()],
        SECRET.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // 4 or 5 whole days, depending on when the second ticks between key creation and sealing.
    assert!(
        err.contains("warning: the sealing certificate expires in 4 days")
            || err.contains("warning: the sealing certificate expires in 5 days"),
        "{err}"
    );
}

#[test]
fn raw_mode_env_flags_and_round_trip() {
    let cert = keys().cert();
    let key = keys().key();
    // SEALED_SECRETS_* stand in for flags.
    let o = run_with(
        &kubeseal_link(),
        &["--raw", "--name", "db"],
        b"hunter2",
        &[
            ("SEALED_SECRETS_CERT", cert.to_str().unwrap()),
            ("SEALED_SECRETS_NAMESPACE", "prod"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let raw = stdout(&o);
    assert!(!raw.ends_with('\n') && raw.starts_with("AQ"), "{raw}");
    // Wrap it in a SealedSecret and open it with --recovery-unseal.
    let ss = format!(
        r#"{{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{{"name":"db","namespace":"prod"}},"spec":{{"encryptedData":{{"password":"{raw}"}}}}}}"#
    );
    let o = hush(
        &[
            "seal",
            "--recovery-unseal",
            "--recovery-private-key",
            key.to_str().unwrap(),
        ],
        ss.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\"password\": \"aHVudGVyMg==\""),
        "{}",
        stdout(&o)
    );
    // hush --show-keys names the key that opened each item, among several.
    let both = format!("{},{}", other_keys().key().display(), key.display());
    let o = hush(
        &[
            "seal",
            "--recovery-unseal",
            "--show-keys",
            "--recovery-private-key",
            &both,
        ],
        ss.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pem = std::fs::read(&key).unwrap();
    let fingerprint = RsaPrivateKey::from_pem(&pem)
        .unwrap()
        .public_key()
        .fingerprint()
        .to_owned();
    assert_eq!(stderr(&o), format!("password: opened by {fingerprint}\n"));
    // Moved to another namespace: refused with the diagnosis, no plaintext anywhere.
    let moved = ss.replace("\"namespace\":\"prod\"", "\"namespace\":\"staging\"");
    let o = hush(
        &[
            "seal",
            "--recovery-unseal",
            "--recovery-private-key",
            key.to_str().unwrap(),
        ],
        moved.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no key could decrypt secret: sealed for another namespace/name"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("hunter2") && o.stdout.is_empty());
}

#[test]
fn output_file_is_written_atomically_and_yaml_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sealed.yaml");
    let o = kubeseal(
        &[
            "--cert",
            keys().cert().to_str().unwrap(),
            "-w",
            out.to_str().unwrap(),
        ],
        SECRET.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n"),
        "{text}"
    );
    // A failure leaves the previous file untouched.
    let o = kubeseal(
        &[
            "--cert",
            keys().cert().to_str().unwrap(),
            "-w",
            out.to_str().unwrap(),
        ],
        b"{}",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
}

/// A fake API server: answers each request from `routes` (method + path prefix → status, body)
/// and records request heads.
struct FakeApi {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn fake_api(routes: Vec<(&'static str, &'static str, u16, String)>) -> FakeApi {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut head = String::new();
                let mut line = String::new();
                let mut content_length = 0usize;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        content_length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                if head.is_empty() {
                    break;
                }
                let mut body = vec![0u8; content_length];
                reader.read_exact(&mut body).unwrap();
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                log.lock().unwrap().push(head.clone());
                let (status, payload) = routes
                    .iter()
                    .find(|(m, p, _, _)| request_line.starts_with(&format!("{m} {p}")))
                    .map(|(_, _, s, b)| (*s, b.clone()))
                    .unwrap_or((
                        404,
                        r#"{"kind":"Status","code":404,"message":"not found"}"#.into(),
                    ));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
                    payload.len()
                );
                if stream.write_all(response.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    FakeApi { url, seen }
}

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n    namespace: ctxns\nusers:\n- name: u\n  user:\n    token: t0ken\n"
        ),
    )
    .unwrap();
    path
}

const SVC: &str = "/api/v1/namespaces/sealing/services/ss";
const PROXY: &str = "/api/v1/namespaces/sealing/services/http:ss:web/proxy";

#[test]
fn certificate_is_fetched_through_the_service_proxy() {
    let pem = std::fs::read_to_string(keys().cert()).unwrap();
    let api = fake_api(vec![
        (
            "GET",
            SVC,
            200,
            r#"{"spec":{"ports":[{"name":"web","port":8080}]}}"#.into(),
        ),
        (
            "GET",
            "/api/v1/namespaces/sealing/services/http:ss:web/proxy/v1/cert.pem",
            200,
            pem.clone(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url);
    let o = kubeseal(
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--controller-namespace",
            "sealing",
            "--controller-name",
            "ss",
            "--as",
            "alice",
            "--as-group",
            "devs",
            "--fetch-cert",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), pem);
    let seen = api.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(
        seen[0].starts_with(&format!("GET {SVC} HTTP/1.1")),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].starts_with(&format!("GET {PROXY}/v1/cert.pem HTTP/1.1")),
        "{}",
        seen[1]
    );
    for head in &seen {
        let h = head.to_ascii_lowercase();
        assert!(h.contains("authorization: bearer t0ken"), "{head}");
        assert!(h.contains("impersonate-user: alice"), "{head}");
        assert!(h.contains("impersonate-group: devs"), "{head}");
    }
    assert!(
        seen[1]
            .to_ascii_lowercase()
            .contains("accept: application/x-pem-file, */*"),
        "{}",
        seen[1]
    );

    // Sealing without --cert uses the same path; the namespace comes from the context.
    let o = kubeseal(
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--controller-namespace",
            "sealing",
            "--controller-name",
            "ss",
        ],
        br#"{"metadata":{"name":"a"},"stringData":{"k":"v"}}"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\"namespace\": \"ctxns\""),
        "{}",
        stdout(&o)
    );
    // --token overrides the kubeconfig user.
    let before = api.seen.lock().unwrap().len();
    let o = kubeseal(
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--token",
            "other",
            "--controller-namespace",
            "sealing",
            "--controller-name",
            "ss",
            "--fetch-cert",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = api.seen.lock().unwrap();
    assert!(seen[before..].iter().all(|h| {
        h.to_ascii_lowercase()
            .contains("authorization: bearer other")
    }));
}

#[test]
fn missing_service_and_controller_errors_read_like_kubeseal() {
    let api = fake_api(vec![
        (
            "POST",
            "/api/v1/namespaces/sealing/services/http:ss:web/proxy/v1/verify",
            409,
            r#"{"kind":"Status","code":409,"message":"conflict"}"#.into(),
        ),
        (
            "GET",
            SVC,
            200,
            r#"{"spec":{"ports":[{"name":"web"}]}}"#.into(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url);
    let kc = kc.to_str().unwrap();
    let o = kubeseal(&["--kubeconfig", kc, "--fetch-cert"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: cannot get sealed secret service: ")
            && stderr(&o)
                .contains("Please, use the flag --controller-name and --controller-namespace"),
        "{}",
        stderr(&o)
    );
    let sealed = r#"{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{"name":"db","namespace":"prod"},"spec":{"encryptedData":{"k":"AgA="}}}"#;
    let o = kubeseal(
        &[
            "--kubeconfig",
            kc,
            "--controller-namespace",
            "sealing",
            "--controller-name",
            "ss",
            "--validate",
        ],
        sealed.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "error: unable to decrypt sealed secret: db\n");
}

#[test]
fn re_encrypt_posts_to_rotate_and_clears_server_fields() {
    let rotated = r#"{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{"name":"db","namespace":"prod","creationTimestamp":"2024-01-01T00:00:00Z","generation":3},"spec":{"template":{"metadata":{"name":"db","namespace":"prod"}},"encryptedData":{"k":"AgB4"}}}"#;
    let api = fake_api(vec![
        (
            "GET",
            SVC,
            200,
            r#"{"spec":{"ports":[{"name":"web"}]}}"#.into(),
        ),
        (
            "POST",
            "/api/v1/namespaces/sealing/services/http:ss:web/proxy/v1/rotate",
            200,
            rotated.into(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url);
    let input = dir.path().join("in.json");
    std::fs::write(&input, rotated.replace("AgB4", "AgA=")).unwrap();
    let o = kubeseal(
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--controller-namespace",
            "sealing",
            "--controller-name",
            "ss",
            "--re-encrypt",
            "-f",
            input.to_str().unwrap(),
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // -f without -w rewrites the input file (kubeseal #405).
    let text = std::fs::read_to_string(&input).unwrap();
    assert!(
        text.contains("\"k\": \"AgB4\"")
            && !text.contains("creationTimestamp")
            && !text.contains("generation"),
        "{text}"
    );
    let seen = api.seen.lock().unwrap();
    assert!(seen.iter().any(|h| {
        h.starts_with("POST /api/v1/namespaces/sealing/services/http:ss:web/proxy/v1/rotate")
    }));
    assert!(seen.iter().any(|h| {
        h.to_ascii_lowercase()
            .contains("content-type: application/json")
    }));
}

#[test]
fn controller_url_reaches_the_controller_directly() {
    let pem = std::fs::read_to_string(keys().cert()).unwrap();
    let api = fake_api(vec![("GET", "/base/v1/cert.pem", 200, pem.clone())]);
    let url = format!("{}/base", api.url);
    let o = hush(&["seal", "--controller-url", &url, "--fetch-cert"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), pem);
    // And --cert takes an http URL.
    let o = hush(
        &[
            "seal",
            "--cert",
            &format!("{url}/v1/cert.pem"),
            "-n",
            "prod",
        ],
        SECRET.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = hush(
        &["seal", "--cert", &format!("{}/missing.pem", api.url)],
        SECRET.as_bytes(),
    );
    assert!(
        stderr(&o).contains("cannot fetch") && stderr(&o).contains("404"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn multi_cluster_and_offline_reseal() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = format!("{}/out/{{cluster}}.yaml", dir.path().display());
    let a = format!("east={}", keys().cert().display());
    let b = format!("west={}", other_keys().cert().display());
    let o = hush(
        &["seal", "--cert", &a, "--cert", &b, "-w", &pattern],
        SECRET.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let east = dir.path().join("out/east.yaml");
    let west = dir.path().join("out/west.yaml");
    let east_text = std::fs::read_to_string(&east).unwrap();
    assert!(east_text.contains("hush/cluster: east"), "{east_text}");
    // Each file opens only with its cluster's key.
    let open = |file: &Path, key: &Path| {
        hush(
            &[
                "seal",
                "--recovery-unseal",
                "--recovery-private-key",
                key.to_str().unwrap(),
                "-f",
                file.to_str().unwrap(),
            ],
            b"",
        )
    };
    assert!(open(&east, &keys().key()).status.success());
    assert!(!open(&east, &other_keys().key()).status.success());
    assert!(open(&west, &other_keys().key()).status.success());

    // Offline re-seal of a tree: east's file moves to west's key, in place.
    std::fs::write(dir.path().join("out/notes.yaml"), "kind: ConfigMap\n").unwrap();
    let o = hush(
        &[
            "seal",
            "--re-encrypt",
            "--recovery-private-key",
            keys().key().to_str().unwrap(),
            "--cert",
            other_keys().cert().to_str().unwrap(),
            "--dir",
            dir.path().join("out").to_str().unwrap(),
        ],
        b"",
    );
    // west.yaml cannot be opened with east's key: one failure, reported, exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("3 files: 1 re-sealed, 0 unchanged, 1 skipped, 1 failed"),
        "{}",
        stderr(&o)
    );
    assert!(open(&east, &other_keys().key()).status.success());
    assert!(!open(&east, &keys().key()).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/notes.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
}
