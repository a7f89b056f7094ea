//! Controller wiring on `kube-runtime`: watch Components, reconcile through the [`Engine`]
//! with bounded concurrency (the runtime never runs two reconciles of one object at once),
//! re-reconcile Components when related objects change, and lead through a Lease.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::runtime::controller::{Action as KubeAction, Config, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::changes::{ChangeFilter, Changed};
use crate::clock::SystemClock;
use crate::crd::Component;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::handler::{ErrorCategory, Handler};
use crate::kube_api::KubeComponentApi;
use crate::leader::{KubeLeaseApi, LeaderElector, LeaseConfig, run_as_leader};
use crate::leadership::Leadership;
use crate::names;
use crate::watch_health::WatchHealth;

/// Components poked by related-object changes since their last reconcile.
#[derive(Clone, Default)]
pub struct Pokes(Arc<Mutex<HashSet<ObjectRef<Component>>>>);

impl Pokes {
    /// Records that these Components should retry at once.
    pub fn add<'a>(&self, refs: impl IntoIterator<Item = &'a ObjectRef<Component>>) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for r in refs {
            set.insert(r.clone());
        }
    }
    /// Consumes the poke of one Component.
    pub fn take(&self, r: &ObjectRef<Component>) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(r)
    }
}

type Attach = dyn Fn(Controller<Component>, Store<Component>, Pokes, WatchHealth) -> Controller<Component>
    + Send
    + Sync;

/// A stream of watch events of one kind, started afresh for each leadership term.
type EventSource<T> =
    dyn Fn() -> BoxStream<'static, Result<watcher::Event<T>, watcher::Error>> + Send + Sync;

/// A source of re-reconciles from related objects (e.g. Secrets a Component references).
/// A Component poked this way skips its backoff and retries an auth / not-found failure at once.
///
/// Only real changes reach the mapper (see [`ChangeFilter`]): a relist — at start, after a
/// leader change or a `410 Gone` — replays objects without poking anything. Watch failures
/// are reported to the controller's [`WatchHealth`].
#[derive(Clone)]
pub struct RelatedWatch {
    attach: Arc<Attach>,
}

impl RelatedWatch {
    /// Watches objects of type `K` through `api`; `mapper` gets each real change and the
    /// current Components (a reflector store) and returns the Components to re-reconcile.
    /// With `K = PartialObjectMeta<_>` only metadata is listed and watched: the API server
    /// never sends the objects' data (Secrets' payloads stay out of this process).
    pub fn new<K, F>(api: Api<K>, config: watcher::Config, mapper: F) -> Self
    where
        K: Clone + Resource + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default,
        F: Fn(&Changed, &Store<Component>) -> Vec<ObjectRef<Component>> + Send + Sync + 'static,
    {
        let name = K::kind(&K::DynamicType::default()).into_owned();
        Self::from_events(
            name,
            Arc::new(move || watcher(api.clone(), config.clone()).boxed()),
            mapper,
        )
    }

    fn from_events<T, F>(watch: String, events: Arc<EventSource<T>>, mapper: F) -> Self
    where
        T: Resource + Send + 'static,
        F: Fn(&Changed, &Store<Component>) -> Vec<ObjectRef<Component>> + Send + Sync + 'static,
    {
        let mapper = Arc::new(mapper);
        Self {
            attach: Arc::new(move |ctrl, store, pokes, health| {
                let mapper = mapper.clone();
                let watch = watch.clone();
                let mut filter = ChangeFilter::new();
                let refs = events().default_backoff().flat_map(move |event| {
                    let refs: Vec<ObjectRef<Component>> = match event {
                        Err(e) => {
                            health.failed(&watch, &describe_watch_error(&e));
                            Vec::new()
                        }
                        Ok(event) => {
                            if !matches!(event, watcher::Event::Init) {
                                health.delivered(&watch);
                            }
                            filter
                                .changes(&event)
                                .iter()
                                .flat_map(|changed| mapper(changed, &store))
                                .collect()
                        }
                    };
                    pokes.add(&refs);
                    futures::stream::iter(refs)
                });
                ctrl.reconcile_on(refs)
            }),
        }
    }

