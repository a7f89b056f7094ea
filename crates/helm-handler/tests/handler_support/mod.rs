//! Shared by the handler tests: a recording fake release engine (Kubernetes is the only
//! fake), fake readiness and namespaces, and a harness that wires them into a real
//! `HelmHandler` with the real chart cache, OCI source and credential resolver.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::registry::{SourceContext, SourceRegistry};
use componentkit::crd::{Component, ComponentSpec, ComponentStatus};
use componentkit::handler::{ErrorCategory, Handler, HandlerContext, HandlerOutcome, Outcome};
use helm_handler::config_maps::{ConfigMapData, ConfigMapStore, FileConfigMapStore};
use helm_handler::credentials::{CredentialResolver, FileSecretStore, SecretData, SecretStore};
use helm_handler::drift::{DriftDetection, ObjectDrift};
use helm_handler::handler::{
    DriftCheck, DriftProbe, Failure, HelmHandler, HelmHandlerParts, NamespaceContents, Namespaces,
    ReadinessProbe, SecretIndex, ServiceAccounts, Verdict,
};
use helm_handler::helm::{
    HelmError, Release, ReleaseEngine, ReleaseInfo, ReleaseStatus, UninstallOutcome, UpgradeOptions,
};
use helm_handler::identity::{Identity, TenancyPolicy};
use helm_handler::metrics::Metrics;
use serde_json::{Map, Value, json};

pub const SYSTEM_NAMESPACE: &str = "deployment-system";

/// A call the fake engine received.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Status(String),
    Manifest(String),
    Upgrade {
        release: String,
        chart: String,
        values: Value,
        create_namespace: bool,
    },
    Uninstall(String),
    Rollback(String),
}

#[derive(Default)]
struct EngineState {
    releases: BTreeMap<String, ReleaseInfo>,
    calls: Vec<Call>,
    /// Who each call acted as (parallel to `calls`).
    identities: Vec<Identity>,
    fail_next: Option<HelmError>,
}

impl EngineState {
    fn record(&mut self, call: Call, release: &Release) {
        self.calls.push(call);
        self.identities.push(release.identity.clone());
    }
}

/// Records every call and keeps releases in memory, like helm's storage would.
#[derive(Default)]
pub struct FakeEngine {
    state: Mutex<EngineState>,
}

fn info(release: &Release, revision: u64, status: ReleaseStatus) -> ReleaseInfo {
    ReleaseInfo {
        name: release.name.to_string(),
        namespace: release.namespace.to_string(),
        revision,
        status,
        description: "Install complete".into(),
        first_deployed: None,
        last_deployed: None,
        chart: None,
        notes: None,
        manifest: String::new(),
        apply_method: None,
    }
}

impl FakeEngine {
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Who each call acted as, in call order.
    pub fn identities(&self) -> Vec<Identity> {
        self.state.lock().unwrap().identities.clone()
    }

    pub fn upgrades(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Upgrade { .. }))
            .count()
    }

    pub fn uninstalls(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Uninstall(_)))
            .count()
    }

    pub fn has(&self, namespace: &str, name: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .releases
            .contains_key(&format!("{namespace}/{name}"))
    }

    /// A release that exists before the handler sees it (revision 1, deployed).
    pub fn preinstall(&self, namespace: &str, name: &str) {
        let r = Release::parse(name, namespace).unwrap();
        self.state
            .lock()
            .unwrap()
            .releases
            .insert(r.to_string(), info(&r, 1, ReleaseStatus::Deployed));
    }

    /// A release deployed for another Component (its helm description says so).
    pub fn preinstall_for(&self, namespace: &str, name: &str, component: &str) {
        let r = Release::parse(name, namespace).unwrap();
        let mut i = info(&r, 1, ReleaseStatus::Deployed);
        i.description = format!("helm-handler: Component {component}");
        self.state.lock().unwrap().releases.insert(r.to_string(), i);
    }

    /// Removes a release behind the handler's back.
    pub fn remove(&self, namespace: &str, name: &str) {
        self.state
            .lock()
            .unwrap()
            .releases
            .remove(&format!("{namespace}/{name}"));
    }

    pub fn set_status(&self, namespace: &str, name: &str, status: ReleaseStatus) {
        if let Some(r) = self
            .state
            .lock()
            .unwrap()
            .releases
            .get_mut(&format!("{namespace}/{name}"))
        {
            r.status = status;
        }
    }

    /// Leaves a release in a pending state, as a helm killed mid-operation does; its
    /// operation started at `started` (helm's `last_deployed`).
    pub fn set_pending(
        &self,
        namespace: &str,
        name: &str,
        status: ReleaseStatus,
        started: std::time::SystemTime,
    ) {
        let r = Release::parse(name, namespace).unwrap();
        let mut s = self.state.lock().unwrap();
        let revision = s.releases.get(&r.to_string()).map_or(1, |i| i.revision + 1);
        let mut i = info(&r, revision, status);
        i.description = "Preparing upgrade".into();
        i.last_deployed = Some(humantime::format_rfc3339_nanos(started).to_string());
        s.releases.insert(r.to_string(), i);
    }

    pub fn rollbacks(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Rollback(_)))
            .count()
    }

    pub fn fail_next_upgrade(&self, error: HelmError) {
        self.state.lock().unwrap().fail_next = Some(error);
    }
}

