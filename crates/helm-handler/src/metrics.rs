//! Prometheus metrics and the health endpoints of the controller process.
//!
//! [`Metrics`] holds every metric family (prometheus-client); [`Health`] holds the process
//! state behind `/healthz` and `/readyz`; [`serve`] runs the small HTTP server (axum) that
//! exposes `/metrics`, `/healthz` and `/readyz`.
//!
//! Metric names (all prefixed `helm_handler_`):
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `reconciles_total` | counter | `operation` (apply, check_applied, delete, check_deleted), `result` (done, in_progress, failed_transient, failed_permanent) |
//! | `reconcile_duration_seconds` | histogram | `operation` |
//! | `chart_pulls_total` | counter | `source_type` (oci, http), `result` (downloaded, cache_hit, error) |
//! | `chart_cache_hits_total` / `chart_cache_misses_total` | counter | — |
//! | `chart_bytes_downloaded_total` | counter | — |
//! | `release_operations_total` | counter | `operation` (install, upgrade, uninstall), `result` (ok, error) |
//! | `errors_total` | counter | `category` (Config, Auth, NotFound, Network, Tls, Integrity, Io, Conflict, Timeout, Internal) |
//! | `helm_processes_total` | counter | `command` (version, upgrade, status, get manifest, uninstall, rollback, template): helm processes started |
//! | `leader` | gauge | — (1 when this replica holds the lease, or leader election is off) |
//! | `build_info` | gauge | `version` |

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use componentkit::watch_health::WatchHealth;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The handler operation a reconcile ran.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Operation {
    apply,
    check_applied,
    delete,
    check_deleted,
}

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReconcileResult {
    done,
    in_progress,
    failed_transient,
    failed_permanent,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub operation: Operation,
    pub result: ReconcileResult,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: Operation,
}

/// How a chart pull ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PullResult {
    downloaded,
    cache_hit,
    error,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PullLabels {
    pub source_type: String,
    pub result: PullResult,
}

