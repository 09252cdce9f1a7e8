//! Sealing: whole Secrets as Go's `NewSealedSecret`, raw values as kubeseal `--raw`, kubeseal's
//! input preparation (`Seal` in pkg/kubeseal) and `--merge-into`.

use std::collections::BTreeMap;

use hush_crypto::rsa::RsaPublicKey;
use hush_crypto::{Entropy, envelope};

use crate::types::{SealedSecret, SealedSecretSpec, SecretTemplateSpec};
use crate::{Error, ObjectMeta, Result, Scope, Secret, b64};

/// Annotations that carry a full copy of the applied object (and so its secrets); never copied
/// into a SealedSecret template.
pub const LAST_APPLIED_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

/// How kubeseal completes an input Secret before sealing it.
#[derive(Debug, Clone, Default)]
pub struct Prepare<'a> {
    /// `--scope`: anything but strict rewrites the Secret's scope annotations; strict keeps them.
    pub scope: Scope,
    /// Replaces the Secret's name (`--name`, or the target's name with `--merge-into`).
    pub override_name: Option<&'a str>,
    /// Replaces the Secret's namespace (the target's namespace with `--merge-into`).
    pub override_namespace: Option<&'a str>,
    /// The namespace from `-n`, else the kubeconfig context, else `default`.
    pub namespace: &'a str,
    /// Whether `namespace` came from an explicit `-n` (then a different Secret namespace is an
    /// error).
    pub namespace_explicit: bool,
    /// `--allow-empty-data`.
    pub allow_empty_data: bool,
}

/// Applies kubeseal's rules to one input Secret: empty-data check, name override and check,
/// scope annotations, namespace choice and mismatch check, and stripping of server-set fields.
pub fn prepare(secret: &mut Secret, opts: &Prepare<'_>) -> Result<()> {
    if secret.data.is_empty() && secret.string_data.is_empty() && !opts.allow_empty_data {
        return Err(Error::EmptyData);
    }
    if let Some(name) = opts.override_name.filter(|n| !n.is_empty()) {
        name.clone_into(&mut secret.metadata.name);
    }
    if secret.metadata.name.is_empty() {
        return Err(Error::MissingName);
    }
    if let Some(ns) = opts.override_namespace.filter(|n| !n.is_empty()) {
        ns.clone_into(&mut secret.metadata.namespace);
    }
    if opts.scope != Scope::Strict {
        opts.scope.apply_to(&mut secret.metadata.annotations);
    }
    if secret.metadata.scope() != Scope::ClusterWide {
        let meta = &mut secret.metadata;
        if opts.namespace_explicit && !meta.namespace.is_empty() && meta.namespace != opts.namespace
        {
            return Err(Error::NamespaceMismatch {
                secret: meta.namespace.clone(),
                flag: opts.namespace.to_owned(),
            });
        }
        if meta.namespace.is_empty() {
            opts.namespace.clone_into(&mut meta.namespace);
        }
    }
    let meta = &mut secret.metadata;
    meta.self_link.clear();
    meta.uid.clear();
    meta.resource_version.clear();
    meta.generation = 0;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    Ok(())
}

/// Seals a Secret as Go's `NewSealedSecret`: each item in its own envelope under the Secret's
/// scope label, laid out by [`assemble`].
pub fn seal_secret(
    public: &RsaPublicKey,
    secret: &Secret,
    rng: &mut dyn Entropy,
) -> Result<SealedSecret> {
    let scope = secret.metadata.scope();
    if scope != Scope::ClusterWide && secret.metadata.namespace.is_empty() {
        return Err(Error::MissingNamespace);
    }
    let label = scope.label(&secret.metadata.namespace, &secret.metadata.name);
    let mut encrypted_data = BTreeMap::new();
    for (key, value) in secret.items() {
        let sealed = envelope::seal(public, value.expose(), &label, rng)?;
        encrypted_data.insert(key.to_owned(), b64::encode(&sealed));
    }
    Ok(assemble(secret, scope, encrypted_data))
}

