//! What the offline commands (`pull`, `template`) share: the files they read, the chart
//! cache they fill, and the namespace rules they resolve Secrets under — the controller's
//! own, so a Component that works here works in the cluster.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chart_source::cache::{CacheConfig, ChartCache};

use crate::credentials::CredentialResolver;
use crate::manifests::Manifests;

/// Exit code when every Component succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one Component failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when the files, the cache or a tool could not be used.
pub const EXIT_UNUSABLE: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct OfflineArgs {
    /// Kubernetes YAML file with Components and Secrets (multi-document); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The chart cache directory [default: $XDG_CACHE_HOME/helm-handler or ~/.cache/helm-handler].
    #[arg(long, env = "HELM_HANDLER_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Upper bound of the cache's size, in bytes (least recently used charts are removed).
    #[arg(long, value_name = "BYTES", default_value_t = CacheConfig::DEFAULT_MAX_BYTES)]
    pub cache_max_bytes: u64,
    /// The system namespace, searched for Secrets after the Component's namespace.
    #[arg(
        long,
        env = "HELM_HANDLER_SYSTEM_NAMESPACE",
        default_value = "deployment-system"
    )]
    pub system_namespace: String,
}

/// The loaded files, the opened cache, the resolver and a runtime.
pub struct Offline {
    pub manifests: Manifests,
    pub cache: Arc<ChartCache>,
    pub resolver: CredentialResolver,
    pub runtime: tokio::runtime::Runtime,
}

impl OfflineArgs {
    /// Loads the files and opens the cache; on failure prints the error and gives the
    /// exit code (nothing has been done yet).
    pub fn open(&self) -> Result<Offline, ExitCode> {
        let unusable = |message: String| {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_UNUSABLE)
        };
        let manifests = Manifests::load(&self.files).map_err(|e| unusable(e.to_string()))?;
        let cache = ChartCache::open(CacheConfig {
            dir: self.cache_dir.clone().unwrap_or_else(default_cache_dir),
            max_bytes: self.cache_max_bytes,
        })
        .map_err(|e| unusable(format!("chart cache: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unusable(format!("internal: starting the runtime: {e}")))?;
        Ok(Offline {
            manifests,
            cache: Arc::new(cache),
            resolver: CredentialResolver::new(self.system_namespace.clone()),
            runtime,
        })
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/helm-handler`, else `~/.cache/helm-handler`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("helm-handler");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("helm-handler"),
        None => std::env::temp_dir().join("helm-handler-cache"),
    }
}
