//! The release engine over the `helm` binary (helm 3.8+ and helm 4).
//!
//! Every operation runs one helm process:
//!
//! | operation | command line |
//! |---|---|
//! | [`HelmEngine::check_version`] | `helm version --template {{.Version}}` |
//! | [`HelmEngine::upgrade_install`] | `helm upgrade --install NAME CHART.tgz --namespace NS --history-max N --reset-values --output json --timeout Ts [--create-namespace] [--dry-run=client] -f VALUES.json` |
//! | [`HelmEngine::status`] | `helm status NAME --namespace NS --output json` |
//! | [`HelmEngine::get_manifest`] | `helm get manifest NAME --namespace NS` |
//! | [`HelmEngine::uninstall`] | `helm uninstall NAME --namespace NS --timeout Ts` |
//! | [`HelmEngine::rollback`] | `helm rollback NAME [REVISION] --namespace NS --history-max N --timeout Ts` |
//! | [`HelmEngine::template`] | `helm template NAME CHART.tgz --namespace NS --include-crds -f VALUES.json` |
//!
//! (`--kube-context C` is added to the cluster operations when configured, and
//! `--kube-as-user system:serviceaccount:NS:NAME` when the release is acted on as a
//! ServiceAccount: [`Release::identity`], see [`crate::identity`].) No `--wait`:
//! progress is observed afterwards with [`crate::readiness`].
//!
//! Rules: helm gets private `HELM_CONFIG_HOME`/`HELM_CACHE_HOME`/`HELM_DATA_HOME` (and
//! registry/repository config, plugins) under the engine's work directory, never the user's,
//! and every other `HELM_*` variable of our environment is removed; `KUBECONFIG` is set when
//! configured; values go through a `0600` file in a private `0700` directory removed after
//! the call — never argv; the process is killed on timeout; one operation per release at a
//! time; stdout/stderr are size-capped; failures are classified from helm's real messages
//! ([`HelmError`], with a [`componentkit::handler::ErrorCategory`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::process::Command;

pub mod command;
pub mod errors;
pub mod locks;
pub mod metered;
pub mod records;
pub mod release;
pub mod stop;
pub mod version;

pub use errors::{Forbidden, ForbiddenTarget, HelmError};
pub use release::{ChartInfo, Release, ReleaseInfo, ReleaseStatus, UninstallOutcome};
pub use version::HelmVersion;

use locks::ReleaseLocks;

/// The kubeconfig helm is given. helm runs in a scratch directory of its own, so a relative
/// path — our `--kubeconfig`, or an entry of an inherited `KUBECONFIG` list — would name a
/// file there: it is made absolute against our working directory.
pub fn absolute_kubeconfig(
    explicit: Option<&Path>,
    inherited: Option<&std::ffi::OsStr>,
    cwd: &Path,
) -> Option<PathBuf> {
    let absolute = |p: PathBuf| if p.is_absolute() { p } else { cwd.join(p) };
    if let Some(path) = explicit {
        return Some(absolute(path.to_path_buf()));
    }
    let list: Vec<PathBuf> = std::env::split_paths(inherited?)
        .filter(|p| !p.as_os_str().is_empty())
        .map(absolute)
        .collect();
    if list.is_empty() {
        return None;
    }
    std::env::join_paths(list).ok().map(PathBuf::from)
}

/// GOGC for helm processes unless the controller's environment sets one.
pub const HELM_GOGC: &str = "400";

