//! PushSecret to AWS Secrets Manager and Parameter Store
//! (`ESO:providers/v1/aws/{secretsmanager,parameterstore}`): ESO's ownership marker is the tag
//! `managed-by: external-secrets`, set on what a push creates; an existing secret or parameter
//! without it is never overwritten or deleted. A `property` merges into a JSON object value.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{AwsProvider, Service, sm_payload};
use crate::{MANAGED_BY, ProviderError, PushRef, SecretBytes, push_metadata_spec};

/// ESO's first version id of a secret it creates.
const INITIAL_VERSION: &str = "00000000-0000-0000-0000-000000000001";

/// Secrets Manager metadata fields hush implements (ESO also has `resourcePolicy` and
/// `replicationLocations`: refused by name).
const SM_METADATA: &[&str] = &["tags", "description", "secretPushFormat", "kmsKeyId"];
/// Parameter Store metadata fields hush implements.
const SSM_METADATA: &[&str] = &["tags", "parameterType", "tier", "keyID", "description"];

impl AwsProvider {
    fn push_name(&self, r: &PushRef) -> String {
        format!("{}{}", self.prefix, r.remote_key)
    }

    /// The current value, `None` when absent.
    async fn current(&self, name: &str) -> Result<Option<Vec<u8>>, ProviderError> {
        let answer = match self.service {
            Service::SecretsManager => {
                self.call("GetSecretValue", &json!({ "SecretId": name }))
                    .await
            }
            Service::ParameterStore => {
                self.call(
                    "GetParameter",
                    &json!({ "Name": name, "WithDecryption": true }),
                )
                .await
            }
        };
        match answer {
            Ok(a) => match self.service {
                Service::SecretsManager => sm_payload(&a).map(Some),
                Service::ParameterStore => Ok(a["Parameter"]["Value"]
                    .as_str()
                    .map(|v| v.as_bytes().to_vec())),
            },
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn managed(&self, name: &str) -> Result<bool, ProviderError> {
        let tags = self.tags(name).await?;
        Ok(tags.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1))
    }

    pub(super) async fn push_value(
        &self,
        value: &SecretBytes,
        r: &PushRef,
    ) -> Result<(), ProviderError> {
        let known = match self.service {
            Service::SecretsManager => SM_METADATA,
            Service::ParameterStore => SSM_METADATA,
        };
        let meta = push_metadata_spec(r, known)?;
        let tags = user_tags(&meta)?;
        let name = self.push_name(r);
        let current = self.current(&name).await?;
        if current.is_some() && !self.managed(&name).await? {
            return Err(ProviderError::Invalid(format!(
                "{name} exists and is not managed by external-secrets (no tag managed-by: \
                 external-secrets); hush does not overwrite it"
            )));
        }
        let new = zeroize::Zeroizing::new(merge(current.as_deref(), value, &r.property)?);
        if current.as_deref() == Some(new.as_slice()) {
            return self.retag(&name, &tags).await;
        }
        match self.service {
            Service::SecretsManager => {
                self.sm_write(&name, current.is_some(), &new, &meta, &tags)
                    .await
            }
            Service::ParameterStore => {
                self.ssm_write(&name, current.is_some(), &new, &meta, &tags)
                    .await
            }
        }
    }

    async fn sm_write(
        &self,
        name: &str,
        exists: bool,
        value: &[u8],
        meta: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        let format = meta
            .get("secretPushFormat")
            .and_then(Value::as_str)
            .unwrap_or("binary");
        let mut body = match format {
            "" | "binary" => {
                json!({ "SecretBinary": base64::engine::general_purpose::STANDARD.encode(value) })
            }
            "string" => {
                let text = std::str::from_utf8(value).map_err(|_| {
                    ProviderError::Invalid("secretPushFormat string needs a UTF-8 value".into())
                })?;
                json!({ "SecretString": text })
            }
            other => {
                return Err(ProviderError::Invalid(format!(
                    "metadata.spec.secretPushFormat {other:?} (binary or string)"
                )));
            }
        };
        if exists {
            self.retag(name, tags).await?;
            body["SecretId"] = json!(name);
            body["ClientRequestToken"] = json!(new_version());
            return self.call("PutSecretValue", &body).await.map(|_| ());
        }
        body["Name"] = json!(name);
        body["ClientRequestToken"] = json!(INITIAL_VERSION);
        body["Tags"] = tag_list(tags);
        body["Description"] = json!(
            meta.get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map_or_else(
                    || format!("secret '{}:{}'", MANAGED_BY.0, MANAGED_BY.1),
                    str::to_owned
                )
        );
        if let Some(k) = meta.get("kmsKeyId").and_then(Value::as_str) {
            body["KmsKeyId"] = json!(k);
        }
        self.call("CreateSecret", &body).await.map(|_| ())
    }

    async fn ssm_write(
        &self,
        name: &str,
        exists: bool,
        value: &[u8],
        meta: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        let text = std::str::from_utf8(value)
            .map_err(|_| ProviderError::Invalid("a Parameter Store value must be UTF-8".into()))?;
        let mut body = json!({
            "Name": name,
            "Value": text,
            "Type": meta.get("parameterType").and_then(Value::as_str).unwrap_or("String"),
            "Overwrite": exists,
        });
        for (field, aws) in [
            ("tier", "Tier"),
            ("keyID", "KeyId"),
            ("description", "Description"),
        ] {
            if let Some(v) = meta.get(field).and_then(Value::as_str) {
                body[aws] = json!(v);
            }
        }
        if exists {
            self.call("PutParameter", &body).await?;
            return self.retag(name, tags).await;
        }
        // Tags and Overwrite cannot go together: a new parameter is created with its tags.
        body["Tags"] = tag_list(tags);
        self.call("PutParameter", &body).await.map(|_| ())
    }

    /// Adds the tags `metadata.spec.tags` asks for that differ (ESO patches tags on update).
    async fn retag(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ProviderError> {
        let current = self.tags(name).await?;
        let missing: BTreeMap<String, String> = tags
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let body = match self.service {
            Service::SecretsManager => json!({ "SecretId": name, "Tags": tag_list(&missing) }),
            Service::ParameterStore => json!({
                "ResourceType": "Parameter", "ResourceId": name, "Tags": tag_list(&missing)
            }),
        };
        let action = match self.service {
            Service::SecretsManager => "TagResource",
            Service::ParameterStore => "AddTagsToResource",
        };
        self.call(action, &body).await.map(|_| ())
    }

    pub(super) async fn push_exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        Ok(self.current(&self.push_name(r)).await?.is_some())
    }

    pub(super) async fn push_delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        let name = self.push_name(r);
        if self.current(&name).await?.is_none() || !self.managed(&name).await? {
            return Ok(());
        }
        match self.service {
            Service::SecretsManager => {
                let mut body = json!({ "SecretId": name });
                if self.force_delete {
                    body["ForceDeleteWithoutRecovery"] = json!(true);
                }
                if let Some(days) = self.recovery_window_days {
                    body["RecoveryWindowInDays"] = json!(days);
                }
                self.call("DeleteSecret", &body).await.map(|_| ())
            }
            Service::ParameterStore => self
                .call("DeleteParameter", &json!({ "Name": name }))
                .await
                .map(|_| ()),
        }
    }
}

