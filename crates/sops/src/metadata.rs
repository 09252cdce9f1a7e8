//! The `sops` metadata block: reading every shape sops has written (struct order, alphabetical,
//! `null` key lists, flattened dotenv/INI keys) and writing sops 3.13.2's (alphabetical).
//!
//! Master keys are kept as their metadata fields, verbatim, so a key type hush cannot use
//! (`gcp_kms`, `azure_kv`, `hckms`, …) survives every rewrite.

use crate::crypt::{DEFAULT_UNENCRYPTED_SUFFIX, Rule};
use crate::tree::{Item, Value};
use crate::{Error, Result};
use hush_gocompat::time::{Timestamp, parse_rfc3339};

/// The sops version hush writes (sops ≥ 3.3.0 is required by readers; 3.13.2 is the behaviour
/// hush follows).
pub const WRITE_VERSION: &str = "3.13.2";

/// Metadata fields that are not key lists.
const SCALAR_FIELDS: [&str; 11] = [
    "shamir_threshold",
    "lastmodified",
    "mac",
    "mac_only_encrypted",
    "version",
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

/// One master key entry: its type (the metadata list name) and its fields, verbatim.
#[derive(Clone, PartialEq)]
pub struct MasterKey {
    /// `age`, `kms`, `hc_vault`, `pgp`, `gcp_kms`, `azure_kv`, `hckms`, …
    pub type_id: String,
    /// The entry's fields in file order (`enc` included).
    pub fields: Vec<(String, Value)>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("type_id", &self.type_id)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A new entry from its identifying fields (without `enc`/`created_at`).
    pub fn new(type_id: impl Into<String>, fields: Vec<(String, Value)>) -> Self {
        Self {
            type_id: type_id.into(),
            fields,
        }
    }

    /// A string field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find_map(|(k, v)| match v {
            Value::Str(s) if k == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// Sets (or adds) a field.
    pub fn set_field(&mut self, name: &str, value: Value) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.to_owned(), value)),
        }
    }

    /// The wrapped data key (`enc`).
    pub fn enc(&self) -> &str {
        self.field("enc").unwrap_or("")
    }

    /// The key's identity as hush-keys services report it: recipient, ARN, Vault key URL,
    /// fingerprint, or the first identifying field of an unknown type.
    pub fn key_id(&self) -> String {
        match hush_keys::kinds::kind(&self.type_id) {
            Some(kind) => (kind.key_id)(self),
            None => self
                .fields
                .iter()
                .find(|(k, _)| k != "enc" && k != "created_at")
                .and_then(|(_, v)| v.to_flat_string())
                .unwrap_or_default(),
        }
    }

    fn to_value(&self) -> Value {
        let mut fields = self.fields.clone();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Map(fields.into_iter().map(|(k, v)| Item::Entry(k, v)).collect())
    }
}

impl hush_keys::EntryFields for MasterKey {
    fn field(&self, name: &str) -> &str {
        MasterKey::field(self, name).unwrap_or("")
    }

