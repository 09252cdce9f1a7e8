//! PushSecret (`external-secrets.io/v1alpha1`) against the real kube-apiserver, OpenBao and moto
//! (started by `scripts/test.sh`): ESO's documented manifests (docs/guides/pushsecrets.md and the
//! Vault and AWS provider pages), unchanged apart from names. Pushes to Vault KV v2 and v1 and to
//! AWS Secrets Manager and Parameter Store; a change of the source followed; ESO's ownership
//! marker (an unmanaged remote secret is refused, never overwritten); `updatePolicy:
//! IfNotExists`; `deletionPolicy: Delete` removing a dropped entry and everything on deletion;
//! `template`; the whole Secret as JSON; a field hush does not implement named in `Ready`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use external_harness::*;
use hush_api::external_secrets::SecretStore;
use hush_api::push_secrets::PushSecret;
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

fn push_ready(ps: &PushSecret) -> Option<(String, String, String)> {
    ps.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn wait_push(
    api: &Api<PushSecret>,
    name: &str,
    status: &str,
    reason: &str,
) -> Result<PushSecret> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ps = api.get(name).await?;
        if let Some((s, r, _)) = push_ready(&ps)
            && s == status
            && r == reason
        {
            return Ok(ps);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "PushSecret {name}: Ready is {:?}, want {status}/{reason}",
                push_ready(&ps)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `read` until `check` holds.
async fn eventually<F, Fut>(what: &str, read: F, check: impl Fn(&Value) -> bool) -> Result<Value>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Value>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = read().await.unwrap_or(Value::Null);
        if check(&v) {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: last {v}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn bao_opt(path: &str) -> Result<Value> {
    bao("GET", path, None).await
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn push_secret_to_vault_kv_v2_and_v1() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "ps-vault").await?;
    let n = ns.name().to_owned();
    let first = canary("push-first");
    let second = canary("push-second");
    // A KV v1 mount, and secrets no PushSecret wrote (no ownership marker).
    bao(
        "POST",
        &format!("sys/mounts/kv1-{n}"),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await?;
    bao(
        "POST",
        &format!("secret/data/{n}/unmanaged"),
        Some(json!({"data": {"best-pokemon": "keep"}})),
    )
    .await?;
    bao(
        "POST",
        &format!("kv1-{n}/unmanaged"),
        Some(json!({"x": "keep"})),
    )
    .await?;

    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    secret_from_literals(
        &secrets,
        "pokedex-credentials",
        &[("best-pokemon", &first), ("trainer", "ash")],
    )
    .await?;
    let stores: Api<SecretStore> = ns.api();
    let server = env("HUSH_VAULT_ADDR");
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-backend"},
        "spec": {"provider": {"vault": {"server": server, "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-v1"},
        "spec": {"provider": {"vault": {"server": server, "path": format!("kv1-{n}"), "version": "v1",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;

    let ctl = Controller::start(&client, &n).await?;
    let pushes: Api<PushSecret> = ns.api();
    // ESO's documented PushSecret (docs/guides/pushsecrets.md), refreshing every 2 s to follow the
    // source.
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "pushsecret-example"},
        "spec": {"updatePolicy": "Replace", "deletionPolicy": "Delete", "refreshInterval": "2s",
            "secretStoreRefs": [{"name": "vault-backend", "kind": "SecretStore"}],
            "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [
                {"match": {"secretKey": "best-pokemon", "remoteRef": {"remoteKey": format!("{n}/teams"), "property": "best-pokemon"}}},
                {"match": {"secretKey": "trainer", "remoteRef": {"remoteKey": format!("{n}/trainer"), "property": "name"}},
                 "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata",
                    "spec": {"customMetadata": {"team": "kanto"}}}}
            ]}})).await?;
    let ps = wait_push(&pushes, "pushsecret-example", "True", "Synced").await?;
    assert!(
        ps.finalizers()
            .contains(&"pushsecret.externalsecrets.io/finalizer".to_owned())
    );
    let synced = &ps.status.as_ref().unwrap().synced_push_secrets["SecretStore/vault-backend"];
    ensure!(
        synced.contains_key(&format!("{n}/teams/best-pokemon")),
        "{synced:?}"
    );
    let teams = bao_opt(&format!("secret/data/{n}/teams")).await?;
    assert_eq!(teams["data"]["data"]["best-pokemon"], first);
    let meta = bao_opt(&format!("secret/metadata/{n}/teams")).await?;
    assert_eq!(
        meta["data"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    let meta = bao_opt(&format!("secret/metadata/{n}/trainer")).await?;
    assert_eq!(meta["data"]["custom_metadata"]["team"], "kanto");
    assert_eq!(
        bao_opt(&format!("secret/data/{n}/trainer")).await?["data"]["data"]["name"],
        "ash"
    );

    // Follow a change of the source.
    secrets
        .patch(
            "pokedex-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"best-pokemon": second}})),
        )
        .await?;
    let path = format!("secret/data/{n}/teams");
    eventually(
        "the new value pushed",
        || bao_opt(&path),
        |v| v["data"]["data"]["best-pokemon"] == second,
    )
    .await?;

    // An unmanaged Vault secret is never overwritten.
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "unmanaged"},
        "spec": {"secretStoreRefs": [{"name": "vault-backend"}], "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"secretKey": "best-pokemon", "remoteRef": {"remoteKey": format!("{n}/unmanaged"), "property": "best-pokemon"}}}]}})).await?;
    let ps = wait_push(&pushes, "unmanaged", "False", "Errored").await?;
    let msg = push_ready(&ps).unwrap().2;
    ensure!(msg.contains("not managed by external-secrets"), "{msg}");
    assert_eq!(
        bao_opt(&format!("secret/data/{n}/unmanaged")).await?["data"]["data"]["best-pokemon"],
        "keep"
    );

    // KV v1: the whole Secret (no secretKey) as a JSON object, with the marker inside; an
    // unmanaged v1 secret refused; IfNotExists leaves a managed one alone.
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "whole"},
        "spec": {"secretStoreRefs": [{"name": "vault-v1"}], "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"remoteRef": {"remoteKey": "whole"}}}]}})).await?;
    wait_push(&pushes, "whole", "True", "Synced").await?;
    let whole = bao_opt(&format!("kv1-{n}/whole")).await?;
    assert_eq!(whole["data"]["trainer"], "ash");
    assert_eq!(whole["data"]["best-pokemon"], second);
    assert_eq!(
        whole["data"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "v1-unmanaged"},
        "spec": {"secretStoreRefs": [{"name": "vault-v1"}], "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"secretKey": "trainer", "remoteRef": {"remoteKey": "unmanaged", "property": "x"}}}]}})).await?;
    wait_push(&pushes, "v1-unmanaged", "False", "Errored").await?;
    assert_eq!(
        bao_opt(&format!("kv1-{n}/unmanaged")).await?["data"]["x"],
        "keep"
    );
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "if-not-exists"},
        "spec": {"updatePolicy": "IfNotExists", "secretStoreRefs": [{"name": "vault-backend"}],
            "selector": {"secret": {"name": "pokedex-credentials"}},
            "data": [{"match": {"secretKey": "trainer", "remoteRef": {"remoteKey": format!("{n}/teams"), "property": "best-pokemon"}}}]}})).await?;
    let ps = wait_push(&pushes, "if-not-exists", "True", "Synced").await?;
    ensure!(
        push_ready(&ps)
            .unwrap()
            .2
            .contains("Existing secrets in providers unchanged")
    );
    assert_eq!(
        bao_opt(&path).await?["data"]["data"]["best-pokemon"],
        second
    );

    // template: the pushed value is rendered from the source (same engine as ExternalSecrets).
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "templated"},
        "spec": {"secretStoreRefs": [{"name": "vault-backend"}], "selector": {"secret": {"name": "pokedex-credentials"}},
            "template": {"data": {"greeting": "trainer {{ .trainer | upper }}"}},
            "data": [{"match": {"secretKey": "greeting", "remoteRef": {"remoteKey": format!("{n}/greeting"), "property": "text"}}}]}})).await?;
    wait_push(&pushes, "templated", "True", "Synced").await?;
    assert_eq!(
        bao_opt(&format!("secret/data/{n}/greeting")).await?["data"]["data"]["text"],
        "trainer ASH"
    );

    // A field hush does not implement is named in Ready.
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "data-to"},
        "spec": {"secretStoreRefs": [{"name": "vault-backend"}], "selector": {"secret": {"name": "pokedex-credentials"}},
            "dataTo": [{"storeRef": {"name": "vault-backend"}}]}})).await?;
    let ps = wait_push(&pushes, "data-to", "False", "Errored").await?;
    ensure!(push_ready(&ps).unwrap().2.contains("spec.dataTo"));

    // deletionPolicy Delete: an entry dropped from data is removed from Vault …
    pushes
        .patch("pushsecret-example", &PatchParams::default(), &Patch::Merge(json!({"spec": {"data": [
            {"match": {"secretKey": "best-pokemon", "remoteRef": {"remoteKey": format!("{n}/teams"), "property": "best-pokemon"}}}
        ]}})))
        .await?;
    let trainer = format!("secret/data/{n}/trainer");
    eventually(
        "the dropped entry deleted",
        || async { Ok(json!(bao("GET", &trainer, None).await.is_err())) },
        |v| v == &json!(true),
    )
    .await?;
    // … and deleting the PushSecret removes the rest, then the finalizer.
    pushes
        .delete("pushsecret-example", &DeleteParams::default())
        .await?;
    eventually(
        "PushSecret gone",
        || async { Ok(json!(pushes.get_opt("pushsecret-example").await?.is_none())) },
        |v| v == &json!(true),
    )
    .await?;
    ensure!(
        bao("GET", &path, None).await.is_err(),
        "secret/{n}/teams still exists"
    );
    // The unmanaged secret's PushSecret had no Delete policy; nothing else was touched.
    assert_eq!(
        bao_opt(&format!("secret/data/{n}/unmanaged")).await?["data"]["data"]["best-pokemon"],
        "keep"
    );

    // No value in events, statuses or logs.
    let all = serde_json::to_string(&pushes.list(&Default::default()).await?.items)?;
    ensure!(
        !all.contains(&first) && !all.contains(&second),
        "a value in a PushSecret"
    );
    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), &n)
            .list(&Default::default())
            .await?
            .items,
    )?;
    ensure!(
        !events.contains(&first) && !events.contains(&second),
        "a value in an event"
    );
    ensure!(
        !logs_contain(&first) && !logs_contain(&second),
        "a value in the logs"
    );
    ctl.stop().await
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn push_secret_to_aws_secrets_manager_and_parameter_store() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "ps-aws").await?;
    let n = ns.name().to_owned();
    let pw = canary("push-aws");
    let pw2 = canary("push-aws-2");
    // Not written by a PushSecret: no managed-by tag.
    aws(
        "secretsmanager",
        "secretsmanager",
        "CreateSecret",
        json!({"Name": format!("{n}/foreign"), "SecretString": "keep"}),
    )
    .await?;

    let secrets: Api<Secret> = ns.api();
    secret_from_literals(
        &secrets,
        "awssm-secret",
        &[("access-key", "testing"), ("secret-access-key", "testing")],
    )
    .await?;
    secret_from_literals(&secrets, "source", &[("password", &pw)]).await?;
    let stores: Api<SecretStore> = ns.api();
    for (name, service) in [("aws-sm", "SecretsManager"), ("aws-ps", "ParameterStore")] {
        apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
            "spec": {"provider": {"aws": {"service": service, "region": "us-east-1",
                "secretsManager": {"forceDeleteWithoutRecovery": true},
                "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
                    "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}}}}}}})).await?;
    }
    let ctl = Controller::start(&client, &n).await?;
    let pushes: Api<PushSecret> = ns.api();
    // The AWS provider page's PushSecrets: Secrets Manager with secretPushFormat string, and
    // Parameter Store.
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "pushsecret-example"},
        "spec": {"deletionPolicy": "Delete", "refreshInterval": "2s",
            "secretStoreRefs": [{"name": "aws-sm", "kind": "SecretStore"}, {"name": "aws-ps", "kind": "SecretStore"}],
            "selector": {"secret": {"name": "source"}},
            "data": [
                {"match": {"secretKey": "password", "remoteRef": {"remoteKey": format!("{n}/pushed")}},
                 "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata",
                    "spec": {"secretPushFormat": "string", "tags": {"team": "kanto"}}}},
                {"match": {"secretKey": "password", "remoteRef": {"remoteKey": format!("{n}/json"), "property": "db.password"}}}
            ]}})).await?;
    // The string format and tags are Secrets Manager's; Parameter Store refuses them by name.
    let ps = wait_push(&pushes, "pushsecret-example", "False", "Errored").await?;
    ensure!(
        push_ready(&ps).unwrap().2.contains("secretPushFormat"),
        "{:?}",
        push_ready(&ps)
    );
    pushes
        .patch(
            "pushsecret-example",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
            "secretStoreRefs": [{"name": "aws-sm", "kind": "SecretStore"}]}})),
        )
        .await?;
    wait_push(&pushes, "pushsecret-example", "True", "Synced").await?;
    let got = aws(
        "secretsmanager",
        "secretsmanager",
        "GetSecretValue",
        json!({"SecretId": format!("{n}/pushed")}),
    )
    .await?;
    assert_eq!(got["SecretString"], pw);
    let d = aws(
        "secretsmanager",
        "secretsmanager",
        "DescribeSecret",
        json!({"SecretId": format!("{n}/pushed")}),
    )
    .await?;
    let tags = serde_json::to_string(&d["Tags"])?;
    ensure!(
        tags.contains(r#""Key":"managed-by","Value":"external-secrets""#),
        "{tags}"
    );
    ensure!(tags.contains(r#""Key":"team","Value":"kanto""#), "{tags}");
    let got = aws(
        "secretsmanager",
        "secretsmanager",
        "GetSecretValue",
        json!({"SecretId": format!("{n}/json")}),
    )
    .await?;
    let bin = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        got["SecretBinary"].as_str().unwrap(),
    )?;
    // sjson's path: `db.password` nests (as ESO).
    assert_eq!(serde_json::from_slice::<Value>(&bin)?["db"]["password"], pw);

    // Parameter Store with ESO's documented PushSecret (no metadata).
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "parameter"},
        "spec": {"deletionPolicy": "Delete", "refreshInterval": "2s",
            "secretStoreRefs": [{"name": "aws-ps", "kind": "SecretStore"}],
            "selector": {"secret": {"name": "source"}},
            "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": format!("/{n}/my-first-parameter")}}}]}})).await?;
    wait_push(&pushes, "parameter", "True", "Synced").await?;
    let p = aws(
        "ssm",
        "AmazonSSM",
        "GetParameter",
        json!({"Name": format!("/{n}/my-first-parameter"), "WithDecryption": true}),
    )
    .await?;
    assert_eq!(p["Parameter"]["Value"], pw);
    let t = aws(
        "ssm",
        "AmazonSSM",
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": format!("/{n}/my-first-parameter")}),
    )
    .await?;
    ensure!(
        serde_json::to_string(&t)?.contains("external-secrets"),
        "{t}"
    );

    // Follow a change, on both services.
    secrets
        .patch(
            "source",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": pw2}})),
        )
        .await?;
    let sm_name = format!("{n}/pushed");
    eventually(
        "Secrets Manager follows",
        || {
            aws(
                "secretsmanager",
                "secretsmanager",
                "GetSecretValue",
                json!({"SecretId": sm_name}),
            )
        },
        |v| v["SecretString"] == pw2,
    )
    .await?;
    let ps_name = format!("/{n}/my-first-parameter");
    eventually(
        "Parameter Store follows",
        || {
            aws(
                "ssm",
                "AmazonSSM",
                "GetParameter",
                json!({"Name": ps_name, "WithDecryption": true}),
            )
        },
        |v| v["Parameter"]["Value"] == pw2,
    )
    .await?;

    // A secret without the managed-by tag is refused and kept.
    apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "foreign"},
        "spec": {"secretStoreRefs": [{"name": "aws-sm"}], "selector": {"secret": {"name": "source"}},
            "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": format!("{n}/foreign")}}}]}})).await?;
    let ps = wait_push(&pushes, "foreign", "False", "Errored").await?;
    ensure!(
        push_ready(&ps)
            .unwrap()
            .2
            .contains("not managed by external-secrets")
    );
    let got = aws(
        "secretsmanager",
        "secretsmanager",
        "GetSecretValue",
        json!({"SecretId": format!("{n}/foreign")}),
    )
    .await?;
    assert_eq!(got["SecretString"], "keep");

    // Deletion removes what was pushed, on both services.
    pushes
        .delete("pushsecret-example", &DeleteParams::default())
        .await?;
    pushes.delete("parameter", &DeleteParams::default()).await?;
    eventually(
        "both PushSecrets gone",
        || async {
            Ok(json!(
                pushes.get_opt("pushsecret-example").await?.is_none()
                    && pushes.get_opt("parameter").await?.is_none()
            ))
        },
        |v| v == &json!(true),
    )
    .await?;
    ensure!(
        aws(
            "secretsmanager",
            "secretsmanager",
            "GetSecretValue",
            json!({"SecretId": format!("{n}/pushed")})
        )
        .await
        .is_err()
    );
    ensure!(
        aws(
            "ssm",
            "AmazonSSM",
            "GetParameter",
            json!({"Name": format!("/{n}/my-first-parameter")})
        )
        .await
        .is_err()
    );
    ensure!(
        aws(
            "secretsmanager",
            "secretsmanager",
            "GetSecretValue",
            json!({"SecretId": format!("{n}/foreign")})
        )
        .await
        .is_ok()
    );
    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), &n)
            .list(&Default::default())
            .await?
            .items,
    )?;
    ensure!(
        !events.contains(&pw) && !events.contains(&pw2),
        "a value in an event"
    );
    ensure!(
        !logs_contain(&pw) && !logs_contain(&pw2),
        "a value in the logs"
    );
    ctl.stop().await
}

