//! RSA-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1), as Go's `rsa.EncryptOAEP(sha256.New(), …)`.
//!
//! Backed by aws-lc-rs: constant-time private-key operations. The pure-Rust `rsa` crate carries
//! RUSTSEC-2023-0071 (Marvin timing attack), and our controller decrypts on a network endpoint.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use base64::Engine as _;
use pkcs8::der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::{Error, Result, SecretBytes};

const RSA_ENCRYPTION_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// An RSA private key used for OAEP decryption. `Debug` prints only the fingerprint.
#[derive(Clone)]
pub struct RsaPrivateKey {
    inner: Arc<OaepPrivateDecryptingKey>,
    pkcs8: SecretBytes,
    public: RsaPublicKey,
}

/// An RSA public key used for OAEP encryption.
#[derive(Clone)]
pub struct RsaPublicKey {
    inner: Arc<OaepPublicEncryptingKey>,
    spki_der: Vec<u8>,
    fingerprint: String,
}

impl RsaPrivateKey {
    /// Generates a key of `bits` bits: 2048, 3072, 4096 or 8192.
    pub fn generate(bits: usize) -> Result<Self> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            _ => {
                return Err(Error::Rsa(
                    "unsupported key size (use 2048, 3072, 4096 or 8192)",
                ));
            }
        };
        let key = PrivateDecryptingKey::generate(size).map_err(|_| Error::Rsa("key generation"))?;
        Self::from_decrypting_key(key)
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|e| Error::Parse {
            what: "RSA private key",
            reason: e.to_string(),
        })?;
        Self::from_decrypting_key(key)
    }

    /// Reads a PKCS#1 `RSAPrivateKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        let info = pkcs8::PrivateKeyInfo {
            algorithm: pkcs8::AlgorithmIdentifierRef {
                oid: RSA_ENCRYPTION_OID,
                parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
            },
            private_key: der,
            public_key: None,
        };
        let pkcs8 = Zeroizing::new(info.to_der().map_err(|e| Error::Parse {
            what: "RSA private key",
            reason: e.to_string(),
        })?);
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Reads a PEM private key: `RSA PRIVATE KEY` (PKCS#1, what Sealed Secrets writes) or
    /// `PRIVATE KEY` (PKCS#8). Other blocks before the key (a certificate) are skipped.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let blocks = pem::parse_many(text).map_err(|e| Error::Parse {
            what: "PEM private key",
            reason: e.to_string(),
        })?;
        for block in &blocks {
            match block.tag() {
                "RSA PRIVATE KEY" => return Self::from_pkcs1_der(block.contents()),
                "PRIVATE KEY" => return Self::from_pkcs8_der(block.contents()),
                _ => {}
            }
        }
        Err(Error::Parse {
            what: "PEM private key",
            reason: "no 'RSA PRIVATE KEY' or 'PRIVATE KEY' block found".into(),
        })
    }

    fn from_decrypting_key(key: PrivateDecryptingKey) -> Result<Self> {
        let pkcs8 = SecretBytes::from_slice(
            key.as_der()
                .map_err(|_| Error::Rsa("private key encoding"))?
                .as_ref(),
        );
        let public = RsaPublicKey::from_encrypting_key(key.public_key())?;
        let inner = OaepPrivateDecryptingKey::new(key).map_err(|_| Error::Rsa("OAEP key setup"))?;
        Ok(Self {
            inner: Arc::new(inner),
            pkcs8,
            public,
        })
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// PKCS#8 DER of the private key.
    pub fn to_pkcs8_der(&self) -> &SecretBytes {
        &self.pkcs8
    }

    /// PKCS#1 `RSAPrivateKey` DER.
    pub fn to_pkcs1_der(&self) -> Result<SecretBytes> {
        let info =
            pkcs8::PrivateKeyInfo::from_der(self.pkcs8.expose()).map_err(|e| Error::Parse {
                what: "RSA private key",
                reason: e.to_string(),
            })?;
        Ok(SecretBytes::from_slice(info.private_key))
    }

    /// PEM `RSA PRIVATE KEY` (PKCS#1), the form Sealed Secrets stores in `tls.key`.
    pub fn to_pkcs1_pem(&self) -> Result<SecretBytes> {
        let der = self.to_pkcs1_der()?;
        let block = pem::Pem::new("RSA PRIVATE KEY", der.expose().to_vec());
        let text = Zeroizing::new(pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ));
        // `block` holds key bytes too; pem::Pem does not zeroize, so overwrite what we can.
        drop(block);
        Ok(SecretBytes::from_slice(text.as_bytes()))
    }

    /// Modulus size in bytes (the RSA ciphertext length).
    pub fn size_bytes(&self) -> usize {
        self.inner.key_size_bytes()
    }

    /// RSA-OAEP-SHA256 decryption with `label`. Any failure is [`Error::DecryptionFailed`].
    pub fn decrypt_oaep(&self, ciphertext: &[u8], label: &[u8]) -> Result<SecretBytes> {
        let mut out = Zeroizing::new(vec![0u8; self.inner.min_output_size()]);
        let n = self
            .inner
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, Some(label))
            .map_err(|_| Error::DecryptionFailed)?
            .len();
        Ok(SecretBytes::from_slice(&out[..n]))
    }
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("fingerprint", &self.public.fingerprint)
            .finish_non_exhaustive()
    }
}

