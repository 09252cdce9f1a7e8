//! `hush seal`, also the `kubeseal` persona: kubeseal's flags (each also read from
//! `SEALED_SECRETS_<FLAG>`), its mode dispatch order, input rules, output shapes, error texts and
//! exit codes. The sealing itself is `hush-sealing`; this module reads files, talks to the
//! controller and writes results.

mod cluster;
mod multi;

use std::ffi::OsString;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use clap::Parser as _;
use hush_crypto::SystemEntropy;
use hush_crypto::cert::Certificate;
use hush_crypto::rsa::RsaPublicKey;
use hush_sealing::codec::{self, Format};
use hush_sealing::seal::{self as sealing, Prepare};
use hush_sealing::unseal::{Keyring, UnsealOptions};
use hush_sealing::{Scope, keys};

use crate::template_limits::TemplateLimitArgs;
use cluster::{Controller, KubeFlags};

/// The upstream release whose behaviour the `kubeseal` persona follows.
pub(crate) const KUBESEAL_COMPAT_VERSION: &str = "v0.36.6";

/// Arguments of `hush seal` and of the `kubeseal` persona.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Sealing")]
pub(crate) struct Args {
    /// Certificate / public key file/URL to use for encryption. Overrides --controller-*.
    /// hush: repeat as NAME=FILE|URL to seal for several clusters (with -w 'DIR/{cluster}.yaml').
    #[arg(long, env = "SEALED_SECRETS_CERT", value_name = "FILE|URL")]
    cert: Vec<String>,
    /// Namespace of sealed-secrets controller.
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    controller_namespace: String,
    /// Name of sealed-secrets controller.
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    controller_name: String,
    /// hush: reach the controller directly at URL (/v1/cert.pem, /v1/verify, /v1/rotate under it)
    /// instead of through the API server's service proxy.
    #[arg(long, env = "SEALED_SECRETS_CONTROLLER_URL", value_name = "URL")]
    controller_url: Option<String>,
    /// Output format for sealed secret. Either json or yaml
    #[arg(
        short = 'o',
        long = "format",
        env = "SEALED_SECRETS_FORMAT",
        default_value = "json"
    )]
    format: String,
    /// Sealed-secret (output) file
    #[arg(
        short = 'w',
        long = "sealed-secret-file",
        env = "SEALED_SECRETS_SEALED_SECRET_FILE"
    )]
    output: Option<String>,
    /// Secret (input) file
    #[arg(short = 'f', long = "secret-file", env = "SEALED_SECRETS_SECRET_FILE")]
    input: Option<PathBuf>,
    /// Write certificate to stdout. Useful for later use with --cert
    #[arg(long, env = "SEALED_SECRETS_FETCH_CERT", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    fetch_cert: bool,
    /// Allow empty data in the secret object
    #[arg(long, env = "SEALED_SECRETS_ALLOW_EMPTY_DATA", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    allow_empty_data: bool,
    /// Validate that the sealed secret can be decrypted
    #[arg(long, env = "SEALED_SECRETS_VALIDATE", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    validate: bool,
    /// Merge items from secret into an existing sealed secret file, updating the file in-place instead of writing to stdout.
    #[arg(long, env = "SEALED_SECRETS_MERGE_INTO", value_name = "FILE")]
    merge_into: Option<PathBuf>,
    /// Encrypt a raw value passed via the --from-* flags instead of the whole secret object
    #[arg(long, env = "SEALED_SECRETS_RAW", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    raw: bool,
    /// Name of the sealed secret (required with --raw and default (strict) scope)
    #[arg(long, env = "SEALED_SECRETS_NAME")]
    name: Option<String>,
    /// (only with --raw) Secret items can be sourced from files. Pro-tip: you can use /dev/stdin to read pipe input. This flag tries to follow the same syntax as in kubectl
    #[arg(long, env = "SEALED_SECRETS_FROM_FILE", value_delimiter = ',')]
    from_file: Vec<String>,
    /// Set the scope of the sealed secret: strict, namespace-wide, cluster-wide (defaults to strict). Mandatory for --raw, otherwise the 'sealedsecrets.bitnami.com/cluster-wide' and 'sealedsecrets.bitnami.com/namespace-wide' annotations on the input secret can be used to select the scope.
    #[arg(long, env = "SEALED_SECRETS_SCOPE", default_value = "strict", value_parser = parse_scope)]
    scope: Scope,
    /// Re-encrypt the given sealed secret to use the latest cluster key. hush: with
    /// --recovery-private-key and --cert it re-seals offline (and with --dir, a whole tree).
    #[arg(long = "re-encrypt", alias = "rotate", env = "SEALED_SECRETS_RE_ENCRYPT", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    re_encrypt: bool,
    /// Decrypt a sealed secrets file obtained from stdin, using the private key passed with --recovery-private-key. Intended to be used in disaster recovery mode.
    #[arg(long, env = "SEALED_SECRETS_RECOVERY_UNSEAL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    recovery_unseal: bool,
    /// Private key filename used by the --recovery-unseal command. Multiple files accepted either via comma separated list or by repetition of the flag. Either PEM encoded private keys or a backup of a json/yaml encoded k8s sealed-secret controller secret (and v1.List) are accepted.
    #[arg(
        long,
        env = "SEALED_SECRETS_RECOVERY_PRIVATE_KEY",
        value_delimiter = ','
    )]
    recovery_private_key: Vec<PathBuf>,
    /// hush: with --recovery-unseal, print on stderr which key (SSH-style fingerprint) opened
    /// each item.
    #[arg(long)]
    show_keys: bool,
    /// hush: with --re-encrypt, --recovery-private-key and --cert, re-seal every SealedSecret
    /// file under DIR in place.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeFlags,
    #[command(flatten)]
    template: TemplateLimitArgs,
}

