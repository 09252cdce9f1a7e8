//! `exec-env`: run a command with the decrypted values in its environment; the user lookup and
//! exit-code mapping `exec-file` shares.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_sops::tree::{Item, Value};

use super::args::Opts;
use super::crypt::open;
use super::exit::{codes, exit};
use super::io::formats;

pub(super) fn child_code(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().map_or(1, |c| (c & 0xff) as u8))
}

/// A user's ids from an `/etc/passwd`-format text (`name:password:uid:gid:…`).
pub(super) fn passwd_ids(passwd: &str, user: &str) -> Option<(u32, u32)> {
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
pub(super) fn lookup_user(user: &str) -> Result<(u32, u32)> {
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

pub(super) fn exec_env(
    o: &Opts,
    file: &Path,
    command: &str,
    pristine: bool,
    user: Option<String>,
    background: bool,
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
    let what = || match &user {
        Some(u) => format!("running the command as user {u}"),
        None => "running the command".to_owned(),
    };
    if background {
        start_in_background(&mut cmd, "exec-env").with_context(what)?;
        return Ok(ExitCode::SUCCESS);
    }
    let status = cmd.status().with_context(what)?;
    Ok(child_code(status))
}

/// `--background` (deprecated in sops): starts the command with its standard streams on
/// /dev/null and returns without waiting, as sops' `cmd.Start()` does; the command outlives
/// hush. sops' deprecation warning goes to stderr.
pub(super) fn start_in_background(cmd: &mut std::process::Command, command: &str) -> Result<()> {
    use std::process::Stdio;
    eprintln!(
        "[hush sops] warning: {command}'s --background option is deprecated and will be removed \
         in a future version of sops"
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Dropping the handle neither waits for nor kills the child.
    drop(cmd.spawn()?);
    Ok(())
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
