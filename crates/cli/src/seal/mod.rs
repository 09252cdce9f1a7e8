//! `hush seal`, also the `kubeseal` persona: kubeseal's flags (each also read from
//! `SEALED_SECRETS_<FLAG>`), its mode dispatch order, input rules, output shapes, error texts and
//! exit codes. The sealing itself is `hush-sealing`; this module reads files, talks to the
//! controller and writes results.

mod cluster;
mod mode;
mod multi;

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use clap::Parser as _;
use hush_crypto::cert::Certificate;
use hush_crypto::rsa::RsaPublicKey;
use hush_sealing::seal as sealing;
use hush_sealing::unseal::Keyring;
use hush_sealing::{Scope, keys};

use crate::template_limits::TemplateLimitArgs;
use cluster::{Controller, KubeFlags};
pub(crate) use mode::run;

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
    #[arg(long, env = "SEALED_SECRETS_SCOPE", default_value = "strict", value_parser = ScopeParser)]
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
    /// hush: with --re-encrypt, re-seal every SealedSecret file under DIR in place, through the
    /// controller (or offline with --recovery-private-key and --cert).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// hush: the summary of a --dir run: text (stderr) or json (one object on stdout).
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    output_format: crate::tree::SummaryFormat,
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

impl Args {
    /// How an input Secret is completed before sealing: `--scope`, `--name` and
    /// `--allow-empty-data`, in the namespace `-n` (or the kubeconfig context) gives.
    fn prepare<'a>(&'a self, namespace: &'a str, namespace_explicit: bool) -> sealing::Prepare<'a> {
        sealing::Prepare {
            scope: self.scope,
            override_name: self.name.as_deref(),
            override_namespace: None,
            namespace,
            namespace_explicit,
            allow_empty_data: self.allow_empty_data,
        }
    }
}

/// The `kubeseal` persona's command line (completion scripts and man pages).
pub(crate) fn persona_command() -> clap::Command {
    <KubesealCli as clap::CommandFactory>::command()
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

/// `--scope`: parsed as Go's `SealingScope.Set` (which also takes `""`), with the three scopes
/// named for help and completion scripts.
#[derive(Debug, Clone, Copy)]
struct ScopeParser;

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse().map_err(|e: hush_sealing::Error| e.to_string())
}

impl clap::builder::TypedValueParser for ScopeParser {
    type Value = Scope;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Scope, clap::Error> {
        clap::builder::TypedValueParser::parse_ref(&parse_scope, cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ["strict", "namespace-wide", "cluster-wide"]
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
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
