//! End-to-end suite against a real cluster: the local control plane of
//! `test_support::Cluster` (etcd, kube-apiserver, controller-manager, scheduler, kwok), or the
//! cluster `HELM_HANDLER_E2E_KUBECONFIG` names (kind, k3d, …). Skipped, saying why, only
//! outside CI when neither exists.
//!
//! The controller runs under the ServiceAccount and RBAC of `deploy/rbac.yaml` (a token from
//! the TokenRequest API), never as admin.
//!
//! Each test installs the CRD, creates its own namespace, starts the real `helm-handler run`
//! binary on this machine (`--no-leader-election`, the test namespace as system namespace)
//! and a real docker-registry on 127.0.0.1 (the controller pulls from it; the cluster only
//! pulls the workload image, `nginx` from `helm create`, overridable with
//! `HELM_HANDLER_E2E_IMAGE=repo:tag`). The cluster must not run another helm-handler.
//!
//! - `oci_component_lifecycle`: a Component with an OCI source reaches Ready, its Deployment
//!   becomes available, a values change upgrades (revision 2, 2 replicas), deletion
//!   uninstalls, removes the finalizer and the namespace the handler created.
//! - `secret_rotation_is_picked_up`: wrong registry password → Failed (Auth); the Secret is
//!   fixed → Ready well before the slow retry, through the Secret watch.
//! - `claiming_is_exclusive_and_leaves_others_alone`, `failures_name_their_cause`,
//!   `coordination_finalizer_holds_the_uninstall`: the claiming, failure and deletion protocols.
//! - `termination_timeout_then_retry`: status, conditions and `kubectl events` as
//!   docs/component-protocol.md says; a removal that cannot finish → TerminationFailed; the
//!   retry annotation runs it again.
//!
//! More suites share this set-up (`e2e_support`): `e2e_leader.rs` (leader election and
//! failover), `e2e_workloads.rs` (readiness of real workload kinds, an HTTP source, the
//! controller's own chart).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::{Duration, Instant};

