//! The production [`ReadinessProbe`]: parses the release manifest, fetches its objects with
//! kube-rs — as the release's identity — and judges them with [`crate::readiness`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{Failure, ReadinessProbe};
use crate::helm::Release;
use crate::impersonation::KubeClients;
use crate::readiness::{Verdict, check_release};

/// Readiness through the Kubernetes API, read as the release's identity.
#[derive(Clone)]
pub struct KubeReadiness {
    clients: Arc<KubeClients>,
}

impl KubeReadiness {
    pub fn new(clients: Arc<KubeClients>) -> Self {
        Self { clients }
    }
}

#[async_trait]
impl ReadinessProbe for KubeReadiness {
    async fn assess(&self, release: &Release, manifest: &str) -> Result<Verdict, Failure> {
        let client = self.clients.client(&release.identity)?;
        check_release(client, manifest, &release.namespace)
            .await
            .map_err(|e| Failure::new(e.category(), format!("readiness: {e}")))
    }
}
