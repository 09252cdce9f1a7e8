//! Azure Key Vault secrets over the shared `hush-azure` client, mapped as ESO maps them
//! (`ESO:providers/v1/azure/keyvault`, `docs/external-secrets.md`).
//!
//! - `vaultUrl`, `tenantId`, `environmentType`, `authType: ServicePrincipal` (the default) with
//!   `authSecretRef.clientId` and `authSecretRef.clientSecret` or
//!   `authSecretRef.clientCertificate` (PEM certificate and RSA key). The token is fetched once
//!   per built client and refreshed before it expires.
//! - `remoteRef.key`: `secret/NAME` or `NAME`; `version` (empty = current); `property` and
//!   `extract` as ESO (JSON values).
//! - `find.name.regexp` and `find.tags` (exact) over the vault's enabled secrets, one read each.
//! - `authType: ManagedIdentity` (`identityId`: a client id or ARM resource id) through the
//!   instance metadata service, for stores that may use the controller's own identity.
//! - `remoteRef.key` `key/NAME` (the JSON Web Key as ESO marshals it) and `cert/NAME` (the
//!   certificate's DER).
//! - `remoteRef.metadataPolicy: Fetch`: the object's tags as ESO returns them.
//! - `authType: WorkloadIdentity`: with `serviceAccountRef`, a TokenRequest token of that
//!   ServiceAccount (audience `api://AzureADTokenExchange` and `serviceAccountRef.audiences`)
//!   exchanged at Entra ID as a client assertion, for the client id of the account's
//!   `azure.workload.identity/client-id` annotation or `authSecretRef.clientId`, and the tenant
//!   of its `azure.workload.identity/tenant-id` annotation, `authSecretRef.tenantId` or
//!   `tenantId` (then `AZURE_TENANT_ID`); a new ServiceAccount token at every exchange, one
//!   exchange per access-token lifetime. Without `serviceAccountRef`, the controller's own
//!   workload identity (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`), for
//!   stores that may use the controller's identity.
//! - Refused, naming the field: `find.path`, and fields of another `authType`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hush_azure::{
    AzureError, CallObserver, Cloud, CloudError as _, Credential, ManagedIdentity, Secret,
    TOKEN_EXCHANGE_AUDIENCE, TokenSource, VaultClient,
};
use serde_json::Value;

use crate::calls::Calls;
use crate::cloud::map_err;
use crate::json::extract_raw;
use crate::{
    Built, CredentialSource, DocumentRef, FindQuery, KeyRef, ProviderError, ProviderFactory,
    RemoteRef, SecretBytes, SecretKeySelector, SecretProvider, ServiceAccountSelector, StoreScope,
    decode, digest, ref_namespace, refuse_unknown_fields,
};

/// The ServiceAccount annotations of Azure workload identity (ESO reads the same).
const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";

/// Builds `azurekv` providers.
#[derive(Debug, Default)]
pub struct Factory {
    /// Where its clients count their API calls.
    pub calls: Calls,
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "azurekv"
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        let (vault_url, auth_type) = check_fields(spec)?;
        let calls = &self.calls;
        match auth_type {
            "ServicePrincipal" => service_principal(calls, spec, vault_url, scope, creds).await,
            "ManagedIdentity" => managed_identity(calls, spec, vault_url, scope),
            "WorkloadIdentity" => workload_identity(calls, spec, vault_url, scope, creds).await,
            other => Err(ProviderError::Invalid(format!(
                "azurekv.authType {other:?} is not supported by hush (ServicePrincipal, \
                 ManagedIdentity, WorkloadIdentity)"
            ))),
        }
    }
}

