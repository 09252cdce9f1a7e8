//! KRM exec functions (kustomize `--enable-alpha-plugins --enable-exec`, kpt `--allow-exec`):
//! a `ResourceList` on stdin, one on stdout (KRM Functions Specification).
//!
//! - **Generator** (KSOPS-compatible): when the function config is `apiVersion: viaduct.ai/v1`,
//!   `kind: ksops`, its `files` (whole SOPS-encrypted manifests) and `secretFrom` entries
//!   (`files` → `stringData`, `binaryFiles` → `data`, `envs` → `stringData` entries; `key=path`
//!   or `path`) are decrypted and emitted; `kustomize.config.k8s.io/needs-hash` and `behavior`
//!   annotations on `secretFrom` metadata pass through for kustomize to honour.
//! - **Transformer**: any other config: every item that carries SOPS metadata is decrypted
//!   (orchestrator annotations detached around the MAC check), then placeholders are resolved.
//!   Items keep all their annotations, `internal.config.kubernetes.io/*` included.
//!
//! On failure the output still is a `ResourceList` with an error `results` entry, and the
//! caller exits non-zero (kustomize does not fail on `severity: error` alone). Paths in the
//! config are relative to the working directory (the kustomization root); absolute paths and
//! `..` are refused.

use std::path::Path;

use base64::Engine as _;
use hush_sops::Format;
use hush_sops::stores::{self, yaml_emit};
use hush_sops::tree::{Branch, Item, Value};

use crate::backend::Backend;
use crate::decrypt::{self, Keys};
use crate::manifest::{self, Doc};
use crate::render::contained;
use crate::resolve;
use crate::value::{self, get, get_str};
use crate::{Error, Result};

/// The outcome of a function run.
#[derive(Debug)]
pub struct Run {
    /// The `ResourceList` (or, in legacy mode, the stream) to write to stdout.
    pub stdout: String,
    /// The error, if the function failed (exit non-zero).
    pub error: Option<Error>,
}

/// Whether a config object is a KSOPS generator.
pub fn is_ksops(doc: &[Item]) -> bool {
    get_str(doc, "kind") == Some("ksops")
        && get_str(doc, "apiVersion").is_some_and(|a| a.starts_with("viaduct.ai/"))
}