/// A random (v4) UUID: the ClientRequestToken of a new version.
fn new_version() -> String {
    use hush_crypto::Entropy as _;
    let mut b = [0u8; 16];
    // The OS CSPRNG does not fail on Linux; a zero token would still be a valid request.
    let _ = hush_crypto::SystemEntropy.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `metadata.spec.tags` plus the ownership marker (which the user may not set, as ESO).
fn user_tags(meta: &Map<String, Value>) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut out = BTreeMap::new();
    if let Some(tags) = meta.get("tags") {
        let map = tags
            .as_object()
            .ok_or_else(|| ProviderError::Invalid("metadata.spec.tags must be a map".into()))?;
        for (k, v) in map {
            if k == MANAGED_BY.0 {
                return Err(ProviderError::Invalid(format!(
                    "metadata.spec.tags: cannot specify a {:?} tag",
                    MANAGED_BY.0
                )));
            }
            let v = v.as_str().ok_or_else(|| {
                ProviderError::Invalid(format!("metadata.spec.tags.{k} must be a string"))
            })?;
            out.insert(k.clone(), v.to_owned());
        }
    }
    out.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    Ok(out)
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// The value to write: the pushed bytes, or `property` set (as a string) in the current JSON
/// object (a new one when absent).
fn merge(
    current: Option<&[u8]>,
    value: &SecretBytes,
    property: &str,
) -> Result<Vec<u8>, ProviderError> {
    if property.is_empty() {
        return Ok(value.expose().to_vec());
    }
    let mut obj: Map<String, Value> = match current.filter(|c| !c.is_empty()) {
        None => Map::new(),
        Some(c) => serde_json::from_slice(c).map_err(|_| {
            ProviderError::Invalid(
                "a push with remoteRef.property needs the current value to be a JSON object".into(),
            )
        })?,
    };
    let text = std::str::from_utf8(value.expose())
        .map_err(|_| ProviderError::Invalid("the pushed value is not UTF-8".into()))?;
    set_path(&mut obj, property, Value::String(text.to_owned()))?;
    Ok(crate::json::go_marshal_any(&Value::Object(obj), false).into_bytes())
}

/// sjson's `Set` as ESO calls it: `a.b` nests (objects created as needed), `\.` is a literal dot.
fn set_path(obj: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), ProviderError> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            '.' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let (last, parents) = parts.split_last().unwrap_or((&parts[0], &[]));
    let mut at = obj;
    for p in parents {
        let next = at
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        at = next.as_object_mut().ok_or_else(|| {
            ProviderError::Invalid(format!(
                "remoteRef.property {path:?}: {p:?} is not an object"
            ))
        })?;
    }
    at.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_merge_into_json_objects() {
        let v = merge(Some(br#"{"a":"1"}"#), &SecretBytes::from("2"), "b").unwrap();
        assert_eq!(v, br#"{"a":"1","b":"2"}"#);
        let v = merge(
            Some(br#"{"db":{"user":"u"}}"#),
            &SecretBytes::from("p"),
            "db.password",
        )
        .unwrap();
        assert_eq!(v, br#"{"db":{"password":"p","user":"u"}}"#);
        let v = merge(None, &SecretBytes::from("p"), "a\\.b").unwrap();
        assert_eq!(v, br#"{"a.b":"p"}"#);
        let v = merge(None, &SecretBytes::from("x"), "").unwrap();
        assert_eq!(v, b"x");
        assert!(merge(Some(b"not json"), &SecretBytes::from("x"), "p").is_err());
    }

    #[test]
    fn the_marker_is_reserved() {
        let meta: Map<String, Value> =
            serde_json::from_value(json!({"tags": {"team": "a"}})).unwrap();
        let t = user_tags(&meta).unwrap();
        assert_eq!(t["managed-by"], "external-secrets");
        assert_eq!(t["team"], "a");
        let meta: Map<String, Value> =
            serde_json::from_value(json!({"tags": {"managed-by": "me"}})).unwrap();
        assert!(user_tags(&meta).is_err());
        let id = new_version();
        assert_eq!(id.len(), 36);
        assert_ne!(id, new_version());
    }
}
