//! The source registry: one factory per source type, routing a [`SourceSpec`] to it.
//!
//! Adding a source type is one module (with its spec variant and a [`SourceFactory`]) plus
//! one registration line in [`SourceRegistry::new`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::ChartCache;
use crate::error::{Error, Result};
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

/// Builds the [`ChartSource`] of one source type.
pub trait SourceFactory: Send + Sync {
    /// The `source.type` this factory serves (`SourceSpec::type_name`).
    fn type_name(&self) -> &'static str;

    /// Builds a source for `spec`, which is of this factory's type.
    fn build(
        &self,
        spec: &SourceSpec,
        auth: SourceAuth,
        ctx: &SourceContext,
    ) -> Result<Box<dyn ChartSource>>;
}

/// Routes source specs to their factories.
pub struct SourceRegistry {
    ctx: SourceContext,
    factories: HashMap<&'static str, Box<dyn SourceFactory>>,
}

impl SourceRegistry {
    /// A registry with every built-in source type.
    pub fn new(ctx: SourceContext) -> Self {
        let mut registry = SourceRegistry {
            ctx,
            factories: HashMap::new(),
        };
        registry.register(crate::oci::OciFactory);
        registry.register(crate::http::HttpFactory);
        registry
    }

    /// Adds (or replaces) the factory for its type.
    pub fn register(&mut self, factory: impl SourceFactory + 'static) {
        self.factories
            .insert(factory.type_name(), Box::new(factory));
    }

    pub fn context(&self) -> &SourceContext {
        &self.ctx
    }

    pub fn cache(&self) -> &Arc<ChartCache> {
        &self.ctx.cache
    }

    /// Builds the source for `spec` with its resolved secrets.
    pub fn build(&self, spec: &SourceSpec, auth: SourceAuth) -> Result<Box<dyn ChartSource>> {
        let type_name = spec.type_name();
        let factory = self.factories.get(type_name).ok_or_else(|| {
            let mut known: Vec<_> = self.factories.keys().copied().collect();
            known.sort_unstable();
            Error::config(
                "source.type",
                format!(
                    "source type `{type_name}` is not available (known: {})",
                    known.join(", ")
                ),
            )
        })?;
        factory.build(spec, auth, &self.ctx)
    }
}
