//! `hush controller`: runs hush's controllers in one process (`--controllers sealed,external`:
//! SealedSecrets, and ExternalSecrets with their stores). Bitnami's controller flags keep their names and their
//! `SEALED_SECRETS_<FLAG>` variables; every such flag can also be given as `HUSH_<FLAG>`
//! (precedence: command line, then `HUSH_*`, then `SEALED_SECRETS_*`, then the default). hush's
//! own flags read `HUSH_*`.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::ArgAction;
use hush_crypto::Entropy as _;
use hush_operator::leader::LeaseConfig;
use hush_operator::logging::LogFormat;
use hush_operator::{Process, ProcessConfig, ShardConfig, Shutdown};
use hush_sealed_controller::{Config, KeyOrderPriority, Namespaces};

/// Where a pod's service-account namespace is mounted.
const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn duration(s: &str) -> Result<Duration, String> {
    hush_operator::duration::parse(s)
}

/// `hush controller` flags.
#[derive(Debug, clap::Args)]
#[command(about = "Run hush's controllers (SealedSecret, ExternalSecret) against a cluster")]
pub(crate) struct Args {
    /// Controllers to run: a comma-separated list of `sealed`, `external` (default: all
    /// available).
    #[arg(
        long,
        env = "HUSH_CONTROLLERS",
        value_delimiter = ',',
        default_value = "sealed"
    )]
    controllers: Vec<String>,

    /// Namespace of the sealing keys and the leader Lease [default: $POD_NAMESPACE, else the
    /// service-account namespace, else `default`].
    #[arg(long, env = "HUSH_KEY_NAMESPACE")]
    key_namespace: Option<String>,

    /// Prefix (generateName) of key Secrets; also the name of the legacy key Secret.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_PREFIX",
        default_value = "sealed-secrets-key"
    )]
    key_prefix: String,
    /// Size of new RSA keys in bits.
    #[arg(long, env = "SEALED_SECRETS_KEY_SIZE", default_value_t = 4096)]
    key_size: usize,
    /// Validity of new certificates (Go duration).
    #[arg(long, env = "SEALED_SECRETS_KEY_TTL", default_value = "87600h", value_parser = duration)]
    key_ttl: Duration,
    /// Common name of new certificates.
    #[arg(long, env = "SEALED_SECRETS_MY_CN", default_value = "")]
    my_cn: String,
    /// New key every period (Go duration); 0 disables renewal.
    #[arg(long, alias = "rotate-period", env = "SEALED_SECRETS_KEY_RENEW_PERIOD",
          default_value = "720h", value_parser = duration)]
    key_renew_period: Duration,
    /// Generate a key at start if the newest is older than this time (RFC 1123 with numeric
    /// zone, `date -R`).
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME")]
    key_cutoff_time: Option<String>,
    /// How the newest key is chosen: CertNotBefore or SecretCreationTimestamp.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_ORDER_PRIORITY",
        default_value = "CertNotBefore"
    )]
    key_order_priority: KeyOrderPriority,
    /// Labels of new key Secrets, `k=v,…`.
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "")]
    privatekey_labels: String,
    /// Annotations of new key Secrets, `k=v,…`.
    #[arg(
        long,
        env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS",
        default_value = ""
    )]
    privatekey_annotations: String,

    // Every boolean flag below repeats `action = ArgAction::Set, num_args = 0..=1,
    // default_missing_value = "true"`: Go's flag package takes `--flag`, `--flag=true` and
    // `--flag=false`. Deliberate: clap's derive cannot name a set of attributes once, and a
    // `mut_args` pass over the command would hide each flag's syntax from its field.
    /// Accept the deprecated v1 `spec.data`.
    #[arg(long, env = "SEALED_SECRETS_ACCEPT_DEPRECATED_V1_DATA", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    accept_deprecated_v1_data: bool,
    /// Reconcile SealedSecrets in every namespace (false: the key namespace only).
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    all_namespaces: bool,
    /// Also reconcile these namespaces (comma-separated; implies the key namespace plus these).
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    additional_namespaces: String,
    /// Only reconcile SealedSecrets matching this label selector.
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR", default_value = "")]
    label_selector: String,
    /// Write `.status` of SealedSecrets.
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    update_status: bool,
    /// Do not watch Secrets (deleted or edited Secrets come back only at the resync).
    #[arg(long, env = "SEALED_SECRETS_SKIP_RECREATE", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    skip_recreate: bool,
    /// Accepted for compatibility: hush always watches key Secrets.
    #[arg(long, env = "SEALED_SECRETS_WATCH_FOR_SECRETS", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    watch_for_secrets: bool,
    /// Quick retries of a failed unseal before waiting for a change or the resync.
    #[arg(long, env = "SEALED_SECRETS_MAX_UNSEAL_RETRIES", default_value_t = 5)]
    max_unseal_retries: u32,
    /// Not supported: Secrets are removed by Kubernetes' garbage collector through their
    /// ownerReference. Setting it to true is an error.
    #[arg(long, env = "SEALED_SECRETS_OLD_GC_BEHAVIOR", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    old_gc_behavior: bool,

    /// `/v1/verify` requests per second per client (the peer address; `X-Forwarded-For` only
    /// from `--trusted-proxies`); 0 disables the limit.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2.0)]
    rate_limit: f64,
    /// `/v1/verify` burst per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    rate_limit_burst: u32,
    /// `/v1/rotate` requests per second per client; 0 disables the limit.
    #[arg(long, env = "HUSH_ROTATE_RATE_LIMIT", default_value_t = 10.0)]
    rotate_rate_limit: f64,
    /// `/v1/rotate` burst per client.
    #[arg(long, env = "HUSH_ROTATE_RATE_LIMIT_BURST", default_value_t = 20)]
    rotate_rate_limit_burst: u32,
    /// Proxies (addresses or ranges, comma-separated: `10.0.0.0/8,fd00::/8`) whose
    /// `X-Forwarded-For` names the client for the rate limits. From any other peer the header
    /// is ignored: a client could otherwise pick a new name for every request.
    #[arg(long, env = "HUSH_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<hush_sealed_controller::config::Cidr>,
    /// RSA private-key operations one SealedSecret's unseal may cost in a reconcile (one per key
    /// tried on a value); values left when it is spent fail the SealedSecret.
    #[arg(long, env = "HUSH_MAX_DECRYPT_OPERATIONS", default_value_t = 10_000)]
    max_decrypt_operations: usize,
    /// RSA private-key operations one `/v1/verify` or `/v1/rotate` request may cost.
    #[arg(long, env = "HUSH_API_MAX_DECRYPT_OPERATIONS", default_value_t = 1_000)]
    api_max_decrypt_operations: usize,
    /// `/v1/verify` and `/v1/rotate` requests decrypting at once [default: half the cores, at
    /// least 1]; apart from the reconciles' decryption slots.
    #[arg(long, env = "HUSH_API_WORKERS")]
    api_workers: Option<usize>,
    /// Address of the HTTP API.
    #[arg(long, env = "SEALED_SECRETS_LISTEN_ADDR", default_value = ":8080")]
    listen_addr: String,
    /// Address of the metrics and health endpoint.
    #[arg(
        long,
        env = "SEALED_SECRETS_LISTEN_METRICS_ADDR",
        default_value = ":8081"
    )]
    listen_metrics_addr: String,
    /// Time to receive a request's body, on the HTTP API and the metrics endpoint.
    #[arg(long, env = "SEALED_SECRETS_READ_TIMEOUT", default_value = "2m", value_parser = duration)]
    read_timeout: Duration,
    /// Time to answer a request, and the longest a client may leave the answer unread.
    #[arg(long, env = "SEALED_SECRETS_WRITE_TIMEOUT", default_value = "2m", value_parser = duration)]
    write_timeout: Duration,
    /// Time to send a request's head (line and headers); also closes idle keep-alive
    /// connections (slowloris).
    #[arg(long, env = "HUSH_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    http_header_timeout: Duration,
    /// Largest request body in bytes.
    #[arg(long, env = "HUSH_HTTP_MAX_BODY_BYTES", default_value_t = 3 * 1024 * 1024)]
    http_max_body_bytes: usize,
    /// Largest request head (line and headers) in bytes (at least 8192).
    #[arg(long, env = "HUSH_HTTP_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    http_max_header_bytes: usize,
    /// Open connections at once per HTTP endpoint; more are closed unanswered.
    #[arg(long, env = "HUSH_HTTP_MAX_CONNECTIONS", default_value_t = 512)]
    http_max_connections: usize,
    /// Open connections at once from one client address per HTTP endpoint.
    #[arg(
        long,
        env = "HUSH_HTTP_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 32
    )]
    http_max_connections_per_client: usize,

    /// Kubernetes client requests per second; 0 or less disables the limit.
    #[arg(
        long,
        env = "SEALED_SECRETS_KUBECLIENT_QPS",
        default_value_t = 1000.0,
        allow_negative_numbers = true
    )]
    kubeclient_qps: f32,
    /// Kubernetes client burst.
    #[arg(long, env = "SEALED_SECRETS_KUBECLIENT_BURST", default_value_t = 2000)]
    kubeclient_burst: u32,

    /// Log level: error, warn, info, debug, trace, or a tracing filter (`info,kube=warn`).
    #[arg(long, env = "SEALED_SECRETS_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format: text or json.
    #[arg(long, env = "SEALED_SECRETS_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Accepted for compatibility: hush logs everything to stderr.
    #[arg(long, env = "SEALED_SECRETS_LOG_INFO_STDOUT", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    log_info_stdout: bool,

    /// SealedSecrets, and ExternalSecrets, reconciled at once (`--concurrent` is ESO's name;
    /// ESO's default is 1).
    #[arg(
        long,
        visible_alias = "concurrent",
        env = "HUSH_CONCURRENCY",
        default_value_t = 8
    )]
    concurrency: u16,
    /// Every SealedSecret is reconciled again after this period (Go duration).
    #[arg(long, env = "HUSH_RESYNC_PERIOD", default_value = "30m", value_parser = duration)]
    resync_period: Duration,
    /// Retire sealing keys older than this (Go duration) that no SealedSecret needs: relabelled
    /// `sealed-secrets-key: retired`, with an event and a metric; checked every resync period
    /// (0: never, the default). Not with --label-selector or --update-status=false.
    #[arg(long, env = "HUSH_KEY_RETIRE_AFTER", default_value = "0", value_parser = duration)]
    key_retire_after: Duration,
    /// Elect a leader on a Lease: only the leader reconciles and creates keys; every replica
    /// serves the HTTP API.
    #[arg(long, env = "HUSH_LEADER_ELECT", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_elect: bool,
    /// Namespace of the leader Lease [default: the key namespace].
    #[arg(long, env = "HUSH_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "HUSH_LEADER_ELECTION_ID",
        default_value = "hush-controller"
    )]
    leader_election_id: String,
    /// This replica's identity in the Lease [default: $POD_NAME or the host name, plus a random
    /// suffix].
    #[arg(long, env = "HUSH_LEADER_ELECTION_IDENTITY")]
    leader_election_identity: Option<String>,
    /// Spread reconciling over the replicas: objects map to this many shards by a hash of
    /// `namespace/name`, each shard held through a Lease `<leader-election-id>-shard-<i>`, and
    /// every replica reconciles the shards it holds (1: the leader reconciles everything). Needs
    /// --leader-elect (keys are still made by the leader alone). Most: 256.
    #[arg(long, env = "HUSH_SHARDS", default_value_t = 1)]
    shards: u32,

    /// ExternalSecret controller: only stores whose `spec.controller` is empty or this class are
    /// handled (ESO's `--controller-class`), so hush and ESO can run side by side.
    #[arg(long, env = "HUSH_CONTROLLER_CLASS", default_value = "default")]
    controller_class: String,
    /// ExternalSecret controller: left delimiter of `target.template` templates (ESO's
    /// `--template-left-delimiter`, e.g. `<<` for manifests that Helm renders too).
    #[arg(long, env = "HUSH_TEMPLATE_LEFT_DELIMITER", default_value = "{{")]
    template_left_delimiter: String,
    /// ExternalSecret controller: right delimiter of `target.template` templates.
    #[arg(long, env = "HUSH_TEMPLATE_RIGHT_DELIMITER", default_value = "}}")]
    template_right_delimiter: String,
    /// ExternalSecret controller: watch ExternalSecrets, SecretStores, PushSecrets and their
    /// Secrets in this namespace only (ESO's `--namespace`); ClusterSecretStores are still
    /// read, ClusterExternalSecrets and ClusterPushSecrets are not reconciled [default: all].
    #[arg(long, env = "HUSH_NAMESPACE")]
    namespace: Option<String>,
    /// ExternalSecret controller: revalidate a SecretStore or ClusterSecretStore that sets no
    /// `refreshInterval` this often (Go duration; ESO's flag of the same name).
    #[arg(long, env = "HUSH_STORE_REQUEUE_INTERVAL", default_value = "5m", value_parser = duration)]
    store_requeue_interval: Duration,
    /// ExternalSecret controller: ESO's flood gate: do not fetch through a store whose `Ready`
    /// condition is not True; the ExternalSecret fails naming the store and is retried.
    /// Default false (ESO: true): hush holds a failed store client back for 5 s instead, so a
    /// recovered provider is used at once.
    #[arg(long, env = "HUSH_ENABLE_FLOOD_GATE", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_flood_gate: bool,
    /// ExternalSecret controller: validate ClusterSecretStores and write their status (ESO's
    /// flag of the same name). Off, they are still used.
    #[arg(long, env = "HUSH_ENABLE_CLUSTER_STORE_RECONCILER", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_cluster_store_reconciler: bool,
    /// ExternalSecret controller: fan out ClusterExternalSecrets (ESO's flag of the same name).
    /// They have no controller class: set false while ESO still does it.
    #[arg(long, env = "HUSH_ENABLE_CLUSTER_EXTERNAL_SECRET_RECONCILER", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_cluster_external_secret_reconciler: bool,
    /// ExternalSecret controller: reconcile PushSecrets (ESO's flag of the same name).
    #[arg(long, env = "HUSH_ENABLE_PUSH_SECRET_RECONCILER", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_push_secret_reconciler: bool,
    /// ExternalSecret controller: fan out ClusterPushSecrets (ESO's flag of the same name;
    /// only without a watched namespace).
    #[arg(long, env = "HUSH_ENABLE_CLUSTER_PUSH_SECRET_RECONCILER", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_cluster_push_secret_reconciler: bool,
    /// ExternalSecret controller: let SecretStores authenticate as the controller itself (Vault
    /// `kubernetes` auth without serviceAccountRef/secretRef sends the controller's own token; an
    /// AWS store without auth uses the controller's AWS credentials), as ESO does. A risk: whoever
    /// may write a SecretStore in one namespace then borrows the controller's identity
    /// (docs/security.md). ClusterSecretStores always may.
    #[arg(long, env = "HUSH_SECRET_STORES_USE_CONTROLLER_IDENTITY", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    secret_stores_use_controller_identity: bool,
    /// Budgets of the templates both controllers render (SealedSecret `spec.template.data`,
    /// ExternalSecret `target.template`, `templateFrom` and rewrite transforms).
    #[command(flatten)]
    template: crate::template_limits::TemplateLimitArgs,
    /// ExternalSecret controller: `target.template` renders at once, on blocking threads of
    /// their own [default: the number of cores].
    #[arg(long, env = "HUSH_TEMPLATE_WORKERS")]
    template_workers: Option<usize>,
    /// ExternalSecret controller: time one ExternalSecret's templates may take to render; over
    /// it the ExternalSecret fails with a template error.
    #[arg(long, env = "HUSH_TEMPLATE_TIMEOUT", default_value = "10s", value_parser = duration)]
    template_timeout: Duration,
    /// ExternalSecret controller: request timeout of a webhook store that sets no `timeout`.
    #[arg(long, env = "HUSH_WEBHOOK_TIMEOUT", default_value = "30s", value_parser = duration)]
    webhook_timeout: Duration,
    /// ExternalSecret controller: the largest `timeout` a webhook store may set (a longer one
    /// makes the store Ready=False).
    #[arg(long, env = "HUSH_WEBHOOK_MAX_TIMEOUT", default_value = "5m", value_parser = duration)]
    webhook_max_timeout: Duration,
    /// ExternalSecret controller: the largest webhook response body read; a larger one fails
    /// the read.
    #[arg(long, env = "HUSH_WEBHOOK_MAX_RESPONSE_BYTES", default_value_t = 1024 * 1024)]
    webhook_max_response_bytes: usize,
    /// ExternalSecret controller: time one request of a `kubernetes` store to its API server
    /// may take.
    #[arg(long, env = "HUSH_KUBERNETES_PROVIDER_TIMEOUT", default_value = "30s", value_parser = duration)]
    kubernetes_provider_timeout: Duration,
    /// ExternalSecret controller: the largest answer a `kubernetes` store reads (a Secret, a
    /// LIST page of 16); a larger one fails the read.
    #[arg(long, env = "HUSH_KUBERNETES_PROVIDER_MAX_RESPONSE_BYTES", default_value_t = hush_sync::kubernetes::MAX_RESPONSE_BYTES)]
    kubernetes_provider_max_response_bytes: usize,
    /// ExternalSecret controller: the most Secrets a `kubernetes` store's `find` returns; more
    /// fails the ExternalSecret.
    #[arg(long, env = "HUSH_KUBERNETES_PROVIDER_MAX_FIND_SECRETS", default_value_t = hush_sync::kubernetes::MAX_FIND)]
    kubernetes_provider_max_find_secrets: usize,
    /// ExternalSecret controller: the most bytes a `kubernetes` store's `find` reads; more
    /// fails the ExternalSecret.
    #[arg(long, env = "HUSH_KUBERNETES_PROVIDER_MAX_FIND_BYTES", default_value_t = hush_sync::kubernetes::MAX_FIND_BYTES)]
    kubernetes_provider_max_find_bytes: usize,
    /// ExternalSecret controller: serve the refresh-on-demand endpoint (`POST
    /// /v1/namespaces/NS/externalsecrets/NAME/refresh` and the store forms), authenticated with
    /// a TokenReview and authorized with a SubjectAccessReview for `patch` (docs/security.md).
    #[arg(long, env = "HUSH_ENABLE_REFRESH_ENDPOINT", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_refresh_endpoint: bool,
    /// ExternalSecret controller: address of the refresh endpoint.
    #[arg(long, env = "HUSH_REFRESH_ENDPOINT_ADDR", default_value = ":8082")]
    refresh_endpoint_addr: String,
    /// ExternalSecret controller: a caller's token must be for this audience (repeatable, or
    /// comma-separated) [default: the API server's own audiences].
    #[arg(long, env = "HUSH_REFRESH_TOKEN_AUDIENCE", value_delimiter = ',')]
    refresh_token_audience: Vec<String>,
    /// ExternalSecret controller: refresh requests a second over all callers, before any token
    /// is checked; more answer 429.
    #[arg(long, env = "HUSH_REFRESH_RATE", default_value_t = 5.0)]
    refresh_rate: f64,
    /// ExternalSecret controller: refresh requests at once above `--refresh-rate`.
    #[arg(long, env = "HUSH_REFRESH_BURST", default_value_t = 20)]
    refresh_burst: u32,
    /// ExternalSecret controller: an ExternalSecret whose refresh was requested less than this
    /// ago is not requested again (429).
    #[arg(long, env = "HUSH_REFRESH_MIN_INTERVAL", default_value = "5s", value_parser = duration)]
    refresh_min_interval: Duration,
    /// ExternalSecret controller: the most ExternalSecrets one store refresh may request; a
    /// store with more answers 422.
    #[arg(long, env = "HUSH_REFRESH_MAX_OBJECTS", default_value_t = 1000)]
    refresh_max_objects: usize,
}

