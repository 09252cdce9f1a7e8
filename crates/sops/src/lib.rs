//! The SOPS file format, byte-compatible with getsops/sops.
//!
//! - [`tree`]: documents of ordered maps with comments as items; typed leaves.
//! - [`enc`]: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` values.
//! - [`crypt`]: which values are encrypted, their associated data (key path), the IV stash and
//!   the MAC.
//! - [`metadata`]: the `sops` block (read every shape, write sops 3.13.2's).
//! - [`keys`]: the data key wrapped for master keys (hush-keys services) and Shamir groups.
//! - [`stores`]: YAML, JSON, dotenv, INI and binary.
//! - [`file`]: whole-file encrypt/decrypt built from the above.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypt;
pub mod enc;
mod error;
pub mod file;
pub mod goformat;
pub mod keys;
pub mod metadata;
pub mod stores;
pub mod tree;

pub use error::{Error, Result};
pub use stores::Format;
