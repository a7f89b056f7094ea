//! The protocol as pure functions.
//!
//! A reconcile reads the Component, reduces it to [`Facts`], [`classify`]s them into one
//! [`Situation`] (the most significant thing about the object right now), and [`decide`]s an
//! [`Action`] from `(phase, event)`. After a handler operation, [`after`] maps the
//! `(operation, outcome class)` to the [`Next`] state. The engine only executes.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::backoff::Backoff;
use crate::clock;
use crate::crd::{Component, ComponentStatus, Phase};
use crate::handler::{Outcome, RetryClass};
use crate::names;
use crate::status::{self, PhaseTimer};

/// What the engine knows about a Component at the start of a step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `spec.handler` names this handler.
    pub ours: bool,
    /// Our lifecycle finalizer is present.
    pub claimed: bool,
    /// Another handler's lifecycle finalizer is present.
    pub foreign_claim: bool,
    /// `deletionTimestamp` is set.
    pub deleting: bool,
    /// The composition controller's coordination finalizer is present.
    pub coordination_held: bool,
    /// `status.phase` (`Pending` when absent).
    pub phase: Phase,
    /// The retry annotation has a value not yet acted on.
    pub retry_requested: bool,
    /// `metadata.generation` differs from `status.observedGeneration`.
    pub spec_changed: bool,
    /// The current phase's timeout (Deploying / Terminating) is exceeded.
    pub timed_out: bool,
    /// A backoff is running (`nextRetryAt` in the future) and no related object poked us.
    pub backoff_pending: bool,
    /// `Failed` with a slowly-retried category whose retry time came (or a related object changed).
    pub slow_retry_due: bool,
    /// Apply not yet started for this generation (`appliedGeneration` differs).
    pub apply_pending: bool,
    /// The handler's delete was started (`status.deletionStarted`).
    pub deletion_started: bool,
    /// A watched related object (a Secret or ConfigMap the configuration reads) changed
    /// since the last reconcile.
    pub related_changed: bool,
}

/// The most significant thing about a Component, in priority order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Situation {
    /// `spec.handler` names another handler (and we hold no claim, or it is not being deleted).
    NotOurs,
    /// Another handler's lifecycle finalizer holds it.
    ForeignClaim,
    /// Being deleted and never claimed by us.
    DeletedUnclaimed,
    /// Ours and not claimed yet.
    Unclaimed,
    /// The retry annotation changed.
    RetryRequested,
    /// Being deleted, but the coordination finalizer is still present.
    CoordinationHeld,
    /// The phase timeout is exceeded.
    TimedOut,
    /// Waiting for the backoff of a previous error.
    BackoffPending,
    /// Being deleted; the handler's delete has not been started.
    DeletionRequested,
    /// Being deleted; the handler's delete was started.
    DeletionStarted,
    /// A new generation of the spec.
    SpecChanged,
    /// A slow retry (auth / not found) is due.
    SlowRetryDue,
    /// An object the configuration reads changed: the desired state may have changed
    /// (the handler decides; an unchanged desired state does nothing).
    RelatedChanged,
    /// Apply for the current generation still has to be (re)started.
    ApplyPending,
    /// Nothing new.
    Resync,
}

impl Situation {
    /// Every event, in priority order.
    pub const ALL: [Situation; 15] = [
        Situation::NotOurs,
        Situation::ForeignClaim,
        Situation::DeletedUnclaimed,
        Situation::Unclaimed,
        Situation::RetryRequested,
        Situation::CoordinationHeld,
        Situation::TimedOut,
        Situation::BackoffPending,
        Situation::DeletionRequested,
        Situation::DeletionStarted,
        Situation::SpecChanged,
        Situation::SlowRetryDue,
        Situation::RelatedChanged,
        Situation::ApplyPending,
        Situation::Resync,
    ];
}

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Not ours: no write at all.
    Ignore,
    /// Add our lifecycle finalizer (resourceVersion-guarded), then set `Claimed`.
    Claim,
    /// Our finalizer is there but the phase says `Pending` (crash after claiming): set `Claimed`.
    MarkClaimed,
    /// Record the retry annotation value without acting (nothing to retry in this phase).
    AcknowledgeRetry,
    /// Call `apply`; `fresh` restarts the phase timer and the attempt count.
    Apply { fresh: bool },
    /// Call `check_applied`.
    CheckApplied,
    /// Note that deletion waits for the coordination finalizer.
    WaitForCoordination,
    /// Call `delete`; `fresh` restarts the phase timer and the attempt count.
    Delete { fresh: bool },
    /// Call `check_deleted`.
    CheckDeleted,
    /// The phase timeout passed: `Deploying → Failed`, `Terminating → TerminationFailed`.
    FailTimeout,
    /// Requeue when the backoff ends.
    Wait,
    /// Nothing to do until something changes.
    Nothing,
}