    /// Any stream of Component references; `factory` is called once per leadership term.
    pub fn stream<F>(factory: F) -> Self
    where
        F: Fn(&Store<Component>) -> BoxStream<'static, ObjectRef<Component>>
            + Send
            + Sync
            + 'static,
    {
        Self {
            attach: Arc::new(move |ctrl, store, pokes, _| {
                let s = factory(&store).inspect(move |r| pokes.add([r]));
                ctrl.reconcile_on(s)
            }),
        }
    }
}

/// A watch error as users read it: the API server's own message when there is one
/// (`secrets is forbidden: User "…" cannot list resource "secrets" …`).
pub fn describe_watch_error(e: &watcher::Error) -> String {
    let client = match e {
        watcher::Error::InitialListFailed(c)
        | watcher::Error::WatchStartFailed(c)
        | watcher::Error::WatchFailed(c) => c,
        watcher::Error::WatchError(status) => {
            return format!("HTTP {}: {}", status.code, status.message);
        }
        watcher::Error::NoResourceVersion => return e.to_string(),
    };
    match client {
        kube::Error::Api(status) => format!("HTTP {}: {}", status.code, status.message),
        other => crate::kube_api::with_causes(other),
    }
}

/// How the controller runs.
#[derive(Clone)]
pub struct ControllerOptions {
    /// This replica's identity (pod name): `status.claimedBy`, Event instance, Lease holder.
    pub identity: String,
    /// Event reporter name (default `<handler>-handler`).
    pub reporter: Option<String>,
    /// Maximum reconciles running at once (default 8).
    pub concurrency: u16,
    /// Watch one namespace only (default: all).
    pub namespace: Option<String>,
    /// Watch only the Components matching this label selector (sharding; default: all).
    pub label_selector: Option<String>,
    /// Leader election (on by default in the CLI; `None` runs without it).
    pub leader_election: Option<LeaseConfig>,
    /// Backoff for transient errors.
    pub backoff: Backoff,
    /// Delay before retrying an auth / not-found failure.
    pub slow_retry: Duration,
    /// Related-object watches.
    pub related: Vec<RelatedWatch>,
    /// Where watch failures are reported (share it with `/readyz`).
    pub watch_health: WatchHealth,
    /// The fence every write checks (open while leading; always open without election).
    /// Share it with anything else that acts on the cluster (e.g. the helm runner).
    pub leadership: Leadership,
}

impl ControllerOptions {
    /// Defaults for `identity`; no leader election.
    pub fn new(identity: &str) -> Self {
        Self {
            identity: identity.to_string(),
            reporter: None,
            concurrency: 8,
            namespace: None,
            label_selector: None,
            leader_election: None,
            backoff: Backoff::default(),
            slow_retry: Duration::from_secs(300),
            related: Vec::new(),
            watch_health: WatchHealth::new(),
            leadership: Leadership::always(),
        }
    }

    /// Enables leader election on Lease `name` in `namespace` (15 s lease, 5 s renewal).
    pub fn with_leader_election(mut self, name: &str, namespace: &str) -> Self {
        self.leader_election = Some(LeaseConfig::new(name, namespace, &self.identity));
        self.leadership = Leadership::candidate();
        self
    }

    /// Adds a related-object watch.
    pub fn watch_related(mut self, related: RelatedWatch) -> Self {
        self.related.push(related);
        self
    }
}

/// A controller failure.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot install the shutdown signal handler: {0}")]
    Signal(String),
}

struct Ctx<H: Handler> {
    engine: Engine<H>,
    pokes: Pokes,
    leadership: Leadership,
}

/// Hash of what can make a reconcile do something different: status-only changes (our own
/// writes) do not trigger reconciles; timeouts and backoffs are driven by requeues.
/// What the Component store keeps of each object: metadata, spec and the phase — all that
/// triggers, Secret/ConfigMap mappings, timers (drift checks of Ready Components) and
/// reconcile (which reads the Component afresh) use. Managed fields, the `kubectl apply`
/// copy of the object and the rest of the status are dropped: at 1,000 Components they
/// were most of the controller's memory.
fn slim(c: &mut Component) {
    c.metadata.managed_fields = None;
    if let Some(annotations) = c.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
    if let Some(status) = c.status.take() {
        c.status = Some(crate::crd::ComponentStatus {
            phase: status.phase,
            ..Default::default()
        });
    }
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn trigger_hash(c: &Component) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.metadata.uid.hash(&mut h);
    c.metadata.generation.hash(&mut h);
    c.metadata.finalizers.hash(&mut h);
    c.metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    c.spec.handler.hash(&mut h);
    c.annotations().get(names::RETRY_ANNOTATION).hash(&mut h);
    Some(h.finish())
}

