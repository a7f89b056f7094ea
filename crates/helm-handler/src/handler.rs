//! `HelmHandler`: componentkit's [`Handler`] for Helm releases.
//!
//! `apply`: parse `spec.config` ([`HelmConfig`]) → compose the values (`valuesFrom` Secrets
//! and ConfigMaps, then `values`: [`crate::values_from`]) → resolve the credential Secrets
//! ([`CredentialResolver`] over a [`SecretStore`]) → build the chart source
//! ([`SourceRegistry`]) → `locate()` the chart into the cache → compare the desired state
//! (chart digest, hash of the composed values, release name and namespace) with the persisted
//! [`HandlerStatus`] → `helm upgrade --install` only when it changed (or the release is
//! missing or not `deployed`). An existing release of the same name is taken over.
//!
//! `check_applied`: `helm status` + readiness of the release's objects → Done / InProgress /
//! Failed. `delete`: `helm uninstall`. `check_deleted`: the release is gone, and the release
//! namespace — when `manageNamespace` and the handler created it — is deleted once empty.
//!
//! Tenancy ([`crate::identity`]): every operation first decides who acts on the release —
//! the Component's `serviceAccountName`, else `run --default-service-account`, else the
//! controller — and checks that the ServiceAccount exists (a missing one is never replaced
//! by the controller's rights); with `--no-cross-namespace-releases` a release outside the
//! Component's namespace is refused before any helm call. The [`Release`] handed to the
//! engine, the readiness and drift probes and namespace creation/deletion carries that
//! identity, so install, upgrade, status, manifest, readiness, drift, rollback of a stuck
//! release and uninstall all run as it.
//!
//! The release engine, the readiness probe and namespace management are behind traits
//! ([`ReleaseEngine`], [`ReadinessProbe`], [`Namespaces`], [`ServiceAccounts`]) so the
//! protocol can be tested with fakes; production uses the helm CLI engine and kube-rs (see
//! [`namespaces`], [`readiness`] and [`service_accounts`]).

pub mod drift_probe;
pub mod namespaces;
pub mod plan;
pub mod readiness_probe;
pub mod secret_index;
pub mod service_accounts;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chart_source::registry::SourceRegistry;
use componentkit::handler::{ErrorCategory, Handler, HandlerContext, HandlerOutcome, Outcome};
use serde_json::{Map, Value};

use crate::config::{HelmConfig, NamespaceName, ReleaseName};
use crate::config_maps::ConfigMapStore;
use crate::credentials::{CredentialResolver, SecretStore};
use crate::drift::{DriftAction, DriftDetection, DriftMode, ObjectDrift, plan, summary};
use crate::helm::{
    HelmError, Release, ReleaseEngine, ReleaseInfo, ReleaseStatus, UninstallOutcome, UpgradeOptions,
};
use crate::identity::{Identity, ServiceAccountName, TenancyPolicy};
use crate::metrics::{Metrics, Operation, ReconcileResult, ReleaseOperation};
use crate::values_from::{self, ValuesObjects};
use componentkit::api::EventType;

use self::plan::{Before, ReleaseAction};
pub use self::secret_index::{ObjectKey, SecretIndex};
pub use self::status::{ChartStatus, DesiredState, HandlerStatus, values_hash};
use crate::helm::metered::Metered;

/// Start of the description helm records for each revision the handler deploys, followed
/// by `namespace/name` of the Component; marks which Component owns a release.
pub const RELEASE_DESCRIPTION_PREFIX: &str = "helm-handler: Component ";
/// See [`HelmHandler::with_stale_pending_after`]: the engine's default deadline plus a minute.
pub const DEFAULT_STALE_PENDING_AFTER: Duration = Duration::from_secs(6 * 60);
/// Event reason when the located chart's `Chart.yaml` names another chart or version than
/// the reference (a mirror, a short tag); the chart is deployed as helm deploys it.
pub const REASON_CHART_DIFFERS: &str = "ChartDiffersFromReference";
/// The condition drift detection reports (`True` while objects differ from the release).
pub const DRIFTED_CONDITION: &str = "Drifted";
/// Requeue after an install/upgrade was started.
pub const REQUEUE_AFTER_DEPLOY: Duration = Duration::from_secs(2);
/// Requeue while the release's objects are progressing.
pub const REQUEUE_PROGRESSING: Duration = Duration::from_secs(5);
/// Requeue while some of the release's objects are failing.
pub const REQUEUE_FAILING: Duration = Duration::from_secs(10);
/// After a drift correction, how long readiness may take to settle (re-checked every
/// tenth of it) before the release is judged progressing.
pub const CORRECTION_SETTLE: Duration = Duration::from_secs(2);
/// Requeue while a removal is under way.
pub const REQUEUE_DELETING: Duration = Duration::from_secs(2);

/// A categorized failure of one step of a handler operation; the message is secret-free.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub category: ErrorCategory,
    pub message: String,
}

impl Failure {
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
        }
    }

    /// Prefixes the message with context (`"locate chart: …"`).
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<crate::error::Error> for Failure {
    fn from(e: crate::error::Error) -> Self {
        Failure::new(e.category(), e.to_string())
    }
}

impl From<HelmError> for Failure {
    fn from(e: HelmError) -> Self {
        Failure::new(e.category(), e.to_string())
    }
}

impl From<chart_source::Error> for Failure {
    fn from(e: chart_source::Error) -> Self {
        crate::error::Error::from(e).into()
    }
}

