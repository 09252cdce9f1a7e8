//! Sharding (`--shards K`): every replica reconciles a share of the objects instead of one leader
//! reconciling them all. Coordination goes through Leases on the API server and nothing else:
//!
//! - An object belongs to shard `fnv1a64("namespace/name") % K` ([`shard_of`]): the same in every
//!   replica and every hush version, so no table of assignments exists anywhere.
//! - Shard `i` is held through the Lease `<group>-shard-<i>` in the controller namespace. Each
//!   replica also renews a member Lease `<group>-member-<hash of identity>`, so replicas that hold
//!   no shard yet are counted. Both carry the label [`GROUP_LABEL`]`=<group>`: one LIST per retry
//!   period shows the keeper the whole picture.
//! - A replica aims at `ceil(K / live members)` shards: it takes free or expired shards while it
//!   holds fewer and gives shards back while it holds more, so a new replica gets its share within
//!   a few retry periods and a dead one's shards move once its Leases expire. Its first round only
//!   writes its member Lease, so replicas started together count each other before taking any.
//! - Expiry is judged as client-go's elector judges it ([`crate::leader`]): a record counts as
//!   expired once this replica has seen it unchanged for its lease duration, by the local clock.
//! - Writes are fenced: a reconciliation holds a [`WritePermit`] for its object's shard. A permit
//!   is refused once the shard was given up or its renewal is older than the renew deadline
//!   (shorter than the lease duration, so this replica stops writing before another can take the
//!   shard); a shard is released only after its permits are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{Stream, TryStreamExt as _};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Shutdown;

/// Label on every Lease of a shard group: its group name.
pub const GROUP_LABEL: &str = "hush.dev/shard-group";
/// Label on every Lease of a shard group: `member` or `shard`.
pub const ROLE_LABEL: &str = "hush.dev/shard-role";
/// Most shards a process may be configured with: one Lease each, renewed every retry period.
pub const MAX_SHARDS: u32 = 256;
/// How long after a Lease's expiry the keeper looks at it again (its round's LIST must see the
/// record still unchanged).
const EXPIRY_MARGIN: Duration = Duration::from_millis(50);

/// The shard of `namespace/name` among `count` shards (FNV-1a, 64 bit; fixed forever, because
/// every replica of every version must agree on it).
pub fn shard_of(namespace: &str, name: &str, count: u32) -> u32 {
    let hash = fnv1a(
        namespace
            .bytes()
            .chain(std::iter::once(b'/'))
            .chain(name.bytes()),
    );
    u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a process shards its work.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Number of shards (`--shards`); 1 turns sharding off.
    pub count: u32,
    /// Namespace of the Leases.
    pub namespace: String,
    /// Prefix of the Lease names and value of [`GROUP_LABEL`] (the leader Lease's name).
    pub group: String,
    /// This replica's identity (`holderIdentity`).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How long after its last renewal this replica still writes a shard's objects.
    pub renew_deadline: Duration,
    /// Interval between rounds of the keeper.
    pub retry_period: Duration,
}

impl ShardConfig {
    /// `count` shards with client-go's default timings (15 s, 10 s, 2 s).
    pub fn new(count: u32, namespace: String, group: String, identity: String) -> Self {
        Self {
            count,
            namespace,
            group,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks the count and the timings.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let invalid = |reason: String| crate::Error::Invalid {
            what: "--shards",
            reason,
        };
        if self.count == 0 || self.count > MAX_SHARDS {
            return Err(invalid(format!(
                "{} shards: choose 1 (no sharding) to {MAX_SHARDS}",
                self.count
            )));
        }
        if self.renew_deadline >= self.lease_duration || self.retry_period >= self.renew_deadline {
            return Err(invalid(
                "the retry period must be shorter than the renew deadline, and that shorter than the lease duration".into(),
            ));
        }
        Ok(())
    }

    fn shard_lease(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.group)
    }

    fn member_lease(&self) -> String {
        format!(
            "{}-member-{:016x}",
            self.group,
            fnv1a(self.identity.bytes())
        )
    }
}

/// The shard metrics of a replica.
#[derive(Debug, Clone, Default)]
struct ShardMetrics {
    owned: Gauge,
    handovers: Counter,
}

