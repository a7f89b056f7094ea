//! `helm-handler template -f FILE [-f FILE…] [--cache-dir DIR] [--system-namespace NS]
//! [--helm-binary PATH]`: locates the chart of every helm Component in the files through the
//! same code path as `pull` and the controller (config parsing, the credential resolver over
//! the Secrets in the files, the source registry, the cache, the archive checks), then
//! renders it with the release engine's `helm template` and the Component's values. Offline:
//! no cluster is contacted (only the chart sources, unless the charts are cached by digest).
//!
//! Output: for each helm Component, in file order, a `# Source component: NS/NAME` line then
//! helm's manifests (CRDs included). Failures go to stderr as
//! `NS/NAME error: CATEGORY: MESSAGE`; the other Components are still rendered.
//!
//! Exit codes: 0 all rendered, 1 at least one failed, 2 the files, the cache or helm could
//! not be used.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::registry::{SourceContext, SourceRegistry};
use componentkit::crd::Component;
use componentkit::handler::ErrorCategory;

use crate::cli::pull::{EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, default_cache_dir, pull_component};
use crate::config::HelmConfig;
use crate::credentials::{CredentialResolver, FileSecretStore};
use crate::error::{Error, category_label};
use crate::helm::{HelmEngine, HelmEngineOptions, HelmError, Release, ReleaseEngine};
use crate::manifests::{DEFAULT_NAMESPACE, Manifests};

#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
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
    /// The helm binary (3.8+ or 4.x); default: `helm` on PATH.
    #[arg(
        long,
        env = "HELM_HANDLER_HELM_BINARY",
        value_name = "PATH",
        default_value = "helm"
    )]
    pub helm_binary: PathBuf,
}

/// A rendering failure: from locating the chart, or from helm.
#[derive(Debug)]
pub enum TemplateError {
    Locate(Error),
    Helm(HelmError),
}

impl TemplateError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            TemplateError::Locate(e) => e.category(),
            TemplateError::Helm(e) => e.category(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            TemplateError::Locate(e) => {
                // The crate error's Display starts with "category: ".
                let text = e.to_string();
                let label = category_label(e.category());
                text.strip_prefix(label)
                    .and_then(|t| t.strip_prefix(": "))
                    .map(str::to_string)
                    .unwrap_or(text)
            }
            TemplateError::Helm(e) => e.to_string(),
        }
    }
}

/// The result for one Component.
#[derive(Debug)]
pub struct TemplateResult {
    /// `NS/NAME` of the Component.
    pub component: String,
    /// helm's manifests.
    pub result: Result<String, TemplateError>,
}

impl TemplateResult {
    /// The text printed on stdout for a success: header line + manifests.
    pub fn rendered(&self) -> Option<String> {
        let manifests = self.result.as_ref().ok()?;
        let mut out = format!("# Source component: {}\n", self.component);
        out.push_str(manifests);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Some(out)
    }

    /// The line printed on stderr for a failure.
    pub fn error_line(&self) -> Option<String> {
        let e = self.result.as_ref().err()?;
        Some(format!(
            "{} error: {}: {}",
            self.component,
            category_label(e.category()),
            e.message()
        ))
    }
}

/// Locates (exactly as `pull` does) and renders one helm Component.
pub async fn template_component(
    sources: &SourceRegistry,
    resolver: &CredentialResolver,
    secrets: &FileSecretStore,
    engine: &dyn ReleaseEngine,
    component: &Component,
) -> TemplateResult {
    let namespace = component
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(DEFAULT_NAMESPACE);
    let name = component.metadata.name.as_deref().unwrap_or_default();
    let key = format!("{namespace}/{name}");
    let config = match &component.spec.config {
        Some(config) => HelmConfig::parse(config, namespace),
        None => Err(Error::config(
            "spec.config",
            "missing: a helm Component needs `releaseName` and `source`",
        )),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            return TemplateResult {
                component: key,
                result: Err(TemplateError::Locate(e)),
            };
        }
    };
    let located = match pull_component(sources, resolver, secrets, component)
        .await
        .result
    {
        Ok(located) => located,
        Err(e) => {
            return TemplateResult {
                component: key,
                result: Err(TemplateError::Locate(e)),
            };
        }
    };
    let release = Release::new(config.release_name.as_str(), &config.release_namespace);
    let result = engine
        .template(&release, &located.path, &config.values)
        .await
        .map_err(TemplateError::Helm);
    TemplateResult {
        component: key,
        result,
    }
}

pub fn main(args: TemplateArgs) -> ExitCode {
    let manifests = match Manifests::load(&args.files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let cache = match ChartCache::open(CacheConfig {
        dir: cache_dir,
        max_bytes: args.cache_max_bytes,
    }) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: chart cache: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let engine = match HelmEngine::new(HelmEngineOptions {
        helm_binary: args.helm_binary.clone(),
        ..HelmEngineOptions::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: internal: starting the runtime: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    if let Err(e) = runtime.block_on(engine.check_version()) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_UNUSABLE);
    }
    let sources = SourceRegistry::new(SourceContext::new(cache));
    let resolver = CredentialResolver::new(args.system_namespace.clone());
    let components: Vec<&Component> = manifests.helm_components().map(|(c, _)| c).collect();
    if components.is_empty() {
        eprintln!("no helm Components found in the files");
    }
    // Locate and render concurrently; print in file order.
    let results =
        runtime.block_on(futures::future::join_all(components.iter().map(|c| {
            template_component(&sources, &resolver, &manifests.secrets, &engine, c)
        })));
    let mut failed = 0usize;
    let mut stdout = std::io::stdout().lock();
    for r in &results {
        if let Some(text) = r.rendered()
            && let Err(e) = stdout.write_all(text.as_bytes())
        {
            eprintln!("error: writing the output: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
        if let Some(line) = r.error_line() {
            failed += 1;
            eprintln!("{line}");
        }
    }
    if let Err(e) = stdout.flush() {
        eprintln!("error: writing the output: {e}");
        return ExitCode::from(EXIT_UNUSABLE);
    }
    if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::from(EXIT_OK)
    }
}
