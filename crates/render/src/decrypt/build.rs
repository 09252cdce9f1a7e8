//! Building: the key services that may open one file's data key, from the render's sources and
//! the file's metadata entries, each by its row of the key-kind table.

use hush_keys::KeyRegistry;
use hush_sops::metadata::Metadata;

use super::Keys;

impl Keys {
    /// The identities first (in load order), then one service per metadata entry whose kind
    /// this build has a service for. An entry whose fields are invalid gets none: the error a
    /// user needs is the one for the data key, which names the keys tried.
    pub(super) fn registry_for(&self, meta: &Metadata) -> KeyRegistry {
        let mut r = KeyRegistry::new();
        for service in &self.sources.unwrappers {
            r.register(service.clone());
        }
        for entry in meta.key_groups.iter().flatten() {
            if !hush_keys::kinds::kind(&entry.type_id).is_some_and(|k| k.entry_unwraps) {
                continue;
            }
            if let Ok(Some(service)) =
                hush_keys::kinds::service_for(&entry.type_id, entry, &self.sources)
            {
                r.register(service);
            }
        }
        r
    }
}
