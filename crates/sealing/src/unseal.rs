//! Unsealing with several private keys (the controller's key registry, kubeseal's
//! `--recovery-private-key`), reporting which key opened each value, and telling a wrong scope
//! apart from a moved value or a foreign key when none does.
//!
//! Sealed Secrets puts no key id in a value, so every key is tried (after a length check). The
//! diagnosis retries the other scopes' labels; it costs one RSA operation per key and label and
//! runs only after a failure. Plaintext found by the diagnosis is dropped (zeroized) unread.

use std::collections::BTreeMap;

use hush_crypto::rsa::RsaPrivateKey;
use hush_crypto::{SecretBytes, envelope};
use hush_template::Preset;
use serde_json::json;

pub use crate::error::{UnsealError, ValueError};
use crate::scope::SKIP_SET_OWNER_REFERENCES_ANNOTATION;
use crate::types::{SEALED_SECRET_API_VERSION, SEALED_SECRET_KIND};
use crate::{Error, Result, Scope, SealedSecret, Secret, b64};

/// Private keys to unseal with, each with an id (the SSH-style fingerprint unless named).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<(String, RsaPrivateKey)>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key under its fingerprint. A key already present is not added twice.
    pub fn add(&mut self, key: RsaPrivateKey) {
        let id = key.public_key().fingerprint().to_owned();
        self.add_named(id, key);
    }

    /// Adds a key under `id` (a Secret name, a file name). Duplicates (same public key) are
    /// skipped.
    pub fn add_named(&mut self, id: impl Into<String>, key: RsaPrivateKey) {
        if self
            .keys
            .iter()
            .any(|(_, k)| k.public_key() == key.public_key())
        {
            return;
        }
        self.keys.push((id.into(), key));
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Key ids in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// Opens one envelope under `label`; returns the plaintext and the id of the key that opened
    /// it. On failure the error is a plain [`ValueError`] without diagnosis; see [`Self::open`].
    pub fn open_with_label(
        &self,
        envelope_bytes: &[u8],
        label: &[u8],
    ) -> Result<(SecretBytes, &str), ValueError> {
        self.open_budgeted(envelope_bytes, label, &mut Budget::unlimited())
    }

    /// [`Self::open_with_label`] trying only as many keys as `budget` has operations left
    /// (newest first); what was tried is spent. A value no tried key opens is
    /// [`ValueError::OverBudget`] when keys were left untried.
    fn open_budgeted(
        &self,
        envelope_bytes: &[u8],
        label: &[u8],
        budget: &mut Budget,
    ) -> Result<(SecretBytes, &str), ValueError> {
        if self.keys.is_empty() {
            return Err(ValueError::NoKeys);
        }
        let tried = budget.left().min(self.keys.len());
        if tried == 0 {
            return Err(budget.spent());
        }
        let keys = self.keys.iter().take(tried).map(|(_, k)| k);
        match envelope::open_with_any(keys, envelope_bytes, label) {
            Ok((plain, i)) => {
                budget.spend(i + 1);
                Ok((plain, self.keys.get(i).map_or("", |(id, _)| id.as_str())))
            }
            Err(hush_crypto::Error::BadTag) => {
                budget.spend(tried);
                Err(ValueError::Tampered)
            }
            Err(hush_crypto::Error::DecryptionFailed) => {
                budget.spend(tried);
                Err(if tried < self.keys.len() {
                    budget.spent()
                } else {
                    ValueError::NoKey
                })
            }
            Err(e) => Err(ValueError::Malformed(e.to_string())),
        }
    }

    /// Opens one envelope sealed for `namespace`/`name` under `scope`. When no key opens it, the
    /// other scopes' labels are tried to tell a scope mismatch ([`ValueError::WrongScope`]) from
    /// a moved value or a foreign key ([`ValueError::NoKey`]).
    pub fn open(
        &self,
        envelope_bytes: &[u8],
        scope: Scope,
        namespace: &str,
        name: &str,
    ) -> Result<(SecretBytes, &str), ValueError> {
        self.open_diagnosed(
            envelope_bytes,
            scope,
            namespace,
            name,
            &mut Budget::unlimited(),
        )
    }

    /// [`Self::open`] within `budget`; the diagnosis runs only when the budget can pay for it.
    fn open_diagnosed(
        &self,
        envelope_bytes: &[u8],
        scope: Scope,
        namespace: &str,
        name: &str,
        budget: &mut Budget,
    ) -> Result<(SecretBytes, &str), ValueError> {
        match self.open_budgeted(envelope_bytes, &scope.label(namespace, name), budget) {
            Err(ValueError::NoKey) => {
                let cost = self.keys.len() * (Scope::ALL.len() - 1);
                if budget.left() < cost {
                    return Err(ValueError::NoKey);
                }
                budget.spend(cost);
                Err(self.diagnose(envelope_bytes, scope, namespace, name))
            }
            other => other,
        }
    }

    /// Why no key opens `envelope_bytes` under `scope`: tries the other scopes' labels with
    /// every key. Never returns plaintext.
    pub fn diagnose(
        &self,
        envelope_bytes: &[u8],
        scope: Scope,
        namespace: &str,
        name: &str,
    ) -> ValueError {
        for other in Scope::ALL.into_iter().filter(|s| *s != scope) {
            let label = other.label(namespace, name);
            // The plaintext, if any, is dropped here and zeroized by SecretBytes.
            if self.open_with_label(envelope_bytes, &label).is_ok() {
                return ValueError::WrongScope {
                    sealed_for: other,
                    selected: scope,
                };
            }
        }
        ValueError::NoKey
    }

    /// Unseals a SealedSecret as the controller does (Go `(*SealedSecret).Unseal`): the label
    /// comes from the top-level name, namespace and scope annotations; the Secret gets the
    /// template's metadata, type and immutability, the SealedSecret's name and namespace, and an
    /// ownerReference to it unless the template opts out. Failures are collected per item.
    pub fn unseal(&self, sealed: &SealedSecret, opts: &UnsealOptions) -> Result<Unsealed> {
        let meta = &sealed.metadata;
        let scope = sealed.scope();
        let mut budget = Budget::new(opts.max_key_operations);
        let mut opened_by = BTreeMap::new();
        let mut secret = Secret::default();
        match &sealed.spec.data {
            None => {
                let template = &sealed.spec.template;
                secret.metadata = template.metadata.clone();
                secret.type_.clone_from(&template.type_);
                secret.immutable = template.immutable;
                let mut failures = Vec::new();
                for (item, text) in &sealed.spec.encrypted_data {
                    let bytes = match b64::decode(text) {
                        Ok(b) => b,
                        Err(Error::Base64 { offset, .. }) => {
                            failures.push((item.clone(), ValueError::Base64 { offset }));
                            continue;
                        }
                        Err(e) => {
                            failures.push((item.clone(), ValueError::Malformed(e.to_string())));
                            continue;
                        }
                    };
                    match self.open_diagnosed(
                        &bytes,
                        scope,
                        &meta.namespace,
                        &meta.name,
                        &mut budget,
                    ) {
                        Ok((plain, key_id)) => {
                            opened_by.insert(item.clone(), key_id.to_owned());
                            secret.data.insert(item.clone(), plain);
                        }
                        Err(e) => failures.push((item.clone(), e)),
                    }
                }
                // A value that did not open fails the unseal: its templates are not rendered
                // (Go renders them anyway and adds their errors), so a SealedSecret whose
                // author holds no value this cluster opens gets no template work done.
                if !failures.is_empty() {
                    return Err(UnsealError { failures }.into());
                }
                // Go renders each template over a map of the decrypted values (as strings);
                // a template key replaces an encrypted item of the same name.
                let values = secret.data.clone();
                for (item, text) in &template.data {
                    match hush_template::render_with(
                        Preset::SealedSecrets,
                        opts.template_limits,
                        item,
                        text,
                        &values,
                    ) {
                        Ok(rendered) => {
                            secret.data.insert(item.clone(), rendered);
                        }
                        Err(e) => {
                            failures.push((item.clone(), ValueError::Template(e.to_string())))
                        }
                    }
                }
                if !failures.is_empty() {
                    return Err(UnsealError { failures }.into());
                }
            }
            Some(blob) => {
                if !opts.accept_deprecated_v1_data {
                    return Err(Error::DeprecatedData);
                }
                if !sealed.spec.encrypted_data.is_empty() {
                    return Err(Error::DataAndEncryptedData);
                }
                let (plain, key_id) = self
                    .open_diagnosed(blob, scope, &meta.namespace, &meta.name, &mut budget)
                    .map_err(|e| UnsealError {
                        failures: vec![("data".to_owned(), e)],
                    })?;
                secret = serde_json::from_slice(plain.expose()).map_err(|e| Error::Parse {
                    what: "deprecated spec.data Secret",
                    reason: crate::error::redact(&e.to_string()),
                })?;
                opened_by.insert("data".to_owned(), key_id.to_owned());
            }
        }
        own(sealed, &mut secret);
        "Secret".clone_into(&mut secret.kind);
        "v1".clone_into(&mut secret.api_version);
        Ok(Unsealed { secret, opened_by })
    }
}

