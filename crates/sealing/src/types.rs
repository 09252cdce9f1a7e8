//! `SealedSecret` (`bitnami.com/v1alpha1`) and `v1.Secret`, laid out as the Go structs so that
//! serialization gives kubeseal's bytes: Go field order (kind before apiVersion), `omitempty`
//! and `omitzero` rules, sorted map keys. Unknown fields are dropped, as Go's
//! decoder does. `Debug` never shows secret values or annotations (a last-applied annotation can
//! hold a whole Secret).
//!
//! `hush_api::sealed_secret` holds the same object a second time, on purpose: the kube-rs
//! `CustomResource` the controller watches (Bitnami's schema, lenient decoding). The fields of
//! [`SealedSecretSpec`] and [`SecretTemplateSpec`] therefore repeat those; this crate stays
//! free of the Kubernetes client. Why not one type set: `docs/decisions.md`, "SealedSecret: CRD
//! types in `hush-api`, wire types in `hush-sealing`".

use std::collections::BTreeMap;
use std::fmt;

use hush_crypto::SecretBytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::Scope;

/// API version of SealedSecret.
pub const SEALED_SECRET_API_VERSION: &str = "bitnami.com/v1alpha1";
/// Kind of SealedSecret.
pub const SEALED_SECRET_KIND: &str = "SealedSecret";

/// `metav1.ObjectMeta`, in Go field order. Strings are `omitempty`. `creationTimestamp` is
/// omitted when unset: apimachinery v0.35 (kubeseal v0.36.6) marks it `omitzero`; older kubeseal
/// releases printed `creationTimestamp: null`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// `metadata.generateName`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub generate_name: String,
    /// `metadata.namespace`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// `metadata.selfLink`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub self_link: String,
    /// `metadata.uid`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    /// `metadata.resourceVersion`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub resource_version: String,
    /// `metadata.generation`.
    #[serde(deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub generation: i64,
    /// `metadata.creationTimestamp` (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// `metadata.deletionTimestamp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// `metadata.deletionGracePeriodSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// `metadata.labels`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// `metadata.ownerReferences`, kept as written.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub owner_references: Vec<Value>,
    /// `metadata.finalizers`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub finalizers: Vec<String>,
    /// `metadata.managedFields`, kept as written.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub managed_fields: Vec<Value>,
}

impl ObjectMeta {
    /// The scope the annotations select.
    pub fn scope(&self) -> Scope {
        Scope::from_annotations(&self.annotations)
    }
}

impl fmt::Debug for ObjectMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectMeta")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("labels", &self.labels.len())
            .field("annotations", &self.annotations.len())
            .finish_non_exhaustive()
    }
}

/// A `v1.Secret`. Values are [`SecretBytes`]; `stringData` is kept apart as on the wire.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Secret {
    /// `kind` (not checked when reading, as kubeseal).
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    /// `apiVersion`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    /// `metadata`.
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    /// `immutable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// `data`: base64 on the wire, raw bytes here.
    #[serde(
        deserialize_with = "b64_map::deserialize",
        serialize_with = "b64_map::serialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, SecretBytes>,
    /// `stringData`: UTF-8 on the wire.
    #[serde(
        deserialize_with = "str_map::deserialize",
        serialize_with = "str_map::serialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub string_data: BTreeMap<String, SecretBytes>,
    /// `type`.
    #[serde(
        rename = "type",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub type_: String,
}

impl Secret {
    /// `data` and `stringData` merged, `stringData` winning (kubeseal's order of sealing).
    pub fn items(&self) -> BTreeMap<&str, &SecretBytes> {
        let mut items: BTreeMap<&str, &SecretBytes> =
            self.data.iter().map(|(k, v)| (k.as_str(), v)).collect();
        items.extend(self.string_data.iter().map(|(k, v)| (k.as_str(), v)));
        items
    }

