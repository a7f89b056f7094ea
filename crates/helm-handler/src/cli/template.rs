//! `helm-handler template -f FILE [-f FILE…] [--cache-dir DIR] [--system-namespace NS]
//! [--helm-binary PATH]`: locates the chart of every helm Component in the files through the
//! same code path as `pull` and the controller (config parsing, the credential resolver over
//! the Secrets in the files, the source registry, the cache, the archive checks), then
//! renders it with the release engine's `helm template` and the Component's values
//! (`valuesFrom` read from the Secrets and ConfigMaps in the files, then `values`). Offline:
//! no cluster is contacted (only the chart sources, unless the charts are cached by digest).
//!
//! Output: for each helm Component, in file order, a `# Source component: NS/NAME` line, a
//! `# Runs as: IDENTITY` line (who the controller would install it as: the Component's
//! `serviceAccountName`, else `--default-service-account`, else the controller's own
//! identity; see [`crate::identity`]), then helm's manifests (CRDs included). Failures go to stderr as
//! `NS/NAME error: CATEGORY: MESSAGE`; the other Components are still rendered.
//!
//! Exit codes: 0 all rendered, 1 at least one failed, 2 the files, the cache or helm could
//! not be used.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chart_source::registry::{SourceContext, SourceRegistry};
use componentkit::crd::Component;
use componentkit::handler::ErrorCategory;

use crate::cli::offline::{EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, Offline, OfflineArgs};
use crate::cli::pull::{component_config, locate};
use crate::config_maps::FileConfigMapStore;
use crate::credentials::{CredentialResolver, FileSecretStore};
use crate::error::Error;
use crate::helm::{HelmEngine, HelmEngineOptions, HelmError, Release, ReleaseEngine};
use crate::identity::{Identity, ServiceAccountName, TenancyPolicy};

#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub common: OfflineArgs,
    /// The helm binary (3.8+ or 4.x); default: `helm` on PATH.
    #[arg(
        long,
        env = "HELM_HANDLER_HELM_BINARY",
        value_name = "PATH",
        default_value = "helm"
    )]
    pub helm_binary: PathBuf,
    /// As `run --default-service-account` (lockdown): the identity shown for Components
    /// without `serviceAccountName`.
    #[arg(long, value_name = "NAME")]
    pub default_service_account: Option<ServiceAccountName>,
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
                let label = e.category().as_label();
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
    /// Who the release would be installed as (known once the configuration parses).
    pub identity: Option<Identity>,
    /// helm's manifests.
    pub result: Result<String, TemplateError>,
}

impl TemplateResult {
    /// The text printed on stdout for a success: header line + manifests.
    pub fn rendered(&self) -> Option<String> {
        let manifests = self.result.as_ref().ok()?;
        let mut out = format!("# Source component: {}\n", self.component);
        if let Some(identity) = &self.identity {
            out.push_str(&format!("# Runs as: {identity}\n"));
        }
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
            e.category().as_label(),
            e.message()
        ))
    }
}

/// Locates (exactly as `pull` does) and renders one helm Component.
pub async fn template_component(
    tenancy: &TenancyPolicy,
    sources: &SourceRegistry,
    resolver: &CredentialResolver,
    secrets: &FileSecretStore,
    config_maps: &FileConfigMapStore,
    engine: &dyn ReleaseEngine,
    component: &Component,
) -> TemplateResult {
    let (key, namespace, config) = component_config(component);
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            return TemplateResult {
                component: key,
                identity: None,
                result: Err(TemplateError::Locate(e)),
            };
        }
    };
    let identity = Some(
        tenancy
            .identity(config.service_account_name.as_ref(), namespace)
            .identity,
    );
    let values = match crate::values_from::resolve(secrets, config_maps, namespace, &config).await {
        Ok(v) => v,
        Err(e) => {
            return TemplateResult {
                component: key,
                identity: None,
                result: Err(TemplateError::Locate(e)),
            };
        }
    };
    let located = match locate(sources, resolver, secrets, namespace, &config.source).await {
        Ok(located) => located,
        Err(e) => {
            return TemplateResult {
                component: key,
                identity: None,
                result: Err(TemplateError::Locate(e)),
            };
        }
    };
    let release = Release::new(
        config.release_name.clone(),
        config.release_namespace.clone(),
    );
    let result = engine
        .template(&release, &located.path, values.as_map())
        .await
        .map_err(TemplateError::Helm);
    TemplateResult {
        component: key,
        identity,
        result,
    }
}

pub fn main(args: TemplateArgs) -> ExitCode {
    let Offline {
        manifests,
        cache,
        resolver,
        runtime,
    } = match args.common.open() {
        Ok(o) => o,
        Err(code) => return code,
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
    if let Err(e) = runtime.block_on(engine.check_version()) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_UNUSABLE);
    }
    let sources = SourceRegistry::new(SourceContext::new(cache));
    let tenancy = TenancyPolicy {
        default_service_account: args.default_service_account.clone(),
        no_cross_namespace_releases: false,
    };
    let components: Vec<&Component> = manifests.helm_components().map(|(c, _)| c).collect();
    if components.is_empty() {
        eprintln!("no helm Components found in the files");
    }
    // Locate and render concurrently; print in file order.
    let results = runtime.block_on(futures::future::join_all(components.iter().map(|c| {
        template_component(
            &tenancy,
            &sources,
            &resolver,
            &manifests.secrets,
            &manifests.config_maps,
            &engine,
            c,
        )
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
