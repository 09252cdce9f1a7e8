//! Random ExternalSecrets, the same on both sides, through the real ESO (v0.16.2) and hush (harness:
//! `eso_peer/mod.rs`).
//!
//! Fields and their enum values come from ESO's own CRD schema (the bundle next to
//! `HUSH_PEER_ESO`): the generator only writes paths that schema has, and picks enum values from
//! it. Free-form strings (keys, properties, templates, regexps) come from small pools over the
//! provider data this test writes. Combinations ESO's validating webhook refuses (it refuses them
//! at admission; hush's controller answers with `Ready=False`, docs/compatibility.md) are not
//! generated.
//!
//! Reproducible: `HUSH_DIFF_SEED` (default below) and `HUSH_DIFF_COUNT` cases (default 8, each
//! with up to 4 ExternalSecrets); the seed and every manifest of a failing case are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eso_peer;
mod external_harness;

use std::time::Duration;

use anyhow::{Context as _, Result};
use eso_peer::{
    Pair, Peer, PeerOptions, Wait, aws_credentials_secret, aws_secret, vault_put,
    vault_token_secret,
};
use external_harness::env;
use futures::StreamExt as _;
use serde_json::{Value, json};

const ES: &str = "external-secrets.io/v1";
const DEFAULT_SEED: u64 = 0x005e_ede5_0216;

/// splitmix64: a small, seedable generator (the sequence only depends on the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// ESO's ExternalSecret v1 schema: which paths exist and their enum values.
struct Schema(Value);

impl Schema {
    fn load() -> Result<Self> {
        let text = std::fs::read_to_string(eso_peer::eso_crds()?)?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc)?;
            if v["metadata"]["name"] == "externalsecrets.external-secrets.io" {
                let version = v["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["name"] == "v1")
                    .context("no v1 in ESO's ExternalSecret CRD")?;
                return Ok(Self(version["schema"]["openAPIV3Schema"].clone()));
            }
        }
        anyhow::bail!("no ExternalSecret CRD in ESO's bundle")
    }

    /// The schema node at a dotted path (`[]` steps into array items).
    fn node(&self, path: &str) -> Result<&Value> {
        let mut node = &self.0;
        for part in path.split('.') {
            node = if part == "[]" {
                &node["items"]
            } else {
                &node["properties"][part]
            };
            anyhow::ensure!(!node.is_null(), "ESO's schema has no {path}");
        }
        Ok(node)
    }

    /// `path`'s enum values (the path must exist and have an enum).
    fn enum_values(&self, path: &str) -> Result<Vec<String>> {
        let values: Vec<String> = self.node(path)?["enum"]
            .as_array()
            .with_context(|| format!("{path} has no enum in ESO's schema"))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        Ok(values)
    }
}

/// Builds objects while checking every path against ESO's schema.
struct Gen<'s> {
    schema: &'s Schema,
    rng: Rng,
}

impl Gen<'_> {
    /// Sets `path` (relative to the ExternalSecret, `[]` for array items) in `obj` to `value`,
    /// after checking ESO's schema has it.
    fn set(&self, obj: &mut Value, schema_path: &str, key: &str, value: Value) -> Result<()> {
        self.schema.node(&format!("{schema_path}.{key}"))?;
        obj[key] = value;
        Ok(())
    }

    /// Sometimes sets `key` to one of the schema's enum values.
    fn maybe_enum(
        &mut self,
        obj: &mut Value,
        schema_path: &str,
        key: &str,
        percent: u64,
    ) -> Result<()> {
        if self.rng.chance(percent) {
            let values = self.schema.enum_values(&format!("{schema_path}.{key}"))?;
            let v = self.rng.pick(&values).clone();
            self.set(obj, schema_path, key, json!(v))?;
        }
        Ok(())
    }
}

/// Provider data of the run (under `prefix`): Vault KV v2 and Secrets Manager hold the same.
const KEYS: &[&str] = &["a", "b", "dir/c", "none"];
const PROPERTIES: &[&str] = &[
    "user", "password", "port", "nested", "nested.k", "b64", "absent",
];

