//! Time source of the engine, injectable so tests drive timeouts without sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use k8s_openapi::jiff::Timestamp;

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// A clock stopped at 2026-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(Timestamp::from_second(1_767_225_600).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now = plus(*now, d);
    }

    /// Sets the clock.
    pub fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `t + d`, saturating at the maximum timestamp.
pub fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// Time from `from` until `to`; zero when `to` is not after `from`.
pub fn until(from: Timestamp, to: Timestamp) -> Duration {
    let signed = to.duration_since(from);
    if signed.is_negative() {
        Duration::ZERO
    } else {
        signed.unsigned_abs()
    }
}
