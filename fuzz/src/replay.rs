//! Replays the committed corpora through the fuzz targets under plain `cargo test`: every
//! seed (`fuzz/seeds/<target>/`) and every input that ever failed (`fuzz/regressions/
//! <target>/`), so CI guards each finding without libFuzzer or a nightly toolchain.
//! Included with `#[path]` by the replay tests of chart-source and helm-handler.

use std::path::{Path, PathBuf};

use super::names;

/// The `fuzz/` directory, from the including crate's `crates/<name>/`.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs every corpus file of `targets` (whose names must be exactly `own`); returns how many
/// files ran and the failures, each naming its file.
pub fn replay(targets: &[names::Target], own: &[&str]) -> (usize, Vec<String>) {
    let fuzz = fuzz_dir();
    let listed: Vec<&str> = targets.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        listed, own,
        "fuzz/src/names.rs and the target table disagree"
    );
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap_or_default();
    for name in own {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml builds no target `{name}`"
        );
    }
    let known: Vec<&str> = names::CHART_SOURCE
        .iter()
        .chain(names::HELM_HANDLER)
        .copied()
        .collect();
    let mut failures = Vec::new();
    let mut ran = 0;
    for corpus in ["seeds", "regressions"] {
        for dir in files(&fuzz.join(corpus)) {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            assert!(
                known.contains(&name.as_ref()),
                "{} is not the corpus of a known target",
                dir.display()
            );
            let Some((_, target)) = targets.iter().find(|(t, _)| *t == name) else {
                continue;
            };
            for file in files(&dir) {
                let Ok(data) = std::fs::read(&file) else {
                    failures.push(format!("{}: unreadable", file.display()));
                    continue;
                };
                ran += 1;
                if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let message: String = message.chars().take(500).collect();
                    failures.push(format!("{}: {message}", file.display()));
                }
            }
        }
    }
    (ran, failures)
}
