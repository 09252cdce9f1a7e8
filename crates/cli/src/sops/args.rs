//! The command line of `hush sops` and the `sops` persona: global options (sops accepts them
//! before or after the command), commands and their flags.

use std::path::PathBuf;

use clap::Subcommand;

/// Global options (sops accepts them before or after the command).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct Opts {
    /// Input format: yaml, json, dotenv, ini, binary (default: from the file name).
    #[arg(long, global = true, value_name = "TYPE")]
    pub(super) input_type: Option<String>,
    /// Output format (default: from the file name).
    #[arg(long, global = true, value_name = "TYPE")]
    pub(super) output_type: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, global = true, value_name = "PATH")]
    pub(super) output: Option<PathBuf>,
    /// Write the result back to the input file.
    #[arg(short = 'i', long, global = true)]
    pub(super) in_place: bool,
    /// Print only this value (`["key"][0]`), from the first document.
    #[arg(long, global = true, value_name = "PATH")]
    pub(super) extract: Option<String>,
    /// Decrypt even when the MAC does not match.
    #[arg(long, global = true)]
    pub(super) ignore_mac: bool,
    /// Use this name for format detection and creation rules (needed for standard input).
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) filename_override: Option<PathBuf>,
    /// Indentation of YAML/JSON output.
    #[arg(long, global = true, value_name = "N")]
    pub(super) indent: Option<usize>,
    /// The .sops.yaml to use (default: SOPS_CONFIG, then .sops.yaml upwards from here).
    #[arg(long, global = true, value_name = "PATH")]
    pub(super) config: Option<PathBuf>,
    /// Key types to try first when decrypting (default age,pgp).
    #[arg(
        long,
        global = true,
        env = "SOPS_DECRYPTION_ORDER",
        value_name = "TYPES"
    )]
    pub(super) decryption_order: Option<String>,
    /// age recipients (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        short = 'a',
        long,
        global = true,
        env = "SOPS_AGE_RECIPIENTS",
        value_name = "RECIPIENTS"
    )]
    pub(super) age: Vec<String>,
    /// PGP fingerprints (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        short = 'p',
        long,
        global = true,
        env = "SOPS_PGP_FP",
        value_name = "FPS"
    )]
    pub(super) pgp: Vec<String>,
    /// AWS KMS ARNs (`arn[+role-arn]`, comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        short = 'k',
        long,
        global = true,
        env = "SOPS_KMS_ARN",
        value_name = "ARNS"
    )]
    pub(super) kms: Vec<String>,
    /// Vault transit key URIs (`https://host/v1/<engine>/keys/<name>`, comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_VAULT_URIS",
        value_name = "URIS"
    )]
    pub(super) hc_vault_transit: Vec<String>,
    /// GCP KMS resource ids (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_GCP_KMS_IDS",
        value_name = "IDS"
    )]
    pub(super) gcp_kms: Vec<String>,
    /// Azure Key Vault key URLs (comma-separated; the last one counts, all in `groups add`).
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_AZURE_KEYVAULT_URLS",
        value_name = "URLS"
    )]
    pub(super) azure_kv: Vec<String>,
    /// HuaweiCloud KMS key IDs (`region:key-uuid`, comma-separated; the last one counts, all in
    /// `groups add`); hush has no HuaweiCloud client: usable only through --keyservice.
    #[arg(
        action = clap::ArgAction::Append,
        long,
        global = true,
        env = "SOPS_HUAWEICLOUD_KMS_IDS",
        value_name = "IDS"
    )]
    pub(super) hckms: Vec<String>,
    /// AWS profile for KMS keys.
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) aws_profile: Option<String>,
    /// KMS encryption context `k1:v1,k2:v2`.
    #[arg(long, global = true, value_name = "CONTEXT")]
    pub(super) encryption_context: Option<String>,
    /// Keys ending with this suffix stay in plaintext.
    #[arg(long, global = true)]
    pub(super) unencrypted_suffix: Option<String>,
    /// Only keys ending with this suffix are encrypted.
    #[arg(long, global = true)]
    pub(super) encrypted_suffix: Option<String>,
    /// Keys matching this regex stay in plaintext.
    #[arg(long, global = true)]
    pub(super) unencrypted_regex: Option<String>,
    /// Only keys matching this regex are encrypted.
    #[arg(long, global = true)]
    pub(super) encrypted_regex: Option<String>,
    /// Values after a comment matching this regex stay in plaintext.
    #[arg(long, global = true)]
    pub(super) unencrypted_comment_regex: Option<String>,
    /// Only values after a comment matching this regex are encrypted.
    #[arg(long, global = true)]
    pub(super) encrypted_comment_regex: Option<String>,
    /// The MAC covers only encrypted values.
    #[arg(long, global = true)]
    pub(super) mac_only_encrypted: bool,
    /// Shares needed when there are several key groups.
    #[arg(long, global = true, value_name = "N")]
    pub(super) shamir_secret_sharing_threshold: Option<usize>,
    /// Use this machine's keys (default true); `--enable-local-keyservice=false` leaves only
    /// the --keyservice services.
    #[arg(long, global = true, env = "SOPS_ENABLE_LOCAL_KEYSERVICE", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "true",
          value_parser = crate::seal::go_bool)]
    pub(super) enable_local_keyservice: bool,
    /// Key services to use in addition to the local one (repeatable): tcp://HOST:PORT or
    /// unix:///path (a `sops keyservice` or `hush sops keyservice`).
    #[arg(
        long,
        global = true,
        env = "SOPS_KEYSERVICE",
        value_delimiter = ',',
        value_name = "URI"
    )]
    pub(super) keyservice: Vec<String>,
    /// Accepted for compatibility; hush never checks for newer versions
    /// (`SOPS_DISABLE_VERSION_CHECK` takes Go booleans: 1, t, true and so on).
    #[arg(long, global = true, env = "SOPS_DISABLE_VERSION_CHECK",
          action = clap::ArgAction::SetTrue, value_parser = crate::seal::go_bool)]
    pub(super) disable_version_check: bool,
    /// Accepted for compatibility; hush never checks for newer versions.
    #[arg(long, global = true)]
    pub(super) check_for_updates: bool,
    /// Verbose output.
    #[arg(long, global = true)]
    pub(super) verbose: bool,
    /// edit: show the `sops` metadata (master keys) in the editor; key changes made there
    /// re-wrap the data key.
    #[arg(short = 's', long, global = true)]
    pub(super) show_master_keys: bool,
    #[command(flatten)]
    pub(super) rotate: RotateOpts,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct RotateOpts {
    /// rotate: add these age recipients.
    #[arg(long, global = true)]
    pub(super) add_age: Option<String>,
    /// rotate: remove these age recipients.
    #[arg(long, global = true)]
    pub(super) rm_age: Option<String>,
    /// rotate: add these PGP fingerprints.
    #[arg(long, global = true)]
    pub(super) add_pgp: Option<String>,
    /// rotate: remove these PGP fingerprints.
    #[arg(long, global = true)]
    pub(super) rm_pgp: Option<String>,
    /// rotate: add these KMS ARNs.
    #[arg(long, global = true)]
    pub(super) add_kms: Option<String>,
    /// rotate: remove these KMS ARNs.
    #[arg(long, global = true)]
    pub(super) rm_kms: Option<String>,
    /// rotate: add these Vault transit URIs.
    #[arg(long, global = true)]
    pub(super) add_hc_vault_transit: Option<String>,
    /// rotate: remove these Vault transit URIs.
    #[arg(long, global = true)]
    pub(super) rm_hc_vault_transit: Option<String>,
    /// rotate: add these GCP KMS resource IDs.
    #[arg(long, global = true)]
    pub(super) add_gcp_kms: Option<String>,
    /// rotate: remove these GCP KMS resource IDs.
    #[arg(long, global = true)]
    pub(super) rm_gcp_kms: Option<String>,
    /// rotate: add these Azure Key Vault key URLs.
    #[arg(long, global = true)]
    pub(super) add_azure_kv: Option<String>,
    /// rotate: remove these Azure Key Vault key URLs.
    #[arg(long, global = true)]
    pub(super) rm_azure_kv: Option<String>,
    /// rotate: add these HuaweiCloud KMS key IDs (`region:key-uuid`; only through --keyservice).
    #[arg(long, global = true)]
    pub(super) add_hckms: Option<String>,
    /// rotate: remove these HuaweiCloud KMS key IDs (`region:key-uuid`).
    #[arg(long, global = true)]
    pub(super) rm_hckms: Option<String>,
}

