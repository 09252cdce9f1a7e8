//! `edit`: decrypt to a private temporary file, run the editor, re-encrypt keeping the IVs of
//! unchanged values.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_crypto::SystemEntropy;
use hush_sops::file;
use hush_sops::stores::{self, Format};

use super::args::Opts;
use super::config;
use super::crypt::open;
use super::exit::{codes, engine, exit};
use super::flags::encrypt_options;
use super::io::{formats, indent, name_for, runtime, seal_in_place, write_in_place};
use super::keys;
use super::rotate::key_refs;

pub(super) fn editor_command() -> Result<Vec<String>> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        if let Ok(e) = std::env::var(var)
            && !e.trim().is_empty()
        {
            return Ok(e.split_whitespace().map(str::to_owned).collect());
        }
    }
    for candidate in ["vim", "nano", "vi"] {
        if let Some(path) = std::env::var_os("PATH")
            && std::env::split_paths(&path).any(|d| d.join(candidate).is_file())
        {
            return Ok(vec![candidate.to_owned()]);
        }
    }
    Err(exit(
        codes::NO_EDITOR,
        "no editor found: set SOPS_EDITOR or EDITOR",
    ))
}

/// Writes `plain` to a private temporary file, runs the editor on it, returns the new bytes.
pub(super) fn run_editor(file: &Path, plain: &[u8]) -> Result<Vec<u8>> {
    let dir = tempfile::Builder::new()
        .prefix("hush-sops-edit")
        .tempdir()
        .context("creating a temporary directory")?;
    let name = file
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "tmp-file".into());
    let path = dir.path().join(name);
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .context("creating the temporary file")?;
        f.write_all(plain).context("writing the temporary file")?;
    }
    let cmd = editor_command()?;
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg(&path)
        .status()
        .map_err(|e| {
            exit(
                codes::NO_EDITOR,
                format!("could not run the editor {:?}: {e}", cmd[0]),
            )
        })?;
    if !status.success() {
        return Err(exit(
            codes::GENERIC,
            format!("the editor exited with {status}"),
        ));
    }
    std::fs::read(&path).context("reading the edited file")
}

pub(super) fn edit(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref())?;
    let (format, _) = formats(o, file)?;
    let indent = indent(o, &cfg, format);
    if !file.exists() {
        // A new file: start from an empty document of the format and encrypt the result.
        let example: &[u8] = match format {
            Format::Yaml => b"hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n",
            Format::Json => b"{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\"\n}\n",
            Format::Dotenv => b"hello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\n",
            Format::Ini => b"[Welcome!]\nhello = Welcome to SOPS! Edit this file as you please!\n",
            Format::Binary => b"Welcome to SOPS! Edit this file as you please!\n",
            Format::Toml => b"hello = \"Welcome to SOPS! Edit this file as you please!\"\nexample_key = \"example_value\"\n",
        };
        let edited = run_editor(file, example)?;
        let opts = encrypt_options(o, &cfg, name_for(o, file))?;
        let out = runtime()?
            .block_on(file::encrypt(
                &edited,
                format,
                format,
                opts,
                indent,
                &mut SystemEntropy,
            ))
            .map_err(|e| engine(file, e))?;
        write_in_place(file, &out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut opened = open(o, file, format, o.ignore_mac)?;
    let plain = if o.show_master_keys {
        // The decrypted documents with the `sops` metadata block, as sops -s shows them.
        stores::emit_encrypted(format, &opened.branches, &opened.metadata, indent)
    } else {
        stores::emit_plain(format, &opened.branches, indent)
    }
    .map_err(|e| engine(file, e))?;
    let edited = run_editor(file, &plain)?;
    if edited == plain {
        return Err(exit(
            codes::FILE_NOT_MODIFIED,
            "File has not changed, exiting.",
        ));
    }
    let invalid = |e| engine(file, e).context("the edited file is not valid; nothing was written");
    let branches = if o.show_master_keys {
        let (branches, shown) = stores::load_encrypted(format, &edited).map_err(invalid)?;
        let groups = key_refs(&shown);
        if groups != key_refs(&opened.metadata)
            || shown.shamir_threshold != opened.metadata.shamir_threshold
        {
            // Master keys edited: wrap the same data key for the new groups.
            opened.metadata.shamir_threshold = shown.shamir_threshold;
            let specs = keys::specs(o, &groups)?;
            keys::wrap_for(&runtime()?, &mut opened.metadata, &opened.key, &specs, file)?;
        }
        branches
    } else {
        stores::load_plain(format, &edited).map_err(invalid)?
    };
    if let Some(k) = stores::has_metadata(format, &branches) {
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: the edited file contains the reserved key `{k}`; nothing was written",
                file.display()
            ),
        ));
    }
    opened.branches = branches;
    seal_in_place(opened, format, indent, file)?;
    Ok(ExitCode::SUCCESS)
}
