//! Sealed Secrets-compatible sealing, shared by `hush seal` (the `kubeseal` persona) and the
//! sealing controller. Pure: no Kubernetes I/O, no clock, no files.
//!
//! - [`types`]: `SealedSecret` (`bitnami.com/v1alpha1`) and `v1.Secret` with Go's JSON field order
//!   and `omitempty`/`omitzero` rules, so output is byte-equal to kubeseal v0.36.6 apart from
//!   ciphertext.
//! - [`scope`]: the three scopes, their annotations and OAEP labels.
//! - [`seal`]: sealing of whole Secrets (as `NewSealedSecret`) and raw values, kubeseal's input
//!   preparation (namespace rules, stripped fields), `--merge-into`.
//! - [`unseal`]: opening with several private keys, reporting which key opened each value, and
//!   a diagnosis when none does (wrong scope versus moved or foreign key).
//! - [`codec`]: reading JSON / concatenated JSON / multi-document YAML, and writing kubeseal's
//!   JSON and YAML shapes.
//! - [`keys`]: private keys from PEM, `kubernetes.io/tls` Secrets and `v1.List` backups.
//! - [`b64`]: Go's `base64.StdEncoding` leniency (CR and LF skipped, trailing bits allowed).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod b64;
pub mod codec;
mod error;
pub mod keys;
pub mod scope;
pub mod seal;
pub mod types;
pub mod unseal;
mod yaml11;
mod yaml_in;
mod yaml_out;

pub use error::{Error, Result};
pub use scope::Scope;
pub use types::{ObjectMeta, SealedSecret, Secret};
