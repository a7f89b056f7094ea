//! Real components for the workspace's tests — nothing here is a mock.
//!
//! - [`Registry`]: Debian's `docker-registry` (CNCF distribution) on a free loopback port, in
//!   its own temporary directory, anonymous or with htpasswd basic auth, over plain HTTP or
//!   TLS with a CA generated for the test. Its access log tells which requests it served.
//! - [`Chart`]: charts made by the real `helm create` + `helm package`, pushed with
//!   [`Registry::push`] (`helm push`).
//! - [`HttpRepo`]: the real nginx serving a directory indexed by `helm repo index`, optionally
//!   with basic auth, TLS, a sub-path, another loopback address and extra `location` blocks.
//!
//! - [`CosignKey`], [`Cosign`]: the real `cosign` (built by `tools/cosign/build`) signing
//!   charts pushed to a [`Registry`], in every registry mode.
//!
//! - [`Cluster`]: a real Kubernetes control plane (etcd, kube-apiserver, controller-manager,
//!   scheduler, kwok with a fake Node) built from Go modules by `tools/k8s/build`.
//!
//! Every started process is killed and its temporary directory removed on drop, also when a
//! test panics. The API is synchronous and returns [`anyhow::Result`]: it is for tests only
//! (a dev-dependency).

mod auth;
mod chart;
pub mod cluster;
mod cosign;
mod helm;
mod http_repo;
mod port;
mod process;
mod registry;
mod tls;

pub use chart::Chart;
pub use cluster::{AuditLog, Cluster, ClusterOptions, Target, e2e_target};
pub use cosign::{Cosign, CosignKey, cosign_bin};
pub use helm::{helm_bin, helm_command, workspace_root};
pub use http_repo::{HttpAccessEntry, HttpRepo, HttpRepoOptions, ORIGIN_PLACEHOLDER};
pub use registry::{AccessEntry, Registry, RegistryMode, token_server_bin};
