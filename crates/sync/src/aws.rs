//! AWS Secrets Manager and Parameter Store over the shared `hush-aws` client, mapped as ESO
//! maps them (`ESO:providers/v1/aws/{secretsmanager,parameterstore}`, `docs/external-secrets.md`).
//!
//! Credentials (static `auth.secretRef`, `auth.jwt` through a TokenRequest and STS
//! AssumeRoleWithWebIdentity, or the SDK chain; then `additionalRoles` and `role` through STS
//! AssumeRole) are resolved once per built client and re-assumed before they expire, not on
//! every reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use hush_aws::{AwsError, Credentials};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

mod push;

use crate::calls::Calls;
use crate::json::{extract_raw, property_dotted, scalar_text};
use crate::{
    Built, CredentialSource, DocumentRef, FindQuery, KeyRef, ProviderError, ProviderFactory,
    RemoteRef, SecretBytes, SecretKeySelector, SecretProvider, StoreScope, decode, digest,
    ref_namespace, refuse_unknown_fields,
};

/// The most calls one listing makes (`find`): a runaway `NextToken` stops there.
const MAX_PAGES: usize = 1001;
/// Assumed-role credentials are refreshed after this long (STS default lifetime: 1 h).
const ROLE_REFRESH: Duration = Duration::from_secs(45 * 60);

/// The ServiceAccount annotation naming the role `auth.jwt` assumes (IRSA's, as ESO).
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The ServiceAccount annotation overriding the token audience.
const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// The session name of every assumed role (ESO's).
const SESSION_NAME: &str = "external-secrets-provider-aws";
/// Lifetime asked for the web identity token; STS only checks it at AssumeRoleWithWebIdentity.
const JWT_SECONDS: i64 = 600;

