//! ESO's `VaultDynamicSecret` generator (`ESO:pkg/generator/vault`): one call to a Vault or
//! OpenBao path (a PKI certificate, database credentials, `auth/token/create`) through the same
//! client, auth methods and sessions as the `vault` provider.
//!
//! - `method`: unset or `GET` reads, `LIST` lists, `DELETE` deletes, anything else writes (POST)
//!   `parameters` as the JSON body.
//! - `resultType`: `Data` (default: the answer's `data`), `Auth` (its `auth`, with the fields of
//!   Vault's Go `SecretAuth`), `Raw` (the whole answer, as Vault's Go `Secret`).
//! - Values: strings as they are, numbers as text, objects and arrays as Go's `json.Marshal`,
//!   booleans `true`/`false`, null empty (ESO's `GetByteValue`).
//! - No answer (204, or a read of a missing path) is an error unless `allowEmptyResponse`.
//! - `retrySettings` retries a call that failed on the way (unreachable, 5xx), as the store's.
//! - Credentials resolve in the namespace of the object that references the generator.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hush_vault::Method;
use serde_json::{Map, Value};

use super::{Generator, relabel};
use crate::calls::Calls;
use crate::json::{go_float_text, go_marshal};
use crate::retry::RetrySettings;
use crate::{CredentialSource, ProviderError, SecretBytes, StoreScope, refuse_unknown_fields};

const FIELDS: &[&str] = &[
    "controller",
    "method",
    "parameters",
    "resultType",
    "retrySettings",
    "provider",
    "path",
    "allowEmptyResponse",
];

/// The `VaultDynamicSecret` generator; its Vault sessions are shared by every generator object
/// with the same server and credentials (one login, renewed).
#[derive(Debug)]
pub struct VaultDynamicSecret {
    factory: crate::vault::Factory,
}

impl Default for VaultDynamicSecret {
    fn default() -> Self {
        Self::new(Calls::default())
    }
}

impl VaultDynamicSecret {
    /// The generator, counting its Vault calls in `calls`.
    pub fn new(calls: Calls) -> Self {
        Self {
            factory: crate::vault::Factory::vault(calls),
        }
    }
}

/// What part of the answer becomes the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResultType {
    Data,
    Auth,
    Raw,
}

#[async_trait]
impl Generator for VaultDynamicSecret {
    fn kind(&self) -> &'static str {
        "VaultDynamicSecret"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "vaultDynamicSecretSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        refuse_unknown_fields("spec", spec, FIELDS)?;
        let path = spec["path"]
            .as_str()
            .map(|p| p.trim_start_matches('/'))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ProviderError::Invalid("spec.path is required".into()))?;
        let method = method(spec["method"].as_str().unwrap_or_default());
        let result_type = match spec["resultType"].as_str().unwrap_or_default() {
            "" | "Data" => ResultType::Data,
            "Auth" => ResultType::Auth,
            "Raw" => ResultType::Raw,
            other => {
                return Err(ProviderError::Invalid(format!(
                    "spec.resultType {other:?} (Data, Auth or Raw)"
                )));
            }
        };
        let body = match &spec["parameters"] {
            Value::Null => Value::Object(Map::new()),
            p @ Value::Object(_) => p.clone(),
            _ => {
                return Err(ProviderError::Invalid(
                    "spec.parameters must be an object".into(),
                ));
            }
        };
        let retry = &spec["retrySettings"];
        refuse_unknown_fields(
            "spec.retrySettings",
            retry,
            &["maxRetries", "retryInterval"],
        )?;
        let retry = RetrySettings::parse(
            retry["maxRetries"]
                .as_i64()
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
            retry["retryInterval"].as_str(),
        )?;
        let provider = &spec["provider"];
        if !provider.is_object() {
            return Err(ProviderError::Invalid("spec.provider is required".into()));
        }
        let (client, _) = self
            .factory
            .build_vault(provider, scope, creds)
            .await
            .map_err(|e| relabel(e, "spec.provider.vault", "spec.provider"))?;
        let body = (method == Method::Post).then_some(&body);
        let mut tries = 0;
        let answer = loop {
            match client.call(method, path, body).await {
                Err(ProviderError::Transient(_))
                    if retry.is_some_and(|r| tries < r.max_retries) =>
                {
                    tries += 1;
                    if let Some(r) = retry {
                        tokio::time::sleep(r.interval).await;
                    }
                }
                other => break other?,
            }
        };
        let Some(answer) = answer else {
            if spec["allowEmptyResponse"].as_bool() == Some(true) {
                return Ok(BTreeMap::new());
            }
            return Err(ProviderError::Invalid(format!(
                "unable to get dynamic secret: empty response from Vault for {path}"
            )));
        };
        values(&answer, result_type)
    }
}

/// ESO's choice of client call by `method`.
fn method(m: &str) -> Method {
    match m {
        "" | "GET" => Method::Get,
        "LIST" => Method::List,
        "DELETE" => Method::Delete,
        _ => Method::Post,
    }
}

