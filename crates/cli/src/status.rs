//! `hush status`: what hush's controllers did, read from the cluster.
//!
//! - SealedSecrets (`bitnami.com`): the `Synced` condition (status, `lastUpdateTime`, reason or
//!   message).
//! - ExternalSecrets (`external-secrets.io`): the `Ready` condition and `status.refreshTime`.
//! - Sealing keys: the active key Secrets (label `sealedsecrets.bitnami.com/sealed-secrets-key:
//!   active`; retired and compromised ones are not sealing keys any more) in the
//!   controller namespace. The controller publishes no renewal schedule, so the age comes from each
//!   certificate's NotBefore and the next renewal is the newest key's NotBefore plus
//!   `--key-renew-period` (the controller's rule; default 720h, as the controller's default). Only
//!   `tls.crt` is read, never `tls.key`, and nothing of a key is printed but its name and times.
//! - Drift corrected: the controllers count each hand edit or deletion of a managed Secret they
//!   put back in annotations on that Secret (`hush.dev/drift-corrected`, `…-at`, see
//!   hush_operator::drift); read from the Secrets' metadata only (a metadata LIST, no data).
//! - Shards (`--shards`): which replica holds which shard, from the shard and member Leases in
//!   the controller namespace (label `hush.dev/shard-group`, see hush_operator::shards).
//!
//! Exit status: 0 when everything read is synced, 1 when something is not synced (or the cluster
//! cannot be reached), 2 when everything read is synced but RBAC (or a missing CRD) hid a part,
//! which is then named on stderr and in the JSON `unreadable` list.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use hush_operator::{drift, shards};
use hush_sealed_controller::reconcile::{KEY_ANNOTATION, annotated_keys};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

/// The active sealing keys (retired and compromised key Secrets carry another value).
const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";

/// `hush status` flags.
#[derive(Debug, clap::Args)]
#[command(about = "Show SealedSecrets, ExternalSecrets and sealing keys with their sync state")]
pub(crate) struct Args {
    /// Only this namespace [default: all namespaces].
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Namespace of the SealedSecret controller's keys (kubeseal's --controller-namespace).
    #[arg(
        long,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    controller_namespace: String,
    /// The controller's `--key-renew-period` (Go duration), to compute the next renewal; 0 means
    /// renewal is off.
    #[arg(long, default_value = "720h", value_parser = renew_period)]
    key_renew_period: Duration,
    /// Output format: `table` or `json`.
    #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
    output: String,
    /// Path to the kubeconfig file [default: $KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    context: Option<String>,
}

fn renew_period(s: &str) -> Result<Duration, String> {
    hush_operator::duration::parse(s)
}

/// One synced object's row.
#[derive(Debug)]
struct Row {
    kind: &'static str,
    namespace: String,
    name: String,
    /// "True", "False" or "Unknown" (no status yet, or status updates off).
    synced: String,
    /// Unix seconds of the last sync, if the status has one.
    last_sync: Option<i64>,
    reason: String,
    /// The managed Secret's name (the target of an ExternalSecret).
    target: String,
    /// Corrections of the managed Secret and the time of the last one (Unix seconds); `None` when
    /// the Secrets' metadata could not be read.
    drift: Option<(u64, Option<i64>)>,
    /// SealedSecrets: the sealing keys (key Secret names) that opened its values, as the
    /// controller records them on the managed Secret; `None` when not recorded (not unsealed
    /// by hush yet, or the Secrets' metadata could not be read).
    keys: Option<Vec<String>>,
}

#[derive(Debug, Default)]
struct KeyRow {
    name: String,
    not_before: i64,
    not_after: i64,
    /// How many SealedSecrets still need this key (`None`: unknown, Secrets unreadable).
    needed_by: Option<usize>,
}

/// One shard or member Lease of a shard group.
#[derive(Debug, Default, Clone)]
struct LeaseRow {
    group: String,
    /// The shard number; `None` for a replica's member Lease.
    shard: Option<u32>,
    /// `holderIdentity` (empty: given back).
    holder: String,
    /// Unix seconds of `renewTime`.
    renewed: Option<i64>,
    /// `leaseDurationSeconds`.
    duration: i64,
}

impl LeaseRow {
    /// Whether a replica holds it now: a holder whose last renewal is within the duration (by
    /// this machine's clock; the controllers judge by their own observation).
    fn held(&self, now: i64) -> bool {
        !self.holder.is_empty() && self.renewed.is_some_and(|t| now - t <= self.duration)
    }
}

