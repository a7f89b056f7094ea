//! When helm must stop: this replica lost the leader Lease, or shutdown's grace ended.
//!
//! A helm process that is killed (SIGKILL) mid-upgrade leaves its release `pending-*`, and
//! the next leader must wait before it may roll back. helm itself handles SIGTERM during
//! install and upgrade: it cancels, records the revision as `failed` and exits, and a
//! failed release is simply upgraded again. So a helm that must stop gets SIGTERM first and
//! is killed only if it does not exit within [`TERM_GRACE`]; and no helm starts once the
//! replica may no longer act.

use std::time::Duration;

use componentkit::leadership::Leadership;
use tokio::sync::watch;

/// How long a helm process has to exit after SIGTERM before it is killed.
pub const TERM_GRACE: Duration = Duration::from_secs(10);

/// Why helm was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// This replica no longer holds the leader Lease.
    LostLeadership,
    /// The process is shutting down and the grace period for running work ended.
    Shutdown,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::LostLeadership => "this replica lost the leader Lease",
            StopReason::Shutdown => "the controller is shutting down",
        })
    }
}

/// The conditions under which helm may run. Clones share them.
#[derive(Clone, Debug)]
pub struct HelmStop {
    leadership: Leadership,
    shutdown: watch::Receiver<bool>,
}

impl Default for HelmStop {
    /// Never stops (a single process without election: `check`, `template`, tests).
    fn default() -> Self {
        Self::new(Leadership::always(), watch::Sender::new(false).subscribe())
    }
}

impl HelmStop {
    /// `shutdown` turns `true` when running helm processes must stop.
    pub fn new(leadership: Leadership, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            leadership,
            shutdown,
        }
    }

    /// The same lead, without the shutdown switch: for the clean-up a leader still owes
    /// after shutdown stopped its helm.
    pub fn leadership_only(&self) -> HelmStop {
        HelmStop::new(
            self.leadership.clone(),
            watch::Sender::new(false).subscribe(),
        )
    }

    /// Why helm may not start now, if it may not.
    pub fn refused(&self) -> Option<StopReason> {
        if *self.shutdown.borrow() {
            Some(StopReason::Shutdown)
        } else if !self.leadership.may_act() {
            Some(StopReason::LostLeadership)
        } else {
            None
        }
    }

    /// Resolves when a running helm must stop, with the reason.
    pub async fn requested(&self) -> StopReason {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            // A dropped sender means nobody can ask for a shutdown any more.
            r = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => match r {
                Ok(_) => StopReason::Shutdown,
                Err(_) => {
                    self.leadership.lost().await;
                    StopReason::LostLeadership
                }
            },
            _ = self.leadership.lost() => StopReason::LostLeadership,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stops_on_shutdown_or_lost_leadership() {
        let leadership = Leadership::candidate();
        leadership.renewed(tokio::time::Instant::now(), Duration::from_secs(15));
        let (tx, rx) = watch::channel(false);
        let stop = HelmStop::new(leadership.clone(), rx);
        assert_eq!(stop.refused(), None);
        tx.send_replace(true);
        assert_eq!(stop.refused(), Some(StopReason::Shutdown));
        assert_eq!(stop.requested().await, StopReason::Shutdown);

        let stop = HelmStop::new(leadership.clone(), watch::Sender::new(false).subscribe());
        tokio::time::advance(Duration::from_secs(16)).await;
        assert_eq!(stop.refused(), Some(StopReason::LostLeadership));
        leadership.ended();
        assert_eq!(stop.requested().await, StopReason::LostLeadership);
        assert_eq!(HelmStop::default().refused(), None);
    }
}
