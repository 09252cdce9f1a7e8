//! The one table of sops key kinds: for each master-key type, its sops metadata entry, its
//! `sops` flag, its `.sops.yaml` names, its Flux key-directory files and how a key service is
//! built for an entry. `hush sops`, the render plugin, KSOPS and the Flux key directory all read
//! [`KINDS`]; adding a key service is its module in this crate plus one row here.

use std::sync::Arc;

pub use crate::sources::{EntryFields, FluxFile, FluxName, KeySources, YamlMaps};
use crate::{KeyError, KeyService};

/// Builds the service for a metadata entry with what `sources` offers; `Ok(None)` when the
/// sources rule this kind out (the render without a PGP key file).
pub type BuildService =
    fn(&dyn EntryFields, &KeySources) -> Result<Option<Arc<dyn KeyService>>, KeyError>;

/// Loads one Flux key-directory file into `sources`.
pub type LoadFluxFile = fn(&mut KeySources, &FluxFile<'_>) -> Result<(), KeyError>;

/// One sops key kind.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct KeyKind {
    /// The sops metadata list name, also [`KeyService::type_id`] (`age`, `hc_vault`).
    pub type_id: &'static str,
    /// What users call it in messages ("AWS KMS").
    pub name: &'static str,
    /// The `sops` flag (`--age`); `None` when sops has none.
    pub flag: Option<&'static str>,
    /// The environment variable of that flag.
    pub env: Option<&'static str>,
    /// The `.sops.yaml` creation-rule key of a comma-separated list of ids (`hc_vault_transit_uri`).
    pub rule_key: &'static str,
    /// The `key_groups` key when it differs from `rule_key` (`hc_vault`).
    pub group_key: Option<&'static str>,
    /// Checks an id given on a flag; `Err` is sops' message (`region:key-uuid` for hckms).
    pub check_id: fn(&str) -> Result<(), String>,
    /// The metadata fields of a key given by its id on a flag or in `.sops.yaml`.
    pub fields_from_id: fn(&str) -> Vec<(&'static str, String)>,
    /// The key id hush-keys services report for a metadata entry (recipient, ARN, URL).
    pub key_id: fn(&dyn EntryFields) -> String,
    /// Flux kustomize-controller's key-directory files for this kind.
    pub flux_files: &'static [FluxName],
    /// Loads those files; `None` when this build cannot use them (the render then names them
    /// when a file needs a key it does not have).
    pub load_flux_file: Option<LoadFluxFile>,
    /// Builds a service for an entry; `None` when this build has no key service for the kind.
    pub build: Option<BuildService>,
    /// Whether an entry's service can unwrap. age entries carry only a recipient: the
    /// identities in [`KeySources::unwrappers`] open them.
    pub entry_unwraps: bool,
}

impl KeyKind {
    /// Whether `file_name` is one of this kind's Flux key-directory files.
    pub fn is_flux_file(&self, file_name: &str) -> bool {
        self.flux_files.iter().any(|f| f.matches(file_name))
    }
}

/// The kind of `type_id`, if hush knows it.
pub fn kind(type_id: &str) -> Option<&'static KeyKind> {
    KINDS.iter().find(|k| k.type_id == type_id)
}

/// The kind whose Flux key-directory files include `file_name`.
pub fn flux_kind(file_name: &str) -> Option<&'static KeyKind> {
    KINDS.iter().find(|k| k.is_flux_file(file_name))
}

/// The key service for a metadata entry of `type_id`; `Ok(None)` when this build has none.
pub fn service_for(
    type_id: &str,
    entry: &dyn EntryFields,
    sources: &KeySources,
) -> Result<Option<Arc<dyn KeyService>>, KeyError> {
    match kind(type_id).and_then(|k| k.build) {
        Some(build) => build(entry, sources),
        None => Ok(None),
    }
}

/// The names of the kinds this build has key services for, for messages ("age, pgp, …").
pub fn built_kinds() -> impl Iterator<Item = &'static KeyKind> {
    KINDS.iter().filter(|k| k.build.is_some())
}

fn any_id(_: &str) -> Result<(), String> {
    Ok(())
}

/// A HuaweiCloud KMS key id as sops checks it: `region:key-uuid`, both non-empty.
fn hckms_id(id: &str) -> Result<(), String> {
    let Some((region, uuid)) = id.split_once(':') else {
        return Err(format!(
            "invalid key ID format: expected 'region:key-uuid', got {id:?}"
        ));
    };
    if region.trim().is_empty() {
        return Err(format!("region cannot be empty in key ID: {id:?}"));
    }
    if uuid.trim().is_empty() {
        return Err(format!("key UUID cannot be empty in key ID: {id:?}"));
    }
    Ok(())
}

