//! `.sops.yaml`: lookup (from the working directory upwards, `--config`, `SOPS_CONFIG`),
//! `creation_rules` (first match on the path relative to the config file's directory),
//! `destination_rules` (kept for `publish`, parsed there) and `stores` indentation.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use hush_keys::{KINDS, KeyKind};
use hush_sops::tree::{Item, Value};
use regex::Regex;

/// A key named by a rule or flag: its type and identifying fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyRef {
    pub(crate) type_id: String,
    pub(crate) fields: Vec<(String, Value)>,
}

/// The parts of a creation rule hush uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreationRule {
    pub(crate) groups: Vec<Vec<KeyRef>>,
    pub(crate) shamir_threshold: usize,
    /// (field, text) of the one selection rule.
    pub(crate) crypt_rule: Option<(String, String)>,
    pub(crate) mac_only_encrypted: bool,
}

/// A loaded configuration file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    pub(crate) path: Option<PathBuf>,
    rules: Vec<Value>,
    /// `destination_rules`, as written (`publish` parses the one that matches).
    pub(crate) destination_rules: Vec<Value>,
    pub(crate) yaml_indent: Option<usize>,
    pub(crate) json_indent: Option<usize>,
    pub(crate) json_binary_indent: Option<usize>,
}

/// Finds the configuration: `--config`, else `SOPS_CONFIG`, else `.sops.yaml` in the working
/// directory or a parent (100 levels at most).
pub(crate) fn find(explicit: Option<&Path>) -> Result<Config> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => match std::env::var_os("SOPS_CONFIG") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => lookup(&std::env::current_dir().context("reading the working directory")?),
        },
    };
    match path {
        Some(p) => load(&p),
        None => Ok(Config::default()),
    }
}

fn lookup(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    for _ in 0..100 {
        let d = dir?;
        let candidate = d.join(".sops.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        if d.join(".sops.yml").is_file() {
            eprintln!(
                "[hush sops] warning: ignoring {} (sops only reads .sops.yaml)",
                d.join(".sops.yml").display()
            );
        }
        dir = d.parent();
    }
    None
}

fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the sops configuration {}", path.display()))?;
    let docs = hush_sops::stores::yaml_parse::parse(&text)
        .with_context(|| format!("parsing the sops configuration {}", path.display()))?;
    let mut cfg = Config {
        path: Some(path.to_path_buf()),
        ..Config::default()
    };
    let Some(doc) = docs.first() else {
        return Ok(cfg);
    };
    if let Some(Value::List(rules)) = get(doc, "creation_rules") {
        cfg.rules = rules.clone();
    }
    if let Some(Value::List(rules)) = get(doc, "destination_rules") {
        cfg.destination_rules = rules.clone();
    }
    if let Some(Value::Map(stores)) = get(doc, "stores") {
        let indent = |name: &str| match get(stores, name) {
            Some(Value::Map(m)) => match get(m, "indent") {
                Some(Value::Int(i)) if *i >= 0 => Some(*i as usize),
                _ => None,
            },
            _ => None,
        };
        cfg.yaml_indent = indent("yaml");
        cfg.json_indent = indent("json");
        cfg.json_binary_indent = indent("json_binary");
    }
    Ok(cfg)
}

pub(crate) fn get<'a>(items: &'a [Item], key: &str) -> Option<&'a Value> {
    items.iter().find_map(|i| match i {
        Item::Entry(k, v) if k == key => Some(v),
        _ => None,
    })
}

pub(crate) fn string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Str(s)) => Some(s.clone()),
        Some(v @ (Value::Int(_) | Value::Bool(_) | Value::Float(_))) => v.to_flat_string(),
        _ => None,
    }
}

