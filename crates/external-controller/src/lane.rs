//! Scheduling beyond ESO's single work queue: a first-sync fast lane and throttling backoff.
//!
//! - **Fast lane**: the runtime runs up to `2 × --concurrency` reconciles; periodic refreshes
//!   that need a provider fetch must also hold one of `--concurrency` refresh permits. Up to half
//!   as many more refreshes wait for a permit in their worker slot (the wave keeps the permits
//!   busy); a refresh that can neither run nor wait gives its slot back and comes back 0.5–1.5 s
//!   later, behind whatever arrived meanwhile. At least a quarter of the slots are thus always
//!   free for a new or changed ExternalSecret (or one whose Secret is gone or was edited), which
//!   never queues behind a wave of refreshes (ESO #4180, #5045).
//! - **Recent syncs**: the owned Secret's creation event usually reaches the controller before
//!   its own status write, so the next reconcile sees a cached ExternalSecret that looks never
//!   synced and would fetch and write again. [`RecentSyncs`] remembers what this process synced
//!   (per UID: synced resource version and refresh time) and fills a stale cached status in.
//! - **First seen**: [`FirstSeen`] notes when the watch delivered each ExternalSecret. It existed
//!   then, so a provider read started later is newer than its creation: a first sync may share
//!   it (`reconcile/schedule.rs`, `read_freshness`). The creation timestamp alone has whole seconds, so an
//!   ExternalSecret created in the second before a read could not (at start, the newest part of
//!   the initial list read its keys again: 136–189 reads for 100 keys instead of 100).
//! - **Throttling**: a throttled provider answer (HTTP 429, `ThrottlingException`) becomes
//!   [`Error::Throttled`] with the store client's remaining backoff (`hush_sync::cache`), so
//!   the object is retried when the backoff ends (plus jitter), not on a fixed timer.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hush_api::external_secrets::{ExternalSecret, ExternalSecretStatus};
use hush_sync::ProviderError;
use hush_sync::cache::ProviderCache;
use kube::ResourceExt as _;
use kube::runtime::watcher;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;

/// Worker-slot budget of periodic refreshes.
#[derive(Debug)]
pub struct Lanes {
    refresh: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
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
    /// Lanes with `refresh_slots` concurrent periodic refreshes and half as many waiting.
    pub fn new(refresh_slots: usize) -> Self {
        Self {
            refresh: Arc::new(Semaphore::new(refresh_slots.max(1))),
            waiting: Arc::new(Semaphore::new((refresh_slots / 2).max(1))),
        }
    }

    /// Admits a fetch: first syncs at once, refreshes when a refresh permit is free or after
    /// waiting for one in a bounded queue; `None`: the queue is full, yield the worker slot.
    pub async fn admit(&self, first_sync: bool) -> Option<Admission> {
        if first_sync {
            return Some(Admission::Fast);
        }
        if let Ok(p) = Arc::clone(&self.refresh).try_acquire_owned() {
            return Some(Admission::Refresh(p));
        }
        let _waiting = Arc::clone(&self.waiting).try_acquire_owned().ok()?;
        Arc::clone(&self.refresh)
            .acquire_owned()
            .await
            .ok()
            .map(Admission::Refresh)
    }
}

/// The last successful sync of each ExternalSecret by this process (UID → synced resource
/// version, refresh time).
#[derive(Debug, Default)]
pub struct RecentSyncs {
    by_uid: std::sync::Mutex<HashMap<String, (String, String)>>,
}

impl RecentSyncs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers a sync written to the status (`refresh_time` in the status's RFC 3339 form).
    pub fn record(&self, es: &ExternalSecret, synced_rv: &str, refresh_time: &str) {
        if let Some(uid) = es.uid() {
            self.lock()
                .insert(uid, (synced_rv.to_owned(), refresh_time.to_owned()));
        }
    }

    /// Forgets a deleted ExternalSecret.
    pub fn forget(&self, es: &ExternalSecret) {
        if let Some(uid) = es.uid() {
            self.lock().remove(&uid);
        }
    }

    /// `status` with this process's last sync of `es` when that is for the same resource
    /// version and newer than what the (possibly stale) cached status says.
    pub fn apply(&self, es: &ExternalSecret, current_rv: &str, status: &mut ExternalSecretStatus) {
        let Some(uid) = es.uid() else { return };
        let recent = self.lock();
        let Some((rv, at)) = recent.get(&uid) else {
            return;
        };
        // Same-format RFC 3339 UTC timestamps compare as text.
        let newer = status
            .refresh_time
            .as_deref()
            .is_none_or(|cached| cached < at.as_str());
        if rv == current_rv && newer {
            status.synced_resource_version = Some(rv.clone());
            status.refresh_time = Some(at.clone());
        }
    }
}

