//! `--recursive` (hush): `encrypt`, `decrypt`, `rotate` and `updatekeys` over every file of a
//! tree, in parallel, with progress and one summary (`crate::tree`); exit 1 when any file failed.
//!
//! The walk skips hidden directories and never follows symbolic links (a link could leave the
//! tree or loop).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_sops::stores;

use super::args::Opts;
use super::exit::{codes, exit};
use super::io::formats;
use super::{config, crypt, rotate};
use crate::tree::{self, Outcome, SummaryFormat};

/// `encrypt --recursive -i DIR`: every file a creation rule with a `path_regex` selects; files
/// already encrypted are left unchanged.
pub(super) fn encrypt(o: &Opts, dir: &Path, format: SummaryFormat) -> Result<ExitCode> {
    let o = in_place(o, "encrypt")?;
    let cfg = config::find(o.config.as_deref())?;
    let Some(cfg_path) = cfg.path.clone() else {
        return Err(exit(
            codes::GENERIC,
            "encrypt --recursive needs a .sops.yaml (or --config) whose creation_rules select \
             files with path_regex",
        ));
    };
    let cfg_path = std::path::absolute(&cfg_path).unwrap_or(cfg_path);
    let mut files = Vec::new();
    for f in walk(&[dir.to_path_buf()])? {
        let is_config = std::path::absolute(&f).is_ok_and(|a| a == cfg_path);
        if !is_config && cfg.selects(&f)? {
            files.push(f);
        }
    }
    let report = tree::run(&files, tree::cpu_workers(), |f| {
        if is_sops_file(&o, f)? {
            return Ok(Outcome::Unchanged);
        }
        crypt::encrypt(&o, f).map(|_| Outcome::Changed)
    });
    Ok(finish(&report, format, "files", "encrypted"))
}

/// `decrypt --recursive -i DIR`: every sops file.
pub(super) fn decrypt(o: &Opts, dir: &Path, format: SummaryFormat) -> Result<ExitCode> {
    let o = in_place(o, "decrypt")?;
    if o.extract.is_some() {
        return Err(exit(
            codes::GENERIC,
            "decrypt --recursive writes whole files: --extract cannot be used with it",
        ));
    }
    let files = sops_files(&o, &[dir.to_path_buf()])?;
    let report = tree::run(&files, tree::cpu_workers(), |f| {
        crypt::decrypt(&o, f).map(|_| Outcome::Changed)
    });
    Ok(finish(&report, format, "sops files", "decrypted"))
}

/// `rotate --recursive DIR`: every sops file, in place.
pub(super) fn rotate(o: &Opts, dir: &Path, format: SummaryFormat) -> Result<ExitCode> {
    let mut o = o.clone();
    o.in_place = true;
    o.output = None;
    let files = sops_files(&o, &[dir.to_path_buf()])?;
    let report = tree::run(&files, tree::cpu_workers(), |f| {
        rotate::rotate(&o, f).map(|_| Outcome::Changed)
    });
    Ok(finish(&report, format, "sops files", "rotated"))
}

/// `updatekeys --recursive -y DIR…`.
pub(super) fn updatekeys(
    o: &Opts,
    dirs: &[PathBuf],
    yes: bool,
    format: SummaryFormat,
) -> Result<ExitCode> {
    if !yes {
        return Err(exit(
            codes::GENERIC,
            "updatekeys --recursive changes many files without asking: add -y",
        ));
    }
    let files = sops_files(o, dirs)?;
    let report = tree::run(&files, tree::cpu_workers(), |f| {
        rotate::updatekeys(o, f, true, true)
    });
    Ok(finish(&report, format, "sops files", "updated"))
}

/// Tree runs rewrite files in place; `-i` says the user means it (`--output` names one file).
fn in_place(o: &Opts, command: &str) -> Result<Opts> {
    if !o.in_place || o.output.is_some() {
        return Err(exit(
            codes::GENERIC,
            format!("{command} --recursive rewrites every file in place: add -i (and no --output)"),
        ));
    }
    Ok(o.clone())
}

fn finish(report: &tree::Report, format: SummaryFormat, noun: &str, verb: &str) -> ExitCode {
    report.print(format, noun, verb);
    if report.failed() {
        ExitCode::from(codes::GENERIC)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every regular file under `roots` (a root that is a file is itself), sorted; hidden
/// directories and symbolic links are skipped.
pub(super) fn walk(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p)
            .map_err(|e| exit(codes::COULD_NOT_READ_INPUT, format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)
                .map_err(|e| exit(codes::COULD_NOT_READ_INPUT, format!("{}: {e}", p.display())))?
            {
                let entry = entry.context("reading a directory entry")?;
                let kind = entry.file_type().context("reading a directory entry")?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if kind.is_file() || (kind.is_dir() && !hidden) {
                    stack.push(entry.path());
                }
            }
        } else if meta.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `file` carries sops metadata (encrypted, or broken in a way the run should report).
fn is_sops_file(o: &Opts, file: &Path) -> Result<bool> {
    let (format, _) = formats(o, file)?;
    let Ok(bytes) = std::fs::read(file) else {
        return Ok(false);
    };
    Ok(!matches!(
        stores::load_encrypted(format, &bytes),
        Err(hush_sops::Error::MetadataNotFound)
            | Err(hush_sops::Error::Empty)
            | Err(hush_sops::Error::Parse { .. })
    ))
}

/// Every sops file under `roots`, sorted.
pub(super) fn sops_files(o: &Opts, roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in walk(roots)? {
        if is_sops_file(o, &f)? {
            out.push(f);
        }
    }
    Ok(out)
}
