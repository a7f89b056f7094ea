//! The reconciler against the in-memory API (real API semantics) with a scripted handler
//! and a manual clock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use componentkit::api::{ApiError, ComponentApi};
use componentkit::backoff::Backoff;
use componentkit::clock::{self, Clock, ManualClock};
use componentkit::crd::{Component, Phase};
use componentkit::decision::{Action, Operation, Situation};
use componentkit::engine::{Engine, EngineConfig, EngineError, Step};
use componentkit::handler::{ErrorCategory, HandlerOutcome};
use componentkit::memory::{InMemoryApi, component};
use componentkit::names;
use componentkit::testing::ScriptedHandler;
use serde_json::json;

const NS: &str = "apps";

struct World {
    clock: ManualClock,
    api: InMemoryApi,
    handler: Arc<ScriptedHandler>,
    engine: Engine<ScriptedHandler>,
}

fn world() -> World {
    world_named("helm", "replica-a")
}

fn world_named(handler: &str, identity: &str) -> World {
    let clock = ManualClock::at_epoch();
    let api = InMemoryApi::new(Arc::new(clock.clone()));
    let handler = Arc::new(ScriptedHandler::new(handler));
    let engine = engine_for(&api, &clock, handler.clone(), identity);
    World {
        clock,
        api,
        handler,
        engine,
    }
}

fn engine_for(
    api: &InMemoryApi,
    clock: &ManualClock,
    handler: Arc<ScriptedHandler>,
    identity: &str,
) -> Engine<ScriptedHandler> {
    engine_over(Arc::new(api.clone()), clock, handler, identity)
}

fn engine_over(
    api: Arc<dyn ComponentApi>,
    clock: &ManualClock,
    handler: Arc<ScriptedHandler>,
    identity: &str,
) -> Engine<ScriptedHandler> {
    Engine::new(
        handler,
        api,
        Arc::new(clock.clone()),
        EngineConfig {
            identity: identity.to_string(),
            backoff: Backoff::default(),
            slow_retry: Duration::from_secs(300),
        },
    )
}

impl World {
    fn create(&self, name: &str, f: impl FnOnce(&mut Component)) -> Component {
        let mut c = component(NS, name, "helm", json!({"releaseName": name}));
        f(&mut c);
        self.api.create(c).unwrap()
    }
    async fn reconcile(&self, name: &str) -> componentkit::engine::Reconciled {
        self.engine.reconcile(NS, name, false).await.unwrap()
    }
    fn get(&self, name: &str) -> Component {
        self.api.get_now(NS, name).unwrap()
    }
    fn phase(&self, name: &str) -> Phase {
        self.get(name).phase()
    }
    fn cond(&self, name: &str, t: &str) -> (String, String) {
        let c = self.get(name);
        let c = c.condition(t).unwrap();
        (c.status.clone(), c.reason.clone())
    }
    fn event_reasons(&self, name: &str) -> Vec<String> {
        self.api
            .events(NS, name)
            .into_iter()
            .map(|e| e.reason)
            .collect()
    }
}

fn helm_fin() -> String {
    names::lifecycle_finalizer("helm")
}

#[tokio::test]
async fn claim_adds_finalizer_and_sets_claimed() {
    let w = world();
    w.handler.set_default(
        Operation::Apply,
        HandlerOutcome::in_progress(Duration::from_secs(5), "x"),
    );
    let c = w.create("a", |_| {});
    let snapshot = c.clone();
    let step = w.engine.step(snapshot, false).await.unwrap();
    assert_eq!(step, Step::Continue(Action::Claim, Situation::Unclaimed));
    let c = w.get("a");
    assert_eq!(c.metadata.finalizers.as_deref(), Some(&[helm_fin()][..]));
    let st = c.status.clone().unwrap();
    assert_eq!(st.phase, Some(Phase::Claimed));
    assert_eq!(st.claimed_by.as_deref(), Some("replica-a"));
    assert_eq!(st.claimed_at.as_ref().map(|t| t.0), Some(w.clock.now()));
    assert_eq!(
        w.cond("a", "Progressing"),
        ("True".into(), "Claimed".into())
    );
    assert_eq!(w.event_reasons("a"), ["Claimed"]);
    assert_eq!(
        w.handler.calls().len(),
        0,
        "claiming calls no handler operation"
    );
}

