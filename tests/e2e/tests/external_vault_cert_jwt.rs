//! Vault auth methods `jwt` with a locally signed token and `cert` over OpenBao's TLS listener,
//! end to end on the real kube-apiserver and OpenBao:
//!
//! - `jwt`: ESO v0.16.2's docs/snippets/vault-jwt-store.yaml applied unchanged but for names
//!   (namespace, `server`, `path`, `role`; `apiVersion: external-secrets.io/v1`): the token comes
//!   from the Secret `my-secret` (`secretRef` wins over `kubernetesServiceAccountToken`, as in
//!   ESO), an RS256 JWT signed here with a fresh key whose public half is OpenBao's
//!   `jwt_validation_pubkeys`; a token signed by another key is refused.
//! - `cert`: `auth.cert` (`clientCert`, `secretRef`, `vaultRole`; ESO documents no snippet for
//!   it) against the TLS listener of scripts/services/openbao.sh (`HUSH_VAULT_TLS_ADDR`), its CA
//!   as `caBundle`, the client certificate in a `kubernetes.io/tls` Secret; a certificate the
//!   role does not trust is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;

use anyhow::{Context as _, Result, ensure};
use base64::Engine as _;
use eso_peer::eso_snippet;
use external_harness::*;
use hush_api::external_secrets::{ExternalSecret, SecretStore};
use hush_testkit::TestNamespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rcgen::{KeyPair, PKCS_RSA_SHA256, PublicKeyData as _, SigningKey as _};
use serde_json::{Value, json};

const V1: &str = "external-secrets.io/v1";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An RS256 JWT of `claims` signed with `key`.
fn sign_jwt(key: &KeyPair, claims: &Value) -> Result<String> {
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let input = format!("{header}.{body}");
    let sig = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", b64url(&sig)))
}