/// A comma-separated string or (sops ≥ 3.11) a list of strings.
fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Str(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::List(l)) => l
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.trim().to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Config {
    /// The first creation rule matching `file` (its path relative to the config's directory).
    pub(crate) fn rule_for(&self, file: &Path) -> Result<Option<CreationRule>> {
        match (self.first_rule(file)?, &self.path) {
            (Some(r), Some(cfg_path)) => parse_rule(r, cfg_path).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether a tree run (`encrypt --recursive`) should encrypt `file`: its first matching
    /// creation rule has a `path_regex` (a catch-all rule would select every file of the tree).
    pub(crate) fn selects(&self, file: &Path) -> Result<bool> {
        Ok(self
            .first_rule(file)?
            .is_some_and(|r| get(r, "path_regex").is_some()))
    }

    fn first_rule(&self, file: &Path) -> Result<Option<&[Item]>> {
        let Some(cfg_path) = &self.path else {
            return Ok(None);
        };
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let base = cfg_path
            .parent()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
            .unwrap_or_default();
        let rel = abs
            .strip_prefix(&base)
            .unwrap_or(&abs)
            .to_string_lossy()
            .into_owned();
        for rule in &self.rules {
            let Value::Map(r) = rule else { continue };
            if let Some(re) = string(get(r, "path_regex")) {
                let re = Regex::new(&re).with_context(|| {
                    format!("{}: invalid path_regex {re:?}", cfg_path.display())
                })?;
                if !re.is_match(&rel) {
                    continue;
                }
            }
            return Ok(Some(r));
        }
        Ok(None)
    }
}

/// The keys and selection rule of a creation rule (or a destination's `recreation_rule`).
pub(crate) fn parse_rule(r: &[Item], cfg_path: &Path) -> Result<CreationRule> {
    let mut out = CreationRule::default();
    let profile = string(get(r, "aws_profile")).unwrap_or_default();
    if let Some(Value::List(groups)) = get(r, "key_groups") {
        for g in groups {
            let Value::Map(gm) = g else { continue };
            out.groups.push(group_keys(gm, &profile)?);
        }
    } else {
        let mut g = Vec::new();
        flat_keys(r, &profile, &mut g);
        if !g.is_empty() {
            out.groups.push(g);
        }
    }
    out.shamir_threshold = match get(r, "shamir_threshold") {
        Some(Value::Int(i)) if *i > 0 => *i as usize,
        _ => 0,
    };
    out.mac_only_encrypted = matches!(get(r, "mac_only_encrypted"), Some(Value::Bool(true)));
    let mut rules = Vec::new();
    for f in hush_sops::crypt::Rule::FIELDS {
        if let Some(t) = string(get(r, f)).filter(|t| !t.is_empty()) {
            rules.push((f.to_owned(), t));
        }
    }
    if rules.len() > 1 {
        bail!(
            "{}: cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex for the same rule",
            cfg_path.display()
        );
    }
    out.crypt_rule = rules.pop();
    Ok(out)
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

/// The keys of a rule's (or a group's) comma-separated lists, one per kind of
/// `hush_keys::KINDS` (`age`, `pgp`, `kms`, `hc_vault_transit_uri`, …), in that order.
fn flat_keys(r: &[Item], profile: &str, g: &mut Vec<KeyRef>) {
    for kind in KINDS {
        for id in list(get(r, kind.rule_key)) {
            g.push(KeyRef::named(kind, &id, profile, &[]));
        }
    }
}

fn group_keys(gm: &[Item], profile: &str) -> Result<Vec<KeyRef>> {
    let mut g: Vec<KeyRef> = Vec::new();
    flat_keys(gm, profile, &mut g);
    // `kms` in groups is a list of maps.
    g.retain(|k| k.type_id != "kms");
    if let (Some(Value::List(kms)), Some(kms_kind)) = (
        get(gm, "kms"),
        hush_keys::kinds::kind(hush_keys::kms::TYPE_ID),
    ) {
        for k in kms {
            match k {
                Value::Map(m) => {
                    let arn = string(get(m, "arn")).unwrap_or_default();
                    let role = string(get(m, "role")).unwrap_or_default();
                    let full = if role.is_empty() {
                        arn
                    } else {
                        format!("{arn}+{role}")
                    };
                    let prof = string(get(m, "aws_profile")).unwrap_or_else(|| profile.to_owned());
                    let ctx: Vec<(String, Value)> = match get(m, "context") {
                        Some(Value::Map(c)) => c
                            .iter()
                            .filter_map(|i| match i {
                                Item::Entry(k, v) => Some((k.clone(), v.clone())),
                                Item::Comment(_) | Item::InlineComment(_) => None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    g.push(KeyRef::named(kms_kind, &full, &prof, &ctx));
                }
                Value::Str(a) => g.push(KeyRef::named(kms_kind, a, profile, &[])),
                _ => {}
            }
        }
    }
    // Kinds whose group entries are maps (`gcp_kms: [{resource_id}]`).
    for kind in KINDS.iter().filter(|k| k.type_id != "kms") {
        if let Some(Value::List(items)) = get(gm, kind.rule_key) {
            for item in items {
                if let Value::Map(m) = item {
                    let id = group_map_id(kind, m)?;
                    g.push(KeyRef::named(kind, &id, profile, &[]));
                }
            }
        }
    }
    // Kinds whose group list has a name of its own (`hc_vault`).
    for kind in KINDS {
        if let Some(key) = kind.group_key {
            for id in list(get(gm, key)) {
                g.push(KeyRef::named(kind, &id, profile, &[]));
            }
        }
    }
    if let Some(Value::List(merge)) = get(gm, "merge") {
        for m in merge {
            if let Value::Map(mm) = m {
                g.extend(group_keys(mm, profile)?);
            }
        }
    }
    // Keys in a group are de-duplicated.
    let mut out: Vec<KeyRef> = Vec::new();
    for k in g {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// The id of a `key_groups` entry written as a map, as sops' config reads them:
/// `gcp_kms: [{resource_id}]`, `azure_keyvault: [{vaultUrl, key, version}]`, `hckms: [{key_id}]`.
/// Other kinds take strings only; a map there, or a map without its field, is refused by name.
fn group_map_id(kind: &KeyKind, m: &[Item]) -> Result<String> {
    let field = |name: &str| string(get(m, name)).filter(|v| !v.is_empty());
    let missing = |name: &str| {
        anyhow::anyhow!(
            "key_groups: a {} entry needs {name:?} (as sops' .sops.yaml)",
            kind.rule_key
        )
    };
    match kind.type_id {
        "gcp_kms" => field("resource_id").ok_or_else(|| missing("resource_id")),
        "hckms" => field("key_id").ok_or_else(|| missing("key_id")),
        "azure_kv" => {
            let vault = field("vaultUrl").ok_or_else(|| missing("vaultUrl"))?;
            let key = field("key").ok_or_else(|| missing("key"))?;
            let version = field("version").unwrap_or_default();
            Ok(format!(
                "{}/keys/{key}/{version}",
                vault.trim_end_matches('/')
            ))
        }
        _ => bail!(
            "key_groups: {} entries are strings, not maps",
            kind.rule_key
        ),
    }
}

impl KeyRef {
    /// A key of `kind` named by its id on a flag or in `.sops.yaml`, with the metadata fields
    /// its row derives from the id. A key with an `aws_profile` field (kms) takes `profile` and
    /// the encryption `context` (`--aws-profile`, `--encryption-context`, the rule's).
    pub(crate) fn named(
        kind: &KeyKind,
        id: &str,
        profile: &str,
        context: &[(String, Value)],
    ) -> Self {
        let mut fields: Vec<(String, Value)> = (kind.fields_from_id)(id)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::Str(v)))
            .collect();
        if let Some(at) = fields.iter().position(|(k, _)| k == "aws_profile") {
            fields[at].1 = s(profile);
            if !context.is_empty() {
                let ctx = context
                    .iter()
                    .map(|(k, v)| Item::Entry(k.clone(), v.clone()))
                    .collect();
                fields.insert(at, ("context".into(), Value::Map(ctx)));
            }
        }
        Self {
            type_id: kind.type_id.into(),
            fields,
        }
    }

    /// The identity hush-keys services use (recipient, ARN, Vault key URL, fingerprint).
    pub(crate) fn key_id(&self) -> String {
        hush_sops::metadata::MasterKey::new(self.type_id.clone(), self.fields.clone()).key_id()
    }
}
