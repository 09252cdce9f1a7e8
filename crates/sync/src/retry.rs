//! A store's `retrySettings` (ESO: the provider client's retries on failed requests): a call
//! that fails with [`ProviderError::Transient`] (provider unreachable, 5xx) is tried again up to
//! `maxRetries` times, `retryInterval` apart. Other errors are answered at once: not found and
//! invalid requests do not change on retry, denials and throttling have the controller's own
//! backoff (`cache`).
//!
//! Budgets (a tenant writes the store; each retry holds a worker): `maxRetries` at most
//! [`MAX_RETRIES`], `retryInterval` at most [`MAX_INTERVAL`]; beyond them the store is refused
//! naming the field.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Capabilities, DocumentRef, FindQuery, ProviderError, PushRef, RemoteRef, SecretBytes,
    SecretProvider,
};

/// The most retries a store may ask for.
pub const MAX_RETRIES: i32 = 10;
/// The longest interval between retries a store may ask for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The interval when a store sets `maxRetries` without `retryInterval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Parsed `retrySettings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Pause before each retry.
    pub interval: Duration,
}

impl RetrySettings {
    /// `spec.retrySettings` of a store; `None` when it asks for no retry.
    pub fn parse(
        max_retries: Option<i32>,
        retry_interval: Option<&str>,
    ) -> Result<Option<Self>, ProviderError> {
        let retries = max_retries.unwrap_or(0);
        if !(0..=MAX_RETRIES).contains(&retries) {
            return Err(ProviderError::Invalid(format!(
                "spec.retrySettings.maxRetries {retries} is outside 0..={MAX_RETRIES}"
            )));
        }
        let interval = match retry_interval.filter(|t| !t.is_empty()) {
            None => DEFAULT_INTERVAL,
            Some(text) => crate::go_duration(text).ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "spec.retrySettings.retryInterval {text:?} is not a duration such as 5s"
                ))
            })?,
        };
        if interval > MAX_INTERVAL {
            return Err(ProviderError::Invalid(format!(
                "spec.retrySettings.retryInterval is longer than {} s",
                MAX_INTERVAL.as_secs()
            )));
        }
        Ok((retries > 0).then_some(Self {
            max_retries: retries.unsigned_abs(),
            interval,
        }))
    }
}

/// `provider`, retrying as `settings` say (unchanged when `None`).
pub fn with_retries(
    provider: Arc<dyn SecretProvider>,
    settings: Option<RetrySettings>,
) -> Arc<dyn SecretProvider> {
    match settings {
        None => provider,
        Some(settings) => Arc::new(Retrying {
            inner: provider,
            settings,
        }),
    }
}

#[derive(Debug)]
struct Retrying {
    inner: Arc<dyn SecretProvider>,
    settings: RetrySettings,
}

impl Retrying {
    async fn attempt<T, F, Fut>(&self, call: F) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: std::future::Future<Output = Result<T, ProviderError>> + Send,
        T: Send,
    {
        let mut left = self.settings.max_retries;
        loop {
            match call().await {
                Err(ProviderError::Transient(_)) if left > 0 => {
                    left -= 1;
                    tokio::time::sleep(self.settings.interval).await;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl SecretProvider for Retrying {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
        self.attempt(|| self.inner.get(r)).await
    }
    async fn get_map(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        self.attempt(|| self.inner.get_map(r)).await
    }
    async fn find(&self, q: &FindQuery) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        self.attempt(|| self.inner.find(q)).await
    }
    async fn validate(&self) -> Result<(), ProviderError> {
        self.attempt(|| self.inner.validate()).await
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn deletes_pushed(&self) -> bool {
        self.inner.deletes_pushed()
    }
    async fn document(
        &self,
        r: &DocumentRef,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ProviderError> {
        self.attempt(|| self.inner.document(r)).await
    }
    async fn push(&self, value: &SecretBytes, r: &PushRef) -> Result<(), ProviderError> {
        self.attempt(|| self.inner.push(value, r)).await
    }
    async fn exists(&self, r: &PushRef) -> Result<bool, ProviderError> {
        self.attempt(|| self.inner.exists(r)).await
    }
    async fn delete(&self, r: &PushRef) -> Result<(), ProviderError> {
        self.attempt(|| self.inner.delete(r)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Flaky {
        calls: AtomicU32,
        fail: u32,
        error: ProviderError,
    }

    #[async_trait]
    impl SecretProvider for Flaky {
        async fn get(&self, _r: &RemoteRef) -> Result<SecretBytes, ProviderError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                return Err(self.error.clone());
            }
            Ok(SecretBytes::from("v"))
        }
        async fn get_map(
            &self,
            _r: &RemoteRef,
        ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
            Ok(BTreeMap::new())
        }
        async fn find(
            &self,
            _q: &FindQuery,
        ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
            Ok(BTreeMap::new())
        }
        async fn validate(&self) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    fn flaky(fail: u32, error: ProviderError) -> Arc<Flaky> {
        Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail,
            error,
        })
    }

    #[test]
    fn settings_are_parsed_within_the_budget() {
        assert_eq!(RetrySettings::parse(None, None).unwrap(), None);
        assert_eq!(RetrySettings::parse(Some(0), Some("5s")).unwrap(), None);
        assert_eq!(
            RetrySettings::parse(Some(3), Some("1m")).unwrap(),
            Some(RetrySettings {
                max_retries: 3,
                interval: Duration::from_secs(60)
            })
        );
        assert_eq!(
            RetrySettings::parse(Some(2), None)
                .unwrap()
                .unwrap()
                .interval,
            DEFAULT_INTERVAL
        );
        for (max, interval, field) in [
            (Some(-1), None, "maxRetries"),
            (Some(11), None, "maxRetries"),
            (Some(1), Some("2m"), "retryInterval"),
            (Some(1), Some("soon"), "retryInterval"),
        ] {
            let e = RetrySettings::parse(max, interval).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("spec.retrySettings.{field}")),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_others_are_not() {
        let settings = Some(RetrySettings {
            max_retries: 2,
            interval: Duration::from_millis(10),
        });
        let r = RemoteRef::default();
        let p = flaky(2, ProviderError::Transient("503".into()));
        assert!(with_retries(p.clone(), settings).get(&r).await.is_ok());
        assert_eq!(p.calls.load(Ordering::SeqCst), 3);

        let p = flaky(3, ProviderError::Transient("503".into()));
        assert!(with_retries(p.clone(), settings).get(&r).await.is_err());
        assert_eq!(p.calls.load(Ordering::SeqCst), 3);

        let p = flaky(1, ProviderError::NotFound("k".into()));
        assert!(with_retries(p.clone(), settings).get(&r).await.is_err());
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);

        let p = flaky(1, ProviderError::Transient("503".into()));
        assert!(with_retries(p.clone(), None).get(&r).await.is_err());
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }
}
