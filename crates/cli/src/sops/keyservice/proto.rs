//! sops' key service messages (`getsops/sops:keyservice/keyservice.proto`, proto3, no package),
//! written with prost's derives so no `protoc` is needed. Field numbers and types are the
//! proto's; requests and responses that carry a data key have a redacting `Debug`.

use std::collections::HashMap;

/// `Key`: which master key (one of the proto's `key_type`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Key {
    #[prost(oneof = "KeyType", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub(crate) key_type: Option<KeyType>,
}

/// The proto's names, kept as they are.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum KeyType {
    #[prost(message, tag = "1")]
    KmsKey(KmsKey),
    #[prost(message, tag = "2")]
    PgpKey(PgpKey),
    #[prost(message, tag = "3")]
    GcpKmsKey(GcpKmsKey),
    #[prost(message, tag = "4")]
    AzureKeyvaultKey(AzureKeyVaultKey),
    #[prost(message, tag = "5")]
    VaultKey(VaultKey),
    #[prost(message, tag = "6")]
    AgeKey(AgeKey),
    #[prost(message, tag = "7")]
    HckmsKey(HckmsKey),
    #[prost(message, tag = "8")]
    PluginKey(PluginKey),
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PgpKey {
    #[prost(string, tag = "1")]
    pub(crate) fingerprint: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct KmsKey {
    #[prost(string, tag = "1")]
    pub(crate) arn: String,
    #[prost(string, tag = "2")]
    pub(crate) role: String,
    #[prost(map = "string, string", tag = "3")]
    pub(crate) context: HashMap<String, String>,
    #[prost(string, tag = "4")]
    pub(crate) aws_profile: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GcpKmsKey {
    #[prost(string, tag = "1")]
    pub(crate) resource_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct VaultKey {
    #[prost(string, tag = "1")]
    pub(crate) vault_address: String,
    #[prost(string, tag = "2")]
    pub(crate) engine_path: String,
    #[prost(string, tag = "3")]
    pub(crate) key_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AzureKeyVaultKey {
    #[prost(string, tag = "1")]
    pub(crate) vault_url: String,
    #[prost(string, tag = "2")]
    pub(crate) name: String,
    #[prost(string, tag = "3")]
    pub(crate) version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AgeKey {
    #[prost(string, tag = "1")]
    pub(crate) recipient: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HckmsKey {
    #[prost(string, tag = "1")]
    pub(crate) key_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PluginKey {
    #[prost(string, tag = "1")]
    pub(crate) binary_name: String,
    #[prost(string, tag = "2")]
    pub(crate) instance_id: String,
    #[prost(string, tag = "3")]
    pub(crate) config: String,
    #[prost(string, tag = "4")]
    pub(crate) timeout: String,
}

/// `EncryptRequest`: `plaintext` is a data key (or a Shamir share).
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub(crate) struct EncryptRequest {
    #[prost(message, optional, tag = "1")]
    pub(crate) key: Option<Key>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) plaintext: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EncryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) ciphertext: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct DecryptRequest {
    #[prost(message, optional, tag = "1")]
    pub(crate) key: Option<Key>,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) ciphertext: Vec<u8>,
}

/// `DecryptResponse`: `plaintext` is a data key (or a Shamir share).
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub(crate) struct DecryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) plaintext: Vec<u8>,
}

impl std::fmt::Debug for EncryptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("key", &self.key)
            .field("plaintext", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for DecryptResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptResponse")
            .field("plaintext", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn messages_have_the_protos_wire_form() {
        // EncryptRequest{key: Key{age_key: AgeKey{recipient: "r"}}, plaintext: [1, 2]}, as Go's
        // protobuf encodes it: field 1 (len 5: Key{field 6 (len 3: AgeKey{field 1 "r"})}),
        // field 2 (len 2).
        let req = EncryptRequest {
            key: Some(Key {
                key_type: Some(KeyType::AgeKey(AgeKey {
                    recipient: "r".into(),
                })),
            }),
            plaintext: vec![1, 2],
        };
        let bytes = req.encode_to_vec();
        assert_eq!(bytes, [0x0a, 5, 0x32, 3, 0x0a, 1, b'r', 0x12, 2, 1, 2]);
        assert_eq!(EncryptRequest::decode(bytes.as_slice()).unwrap(), req);
        assert!(!format!("{req:?}").contains("[1, 2]"));
    }
}
