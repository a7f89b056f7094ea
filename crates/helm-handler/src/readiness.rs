//! Readiness of a release's objects: a pure function from observed objects to a verdict.
//!
//! [`assess`] judges each object by its kind ([`assess_object`]) and aggregates: any failed
//! object → [`Verdict::Failed`]; else any progressing → [`Verdict::Progressing`]; else
//! [`Verdict::Ready`]. Reasons name the object as `Kind/namespace/name` (`Kind/name` for
//! cluster-scoped objects).
//!
//! Rules per kind (see docs/release-engine.md for the user-facing table):
//! - every kind: `metadata.deletionTimestamp` set → progressing (being deleted);
//!   `status.observedGeneration < metadata.generation` → progressing (not observed yet).
//! - Deployment: paused → ready; `Progressing=False/ProgressDeadlineExceeded` → failed;
//!   `updatedReplicas`, `availableReplicas` == `spec.replicas` and no old replicas left.
//! - StatefulSet: `readyReplicas` == replicas; with `RollingUpdate`, `updatedReplicas` ≥
//!   replicas − partition and (partition 0) `currentRevision == updateRevision`.
//! - DaemonSet: `numberReady` == `desiredNumberScheduled` (== `updatedNumberScheduled` with
//!   `RollingUpdate`).
//! - ReplicaSet: `readyReplicas`/`availableReplicas` == `spec.replicas`.
//! - Job: `Complete=True` → ready; `Failed=True` → failed; suspended → ready.
//! - Pod: `Succeeded` → ready; `Failed` → failed; a container waiting in CrashLoopBackOff,
//!   ImagePullBackOff, ErrImagePull, InvalidImageName, CreateContainerConfigError or
//!   CreateContainerError → failed; `Ready=True` → ready.
//! - PersistentVolumeClaim: `Bound` → ready, `Lost` → failed.
//! - Service: `LoadBalancer` needs `status.loadBalancer.ingress`; other types ready.
//! - CustomResourceDefinition: `Established=True` → ready; `NamesAccepted=False` → failed.
//! - any other object with a `Ready` condition: `True` → ready, `False` → failed when the
//!   reason says so (…Failed, …Error, Invalid…), else progressing; `Stalled=True` → failed.
//! - anything else: ready once it exists.

use std::fmt;

use serde_json::Value;

pub mod fetch;
mod kinds;
pub mod manifest;

pub use fetch::{
    ApiResolver, FetchError, Observed, check_release, fetch_objects, share_discovery_process_wide,
};
pub use manifest::{ManifestError, ObjectRef, manifest_objects, parse_manifest};

/// How many object reasons an aggregated verdict lists before "and N more".
pub const MAX_REASONS: usize = 3;

/// Readiness of one object or of a whole release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    Progressing { reason: String },
    Failed { reason: String },
}

impl Verdict {
    pub fn is_ready(&self) -> bool {
        matches!(self, Verdict::Ready)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Verdict::Failed { .. })
    }

    /// The reason (empty for `Ready`).
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Ready => "",
            Verdict::Progressing { reason } | Verdict::Failed { reason } => reason,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ready => f.write_str("ready"),
            Verdict::Progressing { reason } => write!(f, "progressing: {reason}"),
            Verdict::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// `Kind/namespace/name` (or `Kind/name`) of an observed object.
pub fn object_name(object: &Value) -> String {
    let s = |ptr: &str| object.pointer(ptr).and_then(Value::as_str).unwrap_or("");
    let kind = match s("/kind") {
        "" => "Object",
        k => k,
    };
    let name = match s("/metadata/name") {
        "" => "<unnamed>",
        n => n,
    };
    match s("/metadata/namespace") {
        "" => format!("{kind}/{name}"),
        ns => format!("{kind}/{ns}/{name}"),
    }
}

/// The verdict for one observed object, its reason prefixed with the object's name.
pub fn assess_object(object: &Value) -> Verdict {
    match kinds::assess(object) {
        kinds::State::Ready => Verdict::Ready,
        kinds::State::Progressing(why) => Verdict::Progressing {
            reason: format!("{}: {why}", object_name(object)),
        },
        kinds::State::Failed(why) => Verdict::Failed {
            reason: format!("{}: {why}", object_name(object)),
        },
    }
}

/// Aggregates per-object verdicts: failed beats progressing beats ready.
pub fn aggregate(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut failed = Vec::new();
    let mut progressing = Vec::new();
    for v in verdicts {
        match v {
            Verdict::Ready => {}
            Verdict::Progressing { reason } => progressing.push(reason),
            Verdict::Failed { reason } => failed.push(reason),
        }
    }
    if !failed.is_empty() {
        Verdict::Failed {
            reason: join_reasons(&failed),
        }
    } else if !progressing.is_empty() {
        Verdict::Progressing {
            reason: join_reasons(&progressing),
        }
    } else {
        Verdict::Ready
    }
}

fn join_reasons(reasons: &[String]) -> String {
    let mut text = reasons
        .iter()
        .take(MAX_REASONS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if reasons.len() > MAX_REASONS {
        text.push_str(&format!("; and {} more", reasons.len() - MAX_REASONS));
    }
    text
}

/// The verdict of a set of observed objects (pure: no I/O).
pub fn assess(objects: &[Value]) -> Verdict {
    aggregate(objects.iter().map(assess_object))
}

/// The verdict of fetched objects, counting missing ones as progressing ("not found yet").
pub fn assess_observed(observed: &[Observed]) -> Verdict {
    aggregate(observed.iter().map(|o| match o {
        Observed::Present(object) => assess_object(object),
        Observed::Missing(r) => Verdict::Progressing {
            reason: format!("{r}: not found yet"),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aggregation_and_names() {
        let cm =
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"ns"}});
        let ns = json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"apps"}});
        assert_eq!(object_name(&cm), "ConfigMap/ns/c");
        assert_eq!(object_name(&ns), "Namespace/apps");
        assert_eq!(assess(&[cm.clone(), ns.clone()]), Verdict::Ready);
        assert_eq!(assess(&[]), Verdict::Ready);

        let p = |r: &str| Verdict::Progressing { reason: r.into() };
        let f = |r: &str| Verdict::Failed { reason: r.into() };
        assert_eq!(aggregate([Verdict::Ready, p("a"), p("b")]), p("a; b"));
        assert_eq!(aggregate([p("a"), f("x"), p("b")]), f("x"));
        assert_eq!(
            aggregate([p("1"), p("2"), p("3"), p("4"), p("5")]),
            p("1; 2; 3; and 2 more")
        );
    }

    #[test]
    fn missing_objects_progress() {
        let r = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("ns".into()),
            name: "web".into(),
        };
        let v = assess_observed(&[Observed::Missing(r)]);
        assert_eq!(
            v,
            Verdict::Progressing {
                reason: "Deployment/ns/web: not found yet".into()
            }
        );
    }
}
