//! `HelmConfig::parse`: the scenarios the system was specified with, defaults, and every
//! rejection naming its field.
#![allow(clippy::unwrap_used)]

use chart_source::SourceSpec;
use chart_source::spec::AuthMethod;
use componentkit::handler::ErrorCategory;
use helm_handler::config::{HelmConfig, ReleaseName};
use helm_handler::error::Error;
use serde_json::{Value, json};

fn parse(v: Value) -> HelmConfig {
    HelmConfig::parse(&v, "apps").unwrap()
}

/// Asserts a Config-category error on `field` containing every needle.
fn rejects(v: Value, field: &str, needles: &[&str]) {
    let err = HelmConfig::parse(&v, "apps").unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Config, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("config: field `{field}`")),
        "expected field `{field}` in {text:?}"
    );
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in {text:?}");
    }
}

#[test]
fn parse_oci_config_with_auth() {
    let c = parse(json!({
        "releaseName": "my-app",
        "releaseNamespace": "web",
        "manageNamespace": false,
        "values": {"replicaCount": 2, "image": {"tag": "v1"}},
        "source": {
            "type": "oci",
            "chart": "oci://ghcr.io/acme/charts/app:1.2.3",
            "authentication": {"method": "registry", "secretRef": {"name": "registry-credentials", "namespace": "deployment-system"}}
        }
    }));
    assert_eq!(c.release_name.as_str(), "my-app");
    assert_eq!(c.release_namespace, "web");
    assert!(!c.manage_namespace);
    assert_eq!(c.values["replicaCount"], json!(2));
    let SourceSpec::Oci(s) = &c.source else {
        panic!("{:?}", c.source)
    };
    assert_eq!(s.reference.registry(), "ghcr.io");
    assert_eq!(s.reference.repository(), "acme/charts/app");
    assert_eq!(s.reference.tag(), Some("1.2.3"));
    let auth = s.authentication.as_ref().unwrap();
    assert_eq!(auth.method, AuthMethod::Registry);
    assert_eq!(auth.secret_ref.name, "registry-credentials");
    assert_eq!(
        auth.secret_ref.namespace.as_deref(),
        Some("deployment-system")
    );
    assert!(!s.plain_http);
    assert!(!s.tls.insecure_skip_tls_verify);
}

#[test]
fn parse_oci_config_without_auth() {
    let c = parse(json!({
        "releaseName": "my-app",
        "source": {"type": "oci", "chart": "oci://localhost:5000/charts/app:0.1.0", "plainHTTP": true}
    }));
    // Defaults.
    assert_eq!(c.release_namespace, "apps");
    assert!(c.manage_namespace);
    assert!(c.values.is_empty());
    let SourceSpec::Oci(s) = &c.source else {
        panic!("{:?}", c.source)
    };
    assert!(s.authentication.is_none());
    assert!(s.plain_http);
    assert_eq!(s.reference.registry(), "localhost:5000");
}

#[test]
fn parse_http_config() {
    let c = parse(json!({
        "releaseName": "db",
        "values": {"auth": {"database": "app"}},
        "source": {
            "type": "http",
            "repository": {"name": "bitnami", "url": "https://charts.bitnami.com/bitnami"},
            "chart": {"name": "postgresql", "version": "12.1.2"},
            "authentication": {"method": "basic", "secretRef": {"name": "repo-creds"}},
            "caSecretRef": {"name": "my-ca"},
            "passCredentials": true
        }
    }));
    assert_eq!(c.release_name.to_string(), "db");
    let SourceSpec::Http(s) = &c.source else {
        panic!("{:?}", c.source)
    };
    assert_eq!(
        s.repository.url.as_str(),
        "https://charts.bitnami.com/bitnami"
    );
    assert_eq!(s.repository.name.as_deref(), Some("bitnami"));
    assert_eq!(s.chart, "postgresql");
    assert_eq!(s.version, "12.1.2");
    assert_eq!(s.authentication.as_ref().unwrap().method, AuthMethod::Basic);
    assert_eq!(s.tls.ca_secret_ref.as_ref().unwrap().name, "my-ca");
    assert!(s.pass_credentials);
}

#[test]
fn parse_config_missing_source() {
    rejects(
        json!({"releaseName": "my-app", "values": {}}),
        "source",
        &["missing", "type: oci", "type: http"],
    );
}