use componentkit::crd::Phase;
use e2e_support::{
    Controller, Env, HELM_FINALIZER, delete_namespace, image_values, merge, oci_config, phase,
    wait, wait_gone, wait_ready,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use test_support::RegistryMode;

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn oci_component_lifecycle() {
    let Some(env) = Env::start(
        "hh-e2e-life",
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
    let release_ns = format!("{ns}-web");
    let controller = Controller::start(controller_kc, ns, dir.path());
    let config = |replicas: u32| {
        json!({
            "releaseName": "web",
            "releaseNamespace": release_ns,
            "manageNamespace": true,
            "values": merge(json!({"replicaCount": replicas}), image_values()),
            "source": {"type": "oci", "chart": registry.oci_ref("charts/web", "1.0.0"), "plainHTTP": true},
        })
    };
    let c = componentkit::memory::component(ns, "web", "helm", config(1));
    components.create(&PostParams::default(), &c).await.unwrap();

    wait_ready(components, "web", Duration::from_secs(300)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release_ns);
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(1));
    // What a person sees: the CRD's printer columns and `kubectl wait`.
    let out = target
        .kubectl()
        .args(["get", "components", "-n", ns])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        &header[..4],
        ["NAME", "HANDLER", "PHASE", "READY"],
        "{table}"
    );
    assert!(
        table.lines().any(|l| l
            .split_whitespace()
            .take(4)
            .eq(["web", "helm", "Ready", "True"])),
        "{table}"
    );
    let out = target
        .kubectl()
        .args([
            "wait",
            "--for=condition=Ready",
            "component/web",
            "-n",
            ns,
            "--timeout=30s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = components.get("web").await.unwrap();
    let hs = c.handler_status().unwrap();
    assert_eq!(hs["revision"], 1);
    assert_eq!(hs["namespaceCreated"], true);
    assert!(
        c.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"helm.deployment-orchestrator.io/lifecycle".to_string())
    );

    // Values change → upgrade to revision 2 with 2 replicas.
    components
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": config(2)}})),
        )
        .await
        .unwrap();
    wait("upgrade Ready", Duration::from_secs(300), || async {
        components.get("web").await.ok().is_some_and(|c| {
            c.phase() == Phase::Ready
                && c.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
        })
    })
    .await;
    let c = components.get("web").await.unwrap();
    assert_eq!(c.handler_status().unwrap()["revision"], 2);
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(2));

    // Nothing changed → no new revision, across resyncs and a controller restart.
    drop(controller);
    let controller = Controller::start(controller_kc, ns, dir.path());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let c = components.get("web").await.unwrap();
    assert_eq!(c.phase(), Phase::Ready);
    assert_eq!(
        c.handler_status().unwrap()["revision"],
        2,
        "no revision churn"
    );
    drop(controller);
    let _controller = Controller::start(controller_kc, ns, dir.path());

    // Deletion: uninstalled, finalizer removed (object gone), namespace removed.
    components
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(components, "web", Duration::from_secs(300)).await;
    wait("Deployment gone", Duration::from_secs(120), || async {
        deployments
            .get_opt("web")
            .await
            .map(|d| d.is_none_or(|d| d.metadata.deletion_timestamp.is_some()))
            .unwrap_or(true)
    })
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait(
        "release namespace removed",
        Duration::from_secs(180),
        || async {
            namespaces
                .get_opt(&release_ns)
                .await
                .map(|n| n.is_none_or(|n| n.metadata.deletion_timestamp.is_some()))
                .unwrap_or(false)
        },
    )
    .await;

    delete_namespace(client, ns).await;
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn secret_rotation_is_picked_up() {
    let Some(env) = Env::start(
        "hh-e2e-rot",
        RegistryMode::BasicAuth,
        ("private", "0.1.0"),
        "team",
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

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = |password: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "regcred"},
            "type": "Opaque",
            "stringData": {"username": registry.username().unwrap(), "password": password},
        }))
        .unwrap()
    };
    secrets
        .create(&PostParams::default(), &secret("wrong-password"))
        .await
        .unwrap();
    let _controller = Controller::start(controller_kc, ns, dir.path());

    let c = componentkit::memory::component(
        ns,
        "private",
        "helm",
        json!({
            "releaseName": "private",
            "manageNamespace": false,
            "values": image_values(),
            "source": {
                "type": "oci",
                "chart": registry.oci_ref("team/private", "0.1.0"),
                "plainHTTP": true,
                "authentication": {"method": "registry", "secretRef": {"name": "regcred"}},
            },
        }),
    );
    components.create(&PostParams::default(), &c).await.unwrap();
    wait("Failed with Auth", Duration::from_secs(120), || async {
        phase(components, "private")
            .await
            .is_some_and(|(p, reason)| p == Phase::Failed && reason == "Auth")
    })
    .await;

    // Rotate the Secret: picked up through the Secret watch (the slow retry is 5 minutes).
    let started = Instant::now();
    secrets
        .replace(
            "regcred",
            &PostParams::default(),
            &secret(registry.password().unwrap()),
        )
        .await
        .unwrap();
    wait_ready(components, "private", Duration::from_secs(240)).await;
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "rotation took {:?}",
        started.elapsed()
    );

    components
        .delete("private", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(components, "private", Duration::from_secs(180)).await;
    delete_namespace(client, ns).await;
}

