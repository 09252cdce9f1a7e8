//! `hush render [PATH|-]` — the Argo CD CMP `generate` command — and the `argocd-vault-plugin`
//! persona (`generate PATH|-`, `version`, `-c/--config-path`, `-s/--secret-name`).
//!
//! stdout carries only Kubernetes objects; everything else goes to stderr, and never a secret
//! value (errors name placeholders, fields, objects and files).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;
use hush_render::backend::{self, Backend};
use hush_render::config;
use hush_render::decrypt::{Keys, VaultAddresses};
use hush_render::render::{self, Input};
use hush_render::reseal::{self, Resealer};
use hush_render::resolve;

/// Arguments of `hush render`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The app directory, or `-` to read a YAML/JSON stream from stdin.
    #[arg(default_value = ".")]
    path: String,
    /// Emit every Secret as a strict-scope SealedSecret sealed to this certificate (file or
    /// URL). Also `HUSH_RESEAL_CERT` from the plugin's own environment.
    #[arg(long, value_name = "FILE|URL")]
    reseal_cert: Option<String>,
    /// Flux-style SOPS key directory (`*.agekey`, `*.asc`, `sops.vault-token`, `sops.aws-kms`).
    /// Also `HUSH_SOPS_KEYS_DIR`.
    #[arg(long, value_name = "DIR")]
    sops_keys_dir: Option<PathBuf>,
    /// A Vault address a SOPS file's `hc_vault` key may send the Vault token to (repeatable);
    /// besides `VAULT_ADDR` and `HUSH_SOPS_VAULT_ADDRS`, no other address receives it.
    #[arg(long = "sops-vault-addr", value_name = "URL")]
    sops_vault_addrs: Vec<String>,
    /// Allow a render with zero objects (with prune, Argo CD then deletes the whole app).
    #[arg(long)]
    allow_empty: bool,
    /// Configuration file (YAML/JSON map of AVP variables), below the environment.
    #[arg(short = 'c', long = "config-path", value_name = "FILE")]
    config_path: Option<PathBuf>,
    /// Kubernetes Secret `[NAMESPACE:]NAME` holding AVP variables (default namespace `argocd`),
    /// below the config file.
    #[arg(short = 's', long = "secret-name", value_name = "[NS:]NAME")]
    secret_name: Option<String>,
    /// Print figures (objects, decryptions, distinct reads, backend reads) to stderr.
    #[arg(long)]
    stats: bool,
}

/// Runs `hush render`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(render(args))
}

