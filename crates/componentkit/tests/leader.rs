//! Leader election against an in-memory Lease with API-server semantics.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use componentkit::clock::{Clock, ManualClock, SystemClock};
use componentkit::leader::{InMemoryLease, LeaderElector, LeaseConfig, run_as_leader};
use componentkit::leadership::Leadership;
use tokio::sync::watch;

fn elector(
    lease: &InMemoryLease,
    clock: Arc<dyn componentkit::clock::Clock>,
    id: &str,
) -> LeaderElector {
    LeaderElector::new(
        Arc::new(lease.clone()),
        clock,
        LeaseConfig::new("helm-handler-leader", "deployment-system", id),
    )
}

#[tokio::test]
async fn one_candidate_wins_and_takeover_happens_only_after_expiry() {
    let clock = ManualClock::at_epoch();
    let lease = InMemoryLease::default();
    let a = elector(&lease, Arc::new(clock.clone()), "a");
    let b = elector(&lease, Arc::new(clock.clone()), "b");

    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "a creates the Lease"
    );
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b must not take a valid Lease"
    );
    assert_eq!(a.holder().await.unwrap().as_deref(), Some("a"));
    let spec = lease.current().unwrap().spec.unwrap();
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_eq!(spec.lease_transitions, Some(0));

    // a renews every 5 s: b never gets it.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(5));
        assert!(a.try_acquire_or_renew().await.unwrap());
        assert!(!b.try_acquire_or_renew().await.unwrap());
    }
    // a stops renewing (crash). Until 15 s after the last renewal, the Lease holds.
    clock.advance(Duration::from_secs(14));
    assert!(!b.try_acquire_or_renew().await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "b takes over the expired Lease"
    );
    let spec = lease.current().unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // a comes back: it has lost.
    assert!(!a.try_acquire_or_renew().await.unwrap());

    // Release lets the other take over at once.
    b.release().await.unwrap();
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(a.holder().await.unwrap().as_deref(), Some("a"));
}

#[tokio::test]
async fn racing_for_an_expired_lease_has_one_winner() {
    let clock = ManualClock::at_epoch();
    let lease = InMemoryLease::default();
    let a = elector(&lease, Arc::new(clock.clone()), "a");
    assert!(a.try_acquire_or_renew().await.unwrap());
    clock.advance(Duration::from_secs(60));
    // b and c both see the expired Lease; the resourceVersion guard lets only one replace it.
    // b and c just started: a Lease they have not watched for a whole duration is not theirs
    // to judge (client-go's rule), however old its renewTime.
    let b = elector(&lease, Arc::new(clock.clone()), "b");
    let c = elector(&lease, Arc::new(clock.clone()), "c");
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert!(!c.try_acquire_or_renew().await.unwrap());
    clock.advance(Duration::from_secs(15));
    let (rb, rc) = tokio::join!(b.try_acquire_or_renew(), c.try_acquire_or_renew());
    let wins = [rb.unwrap(), rc.unwrap()].iter().filter(|w| **w).count();
    assert_eq!(wins, 1);
}

/// Two replicas running `run_as_leader` with short real durations: never both active; the
/// survivor takes over when the leader dies; a shutdown releases the Lease.
#[tokio::test]
async fn only_the_leader_runs_and_the_survivor_takes_over() {
    let lease = InMemoryLease::default();
    let active = Arc::new(AtomicUsize::new(0));
    let max_active = Arc::new(AtomicUsize::new(0));
    let terms = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let spawn = |id: &'static str| {
        let mut cfg = LeaseConfig::new("l", "ns", id);
        cfg.lease_duration = Duration::from_millis(600);
        cfg.renew_interval = Duration::from_millis(150);
        cfg.retry_interval = Duration::from_millis(50);
        let elector = Arc::new(LeaderElector::new(
            Arc::new(lease.clone()),
            Arc::new(SystemClock),
            cfg,
        ));
        let (tx, rx) = watch::channel(false);
        let (active, max_active, terms) = (active.clone(), max_active.clone(), terms.clone());
        let task = tokio::spawn(async move {
            run_as_leader(elector, Leadership::candidate(), rx, move |stop| {
                let (active, max_active, terms) =
                    (active.clone(), max_active.clone(), terms.clone());
                async move {
                    struct Guard(Arc<AtomicUsize>);
                    impl Drop for Guard {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
                    let _g = Guard(active.clone());
                    max_active.fetch_max(n, Ordering::SeqCst);
                    terms.lock().unwrap().push(id.to_string());
                    stop.await;
                }
            })
            .await;
        });
        (task, tx)
    };

    let (task_a, _stop_a) = spawn("a");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (task_b, stop_b) = spawn("b");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(*terms.lock().unwrap(), ["a"], "a leads, b waits");
    assert_eq!(active.load(Ordering::SeqCst), 1);

    // a dies (its renewals stop with it); b takes over after the Lease expires.
    task_a.abort();
    let _ = task_a.await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(*terms.lock().unwrap(), ["a", "b"]);
    assert_eq!(
        lease
            .current()
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );

    // Shutdown: b stops and releases the Lease.
    stop_b.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task_b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.current().unwrap().spec.unwrap().holder_identity, None);
    assert_eq!(
        max_active.load(Ordering::SeqCst),
        1,
        "never two leaders at once"
    );
    assert_eq!(active.load(Ordering::SeqCst), 0);
}

