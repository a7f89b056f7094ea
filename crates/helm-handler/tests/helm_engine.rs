//! The release engine: what it passes to helm (observed by a fake helm script that records
//! its argv, environment and values file), timeouts, per-release serialisation, and the real
//! helm 4 for behaviour — version check, `template` and `install --dry-run=client` on a chart
//! pulled from the real registry, "not found"/"in progress" through helm's memory storage
//! driver, "unreachable" against a kubeconfig pointing at a closed port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use componentkit::handler::ErrorCategory;
use helm_handler::helm::{
    HelmEngine, HelmEngineOptions, HelmError, Release, ReleaseEngine, ReleaseStatus,
    UninstallOutcome, UpgradeOptions,
};
use helm_handler::identity::{Identity, ServiceAccountName};
use serde_json::{Map, Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helm")
}

fn real_helm() -> Option<PathBuf> {
    let bin = test_support::helm_bin();
    let ok = std::process::Command::new(&bin)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: no helm binary at {bin:?} (run scripts/dev-setup)");
    }
    ok.then_some(bin)
}

/// A fake helm: records argv (one per line), env, and the values file (content, modes,
/// path) into `$FAKE_HELM_RECORD/<n>/`, then behaves according to `$FAKE_HELM_*`.
const FAKE_HELM: &str = r#"#!/bin/bash
rec="$FAKE_HELM_RECORD"
d="$rec/$(date +%s%N)-$$"
mkdir -p "$d"
printf '%s\n' "$@" > "$d/argv"
env > "$d/env"
date +%s%N > "$d/start"
prev=""
for a in "$@"; do
  if [ "$prev" = "-f" ]; then
    stat -c '%a' "$a" > "$d/values-mode"
    stat -c '%a' "$(dirname "$a")" > "$d/values-dir-mode"
    cp "$a" "$d/values"
    printf '%s' "$a" > "$d/values-path"
  fi
  prev="$a"
done
case "$1" in
  version) printf '%s' "${FAKE_HELM_VERSION:-v4.1.4}" ;;
  upgrade)
    if [ -n "$FAKE_HELM_SLEEP" ]; then sleep "$FAKE_HELM_SLEEP"; fi
    cat "$FAKE_HELM_UPGRADE_JSON" ;;
  status)
    if [ -n "$FAKE_HELM_STDERR_FLOOD" ]; then head -c "$FAKE_HELM_STDERR_FLOOD" /dev/zero | tr '\0' 'w' >&2; echo >&2; fi
    echo 'Error: release: not found' >&2; date +%s%N > "$d/end"; exit 1 ;;
  get)
    if [ -n "$FAKE_HELM_FLOOD" ]; then head -c "$FAKE_HELM_FLOOD" /dev/zero; fi
    echo "---" ;;
  hang) echo $$ > "$rec/hang.pid"; exec sleep 30 ;;
  *) echo "---" ;;
esac
date +%s%N > "$d/end"
"#;

struct Fake {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    record: PathBuf,
    work: PathBuf,
}

fn fake_helm() -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("helm");
    std::fs::write(&bin, FAKE_HELM).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let record = dir.path().join("record");
    std::fs::create_dir(&record).unwrap();
    let work = dir.path().join("work");
    Fake {
        bin,
        record,
        work,
        _dir: dir,
    }
}

impl Fake {
    fn options(&self) -> HelmEngineOptions {
        let mut extra_env = BTreeMap::new();
        extra_env.insert(
            "FAKE_HELM_RECORD".to_string(),
            self.record.display().to_string(),
        );
        extra_env.insert(
            "FAKE_HELM_UPGRADE_JSON".to_string(),
            fixtures()
                .join("v4/upgrade-dry-run.json")
                .display()
                .to_string(),
        );
        HelmEngineOptions {
            helm_binary: self.bin.clone(),
            work_dir: Some(self.work.clone()),
            timeout: Duration::from_secs(30),
            history_max: 5,
            extra_env,
            ..HelmEngineOptions::default()
        }
    }

