//! PGP keys against Debian GnuPG (in a temporary GNUPGHOME) and the real sops 3.11.0.
//!
//! Needs the gpg and sops peers (`scripts/dev-env.sh`); fails when they are missing.
#![cfg(feature = "pgp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hush_keys::pgp::{GpgConfig, PgpKey, PgpKeyring};
use hush_keys::{KeyService, SecretBytes, WrappedKey};

/// A temporary GnuPG home; its gpg-agent is stopped on drop.
struct GnupgHome {
    dir: tempfile::TempDir,
    gpg: PathBuf,
}

impl GnupgHome {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        Self {
            dir,
            gpg: PathBuf::from(common::env("HUSH_PEER_GPG")),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new(&self.gpg);
        c.arg("--homedir").arg(self.path()).arg("--batch");
        c
    }

    /// Generates a key without passphrase (GnuPG's default algorithms, or `algo` for a
    /// certification key plus an encryption subkey); returns its fingerprint.
    fn generate(&self, uid: &str, algo: &str) -> String {
        let usage = if algo == "default" { "default" } else { "cert" };
        common::run(self.gpg().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            usage,
            "never",
        ]));
        let listing = common::run(self.gpg().args(["--with-colons", "--list-keys", uid]));
        let fp = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_owned())
            .unwrap();
        if algo != "default" {
            common::run(self.gpg().args([
                "--passphrase",
                "",
                "--quick-add-key",
                &fp,
                algo,
                "encr",
                "never",
            ]));
        }
        fp
    }

    fn export_secret(&self, fp: &str) -> Vec<u8> {
        let out = self
            .gpg()
            .args(["--pinentry-mode", "loopback", "--passphrase", ""])
            .args(["--export-secret-keys", "-a", fp])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    }

    fn config(&self) -> GpgConfig {
        GpgConfig {
            exec: self.gpg.clone(),
            home: Some(self.path().to_owned()),
            disabled: false,
        }
    }

    fn gpg_decrypt(&self, armored: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = self
            .gpg()
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(armored).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let gpgconf = self.gpg.with_file_name("gpgconf");
        let _ = Command::new(gpgconf)
            .arg("--homedir")
            .arg(self.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn sops_env(c: &mut Command, home: &GnupgHome) {
    c.env("GNUPGHOME", home.path())
        .env("SOPS_GPG_EXEC", &home.gpg);
}

#[tokio::test]
#[ignore = "needs the gpg and sops peers (scripts/dev-env.sh)"]
async fn gpg_binary_round_trip_and_sops_both_ways() {
    let home = GnupgHome::new();
    let fp = home.generate("Hush Test <hush@example.invalid>", "default");
    let key = PgpKey::from_fingerprint(&fp)
        .unwrap()
        .with_gpg(home.config());
    assert_eq!(key.key_id(), fp);

    let data_key = SecretBytes::from_slice(&common::fresh_data_key());
    let wrapped = key.wrap(&data_key, b"").await.unwrap();
    let text = std::str::from_utf8(&wrapped.body).unwrap();
    assert!(text.starts_with("-----BEGIN PGP MESSAGE-----"), "{text}");
    assert!(text.ends_with("-----END PGP MESSAGE-----"), "{text}");
    let got = key.unwrap(&wrapped, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());

    // sops wraps, hush unwraps (through gpg).
    let dir = tempfile::tempdir().unwrap();
    let doc = common::sops_encrypt(dir.path(), &["--pgp", &fp], |c| sops_env(c, &home));
    let entry = &doc["sops"]["pgp"][0];
    assert_eq!(entry["fp"], fp.as_str());
    let enc = entry["enc"].as_str().unwrap();
    let from_sops = WrappedKey::new("pgp", fp.clone(), enc.as_bytes().to_vec());
    let got = key.unwrap(&from_sops, b"").await.unwrap().unwrap();
    assert_eq!(common::decrypt_secret(&doc, got.expose()), "s3cr3t value");

    // hush wraps, sops unwraps.
    let data_key = common::fresh_data_key();
    let wrapped = key
        .wrap(&SecretBytes::from_slice(&data_key), b"")
        .await
        .unwrap();
    let file = common::hand_made_sops_json(
        &data_key,
        "pgp",
        serde_json::json!({
            "created_at": "2026-01-02T03:04:05Z",
            "enc": String::from_utf8(wrapped.body).unwrap(),
            "fp": fp,
        }),
    );
    let plain = common::sops_decrypt_secret(dir.path(), &file, |c| sops_env(c, &home));
    assert_eq!(plain, "made by hush");

    // A GnuPG home without the secret key cannot open it: an error, no plaintext.
    let elsewhere = GnupgHome::new();
    elsewhere.generate("Other <other@example.invalid>", "default");
    let without_secret = PgpKey::from_fingerprint(&fp)
        .unwrap()
        .with_gpg(elsewhere.config());
    let err = without_secret
        .unwrap(&from_sops, b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not decrypt"), "{err}");
}

/// rpgp against GnuPG: for RSA and for GnuPG's default (Ed25519/Cv25519) keys.
#[tokio::test]
#[ignore = "needs the gpg and sops peers (scripts/dev-env.sh)"]
async fn pure_rust_key_files_interop_with_gpg_and_sops() {
    let dir = tempfile::tempdir().unwrap();
    for algo in ["rsa3072", "default"] {
        let home = GnupgHome::new();
        let fp = home.generate(&format!("Hush {algo} <hush@example.invalid>"), algo);
        let mut ring = PgpKeyring::new();
        assert!(
            ring.add_bytes("exported", &home.export_secret(&fp))
                .unwrap()
                >= 1
        );
        let rust_only = PgpKey::from_fingerprint(&fp)
            .unwrap()
            .with_keyring(Arc::new(ring))
            .with_gpg(GpgConfig {
                disabled: true,
                ..GpgConfig::default()
            });
        let gpg_only = PgpKey::from_fingerprint(&fp)
            .unwrap()
            .with_gpg(home.config());

        // rpgp wraps, gpg unwraps.
        let data_key = common::fresh_data_key();
        let wrapped = rust_only
            .wrap(&SecretBytes::from_slice(&data_key), b"")
            .await
            .unwrap();
        assert_eq!(home.gpg_decrypt(&wrapped.body), data_key, "{algo}");
        // gpg wraps, rpgp unwraps.
        let wrapped = gpg_only
            .wrap(&SecretBytes::from_slice(&data_key), b"")
            .await
            .unwrap();
        let got = rust_only.unwrap(&wrapped, b"").await.unwrap().unwrap();
        assert_eq!(got.expose(), data_key, "{algo}");
        // sops wraps, rpgp unwraps.
        let doc = common::sops_encrypt(dir.path(), &["--pgp", &fp], |c| sops_env(c, &home));
        let enc = doc["sops"]["pgp"][0]["enc"].as_str().unwrap();
        let got = rust_only
            .unwrap(
                &WrappedKey::new("pgp", fp.clone(), enc.as_bytes().to_vec()),
                b"",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            common::decrypt_secret(&doc, got.expose()),
            "s3cr3t value",
            "{algo}"
        );
        // rpgp wraps, sops unwraps.
        let wrapped = rust_only
            .wrap(&SecretBytes::from_slice(&data_key), b"")
            .await
            .unwrap();
        let file = common::hand_made_sops_json(
            &data_key,
            "pgp",
            serde_json::json!({
                "created_at": "2026-01-02T03:04:05Z",
                "enc": String::from_utf8(wrapped.body).unwrap(),
                "fp": fp,
            }),
        );
        let plain = common::sops_decrypt_secret(dir.path(), &file, |c| sops_env(c, &home));
        assert_eq!(plain, "made by hush", "{algo}");
    }
}
