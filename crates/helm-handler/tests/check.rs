//! `helm-handler check`, run as the real binary on YAML fixtures
//! (`tests/fixtures/check/`) and on the repository's `examples/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE_SECRETS: &[&str] = &["s3cr3t-fixture-password", "s3cr3t-fixture-token", "hunter2"];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check")
        .join(name)
}

fn check(args: &[&str], files: &[PathBuf]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-handler"));
    cmd.arg("check").args(args);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.env_remove("HELM_HANDLER_SYSTEM_NAMESPACE");
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    for secret in FIXTURE_SECRETS {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a Secret value was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

/// `ns/name` → the rest of its line (`ok`, or the error after `error ns/name: `).
fn lines(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("ok ") {
                let (key, identity) = rest.split_once(" (runs as ").unwrap();
                assert!(identity.ends_with(')'), "{l}");
                (key.to_string(), "ok".to_string())
            } else {
                let rest = l
                    .strip_prefix("error ")
                    .unwrap_or_else(|| panic!("bad line {l:?}"));
                let (key, msg) = rest.split_once(": ").unwrap();
                (key.to_string(), msg.to_string())
            }
        })
        .collect()
}

#[test]
fn accepts_every_valid_form() {
    let run = check(
        &["--verbose"],
        &[fixture("valid.yaml"), fixture("system-secrets.yaml")],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let got = lines(&run.stdout);
    let expected = [
        "apps/oci-nested-auth",
        "apps/oci-nested-anonymous",
        "apps/oci-digest",
        "apps/oci-dockerconfig",
        "apps/oci-token-system-namespace",
        "apps/oci-secret-elsewhere",
        "apps/http-nested",
        "apps/http-nested-full",
        "apps/flat-oci",
        "default/flat-http",
    ];
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>().len(),
        expected.len(),
        "{}",
        run.stdout
    );
    for key in expected {
        assert_eq!(
            got.get(key).map(String::as_str),
            Some("ok"),
            "{key}: {}",
            run.stdout
        );
    }
    // One line per helm Component, in file order.
    assert!(
        run.stdout
            .starts_with("ok apps/oci-nested-auth (runs as the controller's own identity)\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("someone-elses"),
        "other handlers are not checked"
    );
    assert!(
        run.stderr
            .contains("skip apps/someone-elses: handler is \"kustomize\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`only-in-the-cluster`"),
        "{}",
        run.stderr
    );
}

#[test]
fn secrets_in_the_files_are_resolved() {
    // Without the second file the system-namespace Secrets are simply not checked…
    let run = check(&[], &[fixture("valid.yaml")]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // …and with a different system namespace, the pinned `deployment-system` reference is
    // refused before any lookup.
    let run = check(
        &["--system-namespace", "platform"],
        &[fixture("valid.yaml"), fixture("system-secrets.yaml")],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = lines(&run.stdout);
    let err = &got["apps/oci-nested-auth"];
    assert!(
        err.contains("`source.authentication.secretRef.namespace`"),
        "{err}"
    );
    assert!(err.contains("(\"platform\")"), "{err}");
    // `oci-digest` pins nothing: its CA (in deployment-system) is simply not in its namespaces now.
    assert_eq!(got["apps/oci-digest"], "ok");
}

#[test]
fn cosign_key_secrets_are_checked() {
    let run = check(&["-v"], &[fixture("verify.yaml")]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = lines(&run.stdout);
    assert_eq!(got["apps/signed"], "ok");
    // A key Secret that is not in the files is not checked (said with -v).
    assert_eq!(got["apps/keys-elsewhere"], "ok");
    assert!(run.stderr.contains("`cluster-keys`"), "{}", run.stderr);
    let err = &got["apps/no-public-key"];
    assert!(
        err.starts_with("config: Secret `apps/not-keys` (field `source.verify.secretRef`)"),
        "{err}"
    );
    assert!(err.contains("holds no cosign public key"), "{err}");
    let err = &got["apps/keyless"];
    assert!(err.contains("`source.verify.secretRef`"), "{err}");
    assert!(err.contains("keyless verification"), "{err}");
    let err = &got["apps/other-tenant"];
    assert!(err.contains("`source.verify.secretRef.namespace`"), "{err}");
}

#[test]
fn rejects_every_invalid_form_naming_the_field() {
    let run = check(&[], &[fixture("invalid.yaml")]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let got = lines(&run.stdout);
    // (Component, category, field named, words the message must contain)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "missing-source",
            "config",
            "source",
            &["missing chart source"],
        ),
        (
            "unknown-type",
            "config",
            "source.type",
            &["\"git\"", "`oci`, `http`"],
        ),
        ("missing-type", "config", "source.type", &["missing"]),
        (
            "source-with-flat-fields",
            "config",
            "source",
            &["cannot be combined", "`chart`"],
        ),
        (
            "typo-in-source",
            "config",
            "source.authentification",
            &["unknown field", "did you mean `authentication`"],
        ),
        (
            "typo-top-level",
            "config",
            "relaseName",
            &["did you mean `releaseName`"],
        ),
        (
            "typo-in-secret-ref",
            "config",
            "source.authentication.secretRef.namepsace",
            &["did you mean `namespace`"],
        ),
        (
            "http-field-on-oci",
            "config",
            "source.passCredentials",
            &["unknown field for an oci source"],
        ),
        (
            "oci-field-on-http",
            "config",
            "source.plainHTTP",
            &["unknown field for an http source"],
        ),
        (
            "missing-release-name",
            "config",
            "releaseName",
            &["missing"],
        ),
        ("bad-release-name", "config", "releaseName", &["\"My_App\""]),
        (
            "long-release-name",
            "config",
            "releaseName",
            &["at most 53"],
        ),
        (
            "bad-release-namespace",
            "config",
            "releaseNamespace",
            &["\"Web_Apps\""],
        ),
        (
            "bad-manage-namespace",
            "config",
            "manageNamespace",
            &["true or false"],
        ),
        (
            "values-not-object",
            "config",
            "values",
            &["expected an object"],
        ),
        (
            "oci-missing-version",
            "config",
            "source.chart",
            &["missing version"],
        ),
        (
            "oci-bad-port",
            "config",
            "source.chart",
            &["registry port `http` is not a number"],
        ),
        (
            "oci-uppercase",
            "config",
            "source.chart",
            &["must be lowercase"],
        ),
        (
            "oci-bad-digest",
            "config",
            "source.chart",
            &["invalid digest"],
        ),
        (
            "flat-oci-without-scheme",
            "config",
            "chart",
            &["must start with oci://"],
        ),
        (
            "plain-http-with-ca",
            "config",
            "source.plainHTTP",
            &["cannot be combined"],
        ),
        (
            "http-bad-url-scheme",
            "config",
            "source.repository.url",
            &["expected http:// or https://"],
        ),
        (
            "http-url-with-credentials",
            "config",
            "source.repository.url",
            &["must not contain credentials"],
        ),
        (
            "http-empty-version",
            "config",
            "source.chart.version",
            &["empty"],
        ),
        (
            "http-missing-chart-name",
            "config",
            "source.chart.name",
            &["missing"],
        ),
        (
            "flat-http-without-repository",
            "config",
            "repository",
            &["missing"],
        ),
        (
            "auth-method-mismatch",
            "config",
            "source.authentication.method",
            &["expected `registry`"],
        ),
        (
            "secret-other-namespace",
            "config",
            "source.authentication.secretRef.namespace",
            &["`other-tenant/creds` is not allowed"],
        ),
        (
            "ca-other-namespace",
            "config",
            "source.caSecretRef.namespace",
            &["`kube-system/ca` is not allowed"],
        ),
        (
            "secret-without-credentials",
            "config",
            "source.authentication.secretRef",
            &[
                "Secret `apps/not-credentials`",
                "holds no credentials",
                "`pass`, `user`",
            ],
        ),
        (
            "dockerconfig-no-entry",
            "config",
            "source.authentication.secretRef",
            &[
                "Secret `deployment-system/ghcr-only`",
                "no entry for registry `quay.io`",
            ],
        ),
        (
            "ca-not-pem",
            "config",
            "source.caSecretRef",
            &["Secret `apps/not-a-ca`", "no PEM certificate"],
        ),
        (
            "http-bad-constraint",
            "config",
            "source.chart.version",
            &["invalid version constraint \"latest\""],
        ),
        (
            "no-config",
            "config",
            "spec.config",
            &["expected an object"],
        ),
    ];
    for (name, category, field, words) in cases {
        let key = format!("apps/{name}");
        let msg = got
            .get(&key)
            .unwrap_or_else(|| panic!("no line for {key}:\n{}", run.stdout));
        assert!(msg.starts_with(&format!("{category}: ")), "{key}: {msg}");
        assert!(
            msg.contains(&format!("`{field}`")),
            "{key}: field `{field}` not named in {msg}"
        );
        for w in *words {
            assert!(msg.contains(w), "{key}: expected {w:?} in {msg}");
        }
    }
    assert_eq!(
        got.len(),
        cases.len(),
        "every Component has exactly one line:\n{}",
        run.stdout
    );
    assert!(run.stderr.contains("0 valid, 34 invalid"), "{}", run.stderr);
}

#[test]
fn one_invalid_component_among_valid_ones_fails_the_run() {
    let run = check(
        &[],
        &[
            fixture("valid.yaml"),
            fixture("system-secrets.yaml"),
            fixture("invalid.yaml"),
        ],
    );
    assert_eq!(run.code, 1);
    let got = lines(&run.stdout);
    assert_eq!(got["apps/flat-oci"], "ok");
    assert!(got["apps/missing-source"].starts_with("config: "));
}

#[test]
fn malformed_yaml_names_the_file_and_line() {
    let path = fixture("malformed.yaml");
    let run = check(&[], std::slice::from_ref(&path));
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.is_empty(),
        "nothing is checked when a file is malformed: {}",
        run.stdout
    );
    let expected = format!("{}:17: invalid YAML", path.display());
    assert!(
        run.stderr.contains(&expected),
        "expected {expected:?} in {}",
        run.stderr
    );
}

#[test]
fn a_document_that_is_not_an_object_is_an_error() {
    let path = fixture("not-an-object.yaml");
    let run = check(&[], std::slice::from_ref(&path));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(&format!("{}:5:", path.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn unreadable_file_exits_2() {
    let run = check(&[], &[fixture("does-not-exist.yaml")]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("does-not-exist.yaml"), "{}", run.stderr);
}

#[test]
fn no_file_is_a_usage_error() {
    let run = check(&[], &[]);
    assert_eq!(run.code, 2, "clap reports a missing -f: {}", run.stderr);
}

#[test]
fn no_helm_component_is_not_an_error() {
    let run = check(&[], &[fixture("system-secrets.yaml")]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("no helm Components"), "{}", run.stderr);
}

#[test]
fn a_directory_and_stdin_are_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let run = check(&[], &[dir]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("ok apps/flat-oci (runs as the controller's own identity)\n"),
        "{}",
        run.stdout
    );

    let text = std::fs::read(fixture("invalid.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_helm-handler"))
        .args(["check", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("error apps/missing-source: config: field `source`")
    );
}

#[test]
fn the_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    for required in [
        "oci-component.yaml",
        "http-component.yaml",
        "flat-oci-component.yaml",
        "flat-http-component.yaml",
        "registry-secret.yaml",
        "tenant-component.yaml",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(required)),
            "examples/{required} is missing"
        );
    }
    let run = check(&[], &files);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let got = lines(&run.stdout);
    assert!(got.len() >= 7, "{}", run.stdout);
    assert!(got.values().all(|v| v == "ok"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ok team-a/web (runs as system:serviceaccount:team-a:deployer)\n"),
        "{}",
        run.stdout
    );
}

/// A Component file whose values alias a list into 10^9 nodes (767 bytes): refused as a file
/// error naming the file, under a 1 GB address-space limit (unbounded, it needs many GB).
#[test]
fn alias_bomb_in_a_component_file_is_refused_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = String::from("      l0: &l0 [lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(",");
        values.push_str(&format!("      l{i}: &l{i} [{refs}]\n"));
    }
    let file = dir.path().join("bomb.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata: {{name: bomb, namespace: apps}}\nspec:\n  handler: helm\n  config:\n    releaseName: bomb\n    source: {{type: oci, chart: \"oci://127.0.0.1:5000/charts/bomb:1.0.0\"}}\n    values:\n{values}"
        ),
    )
    .unwrap();
    let mut cmd = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = Command::new("/usr/bin/prlimit");
        c.arg("--as=1000000000")
            .arg(env!("CARGO_BIN_EXE_helm-handler"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_helm-handler"))
    };
    let out = cmd.arg("check").arg("-f").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("excessive aliasing"), "{stderr}");
    assert!(
        stderr.contains(&file.display().to_string()),
        "names the file: {stderr}"
    );
}

#[test]
fn values_from_sources_in_the_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    let component = |name: &str, values_from: &str| {
        format!(
            "---\napiVersion: deployment-orchestrator.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}, namespace: apps}}\nspec:\n  handler: helm\n  config:\n    releaseName: {name}\n    valuesFrom: {values_from}\n    source: {{type: oci, chart: \"oci://r.example/c/web:1.0.0\"}}\n"
        )
    };
    let text = [
        component("good", "[{kind: ConfigMap, name: env, valuesKey: replicas, targetPath: replicaCount}]"),
        component("broken", "[{kind: ConfigMap, name: env}]"),
        component("elsewhere", "[{kind: Secret, name: in-the-cluster}]"),
        component("foreign", "[{kind: Secret, name: s, namespace: team-b}]"),
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: env, namespace: apps}\ndata:\n  replicas: \"3\"\n  values.yaml: \"a: [b\"\n".to_string(),
    ]
    .concat();
    std::fs::write(&file, text).unwrap();
    let run = check(&["--verbose"], &[file]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = lines(&run.stdout);
    assert_eq!(got["apps/good"], "ok");
    assert!(
        got["apps/broken"].starts_with(
            "config: key `values.yaml` of ConfigMap `apps/env` (field `valuesFrom[0]`): not valid YAML"
        ),
        "{}",
        got["apps/broken"]
    );
    assert_eq!(got["apps/elsewhere"], "ok");
    assert!(
        run.stderr.contains("note apps/elsewhere: Secret `in-the-cluster` (field `valuesFrom[0]`) is not in the files"),
        "{}",
        run.stderr
    );
    assert!(
        got["apps/foreign"].starts_with(
            "config: field `valuesFrom[0].namespace`: Secret `team-b/s` is not allowed"
        ),
        "{}",
        got["apps/foreign"]
    );
}