#[derive(Debug, Default)]
struct Report {
    rows: Vec<Row>,
    keys: Vec<KeyRow>,
    next_renewal: Option<i64>,
    shards: Vec<LeaseRow>,
    unreadable: Vec<String>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(collect(&args))?;
    let now = unix_now();
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&to_json(&report, now))?);
    } else {
        print!("{}", to_table(&report, now));
    }
    for what in &report.unreadable {
        eprintln!("hush status: could not read {what}");
    }
    Ok(if report.rows.iter().any(|r| r.synced != "True") {
        ExitCode::from(1)
    } else if !report.unreadable.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn client(args: &Args) -> Result<Client> {
    let config = if args.kubeconfig.is_some() || args.context.is_some() {
        let kubeconfig = match &args.kubeconfig {
            Some(path) => Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?,
            None => Kubeconfig::read().context("reading the kubeconfig")?,
        };
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
    } else {
        kube::Config::infer()
            .await
            .context("cannot load the Kubernetes client configuration")?
    };
    Ok(Client::try_from(config)?)
}

/// What a failed read means for the report: a hidden part (403, 404: recorded) or a hard error.
fn hidden(what: String, err: kube::Error, unreadable: &mut Vec<String>) -> Result<()> {
    match &err {
        kube::Error::Api(status) if status.code == 403 => {
            unreadable.push(format!("{what}: forbidden by RBAC"));
            Ok(())
        }
        kube::Error::Api(status) if status.code == 404 => {
            unreadable.push(format!("{what}: not found (CRD not installed?)"));
            Ok(())
        }
        _ => Err(anyhow::Error::new(err).context(format!("reading {what}"))),
    }
}

async fn collect(args: &Args) -> Result<Report> {
    let client = client(args).await?;
    let mut report = Report::default();
    let scope = match &args.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "in all namespaces".to_owned(),
    };
    collect_objects(&client, args, &scope, &mut report).await?;
    if !report.rows.is_empty() {
        collect_managed(&client, args, &scope, &mut report).await?;
    }
    collect_shards(&client, args, &mut report).await?;
    collect_keys(client, args, &mut report).await?;
    report
        .rows
        .sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    report.keys.sort_by_key(|k| k.not_before);
    count_key_use(&mut report);
    let period = i64::try_from(args.key_renew_period.as_secs()).unwrap_or(i64::MAX);
    report.next_renewal = match report.keys.last() {
        Some(newest) if period > 0 => Some(newest.not_before.saturating_add(period)),
        _ => None,
    };
    Ok(report)
}

/// One row per SealedSecret and ExternalSecret in scope.
async fn collect_objects(
    client: &Client,
    args: &Args,
    scope: &str,
    report: &mut Report,
) -> Result<()> {
    let kinds = [
        ("SealedSecret", "bitnami.com", "v1alpha1", "sealedsecrets"),
        (
            "ExternalSecret",
            "external-secrets.io",
            "v1",
            "externalsecrets",
        ),
    ];
    for (kind, group, version, plural) in kinds {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = match &args.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        match api.list(&ListParams::default()).await {
            Ok(list) => report.rows.extend(list.items.iter().map(|o| row(kind, o))),
            Err(e) => hidden(
                format!("{plural}.{group} {scope}"),
                e,
                &mut report.unreadable,
            )?,
        }
    }
    Ok(())
}

/// The drift count and sealing keys that the managed Secrets' annotations record, onto the rows
/// of the objects that own them.
async fn collect_managed(
    client: &Client,
    args: &Args,
    scope: &str,
    report: &mut Report,
) -> Result<()> {
    let managed: Api<Secret> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = match managed.list_metadata(&ListParams::default()).await {
        Ok(list) => list,
        Err(e) => {
            return hidden(
                format!("Secret metadata {scope} (drift corrected unknown)"),
                e,
                &mut report.unreadable,
            );
        }
    };
    let drift: HashMap<(String, String), (u64, Option<i64>)> = list
        .items
        .iter()
        .filter_map(|m| {
            let count = drift::count(m.annotations())?;
            let last = m
                .annotations()
                .get(drift::LAST_ANNOTATION)
                .and_then(|t| parse_rfc3339(t));
            Some(((m.namespace()?, m.name_any()), (count, last)))
        })
        .collect();
    let sealing_keys: HashMap<(String, String), Vec<String>> = list
        .items
        .iter()
        .filter_map(|m| {
            let v = m.annotations().get(KEY_ANNOTATION)?;
            let keys = annotated_keys(v).map(str::to_owned).collect();
            Some(((m.namespace()?, m.name_any()), keys))
        })
        .collect();
    for r in &mut report.rows {
        let key = (r.namespace.clone(), r.target.clone());
        r.drift = Some(drift.get(&key).copied().unwrap_or((0, None)));
        if r.kind == "SealedSecret" {
            r.keys = sealing_keys.get(&key).cloned();
        }
    }
    Ok(())
}