async fn reconcile<H: Handler>(
    c: Arc<Component>,
    ctx: Arc<Ctx<H>>,
) -> Result<KubeAction, EngineError> {
    // A replica that may no longer act starts nothing (not even the handler's reads and
    // dry-runs): it may have been frozen with this reconcile queued.
    if let Err(e) = ctx.leadership.check() {
        return Err(EngineError::Api(crate::api::ApiError::NotLeader(
            e.to_string(),
        )));
    }
    let ns = c.namespace().unwrap_or_default();
    let name = c.name_any();
    let poked = ctx.pokes.take(&ObjectRef::from_obj(c.as_ref()));
    let r = ctx.engine.reconcile(&ns, &name, poked).await?;
    Ok(match r.requeue_after {
        Some(d) => KubeAction::requeue(d.max(Duration::from_millis(100))),
        None => KubeAction::await_change(),
    })
}

fn error_policy<H: Handler>(c: Arc<Component>, e: &EngineError, _: Arc<Ctx<H>>) -> KubeAction {
    if matches!(e, EngineError::Api(crate::api::ApiError::NotLeader(_))) {
        tracing::debug!(error = %e, "not reconciled: this replica no longer leads");
        return KubeAction::await_change();
    }
    let delay = if e.category() == ErrorCategory::Conflict {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    tracing::warn!(
        namespace = c.namespace().unwrap_or_default(),
        name = c.name_any(),
        error = %e,
        "reconcile failed; requeued"
    );
    KubeAction::requeue(delay.mul_f64(1.0 + rand::random::<f64>()))
}

/// Shutdown on SIGTERM / Ctrl-C.
fn shutdown_signal() -> Result<watch::Receiver<bool>, ControllerError> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ControllerError::Signal(e.to_string()))?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Runs the controller for `handler` until SIGTERM / Ctrl-C.
///
/// With `opts.leader_election`, only the Lease holder reconciles; losing the Lease closes
/// `opts.leadership` (in-flight reconciles can no longer write), stops the controller and the
/// replica campaigns again.
pub async fn run<H: Handler>(
    client: Client,
    handler: Arc<H>,
    opts: ControllerOptions,
) -> Result<(), ControllerError> {
    let shutdown = shutdown_signal()?;
    run_until(client, handler, opts, shutdown).await;
    Ok(())
}

/// [`run`] with an explicit shutdown switch (becomes `true` → stop).
pub async fn run_until<H: Handler>(
    client: Client,
    handler: Arc<H>,
    opts: ControllerOptions,
    shutdown: watch::Receiver<bool>,
) {
    let reporter = opts
        .reporter
        .clone()
        .unwrap_or_else(|| format!("{}-handler", handler.name()));
    let api: Arc<dyn crate::api::ComponentApi> = Arc::new(
        KubeComponentApi::new(client.clone(), &reporter, Some(opts.identity.clone()))
            .fenced(opts.leadership.clone()),
    );
    let ctx = Arc::new(Ctx {
        engine: Engine::new(
            handler.clone(),
            api,
            Arc::new(SystemClock),
            EngineConfig {
                identity: opts.identity.clone(),
                backoff: opts.backoff,
                slow_retry: opts.slow_retry,
            },
        ),
        pokes: Pokes::default(),
        leadership: opts.leadership.clone(),
    });
    let term = |stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        let client = client.clone();
        let opts = opts.clone();
        let ctx = ctx.clone();
        async move { controller_term(client, opts, ctx, stop).await }
    };
    match opts.leader_election.clone() {
        Some(lease) => {
            let elector = Arc::new(LeaderElector::new(
                Arc::new(KubeLeaseApi::new(
                    client.clone(),
                    &lease.namespace,
                    &lease.name,
                )),
                Arc::new(SystemClock),
                lease,
            ));
            run_as_leader(elector, opts.leadership.clone(), shutdown, term).await;
        }
        None => {
            let mut sd = shutdown.clone();
            let stop = Box::pin(async move {
                let _ = sd.wait_for(|s| *s).await;
            });
            term(stop).await;
        }
    }
}

