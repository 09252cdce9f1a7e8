use std::fmt;

use crate::Scope;

/// Errors of the sealing library. No variant carries plaintext: parse errors are redacted
/// ([`redact`]) because serde quotes the offending input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input document could not be parsed or did not fit the expected type.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// What was being read ("input Secret", "SealedSecret", …).
        what: &'static str,
        /// Why, with quoted input redacted.
        reason: String,
    },
    /// The input held no Secret (kubeseal's wording).
    #[error("no secrets found. Ensure the input is valid and UTF-8 encoded")]
    NoSecrets,
    /// A Secret without `data` and `stringData` (kubeseal's wording).
    #[error(
        "secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used"
    )]
    EmptyData,
    /// A Secret without `metadata.name` (kubeseal's wording).
    #[error("missing metadata.name in input Secret")]
    MissingName,
    /// A non-cluster-wide Secret without namespace (Go `NewSealedSecret`'s wording).
    #[error("secret must declare a namespace")]
    MissingNamespace,
    /// `-n` names another namespace than the Secret's (kubeseal's wording).
    #[error(
        "namespace mismatch: input secret is in namespace {secret:?} but {flag:?} was specified"
    )]
    NamespaceMismatch {
        /// The Secret's own namespace.
        secret: String,
        /// The namespace given on the command line.
        flag: String,
    },
    /// `--raw` with strict scope and no `--name` (kubeseal's wording).
    #[error("must provide the --name flag with --raw and --scope {scope}")]
    RawNeedsName {
        /// The scope in use.
        scope: Scope,
    },
    /// `--raw` with a non-cluster-wide scope and no namespace (kubeseal's wording).
    #[error("must provide the --namespace flag with --raw and --scope {scope}")]
    RawNeedsNamespace {
        /// The scope in use.
        scope: Scope,
    },
    /// An unknown scope name (Go `SealingScope.Set`'s wording).
    #[error("must be one of: strict, namespace-wide, cluster-wide")]
    InvalidScope,
    /// A value is not valid standard base64 (Go's wording, tagged with the item).
    #[error("illegal base64 data at input byte {offset}{}", item.as_deref().map(|i| format!(" ({i})")).unwrap_or_default())]
    Base64 {
        /// Offset of the first bad byte.
        offset: usize,
        /// The item (key) the value belongs to, when known.
        item: Option<String>,
    },
    /// Both `encryptedData` and the deprecated `data` are set (Go's wording).
    #[error(
        "cannot use the field 'encryptedData' and the deprecated field 'data' at the same time"
    )]
    DataAndEncryptedData,
    /// The deprecated `spec.data` was found and is not accepted (Go's wording).
    #[error("using deprecated 'data' field, use 'encryptedData' or flip the feature flag")]
    DeprecatedData,
    /// The sealing certificate has expired (kubeseal's wording, Go date layout
    /// `January 2, 2006`).
    #[error("failed to encrypt using an expired certificate on {on}")]
    CertificateExpired {
        /// The certificate's NotAfter date.
        on: String,
    },
    /// A string holds a character go-yaml's reader refuses (DEL, C1 controls, U+FFFE/FFFF), so
    /// kubeseal cannot write YAML for it (its wording).
    #[error("yaml: control characters are not allowed")]
    YamlControlCharacters,
    /// Unsealing failed for one or more items.
    #[error(transparent)]
    Unseal(#[from] UnsealError),
    /// The crypto core refused an operation.
    #[error(transparent)]
    Crypto(#[from] hush_crypto::Error),
    /// Output could not be produced.
    #[error("cannot serialize {what}: {reason}")]
    Serialize {
        /// What was being written.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// Result alias of the sealing library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Removes double-quoted input from a serde error message: serde_json quotes the
/// string they refused (`invalid type: string "hunter2", expected …`), which may be a secret.
/// Backticks (field names, numbers) are kept.
pub(crate) fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push_str("<redacted>");
                // Skip to the matching closing quote (or the end).
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_quoted_values() {
        let m = redact("invalid type: string \"hunter2\", expected i64 at line 3 column 9");
        assert_eq!(
            m,
            "invalid type: string <redacted>, expected i64 at line 3 column 9"
        );
        assert_eq!(redact("missing field `name`"), "missing field `name`");
    }
}

/// Why one value could not be opened. Never holds plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// Not valid standard base64.
    Base64 {
        /// Offset of the first bad byte.
        offset: usize,
    },
    /// Too short, or a length prefix beyond the input.
    Malformed(String),
    /// A key's RSA step succeeded but AES-GCM authentication failed.
    Tampered,
    /// A key opens it under another scope's label.
    WrongScope {
        /// The scope it was sealed for.
        sealed_for: Scope,
        /// The scope the SealedSecret's annotations select.
        selected: Scope,
    },
    /// No key opens it under any scope's label.
    NoKey,
    /// There are no keys to try.
    NoKeys,
    /// A `spec.template.data` Go template did not parse or render (the message names the
    /// template and position, never values).
    Template(String),
    /// Not every key was tried: the SealedSecret's budget of private-key operations
    /// ([`UnsealOptions::max_key_operations`]) was spent.
    OverBudget {
        /// The budget.
        limit: usize,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Base64 { offset } => write!(f, "illegal base64 data at input byte {offset}"),
            ValueError::Malformed(reason) => write!(f, "SealedSecret data is malformed: {reason}"),
            ValueError::Tampered => f.write_str(
                "no key could decrypt secret: the value was modified (AES-GCM authentication failed)",
            ),
            ValueError::WrongScope {
                sealed_for,
                selected,
            } => write!(
                f,
                "no key could decrypt secret: sealed for {sealed_for} scope, but the SealedSecret's annotations select {selected} scope"
            ),
            ValueError::NoKey => f.write_str(
                "no key could decrypt secret: sealed for another namespace/name, or with a key this cluster does not have",
            ),
            ValueError::NoKeys => f.write_str("no key could decrypt secret: no private keys given"),
            ValueError::Template(reason) => f.write_str(reason),
            ValueError::OverBudget { limit } => write!(
                f,
                "not decrypted: the budget of {limit} RSA private-key operations for one \
                 SealedSecret is spent (fewer values, or a value sealed with a newer key)"
            ),
        }
    }
}

/// Items that could not be unsealed. Displayed like Go's `multierror.Uniq` with the inline
/// formatter: identical messages are grouped and tagged with their items,
/// `no key could decrypt secret: … (foo, bar)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnsealError {
    /// Item name and reason, in item order.
    pub failures: Vec<(String, ValueError)>,
}

impl fmt::Display for UnsealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for (item, err) in &self.failures {
            let msg = err.to_string();
            match groups.iter_mut().find(|(m, _)| *m == msg) {
                Some((_, items)) => items.push(item),
                None => groups.push((msg, vec![item])),
            }
        }
        for (i, (msg, items)) in groups.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{msg} ({})", items.join(", "))?;
        }
        Ok(())
    }
}