/// The shard Leases in the controller's namespace, sorted.
async fn collect_shards(client: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.controller_namespace);
    match leases
        .list(&ListParams::default().labels(shards::GROUP_LABEL))
        .await
    {
        Ok(list) => report.shards = list.items.iter().filter_map(lease_row).collect(),
        Err(e) => hidden(
            format!("shard Leases in namespace {}", args.controller_namespace),
            e,
            &mut report.unreadable,
        )?,
    }
    report
        .shards
        .sort_by(|a, b| (&a.group, a.shard, &a.holder).cmp(&(&b.group, b.shard, &b.holder)));
    Ok(())
}

/// The sealing key Secrets in the controller's namespace, by their certificates.
async fn collect_keys(client: Client, args: &Args, report: &mut Report) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client, &args.controller_namespace);
    let list = match secrets.list(&ListParams::default().labels(KEY_LABEL)).await {
        Ok(list) => list,
        Err(e) => {
            return hidden(
                format!("key Secrets in namespace {}", args.controller_namespace),
                e,
                &mut report.unreadable,
            );
        }
    };
    for secret in &list.items {
        let cert = secret
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .and_then(|c| hush_crypto::cert::Certificate::from_pem(&c.0).ok());
        match cert {
            Some(c) => report.keys.push(KeyRow {
                name: secret.name_any(),
                not_before: c.not_before,
                not_after: c.not_after,
                needed_by: None,
            }),
            None => report.unreadable.push(format!(
                "key Secret {}/{}: no readable tls.crt",
                args.controller_namespace,
                secret.name_any()
            )),
        }
    }
    Ok(())
}

/// A shard group's Lease as a row; `None` for a Lease without the group's labels.
fn lease_row(lease: &Lease) -> Option<LeaseRow> {
    let labels = lease.labels();
    let group = labels.get(shards::GROUP_LABEL)?.clone();
    let shard = match labels.get(shards::ROLE_LABEL).map(String::as_str) {
        Some("shard") => Some(
            lease
                .name_any()
                .rsplit_once("-shard-")?
                .1
                .parse::<u32>()
                .ok()?,
        ),
        Some("member") => None,
        _ => return None,
    };
    let spec = lease.spec.as_ref();
    Some(LeaseRow {
        group,
        shard,
        holder: spec
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default(),
        renewed: spec
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.as_second()),
        duration: spec
            .and_then(|s| s.lease_duration_seconds)
            .map_or(0, i64::from),
    })
}

/// Per group and replica: the shards it holds now (member Leases name replicas holding none;
/// shards nobody holds now are listed under an empty replica).
fn shard_holders(report: &Report, now: i64) -> Vec<(String, String, Vec<u32>, Option<i64>)> {
    let mut by_replica: std::collections::BTreeMap<(String, String), (Vec<u32>, Option<i64>)> =
        std::collections::BTreeMap::new();
    for l in &report.shards {
        let held = l.held(now);
        match l.shard {
            None if held => {
                let entry = by_replica
                    .entry((l.group.clone(), l.holder.clone()))
                    .or_default();
                entry.1 = l.renewed;
            }
            None => {}
            Some(shard) => {
                let holder = if held {
                    l.holder.clone()
                } else {
                    String::new()
                };
                by_replica
                    .entry((l.group.clone(), holder))
                    .or_default()
                    .0
                    .push(shard);
            }
        }
    }
    by_replica
        .into_iter()
        .map(|((group, replica), (mut shards, renewed))| {
            shards.sort_unstable();
            (group, replica, shards, renewed)
        })
        .collect()
}

