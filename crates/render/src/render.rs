//! One render: load (files, stdin, `kustomize build` or `helm template`), decrypt SOPS objects,
//! resolve placeholders, optionally reseal Secrets, refuse an empty result, write the stream.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use hush_sops::Format;

use crate::backend::Backend;
use crate::decrypt::{self, Keys};
use crate::manifest::{self, Doc};
use crate::reseal::Resealer;
use crate::resolve::{self, Stats};
use crate::{Error, Result};

/// What to render.
#[derive(Debug)]
pub enum Input {
    /// An app directory.
    Dir(PathBuf),
    /// A YAML/JSON stream (`generate -`).
    Stream(Vec<u8>),
}

/// How to render.
#[derive(Debug, Default)]
pub struct Options<'a> {
    /// Placeholder resolution options.
    pub resolve: resolve::Options,
    /// Allow zero output objects.
    pub allow_empty: bool,
    /// Reseal Secrets.
    pub resealer: Option<&'a Resealer>,
    /// Namespace for Secrets without one (`ARGOCD_APP_NAMESPACE`).
    pub namespace: Option<String>,
    /// Helm release name (`ARGOCD_APP_NAME`).
    pub release: Option<String>,
    /// `KUBE_VERSION`.
    pub kube_version: Option<String>,
    /// `KUBE_API_VERSIONS`.
    pub api_versions: Vec<String>,
    /// Helm values files, relative to the app directory.
    pub values_files: Vec<String>,
    /// The kustomize binary (default `kustomize` on `PATH`).
    pub kustomize: Option<PathBuf>,
    /// The helm binary (default `helm` on `PATH`).
    pub helm: Option<PathBuf>,
}

/// The result of a render.
#[derive(Debug)]
pub struct Output {
    /// The manifest stream.
    pub yaml: String,
    /// Objects written.
    pub objects: usize,
    /// SOPS-encrypted files or objects decrypted.
    pub decrypted: usize,
    /// Secrets resealed.
    pub resealed: usize,
    /// Placeholder figures.
    pub stats: Stats,
}

/// Renders `input`.
pub async fn render(
    input: &Input,
    opts: &Options<'_>,
    keys: &Keys,
    backend: Option<&dyn Backend>,
) -> Result<Output> {
    let mut decrypted = 0;
    let mut docs = match input {
        Input::Stream(bytes) => load_stream(bytes, "<stdin>", keys, &mut decrypted).await?,
        Input::Dir(dir) => {
            if let Some(k) = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
            {
                tracing::debug!(file = %k.display(), "rendering with kustomize build");
                let out = kustomize_build(dir, opts)?;
                let index = decrypt::Plaintexts::index(&kustomize_dirs(dir), keys).await?;
                load_stream_with(&out, "kustomize build", keys, Some(&index), &mut decrypted)
                    .await?
            } else if dir.join("Chart.yaml").is_file() {
                let out = helm_template(dir, opts)?;
                let index = decrypt::Plaintexts::index(std::slice::from_ref(dir), keys).await?;
                load_stream_with(&out, "helm template", keys, Some(&index), &mut decrypted).await?
            } else {
                load_dir(dir, keys, &mut decrypted).await?
            }
        }
    };
    let stats = resolve::resolve(&mut docs, backend, &opts.resolve).await?;
    let mut resealed = 0;
    if let Some(r) = opts.resealer {
        let ns = opts.namespace.as_deref().unwrap_or("");
        for doc in &mut docs {
            if Resealer::applies_to(&doc.branch) {
                doc.branch = r.reseal(&doc.branch, ns, &doc.file)?;
                resealed += 1;
            }
        }
    }
    if docs.is_empty() && !opts.allow_empty {
        return Err(Error::Empty);
    }
    Ok(Output {
        yaml: manifest::emit(&docs),
        objects: docs.len(),
        decrypted,
        resealed,
        stats,
    })
}

/// Reads a stream, decrypting SOPS-encrypted objects one by one.
pub async fn load_stream(
    bytes: &[u8],
    file: &str,
    keys: &Keys,
    decrypted: &mut usize,
) -> Result<Vec<Doc>> {
    load_stream_with(bytes, file, keys, None, decrypted).await
}

