//! Byte containers for secrets: zeroized on drop, never serializable, `Debug` prints `<redacted>`.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes of any length (a decrypted value, a private key's DER).
///
/// Cloning copies the secret; both copies are zeroized on drop.
///
/// Equality is constant-time in the contents (`subtle`); only the lengths may show.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl subtle::ConstantTimeEq for SecretBytes {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(self, other))
    }
}

impl Eq for SecretBytes {}

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The secret content. Keep the borrow short and do not log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Moves the bytes out into a zeroizing vector.
    pub fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(std::mem::take(&mut self.0))
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&str> for SecretBytes {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

/// A 32-byte symmetric data key (sops data key, Sealed Secrets session key).
///
/// Equality is constant-time (`subtle`).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DataKey::LEN]);

impl subtle::ConstantTimeEq for DataKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(self, other))
    }
}

impl Eq for DataKey {}

impl DataKey {
    /// Length of a data key in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// Copies a slice that must be exactly 32 bytes.
    pub fn try_from_slice(bytes: &[u8]) -> crate::Result<Self> {
        let arr: [u8; Self::LEN] = bytes.try_into().map_err(|_| crate::Error::KeyLength {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut dyn crate::Entropy) -> crate::Result<Self> {
        let mut k = [0u8; Self::LEN];
        rng.fill(&mut k)?;
        Ok(Self(k))
    }

    /// The key bytes. Keep the borrow short and do not log it.
    pub fn expose(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_content() {
        let s = SecretBytes::from("canary-0xdeadbeef");
        let d = DataKey::from_bytes([0x41; 32]);
        let out = format!("{s:?} {d:?}");
        assert!(!out.contains("canary"), "{out}");
        assert!(!out.contains("AAAA") && !out.contains("65"), "{out}");
        assert!(out.contains("redacted"));
    }

    /// Secrets compare in constant time: equality goes through `subtle` (a derived `==` stops
    /// at the first differing byte). Checked by type, since timing tests cannot be trusted.
    #[test]
    fn equality_is_constant_time() {
        fn constant_time<T: subtle::ConstantTimeEq + PartialEq>() {}
        constant_time::<SecretBytes>();
        constant_time::<DataKey>();
        let a = SecretBytes::from("hunter2");
        assert_eq!(a, SecretBytes::from("hunter2"));
        assert_ne!(a, SecretBytes::from("hunter3"));
        assert_ne!(a, SecretBytes::from("hunter"));
        assert_eq!(SecretBytes::default(), SecretBytes::from(""));
        assert_eq!(DataKey::from_bytes([1; 32]), DataKey::from_bytes([1; 32]));
        assert_ne!(DataKey::from_bytes([1; 32]), DataKey::from_bytes([2; 32]));
    }

    #[test]
    fn data_key_rejects_wrong_length() {
        assert!(matches!(
            DataKey::try_from_slice(&[0u8; 16]),
            Err(crate::Error::KeyLength {
                expected: 32,
                got: 16
            })
        ));
    }
}