/// Reduces a Component to [`Facts`] for `handler` at time `now`. `poked` says a watched
/// related object (e.g. a referenced Secret) changed since the last reconcile.
pub fn facts(c: &Component, handler: &str, now: Timestamp, poked: bool) -> Facts {
    let ours_fin = names::lifecycle_finalizer(handler);
    let fins = c.metadata.finalizers.as_deref().unwrap_or(&[]);
    let status = c.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    let generation = c.metadata.generation.unwrap_or(0);
    let retry = c
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(names::RETRY_ANNOTATION));
    let timed_out = match (phase_timeout(c, phase), &status.phase_started_at) {
        (Some(t), Some(start)) => now >= clock::plus(start.0, t),
        _ => false,
    };
    let retry_time_passed = status.next_retry_at.as_ref().is_none_or(|t| now >= t.0);
    Facts {
        ours: c.spec.handler == handler,
        claimed: fins.contains(&ours_fin),
        foreign_claim: fins
            .iter()
            .any(|f| names::is_foreign_lifecycle_finalizer(f, handler)),
        deleting: c.metadata.deletion_timestamp.is_some(),
        coordination_held: fins.iter().any(|f| f == names::COORDINATION_FINALIZER),
        phase,
        retry_requested: retry.is_some_and(|r| status.last_retry.as_ref() != Some(r)),
        spec_changed: status.observed_generation != Some(generation),
        timed_out,
        backoff_pending: !retry_time_passed && !poked,
        slow_retry_due: phase == Phase::Failed
            && status
                .failure_category
                .is_some_and(|c| c.retry_class() == RetryClass::Slow)
            && status.next_retry_at.is_some()
            && (retry_time_passed || poked),
        apply_pending: status.applied_generation != Some(generation),
        deletion_started: status.deletion_started == Some(true),
        related_changed: poked,
    }
}

/// The single most significant [`Situation`] of the facts (priority order).
pub fn classify(f: &Facts) -> Situation {
    if !f.claimed {
        if f.deleting {
            return Situation::DeletedUnclaimed;
        }
        if !f.ours {
            return Situation::NotOurs;
        }
        if f.foreign_claim {
            return Situation::ForeignClaim;
        }
        return Situation::Unclaimed;
    }
    if !f.ours && !f.deleting {
        // spec.handler was changed after we claimed it: not supported; deletion still works.
        return Situation::NotOurs;
    }
    if f.retry_requested {
        return Situation::RetryRequested;
    }
    if f.deleting {
        if f.coordination_held {
            return Situation::CoordinationHeld;
        }
        if f.phase == Phase::Terminating {
            if f.timed_out {
                return Situation::TimedOut;
            }
            if f.backoff_pending {
                return Situation::BackoffPending;
            }
        }
        if f.deletion_started {
            return Situation::DeletionStarted;
        }
        return Situation::DeletionRequested;
    }
    if f.spec_changed {
        return Situation::SpecChanged;
    }
    if f.timed_out {
        return Situation::TimedOut;
    }
    if f.backoff_pending {
        return Situation::BackoffPending;
    }
    if f.slow_retry_due {
        return Situation::SlowRetryDue;
    }
    if f.related_changed && matches!(f.phase, Phase::Deploying | Phase::Ready | Phase::Failed) {
        return Situation::RelatedChanged;
    }
    if f.apply_pending && matches!(f.phase, Phase::Claimed | Phase::Deploying) {
        return Situation::ApplyPending;
    }
    Situation::Resync
}

