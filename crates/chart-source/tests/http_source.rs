//! The HTTP chart source against a real nginx serving charts packaged and indexed by the
//! real helm (test-support's `HttpRepo`). No mocked server, no hand-written responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::http::{HttpLimits, HttpShared, HttpSource};
use chart_source::spec::{HttpRepository, HttpSourceSpec, TlsOptions};
use chart_source::{ChartSource, Credentials, ErrorCategory, LocatedChart, SourceAuth};
use test_support::{Chart, HttpAccessEntry, HttpRepo, HttpRepoOptions};

const VERSIONS: &[&str] = &["0.9.0", "1.0.0", "1.2.0", "1.2.5", "1.10.0", "2.0.0-rc.1"];

/// The real components these tests need; a test without them is skipped, saying why.
fn available() -> bool {
    let helm = test_support::helm_bin();
    let ok = std::process::Command::new(&helm)
        .arg("version")
        .output()
        .is_ok()
        && Path::new("/usr/sbin/nginx").exists();
    if !ok {
        eprintln!(
            "SKIPPED: needs helm ({}) and nginx (/usr/sbin/nginx): run scripts/dev-setup",
            helm.display()
        );
    }
    ok
}

/// Charts packaged once per test binary: `mychart` in several versions, `other` 3.1.0.
fn charts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Built once and reused by later runs (the marker says it is complete).
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("http-source-charts");
        if dir.join(".complete").is_file() {
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
        for v in VERSIONS {
            Chart::create("mychart", v).package(&dir).unwrap();
        }
        Chart::create("other", "3.1.0").package(&dir).unwrap();
        std::fs::write(dir.join(".complete"), "").unwrap();
        dir
    })
}

/// A directory with only some of the packaged charts.
fn subset(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::copy(charts().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn start(options: HttpRepoOptions) -> HttpRepo {
    HttpRepo::start(charts(), options).expect("nginx chart repository")
}

fn spec(url: &str, chart: &str, version: &str) -> HttpSourceSpec {
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

struct Env {
    _dir: tempfile::TempDir,
    cache: Arc<ChartCache>,
    shared: Arc<HttpShared>,
}

fn env_with(limits: HttpLimits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChartCache::open(CacheConfig::new(dir.path().join("cache"))).unwrap());
    Env {
        _dir: dir,
        cache,
        shared: Arc::new(HttpShared::new(limits)),
    }
}

fn env() -> Env {
    env_with(HttpLimits::default())
}

impl Env {
    fn source(&self, spec: HttpSourceSpec, auth: SourceAuth) -> HttpSource {
        HttpSource::new(spec, auth, self.cache.clone(), self.shared.clone()).unwrap()
    }

    async fn locate(&self, spec: HttpSourceSpec) -> chart_source::Result<LocatedChart> {
        self.source(spec, SourceAuth::default()).locate().await
    }
}

fn basic(repo: &HttpRepo) -> SourceAuth {
    SourceAuth {
        credentials: Some(Credentials::basic(
            repo.username().unwrap(),
            repo.password().unwrap(),
        )),
        ca_pem: None,
        cosign_keys: None,
    }
}

fn gets(log: &[HttpAccessEntry], suffix: &str) -> Vec<HttpAccessEntry> {
    log.iter()
        .filter(|e| e.method == "GET" && e.path.ends_with(suffix))
        .cloned()
        .collect()
}

#[tokio::test]
async fn exact_version_is_downloaded_verified_and_then_served_from_cache() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env();
    let first = env
        .locate(spec(&repo.url(), "mychart", "1.2.0"))
        .await
        .unwrap();
    assert_eq!(
        (first.name.as_str(), first.version.as_str()),
        ("mychart", "1.2.0")
    );
    assert!(!first.cache_hit);
    let bytes = std::fs::read(&first.path).unwrap();
    assert_eq!(chart_source::Digest::of(&bytes), first.digest);
    assert_eq!(
        bytes,
        std::fs::read(charts().join("mychart-1.2.0.tgz")).unwrap()
    );

    let second = env
        .locate(spec(&repo.url(), "mychart", "1.2.0"))
        .await
        .unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.digest, first.digest);
    let stats = env.shared.stats();
    assert_eq!(stats.index_fetches, 1, "{stats:?}");
    assert_eq!(stats.index_cache_hits, 1, "{stats:?}");
    assert_eq!(stats.chart_downloads, 1, "{stats:?}");
    let log = repo.access_log();
    assert_eq!(gets(&log, "/index.yaml").len(), 1, "{log:?}");
    assert_eq!(gets(&log, ".tgz").len(), 1, "{log:?}");
}