/// Readiness of a release's objects: the judgement of [`crate::readiness`], one type from the
/// object checks to the handler.
pub use crate::readiness::Verdict;

/// Observes the objects of a release manifest and judges their readiness.
#[async_trait]
pub trait ReadinessProbe: Send + Sync + 'static {
    /// `manifest` is `helm get manifest` output; objects without a namespace live in the
    /// release's namespace (when namespaced). Objects are read as `release.identity`.
    async fn assess(&self, release: &Release, manifest: &str) -> Result<Verdict, Failure>;
}

/// The result of one drift check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriftCheck {
    pub drifts: Vec<ObjectDrift>,
    /// API requests the check made (for the log).
    pub requests: usize,
}

/// Compares a release's live objects with what its manifest applies, and corrects them.
#[async_trait]
pub trait DriftProbe: Send + Sync + 'static {
    async fn check(
        &self,
        release: &Release,
        manifest: &str,
        config: &DriftDetection,
    ) -> Result<DriftCheck, Failure>;
    /// Re-applies the drifted objects of the manifest (no helm revision).
    async fn correct(
        &self,
        release: &Release,
        manifest: &str,
        drifts: &[ObjectDrift],
    ) -> Result<(), Failure>;
}

/// What is left in a namespace, as far as deleting it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceContents {
    /// The namespace does not exist (or is already terminating).
    Gone,
    /// Only default objects (`kube-root-ca.crt` ConfigMap, `default` ServiceAccount, Events).
    Empty,
    /// Only objects on their way out (terminating, or owned by something being collected).
    Draining(String),
    /// Objects that belong to someone else: the namespace is kept.
    InUse(String),
}

/// Namespace management for `manageNamespace`. The reads are the controller's; creating
/// and deleting run as the release's identity (a tenant creates only what it may).
#[async_trait]
pub trait Namespaces: Send + Sync + 'static {
    async fn exists(&self, name: &str) -> Result<bool, Failure>;
    /// Creates the namespace as `identity`; an already existing one is not an error.
    async fn create(&self, identity: &Identity, name: &str) -> Result<(), Failure>;
    async fn contents(&self, name: &str) -> Result<NamespaceContents, Failure>;
    /// Deletes the namespace as `identity`.
    async fn delete(&self, identity: &Identity, name: &str) -> Result<(), Failure>;
}

/// Whether a ServiceAccount exists: read with the controller's own identity, before anything
/// is done as it (impersonating a missing ServiceAccount only yields "forbidden").
#[async_trait]
pub trait ServiceAccounts: Send + Sync + 'static {
    async fn exists(&self, namespace: &str, name: &str) -> Result<bool, Failure>;
}

/// Everything a [`HelmHandler`] is built from.
pub struct HelmHandlerParts {
    pub engine: Arc<dyn ReleaseEngine>,
    pub readiness: Arc<dyn ReadinessProbe>,
    pub drift: Arc<dyn DriftProbe>,
    pub namespaces: Arc<dyn Namespaces>,
    pub service_accounts: Arc<dyn ServiceAccounts>,
    /// `--default-service-account`, `--no-cross-namespace-releases`.
    pub tenancy: TenancyPolicy,
    pub secrets: Arc<dyn SecretStore>,
    /// ConfigMaps of `valuesFrom`.
    pub config_maps: Arc<dyn ConfigMapStore>,
    pub resolver: CredentialResolver,
    pub sources: Arc<SourceRegistry>,
    pub metrics: Arc<Metrics>,
    /// Component → referenced Secrets and ConfigMaps; shared with the watch mappings.
    pub secret_index: Arc<SecretIndex>,
}

/// componentkit's [`Handler`] for Helm releases (`spec.handler: helm`).
pub struct HelmHandler {
    /// A release of ours still `pending-*` this long after its operation started was left
    /// so by a helm that died (killed at its deadline, or the controller restarted): it is
    /// rolled back (or, never deployed, uninstalled) instead of blocking forever.
    stale_pending_after: Duration,
    engine: Arc<dyn ReleaseEngine>,
    readiness: Arc<dyn ReadinessProbe>,
    drift: Arc<dyn DriftProbe>,
    namespaces: Arc<dyn Namespaces>,
    service_accounts: Arc<dyn ServiceAccounts>,
    tenancy: TenancyPolicy,
    secrets: Arc<dyn SecretStore>,
    config_maps: Arc<dyn ConfigMapStore>,
    resolver: CredentialResolver,
    sources: Arc<SourceRegistry>,
    metrics: Arc<Metrics>,
    secret_index: Arc<SecretIndex>,
}

impl std::fmt::Debug for HelmHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelmHandler").finish_non_exhaustive()
    }
}

/// What one step of a handler operation gives: its value, or the failure that ends the
/// operation (`?` carries it to the outcome).
type Attempt<T> = Result<T, Failure>;

/// The release a Component addresses: from the persisted status, else from the config.
struct Target {
    name: ReleaseName,
    namespace: NamespaceName,
    /// Delete the namespace on uninstall when empty (`manageNamespace` + created by us).
    delete_namespace: bool,
}

impl Target {
    fn release(&self, identity: &Identity) -> Release {
        Release::new(self.name.clone(), self.namespace.clone()).acting_as(identity.clone())
    }
}