/// PushSecrets reconciled at once that write different properties of one KV v2 secret: each
/// write is a check-and-set against the version its push read, so none undoes another (found by
/// the differential ClusterPushSecret case: two writers of one key made an extra version).
#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn concurrent_pushes_to_one_vault_key_keep_every_property() -> Result<()> {
    const WRITERS: usize = 8;
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "ps-cas").await?;
    let n = ns.name().to_owned();
    let secrets: Api<Secret> = ns.api();
    vault_token_secret(&secrets).await?;
    secret_from_literals(&secrets, "source", &[("value", "v")]).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(&stores, json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault-backend"},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}})).await?;
    let pushes: Api<PushSecret> = ns.api();
    for i in 0..WRITERS {
        apply(&pushes, json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": format!("writer-{i}")},
            "spec": {"refreshInterval": "1h", "secretStoreRefs": [{"name": "vault-backend"}],
                "selector": {"secret": {"name": "source"}},
                "data": [{"match": {"secretKey": "value",
                    "remoteRef": {"remoteKey": format!("{n}/shared"), "property": format!("p{i}")}}}]}}))
        .await?;
    }
    // Started after the PushSecrets exist, so they are reconciled at once.
    let ctl = Controller::start(&client, &n).await?;
    for i in 0..WRITERS {
        wait_push(&pushes, &format!("writer-{i}"), "True", "Synced").await?;
    }
    let data = bao_opt(&format!("secret/data/{n}/shared")).await?;
    let got: Vec<&String> = data["data"]["data"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    ensure!(
        got.len() == WRITERS,
        "properties in Vault: {got:?}, want p0..p{}",
        WRITERS - 1
    );
    ctl.stop().await
}
