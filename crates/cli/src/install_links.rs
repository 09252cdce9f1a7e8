//! `hush install-links DIR`: symlinks named after the upstream tools, pointing at this binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::persona::PERSONAS;

/// Arguments of `hush install-links`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to create the links in (created if missing).
    dir: PathBuf,
    /// Replace existing files or links of the same names.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the path of the running hush binary")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create directory {}", args.dir.display()))?;
    if PERSONAS.is_empty() {
        eprintln!("hush: no personas are available in this build");
    }
    for (name, _) in PERSONAS {
        let link = args.dir.join(name);
        if link.symlink_metadata().is_ok() {
            if !args.force {
                bail!(
                    "{} already exists (use --force to replace it)",
                    link.display()
                );
            }
            std::fs::remove_file(&link)
                .with_context(|| format!("cannot remove {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("cannot create symlink {}", link.display()))?;
        println!("{} -> {}", link.display(), exe.display());
    }
    Ok(ExitCode::SUCCESS)
}