/// ESO's `auth.jwt.serviceAccountRef`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountRef {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JwtAuth {
    #[serde(default)]
    service_account_ref: Option<ServiceAccountRef>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretRef {
    #[serde(rename = "accessKeyIDSecretRef", default)]
    access_key_id: Option<SecretKeySelector>,
    #[serde(default)]
    secret_access_key_secret_ref: Option<SecretKeySelector>,
    #[serde(default)]
    session_token_secret_ref: Option<SecretKeySelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthSpec {
    #[serde(default)]
    secret_ref: Option<SecretRef>,
    #[serde(default)]
    jwt: Option<JwtAuth>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AwsSpec {
    #[serde(default)]
    service: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    additional_roles: Vec<String>,
    #[serde(rename = "externalID", default)]
    external_id: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    auth: Option<AuthSpec>,
    /// PushSecret deletes (Secrets Manager).
    #[serde(default)]
    secrets_manager: Option<SecretsManagerSpec>,
}

/// `secretsManager`: how a PushSecret with `deletionPolicy: Delete` deletes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretsManagerSpec {
    #[serde(default)]
    force_delete_without_recovery: bool,
    #[serde(default)]
    recovery_window_in_days: Option<i64>,
}

/// Builds `aws` providers (SecretsManager, ParameterStore).
#[derive(Debug, Default)]
pub struct Factory {
    /// Where its providers count their API calls.
    pub calls: Calls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    SecretsManager,
    ParameterStore,
}

/// Refuses, by name, every field of an `aws` spec hush does not implement (`sessionTags`,
/// `transitiveTagKeys`, among them): a field is honoured or refused, never ignored.
/// `secretsManager` (`forceDeleteWithoutRecovery`, `recoveryWindowInDays`) only concerns
/// PushSecret deletions, which this provider never makes.
fn check_fields(spec: &Value) -> Result<(), ProviderError> {
    const P: &str = "spec.provider.aws";
    let sel = ["name", "key", "namespace"];
    refuse_unknown_fields(
        P,
        spec,
        &[
            "service",
            "region",
            "role",
            "additionalRoles",
            "externalID",
            "prefix",
            "auth",
            "secretsManager",
        ],
    )?;
    refuse_unknown_fields(
        &format!("{P}.secretsManager"),
        &spec["secretsManager"],
        &["forceDeleteWithoutRecovery", "recoveryWindowInDays"],
    )?;
    let auth = &spec["auth"];
    refuse_unknown_fields(&format!("{P}.auth"), auth, &["secretRef", "jwt"])?;
    let secret_ref = &auth["secretRef"];
    refuse_unknown_fields(
        &format!("{P}.auth.secretRef"),
        secret_ref,
        &[
            "accessKeyIDSecretRef",
            "secretAccessKeySecretRef",
            "sessionTokenSecretRef",
        ],
    )?;
    for k in [
        "accessKeyIDSecretRef",
        "secretAccessKeySecretRef",
        "sessionTokenSecretRef",
    ] {
        refuse_unknown_fields(&format!("{P}.auth.secretRef.{k}"), &secret_ref[k], &sel)?;
    }
    refuse_unknown_fields(
        &format!("{P}.auth.jwt"),
        &auth["jwt"],
        &["serviceAccountRef"],
    )?;
    refuse_unknown_fields(
        &format!("{P}.auth.jwt.serviceAccountRef"),
        &auth["jwt"]["serviceAccountRef"],
        &["name", "namespace", "audiences"],
    )
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        check_fields(spec)?;
        let s: AwsSpec = decode("aws", spec)?;
        let service = match s.service.as_str() {
            "SecretsManager" => Service::SecretsManager,
            "ParameterStore" => Service::ParameterStore,
            other => {
                return Err(ProviderError::Invalid(format!(
                    "aws service {other:?} is not supported (SecretsManager, ParameterStore)"
                )));
            }
        };
        if s.region.is_empty() {
            return Err(ProviderError::Invalid("aws region is required".into()));
        }
        let (svc_name, target) = match service {
            Service::SecretsManager => ("secretsmanager", "secretsmanager"),
            Service::ParameterStore => ("ssm", "AmazonSSM"),
        };
        let url = hush_aws::endpoint(svc_name, &s.region).map_err(map_err)?;
        let auth = s.auth.clone().unwrap_or_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ProviderError::Invalid(format!("HTTP client: {e}")))?;
        let (base, who) = base_credentials(&auth, &s.region, scope, creds, &http).await?;
        let identity = digest(&[
            b"aws",
            svc_name.as_bytes(),
            s.region.as_bytes(),
            url.as_bytes(),
            who.as_bytes(),
            format!("{:?}{:?}{:?}", s.additional_roles, s.role, s.external_id).as_bytes(),
        ]);
        Ok(Built {
            provider: Arc::new(AwsProvider {
                service,
                target,
                svc_name,
                url,
                region: s.region.clone(),
                prefix: s.prefix.clone().unwrap_or_default(),
                base,
                roles: s.additional_roles.clone(),
                role: s.role.clone().filter(|r| !r.is_empty()),
                external_id: s.external_id.clone().filter(|e| !e.is_empty()),
                http,
                session: Mutex::new(None),
                force_delete: s
                    .secrets_manager
                    .as_ref()
                    .is_some_and(|m| m.force_delete_without_recovery),
                recovery_window_days: s
                    .secrets_manager
                    .as_ref()
                    .and_then(|m| m.recovery_window_in_days)
                    .filter(|d| *d > 0),
                calls: self.calls.clone(),
            }),
            identity,
            referent: scope.kind == "ClusterSecretStore" && crate::auth_is_referent(spec),
        })
    }
}

/// The credentials `auth` names (`jwt`, else `secretRef`) and their identity; `None` = the
/// SDK chain (the controller's own identity), only where `scope` allows it.
async fn base_credentials(
    auth: &AuthSpec,
    region: &str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    http: &reqwest::Client,
) -> Result<(Option<Credentials>, String), ProviderError> {
    match (&auth.jwt, &auth.secret_ref) {
        (Some(jwt), _) => web_identity(jwt, region, scope, creds, http).await,
        (None, Some(r)) => {
            let get = |sel: &Option<SecretKeySelector>, what: &str| {
                sel.clone().ok_or_else(|| {
                    ProviderError::Invalid(format!("auth.secretRef.{what} is required"))
                })
            };
            let id_sel = get(&r.access_key_id, "accessKeyIDSecretRef")?;
            let secret_sel = get(&r.secret_access_key_secret_ref, "secretAccessKeySecretRef")?;
            let id = creds.secret_key(&sel_ref(&id_sel, scope)?).await?;
            let secret = creds.secret_key(&sel_ref(&secret_sel, scope)?).await?;
            let token = match &r.session_token_secret_ref {
                Some(t) => Some(creds.secret_key(&sel_ref(t, scope)?).await?),
                None => None,
            };
            let utf8 = |b: &SecretBytes, what: &str| {
                std::str::from_utf8(b.expose())
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| ProviderError::Invalid(format!("{what} is not UTF-8")))
            };
            let id_text = utf8(&id, "access key id")?;
            let secret_text = zeroize::Zeroizing::new(utf8(&secret, "secret access key")?);
            let token_text = match &token {
                Some(t) => Some(zeroize::Zeroizing::new(utf8(t, "session token")?)),
                None => None,
            };
            let who = digest(&[
                id.expose(),
                secret.expose(),
                token.as_ref().map(|t| t.expose()).unwrap_or_default(),
            ]);
            Ok((
                Some(Credentials::new(
                    &id_text,
                    &secret_text,
                    token_text.as_ref().map(|t| t.as_str()),
                )),
                who,
            ))
        }
        (None, None) => {
            // The SDK chain is the controller's own AWS identity (IRSA, instance role).
            scope.allow_controller_identity("auth", "auth.secretRef or auth.jwt")?;
            Ok((None, "default-chain".to_owned()))
        }
    }
}

