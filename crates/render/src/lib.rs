//! Render-time secrets for GitOps engines: what `hush render` (the Argo CD CMP `generate`
//! command, persona `argocd-vault-plugin`) and `hush krm` (the kustomize exec KRM function,
//! persona `ksops`) do.
//!
//! - [`manifest`]: discovery of manifests under a directory, YAML/JSON stream reading and
//!   writing (hush-sops' YAML reader and writer; comments and key order kept).
//! - [`placeholder`]: argocd-vault-plugin's placeholder syntax (`<key>`, `<path:p#k#v>`,
//!   `| modifier` pipelines) and its modifiers.
//! - [`jsonpath`]: Kubernetes JSONPath templates as client-go evaluates them (the `jsonPath`
//!   modifier).
//! - [`resolve`]: the two-phase resolver: collect every distinct (path, version, KV version)
//!   of a render, read each once with bounded parallelism, then substitute with AVP's rules
//!   (annotations, `Secret.data`, typed injection, `remove-missing`).
//! - [`backend`]: where values come from ([`backend::Backend`]; AVP backends are adapters over
//!   hush-sync providers, the ones the ExternalSecret controller uses).
//! - [`decrypt`]: SOPS-encrypted manifests through hush-sops (MAC verified), with the usual key
//!   sources and a Flux-style key directory.
//! - [`reseal`]: Secrets re-emitted as strict-scope SealedSecrets, stable across renders.
//! - [`krm`]: `ResourceList` handling and the KSOPS-compatible generator.
//! - [`config`]: which environment variables may configure a render (the CMP allow-list).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod config;
pub mod decrypt;
mod error;
pub mod jsonpath;
pub mod krm;
pub mod manifest;
pub mod placeholder;
pub mod render;
pub mod reseal;
pub mod resolve;
pub mod value;

pub use error::{Error, Result};
