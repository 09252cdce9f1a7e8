//! PushSecret to Vault / OpenBao KV (`ESO:providers/v1/vault/client_push.go`): ESO's ownership
//! marker is `custom_metadata.managed-by: external-secrets` (KV v2 metadata; KV v1 stores it as
//! a `custom_metadata` key of the secret itself). A secret without it is never overwritten or
//! deleted. KV v2 metadata is written before data, so a retry after a failed data write finds
//! the marker. Every KV v2 data write is a check-and-set (`options.cas`) against the version the
//! push read: PushSecrets reconciled at once that write the same key (a ClusterPushSecret's, or
//! two writing different properties) would otherwise both write what they merged from the same
//! read, and one would undo the other; the one that loses reads again ([`CAS_ATTEMPTS`]). KV v1
//! has no check-and-set.

use std::collections::BTreeMap;

use hush_vault::{KvVersion, Method};
use serde_json::{Map, Value, json};

use super::{VaultProvider, build_path};
use crate::{MANAGED_BY, ProviderError, PushRef, RemoteRef, SecretBytes, push_metadata_spec};

const CUSTOM_METADATA: &str = "custom_metadata";

/// Reads and writes of one KV v2 push when another writer keeps winning the check-and-set.
const CAS_ATTEMPTS: usize = 5;

impl VaultProvider {
    fn metadata_path(&self, key: &str) -> String {
        build_path(self.mount.as_deref(), key, self.kv, "metadata")
    }

