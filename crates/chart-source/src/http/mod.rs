//! Classic HTTP chart repository source (`index.yaml` + `.tgz`), as `helm pull --repo` uses.
//!
//! - [`constraint`]: Helm's (Masterminds semver) version constraints.
//! - [`index`]: `index.yaml` parsed into a compact per-chart version table.
//! - [`client`]: HTTP clients, credential scoping, limits, and the shared index cache
//!   ([`HttpShared`]: conditional requests, TTL, LRU bound, single flight).
//! - [`source`]: [`HttpSource`], the [`crate::ChartSource`] for `source.type: http`.

pub mod client;
pub mod constraint;
pub mod index;
pub mod source;

pub use client::{HttpLimits, HttpShared, HttpStats};
pub use constraint::Constraint;
pub use index::{IndexEntry, RepoIndex};
pub use source::HttpSource;
