//! The SealedSecret controller (`hush controller --controllers sealed`) against the real API
//! server: keys, SealedSecret → Secret, ownership, scopes, tampering, drift, the HTTP API,
//! restarts without decryption, leader election, and no plaintext in logs, events or status.
//!
//! The controller runs in-process through the same library entry point as the binary
//! (`hush_sealed_controller::start` + `hush_operator::Process`), each test with its own key
//! namespace and its own application namespace, watching only that namespace.
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush-e2e --test sealed_controller -- --include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sealed_harness;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_crypto::cert::Certificate;
use hush_operator::leader::LeaseConfig;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use sealed_harness::*;

const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";

async fn key_secrets(client: &Client, ns: &str) -> Result<Vec<Secret>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default().labels(KEY_LABEL))
        .await?
        .items)
}

/// Events about `name` in `ns`, as `(type, reason, note)`.
async fn events(client: &Client, ns: &str, name: &str) -> Result<Vec<(String, String, String)>> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect())
}

fn assert_no_canary(canary: &str, where_: &str, text: &str) {
    assert!(!text.contains(canary), "canary found in {where_}");
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn keys_are_created_as_bitnami_does_and_survive_restart() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-keys").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let secrets = wait_for("a key Secret", || async {
        let s = key_secrets(&client, keys_ns.name()).await?;
        Ok((!s.is_empty()).then_some(s))
    })
    .await?;
    assert_eq!(secrets.len(), 1);
    let key = &secrets[0];
    assert!(key.name_any().starts_with("sealed-secrets-key"));
    assert_ne!(key.name_any(), "sealed-secrets-key");
    assert_eq!(key.type_.as_deref(), Some("kubernetes.io/tls"));
    let crt = data_of(key, "tls.crt").context("tls.crt")?;
    let pem = data_of(key, "tls.key").context("tls.key")?;
    assert!(
        pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "PKCS#1 PEM"
    );
    let served = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    assert_eq!(
        Certificate::from_pem(served.as_bytes())?.der,
        Certificate::from_pem(crt.as_bytes())?.der
    );
    assert!(!logs_contain("PRIVATE KEY"), "private key in logs");
    c.stop().await?;

    // A restart loads the key instead of creating one.
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    assert_eq!(c.cert().await?, served);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(key_secrets(&client, keys_ns.name()).await?.len(), 1);

    // A key restored by hand (backup) is picked up without a restart; it is newer, so it serves.
    let other = hush_crypto::rsa::RsaPrivateKey::generate(2048)?;
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let other_cert =
        hush_crypto::cert::self_signed(&other, "", now + 60, now + 3600, &mut SystemEntropy)?;
    let restored = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("restored-key".into()),
            labels: Some(BTreeMap::from([(
                "sealedsecrets.bitnami.com/sealed-secrets-key".to_owned(),
                "active".to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                "tls.crt".to_owned(),
                ByteString(other_cert.to_pem().into_bytes()),
            ),
            (
                "tls.key".to_owned(),
                ByteString(other.to_pkcs1_pem()?.expose().to_vec()),
            ),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), keys_ns.name())
        .create(&PostParams::default(), &restored)
        .await?;
    let want = other_cert.to_pem();
    wait_for("the restored key to serve", || async {
        Ok((c.cert().await? == want).then_some(()))
    })
    .await?;
    assert_eq!(c.keys.snapshot().len(), 2);
    c.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn sealed_secrets_become_secrets_with_bitnami_semantics() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-sync").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let secret_a = canary("a");
    let secret_b = canary("b");
    let ss = seal(
        &cert,
        app.name(),
        "creds",
        &[("user", &secret_a), ("pass", &secret_b)],
        json!({
            "type": "example.com/creds",
            "metadata": {
                "labels": {"app": "demo"},
                "annotations": {"note": "kept"},
            },
        }),
    )?;
    // A Go template over the decrypted values (Bitnami's `spec.template.data`).
    let mut ss = ss;
    ss.spec.template.get_or_insert_default().data = Some(BTreeMap::from([(
        "url".to_owned(),
        "https://{{ index . \"user\" }}@example.com/{{ .user | len }}".to_owned(),
    )]));
    let ss_api: Api<SealedSecret> = app.api();
    let created = ss_api.create(&PostParams::default(), &ss).await?;
    let secrets: Api<Secret> = app.api();
    let secret = wait_for("the Secret", || async {
        Ok(secrets.get_opt("creds").await?)
    })
    .await?;
    assert_eq!(data_of(&secret, "user").as_deref(), Some(secret_a.as_str()));
    assert_eq!(data_of(&secret, "pass").as_deref(), Some(secret_b.as_str()));
    assert_eq!(
        data_of(&secret, "url"),
        Some(format!("https://{secret_a}@example.com/{}", secret_a.len()))
    );
    assert_eq!(secret.type_.as_deref(), Some("example.com/creds"));
    assert_eq!(secret.labels().get("app").map(String::as_str), Some("demo"));
    assert_eq!(
        secret.annotations().get("note").map(String::as_str),
        Some("kept")
    );
    let owners = secret.owner_references();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "SealedSecret");
    assert_eq!(owners[0].api_version, "bitnami.com/v1alpha1");
    assert_eq!(owners[0].name, "creds");
    assert_eq!(
        Some(owners[0].uid.as_str()),
        created.metadata.uid.as_deref()
    );
    assert_eq!(owners[0].controller, Some(true));
    let ss_now = synced(&ss_api, "creds", "True").await?;
    assert_eq!(
        ss_now
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .and_then(|c| c.message.clone()),
        None
    );

    // Drift: a hand edit of the data is reverted (the Secret watch triggers a reconcile).
    secrets
        .patch(
            "creds",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"user": "ZWRpdGVk"}, "metadata": {"labels": {"app": "edited"}}}),
            ),
        )
        .await?;
    wait_for("the edit to be reverted", || async {
        let s = secrets.get("creds").await?;
        Ok((data_of(&s, "user").as_deref() == Some(secret_a.as_str())
            && s.labels().get("app").map(String::as_str) == Some("demo"))
        .then_some(()))
    })
    .await?;

    // A deleted Secret comes back.
    secrets.delete("creds", &DeleteParams::default()).await?;
    wait_for("the Secret to be recreated", || async {
        Ok(secrets
            .get_opt("creds")
            .await?
            .filter(|s| data_of(s, "pass").as_deref() == Some(secret_b.as_str())))
    })
    .await?;

    // Replace semantics: an item removed from the SealedSecret disappears from the Secret.
    ss_api
        .patch(
            "creds",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(json!([
                {"op": "remove", "path": "/spec/encryptedData/pass"}
            ]))?),
        )
        .await?;
    wait_for("the removed item to disappear", || async {
        let s = secrets.get("creds").await?;
        Ok((data_of(&s, "pass").is_none() && data_of(&s, "user").is_some()).then_some(()))
    })
    .await?;
    synced(&ss_api, "creds", "True").await?;

    // Events: Unsealed, and nothing carries a secret value.
    let evs = events(&client, app.name(), "creds").await?;
    assert!(
        evs.iter().any(|(t, r, _)| t == "Normal" && r == "Unsealed"),
        "{evs:?}"
    );
    for (_, _, note) in &evs {
        assert_no_canary(&secret_a, "events", note);
        assert_no_canary(&secret_b, "events", note);
    }
    c.stop().await?;
    assert!(
        !logs_contain(&secret_a) && !logs_contain(&secret_b),
        "canary in logs"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn unowned_secret_is_never_overwritten_and_managed_one_is_adopted() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-unowned").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let secrets: Api<Secret> = app.api();
    let mine: Secret = serde_json::from_value(json!({
        "metadata": {"name": "taken"},
        "stringData": {"k": "original"},
    }))?;
    secrets.create(&PostParams::default(), &mine).await?;
    let value = canary("unowned");
    let ss = seal(&cert, app.name(), "taken", &[("k", &value)], json!({}))?;
    let ss_api: Api<SealedSecret> = app.api();
    ss_api.create(&PostParams::default(), &ss).await?;
    let failed = synced(&ss_api, "taken", "False").await?;
    let message = failed.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        message.contains("already exists and is not managed by SealedSecret"),
        "{message}"
    );
    let s = secrets.get("taken").await?;
    assert_eq!(data_of(&s, "k").as_deref(), Some("original"));
    assert!(s.owner_references().is_empty());
    let evs = wait_for("a Warning event", || async {
        let evs = events(&client, app.name(), "taken").await?;
        Ok(evs
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "ErrUpdateFailed")
            .then_some(evs))
    })
    .await?;
    for (_, _, note) in &evs {
        assert_no_canary(&value, "events", note);
    }

    // `managed: "true"` lets the controller adopt it (picked up by the retry).
    secrets
        .patch(
            "taken",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"sealedsecrets.bitnami.com/managed": "true"}}}),
            ),
        )
        .await?;
    ss_api
        .patch(
            "taken",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"poke": "1"}}})),
        )
        .await?;
    wait_for("the managed Secret to be adopted", || async {
        let s = secrets.get("taken").await?;
        Ok(
            (data_of(&s, "k").as_deref() == Some(value.as_str())
                && s.owner_references().len() == 1)
                .then_some(()),
        )
    })
    .await?;
    synced(&ss_api, "taken", "True").await?;
    c.stop().await?;
    assert!(!logs_contain(&value), "canary in logs");
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn replayed_and_tampered_values_are_refused_with_a_clear_status() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-refuse").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let value = canary("replay");
    let ss_api: Api<SealedSecret> = app.api();
    let secrets: Api<Secret> = app.api();

    // Strict scope: the values of "original" replayed under another name.
    let original = seal(&cert, app.name(), "original", &[("k", &value)], json!({}))?;
    let mut replay = original.clone();
    replay.metadata.name = Some("replayed".into());
    ss_api.create(&PostParams::default(), &replay).await?;
    let refused = synced(&ss_api, "replayed", "False").await?;
    let message = refused.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.contains("no key could decrypt secret"), "{message}");
    assert!(message.contains("(k)"), "item named: {message}");
    assert!(secrets.get_opt("replayed").await?.is_none());

    // A namespace-wide value under a strict SealedSecret: the status names the scope mismatch.
    let wide = seal(
        &cert,
        app.name(),
        "wide",
        &[("k", &value)],
        json!({"metadata": {"annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}}}),
    )?;
    let mut stripped = wide.clone();
    stripped.metadata.annotations = None;
    ss_api.create(&PostParams::default(), &stripped).await?;
    let refused = synced(&ss_api, "wide", "False").await?;
    let message = refused.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.contains("namespace-wide"), "{message}");

    // Tampered ciphertext: one byte of the AES part flipped.
    let mut tampered = original.clone();
    tampered.metadata.name = Some("original".into());
    let v = tampered.spec.encrypted_data.get_mut("k").unwrap();
    let mut bytes = hush_sealing::b64::decode(v)?;
    let last = bytes.len() - 20;
    bytes[last] ^= 1;
    *v = hush_sealing::b64::encode(&bytes);
    ss_api.create(&PostParams::default(), &tampered).await?;
    let refused = synced(&ss_api, "original", "False").await?;
    let message = refused.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.contains("modified"), "{message}");
    assert!(secrets.get_opt("original").await?.is_none());

    // The Warning event and the metric.
    let evs = wait_for("an ErrUnsealFailed event", || async {
        let evs = events(&client, app.name(), "original").await?;
        Ok(evs
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "ErrUnsealFailed")
            .then_some(evs))
    })
    .await?;
    assert!(
        evs.iter()
            .any(|(_, _, n)| n.starts_with("Failed to unseal: ")),
        "{evs:?}"
    );
    let errors = c
        .metric("sealed_secrets_controller_unseal_errors_total")
        .await?;
    assert!(errors >= 3.0, "unseal errors {errors}");
    assert_no_canary(&value, "status", &message);

    // A deleted SealedSecret's condition gauge goes, as Bitnami unregisters it.
    let series = format!(
        r#"sealed_secrets_controller_condition_info{{namespace="{}",name="original""#,
        app.name()
    );
    let scrape =
        || async { Ok::<_, anyhow::Error>(http(c.metrics, "GET", "/metrics", b"").await?.1) };
    assert!(
        scrape().await?.contains(&series),
        "no condition gauge for the SealedSecret"
    );
    ss_api.delete("original", &DeleteParams::default()).await?;
    wait_for(
        "the deleted SealedSecret's condition gauge to go",
        || async { Ok((!scrape().await?.contains(&series)).then_some(())) },
    )
    .await?;
    c.stop().await?;
    assert!(!logs_contain(&value), "canary in logs");
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn http_api_verifies_and_rotates() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-http").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let value = canary("http");
    let ss = seal(&cert, app.name(), "v", &[("k", &value)], json!({}))?;
    let body = serde_json::to_vec(&ss)?;
    assert_eq!(http(c.api, "POST", "/v1/verify", &body).await?.0, 200);
    let mut bad = ss.clone();
    bad.metadata.name = Some("other".into());
    let (code, text) = http(c.api, "POST", "/v1/verify", &serde_json::to_vec(&bad)?).await?;
    assert_eq!(code, 409, "{text}");
    assert_no_canary(&value, "verify response", &text);
    assert_eq!(
        http(c.api, "POST", "/v1/verify", b"{not json").await?.0,
        500
    );
    assert_eq!(
        http(c.api, "GET", "/healthz", b"").await?,
        (200, "ok\n".to_owned())
    );

    // Rotate after a new key: the result opens with the newest key and keeps name and scope.
    c.keys.generate().await?;
    let newest = c.cert().await?;
    assert_ne!(newest, cert);
    let (code, text) = http(c.api, "POST", "/v1/rotate", &body).await?;
    assert_eq!(code, 200, "{text}");
    assert_no_canary(&value, "rotate response", &text);
    let rotated: SealedSecret = serde_json::from_str(&text)?;
    assert_eq!(rotated.metadata.name.as_deref(), Some("v"));
    assert_ne!(rotated.spec.encrypted_data, ss.spec.encrypted_data);
    let newest_key = c.keys.snapshot().newest().unwrap().key.clone();
    let mut only_newest = hush_sealing::unseal::Keyring::new();
    only_newest.add(newest_key);
    let as_sealing: hush_sealing::SealedSecret = serde_json::from_str(&text)?;
    let opened =
        only_newest.unseal(&as_sealing, &hush_sealing::unseal::UnsealOptions::default())?;
    assert_eq!(
        opened.secret.data.get("k").map(|v| v.expose().to_vec()),
        Some(value.clone().into_bytes())
    );

    // Metrics with Bitnami's names.
    assert!(
        c.metric("sealed_secrets_controller_http_requests_total")
            .await?
            >= 5.0
    );
    assert_eq!(c.metric("hush_sealed_keys").await?, 2.0);
    // client_golang's process families, which Bitnami's and ESO's dashboards read.
    let rss = c.metric("process_resident_memory_bytes").await?;
    assert!(rss > 1e6, "process_resident_memory_bytes {rss}");
    assert!(c.metric("process_cpu_seconds_total").await? > 0.0);
    assert!(c.metric("process_open_fds").await? >= 3.0);
    c.stop().await?;
    assert!(!logs_contain(&value), "canary in logs");
    drop(client);
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn restart_reconciles_without_decrypting() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-restart").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let ss_api: Api<SealedSecret> = app.api();
    for i in 0..3 {
        let ss = seal(
            &cert,
            app.name(),
            &format!("s{i}"),
            &[("k", &format!("v{i}"))],
            json!({}),
        )?;
        ss_api.create(&PostParams::default(), &ss).await?;
    }
    for i in 0..3 {
        synced(&ss_api, &format!("s{i}"), "True").await?;
    }
    c.stop().await?;

    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    wait_for("three skipped unseals", || async {
        Ok((c.metric("hush_sealed_unseal_skips_total").await? >= 3.0).then_some(()))
    })
    .await?;
    assert_eq!(c.metric("hush_sealed_decrypts_total").await?, 0.0);

    // Drift made while the controller was down is still caught: the MAC no longer matches.
    c.stop().await?;
    let secrets: Api<Secret> = app.api();
    secrets
        .patch(
            "s0",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "ZHJpZnQ="}})),
        )
        .await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    wait_for("the drift to be reverted", || async {
        Ok((data_of(&secrets.get("s0").await?, "k").as_deref() == Some("v0")).then_some(()))
    })
    .await?;
    assert_eq!(c.metric("hush_sealed_decrypts_total").await?, 1.0);
    c.stop().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn two_replicas_elect_one_leader_and_fail_over() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-ha").await?;
    let lease = |id: &str| {
        let mut l = LeaseConfig::new(
            keys_ns.name().to_owned(),
            "hush-controller".into(),
            id.into(),
        );
        l.lease_duration = Duration::from_secs(4);
        l.renew_deadline = Duration::from_secs(3);
        l.retry_period = Duration::from_millis(500);
        Some(l)
    };
    let a =
        Controller::start_with(&client, keys_ns.name(), &[app.name()], lease("a"), |_| {}).await?;
    let b =
        Controller::start_with(&client, keys_ns.name(), &[app.name()], lease("b"), |_| {}).await?;
    let cert = wait_for("the certificate on both replicas", || async {
        let (ca, cb) = (a.cert().await.ok(), b.cert().await.ok());
        Ok(ca.filter(|ca| cb.as_ref() == Some(ca)))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        key_secrets(&client, keys_ns.name()).await?.len(),
        1,
        "only the leader makes a key"
    );
    let leaders = a.metric("hush_leader").await? + b.metric("hush_leader").await?;
    assert_eq!(leaders, 1.0);
    let (leader, follower) = if a.metric("hush_leader").await? == 1.0 {
        (a, b)
    } else {
        (b, a)
    };

    // Kill the leader without releasing the Lease: the follower takes over after the lease time.
    leader.handle.abort();
    let start = tokio::time::Instant::now();
    wait_for("the follower to lead", || async {
        Ok((follower.metric("hush_leader").await? == 1.0).then_some(()))
    })
    .await?;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "takeover took {took:?}");
    let ss_api: Api<SealedSecret> = app.api();
    let ss = seal(
        &cert,
        app.name(),
        "after-failover",
        &[("k", "v")],
        json!({}),
    )?;
    ss_api.create(&PostParams::default(), &ss).await?;
    synced(&ss_api, "after-failover", "True").await?;
    follower.stop().await?;
    Ok(())
}

