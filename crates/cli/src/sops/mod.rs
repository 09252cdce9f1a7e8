//! `hush sops` and the `sops` persona: sops' commands, flags and exit codes over hush-sops.
//!
//! Exit codes are sops' (`getsops/sops:cmd/sops/codes/codes.go`): 2 unreadable input,
//! 3 unwritable output, 24 MAC not decryptable, 25 a value not decryptable, 51 MAC mismatch,
//! 91 bad tree path, 92 empty file, 111 no encryption key, 128 data key not recoverable,
//! 200 file unchanged by `edit`, 201 no editor, 203 already encrypted.

mod config;
mod keys;

use std::ffi::OsString;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use clap::{Parser, Subcommand};
use hush_crypto::{DataKey, SystemEntropy};
use hush_sops::crypt::Rule;
use hush_sops::file::{self, EncryptOptions, Opened};
use hush_sops::stores::{self, Format};
use hush_sops::tree::{self, Item, Value};

use config::{Config, KeyRef};

/// The sops version whose behaviour hush follows (printed by `--version`).
const SOPS_VERSION: &str = hush_sops::metadata::WRITE_VERSION;

/// sops' exit codes.
mod codes {
    pub(super) const GENERIC: u8 = 1;
    pub(super) const COULD_NOT_READ_INPUT: u8 = 2;
    pub(super) const COULD_NOT_WRITE_OUTPUT: u8 = 3;
    pub(super) const ERROR_DECRYPTING_MAC: u8 = 24;
    pub(super) const ERROR_DECRYPTING_TREE: u8 = 25;
    pub(super) const MAC_MISMATCH: u8 = 51;
    pub(super) const INVALID_TREE_PATH: u8 = 91;
    pub(super) const NEED_AT_LEAST_ONE_DOCUMENT: u8 = 92;
    pub(super) const NO_ENCRYPTION_KEY: u8 = 111;
    pub(super) const COULD_NOT_RETRIEVE_KEY: u8 = 128;
    pub(super) const FILE_NOT_MODIFIED: u8 = 200;
    pub(super) const NO_EDITOR: u8 = 201;
    pub(super) const ALREADY_ENCRYPTED: u8 = 203;
}

/// An error with sops' exit code.
#[derive(Debug)]
struct Exit {
    code: u8,
    message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        message: message.into(),
    })
}

/// Maps an engine error on `file` to sops' exit code and a message naming the file.
fn engine(file: &Path, e: hush_sops::Error) -> anyhow::Error {
    use hush_sops::Error as E;
    let code = match &e {
        E::MacMismatch | E::NoMac => codes::MAC_MISMATCH,
        E::MacDecrypt => codes::ERROR_DECRYPTING_MAC,
        E::Decrypt { .. } | E::NotEncrypted { .. } => codes::ERROR_DECRYPTING_TREE,
        E::DataKey(_) => codes::COULD_NOT_RETRIEVE_KEY,
        E::Empty => codes::NEED_AT_LEAST_ONE_DOCUMENT,
        E::AlreadyEncrypted(_) => codes::ALREADY_ENCRYPTED,
        _ => codes::GENERIC,
    };
    let hint = match &e {
        E::MacMismatch => {
            "\nThe file was changed outside sops (or merged by git). Fix the change, or decrypt with --ignore-mac to inspect it."
        }
        E::Decrypt { .. } => {
            "\nThe value was changed or moved to another key; restore it from version control."
        }
        E::MetadataNotFound => "\nEncrypt it first with `sops encrypt`.",
        _ => "",
    };
    exit(code, format!("{}: {e}{hint}", file.display()))
}

/// Global options (sops accepts them before or after the command).
#[derive(Debug, Clone, Default, clap::Args)]
struct Opts {
    /// Input format: yaml, json, dotenv, ini, binary (default: from the file name).
    #[arg(long, global = true, value_name = "TYPE")]
    input_type: Option<String>,
    /// Output format (default: from the file name).
    #[arg(long, global = true, value_name = "TYPE")]
    output_type: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, global = true, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Write the result back to the input file.
    #[arg(short = 'i', long, global = true)]
    in_place: bool,
    /// Print only this value (`["key"][0]`), from the first document.
    #[arg(long, global = true, value_name = "PATH")]
    extract: Option<String>,
    /// Decrypt even when the MAC does not match.
    #[arg(long, global = true)]
    ignore_mac: bool,
    /// Use this name for format detection and creation rules (needed for standard input).
    #[arg(long, global = true, value_name = "NAME")]
    filename_override: Option<PathBuf>,
    /// Indentation of YAML/JSON output.
    #[arg(long, global = true, value_name = "N")]
    indent: Option<usize>,
    /// The .sops.yaml to use (default: SOPS_CONFIG, then .sops.yaml upwards from here).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Key types to try first when decrypting (default age,pgp).
    #[arg(
        long,
        global = true,
        env = "SOPS_DECRYPTION_ORDER",
        value_name = "TYPES"
    )]
    decryption_order: Option<String>,
    /// age recipients (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        short = 'a',
        long,
        global = true,
        env = "SOPS_AGE_RECIPIENTS",
        value_name = "RECIPIENTS"
    )]
    age: Vec<String>,
    /// PGP fingerprints (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        short = 'p',
        long,
        global = true,
        env = "SOPS_PGP_FP",
        value_name = "FPS"
    )]
    pgp: Vec<String>,
    /// AWS KMS ARNs (`arn[+role-arn]`, comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        short = 'k',
        long,
        global = true,
        env = "SOPS_KMS_ARN",
        value_name = "ARNS"
    )]
    kms: Vec<String>,
    /// Vault transit key URIs (`https://host/v1/<engine>/keys/<name>`, comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_VAULT_URIS",
        value_name = "URIS"
    )]
    hc_vault_transit: Vec<String>,
    /// GCP KMS resource ids (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_GCP_KMS_IDS",
        value_name = "IDS"
    )]
    gcp_kms: Vec<String>,
    /// Azure Key Vault key URLs (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_AZURE_KEYVAULT_URLS",
        value_name = "URLS"
    )]
    azure_kv: Vec<String>,
    /// AWS profile for KMS keys.
    #[arg(long, global = true, value_name = "NAME")]
    aws_profile: Option<String>,
    /// KMS encryption context `k1:v1,k2:v2`.
    #[arg(long, global = true, value_name = "CONTEXT")]
    encryption_context: Option<String>,
    /// Keys ending with this suffix stay in plaintext.
    #[arg(long, global = true)]
    unencrypted_suffix: Option<String>,
    /// Only keys ending with this suffix are encrypted.
    #[arg(long, global = true)]
    encrypted_suffix: Option<String>,
    /// Keys matching this regex stay in plaintext.
    #[arg(long, global = true)]
    unencrypted_regex: Option<String>,
    /// Only keys matching this regex are encrypted.
    #[arg(long, global = true)]
    encrypted_regex: Option<String>,
    /// Values after a comment matching this regex stay in plaintext.
    #[arg(long, global = true)]
    unencrypted_comment_regex: Option<String>,
    /// Only values after a comment matching this regex are encrypted.
    #[arg(long, global = true)]
    encrypted_comment_regex: Option<String>,
    /// The MAC covers only encrypted values.
    #[arg(long, global = true)]
    mac_only_encrypted: bool,
    /// Shares needed when there are several key groups.
    #[arg(long, global = true, value_name = "N")]
    shamir_secret_sharing_threshold: Option<usize>,
    /// Accepted for compatibility; hush never runs key services in another process.
    #[arg(long, global = true, env = "SOPS_ENABLE_LOCAL_KEYSERVICE")]
    enable_local_keyservice: bool,
    /// Accepted for compatibility; hush never checks for newer versions.
    #[arg(long, global = true, env = "SOPS_DISABLE_VERSION_CHECK")]
    disable_version_check: bool,
    /// Accepted for compatibility; hush never checks for newer versions.
    #[arg(long, global = true)]
    check_for_updates: bool,
    /// Verbose output.
    #[arg(long, global = true)]
    verbose: bool,
    /// edit: show the `sops` metadata (master keys) in the editor; key changes made there
    /// re-wrap the data key.
    #[arg(short = 's', long, global = true)]
    show_master_keys: bool,
    #[command(flatten)]
    rotate: RotateOpts,
}

