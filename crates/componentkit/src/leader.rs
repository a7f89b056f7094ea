//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! A candidate acquires the Lease when it is absent, has no holder, or has expired: the
//! record stayed unchanged for `leaseDurationSeconds` **as this candidate observed it** —
//! measured on its own clock from when it first saw that record, as client-go does, never
//! from the holder's `renewTime`, so a skewed clock cannot make two leaders. The holder
//! renews every `renew_interval`. Every write is a replace guarded by the Lease's
//! resourceVersion, so two candidates racing for an expired Lease cannot both win. A holder
//! that cannot renew before its Lease would expire, or finds another holder, has lost: its
//! [`Leadership`] fence closes (every later write is refused) and it stops reconciling.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::api::ApiError;
use crate::clock::{self, Clock, Timestamp};
use crate::handler::ErrorCategory;
use crate::kube_error::map_kube_error;
use crate::leadership::Leadership;

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name (e.g. `helm-handler-leader`).
    pub name: String,
    /// Lease namespace (the controller's namespace).
    pub namespace: String,
    /// This candidate's identity (pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal (default 15 s).
    pub lease_duration: Duration,
    /// How often the holder renews (default 5 s).
    pub renew_interval: Duration,
    /// How often a non-holder tries to acquire (default 2 s).
    pub retry_interval: Duration,
}

impl LeaseConfig {
    /// Defaults: 15 s lease, renew every 5 s, retry every 2 s.
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            retry_interval: Duration::from_secs(2),
        }
    }
}

/// The Lease operations leader election needs (one named Lease).
#[async_trait]
pub trait LeaseApi: Send + Sync + 'static {
    async fn get(&self) -> Result<Option<Lease>, ApiError>;
    /// Creates the Lease; `Conflict` when it already exists.
    async fn create(&self, lease: Lease) -> Result<Lease, ApiError>;
    /// Replaces the Lease, guarded by its resourceVersion; `Conflict` when stale.
    async fn replace(&self, lease: Lease) -> Result<Lease, ApiError>;
}

/// A Lease on a real API server.
pub struct KubeLeaseApi {
    api: Api<Lease>,
    name: String,
}

impl KubeLeaseApi {
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }
}

#[async_trait]
impl LeaseApi for KubeLeaseApi {
    async fn get(&self) -> Result<Option<Lease>, ApiError> {
        self.api.get_opt(&self.name).await.map_err(map_kube_error)
    }
    async fn create(&self, lease: Lease) -> Result<Lease, ApiError> {
        self.api
            .create(&PostParams::default(), &lease)
            .await
            .map_err(map_kube_error)
    }
    async fn replace(&self, lease: Lease) -> Result<Lease, ApiError> {
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(map_kube_error)
    }
}

/// An in-memory Lease with API-server semantics (create conflicts when present, replace
/// conflicts on a stale resourceVersion). Clones share the Lease.
#[derive(Clone, Default)]
pub struct InMemoryLease {
    state: Arc<Mutex<(Option<Lease>, u64)>>,
    unavailable: Arc<std::sync::atomic::AtomicBool>,
}

impl InMemoryLease {
    /// Simulates an unreachable API server: every call fails while set.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable
            .store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), ApiError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiError::Other(
                ErrorCategory::Network,
                "connection refused".into(),
            ));
        }
        Ok(())
    }

    /// The Lease as stored now.
    pub fn current(&self) -> Option<Lease> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

#[async_trait]
impl LeaseApi for InMemoryLease {
    async fn get(&self) -> Result<Option<Lease>, ApiError> {
        self.check()?;
        Ok(self.current())
    }
    async fn create(&self, mut lease: Lease) -> Result<Lease, ApiError> {
        self.check()?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0.is_some() {
            return Err(ApiError::Conflict("lease already exists".into()));
        }
        st.1 += 1;
        lease.metadata.resource_version = Some(st.1.to_string());
        st.0 = Some(lease.clone());
        Ok(lease)
    }
    async fn replace(&self, mut lease: Lease) -> Result<Lease, ApiError> {
        self.check()?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(current) = st.0.as_ref() else {
            return Err(ApiError::NotFound("lease".into()));
        };
        if current.metadata.resource_version != lease.metadata.resource_version {
            return Err(ApiError::Conflict("lease was modified".into()));
        }
        st.1 += 1;
        lease.metadata.resource_version = Some(st.1.to_string());
        st.0 = Some(lease.clone());
        Ok(lease)
    }
}

/// One leader-election candidate.
pub struct LeaderElector {
    api: Arc<dyn LeaseApi>,
    clock: Arc<dyn Clock>,
    config: LeaseConfig,
    /// The other holder's record as last seen, and when this candidate first saw it.
    observed: Mutex<Option<(LeaseSpec, Timestamp)>>,
}

/// Whether another holder's Lease is still valid, judged by local observation: the record
/// `spec` was first seen unchanged at `observed_at` (this candidate's clock); it is valid
/// until `observed_at + leaseDurationSeconds`. The holder's `renewTime` is never compared
/// with this clock.
pub fn held_by_other(
    spec: &LeaseSpec,
    observed_at: Timestamp,
    now: Timestamp,
    default: Duration,
) -> bool {
    let held = spec
        .holder_identity
        .as_deref()
        .is_some_and(|h| !h.is_empty());
    let duration = spec
        .lease_duration_seconds
        .map(|s| Duration::from_secs(u64::try_from(s.max(0)).unwrap_or(0)))
        .unwrap_or(default);
    held && now < clock::plus(observed_at, duration)
}

