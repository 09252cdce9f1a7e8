//! ESO's markers and value rules, byte for byte: the data hash, the `created-by` label, the
//! field manager, `syncedResourceVersion`, key conversion, decoding strategies.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use sha3::{Digest, Sha3_224};

/// Label on every managed Secret.
pub const LABEL_MANAGED: &str = "reconcile.external-secrets.io/managed";
/// Label with the owner ExternalSecret's hash (creationPolicy Owner).
pub const LABEL_CREATED_BY: &str = "reconcile.external-secrets.io/created-by";
/// Annotation with the hash of the Secret's data.
pub const ANNOTATION_DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";
/// The annotation Argo CD's refresh action and `kubectl annotate` set.
pub const ANNOTATION_FORCE_SYNC: &str = "external-secrets.io/force-sync";

/// sha3-224 hex of `text`.
pub fn sha3_hex(text: &[u8]) -> String {
    let mut h = Sha3_224::new();
    h.update(text);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `fmt.Sprintf("%+v", m)` of a `map[string][]byte`: `map[k1:[98 121] k2:[]]`, keys
/// sorted.
pub fn go_bytes_map(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::from("map[");
    for (i, (k, v)) in data.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push_str(":[");
        for (j, b) in v.iter().enumerate() {
            if j > 0 {
                out.push(' ');
            }
            out.push_str(&b.to_string());
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// The `data-hash` annotation value: sha3-224 of `%+v` of the Secret's data.
pub fn data_hash(data: &BTreeMap<String, Vec<u8>>) -> String {
    sha3_hex(go_bytes_map(data).as_bytes())
}

/// Go's `%+v` of a `map[string]string`.
fn go_string_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", items.join(" "))
}

/// `syncedResourceVersion`: `<generation>-<sha3-224 of %+v of {annotations, labels}>`. ESO
/// hashes a Go struct with those two fields (`HashMeta`), which `%+v` prints in braces:
/// `{annotations:map[…] labels:map[…]}`.
pub fn synced_resource_version(
    generation: i64,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let text = format!(
        "{{annotations:{} labels:{}}}",
        go_string_map(annotations),
        go_string_map(labels)
    );
    format!("{generation}-{}", sha3_hex(text.as_bytes()))
}

/// The `created-by` label value: sha3-224 hex of `"<namespace>/<name>"`.
pub fn created_by(namespace: &str, name: &str) -> String {
    sha3_hex(format!("{namespace}/{name}").as_bytes())
}

/// The prefix of ESO's field managers.
pub const FIELD_MANAGER_PREFIX: &str = "externalsecrets.external-secrets.io/";

/// ESO's field manager (`fqdnFor`): `externalsecrets.external-secrets.io/<name>`, or
/// `externalsecrets.external-secrets.io/sha3/<sha3-224 hex of name>` when that is longer than
/// 63 characters.
pub fn field_manager(name: &str) -> String {
    let m = format!("{FIELD_MANAGER_PREFIX}{name}");
    if m.len() <= 63 {
        m
    } else {
        format!("{FIELD_MANAGER_PREFIX}sha3/{}", sha3_hex(name.as_bytes()))
    }
}

/// The data, label and annotation keys of a Secret that ExternalSecret `name` wrote, from the
/// Secret's `managedFields` (ESO's `getManagedDataKeys` / `GetManagedLabelKeys` /
/// `GetManagedAnnotationKeys`): the keys a write removes first, so that a key dropped from the
/// ExternalSecret leaves the Secret. Entries of the plain `<prefix><name>` manager count too
/// (hush before ESO's 63-character rule).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ManagedKeys {
    /// `data` keys.
    pub data: BTreeSet<String>,
    /// `metadata.labels` keys.
    pub labels: BTreeSet<String>,
    /// `metadata.annotations` keys.
    pub annotations: BTreeSet<String>,
}

impl ManagedKeys {
    /// The keys of `secret` that ExternalSecret `name` manages; an entry that does not parse
    /// contributes nothing (nothing is removed on its account).
    pub fn of(secret: &k8s_openapi::api::core::v1::Secret, name: &str) -> Self {
        let managers = [field_manager(name), format!("{FIELD_MANAGER_PREFIX}{name}")];
        let mut keys = Self::default();
        let entries = secret.metadata.managed_fields.iter().flatten();
        for entry in entries.filter(|e| {
            e.manager
                .as_deref()
                .is_some_and(|m| managers.iter().any(|x| x == m))
        }) {
            let Some(fields) = entry.fields_v1.as_ref().map(|f| &f.0) else {
                continue;
            };
            let set_keys = |value: Option<&serde_json::Value>, into: &mut BTreeSet<String>| {
                for k in value
                    .and_then(|v| v.as_object())
                    .into_iter()
                    .flat_map(|o| o.keys())
                {
                    if let Some(key) = k.strip_prefix("f:") {
                        into.insert(key.to_owned());
                    }
                }
            };
            set_keys(fields.get("f:data"), &mut keys.data);
            let meta = fields.get("f:metadata");
            set_keys(meta.and_then(|m| m.get("f:labels")), &mut keys.labels);
            set_keys(
                meta.and_then(|m| m.get("f:annotations")),
                &mut keys.annotations,
            );
        }
        keys
    }
}

/// `conversionStrategy`: Default replaces runes other than letters, digits, `-`, `.`, `_` by
/// `_`; Unicode by `_U%04x_`.
pub fn convert_key(key: &str, unicode: bool) -> String {
    key.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c.to_string()
            } else if unicode {
                format!("_U{:04x}_", c as u32)
            } else {
                "_".to_owned()
            }
        })
        .collect()
}