#[tokio::test]
async fn two_handlers_race_to_claim_and_one_wins() {
    let w = world();
    let other = engine_for(
        &w.api,
        &w.clock,
        Arc::new(ScriptedHandler::new("helm")),
        "replica-b",
    );
    w.create("race", |_| {});
    // Both read the same version, then both try to claim.
    let snapshot = w.get("race");
    let a = w.engine.step(snapshot.clone(), false).await;
    let b = other.step(snapshot, false).await;
    assert!(matches!(a, Ok(Step::Continue(Action::Claim, _))), "{a:?}");
    assert!(
        matches!(b, Err(EngineError::Api(ApiError::Conflict(_)))),
        "the second claim must be rejected by the resourceVersion guard: {b:?}"
    );
    let c = w.get("race");
    assert_eq!(c.metadata.finalizers.as_deref(), Some(&[helm_fin()][..]));
    assert_eq!(c.status.unwrap().claimed_by.as_deref(), Some("replica-a"));

    // A different handler type racing with a stale view: once "kustomize" has claimed it,
    // the helm claim fails on the version guard, and a fresh look leaves it alone.
    let w = world();
    w.create("x", |_| {});
    let stale = w.get("x");
    w.api
        .add_finalizer(NS, "x", "kustomize.deployment-orchestrator.io/lifecycle")
        .unwrap();
    assert!(matches!(
        w.engine.step(stale, false).await,
        Err(EngineError::Api(ApiError::Conflict(_)))
    ));
    let r = w.reconcile("x").await;
    assert_eq!(
        (r.action, r.event),
        (Action::Ignore, Some(Situation::ForeignClaim))
    );
    assert!(w.get("x").status.is_none());
}

#[tokio::test]
async fn foreign_components_are_ignored() {
    let w = world();
    let mut other = component(NS, "other", "kustomize", json!({}));
    other.metadata.finalizers = None;
    w.api.create(other).unwrap();
    w.create("held", |c| {
        c.metadata.finalizers = Some(vec![
            "kustomize.deployment-orchestrator.io/lifecycle".into(),
        ]);
    });
    for name in ["other", "held"] {
        let r = w.reconcile(name).await;
        assert_eq!(r.action, Action::Ignore, "{name}");
        let c = w.get(name);
        assert!(c.status.is_none(), "{name}: no status write");
        assert!(
            !c.metadata
                .finalizers
                .unwrap_or_default()
                .contains(&helm_fin())
        );
    }
    assert_eq!(w.api.status_patch_count(), 0);
    assert!(w.handler.calls().is_empty());
    // Deleting a foreign Component: still ignored.
    w.api.delete(NS, "held").unwrap();
    assert_eq!(w.reconcile("held").await.action, Action::Ignore);

    // The composition controller's coordination finalizer is not a claim.
    w.create("coord", |c| {
        c.metadata.finalizers = Some(vec![names::COORDINATION_FINALIZER.into()])
    });
    w.reconcile("coord").await;
    assert!(
        w.get("coord")
            .metadata
            .finalizers
            .unwrap()
            .contains(&helm_fin())
    );
}

#[tokio::test]
async fn happy_path_to_ready_applies_once() {
    let w = world();
    w.create("app", |_| {});
    let r = w.reconcile("app").await;
    assert_eq!(r.action, Action::Apply { fresh: true });
    assert_eq!(r.requeue_after, Some(Duration::from_secs(5)));
    assert_eq!(w.phase("app"), Phase::Deploying);
    let st = w.get("app").status.unwrap();
    assert_eq!(st.applied_generation, Some(1));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.message.as_deref(), Some("rolling out"));
    assert_eq!(w.cond("app", "Ready"), ("False".into(), "Deploying".into()));

    w.handler.push(
        Operation::CheckApplied,
        HandlerOutcome::in_progress(Duration::from_secs(7), "2/3 pods"),
    );
    let r = w.reconcile("app").await;
    assert_eq!(
        (r.action, r.requeue_after),
        (Action::CheckApplied, Some(Duration::from_secs(7)))
    );
    let r = w.reconcile("app").await;
    assert_eq!((r.action, r.requeue_after), (Action::CheckApplied, None));
    assert_eq!(w.phase("app"), Phase::Ready);
    assert_eq!(w.cond("app", "Ready"), ("True".into(), "Ready".into()));
    assert_eq!(
        w.cond("app", "Progressing"),
        ("False".into(), "Ready".into())
    );
    assert_eq!(
        w.cond("app", "Degraded"),
        ("False".into(), "AsExpected".into())
    );
    assert_eq!(w.event_reasons("app"), ["Claimed", "Deploying", "Ready"]);

    // Steady state: no more handler calls, no more writes.
    let patches = w.api.status_patch_count();
    for _ in 0..3 {
        assert_eq!(w.reconcile("app").await.action, Action::Nothing);
    }
    assert_eq!(w.api.status_patch_count(), patches);
    assert_eq!(w.handler.count(Operation::Apply), 1);
    assert_eq!(w.handler.count(Operation::CheckApplied), 2);
}

