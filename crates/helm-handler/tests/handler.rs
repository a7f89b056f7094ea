//! `HelmHandler` operation by operation: the real OCI source against the real registry
//! (test-support's docker-registry, charts made and pushed with the real helm), the real
//! credential resolver over Secrets from files, and a fake release engine that records its
//! calls (Kubernetes is the only fake). The handler status is carried from call to call the
//! way componentkit's engine persists it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod handler_support;

use componentkit::handler::{ErrorCategory, Outcome};
use helm_handler::handler::{NamespaceContents, Verdict};
use serde_json::json;
use test_support::{Chart, Registry, RegistryMode};

use handler_support::{Call, Harness, assert_failed, oci_config, recorded};

fn registry_with(charts: &[(&str, &str)]) -> Registry {
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, version) in charts {
        let tgz = Chart::create(name, version).package(dir.path()).unwrap();
        registry.push(&tgz, "charts").unwrap();
    }
    registry
}

#[tokio::test]
async fn installs_once_upgrades_only_on_change() {
    let registry = registry_with(&[("web", "1.0.0"), ("web", "1.1.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut c = h.component(
        "apps",
        "web",
        oci_config("web", &chart, json!({"replicaCount": 1})),
    );

    // First apply: installs.
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert_eq!(h.engine.upgrades(), 1);
    let status = recorded(&c);
    assert_eq!(status.release_name, "web");
    assert_eq!(status.release_namespace, "apps");
    assert_eq!(status.revision, Some(1));
    assert_eq!(status.chart.name, "web");
    assert_eq!(status.chart.version, "1.0.0");
    assert!(
        status.chart.digest.starts_with("sha256:"),
        "{:?}",
        status.chart
    );
    assert!(status.values_hash.starts_with("sha256:"));
    assert_eq!(status.source, chart);
    assert!(status.last_deploy_time.is_some());
    match &h.engine.calls().last().unwrap() {
        Call::Upgrade {
            release,
            values,
            create_namespace,
            chart,
        } => {
            assert_eq!(release, "apps/web");
            assert_eq!(values, &json!({"replicaCount": 1}));
            assert!(*create_namespace, "manageNamespace defaults to true");
            assert!(chart.ends_with(".tgz"), "{chart}");
        }
        other => panic!("{other:?}"),
    }

    // check_applied: progressing, then ready.
    h.readiness.set(Verdict::Progressing {
        reason: "Deployment/apps/web: 0/1 ready".into(),
    });
    let out = h.check_applied(&mut c).await;
    match &out {
        Outcome::InProgress { message, .. } => assert!(message.contains("0/1 ready"), "{message}"),
        other => panic!("{other:?}"),
    }
    h.readiness.set(Verdict::Ready);
    assert_eq!(h.check_applied(&mut c).await, Outcome::Done);

    // Same desired state again (e.g. a new generation that changed only a timeout): no upgrade.
    let out = h.apply(&mut c).await;
    assert_eq!(out, Outcome::Done);
    assert_eq!(h.engine.upgrades(), 1, "{:?}", h.engine.calls());
    // The status is unchanged.
    assert_eq!(recorded(&c), status);

    // Values change (keys reordered only: no change; a value changed: upgrade).
    c.spec.config = Some(oci_config("web", &chart, json!({"replicaCount": 1})));
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 1);
    c.spec.config = Some(oci_config("web", &chart, json!({"replicaCount": 2})));
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert_eq!(h.engine.upgrades(), 2);
    let after = recorded(&c);
    assert_eq!(after.revision, Some(2));
    assert_ne!(after.values_hash, status.values_hash);
    assert_eq!(after.chart.digest, status.chart.digest);

    // Chart version change: upgrade, new digest.
    let chart11 = registry.oci_ref("charts/web", "1.1.0");
    c.spec.config = Some(oci_config("web", &chart11, json!({"replicaCount": 2})));
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 3);
    let after11 = recorded(&c);
    assert_eq!(after11.chart.version, "1.1.0");
    assert_ne!(after11.chart.digest, after.chart.digest);
    assert_eq!(after11.revision, Some(3));

    // The metrics saw it all.
    let text = h.metrics.encode();
    assert!(
        text.contains(
            "helm_handler_chart_pulls_total{source_type=\"oci\",result=\"downloaded\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("helm_handler_chart_cache_hits_total"),
        "{text}"
    );
    assert!(
        text.contains(
            "helm_handler_release_operations_total{operation=\"install\",result=\"ok\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "helm_handler_release_operations_total{operation=\"upgrade\",result=\"ok\"} 2"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn reinstalls_a_release_removed_behind_its_back_and_takes_over_existing_ones() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");

    // A release of the same name exists already (installed by hand): taken over (upgrade).
    h.engine.preinstall("apps", "web");
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({})));
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 1);
    assert_eq!(recorded(&c).revision, Some(2));

    // Uninstalled outside helm-handler: check_applied reports it, apply reinstalls.
    h.engine.remove("apps", "web");
    assert_failed(
        &h.check_applied(&mut c).await,
        ErrorCategory::NotFound,
        &["apps/web"],
    );
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 2);
}

