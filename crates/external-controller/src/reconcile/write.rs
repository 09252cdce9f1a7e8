//! Writing the target Secret: [`desired_secret`] says what it should hold (pure), [`apply`]
//! creates or replaces it; around them ESO's policies (an empty fetch, `creationPolicy`),
//! who may write an existing target, orphans under a former name and ESO's finalizer.

use std::collections::BTreeMap;

use hush_api::external_secrets::ExternalSecret;
use hush_operator::drift;
use hush_operator::events::EventType;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::spec::{CreationPolicy, DeletionPolicy, Policies, target_name};
use crate::context::Context;
use crate::shared::{now_rfc3339, patch_finalizers};
use crate::templating::{self, Rendered};
use crate::{Error, eso};

/// Outcome of a sync, for status and events.
#[derive(Debug)]
pub(super) enum Outcome {
    Synced {
        created: bool,
        changed: bool,
    },
    Retained,
    /// DeletionPolicy=Delete without data; `existed`: a Secret was deleted.
    Deleted {
        existed: bool,
    },
    Missing,
    NoWrite,
}

/// Writes the fetched `data` to the target as the policies say; `existing` is the target as
/// last seen, `drifted` whether it was edited or deleted by hand since the last sync.
#[expect(
    clippy::too_many_arguments,
    reason = "ESO's policies and the drift verdict are separate inputs of one write"
)]
pub(super) async fn write_secret(
    es: &ExternalSecret,
    ctx: &Context,
    secrets: &Api<Secret>,
    target: &str,
    existing: Option<Secret>,
    data: &BTreeMap<String, Vec<u8>>,
    policies: Policies,
    drifted: bool,
) -> Result<Outcome, Error> {
    let Policies { creation, deletion } = policies;
    // As ESO: no provider data is judged before any template (which may render keys of its
    // own from templateFrom literals).
    if data.is_empty() {
        match deletion {
            DeletionPolicy::Delete => {
                let existed = creation == CreationPolicy::Owner && existing.is_some();
                if existed {
                    secrets
                        .delete(target, &DeleteParams::default())
                        .await
                        .map_err(Error::Kube)?;
                }
                return Ok(Outcome::Deleted { existed });
            }
            DeletionPolicy::Retain => return Ok(Outcome::Retained),
            DeletionPolicy::Merge => {}
        }
    }
    match creation {
        CreationPolicy::None => return Ok(Outcome::NoWrite),
        CreationPolicy::Merge if existing.is_none() => return Ok(Outcome::Missing),
        _ => {}
    }
    if let Some(s) = &existing {
        check_controller(es, s, creation)?;
    }
    let rendered = match es.spec.target.as_ref().and_then(|t| t.template.as_ref()) {
        Some(t) => {
            let sources = if t.template_from.is_empty() {
                templating::Sources::default()
            } else {
                let ns = es.namespace().unwrap_or_default();
                templating::fetch_sources(&secrets.clone().into_client(), &ns, t).await?
            };
            Some(ctx.render.apply(t, data, sources).await?)
        }
        None => None,
    };
    let mut secret = desired_secret(es, target, existing.as_ref(), data, rendered, creation);
    if drifted {
        let ns = es.namespace().unwrap_or_default();
        let found = existing.as_ref().map(|s| s.annotations().clone());
        let count = ctx.drift.record(
            &ns,
            target,
            found.as_ref(),
            secret.annotations_mut(),
            &now_rfc3339(),
        );
        tracing::info!(namespace = %ns, secret = %target, count, "Secret edited or deleted by hand: putting it back");
    }
    apply(es, secrets, target, existing, &secret).await
}

