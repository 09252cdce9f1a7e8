//! `SealedSecret` (`bitnami.com/v1alpha1`).
//!
//! The OpenAPI schema is written out by hand to be the one of Bitnami's CRD
//! (bitnami-labs/sealed-secrets:helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml): the
//! same required fields, `x-kubernetes-preserve-unknown-fields` on `encryptedData` and
//! `template.metadata`, `nullable` on `template.metadata` and `template.data`, the status
//! subresource and the `Status`/`Synced`/`Age` printer columns. A cluster can therefore switch
//! CRDs in either direction without any stored object becoming invalid.
//!
//! Decoding is lenient, as Go's is where it matters: a field of an unexpected shape decodes to
//! its default instead of failing, so one odd object (stored under an older or hand-edited CRD)
//! cannot stop the controller's watch; the reconciler reports it in the object's status instead.
//! The values here are ciphertext; the plaintext never passes through these types.
//!
//! `hush_sealing::types` holds the same object a second time, on purpose: kubeseal's Go structs
//! field for field (Go field order, `omitempty`, strict decoding), for the sealing library, which
//! must not depend on the Kubernetes client. The fields below therefore repeat those; the
//! controller converts at one place (`to_sealing`). Why not one type set: `docs/decisions.md`,
//! "SealedSecret: CRD types in `hush-api`, wire types in `hush-sealing`".

use std::borrow::Cow;
use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// API group of SealedSecret.
pub const GROUP: &str = "bitnami.com";
/// API version of SealedSecret.
pub const VERSION: &str = "v1alpha1";
/// Kind of SealedSecret.
pub const KIND: &str = "SealedSecret";
/// The only condition type the controller writes.
pub const CONDITION_SYNCED: &str = "Synced";

/// SealedSecretSpec is the specification of a SealedSecret.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "bitnami.com",
    version = "v1alpha1",
    kind = "SealedSecret",
    plural = "sealedsecrets",
    singular = "sealedsecret",
    namespaced,
    status = "SealedSecretStatus",
    doc = "SealedSecret is the K8s representation of a \"sealed Secret\" - a regular k8s Secret that has been sealed (encrypted) using the controller's key.",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[0].message"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[0].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(default, rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// Template defines the structure of the Secret that will be created from this sealed
    /// secret.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplateSpec>,
    /// Data is deprecated and will be removed eventually. Use per-value EncryptedData instead.
    /// Standard base64, as Go's `[]byte`.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Item name to sealed value (base64). Non-string entries are dropped, as Go's
    /// `SealedSecretEncryptedData.UnmarshalJSON` does.
    #[serde(deserialize_with = "lenient_string_map")]
    pub encrypted_data: BTreeMap<String, String>,
}

/// SecretTemplateSpec describes the structure a Secret should have when created from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct SecretTemplateSpec {
    /// Standard object's metadata, kept as written (unknown fields preserved).
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Used to facilitate programmatic handling of secret data.
    #[serde(
        rename = "type",
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub type_: Option<String>,
    /// Immutable, if set to true, ensures that data stored in the Secret cannot be updated.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Keys that should be templated using decrypted data.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// SealedSecretStatus is the most recently observed status of the SealedSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// Represents the latest available observations of a sealed secret's current state.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SealedSecretCondition>,
    /// The generation observed by the controller.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// SealedSecretCondition describes the state of a sealed secret at a certain point.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SealedSecretCondition {
    /// Type of condition for a SealedSecret (`Synced`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Status of the condition: `True`, `False` or `Unknown`.
    pub status: String,
    /// The last time this condition was updated (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    /// Last time the condition transitioned from one status to another (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The reason for the condition's last transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human readable message indicating details about the transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SealedSecretStatus {
    /// The `Synced` condition, if present.
    pub fn synced(&self) -> Option<&SealedSecretCondition> {
        self.conditions.iter().find(|c| c.type_ == CONDITION_SYNCED)
    }
}

