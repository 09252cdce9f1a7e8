//! Kubernetes Events posted directly (`events.k8s.io/v1`), one per call, for every controller
//! of the process.
//!
//! kube-runtime's `Recorder` keeps every event it published for six minutes to count repeats
//! into a series, and scans that cache on every publish: in a first sync of N objects it holds
//! N events (tens of MiB at N = 10,000) and costs O(N) per event. A controller here posts an
//! event per change or per failed attempt, and failures are retried with backoff, so there is
//! little to aggregate; a repeated failure posts a new event, as client-go's recorder does past
//! its cache. The Event is the one `Recorder` writes for a first occurrence: same name, fields
//! and namespace (`default` for a cluster-scoped object).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// Normal or Warning, as the API takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// What an event says about an object.
#[derive(Debug, Clone)]
pub struct Note<'a> {
    /// Normal or Warning.
    pub type_: EventType,
    /// Machine-readable reason (`Unsealed`, `UpdateFailed`, …).
    pub reason: &'a str,
    /// Human-readable message (never secret values).
    pub note: String,
    /// What the controller was doing.
    pub action: &'a str,
}

/// Posts events as `controller` (and `instance`, the pod name, when known), keeping nothing.
#[derive(Clone)]
pub struct EventPoster {
    client: Client,
    controller: String,
    instance: String,
}

impl EventPoster {
    /// A poster reporting as `controller`; `instance` defaults to `controller`.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
        }
    }

    /// Creates one Event about `regarding` in its namespace (`default` when it has none).
    pub async fn post(
        &self,
        regarding: &ObjectReference,
        note: Note<'_>,
    ) -> Result<(), kube::Error> {
        let event = self.event(regarding, note, Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), events_namespace(regarding));
        api.create(&PostParams::default(), &event).await.map(drop)
    }

    fn event(&self, regarding: &ObjectReference, note: Note<'_>, now: Timestamp) -> Event {
        // `<object>.<nanoseconds in hex>`, as client-go and kube-runtime name events.
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(note.action.to_owned()),
            reason: Some(note.reason.to_owned()),
            note: Some(note.note),
            type_: Some(note.type_.as_str().to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// Where events about `regarding` are created: its namespace, or `default` for a cluster-scoped
/// object (as kube-runtime's and client-go's recorders; the Event itself names no namespace).
fn events_namespace(regarding: &ObjectReference) -> &str {
    regarding.namespace.as_deref().unwrap_or("default")
}

impl std::fmt::Debug for EventPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPoster")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn event_names_the_object_reporter_and_reason() {
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("static URL"));
        let client = Client::try_from(config).expect("client from static config");
        let poster = EventPoster::new(client, "sealed-secrets", None);
        let regarding = ObjectReference {
            kind: Some("SealedSecret".into()),
            name: Some("db".into()),
            namespace: Some("apps".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        let now = Timestamp::from_second(1_700_000_000).expect("static timestamp");
        let note = Note {
            type_: EventType::Warning,
            reason: "ErrUnsealFailed",
            note: "Failed to unseal: no key could decrypt secret (password)".into(),
            action: "Unseal",
        };
        let ev = poster.event(&regarding, note, now);
        assert_eq!(ev.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(
            ev.metadata.name,
            Some(format!("db.{:x}", now.as_nanosecond()))
        );
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.reason.as_deref(), Some("ErrUnsealFailed"));
        assert_eq!(ev.action.as_deref(), Some("Unseal"));
        assert_eq!(ev.reporting_controller.as_deref(), Some("sealed-secrets"));
        assert_eq!(ev.reporting_instance.as_deref(), Some("sealed-secrets"));
        assert_eq!(
            ev.regarding.as_ref().and_then(|r| r.uid.as_deref()),
            Some("u-1")
        );
        assert!(ev.series.is_none());
        assert_eq!(events_namespace(&regarding), "apps");
    }

    #[tokio::test]
    async fn cluster_scoped_objects_get_their_events_in_default() {
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("static URL"));
        let client = Client::try_from(config).expect("client from static config");
        let poster = EventPoster::new(client, "external-secrets", Some("pod-0".into()));
        let regarding = ObjectReference {
            api_version: Some("external-secrets.io/v1".into()),
            kind: Some("ClusterSecretStore".into()),
            name: Some("vault".into()),
            ..ObjectReference::default()
        };
        let now = Timestamp::from_second(1_700_000_000).expect("static timestamp");
        let note = Note {
            type_: EventType::Normal,
            reason: "Valid",
            note: "store validated".into(),
            action: "Validate",
        };
        let ev = poster.event(&regarding, note, now);
        assert_eq!(events_namespace(&regarding), "default");
        assert_eq!(ev.metadata.namespace, None);
        assert_eq!(
            ev.metadata.name,
            Some(format!("vault.{:x}", now.as_nanosecond()))
        );
        assert_eq!(ev.reporting_instance.as_deref(), Some("pod-0"));
        assert_eq!(ev.type_.as_deref(), Some("Normal"));
    }
}
