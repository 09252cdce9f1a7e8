//! argocd-vault-plugin's placeholders (argoproj-labs/argocd-vault-plugin pkg/kube/util.go,
//! modifiers.go): `<key>` (generic, from the object's `avp.kubernetes.io/path`),
//! `<path:some/path#key>` and `<path:some/path#key#version>` (inline), each optionally followed
//! by `| modifier args` steps.
//!
//! Matching follows AVP's regular expressions: without a path annotation only inline
//! placeholders are recognised (`<KEY>` in CRD documentation stays as written); with one, every
//! `<…>` on a line is a placeholder. One deliberate difference: text that starts like an inline
//! placeholder (`<path:`) but does not parse as one is an error, not silently left in place.

use std::ops::Range;
use std::sync::LazyLock;

use base64::Engine as _;
use regex::Regex;
use serde_json::Value as Json;
use sha2::Digest as _;

use crate::jsonpath;

#[allow(clippy::expect_used)] // constant patterns
static GENERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?mU)<(.*)>").expect("generic placeholder regex"));
#[allow(clippy::expect_used)]
static INLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?mU)<path:([^#]+)#([^#]+)(?:#([^#]+))?>").expect("inline placeholder regex")
});

/// What a placeholder refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `<key>`: a key of the secret at the object's `avp.kubernetes.io/path`.
    Generic {
        /// The key.
        key: String,
    },
    /// `<path:p#key#version>`.
    Inline {
        /// The secret's path.
        path: String,
        /// The key.
        key: String,
        /// The version, if given.
        version: Option<String>,
    },
}

/// A modifier step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    /// `base64encode`.
    Base64Encode,
    /// `base64decode`.
    Base64Decode,
    /// `jsonPath {…}` (Kubernetes JSONPath template, see [`jsonpath`]).
    JsonPath(String),
    /// `jsonParse`.
    JsonParse,
    /// `yamlParse`.
    YamlParse,
    /// `indent N`.
    Indent(usize),
    /// `sha256sum`.
    Sha256Sum,
}

/// One placeholder found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Byte range in the scanned string, `<` to `>` inclusive.
    pub range: Range<usize>,
    /// The text as written (`<…>`); contains no secret.
    pub text: String,
    /// What it refers to.
    pub reference: Reference,
    /// Modifiers, in order.
    pub modifiers: Vec<Modifier>,
}

/// A placeholder that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The placeholder text.
    pub text: String,
    /// What is wrong.
    pub message: String,
}

/// Finds the placeholders of `s`. `generic`: the object carries `avp.kubernetes.io/path`.
pub fn scan(s: &str, generic: bool) -> Result<Vec<Placeholder>, Malformed> {
    if !s.contains('<') {
        return Ok(Vec::new());
    }
    let re: &Regex = if generic { &GENERIC } else { &INLINE };
    let mut out = Vec::new();
    let mut covered = Vec::new();
    for m in re.find_iter(s) {
        covered.push(m.range());
        out.push(parse(m.as_str(), m.range())?);
    }
    // `<path:` not covered by any match: written like an inline placeholder but unparsable.
    for (at, _) in s.match_indices("<path:") {
        if !covered.iter().any(|r| r.contains(&at)) {
            let end = s[at..].find('>').map_or(s.len(), |e| at + e + 1);
            // At most 200 bytes of it in the message, cut on a character boundary.
            let cut = s.floor_char_boundary(end.min(at + 200));
            let text = s[at..cut].to_owned();
            return Err(Malformed {
                text,
                message: "expected <path:PATH#KEY> or <path:PATH#KEY#VERSION>".into(),
            });
        }
    }
    Ok(out)
}

/// Whether `s` contains anything that [`scan`] would report (placeholder or malformed one).
pub fn mentions(s: &str, generic: bool) -> bool {
    if !s.contains('<') {
        return false;
    }
    s.contains("<path:") || (generic && GENERIC.is_match(s)) || INLINE.is_match(s)
}

