//! `helm-handler pull`: the real binary on YAML files with Components and Secrets, against
//! the real registry (charts pushed by the real helm).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::{Chart, Registry, RegistryMode};

fn available() -> bool {
    let ok = test_support::helm_bin().exists() && Path::new("/usr/bin/docker-registry").exists();
    if !ok {
        eprintln!("SKIP: helm or docker-registry missing (run scripts/dev-setup)");
    }
    ok
}

fn push_app(registry: &Registry, work: &Path) {
    let tgz = Chart::create("app", "1.0.0")
        .package(&work.join("pkg"))
        .unwrap();
    registry.push(&tgz, "charts").unwrap();
}

fn pull(files: &[&Path], cache: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-handler"));
    cmd.arg("pull");
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.arg("--cache-dir").arg(cache).args(extra);
    cmd.output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn component(namespace: &str, name: &str, source: &str) -> String {
    format!(
        "---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  handler: helm\n  config:\n    releaseName: {name}\n    source:\n{source}"
    )
}

fn indent(yaml: &str) -> String {
    yaml.lines().map(|l| format!("      {l}\n")).collect()
}

fn secret(namespace: &str, name: &str, string_data: &[(&str, &str)]) -> String {
    let mut s = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\nstringData:\n"
    );
    for (k, v) in string_data {
        s.push_str(&format!("  {k}: {}\n", serde_json::to_string(v).unwrap()));
    }
    s
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn pulls_with_every_auth_form_then_hits_the_cache() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let anon = Registry::start(RegistryMode::Anonymous).unwrap();
    let basic = Registry::start(RegistryMode::BasicAuth).unwrap();
    let tls = Registry::start(RegistryMode::TlsBasicAuth).unwrap();
    for r in [&anon, &basic, &tls] {
        push_app(r, work.path());
    }
    let user = basic.username().unwrap();
    let password = basic.password().unwrap();
    let ca = String::from_utf8(tls.ca_pem().unwrap()).unwrap();
    let mut yaml = String::new();
    yaml += &component(
        "apps",
        "anonymous",
        &indent(&format!(
            "type: oci\nchart: {}\nplainHTTP: true",
            anon.oci_ref("charts/app", "1.0.0")
        )),
    );
    yaml += &component(
        "apps",
        "basic",
        &indent(&format!(
            "type: oci\nchart: {}\nplainHTTP: true\nauthentication:\n  method: registry\n  secretRef: {{name: basic-creds}}",
            basic.oci_ref("charts/app", "1.0.0")
        )),
    );
    yaml += &secret(
        "apps",
        "basic-creds",
        &[("username", user), ("password", password)],
    );
    // `username` + `token`, from the system namespace.
    yaml += &component(
        "apps",
        "token",
        &indent(&format!(
            "type: oci\nchart: {}\nplainHTTP: true\nauthentication:\n  method: registry\n  secretRef: {{name: token-creds}}",
            basic.oci_ref("charts/app", "1.0.0")
        )),
    );
    yaml += &secret(
        "deployment-system",
        "token-creds",
        &[("username", user), ("token", password)],
    );
    // TLS with caSecretRef, credentials from a dockerconfigjson Secret.
    let docker = serde_json::json!({"auths": {tls.host(): {"username": tls.username(), "password": tls.password()}}});
    yaml += &component(
        "apps",
        "tls",
        &indent(&format!(
            "type: oci\nchart: {}\nauthentication:\n  method: registry\n  secretRef: {{name: docker-creds}}\ncaSecretRef: {{name: registry-ca}}",
            tls.oci_ref("charts/app", "1.0.0")
        )),
    );
    yaml += &format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: docker-creds\n  namespace: apps\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{docker}'\n"
    );
    yaml += &secret("apps", "registry-ca", &[("ca.crt", &ca)]);
    // Not ours: ignored.
    yaml += "---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata: {name: other, namespace: apps}\nspec: {handler: terraform}\n";
    let file = write(work.path(), "components.yaml", &yaml);
    let cache = work.path().join("cache");

    let out = pull(&[&file], &cache, &["-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    let names: Vec<_> = lines
        .iter()
        .map(|l| l["component"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["apps/anonymous", "apps/basic", "apps/token", "apps/tls"]
    );
    for l in &lines {
        assert_eq!(l["chart"], "app", "{l}");
        assert_eq!(l["version"], "1.0.0");
        let path = PathBuf::from(l["path"].as_str().unwrap());
        assert!(path.starts_with(&cache));
        let digest = format!("sha256:{}", sha256_hex(&std::fs::read(&path).unwrap()));
        assert_eq!(l["digest"], digest.as_str());
        assert!(l["source"].as_str().unwrap().starts_with("oci://"));
    }
    assert!(lines.iter().any(|l| l["cacheHit"] == false));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(password));

    let again = pull(&[&file], &cache, &["-o", "json"]);
    assert!(again.status.success());
    assert!(json_lines(&again).iter().all(|l| l["cacheHit"] == true));
    // At most one blob download per registry over both runs (the Components pulled from
    // `basic` share one).
    for r in [&anon, &basic, &tls] {
        assert!(r.blob_gets() <= 1, "{:?}", r.access_log());
    }

    // Plain output: one line per Component.
    let text = pull(&[&file], &cache, &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.contains(" app 1.0.0 sha256:") && l.contains("(cached)")),
        "{stdout}"
    );
}