impl HelmHandler {
    pub fn new(parts: HelmHandlerParts) -> Self {
        Self {
            stale_pending_after: DEFAULT_STALE_PENDING_AFTER,
            engine: Arc::new(Metered::new(parts.engine, parts.metrics.clone())),
            readiness: parts.readiness,
            drift: parts.drift,
            namespaces: parts.namespaces,
            service_accounts: parts.service_accounts,
            tenancy: parts.tenancy,
            secrets: parts.secrets,
            config_maps: parts.config_maps,
            resolver: parts.resolver,
            sources: parts.sources,
            metrics: parts.metrics,
            secret_index: parts.secret_index,
        }
    }

    /// Sets when a `pending-*` release of ours is considered abandoned (the default suits
    /// the engine's default helm deadline of 5 minutes; pass the deadline plus a margin).
    pub fn with_stale_pending_after(mut self, after: Duration) -> Self {
        self.stale_pending_after = after;
        self
    }

    /// The index of Secrets referenced by Components (for the Secret watch).
    pub fn secret_index(&self) -> Arc<SecretIndex> {
        self.secret_index.clone()
    }

    fn parse_config(&self, cx: &HandlerContext) -> Attempt<HelmConfig> {
        let empty = Value::Object(Map::new());
        let raw = cx.config().unwrap_or(&empty);
        let config = HelmConfig::parse(raw, cx.namespace())?;
        let objects = referenced_objects(&self.resolver, cx.namespace(), &config);
        self.secret_index.set(
            ObjectKey::new(cx.namespace(), cx.name()),
            objects.secrets,
            objects.config_maps,
        );
        Ok(config)
    }

    /// [`Self::parse_config`], then the tenancy rule on the release namespace
    /// (`--no-cross-namespace-releases`): refused before any helm call.
    fn allowed_config(&self, cx: &HandlerContext) -> Attempt<HelmConfig> {
        let config = self.parse_config(cx)?;
        self.tenancy
            .check_release_namespace(cx.namespace(), &config.release_namespace)?;
        Ok(config)
    }

    /// The release to act on: what was deployed (status) wins over what is configured. A
    /// configured release the tenancy rules refuse was never deployed by us, and is no
    /// target either (deleting such a Component must not uninstall someone else's release).
    /// A recorded release whose names do not parse (the status was edited) is a failure.
    fn target(&self, cx: &HandlerContext) -> Attempt<Option<Target>> {
        let config = self.allowed_config(cx).ok();
        let status = HandlerStatus::from_value(cx.handler_status.as_ref());
        Ok(match (status, config) {
            (Some(s), config) => {
                let recorded = Release::parse(&s.release_name, &s.release_namespace)
                    .map_err(|e| Failure::from(e).context("status.handlerStatus"))?;
                Some(Target {
                    delete_namespace: s.namespace_created
                        && config.as_ref().is_none_or(|c| c.manage_namespace),
                    name: recorded.name,
                    namespace: recorded.namespace,
                })
            }
            (None, Some(c)) => Some(Target {
                name: c.release_name,
                namespace: c.release_namespace,
                delete_namespace: false,
            }),
            (None, None) => None,
        })
    }

    /// Who acts on the Component's release: the configured ServiceAccount (else the one
    /// recorded at the last deployment, when the config no longer parses), else the lockdown
    /// default, else the controller. Pure: see [`TenancyPolicy::identity`].
    fn resolve_identity(
        &self,
        cx: &HandlerContext,
        config: Option<&HelmConfig>,
    ) -> crate::identity::ResolvedIdentity {
        let configured = match config {
            Some(c) => c.service_account_name.clone(),
            None => HandlerStatus::from_value(cx.handler_status.as_ref())
                .and_then(|s| s.service_account_name)
                .and_then(|name| ServiceAccountName::new(&name).ok()),
        };
        self.tenancy.identity(configured.as_ref(), cx.namespace())
    }

    /// Whether the identity's ServiceAccount exists (the controller's own identity does).
    async fn exists(&self, identity: &Identity) -> Attempt<bool> {
        let Identity::ServiceAccount { namespace, name } = identity else {
            return Ok(true);
        };
        self.service_accounts
            .exists(namespace, name.as_str())
            .await
            .map_err(|f| f.context(&format!("ServiceAccount {namespace}/{name}")))
    }

    /// The identity to deploy and observe the release as. A ServiceAccount that does not
    /// exist is a `config` failure naming it and where it came from — never replaced by the
    /// controller's own rights.
    async fn deploy_identity(
        &self,
        cx: &HandlerContext,
        config: Option<&HelmConfig>,
    ) -> Attempt<Identity> {
        let resolved = self.resolve_identity(cx, config);
        if self.exists(&resolved.identity).await? {
            return Ok(resolved.identity);
        }
        let Identity::ServiceAccount { namespace, name } = resolved.identity else {
            return Ok(Identity::Controller);
        };
        Err(crate::error::Error::ServiceAccountNotFound {
            namespace,
            name: name.to_string(),
            origin: resolved.source.to_string(),
        }
        .into())
    }

