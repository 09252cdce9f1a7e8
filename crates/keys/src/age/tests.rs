//! Unit tests of the age key service. Vectors marked "Go" were written by Go age as sops uses
//! it (sops' own keysource tests), so they check interop without a binary.

use std::path::PathBuf;

use age::secrecy::{ExposeSecret, SecretString};

use super::discovery::user_config_dir;
use super::*;

const GO_RECIPIENT: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";
const GO_IDENTITY: &str =
    "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7";
const GO_OTHER_IDENTITY: &str =
    "AGE-SECRET-KEY-1432K5YRNSC44GC4986NXMX6GVZ52WTMT9C79CLUVWYY4DKDHD5JSNDP4MC";
/// Go: "data" encrypted to GO_RECIPIENT.
const GO_ENCRYPTED: &str = "-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBvY2t2NkdLUGRvY3l2OGNy
MVJWcUhCOEZrUG8yeCtnRnhxL0I5NFk4YjJFCmE4SVQ3MEdyZkFqRWpSa2F0NVhF
VDUybzBxdS9nSGpHSVRVMUI0UEVqZkkKLS0tIGJjeGhNQ0Y5L2VZRVVYSm90djFF
bzdnQ3UwTGljMmtrbWNMV1MxYkFzUFUK4xjOZOTGdcbzuwUY/zeBXhcF+Md3e5PQ
EylloI7MNGbadPGb
-----END AGE ENCRYPTED FILE-----";
/// Go: GO_IDENTITY's key file encrypted with the passphrase "passphrase".
const GO_ENCRYPTED_IDENTITY: &str = "-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNjcnlwdCBMN2FXZW9xSFViYjdNeW5D
dy9iSHFnIDE4Ck9zV0ZoNldmci9rL3VXd3BtZmQvK3VZWEpBQjdhZ0UrcmhqR2lF
YThFMzAKLS0tIGVEQ0xwODI1TlNYeHNHaHZKWHoyLzYwMTMvTGhaZG1oa203cSs0
VUpBL1kKsaTnt+H/z8mkL21UYKIt3YMpWSV/oYqTm1cSSUnF9InZEYU9HndK9rc8
ni+MTJCmYf4mgvvGPMf7oIQvs6ijaTdlQb+zeQsL4eif20w+CWgvPNrS6iXUIs8W
w5/fHsxwmrkG96nDkMErJKhmjmLpC+YdbiMe6P/KIpas09m08RTIqcz7ua0Xm3ey
ndU+8ILJOhcnWV55W43nTw/UUFse7f+qY61n7kcd1sGd7ZfSEdEIqS3K2vEtA3ER
fn0s3cyXVEBxL9OZqcAk45bCFVOl13Fp/DBfquHEjvAyeg0=
-----END AGE ENCRYPTED FILE-----";
const GO_SSH_RECIPIENT: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+Wi8WZw2bXfBpcs/WECttCzP39OkenS6pHWHWGFJvN Test";
const GO_SSH_IDENTITY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACA/lovFmcNm13waXLP1hArbQsz9/TpHp0uqR1h1hhSbzQAAAIgCXDMIAlwz
CAAAAAtzc2gtZWQyNTUxOQAAACA/lovFmcNm13waXLP1hArbQsz9/TpHp0uqR1h1hhSbzQ
AAAEBJdWTJ8dC0OnMcwy4gQ96sp6KG8GE9EiyhFGhKldKiST+Wi8WZw2bXfBpcs/WECttC
zP39OkenS6pHWHWGFJvNAAAABFRlc3QB
-----END OPENSSH PRIVATE KEY-----
";
/// Go: "data" encrypted to GO_SSH_RECIPIENT.
const GO_ENCRYPTED_SSH: &str = "-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNzaC1lZDI1NTE5IDJjd0R4dyB2R3Ns
VUNHaXBiTEJaNU5BMFFQZUpCYWJqODFyTTZ4WWZoRVpUd2M2aTBFCkduUFJHb1U2
K3RqWVQrLzE4anZKZ3h2T3c2MFpZTHlGaHprcElXenByWTAKLS0tIG56MHFSZERl
em9PWmRMMTY4aytYTnVZN04yeER5Z2E3TWxWT3JTZWR2ekUKp/HZLy4MzQqoszGk
+P0hSPPNhOhvFwv4AqCw1+A+WyeHGQPq
-----END AGE ENCRYPTED FILE-----";

