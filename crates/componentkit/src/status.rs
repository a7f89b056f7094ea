//! Status bookkeeping: conditions derived from the phase, phase transitions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::crd::{ComponentStatus, Condition, Phase};
use crate::handler::HandlerCondition;
use crate::names::{condition, reason};

/// Whether a phase's timer (`phaseStartedAt`, which its timeout counts from) starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseTimer {
    /// Only when the phase changes.
    OnChange,
    /// Even in the same phase: a new generation, a retry, a new claim.
    Restart,
}

impl PhaseTimer {
    /// `Restart` for a fresh operation (a new generation or a retry), else `OnChange`.
    pub fn fresh(fresh: bool) -> Self {
        if fresh {
            PhaseTimer::Restart
        } else {
            PhaseTimer::OnChange
        }
    }
}

/// Sets the phase; `phaseStartedAt` restarts when the phase changes or as `timer` says.
pub fn set_phase(st: &mut ComponentStatus, phase: Phase, now: Timestamp, timer: PhaseTimer) {
    if st.phase != Some(phase) || timer == PhaseTimer::Restart || st.phase_started_at.is_none() {
        st.phase_started_at = Some(Time(now));
    }
    st.phase = Some(phase);
}

/// Forgets the retry state (attempts, next retry, failure category): a fresh operation, a
/// new claim, or an operation that got through.
pub fn clear_retry(st: &mut ComponentStatus) {
    st.attempts = None;
    st.next_retry_at = None;
    st.failure_category = None;
}

fn cond(type_: &str, ok: bool, reason: &str) -> (String, &'static str, String) {
    (
        type_.to_string(),
        if ok {
            condition::TRUE
        } else {
            condition::FALSE
        },
        reason.to_string(),
    )
}

/// Recomputes `Ready`, `Progressing`, `Degraded` from the status; `lastTransitionTime` only
/// moves when a condition's status changes. `progress_reason` overrides the Progressing reason
/// (e.g. `WaitingForCoordination`).
pub fn update_conditions(
    st: &mut ComponentStatus,
    generation: i64,
    now: Timestamp,
    progress_reason: Option<&str>,
) {
    let phase = st.phase.unwrap_or_default();
    let category = st.failure_category.map(|c| c.as_str());
    let failed = matches!(phase, Phase::Failed | Phase::TerminationFailed);
    let retrying = st.attempts.unwrap_or(0) > 0;
    let progressing = matches!(
        phase,
        Phase::Claimed | Phase::Deploying | Phase::Terminating
    );
    let ready_reason = if failed {
        category.unwrap_or(phase.as_str())
    } else {
        phase.as_str()
    };
    let progress_reason = progress_reason.unwrap_or(if retrying && progressing {
        reason::RETRYING
    } else {
        phase.as_str()
    });
    let degraded_reason = if failed || retrying {
        category.unwrap_or(phase.as_str())
    } else {
        reason::AS_EXPECTED
    };
    let wanted = [
        cond(condition::READY, phase == Phase::Ready, ready_reason),
        cond(condition::PROGRESSING, progressing, progress_reason),
        cond(condition::DEGRADED, failed || retrying, degraded_reason),
    ];
    let message = st.message.clone().unwrap_or_default();
    let mut out = Vec::with_capacity(3);
    for (type_, status, reason) in wanted {
        let old = st.conditions.iter().find(|c| c.type_ == type_);
        let last_transition_time = match old {
            Some(o) if o.status == status => o.last_transition_time.clone(),
            _ => Time(now),
        };
        out.push(Condition {
            type_,
            status: status.to_string(),
            reason,
            message: message.clone(),
            last_transition_time,
            observed_generation: Some(generation),
        });
    }
    // Keep conditions other writers may have added.
    for c in &st.conditions {
        if !out.iter().any(|o| o.type_ == c.type_) {
            out.push(c.clone());
        }
    }
    st.conditions = out;
}

