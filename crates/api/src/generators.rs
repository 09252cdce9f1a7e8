//! External Secrets Operator's generators (`generators.external-secrets.io/v1alpha1`) that hush
//! implements: `Password`, `UUID`, `Fake`, `VaultDynamicSecret`, `STSSessionToken`,
//! `ECRAuthorizationToken`, `Webhook` and `ClusterGenerator` (wrapping one of them), field
//! for field as ESO (`ESO:apis/generators/v1alpha1/types_*.go`). No server-side defaults (the
//! controller applies ESO's), as for the other kinds.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::external_secrets::OpenObject;

/// API group.
pub const GROUP: &str = "generators.external-secrets.io";

/// Declares one namespaced generator kind. What every kind shares (the derives, group, version,
/// ESO's two categories, camelCase fields) is written here once, so a kind states only its
/// names, its CRD description and its fields. `ClusterGenerator` (cluster-scoped) is written out.
macro_rules! generator {
    (
        $(#[doc = $doc:literal])*
        #[kube(kind = $kind:tt, plural = $plural:tt, singular = $singular:tt, doc = $crd_doc:tt)]
        pub struct $spec:ident $fields:tt
    ) => {
        $(#[doc = $doc])*
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[kube(
            group = "generators.external-secrets.io",
            version = "v1alpha1",
            kind = $kind,
            plural = $plural,
            singular = $singular,
            category = "external-secrets",
            category = "external-secrets-generators",
            namespaced,
            doc = $crd_doc
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $spec $fields
    };
}

generator! {
    /// PasswordSpec controls the behavior of the password generator.
    #[kube(
        kind = "Password",
        plural = "passwords",
        singular = "password",
        doc = "Password generates a random password based on the configuration parameters in spec."
    )]
    pub struct PasswordSpec {
        /// Length of the password (unset or 0: 24).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub length: Option<i64>,
        /// Number of digits (unset: 25% of the length).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub digits: Option<i64>,
        /// Number of symbols (unset: 25% of the length).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub symbols: Option<i64>,
        /// The symbol characters (unset: ``~!@#$%^&*()_+`-={}|[]\:"<>?,./``).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub symbol_characters: Option<String>,
        /// No uppercase letters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub no_upper: Option<bool>,
        /// Characters may repeat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allow_repeat: Option<bool>,
        /// raw (default), base64, base64url, base32 or hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub encoding: Option<String>,
        /// The keys of the output, one password each (unset: `password`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub secret_keys: Vec<String>,
    }
}

generator! {
    /// UUIDSpec: no settings.
    #[kube(
        kind = "UUID",
        plural = "uuids",
        singular = "uuid",
        doc = "UUID generates a version 4 UUID (e56657e3-2ea6-4ca5-a7e5-5c7f8d2b1a6e)."
    )]
    pub struct UUIDSpec {}
}

generator! {
    /// FakeSpec: the data to return.
    #[kube(
        kind = "Fake",
        plural = "fakes",
        singular = "fake",
        doc = "Fake generator is used for testing. It lets you define a static set of credentials that is always returned."
    )]
    pub struct FakeSpec {
        /// Controller class (only controllers with this `--controller-class` use it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub controller: Option<String>,
        /// The data returned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data: Option<BTreeMap<String, String>>,
    }
}

generator! {
    /// VaultDynamicSecretSpec: one Vault / OpenBao API call whose answer is the generated data
    /// (dynamic database credentials, a PKI certificate, a token).
    #[kube(
        kind = "VaultDynamicSecret",
        plural = "vaultdynamicsecrets",
        singular = "vaultdynamicsecret",
        doc = "VaultDynamicSecret calls a Vault or OpenBao path and returns the answer's data, auth or whole body."
    )]
    pub struct VaultDynamicSecretSpec {
        /// Controller class (only controllers with this `--controller-class` use it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub controller: Option<String>,
        /// Vault API method: GET (default), LIST, DELETE, or any other = a write (POST).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub method: Option<String>,
        /// The body of a write (non-GET/LIST/DELETE methods).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<OpenObject>,
        /// Data (the answer's `data`, default), Auth (its `auth`: `auth/token/create`) or Raw (the
        /// whole answer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub result_type: Option<String>,
        /// Retries of a failed call (`maxRetries`, `retryInterval`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retry_settings: Option<OpenObject>,
        /// The Vault provider spec of a SecretStore (`server`, `auth`, `namespace`, `caBundle`, …).
        pub provider: OpenObject,
        /// The path to call (`/pki/issue/example-dot-com`).
        pub path: String,
        /// An empty answer is not an error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allow_empty_response: Option<bool>,
    }
}

