//! ESO's `Password` generator (`ESO:generators/v1/password`, sethvargo/go-password's algorithm):
//! `length` (24), `digits` and `symbols` (each 25% of the length, rounded down), letters
//! lower and upper (`noUpper`), no repeated character unless `allowRepeat`, each character
//! inserted at a random position; `symbolCharacters`, `encoding` (raw, base64, base64url,
//! base32, hex) and `secretKeys` (one password per key; default `password`).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::{Generator, random_below};
use crate::{
    CredentialSource, ProviderError, SecretBytes, StoreScope, decode, refuse_unknown_fields,
};

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
/// ESO's default symbols.
pub const DEFAULT_SYMBOLS: &str = "~!@#$%^&*()_+`-={}|[]\\:\"<>?,./";
/// The longest password hush generates (a budget: the spec is a tenant's input).
pub const MAX_LENGTH: usize = 4096;
const FIELDS: &[&str] = &[
    "length",
    "digits",
    "symbols",
    "symbolCharacters",
    "noUpper",
    "allowRepeat",
    "encoding",
    "secretKeys",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    length: Option<i64>,
    #[serde(default)]
    digits: Option<i64>,
    #[serde(default)]
    symbols: Option<i64>,
    #[serde(default)]
    symbol_characters: Option<String>,
    #[serde(default)]
    no_upper: Option<bool>,
    #[serde(default)]
    allow_repeat: Option<bool>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    secret_keys: Vec<String>,
}

/// The `Password` generator.
#[derive(Debug)]
pub struct Password;

#[async_trait]
impl Generator for Password {
    fn kind(&self) -> &'static str {
        "Password"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "passwordSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        _scope: &StoreScope,
        _creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        refuse_unknown_fields("spec", spec, FIELDS)?;
        let s: Spec = if spec.is_null() {
            Spec::default()
        } else {
            decode("Password", spec)?
        };
        let config = Config::of(&s)?;
        let keys = if s.secret_keys.is_empty() {
            vec!["password".to_owned()]
        } else {
            s.secret_keys.clone()
        };
        let unique: BTreeSet<&String> = keys.iter().collect();
        if keys.iter().any(String::is_empty) || unique.len() != keys.len() {
            return Err(ProviderError::Invalid(
                "spec.secretKeys must be non-empty and unique".into(),
            ));
        }
        let mut out = BTreeMap::new();
        for k in keys {
            let pw = zeroize::Zeroizing::new(config.password()?);
            out.insert(k, SecretBytes::from(encode(&pw, &config.encoding).as_str()));
        }
        Ok(out)
    }
}

struct Config {
    length: usize,
    digits: usize,
    symbols: usize,
    symbol_chars: Vec<char>,
    letters: Vec<char>,
    allow_repeat: bool,
    encoding: String,
}

impl Config {
    fn of(s: &Spec) -> Result<Self, ProviderError> {
        let count = |v: i64, field: &str| {
            usize::try_from(v)
                .map_err(|_| ProviderError::Invalid(format!("spec.{field} must not be negative")))
        };
        let length = match s.length {
            Some(l) if l > 0 => count(l, "length")?,
            _ => 24,
        };
        if length > MAX_LENGTH {
            return Err(ProviderError::Invalid(format!(
                "spec.length {length} is over hush's limit of {MAX_LENGTH}"
            )));
        }
        // Go: int(float32(length) * 0.25), i.e. rounded down.
        let digits = s.digits.map_or(Ok(length / 4), |d| count(d, "digits"))?;
        let symbols = s.symbols.map_or(Ok(length / 4), |d| count(d, "symbols"))?;
        let encoding = s.encoding.clone().unwrap_or_else(|| "raw".into());
        if !matches!(
            encoding.as_str(),
            "raw" | "base64" | "base64url" | "base32" | "hex"
        ) {
            return Err(ProviderError::Invalid(format!(
                "spec.encoding {encoding:?} (raw, base64, base64url, base32 or hex)"
            )));
        }
        let mut letters: Vec<char> = LOWER.chars().collect();
        if !s.no_upper.unwrap_or(false) {
            letters.extend(UPPER.chars());
        }
        Ok(Self {
            length,
            digits,
            symbols,
            symbol_chars: s
                .symbol_characters
                .as_deref()
                .unwrap_or(DEFAULT_SYMBOLS)
                .chars()
                .collect(),
            letters,
            allow_repeat: s.allow_repeat.unwrap_or(false),
            encoding,
        })
    }