#[derive(Debug, Clone, Default, clap::Args)]
struct RotateOpts {
    /// rotate: add these age recipients.
    #[arg(long, global = true)]
    add_age: Option<String>,
    /// rotate: remove these age recipients.
    #[arg(long, global = true)]
    rm_age: Option<String>,
    /// rotate: add these PGP fingerprints.
    #[arg(long, global = true)]
    add_pgp: Option<String>,
    /// rotate: remove these PGP fingerprints.
    #[arg(long, global = true)]
    rm_pgp: Option<String>,
    /// rotate: add these KMS ARNs.
    #[arg(long, global = true)]
    add_kms: Option<String>,
    /// rotate: remove these KMS ARNs.
    #[arg(long, global = true)]
    rm_kms: Option<String>,
    /// rotate: add these Vault transit URIs.
    #[arg(long, global = true)]
    add_hc_vault_transit: Option<String>,
    /// rotate: remove these Vault transit URIs.
    #[arg(long, global = true)]
    rm_hc_vault_transit: Option<String>,
}

/// `hush sops`: encrypt, decrypt and edit SOPS files (sops-compatible; persona `sops`).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Legacy: encrypt FILE.
    #[arg(short = 'e', long = "encrypt")]
    encrypt: bool,
    /// Legacy: decrypt FILE.
    #[arg(short = 'd', long = "decrypt")]
    decrypt: bool,
    /// Legacy: rotate FILE's data key.
    #[arg(short = 'r', long = "rotate")]
    rotate: bool,
    /// Print `sops <version>`.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(flatten)]
    opts: Opts,
    /// The file to edit (or to use with -e/-d/-r).
    file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Encrypt a file (standard input when FILE is omitted or `-`).
    Encrypt { file: Option<PathBuf> },
    /// Decrypt a file (standard input when FILE is omitted or `-`).
    Decrypt { file: Option<PathBuf> },
    /// Edit a file in $SOPS_EDITOR / $EDITOR.
    Edit { file: PathBuf },
    /// Generate a new data key and re-encrypt every value.
    Rotate {
        file: PathBuf,
        /// hush: FILE is a directory; rotate every sops file under it in place, in parallel.
        #[arg(long)]
        recursive: bool,
    },
    /// Re-wrap the data key for the keys of the matching creation rule.
    Updatekeys {
        files: Vec<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
        /// hush: the paths are directories; update every sops file under them, in parallel.
        #[arg(long)]
        recursive: bool,
    },
    /// Set the value at a tree path (`["key"]["sub"]`) to a JSON value.
    Set {
        file: PathBuf,
        path: String,
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long)]
        value_file: bool,
        /// Read the value from standard input.
        #[arg(long)]
        value_stdin: bool,
        /// Do not write the file when the value is unchanged.
        #[arg(long)]
        idempotent: bool,
    },
    /// Remove the value at a tree path.
    Unset {
        file: PathBuf,
        path: String,
        /// Do not fail when the path does not exist.
        #[arg(long)]
        idempotent: bool,
    },
    /// Run a command with the file's top-level values as environment variables.
    ExecEnv {
        file: PathBuf,
        command: String,
        /// Start from an empty environment.
        #[arg(long)]
        pristine: bool,
        /// Run the command as this user (looked up in /etc/passwd; needs the right to switch).
        #[arg(long)]
        user: Option<String>,
        /// Accepted for compatibility (hush always runs a child process).
        #[arg(long)]
        same_process: bool,
    },
    /// Run a command with the decrypted file at `{}`.
    ExecFile {
        file: PathBuf,
        command: String,
        /// Use a temporary file (hush always does; there is no FIFO).
        #[arg(long)]
        no_fifo: bool,
        /// File name of the temporary file.
        #[arg(long, default_value = "tmp-file")]
        filename: String,
        /// Accepted for compatibility; running as another user is refused.
        #[arg(long)]
        user: Option<String>,
    },
    /// Print whether a file is encrypted: `{"encrypted":true}`.
    Filestatus { file: PathBuf },
    /// Add or delete key groups (the data key is kept; values and MAC are unchanged).
    Groups {
        #[command(subcommand)]
        action: GroupsCmd,
    },
}

