//! `helm-handler run`: the controller process.
//!
//! Start-up, in order, each failing fast with a clear message (exit code 2 for a usage or
//! configuration problem, 1 for anything else):
//!
//! 1. logging (`--log-format json|text`, filter from `RUST_LOG`, default `info`);
//! 2. the helm binary: `helm version` must work and be 3.8 or newer;
//! 3. the chart cache directory (`--cache-dir`, bounded by `--cache-max-bytes`);
//! 4. the metrics/health server on `--metrics-addr` (`/metrics`, `/healthz`, `/readyz`);
//! 5. the Kubernetes client (`--kubeconfig`/`--context`, else in-cluster / `KUBECONFIG`),
//!    and a first API call, retried for up to `--startup-timeout` while `/healthz` answers
//!    (so a slow API server at boot is not a crash loop) — after that the process exits
//!    with the network error;
//! 6. leader election (on by default; Lease `helm-handler-leader` in the system namespace),
//!    then the controller until SIGTERM/SIGINT.
//!
//! Shutdown, in order: stop taking work; let running helm processes finish for
//! `--shutdown-grace`, then SIGTERM them (helm records a failed revision, which the next
//! leader upgrades at once — a killed helm would leave a pending one); write the last
//! statuses; release the Lease so a standby takes over without waiting for it to expire.
//! Losing the Lease instead closes the write fence at once and stops helm the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::registry::{SourceContext, SourceRegistry};
use componentkit::changes::Changed;
use componentkit::controller::{ControllerOptions, RelatedWatch};
use componentkit::crd::Component;
use componentkit::leadership::Leadership;
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::config::HelmConfig;
use crate::config_maps::KubeConfigMapStore;
use crate::credentials::{CredentialResolver, KubeSecretStore};
use crate::handler::drift_probe::KubeDrift;
use crate::handler::namespaces::KubeNamespaces;
use crate::handler::readiness_probe::KubeReadiness;
use crate::handler::secret_index::Watched;
use crate::handler::service_accounts::KubeServiceAccounts;
use crate::handler::{HelmHandler, HelmHandlerParts, ObjectKey, SecretIndex};
use crate::helm::records::RecordedReleases;
use crate::helm::stop::HelmStop;
use crate::helm::{HelmEngine, HelmEngineOptions};
use crate::identity::{ServiceAccountName, TenancyPolicy};
use crate::impersonation::KubeClients;
use crate::metrics::{self, Health, Metrics, Role, WatchLabels};

/// Default chart cache size: 1 GiB.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Namespace holding shared chart-credential Secrets and the leader-election Lease.
    #[arg(
        long,
        env = "HELM_HANDLER_SYSTEM_NAMESPACE",
        default_value = "deployment-system"
    )]
    pub system_namespace: String,

    /// Chart cache directory (content-addressed, shared by concurrent reconciles).
    #[arg(
        long,
        env = "HELM_HANDLER_CACHE_DIR",
        default_value = "/var/cache/helm-handler"
    )]
    pub cache_dir: PathBuf,

    /// Upper bound of the chart cache in bytes; least-recently-used charts are evicted.
    #[arg(long, default_value_t = DEFAULT_CACHE_MAX_BYTES)]
    pub cache_max_bytes: u64,

    /// The helm binary (3.8+ or 4.x): a path, or a name looked up on PATH.
    #[arg(long, env = "HELM_HANDLER_HELM_BINARY", default_value = "helm")]
    pub helm_binary: PathBuf,

    /// Number of Components reconciled in parallel.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Run only while holding the leader Lease (default).
    #[arg(long, overrides_with = "no_leader_election")]
    pub leader_election: bool,

    /// Run without leader election (a single replica only).
    #[arg(long, overrides_with = "leader_election")]
    pub no_leader_election: bool,

    /// Kubeconfig file (default: in-cluster service account, or $KUBECONFIG / ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// How long the first contact with the Kubernetes API is retried before giving up
    /// (e.g. `30s`, `2m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub startup_timeout: Duration,

    /// How often a Ready release is compared with its live objects (`driftDetection`;
    /// also after every deployment). E.g. `5m`, `30s`.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub drift_interval: Duration,

    /// Upper bound for one helm process (install, upgrade, uninstall, status).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub helm_timeout: Duration,

    /// On SIGTERM, how long running helm processes may go on before they are asked to stop
    /// (SIGTERM, killed 10 s later; a release they leave pending is unblocked at once).
    /// The Pod's `terminationGracePeriodSeconds` must exceed this by 15 s or more.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Lockdown: a Component without `serviceAccountName` acts as this ServiceAccount of its
    /// own namespace (never as the controller); a missing one fails it (`config`).
    #[arg(long, value_name = "NAME")]
    pub default_service_account: Option<ServiceAccountName>,

    /// Refuse releases outside their Component's namespace (`releaseNamespace`).
    #[arg(long)]
    pub no_cross_namespace_releases: bool,

    /// Reconcile only the Components whose labels match this selector (sharding: several
    /// controllers, each owning the Components of its selector; with leader election each
    /// selector has a Lease of its own). E.g. `sharding.deployment-orchestrator.io/key=shard-1`.
    #[arg(long, value_name = "SELECTOR", value_parser = crate::selector::parse)]
    pub watch_label_selector: Option<kube::core::Selector>,
}

