//! External Secrets Operator's API (`external-secrets.io/v1`, ESO v2.x): `ExternalSecret`,
//! `ClusterExternalSecret`, `SecretStore`, `ClusterSecretStore`.
//!
//! Field names and shapes are ESO's (`ESO:apis/externalsecrets/v1/*.go`), so every ESO v1
//! manifest applies unchanged. Differences on purpose:
//! - The store's `spec.provider` is an open object (`x-kubernetes-preserve-unknown-fields`) and is
//!   decoded at run time by `hush-sync`, so a provider hush does not support is reported in the
//!   store's status (`InvalidProviderConfig`) instead of being refused by the API server.
//! - **No server-side defaults** anywhere (ESO 2.9 dropped those of `conversionStrategy`,
//!   `decodingStrategy`, `metadataPolicy`; `nullBytePolicy` earlier): defaults made Argo CD
//!   show permanent diffs. The controller treats a missing value as ESO's default.
//! - Enumerations are checked by the controller (a bad value is a `Ready=False` status on that
//!   one object), so one odd object never breaks the watch of the others.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API group.
pub const GROUP: &str = "external-secrets.io";
/// API version.
pub const VERSION: &str = "v1";

/// An open JSON object kept as written (`x-kubernetes-preserve-unknown-fields`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct OpenObject(pub serde_json::Map<String, Value>);

impl JsonSchema for OpenObject {
    fn schema_name() -> Cow<'static, str> {
        "OpenObject".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

/// `secretStoreRef` / `storeRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Name of the SecretStore resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kind of the SecretStore resource (SecretStore or ClusterSecretStore). Defaults to
    /// `SecretStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// ExternalSecretSpec defines the desired state of ExternalSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    plural = "externalsecrets",
    singular = "externalsecret",
    shortname = "es",
    category = "external-secrets",
    namespaced,
    status = "ExternalSecretStatus",
    doc = "ExternalSecret is the Schema for the external-secrets API.",
    printcolumn = r#"{"name":"StoreType","type":"string","jsonPath":".spec.secretStoreRef.kind"}"#,
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshInterval"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.refreshTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    /// The default store for all entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,
    /// The Secret to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ExternalSecretTarget>,
    /// How often to refresh (Go duration, `1h0m0s`); `0` syncs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// CreatedOnce, Periodic or OnChange (unset: Periodic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_policy: Option<String>,
    /// Windows gating periodic refresh (accepted; not evaluated by hush).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<OpenObject>,
    /// Single values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ExternalSecretData>,
    /// Many values: extract, find, rewrite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

/// The target Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTarget {
    /// Secret name (default: the ExternalSecret's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owner, Orphan, Merge, None or CreateOrMerge (unset: Owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_policy: Option<String>,
    /// Delete, Merge or Retain (unset: Retain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<String>,
    /// Template for the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
    /// Generic target (not supported by hush; accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<OpenObject>,
    /// Makes the Secret immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// `target.template`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretTemplate {
    /// Secret type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Engine version (`v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// Labels, annotations (templates) and finalizers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Replace or Merge (unset: Replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_policy: Option<String>,
    /// Key → template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Templates from ConfigMaps, Secrets or literals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_from: Vec<TemplateFrom>,
}

/// `template.metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Annotation templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Label templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Finalizers to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizers: Option<Vec<String>>,
}

/// `templateFrom[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    /// Items of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,
    /// Items of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,
    /// Data, Annotations or Labels (unset: Data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A literal template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    /// Auto, Base64, Base64URL or None (unset: None): decodes each rendered value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<String>,
}

/// A ConfigMap or Secret holding templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// Object name.
    pub name: String,
    /// Keys to use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<TemplateRefItem>,
}

/// One item of a [`TemplateRef`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    /// Key.
    pub key: String,
    /// Values or KeysAndValues (unset: Values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_as: Option<String>,
}

/// `data[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the Secret.
    pub secret_key: String,
    /// What to read.
    pub remote_ref: RemoteRef,
    /// Per-entry store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<SourceRef>,
}

/// `remoteRef` / `extract`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRef {
    /// Provider key.
    pub key: String,
    /// Sub-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Provider version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// None or Fetch (unset: None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<String>,
    /// Default or Unicode (unset: Default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<String>,
    /// Auto, Base64, Base64URL or None (unset: None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<String>,
    /// Ignore or Fail (unset: Ignore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<String>,
}

/// `sourceRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// Store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,
    /// Generator (not supported by hush; accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<OpenObject>,
}

/// `dataFrom[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretDataFromRemoteRef {
    /// A JSON object value, as many keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<RemoteRef>,
    /// Many provider secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,
    /// Key rewrites, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<Rewrite>,
    /// Per-entry store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<SourceRef>,
}

/// `dataFrom[].find`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// Path prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Name matcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Default or Unicode (unset: Default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<String>,
    /// Auto, Base64, Base64URL or None (unset: None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<String>,
    /// Ignore or Fail (unset: Ignore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<String>,
}

/// `find.name`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindName {
    /// RE2 regexp over provider names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// `dataFrom[].rewrite[]`: exactly one of regexp, transform, merge.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    /// Regexp replace on keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,
    /// Template over `.value` (the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
    /// Merge the JSON object values into one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<RewriteMerge>,
}

