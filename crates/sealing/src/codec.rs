//! Reading and writing documents as kubeseal does.
//!
//! Input (`yaml.NewYAMLOrJSONDecoder`): when the first non-space byte is `{` the input is a
//! stream of concatenated JSON objects, otherwise multi-document YAML with go-yaml v2's YAML 1.1
//! scalar rules. Documents that decode to nothing are skipped; `kind` is not checked.
//!
//! Output: JSON as Go's `json.MarshalIndent(obj, "", "  ")` plus a newline (kind before
//! apiVersion, `<`, `>`, `&`, U+2028 and U+2029 escaped as Go does); YAML as
//! `sigs.k8s.io/yaml` (go-yaml v2) preceded by `---\n`.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::redact;
use crate::{Error, Result, SealedSecret, Secret, yaml_in, yaml_out};

/// Output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Indented JSON (kubeseal's default).
    #[default]
    Json,
    /// YAML, each document preceded by `---`.
    Yaml,
}

impl std::str::FromStr for Format {
    type Err = String;

    /// Case-insensitive, as kubeseal's `strings.ToLower(outputFormat)`; `""` is JSON.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "json" | "" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            _ => Err(format!("unsupported output format: {s}")),
        }
    }
}

/// Documents of one input, and whether they came from YAML (then string fields still need
/// Go's coercion, see [`Documents::into_kube_objects`]).
#[derive(Debug, Clone)]
pub struct Documents {
    /// One JSON value per non-empty document.
    pub values: Vec<Value>,
    /// Whether the input was YAML (not a JSON stream).
    pub yaml: bool,
}

impl Documents {
    /// The documents as Kubernetes objects: for YAML input, booleans and numbers in string
    /// fields become the strings Go would decode (`y` → `"true"`, `0755` → `"493"`).
    pub fn into_kube_objects(self) -> Vec<Value> {
        let mut values = self.values;
        if self.yaml {
            values.iter_mut().for_each(yaml_in::coerce_kube_strings);
        }
        values
    }
}

/// Splits the input into JSON values: a concatenated JSON stream when the first non-space byte
/// is `{`, otherwise multi-document YAML read with go-yaml v2's YAML 1.1 rules. Empty documents
/// are dropped.
pub fn documents(input: &[u8], what: &'static str) -> Result<Documents> {
    let parse_err = |reason: String| Error::Parse {
        what,
        reason: redact(&reason),
    };
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let mut values = Vec::new();
        for value in serde_json::Deserializer::from_slice(input).into_iter::<Value>() {
            values.push(value.map_err(|e| parse_err(e.to_string()))?);
        }
        return Ok(Documents {
            values,
            yaml: false,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| parse_err(e.to_string()))?;
    let values = yaml_in::documents(text).map_err(parse_err)?;
    Ok(Documents { values, yaml: true })
}

fn from_value<T: DeserializeOwned>(value: Value, what: &'static str) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Parse {
        what,
        reason: redact(&e.to_string()),
    })
}

/// Reads every Secret of the input (kubeseal `readSecrets`); documents that decode to an empty
/// Secret are skipped.
pub fn read_secrets(input: &[u8]) -> Result<Vec<Secret>> {
    let mut out = Vec::new();
    for doc in documents(input, "input Secret")?.into_kube_objects() {
        let secret: Secret = from_value(doc, "input Secret")?;
        if !secret.is_empty_document() {
            out.push(secret);
        }
    }
    Ok(out)
}

/// Reads every SealedSecret of the input; empty documents are skipped.
pub fn read_sealed_secrets(input: &[u8]) -> Result<Vec<SealedSecret>> {
    let mut out = Vec::new();
    for doc in documents(input, "SealedSecret")?.into_kube_objects() {
        let sealed: SealedSecret = from_value(doc, "SealedSecret")?;
        if !sealed.is_empty_document() {
            out.push(sealed);
        }
    }
    Ok(out)
}

/// Reads the first SealedSecret of the input (kubeseal `decodeSealedSecret`).
pub fn read_sealed_secret(input: &[u8]) -> Result<SealedSecret> {
    read_sealed_secrets(input)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Parse {
            what: "SealedSecret",
            reason: "the input holds no SealedSecret".into(),
        })
}

/// Writes a SealedSecret in `format`, with `kind` and `apiVersion` set as the Go codec does.
pub fn write_sealed_secret(sealed: &SealedSecret, format: Format) -> Result<String> {
    let mut sealed = sealed.clone();
    sealed.set_type_meta();
    write(&sealed, format, "SealedSecret")
}

/// Writes a Secret in `format` (`kind: Secret`, `apiVersion: v1`).
pub fn write_secret(secret: &Secret, format: Format) -> Result<String> {
    let mut secret = secret.clone();
    "Secret".clone_into(&mut secret.kind);
    "v1".clone_into(&mut secret.api_version);
    write(&secret, format, "Secret")
}

fn write<T: Serialize>(obj: &T, format: Format, what: &'static str) -> Result<String> {
    let ser_err = |e: serde_json::Error| Error::Serialize {
        what,
        reason: e.to_string(),
    };
    match format {
        Format::Json => {
            let mut buf = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, GoJson::default());
            obj.serialize(&mut ser).map_err(ser_err)?;
            buf.push(b'\n');
            String::from_utf8(buf).map_err(|e| Error::Serialize {
                what,
                reason: e.to_string(),
            })
        }
        Format::Yaml => {
            let value = serde_json::to_value(obj).map_err(ser_err)?;
            // kubeseal goes JSON → go-yaml's reader → YAML; the reader refuses raw control
            // characters that Go's JSON encoder leaves unescaped.
            if has_yaml_reader_control(&value) {
                return Err(Error::YamlControlCharacters);
            }
            Ok(format!("---\n{}", yaml_out::to_string(&value)))
        }
    }
}

/// serde_json's pretty formatter plus Go's HTML-safe escaping of `<`, `>`, `&` and the line and
/// paragraph separators.
#[derive(Default)]
struct GoJson {
    pretty: serde_json::ser::PrettyFormatter<'static>,
}

impl serde_json::ser::Formatter for GoJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(w)
    }
}

/// Whether a key or string holds a character go-yaml v2's reader refuses and Go's JSON encoder does
/// not escape: DEL, C1 controls other than NEL, U+FFFE and U+FFFF.
fn has_yaml_reader_control(value: &Value) -> bool {
    let bad = |s: &str| {
        s.chars().any(|c| {
            let v = u32::from(c);
            v == 0x7f || ((0x80..=0x9f).contains(&v) && v != 0x85) || v == 0xfffe || v == 0xffff
        })
    };
    match value {
        Value::String(s) => bad(s),
        Value::Array(items) => items.iter().any(has_yaml_reader_control),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| bad(k) || has_yaml_reader_control(v)),
        _ => false,
    }
}