/// Runs the function on a `ResourceList` read from stdin.
pub async fn run(
    input: &[u8],
    root: &Path,
    keys: &Keys,
    backend: Option<&dyn Backend>,
    opts: &resolve::Options,
) -> Run {
    let parsed = match manifest::parse(input, "<stdin>", false) {
        Ok(p) => p,
        Err(e) => return failed(Vec::new(), e),
    };
    // A ResourceList, or a bare stream of items (kyaml's ByteReader accepts both).
    let (config, items) = match parsed.as_slice() {
        [rl] if get_str(rl, "kind") == Some("ResourceList") => {
            let config = match get(rl, "functionConfig") {
                Some(Value::Map(m)) => Some(m.clone()),
                _ => None,
            };
            let items: Vec<Branch> = match get(rl, "items") {
                Some(Value::List(l)) => l
                    .iter()
                    .filter_map(|v| match v {
                        Value::Map(m) => Some(m.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (config, items)
        }
        _ => (None, parsed),
    };
    let config = config
        .filter(|c| c.iter().any(|i| matches!(i, Item::Entry(..))))
        .or_else(|| items.first().filter(|i| is_ksops(i)).cloned());
    let result = match &config {
        Some(c) if is_ksops(c) => generate(c, root, keys).await,
        _ => transform(items.clone(), root, keys).await,
    };
    let mut docs = match result {
        Ok(docs) => docs,
        Err(e) => return failed(items, e),
    };
    if let Err(e) = resolve::resolve(&mut docs, backend, opts).await {
        return failed(items, e);
    }
    Run {
        stdout: resource_list(docs.into_iter().map(|d| d.branch).collect(), None),
        error: None,
    }
}

/// Legacy one-argument mode (`ksops generator.yaml`): the generator file is read, its output
/// written as a plain YAML stream.
pub async fn run_legacy(config_file: &Path, root: &Path, keys: &Keys) -> Result<String> {
    let bytes = manifest::read_file(config_file)?;
    let name = config_file.display().to_string();
    let docs = manifest::parse(&bytes, &name, false)?;
    let config = docs
        .into_iter()
        .find(|d| is_ksops(d))
        .ok_or_else(|| Error::Krm(format!("{name}: no viaduct.ai/v1 ksops object")))?;
    let out = generate(&config, root, keys).await?;
    Ok(manifest::emit(&out))
}

fn failed(items: Vec<Branch>, e: Error) -> Run {
    let result = vec![
        Item::Entry("message".into(), Value::Str(e.to_string())),
        Item::Entry("severity".into(), Value::Str("error".into())),
    ];
    Run {
        stdout: resource_list(items, Some(vec![Value::Map(result)])),
        error: Some(e),
    }
}

fn resource_list(items: Vec<Branch>, results: Option<Vec<Value>>) -> String {
    let mut rl = vec![
        Item::Entry(
            "apiVersion".into(),
            Value::Str("config.kubernetes.io/v1".into()),
        ),
        Item::Entry("kind".into(), Value::Str("ResourceList".into())),
        Item::Entry(
            "items".into(),
            Value::List(items.into_iter().map(Value::Map).collect()),
        ),
    ];
    if let Some(r) = results {
        rl.push(Item::Entry("results".into(), Value::List(r)));
    }
    yaml_emit::emit(&[rl], 2)
}

async fn transform(items: Vec<Branch>, root: &Path, keys: &Keys) -> Result<Vec<Doc>> {
    let mut out = Vec::with_capacity(items.len());
    // kustomize re-orders fields before a transformer sees them: decrypt by ciphertext from the
    // verified source files of the build first (see `decrypt::Plaintexts`).
    let index = if items.iter().any(|i| manifest::is_sops(i)) {
        decrypt::Plaintexts::index(&crate::render::kustomize_dirs(root), keys).await?
    } else {
        decrypt::Plaintexts::default()
    };
    for (i, item) in items.into_iter().enumerate() {
        let file = value::annotation(&item, "internal.config.kubernetes.io/path")
            .or_else(|| value::annotation(&item, "config.kubernetes.io/path"))
            .map_or_else(|| format!("item {i}"), str::to_owned);
        let mut item = item;
        let branch = if manifest::is_sops(&item) {
            if index.apply(&mut item) {
                item
            } else {
                decrypt::open_doc(item, keys, &file).await?
            }
        } else {
            item
        };
        out.push(Doc { file, branch });
    }
    Ok(out)
}

fn strings(config: &[Item], key: &str, what: &str) -> Result<Vec<String>> {
    match get(config, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::List(l)) => l
            .iter()
            .filter(|v| !matches!(v, Value::Comment(_)))
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(Error::Krm(format!(
                    "{what}.{key}: expected a list of strings"
                ))),
            })
            .collect(),
        Some(_) => Err(Error::Krm(format!(
            "{what}.{key}: expected a list of strings"
        ))),
    }
}

async fn decrypt_file(root: &Path, rel: &str, keys: &Keys, format: Format) -> Result<Vec<Branch>> {
    let path = root.join(contained(rel)?);
    let bytes = manifest::read_file(&path)?;
    decrypt::open_file(&bytes, format, keys, rel).await
}

/// `key=path` or `path` (key = file name).
fn key_and_path(entry: &str) -> Result<(String, String)> {
    match entry.split_once('=') {
        Some((k, p)) if !k.is_empty() && !p.is_empty() => Ok((k.to_owned(), p.to_owned())),
        Some(_) => Err(Error::Krm(format!("{entry}: expected KEY=PATH or PATH"))),
        None => {
            let key = Path::new(entry)
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::Krm(format!("{entry}: not a file path")))?;
            Ok((key.to_owned(), entry.to_owned()))
        }
    }
}

