//! Archive checks on crafted tarballs: each rule rejects with an `integrity` error naming
//! the entry, and well-formed charts (as `helm package` makes them) pass. The archive forms
//! and boundaries where helm is the reference go through the real helm in the same test
//! (`helm show chart`, which loads the archive with helm's chart loader) and must get the
//! same verdict.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chart_source::archive::{ArchiveLimits, check_archive};
use chart_source::{Digest, ErrorCategory};

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

fn rejected(path: &Path, limits: &ArchiveLimits, needle: &str) {
    let err = check_archive(path, limits).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
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
    let meta = check_archive(&p, &ArchiveLimits::default()).unwrap();
    assert_eq!(meta.name, "app");
    assert_eq!(meta.version, "1.2.3+build.1");
    assert_eq!(meta.api_version, "v2");
    assert_eq!(meta.app_version.as_deref(), Some("1.0"));
    assert_eq!(meta.digest, Digest::of(&std::fs::read(&p).unwrap()));
}

#[test]
fn path_traversal_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items = base("app", "1.0.0");
    items.push(Item::File("app/../../etc/evil", b"x".to_vec()));
    let p = tgz(tmp.path(), "t.tgz", &items);
    rejected(&p, &ArchiveLimits::default(), "app/../../etc/evil");
    rejected(&p, &ArchiveLimits::default(), "references parent directory");
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
    rejected(&p, &ArchiveLimits::default(), "app/templates/x.yaml");
    rejected(&p, &ArchiveLimits::default(), "../../../../etc/passwd");

    let mut items = base("app", "1.0.0");
    items.push(Item::Hardlink("app/templates/y.yaml", "/etc/shadow"));
    let p = tgz(tmp.path(), "h.tgz", &items);
    rejected(&p, &ArchiveLimits::default(), "links are not allowed");
}

#[test]
fn size_limits_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = ArchiveLimits {
        max_compressed_bytes: 1 << 20,
        max_total_bytes: 6000,
        max_file_bytes: 4096,
        max_stream_bytes: 64 << 10,
    };
    let mut items = base("app", "1.0.0");
    items.push(Item::File("app/big.bin", vec![0u8; 4097]));
    let p = tgz(tmp.path(), "big.tgz", &items);
    rejected(&p, &limits, "app/big.bin");
    rejected(&p, &limits, "per-file limit of 4096");

    let mut items = base("app", "1.0.0");
    items.push(Item::File("app/a.bin", vec![0u8; 4000]));
    items.push(Item::File("app/b.bin", vec![0u8; 4000]));
    let p = tgz(tmp.path(), "total.tgz", &items);
    rejected(&p, &limits, "reach helm's limit of 6000 bytes");

    // Countless empty entries: the decompressed stream bound stops them.
    let mut items = base("app", "1.0.0");
    let names: Vec<String> = (0..200).map(|i| format!("app/e/{i}")).collect();
    for name in &names {
        items.push(Item::File(name, Vec::new()));
    }
    let p = tgz(tmp.path(), "many.tgz", &items);
    rejected(
        &p,
        &limits,
        "decompressed archive is larger than 65536 bytes",
    );

    let compressed = ArchiveLimits {
        max_compressed_bytes: 10,
        ..ArchiveLimits::default()
    };
    let p = tgz(tmp.path(), "c.tgz", &base("app", "1.0.0"));
    rejected(&p, &compressed, "over the limit of 10");
}

