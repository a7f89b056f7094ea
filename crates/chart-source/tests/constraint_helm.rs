//! Differential test: our constraint engine against the real helm binary's (Masterminds
//! semver) on the same index. `helm search repo --version C --versions` reads a cached
//! index and lists every version satisfying C; we compare the sets for many constraints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use chart_source::http::RepoIndex;
use chart_source::http::constraint::Constraint;

const VERSIONS: &[&str] = &[
    "0.0.0",
    "0.0.1-alpha",
    "0.0.1",
    "0.0.3",
    "0.0.4",
    "0.1.4",
    "0.2.3",
    "0.2.3-beta.4",
    "0.2.4-beta.2",
    "0.2.5",
    "0.3.5",
    "0.5.6",
    "1.0.0",
    "1.0.500",
    "1.1.0-alpha",
    "1.1.0",
    "1.1.1-alpha",
    "1.1.1-beta",
    "1.1.1",
    "1.1.500",
    "1.2.0",
    "1.2.1-alpha.1",
    "1.2.3",
    "1.2.4",
    "1.2.5",
    "1.3.0",
    "1.3.4",
    "1.3.5-beta",
    "1.3.5",
    "1.4.5",
    "1.4.6",
    "1.5.0-beta.1",
    "1.8.9",
    "1.10.0",
    "2.0.0-rc.1",
    "2.0.0",
    "2.1.1",
    "2.8.9",
    "3.0.0",
    "3.1.0-beta.1",
    "3.1.2",
    "4.1.0-beta",
    "4.1.0",
    "4.1.1",
    "4.2.0",
    "4.2.3",
    "5.1.0-alpha.1",
    "5.1.0",
    "11.0.2",
    "11.1.0",
    "11.1.2",
    "11.2.1",
    "12.2.3",
    "v13.1",
];

const CONSTRAINTS: &[&str] = &[
    "1.2.3",
    "=1.2.3",
    "v1.2.3",
    "= 1.2.3",
    "1.2",
    "1",
    "1.x",
    "1.2.x",
    "1.2.*",
    "*",
    "x",
    "2.*",
    ">1.2.3",
    ">=1.2.3",
    "<1.2.3",
    "<=1.2.3",
    "!=1.2.3",
    ">1.1",
    ">11",
    ">11.1",
    "<1.1",
    "<1.x",
    "<1.1.x",
    "<=1.1",
    "<=1.x",
    "<=2.x",
    "<=1.1.x",
    ">=11.1",
    "!=4.1",
    "!=4.x",
    "!=4.1.x",
    "!=4.1-alpha",
    "^1.2.3",
    "^1.2",
    "^1",
    "^0.2.3",
    "^0.2",
    "^0.0.3",
    "^0.0",
    "^0",
    "^1.x",
    "^0.0.0",
    "^1.2.0-alpha.0",
    "^0.2.3-beta.2",
    "~1.2.3",
    "~1.2",
    "~1",
    "~0.2.3",
    "~1.x",
    "~*",
    "~0.0.0",
    "~>1.2",
    "~> 1.2.3",
    "~1.1-alpha",
    "~1.2.3-beta.2",
    ">=1.1, <2, !=1.2.3",
    ">=1.1 <2 !=1.2.3 || > 3",
    ">1.1 <2",
    "1.1 - 2",
    "1.2 - 1.4.5",
    "1.2 - 1.4",
    "1.0.0 - 2.0.0, <=2.0.0",
    ">=1.2.0-0 <2.0.0",
    ">=1.2.0-0",
    ">0.0.0-0",
    ">=0-0",
    "*-0",
    ">=1.2.0 <2.0.0 || >=3.0.0-0",
    "<0-z",
    ">0",
    ">=0",
    "0.x.x",
    "0.0.x",
    "=> 3.0, < 4",
    "=< 1.2",
    "1.1-3",
    "13.1.0",
    ">=11 <12 || ^4.1",
    "^12",
    "^13",
];

fn helm_matches(home: &Path, constraint: &str) -> Result<BTreeSet<String>, String> {
    let out = test_support::helm_command(home)
        .args([
            "search",
            "repo",
            "t/foo",
            "--versions",
            "-o",
            "json",
            "--version",
            constraint,
        ])
        .output()
        .expect("run helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("helm json");
    Ok(rows
        .iter()
        .filter(|r| r["name"] == "t/foo")
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect())
}

#[test]
fn constraints_agree_with_real_helm() {
    let helm = test_support::helm_bin();
    if std::process::Command::new(&helm)
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: no helm binary at {} (run scripts/dev-setup)",
            helm.display()
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache/repository");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/repositories.yaml"),
        "apiVersion: v1\nrepositories:\n- name: t\n  url: http://127.0.0.1:9/unused\n",
    )
    .unwrap();
    let mut index = String::from("apiVersion: v1\nentries:\n  foo:\n");
    for v in VERSIONS {
        index.push_str(&format!(
            "  - apiVersion: v2\n    name: foo\n    version: \"{v}\"\n    urls: [foo-{v}.tgz]\n"
        ));
    }
    std::fs::write(cache.join("t-index.yaml"), &index).unwrap();
    let parsed = RepoIndex::parse(index.as_bytes(), "test").unwrap();
    let entries = parsed.chart("foo").unwrap();

    // The harness really sees helm's answers.
    let caret = helm_matches(home.path(), "^1").unwrap();
    assert!(
        caret.contains("1.10.0") && !caret.contains("2.0.0"),
        "{caret:?}"
    );
    assert!(helm_matches(home.path(), ">>1").is_err());

    let mut mismatches = Vec::new();
    for constraint in CONSTRAINTS {
        let theirs = helm_matches(home.path(), constraint);
        let ours = Constraint::parse(constraint).map(|c| {
            entries
                .iter()
                .filter(|e| c.matches(&e.version))
                .map(|e| e.raw_version.to_string())
                .collect::<BTreeSet<_>>()
        });
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) => {}
            _ => mismatches.push(format!(
                "{constraint:?}: ours {ours:?}\n      helm {theirs:?}"
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "differences with helm:\n{}",
        mismatches.join("\n")
    );
}
