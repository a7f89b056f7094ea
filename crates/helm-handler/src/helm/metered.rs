//! A [`ReleaseEngine`] that counts the release operations of the engine it wraps
//! (`helm_handler_release_operations_total{operation, result}`): every change is counted
//! where it happens, never by a call paired with it by hand.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::errors::HelmError;
use super::{Release, ReleaseEngine, ReleaseInfo, UninstallOutcome, UpgradeOptions};
use crate::metrics::{Metrics, ReleaseOperation};

pub struct Metered {
    inner: Arc<dyn ReleaseEngine>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn new(inner: Arc<dyn ReleaseEngine>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count<T, E>(&self, operation: ReleaseOperation, result: Result<T, E>) -> Result<T, E> {
        self.metrics
            .count_release_operation(operation, result.is_ok());
        result
    }
}

#[async_trait]
impl ReleaseEngine for Metered {
    async fn upgrade_install(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
        options: &UpgradeOptions,
    ) -> Result<ReleaseInfo, HelmError> {
        let result = self
            .inner
            .upgrade_install(release, chart, values, options)
            .await;
        if options.dry_run_client {
            return result;
        }
        let operation = if options.installs {
            ReleaseOperation::install
        } else {
            ReleaseOperation::upgrade
        };
        self.count(operation, result)
    }

    async fn status(&self, release: &Release) -> Result<Option<ReleaseInfo>, HelmError> {
        self.inner.status(release).await
    }

    async fn get_manifest(&self, release: &Release) -> Result<String, HelmError> {
        self.inner.get_manifest(release).await
    }

    async fn uninstall(&self, release: &Release) -> Result<UninstallOutcome, HelmError> {
        let result = self.inner.uninstall(release).await;
        self.count(ReleaseOperation::uninstall, result)
    }

    async fn template(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
    ) -> Result<String, HelmError> {
        self.inner.template(release, chart, values).await
    }

    async fn rollback(&self, release: &Release, revision: Option<u64>) -> Result<(), HelmError> {
        let result = self.inner.rollback(release, revision).await;
        self.count(ReleaseOperation::rollback, result)
    }
}