#[tokio::test]
async fn permanent_failure_fails_with_category_reason() {
    let w = world();
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Config, "spec.config.releaseName: required"),
    );
    w.create("bad", |_| {});
    w.reconcile("bad").await;
    let c = w.get("bad");
    assert_eq!(c.phase(), Phase::Failed);
    let st = c.status.unwrap();
    assert_eq!(
        st.message.as_deref(),
        Some("spec.config.releaseName: required")
    );
    assert_eq!(st.failure_category, Some(ErrorCategory::Config));
    assert_eq!(w.cond("bad", "Ready"), ("False".into(), "Config".into()));
    assert_eq!(w.cond("bad", "Degraded"), ("True".into(), "Config".into()));
    let evs = w.api.events(NS, "bad");
    let failed = evs.iter().find(|e| e.reason == "Failed").unwrap();
    assert_eq!(failed.type_, componentkit::api::EventType::Warning);
    // No retry on its own.
    w.clock.advance(Duration::from_secs(3600));
    assert_eq!(w.reconcile("bad").await.action, Action::Nothing);
    assert_eq!(w.handler.count(Operation::Apply), 1);
}

#[tokio::test]
async fn invalid_duration_fails_with_config_error_naming_the_field() {
    let w = world();
    w.create("dur", |c| c.spec.deployment_timeout = Some("soon".into()));
    w.reconcile("dur").await;
    let c = w.get("dur");
    assert_eq!(c.phase(), Phase::Failed);
    let msg = c.status.clone().unwrap().message.unwrap();
    assert!(msg.contains("spec.deploymentTimeout"), "{msg}");
    assert_eq!(w.cond("dur", "Ready").1, "Config");
    assert_eq!(
        w.handler.count(Operation::Apply),
        0,
        "the handler is not called"
    );
    // Fixing the spec re-applies.
    w.api
        .update_spec(NS, "dur", |s| s.deployment_timeout = Some("1h30m".into()))
        .unwrap();
    w.reconcile("dur").await;
    assert_eq!(w.phase("dur"), Phase::Deploying);
}

#[tokio::test]
async fn deployment_timeout_fails_the_component() {
    let w = world();
    w.handler.set_default(
        Operation::Apply,
        HandlerOutcome::in_progress(Duration::from_secs(600), "waiting"),
    );
    w.handler.set_default(
        Operation::CheckApplied,
        HandlerOutcome::in_progress(Duration::from_secs(600), "0/1 ready"),
    );
    w.create("slow", |c| c.spec.deployment_timeout = Some("1m".into()));
    let r = w.reconcile("slow").await;
    assert_eq!(
        r.requeue_after,
        Some(Duration::from_secs(60)),
        "requeue capped by the deadline"
    );
    w.clock.advance(Duration::from_secs(30));
    let r = w.reconcile("slow").await;
    assert_eq!(r.action, Action::CheckApplied);
    assert_eq!(r.requeue_after, Some(Duration::from_secs(30)));
    w.clock.advance(Duration::from_secs(30));
    let r = w.reconcile("slow").await;
    assert_eq!(
        (r.action, r.event),
        (Action::FailTimeout, Some(Situation::TimedOut))
    );
    let c = w.get("slow");
    assert_eq!(c.phase(), Phase::Failed);
    let msg = c.status.unwrap().message.unwrap();
    assert!(msg.contains("deploymentTimeout 1m exceeded"), "{msg}");
    assert!(msg.contains("0/1 ready"), "{msg}");
    assert_eq!(w.cond("slow", "Ready").1, "Timeout");
    assert_eq!(w.handler.count(Operation::CheckApplied), 1);
}

