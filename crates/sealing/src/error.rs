use crate::unseal::UnsealError;

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
        scope: crate::Scope,
    },
    /// `--raw` with a non-cluster-wide scope and no namespace (kubeseal's wording).
    #[error("must provide the --namespace flag with --raw and --scope {scope}")]
    RawNeedsNamespace {
        /// The scope in use.
        scope: crate::Scope,
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