/// Credentials for a generator (`STSSessionToken`, `ECRAuthorizationToken`): its `auth`
/// (`secretRef` or `jwt`; none = the controller's own chain, where `scope` allows it), then
/// `role` assumed with them, as ESO's `NewGeneratorSession`.
pub(crate) async fn generator_credentials(
    auth: &Value,
    role: Option<&str>,
    region: &str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    http: &reqwest::Client,
) -> Result<Credentials, ProviderError> {
    let sel = ["name", "key", "namespace"];
    refuse_unknown_fields("spec.auth", auth, &["secretRef", "jwt"])?;
    let secret_ref = &auth["secretRef"];
    let keys = [
        "accessKeyIDSecretRef",
        "secretAccessKeySecretRef",
        "sessionTokenSecretRef",
    ];
    refuse_unknown_fields("spec.auth.secretRef", secret_ref, &keys)?;
    for k in keys {
        refuse_unknown_fields(&format!("spec.auth.secretRef.{k}"), &secret_ref[k], &sel)?;
    }
    refuse_unknown_fields("spec.auth.jwt", &auth["jwt"], &["serviceAccountRef"])?;
    refuse_unknown_fields(
        "spec.auth.jwt.serviceAccountRef",
        &auth["jwt"]["serviceAccountRef"],
        &["name", "namespace", "audiences"],
    )?;
    let a: AuthSpec = if auth.is_null() {
        AuthSpec::default()
    } else {
        decode("auth", auth)?
    };
    let (base, _) = base_credentials(&a, region, scope, creds, http).await?;
    let mut c = match base {
        Some(c) => c,
        None => hush_aws::resolve_credentials(None, http, region)
            .await
            .map_err(map_err)?,
    };
    if let Some(role) = role.filter(|r| !r.is_empty()) {
        c = hush_aws::assume_role(http, region, &c, role_request(role, None))
            .await
            .map_err(map_err)?;
    }
    Ok(c)
}

/// STS `AssumeRole` of `role_arn` under ESO's session name.
fn role_request<'a>(role_arn: &'a str, external_id: Option<&'a str>) -> hush_aws::RoleRequest<'a> {
    hush_aws::RoleRequest {
        role_arn,
        session_name: SESSION_NAME,
        external_id,
    }
}

/// [`map_err`] for the generators.
pub(crate) fn provider_error(e: AwsError) -> ProviderError {
    map_err(e)
}

