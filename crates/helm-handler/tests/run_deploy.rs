//! The deployment artefacts: `charts/helm-handler` passes the real `helm lint --strict` and
//! renders with `helm template`; `deploy/*.yaml` parse, the kustomization lists them, and the
//! chart and the plain manifests grant the same controller permissions and run the same
//! command line shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_norway::Value;
use test_support::{helm_command, workspace_root};

fn chart_dir() -> PathBuf {
    workspace_root().join("charts/helm-handler")
}

fn helm(args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = helm_command(home.path())
        .args(args)
        .output()
        .expect("run helm (scripts/dev-setup installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn docs(yaml: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if !v.is_null() {
            out.push(v);
        }
    }
    out
}

fn kind_name(v: &Value) -> (String, String) {
    (
        v["kind"].as_str().unwrap_or_default().to_string(),
        v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn find<'a>(all: &'a [Value], kind: &str, name_suffix: &str) -> &'a Value {
    all.iter()
        .find(|v| {
            let (k, n) = kind_name(v);
            k == kind && n.ends_with(name_suffix)
        })
        .unwrap_or_else(|| panic!("no {kind} *{name_suffix}"))
}

/// The chart rendered as release `hh` in namespace `ops` with `--set values`.
fn template_with(values: &str) -> Vec<Value> {
    let dir = chart_dir();
    let (ok, out, err) = helm(&[
        "template",
        "hh",
        dir.to_str().unwrap(),
        "--namespace",
        "ops",
        "--set",
        values,
    ]);
    assert!(ok, "helm template failed:\n{err}");
    docs(&out)
}

/// A YAML list of strings.
fn strings(list: &Value) -> Vec<&str> {
    list.as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn chart_lints_strict() {
    let (ok, out, err) = helm(&["lint", "--strict", chart_dir().to_str().unwrap()]);
    assert!(ok, "helm lint failed:\n{out}\n{err}");
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn chart_templates_with_defaults_and_options() {
    let dir = chart_dir();
    let (ok, out, err) = helm(&[
        "template",
        "helm-handler",
        dir.to_str().unwrap(),
        "--namespace",
        "deployment-system",
    ]);
    assert!(ok, "helm template failed:\n{err}");
    let all = docs(&out);
    let kinds: Vec<(String, String)> = all.iter().map(kind_name).collect();
    for (kind, name) in [
        ("ServiceAccount", "helm-handler"),
        ("ClusterRole", "helm-handler"),
        ("ClusterRoleBinding", "helm-handler"),
        ("Role", "helm-handler-leader-election"),
        ("RoleBinding", "helm-handler-leader-election"),
        ("ClusterRole", "helm-handler-releases"),
        ("ClusterRoleBinding", "helm-handler-releases"),
        ("Deployment", "helm-handler"),
        ("Service", "helm-handler-metrics"),
    ] {
        assert!(
            kinds.contains(&(kind.to_string(), name.to_string())),
            "missing {kind} {name} in {kinds:?}"
        );
    }
    let deployment = find(&all, "Deployment", "helm-handler");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    assert_eq!(args[0], "run");
    assert!(
        args.contains(&"--system-namespace=deployment-system"),
        "{args:?}"
    );
    assert!(args.contains(&"--leader-election"), "{args:?}");
    assert!(
        args.contains(&"--cache-dir=/var/cache/helm-handler"),
        "{args:?}"
    );
    assert!(args.contains(&"--cache-max-bytes=1073741824"), "{args:?}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"],
        Value::Bool(true)
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["image"],
        "ghcr.io/deployment-orchestrator/helm-handler:0.1.0"
    );

    // Options: no leader election, no RBAC, another system namespace, text logs.
    let all = template_with(
        "leaderElection.enabled=false,rbac.create=false,systemNamespace=shared,logFormat=text,concurrency=8,image.tag=dev",
    );
    assert!(
        all.iter()
            .all(|v| !v["kind"].as_str().unwrap().contains("Role")),
        "rbac.create=false still renders RBAC"
    );
    let deployment = find(&all, "Deployment", "hh-helm-handler");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&container["args"]);
    for want in [
        "--no-leader-election",
        "--system-namespace=shared",
        "--log-format=text",
        "--concurrency=8",
    ] {
        assert!(args.contains(&want), "{want} not in {args:?}");
    }
    assert!(container["image"].as_str().unwrap().ends_with(":dev"));

    // The values schema rejects nonsense.
    let (ok, _, err) = helm(&[
        "template",
        "hh",
        dir.to_str().unwrap(),
        "--set",
        "logFormat=xml",
    ]);
    assert!(!ok, "logFormat=xml accepted");
    assert!(err.contains("logFormat"), "{err}");
}