#[tokio::test]
async fn generation_bump_reapplies() {
    let w = world();
    w.create("gen", |_| {});
    w.reconcile("gen").await;
    w.reconcile("gen").await;
    assert_eq!(w.phase("gen"), Phase::Ready);
    // Metadata-only change: no new generation, nothing happens.
    w.api
        .modify(NS, "gen", |c| {
            c.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("x".into(), "y".into());
        })
        .unwrap();
    assert_eq!(w.reconcile("gen").await.action, Action::Nothing);

    w.api
        .update_spec(NS, "gen", |s| {
            s.config = Some(json!({"releaseName": "gen", "values": {"a": 2}}))
        })
        .unwrap();
    assert_eq!(w.get("gen").metadata.generation, Some(2));
    let r = w.reconcile("gen").await;
    assert_eq!(
        (r.action, r.event),
        (Action::Apply { fresh: true }, Some(Situation::SpecChanged))
    );
    let applies: Vec<i64> = w
        .handler
        .calls()
        .iter()
        .filter(|c| c.op == Operation::Apply)
        .map(|c| c.generation)
        .collect();
    assert_eq!(applies, [1, 2]);
    let st = w.get("gen").status.unwrap();
    assert_eq!(
        (st.observed_generation, st.applied_generation),
        (Some(2), Some(2))
    );
    assert!(w.event_reasons("gen").contains(&"SpecChanged".to_string()));
    w.reconcile("gen").await;
    assert_eq!(w.phase("gen"), Phase::Ready);
    assert_eq!(
        w.get("gen").condition("Ready").unwrap().observed_generation,
        Some(2)
    );

    // A spec change while Failed re-applies too.
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Integrity, "digest mismatch"),
    );
    w.api
        .update_spec(NS, "gen", |s| s.config = Some(json!({"v": 3})))
        .unwrap();
    w.reconcile("gen").await;
    assert_eq!(w.phase("gen"), Phase::Failed);
    w.api
        .update_spec(NS, "gen", |s| s.config = Some(json!({"v": 4})))
        .unwrap();
    w.reconcile("gen").await;
    assert_eq!(w.phase("gen"), Phase::Deploying);
}

#[tokio::test]
async fn deletion_waits_for_coordination_then_completes() {
    let w = world();
    w.create("del", |c| {
        c.metadata.finalizers = Some(vec![names::COORDINATION_FINALIZER.into()])
    });
    w.reconcile("del").await;
    w.reconcile("del").await;
    assert_eq!(w.phase("del"), Phase::Ready);

    w.api.delete(NS, "del").unwrap();
    assert!(
        w.get("del").metadata.deletion_timestamp.is_some(),
        "finalizers hold deletion"
    );
    let r = w.reconcile("del").await;
    assert_eq!(r.action, Action::WaitForCoordination);
    assert_eq!(w.handler.count(Operation::Delete), 0);
    let c = w.get("del");
    assert_eq!(c.phase(), Phase::Ready);
    assert!(
        c.status
            .unwrap()
            .message
            .unwrap()
            .contains(names::COORDINATION_FINALIZER)
    );
    assert_eq!(w.reconcile("del").await.action, Action::WaitForCoordination);

    // The composition controller lets go.
    w.api
        .remove_finalizer(NS, "del", names::COORDINATION_FINALIZER)
        .unwrap();
    let r = w.reconcile("del").await;
    assert_eq!(r.action, Action::Delete { fresh: true });
    assert_eq!(w.phase("del"), Phase::Terminating);
    assert_eq!(w.get("del").status.unwrap().deletion_started, Some(true));
    let r = w.reconcile("del").await;
    assert_eq!(r.action, Action::CheckDeleted);
    assert!(
        w.api.get_now(NS, "del").is_none(),
        "gone once our finalizer is removed"
    );
    assert_eq!(w.handler.count(Operation::Delete), 1);
    assert_eq!(w.handler.count(Operation::CheckDeleted), 1);
    assert_eq!(
        w.event_reasons("del"),
        ["Claimed", "Deploying", "Ready", "Terminating", "Deleted"]
    );
    // Reconciling a vanished object is a no-op.
    assert_eq!(w.reconcile("del").await.requeue_after, None);
}

