//! Every fuzz target's name, per crate: the replay tests check that each directory of
//! `fuzz/seeds/` and `fuzz/regressions/` belongs to a known target and that
//! `fuzz/Cargo.toml` builds each one.

pub const CHART_SOURCE: &[&str] = &[
    "reference",
    "reference_registry",
    "source_spec",
    "index",
    "index_streamed",
    "constraint",
    "archive_bytes",
    "archive_entries",
    "yaml",
];

pub const HELM_HANDLER: &[&str] = &["helm_config", "manifests"];

/// A target: its name and the function libFuzzer and the replay tests call.
pub type Target = (&'static str, fn(&[u8]));
