//! The `Component` custom resource (`deployment-orchestrator.io/v1alpha1`).
//!
//! `spec` is written by the composition controller (or a user); `status` is written by the
//! handler that claimed the Component, through the protocol engine.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::handler::ErrorCategory;

/// Default `deploymentTimeout` when the spec gives none.
pub const DEFAULT_DEPLOYMENT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default `terminationTimeout` when the spec gives none.
pub const DEFAULT_TERMINATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Desired state of a Component.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "deployment-orchestrator.io",
    version = "v1alpha1",
    kind = "Component",
    plural = "components",
    namespaced,
    status = "ComponentStatus",
    shortname = "comp",
    category = "deployment-orchestrator",
    printcolumn = r#"{"name":"Handler","type":"string","jsonPath":".spec.handler"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Name of the handler that owns this Component (e.g. `helm`).
    pub handler: String,
    /// Handler configuration, free-form; the handler validates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub config: Option<serde_json::Value>,
    /// Upper bound of the time spent in `Deploying` (e.g. `30s`, `5m`, `1h30m`). Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_timeout: Option<String>,
    /// Upper bound of the time spent in `Terminating` (e.g. `30s`, `5m`, `1h30m`). Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_timeout: Option<String>,
}

/// Lifecycle phase of a Component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Not claimed yet.
    #[default]
    Pending,
    /// Claimed by a handler; nothing applied yet.
    Claimed,
    /// The desired state is being applied / rolled out.
    Deploying,
    /// The desired state is deployed and ready.
    Ready,
    /// Deployment failed; see `message` and the `Ready` condition's reason.
    Failed,
    /// The Component is being deleted; the handler is cleaning up.
    Terminating,
    /// Cleanup failed or timed out; retry with the retry annotation.
    TerminationFailed,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 7] = [
        Phase::Pending,
        Phase::Claimed,
        Phase::Deploying,
        Phase::Ready,
        Phase::Failed,
        Phase::Terminating,
        Phase::TerminationFailed,
    ];

    /// The phase name as written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Claimed => "Claimed",
            Phase::Deploying => "Deploying",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
            Phase::Terminating => "Terminating",
            Phase::TerminationFailed => "TerminationFailed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A standard Kubernetes condition (`metav1.Condition` shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Progressing` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason; for failures, the error category (`Config`, `Auth`, …).
    pub reason: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: Time,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Observed state of a Component, written by the handler that claimed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Current lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Human-readable summary of the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Ready`, `Progressing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the handler last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the current phase started (timeouts count from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_started_at: Option<Time>,
    /// Identity of the handler instance that claimed the Component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When the Component was claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Time>,
    /// Opaque state the handler persists between reconciles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_any")]
    pub handler_status: Option<serde_json::Value>,
    /// The generation whose apply was started (apply runs once per generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// True once the handler's delete was started in `Terminating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_started: Option<bool>,
    /// The value of the retry annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retry: Option<String>,
    /// Consecutive failed attempts in the current phase (backoff exponent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// No handler call before this time (backoff after an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<Time>,
    /// Category of the last error (`Config`, `Auth`, `Network`, …), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_category: Option<ErrorCategory>,
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn preserve_unknown_any(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// An invalid duration in the spec; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: invalid duration {value:?} (expected e.g. 30s, 5m, 1h30m): {reason}")]
pub struct DurationError {
    /// `deploymentTimeout` or `terminationTimeout`.
    pub field: &'static str,
    /// The rejected value.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Parses a duration like `30s`, `5m`, `1h30m`, `1h 30m`.
pub fn parse_duration(field: &'static str, value: &str) -> Result<Duration, DurationError> {
    let err = |reason: String| DurationError {
        field,
        value: value.to_string(),
        reason,
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(err("empty".to_string()));
    }
    let d = humantime::parse_duration(trimmed).map_err(|e| err(e.to_string()))?;
    if d.is_zero() {
        return Err(err("must be greater than zero".to_string()));
    }
    Ok(d)
}

impl ComponentSpec {
    /// `deploymentTimeout`, or [`DEFAULT_DEPLOYMENT_TIMEOUT`].
    pub fn deployment_timeout(&self) -> Result<Duration, DurationError> {
        match &self.deployment_timeout {
            Some(v) => parse_duration("deploymentTimeout", v),
            None => Ok(DEFAULT_DEPLOYMENT_TIMEOUT),
        }
    }

    /// `terminationTimeout`, or [`DEFAULT_TERMINATION_TIMEOUT`].
    pub fn termination_timeout(&self) -> Result<Duration, DurationError> {
        match &self.termination_timeout {
            Some(v) => parse_duration("terminationTimeout", v),
            None => Ok(DEFAULT_TERMINATION_TIMEOUT),
        }
    }
}

impl Component {
    /// `status.phase`, `Pending` when absent.
    pub fn phase(&self) -> Phase {
        self.status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or_default()
    }

    /// The persisted handler status, if any.
    pub fn handler_status(&self) -> Option<&serde_json::Value> {
        self.status.as_ref().and_then(|s| s.handler_status.as_ref())
    }

    /// A condition of the status by type.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("f", "30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("f", "5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("f", "1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("f", "1h 30m"), Ok(Duration::from_secs(5400)));
        let e = parse_duration("deploymentTimeout", "five minutes").unwrap_err();
        assert!(e.to_string().contains("spec.deploymentTimeout"), "{e}");
        assert!(parse_duration("f", "").is_err());
        assert!(parse_duration("f", "0s").is_err());
        assert!(parse_duration("f", "10").is_err());
    }

    #[test]
    fn crd_shape() {
        let crd = Component::crd();
        let v = serde_json::to_value(&crd).unwrap();
        assert_eq!(v["metadata"]["name"], crate::names::CRD_NAME);
        let ver = &v["spec"]["versions"][0];
        assert_eq!(ver["subresources"]["status"], serde_json::json!({}));
        let cols: Vec<&str> = ver["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(cols, ["Handler", "Phase", "Ready", "Age"]);
        let spec = &ver["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["handler"]));
        assert_eq!(
            spec["properties"]["config"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let status = &ver["schema"]["openAPIV3Schema"]["properties"]["status"];
        assert_eq!(
            status["properties"]["handlerStatus"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let phases = status["properties"]["phase"]["enum"].as_array().unwrap();
        assert_eq!(phases.len(), 7);
    }

    #[test]
    fn spec_roundtrip_camel_case() {
        let c: ComponentSpec = serde_json::from_value(serde_json::json!({
            "handler": "helm",
            "config": {"a": 1},
            "deploymentTimeout": "1h30m",
            "terminationTimeout": "30s",
        }))
        .unwrap();
        assert_eq!(c.deployment_timeout(), Ok(Duration::from_secs(5400)));
        assert_eq!(c.termination_timeout(), Ok(Duration::from_secs(30)));
    }
}