async fn generate(config: &[Item], root: &Path, keys: &Keys) -> Result<Vec<Doc>> {
    let files = strings(config, "files", "ksops")?;
    let secret_from = match get(config, "secretFrom") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(l)) => l.clone(),
        Some(_) => return Err(Error::Krm("ksops.secretFrom: expected a list".into())),
    };
    if files.is_empty() && secret_from.is_empty() {
        return Err(Error::Krm(
            "unable to generate manifests: the ksops generator has neither files nor secretFrom"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for f in &files {
        let format = Format::from_path(Path::new(f));
        if !matches!(format, Format::Yaml | Format::Json) {
            return Err(Error::Krm(format!(
                "{f}: ksops files must be YAML or JSON manifests; use secretFrom for other files"
            )));
        }
        let docs = decrypt_file(root, f, keys, format).await?;
        out.extend(manifest::objects(docs, f));
    }
    for entry in secret_from {
        let Value::Map(spec) = entry else { continue };
        out.push(Doc {
            file: "ksops secretFrom".into(),
            branch: secret_from_entry(&spec, root, keys).await?,
        });
    }
    Ok(out)
}

async fn secret_from_entry(spec: &[Item], root: &Path, keys: &Keys) -> Result<Branch> {
    let metadata = match get(spec, "metadata") {
        Some(Value::Map(m)) if get_str(m, "name").is_some() => m.clone(),
        _ => {
            return Err(Error::Krm(
                "ksops.secretFrom: metadata.name is required".into(),
            ));
        }
    };
    let mut string_data: Vec<Item> = Vec::new();
    let mut data: Vec<Item> = Vec::new();
    for entry in strings(spec, "files", "secretFrom")? {
        let (key, path) = key_and_path(&entry)?;
        let format = Format::from_path(Path::new(&path));
        let branches = decrypt_file(root, &path, keys, format).await?;
        let bytes = stores::emit_plain(format, &branches, None).map_err(|error| Error::Sops {
            file: path.clone(),
            error,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Krm(format!("{path}: not UTF-8; use binaryFiles")))?;
        value::set(&mut string_data, &key, Value::Str(text));
    }
    for entry in strings(spec, "binaryFiles", "secretFrom")? {
        let (key, path) = key_and_path(&entry)?;
        let format = Format::from_path(Path::new(&path));
        let branches = decrypt_file(root, &path, keys, format).await?;
        let bytes = stores::emit_plain(format, &branches, None).map_err(|error| Error::Sops {
            file: path.clone(),
            error,
        })?;
        value::set(
            &mut data,
            &key,
            Value::Str(base64::engine::general_purpose::STANDARD.encode(bytes)),
        );
    }
    for path in strings(spec, "envs", "secretFrom")? {
        let format = match Format::from_path(Path::new(&path)) {
            Format::Binary => Format::Dotenv,
            f => f,
        };
        for branch in decrypt_file(root, &path, keys, format).await? {
            for item in branch {
                if let Item::Entry(k, v) = item {
                    let v = v.to_flat_string().unwrap_or_default();
                    value::set(&mut string_data, &k, Value::Str(v));
                }
            }
        }
    }
    let mut secret = vec![
        Item::Entry("apiVersion".into(), Value::Str("v1".into())),
        Item::Entry("kind".into(), Value::Str("Secret".into())),
        Item::Entry("metadata".into(), Value::Map(metadata)),
        Item::Entry(
            "type".into(),
            Value::Str(get_str(spec, "type").unwrap_or("Opaque").to_owned()),
        ),
    ];
    if !data.is_empty() {
        secret.push(Item::Entry("data".into(), Value::Map(data)));
    }
    if !string_data.is_empty() {
        secret.push(Item::Entry("stringData".into(), Value::Map(string_data)));
    }
    Ok(secret)
}
