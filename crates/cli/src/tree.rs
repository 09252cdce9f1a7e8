//! One operation over many files (`sops … --recursive`, `seal --re-encrypt --dir`): run in
//! parallel, progress on stderr when it is a terminal, one summary (text on stderr, or JSON on
//! stdout with `--output-format json`), and whether any file failed.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the summary is written (`--output-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SummaryFormat {
    /// One line per failure and a count line, on stderr.
    #[default]
    Text,
    /// One JSON object on stdout: counts and every file with its outcome.
    Json,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The file was rewritten.
    Changed,
    /// The file needed no change.
    Unchanged,
    /// The file is not one the operation applies to (left alone, not an error).
    Skipped(String),
}

/// Every file's result, in path order.
pub(crate) struct Report {
    results: Vec<(PathBuf, Result<Outcome, String>)>,
}

/// Runs `op` on every file with up to `workers` threads (at least one).
pub(crate) fn run(
    files: &[PathBuf],
    workers: usize,
    op: impl Fn(&Path) -> anyhow::Result<Outcome> + Sync,
) -> Report {
    let total = files.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(total));
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, total.max(1)) {
            scope.spawn(|| {
                while let Some(f) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let r = op(f).map_err(|e| format!("{e:#}"));
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
    Report { results }
}

/// The worker count for CPU-bound file operations.
pub(crate) fn cpu_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Report {
    fn count(&self, want: fn(&Result<Outcome, String>) -> bool) -> usize {
        self.results.iter().filter(|(_, r)| want(r)).count()
    }

    /// Whether any file failed.
    pub(crate) fn failed(&self) -> bool {
        self.results.iter().any(|(_, r)| r.is_err())
    }

    /// Writes the summary: `noun` names the files (`sops files`), `verb` the change
    /// (`encrypted`).
    pub(crate) fn print(&self, format: SummaryFormat, noun: &str, verb: &str) {
        let changed = self.count(|r| matches!(r, Ok(Outcome::Changed)));
        let unchanged = self.count(|r| matches!(r, Ok(Outcome::Unchanged)));
        let skipped = self.count(|r| matches!(r, Ok(Outcome::Skipped(_))));
        let failed = self.count(Result::is_err);
        match format {
            SummaryFormat::Text => {
                for (f, r) in &self.results {
                    if let Err(e) = r {
                        eprintln!("FAILED {}: {e}", f.display());
                    }
                }
                let skipped = if skipped > 0 {
                    format!(", {skipped} skipped")
                } else {
                    String::new()
                };
                eprintln!(
                    "{} {noun}: {changed} {verb}, {unchanged} unchanged{skipped}, {failed} failed",
                    self.results.len()
                );
            }
            SummaryFormat::Json => {
                let files: Vec<serde_json::Value> = self
                    .results
                    .iter()
                    .map(|(f, r)| file_json(f, r, verb))
                    .collect();
                let summary = serde_json::json!({
                    "total": self.results.len(),
                    verb: changed,
                    "unchanged": unchanged,
                    "skipped": skipped,
                    "failed": failed,
                    "files": files,
                });
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{summary}");
            }
        }
    }
}

fn file_json(path: &Path, r: &Result<Outcome, String>, verb: &str) -> serde_json::Value {
    let path = path.to_string_lossy();
    match r {
        Ok(Outcome::Changed) => serde_json::json!({"path": path, "outcome": verb}),
        Ok(Outcome::Unchanged) => serde_json::json!({"path": path, "outcome": "unchanged"}),
        Ok(Outcome::Skipped(why)) => {
            serde_json::json!({"path": path, "outcome": "skipped", "reason": why})
        }
        Err(e) => serde_json::json!({"path": path, "outcome": "failed", "error": e}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_runs_once_and_results_come_back_in_path_order() {
        let files: Vec<PathBuf> = (0..50)
            .rev()
            .map(|i| PathBuf::from(format!("f{i:02}")))
            .collect();
        let seen = Mutex::new(Vec::new());
        let report = run(&files, 4, |f| {
            seen.lock().unwrap().push(f.to_path_buf());
            match f.to_str() {
                Some("f07") => anyhow::bail!("broken"),
                Some("f08") => Ok(Outcome::Unchanged),
                Some("f09") => Ok(Outcome::Skipped("not mine".into())),
                _ => Ok(Outcome::Changed),
            }
        });
        assert_eq!(seen.into_inner().unwrap().len(), 50);
        let paths: Vec<&PathBuf> = report.results.iter().map(|(p, _)| p).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert!(report.failed());
        assert_eq!(report.count(|r| matches!(r, Ok(Outcome::Changed))), 47);
        let json = file_json(Path::new("f07"), &report.results[7].1, "encrypted");
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["error"], "broken");
        assert!(!run(&[], 4, |_| Ok(Outcome::Changed)).failed());
    }
}
