//! Every name of the Component API in one place: group, version, kind, finalizers,
//! annotations, condition types, condition reasons and event reasons.

/// API group of the `Component` resource.
pub const GROUP: &str = "deployment-orchestrator.io";
/// API version of the `Component` resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of the `Component` resource.
pub const API_VERSION: &str = "deployment-orchestrator.io/v1alpha1";
/// Kind of the resource.
pub const KIND: &str = "Component";
/// Plural resource name.
pub const PLURAL: &str = "components";
/// Name of the CustomResourceDefinition.
pub const CRD_NAME: &str = "components.deployment-orchestrator.io";

/// Name of the Helm handler (`spec.handler` value it claims).
pub const HELM_HANDLER: &str = "helm";

/// Suffix of every handler's lifecycle finalizer: `<handler>.deployment-orchestrator.io/lifecycle`.
pub const LIFECYCLE_FINALIZER_SUFFIX: &str = ".deployment-orchestrator.io/lifecycle";
/// Finalizer held by the composition controller; deletion waits while it is present.
pub const COORDINATION_FINALIZER: &str = "composition.deployment-orchestrator.io/coordination";
/// Prefix that marks the composition controller's finalizers (never a handler's claim).
pub const COMPOSITION_FINALIZER_PREFIX: &str = "composition.";
/// Annotation whose (any new) value retries a `Failed` / `TerminationFailed` Component.
pub const RETRY_ANNOTATION: &str = "deployment-orchestrator.io/retry";

/// The lifecycle finalizer of a handler: `helm` → `helm.deployment-orchestrator.io/lifecycle`.
pub fn lifecycle_finalizer(handler: &str) -> String {
    format!("{handler}{LIFECYCLE_FINALIZER_SUFFIX}")
}

/// True when `finalizer` is some handler's lifecycle finalizer (`*.deployment-orchestrator.io/lifecycle`)
/// and not the composition controller's.
pub fn is_lifecycle_finalizer(finalizer: &str) -> bool {
    finalizer.ends_with(LIFECYCLE_FINALIZER_SUFFIX)
        && finalizer.len() > LIFECYCLE_FINALIZER_SUFFIX.len()
        && !finalizer.starts_with(COMPOSITION_FINALIZER_PREFIX)
}

/// True when `finalizer` is the lifecycle finalizer of a handler other than `handler`.
pub fn is_foreign_lifecycle_finalizer(finalizer: &str, handler: &str) -> bool {
    is_lifecycle_finalizer(finalizer) && finalizer != lifecycle_finalizer(handler)
}

/// Condition types written to `status.conditions`.
pub mod condition {
    /// The desired state is deployed and ready.
    pub const READY: &str = "Ready";
    /// The handler is working towards the desired state (claiming, deploying, terminating).
    pub const PROGRESSING: &str = "Progressing";
    /// Something went wrong: a permanent failure, or transient errors being retried.
    pub const DEGRADED: &str = "Degraded";

    /// Condition status values.
    pub const TRUE: &str = "True";
    pub const FALSE: &str = "False";
    pub const UNKNOWN: &str = "Unknown";
}

/// Reasons used in conditions and Events. Failures use the error category name
/// (`Config`, `Auth`, `NotFound`, …, see `ErrorCategory::as_str`) as the reason.
pub mod reason {
    pub const PENDING: &str = "Pending";
    pub const CLAIMED: &str = "Claimed";
    pub const DEPLOYING: &str = "Deploying";
    pub const READY: &str = "Ready";
    pub const FAILED: &str = "Failed";
    pub const TERMINATING: &str = "Terminating";
    pub const TERMINATION_FAILED: &str = "TerminationFailed";
    /// Deletion waits for the composition controller's coordination finalizer.
    pub const WAITING_FOR_COORDINATION: &str = "WaitingForCoordination";
    /// A transient error is being retried with backoff.
    pub const RETRYING: &str = "Retrying";
    /// The retry annotation was changed and acted on.
    pub const RETRY_REQUESTED: &str = "RetryRequested";
    /// A new generation of the spec is being applied.
    pub const SPEC_CHANGED: &str = "SpecChanged";
    /// Cleanup finished and the lifecycle finalizer was removed.
    pub const DELETED: &str = "Deleted";
    /// A phase timeout (`deploymentTimeout` / `terminationTimeout`) was exceeded.
    pub const TIMEOUT: &str = "Timeout";
    /// Everything is fine (used for `Degraded=False`).
    pub const AS_EXPECTED: &str = "AsExpected";
}

/// Lease used for leader election, defaults.
pub mod lease {
    /// Default Lease name (a handler usually uses `<handler>-handler-leader`).
    pub fn default_name(handler: &str) -> String {
        format!("{handler}-handler-leader")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_names() {
        assert_eq!(
            lifecycle_finalizer(HELM_HANDLER),
            "helm.deployment-orchestrator.io/lifecycle"
        );
        assert!(is_lifecycle_finalizer(
            "helm.deployment-orchestrator.io/lifecycle"
        ));
        assert!(!is_lifecycle_finalizer(COORDINATION_FINALIZER));
        assert!(!is_lifecycle_finalizer(
            "composition.deployment-orchestrator.io/lifecycle"
        ));
        assert!(!is_lifecycle_finalizer(
            ".deployment-orchestrator.io/lifecycle"
        ));
        assert!(!is_lifecycle_finalizer("foregroundDeletion"));
        assert!(is_foreign_lifecycle_finalizer(
            "kustomize.deployment-orchestrator.io/lifecycle",
            "helm"
        ));
        assert!(!is_foreign_lifecycle_finalizer(
            "helm.deployment-orchestrator.io/lifecycle",
            "helm"
        ));
        assert_eq!(API_VERSION, format!("{GROUP}/{VERSION}"));
        assert_eq!(CRD_NAME, format!("{PLURAL}.{GROUP}"));
    }
}
