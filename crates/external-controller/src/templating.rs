//! `target.template` as ESO applies it (`ApplyTemplate`): `type`, the raw data (`mergePolicy:
//! Merge`, or no data templates at all), `templateFrom` in order (ConfigMap items, Secret items,
//! literal; `templateAs: Values | KeysAndValues`; `target: Data | Annotations | Labels`;
//! `valuesDecodingStrategy`), then `data` (wins), then the label and annotation templates.
//! Rendering is hush-template's ESO preset. Errors name the object, key and target, never values.

use std::collections::BTreeMap;

use hush_api::external_secrets::{ExternalSecretTemplate, TemplateFrom};
use hush_sync::SecretBytes;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, ResourceExt};

use crate::{Error, eso};

/// The ConfigMaps and Secrets named by `templateFrom`, read once per sync (live, as ESO).
#[derive(Default)]
pub struct Sources {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<String, BTreeMap<String, SecretBytes>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("config_maps", &self.config_maps.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Reads the sources of `template.templateFrom` from `namespace`. A missing object is an error
/// (retried: it may be created later).
pub async fn fetch_sources(
    client: &Client,
    namespace: &str,
    template: &ExternalSecretTemplate,
) -> Result<Sources, Error> {
    let mut out = Sources::default();
    for (i, t) in template.template_from.iter().enumerate() {
        if let Some(cm) = &t.config_map
            && !out.config_maps.contains_key(&cm.name)
        {
            let obj = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(&cm.name)
                .await
                .map_err(Error::Kube)?
                .ok_or_else(|| {
                    Error::Spec(format!(
                        "templateFrom[{i}]: ConfigMap {namespace}/{} not found",
                        cm.name
                    ))
                })?;
            out.config_maps
                .insert(cm.name.clone(), obj.data.unwrap_or_default());
        }
        if let Some(s) = &t.secret
            && !out.secrets.contains_key(&s.name)
        {
            let obj = Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(&s.name)
                .await
                .map_err(Error::Kube)?
                .ok_or_else(|| {
                    Error::Spec(format!(
                        "templateFrom[{i}]: Secret {namespace}/{} not found",
                        s.name
                    ))
                })?;
            let name = obj.name_any();
            let data = obj
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, SecretBytes::new(v.0)))
                .collect();
            out.secrets.insert(name, data);
        }
    }
    Ok(out)
}

/// What a template produces for the Secret.
#[derive(Default)]
pub struct Rendered {
    /// `data`.
    pub data: BTreeMap<String, Vec<u8>>,
    /// `type` when the template sets one.
    pub type_: Option<String>,
    /// Labels from templates.
    pub labels: BTreeMap<String, String>,
    /// Annotations from templates.
    pub annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values redacted: only the data keys.
        f.debug_struct("Rendered")
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("type_", &self.type_)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Data,
    Annotations,
    Labels,
}

impl Target {
    /// ESO (#6730): only these for a Secret, any case; unset is Data.
    fn parse(text: Option<&str>, at: &str) -> Result<Self, Error> {
        match text.unwrap_or_default().to_ascii_lowercase().as_str() {
            "" | "data" => Ok(Self::Data),
            "annotations" => Ok(Self::Annotations),
            "labels" => Ok(Self::Labels),
            _ => Err(Error::Template(format!(
                "{at}: target {:?} is not allowed for a Secret (Data, Annotations or Labels)",
                text.unwrap_or_default()
            ))),
        }
    }
}

/// How this controller renders templates: ESO's `--template-left-delimiter` and
/// `--template-right-delimiter` (empty means `{{`/`}}`; rewrite transforms keep `{{ }}`, as in
/// ESO) and the `--template-max-*` budgets of `target.template`, `templateFrom` and rewrite
/// `transform` templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSettings {
    /// `--template-left-delimiter`.
    pub left_delimiter: String,
    /// `--template-right-delimiter`.
    pub right_delimiter: String,
    /// `--template-max-*`.
    pub limits: hush_template::Limits,
}

impl TemplateSettings {
    /// hush-template's ESO engine options (`missingkey=error`, ESO's functions) with these
    /// delimiters and budgets.
    pub fn options(&self) -> hush_template::Options {
        options_with(&self.left_delimiter, &self.right_delimiter).limits(self.limits)
    }
}

fn options_with(left: &str, right: &str) -> hush_template::Options {
    hush_template::Options::preset(hush_template::Preset::ExternalSecrets).delimiters(left, right)
}

