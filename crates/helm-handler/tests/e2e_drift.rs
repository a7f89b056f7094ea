//! Drift detection on the real control plane (see `e2e.rs` for the set-up), the controller
//! checking every 3 s (`--drift-interval=3s`):
//!
//! - `drift_is_detected_reported_and_corrected`: two releases of the same chart, one with
//!   `driftDetection.mode: warn`, one with `enabled`. Nothing drifted → no write to the
//!   Components or the Deployments over several checks. `kubectl scale` of both Deployments
//!   → `warn`: `Drifted=True` naming `Deployment/…` and `/spec/replicas`, an Event, the scale
//!   left alone; `enabled`: scaled back, an Event `DriftCorrected`, no new revision. A
//!   deleted Service of the `enabled` release is recreated, and a later upgrade of it still
//!   goes through (helm keeps owning the fields). The controller log gives the API requests
//!   per check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::Duration;

use componentkit::crd::{Component, Phase};
use e2e_support::{Controller, Env, delete_namespace, image_values, wait};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use test_support::RegistryMode;

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

async fn replicas(api: &Api<Deployment>, name: &str) -> Option<i32> {
    api.get(name).await.ok()?.spec?.replicas
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn drift_is_detected_reported_and_corrected() {
    let Some(env) = Env::start(
        "hh-e2e-drift",
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
    let controller = Controller::start_with(
        controller_kc,
        ns,
        dir.path(),
        "controller",
        &["--drift-interval=3s"],
    );
    for (name, mode) in [("warned", "warn"), ("fixed", "enabled")] {
        let config = json!({
            "releaseName": name,
            "manageNamespace": false,
            "values": image_values(),
            "driftDetection": {"mode": mode},
            "source": {"type": "oci", "chart": registry.oci_ref("charts/web", "1.0.0"), "plainHTTP": true},
        });
        let c = componentkit::memory::component(ns, name, "helm", config);
        components.create(&PostParams::default(), &c).await.unwrap();
    }
    for name in ["warned", "fixed"] {
        wait("Ready, drift checked", Duration::from_secs(300), || async {
            components.get(name).await.ok().is_some_and(|c| {
                c.phase() == Phase::Ready && drifted(&c).is_some_and(|d| d.0 == "False")
            })
        })
        .await;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);

    // Nothing drifted: several checks, no write at all.
    let versions = || async {
        let mut out = Vec::new();
        for name in ["warned", "fixed"] {
            let c = components.get(name).await.unwrap();
            out.push(c.metadata.resource_version.unwrap());
            let d = deployments.get(&format!("{name}-web")).await.unwrap();
            out.push(d.metadata.resource_version.unwrap());
        }
        out
    };
    let before = versions().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(versions().await, before, "no write while nothing drifted");

    // kubectl scale both.
    for name in ["warned-web", "fixed-web"] {
        let out = target
            .kubectl()
            .args(["scale", "deployment", name, "-n", ns, "--replicas=3"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let drift_of = |name: &'static str| async move {
        components.get(name).await.ok().and_then(|c| drifted(&c))
    };
    wait("warn: Drifted=True", Duration::from_secs(60), || async {
        drift_of("warned").await.is_some_and(|d| d.0 == "True")
    })
    .await;
    let (_, reason, message) = drifted(&components.get("warned").await.unwrap()).unwrap();
    assert_eq!(reason, "DriftDetected");
    assert!(
        message.contains(&format!("Deployment/{ns}/warned-web /spec/replicas")),
        "{message}"
    );
    wait("enabled: scaled back", Duration::from_secs(60), || async {
        replicas(&deployments, "fixed-web").await == Some(1)
    })
    .await;
    // The object is corrected before the reconcile that corrected it reports it.
    wait(
        "enabled: correction reported",
        Duration::from_secs(30),
        || async {
            drift_of("fixed")
                .await
                .is_some_and(|d| d.1 == "DriftCorrected")
        },
    )
    .await;
    assert_eq!(
        replicas(&deployments, "warned-web").await,
        Some(3),
        "warn leaves it"
    );
    let fixed = components.get("fixed").await.unwrap();
    assert_eq!(
        fixed.handler_status().unwrap()["revision"],
        1,
        "no revision"
    );
    assert_eq!(fixed.phase(), Phase::Ready);
    let out = target
        .kubectl()
        .args(["events", "-n", ns])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("DriftDetected"), "{events}");
    assert!(events.contains("DriftCorrected"), "{events}");
    assert!(events.contains("/spec/replicas"), "{events}");

    // A deleted object is recreated.
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let uid = services.get("fixed-web").await.unwrap().metadata.uid;
    services
        .delete("fixed-web", &DeleteParams::default())
        .await
        .unwrap();
    wait("Service recreated", Duration::from_secs(60), || async {
        services
            .get_opt("fixed-web")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.metadata.uid != uid)
    })
    .await;
    assert_eq!(
        components
            .get("fixed")
            .await
            .unwrap()
            .handler_status()
            .unwrap()["revision"],
        1
    );

    // helm still owns what the correction re-applied: an upgrade after it goes through.
    let mut config = components.get("fixed").await.unwrap().spec.config.unwrap();
    config["values"]["replicaCount"] = json!(2);
    components
        .patch(
            "fixed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": config}})),
        )
        .await
        .unwrap();
    wait(
        "upgraded to revision 2",
        Duration::from_secs(120),
        || async {
            components.get("fixed").await.ok().is_some_and(|c| {
                c.phase() == Phase::Ready && c.handler_status().is_some_and(|h| h["revision"] == 2)
            })
        },
    )
    .await;
    assert_eq!(replicas(&deployments, "fixed-web").await, Some(2));

    let log = std::fs::read_to_string(&controller.log).unwrap();
    let costs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("drift checked"))
        .filter_map(|l| l.split("requests=").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    eprintln!(
        "drift checks: {}, API requests per check: {:?}",
        costs.len(),
        costs.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(!costs.is_empty());

    for name in ["warned", "fixed"] {
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
