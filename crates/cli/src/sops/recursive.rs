//! `--recursive`: one operation over every sops file under some directories.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_sops::stores;

use super::args::Opts;
use super::exit::{codes, exit};
use super::io::formats;
use super::rotate::Outcome;

/// Every sops file under `roots` (hidden directories skipped), sorted.
pub(super) fn sops_files(o: &Opts, roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p)
            .map_err(|e| exit(codes::COULD_NOT_READ_INPUT, format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)
                .map_err(|e| exit(codes::COULD_NOT_READ_INPUT, format!("{}: {e}", p.display())))?
            {
                let entry = entry.context("reading a directory entry")?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                let path = entry.path();
                if path.is_dir() && hidden {
                    continue;
                }
                stack.push(path);
            }
        } else if meta.is_file() {
            let (format, _) = formats(o, &p)?;
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            match stores::load_encrypted(format, &bytes) {
                Err(hush_sops::Error::MetadataNotFound)
                | Err(hush_sops::Error::Empty)
                | Err(hush_sops::Error::Parse { .. }) => {}
                // Encrypted files, and ones with sops metadata that fail later (conflicts, bad
                // metadata), are processed so the summary reports them.
                _ => out.push(p),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `op` on every sops file under `roots` in parallel; progress on stderr when it is a
/// terminal; one summary; exit 1 when any file failed.
pub(super) fn recursive(
    o: &Opts,
    roots: &[PathBuf],
    verb: &str,
    op: impl Fn(&Opts, &Path) -> Result<Outcome> + Sync,
) -> Result<ExitCode> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let files = sops_files(o, roots)?;
    let total = files.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(PathBuf, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    let tty = std::io::stderr().is_terminal();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(f) = files.get(i) else { break };
                    let r = op(o, f).map_err(|e| format!("{e:#}"));
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if tty {
                        eprint!("\r[{n}/{total}] {}\x1b[K", f.display());
                    }
                    if let Ok(mut v) = results.lock() {
                        v.push((f.clone(), r));
                    }
                }
            });
        }
    });
    if tty && total > 0 {
        eprintln!();
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let changed = results
        .iter()
        .filter(|r| matches!(r.1, Ok(Outcome::Changed)))
        .count();
    let unchanged = results
        .iter()
        .filter(|r| matches!(r.1, Ok(Outcome::Unchanged)))
        .count();
    let failed: Vec<&(PathBuf, Result<Outcome, String>)> =
        results.iter().filter(|r| r.1.is_err()).collect();
    for (f, r) in &failed {
        if let Err(e) = r {
            eprintln!("FAILED {}: {e}", f.display());
        }
    }
    eprintln!(
        "{total} sops files: {changed} {verb}, {unchanged} unchanged, {} failed",
        failed.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(codes::GENERIC)
    })
}