#[derive(Debug, Subcommand)]
enum GroupsCmd {
    /// Add a group of the keys given by --age, --pgp, --kms, --hc-vault-transit.
    Add {
        /// The encrypted file.
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// Delete the key group at INDEX (0-based).
    Delete {
        /// The encrypted file.
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Position of the group in `key_groups`.
        index: usize,
    },
}

/// The `sops` persona's argument parser.
#[derive(Debug, Parser)]
#[command(
    name = "sops",
    about = "sops (hush): encrypt, decrypt and edit SOPS files",
    disable_version_flag = true
)]
struct PersonaCli {
    #[command(flatten)]
    args: Args,
}

/// Runs the `sops` persona.
pub(crate) fn run_persona(argv: Vec<OsString>) -> ExitCode {
    let cli = PersonaCli::parse_from(argv);
    finish(run(cli.args))
}

/// Runs `hush sops` and turns errors into sops' exit codes.
pub(crate) fn run_command(args: Args) -> ExitCode {
    finish(run(args))
}

fn finish(r: Result<ExitCode>) -> ExitCode {
    match r {
        Ok(c) => c,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(codes::GENERIC, |x| x.code);
            eprintln!("{e:#}");
            ExitCode::from(code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(args: Args) -> Result<ExitCode> {
    if args.version {
        println!("sops {SOPS_VERSION} (hush {})", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let o = &args.opts;
    let need_file = |f: Option<PathBuf>| {
        f.ok_or_else(|| exit(100, "error: no file specified (usage: sops [command] FILE)"))
    };
    match args.command {
        Some(Cmd::Encrypt { file }) => encrypt(o, &stdin_or(file)),
        Some(Cmd::Decrypt { file }) => decrypt(o, &stdin_or(file)),
        Some(Cmd::Edit { file }) => edit(o, &file),
        Some(Cmd::Rotate {
            file,
            recursive: false,
        }) => rotate(o, &file),
        Some(Cmd::Rotate {
            file,
            recursive: true,
        }) => {
            let mut o = o.clone();
            o.in_place = true;
            o.output = None;
            recursive(&o, &[file], "rotated", |o, f| {
                rotate(o, f).map(|_| Outcome::Changed)
            })
        }
        Some(Cmd::Updatekeys {
            files,
            yes,
            recursive: false,
        }) => {
            for f in &files {
                updatekeys(o, f, yes, false)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Updatekeys {
            files,
            yes,
            recursive: true,
        }) => {
            if !yes {
                return Err(exit(
                    codes::GENERIC,
                    "updatekeys --recursive changes many files without asking: add -y",
                ));
            }
            recursive(o, &files, "updated", |o, f| updatekeys(o, f, true, true))
        }
        Some(Cmd::Set {
            file,
            path,
            value,
            value_file,
            value_stdin,
            idempotent,
        }) => set(o, &file, &path, value, value_file, value_stdin, idempotent),
        Some(Cmd::Unset {
            file,
            path,
            idempotent,
        }) => unset(o, &file, &path, idempotent),
        Some(Cmd::ExecEnv {
            file,
            command,
            pristine,
            user,
            same_process: _,
        }) => exec_env(o, &file, &command, pristine, user),
        Some(Cmd::ExecFile {
            file,
            command,
            no_fifo: _,
            filename,
            user,
        }) => exec_file(o, &file, &command, &filename, user),
        Some(Cmd::Filestatus { file }) => filestatus(o, &file),
        Some(Cmd::Groups {
            action: GroupsCmd::Add { file },
        }) => groups(o, &file, GroupChange::Add(flag_keys(o, true)?)),
        Some(Cmd::Groups {
            action: GroupsCmd::Delete { file, index },
        }) => groups(o, &file, GroupChange::Delete(index)),
        None if args.encrypt => encrypt(o, &need_file(args.file)?),
        None if args.decrypt => decrypt(o, &need_file(args.file)?),
        None if args.rotate => rotate(o, &need_file(args.file)?),
        None => edit(o, &need_file(args.file)?),
    }
}

fn stdin_or(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from("-"))
}

fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-" || file == Path::new("/dev/stdin")
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if is_stdin(file) {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| {
            exit(
                codes::COULD_NOT_READ_INPUT,
                format!("reading standard input: {e}"),
            )
        })?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| {
        exit(
            codes::COULD_NOT_READ_INPUT,
            format!("{}: cannot read the file: {e}", file.display()),
        )
    })
}

/// The name used for format detection and creation rules.
fn name_for<'a>(o: &'a Opts, file: &'a Path) -> &'a Path {
    o.filename_override.as_deref().unwrap_or(file)
}

fn formats(o: &Opts, file: &Path) -> Result<(Format, Format)> {
    let parse = |t: &Option<String>| -> Result<Option<Format>> {
        t.as_deref()
            .map(|n| {
                Format::parse(n).ok_or_else(|| {
                    anyhow!("unknown format {n:?}: use yaml, json, dotenv, ini, binary or toml")
                })
            })
            .transpose()
    };
    let detected = Format::from_path(name_for(o, file));
    let input = parse(&o.input_type)?.unwrap_or(detected);
    let output = parse(&o.output_type)?.unwrap_or(detected);
    Ok((input, output))
}

fn indent(o: &Opts, cfg: &Config, format: Format) -> Option<usize> {
    o.indent.or(match format {
        Format::Yaml => cfg.yaml_indent,
        Format::Json => cfg.json_indent,
        Format::Binary => cfg.json_binary_indent,
        Format::Dotenv | Format::Ini | Format::Toml => None,
    })
}

fn write_output(o: &Opts, file: &Path, bytes: &[u8]) -> Result<()> {
    let target = if let Some(out) = &o.output {
        Some(out.as_path())
    } else if o.in_place && !is_stdin(file) {
        Some(file)
    } else {
        None
    };
    match target {
        Some(path) => std::fs::write(path, bytes).map_err(|e| {
            exit(
                codes::COULD_NOT_WRITE_OUTPUT,
                format!("{}: cannot write the file: {e}", path.display()),
            )
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .map_err(|e| {
                    exit(
                        codes::COULD_NOT_WRITE_OUTPUT,
                        format!("writing standard output: {e}"),
                    )
                })
        }
    }
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The comma-separated entries of a key flag: of every occurrence when `repeat` (sops'
/// `groups add`), else of the last one (sops keeps only the last of a repeated flag).
fn split_all(values: &[String], repeat: bool) -> Vec<String> {
    let used = if repeat {
        values
    } else {
        &values[values.len().saturating_sub(1)..]
    };
    used.iter().flat_map(|v| split_list(Some(v))).collect()
}

fn kms_context(o: &Opts) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for pair in split_list(o.encryption_context.as_deref()) {
        let (k, v) = pair.split_once(':').ok_or_else(|| {
            exit(
                6,
                format!("invalid encryption context {pair:?}: expected key:value"),
            )
        })?;
        out.push((k.to_owned(), Value::Str(v.to_owned())));
    }
    Ok(out)
}

/// Keys named by flags, as one group; `repeat`: every occurrence of a repeated flag counts.
fn flag_keys(o: &Opts, repeat: bool) -> Result<Vec<KeyRef>> {
    let mut g = Vec::new();
    for a in split_all(&o.age, repeat) {
        g.push(KeyRef::age(&a));
    }
    for p in split_all(&o.pgp, repeat) {
        g.push(KeyRef::pgp(&p));
    }
    let ctx = kms_context(o)?;
    for k in split_all(&o.kms, repeat) {
        g.push(KeyRef::kms(
            &k,
            o.aws_profile.as_deref().unwrap_or(""),
            &ctx,
        ));
    }
    for u in split_all(&o.hc_vault_transit, repeat) {
        g.push(KeyRef::vault(&u));
    }
    for id in split_all(&o.gcp_kms, repeat) {
        g.push(KeyRef::other("gcp_kms", "resource_id", &id));
    }
    for u in split_all(&o.azure_kv, repeat) {
        g.push(KeyRef::azure(&u));
    }
    Ok(g)
}

fn flag_rule(o: &Opts) -> Result<Option<(String, String)>> {
    let all = [
        ("unencrypted_suffix", &o.unencrypted_suffix),
        ("encrypted_suffix", &o.encrypted_suffix),
        ("unencrypted_regex", &o.unencrypted_regex),
        ("encrypted_regex", &o.encrypted_regex),
        ("unencrypted_comment_regex", &o.unencrypted_comment_regex),
        ("encrypted_comment_regex", &o.encrypted_comment_regex),
    ];
    let set: Vec<(String, String)> = all
        .iter()
        .filter_map(|(f, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| ((*f).to_owned(), v.clone()))
        })
        .collect();
    if set.len() > 1 {
        return Err(exit(
            8,
            "error: cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file",
        ));
    }
    Ok(set.into_iter().next())
}

fn encrypt_options(o: &Opts, cfg: &Config, rules_path: &Path) -> Result<EncryptOptions> {
    let rule = cfg.rule_for(rules_path)?;
    let flags = flag_keys(o, false)?;
    let groups = if !flags.is_empty() {
        vec![flags]
    } else {
        rule.as_ref().map(|r| r.groups.clone()).unwrap_or_default()
    };
    if groups.iter().all(Vec::is_empty) {
        return Err(exit(
            codes::NO_ENCRYPTION_KEY,
            format!(
                "{}: no master keys: pass --age (or --pgp, --kms, --hc-vault-transit), set SOPS_AGE_RECIPIENTS, or add a creation rule for this path to .sops.yaml",
                rules_path.display()
            ),
        ));
    }
    let crypt = match flag_rule(o)? {
        Some(r) => Some(r),
        None => rule.as_ref().and_then(|r| r.crypt_rule.clone()),
    };
    let crypt = match crypt {
        Some((f, t)) => Rule::from_field(&f, &t)?,
        None => None,
    };
    Ok(EncryptOptions {
        rule: crypt,
        mac_only_encrypted: o.mac_only_encrypted
            || rule.as_ref().is_some_and(|r| r.mac_only_encrypted),
        shamir_threshold: o
            .shamir_secret_sharing_threshold
            .or(rule.as_ref().map(|r| r.shamir_threshold))
            .unwrap_or(0),
        groups: keys::specs(&groups)?,
    })
}

fn encrypt(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref())?;
    let (input_format, output_format) = formats(o, file)?;
    let input = read_input(file)?;
    let opts = encrypt_options(o, &cfg, name_for(o, file))?;
    let out = runtime()?
        .block_on(file::encrypt(
            &input,
            input_format,
            output_format,
            opts,
            indent(o, &cfg, output_format),
            &mut SystemEntropy,
        ))
        .map_err(|e| engine(file, e))?;
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}

fn open(o: &Opts, file: &Path, format: Format, ignore_mac: bool) -> Result<Opened> {
    let input = read_input(file)?;
    let (branches, metadata) =
        stores::load_encrypted(format, &input).map_err(|e| engine(file, e))?;
    let registry = keys::registry_for(&metadata);
    let order = keys::order(o.decryption_order.as_deref());
    let key = runtime()?
        .block_on(hush_sops::keys::unwrap_data_key(
            &metadata, &registry, &order,
        ))
        .map_err(|e| engine(file, e))?;
    file::open_with_key(branches, metadata, key, ignore_mac).map_err(|e| engine(file, e))
}

fn decrypt(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (input_format, output_format) = formats(o, file)?;
    let opened = open(o, file, input_format, o.ignore_mac)?;
    let indent = indent(o, &cfg, output_format);
    let out = match &o.extract {
        Some(path) => {
            let steps = tree::parse_index_path(path).ok_or_else(|| {
                exit(
                    codes::INVALID_TREE_PATH,
                    format!("invalid tree path {path:?}: use the form [\"key\"][0]"),
                )
            })?;
            let first = opened.branches.first().map(Vec::as_slice).unwrap_or(&[]);
            let v = tree::get(first, &steps).ok_or_else(|| {
                exit(
                    codes::GENERIC,
                    format!(
                        "{}: the path {path} does not exist in the file",
                        file.display()
                    ),
                )
            })?;
            match v {
                // sops' quirk: an extracted map replaces the first document; the others stay.
                Value::Map(m) => {
                    let mut branches = opened.branches.clone();
                    branches[0] = m.clone();
                    stores::emit_plain(output_format, &branches, indent)
                        .map_err(|e| engine(file, e))?
                }
                v => stores::emit_value(output_format, v, indent).map_err(|e| engine(file, e))?,
            }
        }
        None => stores::emit_plain(output_format, &opened.branches, indent)
            .map_err(|e| engine(file, e))?,
    };
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}

fn editor_command() -> Result<Vec<String>> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        if let Ok(e) = std::env::var(var)
            && !e.trim().is_empty()
        {
            return Ok(e.split_whitespace().map(str::to_owned).collect());
        }
    }
    for candidate in ["vim", "nano", "vi"] {
        if let Some(path) = std::env::var_os("PATH")
            && std::env::split_paths(&path).any(|d| d.join(candidate).is_file())
        {
            return Ok(vec![candidate.to_owned()]);
        }
    }
    Err(exit(
        codes::NO_EDITOR,
        "no editor found: set SOPS_EDITOR or EDITOR",
    ))
}

/// Writes `plain` to a private temporary file, runs the editor on it, returns the new bytes.
fn run_editor(file: &Path, plain: &[u8]) -> Result<Vec<u8>> {
    let dir = tempfile::Builder::new()
        .prefix("hush-sops-edit")
        .tempdir()
        .context("creating a temporary directory")?;
    let name = file
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "tmp-file".into());
    let path = dir.path().join(name);
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .context("creating the temporary file")?;
        f.write_all(plain).context("writing the temporary file")?;
    }
    let cmd = editor_command()?;
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg(&path)
        .status()
        .map_err(|e| {
            exit(
                codes::NO_EDITOR,
                format!("could not run the editor {:?}: {e}", cmd[0]),
            )
        })?;
    if !status.success() {
        return Err(exit(
            codes::GENERIC,
            format!("the editor exited with {status}"),
        ));
    }
    std::fs::read(&path).context("reading the edited file")
}