async fn controller_term<H: Handler>(
    client: Client,
    opts: ControllerOptions,
    ctx: Arc<Ctx<H>>,
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let api: Api<Component> = match &opts.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let (reader, writer) = reflector::store();
    let health = opts.watch_health.clone();
    health.reset();
    let config = match &opts.label_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let components = watcher(api, config)
        .default_backoff()
        .inspect(move |event| match event {
            Err(e) => health.failed("Component", &describe_watch_error(e)),
            Ok(watcher::Event::Init) => {}
            Ok(_) => health.delivered("Component"),
        })
        .modify(slim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger_hash, Default::default());
    let mut ctrl = Controller::for_stream(components, reader.clone())
        .with_config(Config::default().concurrency(opts.concurrency));
    for related in &opts.related {
        ctrl = (related.attach)(
            ctrl,
            reader.clone(),
            ctx.pokes.clone(),
            opts.watch_health.clone(),
        );
    }
    // The runtime wants a Sync future: relay `stop` through a oneshot.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(());
    });
    ctrl.graceful_shutdown_on(async move {
        let _ = stop_rx.await;
    })
    .run(reconcile, error_policy, ctx)
    .for_each(|res| async move {
        match res {
            Ok((obj, action)) => tracing::debug!(object = %obj, ?action, "reconciled"),
            // Reconcile failures are logged by `error_policy`, watch failures reported
            // through `WatchHealth`; what remains (object gone before its turn) is routine.
            Err(e) => tracing::debug!(error = %e, "controller event"),
        }
    })
    .await;
    relay.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ComponentStatus, Phase};

    #[test]
    fn status_writes_do_not_trigger_but_meaningful_changes_do() {
        let mut c = crate::memory::component("ns", "a", "helm", serde_json::json!({}));
        c.metadata.uid = Some("u1".into());
        c.metadata.generation = Some(1);
        let base = trigger_hash(&c);

        let mut s = c.clone();
        s.status = Some(ComponentStatus {
            phase: Some(Phase::Ready),
            message: Some("x".into()),
            ..ComponentStatus::default()
        });
        s.metadata.resource_version = Some("99".into());
        assert_eq!(trigger_hash(&s), base, "status-only change");

        let changes: [fn(&mut Component); 6] = [
            |c| c.metadata.generation = Some(2),
            |c| c.metadata.uid = Some("u2".into()),
            |c| c.metadata.finalizers = Some(vec!["x/y".into()]),
            |c| {
                c.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        crate::clock::Timestamp::UNIX_EPOCH,
                    ))
            },
            |c| {
                c.metadata.annotations =
                    Some([(names::RETRY_ANNOTATION.to_string(), "1".to_string())].into())
            },
            |c| c.spec.handler = "other".into(),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut m = c.clone();
            change(&mut m);
            assert_ne!(trigger_hash(&m), base, "change {i}");
        }
    }

    #[test]
    fn the_store_keeps_what_triggers_and_mappings_use() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let mut c = crate::memory::component("ns", "a", "helm", serde_json::json!({"k": 1}));
        c.metadata.uid = Some("u1".into());
        c.metadata.generation = Some(3);
        c.metadata.annotations = Some(
            [
                (names::RETRY_ANNOTATION.to_string(), "1".to_string()),
                (LAST_APPLIED.to_string(), "{…the whole object…}".to_string()),
            ]
            .into(),
        );
        c.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default(); 3]);
        c.status = Some(ComponentStatus {
            phase: Some(Phase::Ready),
            message: Some("Deployed web-1.2.3 … a long message".into()),
            ..ComponentStatus::default()
        });
        let before = trigger_hash(&c);
        let spec = c.spec.clone();
        slim(&mut c);
        assert_eq!(trigger_hash(&c), before, "every trigger survives");
        assert_eq!(
            c.spec, spec,
            "the spec (Secret/ConfigMap references) survives"
        );
        assert!(c.metadata.managed_fields.is_none());
        assert_eq!(c.phase(), Phase::Ready, "timers pick Components by phase");
        assert_eq!(c.status.as_ref().and_then(|s| s.message.as_ref()), None);
        assert_eq!(
            c.annotations().keys().collect::<Vec<_>>(),
            [names::RETRY_ANNOTATION]
        );
    }

    #[test]
    fn pokes_are_consumed_once() {
        let p = Pokes::default();
        let r = ObjectRef::<Component>::new("a").within("ns");
        assert!(!p.take(&r));
        p.add([&r]);
        assert!(p.take(&r));
        assert!(!p.take(&r));
    }
}
