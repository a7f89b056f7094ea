//! Whether this replica may act: a fence every write and every helm run checks.
//!
//! The Lease says who leads, but a process can be frozen (SIGSTOP, a stalled node, a long GC
//! pause) past its Lease and wake up with reconciles in flight that know nothing of it. So
//! the right to write is not "the last renewal said yes" but "the last renewal started less
//! than one Lease duration ago, by this process's monotonic clock": a standby can only take
//! over after observing the Lease unchanged for a whole duration, which began after that
//! renewal was written. A woken process finds its deadline passed before it can write.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// This replica's right to act. Clones share it.
#[derive(Clone, Debug)]
pub struct Leadership {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None`: no election, always allowed.
    deadline: Option<Mutex<Option<Instant>>>,
    leading: watch::Sender<bool>,
}

impl Leadership {
    /// A single replica without leader election: always allowed.
    pub fn always() -> Self {
        Self {
            inner: Arc::new(Inner {
                deadline: None,
                leading: watch::Sender::new(true),
            }),
        }
    }

    /// An election candidate: not allowed until it acquires the Lease.
    pub fn candidate() -> Self {
        Self {
            inner: Arc::new(Inner {
                deadline: Some(Mutex::new(None)),
                leading: watch::Sender::new(false),
            }),
        }
    }

    /// True while this replica may write.
    pub fn may_act(&self) -> bool {
        match &self.inner.deadline {
            None => true,
            Some(d) => (*d.lock().unwrap_or_else(|p| p.into_inner()))
                .is_some_and(|deadline| Instant::now() < deadline),
        }
    }

    /// `Ok` while this replica may write; the error says why not.
    pub fn check(&self) -> Result<(), NotLeader> {
        if self.may_act() {
            Ok(())
        } else {
            Err(NotLeader)
        }
    }

    /// Follows the role: `true` while leading (no election: always `true`).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.leading.subscribe()
    }

    /// Resolves once this replica is no longer leading (at once if it is not).
    pub async fn lost(&self) {
        let mut rx = self.subscribe();
        let _ = rx.wait_for(|leading| !*leading).await;
    }

    /// A renewal that started at `started` succeeded: allowed until `started + valid_for`.
    pub fn renewed(&self, started: Instant, valid_for: Duration) {
        if let Some(d) = &self.inner.deadline {
            *d.lock().unwrap_or_else(|p| p.into_inner()) = Some(started + valid_for);
            self.inner
                .leading
                .send_if_modified(|l| !std::mem::replace(l, true));
        }
    }

    /// Leadership ended (lost, or given up at shutdown): nothing more may be written.
    pub fn ended(&self) {
        if let Some(d) = &self.inner.deadline {
            *d.lock().unwrap_or_else(|p| p.into_inner()) = None;
            self.inner
                .leading
                .send_if_modified(|l| std::mem::replace(l, false));
        }
    }
}

/// A write refused because this replica no longer holds the leader Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this replica no longer holds the leader Lease; the write was not made")]
pub struct NotLeader;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_right_to_act_ends_one_lease_after_the_last_renewal_started() {
        let l = Leadership::candidate();
        assert!(!l.may_act(), "a candidate does not act before it leads");
        let started = Instant::now();
        l.renewed(started, Duration::from_secs(15));
        assert!(l.may_act());
        assert!(*l.subscribe().borrow());
        // Frozen past the Lease: nothing ran, yet the right is gone.
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(l.check(), Err(NotLeader));
        l.renewed(Instant::now(), Duration::from_secs(15));
        assert!(l.may_act());
        l.ended();
        assert!(!l.may_act());
        assert!(!*l.subscribe().borrow());
        l.lost().await;
    }

    #[test]
    fn without_election_it_always_acts() {
        let l = Leadership::always();
        assert!(l.may_act());
        l.ended();
        assert!(l.may_act());
    }
}