async fn provider_data(prefix: &str) -> Result<()> {
    let a = json!({"user": "alice", "password": "pw-a", "port": 5432, "nested": {"k": "v"}, "b64": "aGVsbG8="});
    vault_put(&format!("{prefix}/a"), json!({"user": "old"})).await?;
    vault_put(&format!("{prefix}/a"), a.clone()).await?;
    vault_put(
        &format!("{prefix}/b"),
        json!({"password": "pw-b", "json": "{\"x\":1}"}),
    )
    .await?;
    vault_put(
        &format!("{prefix}/dir/c"),
        json!({"value": "c", "user": "carol"}),
    )
    .await?;
    aws_secret(&format!("{prefix}/a"), &a.to_string()).await?;
    aws_secret(
        &format!("{prefix}/b"),
        &json!({"password": "pw-b"}).to_string(),
    )
    .await?;
    aws_secret(&format!("{prefix}/dir/c"), "plain text").await?;
    Ok(())
}

/// One random ExternalSecret named `name`, or `None` when ESO's webhook would refuse it.
fn external_secret(g: &mut Gen<'_>, name: &str, prefix: &str) -> Result<Option<Value>> {
    let spec_path = "spec";
    let mut spec = json!({});
    let aws = g.rng.chance(30);
    let store = if aws { "aws-sm" } else { "vault-backend" };
    g.set(
        &mut spec,
        spec_path,
        "secretStoreRef",
        json!({"name": store, "kind": "SecretStore"}),
    )?;
    if g.rng.chance(40) {
        let interval = *g.rng.pick(&["1h", "0", "2s"]);
        g.set(&mut spec, spec_path, "refreshInterval", json!(interval))?;
    }
    g.maybe_enum(&mut spec, spec_path, "refreshPolicy", 25)?;

    // target
    let target_path = "spec.target";
    let mut target = json!({});
    g.maybe_enum(&mut target, target_path, "creationPolicy", 60)?;
    g.maybe_enum(&mut target, target_path, "deletionPolicy", 50)?;
    if g.rng.chance(15) {
        g.set(&mut target, target_path, "immutable", json!(true))?;
    }
    let merge = target["creationPolicy"] == "Merge";
    if merge || g.rng.chance(40) {
        // Merge targets exist beforehand (see `case`).
        let t = if merge {
            format!("existing-{name}")
        } else {
            format!("{name}-target")
        };
        g.set(&mut target, target_path, "name", json!(t))?;
    }
    if g.rng.chance(45) {
        let tp = "spec.target.template";
        let mut template = json!({});
        g.maybe_enum(&mut template, tp, "engineVersion", 80)?;
        g.maybe_enum(&mut template, tp, "mergePolicy", 50)?;
        if g.rng.chance(30) {
            let t = *g
                .rng
                .pick(&["Opaque", "example.com/custom", "kubernetes.io/basic-auth"]);
            g.set(&mut template, tp, "type", json!(t))?;
        }
        if g.rng.chance(50) {
            let mut metadata = json!({});
            let mp = "spec.target.template.metadata";
            g.set(
                &mut metadata,
                mp,
                "labels",
                json!({"static": "l", "tpl": "{{ \"x\" | upper }}"}),
            )?;
            if g.rng.chance(50) {
                g.set(&mut metadata, mp, "annotations", json!({"note": "n"}))?;
            }
            g.set(&mut template, tp, "metadata", metadata)?;
        }
        let templates = [
            "{{ .user }}",
            "{{ .password | b64enc }}",
            "{{ .missing }}",
            "{{ .user | default \"anon\" | upper }}-{{ len . }}",
            "static",
            "{{ range $k, $v := . }}{{ $k }};{{ end }}",
        ];
        if g.rng.chance(70) {
            let mut data = serde_json::Map::new();
            for i in 0..=g.rng.below(2) {
                data.insert(format!("tpl{i}"), json!(g.rng.pick(&templates)));
            }
            g.set(&mut template, tp, "data", Value::Object(data))?;
        }
        g.set(&mut target, target_path, "template", template)?;
    }
    if target.as_object().is_some_and(|o| !o.is_empty()) {
        g.set(&mut spec, spec_path, "target", target.clone())?;
    }

    // data
    let dp = "spec.data.[]";
    let mut data = Vec::new();
    for _ in 0..g.rng.below(3) {
        let mut entry = json!({});
        let secret_key = *g.rng.pick(&["user", "password", "port", "whole", "k.1"]);
        g.set(&mut entry, dp, "secretKey", json!(secret_key))?;
        let rp = "spec.data.[].remoteRef";
        let mut r = json!({});
        let key = format!("{prefix}/{}", g.rng.pick(KEYS));
        g.set(&mut r, rp, "key", json!(key))?;
        if g.rng.chance(70) {
            let property = *g.rng.pick(PROPERTIES);
            g.set(&mut r, rp, "property", json!(property))?;
        }
        if !aws && g.rng.chance(15) {
            let version = *g.rng.pick(&["1", "2"]);
            g.set(&mut r, rp, "version", json!(version))?;
        }
        g.maybe_enum(&mut r, rp, "decodingStrategy", 20)?;
        g.maybe_enum(&mut r, rp, "conversionStrategy", 10)?;
        g.set(&mut entry, dp, "remoteRef", r)?;
        data.push(entry);
    }
    // dataFrom
    let fp = "spec.dataFrom.[]";
    let mut data_from = Vec::new();
    for _ in 0..g.rng.below(3) {
        let mut entry = json!({});
        if g.rng.chance(60) {
            let ep = "spec.dataFrom.[].extract";
            let mut e = json!({});
            let key = format!("{prefix}/{}", g.rng.pick(KEYS));
            g.set(&mut e, ep, "key", json!(key))?;
            if g.rng.chance(20) {
                g.set(&mut e, ep, "property", json!("nested"))?;
            }
            g.maybe_enum(&mut e, ep, "decodingStrategy", 20)?;
            g.maybe_enum(&mut e, ep, "conversionStrategy", 20)?;
            g.set(&mut entry, fp, "extract", e)?;
        } else {
            let findp = "spec.dataFrom.[].find";
            let mut f = json!({});
            if aws {
                g.set(
                    &mut f,
                    findp,
                    "name",
                    json!({"regexp": format!("^{prefix}/(a|dir/.*)$")}),
                )?;
            } else {
                g.set(&mut f, findp, "path", json!(prefix))?;
                let regexp = *g.rng.pick(&[".*", "^a$", "dir"]);
                g.set(&mut f, findp, "name", json!({"regexp": regexp}))?;
            }
            g.maybe_enum(&mut f, findp, "conversionStrategy", 40)?;
            g.maybe_enum(&mut f, findp, "decodingStrategy", 15)?;
            g.set(&mut entry, fp, "find", f)?;
        }
        if g.rng.chance(35) {
            let rw = if g.rng.chance(60) {
                // Rewrites that keep keys apart: when two keys collide, ESO keeps whichever Go's
                // random map order writes last (docs/compatibility.md).
                let (source, target) = *g.rng.pick(&[
                    ("^.*/", ""),
                    ("(.*)", "x_$1"),
                    ("[^a-z]", "-"),
                    ("^a$", "z"),
                ]);
                json!({"regexp": {"source": source, "target": target}})
            } else {
                json!({"transform": {"template": g.rng.pick(&["{{ .value | lower }}", "p-{{ .value }}"])}})
            };
            g.schema.node("spec.dataFrom.[].rewrite.[].regexp")?;
            g.schema.node("spec.dataFrom.[].rewrite.[].transform")?;
            g.set(&mut entry, fp, "rewrite", json!([rw]))?;
        }
        data_from.push(entry);
    }
    if !data.is_empty() {
        g.set(&mut spec, spec_path, "data", json!(data))?;
    }
    if !data_from.is_empty() {
        g.set(&mut spec, spec_path, "dataFrom", json!(data_from))?;
    }
    let es = json!({"apiVersion": ES, "kind": "ExternalSecret", "metadata": {"name": name}, "spec": spec});
    Ok((!eso_webhook_refuses(&es)).then_some(es))
}

