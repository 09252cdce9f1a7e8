//! [`Process`]: one controller process. It serves the metrics and health endpoint, runs every
//! component's always-on tasks (read-only endpoints, key watches) on every replica, and runs the
//! components' leader tasks (reconcilers, key generation) only while it holds the leader Lease,
//! or at once when leader election is off. It stops on [`Shutdown`]; losing the Lease stops it
//! with [`Error::LostLeadership`] so that the orchestrator restarts it as a candidate.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::Client;
use prometheus_client::registry::Registry;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::leader::{LeaderElector, LeaseConfig};
use crate::metrics::ReconcileMetrics;
use crate::server::{self, Health};
use crate::shards::{ShardConfig, Shards};
use crate::{Error, Result, Shutdown, TaskResult};

/// Starts a component's leader-only work with the leader's own shutdown signal (fired on process
/// shutdown or on loss of the Lease).
pub type LeaderTask = Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, TaskResult> + Send>;

/// One controller's share of a process.
pub struct Component {
    /// Its name in logs (`sealed`, `external`).
    pub name: &'static str,
    /// Tasks every replica runs until shutdown.
    pub always: Vec<BoxFuture<'static, TaskResult>>,
    /// Work only the leader does.
    pub leader: LeaderTask,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .field("always", &self.always.len())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Process`].
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Address of the metrics and health endpoint (`:8081`).
    pub metrics_addr: String,
    /// The leader Lease, or `None` to run the leader tasks at once.
    pub leader_election: Option<LeaseConfig>,
    /// Shards of the reconcilers' work, or `None` (one shard: the leader reconciles everything).
    pub shards: Option<ShardConfig>,
}

/// A controller process under construction: components register their metrics into
/// [`Process::registry`] and then [`Process::run`] drives them.
pub struct Process {
    client: Client,
    config: ProcessConfig,
    registry: Registry,
    metrics: ReconcileMetrics,
    health: Health,
    shutdown: Shutdown,
    listener: Option<tokio::net::TcpListener>,
    http_limits: server::HttpLimits,
    shards: Shards,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Process {
    /// A process using `client`, stopped by `shutdown`.
    pub fn new(client: Client, config: ProcessConfig, shutdown: Shutdown) -> Self {
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        registry.register_collector(Box::new(crate::process_metrics::ProcessCollector));
        let shards = match &config.shards {
            Some(c) if c.count > 1 => Shards::new(c.count, &mut registry),
            _ => Shards::unsharded(),
        };
        Self {
            client,
            config,
            registry,
            metrics,
            health: Health::default(),
            shutdown,
            listener: None,
            http_limits: server::HttpLimits::default(),
            shards,
        }
    }

    /// This replica's shards: components reconcile on every replica when they are sharded
    /// ([`Shards::is_sharded`]), each object only while its shard is held here.
    pub fn shards(&self) -> Shards {
        self.shards.clone()
    }

    /// Sets the limits of the process's HTTP endpoints (this one and the components').
    pub fn set_http_limits(&mut self, limits: server::HttpLimits) {
        self.http_limits = limits;
    }

    /// The limits of the process's HTTP endpoints.
    pub fn http_limits(&self) -> &server::HttpLimits {
        &self.http_limits
    }

    /// Binds the metrics and health endpoint now (otherwise [`Process::run`] does) and returns
    /// its address, e.g. to learn the port chosen for `127.0.0.1:0`.
    pub async fn bind_metrics(&mut self) -> Result<std::net::SocketAddr> {
        let listener = server::bind(&self.config.metrics_addr).await?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: self.config.metrics_addr.clone(),
            source,
        })?;
        self.listener = Some(listener);
        Ok(addr)
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The registry components add their metric families to.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The runtime's reconcile metrics, for [`crate::run`].
    pub fn reconcile_metrics(&self) -> ReconcileMetrics {
        self.metrics.clone()
    }

    /// The process shutdown signal.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Runs the components until shutdown (`Ok`), a task error, or loss of the Lease.
    pub async fn run(self, components: Vec<Component>) -> Result<()> {
        let Self {
            client,
            config,
            registry,
            metrics,
            health,
            shutdown,
            listener,
            http_limits,
            shards,
        } = self;
        let listener = match listener {
            Some(l) => l,
            None => server::bind(&config.metrics_addr).await?,
        };
        tracing::info!(addr = %config.metrics_addr, "serving /metrics, /healthz, /readyz");
        let mut metrics_server = AbortOnDrop(tokio::spawn(server::serve(
            listener,
            server::router(Arc::new(registry), health.clone()),
            http_limits,
            shutdown.clone(),
        )));

        // A JoinSet: dropping this future (a test's stand-in for SIGKILL) aborts every task.
        let mut always: JoinSet<(&'static str, TaskResult)> = JoinSet::new();
        if let Some(shard_config) = config.shards.clone().filter(|_| shards.is_sharded()) {
            let keeper = shards.keep(client.clone(), shard_config, shutdown.clone());
            always.spawn(async move { ("shards", keeper.await) });
        }
        let mut leader_tasks = Vec::new();
        for component in components {
            let name = component.name;
            for task in component.always {
                always.spawn(async move { (name, task.await) });
            }
            leader_tasks.push((name, component.leader));
        }
        health.set_ready(true);

        let leader = lead(
            client,
            config.leader_election,
            leader_tasks,
            &metrics,
            &shutdown,
        );
        let always_failed = async {
            while let Some(joined) = always.join_next().await {
                match joined {
                    Ok((name, Err(message))) => {
                        return Err(Error::Component {
                            component: name,
                            message,
                        });
                    }
                    Ok((name, Ok(()))) => tracing::debug!(component = name, "task finished"),
                    Err(e) => tracing::error!(error = %e, "task panicked"),
                }
            }
            std::future::pending().await
        };
        let result = tokio::select! {
            r = leader => r,
            r = always_failed => r,
        };
        shutdown.trigger();
        while always.join_next().await.is_some() {}
        if let Ok(Err(e)) = (&mut metrics_server.0).await {
            tracing::warn!(error = %e, "metrics server");
        }
        result
    }
}

/// Waits for the Lease (if any), runs the leader tasks, renews the Lease meanwhile.
async fn lead(
    client: Client,
    lease: Option<LeaseConfig>,
    tasks: Vec<(&'static str, LeaderTask)>,
    metrics: &ReconcileMetrics,
    shutdown: &Shutdown,
) -> Result<()> {
    let Some(lease) = lease else {
        metrics.set_leader(true);
        let result = run_leader_tasks(tasks, shutdown.clone()).await;
        metrics.set_leader(false);
        return result;
    };
    let mut elector = LeaderElector::new(client, lease);
    let retry = elector.config().retry_period;
    // Candidate: try until we hold the Lease or shut down.
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election: cannot read or write the Lease"),
        }
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            () = tokio::time::sleep(retry) => {}
        }
    }
    let lease_ref = elector.config().lease_ref();
    tracing::info!(lease = %lease_ref, identity = %elector.config().identity, "became leader");
    metrics.set_leader(true);
    let leader_shutdown = Shutdown::new();
    let mut work = AbortOnDrop(tokio::spawn(run_leader_tasks(
        tasks,
        leader_shutdown.clone(),
    )));
    let mut last_renew = Instant::now();
    let deadline = elector.config().renew_deadline;
    let outcome = loop {
        tokio::select! {
            () = shutdown.wait() => break Ok(()),
            joined = &mut work.0 => {
                metrics.set_leader(false);
                elector.release().await;
                return joined.unwrap_or(Ok(()));
            }
            () = tokio::time::sleep(retry) => {
                match elector.try_acquire_or_renew().await {
                    Ok(true) => last_renew = Instant::now(),
                    Ok(false) => break Err(Error::LostLeadership { lease: lease_ref.clone() }),
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election: cannot renew the Lease");
                        if last_renew.elapsed() >= deadline {
                            break Err(Error::LostLeadership { lease: lease_ref.clone() });
                        }
                    }
                }
            }
        }
    };
    leader_shutdown.trigger();
    let _ = (&mut work.0).await;
    metrics.set_leader(false);
    if outcome.is_ok() {
        elector.release().await;
    } else {
        tracing::error!(lease = %lease_ref, "lost the leader Lease; stopping");
    }
    outcome
}

async fn run_leader_tasks(
    tasks: Vec<(&'static str, LeaderTask)>,
    shutdown: Shutdown,
) -> Result<()> {
    let mut running = JoinSet::new();
    for (name, start) in tasks {
        let fut = start(shutdown.clone());
        running.spawn(async move { (name, fut.await) });
    }
    let mut first_error = None;
    while let Some(joined) = running.join_next().await {
        if let Ok((name, Err(message))) = joined {
            shutdown.trigger();
            first_error.get_or_insert(Error::Component {
                component: name,
                message,
            });
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A spawned task that is aborted when its handle is dropped, so that dropping a [`Process`]'s
/// future stops all its work at once, as a killed process would.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