    /// The recorded invocations, oldest first.
    fn calls(&self) -> Vec<PathBuf> {
        let mut calls: Vec<PathBuf> = std::fs::read_dir(&self.record)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        calls.sort();
        calls
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

fn env_map(dir: &Path) -> BTreeMap<String, String> {
    read(dir, "env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn values(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn upgrade_command_line_environment_and_values_file() {
    // A HELM_* variable of ours must not reach helm (it could point at a user's registry
    // login); set it for this process (other tests of this binary do not read it).
    unsafe {
        std::env::set_var(
            "HELM_REGISTRY_CONFIG",
            "/home/someone/.config/helm/registry.json",
        );
        std::env::set_var("HELM_KUBECONTEXT", "users-context");
    }
    let fake = fake_helm();
    let mut options = fake.options();
    options.kubeconfig = Some(PathBuf::from("/etc/kube/config"));
    options.kube_context = Some("prod".into());
    let engine = HelmEngine::new(options).unwrap();
    let release = Release::parse("web", "apps").unwrap();
    let chart = Path::new("/charts/web-1.2.3.tgz");
    let secret_values = values(json!({
        "auth": {"password": "s3cr3t-value-never-on-argv"},
        "replicaCount": 2
    }));
    let info = engine
        .upgrade_install(
            &release,
            chart,
            &secret_values,
            &UpgradeOptions {
                create_namespace: true,
                ..UpgradeOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(info.status, ReleaseStatus::PendingInstall);
    assert_eq!(info.chart.unwrap().name, "mychart");

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    let argv: Vec<String> = read(call, "argv").lines().map(str::to_string).collect();
    let values_path = read(call, "values-path");
    let expected: Vec<String> = [
        "upgrade",
        "--install",
        "web",
        "/charts/web-1.2.3.tgz",
        "--namespace",
        "apps",
        "--history-max",
        "5",
        "--reset-values",
        "--output",
        "json",
        "--timeout",
        "26s",
        "--create-namespace",
        "-f",
        values_path.as_str(),
        "--kube-context",
        "prod",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(argv, expected);
    assert!(!argv.iter().any(|a| a.contains("s3cr3t")), "{argv:?}");
    assert!(!argv.iter().any(|a| a.contains("--wait")), "{argv:?}");

    // Values: JSON in a 0600 file, in a 0700 directory under the work dir, gone afterwards.
    let written: Value = serde_json::from_str(&read(call, "values")).unwrap();
    assert_eq!(written, Value::Object(secret_values));
    assert_eq!(read(call, "values-mode").trim(), "600");
    assert_eq!(read(call, "values-dir-mode").trim(), "700");
    assert!(
        values_path.starts_with(fake.work.to_str().unwrap()),
        "{values_path}"
    );
    assert!(!Path::new(&values_path).exists(), "values file left behind");
    assert!(!Path::new(&values_path).parent().unwrap().exists());

    // Environment: private helm homes, our HELM_* removed, KUBECONFIG from the options.
    let env = env_map(call);
    let work = fake.work.display().to_string();
    for (key, under) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
        ("HELM_REGISTRY_CONFIG", "config/registry/config.json"),
        ("HELM_REPOSITORY_CONFIG", "config/repositories.yaml"),
    ] {
        assert_eq!(env.get(key), Some(&format!("{work}/{under}")), "{key}");
    }
    assert!(!env.contains_key("HELM_KUBECONTEXT"), "{env:?}");
    assert_eq!(
        env.get("GOGC").map(String::as_str),
        Some(helm_handler::helm::HELM_GOGC),
        "helm collects less often (a fifth of its CPU)"
    );
    assert_eq!(
        env.get("KUBECONFIG").map(String::as_str),
        Some("/etc/kube/config")
    );
    assert!(!env.values().any(|v| v.contains("s3cr3t")));
    // The work directory layout is private.
    use std::os::unix::fs::PermissionsExt;
    for sub in ["", "config", "cache", "data", "scratch"] {
        let mode = std::fs::metadata(fake.work.join(sub))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
}

#[tokio::test]
async fn other_command_lines() {
    let fake = fake_helm();
    let mut options = fake.options();
    options.kube_context = Some("ctx".into());
    let engine = HelmEngine::new(options).unwrap();
    let release = Release::parse("web", "apps").unwrap();
    // `status` → the fake says "release: not found" → None.
    assert!(engine.status(&release).await.unwrap().is_none());
    engine.get_manifest(&release).await.unwrap();
    assert_eq!(
        engine.uninstall(&release).await.unwrap(),
        UninstallOutcome::Uninstalled
    );
    engine
        .template(&release, Path::new("/c.tgz"), &Map::new())
        .await
        .unwrap();
    engine.rollback(&release, Some(3)).await.unwrap();
    engine.rollback(&release, None).await.unwrap();
    let argvs: Vec<String> = fake
        .calls()
        .iter()
        .map(|c| read(c, "argv").lines().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        argvs[0],
        "status web --namespace apps --output json --kube-context ctx"
    );
    assert_eq!(
        argvs[1],
        "get manifest web --namespace apps --kube-context ctx"
    );
    assert_eq!(
        argvs[2],
        "uninstall web --namespace apps --timeout 26s --kube-context ctx"
    );
    assert!(
        argvs[3].starts_with("template web /c.tgz --namespace apps --include-crds -f "),
        "{}",
        argvs[3]
    );
    assert!(!argvs[3].contains("--kube-context"), "template is offline");
    assert_eq!(
        argvs[4],
        "rollback web 3 --namespace apps --history-max 5 --timeout 26s --kube-context ctx"
    );
    assert_eq!(
        argvs[5],
        "rollback web --namespace apps --history-max 5 --timeout 26s --kube-context ctx"
    );
}

/// A release acted on as a ServiceAccount: every command that talks to the cluster carries
/// `--kube-as-user system:serviceaccount:NS:NAME` (and no group: the API server adds the
/// ServiceAccount's own); `template` (offline) does not.
#[tokio::test]
async fn a_service_account_identity_is_impersonated_by_every_cluster_command() {
    let fake = fake_helm();
    let engine = HelmEngine::new(fake.options()).unwrap();
    let release = Release::parse("web", "apps")
        .unwrap()
        .acting_as(Identity::service_account(
            "apps",
            ServiceAccountName::new("deployer").unwrap(),
        ));
    engine
        .upgrade_install(
            &release,
            Path::new("/c.tgz"),
            &Map::new(),
            &UpgradeOptions::default(),
        )
        .await
        .unwrap();
    assert!(engine.status(&release).await.unwrap().is_none());
    engine.get_manifest(&release).await.unwrap();
    engine.uninstall(&release).await.unwrap();
    engine.rollback(&release, None).await.unwrap();
    engine
        .template(&release, Path::new("/c.tgz"), &Map::new())
        .await
        .unwrap();
    let argvs: Vec<Vec<String>> = fake
        .calls()
        .iter()
        .map(|c| read(c, "argv").lines().map(str::to_string).collect())
        .collect();
    assert_eq!(argvs.len(), 6);
    for argv in &argvs[..5] {
        let at = argv
            .iter()
            .position(|a| a == "--kube-as-user")
            .unwrap_or_else(|| panic!("no --kube-as-user in {argv:?}"));
        assert_eq!(argv[at + 1], "system:serviceaccount:apps:deployer");
        assert!(!argv.iter().any(|a| a == "--kube-as-group"), "{argv:?}");
    }
    assert!(!argvs[5].iter().any(|a| a.starts_with("--kube-as")));
}

#[tokio::test]
async fn dry_run_flag_follows_the_helm_version() {
    for (version, flag) in [("v4.1.4", "--dry-run=client"), ("v3.12.3", "--dry-run")] {
        let fake = fake_helm();
        let mut options = fake.options();
        options
            .extra_env
            .insert("FAKE_HELM_VERSION".into(), version.into());
        let engine = HelmEngine::new(options).unwrap();
        engine.check_version().await.unwrap();
        let opts = UpgradeOptions {
            dry_run_client: true,
            ..UpgradeOptions::default()
        };
        engine
            .upgrade_install(
                &Release::parse("a", "b").unwrap(),
                Path::new("/c.tgz"),
                &Map::new(),
                &opts,
            )
            .await
            .unwrap();
        let calls = fake.calls();
        let argv = read(calls.last().unwrap(), "argv");
        assert!(argv.lines().any(|l| l == flag), "{version}: {argv}");
        assert!(!argv.contains("--create-namespace"));
    }
}

/// The engine takes only a `Release`, and a release helm would refuse or read as a flag
/// cannot be built: such names never reach helm.
#[test]
fn releases_helm_would_refuse_or_misread_cannot_be_built() {
    for (name, namespace) in [("--kubeconfig=/tmp/x", "apps"), ("web", "-n"), ("", "apps")] {
        let err = Release::parse(name, namespace).unwrap_err();
        assert_eq!(err.category(), ErrorCategory::Config, "{err}");
    }
}

/// Shutdown (or a lost Lease) stops a running helm with SIGTERM — helm then records a failed
/// revision instead of leaving the release pending — and no helm starts after it.
#[tokio::test]
async fn a_running_helm_gets_sigterm_when_the_controller_must_stop() {
    use helm_handler::helm::stop::{HelmStop, StopReason};
    let fake = fake_helm();
    let engine = HelmEngine::new(fake.options()).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = HelmStop::new(componentkit::leadership::Leadership::always(), rx);
    let started = Instant::now();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tx.send_replace(true);
        tx
    });
    let err = helm_handler::helm::command::run(
        engine.command(&["hang".into()]),
        &fake.bin,
        "upgrade",
        Duration::from_secs(60),
        &stop,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            HelmError::Stopped {
                reason: StopReason::Shutdown,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.category(), ErrorCategory::Conflict, "transient");
    // SIGTERM ended it well before the kill deadline.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let pid = std::fs::read_to_string(fake.record.join("hang.pid")).unwrap();
    assert!(!PathBuf::from(format!("/proc/{}", pid.trim())).exists());
    let _tx = stopper.await.unwrap();
    // Nothing starts any more.
    let err = helm_handler::helm::command::run(
        engine.command(&["hang".into()]),
        &fake.bin,
        "upgrade",
        Duration::from_secs(60),
        &stop,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("shutting down"), "{err}");
}

#[tokio::test]
async fn a_hanging_helm_is_killed_at_the_timeout() {
    let fake = fake_helm();
    let mut options = fake.options();
    options.timeout = Duration::from_millis(700);
    let engine = HelmEngine::new(options).unwrap();
    // The fake treats a first argument "hang" as `exec sleep 30`; run that invocation with
    // the engine's environment through the engine's runner.
    let started = Instant::now();
    let err = helm_handler::helm::command::run(
        engine.command(&["hang".into()]),
        &fake.bin,
        "upgrade",
        Duration::from_millis(700),
        &helm_handler::helm::stop::HelmStop::default(),
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, HelmError::Timeout { .. }), "{err}");
    assert_eq!(err.category(), ErrorCategory::Timeout);
    assert!(err.to_string().contains("killed"), "{err}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let pid = std::fs::read_to_string(fake.record.join("hang.pid")).unwrap();
    let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
    // Killed and reaped: no process (not even a zombie) left.
    assert!(!proc.exists(), "helm process {} still exists", pid.trim());

    // Through an operation too: upgrade with a slow fake.
    let mut options = fake.options();
    options.timeout = Duration::from_millis(500);
    options
        .extra_env
        .insert("FAKE_HELM_SLEEP".into(), "20".into());
    let engine = HelmEngine::new(options).unwrap();
    let started = Instant::now();
    let err = engine
        .upgrade_install(
            &Release::parse("a", "b").unwrap(),
            Path::new("/c.tgz"),
            &Map::new(),
            &UpgradeOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HelmError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn one_operation_per_release_at_a_time() {
    let fake = fake_helm();
    let mut options = fake.options();
    options
        .extra_env
        .insert("FAKE_HELM_SLEEP".into(), "0.4".into());
    let engine = Arc::new(HelmEngine::new(options).unwrap());
    let run = |name: &'static str| {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .upgrade_install(
                    &Release::parse(name, "ns").unwrap(),
                    Path::new("/c.tgz"),
                    &Map::new(),
                    &UpgradeOptions::default(),
                )
                .await
                .unwrap();
        })
    };
    let tasks = [run("same"), run("same"), run("other")];
    for t in tasks {
        t.await.unwrap();
    }
    let interval = |c: &PathBuf| {
        let n = |f| read(c, f).trim().parse::<u128>().unwrap();
        (n("start"), n("end"))
    };
    let calls = fake.calls();
    let same: Vec<(u128, u128)> = calls
        .iter()
        .filter(|c| read(c, "argv").lines().nth(2) == Some("same"))
        .map(interval)
        .collect();
    let other: Vec<(u128, u128)> = calls
        .iter()
        .filter(|c| read(c, "argv").lines().nth(2) == Some("other"))
        .map(interval)
        .collect();
    assert_eq!((same.len(), other.len()), (2, 1));
    let (a, b) = (same[0], same[1]);
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "same release overlapped: {a:?} {b:?}"
    );
    let o = other[0];
    assert!(
        same.iter().any(|s| s.0 < o.1 && o.0 < s.1),
        "different releases should run concurrently: {same:?} {o:?}"
    );
}

#[tokio::test]
async fn version_check() {
    // Absent binary: a clear error naming the path.
    let engine = HelmEngine::new(HelmEngineOptions {
        helm_binary: PathBuf::from("/nonexistent/bin/helm"),
        ..HelmEngineOptions::default()
    })
    .unwrap();
    let err = engine.check_version().await.unwrap_err();
    assert!(matches!(err, HelmError::NotInstalled { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/bin/helm"), "{err}");
    assert!(err.to_string().contains("--helm-binary"), "{err}");

    // Too old, and not a version.
    for (printed, want) in [
        ("v3.7.2", "too old"),
        ("v2.17.0", "too old"),
        ("garbage", "could not read"),
    ] {
        let fake = fake_helm();
        let mut options = fake.options();
        options
            .extra_env
            .insert("FAKE_HELM_VERSION".into(), printed.into());
        let engine = HelmEngine::new(options).unwrap();
        let err = engine.check_version().await.unwrap_err();
        assert!(err.to_string().contains(want), "{printed}: {err}");
        assert_eq!(err.category(), ErrorCategory::Config);
    }

    // The real helm.
    let Some(bin) = real_helm() else { return };
    let engine = HelmEngine::new(HelmEngineOptions {
        helm_binary: bin,
        ..HelmEngineOptions::default()
    })
    .unwrap();
    let v = engine.check_version().await.unwrap();
    assert!(v.major >= 3, "{v}");
    assert_eq!(engine.version(), Some(v));
}

/// A kubeconfig whose API server is a closed port.
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         contexts: [{name: ctx, context: {cluster: c, user: u}}]\ncurrent-context: ctx\n\
         users: [{name: u, user: {token: not-a-real-token}}]\n",
    )
    .unwrap();
    path
}

/// An engine over the real helm, with helm's memory storage driver loaded from `releases`
/// (a JSON list of helm release objects) and no reachable cluster.
fn memory_engine(dir: &Path, bin: PathBuf, releases: &Value) -> HelmEngine {
    let data = dir.join("memory-driver.json");
    std::fs::write(&data, releases.to_string()).unwrap();
    let mut extra_env = BTreeMap::new();
    extra_env.insert("HELM_DRIVER".to_string(), "memory".to_string());
    extra_env.insert(
        "HELM_MEMORY_DRIVER_DATA".to_string(),
        data.display().to_string(),
    );
    HelmEngine::new(HelmEngineOptions {
        helm_binary: bin,
        kubeconfig: Some(unreachable_kubeconfig(dir)),
        work_dir: Some(dir.join("work")),
        timeout: Duration::from_secs(60),
        extra_env,
        ..HelmEngineOptions::default()
    })
    .unwrap()
}

fn stored_release(status: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("v4/upgrade-dry-run.json")).unwrap();
    let mut release: Value = serde_json::from_str(&text).unwrap();
    release["info"]["status"] = status.into();
    release["info"]["description"] = "stored for a test".into();
    json!([release])
}

#[tokio::test]
async fn real_helm_release_lifecycle_answers() {
    let Some(bin) = real_helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let release = Release::parse("rel", "ns").unwrap();

    // Nothing stored.
    let engine = memory_engine(dir.path(), bin.clone(), &json!([]));
    assert!(engine.status(&release).await.unwrap().is_none());
    let err = engine.get_manifest(&release).await.unwrap_err();
    assert!(err.is_release_not_found(), "{err}");
    assert_eq!(err.category(), ErrorCategory::NotFound);
    assert_eq!(
        engine.uninstall(&release).await.unwrap(),
        UninstallOutcome::AlreadyGone
    );

    // A deployed release.
    let engine = memory_engine(dir.path(), bin.clone(), &stored_release("deployed"));
    let info = engine.status(&release).await.unwrap().unwrap();
    assert_eq!(info.status, ReleaseStatus::Deployed);
    assert_eq!(
        (info.name.as_str(), info.namespace.as_str(), info.revision),
        ("rel", "ns", 1)
    );
    let manifest = engine.get_manifest(&release).await.unwrap();
    assert!(manifest.contains("kind: Deployment"), "{manifest}");
    let refs = helm_handler::readiness::parse_manifest(&manifest, "ns").unwrap();
    assert_eq!(refs.len(), 3);
    assert_eq!(
        engine.uninstall(&release).await.unwrap(),
        UninstallOutcome::Uninstalled
    );

    // A release with an operation in flight: helm refuses, transient conflict.
    let engine = memory_engine(dir.path(), bin.clone(), &stored_release("pending-upgrade"));
    let chart = dir.path().join("chart.tgz");
    let tgz = test_support::Chart::create("mychart", "0.1.0")
        .package(dir.path())
        .unwrap();
    std::fs::rename(tgz, &chart).unwrap();
    let err = engine
        .upgrade_install(&release, &chart, &Map::new(), &UpgradeOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HelmError::OperationInProgress { .. }),
        "{err}"
    );
    assert!(err.category().is_transient());
}

#[tokio::test]
async fn real_helm_unreachable_cluster_is_a_network_error() {
    let Some(bin) = real_helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engine = HelmEngine::new(HelmEngineOptions {
        helm_binary: bin,
        kubeconfig: Some(unreachable_kubeconfig(dir.path())),
        timeout: Duration::from_secs(60),
        ..HelmEngineOptions::default()
    })
    .unwrap();
    let release = Release::parse("rel", "ns").unwrap();
    let err = engine.status(&release).await.unwrap_err();
    assert!(matches!(err, HelmError::Unreachable { .. }), "{err}");
    assert_eq!(err.category(), ErrorCategory::Network);
    let err = engine.uninstall(&release).await.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Network, "{err}");
}

