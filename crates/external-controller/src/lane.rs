//! Scheduling beyond ESO's single work queue: a first-sync fast lane and throttling backoff.
//!
//! - **Fast lane**: the runtime runs up to `2 × --concurrency` reconciles; periodic refreshes
//!   that need a provider fetch must also hold one of `--concurrency` refresh permits. A refresh
//!   that finds none gives its worker slot back and comes back 1–3 s later, behind whatever
//!   arrived meanwhile, so a new or changed ExternalSecret (or one whose Secret is gone or was
//!   edited) never queues behind a wave of refreshes (ESO #4180, #5045).
//! - **Throttling**: a throttled provider answer (HTTP 429, `ThrottlingException`) becomes
//!   [`Error::Throttled`] with the store client's remaining backoff (`hush_sync::cache`), so
//!   the object is retried when the backoff ends (plus jitter), not on a fixed timer.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_sync::ProviderError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;
use crate::reconcile::{Context, ResolvedStore};

/// Worker-slot budget of periodic refreshes.
#[derive(Debug)]
pub struct Lanes {
    refresh: Arc<Semaphore>,
}

/// Why a reconcile may fetch now.
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission {
    /// A first sync (new, changed, Secret missing or invalid): no refresh permit needed.
    Fast,
    /// A periodic refresh holding one of the refresh permits.
    Refresh(OwnedSemaphorePermit),
}

impl Lanes {
    /// Lanes with `refresh_slots` concurrent periodic refreshes.
    pub fn new(refresh_slots: usize) -> Self {
        Self {
            refresh: Arc::new(Semaphore::new(refresh_slots.max(1))),
        }
    }

    /// Admits a fetch: first syncs always, refreshes while a refresh permit is free.
    pub fn admit(&self, first_sync: bool) -> Option<Admission> {
        if first_sync {
            return Some(Admission::Fast);
        }
        Arc::clone(&self.refresh)
            .try_acquire_owned()
            .ok()
            .map(Admission::Refresh)
    }
}

/// When a refresh that found no permit comes back: 1–3 s, spread so they do not return together.
pub fn yield_delay() -> Duration {
    Duration::from_millis(1000 + random_below(2000))
}

/// `d` plus up to a quarter of it, at random.
pub fn jitter(d: Duration) -> Duration {
    let quarter = u64::try_from(d.as_millis() / 4).unwrap_or(u64::MAX);
    d + Duration::from_millis(random_below(quarter.max(1)))
}

fn random_below(n: u64) -> u64 {
    // Randomly keyed SipHash of the time: enough to spread retries, not for secrets.
    std::collections::hash_map::RandomState::new().hash_one(Instant::now()) % n.max(1)
}

/// Turns a throttled provider error into [`Error::Throttled`] with the longest backoff still
/// running on the stores of this ExternalSecret (at least 1 s).
pub(crate) async fn throttled(
    e: Error,
    ctx: &Context,
    stores: &BTreeMap<(String, String), ResolvedStore>,
) -> Error {
    let Error::Provider(source @ ProviderError::Throttled(_)) = e else {
        return e;
    };
    let mut retry_after = Duration::from_secs(1);
    for s in stores.values() {
        if let Some(wait) = ctx.cache.backoff_remaining(&s.uid).await {
            retry_after = retry_after.max(wait);
        }
    }
    Error::Throttled {
        retry_after,
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refreshes_share_a_bounded_budget_and_first_syncs_do_not_need_it() {
        let lanes = Lanes::new(2);
        let a = lanes.admit(false).unwrap();
        let _b = lanes.admit(false).unwrap();
        assert!(lanes.admit(false).is_none());
        assert!(matches!(lanes.admit(true), Some(Admission::Fast)));
        drop(a);
        assert!(matches!(lanes.admit(false), Some(Admission::Refresh(_))));
    }

    #[test]
    fn delays_stay_in_their_bounds() {
        for _ in 0..100 {
            let d = yield_delay();
            assert!(d >= Duration::from_secs(1) && d < Duration::from_secs(3));
            let j = jitter(Duration::from_secs(4));
            assert!(j >= Duration::from_secs(4) && j < Duration::from_secs(5));
        }
    }
}
