//! The source registry: builds the [`ChartSource`] of a [`SourceSpec`] over the shared
//! context.
//!
//! Adding a source type is one module plus its spec variant; the `match` in
//! [`SourceRegistry::build`] then does not compile until the variant is built.

use std::sync::Arc;

use crate::cache::ChartCache;
use crate::error::Result;
use crate::http::HttpSource;
use crate::oci::OciSource;
use crate::source::{ChartSource, SourceAuth};
use crate::spec::SourceSpec;

/// What sources share across reconciles: the chart cache (and, per source type, their
/// shared state).
#[derive(Clone)]
pub struct SourceContext {
    pub cache: Arc<ChartCache>,
    /// HTTP repositories: clients and the parsed-index cache (TTL, conditional requests).
    pub http: Arc<crate::http::HttpShared>,
    /// OCI registries: clients per TLS setting and credential identity.
    pub oci: Arc<crate::oci_clients::OciClients>,
}

impl SourceContext {
    /// A context over `cache`, with every source type's shared state at its defaults.
    pub fn new(cache: Arc<ChartCache>) -> Self {
        SourceContext {
            cache,
            http: Arc::new(crate::http::HttpShared::default()),
            oci: Arc::new(crate::oci_clients::OciClients::default()),
        }
    }
}

/// Builds sources over one [`SourceContext`].
pub struct SourceRegistry {
    ctx: SourceContext,
}

impl SourceRegistry {
    /// A registry of every built-in source type.
    pub fn new(ctx: SourceContext) -> Self {
        SourceRegistry { ctx }
    }

    pub fn context(&self) -> &SourceContext {
        &self.ctx
    }

    pub fn cache(&self) -> &Arc<ChartCache> {
        &self.ctx.cache
    }

    /// Builds the source for `spec` with its resolved secrets; sources of a type share the
    /// context's state (OCI client pool, HTTP index cache).
    pub fn build(&self, spec: &SourceSpec, auth: SourceAuth) -> Result<Box<dyn ChartSource>> {
        let ctx = &self.ctx;
        Ok(match spec {
            SourceSpec::Oci(spec) => Box::new(OciSource::in_pool(
                spec.clone(),
                auth,
                ctx.cache.clone(),
                ctx.oci.clone(),
            )?),
            SourceSpec::Http(spec) => Box::new(HttpSource::new(
                spec.clone(),
                auth,
                ctx.cache.clone(),
                ctx.http.clone(),
            )?),
        })
    }
}
