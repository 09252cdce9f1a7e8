//! External Secrets Operator's generators (`generators.external-secrets.io/v1alpha1`) that hush
//! implements: `Password`, `UUID`, `Fake` and `ClusterGenerator` (wrapping one of them), field
//! for field as ESO (`ESO:apis/generators/v1alpha1/types_*.go`). No server-side defaults (the
//! controller applies ESO's), as for the other kinds.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::external_secrets::OpenObject;

/// API group.
pub const GROUP: &str = "generators.external-secrets.io";

/// PasswordSpec controls the behavior of the password generator.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Password",
    plural = "passwords",
    singular = "password",
    category = "external-secrets",
    category = "external-secrets-generators",
    namespaced,
    doc = "Password generates a random password based on the configuration parameters in spec."
)]
#[serde(rename_all = "camelCase")]
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

/// UUIDSpec: no settings.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "UUID",
    plural = "uuids",
    singular = "uuid",
    category = "external-secrets",
    category = "external-secrets-generators",
    namespaced,
    doc = "UUID generates a version 4 UUID (e56657e3-2ea6-4ca5-a7e5-5c7f8d2b1a6e)."
)]
pub struct UUIDSpec {}

/// FakeSpec: the data to return.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "generators.external-secrets.io",
    version = "v1alpha1",
    kind = "Fake",
    plural = "fakes",
    singular = "fake",
    category = "external-secrets",
    category = "external-secrets-generators",
    namespaced,
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
