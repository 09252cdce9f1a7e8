//! Checks of a Lease hand-over after a holder dies (the shard tests' SIGKILL), made to hold on a
//! loaded machine without becoming unable to fail:
//!
//! - **never early** (exact, load cannot help it pass): every Lease the dead holder had is taken
//!   no sooner than the lease duration after its last renewal, both times stamped by the
//!   replicas' own clock in the Lease record;
//! - **not late**: the others hold its Leases within [`handover_bound`] of the kill: the lease
//!   duration and two retry periods (one to see the last renewal, one to take the Lease) plus
//!   the API calls of those rounds, each allowed the slowest API round trip this check saw while
//!   waiting (measured by listing the Leases every 250 ms), so a slow API server or a starved
//!   test process widens the bound by what it actually cost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

/// API calls one after another in the keeper rounds that see a Lease expire and take it (the
/// Lease LIST, the member renewal, the shard renewals at once, a take per shard).
const ROUND_CALLS: u32 = 8;
/// The least time each of those calls is allowed.
const MIN_CALL: Duration = Duration::from_millis(250);

/// How long the others may take to hold a dead replica's Leases, counted from the kill.
pub fn handover_bound(lease: Duration, retry: Duration, slowest_call: Duration) -> Duration {
    lease + 2 * retry + ROUND_CALLS * slowest_call.max(MIN_CALL)
}

/// A hand-over being watched: what the dead holder held when it died, and the probe timing the
/// API server meanwhile.
pub struct Handover {
    api: Api<Lease>,
    selector: String,
    dead: String,
    /// Lease name → the dead holder's last renewal.
    held: BTreeMap<String, Timestamp>,
    killed: Instant,
    slowest_ns: Arc<AtomicU64>,
    probe: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("selector", &self.selector)
            .field("dead", &self.dead)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

fn holder(lease: &Lease) -> &str {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or_default()
}

impl Handover {
    /// Call right after killing `dead`: records the Leases matching `selector` in `api` that it
    /// holds, and starts timing the API server.
    pub async fn start(api: Api<Lease>, selector: &str, dead: &str) -> Result<Self> {
        let killed = Instant::now();
        let params = ListParams::default().labels(selector);
        let mut held = BTreeMap::new();
        for lease in api.list(&params).await?.items {
            if holder(&lease) == dead {
                let renewed = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0)
                    .with_context(|| format!("Lease {} without renewTime", lease.name_any()))?;
                held.insert(lease.name_any(), renewed);
            }
        }
        let slowest_ns = Arc::new(AtomicU64::new(
            u64::try_from(killed.elapsed().as_nanos()).unwrap_or(u64::MAX),
        ));
        let probe = {
            let (api, slowest) = (api.clone(), slowest_ns.clone());
            tokio::spawn(async move {
                loop {
                    let t = Instant::now();
                    let _ = api.list(&params).await;
                    let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    slowest.fetch_max(ns, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        Ok(Self {
            api,
            selector: selector.to_owned(),
            dead: dead.to_owned(),
            held,
            killed,
            slowest_ns,
            probe,
        })
    }

    /// Call once the others hold every shard: checks both bounds for the configured `lease`
    /// duration and `retry` period, returns how long the hand-over took.
    pub async fn check(self, lease: Duration, retry: Duration) -> Result<Duration> {
        let took = self.killed.elapsed();
        self.probe.abort();
        let slowest = Duration::from_nanos(self.slowest_ns.load(Ordering::Relaxed));
        ensure!(
            !self.held.is_empty(),
            "{} held no Lease when it was killed",
            self.dead
        );
        let now = self
            .api
            .list(&ListParams::default().labels(&self.selector))
            .await?;
        for l in &now.items {
            let Some(last_renewal) = self.held.get(&l.name_any()) else {
                continue;
            };
            let new_holder = holder(l);
            ensure!(
                !new_holder.is_empty() && new_holder != self.dead,
                "Lease {} is held by {new_holder:?} after the hand-over",
                l.name_any()
            );
            let acquired = l
                .spec
                .as_ref()
                .and_then(|s| s.acquire_time.as_ref())
                .map(|t| t.0)
                .with_context(|| format!("Lease {} without acquireTime", l.name_any()))?;
            let after = acquired.duration_since(*last_renewal);
            ensure!(
                after >= jiff_duration(lease)?,
                "Lease {} taken by {new_holder} {after:#} after {}'s last renewal, before the lease duration {lease:?} had passed",
                l.name_any(),
                self.dead
            );
        }
        let bound = handover_bound(lease, retry, slowest);
        ensure!(
            took <= bound,
            "{}'s Leases moved after {took:?}: over the bound {bound:?} (lease {lease:?}, retry {retry:?}, slowest API round trip seen {slowest:?})",
            self.dead
        );
        Ok(took)
    }
}

fn jiff_duration(d: Duration) -> Result<k8s_openapi::jiff::SignedDuration> {
    Ok(k8s_openapi::jiff::SignedDuration::try_from(d)?)
}

impl Drop for Handover {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_grows_with_the_slowest_call_only() {
        let (lease, retry) = (Duration::from_secs(6), Duration::from_secs(1));
        assert_eq!(
            handover_bound(lease, retry, Duration::from_millis(5)),
            Duration::from_secs(10)
        );
        assert_eq!(
            handover_bound(lease, retry, Duration::from_secs(1)),
            Duration::from_secs(16)
        );
    }
}
