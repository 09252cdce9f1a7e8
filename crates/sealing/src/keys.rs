//! Reading private keys as kubeseal's `--recovery-private-key` does: a PEM RSA key (PKCS#1 or
//! PKCS#8), a `kubernetes.io/tls` Secret (YAML or JSON) holding `tls.key`, or a `v1.List` of
//! such Secrets (`kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`,
//! the backup format).

use hush_crypto::rsa::RsaPrivateKey;
use serde_json::Value;

use crate::codec::documents;
use crate::{Error, Result, Secret};

/// Parses every private key in `bytes`. Errors never quote the input.
pub fn parse_private_keys(bytes: &[u8]) -> Result<Vec<RsaPrivateKey>> {
    if bytes.windows(11).any(|w| w == b"-----BEGIN ")
        && let Ok(key) = RsaPrivateKey::from_pem(bytes)
    {
        return Ok(vec![key]);
    }
    let mut secrets = Vec::new();
    for doc in documents(bytes, "private key file")?.into_kube_objects() {
        let is_list = doc.get("kind").and_then(Value::as_str) == Some("List")
            || doc.get("items").is_some_and(Value::is_array);
        if is_list {
            let items = match doc.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            for item in items {
                secrets.push(to_secret(item)?);
            }
        } else {
            secrets.push(to_secret(doc)?);
        }
    }
    if secrets.is_empty() {
        return Err(Error::Parse {
            what: "private key file",
            reason: "no PEM RSA private key, Secret or List of Secrets found".into(),
        });
    }
    let mut keys = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let pem = secret.data.get("tls.key").ok_or_else(|| Error::Parse {
            what: "private key file",
            // kubeseal's wording, typo included: "secret must contain a 'tls.data' key".
            reason: format!(
                "secret {:?} must contain a 'tls.key' item",
                secret.metadata.name
            ),
        })?;
        keys.push(RsaPrivateKey::from_pem(pem.expose())?);
    }
    Ok(keys)
}

fn to_secret(value: Value) -> Result<Secret> {
    serde_json::from_value(value).map_err(|e| Error::Parse {
        what: "private key Secret",
        reason: crate::error::redact(&e.to_string()),
    })
}
