//! Tenancy on the real control plane, with real RBAC (see `e2e.rs` for the set-up): a
//! Component acts as a ServiceAccount of its own namespace, so it can do only what that
//! ServiceAccount may do.
//!
//! - `a_tenant_service_account_bounds_its_components`: the controller with its full rights
//!   (`deploy/rbac.yaml`), no tenancy flags. A tenant ServiceAccount with a Role in its own
//!   namespace only: its Component is Ready; the same chart aimed at another namespace is
//!   Failed `auth` naming the ServiceAccount and the forbidden resource; a chart with a
//!   ClusterRole is Failed `auth` naming verb, resource and cluster scope. Removal runs as
//!   the tenant: with the ServiceAccount deleted it stays Terminating with an `auth` message
//!   naming it (nothing is uninstalled with the controller's rights), and once the
//!   ServiceAccount is recreated the release is uninstalled and the Component is gone.
//! - `lockdown_confines_components_to_their_namespace`: the controller under the chart's
//!   lockdown RBAC (`lockdown.enabled=true`: no releases role; checked with `kubectl auth
//!   can-i`), run with `--default-service-account helm-deployer
//!   --no-cross-namespace-releases`. A namespace with that ServiceAccount (its Role bound
//!   to the group `system:serviceaccounts:<ns>`: groups apply without `--kube-as-group`):
//!   the Component is Ready and uninstalls; a release aimed at another namespace is
//!   refused (`config`, naming `releaseNamespace`) before any helm call; a namespace
//!   without the ServiceAccount: Failed `config` naming it; both are deleted without
//!   uninstalling anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use componentkit::crd::{Component, Phase};
use e2e_support::{
    Controller, Env, can_i, delete_namespace, oci_config, phase, succeeded, wait,
    wait_deployment_gone, wait_gone, wait_ready,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use test_support::{Chart, RegistryMode, Target};

/// `kubectl apply -f -` of `yaml`, as admin.
fn apply(target: &Target, yaml: &str) {
    let mut child = target
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    succeeded(child.wait_with_output().unwrap());
}

/// A tenant: ServiceAccount `sa` in `ns` with every right in `ns` and none elsewhere (a
/// Role, not a ClusterRole), bound to `subject` (the ServiceAccount, or a group).
fn tenant(ns: &str, sa: &str, subject: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {sa}, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: tenant, namespace: {ns}}}
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: tenant, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: tenant}}
subjects:
  - {subject}
"#
    )
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

async fn create(client: &Client, ns: &str, name: &str, config: serde_json::Value) {
    let api: Api<Component> = Api::namespaced(client.clone(), ns);
    let c = componentkit::memory::component(ns, name, "helm", config);
    api.create(&PostParams::default(), &c).await.unwrap();
}

/// Waits until `name` is Failed with `reason` (the `Ready` condition's); returns the message.
async fn wait_failed(components: &Api<Component>, name: &str, reason: &str) -> String {
    wait(
        &format!("{name} Failed"),
        Duration::from_secs(180),
        || async {
            phase(components, name)
                .await
                .is_some_and(|(p, _)| p == Phase::Failed)
        },
    )
    .await;
    let c = components.get(name).await.unwrap();
    let got = c.condition("Ready").map(|c| c.reason.clone()).unwrap();
    let message = c.status.and_then(|s| s.message).unwrap_or_default();
    eprintln!("{name}: {got}: {message}");
    assert_eq!(got, reason, "{message}");
    message
}

/// Waits until `name` is Ready, deployed as ServiceAccount `service_account`.
async fn wait_ready_as(components: &Api<Component>, name: &str, service_account: &str) {
    wait_ready(components, name, Duration::from_secs(300)).await;
    let c = components.get(name).await.unwrap();
    assert_eq!(
        c.handler_status().unwrap()["serviceAccountName"],
        service_account
    );
}

