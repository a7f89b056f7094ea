//! # componentkit
//!
//! The handler side of the Component orchestration protocols, generic over a [`Handler`]:
//! the `Component` CRD ([`crd`], names in [`names`]), the protocol engine, and its wiring on
//! `kube-runtime` with leader election. The Helm handler is one [`Handler`] on top.
//!
//! ## Flow of one reconcile
//!
//! 1. [`controller`] watches Components (and optional related objects, e.g. Secrets, through
//!    [`controller::RelatedWatch`]) and calls the [`engine::Engine`] — at most
//!    `concurrency` at once, never two for the same object.
//! 2. The engine reads the Component fresh, reduces it to [`decision::Facts`], classifies
//!    them into one [`decision::Situation`] and [`decision::decide`]s an [`decision::Action`] from
//!    `(phase, event)` — pure functions, table-tested.
//! 3. It executes the action through a [`api::ComponentApi`] ([`kube_api`] for a cluster,
//!    [`memory`] for tests):
//!    - **claim**: add `<handler>.deployment-orchestrator.io/lifecycle` with a
//!      resourceVersion-guarded patch (a lost race is a 409), then phase `Claimed`; never
//!      when another handler's lifecycle finalizer is present or `spec.handler` differs;
//!    - **create**: `apply` once per generation (`Claimed → Deploying`), then
//!      `check_applied` on each requeue until `Ready`; a new generation re-applies;
//!      `deploymentTimeout` bounds `Deploying`;
//!    - **delete**: wait while `composition.deployment-orchestrator.io/coordination` is
//!      present, then `Terminating`, `delete` once, `check_deleted` until done, remove the
//!      finalizer; `terminationTimeout` → `TerminationFailed`;
//!    - **errors** ([`handler::ErrorCategory`]): transient → same phase, exponential backoff
//!      with jitter ([`backoff`]) inside the phase timeout; auth / not-found → `Failed`, retried
//!      after a slow delay or at once when a related object changes; others → `Failed` with the
//!      category as the condition reason; the `deployment-orchestrator.io/retry` annotation
//!      retries `Failed` / `TerminationFailed`. Kubernetes API failures, the engine's and the
//!      handler's, are categorised by one classifier ([`kube_error::kube_category`]).
//! 4. [`decision::after`] maps the handler's outcome to the next state; the engine writes the
//!    status as a JSON merge patch of only what changed ([`mergepatch`]) — so
//!    `status.handlerStatus` is never lost — with conditions `Ready` / `Progressing` /
//!    `Degraded` ([`status`]), and publishes an Event on every phase change.
//! 5. The result's `requeue_after` (in-progress hint, backoff end, phase deadline) drives the
//!    next reconcile; the reconcile never blocks on a rollout.
//!
//! Time comes from a [`clock::Clock`] so tests drive timeouts without sleeping;
//! [`testing::ScriptedHandler`] records calls and returns scripted outcomes.
//!
//! ## Plugging in a handler
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use componentkit::controller::{ControllerOptions, RelatedWatch, run};
//! # use componentkit::testing::ScriptedHandler;
//! # use k8s_openapi::api::core::v1::Secret;
//! # use kube::runtime::{reflector::ObjectRef, watcher};
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let handler = Arc::new(ScriptedHandler::new("helm")); // your `impl Handler`
//! let secrets = RelatedWatch::new(
//!     kube::Api::<Secret>::all(client.clone()),
//!     watcher::Config::default(),
//!     |secret: &componentkit::changes::Changed, components| {
//!         // Components that reference this Secret (secret.namespace, secret.name).
//!         components.state().iter()
//!             .filter(|c| false /* c references secret */)
//!             .map(|c| ObjectRef::from_obj(c.as_ref()))
//!             .collect()
//!     },
//! );
//! let opts = ControllerOptions::new("pod-name")
//!     .with_leader_election("helm-handler-leader", "deployment-system")
//!     .watch_related(secrets);
//! run(client, handler, opts).await?;
//! # Ok(()) }
//! ```
//!
//! [`Handler`]: handler::Handler

pub mod api;
pub mod backoff;
pub mod changes;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod decision;
pub mod engine;
pub mod event_recorder;
pub mod handler;
pub mod kube_api;
pub mod kube_error;
pub mod leader;
pub mod leadership;
pub mod memory;
pub mod mergepatch;
pub mod names;
pub mod status;
pub mod testing;
pub mod watch_health;
