//! `groups add` and `groups delete`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use hush_sops::stores;

use super::args::Opts;
use super::config::{self, KeyRef};
use super::exit::{codes, engine, exit};
use super::io::{formats, indent, read_input, write_output};
use super::keys;
use super::rotate::key_refs;

/// What `groups add` / `groups delete` does.
pub(super) enum GroupChange {
    Add(Vec<KeyRef>),
    Delete(usize),
}

/// `groups add|delete`: changes the key groups and re-wraps the same data key for all of them
/// (values, MAC and `lastmodified` unchanged); stdout unless `-i`.
pub(super) fn groups(o: &Opts, file: &Path, change: GroupChange) -> Result<ExitCode> {
    let cfg = config::find(o.config.as_deref()).unwrap_or_default();
    let (format, _) = formats(o, file)?;
    let input = read_input(file)?;
    let (branches, mut metadata) =
        stores::load_encrypted(format, &input).map_err(|e| engine(file, e))?;
    // The data key comes from the groups as they are, before the change.
    let (rt, key) = keys::unwrap_for(o, &metadata, file)?;
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
    let specs = keys::specs(o, &groups)?;
    keys::wrap_for(&rt, &mut metadata, &key, &specs, file)?;
    let out = stores::emit_encrypted(format, &branches, &metadata, indent(o, &cfg, format))
        .map_err(|e| engine(file, e))?;
    write_output(o, file, &out)?;
    Ok(ExitCode::SUCCESS)
}
