//! Provider clients and reads cached per store (what ESO does not do; `docs/external-secrets.md`).
//!
//! - **Clients** (with their Vault session or AWS credentials) are kept per [`StoreKey`]: store
//!   UID + spec version (generation), plus the ExternalSecret namespace when the store uses referent
//!   auth. A client is rebuilt after `client_ttl` (credentials re-resolved); when the resolved
//!   credential identity did not change, the old client (and its token) is kept.
//! - **Reads** are deduplicated: concurrent and repeated reads of the same ref through the same
//!   client and credential identity share one provider call while the caller's [`Freshness`]
//!   accepts it — any read within `read_window`, or only a read made since a given time (a
//!   refresh wave that became due then). The key holds the credential identity, so values never
//!   cross stores, credentials or tenants.
//! - **Concurrency**: at most `per_store_limit` provider calls per client at once; concurrent
//!   first uses of a store build its client once (single flight). A build that fails (a login
//!   refused, the provider down) is answered from memory for [`FAILED_BUILD_HOLD`]: a store with
//!   bad credentials costs one login attempt per hold, not one per ExternalSecret (what ESO's
//!   flood gate is for).
//! - **Throttling**: after a throttled answer (HTTP 429, `ThrottlingException`) a client backs
//!   off exponentially (1 s doubling to 60 s): calls fail fast with `Throttled` without reaching
//!   the provider until the backoff ends; one success resets it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell, Semaphore};

use crate::{Built, FindQuery, ProviderError, RemoteRef, SecretBytes, SecretProvider};

/// How long a failed client build is answered from memory.
pub const FAILED_BUILD_HOLD: Duration = Duration::from_secs(5);

/// Identifies one client: a store version and, for referent auth, the namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreKey {
    /// `SecretStore` / `ClusterSecretStore`.
    pub kind: String,
    /// Store UID.
    pub uid: String,
    /// Store version: its `metadata.generation` (a spec change makes a new client; status
    /// writes, which change the resourceVersion, do not).
    pub resource_version: String,
    /// The ExternalSecret namespace for referent auth, else `None`.
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ReadOp {
    Get(RemoteRef),
    GetMap(RemoteRef),
    Find(FindQuery),
}

#[derive(Clone)]
enum ReadValue {
    One(SecretBytes),
    Map(BTreeMap<String, SecretBytes>),
}

type ReadCell = Arc<OnceCell<Result<ReadValue, ProviderError>>>;

/// Which cached read a caller accepts instead of a provider call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// A read made within the cache's read window.
    Window,
    /// Only a read made at or after this time: a refresh that became due then shares the read
    /// of every other refresh due then. `SystemTime::now()` always calls the provider
    /// (force-sync, a changed spec).
    Since(SystemTime),
}

impl Freshness {
    /// Always a provider call.
    pub fn now() -> Self {
        Self::Since(SystemTime::now())
    }
}

/// When a cached read was made (monotonic for the window, wall clock for [`Freshness::Since`]).
#[derive(Clone, Copy, Debug)]
struct ReadAt {
    instant: Instant,
    wall: SystemTime,
}

/// Client, credential identity, operation.
type ReadKey = (StoreKey, String, ReadOp);

struct ClientEntry {
    built: Built,
    built_at: Instant,
    semaphore: Arc<Semaphore>,
    backoff: Arc<Backoff>,
}

/// A client's throttling backoff.
#[derive(Debug, Default)]
struct Backoff {
    /// (end of the current backoff, throttled answers in a row).
    state: std::sync::Mutex<(Option<Instant>, u32)>,
}

/// First backoff after a throttled answer; doubles per throttled answer in a row.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Cached reads older than this (and than the read window) are dropped when the map is large.
const PRUNE_AFTER: Duration = Duration::from_secs(300);

