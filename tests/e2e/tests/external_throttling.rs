//! Provider throttling and ESO's metrics: a loopback proxy in front of OpenBao answers HTTP 429
//! to the next K requests; the ExternalSecret keeps its Secret, shows `Ready=False` while
//! throttled and converges after the store's backoff (not a fixed 30 s). The metrics endpoint
//! is scraped for ESO's metric names. Own binary: one controller per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_external_controller::Config;
use hush_operator::{Process, ProcessConfig, Shutdown};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 proxy that answers 429 to the next `throttle` requests and forwards the others
/// (one request per connection, `Connection: close` both ways).
struct ThrottlingProxy {
    addr: String,
    throttle: Arc<AtomicUsize>,
    throttled: Arc<AtomicUsize>,
}

async fn read_request(conn: &mut TcpStream) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(Ok(0), |v| v.trim().parse())?;
            if buf.len() >= end + 4 + len {
                return Ok(buf);
            }
        }
        let n = conn.read(&mut chunk).await?;
        ensure!(n > 0, "connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The request with its `Connection` header replaced by `Connection: close`.
fn closing(request: &[u8]) -> Vec<u8> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&request[..end]);
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes();
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(&request[end + 4..]);
    out
}

async fn serve(
    mut inbound: TcpStream,
    upstream: String,
    throttle: Arc<AtomicUsize>,
    throttled: Arc<AtomicUsize>,
) -> Result<()> {
    let request = read_request(&mut inbound).await?;
    let take = throttle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if take.is_ok() {
        throttled.fetch_add(1, Ordering::SeqCst);
        let body = r#"{"errors":["rate limit quota exceeded"]}"#;
        let answer = format!(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        inbound.write_all(answer.as_bytes()).await?;
        inbound.shutdown().await?;
        return Ok(());
    }
    let mut out = TcpStream::connect(&upstream).await?;
    out.write_all(&closing(&request)).await?;
    tokio::io::copy(&mut out, &mut inbound).await?;
    inbound.shutdown().await?;
    Ok(())
}

async fn throttling_proxy(upstream: &str) -> Result<ThrottlingProxy> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("http://{}", listener.local_addr()?);
    let throttle = Arc::new(AtomicUsize::new(0));
    let throttled = Arc::new(AtomicUsize::new(0));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let (t, td) = (Arc::clone(&throttle), Arc::clone(&throttled));
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (upstream, t, td) = (upstream.clone(), Arc::clone(&t), Arc::clone(&td));
            tokio::spawn(async move {
                if let Err(e) = serve(inbound, upstream, t, td).await {
                    eprintln!("throttling proxy: {e:#}");
                }
            });
        }
    });
    Ok(ThrottlingProxy {
        addr,
        throttle,
        throttled,
    })
}

/// The controller with its metrics endpoint bound; returns the endpoint's address.
async fn start_controller(
    client: &kube::Client,
    ns: &str,
) -> Result<(
    Shutdown,
    tokio::task::JoinHandle<hush_operator::Result<()>>,
    String,
)> {
    let shutdown = Shutdown::new();
    let mut process = Process::new(
        client.clone(),
        ProcessConfig {
            metrics_addr: "127.0.0.1:0".into(),
            leader_election: None,
            shards: None,
        },
        shutdown.clone(),
    );
    let addr = process.bind_metrics().await?;
    let config = Config {
        namespace: Some(ns.to_owned()),
        controller_class: ns.to_owned(),
        read_window: Duration::from_millis(200),
        metrics_sweep_interval: Duration::from_millis(500),
        ..Config::default()
    };
    let component = hush_external_controller::start(&mut process, config);
    let handle = tokio::spawn(process.run(vec![component]));
    Ok((shutdown, handle, format!("http://{addr}/metrics")))
}

fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn throttled_provider_keeps_the_secret_backs_off_and_converges() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-429").await?;
    let n = ns.name().to_owned();
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": "one"}})),
    )
    .await?;
    let proxy = throttling_proxy(&env("HUSH_VAULT_ADDR")).await?;
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"controller": n, "provider": {"vault": {"server": proxy.addr, "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let (shutdown, handle, metrics_url) = start_controller(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
    wait_ready(&es, "app", "True", "SecretSynced").await?;

    // New value upstream; the next 3 requests are throttled; force a sync.
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": "two"}})),
    )
    .await?;
    proxy.throttle.store(3, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    es.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
    )
    .await?;
    let failed = wait_ready(&es, "app", "False", "SecretSyncedError").await?;
    ensure!(
        failed.status.unwrap().conditions[0].message.as_deref()
            == Some("could not get secret data from provider")
    );
    ensure!(
        value(&secrets.get("app").await?, "password") == "one",
        "last good Secret kept while throttled"
    );
    let events: Api<Event> = ns.api();
    let throttled_event = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .any(|e| {
            e.reason.as_deref() == Some("UpdateFailed")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("throttled") && m.contains("retrying in"))
        });
    ensure!(
        throttled_event,
        "an UpdateFailed event names the throttling and the retry"
    );

    // Converges once the proxy lets requests through: backoff 1 s, 2 s, 4 s (+ jitter).
    let deadline = started + Duration::from_secs(25);
    loop {
        let e = es.get("app").await?;
        if ready(&e) == Some(("True".into(), "SecretSynced".into()))
            && value(&secrets.get("app").await?, "password") == "two"
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "not converged 25 s after throttling: {:?}",
            e.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(
        proxy.throttled.load(Ordering::SeqCst) == 3,
        "all 3 throttled answers were consumed"
    );
    ensure!(proxy.throttle.load(Ordering::SeqCst) == 0);

    // ESO's metric names and labels on the shared endpoint.
    let text = reqwest::get(&metrics_url).await?.text().await?;
    let labels = format!(r#"{{name="app",namespace="{n}""#);
    let calls = sample(&text, &format!("externalsecret_sync_calls_total{labels}}}"))
        .with_context(|| format!("no externalsecret_sync_calls_total in\n{text}"))?;
    let errors = sample(&text, &format!("externalsecret_sync_calls_error{labels}}}"))
        .with_context(|| format!("no externalsecret_sync_calls_error in\n{text}"))?;
    ensure!(
        errors >= 3.0 && calls >= errors + 2.0,
        "calls {calls}, errors {errors}"
    );
    ensure!(
        sample(
            &text,
            &format!(
                r#"externalsecret_status_condition{labels},condition="Ready",status="True"}}"#
            )
        ) == Some(1.0),
        "{text}"
    );
    ensure!(
        sample(
            &text,
            &format!(
                r#"externalsecret_status_condition{labels},condition="Ready",status="False"}}"#
            )
        ) == Some(0.0),
        "{text}"
    );
    let took = sample(
        &text,
        &format!("externalsecret_reconcile_duration{labels}}}"),
    )
    .context("no externalsecret_reconcile_duration")?;
    ensure!(took > 0.0, "reconcile duration {took}");
    // Provider calls as ESO counts them: the 3 throttled reads failed, later reads succeeded.
    let vault_calls = |call: &str, status: &str| {
        sample(
            &text,
            &format!(
                r#"externalsecret_provider_api_calls_count{{provider="HashiCorp/Vault",call="{call}",status="{status}"}}"#
            ),
        )
    };
    let failed = vault_calls("ReadSecretData", "error").unwrap_or(0.0);
    let read = vault_calls("ReadSecretData", "success").unwrap_or(0.0);
    ensure!(
        failed >= 3.0 && read >= 1.0,
        "provider calls: {failed} failed, {read} succeeded\n{text}"
    );
    // controller-runtime's families under ESO's controller names (ESO's dashboards and SLOs).
    let runtime = |family: &str, labels: &str| sample(&text, &format!("{family}{{{labels}}}"));
    ensure!(
        runtime(
            "controller_runtime_reconcile_total",
            r#"controller="externalsecret",result="error""#
        )
        .is_some_and(|v| v >= 3.0)
            && runtime(
                "controller_runtime_reconcile_errors_total",
                r#"controller="externalsecret""#
            )
            .is_some_and(|v| v >= 3.0)
            && runtime(
                "controller_runtime_reconcile_time_seconds_count",
                r#"controller="externalsecret""#
            )
            .is_some_and(|v| v >= 5.0)
            && runtime(
                "controller_runtime_max_concurrent_reconciles",
                r#"controller="externalsecret""#
            )
            .is_some_and(|v| v >= 1.0),
        "controller_runtime_* families\n{text}"
    );
    // The store's own families: validated, so Ready=True.
    let store = format!(r#"{{name="vault",namespace="{n}""#);
    ensure!(
        sample(
            &text,
            &format!(r#"secretstore_status_condition{store},condition="Ready",status="True"}}"#)
        ) == Some(1.0),
        "{text}"
    );
    ensure!(
        sample(&text, &format!("secretstore_reconcile_duration{store}}}")).is_some_and(|t| t > 0.0),
        "{text}"
    );

    // A deleted ExternalSecret's series go (ESO's RemoveMetrics); the store's stay.
    es.delete("app", &Default::default()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = reqwest::get(&metrics_url).await?.text().await?;
        if !text.contains(&labels) {
            ensure!(
                sample(&text, &format!("secretstore_reconcile_duration{store}}}")).is_some(),
                "{text}"
            );
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "series of the deleted ExternalSecret still there\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), handle).await???;
    ns.delete().await?;
    Ok(())
}
