//! The `Handler` trait: what a handler (e.g. the Helm handler) implements on top of the
//! protocol engine.
//!
//! The engine calls `apply` once per desired state (once per `metadata.generation`, and again
//! after a retry or a transient failure), then `check_applied` on every requeue until it
//! returns [`Outcome::Done`]. On deletion it calls `delete` once, then `check_deleted` until
//! done. Every call gets the Component and the handler status persisted by the previous call,
//! and returns an [`Outcome`] plus the handler status to persist. Operations must be
//! idempotent: after a crash the engine may call `apply`/`delete` again for the same state.
//! None of them should block on a rollout: start the work, return `InProgress`, observe later.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::crd::Component;

/// Category of a handler error; the engine decides retry vs fail from it alone. One type
/// for every crate (see [`error_category`]), re-exported here where handlers expect it.
pub use error_category::{ErrorCategory, RetryClass};

/// What a handler operation is given.
#[derive(Clone, Debug)]
pub struct HandlerContext {
    /// The Component, as read at the start of this reconcile.
    pub component: Arc<Component>,
    /// The handler status persisted by the previous operation (`status.handlerStatus`).
    pub handler_status: Option<serde_json::Value>,
}

impl HandlerContext {
    /// A context for `component`, with its persisted handler status.
    pub fn new(component: Arc<Component>) -> Self {
        let handler_status = component.handler_status().cloned();
        Self {
            component,
            handler_status,
        }
    }

    /// `metadata.namespace` (empty when absent).
    pub fn namespace(&self) -> &str {
        self.component.metadata.namespace.as_deref().unwrap_or("")
    }

    /// `metadata.name` (empty when absent).
    pub fn name(&self) -> &str {
        self.component.metadata.name.as_deref().unwrap_or("")
    }

    /// `metadata.generation` (0 when absent).
    pub fn generation(&self) -> i64 {
        self.component.metadata.generation.unwrap_or(0)
    }

    /// `spec.config`.
    pub fn config(&self) -> Option<&serde_json::Value> {
        self.component.spec.config.as_ref()
    }
}

/// Result of a handler operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The operation is complete (applied and ready / deleted).
    Done,
    /// Work is under way; check again after `requeue_after`.
    InProgress {
        requeue_after: Duration,
        message: String,
    },
    /// The operation failed; the category decides retry vs fail.
    Failed {
        category: ErrorCategory,
        message: String,
    },
}

/// An [`Outcome`] plus the handler status to persist.
///
/// `handler_status: None` keeps the persisted handler status unchanged; `Some(v)` replaces it
/// (`Some(Value::Null)` clears it). Keys whose value is `null` inside `v` are not stored
/// (status is written with JSON merge patches).
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerOutcome {
    pub outcome: Outcome,
    pub handler_status: Option<serde_json::Value>,
    /// Conditions the handler owns (e.g. `Drifted`), written next to the engine's; a
    /// condition not mentioned keeps its last value.
    pub conditions: Vec<HandlerCondition>,
    /// Events to publish on the Component.
    pub events: Vec<HandlerEvent>,
}

/// A condition set by the handler (`lastTransitionTime` moves only when `status` changes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerCondition {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// An Event the handler asks the engine to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerEvent {
    pub type_: crate::api::EventType,
    pub reason: String,
    pub message: String,
}

impl HandlerOutcome {
    /// `Done`, keeping the handler status.
    pub fn done() -> Self {
        Self {
            outcome: Outcome::Done,
            handler_status: None,
            conditions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// `InProgress`, keeping the handler status.
    pub fn in_progress(requeue_after: Duration, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::InProgress {
                requeue_after,
                message: message.into(),
            },
            handler_status: None,
            conditions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// `Failed`, keeping the handler status.
    pub fn failed(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Failed {
                category,
                message: message.into(),
            },
            handler_status: None,
            conditions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Sets a handler-owned condition.
    pub fn with_condition(mut self, condition: HandlerCondition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds an Event to publish.
    pub fn with_event(mut self, event: HandlerEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Sets the handler status to persist.
    pub fn with_status(mut self, handler_status: serde_json::Value) -> Self {
        self.handler_status = Some(handler_status);
        self
    }
}

/// A handler: deploys and removes what a Component describes.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The handler name: claims Components whose `spec.handler` equals it, and owns the
    /// finalizer `<name>.deployment-orchestrator.io/lifecycle`.
    fn name(&self) -> &str;

    /// Start deploying the desired state (called once per generation, and on retries).
    async fn apply(&self, cx: &HandlerContext) -> HandlerOutcome;

    /// Observe a deployment started by `apply`.
    async fn check_applied(&self, cx: &HandlerContext) -> HandlerOutcome;

    /// Start removing what was deployed (idempotent: nothing deployed → `Done`).
    async fn delete(&self, cx: &HandlerContext) -> HandlerOutcome;

    /// Observe a removal started by `delete`.
    async fn check_deleted(&self, cx: &HandlerContext) -> HandlerOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let transient: Vec<_> = ErrorCategory::ALL
            .iter()
            .filter(|c| c.is_transient())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            transient,
            ["Network", "Io", "Conflict", "Timeout", "Internal"]
        );
        assert!(ErrorCategory::Auth.is_retried_slowly());
        assert!(ErrorCategory::NotFound.is_retried_slowly());
        assert_eq!(ErrorCategory::Config.retry_class(), RetryClass::Permanent);
        assert_eq!(
            serde_json::to_value(ErrorCategory::NotFound).unwrap(),
            serde_json::json!("NotFound")
        );
    }
}
