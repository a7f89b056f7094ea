//! The registry in each mode, with charts made by `helm create`/`helm package` and pushed by
//! `helm push`; requests from reqwest (rustls), as the product makes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use test_support::{Chart, Registry, RegistryMode, helm_command};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// A client trusting the registry's test CA (if any), never using a proxy.
fn client(reg: &Registry) -> Client {
    let mut builder = Client::builder().no_proxy();
    if let Some(pem) = reg.ca_pem() {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn get(client: &Client, reg: &Registry, path: &str) -> RequestBuilder {
    let req = client.get(format!("{}{path}", reg.base_url()));
    match (reg.username(), reg.password()) {
        (Some(u), Some(p)) => req.basic_auth(u, Some(p)),
        _ => req,
    }
}

fn package(chart: Chart) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let tgz = chart.package(out.path()).unwrap();
    (out, tgz)
}

/// Pushes a chart and checks what the registry holds: catalog, tag, manifest media types.
fn push_and_check(reg: &Registry) {
    let (_out, tgz) = package(Chart::new("demo", "1.2.3"));
    let digest = reg.push(&tgz, "charts").unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        reg.oci_ref("charts/demo", "1.2.3"),
        format!("oci://{}/charts/demo:1.2.3", reg.host())
    );

    let c = client(reg);
    let catalog: serde_json::Value = get(&c, reg, "/v2/_catalog").send().unwrap().json().unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["charts/demo"]),
        "{catalog}"
    );

    let resp = get(&c, reg, "/v2/charts/demo/manifests/1.2.3")
        .header("Accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["docker-content-digest"].to_str().unwrap(),
        digest
    );
    let manifest: serde_json::Value = resp.json().unwrap();
    assert_eq!(manifest["config"]["mediaType"], HELM_CONFIG, "{manifest}");
    let layers = manifest["layers"].as_array().unwrap();
    assert!(
        layers.iter().any(|l| l["mediaType"] == HELM_CHART),
        "{manifest}"
    );
}

#[test]
fn anonymous_registry_holds_a_pushed_chart_with_helm_media_types() {
    let reg = Registry::start(RegistryMode::Anonymous).unwrap();
    assert!(!reg.is_tls());
    assert_eq!(reg.username(), None);
    assert!(reg.ca_pem().is_none() && reg.ca_file().is_none());
    push_and_check(&reg);
}

#[test]
fn basic_auth_registry_refuses_anonymous_requests() {
    let reg = Registry::start(RegistryMode::BasicAuth).unwrap();
    let (user, password) = (reg.username().unwrap(), reg.password().unwrap());
    assert!(!user.is_empty() && password.len() >= 16);
    assert!(
        !format!("{reg:?}").contains(password),
        "Debug shows the password"
    );

    let anonymous = Client::builder().no_proxy().build().unwrap();
    let resp = anonymous
        .get(format!("{}/v2/", reg.base_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let wrong = anonymous
        .get(format!("{}/v2/", reg.base_url()))
        .basic_auth(user, Some("wrong"));
    assert_eq!(wrong.send().unwrap().status(), StatusCode::UNAUTHORIZED);

    push_and_check(&reg);
    let anonymous_manifest = anonymous
        .get(format!("{}/v2/charts/demo/manifests/1.2.3", reg.base_url()))
        .send()
        .unwrap();
    assert_eq!(anonymous_manifest.status(), StatusCode::UNAUTHORIZED);
    assert!(reg.access_log().iter().any(|e| e.status == 401));
}

#[test]
fn tls_registry_needs_the_test_ca() {
    let reg = Registry::start(RegistryMode::Tls).unwrap();
    assert!(reg.is_tls());
    assert!(reg.base_url().starts_with("https://"));
    let pem = reg.ca_pem().unwrap();
    assert!(String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE"));
    assert_eq!(std::fs::read(reg.ca_file().unwrap()).unwrap(), pem);

    let untrusting = Client::builder().no_proxy().build().unwrap();
    let err = untrusting
        .get(format!("{}/v2/", reg.base_url()))
        .send()
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Plain HTTP to a TLS port does not work either.
    let plain = untrusting
        .get(format!("http://{}/v2/", reg.host()))
        .send()
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);

    // The certificate names localhost as well as 127.0.0.1.
    let by_name = client(&reg)
        .get(format!("https://localhost:{}/v2/", reg.port()))
        .send()
        .unwrap();
    assert_eq!(by_name.status(), StatusCode::OK);
    push_and_check(&reg);
}

#[test]
fn tls_basic_auth_registry_needs_ca_and_credentials() {
    let reg = Registry::start(RegistryMode::TlsBasicAuth).unwrap();
    let c = client(&reg);
    let anonymous = c.get(format!("{}/v2/", reg.base_url())).send().unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&c, &reg, "/v2/").send().unwrap().status(),
        StatusCode::OK
    );
    push_and_check(&reg);
}

