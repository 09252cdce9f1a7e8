//! The SealedSecret workload: one RSA-4096 sealing key made beforehand (stored as Bitnami stores
//! it, in each phase's Lease namespace, which is also the key namespace), SealedSecrets of one
//! 32-byte value each.

use std::ops::Range;
use std::process::Command;

use anyhow::Result;
use futures::{StreamExt as _, stream};
use hush_api::sealed_secret::SealedSecret;
use hush_crypto::SystemEntropy;
use hush_crypto::rsa::RsaPublicKey;
use hush_testkit::{TestNamespace, install_repo_crd};
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
        let (key_secret, public) = crate::sealed_bench::sealing_key()?;
        Ok(Self { key_secret, public })
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
