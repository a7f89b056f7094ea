//! Property tests for the OCI reference parser: no input panics, and every valid reference
//! round-trips through its display form.
#![allow(clippy::unwrap_used)]

use chart_source::OciReference;
use proptest::prelude::*;

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}"
}

fn reference() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("ghcr.io".to_string()),
            Just("localhost:5000".to_string()),
            Just("127.0.0.1:41234".to_string()),
            Just("[::1]:5000".to_string()),
            "[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z]{2,5}){0,2}(:[1-9][0-9]{0,3})?",
        ],
        prop::collection::vec(component(), 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9._+-]{0,20}"),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_filter("a tag or a digest", |(_, _, t, d)| {
            t.is_some() || d.is_some()
        })
        .prop_map(|(registry, path, tag, digest)| {
            let mut s = format!("oci://{registry}/{}", path.join("/"));
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push_str("@sha256:");
                s.push_str(&d);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_input_never_panics(input in "\\PC{0,200}") {
        let _ = OciReference::parse(&input);
        let _ = OciReference::parse(&format!("oci://{input}"));
    }

    #[test]
    fn almost_valid_input_never_panics(input in "oci://[a-z0-9.:/@_+\\[\\]-]{0,80}") {
        if let Err(e) = OciReference::parse(&input) {
            prop_assert!(e.to_string().contains(&input));
        }
    }

    #[test]
    fn valid_references_round_trip(input in reference()) {
        let parsed = OciReference::parse(&input).unwrap();
        let again = OciReference::parse(&parsed.to_string()).unwrap();
        prop_assert_eq!(&parsed, &again);
        // `+` is stored as `_`, and read back as `+`.
        if let Some(tag) = parsed.tag() {
            prop_assert!(!tag.contains('+'));
            prop_assert_eq!(parsed.version().unwrap(), tag.replace('_', "+"));
        }
    }
}