/// Refuses fields hush does not implement and fields of another `authType`, by name; returns
/// `vaultUrl` and the `authType`.
fn check_fields(spec: &Value) -> Result<(&str, &str), ProviderError> {
    refuse_unknown_fields(
        "azurekv",
        spec,
        &[
            "vaultUrl",
            "tenantId",
            "authType",
            "authSecretRef",
            "environmentType",
            "identityId",
            "serviceAccountRef",
        ],
    )?;
    let vault_url = spec["vaultUrl"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ProviderError::Invalid("azurekv.vaultUrl is required".into()))?;
    refuse_unknown_fields(
        "azurekv.authSecretRef",
        &spec["authSecretRef"],
        &["clientId", "tenantId", "clientSecret", "clientCertificate"],
    )?;
    let auth_type = spec["authType"].as_str().unwrap_or("ServicePrincipal");
    let only_with = |field: &str, auth: &str| {
        if spec[field].is_null() {
            Ok(())
        } else {
            Err(ProviderError::Invalid(format!(
                "azurekv.{field} goes with authType {auth}, not {auth_type}"
            )))
        }
    };
    if auth_type != "ManagedIdentity" {
        only_with("identityId", "ManagedIdentity")?;
    }
    if auth_type != "WorkloadIdentity" {
        only_with("serviceAccountRef", "WorkloadIdentity")?;
    }
    Ok((vault_url, auth_type))
}

/// `authType: ServicePrincipal` (the default): `tenantId` and the application of
/// `authSecretRef` (`clientId` with `clientSecret` or `clientCertificate`).
async fn service_principal(
    calls: &Calls,
    spec: &Value,
    vault_url: &str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<Built, ProviderError> {
    let tenant = spec["tenantId"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ProviderError::Invalid("azurekv.tenantId is required for ServicePrincipal".into())
        })?;
    let auth = &spec["authSecretRef"];
    if !auth["tenantId"].is_null() {
        return Err(ProviderError::Invalid(
            "azurekv.authSecretRef.tenantId goes with authType WorkloadIdentity; \
             ServicePrincipal takes tenantId"
                .into(),
        ));
    }
    if auth["clientId"].is_null() {
        return Err(ProviderError::Invalid(
            "azurekv.authSecretRef.clientId is required for ServicePrincipal".into(),
        ));
    }
    let client_id = auth_text(auth, "clientId", scope, creds).await?;
    let (proof, secret) = client_proof(auth, scope, creds).await?;
    let cloud =
        Cloud::from_env(spec["environmentType"].as_str().unwrap_or_default()).map_err(map_err)?;
    let credential = Credential {
        tenant_id: tenant.to_owned(),
        client_id,
        secret,
    };
    let referent = scope.kind == "ClusterSecretStore" && crate::auth_is_referent(spec);
    let vault = Vault {
        calls,
        cloud: &cloud,
        url: vault_url,
    };
    vault.application(credential, (b"azurekv", proof.expose()), referent)
}

/// What proves a service principal's application: `authSecretRef.clientSecret` or
/// `clientCertificate` (exactly one), as the bytes that identify it and as a token secret.
async fn client_proof(
    auth: &Value,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<(SecretBytes, Secret), ProviderError> {
    match (
        auth["clientSecret"].is_null(),
        auth["clientCertificate"].is_null(),
    ) {
        (false, true) => {
            let s = auth_value(auth, "clientSecret", scope, creds).await?;
            let text = std::str::from_utf8(s.expose())
                .map_err(|_| ProviderError::Invalid("azurekv client secret is not UTF-8".into()))?;
            let secret = Secret::client_secret(text);
            Ok((s, secret))
        }
        (true, false) => {
            let pem = auth_value(auth, "clientCertificate", scope, creds).await?;
            let secret = Secret::certificate(pem.expose()).map_err(map_err)?;
            Ok((pem, secret))
        }
        _ => Err(ProviderError::Invalid(
            "azurekv.authSecretRef: set exactly one of clientSecret and clientCertificate".into(),
        )),
    }
}

/// The vault a store reads, in its cloud; its clients count their calls in `calls`.
struct Vault<'a> {
    calls: &'a Calls,
    cloud: &'a Cloud,
    url: &'a str,
}

