//! What the cluster suites share: the cluster (one test at a time), a namespace with the CRD,
//! a registry holding a chart, the controller's ServiceAccount kubeconfig (`deploy/rbac.yaml`),
//! and the real `helm-handler run` process.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use componentkit::crd::{Component, Phase};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt};
use serde_json::json;
use test_support::{Chart, Registry, RegistryMode, Target, e2e_target};

/// One controller at a time on the cluster: the tests run one after the other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Installs `deploy/rbac.yaml` and writes a kubeconfig of its ServiceAccount into `dir`.
pub fn controller_kubeconfig(target: &Target, dir: &Path) -> PathBuf {
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

pub async fn client(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

pub async fn install_crd(client: &Client) {
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

pub async fn wait<F, Fut>(what: &str, timeout: Duration, mut check: F)
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
pub struct Controller {
    pub child: Child,
    pub log: PathBuf,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics: SocketAddr,
}

impl Controller {
    pub fn start(kubeconfig: &Path, system_namespace: &str, dir: &Path) -> Self {
        Self::start_named(kubeconfig, system_namespace, dir, "controller")
    }

    /// A controller whose identity (`status.claimedBy`) is `name`, without leader election.
    pub fn start_named(kubeconfig: &Path, system_namespace: &str, dir: &Path, name: &str) -> Self {
        Self::spawn(
            kubeconfig,
            system_namespace,
            dir,
            name,
            &["--no-leader-election"],
        )
    }

    /// [`Self::start_named`] with more `run` flags.
    pub fn start_with(
        kubeconfig: &Path,
        system_namespace: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> Self {
        let mut args = vec!["--no-leader-election"];
        args.extend_from_slice(extra);
        Self::spawn(kubeconfig, system_namespace, dir, name, &args)
    }

    /// A controller whose identity (`status.claimedBy`, the Lease holder) is `name`, with
    /// leader election on (the default of `run`).
    pub fn start_electing(
        kubeconfig: &Path,
        system_namespace: &str,
        dir: &Path,
        name: &str,
    ) -> Self {
        Self::spawn(kubeconfig, system_namespace, dir, name, &[])
    }

    /// [`Self::start_electing`] with more `run` flags.
    pub fn start_electing_with(
        kubeconfig: &Path,
        system_namespace: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> Self {
        Self::spawn(kubeconfig, system_namespace, dir, name, extra)
    }

    fn spawn(
        kubeconfig: &Path,
        system_namespace: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(env!("CARGO_BIN_EXE_helm-handler"))
            .args(["run", "--log-format=text"])
            .args(extra)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--system-namespace")
            .arg(system_namespace)
            .arg("--cache-dir")
            .arg(dir.join(format!("{name}-cache")))
            .arg("--helm-binary")
            .arg(test_support::helm_bin())
            .arg(format!("--metrics-addr={metrics}"))
            .env("RUST_LOG", "info,helm_handler=debug")
            .env("POD_NAME", name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        Self {
            child,
            log,
            metrics,
        }
    }

    /// `GET path` on the metrics server: (status code, body), `None` while it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = reqwest::get(format!("http://{}{path}", self.metrics))
            .await
            .ok()?;
        let code = resp.status().as_u16();
        Some((code, resp.text().await.ok()?))
    }

    /// The value of the `helm_handler_leader` gauge.
    pub async fn leader_metric(&self) -> Option<i64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix("helm_handler_leader "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// SIGKILL: no shutdown path runs (no Lease release, no cleanup).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
pub struct Env {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    pub target: Target,
    pub client: Client,
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub registry: Registry,
    pub components: Api<Component>,
    pub controller_kc: PathBuf,
}

impl Env {
    pub async fn start(
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

pub async fn create_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", std::process::id());
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    name
}

pub async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

pub fn image_values() -> serde_json::Value {
    match std::env::var("HELM_HANDLER_E2E_IMAGE") {
        Ok(image) if image.contains(':') => {
            let (repo, tag) = image.rsplit_once(':').unwrap();
            json!({"image": {"repository": repo, "tag": tag}})
        }
        _ => json!({}),
    }
}

pub fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

pub async fn phase(api: &Api<Component>, name: &str) -> Option<(Phase, String)> {
    let c = api.get_opt(name).await.ok()??;
    let reason = c
        .condition("Ready")
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    Some((c.phase(), reason))
}

pub const HELM_FINALIZER: &str = "helm.deployment-orchestrator.io/lifecycle";

pub fn oci_config(
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

/// Waits until the Component `name` is Ready.
pub async fn wait_ready(components: &Api<Component>, name: &str, timeout: Duration) {
    wait(&format!("{name} Ready"), timeout, || async {
        phase(components, name)
            .await
            .is_some_and(|(p, _)| p == Phase::Ready)
    })
    .await;
}

/// Waits until the Component `name` is gone (finalizers removed, object deleted).
pub async fn wait_gone(components: &Api<Component>, name: &str, timeout: Duration) {
    wait(&format!("{name} gone"), timeout, || async {
        components
            .get_opt(name)
            .await
            .ok()
            .is_some_and(|c| c.is_none())
    })
    .await;
}