impl ShardMetrics {
    fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        registry.register(
            "hush_shards_owned",
            "Shards this replica holds and reconciles",
            this.owned.clone(),
        );
        registry.register(
            "hush_shard_handovers",
            "Shards this replica took from or gave to another replica",
            this.handovers.clone(),
        );
        this
    }
}

/// Until when this replica may write a shard's objects (`None`: forever, without sharding).
type Deadline = Option<Instant>;

/// This replica's shards, shared by its keeper ([`Shards::keep`]) and its reconcilers.
#[derive(Debug, Clone)]
pub struct Shards {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    count: u32,
    owned: Mutex<BTreeMap<u32, Deadline>>,
    /// Reconciliations holding a permit, per shard.
    writing: Box<[AtomicUsize]>,
    changed: watch::Sender<BTreeSet<u32>>,
    metrics: ShardMetrics,
}

impl Shards {
    /// No sharding: this replica owns everything, always.
    pub fn unsharded() -> Self {
        Self::with(1, ShardMetrics::default(), Some(None))
    }

    /// `count` shards, none held yet; the metrics go to `registry`.
    pub fn new(count: u32, registry: &mut Registry) -> Self {
        Self::with(count, ShardMetrics::register(registry), None)
    }

    fn with(count: u32, metrics: ShardMetrics, all: Option<Deadline>) -> Self {
        let count = count.max(1);
        let owned: BTreeMap<u32, Deadline> = match all {
            Some(until) => (0..count).map(|s| (s, until)).collect(),
            None => BTreeMap::new(),
        };
        let (changed, _) = watch::channel(owned.keys().copied().collect());
        Self {
            inner: Arc::new(Inner {
                count,
                owned: Mutex::new(owned),
                writing: (0..count).map(|_| AtomicUsize::new(0)).collect(),
                changed,
                metrics,
            }),
        }
    }

    /// Number of shards.
    pub fn count(&self) -> u32 {
        self.inner.count
    }

    /// Whether sharding is on (more than one shard).
    pub fn is_sharded(&self) -> bool {
        self.inner.count > 1
    }

    /// The shard of `namespace/name`.
    pub fn shard_of(&self, namespace: &str, name: &str) -> u32 {
        shard_of(namespace, name, self.inner.count)
    }

    /// The shards held now; [`Shards::changes`] tells when this changes.
    pub fn owned(&self) -> BTreeSet<u32> {
        self.lock().keys().copied().collect()
    }

    /// Follows the set of held shards.
    pub fn changes(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.inner.changed.subscribe()
    }