/// Claiming on the real server: two controllers racing for 20 new Components claim each
/// exactly once; another handler's Components and a Component held by another handler's
/// lifecycle finalizer are never touched.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn claiming_is_exclusive_and_leaves_others_alone() {
    let Some(env) = Env::start(
        "hh-e2e-claim",
        RegistryMode::Anonymous,
        ("tiny", "0.1.0"),
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

    let other = componentkit::memory::component(ns, "other", "someone-else", json!({}));
    components
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    let mut held = componentkit::memory::component(
        ns,
        "held",
        "helm",
        oci_config(registry, "held", ns, "charts/tiny"),
    );
    held.metadata.finalizers = Some(vec!["other.deployment-orchestrator.io/lifecycle".into()]);
    components
        .create(&PostParams::default(), &held)
        .await
        .unwrap();

    let kc = controller_kc;
    let _a = Controller::start_named(kc, ns, dir.path(), "replica-a");
    let _b = Controller::start_named(kc, ns, dir.path(), "replica-b");
    let names: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    for name in &names {
        let c = componentkit::memory::component(
            ns,
            name,
            "helm",
            oci_config(registry, name, ns, "charts/tiny"),
        );
        components.create(&PostParams::default(), &c).await.unwrap();
    }
    wait("20 Components Ready", Duration::from_secs(400), || async {
        let list = components.list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .filter(|c| {
                c.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("race-"))
            })
            .filter(|c| c.phase() == Phase::Ready)
            .count()
            == 20
    })
    .await;
    for name in &names {
        let c = components.get(name).await.unwrap();
        let finalizers = c.metadata.finalizers.clone().unwrap_or_default();
        assert_eq!(finalizers, vec![HELM_FINALIZER.to_string()], "{name}");
        let claimed_by = c.status.as_ref().and_then(|s| s.claimed_by.clone());
        assert!(
            matches!(claimed_by.as_deref(), Some("replica-a" | "replica-b")),
            "{name}: {claimed_by:?}"
        );
        // Not asserted: the revision. Without leader election both replicas act on a
        // Component once it carries the (shared) helm finalizer; one run in two on this
        // machine saw a second upgrade (revision 2) from the replica with a stale read. That
        // is why leader election is on by default; sharding is the way to scale out.
        assert!(
            c.handler_status().unwrap()["revision"].as_u64().is_some(),
            "{name}"
        );
    }
    for (name, finalizers) in [
        ("other", Vec::<String>::new()),
        (
            "held",
            vec!["other.deployment-orchestrator.io/lifecycle".to_string()],
        ),
    ] {
        let c = components.get(name).await.unwrap();
        assert_eq!(
            c.metadata.finalizers.unwrap_or_default(),
            finalizers,
            "{name}"
        );
        assert!(
            c.status.as_ref().is_none_or(|s| s.phase.is_none()),
            "{name} got a status: {:?}",
            c.status
        );
    }
    delete_namespace(client, ns).await;
}

