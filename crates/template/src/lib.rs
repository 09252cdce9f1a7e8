//! Go `text/template` for hush: one engine, two presets.
//!
//! - [`Preset::SealedSecrets`]: Bitnami's `spec.template.data` rendering: sprig's
//!   `GenericFuncMap()` minus `env`, `expandenv`, `getHostByName`; missing keys print `<no value>`.
//! - [`Preset::ExternalSecrets`]: ESO engine v2: `missingkey=error`, configurable delimiters,
//!   sprig plus ESO's own functions.
//!
//! Data is the controllers' `map[string]string` of secret values ([`Template::render`]) or any
//! JSON-like [`Value`] ([`Template::render_value`]). Output is [`SecretBytes`]. Errors carry the
//! template name and `line:col`, never data values. A function the Go engine has but hush does not
//! implement is a parse error naming it, so a template never renders to different bytes.
//!
//! ```
//! use std::collections::BTreeMap;
//! use hush_crypto::SecretBytes;
//! use hush_template::{Options, Preset, Template};
//!
//! let data = BTreeMap::from([("password".to_string(), SecretBytes::from("hunter2"))]);
//! let t = Template::parse("dsn", "user:{{ .password | b64enc }}", &Options::preset(Preset::ExternalSecrets))?;
//! assert_eq!(t.render(&data)?.expose(), b"user:aHVudGVyMg==");
//! # Ok::<(), hush_template::Error>(())
//! ```
#![warn(missing_docs)]

use std::collections::BTreeMap;

use hush_crypto::SecretBytes;

mod eso;
mod exec;
mod funcs;
mod gofmt;
mod json;
mod lex;
mod limits;
mod parse;
mod path;
mod value;
mod yaml;

pub use limits::{Budget, Limits};
pub use value::Value;
pub use yaml::yaml_string_map;

/// A 1-based line and column (in characters) in the template text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Template errors. Messages never contain data values (they are secrets).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The template text is not a valid template, or calls an unknown function.
    #[error("template: {name}:{pos}: {msg}")]
    Parse {
        /// Template name (e.g. the Secret key).
        name: String,
        /// Where.
        pos: Pos,
        /// What, without data.
        msg: String,
    },
    /// Rendering failed (missing key with `missingkey=error`, a function error, a bad type).
    #[error("template: {name}:{pos}: executing {name:?}: {msg}")]
    Exec {
        /// Template name.
        name: String,
        /// Where.
        pos: Pos,
        /// What, without data.
        msg: String,
    },
    /// Parsing or rendering needed more than one of the [`Limits`]; the template is refused, not
    /// rendered in part.
    #[error(
        "template: {name}:{pos}: exceeded the {budget} budget of {limit} (raise it with {flag})",
        flag = budget.flag()
    )]
    Budget {
        /// Template name.
        name: String,
        /// Where the budget ran out.
        pos: Pos,
        /// Which budget.
        budget: Budget,
        /// Its value in this render.
        limit: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a missing map key evaluates to (Go's `missingkey=` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingKey {
    /// `missingkey=default`/`invalid`: no value; prints `<no value>`.
    Default,
    /// `missingkey=zero`: the zero value of the map's element type.
    Zero,
    /// `missingkey=error`: execution stops with an error.
    Error,
}

/// Which functions templates may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Functions {
    /// Go's builtins only.
    Builtins,
    /// Builtins plus sprig's `GenericFuncMap()` minus `env`, `expandenv`, `getHostByName`.
    Sprig,
    /// Sprig plus External Secrets' own functions.
    ExternalSecrets,
}

/// The two controllers' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// Bitnami Sealed Secrets `spec.template.data`.
    SealedSecrets,
    /// External Secrets Operator `target.template` (engine v2).
    ExternalSecrets,
}

/// Engine options: function set, missing-key mode, delimiters, resource budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    functions: Functions,
    missing_key: MissingKey,
    left: String,
    right: String,
    limits: Limits,
}

impl Options {
    /// The settings of a preset, with the default delimiters `{{` `}}`.
    pub fn preset(preset: Preset) -> Self {
        let (functions, missing_key) = match preset {
            Preset::SealedSecrets => (Functions::Sprig, MissingKey::Default),
            Preset::ExternalSecrets => (Functions::ExternalSecrets, MissingKey::Error),
        };
        Options {
            functions,
            missing_key,
            left: "{{".into(),
            right: "}}".into(),
            limits: Limits::default(),
        }
    }

