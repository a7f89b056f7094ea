//! The registry in each mode, with charts made and pushed by the real helm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::{Chart, Registry, RegistryMode};

#[test]
fn smoke_anonymous() {
    let reg = Registry::start(RegistryMode::Anonymous).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tgz = Chart::new("demo", "1.2.3").package(out.path()).unwrap();
    let digest = reg.push(&tgz, "charts").unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    eprintln!("{:?}", reg.access_log());
}

#[test]
fn smoke_modes() {
    let out = tempfile::tempdir().unwrap();
    let tgz = Chart::new("demo", "1.2.3+build.1")
        .dependency(Chart::new("sub", "0.2.0"))
        .package(out.path())
        .unwrap();
    for mode in [
        RegistryMode::BasicAuth,
        RegistryMode::Tls,
        RegistryMode::TlsBasicAuth,
    ] {
        let reg = Registry::start(mode).unwrap();
        eprintln!("{reg:?}");
        let digest = reg.push(&tgz, "a/b").unwrap();
        assert!(digest.starts_with("sha256:"), "{digest}");
        eprintln!(
            "{mode:?} {:?}",
            reg.access_log()
                .iter()
                .map(|e| (e.method.clone(), e.status))
                .collect::<Vec<_>>()
        );
    }
}
