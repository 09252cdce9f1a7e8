//! AES-256-GCM in the two shapes hush needs.
//!
//! - sops: a random **32-byte** nonce (Go's `cipher.NewGCMWithNonceSize(block, 32)`), the tree path
//!   as associated data, tag kept apart from the ciphertext.
//! - Sealed Secrets: a fresh session key per value, so a fixed **all-zero 12-byte** nonce and no
//!   associated data are safe; tag appended to the ciphertext.

use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};

use crate::{DataKey, Entropy, Error, Result, SecretBytes};

/// Length of the GCM tag in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the nonce sops uses.
pub const SOPS_NONCE_LEN: usize = 32;

type SopsGcm = AesGcm<Aes256, U32>;
type StdGcm = AesGcm<Aes256, U12>;

/// A sops value ciphertext: data, nonce and tag, as the three fields of `ENC[AES256_GCM,…]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SopsCiphertext {
    /// Encrypted bytes, same length as the plaintext.
    pub data: Vec<u8>,
    /// The 32-byte nonce.
    pub iv: [u8; SOPS_NONCE_LEN],
    /// The 16-byte GCM tag.
    pub tag: [u8; TAG_LEN],
}

impl std::fmt::Debug for SopsCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsCiphertext")
            .field("data_len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// Encrypts `plaintext` for sops with a fresh 32-byte nonce drawn from `rng`.
pub fn sops_encrypt(
    key: &DataKey,
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut dyn Entropy,
) -> Result<SopsCiphertext> {
    let mut iv = [0u8; SOPS_NONCE_LEN];
    rng.fill(&mut iv)?;
    sops_encrypt_with_iv(key, &iv, plaintext, aad)
}

/// Encrypts with a caller-chosen nonce. Used to keep an unchanged value's IV on re-encryption
/// (sops does the same) and by known-answer tests. Never reuse a nonce for different plaintext.
pub fn sops_encrypt_with_iv(
    key: &DataKey,
    iv: &[u8; SOPS_NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<SopsCiphertext> {
    let cipher = SopsGcm::new(key.expose().into());
    let mut data = plaintext.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::<U32>::from_slice(iv), aad, &mut data)
        .map_err(|_| Error::Rsa("AES-GCM encryption failed"))?;
    Ok(SopsCiphertext {
        data,
        iv: *iv,
        tag: tag.into(),
    })
}

/// Decrypts a sops value. A changed byte anywhere, or the wrong path as `aad`, gives [`Error::BadTag`].
pub fn sops_decrypt(
    key: &DataKey,
    iv: &[u8],
    data: &[u8],
    tag: &[u8],
    aad: &[u8],
) -> Result<SecretBytes> {
    if iv.len() != SOPS_NONCE_LEN {
        return Err(Error::NonceLength {
            expected: SOPS_NONCE_LEN,
            got: iv.len(),
        });
    }
    if tag.len() != TAG_LEN {
        return Err(Error::Truncated {
            needed: TAG_LEN,
            got: tag.len(),
        });
    }
    let cipher = SopsGcm::new(key.expose().into());
    let mut buf = SecretBytes::from_slice(data).into_zeroizing();
    cipher
        .decrypt_in_place_detached(
            Nonce::<U32>::from_slice(iv),
            aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::BadTag)?;
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

/// Sealed Secrets' symmetric step: AES-256-GCM with a zero 12-byte nonce and no AAD.
/// Returns `ciphertext || tag`.
pub fn zero_nonce_seal(session_key: &DataKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = StdGcm::new(session_key.expose().into());
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::<U12>::default(), &[], &mut out)
        .map_err(|_| Error::Rsa("AES-GCM encryption failed"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens `ciphertext || tag` produced by [`zero_nonce_seal`] (or Go's `gcm.Seal`).
pub fn zero_nonce_open(session_key: &DataKey, sealed: &[u8]) -> Result<SecretBytes> {
    let Some(split) = sealed.len().checked_sub(TAG_LEN) else {
        return Err(Error::Truncated {
            needed: TAG_LEN,
            got: sealed.len(),
        });
    };
    let (ct, tag) = sealed.split_at(split);
    let cipher = StdGcm::new(session_key.expose().into());
    let mut buf = SecretBytes::from_slice(ct).into_zeroizing();
    cipher
        .decrypt_in_place_detached(
            &Nonce::<U12>::default(),
            &[],
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::BadTag)?;
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}