#[test]
fn failures_are_reported_per_component_with_exit_1() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let basic = Registry::start(RegistryMode::BasicAuth).unwrap();
    push_app(&basic, work.path());
    let reference = basic.oci_ref("charts/app", "1.0.0");
    let mut yaml = String::new();
    yaml += &component(
        "apps",
        "wrong-password",
        &indent(&format!(
            "type: oci\nchart: {reference}\nplainHTTP: true\nauthentication:\n  method: registry\n  secretRef: {{name: creds}}"
        )),
    );
    yaml += &secret(
        "apps",
        "creds",
        &[
            ("username", basic.username().unwrap()),
            ("password", "hunter2-wrong"),
        ],
    );
    yaml += &component(
        "apps",
        "unknown-tag",
        &indent(&format!(
            "type: oci\nchart: {}\nplainHTTP: true\nauthentication:\n  method: registry\n  secretRef: {{name: good}}",
            basic.oci_ref("charts/app", "9.9.9")
        )),
    );
    yaml += &secret(
        "apps",
        "good",
        &[
            ("username", basic.username().unwrap()),
            ("password", basic.password().unwrap()),
        ],
    );
    // Another tenant's Secret: refused before any lookup.
    yaml += &component(
        "apps",
        "foreign-secret",
        &indent(&format!(
            "type: oci\nchart: {reference}\nplainHTTP: true\nauthentication:\n  method: registry\n  secretRef: {{name: good, namespace: tenant-b}}"
        )),
    );
    yaml += &component(
        "apps",
        "closed-port",
        &indent("type: oci\nchart: oci://127.0.0.1:1/charts/app:1.0.0\nplainHTTP: true"),
    );
    let file = write(work.path(), "bad.yaml", &yaml);
    let out = pull(&[&file], &work.path().join("cache"), &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    let category = |name: &str| {
        let l = lines
            .iter()
            .find(|l| l["component"] == format!("apps/{name}"))
            .unwrap();
        assert!(l.get("digest").is_none());
        (
            l["error"]["category"].as_str().unwrap().to_string(),
            l["error"]["message"].as_str().unwrap().to_string(),
        )
    };
    let (cat, msg) = category("wrong-password");
    assert_eq!(cat, "auth", "{msg}");
    assert!(msg.contains(&reference), "{msg}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2-wrong"));
    assert_eq!(category("unknown-tag").0, "not-found");
    assert_eq!(category("foreign-secret").0, "config");
    assert_eq!(category("closed-port").0, "network");

    // A file that does not exist: exit 2.
    let out = pull(
        &[&work.path().join("missing.yaml")],
        &work.path().join("cache"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn processes_sharing_a_cache_download_once() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    push_app(&registry, work.path());
    let yaml = component(
        "apps",
        "app",
        &indent(&format!(
            "type: oci\nchart: {}\nplainHTTP: true",
            registry.oci_ref("charts/app", "1.0.0")
        )),
    );
    let file = write(work.path(), "c.yaml", &yaml);
    let cache = work.path().join("cache");
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_helm-handler"))
                .args(["pull", "-o", "json", "-f"])
                .arg(&file)
                .arg("--cache-dir")
                .arg(&cache)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut downloads = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        downloads += json_lines(&out)
            .iter()
            .filter(|l| l["cacheHit"] == false)
            .count();
    }
    assert_eq!(downloads, 1);
    assert_eq!(registry.blob_gets(), 1, "one blob download for 6 processes");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `verify` with the key Secret from the files: the signed chart is located and says so,
/// the unsigned one is `integrity`, naming the keys; the registry needs basic auth (the
/// signature is read with the chart's credentials).
#[test]
fn verifies_cosign_signatures_with_keys_from_the_files() {
    if !available() || !test_support::cosign_bin().exists() {
        eprintln!("SKIP: cosign missing (run scripts/dev-setup)");
        return;
    }
    let registry = Registry::start(RegistryMode::BasicAuth).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for version in ["1.0.0", "2.0.0"] {
        let tgz = Chart::create("app", version)
            .package(&work.path().join("pkg"))
            .unwrap();
        digests.push(registry.push(&tgz, "charts").unwrap());
    }
    let key = test_support::CosignKey::generate().unwrap();
    registry
        .cosign()
        .unwrap()
        .sign(&key, &registry.image("charts/app", &digests[0]))
        .unwrap();

    let mut yaml = String::new();
    for (name, version) in [("signed", "1.0.0"), ("unsigned", "2.0.0")] {
        yaml += &component(
            "apps",
            name,
            &indent(&format!(
                "type: oci\nchart: {}\nplainHTTP: true\nauthentication: {{secretRef: {{name: creds}}}}\nverify: {{provider: cosign, secretRef: {{name: cosign-keys}}}}",
                registry.oci_ref("charts/app", version)
            )),
        );
    }
    yaml += &secret(
        "apps",
        "creds",
        &[
            ("username", registry.username().unwrap()),
            ("password", registry.password().unwrap()),
        ],
    );
    yaml += &secret(
        "deployment-system",
        "cosign-keys",
        &[("cosign.pub", &key.public_pem().unwrap())],
    );
    let file = write(work.path(), "components.yaml", &yaml);
    let out = pull(&[&file], &work.path().join("cache"), &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["component"], "apps/signed");
    assert_eq!(lines[0]["verified"]["provider"], "cosign", "{}", lines[0]);
    assert_eq!(lines[0]["verified"]["manifestDigest"], digests[0].as_str());
    assert_eq!(lines[1]["component"], "apps/unsigned");
    assert_eq!(lines[1]["error"]["category"], "integrity", "{}", lines[1]);
    let message = lines[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("no cosign signature"), "{message}");
    assert!(
        message.contains("`cosign.pub` of Secret deployment-system/cosign-keys"),
        "{message}"
    );
}
