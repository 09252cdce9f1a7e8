//! What the SealedSecret benchmark drivers (`bench_sealed_controller`, `bench_shards`) share: a
//! count of the target Secrets from one watch, and a sealing key stored as Bitnami stores it.
#![allow(dead_code, reason = "each driver uses a part")]

use std::collections::BTreeMap;

use anyhow::Result;
use futures::StreamExt as _;
use hush_crypto::SystemEntropy;
use hush_crypto::rsa::RsaPublicKey;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;

/// Counts the distinct Secrets in a namespace from one metadata watch (cheap for the API
/// server, unlike listing N Secrets ten times a second).
pub(crate) struct SecretCount(
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
);

impl SecretCount {
    pub(crate) fn start(client: &kube::Client, namespace: &str) -> Self {
        use kube::runtime::{WatchStreamExt as _, watcher};
        let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), namespace);
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let task = tokio::spawn(async move {
            let mut names = std::collections::HashSet::new();
            let mut stream = std::pin::pin!(
                watcher::watcher(api, watcher::Config::default())
                    .default_backoff()
                    .applied_objects()
            );
            while let Some(item) = stream.next().await {
                if let Ok(secret) = item {
                    names.insert(secret.metadata.name.unwrap_or_default());
                    seen.store(names.len(), std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        Self(count, task)
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for SecretCount {
    fn drop(&mut self) {
        self.1.abort();
    }
}

/// A new RSA-4096 sealing key: the Secret that holds it as Bitnami stores it (`generateName`
/// `sealed-secrets-key`, labelled active, `kubernetes.io/tls`) and its public key.
pub(crate) fn sealing_key() -> Result<(Secret, RsaPublicKey)> {
    let key = hush_crypto::rsa::RsaPrivateKey::generate(4096)?;
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let cert = hush_crypto::cert::self_signed(&key, "", now, now + 3600, &mut SystemEntropy)?;
    let secret = Secret {
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
    Ok((secret, cert.public_key))
}