#[test]
fn structure_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tgz(
        tmp.path(),
        "nochart.tgz",
        &[Item::File("app/values.yaml", b"a: 1\n".to_vec())],
    );
    rejected(&p, &ArchiveLimits::default(), "Chart.yaml is missing");

    let p = tgz(
        tmp.path(),
        "badyaml.tgz",
        &[Item::File("app/Chart.yaml", b"name: [unclosed\n".to_vec())],
    );
    rejected(&p, &ArchiveLimits::default(), "invalid YAML");

    let p = tgz(tmp.path(), "empty.tgz", &[Item::Dir("app/")]);
    rejected(&p, &ArchiveLimits::default(), "no files in chart archive");

    let p = tmp.path().join("notgz.tgz");
    std::fs::write(&p, b"this is not gzip").unwrap();
    rejected(&p, &ArchiveLimits::default(), "not a gzip-compressed tar");
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
    rejected(&p, &ArchiveLimits::default(), "dependency `redis` ^17.0.0");

    // A similarly named package does not count.
    let p = tgz(
        tmp.path(),
        "wrong.tgz",
        &chart(vec![Item::File(
            "app/charts/redis-cluster-1.0.0.tgz",
            b"x".to_vec(),
        )]),
    );
    rejected(&p, &ArchiveLimits::default(), "dependency `redis`");

    let p = tgz(
        tmp.path(),
        "tgz.tgz",
        &chart(vec![Item::File(
            "app/charts/redis-17.3.1.tgz",
            b"x".to_vec(),
        )]),
    );
    check_archive(&p, &ArchiveLimits::default()).unwrap();

    let p = tgz(
        tmp.path(),
        "dir.tgz",
        &chart(vec![Item::File(
            "app/charts/redis/Chart.yaml",
            chart_yaml("redis", "17.3.1", ""),
        )]),
    );
    let meta = check_archive(&p, &ArchiveLimits::default()).unwrap();
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
    rejected(&p, &ArchiveLimits::default(), "dependency `mysql`");
    let p = tgz(
        tmp.path(),
        "v1ok.tgz",
        &[
            Item::File("app/Chart.yaml", v1),
            Item::File("app/requirements.yaml", req),
            Item::File("app/charts/mysql-1.6.9.tgz", b"x".to_vec()),
        ],
    );
    check_archive(&p, &ArchiveLimits::default()).unwrap();
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
    let meta = check_archive(&tgz, &ArchiveLimits::default()).unwrap();
    assert_eq!(meta.dependencies.len(), 1);
}

// ---- Differential: the same archive through the real helm and through us. ----

/// helm's verdict on an archive: `(name, version)` from `helm show chart` (helm's chart
/// loader), or helm's error.
fn helm_verdict(home: &Path, archive: &Path) -> Result<(String, String), String> {
    let out = test_support::helm_command(home)
        .arg("show")
        .arg("chart")
        .arg(archive)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    Ok((field("name:"), field("version:")))
}

/// Puts `archive` through helm and through `check_archive`: both accept it with the same
/// name and version, or both refuse it (and where helm names a path rule, our message names
/// the same rule). Returns our verdict.
fn same_verdict(home: &Path, archive: &Path) -> Result<(String, String), String> {
    let helm = helm_verdict(home, archive);
    let ours = check_archive(archive, &ArchiveLimits::default())
        .map(|m| (m.name, m.version))
        .map_err(|e| {
            assert_eq!(e.category(), ErrorCategory::Integrity, "{e}");
            e.to_string()
        });
    eprintln!("{}:\n  helm: {helm:?}\n  ours: {ours:?}", archive.display());
    match (&helm, &ours) {
        (Ok(h), Ok(o)) => assert_eq!(h, o, "{}", archive.display()),
        (Err(h), Err(o)) => {
            let reason = h.trim_start_matches("Error: ");
            if reason.contains("illegally") || reason.contains("chart yaml not in base") {
                let rule = reason.split(':').next().unwrap_or(reason);
                assert!(o.contains(rule), "helm: `{h}`, ours: `{o}`");
            }
        }
        _ => panic!(
            "helm and chart-source disagree on {}: helm {helm:?}, ours {ours:?}",
            archive.display()
        ),
    }
    ours
}