impl RunArgs {
    pub fn leader_election_enabled(&self) -> bool {
        !self.no_leader_election
    }

    pub fn tenancy(&self) -> TenancyPolicy {
        TenancyPolicy {
            default_service_account: self.default_service_account.clone(),
            no_cross_namespace_releases: self.no_cross_namespace_releases,
        }
    }

    /// The leader Lease: `helm-handler-leader`, or per shard `helm-handler-leader-HASH`
    /// (12 hex digits of the selector's sha256) so that shards do not elect one leader.
    pub fn lease_name(&self) -> String {
        let base = componentkit::names::lease::default_name(componentkit::names::HELM_HANDLER);
        match &self.watch_label_selector {
            None => base,
            Some(selector) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(selector.to_string().as_bytes());
                format!("{base}-{}", &hex::encode(digest)[..12])
            }
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e} (e.g. 30s, 2m)"))
}

/// A start-up or run-time failure of the controller process.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Fatal(String),
}

impl RunError {
    fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Usage(_) => ExitCode::from(2),
            RunError::Fatal(_) => ExitCode::from(1),
        }
    }
}

pub fn main(args: RunArgs) -> ExitCode {
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("helm-handler run: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("helm-handler run: {e}");
            e.exit_code()
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // kube-client logs every failed connection at ERROR; the controller reports those itself.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("helm-handler run: logging not initialised: {e}");
    }
}

/// Builds the kube client from `--kubeconfig`/`--context`, else the usual inference; the
/// config is kept to build impersonating clients from.
async fn kube_client(args: &RunArgs) -> Result<(Client, kube::Config, String), RunError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                RunError::Usage(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    RunError::Usage(format!("invalid kubeconfig {}: {e}", path.display()))
                })?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| RunError::Usage(format!("cannot load kubeconfig context: {e}")))?,
        None => kube::Config::infer().await.map_err(|e| {
            RunError::Usage(format!(
                "no Kubernetes configuration (in-cluster service account, $KUBECONFIG or ~/.kube/config): {e}"
            ))
        })?,
    };
    let url = config.cluster_url.to_string();
    let mut config = config;
    config.headers.push(user_agent(&identity()));
    let client = Client::try_from(config.clone())
        .map_err(|e| RunError::Usage(format!("cannot build a Kubernetes client for {url}: {e}")))?;
    Ok((client, config, url))
}

/// `helm-handler/<version> (<identity>)`: the API server's audit log and metrics tell this
/// replica's requests from others' (and from helm's).
fn user_agent(identity: &str) -> (HeaderName, HeaderValue) {
    let version = env!("CARGO_PKG_VERSION");
    let value = HeaderValue::from_str(&format!("helm-handler/{version} ({identity})"))
        .unwrap_or_else(|_| {
            HeaderValue::from_static(concat!("helm-handler/", env!("CARGO_PKG_VERSION")))
        });
    (USER_AGENT, value)
}

