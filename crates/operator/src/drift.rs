//! "Drift corrected": how many times a controller put back a managed Secret that someone edited
//! or deleted while its source (SealedSecret, ExternalSecret) was already synced, and when it last
//! did. Published as two annotations on the managed Secret itself, which `hush status` reads:
//!
//! - [`COUNT_ANNOTATION`] `hush.dev/drift-corrected: "3"`
//! - [`LAST_ANNOTATION`] `hush.dev/drift-corrected-at: "2026-11-26T09:00:00Z"`
//!
//! Annotations rather than a status field: Bitnami's and ESO's CRDs (which a migrated cluster may
//! keep) prune unknown status fields, and the controller already owns the Secret. A deletion takes
//! the annotations with it, so [`DriftLedger`] remembers the last count of each Secret it saw.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Number of corrections, a decimal integer.
pub const COUNT_ANNOTATION: &str = "hush.dev/drift-corrected";
/// RFC 3339 time (UTC, seconds) of the last correction.
pub const LAST_ANNOTATION: &str = "hush.dev/drift-corrected-at";

/// The count published in `annotations` (`None` when absent or not a number).
pub fn count(annotations: &BTreeMap<String, String>) -> Option<u64> {
    annotations.get(COUNT_ANNOTATION)?.parse().ok()
}

/// Copies the drift annotations of the Secret as found into the Secret about to be written, unless
/// that one already has them: a replace must not drop the history.
pub fn carry(found: &BTreeMap<String, String>, desired: &mut BTreeMap<String, String>) {
    for key in [COUNT_ANNOTATION, LAST_ANNOTATION] {
        if let Some(value) = found.get(key) {
            desired
                .entry(key.to_owned())
                .or_insert_with(|| value.clone());
        }
    }
}

/// The last drift count of each Secret (namespace, name) a controller saw with one. Each
/// controller keeps one in its context (a Secret has one owning controller, so (namespace,
/// name) is a sufficient key).
#[derive(Debug, Default)]
pub struct DriftLedger {
    counts: Mutex<HashMap<(String, String), u64>>,
}

impl DriftLedger {
    /// Notes the count published on a Secret as found in the cluster.
    pub fn remember(&self, namespace: &str, name: &str, found: &BTreeMap<String, String>) {
        if let Some(n) = count(found)
            && let Ok(mut counts) = self.counts.lock()
        {
            let entry = counts
                .entry((namespace.to_owned(), name.to_owned()))
                .or_insert(0);
            *entry = (*entry).max(n);
        }
    }

    /// Records one correction of `namespace/name` at `now` (RFC 3339) in `desired`: the count is
    /// one more than the Secret as found (`found`, `None` when it was deleted) or the ledger says.
    /// Returns the new count.
    pub fn record(
        &self,
        namespace: &str,
        name: &str,
        found: Option<&BTreeMap<String, String>>,
        desired: &mut BTreeMap<String, String>,
        now: &str,
    ) -> u64 {
        let key = (namespace.to_owned(), name.to_owned());
        let published = found.and_then(count).unwrap_or(0);
        let next = match self.counts.lock() {
            Ok(mut counts) => {
                let entry = counts.entry(key).or_insert(0);
                *entry = (*entry).max(published).saturating_add(1);
                *entry
            }
            Err(_) => published.saturating_add(1),
        };
        desired.insert(COUNT_ANNOTATION.to_owned(), next.to_string());
        desired.insert(LAST_ANNOTATION.to_owned(), now.to_owned());
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_deletion_keeps_counting_from_what_was_seen() {
        let ledger = DriftLedger::default();
        let found = annotations(&[(COUNT_ANNOTATION, "2"), (LAST_ANNOTATION, "t1")]);
        ledger.remember("ns", "s", &found);
        let mut desired = BTreeMap::new();
        assert_eq!(ledger.record("ns", "s", None, &mut desired, "t2"), 3);
        assert_eq!(
            desired,
            annotations(&[(COUNT_ANNOTATION, "3"), (LAST_ANNOTATION, "t2")])
        );
        // Another Secret starts at one.
        assert_eq!(
            ledger.record("ns", "other", None, &mut BTreeMap::new(), "t2"),
            1
        );
    }

    #[test]
    fn an_edit_counts_from_the_published_value() {
        let ledger = DriftLedger::default();
        let found = annotations(&[(COUNT_ANNOTATION, "5")]);
        let mut desired = BTreeMap::new();
        assert_eq!(ledger.record("ns", "s", Some(&found), &mut desired, "t"), 6);
        // A hand-edited, unparsable count restarts from what the ledger knows.
        let garbled = annotations(&[(COUNT_ANNOTATION, "many")]);
        assert_eq!(
            ledger.record("ns", "s", Some(&garbled), &mut desired, "t"),
            7
        );
    }

    #[test]
    fn carry_keeps_history_but_not_over_a_new_mark() {
        let found = annotations(&[(COUNT_ANNOTATION, "1"), (LAST_ANNOTATION, "t1"), ("x", "y")]);
        let mut desired = BTreeMap::new();
        carry(&found, &mut desired);
        assert_eq!(
            desired,
            annotations(&[(COUNT_ANNOTATION, "1"), (LAST_ANNOTATION, "t1")])
        );
        let mut marked = annotations(&[(COUNT_ANNOTATION, "2"), (LAST_ANNOTATION, "t2")]);
        carry(&found, &mut marked);
        assert_eq!(marked[COUNT_ANNOTATION], "2");
        assert_eq!(count(&found), Some(1));
    }
}
