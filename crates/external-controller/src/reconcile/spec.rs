//! What an ExternalSecret asks for: ESO's webhook rules ([`validate`]), its creation and
//! deletion policies, target name and refresh interval.

use std::time::Duration;

use hush_api::external_secrets::ExternalSecret;
use kube::ResourceExt as _;

use crate::Error;

/// `target.creationPolicy`: how the target Secret is owned and written (ESO's default `Owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreationPolicy {
    /// Created and controlled by the ExternalSecret (ownerReference, `created-by` label).
    Owner,
    /// Created, not controlled: it stays when the ExternalSecret goes.
    Orphan,
    /// Written into an existing Secret only, keeping its other keys.
    Merge,
    /// Never written.
    None,
    /// Created when missing, otherwise merged into.
    CreateOrMerge,
}

impl CreationPolicy {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Owner" => Self::Owner,
            "Orphan" => Self::Orphan,
            "Merge" => Self::Merge,
            "None" => Self::None,
            "CreateOrMerge" => Self::CreateOrMerge,
            _ => return Option::None,
        })
    }

    /// The name as written in the spec.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "Owner",
            Self::Orphan => "Orphan",
            Self::Merge => "Merge",
            Self::None => "None",
            Self::CreateOrMerge => "CreateOrMerge",
        }
    }

    /// Whether keys of the existing Secret that this ExternalSecret did not write stay.
    pub(crate) fn keeps_other_data(self) -> bool {
        matches!(self, Self::Merge | Self::CreateOrMerge)
    }
}

/// `target.deletionPolicy`: what happens to the target when the provider has no data (ESO's
/// default `Retain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeletionPolicy {
    /// The Secret keeps its last data.
    Retain,
    /// The Secret is deleted (only with `creationPolicy: Owner`).
    Delete,
    /// This ExternalSecret's keys are removed from the Secret.
    Merge,
}

impl DeletionPolicy {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "Retain" => Self::Retain,
            "Delete" => Self::Delete,
            "Merge" => Self::Merge,
            _ => return None,
        })
    }
}

/// An ExternalSecret's creation and deletion policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policies {
    /// `target.creationPolicy`.
    pub(crate) creation: CreationPolicy,
    /// `target.deletionPolicy`.
    pub(crate) deletion: DeletionPolicy,
}

impl Policies {
    /// The policies as written (empty or unset: ESO's defaults), or the message naming the
    /// unknown one.
    pub(crate) fn of(es: &ExternalSecret) -> Result<Self, String> {
        let target = es.spec.target.as_ref();
        let creation = target
            .and_then(|t| t.creation_policy.as_deref())
            .filter(|p| !p.is_empty())
            .unwrap_or("Owner");
        let deletion = target
            .and_then(|t| t.deletion_policy.as_deref())
            .filter(|p| !p.is_empty())
            .unwrap_or("Retain");
        let creation = CreationPolicy::parse(creation)
            .ok_or_else(|| format!("unknown creationPolicy {creation:?}"))?;
        let deletion = DeletionPolicy::parse(deletion)
            .ok_or_else(|| format!("unknown deletionPolicy {deletion:?}"))?;
        Ok(Self { creation, deletion })
    }
}