struct Renderer<'a> {
    values: &'a BTreeMap<String, SecretBytes>,
    options: &'a hush_template::Options,
    out: Rendered,
}

impl Renderer<'_> {
    fn render(&self, name: &str, text: &[u8], at: &str) -> Result<Vec<u8>, Error> {
        let text = std::str::from_utf8(text)
            .map_err(|_| Error::Template(format!("{at}: template is not UTF-8")))?;
        // Parsing first: an unknown or unimplemented function is an error here (a status on
        // the ExternalSecret), never different bytes.
        hush_template::Template::parse(name, text, self.options)
            .and_then(|t| t.render(self.values))
            .map(|o| o.expose().to_vec())
            .map_err(|e| Error::Template(format!("{at}: {e}")))
    }

    fn put(&mut self, target: Target, key: String, value: Vec<u8>, at: &str) -> Result<(), Error> {
        let text = |v: Vec<u8>| {
            String::from_utf8(v).map_err(|_| {
                Error::Template(format!("{at}: value for metadata key {key:?} is not UTF-8"))
            })
        };
        match target {
            Target::Data => {
                self.out.data.insert(key, value);
            }
            Target::Labels => {
                let v = text(value)?;
                self.out.labels.insert(key, v);
            }
            Target::Annotations => {
                let v = text(value)?;
                self.out.annotations.insert(key, v);
            }
        }
        Ok(())
    }

    /// `Values`: `key` gets the rendered `template`.
    fn values_scope(
        &mut self,
        key: &str,
        template: &[u8],
        target: Target,
        decoding: &str,
        at: &str,
    ) -> Result<(), Error> {
        let v = self.render(key, template, at)?;
        let v = eso::decode(v, decoding).map_err(|e| Error::Template(format!("{at}: {e}")))?;
        self.put(target, key.to_owned(), v, at)
    }

    /// `KeysAndValues`: the rendered template is a YAML map of string keys to string values.
    fn keys_and_values_scope(
        &mut self,
        template: &[u8],
        target: Target,
        decoding: &str,
        at: &str,
    ) -> Result<(), Error> {
        // ESO names this template by its own text; a fixed name keeps it out of errors.
        let out = self.render("keysAndValues", template, at)?;
        for (k, v) in parse_string_map(&out).map_err(|e| Error::Template(format!("{at}: {e}")))? {
            let v = eso::decode(v.into_bytes(), decoding)
                .map_err(|e| Error::Template(format!("{at}: {e}")))?;
            self.put(target, k, v, at)?;
        }
        Ok(())
    }

    fn template_from(
        &mut self,
        i: usize,
        t: &TemplateFrom,
        sources: &Sources,
    ) -> Result<(), Error> {
        let at = format!("templateFrom[{i}]");
        let target = Target::parse(t.target.as_deref(), &at)?;
        let decoding = t.values_decoding_strategy.as_deref().unwrap_or("None");
        if let Some(cm) = &t.config_map {
            let data = sources.config_maps.get(&cm.name);
            for item in &cm.items {
                let at = format!("{at}.configMap {:?} key {:?}", cm.name, item.key);
                let value = data.and_then(|d| d.get(&item.key)).ok_or_else(|| {
                    Error::Template(format!("{at}: the ConfigMap has no such key"))
                })?;
                self.item(
                    &item.key,
                    value.as_bytes(),
                    item.template_as.as_deref(),
                    target,
                    decoding,
                    &at,
                )?;
            }
        }
        if let Some(s) = &t.secret {
            let data = sources.secrets.get(&s.name);
            for item in &s.items {
                let at = format!("{at}.secret {:?} key {:?}", s.name, item.key);
                let value = data
                    .and_then(|d| d.get(&item.key))
                    .ok_or_else(|| Error::Template(format!("{at}: the Secret has no such key")))?;
                self.item(
                    &item.key,
                    value.expose(),
                    item.template_as.as_deref(),
                    target,
                    decoding,
                    &at,
                )?;
            }
        }
        if let Some(literal) = &t.literal {
            self.keys_and_values_scope(
                literal.as_bytes(),
                target,
                decoding,
                &format!("{at}.literal"),
            )?;
        }
        Ok(())
    }

    fn item(
        &mut self,
        key: &str,
        template: &[u8],
        template_as: Option<&str>,
        target: Target,
        decoding: &str,
        at: &str,
    ) -> Result<(), Error> {
        match template_as.unwrap_or_default() {
            "" | "Values" => self.values_scope(key, template, target, decoding, at),
            "KeysAndValues" => self.keys_and_values_scope(template, target, decoding, at),
            other => Err(Error::Template(format!(
                "{at}: unknown templateAs {other:?} (Values or KeysAndValues)"
            ))),
        }
    }
}