impl Opts {
    /// The values of a key kind's flag, by its name in `hush_keys::KINDS` (`age`,
    /// `hc-vault-transit`); empty for a kind without a flag here.
    pub(super) fn key_flag(&self, flag: &str) -> &[String] {
        match flag {
            "age" => &self.age,
            "pgp" => &self.pgp,
            "kms" => &self.kms,
            "hc-vault-transit" => &self.hc_vault_transit,
            "gcp-kms" => &self.gcp_kms,
            "azure-kv" => &self.azure_kv,
            "hckms" => &self.hckms,
            _ => &[],
        }
    }
}

impl RotateOpts {
    /// `--add-<flag>` and `--rm-<flag>` of a key kind (`rotate`); `None` where there are none.
    pub(super) fn key_flags(&self, flag: &str) -> (Option<&str>, Option<&str>) {
        let (add, rm) = match flag {
            "age" => (&self.add_age, &self.rm_age),
            "pgp" => (&self.add_pgp, &self.rm_pgp),
            "kms" => (&self.add_kms, &self.rm_kms),
            "hc-vault-transit" => (&self.add_hc_vault_transit, &self.rm_hc_vault_transit),
            "gcp-kms" => (&self.add_gcp_kms, &self.rm_gcp_kms),
            "azure-kv" => (&self.add_azure_kv, &self.rm_azure_kv),
            "hckms" => (&self.add_hckms, &self.rm_hckms),
            _ => return (None, None),
        };
        (add.as_deref(), rm.as_deref())
    }
}