fn parse(text: &str, range: Range<usize>) -> Result<Placeholder, Malformed> {
    let bad = |message: String| Malformed {
        text: text.to_owned(),
        message,
    };
    let inner = &text[1..text.len() - 1];
    let mut parts = inner.split('|');
    let head = parts.next().unwrap_or("").trim();
    let modifiers = parts
        .map(|m| parse_modifier(m).map_err(&bad))
        .collect::<Result<Vec<_>, _>>()?;
    let reference = if let Some(rest) = head.strip_prefix("path:") {
        let mut fields = rest.splitn(3, '#');
        let path = fields.next().unwrap_or("").trim();
        let key = fields.next().unwrap_or("").trim();
        let version = fields.next().map(str::trim).filter(|v| !v.is_empty());
        if path.is_empty() || key.is_empty() {
            return Err(bad(
                "expected <path:PATH#KEY> or <path:PATH#KEY#VERSION>".into()
            ));
        }
        if version.is_some_and(|v| v.contains('#')) {
            return Err(bad("too many `#` fields".into()));
        }
        Reference::Inline {
            path: path.to_owned(),
            key: key.to_owned(),
            version: version.map(str::to_owned),
        }
    } else {
        if head.is_empty() {
            return Err(bad("empty placeholder".into()));
        }
        Reference::Generic {
            key: head.to_owned(),
        }
    };
    Ok(Placeholder {
        range,
        text: text.to_owned(),
        reference,
        modifiers,
    })
}

fn parse_modifier(m: &str) -> Result<Modifier, String> {
    let m = m.trim();
    let (name, args) = match m.find(char::is_whitespace) {
        Some(i) => (&m[..i], m[i..].trim()),
        None => (m, ""),
    };
    let no_args = |md: Modifier| {
        if args.is_empty() {
            Ok(md)
        } else {
            Err(format!("modifier {name} takes no parameters"))
        }
    };
    match name {
        "base64encode" => no_args(Modifier::Base64Encode),
        "base64decode" => no_args(Modifier::Base64Decode),
        "jsonParse" => no_args(Modifier::JsonParse),
        "yamlParse" => no_args(Modifier::YamlParse),
        "sha256sum" => no_args(Modifier::Sha256Sum),
        "jsonPath" if !args.is_empty() => {
            // AVP splits a modifier into fields and joins its parameters with one space.
            let template = args.split_whitespace().collect::<Vec<_>>().join(" ");
            jsonpath::parse(&template)?;
            Ok(Modifier::JsonPath(template))
        }
        "jsonPath" => Err("jsonPath needs a template".into()),
        "indent" => args
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 1024)
            .map(Modifier::Indent)
            .ok_or_else(|| "invalid indentation level".into()),
        "" => Err("empty modifier".into()),
        other => Err(format!("unknown modifier {other:?}")),
    }
}