/// Applies `template` to the fetched `data`, parsing its templates with `options`.
pub fn apply(
    template: &ExternalSecretTemplate,
    data: &BTreeMap<String, Vec<u8>>,
    sources: &Sources,
    options: &hush_template::Options,
) -> Result<Rendered, Error> {
    let values: BTreeMap<String, SecretBytes> = data
        .iter()
        .map(|(k, v)| (k.clone(), SecretBytes::from_slice(v)))
        .collect();
    let mut r = Renderer {
        values: &values,
        options,
        out: Rendered::default(),
    };
    r.out.type_ = template.type_.clone().filter(|t| !t.is_empty());
    let templates = template.data.clone().unwrap_or_default();
    let merge = template.merge_policy.as_deref() == Some("Merge");
    if merge || (templates.is_empty() && template.template_from.is_empty()) {
        r.out.data = data.clone();
    }
    for (i, t) in template.template_from.iter().enumerate() {
        r.template_from(i, t, sources)?;
    }
    for (k, text) in &templates {
        r.values_scope(
            k,
            text.as_bytes(),
            Target::Data,
            "None",
            &format!("template.data {k:?}"),
        )?;
    }
    if let Some(m) = &template.metadata {
        for (k, text) in m.labels.iter().flatten() {
            r.values_scope(
                k,
                text.as_bytes(),
                Target::Labels,
                "None",
                &format!("template.metadata.labels {k:?}"),
            )?;
        }
        for (k, text) in m.annotations.iter().flatten() {
            r.values_scope(
                k,
                text.as_bytes(),
                Target::Annotations,
                "None",
                &format!("template.metadata.annotations {k:?}"),
            )?;
        }
    }
    Ok(r.out)
}

/// Where and how templates render: on blocking threads, at most `workers` at once, each render
/// given `timeout`, with the controller's [`TemplateSettings`]. A template is the ExternalSecret
/// author's program; on the async workers it would stall every other reconcile while it runs,
/// and unbounded in number it would take every core.
#[derive(Debug, Clone)]
pub struct RenderPool {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    timeout: std::time::Duration,
    options: std::sync::Arc<hush_template::Options>,
    limits: hush_template::Limits,
}

impl RenderPool {
    /// A pool of `workers` threads (at least one), each render bounded by `timeout`.
    pub fn new(workers: usize, timeout: std::time::Duration, settings: &TemplateSettings) -> Self {
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(workers.max(1))),
            timeout,
            options: std::sync::Arc::new(settings.options()),
            limits: settings.limits,
        }
    }

    /// The budgets of every template (rewrite `transform` templates render outside the pool).
    pub fn limits(&self) -> hush_template::Limits {
        self.limits
    }

    /// [`apply`] on the pool. Over the timeout the ExternalSecret gets a template error; the
    /// render itself ends at its budget and holds its worker until then, so timed-out renders
    /// never add up to more threads than the pool has.
    pub async fn apply(
        &self,
        template: &ExternalSecretTemplate,
        data: &BTreeMap<String, Vec<u8>>,
        sources: Sources,
    ) -> Result<Rendered, Error> {
        let (template, data) = (template.clone(), data.clone());
        let options = std::sync::Arc::clone(&self.options);
        self.run(move || apply(&template, &data, &sources, &options))
            .await
    }

    /// Runs `work` on a worker of the pool within the timeout.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let slot = std::sync::Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Error::Template("the template workers are shut down".into()))?;
        let work = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        });
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(rendered)) => rendered,
            Ok(Err(_)) => Err(Error::Template("the template render failed".into())),
            Err(_) => Err(Error::Template(format!(
                "rendering took longer than {} s (--template-timeout)",
                self.timeout.as_secs_f64()
            ))),
        }
    }
}