/// A Helm release operation.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReleaseOperation {
    install,
    upgrade,
    uninstall,
    rollback,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum OkOrError {
    ok,
    error,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReleaseLabels {
    pub operation: ReleaseOperation,
    pub result: OkOrError,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub watch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

/// Every metric of the process, registered in one [`Registry`].
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<OperationLabels, Histogram>,
    pub chart_pulls: Family<PullLabels, Counter>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub bytes_downloaded: Counter,
    pub release_operations: Family<ReleaseLabels, Counter>,
    pub errors: Family<CategoryLabels, Counter>,
    pub watch_errors: Family<WatchLabels, Counter>,
    pub leader: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: &'static str,
}

/// helm processes started by this process, by command. Process-wide (the release engine
/// has no [`Metrics`]); every [`Metrics`] exposes it.
static HELM_PROCESSES: LazyLock<Family<CommandLabels, Counter>> = LazyLock::new(Family::default);

/// Counts one helm process (called where helm is spawned).
pub fn helm_process_started(command: &'static str) {
    HELM_PROCESSES
        .get_or_create(&CommandLabels { command })
        .inc();
}

/// Histogram buckets for reconcile durations: 5 ms … ~80 s.
fn duration_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 15,
    ))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("helm_handler");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Handler operations run by the controller, by operation and result",
            reconciles.clone(),
        );
        let reconcile_duration =
            Family::<OperationLabels, Histogram>::new_with_constructor(duration_histogram as _);
        registry.register(
            "reconcile_duration_seconds",
            "Duration of handler operations, in seconds",
            reconcile_duration.clone(),
        );
        let chart_pulls = Family::<PullLabels, Counter>::default();
        registry.register(
            "chart_pulls",
            "Chart locates (pulls), by source type and result",
            chart_pulls.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "chart_cache_hits",
            "Chart locates served from the cache without downloading chart bytes",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "chart_cache_misses",
            "Chart locates that downloaded the chart",
            cache_misses.clone(),
        );
        let bytes_downloaded = Counter::default();
        registry.register(
            "chart_bytes_downloaded",
            "Chart archive bytes downloaded into the cache",
            bytes_downloaded.clone(),
        );
        let release_operations = Family::<ReleaseLabels, Counter>::default();
        registry.register(
            "release_operations",
            "Helm release operations (install, upgrade, uninstall) by result",
            release_operations.clone(),
        );
        let errors = Family::<CategoryLabels, Counter>::default();
        registry.register("errors", "Handler errors by category", errors.clone());
        let watch_errors = Family::<WatchLabels, Counter>::default();
        registry.register(
            "watch_errors",
            "Failed list/watch calls of the controller's watches (Component, Secret, ConfigMap), by watch",
            watch_errors.clone(),
        );
        registry.register(
            "helm_processes",
            "helm processes started, by helm command",
            HELM_PROCESSES.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this replica is the active controller (holds the lease, or leader election is off)",
            leader.clone(),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Build information; always 1",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        Self {
            registry,
            reconciles,
            reconcile_duration,
            chart_pulls,
            cache_hits,
            cache_misses,
            bytes_downloaded,
            release_operations,
            errors,
            watch_errors,
            leader,
        }
    }

    /// Records one handler operation.
    pub fn observe_reconcile(
        &self,
        operation: Operation,
        result: ReconcileResult,
        elapsed: Duration,
    ) {
        self.reconciles
            .get_or_create(&ReconcileLabels { operation, result })
            .inc();
        self.reconcile_duration
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one chart locate. `downloaded_bytes` is the archive size on a cache miss.
    pub fn observe_pull(&self, source_type: &str, cache_hit: bool, downloaded_bytes: u64) {
        let result = if cache_hit {
            self.cache_hits.inc();
            PullResult::cache_hit
        } else {
            self.cache_misses.inc();
            self.bytes_downloaded.inc_by(downloaded_bytes);
            PullResult::downloaded
        };
        self.chart_pulls
            .get_or_create(&PullLabels {
                source_type: source_type.to_string(),
                result,
            })
            .inc();
    }

    /// Records a failed chart locate.
    pub fn observe_pull_error(&self, source_type: &str) {
        self.chart_pulls
            .get_or_create(&PullLabels {
                source_type: source_type.to_string(),
                result: PullResult::error,
            })
            .inc();
    }

    pub fn count_release_operation(&self, operation: ReleaseOperation, ok: bool) {
        let result = if ok { OkOrError::ok } else { OkOrError::error };
        self.release_operations
            .get_or_create(&ReleaseLabels { operation, result })
            .inc();
    }

    /// Records an error by its category name (`ErrorCategory::as_str`, e.g. `NotFound`).
    pub fn observe_error(&self, category: &str) {
        self.errors
            .get_or_create(&CategoryLabels {
                category: category.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing into a String cannot fail; keep the scrape answering regardless.
            out.clear();
        }
        out
    }
}

/// The role of this replica with respect to leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not started yet (client not built, lease not tried).
    Starting = 0,
    /// Waiting for the lease, ready to take over.
    Standby = 1,
    /// Running the controller (holds the lease, or leader election is off).
    Leader = 2,
}

