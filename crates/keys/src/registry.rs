//! The list of master keys a process holds, and the one place that offers a wrapped key to them.

use std::sync::Arc;

use crate::{KeyError, KeyService, SecretBytes, WrappedKey};

/// An ordered set of key services. Order matters: it is the decryption order.
#[derive(Debug, Default, Clone)]
pub struct KeyRegistry {
    services: Vec<Arc<dyn KeyService>>,
}

/// The result of a successful unwrap: the key material and which service opened it.
#[derive(Debug)]
pub struct Unwrapped {
    /// The key material.
    pub key: SecretBytes,
    /// Index of the service in the registry.
    pub index: usize,
    /// `key_id` of that service.
    pub key_id: String,
}

impl KeyRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service at the end of the order.
    pub fn register(&mut self, service: Arc<dyn KeyService>) {
        self.services.push(service);
    }

    /// The services in order.
    pub fn services(&self) -> &[Arc<dyn KeyService>] {
        &self.services
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Offers `wrapped` to the services of its type, `preferred` first (the index of the key that
    /// opened this object last time), then in order. Returns `Ok(None)` when none is addressed.
    /// A service error is remembered and returned only if no other service succeeds.
    pub async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        aad: &[u8],
        preferred: Option<usize>,
    ) -> Result<Option<Unwrapped>, KeyError> {
        let order = preferred
            .filter(|&p| p < self.services.len())
            .into_iter()
            .chain((0..self.services.len()).filter(move |&i| Some(i) != preferred));
        let mut first_error = None;
        for index in order {
            let service = &self.services[index];
            if service.type_id() != wrapped.type_id {
                continue;
            }
            match service.unwrap(wrapped, aad).await {
                Ok(Some(key)) => {
                    return Ok(Some(Unwrapped {
                        key,
                        index,
                        key_id: service.key_id(),
                    }));
                }
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}