fn helm_present() -> bool {
    let present = test_support::helm_bin().exists();
    if !present {
        eprintln!("SKIP: helm not found (run scripts/dev-setup)");
    }
    present
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A chart made by `helm create` + `helm package`, unpacked into `<dir>/<name>/`.
fn unpacked_chart(dir: &Path, name: &str, version: &str) -> PathBuf {
    let tgz = test_support::Chart::create(name, version)
        .package(&dir.join("pkg"))
        .unwrap();
    let unpack = dir.join("unpacked");
    std::fs::create_dir_all(&unpack).unwrap();
    run(std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&unpack));
    unpack.join(name)
}

/// A .tgz compressed by the real `gzip -1` (fast for the 100 MiB archives).
fn tgz_gzip(dir: &Path, name: &str, items: &[(String, Vec<u8>)]) -> PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in items {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let out = dir.join(name);
    let mut child = std::process::Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar_bytes).unwrap();
    assert!(child.wait().unwrap().success());
    out
}

#[test]
fn archive_forms_helm_accepts_are_accepted() {
    if !helm_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("helm-home");
    let chart = unpacked_chart(tmp.path(), "dotted", "0.1.0");
    let want = Ok(("dotted".to_string(), "0.1.0".to_string()));

    // `tar -C chart -czf x.tgz .`: entries `./Chart.yaml`, `./templates/…`.
    let dot = tmp.path().join("dot.tgz");
    run(std::process::Command::new("tar")
        .arg("-C")
        .arg(&chart)
        .arg("-czf")
        .arg(&dot)
        .arg("."));
    assert_eq!(same_verdict(&home, &dot), want);

    // `git archive` of a commit: a pax global header (the commit id) comes first.
    let git = |args: &[&str]| {
        run(std::process::Command::new("git")
            .args(args)
            .current_dir(&chart)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", tmp.path()));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "chart"]);
    let archived = tmp.path().join("git.tgz");
    let archived_arg = archived.to_str().unwrap().to_string();
    git(&[
        "archive",
        "--format=tar.gz",
        "--prefix=dotted/",
        "-o",
        &archived_arg,
        "HEAD",
    ]);
    let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archived).unwrap(),
    ));
    let first = entries.entries().unwrap().next().unwrap().unwrap();
    assert!(
        first.header().entry_type().is_pax_global_extensions(),
        "git archive writes a pax global header first"
    );
    assert_eq!(same_verdict(&home, &archived), want);

    // Packaged on Windows: `\` separators.
    let chart_yaml_bytes = chart_yaml("win", "2.0.0", "");
    let p = tgz(
        tmp.path(),
        "win.tgz",
        &[
            Item::File("win\\Chart.yaml", chart_yaml_bytes),
            Item::File("win\\values.yaml", b"a: 1\n".to_vec()),
            Item::File("win\\templates\\cm.yaml", b"kind: ConfigMap\n".to_vec()),
        ],
    );
    assert_eq!(
        same_verdict(&home, &p),
        Ok(("win".to_string(), "2.0.0".to_string()))
    );

    // Helm drops the first component whatever it is: two top-level directories, a leading
    // `/`, a `..` that stays inside the chart.
    let p = tgz(
        tmp.path(),
        "mixed.tgz",
        &[
            Item::File("a/Chart.yaml", chart_yaml("mixed", "1.0.0", "")),
            Item::File("b/values.yaml", b"a: 1\n".to_vec()),
            Item::File("/templates/x.yaml", b"kind: ConfigMap\n".to_vec()),
            Item::File("a/templates/../notes.txt", b"hi\n".to_vec()),
        ],
    );
    assert_eq!(
        same_verdict(&home, &p),
        Ok(("mixed".to_string(), "1.0.0".to_string()))
    );

    // More than 10,000 entries (helm has no entry limit).
    let mut items = vec![(
        "many/Chart.yaml".to_string(),
        chart_yaml("many", "1.0.0", ""),
    )];
    items.extend((0..12_000).map(|i| (format!("many/files/f{i}.txt"), b"x".to_vec())));
    let p = tgz_gzip(tmp.path(), "many.tgz", &items);
    assert_eq!(
        same_verdict(&home, &p),
        Ok(("many".to_string(), "1.0.0".to_string()))
    );

    // Over 20 MiB compressed: five files of random bytes, 5 MiB each.
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    let mut items = vec![("big/Chart.yaml".to_string(), chart_yaml("big", "1.0.0", ""))];
    for i in 0..5 {
        let mut data = vec![0u8; 5 << 20];
        std::io::Read::read_exact(&mut random, &mut data).unwrap();
        items.push((format!("big/files/r{i}.bin"), data));
    }
    let p = tgz_gzip(tmp.path(), "big.tgz", &items);
    assert!(std::fs::metadata(&p).unwrap().len() > 20 << 20);
    assert_eq!(
        same_verdict(&home, &p),
        Ok(("big".to_string(), "1.0.0".to_string()))
    );
}

