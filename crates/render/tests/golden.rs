//! Golden app directories under `tests/render/<case>/`: `app/` (or `input.yaml` for stdin
//! mode) renders to `expected.yaml`, or fails with a message containing `expected.err`.
//! `vault.json` seeds an in-memory backend (`{path: {"latest"|version: {key: value}}}`); the same
//! data is loaded into OpenBao by the CLI tests. Cases that need kustomize, helm or OpenBao
//! (a `needs` file) run in `crates/cli/tests/render_*.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use hush_render::backend::{Backend, MemoryBackend};
use hush_render::decrypt::Keys;
use hush_render::render::{self, Input, Options};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/render")
}

/// Every secret value of a case: the canaries that must never appear in errors.
fn canaries(case: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(case.join("vault.json")) {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for versions in v.as_object().unwrap().values() {
            for data in versions.as_object().unwrap().values() {
                for value in data.as_object().unwrap().values() {
                    out.push(value.as_str().unwrap().to_owned());
                }
            }
        }
    }
    out.extend(
        [
            "canary-sops-yaml-7f3a",
            "canary-sops-json-91c2",
            "canary-sops-multi-a",
        ]
        .map(String::from),
    );
    out
}

pub fn memory_backend(case: &Path) -> Option<MemoryBackend> {
    let text = std::fs::read_to_string(case.join("vault.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut b = MemoryBackend::new();
    for (path, versions) in v.as_object().unwrap() {
        for (version, data) in versions.as_object().unwrap() {
            let version = (version != "latest").then_some(version.as_str());
            b.insert(path, version, data.as_object().unwrap().clone());
        }
    }
    Some(b)
}

async fn run_case(case: &Path) -> (Result<String, String>, u64) {
    let mut keys = Keys::from_age_identities("");
    keys.add_dir(&root().join("keys")).unwrap();
    let backend = memory_backend(case);
    let input = if case.join("input.yaml").is_file() {
        Input::Stream(std::fs::read(case.join("input.yaml")).unwrap())
    } else {
        Input::Dir(case.join("app"))
    };
    let opts = Options {
        namespace: Some("default-ns".into()),
        ..Options::default()
    };
    let out = render::render(
        &input,
        &opts,
        &keys,
        backend.as_ref().map(|b| b as &dyn Backend),
    )
    .await;
    let reads = backend.as_ref().map_or(0, Backend::reads);
    (out.map(|o| o.yaml).map_err(|e| e.to_string()), reads)
}

#[tokio::test]
async fn golden_apps_render_as_expected() {
    let mut checked = 0;
    let mut cases: Vec<_> = std::fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.join("needs").exists())
        .filter(|p| p.join("expected.yaml").exists() || p.join("expected.err").exists())
        .collect();
    cases.sort();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (out, _) = run_case(&case).await;
        if let Ok(expected) = std::fs::read_to_string(case.join("expected.yaml")) {
            let got = out.unwrap_or_else(|e| panic!("{name}: render failed: {e}"));
            if std::env::var_os("HUSH_BLESS").is_some() {
                std::fs::write(case.join("expected.yaml"), &got).unwrap();
            }
            assert_eq!(got, expected, "{name}: output differs from expected.yaml");
        } else {
            let expected = std::fs::read_to_string(case.join("expected.err")).unwrap();
            let err = out
                .err()
                .unwrap_or_else(|| panic!("{name}: render should fail"));
            assert!(
                err.contains(expected.trim()),
                "{name}: error {err:?} does not contain {:?}",
                expected.trim()
            );
            for canary in canaries(&case) {
                assert!(!err.contains(&canary), "{name}: error leaks a secret value");
            }
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} golden cases found");
}

#[tokio::test]
async fn one_read_per_distinct_path() {
    let (out, reads) = run_case(&root().join("placeholders")).await;
    out.unwrap();
    // secret/data/app (latest, v1), secret/data/api (latest, v1), kv1/legacy: 5 reads for the
    // 20-odd placeholders of the app.
    assert_eq!(reads, 5);
}

#[tokio::test]
async fn sops_manifest_without_key_fails_without_plaintext() {
    let keys = Keys::from_age_identities("");
    let err = render::render(
        &Input::Dir(root().join("sops/app")),
        &Options::default(),
        &keys,
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("SOPS decryption failed"), "{err}");
    assert!(!err.contains("canary"), "{err}");
}

#[tokio::test]
async fn tampered_sops_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("sops/app/secret.enc.yaml")).unwrap();
    // Re-label an unencrypted field: the render must refuse it.
    std::fs::write(
        dir.path().join("secret.enc.yaml"),
        text.replace("name: db", "name: db2"),
    )
    .unwrap();
    let mut keys = Keys::from_age_identities("");
    keys.add_dir(&root().join("keys")).unwrap();
    let err = render::render(
        &Input::Dir(dir.path().to_path_buf()),
        &Options::default(),
        &keys,
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    // The MAC covers unencrypted values too (no mac_only_encrypted).
    assert!(err.contains("SOPS decryption failed"), "{err}");
    assert!(!err.contains("canary"), "{err}");
    let tampered = text.replace(
        "password: ENC[AES256_GCM,data:",
        "password: ENC[AES256_GCM,data:AAAA",
    );
    std::fs::write(dir.path().join("secret.enc.yaml"), tampered).unwrap();
    let err = render::render(
        &Input::Dir(dir.path().to_path_buf()),
        &Options::default(),
        &keys,
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("SOPS decryption failed"), "{err}");
}
