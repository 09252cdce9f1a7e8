//! `hush krm [GENERATOR]` — the kustomize exec KRM function — and the `ksops` persona: with no
//! argument a `ResourceList` is read from stdin and one written to stdout (KSOPS generator or
//! decrypting/resolving transformer); with one argument (KSOPS' legacy exec-plugin mode) the
//! generator file is read and a plain YAML stream written.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_render::backend::{self, Backend};
use hush_render::config;
use hush_render::decrypt::{Keys, VaultAddresses};
use hush_render::{krm, resolve};

/// Arguments of `hush krm`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Legacy mode: a KSOPS generator file (output is a plain YAML stream).
    generator: Option<PathBuf>,
}

/// Runs `hush krm`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> Result<ExitCode> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = config::settings(&env, &BTreeMap::new())?;
    for w in &settings.warnings {
        eprintln!("hush krm: warning: {w}");
    }
    let keys = Keys::load(settings.sops_keys_dir.as_deref())?
        .with_vault_addresses(VaultAddresses::new(&settings.sops_vault_addresses)?);
    let root = std::env::current_dir().context("reading the working directory")?;
    if let Some(generator) = args.generator {
        let out = krm::run_legacy(&generator, &root, &keys).await?;
        std::io::stdout().lock().write_all(out.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let backend: Option<Box<dyn Backend>> = match settings.backend {
        None => None,
        Some(b) => Some(backend::from_settings(b).await?),
    };
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading the ResourceList from stdin")?;
    let opts = resolve::Options {
        path_validation: settings.path_validation,
        path_prefix: settings.path_prefix,
        concurrency: settings.concurrency,
    };
    let run = krm::run(&input, &root, &keys, backend.as_deref(), &opts).await;
    std::io::stdout().lock().write_all(run.stdout.as_bytes())?;
    match run.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!("unable to generate manifests: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The `ksops` persona's command line, for completion scripts and man pages (the persona itself
/// reads its one argument as KSOPS does, without a parser: kustomize passes it unchanged).
#[derive(Debug, clap::Parser)]
#[command(
    name = "ksops",
    about = "ksops (hush): KSOPS-compatible kustomize exec KRM function (ResourceList on stdin)"
)]
struct KsopsCli {
    #[command(flatten)]
    args: Args,
}

/// The `ksops` persona's command line (completion scripts and man pages).
pub(crate) fn persona_command() -> clap::Command {
    <KsopsCli as clap::CommandFactory>::command()
}

/// Runs the `ksops` persona.
pub(crate) fn run_persona(args: Vec<OsString>) -> ExitCode {
    let generator = args.get(1).map(PathBuf::from);
    match run(Args { generator }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("unable to generate manifests: {e:#}");
            ExitCode::FAILURE
        }
    }
}
