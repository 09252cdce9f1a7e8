//! Encrypting and decrypting a tree: which values are encrypted (suffix, regex and comment
//! rules), the associated data of each value (its map-key path), the IV stash that keeps
//! unchanged values byte-identical, and the MAC.

use std::collections::HashMap;
use subtle::ConstantTimeEq as _;

use hush_crypto::aead::SOPS_NONCE_LEN;
use hush_crypto::{DataKey, Entropy};
use regex::Regex;
use sha2::{Digest, Sha256, Sha512};

use crate::enc;
use crate::tree::{Branch, Item, Value, ValueType};
use crate::{Error, Result};

/// The one rule that decides which values are encrypted. At most one may be set per file.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Values under a key ending with this suffix stay in plaintext (default `_unencrypted`).
    UnencryptedSuffix(String),
    /// Only values under a key ending with this suffix are encrypted.
    EncryptedSuffix(String),
    /// Values under a key matching this regex stay in plaintext.
    UnencryptedRegex(Regex),
    /// Only values under a key matching this regex are encrypted.
    EncryptedRegex(Regex),
    /// Values after a comment matching this regex stay in plaintext.
    UnencryptedCommentRegex(Regex),
    /// Only values after a comment matching this regex are encrypted.
    EncryptedCommentRegex(Regex),
}

/// The suffix sops uses when no rule is given.
pub const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

impl Rule {
    /// The metadata field name of the rule.
    pub fn field(&self) -> &'static str {
        match self {
            Rule::UnencryptedSuffix(_) => "unencrypted_suffix",
            Rule::EncryptedSuffix(_) => "encrypted_suffix",
            Rule::UnencryptedRegex(_) => "unencrypted_regex",
            Rule::EncryptedRegex(_) => "encrypted_regex",
            Rule::UnencryptedCommentRegex(_) => "unencrypted_comment_regex",
            Rule::EncryptedCommentRegex(_) => "encrypted_comment_regex",
        }
    }

    /// The rule's text as written in the metadata.
    pub fn text(&self) -> &str {
        match self {
            Rule::UnencryptedSuffix(s) | Rule::EncryptedSuffix(s) => s,
            Rule::UnencryptedRegex(r)
            | Rule::EncryptedRegex(r)
            | Rule::UnencryptedCommentRegex(r)
            | Rule::EncryptedCommentRegex(r) => r.as_str(),
        }
    }

    /// Builds a rule from its metadata field name and text.
    pub fn from_field(field: &str, text: &str) -> Result<Option<Self>> {
        let re = || Regex::new(text).map_err(|e| Error::Regex(text.to_owned(), e.to_string()));
        Ok(Some(match field {
            "unencrypted_suffix" => Rule::UnencryptedSuffix(text.to_owned()),
            "encrypted_suffix" => Rule::EncryptedSuffix(text.to_owned()),
            "unencrypted_regex" => Rule::UnencryptedRegex(re()?),
            "encrypted_regex" => Rule::EncryptedRegex(re()?),
            "unencrypted_comment_regex" => Rule::UnencryptedCommentRegex(re()?),
            "encrypted_comment_regex" => Rule::EncryptedCommentRegex(re()?),
            _ => return Ok(None),
        }))
    }

    /// The metadata field names of all rules.
    pub const FIELDS: [&'static str; 6] = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ];
}

/// sha256("sops"): the MAC's first input when `mac_only_encrypted` is set.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// How values are selected and authenticated.
#[derive(Debug, Clone)]
pub struct CryptConfig<'a> {
    /// The selection rule; `None` encrypts everything.
    pub rule: Option<&'a Rule>,
    /// Whether the MAC covers only encrypted values.
    pub mac_only_encrypted: bool,
}

/// IVs of decrypted values, so re-encrypting an unchanged value reuses its IV (as sops does).
#[derive(Default)]
pub struct IvStash {
    map: HashMap<(String, ValueType, Vec<u8>), [u8; SOPS_NONCE_LEN]>,
}

impl std::fmt::Debug for IvStash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvStash")
            .field("entries", &self.map.len())
            .finish()
    }
}

impl Drop for IvStash {
    fn drop(&mut self) {
        for ((_, _, pt), _) in self.map.drain() {
            wipe(pt);
        }
    }
}