/// The target Secret as this sync should leave it: `existing` (or a new Secret) with what this
/// ExternalSecret wrote before removed, then its data (the template's output when it has one,
/// `rendered`), labels, annotations, ownership and ESO's managed label and data hash.
fn desired_secret(
    es: &ExternalSecret,
    target: &str,
    existing: Option<&Secret>,
    data: &BTreeMap<String, Vec<u8>>,
    rendered: Option<Rendered>,
    creation: CreationPolicy,
) -> Secret {
    let ns = es.namespace().unwrap_or_default();
    let mut secret = existing.cloned().unwrap_or_else(|| Secret {
        metadata: ObjectMeta {
            name: Some(target.to_owned()),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    });
    // What this ExternalSecret wrote before (managedFields, as ESO): removed first, so that a key
    // dropped from the ExternalSecret leaves the Secret. hush's drift annotations stay.
    let previous = existing
        .map(|s| eso::ManagedKeys::of(s, &es.name_any()))
        .unwrap_or_default();
    // The PUT must not carry managedFields: a partial list (the watch cache keeps only ESO's
    // entries) would replace the server's.
    secret.metadata.managed_fields = None;
    secret
        .labels_mut()
        .retain(|k, _| !previous.labels.contains(k));
    secret.annotations_mut().retain(|k, _| {
        !previous.annotations.contains(k)
            || k == drift::COUNT_ANNOTATION
            || k == drift::LAST_ANNOTATION
    });
    // Data.
    let mut new_data: BTreeMap<String, ByteString> = if creation.keeps_other_data() {
        let mut kept = secret.data.clone().unwrap_or_default();
        kept.retain(|k, _| !previous.data.contains(k));
        kept
    } else {
        BTreeMap::new()
    };
    if let Some(rendered) = rendered {
        new_data.extend(rendered.data.into_iter().map(|(k, v)| (k, ByteString(v))));
        if let Some(ty) = rendered.type_ {
            secret.type_ = Some(ty);
        }
        for (k, v) in rendered.labels {
            secret.labels_mut().insert(k, v);
        }
        for (k, v) in rendered.annotations {
            secret.annotations_mut().insert(k, v);
        }
        // Added, never removed (ESO).
        let template = es.spec.target.as_ref().and_then(|t| t.template.as_ref());
        for f in template
            .iter()
            .flat_map(|t| t.metadata.iter())
            .flat_map(|m| m.finalizers.iter().flatten())
        {
            let fins = secret.metadata.finalizers.get_or_insert_with(Vec::new);
            if !fins.contains(f) {
                fins.push(f.clone());
            }
        }
    } else {
        for (k, v) in data {
            new_data.insert(k.clone(), ByteString(v.clone()));
        }
        // Without a template, the ExternalSecret's own labels and annotations are copied.
        for (k, v) in es.labels() {
            secret.labels_mut().insert(k.clone(), v.clone());
        }
        for (k, v) in es.annotations() {
            if k == "kubectl.kubernetes.io/last-applied-configuration" {
                continue;
            }
            secret.annotations_mut().insert(k.clone(), v.clone());
        }
    }
    let hash_input: BTreeMap<String, Vec<u8>> = new_data
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    secret.data = Some(new_data);
    secret.string_data = None;
    secret
        .labels_mut()
        .insert(eso::LABEL_MANAGED.into(), "true".into());
    secret.annotations_mut().insert(
        eso::ANNOTATION_DATA_HASH.into(),
        eso::data_hash(&hash_input),
    );
    if creation == CreationPolicy::Owner {
        secret.labels_mut().insert(
            eso::LABEL_CREATED_BY.into(),
            eso::created_by(&ns, &es.name_any()),
        );
        if let Some(oref) = es.controller_owner_ref(&()) {
            let refs = secret
                .metadata
                .owner_references
                .get_or_insert_with(Vec::new);
            if !refs.iter().any(|r| r.uid == oref.uid) {
                refs.retain(|r| r.controller != Some(true));
                refs.push(oref);
            }
        }
    }
    if es.spec.target.as_ref().and_then(|t| t.immutable) == Some(true) {
        secret.immutable = Some(true);
    }
    secret
}

/// Creates the target, or replaces `existing` when `desired` differs from it (an immutable
/// Secret that would change is [`Error::Immutable`]).
async fn apply(
    es: &ExternalSecret,
    secrets: &Api<Secret>,
    target: &str,
    existing: Option<Secret>,
    desired: &Secret,
) -> Result<Outcome, Error> {
    let pp = PostParams {
        field_manager: Some(eso::field_manager(&es.name_any())),
        ..PostParams::default()
    };
    match existing {
        None => {
            secrets.create(&pp, desired).await.map_err(Error::Kube)?;
            Ok(Outcome::Synced {
                created: true,
                changed: true,
            })
        }
        Some(old) => {
            if old.data == desired.data
                && old.metadata.labels == desired.metadata.labels
                && old.metadata.annotations == desired.metadata.annotations
                && old.metadata.owner_references == desired.metadata.owner_references
                && old.type_ == desired.type_
                && old.immutable == desired.immutable
                && old.metadata.finalizers == desired.metadata.finalizers
            {
                return Ok(Outcome::Synced {
                    created: false,
                    changed: false,
                });
            }
            if old.immutable == Some(true) {
                return Err(Error::Immutable);
            }
            match secrets.replace(target, &pp, desired).await {
                Ok(_) => Ok(Outcome::Synced {
                    created: false,
                    changed: true,
                }),
                Err(kube::Error::Api(s)) if s.code == 422 && old.immutable == Some(true) => {
                    Err(Error::Immutable)
                }
                Err(e) => Err(Error::Kube(e)),
            }
        }
    }
}

/// ESO's finalizer on ExternalSecrets. hush does not add it (the ownerReference already takes an
/// owned Secret along); it carries out and removes the one ESO put on, so that an ExternalSecret
/// taken over from ESO is not left `Terminating` once ESO is gone.
pub const FINALIZER: &str = "externalsecrets.external-secrets.io/externalsecret-cleanup";

/// A deleted ExternalSecret with ESO's finalizer: ESO's cleanup (the target Secret is deleted
/// for `deletionPolicy: Delete` with `creationPolicy: Owner`, when this ExternalSecret controls
/// it), then the finalizer goes.
pub(super) async fn finalize(es: &ExternalSecret, ctx: &Context) -> Result<Action, Error> {
    if !es.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = es.namespace().unwrap_or_default();
    let owned_and_deleted = Policies::of(es)
        .is_ok_and(|p| p.creation == CreationPolicy::Owner && p.deletion == DeletionPolicy::Delete);
    if owned_and_deleted {
        let target = target_name(es);
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        if let Some(secret) = secrets.get_opt(&target).await.map_err(Error::Kube)?
            && let Some(uid) = es.uid()
            && secret
                .owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        {
            let params = DeleteParams {
                preconditions: secret.uid().map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match secrets.delete(&target, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
    }
    let rest: Vec<&String> = es.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);
    patch_finalizers(&api, es, json!(rest)).await?;
    Ok(Action::await_change())
}

/// Deletes the Secrets this ExternalSecret created (its `created-by` label) under another name
/// than `target` (from the managed-Secret cache, else listed), with a `Deleted` event each.
pub(super) async fn delete_orphans(
    es: &ExternalSecret,
    ctx: &Context,
    secrets: &Api<Secret>,
    target: &str,
) -> Result<(), Error> {
    let ns = es.namespace().unwrap_or_default();
    let created_by = eso::created_by(&ns, &es.name_any());
    let names: Vec<String> = match ctx.caches.get() {
        Some(c) => c
            .secrets
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
            .filter(|s| s.labels().get(eso::LABEL_CREATED_BY) == Some(&created_by))
            .map(|s| s.name_any())
            .collect(),
        None => secrets
            .list_metadata(
                &kube::api::ListParams::default()
                    .labels(&format!("{}={created_by}", eso::LABEL_CREATED_BY)),
            )
            .await
            .map_err(Error::Kube)?
            .items
            .iter()
            .map(|s| s.name_any())
            .collect(),
    };
    for name in names.iter().filter(|n| *n != target) {
        match secrets.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(Error::Kube(e)),
        }
        ctx.event(
            false,
            es,
            EventType::Normal,
            "Deleted",
            "secret deleted because it was orphaned".into(),
        )
        .await;
    }
    Ok(())
}

/// Who may write an existing target: another ExternalSecret as its controller is an error
/// whatever the policy; with `creationPolicy: Owner` (which makes this ExternalSecret the
/// controller) so is any other controller, as ESO's `SetControllerReference` refuses it — a
/// SealedSecret's or a cert-manager Certificate's Secret is never taken over.
fn check_controller(
    es: &ExternalSecret,
    secret: &Secret,
    creation: CreationPolicy,
) -> Result<(), Error> {
    let Some(owner) = secret
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    else {
        return Ok(());
    };
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    let is_external_secret = owner.kind == "ExternalSecret" && group == "external-secrets.io";
    if is_external_secret && owner.name == es.name_any() && es.uid().is_none_or(|u| u == owner.uid)
    {
        return Ok(());
    }
    if is_external_secret {
        return Err(Error::OwnedByOther);
    }
    if creation != CreationPolicy::Owner {
        return Ok(());
    }
    Err(Error::ControlledByOther {
        kind: if group.is_empty() {
            owner.kind.clone()
        } else {
            format!("{}.{group}", owner.kind)
        },
        name: owner.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reconcile::tests::es;

    #[test]
    fn secrets_of_other_controllers_are_never_taken_over() {
        let mut me = es(json!({}));
        me.metadata.uid = Some("me".into());
        let secret = |api_version: &str, kind: &str, name: &str, uid: &str| -> Secret {
            serde_json::from_value(json!({"metadata": {"name": "t", "ownerReferences": [
                {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true}]}}))
            .unwrap()
        };
        let sealed = secret("bitnami.com/v1alpha1", "SealedSecret", "x", "s1");
        let cert = secret("cert-manager.io/v1", "Certificate", "web", "c1");
        let lookalike = secret("kubernetes-client.io/v1", "ExternalSecret", "x", "k1");
        for (s, kind) in [
            (&sealed, "SealedSecret.bitnami.com"),
            (&cert, "Certificate.cert-manager.io"),
            (&lookalike, "ExternalSecret.kubernetes-client.io"),
        ] {
            match check_controller(&me, s, CreationPolicy::Owner) {
                Err(Error::ControlledByOther { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{kind}: {other:?}"),
            }
            // Merge and Orphan never become the controller: they may write into it.
            assert!(check_controller(&me, s, CreationPolicy::Merge).is_ok());
            assert!(check_controller(&me, s, CreationPolicy::Orphan).is_ok());
        }
        let mine = secret("external-secrets.io/v1", "ExternalSecret", "x", "me");
        assert!(check_controller(&me, &mine, CreationPolicy::Owner).is_ok());
        let other_es = secret("external-secrets.io/v1", "ExternalSecret", "y", "o");
        assert!(matches!(
            check_controller(&me, &other_es, CreationPolicy::Merge),
            Err(Error::OwnedByOther)
        ));
        let unowned: Secret = serde_json::from_value(json!({"metadata": {"name": "t"}})).unwrap();
        assert!(check_controller(&me, &unowned, CreationPolicy::Owner).is_ok());
        let text = check_controller(&me, &sealed, CreationPolicy::Owner)
            .unwrap_err()
            .to_string();
        assert!(text.contains("SealedSecret.bitnami.com \"x\""), "{text}");
    }
}