/// How many SealedSecrets need each key; unknown for all when the Secrets' metadata was not
/// read (rows then have no drift either).
fn count_key_use(report: &mut Report) {
    let sealed = || report.rows.iter().filter(|r| r.kind == "SealedSecret");
    if sealed().any(|r| r.drift.is_none()) {
        return;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for keys in sealed().filter_map(|r| r.keys.as_ref()) {
        for k in keys {
            *counts.entry(k.as_str()).or_default() += 1;
        }
    }
    let counts: HashMap<String, usize> =
        counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    for key in &mut report.keys {
        key.needed_by = Some(counts.get(&key.name).copied().unwrap_or(0));
    }
}

/// SealedSecrets whose keys are not recorded (a key they need may show as needed by none).
fn without_recorded_key(report: &Report) -> usize {
    report
        .rows
        .iter()
        .filter(|r| r.kind == "SealedSecret" && r.keys.is_none())
        .count()
}

/// The row of one SealedSecret (`Synced`) or ExternalSecret (`Ready`, `refreshTime`).
fn row(kind: &'static str, obj: &DynamicObject) -> Row {
    let condition_type = if kind == "SealedSecret" {
        "Synced"
    } else {
        "Ready"
    };
    let status = &obj.data["status"];
    let condition = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == condition_type));
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let synced = condition
        .map(|c| text(&c["status"]))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Unknown".to_owned());
    let last_sync = if kind == "SealedSecret" {
        condition.and_then(|c| c["lastUpdateTime"].as_str().and_then(parse_rfc3339))
    } else {
        status["refreshTime"].as_str().and_then(parse_rfc3339)
    };
    let reason = match condition {
        Some(c) => {
            let reason = text(&c["reason"]);
            if reason.is_empty() || synced != "True" && !text(&c["message"]).is_empty() {
                text(&c["message"])
            } else {
                reason
            }
        }
        None => "no status yet".to_owned(),
    };
    let target = obj.data["spec"]["target"]["name"]
        .as_str()
        .filter(|t| kind == "ExternalSecret" && !t.is_empty())
        .map_or_else(|| obj.name_any(), str::to_owned);
    Row {
        kind,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        synced,
        last_sync,
        reason: one_line(&reason),
        target,
        drift: None,
        keys: None,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn to_json(report: &Report, now: i64) -> Value {
    let rows = |kind: &str| -> Vec<Value> {
        report
            .rows
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| {
                json!({
                    "namespace": r.namespace,
                    "name": r.name,
                    "synced": r.synced,
                    "lastSync": r.last_sync.map(format_rfc3339),
                    "lastSyncAgeSeconds": r.last_sync.map(|t| now - t),
                    "reason": r.reason,
                    "driftCorrected": r.drift.map(|(n, _)| n),
                    "lastDriftCorrection": r.drift.and_then(|(_, t)| t).map(format_rfc3339),
                })
            })
            .collect()
    };
    json!({
        "sealedSecrets": rows("SealedSecret"),
        "externalSecrets": rows("ExternalSecret"),
        "keys": report.keys.iter().map(|k| json!({
            "name": k.name,
            "notBefore": format_rfc3339(k.not_before),
            "notAfter": format_rfc3339(k.not_after),
            "ageSeconds": now - k.not_before,
            "neededBy": k.needed_by,
        })).collect::<Vec<_>>(),
        "sealedSecretsWithoutRecordedKey": without_recorded_key(report),
        "shards": report.shards.iter().filter(|l| l.shard.is_some()).map(|l| json!({
            "group": l.group,
            "shard": l.shard,
            "holder": if l.held(now) { Value::from(l.holder.clone()) } else { Value::Null },
            "lastHolder": l.holder,
            "renewTime": l.renewed.map(format_rfc3339),
        })).collect::<Vec<_>>(),
        "shardReplicas": shard_holders(report, now).into_iter()
            .filter(|(_, replica, _, _)| !replica.is_empty())
            .map(|(group, replica, shards, renewed)| json!({
                "group": group,
                "replica": replica,
                "shards": shards,
                "memberRenewTime": renewed.map(format_rfc3339),
            })).collect::<Vec<_>>(),
        "nextKeyRenewal": report.next_renewal.map(format_rfc3339),
        "unreadable": report.unreadable,
    })
}