/// Applies one modifier. Errors name the modifier and the type, never the value.
pub fn apply(m: &Modifier, input: Json) -> Result<Json, String> {
    let as_str = |what: &str, v: &Json| -> Result<String, String> {
        match v {
            Json::String(s) => Ok(s.clone()),
            other => Err(format!("{what}: invalid datatype {}", type_name(other))),
        }
    };
    Ok(match m {
        Modifier::Base64Encode => Json::String(
            base64::engine::general_purpose::STANDARD.encode(as_str("base64encode", &input)?),
        ),
        Modifier::Base64Decode => {
            let s = as_str("base64decode", &input)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|_| "base64decode: the value is not base64".to_owned())?;
            Json::String(
                String::from_utf8(bytes)
                    .map_err(|_| "base64decode: the decoded value is not UTF-8".to_owned())?,
            )
        }
        Modifier::JsonParse => {
            serde_json::from_str(&as_str("jsonParse", &input)?).map_err(|e| {
                format!(
                    "jsonParse: not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?
        }
        Modifier::YamlParse => {
            let s = as_str("yamlParse", &input)?;
            let docs = hush_sops::stores::yaml_parse::parse(&s)
                .map_err(|_| "yamlParse: not a YAML map".to_owned())?;
            match docs.as_slice() {
                [doc] => Json::Object(crate::value::map_to_json(doc)),
                _ => return Err("yamlParse: expected one YAML document".into()),
            }
        }
        Modifier::JsonPath(template) => {
            let obj = match input {
                Json::String(s) => serde_json::from_str(&s)
                    .map_err(|_| "jsonPath: the value is not JSON".to_owned())?,
                other => other,
            };
            Json::String(jsonpath::execute(template, &obj)?)
        }
        Modifier::Indent(n) => {
            let s = as_str("indent", &input)?;
            let pad = " ".repeat(*n);
            let lines: Vec<&str> = s.split('\n').collect();
            let mut out = String::new();
            out.push_str(lines[0].trim());
            if lines.len() > 1 {
                out.push('\n');
            }
            for (i, line) in lines.iter().enumerate().skip(1) {
                if !line.is_empty() {
                    out.push_str(&pad);
                    out.push_str(line.trim());
                    if i < lines.len() - 1 {
                        out.push('\n');
                    }
                }
            }
            Json::String(out)
        }
        Modifier::Sha256Sum => {
            let s = as_str("sha256sum", &input)?;
            Json::String(hex_lower(&sha2::Sha256::digest(s.as_bytes())))
        }
    })
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_generic_forms() {
        let p = scan(
            "a <path:secret/data/x#user> b <path:kv/y#k#3 | base64encode>",
            false,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].reference,
            Reference::Inline {
                path: "secret/data/x".into(),
                key: "user".into(),
                version: None
            }
        );
        assert_eq!(
            p[1].reference,
            Reference::Inline {
                path: "kv/y".into(),
                key: "k".into(),
                version: Some("3".into())
            }
        );
        assert_eq!(p[1].modifiers, vec![Modifier::Base64Encode]);
        // Without the path annotation `<KEY>` is text; with it, a placeholder.
        assert!(scan("use <KEY> here", false).unwrap().is_empty());
        let g = scan("use <KEY> here", true).unwrap();
        assert_eq!(g[0].reference, Reference::Generic { key: "KEY".into() });
        // Ungreedy: two on one line.
        assert_eq!(scan("<a>:<b>", true).unwrap().len(), 2);
    }

    #[test]
    fn malformed_are_errors() {
        assert!(scan("<path:nokey>", false).is_err());
        assert!(scan("<path:p#k | frobnicate>", false).is_err());
        assert!(scan("<path:p#k | indent x>", false).is_err());
        assert!(scan("<path:p#k | jsonPath {.a[?(@.x <> 1)]}>", false).is_err());
        assert!(scan("<path:p#k | jsonPath {range .a[*]}{.b}>", false).is_err());
        assert!(scan("<  >", true).is_err());
        // A long malformed one is quoted up to 200 bytes, cut between characters (fuzz finding
        // render_placeholder: a two-byte character across byte 200 panicked).
        let long = format!("<path:{}Ɔ and more>", "x".repeat(193));
        let err = scan(&long, false).unwrap_err();
        assert_eq!(err.text.len(), 199);
        assert!(err.text.ends_with('x'));
    }

    #[test]
    fn modifiers_behave_as_avp() {
        let s = |v: &str| Json::String(v.into());
        assert_eq!(apply(&Modifier::Base64Encode, s("hi")).unwrap(), s("aGk="));
        assert_eq!(apply(&Modifier::Base64Decode, s("aGk=")).unwrap(), s("hi"));
        assert_eq!(
            apply(&Modifier::Indent(2), s("a\nb\n\nc")).unwrap(),
            s("a\n  b\n  c")
        );
        let obj = apply(&Modifier::JsonParse, s(r#"{"a":{"b":[1,"x"]}}"#)).unwrap();
        assert_eq!(
            apply(&Modifier::JsonPath("{.a.b[1]}{':'}{.a.b[0]}".into()), obj).unwrap(),
            s("x:1")
        );
        assert_eq!(
            apply(&Modifier::YamlParse, s("a: 1\nb: two\n")).unwrap(),
            serde_json::json!({"a": 1, "b": "two"})
        );
        assert_eq!(
            apply(&Modifier::Sha256Sum, s("")).unwrap(),
            s("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert!(apply(&Modifier::Base64Encode, Json::Bool(true)).is_err());
    }
}
