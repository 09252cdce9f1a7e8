//! `hush sops` and the `sops` persona: sops' commands, flags and exit codes over hush-sops.
//!
//! Exit codes are sops' (`getsops/sops:cmd/sops/codes/codes.go`): 2 unreadable input,
//! 3 unwritable output, 24 MAC not decryptable, 25 a value not decryptable, 51 MAC mismatch,
//! 91 bad tree path, 92 empty file, 111 no encryption key, 128 data key not recoverable,
//! 200 file unchanged by `edit`, 201 no editor, 203 already encrypted.
//!
//! One module per command (or family of commands); `args` holds the command line, `exit` the
//! exit codes, `io` input/output and formats, `flags` keys and rules from flags.

mod args;
mod config;
mod crypt;
mod edit;
mod exec;
mod exec_file;
mod exit;
mod flags;
mod groups;
mod io;
mod keys;
mod keyservice;
mod publish;
mod recursive;
mod rotate;
mod set;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory as _, Parser};

pub(crate) use args::Args;
use args::{Cmd, GroupsCmd, Opts};
use exit::{Exit, codes, exit};
use groups::GroupChange;
use io::stdin_or;

/// The sops version whose behaviour hush follows (printed by `--version`).
const SOPS_VERSION: &str = hush_sops::metadata::WRITE_VERSION;

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

/// The `sops` persona's command line (completion scripts and man pages).
pub(crate) fn persona_command() -> clap::Command {
    PersonaCli::command()
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

fn run(mut args: Args) -> Result<ExitCode> {
    if args.version {
        println!("sops {SOPS_VERSION} (hush {})", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    match args.command.take() {
        Some(cmd) => run_subcommand(cmd, &args.opts),
        None => run_legacy(&args),
    }
}

/// sops' subcommands (`sops encrypt FILE`, …), one arm each.
fn run_subcommand(cmd: Cmd, o: &Opts) -> Result<ExitCode> {
    match cmd {
        Cmd::Encrypt {
            file,
            recursive,
            tree,
        } => match (recursive, file) {
            (true, Some(dir)) => recursive::encrypt(o, &dir, tree.output_format),
            (_, file) => crypt::encrypt(o, &stdin_or(file)),
        },
        Cmd::Decrypt {
            file,
            recursive,
            tree,
        } => match (recursive, file) {
            (true, Some(dir)) => recursive::decrypt(o, &dir, tree.output_format),
            (_, file) => crypt::decrypt(o, &stdin_or(file)),
        },
        Cmd::Edit { file } => edit::edit(o, &file),
        Cmd::Rotate {
            file,
            recursive: false,
            tree: _,
        } => rotate::rotate(o, &file),
        Cmd::Rotate {
            file,
            recursive: true,
            tree,
        } => recursive::rotate(o, &file, tree.output_format),
        Cmd::Updatekeys {
            files,
            yes,
            recursive: false,
            tree: _,
        } => {
            for f in &files {
                rotate::updatekeys(o, f, yes, false)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Updatekeys {
            files,
            yes,
            recursive: true,
            tree,
        } => recursive::updatekeys(o, &files, yes, tree.output_format),
        Cmd::Set {
            file,
            path,
            value,
            value_file,
            value_stdin,
            idempotent,
        } => set::set(o, &file, &path, value, value_file, value_stdin, idempotent),
        Cmd::Unset {
            file,
            path,
            idempotent,
        } => set::unset(o, &file, &path, idempotent),
        Cmd::ExecEnv {
            file,
            command,
            pristine,
            user,
            same_process: _,
            background,
        } => exec::exec_env(o, &file, &command, pristine, user, background),
        Cmd::ExecFile {
            file,
            command,
            no_fifo,
            filename,
            user,
            background,
        } => exec_file::exec_file(
            o,
            &exec_file::ExecFile {
                file: &file,
                command: &command,
                filename: &filename,
                fifo: !no_fifo,
                user: user.as_deref(),
                background,
            },
        ),
        Cmd::Filestatus { file } => crypt::filestatus(o, &file),
        Cmd::Publish {
            file,
            yes,
            omit_extensions,
            recursive,
        } => publish::publish(
            o,
            &publish::Publish {
                path: &file,
                yes,
                omit_extensions,
                recursive,
            },
        ),
        Cmd::Keyservice {
            network,
            address,
            prompt,
        } => keyservice::run(&keyservice::Listen { network, address }, prompt),
        Cmd::Completion { shell } => {
            crate::completion::script::write_script(shell, persona_command(), "sops")
        }
        Cmd::Groups {
            action: GroupsCmd::Add { file },
        } => groups::groups(o, &file, GroupChange::Add(flags::flag_keys(o, true)?)),
        Cmd::Groups {
            action: GroupsCmd::Delete { file, index },
        } => groups::groups(o, &file, GroupChange::Delete(index)),
    }
}

/// sops' older form: a flag instead of a subcommand (`sops -e FILE`), or no flag (edit).
fn run_legacy(args: &Args) -> Result<ExitCode> {
    let o = &args.opts;
    let file = args
        .file
        .clone()
        .ok_or_else(|| exit(100, "error: no file specified (usage: sops [command] FILE)"));
    if args.encrypt {
        crypt::encrypt(o, &file?)
    } else if args.decrypt {
        crypt::decrypt(o, &file?)
    } else if args.rotate {
        rotate::rotate(o, &file?)
    } else if let Some(set) = &args.set {
        let (path, value) = set::split_legacy(set)?;
        set::set(o, &file?, path, Some(value.to_owned()), false, false, false)
    } else {
        edit::edit(o, &file?)
    }
}
