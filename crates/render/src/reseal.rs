//! Reseal mode: every rendered `v1 Secret` leaves the render as a strict-scope SealedSecret
//! sealed to the cluster's certificate, so Argo CD's manifest cache and API only hold
//! ciphertext; the in-cluster controller unseals.
//!
//! **Stable ciphertext.** With a render secret (held by the sidecar only), each value's
//! envelope is derived instead of drawn: `seed = HMAC-SHA256(render secret, "hush-reseal-v1" ‖
//! SPKI ‖ label ‖ key ‖ value)` (each field length-prefixed), session key = `HMAC(seed,
//! "session-key")`, OAEP seed stream = ChaCha20 keyed by `HMAC(seed, "oaep-seed")`. The same
//! plaintext, scope, key name and certificate give byte-identical output across renders, so
//! Argo CD shows no perpetual diff. AES-GCM's fixed zero nonce stays safe: a session key is
//! only ever used for one plaintext. Without the render secret, outsiders cannot confirm a
//! guessed value by re-encrypting it. What equal ciphertexts reveal: that this item (same
//! Secret, namespace, key and certificate) has the same value as in another render — i.e. that
//! it did not change; nothing else.
//!
//! OAEP encryption with a caller-chosen RNG uses the pure-Rust `rsa` crate: a public-key
//! operation, which RUSTSEC-2023-0071 (timing of private-key operations) does not concern.
//! Without a render secret, values are sealed with fresh randomness through hush-sealing (output
//! changes on every render; the caller warns).

use hmac::{Hmac, Mac};
use hush_crypto::cert::Certificate;
use hush_crypto::{DataKey, SystemEntropy, envelope};
use hush_sealing::{Scope, SealedSecret, Secret, b64};
use hush_sops::tree::Branch;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::BigUint;
use rsa::pkcs1::der::Decode as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::value::{self, from_json, to_json};
use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Seals Secrets to one certificate.
pub struct Resealer {
    cert: Certificate,
    rsa: rsa::RsaPublicKey,
    secret: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Resealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resealer")
            .field("fingerprint", &self.cert.public_key.fingerprint())
            .field("stable", &self.secret.is_some())
            .finish()
    }
}

impl Resealer {
    /// A resealer for a PEM certificate; `secret` (the render secret) makes output stable.
    pub fn new(cert_pem: &[u8], secret: Option<Zeroizing<Vec<u8>>>) -> Result<Self> {
        let cert = Certificate::from_pem(cert_pem).map_err(|e| Error::Reseal(e.to_string()))?;
        let rsa = rsa_public_key(cert.public_key.spki_der())
            .map_err(|e| Error::Reseal(format!("certificate key: {e}")))?;
        if secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(Error::Config(
                "the reseal secret must be at least 16 bytes".into(),
            ));
        }
        Ok(Self { cert, rsa, secret })
    }

    /// Whether the output is stable across renders.
    pub fn is_stable(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether a document is resealed (`apiVersion: v1`, `kind: Secret`).
    pub fn applies_to(doc: &[hush_sops::tree::Item]) -> bool {
        value::get_str(doc, "apiVersion") == Some("v1")
            && value::get_str(doc, "kind") == Some("Secret")
    }

    /// Seals a Secret document; `namespace` is used when the Secret names none.
    pub fn reseal(&self, doc: &Branch, namespace: &str, file: &str) -> Result<Branch> {
        let mut secret: Secret = serde_json::from_value(to_json(&hush_sops::tree::Value::Map(
            doc.clone(),
        )))
        .map_err(|e| Error::Reseal(format!("{file}: not a valid Secret: {}", redact(&e))))?;
        if secret.metadata.namespace.is_empty() {
            namespace.clone_into(&mut secret.metadata.namespace);
        }
        if secret.metadata.namespace.is_empty() {
            return Err(Error::Reseal(format!(
                "{file}: Secret {} has no namespace and ARGOCD_APP_NAMESPACE is not set",
                secret.metadata.name
            )));
        }
        if secret.metadata.name.is_empty() {
            return Err(Error::Reseal(format!("{file}: a Secret has no name")));
        }
        Scope::Strict.apply_to(&mut secret.metadata.annotations);
        let sealed = match &self.secret {
            Some(k) => self.seal_stable(&secret, k)?,
            None => {
                hush_sealing::seal::seal_secret(&self.cert.public_key, &secret, &mut SystemEntropy)
                    .map_err(|e| Error::Reseal(e.to_string()))?
            }
        };
        let json = serde_json::to_value(&sealed).map_err(|e| Error::Reseal(e.to_string()))?;
        match from_json(&json) {
            hush_sops::tree::Value::Map(m) => Ok(m),
            _ => Err(Error::Reseal("unexpected SealedSecret shape".into())),
        }
    }

    fn seal_stable(&self, secret: &Secret, key: &[u8]) -> Result<SealedSecret> {
        let meta = &secret.metadata;
        let label = Scope::Strict.label(&meta.namespace, &meta.name);
        let label_str = String::from_utf8(label.clone())
            .map_err(|_| Error::Reseal("the namespace/name is not UTF-8".into()))?;
        let mut encrypted_data = std::collections::BTreeMap::new();
        for (name, value) in secret.items() {
            let seed = self.seed(key, &label, name, value.expose())?;
            let session = derive(&seed, b"session-key")?;
            let oaep_seed = derive(&seed, b"oaep-seed")?;
            let mut rng = ChaCha20Rng::from_seed(*oaep_seed);
            let padding = rsa::Oaep::new_with_label::<Sha256, _>(label_str.clone());
            let rsa_ct = self
                .rsa
                .encrypt(&mut rng, padding, &session[..])
                .map_err(|e| Error::Reseal(format!("RSA-OAEP: {e}")))?;
            let env = envelope::assemble(&rsa_ct, &DataKey::from_bytes(*session), value.expose())
                .map_err(|e| Error::Reseal(e.to_string()))?;
            encrypted_data.insert(name.to_owned(), b64::encode(&env));
        }
        Ok(hush_sealing::seal::assemble(
            secret,
            Scope::Strict,
            encrypted_data,
        ))
    }

    fn seed(
        &self,
        key: &[u8],
        label: &[u8],
        name: &str,
        value: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>> {
        let mut mac =
            HmacSha256::new_from_slice(key).map_err(|_| Error::Reseal("HMAC key".into()))?;
        mac.update(b"hush-reseal-v1");
        for field in [
            self.cert.public_key.spki_der(),
            label,
            name.as_bytes(),
            value,
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
    }
}

/// Largest RSA modulus accepted, in bits: what hush-crypto (aws-lc-rs) accepts for a sealing
/// certificate. The `rsa` crate's own default is 4096, below the 8192-bit keys Sealed Secrets
/// controllers are often given (`--key-size`).
const MAX_KEY_BITS: usize = 16384;

/// The certificate's public key for the `rsa` crate (stable OAEP needs a caller-chosen RNG).
fn rsa_public_key(spki_der: &[u8]) -> std::result::Result<rsa::RsaPublicKey, String> {
    let spki =
        rsa::pkcs8::SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|e| e.to_string())?;
    let key = rsa::pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes())
        .map_err(|e| e.to_string())?;
    rsa::RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(key.modulus.as_bytes()),
        BigUint::from_bytes_be(key.public_exponent.as_bytes()),
        MAX_KEY_BITS,
    )
    .map_err(|e| e.to_string())
}

