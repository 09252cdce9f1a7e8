//! PushSecret to the `kubernetes` provider: a Secret of `remoteNamespace`, written with the
//! store's own credentials (`ESO:pkg/provider/kubernetes/client.go` and `metadata.go`, v0.16.2).
//!
//! - `property` set: the key `property` of the remote Secret gets the entry's value (the
//!   `secretKey`'s, or with no `secretKey` the whole source Secret as a JSON object); other
//!   keys are kept. `property` empty: every key of the source Secret is copied in (a
//!   `secretKey` without `property` is refused, as ESO).
//! - The remote Secret gets the source's type (`Opaque` when it has none; with a `template`,
//!   the template's) and the source's labels and annotations, merged as the entry's
//!   `PushSecretMetadata` says (`sourceMergePolicy` Merge/Replace, `targetMergePolicy`
//!   Merge/Replace/Ignore, `labels`, `annotations`).
//! - Nothing is written when nothing would change; an update is a PUT with the
//!   resourceVersion read, re-read and retried on a conflict ([`WRITE_ATTEMPTS`]).
//! - No ownership marker: ESO's kubernetes provider has none; the store's credentials (their
//!   RBAC in `remoteNamespace`) bound what a push may touch.
//! - Beyond v0.16.2, as later ESO releases: `exists` (`updatePolicy: IfNotExists`; v0.16.2
//!   answers "not implemented") and deleting a whole-Secret push (v0.16.2 refuses it, which
//!   leaves the PushSecret's finalizer stuck). A property delete removes the key, and the
//!   Secret with its last key, as v0.16.2.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::{Bytes, KubernetesProvider, object_name, zeroize_value};
use crate::{ProviderError, PushRef, PushSource, SecretBytes, push_metadata_spec};

/// Reads and writes of one push or delete when another writer keeps changing the Secret.
const WRITE_ATTEMPTS: usize = 5;

/// ESO's `PushSecretMetadata` spec for this provider.
const METADATA_FIELDS: &[&str] = &[
    "sourceMergePolicy",
    "targetMergePolicy",
    "labels",
    "annotations",
];

/// The remote Secret as read, kept whole for the PUT that updates it.
#[derive(Deserialize)]
struct Remote {
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    data: BTreeMap<String, Bytes>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    immutable: Option<bool>,
}

/// What the remote Secret should hold.
#[derive(PartialEq)]
struct Wanted {
    data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    type_: String,
}

/// The entry's metadata, checked.
#[derive(Default)]
struct PushMetadata {
    replace_source: bool,
    target: Target,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Target {
    #[default]
    Merge,
    Replace,
    Ignore,
}

fn string_map(field: &str, v: &Value) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
    if v.is_null() {
        return Ok(None);
    }
    serde_json::from_value(v.clone()).map(Some).map_err(|_| {
        ProviderError::Invalid(format!(
            "metadata.spec.{field} must be a map of strings to strings"
        ))
    })
}

/// ESO's `ParseMetadataParameters` for this provider (unknown fields refused by name).
fn push_metadata(r: &PushRef) -> Result<PushMetadata, ProviderError> {
    let present = r.metadata.as_ref().is_some_and(|m| !m.is_null());
    if present {
        let m = r.metadata.as_ref().unwrap_or(&Value::Null);
        let api = m["apiVersion"].as_str().unwrap_or_default();
        if api != "kubernetes.external-secrets.io/v1alpha1" {
            return Err(ProviderError::Invalid(format!(
                "metadata.apiVersion {api:?}: expected \"kubernetes.external-secrets.io/v1alpha1\""
            )));
        }
    }
    let spec = Value::Object(push_metadata_spec(r, METADATA_FIELDS)?);
    let replace_source = match spec["sourceMergePolicy"].as_str().unwrap_or_default() {
        "" | "Merge" => false,
        "Replace" => true,
        other => {
            return Err(ProviderError::Invalid(format!(
                "metadata.spec.sourceMergePolicy: unexpected source merge policy {other:?} \
                 (Merge or Replace)"
            )));
        }
    };
    let target = match spec["targetMergePolicy"].as_str().unwrap_or_default() {
        "" | "Merge" => Target::Merge,
        "Replace" => Target::Replace,
        "Ignore" => Target::Ignore,
        other => {
            return Err(ProviderError::Invalid(format!(
                "metadata.spec.targetMergePolicy: unexpected target merge policy {other:?} \
                 (Merge, Replace or Ignore)"
            )));
        }
    };
    Ok(PushMetadata {
        replace_source,
        target,
        labels: string_map("labels", &spec["labels"])?,
        annotations: string_map("annotations", &spec["annotations"])?,
    })
}