/// `auth.jwt`: a TokenRequest for the ServiceAccount, exchanged for the role named by its
/// `eks.amazonaws.com/role-arn` annotation (STS AssumeRoleWithWebIdentity). Returns the
/// credentials and their identity; the identity changes with every exchange, so a rebuilt
/// client (every client TTL) always carries fresh credentials.
async fn web_identity(
    jwt: &JwtAuth,
    region: &str,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
    http: &reqwest::Client,
) -> Result<(Option<Credentials>, String), ProviderError> {
    let sa = jwt
        .service_account_ref
        .as_ref()
        .filter(|sa| !sa.name.is_empty())
        .ok_or_else(|| {
            ProviderError::Invalid("auth.jwt.serviceAccountRef.name is required".into())
        })?;
    let ns = ref_namespace(sa.namespace.as_deref(), scope)?;
    let who = format!("{}/{}", ns.as_deref().unwrap_or_default(), sa.name);
    let annotations = creds
        .service_account_annotations(ns.as_deref(), &sa.name)
        .await?;
    let role_arn = annotations
        .get(ROLE_ARN_ANNOTATION)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ProviderError::Invalid(format!(
                "service account {who} has no {ROLE_ARN_ANNOTATION} annotation (auth.jwt assumes that role)"
            ))
        })?;
    let mut audiences = vec![
        annotations
            .get(AUDIENCE_ANNOTATION)
            .filter(|a| !a.is_empty())
            .cloned()
            .unwrap_or_else(|| "sts.amazonaws.com".to_owned()),
    ];
    audiences.extend(sa.audiences.iter().cloned());
    let token = creds
        .service_account_token(ns.as_deref(), &sa.name, &audiences, JWT_SECONDS)
        .await?;
    let token_text = std::str::from_utf8(token.expose()).map_err(|_| {
        ProviderError::Invalid(format!("token of service account {who} is not UTF-8"))
    })?;
    let c =
        hush_aws::assume_role_with_web_identity(http, region, role_arn, SESSION_NAME, token_text)
            .await
            .map_err(map_err)?;
    let identity = digest(&[
        b"jwt",
        who.as_bytes(),
        role_arn.as_bytes(),
        c.access_key_id.as_bytes(),
    ]);
    Ok((Some(c), identity))
}

fn sel_ref(sel: &SecretKeySelector, scope: &StoreScope) -> Result<KeyRef, ProviderError> {
    let key = sel.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
        ProviderError::Invalid(format!("secret reference {:?} has no key", sel.name))
    })?;
    Ok(KeyRef {
        name: sel.name.clone(),
        key,
        namespace: ref_namespace(sel.namespace.as_deref(), scope)?,
    })
}

fn map_err(e: AwsError) -> ProviderError {
    let text = e.to_string();
    if e.is_throttling() {
        return ProviderError::Throttled(text);
    }
    match e.code() {
        Some("ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound") => {
            ProviderError::NotFound(text)
        }
        // Secrets Manager: a secret scheduled for deletion (real AWS and moto).
        Some("InvalidRequestException")
            if text.contains("deleted") || text.contains("deletion") =>
        {
            ProviderError::NotFound(text)
        }
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "AccessDenied",
        ) => ProviderError::Denied(text),
        _ if e.is_transient() => ProviderError::Transient(text),
        _ => match e {
            AwsError::Credentials(_) => ProviderError::Denied(text),
            _ => ProviderError::Invalid(text),
        },
    }
}

/// An AWS Secrets Manager or Parameter Store client.
pub struct AwsProvider {
    service: Service,
    target: &'static str,
    svc_name: &'static str,
    url: String,
    region: String,
    prefix: String,
    base: Option<Credentials>,
    roles: Vec<String>,
    role: Option<String>,
    external_id: Option<String>,
    http: reqwest::Client,
    session: Mutex<Option<(Credentials, Instant)>>,
    force_delete: bool,
    recovery_window_days: Option<i64>,
    calls: Calls,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("service", &self.service)
            .field("region", &self.region)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// The credentials to sign with: cached; the chain and roles are resolved again only when
    /// assumed credentials are near expiry.
    async fn credentials(&self) -> Result<Credentials, ProviderError> {
        let mut session = self.session.lock().await;
        if let Some((c, at)) = session.as_ref()
            && (self.role.is_none() && self.roles.is_empty() && self.base.is_some()
                || at.elapsed() < ROLE_REFRESH)
        {
            return Ok(c.clone());
        }
        let mut c = match &self.base {
            Some(c) => c.clone(),
            None => hush_aws::resolve_credentials(None, &self.http, &self.region)
                .await
                .map_err(map_err)?,
        };
        for role in &self.roles {
            c = hush_aws::assume_role(&self.http, &self.region, &c, role_request(role, None))
                .await
                .map_err(map_err)?;
        }
        if let Some(role) = &self.role {
            let request = role_request(role, self.external_id.as_deref());
            c = hush_aws::assume_role(&self.http, &self.region, &c, request)
                .await
                .map_err(map_err)?;
        }
        *session = Some((c.clone(), Instant::now()));
        Ok(c)
    }

