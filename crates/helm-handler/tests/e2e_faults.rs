//! The controller under faults, on the real control plane (see `e2e.rs` for the set-up):
//!
//! - `a_frozen_leader_writes_nothing_after_it_resumes`: the leader is frozen (SIGSTOP) past
//!   its Lease, the standby takes over and works; resumed, the old leader makes no write at
//!   all (the API server's audit log, by user agent) — its fence closed one Lease after its
//!   last renewal started, whatever its reconciles had queued;
//! - `sigterm_during_a_long_upgrade_leaves_no_pending_release`: SIGTERM while helm waits on
//!   a hook that never completes: helm is stopped after `--shutdown-grace` (it records a
//!   failed revision, not a pending one), the Lease is released, the standby takes over at
//!   once and deploys the next generation — no 6-minute stall;
//! - `a_failing_watch_makes_the_controller_not_ready`: RBAC without `list` on Secrets →
//!   `/readyz` 503 naming the watch and the API server's reason, a metric; granting it heals;
//! - `a_restart_does_not_poke_failed_components`: a relist replays every Secret; only a real
//!   change may skip a Failed Component's slow retry;
//! - `a_skewed_holder_clock_does_not_make_two_leaders`: a Lease whose holder keeps renewing
//!   with a `renewTime` an hour behind is not taken; once the renewals stop it is;
//! - `sigkill_during_an_upgrade_is_recovered_by_the_next_leader`: helm does not outlive its
//!   killed controller; the next leader deploys the next generation;
//! - `a_component_deleted_during_its_install_is_removed`: the uninstall waits for the
//!   running helm (bounded by `--helm-timeout`), then the release and the Component go;
//! - `etcd_stopped_for_30_s_loses_nothing`: etcd frozen 30 s right after a new generation;
//!   the controller stays alive and deploys it once etcd is back;
//! - `an_apiserver_restart_mid_reconcile_loses_nothing`: kube-apiserver killed and started
//!   again right after a new generation; the controller re-lists and deploys it;
//! - `a_registry_stopped_during_a_pull_leaves_no_partial_entry`: the registry frozen, then
//!   killed under a pull: a network failure retried, no partial cache entry, Ready once it
//!   is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use componentkit::crd::{Component, Phase};
use e2e_support::{
    Controller, Env, delete_namespace, image_values, oci_config, phase, wait, wait_ready,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use test_support::{Chart, RegistryMode};

fn lease_name() -> String {
    componentkit::names::lease::default_name(componentkit::names::HELM_HANDLER)
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(&lease_name())
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

fn signal(controller: &Controller, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(controller.child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// The Events a replica reported after `since`.
fn events_by(env: &Env, instance: &str, since: SystemTime) -> Vec<String> {
    let out = env
        .target
        .kubectl()
        .args(["get", "events", "-n", &env.ns, "-o", "json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let instance_of = e["reportingInstance"].as_str().unwrap_or_default();
            let at = e["eventTime"]
                .as_str()
                .or(e["lastTimestamp"].as_str())
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(SystemTime::from);
            instance_of == instance && at.is_some_and(|t| t >= since)
        })
        .map(|e| format!("{} {}", e["reason"], e["note"]))
        .collect()
}

async fn ready_at_generation(components: &Api<Component>, name: &str, generation: i64) -> bool {
    let Some(c) = components.get_opt(name).await.ok().flatten() else {
        return false;
    };
    c.phase() == Phase::Ready && c.status.and_then(|s| s.observed_generation) == Some(generation)
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_leader_writes_nothing_after_it_resumes() {
    let Some(env) = Env::start(
        "hh-e2e-freeze",
        RegistryMode::Anonymous,
        ("frozen", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Some(cluster) = env.target.local() else {
        panic!(
            "this test reads the local control plane's audit log: unset HELM_HANDLER_E2E_KUBECONFIG"
        );
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let a = Controller::start_electing(&env.controller_kc, ns, env.dir.path(), "replica-a");
    let b = Controller::start_electing(&env.controller_kc, ns, env.dir.path(), "replica-b");
    wait("a Lease holder", Duration::from_secs(60), || async {
        holder(&leases).await.is_some()
    })
    .await;
    let first = holder(&leases).await.unwrap();
    let (leader, standby_name) = match first.as_str() {
        "replica-a" => (&a, "replica-b"),
        _ => (&b, "replica-a"),
    };
    let config = |values: serde_json::Value| {
        let mut c = oci_config(&env.registry, "frozen", ns, "charts/frozen");
        c["values"] = e2e_support::merge(image_values(), values);
        c
    };
    let c = componentkit::memory::component(ns, "frozen", "helm", config(json!({})));
    components.create(&PostParams::default(), &c).await.unwrap();
    wait_ready(components, "frozen", Duration::from_secs(180)).await;

    // Freeze the leader past its Lease; the standby takes over.
    signal(leader, "STOP");
    let frozen = Instant::now();
    wait(
        "the standby holds the Lease",
        Duration::from_secs(60),
        || async { holder(&leases).await.as_deref() == Some(standby_name) },
    )
    .await;
    eprintln!("takeover from a frozen leader: {:?}", frozen.elapsed());

    // Work queues up for the frozen one: a new generation and a new Component, both done by
    // the new leader.
    components
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": config(json!({"replicaCount": 2}))}})),
        )
        .await
        .unwrap();
    let c2 = componentkit::memory::component(
        ns,
        "second",
        "helm",
        oci_config(&env.registry, "second", ns, "charts/frozen"),
    );
    components
        .create(&PostParams::default(), &c2)
        .await
        .unwrap();
    wait("generation 2 Ready", Duration::from_secs(180), || async {
        ready_at_generation(components, "frozen", 2).await
    })
    .await;
    wait_ready(components, "second", Duration::from_secs(180)).await;

    // Resume the old leader: it writes nothing, not a status, not an Event, not the Lease.
    let resumed = SystemTime::now();
    signal(leader, "CONT");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let writes = cluster.audited_writes(&format!("({first})"), resumed);
    assert!(
        writes.is_empty(),
        "the resumed old leader {first} wrote: {writes:#?}"
    );
    let events = events_by(&env, &first, resumed);
    assert!(events.is_empty(), "Events from {first}: {events:?}");
    assert_eq!(holder(&leases).await.as_deref(), Some(standby_name));
    // The fence, and a controller that knows it is a standby now.
    wait(
        "old leader reports standby",
        Duration::from_secs(30),
        || async { leader.leader_metric().await == Some(0) },
    )
    .await;
    let log = std::fs::read_to_string(&leader.log).unwrap();
    assert!(log.contains("lost leadership"), "{log}");
    // Sanity: the audit log does see this replica's writes when it leads.
    assert!(
        !cluster
            .audited_writes(
                &format!("({standby_name})"),
                resumed - Duration::from_secs(120)
            )
            .is_empty(),
        "no audited writes from the new leader {standby_name} either: is the audit log on?"
    );
    delete_namespace(client, ns).await;
}

/// A hook Job that never completes under kwok (its Pod is never scheduled to Running), so
/// helm waits on it until its own timeout.
const BLOCKING_HOOK: &str = r#"{{- if .Values.blockingHook }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        helm-handler.test/never-ready: "true"
    spec:
      restartPolicy: Never
      containers:
      - name: wait
        image: busybox
{{- end }}
"#;

/// helm's record of the release: the `status` label of its newest release Secret.
fn release_status(env: &Env, release: &str) -> Option<String> {
    let out = env
        .target
        .kubectl()
        .args([
            "get",
            "secrets",
            "-n",
            &env.ns,
            "-l",
            &format!("owner=helm,name={release}"),
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    list["items"]
        .as_array()?
        .iter()
        .max_by_key(|s| {
            s["metadata"]["labels"]["version"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .and_then(|s| s["metadata"]["labels"]["status"].as_str())
        .map(str::to_string)
}

/// An [`Env`] whose registry also holds `chart` 0.2.0 with [`BLOCKING_HOOK`].
async fn env_with_blocking_chart(prefix: &str, chart: &str) -> Option<Env> {
    let env = Env::start(prefix, RegistryMode::Anonymous, (chart, "0.1.0"), "charts").await?;
    let tgz = Chart::create(chart, "0.2.0")
        .file("templates/hook.yaml", BLOCKING_HOOK)
        .package(env.dir.path())
        .unwrap();
    env.registry.push(&tgz, "charts").unwrap();
    Some(env)
}

/// replica-a (leading, once this returns) and replica-b (standby), both with `flags`.
async fn leader_and_standby(env: &Env, flags: &[&str]) -> (Controller, Controller) {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let start = |name| {
        Controller::start_electing_with(&env.controller_kc, &env.ns, env.dir.path(), name, flags)
    };
    let a = start("replica-a");
    wait("replica-a leads", Duration::from_secs(60), || async {
        holder(&leases).await.as_deref() == Some("replica-a")
    })
    .await;
    (a, start("replica-b"))
}

/// The Component config of `chart` 0.2.0 with `values` (the hook blocks when
/// `blockingHook` is true).
fn blocking_config(env: &Env, chart: &str, values: serde_json::Value) -> serde_json::Value {
    let mut c = oci_config(&env.registry, chart, &env.ns, &format!("charts/{chart}"));
    c["source"]["chart"] = json!(env.registry.oci_ref(&format!("charts/{chart}"), "0.2.0"));
    c["values"] = e2e_support::merge(image_values(), values);
    c
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_long_upgrade_leaves_no_pending_release() {
    let Some(env) = env_with_blocking_chart("hh-e2e-term", "slow").await else {
        return;
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let (mut a, _b) = leader_and_standby(&env, &["--shutdown-grace=2s"]).await;
    let config = |block: bool| blocking_config(&env, "slow", json!({"blockingHook": block}));
    let c = componentkit::memory::component(ns, "slow", "helm", config(true));
    components.create(&PostParams::default(), &c).await.unwrap();
    wait(
        "helm waits on the hook",
        Duration::from_secs(120),
        || async { release_status(&env, "slow").as_deref() == Some("pending-install") },
    )
    .await;

    // The next generation waits behind the blocked one (one reconcile per Component).
    components
        .patch(
            "slow",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": config(false)}})),
        )
        .await
        .unwrap();

    // SIGTERM mid-install: helm is stopped after the grace period, the release unblocked,
    // the Lease released.
    signal(&a, "TERM");
    let termed = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = a.child.wait().unwrap();
        (status, a)
    });
    let (exit, a) = tokio::time::timeout(Duration::from_secs(40), status)
        .await
        .expect("replica-a did not exit within 40 s of SIGTERM")
        .unwrap();
    let stopped_in = termed.elapsed();
    eprintln!("SIGTERM → exit: {stopped_in:?} ({exit})");
    assert!(exit.success(), "{exit}");
    // The grace (2 s), helm's cancel and the unblocking; far below the 5-minute helm timeout.
    assert!(stopped_in < Duration::from_secs(25), "{stopped_in:?}");
    let status = release_status(&env, "slow");
    assert!(
        !status.as_deref().is_some_and(|s| s.starts_with("pending")),
        "release left {status:?}"
    );
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("helm stopped"), "{log}");
    // Released: the standby takes over at once instead of waiting for it to expire.
    wait("replica-b leads", Duration::from_secs(8), || async {
        holder(&leases).await.as_deref() == Some("replica-b")
    })
    .await;

    // The next generation deploys at once: no pending release to wait out.
    let recovered = Instant::now();
    wait("generation 2 Ready", Duration::from_secs(120), || async {
        ready_at_generation(components, "slow", 2).await
    })
    .await;
    eprintln!("Ready after the takeover: {:?}", recovered.elapsed());
    assert_eq!(release_status(&env, "slow").as_deref(), Some("deployed"));
    delete_namespace(client, ns).await;
}

/// Everything of `deploy/rbac.yaml` but `list`/`watch` on Secrets.
const RBAC_WITHOUT_SECRET_LIST: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: no-secret-list, namespace: deployment-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: hh-e2e-no-secret-list}
rules:
- apiGroups: ["deployment-orchestrator.io"]
  resources: ["components", "components/status"]
  verbs: ["*"]
- apiGroups: [""]
  resources: ["configmaps", "events", "namespaces"]
  verbs: ["*"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["*"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["*"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hh-e2e-no-secret-list}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: hh-e2e-no-secret-list}
subjects:
- {kind: ServiceAccount, name: no-secret-list, namespace: deployment-system}
"#;

const GRANT_SECRET_LIST: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: hh-e2e-secret-list}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hh-e2e-secret-list}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: hh-e2e-secret-list}
subjects:
- {kind: ServiceAccount, name: no-secret-list, namespace: deployment-system}
"#;

fn kubectl_apply(env: &Env, manifest: &str) {
    let mut child = env
        .target
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kubectl_delete(env: &Env, manifest: &str) {
    let mut child = env
        .target
        .kubectl()
        .args(["delete", "--ignore-not-found", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
    let _ = child.wait();
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_watch_makes_the_controller_not_ready() {
    let Some(env) = Env::start(
        "hh-e2e-watch",
        RegistryMode::Anonymous,
        ("watched", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    kubectl_delete(&env, GRANT_SECRET_LIST);
    kubectl_apply(&env, RBAC_WITHOUT_SECRET_LIST);
    let kc = env.dir.path().join("no-secret-list.kubeconfig");
    env.target
        .service_account_kubeconfig("deployment-system", "no-secret-list", &kc)
        .unwrap();
    let controller = Controller::start(&kc, &env.ns, env.dir.path());

    wait(
        "/readyz reports the failing Secret watch",
        Duration::from_secs(60),
        || async {
            controller.get("/readyz").await.is_some_and(|(code, body)| {
                code == 503
                    && body.contains("watch Secret failing")
                    && body.contains("secrets is forbidden")
                    && body.contains("cannot list resource \"secrets\"")
            })
        },
    )
    .await;
    let (_, metrics) = controller.get("/metrics").await.unwrap();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("helm_handler_watch_errors_total{watch=\"Secret\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(errors >= 1, "{metrics}");
    let log = std::fs::read_to_string(&controller.log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("watch failing") && l.contains("Secret")),
        "{log}"
    );

    // Granting the right heals it: the watch recovers and the controller is ready.
    kubectl_apply(&env, GRANT_SECRET_LIST);
    wait("/readyz 200 again", Duration::from_secs(90), || async {
        controller
            .get("/readyz")
            .await
            .is_some_and(|(code, _)| code == 200)
    })
    .await;
    let log = std::fs::read_to_string(&controller.log).unwrap();
    assert!(log.contains("watch recovered"), "{log}");
    drop(controller);
    kubectl_delete(&env, GRANT_SECRET_LIST);
    kubectl_delete(&env, RBAC_WITHOUT_SECRET_LIST);
    delete_namespace(&env.client, &env.ns).await;
}

/// When the slow retry of a Failed Component is due: every attempt moves it forward.
async fn next_retry(components: &Api<Component>, name: &str) -> Option<jiff::Timestamp> {
    components
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.next_retry_at)
        .map(|t| t.0)
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_does_not_poke_failed_components() {
    let Some(env) = Env::start(
        "hh-e2e-relist",
        RegistryMode::BasicAuth,
        ("private", "0.1.0"),
        "team",
    )
    .await
    else {
        return;
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = |password: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "regcred"},
            "type": "Opaque",
            "stringData": {"username": env.registry.username().unwrap(), "password": password},
        }))
        .unwrap()
    };
    secrets
        .create(&PostParams::default(), &secret("wrong-password"))
        .await
        .unwrap();
    let controller = Controller::start(&env.controller_kc, ns, env.dir.path());
    let c = componentkit::memory::component(
        ns,
        "private",
        "helm",
        json!({
            "releaseName": "private",
            "values": image_values(),
            "source": {
                "type": "oci",
                "chart": env.registry.oci_ref("team/private", "0.1.0"),
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
    let before = next_retry(components, "private").await;
    assert!(before.is_some(), "a slow retry is scheduled");

    // Restart: the Secret watch relists `regcred` — not a change, so no retry before the
    // slow retry (5 minutes).
    drop(controller);
    let controller = Controller::start(&env.controller_kc, ns, env.dir.path());
    wait(
        "the restarted controller is ready",
        Duration::from_secs(60),
        || async {
            controller
                .get("/readyz")
                .await
                .is_some_and(|(code, _)| code == 200)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        next_retry(components, "private").await,
        before,
        "a relist of an unchanged Secret retried the Failed Component"
    );

    // A real change still pokes at once.
    secrets
        .replace(
            "regcred",
            &PostParams::default(),
            &secret("another-wrong-password"),
        )
        .await
        .unwrap();
    wait("the change retried it", Duration::from_secs(30), || async {
        next_retry(components, "private").await > before
    })
    .await;
    drop(controller);
    delete_namespace(client, ns).await;
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_skewed_holder_clock_does_not_make_two_leaders() {
    let Some(env) = Env::start(
        "hh-e2e-skew",
        RegistryMode::Anonymous,
        ("skew", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let (client, ns) = (&env.client, &env.ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    // A holder whose clock is an hour behind: every renewal's renewTime is already "expired"
    // by our clock, but the record keeps changing.
    let renew = |i: i32| {
        let behind = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
        let spec = k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some("skewed-holder".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                behind,
            )),
            lease_transitions: Some(i),
            ..Default::default()
        };
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease_name()},
            "spec": spec,
        })
    };
    let params = PatchParams::apply("skewed-holder").force();
    leases
        .patch(&lease_name(), &params, &Patch::Apply(renew(0)))
        .await
        .unwrap();
    let renewer = tokio::spawn({
        let leases = leases.clone();
        let params = params.clone();
        async move {
            for i in 1i32.. {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let _ = leases
                    .patch(&lease_name(), &params, &Patch::Apply(renew(i)))
                    .await;
            }
        }
    });
    let controller =
        Controller::start_electing(&env.controller_kc, ns, env.dir.path(), "replica-a");
    // Longer than a Lease and a few retries: the live holder keeps it.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(holder(&leases).await.as_deref(), Some("skewed-holder"));
    assert_eq!(controller.leader_metric().await, Some(0));

    // The holder stops renewing: taken over once the record stayed unchanged for a Lease.
    renewer.abort();
    let stopped = Instant::now();
    wait("replica-a leads", Duration::from_secs(40), || async {
        holder(&leases).await.as_deref() == Some("replica-a")
    })
    .await;
    let after = stopped.elapsed();
    eprintln!("takeover after the skewed holder stopped: {after:?}");
    assert!(after >= Duration::from_secs(13), "{after:?}");
    drop(controller);
    delete_namespace(client, ns).await;
}

/// SIGKILL during an upgrade: no shutdown path runs. helm gets SIGTERM from the kernel (the
/// parent-death signal) instead of upgrading on without its controller, and records the
/// cancelled upgrade (helm 4 marks an upgrade failed; a release it left pending would be
/// rolled back once older than `--helm-timeout` + 1 min); the standby takes the Lease once
/// it expires and deploys the next generation.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_an_upgrade_is_recovered_by_the_next_leader() {
    let Some(env) = env_with_blocking_chart("hh-e2e-kill", "killed").await else {
        return;
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let (mut a, _b) = leader_and_standby(&env, &["--helm-timeout=20s"]).await;
    let config = |block: bool, replicas: u32| {
        blocking_config(
            &env,
            "killed",
            json!({"blockingHook": block, "replicaCount": replicas}),
        )
    };
    let c = componentkit::memory::component(ns, "killed", "helm", config(false, 1));
    components.create(&PostParams::default(), &c).await.unwrap();
    wait_ready(components, "killed", Duration::from_secs(180)).await;

    // Generation 2 blocks in its pre-upgrade hook; generation 3 waits behind it.
    let patch = |c: serde_json::Value| Patch::Merge(json!({"spec": {"config": c}}));
    components
        .patch("killed", &PatchParams::default(), &patch(config(true, 2)))
        .await
        .unwrap();
    wait(
        "helm waits on the hook",
        Duration::from_secs(120),
        || async { release_status(&env, "killed").as_deref() == Some("pending-upgrade") },
    )
    .await;
    components
        .patch("killed", &PatchParams::default(), &patch(config(false, 3)))
        .await
        .unwrap();
    a.kill();
    let killed = Instant::now();
    // The helm child did not outlive the controller.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let helm_left = Command::new("pgrep")
        .args(["-f", &format!("upgrade --install killed .*{ns}")])
        .output()
        .unwrap();
    assert!(
        helm_left.stdout.is_empty(),
        "helm still running after SIGKILL of its controller: {}",
        String::from_utf8_lossy(&helm_left.stdout)
    );
    wait("generation 3 Ready", Duration::from_secs(240), || async {
        ready_at_generation(components, "killed", 3).await
    })
    .await;
    eprintln!(
        "SIGKILL during an upgrade → Ready under the new leader: {:?}",
        killed.elapsed()
    );
    assert_eq!(release_status(&env, "killed").as_deref(), Some("deployed"));
    assert_eq!(holder(&leases).await.as_deref(), Some("replica-b"));
    delete_namespace(client, ns).await;
}

/// A Component deleted while its install runs: the uninstall waits for the running helm
/// (bounded by `--helm-timeout`), then removes the release and the Component goes.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_component_deleted_during_its_install_is_removed() {
    let Some(env) = env_with_blocking_chart("hh-e2e-delrun", "gone").await else {
        return;
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let _controller = Controller::start_with(
        &env.controller_kc,
        ns,
        env.dir.path(),
        "controller",
        &["--helm-timeout=20s"],
    );
    let config = blocking_config(&env, "gone", json!({"blockingHook": true}));
    let c = componentkit::memory::component(ns, "gone", "helm", config);
    components.create(&PostParams::default(), &c).await.unwrap();
    wait(
        "helm waits on the hook",
        Duration::from_secs(120),
        || async { release_status(&env, "gone").as_deref() == Some("pending-install") },
    )
    .await;
    let deleted = Instant::now();
    components
        .delete("gone", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    e2e_support::wait_gone(components, "gone", Duration::from_secs(180)).await;
    eprintln!("deleted during its install → gone: {:?}", deleted.elapsed());
    assert_eq!(
        release_status(&env, "gone"),
        None,
        "the release is uninstalled"
    );
    delete_namespace(client, ns).await;
}

/// A controller (`--helm-timeout=30s`) that has deployed Component `name` (the chart of the
/// same name) and has just been given its generation 2 (two replicas).
async fn ready_then_new_generation(env: &Env, name: &str) -> Controller {
    let ns = &env.ns;
    let controller = Controller::start_with(
        &env.controller_kc,
        ns,
        env.dir.path(),
        "controller",
        &["--helm-timeout=30s"],
    );
    let config = |replicas: u32| {
        let mut c = oci_config(&env.registry, name, ns, &format!("charts/{name}"));
        c["values"] = e2e_support::merge(image_values(), json!({"replicaCount": replicas}));
        c
    };
    let c = componentkit::memory::component(ns, name, "helm", config(1));
    env.components
        .create(&PostParams::default(), &c)
        .await
        .unwrap();
    wait_ready(&env.components, name, Duration::from_secs(180)).await;
    env.components
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": config(2)}})),
        )
        .await
        .unwrap();
    controller
}

/// etcd stopped for 30 s in the middle of an upgrade: the API server answers nothing useful,
/// helm and the controller's calls fail or hang; nothing is lost — the controller stays
/// alive, and once etcd is back the Component reaches the new generation, deployed.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn etcd_stopped_for_30_s_loses_nothing() {
    let Some(env) = Env::start(
        "hh-e2e-etcd",
        RegistryMode::Anonymous,
        ("outage", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Some(cluster) = env.target.local() else {
        panic!("this test stops the local control plane's etcd: unset HELM_HANDLER_E2E_KUBECONFIG");
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let controller = ready_then_new_generation(&env, "outage").await;
    cluster.signal("etcd", "STOP").unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Alive through the outage.
    assert_eq!(
        controller.get("/healthz").await.map(|(code, _)| code),
        Some(200)
    );
    cluster.signal("etcd", "CONT").unwrap();
    let back = Instant::now();
    wait("generation 2 Ready", Duration::from_secs(240), || async {
        ready_at_generation(components, "outage", 2).await
    })
    .await;
    eprintln!("etcd back → generation 2 Ready: {:?}", back.elapsed());
    assert_eq!(release_status(&env, "outage").as_deref(), Some("deployed"));
    drop(controller);
    delete_namespace(client, ns).await;
}

/// kube-apiserver killed and started again right after a new generation: every connection
/// and watch of the controller (and of a running helm) breaks; the controller re-lists,
/// stays ready and deploys the generation.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn an_apiserver_restart_mid_reconcile_loses_nothing() {
    let Some(env) = Env::start(
        "hh-e2e-apirestart",
        RegistryMode::Anonymous,
        ("restart", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Some(cluster) = env.target.local() else {
        panic!(
            "this test restarts the local control plane's kube-apiserver: unset HELM_HANDLER_E2E_KUBECONFIG"
        );
    };
    let (client, ns, components) = (&env.client, &env.ns, &env.components);
    let controller = ready_then_new_generation(&env, "restart").await;
    let restarted = Instant::now();
    let down = tokio::task::block_in_place(|| cluster.restart_apiserver()).unwrap();
    eprintln!("kube-apiserver down and back in {down:?}");
    wait("generation 2 Ready", Duration::from_secs(240), || async {
        ready_at_generation(components, "restart", 2).await
    })
    .await;
    eprintln!(
        "kube-apiserver restart → generation 2 Ready: {:?}",
        restarted.elapsed()
    );
    assert_eq!(release_status(&env, "restart").as_deref(), Some("deployed"));
    wait(
        "the controller is ready again",
        Duration::from_secs(60),
        || async {
            controller
                .get("/readyz")
                .await
                .is_some_and(|(code, _)| code == 200)
        },
    )
    .await;
    drop(controller);
    delete_namespace(client, ns).await;
}

/// Files of the chart cache that are not directories.
fn cache_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

/// The registry frozen while the controller pulls, then killed (connections reset mid-pull):
/// the Component waits (network, retried), the cache holds no partial entry; once the
/// registry is back on its address, the Component is Ready.
#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_stopped_during_a_pull_leaves_no_partial_entry() {
    let Some(mut env) = Env::start(
        "hh-e2e-regstop",
        RegistryMode::Anonymous,
        ("pulled", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let ns = env.ns.clone();
    let _controller = Controller::start(&env.controller_kc, &ns, env.dir.path());
    let cache = env.dir.path().join("controller-cache");
    env.registry.signal("STOP").unwrap();
    let c = componentkit::memory::component(
        &ns,
        "pulled",
        "helm",
        oci_config(&env.registry, "pulled", &ns, "charts/pulled"),
    );
    env.components
        .create(&PostParams::default(), &c)
        .await
        .unwrap();
    // The controller is waiting on the frozen registry; kill it under the pull.
    tokio::time::sleep(Duration::from_secs(5)).await;
    env.registry.stop();
    let components = env.components.clone();
    wait(
        "a network failure, retried",
        Duration::from_secs(120),
        || async {
            components.get("pulled").await.ok().is_some_and(|c| {
                let phase = c.phase();
                let message = c.status.and_then(|s| s.message).unwrap_or_default();
                message.contains("network") && phase != Phase::Ready
            })
        },
    )
    .await;
    let files = cache_files(&cache);
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with(".tgz") || f.contains(".tmp-")),
        "partial or unverified cache entries after a failed pull: {files:?}"
    );

    let back = Instant::now();
    tokio::task::block_in_place(|| env.registry.restart()).unwrap();
    wait_ready(&components, "pulled", Duration::from_secs(240)).await;
    eprintln!("registry back → Ready: {:?}", back.elapsed());
    let files = cache_files(&cache);
    assert_eq!(
        files.iter().filter(|f| f.ends_with(".tgz")).count(),
        1,
        "{files:?}"
    );
    delete_namespace(&env.client, &ns).await;
}