    /// The identity to remove the release as; `None` when there is nothing to remove as it:
    /// its ServiceAccount does not exist and this Component never deployed (no status, so
    /// helm never ran for it). A missing ServiceAccount of a deployed release is an `auth`
    /// failure (retried during removal) naming it and the way out — the release is never
    /// removed with the controller's own rights instead.
    async fn removal_identity(
        &self,
        cx: &HandlerContext,
        config: Option<&HelmConfig>,
        target: &Target,
    ) -> Attempt<Option<Identity>> {
        let resolved = self.resolve_identity(cx, config);
        if self.exists(&resolved.identity).await? {
            return Ok(Some(resolved.identity));
        }
        if HandlerStatus::from_value(cx.handler_status.as_ref()).is_none() {
            tracing::info!(identity = %resolved.identity, "the ServiceAccount does not exist and nothing was deployed as it: nothing to uninstall");
            return Ok(None);
        }
        let key = resolved.identity.service_account_key().unwrap_or_default();
        Err(Failure::new(
            ErrorCategory::Auth,
            format!(
                "ServiceAccount `{key}` ({}) not found: release {}/{} is not removed with the controller's own rights instead; recreate the ServiceAccount with the rights it had (the removal is retried until terminationTimeout, then on the {} annotation), or uninstall the release yourself and remove the finalizer {}",
                resolved.source,
                target.namespace,
                target.name,
                componentkit::names::RETRY_ANNOTATION,
                componentkit::names::lifecycle_finalizer(componentkit::names::HELM_HANDLER),
            ),
        ))
    }

    async fn locate(
        &self,
        cx: &HandlerContext,
        config: &HelmConfig,
    ) -> Attempt<chart_source::LocatedChart> {
        let auth = self
            .resolver
            .resolve(self.secrets.as_ref(), cx.namespace(), &config.source)
            .await
            .map_err(|e| Failure::from(e).context("credentials"))?;
        let source_type = config.source.type_name();
        let source = self
            .sources
            .build(&config.source, auth)
            .map_err(|e| Failure::from(e).context("chart source"))?;
        match source.locate().await {
            Ok(located) => {
                let bytes = if located.cache_hit {
                    0
                } else {
                    tokio::fs::metadata(&located.path)
                        .await
                        .map(|m| m.len())
                        .unwrap_or(0)
                };
                self.metrics
                    .observe_pull(source_type, located.cache_hit, bytes);
                tracing::debug!(
                    chart = %located.name, version = %located.version, digest = %located.digest,
                    cache_hit = located.cache_hit, source = %source.describe(), "chart located"
                );
                Ok(located)
            }
            Err(e) => {
                self.metrics.observe_pull_error(source_type);
                Err(Failure::from(e).context(&format!("chart {}", source.describe())))
            }
        }
    }

