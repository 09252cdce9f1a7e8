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
//! - PushSecret keeps pushed values in the controller's memory, per store, as ESO does; they
//!   answer refs without a version (`data`, `extract`, `find`), after the store's own entries.
//!   A key the store's `data` holds without a version is refused ("key already exists", ESO).
//!   Differences, each because ESO would drop a field silently: a `property` sets that member
//!   of a JSON object value (ESO ignores it); a whole-Secret push stores the Secret as a JSON
//!   object (ESO stores an empty value); `deletionPolicy: Delete` removes what was pushed (ESO
//!   does nothing); `metadata` is refused. Pushed values are per store *object* (kind,
//!   namespace, name), not per store name as in ESO, where a SecretStore of one namespace sees
//!   what a same-named store of another pushed. Budget: [`MAX_PUSHED_BYTES`] per store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::{
    Built, Capabilities, CredentialSource, FindQuery, ProviderError, ProviderFactory, PushRef,
    RemoteRef, SecretBytes, SecretProvider, StoreScope, decode, digest, push_metadata_spec,
    refuse_unknown_fields,
};

/// Entries a fake store may hold (a store is one Kubernetes object; this bounds the work per
/// read, not the object size, which the API server already bounds).
const MAX_ENTRIES: usize = 10_000;
/// The most bytes of pushed values (keys and values) one fake store keeps in memory.
pub const MAX_PUSHED_BYTES: usize = 16 * 1024 * 1024;

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

/// Values pushed to one fake store, by remote key (zeroized on drop).
#[derive(Default)]
struct Pushed {
    values: Mutex<BTreeMap<String, Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushed").finish_non_exhaustive()
    }
}

impl Pushed {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Zeroizing<Vec<u8>>>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds `fake` providers; holds what was pushed to each fake store (the controller's
/// memory, as ESO's provider holds it).
#[derive(Debug, Default)]
pub struct Factory {
    pushed: Mutex<HashMap<String, Arc<Pushed>>>,
}

impl Factory {
    /// The pushed values of the store `scope` names: a ClusterSecretStore's are shared by every
    /// namespace that uses it, a SecretStore's are its namespace's.
    fn pushed_for(&self, scope: &StoreScope) -> Arc<Pushed> {
        let id = if scope.kind == "ClusterSecretStore" {
            format!("ClusterSecretStore/{}", scope.name)
        } else {
            format!(
                "{}/{}/{}",
                scope.kind,
                scope.namespace.as_deref().unwrap_or_default(),
                scope.name
            )
        };
        let mut all = self.pushed.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(all.entry(id).or_default())
    }
}

#[async_trait]
impl ProviderFactory for Factory {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn build(
        &self,
        spec: &Value,
        scope: &StoreScope,
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
        let mut provider = FakeProvider::new(s.data)?;
        provider.pushed = self.pushed_for(scope);
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
    pushed: Arc<Pushed>,
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
        Ok(Self {
            entries,
            pushed: Arc::default(),
        })
    }

    /// The store's entry for `r`, else (no version asked) a pushed value.
    fn entry(&self, r: &RemoteRef) -> Result<Found<'_>, ProviderError> {
        if r.metadata {
            return Err(ProviderError::Invalid(
                "metadataPolicy Fetch is not supported by the fake provider".into(),
            ));
        }
        if let Some(e) = self.entries.get(&(r.key.clone(), r.version.clone())) {
            return Ok(Found::Store(e));
        }
        if r.version.is_empty()
            && let Some(v) = self.pushed.lock().get(&r.key)
        {
            return Ok(Found::Pushed(v.clone()));
        }
        Err(not_found(r))
    }

    /// A pushed key the store's own entries do not hold without a version.
    fn pushable(&self, key: &str) -> Result<(), ProviderError> {
        if self.entries.contains_key(&(key.to_owned(), String::new())) {
            return Err(ProviderError::Invalid(format!(
                "fake key {key:?}: key already exists in spec.provider.fake.data"
            )));
        }
        Ok(())
    }
}

/// What a read found.
enum Found<'a> {
    Store(&'a Entry),
    Pushed(Zeroizing<Vec<u8>>),
}

impl Found<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Store(e) => e.value.as_bytes(),
            Self::Pushed(v) => v,
        }
    }
}

