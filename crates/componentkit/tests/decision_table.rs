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

/// What each outcome leaves in the status (phase, retry fields, message) and when the engine
/// looks again — the step after [`after`], one row per `Next`.
#[test]
fn outcomes_are_recorded_in_the_status() {
    use std::time::Duration;

    use componentkit::backoff::Backoff;
    use componentkit::crd::ComponentStatus;
    use componentkit::decision::{Recorded, record_outcome};
    use componentkit::handler::{ErrorCategory, Outcome};
    use k8s_openapi::jiff::Timestamp;

    let now = Timestamp::from_second(1_000_000).unwrap();
    let backoff = Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(300),
    };
    let slow = Duration::from_secs(300);
    let progressing = Outcome::InProgress {
        requeue_after: Duration::from_secs(7),
        message: "waiting for web".into(),
    };
    let network = Outcome::Failed {
        category: ErrorCategory::Network,
        message: "registry down".into(),
    };
    let auth = Outcome::Failed {
        category: ErrorCategory::Auth,
        message: "401".into(),
    };
    let config = Outcome::Failed {
        category: ErrorCategory::Config,
        message: "bad field".into(),
    };
    // (what, next, op, outcome, attempts before) → (phase, attempts, retry at +s, category, message starts, requeue s)
    type Row<'a> = (
        &'a str,
        Next,
        Operation,
        &'a Outcome,
        Option<i32>,
        (
            Phase,
            Option<i32>,
            Option<i64>,
            Option<ErrorCategory>,
            &'a str,
            Option<u64>,
        ),
    );
    let rows: Vec<Row> = vec![
        (
            "ready clears the retry state",
            Next::Ready,
            Operation::CheckApplied,
            &Outcome::Done,
            Some(3),
            (
                Phase::Ready,
                None,
                None,
                None,
                "generation 4 is deployed and ready",
                None,
            ),
        ),
        (
            "in progress: the handler's hint",
            Next::Deploying,
            Operation::Apply,
            &progressing,
            Some(2),
            (
                Phase::Deploying,
                None,
                None,
                None,
                "waiting for web",
                Some(7),
            ),
        ),
        (
            "transient: backoff grows with attempts",
            Next::Backoff,
            Operation::Apply,
            &network,
            Some(2),
            (
                Phase::Deploying,
                Some(3),
                Some(8),
                Some(ErrorCategory::Network),
                "Apply failed (Network; attempt 3), retrying in 8s: registry down",
                Some(8),
            ),
        ),
        (
            "transient during removal stays terminating",
            Next::Backoff,
            Operation::Delete,
            &network,
            None,
            (
                Phase::Terminating,
                Some(1),
                Some(2),
                Some(ErrorCategory::Network),
                "Delete failed (Network; attempt 1)",
                Some(2),
            ),
        ),
        (
            "slow: failed, retried after the slow delay",
            Next::FailedSlow,
            Operation::Apply,
            &auth,
            Some(1),
            (
                Phase::Failed,
                None,
                Some(300),
                Some(ErrorCategory::Auth),
                "401 (retrying in 5m, or when a referenced object changes)",
                Some(300),
            ),
        ),
        (
            "permanent: failed, no retry",
            Next::Failed,
            Operation::Apply,
            &config,
            Some(1),
            (
                Phase::Failed,
                None,
                None,
                Some(ErrorCategory::Config),
                "bad field",
                None,
            ),
        ),
        (
            "removal failed for good",
            Next::TerminationFailed,
            Operation::Delete,
            &config,
            None,
            (
                Phase::TerminationFailed,
                None,
                None,
                Some(ErrorCategory::Config),
                "bad field",
                None,
            ),
        ),
    ];
    for (what, next, op, outcome, attempts, expected) in rows {
        let mut st = ComponentStatus {
            attempts,
            ..ComponentStatus::default()
        };
        let requeue = record_outcome(
            &mut st,
            &Recorded {
                next,
                op,
                outcome,
                generation: 4,
                fresh: false,
            },
            now,
            // The full ceiling: attempt 3 waits up to 8 s, attempt 1 up to 2 s.
            (&backoff, 1.0),
            slow,
        );
        let (phase, attempts, retry_in, category, message, requeue_s) = expected;
        assert_eq!(st.phase, Some(phase), "{what}");
        assert_eq!(st.attempts, attempts, "{what}");
        assert_eq!(
            st.next_retry_at.map(|t| t.0.as_second() - now.as_second()),
            retry_in,
            "{what}"
        );
        assert_eq!(st.failure_category, category, "{what}");
        let text = st.message.unwrap_or_default();
        assert!(text.starts_with(message), "{what}: {text}");
        assert_eq!(requeue, requeue_s.map(Duration::from_secs), "{what}");
    }
}
