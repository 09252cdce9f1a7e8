//! `generatorRef` resolution (ESO's `resolvers.GeneratorRef`): the generator object (a
//! namespaced `Password`, `UUID`, `Fake`, … of the referring object's namespace, or a
//! cluster-scoped `ClusterGenerator` wrapping one) read live, then its kind's
//! `hush_sync::generators::Generator` run on its spec. Values are new on every call: ESO
//! regenerates on every refresh (`refreshInterval: 0`: once).

use std::collections::BTreeMap;

use hush_api::external_secrets::OpenObject;
use hush_api::generators::{ClusterGenerator, GROUP, GeneratorRef};
use hush_sync::{ProviderError, SecretBytes};
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::Error;
use crate::context::Context;
use crate::credentials::KubeCredentials;

const VERSION: &str = "v1alpha1";

/// Runs the generator `r` names (`field` is where the reference is, for errors).
pub(crate) async fn generate(
    ctx: &Context,
    namespace: &str,
    r: &OpenObject,
    field: &str,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let r: GeneratorRef = serde_json::from_value(Value::Object(r.0.clone()))
        .map_err(|e| Error::Spec(format!("{field}: not a generatorRef: {e}")))?;
    if let Some(v) = r.api_version.as_deref().filter(|v| !v.is_empty())
        && v != format!("{GROUP}/{VERSION}")
    {
        return Err(Error::Spec(format!(
            "{field}.apiVersion {v:?} (hush implements {GROUP}/{VERSION})"
        )));
    }
    if r.name.is_empty() {
        return Err(Error::Spec(format!("{field}.name is required")));
    }
    let cluster = r.kind == "ClusterGenerator";
    let (kind, spec) = if cluster {
        cluster_generator(ctx, &r.name, field).await?
    } else {
        (
            r.kind.clone(),
            namespaced_spec(ctx, namespace, &r, field).await?,
        )
    };
    let generator = hush_sync::generators::select(&ctx.generators, &kind)
        .map_err(|e| Error::Spec(format!("{field}: {e}")))?;
    if let Some(class) = spec.get("controller").and_then(Value::as_str)
        && !class.is_empty()
        && class != ctx.config.controller_class
    {
        return Err(Error::NotOurs);
    }
    let creds = KubeCredentials {
        client: ctx.client.clone(),
        token_file: ctx.config.controller_token_file.clone(),
    };
    // ESO resolves a generator's credential references in the referring object's namespace.
    // Only a ClusterGenerator (a cluster admin's) may use the controller's own identity.
    let mut scope = hush_sync::StoreScope::new("SecretStore", &r.name, Some(namespace.to_owned()));
    scope.controller_identity = cluster;
    generator
        .generate(&spec, &scope, &creds)
        .await
        .map_err(|e| Error::Provider(prefixed(e, &format!("{kind} {:?}", r.name))))
}

/// The spec of generator `r` in `namespace`, read live (a missing one is an error).
async fn namespaced_spec(
    ctx: &Context,
    namespace: &str,
    r: &GeneratorRef,
    field: &str,
) -> Result<Value, Error> {
    // Only kinds hush implements are read: the kind is a tenant's input and names the resource.
    hush_sync::generators::select(&ctx.generators, &r.kind)
        .map_err(|e| Error::Spec(format!("{field}: {e}")))?;
    let gvk = GroupVersionKind::gvk(GROUP, VERSION, &r.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", r.kind.to_lowercase()));
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let obj = api
        .get_opt(&r.name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| {
            Error::Spec(format!(
                "{field}: {} {namespace}/{} not found",
                r.kind, r.name
            ))
        })?;
    Ok(obj.data.get("spec").cloned().unwrap_or(Value::Null))
}

/// A ClusterGenerator's kind and the spec under its kind's member of `spec.generator`.
async fn cluster_generator(
    ctx: &Context,
    name: &str,
    field: &str,
) -> Result<(String, Value), Error> {
    let cg = Api::<ClusterGenerator>::all(ctx.client.clone())
        .get_opt(name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| Error::Spec(format!("{field}: ClusterGenerator {name:?} not found")))?;
    let kind = cg.spec.kind.clone();
    let generator = hush_sync::generators::select(&ctx.generators, &kind)
        .map_err(|e| Error::Spec(format!("ClusterGenerator {name:?}: spec.kind: {e}")))?;
    let key = generator.cluster_spec_key();
    let set: Vec<&String> = cg
        .spec
        .generator
        .0
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k)
        .collect();
    if set.len() != 1 || set[0] != key {
        return Err(Error::Spec(format!(
            "ClusterGenerator {name:?}: spec.generator must set exactly {key} for kind {kind}"
        )));
    }
    Ok((kind, cg.spec.generator.0[key].clone()))
}

fn prefixed(e: ProviderError, prefix: &str) -> ProviderError {
    match e {
        ProviderError::Invalid(m) => ProviderError::Invalid(format!("{prefix}: {m}")),
        ProviderError::Transient(m) => ProviderError::Transient(format!("{prefix}: {m}")),
        other => other,
    }
}
