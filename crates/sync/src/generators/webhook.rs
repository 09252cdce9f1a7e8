//! ESO's `Webhook` generator (`ESO:pkg/generator/webhook`): the `webhook` provider's request
//! (same fields, templates, `secrets` labelled `external-secrets.io/type: webhook`, budgets of
//! the controller's `--webhook-*` flags), with no `remoteRef`; the members of the JSON answer
//! (after `result.jsonPath`) are the data.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use super::{Generator, relabel};
use crate::calls::Calls;
use crate::webhook::{Factory, Limits};
use crate::{CredentialSource, ProviderError, SecretBytes, StoreScope};

/// The `Webhook` generator within the operator's [`Limits`].
#[derive(Debug, Default)]
pub struct Webhook {
    /// The budgets.
    pub limits: Limits,
    /// Where its requests are counted.
    pub calls: Calls,
}

#[async_trait]
impl Generator for Webhook {
    fn kind(&self) -> &'static str {
        "Webhook"
    }

    fn cluster_spec_key(&self) -> &'static str {
        "webhookSpec"
    }

    async fn generate(
        &self,
        spec: &Value,
        scope: &StoreScope,
        creds: &dyn CredentialSource,
    ) -> Result<BTreeMap<String, SecretBytes>, ProviderError> {
        Factory {
            limits: self.limits,
            calls: self.calls.clone(),
        }
        .generate(spec, scope, creds)
        .await
        .map_err(|e| relabel(e, "spec.provider.webhook", "spec"))
    }
}