impl Backoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, u32)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long calls still have to wait.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.lock()
            .0
            .map(|until| until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn record(&self, result: &Result<ReadValue, ProviderError>, now: Instant) {
        let mut state = self.lock();
        match result {
            Err(ProviderError::Throttled(_)) => {
                let strikes = state.1.saturating_add(1);
                let wait = BACKOFF_BASE
                    .saturating_mul(1u32 << (strikes - 1).min(6))
                    .min(BACKOFF_MAX);
                *state = (Some(now + wait), strikes);
            }
            Ok(_) | Err(ProviderError::NotFound(_)) => *state = (None, 0),
            Err(_) => {}
        }
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Provider calls made (cache misses).
    pub provider_calls: AtomicU64,
    /// Reads answered from the cache.
    pub hits: AtomicU64,
    /// Clients built.
    pub builds: AtomicU64,
}

/// The cache of clients and reads, shared by all reconciles.
pub struct ProviderCache {
    clients: Mutex<HashMap<StoreKey, ClientEntry>>,
    /// The last failed build per key, answered again until [`ProviderCache::failed_build_hold`]
    /// has passed.
    failed_builds: Mutex<HashMap<StoreKey, (Instant, ProviderError)>>,
    failed_build_hold: Duration,
    /// One build at a time per key: concurrent first reconciles share one client.
    builds: Mutex<HashMap<StoreKey, Arc<Mutex<()>>>>,
    reads: Mutex<HashMap<ReadKey, (ReadAt, ReadCell)>>,
    read_window: Duration,
    client_ttl: Duration,
    per_store_limit: usize,
    stats: Arc<CacheStats>,
}

impl fmt::Debug for ProviderCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderCache")
            .field("read_window", &self.read_window)
            .field("client_ttl", &self.client_ttl)
            .field("per_store_limit", &self.per_store_limit)
            .finish_non_exhaustive()
    }
}

impl ProviderCache {
    /// A cache deduplicating reads within `read_window`, rebuilding clients after
    /// `client_ttl`, with at most `per_store_limit` concurrent calls per client.
    pub fn new(read_window: Duration, client_ttl: Duration, per_store_limit: usize) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            failed_builds: Mutex::new(HashMap::new()),
            failed_build_hold: FAILED_BUILD_HOLD,
            builds: Mutex::new(HashMap::new()),
            reads: Mutex::new(HashMap::new()),
            read_window,
            client_ttl,
            per_store_limit: per_store_limit.max(1),
            stats: Arc::new(CacheStats::default()),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The client for `key`, built with `build` when missing or older than the client TTL.
    /// Reads through the returned handle accept cached reads as `fresh` says.
    pub async fn client<F, Fut>(
        self: &Arc<Self>,
        key: StoreKey,
        fresh: Freshness,
        build: F,
    ) -> Result<CachedProvider, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Built, ProviderError>>,
    {
        if let Some(handle) = self.live(&key, fresh).await {
            return Ok(handle);
        }
        let gate = Arc::clone(self.builds.lock().await.entry(key.clone()).or_default());
        let _building = gate.lock().await;
        // Another caller may have built it while this one waited.
        if let Some(handle) = self.live(&key, fresh).await {
            return Ok(handle);
        }
        // ... or failed to, moments ago.
        if let Some((at, error)) = self.failed_builds.lock().await.get(&key)
            && at.elapsed() < self.failed_build_hold
        {
            return Err(error.clone());
        }
        let built = match build().await {
            Ok(built) => {
                self.failed_builds.lock().await.remove(&key);
                built
            }
            Err(error) => {
                let mut failed = self.failed_builds.lock().await;
                failed.retain(|_, (at, _)| at.elapsed() < self.failed_build_hold);
                failed.insert(key, (Instant::now(), error.clone()));
                return Err(error);
            }
        };
        let now = Instant::now();
        self.stats.builds.fetch_add(1, Ordering::Relaxed);
        let mut clients = self.clients.lock().await;
        // Drop clients of other versions of the same store.
        clients.retain(|k, _| !(k.uid == key.uid && k.resource_version != key.resource_version));
        let entry = match clients.remove(&key) {
            // Same credentials: keep the old client and its token.
            Some(old) if old.built.identity == built.identity => ClientEntry {
                built_at: now,
                ..old
            },
            _ => ClientEntry {
                built,
                built_at: now,
                semaphore: Arc::new(Semaphore::new(self.per_store_limit)),
                backoff: Arc::default(),
            },
        };
        let handle = self.handle(key.clone(), &entry, fresh);
        clients.insert(key, entry);
        Ok(handle)
    }