#[tokio::test]
async fn other_finalizers_keep_the_object_after_release() {
    let w = world();
    w.create("keep", |c| {
        c.metadata.finalizers = Some(vec!["example.com/other".into()])
    });
    w.reconcile("keep").await;
    w.api.delete(NS, "keep").unwrap();
    w.handler.push(Operation::Delete, HandlerOutcome::done());
    w.reconcile("keep").await;
    let c = w.get("keep");
    assert_eq!(
        c.metadata.finalizers.as_deref(),
        Some(&["example.com/other".to_string()][..])
    );
    // Now unclaimed and being deleted: ignored.
    assert_eq!(w.reconcile("keep").await.action, Action::Ignore);
}

#[tokio::test]
async fn termination_timeout_then_retry_annotation() {
    let w = world();
    w.handler.set_default(
        Operation::CheckDeleted,
        HandlerOutcome::in_progress(Duration::from_secs(10), "uninstalling"),
    );
    w.create("term", |c| c.spec.termination_timeout = Some("30s".into()));
    w.reconcile("term").await;
    w.reconcile("term").await;
    w.api.delete(NS, "term").unwrap();
    w.reconcile("term").await; // delete → Terminating
    w.clock.advance(Duration::from_secs(20));
    let r = w.reconcile("term").await;
    assert_eq!(
        (r.action, r.requeue_after),
        (Action::CheckDeleted, Some(Duration::from_secs(10)))
    );
    w.clock.advance(Duration::from_secs(10));
    let r = w.reconcile("term").await;
    assert_eq!(r.action, Action::FailTimeout);
    let c = w.get("term");
    assert_eq!(c.phase(), Phase::TerminationFailed);
    assert!(
        c.status
            .unwrap()
            .message
            .unwrap()
            .contains("terminationTimeout 30s exceeded")
    );
    assert_eq!(w.cond("term", "Ready").1, "Timeout");
    assert!(w.api.events(NS, "term").iter().any(
        |e| e.reason == "TerminationFailed" && e.type_ == componentkit::api::EventType::Warning
    ));
    assert_eq!(w.reconcile("term").await.action, Action::Nothing);

    // Retry: delete again with a fresh timer.
    w.handler
        .set_default(Operation::CheckDeleted, HandlerOutcome::done());
    w.api
        .annotate(NS, "term", names::RETRY_ANNOTATION, "1")
        .unwrap();
    let r = w.reconcile("term").await;
    assert_eq!(
        (r.action, r.event),
        (
            Action::Delete { fresh: true },
            Some(Situation::RetryRequested)
        )
    );
    let c = w.get("term");
    assert_eq!(c.phase(), Phase::Terminating);
    assert_eq!(
        c.status
            .as_ref()
            .unwrap()
            .phase_started_at
            .as_ref()
            .unwrap()
            .0,
        w.clock.now()
    );
    assert_eq!(c.status.unwrap().last_retry.as_deref(), Some("1"));
    w.reconcile("term").await;
    assert!(w.api.get_now(NS, "term").is_none());
    assert_eq!(w.handler.count(Operation::Delete), 2);
}

#[tokio::test]
async fn retry_annotation_retries_failed_only() {
    let w = world();
    // An annotation present from the start is not a retry request.
    w.create("r", |c| {
        c.metadata.annotations =
            Some([(names::RETRY_ANNOTATION.to_string(), "0".to_string())].into());
    });
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Integrity, "bad digest"),
    );
    w.reconcile("r").await;
    assert_eq!(w.phase("r"), Phase::Failed);
    assert_eq!(w.reconcile("r").await.action, Action::Nothing);

    w.api
        .annotate(NS, "r", names::RETRY_ANNOTATION, "1")
        .unwrap();
    let r = w.reconcile("r").await;
    assert_eq!(
        (r.action, r.event),
        (
            Action::Apply { fresh: true },
            Some(Situation::RetryRequested)
        )
    );
    assert_eq!(w.phase("r"), Phase::Deploying);
    assert!(w.event_reasons("r").contains(&"RetryRequested".to_string()));
    // The same value again does nothing more.
    w.reconcile("r").await;
    assert_eq!(w.phase("r"), Phase::Ready);
    assert_eq!(w.reconcile("r").await.action, Action::Nothing);
    assert_eq!(w.handler.count(Operation::Apply), 2);

    // On a Ready Component the annotation is acknowledged, nothing is re-applied.
    w.api
        .annotate(NS, "r", names::RETRY_ANNOTATION, "2")
        .unwrap();
    let r = w.reconcile("r").await;
    assert_eq!(r.action, Action::Nothing);
    assert_eq!(w.get("r").status.unwrap().last_retry.as_deref(), Some("2"));
    assert_eq!(w.handler.count(Operation::Apply), 2);
}