/// Adds `--flag=value` for every `HUSH_<FLAG>` variable that stands for a Bitnami flag
/// (`SEALED_SECRETS_<FLAG>`) not given on the command line, so `HUSH_*` wins over
/// `SEALED_SECRETS_*`. Only applies to `hush controller …`.
pub(crate) fn with_hush_env(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).and_then(|a| a.to_str()) != Some("controller") {
        return args;
    }
    let given = |long: &str, args: &[OsString]| {
        args.iter()
            .filter_map(|a| a.to_str())
            .any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")))
    };
    let mut extra = Vec::new();
    for arg in <Args as clap::Args>::augment_args(clap::Command::new("controller")).get_arguments()
    {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let Some(suffix) = env.to_str().and_then(|e| e.strip_prefix("SEALED_SECRETS_")) else {
            continue;
        };
        if let Some(value) = std::env::var_os(format!("HUSH_{suffix}"))
            && !given(long, &args)
        {
            let mut flag = OsString::from(format!("--{long}="));
            flag.push(value);
            extra.push(flag);
        }
    }
    args.splice(2..2, extra);
    args
}

fn key_namespace(flag: Option<String>) -> String {
    if let Some(ns) = flag.filter(|s| !s.is_empty()) {
        return ns;
    }
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.is_empty()
    {
        return ns;
    }
    if let Ok(ns) = std::fs::read_to_string(SA_NAMESPACE_FILE) {
        let ns = ns.trim();
        if !ns.is_empty() {
            return ns.to_owned();
        }
    }
    "default".to_owned()
}

