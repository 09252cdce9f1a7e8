//! The crypto core of hush: pure and synchronous, no I/O, no async, no Kubernetes, no YAML.
//!
//! - [`secret`]: zeroizing byte types ([`SecretBytes`], [`DataKey`]) whose `Debug` never shows content.
//! - [`aead`]: AES-256-GCM as sops uses it (32-byte nonce, AAD) and as Sealed Secrets uses it.
//! - [`rsa`]: RSA-OAEP-SHA256 keys (aws-lc-rs), PEM/PKCS#1/PKCS#8, fingerprints.
//! - [`cert`]: self-signed X.509 certificates for sealing keys, and certificate parsing.
//! - [`envelope`]: the Sealed Secrets hybrid envelope.
//! - [`jws`]: RS256 JWT signing (cloud client assertions).
//! - [`shamir`]: Shamir secret sharing byte-compatible with sops.
//!
//! Randomness is injected through [`Entropy`] so known-answer tests are deterministic;
//! production code passes [`SystemEntropy`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aead;
pub mod cert;
pub mod envelope;
mod error;
pub mod jws;
pub mod rsa;
pub mod secret;
pub mod shamir;

pub use error::{Error, Result};
pub use secret::{DataKey, SecretBytes};

/// A source of random bytes. Production code uses [`SystemEntropy`]; tests inject a fixed stream.
pub trait Entropy {
    /// Fill `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<()> {
        aws_lc_rs::rand::fill(dest).map_err(|_| Error::Entropy)
    }
}
