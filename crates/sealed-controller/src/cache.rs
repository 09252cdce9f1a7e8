//! What lets a reconciliation finish without API calls.
//!
//! - [`SecretStores`]: the metadata of the Secrets in the watched namespaces, from the same watch
//!   that triggers reconciliations on drift (slimmed to what the controller reads, so memory stays
//!   small and no `last-applied-configuration` copy of a Secret's data is kept).
//! - [`Verified`]: per SealedSecret, the Secret `resourceVersion` the controller last wrote or
//!   proved up to date, with the spec hash and MAC key it was proved for. While the watched Secret
//!   still has that `resourceVersion` and the spec hash is unchanged, the reconcile triggered by
//!   the controller's own status write or Secret creation needs no GET and no decryption.
//! - [`Primed`]: per shard, how far `prime.rs` has filled the memo after a restart or hand-over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use sha2::{Digest as _, Sha256};

/// Memo entries beyond which the memo is cleared (deleted SealedSecrets are never reconciled
/// again, so their entries would otherwise stay).
const MEMO_LIMIT: usize = 200_000;

/// The metadata store of the watched Secrets of one scope.
type SecretStore = Store<PartialObjectMeta<Secret>>;

/// The metadata stores of the watched Secrets: per run of the controllers (one set of shards,
/// `hush_operator::shards::for_each_shard_set`), one store per watched scope.
#[derive(Default)]
pub(crate) struct SecretStores {
    runs: RwLock<Vec<(BTreeSet<u32>, Vec<SecretStore>)>>,
}

/// What the stores know about one Secret.
pub(crate) enum Seen {
    /// No store (no Secret watch, e.g. `--skip-recreate`) or it has not listed yet.
    Unknown,
    /// The store has listed and holds no such Secret.
    Absent,
    /// The Secret's `resourceVersion`.
    Present(String),
}

impl SecretStores {
    /// The stores of the run over `shards` (replacing those of an ended run over any of them).
    pub(crate) fn insert(&self, shards: &BTreeSet<u32>, stores: Vec<SecretStore>) {
        if let Ok(mut runs) = self.runs.write() {
            runs.retain(|(set, _)| set.is_disjoint(shards));
            runs.push((shards.clone(), stores));
        }
    }

    /// Drops the stores of the run over `shards` (it ended: its caches go with it).
    pub(crate) fn remove(&self, shards: &BTreeSet<u32>) {
        if let Ok(mut runs) = self.runs.write() {
            runs.retain(|(set, _)| set != shards);
        }
    }

    /// The stores of the run serving `shard`.
    fn of(&self, shard: u32) -> Vec<SecretStore> {
        self.runs
            .read()
            .ok()
            .and_then(|runs| {
                runs.iter()
                    .find(|(set, _)| set.contains(&shard))
                    .map(|(_, stores)| stores.clone())
            })
            .unwrap_or_default()
    }

    /// What the stores of `shard`'s run know about the Secret `namespace/name`.
    pub(crate) fn lookup(&self, shard: u32, namespace: &str, name: &str) -> Seen {
        let stores = self.of(shard);
        let key = ObjectRef::new(name).within(namespace);
        let mut all_ready = !stores.is_empty();
        for store in &stores {
            if let Some(meta) = store.get(&key) {
                return meta
                    .metadata
                    .resource_version
                    .clone()
                    .map_or(Seen::Unknown, Seen::Present);
            }
            all_ready &= store.wait_until_ready().now_or_never().is_some();
        }
        if all_ready {
            Seen::Absent
        } else {
            Seen::Unknown
        }
    }

    /// Waits until the stores of `shard`'s run have listed.
    pub(crate) async fn wait_until_ready(&self, shard: u32) {
        for store in self.of(shard) {
            // An error means the watch was dropped (shutdown); nothing to wait for then.
            let _ = store.wait_until_ready().await;
        }
    }
}

/// Keeps only what the controller reads from a watched Secret: name and namespace (the store's
/// key), `resourceVersion` ([`SecretStores::lookup`]) and the SealedSecret ownerReferences (the
/// trigger). Everything else is dropped: annotations alone (one `BTreeMap` node each) were a
/// third of the store.
pub(crate) fn slim(secret: &mut PartialObjectMeta<Secret>) {
    secret.types = None;
    let meta = &mut secret.metadata;
    let kept = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        resource_version: meta.resource_version.take(),
        owner_references: meta.owner_references.take().and_then(|refs| {
            let refs: Vec<_> = refs
                .into_iter()
                .filter(|o| o.kind == hush_api::sealed_secret::KIND)
                .collect();
            (!refs.is_empty()).then_some(refs)
        }),
        ..ObjectMeta::default()
    };
    *meta = kept;
}

