//! `hush render` as argocd-vault-plugin with `AVP_TYPE=kubernetessecret` against the real
//! kube-apiserver (`scripts/kube-testenv.sh`): the plugin reads Secrets as its own
//! ServiceAccount (client-go's in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`PORT`, the
//! pod's token and CA, here from `HUSH_KUBE_TOKEN_FILE`/`HUSH_KUBE_CA_FILE`), through the
//! hush-sync `kubernetes` provider the ExternalSecret controller uses. Paths are AVP's:
//! `NAME` (namespace `argocd`) or `NAMESPACE:NAME`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, Result};
use hush_testkit::TestNamespace;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

fn hush() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hush"))
}

async fn create<K>(api: &Api<K>, doc: Value) -> Result<()>
where
    K: kube::Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(doc)?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).context(format!("creating {}", obj.name_any())),
    }
}

/// A Secret `name` in `ns` with `data` (string values).
async fn secret(client: &Client, ns: &str, name: &str, data: &[(&str, &str)]) -> Result<()> {
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    create(
        &api,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name}, "stringData": data}),
    )
    .await
}

/// Lets ServiceAccount `sa` of `sa_ns` get Secrets in `ns` (and nothing else).
async fn grant(client: &Client, ns: &str, sa_ns: &str, sa: &str) -> Result<()> {
    // Named after the ServiceAccount's namespace: `argocd` outlives a run.
    let name = format!("{sa}-read-{sa_ns}");
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    create(
        &roles,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": name},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
    )
    .await?;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    create(
        &bindings,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}]}),
    )
    .await
}

struct Plugin {
    host: String,
    port: u16,
    token_file: PathBuf,
    ca_file: PathBuf,
}

impl Plugin {
    fn render(&self, app: &Path, manifest: &str) -> Output {
        std::fs::write(app.join("secret.yaml"), manifest).unwrap();
        let mut c = Command::new(hush());
        c.args(["render", "."]).current_dir(app);
        for v in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "VAULT_ADDR",
            "VAULT_TOKEN",
        ] {
            c.env_remove(v);
        }
        c.env("HOME", app)
            .env("AVP_TYPE", "kubernetessecret")
            .env("KUBERNETES_SERVICE_HOST", &self.host)
            .env("KUBERNETES_SERVICE_PORT", self.port.to_string())
            .env("HUSH_KUBE_TOKEN_FILE", &self.token_file)
            .env("HUSH_KUBE_CA_FILE", &self.ca_file)
            .output()
            .unwrap()
    }
}

#[tokio::test]
#[ignore = "needs a kube-apiserver (scripts/kube-testenv.sh: KUBECONFIG, KTE_DIR)"]
async fn placeholders_from_kubernetes_secrets_as_the_plugins_service_account() -> Result<()> {
    let client = hush_testkit::client().await?;
    let kte = PathBuf::from(std::env::var("KTE_DIR").context("KTE_DIR is not set")?);
    let id = std::process::id();
    // The plugin's ServiceAccount, in a namespace of its own.
    let home = TestNamespace::create(&client, "avp-plugin").await?;
    let sa = "avp";
    create(
        &home.api::<ServiceAccount>(),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}),
    )
    .await?;
    // AVP's default namespace `argocd`, a namespace the plugin may read, one it may not.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}),
    )
    .await?;
    let prod = TestNamespace::create(&client, "avp-prod").await?;
    let other = TestNamespace::create(&client, "avp-other").await?;
    for ns in ["argocd", prod.name()] {
        grant(&client, ns, home.name(), sa).await?;
    }
    let default_name = format!("avp-default-{id}");
    secret(
        &client,
        "argocd",
        &default_name,
        &[("token", "canary-k8s-argocd")],
    )
    .await?;
    secret(
        &client,
        prod.name(),
        "db",
        &[
            ("user", "shop"),
            ("password", "canary-k8s-prod"),
            ("config", r#"{"port":5432}"#),
        ],
    )
    .await?;
    secret(
        &client,
        other.name(),
        "db",
        &[("password", "canary-k8s-other")],
    )
    .await?;

    // `kubectl create token avp`: the token a pod of that ServiceAccount has mounted.
    let token = home
        .api::<ServiceAccount>()
        .create_token_request(sa, &PostParams::default(), &TokenRequest::default())
        .await?
        .status
        .context("no TokenRequest status")?
        .token;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token.context("no token")?)?;
    let app = dir.path().join("app");
    std::fs::create_dir(&app)?;
    let server = kube::Config::infer().await?.cluster_url;
    let plugin = Plugin {
        host: server.host().context("no API server host")?.to_owned(),
        port: server.port_u16().unwrap_or(443),
        token_file,
        ca_file: kte.join("pki/ca.crt"),
    };

    // The path annotation names `NAMESPACE:NAME`; inline paths name either form.
    let p = prod.name();
    let out = plugin.render(
        &app,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  annotations:\n    \
             avp.kubernetes.io/path: \"{p}:db\"\nstringData:\n  user: <user>\n  \
             password: <password>\n  port: <config | jsonPath {{.port}}>\n  \
             again: <path:{p}:db#password>\n  default: <path:{default_name}#token>\n"
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for want in [
        "user: shop",
        "password: canary-k8s-prod",
        "port: \"5432\"",
        "again: canary-k8s-prod",
        "default: canary-k8s-argocd",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    assert!(!stderr.contains("canary"), "{stderr}");

    // A namespace the ServiceAccount has no Role in: refused by the API server, named.
    let o = other.name();
    let out = plugin.render(
        &app,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  \
             p: <path:{o}:db#password>\n"
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(
        stderr.contains(&format!("{o}:db")) && stderr.contains("403"),
        "{stderr}"
    );
    assert!(!stderr.contains("canary"), "{stderr}");

    // A Secret that does not exist is a missing value naming the placeholder.
    let out = plugin.render(
        &app,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  \
             p: <path:{p}:absent#password>\n"
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("<path:{p}:absent#password>")),
        "{stderr}"
    );

    // Secrets have no versions: one asked for is refused, not ignored as AVP does.
    let out = plugin.render(
        &app,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  \
             p: <path:{p}:db#password#2>\n"
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no versions"), "{stderr}");

    let argocd = |kind: &str| format!("deleting the {kind} in argocd");
    Api::<Secret>::namespaced(client.clone(), "argocd")
        .delete(&default_name, &Default::default())
        .await
        .with_context(|| argocd("Secret"))?;
    let grant = format!("{sa}-read-{}", home.name());
    Api::<RoleBinding>::namespaced(client.clone(), "argocd")
        .delete(&grant, &Default::default())
        .await
        .with_context(|| argocd("RoleBinding"))?;
    Api::<Role>::namespaced(client.clone(), "argocd")
        .delete(&grant, &Default::default())
        .await
        .with_context(|| argocd("Role"))?;
    for ns in [home, prod, other] {
        ns.delete().await?;
    }
    Ok(())
}