#[tokio::test]
async fn constraint_forms_pick_the_highest_match() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env();
    for (constraint, want) in [
        ("=1.0.0", "1.0.0"),
        ("v1.0.0", "1.0.0"),
        ("^1.0.0", "1.10.0"),
        ("^1.2", "1.10.0"),
        ("~1.2.0", "1.2.5"),
        ("~>1.2", "1.2.5"),
        ("1.2", "1.2.5"),
        ("1.2.x", "1.2.5"),
        ("1.x", "1.10.0"),
        ("*", "1.10.0"),
        ("", "1.10.0"),
        (">=1.0.0, <1.5.0", "1.2.5"),
        (">1.0.0 <1.2.5", "1.2.0"),
        ("<1.0.0", "0.9.0"),
        ("<=1.2.0", "1.2.0"),
        (">=1.0.0 !=1.10.0 <2", "1.2.5"),
        ("1.0.0 - 1.2.0", "1.2.0"),
        ("1.0 - 1.2", "1.2.5"),
        ("^0.9 || ^5", "0.9.0"),
        ("^5 || ~1.2.0", "1.2.5"),
        ("^0", "0.9.0"),
        // Prereleases only when the constraint asks for them.
        (">=1.0.0", "1.10.0"),
        (">=1.0.0-0", "2.0.0-rc.1"),
        ("^2.0.0-0", "2.0.0-rc.1"),
        ("2.0.0-rc.1", "2.0.0-rc.1"),
    ] {
        let located = env
            .locate(spec(&repo.url(), "mychart", constraint))
            .await
            .unwrap_or_else(|e| panic!("{constraint:?}: {e}"));
        assert_eq!(located.version, want, "constraint {constraint:?}");
    }
    // One index fetch for all of them (fresh in memory).
    assert_eq!(env.shared.stats().index_fetches, 1);
}

#[tokio::test]
async fn prerelease_only_repository_needs_a_prerelease_constraint() {
    if !available() {
        return;
    }
    let files = subset(&["mychart-2.0.0-rc.1.tgz"]);
    let repo = HttpRepo::start(files.path(), HttpRepoOptions::default()).unwrap();
    let env = env();
    let err = env
        .locate(spec(&repo.url(), "mychart", "^2"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::NotFound, "{err}");
    assert!(
        err.to_string().contains("2.0.0-rc.1"),
        "nearest versions listed: {err}"
    );
    let ok = env
        .locate(spec(&repo.url(), "mychart", "^2.0.0-0"))
        .await
        .unwrap();
    assert_eq!(ok.version, "2.0.0-rc.1");
}

#[tokio::test]
async fn relative_urls_resolve_under_a_sub_path_with_or_without_trailing_slash() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions {
        sub_path: Some("charts/stable".into()),
        ..Default::default()
    });
    let with_slash = repo.url();
    assert!(with_slash.ends_with("/charts/stable/"));
    let without_slash = with_slash.trim_end_matches('/').to_string();
    let env = env();
    for url in [with_slash, without_slash] {
        let located = env
            .locate(spec(&url, "other", "3.1.0"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(located.version, "3.1.0");
    }
    let log = repo.access_log();
    assert!(
        gets(&log, "/charts/stable/other-3.1.0.tgz")
            .iter()
            .all(|e| e.status == 200),
        "{log:?}"
    );
    assert!(
        !gets(&log, "/charts/stable/index.yaml").is_empty(),
        "{log:?}"
    );
}

#[tokio::test]
async fn absolute_chart_urls_are_followed() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions {
        index_url: Some("{origin}/".into()),
        ..Default::default()
    });
    let index = std::fs::read_to_string(repo.dir().join("index.yaml")).unwrap();
    assert!(
        index.contains(&format!("{}/mychart-1.0.0.tgz", repo.origin())),
        "{index}"
    );
    let env = env();
    let located = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(located.version, "1.0.0");
}