/// ESO's `mergeSourceMetadata` then `mergeTargetMetadata` for one of labels / annotations.
fn merged_metadata(
    remote: &BTreeMap<String, String>,
    source: &BTreeMap<String, String>,
    pushed: Option<&BTreeMap<String, String>>,
    meta: &PushMetadata,
) -> BTreeMap<String, String> {
    let source = if meta.replace_source {
        pushed.cloned().unwrap_or_default()
    } else {
        let mut s = source.clone();
        s.extend(pushed.cloned().unwrap_or_default());
        s
    };
    match meta.target {
        Target::Merge => {
            let mut out = remote.clone();
            out.extend(source);
            out
        }
        Target::Replace => source,
        Target::Ignore => remote.clone(),
    }
}

fn labels_of(metadata: &Map<String, Value>, field: &str) -> BTreeMap<String, String> {
    serde_json::from_value(metadata.get(field).cloned().unwrap_or(Value::Null)).unwrap_or_default()
}

/// What the remote Secret should hold after pushing `value` at `r` (pure: no request).
fn wanted(
    remote: Option<&Remote>,
    value: &SecretBytes,
    r: &PushRef,
    source: &PushSource,
) -> Result<Wanted, ProviderError> {
    if r.property.is_empty() && !r.secret_key.is_empty() {
        return Err(ProviderError::Invalid(
            "remoteRef.property is required by the kubernetes provider when secretKey is set \
             (the key of the remote Secret to write)"
                .into(),
        ));
    }
    let meta = push_metadata(r)?;
    let empty = Map::new();
    let remote_meta = remote.map_or(&empty, |s| &s.metadata);
    let mut data: BTreeMap<String, Zeroizing<Vec<u8>>> = remote
        .map(|s| {
            s.data
                .iter()
                .map(|(k, v)| (k.clone(), Zeroizing::new(v.0.to_vec())))
                .collect()
        })
        .unwrap_or_default();
    if r.property.is_empty() {
        for (k, v) in &source.data {
            data.insert(k.clone(), Zeroizing::new(v.expose().to_vec()));
        }
    } else {
        data.insert(r.property.clone(), Zeroizing::new(value.expose().to_vec()));
    }
    let type_ = if source.type_.is_empty() {
        "Opaque".to_owned()
    } else {
        source.type_.clone()
    };
    Ok(Wanted {
        data,
        labels: merged_metadata(
            &labels_of(remote_meta, "labels"),
            &source.labels,
            meta.labels.as_ref(),
            &meta,
        ),
        annotations: merged_metadata(
            &labels_of(remote_meta, "annotations"),
            &source.annotations,
            meta.annotations.as_ref(),
            &meta,
        ),
        type_,
    })
}

/// The remote Secret as it is, in the shape of [`Wanted`] (nil and empty maps alike, as
/// Kubernetes' semantic equality).
fn current(remote: &Remote) -> Wanted {
    Wanted {
        data: remote
            .data
            .iter()
            .map(|(k, v)| (k.clone(), Zeroizing::new(v.0.to_vec())))
            .collect(),
        labels: labels_of(&remote.metadata, "labels"),
        annotations: labels_of(&remote.metadata, "annotations"),
        type_: remote.type_.clone().unwrap_or_else(|| "Opaque".into()),
    }
}

/// The JSON body of a Secret holding `w` (data base64), over `metadata`.
fn body(
    mut metadata: Map<String, Value>,
    w: &Wanted,
    immutable: Option<bool>,
) -> Zeroizing<String> {
    let map = |m: &BTreeMap<String, String>| {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    metadata.insert("labels".into(), map(&w.labels));
    metadata.insert("annotations".into(), map(&w.annotations));
    let data: Map<String, Value> = w
        .data
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v.as_slice())),
            )
        })
        .collect();
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata,
        "type": w.type_, "data": data});
    if let Some(i) = immutable {
        obj["immutable"] = Value::Bool(i);
    }
    let text = Zeroizing::new(obj.to_string());
    zeroize_value(obj);
    text
}

fn is_conflict(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Invalid(m) if m.contains("HTTP 409 "))
}

