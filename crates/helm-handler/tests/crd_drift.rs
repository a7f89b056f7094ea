//! `deploy/crd.yaml` must be exactly what `helm-handler crd` prints.

#[test]
fn deploy_crd_yaml_matches_generated_crd() {
    let generated = helm_handler::cli::crd::crd_yaml().expect("CRD serializes");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crd.yaml");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "deploy/crd.yaml is out of date with the Component type: run `helm-handler crd > deploy/crd.yaml` \
         (e.g. `cargo run -p helm-handler -- crd > deploy/crd.yaml`)"
    );
}

#[test]
fn binary_prints_the_same_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helm-handler"))
        .arg("crd")
        .output()
        .expect("run helm-handler crd");
    assert!(out.status.success(), "helm-handler crd failed: {out:?}");
    let generated = helm_handler::cli::crd::crd_yaml().expect("CRD serializes");
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated);
}