/// Overwrites a plaintext buffer before it is freed.
fn wipe(mut v: Vec<u8>) {
    use zeroize::Zeroize as _;
    v.zeroize();
}

struct Walker<'a> {
    config: &'a CryptConfig<'a>,
    path: Vec<String>,
    comments: Vec<Vec<String>>,
    hash: Sha512,
}

impl<'a> Walker<'a> {
    fn new(config: &'a CryptConfig<'a>) -> Self {
        let mut hash = Sha512::new();
        if config.mac_only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        Self {
            config,
            path: Vec::new(),
            comments: Vec::new(),
            hash,
        }
    }

    fn aad(&self) -> String {
        let mut s = self.path.join(":");
        s.push(':');
        s
    }

    fn display_path(&self) -> String {
        if self.path.is_empty() {
            "(top level)".into()
        } else {
            self.path.join(".")
        }
    }

    fn should_encrypt(&self, is_comment: bool) -> bool {
        let Some(rule) = self.config.rule else {
            return true;
        };
        let path = &self.path;
        match rule {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
            Rule::UnencryptedCommentRegex(r) => {
                !self.comments.iter().flatten().any(|c| r.is_match(c))
            }
            Rule::EncryptedCommentRegex(r) => {
                let last = self.comments.len().saturating_sub(1);
                let last_len = self.comments.last().map_or(0, Vec::len);
                self.comments.iter().enumerate().any(|(i, cs)| {
                    cs.iter().enumerate().any(|(j, c)| {
                        // The matching comment line itself stays readable.
                        !(is_comment && i == last && j + 1 == last_len) && r.is_match(c)
                    })
                })
            }
        }
    }

    fn push_comment(&mut self, c: &str) {
        if let Some(top) = self.comments.last_mut() {
            top.push(c.to_owned());
        }
    }

    fn clear_comments(&mut self) {
        if let Some(top) = self.comments.last_mut() {
            top.clear();
        }
    }

    fn hash_leaf(&mut self, v: &Value, encrypted: bool) {
        if !self.config.mac_only_encrypted || encrypted {
            let h = &mut self.hash;
            v.write_mac_bytes(&mut |b| h.update(b));
        }
    }

    fn finish(self) -> String {
        hex_upper(&self.hash.finalize())
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Encrypts every selected value of `branches` in place and returns the MAC (uppercase hex).
///
/// Values whose `(path, type, plaintext)` is in `stash` keep their IV; others get a fresh one.
pub fn encrypt_tree(
    branches: &mut [Branch],
    key: &DataKey,
    config: &CryptConfig<'_>,
    rng: &mut dyn Entropy,
    stash: Option<&IvStash>,
) -> Result<String> {
    let mut w = Walker::new(config);
    let mut enc = Encryptor { key, rng, stash };
    for branch in branches.iter_mut() {
        encrypt_map(&mut w, &mut enc, branch)?;
    }
    Ok(w.finish())
}

struct Encryptor<'a> {
    key: &'a DataKey,
    rng: &'a mut dyn Entropy,
    stash: Option<&'a IvStash>,
}

impl Encryptor<'_> {
    fn encrypt(&mut self, aad: String, ty: ValueType, pt: &[u8]) -> Result<String> {
        let key = (aad, ty, pt.to_vec());
        let iv = match self.stash.and_then(|s| s.map.get(&key)) {
            Some(iv) => *iv,
            None => {
                let mut iv = [0u8; SOPS_NONCE_LEN];
                self.rng.fill(&mut iv)?;
                iv
            }
        };
        let (aad, _, mut pt_copy) = key;
        let out = enc::encrypt_bytes(self.key, &iv, pt, ty, aad.as_bytes());
        wipe(std::mem::take(&mut pt_copy));
        Ok(out?)
    }
}

fn check_comment_regex(w: &Walker<'_>, encrypted: &str) -> Result<()> {
    if let Some(Rule::UnencryptedCommentRegex(r)) = w.config.rule
        && r.is_match(encrypted)
    {
        return Err(Error::Unsupported(format!(
            "an encrypted comment under `{}` matches unencrypted_comment_regex {:?}; choose a regex that cannot match ENC[…] values",
            w.display_path(),
            r.as_str()
        )));
    }
    Ok(())
}

