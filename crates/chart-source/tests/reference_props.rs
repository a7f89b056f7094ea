//! Property tests for the OCI reference parser: no input makes it panic, every valid
//! generated reference parses and round-trips through `Display`, and the registry of an
//! accepted reference is exactly `HOST[:PORT]` (the `reference_registry` fuzz target's
//! property, checked here on generated references).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chart_source::{ErrorCategory, OciReference};
use proptest::prelude::*;

#[path = "../../../fuzz/src/names.rs"]
#[allow(dead_code)]
mod names;
#[path = "../../../fuzz/src/chart_source_targets.rs"]
#[allow(dead_code)]
mod targets;

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        // A name's last label is not a number: URL parsers would read it as an IPv4 address.
        (
            prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 0..3),
            "[a-z]([a-z0-9-]{0,8}[a-z0-9])?",
        )
            .prop_map(|(mut labels, last)| {
                labels.push(last);
                labels.join(".")
            })
            // `xn--…` is an IDNA A-label: only valid punycode is a host name (`xn--0000a`
            // is rightly refused, as found by this test).
            .prop_filter("no A-label", |h| !h
                .split('.')
                .any(|l| l.starts_with("xn--"))),
        Just("localhost".to_string()),
        Just("127.0.0.1".to_string()),
        Just("[::1]".to_string()),
    ]
}

fn registry() -> impl Strategy<Value = String> {
    (host(), prop::option::of(1u32..=65535)).prop_map(|(h, p)| match p {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

fn component() -> impl Strategy<Value = String> {
    (
        "[a-z0-9]{1,6}",
        prop::collection::vec(("(\\.|_|__|-{1,3})", "[a-z0-9]{1,6}"), 0..3),
    )
        .prop_map(|(first, rest)| {
            let mut s = first;
            for (sep, part) in rest {
                s.push_str(&sep);
                s.push_str(&part);
            }
            s
        })
}

fn repository() -> impl Strategy<Value = String> {
    prop::collection::vec(component(), 1..5).prop_map(|c| c.join("/"))
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9._-]{0,30}"
}

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))
}

fn reference() -> impl Strategy<Value = String> {
    (
        registry(),
        repository(),
        prop::option::of(tag()),
        prop::option::of(digest()),
    )
        .prop_filter("a tag or a digest", |(_, _, t, d)| {
            t.is_some() || d.is_some()
        })
        .prop_map(|(reg, repo, tag, digest)| {
            let mut s = format!("oci://{reg}/{repo}");
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(&d);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
        let _ = OciReference::parse(&s);
    }

    #[test]
    fn reference_like_strings_never_panic(s in "oci://[a-z0-9.:\\[\\]/@_+-]{0,60}(:[a-zA-Z0-9._+-]{0,10})?(@sha256:[0-9a-fA-F]{0,70})?") {
        if let Ok(r) = OciReference::parse(&s) {
            // Whatever parses must round-trip.
            prop_assert_eq!(OciReference::parse(&r.to_string()).ok(), Some(r));
        }
    }

    #[test]
    fn rejections_name_the_reference(s in "oci://[a-z0-9.:/@_+\\[\\]-]{0,80}") {
        if let Err(e) = OciReference::parse(&s) {
            prop_assert!(e.to_string().contains(&s), "{e}");
        }
    }

    #[test]
    fn valid_references_round_trip(s in reference()) {
        let r = OciReference::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(r.to_string(), s.clone());
        prop_assert_eq!(OciReference::parse(&r.to_string()).ok(), Some(r.clone()));
        prop_assert!(!r.name().is_empty());
        prop_assert!(r.tag().is_some() || r.digest().is_some());
    }

    #[test]
    fn plus_and_underscore_spellings_are_one_reference(
        base in "oci://r\\.io/[a-z]{1,8}",
        v in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        build in "[a-z0-9]{1,8}",
    ) {
        let plus = OciReference::parse(&format!("{base}:{v}+{build}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let under = OciReference::parse(&format!("{base}:{v}_{build}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected_version = format!("{v}+{build}");
        prop_assert_eq!(plus.version(), Some(expected_version));
        prop_assert_eq!(plus, under);
    }

    #[test]
    fn accepted_registries_are_exactly_host_and_port(s in "[a-z0-9.:\\[\\]%;@_-]{1,40}/[a-z]{1,5}:1") {
        // Panics (fails) when an accepted registry is not HOST[:PORT] or does not round-trip.
        targets::reference_registry(s.as_bytes());
    }

    #[test]
    fn text_after_an_ipv6_address_is_refused(
        ip in prop_oneof![Just("::1"), Just("2001:db8::1"), Just("::ffff:10.0.0.1")],
        junk in "[^/:][^/]{0,6}",
    ) {
        let input = format!("oci://[{ip}]{junk}/a:1");
        let err = OciReference::parse(&input).err();
        prop_assert!(err.is_some(), "{input:?} accepted");
        let err = err.unwrap();
        prop_assert_eq!(err.category(), ErrorCategory::Config);
        prop_assert!(err.to_string().contains(&input), "{}", err);
    }

    #[test]
    fn a_port_is_one_to_five_digits_in_range(host in host(), port in "[0-9+-]{0,7}") {
        let input = format!("oci://{host}:{port}/a:1");
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        let parsed = OciReference::parse(&input);
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}: {:?}", input, parsed.err());
    }
}
