//! External Secrets Operator's push API (`external-secrets.io/v1alpha1`): `PushSecret` and
//! `ClusterPushSecret`, field for field as ESO
//! (`ESO:apis/externalsecrets/v1alpha1/pushsecret_types.go`), so every ESO manifest applies
//! unchanged. As with the v1 kinds, no server-side defaults (the controller applies ESO's:
//! `refreshInterval` 1h, `updatePolicy` Replace, `deletionPolicy` None) and enumerations are
//! checked by the controller, so one odd object is a `Ready=False` status, not a broken watch.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::external_secrets::{Condition, ExternalSecretTemplate, OpenObject};

/// Any JSON value kept as written (`x-kubernetes-preserve-unknown-fields`, ESO's
/// `apiextensionsv1.JSON`): a provider's push `metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct AnyJson(pub Value);

impl JsonSchema for AnyJson {
    fn schema_name() -> Cow<'static, str> {
        "AnyJson".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
    }
}

/// PushSecretSpec: which Secret to push, where, and how.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "PushSecret",
    plural = "pushsecrets",
    singular = "pushsecret",
    shortname = "ps",
    category = "external-secrets",
    namespaced,
    status = "PushSecretStatus",
    doc = "PushSecret is the Schema for the PushSecrets API that enables pushing Kubernetes secrets to external secret providers.",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSpec {
    /// How often to push again (Go duration; unset: 1h; `0`: once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// The stores to push to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_store_refs: Vec<PushSecretStoreRef>,
    /// Replace or IfNotExists (unset: Replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<String>,
    /// Delete or None (unset: None): remove what was pushed when the PushSecret or an entry goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<String>,
    /// The source: a Secret, or a generator.
    #[serde(default, skip_serializing_if = "PushSecretSelector::is_empty")]
    pub selector: PushSecretSelector,
    /// What to push.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PushSecretData>,
    /// Bulk pushes (accepted; not implemented by hush: the PushSecret goes Ready=False naming it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_to: Vec<OpenObject>,
    /// A template applied to the source Secret before pushing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
}

/// `secretStoreRefs[]`: a store by name, or stores by label selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStoreRef {
    /// Store name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Stores with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<OpenObject>,
    /// SecretStore or ClusterSecretStore (unset: SecretStore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `selector`: exactly one of `secret`, `generatorRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSelector {
    /// A Secret of the PushSecret's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<PushSecretSecret>,
    /// A generator whose output is pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<OpenObject>,
}

impl PushSecretSelector {
    /// Neither member set.
    pub fn is_empty(&self) -> bool {
        self.secret.is_none() && self.generator_ref.is_none()
    }
}

/// `selector.secret`: by name, or by label selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSecret {
    /// Secret name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Secrets with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<OpenObject>,
}

/// `data[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretData {
    /// Which key goes where.
    #[serde(rename = "match")]
    pub match_: PushSecretMatch,
    /// Provider-specific metadata (ESO's `PushSecretMetadata` envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AnyJson>,
    /// None or ReverseUnicode (unset: None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<String>,
}

/// `data[].match`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretMatch {
    /// The Secret key (unset: the whole Secret, as a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// Where it goes.
    pub remote_ref: PushSecretRemoteRef,
}

/// `data[].match.remoteRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretRemoteRef {
    /// Provider secret name.
    pub remote_key: String,
    /// Property of the provider secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// PushSecretStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStatus {
    /// Time of the last successful push (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
    /// `<generation>` of the last push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// `<Kind>/<store>` → `remoteKey[/property]` → the entry pushed there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub synced_push_secrets: BTreeMap<String, BTreeMap<String, PushSecretData>>,
    /// Conditions (`Ready`: Synced or Errored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// ClusterPushSecretSpec: one PushSecret per selected namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterPushSecret",
    plural = "clusterpushsecrets",
    singular = "clusterpushsecret",
    category = "external-secrets",
    status = "ClusterPushSecretStatus",
    doc = "ClusterPushSecret is the Schema for the ClusterPushSecrets API that enables cluster-wide management of pushing Kubernetes secrets to external providers.",
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretSpec {
    /// The spec of the PushSecrets to create.
    pub push_secret_spec: PushSecretSpec,
    /// How often namespaces are re-evaluated (unset: 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
    /// Their name (default: the ClusterPushSecret's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_name: Option<String>,
    /// Their labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_metadata: Option<PushSecretMetadata>,
    /// Namespace label selectors (any matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<OpenObject>,
}

/// `pushSecretMetadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PushSecretMetadata {
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `status.failedNamespaces[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterPushSecretNamespaceFailure {
    /// The namespace.
    pub namespace: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// ClusterPushSecretStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretStatus {
    /// Namespaces that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<ClusterPushSecretNamespaceFailure>,
    /// Namespaces provisioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// The PushSecrets' name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_name: Option<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt as _;

    #[test]
    fn esos_documented_push_secret_decodes() {
        let ps: PushSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
            "metadata": {"name": "pushsecret-example", "namespace": "default"},
            "spec": {
                "updatePolicy": "Replace", "deletionPolicy": "Delete", "refreshInterval": "1h0m0s",
                "secretStoreRefs": [{"name": "aws-parameterstore", "kind": "SecretStore"}],
                "selector": {"secret": {"name": "pokedex-credentials"}},
                "data": [{"match": {"secretKey": "best-pokemon",
                    "remoteRef": {"remoteKey": "my-first-parameter", "property": "p"}},
                    "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1",
                        "kind": "PushSecretMetadata", "spec": {"secretPushFormat": "string"}}}]
            }
        }))
        .unwrap();
        assert_eq!(
            ps.spec.data[0].match_.remote_ref.remote_key,
            "my-first-parameter"
        );
        for crd in [PushSecret::crd(), ClusterPushSecret::crd()] {
            let text = serde_json::to_string(&crd).unwrap();
            assert!(!text.contains("\"default\""));
            assert_eq!(crd.spec.versions[0].name, "v1alpha1");
        }
    }
}