fn id_field(name: &'static str) -> impl Fn(&str) -> Vec<(&'static str, String)> {
    move |id| vec![(name, id.trim().to_owned())]
}

/// Every sops key kind hush knows, in the order sops lists them in `.sops.yaml`.
pub static KINDS: &[KeyKind] = &[
    KeyKind {
        type_id: "age",
        name: "age",
        flag: Some("age"),
        env: Some("SOPS_AGE_RECIPIENTS"),
        rule_key: "age",
        group_key: None,
        check_id: any_id,
        fields_from_id: |id| id_field("recipient")(id),
        key_id: |e| e.field("recipient").to_owned(),
        flux_files: &[FluxName::Suffix(".agekey")],
        #[cfg(feature = "age")]
        load_flux_file: Some(crate::age::load_flux_file),
        #[cfg(not(feature = "age"))]
        load_flux_file: None,
        #[cfg(feature = "age")]
        build: Some(crate::age::build),
        #[cfg(not(feature = "age"))]
        build: None,
        entry_unwraps: false,
    },
    KeyKind {
        type_id: "pgp",
        name: "PGP",
        flag: Some("pgp"),
        env: Some("SOPS_PGP_FP"),
        rule_key: "pgp",
        group_key: None,
        check_id: any_id,
        fields_from_id: |id| vec![("fp", id.replace(' ', ""))],
        key_id: |e| e.field("fp").to_owned(),
        flux_files: &[FluxName::Suffix(".asc")],
        #[cfg(feature = "pgp")]
        load_flux_file: Some(crate::pgp::load_flux_file),
        #[cfg(not(feature = "pgp"))]
        load_flux_file: None,
        #[cfg(feature = "pgp")]
        build: Some(crate::pgp::build),
        #[cfg(not(feature = "pgp"))]
        build: None,
        entry_unwraps: true,
    },
    KeyKind {
        type_id: "kms",
        name: "AWS KMS",
        flag: Some("kms"),
        env: Some("SOPS_KMS_ARN"),
        rule_key: "kms",
        group_key: None,
        check_id: any_id,
        fields_from_id: |id| {
            // `arn` or `arn+role-arn`, as sops' CLI and config accept.
            let (arn, role) = id.split_once('+').unwrap_or((id, ""));
            let mut fields = vec![("arn", arn.trim().to_owned())];
            if !role.trim().is_empty() {
                fields.push(("role", role.trim().to_owned()));
            }
            // sops writes the profile even when empty; `--aws-profile` fills it.
            fields.push(("aws_profile", String::new()));
            fields
        },
        key_id: |e| e.field("arn").to_owned(),
        flux_files: &[FluxName::Exact("sops.aws-kms")],
        #[cfg(feature = "kms")]
        load_flux_file: Some(crate::kms::load_flux_file),
        #[cfg(not(feature = "kms"))]
        load_flux_file: None,
        #[cfg(feature = "kms")]
        build: Some(crate::kms::build),
        #[cfg(not(feature = "kms"))]
        build: None,
        entry_unwraps: true,
    },
    KeyKind {
        type_id: "hc_vault",
        name: "Vault transit",
        flag: Some("hc-vault-transit"),
        env: Some("SOPS_VAULT_URIS"),
        rule_key: "hc_vault_transit_uri",
        group_key: Some("hc_vault"),
        check_id: any_id,
        fields_from_id: |uri| {
            // `https://host:8200/v1/<engine path>/keys/<name>`.
            let uri = uri.trim();
            let (addr, rest) = uri.split_once("/v1/").unwrap_or((uri, ""));
            let (engine, name) = rest.rsplit_once("/keys/").unwrap_or((rest, ""));
            vec![
                ("vault_address", addr.to_owned()),
                ("engine_path", engine.to_owned()),
                ("key_name", name.to_owned()),
            ]
        },
        key_id: |e| {
            format!(
                "{}/v1/{}/keys/{}",
                e.field("vault_address").trim_end_matches('/'),
                e.field("engine_path").trim_matches('/'),
                e.field("key_name")
            )
        },
        flux_files: &[FluxName::Exact("sops.vault-token")],
        #[cfg(feature = "hc-vault")]
        load_flux_file: Some(crate::vault_transit::load_flux_file),
        #[cfg(not(feature = "hc-vault"))]
        load_flux_file: None,
        #[cfg(feature = "hc-vault")]
        build: Some(crate::vault_transit::build),
        #[cfg(not(feature = "hc-vault"))]
        build: None,
        entry_unwraps: true,
    },
    KeyKind {
        type_id: "gcp_kms",
        name: "GCP KMS",
        flag: Some("gcp-kms"),
        env: Some("SOPS_GCP_KMS_IDS"),
        rule_key: "gcp_kms",
        group_key: None,
        check_id: any_id,
        fields_from_id: |id| id_field("resource_id")(id),
        key_id: |e| e.field("resource_id").to_owned(),
        flux_files: &[FluxName::Exact("sops.gcp-kms")],
        #[cfg(feature = "gcp-kms")]
        load_flux_file: Some(crate::gcp_kms::load_flux_file),
        #[cfg(not(feature = "gcp-kms"))]
        load_flux_file: None,
        #[cfg(feature = "gcp-kms")]
        build: Some(crate::gcp_kms::build),
        #[cfg(not(feature = "gcp-kms"))]
        build: None,
        entry_unwraps: true,
    },
    KeyKind {
        type_id: "hckms",
        name: "HuaweiCloud KMS",
        flag: Some("hckms"),
        env: Some("SOPS_HUAWEICLOUD_KMS_IDS"),
        rule_key: "hckms",
        group_key: None,
        check_id: hckms_id,
        fields_from_id: |id| id_field("key_id")(id),
        key_id: |e| e.field("key_id").to_owned(),
        flux_files: &[],
        load_flux_file: None,
        build: None,
        entry_unwraps: true,
    },
    KeyKind {
        type_id: "azure_kv",
        name: "Azure Key Vault",
        flag: Some("azure-kv"),
        env: Some("SOPS_AZURE_KEYVAULT_URLS"),
        rule_key: "azure_keyvault",
        group_key: None,
        check_id: any_id,
        fields_from_id: |url| {
            // `https://<vault>.vault.azure.net/keys/<name>/<version>`.
            let url = url.trim();
            let (vault, rest) = url.split_once("/keys/").unwrap_or((url, ""));
            let (name, version) = rest.split_once('/').unwrap_or((rest, ""));
            vec![
                ("vault_url", vault.to_owned()),
                ("name", name.to_owned()),
                ("version", version.to_owned()),
            ]
        },
        key_id: |e| {
            format!(
                "{}/keys/{}/{}",
                e.field("vault_url").trim_end_matches('/'),
                e.field("name"),
                e.field("version")
            )
        },
        flux_files: &[FluxName::Exact("sops.azure-kv")],
        #[cfg(feature = "azure-kv")]
        load_flux_file: Some(crate::azure_kv::load_flux_file),
        #[cfg(not(feature = "azure-kv"))]
        load_flux_file: None,
        #[cfg(feature = "azure-kv")]
        build: Some(crate::azure_kv::build),
        #[cfg(not(feature = "azure-kv"))]
        build: None,
        entry_unwraps: true,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn type_ids_and_flux_files_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KINDS {
            assert!(seen.insert(k.type_id), "type id {} twice", k.type_id);
            for f in k.flux_files {
                let name = f.pattern().replace('*', "x");
                assert_eq!(flux_kind(&name).map(|k| k.type_id), Some(k.type_id));
            }
        }
    }

    #[test]
    fn vault_fields_from_a_uri_give_back_its_key_id() {
        struct Fields(Vec<(&'static str, String)>);
        impl EntryFields for Fields {
            fn field(&self, name: &str) -> &str {
                self.0
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map_or("", |(_, v)| v)
            }
            fn map(&self, _: &str) -> BTreeMap<String, String> {
                BTreeMap::new()
            }
        }
        let vault = kind("hc_vault").unwrap();
        let uri = "https://vault:8200/v1/sops/transit/keys/app";
        assert_eq!((vault.key_id)(&Fields((vault.fields_from_id)(uri))), uri);
        let kms = kind("kms").unwrap();
        let fields =
            (kms.fields_from_id)(" arn:aws:kms:eu-west-1:1:key/k + arn:aws:iam::1:role/r ");
        assert_eq!(fields[0].1, "arn:aws:kms:eu-west-1:1:key/k");
        assert_eq!(fields[1], ("role", "arn:aws:iam::1:role/r".to_owned()));
    }
}