    /// A map's string-valued members (comments skipped), as sops reads a kms `context`.
    fn map(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        self.fields
            .iter()
            .find_map(|(k, v)| match v {
                Value::Map(m) if k == name => Some(
                    m.iter()
                        .filter_map(|i| match i {
                            Item::Entry(k, v) => Some((k.clone(), v.to_flat_string()?)),
                            Item::Comment(_) | Item::InlineComment(_) => None,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// A key group: every key in it wraps the same data key (or Shamir share).
pub type KeyGroup = Vec<MasterKey>;

/// The `sops` metadata of a file.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Key groups (one unless Shamir is used).
    pub key_groups: Vec<KeyGroup>,
    /// Shares needed to recover the data key (0 = number of groups).
    pub shamir_threshold: usize,
    /// When the values were last changed.
    pub last_modified: Timestamp,
    /// The encrypted MAC (`ENC[…]`), empty when absent.
    pub mac: String,
    /// The selection rule; `None` = encrypt everything and write no rule (binary store).
    pub rule: Option<Rule>,
    /// Whether the MAC covers only encrypted values.
    pub mac_only_encrypted: bool,
    /// The version of sops (or hush) that wrote the file.
    pub version: String,
}

impl Metadata {
    /// New metadata for encryption with `rule` (sops' default suffix when `None` is passed by
    /// the caller explicitly choosing it).
    pub fn new(key_groups: Vec<KeyGroup>, rule: Option<Rule>) -> Self {
        Self {
            key_groups,
            shamir_threshold: 0,
            last_modified: Timestamp::now_utc(),
            mac: String::new(),
            rule,
            mac_only_encrypted: false,
            version: WRITE_VERSION.to_owned(),
        }
    }

    /// The default rule sops applies when a file names none.
    pub fn default_rule() -> Rule {
        Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned())
    }

    /// Reads metadata from the `sops` map of a file.
    pub fn from_value(v: &Value) -> Result<Self> {
        let Value::Map(items) = v else {
            return Err(Error::Metadata("the `sops` entry is not a mapping".into()));
        };
        let mut shamir_threshold = 0usize;
        let mut last_modified = None;
        let mut mac = String::new();
        let mut mac_only_encrypted = false;
        let mut version = String::new();
        let mut rule: Option<Rule> = None;
        let mut flat_group: KeyGroup = Vec::new();
        let mut groups: Vec<KeyGroup> = Vec::new();
        for item in items {
            let Item::Entry(k, v) = item else { continue };
            match k.as_str() {
                "shamir_threshold" => {
                    shamir_threshold = match v {
                        Value::Int(i) if *i >= 0 => *i as usize,
                        Value::Float(f) if *f >= 0.0 && f.fract() == 0.0 => *f as usize,
                        Value::Str(s) if s.is_empty() => 0,
                        Value::Str(s) => s.trim().parse().map_err(|_| {
                            Error::Metadata(format!("shamir_threshold {s:?} is not a number"))
                        })?,
                        Value::Null => 0,
                        _ => {
                            return Err(Error::Metadata("shamir_threshold is not a number".into()));
                        }
                    }
                }
                "lastmodified" => {
                    let s = scalar_string(v)
                        .ok_or_else(|| Error::Metadata("lastmodified is not a timestamp".into()))?;
                    last_modified = Some(parse_rfc3339(&s).ok_or_else(|| {
                        Error::Metadata(format!("lastmodified {s:?} is not an RFC 3339 timestamp"))
                    })?);
                }
                "mac" => mac = scalar_string(v).unwrap_or_default(),
                "mac_only_encrypted" => {
                    mac_only_encrypted = match v {
                        Value::Bool(b) => *b,
                        Value::Str(s) => crate::goformat::parse_bool(s).unwrap_or(false),
                        _ => false,
                    }
                }
                "version" => version = scalar_string(v).unwrap_or_default(),
                "key_groups" => {
                    if let Value::List(list) = v {
                        for g in list {
                            match g {
                                Value::Map(gm) => groups.push(read_group(gm)?),
                                Value::Null => groups.push(Vec::new()),
                                Value::Comment(_) => {}
                                _ => {
                                    return Err(Error::Metadata(
                                        "a key group is not a mapping".into(),
                                    ));
                                }
                            }
                        }
                    }
                }
                f if Rule::FIELDS.contains(&f) => {
                    let text = scalar_string(v).unwrap_or_default();
                    if text.is_empty() {
                        continue;
                    }
                    if rule.is_some() {
                        return Err(Error::Metadata(
                            "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file".into(),
                        ));
                    }
                    rule = Rule::from_field(f, &text)?;
                }
                type_id => flat_group.extend(read_key_list(type_id, v)?),
            }
        }
        let key_groups = if !flat_group.is_empty() {
            vec![flat_group]
        } else if !groups.is_empty() {
            groups
        } else {
            return Err(Error::Metadata("no keys found in file".into()));
        };
        let last_modified =
            last_modified.ok_or_else(|| Error::Metadata("lastmodified is missing".into()))?;
        if version.is_empty() {
            return Err(Error::Metadata(
                "version string empty: the file was not written by sops (sops refuses it too)"
                    .into(),
            ));
        }
        Ok(Self {
            key_groups,
            shamir_threshold,
            last_modified,
            mac,
            rule: Some(rule.unwrap_or_else(Self::default_rule)),
            mac_only_encrypted,
            version,
        })
    }

    /// Writes the metadata as sops 3.13.2 does: alphabetical at every level.
    pub fn to_value(&self) -> Value {
        let mut items: Vec<(String, Value)> = Vec::new();
        if self.key_groups.len() == 1 {
            for (type_id, keys) in by_type(&self.key_groups[0]) {
                items.push((type_id, Value::List(keys)));
            }
        } else {
            let groups = self
                .key_groups
                .iter()
                .map(|g| {
                    let mut lists = by_type(g);
                    for always in ["age", "hc_vault"] {
                        if !lists.iter().any(|(t, _)| t == always) {
                            lists.push((always.to_owned(), Vec::new()));
                        }
                    }
                    lists.sort_by(|a, b| a.0.cmp(&b.0));
                    Value::Map(
                        lists
                            .into_iter()
                            .map(|(t, ks)| Item::Entry(t, Value::List(ks)))
                            .collect(),
                    )
                })
                .collect();
            items.push(("key_groups".into(), Value::List(groups)));
        }
        if self.shamir_threshold > 0 {
            items.push((
                "shamir_threshold".into(),
                Value::Int(self.shamir_threshold as i64),
            ));
        }
        items.push((
            "lastmodified".into(),
            Value::Str(self.last_modified.rfc3339()),
        ));
        items.push(("mac".into(), Value::Str(self.mac.clone())));
        if self.mac_only_encrypted {
            items.push(("mac_only_encrypted".into(), Value::Bool(true)));
        }
        if let Some(rule) = &self.rule
            && !rule.text().is_empty()
        {
            items.push((rule.field().into(), Value::Str(rule.text().to_owned())));
        }
        items.push(("version".into(), Value::Str(self.version.clone())));
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Map(items.into_iter().map(|(k, v)| Item::Entry(k, v)).collect())
    }

    /// The number of shares needed to recover the data key.
    pub fn threshold(&self) -> usize {
        if self.shamir_threshold == 0 {
            self.key_groups.len()
        } else {
            self.shamir_threshold
        }
    }
}

fn by_type(group: &KeyGroup) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for k in group {
        match out.iter_mut().find(|(t, _)| *t == k.type_id) {
            Some((_, list)) => list.push(k.to_value()),
            None => out.push((k.type_id.clone(), vec![k.to_value()])),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::Map(_) | Value::List(_) | Value::Null => None,
        v => v.to_flat_string(),
    }
}

fn read_group(items: &[Item]) -> Result<KeyGroup> {
    let mut group = Vec::new();
    for item in items {
        if let Item::Entry(type_id, v) = item {
            group.extend(read_key_list(type_id, v)?);
        }
    }
    Ok(group)
}

fn read_key_list(type_id: &str, v: &Value) -> Result<Vec<MasterKey>> {
    if SCALAR_FIELDS.contains(&type_id) {
        return Ok(Vec::new());
    }
    match v {
        Value::Null => Ok(Vec::new()),
        Value::List(entries) => {
            let mut out = Vec::new();
            for e in entries {
                match e {
                    Value::Map(fields) => out.push(MasterKey {
                        type_id: type_id.to_owned(),
                        fields: fields
                            .iter()
                            .filter_map(|i| match i {
                                Item::Entry(k, v) => Some((k.clone(), v.clone())),
                                Item::Comment(_) | Item::InlineComment(_) => None,
                            })
                            .collect(),
                    }),
                    Value::Comment(_) | Value::Null => {}
                    _ => {
                        return Err(Error::Metadata(format!(
                            "an entry of the `{type_id}` key list is not a mapping"
                        )));
                    }
                }
            }
            Ok(out)
        }
        // Unknown scalar fields from a newer sops are ignored.
        _ => Ok(Vec::new()),
    }
}

/// Flattens metadata for dotenv and INI: `age__list_0__map_enc`.
pub fn flatten(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Value::Map(items) = v {
        for item in items {
            if let Item::Entry(k, v) = item {
                flatten_into(k.clone(), v, &mut out);
            }
        }
    }
    out
}

fn flatten_into(prefix: String, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Map(items) => {
            for item in items {
                if let Item::Entry(k, v) = item {
                    flatten_into(format!("{prefix}__map_{k}"), v, out);
                }
            }
        }
        Value::List(l) => {
            for (i, v) in l.iter().enumerate() {
                flatten_into(format!("{prefix}__list_{i}"), v, out);
            }
        }
        v => out.push((prefix, v.clone())),
    }
}

/// Rebuilds the nested metadata map from flattened keys.
pub fn unflatten(flat: Vec<(String, Value)>) -> Result<Value> {
    let mut root = Value::Map(Vec::new());
    for (key, value) in flat {
        let mut steps = Vec::new();
        let mut parts = key.split("__");
        let first = parts.next().unwrap_or("");
        steps.push(Step::Key(first.to_owned()));
        for p in parts {
            if let Some(k) = p.strip_prefix("map_") {
                steps.push(Step::Key(k.to_owned()));
            } else if let Some(i) = p.strip_prefix("list_") {
                let i: usize = i
                    .parse()
                    .map_err(|_| Error::Metadata(format!("bad flattened metadata key {key:?}")))?;
                steps.push(Step::Index(i));
            } else {
                return Err(Error::Metadata(format!(
                    "bad flattened metadata key {key:?}"
                )));
            }
        }
        insert(&mut root, &steps, value, &key)?;
    }
    Ok(root)
}

enum Step {
    Key(String),
    Index(usize),
}

fn insert(node: &mut Value, steps: &[Step], value: Value, key: &str) -> Result<()> {
    let Some((first, rest)) = steps.split_first() else {
        *node = value;
        return Ok(());
    };
    let bad = || Error::Metadata(format!("conflicting flattened metadata key {key:?}"));
    match first {
        Step::Key(k) => {
            if matches!(node, Value::Null) {
                *node = Value::Map(Vec::new());
            }
            let Value::Map(items) = node else {
                return Err(bad());
            };
            let pos = items
                .iter()
                .position(|i| matches!(i, Item::Entry(ik, _) if ik == k));
            let pos = match pos {
                Some(p) => p,
                None => {
                    items.push(Item::Entry(k.clone(), Value::Null));
                    items.len() - 1
                }
            };
            let Item::Entry(_, child) = &mut items[pos] else {
                return Err(bad());
            };
            insert(child, rest, value, key)
        }
        Step::Index(i) => {
            if matches!(node, Value::Null) {
                *node = Value::List(Vec::new());
            }
            let Value::List(list) = node else {
                return Err(bad());
            };
            if *i > 10_000 {
                return Err(bad());
            }
            while list.len() <= *i {
                list.push(Value::Null);
            }
            insert(&mut list[*i], rest, value, key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age_key() -> MasterKey {
        MasterKey::new(
            "age",
            vec![
                ("recipient".into(), Value::Str("age1xyz".into())),
                (
                    "enc".into(),
                    Value::Str("-----BEGIN AGE ENCRYPTED FILE-----\n".into()),
                ),
            ],
        )
    }

    #[test]
    fn round_trip_alphabetical_with_unknown_types() {
        let mut gcp = MasterKey::new(
            "gcp_kms",
            vec![("resource_id".into(), Value::Str("projects/p".into()))],
        );
        gcp.set_field("enc", Value::Str("CiQA".into()));
        let mut m = Metadata::new(vec![vec![age_key(), gcp]], Some(Metadata::default_rule()));
        m.mac = "ENC[x]".into();
        let v = m.to_value();
        let Value::Map(items) = &v else {
            panic!("not a map")
        };
        let keys: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Entry(k, _) => Some(k.as_str()),
                Item::Comment(_) | Item::InlineComment(_) => None,
            })
            .collect();
        assert_eq!(
            keys,
            [
                "age",
                "gcp_kms",
                "lastmodified",
                "mac",
                "unencrypted_suffix",
                "version"
            ]
        );
        let back = Metadata::from_value(&v).map_err(|e| e.to_string());
        let back = back.as_ref().map(|m| m.key_groups[0].len());
        assert_eq!(back, Ok(2));
        let flat = flatten(&v);
        assert_eq!(flat[0].0, "age__list_0__map_enc");
        let un = unflatten(flat).map(|u| Metadata::from_value(&u).is_ok());
        assert!(matches!(un, Ok(true)));
    }

    #[test]
    fn refuses_missing_version_and_keys() {
        let v = Value::Map(vec![
            Item::Entry("age".into(), Value::List(vec![age_key().to_value()])),
            Item::Entry(
                "lastmodified".into(),
                Value::Str("2024-01-01T00:00:00Z".into()),
            ),
        ]);
        assert!(
            matches!(Metadata::from_value(&v), Err(Error::Metadata(m)) if m.contains("version"))
        );
        let v = Value::Map(vec![
            Item::Entry("kms".into(), Value::Null),
            Item::Entry("hc_vault".into(), Value::List(vec![])),
            Item::Entry(
                "lastmodified".into(),
                Value::Str("2024-01-01T00:00:00Z".into()),
            ),
            Item::Entry("version".into(), Value::Str("3.5.0".into())),
        ]);
        assert!(
            matches!(Metadata::from_value(&v), Err(Error::Metadata(m)) if m.contains("no keys"))
        );
    }
}
