//! A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on, a generated CA
//! and serving certificate, a service-account signing key, an admin client certificate),
//! kube-controller-manager, kube-scheduler, and kwok playing the kubelet for one fake Node —
//! all built from their Go modules by `tools/k8s/build` (scripts/dev-setup).
//!
//! Everything runs in one temporary directory. The processes are killed and the directory
//! removed on drop; a guardian shell process does the same when the test process dies
//! without dropping (a panic in a static, SIGKILL, the end of a test binary that shared
//! one cluster through [`Cluster::shared`]).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::helm::{run, workspace_root};
use crate::port::free_port;
use crate::process::{Probe, ServerProcess, StartFailure};
use crate::tls::TestCerts;

/// The environment variable that aims the cluster suites at an external cluster instead.
pub const EXTERNAL_KUBECONFIG_ENV: &str = "HELM_HANDLER_E2E_KUBECONFIG";

/// kwok's stages: its own fast node/pod stages plus a never-ready label (see the file).
const KWOK_STAGES: &str = include_str!("../../../tools/k8s/kwok-stages.yaml");

/// Label that keeps a Pod from ever becoming Ready under kwok (tools/k8s/kwok-stages.yaml).
pub const NEVER_READY_LABEL: &str = "helm-handler.test/never-ready";

/// The fake Node kwok manages.
pub const NODE_NAME: &str = "kwok-node-0";

/// How long the control plane may take to become ready on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The controllers kube-controller-manager runs: what charts' workloads need. No
/// node-lifecycle controller: kwok's Node sends no heartbeats, so it would be tainted and its
/// Pods evicted.
const CONTROLLERS: &str = "deployment-controller,replicaset-controller,statefulset-controller,\
daemonset-controller,job-controller,cronjob-controller,namespace-controller,\
garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,\
endpointslice-controller,ttl-after-finished-controller,persistentvolume-binder-controller,\
root-ca-certificate-publisher-controller,disruption-controller";

/// Where the control plane's binaries are: `$HELM_HANDLER_K8S_BIN`, else `.tools/k8s/bin`.
pub fn k8s_bin_dir() -> PathBuf {
    match std::env::var_os("HELM_HANDLER_K8S_BIN").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join(".tools/k8s/bin"),
    }
}

include!("../../../build/control_plane_binaries.rs");

/// Why the local control plane cannot be started here, or `None` when it can.
pub fn unavailable_reason() -> Option<String> {
    let dir = k8s_bin_dir();
    let missing: Vec<&str> = CONTROL_PLANE_BINARIES
        .into_iter()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the control plane is not built ({} missing in {}): run scripts/dev-setup",
            missing.join(", "),
            dir.display()
        )
    })
}

/// The kubectl binary of the control plane.
pub fn kubectl_bin() -> PathBuf {
    k8s_bin_dir().join("kubectl")
}

/// A running control plane; stopped and removed on drop.
/// How a [`Cluster`] is started.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// kube-apiserver's audit log (`--audit-policy-file`, `--audit-log-path`, JSON lines).
    pub audit: Option<AuditLog>,
}

/// An audit policy file and where the apiserver writes the events it selects.
#[derive(Clone, Debug)]
pub struct AuditLog {
    pub policy: PathBuf,
    pub log: PathBuf,
}