fn encrypt_map(w: &mut Walker<'_>, e: &mut Encryptor<'_>, map: &mut [Item]) -> Result<()> {
    w.comments.push(Vec::new());
    for item in map.iter_mut() {
        match item {
            Item::Comment(c) | Item::InlineComment(c) => {
                w.push_comment(c);
                if w.should_encrypt(true) && !c.is_empty() {
                    let s = e.encrypt(w.aad(), ValueType::Comment, c.as_bytes())?;
                    check_comment_regex(w, &s)?;
                    *c = s;
                }
            }
            Item::Entry(k, v) => {
                w.path.push(std::mem::take(k));
                let r = encrypt_value(w, e, v);
                *k = w.path.pop().unwrap_or_default();
                r?;
                w.clear_comments();
            }
        }
    }
    w.comments.pop();
    Ok(())
}

fn encrypt_value(w: &mut Walker<'_>, e: &mut Encryptor<'_>, v: &mut Value) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Map(m) => encrypt_map(w, e, m),
        Value::List(l) => {
            w.comments.push(Vec::new());
            for item in l.iter_mut() {
                if let Value::Comment(c) = item {
                    w.push_comment(c);
                    if w.should_encrypt(true) && !c.is_empty() {
                        let s = e.encrypt(w.aad(), ValueType::Comment, c.as_bytes())?;
                        check_comment_regex(w, &s)?;
                        // sops' quirk: an encrypted list comment becomes a plain list item.
                        *item = Value::Str(s);
                    }
                } else {
                    encrypt_value(w, e, item)?;
                    w.clear_comments();
                }
            }
            w.comments.pop();
            Ok(())
        }
        leaf => {
            let encrypted = w.should_encrypt(false);
            w.hash_leaf(leaf, encrypted);
            if encrypted {
                let Some((ty, pt)) = leaf.to_plaintext() else {
                    return Ok(());
                };
                if pt.is_empty() && matches!(leaf, Value::Str(_) | Value::Bytes(_)) {
                    *leaf = Value::Str(String::new());
                    return Ok(());
                }
                let s = e.encrypt(w.aad(), ty, &pt)?;
                wipe(pt);
                *leaf = Value::Str(s);
            }
            Ok(())
        }
    }
}

/// Decrypts every selected value of `branches` in place and returns the MAC computed over the
/// plaintext. When `stash` is given, it records each value's IV for [`encrypt_tree`].
pub fn decrypt_tree(
    branches: &mut [Branch],
    key: &DataKey,
    config: &CryptConfig<'_>,
    mut stash: Option<&mut IvStash>,
) -> Result<String> {
    let mut w = Walker::new(config);
    for branch in branches.iter_mut() {
        decrypt_map(&mut w, key, branch, &mut stash)?;
    }
    Ok(w.finish())
}

fn record(stash: &mut Option<&mut IvStash>, aad: String, s: &str, v: &Value) {
    if let Some(st) = stash.as_deref_mut()
        && let (Some(iv), Some((ty, pt))) = (enc::iv_of(s), v.to_plaintext())
    {
        st.map.insert((aad, ty, pt), iv);
    }
}

fn decrypt_map(
    w: &mut Walker<'_>,
    key: &DataKey,
    map: &mut [Item],
    stash: &mut Option<&mut IvStash>,
) -> Result<()> {
    w.comments.push(Vec::new());
    for item in map.iter_mut() {
        match item {
            Item::Comment(c) | Item::InlineComment(c) => {
                w.push_comment(c);
                if w.should_encrypt(true) && enc::is_enc(c) {
                    // A comment that does not decrypt was written in plaintext by an old sops.
                    let aad = w.aad();
                    if let Ok(v @ Value::Comment(_)) = enc::decrypt_value(key, c, aad.as_bytes()) {
                        record(stash, aad, c, &v);
                        if let Value::Comment(text) = v {
                            *c = text;
                        }
                    }
                }
            }
            Item::Entry(k, v) => {
                w.path.push(std::mem::take(k));
                let r = decrypt_value(w, key, v, stash);
                *k = w.path.pop().unwrap_or_default();
                r?;
                w.clear_comments();
            }
        }
    }
    w.comments.pop();
    Ok(())
}

