//! Google Cloud Secret Manager over the shared `hush-gcp` client, mapped as ESO maps it
//! (`ESO:providers/v1/gcp/secretmanager`, `docs/external-secrets.md`).
//!
//! - `projectID` (default: the key's `project_id`), `auth.secretRef.secretAccessKeySecretRef`
//!   (a service-account JSON key). The token is exchanged once per built client and refreshed
//!   before it expires; a rebuilt client with the same key keeps the old one (the cache keeps a
//!   client whose credential identity did not change).
//! - `remoteRef.version`: `latest` (default) or a version number; `property` as ESO (exact key,
//!   then a gjson path); `extract` as ESO (strings unquoted, other values raw JSON).
//! - `find.name.regexp` over every secret of the project, `find.tags` as a label filter
//!   (`labels.K=V`, AND-ed), `find.path` as `name:` filter; each match read at `latest`.
//! - No `auth`: the controller's own identity from the metadata server (GKE), for stores that
//!   may use the controller's identity; `projectID` is then required.
//! - `remoteRef.metadataPolicy: Fetch`: labels and annotations as ESO returns them.
//! - `location`: regional secrets (`projects/P/locations/L/secrets/…` on the regional endpoint).
//! - `auth.workloadIdentity` (`serviceAccountRef`, `clusterProjectID`, `clusterLocation`,
//!   `clusterName`; the metadata server fills the empty ones, as ESO): a TokenRequest token of
//!   the ServiceAccount (audience `PROJECT.svc.id.goog` and `serviceAccountRef.audiences`)
//!   exchanged at Google's STS for a federated token of the cluster's identity namespace, then,
//!   when the account has an `iam.gke.io/gcp-service-account` annotation, for that Google
//!   service account's token (IAM Credentials `generateAccessToken`); once per token lifetime,
//!   a fresh ServiceAccount token at each exchange.
//! - Refused, naming the field: `auth.workloadIdentityFederation` (not in ESO v0.16.2).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hush_gcp::{
    Client, CloudError as _, Credentials, Endpoints, GcpError, ServiceAccountKey, WorkloadIdentity,
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

/// The ServiceAccount annotation naming the Google service account to impersonate (GKE).
const GSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// Builds `gcpsm` providers.
#[derive(Debug, Default)]
pub struct Factory {
    /// Where its clients count their API calls.
    pub calls: Calls,
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "gcpsm"
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        refuse_unknown_fields("gcpsm", spec, &["projectID", "location", "auth"])?;
        let auth = &spec["auth"];
        if auth.is_null() {
            return metadata_server(&self.calls, spec, scope);
        }
        refuse_unknown_fields("gcpsm.auth", auth, &["secretRef", "workloadIdentity"])?;
        if !auth["workloadIdentity"].is_null() {
            if !auth["secretRef"].is_null() {
                return Err(ProviderError::Invalid(
                    "gcpsm.auth: set one of secretRef and workloadIdentity".into(),
                ));
            }
            return workload_identity(&self.calls, spec, scope, creds).await;
        }
        refuse_unknown_fields(
            "gcpsm.auth.secretRef",
            &auth["secretRef"],
            &["secretAccessKeySecretRef"],
        )?;
        let sel: SecretKeySelector = decode(
            "gcpsm auth.secretRef.secretAccessKeySecretRef",
            &auth["secretRef"]["secretAccessKeySecretRef"],
        )?;
        let key_name = sel.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
            ProviderError::Invalid(
                "gcpsm.auth.secretRef.secretAccessKeySecretRef.key is required".into(),
            )
        })?;
        let r = KeyRef {
            name: sel.name.clone(),
            key: key_name,
            namespace: ref_namespace(sel.namespace.as_deref(), scope)?,
        };
        let json = creds.secret_key(&r).await?;
        let key = ServiceAccountKey::from_json(json.expose())
            .map_err(|e| ProviderError::Invalid(format!("secret {}/{}: {e}", r.name, r.key)))?;
        let project = match spec["projectID"].as_str().filter(|p| !p.is_empty()) {
            Some(p) => p.to_owned(),
            None if !key.project_id.is_empty() => key.project_id.clone(),
            None => {
                return Err(ProviderError::Invalid(
                    "gcpsm.projectID is required (the key has no project_id)".into(),
                ));
            }
        };
        let endpoints = Endpoints::from_env();
        let identity = digest(&[
            b"gcpsm",
            project.as_bytes(),
            spec["location"].as_str().unwrap_or_default().as_bytes(),
            endpoints.secret_manager.as_bytes(),
            endpoints.token.as_bytes(),
            json.expose(),
        ]);
        let credentials = Credentials::ServiceAccount(key);
        let store = Store {
            calls: &self.calls,
            spec,
            scope,
        };
        store.provider(credentials, endpoints, project, identity)
    }
}

