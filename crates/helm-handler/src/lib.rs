//! # helm-handler
//!
//! The Helm handler of the Component orchestration system.
//!
//! Flow: a `Component` (componentkit) → [`config`] parses `spec.config` into a `HelmConfig`
//! and a `SourceSpec` → [`credentials`] resolves the referenced Secrets (Component namespace,
//! then system namespace) → chart-source locates the chart into the cache → the release
//! engine ([`helm`]) installs or upgrades it, and [`readiness`] judges the release's objects.
//! [`handler`] ties these into componentkit's `Handler`; [`cli`] holds the commands.

pub mod cli;
pub mod config;
pub mod config_maps;
pub mod credentials;
pub mod drift;
pub mod error;
pub mod handler;
pub mod helm;
pub mod identity;
pub mod impersonation;
pub mod manifests;
pub mod metrics;
pub mod readiness;
pub mod selector;
pub mod validated_name;
pub mod values;
pub mod values_from;
