//! `publish`: send a sops file to the destination its `.sops.yaml` `destination_rules` name, as
//! sops 3.11 does (`getsops/sops:cmd/sops/subcommand/publish/publish.go`).
//!
//! - S3 and (hush) a local directory receive the encrypted file: as it is, or, when the rule has
//!   a `recreation_rule` with keys, decrypted (MAC verified) and encrypted again under a new
//!   data key for those keys, as `encrypt` would with that rule (its selection rule, else the
//!   default `_unencrypted` suffix; `shamir_threshold`, `mac_only_encrypted`).
//! - Vault KV (v1 or v2) receives the decrypted values as one secret (nested maps as objects);
//!   a v2 secret that already holds the same data is left alone.
//! - The destination path is the file name, or with `--recursive` the path below the directory;
//!   `--omit-extensions` (or `omit_extensions: true`) drops the extension.
//! - Unless `--yes`, each upload is confirmed on standard input (`y`/`n`); a closed standard
//!   input is an error, never a wait.

mod rule;
mod upload;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_crypto::{DataKey, SystemEntropy};
use hush_sops::metadata::Metadata;
use hush_sops::stores;

use self::rule::{Destination, DestinationRule};
use super::args::Opts;
use super::config::{self, Config};
use super::exit::{codes, engine, exit};
use super::io::{formats, indent, read_input, runtime};
use super::{crypt, keys};

/// What `publish` was asked to do.
pub(super) struct Publish<'a> {
    pub(super) path: &'a Path,
    pub(super) yes: bool,
    pub(super) omit_extensions: bool,
    pub(super) recursive: bool,
}

/// One file's publication: where it goes and what is sent.
enum Payload {
    /// The bytes of an encrypted file (S3, local directory).
    File(Vec<u8>),
    /// The decrypted values (Vault KV).
    Values(serde_json::Value),
}

