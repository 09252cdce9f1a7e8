//! The SealedSecret controller's key renewal (SIGUSR1, `--key-renew-period`,
//! `--key-cutoff-time`) and `--label-selector`, against the real API server.
//!
//! Its own test binary because SIGUSR1 goes to the whole process: every controller running in
//! it would renew. The tests here run one at a time (`SERIAL`).
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush-e2e --test sealed_controller_flags -- --include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_crypto::cert::Certificate;
use hush_crypto::rsa::RsaPrivateKey;
use hush_operator::{Process, ProcessConfig, Shutdown};
use hush_sealed_controller::{Config, KeyRegistry, Namespaces};
use hush_testkit::{TestNamespace, client, install_repo_crd};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
const WAIT: Duration = Duration::from_secs(60);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Controller {
    shutdown: Shutdown,
    handle: JoinHandle<hush_operator::Result<()>>,
    api: SocketAddr,
    metrics: SocketAddr,
    keys: Arc<KeyRegistry>,
}

impl Controller {
    async fn start(
        client: &Client,
        key_ns: &str,
        app_ns: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        let mut config = Config::new(key_ns);
        config.key_size = 2048;
        config.listen_addr = "127.0.0.1:0".into();
        config.namespaces = Namespaces::List(vec![app_ns.to_owned()]);
        config.rate_limit = 0.0;
        tweak(&mut config);
        let shutdown = Shutdown::new();
        let mut process = Process::new(
            client.clone(),
            ProcessConfig {
                metrics_addr: "127.0.0.1:0".into(),
                leader_election: None,
            },
            shutdown.clone(),
        );
        let metrics = process.bind_metrics().await?;
        let started = hush_sealed_controller::start(&mut process, config).await?;
        let handle = tokio::spawn(process.run(vec![started.component]));
        Ok(Self {
            shutdown,
            handle,
            api: started.api_addr,
            metrics,
            keys: started.keys,
        })
    }

    async fn stop(self) -> Result<()> {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .context("controller did not stop within 30 s")???;
        Ok(())
    }

    async fn cert(&self) -> Result<String> {
        let (code, body) = http(self.api, "GET", "/v1/cert.pem", b"").await?;
        ensure!(code == 200, "GET /v1/cert.pem: {code} {body}");
        Ok(body)
    }

    async fn metric(&self, name: &str) -> Result<f64> {
        let (code, body) = http(self.metrics, "GET", "/metrics", b"").await?;
        ensure!(code == 200, "GET /metrics: {code}");
        Ok(body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// One HTTP/1.1 request per connection.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req = Vec::new();
    write!(
        req,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n",
        body.len()
    )?;
    req.extend_from_slice(body);
    stream.write_all(&req).await?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).await?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    Ok((code, body.to_owned()))
}

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn setup(prefix: &str) -> Result<(Client, TestNamespace, TestNamespace)> {
    let client = client().await?;
    install_repo_crd(&client, "sealedsecrets.bitnami.com.yaml").await?;
    let keys = TestNamespace::create(&client, &format!("{prefix}-keys")).await?;
    let app = TestNamespace::create(&client, prefix).await?;
    Ok((client, keys, app))
}

/// Seals `key=value` for `namespace/name` with `cert_pem`, as kubeseal does; `extra` is merged
/// into the input Secret (labels, annotations).
fn seal(
    cert_pem: &str,
    namespace: &str,
    name: &str,
    value: &str,
    extra: serde_json::Value,
) -> Result<SealedSecret> {
    let cert = Certificate::from_pem(cert_pem.as_bytes())?;
    let mut input = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": namespace },
        "type": "Opaque",
        "stringData": { "k": value },
    });
    if let (Some(meta), Some(add)) = (
        input["metadata"].as_object_mut(),
        extra.get("metadata").and_then(|m| m.as_object()),
    ) {
        meta.extend(add.clone());
    }
    let secret: hush_sealing::Secret = serde_json::from_value(input)?;
    let sealed = hush_sealing::seal::seal_secret(&cert.public_key, &secret, &mut SystemEntropy)?;
    let text =
        hush_sealing::codec::write_sealed_secret(&sealed, hush_sealing::codec::Format::Json)?;
    Ok(serde_json::from_str(&text)?)
}

/// Waits until `name` is `Synced=<want>` for its current generation.
async fn synced(api: &Api<SealedSecret>, name: &str, want: &str) -> Result<SealedSecret> {
    wait_for(&format!("SealedSecret {name} Synced={want}"), || async {
        let ss = api.get(name).await?;
        let ok = ss
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .is_some_and(|c| c.type_ == "Synced" && c.status == want)
            && ss.status.as_ref().and_then(|s| s.observed_generation) == ss.metadata.generation;
        Ok(ok.then_some(ss))
    })
    .await
}

