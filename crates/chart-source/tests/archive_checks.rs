//! Archive checks on crafted tarballs: each rule rejects with an `integrity` error naming
//! the entry, and well-formed charts (as `helm package` makes them) pass.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chart_source::archive::{ArchiveLimits, check_archive};
use chart_source::{Category, Digest};

enum Item<'a> {
    File(&'a str, Vec<u8>),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// Writes a .tgz with raw header names (so `..` and absolute paths can be crafted).
fn tgz(dir: &Path, name: &str, items: &[Item]) -> PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        let (path, data): (&str, &[u8]) = match item {
            Item::File(p, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                (p, d)
            }
            Item::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                (p, &[])
            }
            Item::Symlink(p, target) | Item::Hardlink(p, target) => {
                h.set_entry_type(if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_size(0);
                let t = target.as_bytes();
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
                (p, &[])
            }
        };
        let raw = path.as_bytes();
        h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let out = dir.join(name);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&tar_bytes).unwrap();
    gz.finish().unwrap();
    out
}

fn chart_yaml(name: &str, version: &str, deps: &str) -> Vec<u8> {
    format!("apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"1.0\"\n{deps}")
        .into_bytes()
}

fn base(name: &str, version: &str) -> Vec<Item<'static>> {
    let chart = Box::leak(format!("{name}/Chart.yaml").into_boxed_str());
    let values = Box::leak(format!("{name}/values.yaml").into_boxed_str());
    vec![
        Item::File(chart, chart_yaml(name, version, "")),
        Item::File(values, b"replicaCount: 1\n".to_vec()),
    ]
}

fn rejected(path: &Path, limits: &ArchiveLimits, expect: Option<(&str, &str)>, needle: &str) {
    let err = check_archive(path, limits, expect).unwrap_err();
    assert_eq!(err.category(), Category::Integrity, "{err}");
    let text = err.to_string();
    assert!(text.contains(needle), "expected `{needle}` in `{text}`");
}

#[test]
fn a_well_formed_chart_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = base("app", "1.2.3+build.1");
    items.push(Item::Dir("app/templates/"));
    items.push(Item::File(
        "app/templates/cm.yaml",
        b"kind: ConfigMap\n".to_vec(),
    ));
    let p = tgz(tmp.path(), "ok.tgz", &items);
    let meta = check_archive(
        &p,
        &ArchiveLimits::default(),
        Some(("app", "1.2.3_build.1")),
    )
    .unwrap();
    assert_eq!(meta.name, "app");
    assert_eq!(meta.version, "1.2.3+build.1");
    assert_eq!(meta.api_version, "v2");
    assert_eq!(meta.app_version.as_deref(), Some("1.0"));
    assert_eq!(meta.digest, Digest::of(&std::fs::read(&p).unwrap()));
    // The `+` spelling is accepted too.
    check_archive(
        &p,
        &ArchiveLimits::default(),
        Some(("app", "1.2.3+build.1")),
    )
    .unwrap();
}

#[test]
fn path_traversal_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = base("app", "1.0.0");
    items.push(Item::File("app/../../etc/evil", b"x".to_vec()));
    let p = tgz(tmp.path(), "t.tgz", &items);
    rejected(&p, &ArchiveLimits::default(), None, "app/../../etc/evil");
    rejected(&p, &ArchiveLimits::default(), None, "`..`");
}

#[test]
fn absolute_path_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = base("app", "1.0.0");
    items.push(Item::File("/etc/evil", b"x".to_vec()));
    let p = tgz(tmp.path(), "t.tgz", &items);
    rejected(&p, &ArchiveLimits::default(), None, "/etc/evil");
}

#[test]
fn symlink_escape_and_hardlinks_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = base("app", "1.0.0");
    items.push(Item::Symlink(
        "app/templates/x.yaml",
        "../../../../etc/passwd",
    ));
    let p = tgz(tmp.path(), "s.tgz", &items);
    rejected(&p, &ArchiveLimits::default(), None, "app/templates/x.yaml");
    rejected(
        &p,
        &ArchiveLimits::default(),
        None,
        "../../../../etc/passwd",
    );

    let mut items = base("app", "1.0.0");
    items.push(Item::Hardlink("app/templates/y.yaml", "/etc/shadow"));
    let p = tgz(tmp.path(), "h.tgz", &items);
    rejected(&p, &ArchiveLimits::default(), None, "links are not allowed");
}

#[test]
fn size_limits_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = ArchiveLimits {
        max_compressed_bytes: 1 << 20,
        max_total_bytes: 6000,
        max_file_bytes: 4096,
        max_entries: 5,
    };
    let mut items = base("app", "1.0.0");
    items.push(Item::File("app/big.bin", vec![0u8; 5000]));
    let p = tgz(tmp.path(), "big.tgz", &items);
    rejected(&p, &limits, None, "app/big.bin");
    rejected(&p, &limits, None, "per-file limit");

    let mut items = base("app", "1.0.0");
    items.push(Item::File("app/a.bin", vec![0u8; 4000]));
    items.push(Item::File("app/b.bin", vec![0u8; 4000]));
    let p = tgz(tmp.path(), "total.tgz", &items);
    rejected(&p, &limits, None, "decompressed chart is over the limit");

    let mut items = base("app", "1.0.0");
    for name in ["app/1", "app/2", "app/3", "app/4"] {
        items.push(Item::File(name, b"x".to_vec()));
    }
    let p = tgz(tmp.path(), "many.tgz", &items);
    rejected(&p, &limits, None, "more than 5 entries");

    let compressed = ArchiveLimits {
        max_compressed_bytes: 10,
        ..ArchiveLimits::default()
    };
    let p = tgz(tmp.path(), "c.tgz", &base("app", "1.0.0"));
    rejected(&p, &compressed, None, "over the limit of 10");
}