#[tokio::test]
async fn digest_mismatch_is_an_integrity_error_and_nothing_is_cached() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let index_path = repo.dir().join("index.yaml");
    let index = std::fs::read_to_string(&index_path).unwrap();
    let real =
        chart_source::Digest::of(&std::fs::read(charts().join("mychart-1.0.0.tgz")).unwrap());
    assert!(
        index.contains(&real.hex()),
        "helm writes the digest into the index"
    );
    let forged = chart_source::Digest::of(b"something else");
    std::fs::write(&index_path, index.replace(&real.hex(), &forged.hex())).unwrap();

    let env = env();
    let err = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    assert!(err.to_string().contains(&forged.hex()), "{err}");
    assert!(
        env.cache.lookup(&real).is_none(),
        "a rejected download is not a cache entry"
    );
}

#[tokio::test]
async fn basic_auth_is_required_and_refused_credentials_are_auth_errors() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions {
        basic_auth: true,
        ..Default::default()
    });
    let env = env();
    let err = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Auth, "{err}");

    let wrong = SourceAuth {
        credentials: Some(Credentials::basic(
            repo.username().unwrap(),
            "wrong-password-xyz",
        )),
        ca_pem: None,
        cosign_keys: None,
    };
    let err = env
        .source(spec(&repo.url(), "mychart", "1.0.0"), wrong)
        .locate()
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Auth, "{err}");
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("wrong-password-xyz"),
        "secret leaked: {text}"
    );

    let ok = env
        .source(spec(&repo.url(), "mychart", "1.0.0"), basic(&repo))
        .locate()
        .await
        .unwrap();
    assert_eq!(ok.version, "1.0.0");
}