#[test]
fn access_log_counts_blob_and_manifest_gets() {
    let reg = Registry::start(RegistryMode::Anonymous).unwrap();
    let (_out, tgz) = package(Chart::new("counted", "0.1.0"));
    let digest = reg.push(&tgz, "charts").unwrap();
    // helm push HEADs blobs and GETs the manifest once; it downloads no blob.
    assert_eq!(reg.blob_gets(), 0, "{:?}", reg.access_log());
    let manifests_after_push = reg.manifest_gets();

    let c = client(&reg);
    let manifest: serde_json::Value =
        get(&c, &reg, &format!("/v2/charts/counted/manifests/{digest}"))
            .header("Accept", OCI_MANIFEST)
            .send()
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(reg.manifest_gets(), manifests_after_push + 1);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = get(&c, &reg, &format!("/v2/charts/counted/blobs/{layer}"))
        .send()
        .unwrap();
    assert_eq!(blob.status(), StatusCode::OK);
    assert_eq!(
        blob.bytes().unwrap().as_ref(),
        std::fs::read(&tgz).unwrap().as_slice()
    );
    // A HEAD and a missing blob are not downloads.
    get(&c, &reg, "/v2/charts/counted/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000").send().unwrap();
    c.head(format!(
        "{}/v2/charts/counted/blobs/{layer}",
        reg.base_url()
    ))
    .send()
    .unwrap();
    assert_eq!(reg.blob_gets(), 1, "{:?}", reg.access_log());

    // The real helm pulling the chart downloads config + chart layer.
    let home = tempfile::tempdir().unwrap();
    let out = helm_command(home.path())
        .args([
            "pull",
            &reg.oci_ref("charts/counted", "0.1.0"),
            "--plain-http",
            "-d",
        ])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.path().join("counted-0.1.0.tgz").is_file());
    assert_eq!(reg.blob_gets(), 3, "{:?}", reg.access_log());
    let layer_gets = reg
        .access_log()
        .into_iter()
        .filter(|e| e.method == "GET" && e.path.ends_with(layer) && e.status == 200)
        .count();
    assert_eq!(layer_gets, 2, "one by reqwest, one by helm pull");
}

#[test]
fn chart_with_dependency_and_build_metadata() {
    let (_out, tgz) = package(
        Chart::new("parent", "1.0.0+build.1")
            .app_version("9.9.9")
            .dependency(Chart::new("child", "0.2.0"))
            .values_yaml("replicaCount: 3\n")
            .file("templates/extra.yaml", "# nothing\n"),
    );
    assert_eq!(tgz.file_name().unwrap(), "parent-1.0.0+build.1.tgz");
    let listing = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&tgz)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    // helm 4 stores a packaged subchart expanded under charts/NAME/.
    for f in [
        "parent/Chart.yaml",
        "parent/charts/child/Chart.yaml",
        "parent/templates/extra.yaml",
    ] {
        assert!(listing.lines().any(|l| l == f), "{f} missing in {listing}");
    }
    let home = tempfile::tempdir().unwrap();
    let shown = helm_command(home.path())
        .args(["show", "chart"])
        .arg(&tgz)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("appVersion: 9.9.9") && shown.contains("name: child"),
        "{shown}"
    );

    let reg = Registry::start(RegistryMode::Anonymous).unwrap();
    reg.push(&tgz, "deps").unwrap();
    let tags: serde_json::Value = get(&client(&reg), &reg, "/v2/deps/parent/tags/list")
        .send()
        .unwrap()
        .json()
        .unwrap();
    // OCI tags cannot hold '+': helm pushes it as '_'.
    assert_eq!(tags["tags"], serde_json::json!(["1.0.0_build.1"]), "{tags}");
}

#[test]
fn stop_and_drop_end_the_registry() {
    let mut reg = Registry::start(RegistryMode::Anonymous).unwrap();
    let (port, dir) = (reg.port(), reg.dir().to_path_buf());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    reg.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(
        reg.access_log().iter().any(|e| e.path == "/v2/"),
        "log kept after stop"
    );
    drop(reg);
    assert!(!dir.exists(), "tempdir removed on drop");

    let reg = Registry::start(RegistryMode::Tls).unwrap();
    let (port, dir) = (reg.port(), reg.dir().to_path_buf());
    let result = std::panic::catch_unwind(move || {
        let _reg = reg;
        panic!("test failure");
    });
    assert!(result.is_err());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "killed on unwind"
    );
    assert!(!dir.exists());
}
