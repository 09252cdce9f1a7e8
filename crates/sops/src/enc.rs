//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` values: parsing, formatting, and the per-value
//! AES-256-GCM step with the key path as associated data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hush_crypto::DataKey;
use hush_crypto::aead::{SOPS_NONCE_LEN, sops_decrypt, sops_encrypt_with_iv};

use crate::tree::{Value, ValueType};

/// The parts of an `ENC[…]` string, still base64-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncParts<'a> {
    /// Base64 ciphertext.
    pub data: &'a str,
    /// Base64 nonce.
    pub iv: &'a str,
    /// Base64 tag.
    pub tag: &'a str,
    /// The `type:` name.
    pub ty: &'a str,
}

const PREFIX: &str = "ENC[AES256_GCM,data:";

/// Whether `s` looks like an `ENC[…]` value (sops' regex, greedy, unanchored at the end).
pub fn is_enc(s: &str) -> bool {
    parse(s).is_some()
}

/// Splits an `ENC[…]` string the way `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`
/// does (`.` stops at a newline).
pub fn parse(s: &str) -> Option<EncParts<'_>> {
    let rest = s.strip_prefix(PREFIX)?;
    let line = rest.split('\n').next().unwrap_or(rest);
    let end = line.rfind(']')?;
    let body = &line[..end];
    let t = body.rfind(",type:")?;
    let ty = &body[t + 6..];
    let g = body[..t].rfind(",tag:")?;
    let tag = &body[g + 5..t];
    let i = body[..g].rfind(",iv:")?;
    let iv = &body[i + 4..g];
    let data = &body[..i];
    if data.is_empty() || iv.is_empty() || tag.is_empty() || ty.is_empty() {
        return None;
    }
    Some(EncParts { data, iv, tag, ty })
}

/// Formats an `ENC[…]` string.
pub fn format(data: &[u8], iv: &[u8], tag: &[u8], ty: ValueType) -> String {
    let mut s = String::with_capacity(40 + data.len() * 4 / 3 + 80);
    s.push_str(PREFIX);
    STANDARD.encode_string(data, &mut s);
    s.push_str(",iv:");
    STANDARD.encode_string(iv, &mut s);
    s.push_str(",tag:");
    STANDARD.encode_string(tag, &mut s);
    s.push_str(",type:");
    s.push_str(ty.as_str());
    s.push(']');
    s
}

/// Why a single value could not be decrypted (the caller adds the key path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// Not an `ENC[…]` string.
    NotEnc,
    /// A field is not valid base64.
    Base64(&'static str),
    /// The `type:` is unknown.
    UnknownType,
    /// Authentication failed.
    BadTag,
    /// The plaintext does not parse as its `type:`.
    BadPlaintext(&'static str),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::NotEnc => f.write_str("not an ENC[AES256_GCM,…] value"),
            ValueError::Base64(field) => write!(f, "the {field} field is not valid base64"),
            ValueError::UnknownType => f.write_str("unknown value type"),
            ValueError::BadTag => f.write_str(
                "authentication failed: the value was changed, moved to another key, or encrypted with another data key",
            ),
            ValueError::BadPlaintext(t) => write!(f, "the decrypted value is not a valid {t}"),
        }
    }
}

/// Decrypts one `ENC[…]` string with `aad` (the key path plus `:`).
pub fn decrypt_value(key: &DataKey, s: &str, aad: &[u8]) -> Result<Value, ValueError> {
    let p = parse(s).ok_or(ValueError::NotEnc)?;
    let ty = ValueType::parse(p.ty).ok_or(ValueError::UnknownType)?;
    let data = STANDARD
        .decode(p.data)
        .map_err(|_| ValueError::Base64("data"))?;
    let iv = STANDARD
        .decode(p.iv)
        .map_err(|_| ValueError::Base64("iv"))?;
    let tag = STANDARD
        .decode(p.tag)
        .map_err(|_| ValueError::Base64("tag"))?;
    let pt = sops_decrypt(key, &iv, &data, &tag, aad).map_err(|_| ValueError::BadTag)?;
    Value::from_plaintext(ty, pt.expose().to_vec()).ok_or(ValueError::BadPlaintext(ty.as_str()))
}

/// The decrypted `iv` of an `ENC[…]` string, for the IV stash.
pub(crate) fn iv_of(s: &str) -> Option<[u8; SOPS_NONCE_LEN]> {
    let p = parse(s)?;
    STANDARD.decode(p.iv).ok()?.try_into().ok()
}

/// Encrypts plaintext bytes of type `ty` with an explicit IV.
pub fn encrypt_bytes(
    key: &DataKey,
    iv: &[u8; SOPS_NONCE_LEN],
    plaintext: &[u8],
    ty: ValueType,
    aad: &[u8],
) -> hush_crypto::Result<String> {
    let ct = sops_encrypt_with_iv(key, iv, plaintext, aad)?;
    Ok(format(&ct.data, &ct.iv, &ct.tag, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer from getsops/sops aes/cipher_test.go: key = 32 × 'f', AAD `bar:`.
    #[test]
    fn sops_known_answer() {
        let key = DataKey::from_bytes([b'f'; 32]);
        let s = "ENC[AES256_GCM,data:oYyi,iv:MyIDYbT718JRr11QtBkcj3Dwm4k1aCGZBVeZf0EyV8o=,tag:t5z2Z023Up0kxwCgw1gNxg==,type:str]";
        assert_eq!(
            decrypt_value(&key, s, b"bar:"),
            Ok(Value::Str("foo".into()))
        );
        assert_eq!(decrypt_value(&key, s, b"baz:"), Err(ValueError::BadTag));
        let iv = iv_of(s).unwrap_or([0; 32]);
        assert_eq!(
            encrypt_bytes(&key, &iv, b"foo", ValueType::Str, b"bar:")
                .ok()
                .as_deref(),
            Some(s)
        );
    }

    #[test]
    fn parse_is_greedy_like_the_regex() {
        let p = parse("ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]trailing");
        assert_eq!(
            p,
            Some(EncParts {
                data: "a",
                iv: "b",
                tag: "c",
                ty: "str"
            })
        );
        assert!(parse("ENC[AES256_GCM,data:,iv:b,tag:c,type:str]").is_none());
        assert!(parse("ENC[AES256_GCM,data:a,iv:b,tag:c,type:]").is_none());
        assert!(parse("ENC[AES256_GCM,data:a,iv:b,tag:c,type:str").is_none());
        assert!(parse("enc[AES256_GCM,data:a,iv:b,tag:c,type:str]").is_none());
    }
}