/// A leader that cannot reach the API stops before its Lease could expire.
#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_before_expiry() {
    let lease = InMemoryLease::default();
    let mut cfg = LeaseConfig::new("l", "ns", "a");
    cfg.lease_duration = Duration::from_millis(1500);
    cfg.renew_interval = Duration::from_millis(250);
    cfg.retry_interval = Duration::from_millis(50);
    let elector = Arc::new(LeaderElector::new(
        Arc::new(lease.clone()),
        Arc::new(SystemClock),
        cfg,
    ));
    let (_tx, rx) = watch::channel(false);
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
    let leadership = Leadership::candidate();
    let fence = leadership.clone();
    let task = tokio::spawn(run_as_leader(
        elector,
        leadership.clone(),
        rx,
        move |stop| {
            let (ended_tx, started_tx) = (ended_tx.clone(), started_tx.clone());
            let fence = fence.clone();
            async move {
                assert!(fence.may_act(), "the fence is open while leading");
                let _ = started_tx.send(std::time::Instant::now());
                stop.await;
                // Closed before the term is told to stop: nothing in flight writes after.
                assert!(!fence.may_act(), "the fence closes before stop resolves");
                let _ = ended_tx.send(std::time::Instant::now());
            }
        },
    ));
    started_rx.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last_renew = std::time::Instant::now();
    lease.set_unavailable(true);
    let ended = tokio::time::timeout(Duration::from_secs(3), ended_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        ended.duration_since(last_renew) < Duration::from_millis(1500),
        "stepped down after {:?}",
        ended.duration_since(last_renew)
    );
    // Back online: it campaigns again and leads again.
    lease.set_unavailable(false);
    tokio::time::timeout(Duration::from_secs(3), started_rx.recv())
        .await
        .unwrap()
        .unwrap();
    task.abort();
}

/// Expiry is judged by when this candidate saw the record change, on its own clock: a holder
/// whose clock is behind (renewTime long past) but who keeps renewing is never overthrown,
/// and one whose clock is ahead (renewTime in the future) is taken over one Lease after it
/// stopped renewing, not when its future renewTime passes.
#[tokio::test]
async fn expiry_is_judged_by_local_observation_not_the_holders_clock() {
    let ours = ManualClock::at_epoch();
    for skew in [-3600i64, 3600] {
        let lease = InMemoryLease::default();
        let skewed = if skew < 0 {
            ours.now() - Duration::from_secs(skew.unsigned_abs())
        } else {
            ours.now() + Duration::from_secs(skew.unsigned_abs())
        };
        let holder_clock = ManualClock::new(skewed);
        let holder = elector(&lease, Arc::new(holder_clock.clone()), "holder");
        let b = elector(&lease, Arc::new(ours.clone()), "b");
        assert!(holder.try_acquire_or_renew().await.unwrap());
        for _ in 0..10 {
            assert!(!b.try_acquire_or_renew().await.unwrap(), "skew {skew}");
            ours.advance(Duration::from_secs(5));
            holder_clock.advance(Duration::from_secs(5));
            assert!(holder.try_acquire_or_renew().await.unwrap());
        }
        // The holder stops: b takes over 15 s after it last saw a change.
        assert!(!b.try_acquire_or_renew().await.unwrap());
        ours.advance(Duration::from_secs(14));
        assert!(!b.try_acquire_or_renew().await.unwrap(), "skew {skew}");
        ours.advance(Duration::from_secs(1));
        assert!(b.try_acquire_or_renew().await.unwrap(), "skew {skew}");
    }
}