#[tokio::test]
async fn uninstalls_on_deletion_and_removes_only_a_namespace_it_created() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");

    // Release namespace "web-ns" does not exist: created and recorded.
    let mut config = oci_config("web", &chart, json!({}));
    config["releaseNamespace"] = json!("web-ns");
    let mut c = h.component("apps", "web", config);
    h.apply(&mut c).await;
    assert!(h.namespaces.exists_now("web-ns"));
    let status = recorded(&c);
    assert!(status.namespace_created);
    assert_eq!(status.release_namespace, "web-ns");

    // While the release's pods terminate, deletion waits; then the namespace goes.
    h.namespaces
        .set_contents("web-ns", NamespaceContents::Draining("Pod web-1".into()));
    match h.delete(&mut c).await {
        Outcome::InProgress { message, .. } => assert!(message.contains("Pod web-1"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(
        h.engine
            .calls()
            .contains(&Call::Uninstall("web-ns/web".into()))
    );
    h.namespaces
        .set_contents("web-ns", NamespaceContents::Empty);
    assert_eq!(h.check_deleted(&mut c).await, Outcome::Done);
    assert!(
        !h.namespaces.exists_now("web-ns"),
        "empty namespace not deleted"
    );

    // A namespace that existed before is never deleted.
    let h = Harness::new();
    h.namespaces.add("shared");
    let mut config = oci_config("db", &chart, json!({}));
    config["releaseNamespace"] = json!("shared");
    let mut c = h.component("apps", "db", config);
    h.apply(&mut c).await;
    let status = recorded(&c);
    assert!(!status.namespace_created);
    assert_eq!(h.delete(&mut c).await, Outcome::Done);
    assert!(h.namespaces.exists_now("shared"));

    // A created namespace that holds someone else's objects is kept.
    let h = Harness::new();
    let mut config = oci_config("db", &chart, json!({}));
    config["releaseNamespace"] = json!("mixed");
    let mut c = h.component("apps", "db", config);
    h.apply(&mut c).await;
    h.namespaces.set_contents(
        "mixed",
        NamespaceContents::InUse("ConfigMap user-data".into()),
    );
    assert_eq!(h.delete(&mut c).await, Outcome::Done);
    assert!(h.namespaces.exists_now("mixed"));

    // manageNamespace: false never creates.
    let h = Harness::new();
    let mut config = oci_config("db", &chart, json!({}));
    config["releaseNamespace"] = json!("unmanaged");
    config["manageNamespace"] = json!(false);
    let mut c = h.component("apps", "db", config);
    h.apply(&mut c).await;
    assert!(!h.namespaces.exists_now("unmanaged"));
    match h.engine.calls().last().unwrap() {
        Call::Upgrade {
            create_namespace, ..
        } => assert!(!create_namespace),
        other => panic!("{other:?}"),
    }

    // Deleting a Component that never deployed anything: done at once, no helm call.
    let h = Harness::new();
    let mut c = h.component("apps", "broken", json!({"releaseName": 7}));
    assert_eq!(h.delete(&mut c).await, Outcome::Done);
    assert!(h.engine.calls().is_empty());
}

#[tokio::test]
async fn renamed_release_replaces_the_old_one() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({})));
    h.apply(&mut c).await;
    c.spec.config = Some(oci_config("web2", &chart, json!({})));
    h.apply(&mut c).await;
    let calls = h.engine.calls();
    assert!(
        calls.contains(&Call::Uninstall("apps/web".into())),
        "{calls:?}"
    );
    assert!(h.engine.has("apps", "web2") && !h.engine.has("apps", "web"));
    let status = recorded(&c);
    assert_eq!(status.release_name, "web2");
}