fn to_table(report: &Report, now: i64) -> String {
    let mut out = String::new();
    if report.rows.is_empty() {
        out.push_str("No SealedSecrets or ExternalSecrets found.\n");
    } else {
        let mut table = vec![
            [
                "KIND",
                "NAMESPACE",
                "NAME",
                "SYNCED",
                "LAST SYNC",
                "DRIFT CORRECTED",
                "REASON",
            ]
            .map(str::to_owned),
        ];
        for r in &report.rows {
            let drift = match r.drift {
                None => "?".to_owned(),
                Some((0, _)) => "0".to_owned(),
                Some((n, None)) => n.to_string(),
                Some((n, Some(t))) => format!("{n} ({} ago)", format_age(now - t)),
            };
            table.push([
                r.kind.to_owned(),
                r.namespace.clone(),
                r.name.clone(),
                r.synced.clone(),
                r.last_sync
                    .map_or_else(|| "-".to_owned(), |t| format_age(now - t)),
                drift,
                r.reason.clone(),
            ]);
        }
        push_columns(&mut out, &table);
    }
    out.push('\n');
    if report.keys.is_empty() {
        out.push_str("No sealing keys found.\n");
    } else {
        let mut table = vec![["SEALING KEY", "AGE", "NOT AFTER", "NEEDED BY"].map(str::to_owned)];
        for k in &report.keys {
            table.push([
                k.name.clone(),
                format_age(now - k.not_before),
                format_rfc3339(k.not_after),
                k.needed_by
                    .map_or("?".to_owned(), |n| format!("{n} SealedSecrets")),
            ]);
        }
        push_columns(&mut out, &table);
        let unknown = without_recorded_key(report);
        if unknown > 0 {
            out.push_str(&format!(
                "{unknown} SealedSecrets have no recorded key (not unsealed by hush yet):                  keep every key until they are synced.
"
            ));
        }
    }
    if let Some(next) = report.next_renewal {
        let when = if next <= now {
            "due now".to_owned()
        } else {
            format!("in {}", format_age(next - now))
        };
        out.push_str(&format!(
            "Next key renewal: {} ({when})\n",
            format_rfc3339(next)
        ));
    }
    push_shards(&mut out, report, now);
    out
}

