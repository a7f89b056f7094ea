//! Readiness of real workloads and the other source type on the real control plane (see
//! `e2e.rs` for the set-up; kwok plays the kubelet, so Pods become Running and Ready without
//! running an image).
//!
//! - `workload_kinds_become_ready`: one chart with a StatefulSet, a DaemonSet, a Job, a CRD
//!   (from `crds/`) and a custom resource of it. The Component is Ready only once the
//!   StatefulSet's replicas are ready, the DaemonSet's Pod on the fake Node is ready, the Job
//!   has completed and the CRD is Established, and those objects really are so.
//! - `http_repository_component_becomes_ready`: a Component whose chart comes from a real
//!   HTTP chart repository (nginx serving a `helm repo index` directory), resolved by a
//!   constraint, reaches Ready; its Deployment is available.
//! - `controller_chart_installs`: `charts/helm-handler` installs with the real helm; its
//!   objects are accepted by the API server and its RBAC binds (the controller image itself
//!   does not run under kwok: kwok fakes the Pod's status).
//!
//! Kinds kwok cannot make ready, so not shown here: a PersistentVolumeClaim (no provisioner
//! binds it) and a `LoadBalancer` Service (no cloud controller gives it an address).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::{Controller, Env, can_i, delete_namespace, image_values, wait_ready};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;
use test_support::{Chart, HttpRepo, HttpRepoOptions, RegistryMode};

const CRD_GROUP: &str = "e2e.helm-handler.test";

