//! The placeholder resolver. Phase one collects every distinct [`SecretRef`] of the whole render
//! (path annotations and inline placeholders, `Secret.data` decoded); phase two reads each one
//! once, at most `concurrency` at a time; phase three substitutes with AVP's rules:
//!
//! - `avp.kubernetes.io/ignore: "true"` skips the object;
//! - `avp.kubernetes.io/path` enables `<key>` placeholders (with `secret-version`), and
//!   `avp.kubernetes.io/kv-version` overrides the KV version of every read of the object;
//! - only values are replaced, never keys; a value that is exactly one placeholder and resolves
//!   to a non-string is injected typed, except in ConfigMaps (stringified);
//! - a `Secret.data` value whose base64 decodes to text with placeholders is replaced inside the
//!   decoded text and re-encoded;
//! - `avp.kubernetes.io/remove-missing: "true"` (Secret/ConfigMap only) drops `data`/`stringData`
//!   entries whose placeholder has no value; otherwise a missing value fails the render, naming
//!   the placeholder, field, object and file.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use futures::StreamExt as _;
use hush_sops::tree::{Item, Value};
use regex::Regex;
use serde_json::Value as Json;

use crate::backend::{Backend, SecretData, SecretRef};
use crate::manifest::Doc;
use crate::placeholder::{self, Placeholder, Reference};
use crate::value::{self, annotation, from_json, stringify};
use crate::{Error, Result};

/// AVP's annotations.
pub mod annotations {
    /// Path of the secret for `<key>` placeholders.
    pub const PATH: &str = "avp.kubernetes.io/path";
    /// Skip the object.
    pub const IGNORE: &str = "avp.kubernetes.io/ignore";
    /// Drop Secret/ConfigMap entries without a value.
    pub const REMOVE_MISSING: &str = "avp.kubernetes.io/remove-missing";
    /// KV version (1 or 2) for reads of this object.
    pub const KV_VERSION: &str = "avp.kubernetes.io/kv-version";
    /// Version for `<key>` placeholders.
    pub const SECRET_VERSION: &str = "avp.kubernetes.io/secret-version";
}

/// Options of the resolver.
#[derive(Debug, Clone)]
pub struct Options {
    /// `AVP_PATH_VALIDATION`: every path must match.
    pub path_validation: Option<Regex>,
    /// `AVP_PATH_PREFIX`: prepended (with `/`) to paths that do not already start with it.
    pub path_prefix: Option<String>,
    /// Reads in flight at most.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            path_validation: None,
            path_prefix: None,
            concurrency: 16,
        }
    }
}

/// What a render read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Distinct (path, version, KV version) reads.
    pub distinct: usize,
    /// Placeholders replaced.
    pub replaced: usize,
}

struct ObjCtx {
    file: String,
    kind: String,
    name: String,
    generic: Option<SecretRef>,
    kv: Option<u8>,
    /// Inline placeholders are read key by key ([`Backend::reads_keys`]).
    keyed: bool,
}

impl ObjCtx {
    fn new(doc: &Doc, opts: &Options, keyed: bool) -> Result<ObjCtx> {
        let (kind, name, _) = value::identity(&doc.branch);
        let kv = match annotation(&doc.branch, annotations::KV_VERSION) {
            None => None,
            Some("1") => Some(1),
            Some("2") => Some(2),
            Some(other) => {
                return Err(Error::Config(format!(
                    "{}: {kind}/{name}: {} must be 1 or 2, not {other:?}",
                    doc.file,
                    annotations::KV_VERSION
                )));
            }
        };
        let mut ctx = ObjCtx {
            file: doc.file.clone(),
            kind,
            name,
            generic: None,
            kv,
            keyed,
        };
        if let Some(path) = annotation(&doc.branch, annotations::PATH) {
            let version = annotation(&doc.branch, annotations::SECRET_VERSION)
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            ctx.generic = Some(ctx.reference(path, version, None, opts)?);
        }
        Ok(ctx)
    }

