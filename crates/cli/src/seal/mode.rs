//! What one `hush seal` / `kubeseal` run does: the flags are read once into a [`Mode`], in
//! kubeseal's dispatch order (`runCLI`), and the mode is run (ripgrep's `HiArgs` → `Mode`).
//! Sealing for several clusters (hush's `--cert NAME=…`) is decided before, in `multi`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use hush_crypto::SystemEntropy;
use hush_crypto::rsa::RsaPublicKey;
use hush_sealing::Scope;
use hush_sealing::SealedSecret;
use hush_sealing::codec::{self, Format};
use hush_sealing::seal::{self as sealing, Prepare};
use hush_sealing::unseal::UnsealOptions;

use super::cluster::Controller;
use super::{
    Args, Output, connect, go_bool, in_file, multi, open_cert, open_public_key, parse_cert,
    read_keyring, read_stdin, runtime, write_atomically,
};
use crate::tree;

/// One run's job, first match wins (kubeseal's order, with hush's additions in their place).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// `--recovery-unseal`: decrypt offline with private keys.
    RecoveryUnseal,
    /// hush: `--re-encrypt --recovery-private-key … --cert …`: re-seal offline, one input or
    /// every file under `--dir`.
    OfflineReseal { dir: Option<PathBuf> },
    /// `--validate`: ask the controller whether it can decrypt.
    Validate,
    /// `--re-encrypt`: the controller re-seals for its newest key.
    ReEncrypt,
    /// hush: `--re-encrypt --dir DIR`: the controller re-seals every SealedSecret file under DIR.
    ReEncryptDir(PathBuf),
    /// `--fetch-cert`: print the certificate.
    FetchCert,
    /// `--merge-into FILE`: seal and merge into an existing SealedSecret file.
    MergeInto(PathBuf),
    /// `--raw`: seal one value.
    Raw,
    /// Seal whole Secrets.
    Seal,
}

impl Mode {
    fn of(args: &Args) -> Self {
        if args.recovery_unseal {
            Self::RecoveryUnseal
        } else if args.re_encrypt && !args.recovery_private_key.is_empty() {
            Self::OfflineReseal {
                dir: args.dir.clone(),
            }
        } else if args.validate {
            Self::Validate
        } else if args.re_encrypt
            && let Some(dir) = &args.dir
        {
            Self::ReEncryptDir(dir.clone())
        } else if args.re_encrypt {
            Self::ReEncrypt
        } else if args.fetch_cert {
            Self::FetchCert
        } else if let Some(target) = &args.merge_into {
            Self::MergeInto(target.clone())
        } else if args.raw {
            Self::Raw
        } else {
            Self::Seal
        }
    }

    /// Whether `--recovery-private-key` means nothing in this mode (kubeseal warns then).
    fn ignores_recovery_keys(&self) -> bool {
        !matches!(self, Self::RecoveryUnseal | Self::OfflineReseal { .. })
    }
}

/// The input: `-f FILE` or standard input, read when the mode needs it.
struct Input {
    path: Option<PathBuf>,
}

impl Input {
    fn read(&self) -> anyhow::Result<Vec<u8>> {
        match &self.path {
            Some(p) => std::fs::read(p)
                .map_err(|_| anyhow!("Could not read file specified with --secret-file")),
            None => read_stdin(),
        }
    }

    fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Runs `hush seal` / `kubeseal` with parsed arguments, in kubeseal's dispatch order.
pub(crate) fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    // `--rotate` is its own (deprecated) flag in kubeseal, so it has its own variable too.
    if std::env::var("SEALED_SECRETS_ROTATE").is_ok_and(|v| go_bool(&v) == Ok(true)) {
        args.re_encrypt = true;
    }
    if !args.from_file.is_empty() && !args.raw {
        bail!("--from-file requires --raw");
    }
    if args.dir.is_some() && !args.re_encrypt {
        bail!("--dir requires --re-encrypt (hush re-seals the SealedSecret files under it)");
    }
    let mut format: Format = args.format.parse().map_err(|e: String| anyhow!(e))?;
    let input = Input {
        path: args.input.clone(),
    };
    if input.path.is_none()
        && !args.raw
        && !args.fetch_cert
        && args.dir.is_none()
        && std::io::stdin().is_terminal()
    {
        eprintln!("(tty detected: expecting json/yaml k8s resource in stdin)");
    }
    // --re-encrypt -f X without -w rewrites X (kubeseal #405).
    if args.re_encrypt
        && args.output.is_none()
        && let Some(p) = &args.input
    {
        args.output = Some(p.to_string_lossy().into_owned());
    }
    // hush: `--cert NAME=FILE|URL` or `-w` with `{cluster}` seals for several clusters.
    if args
        .output
        .as_deref()
        .is_some_and(|o| o.contains("{cluster}"))
        || multi::is_named(&args.cert)
    {
        return multi::run(&args, format, input.read()?).map(|()| ExitCode::SUCCESS);
    }
    let mode = Mode::of(&args);
    let output_path = args.output.as_ref().map(PathBuf::from);
    if let Some(p) = &output_path
        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
    {
        format = Format::Yaml;
    }
    let mut out = Output {
        path: output_path,
        buf: Vec::new(),
    };
    if mode.ignores_recovery_keys()
        && !args.recovery_private_key.is_empty()
        && std::io::stderr().is_terminal()
    {
        eprintln!(
            "warning: ignoring --recovery-private-key because unseal command not chosen with --recovery-unseal"
        );
    }
    match mode {
        Mode::RecoveryUnseal => recovery_unseal(&args, &input, &mut out, format)?,
        Mode::OfflineReseal { dir: Some(dir) } => {
            let ring = read_keyring(&args.recovery_private_key)?;
            let public = open_public_key(&args)?;
            let failed = multi::rewrite_dir(&dir, tree::cpu_workers(), args.output_format, |s| {
                multi::reseal(s, &ring, &public)
            })?;
            return Ok(dir_exit(failed));
        }
        Mode::ReEncryptDir(dir) => return re_encrypt_dir(&args, &dir),
        Mode::OfflineReseal { dir: None } => offline_reseal(&args, &input, &mut out, format)?,
        Mode::Validate => return validate(&args, &input).map(|()| ExitCode::SUCCESS),
        Mode::ReEncrypt => re_encrypt(&args, &input, &mut out, format)?,
        Mode::FetchCert => out.emit(&open_cert(&args)?)?,
        Mode::MergeInto(target) => {
            let sealer = Sealer::open(&args)?;
            return merge_into(&args, &sealer, &input, &target, format).map(|()| ExitCode::SUCCESS);
        }
        Mode::Raw => raw(&args, &Sealer::open(&args)?, &mut out)?,
        Mode::Seal => seal(&args, &Sealer::open(&args)?, &input, &mut out, format)?,
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn recovery_unseal(
    args: &Args,
    input: &Input,
    out: &mut Output,
    format: Format,
) -> anyhow::Result<()> {
    let ring = read_keyring(&args.recovery_private_key)?;
    let sealed = in_file(input.path(), codec::read_sealed_secret(&input.read()?))?;
    let opts = UnsealOptions {
        template_limits: args.template.limits(),
        ..UnsealOptions::default()
    };
    let unsealed = in_file(input.path(), ring.unseal(&sealed, &opts))?;
    if args.show_keys {
        for (item, key) in &unsealed.opened_by {
            eprintln!("{item}: opened by {key}");
        }
    }
    out.emit(codec::write_secret(&unsealed.secret, format)?.as_bytes())
}

/// hush: offline re-encryption with old private keys and a new certificate.
fn offline_reseal(
    args: &Args,
    input: &Input,
    out: &mut Output,
    format: Format,
) -> anyhow::Result<()> {
    let ring = read_keyring(&args.recovery_private_key)?;
    let public = open_public_key(args)?;
    let bytes = input.read()?;
    for sealed in in_file(input.path(), codec::read_sealed_secrets(&bytes))? {
        let resealed = multi::reseal(&sealed, &ring, &public)?;
        out.buf
            .extend(codec::write_sealed_secret(&resealed, format)?.into_bytes());
    }
    Ok(())
}

fn validate(args: &Args, input: &Input) -> anyhow::Result<()> {
    let bytes = input.read()?;
    runtime()?.block_on(async {
        let controller = connect(args).await?;
        let secrets = codec::read_sealed_secrets(&bytes)
            .map_err(|_| anyhow!("unable to decrypt sealed secret"))?;
        for sealed in secrets {
            let body = serde_json::to_vec(&sealed)?;
            if let Err(e) = controller.post("verify", body).await? {
                if e.status == Some(409) {
                    bail!("unable to decrypt sealed secret: {}", sealed.metadata.name);
                }
                bail!("cannot validate sealed secret: {e}");
            }
        }
        Ok(())
    })
}

fn re_encrypt(args: &Args, input: &Input, out: &mut Output, format: Format) -> anyhow::Result<()> {
    let bytes = input.read()?;
    runtime()?.block_on(async {
        let controller = connect(args).await?;
        for sealed in in_file(input.path(), codec::read_sealed_secrets(&bytes))? {
            let rotated = rotate_one(&controller, &sealed).await?;
            out.emit(codec::write_sealed_secret(&rotated, format)?.as_bytes())?;
        }
        anyhow::Ok(())
    })
}

/// How long `rotate_one` keeps retrying while hush's controller answers 429 (its
/// `--rotate-rate-limit`; Bitnami's `/v1/rotate` has no limit).
const ROTATE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// `POST /v1/rotate`: the controller re-seals `sealed` for its newest key; server-set fields
/// are cleared, as kubeseal does. A 429 is retried with backoff (100 ms doubling to 2 s) for up
/// to [`ROTATE_RETRY_FOR`], so a repository larger than the limit's burst goes through.
async fn rotate_one(
    controller: &Controller,
    sealed: &SealedSecret,
) -> anyhow::Result<SealedSecret> {
    let body = serde_json::to_vec(sealed)?;
    let deadline = std::time::Instant::now() + ROTATE_RETRY_FOR;
    let mut delay = std::time::Duration::from_millis(100);
    let text = loop {
        match controller.post("rotate", body.clone()).await? {
            Ok(text) => break text,
            Err(e) if e.status == Some(429) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(2));
            }
            Err(e) if e.status == Some(409) => bail!("unable to rotate secret"),
            Err(e) => bail!("cannot re-encrypt secret: {e}"),
        }
    };
    let mut rotated = codec::read_sealed_secret(text.as_bytes())?;
    rotated.metadata.creation_timestamp = None;
    rotated.metadata.deletion_timestamp = None;
    rotated.metadata.generation = 0;
    Ok(rotated)
}