/// Pushes a chart to the real registry and locates it through chart-source's OCI source
/// (the controller's path) into a cache; returns the cached .tgz.
async fn chart_from_registry(work: &Path, chart: test_support::Chart) -> Option<PathBuf> {
    if !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("SKIP: /usr/bin/docker-registry missing (run scripts/dev-setup)");
        return None;
    }
    let registry = test_support::Registry::start(test_support::RegistryMode::Anonymous).unwrap();
    let (name, version) = (chart.name().to_string(), chart.version().to_string());
    let tgz = chart.package(&work.join("pkg")).unwrap();
    registry.push(&tgz, "charts").unwrap();
    let spec = chart_source::spec::parse_source(&json!({
        "source": {
            "type": "oci",
            "chart": registry.oci_ref(&format!("charts/{name}"), &version),
            "plainHTTP": true
        }
    }))
    .unwrap();
    let cache = Arc::new(
        chart_source::cache::ChartCache::open(chart_source::cache::CacheConfig {
            dir: work.join("cache"),
            max_bytes: 100 << 20,
        })
        .unwrap(),
    );
    let sources = chart_source::registry::SourceRegistry::new(
        chart_source::registry::SourceContext::new(cache),
    );
    let located = sources
        .build(&spec, chart_source::source::SourceAuth::default())
        .unwrap()
        .locate()
        .await
        .unwrap();
    assert_eq!(
        (located.name.as_str(), located.version.as_str()),
        (name.as_str(), version.as_str())
    );
    Some(located.path)
}