    /// The read of `path` at `version`; `key` is an inline placeholder's key.
    fn reference(
        &self,
        path: &str,
        version: Option<String>,
        key: Option<&str>,
        opts: &Options,
    ) -> Result<SecretRef> {
        check_path(path).map_err(|reason| Error::PathInvalid {
            file: self.file.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            path: path.to_owned(),
            reason,
        })?;
        let path = match opts.path_prefix.as_deref().filter(|p| !p.is_empty()) {
            Some(prefix) => {
                check_path(prefix)
                    .map_err(|reason| Error::Config(format!("AVP_PATH_PREFIX: {reason}")))?;
                if is_under(path, prefix) {
                    path.to_owned()
                } else {
                    format!(
                        "{}/{}",
                        prefix.trim_end_matches('/'),
                        path.trim_start_matches('/')
                    )
                }
            }
            None => path.to_owned(),
        };
        if let Some(re) = &opts.path_validation
            && !re.is_match(&path)
        {
            return Err(Error::PathRefused {
                file: self.file.clone(),
                kind: self.kind.clone(),
                name: self.name.clone(),
                path,
            });
        }
        Ok(SecretRef {
            path,
            version,
            kv_version: self.kv,
            key: key.filter(|_| self.keyed).map(str::to_owned),
        })
    }

    fn malformed(&self, m: placeholder::Malformed) -> Error {
        Error::Placeholder {
            file: self.file.to_owned(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            placeholder: m.text,
            message: m.message,
        }
    }
}

/// Refuses a secret path that would be read somewhere else than it says: a `.` or `..` segment
/// (the URL parser and Vault resolve them, so `team-a/../team-b` checked against a prefix or
/// `AVP_PATH_VALIDATION` would read team-b), percent-encoding (`%2e%2e` is `..` to a URL
/// parser, `%2f` a slash to Vault), a backslash (a slash to a URL parser), `?` and `#` (they end
/// the URL path) and control characters.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if let Some(c) = path
        .chars()
        .find(|c| c.is_control() || matches!(c, '%' | '\\' | '?' | '#'))
    {
        return Err(format!(
            "the character {c:?} is not allowed in a secret path"
        ));
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err("'.' and '..' segments are not allowed in a secret path".into());
    }
    if path.split('/').all(str::is_empty) {
        return Err("the path is empty".into());
    }
    Ok(())
}

/// Whether `path` is `prefix` or below it, segment by segment (`team-a` is not under `team`;
/// empty segments from doubled or outer slashes do not count).
fn is_under(path: &str, prefix: &str) -> bool {
    let mut path = path.split('/').filter(|s| !s.is_empty());
    prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .all(|p| path.next() == Some(p))
}

fn ignored(doc: &Doc) -> bool {
    annotation(&doc.branch, annotations::IGNORE) == Some("true")
}

fn is_kind(doc: &[Item], kind: &str) -> bool {
    value::get_str(doc, "kind") == Some(kind) && value::get_str(doc, "apiVersion") == Some("v1")
}

/// Visits every string value (not keys) with whether it is a base64 `Secret.data` entry.
fn visit<F: FnMut(&str) -> Result<()>>(doc: &[Item], secret: bool, f: &mut F) -> Result<()> {
    fn walk<F: FnMut(&str) -> Result<()>>(v: &Value, f: &mut F) -> Result<()> {
        match v {
            Value::Str(s) => f(s),
            Value::Map(m) => m.iter().try_for_each(|i| match i {
                Item::Entry(_, v) => walk(v, f),
                _ => Ok(()),
            }),
            Value::List(l) => l.iter().try_for_each(|v| walk(v, f)),
            _ => Ok(()),
        }
    }
    for item in doc {
        let Item::Entry(k, v) = item else { continue };
        if secret
            && k == "data"
            && let Value::Map(m) = v
        {
            for item in m {
                if let Item::Entry(_, Value::Str(s)) = item {
                    if let Some(text) = decode_b64_text(s) {
                        f(&text)?;
                    }
                    f(s)?;
                }
            }
            continue;
        }
        walk(v, f)?;
    }
    Ok(())
}

fn decode_b64_text(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok().filter(|t| t.contains('<'))
}

