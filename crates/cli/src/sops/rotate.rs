//! `rotate` (a new data key) and `updatekeys` (the same data key for the creation rule's keys).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use hush_crypto::{DataKey, SystemEntropy};
use hush_sops::file::Opened;
use hush_sops::stores::{self, Format};

use crate::tree::Outcome;

use super::args::Opts;
use super::config::{self, KeyRef};
use super::crypt::open;
use super::exit::{codes, engine, exit};
use super::flags::{flag_key, split_list};
use super::io::{formats, indent, name_for, read_input, runtime, write_in_place, write_output};
use super::keys;

pub(super) fn rotate(o: &Opts, file: &Path) -> Result<ExitCode> {
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
    let removed: Vec<String> = hush_keys::KINDS
        .iter()
        .filter_map(|k| r.key_flags(k.flag?).1)
        .flat_map(|v| split_list(Some(v)))
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
    let profile = o.aws_profile.as_deref().unwrap_or("");
    for kind in hush_keys::KINDS {
        let Some(add) = kind.flag.and_then(|f| r.key_flags(f).0) else {
            continue;
        };
        for id in split_list(Some(add)) {
            added.push(flag_key(kind, &id, profile, &[])?);
        }
    }
    if let Some(first) = groups.first_mut() {
        for k in added {
            if !first.contains(&k) {
                first.push(k);
            }
        }
    }
    let specs = keys::specs(o, &groups)?;
    let mut rng = SystemEntropy;
    let key = DataKey::generate(&mut rng)?;
    keys::wrap_for(&runtime()?, &mut metadata, &key, &specs, file)?;
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

pub(super) fn updatekeys(o: &Opts, file: &Path, yes: bool, quiet: bool) -> Result<Outcome> {
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
    let (rt, key) = keys::unwrap_for(o, &metadata, file)?;
    metadata.shamir_threshold = if rule.groups.len() > 1 {
        rule.shamir_threshold
    } else {
        0
    };
    let specs = keys::specs(o, &rule.groups)?;
    keys::wrap_for(&rt, &mut metadata, &key, &specs, file)?;
    let out = stores::emit_encrypted(format, &branches, &metadata, indent(o, &cfg, format))
        .map_err(|e| engine(file, e))?;
    write_in_place(file, &out)?;
    if !quiet {
        eprintln!("File {} synced with new keys", file.display());
    }
    Ok(Outcome::Changed)
}

/// The master keys of `metadata` as key references (without their wrapped data key).
pub(super) fn key_refs(metadata: &hush_sops::metadata::Metadata) -> Vec<Vec<KeyRef>> {
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