/// First contact with the API server, retried with backoff until `timeout`.
async fn wait_for_api(client: &Client, url: &str, timeout: Duration) -> Result<(), RunError> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        match client.apiserver_version().await {
            Ok(v) => {
                tracing::info!(api_server = %url, version = %v.git_version, "connected to the Kubernetes API");
                return Ok(());
            }
            Err(e) => {
                let message = componentkit::kube_api::with_causes(&e);
                let now = Instant::now();
                if now >= deadline {
                    return Err(RunError::Fatal(format!(
                        "cannot reach the Kubernetes API server at {url} (gave up after {}): {message}",
                        humantime::format_duration(timeout)
                    )));
                }
                tracing::warn!(api_server = %url, retry_in = ?delay, "Kubernetes API not reachable yet: {message}");
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The controller process. Returns when a shutdown signal arrives or something fatal happens.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        system_namespace = %args.system_namespace,
        leader_election = args.leader_election_enabled(),
        default_service_account = ?args.default_service_account.as_ref().map(|s| s.as_str()),
        no_cross_namespace_releases = args.no_cross_namespace_releases,
        concurrency = args.concurrency,
        "starting helm-handler"
    );

    // The one SIGTERM/SIGINT handler: `shutdown` stops taking work at once, `helm_stop`
    // stops running helm processes once the grace period is over.
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let (helm_stop_tx, helm_stop) = tokio::sync::watch::channel(false);
    let grace = args.shutdown_grace;
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(grace = %humantime::format_duration(grace), "shutdown requested: no new work; running helm may finish within the grace period");
        let _ = shutdown_tx.send(true);
        tokio::time::sleep(grace).await;
        tracing::info!("shutdown grace period over: stopping running helm processes");
        let _ = helm_stop_tx.send(true);
    });
    let leadership = if args.leader_election_enabled() {
        Leadership::candidate()
    } else {
        Leadership::always()
    };

    // 2. helm
    let engine = HelmEngine::new(HelmEngineOptions {
        helm_binary: args.helm_binary.clone(),
        kubeconfig: args.kubeconfig.clone(),
        kube_context: args.context.clone(),
        timeout: args.helm_timeout,
        stop: HelmStop::new(leadership.clone(), helm_stop),
        ..HelmEngineOptions::default()
    })
    .map_err(|e| RunError::Fatal(e.to_string()))?;
    let helm_version = engine
        .check_version()
        .await
        .map_err(|e| RunError::Usage(e.to_string()))?;
    tracing::info!(helm = %helm_version, binary = %args.helm_binary.display(), "helm found");

    // 3. cache
    let cache = ChartCache::open(CacheConfig {
        dir: args.cache_dir.clone(),
        max_bytes: args.cache_max_bytes,
    })
    .map_err(|e| RunError::Usage(format!("chart cache {}: {e}", args.cache_dir.display())))?;
    let cache = Arc::new(cache);

    // 4. metrics + health
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new());
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| RunError::Usage(format!("--metrics-addr {}: {e}", args.metrics_addr)))?;
    let local = listener
        .local_addr()
        .map_err(|e| RunError::Fatal(format!("metrics server: {e}")))?;
    tracing::info!(addr = %local, "serving /metrics, /healthz and /readyz");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = {
        let router = metrics::router(metrics.clone(), health.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = metrics::serve(listener, router, shutdown).await {
                tracing::error!("metrics server stopped: {e}");
            }
        })
    };

    let stopping = Stopping {
        leadership,
        shutdown,
    };
    let result = run_with_server(args, engine, cache, metrics, health, stopping).await;
    signals.abort();
    let _ = stop_tx.send(true);
    let _ = server.await;
    result
}

