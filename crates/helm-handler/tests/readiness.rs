//! Readiness rules on fixtures shaped like `kubectl get -o json` (tests/fixtures/readiness).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use helm_handler::readiness::{Verdict, assess, assess_object};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/readiness")
}

fn load(name: &str) -> Value {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Ready,
    Progressing,
    Failed,
}

/// (fixture, expected verdict, text the reason must contain)
const TABLE: &[(&str, Want, &str)] = &[
    ("deployment-ready", Want::Ready, ""),
    (
        "deployment-rolling",
        Want::Progressing,
        "Deployment/apps/web: 1 of 3 replicas updated",
    ),
    (
        "deployment-generation-not-observed",
        Want::Progressing,
        "observe generation 3 (observed 2)",
    ),
    (
        "deployment-unavailable",
        Want::Progressing,
        "2 of 3 updated replicas available",
    ),
    (
        "deployment-deadline-exceeded",
        Want::Failed,
        "ProgressDeadlineExceeded: ReplicaSet \"web-5c8f9d7b6c\" has timed out progressing.",
    ),
    ("deployment-paused", Want::Ready, ""),
    ("deployment-no-status", Want::Progressing, "no status yet"),
    ("statefulset-ready", Want::Ready, ""),
    (
        "statefulset-rolling",
        Want::Progressing,
        "StatefulSet/apps/db: 1 of 3 replicas updated",
    ),
    (
        "statefulset-revision-not-current",
        Want::Progressing,
        "db-6d4f8b7c9 → db-7f9c5d6b8",
    ),
    (
        "statefulset-not-ready",
        Want::Progressing,
        "1 of 3 replicas ready",
    ),
    ("statefulset-partitioned", Want::Ready, ""),
    ("statefulset-ondelete", Want::Ready, ""),
    ("daemonset-ready", Want::Ready, ""),
    (
        "daemonset-not-ready",
        Want::Progressing,
        "DaemonSet/apps/agent: 2 of 3 pods ready",
    ),
    (
        "daemonset-updating",
        Want::Progressing,
        "1 of 3 pods updated",
    ),
    ("replicaset-ready", Want::Ready, ""),
    (
        "replicaset-failed-create",
        Want::Progressing,
        "0 of 2 replicas available (FailedCreate: pods \"web-7d9c6b8f5d-\" is forbidden: exceeded quota",
    ),
    ("job-complete", Want::Ready, ""),
    (
        "job-running",
        Want::Progressing,
        "Job/apps/migrate: 0 of 1 completions, 1 active",
    ),
    (
        "job-failed",
        Want::Failed,
        "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
    ),
    ("pod-ready", Want::Ready, ""),
    (
        "pod-crashloop",
        Want::Failed,
        "Pod/apps/web-7d9c6b8f5d-x2k9p: container web: CrashLoopBackOff: back-off 2m40s",
    ),
    (
        "pod-imagepullbackoff",
        Want::Failed,
        "container web: ImagePullBackOff: Back-off pulling image \"nginx:9.9.9-nope\"",
    ),
    (
        "pod-errimagepull",
        Want::Failed,
        "container web: ErrImagePull",
    ),
    (
        "pod-starting",
        Want::Progressing,
        "not ready: ContainersNotReady: containers with unready status: [web]",
    ),
    (
        "pod-pending-unschedulable",
        Want::Progressing,
        "not ready (phase Pending)",
    ),
    ("pod-succeeded", Want::Ready, ""),
    (
        "pod-failed",
        Want::Failed,
        "pod failed: OutOfmemory: Pod was rejected",
    ),
    ("pvc-bound", Want::Ready, ""),
    (
        "pvc-pending",
        Want::Progressing,
        "PersistentVolumeClaim/apps/data: Pending, not bound yet",
    ),
    ("pvc-lost", Want::Failed, "claim lost its volume"),
    ("service-clusterip", Want::Ready, ""),
    (
        "service-loadbalancer-pending",
        Want::Progressing,
        "Service/apps/web-public: waiting for a load balancer address",
    ),
    ("service-loadbalancer-ready", Want::Ready, ""),
    ("crd-established", Want::Ready, ""),
    (
        "crd-installing",
        Want::Progressing,
        "CustomResourceDefinition/widgets.example.com: not established: Installing",
    ),
    (
        "crd-names-conflict",
        Want::Failed,
        "names not accepted: PluralConflict: \"widgets\" is already in use",
    ),
    ("certificate-ready", Want::Ready, ""),
    (
        "certificate-issuing",
        Want::Progressing,
        "Certificate/apps/web-tls: not ready: DoesNotExist",
    ),
    (
        "certificate-failed",
        Want::Failed,
        "not ready: Failed: The certificate request has failed",
    ),
    ("configmap", Want::Ready, ""),
];

fn class(v: &Verdict) -> Want {
    match v {
        Verdict::Ready => Want::Ready,
        Verdict::Progressing { .. } => Want::Progressing,
        Verdict::Failed { .. } => Want::Failed,
    }
}