#[tokio::test]
async fn failures_carry_their_category() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();

    // Bad configuration: Config, naming the field; nothing pulled or installed.
    let mut c = h.component("apps", "bad", json!({"releaseName": "Web_App", "source": {"type": "oci", "chart": registry.oci_ref("charts/web", "1.0.0"), "plainHTTP": true}}));
    assert_failed(
        &h.apply(&mut c).await,
        ErrorCategory::Config,
        &["releaseName"],
    );
    let mut c = h.component("apps", "bad2", json!({"releaseName": "web", "source": {"type": "oci", "chart": registry.oci_ref("charts/web", "1.0.0"), "plainHTTP": true, "colour": 1}}));
    assert_failed(&h.apply(&mut c).await, ErrorCategory::Config, &["colour"]);
    assert!(h.engine.calls().is_empty());

    // Chart not found in the real registry: NotFound, naming the reference.
    let missing = registry.oci_ref("charts/web", "9.9.9");
    let mut c = h.component(
        "apps",
        "missing",
        oci_config("missing", &missing, json!({})),
    );
    assert_failed(&h.apply(&mut c).await, ErrorCategory::NotFound, &["9.9.9"]);

    // A referenced Secret that does not exist: NotFound (retried when it appears).
    let mut config = oci_config("auth", &registry.oci_ref("charts/web", "1.0.0"), json!({}));
    config["source"]["authentication"] =
        json!({"method": "registry", "secretRef": {"name": "regcred"}});
    let mut c = h.component("apps", "auth", config);
    assert_failed(
        &h.apply(&mut c).await,
        ErrorCategory::NotFound,
        &["regcred"],
    );
    // ...and the Secret index knows who to wake up when it appears.
    let woken = h.secret_index.components_for("apps", "regcred");
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].name, "auth");
    assert_eq!(
        h.secret_index
            .components_for("deployment-system", "regcred")
            .len(),
        1
    );

    // A Secret in another tenant's namespace: Config, before any lookup.
    let mut config = oci_config("auth", &registry.oci_ref("charts/web", "1.0.0"), json!({}));
    config["source"]["authentication"] = json!({"method": "registry", "secretRef": {"name": "regcred", "namespace": "other-tenant"}});
    let mut c = h.component("apps", "tenant", config);
    assert_failed(
        &h.apply(&mut c).await,
        ErrorCategory::Config,
        &["other-tenant"],
    );

    // Registry unreachable: Network (transient, retried by the engine).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let closed = format!("oci://127.0.0.1:{port}/charts/web:1.0.0");
    let mut c = h.component("apps", "offline", oci_config("offline", &closed, json!({})));
    match h.apply(&mut c).await {
        Outcome::Failed { category, message } => {
            assert_eq!(category, ErrorCategory::Network, "{message}");
            assert!(category.is_transient());
        }
        other => panic!("{other:?}"),
    }

    // helm's own failure (a render error): its category, and the namespace it created is
    // recorded so deletion cleans it up.
    h.engine
        .fail_next_upgrade(helm_handler::helm::HelmError::Render {
            operation: "upgrade",
            message: "template: web/templates/x.yaml:3: nil pointer".into(),
        });
    let mut config = oci_config(
        "render",
        &registry.oci_ref("charts/web", "1.0.0"),
        json!({}),
    );
    config["releaseNamespace"] = json!("render-ns");
    let mut c = h.component("apps", "render", config);
    assert_failed(
        &h.apply(&mut c).await,
        ErrorCategory::Config,
        &["nil pointer"],
    );
    let status = recorded(&c);
    assert!(status.namespace_created);
    assert_eq!(status.revision, None);
    h.namespaces
        .set_contents("render-ns", NamespaceContents::Empty);
    assert_eq!(h.delete(&mut c).await, Outcome::Done);
    assert!(!h.namespaces.exists_now("render-ns"));

    // Another helm operation in progress: Conflict (transient).
    h.engine
        .fail_next_upgrade(helm_handler::helm::HelmError::OperationInProgress {
            operation: "upgrade",
            message: "another operation (install/upgrade/rollback) is in progress".into(),
        });
    let mut c = h.component(
        "apps",
        "busy",
        oci_config("busy", &registry.oci_ref("charts/web", "1.0.0"), json!({})),
    );
    match h.apply(&mut c).await {
        Outcome::Failed { category, .. } => assert!(category.is_transient()),
        other => panic!("{other:?}"),
    }

    let text = h.metrics.encode();
    assert!(
        text.contains("helm_handler_errors_total{category=\"Config\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "helm_handler_reconciles_total{operation=\"apply\",result=\"failed_permanent\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("helm_handler_chart_pulls_total{source_type=\"oci\",result=\"error\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn failing_objects_keep_the_component_deploying_with_the_reason() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({})));
    h.apply(&mut c).await;
    h.readiness.set(Verdict::Failed {
        reason: "Pod/apps/web-1: CrashLoopBackOff".into(),
    });
    match h.check_applied(&mut c).await {
        Outcome::InProgress { message, .. } => {
            assert!(
                message.contains("failing") && message.contains("CrashLoopBackOff"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A helm release in a pending state is waited for.
    h.engine.set_status(
        "apps",
        "web",
        helm_handler::helm::ReleaseStatus::PendingUpgrade,
    );
    match h.check_applied(&mut c).await {
        Outcome::InProgress { message, .. } => {
            assert!(message.contains("pending-upgrade"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn credentials_from_secrets_reach_the_registry() {
    let registry = Registry::start(RegistryMode::BasicAuth).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tgz = Chart::create("private", "0.1.0")
        .package(dir.path())
        .unwrap();
    registry.push(&tgz, "team").unwrap();
    let chart = registry.oci_ref("team/private", "0.1.0");

    let h = Harness::with_secrets(|store| {
        store.insert(
            "deployment-system",
            "regcred",
            helm_handler::credentials::SecretData::new(None)
                .with("username", registry.username().unwrap())
                .with("password", registry.password().unwrap()),
        );
    });
    // Without credentials: Auth.
    let mut c = h.component("apps", "anon", oci_config("anon", &chart, json!({})));
    match h.apply(&mut c).await {
        Outcome::Failed { category, .. } => assert_eq!(category, ErrorCategory::Auth),
        other => panic!("{other:?}"),
    }
    // With the Secret from the system namespace: installed.
    let mut config = oci_config("private", &chart, json!({}));
    config["source"]["authentication"] =
        json!({"method": "registry", "secretRef": {"name": "regcred"}});
    let mut c = h.component("apps", "private", config);
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert_eq!(h.engine.upgrades(), 1);
    // No credential leaks into the status.
    let status = serde_json::to_string(&c.status).unwrap();
    assert!(!status.contains(registry.password().unwrap()));
}

#[tokio::test]
async fn http_repository_source_resolves_a_constraint() {
    let charts = tempfile::tempdir().unwrap();
    for version in ["1.0.0", "1.2.0", "2.0.0"] {
        Chart::create("db", version).package(charts.path()).unwrap();
    }
    let repo = test_support::HttpRepo::start(charts.path(), Default::default()).unwrap();
    let h = Harness::new();
    let config = json!({
        "releaseName": "db",
        "values": {"auth": {"enabled": false}},
        "source": {
            "type": "http",
            "repository": {"name": "local", "url": repo.url()},
            "chart": {"name": "db", "version": "^1.0"},
        },
    });
    let mut c = h.component("apps", "db", config);
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    let status = recorded(&c);
    assert_eq!(status.chart.name, "db");
    assert_eq!(status.chart.version, "1.2.0", "highest match of ^1.0");
    assert!(status.source.contains("db@^1.0"), "{}", status.source);
    // Unchanged: no upgrade, and the chart comes from the cache.
    assert_eq!(h.apply(&mut c).await, Outcome::Done);
    assert_eq!(h.engine.upgrades(), 1);
    let text = h.metrics.encode();
    assert!(
        text.contains(
            "helm_handler_chart_pulls_total{source_type=\"http\",result=\"downloaded\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn deletion_waits_while_the_release_is_still_listed() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({})));
    h.apply(&mut c).await;
    assert_eq!(h.delete(&mut c).await, Outcome::Done);
    // helm reports the release again (e.g. `uninstalling` with a slow pre-delete hook).
    h.engine.preinstall("apps", "web");
    h.engine.set_status(
        "apps",
        "web",
        helm_handler::helm::ReleaseStatus::Uninstalling,
    );
    match h.check_deleted(&mut c).await {
        Outcome::InProgress { message, .. } => {
            assert!(message.contains("uninstalling"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    h.engine.remove("apps", "web");
    assert_eq!(h.check_deleted(&mut c).await, Outcome::Done);
}

#[tokio::test]
async fn moving_a_release_cleans_up_the_namespace_it_created() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut config = oci_config("web", &chart, json!({}));
    config["releaseNamespace"] = json!("old-ns");
    let mut c = h.component("apps", "web", config.clone());
    h.apply(&mut c).await;
    assert!(h.namespaces.exists_now("old-ns"));
    config["releaseNamespace"] = json!("new-ns");
    c.spec.config = Some(config);
    h.apply(&mut c).await;
    assert!(
        h.engine
            .calls()
            .contains(&Call::Uninstall("old-ns/web".into()))
    );
    assert!(
        !h.namespaces.exists_now("old-ns"),
        "emptied namespace left behind"
    );
    let status = recorded(&c);
    assert_eq!(status.release_namespace, "new-ns");
    assert!(status.namespace_created);
}

#[tokio::test]
async fn a_release_of_another_component_is_not_taken_over() {
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    h.engine.preinstall_for("apps", "web", "apps/first");
    let mut c = h.component("apps", "second", oci_config("web", &chart, json!({})));
    assert_failed(
        &h.apply(&mut c).await,
        ErrorCategory::Config,
        &["apps/first"],
    );
    assert_eq!(h.engine.upgrades(), 0);

    // Its own release (description written by the handler) is upgraded as usual, also
    // when the status was lost.
    let mut first = h.component("apps", "first", oci_config("web", &chart, json!({})));
    assert!(matches!(
        h.apply(&mut first).await,
        Outcome::InProgress { .. }
    ));
    first.status = None;
    assert!(matches!(
        h.apply(&mut first).await,
        Outcome::InProgress { .. }
    ));
    assert_eq!(h.engine.upgrades(), 2);
}

#[tokio::test]
async fn a_release_of_ours_left_pending_by_a_dead_helm_is_unblocked() {
    use helm_handler::helm::ReleaseStatus;
    use std::time::{Duration, SystemTime};
    let registry = registry_with(&[("web", "1.0.0")]);
    let h = Harness::new();
    let chart = registry.oci_ref("charts/web", "1.0.0");
    let mut c = h.component("apps", "web", oci_config("web", &chart, json!({"a": 1})));
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 1);

    // An upgrade started a minute ago is still pending: it may be running. Wait.
    let minute_ago = SystemTime::now() - Duration::from_secs(60);
    h.engine
        .set_pending("apps", "web", ReleaseStatus::PendingUpgrade, minute_ago);
    c.spec.config = Some(oci_config("web", &chart, json!({"a": 2})));
    match h.apply(&mut c).await {
        Outcome::Failed {
            category, message, ..
        } => {
            assert_eq!(category, ErrorCategory::Conflict);
            assert!(message.contains("pending-upgrade"), "{message}");
            assert!(
                message.contains("rolled back if still pending"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.engine.rollbacks(), 0);
    assert_eq!(h.engine.upgrades(), 1);

    // Pending for longer than any helm of ours can run: rolled back, then upgraded.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    h.engine
        .set_pending("apps", "web", ReleaseStatus::PendingUpgrade, hour_ago);
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert_eq!(h.engine.rollbacks(), 1);
    assert_eq!(h.engine.upgrades(), 2);
    let calls = h.engine.calls();
    let rollback = calls.iter().position(|c| matches!(c, Call::Rollback(_)));
    let upgrade = calls
        .iter()
        .rposition(|c| matches!(c, Call::Upgrade { .. }));
    assert!(rollback < upgrade, "rollback before the upgrade: {calls:?}");
    assert!(
        h.metrics.encode().contains(
            "helm_handler_release_operations_total{operation=\"rollback\",result=\"ok\"} 1"
        ),
        "{}",
        h.metrics.encode()
    );

    // A first install that never finished: uninstalled and installed again.
    let mut fresh = h.component("apps", "new", oci_config("new", &chart, json!({})));
    h.engine
        .fail_next_upgrade(helm_handler::helm::HelmError::Timeout {
            operation: "upgrade",
            timeout: Duration::from_secs(300),
        });
    h.apply(&mut fresh).await;
    h.engine
        .set_pending("apps", "new", ReleaseStatus::PendingInstall, hour_ago);
    let out = h.apply(&mut fresh).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert!(
        h.engine
            .calls()
            .contains(&Call::Uninstall("apps/new".into()))
    );
    assert!(h.engine.has("apps", "new"));

    // Stuck, but not this Component's release (no record of deploying it): left alone.
    h.engine
        .set_pending("apps", "theirs", ReleaseStatus::PendingUpgrade, hour_ago);
    let mut other = h.component("apps", "other", oci_config("theirs", &chart, json!({})));
    match h.apply(&mut other).await {
        Outcome::Failed { message, .. } => {
            assert!(
                message.contains("not deployed by this Component"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.engine.rollbacks(), 1);
}

/// `verify`: a signed chart is installed and its verification recorded in the status; an
/// unsigned one fails as `integrity` without reaching helm; a key Secret that no longer holds
/// the signing key fails the next apply (the new key set is verified again).
#[tokio::test]
async fn cosign_verification_gates_the_release_and_is_recorded() {
    if !test_support::cosign_bin().exists() {
        eprintln!("SKIP: cosign missing (run scripts/dev-setup)");
        return;
    }
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for version in ["1.0.0", "2.0.0"] {
        let tgz = Chart::create("web", version).package(dir.path()).unwrap();
        digests.push(registry.push(&tgz, "charts").unwrap());
    }
    let key = test_support::CosignKey::generate().unwrap();
    registry
        .cosign()
        .unwrap()
        .sign(&key, &registry.image("charts/web", &digests[0]))
        .unwrap();
    let secrets = std::sync::Arc::new(handler_support::MutableSecrets::default());
    let keys = |pem: &str| helm_handler::credentials::SecretData::new(None).with("cosign.pub", pem);
    secrets.put("apps", "cosign-keys", keys(&key.public_pem().unwrap()));
    let h = Harness::with_store(secrets.clone());
    let verified = |version: &str| {
        let mut config = oci_config("web", &registry.oci_ref("charts/web", version), json!({}));
        config["source"]["verify"] =
            json!({"provider": "cosign", "secretRef": {"name": "cosign-keys"}});
        config
    };

    let mut c = h.component("apps", "web", verified("1.0.0"));
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    let status = recorded(&c);
    let record = status.verified.expect("verified");
    assert_eq!(record.provider, "cosign");
    assert_eq!(record.manifest_digest, digests[0]);
    assert!(record.key_set.starts_with("sha256:"));

    let mut unsigned = h.component("apps", "unsigned", verified("2.0.0"));
    assert_failed(
        &h.apply(&mut unsigned).await,
        ErrorCategory::Integrity,
        &["no cosign signature"],
    );
    assert_eq!(
        h.engine.upgrades(),
        1,
        "the unsigned chart never reached helm"
    );

    // The Secret now holds another key: the same chart fails verification.
    let other = test_support::CosignKey::generate().unwrap();
    secrets.put("apps", "cosign-keys", keys(&other.public_pem().unwrap()));
    assert_failed(
        &h.apply(&mut c).await,
        ErrorCategory::Integrity,
        &["none of the 1 signature(s)"],
    );
}