fn wrapped(recipient: &str, body: &str) -> WrappedKey {
    WrappedKey::new(TYPE_ID, recipient, body.as_bytes().to_vec())
}

fn text_identities(text: &str) -> Arc<Identities> {
    Arc::new(Identities::from_text("test", text, AgePrompt::Never))
}

/// Sources that look nowhere unless a test says so.
fn empty_sources() -> IdentitySources {
    IdentitySources {
        prompt: AgePrompt::Never,
        ..IdentitySources::default()
    }
}

#[tokio::test]
async fn wraps_as_sops_armor_and_round_trips() {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let ids = text_identities(identity.to_string().expose_secret());
    let key = AgeKey::from_recipient(&recipient)
        .unwrap()
        .with_identities(ids.clone());
    let data_key = SecretBytes::from_slice(&[7u8; 32]);
    let w = key.wrap(&data_key, b"").await.unwrap();
    assert_eq!(w.type_id, "age");
    assert_eq!(w.key_id, recipient);
    let text = std::str::from_utf8(&w.body).unwrap();
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\n-----END AGE ENCRYPTED FILE-----\n"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let base64_lines = &lines[1..lines.len() - 1];
    assert!(
        base64_lines[..base64_lines.len() - 1]
            .iter()
            .all(|l| l.len() == 64)
    );
    assert!(base64_lines.last().unwrap().len() <= 64);

    let got = key.unwrap(&w, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());
    // The identities alone, as a registry entry, open it too.
    let got = ids.unwrap(&w, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());
}

#[tokio::test]
async fn opens_go_written_keys() {
    let ids = text_identities(&format!(
        "# two keys\n\n{GO_OTHER_IDENTITY}\n{GO_IDENTITY}\n"
    ));
    assert_eq!(ids.len(), 2);
    let key = AgeKey::from_recipient(GO_RECIPIENT)
        .unwrap()
        .with_identities(ids);
    let got = key
        .unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose(), b"data");
}

#[tokio::test]
async fn not_addressed_and_no_match() {
    let ids = text_identities(GO_OTHER_IDENTITY);
    // Another recipient's entry: not mine.
    let key = AgeKey::from_recipient(GO_RECIPIENT)
        .unwrap()
        .with_identities(ids.clone());
    let other =
        AgeKey::parse_list("age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep")
            .unwrap();
    assert!(
        key.unwrap(&wrapped(&other[0].recipient, GO_ENCRYPTED), b"")
            .await
            .unwrap()
            .is_none()
    );
    // Other service types are not mine either.
    let mut foreign = wrapped(GO_RECIPIENT, GO_ENCRYPTED);
    foreign.type_id = "pgp".into();
    assert!(key.unwrap(&foreign, b"").await.unwrap().is_none());
    // Addressed to this recipient, but the identity does not open it: an error that says so.
    let err = key
        .unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no age identity matched"), "{err}");
    // As a registry entry, the identities just say "not mine".
    assert!(
        ids.unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
            .await
            .unwrap()
            .is_none()
    );
    // Without identities, unwrap is unsupported.
    let bare = AgeKey::from_recipient(GO_RECIPIENT).unwrap();
    let err = bare
        .unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no age identities"), "{err}");
}

#[test]
fn parses_recipient_lists_like_sops() {
    let list = format!("   {GO_RECIPIENT}   ,  {GO_SSH_RECIPIENT}  ");
    let keys = AgeKey::parse_list(&list).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].recipient(), GO_RECIPIENT);
    assert_eq!(keys[1].recipient(), GO_SSH_RECIPIENT);
    assert!(AgeKey::parse_list("").unwrap().is_empty());
    for bad in [
        "invalid",
        "age1notbech32",
        "ssh-ed25519 AAAA",
        "",
        "age1x1y",
    ] {
        let err = AgeKey::from_recipient(bad).unwrap_err();
        assert!(matches!(err, KeyError::Config { .. }), "{bad}: {err}");
    }
}