#[test]
fn every_fixture_has_the_expected_verdict() {
    let mut failures = Vec::new();
    for (name, want, reason) in TABLE {
        let v = assess_object(&load(name));
        if class(&v) != *want || !v.reason().contains(reason) {
            failures.push(format!(
                "{name}: want {want:?} containing {reason:?}, got {v:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_fixture_file_is_in_the_table() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if !TABLE.iter().any(|(n, _, _)| *n == stem) {
            missing.push(stem.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "fixtures without an expectation: {missing:?}"
    );
}

#[test]
fn every_kind_has_a_ready_and_a_not_ready_fixture() {
    for kind in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "Pod",
        "PersistentVolumeClaim",
        "Service",
        "CustomResourceDefinition",
        "Certificate",
    ] {
        let verdicts: Vec<Want> = TABLE
            .iter()
            .filter(|(n, _, _)| load(n)["kind"] == kind)
            .map(|(_, w, _)| *w)
            .collect();
        assert!(verdicts.contains(&Want::Ready), "{kind}: no ready fixture");
        assert!(
            verdicts.iter().any(|w| *w != Want::Ready),
            "{kind}: no not-ready fixture"
        );
    }
}

#[test]
fn a_release_aggregates_its_objects() {
    let ready: Vec<Value> = [
        "deployment-ready",
        "service-clusterip",
        "configmap",
        "pvc-bound",
    ]
    .iter()
    .map(|n| load(n))
    .collect();
    assert_eq!(assess(&ready), Verdict::Ready);

    let mut progressing = ready.clone();
    progressing.push(load("service-loadbalancer-pending"));
    progressing.push(load("deployment-rolling"));
    let v = assess(&progressing);
    assert_eq!(
        v,
        Verdict::Progressing {
            reason: "Service/apps/web-public: waiting for a load balancer address; \
                     Deployment/apps/web: 1 of 3 replicas updated"
                .into()
        }
    );

    let mut failed = progressing.clone();
    failed.push(load("pod-imagepullbackoff"));
    let v = assess(&failed);
    assert!(v.is_failed(), "{v:?}");
    assert!(
        v.reason()
            .starts_with("Pod/apps/web-7d9c6b8f5d-x2k9p: container web: ImagePullBackOff")
    );
}

#[test]
fn objects_being_deleted_are_progressing() {
    let mut cm = load("configmap");
    cm["metadata"]["deletionTimestamp"] = "2026-11-23T09:00:00Z".into();
    assert_eq!(
        assess_object(&cm),
        Verdict::Progressing {
            reason: "ConfigMap/apps/web-config: being deleted".into()
        }
    );
}

#[test]
fn garbage_never_panics() {
    for v in [
        serde_json::json!(null),
        serde_json::json!(42),
        serde_json::json!({"kind": "Deployment", "apiVersion": "apps/v1", "status": "weird"}),
        serde_json::json!({"kind": "Pod", "apiVersion": "v1", "status": {"containerStatuses": "x", "conditions": [1, 2]}}),
        serde_json::json!({"kind": "Job", "apiVersion": "batch/v1", "status": {"conditions": [{"type": 5}]}}),
    ] {
        let _ = assess_object(&v);
    }
}

mod arbitrary_objects {
    use helm_handler::readiness::{Verdict, assess_object};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[A-Za-z]{0,8}".prop_map(Value::from),
            prop_oneof![
                Just("True"),
                Just("False"),
                Just("RollingUpdate"),
                Just("LoadBalancer"),
                Just("CrashLoopBackOff")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_string()),
                        Just("status".to_string()),
                        Just("reason".to_string()),
                        Just("replicas".to_string()),
                        Just("conditions".to_string()),
                        Just("phase".to_string()),
                        "[a-z]{1,6}".prop_map(String::from),
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the API returns, judging it never panics, and a not-ready verdict
        /// always names the object.
        #[test]
        fn never_panics_and_names_the_object(
            kind in prop_oneof![
                Just(("apps/v1", "Deployment")), Just(("apps/v1", "StatefulSet")),
                Just(("apps/v1", "DaemonSet")), Just(("apps/v1", "ReplicaSet")),
                Just(("batch/v1", "Job")), Just(("v1", "Pod")),
                Just(("v1", "PersistentVolumeClaim")), Just(("v1", "Service")),
                Just(("apiextensions.k8s.io/v1", "CustomResourceDefinition")),
                Just(("example.com/v1", "Widget")),
            ],
            spec in json_value(),
            status in json_value(),
            generation in proptest::option::of(0i64..5),
        ) {
            let mut object = json!({
                "apiVersion": kind.0, "kind": kind.1,
                "metadata": {"name": "x", "namespace": "ns"},
                "spec": spec, "status": status,
            });
            if let Some(g) = generation {
                object["metadata"]["generation"] = g.into();
            }
            let v = assess_object(&object);
            if !matches!(v, Verdict::Ready) {
                let prefix = format!("{}/ns/x: ", kind.1);
                prop_assert!(v.reason().starts_with(&prefix), "{:?}", v);
            }
        }
    }
}