/// When this process first saw each ExternalSecret that has not synced yet (UID → arrival of
/// its watch event, noted before the reflector stores it and so before any reconcile).
#[derive(Debug, Default)]
pub struct FirstSeen {
    by_uid: std::sync::Mutex<HashMap<String, SystemTime>>,
}

impl FirstSeen {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SystemTime>> {
        self.by_uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a watch event of the ExternalSecret watch (the first arrival of each UID counts).
    pub fn observe(&self, event: &watcher::Event<ExternalSecret>) {
        match event {
            watcher::Event::Apply(es) | watcher::Event::InitApply(es) => {
                let synced = es
                    .status
                    .as_ref()
                    .and_then(|s| s.synced_resource_version.as_deref())
                    .is_some_and(|v| !v.is_empty());
                if let Some(uid) = es.uid().filter(|_| !synced) {
                    self.lock().entry(uid).or_insert_with(SystemTime::now);
                }
            }
            watcher::Event::Delete(es) => self.forget(es),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// When `es` was first seen, if it was.
    pub fn get(&self, es: &ExternalSecret) -> Option<SystemTime> {
        self.lock().get(&es.uid()?).copied()
    }

    /// Forgets `es` (synced, or deleted).
    pub fn forget(&self, es: &ExternalSecret) {
        if let Some(uid) = es.uid() {
            self.lock().remove(&uid);
        }
    }
}

/// When a refresh that could neither run nor wait comes back: 0.5–1.5 s, spread so they do not
/// return together (a yielded reconcile costs no API call: stores and Secrets come from caches).
pub fn yield_delay() -> Duration {
    Duration::from_millis(500 + random_below(1000))
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
/// running on the stores of this ExternalSecret (by UID; at least 1 s).
pub(crate) async fn throttled(e: Error, cache: &ProviderCache, store_uids: &[&str]) -> Error {
    let Error::Provider(source @ ProviderError::Throttled(_)) = e else {
        return e;
    };
    let mut retry_after = Duration::from_secs(1);
    for uid in store_uids {
        if let Some(wait) = cache.backoff_remaining(uid).await {
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
    use super::*;

    #[tokio::test]
    async fn refreshes_share_a_bounded_budget_and_first_syncs_do_not_need_it() {
        let lanes = Arc::new(Lanes::new(2));
        let a = lanes.admit(false).await.unwrap();
        let _b = lanes.admit(false).await.unwrap();
        // One more may wait for a permit; the next yields.
        let waiter = tokio::spawn({
            let lanes = Arc::clone(&lanes);
            async move { lanes.admit(false).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(lanes.admit(false).await.is_none());
        assert!(matches!(lanes.admit(true).await, Some(Admission::Fast)));
        drop(a);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn recent_syncs_fill_in_a_stale_cached_status_only() {
        let es: ExternalSecret = serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "team", "uid": "u1"}, "spec": {}
        }))
        .unwrap();
        let recent = RecentSyncs::default();
        let mut status = ExternalSecretStatus::default();
        recent.apply(&es, "1-abc", &mut status);
        assert_eq!(status, ExternalSecretStatus::default());
        recent.record(&es, "1-abc", "2026-01-01T00:00:10Z");
        // Another resource version (the spec changed since): untouched.
        recent.apply(&es, "2-abc", &mut status);
        assert_eq!(status.synced_resource_version, None);
        recent.apply(&es, "1-abc", &mut status);
        assert_eq!(status.synced_resource_version.as_deref(), Some("1-abc"));
        assert_eq!(status.refresh_time.as_deref(), Some("2026-01-01T00:00:10Z"));
        // A newer status from the API server wins.
        let mut newer = ExternalSecretStatus {
            refresh_time: Some("2026-01-01T00:01:00Z".into()),
            synced_resource_version: Some("1-abc".into()),
            ..ExternalSecretStatus::default()
        };
        recent.apply(&es, "1-abc", &mut newer);
        assert_eq!(newer.refresh_time.as_deref(), Some("2026-01-01T00:01:00Z"));
        recent.forget(&es);
        let mut fresh = ExternalSecretStatus::default();
        recent.apply(&es, "1-abc", &mut fresh);
        assert_eq!(fresh, ExternalSecretStatus::default());
    }

    #[test]
    fn delays_stay_in_their_bounds() {
        for _ in 0..100 {
            let d = yield_delay();
            assert!(d >= Duration::from_millis(500) && d < Duration::from_millis(1500));
            let j = jitter(Duration::from_secs(4));
            assert!(j >= Duration::from_secs(4) && j < Duration::from_secs(5));
        }
    }
}