#[tokio::test]
async fn garbage_bodies_are_errors_not_panics() {
    let ids = text_identities(GO_IDENTITY);
    let key = AgeKey::from_recipient(GO_RECIPIENT)
        .unwrap()
        .with_identities(ids);
    let truncated = &GO_ENCRYPTED[..GO_ENCRYPTED.len() - 40];
    let mut flipped = GO_ENCRYPTED.as_bytes().to_vec();
    flipped[300] ^= 1;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"invalid".to_vec(),
        b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
        truncated.as_bytes().to_vec(),
        flipped,
        vec![0xff; 100],
    ];
    for body in bodies {
        let w = WrappedKey::new(TYPE_ID, GO_RECIPIENT, body);
        assert!(key.unwrap(&w, b"").await.is_err());
    }
}

#[tokio::test]
async fn passphrase_protected_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.age");
    std::fs::write(&path, GO_ENCRYPTED_IDENTITY).unwrap();
    let sources = |prompt| IdentitySources {
        age_key_file: Some(path.clone()),
        prompt,
        ..IdentitySources::default()
    };
    let right = AgePrompt::Passphrase(Arc::new(SecretString::from("passphrase".to_owned())));
    let ids = Arc::new(Identities::load(sources(right)));
    assert!(ids.load_errors().is_empty(), "{:?}", ids.load_errors());
    let key = AgeKey::from_recipient(GO_RECIPIENT)
        .unwrap()
        .with_identities(ids);
    let got = key
        .unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose(), b"data");

    let wrong = AgePrompt::Passphrase(Arc::new(SecretString::from("nope".to_owned())));
    let key = key.with_identities(Arc::new(Identities::load(sources(wrong))));
    let err = key
        .unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("incorrect passphrase"), "{err}");
    assert!(err.contains("SOPS_AGE_KEY_FILE"), "{err}");
    assert!(!err.contains("nope"), "{err}");
}

#[tokio::test]
async fn ssh_keys_from_file_and_home() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/id_ed25519"), GO_SSH_IDENTITY).unwrap();
    let ids = Arc::new(Identities::load(IdentitySources {
        home: Some(home.path().to_owned()),
        ..empty_sources()
    }));
    // The SSH identity and its X25519 form.
    assert_eq!(ids.len(), 2, "{ids:?}");
    let key = AgeKey::from_recipient(GO_SSH_RECIPIENT)
        .unwrap()
        .with_identities(ids);
    let got = key
        .unwrap(&wrapped(GO_SSH_RECIPIENT, GO_ENCRYPTED_SSH), b"")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose(), b"data");
    // And we wrap for SSH recipients.
    let w = key.wrap(&SecretBytes::from_slice(b"k"), b"").await.unwrap();
    assert_eq!(key.unwrap(&w, b"").await.unwrap().unwrap().expose(), b"k");

    // SOPS_AGE_SSH_PRIVATE_KEY_CMD.
    let ids = Identities::load(IdentitySources {
        ssh_key_cmd: Some(format!(
            "cat '{}'",
            home.path().join(".ssh/id_ed25519").display()
        )),
        ..empty_sources()
    });
    // The SSH identity and its X25519 form.
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[tokio::test]
async fn passphrase_protected_ssh_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass word", "-C", "t", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen is needed for this test");
    assert!(status.success());
    let public = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    let key = AgeKey::from_recipient(&public).unwrap();
    let w = key
        .wrap(&SecretBytes::from_slice(b"dk"), b"")
        .await
        .unwrap();

    let load = |prompt| {
        Arc::new(Identities::load(IdentitySources {
            ssh_key_file: Some(path.clone()),
            prompt,
            ..IdentitySources::default()
        }))
    };
    let pass = AgePrompt::Passphrase(Arc::new(SecretString::from("pass word".to_owned())));
    let key = key.with_identities(load(pass));
    assert_eq!(key.unwrap(&w, b"").await.unwrap().unwrap().expose(), b"dk");
    let key = key.with_identities(load(AgePrompt::Never));
    let err = key.unwrap(&w, b"").await.unwrap_err().to_string();
    assert!(err.contains("no passphrase available"), "{err}");
}