/// Failures on the real server: bad config names the field, an unknown chart is NotFound,
/// Pods that never get Ready exceed `deploymentTimeout`.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn failures_name_their_cause() {
    let Some(env) = Env::start(
        "hh-e2e-fail",
        RegistryMode::Anonymous,
        ("slow", "0.1.0"),
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

    let mut bad = oci_config(registry, "bad", ns, "charts/slow");
    bad["source"]["plainHttp"] = json!(true);
    let mut missing = oci_config(registry, "missing", ns, "charts/nope");
    missing["releaseName"] = json!("missing");
    let mut stuck = oci_config(registry, "stuck", ns, "charts/slow");
    stuck["values"] = merge(
        json!({"podLabels": {test_support::cluster::NEVER_READY_LABEL: "1"}}),
        image_values(),
    );
    let mut stuck_c = componentkit::memory::component(ns, "stuck", "helm", stuck);
    stuck_c.spec.deployment_timeout = Some("20s".into());
    for c in [
        componentkit::memory::component(ns, "bad", "helm", bad),
        componentkit::memory::component(ns, "missing", "helm", missing),
        stuck_c,
    ] {
        components.create(&PostParams::default(), &c).await.unwrap();
    }
    let kc = controller_kc;
    let _controller = Controller::start(kc, ns, dir.path());

    let failed = |name: &'static str| {
        let components = components.clone();
        async move {
            let c = components.get(name).await.ok()?;
            (c.phase() == Phase::Failed).then(|| {
                let ready = c.condition("Ready").cloned();
                let reason = ready.as_ref().map(|r| r.reason.clone()).unwrap_or_default();
                let message = c
                    .status
                    .as_ref()
                    .and_then(|s| s.message.clone())
                    .unwrap_or_default();
                (reason, message)
            })
        }
    };
    wait("bad config Failed", Duration::from_secs(60), || async {
        failed("bad").await.is_some()
    })
    .await;
    let (reason, message) = failed("bad").await.unwrap();
    assert_eq!(reason, "Config", "{message}");
    assert!(message.contains("plainHttp"), "names the field: {message}");

    // Another cause, the same reason: the Event users read carries the current note, not
    // the first one of a series.
    components
        .patch(
            "bad",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"releaseNamee": "x"}}})),
        )
        .await
        .unwrap();
    wait(
        "second failure's Event",
        Duration::from_secs(60),
        || async {
            component_events(&env, "bad")
                .iter()
                .rev()
                .find(|(_, reason, _)| reason == "Failed")
                .is_some_and(|(_, _, note)| note.contains("releaseNamee"))
        },
    )
    .await;

    // A name near the 253-character limit still gets its Events.
    let long = format!("long-{}", "x".repeat(235));
    let mut long_config = oci_config(registry, "long", ns, "charts/slow");
    long_config["source"]["plainHttp"] = json!(true);
    components
        .create(
            &PostParams::default(),
            &componentkit::memory::component(ns, &long, "helm", long_config),
        )
        .await
        .unwrap();
    wait(
        "long name Failed with an Event",
        Duration::from_secs(60),
        || async { reasons(&component_events(&env, &long)).contains(&"Failed") },
    )
    .await;

    wait("unknown chart Failed", Duration::from_secs(60), || async {
        failed("missing").await.is_some()
    })
    .await;
    let (reason, message) = failed("missing").await.unwrap();
    assert_eq!(reason, "NotFound", "{message}");
    assert!(
        message.contains("charts/nope"),
        "names the reference: {message}"
    );

    wait(
        "deploymentTimeout exceeded",
        Duration::from_secs(120),
        || async { failed("stuck").await.is_some() },
    )
    .await;
    let (_, message) = failed("stuck").await.unwrap();
    assert!(
        message.to_lowercase().contains("timeout") || message.contains("20s"),
        "{message}"
    );
    delete_namespace(client, ns).await;
}

/// Deletion waits for the composition's coordination finalizer: nothing is uninstalled while
/// it is present; once it goes, the release is uninstalled and the Component is gone.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn coordination_finalizer_holds_the_uninstall() {
    let Some(env) = Env::start(
        "hh-e2e-coord",
        RegistryMode::Anonymous,
        ("held", "0.1.0"),
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
    let mut c = componentkit::memory::component(
        ns,
        "held",
        "helm",
        oci_config(registry, "held", ns, "charts/held"),
    );
    c.metadata.finalizers = Some(vec![componentkit::names::COORDINATION_FINALIZER.into()]);
    components.create(&PostParams::default(), &c).await.unwrap();
    let kc = controller_kc;
    let _controller = Controller::start(kc, ns, dir.path());
    wait_ready(components, "held", Duration::from_secs(120)).await;

    components
        .delete("held", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    assert!(
        deployments.get_opt("held").await.unwrap().is_some(),
        "not uninstalled yet"
    );
    let c = components.get("held").await.unwrap();
    assert_ne!(c.phase(), Phase::Terminating);

    components
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [HELM_FINALIZER]}})),
        )
        .await
        .unwrap();
    wait_gone(components, "held", Duration::from_secs(120)).await;
    wait(
        "Deployment uninstalled",
        Duration::from_secs(60),
        || async {
            deployments
                .get_opt("held")
                .await
                .map(|d| d.is_none_or(|d| d.metadata.deletion_timestamp.is_some()))
                .unwrap_or(false)
        },
    )
    .await;
    delete_namespace(client, ns).await;
}