impl Vault<'_> {
    /// A client over the cloud's HTTP client, with the token source `tokens` makes over the
    /// same client.
    fn client(
        &self,
        tokens: impl FnOnce(reqwest::Client, Option<CallObserver>) -> Result<TokenSource, AzureError>,
    ) -> Result<VaultClient, ProviderError> {
        let http = self.cloud.http_client().map_err(map_err)?;
        let observer = self.calls.labelled(crate::calls::AZURE_KEY_VAULT);
        let tokens = tokens(http.clone(), observer.clone()).map_err(map_err)?;
        VaultClient::new(http, self.url, self.cloud, Arc::new(tokens), observer).map_err(map_err)
    }

    /// A provider with the tokens Entra ID grants the application of `credential`. Its
    /// identity digests `kind` (which auth), the vault, the authority, the tenant, the client
    /// and `proof` (what identifies the credential's secret).
    fn application(
        &self,
        credential: Credential,
        (kind, proof): (&[u8], &[u8]),
        referent: bool,
    ) -> Result<Built, ProviderError> {
        let tenant = credential.tenant_id.clone();
        let client_id = credential.client_id.clone();
        let authority = &self.cloud.authority_host;
        let client = self.client(|http, observer| {
            TokenSource::new(
                http,
                credential,
                authority,
                &self.cloud.vault_scope(),
                observer,
            )
        })?;
        let identity = digest(&[
            kind,
            client.vault_url().as_bytes(),
            authority.as_bytes(),
            tenant.as_bytes(),
            client_id.as_bytes(),
            proof,
        ]);
        Ok(Built {
            provider: Arc::new(AzureProvider { client }),
            identity,
            referent,
        })
    }
}

/// `authType: ManagedIdentity`: the controller's own identity through the instance metadata
/// service (`identityId` picks a user-assigned one by client id or ARM resource id), so only a
/// store allowed to use the controller's identity may ask for it.
fn managed_identity(
    calls: &Calls,
    spec: &Value,
    vault_url: &str,
    scope: &StoreScope,
) -> Result<Built, ProviderError> {
    scope.allow_controller_identity(
        "azurekv.authType ManagedIdentity",
        "authType ServicePrincipal with authSecretRef",
    )?;
    if !spec["authSecretRef"].is_null() {
        return Err(ProviderError::Invalid(
            "azurekv.authSecretRef goes with authType ServicePrincipal, not ManagedIdentity".into(),
        ));
    }
    let identity = match spec["identityId"].as_str().map(str::trim) {
        None | Some("") => ManagedIdentity::System,
        Some(id) if id.starts_with('/') => ManagedIdentity::ResourceId(id.to_owned()),
        Some(id) => ManagedIdentity::ClientId(id.to_owned()),
    };
    let cloud =
        Cloud::from_env(spec["environmentType"].as_str().unwrap_or_default()).map_err(map_err)?;
    let endpoint = hush_azure::imds_endpoint_from_env();
    let vault = Vault {
        calls,
        cloud: &cloud,
        url: vault_url,
    };
    let client = vault.client(|http, observer| {
        TokenSource::managed_identity(
            http,
            &endpoint,
            identity.clone(),
            &cloud.vault_scope(),
            observer,
        )
    })?;
    let identity = digest(&[
        b"azurekv-managed",
        client.vault_url().as_bytes(),
        endpoint.as_bytes(),
        format!("{identity:?}").as_bytes(),
    ]);
    Ok(Built {
        provider: Arc::new(AzureProvider { client }),
        identity,
        referent: false,
    })
}

/// The value of `authSecretRef.<field>` (a Secret key of the store's namespace, or the
/// ExternalSecret's for referent auth).
async fn auth_value(
    auth: &Value,
    field: &'static str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<SecretBytes, ProviderError> {
    let sel: SecretKeySelector = decode(&format!("azurekv authSecretRef.{field}"), &auth[field])?;
    let key = sel.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
        ProviderError::Invalid(format!("azurekv.authSecretRef.{field}.key is required"))
    })?;
    let r = KeyRef {
        name: sel.name.clone(),
        key,
        namespace: ref_namespace(sel.namespace.as_deref(), scope)?,
    };
    creds.secret_key(&r).await
}

/// [`auth_value`] as trimmed text (client and tenant ids).
async fn auth_text(
    auth: &Value,
    field: &'static str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<String, ProviderError> {
    let value = auth_value(auth, field, scope, creds).await?;
    std::str::from_utf8(value.expose())
        .map(|s| s.trim().to_owned())
        .map_err(|_| ProviderError::Invalid(format!("azurekv authSecretRef.{field} is not UTF-8")))
}

