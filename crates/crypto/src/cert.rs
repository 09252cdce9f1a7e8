//! X.509 certificates for sealing keys: creation as the Sealed Secrets controller makes them, and
//! parsing of the certificate `kubeseal --cert` reads.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, SerialNumber,
};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::rsa::{RsaPrivateKey, RsaPublicKey};
use crate::{Entropy, Error, Result};

/// A parsed certificate: its RSA public key and validity window (Unix seconds).
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The subject public key.
    pub public_key: RsaPublicKey,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// The certificate DER.
    pub der: Vec<u8>,
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM text, as Sealed Secrets does.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let blocks = pem::parse_many(text).map_err(|e| Error::Parse {
            what: "certificate",
            reason: e.to_string(),
        })?;
        let block = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| Error::Parse {
                what: "certificate",
                reason: "no 'CERTIFICATE' PEM block found".into(),
            })?;
        Self::from_der(block.contents())
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| Error::Parse {
            what: "certificate",
            reason: e.to_string(),
        })?;
        let public_key = RsaPublicKey::from_spki_der(cert.public_key().raw)?;
        Ok(Self {
            public_key,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            der: der.to_vec(),
        })
    }

    /// PEM `CERTIFICATE`.
    pub fn to_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("CERTIFICATE", self.der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }
}

/// Creates a self-signed certificate for a sealing key, shaped as the Sealed Secrets controller
/// makes it: subject and issuer `CN=<common_name>` (empty DN when empty), CA basic constraints,
/// random serial below 2^128, SHA256-RSA signature, valid from `not_before` to `not_after`
/// (Unix seconds; the caller reads the clock so this crate stays pure).
pub fn self_signed(
    key: &RsaPrivateKey,
    common_name: &str,
    not_before: i64,
    not_after: i64,
    rng: &mut dyn Entropy,
) -> Result<Certificate> {
    let cert_err = |e: rcgen::Error| Error::Certificate(e.to_string());
    let pkcs8_pem = zeroize::Zeroizing::new(pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        key.to_pkcs8_der().expose().to_vec(),
    )));
    let key_pair =
        KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8_pem, &PKCS_RSA_SHA256).map_err(cert_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if !common_name.is_empty() {
        dn.push(DnType::CommonName, common_name);
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::EncipherOnly];
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)?;
    serial[0] &= 0x7f; // positive, below 2^127 < 2^128
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before)
        .map_err(|e| Error::Certificate(e.to_string()))?;
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after)
        .map_err(|e| Error::Certificate(e.to_string()))?;
    let cert = params.self_signed(&key_pair).map_err(cert_err)?;
    Certificate::from_der(cert.der())
}
