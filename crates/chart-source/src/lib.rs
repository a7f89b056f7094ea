//! # chart-source
//!
//! Finds Helm charts and puts them, verified, in a local content-addressed cache. No
//! Kubernetes here: the caller resolves Secrets and hands over [`Credentials`].
//!
//! Flow: a Component's `spec.config` is parsed into a [`SourceSpec`] ([`spec`]); the
//! [`registry`] routes it to its source type's factory, which builds a [`ChartSource`]
//! ([`oci`] or [`http`]); `locate()` resolves the version, downloads into the [`cache`]
//! (temp file → digest check → rename), checks the archive ([`archive`]) and returns a
//! [`LocatedChart`]. Errors carry an [`ErrorCategory`] so callers choose retry or fail from it
//! alone.

pub mod archive;
pub mod cache;
pub mod chart_identity;
pub mod credentials;
pub mod digest;
pub mod error;
pub mod http;
pub mod identity_token;
pub mod oci;
pub mod oci_clients;
pub mod reference;
pub mod registry;
pub mod source;
pub mod spec;
pub mod tls;
pub mod verify;
pub mod yaml;

pub use chart_identity::{ReferenceMismatch, Requested};
pub use credentials::{Credentials, SecretString};
pub use digest::Digest;
pub use error::{Error, Result};
pub use error_category::ErrorCategory;
pub use reference::OciReference;
pub use source::{ChartSource, LocatedChart, SourceAuth};
pub use spec::SourceSpec;
