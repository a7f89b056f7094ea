//! `helm-handler template`: the real binary on YAML files with Components and Secrets,
//! charts pushed by the real helm to the real registry, rendered by the real helm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::{Chart, Registry, RegistryMode};

fn available() -> bool {
    let ok = test_support::helm_bin().exists() && Path::new("/usr/bin/docker-registry").exists();
    if !ok {
        eprintln!("SKIP: helm or docker-registry missing (run scripts/dev-setup)");
    }
    ok
}

fn template(files: &[&Path], cache: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-handler"));
    cmd.arg("template");
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.arg("--cache-dir")
        .arg(cache)
        .arg("--helm-binary")
        .arg(test_support::helm_bin())
        .args(extra)
        // No cluster is needed: make sure none is reachable.
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    cmd.output().unwrap()
}

fn chart_with_configmap(name: &str, version: &str) -> Chart {
    Chart::create(name, version).file(
        "templates/message.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-message\n  namespace: {{ .Release.Namespace }}\ndata:\n  message: {{ .Values.message | default \"none\" | quote }}\n",
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    registry: Registry,
}

fn setup(mode: RegistryMode) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let registry = Registry::start(mode).unwrap();
    let pkg = path.join("pkg");
    registry
        .push(
            &chart_with_configmap("web", "1.0.0").package(&pkg).unwrap(),
            "charts",
        )
        .unwrap();
    registry
        .push(
            &Chart::create("broken", "0.1.0")
                .file("templates/bad.yaml", "{{ fail \"broken on purpose\" }}\n")
                .package(&pkg)
                .unwrap(),
            "charts",
        )
        .unwrap();
    Setup {
        _dir: dir,
        dir: path,
        registry,
    }
}

#[test]
fn renders_each_component_with_its_values_and_a_header() {
    if !available() {
        return;
    }
    let s = setup(RegistryMode::Anonymous);
    let web = s.registry.oci_ref("charts/web", "1.0.0");
    let file = s.dir.join("components.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: site\n  namespace: team-a\nspec:\n  handler: helm\n  config:\n    releaseName: site\n    releaseNamespace: web\n    serviceAccountName: deployer\n    values:\n      message: hello from values\n    source:\n      type: oci\n      chart: {web}\n      plainHTTP: true\n\
             ---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: other-handler\n  namespace: team-a\nspec:\n  handler: terraform\n  config: {{}}\n\
             ---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: flat\n  namespace: team-b\nspec:\n  handler: helm\n  config:\n    releaseName: flat\n    chart: {web}\n    plainHTTP: true\n"
        ),
    )
    .unwrap();
    let out = template(&[&file], &s.dir.join("cache"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // One header per helm Component, in file order; the terraform one is skipped.
    let headers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("# Source component:"))
        .collect();
    assert_eq!(
        headers,
        [
            "# Source component: team-a/site",
            "# Source component: team-b/flat"
        ]
    );
    let (first, second) = stdout
        .split_once("# Source component: team-b/flat")
        .unwrap();
    assert!(first.contains("name: site-message"), "{first}");
    assert!(first.contains("namespace: web"), "{first}");
    assert!(first.contains("message: \"hello from values\""), "{first}");
    assert!(first.contains("kind: Deployment"), "{first}");
    // The flat form: release namespace defaults to the Component's; no values.
    assert!(second.contains("name: flat-message"), "{second}");
    assert!(second.contains("namespace: team-b"), "{second}");
    assert!(second.contains("message: \"none\""), "{second}");

    // Who each would be installed as.
    let identities = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.starts_with("# Runs as: "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        identities(&stdout),
        [
            "# Runs as: system:serviceaccount:team-a:deployer",
            "# Runs as: the controller's own identity"
        ]
    );

    // A second run (charts now cached) gives the same output.
    let again = template(&[&file], &s.dir.join("cache"), &[]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);

    // Under lockdown, a Component without serviceAccountName runs as the default one.
    let locked = template(
        &[&file],
        &s.dir.join("cache"),
        &["--default-service-account", "helm-deployer"],
    );
    assert!(locked.status.success());
    assert_eq!(
        identities(&String::from_utf8_lossy(&locked.stdout)),
        [
            "# Runs as: system:serviceaccount:team-a:deployer",
            "# Runs as: system:serviceaccount:team-b:helm-deployer"
        ]
    );
}