    async fn apply_inner(&self, cx: &HandlerContext) -> Attempt<HandlerOutcome> {
        let config = self.allowed_config(cx)?;
        let identity = self.deploy_identity(cx, Some(&config)).await?;
        // Before the chart: a missing values source fails fast, without network.
        let values = values_from::resolve(
            self.secrets.as_ref(),
            self.config_maps.as_ref(),
            cx.namespace(),
            &config,
        )
        .await?;
        let located = self.locate(cx, &config).await?;
        let release = Release::new(
            config.release_name.clone(),
            config.release_namespace.clone(),
        )
        .acting_as(identity.clone());
        let (release_name, namespace) = (release.name.as_str(), release.namespace.as_str());
        let hash = values.hash();
        let digest = located.digest.to_string();
        let desired = DesiredState {
            release_name,
            release_namespace: namespace,
            chart_digest: &digest,
            values_hash: &hash,
        };
        let previous = HandlerStatus::from_value(cx.handler_status.as_ref());
        let before = Before::of(previous.as_ref(), &desired);

        // A renamed or moved release: remove the old one first.
        if let Before::Moved(prev) = before {
            tracing::info!(
                old = %format!("{}/{}", prev.release_namespace, prev.release_name),
                new = %format!("{namespace}/{release_name}"),
                "release identity changed; uninstalling the old release"
            );
            let previous = Release::parse(&prev.release_name, &prev.release_namespace)
                .map_err(|e| Failure::from(e).context("status.handlerStatus"))?
                .acting_as(identity.clone());
            self.engine
                .uninstall(&previous)
                .await
                .map_err(|e| Failure::from(e).context("uninstall of the previous release"))?;
            if prev.namespace_created && prev.release_namespace != namespace {
                self.remove_namespace_if_empty(&identity, &prev.release_namespace)
                    .await;
            }
        }

        let mut current = self.engine.status(&release).await?;
        if let Some(cur) = &current
            && cur.status.is_pending()
        {
            self.unblock_pending(&release, cur, before.same().is_some())
                .await?;
            current = self.engine.status(&release).await?;
            if let Some(cur) = &current
                && cur.status.is_pending()
            {
                return Err(Failure::new(
                    ErrorCategory::Conflict,
                    format!(
                        "release {release} is still {} after it was unblocked; retrying",
                        cur.status
                    ),
                ));
            }
        }
        let this = format!("{}/{}", cx.namespace(), cx.name());
        let (operation, server_side_apply) = match plan::plan(
            before,
            current.as_ref(),
            &desired,
            &this,
        ) {
            ReleaseAction::Observe => {
                tracing::debug!(release = %release_name, "desired state unchanged; no upgrade");
                return self
                    .observe_release(cx, &release, Some(&config.drift_detection), current)
                    .await;
            }
            ReleaseAction::Refuse { owner } => {
                return Err(Failure::new(
                    ErrorCategory::Config,
                    format!(
                        "release {namespace}/{release_name} belongs to Component {owner}; choose another releaseName (or uninstall it: helm uninstall {release_name} -n {namespace})"
                    ),
                ));
            }
            ReleaseAction::Deploy {
                operation,
                server_side_apply,
            } => (operation, server_side_apply),
        };

        let mut namespace_created = before.namespace_created(&desired);
        if config.manage_namespace && !self.namespaces.exists(namespace).await? {
            self.namespaces
                .create(&identity, namespace)
                .await
                .map_err(|f| f.context(&format!("create namespace {namespace}")))?;
            namespace_created = true;
            tracing::info!(namespace = %namespace, "namespace created");
        }

        let mut status = match before.same() {
            Some(p) => p.clone(),
            None => HandlerStatus {
                release_name: release_name.to_string(),
                release_namespace: namespace.to_string(),
                ..HandlerStatus::default()
            },
        };
        status.namespace_created = namespace_created;
        status.service_account_name = match &identity {
            Identity::Controller => None,
            Identity::ServiceAccount { name, .. } => Some(name.to_string()),
        };

        let options = UpgradeOptions {
            server_side_apply,
            installs: operation == ReleaseOperation::install,
            // helm's own namespace creation only as the controller: the handler created it
            // already (as the identity), and helm would create it even when it exists — which
            // a tenant without cluster-scoped rights is refused.
            create_namespace: config.manage_namespace && identity.is_controller(),
            description: Some(format!("{RELEASE_DESCRIPTION_PREFIX}{this}")),
            ..UpgradeOptions::default()
        };
        let result = self
            .engine
            .upgrade_install(&release, &located.path, values.as_map(), &options)
            .await;
        let info = match result {
            Ok(info) => info,
            Err(f) => {
                // Keep what is known (namespace created, the release identity) for delete.
                let outcome = failed(&Failure::from(f));
                return Ok(outcome.with_status(status.to_value()));
            }
        };
        tracing::info!(
            release = %release_name, namespace = %namespace, revision = info.revision,
            chart = %located.name, version = %located.version,
            "{}", if operation == ReleaseOperation::install { "release installed" } else { "release upgraded" }
        );
        status.revision = Some(info.revision);
        status.chart = ChartStatus {
            name: located.name.clone(),
            version: located.version.clone(),
            digest,
            differs_from_reference: located.differs_from_reference.clone(),
        };
        status.source = config.source.describe();
        status.verified = located.verified.as_ref().map(status::VerifiedStatus::from);
        status.values_hash = hash;
        status.last_deploy_time = Some(status::now_rfc3339());
        let outcome = HandlerOutcome::in_progress(
            REQUEUE_AFTER_DEPLOY,
            format!(
                "release {namespace}/{release_name} revision {} ({} {}) deployed; waiting for its resources",
                info.revision, located.name, located.version
            ),
        )
        .with_status(status.to_value());
        Ok(match &located.differs_from_reference {
            Some(mismatch) => outcome.with_event(componentkit::handler::HandlerEvent {
                type_: EventType::Normal,
                reason: REASON_CHART_DIFFERS.into(),
                message: format!(
                    "{mismatch} (deployed as helm deploys it; source {})",
                    config.source.describe()
                ),
            }),
            None => outcome,
        })
    }

    /// A release found `pending-*`: another operation is running, or a helm died in the
    /// middle of one and left the release locked (helm refuses every later operation with
    /// "another operation is in progress"). Only a release this Component deployed, pending
    /// for longer than any helm of ours can run, is unblocked: rolled back to its last
    /// revision, or uninstalled when it was never deployed. Anything else is waited for.
    async fn unblock_pending(
        &self,
        release: &Release,
        cur: &ReleaseInfo,
        ours: bool,
    ) -> Attempt<()> {
        let started = cur.last_deployed.as_deref().and_then(parse_helm_time);
        let age = started.map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
        let stale = age.is_some_and(|a| a >= self.stale_pending_after);
        if !(ours && stale) {
            let why = if !ours {
                "not deployed by this Component: it is left alone".to_string()
            } else {
                let waited = age.map_or("an unknown time".to_string(), |a| {
                    humantime::format_duration(Duration::from_secs(a.as_secs())).to_string()
                });
                format!(
                    "pending for {waited}; rolled back if still pending after {}",
                    humantime::format_duration(self.stale_pending_after)
                )
            };
            return Err(Failure::new(
                ErrorCategory::Conflict,
                format!(
                    "release {release} has an operation in progress ({}), {why}; retrying",
                    cur.status
                ),
            ));
        }
        if cur.status == ReleaseStatus::PendingInstall && cur.revision <= 1 {
            tracing::warn!(release = %release, status = %cur.status, "release stuck in a pending install; uninstalling it to install again");
            self.engine
                .uninstall(release)
                .await
                .map(drop)
                .map_err(|e| Failure::from(e).context("uninstall of a stuck pending install"))
        } else {
            tracing::warn!(release = %release, status = %cur.status, revision = cur.revision, "release stuck in a pending operation; rolling back to its previous revision");
            self.engine
                .rollback(release, None)
                .await
                .map_err(|e| Failure::from(e).context("rollback of a stuck pending release"))
        }
    }