#[tokio::test]
async fn every_identity_source_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let a = age::x25519::Identity::generate();
    let b = age::x25519::Identity::generate();
    let c = age::x25519::Identity::generate();
    let d = age::x25519::Identity::generate();
    let key_file = dir.path().join("file.txt");
    std::fs::write(
        &key_file,
        format!("# comment\n{}\n", b.to_string().expose_secret()),
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("sops/age")).unwrap();
    std::fs::write(
        config.join("sops/age/keys.txt"),
        c.to_string().expose_secret(),
    )
    .unwrap();
    let cmd_file = dir.path().join("cmd.txt");
    std::fs::write(&cmd_file, d.to_string().expose_secret()).unwrap();
    // The command only answers for d's recipient: it sees SOPS_AGE_RECIPIENT.
    let d_recipient = d.to_public().to_string();
    let cmd = format!(
        "sh -c 'test \"$SOPS_AGE_RECIPIENT\" = {d_recipient} && cat {}'",
        cmd_file.display()
    );
    let ids = Arc::new(Identities::load(IdentitySources {
        age_key: Some(SecretString::from(format!(
            "{} {}",
            a.to_string().expose_secret(),
            GO_IDENTITY
        ))),
        age_key_file: Some(key_file),
        age_key_cmd: Some(cmd),
        config_dir: Some(config),
        ..empty_sources()
    }));
    assert!(ids.load_errors().is_empty(), "{:?}", ids.load_errors());
    assert_eq!(ids.len(), 4);
    for id in [&a, &b, &c, &d] {
        let key = AgeKey::from_recipient(&id.to_public().to_string())
            .unwrap()
            .with_identities(ids.clone());
        let w = key.wrap(&SecretBytes::from_slice(b"x"), b"").await.unwrap();
        assert_eq!(key.unwrap(&w, b"").await.unwrap().unwrap().expose(), b"x");
    }
}

#[tokio::test]
async fn load_errors_name_the_source_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    let mut f = std::fs::File::create(&bad).unwrap();
    writeln!(f, "{GO_IDENTITY}\nAGE-SECRET-KEY-1SECRETSTUFF").unwrap();
    let ids = Identities::load(IdentitySources {
        age_key_file: Some(bad),
        age_key: Some(SecretString::from("not-a-key".to_owned())),
        ssh_key_file: Some(dir.path().join("missing")),
        ssh_key_cmd: Some("false".into()),
        ..empty_sources()
    });
    let errors = ids.load_errors().join("\n");
    assert!(errors.contains("SOPS_AGE_KEY_FILE"), "{errors}");
    assert!(errors.contains("line 2"), "{errors}");
    assert!(errors.contains("SOPS_AGE_KEY: line 1"), "{errors}");
    assert!(errors.contains("SOPS_AGE_SSH_PRIVATE_KEY_FILE"), "{errors}");
    assert!(errors.contains("SOPS_AGE_SSH_PRIVATE_KEY_CMD"), "{errors}");
    assert!(
        !errors.contains("SECRETSTUFF") && !errors.contains("not-a-key"),
        "{errors}"
    );
    let err = ids
        .unwrap_for(GO_RECIPIENT, GO_ENCRYPTED.as_bytes())
        .unwrap_err();
    let err = err.to_string();
    assert!(err.contains("failed to load age identities"), "{err}");
    assert!(err.contains("Errors while loading"), "{err}");
    // Debug never shows key material.
    let debug = format!(
        "{ids:?} {:?}",
        IdentitySources {
            age_key: Some(SecretString::from(GO_IDENTITY.to_owned())),
            ..IdentitySources::default()
        }
    );
    assert!(!debug.contains("AGE-SECRET-KEY"), "{debug}");
}

