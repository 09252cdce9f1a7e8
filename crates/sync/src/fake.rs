//! ESO's `fake` provider: static values written in the store itself (`spec.provider.fake.data[]`
//! with `key`, `value`, `valueMap`, `version`), for tests, demos and docs without a backend.
//!
//! Semantics follow ESO v0.16 (`ESO:pkg/provider/fake/fake.go`):
//! - `data[].remoteRef` matches an entry with the same `key` **and** the same `version` (an
//!   entry without a version only answers a ref without one). A later entry with the same key
//!   and version replaces an earlier one.
//! - `property` is a gjson path over the value; a missing property is "not found" (as ESO).
//! - `dataFrom.extract` reads the entry's `valueMap` when it has one (ESO's older `valueMap`,
//!   meant for `dataFrom`), otherwise parses `value` as a JSON object: string members unquoted,
//!   others as their JSON text.
//! - `dataFrom.find` matches `name.regexp` over keys and returns each key's greatest `version`
//!   (string order, as ESO). `find.path` and `find.tags` are refused: ESO ignores `path` and
//!   errors or ignores `tags`; hush never ignores a field silently.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::{
    Built, Capabilities, CredentialSource, FindQuery, ProviderError, ProviderFactory, RemoteRef,
    SecretBytes, SecretProvider, StoreScope, decode, digest, refuse_unknown_fields,
};

/// Entries a fake store may hold (a store is one Kubernetes object; this bounds the work per
/// read, not the object size, which the API server already bounds).
const MAX_ENTRIES: usize = 10_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FakeSpec {
    #[serde(default)]
    data: Vec<FakeEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FakeEntry {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    value_map: BTreeMap<String, String>,
    #[serde(default)]
    version: String,
}

/// One stored value (zeroized on drop).
struct Entry {
    value: Zeroizing<String>,
    value_map: Option<BTreeMap<String, Zeroizing<String>>>,
}

/// Builds `fake` providers.
#[derive(Debug)]
pub struct Factory;

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn build(
        &self,
        spec: &Value,
        _scope: &StoreScope,
        _creds: &dyn CredentialSource,
    ) -> Result<Built, ProviderError> {
        refuse_unknown_fields("spec.provider.fake", spec, &["data"])?;
        if let Some(entries) = spec["data"].as_array() {
            for (i, e) in entries.iter().enumerate() {
                refuse_unknown_fields(
                    &format!("spec.provider.fake.data[{i}]"),
                    e,
                    &["key", "value", "valueMap", "version"],
                )?;
            }
        }
        let s: FakeSpec = decode("fake", spec)?;
        let provider = FakeProvider::new(s.data)?;
        // The spec is the whole "backend": two stores with the same data may share reads.
        let identity = digest(&[b"fake", spec.to_string().as_bytes()]);
        Ok(Built {
            provider: Arc::new(provider),
            identity,
            referent: false,
        })
    }
}

/// A fake store's entries by `(key, version)`.
pub struct FakeProvider {
    entries: BTreeMap<(String, String), Entry>,
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl FakeProvider {
    fn new(data: Vec<FakeEntry>) -> Result<Self, ProviderError> {
        if data.len() > MAX_ENTRIES {
            return Err(ProviderError::Invalid(format!(
                "spec.provider.fake.data has {} entries; at most {MAX_ENTRIES} are allowed",
                data.len()
            )));
        }
        let mut entries = BTreeMap::new();
        for (i, e) in data.into_iter().enumerate() {
            if e.key.is_empty() {
                return Err(ProviderError::Invalid(format!(
                    "spec.provider.fake.data[{i}].key must be set"
                )));
            }
            if e.value.is_empty() && e.value_map.is_empty() {
                return Err(ProviderError::Invalid(format!(
                    "spec.provider.fake.data[{i}]: set value (or valueMap)"
                )));
            }
            let value_map = (!e.value_map.is_empty()).then(|| {
                e.value_map
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(v)))
                    .collect()
            });
            entries.insert(
                (e.key, e.version),
                Entry {
                    value: Zeroizing::new(e.value),
                    value_map,
                },
            );
        }
        Ok(Self { entries })
    }

    fn entry(&self, r: &RemoteRef) -> Result<&Entry, ProviderError> {
        if r.metadata {
            return Err(ProviderError::Invalid(
                "metadataPolicy Fetch is not supported by the fake provider".into(),
            ));
        }
        self.entries
            .get(&(r.key.clone(), r.version.clone()))
            .ok_or_else(|| not_found(r))
    }
}

