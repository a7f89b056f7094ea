//! The production [`ServiceAccounts`]: a `GET` of the ServiceAccount with the controller's
//! own client (RBAC: `get` on `serviceaccounts`), before anything is done as it.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client};

use super::{Failure, ServiceAccounts};
use crate::error::Error;

/// ServiceAccounts through the Kubernetes API.
#[derive(Clone)]
pub struct KubeServiceAccounts {
    client: Client,
}

impl KubeServiceAccounts {
    /// `client` is the controller's own (never an impersonating one).
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ServiceAccounts for KubeServiceAccounts {
    async fn exists(&self, namespace: &str, name: &str) -> Result<bool, Failure> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        api.get_metadata_opt(name)
            .await
            .map(|sa| sa.is_some())
            .map_err(|e| Failure::from(Error::kube("read it with the controller's identity", e)))
    }
}
