//! `encrypt`, `decrypt` and `filestatus`, and opening an encrypted file for the other commands.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use hush_crypto::SystemEntropy;
use hush_sops::file::{self, Opened};
use hush_sops::stores::{self, Format};
use hush_sops::tree::{self, Value};

use super::args::Opts;
use super::config;
use super::exit::{codes, engine, exit};
use super::flags::encrypt_options;
use super::io::{formats, indent, name_for, read_input, runtime, write_output};
use super::keys;

pub(super) fn encrypt(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref())?;
    let (input_format, output_format) = formats(o, file)?;
    let input = read_input(file)?;
    let opts = encrypt_options(o, &cfg, name_for(o, file))?;
    let out = runtime()?
        .block_on(file::encrypt(
            &input,
            input_format,
            output_format,
            opts,
            indent(o, &cfg, output_format),
            &mut SystemEntropy,
        ))
        .map_err(|e| engine(file, e))?;
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn open(o: &Opts, file: &Path, format: Format, ignore_mac: bool) -> Result<Opened> {
    let input = read_input(file)?;
    let (branches, metadata) =
        stores::load_encrypted(format, &input).map_err(|e| engine(file, e))?;
    let (_, key) = keys::unwrap_for(o, &metadata, file)?;
    file::open_with_key(branches, metadata, key, ignore_mac).map_err(|e| engine(file, e))
}

pub(super) fn decrypt(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (input_format, output_format) = formats(o, file)?;
    let opened = open(o, file, input_format, o.ignore_mac)?;
    let indent = indent(o, &cfg, output_format);
    let out = match &o.extract {
        Some(path) => {
            let steps = tree::parse_index_path(path).ok_or_else(|| {
                exit(
                    codes::INVALID_TREE_PATH,
                    format!("invalid tree path {path:?}: use the form [\"key\"][0]"),
                )
            })?;
            let first = opened.branches.first().map(Vec::as_slice).unwrap_or(&[]);
            let v = tree::get(first, &steps).ok_or_else(|| {
                exit(
                    codes::GENERIC,
                    format!(
                        "{}: the path {path} does not exist in the file",
                        file.display()
                    ),
                )
            })?;
            match v {
                // sops' quirk: an extracted map replaces the first document; the others stay.
                Value::Map(m) => {
                    let mut branches = opened.branches.clone();
                    branches[0] = m.clone();
                    stores::emit_plain(output_format, &branches, indent)
                        .map_err(|e| engine(file, e))?
                }
                v => stores::emit_value(output_format, v, indent).map_err(|e| engine(file, e))?,
            }
        }
        None => stores::emit_plain(output_format, &opened.branches, indent)
            .map_err(|e| engine(file, e))?,
    };
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn filestatus(o: &Opts, file: &Path) -> Result<ExitCode> {
    let (format, _) = formats(o, file)?;
    let input = read_input(file)?;
    let encrypted = match stores::load_encrypted(format, &input) {
        Ok(_) => true,
        Err(hush_sops::Error::MetadataNotFound) => false,
        Err(e) => return Err(engine(file, e)),
    };
    println!("{{\"encrypted\":{encrypted}}}");
    Ok(ExitCode::SUCCESS)
}