/// The `kubeseal` persona's command line: kubeseal's flags plus `--version`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "kubeseal",
    disable_version_flag = true,
    about = "hush as kubeseal: seal Kubernetes Secrets for the Sealed Secrets controller"
)]
struct KubesealCli {
    /// Print version information and exit
    #[arg(long)]
    version: bool,
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    klog: KlogFlags,
}

/// klog's logging flags, which kubeseal registers; accepted and ignored (hush logs nothing
/// there).
#[derive(Debug, clap::Args)]
struct KlogFlags {
    /// number for the log level verbosity (ignored)
    #[arg(short = 'v', long = "v", hide = true)]
    _v: Option<String>,
    /// klog flags taking a value (ignored)
    #[arg(long = "log_dir", alias = "log_file", hide = true)]
    _log_file: Option<String>,
    #[arg(long = "vmodule", alias = "log_backtrace_at", hide = true)]
    _vmodule: Option<String>,
    #[arg(
        long = "stderrthreshold",
        alias = "alsologtostderrthreshold",
        hide = true
    )]
    _threshold: Option<String>,
    #[arg(long = "log_file_max_size", hide = true)]
    _max_size: Option<String>,
    /// klog boolean flags (ignored)
    #[arg(long = "logtostderr", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, hide = true)]
    _logtostderr: Option<bool>,
    #[arg(long = "alsologtostderr", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, hide = true)]
    _alsologtostderr: Option<bool>,
    #[arg(long = "add_dir_header", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, hide = true)]
    _add_dir_header: Option<bool>,
    #[arg(long = "skip_headers", alias = "skip_log_headers", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, hide = true)]
    _skip_headers: Option<bool>,
    #[arg(long = "one_output", alias = "legacy_stderr_threshold_behavior", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, hide = true)]
    _one_output: Option<bool>,
}

/// Names the input file in a parse error (kubeseal's messages name none); stdin stays unnamed.
fn in_file<T>(path: Option<&Path>, r: hush_sealing::Result<T>) -> anyhow::Result<T> {
    match path {
        Some(p) => r.with_context(|| p.display().to_string()),
        None => Ok(r?),
    }
}