/// The SealedSecret of `secret` as Go's `NewSealedSecret` lays it out, given its items already
/// sealed under `scope`'s label (`encrypted_data`: item name to base64 envelope): the template
/// is the Secret's metadata minus last-applied annotations and ownerReferences, with its type
/// and immutability; the top level carries name, namespace and the scope annotations. Shared
/// by [`seal_secret`] and the render's stable reseal, which seals the items its own way.
pub fn assemble(
    secret: &Secret,
    scope: Scope,
    encrypted_data: BTreeMap<String, String>,
) -> SealedSecret {
    let mut template_meta = secret.metadata.clone();
    for key in LAST_APPLIED_ANNOTATIONS {
        template_meta.annotations.remove(key);
    }
    template_meta.owner_references.clear();

    let mut top = ObjectMeta {
        name: secret.metadata.name.clone(),
        namespace: secret.metadata.namespace.clone(),
        ..ObjectMeta::default()
    };
    scope.apply_to(&mut top.annotations);

    let mut sealed = SealedSecret {
        metadata: top,
        spec: SealedSecretSpec {
            template: SecretTemplateSpec {
                metadata: template_meta,
                type_: secret.type_.clone(),
                immutable: secret.immutable,
                data: Default::default(),
            },
            data: None,
            encrypted_data,
        },
        ..SealedSecret::default()
    };
    sealed.set_type_meta();
    sealed
}

/// Checks kubeseal's `--raw` rules and returns the label: strict needs a name, strict and
/// namespace-wide need a namespace; cluster-wide ignores both.
pub fn raw_label(scope: Scope, namespace: &str, name: &str) -> Result<Vec<u8>> {
    if scope != Scope::ClusterWide {
        if namespace.is_empty() {
            return Err(Error::RawNeedsNamespace { scope });
        }
        if scope == Scope::Strict && name.is_empty() {
            return Err(Error::RawNeedsName { scope });
        }
    }
    Ok(scope.label(namespace, name))
}

/// Seals one raw value (`kubeseal --raw`) and returns the base64 envelope.
pub fn seal_raw(
    public: &RsaPublicKey,
    scope: Scope,
    namespace: &str,
    name: &str,
    value: &[u8],
    rng: &mut dyn Entropy,
) -> Result<String> {
    let label = raw_label(scope, namespace, name)?;
    Ok(b64::encode(&envelope::seal(public, value, &label, rng)?))
}

/// Merges a freshly sealed `update` into `target` as `kubeseal --merge-into`: encrypted items,
/// template annotations, labels and data from `update` are added or replaced; everything else of
/// `target` stays.
pub fn merge_into(target: &mut SealedSecret, update: SealedSecret) {
    target
        .spec
        .encrypted_data
        .extend(update.spec.encrypted_data);
    let (into, from) = (&mut target.spec.template, update.spec.template);
    into.metadata.annotations.extend(from.metadata.annotations);
    into.metadata.labels.extend(from.metadata.labels);
    into.data.extend(from.data);
}

/// Days before expiry from which sealing warns.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Checks a sealing certificate's NotAfter against `now` (Unix seconds) as kubeseal's `ParseKey`
/// does (NotBefore is not checked). Returns the days left when fewer than
/// [`EXPIRY_WARNING_DAYS`] remain, so the caller can warn.
pub fn check_certificate_validity(not_after: i64, now: i64) -> Result<Option<i64>> {
    if now > not_after {
        return Err(Error::CertificateExpired {
            on: go_long_date(not_after),
        });
    }
    let days_left = (not_after - now) / 86_400;
    Ok((days_left < EXPIRY_WARNING_DAYS).then_some(days_left))
}

/// Formats Unix seconds (UTC) as Go's `"January 2, 2006"`.
pub fn go_long_date(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    // Howard Hinnant's civil_from_days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = usize::try_from(month - 1)
        .ok()
        .and_then(|m| MONTHS.get(m))
        .copied()
        .unwrap_or("January");
    format!("{name} {day}, {year}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_date_layout() {
        assert_eq!(go_long_date(0), "January 1, 1970");
        // 2027-06-18T04:32:45Z: the NotAfter of kubeseal's own test certificate.
        assert_eq!(go_long_date(1_813_293_165), "June 18, 2027");
        assert_eq!(go_long_date(951_782_400), "February 29, 2000");
    }

    #[test]
    fn expiry_rules() {
        let day = 86_400;
        assert!(matches!(
            check_certificate_validity(100 * day, 101 * day),
            Err(Error::CertificateExpired { .. })
        ));
        assert_eq!(
            check_certificate_validity(100 * day, 90 * day).ok(),
            Some(Some(10))
        );
        assert_eq!(
            check_certificate_validity(100 * day, 10 * day).ok(),
            Some(None)
        );
    }
}