#[async_trait]
impl ReleaseEngine for FakeEngine {
    async fn upgrade_install(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
        options: &UpgradeOptions,
    ) -> Result<ReleaseInfo, HelmError> {
        let mut s = self.state.lock().unwrap();
        s.record(
            Call::Upgrade {
                release: release.to_string(),
                chart: chart.display().to_string(),
                values: Value::Object(values.clone()),
                create_namespace: options.create_namespace,
            },
            release,
        );
        assert!(
            chart.is_file(),
            "the chart handed to helm exists: {}",
            chart.display()
        );
        if let Some(e) = s.fail_next.take() {
            return Err(e);
        }
        let revision = s
            .releases
            .get(&release.to_string())
            .map(|r| r.revision + 1)
            .unwrap_or(1);
        let mut new = info(release, revision, ReleaseStatus::Deployed);
        if let Some(d) = &options.description {
            new.description = d.clone();
        }
        s.releases.insert(release.to_string(), new.clone());
        Ok(new)
    }

    async fn status(&self, release: &Release) -> Result<Option<ReleaseInfo>, HelmError> {
        let mut s = self.state.lock().unwrap();
        s.record(Call::Status(release.to_string()), release);
        Ok(s.releases.get(&release.to_string()).cloned())
    }

    async fn get_manifest(&self, release: &Release) -> Result<String, HelmError> {
        let mut s = self.state.lock().unwrap();
        s.record(Call::Manifest(release.to_string()), release);
        if !s.releases.contains_key(&release.to_string()) {
            return Err(HelmError::ReleaseNotFound {
                namespace: release.namespace.to_string(),
                name: release.name.to_string(),
            });
        }
        Ok(format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n",
            release.name
        ))
    }

    async fn uninstall(&self, release: &Release) -> Result<UninstallOutcome, HelmError> {
        let mut s = self.state.lock().unwrap();
        s.record(Call::Uninstall(release.to_string()), release);
        Ok(match s.releases.remove(&release.to_string()) {
            Some(_) => UninstallOutcome::Uninstalled,
            None => UninstallOutcome::AlreadyGone,
        })
    }

    async fn rollback(&self, release: &Release, _revision: Option<u64>) -> Result<(), HelmError> {
        let mut s = self.state.lock().unwrap();
        s.record(Call::Rollback(release.to_string()), release);
        match s.releases.get_mut(&release.to_string()) {
            Some(r) => {
                r.revision += 1;
                r.status = ReleaseStatus::Deployed;
                r.description = "Rollback to the previous revision".into();
                Ok(())
            }
            None => Err(HelmError::ReleaseNotFound {
                namespace: release.namespace.to_string(),
                name: release.name.to_string(),
            }),
        }
    }

    async fn template(
        &self,
        _release: &Release,
        _chart: &Path,
        _values: &Map<String, Value>,
    ) -> Result<String, HelmError> {
        Err(HelmError::Failed {
            operation: "template",
            exit: "1".into(),
            message: "not used by the handler".into(),
        })
    }
}

/// Readiness set by the test (default: ready).
pub struct FakeReadiness {
    verdict: Mutex<Verdict>,
}

