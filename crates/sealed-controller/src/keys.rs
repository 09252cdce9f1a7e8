//! The key registry: the cluster's sealing keys, stored exactly as Bitnami stores them.
//!
//! - Key Secrets are `kubernetes.io/tls` Secrets in the key namespace, created with
//!   `generateName: <key-prefix>` (no dash: `sealed-secrets-keyabc12`) and labelled
//!   `sealedsecrets.bitnami.com/sealed-secrets-key: active`; `tls.key` is a PKCS#1 PEM (PKCS#8 is
//!   read too), `tls.crt` the self-signed certificate. The legacy Secret named exactly
//!   `<key-prefix>` is read whether labelled or not.
//! - Every replica watches the key Secrets and reloads the whole set on any change, so keys
//!   restored by hand, relabelled or deleted take effect without a restart.
//! - Only the leader generates keys: at start when there are none or the newest is older than
//!   the cutoff, then every renewal period, and on SIGUSR1. Keys are never deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt as _;
use hush_crypto::cert::{self, Certificate};
use hush_crypto::rsa::RsaPrivateKey;
use hush_crypto::{SecretBytes, SystemEntropy};
use hush_sealing::unseal::Keyring;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use tokio::sync::watch;

use crate::config::{Config, KeyOrderPriority};
use crate::metrics::SealedMetrics;
use crate::{Error, Result};

/// Label selecting active key Secrets.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// Its value for active keys.
pub const KEY_LABEL_ACTIVE: &str = "active";

/// One sealing key.
#[derive(Clone)]
pub struct KeyEntry {
    /// Name of the key Secret (the key's id in the keyring and in `hush` annotations).
    pub name: String,
    /// The private key.
    pub key: RsaPrivateKey,
    /// Its certificate.
    pub cert: Certificate,
    /// What orders keys (Unix seconds): the certificate's NotBefore or the Secret's creation.
    pub ordering: i64,
    /// Breaks ties of `ordering` (keys made within one second): the key Secret's
    /// resourceVersion, which grows with every write (0 when it is not a number).
    pub tiebreak: u64,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("name", &self.name)
            .field("fingerprint", &self.key.public_key().fingerprint())
            .field("ordering", &self.ordering)
            .finish_non_exhaustive()
    }
}

/// An immutable snapshot of the keys, oldest first.
#[derive(Debug, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    keyring: Keyring,
}

impl KeySet {
    /// Builds a set; entries are sorted by ordering (then name) and duplicates collapse.
    pub fn new(mut entries: Vec<KeyEntry>) -> Self {
        entries.sort_by(|a, b| {
            (a.ordering, a.tiebreak, &a.name).cmp(&(b.ordering, b.tiebreak, &b.name))
        });
        let mut keyring = Keyring::new();
        // Newest first: new SealedSecrets are sealed with the newest key.
        for e in entries.iter().rev() {
            keyring.add_named(e.name.clone(), e.key.clone());
        }
        Self { entries, keyring }
    }

    /// The keys, oldest first.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// The newest key (serves `/v1/cert.pem` and `/v1/rotate`).
    pub fn newest(&self) -> Option<&KeyEntry> {
        self.entries.last()
    }

    /// The oldest key (derives the data MAC key, which must stay stable across renewals).
    pub fn oldest(&self) -> Option<&KeyEntry> {
        self.entries.first()
    }

