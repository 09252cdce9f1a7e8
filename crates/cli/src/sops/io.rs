//! Reading input (a file or standard input), choosing formats and indentation, writing output.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use hush_crypto::SystemEntropy;
use hush_sops::file::Opened;
use hush_sops::stores::Format;

use super::args::Opts;
use super::config::Config;
use super::exit::{codes, engine, exit};

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(super) fn stdin_or(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from("-"))
}

pub(super) fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-" || file == Path::new("/dev/stdin")
}

pub(super) fn read_input(file: &Path) -> Result<Vec<u8>> {
    if is_stdin(file) {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| {
            exit(
                codes::COULD_NOT_READ_INPUT,
                format!("reading standard input: {e}"),
            )
        })?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| {
        exit(
            codes::COULD_NOT_READ_INPUT,
            format!("{}: cannot read the file: {e}", file.display()),
        )
    })
}

/// The name used for format detection and creation rules.
pub(super) fn name_for<'a>(o: &'a Opts, file: &'a Path) -> &'a Path {
    o.filename_override.as_deref().unwrap_or(file)
}

pub(super) fn formats(o: &Opts, file: &Path) -> Result<(Format, Format)> {
    let parse = |t: &Option<String>| -> Result<Option<Format>> {
        t.as_deref()
            .map(|n| {
                Format::parse(n).ok_or_else(|| {
                    anyhow!("unknown format {n:?}: use yaml, json, dotenv, ini, binary or toml")
                })
            })
            .transpose()
    };
    let detected = Format::from_path(name_for(o, file));
    let input = parse(&o.input_type)?.unwrap_or(detected);
    let output = parse(&o.output_type)?.unwrap_or(detected);
    Ok((input, output))
}

pub(super) fn indent(o: &Opts, cfg: &Config, format: Format) -> Option<usize> {
    o.indent.or(match format {
        Format::Yaml => cfg.yaml_indent,
        Format::Json => cfg.json_indent,
        Format::Binary => cfg.json_binary_indent,
        Format::Dotenv | Format::Ini | Format::Toml => None,
    })
}

/// Writes `bytes` back over `file` (edit, set, unset, updatekeys); exit code 3 when it fails.
pub(super) fn write_in_place(file: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(file, bytes).map_err(|e| {
        exit(
            codes::COULD_NOT_WRITE_OUTPUT,
            format!("{}: {e}", file.display()),
        )
    })
}

/// Re-encrypts `opened` (its data key, a fresh MAC) and writes it back over `file`.
pub(super) fn seal_in_place(
    opened: Opened,
    format: Format,
    indent: Option<usize>,
    file: &Path,
) -> Result<()> {
    let out = opened
        .seal(format, indent, &mut SystemEntropy)
        .map_err(|e| engine(file, e))?;
    write_in_place(file, &out)
}

pub(super) fn write_output(o: &Opts, file: &Path, bytes: &[u8]) -> Result<()> {
    let target = if let Some(out) = &o.output {
        Some(out.as_path())
    } else if o.in_place && !is_stdin(file) {
        Some(file)
    } else {
        None
    };
    match target {
        Some(path) => std::fs::write(path, bytes).map_err(|e| {
            exit(
                codes::COULD_NOT_WRITE_OUTPUT,
                format!("{}: cannot write the file: {e}", path.display()),
            )
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .map_err(|e| {
                    exit(
                        codes::COULD_NOT_WRITE_OUTPUT,
                        format!("writing standard output: {e}"),
                    )
                })
        }
    }
}
