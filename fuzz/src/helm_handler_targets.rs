//! The fuzz targets of helm-handler (see `chart_source_targets.rs` for how targets work):
//! a Component's `spec.config` and the Kubernetes YAML files `check`/`pull`/`template`
//! read. Replayed by `crates/helm-handler/tests/fuzz_regressions.rs`.

use std::path::Path;

use chart_source::yaml;
use componentkit::handler::ErrorCategory;
use helm_handler::cli::pull::component_config;
use helm_handler::config::HelmConfig;
use helm_handler::manifests::Manifests;

/// The targets, by the name of their libFuzzer binary and corpus directories.
pub const TARGETS: &[super::names::Target] =
    &[("helm_config", helm_config), ("manifests", manifests)];

/// YAML (or JSON) text as `spec.config`: no panic; a refusal is `config`.
pub fn helm_config(data: &[u8]) {
    let Ok(value) = yaml::from_slice_value(data) else {
        return;
    };
    match HelmConfig::parse(&value, "default") {
        Ok(config) => {
            assert!(!config.release_name.as_str().is_empty());
            assert!(!config.release_namespace.is_empty());
        }
        Err(e) => assert_eq!(e.category(), ErrorCategory::Config, "{e}"),
    }
}

/// A manifest file as `check` and `pull` read it, then each helm Component's config: no
/// panic; a refusal is `config` and names the file.
pub fn manifests(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut read = Manifests::default();
    if let Err(e) = read.add_str(Path::new("fuzz.yaml"), text) {
        assert_eq!(e.category(), ErrorCategory::Config, "{e}");
        assert!(e.to_string().contains("fuzz.yaml"), "{e}");
        return;
    }
    assert_eq!(read.components.len(), read.origins.len());
    for (component, origin) in read.helm_components() {
        assert!(origin.line >= 1);
        assert!(component.metadata.namespace.is_some());
        if let (_, _, Err(e)) = component_config(component) {
            assert_eq!(e.category(), ErrorCategory::Config, "{e}");
        }
    }
}
