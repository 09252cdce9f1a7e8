//! RS256 JSON Web Signatures (RFC 7515 compact form, RFC 7518 §3.3): the client assertions of
//! Google's JWT-bearer grant (service-account keys) and of Microsoft Entra ID's client
//! certificates. Signing only; hush never verifies tokens (the clouds do).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// An RSA private key that signs RS256 JWTs. `Debug` shows only the modulus size.
pub struct Rs256Signer {
    key: RsaKeyPair,
}

impl std::fmt::Debug for Rs256Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rs256Signer({} bits)", self.key.public_modulus_len() * 8)
    }
}

impl Rs256Signer {
    /// Reads the first `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) PEM block; other
    /// blocks (certificates) are skipped.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let parse = |reason: String| Error::Parse {
            what: "RSA private key",
            reason,
        };
        let blocks = pem::parse_many(text).map_err(|e| parse(e.to_string()))?;
        for block in &blocks {
            let der = Zeroizing::new(block.contents().to_vec());
            let key = match block.tag() {
                "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
                "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
                _ => continue,
            };
            return key
                .map(|key| Self { key })
                .map_err(|e| parse(e.to_string()));
        }
        Err(parse(
            "no 'PRIVATE KEY' or 'RSA PRIVATE KEY' block found".into(),
        ))
    }

    /// The compact JWS `base64url(header).base64url(claims).base64url(signature)` over the
    /// given JSON texts (`header` must say `"alg":"RS256"`).
    pub fn sign(&self, header_json: &[u8], claims_json: &[u8]) -> Result<String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut out = b64.encode(header_json);
        out.push('.');
        out.push_str(&b64.encode(claims_json));
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                out.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Rsa("RS256 signing failed"))?;
        out.push('.');
        out.push_str(&b64.encode(&signature));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::RsaPrivateKey;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn signs_what_the_public_key_verifies() {
        let key = RsaPrivateKey::generate(2048).unwrap();
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", key.to_pkcs8_der().expose()));
        let signer = Rs256Signer::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(format!("{signer:?}"), "Rs256Signer(2048 bits)");
        let jws = signer
            .sign(br#"{"alg":"RS256"}"#, br#"{"iss":"a"}"#)
            .unwrap();
        let (signed, sig) = jws.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        let public = x509_spki_rsa_public(key.public_key().spki_der());
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(signed.as_bytes(), &sig)
            .unwrap();
        assert!(signed.starts_with("eyJhbGciOiJSUzI1NiJ9."));
        let pkcs1_pem = key.to_pkcs1_pem().unwrap();
        Rs256Signer::from_pem(pkcs1_pem.expose()).unwrap();
        assert!(
            Rs256Signer::from_pem(
                b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        assert!(Rs256Signer::from_pem(b"not pem").is_err());
    }

    /// The RSAPublicKey inside a SubjectPublicKeyInfo (what ring-style verifiers take).
    fn x509_spki_rsa_public(spki: &[u8]) -> Vec<u8> {
        use pkcs8::der::Decode as _;
        let info = pkcs8::SubjectPublicKeyInfoRef::from_der(spki).unwrap();
        info.subject_public_key.raw_bytes().to_vec()
    }
}