    /// The cached client for `key` while it is younger than the client TTL.
    async fn live(self: &Arc<Self>, key: &StoreKey, fresh: Freshness) -> Option<CachedProvider> {
        let clients = self.clients.lock().await;
        clients
            .get(key)
            .filter(|e| e.built_at.elapsed() < self.client_ttl)
            .map(|e| self.handle(key.clone(), e, fresh))
    }

    /// The longest throttling backoff still running among the clients of store `uid`.
    pub async fn backoff_remaining(&self, uid: &str) -> Option<Duration> {
        let now = Instant::now();
        self.clients
            .lock()
            .await
            .iter()
            .filter(|(k, _)| k.uid == uid)
            .filter_map(|(_, e)| e.backoff.remaining(now))
            .max()
    }

    /// Forgets the clients of a store (deleted or changed).
    pub async fn forget_store(&self, uid: &str) {
        self.clients.lock().await.retain(|k, _| k.uid != uid);
        self.failed_builds.lock().await.retain(|k, _| k.uid != uid);
        self.reads.lock().await.retain(|(k, _, _), _| k.uid != uid);
    }

    fn handle(
        self: &Arc<Self>,
        key: StoreKey,
        e: &ClientEntry,
        fresh: Freshness,
    ) -> CachedProvider {
        CachedProvider {
            cache: Arc::clone(self),
            key,
            identity: e.built.identity.clone(),
            inner: Arc::clone(&e.built.provider),
            semaphore: Arc::clone(&e.semaphore),
            backoff: Arc::clone(&e.backoff),
            fresh,
        }
    }

    async fn read<F, Fut>(
        &self,
        key: ReadKey,
        fresh: Freshness,
        semaphore: &Semaphore,
        backoff: &Backoff,
        call: F,
    ) -> Result<ReadValue, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<ReadValue, ProviderError>>,
    {
        let now = ReadAt {
            instant: Instant::now(),
            wall: SystemTime::now(),
        };
        let cell = {
            let mut reads = self.reads.lock().await;
            if reads.len() > 4096 {
                // Keeps what a refresh wave may still share.
                let keep = self.read_window.max(PRUNE_AFTER);
                reads.retain(|_, (at, _)| now.instant.saturating_duration_since(at.instant) < keep);
            }
            let accepted = |at: &ReadAt| match fresh {
                Freshness::Window => {
                    now.instant.saturating_duration_since(at.instant) < self.read_window
                }
                Freshness::Since(t) => at.wall >= t,
            };
            match reads.get(&key) {
                Some((at, cell)) if accepted(at) => Arc::clone(cell),
                _ => {
                    let cell: ReadCell = Arc::new(OnceCell::new());
                    reads.insert(key.clone(), (now, Arc::clone(&cell)));
                    cell
                }
            }
        };
        let mut called = false;
        let result = cell
            .get_or_init(|| async {
                called = true;
                if let Some(wait) = backoff.remaining(Instant::now()) {
                    return Err(ProviderError::Throttled(format!(
                        "the provider throttled this store; backing off for {} ms more",
                        wait.as_millis()
                    )));
                }
                self.stats.provider_calls.fetch_add(1, Ordering::Relaxed);
                let result = match semaphore.acquire().await {
                    Ok(_permit) => call().await,
                    Err(_) => Err(ProviderError::Transient("provider client closed".into())),
                };
                backoff.record(&result, Instant::now());
                result
            })
            .await
            .clone();
        if !called {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
        }
        // Errors other than NotFound are not kept: the next reconcile retries.
        if let Err(e) = &result
            && !e.is_not_found()
        {
            let mut reads = self.reads.lock().await;
            if reads.get(&key).is_some_and(|(_, c)| Arc::ptr_eq(c, &cell)) {
                reads.remove(&key);
            }
        }
        result
    }
}

/// A provider handle from [`ProviderCache::client`]: reads go through the cache.
#[derive(Clone)]
pub struct CachedProvider {
    cache: Arc<ProviderCache>,
    key: StoreKey,
    identity: String,
    inner: Arc<dyn SecretProvider>,
    semaphore: Arc<Semaphore>,
    backoff: Arc<Backoff>,
    fresh: Freshness,
}