#[test]
fn user_config_dir_prefers_absolute_xdg() {
    let home = PathBuf::from("/home/u");
    assert_eq!(
        user_config_dir(Some("/x".into()), Some(home.clone())),
        Some(PathBuf::from("/x"))
    );
    if cfg!(target_os = "linux") {
        assert_eq!(
            user_config_dir(Some("relative".into()), Some(home.clone())),
            Some(PathBuf::from("/home/u/.config"))
        );
        assert_eq!(
            user_config_dir(None, Some(home)),
            Some(PathBuf::from("/home/u/.config"))
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let ids = text_identities(GO_IDENTITY);
        proptest::prop_assert!(ids.unwrap_for(GO_RECIPIENT, &body).is_err());
    }

    #[test]
    fn flipped_bytes_never_give_another_key(index in 0..GO_ENCRYPTED.len(), bit in 0u8..8) {
        let mut body = GO_ENCRYPTED.as_bytes().to_vec();
        body[index] ^= 1 << bit;
        let ids = text_identities(GO_IDENTITY);
        if let Ok(key) = ids.unwrap_for(GO_RECIPIENT, &body) {
            proptest::prop_assert_eq!(key.expose(), b"data");
        }
    }

    #[test]
    fn arbitrary_identity_text_and_recipients_never_panic(text in "\\PC{0,200}") {
        let _ = Identities::from_text("fuzz", &text, AgePrompt::Never);
        let _ = AgeKey::from_recipient(&text);
        let _ = AgeKey::parse_list(&text);
    }
}

/// sops >= 3.12 (getsops/sops#1999): an Ed25519 SSH key also opens keys wrapped for its X25519
/// form. The recipient was derived independently (Python `cryptography`: clamped SHA-512 of the
/// seed, X25519 base-point multiplication, Bech32).
#[tokio::test]
async fn ed25519_ssh_key_opens_its_x25519_recipient() {
    const DERIVED: &str = "age1csmf6palnf8uaa6rrun229d85lz5s8lygpegpd530swfck76k43snrhyf9";
    let derived = ssh::x25519_from_openssh(GO_SSH_IDENTITY.as_bytes()).unwrap();
    assert_eq!(derived.to_public().to_string(), DERIVED);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id");
    std::fs::write(&path, GO_SSH_IDENTITY).unwrap();
    let ids = Arc::new(Identities::load(IdentitySources {
        ssh_key_file: Some(path),
        ..empty_sources()
    }));
    assert_eq!(ids.recipients(), vec![DERIVED.to_owned()]);
    let key = AgeKey::from_recipient(DERIVED)
        .unwrap()
        .with_identities(ids);
    let w = key.wrap(&SecretBytes::from_slice(b"k"), b"").await.unwrap();
    assert_eq!(key.unwrap(&w, b"").await.unwrap().unwrap().expose(), b"k");
    // Not for other inputs.
    assert!(ssh::x25519_from_openssh(b"garbage").is_none());
    assert!(ssh::x25519_from_openssh(GO_IDENTITY.as_bytes()).is_none());
}

/// age plugins: a recipient `age1hushtest1…` wraps through `age-plugin-hushtest` and an identity
/// `AGE-PLUGIN-HUSHTEST-1…` unwraps through it. Plugins are found on `PATH`, which a test cannot
/// change in its own process, so the test re-runs itself with the plugin's directory on `PATH`.
#[tokio::test]
async fn age_plugins_wrap_and_unwrap() {
    const RECIPIENT: &str = "age1hushtest1dp6hx6qg66mv8";
    const IDENTITY: &str = "AGE-PLUGIN-HUSHTEST-1DP6HX6QMGYGV5";
    if std::env::var_os("HUSH_AGE_PLUGIN_TEST_CHILD").is_none() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("age-plugin-hushtest");
        std::fs::write(&plugin, include_str!("test-plugin.py")).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(std::iter::once(dir.path().to_owned()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "age::tests::age_plugins_wrap_and_unwrap",
                "--nocapture",
            ])
            .env("PATH", path)
            .env("HUSH_AGE_PLUGIN_TEST_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let ids = Arc::new(Identities::from_text("plugin", IDENTITY, AgePrompt::Never));
    assert!(ids.load_errors().is_empty(), "{:?}", ids.load_errors());
    let key = AgeKey::from_recipient(RECIPIENT)
        .unwrap()
        .with_prompt(AgePrompt::Never)
        .with_identities(ids);
    let data_key = SecretBytes::from_slice(&[3u8; 32]);
    let w = key.wrap(&data_key, b"").await.unwrap();
    assert!(w.body.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    let got = key.unwrap(&w, b"").await.unwrap().unwrap();
    assert_eq!(got.expose(), data_key.expose());
}

#[tokio::test]
async fn no_identities_at_all_says_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    let ids = Identities::load(IdentitySources {
        home: Some(home.path().to_owned()),
        config_dir: Some(home.path().join("config")),
        ..empty_sources()
    });
    assert!(ids.is_empty());
    let err = ids
        .unwrap(&wrapped(GO_RECIPIENT, GO_ENCRYPTED), b"")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed to load age identities"), "{err}");
    for place in ["SOPS_AGE_KEY_FILE", "id_ed25519", "keys.txt"] {
        assert!(err.contains(place), "{place}: {err}");
    }
}
