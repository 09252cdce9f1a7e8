//! `--keyservice URI`: a master key used through a remote sops key service (a real `sops
//! keyservice` or `hush sops keyservice`), as one more [`KeyService`].

use std::collections::HashMap;

use async_trait::async_trait;
use hush_crypto::SecretBytes;
use hush_keys::{KeyError, KeyService, WrappedKey};
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint};

use hush_keys::EntryFields;
use hush_sops::metadata::MasterKey;

use super::proto::{
    AgeKey, AzureKeyVaultKey, DecryptRequest, EncryptRequest, GcpKmsKey, HckmsKey, Key, KeyType,
    KmsKey, PgpKey, VaultKey,
};

/// A key service address: `tcp://HOST:PORT` or `unix:///path` (sops' forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Tcp(String),
    Unix(String),
}

impl Address {
    /// Parses `--keyservice`; anything else is refused naming the value.
    pub(crate) fn parse(uri: &str) -> Result<Self, String> {
        if let Some(rest) = uri.strip_prefix("tcp://") {
            let host = rest.trim_end_matches('/');
            if !host.is_empty() {
                return Ok(Self::Tcp(host.to_owned()));
            }
        } else if let Some(path) = uri.strip_prefix("unix://")
            && path.starts_with('/')
        {
            return Ok(Self::Unix(path.to_owned()));
        }
        Err(format!(
            "--keyservice {uri:?}: use tcp://HOST:PORT or unix:///path/to/socket"
        ))
    }

    fn uri(&self) -> String {
        match self {
            Self::Tcp(h) => format!("tcp://{h}"),
            Self::Unix(p) => format!("unix://{p}"),
        }
    }

    async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        match self {
            Self::Tcp(host) => {
                Endpoint::from_shared(format!("http://{host}"))?
                    .connect()
                    .await
            }
            Self::Unix(path) => {
                let path = path.clone();
                // The URI is unused: the connector dials the socket.
                Endpoint::from_static("http://[::]:50051")
                    .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
            }
        }
    }
}

/// One master key (sops metadata type and fields) reached through a remote key service.
#[derive(Debug, Clone)]
pub(crate) struct RemoteKey {
    address: Address,
    type_id: String,
    key_id: String,
    key: Key,
}

/// The proto's `Key` for a sops metadata entry; `None` for types the protocol has no message for.
fn proto_key(entry: &MasterKey) -> Option<Key> {
    let f = |name| EntryFields::field(entry, name).to_owned();
    let key_type = match entry.type_id.as_str() {
        "age" => KeyType::AgeKey(AgeKey {
            recipient: f("recipient"),
        }),
        "pgp" => KeyType::PgpKey(PgpKey {
            fingerprint: f("fp"),
        }),
        "hc_vault" => KeyType::VaultKey(VaultKey {
            vault_address: f("vault_address"),
            engine_path: f("engine_path"),
            key_name: f("key_name"),
        }),
        "kms" => {
            let context: HashMap<String, String> = entry.map("context").into_iter().collect();
            KeyType::KmsKey(KmsKey {
                arn: f("arn"),
                role: f("role"),
                context,
                aws_profile: f("aws_profile"),
            })
        }
        "gcp_kms" => KeyType::GcpKmsKey(GcpKmsKey {
            resource_id: f("resource_id"),
        }),
        "azure_kv" => KeyType::AzureKeyvaultKey(AzureKeyVaultKey {
            vault_url: f("vault_url"),
            name: f("name"),
            version: f("version"),
        }),
        "hckms" => KeyType::HckmsKey(HckmsKey {
            key_id: f("key_id"),
        }),
        _ => return None,
    };
    Some(Key {
        key_type: Some(key_type),
    })
}

impl RemoteKey {
    /// The key of metadata `entry` at `address`; `None` for key types the protocol cannot name.
    pub(crate) fn new(address: Address, entry: &MasterKey) -> Option<Self> {
        Some(Self {
            key: proto_key(entry)?,
            address,
            type_id: entry.type_id.clone(),
            key_id: entry.key_id(),
        })
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> KeyError {
        KeyError::Service {
            type_id: self.type_id.clone(),
            key_id: self.key_id.clone(),
            message: format!("key service {}: {what}: {e}", self.address.uri()),
        }
    }

    async fn client(&self) -> Result<tonic::client::Grpc<Channel>, KeyError> {
        let channel = self
            .address
            .connect()
            .await
            .map_err(|e| self.error("cannot connect", e))?;
        Ok(tonic::client::Grpc::new(channel))
    }
}

#[async_trait]
impl KeyService for RemoteKey {
    fn type_id(&self) -> &str {
        &self.type_id
    }

    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    async fn wrap(&self, key: &SecretBytes, _aad: &[u8]) -> Result<WrappedKey, KeyError> {
        let mut grpc = self.client().await?;
        grpc.ready().await.map_err(|e| self.error("not ready", e))?;
        let req = EncryptRequest {
            key: Some(self.key.clone()),
            plaintext: key.expose().to_vec(),
        };
        let path = http::uri::PathAndQuery::from_static("/KeyService/Encrypt");
        let resp: tonic::Response<super::proto::EncryptResponse> = grpc
            .unary(
                tonic::Request::new(req),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map_err(|s| self.error("Encrypt", s.message()))?;
        Ok(WrappedKey::new(
            self.type_id.clone(),
            self.key_id.clone(),
            resp.into_inner().ciphertext,
        ))
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        _aad: &[u8],
    ) -> Result<Option<SecretBytes>, KeyError> {
        if wrapped.type_id != self.type_id || wrapped.key_id != self.key_id {
            return Ok(None);
        }
        let mut grpc = self.client().await?;
        grpc.ready().await.map_err(|e| self.error("not ready", e))?;
        let req = DecryptRequest {
            key: Some(self.key.clone()),
            ciphertext: wrapped.body.clone(),
        };
        let path = http::uri::PathAndQuery::from_static("/KeyService/Decrypt");
        let resp: tonic::Response<super::proto::DecryptResponse> = grpc
            .unary(
                tonic::Request::new(req),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map_err(|s| self.error("Decrypt", s.message()))?;
        let plain = zeroize::Zeroizing::new(resp.into_inner().plaintext);
        Ok(Some(SecretBytes::from_slice(&plain)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_sops_forms_only() {
        assert_eq!(
            Address::parse("tcp://127.0.0.1:5000"),
            Ok(Address::Tcp("127.0.0.1:5000".into()))
        );
        assert_eq!(
            Address::parse("unix:///tmp/sops.sock"),
            Ok(Address::Unix("/tmp/sops.sock".into()))
        );
        for bad in [
            "",
            "127.0.0.1:5000",
            "http://x:1",
            "tcp://",
            "unix://relative",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