impl RsaPublicKey {
    /// Reads a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let key = PublicEncryptingKey::from_der(der).map_err(|e| Error::Parse {
            what: "RSA public key",
            reason: e.to_string(),
        })?;
        Self::from_encrypting_key(key)
    }

    /// Reads a PEM `PUBLIC KEY` block.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let block = pem::parse(text).map_err(|e| Error::Parse {
            what: "PEM public key",
            reason: e.to_string(),
        })?;
        if block.tag() != "PUBLIC KEY" {
            return Err(Error::Parse {
                what: "PEM public key",
                reason: format!("expected a 'PUBLIC KEY' block, found '{}'", block.tag()),
            });
        }
        Self::from_spki_der(block.contents())
    }

    fn from_encrypting_key(key: PublicEncryptingKey) -> Result<Self> {
        let spki_der = key
            .as_der()
            .map_err(|_| Error::Rsa("public key encoding"))?
            .as_ref()
            .to_vec();
        let fingerprint = ssh_fingerprint(&spki_der)?;
        let inner = OaepPublicEncryptingKey::new(key).map_err(|_| Error::Rsa("OAEP key setup"))?;
        Ok(Self {
            inner: Arc::new(inner),
            spki_der,
            fingerprint,
        })
    }

    /// DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", self.spki_der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// The key's fingerprint as Sealed Secrets computes it: `SHA256:` + unpadded base64 of the
    /// SHA-256 of the SSH wire encoding (`ssh.FingerprintSHA256`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Modulus size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.inner.key_size_bytes()
    }

    /// RSA-OAEP-SHA256 encryption of `message` (at most `size - 66` bytes) with `label`.
    /// The random seed comes from aws-lc-rs' system RNG.
    pub fn encrypt_oaep(&self, message: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.inner.ciphertext_size()];
        let n = self
            .inner
            .encrypt(&OAEP_SHA256_MGF1SHA256, message, &mut out, Some(label))
            .map_err(|_| Error::Rsa("OAEP encryption (message too long for the key?)"))?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for RsaPublicKey {}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("fingerprint", &self.fingerprint)
            .field("bits", &(self.size_bytes() * 8))
            .finish()
    }
}

/// `SHA256:<base64 unpadded>` over `string "ssh-rsa" || mpint e || mpint n` (RFC 4253 §6.6).
fn ssh_fingerprint(spki_der: &[u8]) -> Result<String> {
    use x509_parser::prelude::FromDer as _;
    use x509_parser::public_key::PublicKey;
    let (_, spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| Error::Parse {
            what: "RSA public key",
            reason: e.to_string(),
        })?;
    let parsed = spki.parsed().map_err(|e| Error::Parse {
        what: "RSA public key",
        reason: e.to_string(),
    })?;
    let PublicKey::RSA(rsa) = parsed else {
        return Err(Error::Parse {
            what: "RSA public key",
            reason: "not an RSA key".into(),
        });
    };
    let mut wire = Vec::with_capacity(spki_der.len() + 32);
    ssh_string(&mut wire, b"ssh-rsa");
    ssh_mpint(&mut wire, rsa.exponent);
    ssh_mpint(&mut wire, rsa.modulus);
    let digest = Sha256::digest(&wire);
    Ok(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    // Lengths here are at most a few KiB (an RSA modulus), so u32 cannot overflow.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn ssh_mpint(out: &mut Vec<u8>, unsigned_be: &[u8]) {
    let trimmed = match unsigned_be.iter().position(|&b| b != 0) {
        Some(i) => &unsigned_be[i..],
        None => &[][..],
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = Vec::with_capacity(trimmed.len() + 1);
        v.push(0);
        v.extend_from_slice(trimmed);
        ssh_string(out, &v);
    } else {
        ssh_string(out, trimmed);
    }
}
