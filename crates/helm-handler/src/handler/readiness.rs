//! The production [`ReadinessProbe`]: parses the release manifest, fetches its objects with
//! kube-rs and judges them with [`crate::readiness`].

use async_trait::async_trait;
use kube::Client;

use super::{Failure, Readiness, ReadinessProbe};
use crate::readiness::{Verdict, check_release};

/// Readiness through the Kubernetes API.
#[derive(Clone)]
pub struct KubeReadiness {
    client: Client,
}

impl KubeReadiness {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ReadinessProbe for KubeReadiness {
    async fn assess(&self, namespace: &str, manifest: &str) -> Result<Readiness, Failure> {
        let verdict = check_release(self.client.clone(), manifest, namespace)
            .await
            .map_err(|e| Failure::new(e.category(), format!("readiness: {e}")))?;
        Ok(match verdict {
            Verdict::Ready => Readiness::Ready,
            Verdict::Progressing { reason } => Readiness::Progressing(reason),
            Verdict::Failed { reason } => Readiness::Failed(reason),
        })
    }
}
