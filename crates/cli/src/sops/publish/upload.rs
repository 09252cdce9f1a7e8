//! Sending a payload to a destination: S3 (`hush-aws`), Vault KV (`hush-vault`) or a local
//! directory; and the decrypted values as the JSON object a Vault secret holds.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use hush_sops::tree::{Branch, Item, Value};
use hush_vault::{Client, ClientOptions, KvVersion};
use serde_json::{Map, Number, Value as Json};

use super::Payload;
use super::rule::Destination;

/// Where `name` lands, as sops shows it in its prompt.
pub(super) fn describe(dest: &Destination, name: &str) -> String {
    match dest {
        Destination::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}{name}"),
        Destination::Vault { address, .. } => format!(
            "{}/v1/{}",
            address.trim_end_matches('/'),
            vault_api_path(dest, name)
        ),
        Destination::Local { dir, .. } => dir.join(name).display().to_string(),
    }
}

/// The KV API path of `name`: `<mount><path><name>`, with `data/` after the mount for v2.
fn vault_api_path(dest: &Destination, name: &str) -> String {
    match dest {
        Destination::Vault {
            path,
            mount,
            kv: KvVersion::V2,
            ..
        } => format!("{mount}data/{path}{name}"),
        Destination::Vault { path, mount, .. } => format!("{mount}{path}{name}"),
        _ => String::new(),
    }
}

pub(super) async fn send(dest: &Destination, name: &str, payload: Payload) -> Result<()> {
    match (dest, payload) {
        (Destination::S3 { bucket, prefix }, Payload::File(bytes)) => {
            to_s3(bucket, &format!("{prefix}{name}"), bytes).await
        }
        (Destination::Local { dir, root }, Payload::File(bytes)) => to_dir(dir, root, name, &bytes),
        (Destination::Vault { address, kv, .. }, Payload::Values(values)) => {
            to_vault(address, &vault_api_path(dest, name), *kv, &values).await
        }
        _ => bail!("internal error: payload does not fit the destination"),
    }
}

/// `PutObject` with the standard credential chain and region (`AWS_REGION`,
/// `AWS_DEFAULT_REGION`, the profile's `region`).
async fn to_s3(bucket: &str, key: &str, bytes: Vec<u8>) -> Result<()> {
    let region = hush_aws::default_region()?.ok_or_else(|| {
        anyhow!("publishing to S3 needs a region: set AWS_REGION (or region in ~/.aws/config)")
    })?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    // The SDK's chain: environment keys, then AWS_PROFILE / the default profile, and so on.
    let credentials = hush_aws::resolve_credentials(None, &client, &region).await?;
    hush_aws::s3::put_object(&client, &credentials, &region, bucket, key, bytes).await?;
    Ok(())
}

/// Writes the file under `dir` (directories created), replacing any file there atomically
/// (a symbolic link at the target is replaced, not followed); the file is 0600 like every
/// temporary file. The directory must resolve inside `root`: a symbolic link in the repository
/// may not lead the write elsewhere.
fn to_dir(dir: &Path, root: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(name);
    let parent = target.parent().unwrap_or(dir);
    let real_root =
        std::fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
    // Checked before creating anything (the deepest existing directory) and after.
    check_inside(parent, &real_root)?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    check_inside(parent, &real_root)?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("creating a file in {}", parent.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", target.display()))?;
    tmp.persist(&target)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

/// Fails unless `path` (or its deepest existing ancestor) resolves inside `real_root`.
fn check_inside(path: &Path, real_root: &Path) -> Result<()> {
    let mut existing = path;
    while std::fs::symlink_metadata(existing).is_err() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => break,
        }
    }
    let real = std::fs::canonicalize(existing)
        .with_context(|| format!("resolving {}", existing.display()))?;
    if real.starts_with(real_root) {
        return Ok(());
    }
    bail!(
        "local_dir: {} resolves to {}, outside {} (a symbolic link leads out of the .sops.yaml's \
         directory); nothing was written",
        path.display(),
        real.display(),
        real_root.display()
    )
}

/// Writes the secret unless a v2 secret already holds the same data (sops' up-to-date check;
/// sops compares `data.data`, so a v1 secret is always written).
async fn to_vault(address: &str, path: &str, kv: KvVersion, values: &Json) -> Result<()> {
    use hush_keys::vault_transit::{VaultTls, token_from_env};
    let token = token_from_env()?.ok_or_else(|| {
        anyhow!("publishing to Vault needs a token: set VAULT_TOKEN (or log in: ~/.vault-token)")
    })?;
    let options = ClientOptions {
        namespace: std::env::var("VAULT_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty()),
        ..ClientOptions::default()
    };
    let client = Client::new(address, options)?.with_http(VaultTls::from_env().client()?);
    if kv == KvVersion::V2 {
        match client.kv_read(&token, path, None, kv).await {
            Ok(Some(existing)) if existing == *values => {
                eprintln!("Secret in {path} is already up-to-date.");
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => eprintln!(
                "[hush sops] warning: cannot check whether {path} already holds this data ({e}); \
                 writing a new version"
            ),
        }
    }
    client.kv_write(&token, path, values, kv).await?;
    Ok(())
}

/// The decrypted documents as one JSON object, as sops' `EmitAsMap` builds it: the top-level
/// keys of every document (a later document's key wins), comments dropped, nested maps as
/// objects (hush also turns maps inside lists into objects, where sops sends its internal
/// key/value pairs).
pub(super) fn values_json(branches: &[Branch], file: &Path) -> Result<Json> {
    let mut out = Map::new();
    for branch in branches {
        for item in branch {
            if let Item::Entry(k, v) = item {
                out.insert(k.clone(), json_of(v, k, file)?);
            }
        }
    }
    Ok(Json::Object(out))
}

fn json_of(v: &Value, key: &str, file: &Path) -> Result<Json> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Str(s) | Value::Time(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(x) => Json::Number(Number::from_f64(*x).ok_or_else(|| {
            anyhow!(
                "{}: the value of {key:?} is not a finite number, which JSON (and Vault) \
                 cannot hold",
                file.display()
            )
        })?),
        Value::Bool(b) => Json::Bool(*b),
        Value::Map(items) => {
            let mut m = Map::new();
            for item in items {
                if let Item::Entry(k, v) = item {
                    m.insert(k.clone(), json_of(v, k, file)?);
                }
            }
            Json::Object(m)
        }
        Value::List(items) => Json::Array(
            items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .map(|v| json_of(v, key, file))
                .collect::<Result<_>>()?,
        ),
        Value::Comment(_) => Json::Null,
    })
}