generator! {
    /// STSSessionTokenSpec: AWS STS `GetSessionToken`.
    #[kube(
        kind = "STSSessionToken",
        plural = "stssessiontokens",
        singular = "stssessiontoken",
        doc = "STSSessionToken generates AWS session credentials (STS GetSessionToken)."
    )]
    pub struct STSSessionTokenSpec {
        /// AWS region.
        pub region: String,
        /// `secretRef` (static keys) or `jwt` (IRSA `serviceAccountRef`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth: Option<OpenObject>,
        /// A role to assume first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub role: Option<String>,
        /// `sessionDuration`, `serialNumber`, `tokenCode`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_parameters: Option<OpenObject>,
    }
}

generator! {
    /// ECRAuthorizationTokenSpec: an Amazon ECR registry login.
    #[kube(
        kind = "ECRAuthorizationToken",
        plural = "ecrauthorizationtokens",
        singular = "ecrauthorizationtoken",
        doc = "ECRAuthorizationToken generates an Amazon ECR registry username and password (GetAuthorizationToken)."
    )]
    pub struct ECRAuthorizationTokenSpec {
        // `region`, `auth` and `role` repeat `STSSessionTokenSpec`'s on purpose: field for field
        // as ESO's Go types, each kind's spec readable on its own.
        /// AWS region.
        pub region: String,
        /// `secretRef` (static keys) or `jwt` (IRSA `serviceAccountRef`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth: Option<OpenObject>,
        /// A role to assume first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub role: Option<String>,
        /// `private` (default) or `public` (ECR Public).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scope: Option<String>,
    }
}

generator! {
    /// WebhookSpec: one HTTP request whose JSON answer is the generated data.
    #[kube(
        kind = "Webhook",
        plural = "webhooks",
        singular = "webhook",
        doc = "Webhook calls an HTTP endpoint and returns the members of its JSON answer."
    )]
    pub struct WebhookSpec {
        /// HTTP method (default GET).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub method: Option<String>,
        /// URL (a template over `secrets`).
        pub url: String,
        /// Headers (templates).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub headers: Option<BTreeMap<String, String>>,
        /// Authentication (`ntlm`: refused by hush, naming it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth: Option<OpenObject>,
        /// Body (a template).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub body: Option<String>,
        /// Request timeout (a Go duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<String>,
        /// `jsonPath`: the part of the answer that holds the values.
        pub result: OpenObject,
        /// Secrets exposed to the templates (`name`, `secretRef.name`); each must carry the label
        /// `external-secrets.io/type: webhook`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secrets: Option<Vec<OpenObject>>,
        /// PEM CA bundle (base64).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ca_bundle: Option<String>,
        /// A CA from a Secret or ConfigMap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ca_provider: Option<OpenObject>,
    }
}

/// ClusterGeneratorSpec: a cluster-wide generator of `kind`, configured by the matching member
/// of `generator` (`passwordSpec`, `uuidSpec`, `fakeSpec`, …).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterGenerator",
    plural = "clustergenerators",
    singular = "clustergenerator",
    category = "external-secrets",
    category = "external-secrets-generators",
    doc = "ClusterGenerator represents a cluster-wide generator which can be referenced as part of `generatorRef` fields."
)]
pub struct ClusterGeneratorSpec {
    /// The generator's kind.
    pub kind: String,
    /// Its spec, under `<kind>Spec` (an open object: kinds hush does not implement are reported
    /// by the controller).
    pub generator: OpenObject,
}

/// `generatorRef` of ExternalSecrets and PushSecrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// `generators.external-secrets.io/v1alpha1` (unset: the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Password, UUID, Fake, ClusterGenerator, ….
    #[serde(default)]
    pub kind: String,
    /// The generator's name.
    #[serde(default)]
    pub name: String,
}