/// The store a provider is built for, and where its calls count.
struct Store<'a> {
    calls: &'a Calls,
    spec: &'a Value,
    scope: &'a StoreScope,
}

impl Store<'_> {
    /// The provider of `project`'s secrets (regional where the store names a `location`) over
    /// `credentials`.
    fn provider(
        &self,
        credentials: Credentials,
        endpoints: Endpoints,
        project: String,
        identity: String,
    ) -> Result<Built, ProviderError> {
        let observer = self.calls.labelled(crate::calls::GCP_SECRET_MANAGER);
        let client = Client::new(credentials, endpoints, observer)
            .and_then(|c| regional(c, self.spec))
            .map_err(map_err)?;
        Ok(Built {
            provider: Arc::new(GcpProvider { client, project }),
            identity,
            // Without `auth` (the metadata server) nothing is referent.
            referent: self.scope.kind == "ClusterSecretStore" && crate::auth_is_referent(self.spec),
        })
    }
}

/// No `auth`: the controller's own Google identity, as ESO's default credentials find it on GKE
/// (the metadata server; `GCE_METADATA_HOST` names another), for stores that may use it.
fn metadata_server(
    calls: &Calls,
    spec: &Value,
    scope: &StoreScope,
) -> Result<Built, ProviderError> {
    scope.allow_controller_identity("gcpsm.auth", "auth.secretRef.secretAccessKeySecretRef")?;
    let project = spec["projectID"]
        .as_str()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ProviderError::Invalid(
                "gcpsm.projectID is required with the controller's own identity".into(),
            )
        })?
        .to_owned();
    let server = hush_gcp::metadata_server_url_from_env();
    let endpoints = Endpoints::from_env();
    let identity = digest(&[
        b"gcpsm-metadata",
        project.as_bytes(),
        spec["location"].as_str().unwrap_or_default().as_bytes(),
        endpoints.secret_manager.as_bytes(),
        server.as_bytes(),
    ]);
    let credentials = Credentials::MetadataServer(server);
    let store = Store { calls, spec, scope };
    store.provider(credentials, endpoints, project, identity)
}