#[tokio::test]
async fn real_helm_template_and_client_dry_run_on_a_registry_chart() {
    let Some(bin) = real_helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let chart = test_support::Chart::create("web", "1.2.3")
        .app_version("2.0.0")
        .file(
            "templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-msg\ndata:\n  message: {{ .Values.message | quote }}\n  replicas: {{ .Values.replicaCount | quote }}\n",
        );
    let Some(tgz) = chart_from_registry(dir.path(), chart).await else {
        return;
    };
    let engine = memory_engine(dir.path(), bin, &json!([]));
    engine.check_version().await.unwrap();
    let release = Release::parse("site", "web-apps").unwrap();
    let vals = values(json!({"message": "from values", "replicaCount": 3}));

    let rendered = engine.template(&release, &tgz, &vals).await.unwrap();
    let refs = helm_handler::readiness::parse_manifest(&rendered, "web-apps").unwrap();
    assert!(
        refs.iter()
            .any(|r| r.to_string() == "ConfigMap/web-apps/site-msg"),
        "{refs:?}"
    );
    assert!(rendered.contains("message: \"from values\""), "{rendered}");
    assert!(rendered.contains("replicas: \"3\""), "{rendered}");

    // helm 4's client dry run needs no cluster at all (helm 3 would ask for the version).
    if engine.version().is_some_and(|v| v.major >= 4) {
        let info = engine
            .upgrade_install(
                &release,
                &tgz,
                &vals,
                &UpgradeOptions {
                    dry_run_client: true,
                    create_namespace: true,
                    ..UpgradeOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(info.name, "site");
        assert_eq!(info.namespace, "web-apps");
        assert_eq!(info.revision, 1);
        assert_eq!(info.status, ReleaseStatus::PendingInstall);
        let chart = info.chart.clone().unwrap();
        assert_eq!(
            (chart.name.as_str(), chart.version.as_str()),
            ("web", "1.2.3")
        );
        assert_eq!(chart.app_version.as_deref(), Some("2.0.0"));
        assert!(info.manifest.contains("message: \"from values\""));
    }

    // A template error in the chart is a config error with helm's message.
    let broken = test_support::Chart::create("broken", "0.1.0").file(
        "templates/bad.yaml",
        "{{ required \"image.digest is required\" .Values.image.digest }}\n",
    );
    let broken_tgz = broken.package(&dir.path().join("pkg2")).unwrap();
    let err = engine
        .template(&release, &broken_tgz, &Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, HelmError::Render { .. }), "{err}");
    assert_eq!(err.category(), ErrorCategory::Config);
    assert!(
        err.to_string().contains("image.digest is required"),
        "{err}"
    );
}

#[tokio::test]
async fn output_is_bounded() {
    use helm_handler::helm::command::{MAX_STDERR, MAX_STDOUT};
    let fake = fake_helm();
    let mut options = fake.options();
    options
        .extra_env
        .insert("FAKE_HELM_FLOOD".into(), (MAX_STDOUT + 1).to_string());
    options.extra_env.insert(
        "FAKE_HELM_STDERR_FLOOD".into(),
        (4 * MAX_STDERR).to_string(),
    );
    let engine = HelmEngine::new(options).unwrap();
    let release = Release::parse("web", "apps").unwrap();
    let err = engine.get_manifest(&release).await.unwrap_err();
    assert!(matches!(err, HelmError::OutputTooLarge { .. }), "{err}");
    // A megabyte of warnings before helm's error: the error (printed last) still decides.
    assert!(engine.status(&release).await.unwrap().is_none());
}
