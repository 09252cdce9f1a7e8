//! Reading an ExternalSecret's data: its stores, then `dataFrom` (extract, find, generators,
//! rewrites) and `data` from the providers, decoded and checked as ESO does.

use std::collections::BTreeMap;

use hush_api::external_secrets::{
    ExternalSecret, ExternalSecretDataFromRemoteRef, RemoteRef as ApiRemoteRef, SecretStoreRef,
};
use hush_operator::events::EventType;
use hush_sync::cache::Freshness;
use hush_sync::{FindQuery, RemoteRef, SecretBytes, SecretProvider as _};
use kube::ResourceExt as _;

use super::spec::DeletionPolicy;
use crate::context::{Context, ResolvedStore, namespace_allowed};
use crate::{Error, eso, generators, rewrite};

/// The stores this ExternalSecret reads from, by (kind, name): [`Error::NotOurs`] when one
/// belongs to another controller class.
pub(super) async fn resolve_stores(
    es: &ExternalSecret,
    ctx: &Context,
) -> Result<BTreeMap<(String, String), ResolvedStore>, Error> {
    let ns = es.namespace().unwrap_or_default();
    let mut refs: Vec<SecretStoreRef> = Vec::new();
    if let Some(r) = &es.spec.secret_store_ref {
        refs.push(r.clone());
    }
    for d in &es.spec.data {
        if let Some(r) = d.source_ref.as_ref().and_then(|s| s.store_ref.clone()) {
            refs.push(r);
        }
    }
    for d in &es.spec.data_from {
        if let Some(r) = d.source_ref.as_ref().and_then(|s| s.store_ref.clone()) {
            refs.push(r);
        }
    }
    let mut out = BTreeMap::new();
    for r in refs {
        let kind = store_kind(&r);
        let name = r.name.clone().unwrap_or_default();
        if out.contains_key(&(kind.clone(), name.clone())) {
            continue;
        }
        let store = ctx
            .store(&kind, &ns, &name)
            .await?
            .ok_or_else(|| Error::Store(format!("{kind} {name:?} not found")))?;
        if !store.is_ours(&ctx.config.controller_class) {
            return Err(Error::NotOurs);
        }
        if kind == "ClusterSecretStore" && !namespace_allowed(ctx, &store, &ns).await? {
            return Err(Error::Store(format!(
                "using ClusterSecretStore {name:?} is not allowed from namespace {ns:?}"
            )));
        }
        if ctx.config.flood_gate && !store.ready {
            // ESO's flood gate (assertStoreIsUsable): nothing is fetched through it.
            return Err(Error::Store(format!("{kind} {name:?} is not ready")));
        }
        out.insert((kind, name), store);
    }
    Ok(out)
}

fn store_kind(r: &SecretStoreRef) -> String {
    match r.kind.as_deref() {
        Some("ClusterSecretStore") => "ClusterSecretStore".into(),
        _ => "SecretStore".into(),
    }
}

