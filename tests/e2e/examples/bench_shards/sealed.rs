//! The SealedSecret workload: one RSA-4096 sealing key made beforehand (stored as Bitnami stores
//! it, in each phase's Lease namespace, which is also the key namespace), SealedSecrets of one
//! 32-byte value each.

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::Command;

use anyhow::Result;
use futures::{StreamExt as _, stream};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_crypto::rsa::RsaPublicKey;
use hush_testkit::{TestNamespace, install_repo_crd};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::{Workload, World};

pub(crate) struct Sealed {
    key_secret: Secret,
    public: RsaPublicKey,
}

impl Sealed {
    pub(crate) async fn new(client: &kube::Client) -> Result<Self> {
        install_repo_crd(client, "sealedsecrets.bitnami.com.yaml").await?;
        let key = hush_crypto::rsa::RsaPrivateKey::generate(4096)?;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let cert = hush_crypto::cert::self_signed(&key, "", now, now + 3600, &mut SystemEntropy)?;
        let key_secret = Secret {
            metadata: kube::api::ObjectMeta {
                generate_name: Some("sealed-secrets-key".into()),
                labels: Some(BTreeMap::from([(
                    "sealedsecrets.bitnami.com/sealed-secrets-key".to_owned(),
                    "active".to_owned(),
                )])),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                ("tls.crt".to_owned(), ByteString(cert.to_pem().into_bytes())),
                (
                    "tls.key".to_owned(),
                    ByteString(key.to_pkcs1_pem()?.expose().to_vec()),
                ),
            ])),
            ..Default::default()
        };
        Ok(Self {
            key_secret,
            public: cert.public_key,
        })
    }
}

impl Workload for Sealed {
    const KIND: &'static str = "SealedSecret";
    const RESOURCES: &'static [&'static str] = &["secrets", "sealedsecrets", "events"];
    const WORK: &'static str = "hush_sealed_decrypts_total";

    async fn world(&self, client: &kube::Client) -> Result<World> {
        let leases = TestNamespace::create(client, "bench-keys").await?;
        let app = TestNamespace::create(client, "bench").await?;
        leases
            .api::<Secret>()
            .create(&PostParams::default(), &self.key_secret)
            .await?;
        Ok(World { leases, app })
    }

    async fn create(&self, world: &World, names: Range<usize>) -> Result<()> {
        let api: Api<SealedSecret> = world.app.api();
        let ns = world.app.name();
        let results: Vec<Result<()>> = stream::iter(names)
            .map(|i| {
                let api = api.clone();
                let public = self.public.clone();
                async move {
                    let mut value = [0u8; 32];
                    hush_crypto::Entropy::fill(&mut SystemEntropy, &mut value)?;
                    let secret: hush_sealing::Secret = serde_json::from_value(json!({
                        "metadata": {"name": format!("s{i}"), "namespace": ns},
                        "data": {"v": hush_sealing::b64::encode(&value)},
                    }))?;
                    let sealed =
                        hush_sealing::seal::seal_secret(&public, &secret, &mut SystemEntropy)?;
                    let text = hush_sealing::codec::write_sealed_secret(
                        &sealed,
                        hush_sealing::codec::Format::Json,
                    )?;
                    let ss: SealedSecret = serde_json::from_str(&text)?;
                    api.create(&PostParams::default(), &ss).await?;
                    Ok(())
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        results.into_iter().collect()
    }

    fn command(&self, hush: &str, world: &World) -> Command {
        let mut cmd = Command::new(hush);
        cmd.args([
            "controller",
            "--key-namespace",
            world.leases.name(),
            "--all-namespaces=false",
            "--additional-namespaces",
            world.app.name(),
            "--key-renew-period=0",
        ]);
        cmd
    }
}