impl fmt::Debug for CachedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProvider")
            .field("key", &self.key)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SecretProvider for CachedProvider {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        let key = (
            self.key.clone(),
            self.identity.clone(),
            ReadOp::Get(r.clone()),
        );
        match self
            .cache
            .read(key, self.fresh, &self.semaphore, &self.backoff, || async {
                self.inner.get(r).await.map(ReadValue::One)
            })
            .await?
        {
            ReadValue::One(v) => Ok(v),
            ReadValue::Map(_) => Err(ProviderError::Invalid("cache type mismatch".into())),
        }
    }

    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let key = (
            self.key.clone(),
            self.identity.clone(),
            ReadOp::GetMap(r.clone()),
        );
        match self
            .cache
            .read(key, self.fresh, &self.semaphore, &self.backoff, || async {
                self.inner.get_map(r).await.map(ReadValue::Map)
            })
            .await?
        {
            ReadValue::Map(v) => Ok(v),
            ReadValue::One(_) => Err(ProviderError::Invalid("cache type mismatch".into())),
        }
    }

    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        let key = (
            self.key.clone(),
            self.identity.clone(),
            ReadOp::Find(q.clone()),
        );
        match self
            .cache
            .read(key, self.fresh, &self.semaphore, &self.backoff, || async {
                self.inner.find(q).await.map(ReadValue::Map)
            })
            .await?
        {
            ReadValue::Map(v) => Ok(v),
            ReadValue::One(_) => Err(ProviderError::Invalid("cache type mismatch".into())),
        }
    }

    async fn validate(&self) -> Result<(), ProviderError> {
        self.inner.validate().await
    }

    fn capabilities(&self) -> crate::Capabilities {
        self.inner.capabilities()
    }
    fn deletes_pushed(&self) -> bool {
        self.inner.deletes_pushed()
    }

    // Writes are never cached or shared; they count against the store's concurrency limit.
    async fn push(&self, value: &SecretBytes, r: &crate::PushRef) -> Result<(), ProviderError> {
        let _slot = self.semaphore.acquire().await.map_err(closed)?;
        self.inner.push(value, r).await
    }

    async fn exists(&self, r: &crate::PushRef) -> Result<bool, ProviderError> {
        let _slot = self.semaphore.acquire().await.map_err(closed)?;
        self.inner.exists(r).await
    }

    async fn delete(&self, r: &crate::PushRef) -> Result<(), ProviderError> {
        let _slot = self.semaphore.acquire().await.map_err(closed)?;
        self.inner.delete(r).await
    }
}

