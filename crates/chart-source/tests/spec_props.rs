//! `parse_source` never panics, whatever JSON it is given, and every error it returns is a
//! config error naming a field.

use chart_source::spec::parse_source;
use chart_source::{Error, ErrorCategory};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the parser looks at, plus a few it does not know.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("source"),
        Just("type"),
        Just("chart"),
        Just("repository"),
        Just("url"),
        Just("name"),
        Just("version"),
        Just("namespace"),
        Just("authentication"),
        Just("method"),
        Just("secretRef"),
        Just("caSecretRef"),
        Just("plainHTTP"),
        Just("insecureSkipTLSVerify"),
        Just("passCredentials"),
        Just("releaseName"),
        Just("authentification"),
        Just(""),
    ]
    .prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("oci".to_string()),
            Just("http".to_string()),
            Just("registry".to_string()),
            Just("basic".to_string()),
            Just("oci://r.io/a:1.0.0".to_string()),
            Just("https://c.example.com/x".to_string()),
            Just("^1.2".to_string()),
            "\\PC{0,24}",
        ]
        .prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_errors_name_a_field(v in json()) {
        if let Err(e) = parse_source(&v) {
            prop_assert_eq!(e.category(), ErrorCategory::Config);
            let named = matches!(&e, Error::Config { field, .. } if !field.is_empty());
            prop_assert!(named, "{e:?}");
        }
    }
}
