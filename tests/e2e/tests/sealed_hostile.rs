//! Hostile clients of the SealedSecret controller's HTTP API (unauthenticated, as Bitnami's) and
//! hostile SealedSecrets, against a running controller on the real kube-apiserver: template and
//! YAML alias bombs through `/v1/verify` and `/v1/rotate`, values that cost many RSA operations,
//! made-up HTTP methods, a spoofed `X-Forwarded-For`, slow and many connections. Every request is
//! answered within seconds, the process stays alive, healthy and within a bounded RSS (read from
//! `/proc/self/status`: the controller runs in this test process, alone in this binary), and
//! ordinary SealedSecrets keep syncing. docs/security.md lists each limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sealed_harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use hush_api::sealed_secret::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use sealed_harness::*;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// The most one request may take, bombs included.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A `/proc/self/status` figure in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// `method path` with `body`, answered within [`ANSWER_WITHIN`].
async fn timed(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
    let start = Instant::now();
    let answer = tokio::time::timeout(ANSWER_WITHIN, http(addr, method, path, body))
        .await
        .with_context(|| format!("{method} {path}: no answer within {ANSWER_WITHIN:?}"))??;
    eprintln!("{method} {path}: {} in {:?}", answer.0, start.elapsed());
    Ok(answer)
}

/// A SealedSecret of `namespace/name` with `encrypted` items and a `template.data` entry.
fn with_template(namespace: &str, encrypted: serde_json::Value, template: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "bomb", "namespace": namespace},
        "spec": {"encryptedData": encrypted, "template": {"data": {"t": template}}}}),
    )
    .unwrap()
}

