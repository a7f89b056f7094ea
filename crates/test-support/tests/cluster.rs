//! The control plane fixture itself: it starts, kwok makes workloads real, RBAC is on, and
//! nothing is left behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use test_support::Cluster;
use test_support::cluster::{NEVER_READY_LABEL, unavailable_reason};

fn wait(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Skips only outside CI when the control plane was never built; in CI it must run.
fn built() -> bool {
    match unavailable_reason() {
        None => true,
        Some(reason) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {reason}");
            false
        }
        Some(reason) => panic!("CI: {reason}"),
    }
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[test]
fn workloads_become_ready_and_rbac_is_enforced_and_nothing_is_left_behind() {
    if !built() {
        return;
    }
    let cluster = Cluster::start().unwrap();
    eprintln!("control plane ready in {:?}", cluster.started_in());
    let dir = cluster.dir().to_path_buf();
    let version = cluster.kubectl_ok(&["version", "-o", "json"]).unwrap();
    assert!(version.contains("\"gitVersion\": \"v1."), "{version}");

    cluster
        .kubectl_ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ])
        .unwrap();
    cluster
        .kubectl_ok(&["create", "job", "once", "--image=busybox"])
        .unwrap();
    cluster
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"stuck","labels":{{"{NEVER_READY_LABEL}":"1"}}}},
                "spec":{{"containers":[{{"name":"c","image":"nginx"}}]}}}}"#
            ),
        )
        .unwrap();
    wait("Deployment available", Duration::from_secs(90), || {
        cluster
            .kubectl_ok(&[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.status.availableReplicas}",
            ])
            .is_ok_and(|s| s.trim() == "2")
    });
    wait("Job complete", Duration::from_secs(90), || {
        cluster
            .kubectl_ok(&["get", "job", "once", "-o", "jsonpath={.status.succeeded}"])
            .is_ok_and(|s| s.trim() == "1")
    });
    let ready = cluster
        .kubectl_ok(&["get", "pod", "stuck", "-o", "jsonpath={.status.phase}"])
        .unwrap();
    assert_eq!(ready.trim(), "Pending", "a never-ready Pod stays Pending");

    // RBAC is on: a ServiceAccount with no bindings may not list Secrets.
    cluster
        .kubectl_ok(&["create", "serviceaccount", "nobody"])
        .unwrap();
    let kc = dir.join("nobody.kubeconfig");
    cluster
        .service_account_kubeconfig("default", "nobody", &kc)
        .unwrap();
    let out = std::process::Command::new(test_support::cluster::kubectl_bin())
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "secrets"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("forbidden") && err.contains("system:serviceaccount:default:nobody"),
        "{err}"
    );

    let pids: Vec<u32> = std::fs::read_to_string(dir.join("pids"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(
        pids.len(),
        5,
        "etcd, apiserver, controller-manager, scheduler, kwok"
    );
    drop(cluster);
    assert!(!dir.exists(), "the cluster's directory is removed");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is gone"
        );
    }
}