/// `rewrite.merge`: the values (JSON objects) are merged, keys in sorted order, then `priority`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteMerge {
    /// Target key of the merged JSON (strategy JSON only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Keys merged last, in this order (they win conflicts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,
    /// Strict or IgnoreNotFound (unset: Strict): a `priority` key missing from the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_policy: Option<String>,
    /// Error or Ignore (unset: Error): a key present in more than one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_policy: Option<String>,
    /// Extract or JSON (unset: Extract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// `rewrite.regexp`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteRegexp {
    /// RE2 regexp.
    pub source: String,
    /// Replacement (`$1`).
    pub target: String,
}

/// `rewrite.transform`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTransform {
    /// Template.
    pub template: String,
}

/// A status condition as ESO writes it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type (`Ready`).
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// Reason (`SecretSynced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// ExternalSecretStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// Start time of the last successful sync (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
    /// `<generation>-<sha3-224 of labels and annotations>` of the last sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// servicebinding.io binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

/// `status.binding`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Binding {
    /// The Secret name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// SecretStoreSpec defines the desired state of SecretStore (also ClusterSecretStore).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    plural = "secretstores",
    singular = "secretstore",
    shortname = "ss",
    category = "external-secrets",
    namespaced,
    status = "SecretStoreStatus",
    doc = "SecretStore represents a secure external location for storing secrets.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    /// Controller class: only controllers with this `--controller-class` handle the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// Exactly one provider (decoded at run time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<OpenObject>,
    /// Retry settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<RetrySettings>,
    /// Store revalidation interval (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<i64>,
    /// ClusterSecretStore: which namespaces may use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

/// `retrySettings`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    /// Maximum retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// Interval between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<String>,
}

/// ClusterSecretStore `conditions[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespace label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<OpenObject>,
    /// Namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespace name regexps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// SecretStoreStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// Conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// ReadOnly, WriteOnly or ReadWrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
}

/// The cluster-scoped store: same spec as [`SecretStoreSpec`].
// Its fields repeat those on purpose: kube's derive makes one kind per spec type, and the field
// docs are the CRD's descriptions, which differ between the two CRDs (`crds/` is checked byte for
// byte).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterSecretStore",
    plural = "clustersecretstores",
    singular = "clustersecretstore",
    shortname = "css",
    category = "external-secrets",
    status = "SecretStoreStatus",
    doc = "ClusterSecretStore represents a secure external location for storing secrets, which can be referenced as part of `storeRef` fields.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreSpec {
    /// Controller class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// Exactly one provider (decoded at run time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<OpenObject>,
    /// Retry settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<RetrySettings>,
    /// Store revalidation interval (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<i64>,
    /// Which namespaces may use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

/// ClusterExternalSecretSpec: one ExternalSecret per matching namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ClusterExternalSecret",
    plural = "clusterexternalsecrets",
    singular = "clusterexternalsecret",
    shortname = "ces",
    category = "external-secrets",
    status = "ClusterExternalSecretStatus",
    doc = "ClusterExternalSecret is the Schema for the clusterexternalsecrets API.",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".spec.externalSecretSpec.secretStoreRef.name"}"#,
    printcolumn = r#"{"name":"Refresh Interval","type":"string","jsonPath":".spec.refreshTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretSpec {
    /// The spec of the ExternalSecrets to create.
    pub external_secret_spec: ExternalSecretSpec,
    /// Their name (default: the ClusterExternalSecret's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
    /// Their labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_metadata: Option<ExternalSecretMetadata>,
    /// Deprecated single selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<OpenObject>,
    /// Namespace label selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<OpenObject>,
    /// Namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// How often namespaces are re-evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<String>,
}

/// `externalSecretMetadata`: labels and annotations of the created ExternalSecrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExternalSecretMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `status.failedNamespaces[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NamespaceFailure {
    /// The namespace.
    pub namespace: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// ClusterExternalSecretStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalSecretStatus {
    /// The ExternalSecrets' name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret_name: Option<String>,
    /// Namespaces that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<NamespaceFailure>,
    /// Namespaces provisioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt as _;

    #[test]
    fn crds_have_no_defaults_and_an_open_provider() {
        for crd in [
            ExternalSecret::crd(),
            SecretStore::crd(),
            ClusterSecretStore::crd(),
            ClusterExternalSecret::crd(),
        ] {
            let text = serde_json::to_string(&crd).unwrap();
            assert!(
                !text.contains("\"default\""),
                "{}",
                crd.metadata.name.unwrap_or_default()
            );
            assert_eq!(crd.spec.group, GROUP);
        }
        let text = serde_json::to_string(&SecretStore::crd()).unwrap();
        assert!(text.contains("x-kubernetes-preserve-unknown-fields"));
    }

    #[test]
    fn eso_manifests_decode() {
        let es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "x", "namespace": "n"},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": "vault-backend", "kind": "SecretStore"},
                "target": {"name": "example-sync", "creationPolicy": "Owner"},
                "data": [{"secretKey": "foobar", "remoteRef": {"key": "foo", "property": "my-value"}}],
                "dataFrom": [{"extract": {"key": "foo"}}, {"find": {"name": {"regexp": "^a"}}, "rewrite": [{"regexp": {"source": "a", "target": "b"}}]}]
            }
        }))
        .unwrap();
        assert_eq!(
            es.spec.data[0].remote_ref.property.as_deref(),
            Some("my-value")
        );
        let ss: SecretStore = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "vault-backend", "namespace": "n"},
            "spec": {"provider": {"vault": {"server": "http://v:8200", "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}
        }))
        .unwrap();
        assert!(ss.spec.provider.unwrap().0.contains_key("vault"));
    }
}
