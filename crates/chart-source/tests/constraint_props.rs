//! Properties of the constraint engine: user input never panics it, and its answers are
//! consistent with plain semver ordering where Helm's rules coincide with it.
#![allow(clippy::unwrap_used)]

use chart_source::http::constraint::{Constraint, parse_version};
use proptest::prelude::*;
use semver::Version;

fn version() -> impl Strategy<Value = Version> {
    (
        0u64..4,
        0u64..4,
        0u64..4,
        prop::option::of("(alpha|beta|rc)(\\.[0-9])?"),
    )
        .prop_map(|(ma, mi, pa, pre)| {
            let text = match pre {
                Some(p) => format!("{ma}.{mi}.{pa}-{p}"),
                None => format!("{ma}.{mi}.{pa}"),
            };
            parse_version(&text).unwrap()
        })
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(input in "[ 0-9xX*.,|<>=!~^v+-abr]{0,40}", v in version()) {
        if let Ok(c) = Constraint::parse(&input) {
            let _ = c.matches(&v);
        }
        let _ = parse_version(&input);
    }

    #[test]
    fn comparisons_agree_with_semver_order(a in version(), b in version()) {
        let plain = |op: &str| Constraint::parse(&format!("{op}{b}")).unwrap();
        // Helm's rules differ from plain ordering only for prereleases (excluded unless the
        // constraint has one) and partial versions (not generated here).
        let allowed = a.pre.is_empty() || !b.pre.is_empty();
        prop_assert_eq!(plain(">=").matches(&a), allowed && a.cmp_precedence(&b).is_ge());
        prop_assert_eq!(plain("<").matches(&a), allowed && a.cmp_precedence(&b).is_lt());
        prop_assert_eq!(plain("=").matches(&a), allowed && a.cmp_precedence(&b).is_eq());
        prop_assert_eq!(plain("!=").matches(&a), allowed && !a.cmp_precedence(&b).is_eq());
    }

    #[test]
    fn or_is_the_union_of_its_alternatives(a in version(), x in version(), y in version()) {
        let left = Constraint::parse(&format!("^{x}")).unwrap();
        let right = Constraint::parse(&format!("~{y}")).unwrap();
        let both = Constraint::parse(&format!("^{x} || ~{y}")).unwrap();
        prop_assert_eq!(both.matches(&a), left.matches(&a) || right.matches(&a));
    }
}
