//! The reconciler: executes the decisions of [`crate::decision`] through a
//! [`ComponentApi`], calling the [`Handler`].

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{ApiError, ComponentApi, ComponentEvent, EventType};
use crate::backoff::Backoff;
use crate::clock::{self, Clock};
use crate::crd::{Component, ComponentStatus, Phase};
use crate::decision::{self, Action, Facts, Next, Operation, OutcomeClass, Recorded, Situation};
use crate::handler::{ErrorCategory, Handler, HandlerContext, HandlerOutcome};
use crate::mergepatch;
use crate::names;
use crate::status::{self, PhaseTimer};

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Identity of this instance (`status.claimedBy`), e.g. the pod name.
    pub identity: String,
    /// Backoff for transient errors.
    pub backoff: Backoff,
    /// Delay before retrying a `Failed` Component whose error is retried slowly (auth, not
    /// found); a change of a watched related object retries at once.
    pub slow_retry: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            identity: "componentkit".to_string(),
            backoff: Backoff::default(),
            slow_retry: Duration::from_secs(300),
        }
    }
}

/// An engine failure (API errors only: handler failures are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot encode status: {0}")]
    Encode(String),
}

impl EngineError {
    /// The error category (conflicts are transient and retried quickly).
    pub fn category(&self) -> ErrorCategory {
        match self {
            EngineError::Api(e) => e.category(),
            EngineError::Encode(_) => ErrorCategory::Internal,
        }
    }
}

/// Result of one reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciled {
    /// The last action taken.
    pub action: Action,
    /// The event that led to it.
    pub event: Option<Situation>,
    /// When to reconcile again (absent: on the next change).
    pub requeue_after: Option<Duration>,
}

/// Outcome of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Another step should follow at once (after claiming, …).
    Continue(Action, Situation),
    /// Done for now.
    Stop(Reconciled),
}

const MAX_STEPS: usize = 4;

/// The protocol engine for one handler.
pub struct Engine<H: Handler> {
    handler: Arc<H>,
    api: Arc<dyn ComponentApi>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    finalizer: String,
}