/// ESO v0.16.2's validating webhook rules (`externalsecret_validator.go`): it refuses these at
/// admission, so a user never sees its controller handle them.
fn eso_webhook_refuses(es: &Value) -> bool {
    let spec = &es["spec"];
    let creation = spec["target"]["creationPolicy"].as_str().unwrap_or("Owner");
    let deletion = spec["target"]["deletionPolicy"]
        .as_str()
        .unwrap_or("Retain");
    let data = spec["data"].as_array().map_or(0, Vec::len);
    let data_from = spec["dataFrom"].as_array().map_or(0, Vec::len);
    let mut keys = std::collections::BTreeSet::new();
    let duplicate = spec["data"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| !keys.insert(d["secretKey"].to_string()));
    (deletion == "Delete" && matches!(creation, "Merge" | "None"))
        || (deletion == "Merge" && creation == "None")
        || (data == 0 && data_from == 0)
        || (deletion == "Retain" && duplicate)
}

async fn case(p: &mut Pair<'_>, prefix: &str, manifests: Vec<Value>, rotate: bool) -> Result<()> {
    let mut all = vec![
        vault_token_secret(),
        aws_credentials_secret(),
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "vault-backend"},
            "spec": {"provider": {"vault": {"server": env("HUSH_VAULT_ADDR"), "path": "secret",
                "version": "v2", "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}}}),
        json!({"apiVersion": ES, "kind": "SecretStore", "metadata": {"name": "aws-sm"},
            "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
                "auth": {"secretRef": {
                    "accessKeyIDSecretRef": {"name": "awssm-secret", "key": "access-key"},
                    "secretAccessKeySecretRef": {"name": "awssm-secret", "key": "secret-access-key"}}}}}}}),
    ];
    for m in &manifests {
        if let Some(t) = m["spec"]["target"]["name"]
            .as_str()
            .filter(|t| t.starts_with("existing-"))
        {
            all.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": t, "labels": {"pre": "existing"}},
                "stringData": {"foreign": "kept", "user": "stale"}}));
        }
    }
    all.extend(manifests.iter().cloned());
    p.apply(all).await?;
    p.compare("synced", Wait::Settled).await?;
    if rotate {
        vault_put(&format!("{prefix}/a"), json!({"user": "alice2", "password": "pw-a2", "port": 1, "nested": {"k": "w"}, "b64": "d29ybGQ="})).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        p.compare("rotated", Wait::Settled).await?;
    }
    for m in &manifests {
        p.delete(
            ES,
            "ExternalSecret",
            m["metadata"]["name"].as_str().unwrap_or_default(),
        )
        .await?;
    }
    p.compare("deleted", Wait::Settled).await
}