fn kinds_chart() -> Chart {
    let image =
        "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}";
    Chart::new("kinds", "0.1.0")
        .file(
            "templates/statefulset.yaml",
            &format!(
                r#"apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {{app: db}}
  template:
    metadata:
      labels: {{app: db}}
    spec:
      containers:
        - name: db
          image: "{image}"
"#
            ),
        )
        .file(
            "templates/daemonset.yaml",
            &format!(
                r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {{app: agent}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:
      containers:
        - name: agent
          image: "{image}"
"#
            ),
        )
        .file(
            "templates/job.yaml",
            &format!(
                r#"apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: "{image}"
"#
            ),
        )
        .file(
            "crds/widgets.yaml",
            &format!(
                r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{CRD_GROUP}
spec:
  group: {CRD_GROUP}
  names: {{kind: Widget, plural: widgets, singular: widget}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer}}
"#
            ),
        )
        .file(
            "templates/widget.yaml",
            &format!(
                r#"apiVersion: {CRD_GROUP}/v1
kind: Widget
metadata:
  name: small
spec:
  size: 3
"#
            ),
        )
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn workload_kinds_become_ready() {
    let Some(env) = Env::start(
        "hh-e2e-kinds",
        RegistryMode::Anonymous,
        ("unused", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Env {
        client,
        ns,
        dir,
        registry,
        components,
        controller_kc,
        ..
    } = &env;
    let tgz = kinds_chart().package(dir.path()).unwrap();
    registry.push(&tgz, "charts").unwrap();
    let _controller = Controller::start(controller_kc, ns, dir.path());
    let c = componentkit::memory::component(
        ns,
        "kinds",
        "helm",
        json!({
            "releaseName": "kinds",
            "values": image_values(),
            "source": {"type": "oci", "chart": registry.oci_ref("charts/kinds", "0.1.0"), "plainHTTP": true},
        }),
    );
    components.create(&PostParams::default(), &c).await.unwrap();
    wait_ready(components, "kinds", Duration::from_secs(240)).await;

    // Ready means each object really is ready on the server.
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let s = sts.get("db").await.unwrap().status.unwrap();
    assert_eq!(s.ready_replicas, Some(2), "StatefulSet: {s:?}");
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let d = ds.get("agent").await.unwrap().status.unwrap();
    assert!(
        d.desired_number_scheduled >= 1 && d.number_ready == d.desired_number_scheduled,
        "DaemonSet: {d:?}"
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let j = jobs.get("migrate").await.unwrap().status.unwrap();
    assert_eq!(j.succeeded, Some(1), "Job: {j:?}");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(&format!("widgets.{CRD_GROUP}")).await.unwrap();
    assert!(
        crd.status
            .unwrap()
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let widget = ApiResource {
        group: CRD_GROUP.into(),
        version: "v1".into(),
        api_version: format!("{CRD_GROUP}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &widget);
    let w = widgets.get("small").await.unwrap();
    assert_eq!(w.data["spec"]["size"], 3);

    delete_namespace(client, ns).await;
    let _ = crds
        .delete(&format!("widgets.{CRD_GROUP}"), &Default::default())
        .await;
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn http_repository_component_becomes_ready() {
    let Some(env) = Env::start(
        "hh-e2e-http",
        RegistryMode::Anonymous,
        ("unused", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Env {
        client,
        ns,
        dir,
        components,
        controller_kc,
        ..
    } = &env;
    let charts = dir.path().join("repo");
    std::fs::create_dir_all(&charts).unwrap();
    for version in ["1.2.0", "1.2.3", "2.0.0"] {
        Chart::create("site", version).package(&charts).unwrap();
    }
    let repo = HttpRepo::start(&charts, HttpRepoOptions::default()).unwrap();
    let _controller = Controller::start(controller_kc, ns, dir.path());
    let c = componentkit::memory::component(
        ns,
        "site",
        "helm",
        json!({
            "releaseName": "site",
            "values": image_values(),
            "source": {
                "type": "http",
                "repository": {"name": "local", "url": repo.url()},
                "chart": {"name": "site", "version": "^1.2"},
            },
        }),
    );
    components.create(&PostParams::default(), &c).await.unwrap();
    wait_ready(components, "site", Duration::from_secs(240)).await;
    let c = components.get("site").await.unwrap();
    let hs = c.handler_status().unwrap();
    assert_eq!(
        hs["chart"]["version"], "1.2.3",
        "constraint ^1.2 → 1.2.3: {hs}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = deployments.get("site").await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(1));
    assert!(
        repo.access_log()
            .iter()
            .any(|e| e.path.ends_with("site-1.2.3.tgz") && e.status == 200),
        "the chart came from the repository"
    );
    delete_namespace(client, ns).await;
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn controller_chart_installs() {
    let Some(env) = Env::start(
        "hh-e2e-chart",
        RegistryMode::Anonymous,
        ("unused", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Env {
        target,
        client,
        ns,
        dir,
        ..
    } = &env;
    let chart = test_support::workspace_root().join("charts/helm-handler");
    let home = dir.path().join("helm-home");
    std::fs::create_dir_all(&home).unwrap();
    // Cluster-scoped names carry the release name: one per test run.
    let release = format!("hh{}", std::process::id());
    let out = test_support::helm_command(&home)
        .arg("install")
        .arg(&release)
        .arg(&chart)
        .args(["--namespace", ns, "--kubeconfig"])
        .arg(target.kubeconfig())
        .args([
            "--set",
            "rbac.releases.create=false",
            "--wait",
            "--timeout",
            "120s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The chart's ServiceAccount gets what the controller needs, and (releases RBAC off)
    // nothing more.
    let sa = format!("system:serviceaccount:{ns}:{release}-helm-handler");
    let can = |verb: &str, resource: &str, all_namespaces: bool| {
        can_i(
            target,
            &sa,
            verb,
            resource,
            (!all_namespaces).then_some(ns.as_str()),
        )
    };
    for (verb, resource, all) in [
        ("watch", "components.deployment-orchestrator.io", true),
        (
            "patch",
            "components.deployment-orchestrator.io/status",
            true,
        ),
        ("list", "secrets", true),
        ("create", "events.events.k8s.io", true),
        ("update", "leases.coordination.k8s.io", false),
    ] {
        assert!(can(verb, resource, all), "{sa} cannot {verb} {resource}");
    }
    assert!(
        !can("create", "clusterroles.rbac.authorization.k8s.io", true),
        "{sa} must not create ClusterRoles with rbac.releases.create=false"
    );
    // The controller's Deployment was accepted and kwok reports it available.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let list = deployments.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1, "one controller Deployment");
    let out = test_support::helm_command(&home)
        .args(["uninstall", &release, "--namespace", ns, "--kubeconfig"])
        .arg(target.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    delete_namespace(client, ns).await;
}