/// `kubectl events` for a Component: (type, reason, note) in the order they happened.
fn component_events(env: &Env, name: &str) -> Vec<(String, String, String)> {
    let out = env
        .target
        .kubectl()
        .args([
            "events",
            "-n",
            &env.ns,
            "--for",
            &format!("component/{name}"),
        ])
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("reason"), s("message"))
        })
        .collect()
}

fn reasons(events: &[(String, String, String)]) -> Vec<&str> {
    events.iter().map(|(_, r, _)| r.as_str()).collect()
}

/// What a person reads on the real server (status, conditions, `kubectl events`), then a
/// removal that cannot finish (an object of the release held by a finalizer nobody removes):
/// `terminationTimeout` → TerminationFailed; the object released and the retry annotation
/// set → the removal runs again and the Component is gone.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn termination_timeout_then_retry() {
    const HOLD: &str = "e2e.helm-handler.test/hold";
    let Some(env) = Env::start(
        "hh-e2e-term",
        RegistryMode::Anonymous,
        ("unused", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let tgz = test_support::Chart::new("sticky", "0.1.0")
        .file(
            "templates/held.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [\"{HOLD}\"]\ndata:\n  a: b\n"
            ),
        )
        .package(env.dir.path())
        .unwrap();
    env.registry.push(&tgz, "charts").unwrap();
    let Env {
        client,
        ns,
        dir,
        registry,
        components,
        controller_kc,
        ..
    } = &env;
    let release_ns = format!("{ns}-sticky");
    let mut c = componentkit::memory::component(
        ns,
        "sticky",
        "helm",
        managed(oci_config(registry, "sticky", &release_ns, "charts/sticky")),
    );
    c.spec.termination_timeout = Some("15s".into());
    components.create(&PostParams::default(), &c).await.unwrap();
    let _controller = Controller::start(controller_kc, ns, dir.path());
    wait_ready(components, "sticky", Duration::from_secs(180)).await;

    // Status as docs/component-protocol.md describes it.
    let c = components.get("sticky").await.unwrap();
    let status = c.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.claimed_by.as_deref(), Some("controller"));
    for (ty, want_status, want_reason) in [
        ("Ready", "True", "Ready"),
        ("Progressing", "False", ""),
        ("Degraded", "False", "AsExpected"),
    ] {
        let cond = c
            .condition(ty)
            .unwrap_or_else(|| panic!("no {ty} condition"));
        assert_eq!(cond.status, want_status, "{ty}: {cond:?}");
        if !want_reason.is_empty() {
            assert_eq!(cond.reason, want_reason, "{ty}: {cond:?}");
        }
        assert_eq!(cond.observed_generation, Some(1), "{ty}: {cond:?}");
    }
    let hs = c.handler_status().unwrap();
    assert_eq!(hs["releaseName"], "sticky");
    assert_eq!(hs["releaseNamespace"], release_ns.as_str());
    assert_eq!(hs["chart"]["name"], "sticky");
    assert!(
        hs["chart"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let events = component_events(&env, "sticky");
    assert_eq!(
        reasons(&events),
        ["Claimed", "Deploying", "Ready"],
        "{events:?}"
    );
    assert!(events.iter().all(|(ty, _, _)| ty == "Normal"), "{events:?}");

    // Removal cannot finish: the ConfigMap keeps its finalizer, the namespace never drains.
    components
        .delete("sticky", &DeleteParams::default())
        .await
        .unwrap();
    wait("TerminationFailed", Duration::from_secs(120), || async {
        phase(components, "sticky")
            .await
            .is_some_and(|(p, reason)| p == Phase::TerminationFailed && reason == "Timeout")
    })
    .await;
    let c = components.get("sticky").await.unwrap();
    let message = c
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("ConfigMap held"),
        "names what is left: {message}"
    );
    let events = component_events(&env, "sticky");
    assert!(
        events
            .iter()
            .any(|(ty, r, _)| ty == "Warning" && r == "TerminationFailed"),
        "{events:?}"
    );

    // Release the object, ask for a retry: the removal runs again and finishes.
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &release_ns);
    configmaps
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    components
        .patch(
            "sticky",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                componentkit::names::RETRY_ANNOTATION: "1"
            }}})),
        )
        .await
        .unwrap();
    wait_gone(components, "sticky", Duration::from_secs(120)).await;
    let events = component_events(&env, "sticky");
    for reason in ["RetryRequested", "Deleted"] {
        assert!(reasons(&events).contains(&reason), "{reason}: {events:?}");
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait(
        "release namespace removed",
        Duration::from_secs(120),
        || async {
            namespaces
                .get_opt(&release_ns)
                .await
                .map(|n| n.is_none_or(|n| n.metadata.deletion_timestamp.is_some()))
                .unwrap_or(false)
        },
    )
    .await;
    delete_namespace(client, ns).await;
}