/// Who each Component would act as, with and without the controller's tenancy flags; a
/// release in another namespace is an error only with `--no-cross-namespace-releases`.
#[test]
fn shows_the_identity_and_flags_cross_namespace_releases() {
    let file = fixture("tenancy.yaml");
    let run = check(&[], std::slice::from_ref(&file));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "ok team-a/own-sa (runs as system:serviceaccount:team-a:deployer)\n\
         ok team-a/no-sa (runs as the controller's own identity)\n\
         ok team-a/elsewhere (runs as system:serviceaccount:team-a:deployer)\n"
    );

    let run = check(
        &[
            "--default-service-account=helm-deployer",
            "--no-cross-namespace-releases",
        ],
        &[file],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let got = lines(&run.stdout);
    assert_eq!(got["team-a/own-sa"], "ok");
    assert_eq!(got["team-a/no-sa"], "ok");
    assert!(
        run.stdout
            .contains("ok team-a/no-sa (runs as system:serviceaccount:team-a:helm-deployer)\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        got["team-a/elsewhere"],
        "config: field `releaseNamespace`: \"kube-system\" is not the Component's namespace \"team-a\": releases in other namespaces are refused (--no-cross-namespace-releases); remove the field or set it to \"team-a\""
    );

    let run = check(
        &["--default-service-account=Not_Valid"],
        &[fixture("tenancy.yaml")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--default-service-account"),
        "{}",
        run.stderr
    );
}
