//! Personas: the same binary behaves as an upstream tool when invoked under its name
//! (`argv[0]`), keeping that tool's `--version` shape, error prefix and exit codes.
//!
//! A persona is listed here when its subcommand works; `hush install-links` creates exactly these.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// An upstream tool hush can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persona {
    /// getsops/sops `sops` (`hush sops`).
    Sops,
    /// bitnami-labs/sealed-secrets `kubeseal` (`hush seal`).
    Kubeseal,
    /// argoproj-labs/argocd-vault-plugin `argocd-vault-plugin` (`hush render`).
    ArgocdVaultPlugin,
    /// viaduct-ai/kustomize-sops `ksops` (`hush krm`).
    Ksops,
}

/// Every persona with the file name it answers to. Later features add their line here.
pub(crate) const PERSONAS: &[(&str, Persona)] = &[
    ("sops", Persona::Sops),
    ("kubeseal", Persona::Kubeseal),
    ("argocd-vault-plugin", Persona::ArgocdVaultPlugin),
    ("ksops", Persona::Ksops),
];

impl Persona {
    /// The persona named by `argv[0]`'s file name, if any.
    pub(crate) fn from_argv0(argv0: &OsString) -> Option<Self> {
        let name = Path::new(argv0).file_name()?.to_str()?;
        PERSONAS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    /// Runs the persona with the full argument vector (argv[0] included).
    pub(crate) fn run(self, args: Vec<OsString>) -> ExitCode {
        match self {
            Persona::Sops => crate::sops::run_persona(args),
            Persona::Kubeseal => crate::seal::run_persona(args),
            Persona::ArgocdVaultPlugin => crate::render::run_persona(args),
            Persona::Ksops => crate::krm::run_persona(args),
        }
    }

    /// The persona's command line as clap knows it (for completion and man pages).
    pub(crate) fn command(self) -> clap::Command {
        match self {
            Persona::Sops => crate::sops::persona_command(),
            Persona::Kubeseal => crate::seal::persona_command(),
            Persona::ArgocdVaultPlugin => crate::render::persona_command(),
            Persona::Ksops => crate::krm::persona_command(),
        }
    }
}