/// What ends the controller's work: the lead (with its write fence) and the shutdown signal.
struct Stopping {
    leadership: Leadership,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

async fn run_with_server(
    args: RunArgs,
    engine: HelmEngine,
    cache: Arc<ChartCache>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stopping: Stopping,
) -> Result<(), RunError> {
    // 5. Kubernetes
    let (client, kube_config, url) = kube_client(&args).await?;
    let mut shutdown = stopping.shutdown.clone();
    tokio::select! {
        r = wait_for_api(&client, &url, args.startup_timeout) => r?,
        _ = shutdown.wait_for(|s| *s) => {
            tracing::info!("shutdown requested during start-up");
            return Ok(());
        }
    }

    let sources = Arc::new(SourceRegistry::new(SourceContext::new(cache)));
    let secret_index = Arc::new(SecretIndex::new());
    let clients = Arc::new(KubeClients::new(client.clone(), kube_config));
    // One cluster: readiness and drift checks share what discovery found (5 min).
    crate::readiness::share_discovery_process_wide();
    // Release reads come from helm's records (no helm process); changes run helm.
    let engine = RecordedReleases::new(Arc::new(engine), clients.clone());
    let handler = HelmHandler::new(HelmHandlerParts {
        engine: Arc::new(engine),
        readiness: Arc::new(KubeReadiness::new(clients.clone())),
        drift: Arc::new(KubeDrift::new(clients.clone())),
        namespaces: Arc::new(KubeNamespaces::new(clients)),
        service_accounts: Arc::new(KubeServiceAccounts::new(client.clone())),
        tenancy: args.tenancy(),
        secrets: Arc::new(KubeSecretStore::new(client.clone())),
        config_maps: Arc::new(KubeConfigMapStore::new(client.clone())),
        resolver: CredentialResolver::new(args.system_namespace.clone()),
        sources,
        metrics: metrics.clone(),
        secret_index: secret_index.clone(),
    })
    // No helm of ours runs past its deadline: a release pending for longer was abandoned.
    .with_stale_pending_after(args.helm_timeout + Duration::from_secs(60));

    // 6. leader election + controller
    run_controller(
        client,
        handler,
        secret_index,
        &args,
        metrics,
        health.clone(),
        stopping,
    )
    .await
    .map_err(|e| {
        health.set_role(Role::Starting);
        RunError::Fatal(e)
    })
}

/// This replica's identity (`status.claimedBy`, the Lease holder): the pod name
/// (`POD_NAME`, set by the manifests), else `HOSTNAME-PID`. Outside a Pod every process on a
/// machine shares `HOSTNAME`: two of them with leader election would both read the Lease as
/// theirs (found running two `run` processes on one machine against the real control plane).
pub fn identity() -> String {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let pid = std::process::id();
    match (var("POD_NAME"), var("HOSTNAME")) {
        (Some(pod), _) => pod,
        (None, Some(host)) => format!("{host}-{pid}"),
        (None, None) => format!("helm-handler-{pid}"),
    }
}

/// Re-reconciles the Components whose `valuesFrom` reads a ConfigMap that changed. Only
/// metadata is watched: a change is enough to trigger; the handler reads the data itself.
fn config_map_watch(
    api: Api<PartialObjectMeta<ConfigMap>>,
    index: Arc<SecretIndex>,
    resolver: CredentialResolver,
) -> RelatedWatch {
    RelatedWatch::new(
        api,
        watcher::Config::default(),
        move |changed: &Changed, store| {
            let (ns, name) = (&changed.namespace, &changed.name);
            let hits = index.changed(Watched::ConfigMap, &resolver, &store.state(), ns, name);
            to_reconcile("ConfigMap", ns, name, hits)
        },
    )
}

/// Every `interval`, pokes the Ready helm Components whose drift detection is on: the
/// handler then re-checks the release (desired state unchanged → no upgrade) and compares
/// its live objects.
fn drift_timer(interval: Duration) -> RelatedWatch {
    RelatedWatch::stream(move |store| {
        let store = store.clone();
        let ticks = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(interval).await;
            Some(((), ()))
        });
        Box::pin(futures::StreamExt::flat_map(ticks, move |()| {
            futures::stream::iter(drift_due(&store.state()))
        }))
    })
}

