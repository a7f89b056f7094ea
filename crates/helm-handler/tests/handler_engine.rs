//! `HelmHandler` end to end through componentkit's protocol engine and in-memory API
//! (API-server semantics: finalizers hold deletion, resourceVersion conflicts, status
//! subresource), with the real OCI source on the real registry and a recording fake release
//! engine: claim → install once → Ready; no upgrade on an unchanged reconcile; upgrade on a
//! values change; uninstall on deletion and finalizer removed; failure categories → phases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod handler_support;

use std::sync::Arc;
use std::time::Duration;

use componentkit::clock::ManualClock;
use componentkit::crd::{Component, Phase};
use componentkit::engine::{Engine, EngineConfig};
use componentkit::memory::{InMemoryApi, component};
use componentkit::names;
use helm_handler::handler::{HandlerStatus, HelmHandler, Verdict};
use serde_json::json;
use test_support::{Chart, Registry, RegistryMode};

use handler_support::{Call, Harness, MutableSecrets, SYSTEM_NAMESPACE, oci_config};
use helm_handler::credentials::SecretData;

struct World {
    h: Harness,
    api: InMemoryApi,
    clock: ManualClock,
    engine: Engine<HelmHandler>,
}

impl World {
    fn new() -> Self {
        Self::with(Harness::new())
    }

    fn with(h: Harness) -> Self {
        let clock = ManualClock::at_epoch();
        let api = InMemoryApi::new(Arc::new(clock.clone()));
        let engine = Engine::new(
            h.handler.clone(),
            Arc::new(api.clone()),
            Arc::new(clock.clone()),
            EngineConfig {
                identity: "helm-handler-test".into(),
                ..EngineConfig::default()
            },
        );
        Self {
            h,
            api,
            clock,
            engine,
        }
    }

    /// Reconciles up to `max` times (advancing the clock by each requeue) until `done`.
    async fn until(
        &self,
        ns: &str,
        name: &str,
        max: usize,
        done: impl Fn(Option<&Component>) -> bool,
    ) {
        for _ in 0..max {
            if done(self.api.get_now(ns, name).as_ref()) {
                return;
            }
            let r = self.engine.reconcile(ns, name, false).await.unwrap();
            self.clock.advance(
                r.requeue_after
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_secs(1)),
            );
        }
        let c = self.api.get_now(ns, name);
        assert!(
            done(c.as_ref()),
            "condition not reached after {max} reconciles; component: {:#?}\nengine calls: {:?}",
            c.map(|c| c.status),
            self.h.engine.calls()
        );
    }

    async fn until_phase(&self, ns: &str, name: &str, phase: Phase) -> Component {
        self.until(ns, name, 12, |c| c.is_some_and(|c| c.phase() == phase))
            .await;
        self.api.get_now(ns, name).unwrap()
    }

    fn handler_status(&self, ns: &str, name: &str) -> HandlerStatus {
        HandlerStatus::from_value(self.api.get_now(ns, name).unwrap().handler_status()).unwrap()
    }
}

fn registry_with_web() -> Registry {
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tgz = Chart::create("web", "1.0.0").package(dir.path()).unwrap();
    registry.push(&tgz, "charts").unwrap();
    registry
}

#[tokio::test]
async fn lifecycle_install_noop_upgrade_uninstall() {
    let registry = registry_with_web();
    let w = World::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    w.api
        .create(component(
            "apps",
            "web",
            "helm",
            oci_config("web", &chart, json!({"replicaCount": 1})),
        ))
        .unwrap();

    // Claimed with our finalizer, installed once, Ready once the objects are ready.
    w.h.readiness.set(Verdict::Progressing {
        reason: "Deployment/apps/web: 0/1 available".into(),
    });
    let c = w.until_phase("apps", "web", Phase::Deploying).await;
    assert!(
        c.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&names::lifecycle_finalizer("helm"))
    );
    for _ in 0..3 {
        w.engine.reconcile("apps", "web", false).await.unwrap();
        w.clock.advance(Duration::from_secs(5));
    }
    assert_eq!(
        w.api.get_now("apps", "web").unwrap().phase(),
        Phase::Deploying
    );
    w.h.readiness.set(Verdict::Ready);
    let c = w.until_phase("apps", "web", Phase::Ready).await;
    assert_eq!(w.h.engine.upgrades(), 1, "{:?}", w.h.engine.calls());
    let status = w.handler_status("apps", "web");
    assert_eq!(status.revision, Some(1));
    assert_eq!(status.chart.version, "1.0.0");
    assert_eq!(c.status.as_ref().unwrap().observed_generation, Some(1));

    // More reconciles while Ready: no helm writes.
    for _ in 0..3 {
        w.engine.reconcile("apps", "web", false).await.unwrap();
    }
    assert_eq!(w.h.engine.upgrades(), 1);

    // A spec change that leaves the desired release unchanged: new generation, no upgrade.
    w.api
        .update_spec("apps", "web", |s| s.deployment_timeout = Some("15m".into()))
        .unwrap();
    w.until("apps", "web", 12, |c| {
        c.is_some_and(|c| {
            c.phase() == Phase::Ready && c.status.as_ref().unwrap().observed_generation == Some(2)
        })
    })
    .await;
    assert_eq!(w.h.engine.upgrades(), 1, "{:?}", w.h.engine.calls());

    // A values change: upgraded (revision 2), Ready again.
    w.api
        .update_spec("apps", "web", |s| {
            s.config = Some(oci_config("web", &chart, json!({"replicaCount": 3})))
        })
        .unwrap();
    w.until("apps", "web", 12, |c| {
        c.is_some_and(|c| {
            c.phase() == Phase::Ready && c.status.as_ref().unwrap().observed_generation == Some(3)
        })
    })
    .await;
    assert_eq!(w.h.engine.upgrades(), 2);
    assert_eq!(w.handler_status("apps", "web").revision, Some(2));
    match w
        .h
        .engine
        .calls()
        .iter()
        .rev()
        .find(|c| matches!(c, Call::Upgrade { .. }))
    {
        Some(Call::Upgrade { values, .. }) => assert_eq!(values, &json!({"replicaCount": 3})),
        other => panic!("{other:?}"),
    }

    // Deletion: uninstalled, finalizer removed, object gone.
    w.api.delete("apps", "web").unwrap();
    w.until("apps", "web", 12, |c| c.is_none()).await;
    assert_eq!(w.h.engine.uninstalls(), 1);
    assert!(!w.h.engine.has("apps", "web"));
    // The release namespace pre-existed ("apps"): kept.
    assert!(w.h.namespaces.exists_now("apps"));
}