    /// `helm status` + readiness of the release's objects; once ready, drift detection
    /// (unless `disabled`).
    /// `known`: the release's status, when this reconcile has just read it.
    async fn observe_release(
        &self,
        cx: &HandlerContext,
        release: &Release,
        drift: Option<&DriftDetection>,
        known: Option<ReleaseInfo>,
    ) -> Attempt<HandlerOutcome> {
        let (name, namespace) = (&release.name, &release.namespace);
        let info = match known {
            Some(info) => Some(info),
            None => self.engine.status(release).await?,
        };
        let Some(info) = info else {
            return Err(Failure::new(
                ErrorCategory::NotFound,
                format!("release {namespace}/{name} not found (uninstalled outside helm-handler?)"),
            ));
        };
        match &info.status {
            ReleaseStatus::Deployed => {}
            ReleaseStatus::Failed => {
                return Err(Failure::new(
                    ErrorCategory::Internal,
                    format!(
                        "release {namespace}/{name} revision {} failed: {}",
                        info.revision, info.description
                    ),
                ));
            }
            other => {
                return Ok(HandlerOutcome::in_progress(
                    REQUEUE_PROGRESSING,
                    format!(
                        "release {namespace}/{name} revision {} is {}",
                        info.revision, other
                    ),
                ));
            }
        }
        // `helm status -o json` usually carries the manifest; ask for it only when not.
        let manifest = if info.manifest.trim().is_empty() {
            self.engine.get_manifest(release).await?
        } else {
            info.manifest.clone()
        };
        // `enabled` corrects before readiness is judged: a deleted object would otherwise
        // keep the release progressing, and only Ready releases are checked periodically.
        let corrected = match drift {
            Some(d) if d.mode == DriftMode::Enabled => {
                self.drift_or_log(cx, release, &manifest, d).await
            }
            _ => None,
        };
        let progressing = |requeue: Duration, message: String| {
            let outcome = HandlerOutcome::in_progress(requeue, message);
            match &corrected {
                Some(c) => HandlerOutcome {
                    conditions: c.conditions.clone(),
                    events: c.events.clone(),
                    ..outcome
                },
                None => outcome,
            }
        };
        let mut readiness = self.readiness.assess(release, &manifest).await?;
        if corrected.is_some() {
            // A re-applied object needs its controller a moment to observe the new
            // generation; judged at once, a Ready release would flip to Deploying and back.
            let settle = Instant::now();
            while matches!(readiness, Verdict::Progressing { .. })
                && settle.elapsed() < CORRECTION_SETTLE
            {
                tokio::time::sleep(CORRECTION_SETTLE / 10).await;
                readiness = self.readiness.assess(release, &manifest).await?;
            }
        }
        match readiness {
            Verdict::Ready => match (corrected, drift) {
                (Some(outcome), _) => Ok(outcome),
                (None, Some(d)) if d.mode != DriftMode::Disabled => Ok(self
                    .drift_or_log(cx, release, &manifest, d)
                    .await
                    .unwrap_or_else(HandlerOutcome::done)),
                _ => Ok(HandlerOutcome::done()),
            },
            Verdict::Progressing { reason } => Ok(progressing(
                REQUEUE_PROGRESSING,
                format!(
                    "release {namespace}/{name} revision {}: {reason}",
                    info.revision
                ),
            )),
            // Not final: a crash-looping Pod may recover (a dependency comes up). The
            // deployment timeout turns a lasting failure into `Failed`, with this message.
            Verdict::Failed { reason } => Ok(progressing(
                REQUEUE_FAILING,
                format!(
                    "release {namespace}/{name} revision {} is failing: {reason}",
                    info.revision
                ),
            )),
        }
    }

    /// [`Self::check_drift`]; a failure of the check (the API unreachable, a permission
    /// missing) is logged and retried at the next check, never a failure of the Component.
    async fn drift_or_log(
        &self,
        cx: &HandlerContext,
        release: &Release,
        manifest: &str,
        config: &DriftDetection,
    ) -> Option<HandlerOutcome> {
        match self.check_drift(cx, release, manifest, config).await {
            Ok(outcome) => Some(outcome),
            Err(f) => {
                tracing::warn!(release = %release, category = %f.category, "drift check failed: {}", f.message);
                None
            }
        }
    }

