//! `helm-handler run`, the real binary: start-up checks fail fast with clear messages; an
//! unreachable API server is retried for `--startup-timeout` while `/healthz` and `/metrics`
//! answer (and `/readyz` does not), then the process exits naming the server and the
//! network error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A plain HTTP/1.1 GET; returns (status code, body), or None when nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1.to_string())?;
    Some((code, body))
}

fn kubeconfig(dir: &Path, api_port: u16) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: closed
  cluster:
    server: https://127.0.0.1:{api_port}
    insecure-skip-tls-verify: true
users:
- name: test
  user:
    token: not-a-real-token
contexts:
- name: closed
  context:
    cluster: closed
    user: test
current-context: closed
"
        ),
    )
    .unwrap();
    path
}

fn base_command(dir: &Path) -> Command {
    command_with_helm(dir, &test_support::helm_bin())
}

fn command_with_helm(dir: &Path, helm: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-handler"));
    cmd.arg("run")
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--helm-binary")
        .arg(helm)
        .arg("--log-format=json")
        .env("RUST_LOG", "info")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn unreachable_api_server_is_retried_then_fails_with_a_network_message() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let metrics_port = free_port();
    let started = Instant::now();
    let child = base_command(dir.path())
        .arg("--no-leader-election")
        .arg("--kubeconfig")
        .arg(kubeconfig(dir.path(), api_port))
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .arg("--startup-timeout=6s")
        .spawn()
        .unwrap();

    // While it retries: alive, not ready, metrics served.
    let mut health = None;
    while started.elapsed() < Duration::from_secs(5) && health.is_none() {
        health = get(metrics_port, "/healthz");
        if health.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (code, body) = health.expect("/healthz answers while the API server is retried");
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(metrics_port, "/readyz").unwrap();
    assert_eq!(code, 503, "not ready before the controller runs: {body}");
    let (code, metrics) = get(metrics_port, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("helm_handler_build_info"), "{metrics}");
    assert!(
        metrics.contains("helm_handler_chart_cache_hits_total 0"),
        "{metrics}"
    );

    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(20),
        "took {elapsed:?} to give up"
    );
    assert!(
        stderr.contains(&format!(
            "cannot reach the Kubernetes API server at https://127.0.0.1:{api_port}"
        )),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "the cause is named: {stderr}"
    );
    // Structured logs: one JSON object per line, and the token never appears.
    let json_lines = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect::<Vec<_>>();
    assert!(
        json_lines
            .iter()
            .any(|l| l["message"] == "serving /metrics, /healthz and /readyz"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-a-real-token"), "{stderr}");
    // The server is gone with the process.
    assert!(get(metrics_port, "/healthz").is_none());
}

#[test]
fn missing_helm_binary_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let out = command_with_helm(dir.path(), &dir.path().join("no-such-helm"))
        .arg("--no-leader-election")
        .arg("--kubeconfig")
        .arg(kubeconfig(dir.path(), free_port()))
        .arg("--metrics-addr=127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-helm"), "{stderr}");
    assert!(stderr.contains("--helm-binary"), "{stderr}");
}

#[test]
fn unreadable_kubeconfig_and_bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = base_command(dir.path())
        .arg("--kubeconfig")
        .arg(dir.path().join("missing-kubeconfig"))
        .arg("--metrics-addr=127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing-kubeconfig"), "{stderr}");

    let out = base_command(dir.path())
        .arg("--log-format=xml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = base_command(dir.path())
        .arg("--concurrency=0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A lockdown ServiceAccount that could not exist is refused before anything starts.
    let out = base_command(dir.path())
        .arg("--default-service-account=Helm_Deployer")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--default-service-account"), "{stderr}");
    assert!(stderr.contains("Helm_Deployer"), "{stderr}");
}