#[tokio::test]
async fn a_mirrored_chart_is_deployed_recorded_and_announced() {
    // `web` 1.0.0 mirrored as `mirror/acme-web:1.0` (another name, a short tag): deployed as
    // helm deploys it, its real name and version in handlerStatus, one Normal Event.
    let registry = registry_with_web();
    registry
        .copy("charts/web", "1.0.0", "mirror/acme-web", "1.0")
        .unwrap();
    let w = World::new();
    let chart = registry.oci_ref("mirror/acme-web", "1.0");
    w.api
        .create(component(
            "apps",
            "web",
            "helm",
            oci_config("web", &chart, json!({})),
        ))
        .unwrap();
    w.h.readiness.set(Verdict::Ready);
    w.until_phase("apps", "web", Phase::Ready).await;

    let status = w.handler_status("apps", "web");
    assert_eq!(
        (status.chart.name.as_str(), status.chart.version.as_str()),
        ("web", "1.0.0")
    );
    let mismatch = status.chart.differs_from_reference.expect("recorded");
    assert_eq!(mismatch.requested_name, "acme-web");
    assert_eq!(mismatch.requested_version.as_deref(), Some("1.0"));
    let raw = w.api.get_now("apps", "web").unwrap();
    assert_eq!(
        raw.handler_status().unwrap()["chart"]["differsFromReference"]["requestedName"],
        json!("acme-web")
    );

    let announced: Vec<_> = w
        .api
        .events("apps", "web")
        .into_iter()
        .filter(|e| e.reason == helm_handler::handler::REASON_CHART_DIFFERS)
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0].type_, componentkit::api::EventType::Normal);
    assert!(
        announced[0]
            .note
            .contains("the chart is `web` version 1.0.0")
            && announced[0].note.contains("`acme-web` version 1.0"),
        "{}",
        announced[0].note
    );

    // More reconciles while Ready: announced once, not on every reconcile.
    for _ in 0..3 {
        w.engine.reconcile("apps", "web", false).await.unwrap();
    }
    let count = w
        .api
        .events("apps", "web")
        .iter()
        .filter(|e| e.reason == helm_handler::handler::REASON_CHART_DIFFERS)
        .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn deletion_waits_for_the_composition_controller() {
    let registry = registry_with_web();
    let w = World::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut c = component("apps", "web", "helm", oci_config("web", &chart, json!({})));
    c.metadata.finalizers = Some(vec![names::COORDINATION_FINALIZER.to_string()]);
    w.api.create(c).unwrap();
    w.until_phase("apps", "web", Phase::Ready).await;
    w.api.delete("apps", "web").unwrap();
    for _ in 0..4 {
        w.engine.reconcile("apps", "web", false).await.unwrap();
    }
    assert_eq!(w.h.engine.uninstalls(), 0, "uninstalled while coordinated");
    w.api
        .remove_finalizer("apps", "web", names::COORDINATION_FINALIZER)
        .unwrap();
    w.until("apps", "web", 12, |c| c.is_none()).await;
    assert_eq!(w.h.engine.uninstalls(), 1);
}

fn failure(c: &Component) -> (Phase, String, String) {
    let st = c.status.as_ref().unwrap();
    let reason = c
        .condition(names::condition::READY)
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    (c.phase(), reason, st.message.clone().unwrap_or_default())
}

