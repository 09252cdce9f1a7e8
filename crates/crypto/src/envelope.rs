//! The Sealed Secrets hybrid envelope (bitnami-labs/sealed-secrets `HybridEncrypt`):
//!
//! ```text
//! u16_be(L) || RSA-OAEP-SHA256(session key, label) [L bytes] || AES-256-GCM(session key,
//!     zero 12-byte nonce, no AAD) ciphertext || 16-byte tag
//! ```
//!
//! The label binds the value to its scope: `"<ns>/<name>"` (strict), `"<ns>"` (namespace-wide) or
//! `""` (cluster-wide).

use crate::aead::{TAG_LEN, zero_nonce_open, zero_nonce_seal};
use crate::rsa::{RsaPrivateKey, RsaPublicKey};
use crate::{DataKey, Entropy, Error, Result, SecretBytes};

/// Seals `plaintext` to `public` with `label`, drawing the 32-byte session key from `rng`.
/// The OAEP seed comes from the system RNG inside aws-lc-rs.
pub fn seal(
    public: &RsaPublicKey,
    plaintext: &[u8],
    label: &[u8],
    rng: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    let session_key = DataKey::generate(rng)?;
    let rsa_ct = public.encrypt_oaep(session_key.expose(), label)?;
    assemble(&rsa_ct, &session_key, plaintext)
}

/// Builds the envelope from an already computed RSA ciphertext of `session_key`. Used by
/// [`seal`] and by callers that compute OAEP deterministically (stable resealing).
pub fn assemble(rsa_ct: &[u8], session_key: &DataKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    let len =
        u16::try_from(rsa_ct.len()).map_err(|_| Error::Rsa("RSA ciphertext over 65535 bytes"))?;
    let sym = zero_nonce_seal(session_key, plaintext)?;
    let mut out = Vec::with_capacity(2 + rsa_ct.len() + sym.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(rsa_ct);
    out.extend_from_slice(&sym);
    Ok(out)
}

/// The parts of an envelope, split without any cryptography.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// The RSA-OAEP ciphertext of the session key.
    pub rsa_ciphertext: &'a [u8],
    /// AES-GCM ciphertext followed by its tag.
    pub sealed: &'a [u8],
}

/// Splits an envelope into its RSA and AES parts, checking lengths only.
pub fn split(envelope: &[u8]) -> Result<Parts<'_>> {
    if envelope.len() < 2 {
        return Err(Error::Truncated {
            needed: 2,
            got: envelope.len(),
        });
    }
    let prefix = usize::from(u16::from_be_bytes([envelope[0], envelope[1]]));
    let rest = &envelope[2..];
    if prefix > rest.len() {
        return Err(Error::LengthPrefixTooLarge {
            prefix,
            remaining: rest.len(),
        });
    }
    let (rsa_ciphertext, sealed) = rest.split_at(prefix);
    if sealed.len() < TAG_LEN {
        return Err(Error::Truncated {
            needed: 2 + prefix + TAG_LEN,
            got: envelope.len(),
        });
    }
    Ok(Parts {
        rsa_ciphertext,
        sealed,
    })
}

/// Opens an envelope with one private key.
pub fn open(key: &RsaPrivateKey, envelope: &[u8], label: &[u8]) -> Result<SecretBytes> {
    let parts = split(envelope)?;
    open_parts(key, parts, label)
}

/// Opens already split parts with one private key.
pub fn open_parts(key: &RsaPrivateKey, parts: Parts<'_>, label: &[u8]) -> Result<SecretBytes> {
    let session = key.decrypt_oaep(parts.rsa_ciphertext, label)?;
    // Go accepts 16/24-byte session keys (AES-128/192); nothing writes them and we refuse them.
    let session_key = DataKey::try_from_slice(session.expose())?;
    zero_nonce_open(&session_key, parts.sealed)
}

/// Opens an envelope with the first of `keys` that works, returning the plaintext and the index
/// of the key that opened it. Length errors are reported at once (no key can help); when no key
/// opens the value the result is [`Error::DecryptionFailed`].
pub fn open_with_any<'k, I>(keys: I, envelope: &[u8], label: &[u8]) -> Result<(SecretBytes, usize)>
where
    I: IntoIterator<Item = &'k RsaPrivateKey>,
{
    let parts = split(envelope)?;
    let mut last = Error::DecryptionFailed;
    for (i, key) in keys.into_iter().enumerate() {
        if key.size_bytes() != parts.rsa_ciphertext.len() {
            continue;
        }
        match open_parts(key, parts, label) {
            Ok(plain) => return Ok((plain, i)),
            // The RSA step passed but GCM failed: the value was tampered with; keep that reason.
            Err(e @ Error::BadTag) => last = e,
            Err(_) => {}
        }
    }
    Err(last)
}
