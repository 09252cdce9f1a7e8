//! `exec-file`: run a command with the decrypted file at `{}`, as sops does: by default the
//! plaintext goes through a FIFO (it never touches the disk, and can be read once); with
//! `--no-fifo` it is a regular file. Either way it lives in a fresh 0700 directory (`.sops…`
//! under `$TMPDIR`) as `--filename` (0600), removed when the command ends.
//!
//! sops pastes the path into the command string unquoted. hush pastes it too (scripts write
//! `cat {}`, `'{}'` or `"{}"`), but only after checking that the path has no character a shell
//! would interpret, so it means the same in every quoting context.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};
use hush_sops::stores;
use zeroize::Zeroizing;

use super::args::Opts;
use super::config;
use super::crypt::open;
use super::exec::{child_code, lookup_user, start_in_background};
use super::exit::{codes, engine, exit};
use super::io::{formats, indent};

/// What `exec-file` was asked to do.
pub(super) struct ExecFile<'a> {
    pub(super) file: &'a Path,
    pub(super) command: &'a str,
    pub(super) filename: &'a str,
    pub(super) fifo: bool,
    pub(super) user: Option<&'a str>,
    pub(super) background: bool,
}

pub(super) fn exec_file(o: &Opts, req: &ExecFile<'_>) -> Result<ExitCode> {
    // Checked before decrypting, so a typo costs no key access.
    check_filename(req.filename)?;
    let ids = req.user.map(lookup_user).transpose()?;
    let plain = decrypt(o, req.file)?;
    // 0700 whatever the umask, as Go's MkdirTemp makes it.
    let dir = tempfile::Builder::new()
        .prefix(".sops")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("creating a temporary directory")?;
    let path = dir.path().join(req.filename);
    check_shell_safe(&path)?;
    if let Some((uid, gid)) = ids {
        // The command runs as the user, who must reach the directory and the file.
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .context("giving the temporary directory to --user")?;
    }
    let writer = if req.fifo {
        make_fifo(dir.path(), req.filename, ids)?;
        Some(feed_fifo(path.clone(), plain))
    } else {
        write_file(&path, &plain, ids)?;
        None
    };
    let command = req.command.replace("{}", &path.to_string_lossy());
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    if req.background {
        // sops 3.11 starts the command and returns; its deferred RemoveAll then deletes the
        // directory (and the FIFO it never fed) before the command can read it. Same here.
        start_in_background(&mut cmd, "exec-file").context("running the command")?;
        eprintln!(
            "[hush sops] warning: as in sops, {} is removed now that the command has started; \
             run exec-file in the shell's background (`… &`) for a command that reads it",
            path.display()
        );
        drop(writer);
        drop(dir);
        return Ok(ExitCode::SUCCESS);
    }
    let status = cmd.status().with_context(|| match req.user {
        Some(u) => format!("running the command as user {u}"),
        None => "running the command".to_owned(),
    });
    if let Some(writer) = writer {
        release_fifo(&path, writer);
    }
    drop(dir);
    Ok(child_code(status?))
}

fn decrypt(o: &Opts, file: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, output_format) = formats(o, file)?;
    let opened = open(o, file, format, o.ignore_mac)?;
    let plain = stores::emit_plain(
        output_format,
        &opened.branches,
        indent(o, &cfg, output_format),
    )
    .map_err(|e| engine(file, e))?;
    Ok(Zeroizing::new(plain))
}

/// `--filename` is a plain file name: no directory part, no `.`/`..`, and only characters a
/// shell leaves alone (letters, digits, `.`, `_`, `-`, `+`, `@`, `%`, `,`).
fn check_filename(name: &str) -> Result<()> {
    let plain = !name.is_empty() && name != "." && name != ".." && name.chars().all(shell_safe);
    if plain && !name.contains('/') {
        return Ok(());
    }
    Err(exit(
        codes::GENERIC,
        format!(
            "--filename {name:?}: use a plain file name of letters, digits and . _ - + @ % , \
             (it is pasted into the command at {{}})"
        ),
    ))
}

fn shell_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@' | '%' | ',' | '/')
}

/// The temporary directory comes from `$TMPDIR`; a path with spaces or quotes there would
/// change the command, so it is refused.
fn check_shell_safe(path: &Path) -> Result<()> {
    match path.to_str() {
        Some(s) if s.chars().all(shell_safe) => Ok(()),
        _ => Err(exit(
            codes::GENERIC,
            format!(
                "the temporary path {} has characters a shell would interpret: set TMPDIR to a \
                 directory whose path has only letters, digits and . _ - / (it is pasted into \
                 the command at {{}})",
                path.display()
            ),
        )),
    }
}

fn make_fifo(dir: &Path, name: &str, owner: Option<(u32, u32)>) -> Result<()> {
    let dirfd = File::open(dir).context("opening the temporary directory")?;
    rustix::fs::mkfifoat(
        &dirfd,
        name,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .context("creating the FIFO")?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir.join(name), Some(uid), Some(gid))
            .context("giving the FIFO to --user")?;
    }
    Ok(())
}

/// Writes the plaintext into the FIFO from a thread: opening it blocks until the command opens
/// it for reading. A reader that stops early ends the write (EPIPE; SIGPIPE is ignored).
fn feed_fifo(path: PathBuf, plain: Zeroizing<Vec<u8>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = fifo.write_all(&plain);
        }
    })
}

/// After the command: if it never opened the FIFO, the writer is still waiting in `open`; a
/// non-blocking reader lets that open return (the write then sees no reader and stops). Tried
/// for at most five seconds; a writer still stuck then ends with the process.
fn release_fifo(path: &Path, writer: JoinHandle<()>) {
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    for _ in 0..500 {
        if writer.is_finished() {
            let _ = writer.join();
            return;
        }
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nonblock)
            .open(path);
        std::thread::sleep(std::time::Duration::from_millis(10));
        drop(reader);
    }
}

fn write_file(path: &Path, plain: &[u8], owner: Option<(u32, u32)>) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context("creating the temporary file")?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
            .context("giving the temporary file to --user")?;
    }
    f.write_all(plain).context("writing the temporary file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_plain_names_without_shell_characters() {
        for ok in ["tmp-file", "secrets.yaml", "a_b+c@d%e,f.env"] {
            assert!(check_filename(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "a/b", "../x", "a b", "a'b", "a\"b", "$(id)", "`id`", "a;b", "a*", "~x",
            "a\nb",
        ] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
        assert!(check_shell_safe(Path::new("/tmp/.sopsAbC/tmp-file")).is_ok());
        assert!(check_shell_safe(Path::new("/tmp/my dir/.sopsA/f")).is_err());
        assert!(check_shell_safe(Path::new("/tmp/x'y/.sopsA/f")).is_err());
    }
}