fn identity() -> Result<String> {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "hush".to_owned());
    let mut suffix = [0u8; 4];
    hush_crypto::SystemEntropy
        .fill(&mut suffix)
        .context("random identity suffix")?;
    Ok(format!("{base}_{}", hex_lower(&suffix)))
}

/// `--shards` as the process's shard settings (`None` for one shard).
fn shard_config(args: &Args, namespace: String, identity: String) -> Result<Option<ShardConfig>> {
    if args.shards == 1 {
        return Ok(None);
    }
    if !args.leader_elect {
        bail!(
            "--shards {} needs --leader-elect: sealing keys are made by one leader",
            args.shards
        );
    }
    let config = ShardConfig::new(
        args.shards,
        namespace,
        args.leader_election_id.clone(),
        identity,
    );
    config.validate()?;
    Ok(Some(config))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sealed_config(a: &Args, key_ns: &str) -> Result<Config> {
    let mut c = Config::new(key_ns);
    c.key_prefix.clone_from(&a.key_prefix);
    c.key_size = a.key_size;
    c.key_ttl = a.key_ttl;
    c.my_cn.clone_from(&a.my_cn);
    c.key_renew_period = a.key_renew_period;
    c.key_cutoff_time = match a.key_cutoff_time.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(
            k8s_openapi::jiff::fmt::rfc2822::parse(text)
                .with_context(|| {
                    format!("--key-cutoff-time {text:?} is not RFC 1123Z (`date -R`)")
                })?
                .timestamp()
                .as_second(),
        ),
    };
    c.key_order_priority = a.key_order_priority;
    c.privatekey_labels = hush_sealed_controller::config::parse_key_values(&a.privatekey_labels)
        .map_err(|e| anyhow::anyhow!("--privatekey-labels: {e}"))?;
    c.privatekey_annotations =
        hush_sealed_controller::config::parse_key_values(&a.privatekey_annotations)
            .map_err(|e| anyhow::anyhow!("--privatekey-annotations: {e}"))?;
    let additional: Vec<String> = a
        .additional_namespaces
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    c.namespaces = if a.all_namespaces && additional.is_empty() {
        Namespaces::All
    } else {
        let mut list = vec![key_ns.to_owned()];
        list.extend(additional.into_iter().filter(|n| n != key_ns));
        Namespaces::List(list)
    };
    c.label_selector = Some(a.label_selector.clone()).filter(|s| !s.is_empty());
    c.update_status = a.update_status;
    c.skip_recreate = a.skip_recreate;
    c.accept_deprecated_v1_data = a.accept_deprecated_v1_data;
    c.max_unseal_retries = a.max_unseal_retries;
    c.resync_period = a.resync_period;
    c.key_retire_after = a.key_retire_after;
    c.listen_addr.clone_from(&a.listen_addr);
    c.rate_limit = a.rate_limit;
    c.rate_limit_burst = a.rate_limit_burst;
    c.rotate_rate_limit = a.rotate_rate_limit;
    c.rotate_rate_limit_burst = a.rotate_rate_limit_burst;
    c.trusted_proxies.clone_from(&a.trusted_proxies);
    c.max_decrypt_operations = a.max_decrypt_operations;
    c.api_max_decrypt_operations = a.api_max_decrypt_operations;
    if let Some(workers) = a.api_workers {
        c.api_workers = workers.max(1);
    }
    c.concurrency = a.concurrency.max(1);
    c.template_limits = a.template.limits();
    Ok(c)
}