impl KubernetesProvider {
    fn secret_path(&self, name: &str) -> String {
        format!("/api/v1/namespaces/{}/secrets/{name}", self.namespace)
    }

    /// The remote Secret `name`, `None` when absent.
    async fn remote(&self, name: &str) -> Result<Option<Remote>, ProviderError> {
        object_name("remoteRef.remoteKey", name)?;
        let what = format!("get secret {}/{name}", self.namespace);
        let req = self.request(reqwest::Method::GET, &self.secret_path(name));
        match self.send(&what, "GetSecret", req).await {
            Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| ProviderError::Invalid(format!("kubernetes {what}: not a Secret"))),
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        what: &str,
        call: &'static str,
        body: Zeroizing<String>,
    ) -> Result<(), ProviderError> {
        let req = self
            .request(method, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.as_bytes().to_vec());
        self.send(what, call, req).await.map(|_| ())
    }

    /// Creates or updates the remote Secret; `Err` with a conflict when it changed meanwhile.
    async fn push_once(
        &self,
        value: &SecretBytes,
        r: &PushRef,
        source: &PushSource,
    ) -> Result<(), ProviderError> {
        let name = &r.remote_key;
        let remote = self.remote(name).await?;
        let want = wanted(remote.as_ref(), value, r, source)?;
        let ns = &self.namespace;
        match remote {
            None => {
                let meta = json!({"name": name, "namespace": ns});
                let Value::Object(meta) = meta else {
                    return Ok(());
                };
                let path = format!("/api/v1/namespaces/{ns}/secrets");
                let what = format!("create secret {ns}/{name}");
                let body = body(meta, &want, None);
                self.write(reqwest::Method::POST, &path, &what, "CreateSecret", body)
                    .await
            }
            Some(remote) if current(&remote) == want => Ok(()),
            Some(remote) => {
                let what = format!("update secret {ns}/{name}");
                let body = body(remote.metadata, &want, remote.immutable);
                self.write(
                    reqwest::Method::PUT,
                    &self.secret_path(name),
                    &what,
                    "UpdateSecret",
                    body,
                )
                .await
            }
        }
    }

    pub(super) async fn push_value(
        &self,
        value: &SecretBytes,
        r: &PushRef,
    ) -> Result<(), ProviderError> {
        let source = r.source.as_deref().ok_or_else(|| {
            ProviderError::Invalid("the kubernetes provider needs the source Secret".into())
        })?;
        let mut attempt = 1;
        loop {
            match self.push_once(value, r, source).await {
                Err(e) if attempt < WRITE_ATTEMPTS && is_conflict(&e) => attempt += 1,
                done => return done,
            }
        }
    }