fn closed(_: tokio::sync::AcquireError) -> ProviderError {
    ProviderError::Transient("the store's client is shut down".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
        tag: &'static str,
    }

    #[async_trait]
    impl SecretProvider for Counting {
        async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if r.key == "missing" {
                return Err(ProviderError::NotFound(r.key.clone()));
            }
            if r.key == "flaky" {
                return Err(ProviderError::Transient("down".into()));
            }
            if r.key == "throttled" {
                return Err(ProviderError::Throttled("429".into()));
            }
            Ok(SecretBytes::from(
                format!("{}:{}", self.tag, r.key).as_str(),
            ))
        }
        async fn get_map(
            &self,
            _r: &RemoteRef,
        ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
            Ok(BTreeMap::new())
        }
        async fn find(
            &self,
            _q: &FindQuery,
        ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
            Ok(BTreeMap::new())
        }
        async fn validate(&self) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    fn key(uid: &str, ns: Option<&str>) -> StoreKey {
        StoreKey {
            kind: "ClusterSecretStore".into(),
            uid: uid.into(),
            resource_version: "1".into(),
            namespace: ns.map(str::to_owned),
        }
    }

    fn built(p: &Arc<Counting>, identity: &str) -> Built {
        Built {
            provider: Arc::clone(p) as Arc<dyn SecretProvider>,
            identity: identity.into(),
            referent: false,
        }
    }

    #[tokio::test]
    async fn a_failed_build_is_answered_from_memory_until_the_hold_passes() {
        let mut cache = ProviderCache::new(Duration::from_secs(60), Duration::from_secs(300), 4);
        // Long enough that 50 waiters on a loaded machine all still see the failure.
        cache.failed_build_hold = Duration::from_secs(2);
        let cache = Arc::new(cache);
        let builds = Arc::new(AtomicUsize::new(0));
        let attempt = |cache: Arc<ProviderCache>, builds: Arc<AtomicUsize>| async move {
            cache
                .client(key("s", None), Freshness::Window, || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err::<Built, _>(ProviderError::Denied("login refused".into()))
                })
                .await
                .map(|_| ())
        };
        // 50 ExternalSecrets at once: one login attempt, every one gets its error.
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            set.spawn(attempt(Arc::clone(&cache), Arc::clone(&builds)));
        }
        let all = set.join_all().await;
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(
            all.iter()
                .all(|r| r == &Err(ProviderError::Denied("login refused".into())))
        );
        // After the hold, one more attempt.
        tokio::time::sleep(Duration::from_millis(2_050)).await;
        assert!(
            attempt(Arc::clone(&cache), Arc::clone(&builds))
                .await
                .is_err()
        );
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        // A success clears it at once.
        let p = Arc::new(Counting::default());
        tokio::time::sleep(Duration::from_millis(2_050)).await;
        assert!(
            cache
                .client(key("s", None), Freshness::Window, || async {
                    Ok(built(&p, "id"))
                })
                .await
                .is_ok()
        );
        assert!(cache.failed_builds.lock().await.is_empty());
    }

    #[tokio::test]
    async fn concurrent_reads_share_one_call_and_tenants_do_not_share() {
        let cache = Arc::new(ProviderCache::new(
            Duration::from_secs(60),
            Duration::from_secs(300),
            4,
        ));
        let a = Arc::new(Counting {
            tag: "a",
            ..Counting::default()
        });
        let b = Arc::new(Counting {
            tag: "b",
            ..Counting::default()
        });
        let r = RemoteRef {
            key: "db".into(),
            ..RemoteRef::default()
        };
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let cache = Arc::clone(&cache);
            let a = Arc::clone(&a);
            let r = r.clone();
            tasks.push(tokio::spawn(async move {
                let p = cache
                    .client(key("s1", None), Freshness::Window, || async {
                        Ok(built(&a, "id-a"))
                    })
                    .await
                    .unwrap();
                p.get(&r).await.unwrap().expose().to_vec()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), b"a:db");
        }
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        // Another namespace (referent auth) with other credentials: its own client and read.
        let p = cache
            .client(key("s1", Some("team-b")), Freshness::Window, || async {
                Ok(built(&b, "id-b"))
            })
            .await
            .unwrap();
        assert_eq!(p.get(&r).await.unwrap().expose(), b"b:db");
        assert_eq!(b.calls.load(Ordering::SeqCst), 1);
        // force-sync reads again.
        let p = cache
            .client(key("s1", None), Freshness::now(), || async {
                Ok(built(&a, "id-a"))
            })
            .await
            .unwrap();
        p.get(&r).await.unwrap();
        assert_eq!(a.calls.load(Ordering::SeqCst), 2);
        // NotFound is remembered within the window, transient errors are not.
        let p = cache
            .client(key("s1", None), Freshness::Window, || async {
                Ok(built(&a, "id-a"))
            })
            .await
            .unwrap();
        let missing = RemoteRef {
            key: "missing".into(),
            ..RemoteRef::default()
        };
        assert!(p.get(&missing).await.unwrap_err().is_not_found());
        assert!(p.get(&missing).await.unwrap_err().is_not_found());
        assert_eq!(a.calls.load(Ordering::SeqCst), 3);
        let flaky = RemoteRef {
            key: "flaky".into(),
            ..RemoteRef::default()
        };
        assert!(p.get(&flaky).await.is_err());
        assert!(p.get(&flaky).await.is_err());
        assert_eq!(a.calls.load(Ordering::SeqCst), 5);
        assert_eq!(cache.stats().builds.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_refresh_wave_shares_reads_made_since_it_became_due() {
        // A read window of zero: only `Since` can share.
        let cache = Arc::new(ProviderCache::new(
            Duration::ZERO,
            Duration::from_secs(300),
            4,
        ));
        let a = Arc::new(Counting {
            tag: "a",
            ..Counting::default()
        });
        let r = RemoteRef {
            key: "db".into(),
            ..RemoteRef::default()
        };
        let read = |fresh: Freshness| {
            let cache = Arc::clone(&cache);
            let a = Arc::clone(&a);
            let r = r.clone();
            async move {
                let p = cache
                    .client(key("s", None), fresh, || async { Ok(built(&a, "id")) })
                    .await
                    .unwrap();
                p.get(&r).await.unwrap();
            }
        };
        let due = SystemTime::now();
        read(Freshness::Since(due)).await;
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        // Every other refresh due at the same time shares that read, however late it runs.
        for _ in 0..5 {
            read(Freshness::Since(due)).await;
        }
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        // The window alone does not (zero here).
        read(Freshness::Window).await;
        assert_eq!(a.calls.load(Ordering::SeqCst), 2);
        // The next wave needs a read made after it became due.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let next = SystemTime::now();
        read(Freshness::Since(next)).await;
        read(Freshness::Since(next)).await;
        assert_eq!(a.calls.load(Ordering::SeqCst), 3);
        // A later read also serves an earlier due time.
        read(Freshness::Since(due)).await;
        assert_eq!(a.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn clients_are_rebuilt_after_ttl_and_kept_when_identity_is_unchanged() {
        let cache = Arc::new(ProviderCache::new(
            Duration::from_secs(60),
            Duration::ZERO,
            1,
        ));
        let a = Arc::new(Counting {
            tag: "a",
            ..Counting::default()
        });
        let a2 = Arc::new(Counting {
            tag: "a2",
            ..Counting::default()
        });
        let r = RemoteRef {
            key: "k".into(),
            ..RemoteRef::default()
        };
        let p = cache
            .client(key("s", None), Freshness::Window, || async {
                Ok(built(&a, "same"))
            })
            .await
            .unwrap();
        assert_eq!(p.get(&r).await.unwrap().expose(), b"a:k");
        // Rebuilt (TTL 0) with the same identity: the first client stays.
        let p = cache
            .client(key("s", None), Freshness::now(), || async {
                Ok(built(&a2, "same"))
            })
            .await
            .unwrap();
        assert_eq!(p.get(&r).await.unwrap().expose(), b"a:k");
        // New credentials: the new client.
        let p = cache
            .client(key("s", None), Freshness::now(), || async {
                Ok(built(&a2, "rotated"))
            })
            .await
            .unwrap();
        assert_eq!(p.get(&r).await.unwrap().expose(), b"a2:k");
    }

    #[tokio::test]
    async fn concurrent_first_uses_build_one_client() {
        let cache = Arc::new(ProviderCache::new(
            Duration::from_secs(60),
            Duration::from_secs(300),
            4,
        ));
        let a = Arc::new(Counting::default());
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let cache = Arc::clone(&cache);
            let a = Arc::clone(&a);
            tasks.push(tokio::spawn(async move {
                cache
                    .client(key("s", None), Freshness::Window, || async {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(built(&a, "id"))
                    })
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(cache.stats().builds.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_throttled_client_backs_off_without_calling_the_provider() {
        let cache = Arc::new(ProviderCache::new(
            Duration::ZERO,
            Duration::from_secs(300),
            4,
        ));
        let a = Arc::new(Counting::default());
        let p = cache
            .client(key("s", None), Freshness::Window, || async {
                Ok(built(&a, "id"))
            })
            .await
            .unwrap();
        let throttled = RemoteRef {
            key: "throttled".into(),
            ..RemoteRef::default()
        };
        let ok = RemoteRef {
            key: "db".into(),
            ..RemoteRef::default()
        };
        assert!(matches!(
            p.get(&throttled).await,
            Err(ProviderError::Throttled(_))
        ));
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        let wait = cache.backoff_remaining("s").await.unwrap();
        assert!(wait <= BACKOFF_BASE && !wait.is_zero(), "{wait:?}");
        assert_eq!(cache.backoff_remaining("other").await, None);
        // Within the backoff: fails fast, the provider is not called.
        assert!(matches!(p.get(&ok).await, Err(ProviderError::Throttled(_))));
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        // A second throttled answer in a row doubles the backoff.
        assert!(p.get(&throttled).await.is_err());
        let wait = cache.backoff_remaining("s").await.unwrap();
        assert!(wait > BACKOFF_BASE && wait <= BACKOFF_BASE * 2, "{wait:?}");
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        // One success resets it.
        assert_eq!(p.get(&ok).await.unwrap().expose(), b":db");
        assert_eq!(cache.backoff_remaining("s").await, None);
        assert_eq!(a.calls.load(Ordering::SeqCst), 3);
    }
}