#[test]
fn failures_are_reported_per_component_and_others_still_render() {
    if !available() {
        return;
    }
    let s = setup(RegistryMode::BasicAuth);
    let web = s.registry.oci_ref("charts/web", "1.0.0");
    let broken = s.registry.oci_ref("charts/broken", "0.1.0");
    let missing = s.registry.oci_ref("charts/web", "9.9.9");
    let user = s.registry.username().unwrap();
    let pass = s.registry.password().unwrap();
    let file = s.dir.join("components.yaml");
    let component = |name: &str, chart: &str| {
        format!(
            "---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  handler: helm\n  config:\n    releaseName: {name}\n    source:\n      type: oci\n      chart: {chart}\n      plainHTTP: true\n      authentication:\n        method: registry\n        secretRef: {{name: creds}}\n"
        )
    };
    let mut yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: apps\nstringData:\n  username: {user}\n  password: {pass}\n"
    );
    yaml.push_str(&component("good", &web));
    yaml.push_str(&component("broken", &broken));
    yaml.push_str(&component("missing", &missing));
    std::fs::write(&file, yaml).unwrap();
    let out = template(&[&file], &s.dir.join("cache"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("# Source component: apps/good"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("name: good-message"), "{stdout}");
    assert!(!stdout.contains("apps/broken"), "{stdout}");
    assert!(
        stderr.contains("apps/broken error: config: helm template: the chart could not be rendered: execution error at (broken/templates/bad.yaml:1:3): broken on purpose"),
        "{stderr}"
    );
    assert!(stderr.contains("apps/missing error: not"), "{stderr}");
    // The password never appears anywhere.
    assert!(!stdout.contains(pass) && !stderr.contains(pass));
}

#[test]
fn unusable_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = template(
        &[&dir.path().join("nope.yaml")],
        &dir.path().join("cache"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-handler"));
    let out = cmd
        .args(["template", "-f"])
        .arg(&file)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["--helm-binary", "/nonexistent/helm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/helm"), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
}

/// A Component's values read as kubectl and helm read YAML (YAML 1.1 booleans and octals,
/// merge keys, non-string keys): what `template` renders equals what
/// `helm template -f values.yaml` renders for the same values, same chart, same run.
#[test]
fn component_values_read_as_helm_reads_a_values_file() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    let tgz = Chart::new("echo", "1.0.0")
        .file(
            "templates/values.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: echo\ndata:\n  values: {{ toJson .Values | quote }}\n",
        )
        .package(&dir.path().join("pkg"))
        .unwrap();
    registry.push(&tgz, "charts").unwrap();
    let values = "hostNetwork: yes\ndefaultMode: 0755\nenabled: on\nmask: 0x1F\nbase: &base {cpu: 1, mem: 2}\nres:\n  <<: *base\n  mem: 3\n1: one\ntrue: yes\nversion: 1.10\nquoted: '0755'\ndup: 1\ndup: 2\n";
    let indented: String = values.lines().map(|l| format!("      {l}\n")).collect();
    let file = dir.path().join("component.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: echo\n  namespace: apps\nspec:\n  handler: helm\n  config:\n    releaseName: echo\n    source:\n      type: oci\n      chart: {}\n      plainHTTP: true\n    values:\n{indented}",
            registry.oci_ref("charts/echo", "1.0.0")
        ),
    )
    .unwrap();
    let out = template(&[&file], &dir.path().join("cache"), &[]);
    let ours = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{ours}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("values.yaml"), values).unwrap();
    let helm = test_support::helm_command(&dir.path().join("home"))
        .args(["template", "echo"])
        .arg(&tgz)
        .arg("-f")
        .arg(dir.path().join("values.yaml"))
        .output()
        .unwrap();
    assert!(
        helm.status.success(),
        "{}",
        String::from_utf8_lossy(&helm.stderr)
    );
    let rendered = |text: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with("values:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no values line in {text}"))
            .to_string()
    };
    let theirs = String::from_utf8_lossy(&helm.stdout).to_string();
    assert_eq!(rendered(&ours), rendered(&theirs));
    assert!(
        rendered(&ours).contains(r#"\"hostNetwork\":true"#),
        "{}",
        rendered(&ours)
    );
    assert!(
        rendered(&ours).contains(r#"\"defaultMode\":493"#),
        "{}",
        rendered(&ours)
    );
}

#[test]
fn values_from_secrets_and_config_maps_in_the_files_render_as_in_the_cluster() {
    if !available() {
        return;
    }
    let s = setup(RegistryMode::Anonymous);
    let web = s.registry.oci_ref("charts/web", "1.0.0");
    let file = s.dir.join("components.yaml");
    let component = |name: &str, values_from: &str| {
        format!(
            "---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  handler: helm\n  config:\n    releaseName: {name}\n    values:\n      replicaCount: 1\n    valuesFrom: {values_from}\n    source:\n      type: oci\n      chart: {web}\n      plainHTTP: true\n"
        )
    };
    let text = [
        component(
            "merged",
            "[{kind: Secret, name: web-values}, {kind: ConfigMap, name: web-env, valuesKey: message, targetPath: message}]",
        ),
        component("missing", "[{kind: ConfigMap, name: nowhere}]"),
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: web-values, namespace: apps}\nstringData:\n  values.yaml: |\n    message: from the secret\n    replicaCount: 4\n".to_string(),
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-env, namespace: apps}\ndata:\n  message: from the configmap\n".to_string(),
    ]
    .concat();
    std::fs::write(&file, text).unwrap();
    let out = template(&[&file], &s.dir.join("cache"), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The ConfigMap's targetPath wins over the Secret's document; `values` (replicaCount: 1)
    // wins over both.
    assert!(
        stdout.contains("message: \"from the configmap\""),
        "{stdout}"
    );
    assert!(stdout.contains("replicas: 1"), "{stdout}");
    assert_eq!(
        stderr.trim(),
        "apps/missing error: not-found: ConfigMap `apps/nowhere` (field `valuesFrom[0]`) not found"
    );
}
