//! The stores: how each file format maps to the tree and where the metadata lives.
//!
//! | format | metadata |
//! | --- | --- |
//! | YAML | `sops:` map in every document (read from the first) |
//! | JSON, binary | `"sops"` object |
//! | dotenv | flattened `sops_…` keys, `\n` escaped |
//! | INI | flattened keys in a `[sops]` section, `\n` escaped |

pub mod dotenv;
pub mod ini;
pub mod json;
pub mod toml;
pub mod yaml_emit;
pub mod yaml_parse;

use std::path::Path;

use crate::metadata::{self, Metadata};
use crate::tree::{Branch, Item, Value};
use crate::{Error, Result};

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (multi-document).
    Yaml,
    /// JSON.
    Json,
    /// dotenv.
    Dotenv,
    /// INI.
    Ini,
    /// Any bytes, stored under `data`.
    Binary,
    /// TOML (hush addition; only by `--input-type`/`--output-type toml`).
    Toml,
}

impl Format {
    /// Detects the format from a file name as sops does.
    pub fn from_path(path: &Path) -> Self {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "ini" => Format::Ini,
            _ if name.ends_with(".env") || name == ".env" => Format::Dotenv,
            _ => Format::Binary,
        }
    }

    /// Parses an `--input-type`/`--output-type` name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            "toml" => Format::Toml,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Ini => "INI",
            Format::Binary => "binary",
            Format::Toml => "TOML",
        }
    }
}

/// Git conflict markers in a text file: the names of the keys on the conflicting lines, or
/// `None` when there are no markers. Values are never returned.
pub fn conflict_keys(bytes: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut inside = false;
    let mut found = false;
    let mut keys: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("<<<<<<< ") || line == "<<<<<<<" {
            inside = true;
            found = true;
            continue;
        }
        if line.starts_with(">>>>>>> ") || line == ">>>>>>>" {
            inside = false;
            continue;
        }
        if !inside || line.starts_with("=======") || line.starts_with("|||||||") {
            continue;
        }
        let trimmed = line
            .trim_start()
            .trim_start_matches("- ")
            .trim_start_matches('"');
        let end = trimmed.find([':', '=', '"']).unwrap_or(0);
        let key = trimmed[..end].trim();
        if !key.is_empty() && !key.starts_with('#') && !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    found.then_some(keys)
}

/// Reads a plaintext file into documents.
pub fn load_plain(format: Format, bytes: &[u8]) -> Result<Vec<Branch>> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if format != Format::Binary
        && let Some(keys) = conflict_keys(bytes)
    {
        return Err(Error::Conflict { keys });
    }
    match format {
        Format::Yaml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Error::parse("YAML", 0, "the file is not valid UTF-8"))?;
            let docs = yaml_parse::parse(text)?;
            if docs.is_empty() {
                return Err(Error::Empty);
            }
            Ok(docs)
        }
        Format::Json => Ok(vec![json::parse(bytes)?]),
        Format::Dotenv => Ok(vec![dotenv::parse(bytes)?]),
        Format::Ini => Ok(vec![ini::parse(bytes)?]),
        Format::Toml => Ok(vec![toml::parse(bytes)?]),
        Format::Binary => Ok(vec![vec![Item::Entry("data".into(), bytes_value(bytes))]]),
    }
}

/// The 1-based line of byte `offset` in `src`, for parse errors (past the end: the last line).
fn line_at(src: &[u8], offset: usize) -> usize {
    src[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn bytes_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Str(s.to_owned()),
        Err(_) => Value::Bytes(bytes.to_vec()),
    }
}

/// Whether a plaintext tree already carries sops metadata (a `sops` key, or `sops_` keys in
/// dotenv). Encrypting it again is refused (exit 203).
pub fn has_metadata(format: Format, branches: &[Branch]) -> Option<String> {
    let first = branches.first()?;
    first.iter().find_map(|i| match i {
        Item::Entry(k, _) if format == Format::Dotenv && k.starts_with("sops_") => Some(k.clone()),
        Item::Entry(k, _) if format != Format::Dotenv && k == "sops" => Some(k.clone()),
        _ => None,
    })
}

