//! Decrypting: a file's data key opened with the keys of a render, then its documents (a whole
//! file, or one object from a stream with orchestrator annotations detached around the MAC).

use hush_sops::Format;
use hush_sops::metadata::Metadata;
use hush_sops::tree::{Branch, Item, Value};

use super::Keys;
use crate::{Error, Result};

impl Keys {
    /// Opens `branches` with `meta`'s data key (MAC verified); errors name `file`.
    pub(super) async fn open(
        &self,
        branches: Vec<Branch>,
        meta: Metadata,
        file: &str,
    ) -> Result<Vec<Branch>> {
        let registry = self.registry_for(&meta);
        let sops = |error| Error::Sops {
            file: file.to_owned(),
            error,
        };
        let key = match hush_sops::keys::unwrap_data_key(&meta, &registry, &self.order).await {
            Ok(k) => k,
            Err(e) if !self.unsupported.is_empty() => return Err(self.unsupported_error(file, e)),
            Err(e) => return Err(sops(e)),
        };
        let opened = hush_sops::file::open_with_key(branches, meta, key, false).map_err(sops)?;
        Ok(opened.branches)
    }
}

/// Decrypts a whole SOPS file (every document; the MAC covers them all).
pub async fn open_file(
    bytes: &[u8],
    format: Format,
    keys: &Keys,
    file: &str,
) -> Result<Vec<Branch>> {
    let (branches, meta) =
        hush_sops::stores::load_encrypted(format, bytes).map_err(|error| Error::Sops {
            file: file.to_owned(),
            error,
        })?;
    keys.open(branches, meta, file).await
}

/// Whether an annotation is added by a KRM orchestrator (and so not covered by the MAC).
pub fn is_orchestrator_annotation(key: &str) -> bool {
    key.starts_with("config.kubernetes.io/")
        || key.starts_with("internal.config.kubernetes.io/")
        || key == "config.k8s.io/id"
        || key == "kustomize.config.k8s.io/id"
}

/// Decrypts one SOPS-encrypted object that arrived in a stream (stdin, a `ResourceList`),
/// detaching orchestrator annotations around the MAC check.
pub async fn open_doc(mut doc: Branch, keys: &Keys, file: &str) -> Result<Branch> {
    let detached = detach(&mut doc);
    let Some(meta_value) = crate::value::remove(&mut doc, "sops") else {
        return Ok(doc);
    };
    let meta = Metadata::from_value(&meta_value).map_err(|error| Error::Sops {
        file: file.to_owned(),
        error,
    })?;
    let mut out = keys.open(vec![doc], meta, file).await?;
    let mut doc = out.pop().unwrap_or_default();
    reattach(&mut doc, detached);
    Ok(doc)
}

/// Orchestrator annotations taken off an object (an `annotations` map that held only them is
/// removed, and recreated on reattach).
struct Detached {
    items: Vec<Item>,
}

fn detach(doc: &mut Branch) -> Detached {
    let Some(Value::Map(meta)) = crate::value::get_mut(doc, "metadata") else {
        return Detached { items: Vec::new() };
    };
    let Some(Value::Map(ann)) = crate::value::get_mut(meta, "annotations") else {
        return Detached { items: Vec::new() };
    };
    let (items, keep): (Vec<Item>, Vec<Item>) = std::mem::take(ann)
        .into_iter()
        .partition(|i| matches!(i, Item::Entry(k, _) if is_orchestrator_annotation(k)));
    *ann = keep;
    if ann.is_empty() && !items.is_empty() {
        crate::value::remove(meta, "annotations");
    }
    Detached { items }
}

fn reattach(doc: &mut Branch, d: Detached) {
    if d.items.is_empty() {
        return;
    }
    if let Some(ann) = crate::value::annotations_mut(doc) {
        ann.extend(d.items);
    }
}

impl Keys {
    /// A data key that could not be opened while the key directory holds files of kinds this
    /// build cannot use: the error names those files and kinds.
    fn unsupported_error(&self, file: &str, e: hush_sops::Error) -> Error {
        let files: Vec<&str> = self.unsupported.iter().map(|(_, f)| f.as_str()).collect();
        let mut kinds: Vec<&str> = self.unsupported.iter().map(|(k, _)| k.name).collect();
        kinds.dedup();
        let usable: Vec<&str> = hush_keys::KINDS
            .iter()
            .filter(|k| k.load_flux_file.is_some() && k.build.is_some())
            .map(|k| k.name)
            .collect();
        Error::Config(format!(
            "{file}: SOPS decryption failed: {e} (the key directory holds {}: {} keys are not \
             supported by hush; add a key of a kind it supports ({}) to the file's key groups)",
            files.join(", "),
            kinds.join(" and "),
            usable.join(", ")
        ))
    }
}