impl Default for FakeReadiness {
    fn default() -> Self {
        Self {
            verdict: Mutex::new(Verdict::Ready),
        }
    }
}

impl FakeReadiness {
    pub fn set(&self, verdict: Verdict) {
        *self.verdict.lock().unwrap() = verdict;
    }
}

#[async_trait]
impl ReadinessProbe for FakeReadiness {
    async fn assess(&self, _release: &Release, manifest: &str) -> Result<Verdict, Failure> {
        assert!(manifest.contains("kind:"), "a manifest is assessed");
        Ok(self.verdict.lock().unwrap().clone())
    }
}

/// Drift set by the test (default: none); corrections clear it and are counted.
#[derive(Default)]
pub struct FakeDrift {
    failing: Mutex<bool>,
    drifts: Mutex<Vec<ObjectDrift>>,
    checks: Mutex<usize>,
    corrections: Mutex<Vec<ObjectDrift>>,
}

impl FakeDrift {
    pub fn set(&self, drifts: Vec<ObjectDrift>) {
        *self.drifts.lock().unwrap() = drifts;
    }
    /// Checks fail (the API unreachable) while set.
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
    pub fn checks(&self) -> usize {
        *self.checks.lock().unwrap()
    }
    pub fn corrections(&self) -> Vec<ObjectDrift> {
        self.corrections.lock().unwrap().clone()
    }
}

#[async_trait]
impl DriftProbe for FakeDrift {
    async fn check(
        &self,
        _release: &Release,
        manifest: &str,
        _config: &DriftDetection,
    ) -> Result<DriftCheck, Failure> {
        assert!(manifest.contains("kind:"), "a manifest is compared");
        *self.checks.lock().unwrap() += 1;
        if *self.failing.lock().unwrap() {
            return Err(Failure::new(
                componentkit::handler::ErrorCategory::Network,
                "connection refused",
            ));
        }
        Ok(DriftCheck {
            drifts: self.drifts.lock().unwrap().clone(),
            requests: 0,
        })
    }

    async fn correct(
        &self,
        _release: &Release,
        _manifest: &str,
        drifts: &[ObjectDrift],
    ) -> Result<(), Failure> {
        self.corrections.lock().unwrap().extend_from_slice(drifts);
        self.drifts.lock().unwrap().clear();
        Ok(())
    }
}

/// Namespaces in memory; a namespace's contents default to empty.
#[derive(Default)]
pub struct FakeNamespaces {
    existing: Mutex<BTreeSet<String>>,
    contents: Mutex<HashMap<String, NamespaceContents>>,
}

impl FakeNamespaces {
    pub fn add(&self, name: &str) {
        self.existing.lock().unwrap().insert(name.to_string());
    }

    pub fn exists_now(&self, name: &str) -> bool {
        self.existing.lock().unwrap().contains(name)
    }

    pub fn set_contents(&self, name: &str, contents: NamespaceContents) {
        self.contents
            .lock()
            .unwrap()
            .insert(name.to_string(), contents);
    }
}

#[async_trait]
impl Namespaces for FakeNamespaces {
    async fn exists(&self, name: &str) -> Result<bool, Failure> {
        Ok(self.exists_now(name))
    }

    async fn create(&self, _identity: &Identity, name: &str) -> Result<(), Failure> {
        self.add(name);
        Ok(())
    }

    async fn contents(&self, name: &str) -> Result<NamespaceContents, Failure> {
        if !self.exists_now(name) {
            return Ok(NamespaceContents::Gone);
        }
        Ok(self
            .contents
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or(NamespaceContents::Empty))
    }

    async fn delete(&self, _identity: &Identity, name: &str) -> Result<(), Failure> {
        self.existing.lock().unwrap().remove(name);
        Ok(())
    }
}

/// ServiceAccounts in memory (`namespace/name`); tests add and remove them.
#[derive(Default)]
pub struct FakeServiceAccounts {
    existing: Mutex<BTreeSet<String>>,
}

impl FakeServiceAccounts {
    pub fn add(&self, namespace: &str, name: &str) {
        self.existing
            .lock()
            .unwrap()
            .insert(format!("{namespace}/{name}"));
    }

