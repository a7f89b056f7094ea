//! `helm-handler pull -f FILE [-f FILE…] [--cache-dir DIR] [--system-namespace NS] [-o json]`:
//! locates the chart of every helm Component in the files into the cache, through the same
//! code path as the controller (config parsing, `valuesFrom` read from the Secrets and
//! ConfigMaps in the files, the credential resolver over the Secrets in the files, the
//! source registry, the cache, the archive checks). A Component the controller would fail
//! (a missing values source) fails here the same way.
//!
//! Output, one line per helm Component, in file order:
//! - `-o json`: `{"component":"NS/NAME","source":"…","chart":"…","version":"…","digest":"sha256:…","path":"…","cacheHit":true}`,
//!   plus `"verified":{"provider":"cosign","manifestDigest":"sha256:…","keySet":"sha256:…"}`
//!   when `source.verify` asked for a signature, or `{"component":"NS/NAME","error":{"category":"auth","message":"…"}}`;
//! - plain: `NS/NAME CHART VERSION DIGEST (cached|downloaded) PATH` or `NS/NAME error: CATEGORY: MESSAGE`.
//!
//! Exit codes: 0 all located, 1 at least one failed, 2 the files could not be read (or bad
//! arguments, or the cache directory is unusable).

use std::process::ExitCode;

use chart_source::registry::{SourceContext, SourceRegistry};
use chart_source::{LocatedChart, SourceSpec};
use componentkit::crd::Component;

use crate::cli::offline::{EXIT_FAILED, EXIT_OK, Offline, OfflineArgs};
use crate::config::HelmConfig;
use crate::config_maps::FileConfigMapStore;
use crate::credentials::{CredentialResolver, FileSecretStore};
use crate::error::Error;
use crate::manifests::DEFAULT_NAMESPACE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One human-readable line per Component.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub common: OfflineArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The result for one Component.
#[derive(Debug)]
pub struct PullResult {
    pub component: String,
    pub source: Option<String>,
    pub result: Result<LocatedChart, Error>,
}

impl PullResult {
    /// The JSON line, keys in the documented order.
    pub fn json(&self) -> String {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Located<'a> {
            component: &'a str,
            source: Option<&'a str>,
            chart: &'a str,
            version: &'a str,
            digest: String,
            path: &'a std::path::Path,
            cache_hit: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            verified: Option<&'a chart_source::verify::Verified>,
        }
        #[derive(serde::Serialize)]
        struct Failed<'a> {
            component: &'a str,
            error: ErrorJson<'a>,
        }
        #[derive(serde::Serialize)]
        struct ErrorJson<'a> {
            category: &'a str,
            message: String,
        }
        let line = match &self.result {
            Ok(chart) => serde_json::to_string(&Located {
                component: &self.component,
                source: self.source.as_deref(),
                chart: &chart.name,
                version: &chart.version,
                digest: chart.digest.to_string(),
                path: &chart.path,
                cache_hit: chart.cache_hit,
                verified: chart.verified.as_ref(),
            }),
            Err(e) => {
                let category = e.category().as_label();
                serde_json::to_string(&Failed {
                    component: &self.component,
                    error: ErrorJson {
                        category,
                        message: message_of(e, category),
                    },
                })
            }
        };
        // Serialising strings and bools cannot fail; keep a valid line regardless.
        line.unwrap_or_else(|e| {
            serde_json::json!({"component": self.component, "error": {"category": "internal", "message": e.to_string()}})
                .to_string()
        })
    }

    pub fn text(&self) -> String {
        match &self.result {
            Ok(chart) => format!(
                "{} {} {} {} ({}) {}",
                self.component,
                chart.name,
                chart.version,
                chart.digest,
                if chart.cache_hit {
                    "cached"
                } else {
                    "downloaded"
                },
                chart.path.display()
            ),
            Err(e) => {
                let category = e.category().as_label();
                format!(
                    "{} error: {category}: {}",
                    self.component,
                    message_of(e, category)
                )
            }
        }
    }
}

/// The message without the `category: ` prefix the error's Display starts with.
fn message_of(e: &Error, category: &str) -> String {
    let text = e.to_string();
    match text
        .strip_prefix(category)
        .and_then(|t| t.strip_prefix(": "))
    {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

pub fn main(args: PullArgs) -> ExitCode {
    let Offline {
        manifests,
        cache,
        resolver,
        runtime,
    } = match args.common.open() {
        Ok(o) => o,
        Err(code) => return code,
    };
    let sources = SourceRegistry::new(SourceContext::new(cache));
    let components: Vec<&Component> = manifests.helm_components().map(|(c, _)| c).collect();
    if components.is_empty() {
        eprintln!("no helm Components found in the files");
    }
    let results = runtime.block_on(futures::future::join_all(components.iter().map(|c| {
        pull_component(
            &sources,
            &resolver,
            &manifests.secrets,
            &manifests.config_maps,
            c,
        )
    })));
    let mut failed = 0usize;
    for r in &results {
        failed += usize::from(r.result.is_err());
        match args.output {
            OutputFormat::Json => println!("{}", r.json()),
            OutputFormat::Text => println!("{}", r.text()),
        }
    }
    if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

/// Locates the chart of one helm Component.
pub async fn pull_component(
    sources: &SourceRegistry,
    resolver: &CredentialResolver,
    secrets: &FileSecretStore,
    config_maps: &FileConfigMapStore,
    component: &Component,
) -> PullResult {
    let (key, namespace, config) = component_config(component);
    let spec = match config {
        Ok(c) => {
            if let Err(e) = crate::values_from::resolve(secrets, config_maps, namespace, &c).await {
                return PullResult {
                    component: key,
                    source: Some(c.source.describe()),
                    result: Err(e),
                };
            }
            c.source
        }
        Err(e) => {
            return PullResult {
                component: key,
                source: None,
                result: Err(e),
            };
        }
    };
    PullResult {
        component: key,
        source: Some(spec.describe()),
        result: locate(sources, resolver, secrets, namespace, &spec).await,
    }
}

/// A helm Component's `NS/NAME`, its namespace, and its parsed configuration.
pub fn component_config(component: &Component) -> (String, &str, Result<HelmConfig, Error>) {
    let namespace = component
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(DEFAULT_NAMESPACE);
    let name = component.metadata.name.as_deref().unwrap_or_default();
    let config = match &component.spec.config {
        Some(config) => HelmConfig::parse(config, namespace),
        None => Err(Error::config(
            "spec.config",
            "missing: a helm Component needs `releaseName` and `source`",
        )),
    };
    (format!("{namespace}/{name}"), namespace, config)
}

/// Resolves the source's Secrets (from the files) and locates its chart, as the controller
/// does.
pub async fn locate(
    sources: &SourceRegistry,
    resolver: &CredentialResolver,
    secrets: &FileSecretStore,
    namespace: &str,
    spec: &SourceSpec,
) -> Result<LocatedChart, Error> {
    let auth = resolver.resolve(secrets, namespace, spec).await?;
    let chart_source = sources.build(spec, auth)?;
    Ok(chart_source.locate().await?)
}
