//! The seam between configuration and fetching: a [`ChartSource`] is built per reconcile
//! from a [`SourceSpec`] plus the secrets it references, and `locate()` returns a chart in
//! the local cache. Nothing downstream of `locate()` knows whether a chart came from HTTP or OCI.

use std::path::PathBuf;

use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::Result;

/// A chart archive in the local cache, ready for `helm`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocatedChart {
    /// The `.tgz` in the cache. Its sha256 is `digest`.
    pub path: PathBuf,
    pub digest: Digest,
    /// From the archive's `Chart.yaml`.
    pub name: String,
    pub version: String,
    /// True when no chart bytes were downloaded for this locate.
    pub cache_hit: bool,
    /// Set when `name`/`version` are not what the reference asked for (a mirrored chart, a
    /// short tag): the chart is used as helm uses it, and the caller says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differs_from_reference: Option<crate::chart_identity::ReferenceMismatch>,
    /// The signature check passed (`source.verify`); `None` when none was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<crate::verify::Verified>,
}

impl LocatedChart {
    /// A located chart from the archive checks' findings, compared with what was requested.
    pub(crate) fn new(
        path: PathBuf,
        meta: crate::archive::ChartMeta,
        requested: &crate::chart_identity::Requested,
        cache_hit: bool,
    ) -> Self {
        LocatedChart {
            differs_from_reference: requested.compare(&meta.name, &meta.version),
            path,
            digest: meta.digest,
            name: meta.name,
            version: meta.version,
            cache_hit,
            verified: None,
        }
    }
}

/// The secrets a source needs, already resolved (memory only).
#[derive(Debug, Clone, Default)]
pub struct SourceAuth {
    pub credentials: Option<Credentials>,
    /// PEM bundle from `caSecretRef` (key `ca.crt`).
    pub ca_pem: Option<Vec<u8>>,
    /// The public keys of `verify.secretRef`.
    pub cosign_keys: Option<crate::verify::CosignKeys>,
}

/// Something that can put a chart in the cache.
#[async_trait::async_trait]
pub trait ChartSource: Send + Sync {
    async fn locate(&self) -> Result<LocatedChart>;

    /// Secret-free description for logs and messages.
    fn describe(&self) -> String;
}