/// The action for `(phase, event)`. Total: every combination has an answer.
pub fn decide(phase: Phase, event: Situation) -> Action {
    use Action::*;
    use Phase::*;
    match event {
        Situation::NotOurs | Situation::ForeignClaim | Situation::DeletedUnclaimed => Ignore,
        Situation::Unclaimed => Claim,
        Situation::RetryRequested => match phase {
            Failed => Apply { fresh: true },
            TerminationFailed => Delete { fresh: true },
            _ => AcknowledgeRetry,
        },
        Situation::CoordinationHeld => WaitForCoordination,
        Situation::TimedOut => match phase {
            Deploying | Terminating => FailTimeout,
            _ => Nothing,
        },
        Situation::BackoffPending => match phase {
            Pending => MarkClaimed,
            Claimed | Deploying | Failed | Terminating => Wait,
            Ready | TerminationFailed => Nothing,
        },
        Situation::DeletionRequested => match phase {
            Terminating => Delete { fresh: false },
            TerminationFailed => Nothing,
            _ => Delete { fresh: true },
        },
        Situation::DeletionStarted => match phase {
            Terminating => CheckDeleted,
            TerminationFailed => Nothing,
            _ => Delete { fresh: true },
        },
        Situation::SpecChanged => match phase {
            Pending => MarkClaimed,
            Claimed | Deploying | Ready | Failed => Apply { fresh: true },
            Terminating | TerminationFailed => Nothing,
        },
        Situation::SlowRetryDue => match phase {
            Pending => MarkClaimed,
            Failed => Apply { fresh: true },
            _ => Nothing,
        },
        // Ready stays Ready (no status write) when the handler finds nothing changed.
        Situation::RelatedChanged => match phase {
            Pending => MarkClaimed,
            Claimed | Failed => Apply { fresh: true },
            Deploying | Ready => Apply { fresh: false },
            Terminating | TerminationFailed => Nothing,
        },
        Situation::ApplyPending => match phase {
            Pending => MarkClaimed,
            Claimed => Apply { fresh: true },
            Deploying => Apply { fresh: false },
            _ => Nothing,
        },
        Situation::Resync => match phase {
            Pending => MarkClaimed,
            Claimed => Apply { fresh: true },
            Deploying => CheckApplied,
            Ready | Failed | Terminating | TerminationFailed => Nothing,
        },
    }
}

/// A handler operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Apply,
    CheckApplied,
    Delete,
    CheckDeleted,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Apply,
        Operation::CheckApplied,
        Operation::Delete,
        Operation::CheckDeleted,
    ];

    /// PascalCase name (used as the Event action).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::CheckApplied => "CheckApplied",
            Operation::Delete => "Delete",
            Operation::CheckDeleted => "CheckDeleted",
        }
    }
}

/// An outcome reduced to what decides the next state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    Done,
    InProgress,
    Transient,
    Slow,
    Permanent,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 5] = [
        OutcomeClass::Done,
        OutcomeClass::InProgress,
        OutcomeClass::Transient,
        OutcomeClass::Slow,
        OutcomeClass::Permanent,
    ];

    /// The class of an outcome.
    pub fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Done => OutcomeClass::Done,
            Outcome::InProgress { .. } => OutcomeClass::InProgress,
            Outcome::Failed { category, .. } => match category.retry_class() {
                RetryClass::Transient => OutcomeClass::Transient,
                RetryClass::Slow => OutcomeClass::Slow,
                RetryClass::Permanent => OutcomeClass::Permanent,
            },
        }
    }
}

/// State after a handler operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next {
    /// Applied and ready.
    Ready,
    /// Deployment under way; check again later.
    Deploying,
    /// Transient error: same phase, retry after a backoff (within the phase timeout).
    Backoff,
    /// Permanent error: `Failed`.
    Failed,
    /// Auth / not-found error: `Failed`, retried after a long delay or when a related object changes.
    FailedSlow,
    /// Removal under way; check again later.
    Terminating,
    /// Removed: remove our finalizer.
    Release,
    /// Permanent error during removal.
    TerminationFailed,
}

/// The next state after `op` ended with `class`. During removal, slowly-retried errors are
/// retried with backoff like transient ones (removal must not wait on a Secret).
pub fn after(op: Operation, class: OutcomeClass) -> Next {
    match (op, class) {
        (Operation::Apply | Operation::CheckApplied, OutcomeClass::Done) => Next::Ready,
        (Operation::Apply | Operation::CheckApplied, OutcomeClass::InProgress) => Next::Deploying,
        (Operation::Apply | Operation::CheckApplied, OutcomeClass::Transient) => Next::Backoff,
        (Operation::Apply | Operation::CheckApplied, OutcomeClass::Slow) => Next::FailedSlow,
        (Operation::Apply | Operation::CheckApplied, OutcomeClass::Permanent) => Next::Failed,
        (Operation::Delete | Operation::CheckDeleted, OutcomeClass::Done) => Next::Release,
        (Operation::Delete | Operation::CheckDeleted, OutcomeClass::InProgress) => {
            Next::Terminating
        }
        (
            Operation::Delete | Operation::CheckDeleted,
            OutcomeClass::Transient | OutcomeClass::Slow,
        ) => Next::Backoff,
        (Operation::Delete | Operation::CheckDeleted, OutcomeClass::Permanent) => {
            Next::TerminationFailed
        }
    }
}