    /// Permission to write `namespace/name`'s objects, held for one reconciliation; `None` when
    /// the shard is not (or no longer safely) this replica's.
    pub fn write_permit(&self, namespace: &str, name: &str) -> Option<WritePermit> {
        let shard = self.shard_of(namespace, name);
        let counter = self.inner.writing.get(usize::try_from(shard).ok()?)?;
        // Counted before the check: a keeper giving the shard up after this check waits for it.
        counter.fetch_add(1, Ordering::SeqCst);
        let permit = WritePermit {
            shards: self.clone(),
            shard,
        };
        let valid = match self.lock().get(&shard) {
            Some(None) => true,
            Some(Some(until)) => Instant::now() < *until,
            None => false,
        };
        valid.then_some(permit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Deadline>> {
        self.inner
            .owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn writers(&self, shard: u32) -> usize {
        usize::try_from(shard)
            .ok()
            .and_then(|i| self.inner.writing.get(i))
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// Records the held shards and their deadlines, and tells followers when the set changed.
    fn publish(&self, owned: BTreeMap<u32, Deadline>) {
        let set: BTreeSet<u32> = owned.keys().copied().collect();
        self.inner
            .metrics
            .owned
            .set(i64::try_from(set.len()).unwrap_or(i64::MAX));
        *self.lock() = owned;
        self.inner.changed.send_if_modified(|current| {
            let modified = *current != set;
            *current = set;
            modified
        });
    }

    /// Stops writing `shards` (one change of the set) and waits (up to `patience`) until no
    /// reconciliation writes them. Returns those that drained.
    async fn drain(&self, shards: &[u32], patience: Duration) -> Vec<u32> {
        let mut owned = self.lock().clone();
        let before = owned.len();
        owned.retain(|s, _| !shards.contains(s));
        if owned.len() != before {
            self.publish(owned);
        }
        let deadline = Instant::now() + patience;
        while shards.iter().any(|&s| self.writers(s) > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shards
            .iter()
            .copied()
            .filter(|&s| self.writers(s) == 0)
            .collect()
    }
}

/// Runs of [`for_each_shard_set`] at once before a gain restarts them all as one (each run
/// lists and watches the objects on its own).
const MAX_RUNS: usize = 4;

/// Runs `run` over the shards this replica holds until `shutdown`. `run` gets a set of shards and
/// a [`Shutdown`] fired when one of them is lost (or at `shutdown`), and is expected to return
/// once it fires. Gained shards get a run of their own, so the runs already going keep their
/// watches and caches: taking a dead replica's shards lists only what those shards need, while
/// the other shards' objects go on syncing. A lost shard stops the runs that held it; their
/// other shards start again in one run. With no shard held nothing runs until the set changes.
pub async fn for_each_shard_set<F, Fut>(
    shards: &Shards,
    controller: &'static str,
    shutdown: &Shutdown,
    mut run: F,
) where
    F: FnMut(BTreeSet<u32>, Shutdown) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut changes = shards.changes();
    // The running sets with their stop signals, and the runs themselves (each yields its set).
    let mut runs: Vec<(BTreeSet<u32>, Shutdown)> = Vec::new();
    let mut running = futures::stream::FuturesUnordered::new();
    while !shutdown.is_triggered() {
        let owned = changes.borrow_and_update().clone();
        // The stopped runs' other shards start again below, in one run with the gained ones.
        stop_runs(&mut runs, &mut running, |set| !set.is_subset(&owned)).await;
        let mut gained = not_covered(&owned, &runs);
        if !gained.is_empty() && runs.len() >= MAX_RUNS {
            stop_runs(&mut runs, &mut running, |_| true).await;
            gained = owned.clone();
        }
        if !gained.is_empty() {
            tracing::info!(controller, shards = ?gained, held = ?owned, "reconciling shards this replica took");
            let generation = Shutdown::new();
            runs.push((gained.clone(), generation.clone()));
            let work = run(gained.clone(), generation.clone());
            running.push(async move {
                work.await;
                generation.wait().await;
                gained
            });
        }
        tokio::select! {
            () = shutdown.wait() => {}
            _ = changes.changed() => {}
            // A run ended before its stop signal: its shards start again at the next change.
            Some(set) = futures::StreamExt::next(&mut running), if !running.is_empty() => {
                runs.retain(|(s, _)| *s != set);
            }
        }
    }
    stop_runs(&mut runs, &mut running, |_| true).await;
}

/// Fires the stop signal of the runs whose set `stop` selects and waits until they returned.
async fn stop_runs<Fut>(
    runs: &mut Vec<(BTreeSet<u32>, Shutdown)>,
    running: &mut futures::stream::FuturesUnordered<Fut>,
    stop: impl Fn(&BTreeSet<u32>) -> bool,
) where
    Fut: std::future::Future<Output = BTreeSet<u32>>,
{
    let mut stopping: Vec<BTreeSet<u32>> = Vec::new();
    runs.retain(|(set, generation)| {
        if stop(set) {
            generation.trigger();
            stopping.push(set.clone());
            false
        } else {
            true
        }
    });
    while !stopping.is_empty() {
        match futures::StreamExt::next(running).await {
            Some(set) => {
                stopping.retain(|s| *s != set);
                runs.retain(|(s, _)| *s != set);
            }
            None => break,
        }
    }
}

/// The shards of `owned` that no run serves.
fn not_covered(owned: &BTreeSet<u32>, runs: &[(BTreeSet<u32>, Shutdown)]) -> BTreeSet<u32> {
    owned
        .iter()
        .copied()
        .filter(|s| !runs.iter().any(|(set, _)| set.contains(s)))
        .collect()
}

/// The watch `events` without the objects of shards outside `owned` (all pass for `None`): filtered
/// before a reflector stores them, so a replica caches only its shards' objects.
pub fn in_shards<K, S>(
    events: S,
    shards: Shards,
    owned: Option<BTreeSet<u32>>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Send,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    in_shards_by(events, shards, owned, |o: &K| {
        let meta = o.meta();
        Some((
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        ))
    })
}

/// As [`in_shards`], with each object's shard taken from the `namespace/name` that `key` returns
/// (an owned object follows its owner); objects without a key pass.
pub fn in_shards_by<K, S, F>(
    events: S,
    shards: Shards,
    owned: Option<BTreeSet<u32>>,
    key: F,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Send,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    F: Fn(&K) -> Option<(String, String)> + Send,
{
    events.try_filter(move |event| {
        let keep = match (&owned, event) {
            (
                Some(owned),
                watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o),
            ) => key(o).is_none_or(|(ns, name)| owned.contains(&shards.shard_of(&ns, &name))),
            _ => true,
        };
        std::future::ready(keep)
    })
}

/// A reconciliation's permission to write its object's shard; released on drop.
#[derive(Debug)]
pub struct WritePermit {
    shards: Shards,
    shard: u32,
}

impl WritePermit {
    /// The shard this permit is for.
    pub fn shard(&self) -> u32 {
        self.shard
    }
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        if let Some(counter) = usize::try_from(self.shard)
            .ok()
            .and_then(|i| self.shards.inner.writing.get(i))
        {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// What identifies one version of a Lease record: holder, renewTime, resourceVersion.
type Record = (String, Option<Timestamp>, String);

/// The keeper's memory between rounds.
struct Keeper {
    api: Api<Lease>,
    config: ShardConfig,
    shards: Shards,
    /// Each Lease's last record and when this replica first saw it.
    observed: HashMap<String, (Record, Instant)>,
    /// Whether a round has announced this replica (written its member Lease) yet.
    announced: bool,
    /// When the next Lease another replica holds expires unless renewed (from the last round).
    next_expiry: Option<Instant>,
}

impl Shards {
    /// Holds this replica's share of the shards until `shutdown`, then gives them all back.
    pub async fn keep(
        self,
        client: Client,
        config: ShardConfig,
        shutdown: Shutdown,
    ) -> crate::TaskResult {
        let mut keeper = Keeper {
            api: Api::namespaced(client, &config.namespace),
            config,
            shards: self,
            observed: HashMap::new(),
            announced: false,
            next_expiry: None,
        };
        loop {
            keeper.next_expiry = None;
            if let Err(error) = keeper.round().await {
                tracing::warn!(%error, "shards: cannot read or write the shard Leases");
            }
            keeper.expire();
            // A Lease about to expire is looked at again right then, not up to a retry period
            // later: a dead replica's shards move that much sooner (the rule stays the same).
            let next = Instant::now() + keeper.config.retry_period;
            let next = keeper
                .next_expiry
                .map_or(next, |at| next.min(at + EXPIRY_MARGIN));
            tokio::select! {
                () = shutdown.wait() => break,
                () = tokio::time::sleep_until(next) => {}
            }
        }
        keeper.leave().await;
        Ok(())
    }
}

impl Keeper {
    /// One round: renew the member Lease, renew held shards, then take or give shards until this
    /// replica holds its share.
    async fn round(&mut self) -> Result<(), kube::Error> {
        let selector = format!("{GROUP_LABEL}={}", self.config.group);
        let leases = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await?;
        let by_name: HashMap<String, Lease> = leases
            .items
            .into_iter()
            .map(|l| (l.name_any(), l))
            .collect();
        let member = self.config.member_lease();
        self.write_lease(&member, "member", by_name.get(&member).cloned())
            .await?;
        let members = self.live_members(&by_name, &member);
        let target = self.config.count.div_ceil(members.max(1));
        let mut owned = self.shards.lock().clone();
        let mut free = Vec::new();
        let mut held = Vec::new();
        for shard in 0..self.config.count {
            let name = self.config.shard_lease(shard);
            let lease = by_name.get(&name);
            if lease.map(holder).unwrap_or_default() == self.config.identity {
                held.push((shard, name, lease.cloned()));
            } else {
                owned.remove(&shard);
                if lease.is_none_or(|l| !self.alive(l)) {
                    free.push((shard, lease.cloned()));
                }
            }
        }
        // Renewed at once, not one after another: a slow API server must not eat the deadline.
        let this = &*self;
        let renewals = held.into_iter().map(|(shard, name, lease)| async move {
            let sent = Instant::now();
            (shard, sent, this.write_lease(&name, "shard", lease).await)
        });
        for (shard, sent, result) in futures::future::join_all(renewals).await {
            match result {
                // Another replica can take it only a lease duration after it saw this write,
                // which came after `sent`.
                Ok(true) => {
                    owned.insert(shard, Some(sent + self.config.renew_deadline));
                }
                Ok(false) => {
                    tracing::warn!(
                        shard,
                        "shards: another replica took a shard this replica held"
                    );
                    owned.remove(&shard);
                }
                // Kept until its deadline: `expire` drops it then.
                Err(error) => tracing::warn!(shard, %error, "shards: cannot renew"),
            }
        }
        self.shards.publish(owned.clone());
        // The first round only announces this replica. Replicas started together then see each
        // other before taking shards: otherwise the first takes a share sized for fewer members,
        // lists and caches its objects, and gives most of them back a retry period later.
        if !std::mem::replace(&mut self.announced, true) {
            return Ok(());
        }
        let held = u32::try_from(owned.len()).unwrap_or(u32::MAX);
        if held > target {
            self.give_back(&owned, held - target).await;
        } else if held < target {
            self.take(free, target - held).await;
        }
        Ok(())
    }

    /// Shards beyond the share go back, highest first, each once its writers are done.
    async fn give_back(&mut self, owned: &BTreeMap<u32, Deadline>, excess: u32) {
        let surplus: Vec<u32> = owned
            .keys()
            .rev()
            .take(usize::try_from(excess).unwrap_or(usize::MAX))
            .copied()
            .collect();
        self.release(&surplus).await;
    }

    async fn take(&mut self, mut free: Vec<(u32, Option<Lease>)>, wanted: u32) {
        // Each replica starts at its own place in the free list, so replicas taking at once
        // (a dead replica's shards) rarely race for the same Lease.
        if !free.is_empty() {
            let start = fnv1a(self.config.identity.bytes()) % free.len() as u64;
            free.rotate_left(usize::try_from(start).unwrap_or(0));
        }
        let mut taken = 0;
        // Published once after the round: each change of the set restarts the controllers.
        let mut owned = self.shards.lock().clone();
        for (shard, lease) in free {
            if taken >= wanted {
                break;
            }
            let name = self.config.shard_lease(shard);
            let had_holder = lease.is_some();
            let sent = Instant::now();
            match self.write_lease(&name, "shard", lease).await {
                Ok(true) => {
                    taken += 1;
                    if had_holder {
                        self.shards.inner.metrics.handovers.inc();
                    }
                    tracing::info!(shard, "shards: took a shard");
                    owned.insert(shard, Some(sent + self.config.renew_deadline));
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(shard, %error, "shards: cannot take a shard"),
            }
        }
        if taken > 0 {
            self.shards.publish(owned);
        }
    }

    /// Drops shards whose last renewal is older than the renew deadline.
    fn expire(&self) {
        let now = Instant::now();
        let owned = self.shards.lock().clone();
        let kept: BTreeMap<u32, Deadline> = owned
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .map(|(s, u)| (*s, *u))
            .collect();
        if kept.len() != owned.len() {
            tracing::warn!(
                lost = owned.len() - kept.len(),
                "shards: renewals failed past the renew deadline; stopped writing those shards"
            );
            self.shards.publish(kept);
        }
    }

    /// Gives every shard back and removes the member Lease (shutdown: the others take over now
    /// rather than after the lease duration).
    async fn leave(&mut self) {
        let held: Vec<u32> = self.shards.owned().into_iter().collect();
        self.release(&held).await;
        let member = self.config.member_lease();
        if let Err(error) = self.api.delete(&member, &DeleteParams::default()).await {
            tracing::debug!(%error, "shards: cannot delete the member Lease");
        }
    }

    /// Stops writing `shards`, waits for their writers, then empties their Leases' holder.
    async fn release(&mut self, shards: &[u32]) {
        let drained = self.shards.drain(shards, self.config.renew_deadline).await;
        for &shard in shards {
            if drained.contains(&shard) {
                self.release_lease(shard).await;
            } else {
                // Not released: the Lease expires on its own, after this replica's writers are
                // done.
                tracing::warn!(
                    shard,
                    "shards: writers still busy; letting the Lease expire instead"
                );
            }
        }
    }

    async fn release_lease(&mut self, shard: u32) {
        let name = self.config.shard_lease(shard);
        let Ok(Some(mut lease)) = self.api.get_opt(&name).await else {
            return;
        };
        if holder(&lease) != self.config.identity {
            return;
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.shards.inner.metrics.handovers.inc();
                tracing::info!(shard, "shards: gave a shard back");
            }
            Err(error) => tracing::warn!(shard, %error, "shards: cannot release"),
        }
    }

    /// Live members: member Leases seen renewed within their duration, this replica included.
    fn live_members(&mut self, by_name: &HashMap<String, Lease>, mine: &str) -> u32 {
        let others = by_name
            .iter()
            .filter(|(name, lease)| {
                name.as_str() != mine && role(lease) == Some("member") && self.alive(lease)
            })
            .count();
        u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// Whether `lease` has a holder whose record changed within its duration, by this replica's
    /// clock (client-go's rule, immune to clock skew between replicas).
    fn alive(&mut self, lease: &Lease) -> bool {
        let holder = holder(lease);
        if holder.is_empty() {
            return false;
        }
        let spec = lease.spec.as_ref();
        let record = (
            holder,
            spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
            lease.resource_version().unwrap_or_default(),
        );
        let name = lease.name_any();
        let seen_at = match self.observed.get(&name) {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                let at = Instant::now();
                self.observed.insert(name, (record, at));
                at
            }
        };
        let duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        let expiry = seen_at + duration;
        let alive = Instant::now() < expiry;
        if alive {
            self.next_expiry = Some(self.next_expiry.map_or(expiry, |e| e.min(expiry)));
        }
        alive
    }

    /// Creates `name` held by this replica, or takes/renews `existing` (with its
    /// resourceVersion: `Ok(false)` when another writer came first).
    async fn write_lease(
        &self,
        name: &str,
        role_name: &str,
        existing: Option<Lease>,
    ) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let duration = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let result = match existing {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(self.config.namespace.clone()),
                        labels: Some(
                            [
                                (GROUP_LABEL.to_owned(), self.config.group.clone()),
                                (ROLE_LABEL.to_owned(), role_name.to_owned()),
                            ]
                            .into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(duration),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                    spec.acquire_time = Some(now.clone());
                    spec.lease_transitions =
                        Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                spec.holder_identity = Some(self.config.identity.clone());
                spec.lease_duration_seconds = Some(duration);
                spec.renew_time = Some(now);
                self.api.replace(name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn holder(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

fn role(lease: &Lease) -> Option<&str> {
    lease.labels().get(ROLE_LABEL).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_stable_and_spreads() {
        // Fixed values: a change here reshuffles every object on upgrade.
        assert_eq!(shard_of("default", "db", 12), shard_of("default", "db", 12));
        assert_eq!(fnv1a(b"".iter().copied()), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a".iter().copied()), 0xaf63_dc4c_8601_ec8c);
        let mut counts = [0u32; 6];
        for i in 0..6000 {
            counts[shard_of("ns", &format!("s{i}"), 6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(shard_of("ns", "x", 1), 0);
        assert_eq!(shard_of("ns", "x", 0), 0);
    }

    #[test]
    fn unsharded_permits_everything() {
        let shards = Shards::unsharded();
        assert!(!shards.is_sharded());
        assert!(shards.write_permit("a", "b").is_some());
    }

    #[tokio::test]
    async fn permits_follow_ownership_and_deadlines() {
        let shards = Shards::new(4, &mut Registry::default());
        let (ns, name) = ("ns", "obj");
        let shard = shards.shard_of(ns, name);
        assert!(shards.write_permit(ns, name).is_none(), "nothing held yet");
        shards.publish([(shard, Some(Instant::now() + Duration::from_secs(60)))].into());
        let permit = shards.write_permit(ns, name).expect("held");
        assert_eq!(permit.shard(), shard);
        // Giving the shard up waits for the permit.
        let draining = {
            let shards = shards.clone();
            tokio::spawn(async move { shards.drain(&[shard], Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !draining.is_finished(),
            "drained while a writer held a permit"
        );
        assert!(
            shards.write_permit(ns, name).is_none(),
            "a new permit after giving up"
        );
        drop(permit);
        assert_eq!(draining.await.expect("joined"), vec![shard]);
        // A shard past its renew deadline gives no permit.
        shards.publish([(shard, Some(Instant::now()))].into());
        assert!(shards.write_permit(ns, name).is_none());
    }

    /// What the runs of `for_each_shard_set` did, in order: `start` or `stop` and the run's set.
    type RunLog = Arc<Mutex<Vec<(&'static str, Vec<u32>)>>>;

    #[tokio::test]
    async fn gained_shards_run_apart_and_a_lost_one_restarts_only_its_run() {
        let shards = Shards::new(6, &mut Registry::default());
        let log: RunLog = Arc::default();
        let shutdown = Shutdown::new();
        let driver = {
            let (shards, log, shutdown) = (shards.clone(), log.clone(), shutdown.clone());
            tokio::spawn(async move {
                for_each_shard_set(&shards, "test", &shutdown, |set, generation| {
                    let log = log.clone();
                    let set: Vec<u32> = set.into_iter().collect();
                    log.lock().unwrap().push(("start", set.clone()));
                    async move {
                        generation.wait().await;
                        log.lock().unwrap().push(("stop", set));
                    }
                })
                .await;
            })
        };
        let held =
            |set: &[u32]| -> BTreeMap<u32, Deadline> { set.iter().map(|&s| (s, None)).collect() };
        let settle = || tokio::time::sleep(Duration::from_millis(100));
        let take = |log: &RunLog| std::mem::take(&mut *log.lock().unwrap());
        shards.publish(held(&[0, 1]));
        settle().await;
        assert_eq!(take(&log), [("start", vec![0, 1])]);
        // Taking shards leaves the running run alone.
        shards.publish(held(&[0, 1, 4, 5]));
        settle().await;
        assert_eq!(take(&log), [("start", vec![4, 5])]);
        // Losing shard 1 restarts its run over shard 0; the run over 4 and 5 goes on.
        shards.publish(held(&[0, 4, 5]));
        settle().await;
        assert_eq!(take(&log), [("stop", vec![0, 1]), ("start", vec![0])]);
        // Beyond MAX_RUNS runs, a gain restarts everything as one run.
        shards.publish(held(&[0, 2, 4, 5]));
        settle().await;
        shards.publish(held(&[0, 2, 3, 4, 5]));
        settle().await;
        assert_eq!(take(&log), [("start", vec![2]), ("start", vec![3])]);
        shards.publish(held(&[0, 1, 2, 3, 4, 5]));
        settle().await;
        let mut restarted = take(&log);
        let last = restarted.pop();
        assert_eq!(last, Some(("start", vec![0, 1, 2, 3, 4, 5])));
        assert_eq!(restarted.len(), MAX_RUNS, "{restarted:?}");
        assert!(restarted.iter().all(|(what, _)| *what == "stop"));
        shutdown.trigger();
        driver.await.expect("joined");
        assert_eq!(take(&log), [("stop", vec![0, 1, 2, 3, 4, 5])]);
    }

    #[test]
    fn config_is_checked() {
        let ok = ShardConfig::new(6, "ns".into(), "hush".into(), "me".into());
        assert!(ok.validate().is_ok());
        for count in [0, MAX_SHARDS + 1] {
            assert!(
                ShardConfig {
                    count,
                    ..ok.clone()
                }
                .validate()
                .is_err()
            );
        }
        let slow = ShardConfig {
            renew_deadline: Duration::from_secs(20),
            ..ok.clone()
        };
        assert!(slow.validate().is_err());
        assert!(ok.member_lease().starts_with("hush-member-"));
        assert_eq!(ok.shard_lease(3), "hush-shard-3");
    }
}