#[tokio::test]
async fn failure_categories_map_to_phases() {
    let registry = registry_with_web();
    let w = World::new();

    // Bad configuration → Failed, reason Config, message names the field.
    w.api
        .create(component(
            "apps",
            "bad",
            "helm",
            json!({"releaseName": "web", "source": {"type": "oci"}}),
        ))
        .unwrap();
    let c = w.until_phase("apps", "bad", Phase::Failed).await;
    let (_, reason, message) = failure(&c);
    assert_eq!(reason, "Config", "{message}");
    assert!(message.contains("source.chart"), "{message}");

    // Chart not found → Failed, reason NotFound, message names the reference.
    let missing = registry.oci_ref("charts/web", "7.7.7");
    w.api
        .create(component(
            "apps",
            "missing",
            "helm",
            oci_config("missing", &missing, json!({})),
        ))
        .unwrap();
    let c = w.until_phase("apps", "missing", Phase::Failed).await;
    let (_, reason, message) = failure(&c);
    assert_eq!(reason, "NotFound", "{message}");
    assert!(message.contains("7.7.7"), "{message}");

    // Network error → stays Deploying (retried with backoff), Degraded says why.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let closed = format!("oci://127.0.0.1:{port}/charts/web:1.0.0");
    w.api
        .create(component(
            "apps",
            "offline",
            "helm",
            oci_config("offline", &closed, json!({})),
        ))
        .unwrap();
    for _ in 0..6 {
        w.engine.reconcile("apps", "offline", false).await.unwrap();
        w.clock.advance(Duration::from_secs(2));
    }
    let c = w.api.get_now("apps", "offline").unwrap();
    assert_eq!(c.phase(), Phase::Deploying, "{:#?}", c.status);
    let degraded = c.condition(names::condition::DEGRADED).unwrap();
    assert_eq!(degraded.status, "True", "{degraded:?}");
    let st = c.status.as_ref().unwrap();
    assert_eq!(
        st.failure_category,
        Some(componentkit::handler::ErrorCategory::Network),
        "{st:#?}"
    );

    // ...and once the deployment timeout passes, Failed.
    w.clock.advance(Duration::from_secs(11 * 60));
    let c = w.until_phase("apps", "offline", Phase::Failed).await;
    let (_, reason, message) = failure(&c);
    assert!(
        reason == "Timeout" || reason == "Network",
        "{reason}: {message}"
    );

    // Nothing was ever installed.
    assert_eq!(w.h.engine.upgrades(), 0);
}

#[tokio::test]
async fn a_new_or_rotated_secret_retries_at_once() {
    let registry = Registry::start(RegistryMode::BasicAuth).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tgz = Chart::create("private", "0.1.0")
        .package(dir.path())
        .unwrap();
    registry.push(&tgz, "team").unwrap();
    let secrets = Arc::new(MutableSecrets::default());
    let w = World::with(Harness::with_store(secrets.clone()));

    let mut config = oci_config(
        "private",
        &registry.oci_ref("team/private", "0.1.0"),
        json!({}),
    );
    config["source"]["authentication"] =
        json!({"method": "registry", "secretRef": {"name": "regcred"}});
    w.api
        .create(component("apps", "private", "helm", config))
        .unwrap();
    let c = w.until_phase("apps", "private", Phase::Failed).await;
    assert_eq!(failure(&c).1, "NotFound", "{:#?}", c.status);

    // Without a poke, nothing happens before the slow retry.
    for _ in 0..3 {
        w.engine.reconcile("apps", "private", false).await.unwrap();
    }
    assert_eq!(
        w.api.get_now("apps", "private").unwrap().phase(),
        Phase::Failed
    );

    // The Secret appears with a wrong password: the watch maps it to the Component, the
    // poked reconcile retries at once and fails with Auth.
    let resolver = helm_handler::credentials::CredentialResolver::new(SYSTEM_NAMESPACE);
    let store = |ns: &str, name: &str| {
        let all = vec![Arc::new(w.api.get_now("apps", "private").unwrap())];
        w.h.secret_index.changed(
            helm_handler::handler::secret_index::Watched::Secret,
            &resolver,
            &all,
            ns,
            name,
        )
    };
    secrets.put(
        "apps",
        "regcred",
        SecretData::new(None)
            .with("username", registry.username().unwrap())
            .with("password", "wrong"),
    );
    let hits = store("apps", "regcred");
    assert_eq!(hits.len(), 1);
    assert!(store("apps", "unrelated").is_empty());
    w.engine.reconcile("apps", "private", true).await.unwrap();
    w.until("apps", "private", 4, |c| {
        c.is_some_and(|c| c.phase() == Phase::Failed && failure(c).1 == "Auth")
    })
    .await;

    // Rotated to the right password (in the system namespace this time): Ready.
    secrets.put(
        SYSTEM_NAMESPACE,
        "regcred",
        SecretData::new(None)
            .with("username", registry.username().unwrap())
            .with("password", registry.password().unwrap()),
    );
    secrets.put(
        "apps",
        "regcred",
        SecretData::new(None)
            .with("username", registry.username().unwrap())
            .with("password", registry.password().unwrap()),
    );
    assert_eq!(store(SYSTEM_NAMESPACE, "regcred").len(), 1);
    w.engine.reconcile("apps", "private", true).await.unwrap();
    w.until_phase("apps", "private", Phase::Ready).await;
    assert_eq!(w.h.engine.upgrades(), 1);
}