fn tls_file(name: &str) -> Result<String> {
    let path = std::path::Path::new(&env("HUSH_VAULT_TLS_DIR")).join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh and scripts/services/openbao.sh"]
async fn jwt_with_a_local_key_and_cert_over_tls() -> Result<()> {
    let client = setup().await?;
    let ns = TestNamespace::create(&client, "es-vault-cj").await?;
    let n = ns.name().to_owned();
    let password = canary("jwt-cert");
    bao(
        "POST",
        &format!("secret/data/{n}/app"),
        Some(json!({"data": {"password": password}})),
    )
    .await?;
    bao("POST", &format!("sys/policies/acl/{n}"), Some(json!({"policy": format!("path \"secret/data/{n}/*\" {{ capabilities = [\"read\"] }}")}))).await?;

    // jwt: OpenBao trusts the public half of a key made here.
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256)?;
    let other = KeyPair::generate_for(&PKCS_RSA_SHA256)?;
    bao(
        "POST",
        &format!("sys/auth/jwt-{n}"),
        Some(json!({"type": "jwt"})),
    )
    .await?;
    let pubkey = pem_public_key(&key)?;
    bao(
        "POST",
        &format!("auth/jwt-{n}/config"),
        Some(json!({"jwt_validation_pubkeys": [pubkey]})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/jwt-{n}/role/vault-jwt-role"),
        Some(
            json!({"role_type": "jwt", "bound_audiences": ["vault"], "user_claim": "sub",
            "token_policies": [n], "token_ttl": "1h"}),
        ),
    )
    .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims =
        json!({"sub": "hush-e2e", "aud": "vault", "iat": now, "nbf": now, "exp": now + 3600});
    let secrets: Api<Secret> = ns.api();
    secret_from_literals(
        &secrets,
        "my-secret",
        &[("jwt-token", &sign_jwt(&key, &claims)?)],
    )
    .await?;
    secret_from_literals(
        &secrets,
        "forged",
        &[("jwt-token", &sign_jwt(&other, &claims)?)],
    )
    .await?;

    // cert: a role trusting the CA of the client certificate the service made.
    bao(
        "POST",
        &format!("sys/auth/cert-{n}"),
        Some(json!({"type": "cert"})),
    )
    .await?;
    bao(
        "POST",
        &format!("auth/cert-{n}/certs/web"),
        Some(json!({"certificate": tls_file("client-ca.crt")?, "token_policies": [n], "token_ttl": "1h"})),
    )
    .await?;
    let tls_secret = |name: &str, cert: String, key: String| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": cert, "tls.key": key}})
    };
    apply(
        &secrets,
        tls_secret(
            "vault-client",
            tls_file("client.crt")?,
            tls_file("client.key")?,
        ),
    )
    .await?;
    // A certificate OpenBao does not trust for the role: its own server certificate.
    apply(
        &secrets,
        tls_secret(
            "untrusted",
            tls_file("server.crt")?,
            tls_file("server.key")?,
        ),
    )
    .await?;

    let stores: Api<SecretStore> = ns.api();
    let mut jwt_store = eso_snippet("vault-jwt-store.yaml")?;
    jwt_store["apiVersion"] = json!(V1);
    jwt_store["metadata"]["namespace"] = json!(n);
    let vault = &mut jwt_store["spec"]["provider"]["vault"];
    vault["server"] = json!(env("HUSH_VAULT_ADDR"));
    vault["auth"]["jwt"]["path"] = json!(format!("jwt-{n}"));
    let mut forged_store = jwt_store.clone();
    forged_store["metadata"]["name"] = json!("forged");
    forged_store["spec"]["provider"]["vault"]["auth"]["jwt"]["secretRef"]["name"] = json!("forged");
    apply(&stores, jwt_store).await?;
    apply(&stores, forged_store).await?;
    let cert_store = |name: &str, secret: &str| {
        json!({"apiVersion": V1, "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_TLS_ADDR"), "path": "secret", "version": "v2",
            "caBundle": base64::engine::general_purpose::STANDARD.encode(tls_file("ca.crt").unwrap()),
            "auth": {"cert": {"path": format!("cert-{n}"), "vaultRole": "web",
                "clientCert": {"name": secret, "key": "tls.crt"},
                "secretRef": {"name": secret, "key": "tls.key"}}}}}}})
    };
    apply(&stores, cert_store("vault-cert", "vault-client")).await?;
    apply(&stores, cert_store("vault-cert-untrusted", "untrusted")).await?;

    let ctl = Controller::start_with_class(&client, &n, &n).await?;
    let es: Api<ExternalSecret> = ns.api();
    let external = |name: &str, store: &str| {
        json!({"apiVersion": V1, "kind": "ExternalSecret", "metadata": {"name": name},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": store, "kind": "SecretStore"},
            "data": [{"secretKey": "password", "remoteRef": {"key": format!("{n}/app"), "property": "password"}}]}})
    };
    for (name, store) in [
        ("by-jwt", "vault-backend"),
        ("by-forged-jwt", "forged"),
        ("by-cert", "vault-cert"),
        ("by-untrusted-cert", "vault-cert-untrusted"),
    ] {
        apply(&es, external(name, store)).await?;
    }
    let result = async {
        for name in ["by-jwt", "by-cert"] {
            wait_ready(&es, name, "True", "SecretSynced").await?;
            ensure!(
                value(&secrets.get(name).await?, "password") == password,
                "{name}"
            );
        }
        for name in ["vault-backend", "vault-cert"] {
            let (status, reason, message) = store_ready(&stores, name).await?;
            ensure!(
                status == "True",
                "store {name}: {status}/{reason}: {message}"
            );
        }
        for name in ["by-forged-jwt", "by-untrusted-cert"] {
            wait_ready(&es, name, "False", "SecretSyncedError").await?;
        }
        for name in ["forged", "vault-cert-untrusted"] {
            let (status, reason, message) = store_ready(&stores, name).await?;
            ensure!(
                status == "False",
                "store {name}: {status}/{reason}: {message}"
            );
        }
        assert_no_canary(&client, &ns, &es, &password).await
    }
    .await;
    ctl.stop().await?;
    result
}

/// The SPKI PEM of `key`'s public half (what `jwt_validation_pubkeys` takes).
fn pem_public_key(key: &KeyPair) -> Result<String> {
    let der = key.subject_public_key_info();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    Ok(format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    ))
}