fn not_found(r: &RemoteRef) -> ProviderError {
    ProviderError::NotFound(format!(
        "fake key {:?} version {:?} property {:?}",
        r.key, r.version, r.property
    ))
}

#[async_trait]
impl SecretProvider for FakeProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let e = self.entry(r)?;
        if r.property.is_empty() {
            return Ok(SecretBytes::from_slice(e.value.as_bytes()));
        }
        crate::json::gjson_string(&e.value, &r.property)
            .map(|v| SecretBytes::new(v.into_bytes()))
            .ok_or_else(|| not_found(r))
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let e = self.entry(r)?;
        if let (Some(map), true) = (&e.value_map, r.property.is_empty()) {
            return Ok(map
                .iter()
                .map(|(k, v)| (k.clone(), SecretBytes::from_slice(v.as_bytes())))
                .collect());
        }
        let text = Zeroizing::new(self.get(r).await?.expose().to_vec());
        let members: BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(&text).map_err(|_| {
                ProviderError::Invalid(format!(
                    "fake key {:?} version {:?}: unable to unmarshal secret: the value is not a \
                     JSON object",
                    r.key, r.version
                ))
            })?;
        Ok(members
            .into_iter()
            .map(|(k, v)| (k, SecretBytes::new(crate::json::unquote(&v).into_bytes())))
            .collect())
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        if !q.path.is_empty() {
            return Err(ProviderError::Invalid(
                "find.path is not supported by the fake provider (use find.name.regexp)".into(),
            ));
        }
        if !q.tags.is_empty() {
            return Err(ProviderError::Invalid(
                "find.tags is not supported by the fake provider (use find.name.regexp)".into(),
            ));
        }
        let re = regex::Regex::new(&q.name_regexp)
            .map_err(|e| ProviderError::Invalid(format!("find.name.regexp: {e}")))?;
        // Entries are ordered by (key, version): the last one of each key has its greatest
        // version in string order, which is what ESO returns.
        let mut out = BTreeMap::new();
        for ((key, _version), e) in &self.entries {
            if re.is_match(key) {
                out.insert(key.clone(), SecretBytes::from_slice(e.value.as_bytes()));
            }
        }
        Ok(out)
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn provider(spec: Value) -> Result<FakeProvider, ProviderError> {
        refuse_unknown_fields("spec.provider.fake", &spec, &["data"])?;
        FakeProvider::new(decode::<FakeSpec>("fake", &spec)?.data)
    }

    fn r(key: &str, version: &str, property: &str) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            version: version.into(),
            property: property.into(),
            metadata: false,
        }
    }

    fn text(b: &SecretBytes) -> &str {
        std::str::from_utf8(b.expose()).unwrap()
    }

    /// ESO's documented store (docs/snippets/fake-provider-store.yaml).
    fn documented() -> FakeProvider {
        provider(json!({"data": [
            {"key": "/foo/bar", "value": "HELLO1", "version": "v1"},
            {"key": "/foo/bar", "value": "HELLO2", "version": "v2"},
            {"key": "/foo/baz", "value": "{\"john\": \"doe\"}", "version": "v1"},
        ]}))
        .unwrap()
    }

    #[tokio::test]
    async fn versions_must_match_exactly() {
        let p = documented();
        assert_eq!(
            text(&p.get(&r("/foo/bar", "v1", "")).await.unwrap()),
            "HELLO1"
        );
        assert_eq!(
            text(&p.get(&r("/foo/bar", "v2", "")).await.unwrap()),
            "HELLO2"
        );
        // No version asked: only an entry without a version would answer (ESO).
        assert!(
            p.get(&r("/foo/bar", "", ""))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            p.get(&r("/foo/bar", "v3", ""))
                .await
                .unwrap_err()
                .is_not_found()
        );
        let m = p.get_map(&r("/foo/baz", "v1", "")).await.unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(text(&m["john"]), "doe");
    }

    #[tokio::test]
    async fn property_is_gjson_with_raw_text() {
        let p = provider(json!({"data": [{"key": "k", "value":
            "{\"s\":\"x\",\"n\":1.50,\"o\":{ \"b\":1,\"a\":[true, null]},\"d.e\":\"dot\",\"z\":null}"}]}))
        .unwrap();
        let get = |prop: &str| {
            let p = &p;
            let prop = prop.to_owned();
            async move { p.get(&r("k", "", &prop)).await }
        };
        assert_eq!(text(&get("s").await.unwrap()), "x");
        assert_eq!(text(&get("n").await.unwrap()), "1.50");
        assert_eq!(
            text(&get("o").await.unwrap()),
            "{ \"b\":1,\"a\":[true, null]}"
        );
        assert_eq!(text(&get("o.a.0").await.unwrap()), "true");
        assert_eq!(text(&get("d\\.e").await.unwrap()), "dot");
        assert_eq!(text(&get("z").await.unwrap()), "");
        assert!(get("missing").await.unwrap_err().is_not_found());
        assert!(get("o.a.9").await.unwrap_err().is_not_found());
        let m = p.get_map(&r("k", "", "")).await.unwrap();
        assert_eq!(text(&m["n"]), "1.50");
        assert_eq!(text(&m["o"]), "{ \"b\":1,\"a\":[true, null]}");
        // A value that is not JSON has no properties and no map.
        let p = provider(json!({"data": [{"key": "k", "value": "plain"}]})).unwrap();
        assert!(p.get(&r("k", "", "a")).await.unwrap_err().is_not_found());
        assert!(matches!(
            p.get_map(&r("k", "", "")).await,
            Err(ProviderError::Invalid(m)) if !m.contains("plain")
        ));
    }

    #[tokio::test]
    async fn value_map_serves_extract() {
        let p = provider(json!({"data": [
            {"key": "m", "valueMap": {"user": "u", "pass": "p"}},
        ]}))
        .unwrap();
        let m = p.get_map(&r("m", "", "")).await.unwrap();
        assert_eq!(
            m.iter()
                .map(|(k, v)| (k.as_str(), text(v)))
                .collect::<Vec<_>>(),
            [("pass", "p"), ("user", "u")]
        );
    }

    #[tokio::test]
    async fn find_returns_the_greatest_version_of_matching_keys() {
        let p = provider(json!({"data": [
            {"key": "/app/a", "value": "a2", "version": "v2"},
            {"key": "/app/a", "value": "a1", "version": "v1"},
            {"key": "/app/b", "value": "b"},
            {"key": "/other", "value": "o"},
        ]}))
        .unwrap();
        let found = p
            .find(&FindQuery {
                name_regexp: "^/app/".into(),
                ..FindQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            found
                .iter()
                .map(|(k, v)| (k.as_str(), text(v)))
                .collect::<Vec<_>>(),
            [("/app/a", "a2"), ("/app/b", "b")]
        );
        for bad in [
            FindQuery {
                tags: [("a".into(), "b".into())].into(),
                ..FindQuery::default()
            },
            FindQuery {
                path: "/app".into(),
                ..FindQuery::default()
            },
            FindQuery {
                name_regexp: "(".into(),
                ..FindQuery::default()
            },
        ] {
            assert!(matches!(p.find(&bad).await, Err(ProviderError::Invalid(_))));
        }
    }

    #[test]
    fn bad_specs_are_refused_by_field() {
        let err = |spec: Value| match provider(spec) {
            Err(ProviderError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(json!({"data": [{"value": "v"}]})).contains("data[0].key"));
        assert!(err(json!({"data": [{"key": "k"}]})).contains("data[0]"));
        assert!(err(json!({"data": [], "extra": 1})).contains("spec.provider.fake.extra"));
        assert!(err(json!({"data": "x"})).contains("invalid fake provider spec"));
    }

    #[tokio::test]
    async fn unknown_entry_fields_are_named_and_values_never_shown() {
        struct NoCreds;
        #[async_trait]
        impl CredentialSource for NoCreds {
            async fn secret_key(&self, _: &crate::KeyRef) -> Result<SecretBytes, ProviderError> {
                unreachable!()
            }
            async fn config_map_key(&self, _: &crate::KeyRef) -> Result<String, ProviderError> {
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
        }
        let scope = StoreScope::new("SecretStore", "s", Some("ns".into()));
        let spec = json!({"data": [{"key": "k", "value": "CANARY-7f3", "secretRef": {}}]});
        let e = Factory.build(&spec, &scope, &NoCreds).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("spec.provider.fake.data[0].secretRef"),
            "{msg}"
        );
        assert!(!msg.contains("CANARY-7f3"));
        let spec = json!({"data": [{"key": "k", "value": "CANARY-7f3"}]});
        let built = Factory.build(&spec, &scope, &NoCreds).await.unwrap();
        assert!(!format!("{:?}", built.provider).contains("CANARY"));
        let e = built.provider.get(&r("k", "", "nope")).await.unwrap_err();
        assert!(!e.to_string().contains("CANARY"));
    }
}
