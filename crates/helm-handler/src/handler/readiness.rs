//! The production [`ReadinessProbe`]: parses the release manifest, fetches its objects with
//! kube-rs — as the release's identity — and judges them with [`crate::readiness`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{Failure, Readiness, ReadinessProbe};
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
    async fn assess(&self, release: &Release, manifest: &str) -> Result<Readiness, Failure> {
        let client = self.clients.client(&release.identity)?;
        let verdict = check_release(client, manifest, &release.namespace)
            .await
            .map_err(|e| Failure::new(e.category(), format!("readiness: {e}")))?;
        Ok(match verdict {
            Verdict::Ready => Readiness::Ready,
            Verdict::Progressing { reason } => Readiness::Progressing(reason),
            Verdict::Failed { reason } => Readiness::Failed(reason),
        })
    }
}
