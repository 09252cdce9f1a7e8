//! The gRPC service `KeyService` (no package: paths `/KeyService/Encrypt` and
//! `/KeyService/Decrypt`), written as tonic's generator would write it, over prost messages.

use std::sync::Arc;
use std::task::{Context, Poll};

use hush_crypto::SecretBytes;
use hush_keys::age::Identities;
use hush_keys::{KeyService, WrappedKey};
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

/// A master key named by a request: its sops type and metadata fields.
struct Named {
    type_id: &'static str,
    fields: Vec<(String, Value)>,
    id: String,
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

/// The sops metadata form of a request's key, or the status that refuses it.
fn named(key: Option<&Key>) -> Result<Named, tonic::Status> {
    let unsupported = |what: &str| {
        tonic::Status::unimplemented(format!(
            "hush's key service has no {what} keys (it serves age, pgp, Vault transit and AWS KMS)"
        ))
    };
    let Some(key_type) = key.and_then(|k| k.key_type.as_ref()) else {
        return Err(tonic::Status::invalid_argument("the request names no key"));
    };
    Ok(match key_type {
        KeyType::AgeKey(k) => Named {
            type_id: "age",
            fields: vec![("recipient".into(), s(&k.recipient))],
            id: k.recipient.clone(),
        },
        KeyType::PgpKey(k) => Named {
            type_id: "pgp",
            fields: vec![("fp".into(), s(&k.fingerprint))],
            id: k.fingerprint.clone(),
        },
        KeyType::VaultKey(k) => Named {
            type_id: "hc_vault",
            fields: vec![
                ("vault_address".into(), s(&k.vault_address)),
                ("engine_path".into(), s(&k.engine_path)),
                ("key_name".into(), s(&k.key_name)),
            ],
            id: format!(
                "{}/v1/{}/keys/{}",
                k.vault_address, k.engine_path, k.key_name
            ),
        },
        KeyType::KmsKey(k) => {
            let mut context: Vec<(&String, &String)> = k.context.iter().collect();
            context.sort();
            let context = context
                .into_iter()
                .map(|(k, v)| Item::Entry(k.clone(), s(v)))
                .collect();
            Named {
                type_id: "kms",
                fields: vec![
                    ("arn".into(), s(&k.arn)),
                    ("role".into(), s(&k.role)),
                    ("context".into(), Value::Map(context)),
                    ("aws_profile".into(), s(&k.aws_profile)),
                ],
                id: k.arn.clone(),
            }
        }
        KeyType::GcpKmsKey(_) => return Err(unsupported("GCP KMS")),
        KeyType::AzureKeyvaultKey(_) => return Err(unsupported("Azure Key Vault")),
        KeyType::HckmsKey(_) => return Err(unsupported("HuaweiCloud KMS")),
        KeyType::PluginKey(_) => return Err(unsupported("plugin")),
    })
}

fn service(key: &Named) -> Result<Arc<dyn KeyService>, tonic::Status> {
    match service_for(key.type_id, &key.fields) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(tonic::Status::unimplemented(format!(
            "hush's key service has no {} keys",
            key.type_id
        ))),
        Err(e) => Err(tonic::Status::invalid_argument(format!(
            "{} key {}: {e:#}",
            key.type_id, key.id
        ))),
    }
}

impl Keys {
    async fn encrypt(&self, req: EncryptRequest) -> Result<EncryptResponse, tonic::Status> {
        let key = named(req.key.as_ref())?;
        let plaintext = SecretBytes::from_slice(&req.plaintext);
        drop(zeroize::Zeroizing::new(req.plaintext));
        let wrapped = service(&key)?
            .wrap(&plaintext, b"")
            .await
            .map_err(|e| tonic::Status::internal(format!("{} key {}: {e}", key.type_id, key.id)))?;
        Ok(EncryptResponse {
            ciphertext: wrapped.body,
        })
    }

    async fn decrypt(&self, req: DecryptRequest) -> Result<DecryptResponse, tonic::Status> {
        let key = named(req.key.as_ref())?;
        let wrapped = WrappedKey::new(key.type_id, key.id.clone(), req.ciphertext);
        let opened = if key.type_id == "age" {
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
                key.type_id, key.id
            ))),
            Err(e) => Err(tonic::Status::internal(format!(
                "{} key {}: {e}",
                key.type_id, key.id
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
