//! Writing a completion script for a clap command: `hush completion` and each persona's own
//! `completion` command (`sops completion`, `argocd-vault-plugin completion`) use it. A leaf, so
//! the personas need not import the command that lists them.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap_complete::Shell;

/// Writes the completion script of `cmd`, invoked as `bin`, to standard output.
pub(crate) fn write_script(shell: Shell, mut cmd: clap::Command, bin: &str) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin, &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("writing the completion script")?;
    Ok(ExitCode::SUCCESS)
}
