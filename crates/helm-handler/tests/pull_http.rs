//! `helm-handler pull` for http Components: the real binary on YAML files, against a real
//! nginx chart repository (charts packaged and indexed by the real helm).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::{Chart, HttpRepo, HttpRepoOptions};

fn available() -> bool {
    let ok = test_support::helm_bin().exists() && Path::new("/usr/sbin/nginx").exists();
    if !ok {
        eprintln!("SKIP: helm or nginx missing (run scripts/dev-setup)");
    }
    ok
}

fn pull(file: &Path, cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_helm-handler"))
        .arg("pull")
        .arg("-f")
        .arg(file)
        .arg("--cache-dir")
        .arg(cache)
        .args(["-o", "json"])
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn component(name: &str, config: &str) -> String {
    let config: String = config.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  handler: helm\n  config:\n    releaseName: {name}\n{config}"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn pulls_http_components_then_hits_the_cache() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let charts = work.path().join("charts");
    for v in ["1.0.0", "1.4.0", "2.0.0"] {
        Chart::create("web", v).package(&charts).unwrap();
    }
    let repo = HttpRepo::start(
        &charts,
        HttpRepoOptions {
            basic_auth: true,
            ..Default::default()
        },
    )
    .unwrap();
    let user = repo.username().unwrap();
    let password = repo.password().unwrap();

    let mut yaml = String::new();
    // Canonical nested form, constraint, basic auth from a Secret.
    yaml += &component(
        "nested",
        &format!(
            "source:\n  type: http\n  repository: {{name: local, url: \"{}\"}}\n  chart: {{name: web, version: \"^1\"}}\n  authentication:\n    method: basic\n    secretRef: {{name: repo-creds}}",
            repo.url()
        ),
    );
    // Flat legacy form, exact version.
    yaml += &component(
        "flat",
        &format!(
            "repository: {{url: \"{}\"}}\nchart: {{name: web, version: \"2.0.0\"}}\nauthentication:\n  method: basic\n  secretRef: {{name: repo-creds}}",
            repo.url()
        ),
    );
    // A version that does not exist.
    yaml += &component(
        "missing",
        &format!(
            "source:\n  type: http\n  repository: {{url: \"{}\"}}\n  chart: {{name: web, version: \"~3.1\"}}\n  authentication:\n    method: basic\n    secretRef: {{name: repo-creds}}",
            repo.url()
        ),
    );
    // No credentials: the repository refuses.
    yaml += &component(
        "anonymous",
        &format!(
            "source:\n  type: http\n  repository: {{url: \"{}\"}}\n  chart: {{name: web, version: \"1.0.0\"}}",
            repo.url()
        ),
    );
    yaml += &format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: repo-creds\n  namespace: apps\nstringData:\n  username: {user}\n  password: {}\n",
        serde_json::to_string(password).unwrap()
    );
    let file = write(work.path(), "components.yaml", &yaml);
    let cache = work.path().join("cache");

    let out = pull(&file, &cache);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one failed → exit 1; stderr: {stderr}"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["component"], "apps/nested");
    assert_eq!(lines[0]["version"], "1.4.0", "{:?}", lines[0]);
    assert_eq!(lines[0]["chart"], "web");
    assert_eq!(lines[0]["cacheHit"], false);
    assert!(Path::new(lines[0]["path"].as_str().unwrap()).is_file());
    assert_eq!(lines[1]["component"], "apps/flat");
    assert_eq!(lines[1]["version"], "2.0.0", "{:?}", lines[1]);
    assert_eq!(lines[2]["error"]["category"], "not-found", "{:?}", lines[2]);
    let message = lines[2]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2.0.0"),
        "nearest versions listed: {message}"
    );
    assert_eq!(lines[3]["error"]["category"], "auth", "{:?}", lines[3]);
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert!(
        !all.contains(password),
        "the password leaked into the output"
    );

    // A second process: the charts come from the cache (the index is fetched again).
    let again = json_lines(&pull(&file, &cache));
    assert_eq!(again[0]["cacheHit"], true, "{:?}", again[0]);
    assert_eq!(again[1]["cacheHit"], true, "{:?}", again[1]);
    assert_eq!(again[0]["digest"], lines[0]["digest"]);
    let tgz_gets = repo
        .access_log()
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with(".tgz") && e.status == 200)
        .count();
    assert_eq!(tgz_gets, 2, "each chart downloaded once");
}

