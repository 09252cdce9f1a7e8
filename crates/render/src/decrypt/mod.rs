//! SOPS-encrypted manifests, decrypted with hush-sops (MAC verified).
//!
//! Key sources: sops' own environment (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`,
//! `~/.config/sops/age/keys.txt`, SSH keys; `VAULT_TOKEN` for `hc_vault`; the AWS chain for
//! `kms`) plus a Flux-style key directory (`--sops-keys-dir` / `HUSH_SOPS_KEYS_DIR`), whose
//! entries are recognised by name as Flux's kustomize-controller does: `*.agekey` (age
//! identities), `*.asc` (armored OpenPGP secret keys, used by hush-keys' pure-Rust PGP; the
//! `gpg` binary is never run), `sops.vault-token` (Vault/OpenBao token for `hc_vault` keys) and
//! `sops.aws-kms` (static AWS credentials for `kms` keys, Flux's YAML: `aws_access_key_id`,
//! `aws_secret_access_key`, optional `aws_session_token`). The names and loaders are the rows of
//! hush-keys' key-kind table (`hush_keys::KINDS`); a kind whose files this build cannot use
//! (`sops.azure-kv`, `sops.gcp-kms`) is not ignored silently: a file that needs a key the render
//! does not have fails with an error naming them.
//!
//! A file's `hc_vault` `vault_address` is written by whoever writes the repository; the token is
//! the operator's. A Vault transit key gets the token only when its address is one the operator
//! configured ([`VaultAddresses`]: `VAULT_ADDR` and `HUSH_SOPS_VAULT_ADDRS` of the plugin's own
//! environment); any other address fails the file with an error naming it, and nothing is sent.
//!
//! kustomize and other KRM orchestrators add annotations to every object, which changes the
//! document and breaks the MAC. [`open_doc`] detaches `config.kubernetes.io/*`,
//! `internal.config.kubernetes.io/*`, `config.k8s.io/id` and `kustomize.config.k8s.io/id`
//! before verifying and puts them back afterwards (the kpt SOPS function does the same).
//!
//! Three steps, one module each: loading the keys ([`load`]: the environment and the key
//! directory into hush-keys' `KeySources`), building the key services for one file's metadata
//! ([`build`]) and decrypting ([`open`], and [`plaintexts`] for kustomize builds).

mod build;
mod load;
mod open;
mod plaintexts;

pub use load::VaultAddresses;
pub use open::{is_orchestrator_annotation, open_doc, open_file};
pub use plaintexts::Plaintexts;

use hush_keys::{KeyKind, KeySources};

/// The keys a render may decrypt with.
#[derive(Debug)]
pub struct Keys {
    /// Identities and per-kind settings (key-directory credentials, the Vault token policy).
    sources: KeySources,
    /// `SOPS_DECRYPTION_ORDER` of the render: key types tried first.
    order: Vec<String>,
    /// Key files this build cannot use (reported when a file needs a key), with their kind.
    unsupported: Vec<(&'static KeyKind, String)>,
}
