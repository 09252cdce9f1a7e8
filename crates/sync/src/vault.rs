//! HashiCorp Vault and ESO's `openBao` provider: KV v1/v2 over the shared `hush-vault` client,
//! mapped as ESO maps it (`ESO:providers/v1/vault/client_get.go`, `docs/external-secrets.md`).
//!
//! One [`hush_vault::Session`] per built client: it logs in once and renews; nothing is revoked
//! per reconcile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use base64::Engine as _;
use hush_vault::{
    Auth, AuthMethod, Client, ClientOptions, KvVersion, Session, VaultError, VaultToken,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

mod push;

pub use crate::ServiceAccountSelector;

use crate::calls::Calls;
use crate::json::{go_float_text, go_marshal, property, scalar_text};
use crate::{
    Built, CaProvider, CaProviderPaths, CredentialSource, DocumentRef, FindQuery, ProviderError,
    ProviderFactory, RemoteRef, SecretBytes, SecretKeySelector, SecretProvider, StoreScope, decode,
    digest, key_ref, ref_namespace, refuse_unknown_fields,
};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tls {
    #[serde(default)]
    cert_secret_ref: Option<SecretKeySelector>,
    #[serde(default)]
    key_secret_ref: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppRole {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    role_id: Option<String>,
    #[serde(default)]
    role_ref: Option<SecretKeySelector>,
    secret_ref: SecretKeySelector,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserPass {
    #[serde(default)]
    path: Option<String>,
    username: String,
    secret_ref: SecretKeySelector,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kubernetes {
    #[serde(default)]
    mount_path: Option<String>,
    role: String,
    #[serde(default)]
    service_account_ref: Option<ServiceAccountSelector>,
    #[serde(default)]
    secret_ref: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubernetesSaToken {
    service_account_ref: ServiceAccountSelector,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    expiration_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Jwt {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    role: String,
    #[serde(default)]
    secret_ref: Option<SecretKeySelector>,
    #[serde(default)]
    kubernetes_service_account_token: Option<KubernetesSaToken>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cert {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    vault_role: Option<String>,
    #[serde(default)]
    client_cert: Option<SecretKeySelector>,
    #[serde(default)]
    secret_ref: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthSpec {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    token_secret_ref: Option<SecretKeySelector>,
    #[serde(default)]
    app_role: Option<AppRole>,
    #[serde(default)]
    user_pass: Option<UserPass>,
    #[serde(default)]
    ldap: Option<UserPass>,
    #[serde(default)]
    kubernetes: Option<Kubernetes>,
    #[serde(default)]
    jwt: Option<Jwt>,
    #[serde(default)]
    cert: Option<Cert>,
}

/// ESO's `VaultProvider` (also the shape of `openBao`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VaultSpec {
    server: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    ca_bundle: Option<String>,
    #[serde(default)]
    ca_provider: Option<CaProvider>,
    #[serde(default)]
    tls: Option<Tls>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    forward_inconsistent: bool,
    #[serde(default)]
    auth: Option<AuthSpec>,
}

/// Builds Vault (`vault`) and OpenBao (`openbao`) providers.
#[derive(Debug)]
pub struct Factory {
    name: &'static str,
    /// Live sessions by credential identity: every client built with the same server, auth
    /// and credentials (another store generation, a rebuild after the client TTL, a second
    /// store with the same credentials) shares one login and token.
    sessions: std::sync::Mutex<HashMap<String, Weak<Session>>>,
    calls: Calls,
}

impl Factory {
    /// The `vault` provider, counting its calls in `calls`.
    pub fn vault(calls: Calls) -> Self {
        Self::named("vault", calls)
    }

    /// ESO's `openBao` provider (same API), counting its calls in `calls`.
    pub fn openbao(calls: Calls) -> Self {
        Self::named("openbao", calls)
    }

    fn named(name: &'static str, calls: Calls) -> Self {
        Self {
            name,
            sessions: std::sync::Mutex::default(),
            calls,
        }
    }

    /// The live session of `identity`, or `make()`'s, registered for later builds.
    fn session(&self, identity: &str, make: impl FnOnce() -> Session) -> Arc<Session> {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(live) = sessions.get(identity).and_then(Weak::upgrade) {
            return live;
        }
        sessions.retain(|_, s| s.strong_count() > 0);
        let session = Arc::new(make());
        sessions.insert(identity.to_owned(), Arc::downgrade(&session));
        session
    }
}

fn text(bytes: &SecretBytes, what: &str) -> Result<Arc<SecretString>, ProviderError> {
    let s = std::str::from_utf8(bytes.expose())
        .map_err(|_| ProviderError::Invalid(format!("{what} is not UTF-8")))?;
    Ok(Arc::new(SecretString::from(s.trim().to_owned())))
}

/// Refuses, by name, every field of a `vault` / `openbao` spec hush does not implement (the
/// documented mTLS snippet's `tls.clientCert`, `auth.iam`, `auth.gcp`, …): a field is honoured or
/// refused, never ignored. `readYourWrites` is accepted (Vault Enterprise only; see
/// docs/compatibility.md), `checkAndSet` concerns PushSecret and is always honoured: every KV v2
/// push write is a check-and-set (vault/push.rs).
fn check_fields(provider: &str, spec: &Value) -> Result<(), ProviderError> {
    let p = format!("spec.provider.{provider}");
    let sel = ["name", "key", "namespace"];
    let sa = ["name", "namespace", "audiences"];
    refuse_unknown_fields(
        &p,
        spec,
        &[
            "server",
            "path",
            "version",
            "namespace",
            "caBundle",
            "caProvider",
            "tls",
            "headers",
            "forwardInconsistent",
            "readYourWrites",
            "checkAndSet",
            "auth",
        ],
    )?;
    refuse_unknown_fields(
        &format!("{p}.caProvider"),
        &spec["caProvider"],
        &["type", "name", "key", "namespace"],
    )?;
    let tls = &spec["tls"];
    refuse_unknown_fields(&format!("{p}.tls"), tls, &["certSecretRef", "keySecretRef"])?;
    for k in ["certSecretRef", "keySecretRef"] {
        refuse_unknown_fields(&format!("{p}.tls.{k}"), &tls[k], &sel)?;
    }
    let auth = &spec["auth"];
    let a = format!("{p}.auth");
    refuse_unknown_fields(
        &a,
        auth,
        &[
            "namespace",
            "tokenSecretRef",
            "appRole",
            "userPass",
            "ldap",
            "kubernetes",
            "jwt",
            "cert",
        ],
    )?;
    let methods: [(&str, &[&str], &[&str]); 7] = [
        ("tokenSecretRef", &sel, &[]),
        (
            "appRole",
            &["path", "roleId", "roleRef", "secretRef"],
            &["roleRef", "secretRef"],
        ),
        (
            "userPass",
            &["path", "username", "secretRef"],
            &["secretRef"],
        ),
        ("ldap", &["path", "username", "secretRef"], &["secretRef"]),
        (
            "kubernetes",
            &["mountPath", "role", "serviceAccountRef", "secretRef"],
            &["secretRef"],
        ),
        (
            "jwt",
            &["path", "role", "secretRef", "kubernetesServiceAccountToken"],
            &["secretRef"],
        ),
        (
            "cert",
            &["path", "vaultRole", "clientCert", "secretRef"],
            &["clientCert", "secretRef"],
        ),
    ];
    for (method, fields, selectors) in methods {
        let m = &auth[method];
        refuse_unknown_fields(&format!("{a}.{method}"), m, fields)?;
        for s in selectors {
            refuse_unknown_fields(&format!("{a}.{method}.{s}"), &m[*s], &sel)?;
        }
    }
    refuse_unknown_fields(
        &format!("{a}.kubernetes.serviceAccountRef"),
        &auth["kubernetes"]["serviceAccountRef"],
        &sa,
    )?;
    let token = &auth["jwt"]["kubernetesServiceAccountToken"];
    refuse_unknown_fields(
        &format!("{a}.jwt.kubernetesServiceAccountToken"),
        token,
        &["serviceAccountRef", "audiences", "expirationSeconds"],
    )?;
    refuse_unknown_fields(
        &format!("{a}.jwt.kubernetesServiceAccountToken.serviceAccountRef"),
        &token["serviceAccountRef"],
        &sa,
    )
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        let (provider, identity) = self.build_vault(spec, scope, creds).await?;
        Ok(Built {
            provider: Arc::new(provider),
            identity,
            referent: scope.kind == "ClusterSecretStore" && crate::auth_is_referent(spec),
        })
    }
}

impl Factory {
    /// A Vault client for `spec` (a store's `vault` / `openbao` member, or a
    /// VaultDynamicSecret's `provider`) and the identity of its credentials.
    pub(crate) async fn build_vault(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<(VaultProvider, String), ProviderError> {
        check_fields(self.name, spec)?;
        let s: VaultSpec = decode(self.name, spec)?;
        let kv = match s.version.as_deref().unwrap_or("v2") {
            "v2" | "" => KvVersion::V2,
            "v1" => KvVersion::V1,
            other => {
                return Err(ProviderError::Invalid(format!(
                    "unknown KV version {other:?} (v1 or v2)"
                )));
            }
        };
        let mut id_parts: Vec<Vec<u8>> = vec![
            self.name.as_bytes().to_vec(),
            s.server.as_bytes().to_vec(),
            s.namespace.clone().unwrap_or_default().into_bytes(),
        ];
        for (k, v) in &s.headers {
            id_parts.push(k.as_bytes().to_vec());
            id_parts.push(v.as_bytes().to_vec());
        }
        id_parts.push(vec![u8::from(s.forward_inconsistent)]);
        let mut options = ClientOptions {
            namespace: s.namespace.clone().filter(|n| !n.is_empty()),
            headers: s.headers.clone().into_iter().collect(),
            forward_inconsistent: s.forward_inconsistent,
            observer: self.calls.labelled(crate::calls::VAULT),
            ..ClientOptions::default()
        };
        if let Some(ca) = s.ca_bundle.as_deref().filter(|c| !c.is_empty()) {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(ca.trim())
                .map_err(|_| ProviderError::Invalid("caBundle is not base64".into()))?;
            id_parts.push(pem.clone());
            options.ca_pem = Some(pem);
        } else if let Some(cp) = &s.ca_provider {
            let paths = CaProviderPaths {
                namespace: "caProvider.namespace",
                kind: "caProvider type",
            };
            let pem = cp.pem(scope, creds, &paths).await?;
            id_parts.push(pem.clone());
            options.ca_pem = Some(pem);
        }
        if let Some(tls) = &s.tls
            && let (Some(c), Some(k)) = (&tls.cert_secret_ref, &tls.key_secret_ref)
        {
            let cert = creds
                .secret_key(&key_ref(c, Some("tls.crt"), scope)?)
                .await?;
            let key = creds
                .secret_key(&key_ref(k, Some("tls.key"), scope)?)
                .await?;
            let mut pem = Zeroizing::new(cert.expose().to_vec());
            pem.push(b'\n');
            pem.extend_from_slice(key.expose());
            id_parts.push(digest(&[&pem]).into_bytes());
            options.client_identity_pem = Some(pem);
        }
        let auth_spec = s.auth.clone().unwrap_or_default();
        let (method, secret_parts) = auth_method(&auth_spec, scope, creds, &mut options).await?;
        id_parts.push(format!("{method:?}").into_bytes());
        id_parts.push(auth_spec.namespace.clone().unwrap_or_default().into_bytes());
        for p in secret_parts.iter() {
            id_parts.push(p.to_vec());
        }
        let refs: Vec<&[u8]> = id_parts.iter().map(Vec::as_slice).collect();
        let identity = digest(&refs);
        let client = Client::new(&s.server, options).map_err(map_err)?;
        let session = self.session(&identity, || {
            Session::new(
                client,
                Auth {
                    method,
                    namespace: auth_spec.namespace.clone().filter(|n| !n.is_empty()),
                },
            )
        });
        let provider = VaultProvider {
            session,
            mount: s
                .path
                .as_deref()
                .map(|p| p.trim_matches('/').to_owned())
                .filter(|p| !p.is_empty()),
            kv,
            calls: self.calls.clone(),
        };
        Ok((provider, identity))
    }
}

/// A resolved auth method and the credential bytes that identify it (part of the cache key).
type ResolvedAuth = (AuthMethod, Vec<Zeroizing<Vec<u8>>>);

/// The auth method with resolved credentials, and the credential bytes for the identity: the
/// first method set, in ESO's order.
async fn auth_method(
    a: &AuthSpec,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    options: &mut ClientOptions,
) -> Result<ResolvedAuth, ProviderError> {
    if let Some(sel) = &a.token_secret_ref {
        return token_auth(sel, scope, creds).await;
    }
    if let Some(ar) = &a.app_role {
        return app_role_auth(ar, scope, creds).await;
    }
    if let Some(up) = &a.user_pass {
        return user_pass_auth(up, "userpass", scope, creds).await;
    }
    if let Some(up) = &a.ldap {
        return user_pass_auth(up, "ldap", scope, creds).await;
    }
    if let Some(k) = &a.kubernetes {
        return kubernetes_auth(k, scope, creds).await;
    }
    if let Some(j) = &a.jwt {
        return jwt_auth(j, scope, creds).await;
    }
    if let Some(c) = &a.cert {
        return cert_auth(c, scope, creds, options).await;
    }
    Err(ProviderError::Invalid(
        "vault store has no auth method".into(),
    ))
}

/// Credential bytes for the identity (zeroized when dropped).
fn secret_part(b: &SecretBytes) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(b.expose().to_vec())
}

/// `tokenSecretRef`: a token read from a Secret.
async fn token_auth(
    sel: &SecretKeySelector,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<ResolvedAuth, ProviderError> {
    let token = creds.secret_key(&key_ref(sel, None, scope)?).await?;
    let t = text(&token, "token")?;
    let token = VaultToken::new(secrecy::ExposeSecret::expose_secret(&*t));
    Ok((
        AuthMethod::Token(token),
        vec![secret_part(&SecretBytes::from(
            secrecy::ExposeSecret::expose_secret(&*t),
        ))],
    ))
}

/// `appRole`: role id inline or from a Secret, secret id from a Secret.
async fn app_role_auth(
    ar: &AppRole,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<ResolvedAuth, ProviderError> {
    let role_id = match (&ar.role_id, &ar.role_ref) {
        (Some(id), _) if !id.is_empty() => id.clone(),
        (_, Some(r)) => {
            let v = creds.secret_key(&key_ref(r, None, scope)?).await?;
            String::from_utf8(v.expose().to_vec())
                .map_err(|_| ProviderError::Invalid("roleRef value is not UTF-8".into()))?
                .trim()
                .to_owned()
        }
        _ => {
            return Err(ProviderError::Invalid(
                "appRole needs roleId or roleRef".into(),
            ));
        }
    };
    let sid = creds
        .secret_key(&key_ref(&ar.secret_ref, None, scope)?)
        .await?;
    Ok((
        AuthMethod::AppRole {
            mount: ar.path.clone(),
            role_id: role_id.clone(),
            secret_id: text(&sid, "secretId")?,
        },
        vec![Zeroizing::new(role_id.into_bytes()), secret_part(&sid)],
    ))
}

/// `userPass` and `ldap` (same login, mounted at `default_mount` unless `path` says).
async fn user_pass_auth(
    up: &UserPass,
    default_mount: &str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<ResolvedAuth, ProviderError> {
    let pw = creds
        .secret_key(&key_ref(&up.secret_ref, None, scope)?)
        .await?;
    Ok((
        AuthMethod::UserPass {
            mount: Some(up.path.clone().unwrap_or_else(|| default_mount.to_owned())),
            username: up.username.clone(),
            password: text(&pw, "password")?,
        },
        vec![
            Zeroizing::new(up.username.clone().into_bytes()),
            secret_part(&pw),
        ],
    ))
}

/// `kubernetes`: a TokenRequest token of `serviceAccountRef`, a token from a Secret, or (a
/// ClusterSecretStore only, unless the operator allows it) the controller's own token.
async fn kubernetes_auth(
    k: &Kubernetes,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<ResolvedAuth, ProviderError> {
    let jwt = if let Some(sa) = &k.service_account_ref {
        creds
            .service_account_token(
                ref_namespace(sa.namespace.as_deref(), scope)?.as_deref(),
                &sa.name,
                &sa.audiences,
                600,
            )
            .await?
    } else if let Some(sel) = &k.secret_ref {
        creds
            .secret_key(&key_ref(sel, Some("token"), scope)?)
            .await?
    } else {
        // Neither: ESO logs in with the controller's own token, which a SecretStore's
        // author would then send to a server of their choosing.
        scope.allow_controller_identity(
            "auth.kubernetes",
            "auth.kubernetes.serviceAccountRef or auth.kubernetes.secretRef",
        )?;
        creds.controller_token().await?
    };
    // The identity is the service account, not the short-lived token.
    let who = match &k.service_account_ref {
        Some(sa) => format!("sa:{}:{:?}", sa.name, sa.namespace),
        None => digest(&[jwt.expose()]),
    };
    Ok((
        AuthMethod::Kubernetes {
            mount: k.mount_path.clone(),
            role: k.role.clone(),
            jwt: text(&jwt, "service account token")?,
        },
        vec![Zeroizing::new(who.into_bytes())],
    ))
}

/// `jwt`: a token from a Secret, or a TokenRequest token (audiences default `vault`).
async fn jwt_auth(
    j: &Jwt,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<ResolvedAuth, ProviderError> {
    let (jwt, who) = if let Some(sel) = &j.secret_ref {
        let v = creds.secret_key(&key_ref(sel, None, scope)?).await?;
        let who = digest(&[v.expose()]);
        (v, who)
    } else if let Some(t) = &j.kubernetes_service_account_token {
        let mut aud = t.audiences.clone();
        aud.extend(t.service_account_ref.audiences.iter().cloned());
        if aud.is_empty() {
            aud.push("vault".into());
        }
        let v = creds
            .service_account_token(
                ref_namespace(t.service_account_ref.namespace.as_deref(), scope)?.as_deref(),
                &t.service_account_ref.name,
                &aud,
                t.expiration_seconds.unwrap_or(600),
            )
            .await?;
        (v, format!("sa:{}:{aud:?}", t.service_account_ref.name))
    } else {
        return Err(ProviderError::Invalid(
            "jwt auth needs secretRef or kubernetesServiceAccountToken".into(),
        ));
    };
    Ok((
        AuthMethod::Jwt {
            mount: j.path.clone(),
            role: j.role.clone(),
            jwt: text(&jwt, "jwt")?,
        },
        vec![Zeroizing::new(who.into_bytes())],
    ))
}

/// `cert`: a client certificate and key (the TLS identity of the client) and the role name.
async fn cert_auth(
    c: &Cert,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    options: &mut ClientOptions,
) -> Result<ResolvedAuth, ProviderError> {
    let (Some(cert), Some(key)) = (&c.client_cert, &c.secret_ref) else {
        return Err(ProviderError::Invalid(
            "cert auth needs clientCert and secretRef".into(),
        ));
    };
    let cert = creds
        .secret_key(&key_ref(cert, Some("tls.crt"), scope)?)
        .await?;
    let key = creds
        .secret_key(&key_ref(key, Some("tls.key"), scope)?)
        .await?;
    let mut pem = Zeroizing::new(cert.expose().to_vec());
    pem.push(b'\n');
    pem.extend_from_slice(key.expose());
    let who = digest(&[&pem]);
    options.client_identity_pem = Some(pem);
    Ok((
        AuthMethod::Cert {
            mount: c.path.clone(),
            name: c.vault_role.clone(),
        },
        vec![Zeroizing::new(who.into_bytes())],
    ))
}

/// Maps a Vault error onto the provider seam.
fn map_err(e: VaultError) -> ProviderError {
    match e.status() {
        Some(404) => ProviderError::NotFound(e.to_string()),
        Some(401 | 403) => ProviderError::Denied(e.to_string()),
        Some(429) => ProviderError::Throttled(e.to_string()),
        _ if e.is_transient() => ProviderError::Transient(e.to_string()),
        _ => ProviderError::Invalid(e.to_string()),
    }
}

/// A Vault KV provider (one session).
#[derive(Debug)]
pub struct VaultProvider {
    session: Arc<Session>,
    mount: Option<String>,
    kv: KvVersion,
    calls: Calls,
}

impl VaultProvider {
    /// ESO's `buildPath`: `<mount>/data/<key>` (v2) or `<mount>/<key>` (v1).
    fn data_path(&self, key: &str) -> String {
        build_path(self.mount.as_deref(), key, self.kv, "data")
    }

    /// Runs `f` with a token; on 403 with a token Vault no longer accepts, logs in again (once
    /// for all concurrent callers) and retries once. A 403 for a denied path is returned as is.
    async fn with_token<T, F, Fut>(&self, f: F) -> Result<T, ProviderError>
    where
        F: Fn(VaultToken) -> Fut,
        Fut: std::future::Future<Output = Result<T, VaultError>>,
    {
        let token = self.session.token().await.map_err(map_err)?;
        match f(token.clone()).await {
            Err(e) if e.status() == Some(403) => {
                if !self.session.token_rejected(&token).await {
                    return Err(map_err(e));
                }
                let token = self.session.token().await.map_err(map_err)?;
                f(token).await.map_err(map_err)
            }
            other => other.map_err(map_err),
        }
    }

    /// One call of `method` to `path` (`body` for writes), the JSON answer (`None`: empty, or
    /// 404 to a read or list, as Vault's Go client answers `nil`). VaultDynamicSecret's call.
    pub(crate) async fn call(
        &self,
        method: hush_vault::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ProviderError> {
        let answer = self
            .with_token(|t| async move {
                self.session
                    .client()
                    .request(method, path, Some(&t), body, None)
                    .await
            })
            .await;
        match answer {
            Err(ProviderError::NotFound(_))
                if matches!(method, hush_vault::Method::Get | hush_vault::Method::List) =>
            {
                Ok(None)
            }
            other => other,
        }
    }

    async fn read(&self, r: &RemoteRef) -> Result<Value, ProviderError> {
        if r.metadata {
            if self.kv == KvVersion::V1 {
                return Err(ProviderError::Invalid(
                    "metadataPolicy Fetch needs KV v2".into(),
                ));
            }
            let path = build_path(self.mount.as_deref(), &r.key, self.kv, "metadata");
            let meta = self
                .with_token(|t| {
                    let path = path.clone();
                    async move { self.session.client().kv_metadata(&t, &path).await }
                })
                .await?
                .ok_or_else(|| ProviderError::NotFound(format!("vault secret {}", r.key)))?;
            // ESO: custom_metadata plus a few fields.
            let mut out = meta["custom_metadata"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for f in ["created_time", "current_version", "delete_version_after"] {
                if !meta[f].is_null() {
                    out.insert(f.to_owned(), meta[f].clone());
                }
            }
            return Ok(Value::Object(out));
        }
        let path = self.data_path(&r.key);
        let version = r.version.clone();
        self.with_token(|t| {
            let path = path.clone();
            let version = version.clone();
            async move {
                self.session
                    .client()
                    .kv_read(&t, &path, Some(&version), self.kv)
                    .await
            }
        })
        .await?
        .ok_or_else(|| ProviderError::NotFound(format!("vault secret {}", r.key)))
    }

    /// All secret names under `<mount>/metadata/<path>` (recursive LIST).
    async fn list_all(&self, path: &str) -> Result<Vec<String>, ProviderError> {
        let mount = self.mount.clone().ok_or_else(|| {
            ProviderError::Invalid("find needs the store's path (KV mount)".into())
        })?;
        let mut out = Vec::new();
        let mut stack = vec![path.trim_matches('/').to_owned()];
        let mut folders = 0usize;
        while let Some(dir) = stack.pop() {
            folders += 1;
            if folders > 10_000 {
                return Err(ProviderError::Invalid("find: too many folders".into()));
            }
            let list_path = if dir.is_empty() {
                format!("{mount}/metadata/")
            } else {
                format!("{mount}/metadata/{dir}/")
            };
            let keys = self
                .with_token(|t| {
                    let p = list_path.clone();
                    async move { self.session.client().list(&t, &p).await }
                })
                .await?;
            for k in keys {
                let full = if dir.is_empty() {
                    k.clone()
                } else {
                    format!("{dir}/{k}")
                };
                if let Some(folder) = full.strip_suffix('/') {
                    stack.push(folder.to_owned());
                } else {
                    out.push(full);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// ESO's path mapping (see the table in `docs/external-secrets.md`).
pub fn build_path(mount: Option<&str>, key: &str, kv: KvVersion, infix: &str) -> String {
    let key = key.trim_start_matches('/');
    match (mount, kv) {
        (Some(m), KvVersion::V1) => {
            let rest = key.strip_prefix(&format!("{m}/")).unwrap_or(key);
            format!("{m}/{rest}")
        }
        (Some(m), KvVersion::V2) => {
            let rest = key.strip_prefix(&format!("{m}/")).unwrap_or(key);
            let rest = rest
                .strip_prefix("data/")
                .or_else(|| rest.strip_prefix("metadata/"))
                .unwrap_or(rest);
            format!("{m}/{infix}/{rest}")
        }
        (None, KvVersion::V1) => key.to_owned(),
        (None, KvVersion::V2) => {
            if key.contains("/data/") || key.contains(&format!("/{infix}/")) {
                return key.to_owned();
            }
            match key.split_once('/') {
                Some((m, rest)) => format!("{m}/{infix}/{rest}"),
                None => key.to_owned(),
            }
        }
    }
}

/// ESO's `extract` of a Vault secret: strings raw, numbers through float64, booleans,
/// objects/arrays as JSON, null as empty.
fn extract_map(data: &Value) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
    let obj = data
        .as_object()
        .ok_or_else(|| ProviderError::Invalid("secret value is not a JSON object".into()))?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => go_float_text(n),
                Value::Null => String::new(),
                other => go_marshal(other),
            };
            (k.clone(), SecretBytes::from(text.as_str()))
        })
        .collect())
}

#[async_trait]
impl SecretProvider for VaultProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let data = self.read(r).await?;
        if r.property.is_empty() {
            return Ok(SecretBytes::from(go_marshal(&data).as_str()));
        }
        let v = property(&data, &r.property).ok_or_else(|| {
            ProviderError::Invalid(format!(
                "property {:?} does not exist in vault secret {}",
                r.property, r.key
            ))
        })?;
        Ok(SecretBytes::from(scalar_text(v).as_str()))
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let data = self.read(r).await?;
        if r.property.is_empty() {
            return extract_map(&data);
        }
        let v = property(&data, &r.property).ok_or_else(|| {
            ProviderError::Invalid(format!(
                "property {:?} does not exist in vault secret {}",
                r.property, r.key
            ))
        })?;
        match v {
            Value::String(s) => {
                let parsed: Value = serde_json::from_str(s).map_err(|_| {
                    ProviderError::Invalid("property value is not a JSON object".into())
                })?;
                extract_map(&parsed)
            }
            other => extract_map(other),
        }
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        if self.kv == KvVersion::V1 {
            return Err(ProviderError::Invalid("find needs KV v2".into()));
        }
        let re = if q.name_regexp.is_empty() {
            None
        } else {
            Some(
                regex::Regex::new(&q.name_regexp)
                    .map_err(|e| ProviderError::Invalid(format!("find.name.regexp: {e}")))?,
            )
        };
        let names = self.list_all(&q.path).await?;
        let mut out = BTreeMap::new();
        for name in names {
            if let Some(re) = &re {
                if !re.is_match(&name) {
                    continue;
                }
            } else if !q.tags.is_empty() {
                // Tags are matched only without a name regexp (ESO ignores tags then).
                let meta = self
                    .read(&RemoteRef {
                        key: name.clone(),
                        metadata: true,
                        ..RemoteRef::default()
                    })
                    .await?;
                if !q
                    .tags
                    .iter()
                    .all(|(k, v)| meta[k].as_str() == Some(v.as_str()))
                {
                    continue;
                }
            }
            match self
                .read(&RemoteRef {
                    key: name.clone(),
                    ..RemoteRef::default()
                })
                .await
            {
                Ok(data) => {
                    out.insert(name, SecretBytes::from(go_marshal(&data).as_str()));
                }
                // Soft-deleted latest version: skipped, as ESO does.
                Err(ProviderError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// argocd-vault-plugin's read: the API path as given, the object's KV version override.
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        let kv = match r.kv_version {
            Some(1) => KvVersion::V1,
            Some(_) => KvVersion::V2,
            None => self.kv,
        };
        let answer = self
            .with_token(|t| async move {
                self.session
                    .client()
                    .kv_read(&t, &r.path, r.version.as_deref(), kv)
                    .await
            })
            .await;
        match answer {
            Ok(Some(Value::Object(m))) => Ok(Some(m)),
            Ok(None) | Err(ProviderError::NotFound(_)) => Ok(None),
            Ok(Some(_)) => Err(ProviderError::Invalid(format!(
                "vault read {}: the secret is not a map",
                r.path
            ))),
            Err(e) => Err(e),
        }
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        let token = self.session.token().await.map_err(map_err)?;
        self.session
            .client()
            .lookup_self(&token, None)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    // The write half lives in `push.rs` beside this file; a trait impl cannot be split across
    // files, so each pushing provider forwards to it the same way (deliberately alike).
    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities::ReadWrite
    }

    async fn push(&self, value: &SecretBytes, r: &crate::PushRef) -> Result<(), ProviderError> {
        self.push_value(value, r).await
    }

    async fn exists(&self, r: &crate::PushRef) -> Result<bool, ProviderError> {
        self.push_exists(r).await
    }

    async fn delete(&self, r: &crate::PushRef) -> Result<(), ProviderError> {
        self.push_delete(r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyRef;
    use serde_json::json;

    #[test]
    fn fields_hush_does_not_implement_are_refused_by_name() {
        let ok = serde_json::json!({"server": "http://x", "path": "secret", "readYourWrites": true,
            "auth": {"jwt": {"path": "jwt", "role": "r", "secretRef": {"name": "s", "key": "k"},
                "kubernetesServiceAccountToken": {"serviceAccountRef": {"name": "sa"},
                    "audiences": ["vault"], "expirationSeconds": 600}}}});
        check_fields("vault", &ok).unwrap();
        for (spec, field) in [
            (
                serde_json::json!({"server": "x", "tls": {"clientCert": {"name": "c", "key": "k"}}}),
                "spec.provider.vault.tls.clientCert",
            ),
            (
                serde_json::json!({"server": "x", "auth": {"iam": {"region": "eu"}}}),
                "spec.provider.vault.auth.iam",
            ),
            (
                serde_json::json!({"server": "x", "auth": {"cert": {"vaultRole": "r", "role": "r"}}}),
                "spec.provider.vault.auth.cert.role",
            ),
            (
                serde_json::json!({"server": "x", "retry": {}}),
                "spec.provider.vault.retry",
            ),
        ] {
            let e = check_fields("vault", &spec).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn paths_map_like_eso() {
        let v2 = KvVersion::V2;
        let v1 = KvVersion::V1;
        assert_eq!(
            build_path(Some("secret"), "app/db", v2, "data"),
            "secret/data/app/db"
        );
        assert_eq!(
            build_path(Some("secret"), "secret/app/db", v2, "data"),
            "secret/data/app/db"
        );
        assert_eq!(
            build_path(Some("secret"), "secret/data/app/db", v2, "data"),
            "secret/data/app/db"
        );
        assert_eq!(
            build_path(Some("secret"), "app/db", v1, "data"),
            "secret/app/db"
        );
        assert_eq!(
            build_path(None, "secret/app/db", v2, "data"),
            "secret/data/app/db"
        );
        assert_eq!(
            build_path(None, "secret/data/app/db", v2, "data"),
            "secret/data/app/db"
        );
        assert_eq!(
            build_path(None, "secret/app/db", v1, "data"),
            "secret/app/db"
        );
        assert_eq!(
            build_path(Some("kv"), "app", v2, "metadata"),
            "kv/metadata/app"
        );
    }

    #[test]
    fn extract_formats_like_eso() {
        let m = extract_map(
            &json!({"s": "x", "n": 1.5, "i": 3, "b": true, "o": {"z": 1, "a": "<"}, "nul": null}),
        )
        .unwrap();
        let get = |k: &str| String::from_utf8(m[k].expose().to_vec()).unwrap();
        assert_eq!(get("s"), "x");
        assert_eq!(get("n"), "1.5");
        assert_eq!(get("i"), "3");
        assert_eq!(get("b"), "true");
        assert_eq!(get("o"), r#"{"a":"\u003c","z":1}"#);
        assert_eq!(get("nul"), "");
        assert!(extract_map(&json!("s")).is_err());
    }

    #[test]
    fn one_session_per_credential_identity_while_it_is_used() {
        let f = Factory::vault(Calls::default());
        let make = || {
            Session::new(
                Client::new("http://127.0.0.1:8200", ClientOptions::default()).unwrap(),
                Auth {
                    method: AuthMethod::Token(VaultToken::new("t")),
                    namespace: None,
                },
            )
        };
        let a = f.session("id-1", make);
        let b = f.session("id-1", make);
        let c = f.session("id-2", make);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none());
        let d = f.session("id-1", make);
        assert!(!Arc::ptr_eq(&d, &c));
    }

    #[test]
    fn selectors_respect_store_scope() {
        let ss = StoreScope::new("SecretStore", "s", Some("a".into()));
        let css = StoreScope::new("ClusterSecretStore", "c", Some("es-ns".into()));
        assert_eq!(ref_namespace(None, &ss).unwrap().as_deref(), Some("a"));
        assert!(ref_namespace(Some("b"), &ss).is_err());
        assert_eq!(
            ref_namespace(Some("vault"), &css).unwrap().as_deref(),
            Some("vault")
        );
        assert_eq!(ref_namespace(None, &css).unwrap().as_deref(), Some("es-ns"));
    }

    /// Credentials of a test: counts how often the controller's own token is asked for.
    #[derive(Default)]
    struct Creds {
        own_token_reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl CredentialSource for Creds {
        async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError> {
            Ok(SecretBytes::from(format!("{}/{}", r.name, r.key).as_str()))
        }
        async fn config_map_key(&self, _r: &KeyRef) -> Result<String, ProviderError> {
            Ok(String::new())
        }
        async fn service_account_token(
            &self,
            _namespace: Option<&str>,
            name: &str,
            _audiences: &[String],
            _expiration_seconds: i64,
        ) -> Result<SecretBytes, ProviderError> {
            Ok(SecretBytes::from(name))
        }
        async fn controller_token(&self) -> Result<SecretBytes, ProviderError> {
            self.own_token_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(SecretBytes::from("the-controllers-own-token"))
        }
    }

    #[tokio::test]
    async fn only_cluster_stores_log_in_with_the_controllers_own_token() {
        let spec = json!({"server": "http://attacker.invalid:8200",
            "auth": {"kubernetes": {"role": "r"}}});
        let creds = Creds::default();
        let ss = StoreScope::new("SecretStore", "s", Some("team-a".into()));
        let err = Factory::vault(Calls::default())
            .build(&spec, &ss, &creds)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.starts_with("auth.kubernetes: a SecretStore may not")),
            "{err}"
        );
        assert_eq!(
            creds
                .own_token_reads
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        // A ClusterSecretStore (a cluster admin's) may, and so may a SecretStore when the
        // operator allows it.
        let css = StoreScope::new("ClusterSecretStore", "c", Some("team-a".into()));
        Factory::vault(Calls::default())
            .build(&spec, &css, &creds)
            .await
            .unwrap();
        let allowed = StoreScope {
            controller_identity: true,
            ..ss.clone()
        };
        Factory::vault(Calls::default())
            .build(&spec, &allowed, &creds)
            .await
            .unwrap();
        assert_eq!(
            creds
                .own_token_reads
                .load(std::sync::atomic::Ordering::SeqCst),
            2
        );
        // Named credentials are the store's own: no flag needed.
        let named = json!({"server": "http://v:8200",
            "auth": {"kubernetes": {"role": "r", "serviceAccountRef": {"name": "app"}}}});
        Factory::vault(Calls::default())
            .build(&named, &ss, &creds)
            .await
            .unwrap();
        assert_eq!(
            creds
                .own_token_reads
                .load(std::sync::atomic::Ordering::SeqCst),
            2
        );
    }

    #[tokio::test]
    async fn a_cluster_store_names_the_namespace_of_its_ca() {
        let spec = |ns: Option<&str>| {
            json!({"server": "https://v:8200", "caProvider": {"type": "Secret", "name": "ca",
                "key": "ca.crt", "namespace": ns}, "auth": {"tokenSecretRef": {"name": "t",
                "key": "token", "namespace": "vault"}}})
        };
        let creds = Creds::default();
        let css = StoreScope::new("ClusterSecretStore", "c", Some("team-a".into()));
        let err = Factory::vault(Calls::default())
            .build(&spec(None), &css, &creds)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("caProvider.namespace"), "{err}");
        // With a namespace the build goes past that check (the CA itself is not a PEM here).
        if let Err(e) = Factory::vault(Calls::default())
            .build(&spec(Some("vault")), &css, &creds)
            .await
        {
            assert!(!e.to_string().contains("caProvider.namespace"), "{e}");
        }
    }
}