/// [`load_stream`], decrypting by ciphertext lookup in `index` first (objects that went through
/// `kustomize build`), then with the object's own MAC.
pub async fn load_stream_with(
    bytes: &[u8],
    file: &str,
    keys: &Keys,
    index: Option<&decrypt::Plaintexts>,
    decrypted: &mut usize,
) -> Result<Vec<Doc>> {
    let mut out = Vec::new();
    for mut branch in manifest::parse(bytes, file, false)? {
        let branch = if manifest::is_sops(&branch) {
            *decrypted += 1;
            if index.is_some_and(|i| i.apply(&mut branch)) {
                branch
            } else {
                decrypt::open_doc(branch, keys, file).await?
            }
        } else {
            branch
        };
        out.extend(manifest::objects(vec![branch], file));
    }
    Ok(out)
}

async fn load_dir(dir: &Path, keys: &Keys, decrypted: &mut usize) -> Result<Vec<Doc>> {
    let mut out = Vec::new();
    for path in manifest::discover(dir)? {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let bytes = manifest::read_file(&path)?;
        let json = path.extension().is_some_and(|e| e == "json");
        let docs = manifest::parse(&bytes, &rel, json)?;
        let docs = if docs.iter().any(|d| manifest::is_sops(d)) {
            *decrypted += 1;
            let format = if json { Format::Json } else { Format::Yaml };
            decrypt::open_file(&bytes, format, keys, &rel).await?
        } else {
            docs
        };
        out.extend(manifest::objects(docs, &rel));
    }
    Ok(out)
}

/// The directories a kustomization builds from: its own and, recursively, the local directories
/// named in `resources`, `components` and `bases` (remote URLs are skipped).
pub fn kustomize_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(canonical) = d.canonicalize() else {
            continue;
        };
        if out.contains(&canonical) || out.len() > 64 {
            continue;
        }
        out.push(canonical.clone());
        let Some(k) = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .map(|n| canonical.join(n))
            .find(|p| p.is_file())
        else {
            continue;
        };
        let Ok(bytes) = manifest::read_file(&k) else {
            continue;
        };
        let Ok(docs) = manifest::parse(&bytes, "kustomization", false) else {
            continue;
        };
        for doc in docs {
            for key in ["resources", "components", "bases"] {
                if let Some(hush_sops::tree::Value::List(l)) = crate::value::get(&doc, key) {
                    for v in l {
                        if let hush_sops::tree::Value::Str(s) = v
                            && !s.contains("://")
                            && canonical.join(s).is_dir()
                        {
                            todo.push(canonical.join(s));
                        }
                    }
                }
            }
        }
    }
    // Nested directories are walked by their parent already; keep only the outermost.
    let all = out.clone();
    out.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    out
}

/// A relative path that stays inside its root (no absolute paths, no `..`).
pub fn contained(rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(Error::Config(format!(
            "{rel}: paths must be relative and stay inside the app directory"
        )));
    }
    Ok(p.to_path_buf())
}

fn run_tool(mut cmd: Command, tool: &str, hint: &str) -> Result<Vec<u8>> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Tool(format!(
                "{tool} is needed to render this app but was not found ({hint})"
            ))
        } else {
            Error::Tool(format!("cannot run {tool}: {e}"))
        }
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .trim()
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(Error::Tool(format!(
            "{tool} failed ({}): {tail}",
            out.status
        )));
    }
    Ok(out.stdout)
}

fn kustomize_build(dir: &Path, opts: &Options<'_>) -> Result<Vec<u8>> {
    let bin = opts.kustomize.clone().unwrap_or_else(|| "kustomize".into());
    let mut cmd = Command::new(&bin);
    cmd.arg("build").arg(dir);
    run_tool(
        cmd,
        "kustomize",
        "install kustomize v5 or set HUSH_KUSTOMIZE",
    )
}

fn helm_template(dir: &Path, opts: &Options<'_>) -> Result<Vec<u8>> {
    let bin = opts.helm.clone().unwrap_or_else(|| "helm".into());
    let mut cmd = Command::new(&bin);
    cmd.arg("template")
        .arg(opts.release.as_deref().unwrap_or("release"))
        .arg(dir);
    if let Some(ns) = &opts.namespace {
        cmd.args(["--namespace", ns]);
    }
    if let Some(v) = &opts.kube_version {
        cmd.args(["--kube-version", v]);
    }
    for a in &opts.api_versions {
        cmd.args(["--api-versions", a]);
    }
    for f in &opts.values_files {
        let rel = contained(f)?;
        cmd.arg("--values").arg(dir.join(rel));
    }
    // Chart dependencies must be vendored: no repository access during a render.
    cmd.env("HELM_REPOSITORY_CONFIG", "/dev/null")
        .env("HELM_REGISTRY_CONFIG", "/dev/null");
    run_tool(cmd, "helm", "install helm v3 or set HUSH_HELM")
}
