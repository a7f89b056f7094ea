//! Hostile YAML against the real components: a "billion laughs" Chart.yaml in a chart served
//! by a real docker-registry, an alias-bomb index.yaml served by a real nginx, and helm
//! itself as the oracle of how a values file reads (`{{ toJson .Values }}`).
//! The budget is asserted by input size (what the composer materialized), never by time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::http::{HttpLimits, HttpShared, HttpSource};
use chart_source::oci::OciSource;
use chart_source::spec::{HttpRepository, HttpSourceSpec, OciSourceSpec, TlsOptions};
use chart_source::yaml::{self, ErrorKind, Limits};
use chart_source::{ChartSource, ErrorCategory, OciReference, SourceAuth};
use serde_json::Value;
use test_support::{Chart, HttpRepo, HttpRepoOptions, Registry, RegistryMode};

fn have(tools: &[&Path]) -> bool {
    let helm = test_support::helm_bin();
    let ok = helm.exists() && tools.iter().all(|t| t.exists());
    if !ok {
        eprintln!("SKIPPED: needs helm and {tools:?}: run scripts/dev-setup");
    }
    ok
}

/// `levels` levels of lists, each holding `fan` aliases of the level below.
fn laughs(levels: usize, fan: usize) -> String {
    let mut s = String::from("l0: &l0 [lol]\n");
    for i in 1..=levels {
        let refs = vec![format!("*l{}", i - 1); fan].join(",");
        s.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    s
}

/// The composer's work on `text` stays within the budget for its size.
fn assert_bounded(text: &str) {
    let limits = Limits::default();
    let (result, stats) = yaml::from_str_value_with(text, limits);
    let err = result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ExcessiveAliasing, "{err}");
    let n = text.len() as u64;
    let budget = limits.alias_allowance + limits.alias_ratio * n;
    assert!(
        stats.materialized <= 2 * budget + 4 * yaml::NODE_COST * n,
        "{stats:?} for {n} bytes"
    );
}

/// A chart archive `NAME-1.0.0.tgz` holding `NAME/Chart.yaml` with `chart_yaml`, written by
/// hand: helm refuses to package or push such a chart itself.
fn tgz(name: &str, chart_yaml: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(chart_yaml.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        format!("{name}/Chart.yaml"),
        chart_yaml.as_bytes(),
    )
    .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn chart_yaml_bomb_in_a_registry_is_refused_as_integrity() {
    if !have(&[Path::new("/usr/bin/docker-registry")]) {
        return;
    }
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    // 10 levels of ten: 10^10 nodes once expanded, in a few hundred bytes.
    let chart_yaml = format!(
        "apiVersion: v2\nname: bomb\nversion: 1.0.0\n{}",
        laughs(10, 10)
    );
    assert!(chart_yaml.len() < 600, "{}", chart_yaml.len());
    assert_bounded(&chart_yaml);
    let archive = tgz("bomb", &chart_yaml);
    let reference = registry.oci_ref("team/charts/bomb", "1.0.0");
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let layer = oci_client::client::ImageLayer::new(
        archive,
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip".to_string(),
        None,
    );
    let config = oci_client::client::Config::new(
        br#"{"name":"bomb","version":"1.0.0","apiVersion":"v2"}"#.to_vec(),
        "application/vnd.cncf.helm.config.v1+json".to_string(),
        None,
    );
    let target: oci_client::Reference = reference.trim_start_matches("oci://").parse().unwrap();
    client
        .push(
            &target,
            &[layer],
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            None,
        )
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChartCache::open(CacheConfig::new(work.path().join("cache"))).unwrap());
    let spec = OciSourceSpec {
        reference: OciReference::parse(&reference).unwrap(),
        authentication: None,
        plain_http: true,
        tls: TlsOptions::default(),
        verify: None,
    };
    let source = OciSource::new(spec, SourceAuth::default(), cache).unwrap();
    let err = source.locate().await.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    let text = err.to_string();
    assert!(text.contains("bomb/Chart.yaml"), "names the file: {text}");
    assert!(text.contains("excessive aliasing"), "{text}");
}

fn http_spec(url: &str, chart: &str, version: &str) -> HttpSourceSpec {
    HttpSourceSpec {
        repository: HttpRepository {
            name: None,
            url: url.parse().unwrap(),
        },
        chart: chart.to_string(),
        version: version.to_string(),
        authentication: None,
        tls: TlsOptions::default(),
        pass_credentials: false,
    }
}

async fn http_locate(repo: &HttpRepo, chart: &str) -> chart_source::Result<String> {
    let work = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChartCache::open(CacheConfig::new(work.path().join("cache"))).unwrap());
    let shared = Arc::new(HttpShared::new(HttpLimits::default()));
    let source = HttpSource::new(
        http_spec(&repo.url(), chart, ""),
        SourceAuth::default(),
        cache,
        shared,
    )
    .unwrap();
    source.locate().await.map(|l| l.version)
}