    /// Compares the release's live objects with its manifest; reports (a `Drifted`
    /// condition, an Event when the drift is new) and, with `enabled`, re-applies the
    /// drifted objects. Nothing drifted and nothing reported before: no write at all.
    async fn check_drift(
        &self,
        cx: &HandlerContext,
        release: &Release,
        manifest: &str,
        config: &DriftDetection,
    ) -> Attempt<HandlerOutcome> {
        let check = self.drift.check(release, manifest, config).await?;
        let action = plan(config.mode, !check.drifts.is_empty());
        let text = summary(&check.drifts);
        tracing::debug!(
            requests = check.requests,
            objects = check.drifts.len(),
            mode = config.mode.as_str(),
            "drift checked"
        );
        let previous = cx
            .component
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == DRIFTED_CONDITION))
            .map(|c| c.message.clone());
        let condition =
            |status: bool, reason: &str, message: String| componentkit::handler::HandlerCondition {
                type_: DRIFTED_CONDITION.into(),
                status,
                reason: reason.into(),
                message,
            };
        let warning = |reason: &str, message: String| componentkit::handler::HandlerEvent {
            type_: EventType::Warning,
            reason: reason.into(),
            message,
        };
        Ok(match action {
            DriftAction::Nothing => {
                let outcome = HandlerOutcome::done();
                if previous.is_some_and(|m| m.is_empty()) {
                    outcome
                } else {
                    outcome.with_condition(condition(false, "NoDrift", String::new()))
                }
            }
            DriftAction::Report => {
                let message = format!("drift detected (mode warn, not corrected): {text}");
                tracing::warn!(release = %release, "{message}");
                let outcome = HandlerOutcome::done();
                let outcome = if previous.as_deref() == Some(message.as_str()) {
                    outcome
                } else {
                    outcome.with_event(warning("DriftDetected", message.clone()))
                };
                outcome.with_condition(condition(true, "DriftDetected", message))
            }
            DriftAction::Correct => {
                self.drift.correct(release, manifest, &check.drifts).await?;
                let message = format!("drift corrected (re-applied, no new revision): {text}");
                tracing::info!("{message}");
                HandlerOutcome::done()
                    .with_event(warning("DriftCorrected", message.clone()))
                    .with_condition(condition(false, "DriftCorrected", message))
            }
        })
    }

    async fn check_applied_inner(&self, cx: &HandlerContext) -> Attempt<HandlerOutcome> {
        let Some(target) = self.target(cx)? else {
            // Neither a status nor an allowed config: report why.
            return Err(self.allowed_config(cx).err().unwrap_or_else(|| {
                Failure::new(ErrorCategory::Internal, "no release to observe")
            }));
        };
        let config = self.parse_config(cx).ok();
        let identity = self.deploy_identity(cx, config.as_ref()).await?;
        self.observe_release(
            cx,
            &target.release(&identity),
            config.as_ref().map(|c| &c.drift_detection),
            None,
        )
        .await
    }

    async fn delete_inner(&self, cx: &HandlerContext) -> Attempt<HandlerOutcome> {
        let Some(target) = self.target(cx)? else {
            tracing::info!("no release recorded and no valid config: nothing to uninstall");
            self.secret_index
                .remove(&ObjectKey::new(cx.namespace(), cx.name()));
            return Ok(HandlerOutcome::done());
        };
        let config = self.parse_config(cx).ok();
        let Some(identity) = self.removal_identity(cx, config.as_ref(), &target).await? else {
            return self.forget(cx);
        };
        if !self.deployed_by(cx, &target.release(&identity)).await? {
            return self.forget(cx);
        }
        if self.engine.uninstall(&target.release(&identity)).await? == UninstallOutcome::Uninstalled
        {
            tracing::info!(release = %target.name, namespace = %target.namespace, identity = %identity, "release uninstalled");
        }
        self.check_deleted_target(cx, &target, &identity).await
    }

    async fn check_deleted_inner(&self, cx: &HandlerContext) -> Attempt<HandlerOutcome> {
        let Some(target) = self.target(cx)? else {
            self.secret_index
                .remove(&ObjectKey::new(cx.namespace(), cx.name()));
            return Ok(HandlerOutcome::done());
        };
        let config = self.parse_config(cx).ok();
        let Some(identity) = self.removal_identity(cx, config.as_ref(), &target).await? else {
            return self.forget(cx);
        };
        self.check_deleted_target(cx, &target, &identity).await
    }

    async fn check_deleted_target(
        &self,
        cx: &HandlerContext,
        target: &Target,
        identity: &Identity,
    ) -> Attempt<HandlerOutcome> {
        let release = target.release(identity);
        if let Some(info) = self.engine.status(&release).await? {
            return Ok(HandlerOutcome::in_progress(
                REQUEUE_DELETING,
                format!(
                    "release {}/{} is still present ({})",
                    target.namespace, target.name, info.status
                ),
            ));
        }
        if target.delete_namespace {
            match self.namespaces.contents(&target.namespace).await? {
                NamespaceContents::Gone => {}
                NamespaceContents::Empty => {
                    self.namespaces
                        .delete(identity, &target.namespace)
                        .await
                        .map_err(|f| {
                            f.context(&format!("delete namespace {}", target.namespace))
                        })?;
                    tracing::info!(namespace = %target.namespace, "namespace deleted");
                }
                NamespaceContents::Draining(what) => {
                    return Ok(HandlerOutcome::in_progress(
                        REQUEUE_DELETING,
                        format!(
                            "waiting for namespace {} to drain: {what}",
                            target.namespace
                        ),
                    ));
                }
                NamespaceContents::InUse(what) => {
                    tracing::info!(
                        namespace = %target.namespace, remaining = %what,
                        "namespace kept: it holds objects that are not the release's"
                    );
                }
            }
        }
        self.secret_index
            .remove(&ObjectKey::new(cx.namespace(), cx.name()));
        Ok(HandlerOutcome::done())
    }

    /// Whether the release is this Component's to remove. With a recorded status it is (we
    /// deployed it). Without one, this Component never got as far as helm — except when
    /// helm finished and the status write did not: then the release's description names
    /// this Component. Any other release of that name is someone else's (another
    /// Component's, or installed by hand), and a release the identity may not even read
    /// was not deployed as it: neither is uninstalled.
    async fn deployed_by(&self, cx: &HandlerContext, release: &Release) -> Attempt<bool> {
        if HandlerStatus::from_value(cx.handler_status.as_ref()).is_some() {
            return Ok(true);
        }
        let this = format!("{}/{}", cx.namespace(), cx.name());
        match self.engine.status(release).await {
            Ok(Some(info)) => {
                let ours = info
                    .description
                    .strip_prefix(RELEASE_DESCRIPTION_PREFIX)
                    .is_some_and(|owner| owner == this);
                if !ours {
                    tracing::info!(release = %release, "release not deployed by this Component: left alone");
                }
                Ok(ours)
            }
            Ok(None) => Ok(false),
            Err(e) if e.category() == ErrorCategory::Auth => {
                tracing::info!(release = %release, identity = %release.identity, "release not readable as this Component's identity, so not deployed as it: nothing to uninstall ({e})");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removal done without anything to uninstall: the Component is forgotten.
    fn forget(&self, cx: &HandlerContext) -> Attempt<HandlerOutcome> {
        self.secret_index
            .remove(&ObjectKey::new(cx.namespace(), cx.name()));
        Ok(HandlerOutcome::done())
    }

    /// Best effort: deletes a namespace the handler created once nothing but defaults is
    /// left in it (a release moved to another namespace). Never fails the operation.
    async fn remove_namespace_if_empty(&self, identity: &Identity, namespace: &str) {
        match self.namespaces.contents(namespace).await {
            Ok(NamespaceContents::Empty) => match self.namespaces.delete(identity, namespace).await
            {
                Ok(()) => {
                    tracing::info!(namespace = %namespace, "previous release namespace deleted")
                }
                Err(f) => {
                    tracing::warn!(namespace = %namespace, "cannot delete the previous release namespace: {f}")
                }
            },
            Ok(other) => {
                tracing::info!(namespace = %namespace, contents = ?other, "previous release namespace kept")
            }
            Err(f) => {
                tracing::warn!(namespace = %namespace, "cannot inspect the previous release namespace: {f}")
            }
        }
    }

    fn record(&self, operation: Operation, outcome: &HandlerOutcome, started: Instant) {
        let result = match &outcome.outcome {
            Outcome::Done => ReconcileResult::done,
            Outcome::InProgress { .. } => ReconcileResult::in_progress,
            Outcome::Failed { category, .. } => {
                self.metrics.observe_error(category.as_str());
                if category.is_transient() {
                    ReconcileResult::failed_transient
                } else {
                    ReconcileResult::failed_permanent
                }
            }
        };
        self.metrics
            .observe_reconcile(operation, result, started.elapsed());
        match &outcome.outcome {
            Outcome::Failed { category, message } => {
                tracing::warn!(operation = ?operation, category = %category, "{message}")
            }
            Outcome::InProgress { message, .. } => {
                tracing::debug!(operation = ?operation, "{message}")
            }
            Outcome::Done => tracing::debug!(operation = ?operation, "done"),
        }
    }

    async fn run(
        &self,
        operation: Operation,
        cx: &HandlerContext,
        inner: impl std::future::Future<Output = Attempt<HandlerOutcome>>,
    ) -> HandlerOutcome {
        let started = Instant::now();
        let span = tracing::info_span!(
            "reconcile",
            component = %format!("{}/{}", cx.namespace(), cx.name()),
            op = ?operation
        );
        let outcome = tracing::Instrument::instrument(inner, span.clone())
            .await
            .unwrap_or_else(|f| failed(&f));
        let _entered = span.enter();
        self.record(operation, &outcome, started);
        outcome
    }
}

/// Every Secret and ConfigMap a configuration reads: the credential Secrets (each candidate
/// namespace) and the `valuesFrom` sources. For the watches that re-reconcile a Component
/// when one of them changes.
pub fn referenced_objects(
    resolver: &CredentialResolver,
    namespace: &str,
    config: &HelmConfig,
) -> ValuesObjects {
    let mut objects = values_from::referenced_objects(namespace, &config.values_from);
    for secret in resolver.referenced_secrets(namespace, &config.source) {
        if !objects.secrets.contains(&secret) {
            objects.secrets.push(secret);
        }
    }
    objects
}

/// Drift detection off everywhere (tests, tools that never look).
pub struct NoDrift;

#[async_trait]
impl DriftProbe for NoDrift {
    async fn check(&self, _: &Release, _: &str, _: &DriftDetection) -> Result<DriftCheck, Failure> {
        Ok(DriftCheck::default())
    }
    async fn correct(&self, _: &Release, _: &str, _: &[ObjectDrift]) -> Result<(), Failure> {
        Ok(())
    }
}

fn failed(f: &Failure) -> HandlerOutcome {
    HandlerOutcome::failed(f.category, f.message.clone())
}

#[async_trait]
impl Handler for HelmHandler {
    fn name(&self) -> &str {
        componentkit::names::HELM_HANDLER
    }

    async fn apply(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.run(Operation::apply, cx, self.apply_inner(cx)).await
    }

    async fn check_applied(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.run(Operation::check_applied, cx, self.check_applied_inner(cx))
            .await
    }

    async fn delete(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.run(Operation::delete, cx, self.delete_inner(cx)).await
    }

    async fn check_deleted(&self, cx: &HandlerContext) -> HandlerOutcome {
        self.run(Operation::check_deleted, cx, self.check_deleted_inner(cx))
            .await
    }
}

/// helm's timestamps (Go's RFC 3339 with nanoseconds and any offset).
fn parse_helm_time(text: &str) -> Option<SystemTime> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_times_parse_with_nanoseconds_and_offsets() {
        let utc = parse_helm_time("2026-11-23T09:16:05.589616135Z").unwrap();
        let offset = parse_helm_time("2026-11-23T10:16:05.589616135+01:00").unwrap();
        assert_eq!(utc, offset);
        assert!(parse_helm_time("").is_none());
        assert!(parse_helm_time("yesterday").is_none());
    }
}
