//! `valuesFrom` on the real control plane (see `e2e.rs` for the set-up): the controller runs
//! under `deploy/rbac.yaml`'s ServiceAccount and reads a Secret and a ConfigMap of the
//! Component's namespace.
//!
//! - `values_from_secret_and_config_map`: a Component with values from a Secret (a pod
//!   annotation) and a ConfigMap (`targetPath: replicaCount`) reaches Ready with the merged
//!   values in its Deployment; an edit of the ConfigMap upgrades to revision 2 within seconds
//!   (the ConfigMap watch); a metadata-only edit and no edit never upgrade; a missing
//!   non-optional ConfigMap fails `NotFound` naming it, and creating it makes the Component
//!   Ready (no wait for the slow retry); the Secret's value is in no Event, no Component
//!   status and not in the controller's log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::{Duration, Instant};

use componentkit::crd::{Component, Phase};
use e2e_support::{Controller, Env, delete_namespace, image_values, phase, wait, wait_ready};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use test_support::RegistryMode;

const SECRET_VALUE: &str = "e2e-hunter2-not-for-logs";

async fn revision(components: &Api<Component>, name: &str) -> Option<u64> {
    let c = components.get(name).await.ok()?;
    c.handler_status()?.get("revision")?.as_u64()
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn values_from_secret_and_config_map() {
    let Some(env) = Env::start(
        "hh-e2e-values",
        RegistryMode::Anonymous,
        ("web", "1.0.0"),
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
        registry,
        components,
        controller_kc,
        ..
    } = &env;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "web-secrets"},
        "stringData": {"values.yaml": format!("podAnnotations:\n  example.com/db-password: {SECRET_VALUE}\n")},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let env_map = |name: &str, replicas: &str| -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "data": {"replicas": replicas},
        }))
        .unwrap()
    };
    config_maps
        .create(&PostParams::default(), &env_map("web-env", "2"))
        .await
        .unwrap();
    let controller = Controller::start(controller_kc, ns, dir.path());

    let config = |config_map: &str| {
        json!({
            "releaseName": config_map.trim_end_matches("-env"),
            "manageNamespace": false,
            "values": image_values(),
            "valuesFrom": [
                {"kind": "Secret", "name": "web-secrets"},
                {"kind": "ConfigMap", "name": config_map, "valuesKey": "replicas", "targetPath": "replicaCount"},
            ],
            "source": {"type": "oci", "chart": registry.oci_ref("charts/web", "1.0.0"), "plainHTTP": true},
        })
    };
    let c = componentkit::memory::component(ns, "web", "helm", config("web-env"));
    components.create(&PostParams::default(), &c).await.unwrap();
    wait_ready(components, "web", Duration::from_secs(300)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = deployments.get("web").await.unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(2), "replicaCount from the ConfigMap");
    let annotations = spec.template.metadata.unwrap().annotations.unwrap();
    assert_eq!(
        annotations
            .get("example.com/db-password")
            .map(String::as_str),
        Some(SECRET_VALUE),
        "podAnnotations from the Secret"
    );
    assert_eq!(revision(components, "web").await, Some(1));

    // An edit of the ConfigMap upgrades, through the ConfigMap watch.
    let started = Instant::now();
    config_maps
        .replace("web-env", &PostParams::default(), &env_map("web-env", "3"))
        .await
        .unwrap();
    wait("revision 2", Duration::from_secs(60), || async {
        revision(components, "web").await == Some(2)
    })
    .await;
    let upgraded_after = started.elapsed();
    eprintln!("ConfigMap edit → revision 2 in {upgraded_after:?}");
    assert!(
        upgraded_after < Duration::from_secs(15),
        "{upgraded_after:?}"
    );
    wait("3 replicas", Duration::from_secs(120), || async {
        deployments
            .get("web")
            .await
            .ok()
            .and_then(|d| d.spec?.replicas)
            == Some(3)
    })
    .await;
    wait_ready(components, "web", Duration::from_secs(120)).await;

    // A metadata-only edit (same data) and then no edit: no new revision.
    config_maps
        .patch(
            "web-env",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    secrets
        .patch(
            "web-secrets",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        revision(components, "web").await,
        Some(2),
        "no revision churn"
    );
    assert_eq!(phase(components, "web").await.unwrap().0, Phase::Ready);

    // A missing, non-optional source: NotFound naming it; created → Ready at once.
    let c = componentkit::memory::component(ns, "api", "helm", config("api-env"));
    components.create(&PostParams::default(), &c).await.unwrap();
    wait("Failed NotFound", Duration::from_secs(120), || async {
        phase(components, "api")
            .await
            .is_some_and(|(p, reason)| p == Phase::Failed && reason == "NotFound")
    })
    .await;
    let failed = components.get("api").await.unwrap();
    let message = failed.status.as_ref().unwrap().message.clone().unwrap();
    assert!(
        message.contains(&format!(
            "ConfigMap `{ns}/api-env` (field `valuesFrom[1]`) not found"
        )),
        "{message}"
    );
    let started = Instant::now();
    config_maps
        .create(&PostParams::default(), &env_map("api-env", "1"))
        .await
        .unwrap();
    wait_ready(components, "api", Duration::from_secs(120)).await;
    eprintln!("ConfigMap created → Ready in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(120));

    // The Secret's value: in no Event, no status, not in the controller's log.
    let out = target
        .kubectl()
        .args(["events", "-n", ns, "-o", "yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("web"), "events were listed: {events}");
    assert!(!events.contains(SECRET_VALUE), "{events}");
    for name in ["web", "api"] {
        let c = components.get(name).await.unwrap();
        let status = serde_json::to_string(&c.status).unwrap();
        assert!(!status.contains(SECRET_VALUE), "{status}");
    }
    let log = std::fs::read_to_string(&controller.log).unwrap();
    assert!(
        log.contains("referenced ConfigMap changed"),
        "the watch fired"
    );
    assert!(
        !log.contains(SECRET_VALUE),
        "the controller log holds the value"
    );

    for name in ["web", "api"] {
        components
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    wait("Components gone", Duration::from_secs(180), || async {
        components
            .list(&Default::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await;
    drop(controller);
    delete_namespace(client, ns).await;
}