fn with(mut config: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// helm's release records of a namespace (`owner=helm` Secrets).
async fn release_records(client: &Client, ns: &str) -> usize {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .unwrap()
        .items
        .len()
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_service_account_bounds_its_components() {
    let Some(env) = Env::start(
        "hh-e2e-tenant",
        RegistryMode::Anonymous,
        ("web", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let started = Instant::now();
    let Env {
        target,
        client,
        ns,
        dir,
        registry,
        controller_kc,
        ..
    } = &env;
    // A chart with a ClusterRole (cluster-scoped name: one per run).
    let tgz = Chart::new("clusterwide", "0.1.0")
        .file(
            "templates/clusterrole.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {{ .Release.Namespace }}-reader\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"pods\"]\n    verbs: [\"get\"]\n",
        )
        .package(dir.path())
        .unwrap();
    registry.push(&tgz, "charts").unwrap();

    let (team_a, team_b) = (format!("{ns}-a"), format!("{ns}-b"));
    namespace(client, &team_a).await;
    namespace(client, &team_b).await;
    apply(
        target,
        &tenant(
            &team_a,
            "deployer",
            &format!("{{kind: ServiceAccount, name: deployer, namespace: {team_a}}}"),
        ),
    );
    let components: Api<Component> = Api::namespaced(client.clone(), &team_a);
    let controller = Controller::start(controller_kc, ns, dir.path());
    let as_tenant = json!({"serviceAccountName": "deployer", "manageNamespace": false});

    for (name, release_namespace, chart) in [
        // In its own namespace: Ready, as the tenant.
        ("web", &team_a, "charts/web"),
        // Aimed at another namespace, where the tenant has no rights.
        ("elsewhere", &team_b, "charts/web"),
        // A chart that creates a ClusterRole.
        ("clusterwide", &team_a, "charts/clusterwide"),
    ] {
        let config = oci_config(registry, name, release_namespace, chart);
        create(client, &team_a, name, with(config, as_tenant.clone())).await;
    }

    wait_ready_as(&components, "web", "deployer").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &team_a);
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(1));
    let ready_after = started.elapsed();

    let message = wait_failed(&components, "elsewhere", "Auth").await;
    for part in [
        format!("ServiceAccount {team_a}/deployer cannot"),
        "secrets".to_string(),
        format!("in namespace \"{team_b}\""),
    ] {
        assert!(message.contains(&part), "{part}: {message}");
    }
    let other: Api<Deployment> = Api::namespaced(client.clone(), &team_b);
    assert!(
        other
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(release_records(client, &team_b).await, 0);

    let message = wait_failed(&components, "clusterwide", "Auth").await;
    for part in [
        format!("ServiceAccount {team_a}/deployer cannot get clusterroles"),
        "clusterroles (API group \"rbac.authorization.k8s.io\") at the cluster scope".to_string(),
        format!("ClusterRole \"{team_a}-reader\""),
    ] {
        assert!(message.contains(&part), "{part}: {message}");
    }
    // (helm reads each object of the chart before it creates anything: the first refusal is
    // the `get` of the ClusterRole.)
    let clusterroles: Api<ClusterRole> = Api::all(client.clone());
    assert!(
        clusterroles
            .get_opt(&format!("{team_a}-reader"))
            .await
            .unwrap()
            .is_none(),
        "the ClusterRole was not created"
    );

    // Removal as the tenant: its ServiceAccount deleted, nothing is uninstalled...
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &team_a);
    accounts
        .delete("deployer", &DeleteParams::default())
        .await
        .unwrap();
    components
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait(
        "removal blocked on the missing ServiceAccount",
        Duration::from_secs(60),
        || async {
            components
                .get_opt("web")
                .await
                .ok()
                .flatten()
                .is_some_and(|c| {
                    c.phase() == Phase::Terminating
                        && c.status.and_then(|s| s.message).is_some_and(|m| {
                            m.contains(&format!("ServiceAccount `{team_a}/deployer`"))
                                && m.contains("not removed with the controller's own rights")
                        })
                })
        },
    )
    .await;
    let c = components.get("web").await.unwrap();
    assert_eq!(
        c.condition("Degraded").map(|c| c.reason.clone()).as_deref(),
        Some("Auth")
    );
    assert!(deployments.get_opt("web").await.unwrap().is_some());
    assert_eq!(release_records(client, &team_a).await, 1, "web's");
    // ...recreated (its RoleBinding names it): uninstalled as it, and gone.
    let recreated = Instant::now();
    apply(
        target,
        &tenant(
            &team_a,
            "deployer",
            &format!("{{kind: ServiceAccount, name: deployer, namespace: {team_a}}}"),
        ),
    );
    wait_gone(&components, "web", Duration::from_secs(120)).await;
    let removal_after_recreate = recreated.elapsed();
    wait_deployment_gone(&deployments, "web", Duration::from_secs(60)).await;
    // The refused ones go without touching what they could not reach.
    for name in ["elsewhere", "clusterwide"] {
        components
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&components, name, Duration::from_secs(120)).await;
    }
    assert_eq!(release_records(client, &team_a).await, 0);
    eprintln!(
        "measured: web Ready {ready_after:?} after start; removal {removal_after_recreate:?} after the ServiceAccount was recreated; test {:?}",
        started.elapsed()
    );
    drop(controller);
    for n in [&team_a, &team_b, ns] {
        delete_namespace(client, n).await;
    }
}

/// The chart's RBAC with `lockdown.enabled=true`, applied for a controller ServiceAccount
/// `lockdown-<pid>` in `namespace`; returns a kubeconfig of it.
fn lockdown_controller(env: &Env, namespace: &str, release: &str) -> std::path::PathBuf {
    let home = env.dir.path().join("helm-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = test_support::helm_command(&home)
        .arg("template")
        .arg(release)
        .arg(test_support::workspace_root().join("charts/helm-handler"))
        .args([
            "--namespace",
            namespace,
            "--set",
            &format!("lockdown.enabled=true,systemNamespace={namespace}"),
            "--show-only",
            "templates/rbac.yaml",
            "--show-only",
            "templates/serviceaccount.yaml",
        ])
        .output()
        .unwrap();
    apply(&env.target, &succeeded(out));
    let path = env.dir.path().join("lockdown.kubeconfig");
    env.target
        .service_account_kubeconfig(namespace, &format!("{release}-helm-handler"), &path)
        .unwrap();
    path
}

/// Removes the chart's cluster-scoped RBAC when dropped (also when the test fails).
struct ClusterRbac<'a> {
    target: &'a Target,
    name: String,
}

impl Drop for ClusterRbac<'_> {
    fn drop(&mut self) {
        for kind in ["clusterrolebinding", "clusterrole"] {
            let _ = self
                .target
                .kubectl()
                .args([
                    "delete",
                    "--ignore-not-found",
                    "--wait=false",
                    kind,
                    &self.name,
                ])
                .output();
        }
    }
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn lockdown_confines_components_to_their_namespace() {
    let Some(env) = Env::start(
        "hh-e2e-lockdown",
        RegistryMode::Anonymous,
        ("web", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let started = Instant::now();
    let release = format!("lock{}", std::process::id());
    let _rbac = ClusterRbac {
        target: &env.target,
        name: format!("{release}-helm-handler"),
    };
    let kubeconfig = lockdown_controller(&env, &env.ns, &release);
    let Env {
        target,
        client,
        ns,
        dir,
        registry,
        ..
    } = &env;
    // The narrow set: what the controller reads and impersonates, nothing it could deploy.
    let sa = format!("system:serviceaccount:{ns}:{release}-helm-handler");
    let can = |verb: &str, resource: &str| can_i(target, &sa, verb, resource, None);
    for (verb, resource) in [
        ("impersonate", "serviceaccounts"),
        ("get", "serviceaccounts"),
        ("watch", "components.deployment-orchestrator.io"),
        ("list", "secrets"),
    ] {
        assert!(can(verb, resource), "{sa} cannot {verb} {resource}");
    }
    for (verb, resource) in [
        ("create", "deployments.apps"),
        ("create", "secrets"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "namespaces"),
        ("impersonate", "groups"),
        ("impersonate", "users"),
    ] {
        assert!(!can(verb, resource), "{sa} must not {verb} {resource}");
    }

    let (open, closed) = (format!("{ns}-l"), format!("{ns}-n"));
    namespace(client, &open).await;
    namespace(client, &closed).await;
    // The Role is bound to the namespace's ServiceAccount group: helm and the reads get it
    // because the API server gives an impersonated ServiceAccount its groups.
    apply(
        target,
        &tenant(
            &open,
            "helm-deployer",
            &format!(
                "{{kind: Group, apiGroup: rbac.authorization.k8s.io, name: \"system:serviceaccounts:{open}\"}}"
            ),
        ),
    );
    let _controller = Controller::start_with(
        &kubeconfig,
        ns,
        dir.path(),
        "controller",
        &[
            "--default-service-account=helm-deployer",
            "--no-cross-namespace-releases",
        ],
    );
    let in_open: Api<Component> = Api::namespaced(client.clone(), &open);
    let in_closed: Api<Component> = Api::namespaced(client.clone(), &closed);
    // In a namespace with the ServiceAccount; aimed elsewhere; in one without it.
    for (component_ns, name, release_ns) in [
        (&open, "web", &open),
        (&open, "away", &closed),
        (&closed, "web", &closed),
    ] {
        let config = oci_config(registry, name, release_ns, "charts/web");
        create(client, component_ns, name, config).await;
    }

    wait_ready_as(&in_open, "web", "helm-deployer").await;
    let ready_after = started.elapsed();

    let message = wait_failed(&in_open, "away", "Config").await;
    assert!(
        message.contains(&format!(
            "field `releaseNamespace`: \"{closed}\" is not the Component's namespace"
        )),
        "{message}"
    );
    assert!(
        message.contains("--no-cross-namespace-releases"),
        "{message}"
    );

    let message = wait_failed(&in_closed, "web", "Config").await;
    for part in [
        format!("ServiceAccount `{closed}/helm-deployer`"),
        "--default-service-account".to_string(),
        "not found".to_string(),
    ] {
        assert!(message.contains(&part), "{part}: {message}");
    }
    assert_eq!(release_records(client, &closed).await, 0, "no helm call");

    // Removal: the tenant's release is uninstalled as it; the refused ones leave nothing.
    for (api, name) in [(&in_open, "web"), (&in_open, "away"), (&in_closed, "web")] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for (api, name) in [(&in_open, "web"), (&in_open, "away"), (&in_closed, "web")] {
        wait_gone(api, name, Duration::from_secs(120)).await;
    }
    assert_eq!(release_records(client, &open).await, 0);
    eprintln!(
        "measured: lockdown web Ready {ready_after:?} after start; test {:?}",
        started.elapsed()
    );
    for n in [&open, &closed, ns] {
        delete_namespace(client, n).await;
    }
}