/// The real kubeseal v0.36.6 from `HUSH_PEERS_ENV` (default `~/.cache/hush/peers.env`, written
/// by `scripts/dev-env.sh`). A missing peer fails the test.
fn kubeseal() -> Result<std::path::PathBuf> {
    let file = std::env::var_os("HUSH_PEERS_ENV").map_or_else(
        || {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/hush/peers.env")
        },
        std::path::PathBuf::from,
    );
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {} (run scripts/dev-env.sh)", file.display()))?;
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("HUSH_PEER_KUBESEAL="))
        .map(std::path::PathBuf::from)
        .with_context(|| format!("HUSH_PEER_KUBESEAL missing from {}", file.display()))?;
    ensure!(path.exists(), "{} does not exist", path.display());
    Ok(path)
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn kubeseal_output_and_bitnami_owned_secrets_are_taken_over() -> Result<()> {
    let (client, keys_ns, app) = setup("sc-kubeseal").await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let dir = tempfile_dir()?;
    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, &cert)?;
    let value = canary("kubeseal");
    let input = serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "from-kubeseal", "namespace": app.name(), "labels": {"l": "v"}},
        "type": "Opaque",
        "stringData": {"token": value},
    }))?;
    let mut child = std::process::Command::new(kubeseal()?)
        .args([
            "--cert",
            cert_path.to_str().unwrap(),
            "-o",
            "json",
            "--scope",
            "namespace-wide",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(&input)?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "kubeseal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ss: SealedSecret = serde_json::from_slice(&out.stdout)?;
    let ss_api: Api<SealedSecret> = app.api();
    ss_api.create(&PostParams::default(), &ss).await?;
    let secrets: Api<Secret> = app.api();
    let s = wait_for("the Secret from kubeseal's SealedSecret", || async {
        Ok(secrets.get_opt("from-kubeseal").await?)
    })
    .await?;
    assert_eq!(data_of(&s, "token").as_deref(), Some(value.as_str()));
    assert_eq!(s.labels().get("l").map(String::as_str), Some("v"));
    synced(&ss_api, "from-kubeseal", "True").await?;

    // A Secret Bitnami's controller made (its ownerReference, none of hush's annotations, stale
    // data) is owned, so hush takes it over and rewrites it.
    let plain = seal(&cert, app.name(), "legacy", &[("k", &value)], json!({}))?;
    let created = ss_api.create(&PostParams::default(), &plain).await?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    // Wait for hush to create it, then replace it by what Bitnami would have left behind.
    wait_for("the legacy Secret", || async {
        Ok(secrets.get_opt("legacy").await?)
    })
    .await?;
    c.stop().await?;
    secrets.delete("legacy", &DeleteParams::default()).await?;
    let bitnami: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "legacy",
            "ownerReferences": [{
                "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                "name": "legacy", "uid": uid, "controller": true,
            }],
        },
        "type": "Opaque",
        "stringData": {"k": "stale", "extra": "gone"},
    }))?;
    secrets.create(&PostParams::default(), &bitnami).await?;
    let c = Controller::start(&client, keys_ns.name(), &[app.name()]).await?;
    wait_for("the Bitnami-made Secret to be taken over", || async {
        let s = secrets.get("legacy").await?;
        Ok((data_of(&s, "k").as_deref() == Some(value.as_str())
            && data_of(&s, "extra").is_none()
            && s.annotations()
                .contains_key("sealedsecrets.hush.dev/data-mac"))
        .then_some(()))
    })
    .await?;

    // `patch`: items merged into an existing Secret, its other items and labels kept.
    let shared: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "shared",
            "labels": {"owner": "someone-else"},
            "annotations": {"sealedsecrets.bitnami.com/patch": "true"},
        },
        "stringData": {"theirs": "kept"},
    }))?;
    secrets.create(&PostParams::default(), &shared).await?;
    let patch_ss = seal(&cert, app.name(), "shared", &[("ours", &value)], json!({}))?;
    ss_api.create(&PostParams::default(), &patch_ss).await?;
    wait_for("the patched Secret", || async {
        let s = secrets.get("shared").await?;
        Ok((data_of(&s, "ours").as_deref() == Some(value.as_str())
            && data_of(&s, "theirs").as_deref() == Some("kept")
            && s.labels().get("owner").map(String::as_str) == Some("someone-else")
            && s.owner_references().is_empty())
        .then_some(()))
    })
    .await?;

    // An immutable owned Secret whose content changes is recreated.
    let frozen = seal(
        &cert,
        app.name(),
        "frozen",
        &[("k", "one")],
        json!({"immutable": true}),
    )?;
    ss_api.create(&PostParams::default(), &frozen).await?;
    let first = wait_for("the immutable Secret", || async {
        Ok(secrets.get_opt("frozen").await?)
    })
    .await?;
    assert_eq!(first.immutable, Some(true));
    let mut changed = seal(
        &cert,
        app.name(),
        "frozen",
        &[("k", "two")],
        json!({"immutable": true}),
    )?;
    let current = ss_api.get("frozen").await?;
    changed.metadata.resource_version = current.metadata.resource_version.clone();
    ss_api
        .replace("frozen", &PostParams::default(), &changed)
        .await?;
    wait_for("the immutable Secret to be recreated", || async {
        let s = secrets.get("frozen").await?;
        Ok(
            (data_of(&s, "k").as_deref() == Some("two") && s.metadata.uid != first.metadata.uid)
                .then_some(()),
        )
    })
    .await?;
    synced(&ss_api, "frozen", "True").await?;
    c.stop().await?;
    std::fs::remove_dir_all(&dir)?;
    assert!(!logs_contain(&value), "canary in logs");
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let mut r = [0u8; 8];
    hush_crypto::Entropy::fill(&mut SystemEntropy, &mut r)?;
    let dir = std::env::temp_dir().join(format!(
        "hush-e2e-{}",
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A local address for the controller that the API server's service proxy accepts (not
/// loopback): `198.18.7.1/32` on one end of a veth pair made for this test (RFC 2544 range,
/// unused on these machines; see docs/testing.md). Removed on drop.
struct ProxyAddress;

const PROXY_IP: &str = "198.18.7.1";

impl ProxyAddress {
    fn create() -> Result<Self> {
        let ip = |args: &[&str]| -> Result<()> {
            let out = std::process::Command::new("ip").args(args).output()?;
            ensure!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        // A leftover of an interrupted run is removed first.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", "hush-sc0"])
            .output();
        ip(&[
            "link", "add", "hush-sc0", "type", "veth", "peer", "name", "hush-sc1",
        ])?;
        let this = Self;
        ip(&["addr", "add", &format!("{PROXY_IP}/32"), "dev", "hush-sc0"])?;
        ip(&["link", "set", "hush-sc0", "up"])?;
        ip(&["link", "set", "hush-sc1", "up"])?;
        Ok(this)
    }
}

impl Drop for ProxyAddress {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", "hush-sc0"])
            .output();
    }
}

/// Runs kubeseal without blocking the runtime (the controller under test serves from it), with
/// a one-minute bound.
async fn run_kubeseal(args: &[&str], stdin: &[u8]) -> Result<std::process::Output> {
    let mut child = tokio::process::Command::new(kubeseal()?)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    input.write_all(stdin).await?;
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .with_context(|| format!("kubeseal {} did not finish within 60 s", args.join(" ")))?
        .map_err(Into::into)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn kubeseal_reaches_the_controller_through_the_service_proxy() -> Result<()> {
    let _address = ProxyAddress::create()?;
    let (client, keys_ns, app) = setup("sc-proxy").await?;
    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |cfg| {
        cfg.listen_addr = format!("{PROXY_IP}:0");
        cfg.rate_limit = 2.0;
    })
    .await?;
    let cert = wait_for("the certificate", || async { Ok(c.cert().await.ok()) }).await?;
    let port = c.api.port();
    let ns = keys_ns.name();
    // What a Deployment and kube-proxy would provide: Service, Pod with the address, Endpoints.
    let services: Api<k8s_openapi::api::core::v1::Service> = keys_ns.api();
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "sealed-secrets-controller"},
                "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": port}]},
            }))?,
        )
        .await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = keys_ns.api();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "sealed-secrets-controller-0"},
            "spec": {"containers": [{"name": "controller", "image": "hush"}]},
        }))?,
    )
    .await?;
    pods.patch_status(
        "sealed-secrets-controller-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"podIP": PROXY_IP, "podIPs": [{"ip": PROXY_IP}]}})),
    )
    .await?;
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> = keys_ns.api();
    endpoints
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "sealed-secrets-controller"},
                "subsets": [{
                    "addresses": [{"ip": PROXY_IP, "targetRef": {
                        "kind": "Pod", "namespace": ns, "name": "sealed-secrets-controller-0"}}],
                    "ports": [{"name": "http", "port": port}],
                }],
            }))?,
        )
        .await?;

    // kubeseal --fetch-cert through /api/v1/namespaces/<ns>/services/http:sealed-secrets-controller:/proxy/v1/cert.pem
    let fetched = run_kubeseal(&["--fetch-cert", "--controller-namespace", ns], b"").await?;
    ensure!(
        fetched.status.success(),
        "kubeseal --fetch-cert: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&fetched.stdout), cert);

    // Online sealing (certificate through the proxy), then the controller unseals it.
    let value = canary("proxy");
    let input = serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "online", "namespace": app.name()},
        "stringData": {"k": value},
    }))?;
    let sealed = run_kubeseal(&["--controller-namespace", ns, "-o", "json"], &input).await?;
    ensure!(
        sealed.status.success(),
        "kubeseal: {}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    // --validate goes to POST /v1/verify: valid, then a value moved to another name.
    let ok = run_kubeseal(
        &["--validate", "--controller-namespace", ns],
        &sealed.stdout,
    )
    .await?;
    ensure!(
        ok.status.success(),
        "kubeseal --validate: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut moved: serde_json::Value = serde_json::from_slice(&sealed.stdout)?;
    moved["metadata"]["name"] = json!("moved");
    let bad = run_kubeseal(
        &["--validate", "--controller-namespace", ns],
        &serde_json::to_vec(&moved)?,
    )
    .await?;
    assert!(!bad.status.success(), "a moved value must not validate");
    // --re-encrypt goes to POST /v1/rotate.
    tokio::time::sleep(Duration::from_secs(1)).await; // the verify rate limit (2/s) is on here
    let rotated = run_kubeseal(
        &["--re-encrypt", "--controller-namespace", ns, "-o", "json"],
        &sealed.stdout,
    )
    .await?;
    ensure!(
        rotated.status.success(),
        "kubeseal --re-encrypt: {}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let ss: SealedSecret = serde_json::from_slice(&rotated.stdout)?;
    let ss_api: Api<SealedSecret> = app.api();
    ss_api.create(&PostParams::default(), &ss).await?;
    let secrets: Api<Secret> = app.api();
    let s = wait_for("the Secret sealed online", || async {
        Ok(secrets.get_opt("online").await?)
    })
    .await?;
    assert_eq!(data_of(&s, "k").as_deref(), Some(value.as_str()));
    for out in [&fetched, &sealed, &ok, &bad, &rotated] {
        assert_no_canary(
            &value,
            "kubeseal stderr",
            &String::from_utf8_lossy(&out.stderr),
        );
    }
    c.stop().await?;
    assert!(!logs_contain(&value), "canary in logs");
    Ok(())
}