/// Template programs whose naive execution never ends, exhausts memory or the stack, each with
/// the budget that stops it (`None`: Go's `fmt` answers it with a short error text, as here).
fn template_bombs() -> Vec<(&'static str, String, Option<&'static str>)> {
    vec![
        (
            "endless range",
            "{{ range 9223372036854775807 }}{{ end }}".into(),
            Some("step budget"),
        ),
        (
            "nested ranges",
            "{{ range $i := until 1048576 }}{{ range $j := until 1048576 }}x{{ end }}{{ end }}"
                .into(),
            Some("step budget"),
        ),
        ("huge width", r#"{{ printf "%900000000d" 1 }}"#.into(), None),
        (
            "huge indent",
            r#"{{ "x" | indent 900000000 }}"#.into(),
            Some("output bytes budget"),
        ),
        (
            "deep nesting",
            format!(
                "{}x{}",
                "{{ if true }}".repeat(20_000),
                "{{ end }}".repeat(20_000)
            ),
            Some("nesting depth budget"),
        ),
        (
            "doubling",
            format!(
                r#"{{{{ $s := "xxxxxxxxxxxxxxxx" }}}}{}{{{{ $s }}}}"#,
                r#"{{ $s = print $s $s }}"#.repeat(40)
            ),
            Some("output bytes budget"),
        ),
    ]
}

/// Billion laughs in YAML (the API reads YAML as kubeseal sends it, or JSON).
fn alias_bomb() -> Vec<u8> {
    let mut y = String::from(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: b, namespace: x}\nspec:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let p = i - 1;
        y.push_str(&format!(
            "  a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    y.push_str("  encryptedData: {k: *a9}\n");
    y.into_bytes()
}

/// A connection from `from` (a loopback address of its own: the per-client caps count by
/// address).
async fn connect_from(from: &str, to: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse()?)?;
    Ok(socket.connect(to).await?)
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        // A 408 or similar answer followed by the close also counts.
        Ok(Ok(_)) => matches!(
            tokio::time::timeout(within, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        ),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn hostile_requests_and_sealed_secrets_leave_the_controller_healthy() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-hostile").await?;
    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |cfg| {
        cfg.api_max_decrypt_operations = 500;
        cfg.max_decrypt_operations = 500;
    })
    .await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let ns = app.name();
    let baseline = proc_kib("VmRSS");

    // Template bombs with nothing to decrypt (the template is all there is) and with a value
    // that does open: each fails within seconds, naming the budget that stopped it.
    let good = seal(&cert, ns, "bomb", &[("k", "v")], json!({}))?;
    let good_items = serde_json::to_value(&good.spec.encrypted_data)?;
    for (what, bomb, budget) in template_bombs() {
        for (path, items) in [
            ("/v1/verify", json!({})),
            ("/v1/rotate", good_items.clone()),
        ] {
            let (code, text) = timed(c.api, "POST", path, &with_template(ns, items, &bomb)).await?;
            if let Some(budget) = budget {
                ensure!(code >= 400, "{what} through {path}: {code} {text}");
                ensure!(
                    text.contains(budget),
                    "{what} through {path}: the answer does not name the {budget}: {text}"
                );
            }
        }
    }
    // A template after a value that does not open is never rendered: no work for the author of
    // a made-up SealedSecret.
    let bogus = json!({"k": "AQBCQkJC"});
    let (code, text) = timed(
        c.api,
        "POST",
        "/v1/verify",
        &with_template(ns, bogus, "{{ range 9223372036854775807 }}{{ end }}"),
    )
    .await?;
    ensure!(code == 409 && !text.contains("budget"), "{code} {text}");

    // YAML alias bomb.
    for path in ["/v1/verify", "/v1/rotate"] {
        let (code, text) = timed(c.api, "POST", path, &alias_bomb()).await?;
        ensure!(code >= 400, "alias bomb through {path}: {code} {text}");
    }

    // Values that cost RSA operations: 2,000 made-up values of the right length against a
    // budget of 500 operations per request.
    let envelope = {
        let mut e = vec![0x01, 0x00];
        e.extend([0x42; 256]);
        e.extend([0; 32]);
        hush_sealing::b64::encode(&e)
    };
    let many: serde_json::Map<String, serde_json::Value> = (0..2000)
        .map(|i| (format!("v{i}"), json!(envelope)))
        .collect();
    let (code, text) = timed(
        c.api,
        "POST",
        "/v1/verify",
        &with_template(ns, many.into(), ""),
    )
    .await?;
    ensure!(
        code == 409 && text.contains("budget of 500"),
        "{code} {text}"
    );

    // Made-up methods: the metrics stay bounded.
    for i in 0..300 {
        let _ = http(c.api, &format!("X{i}"), "/v1/cert.pem", b"").await?;
    }
    let (_, metrics) = http(c.metrics, "GET", "/metrics", b"").await?;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("sealed_secrets_controller_http_requests_total{"))
        .count();
    ensure!(
        series <= 20,
        "{series} http_requests_total series after made-up methods"
    );

    // Slow and many connections from one client do not starve another.
    let mut slow = Vec::new();
    for _ in 0..40 {
        if let Ok(mut s) = connect_from("127.0.0.1", c.api).await {
            let _ = s
                .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
            slow.push(s);
        }
    }
    let other = connect_from("127.0.0.2", c.api).await?;
    drop(other);
    let start = Instant::now();
    let mut fresh = connect_from("127.0.0.2", c.api).await?;
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    tokio::time::timeout(ANSWER_WITHIN, fresh.read_to_string(&mut answer)).await??;
    ensure!(
        answer.starts_with("HTTP/1.1 200"),
        "healthz from another client: {answer}"
    );
    eprintln!(
        "healthz beside 40 slow connections in {:?}",
        start.elapsed()
    );
    // The cap per client: of 40 connections at most 32 are kept; the rest are closed at once.
    let mut closed_at_once = 0;
    for s in &mut slow {
        if closed_within(s, Duration::from_millis(200)).await {
            closed_at_once += 1;
        }
    }
    ensure!(
        closed_at_once >= 8,
        "only {closed_at_once} of 40 connections were refused"
    );
    // The head timeout (10 s) closes the rest.
    for s in &mut slow {
        ensure!(
            closed_within(s, Duration::from_secs(15)).await,
            "a slow connection stayed open"
        );
    }

    // A body that never comes is cut off by the read timeout, and a spoofed X-Forwarded-For
    // does not buy a fresh rate-limit bucket (the limit keys on the peer without
    // --trusted-proxies).
    c.stop().await?;
    let limits = HttpLimits {
        read_timeout: Duration::from_secs(2),
        ..HttpLimits::default()
    };
    let c = Controller::start_limited(
        &client,
        keys_ns.name(),
        &[app.name()],
        None,
        |cfg| {
            cfg.rate_limit = 1.0;
            cfg.rate_limit_burst = 2;
            cfg.rotate_rate_limit = 1.0;
            cfg.rotate_rate_limit_burst = 2;
        },
        limits,
    )
    .await?;
    let mut stalled = TcpStream::connect(c.api).await?;
    stalled
        .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        .await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(8), stalled.read_to_string(&mut answer))
        .await
        .context("a stalled body was not cut off")??;
    ensure!(answer.starts_with("HTTP/1.1 408"), "stalled body: {answer}");
    let body = serde_json::to_vec(&good)?;
    for path in ["/v1/verify", "/v1/rotate"] {
        let mut codes = Vec::new();
        for i in 0..4 {
            let mut s = TcpStream::connect(c.api).await?;
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.{i}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(req.as_bytes()).await?;
            s.write_all(&body).await?;
            let mut answer = String::new();
            s.read_to_string(&mut answer).await?;
            codes.push(answer.get(9..12).unwrap_or_default().to_owned());
        }
        ensure!(
            codes.iter().filter(|c| *c == "429").count() >= 2,
            "{path}: {codes:?}"
        );
    }

    // Still alive, healthy and syncing, within a bounded RSS.
    ensure!(timed(c.api, "GET", "/healthz", b"").await?.0 == 200);
    ensure!(timed(c.metrics, "GET", "/readyz", b"").await?.0 == 200);
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), ns);
    let after = seal(
        &c.cert().await?,
        ns,
        "after",
        &[("k", "still-syncing")],
        json!({}),
    )?;
    sealed.create(&PostParams::default(), &after).await?;
    synced(&sealed, "after", "True").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    ensure!(data_of(&secrets.get("after").await?, "k").as_deref() == Some("still-syncing"));
    let peak = proc_kib("VmHWM");
    ensure!(
        peak < baseline + 512 * 1024,
        "peak RSS {peak} KiB against {baseline} KiB at start"
    );
    eprintln!("RSS at start {baseline} KiB, peak {peak} KiB");
    c.stop().await?;
    Ok(())
}