/// Reads an encrypted file: its documents (metadata removed) and its metadata.
pub fn load_encrypted(format: Format, bytes: &[u8]) -> Result<(Vec<Branch>, Metadata)> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if let Some(keys) = conflict_keys(bytes) {
        return Err(Error::Conflict { keys });
    }
    let mut branches = match format {
        Format::Binary => vec![json::parse(bytes)?],
        f => load_plain(f, bytes)?,
    };
    let meta_value = match format {
        Format::Yaml | Format::Json | Format::Binary | Format::Ini | Format::Toml => {
            let mut found = None;
            for (bi, branch) in branches.iter_mut().enumerate() {
                let mut i = 0;
                while i < branch.len() {
                    if matches!(&branch[i], Item::Entry(k, _) if k == "sops") {
                        let Item::Entry(_, v) = branch.remove(i) else {
                            continue;
                        };
                        if bi == 0 {
                            if found.is_some() {
                                return Err(Error::Metadata(
                                    "found a duplicate `sops` entry".into(),
                                ));
                            }
                            found = Some(v);
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            let v = found.ok_or(Error::MetadataNotFound)?;
            if format == Format::Ini {
                let Value::Map(items) = v else {
                    return Err(Error::Metadata(
                        "the [sops] section is not a section".into(),
                    ));
                };
                let flat = items
                    .into_iter()
                    .filter_map(|i| match i {
                        Item::Entry(k, Value::Str(s)) => {
                            Some((k, Value::Str(s.replace("\\n", "\n"))))
                        }
                        Item::Entry(k, v) => Some((k, v)),
                        Item::Comment(_) | Item::InlineComment(_) => None,
                    })
                    .collect();
                metadata::unflatten(flat)?
            } else {
                v
            }
        }
        Format::Dotenv => {
            let branch = &mut branches[0];
            let mut flat = Vec::new();
            branch.retain(|i| match i {
                Item::Entry(k, v) if k.starts_with("sops_") => {
                    let v = match v {
                        Value::Str(s) => Value::Str(s.clone()),
                        other => other.clone(),
                    };
                    flat.push((k["sops_".len()..].to_owned(), v));
                    false
                }
                _ => true,
            });
            if flat.is_empty() {
                return Err(Error::MetadataNotFound);
            }
            // dotenv already turned `\n` into newlines when reading values.
            metadata::unflatten(flat)?
        }
    };
    let meta = Metadata::from_value(&meta_value)?;
    Ok((branches, meta))
}

/// Writes plaintext documents.
pub fn emit_plain(format: Format, branches: &[Branch], indent: Option<usize>) -> Result<Vec<u8>> {
    match format {
        Format::Yaml => Ok(yaml_emit::emit(branches, indent.unwrap_or(4)).into_bytes()),
        Format::Json => Ok(json::emit(single(format, branches)?, indent)?.into_bytes()),
        Format::Dotenv => Ok(dotenv::emit(single(format, branches)?)?.into_bytes()),
        Format::Ini => Ok(ini::emit(single(format, branches)?)?.into_bytes()),
        Format::Toml => Ok(toml::emit(single(format, branches)?)?.into_bytes()),
        Format::Binary => {
            let branch = single(format, branches)?;
            match branch.iter().find_map(|i| match i {
                Item::Entry(k, v) if k == "data" => Some(v),
                _ => None,
            }) {
                Some(Value::Str(s)) => Ok(s.clone().into_bytes()),
                Some(Value::Bytes(b)) => Ok(b.clone()),
                Some(v) => Ok(v.to_flat_string().unwrap_or_default().into_bytes()),
                None => Err(Error::Unsupported(
                    "the binary store needs a `data` key: decrypt this file with --output-type matching its input type".into(),
                )),
            }
        }
    }
}

fn single(format: Format, branches: &[Branch]) -> Result<&Branch> {
    match branches {
        [b] => Ok(b),
        [] => Err(Error::Empty),
        _ => Err(Error::Unsupported(format!(
            "the {} format holds one document; this file has {}",
            format.name(),
            branches.len()
        ))),
    }
}

/// Writes encrypted documents with their metadata.
pub fn emit_encrypted(
    format: Format,
    branches: &[Branch],
    meta: &Metadata,
    indent: Option<usize>,
) -> Result<Vec<u8>> {
    let mv = meta.to_value();
    match format {
        Format::Yaml | Format::Json | Format::Binary | Format::Toml => {
            let with: Vec<Branch> = branches
                .iter()
                .map(|b| {
                    let mut b = b.clone();
                    b.push(Item::Entry("sops".into(), mv.clone()));
                    b
                })
                .collect();
            match format {
                Format::Yaml => Ok(yaml_emit::emit(&with, indent.unwrap_or(4)).into_bytes()),
                Format::Toml => Ok(toml::emit(single(format, &with)?)?.into_bytes()),
                _ => Ok(json::emit(single(format, &with)?, indent)?.into_bytes()),
            }
        }
        Format::Dotenv => {
            let mut b = single(format, branches)?.clone();
            for (k, v) in metadata::flatten(&mv) {
                b.push(Item::Entry(format!("sops_{k}"), flat_string(v)));
            }
            Ok(dotenv::emit(&b)?.into_bytes())
        }
        Format::Ini => {
            let mut b = single(format, branches)?.clone();
            let section: Vec<Item> = metadata::flatten(&mv)
                .into_iter()
                .map(|(k, v)| {
                    let s = match flat_string(v) {
                        Value::Str(s) => Value::Str(s.replace('\n', "\\n")),
                        v => v,
                    };
                    Item::Entry(k, s)
                })
                .collect();
            b.push(Item::Entry("sops".into(), Value::Map(section)));
            Ok(ini::emit(&b)?.into_bytes())
        }
    }
}

fn flat_string(v: Value) -> Value {
    Value::Str(v.to_flat_string().unwrap_or_default())
}

/// Writes a single extracted value: strings raw, other values through the store's emitter.
pub fn emit_value(format: Format, v: &Value, indent: Option<usize>) -> Result<Vec<u8>> {
    match v {
        Value::Str(s) => Ok(s.clone().into_bytes()),
        Value::Bytes(b) => Ok(b.clone()),
        v => match format {
            Format::Json | Format::Binary => Ok(json::emit_value(v, indent)?.into_bytes()),
            Format::Toml => match v {
                Value::Map(m) => Ok(toml::emit(m)?.into_bytes()),
                v => Ok(json::emit_value(v, indent)?.into_bytes()),
            },
            Format::Yaml => Ok(yaml_emit::emit_value(v, indent.unwrap_or(4)).into_bytes()),
            Format::Dotenv | Format::Ini => match v {
                Value::Map(m) if format == Format::Dotenv => Ok(dotenv::emit(m)?.into_bytes()),
                Value::Map(m) => Ok(ini::emit(m)?.into_bytes()),
                v => Ok(format!("{}\n", v.to_flat_string().unwrap_or_default()).into_bytes()),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_markers_name_keys_not_values() {
        let text = "a: 1\n<<<<<<< HEAD\npassword: ENC[AES256_GCM,data:x]\n=======\npassword: ENC[AES256_GCM,data:y]\n    mac: ENC[z]\n>>>>>>> branch\n";
        let err = load_encrypted(Format::Yaml, text.as_bytes())
            .map(|_| ())
            .map_err(|e| e.to_string());
        let msg = err.err().unwrap_or_default();
        assert!(msg.contains("conflicting keys: password, mac"), "{msg}");
        assert!(!msg.contains("data:x"), "{msg}");
        assert_eq!(conflict_keys(b"a: 1\n"), None);
    }
}