pub struct Cluster {
    // Declared first: killed before the directory goes.
    processes: Vec<ServerProcess>,
    /// kube-apiservers started by [`Cluster::restart_apiserver`] (the first one is killed).
    restarted: std::sync::Mutex<Vec<ServerProcess>>,
    /// How the kube-apiserver was started, to start it again.
    apiserver_args: Vec<std::ffi::OsString>,
    /// Where the kube-apiserver writes its audit log.
    audit_log: PathBuf,
    guardian: Option<Child>,
    server: String,
    kubeconfig: PathBuf,
    started_in: Duration,
    dir: TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// One control plane for the whole test binary, started on first use. It lives until
    /// the process exits (statics are never dropped): the guardian then removes it.
    pub fn shared() -> anyhow::Result<&'static Cluster> {
        static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Cluster::start().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Starts a control plane of its own (for tests that stop or restart parts of it).
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&ClusterOptions::default())
    }

    /// [`Cluster::start`] with options (an audit log for `scripts/bench scale`).
    pub fn start_with(options: &ClusterOptions) -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(options)? {
                Ok(cluster) => return Ok(cluster),
                Err(port_taken) => last = Some(port_taken),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context("control plane: a port was taken three times"))
    }

    fn try_start(options: &ClusterOptions) -> anyhow::Result<Result<Self, anyhow::Error>> {
        if let Some(reason) = unavailable_reason() {
            bail!(reason);
        }
        let started = Instant::now();
        let bin = k8s_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("test-cluster-")
            .tempdir()
            .context("cluster temp dir")?;
        let d = dir.path();
        let pids = d.join("pids");
        std::fs::write(&pids, "").context("write pids")?;
        let guardian = spawn_guardian(d, &pids)?;
        let mut cluster_processes = Vec::new();

        // Certificates: one CA for serving and for client certificates.
        let certs = TestCerts::generate(d, &[])?;
        let (admin_cert, admin_key) = certs.client_cert(d, "admin", "admin", "system:masters")?;
        run(
            Command::new("openssl")
                .args(["genrsa", "-out"])
                .arg(d.join("sa.key"))
                .arg("2048"),
            "openssl: service-account key",
        )?;
        run(
            Command::new("openssl")
                .args(["rsa", "-pubout", "-in"])
                .arg(d.join("sa.key"))
                .arg("-out")
                .arg(d.join("sa.pub")),
            "openssl: service-account public key",
        )?;

        let lo = Ipv4Addr::LOCALHOST;
        let (etcd_client, etcd_peer, api_port) = (free_port(lo)?, free_port(lo)?, free_port(lo)?);
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = d.join("kubeconfig");
        write_admin_kubeconfig(
            &kubeconfig,
            &server,
            &certs.ca_cert,
            &admin_cert,
            &admin_key,
        )?;

        // etcd
        let mut cmd = Command::new(bin.join("etcd"));
        cmd.arg("--data-dir")
            .arg(d.join("etcd"))
            .args(["--name", "test"])
            .arg(format!(
                "--listen-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
            ))
            .arg(format!(
                "--initial-cluster=test=http://127.0.0.1:{etcd_peer}"
            ))
            .args(["--unsafe-no-fsync", "--log-level=warn"]);
        let etcd = spawn(
            &mut cluster_processes,
            &pids,
            "etcd",
            cmd,
            &d.join("etcd.log"),
        )?;
        let etcd_addr = (lo, etcd_client).into();
        if let Err(e) = etcd.wait_ready_within(START_TIMEOUT, |_| {
            if crate::process::can_connect(etcd_addr) {
                Probe::Ready
            } else {
                Probe::NotYet
            }
        }) {
            return port_or_fail(e);
        }

        // kube-apiserver, with an audit log of every write (who wrote what, and when).
        std::fs::write(d.join("audit-policy.yaml"), AUDIT_POLICY).context("audit policy")?;
        let mut cmd = Command::new(bin.join("kube-apiserver"));
        cmd.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_client}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            // The endpoint reconciler refuses a loopback advertise address.
            .arg("--endpoint-reconciler-type=none")
            .arg(format!("--secure-port={api_port}"))
            .arg("--tls-cert-file")
            .arg(&certs.server_cert)
            .arg("--tls-private-key-file")
            .arg(&certs.server_key)
            .arg("--client-ca-file")
            .arg(&certs.ca_cert)
            .arg("--service-account-key-file")
            .arg(d.join("sa.pub"))
            .arg("--service-account-signing-key-file")
            .arg(d.join("sa.key"))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .args(["--authorization-mode=RBAC", "--allow-privileged=true"])
            // Room for a Service per release of `scripts/bench scale 1000` (a /24 holds 254).
            .arg("--service-cluster-ip-range=10.0.0.0/16")
            .arg("--cert-dir")
            .arg(d.join("apiserver-certs"))
            .arg("--profiling=false");
        // The bench's audit log when it asks for one, else the log of writes.
        let audit_log = match &options.audit {
            Some(audit) => {
                cmd.arg("--audit-policy-file")
                    .arg(&audit.policy)
                    .arg("--audit-log-path")
                    .arg(&audit.log)
                    .args(["--audit-log-format=json", "--audit-log-maxsize=0"]);
                audit.log.clone()
            }
            None => {
                cmd.arg("--audit-policy-file")
                    .arg(d.join("audit-policy.yaml"))
                    .arg("--audit-log-path")
                    .arg(d.join("audit.log"))
                    .arg("--audit-log-format=json");
                d.join("audit.log")
            }
        };
        let apiserver_args: Vec<std::ffi::OsString> =
            cmd.get_args().map(|a| a.to_os_string()).collect();
        let api = spawn(
            &mut cluster_processes,
            &pids,
            "kube-apiserver",
            cmd,
            &d.join("kube-apiserver.log"),
        )?;
        let kubectl = bin.join("kubectl");
        if let Err(e) = api.wait_ready_within(START_TIMEOUT, |_| {
            apiserver_ready(Command::new(&kubectl).arg("--kubeconfig").arg(&kubeconfig))
        }) {
            return port_or_fail(e);
        }

        // Controllers, scheduler and kwok talk to the apiserver as admin.
        let mut cmd = Command::new(bin.join("kube-controller-manager"));
        as_admin(&mut cmd, &kubeconfig)
            .args([
                "--leader-elect=false",
                "--use-service-account-credentials=false",
            ])
            .arg(format!("--controllers={CONTROLLERS}"))
            .arg("--service-account-private-key-file")
            .arg(d.join("sa.key"))
            .arg("--root-ca-file")
            .arg(&certs.ca_cert)
            .args([
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
            ])
            .args([
                "--concurrent-namespace-syncs=10",
                "--concurrent-gc-syncs=20",
            ]);
        spawn(
            &mut cluster_processes,
            &pids,
            "kube-controller-manager",
            cmd,
            &d.join("kube-controller-manager.log"),
        )?;
        let mut cmd = Command::new(bin.join("kube-scheduler"));
        as_admin(&mut cmd, &kubeconfig).arg("--leader-elect=false");
        spawn(
            &mut cluster_processes,
            &pids,
            "kube-scheduler",
            cmd,
            &d.join("kube-scheduler.log"),
        )?;
        let stages = d.join("kwok-stages.yaml");
        std::fs::write(&stages, KWOK_STAGES).context("write kwok stages")?;
        let mut cmd = Command::new(bin.join("kwok"));
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--config")
            .arg(&stages)
            .args(["--manage-all-nodes=false"])
            .args(["--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake"])
            .args(["--server-address=127.0.0.1:0"]);
        spawn(
            &mut cluster_processes,
            &pids,
            "kwok",
            cmd,
            &d.join("kwok.log"),
        )?;

        let mut cluster = Cluster {
            processes: cluster_processes,
            restarted: std::sync::Mutex::new(Vec::new()),
            apiserver_args,
            audit_log,
            guardian: Some(guardian),
            server,
            kubeconfig,
            started_in: Duration::ZERO,
            dir,
        };
        cluster.add_node()?;
        cluster.started_in = started.elapsed();
        Ok(Ok(cluster))
    }

    /// Creates the fake Node, waits until kwok reports it Ready and lifts the not-ready taint
    /// that admission put on it (the node-lifecycle controller that would lift it is off).
    fn add_node(&self) -> anyhow::Result<()> {
        let node = format!(
            r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{NODE_NAME}",
            "annotations":{{"kwok.x-k8s.io/node":"fake","node.alpha.kubernetes.io/ttl":"0"}},
            "labels":{{"kubernetes.io/hostname":"{NODE_NAME}","type":"kwok"}}}}}}"#
        );
        self.kubectl_stdin(&["apply", "-f", "-"], &node)?;
        self.wait_for(
            "node Ready",
            &[
                "wait",
                "--for=condition=Ready",
                &format!("node/{NODE_NAME}"),
                "--timeout=60s",
            ],
        )?;
        self.kubectl_ok(&[
            "taint",
            "node",
            NODE_NAME,
            "node.kubernetes.io/not-ready:NoSchedule-",
        ])
        .or_else(|e| {
            // Already lifted (a retried start) is fine.
            if format!("{e:#}").contains("not found") {
                Ok(String::new())
            } else {
                Err(e)
            }
        })?;
        // Pods are refused until the namespace's default ServiceAccount exists.
        self.wait_for(
            "default ServiceAccount",
            &["get", "serviceaccount", "default", "-n", "default"],
        )?;
        Ok(())
    }

    fn wait_for(&self, what: &str, args: &[&str]) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.kubectl_ok(args) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("control plane: waiting for {what}")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// The admin kubeconfig (client certificate of a `system:masters` user).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The apiserver URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The directory that holds the cluster's files and the components' logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How long [`Cluster::start`] took until the Node was Ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// A `kubectl` command aimed at this cluster as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(kubectl_bin());
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Runs kubectl with `args`; fails with its output when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        run(
            self.kubectl().args(args),
            &format!("kubectl {}", args.join(" ")),
        )
    }

    /// Runs kubectl with `args` and `input` on stdin (`apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> anyhow::Result<String> {
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn kubectl")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).context("kubectl stdin")?;
        }
        let out = child.wait_with_output().context("kubectl")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("kubectl {} failed: {}", args.join(" "), text.trim());
        }
        Ok(text)
    }

    /// Writes, at `path`, a kubeconfig that authenticates as ServiceAccount `ns/name` with a
    /// token from the TokenRequest API (what a Pod of that ServiceAccount would get).
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        service_account_kubeconfig(|| self.kubectl(), namespace, name, path)
    }

    /// The writes (create, update, patch, delete) the API server audited whose user agent
    /// contains `user_agent`, completed at or after `since`.
    pub fn audited_writes(&self, user_agent: &str, since: SystemTime) -> Vec<AuditedWrite> {
        let log = std::fs::read_to_string(&self.audit_log).unwrap_or_default();
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|e| {
                let agent = e["userAgent"].as_str()?.to_string();
                let at = e["stageTimestamp"]
                    .as_str()?
                    .parse::<jiff::Timestamp>()
                    .ok()?;
                let at = SystemTime::from(at);
                (agent.contains(user_agent) && at >= since).then(|| AuditedWrite {
                    verb: e["verb"].as_str().unwrap_or_default().to_string(),
                    uri: e["requestURI"].as_str().unwrap_or_default().to_string(),
                    user_agent: agent,
                    code: e["responseStatus"]["code"].as_u64().unwrap_or_default(),
                    at,
                })
            })
            .collect()
    }

    /// Kills the kube-apiserver (SIGKILL: connections drop, watches break) and starts it
    /// again with the same flags on the same port; returns once it answers `/readyz`.
    pub fn restart_apiserver(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut restarted = self.restarted.lock().unwrap_or_else(|p| p.into_inner());
        match restarted.last_mut() {
            Some(p) => p.kill(),
            None => self.signal("kube-apiserver", "KILL")?,
        }
        let n = restarted.len() + 1;
        let mut cmd = Command::new(k8s_bin_dir().join("kube-apiserver"));
        cmd.args(&self.apiserver_args);
        let log = self.dir.path().join(format!("kube-apiserver-{n}.log"));
        let mut process = None;
        // The port may take a moment to be free again after the kill.
        for _ in 0..20 {
            let mut p =
                ServerProcess::spawn("kube-apiserver", crate::process::copy_command(&cmd), &log)?;
            let ready =
                p.wait_ready_within(START_TIMEOUT, |_| apiserver_ready(&mut self.kubectl()));
            match ready {
                Ok(()) => {
                    process = Some(p);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        let process = process.context("kube-apiserver did not come back")?;
        if let Some(pid) = process.pid() {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(self.dir.path().join("pids"))
                .context("pids file")?;
            writeln!(f, "{pid}").context("pids file")?;
        }
        restarted.push(process);
        Ok(started.elapsed())
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to a component (`etcd`, `kube-apiserver`, …): a
    /// stopped etcd is an outage the API server cannot hide.
    pub fn signal(&self, component: &str, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .processes
            .iter()
            .find(|p| p.name() == component)
            .and_then(|p| p.pid())
            .with_context(|| format!("no running {component}"))?;
        run(
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string()),
            &format!("kill -{signal} {component}"),
        )
        .map(drop)
    }

    /// A component's log (`etcd`, `kube-apiserver`, `kube-controller-manager`, …).
    pub fn log(&self, component: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{component}.log")))
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // kwok, scheduler and controllers first, etcd last.
        for mut p in self
            .restarted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            p.kill();
        }
        while let Some(mut p) = self.processes.pop() {
            p.kill();
        }
        if let Some(mut g) = self.guardian.take() {
            let _ = g.kill();
            let _ = g.wait();
        }
    }
}

fn write_admin_kubeconfig(
    path: &Path,
    server: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<()> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "admin", "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        "current-context": "test",
    });
    write_kubeconfig(path, &config)
}