/// Runs the `kubeseal` persona: kubeseal's `--version` line, `error: ` prefix and exit code 1.
pub(crate) fn run_persona(argv: Vec<OsString>) -> ExitCode {
    let cli = match KubesealCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // pflag exits 2 on a bad flag; --help exits 0.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.version {
        println!(
            "kubeseal version: {KUBESEAL_COMPAT_VERSION}+hush.{}",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    match run(cli.args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Go's `strconv.ParseBool`, which pflag and the `SEALED_SECRETS_*` variables use.
pub(crate) fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse().map_err(|e: hush_sealing::Error| e.to_string())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Where results go: stdout, written as they are produced (kubeseal prints each document as it
/// is sealed, so a later error leaves the earlier ones printed), or a file replaced atomically
/// only on success.
struct Output {
    path: Option<PathBuf>,
    buf: Vec<u8>,
}

impl Output {
    fn emit(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self.path {
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()?;
            }
            Some(_) => self.buf.extend_from_slice(bytes),
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self.path {
            None => Ok(()),
            Some(path) => write_atomically(&path, &self.buf),
        }
    }
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Keep the mode of an existing file (kubeseal's renameio does the same).
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().lock().read_to_end(&mut buf)?;
    Ok(buf)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
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
    let mut format: Format = args.format.parse().map_err(|e: String| anyhow!(e))?;

    // Input: -f or stdin, read when a mode needs it.
    let input_path = args.input.clone();
    if input_path.is_none()
        && !args.raw
        && !args.fetch_cert
        && args.dir.is_none()
        && std::io::stdin().is_terminal()
    {
        eprintln!("(tty detected: expecting json/yaml k8s resource in stdin)");
    }
    let read_input = || -> anyhow::Result<Vec<u8>> {
        match &input_path {
            Some(p) => std::fs::read(p)
                .map_err(|_| anyhow!("Could not read file specified with --secret-file")),
            None => read_stdin(),
        }
    };

    // --re-encrypt -f X without -w rewrites X (kubeseal #405).
    if args.re_encrypt
        && args.output.is_none()
        && let Some(p) = &args.input
    {
        args.output = Some(p.to_string_lossy().into_owned());
    }
    // Multi-cluster output pattern: handled by `multi`.
    if args
        .output
        .as_deref()
        .is_some_and(|o| o.contains("{cluster}"))
        || multi::is_named(&args.cert)
    {
        return multi::run(&args, format, read_input()?).map(|()| ExitCode::SUCCESS);
    }
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

    if args.recovery_unseal {
        let ring = read_keyring(&args.recovery_private_key)?;
        let sealed = in_file(
            input_path.as_deref(),
            codec::read_sealed_secret(&read_input()?),
        )?;
        let opts = UnsealOptions {
            template_limits: args.template.limits(),
            ..UnsealOptions::default()
        };
        let unsealed = in_file(input_path.as_deref(), ring.unseal(&sealed, &opts))?;
        if args.show_keys {
            for (item, key) in &unsealed.opened_by {
                eprintln!("{item}: opened by {key}");
            }
        }
        out.emit(codec::write_secret(&unsealed.secret, format)?.as_bytes())?;
        out.finish()?;
        return Ok(ExitCode::SUCCESS);
    }

    // hush: offline re-encryption with old private keys and a new certificate.
    if args.re_encrypt && !args.recovery_private_key.is_empty() {
        let ring = read_keyring(&args.recovery_private_key)?;
        let public = open_public_key(&args)?;
        if let Some(dir) = &args.dir {
            return multi::reseal_dir(dir, &ring, &public).map(|()| ExitCode::SUCCESS);
        }
        let input = read_input()?;
        for sealed in in_file(input_path.as_deref(), codec::read_sealed_secrets(&input))? {
            let resealed = multi::reseal(&sealed, &ring, &public)?;
            out.buf
                .extend(codec::write_sealed_secret(&resealed, format)?.into_bytes());
        }
        out.finish()?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.recovery_private_key.is_empty() && std::io::stderr().is_terminal() {
        eprintln!(
            "warning: ignoring --recovery-private-key because unseal command not chosen with --recovery-unseal"
        );
    }

    if args.validate {
        let input = read_input()?;
        let rt = runtime()?;
        rt.block_on(async {
            let controller = connect(&args).await?;
            let secrets = codec::read_sealed_secrets(&input)
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
        })?;
        return Ok(ExitCode::SUCCESS);
    }

    if args.re_encrypt {
        let input = read_input()?;
        let rt = runtime()?;
        rt.block_on(async {
            let controller = connect(&args).await?;
            for sealed in in_file(input_path.as_deref(), codec::read_sealed_secrets(&input))? {
                let body = serde_json::to_vec(&sealed)?;
                let text = match controller.post("rotate", body).await? {
                    Ok(text) => text,
                    Err(e) if e.status == Some(409) => bail!("unable to rotate secret"),
                    Err(e) => bail!("cannot re-encrypt secret: {e}"),
                };
                let mut rotated = codec::read_sealed_secret(text.as_bytes())?;
                rotated.metadata.creation_timestamp = None;
                rotated.metadata.deletion_timestamp = None;
                rotated.metadata.generation = 0;
                out.emit(codec::write_sealed_secret(&rotated, format)?.as_bytes())?;
            }
            anyhow::Ok(())
        })?;
        out.finish()?;
        return Ok(ExitCode::SUCCESS);
    }

    let cert_bytes = open_cert(&args)?;
    if args.fetch_cert {
        out.emit(&cert_bytes)?;
        out.finish()?;
        return Ok(ExitCode::SUCCESS);
    }
    let public = parse_cert(&cert_bytes)?;
    // client-go's `clientConfig.Namespace()`; kubeseal ignores its error except with --raw.
    let namespace_result = args.kube.namespace();
    let (namespace, namespace_explicit) = namespace_result
        .clone()
        .unwrap_or_else(|_| (String::new(), false));

    if let Some(target_path) = &args.merge_into {
        let target_bytes = std::fs::read(target_path)
            .with_context(|| format!("open {}", target_path.display()))?;
        let mut target = in_file(
            Some(target_path.as_path()),
            codec::read_sealed_secret(&target_bytes),
        )?;
        let mut secrets = in_file(input_path.as_deref(), codec::read_secrets(&read_input()?))?;
        if secrets.is_empty() {
            return Err(hush_sealing::Error::NoSecrets.into());
        }
        for secret in &mut secrets {
            sealing::prepare(
                secret,
                &Prepare {
                    scope: args.scope,
                    override_name: Some(&target.metadata.name),
                    override_namespace: Some(&target.metadata.namespace),
                    namespace: &namespace,
                    namespace_explicit,
                    allow_empty_data: args.allow_empty_data,
                },
            )?;
            let update = sealing::seal_secret(&public, secret, &mut SystemEntropy)?;
            sealing::merge_into(&mut target, update);
        }
        let text = codec::write_sealed_secret(&target, format)?;
        write_atomically(target_path, text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }

    if args.raw {
        let (ns, name) = match args.scope {
            Scope::ClusterWide => (String::new(), String::new()),
            _ => (
                namespace_result.map_err(|e| anyhow!(e))?.0,
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
        let sealed =
            sealing::seal_raw(&public, args.scope, &ns, &name, &value, &mut SystemEntropy)?;
        out.emit(sealed.as_bytes())?;
        out.finish()?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut secrets = in_file(input_path.as_deref(), codec::read_secrets(&read_input()?))?;
    if secrets.is_empty() {
        return Err(hush_sealing::Error::NoSecrets.into());
    }
    for secret in &mut secrets {
        sealing::prepare(
            secret,
            &Prepare {
                scope: args.scope,
                override_name: args.name.as_deref(),
                override_namespace: None,
                namespace: &namespace,
                namespace_explicit,
                allow_empty_data: args.allow_empty_data,
            },
        )?;
        let sealed = sealing::seal_secret(&public, secret, &mut SystemEntropy)?;
        out.emit(codec::write_sealed_secret(&sealed, format)?.as_bytes())?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

async fn connect(args: &Args) -> anyhow::Result<Controller> {
    Controller::connect(
        &args.kube,
        args.controller_url.as_deref(),
        &args.controller_namespace,
        &args.controller_name,
    )
    .await
}

/// Reads every `--recovery-private-key` file into a keyring (ids are fingerprints).
fn read_keyring(paths: &[PathBuf]) -> anyhow::Result<Keyring> {
    let mut ring = Keyring::new();
    for path in paths {
        let bytes = std::fs::read(path).with_context(|| format!("open {}", path.display()))?;
        for key in keys::parse_private_keys(&bytes)
            .with_context(|| format!("reading private keys from {}", path.display()))?
        {
            ring.add(key);
        }
    }
    Ok(ring)
}

/// The certificate bytes: `--cert` (file, `file://`, `http(s)://`), else the controller.
fn open_cert(args: &Args) -> anyhow::Result<Vec<u8>> {
    match args.cert.first() {
        Some(location) => open_cert_location(location),
        None => runtime()?.block_on(async { connect(args).await?.cert().await }),
    }
}

/// Reads a certificate from a file name or URL, as kubeseal's `openCertLocal`: no scheme or a
/// one-letter scheme (a Windows drive) is a file; `file://` is a file; anything else is fetched.
pub(crate) fn open_cert_location(location: &str) -> anyhow::Result<Vec<u8>> {
    let scheme = location
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
    match scheme.as_deref() {
        None => std::fs::read(location).with_context(|| format!("open {location}")),
        Some(s) if s.len() == 1 => {
            std::fs::read(location).with_context(|| format!("open {location}"))
        }
        Some("file") => {
            let path = &location["file://".len()..];
            std::fs::read(path).with_context(|| format!("open {path}"))
        }
        Some("http" | "https") => runtime()?.block_on(cluster::fetch_url(location)),
        Some(other) => bail!("Get {location:?}: unsupported protocol scheme {other:?}"),
    }
}

fn open_public_key(args: &Args) -> anyhow::Result<RsaPublicKey> {
    parse_cert(&open_cert(args)?)
}

/// kubeseal's `ParseKey`: the first certificate's RSA key, refused when expired; hush warns when
/// it expires within 30 days.
pub(crate) fn parse_cert(bytes: &[u8]) -> anyhow::Result<RsaPublicKey> {
    let cert = Certificate::from_pem(bytes)?;
    if let Some(days) = sealing::check_certificate_validity(cert.not_after, now_unix())? {
        eprintln!(
            "warning: the sealing certificate expires in {days} days, on {}",
            sealing::go_long_date(cert.not_after)
        );
    }
    Ok(cert.public_key)
}

/// Parses `hush seal` arguments for tests.
#[cfg(test)]
fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
    KubesealCli::try_parse_from(argv).map(|c| c.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_pflag() {
        let a = parse(&[
            "kubeseal",
            "--raw",
            "--scope",
            "cluster-wide",
            "-o",
            "yaml",
            "--from-file=a=b,c",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(a.raw);
        assert_eq!(a.scope, Scope::ClusterWide);
        assert_eq!(a.from_file, vec!["a=b", "c"]);
        let a = parse(&["kubeseal", "--raw=false", "--rotate"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!a.raw && a.re_encrypt);
        assert!(parse(&["kubeseal", "--scope", "global"]).is_err());
        assert_eq!(go_bool("T"), Ok(true));
        assert!(go_bool("yes").is_err());
    }
}