/// Configuration of a [`HelmEngine`].
#[derive(Clone, Debug)]
pub struct HelmEngineOptions {
    /// The helm binary: a path, or a bare name looked up on PATH (default `helm`).
    pub helm_binary: PathBuf,
    /// Sets `KUBECONFIG` for helm. `None`: helm's own resolution (our `KUBECONFIG`,
    /// `~/.kube/config`, or the in-cluster service account).
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-context` for the cluster operations.
    pub kube_context: Option<String>,
    /// Where the private helm homes and the per-operation values directories live.
    /// `None`: a fresh temporary directory, removed with the engine.
    pub work_dir: Option<PathBuf>,
    /// Upper bound for one helm process (also passed to helm as `--timeout` where it applies).
    pub timeout: Duration,
    /// `--history-max`: revisions kept per release.
    pub history_max: u32,
    /// Extra environment for helm, applied last (e.g. `HELM_DRIVER=memory` in tests, proxy
    /// settings). Never put credentials here.
    pub extra_env: BTreeMap<String, String>,
    /// When helm may not start, and when running helm must stop (lost lead, shutdown).
    pub stop: stop::HelmStop,
}

impl Default for HelmEngineOptions {
    fn default() -> Self {
        HelmEngineOptions {
            helm_binary: PathBuf::from("helm"),
            kubeconfig: None,
            kube_context: None,
            work_dir: None,
            timeout: Duration::from_secs(300),
            history_max: 10,
            extra_env: BTreeMap::new(),
            stop: stop::HelmStop::default(),
        }
    }
}

/// Options of one `upgrade --install`.
#[derive(Clone, Debug, Default)]
pub struct UpgradeOptions {
    /// `--create-namespace` (the Component's `manageNamespace`).
    pub create_namespace: bool,
    /// `--dry-run=client`: render and simulate without touching the cluster (helm 4 needs no
    /// cluster at all; helm 3 still asks the API server for its version).
    pub dry_run_client: bool,
    /// `--description` recorded in the revision.
    pub description: Option<String>,
    /// Overrides the engine's timeout for this call.
    pub timeout: Option<Duration>,
    /// The objects will be applied server-side (helm 4 installs a new release with
    /// server-side apply, and keeps a release's method on upgrade): the API server checks
    /// them against its schema, so helm 4 is given `--disable-openapi-validation` — its
    /// client-side check downloads and parses the OpenAPI documents, two thirds of the CPU
    /// of an `upgrade --install` (0.15 of 0.23 CPU-seconds for `helm create`'s chart), and
    /// finds nothing server-side apply does not ("field not declared in schema" either way).
    /// Ignored for helm 3 (client-side apply: its validation is the schema check).
    pub server_side_apply: bool,
    /// No release exists: helm installs it (counted as an install, not an upgrade).
    pub installs: bool,
}

/// The operations the handler needs; [`HelmEngine`] implements it over the helm binary,
/// tests can substitute a recording fake.
#[async_trait]
pub trait ReleaseEngine: Send + Sync {
    async fn upgrade_install(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
        options: &UpgradeOptions,
    ) -> Result<ReleaseInfo, HelmError>;
    async fn status(&self, release: &Release) -> Result<Option<ReleaseInfo>, HelmError>;
    async fn get_manifest(&self, release: &Release) -> Result<String, HelmError>;
    async fn uninstall(&self, release: &Release) -> Result<UninstallOutcome, HelmError>;
    async fn template(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
    ) -> Result<String, HelmError>;
    /// `helm rollback` to `revision` (the previous one when `None`): the way out of a release
    /// left `pending-upgrade`/`pending-rollback` by a killed helm. Engines that cannot roll
    /// back say so.
    async fn rollback(&self, release: &Release, revision: Option<u64>) -> Result<(), HelmError> {
        let _ = revision;
        Err(HelmError::Failed {
            operation: "rollback",
            exit: "-".into(),
            message: format!("this engine cannot roll back release {release}"),
        })
    }
}

/// The private directories helm is given.
#[derive(Clone, Debug)]
struct HelmHomes {
    config: PathBuf,
    cache: PathBuf,
    data: PathBuf,
    /// Parent of the per-operation values directories.
    scratch: PathBuf,
}

/// The release engine. Cheap to share (`Arc<HelmEngine>`); operations on different
/// releases run concurrently, operations on one release one at a time.
#[derive(Debug)]
pub struct HelmEngine {
    options: HelmEngineOptions,
    homes: HelmHomes,
    version: OnceLock<HelmVersion>,
    locks: ReleaseLocks,
    // Kept last: removed after everything else is dropped.
    _owned_dir: Option<tempfile::TempDir>,
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl HelmEngine {
    /// Creates the work directory layout (`config/`, `cache/`, `data/`, `scratch/`, all
    /// `0700`). Does not run helm: call [`check_version`](Self::check_version) at start.
    pub fn new(mut options: HelmEngineOptions) -> Result<HelmEngine, HelmError> {
        if let Ok(cwd) = std::env::current_dir() {
            options.kubeconfig = absolute_kubeconfig(
                options.kubeconfig.as_deref(),
                std::env::var_os("KUBECONFIG").as_deref(),
                &cwd,
            );
        }
        let io = |what: String| {
            move |source| HelmError::Io {
                operation: "setup",
                what,
                source,
            }
        };
        let (root, owned) = match &options.work_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("helm-handler-")
                    .tempdir()
                    .map_err(io("creating a temporary work directory".into()))?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let homes = HelmHomes {
            config: root.join("config"),
            cache: root.join("cache"),
            data: root.join("data"),
            scratch: root.join("scratch"),
        };
        for dir in [
            &root,
            &homes.config,
            &homes.cache,
            &homes.data,
            &homes.scratch,
        ] {
            private_dir(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        Ok(HelmEngine {
            options,
            homes,
            version: OnceLock::new(),
            locks: ReleaseLocks::default(),
            _owned_dir: owned,
        })
    }

    pub fn options(&self) -> &HelmEngineOptions {
        &self.options
    }

    /// The version found by [`check_version`](Self::check_version), if it ran.
    pub fn version(&self) -> Option<HelmVersion> {
        self.version.get().copied()
    }

    /// Runs `helm version`, and fails when helm is absent or older than 3.8.
    pub async fn check_version(&self) -> Result<HelmVersion, HelmError> {
        let args = vec![
            OsString::from("version"),
            OsString::from("--template"),
            OsString::from("{{.Version}}"),
        ];
        // Not gated by `stop`: it runs before this replica may lead, and touches no cluster.
        let out = self.run_helm("version", None, args, None, None).await?;
        let found = out.trim().to_string();
        let version = HelmVersion::parse(&found).ok_or_else(|| HelmError::UnknownVersion {
            path: self.options.helm_binary.clone(),
            output: errors::cap(&found, 200),
        })?;
        if version < version::MINIMUM {
            return Err(HelmError::TooOld {
                path: self.options.helm_binary.clone(),
                found: version.to_string(),
                minimum: version::MINIMUM.to_string(),
            });
        }
        let _ = self.version.set(version);
        Ok(version)
    }

    /// The helm command for `args`, with the engine's environment. Public so tests can assert
    /// on what is passed (argv and environment).
    pub fn command(&self, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.options.helm_binary);
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HELM_") {
                cmd.env_remove(&key);
            }
        }
        let h = &self.homes;
        cmd.env("HELM_CONFIG_HOME", &h.config)
            .env("HELM_CACHE_HOME", &h.cache)
            .env("HELM_DATA_HOME", &h.data)
            .env(
                "HELM_REGISTRY_CONFIG",
                h.config.join("registry/config.json"),
            )
            .env("HELM_REPOSITORY_CONFIG", h.config.join("repositories.yaml"))
            .env("HELM_REPOSITORY_CACHE", h.cache.join("repository"))
            .env("HELM_CONTENT_CACHE", h.cache.join("content"))
            .env("HELM_PLUGINS", h.data.join("plugins"))
            .env("HELM_NO_PLUGINS", "1")
            // client-go's discovery cache (kubectl's ~/.kube/cache): private, and kept for
            // the engine's life, so that each helm does not rediscover every API group.
            .env("KUBECACHEDIR", h.cache.join("kube"))
            .env("NO_COLOR", "1")
            .current_dir(&h.scratch);
        // helm lives well under a second and allocates most of its ~60 MB at start-up:
        // collecting less often cuts a fifth of an install's CPU for ~5 MB of peak memory
        // (measured: 0.149 → 0.117 CPU-s, 58 → 62 MB). An operator's GOGC is kept.
        if std::env::var_os("GOGC").is_none() {
            cmd.env("GOGC", HELM_GOGC);
        }
        if let Some(kubeconfig) = &self.options.kubeconfig {
            cmd.env("KUBECONFIG", kubeconfig);
        }
        for (k, v) in &self.options.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The flags of every command that talks to the cluster: the kube context, and the
    /// identity the release is acted on as (`--kube-as-user system:serviceaccount:NS:NAME`).
    ///
    /// No `--kube-as-group`: impersonating a ServiceAccount without groups makes the API
    /// server add the ServiceAccount's own groups (`system:serviceaccounts`,
    /// `system:serviceaccounts:NS`, `system:authenticated`), exactly what its token would
    /// carry; naming groups would require `impersonate` on `groups`, which would let the
    /// controller impersonate any group (`system:masters` included).
    fn cluster_args(&self, release: &Release, args: &mut Vec<OsString>) {
        if let Some(ctx) = &self.options.kube_context {
            args.push("--kube-context".into());
            args.push(ctx.into());
        }
        if let Some(user) = release.identity.username() {
            args.push("--kube-as-user".into());
            args.push(user.into());
        }
    }

    /// Runs helm while this replica may act; non-zero exit → classified error; success →
    /// stdout.
    async fn run_checked(
        &self,
        operation: &'static str,
        release: &Release,
        args: Vec<OsString>,
        timeout: Option<Duration>,
    ) -> Result<String, HelmError> {
        let stop = &self.options.stop;
        self.run_helm(operation, Some(release), args, timeout, Some(stop))
            .await
    }

    /// Runs helm; `release` is the release it acts on (none for `helm version`).
    async fn run_helm(
        &self,
        operation: &'static str,
        release: Option<&Release>,
        args: Vec<OsString>,
        timeout: Option<Duration>,
        stop: Option<&stop::HelmStop>,
    ) -> Result<String, HelmError> {
        let timeout = timeout.unwrap_or(self.options.timeout);
        tracing::debug!(operation, release = %release.map(Release::to_string).unwrap_or_default(), ?args, "running helm");
        let never = stop::HelmStop::default();
        let out = command::run(
            self.command(&args),
            &self.options.helm_binary,
            operation,
            timeout,
            stop.unwrap_or(&never),
        )
        .await?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(errors::classify(
                operation,
                release.map_or("", |r| &r.namespace),
                release.map_or("", |r| &r.name),
                out.exit(),
                &out.stderr,
            ))
        }
    }

    /// `--timeout` for helm: slightly below ours, so that helm stops (and records a failed
    /// revision) before we kill it.
    fn helm_timeout_arg(timeout: Duration) -> OsString {
        let secs = timeout
            .as_secs()
            .saturating_sub(timeout.as_secs() / 10 + 1)
            .max(1);
        format!("{secs}s").into()
    }

    fn dry_run_flag(&self) -> &'static str {
        match self.version() {
            Some(v) if !v.has_dry_run_modes() => "--dry-run",
            _ => "--dry-run=client",
        }
    }

    /// Argument vector of `upgrade --install` (values file path given).
    pub fn upgrade_args(
        &self,
        release: &Release,
        chart: &Path,
        values_file: &Path,
        options: &UpgradeOptions,
    ) -> Vec<OsString> {
        let timeout = options.timeout.unwrap_or(self.options.timeout);
        let mut args: Vec<OsString> = vec![
            "upgrade".into(),
            "--install".into(),
            release.name.as_str().into(),
            chart.into(),
            "--namespace".into(),
            release.namespace.as_str().into(),
            "--history-max".into(),
            self.options.history_max.to_string().into(),
            // The desired state is the chart's defaults + our values, never the previous
            // revision's values (helm reuses them when no values are given otherwise).
            "--reset-values".into(),
            "--output".into(),
            "json".into(),
            "--timeout".into(),
            Self::helm_timeout_arg(timeout),
        ];
        if options.create_namespace {
            args.push("--create-namespace".into());
        }
        if options.dry_run_client {
            args.push(self.dry_run_flag().into());
        }
        if options.server_side_apply && self.version().is_some_and(|v| v.major >= 4) {
            args.push("--disable-openapi-validation".into());
        }
        if let Some(d) = &options.description {
            args.push("--description".into());
            args.push(d.into());
        }
        args.push("-f".into());
        args.push(values_file.into());
        self.cluster_args(release, &mut args);
        args
    }

    /// Argument vector of `template` (values file path given).
    pub fn template_args(
        &self,
        release: &Release,
        chart: &Path,
        values_file: &Path,
    ) -> Vec<OsString> {
        vec![
            "template".into(),
            release.name.as_str().into(),
            chart.into(),
            "--namespace".into(),
            release.namespace.as_str().into(),
            "--include-crds".into(),
            "-f".into(),
            values_file.into(),
        ]
    }

    /// Writes `values` as JSON (valid YAML) to `values.json`, mode 0600, in a fresh private
    /// 0700 directory under the work directory. The directory is removed when the returned
    /// guard is dropped.
    fn write_values(
        &self,
        operation: &'static str,
        values: &Map<String, Value>,
    ) -> Result<(tempfile::TempDir, PathBuf), HelmError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| HelmError::Io {
                operation,
                what,
                source,
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("values-")
            .tempdir_in(&self.homes.scratch)
            .map_err(io("creating a private values directory"))?;
        private_dir(dir.path()).map_err(io("restricting the values directory"))?;
        let path = dir.path().join("values.json");
        let bytes = serde_json::to_vec(values).map_err(|e| HelmError::Io {
            operation,
            what: "serialising values".into(),
            source: std::io::Error::other(e),
        })?;
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o600);
        }
        let mut file = open.open(&path).map_err(io("creating the values file"))?;
        std::io::Write::write_all(&mut file, &bytes).map_err(io("writing the values file"))?;
        Ok((dir, path))
    }

    /// `helm status NAME --namespace NS --output json`.
    fn status_args(&self, release: &Release) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "status".into(),
            release.name.as_str().into(),
            "--namespace".into(),
            release.namespace.as_str().into(),
            "--output".into(),
            "json".into(),
        ];
        self.cluster_args(release, &mut args);
        args
    }

    /// `helm uninstall NAME` (no `--wait`), helm bounded by `timeout`.
    fn uninstall_args(&self, release: &Release, timeout: Duration) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "uninstall".into(),
            release.name.as_str().into(),
            "--namespace".into(),
            release.namespace.as_str().into(),
            "--timeout".into(),
            Self::helm_timeout_arg(timeout),
        ];
        self.cluster_args(release, &mut args);
        args
    }

    /// `helm rollback NAME [REVISION]` (no `--wait`), helm bounded by `timeout`.
    fn rollback_args(
        &self,
        release: &Release,
        revision: Option<u64>,
        timeout: Duration,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["rollback".into(), release.name.as_str().into()];
        if let Some(revision) = revision {
            args.push(revision.to_string().into());
        }
        args.extend([
            "--namespace".into(),
            release.namespace.as_str().into(),
            "--history-max".into(),
            self.options.history_max.to_string().into(),
            "--timeout".into(),
            Self::helm_timeout_arg(timeout),
        ]);
        self.cluster_args(release, &mut args);
        args
    }

    /// After shutdown stopped an install or upgrade (the release lock still held, so nothing
    /// else of ours runs on it): helm 4 leaves a cancelled operation `pending-*`, which
    /// would block the next leader for the stale-pending delay. This replica still leads, so
    /// it unblocks the release itself at once — a pending install is uninstalled, a pending
    /// upgrade rolled back — within a short bound of the shutdown budget.
    async fn unlock_stopped(&self, release: &Release) {
        const BOUND: Duration = Duration::from_secs(10);
        let fenced = self.options.stop.leadership_only();
        let status = self.status_args(release);
        let info = match self
            .run_helm("status", Some(release), status, Some(BOUND), Some(&fenced))
            .await
            .and_then(|out| ReleaseInfo::from_json("status", &out))
        {
            Ok(info) if info.status.is_pending() => info,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(%release, error = %e, "stopped helm: cannot read the release; the next leader recovers it when it is stale");
                return;
            }
        };
        let (operation, args) =
            if info.status == ReleaseStatus::PendingInstall && info.revision <= 1 {
                ("uninstall", self.uninstall_args(release, BOUND))
            } else {
                ("rollback", self.rollback_args(release, None, BOUND))
            };
        match self
            .run_helm(operation, Some(release), args, Some(BOUND), Some(&fenced))
            .await
        {
            Ok(_) => {
                tracing::info!(%release, status = %info.status, operation, "stopped helm left the release pending; unblocked it")
            }
            Err(e) => {
                tracing::warn!(%release, status = %info.status, operation, error = %e, "stopped helm left the release pending and it could not be unblocked; the next leader recovers it when it is stale")
            }
        }
    }

    fn absolute_chart(chart: &Path) -> PathBuf {
        std::path::absolute(chart).unwrap_or_else(|_| chart.to_path_buf())
    }
}

#[async_trait]
impl ReleaseEngine for HelmEngine {
    /// `helm upgrade --install` (no `--wait`): returns the new revision as helm reports it.
    async fn upgrade_install(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
        options: &UpgradeOptions,
    ) -> Result<ReleaseInfo, HelmError> {
        let _guard = self.locks.lock(release).await;
        let (_dir, values_file) = self.write_values("upgrade", values)?;
        let args = self.upgrade_args(release, &Self::absolute_chart(chart), &values_file, options);
        let out = match self
            .run_checked("upgrade", release, args, options.timeout)
            .await
        {
            Ok(out) => out,
            Err(
                e @ HelmError::Stopped {
                    reason: stop::StopReason::Shutdown,
                    ..
                },
            ) => {
                self.unlock_stopped(release).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        ReleaseInfo::from_json("upgrade", &out)
    }

    /// `helm status -o json`; `None` when the release does not exist.
    async fn status(&self, release: &Release) -> Result<Option<ReleaseInfo>, HelmError> {
        let _guard = self.locks.lock(release).await;
        let args = self.status_args(release);
        match self.run_checked("status", release, args, None).await {
            Ok(out) => ReleaseInfo::from_json("status", &out).map(Some),
            Err(e) if e.is_release_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `helm get manifest`: the rendered objects of the current revision (multi-document YAML).
    async fn get_manifest(&self, release: &Release) -> Result<String, HelmError> {
        let _guard = self.locks.lock(release).await;
        let mut args: Vec<OsString> = vec![
            "get".into(),
            "manifest".into(),
            release.name.as_str().into(),
            "--namespace".into(),
            release.namespace.as_str().into(),
        ];
        self.cluster_args(release, &mut args);
        self.run_checked("get manifest", release, args, None).await
    }

    /// `helm uninstall` (no `--wait`); a release that does not exist is already gone.
    async fn uninstall(&self, release: &Release) -> Result<UninstallOutcome, HelmError> {
        let _guard = self.locks.lock(release).await;
        let args = self.uninstall_args(release, self.options.timeout);
        match self.run_checked("uninstall", release, args, None).await {
            Ok(_) => Ok(UninstallOutcome::Uninstalled),
            Err(e) if e.is_release_not_found() => Ok(UninstallOutcome::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// `helm rollback NAME [REVISION]` (no `--wait`).
    async fn rollback(&self, release: &Release, revision: Option<u64>) -> Result<(), HelmError> {
        let _guard = self.locks.lock(release).await;
        let args = self.rollback_args(release, revision, self.options.timeout);
        self.run_checked("rollback", release, args, None)
            .await
            .map(|_| ())
    }

    /// `helm template` (offline, CRDs included): the manifests an install would apply.
    async fn template(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
    ) -> Result<String, HelmError> {
        let (_dir, values_file) = self.write_values("template", values)?;
        let args = self.template_args(release, &Self::absolute_chart(chart), &values_file);
        self.run_checked("template", release, args, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_4_skips_client_validation_only_for_server_side_apply() {
        let args = |version: Option<HelmVersion>, server_side_apply: bool| {
            let engine = HelmEngine::new(HelmEngineOptions::default()).unwrap();
            if let Some(v) = version {
                engine.version.set(v).unwrap();
            }
            let options = UpgradeOptions {
                server_side_apply,
                ..UpgradeOptions::default()
            };
            let release = Release::parse("web", "apps").unwrap();
            let argv = engine.upgrade_args(&release, Path::new("c.tgz"), Path::new("v"), &options);
            argv.contains(&OsString::from("--disable-openapi-validation"))
        };
        let v4 = HelmVersion::parse("v4.1.4");
        let v3 = HelmVersion::parse("v3.17.2");
        assert!(args(v4, true));
        assert!(
            !args(v4, false),
            "a release helm applies client-side keeps helm's check"
        );
        assert!(!args(v3, true), "helm 3 applies client-side");
        assert!(!args(None, true), "version unknown");
    }

    #[test]
    fn kubeconfig_given_to_helm_is_absolute() {
        let cwd = Path::new("/work/here");
        let p = |s: &str| Some(PathBuf::from(s));
        let os = |s: &'static str| Some(std::ffi::OsStr::new(s));
        for (explicit, inherited, want) in [
            (p("kc.yaml"), None, p("/work/here/kc.yaml")),
            (p("../a/kc"), os("/ignored"), p("/work/here/../a/kc")),
            (p("/abs/kc"), None, p("/abs/kc")),
            (None, os("rel:/abs/b"), p("/work/here/rel:/abs/b")),
            (None, os("/abs/a"), p("/abs/a")),
            (None, os(""), None),
            (None, None, None),
        ] {
            assert_eq!(
                absolute_kubeconfig(explicit.as_deref(), inherited, cwd),
                want,
                "{explicit:?} {inherited:?}"
            );
        }
    }
}
