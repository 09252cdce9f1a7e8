//! When an ExternalSecret syncs: ESO's `shouldRefresh` and `isSecretValid`, the periodic
//! refresh on shared boundaries, and which cached provider read a sync may use.

use std::time::{Duration, SystemTime};

use hush_api::external_secrets::{ExternalSecret, ExternalSecretStatus};
use hush_sync::cache::Freshness;
use k8s_openapi::api::core::v1::Secret;
use kube::{Resource as _, ResourceExt as _};

use super::spec::CreationPolicy;
use crate::eso;
use crate::shared::secret_data;

/// Seconds since the Unix epoch of an RFC 3339 time.
fn epoch_seconds(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// A requeue lands this long after the refresh is due (timers and the wall clock differ
/// slightly; waking early would only requeue again).
pub(super) const WAKE_SLACK: Duration = Duration::from_millis(50);

/// When the periodic refresh after a sync at `refresh_time` is due: the first multiple of
/// `interval` since the Unix epoch after it, i.e. at most `interval` after it (ESO's time) and
/// on the same boundary for every ExternalSecret with this interval, so a refresh wave reads
/// each key once ([`Freshness::Since`]). Sub-second intervals are not aligned. `None`: never
/// synced.
pub(super) fn refresh_due(refresh_time: Option<&str>, interval: Duration) -> Option<SystemTime> {
    let synced = epoch_seconds(refresh_time?)?;
    let period = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let epoch = |secs: i64| {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
    };
    if period == 0 {
        return epoch(synced)?.checked_add(interval);
    }
    let due = synced
        .checked_add(period)
        .map(|t| t - t.rem_euclid(period))?;
    epoch(due)
}

/// ESO's `shouldRefresh`, with the periodic refresh due on [`refresh_due`]'s boundary.
pub(super) fn should_refresh(
    es: &ExternalSecret,
    status: &ExternalSecretStatus,
    current_rv: &str,
    interval: Option<Duration>,
    now: SystemTime,
) -> bool {
    let synced_rv = status
        .synced_resource_version
        .as_deref()
        .unwrap_or_default();
    match es.spec.refresh_policy.as_deref().unwrap_or("Periodic") {
        "CreatedOnce" => synced_rv.is_empty() || status.refresh_time.is_none(),
        "OnChange" => synced_rv != current_rv,
        _ => {
            if interval.is_none() && !synced_rv.is_empty() {
                return false;
            }
            if synced_rv != current_rv {
                return true;
            }
            let Some(t) = status.refresh_time.as_deref() else {
                return true;
            };
            let Some(interval) = interval else {
                return false;
            };
            refresh_due(Some(t), interval).is_none_or(|due| now >= due)
        }
    }
}

/// Which cached provider read this sync may use instead of calling the provider:
/// - a changed spec or a force-sync annotation: none (ESO reads at once);
/// - never synced: a read made since the ExternalSecret was created (the later of its
///   creation second's end and when the watch first delivered it, `first_seen`, is a bound),
///   within the read window (the first sync of many ExternalSecrets at start shares reads);
/// - a periodic refresh: a read made since the refresh became due (one read per key per wave);
/// - a repair of a deleted or edited Secret: any read within the read window.
#[expect(
    clippy::too_many_arguments,
    reason = "the freshness rule's inputs come from the object, the watch, the status and the clock"
)]
pub(super) fn read_freshness(
    es: &ExternalSecret,
    first_seen: Option<SystemTime>,
    status: &ExternalSecretStatus,
    spec_changed: bool,
    first_sync: bool,
    interval: Option<Duration>,
    read_window: Duration,
    now: SystemTime,
) -> Freshness {
    let never_synced = status
        .synced_resource_version
        .as_deref()
        .is_none_or(str::is_empty);
    if never_synced {
        // Creation times have whole seconds: a read must start after the next one, or after
        // the watch delivered the ExternalSecret (it existed then), whichever is earlier.
        let created = es
            .meta()
            .creation_timestamp
            .as_ref()
            .and_then(|t| u64::try_from(t.0.as_second()).ok())
            .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s + 1)));
        let created = match (created, first_seen) {
            (Some(c), Some(f)) => Some(c.min(f)),
            (c, f) => c.or(f),
        };
        let window_start = now.checked_sub(read_window).unwrap_or(now);
        return Freshness::Since(created.map_or(now, |c| c.max(window_start).min(now)));
    }
    if spec_changed {
        return Freshness::Since(now);
    }
    if first_sync {
        return Freshness::Window;
    }
    interval
        .and_then(|i| refresh_due(status.refresh_time.as_deref(), i))
        .map_or(Freshness::Since(now), |due| Freshness::Since(due.min(now)))
}