#[tokio::test]
#[ignore = "needs scripts/kube-testenv.sh"]
async fn eso_peer_random_external_secrets_agree() -> Result<()> {
    let seed = std::env::var("HUSH_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let count: usize = std::env::var("HUSH_DIFF_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    println!("random ExternalSecrets: HUSH_DIFF_SEED={seed} HUSH_DIFF_COUNT={count}");
    let schema = Schema::load()?;
    let mut g = Gen {
        schema: &schema,
        rng: Rng(seed),
    };
    let peer = Peer::start(PeerOptions::default()).await?;
    let run = format!("random-{}", eso_peer::suffix());
    let mut cases = Vec::new();
    for i in 0..count {
        // Each case its own provider data: a rotation must not reach another case's refresh.
        let prefix = format!("{run}/c{i}");
        provider_data(&prefix).await?;
        let mut manifests = Vec::new();
        for j in 0..=g.rng.below(4) {
            if let Some(es) = external_secret(&mut g, &format!("es{j}"), &prefix)? {
                manifests.push(es);
            }
        }
        let rotate = g.rng.chance(30);
        println!(
            "case random-{i} (rotate: {rotate}): {}",
            serde_json::to_string(&manifests).unwrap_or_default()
        );
        cases.push((i, prefix, manifests, rotate));
    }
    let results: Vec<Result<()>> = futures::stream::iter(cases)
        .map(|(i, prefix, manifests, rotate)| {
            let peer = &peer;
            async move {
                let mut pair = peer.case(&format!("random-{i}")).await?;
                pair.strict = false;
                case(&mut pair, &prefix, manifests, rotate)
                    .await
                    .map_err(|e| anyhow::anyhow!("case random-{i} (seed {seed}): {e:#}"))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    peer.finish_cases(results)
        .await
        .map_err(|e| anyhow::anyhow!("seed {seed}: {e:#}"))
}