/// The Components a drift check is due for: helm, Ready, drift detection not disabled.
pub fn drift_due(components: &[Arc<Component>]) -> Vec<ObjectRef<Component>> {
    components
        .iter()
        .filter(|c| {
            c.spec.handler == componentkit::names::HELM_HANDLER
                && c.phase() == componentkit::crd::Phase::Ready
                && c.metadata.deletion_timestamp.is_none()
        })
        .filter(|c| {
            let ns = c.namespace().unwrap_or_default();
            let empty = serde_json::Value::Object(Default::default());
            HelmConfig::parse(c.spec.config.as_ref().unwrap_or(&empty), &ns).is_ok_and(|config| {
                config.drift_detection.mode != crate::drift::DriftMode::Disabled
            })
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Logs a change of a referenced object and turns the Components into references.
fn to_reconcile(
    kind: &str,
    namespace: &str,
    name: &str,
    hits: Vec<ObjectKey>,
) -> Vec<ObjectRef<Component>> {
    if !hits.is_empty() {
        tracing::info!(object = %format!("{kind} {namespace}/{name}"), components = hits.len(), "referenced {kind} changed; re-reconciling");
    }
    hits.into_iter()
        .map(|k| ObjectRef::<Component>::new(&k.name).within(&k.namespace))
        .collect()
}

/// Reports this replica's role (`/readyz`, `helm_handler_leader`) as the elector sees it.
async fn follow_leadership(leadership: Leadership, metrics: Arc<Metrics>, health: Arc<Health>) {
    let mut leading = leadership.subscribe();
    loop {
        let now = *leading.borrow_and_update();
        tracing::info!(
            "leadership: {}",
            if now { "this replica leads" } else { "standby" }
        );
        health.set_role(if now { Role::Leader } else { Role::Standby });
        health.set_controller_started(now);
        metrics.leader.set(i64::from(now));
        if leading.changed().await.is_err() {
            return;
        }
    }
}

/// Leader election, then componentkit's controller with the Secret watch mapping.
async fn run_controller(
    client: Client,
    handler: HelmHandler,
    secret_index: Arc<SecretIndex>,
    args: &RunArgs,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stopping: Stopping,
) -> Result<(), String> {
    let identity = identity();
    let resolver = CredentialResolver::new(args.system_namespace.clone());
    // Metadata only: Secrets' data never reaches this watch (the handler reads the few
    // Secrets it needs when it needs them).
    let secrets: Api<PartialObjectMeta<Secret>> = Api::all(client.clone());
    let config_maps = config_map_watch(
        Api::all(client.clone()),
        secret_index.clone(),
        resolver.clone(),
    );
    let related = RelatedWatch::new(
        secrets,
        // Helm's own release records change on every upgrade and reference nothing.
        watcher::Config::default().fields("type!=helm.sh/release.v1"),
        move |changed: &Changed, store| {
            let (ns, name) = (&changed.namespace, &changed.name);
            let hits = secret_index.changed(Watched::Secret, &resolver, &store.state(), ns, name);
            to_reconcile("Secret", ns, name, hits)
        },
    );
    let mut options = ControllerOptions::new(&identity)
        .watch_related(related)
        .watch_related(config_maps)
        .watch_related(drift_timer(args.drift_interval));
    options.concurrency = args.concurrency;
    options.watch_health = health.watches.clone().with_observer({
        let metrics = metrics.clone();
        Arc::new(move |watch: &str| {
            metrics
                .watch_errors
                .get_or_create(&WatchLabels {
                    watch: watch.to_string(),
                })
                .inc();
        })
    });
    options.label_selector = args.watch_label_selector.as_ref().map(|s| s.to_string());
    let lease_name = args.lease_name();
    if args.leader_election_enabled() {
        options = options.with_leader_election(&lease_name, &args.system_namespace);
        options.leadership = stopping.leadership.clone();
        health.set_role(Role::Standby);
    }
    let follower = tokio::spawn(follow_leadership(
        stopping.leadership.clone(),
        metrics.clone(),
        health.clone(),
    ));
    tracing::info!(
        identity = %identity,
        label_selector = options.label_selector.as_deref().unwrap_or("-"),
        lease = %if args.leader_election_enabled() { format!("{}/{lease_name}", args.system_namespace) } else { "-".into() },
        "controller starting"
    );
    componentkit::controller::run_until(client, Arc::new(handler), options, stopping.shutdown)
        .await;
    follower.abort();
    health.set_controller_started(false);
    tracing::info!("controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> RunArgs {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(["helm-handler", "run"].iter().chain(args.iter()))
                .unwrap();
        match cli.command {
            crate::cli::Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_and_defaults() {
        let a = parse(&[]);
        assert!(a.leader_election_enabled());
        assert_eq!(a.system_namespace, "deployment-system");
        assert_eq!(a.metrics_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(a.cache_max_bytes, DEFAULT_CACHE_MAX_BYTES);
        assert_eq!(a.log_format, LogFormat::Json);
        assert_eq!(a.startup_timeout, Duration::from_secs(60));
        assert!(!parse(&["--no-leader-election"]).leader_election_enabled());
        assert!(parse(&["--no-leader-election", "--leader-election"]).leader_election_enabled());
        assert!(!parse(&["--leader-election", "--no-leader-election"]).leader_election_enabled());
        let a = parse(&[
            "--system-namespace=ops",
            "--concurrency=9",
            "--log-format=text",
            "--context=kind-e2e",
            "--startup-timeout=90s",
        ]);
        assert_eq!(a.system_namespace, "ops");
        assert_eq!(a.concurrency, 9);
        assert_eq!(a.log_format, LogFormat::Text);
        assert_eq!(a.context.as_deref(), Some("kind-e2e"));
        assert_eq!(a.startup_timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_shard_selector_is_parsed_and_gets_a_lease_of_its_own() {
        let a = parse(&["--watch-label-selector", "shard in (a, b),!legacy"]);
        let selector = a.watch_label_selector.as_ref().map(|s| s.to_string());
        assert_eq!(selector.as_deref(), Some("shard in (a,b),!legacy"));
        let other = parse(&["--watch-label-selector=shard=c"]);
        assert!(a.lease_name().starts_with("helm-handler-leader-"));
        assert_ne!(a.lease_name(), other.lease_name());
        assert_eq!(parse(&[]).lease_name(), "helm-handler-leader");
        use clap::Parser;
        let err = crate::cli::Cli::try_parse_from([
            "helm-handler",
            "run",
            "--watch-label-selector",
            "shard in (a",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("--watch-label-selector"), "{text}");
        assert!(text.contains("unbalanced parentheses"), "{text}");
    }

    #[test]
    fn identity_is_never_empty() {
        assert!(!identity().is_empty());
    }
}
