//! One helm operation per release at a time (within this process).
//!
//! helm itself refuses concurrent writers with "another operation is in progress", but only
//! once the first one has recorded its pending revision; two processes started together can
//! both get past that check. Serialising per (namespace, name) here avoids the race and the
//! spurious conflicts. Entries are removed when nobody holds or waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::release::Release;
use crate::config::{NamespaceName, ReleaseName};

type Key = (NamespaceName, ReleaseName);

/// Per-release async mutexes.
#[derive(Default, Debug)]
pub struct ReleaseLocks {
    map: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while an operation runs on a release.
pub struct ReleaseGuard<'a> {
    locks: &'a ReleaseLocks,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
}

impl ReleaseLocks {
    /// Waits until no other operation of this engine runs on `release`.
    pub async fn lock(&self, release: &Release) -> ReleaseGuard<'_> {
        let key = (release.namespace.clone(), release.name.clone());
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        ReleaseGuard {
            locks: self,
            key,
            guard: Some(guard),
        }
    }

    /// Number of releases with a holder or waiter (for tests).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ReleaseGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds it: nobody waits, forget the entry.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn serialises_one_release_not_others() {
        let locks = Arc::new(ReleaseLocks::default());
        let running = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (locks, running, max) = (locks.clone(), running.clone(), max.clone());
            tasks.push(tokio::spawn(async move {
                let release = Release::parse("same", "ns").unwrap();
                let _g = locks.lock(&release).await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5 + i)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert!(locks.is_empty(), "entries are cleaned up");

        // Different releases do not wait for each other.
        let a = locks.lock(&Release::parse("a", "ns").unwrap()).await;
        let b = tokio::time::timeout(
            Duration::from_secs(1),
            locks.lock(&Release::parse("a", "other").unwrap()),
        )
        .await;
        assert!(b.is_ok());
        drop(b);
        drop(a);
        assert!(locks.is_empty());
    }
}