#[test]
fn parse_flat_oci_config() {
    let c = parse(json!({
        "releaseName": "my-app",
        "chart": "oci://ghcr.io/acme/charts/app:1.2.3",
        "authentication": {"method": "registry", "secretRef": {"name": "creds"}}
    }));
    assert_eq!(c.source.type_name(), "oci");
    assert!(c.source.authentication().is_some());
}

#[test]
fn parse_flat_http_config() {
    let c = parse(json!({
        "releaseName": "my-app",
        "repository": {"url": "https://charts.example.com"},
        "chart": {"name": "nginx", "version": "^1.2"},
        "values": {"a": 1}
    }));
    assert_eq!(c.source.type_name(), "http");
    assert_eq!(c.values["a"], json!(1));
}

#[test]
fn null_values_is_empty() {
    let c = parse(
        json!({"releaseName": "a", "values": null, "source": {"type": "oci", "chart": "oci://r.io/a:1.0.0"}}),
    );
    assert!(c.values.is_empty());
}

#[test]
fn release_name_rules() {
    for ok in ["a", "my-app", "a.b-c", "0app", &"a".repeat(53)] {
        assert!(ReleaseName::new(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "My-App",
        "-app",
        "app-",
        "a_b",
        "a..b",
        ".a",
        "a b",
        &"a".repeat(54),
    ] {
        assert!(ReleaseName::new(bad).is_err(), "{bad}");
    }
}

#[test]
fn rejects_bad_release_names() {
    let src = json!({"type": "oci", "chart": "oci://r.io/a:1.0.0"});
    rejects(json!({"source": src}), "releaseName", &["missing"]);
    rejects(
        json!({"releaseName": "My_App", "source": src}),
        "releaseName",
        &["\"My_App\"", "not a valid release name"],
    );
    rejects(
        json!({"releaseName": "a".repeat(54), "source": src}),
        "releaseName",
        &["54 characters", "at most 53"],
    );
    rejects(
        json!({"releaseName": "", "source": src}),
        "releaseName",
        &["empty"],
    );
    rejects(
        json!({"releaseName": 7, "source": src}),
        "releaseName",
        &["expected a string"],
    );
}

#[test]
fn rejects_bad_release_namespace() {
    let src = json!({"type": "oci", "chart": "oci://r.io/a:1.0.0"});
    rejects(
        json!({"releaseName": "a", "releaseNamespace": "Apps", "source": src}),
        "releaseNamespace",
        &["not a valid namespace"],
    );
    rejects(
        json!({"releaseName": "a", "releaseNamespace": "a.b", "source": src}),
        "releaseNamespace",
        &["not a valid namespace"],
    );
    rejects(
        json!({"releaseName": "a", "releaseNamespace": "n".repeat(64), "source": src}),
        "releaseNamespace",
        &["63"],
    );
    rejects(
        json!({"releaseName": "a", "releaseNamespace": true, "source": src}),
        "releaseNamespace",
        &["expected a string"],
    );
}

#[test]
fn rejects_values_that_are_not_an_object() {
    let src = json!({"type": "oci", "chart": "oci://r.io/a:1.0.0"});
    rejects(
        json!({"releaseName": "a", "values": [1, 2], "source": src}),
        "values",
        &["expected an object", "found a list"],
    );
    rejects(
        json!({"releaseName": "a", "values": "replicaCount: 2", "source": src}),
        "values",
        &["found a string"],
    );
}

#[test]
fn rejects_manage_namespace_that_is_not_a_boolean() {
    let src = json!({"type": "oci", "chart": "oci://r.io/a:1.0.0"});
    rejects(
        json!({"releaseName": "a", "manageNamespace": "yes", "source": src}),
        "manageNamespace",
        &["true or false"],
    );
}

#[test]
fn rejects_unknown_top_level_fields() {
    let src = json!({"type": "oci", "chart": "oci://r.io/a:1.0.0"});
    rejects(
        json!({"releaseName": "a", "relaseName": "b", "source": src}),
        "relaseName",
        &[
            "unknown field",
            "did you mean `releaseName`",
            "`values`",
            "`source`",
        ],
    );
    rejects(
        json!({"releaseName": "a", "chart": "oci://r.io/a:1.0.0", "authentification": {}}),
        "authentification",
        &["did you mean `authentication`"],
    );
    rejects(
        json!({"releaseName": "a", "valuez": {}, "source": src}),
        "valuez",
        &["did you mean `values`"],
    );
}

#[test]
fn rejects_source_errors_with_their_field_path() {
    rejects(
        json!({"releaseName": "a", "source": {"type": "git"}}),
        "source.type",
        &["`oci`", "`http`"],
    );
    rejects(
        json!({"releaseName": "a", "source": {"type": "oci", "chart": "oci://r.io/a:1"}, "repository": {"url": "https://x"}}),
        "source",
        &["cannot be combined", "`repository`"],
    );
    rejects(
        json!({"releaseName": "a", "source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": {"method": "registry", "secretRef": {"nmae": "x"}}}}),
        "source.authentication.secretRef.nmae",
        &["did you mean `name`"],
    );
    rejects(
        json!({"releaseName": "a", "source": {"type": "oci", "chart": "oci://r.io/a"}}),
        "source.chart",
        &["missing version"],
    );
}

#[test]
fn rejects_a_config_that_is_not_an_object() {
    let err = HelmConfig::parse(&Value::Null, "apps").unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("releaseName"), "{err}");
}

