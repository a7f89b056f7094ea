//! Exhaustive table tests of the pure protocol decisions: every phase × event, every
//! operation × outcome class, and the classification priorities.

use componentkit::crd::Phase;
use componentkit::decision::{
    Action, Event, Facts, Next, Operation, OutcomeClass, after, classify, decide,
};

/// Short codes for actions, so the table stays readable.
fn code(a: Action) -> &'static str {
    match a {
        Action::Ignore => "ign",
        Action::Claim => "claim",
        Action::MarkClaimed => "mark",
        Action::AcknowledgeRetry => "ack",
        Action::Apply { fresh: true } => "apply*",
        Action::Apply { fresh: false } => "apply",
        Action::CheckApplied => "check",
        Action::WaitForCoordination => "coord",
        Action::Delete { fresh: true } => "del*",
        Action::Delete { fresh: false } => "del",
        Action::CheckDeleted => "chkdel",
        Action::FailTimeout => "timeout",
        Action::Wait => "wait",
        Action::Nothing => "-",
    }
}

// Columns: Pending, Claimed, Deploying, Ready, Failed, Terminating, TerminationFailed.
const TABLE: &[(Event, [&str; 7])] = &[
    (
        Event::NotOurs,
        ["ign", "ign", "ign", "ign", "ign", "ign", "ign"],
    ),
    (
        Event::ForeignClaim,
        ["ign", "ign", "ign", "ign", "ign", "ign", "ign"],
    ),
    (
        Event::DeletedUnclaimed,
        ["ign", "ign", "ign", "ign", "ign", "ign", "ign"],
    ),
    (
        Event::Unclaimed,
        [
            "claim", "claim", "claim", "claim", "claim", "claim", "claim",
        ],
    ),
    (
        Event::RetryRequested,
        ["ack", "ack", "ack", "ack", "apply*", "ack", "del*"],
    ),
    (
        Event::CoordinationHeld,
        [
            "coord", "coord", "coord", "coord", "coord", "coord", "coord",
        ],
    ),
    (
        Event::TimedOut,
        ["-", "-", "timeout", "-", "-", "timeout", "-"],
    ),
    (
        Event::BackoffPending,
        ["mark", "wait", "wait", "-", "wait", "wait", "-"],
    ),
    (
        Event::DeletionRequested,
        ["del*", "del*", "del*", "del*", "del*", "del", "-"],
    ),
    (
        Event::DeletionStarted,
        ["del*", "del*", "del*", "del*", "del*", "chkdel", "-"],
    ),
    (
        Event::SpecChanged,
        ["mark", "apply*", "apply*", "apply*", "apply*", "-", "-"],
    ),
    (
        Event::SlowRetryDue,
        ["mark", "-", "-", "-", "apply*", "-", "-"],
    ),
    (
        Event::RelatedChanged,
        ["mark", "apply*", "apply", "apply", "apply*", "-", "-"],
    ),
    (
        Event::ApplyPending,
        ["mark", "apply*", "apply", "-", "-", "-", "-"],
    ),
    (
        Event::Resync,
        ["mark", "apply*", "check", "-", "-", "-", "-"],
    ),
];

#[test]
fn every_phase_times_every_event() {
    assert_eq!(TABLE.len(), Event::ALL.len(), "one row per event");
    for (row, event) in TABLE.iter().zip(Event::ALL) {
        assert_eq!(row.0, event, "rows in Event::ALL order");
        for (phase, expected) in Phase::ALL.iter().zip(row.1) {
            assert_eq!(
                code(decide(*phase, event)),
                expected,
                "decide({phase:?}, {event:?})"
            );
        }
    }
}

#[test]
fn every_operation_times_every_outcome() {
    use Next::*;
    use OutcomeClass as O;
    let table: &[(Operation, [Next; 5])] = &[
        // Done, InProgress, Transient, Slow, Permanent
        (
            Operation::Apply,
            [Ready, Deploying, Backoff, FailedSlow, Failed],
        ),
        (
            Operation::CheckApplied,
            [Ready, Deploying, Backoff, FailedSlow, Failed],
        ),
        (
            Operation::Delete,
            [Release, Terminating, Backoff, Backoff, TerminationFailed],
        ),
        (
            Operation::CheckDeleted,
            [Release, Terminating, Backoff, Backoff, TerminationFailed],
        ),
    ];
    assert_eq!(table.len(), Operation::ALL.len());
    for (op, row) in table {
        for (class, expected) in O::ALL.iter().zip(row) {
            assert_eq!(after(*op, *class), *expected, "after({op:?}, {class:?})");
        }
    }
}

#[test]
fn outcome_classes_follow_error_categories() {
    use componentkit::handler::{ErrorCategory as C, Outcome};
    use std::time::Duration;
    let f = |category| {
        OutcomeClass::of(&Outcome::Failed {
            category,
            message: String::new(),
        })
    };
    assert_eq!(OutcomeClass::of(&Outcome::Done), OutcomeClass::Done);
    assert_eq!(
        OutcomeClass::of(&Outcome::InProgress {
            requeue_after: Duration::ZERO,
            message: String::new()
        }),
        OutcomeClass::InProgress
    );
    for c in [C::Network, C::Io, C::Conflict, C::Timeout, C::Internal] {
        assert_eq!(f(c), OutcomeClass::Transient, "{c:?}");
    }
    for c in [C::Auth, C::NotFound] {
        assert_eq!(f(c), OutcomeClass::Slow, "{c:?}");
    }
    for c in [C::Config, C::Tls, C::Integrity] {
        assert_eq!(f(c), OutcomeClass::Permanent, "{c:?}");
    }
}

