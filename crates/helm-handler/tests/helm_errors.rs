//! The error classifier and the release JSON parser on helm's real output, captured from
//! helm 3.17.2 and 4.1.4 by tests/fixtures/helm/capture.sh.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use componentkit::handler::ErrorCategory;
use helm_handler::helm::errors::{Diagnosis, classify, diagnose};
use helm_handler::helm::{HelmError, ReleaseInfo, ReleaseStatus};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helm")
}

/// The expected diagnosis of a fixture, from its file name.
fn expected(stem: &str) -> (Diagnosis, ErrorCategory) {
    if stem.starts_with("unreachable-") {
        (Diagnosis::Unreachable, ErrorCategory::Network)
    } else if stem.starts_with("not-found-") {
        (Diagnosis::ReleaseNotFound, ErrorCategory::NotFound)
    } else if stem == "another-operation" {
        (Diagnosis::OperationInProgress, ErrorCategory::Conflict)
    } else if stem.starts_with("forbidden-") {
        (Diagnosis::Unauthorized, ErrorCategory::Auth)
    } else if stem.starts_with("render-") || stem == "not-a-chart" {
        (Diagnosis::Render, ErrorCategory::Config)
    } else {
        panic!("fixture {stem} has no expectation")
    }
}

#[test]
fn every_captured_stderr_is_classified() {
    let mut seen = 0;
    for version in ["v3", "v4"] {
        let dir = fixtures().join(version);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".stderr") else {
                continue;
            };
            let stderr = std::fs::read_to_string(&path).unwrap();
            let (diagnosis, category) = expected(stem);
            assert_eq!(diagnose(&stderr), diagnosis, "{version}/{name}: {stderr}");
            let err = classify("upgrade", "ns", "rel", "1".into(), &stderr);
            assert_eq!(err.category(), category, "{version}/{name}: {err}");
            let text = err.to_string();
            assert!(!text.contains("Use --debug"), "{text}");
            assert!(!text.contains("Error: "), "{text}");
            seen += 1;
        }
    }
    assert!(seen >= 35, "only {seen} fixtures");
}

#[test]
fn messages_keep_what_the_user_needs() {
    let stderr =
        std::fs::read_to_string(fixtures().join("v4/render-fail-template.stderr")).unwrap();
    let err = classify("template", "ns", "rel", "1".into(), &stderr);
    assert!(matches!(err, HelmError::Render { .. }));
    assert_eq!(
        err.to_string(),
        "helm template: the chart could not be rendered: execution error at (mychart/templates/bad.yaml:1:3): boom: replicaCount must be set"
    );
    let stderr = std::fs::read_to_string(fixtures().join("v3/unreachable-status.stderr")).unwrap();
    let err = classify("status", "ns", "rel", "1".into(), &stderr);
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let stderr = std::fs::read_to_string(fixtures().join("v4/not-found-uninstall.stderr")).unwrap();
    let err = classify("uninstall", "apps", "web", "1".into(), &stderr);
    assert!(err.is_release_not_found());
    assert_eq!(err.to_string(), "release apps/web not found");
}

/// RBAC refusals of an impersonated ServiceAccount, captured from helm 3.17.2 and 4.1.4 on
/// the real control plane (`capture-forbidden.sh`): each names the ServiceAccount, the verb, the resource and
/// where — and an uninstall that may not read the release is not "already gone".
#[test]
fn forbidden_messages_name_the_service_account_verb_and_resource() {
    let cases = [
        (
            "forbidden-status-other-namespace",
            "status",
            "ServiceAccount hh-capture-a/deployer cannot list secrets (the core API group) in namespace \"hh-capture-b\"",
        ),
        (
            "forbidden-uninstall-other-namespace",
            "uninstall",
            "ServiceAccount hh-capture-a/deployer cannot list secrets (the core API group) in namespace \"hh-capture-b\"",
        ),
        (
            "forbidden-install-clusterrole",
            "upgrade",
            "ServiceAccount hh-capture-a/deployer cannot get clusterroles (API group \"rbac.authorization.k8s.io\") at the cluster scope",
        ),
        (
            "forbidden-install-escalation",
            "upgrade",
            "ServiceAccount hh-capture-a/deployer cannot grant RBAC permissions it does not hold itself (a Role or ClusterRole of the chart)",
        ),
    ];
    for (version, (fixture, operation, what)) in ["v3", "v4"]
        .into_iter()
        .flat_map(|v| cases.iter().map(move |c| (v, *c)))
    {
        let stderr =
            std::fs::read_to_string(fixtures().join(format!("{version}/{fixture}.stderr")))
                .unwrap();
        let err = classify(operation, "hh-capture-b", "web", "1".into(), &stderr);
        assert!(!err.is_release_not_found(), "{version}/{fixture}: {err}");
        let HelmError::Forbidden { forbidden, .. } = &err else {
            panic!("{version}/{fixture}: {err:?}");
        };
        assert_eq!(forbidden.to_string(), what, "{version}/{fixture}");
        assert_eq!(
            forbidden.service_account(),
            Some(("hh-capture-a", "deployer"))
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("helm {operation}: forbidden: {what}; ")),
            "{text}"
        );
    }
}

#[test]
fn release_json_of_helm_3_and_4() {
    for version in ["v3", "v4"] {
        let text =
            std::fs::read_to_string(fixtures().join(version).join("status-deployed.json")).unwrap();
        let info = ReleaseInfo::from_json("status", &text).unwrap();
        assert_eq!(info.name, "rel", "{version}");
        assert_eq!(info.namespace, "ns");
        assert_eq!(info.revision, 1);
        assert_eq!(info.status, ReleaseStatus::Deployed);
        assert_eq!(info.description, "Install complete");
        assert!(info.first_deployed.is_some());
        // `status -o json` carries no chart in either version.
        assert!(info.chart.is_none(), "{version}");
        assert!(info.manifest.contains("kind: Deployment"));
        assert!(info.notes.is_some());
    }
    let text = std::fs::read_to_string(fixtures().join("v4/upgrade-dry-run.json")).unwrap();
    let info = ReleaseInfo::from_json("upgrade", &text).unwrap();
    assert_eq!(info.status, ReleaseStatus::PendingInstall);
    let chart = info.chart.as_ref().unwrap();
    assert_eq!(
        (chart.name.as_str(), chart.version.as_str()),
        ("mychart", "0.1.0")
    );
    assert_eq!(chart.app_version.as_deref(), Some("1.16.0"));
    // Debug stays small: the manifest is summarised.
    let debug = format!("{info:?}");
    assert!(
        debug.contains("manifest_bytes") && !debug.contains("kind: Deployment"),
        "{debug}"
    );
}

#[test]
fn manifest_fixture_parses_into_refs() {
    let text = std::fs::read_to_string(fixtures().join("v4/get-manifest.yaml")).unwrap();
    let refs = helm_handler::readiness::parse_manifest(&text, "ns").unwrap();
    let shown: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        shown,
        [
            "ServiceAccount/ns/rel-mychart",
            "Service/ns/rel-mychart",
            "Deployment/ns/rel-mychart"
        ]
    );
}