/// Phase one: every distinct read of the render (`keyed`: inline placeholders are read key by
/// key, see [`Backend::reads_keys`]).
pub fn collect(docs: &[Doc], opts: &Options, keyed: bool) -> Result<BTreeSet<SecretRef>> {
    let mut refs = BTreeSet::new();
    for doc in docs.iter().filter(|d| !ignored(d)) {
        let ctx = ObjCtx::new(doc, opts, keyed)?;
        let secret = is_kind(&doc.branch, "Secret");
        let mut found_generic = false;
        visit(&doc.branch, secret, &mut |s| {
            for p in placeholder::scan(s, ctx.generic.is_some()).map_err(|m| ctx.malformed(m))? {
                match p.reference {
                    Reference::Generic { .. } => found_generic = true,
                    Reference::Inline { path, version, key } => {
                        refs.insert(ctx.reference(&path, version, Some(&key), opts)?);
                    }
                }
            }
            Ok(())
        })?;
        if let Some(g) = ctx.generic
            && found_generic
        {
            refs.insert(g);
        }
    }
    Ok(refs)
}

/// Phase two: reads each reference once, `opts.concurrency` at a time.
pub async fn fetch(
    refs: BTreeSet<SecretRef>,
    backend: &dyn Backend,
    concurrency: usize,
) -> Result<BTreeMap<SecretRef, Option<SecretData>>> {
    let results: Vec<_> = futures::stream::iter(refs)
        .map(|r| async move {
            let data = backend.read(&r).await;
            (r, data)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (r, data) in results {
        out.insert(r, data.map_err(Error::Backend)?);
    }
    Ok(out)
}

/// Resolves every placeholder of `docs` in place.
pub async fn resolve(
    docs: &mut [Doc],
    backend: Option<&dyn Backend>,
    opts: &Options,
) -> Result<Stats> {
    let keyed = backend.is_some_and(Backend::reads_keys);
    let refs = collect(docs, opts, keyed)?;
    let distinct = refs.len();
    let cache = match (backend, refs.is_empty()) {
        (_, true) => BTreeMap::new(),
        (Some(b), false) => fetch(refs, b, opts.concurrency).await?,
        (None, false) => {
            return Err(Error::Config(
                "the manifests have placeholders but no secret backend is configured (set \
                 AVP_TYPE, VAULT_ADDR and credentials in the plugin's environment)"
                    .into(),
            ));
        }
    };
    let mut replaced = 0;
    for doc in docs.iter_mut() {
        if ignored(doc) {
            continue;
        }
        replaced += substitute(doc, &cache, opts, keyed)?;
    }
    Ok(Stats { distinct, replaced })
}

struct Subst<'a> {
    ctx: ObjCtx,
    cache: &'a BTreeMap<SecretRef, Option<SecretData>>,
    opts: &'a Options,
    configmap: bool,
    missing: Vec<String>,
    replaced: usize,
}

enum Outcome {
    Unchanged,
    Replaced(Value),
    /// A placeholder had no value (recorded in `missing`).
    Missing,
}

impl Subst<'_> {
    fn lookup(&self, p: &Placeholder) -> Result<Option<Json>> {
        let data = match &p.reference {
            Reference::Generic { .. } => self.ctx.generic.as_ref(),
            Reference::Inline { .. } => None,
        };
        let (r, key) = match &p.reference {
            Reference::Generic { key } => match data {
                Some(r) => (r.clone(), key),
                None => return Ok(None),
            },
            Reference::Inline { path, key, version } => (
                self.ctx
                    .reference(path, version.clone(), Some(key), self.opts)?,
                key,
            ),
        };
        Ok(self
            .cache
            .get(&r)
            .and_then(|d| d.as_ref())
            .and_then(|d| d.get(key.as_str()))
            .cloned())
    }

    /// Replaces the placeholders of one string.
    fn string(&mut self, s: &str, field: &str, typed: bool) -> Result<Outcome> {
        let found =
            placeholder::scan(s, self.ctx.generic.is_some()).map_err(|m| self.ctx.malformed(m))?;
        if found.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        let mut missing = false;
        let whole = found.len() == 1 && found[0].range == (0..s.len());
        for p in &found {
            out.push_str(&s[at..p.range.start]);
            at = p.range.end;
            let Some(mut v) = self.lookup(p)? else {
                self.missing.push(format!(
                    "missing value for placeholder {} in {field}",
                    p.text
                ));
                missing = true;
                continue;
            };
            for m in &p.modifiers {
                v = placeholder::apply(m, v).map_err(|message| Error::Placeholder {
                    file: self.ctx.file.clone(),
                    kind: self.ctx.kind.clone(),
                    name: self.ctx.name.clone(),
                    placeholder: p.text.clone(),
                    message,
                })?;
            }
            self.replaced += 1;
            if whole && typed && !self.configmap && !v.is_string() {
                return Ok(Outcome::Replaced(from_json(&v)));
            }
            out.push_str(&stringify(&v));
        }
        out.push_str(&s[at..]);
        Ok(if missing {
            Outcome::Missing
        } else {
            Outcome::Replaced(Value::Str(out))
        })
    }

    fn value(&mut self, v: &mut Value, field: &str) -> Result<bool> {
        match v {
            Value::Str(s) => match self.string(s, field, true)? {
                Outcome::Unchanged => Ok(true),
                Outcome::Replaced(n) => {
                    *v = n;
                    Ok(true)
                }
                Outcome::Missing => Ok(false),
            },
            Value::Map(m) => {
                for item in m.iter_mut() {
                    if let Item::Entry(k, v) = item {
                        let f = format!("{field}.{k}");
                        self.value(v, &f)?;
                    }
                }
                Ok(true)
            }
            Value::List(l) => {
                for (i, v) in l.iter_mut().enumerate() {
                    self.value(v, &format!("{field}[{i}]"))?;
                }
                Ok(true)
            }
            _ => Ok(true),
        }
    }

    /// A `Secret.data` entry: placeholders inside the decoded text, else in the raw string.
    fn secret_data(&mut self, v: &mut Value, field: &str) -> Result<bool> {
        if let Value::Str(s) = v
            && let Some(text) = decode_b64_text(s)
            && placeholder::mentions(&text, self.ctx.generic.is_some())
        {
            return Ok(match self.string(&text, field, false)? {
                Outcome::Unchanged => true,
                Outcome::Replaced(Value::Str(t)) => {
                    *v = Value::Str(base64::engine::general_purpose::STANDARD.encode(t));
                    true
                }
                Outcome::Replaced(_) => true,
                Outcome::Missing => false,
            });
        }
        self.value(v, field)
    }
}