/// `auth.workloadIdentity`: GKE workload identity for `serviceAccountRef`, as ESO computes its
/// identity namespace (`clusterProjectID`, `clusterLocation`, `clusterName`, or the metadata
/// server's `project/project-id`, `instance/attributes/cluster-location`, `cluster-name`).
async fn workload_identity(
    calls: &Calls,
    spec: &Value,
    scope: &StoreScope,
    creds: &dyn CredentialSource,
) -> Result<Built, ProviderError> {
    let wi = &spec["auth"]["workloadIdentity"];
    refuse_unknown_fields(
        "gcpsm.auth.workloadIdentity",
        wi,
        &[
            "serviceAccountRef",
            "clusterLocation",
            "clusterName",
            "clusterProjectID",
        ],
    )?;
    refuse_unknown_fields(
        "gcpsm.auth.workloadIdentity.serviceAccountRef",
        &wi["serviceAccountRef"],
        &["name", "namespace", "audiences"],
    )?;
    let sa: ServiceAccountSelector = decode(
        "gcpsm auth.workloadIdentity.serviceAccountRef",
        &wi["serviceAccountRef"],
    )?;
    if sa.name.is_empty() {
        return Err(ProviderError::Invalid(
            "gcpsm.auth.workloadIdentity.serviceAccountRef.name is required".into(),
        ));
    }
    let project = spec["projectID"]
        .as_str()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ProviderError::Invalid(
                "gcpsm.projectID is required with auth.workloadIdentity (the secrets' project)"
                    .into(),
            )
        })?
        .to_owned();
    let field = |name: &str| wi[name].as_str().map(str::trim).filter(|v| !v.is_empty());
    let cluster = |name: &'static str, path: &'static str| async move {
        match field(name) {
            Some(v) => Ok(v.to_owned()),
            None => hush_gcp::metadata_text(path).await.map_err(|e| {
                ProviderError::Invalid(format!(
                    "gcpsm.auth.workloadIdentity.{name} is empty and the metadata server does \
                     not tell it: {e}"
                ))
            }),
        }
    };
    let cluster_project = cluster("clusterProjectID", "project/project-id").await?;
    let location = cluster("clusterLocation", "instance/attributes/cluster-location").await?;
    let cluster_name = cluster("clusterName", "instance/attributes/cluster-name").await?;
    for (what, v) in [
        ("clusterProjectID", &cluster_project),
        ("clusterLocation", &location),
        ("clusterName", &cluster_name),
    ] {
        // They become part of the STS audience: Google's resource-name alphabet only.
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(ProviderError::Invalid(format!(
                "gcpsm.auth.workloadIdentity.{what} {v:?}: letters, digits, -, _ and . only"
            )));
        }
    }
    let pool = format!("{cluster_project}.svc.id.goog");
    let audience = format!(
        "identitynamespace:{pool}:https://container.googleapis.com/v1/projects/{cluster_project}/locations/{location}/clusters/{cluster_name}"
    );
    let ns = ref_namespace(sa.namespace.as_deref(), scope)?;
    let annotations = creds
        .service_account_annotations(ns.as_deref(), &sa.name)
        .await?;
    let service_account = annotations
        .get(GSA_ANNOTATION)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let mut audiences = vec![pool];
    audiences.extend(sa.audiences.iter().cloned());
    let tokens = creds.service_account_tokens(ns.as_deref(), &sa.name)?;
    let endpoints = Endpoints::from_env();
    let identity = digest(&[
        b"gcpsm-workload",
        project.as_bytes(),
        spec["location"].as_str().unwrap_or_default().as_bytes(),
        endpoints.secret_manager.as_bytes(),
        endpoints.sts.as_bytes(),
        endpoints.iam_credentials.as_bytes(),
        ns.as_deref().unwrap_or_default().as_bytes(),
        sa.name.as_bytes(),
        audiences.join(" ").as_bytes(),
        audience.as_bytes(),
        service_account.as_deref().unwrap_or_default().as_bytes(),
    ]);
    let credentials = Credentials::WorkloadIdentity(WorkloadIdentity {
        subject: Arc::new(crate::cloud::TokenRequests { tokens, audiences }),
        audience,
        service_account,
    });
    let store = Store { calls, spec, scope };
    store.provider(credentials, endpoints, project, identity)
}

/// `location`: the store's secrets are regional secrets of that location.
fn regional(client: Client, spec: &Value) -> Result<Client, GcpError> {
    match spec["location"].as_str().filter(|l| !l.is_empty()) {
        Some(location) => client.with_location(location),
        None => Ok(client),
    }
}

/// A Secret Manager client for one project.
pub struct GcpProvider {
    client: Client,
    project: String,
}