/// Fetches `dataFrom` then `data` into one map (later wins).
pub(super) async fn fetch_all(
    es: &ExternalSecret,
    ctx: &Context,
    stores: &BTreeMap<(String, String), ResolvedStore>,
    ns: &str,
    deletion: DeletionPolicy,
    fresh: Freshness,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let default_ref = es.spec.secret_store_ref.clone().unwrap_or_default();
    let provider_for = |r: Option<&SecretStoreRef>| {
        let r = r.unwrap_or(&default_ref);
        let key = (store_kind(r), r.name.clone().unwrap_or_default());
        stores
            .get(&key)
            .ok_or_else(|| Error::Store(format!("no store {:?}", key.1)))
    };
    for (i, df) in es.spec.data_from.iter().enumerate() {
        let generator = df
            .source_ref
            .as_ref()
            .and_then(|s| s.generator_ref.as_ref());
        let result = if let Some(g) = generator {
            let field = format!("dataFrom[{i}].sourceRef.generatorRef");
            generators::generate(ctx, ns, g, &field)
                .await
                .map(|m| (m, "Default", "None", "Ignore"))
        } else {
            let store = provider_for(df.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
            let provider = store
                .provider(ctx, Some(ns), fresh)
                .await
                .map_err(Error::Provider)?;
            fetch_data_from(df, &provider).await
        };
        let (map, conversion, decoding, null_policy) = match result {
            Ok(v) => v,
            Err(Error::Provider(e)) if e.is_not_found() && deletion != DeletionPolicy::Retain => {
                missing_event(ctx, es, format!("spec.dataFrom[{i}]")).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        // ESO: rewrite, or the conversion strategy when there is no rewrite.
        let map = if df.rewrite.is_empty() {
            map.into_iter()
                .map(|(k, v)| (eso::convert_key(&k, conversion == "Unicode"), v))
                .collect()
        } else {
            rewrite::rewrite_map(map, &df.rewrite, ctx.render.limits())
                .map_err(|e| prefix_error(&format!("dataFrom[{i}]."), e))?
        };
        for (key, v) in map {
            if key.is_empty() {
                continue;
            }
            if !eso::valid_key(&key) {
                return Err(Error::Spec(format!(
                    "key {key:?} is not a valid Secret key (use conversionStrategy or rewrite)"
                )));
            }
            let value = eso::decode(v.expose().to_vec(), decoding).map_err(Error::Spec)?;
            check_null(&key, &value, null_policy)?;
            out.insert(key, value);
        }
    }
    for (i, d) in es.spec.data.iter().enumerate() {
        let store = provider_for(d.source_ref.as_ref().and_then(|s| s.store_ref.as_ref()))?;
        let provider = store
            .provider(ctx, Some(ns), fresh)
            .await
            .map_err(Error::Provider)?;
        match provider.get(&remote_ref(&d.remote_ref)).await {
            Ok(v) => {
                let decoding = d.remote_ref.decoding_strategy.as_deref().unwrap_or("None");
                let value = eso::decode(v.expose().to_vec(), decoding).map_err(Error::Spec)?;
                check_null(
                    &d.secret_key,
                    &value,
                    d.remote_ref.null_byte_policy.as_deref().unwrap_or("Ignore"),
                )?;
                out.insert(d.secret_key.clone(), value);
            }
            Err(e) if e.is_not_found() && deletion != DeletionPolicy::Retain => {
                let entry = format!("spec.data[{i}] (key={})", d.remote_ref.key);
                missing_event(ctx, es, entry).await;
            }
            Err(e) => return Err(Error::Provider(e)),
        }
    }
    Ok(out)
}

/// ESO's MissingProviderSecret event, one per skipped entry as it is skipped (so it is sent
/// also when a later entry fails).
async fn missing_event(ctx: &Context, es: &ExternalSecret, entry: String) {
    ctx.event(
        false,
        es,
        EventType::Normal,
        "MissingProviderSecret",
        format!("secret does not exist at provider using {entry}"),
    )
    .await;
}

type FetchedMap<'a> = (BTreeMap<String, SecretBytes>, &'a str, &'a str, &'a str);

async fn fetch_data_from<'a>(
    df: &'a ExternalSecretDataFromRemoteRef,
    provider: &hush_sync::cache::CachedProvider,
) -> Result<FetchedMap<'a>, Error> {
    if let Some(x) = &df.extract {
        let map = provider
            .get_map(&remote_ref(x))
            .await
            .map_err(Error::Provider)?;
        return Ok((
            map,
            x.conversion_strategy.as_deref().unwrap_or("Default"),
            x.decoding_strategy.as_deref().unwrap_or("None"),
            x.null_byte_policy.as_deref().unwrap_or("Ignore"),
        ));
    }
    if let Some(f) = &df.find {
        let q = FindQuery {
            path: f.path.clone().unwrap_or_default(),
            name_regexp: f
                .name
                .as_ref()
                .and_then(|n| n.regexp.clone())
                .unwrap_or_default(),
            tags: f.tags.clone().unwrap_or_default(),
        };
        let map = provider.find(&q).await.map_err(Error::Provider)?;
        return Ok((
            map,
            f.conversion_strategy.as_deref().unwrap_or("Default"),
            f.decoding_strategy.as_deref().unwrap_or("None"),
            f.null_byte_policy.as_deref().unwrap_or("Ignore"),
        ));
    }
    Err(Error::Spec(
        "dataFrom entry has neither extract nor find".into(),
    ))
}

fn check_null(key: &str, value: &[u8], policy: &str) -> Result<(), Error> {
    match policy {
        "" | "Ignore" => Ok(()),
        "Fail" if value.contains(&0) => Err(Error::Spec(format!(
            "value of key {key:?} contains a NUL byte (nullBytePolicy=Fail)"
        ))),
        "Fail" => Ok(()),
        other => Err(Error::Spec(format!("unknown nullBytePolicy {other:?}"))),
    }
}

fn remote_ref(r: &ApiRemoteRef) -> RemoteRef {
    RemoteRef {
        key: r.key.clone(),
        property: r.property.clone().unwrap_or_default(),
        version: r.version.clone().unwrap_or_default(),
        metadata: r.metadata_policy.as_deref() == Some("Fetch"),
    }
}

fn prefix_error(prefix: &str, e: Error) -> Error {
    match e {
        Error::Spec(m) => Error::Spec(format!("{prefix}{m}")),
        Error::Template(m) => Error::Template(format!("{prefix}{m}")),
        other => other,
    }
}
