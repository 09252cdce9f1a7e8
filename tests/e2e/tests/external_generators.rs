//! Generators (`generators.external-secrets.io/v1alpha1`) referenced from ExternalSecrets'
//! `dataFrom[].sourceRef.generatorRef`, on the real kube-apiserver: ESO's documented `Password`
//! and `UUID` manifests, a `Fake`, and a `ClusterGenerator` wrapping a Password; values new on
//! each refresh; an unsupported kind named in `Ready`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod external_harness;

use std::time::Duration;

use anyhow::{Result, ensure};
use external_harness::*;
use hush_api::external_secrets::ExternalSecret;
use hush_api::generators::{ClusterGenerator, Fake, Password, UUID};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn password_uuid_fake_and_cluster_generator() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-gen").await?;
    let n = ns.name().to_owned();
    // ESO's documented generators (docs/api/generator/password.md, uuid.md, fake.md).
    apply(&ns.api::<Password>(), json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
        "metadata": {"name": "my-password"},
        "spec": {"length": 42, "digits": 5, "symbols": 5, "symbolCharacters": "-_$@", "noUpper": false, "allowRepeat": true}})).await?;
    apply(
        &ns.api::<UUID>(),
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "UUID",
        "metadata": {"name": "my-uuid"}, "spec": {}}),
    )
    .await?;
    apply(
        &ns.api::<Fake>(),
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Fake",
        "metadata": {"name": "my-fake"}, "spec": {"data": {"foo": "bar", "baz": "bang"}}}),
    )
    .await?;
    let cg_name = format!("pw-{n}");
    apply(&Api::<ClusterGenerator>::all(client.clone()), json!({"apiVersion": "generators.external-secrets.io/v1alpha1",
        "kind": "ClusterGenerator", "metadata": {"name": cg_name},
        "spec": {"kind": "Password", "generator": {"passwordSpec": {"length": 16, "digits": 4, "symbols": 0, "noUpper": true}}}})).await?;
    let ctl = Controller::start(&client, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    let generated = |name: &str, kind: &str, gen_name: &str, interval: &str| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"refreshInterval": interval, "target": {"name": name},
            "dataFrom": [{"sourceRef": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": kind, "name": gen_name}}}]}})
    };
    apply(&es, generated("pw", "Password", "my-password", "1s")).await?;
    apply(&es, generated("id", "UUID", "my-uuid", "0")).await?;
    apply(&es, generated("fk", "Fake", "my-fake", "1h")).await?;
    apply(&es, generated("cg", "ClusterGenerator", &cg_name, "1h")).await?;
    apply(&es, generated("bad", "SSHKey", "nope", "1h")).await?;
    for name in ["pw", "id", "fk", "cg"] {
        wait_ready(&es, name, "True", "SecretSynced").await?;
    }
    let secrets: Api<Secret> = ns.api();
    let pw = value(&secrets.get("pw").await?, "password");
    ensure!(pw.len() == 42, "{}", pw.len());
    ensure!(pw.chars().filter(char::is_ascii_digit).count() == 5);
    ensure!(pw.chars().filter(|c| "-_$@".contains(*c)).count() == 5);
    let id = value(&secrets.get("id").await?, "uuid");
    ensure!(id.len() == 36 && &id[14..15] == "4", "{id}");
    let fk = secrets.get("fk").await?;
    ensure!(value(&fk, "foo") == "bar" && value(&fk, "baz") == "bang");
    let cg = value(&secrets.get("cg").await?, "password");
    ensure!(
        cg.len() == 16 && !cg.chars().any(|c| c.is_ascii_uppercase()),
        "{cg}"
    );
    // Regenerated on each refresh (1 s); once with refreshInterval 0.
    let deadline = tokio::time::Instant::now() + WAIT;
    while value(&secrets.get("pw").await?, "password") == pw {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "password not regenerated"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(
        value(&secrets.get("id").await?, "uuid") == id,
        "refreshInterval 0 regenerated"
    );
    wait_ready(&es, "bad", "False", "SecretSyncedError").await?;
    // The fixed Ready message is ESO's; the UpdateFailed event names the kind.
    wait_events(&client, &n, &["SSHKey"]).await?;
    ensure!(!logs_contain(&pw), "a password in the logs");
    ctl.stop().await
}
