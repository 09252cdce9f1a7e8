//! Loading: the keys of a render from sops' environment and a Flux-style key directory, into
//! hush-keys' [`KeySources`]. Which files hold which keys is the key-kind table's.

use std::path::Path;
use std::sync::Arc;

use hush_keys::KeySources;
use hush_keys::age::{AgePrompt, Identities};
use hush_keys::kinds::FluxFile;
use hush_keys::pgp::{self, KeyFiles};
use hush_keys::vault_transit::{self, AllowedAddresses, TokenPolicy, VaultToken};
use hush_sops::tree::Branch;
use zeroize::Zeroizing;

use super::Keys;
use crate::{Error, Result};

/// The Vault addresses the operator configured: only these receive a token for a file's
/// `hc_vault` key. Compared by origin (scheme, host, port).
#[derive(Debug, Clone, Default)]
pub struct VaultAddresses(AllowedAddresses);

impl VaultAddresses {
    /// From the configured addresses (`VAULT_ADDR`, `HUSH_SOPS_VAULT_ADDRS`, `--sops-vault-addr`);
    /// an address that is not an http(s) URL is a configuration error.
    pub fn new<S: AsRef<str>>(addresses: impl IntoIterator<Item = S>) -> Result<Self> {
        AllowedAddresses::new(addresses).map(Self).map_err(|a| {
            Error::Config(format!(
                "Vault address {a:?} is not an http:// or https:// URL without credentials"
            ))
        })
    }

    /// Whether a token may be sent to `address`.
    pub fn allows(&self, address: &str) -> bool {
        self.0.allows(address)
    }
}

/// A render's sources before any key is loaded: PGP only from key files (never `gpg`), and a
/// Vault token only for the configured addresses (none yet).
impl Default for Keys {
    fn default() -> Self {
        let mut sources = KeySources::new();
        sources.set(pgp::TYPE_ID, KeyFiles::default());
        sources.set(vault_transit::TYPE_ID, TokenPolicy::default());
        Self {
            sources,
            order: Vec::new(),
            unsupported: Vec::new(),
        }
    }
}

impl Keys {
    /// sops' environment plus the key directory, if any.
    pub fn load(keys_dir: Option<&Path>) -> Result<Self> {
        let mut keys = Self {
            order: vec!["age".into(), "pgp".into()],
            ..Self::default()
        };
        keys.sources
            .unwrappers
            .push(Arc::new(Identities::from_env()));
        let token = std::env::var("VAULT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(VaultToken::new);
        keys.sources
            .update(vault_transit::TYPE_ID, |p: &mut TokenPolicy| {
                p.token = token
            });
        if let Some(dir) = keys_dir {
            keys.add_dir(dir)?;
        }
        Ok(keys)
    }

    /// Lets `hc_vault` keys at these addresses use the Vault token (no address may otherwise).
    pub fn with_vault_addresses(mut self, addresses: VaultAddresses) -> Self {
        self.sources
            .update(vault_transit::TYPE_ID, |p: &mut TokenPolicy| {
                p.allowed = addresses.0;
            });
        self
    }

    /// Only the given age identities (tests, `hush demo`).
    pub fn from_age_identities(text: &str) -> Self {
        let mut keys = Self {
            order: vec!["age".into()],
            ..Self::default()
        };
        keys.sources.unwrappers.push(Arc::new(Identities::from_text(
            "identities",
            text,
            AgePrompt::Never,
        )));
        keys
    }

    /// Adds the keys of a Flux-style directory: each file a kind of `hush_keys::KINDS` names
    /// is loaded by that kind, in file-name order.
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        let io = |error| Error::Io {
            path: dir.to_path_buf(),
            error,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<std::result::Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // Kubernetes Secret volumes hold `..data` symlinks; the keys are the plain names.
            if name.starts_with('.') || !path.is_file() {
                continue;
            }
            let Some(kind) = hush_keys::kinds::flux_kind(&name) else {
                continue;
            };
            let Some(load) = kind.load_flux_file else {
                self.unsupported.push((kind, path.display().to_string()));
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .map(Zeroizing::new)
                .map_err(|error| Error::Io {
                    path: path.clone(),
                    error,
                })?;
            let file = FluxFile {
                dir,
                name: &name,
                path: &path,
                text: &text,
                yaml_maps: &yaml_maps,
            };
            // Errors name the file and what is wrong with it, never key material.
            load(&mut self.sources, &file)
                .map_err(|e| Error::Config(format!("SOPS key directory: {e}")))?;
        }
        Ok(())
    }
}

/// The top-level string fields of each YAML document of `text` (hush-keys has no YAML parser;
/// Flux's `sops.aws-kms` is YAML); `None` when it is not YAML.
fn yaml_maps(text: &str) -> Option<Vec<std::collections::BTreeMap<String, Zeroizing<String>>>> {
    let docs: Vec<Branch> = hush_sops::stores::yaml_parse::parse(text).ok()?;
    Some(
        docs.iter()
            .map(|doc| {
                doc.iter()
                    .filter_map(|item| match item {
                        hush_sops::tree::Item::Entry(k, hush_sops::tree::Value::Str(v)) => {
                            Some((k.clone(), Zeroizing::new(v.clone())))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .collect(),
    )
}
