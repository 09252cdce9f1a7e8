//! The SealedSecret controller's key renewal (SIGUSR1, `--key-renew-period`,
//! `--key-cutoff-time`) and `--label-selector`, against the real API server.
//!
//! Its own test binary because SIGUSR1 goes to the whole process: every controller running in
//! it would renew. The tests here run one at a time (`SERIAL`).
//!
//! Run: `eval "$(scripts/kube-testenv.sh start)"; cargo test -p hush-e2e --test sealed_controller_flags -- --include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sealed_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_crypto::cert::Certificate;
use hush_crypto::rsa::RsaPrivateKey;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;

use sealed_harness::*;

const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |_| {}).await?;
    let first = wait_for("the first key", || async {
        let keys = key_secrets(&client, keys_ns.name()).await?;
        Ok((keys.len() == 1).then(|| keys[0].1.to_pem()))
    })
    .await?;
    let ss_api: Api<SealedSecret> = app.api();
    let before = seal(
        &first,
        app.name(),
        "before",
        &[("k", "sealed-before")],
        json!({}),
    )?;
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
    let late_old = seal(
        &first,
        app.name(),
        "late-old",
        &[("k", "sealed-late-old")],
        json!({}),
    )?;
    ss_api.create(&PostParams::default(), &late_old).await?;
    let with_new = seal(
        &served,
        app.name(),
        "with-new",
        &[("k", "sealed-new")],
        json!({}),
    )?;
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
            &seal(&backup, app.name(), "s", &[("k", "v")], json!({}))?,
        )
        .await?;

    // A cutoff before the newest key: no new key. The SealedSecret is reconciled only after
    // the start-up key check, so once it is synced a cutoff key would already exist.
    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |cfg| {
        cfg.key_cutoff_time = Some(now - 7200);
        cfg.key_renew_period = Duration::ZERO;
    })
    .await?;
    synced(&ss_api, "s", "True").await?;
    assert_eq!(key_secrets(&client, keys_ns.name()).await?.len(), 1);
    assert_eq!(c.cert().await?, backup);
    c.stop().await?;

    // A cutoff after it: a new key at start, the backup kept.
    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |cfg| {
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
    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |cfg| {
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
            &seal(&backup, app.name(), "s2", &[("k", "v2")], json!({}))?,
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
    let mut picked = seal(&cert, app.name(), "picked", &[("k", "v1")], shard.clone())?;
    picked
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("shard".into(), "a".into());
    ss_api.create(&PostParams::default(), &picked).await?;
    let mut ignored = seal(&cert, app.name(), "ignored", &[("k", "v2")], shard)?;
    ignored
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("shard".into(), "b".into());
    ss_api.create(&PostParams::default(), &ignored).await?;

    let c = Controller::start_with(&client, keys_ns.name(), &[app.name()], None, |cfg| {
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