    pub fn remove(&self, namespace: &str, name: &str) {
        self.existing
            .lock()
            .unwrap()
            .remove(&format!("{namespace}/{name}"));
    }
}

#[async_trait]
impl ServiceAccounts for FakeServiceAccounts {
    async fn exists(&self, namespace: &str, name: &str) -> Result<bool, Failure> {
        Ok(self
            .existing
            .lock()
            .unwrap()
            .contains(&format!("{namespace}/{name}")))
    }
}

/// Secrets that tests can change while the handler runs (rotation, creation).
#[derive(Default)]
pub struct MutableSecrets {
    store: Mutex<FileSecretStore>,
}

impl MutableSecrets {
    pub fn put(&self, namespace: &str, name: &str, data: SecretData) {
        self.store.lock().unwrap().insert(namespace, name, data);
    }
}

#[async_trait]
impl SecretStore for MutableSecrets {
    async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, helm_handler::error::Error> {
        let store = self.store.lock().unwrap().clone();
        store.get(namespace, name).await
    }
}

/// ConfigMaps that tests can change while the handler runs.
#[derive(Default)]
pub struct MutableConfigMaps {
    store: Mutex<FileConfigMapStore>,
}

impl MutableConfigMaps {
    pub fn put(&self, namespace: &str, name: &str, data: ConfigMapData) {
        self.store.lock().unwrap().insert(namespace, name, data);
    }
}

#[async_trait]
impl ConfigMapStore for MutableConfigMaps {
    async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMapData>, helm_handler::error::Error> {
        let store = self.store.lock().unwrap().clone();
        store.get(namespace, name).await
    }
}

/// A registry holding `charts/web:1.0.0` (`helm create`), and its reference.
pub fn web_chart() -> (test_support::Registry, String) {
    let registry = test_support::Registry::start(test_support::RegistryMode::Anonymous).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tgz = test_support::Chart::create("web", "1.0.0")
        .package(dir.path())
        .unwrap();
    registry.push(&tgz, "charts").unwrap();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    (registry, chart)
}

/// `spec.config` with an OCI source on a plain-HTTP test registry.
pub fn oci_config(release: &str, chart: &str, values: Value) -> Value {
    json!({
        "releaseName": release,
        "values": values,
        "source": {"type": "oci", "chart": chart, "plainHTTP": true},
    })
}

pub struct Harness {
    pub handler: Arc<HelmHandler>,
    pub engine: Arc<FakeEngine>,
    pub readiness: Arc<FakeReadiness>,
    pub drift: Arc<FakeDrift>,
    pub namespaces: Arc<FakeNamespaces>,
    pub service_accounts: Arc<FakeServiceAccounts>,
    pub metrics: Arc<Metrics>,
    pub secret_index: Arc<SecretIndex>,
    pub config_maps: Arc<MutableConfigMaps>,
    /// The Events the last operation asked for.
    pub events: Mutex<Vec<componentkit::handler::HandlerEvent>>,
    pub cache_dir: tempfile::TempDir,
}

pub fn source_registry(cache_dir: &Path) -> Arc<SourceRegistry> {
    let cache = ChartCache::open(CacheConfig {
        dir: cache_dir.to_path_buf(),
        max_bytes: 256 << 20,
    })
    .unwrap();
    Arc::new(SourceRegistry::new(SourceContext::new(Arc::new(cache))))
}

impl Harness {
    pub fn new() -> Self {
        Self::with_secrets(|_| {})
    }

    pub fn with_secrets(fill: impl FnOnce(&mut FileSecretStore)) -> Self {
        let mut store = FileSecretStore::new();
        fill(&mut store);
        Self::with_store(Arc::new(store))
    }

    pub fn with_store(store: Arc<dyn SecretStore>) -> Self {
        Self::with_store_and_tenancy(store, TenancyPolicy::default())
    }

    /// A harness whose handler runs with `run`'s tenancy flags.
    pub fn with_tenancy(tenancy: TenancyPolicy) -> Self {
        Self::with_store_and_tenancy(Arc::new(FileSecretStore::new()), tenancy)
    }

