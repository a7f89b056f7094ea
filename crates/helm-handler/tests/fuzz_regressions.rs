//! Every fuzz seed and every input that ever made a helm-handler fuzz target (Component
//! config, manifest files) fail, replayed through the libFuzzer targets' own code
//! (`fuzz/src/`) under plain `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/src/names.rs"]
mod names;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../../fuzz/src/helm_handler_targets.rs"]
mod targets;

#[test]
fn seeds_and_regressions_pass_every_helm_handler_target() {
    let (ran, failures) = replay::replay(targets::TARGETS, names::HELM_HANDLER);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 10, "only {ran} corpus files: is fuzz/ there?");
}