fn data_of(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// The active key Secrets, oldest certificate first.
async fn key_secrets(client: &Client, ns: &str) -> Result<Vec<(Secret, Certificate)>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut keys = Vec::new();
    for s in api
        .list(&ListParams::default().labels(&format!("{KEY_LABEL}=active")))
        .await?
        .items
    {
        let crt = data_of(&s, "tls.crt").context("key Secret without tls.crt")?;
        let cert = Certificate::from_pem(crt.as_bytes())?;
        keys.push((s, cert));
    }
    keys.sort_by_key(|(s, c)| (c.not_before, s.resource_version()));
    Ok(keys)
}

/// A key Secret made by hand, as a restored backup is, with its certificate valid from
/// `not_before`.
async fn restore_key(client: &Client, ns: &str, name: &str, not_before: i64) -> Result<String> {
    let key = RsaPrivateKey::generate(2048)?;
    let cert = hush_crypto::cert::self_signed(
        &key,
        "",
        not_before,
        not_before + 86_400,
        &mut SystemEntropy,
    )?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                KEY_LABEL.to_owned(),
                "active".to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.to_pem().into_bytes())),
            (
                "tls.key".to_owned(),
                ByteString(key.to_pkcs1_pem()?.expose().to_vec()),
            ),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(cert.to_pem())
}