    /// Sets the resource budgets of parsing and of every render ([`Limits::default`] unless set).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Custom delimiters (ESO's `--template-left-delimiter`/`--template-right-delimiter`); an
    /// empty one means the default, as in Go.
    pub fn delimiters(mut self, left: &str, right: &str) -> Self {
        self.left = if left.is_empty() {
            "{{".into()
        } else {
            left.into()
        };
        self.right = if right.is_empty() {
            "}}".into()
        } else {
            right.into()
        };
        self
    }

    /// Sets the missing-key mode.
    pub fn missing_key(mut self, m: MissingKey) -> Self {
        self.missing_key = m;
        self
    }

    /// Sets the function set.
    pub fn functions(mut self, f: Functions) -> Self {
        self.functions = f;
        self
    }

    fn func_set(&self) -> funcs::FuncSet {
        match self.functions {
            Functions::Builtins => funcs::FuncSet::Builtins,
            Functions::Sprig => funcs::FuncSet::Sprig,
            Functions::ExternalSecrets => funcs::FuncSet::ExternalSecrets,
        }
    }
}

/// A parsed template, ready to render any number of times.
pub struct Template {
    name: String,
    root: Vec<parse::Node>,
    defines: BTreeMap<String, Vec<parse::Node>>,
    funcs: funcs::FuncSet,
    missing_key: MissingKey,
    limits: Limits,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Template {
    /// Parses `text`; `name` appears in errors and is the name `{{template}}` can call. Nesting
    /// deeper than the options' [`Limits::max_depth`] is an [`Error::Budget`].
    pub fn parse(name: &str, text: &str, options: &Options) -> Result<Self> {
        let perr = |pos: Pos, msg: String| Error::Parse {
            name: name.to_owned(),
            pos,
            msg,
        };
        let items =
            lex::lex(text, &options.left, &options.right).map_err(|e| perr(e.pos, e.msg))?;
        let set = options.func_set();
        let lookup = move |n: &str| funcs::lookup(set, n);
        let mut p = parse::Parser::new(items, &lookup, options.limits.max_depth);
        let root = p.parse().map_err(|e| match e.budget {
            Some(budget) => Error::Budget {
                name: name.to_owned(),
                pos: e.pos,
                budget,
                limit: options.limits.get(budget),
            },
            None => perr(e.pos, e.msg),
        })?;
        let mut defines = std::mem::take(&mut p.defines);
        // The template itself is callable by its own name unless a define replaced it.
        defines
            .entry(name.to_owned())
            .or_insert_with(|| root.clone());
        Ok(Template {
            name: name.to_owned(),
            root,
            defines,
            funcs: set,
            missing_key: options.missing_key,
            limits: options.limits,
        })
    }

    /// Renders with the controllers' data: a `map[string]string` of secret values.
    pub fn render(&self, data: &BTreeMap<String, SecretBytes>) -> Result<SecretBytes> {
        let map = data
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_vec()))
            .collect();
        self.render_value(&Value::StrMap(map))
    }

    /// Renders with any data value, within the template's [`Limits`]: running out of one is an
    /// [`Error::Budget`] and no output.
    pub fn render_value(&self, data: &Value) -> Result<SecretBytes> {
        let mut st = exec::State::new(&self.defines, self.missing_key, &self.funcs, self.limits);
        match st.run(&self.root, data) {
            Ok(()) => Ok(SecretBytes::new(std::mem::take(&mut st.out))),
            Err(e) => Err(match e.budget {
                Some(budget) => Error::Budget {
                    name: self.name.clone(),
                    pos: e.pos,
                    budget,
                    limit: self.limits.get(budget),
                },
                None => Error::Exec {
                    name: self.name.clone(),
                    pos: e.pos,
                    msg: e.msg,
                },
            }),
        }
    }
}

/// Parses and renders in one step with a preset's options and the default [`Limits`].
pub fn render(
    preset: Preset,
    name: &str,
    text: &str,
    data: &BTreeMap<String, SecretBytes>,
) -> Result<SecretBytes> {
    render_with(preset, Limits::default(), name, text, data)
}

/// Parses and renders in one step with a preset's options and the given budgets.
pub fn render_with(
    preset: Preset,
    limits: Limits,
    name: &str,
    text: &str,
    data: &BTreeMap<String, SecretBytes>,
) -> Result<SecretBytes> {
    Template::parse(name, text, &Options::preset(preset).limits(limits))?.render(data)
}

#[cfg(test)]
mod tests;
