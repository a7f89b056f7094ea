//! `spec::parse_source`: every accepted form, and every rejection naming its field.
#![allow(clippy::unwrap_used)]

use chart_source::spec::{AuthMethod, SecretRef, parse_source};
use chart_source::{ErrorCategory, SourceSpec};
use serde_json::{Value, json};

fn oci(v: Value) -> chart_source::spec::OciSourceSpec {
    match parse_source(&v).unwrap() {
        SourceSpec::Oci(s) => s,
        other => panic!("expected oci, got {other:?}"),
    }
}

fn http(v: Value) -> chart_source::spec::HttpSourceSpec {
    match parse_source(&v).unwrap() {
        SourceSpec::Http(s) => s,
        other => panic!("expected http, got {other:?}"),
    }
}

/// Asserts a config error on `field` whose message contains every one of `needles`.
fn rejects(v: Value, field: &str, needles: &[&str]) {
    let err = parse_source(&v).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Config, "{err}");
    match &err {
        chart_source::Error::Config { field: f, .. } => assert_eq!(f, field, "{err}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("`{field}`")),
        "error names the field: {text}"
    );
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in {text:?}");
    }
}

#[test]
fn nested_oci_full() {
    let s = oci(json!({
        "releaseName": "x",
        "source": {
            "type": "oci",
            "chart": "oci://ghcr.io/acme/charts/app:1.2.3",
            "authentication": {"method": "registry", "secretRef": {"name": "registry-credentials", "namespace": "deployment-system"}},
            "plainHTTP": false,
            "insecureSkipTLSVerify": true,
            "caSecretRef": {"name": "my-ca"}
        }
    }));
    assert_eq!(
        s.reference.to_string(),
        "oci://ghcr.io/acme/charts/app:1.2.3"
    );
    let auth = s.authentication.unwrap();
    assert_eq!(auth.method, AuthMethod::Registry);
    assert_eq!(
        auth.secret_ref,
        SecretRef {
            name: "registry-credentials".into(),
            namespace: Some("deployment-system".into())
        }
    );
    assert!(!s.plain_http);
    assert!(s.tls.insecure_skip_tls_verify);
    assert_eq!(s.tls.ca_secret_ref.unwrap().name, "my-ca");
}