/// ESO's webhook rules, checked by the controller; the policies of a valid ExternalSecret.
pub(super) fn validate(es: &ExternalSecret) -> Result<Policies, String> {
    if es.spec.data.is_empty() && es.spec.data_from.is_empty() {
        // ESO allows a template-only ExternalSecret; it needs a template then.
        if es
            .spec
            .target
            .as_ref()
            .and_then(|t| t.template.as_ref())
            .is_none()
        {
            return Err("either data or dataFrom should be specified".into());
        }
    }
    let policies = Policies::of(es)?;
    let Policies { creation, deletion } = policies;
    if deletion == DeletionPolicy::Delete
        && matches!(
            creation,
            CreationPolicy::Merge | CreationPolicy::None | CreationPolicy::CreateOrMerge
        )
    {
        return Err(format!(
            "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner (creationPolicy is {})",
            creation.as_str()
        ));
    }
    if deletion == DeletionPolicy::Merge && creation == CreationPolicy::None {
        return Err("deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with".into());
    }
    if let Some(p) = es.spec.refresh_policy.as_deref()
        && !matches!(p, "" | "Periodic" | "OnChange" | "CreatedOnce")
    {
        return Err(format!("unknown refreshPolicy {p:?}"));
    }
    for (i, d) in es.spec.data_from.iter().enumerate() {
        let set = usize::from(d.extract.is_some())
            + usize::from(d.find.is_some())
            + usize::from(
                d.source_ref
                    .as_ref()
                    .is_some_and(|s| s.generator_ref.is_some()),
            );
        if set != 1 {
            return Err(format!(
                "dataFrom[{i}]: exactly one of extract, find or generatorRef must be set"
            ));
        }
        for r in &d.rewrite {
            let n = usize::from(r.regexp.is_some())
                + usize::from(r.transform.is_some())
                + usize::from(r.merge.is_some());
            if n != 1 {
                return Err(format!(
                    "dataFrom[{i}].rewrite: exactly one of regexp, transform or merge must be set"
                ));
            }
        }
    }
    for (i, d) in es.spec.data.iter().enumerate() {
        if d.source_ref
            .as_ref()
            .is_some_and(|s| s.generator_ref.is_some())
        {
            return Err(format!(
                "data[{i}].sourceRef.generatorRef is not implemented (ESO deprecated it there); use dataFrom[].sourceRef.generatorRef"
            ));
        }
    }
    if deletion == DeletionPolicy::Retain {
        let mut seen = std::collections::BTreeSet::new();
        for d in &es.spec.data {
            if !seen.insert(&d.secret_key) {
                return Err(format!("duplicate secretKey {:?}", d.secret_key));
            }
        }
    }
    if let Some(t) = es.spec.target.as_ref().and_then(|t| t.template.as_ref()) {
        if t.type_.as_deref() == Some("bootstrap.kubernetes.io/token") {
            return Err("template type bootstrap.kubernetes.io/token is not allowed".into());
        }
        if t.type_.as_deref() == Some("kubernetes.io/service-account-token")
            && t.metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .is_some_and(|a| a.contains_key("kubernetes.io/service-account.name"))
        {
            return Err("template type kubernetes.io/service-account-token is not allowed".into());
        }
        if let Some(e) = t.engine_version.as_deref()
            && !e.is_empty()
            && e != "v2"
        {
            return Err(format!(
                "template engineVersion {e:?} is not supported (v2)"
            ));
        }
    }
    if es
        .spec
        .target
        .as_ref()
        .is_some_and(|t| t.manifest.is_some())
    {
        return Err("target.manifest (generic targets) is not supported by hush".into());
    }
    Ok(policies)
}

/// `target.name`, or the ExternalSecret's name.
pub(crate) fn target_name(es: &ExternalSecret) -> String {
    es.spec
        .target
        .as_ref()
        .and_then(|t| t.name.as_deref())
        .filter(|n| !n.is_empty())
        .map_or_else(|| es.name_any(), str::to_owned)
}

/// `refreshInterval`: unset is ESO's 1h; `0` is `None` (never again).
pub(super) fn refresh_interval(es: &ExternalSecret) -> Result<Option<Duration>, Error> {
    let text = es.spec.refresh_interval.as_deref().unwrap_or("1h");
    let d = hush_operator::duration::parse(text)
        .map_err(|e| Error::Spec(format!("refreshInterval {text:?}: {e}")))?;
    Ok((!d.is_zero()).then_some(d))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reconcile::tests::es;

    #[test]
    fn webhook_rules() {
        let ok = es(json!({"data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}));
        assert!(validate(&ok).is_ok());
        assert!(validate(&es(json!({}))).is_err());
        assert!(validate(&es(json!({"target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"}, "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))).is_err());
        assert!(validate(&es(json!({"target": {"creationPolicy": "None", "deletionPolicy": "Merge"}, "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))).is_err());
        assert!(
            validate(&es(
                json!({"dataFrom": [{"extract": {"key": "a"}, "find": {"path": "x"}}]})
            ))
            .is_err()
        );
        assert!(validate(&es(json!({"data": [{"secretKey": "a", "remoteRef": {"key": "k"}}, {"secretKey": "a", "remoteRef": {"key": "j"}}]}))).is_err());
        assert!(validate(&es(json!({"target": {"creationPolicy": "Bogus"}, "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))).is_err());
    }
}