/// `value` with member `property` set to `new` (a pushed value that is a JSON object, or
/// none yet).
fn with_member(
    key: &str,
    value: Option<&[u8]>,
    property: &str,
    new: &SecretBytes,
) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let mut obj: serde_json::Map<String, Value> = match value {
        None => serde_json::Map::new(),
        Some(v) => serde_json::from_slice(v).map_err(|_| {
            ProviderError::Invalid(format!(
                "fake key {key:?}: the pushed value is not a JSON object, so property                  {property:?} cannot be set in it"
            ))
        })?,
    };
    obj.insert(
        property.to_owned(),
        Value::String(String::from_utf8_lossy(new.expose()).into_owned()),
    );
    let v = Value::Object(obj);
    let text = Zeroizing::new(crate::json::go_marshal_any(&v, false).into_bytes());
    crate::json::zeroize_strings(v);
    Ok(text)
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
            return Ok(SecretBytes::from_slice(e.bytes()));
        }
        std::str::from_utf8(e.bytes())
            .ok()
            .and_then(|text| crate::json::gjson_string(text, &r.property))
            .map(|v| SecretBytes::new(v.into_bytes()))
            .ok_or_else(|| not_found(r))
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let e = self.entry(r)?;
        if let (
            Found::Store(Entry {
                value_map: Some(map),
                ..
            }),
            true,
        ) = (&e, r.property.is_empty())
        {
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
        for (key, v) in self.pushed.lock().iter() {
            if re.is_match(key) {
                out.insert(key.clone(), SecretBytes::from_slice(v));
            }
        }
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
        Capabilities::ReadWrite
    }

    async fn push(&self, value: &SecretBytes, r: &PushRef) -> Result<(), ProviderError> {
        push_metadata_spec(r, &[])?;
        self.pushable(&r.remote_key)?;
        let mut pushed = self.pushed.lock();
        let new = if r.property.is_empty() {
            Zeroizing::new(value.expose().to_vec())
        } else {
            let old = pushed.get(&r.remote_key).map(|v| v.as_slice());
            with_member(&r.remote_key, old, &r.property, value)?
        };
        let others: usize = pushed
            .iter()
            .filter(|(k, _)| **k != r.remote_key)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if others + r.remote_key.len() + new.len() > MAX_PUSHED_BYTES
            || (pushed.len() >= MAX_ENTRIES && !pushed.contains_key(&r.remote_key))
        {
            return Err(ProviderError::Invalid(format!(
                "fake key {:?}: a fake store keeps at most {MAX_PUSHED_BYTES} bytes and                  {MAX_ENTRIES} pushed keys",
                r.remote_key
            )));
        }
        pushed.insert(r.remote_key.clone(), new);
        Ok(())
    }

    async fn exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        if self
            .entries
            .contains_key(&(r.remote_key.clone(), String::new()))
        {
            return Ok(true);
        }
        let pushed = self.pushed.lock();
        let Some(v) = pushed.get(&r.remote_key) else {
            return Ok(false);
        };
        if r.property.is_empty() {
            return Ok(true);
        }
        let obj: serde_json::Map<String, Value> = serde_json::from_slice(v).unwrap_or_default();
        Ok(obj.contains_key(&r.property))
    }

    async fn delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        let mut pushed = self.pushed.lock();
        if r.property.is_empty() {
            pushed.remove(&r.remote_key);
            return Ok(());
        }
        let Some(v) = pushed.get(&r.remote_key) else {
            return Ok(());
        };
        let Ok(mut obj) = serde_json::from_slice::<serde_json::Map<String, Value>>(v) else {
            return Ok(());
        };
        if obj.remove(&r.property).is_none() {
            return Ok(());
        }
        if obj.is_empty() {
            pushed.remove(&r.remote_key);
        } else {
            let v = Value::Object(obj);
            let text = Zeroizing::new(crate::json::go_marshal_any(&v, false).into_bytes());
            crate::json::zeroize_strings(v);
            pushed.insert(r.remote_key.clone(), text);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NoCreds;
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
        let scope = StoreScope::new("SecretStore", "s", Some("ns".into()));
        let spec = json!({"data": [{"key": "k", "value": "CANARY-7f3", "secretRef": {}}]});
        let e = Factory::default()
            .build(&spec, &scope, &NoCreds)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("spec.provider.fake.data[0].secretRef"),
            "{msg}"
        );
        assert!(!msg.contains("CANARY-7f3"));
        let spec = json!({"data": [{"key": "k", "value": "CANARY-7f3"}]});
        let built = Factory::default()
            .build(&spec, &scope, &NoCreds)
            .await
            .unwrap();
        assert!(!format!("{:?}", built.provider).contains("CANARY"));
        let e = built.provider.get(&r("k", "", "nope")).await.unwrap_err();
        assert!(!e.to_string().contains("CANARY"));
    }

    fn push_ref(key: &str, property: &str) -> PushRef {
        PushRef {
            remote_key: key.into(),
            property: property.into(),
            ..PushRef::default()
        }
    }

    #[tokio::test]
    async fn pushed_values_are_read_back_kept_per_store_and_deleted() {
        let factory = Factory::default();
        let spec = json!({"data": [{"key": "taken", "value": "store"},
            {"key": "versioned", "value": "store", "version": "v1"}]});
        let scope = StoreScope::new("SecretStore", "s", Some("a".into()));
        let p = factory
            .build(&spec, &scope, &NoCreds)
            .await
            .unwrap()
            .provider;
        let v = SecretBytes::from("CANARY-push");
        p.push(&v, &push_ref("k", "")).await.unwrap();
        assert_eq!(text(&p.get(&r("k", "", "")).await.unwrap()), "CANARY-push");
        assert!(p.exists(&push_ref("k", "")).await.unwrap());
        // A rebuilt client of the same store keeps them; another namespace's store does not.
        let again = factory
            .build(&spec, &scope, &NoCreds)
            .await
            .unwrap()
            .provider;
        assert_eq!(
            text(&again.get(&r("k", "", "")).await.unwrap()),
            "CANARY-push"
        );
        let other = StoreScope::new("SecretStore", "s", Some("b".into()));
        let other = factory
            .build(&spec, &other, &NoCreds)
            .await
            .unwrap()
            .provider;
        assert!(other.get(&r("k", "", "")).await.unwrap_err().is_not_found());
        // ESO: a key of the store's data is not overwritten; one with a version is another key.
        let e = p.push(&v, &push_ref("taken", "")).await.unwrap_err();
        assert!(e.to_string().contains("already exists") && !e.to_string().contains("CANARY"));
        p.push(&v, &push_ref("versioned", "")).await.unwrap();
        assert_eq!(
            text(&p.get(&r("versioned", "v1", "")).await.unwrap()),
            "store"
        );
        // Properties are members of a JSON object.
        p.push(&SecretBytes::from("1"), &push_ref("obj", "a"))
            .await
            .unwrap();
        p.push(&SecretBytes::from("<2>"), &push_ref("obj", "b"))
            .await
            .unwrap();
        assert_eq!(
            text(&p.get(&r("obj", "", "")).await.unwrap()),
            r#"{"a":"1","b":"<2>"}"#
        );
        assert_eq!(text(&p.get(&r("obj", "", "b")).await.unwrap()), "<2>");
        assert!(p.exists(&push_ref("obj", "a")).await.unwrap());
        assert!(
            p.push(&v, &push_ref("k", "x")).await.is_err(),
            "not an object"
        );
        let found = p
            .find(&FindQuery {
                name_regexp: "^(k|obj)$".into(),
                ..FindQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        p.delete(&push_ref("obj", "a")).await.unwrap();
        assert_eq!(
            text(&p.get(&r("obj", "", "")).await.unwrap()),
            r#"{"b":"<2>"}"#
        );
        p.delete(&push_ref("obj", "b")).await.unwrap();
        p.delete(&push_ref("k", "")).await.unwrap();
        p.delete(&push_ref("taken", "")).await.unwrap();
        assert!(p.get(&r("k", "", "")).await.unwrap_err().is_not_found());
        assert!(!p.exists(&push_ref("obj", "")).await.unwrap());
        assert_eq!(text(&p.get(&r("taken", "", "")).await.unwrap()), "store");
        assert!(!format!("{p:?}").contains("CANARY"));
        let meta = PushRef {
            metadata: Some(json!({"kind": "PushSecretMetadata", "spec": {"x": 1}})),
            ..push_ref("m", "")
        };
        assert!(p.push(&v, &meta).await.is_err());
        let big = SecretBytes::new(vec![b'x'; MAX_PUSHED_BYTES]);
        assert!(p.push(&big, &push_ref("big", "")).await.is_err());
    }
}