#[test]
fn nested_oci_minimal_and_plain_http() {
    let s = oci(
        json!({"source": {"type": "oci", "chart": "oci://127.0.0.1:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "plainHTTP": true}}),
    );
    assert!(s.plain_http);
    assert!(s.authentication.is_none());
    assert!(s.reference.digest().is_some());
}

#[test]
fn auth_method_is_optional() {
    let s = oci(
        json!({"source": {"type": "oci", "chart": "oci://r.io/app:1.0.0", "authentication": {"secretRef": {"name": "creds"}}}}),
    );
    assert_eq!(s.authentication.unwrap().method, AuthMethod::Registry);
    let s = http(
        json!({"source": {"type": "http", "repository": {"url": "https://c.example.com"}, "chart": {"name": "a", "version": "1.0.0"}, "authentication": {"secretRef": {"name": "creds"}}}}),
    );
    assert_eq!(s.authentication.unwrap().method, AuthMethod::Basic);
}

#[test]
fn nested_http_full() {
    let s = http(json!({"source": {
        "type": "http",
        "repository": {"name": "bitnami", "url": "https://charts.bitnami.com/bitnami"},
        "chart": {"name": "postgresql", "version": "^12.1"},
        "authentication": {"method": "basic", "secretRef": {"name": "repo-creds"}},
        "insecureSkipTLSVerify": false,
        "caSecretRef": {"name": "my-ca", "namespace": "apps"},
        "passCredentials": true
    }}));
    assert_eq!(s.repository.name.as_deref(), Some("bitnami"));
    assert_eq!(
        s.repository.url.as_str(),
        "https://charts.bitnami.com/bitnami"
    );
    assert_eq!(s.chart, "postgresql");
    assert_eq!(s.version, "^12.1");
    assert_eq!(s.authentication.unwrap().method, AuthMethod::Basic);
    assert!(s.pass_credentials);
    assert_eq!(
        s.tls.ca_secret_ref.unwrap().namespace.as_deref(),
        Some("apps")
    );
}

/// `version: 1.10` unquoted is the number 1.1 once YAML has read it: refused, naming the
/// field in the spelling used and saying to quote it.
#[test]
fn unquoted_yaml_version_is_refused() {
    let nested = chart_source::yaml::from_str_value(
        "source:\n  type: http\n  repository: {url: http://127.0.0.1:8080/sub}\n  chart: {name: a, version: 1.10}\n",
    )
    .unwrap();
    let flat = chart_source::yaml::from_str_value(
        "repository: {url: http://127.0.0.1:8080/sub}\nchart: {name: a, version: 2}\n",
    )
    .unwrap();
    rejects(nested, "source.chart.version", &["number 1.1", "quote it"]);
    rejects(flat, "chart.version", &["number 2", "quote it"]);
}

#[test]
fn flat_oci() {
    let s = oci(
        json!({"releaseName": "x", "chart": "oci://ghcr.io/acme/app:1.0.0+build.1", "authentication": {"method": "registry", "secretRef": {"name": "c"}}}),
    );
    assert_eq!(s.reference.tag(), Some("1.0.0_build.1"));
    assert!(s.authentication.is_some());
}

#[test]
fn flat_http() {
    let s = http(
        json!({"releaseName": "x", "repository": {"url": "https://charts.example.com/stable/"}, "chart": {"name": "nginx", "version": "1.2.3"}, "passCredentials": false}),
    );
    assert_eq!(s.chart, "nginx");
    assert_eq!(s.version, "1.2.3");
}

#[test]
fn missing_source() {
    rejects(
        json!({"releaseName": "x"}),
        "source",
        &["missing", "type: oci", "type: http"],
    );
    rejects(json!(null), "config", &["expected an object"]);
}

#[test]
fn source_with_flat_fields() {
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1.0.0"}, "chart": "oci://r.io/a:1.0.0"}),
        "source",
        &["cannot be combined", "`chart`"],
    );
}

#[test]
fn unknown_type() {
    rejects(
        json!({"source": {"type": "git", "chart": "x"}}),
        "source.type",
        &["\"git\"", "`oci`", "`http`"],
    );
    rejects(
        json!({"source": {"chart": "oci://r.io/a:1"}}),
        "source.type",
        &["missing", "`oci`", "`http`"],
    );
    rejects(
        json!({"source": {"type": 3}}),
        "source.type",
        &["expected a string"],
    );
    rejects(
        json!({"source": "oci://r.io/a:1"}),
        "source",
        &["expected an object"],
    );
}

#[test]
fn unknown_field_is_named_with_the_expected_ones() {
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1.0.0", "authentification": {}}}),
        "source.authentification",
        &[
            "unknown field",
            "did you mean `authentication`",
            "`chart`",
            "`plainHTTP`",
            "`caSecretRef`",
        ],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1.0.0", "authentication": {"secretRef": {"name": "a", "namspace": "b"}}}}),
        "source.authentication.secretRef.namspace",
        &["did you mean `namespace`", "`name`"],
    );
    rejects(
        json!({"source": {"type": "http", "repository": {"url": "https://a.b"}, "chart": {"name": "a", "version": "1"}, "plainHTTP": true}}),
        "source.plainHTTP",
        &["unknown field for an http source", "`passCredentials`"],
    );
    rejects(
        json!({"source": {"type": "http", "repository": {"url": "https://a.b", "username": "u"}, "chart": {"name": "a", "version": "1"}}}),
        "source.repository.username",
        &["`url`"],
    );
    rejects(
        json!({"source": {"type": "http", "repository": {"url": "https://a.b"}, "chart": {"name": "a", "version": "1", "digest": "x"}}}),
        "source.chart.digest",
        &["`version`"],
    );
    rejects(
        json!({"chart": "oci://r.io/a:1.0.0", "passCredentials": true}),
        "passCredentials",
        &["flat OCI source"],
    );
}

#[test]
fn oci_chart_errors() {
    rejects(
        json!({"source": {"type": "oci"}}),
        "source.chart",
        &["missing", "oci://"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/app"}}),
        "source.chart",
        &["missing version"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io:x/app:1"}}),
        "source.chart",
        &["port `x` is not a number"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": {"name": "a"}}}),
        "source.chart",
        &["found an object"],
    );
    rejects(
        json!({"chart": "ghcr.io/app:1.0.0"}),
        "chart",
        &["must start with oci://"],
    );
    rejects(json!({"chart": 7}), "chart", &["found a number"]);
}

#[test]
fn authentication_errors() {
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": {"method": "basic", "secretRef": {"name": "c"}}}}),
        "source.authentication.method",
        &["not valid for an oci source", "`registry`"],
    );
    rejects(
        json!({"source": {"type": "http", "repository": {"url": "https://a.b"}, "chart": {"name": "a", "version": "1"}, "authentication": {"method": "registry", "secretRef": {"name": "c"}}}}),
        "source.authentication.method",
        &["`basic`"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": {"method": "oauth", "secretRef": {"name": "c"}}}}),
        "source.authentication.method",
        &["unknown method"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": {"method": "registry"}}}),
        "source.authentication.secretRef",
        &["missing"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": {"secretRef": {}}}}),
        "source.authentication.secretRef.name",
        &["missing"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": {"secretRef": {"name": "Bad_Name"}}}}),
        "source.authentication.secretRef.name",
        &["not a valid Secret name"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "caSecretRef": {"name": "ca", "namespace": "x.y"}}}),
        "source.caSecretRef.namespace",
        &["not a valid namespace"],
    );
    rejects(
        json!({"source": {"type": "oci", "chart": "oci://r.io/a:1", "authentication": "creds"}}),
        "source.authentication",
        &["found a string"],
    );
}

#[test]
fn http_errors() {
    let base = |repo: Value, chart: Value| json!({"source": {"type": "http", "repository": repo, "chart": chart}});
    rejects(
        base(
            json!({"url": "oci://r.io/x"}),
            json!({"name": "a", "version": "1"}),
        ),
        "source.repository.url",
        &["http:// or https://", "type: oci"],
    );
    rejects(
        base(
            json!({"url": "not a url"}),
            json!({"name": "a", "version": "1"}),
        ),
        "source.repository.url",
        &["not a valid URL"],
    );
    rejects(
        base(json!({"name": "r"}), json!({"name": "a", "version": "1"})),
        "source.repository.url",
        &["missing"],
    );
    rejects(
        base(json!("https://a.b"), json!({"name": "a", "version": "1"})),
        "source.repository",
        &["expected an object"],
    );
    rejects(
        base(
            json!({"url": "https://a.b"}),
            json!({"name": "a", "version": ""}),
        ),
        "source.chart.version",
        &["empty"],
    );
    rejects(
        base(json!({"url": "https://a.b"}), json!({"name": "a"})),
        "source.chart.version",
        &["missing"],
    );
    rejects(
        base(json!({"url": "https://a.b"}), json!({"version": "1"})),
        "source.chart.name",
        &["missing"],
    );
    rejects(
        base(json!({"url": "https://a.b"}), json!("a")),
        "source.chart",
        &["expected an object"],
    );
    rejects(
        json!({"source": {"type": "http", "repository": {"url": "https://a.b"}, "chart": {"name": "a", "version": "1"}, "passCredentials": "yes"}}),
        "source.passCredentials",
        &["expected true or false"],
    );
    rejects(
        json!({"repository": {"url": "https://a.b"}, "chart": "oci://r.io/a:1"}),
        "chart",
        &["must be an object"],
    );
    rejects(
        json!({"chart": {"name": "a", "version": "1"}}),
        "repository",
        &["missing"],
    );
    rejects(
        json!({"repository": {"url": "https://a.b"}}),
        "chart",
        &["missing"],
    );
    rejects(
        json!({"authentication": {"secretRef": {"name": "a"}}}),
        "chart",
        &["missing", "`authentication`"],
    );
}

#[test]
fn url_credentials_are_rejected_without_echoing_them() {
    let v = json!({"source": {"type": "http", "repository": {"url": "https://bob:s3cr3t-pw@charts.example.com"}, "chart": {"name": "a", "version": "1"}}});
    let err = parse_source(&v).unwrap_err().to_string();
    assert!(err.contains("must not contain credentials"), "{err}");
    assert!(!err.contains("s3cr3t-pw"), "leaked: {err}");
}

#[test]
fn version_constraints_are_checked_with_helm_syntax() {
    for ok in [
        "1.2.3",
        "^12.1",
        "~1.2.3",
        ">=1.0.0 <2.0.0",
        "1.x",
        "*",
        ">= 1.2, < 1.4 || ^3",
        "1.2.3-rc.1",
        "v1.0.0",
    ] {
        let v = json!({"source": {"type": "http", "repository": {"url": "https://a.b"}, "chart": {"name": "a", "version": ok}}});
        assert!(parse_source(&v).is_ok(), "{ok}: {:?}", parse_source(&v));
    }
    for bad in ["latest", "^1.2.3.4", ">=> 1", "1.2 ||", "~foo"] {
        rejects(
            json!({"source": {"type": "http", "repository": {"url": "https://a.b"}, "chart": {"name": "a", "version": bad}}}),
            "source.chart.version",
            &["invalid version constraint"],
        );
    }
}

#[test]
fn verify_cosign() {
    let s = oci(json!({"source": {
        "type": "oci",
        "chart": "oci://ghcr.io/acme/charts/app:1.2.3",
        "verify": {"provider": "cosign", "secretRef": {"name": "cosign-keys", "namespace": "deployment-system"}}
    }}));
    let v = s.verify.unwrap();
    assert_eq!(
        v.secret_ref(),
        &SecretRef {
            name: "cosign-keys".into(),
            namespace: Some("deployment-system".into())
        }
    );
    // Flux's default provider is cosign; the flat form takes `verify` too.
    let s = oci(
        json!({"source": {"type": "oci", "chart": "oci://r.io/c:1", "verify": {"secretRef": {"name": "k"}}}}),
    );
    assert!(s.verify.is_some());
    let s = oci(json!({"chart": "oci://r.io/c:1", "verify": {"secretRef": {"name": "k"}}}));
    assert!(s.verify.is_some());
    assert!(oci(json!({"chart": "oci://r.io/c:1"})).verify.is_none());
}

#[test]
fn verify_errors() {
    let with = |verify: Value| json!({"source": {"type": "oci", "chart": "oci://r.io/c:1", "verify": verify}});
    let table: Vec<(Value, &str, &[&str])> = vec![
        (
            json!("cosign"),
            "source.verify",
            &["expected an object {provider: cosign"],
        ),
        (
            json!({"provider": "cosign"}),
            "source.verify.secretRef",
            &["missing", "keyless verification", "not supported"],
        ),
        (
            json!({"secretRef": {"name": "k"}, "keyless": true}),
            "source.verify.keyless",
            &["keyless verification", "Rekor"],
        ),
        (
            json!({"secretRef": {"name": "k"}, "matchOIDCIdentity": [{"issuer": "x", "subject": "y"}]}),
            "source.verify.matchOIDCIdentity",
            &["keyless verification"],
        ),
        (
            json!({"provider": "notation", "secretRef": {"name": "k"}}),
            "source.verify.provider",
            &["`notation` is not supported"],
        ),
        (
            json!({"provider": "gpg", "secretRef": {"name": "k"}}),
            "source.verify.provider",
            &["unknown provider \"gpg\""],
        ),
        (
            json!({"secretRef": {"name": "k"}, "secretref": {}}),
            "source.verify.secretref",
            &["unknown field for `verify`", "did you mean `secretRef`"],
        ),
        (
            json!({"secretRef": {"name": "Bad_Name"}}),
            "source.verify.secretRef.name",
            &["not a valid Secret name"],
        ),
    ];
    for (verify, field, needles) in table {
        rejects(with(verify), field, needles);
    }
    // HTTP sources have no signatures to verify.
    rejects(
        json!({"source": {"type": "http", "repository": {"url": "https://c.io"}, "chart": {"name": "a", "version": "1.0.0"}, "verify": {"secretRef": {"name": "k"}}}}),
        "source.verify",
        &["unknown field for an http source"],
    );
}
