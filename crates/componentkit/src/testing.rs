//! A scripted [`Handler`] for tests (of the engine, and of code built on it): records every
//! call and returns queued outcomes, falling back to per-operation defaults.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::decision::Operation;
use crate::handler::{Handler, HandlerContext, HandlerOutcome};

/// One recorded call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub op: Operation,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub handler_status: Option<serde_json::Value>,
}

/// A handler returning scripted outcomes.
pub struct ScriptedHandler {
    name: String,
    script: Mutex<HashMap<Operation, VecDeque<HandlerOutcome>>>,
    defaults: Mutex<HashMap<Operation, HandlerOutcome>>,
    calls: Mutex<Vec<Call>>,
}

impl ScriptedHandler {
    /// Defaults: `apply` → in progress (requeue 5s), `check_applied` → done, `delete` → in
    /// progress (requeue 5s), `check_deleted` → done.
    pub fn new(name: &str) -> Self {
        let defaults = HashMap::from([
            (
                Operation::Apply,
                HandlerOutcome::in_progress(Duration::from_secs(5), "rolling out"),
            ),
            (Operation::CheckApplied, HandlerOutcome::done()),
            (
                Operation::Delete,
                HandlerOutcome::in_progress(Duration::from_secs(5), "removing"),
            ),
            (Operation::CheckDeleted, HandlerOutcome::done()),
        ]);
        Self {
            name: name.to_string(),
            script: Mutex::new(HashMap::new()),
            defaults: Mutex::new(defaults),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Queues an outcome for the next call of `op`.
    pub fn push(&self, op: Operation, outcome: HandlerOutcome) {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(op)
            .or_default()
            .push_back(outcome);
    }

    /// Sets the outcome returned for `op` when nothing is queued.
    pub fn set_default(&self, op: Operation, outcome: HandlerOutcome) {
        self.defaults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(op, outcome);
    }

    /// All calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Number of calls of `op`.
    pub fn count(&self, op: Operation) -> usize {
        self.calls().iter().filter(|c| c.op == op).count()
    }

    fn call(&self, op: Operation, cx: &HandlerContext) -> HandlerOutcome {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Call {
                op,
                namespace: cx.namespace().to_string(),
                name: cx.name().to_string(),
                generation: cx.generation(),
                handler_status: cx.handler_status.clone(),
            });
        let queued = self
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&op)
            .and_then(|q| q.pop_front());
        queued.unwrap_or_else(|| {
            self.defaults
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&op)
                .cloned()
                .unwrap_or_else(HandlerOutcome::done)
        })
    }
}

#[async_trait]
impl Handler for ScriptedHandler {
    fn name(&self) -> &str {
        &self.name
    }
    async fn apply(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.call(Operation::Apply, cx)
    }
    async fn check_applied(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.call(Operation::CheckApplied, cx)
    }
    async fn delete(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.call(Operation::Delete, cx)
    }
    async fn check_deleted(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.call(Operation::CheckDeleted, cx)
    }
}