    /// Every key, newest first.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Every key with `preferred` (a key id from an earlier unseal) first.
    pub fn keyring_preferring(&self, preferred: Option<&str>) -> Keyring {
        let Some(first) = preferred.and_then(|p| self.entries.iter().find(|e| e.name == p)) else {
            return self.keyring.clone();
        };
        let mut ring = Keyring::new();
        ring.add_named(first.name.clone(), first.key.clone());
        for e in self.entries.iter().rev() {
            ring.add_named(e.name.clone(), e.key.clone());
        }
        ring
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The controller's sealing key pairs (the key Secrets of the key namespace), shared by the
/// reconciler, the HTTP API and the renewal task. Not `hush_keys::KeyRegistry`, which holds sops
/// key services.
pub struct SealingKeys {
    api: Api<Secret>,
    meta_api: Api<PartialObjectMeta<Secret>>,
    config: Arc<Config>,
    state: RwLock<Arc<KeySet>>,
    changed: watch::Sender<u64>,
    /// Held while the key set is read from the API server and replaced, and while a new key is
    /// stored and added: a reload that listed before a key was created must not replace the set
    /// after that key was added (it would drop it, and the leader would make another).
    writes: tokio::sync::Mutex<()>,
    /// Bumped by each renewal request (SIGUSR1); the leader's renewal loop subscribes.
    renewal_requests: watch::Sender<u64>,
    metrics: SealedMetrics,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys")
            .field("namespace", &self.config.key_namespace)
            .field("keys", &self.snapshot().len())
            .finish_non_exhaustive()
    }
}

impl SealingKeys {
    /// An empty registry for the key namespace of `config`; call [`SealingKeys::load`].
    pub fn new(client: Client, config: Arc<Config>, metrics: SealedMetrics) -> Self {
        let (changed, _) = watch::channel(0);
        let (renewal_requests, _) = watch::channel(0);
        Self {
            api: Api::namespaced(client.clone(), &config.key_namespace),
            meta_api: Api::namespaced(client, &config.key_namespace),
            config,
            state: RwLock::new(Arc::new(KeySet::default())),
            changed,
            writes: tokio::sync::Mutex::new(()),
            renewal_requests,
            metrics,
        }
    }

    /// The current keys.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.state
            .read()
            .map_or_else(|p| p.into_inner().clone(), |s| s.clone())
    }