/// 128 bits of SHA-256.
type Digest = [u8; 16];

/// A short digest of `parts` (length-prefixed, so parts cannot run into each other): what the
/// memos keep instead of names, versions and hashes, so an entry owns no heap memory.
fn digest(parts: &[&str]) -> Digest {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// The memo key of one SealedSecret.
fn key(namespace: &str, name: &str) -> Digest {
    digest(&[namespace, name])
}

/// A Secret state the controller knows to be what its SealedSecret asks for. Digests only (no
/// heap memory per entry); the spec hash covers the SealedSecret's name, namespace and uid, so
/// an entry can never prove another object's Secret.
#[derive(Debug, Clone, Copy)]
struct Verified {
    resource_version: Digest,
    spec_hash: Digest,
    mac_key_id: u64,
    at: Instant,
}

/// Per SealedSecret (digest of namespace and name): the last verified Secret state.
#[derive(Default)]
pub(crate) struct Memo {
    entries: Mutex<HashMap<Digest, Verified>>,
}

/// A short identifier of a MAC key (never the key).
pub(crate) fn mac_key_id(mac_key: &[u8]) -> u64 {
    let digest = Sha256::digest(mac_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id)
}

impl Memo {
    pub(crate) fn record(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
        spec_hash: &str,
        mac_key_id: u64,
    ) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let key = key(namespace, name);
        let Some(rv) = resource_version else {
            entries.remove(&key);
            return;
        };
        if entries.len() >= MEMO_LIMIT {
            entries.clear();
        }
        entries.insert(
            key,
            Verified {
                resource_version: digest(&[rv]),
                spec_hash: digest(&[spec_hash]),
                mac_key_id,
                at: Instant::now(),
            },
        );
    }

    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&key(namespace, name));
        }
    }

    /// Whether anything is remembered for this SealedSecret.
    pub(crate) fn knows(&self, namespace: &str, name: &str) -> bool {
        self.entries
            .lock()
            .is_ok_and(|e| e.contains_key(&key(namespace, name)))
    }

    /// Whether the Secret at `resource_version` was verified for this spec hash and MAC key
    /// less than `max_age` ago (older proofs are redone, so a resync still reads the Secret).
    pub(crate) fn fresh(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        spec_hash: &str,
        mac_key_id: u64,
        max_age: Duration,
    ) -> bool {
        let (key, rv, spec_hash) = (
            key(namespace, name),
            digest(&[resource_version]),
            digest(&[spec_hash]),
        );
        self.entries.lock().is_ok_and(|entries| {
            entries.get(&key).is_some_and(|v| {
                v.resource_version == rv
                    && v.spec_hash == spec_hash
                    && v.mac_key_id == mac_key_id
                    && v.at.elapsed() < max_age
            })
        })
    }
}

/// Per SealedSecret: digests of the status last written and of the `resourceVersion` it was
/// written over.
#[derive(Default)]
pub(crate) struct StatusMemo {
    entries: Mutex<HashMap<Digest, (Digest, Digest)>>,
}

impl StatusMemo {
    /// Whether `status` was already written over the version `based_on` (the caller still sees
    /// that version because the watch has not delivered the write yet).
    pub(crate) fn in_flight(
        &self,
        namespace: &str,
        name: &str,
        based_on: &str,
        status: &str,
    ) -> bool {
        let (key, written) = (
            key(namespace, name),
            (digest(&[based_on]), digest(&[status])),
        );
        self.entries
            .lock()
            .is_ok_and(|entries| entries.get(&key) == Some(&written))
    }

    pub(crate) fn record(&self, namespace: &str, name: &str, based_on: &str, status: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MEMO_LIMIT {
                entries.clear();
            }
            entries.insert(
                key(namespace, name),
                (digest(&[based_on]), digest(&[status])),
            );
        }
    }
}

/// How far priming (`prime.rs`) of a shard's objects has come. Objects that are new or changed
/// since their last sync need a decryption anyway: they start once the Secret stores listed
/// ([`Stage::Proving`]). Objects synced before wait until their Secrets were proved in bulk, so
/// that after a hand-over the new objects are not queued behind thousands already in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// The Secret stores have not listed yet.
    Listing,
    /// The Secret stores listed; the existing Secrets are being proved.
    Proving,
    /// Priming finished (or was never needed).
    Done,
}