    /// The latest data of `key`, `None` when absent (or its latest version deleted).
    async fn current(&self, key: &str) -> Result<Option<Map<String, Value>>, ProviderError> {
        let r = RemoteRef {
            key: key.to_owned(),
            ..RemoteRef::default()
        };
        match self.read(&r).await {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err(ProviderError::Invalid(format!(
                "vault secret {key} is not a JSON object"
            ))),
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// KV v2 metadata of `key` (`Null` when there is none).
    async fn metadata(&self, key: &str) -> Result<Value, ProviderError> {
        let path = self.metadata_path(key);
        Ok(self
            .with_token(|t| {
                let path = path.clone();
                async move { self.session.client().kv_metadata(&t, &path).await }
            })
            .await?
            .unwrap_or(Value::Null))
    }

    /// KV v2 `custom_metadata` of `key` (empty when there is none).
    async fn custom_metadata(&self, key: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        Ok(string_map(&self.metadata(key).await?[CUSTOM_METADATA]))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        call: &'static str,
    ) -> Result<(), ProviderError> {
        let answer = self
            .with_token(|t| {
                let body = body.clone();
                async move {
                    self.session
                        .client()
                        .request(method, path, Some(&t), body.as_ref(), None)
                        .await
                }
            })
            .await;
        self.calls.record(crate::calls::VAULT, call, answer.is_ok());
        answer.map(|_| ())
    }

    pub(super) async fn push_value(
        &self,
        value: &SecretBytes,
        r: &PushRef,
    ) -> Result<(), ProviderError> {
        let meta = push_metadata_spec(r, &["customMetadata", "mergePolicy"])?;
        let path = self.data_path(&r.remote_key);
        if self.kv == KvVersion::V1 {
            let existing = self.current(&r.remote_key).await?;
            return self.push_kv1(&path, existing, value, r).await;
        }
        let mut attempt = 1;
        loop {
            // The version before the data: a write between the two reads fails the cas.
            let remote = self.metadata(&r.remote_key).await?;
            let existing = self.current(&r.remote_key).await?;
            match self
                .push_kv2(&path, existing, &remote, value, r, &meta)
                .await
            {
                Err(e) if attempt < CAS_ATTEMPTS && is_cas_mismatch(&e) => attempt += 1,
                done => return done,
            }
        }
    }

    async fn push_kv1(
        &self,
        path: &str,
        existing: Option<Map<String, Value>>,
        value: &SecretBytes,
        r: &PushRef,
    ) -> Result<(), ProviderError> {
        if r.metadata.as_ref().is_some_and(|m| !m.is_null()) {
            return Err(ProviderError::Invalid(
                "metadata is supported by KV v2 stores only".into(),
            ));
        }
        let mut existing = existing;
        if let Some(current) = existing.as_mut() {
            let marker = current.remove(CUSTOM_METADATA);
            if !marker.as_ref().is_some_and(is_managed) {
                return Err(not_managed(&r.remote_key));
            }
        }
        let (mut merged, changed) = merge(existing.as_ref(), value, &r.property)?;
        if existing.is_some() && !changed {
            return Ok(());
        }
        merged.insert(
            CUSTOM_METADATA.into(),
            json!({ MANAGED_BY.0: MANAGED_BY.1 }),
        );
        self.send(
            Method::Post,
            path,
            Some(Value::Object(merged)),
            "WriteSecretData",
        )
        .await
    }

    /// `remote` is the key's metadata as read before `existing`.
    async fn push_kv2(
        &self,
        path: &str,
        existing: Option<Map<String, Value>>,
        remote: &Value,
        value: &SecretBytes,
        r: &PushRef,
        meta: &Map<String, Value>,
    ) -> Result<(), ProviderError> {
        let (merged, data_changed) = merge(existing.as_ref(), value, &r.property)?;
        // 0: no version yet; a deleted latest version is overwritten at its number.
        let version = remote["current_version"].as_u64().unwrap_or(0);
        let remote = if existing.is_some() {
            let remote = string_map(&remote[CUSTOM_METADATA]);
            if remote.get(MANAGED_BY.0).map(String::as_str) != Some(MANAGED_BY.1) {
                return Err(not_managed(&r.remote_key));
            }
            Some(remote)
        } else {
            None
        };
        let wanted = wanted_metadata(remote.as_ref(), meta)?;
        let meta_changed = remote.as_ref() != Some(&wanted);
        if meta_changed {
            let body = json!({ CUSTOM_METADATA: wanted });
            self.send(
                Method::Post,
                &self.metadata_path(&r.remote_key),
                Some(body),
                "WriteSecretData",
            )
            .await?;
        }
        if data_changed || existing.is_none() {
            // Also what `checkAndSet.required` asks for.
            let body = json!({ "data": merged, "options": { "cas": version } });
            self.send(Method::Post, path, Some(body), "WriteSecretData")
                .await?;
        }
        Ok(())
    }

    pub(super) async fn push_exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        Ok(match self.current(&r.remote_key).await? {
            None => false,
            Some(_) if r.property.is_empty() => true,
            Some(data) => data.contains_key(&r.property),
        })
    }

    pub(super) async fn push_delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        let Some(mut data) = self.current(&r.remote_key).await? else {
            return Ok(());
        };
        let managed = match self.kv {
            KvVersion::V1 => data.get(CUSTOM_METADATA).is_some_and(is_managed),
            _ => {
                self.custom_metadata(&r.remote_key)
                    .await?
                    .get(MANAGED_BY.0)
                    .map(String::as_str)
                    == Some(MANAGED_BY.1)
            }
        };
        if !managed {
            return Ok(());
        }
        let path = self.data_path(&r.remote_key);
        if !r.property.is_empty() {
            data.remove(&r.property);
            let only_marker = data.len() == 1 && data.contains_key(CUSTOM_METADATA);
            if self.kv == KvVersion::V1 && only_marker {
                data.clear();
            }
            if !data.is_empty() {
                let body = match self.kv {
                    KvVersion::V1 => Value::Object(data),
                    _ => json!({ "data": data }),
                };
                return self
                    .send(Method::Post, &path, Some(body), "DeleteSecret")
                    .await;
            }
        }
        self.send(Method::Delete, &path, None, "DeleteSecret")
            .await?;
        if self.kv != KvVersion::V1 {
            self.send(
                Method::Delete,
                &self.metadata_path(&r.remote_key),
                None,
                "DeleteSecret",
            )
            .await?;
        }
        Ok(())
    }
}

/// Vault refused a write whose `options.cas` is not the key's current version: another writer
/// came first.
fn is_cas_mismatch(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Invalid(m) if m.contains("check-and-set parameter did not match"))
}

fn not_managed(key: &str) -> ProviderError {
    ProviderError::Invalid(format!(
        "vault secret {key} exists and is not managed by external-secrets \
         (no custom_metadata managed-by: external-secrets); hush does not overwrite it"
    ))
}