/// Whether a status change is told as an Event (reason: the new phase): every phase change,
/// and a failure whose message changed while the phase stayed failed — a new cause must reach
/// `kubectl describe`, not only the first one.
pub fn announces(old: &ComponentStatus, new: &ComponentStatus) -> bool {
    let (old_phase, new_phase) = (old.phase.unwrap_or_default(), new.phase.unwrap_or_default());
    old_phase != new_phase
        || (matches!(new_phase, Phase::Failed | Phase::TerminationFailed)
            && old.message != new.message)
}

#[cfg(test)]
mod announce_tests {
    use super::*;

    #[test]
    fn phase_changes_and_new_failure_causes_are_announced() {
        let st = |phase: Phase, message: &str| ComponentStatus {
            phase: Some(phase),
            message: Some(message.to_string()),
            ..Default::default()
        };
        for (old, new, want) in [
            (st(Phase::Deploying, "a"), st(Phase::Ready, "a"), true),
            (st(Phase::Ready, "a"), st(Phase::Ready, "b"), false),
            (st(Phase::Deploying, "a"), st(Phase::Deploying, "b"), false),
            (st(Phase::Failed, "a"), st(Phase::Failed, "a"), false),
            (st(Phase::Failed, "a"), st(Phase::Failed, "b"), true),
            (
                st(Phase::TerminationFailed, "a"),
                st(Phase::TerminationFailed, "b"),
                true,
            ),
            (st(Phase::Failed, "a"), st(Phase::Deploying, "a"), true),
        ] {
            assert_eq!(announces(&old, &new), want, "{old:?} -> {new:?}");
        }
    }
}

/// Upserts the handler's own conditions; `lastTransitionTime` moves only when a condition's
/// status changes, so an unchanged condition is no write.
pub fn set_handler_conditions(
    st: &mut ComponentStatus,
    conditions: &[HandlerCondition],
    generation: i64,
    now: Timestamp,
) {
    for hc in conditions {
        let status = if hc.status {
            condition::TRUE
        } else {
            condition::FALSE
        };
        let old = st.conditions.iter().position(|c| c.type_ == hc.type_);
        let last_transition_time = match old.map(|i| &st.conditions[i]) {
            Some(o) if o.status == status => o.last_transition_time.clone(),
            _ => Time(now),
        };
        let new = Condition {
            type_: hc.type_.clone(),
            status: status.to_string(),
            reason: hc.reason.clone(),
            message: hc.message.clone(),
            last_transition_time,
            observed_generation: Some(generation),
        };
        match old {
            Some(i) => st.conditions[i] = new,
            None => st.conditions.push(new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_conditions_move_their_time_only_on_a_status_change() {
        let drifted = |status: bool, message: &str| HandlerCondition {
            type_: "Drifted".into(),
            status,
            reason: if status { "DriftDetected" } else { "NoDrift" }.into(),
            message: message.into(),
        };
        let t0 = Timestamp::UNIX_EPOCH;
        let t1 = t0 + std::time::Duration::from_secs(60);
        let mut st = ComponentStatus::default();
        set_handler_conditions(&mut st, &[drifted(false, "")], 1, t0);
        set_handler_conditions(&mut st, &[drifted(false, "")], 1, t1);
        assert_eq!(st.conditions.len(), 1);
        assert_eq!(st.conditions[0].last_transition_time.0, t0, "unchanged");
        set_handler_conditions(
            &mut st,
            &[drifted(true, "Deployment/a/web /spec/replicas")],
            1,
            t1,
        );
        assert_eq!(st.conditions.len(), 1);
        assert_eq!(st.conditions[0].status, "True");
        assert_eq!(st.conditions[0].last_transition_time.0, t1);
        // The engine's conditions keep the handler's.
        st.phase = Some(Phase::Ready);
        update_conditions(&mut st, 1, t1, None);
        assert!(st.conditions.iter().any(|c| c.type_ == "Drifted"));
    }
}