/// ESO unmarshals a KeysAndValues output into `map[string]string` with apimachinery's YAML
/// (YAML 1.1 through JSON): a number or boolean is an error there too; empty output is an empty
/// map.
fn parse_string_map(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    hush_template::yaml_string_map(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: serde_json::Value) -> ExternalSecretTemplate {
        serde_json::from_value(v).unwrap()
    }

    fn sources() -> Sources {
        Sources {
            config_maps: BTreeMap::from([(
                "tpl".to_owned(),
                BTreeMap::from([
                    ("config.yaml".to_owned(), "user: {{ .user }}".to_owned()),
                    ("pairs".to_owned(), "a: \"{{ .user }}-a\"\nb: x".to_owned()),
                    ("meta".to_owned(), "team: \"{{ .user }}\"".to_owned()),
                ]),
            )]),
            secrets: BTreeMap::from([(
                "stpl".to_owned(),
                BTreeMap::from([(
                    "dsn".to_owned(),
                    SecretBytes::from("db://{{ .user }}:{{ .pw }}"),
                )]),
            )]),
        }
    }

    fn data() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("user".to_owned(), b"alice".to_vec()),
            ("pw".to_owned(), b"s3cret".to_vec()),
        ])
    }

    fn opts() -> hush_template::Options {
        TemplateSettings::default().options()
    }

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    /// Renders run off the async workers, bounded in number and time: a current-thread runtime
    /// keeps serving other tasks while one runs, and a render over the timeout is an error.
    #[tokio::test(flavor = "current_thread")]
    async fn renders_run_on_the_pool_within_the_timeout() {
        let pool = RenderPool::new(
            1,
            std::time::Duration::from_millis(300),
            &TemplateSettings::default(),
        );
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
        let slow = pool
            .run(|| {
                std::thread::sleep(std::time::Duration::from_secs(1));
                Ok(())
            })
            .await;
        assert!(
            matches!(&slow, Err(Error::Template(m)) if m.contains("--template-timeout")),
            "{slow:?}"
        );
        assert!(
            ticks.load(std::sync::atomic::Ordering::SeqCst) >= 10,
            "the async worker was blocked"
        );
        // The timed-out render still holds the one worker until it ends; then the next runs.
        let next = pool.run(|| Ok(7)).await;
        assert!(matches!(next, Ok(7)), "{next:?}");
        let t = template(json!({"data": {"a": "{{ .user }}!"}}));
        let out = pool.apply(&t, &data(), Sources::default()).await.unwrap();
        assert_eq!(text(&out.data["a"]), "alice!");
    }

    #[test]
    fn template_from_sources_scopes_and_targets() {
        let t = template(json!({"templateFrom": [
            {"configMap": {"name": "tpl", "items": [{"key": "config.yaml"}, {"key": "pairs", "templateAs": "KeysAndValues"}]}},
            {"configMap": {"name": "tpl", "items": [{"key": "meta", "templateAs": "KeysAndValues"}]}, "target": "labels"},
            {"secret": {"name": "stpl", "items": [{"key": "dsn"}]}},
            {"literal": "note: \"{{ .user }} here\"", "target": "Annotations"},
            {"literal": "enc: \"{{ .user | b64enc }}\"", "valuesDecodingStrategy": "Base64"}
        ], "data": {"pairs": "overridden", "a": "{{ .user }}!"}}));
        let out = apply(&t, &data(), &sources(), &opts()).unwrap();
        assert_eq!(text(&out.data["config.yaml"]), "user: alice");
        // template.data wins over templateFrom.
        assert_eq!(text(&out.data["a"]), "alice!");
        assert_eq!(text(&out.data["b"]), "x");
        assert_eq!(text(&out.data["dsn"]), "db://alice:s3cret");
        assert_eq!(text(&out.data["enc"]), "alice");
        assert_eq!(text(&out.data["pairs"]), "overridden");
        // With templateFrom and no Merge, the raw values are not copied.
        assert!(!out.data.contains_key("user"));
        assert_eq!(out.labels["team"], "alice");
        assert_eq!(out.annotations["note"], "alice here");
    }

    #[test]
    fn merge_policy_type_and_metadata() {
        let t = template(
            json!({"type": "kubernetes.io/basic-auth", "mergePolicy": "Merge",
            "data": {"username": "{{ .user }}"},
            "metadata": {"labels": {"who": "{{ .user }}"}, "annotations": {"static": "yes"}}}),
        );
        let out = apply(&t, &data(), &Sources::default(), &opts()).unwrap();
        assert_eq!(out.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        assert_eq!(text(&out.data["user"]), "alice");
        assert_eq!(text(&out.data["username"]), "alice");
        assert_eq!(out.labels["who"], "alice");
        assert_eq!(out.annotations["static"], "yes");
        // Replace (default) with data templates: only the templates.
        let t = template(json!({"data": {"username": "{{ .user }}"}}));
        let out = apply(&t, &data(), &Sources::default(), &opts()).unwrap();
        assert_eq!(out.data.keys().collect::<Vec<_>>(), ["username"]);
        // No data templates and no templateFrom: the raw data.
        let out = apply(
            &template(json!({"type": "Opaque"})),
            &data(),
            &Sources::default(),
            &opts(),
        )
        .unwrap();
        assert_eq!(out.data, data());
    }

    #[test]
    fn delimiters_and_eso_functions() {
        let data = BTreeMap::from([("pem".to_owned(), SecretBytes::from("x"))]);
        let t = hush_template::Template::parse(
            "k",
            "<< .pem | len >>{{ not a template }}",
            &options_with("<<", ">>"),
        )
        .unwrap();
        assert_eq!(t.render(&data).unwrap().expose(), b"1{{ not a template }}");
        // The ESO preset's own functions are there; missing keys are errors.
        let t = hush_template::Template::parse("k", "{{ toYaml . }}", &options_with("", ""));
        assert_eq!(t.unwrap().render(&data).unwrap().expose(), b"pem: x");
        let t = hush_template::Template::parse("k", "{{ .nope }}", &options_with("", "")).unwrap();
        assert!(t.render(&data).is_err());
    }

    #[test]
    fn errors_name_the_place_not_the_value() {
        let s = sources();
        let missing_key = template(
            json!({"templateFrom": [{"configMap": {"name": "tpl", "items": [{"key": "nope"}]}}]}),
        );
        let err = apply(&missing_key, &data(), &s, &opts())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("templateFrom[0]") && err.contains("nope"),
            "{err}"
        );
        let bad_target = template(json!({"templateFrom": [{"literal": "a: b", "target": "type"}]}));
        assert!(apply(&bad_target, &data(), &s, &opts()).is_err());
        let spec_target =
            template(json!({"templateFrom": [{"literal": "a: b", "target": "spec.x"}]}));
        assert!(apply(&spec_target, &data(), &s, &opts()).is_err());
        let not_strings = template(json!({"templateFrom": [{"literal": "num: 1"}]}));
        let err = apply(&not_strings, &data(), &s, &opts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"num\""), "{err}");
        let not_map = template(json!({"templateFrom": [{"literal": "- {{ .pw }}"}]}));
        let err = apply(&not_map, &data(), &s, &opts())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        let bad_scope = template(
            json!({"templateFrom": [{"configMap": {"name": "tpl", "items": [{"key": "meta", "templateAs": "Keys"}]}}]}),
        );
        assert!(apply(&bad_scope, &data(), &s, &opts()).is_err());
        // Unknown and unimplemented functions fail at parse time, naming the function.
        let unknown = template(json!({"data": {"x": "{{ .pw | nope }}"}}));
        let err = apply(&unknown, &data(), &s, &opts())
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"function "nope" not defined"#), "{err}");
        let unimplemented = template(json!({"data": {"x": "{{ .pw }}{{ uuidv4 }}"}}));
        let err = apply(&unimplemented, &data(), &s, &opts())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not implemented by hush-template") && !err.contains("s3cret"),
            "{err}"
        );
        let missing_data = template(json!({"data": {"x": "{{ .absent }}"}}));
        assert!(apply(&missing_data, &data(), &s, &opts()).is_err());
        // Empty output of KeysAndValues: nothing.
        let empty = template(json!({"templateFrom": [{"literal": "{{- /* none */ -}}"}]}));
        assert!(apply(&empty, &data(), &s, &opts()).unwrap().data.is_empty());
    }

    #[test]
    fn keys_and_values_output_is_read_as_eso_reads_it() {
        let m = parse_string_map(b"a: x\n1: one\nempty:\nq: \"yes\"\n").unwrap();
        assert_eq!(
            m,
            BTreeMap::from([
                ("1".to_owned(), "one".to_owned()),
                ("a".to_owned(), "x".to_owned()),
                ("empty".to_owned(), String::new()),
                ("q".to_owned(), "yes".to_owned()),
            ])
        );
        // YAML 1.1: `yes` and `on` are booleans, so not strings (ESO fails the same way).
        for bad in [
            &b"a: yes"[..],
            b"a: on",
            b"a: 12",
            b"a: [x]",
            b"a: {b: c}",
            b"just text",
        ] {
            let e = parse_string_map(bad).unwrap_err();
            assert!(!e.contains("yes") || e.contains("key"), "{e}");
        }
        assert!(parse_string_map(b"").unwrap().is_empty());
        assert!(parse_string_map(b"a: [").is_err());
    }
}