/// `authType: WorkloadIdentity`: a ServiceAccount's federated token (`serviceAccountRef`), or
/// without one the controller's own workload identity from its environment.
async fn workload_identity(
    calls: &Calls,
    spec: &Value,
    vault_url: &str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<Built, ProviderError> {
    let auth = &spec["authSecretRef"];
    for field in ["clientSecret", "clientCertificate"] {
        if !auth[field].is_null() {
            return Err(ProviderError::Invalid(format!(
                "azurekv.authSecretRef.{field} goes with authType ServicePrincipal; \
                 WorkloadIdentity proves the application with a ServiceAccount token"
            )));
        }
    }
    let cloud =
        Cloud::from_env(spec["environmentType"].as_str().unwrap_or_default()).map_err(map_err)?;
    let (credential, identity, referent) = if spec["serviceAccountRef"].is_null() {
        controller_workload_identity(spec, scope)?
    } else {
        service_account_identity(spec, scope, creds).await?
    };
    let vault = Vault {
        calls,
        cloud: &cloud,
        url: vault_url,
    };
    vault.application(
        credential,
        (b"azurekv-workload", identity.as_bytes()),
        referent,
    )
}

/// The controller's workload identity (the webhook's `AZURE_*` environment), for stores that
/// may use it. Returns the credential, what identifies its token, and `referent: false`.
fn controller_workload_identity(
    spec: &Value,
    scope: &StoreScope,
) -> Result<(Credential, String, bool), ProviderError> {
    scope.allow_controller_identity(
        "azurekv.authType WorkloadIdentity without serviceAccountRef",
        "serviceAccountRef",
    )?;
    for field in ["authSecretRef", "tenantId"] {
        if !spec[field].is_null() {
            return Err(ProviderError::Invalid(format!(
                "azurekv.{field}: WorkloadIdentity without serviceAccountRef is the controller's \
                 own identity (AZURE_CLIENT_ID, AZURE_TENANT_ID); set serviceAccountRef to use \
                 {field}"
            )));
        }
    }
    let credential = Credential::workload_identity_from_env().map_err(map_err)?;
    let file = format!("{:?}", credential.secret);
    Ok((credential, file, false))
}

/// `serviceAccountRef`: its client id (annotation or `authSecretRef.clientId`, not both) and
/// tenant (`authSecretRef.tenantId` or `tenantId`, or the annotation, not both; then
/// `AZURE_TENANT_ID`), and its tokens, requested at every exchange.
async fn service_account_identity(
    spec: &Value,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<(Credential, String, bool), ProviderError> {
    let sa_spec = &spec["serviceAccountRef"];
    refuse_unknown_fields(
        "azurekv.serviceAccountRef",
        sa_spec,
        &["name", "namespace", "audiences"],
    )?;
    let sa: ServiceAccountSelector = decode("azurekv serviceAccountRef", sa_spec)?;
    if sa.name.is_empty() {
        return Err(ProviderError::Invalid(
            "azurekv.serviceAccountRef.name is required".into(),
        ));
    }
    let ns = ref_namespace(sa.namespace.as_deref(), scope)?;
    let who = format!("{}/{}", ns.as_deref().unwrap_or_default(), sa.name);
    let annotations = creds
        .service_account_annotations(ns.as_deref(), &sa.name)
        .await?;
    let annotation = |name: &str| annotations.get(name).map(|v| v.trim().to_owned());
    let auth = &spec["authSecretRef"];
    let from_secret = if auth["clientId"].is_null() {
        None
    } else {
        Some(auth_text(auth, "clientId", scope, creds).await?)
    };
    let client_id = match (from_secret, annotation(CLIENT_ID_ANNOTATION)) {
        (Some(_), Some(_)) => {
            return Err(ProviderError::Invalid(format!(
                "multiple clientID found: azurekv.authSecretRef.clientId and the \
                 {CLIENT_ID_ANNOTATION} annotation of service account {who}; keep one"
            )));
        }
        (Some(id), None) | (None, Some(id)) if !id.is_empty() => id,
        _ => {
            return Err(ProviderError::Invalid(format!(
                "missing clientID: service account {who} has no {CLIENT_ID_ANNOTATION} \
                 annotation and azurekv.authSecretRef.clientId is not set"
            )));
        }
    };
    let from_store = if auth["tenantId"].is_null() {
        spec["tenantId"]
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    } else {
        Some(auth_text(auth, "tenantId", scope, creds).await?)
    };
    let tenant_id = match (from_store, annotation(TENANT_ID_ANNOTATION)) {
        (Some(_), Some(_)) => {
            return Err(ProviderError::Invalid(format!(
                "multiple tenantID found: the store's tenantId (or authSecretRef.tenantId) and \
                 the {TENANT_ID_ANNOTATION} annotation of service account {who}; keep one"
            )));
        }
        (Some(t), None) | (None, Some(t)) if !t.is_empty() => t,
        _ => std::env::var("AZURE_TENANT_ID")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "missing tenantID: set azurekv.tenantId, authSecretRef.tenantId or the \
                     {TENANT_ID_ANNOTATION} annotation of service account {who}"
                ))
            })?,
    };
    let mut audiences = vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()];
    audiences.extend(sa.audiences.iter().cloned());
    let tokens = creds.service_account_tokens(ns.as_deref(), &sa.name)?;
    let identity = format!("{who} {}", audiences.join(" "));
    let credential = Credential {
        tenant_id,
        client_id,
        secret: Secret::FederatedToken(Arc::new(crate::cloud::TokenRequests { tokens, audiences })),
    };
    let referent = scope.kind == "ClusterSecretStore" && crate::auth_is_referent(spec);
    Ok((credential, identity, referent))
}

