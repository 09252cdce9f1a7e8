//! The reconciler runtime every hush controller runs on (one process, one set of endpoints, any
//! number of controllers):
//!
//! - [`client`]: a kube client from the kubeconfig or the in-cluster environment, with a
//!   client-side QPS/burst limit ([`RateLimitLayer`]).
//! - [`leader`]: leader election on a `coordination.k8s.io/v1` Lease. Only the leader reconciles
//!   and writes; every replica keeps serving its read-only endpoints.
//! - [`shards`]: `--shards K` spreads reconciling over the replicas, one Lease per shard.
//! - [`shutdown`]: SIGTERM/SIGINT become one [`Shutdown`] signal every task can await.
//! - [`metrics`] and [`server`]: one Prometheus endpoint (`/metrics`) and one health endpoint
//!   (`/healthz`, `/readyz`) per process.
//! - [`logging`]: `--log-format text|json`, `--log-level`.
//! - [`run`]: drives a kube-runtime `Controller` with plain `reconcile` / `error_policy`
//!   functions, recording reconcile counts and latency, until shutdown.
//! - [`duration`]: Go's `time.ParseDuration`, for flags shared with Go controllers.
//! - [`events`]: Kubernetes Events posted directly, without kube-runtime's `Recorder` cache.
//! - [`Process`]: puts the above together for the `hush controller` command.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod drift;
pub mod duration;
pub mod events;
pub mod leader;
pub mod logging;
pub mod metrics;
mod process;
pub mod process_metrics;
mod runtime;
pub mod server;
pub mod shards;
pub mod shutdown;

pub use client::RateLimitLayer;
pub use process::{Component, LeaderTask, Process, ProcessConfig};
pub use runtime::{RunConfig, run};
pub use shards::{ShardConfig, Shards, WritePermit};
pub use shutdown::Shutdown;

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No kube configuration could be found or loaded.
    #[error("cannot load the Kubernetes client configuration: {0}")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The kube client could not be built.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed ({what}): {source}")]
    Kube {
        /// What was being done.
        what: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// An endpoint could not listen on its address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// This replica lost the leader Lease while it was reconciling; the process must stop so that
    /// no two replicas write at once.
    #[error("lost the leader Lease {lease}")]
    LostLeadership {
        /// `namespace/name` of the Lease.
        lease: String,
    },
    /// A controller task failed.
    #[error("{component}: {message}")]
    Component {
        /// The component's name.
        component: &'static str,
        /// Its error, displayed.
        message: String,
    },
    /// Logging could not be set up.
    #[error("cannot set up logging: {0}")]
    Logging(String),
    /// A setting has an invalid value.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// Result alias of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A task's outcome: an error is displayed and ends the process.
pub type TaskResult = std::result::Result<(), String>;
