//! `set` and `unset`: change one value at a tree path, keeping the IVs of the others.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_sops::stores;
use hush_sops::tree;

use super::args::Opts;
use super::config;
use super::crypt::open;
use super::exit::{codes, exit};
use super::io::{formats, indent, seal_in_place};

#[allow(clippy::too_many_arguments)]
pub(super) fn set(
    o: &Opts,
    file: &Path,
    path: &str,
    value: Option<String>,
    value_file: bool,
    value_stdin: bool,
    idempotent: bool,
) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, _) = formats(o, file)?;
    let steps = index_path(path)?;
    let raw: Vec<u8> = if value_stdin {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading the value from standard input")?;
        b
    } else if value_file {
        let p = value.ok_or_else(|| exit(7, "--value-file needs a file name"))?;
        std::fs::read(&p).with_context(|| format!("reading the value file {p}"))?
    } else {
        value
            .ok_or_else(|| exit(7, "missing value: sops set FILE PATH VALUE"))?
            .into_bytes()
    };
    let v = stores::json::parse_value(&raw).map_err(|e| {
        exit(
            7,
            format!("the value is not valid JSON (strings need quotes: '\"text\"'): {e}"),
        )
    })?;
    let mut opened = open(o, file, format, o.ignore_mac)?;
    let Some(first) = opened.branches.first_mut() else {
        return Err(exit(
            codes::NEED_AT_LEAST_ONE_DOCUMENT,
            "the file has no document",
        ));
    };
    let changed = tree::set(first, &steps, v).map_err(|m| exit(codes::INVALID_TREE_PATH, m))?;
    if !changed && idempotent {
        return Ok(ExitCode::SUCCESS);
    }
    seal_in_place(opened, format, indent(o, &cfg, format), file)?;
    Ok(ExitCode::SUCCESS)
}

/// A `["key"][0]` tree path; a malformed one is sops' invalid-tree-path error.
fn index_path(path: &str) -> Result<Vec<tree::PathStep>> {
    tree::parse_index_path(path).ok_or_else(|| {
        exit(
            codes::INVALID_TREE_PATH,
            format!("invalid tree path {path:?}: use the form [\"key\"][0]"),
        )
    })
}

/// Splits the legacy `--set '["a"][0] VALUE'` at the first `] `, as sops does (the path ends
/// with `]`, the value is JSON).
pub(super) fn split_legacy(arg: &str) -> Result<(&str, &str)> {
    match arg.find("] ") {
        Some(i) => Ok((arg[..=i].trim_end(), &arg[i + 2..])),
        None => Err(exit(
            7,
            "Invalid --set format: use --set '[\"key\"][0] <json value>'",
        )),
    }
}

pub(super) fn unset(o: &Opts, file: &Path, path: &str, idempotent: bool) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, _) = formats(o, file)?;
    let steps = index_path(path)?;
    let mut opened = open(o, file, format, o.ignore_mac)?;
    let removed = opened
        .branches
        .first_mut()
        .is_some_and(|b| tree::unset(b, &steps));
    if !removed {
        if idempotent {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: the path {path} does not exist in the file",
                file.display()
            ),
        ));
    }
    seal_in_place(opened, format, indent(o, &cfg, format), file)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_set_splits_at_the_first_bracket_space() {
        assert_eq!(
            split_legacy(r#"["a"][0] {"b": "] x"}"#).unwrap(),
            (r#"["a"][0]"#, r#"{"b": "] x"}"#)
        );
        assert_eq!(
            split_legacy(r#"["a"]  "v""#).unwrap(),
            (r#"["a"]"#, r#" "v""#)
        );
        assert!(split_legacy(r#"["a"]"v""#).is_err());
    }
}