    pub(super) async fn push_exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        Ok(match self.remote(&r.remote_key).await? {
            None => false,
            Some(_) if r.property.is_empty() => true,
            Some(s) => s.data.contains_key(&r.property),
        })
    }

    async fn delete_once(&self, r: &PushRef) -> Result<(), ProviderError> {
        let name = &r.remote_key;
        let ns = &self.namespace;
        let Some(remote) = self.remote(name).await? else {
            return Ok(());
        };
        if !r.property.is_empty() {
            if !remote.data.contains_key(&r.property) {
                return Ok(());
            }
            if remote.data.len() > 1 {
                let mut left = current(&remote);
                left.data.remove(&r.property);
                let what = format!("update secret {ns}/{name}");
                let body = body(remote.metadata, &left, remote.immutable);
                return self
                    .write(
                        reqwest::Method::PUT,
                        &self.secret_path(name),
                        &what,
                        "UpdateSecret",
                        body,
                    )
                    .await;
            }
        }
        let what = format!("delete secret {ns}/{name}");
        let req = self.request(reqwest::Method::DELETE, &self.secret_path(name));
        match self.send(&what, "DeleteSecret", req).await {
            Ok(_) | Err(ProviderError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn push_delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        let mut attempt = 1;
        loop {
            match self.delete_once(r).await {
                Err(e) if attempt < WRITE_ATTEMPTS && is_conflict(&e) => attempt += 1,
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn remote(data: &[(&str, &str)], labels: Value) -> Remote {
        serde_json::from_value(json!({
            "metadata": {"name": "r", "labels": labels, "resourceVersion": "7"},
            "type": "Opaque",
            "data": data.iter().map(|(k, v)| ((*k).to_owned(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)))).collect::<Map<_, _>>(),
        }))
        .unwrap()
    }

    fn source() -> PushSource {
        PushSource {
            data: [
                ("a".to_owned(), SecretBytes::from("1")),
                ("b".to_owned(), SecretBytes::from("2")),
            ]
            .into(),
            labels: [("team".to_owned(), "x".to_owned())].into(),
            annotations: BTreeMap::new(),
            type_: "kubernetes.io/tls".into(),
        }
    }

    fn push_ref(property: &str, secret_key: &str, metadata: Option<Value>) -> PushRef {
        PushRef {
            remote_key: "r".into(),
            property: property.into(),
            metadata,
            secret_key: secret_key.into(),
            source: Some(Arc::new(source())),
        }
    }

    fn text(w: &Wanted, k: &str) -> String {
        String::from_utf8(w.data[k].to_vec()).unwrap()
    }

    #[test]
    fn a_property_is_one_key_and_no_property_copies_every_key() {
        let old = remote(&[("keep", "k"), ("a", "old")], json!({"old": "y"}));
        let v = SecretBytes::from("v");
        let w = wanted(Some(&old), &v, &push_ref("p", "a", None), &source()).unwrap();
        assert_eq!(
            w.data.keys().collect::<Vec<_>>(),
            ["a", "keep", "p"],
            "other keys kept"
        );
        assert_eq!(text(&w, "p"), "v");
        assert_eq!(text(&w, "a"), "old");
        assert_eq!(w.type_, "kubernetes.io/tls");
        assert_eq!(w.labels.len(), 2, "labels merged: {:?}", w.labels);
        let w = wanted(Some(&old), &v, &push_ref("", "", None), &source()).unwrap();
        assert_eq!(text(&w, "a"), "1");
        assert_eq!(text(&w, "b"), "2");
        assert_eq!(text(&w, "keep"), "k");
        let err = wanted(None, &v, &push_ref("", "a", None), &source())
            .err()
            .unwrap();
        assert!(err.to_string().contains("remoteRef.property"), "{err}");
    }

    #[test]
    fn metadata_policies_merge_as_eso() {
        let old = remote(&[], json!({"old": "y", "team": "z"}));
        let v = SecretBytes::from("v");
        let meta = |spec: Value| {
            Some(
                json!({"apiVersion": "kubernetes.external-secrets.io/v1alpha1",
                "kind": "PushSecretMetadata", "spec": spec}),
            )
        };
        let labels = |spec: Value| {
            let w = wanted(Some(&old), &v, &push_ref("p", "", meta(spec)), &source()).unwrap();
            w.labels
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            labels(json!({"labels": {"c": "red"}})),
            "c=red,old=y,team=x"
        );
        assert_eq!(
            labels(json!({"sourceMergePolicy": "Replace", "labels": {"c": "red"}})),
            "c=red,old=y,team=z"
        );
        assert_eq!(
            labels(json!({"targetMergePolicy": "Replace", "labels": {"c": "red"}})),
            "c=red,team=x"
        );
        assert_eq!(
            labels(json!({"targetMergePolicy": "Ignore"})),
            "old=y,team=z"
        );
        for (spec, named) in [
            (
                json!({"targetMergePolicy": "Sometimes"}),
                "targetMergePolicy",
            ),
            (json!({"sourceMergePolicy": "Ignore"}), "sourceMergePolicy"),
            (json!({"remoteNamespace": "other"}), "remoteNamespace"),
            (json!({"labels": {"a": 1}}), "labels"),
        ] {
            let err = wanted(Some(&old), &v, &push_ref("p", "", meta(spec)), &source())
                .err()
                .unwrap();
            assert!(err.to_string().contains(named), "{err}");
        }
        let wrong = Some(json!({"apiVersion": "v1", "kind": "PushSecretMetadata"}));
        assert!(wanted(None, &v, &push_ref("p", "", wrong), &source()).is_err());
    }

    #[test]
    fn an_unchanged_secret_is_not_written_and_bodies_keep_the_metadata() {
        let old = remote(&[("p", "v")], json!({"team": "x"}));
        let mut src = source();
        src.type_ = String::new();
        let w = wanted(
            Some(&old),
            &SecretBytes::from("v"),
            &push_ref("p", "", None),
            &src,
        )
        .unwrap();
        assert!(current(&old) == w, "nothing to write");
        let text = body(old.metadata.clone(), &w, Some(true));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        assert_eq!(v["data"]["p"], "dg==");
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["immutable"], true);
    }
}