/// The data of `answer` for `result_type`, each value as ESO's `GetByteValue` writes it.
fn values(
    answer: &Value,
    result_type: ResultType,
) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
    // Data keeps Vault's numbers as written (the Go client decodes with UseNumber); Auth and
    // Raw go through json.Marshal/Unmarshal into float64.
    let (data, float) = match result_type {
        ResultType::Data => (
            answer["data"].as_object().cloned().unwrap_or_default(),
            false,
        ),
        ResultType::Auth => (go_auth(&answer["auth"]).unwrap_or_default(), true),
        ResultType::Raw => (go_secret(answer), true),
    };
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), SecretBytes::from(byte_value(v, float).as_str())))
        .collect())
}

/// ESO's `GetByteValue` of one decoded JSON value.
fn byte_value(v: &Value, float: bool) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if float => go_float_text(n),
        Value::Number(n) => n.to_string(),
        other => go_marshal(other),
    }
}

/// Vault's Go `SecretAuth` as `json.Marshal` writes it (every field, Go's zero values for the
/// missing ones); `None` when the answer has no `auth`.
fn go_auth(auth: &Value) -> Option<Map<String, Value>> {
    let a = auth.as_object()?;
    let field = |k: &str, zero: Value| a.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(zero);
    let mut out = Map::new();
    for k in ["client_token", "accessor", "entity_id"] {
        out.insert(k.into(), field(k, Value::from("")));
    }
    for k in [
        "policies",
        "token_policies",
        "identity_policies",
        "metadata",
        "mfa_requirement",
    ] {
        out.insert(k.into(), field(k, Value::Null));
    }
    for k in ["orphan", "renewable"] {
        out.insert(k.into(), field(k, Value::Bool(false)));
    }
    out.insert(
        "lease_duration".into(),
        field("lease_duration", Value::from(0)),
    );
    Some(out)
}

/// Vault's Go `Secret` as `json.Marshal` writes it.
fn go_secret(answer: &Value) -> Map<String, Value> {
    let field = |k: &str, zero: Value| {
        answer
            .get(k)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(zero)
    };
    let mut out = Map::new();
    out.insert("request_id".into(), field("request_id", Value::from("")));
    out.insert("lease_id".into(), field("lease_id", Value::from("")));
    out.insert(
        "lease_duration".into(),
        field("lease_duration", Value::from(0)),
    );
    out.insert("renewable".into(), field("renewable", Value::Bool(false)));
    out.insert("data".into(), field("data", Value::Null));
    out.insert("warnings".into(), field("warnings", Value::Null));
    if let Some(auth) = go_auth(&answer["auth"]) {
        out.insert("auth".into(), Value::Object(auth));
    }
    // omitempty members.
    if let Some(w) = answer.get("wrap_info").filter(|w| w.is_object()) {
        out.insert("wrap_info".into(), w.clone());
    }
    if let Some(m) = answer["mount_type"].as_str().filter(|m| !m.is_empty()) {
        out.insert("mount_type".into(), Value::from(m));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(m: &BTreeMap<String, SecretBytes>, k: &str) -> String {
        String::from_utf8(m[k].expose().to_vec()).unwrap()
    }

    #[test]
    fn result_types_are_formatted_as_eso() {
        let answer = json!({"request_id": "r", "lease_id": "", "lease_duration": 0,
            "renewable": false, "data": {"n": 10, "s": "x", "o": {"b": 1, "a": "<"}, "z": null},
            "warnings": null,
            "auth": {"client_token": "t", "policies": ["default"], "lease_duration": 3600,
                "renewable": true, "metadata": null}});
        let d = values(&answer, ResultType::Data).unwrap();
        assert_eq!(text(&d, "n"), "10");
        assert_eq!(text(&d, "s"), "x");
        assert_eq!(text(&d, "o"), r#"{"a":"\u003c","b":1}"#);
        assert_eq!(text(&d, "z"), "");
        let a = values(&answer, ResultType::Auth).unwrap();
        assert_eq!(text(&a, "client_token"), "t");
        assert_eq!(text(&a, "policies"), r#"["default"]"#);
        assert_eq!(text(&a, "lease_duration"), "3600");
        assert_eq!(text(&a, "renewable"), "true");
        assert_eq!(text(&a, "orphan"), "false");
        assert_eq!(text(&a, "accessor"), "");
        assert_eq!(a.len(), 11);
        let r = values(&answer, ResultType::Raw).unwrap();
        assert_eq!(text(&r, "request_id"), "r");
        assert!(text(&r, "auth").contains(r#""client_token":"t""#));
        assert!(!r.contains_key("wrap_info"));
        assert_eq!(text(&r, "warnings"), "");
        // No auth in the answer: Auth is empty (ESO: json null into the map).
        let none = values(&json!({"data": {}}), ResultType::Auth).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn methods_as_eso() {
        assert_eq!(method(""), Method::Get);
        assert_eq!(method("GET"), Method::Get);
        assert_eq!(method("LIST"), Method::List);
        assert_eq!(method("DELETE"), Method::Delete);
        assert_eq!(method("POST"), Method::Post);
        assert_eq!(method("PUT"), Method::Post);
    }
}