fn decrypt_value(
    w: &mut Walker<'_>,
    key: &DataKey,
    v: &mut Value,
    stash: &mut Option<&mut IvStash>,
) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Map(m) => decrypt_map(w, key, m, stash),
        Value::List(l) => {
            w.comments.push(Vec::new());
            for item in l.iter_mut() {
                if let Value::Comment(c) = item {
                    w.push_comment(c);
                    continue;
                }
                decrypt_value(w, key, item, stash)?;
                if !matches!(item, Value::Comment(_)) {
                    w.clear_comments();
                }
            }
            w.comments.pop();
            Ok(())
        }
        leaf => {
            let encrypted = w.should_encrypt(false);
            if encrypted {
                let Value::Str(s) = leaf else {
                    return Err(Error::NotEncrypted {
                        path: w.display_path(),
                    });
                };
                if !s.is_empty() {
                    let aad = w.aad();
                    let plain =
                        enc::decrypt_value(key, s, aad.as_bytes()).map_err(|e| match e {
                            enc::ValueError::NotEnc => Error::NotEncrypted {
                                path: w.display_path(),
                            },
                            e => Error::Decrypt {
                                path: w.display_path(),
                                reason: e.to_string(),
                            },
                        })?;
                    record(stash, aad, s, &plain);
                    *leaf = plain;
                }
            }
            if !matches!(leaf, Value::Comment(_)) {
                w.hash_leaf(leaf, encrypted);
            }
            Ok(())
        }
    }
}

/// Encrypts the MAC text with `lastmodified` (Go RFC 3339) as associated data.
pub fn encrypt_mac(
    key: &DataKey,
    mac: &str,
    last_modified: &str,
    rng: &mut dyn Entropy,
) -> Result<String> {
    let mut iv = [0u8; SOPS_NONCE_LEN];
    rng.fill(&mut iv)?;
    Ok(enc::encrypt_bytes(
        key,
        &iv,
        mac.as_bytes(),
        ValueType::Str,
        last_modified.as_bytes(),
    )?)
}

/// Decrypts the stored MAC and compares it with `computed`.
pub fn verify_mac(key: &DataKey, stored: &str, last_modified: &str, computed: &str) -> Result<()> {
    if stored.is_empty() {
        return Err(Error::NoMac);
    }
    let v =
        enc::decrypt_value(key, stored, last_modified.as_bytes()).map_err(|_| Error::MacDecrypt)?;
    let Value::Str(mac) = v else {
        return Err(Error::MacDecrypt);
    };
    // Both sides are hashes of the plaintext: compared in constant time and never reported.
    if !bool::from(mac.as_bytes().ct_eq(computed.as_bytes())) {
        return Err(Error::MacMismatch);
    }
    Ok(())
}

/// sha256("sops"), exposed for tests.
pub fn mac_only_encrypted_init() -> [u8; 32] {
    let d = Sha256::digest(b"sops");
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MAC mismatch reaches the Argo CD UI through the render plugin: the message must not
    /// carry the MACs, which are hashes of the plaintext.
    #[test]
    fn mac_mismatch_names_no_hash() {
        let key = DataKey::from_bytes([7; 32]);
        let stored_mac = "A".repeat(128);
        let computed = "B".repeat(128);
        let lm = "2024-01-01T00:00:00Z";
        let stored = encrypt_mac(&key, &stored_mac, lm, &mut hush_crypto::SystemEntropy).unwrap();
        assert!(verify_mac(&key, &stored, lm, &stored_mac).is_ok());
        let err = verify_mac(&key, &stored, lm, &computed).unwrap_err();
        assert!(matches!(err, Error::MacMismatch));
        let msg = err.to_string();
        assert!(!msg.contains("AAAA") && !msg.contains("BBBB"), "{msg}");
        // A prefix is not a match (lengths differ).
        assert!(verify_mac(&key, &stored, lm, &stored_mac[..64]).is_err());
    }

    #[test]
    fn mac_only_encrypted_constant() {
        assert_eq!(mac_only_encrypted_init(), MAC_ONLY_ENCRYPTED_INIT);
    }
}
