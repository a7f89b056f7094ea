//! Tenancy in `HelmHandler`, operation by operation (the real chart source and registry, the
//! recording fake release engine of `handler_support`): who every helm call acts as, what is
//! refused before any helm call, and how a missing ServiceAccount is reported while
//! deploying and while removing. The same behaviour on the real control plane, with real
//! RBAC: `e2e_tenancy.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod handler_support;

use componentkit::handler::{ErrorCategory, Outcome};
use helm_handler::helm::ReleaseStatus;
use helm_handler::identity::{Identity, ServiceAccountName, TenancyPolicy};
use serde_json::json;

use handler_support::{Call, Harness, failure, oci_config, recorded, web_chart};

fn sa(ns: &str, name: &str) -> Identity {
    Identity::service_account(ns, ServiceAccountName::new(name).unwrap())
}

fn lockdown() -> TenancyPolicy {
    TenancyPolicy {
        default_service_account: Some(ServiceAccountName::new("helm-deployer").unwrap()),
        no_cross_namespace_releases: true,
    }
}

/// Asserts a `config` failure whose message starts with `start`.
fn config_failure(out: &Outcome, start: &str) -> String {
    let (category, message) = failure(out);
    assert_eq!(category, ErrorCategory::Config, "{message}");
    assert!(message.starts_with(start), "{message}");
    message
}

/// A harness where ServiceAccount apps/deployer exists, and Component apps/web acting as it.
fn as_deployer(chart: &str) -> (Harness, componentkit::crd::Component) {
    let h = Harness::new();
    h.service_accounts.add("apps", "deployer");
    let mut config = oci_config("web", chart, json!({}));
    config["serviceAccountName"] = json!("deployer");
    let c = h.component("apps", "web", config);
    (h, c)
}

#[tokio::test]
async fn every_helm_call_acts_as_the_configured_service_account() {
    let (_registry, chart) = web_chart();
    let (h, mut c) = as_deployer(&chart);

    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    h.check_applied(&mut c).await;
    let status = recorded(&c);
    assert_eq!(status.service_account_name.as_deref(), Some("deployer"));
    // helm would create an existing namespace again, which a tenant may not: not asked.
    assert!(
        h.engine.calls().iter().any(
            |call| matches!(call, Call::Upgrade { create_namespace, .. } if !create_namespace)
        )
    );

    // A stuck release of ours is rolled back as the same identity.
    h.engine.set_pending(
        "apps",
        "web",
        ReleaseStatus::PendingUpgrade,
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
    );
    c.metadata.generation = Some(2);
    c.spec.config.as_mut().unwrap()["values"] = json!({"replicaCount": 2});
    h.apply(&mut c).await;
    assert_eq!(h.engine.rollbacks(), 1);

    h.delete(&mut c).await;
    assert_eq!(h.engine.uninstalls(), 1);
    let identities = h.engine.identities();
    assert!(identities.len() >= 6, "{identities:?}");
    assert!(
        identities.iter().all(|i| *i == sa("apps", "deployer")),
        "{identities:?}"
    );
}

#[tokio::test]
async fn without_tenancy_settings_the_controller_acts_as_before() {
    let (_registry, chart) = web_chart();
    let h = Harness::new();
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({})));
    h.apply(&mut c).await;
    h.delete(&mut c).await;
    assert!(
        h.engine.identities().iter().all(Identity::is_controller),
        "{:?}",
        h.engine.identities()
    );
    let status = recorded(&c);
    assert_eq!(status.service_account_name, None);
}

#[tokio::test]
async fn lockdown_uses_the_default_service_account_and_never_the_controller() {
    let (_registry, chart) = web_chart();
    let h = Harness::with_tenancy(lockdown());
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({})));

    // No ServiceAccount in the namespace: config failure naming it and the flag, no helm.
    let out = h.apply(&mut c).await;
    let message = config_failure(&out, "config: ServiceAccount `apps/helm-deployer`");
    for part in ["--default-service-account", "not found"] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(h.engine.calls().is_empty(), "{:?}", h.engine.calls());
    // Removing it: nothing was deployed, nothing to uninstall, no helm either.
    let out = h.delete(&mut c).await;
    assert!(matches!(out, Outcome::Done), "{out:?}");
    assert!(h.engine.calls().is_empty(), "{:?}", h.engine.calls());

    // Created: the release acts as it.
    h.service_accounts.add("apps", "helm-deployer");
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert!(
        h.engine
            .identities()
            .iter()
            .all(|i| *i == sa("apps", "helm-deployer"))
    );
}

#[tokio::test]
async fn cross_namespace_releases_are_refused_before_helm_and_never_uninstalled() {
    let (_registry, chart) = web_chart();
    let h = Harness::with_tenancy(lockdown());
    h.service_accounts.add("apps", "helm-deployer");
    h.engine.preinstall("kube-system", "coredns");
    let mut config = oci_config("coredns", &chart, json!({}));
    config["releaseNamespace"] = json!("kube-system");
    let mut c = h.component("apps", "sneaky", config);

    let out = h.apply(&mut c).await;
    let message = config_failure(&out, "config: field `releaseNamespace`: \"kube-system\"");
    assert!(
        message.contains("--no-cross-namespace-releases"),
        "{message}"
    );
    let out = h.check_applied(&mut c).await;
    assert_eq!(failure(&out).0, ErrorCategory::Config);
    // Deleting the refused Component must not uninstall the release it named.
    let out = h.delete(&mut c).await;
    assert!(matches!(out, Outcome::Done), "{out:?}");
    assert!(h.engine.calls().is_empty(), "{:?}", h.engine.calls());
    assert!(h.engine.has("kube-system", "coredns"));
}

#[tokio::test]
async fn a_deleted_service_account_blocks_removal_instead_of_escalating() {
    let (_registry, chart) = web_chart();
    let (h, mut c) = as_deployer(&chart);
    h.apply(&mut c).await;
    assert!(h.engine.has("apps", "web"));

    // The config no longer parses and the ServiceAccount is gone: the recorded one is used,
    // and its absence is an auth failure naming it and the way out.
    c.spec.config.as_mut().unwrap()["releaseName"] = json!(7);
    h.service_accounts.remove("apps", "deployer");
    let calls = h.engine.calls().len();
    let out = h.delete(&mut c).await;
    let (category, message) = failure(&out);
    assert_eq!(category, ErrorCategory::Auth, "{message}");
    for part in [
        "apps/deployer",
        "release apps/web",
        "not removed with the controller's own rights",
        "deployment-orchestrator.io/retry",
        "helm.deployment-orchestrator.io/lifecycle",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(h.engine.calls().len(), calls, "no helm call");
    assert!(h.engine.has("apps", "web"));
    let out = h.check_deleted(&mut c).await;
    assert_eq!(failure(&out).0, ErrorCategory::Auth);

    // Recreated: removed as it.
    h.service_accounts.add("apps", "deployer");
    let out = h.delete(&mut c).await;
    assert!(matches!(out, Outcome::Done), "{out:?}");
    assert!(!h.engine.has("apps", "web"));
    assert_eq!(
        h.engine.identities().last().unwrap(),
        &sa("apps", "deployer")
    );
}

#[tokio::test]
async fn service_account_names_are_checked_when_parsed() {
    let h = Harness::new();
    let mut config = oci_config("web", "oci://r.example/c/web:1.0.0", json!({}));
    config["serviceAccountName"] = json!("Not_A_Name");
    let mut c = h.component("apps", "web", config);
    let out = h.apply(&mut c).await;
    config_failure(&out, "config: field `serviceAccountName`: \"Not_A_Name\"");
}
