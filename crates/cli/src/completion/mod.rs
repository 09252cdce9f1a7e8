//! Shell completion scripts (`hush completion`, `sops completion`, `argocd-vault-plugin
//! completion`) and man pages (`hush man`), generated from the clap definitions that parse the
//! command line (clap_complete, clap_mangen), so help, completion and man pages never drift.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::persona::PERSONAS;

pub(crate) mod script;

use script::write_script;

/// `hush completion SHELL [COMMAND]`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionArgs {
    /// The shell to write the script for.
    shell: Shell,
    /// The command to complete: `hush` (default) or a persona (`sops`, `kubeseal`,
    /// `argocd-vault-plugin`, `ksops`), for persona links made by `hush install-links`.
    #[arg(default_value = "hush", value_parser = command_names())]
    command: String,
}

/// `hush man [PAGE] [--out-dir DIR]`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write every page (hush, each subcommand, each persona and its commands) into DIR, one
    /// `NAME.1` file each, and print their paths.
    #[arg(long, value_name = "DIR", conflicts_with = "page")]
    out_dir: Option<PathBuf>,
    /// Print this page (e.g. `hush`, `hush-sops`, `sops-exec-file`, `kubeseal`) to standard
    /// output; `hush man --list` names them all.
    page: Option<String>,
    /// Print the name of every page.
    #[arg(long, conflicts_with_all = ["out_dir", "page"])]
    list: bool,
}

/// The names `COMMAND` accepts: hush and every persona.
fn command_names() -> Vec<&'static str> {
    std::iter::once("hush")
        .chain(PERSONAS.iter().map(|(name, _)| *name))
        .collect()
}

/// The clap command for `hush` or a persona, named as the user types it.
fn command_named(name: &str) -> Option<clap::Command> {
    if name == "hush" {
        return Some(crate::Cli::command());
    }
    PERSONAS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| p.command())
}

/// Runs `hush completion`.
pub(crate) fn run_completion(args: CompletionArgs) -> Result<ExitCode> {
    let Some(cmd) = command_named(&args.command) else {
        bail!("unknown command {:?}", args.command);
    };
    write_script(args.shell, cmd, &args.command)
}

/// One man page: its file stem (`hush-sops-encrypt`) and the command it documents.
struct Page {
    name: String,
    cmd: clap::Command,
}

/// Every page: hush and its subcommands, then each persona and its subcommands.
fn pages() -> Vec<Page> {
    let mut out = Vec::new();
    for name in command_names() {
        if let Some(cmd) = command_named(name) {
            let mut cmd = cmd.disable_help_subcommand(true);
            // Building gives each subcommand its display name (`hush-sops-encrypt`).
            cmd.build();
            collect_pages(cmd, &mut out);
        }
    }
    out
}

fn collect_pages(cmd: clap::Command, out: &mut Vec<Page>) {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    out.push(Page { name, cmd });
    for sub in subs {
        collect_pages(sub, out);
    }
}

fn render(page: &Page) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(page.cmd.clone())
        .source(format!("hush {}", env!("CARGO_PKG_VERSION")))
        .manual("hush")
        .render(&mut buf)
        .with_context(|| format!("rendering the man page {}", page.name))?;
    Ok(buf)
}

/// Runs `hush man`.
pub(crate) fn run_man(args: ManArgs) -> Result<ExitCode> {
    let pages = pages();
    if args.list {
        let mut out = std::io::stdout().lock();
        for p in &pages {
            writeln!(out, "{}", p.name)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = args.out_dir {
        return write_pages(&pages, &dir);
    }
    let wanted = args.page.unwrap_or_else(|| "hush".to_owned());
    let Some(page) = pages.iter().find(|p| p.name == wanted) else {
        bail!("no man page named {wanted:?} (hush man --list names them)");
    };
    std::io::stdout().lock().write_all(&render(page)?)?;
    Ok(ExitCode::SUCCESS)
}

fn write_pages(pages: &[Page], dir: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    for page in pages {
        let path = dir.join(format!("{}.1", page.name));
        std::fs::write(&path, render(page)?)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "{}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_persona_has_pages_with_unique_names() {
        let pages = pages();
        let names: std::collections::BTreeSet<&str> =
            pages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), pages.len(), "duplicate page names");
        for want in [
            "hush",
            "hush-sops",
            "hush-seal",
            "hush-completion",
            "hush-man",
            "sops",
            "sops-exec-file",
            "sops-groups-add",
            "kubeseal",
            "argocd-vault-plugin",
            "argocd-vault-plugin-generate",
            "ksops",
        ] {
            assert!(names.contains(want), "no page {want}: {names:?}");
        }
    }

    #[test]
    fn pages_render_as_roff_with_their_options() {
        let pages = pages();
        let page = pages.iter().find(|p| p.name == "kubeseal").unwrap();
        let roff = String::from_utf8(render(page).unwrap()).unwrap();
        assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{roff:.200}");
        assert!(roff.contains(".TH kubeseal 1"), "{roff:.400}");
        assert!(roff.contains("recovery\\-unseal"));
    }
}
