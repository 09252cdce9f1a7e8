//! Master keys for the `sops` commands: flags and creation rules become hush-keys services.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};

use hush_crypto::{DataKey, SystemEntropy};
use hush_keys::age::Identities;
use hush_keys::{KeyRegistry, KeyService, KeySources};
use hush_sops::keys::KeySpec;
use hush_sops::metadata::{MasterKey, Metadata};

use super::args::Opts;
use super::config::KeyRef;
use super::exit::engine;
use super::keyservice::{Address, RemoteKey};

/// The hush-keys service for a metadata entry (or a flag/rule key), built by its row of the
/// key-kind table with sops' sources (the environment); `None` for key types this build has no
/// service for (they are kept verbatim but cannot be used).
pub(super) fn service_for(entry: &MasterKey) -> Result<Option<Arc<dyn KeyService>>> {
    Ok(hush_keys::kinds::service_for(
        &entry.type_id,
        entry,
        &KeySources::new(),
    )?)
}

/// Where master keys are used: here (`--enable-local-keyservice`, default) and at each
/// `--keyservice` address, tried in that order (sops' order).
pub(crate) struct Sources {
    local: bool,
    remotes: Vec<Address>,
}

impl Sources {
    pub(crate) fn of(o: &Opts) -> Result<Self> {
        let remotes = o
            .keyservice
            .iter()
            .filter(|u| !u.is_empty())
            .map(|u| Address::parse(u).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        if !o.enable_local_keyservice && remotes.is_empty() {
            bail!("--enable-local-keyservice=false needs at least one --keyservice");
        }
        Ok(Self {
            local: o.enable_local_keyservice,
            remotes,
        })
    }

    /// The services for one key: the local one (if enabled and this build has one), then one
    /// per remote key service; `None` when there is none.
    fn service(&self, entry: &MasterKey) -> Result<Option<Arc<dyn KeyService>>> {
        let mut chain: Vec<Arc<dyn KeyService>> = Vec::new();
        if self.local
            && let Some(s) = service_for(entry)?
        {
            chain.push(s);
        }
        for address in &self.remotes {
            if let Some(k) = RemoteKey::new(address.clone(), entry) {
                chain.push(Arc::new(k));
            }
        }
        Ok(match chain.len() {
            0 => None,
            1 => chain.pop(),
            _ => Some(Arc::new(Chain(chain))),
        })
    }
}

/// Several services for one key, tried in order (sops: the first that succeeds).
#[derive(Debug)]
struct Chain(Vec<Arc<dyn KeyService>>);

#[async_trait::async_trait]
impl KeyService for Chain {
    fn type_id(&self) -> &str {
        self.0.first().map_or("", |s| s.type_id())
    }

    fn key_id(&self) -> String {
        self.0.first().map(|s| s.key_id()).unwrap_or_default()
    }

    async fn wrap(
        &self,
        key: &hush_crypto::SecretBytes,
        aad: &[u8],
    ) -> Result<hush_keys::WrappedKey, hush_keys::KeyError> {
        let mut last = None;
        for s in &self.0 {
            match s.wrap(key, aad).await {
                Ok(w) => return Ok(w),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| hush_keys::KeyError::Service {
            type_id: self.type_id().to_owned(),
            key_id: self.key_id(),
            message: "no key service".into(),
        }))
    }

    async fn unwrap(
        &self,
        wrapped: &hush_keys::WrappedKey,
        aad: &[u8],
    ) -> Result<Option<hush_crypto::SecretBytes>, hush_keys::KeyError> {
        let mut first = None;
        for s in &self.0 {
            match s.unwrap(wrapped, aad).await {
                Ok(Some(k)) => return Ok(Some(k)),
                Ok(None) => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(None), Err)
    }
}

/// The key service that wraps for `k`.
pub(crate) fn spec(o: &Opts, k: &KeyRef) -> Result<KeySpec> {
    let entry = MasterKey::new(k.type_id.clone(), k.fields.clone());
    let Some(service) = Sources::of(o)?.service(&entry)? else {
        let built: Vec<&str> = hush_keys::kinds::built_kinds().map(|k| k.type_id).collect();
        bail!(
            "cannot encrypt for the {} key {}: this hush build has key services for {} only \
             (other types through --keyservice)",
            k.type_id,
            k.key_id(),
            built.join(", ")
        );
    };
    Ok(KeySpec { service, entry })
}

/// Key groups of specs.
/// The data key of `metadata`, opened with the master keys this run can use (in
/// `--decryption-order`), and the runtime that opened it; an engine error names `file`.
pub(super) fn unwrap_for(
    o: &Opts,
    metadata: &Metadata,
    file: &Path,
) -> Result<(tokio::runtime::Runtime, DataKey)> {
    let registry = registry_for(o, metadata)?;
    let order = order(o.decryption_order.as_deref());
    let rt = super::io::runtime()?;
    let key = rt
        .block_on(hush_sops::keys::unwrap_data_key(
            metadata, &registry, &order,
        ))
        .map_err(|e| engine(file, e))?;
    Ok((rt, key))
}

/// Wraps the data key `key` for the master-key groups `specs` into `metadata`; an engine error
/// names `file`.
pub(super) fn wrap_for(
    rt: &tokio::runtime::Runtime,
    metadata: &mut Metadata,
    key: &DataKey,
    specs: &[Vec<KeySpec>],
    file: &Path,
) -> Result<()> {
    rt.block_on(hush_sops::keys::wrap_data_key(
        metadata,
        key,
        specs,
        &mut SystemEntropy,
    ))
    .map_err(|e| engine(file, e))
}

pub(crate) fn specs(o: &Opts, groups: &[Vec<KeyRef>]) -> Result<Vec<Vec<KeySpec>>> {
    groups
        .iter()
        .map(|g| g.iter().map(|k| spec(o, k)).collect::<Result<Vec<_>>>())
        .collect()
}

/// The services that can open `meta`'s data key: locally (unless
/// `--enable-local-keyservice=false`) age identities from the environment (`SOPS_AGE_KEY`,
/// `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, SSH keys, `keys.txt`) and one service per PGP, Vault
/// transit and AWS KMS entry of the file (credentials from the environment); then every entry
/// through each `--keyservice`.
pub(crate) fn registry_for(o: &Opts, meta: &Metadata) -> Result<KeyRegistry> {
    let sources = Sources::of(o)?;
    let mut r = KeyRegistry::new();
    if sources.local {
        r.register(Arc::new(Identities::from_env()));
    }
    for k in meta.key_groups.iter().flatten() {
        let by_identities =
            hush_keys::kinds::kind(&k.type_id).is_some_and(|kind| !kind.entry_unwraps);
        let service = if by_identities {
            // Local age keys are the identities above; only the remote ones are added here.
            Sources {
                local: false,
                remotes: sources.remotes.clone(),
            }
            .service(k)
        } else {
            sources.service(k)
        };
        match service {
            Ok(Some(service)) => r.register(service),
            Ok(None) => {}
            Err(e) => eprintln!(
                "[hush sops] warning: the {} key {} cannot be used: {e}",
                k.type_id,
                k.key_id()
            ),
        }
    }
    Ok(r)
}

/// `--decryption-order` / `SOPS_DECRYPTION_ORDER` (default `age,pgp`).
pub(crate) fn order(flag: Option<&str>) -> Vec<String> {
    flag.unwrap_or("age,pgp")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
