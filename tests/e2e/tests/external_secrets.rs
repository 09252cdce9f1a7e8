//! The ExternalSecret controller against the real kube-apiserver, the OpenBao dev server and moto
//! (all started by `scripts/test.sh`). ESO's own manifests, unchanged. Harness in
//! `external_harness/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use base64::Engine as _;
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_external_controller::eso;
use hush_external_controller::reconcile::FINALIZER;
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn vault_kv_v2_and_v1_with_token_and_approle() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-vault").await?;
    let n = ns.name().to_owned();
    let pw = canary("vault");
    // KV v2 (the dev server's `secret/`) and a KV v1 mount.
    bao("POST", &format!("secret/data/{n}/db"), Some(json!({"data": {"password": pw, "user": "admin", "port": 5432, "nested": {"host": "db.local"}, "a.b": "dotted"}}))).await?;
    bao(
        "POST",
        &format!("sys/mounts/kv1-{n}"),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await?;
    bao(
        "POST",
        &format!("kv1-{n}/app"),
        Some(json!({"token": "v1-value"})),
    )
    .await?;
    // AppRole with a read policy.
    bao("POST", &format!("sys/policies/acl/{n}"), Some(json!({"policy": format!("path \"secret/data/{n}/*\" {{ capabilities = [\"read\"] }}\npath \"auth/token/lookup-self\" {{ capabilities = [\"read\"] }}")}))).await?;
    bao(
        "POST",
        &format!("sys/auth/approle-{n}"),
        Some(json!({"type": "approle"})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/approle-{n}/role/eso"),
        Some(json!({"token_policies": [n], "token_ttl": "1h"})),
    )
    .await?;
    let role_id =
        bao("GET", &format!("auth/approle-{n}/role/eso/role-id"), None).await?["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let secret_id = bao(
        "POST",
        &format!("auth/approle-{n}/role/eso/secret-id"),
        Some(json!({})),
    )
    .await?["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    secret_from_literals(&secrets, "approle", &[("secret-id", &secret_id)]).await?;
    let stores: Api<SecretStore> = ns.api();
    let server = env("HUSH_VAULT_ADDR");
    // ESO's documented manifests (docs/provider/hashicorp-vault.md), unchanged apart from names.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-backend"},
        "spec": {"provider": {"vault": {"server": server, "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-approle"},
        "spec": {"provider": {"vault": {"server": server, "path": "secret", "version": "v2",
            "auth": {"appRole": {"path": format!("approle-{n}"), "roleId": role_id, "secretRef": {"name": "approle", "key": "secret-id"}}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-v1"},
        "spec": {"provider": {"vault": {"server": server, "path": format!("kv1-{n}"), "version": "v1",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "unsupported"},
        "spec": {"provider": {"alibaba": {"regionID": "eu-central-1"}}}})).await?;

    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "db", "labels": {"team": "a"}},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault-backend", "kind": "SecretStore"},
            "target": {"name": "db-secret", "creationPolicy": "Owner"},
            "data": [
                {"secretKey": "password", "remoteRef": {"key": format!("{n}/db"), "property": "password"}},
                {"secretKey": "host", "remoteRef": {"key": format!("{n}/db"), "property": "nested.host"}},
                {"secretKey": "dotted", "remoteRef": {"key": format!("{n}/db"), "property": "a.b"}},
                {"secretKey": "all", "remoteRef": {"key": format!("{n}/db")}}
            ],
            "dataFrom": [{"extract": {"key": format!("{n}/db")}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "approle"},
        "spec": {"secretStoreRef": {"name": "vault-approle"}, "target": {"name": "approle-secret"},
            "data": [{"secretKey": "pw", "remoteRef": {"key": format!("secret/{n}/db"), "property": "password"}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "kv1"},
        "spec": {"secretStoreRef": {"name": "vault-v1"}, "target": {"name": "kv1-secret"},
            "data": [{"secretKey": "token", "remoteRef": {"key": "app", "property": "token"}}]}})).await?;

    let synced = wait_ready(&es, "db", "True", "SecretSynced").await?;
    let s = secrets.get("db-secret").await?;
    assert_eq!(value(&s, "password"), pw);
    assert_eq!(value(&s, "host"), "db.local");
    assert_eq!(value(&s, "dotted"), "dotted");
    assert_eq!(value(&s, "user"), "admin");
    assert_eq!(value(&s, "port"), "5432");
    assert_eq!(value(&s, "nested"), r#"{"host":"db.local"}"#);
    // Go json.Marshal of the whole secret: sorted keys, compact.
    assert_eq!(
        value(&s, "all"),
        format!(
            r#"{{"a.b":"dotted","nested":{{"host":"db.local"}},"password":"{pw}","port":5432,"user":"admin"}}"#
        )
    );
    // ESO's markers.
    assert_eq!(
        s.labels().get(eso::LABEL_MANAGED).map(String::as_str),
        Some("true")
    );
    assert_eq!(
        s.labels().get(eso::LABEL_CREATED_BY),
        Some(&eso::created_by(&n, "db"))
    );
    assert_eq!(s.labels().get("team").map(String::as_str), Some("a"));
    let data: BTreeMap<String, Vec<u8>> = s
        .data
        .clone()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    assert_eq!(
        s.annotations().get(eso::ANNOTATION_DATA_HASH),
        Some(&eso::data_hash(&data))
    );
    assert_eq!(s.owner_references()[0].kind, "ExternalSecret");
    assert_eq!(s.owner_references()[0].controller, Some(true));
    let managers: Vec<String> = s
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"externalsecrets.external-secrets.io/db".to_owned()),
        "{managers:?}"
    );
    let status = synced.status.clone().unwrap();
    assert!(status.refresh_time.is_some());
    assert_eq!(
        status.synced_resource_version,
        Some(eso::synced_resource_version(
            synced.metadata.generation.unwrap(),
            synced.labels(),
            synced.annotations()
        ))
    );

    wait_ready(&es, "approle", "True", "SecretSynced").await?;
    assert_eq!(value(&secrets.get("approle-secret").await?, "pw"), pw);
    wait_ready(&es, "kv1", "True", "SecretSynced").await?;
    assert_eq!(
        value(&secrets.get("kv1-secret").await?, "token"),
        "v1-value"
    );

    // Stores: Ready with ESO's reasons; an unsupported provider is InvalidProviderConfig.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ok = stores.get("vault-approle").await?;
        let bad = stores.get("unsupported").await?;
        let reason = |s: &SecretStore| {
            s.status
                .as_ref()
                .and_then(|st| st.conditions.first())
                .and_then(|c| c.reason.clone())
        };
        if reason(&ok).as_deref() == Some("Valid")
            && reason(&bad).as_deref() == Some("InvalidProviderConfig")
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "stores not validated: {:?} {:?}",
            ok.status,
            bad.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A provider change shows after a force-sync annotation (Argo CD's refresh).
    bao(
        "POST",
        &format!("secret/data/{n}/db"),
        Some(json!({"data": {"password": format!("{pw}-2"), "user": "admin"}})),
    )
    .await?;
    es.patch(
        "approle",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {eso::ANNOTATION_FORCE_SYNC: "1"}}})),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while value(&secrets.get("approle-secret").await?, "pw") != format!("{pw}-2") {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "force-sync did not refresh"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_no_canary(&client, &ns, &es, &pw).await?;
    ctl.stop().await?;
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn aws_secrets_manager_and_parameter_store_with_secret_ref() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-aws").await?;
    let n = ns.name().to_owned();
    let pw = canary("aws");
    aws("secretsmanager", "secretsmanager", "CreateSecret", json!({"Name": format!("{n}/db"), "SecretString": json!({"password": pw, "port": 5432}).to_string()})).await?;
    aws(
        "ssm",
        "AmazonSSM",
        "PutParameter",
        json!({"Name": format!("/{n}/api-key"), "Value": "ssm-value", "Type": "SecureString"}),
    )
    .await?;

    let secrets: Api<Secret> = ns.api();
    secret_from_literals(
        &secrets,
        "awssm-secret",
        &[("access-key", "testing"), ("secret-access-key", "testing")],
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    for (name, service) in [("aws-sm", "SecretsManager"), ("aws-ps", "ParameterStore")] {
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"provider": {"aws": {"service": service, "region": "us-east-1",
                "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
                    "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}}}}}}})).await?;
    }
    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "sm"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws-sm", "kind": "SecretStore"},
            "target": {"name": "sm-secret", "creationPolicy": "Owner",
                "template": {"engineVersion": "v2", "data": {"dsn": "postgres://app:{{ .password }}@db:{{ .port }}/app"}}},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/db"), "property": "password"}},
                     {"secretKey": "port", "remoteRef": {"key": format!("{n}/db"), "property": "port"}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "ps"},
        "spec": {"secretStoreRef": {"name": "aws-ps"}, "target": {"name": "ps-secret", "creationPolicy": "Orphan"},
            "data": [{"secretKey": "key", "remoteRef": {"key": format!("/{n}/api-key")}}]}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "extract"},
        "spec": {"secretStoreRef": {"name": "aws-sm"}, "target": {"name": "extract-secret"},
            "dataFrom": [{"extract": {"key": format!("{n}/db")}}]}})).await?;
    // deletionPolicy Delete with a missing key: nothing to write, the Secret is not created.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "gone"},
        "spec": {"secretStoreRef": {"name": "aws-sm"}, "target": {"name": "gone-secret", "deletionPolicy": "Delete"},
            "data": [{"secretKey": "x", "remoteRef": {"key": format!("{n}/missing")}}]}})).await?;
    // Retain (the default) with a missing key: an error, Ready=False.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "retain"},
        "spec": {"secretStoreRef": {"name": "aws-sm"}, "target": {"name": "retain-secret"},
            "data": [{"secretKey": "x", "remoteRef": {"key": format!("{n}/missing")}}]}})).await?;
    // Merge into a Secret that does not exist: SecretMissing.
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "merge"},
        "spec": {"secretStoreRef": {"name": "aws-sm"}, "target": {"name": "merge-secret", "creationPolicy": "Merge"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/db"), "property": "password"}}]}})).await?;
    // Delete with Merge is refused (ESO's webhook rule, checked by the controller).
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "bad"},
        "spec": {"secretStoreRef": {"name": "aws-sm"}, "target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/db")}}]}})).await?;

    wait_ready(&es, "sm", "True", "SecretSynced").await?;
    let s = secrets.get("sm-secret").await?;
    assert_eq!(value(&s, "dsn"), format!("postgres://app:{pw}@db:5432/app"));
    assert!(
        s.data.as_ref().unwrap().get("password").is_none(),
        "template replaces the data"
    );
    wait_ready(&es, "ps", "True", "SecretSynced").await?;
    let ps = secrets.get("ps-secret").await?;
    assert_eq!(value(&ps, "key"), "ssm-value");
    assert!(
        ps.owner_references().is_empty(),
        "Orphan sets no ownerReference"
    );
    assert!(ps.labels().get(eso::LABEL_CREATED_BY).is_none());
    wait_ready(&es, "extract", "True", "SecretSynced").await?;
    let x = secrets.get("extract-secret").await?;
    assert_eq!(
        (value(&x, "password"), value(&x, "port")),
        (pw.clone(), "5432".to_owned())
    );
    wait_ready(&es, "gone", "True", "SecretDeleted").await?;
    assert!(secrets.get_opt("gone-secret").await?.is_none());
    wait_ready(&es, "retain", "False", "SecretSyncedError").await?;
    wait_ready(&es, "merge", "True", "SecretMissing").await?;
    assert!(secrets.get_opt("merge-secret").await?.is_none());
    wait_ready(&es, "bad", "False", "SecretSyncedError").await?;

    // The Merge target appears: the key is merged in, foreign keys stay.
    secret_from_literals(&secrets, "merge-secret", &[("foreign", "kept")]).await?;
    es.patch(
        "merge",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {eso::ANNOTATION_FORCE_SYNC: "1"}}})),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = secrets.get("merge-secret").await?;
        if value(&m, "password") == pw {
            assert_eq!(value(&m, "foreign"), "kept");
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "merge did not happen"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_no_canary(&client, &ns, &es, &pw).await?;
    ctl.stop().await?;
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn takes_over_secrets_eso_wrote_without_refetching() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-takeover").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(&secrets, "vault-token", &[("token", "unused")]).await?;
    let stores: Api<SecretStore> = ns.api();
    // A store whose server does not answer: any fetch would fail.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": "http://127.0.0.1:1", "path": "secret",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let es: Api<ExternalSecret> = ns.api();
    let obj = apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"}, "target": {"name": "app"},
            "data": [{"secretKey": "password", "remoteRef": {"key": "app", "property": "password"}}]}})).await?;
    // The Secret and status exactly as ESO writes them.
    let data = BTreeMap::from([("password".to_owned(), b"from-eso".to_vec())]);
    let owner = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "app", "uid": obj.uid().unwrap(), "controller": true, "blockOwnerDeletion": true});
    let secret: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app", "labels": {eso::LABEL_MANAGED: "true", eso::LABEL_CREATED_BY: eso::created_by(&n, "app")},
            "annotations": {eso::ANNOTATION_DATA_HASH: eso::data_hash(&data)}, "ownerReferences": [owner]},
        "type": "Opaque", "data": {"password": base64::engine::general_purpose::STANDARD.encode("from-eso")}}))?;
    secrets
        .create(
            &PostParams {
                field_manager: Some(eso::field_manager("app")),
                ..PostParams::default()
            },
            &secret,
        )
        .await?;
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())?
            .to_string();
    let rv = eso::synced_resource_version(
        obj.metadata.generation.unwrap(),
        obj.labels(),
        obj.annotations(),
    );
    es.patch_status("app", &PatchParams::default(), &Patch::Merge(json!({"status": {
        "refreshTime": now, "syncedResourceVersion": rv, "binding": {"name": "app"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced", "lastTransitionTime": now}]}}))).await?;

    let ctl = Controller::start(&client, &n).await?;
    // The store is validated (and fails): proof the controller runs.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = stores.get("vault").await?;
        if s.status
            .as_ref()
            .and_then(|st| st.conditions.first())
            .and_then(|c| c.reason.clone())
            .as_deref()
            == Some("InvalidProviderConfig")
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "store not validated"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = es.get("app").await?;
    assert_eq!(
        ready(&after),
        Some(("True".into(), "SecretSynced".into())),
        "no fetch, no error: {:?}",
        after.status
    );
    assert_eq!(value(&secrets.get("app").await?, "password"), "from-eso");
    // A Secret whose hash no longer matches is refetched (and fails against the dead server).
    secrets.patch("app", &PatchParams::default(), &Patch::Merge(json!({"data": {"password": base64::engine::general_purpose::STANDARD.encode("tampered")}}))).await?;
    wait_ready(&es, "app", "False", "SecretSyncedError").await?;
    assert_eq!(
        value(&secrets.get("app").await?, "password"),
        "tampered",
        "the Secret is left alone on provider errors"
    );
    ctl.stop().await?;
    ns.delete().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn vault_outage_keeps_the_secret_and_recovers() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-outage").await?;
    let n = ns.name().to_owned();
    let pw = canary("outage");
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": pw}})),
    )
    .await?;
    let p = proxy(&env("HUSH_VAULT_ADDR")).await?;
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": p.addr, "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": "vault"}, "target": {"name": "app"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
    wait_ready(&es, "app", "True", "SecretSynced").await?;
    p.set_up(false);
    let failed = wait_ready(&es, "app", "False", "SecretSyncedError").await?;
    let msg = failed.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap_or_default();
    assert_eq!(msg, "could not get secret data from provider");
    assert_eq!(
        value(&secrets.get("app").await?, "password"),
        pw,
        "last good Secret kept"
    );
    p.set_up(true);
    wait_ready(&es, "app", "True", "SecretSynced").await?;
    assert_no_canary(&client, &ns, &es, &pw).await?;
    ctl.stop().await?;
    ns.delete().await?;
    Ok(())
}

/// ExternalSecrets that ESO reconciled carry its cleanup finalizer. After the switch to hush
/// (ESO gone), deleting them completes: hush does ESO's cleanup (the target Secret goes with
/// `deletionPolicy: Delete` + `creationPolicy: Owner`; the test API server has no garbage
/// collector, so only hush can delete it) and removes the finalizer. Without it they would stay
/// `Terminating` and block their namespace's deletion.
#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn deleting_externalsecrets_eso_finalized_completes() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-finalizer").await?;
    let n = ns.name().to_owned();
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": "pw"}})),
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let es: Api<ExternalSecret> = ns.api();
    // A store of another controller class (ESO's, during a migration): its ExternalSecrets are
    // ESO's to clean up.
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "eso"},
        "spec": {"controller": "eso", "provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "foreign", "finalizers": [FINALIZER]},
        "spec": {"secretStoreRef": {"name": "eso"}, "target": {"name": "foreign"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
    es.delete("foreign", &Default::default()).await?;
    let ctl = Controller::start(&client, &n).await?;
    for (name, deletion) in [("delete", "Delete"), ("retain", "Retain")] {
        apply(&es, json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": name, "finalizers": [FINALIZER, "example.com/other"]},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
                "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": deletion},
                "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})).await?;
        wait_ready(&es, name, "True", "SecretSynced").await?;
        es.delete(name, &Default::default()).await?;
    }
    // hush takes its finalizer off and leaves the other one (its owner's business).
    let deadline = tokio::time::Instant::now() + WAIT;
    for name in ["delete", "retain"] {
        loop {
            let left = es.get(name).await?;
            if left.finalizers() == ["example.com/other"] {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{name}: finalizers {:?}",
                left.finalizers()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        es.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    }
    assert!(
        secrets.get_opt("delete").await?.is_none(),
        "deletionPolicy Delete + Owner: the Secret is deleted"
    );
    // Deleted before the others and handled by then: ESO's finalizer left for ESO.
    assert_eq!(es.get("foreign").await?.finalizers(), [FINALIZER]);
    es.patch(
        "foreign",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    assert_eq!(
        value(&secrets.get("retain").await?, "password"),
        "pw",
        "deletionPolicy Retain: the Secret stays (the garbage collector's business)"
    );
    ctl.stop().await?;
    ns.delete().await?;
    Ok(())
}

/// A key, label or annotation dropped from an ExternalSecret leaves the Secret, as with ESO
/// (the Secret's managedFields say what the ExternalSecret wrote): with `creationPolicy: Merge`
/// the keys others wrote stay.
#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn keys_dropped_from_the_externalsecret_leave_the_secret() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-stale").await?;
    let n = ns.name().to_owned();
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"a": "1", "b": "2"}})),
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    secret_from_literals(&secrets, "merged", &[("own", "mine")]).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let es: Api<ExternalSecret> = ns.api();
    let ctl = Controller::start(&client, &n).await?;
    let data = |keys: &[&str]| {
        keys.iter()
            .map(|k| json!({"secretKey": k, "remoteRef": {"key": format!("{n}/app"), "property": k}}))
            .collect::<Vec<_>>()
    };
    let merge = |keys: &[&str]| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "merge"},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
                "target": {"name": "merged", "creationPolicy": "Merge"}, "data": data(keys)}})
    };
    let owner = |labels: Value| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "owner", "labels": labels},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
                "target": {"name": "owned"}, "data": data(&["a", "b"])}})
    };
    apply(&es, merge(&["a", "b"])).await?;
    apply(&es, owner(json!({"team": "x", "tier": "web"}))).await?;
    wait_ready(&es, "merge", "True", "SecretSynced").await?;
    wait_ready(&es, "owner", "True", "SecretSynced").await?;
    let keys = |s: &Secret| {
        s.data
            .as_ref()
            .map(|d| d.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&secrets.get("merged").await?), ["a", "b", "own"]);
    assert_eq!(
        secrets
            .get("owned")
            .await?
            .labels()
            .get("tier")
            .map(String::as_str),
        Some("web")
    );

    es.patch(
        "merge",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"data": data(&["a"])}})),
    )
    .await?;
    es.patch(
        "owner",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": null}}})),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let merged = secrets.get("merged").await?;
        let owned = secrets.get("owned").await?;
        if keys(&merged) == ["a", "own"] && !owned.labels().contains_key("tier") {
            assert_eq!(
                value(&merged, "own"),
                "mine",
                "a key the ExternalSecret never wrote stays"
            );
            assert_eq!(owned.labels().get("team").map(String::as_str), Some("x"));
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "merged keys {:?}, owned labels {:?}",
            keys(&merged),
            owned.labels()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctl.stop().await?;
    ns.delete().await?;
    Ok(())
}
