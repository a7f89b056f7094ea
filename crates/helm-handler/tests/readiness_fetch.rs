//! `fetch_objects` / `check_release` against a fake Kubernetes API (the only fake allowed):
//! discovery documents and objects served from the readiness fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use componentkit::handler::ErrorCategory;
use helm_handler::readiness::{Observed, Verdict, check_release, fetch_objects, parse_manifest};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/readiness")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn resource(name: &str, kind: &str, namespaced: bool) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
           "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
}

/// Discovery for v1, apps/v1 and apiextensions.k8s.io/v1 (not example.com/v1: the CRD's
/// kind is not served yet), plus `objects` by path. `forbidden` paths answer 403.
fn fake_api(
    objects: BTreeMap<String, Value>,
    forbidden: Vec<String>,
) -> (kube::Client, Arc<Mutex<Vec<String>>>) {
    let mut docs = objects;
    docs.insert(
        "/api/v1".into(),
        json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            resource("configmaps", "ConfigMap", true),
            resource("services", "Service", true),
            resource("namespaces", "Namespace", false),
            resource("pods", "Pod", true),
            resource("pods/status", "Pod", true),
        ]}),
    );
    docs.insert(
        "/apis/apps/v1".into(),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            resource("deployments", "Deployment", true),
            resource("statefulsets", "StatefulSet", true),
        ]}),
    );
    docs.insert(
        "/apis/apiextensions.k8s.io/v1".into(),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apiextensions.k8s.io/v1", "resources": [
            resource("customresourcedefinitions", "CustomResourceDefinition", false),
        ]}),
    );
    let docs = Arc::new(docs);
    let forbidden = Arc::new(forbidden);
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let docs = docs.clone();
        let forbidden = forbidden.clone();
        let seen = seen.clone();
        async move {
            let path = req.uri().path().to_string();
            seen.lock()
                .unwrap()
                .push(format!("{} {path}", req.method()));
            let (code, body) = if forbidden.contains(&path) {
                (
                    403,
                    status(
                        403,
                        "Forbidden",
                        "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:x:y\" cannot get resource",
                    ),
                )
            } else if let Some(doc) = docs.get(&path) {
                (200, doc.clone())
            } else {
                (
                    404,
                    status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ),
                )
            };
            let resp = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    (kube::Client::new(service, "default"), log)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

const MANIFEST: &str = "---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
---
# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
---
# Source: web/crds/widgets.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
---
# Source: web/templates/widget.yaml
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
---
# Source: web/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
";

fn cluster(deployment: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        (
            "/apis/apps/v1/namespaces/apps/deployments/web".to_string(),
            fixture(deployment),
        ),
        (
            "/api/v1/namespaces/apps/services/web".to_string(),
            fixture("service-clusterip"),
        ),
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
                .to_string(),
            fixture("crd-established"),
        ),
    ])
}

#[tokio::test]
async fn fetches_by_discovery_and_reports_missing_objects() {
    let (client, log) = fake_api(cluster("deployment-ready"), vec![]);
    let refs = parse_manifest(MANIFEST, "apps").unwrap();
    let observed = fetch_objects(client.clone(), &refs).await.unwrap();
    let shown: Vec<String> = observed
        .iter()
        .map(|o| match o {
            Observed::Present(v) => format!("present {}", helm_handler::readiness::object_name(v)),
            Observed::Missing(r) => format!("missing {r}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "present Deployment/apps/web",
            "present Service/apps/web",
            "present CustomResourceDefinition/widgets.example.com",
            // The CRD's kind is not served yet, and the ConfigMap does not exist.
            "missing Widget/apps/w1",
            "missing ConfigMap/apps/web-config",
        ]
    );
    // Discovery once per group/version; cluster-scoped kinds fetched without namespace.
    let requests = log.lock().unwrap().clone();
    assert!(
        requests.contains(
            &"GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
                .to_string()
        ),
        "{requests:?}"
    );
    assert_eq!(
        requests.iter().filter(|r| *r == "GET /api/v1").count(),
        1,
        "{requests:?}"
    );

    let verdict = check_release(client, MANIFEST, "apps").await.unwrap();
    assert_eq!(
        verdict,
        Verdict::Progressing {
            reason: "Widget/apps/w1: not found yet; ConfigMap/apps/web-config: not found yet"
                .into()
        }
    );
}

#[tokio::test]
async fn verdicts_through_the_api() {
    let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
    let (client, _) = fake_api(cluster("deployment-ready"), vec![]);
    assert_eq!(
        check_release(client, manifest, "apps").await.unwrap(),
        Verdict::Ready
    );
    let (client, _) = fake_api(cluster("deployment-deadline-exceeded"), vec![]);
    let v = check_release(client, manifest, "apps").await.unwrap();
    assert!(v.is_failed(), "{v:?}");
    assert!(
        v.reason()
            .starts_with("Deployment/apps/web: rollout failed"),
        "{v:?}"
    );
}

#[tokio::test]
async fn api_errors_carry_a_category() {
    let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
    let (client, _) = fake_api(
        cluster("deployment-ready"),
        vec!["/apis/apps/v1/namespaces/apps/deployments/web".into()],
    );
    let err = check_release(client, manifest, "apps").await.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Auth, "{err}");
    assert!(err.to_string().contains("Deployment/apps/web"), "{err}");

    let (client, _) = fake_api(cluster("deployment-ready"), vec![]);
    let err = check_release(client, "kind: [", "apps").await.unwrap_err();
    assert!(err.to_string().contains("invalid YAML: line 2"), "{err}");
}

/// In the controller (`share_discovery_process_wide`), a second check reuses what the first
/// one discovered. Its own process: the switch is process-wide.
#[tokio::test]
async fn discovery_is_reused_across_checks_once_shared() {
    if std::env::var_os("HH_SHARED_DISCOVERY_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "discovery_is_reused_across_checks_once_shared",
                "--nocapture",
            ])
            .env("HH_SHARED_DISCOVERY_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    helm_handler::readiness::share_discovery_process_wide();
    let (client, log) = fake_api(cluster("deployment-ready"), vec![]);
    let refs = parse_manifest(MANIFEST, "apps").unwrap();
    fetch_objects(client.clone(), &refs).await.unwrap();
    fetch_objects(client, &refs).await.unwrap();
    let requests = log.lock().unwrap().clone();
    assert_eq!(
        requests.iter().filter(|r| *r == "GET /api/v1").count(),
        1,
        "{requests:?}"
    );
    // A group/version that served nothing (the CRD's, not established) is asked again.
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("GET /apis/example.com/v1") && !r.contains("/namespaces/"))
            .count(),
        2,
        "{requests:?}"
    );
}
