//! `hush demo`: a real walkthrough in a temporary directory. Each step prints what it does and
//! the command a user would run; any failed step makes the demo exit non-zero.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use hush_crypto::rsa::RsaPrivateKey;
use hush_crypto::{SecretBytes, SystemEntropy, cert, envelope, shamir};

/// Arguments of `hush demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Keep the temporary directory and print its path.
    #[arg(long)]
    keep: bool,
}

struct Demo {
    step: usize,
}

impl Demo {
    fn step(&mut self, what: &str) {
        self.step += 1;
        println!("\n==> {}. {what}", self.step);
    }

    fn cmd(&self, command: &str) {
        println!("    $ {command}");
    }

    fn ok(&self, result: &str) {
        println!("    ok: {result}");
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("hush-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    println!("hush demo: working in {}", dir.path().display());
    let mut d = Demo { step: 0 };
    sealing_keys_and_scopes(&mut d, dir.path())?;
    seal_whole_secret(&mut d, dir.path())?;
    shamir_split(&mut d)?;
    sops_round_trip(&mut d, dir.path())?;
    render_app(&mut d, dir.path())?;
    fake_store(&mut d)?;
    println!("\nhush demo: all {} steps passed", d.step);
    if args.keep {
        let kept = dir.keep();
        println!("hush demo: files kept in {}", kept.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn now_unix() -> anyhow::Result<i64> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}

fn sealing_keys_and_scopes(d: &mut Demo, dir: &Path) -> anyhow::Result<()> {
    d.step("Generate a sealing key pair and self-signed certificate (RSA-4096, 10 years)");
    d.cmd("hush controller   # the controller does this on first start; here the library does it");
    let key = RsaPrivateKey::generate(4096).context("generating the RSA-4096 key")?;
    let now = now_unix()?;
    let certificate = cert::self_signed(
        &key,
        "",
        now,
        now + 10 * 365 * 24 * 3600,
        &mut SystemEntropy,
    )
    .context("creating the certificate")?;
    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, certificate.to_pem())?;
    std::fs::write(dir.join("key.pem"), key.to_pkcs1_pem()?.expose())?;
    d.ok(&format!(
        "{} (fingerprint {})",
        cert_path.display(),
        certificate.public_key.fingerprint()
    ));

    let value = b"s3cr3t-demo-value";
    let scopes: [(&str, &[u8]); 3] = [
        ("strict", b"demo/db-creds"),
        ("namespace-wide", b"demo"),
        ("cluster-wide", b""),
    ];
    for (scope, label) in scopes {
        d.step(&format!(
            "Seal a value for demo/db-creds with scope {scope}, then open it"
        ));
        d.cmd(&format!(
            "echo -n s3cr3t-demo-value | kubeseal --raw --scope {scope} --namespace demo --name db-creds --cert cert.pem"
        ));
        let sealed = envelope::seal(&certificate.public_key, value, label, &mut SystemEntropy)?;
        let opened = envelope::open(&key, &sealed, label)?;
        ensure!(
            opened.expose() == value,
            "the opened value differs from the sealed one"
        );
        d.ok(&format!(
            "{} ciphertext bytes, opened to the original value",
            sealed.len()
        ));
    }

    d.step("Move a strict-scope value to another namespace: it must be refused");
    d.cmd("kubectl -n other apply -f sealed-db-creds.yaml   # copied from namespace demo");
    let sealed = envelope::seal(
        &certificate.public_key,
        value,
        b"demo/db-creds",
        &mut SystemEntropy,
    )?;
    match envelope::open(&key, &sealed, b"other/db-creds") {
        Ok(_) => bail!("a value sealed for demo/db-creds opened in namespace other"),
        Err(e) => d.ok(&format!("refused: {e}")),
    }
    Ok(())
}

/// Seals a whole Secret as `kubeseal` does and opens it as the controller does, with the key
/// and certificate of the first step.
fn seal_whole_secret(d: &mut Demo, dir: &Path) -> anyhow::Result<()> {
    use hush_sealing::codec::{self, Format};
    use hush_sealing::seal::{self as sealing, Prepare};
    use hush_sealing::unseal::{Keyring, UnsealOptions};

    d.step("Seal a whole Secret (two items, one binary) and open it with the controller's key");
    d.cmd("kubeseal --cert cert.pem -o yaml < db-creds.yaml > sealed-db-creds.yaml");
    let input = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-creds\n  namespace: demo\ntype: Opaque\ndata:\n  blob: AP8Agw==\nstringData:\n  password: s3cr3t-demo-value\n";
    std::fs::write(dir.join("db-creds.yaml"), input)?;
    let certificate =
        hush_crypto::cert::Certificate::from_pem(&std::fs::read(dir.join("cert.pem"))?)?;
    let mut secret = codec::read_secrets(input.as_bytes())?
        .pop()
        .context("the demo Secret did not parse")?;
    sealing::prepare(
        &mut secret,
        &Prepare {
            namespace: "default",
            ..Prepare::default()
        },
    )?;
    let sealed = sealing::seal_secret(&certificate.public_key, &secret, &mut SystemEntropy)?;
    let text = codec::write_sealed_secret(&sealed, Format::Yaml)?;
    ensure!(
        !text.contains("s3cr3t-demo-value"),
        "the SealedSecret contains the plaintext"
    );
    std::fs::write(dir.join("sealed-db-creds.yaml"), &text)?;

    let mut keyring = Keyring::new();
    keyring.add(RsaPrivateKey::from_pem(&std::fs::read(
        dir.join("key.pem"),
    )?)?);
    let read_back = codec::read_sealed_secret(text.as_bytes())?;
    let opened = keyring.unseal(&read_back, &UnsealOptions::default())?;
    ensure!(
        opened.secret.data.get("password").map(|v| v.expose()) == Some(&b"s3cr3t-demo-value"[..])
            && opened.secret.data.get("blob").map(|v| v.expose())
                == Some(&[0u8, 0xff, 0, 0x83][..]),
        "the unsealed Secret differs from the input"
    );
    d.ok(&format!(
        "sealed-db-creds.yaml ({} bytes) opened by key {}",
        text.len(),
        opened.opened_by.get("password").map_or("?", String::as_str)
    ));

    d.step("Copy the SealedSecret to another namespace: the controller refuses it and says why");
    d.cmd("sed 's/namespace: demo/namespace: other/' sealed-db-creds.yaml | kubectl apply -f -");
    let mut moved = read_back;
    moved.metadata.namespace = "other".into();
    match keyring.unseal(&moved, &UnsealOptions::default()) {
        Ok(_) => bail!("a Secret sealed for namespace demo opened in namespace other"),
        Err(e) => d.ok(&format!("refused: {e}")),
    }
    Ok(())
}

fn shamir_split(d: &mut Demo) -> anyhow::Result<()> {
    d.step("Split a 32-byte data key into 3 Shamir shares (threshold 2) and recombine two of them");
    d.cmd("sops encrypt --shamir-secret-sharing-threshold 2 file.yaml   # with 3 key groups in .sops.yaml");
    let mut data_key = [0u8; 32];
    hush_crypto::Entropy::fill(&mut SystemEntropy, &mut data_key)?;
    let shares = shamir::split(&data_key, 3, 2, &mut SystemEntropy)?;
    let two: Vec<SecretBytes> = vec![shares[0].clone(), shares[2].clone()];
    let combined = shamir::combine(&two)?;
    ensure!(combined.expose() == data_key, "recombined key differs");
    let one = shamir::combine(&shares[1..2]);
    ensure!(one.is_err(), "a single share must not reconstruct the key");
    d.ok("shares 1 and 3 give back the data key; one share alone is refused");
    Ok(())
}

fn render_app(d: &mut Demo, dir: &Path) -> anyhow::Result<()> {
    use age::secrecy::ExposeSecret as _;
    use hush_keys::age::AgeKey;
    use hush_render::backend::{Backend, MemoryBackend};
    use hush_render::decrypt::Keys;
    use hush_render::render::{self, Input, Options};
    use hush_sops::file::EncryptOptions;
    use hush_sops::keys::KeySpec;
    use hush_sops::stores::Format;

    d.step("Render an app as the Argo CD plugin does: SOPS Secret decrypted, placeholders resolved with one read per path");
    let app = dir.join("app");
    std::fs::create_dir_all(&app)?;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\nstringData:\n  password: demo-render-s3cret\n";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let spec = KeySpec::from_service(std::sync::Arc::new(AgeKey::from_recipient(&recipient)?));
    let enc = rt.block_on(hush_sops::file::encrypt(
        secret.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        EncryptOptions {
            groups: vec![vec![spec]],
            ..EncryptOptions::default()
        },
        None,
        &mut SystemEntropy,
    ))?;
    std::fs::write(app.join("secret.enc.yaml"), enc)?;
    std::fs::write(
        app.join("config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  user: <path:secret/data/web#user>\n  url: postgres://<path:secret/data/web#user>@db/<path:secret/data/web#database>\n",
    )?;
    d.cmd("cd app && AVP_TYPE=vault VAULT_ADDR=… HUSH_SOPS_KEYS_DIR=keys/ hush render .");
    let keys = Keys::from_age_identities(&format!("{}\n", identity.to_string().expose_secret()));
    let mut vault = MemoryBackend::new();
    let data = serde_json::json!({"user": "shop", "database": "orders"});
    if let serde_json::Value::Object(m) = data {
        vault.insert("secret/data/web", None, m);
    }
    let out = rt.block_on(render::render(
        &Input::Dir(app),
        &Options::default(),
        &keys,
        Some(&vault as &dyn Backend),
    ))?;
    ensure!(
        out.yaml.contains("password: demo-render-s3cret")
            && out.yaml.contains("url: postgres://shop@db/orders"),
        "the render did not produce the expected objects"
    );
    ensure!(
        vault.reads() == 1,
        "expected one read for three placeholders on one path"
    );
    d.ok(&format!(
        "{} objects; {} SOPS file decrypted (MAC verified); {} placeholders from {} read of secret/data/web",
        out.objects,
        out.decrypted,
        out.stats.replaced,
        vault.reads()
    ));
    Ok(())
}

fn sops_round_trip(d: &mut Demo, dir: &Path) -> anyhow::Result<()> {
    use age::secrecy::ExposeSecret as _;
    use hush_keys::age::{AgeKey, AgePrompt, Identities};
    use hush_sops::file::EncryptOptions;
    use hush_sops::keys::KeySpec;
    use hush_sops::stores::{self, Format};

    d.step("Encrypt a YAML file with sops' format for a fresh age key, decrypt it, refuse a tampered copy");
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let key_text = format!("{}\n", identity.to_string().expose_secret());
    let key_file = dir.join("keys.txt");
    std::fs::write(&key_file, &key_text).context("writing the age key")?;
    let plain =
        "# database credentials\ndb:\n    user: admin\n    password: demo-s3cret\n    port: 5432\n";
    std::fs::write(dir.join("secrets.yaml"), plain)?;
    d.cmd(&format!("sops encrypt --age {recipient} -i secrets.yaml"));
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let spec = KeySpec::from_service(std::sync::Arc::new(AgeKey::from_recipient(&recipient)?));
    let opts = EncryptOptions {
        groups: vec![vec![spec]],
        ..EncryptOptions::default()
    };
    let enc = rt.block_on(hush_sops::file::encrypt(
        plain.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        opts,
        None,
        &mut SystemEntropy,
    ))?;
    let enc_text = String::from_utf8(enc)?;
    ensure!(
        !enc_text.contains("demo-s3cret") && !enc_text.contains("admin"),
        "plaintext in the encrypted file"
    );
    std::fs::write(dir.join("secrets.yaml"), &enc_text)?;
    d.ok("values are ENC[AES256_GCM,…]; the key names, the comment position and the sops metadata are plain");

    d.cmd("SOPS_AGE_KEY_FILE=keys.txt sops decrypt secrets.yaml");
    let mut registry = hush_keys::KeyRegistry::new();
    registry.register(std::sync::Arc::new(Identities::from_text(
        "keys.txt",
        &key_text,
        AgePrompt::default(),
    )));
    let opened = rt.block_on(hush_sops::file::open(
        enc_text.as_bytes(),
        Format::Yaml,
        &registry,
        &[],
        false,
    ))?;
    let out = stores::emit_plain(Format::Yaml, &opened.branches, None)?;
    ensure!(
        out == plain.as_bytes(),
        "decrypted file differs from the original"
    );
    d.ok("decrypted byte for byte, MAC verified");

    let tampered = enc_text.replacen(
        "password: ENC[AES256_GCM,data:",
        "password: ENC[AES256_GCM,data:AA",
        1,
    );
    match rt.block_on(hush_sops::file::open(
        tampered.as_bytes(),
        Format::Yaml,
        &registry,
        &[],
        false,
    )) {
        Err(hush_sops::Error::Decrypt { path, .. }) => {
            d.ok(&format!(
                "a changed value at `{path}` is refused (sops exits 25)"
            ));
        }
        Err(e) => bail!("tampered file refused with an unexpected error: {e}"),
        Ok(_) => bail!("a tampered file was accepted"),
    }
    Ok(())
}

/// No credentials exist in the demo: the fake provider never asks for any.
struct NoCredentials;

#[async_trait::async_trait]
impl hush_sync::CredentialSource for NoCredentials {
    async fn secret_key(
        &self,
        r: &hush_sync::KeyRef,
    ) -> Result<SecretBytes, hush_sync::ProviderError> {
        Err(hush_sync::ProviderError::Invalid(format!(
            "the demo has no Secret {:?}",
            r.name
        )))
    }
    async fn config_map_key(
        &self,
        r: &hush_sync::KeyRef,
    ) -> Result<String, hush_sync::ProviderError> {
        Err(hush_sync::ProviderError::Invalid(format!(
            "the demo has no ConfigMap {:?}",
            r.name
        )))
    }
    async fn service_account_token(
        &self,
        _: Option<&str>,
        name: &str,
        _: &[String],
        _: i64,
    ) -> Result<SecretBytes, hush_sync::ProviderError> {
        Err(hush_sync::ProviderError::Invalid(format!(
            "the demo has no ServiceAccount {name:?}"
        )))
    }
}

/// ESO's documented fake store (docs/snippets/fake-provider-store.yaml) read through the
/// provider registry the ExternalSecret controller uses, as its documented ExternalSecret asks.
fn fake_store(d: &mut Demo) -> anyhow::Result<()> {
    use hush_sync::{RemoteRef, StoreScope};
    d.step("Read ESO's documented fake SecretStore as the ExternalSecret controller does (no backend needed)");
    let provider = serde_json::json!({"fake": {"data": [
        {"key": "/foo/bar", "value": "HELLO1", "version": "v1"},
        {"key": "/foo/bar", "value": "HELLO2", "version": "v2"},
        {"key": "/foo/baz", "value": "{\"john\": \"doe\"}", "version": "v1"},
    ]}});
    d.cmd("kubectl apply -f fake-provider-store.yaml -f fake-provider-es.yaml   # with hush controller --controllers external");
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let factories = hush_sync::registry();
    let (factory, spec) = hush_sync::select(&factories, &provider)?;
    let scope = StoreScope::new("ClusterSecretStore", "fake", Some("default".into()));
    let built = rt.block_on(factory.build(spec, &scope, &NoCredentials))?;
    let at = |key: &str| RemoteRef {
        key: key.into(),
        version: "v1".into(),
        ..RemoteRef::default()
    };
    let foo_bar = rt.block_on(built.provider.get(&at("/foo/bar")))?;
    let extracted = rt.block_on(built.provider.get_map(&at("/foo/baz")))?;
    ensure!(
        foo_bar.expose() == b"HELLO1",
        "data /foo/bar v1 is not HELLO1"
    );
    ensure!(
        extracted.get("john").map(SecretBytes::expose) == Some(b"doe".as_slice()),
        "dataFrom.extract /foo/baz v1 has no john=doe"
    );
    d.ok("Secret secret-to-be-created gets foo_bar=HELLO1 (data) and john=doe (dataFrom.extract), as ESO documents");
    Ok(())
}