pub(super) fn publish(o: &Opts, req: &Publish<'_>) -> Result<ExitCode> {
    if o.ignore_mac {
        return Err(exit(
            codes::GENERIC,
            "publish always verifies the MAC (as sops): --ignore-mac cannot be used with it",
        ));
    }
    let cfg = config::find(o.config.as_deref())?;
    let is_dir = std::fs::metadata(req.path).is_ok_and(|m| m.is_dir());
    if is_dir && !req.recursive {
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: can't operate on a directory without --recursive flag.",
                req.path.display()
            ),
        ));
    }
    if !is_dir {
        // A file (also with --recursive): its name, not "" relative to itself.
        let name = req.path.file_name().map(PathBuf::from).unwrap_or_default();
        publish_one(o, &cfg, req, req.path, &name)?;
        return Ok(ExitCode::SUCCESS);
    }
    // As sops' filepath.Walk: every file, in lexical order; the first error stops the run.
    for file in super::recursive::walk(&[req.path.to_path_buf()])? {
        let relative = file.strip_prefix(req.path).unwrap_or(&file).to_path_buf();
        publish_one(o, &cfg, req, &file, &relative)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn publish_one(o: &Opts, cfg: &Config, req: &Publish<'_>, file: &Path, name: &Path) -> Result<()> {
    let rule = DestinationRule::for_file(cfg, file)?;
    let mut name = name.to_string_lossy().into_owned();
    if req.omit_extensions || rule.omit_extensions {
        let ext = go_ext(&file.to_string_lossy()).to_owned();
        if let Some(stem) = name.strip_suffix(&ext) {
            name = stem.to_owned();
        }
    }
    let payload = payload(o, cfg, file, &rule)?;
    let shown = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let target = upload::describe(&rule.destination, &name);
    if !req.yes && !confirm(&shown, &target)? {
        let message = format!("Publication of {} canceled", shown.display());
        if req.recursive {
            println!("{message}");
            return Ok(());
        }
        return Err(exit(codes::GENERIC, message));
    }
    let rt = runtime()?;
    rt.block_on(upload::send(&rule.destination, &name, payload))
        .with_context(|| format!("publishing {} to {target}", file.display()))?;
    if o.verbose {
        eprintln!("[hush sops] published {} to {target}", file.display());
    }
    Ok(())
}

/// What the destination receives.
fn payload(o: &Opts, cfg: &Config, file: &Path, rule: &DestinationRule) -> Result<Payload> {
    let (format, _) = formats(o, file)?;
    let input = read_input(file)?;
    // Checked first, as sops does: only sops files are published.
    stores::load_encrypted(format, &input).map_err(|e| engine(file, e))?;
    match &rule.destination {
        Destination::Vault { .. } => {
            let opened = crypt::open(o, file, format, false)?;
            Ok(Payload::Values(upload::values_json(
                &opened.branches,
                file,
            )?))
        }
        Destination::S3 { .. } | Destination::Local { .. } => {
            if rule.recreation.groups.first().is_none_or(Vec::is_empty) {
                return Ok(Payload::File(input));
            }
            if o.verbose {
                eprintln!(
                    "[hush sops] re-encrypting {} before publishing",
                    file.display()
                );
            }
            reencrypt(o, cfg, file, format, rule).map(Payload::File)
        }
    }
}

/// Decrypts `file` and encrypts it again under a new data key for the recreation rule's keys.
fn reencrypt(
    o: &Opts,
    cfg: &Config,
    file: &Path,
    format: stores::Format,
    rule: &DestinationRule,
) -> Result<Vec<u8>> {
    let opened = crypt::open(o, file, format, false)?;
    print_key_changes(&opened.metadata, &rule.recreation.groups);
    // The recreation rule is a creation rule: its selection rule, else sops' default suffix.
    // (sops 3.11 keeps only a suffix rule and otherwise writes none, which encrypts keys ending
    // in `_unencrypted` that every reader then expects in plaintext: a MAC mismatch.)
    let crypt_rule = match &rule.recreation.crypt_rule {
        Some((f, t)) => hush_sops::crypt::Rule::from_field(f, t)?,
        None => None,
    };
    let crypt_rule = match (crypt_rule, format) {
        (Some(r), _) => Some(r),
        (None, stores::Format::Binary) => None,
        (None, _) => Some(Metadata::default_rule()),
    };
    let mut metadata = Metadata::new(Vec::new(), crypt_rule);
    metadata.mac_only_encrypted = rule.recreation.mac_only_encrypted;
    metadata.shamir_threshold = if rule.recreation.groups.len() > 1 {
        rule.recreation.shamir_threshold
    } else {
        0
    };
    let specs = keys::specs(o, &rule.recreation.groups)?;
    let mut rng = SystemEntropy;
    let key = DataKey::generate(&mut rng)?;
    keys::wrap_for(&runtime()?, &mut metadata, &key, &specs, file)?;
    let mut branches = opened.branches;
    hush_sops::file::seal_branches(&mut branches, &mut metadata, &key, &mut rng, None)
        .map_err(|e| engine(file, e))?;
    stores::emit_encrypted(format, &branches, &metadata, indent(o, cfg, format))
        .map_err(|e| engine(file, e))
}

/// sops prints the key changes a recreation rule makes (`+++` added, `---` removed).
fn print_key_changes(old: &Metadata, new: &[Vec<config::KeyRef>]) {
    let old: Vec<String> = old
        .key_groups
        .iter()
        .flatten()
        .map(|k| format!("{} {}", k.type_id, k.key_id()))
        .collect();
    let new: Vec<String> = new
        .iter()
        .flatten()
        .map(|k| format!("{} {}", k.type_id, k.key_id()))
        .collect();
    if old == new {
        return;
    }
    eprintln!("The following changes will be made to the file's key groups:");
    for k in new.iter().filter(|k| !old.contains(k)) {
        eprintln!("+++ {k}");
    }
    for k in old.iter().filter(|k| !new.contains(k)) {
        eprintln!("--- {k}");
    }
}

/// sops' prompt: `uploading FILE to DEST ? (y/n): `, asked until the answer is `y` or `n`.
/// A closed standard input ends the run with an error instead of waiting.
fn confirm(file: &Path, target: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    loop {
        print!("uploading {} to {target} ? (y/n): ", file.display());
        std::io::stdout().flush().context("writing the prompt")?;
        let mut answer = String::new();
        let read = stdin
            .lock()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if read == 0 {
            return Err(exit(
                codes::GENERIC,
                "standard input is closed, so the upload cannot be confirmed: pass --yes (-y) \
                 to publish without asking",
            ));
        }
        match answer.trim() {
            "y" => return Ok(true),
            "n" => return Ok(false),
            _ => {}
        }
    }
}

/// Go's `filepath.Ext`: from the last `.` of the last path element, or "".
fn go_ext(path: &str) -> &str {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.rfind('.').map_or("", |i| &last[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_cut_as_go_cuts_them() {
        assert_eq!(go_ext("vault/test.yaml"), ".yaml");
        assert_eq!(go_ext("a.b/c"), "");
        assert_eq!(go_ext("dir/.env"), ".env");
        assert_eq!(go_ext("x.enc.json"), ".json");
        assert_eq!(go_ext("noext"), "");
    }
}