/// Sends SIGUSR1 to this process, as `kill -USR1` to the controller's pid does.
fn sigusr1() -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-s", "USR1", &std::process::id().to_string()])
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -s USR1 failed: {status}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn sigusr1_makes_a_new_key_at_once_and_old_keys_keep_opening() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let (client, keys_ns, app) = setup("scf-usr1").await?;
    let c = Controller::start(&client, keys_ns.name(), app.name(), |_| {}).await?;
    let first = wait_for("the first key", || async {
        let keys = key_secrets(&client, keys_ns.name()).await?;
        Ok((keys.len() == 1).then(|| keys[0].1.to_pem()))
    })
    .await?;
    let ss_api: Api<SealedSecret> = app.api();
    let before = seal(&first, app.name(), "before", "sealed-before", json!({}))?;
    ss_api.create(&PostParams::default(), &before).await?;
    synced(&ss_api, "before", "True").await?;

    sigusr1()?;
    let keys = wait_for("a second key Secret", || async {
        let keys = key_secrets(&client, keys_ns.name()).await?;
        Ok((keys.len() >= 2).then_some(keys))
    })
    .await?;
    assert_eq!(keys.len(), 2, "one SIGUSR1, one new key");
    let (old_secret, old_cert) = &keys[0];
    let (new_secret, new_cert) = &keys[1];
    assert_eq!(old_cert.to_pem(), first, "the old key Secret is kept");
    assert!(new_secret.name_any().starts_with("sealed-secrets-key"));
    assert_ne!(new_secret.name_any(), old_secret.name_any());
    assert_eq!(new_secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(
        new_secret.labels().get(KEY_LABEL).map(String::as_str),
        Some("active")
    );
    let served = wait_for("/v1/cert.pem to serve the new key", || async {
        let pem = c.cert().await?;
        Ok((pem == new_cert.to_pem()).then_some(pem))
    })
    .await?;
    assert_ne!(served, first);
    assert_eq!(c.metric("hush_sealed_keys").await?, 2.0);

    // The old key still opens: a SealedSecret sealed with it before or after the renewal, and a
    // Secret deleted after the renewal is restored from the old ciphertext.
    let late_old = seal(&first, app.name(), "late-old", "sealed-late-old", json!({}))?;
    ss_api.create(&PostParams::default(), &late_old).await?;
    let with_new = seal(&served, app.name(), "with-new", "sealed-new", json!({}))?;
    ss_api.create(&PostParams::default(), &with_new).await?;
    synced(&ss_api, "late-old", "True").await?;
    synced(&ss_api, "with-new", "True").await?;
    let secrets: Api<Secret> = app.api();
    secrets.delete("before", &DeleteParams::default()).await?;
    wait_for("Secret before restored with the old key", || async {
        Ok(secrets
            .get_opt("before")
            .await?
            .filter(|s| data_of(s, "k").as_deref() == Some("sealed-before"))
            .map(|_| ()))
    })
    .await?;
    assert_eq!(
        data_of(&secrets.get("late-old").await?, "k").as_deref(),
        Some("sealed-late-old")
    );
    let (code, text) = http(c.api, "POST", "/v1/verify", &serde_json::to_vec(&late_old)?).await?;
    assert_eq!(code, 200, "{text}");
    c.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn keys_renew_after_the_cutoff_at_start_and_every_period() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let (client, keys_ns, app) = setup("scf-renew").await?;
    let now = Timestamp::now().as_second();
    // A restored backup key, an hour old.
    let backup = restore_key(&client, keys_ns.name(), "backup-key", now - 3600).await?;
    let ss_api: Api<SealedSecret> = app.api();
    ss_api
        .create(
            &PostParams::default(),
            &seal(&backup, app.name(), "s", "v", json!({}))?,
        )
        .await?;

    // A cutoff before the newest key: no new key. The SealedSecret is reconciled only after
    // the start-up key check, so once it is synced a cutoff key would already exist.
    let c = Controller::start(&client, keys_ns.name(), app.name(), |cfg| {
        cfg.key_cutoff_time = Some(now - 7200);
        cfg.key_renew_period = Duration::ZERO;
    })
    .await?;
    synced(&ss_api, "s", "True").await?;
    assert_eq!(key_secrets(&client, keys_ns.name()).await?.len(), 1);
    assert_eq!(c.cert().await?, backup);
    c.stop().await?;

    // A cutoff after it: a new key at start, the backup kept.
    let c = Controller::start(&client, keys_ns.name(), app.name(), |cfg| {
        cfg.key_cutoff_time = Some(now - 60);
        cfg.key_renew_period = Duration::ZERO;
    })
    .await?;
    let keys = wait_for("a key made for the cutoff", || async {
        let keys = key_secrets(&client, keys_ns.name()).await?;
        Ok((keys.len() == 2).then_some(keys))
    })
    .await?;
    assert_eq!(keys[0].1.to_pem(), backup);
    assert!(keys[1].1.not_before >= now);
    let cutoff_key = keys[1].1.to_pem();
    wait_for("/v1/cert.pem to serve the cutoff key", || async {
        Ok((c.cert().await? == cutoff_key).then_some(()))
    })
    .await?;
    c.stop().await?;

    // A 5 s renewal period: a key whenever the newest is 5 s old, counted from the newest key
    // (not from the start), every key kept.
    let c = Controller::start(&client, keys_ns.name(), app.name(), |cfg| {
        cfg.key_renew_period = Duration::from_secs(5);
    })
    .await?;
    let keys = wait_for("two renewals", || async {
        let keys = key_secrets(&client, keys_ns.name()).await?;
        Ok((keys.len() >= 4).then_some(keys))
    })
    .await?;
    assert_eq!(keys[0].1.to_pem(), backup);
    assert_eq!(keys[1].1.to_pem(), cutoff_key);
    for pair in keys[1..].windows(2) {
        let gap = pair[1].1.not_before - pair[0].1.not_before;
        assert!(gap >= 5, "a renewal {gap} s after the previous key");
    }
    let newest = keys.last().map(|(_, c)| c.to_pem()).unwrap_or_default();
    wait_for("/v1/cert.pem to serve a renewed key", || async {
        let served = c.cert().await?;
        Ok(keys[3..]
            .iter()
            .any(|(_, cert)| cert.to_pem() == served)
            .then_some(()))
    })
    .await?;
    assert!(c.keys.snapshot().len() >= 4);
    assert!(
        c.keys
            .snapshot()
            .entries()
            .iter()
            .any(|e| e.cert.to_pem() == newest)
    );
    // What is sealed with the oldest key still opens.
    ss_api
        .create(
            &PostParams::default(),
            &seal(&backup, app.name(), "s2", "v2", json!({}))?,
        )
        .await?;
    synced(&ss_api, "s2", "True").await?;
    c.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn label_selector_limits_the_sealed_secrets_reconciled() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let (client, keys_ns, app) = setup("scf-selector").await?;
    let now = Timestamp::now().as_second();
    let cert = restore_key(&client, keys_ns.name(), "selector-key", now - 60).await?;
    let ss_api: Api<SealedSecret> = app.api();
    let shard = json!({"metadata": {"labels": {"shard": "a"}}});
    // Both exist before the controller starts, so its first list would return both.
    let mut picked = seal(&cert, app.name(), "picked", "v1", shard.clone())?;
    picked
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("shard".into(), "a".into());
    ss_api.create(&PostParams::default(), &picked).await?;
    let mut ignored = seal(&cert, app.name(), "ignored", "v2", shard)?;
    ignored
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("shard".into(), "b".into());
    ss_api.create(&PostParams::default(), &ignored).await?;

    let c = Controller::start(&client, keys_ns.name(), app.name(), |cfg| {
        cfg.label_selector = Some("shard=a".into());
    })
    .await?;
    synced(&ss_api, "picked", "True").await?;
    let secrets: Api<Secret> = app.api();
    assert_eq!(
        data_of(&secrets.get("picked").await?, "k").as_deref(),
        Some("v1")
    );
    // Give a reconcile of `ignored` (same list, same queue) time to happen if it were watched.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        secrets.get_opt("ignored").await?.is_none(),
        "a SealedSecret outside the selector became a Secret"
    );
    assert!(
        ss_api.get("ignored").await?.status.is_none(),
        "a SealedSecret outside the selector got a status"
    );

    // Relabelled into the selector, it is reconciled; a deleted Secret carrying the selector's
    // labels is restored.
    ss_api
        .patch(
            "ignored",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"shard": "a"}}})),
        )
        .await?;
    synced(&ss_api, "ignored", "True").await?;
    secrets.delete("picked", &DeleteParams::default()).await?;
    wait_for("Secret picked restored", || async {
        Ok(secrets.get_opt("picked").await?.map(|_| ()))
    })
    .await?;
    c.stop().await?;
    Ok(())
}
