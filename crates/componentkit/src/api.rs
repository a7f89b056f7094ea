//! The few API operations the engine needs, as a trait with two implementations:
//! [`crate::kube_api::KubeComponentApi`] (a real API server) and
//! [`crate::memory::InMemoryApi`] (tests, with API-server semantics).

use async_trait::async_trait;

use crate::crd::Component;
use crate::handler::ErrorCategory;

/// An API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Stale resourceVersion or already exists (HTTP 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The object does not exist (HTTP 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request was rejected as invalid (HTTP 400/422).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The request was forbidden (HTTP 403): the controller's RBAC is wrong, not the
    /// Component, so `Auth` rather than `Config`. Printed `rejected: …`, as when 403 was a
    /// [`ApiError::Rejected`].
    #[error("rejected: {0}")]
    Forbidden(String),
    /// Refused locally: this replica no longer leads (see [`crate::leadership`]).
    #[error("{0}")]
    NotLeader(String),
    /// Anything else (network, 5xx, timeouts, 401), with the category
    /// [`crate::kube_error::kube_category`] gives it.
    #[error("API error: {1}")]
    Other(ErrorCategory, String),
}

impl ApiError {
    /// The error category, the same as [`crate::kube_error::kube_category`]'s for the kube
    /// error it came from.
    pub fn category(&self) -> ErrorCategory {
        match self {
            ApiError::Conflict(_) | ApiError::NotLeader(_) => ErrorCategory::Conflict,
            ApiError::NotFound(_) => ErrorCategory::NotFound,
            ApiError::Rejected(_) => ErrorCategory::Config,
            ApiError::Forbidden(_) => ErrorCategory::Auth,
            ApiError::Other(category, _) => *category,
        }
    }
}

/// A Kubernetes Event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// A Kubernetes Event about a Component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentEvent {
    pub type_: EventType,
    /// PascalCase reason (the new phase, `Deleted`, `RetryRequested`, …).
    pub reason: String,
    /// PascalCase action (`Claim`, `Apply`, `Delete`, …).
    pub action: String,
    /// Human-readable note.
    pub note: String,
}

/// API operations on Components used by the engine.
#[async_trait]
pub trait ComponentApi: Send + Sync + 'static {
    /// Reads a Component; `None` when it does not exist.
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<Component>, ApiError>;

    /// Sets `metadata.finalizers`, guarded by `component`'s resourceVersion (stale → `Conflict`).
    /// Returns the updated object, or `None` when removing the last finalizer deleted it.
    async fn set_finalizers(
        &self,
        component: &Component,
        finalizers: Vec<String>,
    ) -> Result<Option<Component>, ApiError>;

    /// Applies a JSON merge patch `{"status": …}` to the status subresource.
    async fn patch_status(
        &self,
        namespace: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<Component, ApiError>;

    /// Publishes an Event about `component`.
    async fn publish_event(
        &self,
        component: &Component,
        event: &ComponentEvent,
    ) -> Result<(), ApiError>;
}