#[test]
fn archive_paths_helm_refuses_are_refused_for_helms_reason() {
    if !helm_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("helm-home");
    let cases: &[(&str, &str)] = &[
        (
            "app/../../etc/evil",
            "chart illegally references parent directory",
        ),
        (
            "app/..hidden",
            "chart illegally references parent directory",
        ),
        (
            "README.md",
            "chart illegally contains content outside the base directory",
        ),
        ("app//etc/evil", "chart illegally contains absolute paths"),
        ("app/C:/evil", "chart contains illegally named files"),
        ("Chart.yaml/x", "chart yaml not in base directory"),
    ];
    for (i, (raw, reason)) in cases.iter().enumerate() {
        let mut items = base("app", "1.0.0");
        items.push(Item::File(raw, b"x: 1\n".to_vec()));
        let p = tgz(tmp.path(), &format!("bad{i}.tgz"), &items);
        let ours = same_verdict(&home, &p).unwrap_err();
        assert!(ours.contains(reason), "{raw}: {ours}");
        assert!(ours.contains(&format!("entry `{raw}`")), "{ours}");
    }
}

#[test]
fn size_boundaries_match_helm() {
    if !helm_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("helm-home");
    const MIB: usize = 1 << 20;
    let chart = chart_yaml("sized", "1.0.0", "");

    // One file: exactly 5 MiB passes, one byte more is refused.
    for (extra, accepted) in [(0usize, true), (1, false)] {
        let items = vec![
            ("sized/Chart.yaml".to_string(), chart.clone()),
            (
                "sized/files/one.bin".to_string(),
                vec![0u8; 5 * MIB + extra],
            ),
        ];
        let p = tgz_gzip(tmp.path(), &format!("file{extra}.tgz"), &items);
        let verdict = same_verdict(&home, &p);
        assert_eq!(verdict.is_ok(), accepted, "{verdict:?}");
        if !accepted {
            assert!(verdict.unwrap_err().contains("per-file limit"));
        }
    }

    // All files: 100 MiB - 1 byte passes; exactly 100 MiB, and one byte more, are refused.
    for (total, accepted) in [
        (100 * MIB - 1, true),
        (100 * MIB, false),
        (100 * MIB + 1, false),
    ] {
        let mut items = vec![("sized/Chart.yaml".to_string(), chart.clone())];
        let mut left = total - chart.len();
        let mut i = 0;
        while left > 0 {
            let n = left.min(5 * MIB);
            items.push((format!("sized/files/f{i}.bin"), vec![0u8; n]));
            left -= n;
            i += 1;
        }
        let p = tgz_gzip(tmp.path(), &format!("total{total}.tgz"), &items);
        let verdict = same_verdict(&home, &p);
        assert_eq!(verdict.is_ok(), accepted, "{total}: {verdict:?}");
        if !accepted {
            assert!(verdict.unwrap_err().contains("helm's limit of 104857600"));
        }
        std::fs::remove_file(&p).unwrap();
    }
}