/// `caSecretRef` adds its CA to the platform roots, for both source types: a repository
/// whose index (private CA, from `caSecretRef`) lists charts on a host with a certificate
/// from a platform root, and a TLS registry whose CA is a platform root while
/// `caSecretRef` names another CA. The platform roots are made with `SSL_CERT_FILE`, which
/// the platform root loader honours (as Go's, and so helm, does).
#[test]
fn the_ca_secret_is_added_to_the_platform_roots_for_both_sources() {
    if !available() || !Path::new("/usr/bin/docker-registry").exists() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let charts = work.path().join("charts");
    let tgz = Chart::create("web", "1.0.0").package(&charts).unwrap();
    let tls = |ip: [u8; 4]| HttpRepoOptions {
        tls: true,
        bind_ip: Some(std::net::Ipv4Addr::from(ip)),
        ..Default::default()
    };
    // B serves the charts (its CA is a platform root); A serves the index pointing at B (its
    // CA comes from caSecretRef only).
    let b = HttpRepo::start(&charts, tls([127, 0, 0, 2])).unwrap();
    let a = HttpRepo::start(&charts, tls([127, 0, 0, 1])).unwrap();
    a.reindex_with_url(Some(b.url().trim_end_matches('/')))
        .unwrap();
    let registry = test_support::Registry::start(test_support::RegistryMode::Tls).unwrap();
    registry.push(&tgz, "charts").unwrap();

    let platform = work.path().join("platform-roots.pem");
    let mut roots = std::fs::read(b.ca_file().unwrap()).unwrap();
    roots.extend(std::fs::read(registry.ca_file().unwrap()).unwrap());
    std::fs::write(&platform, roots).unwrap();
    let ca_a = String::from_utf8(a.ca_pem().unwrap()).unwrap();

    let http = |ca: &str| {
        format!(
            "source:\n  type: http\n  repository: {{url: \"{}\"}}\n  chart: {{name: web, version: \"1.0.0\"}}{ca}",
            a.url()
        )
    };
    let with_ca = "\n  caSecretRef: {name: ca-a}";
    let mut yaml = component("http-ca", &http(with_ca));
    yaml += &component(
        "oci-ca",
        &format!(
            "source:\n  type: oci\n  chart: \"{}\"{with_ca}",
            registry.oci_ref("charts/web", "1.0.0")
        ),
    );
    yaml += &component("http-no-ca", &http(""));
    yaml += &format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ca-a\n  namespace: apps\nstringData:\n  ca.crt: {}\n",
        serde_json::to_string(&ca_a).unwrap()
    );
    let file = write(work.path(), "components.yaml", &yaml);
    let out = Command::new(env!("CARGO_BIN_EXE_helm-handler"))
        .args(["pull", "-o", "json", "-f"])
        .arg(&file)
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .env("SSL_CERT_FILE", &platform)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let lines = json_lines(&out);
    eprintln!("{lines:#?}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines.len(), 3);
    // Index verified with caSecretRef's CA, chart (other host) with the platform roots.
    assert_eq!(lines[0]["version"], "1.0.0", "{:?}", lines[0]);
    // The registry's CA is a platform root; caSecretRef names another CA: still verified.
    assert_eq!(lines[1]["version"], "1.0.0", "{:?}", lines[1]);
    // Verification is real: A's CA is not a platform root.
    assert_eq!(lines[2]["error"]["category"], "tls", "{:?}", lines[2]);
}