async fn render(args: Args) -> Result<ExitCode> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut base = BTreeMap::new();
    if let Some(s) = &args.secret_name {
        base.extend(read_secret(s).await?);
    }
    if let Some(c) = &args.config_path {
        base.extend(read_config(c)?);
    }
    let mut settings = config::settings(&env, &base)?;
    for w in &settings.warnings {
        eprintln!("hush render: warning: {w}");
    }
    settings.allow_empty |= args.allow_empty;
    let keys_dir = args
        .sops_keys_dir
        .clone()
        .or(settings.sops_keys_dir.clone());
    let vault_addresses = VaultAddresses::new(
        settings
            .sops_vault_addresses
            .iter()
            .chain(&args.sops_vault_addrs),
    )?;
    let keys = Keys::load(keys_dir.as_deref())?.with_vault_addresses(vault_addresses);
    let backend: Option<Box<dyn Backend>> = match settings.backend.take() {
        None => None,
        Some(b) => Some(backend::from_settings(b).await?),
    };
    let cert_source = args.reseal_cert.clone().or(settings.reseal_cert.clone());
    let resealer = match &cert_source {
        Some(src) => {
            let pem = reseal::load_cert(src).await?;
            let r = Resealer::new(&pem, settings.reseal_secret.take())?;
            if !r.is_stable() {
                eprintln!(
                    "hush render: warning: no HUSH_RESEAL_SECRET or HUSH_RESEAL_SECRET_FILE: \
                     resealed Secrets use fresh randomness and will change on every render"
                );
            }
            Some(r)
        }
        None => None,
    };
    let input = if args.path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
        Input::Stream(bytes)
    } else {
        Input::Dir(PathBuf::from(&args.path))
    };
    let opts = render::Options {
        resolve: resolve::Options {
            path_validation: settings.path_validation.clone(),
            path_prefix: settings.path_prefix.clone(),
            concurrency: settings.concurrency,
        },
        allow_empty: settings.allow_empty,
        resealer: resealer.as_ref(),
        namespace: settings.app_namespace.clone(),
        release: settings.app_name.clone(),
        kube_version: settings.kube_version.clone(),
        api_versions: settings.api_versions.clone(),
        values_files: settings.values_files.clone(),
        kustomize: std::env::var_os("HUSH_KUSTOMIZE").map(PathBuf::from),
        helm: std::env::var_os("HUSH_HELM").map(PathBuf::from),
    };
    let started = std::time::Instant::now();
    let out = render::render(&input, &opts, &keys, backend.as_deref()).await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.yaml.as_bytes())?;
    stdout.flush()?;
    if args.stats {
        eprintln!(
            "hush render: {} objects, {} SOPS decryptions, {} placeholders, {} distinct reads, \
             {} backend reads, {} resealed, {:.3} s",
            out.objects,
            out.decrypted,
            out.stats.replaced,
            out.stats.distinct,
            backend.as_ref().map_or(0, |b| b.reads()),
            out.resealed,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `-c`: a flat YAML/JSON map; keys upper-cased as Viper matches them case-insensitively.
fn read_config(path: &std::path::Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let docs = hush_render::manifest::parse(&bytes, &path.display().to_string(), false)?;
    let mut out = BTreeMap::new();
    for doc in docs {
        for item in doc {
            if let hush_sops::tree::Item::Entry(k, v) = item
                && let Some(s) = v.to_flat_string()
            {
                out.insert(k.to_uppercase(), s);
            }
        }
    }
    Ok(out)
}

/// `-s [NS:]NAME`: a Secret read with the pod's service account (namespace `argocd` by default).
async fn read_secret(spec: &str) -> Result<BTreeMap<String, String>> {
    use k8s_openapi::api::core::v1::Secret;
    let (ns, name) = spec.split_once(':').unwrap_or(("argocd", spec));
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API for --secret-name")?;
    let secret = kube::Api::<Secret>::namespaced(client, ns)
        .get(name)
        .await
        .with_context(|| format!("reading Secret {ns}/{name}"))?;
    let mut out = BTreeMap::new();
    for (k, v) in secret.data.unwrap_or_default() {
        let s = String::from_utf8(v.0)
            .with_context(|| format!("Secret {ns}/{name}: key {k} is not UTF-8"))?;
        out.insert(k, s);
    }
    for (k, v) in secret.string_data.unwrap_or_default() {
        out.insert(k, v);
    }
    Ok(out)
}

/// `argocd-vault-plugin` persona.
#[derive(Debug, Parser)]
#[command(
    name = "argocd-vault-plugin",
    version,
    about = "argocd-vault-plugin compatible render (hush)"
)]
struct Avp {
    #[command(subcommand)]
    command: AvpCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AvpCommand {
    /// Generate manifests from templates with placeholders (PATH or `-` for stdin).
    Generate {
        /// The directory, or `-`.
        path: String,
        /// Configuration file.
        #[arg(short = 'c', long = "config-path")]
        config_path: Option<PathBuf>,
        /// Kubernetes Secret `[NAMESPACE:]NAME` with the configuration.
        #[arg(short = 's', long = "secret-name")]
        secret_name: Option<String>,
        /// Accepted for compatibility and refused: hush never prints secrets.
        #[arg(long)]
        verbose_sensitive_output: bool,
        /// Accepted for compatibility: hush keeps tokens in memory only.
        #[arg(long)]
        disable_token_cache: bool,
    },
    /// Print the version.
    Version,
    /// Generate the autocompletion script for the specified shell (bash, zsh, fish,
    /// powershell; hush: also elvish).
    Completion { shell: clap_complete::Shell },
}

/// The `argocd-vault-plugin` persona's command line (completion scripts and man pages).
pub(crate) fn persona_command() -> clap::Command {
    <Avp as clap::CommandFactory>::command()
}

/// Runs the `argocd-vault-plugin` persona.
pub(crate) fn run_persona(args: Vec<OsString>) -> ExitCode {
    let cli = Avp::parse_from(args);
    let result = match cli.command {
        AvpCommand::Completion { shell } => {
            crate::completion::script::write_script(shell, persona_command(), "argocd-vault-plugin")
        }
        AvpCommand::Version => {
            println!("argocd-vault-plugin (hush {})", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        AvpCommand::Generate {
            path,
            config_path,
            secret_name,
            verbose_sensitive_output,
            disable_token_cache: _,
        } => {
            if verbose_sensitive_output {
                eprintln!(
                    "argocd-vault-plugin: --verbose-sensitive-output is not supported: hush never \
                     prints secret values"
                );
                return ExitCode::FAILURE;
            }
            run(Args {
                path,
                reseal_cert: None,
                sops_keys_dir: None,
                sops_vault_addrs: Vec::new(),
                allow_empty: false,
                config_path,
                secret_name,
                stats: false,
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