/// The process state behind `/healthz` and `/readyz`.
#[derive(Debug)]
pub struct Health {
    alive: AtomicBool,
    role: AtomicU8,
    controller_started: AtomicBool,
    /// The controller's watches: a leader whose watch fails is not ready.
    pub watches: WatchHealth,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            alive: AtomicBool::new(true),
            role: AtomicU8::new(Role::Starting as u8),
            controller_started: AtomicBool::new(false),
            watches: WatchHealth::new(),
        }
    }
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::SeqCst);
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::SeqCst) {
            1 => Role::Standby,
            2 => Role::Leader,
            _ => Role::Starting,
        }
    }

    /// Marks the controller's watches as started (or stopped, when it loses the lease).
    pub fn set_controller_started(&self, started: bool) {
        self.controller_started.store(started, Ordering::SeqCst);
    }

    /// Marks the process as broken beyond recovery: `/healthz` fails so it gets restarted.
    pub fn set_dead(&self) {
        self.alive.store(false, Ordering::SeqCst);
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Ready: a leader whose controller has started and whose watches work, or a standby
    /// waiting for the lease.
    pub fn is_ready(&self) -> bool {
        self.is_alive()
            && match self.role() {
                Role::Starting => false,
                Role::Standby => true,
                Role::Leader => {
                    self.controller_started.load(Ordering::SeqCst)
                        && self.watches.failing().is_empty()
                }
            }
    }

    /// A short, human-readable description of the state, for `/readyz`; names each failing
    /// watch with the API server's reason.
    pub fn describe(&self) -> String {
        if !self.is_alive() {
            return "dead".into();
        }
        let state = match self.role() {
            Role::Starting => "starting",
            Role::Standby => "standby (waiting for the leader lease)",
            Role::Leader if self.controller_started.load(Ordering::SeqCst) => {
                "leader, controller running"
            }
            Role::Leader => "leader, controller starting",
        };
        let failing = self.watches.failing();
        if self.role() != Role::Leader || failing.is_empty() {
            return state.into();
        }
        let reasons: Vec<String> = failing
            .iter()
            .map(|(watch, error)| format!("watch {watch} failing: {error}"))
            .collect();
        format!("{state}; {}", reasons.join("; "))
    }
}

#[derive(Clone)]
struct ServerState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The router serving `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ServerState { metrics, health })
}

async fn metrics_handler(State(state): State<ServerState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(state): State<ServerState>) -> Response {
    if state.health.is_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "dead\n").into_response()
    }
}

async fn readyz(State(state): State<ServerState>) -> Response {
    let text = format!("{}\n", state.health.describe());
    if state.health.is_ready() {
        (StatusCode::OK, text).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family() {
        let m = Metrics::new();
        m.observe_reconcile(
            Operation::apply,
            ReconcileResult::done,
            Duration::from_millis(20),
        );
        m.observe_pull("oci", false, 1234);
        m.observe_pull("http", true, 0);
        m.observe_pull_error("oci");
        m.count_release_operation(ReleaseOperation::install, true);
        m.observe_error("network");
        m.leader.set(1);
        m.watch_errors
            .get_or_create(&WatchLabels {
                watch: "Secret".into(),
            })
            .inc();
        let text = m.encode();
        for needle in [
            "helm_handler_reconciles_total{operation=\"apply\",result=\"done\"} 1",
            "helm_handler_reconcile_duration_seconds_count{operation=\"apply\"} 1",
            "helm_handler_chart_pulls_total{source_type=\"oci\",result=\"downloaded\"} 1",
            "helm_handler_chart_pulls_total{source_type=\"http\",result=\"cache_hit\"} 1",
            "helm_handler_chart_pulls_total{source_type=\"oci\",result=\"error\"} 1",
            "helm_handler_chart_cache_hits_total 1",
            "helm_handler_chart_cache_misses_total 1",
            "helm_handler_chart_bytes_downloaded_total 1234",
            "helm_handler_release_operations_total{operation=\"install\",result=\"ok\"} 1",
            "helm_handler_errors_total{category=\"network\"} 1",
            "helm_handler_leader 1",
            "helm_handler_watch_errors_total{watch=\"Secret\"} 1",
            "helm_handler_build_info{version=",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn readiness_follows_role() {
        let h = Health::new();
        assert!(h.is_alive());
        assert!(!h.is_ready());
        h.set_role(Role::Standby);
        assert!(h.is_ready());
        h.set_role(Role::Leader);
        assert!(!h.is_ready());
        h.set_controller_started(true);
        assert!(h.is_ready());
        h.watches.failed(
            "Secret",
            "HTTP 403: secrets is forbidden: User \"x\" cannot list resource \"secrets\"",
        );
        assert!(!h.is_ready());
        assert!(
            h.describe()
                .contains("watch Secret failing: HTTP 403: secrets is forbidden"),
            "{}",
            h.describe()
        );
        h.watches.delivered("Secret");
        assert!(h.is_ready());
        h.set_dead();
        assert!(!h.is_alive());
        assert!(!h.is_ready());
    }
}
