//! Every fuzz seed and every input that ever made a chart-source fuzz target fail,
//! replayed through the same target code as libFuzzer runs (`fuzz/src/`), with no special
//! toolchain: a fixed finding that comes back fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/src/names.rs"]
mod names;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../../fuzz/src/chart_source_targets.rs"]
mod targets;

#[test]
fn seeds_and_regressions_pass_every_chart_source_target() {
    let (ran, failures) = replay::replay(targets::TARGETS, names::CHART_SOURCE);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 40, "only {ran} corpus files: is fuzz/ there?");
}