    /// A receiver that sees a new value after every change of the key set.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn replace(&self, set: KeySet) {
        let set = Arc::new(set);
        self.metrics
            .set_keys(set.len(), set.newest().map(|k| k.ordering));
        match self.state.write() {
            Ok(mut s) => *s = set,
            Err(p) => *p.into_inner() = set,
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Reads every labelled key Secret and the legacy one, and replaces the key set. Secrets that
    /// do not hold an RSA key and certificate are skipped with a warning.
    pub async fn load(&self) -> Result<usize> {
        let _writing = self.writes.lock().await;
        let selector = format!("{KEY_LABEL}={KEY_LABEL_ACTIVE}");
        let list = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::Kube {
                what: "list key Secrets",
                source,
            })?;
        let mut secrets = list.items;
        if !secrets
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(self.config.key_prefix.as_str()))
        {
            let legacy = self
                .api
                .get_opt(&self.config.key_prefix)
                .await
                .map_err(|source| Error::Kube {
                    what: "get the legacy key Secret",
                    source,
                })?;
            secrets.extend(legacy);
        }
        let mut entries = Vec::new();
        for secret in &secrets {
            match parse_key_secret(secret, self.config.key_order_priority) {
                Ok(entry) => entries.push(entry),
                Err(reason) => tracing::warn!(
                    secret = %secret.name_any(),
                    namespace = %self.config.key_namespace,
                    %reason,
                    "skipping key Secret"
                ),
            }
        }
        let set = KeySet::new(entries);
        let n = set.len();
        let before: Vec<String> = self
            .snapshot()
            .entries()
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let after: Vec<String> = set.entries().iter().map(|e| e.name.clone()).collect();
        if before != after {
            tracing::info!(keys = n, newest = ?after.last(), "sealing keys loaded");
        }
        self.replace(set);
        Ok(n)
    }

    /// Generates a key, stores it as a new key Secret and adds it to the set. Returns the name
    /// of the key Secret.
    pub async fn generate(&self) -> Result<String> {
        let bits = self.config.key_size;
        let key = tokio::task::spawn_blocking(move || RsaPrivateKey::generate(bits))
            .await
            .map_err(|e| Error::Internal(format!("key generation task: {e}")))?
            .map_err(Error::Crypto)?;
        let now = Timestamp::now().as_second();
        let ttl = i64::try_from(self.config.key_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let certificate = cert::self_signed(
            &key,
            &self.config.my_cn,
            now,
            now.saturating_add(ttl),
            &mut SystemEntropy,
        )
        .map_err(Error::Crypto)?;
        let key_pem = key.to_pkcs1_pem().map_err(Error::Crypto)?;
        let mut labels = self.config.privatekey_labels.clone();
        labels.insert(KEY_LABEL.into(), KEY_LABEL_ACTIVE.into());
        let annotations = self.config.privatekey_annotations.clone();
        let _writing = self.writes.lock().await;
        let secret = Secret {
            metadata: ObjectMeta {
                generate_name: Some(self.config.key_prefix.clone()),
                namespace: Some(self.config.key_namespace.clone()),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                (
                    "tls.crt".to_owned(),
                    ByteString(certificate.to_pem().into_bytes()),
                ),
                ("tls.key".to_owned(), ByteString(key_pem.expose().to_vec())),
            ])),
            ..Secret::default()
        };
        let created = self
            .api
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|source| Error::Kube {
                what: "create a key Secret",
                source,
            })?;
        let name = created.name_any();
        tracing::info!(secret = %name, namespace = %self.config.key_namespace,
            fingerprint = %key.public_key().fingerprint(), "new sealing key generated");
        let tiebreak = resource_version_number(&created);
        let mut entries = self.snapshot().entries().to_vec();
        entries.push(KeyEntry {
            name: name.clone(),
            key,
            cert: certificate,
            ordering: match self.config.key_order_priority {
                KeyOrderPriority::CertNotBefore => now,
                KeyOrderPriority::SecretCreationTimestamp => created
                    .metadata
                    .creation_timestamp
                    .map_or(now, |t| t.0.as_second()),
            },
            tiebreak,
        });
        self.replace(KeySet::new(entries));
        Ok(name)
    }

    /// Watches the key Secrets (metadata only) and reloads the set on every change, until
    /// `shutdown`. Runs on every replica.
    pub async fn watch(self: Arc<Self>, shutdown: hush_operator::Shutdown) -> Result<()> {
        let selector = format!("{KEY_LABEL}={KEY_LABEL_ACTIVE}");
        let stream = watcher(
            self.meta_api.clone(),
            watcher::Config::default().labels(&selector),
        );
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                () = shutdown.wait() => return Ok(()),
                event = stream.next() => event,
            };
            match event {
                None => return Ok(()),
                Some(Ok(
                    watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_),
                )) => {
                    if let Err(e) = self.load().await {
                        tracing::warn!(error = %e, "cannot reload sealing keys");
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "key Secret watch failed; retrying");
                    tokio::select! {
                        () = shutdown.wait() => return Ok(()),
                        () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    }

    /// Generates a key when there is none or the newest is older than `--key-cutoff-time`.
    /// The leader calls it before it starts reconciling.
    pub async fn ensure_initial(&self) -> Result<()> {
        let set = self.snapshot();
        let cutoff_passed = match (self.config.key_cutoff_time, set.newest()) {
            (Some(cutoff), Some(newest)) => newest.ordering < cutoff,
            _ => false,
        };
        if set.is_empty() || cutoff_passed {
            self.generate().await?;
        }
        Ok(())
    }

    /// Asks the leader for a new key now (what SIGUSR1 does). Returns whether a renewal loop
    /// (the leader's) is listening; on a follower the request is dropped.
    pub fn request_renewal(&self) -> bool {
        self.renewal_requests
            .send_modify(|n| *n = n.wrapping_add(1));
        self.renewal_requests.receiver_count() > 0
    }

    /// Installs the SIGUSR1 handler at once (so that the signal no longer terminates the
    /// process) and returns the task that turns each SIGUSR1 into [`SealingKeys::request_renewal`]
    /// until `shutdown`. Runs on every replica; only the leader acts on the requests.
    pub fn renew_on_sigusr1(
        self: &Arc<Self>,
        shutdown: hush_operator::Shutdown,
    ) -> Result<impl std::future::Future<Output = Result<()>> + Send + 'static> {
        #[cfg(unix)]
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .map_err(|e| Error::Internal(format!("cannot handle SIGUSR1: {e}")))?;
        let registry = self.clone();
        Ok(async move {
            loop {
                #[cfg(unix)]
                let received = usr1.recv();
                #[cfg(not(unix))]
                let received = std::future::pending::<Option<()>>();
                tokio::select! {
                    () = shutdown.wait() => return Ok(()),
                    r = received => if r.is_none() { return Ok(()) },
                }
                if registry.request_renewal() {
                    tracing::info!("SIGUSR1: key renewal requested");
                } else {
                    tracing::info!(
                        "SIGUSR1 ignored: this replica is not the leader, which generates keys"
                    );
                }
            }
        })
    }

    /// Renewal requests from now on, for [`SealingKeys::renew`]. Earlier ones count as seen: a
    /// signal sent to a follower does not make a key when it later leads. The leader subscribes
    /// before it makes its first key, so a request made once that key exists is never lost.
    pub fn renewal_requests(&self) -> RenewalRequests {
        RenewalRequests(self.renewal_requests.subscribe())
    }

    /// The leader's key renewal: a key at once when there is none or the newest is older than
    /// the cutoff, then whenever the newest key is `--key-renew-period` old (a key added
    /// meanwhile, by hand or by another replica, postpones it), and on each of `requests`
    /// (SIGUSR1). Returns on `shutdown`.
    pub async fn renew(
        self: Arc<Self>,
        requests: RenewalRequests,
        shutdown: hush_operator::Shutdown,
    ) -> Result<()> {
        let mut requests = requests.0;
        self.ensure_initial().await?;
        loop {
            let period = self.config.key_renew_period;
            let wait = (!period.is_zero()).then(|| period.saturating_sub(self.newest_age()));
            let timer = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                () = timer => {
                    if self.newest_age() < period {
                        continue;
                    }
                    tracing::info!("key renewal period elapsed");
                }
                changed = requests.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    tracing::info!("renewal requested: generating a new key");
                }
            }
            if let Err(e) = self.generate().await {
                tracing::error!(error = %e, "key generation failed; retrying in a minute");
                tokio::select! {
                    () = shutdown.wait() => return Ok(()),
                    () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                }
            }
        }
    }

    /// Age of the newest key by its ordering time: zero for a future NotBefore, the whole epoch
    /// without keys (a renewal is due).
    fn newest_age(&self) -> std::time::Duration {
        let newest = self.snapshot().newest().map_or(0, |k| k.ordering);
        let age = Timestamp::now().as_second().saturating_sub(newest);
        std::time::Duration::from_secs(u64::try_from(age).unwrap_or(0))
    }
}

