//! The gRPC service `KeyService` (no package: paths `/KeyService/Encrypt` and
//! `/KeyService/Decrypt`), written as tonic's generator would write it, over prost messages.

use std::sync::Arc;
use std::task::{Context, Poll};

use hush_crypto::SecretBytes;
use hush_keys::age::Identities;
use hush_keys::{KeyService, WrappedKey};
use hush_sops::metadata::MasterKey;
use hush_sops::tree::{Item, Value};
use tonic::codegen::{Body, BoxFuture, StdError, http};

use super::proto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, Key, KeyType,
};
use crate::sops::keys::service_for;

/// The master keys this process serves.
#[derive(Debug)]
struct Keys {
    /// age identities from the environment, loaded once at start.
    identities: Identities,
}

/// A master key named by a request: its sops metadata entry and key id.
struct Named {
    entry: MasterKey,
    id: String,
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

/// The sops metadata entry of a request's key (the protocol's message for each key type), or
/// the status that refuses it.
fn named(key: Option<&Key>) -> Result<Named, tonic::Status> {
    let Some(key_type) = key.and_then(|k| k.key_type.as_ref()) else {
        return Err(tonic::Status::invalid_argument("the request names no key"));
    };
    let (type_id, fields) = match key_type {
        KeyType::AgeKey(k) => ("age", vec![("recipient".into(), s(&k.recipient))]),
        KeyType::PgpKey(k) => ("pgp", vec![("fp".into(), s(&k.fingerprint))]),
        KeyType::VaultKey(k) => (
            "hc_vault",
            vec![
                ("vault_address".into(), s(&k.vault_address)),
                ("engine_path".into(), s(&k.engine_path)),
                ("key_name".into(), s(&k.key_name)),
            ],
        ),
        KeyType::KmsKey(k) => {
            let mut context: Vec<(&String, &String)> = k.context.iter().collect();
            context.sort();
            let context = context
                .into_iter()
                .map(|(k, v)| Item::Entry(k.clone(), s(v)))
                .collect();
            (
                "kms",
                vec![
                    ("arn".into(), s(&k.arn)),
                    ("role".into(), s(&k.role)),
                    ("context".into(), Value::Map(context)),
                    ("aws_profile".into(), s(&k.aws_profile)),
                ],
            )
        }
        KeyType::GcpKmsKey(k) => ("gcp_kms", vec![("resource_id".into(), s(&k.resource_id))]),
        KeyType::AzureKeyvaultKey(k) => (
            "azure_kv",
            vec![
                ("vault_url".into(), s(&k.vault_url)),
                ("name".into(), s(&k.name)),
                ("version".into(), s(&k.version)),
            ],
        ),
        KeyType::HckmsKey(k) => ("hckms", vec![("key_id".into(), s(&k.key_id))]),
        KeyType::PluginKey(_) => {
            return Err(tonic::Status::unimplemented(format!(
                "hush's key service has no plugin keys (it serves {})",
                served()
            )));
        }
    };
    let entry = MasterKey::new(type_id, fields);
    let id = match key_type {
        // The protocol's Vault key id is the URL as given (not normalised).
        KeyType::VaultKey(k) => format!(
            "{}/v1/{}/keys/{}",
            k.vault_address, k.engine_path, k.key_name
        ),
        _ => entry.key_id(),
    };
    Ok(Named { entry, id })
}

/// The kinds this build serves, for messages.
fn served() -> String {
    let names: Vec<&str> = hush_keys::kinds::built_kinds().map(|k| k.name).collect();
    names.join(", ")
}

fn service(key: &Named) -> Result<Arc<dyn KeyService>, tonic::Status> {
    let type_id = &key.entry.type_id;
    match service_for(&key.entry) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => {
            let name = hush_keys::kinds::kind(type_id).map_or(type_id.as_str(), |k| k.name);
            Err(tonic::Status::unimplemented(format!(
                "hush's key service has no {name} keys (it serves {})",
                served()
            )))
        }
        Err(e) => Err(tonic::Status::invalid_argument(format!(
            "{type_id} key {}: {e:#}",
            key.id
        ))),
    }
}

impl Keys {
    async fn encrypt(&self, req: EncryptRequest) -> Result<EncryptResponse, tonic::Status> {
        let key = named(req.key.as_ref())?;
        let plaintext = SecretBytes::from_slice(&req.plaintext);
        drop(zeroize::Zeroizing::new(req.plaintext));
        let wrapped = service(&key)?.wrap(&plaintext, b"").await.map_err(|e| {
            tonic::Status::internal(format!("{} key {}: {e}", key.entry.type_id, key.id))
        })?;
        Ok(EncryptResponse {
            ciphertext: wrapped.body,
        })
    }

    async fn decrypt(&self, req: DecryptRequest) -> Result<DecryptResponse, tonic::Status> {
        let key = named(req.key.as_ref())?;
        let wrapped = WrappedKey::new(key.entry.type_id.clone(), key.id.clone(), req.ciphertext);
        // Kinds whose entries only name a recipient (age) are opened by this process's identities.
        let opened = if hush_keys::kinds::kind(&key.entry.type_id).is_some_and(|k| !k.entry_unwraps)
        {
            self.identities.unwrap(&wrapped, b"").await
        } else {
            service(&key)?.unwrap(&wrapped, b"").await
        };
        match opened {
            Ok(Some(plain)) => Ok(DecryptResponse {
                plaintext: plain.expose().to_vec(),
            }),
            Ok(None) => Err(tonic::Status::not_found(format!(
                "{} key {}: no identity or credentials here open it",
                key.entry.type_id, key.id
            ))),
            Err(e) => Err(tonic::Status::internal(format!(
                "{} key {}: {e}",
                key.entry.type_id, key.id
            ))),
        }
    }
}

/// The `KeyService` gRPC server.
#[derive(Debug, Clone)]
pub(super) struct KeyServiceServer {
    keys: Arc<Keys>,
}

impl KeyServiceServer {
    pub(super) fn new() -> Self {
        Self {
            keys: Arc::new(Keys {
                identities: Identities::from_env(),
            }),
        }
    }
}

impl tonic::server::NamedService for KeyServiceServer {
    const NAME: &'static str = "KeyService";
}

struct Encrypt(Arc<Keys>);
struct Decrypt(Arc<Keys>);

impl tonic::server::UnaryService<EncryptRequest> for Encrypt {
    type Response = EncryptResponse;
    type Future = BoxFuture<tonic::Response<EncryptResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<EncryptRequest>) -> Self::Future {
        let keys = Arc::clone(&self.0);
        Box::pin(async move {
            keys.encrypt(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

impl tonic::server::UnaryService<DecryptRequest> for Decrypt {
    type Response = DecryptResponse;
    type Future = BoxFuture<tonic::Response<DecryptResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<DecryptRequest>) -> Self::Future {
        let keys = Arc::clone(&self.0);
        Box::pin(async move {
            keys.decrypt(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for KeyServiceServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let keys = Arc::clone(&self.keys);
        match req.uri().path() {
            "/KeyService/Encrypt" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Encrypt(keys), req).await)
            }),
            "/KeyService/Decrypt" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Decrypt(keys), req).await)
            }),
            _ => Box::pin(async move { Ok(tonic::Status::unimplemented("").into_http()) }),
        }
    }
}