/// Whole seconds, rounded up (others must never see a shorter Lease than the holder assumes).
fn secs(d: Duration) -> i32 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(whole.max(1)).unwrap_or(i32::MAX)
}

impl LeaderElector {
    pub fn new(api: Arc<dyn LeaseApi>, clock: Arc<dyn Clock>, config: LeaseConfig) -> Self {
        Self {
            api,
            clock,
            config,
            observed: Mutex::new(None),
        }
    }

    /// When this candidate first saw `spec` unchanged (now, if it differs from the last one).
    fn observe(&self, spec: &LeaseSpec, now: Timestamp) -> Timestamp {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        match observed.as_ref() {
            Some((seen, at)) if seen == spec => *at,
            _ => {
                *observed = Some((spec.clone(), now));
                now
            }
        }
    }

    /// The settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn spec(&self, now: Timestamp, acquire: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(secs(self.config.lease_duration)),
            acquire_time: Some(acquire.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Acquires the Lease or renews it; `Ok(true)` when this candidate holds it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, ApiError> {
        let now = self.clock.now();
        let Some(mut lease) = self.api.get().await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, None, 0)),
            };
            return match self.api.create(lease).await {
                Ok(_) => Ok(true),
                Err(ApiError::Conflict(_)) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let next = if spec.holder_identity.as_deref() == Some(self.config.identity.as_str()) {
            self.spec(now, spec.acquire_time.clone(), transitions)
        } else {
            let observed_at = self.observe(&spec, now);
            if held_by_other(&spec, observed_at, now, self.config.lease_duration) {
                return Ok(false);
            }
            self.spec(now, None, transitions.saturating_add(1))
        };
        lease.spec = Some(next);
        match self.api.replace(lease).await {
            Ok(_) => Ok(true),
            Err(ApiError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (if held) so another candidate can take over at once.
    pub async fn release(&self) -> Result<(), ApiError> {
        let Some(mut lease) = self.api.get().await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(self.clock.now()));
        lease.spec = Some(spec);
        self.api.replace(lease).await.map(|_| ())
    }

    /// The current holder of the Lease, if any.
    pub async fn holder(&self) -> Result<Option<String>, ApiError> {
        Ok(self
            .api
            .get()
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity))
    }
}

/// Runs `term` only while this candidate leads, until `shutdown` becomes true.
///
/// Campaigns every `retry_interval`; once leader, calls `term(stop)` where `stop` resolves
/// when leadership is lost (renewal failed, or could not be confirmed before the Lease would
/// expire) or shutdown was requested; `term` must return soon after. `leadership` opens on
/// every successful acquire or renewal for one Lease duration from when that attempt
/// started, and closes when the term is lost — before `stop` resolves, so nothing in flight
/// writes after. After a lost term it campaigns again; on shutdown it waits for `term`,
/// then releases the Lease and returns.
pub async fn run_as_leader<F, Fut>(
    elector: Arc<LeaderElector>,
    leadership: Leadership,
    mut shutdown: watch::Receiver<bool>,
    mut term: F,
) where
    F: FnMut(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = ()>,
{
    let cfg = elector.config().clone();
    loop {
        // Campaign.
        loop {
            if *shutdown.borrow() {
                return;
            }
            let started = tokio::time::Instant::now();
            match elector.try_acquire_or_renew().await {
                Ok(true) => {
                    leadership.renewed(started, cfg.lease_duration);
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, lease = %cfg.name, "leader election: cannot read or write the Lease")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(cfg.retry_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(identity = %cfg.identity, lease = %cfg.name, "became leader");

        // Lead: renew in the background; signal loss.
        let (lost_tx, mut lost_rx) = watch::channel(false);
        let renewer = AbortOnDrop(tokio::spawn({
            let elector = elector.clone();
            let cfg = cfg.clone();
            let leadership = leadership.clone();
            async move {
                let mut last_ok = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(cfg.renew_interval).await;
                    let started = tokio::time::Instant::now();
                    // A hanging API call must not keep us leading past the Lease.
                    let attempt =
                        tokio::time::timeout(cfg.renew_interval, elector.try_acquire_or_renew())
                            .await
                            .unwrap_or_else(|_| {
                                Err(ApiError::Other(
                                    ErrorCategory::Timeout,
                                    "Lease renewal timed out".into(),
                                ))
                            });
                    match attempt {
                        Ok(true) => {
                            leadership.renewed(started, cfg.lease_duration);
                            last_ok = started;
                        }
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "leader election: renewal failed");
                            // Stop before the Lease could expire and another replica take over.
                            if last_ok.elapsed() + cfg.renew_interval >= cfg.lease_duration {
                                break;
                            }
                        }
                    }
                }
                leadership.ended();
                let _ = lost_tx.send(true);
            }
        }));
        let mut sd = shutdown.clone();
        let stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            tokio::select! {
                _ = lost_rx.wait_for(|l| *l) => {}
                _ = sd.wait_for(|s| *s) => {}
            }
        });
        term(stop).await;
        drop(renewer);
        leadership.ended();
        if *shutdown.borrow() {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "leader election: cannot release the Lease");
            }
            return;
        }
        tracing::warn!(identity = %cfg.identity, "lost leadership; stopped reconciling");
    }
}

/// Aborts the task when dropped (also when the owning future is cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