/// ESO's `isSecretValid`: managed label and matching data hash (Orphan, None: always valid).
pub(super) fn secret_valid(creation: CreationPolicy, secret: Option<&Secret>) -> bool {
    if matches!(creation, CreationPolicy::Orphan | CreationPolicy::None) {
        return true;
    }
    let Some(secret) = secret else {
        return false;
    };
    if secret.labels().get(eso::LABEL_MANAGED).map(String::as_str) != Some("true") {
        return false;
    }
    let data = secret_data(secret);
    secret.annotations().get(eso::ANNOTATION_DATA_HASH) == Some(&eso::data_hash(&data))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use serde_json::json;

    use super::*;
    use crate::reconcile::spec::refresh_interval;
    use crate::reconcile::tests::es;
    use crate::shared::now_rfc3339;

    #[test]
    fn refresh_decisions_follow_eso() {
        let e = es(
            json!({"refreshInterval": "1h", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        let rv = eso::synced_resource_version(2, e.labels(), e.annotations());
        let interval = refresh_interval(&e).unwrap();
        assert_eq!(interval, Some(Duration::from_secs(3600)));
        let fresh = ExternalSecretStatus {
            refresh_time: Some(now_rfc3339()),
            synced_resource_version: Some(rv.clone()),
            ..ExternalSecretStatus::default()
        };
        assert!(!should_refresh(
            &e,
            &fresh,
            &rv,
            interval,
            SystemTime::now()
        ));
        assert!(should_refresh(
            &e,
            &fresh,
            "3-other",
            interval,
            SystemTime::now()
        ));
        assert!(should_refresh(
            &e,
            &ExternalSecretStatus::default(),
            &rv,
            interval,
            SystemTime::now()
        ));
        let old = ExternalSecretStatus {
            refresh_time: Some("2020-01-01T00:00:00Z".into()),
            ..fresh.clone()
        };
        assert!(should_refresh(&e, &old, &rv, interval, SystemTime::now()));
        let once = es(
            json!({"refreshInterval": "0", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        assert_eq!(refresh_interval(&once).unwrap(), None);
        assert!(!should_refresh(
            &once,
            &old,
            "3-other",
            None,
            SystemTime::now()
        ));
        let created_once = es(
            json!({"refreshPolicy": "CreatedOnce", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        assert!(!should_refresh(
            &created_once,
            &old,
            "3-other",
            interval,
            SystemTime::now()
        ));
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn refreshes_fall_due_on_shared_boundaries_never_later_than_eso() {
        let i = Duration::from_secs(30);
        // 1_800_000_000 is a multiple of 30 (2027-01-15T08:00:00Z).
        let base = 1_800_000_000;
        let rfc = |secs: i64| {
            k8s_openapi::jiff::Timestamp::from_second(secs)
                .unwrap()
                .to_string()
        };
        // Synced anywhere in one period: all due on the same next boundary.
        for offset in [0, 1, 17, 29] {
            assert_eq!(
                refresh_due(Some(&rfc(base + offset)), i),
                Some(at(1_800_000_030))
            );
        }
        // Never later than ESO's refreshTime + interval.
        for offset in 0..90 {
            let due = refresh_due(Some(&rfc(base + offset)), i).unwrap();
            assert!(due <= at((base + offset) as u64) + i);
            assert!(due > at((base + offset) as u64));
        }
        // Sub-second intervals are not aligned; unsynced has no due time.
        assert_eq!(
            refresh_due(Some(&rfc(base + 7)), Duration::from_millis(500)),
            Some(at(1_800_000_007) + Duration::from_millis(500))
        );
        assert_eq!(refresh_due(None, i), None);
        // should_refresh follows the boundary.
        let e = es(
            json!({"refreshInterval": "30s", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        let rv = eso::synced_resource_version(2, e.labels(), e.annotations());
        let status = ExternalSecretStatus {
            refresh_time: Some(rfc(base + 29)),
            synced_resource_version: Some(rv.clone()),
            ..ExternalSecretStatus::default()
        };
        assert!(!should_refresh(
            &e,
            &status,
            &rv,
            Some(i),
            at(1_800_000_029)
        ));
        assert!(should_refresh(&e, &status, &rv, Some(i), at(1_800_000_030)));
    }

    #[test]
    fn reads_are_shared_only_where_eso_would_read_as_fresh() {
        let window = Duration::from_secs(10);
        let now = at(1_800_000_100);
        let mut e = es(
            json!({"refreshInterval": "30s", "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}),
        );
        let rv = eso::synced_resource_version(2, e.labels(), e.annotations());
        // Never synced, created long ago: a read within the window.
        e.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        ));
        let none = ExternalSecretStatus::default();
        let i = Some(Duration::from_secs(30));
        assert_eq!(
            read_freshness(&e, None, &none, true, true, i, window, now),
            Freshness::Since(at(1_800_000_090))
        );
        // Created just now: only a read started after its creation second.
        e.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_800_000_095).unwrap(),
        ));
        assert_eq!(
            read_freshness(&e, None, &none, true, true, i, window, now),
            Freshness::Since(at(1_800_000_096))
        );
        // ... unless the watch delivered it earlier in that second: a read since then.
        let seen = at(1_800_000_095) + Duration::from_millis(300);
        assert_eq!(
            read_freshness(&e, Some(seen), &none, true, true, i, window, now),
            Freshness::Since(seen)
        );
        // Changed spec or force-sync: a new read.
        let synced = ExternalSecretStatus {
            refresh_time: Some("2027-01-15T08:01:31Z".into()),
            synced_resource_version: Some("1-old".into()),
            ..ExternalSecretStatus::default()
        };
        assert_eq!(
            read_freshness(&e, None, &synced, true, true, i, window, now),
            Freshness::Since(now)
        );
        // Periodic refresh: a read since the boundary it fell due on (08:02:00 = ...120).
        let later = at(1_800_000_125);
        let refreshed = ExternalSecretStatus {
            synced_resource_version: Some(rv),
            ..synced
        };
        assert_eq!(
            read_freshness(&e, None, &refreshed, false, false, i, window, later),
            Freshness::Since(at(1_800_000_120))
        );
        // Repairing a deleted Secret: the window.
        assert_eq!(
            read_freshness(&e, None, &refreshed, false, true, i, window, later),
            Freshness::Window
        );
    }

    #[test]
    fn secrets_written_by_eso_are_valid() {
        let data = BTreeMap::from([("a".to_owned(), b"v".to_vec())]);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "x", "labels": {eso::LABEL_MANAGED: "true"},
                         "annotations": {eso::ANNOTATION_DATA_HASH: eso::data_hash(&data)}},
            "data": {"a": "dg=="}
        }))
        .unwrap();
        assert!(secret_valid(CreationPolicy::Owner, Some(&secret)));
        let mut tampered = secret.clone();
        tampered
            .data
            .as_mut()
            .unwrap()
            .insert("a".into(), ByteString(b"w".to_vec()));
        assert!(!secret_valid(CreationPolicy::Owner, Some(&tampered)));
        assert!(!secret_valid(CreationPolicy::Owner, None));
    }
}
