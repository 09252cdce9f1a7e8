//! Errors of a render. No variant ever holds a secret value: messages name placeholders, keys,
//! paths and files only.

use std::path::PathBuf;

/// A render failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error (in the message; not chained, so it is printed once).
        error: std::io::Error,
    },
    /// A manifest is not valid YAML/JSON.
    #[error("{file}: {message}")]
    Parse {
        /// Where it came from (file name or `<stdin>`).
        file: String,
        /// What is wrong (never a value).
        message: String,
    },
    /// A placeholder is written wrongly.
    #[error("{file}: {kind}/{name}: malformed placeholder {placeholder}: {message}")]
    Placeholder {
        /// Source file.
        file: String,
        /// Object kind.
        kind: String,
        /// Object name.
        name: String,
        /// The placeholder text as written in the manifest.
        placeholder: String,
        /// What is wrong.
        message: String,
    },
    /// Placeholders without a value (one line each).
    #[error("{file}: {kind}/{name}: could not replace all placeholders:\n{}", .missing.join("\n"))]
    Missing {
        /// Source file.
        file: String,
        /// Object kind.
        kind: String,
        /// Object name.
        name: String,
        /// One description per missing placeholder (placeholder text and field, no values).
        missing: Vec<String>,
    },
    /// The secret backend failed.
    #[error("backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    /// A path was refused by `AVP_PATH_VALIDATION`.
    #[error("{file}: {kind}/{name}: path {path} does not match AVP_PATH_VALIDATION")]
    PathRefused {
        /// Source file.
        file: String,
        /// Object kind.
        kind: String,
        /// Object name.
        name: String,
        /// The refused path.
        path: String,
    },
    /// A path could escape where it is read (a `..` segment, an encoded escape).
    #[error("{file}: {kind}/{name}: path {path:?} is refused: {reason}")]
    PathInvalid {
        /// Source file.
        file: String,
        /// Object kind.
        kind: String,
        /// Object name.
        name: String,
        /// The refused path, as written.
        path: String,
        /// Why.
        reason: String,
    },
    /// A SOPS-encrypted manifest could not be decrypted or verified.
    #[error("{file}: SOPS decryption failed: {error}")]
    Sops {
        /// Source file.
        file: String,
        /// The hush-sops error (never holds plaintext; in the message, not chained).
        error: hush_sops::Error,
    },
    /// The render produced no objects.
    #[error(
        "the render produced no Kubernetes objects; refusing to emit an empty stream (with \
         prune, Argo CD would delete every resource of the app). Set HUSH_ALLOW_EMPTY=true to \
         allow it"
    )]
    Empty,
    /// Resealing failed.
    #[error("reseal: {0}")]
    Reseal(String),
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// An external tool (kustomize, helm) failed or is missing.
    #[error("{0}")]
    Tool(String),
    /// A KRM function input or configuration error.
    #[error("{0}")]
    Krm(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