/// `hush sops`: encrypt, decrypt and edit SOPS files (sops-compatible; persona `sops`).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(super) command: Option<Cmd>,
    /// Legacy: encrypt FILE.
    #[arg(short = 'e', long = "encrypt")]
    pub(super) encrypt: bool,
    /// Legacy: decrypt FILE.
    #[arg(short = 'd', long = "decrypt")]
    pub(super) decrypt: bool,
    /// Legacy: rotate FILE's data key.
    #[arg(short = 'r', long = "rotate")]
    pub(super) rotate: bool,
    /// Print `sops <version>`.
    #[arg(short = 'v', long = "version")]
    pub(super) version: bool,
    /// Legacy: set a value in FILE, in place: `--set '["key"][0] <json value>'` (the `set`
    /// command's path and value, separated by the first `] `).
    #[arg(long = "set", value_name = "PATH VALUE")]
    pub(super) set: Option<String>,
    #[command(flatten)]
    pub(super) opts: Opts,
    /// The file to edit (or to use with -e/-d/-r).
    pub(super) file: Option<PathBuf>,
}

/// hush: the options of commands that work on a tree of files.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(super) struct TreeOpts {
    /// hush: the summary of a --recursive run: text (stderr) or json (one object on stdout).
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub(super) output_format: crate::tree::SummaryFormat,
}

#[derive(Debug, Subcommand)]
pub(super) enum Cmd {
    /// Encrypt a file (standard input when FILE is omitted or `-`).
    Encrypt {
        file: Option<PathBuf>,
        /// hush: FILE is a directory; encrypt in place (-i) every file under it that a
        /// .sops.yaml creation rule with a path_regex selects, in parallel.
        #[arg(long, requires = "file")]
        recursive: bool,
        #[command(flatten)]
        tree: TreeOpts,
    },
    /// Decrypt a file (standard input when FILE is omitted or `-`).
    Decrypt {
        file: Option<PathBuf>,
        /// hush: FILE is a directory; decrypt in place (-i) every sops file under it, in
        /// parallel.
        #[arg(long, requires = "file")]
        recursive: bool,
        #[command(flatten)]
        tree: TreeOpts,
    },
    /// Edit a file in $SOPS_EDITOR / $EDITOR.
    Edit { file: PathBuf },
    /// Generate a new data key and re-encrypt every value.
    Rotate {
        file: PathBuf,
        /// hush: FILE is a directory; rotate every sops file under it in place, in parallel.
        #[arg(long)]
        recursive: bool,
        #[command(flatten)]
        tree: TreeOpts,
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
        #[command(flatten)]
        tree: TreeOpts,
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
        /// Start the command and return without waiting (DEPRECATED in sops); its standard
        /// streams go to /dev/null.
        #[arg(long)]
        background: bool,
    },
    /// Run a command with the decrypted file at `{}` (a FIFO, read once; `--no-fifo` for a file).
    ExecFile {
        file: PathBuf,
        command: String,
        /// Use a regular file (0600, in a 0700 directory, removed afterwards) instead of a FIFO.
        #[arg(long)]
        no_fifo: bool,
        /// File name of the FIFO or temporary file (letters, digits and . _ - + @ % ,).
        #[arg(long, default_value = "tmp-file")]
        filename: String,
        /// Run the command as this user (looked up in /etc/passwd; needs the right to switch).
        #[arg(long)]
        user: Option<String>,
        /// Start the command and return without waiting (DEPRECATED in sops); as in sops, the
        /// file is removed as soon as the command has started.
        #[arg(long)]
        background: bool,
    },
    /// Publish a sops file (or, with --recursive, a directory) to the destination its
    /// .sops.yaml destination_rules name: S3, Vault KV (decrypted) or (hush) a local directory.
    Publish {
        /// The file, or the directory with --recursive.
        file: PathBuf,
        /// Pre-approve all changes and run non-interactively.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Omit file extensions in the destination path.
        #[arg(long)]
        omit_extensions: bool,
        /// FILE is a directory: publish every file under it (destination paths relative to it).
        #[arg(long)]
        recursive: bool,
    },
    /// Print whether a file is encrypted: `{"encrypted":true}`.
    Filestatus { file: PathBuf },
    /// Add or delete key groups (the data key is kept; values and MAC are unchanged).
    Groups {
        #[command(subcommand)]
        action: GroupsCmd,
    },
    /// Start a SOPS key service server: this machine's master keys over sops' gRPC protocol.
    Keyservice {
        /// Network to listen on, e.g. 'tcp' or 'unix'.
        #[arg(long, visible_alias = "net", value_enum, default_value = "tcp")]
        network: super::keyservice::Network,
        /// Address to listen on, e.g. '127.0.0.1:5000' or '/tmp/sops.sock'.
        #[arg(long, visible_alias = "addr", default_value = "127.0.0.1:5000")]
        address: String,
        /// Prompt user to confirm every incoming request (refused by hush).
        #[arg(long)]
        prompt: bool,
    },
    /// Generate shell completion scripts for `sops`: bash, zsh (hush: also fish, powershell,
    /// elvish). To load completions: `source <(sops completion bash)`.
    Completion { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub(super) enum GroupsCmd {
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