fn derive(seed: &[u8; 32], what: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut mac = HmacSha256::new_from_slice(seed).map_err(|_| Error::Reseal("HMAC key".into()))?;
    mac.update(what);
    Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
}

/// serde_json's messages can quote input; keep only the position.
fn redact(e: &serde_json::Error) -> String {
    format!("invalid field (line {}, column {})", e.line(), e.column())
}

/// The certificate PEM from a file or an `http(s)://` URL (the controller's `/v1/cert.pem`).
pub async fn load_cert(source: &str) -> Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Reseal(format!("HTTP client: {e}")))?;
        let resp =
            client.get(source).send().await.map_err(|e| {
                Error::Reseal(format!("fetching the certificate: {}", e.without_url()))
            })?;
        if !resp.status().is_success() {
            return Err(Error::Reseal(format!(
                "fetching the certificate: HTTP {}",
                resp.status()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Reseal(format!("fetching the certificate: {}", e.without_url())))?;
        Ok(bytes.to_vec())
    } else {
        std::fs::read(source).map_err(|source_err| Error::Io {
            path: source.into(),
            error: source_err,
        })
    }
}

#[cfg(test)]
mod tests {
    use hush_crypto::rsa::RsaPrivateKey;
    use hush_sealing::unseal::{Keyring, UnsealOptions};

    use super::*;

    /// Stable resealing to an 8192-bit controller key (Sealed Secrets' `--key-size 8192`) used
    /// to fail: the `rsa` crate refuses keys over 4096 bits by default.
    #[test]
    fn stable_resealing_works_with_8192_bit_keys() {
        let key = RsaPrivateKey::generate(8192).unwrap();
        let cert =
            hush_crypto::cert::self_signed(&key, "", 0, 4_000_000_000, &mut SystemEntropy).unwrap();
        let r = Resealer::new(
            cert.to_pem().as_bytes(),
            Some(Zeroizing::new(b"0123456789abcdef".to_vec())),
        )
        .unwrap();
        let doc = match from_json(&serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"},
            "data": {"k": "dmFsdWU="}
        })) {
            hush_sops::tree::Value::Map(m) => m,
            _ => unreachable!(),
        };
        let first = r.reseal(&doc, "ns", "f.yaml").unwrap();
        assert_eq!(first, r.reseal(&doc, "ns", "f.yaml").unwrap(), "not stable");
        let sealed: SealedSecret =
            serde_json::from_value(to_json(&hush_sops::tree::Value::Map(first))).unwrap();
        let mut ring = Keyring::new();
        ring.add(key);
        let opened = ring.unseal(&sealed, &UnsealOptions::default()).unwrap();
        assert_eq!(opened.secret.data["k"].expose(), b"value");
    }
}