/// A valid Secret key (`^[-._a-zA-Z0-9]+$`, ≤ 253).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// `decodingStrategy`. Returns `Err` with the strategy name when the value cannot be decoded.
pub fn decode(value: Vec<u8>, strategy: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    match strategy {
        "" | "None" => Ok(value),
        "Base64" => STANDARD
            .decode(&value)
            .map_err(|_| "value is not Base64".to_owned()),
        "Base64URL" => URL_SAFE
            .decode(&value)
            .map_err(|_| "value is not Base64URL".to_owned()),
        "Auto" => Ok(STANDARD
            .decode(&value)
            .or_else(|_| URL_SAFE.decode(&value))
            .unwrap_or(value)),
        other => Err(format!("unknown decodingStrategy {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_eso() {
        // Go: fmt.Sprintf("%+v", map[string][]byte{"k2": []byte("by"), "k1": {}})
        let data = BTreeMap::from([("k2".to_owned(), b"by".to_vec()), ("k1".to_owned(), vec![])]);
        assert_eq!(go_bytes_map(&data), "map[k1:[] k2:[98 121]]");
        assert_eq!(go_bytes_map(&BTreeMap::new()), "map[]");
        // sha3-224("") from FIPS 202 test vectors.
        assert_eq!(
            sha3_hex(b""),
            "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"
        );
        assert_eq!(data_hash(&data), sha3_hex(b"map[k1:[] k2:[98 121]]"));
        // Golden values from Go (fmt.Sprintf("%+v", meta{...}) and sha3.Sum224, as ESO's
        // HashMeta); the first is what ESO v0.16.2 wrote for an unlabelled ExternalSecret.
        let none = BTreeMap::new();
        assert_eq!(
            synced_resource_version(1, &none, &none),
            "1-f47fe3c0b255b6dd8047cdffa772587bb829efe7a1cb70febeda2eb2"
        );
        let labels = BTreeMap::from([
            ("team".to_owned(), "payments".to_owned()),
            ("tier".to_owned(), "1".to_owned()),
        ]);
        let annotations = BTreeMap::from([("owner".to_owned(), "ops@example.com".to_owned())]);
        assert_eq!(
            synced_resource_version(3, &labels, &annotations),
            "3-f191369dadb200f5d0247f6f90d5c31e5fc50cf41a014246aba00493"
        );
        let odd = BTreeMap::from([
            ("a b".to_owned(), "c:d".to_owned()),
            ("x".to_owned(), String::new()),
        ]);
        assert_eq!(
            synced_resource_version(2, &odd, &none),
            "2-f7071d66b34887cb6e6f34dfb1f0a990de81b8421b26c73f024595d3"
        );
        assert_eq!(created_by("ns", "es"), sha3_hex(b"ns/es"));
        assert_eq!(field_manager("x"), "externalsecrets.external-secrets.io/x");
        // ESO's fqdnFor: 63 characters at most, else the sha3 form.
        let name27 = "a".repeat(27);
        assert_eq!(
            field_manager(&name27),
            format!("externalsecrets.external-secrets.io/{name27}")
        );
        let name28 = "a".repeat(28);
        assert_eq!(
            field_manager(&name28),
            format!(
                "externalsecrets.external-secrets.io/sha3/{}",
                sha3_hex(name28.as_bytes())
            )
        );
    }

    #[test]
    fn managed_keys_come_from_this_externalsecrets_managed_fields() {
        let secret: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "s", "managedFields": [
                    {"manager": "externalsecrets.external-secrets.io/app", "operation": "Update",
                     "fieldsType": "FieldsV1", "fieldsV1": {
                        "f:data": {".": {}, "f:a": {}, "f:b": {}},
                        "f:metadata": {"f:labels": {".": {}, "f:team": {}},
                                       "f:annotations": {"f:note": {}}}}},
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:data": {"f:own": {}}}},
                    {"manager": "externalsecrets.external-secrets.io/other", "operation": "Update",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:c": {}}}},
                    {"manager": "externalsecrets.external-secrets.io/app", "operation": "Update",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": "not an object"}}
                ]}
            }))
            .unwrap();
        let keys = ManagedKeys::of(&secret, "app");
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(keys.data, set(&["a", "b"]));
        assert_eq!(keys.labels, set(&["team"]));
        assert_eq!(keys.annotations, set(&["note"]));
        assert_eq!(ManagedKeys::of(&secret, "nobody"), ManagedKeys::default());
    }

    #[test]
    fn keys_and_decoding() {
        assert_eq!(convert_key("app/db:pw", false), "app_db_pw");
        assert_eq!(convert_key("a/b", true), "a_U002f_b");
        assert!(valid_key("a-b.c_d") && !valid_key("a/b") && !valid_key(""));
        assert_eq!(decode(b"aGk=".to_vec(), "Base64").unwrap(), b"hi");
        assert_eq!(decode(b"_-8=".to_vec(), "Base64URL").unwrap(), [0xff, 0xef]);
        assert_eq!(
            decode(b"not base64!".to_vec(), "Auto").unwrap(),
            b"not base64!"
        );
        assert_eq!(decode(b"aGk=".to_vec(), "").unwrap(), b"aGk=");
        assert!(decode(b"!!".to_vec(), "Base64").is_err());
        assert!(decode(b"x".to_vec(), "Rot13").is_err());
    }
}
