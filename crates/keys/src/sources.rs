//! What a key kind's builder and Flux loader read ([`crate::kinds`]): the fields of a sops
//! metadata entry, the identities and settings a process offers ([`KeySources`]), and the files
//! of a Flux key directory. A leaf: the key services import it, the table of kinds imports them.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::KeyService;

/// The fields of one sops metadata entry (a `MasterKey` of hush-sops), as a key kind reads them.
pub trait EntryFields {
    /// A string field; "" when absent or not a string (as sops reads it).
    fn field(&self, name: &str) -> &str;
    /// A map field's string-valued members (kms `context`); empty when absent.
    fn map(&self, name: &str) -> BTreeMap<String, String>;
}

/// A Flux key-directory file name: a suffix (`.agekey`) or an exact name (`sops.vault-token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FluxName {
    /// Any file ending in this.
    Suffix(&'static str),
    /// Exactly this file.
    Exact(&'static str),
}

impl FluxName {
    /// Whether `file_name` matches.
    pub fn matches(&self, file_name: &str) -> bool {
        match self {
            Self::Suffix(s) => file_name.ends_with(s),
            Self::Exact(e) => file_name == *e,
        }
    }

    /// As written in docs (`*.agekey`, `sops.vault-token`).
    pub fn pattern(&self) -> String {
        match self {
            Self::Suffix(s) => format!("*{s}"),
            Self::Exact(e) => (*e).to_owned(),
        }
    }
}

/// The top-level string fields of each document of a YAML text; `None` when it is not YAML.
/// hush-keys has no YAML parser: the front end that reads the key directory lends its own.
pub type YamlMaps<'a> = &'a dyn Fn(&str) -> Option<Vec<BTreeMap<String, Zeroizing<String>>>>;

/// One file of a Flux key directory, as a kind's loader sees it.
pub struct FluxFile<'a> {
    /// The directory (for labels).
    pub dir: &'a Path,
    /// The file name.
    pub name: &'a str,
    /// Its path.
    pub path: &'a Path,
    /// Its text (zeroized by the caller).
    pub text: &'a str,
    /// The caller's YAML reader.
    pub yaml_maps: YamlMaps<'a>,
}

impl fmt::Debug for FluxFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FluxFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a process offers its key services beyond the metadata entry: identities that open
/// wrapped keys by themselves, and per-kind settings (credentials from a key directory, which
/// Vault addresses may get a token). Absent settings mean a kind's defaults (the environment,
/// as sops).
#[derive(Clone, Default)]
pub struct KeySources {
    /// Services tried for every wrapped key of their type, before the entries' own (age
    /// identities), in order.
    pub unwrappers: Vec<Arc<dyn KeyService>>,
    settings: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for KeySources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySources")
            .field("unwrappers", &self.unwrappers)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySources {
    /// No identities, every kind on its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The settings of kind `type_id`, if set and of type `T`.
    pub fn get<T: Any + Send + Sync>(&self, type_id: &str) -> Option<&T> {
        self.settings.get(type_id)?.downcast_ref()
    }

    /// Sets the settings of kind `type_id`.
    pub fn set<T: Any + Send + Sync>(&mut self, type_id: &'static str, settings: T) {
        self.settings.insert(type_id, Arc::new(settings));
    }

    /// Changes the settings of kind `type_id` with `f` (starting from its default when unset or
    /// of another type) and returns what `f` returns.
    pub fn update<T, R>(&mut self, type_id: &'static str, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Any + Send + Sync + Clone + Default,
    {
        let mut settings = self.get::<T>(type_id).cloned().unwrap_or_default();
        let out = f(&mut settings);
        self.set(type_id, settings);
        out
    }
}
