//! Manifests: discovery under a directory, reading YAML/JSON streams into hush-sops' tree (the
//! same reader and writer hush-sops uses; comments and key order are kept), and writing the
//! output stream.

use std::path::{Path, PathBuf};

use hush_sops::stores::{json, yaml_emit, yaml_parse};
use hush_sops::tree::{Branch, Item, Value};

use crate::{Error, Result};

/// Largest manifest file read (Flux's limit for encrypted files is 5 MiB; manifests get more).
pub const MAX_FILE: u64 = 16 << 20;

/// One document of the render, with where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Doc {
    /// File name relative to the app directory, or `<stdin>`.
    pub file: String,
    /// The document.
    pub branch: Branch,
}

/// Every `*.yaml`, `*.yml` and `*.json` file under `root`, recursively, sorted; files and
/// directories whose name starts with `.` (`.sops.yaml`, `.git/`, `.github/`) are skipped.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(root, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |error| Error::Io {
        path: dir.to_path_buf(),
        error,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            tracing::debug!(file = %entry.path().display(), "skipped: dotfile");
            continue;
        }
        let ty = entry.file_type().map_err(io)?;
        let path = entry.path();
        if ty.is_dir() {
            walk(&path, out)?;
        } else if ty.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a regular file, refusing anything over [`MAX_FILE`]. A repository can hold a symlink
/// to a device or a FIFO (`/dev/zero`, `/dev/stdin`), whose size says nothing: those are refused,
/// and the read itself stops past the limit, whatever the size said before it.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let io = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let too_large = || Error::Parse {
        file: path.display().to_string(),
        message: format!("larger than {MAX_FILE} bytes"),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::Parse {
            file: path.display().to_string(),
            message: "not a regular file (a device, FIFO or directory); only files are read".into(),
        });
    }
    if meta.len() > MAX_FILE {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Parses a YAML (multi-document) or JSON stream. Empty documents and `null` are dropped.
pub fn parse(bytes: &[u8], file: &str, json_file: bool) -> Result<Vec<Branch>> {
    let perr = |message: String| Error::Parse {
        file: file.to_owned(),
        message,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    if json_file {
        return json::parse(bytes)
            .map(|b| vec![b])
            .map_err(|e| perr(e.to_string()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| perr("not valid UTF-8".into()))?;
    match yaml_parse::parse(text) {
        Ok(docs) => Ok(docs
            .into_iter()
            .filter(|d| d.iter().any(|i| matches!(i, Item::Entry(..))))
            .collect()),
        Err(hush_sops::Error::Empty) => Ok(Vec::new()),
        Err(e) => Err(perr(e.to_string())),
    }
}

/// Keeps Kubernetes objects (with `apiVersion` and `kind`); logs the others at debug level.
pub fn objects(docs: Vec<Branch>, file: &str) -> Vec<Doc> {
    docs.into_iter()
        .filter(|d| {
            let keep = crate::value::is_object(d);
            if !keep {
                tracing::debug!(file, "skipped a document without apiVersion/kind");
            }
            keep
        })
        .map(|branch| Doc {
            file: file.to_owned(),
            branch,
        })
        .collect()
}

/// Whether a document carries SOPS metadata (a top-level `sops` map with a `mac`).
pub fn is_sops(doc: &[Item]) -> bool {
    matches!(crate::value::get(doc, "sops"), Some(Value::Map(m)) if crate::value::get(m, "mac").is_some())
}

/// Writes the output stream: documents separated by `---`, two-space indentation.
pub fn emit(docs: &[Doc]) -> String {
    let branches: Vec<Branch> = docs.iter().map(|d| d.branch.clone()).collect();
    yaml_emit::emit(&branches, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository symlink to a device: its size is 0, its content endless. Reading it used to
    /// allocate until the process died.
    #[test]
    fn devices_are_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_file(&link).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(err.contains("zero.yaml"), "{err}");
        let file = dir.path().join("ok.yaml");
        std::fs::write(&file, "a: b\n").unwrap();
        assert_eq!(read_file(&file).unwrap(), b"a: b\n");
    }
}