fn with_values_from(entries: Value) -> Value {
    json!({
        "releaseName": "web",
        "valuesFrom": entries,
        "source": {"type": "oci", "chart": "oci://r.example/charts/web:1.0.0"}
    })
}

#[test]
fn values_from_parses_with_flux_defaults() {
    use helm_handler::values::{Segment, ValuesKind};
    let c = parse(with_values_from(json!([
        {"kind": "Secret", "name": "app-secrets"},
        {"kind": "ConfigMap", "name": "app-env", "valuesKey": "replicas",
         "targetPath": "replicaCount", "optional": true, "namespace": "apps"},
    ])));
    assert_eq!(c.values_from.len(), 2);
    let s = &c.values_from[0];
    assert_eq!(s.kind, ValuesKind::Secret);
    assert_eq!(s.name, "app-secrets");
    assert_eq!(s.values_key, "values.yaml");
    assert!(s.target_path.is_none());
    assert!(!s.optional);
    let m = &c.values_from[1];
    assert_eq!(m.kind, ValuesKind::ConfigMap);
    assert_eq!(m.values_key, "replicas");
    assert_eq!(
        m.target_path.as_ref().unwrap().segments(),
        &[Segment::Key("replicaCount".into())]
    );
    assert!(m.optional);
    assert!(parse(with_values_from(Value::Null)).values_from.is_empty());
}

#[test]
fn values_from_rejections_name_the_field() {
    let table: &[(Value, &str, &[&str])] = &[
        (
            json!({"kind": "Secret"}),
            "valuesFrom",
            &["expected a list"],
        ),
        (json!(["x"]), "valuesFrom[0]", &["expected an object"]),
        (
            json!([{"name": "a"}]),
            "valuesFrom[0].kind",
            &["missing", "`Secret` or `ConfigMap`"],
        ),
        (
            json!([{"kind": "secret", "name": "a"}]),
            "valuesFrom[0].kind",
            &["\"secret\" is not supported"],
        ),
        (
            json!([{"kind": "Secret"}]),
            "valuesFrom[0].name",
            &["missing"],
        ),
        (
            json!([{"kind": "Secret", "name": "Bad_Name"}]),
            "valuesFrom[0].name",
            &["not a valid Secret name"],
        ),
        (
            json!([{"kind": "ConfigMap", "name": "a", "valuesKey": "a/b"}]),
            "valuesFrom[0].valuesKey",
            &["not a valid ConfigMap key"],
        ),
        (
            json!([{"kind": "ConfigMap", "name": "a"}, {"kind": "ConfigMap", "name": "b", "targetPath": "a..b"}]),
            "valuesFrom[1].targetPath",
            &["empty key"],
        ),
        (
            json!([{"kind": "ConfigMap", "name": "a", "optional": "yes"}]),
            "valuesFrom[0].optional",
            &["expected true or false"],
        ),
        (
            json!([{"kind": "ConfigMap", "name": "a", "valueKey": "x"}]),
            "valuesFrom[0].valueKey",
            &["unknown field", "did you mean `valuesKey`?"],
        ),
    ];
    for (entries, field, needles) in table {
        rejects(with_values_from(entries.clone()), field, needles);
    }
}

#[test]
fn values_from_another_namespace_is_refused_like_credentials() {
    let err = HelmConfig::parse(
        &with_values_from(json!([{"kind": "Secret", "name": "db", "namespace": "team-b"}])),
        "apps",
    )
    .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Config);
    assert!(
        matches!(err, Error::ValuesNamespaceNotAllowed { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "config: field `valuesFrom[0].namespace`: Secret `team-b/db` is not allowed: a Component may only use values from its own namespace (\"apps\")"
    );
}