/// The shard table: each replica of each group with the shards it holds now.
fn push_shards(out: &mut String, report: &Report, now: i64) {
    let holders = shard_holders(report, now);
    if holders.is_empty() {
        return;
    }
    out.push('\n');
    let mut table = vec![["SHARD GROUP", "REPLICA", "SHARDS"].map(str::to_owned)];
    for (group, replica, shards, _) in holders {
        let list = if shards.is_empty() {
            "-".to_owned()
        } else {
            shards
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let replica = if replica.is_empty() {
            "(nobody: free or expired)".to_owned()
        } else {
            replica
        };
        table.push([group, replica, list]);
    }
    push_columns(out, &table);
}

/// Left-aligned columns three spaces apart, as kubectl prints them; the last column unpadded.
fn push_columns<const N: usize>(out: &mut String, table: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in table {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// kubectl's age format: `45s`, `12m`, `5h3m`, `3d4h`, `400d`.
fn format_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        86400..31_536_000 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Unix seconds of a Kubernetes timestamp (Go's `time.Parse(time.RFC3339, s)`); None for
/// anything else.
fn parse_rfc3339(s: &str) -> Option<i64> {
    hush_gocompat::time::parse_rfc3339(s).map(|t| t.unix())
}

/// Go's `time.RFC3339` text of Unix seconds, in UTC.
fn format_rfc3339(t: i64) -> String {
    hush_gocompat::time::Timestamp::from_unix(t).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_bad_input_is_none() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(
            parse_rfc3339("2024-02-29T14:34:56.123+02:00"),
            Some(1_709_210_096)
        );
        assert_eq!(format_rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
        for bad in [
            "",
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-29T12:34:56",
            "2024-02-29T12:34:56+0200",
            "2024-02-29T12:34:56.Z",
            "２０２４-02-29T12:34:56Z",
            "2024-02-29T12:34:56Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(format_age(-5), "0s");
        assert_eq!(format_age(59), "59s");
        assert_eq!(format_age(3599), "59m");
        assert_eq!(format_age(3 * 3600 + 120), "3h2m");
        assert_eq!(format_age(2 * 86400 + 3600), "2d1h");
        assert_eq!(format_age(400 * 86400), "400d");
    }

    #[test]
    fn table_columns_align_and_show_drift() {
        let now = 1_704_153_600;
        let row = |kind, name: &str, drift| Row {
            kind,
            namespace: "ns".into(),
            name: name.into(),
            synced: "True".into(),
            last_sync: Some(now - 60),
            reason: "SecretSynced".into(),
            target: name.into(),
            drift,
            keys: None,
        };
        let report = Report {
            rows: vec![
                row("SealedSecret", "a-long-name", Some((2, Some(now - 300)))),
                row("ExternalSecret", "b", Some((0, None))),
                row("ExternalSecret", "c", None),
            ],
            keys: vec![
                KeyRow {
                    name: "sealed-secrets-keyabcde".into(),
                    not_before: now - 3 * 86400,
                    not_after: now + 86400,
                    needed_by: None,
                },
                KeyRow {
                    name: "k2".into(),
                    not_before: now - 7200,
                    not_after: now + 86400,
                    needed_by: None,
                },
            ],
            next_renewal: Some(now + 3600),
            shards: vec![],
            unreadable: vec![],
        };
        let text = to_table(&report, now);
        let lines: Vec<&str> = text.lines().collect();
        let column = |line: &str, of: &str| line.find(of).unwrap();
        let drift_at = column(lines[0], "DRIFT CORRECTED");
        assert_eq!(column(lines[1], "2 (5m ago)"), drift_at, "{text}");
        assert_eq!(lines[2].get(drift_at..drift_at + 1), Some("0"), "{text}");
        assert_eq!(lines[3].get(drift_at..drift_at + 1), Some("?"), "{text}");
        let keys = lines
            .iter()
            .position(|l| l.starts_with("SEALING KEY"))
            .unwrap();
        let (age_at, after_at) = (column(lines[keys], "AGE"), column(lines[keys], "NOT AFTER"));
        assert_eq!(column(lines[keys + 1], "3d"), age_at, "{text}");
        assert_eq!(column(lines[keys + 2], "2h"), age_at, "{text}");
        assert_eq!(column(lines[keys + 2], "2024-"), after_at, "{text}");
        assert!(
            text.ends_with("Next key renewal: 2024-01-02T01:00:00Z (in 1h0m)\n"),
            "{text}"
        );
        let json = to_json(&report, now);
        assert_eq!(json["sealedSecrets"][0]["driftCorrected"], 2);
        assert_eq!(
            json["sealedSecrets"][0]["lastDriftCorrection"],
            "2024-01-01T23:55:00Z"
        );
        assert_eq!(json["externalSecrets"][1]["driftCorrected"], Value::Null);
    }

    #[test]
    fn keys_are_counted_per_sealed_secret_and_unknown_without_metadata() {
        let sealed = |name: &str, keys: Option<&[&str]>| Row {
            kind: "SealedSecret",
            namespace: "ns".into(),
            name: name.into(),
            synced: "True".into(),
            last_sync: None,
            reason: String::new(),
            target: name.into(),
            drift: Some((0, None)),
            keys: keys.map(|k| k.iter().map(|s| (*s).to_owned()).collect()),
        };
        let key = |name: &str| KeyRow {
            name: name.into(),
            ..KeyRow::default()
        };
        let mut report = Report {
            rows: vec![
                sealed("a", Some(&["old"])),
                sealed("b", Some(&["new", "old"])),
                sealed("c", Some(&["new"])),
                sealed("d", None),
            ],
            keys: vec![key("old"), key("new"), key("unused")],
            ..Report::default()
        };
        count_key_use(&mut report);
        let needed: Vec<Option<usize>> = report.keys.iter().map(|k| k.needed_by).collect();
        assert_eq!(needed, [Some(2), Some(2), Some(0)]);
        assert_eq!(without_recorded_key(&report), 1);
        let text = to_table(&report, 0);
        assert!(text.contains("2 SealedSecrets"), "{text}");
        assert!(text.contains("0 SealedSecrets"), "{text}");
        assert!(
            text.contains("1 SealedSecrets have no recorded key"),
            "{text}"
        );
        let json = to_json(&report, 0);
        assert_eq!(json["keys"][2]["neededBy"], 0);
        assert_eq!(json["sealedSecretsWithoutRecordedKey"], 1);
        // Secrets' metadata unreadable: no count is claimed.
        report.rows[0].drift = None;
        for k in &mut report.keys {
            k.needed_by = None;
        }
        count_key_use(&mut report);
        assert!(report.keys.iter().all(|k| k.needed_by.is_none()));
        assert!(to_table(&report, 0).contains("?"));
    }

    #[test]
    fn shards_are_listed_per_replica_and_expired_ones_as_nobodys() {
        let now = 1_704_153_600;
        let lease = |shard, holder: &str, age| LeaseRow {
            group: "hush-controller".into(),
            shard,
            holder: holder.into(),
            renewed: Some(now - age),
            duration: 15,
        };
        let report = Report {
            shards: vec![
                lease(Some(0), "pod-a", 1),
                lease(Some(1), "pod-b", 2),
                lease(Some(2), "pod-a", 3),
                // Renewed 60 s ago with a 15 s lease: the holder is gone.
                lease(Some(3), "pod-c", 60),
                lease(Some(4), "", 1),
                lease(None, "pod-a", 1),
                lease(None, "pod-b", 1),
                lease(None, "pod-d", 1),
                lease(None, "pod-c", 60),
            ],
            ..Report::default()
        };
        let text = to_table(&report, now);
        let line = |replica: &str| {
            text.lines()
                .find(|l| l.contains(replica))
                .unwrap_or_default()
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(line("pod-a"), "0,2", "{text}");
        assert_eq!(line("pod-b"), "1", "{text}");
        assert_eq!(line("pod-d"), "-", "{text}");
        assert_eq!(line("(nobody"), "3,4", "{text}");
        assert!(!text.contains("pod-c"), "{text}");
        let json = to_json(&report, now);
        assert_eq!(json["shards"][0]["holder"], "pod-a");
        assert_eq!(json["shards"][3]["holder"], Value::Null);
        assert_eq!(json["shards"][3]["lastHolder"], "pod-c");
        let replicas = json["shardReplicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 3, "{json}");
        assert_eq!(replicas[0]["replica"], "pod-a");
        assert_eq!(replicas[0]["shards"], json!([0, 2]));
    }

    #[test]
    fn only_the_groups_leases_are_rows() {
        let lease = |name: &str, labels: Value| -> Lease {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                         "renewTime": "2024-01-01T00:00:00.000000Z"}
            }))
            .unwrap()
        };
        let group = |role: &str| json!({"hush.dev/shard-group": "g", "hush.dev/shard-role": role});
        let row = lease_row(&lease("g-shard-7", group("shard"))).unwrap();
        assert_eq!(
            (row.shard, row.holder.as_str(), row.duration),
            (Some(7), "pod-a", 15)
        );
        assert_eq!(row.renewed, parse_rfc3339("2024-01-01T00:00:00Z"));
        assert_eq!(
            lease_row(&lease("g-member-1", group("member")))
                .unwrap()
                .shard,
            None
        );
        assert!(lease_row(&lease("g-shard-x", group("shard"))).is_none());
        assert!(lease_row(&lease("g", json!({"hush.dev/shard-group": "g"}))).is_none());
        assert!(lease_row(&lease("other", json!({}))).is_none());
    }

    fn object(kind: &str, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": { "name": "a", "namespace": "ns" },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn rows_read_the_controllers_conditions() {
        let r = row(
            "SealedSecret",
            &object(
                "SealedSecret",
                json!({ "conditions": [{ "type": "Synced", "status": "False",
                    "lastUpdateTime": "2024-01-01T00:00:00Z",
                    "message": "no key could decrypt\nthe secret" }] }),
            ),
        );
        assert_eq!(r.synced, "False");
        assert_eq!(r.last_sync, parse_rfc3339("2024-01-01T00:00:00Z"));
        assert_eq!(r.reason, "no key could decrypt the secret");
        let r = row(
            "ExternalSecret",
            &object(
                "ExternalSecret",
                json!({ "refreshTime": "2024-01-01T00:00:10Z", "conditions": [
                    { "type": "Ready", "status": "True", "reason": "SecretSynced",
                      "message": "secret synced" }] }),
            ),
        );
        assert_eq!(
            (r.synced.as_str(), r.reason.as_str()),
            ("True", "SecretSynced")
        );
        assert_eq!(r.last_sync, Some(1_704_067_210));
        let r = row("ExternalSecret", &object("ExternalSecret", json!(null)));
        assert_eq!((r.synced.as_str(), r.last_sync), ("Unknown", None));
    }
}
