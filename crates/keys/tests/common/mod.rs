//! Helpers for the interop tests against the real sops 3.11.0 binary and the test servers.
//!
//! Peers come from the environment (`HUSH_PEER_*`), else from the file `scripts/dev-env.sh`
//! writes (`HUSH_PEERS_ENV`, default `${XDG_CACHE_HOME:-$HOME/.cache}/hush/peers.env`); servers
//! from the variables `scripts/services/{openbao,moto}.sh start` prints. A missing one fails the
//! test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hush_crypto::{DataKey, Entropy, SystemEntropy, aead};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

/// The value of `name` from the environment or `peers.env`; panics (fails the test) if absent.
pub fn env(name: &str) -> String {
    if let Ok(v) = std::env::var(name)
        && !v.is_empty()
    {
        return v;
    }
    let file = std::env::var_os("HUSH_PEERS_ENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
            Some(cache.join("hush/peers.env"))
        });
    if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
        for line in text.lines() {
            let line = line.trim_start_matches("export ");
            if let Some(v) = line.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                return v.trim_matches(['"', '\'']).to_owned();
            }
        }
    }
    panic!(
        "{name} is not set: run scripts/dev-env.sh (peers) and `eval \"$(scripts/services/<svc>.sh start)\"` (servers)"
    );
}

/// A sops command with a clean environment (no stray keys from the developer's session).
pub fn sops(dir: &Path) -> Command {
    let mut c = Command::new(env("HUSH_PEER_SOPS"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("SOPS_DISABLE_VERSION_CHECK", "1");
    c
}

/// Runs `cmd`, asserting success; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("cannot start the command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes `{"secret": <value>}` to `dir/plain.json` and has real sops encrypt it with `args`
/// (e.g. `["--age", recipient]`). Returns the encrypted JSON document.
pub fn sops_encrypt(dir: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Value {
    let plain = dir.join("plain.json");
    std::fs::write(&plain, r#"{"secret": "s3cr3t value"}"#).unwrap();
    let mut cmd = sops(dir);
    cmd.arg("encrypt").args(args).arg(&plain);
    configure(&mut cmd);
    serde_json::from_str(&run(&mut cmd)).unwrap()
}

/// Decrypts the `secret` value of a sops-written document with `data_key` (AAD `secret:`).
pub fn decrypt_secret(doc: &Value, data_key: &[u8]) -> String {
    let key = DataKey::try_from_slice(data_key).unwrap();
    let enc = doc["secret"].as_str().unwrap();
    let inner = enc
        .strip_prefix("ENC[AES256_GCM,data:")
        .and_then(|s| s.strip_suffix(']'))
        .unwrap();
    let mut parts = inner.split(',');
    let data = B64.decode(parts.next().unwrap()).unwrap();
    let iv = B64
        .decode(parts.next().unwrap().strip_prefix("iv:").unwrap())
        .unwrap();
    let tag = B64
        .decode(parts.next().unwrap().strip_prefix("tag:").unwrap())
        .unwrap();
    assert_eq!(parts.next(), Some("type:str"));
    let plain = aead::sops_decrypt(&key, &iv, &data, &tag, b"secret:").unwrap();
    String::from_utf8(plain.expose().to_vec()).unwrap()
}

fn enc_value(key: &DataKey, plain: &[u8], aad: &[u8], kind: &str) -> String {
    let ct = aead::sops_encrypt(key, plain, aad, &mut SystemEntropy).unwrap();
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        B64.encode(&ct.data),
        B64.encode(ct.iv),
        B64.encode(ct.tag)
    )
}

/// A fresh random data key.
pub fn fresh_data_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    SystemEntropy.fill(&mut k).unwrap();
    k
}

/// Builds a sops 3.11 JSON file by hand: `{"secret": "made by hush"}` under `data_key`, with the
/// MAC, and `key_type: [entry]` as its only master key.
pub fn hand_made_sops_json(data_key: &[u8; 32], key_type: &str, entry: Value) -> String {
    let key = DataKey::from_bytes(*data_key);
    let plain = "made by hush";
    let lastmodified = "2026-01-02T03:04:05Z";
    let mac = hex_upper(&Sha512::digest(plain.as_bytes()));
    let doc = json!({
        "secret": enc_value(&key, plain.as_bytes(), b"secret:", "str"),
        "sops": {
            key_type: [entry],
            "lastmodified": lastmodified,
            "mac": enc_value(&key, mac.as_bytes(), lastmodified.as_bytes(), "str"),
            "unencrypted_suffix": "_unencrypted",
            "version": "3.11.0",
        }
    });
    serde_json::to_string_pretty(&doc).unwrap()
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Has real sops decrypt `file_text` (JSON) and returns the plaintext `secret`.
pub fn sops_decrypt_secret(
    dir: &Path,
    file_text: &str,
    configure: impl FnOnce(&mut Command),
) -> String {
    let path: PathBuf = dir.join("hush.enc.json");
    std::fs::write(&path, file_text).unwrap();
    let mut cmd = sops(dir);
    cmd.arg("decrypt").arg(&path);
    configure(&mut cmd);
    let out: Value = serde_json::from_str(&run(&mut cmd)).unwrap();
    out["secret"].as_str().unwrap().to_owned()
}