fn substitute(
    doc: &mut Doc,
    cache: &BTreeMap<SecretRef, Option<SecretData>>,
    opts: &Options,
    keyed: bool,
) -> Result<usize> {
    let secret = is_kind(&doc.branch, "Secret");
    let configmap = is_kind(&doc.branch, "ConfigMap");
    let remove_missing = annotation(&doc.branch, annotations::REMOVE_MISSING) == Some("true");
    let ctx = ObjCtx::new(doc, opts, keyed)?;
    if remove_missing && !secret && !configmap {
        return Err(Error::Config(format!(
            "{}: {}/{}: {} is only valid on Secrets and ConfigMaps",
            ctx.file,
            ctx.kind,
            ctx.name,
            annotations::REMOVE_MISSING
        )));
    }
    let file = doc.file.clone();
    let mut s = Subst {
        ctx,
        cache,
        opts,
        configmap,
        missing: Vec::new(),
        replaced: 0,
    };
    for item in doc.branch.iter_mut() {
        let Item::Entry(k, v) = item else { continue };
        let data_map = (secret && (k == "data" || k == "stringData")) || (configmap && k == "data");
        match (data_map, v) {
            (true, Value::Map(m)) => {
                let mut drop = Vec::new();
                for (i, item) in m.iter_mut().enumerate() {
                    let Item::Entry(dk, dv) = item else { continue };
                    let field = format!("{k}.{dk}");
                    let before = s.missing.len();
                    let ok = if secret && k == "data" {
                        s.secret_data(dv, &field)?
                    } else {
                        s.value(dv, &field)?
                    };
                    if !ok && remove_missing {
                        s.missing.truncate(before);
                        drop.push(i);
                    }
                }
                for i in drop.into_iter().rev() {
                    m.remove(i);
                }
            }
            (_, v) => {
                let field = k.clone();
                s.value(v, &field)?;
            }
        }
    }
    if !s.missing.is_empty() {
        return Err(Error::Missing {
            file,
            kind: s.ctx.kind,
            name: s.ctx.name,
            missing: s.missing,
        });
    }
    Ok(s.replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(yaml: &str, opts: &Options) -> Result<Vec<String>> {
        let docs: Vec<Doc> = crate::manifest::parse(yaml.as_bytes(), "app.yaml", false)?
            .into_iter()
            .map(|branch| Doc {
                file: "app.yaml".into(),
                branch,
            })
            .collect();
        Ok(collect(&docs, opts, false)?
            .into_iter()
            .map(|r| r.path)
            .collect())
    }

    fn config_map(placeholder: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  k: <path:{placeholder}#key>\n"
        )
    }

    fn team_a() -> Options {
        Options {
            path_prefix: Some("secret/data/team-a".into()),
            path_validation: Some(Regex::new("^secret/data/team-a/").unwrap()),
            ..Options::default()
        }
    }

    #[test]
    fn paths_cannot_escape_the_prefix_or_the_validation() {
        let opts = team_a();
        for escape in [
            "secret/data/team-a/../../team-b/x",
            "secret/data/team-a/./../team-b/x",
            "secret/data/team-a/%2e%2e/%2E%2E/team-b/x",
            "secret/data/team-a/%2fteam-b",
            "secret/data/team-a/..\\team-b\\x",
            "secret/data/team-a/x?list=true",
            "secret/data/team-a/x/..",
            "//",
        ] {
            let err = refs(&config_map(escape), &opts).unwrap_err();
            assert!(
                matches!(&err, Error::PathInvalid { path, .. } if path == escape),
                "{escape}: {err}"
            );
        }
        assert!(check_path("secret/data/team-a/x\u{1b}[2J").is_err());
        // A sibling whose name starts like the prefix is not under it: it gets the prefix.
        assert_eq!(
            refs(&config_map("secret/data/team-a-evil/x"), &opts).unwrap(),
            ["secret/data/team-a/secret/data/team-a-evil/x"]
        );
        // Paths below the prefix, with or without it, with doubled or outer slashes.
        assert_eq!(
            refs(&config_map("secret/data/team-a/db"), &opts).unwrap(),
            ["secret/data/team-a/db"]
        );
        assert_eq!(
            refs(&config_map("db"), &opts).unwrap(),
            ["secret/data/team-a/db"]
        );
        assert_eq!(
            refs(&config_map("/db/"), &opts).unwrap(),
            ["secret/data/team-a/db/"]
        );
        // Doubled slashes are below the prefix segment by segment, and the validation sees
        // them as written (here: refused).
        assert!(matches!(
            refs(&config_map("secret//data/team-a/db"), &opts),
            Err(Error::PathRefused { .. })
        ));
        let prefix_only = Options {
            path_validation: None,
            ..team_a()
        };
        assert_eq!(
            refs(&config_map("secret//data/team-a/db"), &prefix_only).unwrap(),
            ["secret//data/team-a/db"]
        );
        // Without a prefix the validation alone still cannot be walked around.
        let validation_only = Options {
            path_prefix: None,
            ..team_a()
        };
        assert!(matches!(
            refs(
                &config_map("secret/data/team-a/../team-b/x"),
                &validation_only
            ),
            Err(Error::PathInvalid { .. })
        ));
        assert!(matches!(
            refs(&config_map("secret/data/team-b/x"), &validation_only),
            Err(Error::PathRefused { .. })
        ));
        // The generic path annotation goes through the same checks.
        let annotated = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    \
            avp.kubernetes.io/path: secret/data/team-a/../team-b\nstringData:\n  k: <key>\n";
        assert!(matches!(
            refs(annotated, &opts),
            Err(Error::PathInvalid { .. })
        ));
        // A prefix with an escape is a configuration error.
        let bad_prefix = Options {
            path_prefix: Some("secret/../x".into()),
            path_validation: None,
            ..Options::default()
        };
        assert!(matches!(
            refs(&config_map("db"), &bad_prefix),
            Err(Error::Config(_))
        ));
    }
}