fn is_managed(marker: &Value) -> bool {
    marker[MANAGED_BY.0].as_str() == Some(MANAGED_BY.1)
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The data to write and whether it differs from `existing`: the whole value (a JSON object)
/// or `property` set to the value's text.
fn merge(
    existing: Option<&Map<String, Value>>,
    value: &SecretBytes,
    property: &str,
) -> Result<(Map<String, Value>, bool), ProviderError> {
    if property.is_empty() {
        let incoming: Map<String, Value> =
            serde_json::from_slice(value.expose()).map_err(|_| {
                ProviderError::Invalid(
                    "a push without remoteRef.property needs a JSON object value (push the whole \
                 Secret, or set property)"
                        .into(),
                )
            })?;
        let changed = existing != Some(&incoming);
        return Ok((incoming, changed));
    }
    let text = std::str::from_utf8(value.expose())
        .map_err(|_| ProviderError::Invalid("the pushed value is not UTF-8".into()))?;
    let mut out = existing.cloned().unwrap_or_default();
    let changed = out.get(property).and_then(Value::as_str) != Some(text);
    out.insert(property.to_owned(), Value::String(text.to_owned()));
    Ok((out, changed))
}

/// KV v2 `custom_metadata` after a push: the marker plus `customMetadata`, merged into the
/// remote one (`mergePolicy: Merge`, the default) or replacing it (`Replace`).
fn wanted_metadata(
    remote: Option<&BTreeMap<String, String>>,
    meta: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let policy = meta
        .get("mergePolicy")
        .and_then(Value::as_str)
        .unwrap_or("Merge");
    let mut out = match policy {
        "" | "Merge" => remote.cloned().unwrap_or_default(),
        "Replace" => BTreeMap::new(),
        other => {
            return Err(ProviderError::Invalid(format!(
                "metadata.spec.mergePolicy {other:?} (Merge or Replace)"
            )));
        }
    };
    if let Some(custom) = meta.get("customMetadata") {
        let map = custom.as_object().ok_or_else(|| {
            ProviderError::Invalid("metadata.spec.customMetadata must be a map".into())
        })?;
        for (k, v) in map {
            let v = v.as_str().ok_or_else(|| {
                ProviderError::Invalid(format!("metadata.spec.customMetadata.{k} must be a string"))
            })?;
            out.insert(k.clone(), v.to_owned());
        }
    }
    out.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_properties_and_whole_values() {
        let existing: Map<String, Value> =
            serde_json::from_value(json!({"a": "1", "b": "2"})).unwrap();
        let (m, changed) = merge(Some(&existing), &SecretBytes::from("2"), "b").unwrap();
        assert!(!changed);
        assert_eq!(m, existing);
        let (m, changed) = merge(Some(&existing), &SecretBytes::from("3"), "c").unwrap();
        assert!(changed);
        assert_eq!(m["c"], "3");
        assert_eq!(m["a"], "1");
        let (m, changed) = merge(None, &SecretBytes::from(r#"{"x":"y"}"#), "").unwrap();
        assert!(changed);
        assert_eq!(m["x"], "y");
        let err = merge(None, &SecretBytes::from("canary-not-json"), "").unwrap_err();
        assert!(!err.to_string().contains("canary"));
    }

    #[test]
    fn metadata_keeps_the_marker() {
        let remote: BTreeMap<String, String> = [
            ("managed-by".into(), "external-secrets".into()),
            ("team".into(), "a".into()),
        ]
        .into();
        let meta: Map<String, Value> =
            serde_json::from_value(json!({"customMetadata": {"managed-by": "me", "env": "prod"}}))
                .unwrap();
        let w = wanted_metadata(Some(&remote), &meta).unwrap();
        assert_eq!(w["managed-by"], "external-secrets");
        assert_eq!(w["team"], "a");
        assert_eq!(w["env"], "prod");
        let meta: Map<String, Value> =
            serde_json::from_value(json!({"mergePolicy": "Replace"})).unwrap();
        let w = wanted_metadata(Some(&remote), &meta).unwrap();
        assert_eq!(w.len(), 1);
        let meta: Map<String, Value> =
            serde_json::from_value(json!({"mergePolicy": "Sideways"})).unwrap();
        assert!(wanted_metadata(None, &meta).is_err());
    }
}
