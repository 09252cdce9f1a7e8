//! The `hush` binary. Thin: argument parsing, persona dispatch, and printing; the work happens in
//! the library crates.
#![forbid(unsafe_code)]

mod completion;
mod controller;
mod demo;
mod install_links;
mod krm;
mod persona;
mod render;
mod seal;
mod sops;
mod status;
mod template_limits;
mod tree;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hush — GitOps secrets in one binary: Sealed Secrets, SOPS, External Secrets, render plugins.
#[derive(Debug, Parser)]
#[command(name = "hush", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk through hush's features in a temporary directory, printing each step.
    Demo(demo::Args),
    /// Create the persona symlinks (kubeseal, sops, …) to this binary in DIR.
    InstallLinks(install_links::Args),
    /// Encrypt, decrypt and edit SOPS files (sops-compatible; persona `sops`).
    Sops(Box<sops::Args>),
    /// Seal Secrets for the Sealed Secrets controller (kubeseal-compatible; persona `kubeseal`).
    Seal(Box<seal::Args>),
    /// Render an app's manifests with secrets: SOPS decryption, argocd-vault-plugin
    /// placeholders, optional resealing (the Argo CD CMP `generate` command; persona
    /// `argocd-vault-plugin`).
    Render(Box<render::Args>),
    /// Run as a kustomize exec KRM function: KSOPS-compatible generator, decrypting transformer
    /// (persona `ksops`).
    Krm(krm::Args),
    /// Run hush's controllers (the Sealed Secrets controller; `--controllers`).
    Controller(Box<controller::Args>),
    /// SealedSecrets, ExternalSecrets and sealing keys with their sync state (exit 1 when
    /// something is not synced, 2 when RBAC hid a part).
    Status(status::Args),
    /// Print a shell completion script for hush or a persona (bash, zsh, fish, powershell,
    /// elvish).
    Completion(completion::CompletionArgs),
    /// Print or write the man pages of hush, its commands and its personas.
    Man(completion::ManArgs),
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(persona) = args.first().and_then(persona::Persona::from_argv0) {
        return persona.run(args);
    }
    let cli = Cli::parse_from(controller::with_hush_env(args));
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::InstallLinks(a) => install_links::run(a),
        Command::Sops(a) => Ok(sops::run_command(*a)),
        Command::Seal(a) => seal::run(*a),
        Command::Render(a) => render::run(*a),
        Command::Krm(a) => krm::run(a),
        Command::Controller(a) => controller::run(*a),
        Command::Status(a) => status::run(a),
        Command::Completion(a) => completion::run_completion(a),
        Command::Man(a) => completion::run_man(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hush: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
