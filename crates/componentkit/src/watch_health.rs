//! Which of the controller's watches are failing, and why.
//!
//! A watch that cannot list (a missing CRD, RBAC without `list`) retries with backoff
//! forever; without this the controller would look healthy while doing nothing. Every
//! failure is logged at warn with the API server's reason, counted for the metrics, and
//! keeps the process not-ready (`/readyz`) until the watch delivers again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Called on every watch failure with the watch's name (for a metric).
pub type FailureObserver = Arc<dyn Fn(&str) + Send + Sync>;

/// The watches' state. Clones share it.
#[derive(Clone, Default)]
pub struct WatchHealth {
    failing: Arc<Mutex<BTreeMap<String, String>>>,
    observer: Option<FailureObserver>,
}

impl std::fmt::Debug for WatchHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHealth")
            .field("failing", &self.failing())
            .finish_non_exhaustive()
    }
}

impl WatchHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `observer` with the watch's name on every failure.
    pub fn with_observer(mut self, observer: FailureObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Watch `watch` failed with `error` (it will retry with backoff).
    pub fn failed(&self, watch: &str, error: &str) {
        if let Some(observe) = &self.observer {
            observe(watch);
        }
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if failing.get(watch).map(String::as_str) != Some(error) {
            tracing::warn!(
                watch,
                error,
                "watch failing; the controller does not see these objects (retrying with backoff)"
            );
            failing.insert(watch.to_string(), error.to_string());
        }
    }

    /// Watch `watch` delivered objects: it works (again).
    pub fn delivered(&self, watch: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if failing.remove(watch).is_some() {
            tracing::info!(watch, "watch recovered");
        }
    }

    /// The failing watches and their last error, by name.
    pub fn failing(&self) -> Vec<(String, String)> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Forgets every watch (a new leadership term starts new watches).
    pub fn reset(&self) {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_failure_lasts_until_the_watch_delivers() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let h = WatchHealth::new().with_observer(Arc::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(h.failing().is_empty());
        h.failed("Secret", "secrets is forbidden");
        h.failed("Secret", "secrets is forbidden");
        assert_eq!(
            h.failing(),
            vec![("Secret".to_string(), "secrets is forbidden".to_string())]
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
        h.delivered("ConfigMap");
        assert_eq!(h.failing().len(), 1);
        h.delivered("Secret");
        assert!(h.failing().is_empty());
    }
}
