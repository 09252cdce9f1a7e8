//! hush extensions beyond kubeseal: sealing for several clusters at once
//! (`--cert NAME=FILE|URL` repeated, `-w 'DIR/{cluster}.yaml'`) and offline re-sealing with old
//! private keys and a new certificate (`--re-encrypt --recovery-private-key OLD.pem --cert
//! NEW.pem`), and rewriting a directory of SealedSecret files (`--re-encrypt --dir DIR`, offline
//! or through the controller).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use hush_crypto::rsa::RsaPublicKey;
use hush_crypto::{SystemEntropy, envelope};
use hush_sealing::codec::{self, Format};
use hush_sealing::seal as sealing;
use hush_sealing::unseal::Keyring;
use hush_sealing::{SealedSecret, b64};
use serde_json::Value;

use super::{Args, open_cert_location, parse_cert, write_atomically};
use crate::tree::{self, Outcome, SummaryFormat};

/// Top-level annotation naming the cluster a multi-cluster SealedSecret was sealed for.
pub(crate) const CLUSTER_ANNOTATION: &str = "hush/cluster";

/// Whether `--cert` values name clusters (`NAME=FILE|URL`).
pub(super) fn is_named(certs: &[String]) -> bool {
    certs.iter().any(|c| split_named(c).is_some())
}

fn split_named(cert: &str) -> Option<(&str, &str)> {
    let (name, location) = cert.split_once('=')?;
    let simple = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    (simple && !Path::new(cert).exists()).then_some((name, location))
}

/// Seals the input once per named certificate and writes one file per cluster.
pub(super) fn run(args: &Args, format: Format, input: Vec<u8>) -> anyhow::Result<()> {
    let pattern = args
        .output
        .as_deref()
        .filter(|o| o.contains("{cluster}"))
        .ok_or_else(|| anyhow!("--cert NAME=FILE needs -w with a {{cluster}} placeholder, e.g. -w 'sealed/{{cluster}}.yaml'"))?;
    if args.raw || args.merge_into.is_some() || args.recovery_unseal || args.validate {
        bail!("--cert NAME=FILE works only for sealing whole Secrets");
    }
    let mut targets = Vec::new();
    for cert in &args.cert {
        let (name, location) = split_named(cert).ok_or_else(|| {
            anyhow!("--cert {cert:?}: with several clusters every --cert must be NAME=FILE|URL")
        })?;
        if targets
            .iter()
            .any(|(n, _): &(String, RsaPublicKey)| n == name)
        {
            bail!("cluster {name:?} is given twice");
        }
        let public = parse_cert(&open_cert_location(location)?)
            .with_context(|| format!("certificate of cluster {name:?}"))?;
        targets.push((name.to_owned(), public));
    }
    let secrets = codec::read_secrets(&input)?;
    if secrets.is_empty() {
        return Err(hush_sealing::Error::NoSecrets.into());
    }
    let (namespace, namespace_explicit) = args
        .kube
        .namespace()
        .unwrap_or_else(|_| (String::new(), false));
    for (cluster, public) in &targets {
        let path = PathBuf::from(pattern.replace("{cluster}", cluster));
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            _ => format,
        };
        let mut text = String::new();
        for secret in &secrets {
            let mut secret = secret.clone();
            sealing::prepare(&mut secret, &args.prepare(&namespace, namespace_explicit))?;
            let mut sealed = sealing::seal_secret(public, &secret, &mut SystemEntropy)?;
            sealed
                .metadata
                .annotations
                .insert(CLUSTER_ANNOTATION.to_owned(), cluster.clone());
            text.push_str(&codec::write_sealed_secret(&sealed, format)?);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_atomically(&path, text.as_bytes())?;
        eprintln!("{cluster}: wrote {}", path.display());
    }
    Ok(())
}

/// Re-seals every value of `sealed` for `public`, keeping its label (name, namespace, scope) and
/// everything else. Fails naming the item when no key in `ring` opens a value.
pub(super) fn reseal(
    sealed: &SealedSecret,
    ring: &Keyring,
    public: &RsaPublicKey,
) -> anyhow::Result<SealedSecret> {
    if sealed.spec.data.is_some() {
        bail!(
            "{}/{}: the deprecated spec.data format cannot be re-sealed",
            sealed.metadata.namespace,
            sealed.metadata.name
        );
    }
    let (scope, label) = (sealed.scope(), sealed.label());
    let meta = &sealed.metadata;
    let mut out = sealed.clone();
    for (item, text) in &sealed.spec.encrypted_data {
        let bytes = b64::decode(text).map_err(|e| anyhow!("{item}: {e}"))?;
        let (plain, _) = ring
            .open(&bytes, scope, &meta.namespace, &meta.name)
            .map_err(|e| anyhow!("{}/{}: {e} ({item})", meta.namespace, meta.name))?;
        let fresh = envelope::seal(public, plain.expose(), &label, &mut SystemEntropy)?;
        out.spec
            .encrypted_data
            .insert(item.clone(), b64::encode(&fresh));
    }
    Ok(out)
}

/// Rewrites every SealedSecret file under `dir` in place (atomically per file), each object
/// through `op` (offline re-sealing, or the controller's `/v1/rotate`), with up to `workers`
/// files at once. Files whose documents are not all SealedSecrets are skipped. Progress on
/// stderr when it is a terminal; one summary (`crate::tree`). Returns whether any file failed.
pub(super) fn rewrite_dir(
    dir: &Path,
    workers: usize,
    format: SummaryFormat,
    op: impl Fn(&SealedSecret) -> anyhow::Result<SealedSecret> + Sync,
) -> anyhow::Result<bool> {
    let mut files = Vec::new();
    collect(dir, &mut files).with_context(|| format!("cannot walk {}", dir.display()))?;
    files.sort();
    let report = tree::run(&files, workers, |path| rewrite_file(path, &op));
    report.print(format, "files", "re-sealed");
    Ok(report.failed())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let kind = entry.file_type()?;
        if kind.is_dir() && !hidden {
            collect(&path, out)?;
        } else if kind.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Rewrites one file when all its documents are SealedSecrets.
fn rewrite_file(
    path: &Path,
    op: &impl Fn(&SealedSecret) -> anyhow::Result<SealedSecret>,
) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(path)?;
    let Ok(docs) = codec::documents(&bytes, "file").map(|d| d.values) else {
        return Ok(Outcome::Skipped("not YAML or JSON".into()));
    };
    let all_sealed = !docs.is_empty()
        && docs
            .iter()
            .all(|d| d.get("kind").and_then(Value::as_str) == Some("SealedSecret"));
    if !all_sealed {
        return Ok(Outcome::Skipped("not only SealedSecrets".into()));
    }
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        _ => Format::Yaml,
    };
    let mut text = String::new();
    for sealed in &codec::read_sealed_secrets(&bytes)? {
        text.push_str(&codec::write_sealed_secret(&op(sealed)?, format)?);
    }
    write_atomically(path, text.as_bytes())?;
    Ok(Outcome::Changed)
}
