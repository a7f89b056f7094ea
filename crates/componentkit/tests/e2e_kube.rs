//! componentkit against a real API server: the local control plane of
//! `test_support::Cluster`, or the cluster `HELM_HANDLER_E2E_KUBECONFIG` names (kind, k3d, …).
//! Skipped, saying why, only outside CI when neither exists.
//!
//! Uses the handler name `componentkit-e2e` (no clash with a running helm-handler) and its
//! own namespace, deleted at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use componentkit::api::{ApiError, ComponentApi};
use componentkit::controller::{ControllerOptions, run_until};
use componentkit::crd::{Component, Phase};
use componentkit::decision::Operation;
use componentkit::handler::{ErrorCategory, HandlerOutcome};
use componentkit::kube_api::KubeComponentApi;
use componentkit::memory::component;
use componentkit::names;
use componentkit::testing::ScriptedHandler;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt};
use serde_json::json;

const HANDLER: &str = "componentkit-e2e";

async fn client() -> Option<Client> {
    let target = test_support::e2e_target()?;
    let kc = Kubeconfig::read_from(target.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Some(Client::try_from(config).unwrap())
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn setup(client: &Client, ns: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Component::crd();
    crds.patch(
        names::CRD_NAME,
        &PatchParams::apply("componentkit-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    wait_until("CRD established", Duration::from_secs(60), || async {
        crds.get(names::CRD_NAME)
            .await
            .ok()
            .and_then(|c| c.status)
            .is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let _ = nss
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await;
}

async fn teardown(client: &Client, ns: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    let _ = nss.delete(ns, &DeleteParams::default()).await;
}

fn namespace(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("ck-e2e-{tag}-{}", n % 1_000_000)
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test]
async fn kube_api_semantics() {
    let Some(client) = client().await else { return };
    let ns = namespace("api");
    setup(&client, &ns).await;
    let api = KubeComponentApi::new(client.clone(), "componentkit-e2e", None);
    let comps: Api<Component> = Api::namespaced(client.clone(), &ns);
    let c = comps
        .create(
            &PostParams::default(),
            &component(&ns, "a", HANDLER, json!({})),
        )
        .await
        .unwrap();

    // Stale resourceVersion → Conflict.
    comps
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    let stale = api.set_finalizers(&c, vec!["a.example.com/x".into()]).await;
    assert!(matches!(stale, Err(ApiError::Conflict(_))), "{stale:?}");
    let fresh = api.get(&ns, "a").await.unwrap().unwrap();
    let updated = api
        .set_finalizers(&fresh, vec!["a.example.com/x".into()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        updated.metadata.finalizers.as_deref(),
        Some(&["a.example.com/x".to_string()][..])
    );

    // Status merge patches keep untouched fields.
    api.patch_status(
        &ns,
        "a",
        json!({"status": {"phase": "Deploying", "handlerStatus": {"k": "v"}}}),
    )
    .await
    .unwrap();
    let after = api
        .patch_status(&ns, "a", json!({"status": {"phase": "Ready"}}))
        .await
        .unwrap();
    assert_eq!(after.phase(), Phase::Ready);
    assert_eq!(after.handler_status(), Some(&json!({"k": "v"})));
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status writes do not bump the generation"
    );

    // Finalizers hold deletion; removing the last one deletes.
    comps.delete("a", &DeleteParams::default()).await.unwrap();
    let held = api.get(&ns, "a").await.unwrap().unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(api.set_finalizers(&held, vec![]).await.unwrap().is_none());
    wait_until("deleted", Duration::from_secs(30), || async {
        api.get(&ns, "a").await.unwrap().is_none()
    })
    .await;
    teardown(&client, &ns).await;
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test]
async fn controller_lifecycle_with_leader_election() {
    let Some(client) = client().await else { return };
    let ns = namespace("ctl");
    setup(&client, &ns).await;
    let handler = Arc::new(ScriptedHandler::new(HANDLER));
    handler.push(
        Operation::Apply,
        HandlerOutcome::in_progress(Duration::from_secs(1), "rolling out")
            .with_status(json!({"revision": 1})),
    );
    handler.push(
        Operation::Apply,
        HandlerOutcome::failed(ErrorCategory::Config, "bad value"),
    );
    let opts =
        ControllerOptions::new("e2e-replica").with_leader_election("componentkit-e2e-leader", &ns);
    let opts = ControllerOptions {
        namespace: Some(ns.clone()),
        ..opts
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ctl = tokio::spawn(run_until(client.clone(), handler.clone(), opts, stop_rx));

    let comps: Api<Component> = Api::namespaced(client.clone(), &ns);
    comps
        .create(
            &PostParams::default(),
            &component(&ns, "web", HANDLER, json!({"v": 1})),
        )
        .await
        .unwrap();
    let phase = |comps: Api<Component>| async move {
        comps.get_opt("web").await.unwrap().map(|c| c.phase())
    };
    wait_until("Ready", Duration::from_secs(60), || {
        let comps = comps.clone();
        async move { phase(comps).await == Some(Phase::Ready) }
    })
    .await;
    let c = comps.get("web").await.unwrap();
    assert!(
        c.metadata
            .finalizers
            .clone()
            .unwrap()
            .contains(&names::lifecycle_finalizer(HANDLER))
    );
    assert_eq!(
        c.status.as_ref().unwrap().claimed_by.as_deref(),
        Some("e2e-replica")
    );
    assert_eq!(c.handler_status(), Some(&json!({"revision": 1})));

    // A spec change re-applies; this apply fails permanently.
    comps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"v": 2}}})),
        )
        .await
        .unwrap();
    wait_until("Failed", Duration::from_secs(60), || {
        let comps = comps.clone();
        async move { phase(comps).await == Some(Phase::Failed) }
    })
    .await;
    let c = comps.get("web").await.unwrap();
    assert_eq!(c.condition("Ready").unwrap().reason, "Config");

    // Retry annotation → apply again (default: in progress, then ready).
    comps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {names::RETRY_ANNOTATION: "1"}}})),
        )
        .await
        .unwrap();
    wait_until("Ready after retry", Duration::from_secs(60), || {
        let comps = comps.clone();
        async move { phase(comps).await == Some(Phase::Ready) }
    })
    .await;

    // Deletion runs delete / check_deleted and releases the finalizer.
    comps.delete("web", &DeleteParams::default()).await.unwrap();
    wait_until("deleted", Duration::from_secs(60), || {
        let comps = comps.clone();
        async move { phase(comps).await.is_none() }
    })
    .await;
    assert_eq!(handler.count(Operation::Apply), 3);
    assert!(handler.count(Operation::Delete) >= 1);

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), ctl)
        .await
        .unwrap()
        .unwrap();
    teardown(&client, &ns).await;
}