/// hush: `--re-encrypt --dir DIR` through the controller, one file at a time (one connection).
fn re_encrypt_dir(args: &Args, dir: &Path) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let controller = rt.block_on(connect(args))?;
    let failed = multi::rewrite_dir(dir, 1, args.output_format, |sealed| {
        let name = format!("{}/{}", sealed.metadata.namespace, sealed.metadata.name);
        rt.block_on(rotate_one(&controller, sealed))
            .with_context(|| name)
    })?;
    Ok(dir_exit(failed))
}

/// Exit status of a directory run: 1 when any file failed (the summary names them).
fn dir_exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What the sealing modes share: the certificate's key and the namespace.
struct Sealer {
    public: RsaPublicKey,
    /// client-go's `clientConfig.Namespace()`; kubeseal ignores its error except with --raw.
    namespace_result: Result<(String, bool), String>,
}

impl Sealer {
    fn open(args: &Args) -> anyhow::Result<Self> {
        let public = parse_cert(&open_cert(args)?)?;
        Ok(Self {
            public,
            namespace_result: args.kube.namespace(),
        })
    }

    /// The namespace and whether `-n` gave it; empty when there is no kubeconfig.
    fn namespace(&self) -> (String, bool) {
        self.namespace_result
            .clone()
            .unwrap_or_else(|_| (String::new(), false))
    }
}

fn merge_into(
    args: &Args,
    sealer: &Sealer,
    input: &Input,
    target_path: &Path,
    format: Format,
) -> anyhow::Result<()> {
    let (namespace, namespace_explicit) = sealer.namespace();
    let target_bytes =
        std::fs::read(target_path).with_context(|| format!("open {}", target_path.display()))?;
    let mut target = in_file(Some(target_path), codec::read_sealed_secret(&target_bytes))?;
    let mut secrets = input_secrets(input)?;
    for secret in &mut secrets {
        sealing::prepare(
            secret,
            &Prepare {
                override_name: Some(&target.metadata.name),
                override_namespace: Some(&target.metadata.namespace),
                ..args.prepare(&namespace, namespace_explicit)
            },
        )?;
        let update = sealing::seal_secret(&sealer.public, secret, &mut SystemEntropy)?;
        sealing::merge_into(&mut target, update);
    }
    let text = codec::write_sealed_secret(&target, format)?;
    write_atomically(target_path, text.as_bytes())
}

/// The input's Secrets (a parse error names the file); none at all is kubeseal's error.
fn input_secrets(input: &Input) -> anyhow::Result<Vec<hush_sealing::Secret>> {
    let secrets = in_file(input.path(), codec::read_secrets(&input.read()?))?;
    if secrets.is_empty() {
        return Err(hush_sealing::Error::NoSecrets.into());
    }
    Ok(secrets)
}

fn raw(args: &Args, sealer: &Sealer, out: &mut Output) -> anyhow::Result<()> {
    let (ns, name) = match args.scope {
        Scope::ClusterWide => (String::new(), String::new()),
        _ => (
            sealer.namespace_result.clone().map_err(|e| anyhow!(e))?.0,
            args.name.clone().unwrap_or_default(),
        ),
    };
    sealing::raw_label(args.scope, &ns, &name)?;
    let value = match args.from_file.as_slice() {
        [] => {
            if std::io::stdin().is_terminal() {
                eprintln!("(tty detected: expecting a secret to encrypt in stdin)");
            }
            read_stdin()?
        }
        [one] => {
            let path = one.split_once('=').map_or(one.as_str(), |(_, p)| p);
            std::fs::read(path).with_context(|| format!("open {path}"))?
        }
        _ => {
            bail!("must provide only one --from-file when encrypting a single item with --raw")
        }
    };
    let sealed = sealing::seal_raw(
        &sealer.public,
        args.scope,
        &ns,
        &name,
        &value,
        &mut SystemEntropy,
    )?;
    out.emit(sealed.as_bytes())
}

fn seal(
    args: &Args,
    sealer: &Sealer,
    input: &Input,
    out: &mut Output,
    format: Format,
) -> anyhow::Result<()> {
    let (namespace, namespace_explicit) = sealer.namespace();
    let mut secrets = input_secrets(input)?;
    for secret in &mut secrets {
        sealing::prepare(secret, &args.prepare(&namespace, namespace_explicit))?;
        let sealed = sealing::seal_secret(&sealer.public, secret, &mut SystemEntropy)?;
        out.emit(codec::write_sealed_secret(&sealed, format)?.as_bytes())?;
    }
    Ok(())
}
