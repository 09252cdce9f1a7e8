//! Decrypting the objects of a kustomize build by lookup in the plaintexts of its verified
//! source files.

use hush_sops::Format;
use hush_sops::tree::{Branch, Item, Value};

use super::Keys;
use crate::{Error, Result};

/// Plaintexts of the SOPS files of an app, indexed by ciphertext.
///
/// `kustomize build` re-orders fields and drops comments, and kustomize's namespace, label and
/// annotation transformers change the object, so the MAC of a SOPS object that went through it
/// can no longer be checked. Instead of skipping the MAC (Flux's answer), hush decrypts the
/// *source* files (MAC verified) and maps each `ENC[…]` value to its plaintext: an object in the
/// build output is decrypted by looking up its ciphertexts, which all came from verified files.
/// Objects with a ciphertext not in the index fall back to [`open_doc`] (MAC verified as is).
#[derive(Default)]
pub struct Plaintexts {
    map: std::collections::HashMap<String, Value>,
    files: usize,
}

impl std::fmt::Debug for Plaintexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plaintexts")
            .field("values", &self.map.len())
            .field("files", &self.files)
            .finish()
    }
}

impl Plaintexts {
    /// Indexes every SOPS-encrypted YAML/JSON file under `dirs` (recursively, dotfiles
    /// skipped). A file that cannot be decrypted or verified is an error.
    pub async fn index(dirs: &[std::path::PathBuf], keys: &Keys) -> Result<Self> {
        let mut out = Self::default();
        let mut seen = std::collections::BTreeSet::new();
        for dir in dirs {
            for path in crate::manifest::discover(dir)? {
                let Ok(canonical) = path.canonicalize() else {
                    continue;
                };
                if !seen.insert(canonical) {
                    continue;
                }
                let bytes = crate::manifest::read_file(&path)?;
                let marker: &[u8] = if path.extension().is_some_and(|e| e == "json") {
                    b"\"mac\": \"ENC["
                } else {
                    b"mac: ENC["
                };
                if !bytes.windows(marker.len()).any(|w| w == marker) {
                    continue;
                }
                let format = Format::from_path(&path);
                let file = path.display().to_string();
                let (enc, meta) =
                    hush_sops::stores::load_encrypted(format, &bytes).map_err(|error| {
                        Error::Sops {
                            file: file.clone(),
                            error,
                        }
                    })?;
                let plain = keys.open(enc.clone(), meta, &file).await?;
                for (e, p) in enc.iter().zip(&plain) {
                    pair_items(e, p, &mut out.map);
                }
                out.files += 1;
            }
        }
        Ok(out)
    }

    /// Number of files indexed.
    pub fn files(&self) -> usize {
        self.files
    }

    /// Decrypts `doc` by lookup: `true` (and `sops` removed) when every `ENC[…]` value of the
    /// document is known; `false` (document untouched) otherwise.
    pub fn apply(&self, doc: &mut Branch) -> bool {
        let mut copy: Vec<Item> = doc
            .iter()
            .filter(|i| !matches!(i, Item::Entry(k, _) if k == "sops"))
            .cloned()
            .collect();
        let mut ok = true;
        for item in &mut copy {
            if let Item::Entry(_, v) = item {
                ok &= self.replace(v);
            }
        }
        self.comments(&mut copy);
        if ok {
            *doc = copy;
        }
        ok
    }

    /// Encrypted comments (`#ENC[…]`) are decrypted when known and dropped otherwise.
    fn comments(&self, items: &mut Vec<Item>) {
        items.retain_mut(|i| match i {
            Item::Comment(c) | Item::InlineComment(c) if c.trim().starts_with("ENC[") => {
                match self.map.get(c.trim()) {
                    Some(Value::Str(p)) => {
                        *c = p.clone();
                        true
                    }
                    _ => false,
                }
            }
            Item::Entry(_, Value::Map(m)) => {
                self.comments(m);
                true
            }
            _ => true,
        });
    }

    fn replace(&self, v: &mut Value) -> bool {
        match v {
            Value::Str(s) if s.starts_with("ENC[") => match self.map.get(s.as_str()) {
                Some(p) => {
                    *v = p.clone();
                    true
                }
                None => false,
            },
            Value::Map(m) => m.iter_mut().all(|i| match i {
                Item::Entry(_, v) => self.replace(v),
                _ => true,
            }),
            Value::List(l) => l.iter_mut().all(|v| self.replace(v)),
            _ => true,
        }
    }
}

fn pair_items(enc: &[Item], plain: &[Item], map: &mut std::collections::HashMap<String, Value>) {
    for (e, p) in enc.iter().zip(plain) {
        match (e, p) {
            (Item::Entry(_, ev), Item::Entry(_, pv)) => pair_values(ev, pv, map),
            (Item::Comment(ec), Item::Comment(pc))
            | (Item::InlineComment(ec), Item::InlineComment(pc))
                if ec.trim().starts_with("ENC[") =>
            {
                map.insert(ec.trim().to_owned(), Value::Str(pc.clone()));
            }
            _ => {}
        }
    }
}

fn pair_values(e: &Value, p: &Value, map: &mut std::collections::HashMap<String, Value>) {
    match (e, p) {
        (Value::Str(s), p) if s.starts_with("ENC[") => {
            map.insert(s.clone(), p.clone());
        }
        (Value::Map(em), Value::Map(pm)) => pair_items(em, pm, map),
        (Value::List(el), Value::List(pl)) => {
            for (e, p) in el.iter().zip(pl) {
                pair_values(e, p, map);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_comments_full_line_and_inline_are_decrypted_by_lookup() {
        let entry = |k: &str, v: &str| Item::Entry(k.into(), Value::Str(v.into()));
        let enc = vec![
            Item::Comment("ENC[head]".into()),
            entry("k", "ENC[value]"),
            Item::InlineComment("ENC[inline]".into()),
        ];
        let plain = vec![
            Item::Comment("about k".into()),
            entry("k", "v"),
            Item::InlineComment("note".into()),
        ];
        let mut index = Plaintexts::default();
        pair_items(&enc, &plain, &mut index.map);
        let mut doc = enc.clone();
        assert!(index.apply(&mut doc));
        assert!(doc == plain, "an ENC[] comment was left in the output");
    }
}
