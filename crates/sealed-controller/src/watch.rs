//! What the controller keeps of watched objects: each watch event is slimmed before its object
//! enters a reflector store, so the stores hold no `managedFields` (often larger than the
//! object's own metadata) and no `kubectl.kubernetes.io/last-applied-configuration` copy of a
//! SealedSecret's ciphertext.

use futures::{Stream, TryStreamExt as _};
use hush_api::sealed_secret::SealedSecret;
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt as _, watcher};

/// Annotation `kubectl apply` (client-side) fills with the whole applied object.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from a SealedSecret what reconciling never reads: `managedFields` and kubectl's
/// last-applied copy. Spec, name, namespace, uid, generation, labels and the other
/// annotations (scope) stay.
pub(crate) fn slim_sealed_secret(ss: &mut SealedSecret) {
    let meta = &mut ss.metadata;
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// `events` with each object slimmed by `slim`, then recorded in `writer`'s store.
pub(crate) fn cached<K, S>(
    events: S,
    slim: fn(&mut K),
    writer: Writer<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    events
        .map_ok(move |event| event.modify(slim))
        .reflect(writer)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::StreamExt as _;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
    use kube::core::PartialObjectMeta;
    use kube::runtime::reflector::{self, ObjectRef};

    use super::*;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            managed_fields: Some(vec![ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Apply".into()),
                ..ManagedFieldsEntry::default()
            }]),
            annotations: Some(BTreeMap::from([
                (
                    LAST_APPLIED_ANNOTATION.to_owned(),
                    "{\"spec\":{}}".to_owned(),
                ),
                (
                    "sealedsecrets.bitnami.com/namespace-wide".to_owned(),
                    "true".to_owned(),
                ),
                (
                    crate::reconcile::SPEC_HASH_ANNOTATION.to_owned(),
                    "abc".to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        }
    }

    /// The initial list and a later change, as a watcher yields them.
    fn events<K: Clone + Send>(
        first: K,
        changed: K,
    ) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send {
        futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(first)),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(changed)),
        ])
    }

    #[tokio::test]
    async fn stored_sealed_secrets_have_no_managed_fields_or_last_applied_copy() {
        let mut ss = SealedSecret::new("a", Default::default());
        ss.metadata = meta("a");
        let mut ss_b = ss.clone();
        ss_b.metadata = meta("b");
        let (reader, writer) = reflector::store();
        let seen: Vec<_> = cached(events(ss, ss_b), slim_sealed_secret, writer)
            .collect()
            .await;
        assert_eq!(seen.len(), 4);
        for name in ["a", "b"] {
            let stored = reader
                .get(&ObjectRef::new(name).within("ns"))
                .unwrap_or_else(|| panic!("{name} not stored"));
            assert!(stored.metadata.managed_fields.is_none());
            let annotations = stored.metadata.annotations.clone().unwrap_or_default();
            assert!(!annotations.contains_key(LAST_APPLIED_ANNOTATION));
            // The scope annotation decides how values open: it must stay.
            assert_eq!(
                annotations
                    .get("sealedsecrets.bitnami.com/namespace-wide")
                    .map(String::as_str),
                Some("true")
            );
            assert_eq!(stored.metadata.uid, Some(format!("uid-{name}")));
        }
    }

    #[tokio::test]
    async fn stored_secret_metadata_keeps_only_what_reconciling_reads() {
        let secret = |name: &str| PartialObjectMeta::<Secret> {
            metadata: ObjectMeta {
                resource_version: Some("3".into()),
                ..meta(name)
            },
            ..PartialObjectMeta::default()
        };
        let (reader, writer) = reflector::store();
        let seen: Vec<_> = cached(events(secret("a"), secret("b")), crate::cache::slim, writer)
            .collect()
            .await;
        assert_eq!(seen.len(), 4);
        for name in ["a", "b"] {
            let stored = reader
                .get(&ObjectRef::new(name).within("ns"))
                .unwrap_or_else(|| panic!("{name} not stored"));
            assert!(stored.metadata.managed_fields.is_none());
            assert!(stored.metadata.annotations.is_none());
            assert!(stored.metadata.uid.is_none());
            assert_eq!(stored.metadata.resource_version.as_deref(), Some("3"));
        }
    }
}
