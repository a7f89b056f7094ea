//! Drift detection through the real `HelmHandler` (real OCI source and registry, fake
//! engine and a drift probe set by the test): what is reported, when an Event is asked for,
//! when the objects are corrected, and that a drift never makes a helm revision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod handler_support;

use componentkit::crd::Component;
use componentkit::handler::Outcome;
use helm_handler::drift::{ObjectDrift, ObjectId};
use serde_json::{Value, json};

use handler_support::{Harness, web_chart};

fn config(chart: &str, drift: Value) -> Value {
    json!({
        "releaseName": "web",
        "driftDetection": drift,
        "source": {"type": "oci", "chart": chart, "plainHTTP": true},
    })
}

fn scaled() -> Vec<ObjectDrift> {
    vec![ObjectDrift::Modified(
        ObjectId {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: Some("apps".into()),
            name: "web".into(),
        },
        vec!["/spec/replicas".into()],
    )]
}

fn drifted(c: &Component) -> Option<(String, String, String)> {
    let cond = c
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Drifted")?;
    Some((
        cond.status.clone(),
        cond.reason.clone(),
        cond.message.clone(),
    ))
}

fn event_reasons(h: &Harness) -> Vec<String> {
    h.events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.reason.clone())
        .collect()
}

#[tokio::test]
async fn warn_reports_once_per_drift_and_never_corrects() {
    let (_registry, chart) = web_chart();
    let h = Harness::new();
    let mut c = h.component("apps", "web", config(&chart, Value::Null));
    h.apply(&mut c).await;
    assert_eq!(h.check_applied(&mut c).await, Outcome::Done);
    assert_eq!(
        drifted(&c).unwrap().0,
        "False",
        "checked after the deployment"
    );
    assert_eq!(h.drift.checks(), 1);

    h.drift.set(scaled());
    assert_eq!(
        h.apply(&mut c).await,
        Outcome::Done,
        "drift is not a failure"
    );
    let (status, reason, message) = drifted(&c).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "DriftDetected")
    );
    assert_eq!(
        message,
        "drift detected (mode warn, not corrected): Deployment/apps/web /spec/replicas"
    );
    assert_eq!(event_reasons(&h), ["DriftDetected"]);
    // The same drift again: no new Event.
    h.apply(&mut c).await;
    assert!(event_reasons(&h).is_empty());
    assert!(h.drift.corrections().is_empty());
    assert_eq!(h.engine.upgrades(), 1, "no revision");

    // A check that fails (API unreachable) is not a failure of the Component.
    h.drift.set_failing(true);
    assert_eq!(h.apply(&mut c).await, Outcome::Done);
    assert_eq!(drifted(&c).unwrap().0, "True", "the last verdict stays");
    h.drift.set_failing(false);

    // Back to normal (someone scaled it back): the condition clears.
    h.drift.set(vec![]);
    h.apply(&mut c).await;
    assert_eq!(drifted(&c).unwrap().1, "NoDrift");
}

#[tokio::test]
async fn enabled_corrects_without_a_revision_and_disabled_never_looks() {
    let (_registry, chart) = web_chart();
    let h = Harness::new();
    let mut c = h.component("apps", "web", config(&chart, json!({"mode": "enabled"})));
    h.apply(&mut c).await;
    h.check_applied(&mut c).await;
    h.drift.set(scaled());
    assert_eq!(h.apply(&mut c).await, Outcome::Done);
    assert_eq!(h.drift.corrections(), scaled());
    let (status, reason, message) = drifted(&c).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DriftCorrected")
    );
    assert!(
        message.contains("Deployment/apps/web /spec/replicas"),
        "{message}"
    );
    assert_eq!(event_reasons(&h), ["DriftCorrected"]);
    assert_eq!(h.engine.upgrades(), 1, "corrected without a helm revision");

    let h = Harness::new();
    let mut c = h.component("apps", "web", config(&chart, json!({"mode": "disabled"})));
    h.drift.set(scaled());
    h.apply(&mut c).await;
    h.check_applied(&mut c).await;
    h.apply(&mut c).await;
    assert_eq!(h.drift.checks(), 0);
    assert!(drifted(&c).is_none());
}