impl<H: Handler> Engine<H> {
    pub fn new(
        handler: Arc<H>,
        api: Arc<dyn ComponentApi>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        let finalizer = names::lifecycle_finalizer(handler.name());
        Self {
            handler,
            api,
            clock,
            config,
            finalizer,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// Reconciles one Component: reads it fresh and runs steps until one stops.
    /// `poked`: a watched related object changed (skips backoff, triggers slow retries).
    pub async fn reconcile(
        &self,
        namespace: &str,
        name: &str,
        poked: bool,
    ) -> Result<Reconciled, EngineError> {
        let mut last = Reconciled {
            action: Action::Nothing,
            event: None,
            requeue_after: None,
        };
        // One read per reconcile: a step that continues hands over the object its own
        // write returned (the newest state), instead of reading it again.
        let mut next = None;
        for _ in 0..MAX_STEPS {
            let c = match next.take() {
                Some(c) => c,
                None => match self.api.get(namespace, name).await? {
                    Some(c) => c,
                    None => return Ok(last),
                },
            };
            match self.step_from(c, poked).await? {
                (Step::Continue(action, event), written) => {
                    last = Reconciled {
                        action,
                        event: Some(event),
                        requeue_after: Some(Duration::ZERO),
                    };
                    next = written;
                }
                (Step::Stop(r), _) => return Ok(r),
            }
        }
        Ok(last)
    }

    /// One decision + execution on the given snapshot (which may be stale: guarded writes
    /// then fail with a conflict).
    pub async fn step(&self, c: Component, poked: bool) -> Result<Step, EngineError> {
        Ok(self.step_from(c, poked).await?.0)
    }

    /// [`Self::step`], with the object as the step's last write returned it when the
    /// step continues (the next step's snapshot).
    async fn step_from(
        &self,
        c: Component,
        poked: bool,
    ) -> Result<(Step, Option<Component>), EngineError> {
        let now = self.clock.now();
        let f = decision::facts(&c, self.handler.name(), now, poked);
        let event = decision::classify(&f);
        let action = decision::decide(f.phase, event);
        tracing::debug!(
            namespace = c.metadata.namespace.as_deref().unwrap_or(""),
            name = c.metadata.name.as_deref().unwrap_or(""),
            phase = %f.phase,
            ?event,
            ?action,
            "reconcile step"
        );
        let stop = |requeue_after| {
            Ok((
                Step::Stop(Reconciled {
                    action,
                    event: Some(event),
                    requeue_after,
                }),
                None,
            ))
        };
        let old = c.status.clone().unwrap_or_default();
        match action {
            Action::Ignore | Action::Nothing => stop(None),
            Action::Wait => {
                let until = old
                    .next_retry_at
                    .as_ref()
                    .map(|t| clock::until(now, t.0))
                    .unwrap_or(Duration::ZERO);
                stop(Some(self.cap_by_deadline(&c, &old, now, until)))
            }
            Action::Claim => {
                let mut fins = c.metadata.finalizers.clone().unwrap_or_default();
                fins.push(self.finalizer.clone());
                let Some(updated) = self.api.set_finalizers(&c, fins).await? else {
                    return stop(None);
                };
                let mut st = updated.status.clone().unwrap_or_default();
                self.mark_claimed(&mut st, now);
                let written = self.write(&updated, st, now, None, action).await?;
                Ok((Step::Continue(action, event), Some(written)))
            }
            Action::MarkClaimed => {
                let mut st = old.clone();
                self.mark_claimed(&mut st, now);
                let written = self.write(&c, st, now, None, action).await?;
                Ok((Step::Continue(action, event), Some(written)))
            }
            Action::AcknowledgeRetry => {
                self.publish(
                    &c,
                    EventType::Normal,
                    names::reason::RETRY_REQUESTED,
                    action,
                    format!(
                        "retry annotation noted; nothing to retry in phase {}",
                        f.phase
                    ),
                )
                .await;
                let written = self.write(&c, old.clone(), now, None, action).await?;
                Ok((Step::Continue(action, event), Some(written)))
            }
            Action::WaitForCoordination => {
                let mut st = old.clone();
                st.message = Some(format!(
                    "deletion requested; waiting for finalizer {} to be removed",
                    names::COORDINATION_FINALIZER
                ));
                self.write(
                    &c,
                    st,
                    now,
                    Some(names::reason::WAITING_FOR_COORDINATION),
                    action,
                )
                .await?;
                stop(None)
            }
            Action::FailTimeout => {
                let mut st = old.clone();
                let (field, value, default, phase) = if f.phase == Phase::Terminating {
                    (
                        "terminationTimeout",
                        c.spec.termination_timeout.clone(),
                        crate::crd::DEFAULT_TERMINATION_TIMEOUT,
                        Phase::TerminationFailed,
                    )
                } else {
                    (
                        "deploymentTimeout",
                        c.spec.deployment_timeout.clone(),
                        crate::crd::DEFAULT_DEPLOYMENT_TIMEOUT,
                        Phase::Failed,
                    )
                };
                let shown = value.unwrap_or_else(|| {
                    format!("{} (default)", humantime::format_duration(default))
                });
                let last = old.message.clone().unwrap_or_default();
                st.message = Some(format!(
                    "{field} {shown} exceeded in phase {}; last state: {last}",
                    f.phase
                ));
                st.failure_category = Some(ErrorCategory::Timeout);
                st.attempts = None;
                st.next_retry_at = None;
                status::set_phase(&mut st, phase, now, PhaseTimer::OnChange);
                self.write(&c, st, now, None, action).await?;
                stop(None)
            }
            Action::Apply { .. }
            | Action::CheckApplied
            | Action::Delete { .. }
            | Action::CheckDeleted => {
                let (op, fresh) = match action {
                    Action::Apply { fresh } => (Operation::Apply, fresh),
                    Action::Delete { fresh } => (Operation::Delete, fresh),
                    Action::CheckApplied => (Operation::CheckApplied, false),
                    _ => (Operation::CheckDeleted, false),
                };
                // A handler operation always ends the reconcile.
                let step = self.run_op(c, &f, event, action, op, fresh).await?;
                Ok((step, None))
            }
        }
    }

    fn mark_claimed(&self, st: &mut ComponentStatus, now: Timestamp) {
        status::set_phase(st, Phase::Claimed, now, PhaseTimer::Restart);
        st.claimed_by = Some(self.config.identity.clone());
        st.claimed_at = Some(Time(now));
        st.message = Some(format!("claimed by {}", self.config.identity));
        status::clear_retry(st);
        st.deletion_started = None;
    }

    async fn run_op(
        &self,
        c: Component,
        f: &Facts,
        event: Situation,
        action: Action,
        op: Operation,
        fresh: bool,
    ) -> Result<Step, EngineError> {
        let now = self.clock.now();
        let generation = c.metadata.generation.unwrap_or(0);
        let mut st = c.status.clone().unwrap_or_default();
        if fresh {
            status::clear_retry(&mut st);
            if op == Operation::Delete {
                st.deletion_started = None;
            }
        }
        if op == Operation::Apply {
            st.observed_generation = Some(generation);
        }
        if event == Situation::RetryRequested {
            self.publish(
                &c,
                EventType::Normal,
                names::reason::RETRY_REQUESTED,
                action,
                format!("retrying ({})", op.as_str()),
            )
            .await;
        } else if event == Situation::SpecChanged && f.phase != Phase::Claimed {
            self.publish(
                &c,
                EventType::Normal,
                names::reason::SPEC_CHANGED,
                action,
                format!("applying generation {generation}"),
            )
            .await;
        }

        let out = match self.validate_timeouts(&c, op) {
            Some(failed) => failed,
            None => {
                let cx = HandlerContext::new(Arc::new(c.clone()));
                match op {
                    Operation::Apply => self.handler.apply(&cx).await,
                    Operation::CheckApplied => self.handler.check_applied(&cx).await,
                    Operation::Delete => self.handler.delete(&cx).await,
                    Operation::CheckDeleted => self.handler.check_deleted(&cx).await,
                }
            }
        };
        if let Some(hs) = out.handler_status {
            st.handler_status = if hs.is_null() { None } else { Some(hs) };
        }
        let next = decision::after(op, OutcomeClass::of(&out.outcome));
        if next == Next::Release {
            self.publish(
                &c,
                EventType::Normal,
                names::reason::DELETED,
                action,
                "cleanup complete; lifecycle finalizer removed".to_string(),
            )
            .await;
            let fins: Vec<String> = c
                .metadata
                .finalizers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|x| *x != self.finalizer)
                .collect();
            self.api.set_finalizers(&c, fins).await?;
            return Ok(Step::Stop(Reconciled {
                action,
                event: Some(event),
                requeue_after: None,
            }));
        }
        let recorded = Recorded {
            next,
            op,
            outcome: &out.outcome,
            generation,
            fresh,
        };
        let requeue = decision::record_outcome(
            &mut st,
            &recorded,
            now,
            (&self.config.backoff, rand::random::<f64>()),
            self.config.slow_retry,
        );
        status::set_handler_conditions(&mut st, &out.conditions, generation, now);
        for ev in &out.events {
            self.publish(&c, ev.type_, &ev.reason, action, ev.message.clone())
                .await;
        }
        let after_write = self.write(&c, st.clone(), now, None, action).await?;
        let requeue = requeue.map(|d| self.cap_by_deadline(&after_write, &st, now, d));
        Ok(Step::Stop(Reconciled {
            action,
            event: Some(event),
            requeue_after: requeue,
        }))
    }

    /// An invalid timeout fails the Component with a config error naming the field.
    fn validate_timeouts(&self, c: &Component, op: Operation) -> Option<HandlerOutcome> {
        if op != Operation::Apply {
            return None;
        }
        let err = c
            .spec
            .deployment_timeout()
            .and_then(|_| c.spec.termination_timeout())
            .err()?;
        Some(HandlerOutcome::failed(
            ErrorCategory::Config,
            err.to_string(),
        ))
    }

    fn cap_by_deadline(
        &self,
        c: &Component,
        st: &ComponentStatus,
        now: Timestamp,
        d: Duration,
    ) -> Duration {
        let mut probe = c.clone();
        probe.status = Some(st.clone());
        match decision::phase_deadline(&probe) {
            Some(deadline) => d.min(clock::until(now, deadline)),
            None => d,
        }
    }

    /// Writes `new` as a merge patch against the status of `c` (only what changed), with
    /// conditions recomputed; publishes an Event on a phase change.
    async fn write(
        &self,
        c: &Component,
        mut new: ComponentStatus,
        now: Timestamp,
        progress_reason: Option<&str>,
        action: Action,
    ) -> Result<Component, EngineError> {
        let old = c.status.clone().unwrap_or_default();
        if let Some(retry) = c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(names::RETRY_ANNOTATION))
        {
            new.last_retry = Some(retry.clone());
        }
        status::update_conditions(
            &mut new,
            c.metadata.generation.unwrap_or(0),
            now,
            progress_reason,
        );
        let old_v = serde_json::to_value(&old).map_err(|e| EngineError::Encode(e.to_string()))?;
        let new_v = serde_json::to_value(&new).map_err(|e| EngineError::Encode(e.to_string()))?;
        let ns = c.metadata.namespace.as_deref().unwrap_or("");
        let name = c.metadata.name.as_deref().unwrap_or("");
        let Some(patch) = mergepatch::diff(&old_v, &new_v) else {
            return Ok(c.clone());
        };
        let updated = self
            .api
            .patch_status(ns, name, serde_json::json!({ "status": patch }))
            .await?;
        if status::announces(&old, &new) {
            let new_phase = new.phase.unwrap_or_default();
            self.publish(
                &updated,
                if matches!(new_phase, Phase::Failed | Phase::TerminationFailed) {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                new_phase.as_str(),
                action,
                new.message.clone().unwrap_or_default(),
            )
            .await;
        }
        Ok(updated)
    }

    async fn publish(
        &self,
        c: &Component,
        type_: EventType,
        reason: &str,
        action: Action,
        note: String,
    ) {
        let ev = ComponentEvent {
            type_,
            reason: reason.to_string(),
            action: action_name(action).to_string(),
            note: truncate(note, 1000),
        };
        if let Err(e) = self.api.publish_event(c, &ev).await {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// PascalCase name of an action (Event `action`).
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Ignore => "Ignore",
        Action::Claim => "Claim",
        Action::MarkClaimed => "Claim",
        Action::AcknowledgeRetry => "Retry",
        Action::Apply { .. } => "Apply",
        Action::CheckApplied => "CheckApplied",
        Action::WaitForCoordination => "WaitForCoordination",
        Action::Delete { .. } => "Delete",
        Action::CheckDeleted => "CheckDeleted",
        Action::FailTimeout => "Timeout",
        Action::Wait => "Wait",
        Action::Nothing => "Nothing",
    }
}
