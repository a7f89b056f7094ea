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

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use componentkit::crd::{Component, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt};
use serde_json::json;
use test_support::{Chart, Registry, RegistryMode, Target, e2e_target};

/// One controller at a time on the cluster: the tests run one after the other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Installs `deploy/rbac.yaml` and writes a kubeconfig of its ServiceAccount into `dir`.
fn controller_kubeconfig(target: &Target, dir: &Path) -> PathBuf {
    let rbac = test_support::workspace_root().join("deploy/rbac.yaml");
    let out = target
        .kubectl()
        .args(["create", "namespace", "deployment-system"])
        .output()
        .unwrap();
    assert!(
        out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = target
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&rbac)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("controller.kubeconfig");
    target
        .service_account_kubeconfig("deployment-system", "helm-handler", &path)
        .unwrap();
    path
}

async fn client(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn install_crd(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Component::crd();
    let name = crd.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("helm-handler-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    wait("CRD established", Duration::from_secs(60), || async {
        api.get(&name)
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
}

async fn wait<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// The controller process, killed on drop; its log is printed when a test fails.
struct Controller {
    child: Child,
    log: PathBuf,
}

impl Controller {
    fn start(kubeconfig: &Path, system_namespace: &str, dir: &Path) -> Self {
        Self::start_named(kubeconfig, system_namespace, dir, "controller")
    }

    /// A controller whose identity (`status.claimedBy`) is `name`.
    fn start_named(kubeconfig: &Path, system_namespace: &str, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_helm-handler"))
            .args(["run", "--no-leader-election", "--log-format=text"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--system-namespace")
            .arg(system_namespace)
            .arg("--cache-dir")
            .arg(dir.join(format!("{name}-cache")))
            .arg("--helm-binary")
            .arg(test_support::helm_bin())
            .arg("--metrics-addr=127.0.0.1:0")
            .env("RUST_LOG", "info,helm_handler=debug")
            .env("POD_NAME", name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        Self { child, log }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- controller log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// What every test starts from: the cluster, held by one test at a time; a namespace of the
/// test's own with the CRD installed; a registry holding one `helm create` chart; a
/// kubeconfig of the controller's ServiceAccount. `None` where the suite is skipped.
struct Env {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    target: Target,
    client: Client,
    ns: String,
    dir: tempfile::TempDir,
    registry: Registry,
    components: Api<Component>,
    controller_kc: PathBuf,
}

impl Env {
    async fn start(
        prefix: &str,
        mode: RegistryMode,
        (chart, version): (&str, &str),
        repository: &str,
    ) -> Option<Self> {
        let target = e2e_target()?;
        let serial = SERIAL.lock().await;
        let client = client(target.kubeconfig()).await;
        install_crd(&client).await;
        let ns = create_namespace(&client, prefix).await;
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start(mode).unwrap();
        let tgz = Chart::create(chart, version).package(dir.path()).unwrap();
        registry.push(&tgz, repository).unwrap();
        let controller_kc = controller_kubeconfig(&target, dir.path());
        let components = Api::namespaced(client.clone(), &ns);
        Some(Self {
            _serial: serial,
            target,
            client,
            ns,
            dir,
            registry,
            components,
            controller_kc,
        })
    }
}

async fn create_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", std::process::id());
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    name
}

async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

fn image_values() -> serde_json::Value {
    match std::env::var("HELM_HANDLER_E2E_IMAGE") {
        Ok(image) if image.contains(':') => {
            let (repo, tag) = image.rsplit_once(':').unwrap();
            json!({"image": {"repository": repo, "tag": tag}})
        }
        _ => json!({}),
    }
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

async fn phase(api: &Api<Component>, name: &str) -> Option<(Phase, String)> {
    let c = api.get_opt(name).await.ok()??;
    let reason = c
        .condition("Ready")
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    Some((c.phase(), reason))
}

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

    wait("Component Ready", Duration::from_secs(300), || async {
        phase(components, "web")
            .await
            .is_some_and(|(p, _)| p == Phase::Ready)
    })
    .await;
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
    wait("Component gone", Duration::from_secs(300), || async {
        components
            .get_opt("web")
            .await
            .ok()
            .is_some_and(|c| c.is_none())
    })
    .await;
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
    wait("Ready after rotation", Duration::from_secs(240), || async {
        phase(components, "private")
            .await
            .is_some_and(|(p, _)| p == Phase::Ready)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "rotation took {:?}",
        started.elapsed()
    );

    components
        .delete("private", &DeleteParams::default())
        .await
        .unwrap();
    wait("Component gone", Duration::from_secs(180), || async {
        components
            .get_opt("private")
            .await
            .ok()
            .is_some_and(|c| c.is_none())
    })
    .await;
    delete_namespace(client, ns).await;
}

const HELM_FINALIZER: &str = "helm.deployment-orchestrator.io/lifecycle";

fn oci_config(
    registry: &Registry,
    release: &str,
    namespace: &str,
    repo: &str,
) -> serde_json::Value {
    json!({
        "releaseName": release,
        "releaseNamespace": namespace,
        "values": image_values(),
        "source": {"type": "oci", "chart": registry.oci_ref(repo, "0.1.0"), "plainHTTP": true},
    })
}

/// Claiming on the real server: two controllers racing for 20 new Components claim each
/// exactly once; another handler's Components and a Component held by another handler's
/// lifecycle finalizer are never touched.
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
    wait("Ready", Duration::from_secs(120), || async {
        phase(components, "held")
            .await
            .is_some_and(|(p, _)| p == Phase::Ready)
    })
    .await;

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
    wait("Component gone", Duration::from_secs(120), || async {
        components
            .get_opt("held")
            .await
            .ok()
            .is_some_and(|c| c.is_none())
    })
    .await;
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
