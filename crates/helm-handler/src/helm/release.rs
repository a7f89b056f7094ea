//! Releases and what helm says about them (`-o json`).
//!
//! helm 3 and helm 4 print the same release object with small differences: helm 4 adds
//! `apply_method`, helm 3 has `info.deleted`; `status -o json` omits `chart` in both (only
//! `upgrade`/`install -o json` carry `chart.metadata`). Parsing is tolerant: only `name`,
//! `namespace`, `version` and `info.status` are required.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::HelmError;
use crate::config::{NamespaceName, ReleaseName};
use crate::identity::Identity;

/// A release (name and namespace, valid by construction: helm is never handed a name it
/// would refuse or read as a flag), and who acts on it: every helm command and every read of
/// its objects runs as [`Release::identity`] (tenancy: see [`crate::identity`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Release {
    pub name: ReleaseName,
    pub namespace: NamespaceName,
    /// The controller's own identity unless set with [`Release::acting_as`].
    pub identity: Identity,
}

impl Release {
    pub fn new(name: ReleaseName, namespace: NamespaceName) -> Release {
        Release {
            name,
            namespace,
            identity: Identity::Controller,
        }
    }

    /// A release from names that were not validated yet (a recorded status, which anyone
    /// who may edit the Component can change): what helm would refuse or misread is an
    /// [`HelmError::InvalidRelease`].
    pub fn parse(name: &str, namespace: &str) -> Result<Release, HelmError> {
        let invalid = |field| move |reason| HelmError::InvalidRelease { field, reason };
        Ok(Release::new(
            ReleaseName::new(name).map_err(invalid("name"))?,
            NamespaceName::new(namespace).map_err(invalid("namespace"))?,
        ))
    }

    /// The same release, acted on as `identity`.
    pub fn acting_as(mut self, identity: Identity) -> Release {
        self.identity = identity;
        self
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// helm's release status (`info.status`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReleaseStatus {
    Unknown,
    Deployed,
    Uninstalled,
    Superseded,
    Failed,
    Uninstalling,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
    /// A status this engine does not know (a newer helm).
    Other(String),
}

impl ReleaseStatus {
    pub fn parse(s: &str) -> ReleaseStatus {
        match s {
            "unknown" => ReleaseStatus::Unknown,
            "deployed" => ReleaseStatus::Deployed,
            "uninstalled" => ReleaseStatus::Uninstalled,
            "superseded" => ReleaseStatus::Superseded,
            "failed" => ReleaseStatus::Failed,
            "uninstalling" => ReleaseStatus::Uninstalling,
            "pending-install" => ReleaseStatus::PendingInstall,
            "pending-upgrade" => ReleaseStatus::PendingUpgrade,
            "pending-rollback" => ReleaseStatus::PendingRollback,
            other => ReleaseStatus::Other(other.to_string()),
        }
    }