impl std::fmt::Debug for GcpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpProvider")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl GcpProvider {
    /// `metadataPolicy: Fetch` as ESO's `getSecretMetadata`: the secret's labels and
    /// annotations (`{"annotations":{…},"labels":{…}}`), `property` `labels` / `annotations`
    /// for one map, `labels.K` / `annotations.K` for one value.
    async fn metadata(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let m = self
            .client
            .get_secret(&self.project, &r.key)
            .await
            .map_err(map_err)?;
        let text = metadata_value(&m, &r.key, &r.property)?;
        Ok(SecretBytes::from(text.as_str()))
    }

    async fn payload(&self, key: &str, version: &str) -> Result<SecretBytes, ProviderError> {
        let data = self
            .client
            .access_secret_version(&self.project, key, version)
            .await
            .map_err(map_err)?;
        Ok(SecretBytes::from_slice(&data))
    }
}

#[async_trait]
impl SecretProvider for GcpProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        if r.metadata {
            return self.metadata(r).await;
        }
        let raw = self.payload(&r.key, &r.version).await?;
        crate::cloud::property_of(raw, &r.key, &r.property)
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let value = self.get(r).await?;
        extract_raw(value.expose())
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let re = crate::cloud::name_filter(&q.name_regexp)?;
        let filter = find_filter(q)?;
        let secrets = self
            .client
            .list_secrets(&self.project, &filter)
            .await
            .map_err(map_err)?;
        let mut out = BTreeMap::new();
        for s in secrets {
            if re.as_ref().is_some_and(|re| !re.is_match(&s.id)) {
                continue;
            }
            match self.payload(&s.id, "latest").await {
                Ok(v) => {
                    out.insert(s.id, v);
                }
                // Deleted between the listing and the read.
                Err(ProviderError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// argocd-vault-plugin's `gcpsecretmanager`: `projects/P/secrets/S` (in the project the
    /// path names) at `version` (default `latest`), as AVP's `{S: payload}`.
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        let (project, secret) = r
            .path
            .strip_prefix("projects/")
            .and_then(|p| p.rsplit_once("/secrets/"))
            .ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "{}: expected projects/PROJECT/secrets/SECRET",
                    r.path
                ))
            })?;
        let version = r.version.as_deref().unwrap_or("latest");
        match self
            .client
            .access_secret_version(project, secret, version)
            .await
        {
            Ok(data) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                Ok(Some(
                    [(secret.to_owned(), Value::String(text))]
                        .into_iter()
                        .collect(),
                ))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        self.client
            .tokens()
            .token()
            .await
            .map(|_| ())
            .map_err(map_err)
    }
}

fn metadata_value(
    m: &hush_gcp::SecretMetadata,
    key: &str,
    property: &str,
) -> Result<String, ProviderError> {
    let json = |v: &BTreeMap<String, String>| serde_json::to_string(v).unwrap_or_default();
    for (prefix, map) in [("annotations", &m.annotations), ("labels", &m.labels)] {
        if property == prefix {
            return Ok(json(map));
        }
        if let Some(name) = property
            .strip_prefix(prefix)
            .and_then(|p| p.strip_prefix('.'))
        {
            let what = &prefix[..prefix.len() - 1];
            return map.get(name).cloned().ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "{what} with key {name} does not exist in secret {key}"
                ))
            });
        }
    }
    if !property.is_empty() {
        return Err(ProviderError::Invalid(format!(
            "invalid property {property}: metadata property should start with either annotations or labels"
        )));
    }
    Ok(format!(
        "{{\"annotations\":{},\"labels\":{}}}",
        json(&m.annotations),
        json(&m.labels)
    ))
}