/// Removes a cluster-scoped object when dropped (also when the test fails).
struct ClusterObject<'a> {
    target: &'a test_support::Target,
    what: String,
}

impl Drop for ClusterObject<'_> {
    fn drop(&mut self) {
        let _ = self
            .target
            .kubectl()
            .args(["delete", "--ignore-not-found", "--wait=false", &self.what])
            .output();
    }
}

/// One APIService whose backend is down (its Service does not exist: the aggregator
/// answers 503 for its group) must not turn every managed-namespace removal into
/// TerminationFailed: the emptiness check skips what cannot be served, as the namespace
/// controller does.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_apiservice_does_not_block_namespace_removal() {
    let Some(env) = Env::start(
        "hh-e2e-apisvc",
        RegistryMode::Anonymous,
        ("web", "0.1.0"),
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
    let group = format!("broken{}.e2e.helm-handler.test", std::process::id());
    let apiservice = json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": format!("v1.{group}")},
        "spec": {
            "group": group, "version": "v1",
            "service": {"name": "nothing-here", "namespace": ns},
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "insecureSkipTLSVerify": true,
        },
    });
    let _apiservice = ClusterObject {
        target,
        what: format!("apiservice/v1.{group}"),
    };
    let file = dir.path().join("apiservice.json");
    std::fs::write(&file, apiservice.to_string()).unwrap();
    let out = target
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let release_ns = format!("{ns}-web");
    let mut c = componentkit::memory::component(
        ns,
        "web",
        "helm",
        managed(oci_config(registry, "web", &release_ns, "charts/web")),
    );
    c.spec.termination_timeout = Some("60s".into());
    components.create(&PostParams::default(), &c).await.unwrap();
    let _controller = Controller::start(controller_kc, ns, dir.path());
    wait_ready(components, "web", Duration::from_secs(180)).await;
    components
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait(
        "web gone or TerminationFailed",
        Duration::from_secs(120),
        || async {
            match components.get_opt("web").await {
                Ok(None) => true,
                Ok(Some(c)) => c.phase() == Phase::TerminationFailed,
                Err(_) => false,
            }
        },
    )
    .await;
    if let Some(c) = components.get_opt("web").await.unwrap() {
        panic!("removal failed: {:?}", c.status.and_then(|s| s.message));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let gone_or_terminating = namespaces
        .get_opt(&release_ns)
        .await
        .unwrap()
        .is_none_or(|n| n.metadata.deletion_timestamp.is_some());
    assert!(
        gone_or_terminating,
        "the handler deleted the release namespace"
    );
    delete_namespace(client, ns).await;
}

/// `config` with `manageNamespace: true` (the handler creates and removes the release
/// namespace).
fn managed(mut config: serde_json::Value) -> serde_json::Value {
    config["manageNamespace"] = json!(true);
    config
}