/// Per shard, how far priming has come (shards not mentioned: [`Stage::Done`]).
pub(crate) struct Primed(tokio::sync::watch::Sender<BTreeMap<u32, Stage>>);

impl Default for Primed {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(BTreeMap::new()))
    }
}

impl Primed {
    pub(crate) fn set(&self, shards: &BTreeSet<u32>, stage: Stage) {
        self.0.send_modify(|stages| {
            for &shard in shards {
                if stage == Stage::Done {
                    stages.remove(&shard);
                } else {
                    stages.insert(shard, stage);
                }
            }
        });
    }

    pub(crate) fn stage(&self, shard: u32) -> Stage {
        self.0.borrow().get(&shard).copied().unwrap_or(Stage::Done)
    }

    /// Waits until priming of `shard` reached `stage`.
    pub(crate) async fn wait(&self, shard: u32, stage: Stage) {
        let mut rx = self.0.subscribe();
        // The sender lives in the context, so it cannot be dropped while this waits.
        let _ = rx
            .wait_for(|stages| stages.get(&shard).copied().unwrap_or(Stage::Done) >= stage)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::SPEC_HASH_ANNOTATION;

    #[test]
    fn memo_is_fresh_only_for_the_same_version_hash_key_and_age() {
        let memo = Memo::default();
        let day = Duration::from_secs(86_400);
        assert!(!memo.knows("ns", "n"));
        memo.record("ns", "n", Some("5"), "h", 1);
        assert!(memo.knows("ns", "n"));
        assert!(memo.fresh("ns", "n", "5", "h", 1, day));
        assert!(!memo.fresh("ns", "n", "6", "h", 1, day), "Secret changed");
        assert!(!memo.fresh("ns", "n", "5", "h2", 1, day), "spec changed");
        assert!(!memo.fresh("ns", "n", "5", "h", 2, day), "MAC key changed");
        assert!(
            !memo.fresh("ns", "n", "5", "h", 1, Duration::ZERO),
            "too old"
        );
        assert!(!memo.fresh("ns", "m", "5", "h", 1, day), "another object");
        // No resourceVersion to remember: forget rather than trust.
        memo.record("ns", "n", None, "h", 1);
        assert!(!memo.knows("ns", "n"));
        memo.record("ns", "n", Some("5"), "h", 1);
        memo.forget("ns", "n");
        assert!(!memo.fresh("ns", "n", "5", "h", 1, day));
    }

    #[test]
    fn status_in_flight_only_over_the_same_version_and_content() {
        let memo = StatusMemo::default();
        assert!(!memo.in_flight("ns", "n", "1", "True"));
        memo.record("ns", "n", "1", "True");
        assert!(memo.in_flight("ns", "n", "1", "True"));
        assert!(
            !memo.in_flight("ns", "n", "2", "True"),
            "someone wrote since"
        );
        assert!(!memo.in_flight("ns", "n", "1", "False"), "another status");
        assert!(!memo.in_flight("ns", "m", "1", "True"));
    }

    #[test]
    fn slim_keeps_identity_version_and_sealed_secret_owners_only() {
        let mut secret: PartialObjectMeta<Secret> = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "n", "namespace": "ns", "uid": "u", "resourceVersion": "9",
                "labels": {"a": "b"},
                "annotations": {
                    SPEC_HASH_ANNOTATION: "h",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"k\":\"c2VjcmV0\"}}",
                },
                "ownerReferences": [
                    {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": "n", "uid": "o", "controller": true},
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "p"},
                ],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
        }))
        .unwrap();
        slim(&mut secret);
        assert!(secret.types.is_none());
        let m = &secret.metadata;
        assert!(
            m.annotations.is_none(),
            "annotations are not read from the store"
        );
        assert!(m.managed_fields.is_none() && m.labels.is_none() && m.uid.is_none());
        assert_eq!(m.name.as_deref(), Some("n"));
        assert_eq!(m.namespace.as_deref(), Some("ns"));
        assert_eq!(m.resource_version.as_deref(), Some("9"));
        let owners = m.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (owners[0].kind.as_str(), owners[0].name.as_str()),
            ("SealedSecret", "n")
        );
    }

    #[test]
    fn memo_keys_do_not_run_into_each_other() {
        let memo = Memo::default();
        memo.record("ab", "c", Some("1"), "h", 1);
        assert!(!memo.knows("a", "bc"));
        assert!(memo.knows("ab", "c"));
    }
}