/// `lockdown.enabled=true`: the controller runs with `--default-service-account` and
/// `--no-cross-namespace-releases`, its ClusterRole is the narrow set (no writes but
/// Components, Events; impersonation of ServiceAccounts), and no releases role is made.
#[test]
fn chart_lockdown_narrows_the_controller() {
    let all = template_with("lockdown.enabled=true,lockdown.defaultServiceAccount=deployer");
    let kinds: Vec<(String, String)> = all.iter().map(kind_name).collect();
    assert!(
        !kinds.iter().any(|(_, n)| n.ends_with("-releases")),
        "no releases role under lockdown: {kinds:?}"
    );
    let deployment = find(&all, "Deployment", "hh-helm-handler");
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    for want in [
        "--default-service-account=deployer",
        "--no-cross-namespace-releases",
    ] {
        assert!(args.contains(&want), "{want} not in {args:?}");
    }
    // (resource, verbs) of every rule of the controller's ClusterRole.
    let role = find(&all, "ClusterRole", "hh-helm-handler");
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    for rule in role["rules"].as_sequence().unwrap() {
        let verbs: Vec<String> = strings(&rule["verbs"])
            .into_iter()
            .map(str::to_string)
            .collect();
        for r in strings(&rule["resources"]) {
            rules.push((r.to_string(), verbs.clone()));
        }
    }
    let verbs_of = |resource: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|(r, _)| r == resource)
            .flat_map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(verbs_of("namespaces"), ["get"]);
    assert_eq!(verbs_of("serviceaccounts"), ["get", "impersonate"]);
    assert_eq!(verbs_of("secrets"), ["get", "list", "watch"]);
    for (resource, verbs) in &rules {
        assert!(!resource.contains('*'), "{resource}");
        for v in verbs {
            assert!(
                v != "*" && (v != "create" && v != "delete" || resource == "events"),
                "lockdown grants {v} on {resource}"
            );
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn deploy_manifests_parse_and_match_the_chart() {
    let root = workspace_root().join("deploy");
    let kustomization = docs(&read(&root.join("kustomization.yaml")));
    let resources: Vec<&str> = kustomization[0]["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for file in ["crd.yaml", "rbac.yaml", "deployment.yaml"] {
        assert!(resources.contains(&file), "{file} not in kustomization");
    }
    for file in &resources {
        let path = root.join(file);
        if *file == "crd.yaml" && !path.exists() {
            // Generated by `helm-handler crd` (componentkit); checked by its own test.
            continue;
        }
        let all = docs(&read(&path));
        assert!(!all.is_empty(), "{file} is empty");
        for v in &all {
            assert!(v["apiVersion"].is_string(), "{file}: no apiVersion");
            assert!(v["kind"].is_string(), "{file}: no kind");
        }
    }

    // The controller ClusterRole is the same in deploy/ and in the chart.
    let plain = docs(&read(&root.join("rbac.yaml")));
    let (ok, out, err) = helm(&[
        "template",
        "helm-handler",
        chart_dir().to_str().unwrap(),
        "--namespace",
        "deployment-system",
    ]);
    assert!(ok, "{err}");
    let chart = docs(&out);
    for name in ["helm-handler", "helm-handler-releases"] {
        let a = find(&plain, "ClusterRole", name);
        let b = chart
            .iter()
            .find(|v| kind_name(v) == ("ClusterRole".to_string(), name.to_string()))
            .unwrap();
        assert_eq!(a["rules"], b["rules"], "ClusterRole {name} differs");
    }
    let a = find(&plain, "Role", "helm-handler-leader-election");
    let b = find(&chart, "Role", "helm-handler-leader-election");
    assert_eq!(a["rules"], b["rules"]);

    // Components, their status and finalizers; Secrets read-only; Leases.
    let controller = find(&plain, "ClusterRole", "helm-handler");
    let rules = controller["rules"].as_sequence().unwrap();
    let grants = |resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r["resources"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|x| x == resource)
                && r["verbs"].as_sequence().unwrap().iter().any(|x| x == verb)
        })
    };
    for (res, verb) in [
        ("components", "watch"),
        ("components", "update"),
        ("components/status", "patch"),
        ("components/finalizers", "update"),
        ("secrets", "watch"),
        ("events", "create"),
    ] {
        assert!(grants(res, verb), "{res} {verb} not granted");
    }
    assert!(!grants("secrets", "create") && !grants("secrets", "update"));

    // The plain Deployment: non-root, read-only root fs, cache volume, probes.
    let deployment = find(
        &docs(&read(&root.join("deployment.yaml"))),
        "Deployment",
        "helm-handler",
    )
    .clone();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"],
        Value::Bool(true)
    );
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/var/cache/helm-handler")
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

#[test]
fn chart_ships_the_same_crd_as_deploy() {
    let root = workspace_root();
    let chart_crd = read(&root.join("charts/helm-handler/crds/components.yaml"));
    let deploy_crd = read(&root.join("deploy/crd.yaml"));
    assert_eq!(
        docs(&chart_crd),
        docs(&deploy_crd),
        "charts/helm-handler/crds/components.yaml differs from deploy/crd.yaml: cp deploy/crd.yaml charts/helm-handler/crds/components.yaml"
    );
}