#[test]
fn structure_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = base("app", "1.0.0");
    items.push(Item::File("other/x.yaml", b"x".to_vec()));
    let p = tgz(tmp.path(), "two.tgz", &items);
    rejected(
        &p,
        &ArchiveLimits::default(),
        None,
        "more than one top-level directory",
    );

    let p = tgz(
        tmp.path(),
        "nochart.tgz",
        &[Item::File("app/values.yaml", b"a: 1\n".to_vec())],
    );
    rejected(&p, &ArchiveLimits::default(), None, "app/Chart.yaml");

    let p = tgz(
        tmp.path(),
        "badyaml.tgz",
        &[Item::File("app/Chart.yaml", b"name: [unclosed\n".to_vec())],
    );
    rejected(&p, &ArchiveLimits::default(), None, "invalid YAML");

    let p = tmp.path().join("notgz.tgz");
    std::fs::write(&p, b"this is not gzip").unwrap();
    rejected(
        &p,
        &ArchiveLimits::default(),
        None,
        "not a gzip-compressed tar",
    );
}

#[test]
fn name_and_version_must_match_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tgz(tmp.path(), "a.tgz", &base("app", "1.0.0"));
    rejected(
        &p,
        &ArchiveLimits::default(),
        Some(("other", "1.0.0")),
        "chart name is `app`",
    );
    rejected(
        &p,
        &ArchiveLimits::default(),
        Some(("app", "1.0.1")),
        "chart version is `1.0.0`",
    );
}

#[test]
fn dependencies_must_be_packaged() {
    let tmp = tempfile::tempdir().unwrap();
    let deps = "dependencies:\n- name: redis\n  version: ^17.0.0\n  repository: https://charts.example\n  condition: redis.enabled\n";
    let chart = |extra: Vec<Item<'static>>| {
        let mut items = vec![Item::File(
            "app/Chart.yaml",
            chart_yaml("app", "1.0.0", deps),
        )];
        items.extend(extra);
        items
    };
    let p = tgz(tmp.path(), "missing.tgz", &chart(vec![]));
    rejected(
        &p,
        &ArchiveLimits::default(),
        None,
        "dependency `redis` ^17.0.0",
    );

    // A similarly named package does not count.
    let p = tgz(
        tmp.path(),
        "wrong.tgz",
        &chart(vec![Item::File(
            "app/charts/redis-cluster-1.0.0.tgz",
            b"x".to_vec(),
        )]),
    );
    rejected(&p, &ArchiveLimits::default(), None, "dependency `redis`");

    let p = tgz(
        tmp.path(),
        "tgz.tgz",
        &chart(vec![Item::File(
            "app/charts/redis-17.3.1.tgz",
            b"x".to_vec(),
        )]),
    );
    check_archive(&p, &ArchiveLimits::default(), None).unwrap();

    let p = tgz(
        tmp.path(),
        "dir.tgz",
        &chart(vec![Item::File(
            "app/charts/redis/Chart.yaml",
            chart_yaml("redis", "17.3.1", ""),
        )]),
    );
    let meta = check_archive(&p, &ArchiveLimits::default(), None).unwrap();
    assert_eq!(meta.dependencies.len(), 1);
    assert_eq!(
        meta.dependencies[0].condition.as_deref(),
        Some("redis.enabled")
    );

    // apiVersion v1: requirements.yaml.
    let v1 = b"apiVersion: v1\nname: app\nversion: 1.0.0\n".to_vec();
    let req = b"dependencies:\n- name: mysql\n  version: 1.x\n".to_vec();
    let p = tgz(
        tmp.path(),
        "v1.tgz",
        &[
            Item::File("app/Chart.yaml", v1.clone()),
            Item::File("app/requirements.yaml", req.clone()),
        ],
    );
    rejected(&p, &ArchiveLimits::default(), None, "dependency `mysql`");
    let p = tgz(
        tmp.path(),
        "v1ok.tgz",
        &[
            Item::File("app/Chart.yaml", v1),
            Item::File("app/requirements.yaml", req),
            Item::File("app/charts/mysql-1.6.9.tgz", b"x".to_vec()),
        ],
    );
    check_archive(&p, &ArchiveLimits::default(), None).unwrap();
}

#[test]
fn charts_packaged_by_helm_pass() {
    let helm = test_support::helm_bin();
    if !helm.exists() {
        eprintln!(
            "SKIP: helm not found at {} (run scripts/dev-setup)",
            helm.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sub = test_support::Chart::create("sub", "0.2.0");
    let tgz = test_support::Chart::create("parent", "1.2.3+build.1")
        .dependency(sub)
        .package(tmp.path())
        .unwrap();
    let meta = check_archive(
        &tgz,
        &ArchiveLimits::default(),
        Some(("parent", "1.2.3_build.1")),
    )
    .unwrap();
    assert_eq!(meta.dependencies.len(), 1);
}