fn claimed(phase: Phase) -> Facts {
    Facts {
        ours: true,
        claimed: true,
        phase,
        ..Facts::default()
    }
}

#[test]
fn classification_priorities() {
    // Unclaimed objects.
    let base = Facts {
        ours: true,
        ..Facts::default()
    };
    assert_eq!(classify(&base), Event::Unclaimed);
    assert_eq!(
        classify(&Facts {
            ours: false,
            ..base.clone()
        }),
        Event::NotOurs
    );
    assert_eq!(
        classify(&Facts {
            foreign_claim: true,
            ..base.clone()
        }),
        Event::ForeignClaim
    );
    assert_eq!(
        classify(&Facts {
            deleting: true,
            ..base.clone()
        }),
        Event::DeletedUnclaimed
    );
    // A foreign claim never wins over "not ours", and deletion of an unclaimed object is ignored.
    assert_eq!(
        classify(&Facts {
            ours: false,
            foreign_claim: true,
            ..base.clone()
        }),
        Event::NotOurs
    );

    // Claimed: handler renamed after the claim → left alone until deletion.
    let ready = claimed(Phase::Ready);
    assert_eq!(
        classify(&Facts {
            ours: false,
            ..ready.clone()
        }),
        Event::NotOurs
    );
    assert_eq!(
        classify(&Facts {
            ours: false,
            deleting: true,
            ..ready.clone()
        }),
        Event::DeletionRequested
    );

    // Retry beats everything else once claimed.
    let all = Facts {
        retry_requested: true,
        deleting: true,
        coordination_held: true,
        spec_changed: true,
        timed_out: true,
        ..claimed(Phase::TerminationFailed)
    };
    assert_eq!(classify(&all), Event::RetryRequested);

    // Deletion: coordination, then timeout/backoff (Terminating only), then started or not.
    let del = Facts {
        deleting: true,
        ..claimed(Phase::Ready)
    };
    assert_eq!(
        classify(&Facts {
            coordination_held: true,
            ..del.clone()
        }),
        Event::CoordinationHeld
    );
    assert_eq!(classify(&del), Event::DeletionRequested);
    assert_eq!(
        classify(&Facts {
            spec_changed: true,
            ..del.clone()
        }),
        Event::DeletionRequested
    );
    // A slow-retry backoff of a Failed Component never delays deletion.
    assert_eq!(
        classify(&Facts {
            backoff_pending: true,
            ..Facts {
                deleting: true,
                ..claimed(Phase::Failed)
            }
        }),
        Event::DeletionRequested
    );
    let term = Facts {
        deleting: true,
        ..claimed(Phase::Terminating)
    };
    assert_eq!(
        classify(&Facts {
            timed_out: true,
            backoff_pending: true,
            ..term.clone()
        }),
        Event::TimedOut
    );
    assert_eq!(
        classify(&Facts {
            backoff_pending: true,
            ..term.clone()
        }),
        Event::BackoffPending
    );
    assert_eq!(
        classify(&Facts {
            deletion_started: true,
            ..term.clone()
        }),
        Event::DeletionStarted
    );
    assert_eq!(classify(&term), Event::DeletionRequested);

    // Creation: spec change, then timeout, backoff, slow retry, apply pending, resync.
    let dep = claimed(Phase::Deploying);
    assert_eq!(
        classify(&Facts {
            spec_changed: true,
            timed_out: true,
            ..dep.clone()
        }),
        Event::SpecChanged
    );
    assert_eq!(
        classify(&Facts {
            timed_out: true,
            backoff_pending: true,
            ..dep.clone()
        }),
        Event::TimedOut
    );
    assert_eq!(
        classify(&Facts {
            backoff_pending: true,
            apply_pending: true,
            ..dep.clone()
        }),
        Event::BackoffPending
    );
    assert_eq!(
        classify(&Facts {
            apply_pending: true,
            ..dep.clone()
        }),
        Event::ApplyPending
    );
    assert_eq!(classify(&dep), Event::Resync);
    assert_eq!(
        classify(&Facts {
            slow_retry_due: true,
            ..claimed(Phase::Failed)
        }),
        Event::SlowRetryDue
    );
    // A related object changed: re-apply when deploying, ready or failed (the handler
    // upgrades only when the desired state changed); a slow retry due comes first.
    for phase in [Phase::Deploying, Phase::Ready, Phase::Failed] {
        assert_eq!(
            classify(&Facts {
                related_changed: true,
                apply_pending: true,
                ..claimed(phase)
            }),
            Event::RelatedChanged,
            "{phase:?}"
        );
    }
    assert_eq!(
        classify(&Facts {
            related_changed: true,
            slow_retry_due: true,
            ..claimed(Phase::Failed)
        }),
        Event::SlowRetryDue
    );
    assert_eq!(
        classify(&Facts {
            related_changed: true,
            ..claimed(Phase::Claimed)
        }),
        Event::Resync
    );
    // apply_pending only matters before/while deploying.
    assert_eq!(
        classify(&Facts {
            apply_pending: true,
            ..claimed(Phase::Ready)
        }),
        Event::Resync
    );
}
