//! Exhaustive table tests of the pure protocol decisions: every phase × event, every
//! operation × outcome class, and the classification priorities.

use componentkit::crd::Phase;
use componentkit::decision::{
    Action, Facts, Next, Operation, OutcomeClass, Situation, after, classify, decide,
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
const TABLE: &[(Situation, [&str; 7])] = &[
    (
        Situation::NotOurs,
        ["ign", "ign", "ign", "ign", "ign", "ign", "ign"],
    ),
    (
        Situation::ForeignClaim,
        ["ign", "ign", "ign", "ign", "ign", "ign", "ign"],
    ),
    (
        Situation::DeletedUnclaimed,
        ["ign", "ign", "ign", "ign", "ign", "ign", "ign"],
    ),
    (
        Situation::Unclaimed,
        [
            "claim", "claim", "claim", "claim", "claim", "claim", "claim",
        ],
    ),
    (
        Situation::RetryRequested,
        ["ack", "ack", "ack", "ack", "apply*", "ack", "del*"],
    ),
    (
        Situation::CoordinationHeld,
        [
            "coord", "coord", "coord", "coord", "coord", "coord", "coord",
        ],
    ),
    (
        Situation::TimedOut,
        ["-", "-", "timeout", "-", "-", "timeout", "-"],
    ),
    (
        Situation::BackoffPending,
        ["mark", "wait", "wait", "-", "wait", "wait", "-"],
    ),
    (
        Situation::DeletionRequested,
        ["del*", "del*", "del*", "del*", "del*", "del", "-"],
    ),
    (
        Situation::DeletionStarted,
        ["del*", "del*", "del*", "del*", "del*", "chkdel", "-"],
    ),
    (
        Situation::SpecChanged,
        ["mark", "apply*", "apply*", "apply*", "apply*", "-", "-"],
    ),
    (
        Situation::SlowRetryDue,
        ["mark", "-", "-", "-", "apply*", "-", "-"],
    ),
    (
        Situation::RelatedChanged,
        ["mark", "apply*", "apply", "apply", "apply*", "-", "-"],
    ),
    (
        Situation::ApplyPending,
        ["mark", "apply*", "apply", "-", "-", "-", "-"],
    ),
    (
        Situation::Resync,
        ["mark", "apply*", "check", "-", "-", "-", "-"],
    ),
];

#[test]
fn every_phase_times_every_event() {
    assert_eq!(TABLE.len(), Situation::ALL.len(), "one row per event");
    for (row, event) in TABLE.iter().zip(Situation::ALL) {
        assert_eq!(row.0, event, "rows in Situation::ALL order");
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
    assert_eq!(classify(&base), Situation::Unclaimed);
    assert_eq!(
        classify(&Facts {
            ours: false,
            ..base.clone()
        }),
        Situation::NotOurs
    );
    assert_eq!(
        classify(&Facts {
            foreign_claim: true,
            ..base.clone()
        }),
        Situation::ForeignClaim
    );
    assert_eq!(
        classify(&Facts {
            deleting: true,
            ..base.clone()
        }),
        Situation::DeletedUnclaimed
    );
    // A foreign claim never wins over "not ours", and deletion of an unclaimed object is ignored.
    assert_eq!(
        classify(&Facts {
            ours: false,
            foreign_claim: true,
            ..base.clone()
        }),
        Situation::NotOurs
    );

    // Claimed: handler renamed after the claim → left alone until deletion.
    let ready = claimed(Phase::Ready);
    assert_eq!(
        classify(&Facts {
            ours: false,
            ..ready.clone()
        }),
        Situation::NotOurs
    );
    assert_eq!(
        classify(&Facts {
            ours: false,
            deleting: true,
            ..ready.clone()
        }),
        Situation::DeletionRequested
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
    assert_eq!(classify(&all), Situation::RetryRequested);

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
        Situation::CoordinationHeld
    );
    assert_eq!(classify(&del), Situation::DeletionRequested);
    assert_eq!(
        classify(&Facts {
            spec_changed: true,
            ..del.clone()
        }),
        Situation::DeletionRequested
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
        Situation::DeletionRequested
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
        Situation::TimedOut
    );
    assert_eq!(
        classify(&Facts {
            backoff_pending: true,
            ..term.clone()
        }),
        Situation::BackoffPending
    );
    assert_eq!(
        classify(&Facts {
            deletion_started: true,
            ..term.clone()
        }),
        Situation::DeletionStarted
    );
    assert_eq!(classify(&term), Situation::DeletionRequested);

    // Creation: spec change, then timeout, backoff, slow retry, apply pending, resync.
    let dep = claimed(Phase::Deploying);
    assert_eq!(
        classify(&Facts {
            spec_changed: true,
            timed_out: true,
            ..dep.clone()
        }),
        Situation::SpecChanged
    );
    assert_eq!(
        classify(&Facts {
            timed_out: true,
            backoff_pending: true,
            ..dep.clone()
        }),
        Situation::TimedOut
    );
    assert_eq!(
        classify(&Facts {
            backoff_pending: true,
            apply_pending: true,
            ..dep.clone()
        }),
        Situation::BackoffPending
    );
    assert_eq!(
        classify(&Facts {
            apply_pending: true,
            ..dep.clone()
        }),
        Situation::ApplyPending
    );
    assert_eq!(classify(&dep), Situation::Resync);
    assert_eq!(
        classify(&Facts {
            slow_retry_due: true,
            ..claimed(Phase::Failed)
        }),
        Situation::SlowRetryDue
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
            Situation::RelatedChanged,
            "{phase:?}"
        );
    }
    assert_eq!(
        classify(&Facts {
            related_changed: true,
            slow_retry_due: true,
            ..claimed(Phase::Failed)
        }),
        Situation::SlowRetryDue
    );
    assert_eq!(
        classify(&Facts {
            related_changed: true,
            ..claimed(Phase::Claimed)
        }),
        Situation::Resync
    );
    // apply_pending only matters before/while deploying.
    assert_eq!(
        classify(&Facts {
            apply_pending: true,
            ..claimed(Phase::Ready)
        }),
        Situation::Resync
    );
}
