//! Build script shared by the crates whose tests need a Kubernetes control plane
//! (`build = "../../build/control_plane.rs"`): sets `cfg(control_plane)` when one is there
//! — the local one `scripts/dev-setup` builds (`.tools/k8s/bin`, or `HELM_HANDLER_K8S_BIN`),
//! or an external one named by `HELM_HANDLER_E2E_KUBECONFIG`. Cluster tests carry
//! `#[cfg_attr(not(control_plane), ignore = "…")]`, so a machine without one reports them
//! as ignored, with the reason, instead of passing them. The build never fails for it (a
//! release build needs no control plane); `scripts/test`, which CI runs, refuses to test
//! without one, so CI never skips the cluster suites.

use std::path::PathBuf;

include!("control_plane_binaries.rs");

fn main() {
    println!("cargo::rustc-check-cfg=cfg(control_plane)");
    println!("cargo::rerun-if-env-changed=HELM_HANDLER_E2E_KUBECONFIG");
    println!("cargo::rerun-if-env-changed=HELM_HANDLER_K8S_BIN");
    println!("cargo::rerun-if-env-changed=CI");
    let external = std::env::var_os("HELM_HANDLER_E2E_KUBECONFIG").is_some_and(|v| !v.is_empty());
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let bin = match std::env::var_os("HELM_HANDLER_K8S_BIN").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => manifest.join("../../.tools/k8s/bin"),
    };
    let missing: Vec<&str> = CONTROL_PLANE_BINARIES
        .into_iter()
        .filter(|b| {
            let path = bin.join(b);
            // Seen again when the control plane is built (or removed) later.
            println!("cargo::rerun-if-changed={}", path.display());
            !path.is_file()
        })
        .collect();
    if external || missing.is_empty() {
        println!("cargo::rustc-cfg=control_plane");
    } else if std::env::var_os("CI").is_some() {
        println!(
            "cargo::warning=the cluster tests will be ignored: {} lacks {}",
            bin.display(),
            missing.join(", ")
        );
    }
}