fn edit(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref())?;
    let (format, _) = formats(o, file)?;
    let indent = indent(o, &cfg, format);
    if !file.exists() {
        // A new file: start from an empty document of the format and encrypt the result.
        let example: &[u8] = match format {
            Format::Yaml => b"hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n",
            Format::Json => b"{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\"\n}\n",
            Format::Dotenv => b"hello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\n",
            Format::Ini => b"[Welcome!]\nhello = Welcome to SOPS! Edit this file as you please!\n",
            Format::Binary => b"Welcome to SOPS! Edit this file as you please!\n",
            Format::Toml => b"hello = \"Welcome to SOPS! Edit this file as you please!\"\nexample_key = \"example_value\"\n",
        };
        let edited = run_editor(file, example)?;
        let opts = encrypt_options(o, &cfg, name_for(o, file))?;
        let out = runtime()?
            .block_on(file::encrypt(
                &edited,
                format,
                format,
                opts,
                indent,
                &mut SystemEntropy,
            ))
            .map_err(|e| engine(file, e))?;
        std::fs::write(file, out).map_err(|e| {
            exit(
                codes::COULD_NOT_WRITE_OUTPUT,
                format!("{}: {e}", file.display()),
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut opened = open(o, file, format, o.ignore_mac)?;
    let plain = if o.show_master_keys {
        // The decrypted documents with the `sops` metadata block, as sops -s shows them.
        stores::emit_encrypted(format, &opened.branches, &opened.metadata, indent)
    } else {
        stores::emit_plain(format, &opened.branches, indent)
    }
    .map_err(|e| engine(file, e))?;
    let edited = run_editor(file, &plain)?;
    if edited == plain {
        return Err(exit(
            codes::FILE_NOT_MODIFIED,
            "File has not changed, exiting.",
        ));
    }
    let invalid = |e| engine(file, e).context("the edited file is not valid; nothing was written");
    let branches = if o.show_master_keys {
        let (branches, shown) = stores::load_encrypted(format, &edited).map_err(invalid)?;
        let groups = key_refs(&shown);
        if groups != key_refs(&opened.metadata)
            || shown.shamir_threshold != opened.metadata.shamir_threshold
        {
            // Master keys edited: wrap the same data key for the new groups.
            opened.metadata.shamir_threshold = shown.shamir_threshold;
            let specs = keys::specs(&groups)?;
            runtime()?
                .block_on(hush_sops::keys::wrap_data_key(
                    &mut opened.metadata,
                    &opened.key,
                    &specs,
                    &mut SystemEntropy,
                ))
                .map_err(|e| engine(file, e))?;
        }
        branches
    } else {
        stores::load_plain(format, &edited).map_err(invalid)?
    };
    if let Some(k) = stores::has_metadata(format, &branches) {
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: the edited file contains the reserved key `{k}`; nothing was written",
                file.display()
            ),
        ));
    }
    opened.branches = branches;
    let out = opened
        .seal(format, indent, &mut SystemEntropy)
        .map_err(|e| engine(file, e))?;
    std::fs::write(file, out).map_err(|e| {
        exit(
            codes::COULD_NOT_WRITE_OUTPUT,
            format!("{}: {e}", file.display()),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn rotate(o: &Opts, file: &Path) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, output_format) = formats(o, file)?;
    let opened = open(o, file, format, o.ignore_mac)?;
    let Opened {
        mut branches,
        mut metadata,
        ..
    } = opened;
    let r = &o.rotate;
    // Existing keys, minus removed ones, plus added ones (to the first group).
    let removed: Vec<String> = [&r.rm_age, &r.rm_pgp, &r.rm_kms, &r.rm_hc_vault_transit]
        .iter()
        .flat_map(|v| split_list(v.as_deref()))
        .collect();
    let mut groups: Vec<Vec<KeyRef>> = key_refs(&metadata)
        .into_iter()
        .map(|g| {
            g.into_iter()
                .filter(|k| {
                    !removed.iter().any(|rm| {
                        rm.split('+').next() == Some(k.key_id().as_str()) || *rm == k.key_id()
                    })
                })
                .collect()
        })
        .collect();
    let mut added = Vec::new();
    added.extend(
        split_list(r.add_age.as_deref())
            .iter()
            .map(|a| KeyRef::age(a)),
    );
    added.extend(
        split_list(r.add_pgp.as_deref())
            .iter()
            .map(|p| KeyRef::pgp(p)),
    );
    added.extend(
        split_list(r.add_kms.as_deref())
            .iter()
            .map(|k| KeyRef::kms(k, o.aws_profile.as_deref().unwrap_or(""), &[])),
    );
    added.extend(
        split_list(r.add_hc_vault_transit.as_deref())
            .iter()
            .map(|u| KeyRef::vault(u)),
    );
    if let Some(first) = groups.first_mut() {
        for k in added {
            if !first.contains(&k) {
                first.push(k);
            }
        }
    }
    let specs = keys::specs(&groups)?;
    let mut rng = SystemEntropy;
    let key = DataKey::generate(&mut rng)?;
    runtime()?
        .block_on(hush_sops::keys::wrap_data_key(
            &mut metadata,
            &key,
            &specs,
            &mut rng,
        ))
        .map_err(|e| engine(file, e))?;
    if output_format == Format::Toml {
        branches.iter_mut().for_each(stores::toml::normalize);
    }
    hush_sops::file::seal_branches(&mut branches, &mut metadata, &key, &mut rng, None)
        .map_err(|e| engine(file, e))?;
    let out = stores::emit_encrypted(
        output_format,
        &branches,
        &metadata,
        indent(o, &cfg, output_format),
    )
    .map_err(|e| engine(file, e))?;
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// What `updatekeys`/`rotate` did to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Changed,
    Unchanged,
}

fn updatekeys(o: &Opts, file: &Path, yes: bool, quiet: bool) -> Result<Outcome> {
    let cfg = config::find(o.config.as_deref())?;
    if cfg.path.is_none() {
        return Err(exit(
            61,
            "config file not found: updatekeys needs a .sops.yaml (or --config)",
        ));
    }
    let (format, _) = formats(o, file)?;
    let rule = cfg.rule_for(name_for(o, file))?.ok_or_else(|| {
        exit(
            codes::GENERIC,
            format!(
                "{}: no creation rule in .sops.yaml matches this file",
                file.display()
            ),
        )
    })?;
    let input = read_input(file)?;
    let (branches, mut metadata) =
        stores::load_encrypted(format, &input).map_err(|e| engine(file, e))?;
    let old: Vec<String> = metadata
        .key_groups
        .iter()
        .flatten()
        .map(|k| format!("{} {}", k.type_id, k.key_id()))
        .collect();
    let new: Vec<String> = rule
        .groups
        .iter()
        .flatten()
        .map(|k| format!("{} {}", k.type_id, k.key_id()))
        .collect();
    let same_threshold = rule.shamir_threshold == metadata.shamir_threshold
        || (rule.groups.len() <= 1 && metadata.key_groups.len() <= 1);
    if old == new && rule.groups.len() == metadata.key_groups.len() && same_threshold {
        if !quiet {
            eprintln!("{}: already up to date", file.display());
        }
        return Ok(Outcome::Unchanged);
    }
    if !quiet {
        eprintln!("The following changes will be made to the file's groups:");
        for k in &new {
            if !old.contains(k) {
                eprintln!("+++ {k}");
            }
        }
        for k in &old {
            if !new.contains(k) {
                eprintln!("--- {k}");
            }
        }
    }
    if !yes {
        eprint!("Is this okay? (y/n):");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            eprintln!("Changes not applied to {}", file.display());
            return Ok(Outcome::Unchanged);
        }
    }
    let registry = keys::registry_for(&metadata);
    let order = keys::order(o.decryption_order.as_deref());
    let rt = runtime()?;
    let key = rt
        .block_on(hush_sops::keys::unwrap_data_key(
            &metadata, &registry, &order,
        ))
        .map_err(|e| engine(file, e))?;
    metadata.shamir_threshold = if rule.groups.len() > 1 {
        rule.shamir_threshold
    } else {
        0
    };
    let specs = keys::specs(&rule.groups)?;
    rt.block_on(hush_sops::keys::wrap_data_key(
        &mut metadata,
        &key,
        &specs,
        &mut SystemEntropy,
    ))
    .map_err(|e| engine(file, e))?;
    let out = stores::emit_encrypted(format, &branches, &metadata, indent(o, &cfg, format))
        .map_err(|e| engine(file, e))?;
    std::fs::write(file, out).map_err(|e| {
        exit(
            codes::COULD_NOT_WRITE_OUTPUT,
            format!("{}: {e}", file.display()),
        )
    })?;
    if !quiet {
        eprintln!("File {} synced with new keys", file.display());
    }
    Ok(Outcome::Changed)
}

/// The master keys of `metadata` as key references (without their wrapped data key).
fn key_refs(metadata: &hush_sops::metadata::Metadata) -> Vec<Vec<KeyRef>> {
    metadata
        .key_groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|k| KeyRef {
                    type_id: k.type_id.clone(),
                    fields: k
                        .fields
                        .iter()
                        .filter(|(n, _)| n != "enc" && n != "created_at")
                        .cloned()
                        .collect(),
                })
                .collect()
        })
        .collect()
}