#[tokio::test]
async fn index_bomb_through_nginx_is_refused_as_integrity_naming_the_url() {
    if !have(&[Path::new("/usr/sbin/nginx")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = HttpRepo::start(dir.path(), HttpRepoOptions::default()).unwrap();
    // A 100 KB string aliased 30,000 times: 3 GB once expanded, 220 KB on the wire.
    let mut index = format!(
        "apiVersion: v1\nx: &big \"{}\"\nentries:\n  a:\n  - version: 1.0.0\n    urls: [a.tgz]\n    keywords: [",
        "x".repeat(100_000)
    );
    index.push_str(&vec!["*big"; 30_000].join(","));
    index.push_str("]\n");
    assert!(index.len() < 300_000);
    assert_bounded(&index);
    std::fs::write(repo.dir().join("index.yaml"), &index).unwrap();
    let err = http_locate(&repo, "a").await.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    let text = err.to_string();
    assert!(text.contains("excessive aliasing"), "{text}");
    assert!(text.contains(&repo.url()), "names the repository: {text}");
}

/// `helm pull --repo URL CHART` with private homes; helm's stderr when it fails.
fn helm_pull(repo: &HttpRepo, chart: &str) -> Result<(), String> {
    let home = tempfile::tempdir().unwrap();
    let out = test_support::helm_command(home.path())
        .args(["pull", "--repo", &repo.url(), chart, "-d"])
        .arg(home.path())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn an_index_with_ordinary_anchors_and_merge_keys_works_like_helm() {
    if !have(&[Path::new("/usr/sbin/nginx")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tgz = Chart::create("anchored", "1.2.0")
        .package(dir.path())
        .unwrap();
    let file = tgz.file_name().unwrap().to_str().unwrap().to_string();
    assert!(dir.path().join(&file).is_file());
    let repo = HttpRepo::start(dir.path(), HttpRepoOptions::default()).unwrap();
    let index = format!(
        "apiVersion: v1\nentries:\n  mirror:\n  - &first\n    apiVersion: v2\n    name: anchored\n    urls: [{file}]\n    version: 1.2.0\n  anchored:\n  - *first\n  - <<: {{apiVersion: v2, name: anchored}}\n    urls: [{file}]\n    version: 1.1.0\n"
    );
    std::fs::write(repo.dir().join("index.yaml"), &index).unwrap();
    assert_eq!(http_locate(&repo, "anchored").await.unwrap(), "1.2.0");
    // helm reads the same index the same way.
    helm_pull(&repo, "anchored").unwrap();
    // helm reads index.yaml strictly: a key set twice (here by the merge, then again) is
    // an error for helm, and for us.
    let strict = format!("{index}  - <<: *first\n    version: 1.0.0\n");
    std::fs::write(repo.dir().join("index.yaml"), &strict).unwrap();
    let err = http_locate(&repo, "anchored").await.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    assert!(err.to_string().contains("already set in map"), "{err}");
    let helm = helm_pull(&repo, "anchored").unwrap_err();
    assert!(helm.contains("already set in map"), "{helm}");
}

/// What helm makes of a values file: `{{ toJson .Values }}` rendered by `helm template`.
fn helm_reads(values: &str) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("oracle");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: oracle\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("templates/out.yaml"), "{{ toJson .Values }}\n").unwrap();
    std::fs::write(dir.path().join("values.yaml"), values).unwrap();
    let out = test_support::helm_command(&dir.path().join("home"))
        .arg("template")
        .arg("x")
        .arg(&chart)
        .arg("-f")
        .arg(dir.path().join("values.yaml"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let json = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {text}"));
    Ok(serde_json::from_str(json).unwrap())
}

/// Numbers compared as helm holds them (float64), other values as they are.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn values_read_exactly_as_helm_reads_them() {
    if !have(&[]) {
        return;
    }
    let cases: &[&str] = &[
        "a: yes\nb: Yes\nc: YES\nd: y\ne: Y\nf: on\ng: On\nh: ON\ni: true\nj: True\nk: TRUE\n",
        "a: no\nb: No\nc: n\nd: N\ne: off\nf: OFF\ng: false\nh: False\ni: 'yes'\nj: \"on\"\nk: yES\n",
        "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nUll\n",
        "a: 0755\nb: 0x1F\nc: 0b101\nd: 0o17\ne: 1_000\nf: -0x1F\ng: +5\nh: 08\ni: 0755.5\nj: '0755'\nk: 0x_1F\n",
        "a: 1.10\nb: .5\nc: -.5\nd: 1e3\ne: 1E-2\nf: 1.\ng: 1e400\nh: 1.2.3\ni: 12:30\nj: 2001-12-14\nk: 2001-12-14T21:59:43.10-05:00\n",
        "base: &base {x: 1, z: 2}\nm1:\n  <<: *base\n  z: 3\nm2:\n  z: 3\n  <<: *base\nm3:\n  <<: [{x: 1}, {x: 2, q: 3}]\nm4:\n  '<<': {x: 1}\n",
        "1: int\n1.5: flt\ntrue: bool\nno: off\n3.14159265: pi\n1234567.0: big\n0x10: hex\ny: why\n",
        "dup: 1\ndup: 2\nmap: {a: 1, a: 2}\n",
        "a: !!str 0755\nb: !!float 1\nc: !!binary aGk=\nd: !custom 12\ne: |\n  yes\nf: >-\n  on\n",
        "list: &l [1, two, 3.0]\ncopy: *l\nnested: {a: {b: {c: [*l]}}}\n",
    ];
    for values in cases {
        let ours = yaml::from_str_value(values).unwrap_or_else(|e| panic!("{values:?}: {e}"));
        let helm = helm_reads(values).unwrap_or_else(|e| panic!("helm on {values:?}: {e}"));
        assert_eq!(normalized(&ours), normalized(&helm), "{values:?}");
    }
    // What helm refuses, we refuse.
    for values in [
        "a: .inf\n",
        "? [1]\n: a\n",
        "a:\n  <<: 1\n",
        "# \u{1}\na: 1\n",
    ] {
        assert!(helm_reads(values).is_err(), "helm accepted {values:?}");
        assert!(yaml::from_str_value(values).is_err(), "{values:?}");
    }
    let bomb = laughs(9, 10);
    let helm = helm_reads(&bomb).unwrap_err();
    assert!(helm.contains("excessive aliasing"), "{helm}");
    assert_bounded(&bomb);
}
