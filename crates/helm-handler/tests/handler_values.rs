//! `valuesFrom` through the real `HelmHandler` (real OCI source and registry, the fake
//! release engine that records the values helm would get): Secrets and ConfigMaps merged in
//! order with `values` on top, an edit upgrades and no edit never does, missing and broken
//! sources fail with their category and name, and a Secret's value is never in an outcome
//! or the persisted status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod handler_support;

use std::sync::Arc;

use componentkit::handler::{ErrorCategory, Outcome};
use helm_handler::config_maps::ConfigMapData;
use helm_handler::credentials::SecretData;
use helm_handler::handler::ObjectKey;
use serde_json::{Value, json};

use handler_support::{Call, Harness, MutableSecrets, failure, web_chart};

const SECRET_VALUE: &str = "hunter2-s3cr3t";

fn config(chart: &str, values_from: Value, values: Value) -> Value {
    json!({
        "releaseName": "web",
        "values": values,
        "valuesFrom": values_from,
        "source": {"type": "oci", "chart": chart, "plainHTTP": true},
    })
}

fn last_values(h: &Harness) -> Value {
    h.engine
        .calls()
        .into_iter()
        .rev()
        .find_map(|c| match c {
            Call::Upgrade { values, .. } => Some(values),
            _ => None,
        })
        .expect("an upgrade")
}

#[tokio::test]
async fn merged_in_order_with_values_on_top_and_upgraded_only_on_an_edit() {
    let (_registry, chart) = web_chart();
    let secrets = Arc::new(MutableSecrets::default());
    secrets.put(
        "apps",
        "web-secrets",
        SecretData::new(None).with(
            "values.yaml",
            format!("podAnnotations:\n  db-password: {SECRET_VALUE}\n  team: from-secret\nreplicaCount: 1\n"),
        ),
    );
    let h = Harness::with_store(secrets.clone());
    h.config_maps.put(
        "apps",
        "web-env",
        ConfigMapData::default().with("replicas", "3"),
    );
    let mut c = h.component(
        "apps",
        "web",
        config(
            &chart,
            json!([
                {"kind": "Secret", "name": "web-secrets"},
                {"kind": "ConfigMap", "name": "web-env", "valuesKey": "replicas", "targetPath": "replicaCount"},
                {"kind": "ConfigMap", "name": "absent", "optional": true},
            ]),
            json!({"podAnnotations": {"team": "inline"}}),
        ),
    );

    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert_eq!(
        last_values(&h),
        json!({"replicaCount": 3, "podAnnotations": {"db-password": SECRET_VALUE, "team": "inline"}})
    );
    let status = serde_json::to_string(&c.status).unwrap();
    assert!(!status.contains(SECRET_VALUE), "{status}");
    // The watches find the Component from either object.
    assert_eq!(
        h.secret_index.components_for_config_map("apps", "web-env"),
        vec![ObjectKey::new("apps", "web")]
    );
    assert_eq!(
        h.secret_index.components_for("apps", "web-secrets"),
        vec![ObjectKey::new("apps", "web")]
    );

    // No edit: no upgrade, however often it is applied.
    for _ in 0..2 {
        let out = h.apply(&mut c).await;
        assert_eq!(out, Outcome::Done);
    }
    assert_eq!(h.engine.upgrades(), 1);

    // An edit of the ConfigMap upgrades with the new value.
    h.config_maps.put(
        "apps",
        "web-env",
        ConfigMapData::default().with("replicas", "5"),
    );
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 2);
    assert_eq!(last_values(&h)["replicaCount"], json!(5));

    // An edit of the Secret upgrades too.
    secrets.put(
        "apps",
        "web-secrets",
        SecretData::new(None).with("values.yaml", "podAnnotations: {db-password: rotated}\n"),
    );
    h.apply(&mut c).await;
    assert_eq!(h.engine.upgrades(), 3);
    assert_eq!(
        last_values(&h)["podAnnotations"],
        json!({"db-password": "rotated", "team": "inline"})
    );
}

#[tokio::test]
async fn a_missing_source_is_not_found_naming_it_until_it_exists() {
    let (_registry, chart) = web_chart();
    let h = Harness::new();
    let mut c = h.component(
        "apps",
        "web",
        config(
            &chart,
            json!([{"kind": "ConfigMap", "name": "web-env", "valuesKey": "replicas", "targetPath": "replicaCount"}]),
            json!({}),
        ),
    );
    let (category, message) = failure(&h.apply(&mut c).await);
    assert_eq!(category, ErrorCategory::NotFound);
    assert!(
        message.contains("ConfigMap `apps/web-env` (field `valuesFrom[0]`) not found"),
        "{message}"
    );
    assert_eq!(h.engine.upgrades(), 0);

    // The object exists but lacks the key: still not found, naming key and keys.
    h.config_maps.put(
        "apps",
        "web-env",
        ConfigMapData::default().with("other", "1"),
    );
    let (category, message) = failure(&h.apply(&mut c).await);
    assert_eq!(category, ErrorCategory::NotFound);
    assert!(
        message.contains("has no key `replicas` (keys: \"other\")"),
        "{message}"
    );

    h.config_maps.put(
        "apps",
        "web-env",
        ConfigMapData::default().with("replicas", "2"),
    );
    let out = h.apply(&mut c).await;
    assert!(matches!(out, Outcome::InProgress { .. }), "{out:?}");
    assert_eq!(last_values(&h), json!({"replicaCount": 2}));
}

#[tokio::test]
async fn unreadable_content_is_a_config_error_naming_the_key_never_the_content() {
    let (_registry, chart) = web_chart();
    let h = Harness::with_secrets(|s| {
        s.insert(
            "apps",
            "broken",
            SecretData::new(None)
                .with("values.yaml", format!("password: [{SECRET_VALUE}\n"))
                .with("scalar", SECRET_VALUE)
                .with("pair", format!("{SECRET_VALUE},x=y")),
        );
    });
    let cases = [
        (
            json!({"kind": "Secret", "name": "broken"}),
            "key `values.yaml` of Secret `apps/broken` (field `valuesFrom[0]`): not valid YAML (line",
        ),
        (
            json!({"kind": "Secret", "name": "broken", "valuesKey": "scalar"}),
            "key `scalar` of Secret `apps/broken` (field `valuesFrom[0]`): not a YAML mapping of values (found a string)",
        ),
        (
            json!({"kind": "Secret", "name": "broken", "valuesKey": "pair", "targetPath": "db.password"}),
            "key `pair` of Secret `apps/broken` (field `valuesFrom[0]`): contains an unescaped `,`",
        ),
    ];
    for (entry, want) in cases {
        let mut c = h.component("apps", "web", config(&chart, json!([entry]), json!({})));
        let (category, message) = failure(&h.apply(&mut c).await);
        assert_eq!(category, ErrorCategory::Config, "{message}");
        assert!(message.starts_with(&format!("config: {want}")), "{message}");
        assert!(!message.contains(SECRET_VALUE), "{message}");
    }
    assert_eq!(h.engine.upgrades(), 0);
}