/// A kubeconfig, as JSON (which is YAML: every kubeconfig reader takes it), readable by its
/// owner only: it holds a key or a token.
fn write_kubeconfig(path: &Path, config: &serde_json::Value) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    file.write_all(serde_json::to_string_pretty(config)?.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// Writes, at `path`, the kubeconfig `kubectl` (an admin's) uses, with its user replaced by
/// ServiceAccount `namespace/name` and a token from the TokenRequest API.
fn service_account_kubeconfig(
    kubectl: impl Fn() -> Command,
    namespace: &str,
    name: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let token = run(
        kubectl().args(["create", "token", name, "-n", namespace, "--duration=24h"]),
        "kubectl create token",
    )?;
    let view = run(
        kubectl().args([
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ]),
        "kubectl config view",
    )?;
    let mut config: serde_json::Value =
        serde_json::from_str(&view).context("kubectl config view: not JSON")?;
    let user = config
        .get_mut("users")
        .and_then(|u| u.as_array_mut())
        .and_then(|u| u.first_mut())
        .context("kubeconfig without a user")?;
    user["user"] = serde_json::json!({"token": token.trim()});
    write_kubeconfig(path, &config)
}

/// The flags of a control-plane component (controller-manager, scheduler) that talks to the
/// apiserver as admin and serves nothing of its own.
fn as_admin<'a>(cmd: &'a mut Command, kubeconfig: &Path) -> &'a mut Command {
    for flag in [
        "--kubeconfig",
        "--authentication-kubeconfig",
        "--authorization-kubeconfig",
    ] {
        cmd.arg(flag).arg(kubeconfig);
    }
    cmd.args(["--bind-address=127.0.0.1", "--secure-port=0"])
}