    /// go-password's `Generate`: letters, then digits, then symbols, each character inserted at
    /// a random position; without `allowRepeat` a character already present is drawn again.
    fn password(&self) -> Result<String, ProviderError> {
        let letters = self
            .length
            .checked_sub(self.digits + self.symbols)
            .ok_or_else(|| {
                ProviderError::Invalid(
                    "number of digits and symbols must be less than total length".into(),
                )
            })?;
        let digits: Vec<char> = DIGITS.chars().collect();
        let sets = [
            (letters, &self.letters, "letters"),
            (self.digits, &digits, "digits"),
            (self.symbols, &self.symbol_chars, "symbols"),
        ];
        let mut out: Vec<char> = Vec::with_capacity(self.length);
        for (n, set, what) in sets {
            let distinct: BTreeSet<&char> = set.iter().collect();
            if !self.allow_repeat && n > distinct.len() {
                return Err(ProviderError::Invalid(format!(
                    "number of {what} exceeds available {what} and repeats are not allowed"
                )));
            }
            let mut added = 0;
            while added < n {
                let c = set[random_below(set.len())?];
                if !self.allow_repeat && out.contains(&c) {
                    continue;
                }
                out.insert(random_below(out.len() + 1)?, c);
                added += 1;
            }
        }
        Ok(out.into_iter().collect())
    }
}

fn encode(pw: &str, encoding: &str) -> String {
    let b = pw.as_bytes();
    match encoding {
        "base64" => base64::engine::general_purpose::STANDARD.encode(b),
        "base64url" => base64::engine::general_purpose::URL_SAFE.encode(b),
        "base32" => base32(b),
        "hex" => hex::encode(b),
        _ => pw.to_owned(),
    }
}

/// RFC 4648 base32 with padding (Go's `base32.StdEncoding`).
fn base32(b: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in b.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                let idx = usize::try_from((bits >> (35 - i * 5)) & 31).unwrap_or(0);
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NoCreds;
    use serde_json::json;

    async fn run(spec: Value) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        Password
            .generate(
                &spec,
                &StoreScope::new("SecretStore", "p", Some("ns".into())),
                &NoCreds,
            )
            .await
    }

    fn text(b: &SecretBytes) -> String {
        String::from_utf8(b.expose().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn defaults_are_esos() {
        let out = run(json!({})).await.unwrap();
        let pw = text(&out["password"]);
        assert_eq!(pw.chars().count(), 24);
        assert_eq!(pw.chars().filter(char::is_ascii_digit).count(), 6);
        assert_eq!(
            pw.chars().filter(|c| DEFAULT_SYMBOLS.contains(*c)).count(),
            6
        );
        let distinct: BTreeSet<char> = pw.chars().collect();
        assert_eq!(distinct.len(), 24, "no repeats by default");
        assert_ne!(pw, text(&run(json!({})).await.unwrap()["password"]));
    }

    #[tokio::test]
    async fn documented_spec() {
        // ESO's documented Password (docs/api/generator/password.md).
        let out = run(
            json!({"length": 42, "digits": 5, "symbols": 5, "symbolCharacters": "-_$@",
            "noUpper": false, "allowRepeat": true}),
        )
        .await
        .unwrap();
        let pw = text(&out["password"]);
        assert_eq!(pw.len(), 42);
        assert_eq!(pw.chars().filter(|c| "-_$@".contains(*c)).count(), 5);
        assert_eq!(pw.chars().filter(char::is_ascii_digit).count(), 5);
        let out = run(
            json!({"length": 8, "digits": 0, "symbols": 0, "noUpper": true,
            "encoding": "hex", "secretKeys": ["a", "b"]}),
        )
        .await
        .unwrap();
        assert_eq!(text(&out["a"]).len(), 16);
        assert!(text(&out["a"]).chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(text(&out["a"]), text(&out["b"]));
    }

    #[tokio::test]
    async fn refusals_name_the_field() {
        for (spec, named) in [
            (
                json!({"length": 4, "digits": 3, "symbols": 3}),
                "total length",
            ),
            (json!({"digits": 11, "length": 30}), "digits"),
            (json!({"encoding": "rot13"}), "spec.encoding"),
            (json!({"length": 100000}), "spec.length"),
            (json!({"secretKeys": ["a", "a"]}), "secretKeys"),
            (json!({"colour": "red"}), "spec.colour"),
            (json!({"digits": -1}), "spec.digits"),
        ] {
            let e = run(spec).await.unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn base32_is_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY======");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI======");
    }
}