fn http_limits(a: &Args) -> hush_operator::server::HttpLimits {
    hush_operator::server::HttpLimits {
        header_timeout: a.http_header_timeout,
        read_timeout: a.read_timeout,
        write_timeout: a.write_timeout,
        max_body_bytes: a.http_max_body_bytes,
        max_header_bytes: a.http_max_header_bytes,
        max_connections: a.http_max_connections,
        max_connections_per_client: a.http_max_connections_per_client,
    }
}

/// Runs the controllers until SIGTERM/SIGINT.
pub(crate) fn run(args: Args) -> Result<std::process::ExitCode> {
    hush_operator::logging::init(args.log_format, &args.log_level)?;
    if args.old_gc_behavior {
        bail!(
            "--old-gc-behavior is not supported: Secrets are garbage-collected through their ownerReference"
        );
    }
    let (mut sealed, mut external) = (false, false);
    for c in &args.controllers {
        match c.trim() {
            "sealed" => sealed = true,
            "external" => external = true,
            "" => {}
            other => bail!("--controllers: unknown controller {other:?} (sealed, external)"),
        }
    }
    if !sealed && !external {
        bail!("--controllers: nothing to run");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run_async(args: Args) -> Result<()> {
    let key_ns = key_namespace(args.key_namespace.clone());
    let client = hush_operator::client::build(args.kubeclient_qps, args.kubeclient_burst).await?;
    let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
    let lease_ns = args
        .leader_election_namespace
        .clone()
        .unwrap_or_else(|| key_ns.clone());
    let replica = match &args.leader_election_identity {
        Some(id) => id.clone(),
        None => identity()?,
    };
    let leader_election = args.leader_elect.then(|| {
        LeaseConfig::new(
            lease_ns.clone(),
            args.leader_election_id.clone(),
            replica.clone(),
        )
    });
    let shards = shard_config(&args, lease_ns, replica)?;
    let mut process = Process::new(
        client,
        ProcessConfig {
            metrics_addr: args.listen_metrics_addr.clone(),
            leader_election,
            shards,
        },
        shutdown,
    );
    process.set_http_limits(http_limits(&args));
    tracing::info!(key_namespace = %key_ns, version = env!("CARGO_PKG_VERSION"), "hush controller starting");
    let wants = |name: &str| args.controllers.iter().any(|c| c.trim() == name);
    let mut components = Vec::new();
    if wants("sealed") {
        let config = sealed_config(&args, &key_ns)?;
        let started = hush_sealed_controller::start(&mut process, config).await?;
        components.push(started.component);
    }
    if wants("external") {
        let config = external_config(&args)?;
        let refresh = refresh_settings(&args, &config)?;
        let mut component = hush_external_controller::start(&mut process, config);
        if let Some(settings) = refresh {
            let listener = hush_operator::server::bind(&args.refresh_endpoint_addr).await?;
            component
                .always
                .push(hush_external_controller::refresh::serve(
                    &mut process,
                    listener,
                    settings,
                ));
        }
        components.push(component);
    }
    process.run(components).await?;
    Ok(())
}

/// The refresh endpoint's settings, when `--enable-refresh-endpoint`.
fn refresh_settings(
    args: &Args,
    external: &hush_external_controller::Config,
) -> Result<Option<hush_external_controller::refresh::Settings>> {
    if !args.enable_refresh_endpoint {
        return Ok(None);
    }
    anyhow::ensure!(
        args.refresh_rate.is_finite() && args.refresh_rate > 0.0,
        "--refresh-rate must be a number above 0"
    );
    anyhow::ensure!(args.refresh_burst > 0, "--refresh-burst must be at least 1");
    anyhow::ensure!(
        args.refresh_max_objects > 0,
        "--refresh-max-objects must be at least 1"
    );
    Ok(Some(hush_external_controller::refresh::Settings {
        audiences: args
            .refresh_token_audience
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        rate: args.refresh_rate,
        burst: args.refresh_burst,
        min_interval: args.refresh_min_interval,
        max_objects: args.refresh_max_objects,
        namespace: external.namespace.clone(),
    }))
}

/// The ExternalSecret controller's settings from the flags (ESO's names where ESO has them).
fn external_config(args: &Args) -> Result<hush_external_controller::Config> {
    anyhow::ensure!(
        !args.store_requeue_interval.is_zero(),
        "--store-requeue-interval must be longer than 0"
    );
    let mut config = hush_external_controller::Config {
        controller_class: args.controller_class.clone(),
        concurrency: args.concurrency,
        cluster_external_secrets: args.enable_cluster_external_secret_reconciler,
        push_secrets: args.enable_push_secret_reconciler,
        namespace: args.namespace.clone().filter(|n| !n.is_empty()),
        store_requeue_interval: args.store_requeue_interval,
        cluster_stores: args.enable_cluster_store_reconciler,
        flood_gate: args.enable_flood_gate,
        cluster_push_secrets: args.enable_cluster_push_secret_reconciler,
        secret_stores_use_controller_identity: args.secret_stores_use_controller_identity,
        template_timeout: args.template_timeout,
        templates: hush_external_controller::templating::TemplateSettings {
            left_delimiter: args.template_left_delimiter.clone(),
            right_delimiter: args.template_right_delimiter.clone(),
            limits: args.template.limits(),
        },
        providers: hush_sync::Settings {
            webhook: hush_sync::webhook::Limits {
                default_timeout: args.webhook_timeout,
                max_timeout: args.webhook_max_timeout,
                max_response_bytes: args.webhook_max_response_bytes,
            },
            kubernetes: hush_sync::kubernetes::Limits {
                timeout: args.kubernetes_provider_timeout,
                max_response_bytes: args.kubernetes_provider_max_response_bytes,
                max_find: args.kubernetes_provider_max_find_secrets,
                max_find_bytes: args.kubernetes_provider_max_find_bytes,
            },
            // The controller's metrics count provider calls (`start` hands them in).
            calls: hush_sync::calls::Calls::default(),
        },
        ..hush_external_controller::Config::default()
    };
    if let Some(workers) = args.template_workers {
        config.template_workers = workers.max(1);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Args` from a command line (without the program name).
    fn args(line: &[&str]) -> Result<Args, clap::Error> {
        use clap::Parser as _;
        #[derive(Debug, clap::Parser)]
        struct T {
            #[command(flatten)]
            a: Args,
        }
        T::try_parse_from(std::iter::once("t").chain(line.iter().copied())).map(|t| t.a)
    }

    #[test]
    fn eso_flag_names_reach_the_external_config() {
        let parse = |line: &[&str]| external_config(&args(line).unwrap_or_else(|e| panic!("{e}")));
        let c = parse(&[
            "--concurrent",
            "3",
            "--namespace",
            "apps",
            "--store-requeue-interval",
            "90s",
            "--enable-cluster-store-reconciler=false",
            "--enable-flood-gate",
            "--enable-push-secret-reconciler=false",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.namespace.as_deref(), Some("apps"));
        assert_eq!(c.store_requeue_interval, Duration::from_secs(90));
        assert!(c.flood_gate && !c.cluster_stores && !c.push_secrets);
        let d = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.namespace, None);
        assert!(!d.flood_gate && d.cluster_stores && d.push_secrets);
        assert_eq!(d.store_requeue_interval, Duration::from_secs(300));
        assert!(parse(&["--store-requeue-interval", "0"]).is_err());
        assert_eq!(
            d.providers.kubernetes,
            hush_sync::kubernetes::Limits::default()
        );
        let k = parse(&[
            "--kubernetes-provider-timeout",
            "5s",
            "--kubernetes-provider-max-response-bytes",
            "1000",
            "--kubernetes-provider-max-find-secrets",
            "7",
            "--kubernetes-provider-max-find-bytes",
            "2000",
        ])
        .unwrap_or_else(|e| panic!("{e}"))
        .providers
        .kubernetes;
        assert_eq!(k.timeout, Duration::from_secs(5));
        assert_eq!(
            (k.max_response_bytes, k.max_find, k.max_find_bytes),
            (1000, 7, 2000)
        );
        // Template delimiters and budgets reach the controller's Config (no process-wide state).
        assert_eq!(
            d.templates.options(),
            hush_external_controller::templating::TemplateSettings::default().options()
        );
        let t = parse(&[
            "--template-left-delimiter",
            "<<",
            "--template-right-delimiter",
            ">>",
            "--template-max-steps",
            "5",
        ])
        .unwrap_or_else(|e| panic!("{e}"))
        .templates;
        assert_eq!(
            (t.left_delimiter.as_str(), t.right_delimiter.as_str()),
            ("<<", ">>")
        );
        assert_eq!(t.limits.max_steps, 5);
    }

    #[test]
    fn refresh_endpoint_flags() {
        let parse = |line: &[&str]| {
            let a = args(line).unwrap_or_else(|e| panic!("{e}"));
            let external = external_config(&a).unwrap_or_else(|e| panic!("{e}"));
            refresh_settings(&a, &external)
        };
        assert_eq!(parse(&[]).unwrap_or_else(|e| panic!("{e}")), None);
        let s = parse(&[
            "--enable-refresh-endpoint",
            "--refresh-token-audience",
            "hush,other",
            "--refresh-rate",
            "0.5",
            "--refresh-burst",
            "3",
            "--refresh-min-interval",
            "30s",
            "--refresh-max-objects",
            "10",
            "--namespace",
            "apps",
        ])
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("enabled"));
        assert_eq!(s.audiences, ["hush", "other"]);
        assert_eq!((s.rate, s.burst, s.max_objects), (0.5, 3, 10));
        assert_eq!(s.min_interval, Duration::from_secs(30));
        assert_eq!(s.namespace.as_deref(), Some("apps"));
        let d = parse(&["--enable-refresh-endpoint=true"])
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enabled"));
        assert_eq!(d, hush_external_controller::refresh::Settings::default());
        for bad in [
            &["--enable-refresh-endpoint", "--refresh-rate", "0"][..],
            &["--enable-refresh-endpoint", "--refresh-rate", "NaN"],
            &["--enable-refresh-endpoint", "--refresh-burst", "0"],
            &["--enable-refresh-endpoint", "--refresh-max-objects", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flag_names_and_env_match_bitnami() {
        let cmd = <Args as clap::Args>::augment_args(clap::Command::new("controller"));
        for arg in cmd.get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let env = env.to_string_lossy();
            let expected = long.to_uppercase().replace('-', "_");
            assert!(
                env == format!("SEALED_SECRETS_{expected}") || env == format!("HUSH_{expected}"),
                "{long} reads {env}"
            );
        }
    }

    #[test]
    fn cutoff_time_and_namespaces() {
        let a = args(&[
            "--key-cutoff-time",
            "Mon, 02 Jan 2006 15:04:05 -0700",
            "--additional-namespaces",
            "a, b",
            "--update-status=false",
            "--key-renew-period",
            "0",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let c = sealed_config(&a, "keys").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.key_cutoff_time, Some(1_136_239_445));
        assert_eq!(
            c.namespaces,
            Namespaces::List(vec!["keys".into(), "a".into(), "b".into()])
        );
        assert!(!c.update_status);
        assert!(c.key_renew_period.is_zero());
    }

    #[test]
    fn limits_reach_the_controllers() {
        let a = args(&[
            "--template-max-steps",
            "500",
            "--trusted-proxies",
            "10.0.0.0/8,fd00::/8",
            "--api-max-decrypt-operations",
            "7",
            "--http-header-timeout",
            "3s",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let c = sealed_config(&a, "keys").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.template_limits.max_steps, 500);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.api_max_decrypt_operations, 7);
        assert_eq!(http_limits(&a).header_timeout, Duration::from_secs(3));
        assert_eq!(a.template.limits().max_steps, 500);
        assert!(args(&["--trusted-proxies", "10.0.0.0/40"]).is_err());
    }
}