    async fn call(&self, action: &str, request: &Value) -> Result<Value, ProviderError> {
        let c = self.credentials().await?;
        let answer = hush_aws::json_call(
            &self.http,
            &self.url,
            &c,
            &self.region,
            self.svc_name,
            self.target,
            action,
            request,
        )
        .await;
        let provider = match self.service {
            Service::SecretsManager => crate::calls::AWS_SECRETS_MANAGER,
            Service::ParameterStore => crate::calls::AWS_PARAMETER_STORE,
        };
        self.calls.record(provider, action, answer.is_ok());
        answer.map_err(map_err)
    }

    /// Calls `action` with `request` and then with each `NextToken` it answers (at most
    /// [`MAX_PAGES`] calls), handing every answer to `page`.
    async fn pages(
        &self,
        action: &str,
        request: &Value,
        mut page: impl FnMut(&Value) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut req = request.clone();
            if let Some(t) = &next {
                req["NextToken"] = json!(t);
            }
            let a = self.call(action, &req).await?;
            page(&a)?;
            next = a["NextToken"].as_str().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// The raw value of one secret/parameter (SecretString or SecretBinary bytes).
    async fn fetch(&self, r: &RemoteRef) -> Result<Vec<u8>, ProviderError> {
        let name = format!("{}{}", self.prefix, r.key);
        if r.metadata {
            let tags = self.tags(&name).await?;
            return Ok(serde_json::to_vec(&tags).unwrap_or_default());
        }
        match self.service {
            Service::SecretsManager => {
                let mut req = json!({ "SecretId": name });
                match r.version.strip_prefix("uuid/") {
                    Some(id) => req["VersionId"] = json!(id),
                    None if r.version.is_empty() => req["VersionStage"] = json!("AWSCURRENT"),
                    None => req["VersionStage"] = json!(r.version),
                }
                let answer = self.call("GetSecretValue", &req).await?;
                sm_payload(&answer)
            }
            Service::ParameterStore => {
                let name = if r.version.is_empty() {
                    name
                } else {
                    format!("{name}:{}", r.version)
                };
                let answer = self
                    .call(
                        "GetParameter",
                        &json!({ "Name": name, "WithDecryption": true }),
                    )
                    .await?;
                answer["Parameter"]["Value"]
                    .as_str()
                    .map(|v| v.as_bytes().to_vec())
                    .ok_or_else(|| {
                        ProviderError::Invalid("GetParameter: no Parameter.Value".into())
                    })
            }
        }
    }

    async fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        let list = match self.service {
            Service::SecretsManager => {
                let a = self
                    .call("DescribeSecret", &json!({ "SecretId": name }))
                    .await?;
                a["Tags"].clone()
            }
            Service::ParameterStore => {
                let a = self
                    .call(
                        "ListTagsForResource",
                        &json!({ "ResourceType": "Parameter", "ResourceId": name }),
                    )
                    .await?;
                a["TagList"].clone()
            }
        };
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| {
                        Some((
                            t["Key"].as_str()?.to_owned(),
                            t["Value"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn select_property(&self, raw: Vec<u8>, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let raw = zeroize::Zeroizing::new(raw);
        if r.property.is_empty() {
            return Ok(SecretBytes::from_slice(&raw));
        }
        let v: Value = serde_json::from_slice(&raw).map_err(|_| {
            ProviderError::Invalid(format!(
                "secret {} is not JSON; cannot select a property",
                r.key
            ))
        })?;
        let x = property_dotted(&v, &r.property).ok_or_else(|| {
            ProviderError::Invalid(format!(
                "key {:?} does not exist in secret {}",
                r.property, r.key
            ))
        })?;
        Ok(SecretBytes::from(scalar_text(x).as_str()))
    }

    async fn find_sm(
        &self,
        q: &FindQuery,
        re: Option<&regex::Regex>,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let mut filters = Vec::new();
        for (k, v) in &q.tags {
            filters.push(json!({"Key": "tag-key", "Values": [k]}));
            filters.push(json!({"Key": "tag-value", "Values": [v]}));
        }
        let mut out = BTreeMap::new();
        if !q.path.is_empty() {
            filters.push(json!({"Key": "name", "Values": [q.path]}));
            let req = json!({ "Filters": filters, "MaxResults": 20 });
            self.pages("BatchGetSecretValue", &req, |a| {
                for v in a["SecretValues"].as_array().into_iter().flatten() {
                    let Some(name) = v["Name"].as_str() else {
                        continue;
                    };
                    if re.is_some_and(|re| !re.is_match(name)) {
                        continue;
                    }
                    out.insert(name.to_owned(), SecretBytes::new(sm_payload(v)?));
                }
                Ok(())
            })
            .await?;
            return Ok(out);
        }
        let mut names = Vec::new();
        let req = json!({ "Filters": filters, "MaxResults": 100 });
        self.pages("ListSecrets", &req, |a| {
            for s in a["SecretList"].as_array().into_iter().flatten() {
                if let Some(name) = s["Name"].as_str()
                    && re.is_none_or(|re| re.is_match(name))
                {
                    names.push(name.to_owned());
                }
            }
            Ok(())
        })
        .await?;
        for name in names {
            let answer = self
                .call(
                    "GetSecretValue",
                    &json!({"SecretId": name, "VersionStage": "AWSCURRENT"}),
                )
                .await;
            match answer {
                Ok(a) => {
                    out.insert(name, SecretBytes::new(sm_payload(&a)?));
                }
                Err(ProviderError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn find_ssm(
        &self,
        q: &FindQuery,
        re: Option<&regex::Regex>,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let mut out = BTreeMap::new();
        let path = if q.path.is_empty() {
            "/".to_owned()
        } else {
            q.path.clone()
        };
        if re.is_some() || q.tags.is_empty() {
            let req =
                json!({"Path": path, "Recursive": true, "WithDecryption": true, "MaxResults": 10});
            self.pages("GetParametersByPath", &req, |a| {
                for p in a["Parameters"].as_array().into_iter().flatten() {
                    let (Some(name), Some(value)) = (p["Name"].as_str(), p["Value"].as_str())
                    else {
                        continue;
                    };
                    if re.is_some_and(|re| !re.is_match(name)) {
                        continue;
                    }
                    out.insert(name.to_owned(), SecretBytes::from(value));
                }
                Ok(())
            })
            .await?;
            return Ok(out);
        }
        let mut filters: Vec<Value> = q
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": format!("tag:{k}"), "Option": "Equals", "Values": [v]}))
            .collect();
        filters.push(json!({"Key": "Path", "Option": "Recursive", "Values": [path]}));
        let mut names = Vec::new();
        let req = json!({"ParameterFilters": filters, "MaxResults": 50});
        self.pages("DescribeParameters", &req, |a| {
            for p in a["Parameters"].as_array().into_iter().flatten() {
                if let Some(name) = p["Name"].as_str() {
                    names.push(name.to_owned());
                }
            }
            Ok(())
        })
        .await?;
        for name in names {
            let a = self
                .call(
                    "GetParameter",
                    &json!({"Name": name, "WithDecryption": true}),
                )
                .await?;
            if let Some(v) = a["Parameter"]["Value"].as_str() {
                out.insert(name, SecretBytes::from(v));
            }
        }
        Ok(out)
    }
}

/// SecretString bytes, or the decoded SecretBinary.
fn sm_payload(answer: &Value) -> Result<Vec<u8>, ProviderError> {
    if let Some(s) = answer["SecretString"].as_str() {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(b) = answer["SecretBinary"].as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|_| ProviderError::Invalid("SecretBinary is not base64".into()));
    }
    Err(ProviderError::Invalid(
        "secret has neither SecretString nor SecretBinary".into(),
    ))
}

#[async_trait]
impl SecretProvider for AwsProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let raw = self.fetch(r).await?;
        self.select_property(raw, r)
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let value = self.get(r).await?;
        extract_raw(value.expose())
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let re = if q.name_regexp.is_empty() {
            None
        } else {
            Some(
                regex::Regex::new(&q.name_regexp)
                    .map_err(|e| ProviderError::Invalid(format!("find.name.regexp: {e}")))?,
            )
        };
        match self.service {
            Service::SecretsManager => self.find_sm(q, re.as_ref()).await,
            Service::ParameterStore => self.find_ssm(q, re.as_ref()).await,
        }
    }

    /// argocd-vault-plugin's read: `GetSecretValue` of the path as `SecretId` (`VersionId` for a
    /// version); the payload must be a JSON object.
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        if self.service != Service::SecretsManager {
            return Err(ProviderError::Invalid(format!(
                "{}: argocd-vault-plugin reads AWS Secrets Manager only",
                r.path
            )));
        }
        let mut req = json!({ "SecretId": r.path });
        if let Some(version) = &r.version {
            req["VersionId"] = json!(version);
        }
        let answer = match self.call("GetSecretValue", &req).await {
            Ok(answer) => answer,
            Err(ProviderError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let not_a_map = || {
            ProviderError::Invalid(format!(
                "aws secrets manager read {}: the secret is not a JSON object",
                r.path
            ))
        };
        let raw = zeroize::Zeroizing::new(sm_payload(&answer).map_err(|_| not_a_map())?);
        match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(not_a_map()),
        }
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        self.credentials().await.map(|_| ())
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
    use crate::testing::NoCreds;

    #[test]
    fn session_tags_and_unknown_fields_are_refused_by_name() {
        let ok = json!({"service": "SecretsManager", "region": "eu-west-1", "role": "arn",
            "secretsManager": {"recoveryWindowInDays": 7},
            "auth": {"jwt": {"serviceAccountRef": {"name": "sa"}}}});
        check_fields(&ok).unwrap();
        for (spec, field) in [
            (
                json!({"sessionTags": [{"key": "k", "value": "v"}]}),
                "spec.provider.aws.sessionTags",
            ),
            (
                json!({"transitiveTagKeys": ["k"]}),
                "spec.provider.aws.transitiveTagKeys",
            ),
            (
                json!({"auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "a", "property": "x"}}}}),
                "spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.property",
            ),
        ] {
            let e = check_fields(&spec).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn extract_keeps_raw_json_of_non_strings() {
        let m =
            extract_raw(br#"{"user": "admin", "port": 5432, "nested": {"a": [1, 2]}, "f": 1.50}"#)
                .unwrap();
        let get = |k: &str| String::from_utf8(m[k].expose().to_vec()).unwrap();
        assert_eq!(get("user"), "admin");
        assert_eq!(get("port"), "5432");
        assert_eq!(get("nested"), r#"{"a": [1, 2]}"#);
        assert_eq!(get("f"), "1.50");
        assert!(extract_raw(b"[1]").is_err());
        assert!(extract_raw(b"plain").is_err());
    }

    #[test]
    fn errors_map_onto_the_seam() {
        let api = |code: &str, status: u16, message: &str| AwsError::Api {
            action: "GetSecretValue".into(),
            status,
            code: code.into(),
            message: message.into(),
        };
        assert!(map_err(api("ResourceNotFoundException", 400, "")).is_not_found());
        assert!(
            map_err(api(
                "InvalidRequestException",
                400,
                "secret is currently marked deleted"
            ))
            .is_not_found()
        );
        assert!(matches!(
            map_err(api("ThrottlingException", 400, "")),
            ProviderError::Throttled(_)
        ));
        assert!(matches!(
            map_err(api("AccessDeniedException", 400, "")),
            ProviderError::Denied(_)
        ));
        assert!(matches!(
            map_err(api("InternalServiceError", 500, "")),
            ProviderError::Transient(_)
        ));
    }

    #[test]
    fn payloads() {
        assert_eq!(sm_payload(&json!({"SecretString": "x"})).unwrap(), b"x");
        assert_eq!(
            sm_payload(&json!({"SecretBinary": "AAE="})).unwrap(),
            [0, 1]
        );
        assert!(sm_payload(&json!({})).is_err());
    }

    #[tokio::test]
    async fn only_cluster_stores_fall_back_to_the_controllers_own_credentials() {
        let spec = json!({"service": "SecretsManager", "region": "eu-west-1",
            "role": "arn:aws:iam::1:role/other-teams-role"});
        let ss = StoreScope::new("SecretStore", "s", Some("team-a".into()));
        let err = Factory::default()
            .build(&spec, &ss, &NoCreds)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.starts_with("auth: a SecretStore may not")
                && m.contains("auth.secretRef or auth.jwt")),
            "{err}"
        );
        let css = StoreScope::new("ClusterSecretStore", "c", Some("team-a".into()));
        Factory::default()
            .build(&spec, &css, &NoCreds)
            .await
            .unwrap();
        let allowed = StoreScope {
            controller_identity: true,
            ..ss
        };
        Factory::default()
            .build(&spec, &allowed, &NoCreds)
            .await
            .unwrap();
    }
}