/// What `groups add` / `groups delete` does.
enum GroupChange {
    Add(Vec<KeyRef>),
    Delete(usize),
}

/// `groups add|delete`: changes the key groups and re-wraps the same data key for all of them
/// (values, MAC and `lastmodified` unchanged); stdout unless `-i`.
fn groups(o: &Opts, file: &Path, change: GroupChange) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, _) = formats(o, file)?;
    let input = read_input(file)?;
    let (branches, mut metadata) =
        stores::load_encrypted(format, &input).map_err(|e| engine(file, e))?;
    // The data key comes from the groups as they are, before the change.
    let registry = keys::registry_for(&metadata);
    let order = keys::order(o.decryption_order.as_deref());
    let rt = runtime()?;
    let key = rt
        .block_on(hush_sops::keys::unwrap_data_key(
            &metadata, &registry, &order,
        ))
        .map_err(|e| engine(file, e))?;
    let mut groups = key_refs(&metadata);
    match change {
        GroupChange::Add(keys) => {
            if keys.is_empty() {
                // sops adds an empty group, which no identity can ever open.
                return Err(exit(
                    codes::GENERIC,
                    "groups add: no keys given; pass the new group's keys with --age, --pgp, --kms or --hc-vault-transit",
                ));
            }
            groups.push(keys);
        }
        GroupChange::Delete(index) => {
            if index >= groups.len() {
                return Err(exit(
                    codes::GENERIC,
                    format!(
                        "{}: there is no key group {index}; the file has {} (numbered from 0)",
                        file.display(),
                        groups.len()
                    ),
                ));
            }
            if groups.len() == 1 {
                return Err(exit(
                    codes::GENERIC,
                    format!(
                        "{}: cannot delete the only key group; add another group first",
                        file.display()
                    ),
                ));
            }
            groups.remove(index);
        }
    }
    if let Some(t) = o.shamir_secret_sharing_threshold.filter(|t| *t != 0) {
        metadata.shamir_threshold = t;
    }
    if metadata.shamir_threshold > groups.len() {
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: the Shamir threshold is {}, but there would be only {} key groups; lower it with --shamir-secret-sharing-threshold",
                file.display(),
                metadata.shamir_threshold,
                groups.len()
            ),
        ));
    }
    if metadata.shamir_threshold == 1 && groups.len() > 1 {
        // sops writes such a file, but neither sops nor hush can combine a single share.
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: a Shamir threshold of 1 over {} key groups cannot be opened (at least two shares are combined); use 2 or more, or put the keys into one group",
                file.display(),
                groups.len()
            ),
        ));
    }
    let specs = keys::specs(&groups)?;
    rt.block_on(hush_sops::keys::wrap_data_key(
        &mut metadata,
        &key,
        &specs,
        &mut SystemEntropy,
    ))
    .map_err(|e| engine(file, e))?;
    let out = stores::emit_encrypted(format, &branches, &metadata, indent(o, &cfg, format))
        .map_err(|e| engine(file, e))?;
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// Every sops file under `roots` (hidden directories skipped), sorted.
fn sops_files(o: &Opts, roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p)
            .map_err(|e| exit(codes::COULD_NOT_READ_INPUT, format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)
                .map_err(|e| exit(codes::COULD_NOT_READ_INPUT, format!("{}: {e}", p.display())))?
            {
                let entry = entry.context("reading a directory entry")?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                let path = entry.path();
                if path.is_dir() && hidden {
                    continue;
                }
                stack.push(path);
            }
        } else if meta.is_file() {
            let (format, _) = formats(o, &p)?;
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            match stores::load_encrypted(format, &bytes) {
                Err(hush_sops::Error::MetadataNotFound)
                | Err(hush_sops::Error::Empty)
                | Err(hush_sops::Error::Parse { .. }) => {}
                // Encrypted files, and ones with sops metadata that fail later (conflicts, bad
                // metadata), are processed so the summary reports them.
                _ => out.push(p),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `op` on every sops file under `roots` in parallel; progress on stderr when it is a
/// terminal; one summary; exit 1 when any file failed.
fn recursive(
    o: &Opts,
    roots: &[PathBuf],
    verb: &str,
    op: impl Fn(&Opts, &Path) -> Result<Outcome> + Sync,
) -> Result<ExitCode> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let files = sops_files(o, roots)?;
    let total = files.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(PathBuf, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    let tty = std::io::stderr().is_terminal();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(f) = files.get(i) else { break };
                    let r = op(o, f).map_err(|e| format!("{e:#}"));
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if tty {
                        eprint!("\r[{n}/{total}] {}\x1b[K", f.display());
                    }
                    if let Ok(mut v) = results.lock() {
                        v.push((f.clone(), r));
                    }
                }
            });
        }
    });
    if tty && total > 0 {
        eprintln!();
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let changed = results
        .iter()
        .filter(|r| matches!(r.1, Ok(Outcome::Changed)))
        .count();
    let unchanged = results
        .iter()
        .filter(|r| matches!(r.1, Ok(Outcome::Unchanged)))
        .count();
    let failed: Vec<&(PathBuf, Result<Outcome, String>)> =
        results.iter().filter(|r| r.1.is_err()).collect();
    for (f, r) in &failed {
        if let Err(e) = r {
            eprintln!("FAILED {}: {e}", f.display());
        }
    }
    eprintln!(
        "{total} sops files: {changed} {verb}, {unchanged} unchanged, {} failed",
        failed.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(codes::GENERIC)
    })
}