    pub fn with_store_and_tenancy(store: Arc<dyn SecretStore>, tenancy: TenancyPolicy) -> Self {
        let cache_dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(FakeEngine::default());
        let readiness = Arc::new(FakeReadiness::default());
        let drift = Arc::new(FakeDrift::default());
        let namespaces = Arc::new(FakeNamespaces::default());
        let service_accounts = Arc::new(FakeServiceAccounts::default());
        let metrics = Arc::new(Metrics::new());
        let secret_index = Arc::new(SecretIndex::new());
        let config_maps = Arc::new(MutableConfigMaps::default());
        // The Component namespace used by the tests exists.
        namespaces.add("apps");
        let handler = HelmHandler::new(HelmHandlerParts {
            engine: engine.clone(),
            readiness: readiness.clone(),
            drift: drift.clone(),
            namespaces: namespaces.clone(),
            service_accounts: service_accounts.clone(),
            tenancy,
            secrets: store,
            config_maps: config_maps.clone(),
            resolver: CredentialResolver::new(SYSTEM_NAMESPACE),
            sources: source_registry(cache_dir.path()),
            metrics: metrics.clone(),
            secret_index: secret_index.clone(),
        });
        Self {
            handler: Arc::new(handler),
            engine,
            readiness,
            drift,
            namespaces,
            service_accounts,
            metrics,
            secret_index,
            config_maps,
            events: Mutex::new(Vec::new()),
            cache_dir,
        }
    }

    pub fn component(&self, namespace: &str, name: &str, config: Value) -> Component {
        let mut c = Component::new(
            name,
            ComponentSpec {
                handler: "helm".into(),
                config: Some(config),
                deployment_timeout: None,
                termination_timeout: None,
            },
        );
        c.metadata.namespace = Some(namespace.to_string());
        c.metadata.generation = Some(1);
        c.status = Some(ComponentStatus::default());
        c
    }

    /// Runs one operation and persists the handler status the way the engine does.
    async fn op(&self, c: &mut Component, which: Op) -> Outcome {
        let cx = HandlerContext::new(Arc::new(c.clone()));
        let out: HandlerOutcome = match which {
            Op::Apply => self.handler.apply(&cx).await,
            Op::CheckApplied => self.handler.check_applied(&cx).await,
            Op::Delete => self.handler.delete(&cx).await,
            Op::CheckDeleted => self.handler.check_deleted(&cx).await,
        };
        let status = c.status.get_or_insert_with(ComponentStatus::default);
        if let Some(v) = out.handler_status {
            status.handler_status = if v.is_null() { None } else { Some(v) };
        }
        componentkit::status::set_handler_conditions(
            status,
            &out.conditions,
            1,
            k8s_openapi::jiff::Timestamp::now(),
        );
        *self.events.lock().unwrap() = out.events;
        out.outcome
    }

    pub async fn apply(&self, c: &mut Component) -> Outcome {
        self.op(c, Op::Apply).await
    }

    pub async fn check_applied(&self, c: &mut Component) -> Outcome {
        self.op(c, Op::CheckApplied).await
    }

    pub async fn delete(&self, c: &mut Component) -> Outcome {
        self.op(c, Op::Delete).await
    }

    pub async fn check_deleted(&self, c: &mut Component) -> Outcome {
        self.op(c, Op::CheckDeleted).await
    }
}

#[derive(Clone, Copy)]
enum Op {
    Apply,
    CheckApplied,
    Delete,
    CheckDeleted,
}

/// The category and message of a failed outcome; anything else fails the test.
pub fn failure(out: &Outcome) -> (ErrorCategory, String) {
    match out {
        Outcome::Failed { category, message } => (*category, message.clone()),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Asserts a failure of `category` whose message contains every one of `parts` (what the
/// user reads: the field, the reference, the Secret); returns the message.
pub fn assert_failed(out: &Outcome, category: ErrorCategory, parts: &[&str]) -> String {
    let (actual, message) = failure(out);
    assert_eq!(actual, category, "{message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
    message
}

/// The handler status a Component carries (what `apply` recorded); none fails the test.
pub fn recorded(c: &Component) -> helm_handler::handler::HandlerStatus {
    helm_handler::handler::HandlerStatus::from_value(
        c.status.as_ref().and_then(|s| s.handler_status.as_ref()),
    )
    .expect("a handler status")
}