/// Renewal requests (SIGUSR1) seen by the leader's [`SealingKeys::renew`].
#[derive(Debug)]
pub struct RenewalRequests(watch::Receiver<u64>);

/// Reads one key Secret: `tls.key` (PKCS#1 or PKCS#8 PEM) and the first certificate of `tls.crt`.
/// The error says why without quoting the content.
pub fn parse_key_secret(
    secret: &Secret,
    priority: KeyOrderPriority,
) -> std::result::Result<KeyEntry, String> {
    let data = secret.data.as_ref().ok_or("no data")?;
    let key_pem = data.get("tls.key").ok_or("no tls.key")?;
    let key_pem = SecretBytes::from_slice(&key_pem.0);
    let key = RsaPrivateKey::from_pem(key_pem.expose())
        .map_err(|_| "tls.key is not an RSA private key in PEM".to_owned())?;
    let crt = data.get("tls.crt").ok_or("no tls.crt")?;
    let cert = Certificate::from_pem(&crt.0).map_err(|e| format!("tls.crt: {e}"))?;
    if cert.public_key != *key.public_key() {
        // Bitnami does not check this; the key still opens what was sealed for it, so keep it.
        tracing::warn!(secret = %secret.name_any(), "tls.crt does not certify tls.key");
    }
    let ordering = match priority {
        KeyOrderPriority::CertNotBefore => cert.not_before,
        KeyOrderPriority::SecretCreationTimestamp => secret
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(cert.not_before, |t| t.0.as_second()),
    };
    Ok(KeyEntry {
        name: secret.name_any(),
        key,
        cert,
        ordering,
        tiebreak: resource_version_number(secret),
    })
}

fn resource_version_number(secret: &Secret) -> u64 {
    secret
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}