/// Gives `secret` the SealedSecret's namespace and name and, unless the template sets
/// [`SKIP_SET_OWNER_REFERENCES_ANNOTATION`] to `"true"`, an ownerReference making the
/// SealedSecret its controller, as [`Keyring::unseal`] (Bitnami's) does; the controller's path
/// that needs no decryption shapes its Secret through this too.
pub fn own(sealed: &SealedSecret, secret: &mut Secret) {
    let meta = &sealed.metadata;
    meta.namespace.clone_into(&mut secret.metadata.namespace);
    meta.name.clone_into(&mut secret.metadata.name);
    let skip = sealed
        .spec
        .template
        .metadata
        .annotations
        .get(SKIP_SET_OWNER_REFERENCES_ANNOTATION)
        .is_some_and(|v| v == "true");
    if !skip {
        secret.metadata.owner_references = vec![json!({
            "apiVersion": SEALED_SECRET_API_VERSION,
            "kind": SEALED_SECRET_KIND,
            "name": meta.name,
            "uid": meta.uid,
            "controller": true,
        })];
    }
}

/// Options of [`Keyring::unseal`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UnsealOptions {
    /// Accept the deprecated v1 `spec.data` (the controller's `--accept-deprecated-v1-data`,
    /// default true there; false in kubeseal `--recovery-unseal`).
    pub accept_deprecated_v1_data: bool,
    /// Budgets of each `spec.template.data` template (the `--template-max-*` flags); a template
    /// over one fails its item with an error naming the budget.
    pub template_limits: hush_template::Limits,
    /// At most this many RSA private-key operations for the whole SealedSecret (one per key
    /// tried on a value, newest key first; one per key and other scope for a failure's
    /// diagnosis). Values left when it is spent fail with [`ValueError::OverBudget`]. `None`: no
    /// limit (a CLI user's own file); the controller always sets one, since anyone who may
    /// write a SealedSecret or reach its HTTP API chooses how many values and keys that costs.
    pub max_key_operations: Option<usize>,
}

/// RSA private-key operations left for one unseal.
#[derive(Debug)]
struct Budget {
    limit: Option<usize>,
    left: usize,
}

impl Budget {
    fn new(limit: Option<usize>) -> Self {
        Self {
            limit,
            left: limit.unwrap_or(usize::MAX),
        }
    }

    fn unlimited() -> Self {
        Self::new(None)
    }

    fn left(&self) -> usize {
        self.left
    }

    fn spend(&mut self, n: usize) {
        self.left = self.left.saturating_sub(n);
    }

    /// The error of a value the budget could not pay for.
    fn spent(&self) -> ValueError {
        ValueError::OverBudget {
            limit: self.limit.unwrap_or(usize::MAX),
        }
    }
}

/// An unsealed Secret and, per item, the id of the key that opened it.
#[derive(Debug)]
pub struct Unsealed {
    /// The Secret the controller would create.
    pub secret: Secret,
    /// Item name to key id.
    pub opened_by: BTreeMap<String, String>,
}