/// A Key Vault client for one vault and application.
#[derive(Debug)]
pub struct AzureProvider {
    client: VaultClient,
}

/// `metadataPolicy: Fetch` as ESO's `getSecretTag`: every tag as a JSON object, one tag by
/// name, or `TAG.path` into a tag whose value is JSON.
fn tag_value(
    tags: &BTreeMap<String, String>,
    property: &str,
) -> Result<SecretBytes, ProviderError> {
    if property.is_empty() {
        let json = serde_json::to_string(tags).unwrap_or_default();
        return Ok(SecretBytes::from(json.as_str()));
    }
    if let Some(v) = tags.get(property) {
        return Ok(SecretBytes::from(v.as_str()));
    }
    let missing = || ProviderError::Invalid(format!("tag {property} does not exist"));
    let (tag, path) = property.split_once('.').ok_or_else(missing)?;
    let value = tags
        .get(tag)
        .filter(|_| !tag.is_empty())
        .ok_or_else(missing)?;
    crate::cloud::property_of(SecretBytes::from(value.as_str()), property, path)
}

/// A Key Vault object ESO reads: `secret/NAME` or `NAME`, `key/NAME`, `cert/NAME`.
#[derive(Debug, PartialEq, Eq)]
enum Object<'a> {
    Secret(&'a str),
    Key(&'a str),
    Cert(&'a str),
}

fn object(key: &str) -> Result<Object<'_>, ProviderError> {
    match key.split_once('/') {
        None => Ok(Object::Secret(key)),
        Some(("secret", name)) => Ok(Object::Secret(name)),
        Some(("key", name)) => Ok(Object::Key(name)),
        Some(("cert", name)) => Ok(Object::Cert(name)),
        Some(_) => Err(ProviderError::Invalid(format!(
            "remoteRef.key {key:?}: expected secret/NAME, key/NAME, cert/NAME or NAME"
        ))),
    }
}

#[async_trait]
impl SecretProvider for AzureProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let (raw, tags) = match object(&r.key)? {
            Object::Secret(name) => {
                let bundle = self
                    .client
                    .get_secret(name, &r.version)
                    .await
                    .map_err(map_err)?;
                (SecretBytes::from(bundle.value.as_str()), bundle.tags)
            }
            Object::Key(name) => {
                let (jwk, tags) = self
                    .client
                    .get_key(name, &r.version)
                    .await
                    .map_err(map_err)?;
                (SecretBytes::from(jwk.as_str()), tags)
            }
            Object::Cert(name) => {
                let (der, tags) = self
                    .client
                    .get_certificate(name, &r.version)
                    .await
                    .map_err(map_err)?;
                if !r.metadata && !r.property.is_empty() {
                    // ESO returns the DER as it is; a property cannot select in it.
                    return Err(ProviderError::Invalid(format!(
                        "remoteRef {:?}: a certificate has no property {:?} (its value is DER)",
                        r.key, r.property
                    )));
                }
                (SecretBytes::new(der), tags)
            }
        };
        if r.metadata {
            return tag_value(&tags, &r.property);
        }
        if r.key.starts_with("cert/") {
            return Ok(raw);
        }
        crate::cloud::property_of(raw, &r.key, &r.property)
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let value = self.get(r).await?;
        extract_raw(value.expose())
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        if !q.path.is_empty() {
            return Err(ProviderError::Invalid(
                "find.path is not supported by the azurekv provider (name.regexp, tags)".into(),
            ));
        }
        let re = crate::cloud::name_filter(&q.name_regexp)?;
        let items = self.client.list_secrets().await.map_err(map_err)?;
        let mut out = BTreeMap::new();
        for item in items {
            let wanted = item.enabled
                && re.as_ref().is_none_or(|re| re.is_match(&item.name))
                && q.tags.iter().all(|(k, v)| item.tags.get(k) == Some(v));
            if !wanted {
                continue;
            }
            match self.client.get_secret(&item.name, "").await {
                Ok(b) => {
                    out.insert(item.name, SecretBytes::from(b.value.as_str()));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(out)
    }

    /// argocd-vault-plugin's `azurekeyvault` (the store is the vault the path names): with
    /// `key`, that secret alone at `version`; without, every enabled secret at its current
    /// version (AVP reads versions only inline).
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        let mut out = serde_json::Map::new();
        let names = match (&r.key, &r.version) {
            (Some(name), _) => vec![name.clone()],
            (None, Some(_)) => {
                return Err(ProviderError::Invalid(format!(
                    "{}: a version needs an inline placeholder (<path:VAULT#NAME#VERSION>)",
                    r.path
                )));
            }
            (None, None) => self
                .client
                .list_secrets()
                .await
                .map_err(map_err)?
                .into_iter()
                .filter(|i| i.enabled)
                .map(|i| i.name)
                .collect(),
        };
        let version = r.version.as_deref().unwrap_or_default();
        for name in names {
            match self.client.get_secret(&name, version).await {
                Ok(b) => {
                    out.insert(name, Value::String(b.value.as_str().to_owned()));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok((r.key.is_none() || !out.is_empty()).then_some(out))
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        // A token proves the application; Key Vault access shows at the first read.
        self.client
            .tokens()
            .token()
            .await
            .map(|_| ())
            .map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_as_eso() {
        let tags: BTreeMap<String, String> = [
            ("team".to_owned(), "a".to_owned()),
            ("meta".to_owned(), r#"{"owner":"x"}"#.to_owned()),
        ]
        .into();
        let text =
            |p: &str| String::from_utf8(tag_value(&tags, p).unwrap().expose().to_vec()).unwrap();
        assert_eq!(text(""), r#"{"meta":"{\"owner\":\"x\"}","team":"a"}"#);
        assert_eq!(text("team"), "a");
        assert_eq!(text("meta.owner"), "x");
        let err = tag_value(&tags, "nope").unwrap_err().to_string();
        assert!(err.contains("tag nope does not exist"), "{err}");
        assert!(tag_value(&tags, ".x").is_err());
    }

    /// Annotations of one ServiceAccount and Secret keys; tokens are canaries.
    struct Creds(BTreeMap<String, String>);

    #[derive(Debug)]
    struct Tokens;

    #[async_trait]
    impl crate::ServiceAccountTokens for Tokens {
        async fn token(&self, _: &[String], _: i64) -> Result<SecretBytes, ProviderError> {
            Ok(SecretBytes::from("CANARY-sa-token"))
        }
    }

    #[async_trait]
    impl CredentialSource for Creds {
        async fn secret_key(&self, r: &KeyRef) -> Result<SecretBytes, ProviderError> {
            Ok(SecretBytes::from(format!("from-{}", r.key).as_str()))
        }
        async fn config_map_key(&self, _: &KeyRef) -> Result<String, ProviderError> {
            unreachable!()
        }
        async fn service_account_token(
            &self,
            _: Option<&str>,
            _: &str,
            _: &[String],
            _: i64,
        ) -> Result<SecretBytes, ProviderError> {
            unreachable!()
        }
        fn service_account_tokens(
            &self,
            _: Option<&str>,
            _: &str,
        ) -> Result<Arc<dyn crate::ServiceAccountTokens>, ProviderError> {
            Ok(Arc::new(Tokens))
        }
        async fn service_account_annotations(
            &self,
            _: Option<&str>,
            _: &str,
        ) -> Result<BTreeMap<String, String>, ProviderError> {
            Ok(self.0.clone())
        }
    }

    async fn err(spec: &Value, scope: &StoreScope, creds: &Creds) -> String {
        Factory::default()
            .build(spec, scope, creds)
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn workload_identity_fields_are_honoured_or_refused_by_name() {
        let scope = StoreScope::new("SecretStore", "s", Some("ns".into()));
        let annotated = Creds(
            [
                (CLIENT_ID_ANNOTATION.to_owned(), "app-id".to_owned()),
                (TENANT_ID_ANNOTATION.to_owned(), "tenant.example".to_owned()),
            ]
            .into(),
        );
        let bare = Creds(BTreeMap::new());
        // A vault in the Key Vault domain this environment allows (HUSH_AZURE_VAULT_DOMAIN
        // when the test servers run).
        let vault = format!("https://kv.{}", Cloud::from_env("").unwrap().vault_domain);
        let base = json!({"authType": "WorkloadIdentity", "vaultUrl": vault,
            "serviceAccountRef": {"name": "app", "audiences": ["extra"]}});
        let with = |extra: Value| {
            let mut spec = base.clone();
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            spec
        };
        let built = Factory::default()
            .build(&base, &scope, &annotated)
            .await
            .unwrap();
        let debug = format!("{:?}", built.provider);
        assert!(
            debug.contains("ServiceAccount") || debug.contains("FederatedToken"),
            "{debug}"
        );
        assert!(!debug.contains("CANARY"), "{debug}");
        let cases = [
            (
                with(json!({"identityId": "x"})),
                "azurekv.identityId goes with authType ManagedIdentity",
            ),
            (
                with(json!({"authSecretRef": {"clientSecret": {"name": "s", "key": "k"}}})),
                "azurekv.authSecretRef.clientSecret goes with authType ServicePrincipal",
            ),
            (
                with(json!({"authSecretRef": {"clientId": {"name": "s", "key": "k"}}})),
                "multiple clientID found",
            ),
            (
                with(json!({"tenantId": "other"})),
                "multiple tenantID found",
            ),
            (
                with(json!({"serviceAccountRef": {"name": "app", "extra": 1}})),
                "azurekv.serviceAccountRef.extra",
            ),
        ];
        for (spec, want) in cases {
            let got = err(&spec, &scope, &annotated).await;
            assert!(got.contains(want), "{got}");
        }
        let got = err(&base, &scope, &bare).await;
        assert!(
            got.contains("missing clientID") && got.contains(CLIENT_ID_ANNOTATION),
            "{got}"
        );
        // Client id from the store's Secret, tenant from the store: no annotation needed.
        let spec = with(
            json!({"tenantId": "t.example", "authSecretRef": {"clientId": {"name": "s", "key": "id"}}}),
        );
        Factory::default()
            .build(&spec, &scope, &bare)
            .await
            .unwrap();
        let mut sp = base.clone();
        sp["authType"] = json!("ServicePrincipal");
        let got = err(&sp, &scope, &annotated).await;
        assert!(
            got.contains("azurekv.serviceAccountRef goes with authType WorkloadIdentity"),
            "{got}"
        );
        let own = json!({"authType": "WorkloadIdentity", "vaultUrl": vault});
        let got = err(&own, &scope, &annotated).await;
        assert!(
            got.contains("may not authenticate as the controller"),
            "{got}"
        );
    }

    #[test]
    fn object_types() {
        assert_eq!(object("db").unwrap(), Object::Secret("db"));
        assert_eq!(object("secret/db").unwrap(), Object::Secret("db"));
        assert_eq!(object("key/k").unwrap(), Object::Key("k"));
        assert_eq!(object("cert/c").unwrap(), Object::Cert("c"));
        assert!(object("other/x").is_err());
    }
}
