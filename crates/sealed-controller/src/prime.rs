//! Priming after a restart or when taking shards: one paged LIST proves the existing Secrets up
//! to date in bulk (MAC check, no decryption) and records them in the memo (`cache.rs`), instead
//! of one GET per SealedSecret. Meanwhile only the objects that are new or changed since their
//! last sync are reconciled ([`Stage`]); the others are reconciled once priming ends.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hush_api::sealed_secret::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::cache::{Stage, mac_key_id};
use crate::reconcile::{Context, SPEC_HASH_ANNOTATION, mac_key, up_to_date};

/// Secrets per LIST page when priming: small enough that a namespace full of large Secrets
/// (Helm releases approach 1 MiB each) does not balloon memory.
const PRIME_PAGE: u32 = 100;

/// How long synced objects wait for priming (the watches' first lists and the Secret LIST)
/// before they read Secrets one by one.
pub(crate) const PRIME_TIMEOUT: Duration = Duration::from_secs(120);

/// Proves the existing Secrets of the SealedSecrets in `sealed` up to date from a paged LIST of
/// `secrets` and records them in the memo. Returns how many were
/// proved. Secrets that are not proved are left to their reconciliation.
pub(crate) async fn prime(
    ctx: &Context,
    sealed: &Store<SealedSecret>,
    secrets: &Api<Secret>,
) -> Result<usize, kube::Error> {
    // Without the SealedSecrets nothing can be checked; a dropped store means shutdown.
    if sealed.wait_until_ready().await.is_err() {
        return Ok(0);
    }
    let keys = ctx.keys.snapshot();
    if keys.is_empty() {
        return Ok(0);
    }
    let mac_key = mac_key(&keys);
    let key_id = mac_key_id(&mac_key);
    let mut proved = 0;
    let mut params = ListParams::default().limit(PRIME_PAGE);
    loop {
        let page = secrets.list(&params).await?;
        for secret in &page.items {
            let meta = &secret.metadata;
            let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref())
            else {
                continue;
            };
            let ours = meta
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(SPEC_HASH_ANNOTATION));
            let Some(ss) = ours
                .then(|| sealed.get(&ObjectRef::new(name).within(namespace)))
                .flatten()
            else {
                continue;
            };
            if let Some(spec_hash) = up_to_date(&ss, secret, &mac_key) {
                let rv = meta.resource_version.as_deref();
                ctx.memo.record(namespace, name, rv, &spec_hash, key_id);
                proved += 1;
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok(proved)
}

/// Primes the objects of `shards` (one run of the controllers): [`Stage::Proving`] once their
/// Secret stores listed, [`Stage::Done`] once `to_prime` (per watched scope, the SealedSecret
/// store and the Secrets) was proved, failed or timed out; then `done` reconciles every object
/// of the run.
pub(crate) async fn run(
    ctx: Arc<Context>,
    shards: BTreeSet<u32>,
    to_prime: Vec<(Store<SealedSecret>, Api<Secret>)>,
    done: Vec<futures::channel::oneshot::Sender<()>>,
    shutdown: hush_operator::Shutdown,
) {
    if to_prime.is_empty() {
        return;
    }
    let start = std::time::Instant::now();
    let Some(first) = shards.first().copied() else {
        return;
    };
    let check = async {
        ctx.secret_stores.wait_until_ready(first).await;
        ctx.primed.set(&shards, Stage::Proving);
        let mut proved = 0;
        for (sealed, secrets) in &to_prime {
            proved += prime(&ctx, sealed, secrets).await?;
        }
        Ok::<_, kube::Error>(proved)
    };
    // Synced objects wait for this: it must end, also on shutdown or a stuck watch.
    let bounded = tokio::time::timeout(PRIME_TIMEOUT, check);
    let result = tokio::select! {
        result = bounded => result,
        () = shutdown.wait() => Ok(Ok(0)),
    };
    match result {
        Ok(Ok(proved)) => {
            let took = start.elapsed();
            tracing::info!(proved, ?took, shards = ?shards, "existing Secrets checked without decrypting");
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot list Secrets to check them in bulk; reading them one by one");
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?PRIME_TIMEOUT,
                "the Secret or SealedSecret watch did not list in time; reading Secrets one by one"
            );
        }
    }
    ctx.primed.set(&shards, Stage::Done);
    for trigger in done {
        // Dropped receiver: that controller stopped already.
        let _ = trigger.send(());
    }
}