/// Decodes `T`, falling back to its default when the JSON has another shape.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + DeserializeOwned,
{
    let value = Value::deserialize(d)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

fn lenient_string_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let Value::Object(map) = Value::deserialize(d)? else {
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

impl JsonSchema for SealedSecretSpec {
    fn schema_name() -> Cow<'static, str> {
        "SealedSecretSpec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "SealedSecretSpec is the specification of a SealedSecret.",
            "type": "object",
            "properties": {
                "data": {
                    "description": "Data is deprecated and will be removed eventually. Use per-value EncryptedData instead.",
                    "format": "byte",
                    "type": "string"
                },
                "encryptedData": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "x-kubernetes-preserve-unknown-fields": true
                },
                "template": {
                    "description": "Template defines the structure of the Secret that will be created from this sealed secret.",
                    "type": "object",
                    "properties": {
                        "data": {
                            "description": "Keys that should be templated using decrypted data.",
                            "type": "object",
                            "additionalProperties": { "type": "string" },
                            "nullable": true
                        },
                        "immutable": {
                            "description": "Immutable, if set to true, ensures that data stored in the Secret cannot be updated (only object metadata can be modified). If not set to true, the field can be modified at any time. Defaulted to nil.",
                            "type": "boolean"
                        },
                        "metadata": {
                            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
                            "type": "object",
                            "nullable": true,
                            "x-kubernetes-preserve-unknown-fields": true
                        },
                        "type": {
                            "description": "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
                            "type": "string"
                        }
                    }
                }
            },
            "required": ["encryptedData"]
        })
    }
}

impl JsonSchema for SealedSecretStatus {
    fn schema_name() -> Cow<'static, str> {
        "SealedSecretStatus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "SealedSecretStatus is the most recently observed status of the SealedSecret.",
            "type": "object",
            "properties": {
                "conditions": {
                    "description": "Represents the latest available observations of a sealed secret's current state.",
                    "type": "array",
                    "items": {
                        "description": "SealedSecretCondition describes the state of a sealed secret at a certain point.",
                        "type": "object",
                        "properties": {
                            "lastTransitionTime": {
                                "description": "Last time the condition transitioned from one status to another.",
                                "format": "date-time",
                                "type": "string"
                            },
                            "lastUpdateTime": {
                                "description": "The last time this condition was updated.",
                                "format": "date-time",
                                "type": "string"
                            },
                            "message": {
                                "description": "A human readable message indicating details about the transition.",
                                "type": "string"
                            },
                            "reason": {
                                "description": "The reason for the condition's last transition.",
                                "type": "string"
                            },
                            "status": {
                                "description": "Status of the condition for a sealed secret. Valid values for \"Synced\": \"True\", \"False\", or \"Unknown\".",
                                "type": "string"
                            },
                            "type": {
                                "description": "Type of condition for a sealed secret. Valid value: \"Synced\"",
                                "type": "string"
                            }
                        },
                        "required": ["status", "type"]
                    }
                },
                "observedGeneration": {
                    "description": "ObservedGeneration reflects the generation most recently observed by the sealed-secrets controller.",
                    "format": "int64",
                    "type": "integer"
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt as _;

    #[test]
    fn crd_has_bitnami_shape() {
        let crd = serde_json::to_value(SealedSecret::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "sealedsecrets.bitnami.com");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let v = &crd["spec"]["versions"][0];
        assert_eq!(v["name"], "v1alpha1");
        assert_eq!(v["subresources"]["status"], serde_json::json!({}));
        let root = &v["schema"]["openAPIV3Schema"];
        assert_eq!(root["required"], serde_json::json!(["spec"]));
        let spec = &root["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["encryptedData"]));
        assert_eq!(
            spec["properties"]["encryptedData"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(
            spec["properties"]["template"]["properties"]["metadata"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let columns: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Status", "Synced", "Age"]);
    }

    #[test]
    fn odd_shapes_decode_to_defaults() {
        let ss: SealedSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {
                "encryptedData": {"ok": "AgB=", "bad": 3},
                "template": {"metadata": "not an object", "type": 7, "data": null},
            },
            "status": {"conditions": "x"}
        }))
        .unwrap();
        assert_eq!(ss.spec.encrypted_data.keys().collect::<Vec<_>>(), ["ok"]);
        let t = ss.spec.template.unwrap();
        assert_eq!(t.metadata, None);
        assert_eq!(t.type_, None);
        assert!(ss.status.unwrap().conditions.is_empty());
    }
}
