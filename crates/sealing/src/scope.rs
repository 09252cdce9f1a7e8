//! Sealing scopes: which names and namespaces a value may be unsealed under
//! (bitnami-labs/sealed-secrets `SealingScope`, `EncryptionLabel`, `SecretScope`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Annotation that makes a Secret or SealedSecret namespace-wide when exactly `"true"`.
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Annotation that makes a Secret or SealedSecret cluster-wide when exactly `"true"`; wins over
/// [`NAMESPACE_WIDE_ANNOTATION`].
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Template annotation that stops the controller from setting an ownerReference.
pub const SKIP_SET_OWNER_REFERENCES_ANNOTATION: &str =
    "sealedsecrets.bitnami.com/skip-set-owner-references";

/// Where a sealed value may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Scope {
    /// Only under the same namespace and name. OAEP label `"<ns>/<name>"`.
    #[default]
    Strict,
    /// Under any name in the same namespace. OAEP label `"<ns>"`.
    NamespaceWide,
    /// Anywhere. OAEP label `""`.
    ClusterWide,
}

impl Scope {
    /// All scopes, strictest first.
    pub const ALL: [Scope; 3] = [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide];

    /// The scope an object's annotations select. Only the exact string `"true"` counts, as in Go.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let is_true = |k: &str| annotations.get(k).is_some_and(|v| v == "true");
        if is_true(CLUSTER_WIDE_ANNOTATION) {
            Scope::ClusterWide
        } else if is_true(NAMESPACE_WIDE_ANNOTATION) {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// The OAEP label binding a value to this scope.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// Rewrites the scope annotations to select this scope (Go `UpdateScopeAnnotations`): both
    /// are removed, then the one for this scope is set to `"true"`.
    pub fn apply_to(self, annotations: &mut BTreeMap<String, String>) {
        annotations.remove(NAMESPACE_WIDE_ANNOTATION);
        annotations.remove(CLUSTER_WIDE_ANNOTATION);
        match self {
            Scope::Strict => {}
            Scope::NamespaceWide => {
                annotations.insert(NAMESPACE_WIDE_ANNOTATION.into(), "true".into());
            }
            Scope::ClusterWide => {
                annotations.insert(CLUSTER_WIDE_ANNOTATION.into(), "true".into());
            }
        }
    }

    /// The name kubeseal's `--scope` flag uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    /// Accepts what Go's `SealingScope.Set` accepts: `""` and `strict`, `namespace-wide`,
    /// `cluster-wide`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "" | "strict" => Ok(Scope::Strict),
            "namespace-wide" => Ok(Scope::NamespaceWide),
            "cluster-wide" => Ok(Scope::ClusterWide),
            _ => Err(Error::InvalidScope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_go_encryption_label() {
        // bitnami-labs/sealed-secrets TestEncryptionLabel.
        assert_eq!(Scope::Strict.label("myns", "myname"), b"myns/myname");
        assert_eq!(Scope::NamespaceWide.label("myns", "myname"), b"myns");
        assert_eq!(Scope::ClusterWide.label("myns", "myname"), b"");
    }

    #[test]
    fn annotations_need_exact_true_and_cluster_wide_wins() {
        let mut a = BTreeMap::new();
        a.insert(NAMESPACE_WIDE_ANNOTATION.to_string(), "True".to_string());
        assert_eq!(Scope::from_annotations(&a), Scope::Strict);
        a.insert(NAMESPACE_WIDE_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(Scope::from_annotations(&a), Scope::NamespaceWide);
        a.insert(CLUSTER_WIDE_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(Scope::from_annotations(&a), Scope::ClusterWide);
        Scope::NamespaceWide.apply_to(&mut a);
        assert_eq!(a.len(), 1);
        assert_eq!(Scope::from_annotations(&a), Scope::NamespaceWide);
        Scope::Strict.apply_to(&mut a);
        assert!(a.is_empty());
    }

    #[test]
    fn parses_like_go() {
        assert_eq!("".parse::<Scope>().ok(), Some(Scope::Strict));
        assert_eq!(
            "cluster-wide".parse::<Scope>().ok(),
            Some(Scope::ClusterWide)
        );
        assert!(matches!(
            "Cluster-Wide".parse::<Scope>(),
            Err(Error::InvalidScope)
        ));
    }
}