#[tokio::test]
async fn missing_chart_or_version_is_not_found_with_nearest_versions() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env();
    let err = env
        .locate(spec(&repo.url(), "nochart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::NotFound, "{err}");
    assert!(err.to_string().contains("nochart"), "{err}");

    let err = env
        .locate(spec(&repo.url(), "mychart", "1.3.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::NotFound, "{err}");
    let text = err.to_string();
    assert!(text.contains("1.2.5") && text.contains("1.10.0"), "{text}");

    let err = env
        .locate(spec(&repo.url(), "mychart", "^7"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::NotFound, "{err}");

    let err = env
        .locate(spec(
            &format!("{}nothing-here/", repo.url()),
            "mychart",
            "1.0.0",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::NotFound, "{err}");

    let err = env
        .locate(spec(&repo.url(), "mychart", ">>1"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Config, "{err}");
}

#[tokio::test]
async fn unchanged_index_is_revalidated_with_304_without_reparse_or_redownload() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env_with(HttpLimits {
        index_ttl: Duration::ZERO,
        ..Default::default()
    });
    let first = env
        .locate(spec(&repo.url(), "mychart", "^1"))
        .await
        .unwrap();
    let second = env
        .locate(spec(&repo.url(), "mychart", "^1"))
        .await
        .unwrap();
    assert!(!first.cache_hit);
    assert!(second.cache_hit);
    let stats = env.shared.stats();
    assert_eq!(stats.index_fetches, 2, "{stats:?}");
    assert_eq!(stats.index_not_modified, 1, "{stats:?}");
    assert_eq!(stats.index_parses, 1, "{stats:?}");
    assert_eq!(stats.chart_downloads, 1, "{stats:?}");
    let log = repo.access_log();
    let index_gets: Vec<u16> = gets(&log, "/index.yaml").iter().map(|e| e.status).collect();
    assert_eq!(index_gets, [200, 304], "{log:?}");
    assert_eq!(gets(&log, ".tgz").len(), 1, "{log:?}");

    // A changed index is fetched and parsed again; the new version is picked.
    std::thread::sleep(Duration::from_millis(1100)); // a new Last-Modified second
    Chart::create("mychart", "1.11.0")
        .package(repo.dir())
        .unwrap();
    repo.reindex().unwrap();
    let third = env
        .locate(spec(&repo.url(), "mychart", "^1"))
        .await
        .unwrap();
    assert_eq!(third.version, "1.11.0");
    assert_eq!(env.shared.stats().index_parses, 2);
}

#[tokio::test]
async fn ttl_expiry_triggers_a_revalidation() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env_with(HttpLimits {
        index_ttl: Duration::from_millis(700),
        ..Default::default()
    });
    env.locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap();
    env.locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(gets(&repo.access_log(), "/index.yaml").len(), 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    env.locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap();
    let index_gets: Vec<u16> = gets(&repo.access_log(), "/index.yaml")
        .iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(index_gets, [200, 304]);
    let stats = env.shared.stats();
    assert_eq!(
        (stats.index_cache_hits, stats.index_not_modified),
        (1, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn malformed_index_is_an_integrity_error_with_its_line() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    std::fs::write(
        repo.dir().join("index.yaml"),
        "apiVersion: v1\nentries:\n  mychart:\n  - version: 1.0.0\n    urls: [\"x.tgz\"\n  broken: [\n",
    )
    .unwrap();
    let env = env();
    let err = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    let text = err.to_string();
    assert!(text.contains("line "), "{text}");
    assert!(text.contains(&repo.url()), "names the repository: {text}");
}

#[tokio::test]
async fn oversized_index_is_refused() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env_with(HttpLimits {
        max_index_bytes: 512,
        ..Default::default()
    });
    let err = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    assert!(err.to_string().contains("larger than the limit"), "{err}");
    assert_eq!(env.shared.stats().index_parses, 0);
}

#[tokio::test]
async fn slow_response_times_out_as_a_network_error() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions {
        sub_path: Some("slow".into()),
        extra_locations: Some("location /slow/ { limit_rate 64; }".into()),
        ..Default::default()
    });
    let env = env_with(HttpLimits {
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let err = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Network, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn refused_connection_is_a_network_error() {
    if !available() {
        return;
    }
    let mut repo = start(HttpRepoOptions::default());
    let url = repo.url();
    repo.stop();
    let err = env()
        .locate(spec(&url, "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Network, "{err}");
}

#[tokio::test]
async fn tls_with_the_repository_ca_and_without_it() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions {
        tls: true,
        ..Default::default()
    });
    let env = env();
    let err = env
        .locate(spec(&repo.url(), "mychart", "1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Tls, "{err}");

    let with_ca = SourceAuth {
        credentials: None,
        ca_pem: repo.ca_pem(),
        cosign_keys: None,
    };
    let ok = env
        .source(spec(&repo.url(), "mychart", "1.0.0"), with_ca)
        .locate()
        .await
        .unwrap();
    assert_eq!(ok.version, "1.0.0");

    let mut insecure = spec(&repo.url(), "mychart", "1.2.0");
    insecure.tls.insecure_skip_tls_verify = true;
    let ok = env.locate(insecure).await.unwrap();
    assert_eq!(ok.version, "1.2.0");
}

/// Repository A (basic auth, 127.0.0.1) lists charts served by B (no auth, 127.0.0.2).
async fn cross_host(
    pass_credentials: bool,
) -> (HttpRepo, HttpRepo, chart_source::Result<LocatedChart>) {
    let b = start(HttpRepoOptions {
        bind_ip: Some(Ipv4Addr::new(127, 0, 0, 2)),
        ..Default::default()
    });
    let a = start(HttpRepoOptions {
        basic_auth: true,
        ..Default::default()
    });
    a.reindex_with_url(Some(b.url().trim_end_matches('/')))
        .unwrap();
    let env = env();
    let mut s = spec(&a.url(), "mychart", "1.0.0");
    s.pass_credentials = pass_credentials;
    let result = env.source(s, basic(&a)).locate().await;
    (a, b, result)
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_host() {
    if !available() {
        return;
    }
    let (a, b, result) = cross_host(false).await;
    assert_eq!(result.unwrap().version, "1.0.0");
    let a_log = a.access_log();
    assert!(
        gets(&a_log, "/index.yaml")
            .iter()
            .all(|e| e.had_authorization && e.status == 200),
        "{a_log:?}"
    );
    let b_log = b.access_log();
    let b_gets = gets(&b_log, "/mychart-1.0.0.tgz");
    assert_eq!(b_gets.len(), 1, "{b_log:?}");
    assert!(
        !b_gets[0].had_authorization,
        "credentials leaked to the other host: {b_log:?}"
    );
}

#[tokio::test]
async fn pass_credentials_sends_them_to_the_chart_host() {
    if !available() {
        return;
    }
    let (_a, b, result) = cross_host(true).await;
    assert_eq!(result.unwrap().version, "1.0.0");
    let b_log = b.access_log();
    let b_gets = gets(&b_log, "/mychart-1.0.0.tgz");
    assert_eq!(b_gets.len(), 1, "{b_log:?}");
    assert!(b_gets[0].had_authorization, "{b_log:?}");
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_host() {
    if !available() {
        return;
    }
    let b = start(HttpRepoOptions {
        bind_ip: Some(Ipv4Addr::new(127, 0, 0, 2)),
        ..Default::default()
    });
    let a = start(HttpRepoOptions {
        basic_auth: true,
        extra_locations: Some(format!(
            "location /moved/ {{ rewrite ^/moved/(.*)$ {}$1 redirect; }}",
            b.url()
        )),
        ..Default::default()
    });
    // A's index points at A's own /moved/ path, which redirects to B.
    a.reindex_with_url(Some(&format!("{}/moved", a.origin())))
        .unwrap();
    let env = env();
    for pass_credentials in [false, true] {
        let mut s = spec(
            &a.url(),
            "mychart",
            if pass_credentials { "1.2.0" } else { "1.0.0" },
        );
        s.pass_credentials = pass_credentials;
        let located = env.source(s, basic(&a)).locate().await.unwrap();
        assert!(!located.cache_hit);
    }
    let a_log = a.access_log();
    let moved = gets(&a_log, ".tgz");
    assert_eq!(moved.len(), 2, "{a_log:?}");
    assert!(
        moved.iter().all(|e| e.status == 302 && e.had_authorization),
        "{a_log:?}"
    );
    let b_log = b.access_log();
    assert_eq!(gets(&b_log, ".tgz").len(), 2, "{b_log:?}");
    assert!(
        b_log.iter().all(|e| !e.had_authorization),
        "credentials followed a redirect: {b_log:?}"
    );
}

#[tokio::test]
async fn concurrent_locates_share_one_index_fetch_and_one_download() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions::default());
    let env = env();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let source = env.source(spec(&repo.url(), "mychart", "^1"), SourceAuth::default());
        tasks.push(tokio::spawn(async move { source.locate().await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().version, "1.10.0");
    }
    let stats = env.shared.stats();
    assert_eq!(stats.index_fetches, 1, "{stats:?}");
    assert_eq!(stats.chart_downloads, 1, "{stats:?}");
    let log = repo.access_log();
    assert_eq!(gets(&log, "/index.yaml").len(), 1, "{log:?}");
    assert_eq!(gets(&log, ".tgz").len(), 1, "{log:?}");
}

#[tokio::test]
async fn index_cache_is_bounded() {
    if !available() {
        return;
    }
    let r1 = start(HttpRepoOptions::default());
    let r2 = start(HttpRepoOptions::default());
    let env = env_with(HttpLimits {
        max_cached_indexes: 1,
        ..Default::default()
    });
    env.locate(spec(&r1.url(), "other", "3.1.0")).await.unwrap();
    env.locate(spec(&r2.url(), "other", "3.1.0")).await.unwrap();
    env.locate(spec(&r1.url(), "other", "3.1.0")).await.unwrap();
    assert_eq!(env.shared.cached_indexes(), 1);
    let stats = env.shared.stats();
    assert_eq!(
        (stats.index_fetches, stats.index_evictions),
        (3, 2),
        "{stats:?}"
    );
}

#[tokio::test]
async fn same_host_redirects_keep_the_credentials() {
    if !available() {
        return;
    }
    let repo = start(HttpRepoOptions {
        basic_auth: true,
        sub_path: Some("charts".into()),
        extra_locations: Some("location /old/ { rewrite ^/old/(.*)$ /charts/$1 redirect; }".into()),
        ..Default::default()
    });
    let env = env();
    let old_url = format!("{}/old/", repo.origin());
    let located = env
        .source(spec(&old_url, "mychart", "~1.2"), basic(&repo))
        .locate()
        .await
        .unwrap();
    assert_eq!(located.version, "1.2.5");
    let log = repo.access_log();
    let redirected: Vec<_> = log.iter().filter(|e| e.path.starts_with("/old/")).collect();
    assert!(
        redirected.len() == 2 && redirected.iter().all(|e| e.status == 302),
        "{log:?}"
    );
    let served: Vec<_> = log
        .iter()
        .filter(|e| e.path.starts_with("/charts/"))
        .collect();
    assert!(
        served.len() == 2
            && served
                .iter()
                .all(|e| e.status == 200 && e.had_authorization),
        "{log:?}"
    );
}