#[tokio::test]
async fn transient_errors_back_off_then_succeed() {
    let w = world();
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Network, "registry 503"),
    );
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Network, "registry 503"),
    );
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Io, "disk"),
    );
    w.create("t", |_| {});
    let backoff = Backoff::default();
    let mut delays = Vec::new();
    for attempt in 1..=3u32 {
        let r = w.reconcile("t").await;
        assert_eq!(
            r.action.clone(),
            Action::Apply {
                fresh: attempt == 1
            },
            "attempt {attempt}"
        );
        let st = w.get("t").status.unwrap();
        assert_eq!(st.phase, Some(Phase::Deploying));
        assert_eq!(st.attempts, Some(attempt as i32));
        assert_ne!(st.applied_generation, Some(1), "apply not started yet");
        let wait = clock::until(w.clock.now(), st.next_retry_at.unwrap().0);
        let ceiling = backoff.ceiling(attempt);
        assert!(
            wait >= ceiling / 2 && wait <= ceiling,
            "attempt {attempt}: {wait:?} not in [{:?}, {ceiling:?}]",
            ceiling / 2
        );
        assert_eq!(r.requeue_after, Some(wait));
        assert_eq!(w.cond("t", "Degraded").0, "True");
        assert_eq!(
            w.cond("t", "Progressing"),
            ("True".into(), "Retrying".into())
        );
        // Before the backoff ends nothing is called.
        let r = w.reconcile("t").await;
        assert_eq!(r.action, Action::Wait);
        assert_eq!(w.handler.count(Operation::Apply), attempt as usize);
        delays.push(wait);
        w.clock.advance(wait);
    }
    assert!(delays[2] > delays[0], "backoff grows: {delays:?}");
    assert_eq!(w.cond("t", "Degraded").1, "Io");
    // Fourth attempt succeeds (default: in progress), then check → Ready.
    w.reconcile("t").await;
    let st = w.get("t").status.unwrap();
    assert_eq!(
        (
            st.attempts,
            st.next_retry_at.is_none(),
            st.applied_generation
        ),
        (None, true, Some(1))
    );
    assert_eq!(
        w.cond("t", "Degraded"),
        ("False".into(), "AsExpected".into())
    );
    w.reconcile("t").await;
    assert_eq!(w.phase("t"), Phase::Ready);
    // The phase timer was not reset by retries.
    let events = w.event_reasons("t");
    assert_eq!(events, ["Claimed", "Deploying", "Ready"]);
}

#[tokio::test]
async fn transient_errors_stop_at_the_phase_timeout() {
    let w = world();
    w.handler.set_default(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Network, "connection refused"),
    );
    w.create("t", |c| c.spec.deployment_timeout = Some("30s".into()));
    for _ in 0..20 {
        let r = w.reconcile("t").await;
        if w.phase("t") == Phase::Failed {
            break;
        }
        w.clock.advance(r.requeue_after.unwrap());
    }
    assert_eq!(w.phase("t"), Phase::Failed);
    assert_eq!(w.cond("t", "Ready").1, "Timeout");
    assert!(
        w.get("t")
            .status
            .unwrap()
            .message
            .unwrap()
            .contains("connection refused")
    );
}