/// How long `phase` may last: deploying and terminating have a timeout (the spec's, or the
/// default when it is absent or invalid — an invalid one fails the Component on its own).
pub fn phase_timeout(c: &Component, phase: Phase) -> Option<Duration> {
    match phase {
        Phase::Deploying => Some(
            c.spec
                .deployment_timeout()
                .unwrap_or(crate::crd::DEFAULT_DEPLOYMENT_TIMEOUT),
        ),
        Phase::Terminating => Some(
            c.spec
                .termination_timeout()
                .unwrap_or(crate::crd::DEFAULT_TERMINATION_TIMEOUT),
        ),
        _ => None,
    }
}

/// The deadline of the current phase, if it has one.
pub fn phase_deadline(c: &Component) -> Option<Timestamp> {
    let status = c.status.as_ref()?;
    let start = status.phase_started_at.as_ref()?.0;
    Some(clock::plus(start, phase_timeout(c, status.phase?)?))
}

/// What an operation's outcome is recorded from: where the decision goes next ([`after`]),
/// which operation ran, what it said, and for which generation.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub next: Next,
    pub op: Operation,
    pub outcome: &'a Outcome,
    pub generation: i64,
    /// A fresh operation (new generation, retry, first claim) restarts the phase timer.
    pub fresh: bool,
}

/// The status an operation's outcome leaves (phase, message, retry fields, generations),
/// and when to look again. Pure (the backoff's `jitter` in `[0, 1]` is given): the engine
/// writes the status and requeues. `Next::Release` (the finalizer goes) changes no status
/// and is not recorded here.
pub fn record_outcome(
    st: &mut ComponentStatus,
    r: &Recorded<'_>,
    now: Timestamp,
    (backoff, jitter): (&Backoff, f64),
    slow_retry: Duration,
) -> Option<Duration> {
    let (category, message) = match r.outcome {
        Outcome::Done => (None, String::new()),
        Outcome::InProgress { message, .. } => (None, message.clone()),
        Outcome::Failed { category, message } => (Some(*category), message.clone()),
    };
    let working_phase = match r.op {
        Operation::Delete | Operation::CheckDeleted => Phase::Terminating,
        Operation::Apply | Operation::CheckApplied => Phase::Deploying,
    };
    let timer = PhaseTimer::fresh(r.fresh);
    let generation = r.generation;
    match r.next {
        Next::Ready => {
            status::set_phase(st, Phase::Ready, now, timer);
            st.applied_generation = Some(generation);
            st.message = Some(format!("generation {generation} is deployed and ready"));
            status::clear_retry(st);
            None
        }
        Next::Deploying | Next::Terminating => {
            status::set_phase(st, working_phase, now, timer);
            if r.op == Operation::Apply {
                st.applied_generation = Some(generation);
            }
            if r.op == Operation::Delete {
                st.deletion_started = Some(true);
            }
            st.message = Some(message);
            status::clear_retry(st);
            Some(match r.outcome {
                Outcome::InProgress { requeue_after, .. } => *requeue_after,
                _ => Duration::from_secs(5),
            })
        }
        Next::Backoff => {
            status::set_phase(st, working_phase, now, timer);
            let attempts = st.attempts.unwrap_or(0).saturating_add(1);
            // Whole seconds: status timestamps are stored with second precision.
            let delay = ceil_secs(backoff.delay_with_jitter(attempts.max(1) as u32, jitter));
            st.attempts = Some(attempts);
            st.next_retry_at = Some(Time(clock::plus(now, delay)));
            st.failure_category = category;
            st.message = Some(format!(
                "{} failed ({}; attempt {attempts}), retrying in {}: {message}",
                r.op.as_str(),
                category.map(|c| c.as_str()).unwrap_or("error"),
                humantime::format_duration(round_secs(delay))
            ));
            Some(delay)
        }
        Next::Failed | Next::FailedSlow | Next::TerminationFailed => {
            let phase = if r.next == Next::TerminationFailed {
                Phase::TerminationFailed
            } else {
                Phase::Failed
            };
            status::set_phase(st, phase, now, PhaseTimer::OnChange);
            st.attempts = None;
            st.failure_category = category;
            if r.next == Next::FailedSlow {
                st.next_retry_at = Some(Time(clock::plus(now, slow_retry)));
                st.message = Some(format!(
                    "{message} (retrying in {}, or when a referenced object changes)",
                    humantime::format_duration(round_secs(slow_retry))
                ));
                Some(slow_retry)
            } else {
                st.next_retry_at = None;
                st.message = Some(message);
                None
            }
        }
        Next::Release => None,
    }
}

/// Rounds up to whole seconds.
pub fn ceil_secs(d: Duration) -> Duration {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(whole)
}

/// Whole seconds, at least one (for messages).
pub fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}