/// Spawns a component, records its pid for the guardian, and returns it for a readiness wait.
fn spawn<'a>(
    processes: &'a mut Vec<ServerProcess>,
    pids: &Path,
    name: &str,
    cmd: Command,
    log: &Path,
) -> anyhow::Result<&'a mut ServerProcess> {
    let process = ServerProcess::spawn(name, cmd, log)?;
    if let Some(pid) = process.pid() {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(pids)
            .context("pids file")?;
        writeln!(f, "{pid}").context("pids file")?;
    }
    processes.push(process);
    processes
        .last_mut()
        .context("the process just pushed is there")
}

/// A shell that waits for this process to end, then kills every component and removes the
/// directory: the cleanup of last resort when no destructor runs.
fn spawn_guardian(dir: &Path, pids: &Path) -> anyhow::Result<Child> {
    let script = r#"while kill -0 "$0" 2>/dev/null; do sleep 0.5; done
for p in $(cat "$1" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
rm -rf "$2""#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(std::process::id().to_string())
        .arg(pids)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn the cluster's guardian")
}

fn port_or_fail(e: StartFailure) -> anyhow::Result<Result<Cluster, anyhow::Error>> {
    match e {
        StartFailure::PortTaken(e) => Ok(Err(e)),
        StartFailure::Other(e) => Err(e),
    }
}

/// Whether the API server answers `/readyz`, asked with `kubectl` (aimed at it).
fn apiserver_ready(kubectl: &mut Command) -> Probe {
    let ok = kubectl
        .args(["get", "--raw", "/readyz", "--request-timeout=2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok { Probe::Ready } else { Probe::NotYet }
}

/// Audit policy of the local control plane: writes at Metadata level, nothing else (reads
/// would make the log large and tell nothing a test asks).
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
"#;

/// One write the API server audited.
#[derive(Debug, Clone)]
pub struct AuditedWrite {
    pub verb: String,
    pub uri: String,
    pub user_agent: String,
    /// HTTP status code of the response.
    pub code: u64,
    pub at: SystemTime,
}

/// The cluster a suite runs against: the one `HELM_HANDLER_E2E_KUBECONFIG` names, else the
/// local control plane (shared by the test binary).
pub enum Target {
    External(PathBuf),
    Local(&'static Cluster),
}

impl Target {
    /// An admin kubeconfig of the target.
    pub fn kubeconfig(&self) -> &Path {
        match self {
            Target::External(path) => path,
            Target::Local(cluster) => cluster.kubeconfig(),
        }
    }

    /// The local control plane, for tests that need its kubectl, logs or fake Node.
    pub fn local(&self) -> Option<&'static Cluster> {
        match self {
            Target::External(_) => None,
            Target::Local(c) => Some(c),
        }
    }

    /// A kubectl aimed at the target as admin.
    pub fn kubectl(&self) -> Command {
        let bin = match self {
            Target::Local(_) => kubectl_bin(),
            Target::External(_) if kubectl_bin().is_file() => kubectl_bin(),
            Target::External(_) => PathBuf::from("kubectl"),
        };
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig").arg(self.kubeconfig());
        cmd
    }

    /// Writes, at `path`, a kubeconfig of the target that authenticates as ServiceAccount
    /// `namespace/name` with a token from the TokenRequest API.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        service_account_kubeconfig(|| self.kubectl(), namespace, name, path)
    }
}

/// The target of the cluster suites. `None` (after saying why) only outside CI when no
/// control plane is built and no external one is named; in CI a missing or broken control
/// plane fails the test.
pub fn e2e_target() -> Option<Target> {
    if let Some(path) = std::env::var_os(EXTERNAL_KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some(Target::External(PathBuf::from(path)));
    }
    if let Some(reason) = unavailable_reason() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the cluster suites: {reason}"
        );
        eprintln!("skipped: {reason} (or set {EXTERNAL_KUBECONFIG_ENV})");
        return None;
    }
    match Cluster::shared() {
        Ok(c) => Some(Target::Local(c)),
        Err(e) => panic!("the local control plane is built but did not start: {e:#}"),
    }
}