    /// Whether the document decoded to nothing (kubeseal skips such documents).
    pub fn is_empty_document(&self) -> bool {
        *self == Secret::default()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("type", &self.type_)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field(
                "string_data_keys",
                &self.string_data.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A `SealedSecret`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SealedSecret {
    /// `kind`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    /// `apiVersion`.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    /// `metadata`: its name, namespace and scope annotations decide the unseal label.
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    /// `spec`.
    #[serde(deserialize_with = "null_default")]
    pub spec: SealedSecretSpec,
    /// `status`, kept as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl SealedSecret {
    /// The scope the top-level annotations select (what unsealing uses).
    pub fn scope(&self) -> Scope {
        self.metadata.scope()
    }

    /// The OAEP label unsealing uses: from the top-level name, namespace and annotations.
    pub fn label(&self) -> Vec<u8> {
        self.scope()
            .label(&self.metadata.namespace, &self.metadata.name)
    }

    /// Sets `kind` and `apiVersion` as the Go codec does on output.
    pub fn set_type_meta(&mut self) {
        SEALED_SECRET_KIND.clone_into(&mut self.kind);
        SEALED_SECRET_API_VERSION.clone_into(&mut self.api_version);
    }

    /// Whether the document decoded to nothing (kubeseal skips such documents).
    pub fn is_empty_document(&self) -> bool {
        *self == SealedSecret::default()
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("metadata", &self.metadata)
            .field(
                "items",
                &self.spec.encrypted_data.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// `SealedSecretSpec`: template, deprecated `data`, `encryptedData` (Go field order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// `spec.template`: metadata, type and immutability of the Secret to create.
    #[serde(deserialize_with = "null_default")]
    pub template: SecretTemplateSpec,
    /// Deprecated v1 `spec.data`: one envelope over the JSON of the whole Secret.
    #[serde(
        deserialize_with = "b64_opt::deserialize",
        serialize_with = "b64_opt::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Vec<u8>>,
    /// `spec.encryptedData`: item name to base64 envelope. Non-string entries are dropped when
    /// reading, as Go's `SealedSecretEncryptedData.UnmarshalJSON` does.
    #[serde(deserialize_with = "lenient_string_map")]
    pub encrypted_data: BTreeMap<String, String>,
}

/// `SecretTemplateSpec`: metadata, type, immutable, data (Go field order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretTemplateSpec {
    /// Metadata copied to the Secret (name and namespace are then forced).
    #[serde(deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    /// Secret type.
    #[serde(
        rename = "type",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub type_: String,
    /// `immutable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Go templates over the decrypted values.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Go leaves a field at its zero value when the JSON says `null`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn lenient_string_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    let Value::Object(map) = value else {
        return Ok(BTreeMap::new());
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

mod b64_map {
    use super::*;
    use zeroize::Zeroize as _;

    pub(super) fn deserialize<'de, D>(d: D) -> Result<BTreeMap<String, SecretBytes>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let raw = Option::<BTreeMap<String, Option<String>>>::deserialize(d)?.unwrap_or_default();
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let mut text = v.unwrap_or_default();
            let decoded = crate::b64::decode(&text);
            text.zeroize();
            let bytes = decoded.map_err(|e| match e {
                crate::Error::Base64 { offset, .. } => serde::de::Error::custom(format!(
                    "illegal base64 data at input byte {offset} ({k})"
                )),
                other => serde::de::Error::custom(other),
            })?;
            out.insert(k, SecretBytes::new(bytes));
        }
        Ok(out)
    }

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<String, SecretBytes>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        // Go decrypts an empty value to a nil slice, which marshals as `null`.
        s.collect_map(
            map.iter()
                .map(|(k, v)| (k, (!v.is_empty()).then(|| crate::b64::encode(v.expose())))),
        )
    }
}

mod str_map {
    use super::*;

    pub(super) fn deserialize<'de, D>(d: D) -> Result<BTreeMap<String, SecretBytes>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let raw = Option::<BTreeMap<String, Option<String>>>::deserialize(d)?.unwrap_or_default();
        Ok(raw
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(v.unwrap_or_default().into_bytes())))
            .collect())
    }

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<String, SecretBytes>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            map.iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(v.expose()).into_owned())),
        )
    }
}

mod b64_opt {
    use super::*;

    pub(super) fn deserialize<'de, D>(d: D) -> Result<Option<Vec<u8>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => crate::b64::decode(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&crate::b64::encode(bytes)),
            None => s.serialize_none(),
        }
    }
}