#[tokio::test]
async fn slow_errors_fail_and_retry_later_or_when_poked() {
    let w = world();
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Auth, "registry said 401"),
    );
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::NotFound, "secret missing"),
    );
    w.create("s", |_| {});
    let r = w.reconcile("s").await;
    assert_eq!(r.requeue_after, Some(Duration::from_secs(300)));
    assert_eq!(w.phase("s"), Phase::Failed);
    assert_eq!(w.cond("s", "Ready").1, "Auth");
    assert_eq!(w.reconcile("s").await.action, Action::Wait);
    // A related object (e.g. the referenced Secret) changed: retry now.
    let r = w.engine.reconcile(NS, "s", true).await.unwrap();
    assert_eq!(
        (r.action, r.event),
        (Action::Apply { fresh: true }, Some(Situation::SlowRetryDue))
    );
    assert_eq!(w.cond("s", "Ready").1, "NotFound");
    // Or after the slow delay.
    w.clock.advance(Duration::from_secs(300));
    w.reconcile("s").await;
    assert_eq!(w.phase("s"), Phase::Deploying);
    assert_eq!(w.handler.count(Operation::Apply), 3);
}

#[tokio::test]
async fn status_never_loses_handler_status() {
    let w = world();
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::in_progress(Duration::from_secs(1), "installing")
            .with_status(json!({"digest": "sha256:aa", "revision": 1})),
    );
    w.handler.push(
        Operation::CheckApplied,
        HandlerOutcome::failed(ErrorCategory::Network, "api down"),
    );
    w.create("hs", |c| c.spec.deployment_timeout = Some("10m".into()));
    let expect = json!({"digest": "sha256:aa", "revision": 1});
    let hs = |w: &World| w.get("hs").status.unwrap().handler_status;
    w.reconcile("hs").await;
    assert_eq!(hs(&w), Some(expect.clone()));
    w.reconcile("hs").await; // transient failure without status
    assert_eq!(hs(&w), Some(expect.clone()));
    w.clock.advance(Duration::from_secs(10));
    w.reconcile("hs").await; // check → done
    assert_eq!(w.phase("hs"), Phase::Ready);
    assert_eq!(hs(&w), Some(expect.clone()));
    // The handler sees its persisted status on every call.
    let seen: Vec<_> = w
        .handler
        .calls()
        .into_iter()
        .map(|c| c.handler_status)
        .collect();
    assert_eq!(seen, [None, Some(expect.clone()), Some(expect.clone())]);
    // Spec change, retry annotation, deletion wait: still there.
    w.api
        .annotate(NS, "hs", names::RETRY_ANNOTATION, "x")
        .unwrap();
    w.reconcile("hs").await;
    assert_eq!(hs(&w), Some(expect.clone()));
    // A replacement status replaces, keys are not merged.
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::done().with_status(json!({"digest": "sha256:bb"})),
    );
    w.api
        .update_spec(NS, "hs", |s| s.config = Some(json!({"v": 2})))
        .unwrap();
    w.reconcile("hs").await;
    assert_eq!(hs(&w), Some(json!({"digest": "sha256:bb"})));
    w.api
        .add_finalizer(NS, "hs", names::COORDINATION_FINALIZER)
        .unwrap();
    w.api.delete(NS, "hs").unwrap();
    w.reconcile("hs").await;
    assert_eq!(hs(&w), Some(json!({"digest": "sha256:bb"})));
    w.api
        .remove_finalizer(NS, "hs", names::COORDINATION_FINALIZER)
        .unwrap();
    w.reconcile("hs").await;
    assert_eq!(w.phase("hs"), Phase::Terminating);
    assert_eq!(hs(&w), Some(json!({"digest": "sha256:bb"})));
}

#[tokio::test]
async fn pending_with_our_finalizer_is_marked_claimed() {
    // A crash between the finalizer add and the status write.
    let w = world();
    w.create("p", |c| c.metadata.finalizers = Some(vec![helm_fin()]));
    let snapshot = w.get("p");
    let step = w.engine.step(snapshot, false).await.unwrap();
    assert_eq!(
        step,
        Step::Continue(Action::MarkClaimed, Situation::SpecChanged)
    );
    assert_eq!(w.phase("p"), Phase::Claimed);
}