/// Secret Manager's list filter for `find`: `labels.K=V` per tag and `name:PATH`, AND-ed.
/// Tag keys and values are label characters only, so a tenant cannot widen the filter.
fn find_filter(q: &FindQuery) -> Result<String, ProviderError> {
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    let mut terms = Vec::new();
    for (k, v) in &q.tags {
        if !label_ok(k) || !(v.is_empty() || label_ok(v)) {
            return Err(ProviderError::Invalid(format!(
                "find.tags {k:?}: Google labels are lowercase letters, digits, - and _ (at most 63)"
            )));
        }
        terms.push(format!("labels.{k}={v}"));
    }
    if !q.path.is_empty() {
        if !q
            .path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ProviderError::Invalid(format!(
                "find.path {:?}: a secret id prefix is letters, digits, - and _",
                q.path
            )));
        }
        terms.push(format!("name:{}", q.path));
    }
    Ok(terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NoCreds;
    use serde_json::json;

    #[tokio::test]
    async fn workload_identity_fields_are_checked_by_name() {
        let scope = StoreScope::new("SecretStore", "s", Some("ns".into()));
        let wi = json!({"clusterProjectID": "p", "clusterLocation": "l", "clusterName": "c",
            "serviceAccountRef": {"name": "app"}});
        let cases = [
            (
                json!({"projectID": "p", "auth": {"workloadIdentity": wi, "secretRef": {}}}),
                "set one of secretRef and workloadIdentity",
            ),
            (
                json!({"auth": {"workloadIdentity": wi}}),
                "gcpsm.projectID is required with auth.workloadIdentity",
            ),
            (
                json!({"projectID": "p", "auth": {"workloadIdentity": {"serviceAccountRef": {"name": ""}}}}),
                "serviceAccountRef.name is required",
            ),
            (
                json!({"projectID": "p", "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "a"}, "clusterProjectID": "p", "clusterLocation": "l", "clusterName": "c/../x"}}}),
                "clusterName \"c/../x\"",
            ),
            (
                json!({"projectID": "p", "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "a"}, "pool": "x"}}}),
                "gcpsm.auth.workloadIdentity.pool",
            ),
            (
                json!({"projectID": "p", "auth": {"workloadIdentityFederation": {}}}),
                "gcpsm.auth.workloadIdentityFederation",
            ),
        ];
        for (spec, want) in cases {
            let got = Factory::default()
                .build(&spec, &scope, &NoCreds)
                .await
                .unwrap_err()
                .to_string();
            assert!(got.contains(want), "{got}");
        }
    }

    #[test]
    fn metadata_as_eso() {
        let mut m = hush_gcp::SecretMetadata::default();
        m.labels.insert("env".into(), "prod".into());
        m.annotations.insert("owner".into(), "team-a".into());
        assert_eq!(
            metadata_value(&m, "k", "").unwrap(),
            r#"{"annotations":{"owner":"team-a"},"labels":{"env":"prod"}}"#
        );
        assert_eq!(
            metadata_value(&m, "k", "labels").unwrap(),
            r#"{"env":"prod"}"#
        );
        assert_eq!(metadata_value(&m, "k", "labels.env").unwrap(), "prod");
        assert_eq!(
            metadata_value(&m, "k", "annotations.owner").unwrap(),
            "team-a"
        );
        let err = metadata_value(&m, "k", "labels.x").unwrap_err().to_string();
        assert!(
            err.contains("label with key x does not exist in secret k"),
            "{err}"
        );
        assert!(metadata_value(&m, "k", "other").is_err());
    }

    #[test]
    fn find_filters_are_built_from_label_characters_only() {
        let mut q = FindQuery::default();
        assert_eq!(find_filter(&q).unwrap(), "");
        q.tags.insert("team".into(), "a".into());
        q.tags.insert("env".into(), "prod".into());
        q.path = "db".into();
        assert_eq!(
            find_filter(&q).unwrap(),
            "labels.env=prod labels.team=a name:db"
        );
        q.tags.insert("x OR labels.y".into(), "1".into());
        assert!(find_filter(&q).is_err());
        let q = FindQuery {
            path: "a b".into(),
            ..FindQuery::default()
        };
        assert!(find_filter(&q).is_err());
    }
}