    /// helm's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ReleaseStatus::Unknown => "unknown",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Uninstalled => "uninstalled",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Uninstalling => "uninstalling",
            ReleaseStatus::PendingInstall => "pending-install",
            ReleaseStatus::PendingUpgrade => "pending-upgrade",
            ReleaseStatus::PendingRollback => "pending-rollback",
            ReleaseStatus::Other(s) => s,
        }
    }

    /// An operation is (or was, if helm crashed) under way: install, upgrade, rollback.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            ReleaseStatus::PendingInstall
                | ReleaseStatus::PendingUpgrade
                | ReleaseStatus::PendingRollback
        )
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The chart of a release (only in `upgrade`/`install` output, not in `status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartInfo {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
}

/// What helm reports about a release revision.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    pub name: String,
    pub namespace: String,
    /// helm's `version`: the revision number, 1 for the first install.
    pub revision: u64,
    pub status: ReleaseStatus,
    pub description: String,
    pub first_deployed: Option<String>,
    pub last_deployed: Option<String>,
    pub chart: Option<ChartInfo>,
    pub notes: Option<String>,
    /// The rendered manifest of the revision (may be empty when helm omits it).
    pub manifest: String,
    /// helm 4's `apply_method`: `ssa` (server-side apply) or `csa`; helm 3 has none.
    pub apply_method: Option<String>,
}

impl fmt::Debug for ReleaseInfo {
    // The manifest can be megabytes; show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseInfo")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("revision", &self.revision)
            .field("status", &self.status)
            .field("description", &self.description)
            .field("first_deployed", &self.first_deployed)
            .field("last_deployed", &self.last_deployed)
            .field("chart", &self.chart)
            .field("manifest_bytes", &self.manifest.len())
            .finish_non_exhaustive()
    }
}

impl ReleaseInfo {
    /// Parses helm's `-o json` release object (helm 3 or 4).
    pub fn from_json(operation: &'static str, text: &str) -> Result<ReleaseInfo, HelmError> {
        let bad = |message: String| HelmError::BadOutput { operation, message };
        let v: Value = serde_json::from_str(text.trim())
            .map_err(|e| bad(format!("not JSON ({e}): {}", super::errors::cap(text, 200))))?;
        let str_at = |ptr: &str| v.pointer(ptr).and_then(Value::as_str).map(str::to_string);
        let name = str_at("/name").ok_or_else(|| bad("no \"name\"".into()))?;
        let namespace = str_at("/namespace").ok_or_else(|| bad("no \"namespace\"".into()))?;
        let revision = v
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no numeric \"version\" (revision)".into()))?;
        let status = str_at("/info/status")
            .map(|s| ReleaseStatus::parse(&s))
            .ok_or_else(|| bad("no \"info.status\"".into()))?;
        let chart = match (
            str_at("/chart/metadata/name"),
            str_at("/chart/metadata/version"),
        ) {
            (Some(name), Some(version)) => Some(ChartInfo {
                name,
                version,
                app_version: str_at("/chart/metadata/appVersion").filter(|s| !s.is_empty()),
            }),
            _ => None,
        };
        Ok(ReleaseInfo {
            name,
            namespace,
            revision,
            status,
            description: str_at("/info/description").unwrap_or_default(),
            first_deployed: str_at("/info/first_deployed"),
            last_deployed: str_at("/info/last_deployed"),
            chart,
            notes: str_at("/info/notes").filter(|s| !s.is_empty()),
            manifest: str_at("/manifest").unwrap_or_default(),
            apply_method: str_at("/apply_method").filter(|s| !s.is_empty()),
        })
    }
}

/// Result of an uninstall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// helm removed the release.
    Uninstalled,
    /// There was no such release (nothing to do).
    AlreadyGone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names() {
        assert!(Release::parse("my-app", "apps").is_ok());
        assert!(Release::parse("my.app-2", "a").is_ok());
        for bad in ["", "-rf", "My", "a_b", "x-", &"a".repeat(54)] {
            let err = Release::parse(bad, "ns").unwrap_err().to_string();
            assert!(err.starts_with("invalid release name: "), "{bad:?}: {err}");
        }
        assert!(Release::parse("ok", "a.b").is_err());
        let err = Release::parse("ok", "--kubeconfig")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid release namespace: \"--kubeconfig\""),
            "{err}"
        );
    }

    #[test]
    fn status_round_trip() {
        for s in [
            "unknown",
            "deployed",
            "uninstalled",
            "superseded",
            "failed",
            "uninstalling",
            "pending-install",
            "pending-upgrade",
            "pending-rollback",
            "brand-new",
        ] {
            assert_eq!(ReleaseStatus::parse(s).as_str(), s);
        }
        assert!(ReleaseStatus::parse("pending-upgrade").is_pending());
        assert!(!ReleaseStatus::parse("deployed").is_pending());
    }

    #[test]
    fn minimal_and_bad_json() {
        let info = ReleaseInfo::from_json(
            "status",
            r#"{"name":"a","namespace":"b","version":3,"info":{"status":"failed"}}"#,
        )
        .unwrap();
        assert_eq!(info.revision, 3);
        assert_eq!(info.status, ReleaseStatus::Failed);
        assert!(info.chart.is_none());
        assert!(info.apply_method.is_none());
        let info = ReleaseInfo::from_json(
            "status",
            r#"{"name":"a","namespace":"b","version":1,"info":{"status":"deployed"},"apply_method":"ssa"}"#,
        )
        .unwrap();
        assert_eq!(info.apply_method.as_deref(), Some("ssa"));
        assert!(ReleaseInfo::from_json("status", "Error: nope").is_err());
        assert!(ReleaseInfo::from_json("status", r#"{"name":"a"}"#).is_err());
    }
}