#[tokio::test]
async fn in_memory_api_semantics() {
    let w = world();
    let c = w.create("m", |c| c.metadata.finalizers = Some(vec!["a/b".into()]));
    // Stale resourceVersion → 409.
    w.api.annotate(NS, "m", "k", "v").unwrap();
    assert!(matches!(
        w.api.set_finalizers(&c, vec![]).await,
        Err(ApiError::Conflict(_))
    ));
    // Status and spec are separate: a status patch leaves generation and metadata alone.
    let before = w.get("m");
    let after = w
        .api
        .patch_status(NS, "m", json!({"status": {"phase": "Ready"}}))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    // A metadata update cannot change status.
    w.api.modify(NS, "m", |c| c.status = None).unwrap();
    assert_eq!(w.phase("m"), Phase::Ready);
    // Finalizers hold deletion; none can be added then; last removal deletes.
    w.api.delete(NS, "m").unwrap();
    assert!(w.get("m").metadata.deletion_timestamp.is_some());
    assert!(matches!(
        w.api.add_finalizer(NS, "m", "x/y"),
        Err(ApiError::Rejected(_))
    ));
    let fresh = w.get("m");
    assert!(
        w.api
            .set_finalizers(&fresh, vec![])
            .await
            .unwrap()
            .is_none()
    );
    assert!(w.api.get(NS, "m").await.unwrap().is_none());
}

/// Following only the engine's own requeue hints (no watch events), a Component converges
/// through transient errors, a slow rollout and deletion, without hot loops.
#[tokio::test]
async fn requeue_hints_alone_drive_the_lifecycle() {
    let w = world();
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Network, "503"),
    );
    w.handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Timeout, "slow registry"),
    );
    for i in 0..3 {
        w.handler.push(
            Operation::CheckApplied,
            HandlerOutcome::in_progress(Duration::from_secs(3), format!("{i}/3 ready")),
        );
    }
    w.create("drive", |_| {});
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 20, "did not converge");
        let r = w.reconcile("drive").await;
        match r.requeue_after {
            Some(d) => w.clock.advance(d),
            None => break,
        }
    }
    assert_eq!(w.phase("drive"), Phase::Ready);
    assert_eq!(w.handler.count(Operation::Apply), 3);
    assert_eq!(w.handler.count(Operation::CheckApplied), 4);

    w.api.delete(NS, "drive").unwrap();
    for _ in 0..5 {
        let r = w.reconcile("drive").await;
        match r.requeue_after {
            Some(d) => w.clock.advance(d),
            None => break,
        }
    }
    assert!(w.api.get_now(NS, "drive").is_none());
}

/// Counts the reads an engine makes through the in-memory API.
struct CountingApi {
    inner: InMemoryApi,
    gets: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ComponentApi for CountingApi {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<Component>, ApiError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(namespace, name).await
    }
    async fn set_finalizers(
        &self,
        component: &Component,
        finalizers: Vec<String>,
    ) -> Result<Option<Component>, ApiError> {
        self.inner.set_finalizers(component, finalizers).await
    }
    async fn patch_status(
        &self,
        namespace: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<Component, ApiError> {
        self.inner.patch_status(namespace, name, patch).await
    }
    async fn publish_event(
        &self,
        component: &Component,
        event: &componentkit::api::ComponentEvent,
    ) -> Result<(), ApiError> {
        self.inner.publish_event(component, event).await
    }
}

#[tokio::test]
async fn a_reconcile_reads_the_component_once_and_continues_on_what_it_wrote() {
    let w = world();
    w.handler.set_default(
        Operation::Apply,
        HandlerOutcome::in_progress(Duration::from_secs(2), "deploying"),
    );
    let api = Arc::new(CountingApi {
        inner: w.api.clone(),
        gets: Default::default(),
    });
    let engine = engine_over(api.clone(), &w.clock, w.handler.clone(), "replica-a");
    w.create("web", |_| {});
    // Claim, then apply: two steps, one read; the apply saw the claim it continued from.
    let r = engine.reconcile(NS, "web", false).await.unwrap();
    assert_eq!(r.action, Action::Apply { fresh: true });
    assert_eq!(api.gets.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(w.phase("web"), Phase::Deploying);
    assert_eq!(w.get("web").metadata.finalizers, Some(vec![helm_fin()]));
    assert_eq!(
        w.get("web").status.and_then(|s| s.claimed_by).as_deref(),
        Some("replica-a")
    );
}