#[allow(clippy::too_many_arguments)]
fn set(
    o: &Opts,
    file: &Path,
    path: &str,
    value: Option<String>,
    value_file: bool,
    value_stdin: bool,
    idempotent: bool,
) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, _) = formats(o, file)?;
    let steps = tree::parse_index_path(path).ok_or_else(|| {
        exit(
            codes::INVALID_TREE_PATH,
            format!("invalid tree path {path:?}: use the form [\"key\"][0]"),
        )
    })?;
    let raw: Vec<u8> = if value_stdin {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading the value from standard input")?;
        b
    } else if value_file {
        let p = value.ok_or_else(|| exit(7, "--value-file needs a file name"))?;
        std::fs::read(&p).with_context(|| format!("reading the value file {p}"))?
    } else {
        value
            .ok_or_else(|| exit(7, "missing value: sops set FILE PATH VALUE"))?
            .into_bytes()
    };
    let v = stores::json::parse_value(&raw).map_err(|e| {
        exit(
            7,
            format!("the value is not valid JSON (strings need quotes: '\"text\"'): {e}"),
        )
    })?;
    let mut opened = open(o, file, format, o.ignore_mac)?;
    let Some(first) = opened.branches.first_mut() else {
        return Err(exit(
            codes::NEED_AT_LEAST_ONE_DOCUMENT,
            "the file has no document",
        ));
    };
    let changed = tree::set(first, &steps, v).map_err(|m| exit(codes::INVALID_TREE_PATH, m))?;
    if !changed && idempotent {
        return Ok(ExitCode::SUCCESS);
    }
    let out = opened
        .seal(format, indent(o, &cfg, format), &mut SystemEntropy)
        .map_err(|e| engine(file, e))?;
    std::fs::write(file, out).map_err(|e| {
        exit(
            codes::COULD_NOT_WRITE_OUTPUT,
            format!("{}: {e}", file.display()),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn unset(o: &Opts, file: &Path, path: &str, idempotent: bool) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, _) = formats(o, file)?;
    let steps = tree::parse_index_path(path).ok_or_else(|| {
        exit(
            codes::INVALID_TREE_PATH,
            format!("invalid tree path {path:?}: use the form [\"key\"][0]"),
        )
    })?;
    let mut opened = open(o, file, format, o.ignore_mac)?;
    let removed = opened
        .branches
        .first_mut()
        .is_some_and(|b| tree::unset(b, &steps));
    if !removed {
        if idempotent {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(exit(
            codes::GENERIC,
            format!(
                "{}: the path {path} does not exist in the file",
                file.display()
            ),
        ));
    }
    let out = opened
        .seal(format, indent(o, &cfg, format), &mut SystemEntropy)
        .map_err(|e| engine(file, e))?;
    std::fs::write(file, out).map_err(|e| {
        exit(
            codes::COULD_NOT_WRITE_OUTPUT,
            format!("{}: {e}", file.display()),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn refuse_user(user: Option<String>) -> Result<()> {
    match user {
        Some(u) => Err(exit(
            codes::GENERIC,
            format!("--user {u}: hush does not switch users; run the command as that user instead"),
        )),
        None => Ok(()),
    }
}

fn child_code(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().map_or(1, |c| (c & 0xff) as u8))
}

/// A user's ids from an `/etc/passwd`-format text (`name:password:uid:gid:…`).
fn passwd_ids(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// Looks `user` up in /etc/passwd, as sops' `--user` does (names only).
fn lookup_user(user: &str) -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| {
        exit(
            codes::GENERIC,
            format!("--user {user}: reading /etc/passwd: {e}"),
        )
    })?;
    passwd_ids(&passwd, user).ok_or_else(|| {
        exit(
            codes::GENERIC,
            format!("--user {user}: unknown user (no entry in /etc/passwd)"),
        )
    })
}

fn exec_env(
    o: &Opts,
    file: &Path,
    command: &str,
    pristine: bool,
    user: Option<String>,
) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt as _;
    // Looked up before decrypting, so a typo costs no key access.
    let ids = user.as_deref().map(lookup_user).transpose()?;
    let (format, _) = formats(o, file)?;
    let opened = open(o, file, format, o.ignore_mac)?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    if let Some((uid, gid)) = ids {
        // std drops the supplementary groups when it switches away from root.
        cmd.uid(uid).gid(gid);
    }
    if pristine {
        cmd.env_clear();
    }
    for item in opened.branches.first().map(Vec::as_slice).unwrap_or(&[]) {
        if let Item::Entry(k, v) = item
            && v.is_leaf()
            && let Some(s) = v.to_flat_string()
        {
            let s = match v {
                Value::Bool(b) => b.to_string(),
                _ => s,
            };
            cmd.env(k, s);
        }
    }
    let status = cmd.status().with_context(|| match &user {
        Some(u) => format!("running the command as user {u}"),
        None => "running the command".to_owned(),
    })?;
    Ok(child_code(status))
}

fn exec_file(
    o: &Opts,
    file: &Path,
    command: &str,
    filename: &str,
    user: Option<String>,
) -> Result<ExitCode> {
    refuse_user(user)?;
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, output_format) = formats(o, file)?;
    let opened = open(o, file, format, o.ignore_mac)?;
    let plain = stores::emit_plain(
        output_format,
        &opened.branches,
        indent(o, &cfg, output_format),
    )
    .map_err(|e| engine(file, e))?;
    let dir = tempfile::Builder::new()
        .prefix("hush-sops-exec")
        .tempdir()
        .context("creating a temporary directory")?;
    let name = Path::new(filename)
        .file_name()
        .ok_or_else(|| exit(codes::GENERIC, "--filename must be a file name"))?;
    let path = dir.path().join(name);
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .context("creating the temporary file")?;
        f.write_all(&plain).context("writing the temporary file")?;
    }
    let cmdline = command.replace("{}", &path.to_string_lossy());
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmdline)
        .status()
        .context("running the command")?;
    Ok(child_code(status))
}

fn filestatus(o: &Opts, file: &Path) -> Result<ExitCode> {
    let (format, _) = formats(o, file)?;
    let input = read_input(file)?;
    let encrypted = match stores::load_encrypted(format, &input) {
        Ok(_) => true,
        Err(hush_sops::Error::MetadataNotFound) => false,
        Err(e) => return Err(engine(file, e)),
    };
    println!("{{\"encrypted\":{encrypted}}}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup_reads_uid_and_gid_by_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbad:x:notanumber:1::/:/bin/sh\n";
        assert_eq!(passwd_ids(passwd, "nobody"), Some((65534, 65534)));
        assert_eq!(passwd_ids(passwd, "root"), Some((0, 0)));
        assert_eq!(passwd_ids(passwd, "nob"), None);
        assert_eq!(passwd_ids(passwd, "bad"), None);
        assert_eq!(passwd_ids(passwd, "missing"), None);
    }
}
