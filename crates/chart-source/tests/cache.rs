//! The chart cache with the OCI source, against the real registry: no re-download, single
//! flight, offline digest-pinned locates, crash safety, size bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::oci::OciSource;
use chart_source::spec::{OciSourceSpec, TlsOptions};
use chart_source::{ChartSource, Digest, ErrorCategory, LocatedChart, OciReference, SourceAuth};
use test_support::{Chart, Registry, RegistryMode};

fn available() -> bool {
    let ok = test_support::helm_bin().exists() && Path::new("/usr/bin/docker-registry").exists();
    if !ok {
        eprintln!("SKIP: helm or docker-registry missing (run scripts/dev-setup)");
    }
    ok
}

/// An anonymous registry with `charts/<name>:<version>` pushed; returns it and the manifest digests.
fn registry_with(work: &Path, charts: &[(&str, &str)]) -> (Registry, Vec<String>) {
    let registry = Registry::start(RegistryMode::Anonymous).unwrap();
    let mut digests = Vec::new();
    for (name, version) in charts {
        let tgz = Chart::create(name, version)
            .package(&work.join("pkg"))
            .unwrap();
        digests.push(registry.push(&tgz, "charts").unwrap());
    }
    (registry, digests)
}

fn open(dir: &Path, max_bytes: u64) -> Arc<ChartCache> {
    Arc::new(
        ChartCache::open(CacheConfig {
            dir: dir.to_path_buf(),
            max_bytes,
        })
        .unwrap(),
    )
}

async fn locate(cache: &Arc<ChartCache>, reference: &str) -> chart_source::Result<LocatedChart> {
    let spec = OciSourceSpec {
        reference: OciReference::parse(reference).unwrap(),
        authentication: None,
        plain_http: true,
        tls: TlsOptions::default(),
        verify: None,
    };
    OciSource::new(spec, SourceAuth::default(), cache.clone())?
        .locate()
        .await
}

#[tokio::test]
async fn second_locate_downloads_no_blob() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (registry, _) = registry_with(work.path(), &[("app", "1.0.0")]);
    let cache = open(&work.path().join("cache"), 1 << 30);
    let reference = registry.oci_ref("charts/app", "1.0.0");
    let first = locate(&cache, &reference).await.unwrap();
    assert!(!first.cache_hit);
    let log_before = registry.access_log().len();
    let second = locate(&cache, &reference).await.unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.digest, first.digest);
    assert_eq!(registry.blob_gets(), 1);
    // A tag costs exactly one manifest request (HEAD) once the chart is cached.
    let new: Vec<_> = registry.access_log().into_iter().skip(log_before).collect();
    let manifest_requests: Vec<_> = new
        .iter()
        .filter(|e| e.path.contains("/manifests/"))
        .collect();
    assert_eq!(manifest_requests.len(), 1, "{new:?}");
    assert_eq!(manifest_requests[0].method, "HEAD");

    // A new cache object on the same directory (a restarted process) also hits.
    let reopened = open(&work.path().join("cache"), 1 << 30);
    assert!(locate(&reopened, &reference).await.unwrap().cache_hit);
    assert_eq!(registry.blob_gets(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_locates_download_once() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (registry, _) = registry_with(work.path(), &[("app", "1.0.0")]);
    let cache = open(&work.path().join("cache"), 1 << 30);
    let reference = registry.oci_ref("charts/app", "1.0.0");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let cache = cache.clone();
            let reference = reference.clone();
            tokio::spawn(async move { locate(&cache, &reference).await })
        })
        .collect();
    let mut downloaded = 0;
    let mut digests = std::collections::HashSet::new();
    for t in tasks {
        let located = t.await.unwrap().unwrap();
        digests.insert(located.digest);
        downloaded += usize::from(!located.cache_hit);
    }
    assert_eq!(digests.len(), 1);
    assert_eq!(downloaded, 1);
    assert_eq!(registry.blob_gets(), 1, "one blob download for 32 locates");
    assert_eq!(cache.stats().misses, 1);
}

#[tokio::test]
async fn digest_pinned_cached_chart_needs_no_registry() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (mut registry, digests) = registry_with(work.path(), &[("app", "1.0.0")]);
    let cache = open(&work.path().join("cache"), 1 << 30);
    let pinned = format!("{}@{}", registry.oci_base("charts/app"), digests[0]);
    let tagged = registry.oci_ref("charts/app", "1.0.0");
    let first = locate(&cache, &pinned).await.unwrap();
    let requests = registry.access_log().len();
    let again = locate(&cache, &pinned).await.unwrap();
    assert!(again.cache_hit);
    assert_eq!(registry.access_log().len(), requests, "no request at all");

    registry.stop();
    let offline = locate(&cache, &pinned).await.unwrap();
    assert!(offline.cache_hit);
    assert_eq!(offline.digest, first.digest);
    // A tag must be resolved: with the registry gone, that is a network error.
    let err = locate(&cache, &tagged).await.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Network, "{err}");
}

/// The child half of `partial_download_of_a_killed_process_is_never_served`: writes half a
/// chart into the cache's temp file, then hangs until killed.
#[test]
#[ignore = "run as a child process by partial_download_of_a_killed_process_is_never_served"]
fn child_writes_half_a_download_then_hangs() {
    let (Ok(dir), Ok(bytes)) = (
        std::env::var("CACHE_TEST_DIR"),
        std::env::var("CACHE_TEST_BYTES"),
    ) else {
        return;
    };
    let cache = ChartCache::open(CacheConfig::new(dir)).unwrap();
    let bytes = std::fs::read(bytes).unwrap();
    let mut writer = cache.writer("child", 1 << 30).unwrap();
    writer.write(&bytes[..bytes.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[tokio::test]
async fn partial_download_of_a_killed_process_is_never_served() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (registry, _) = registry_with(work.path(), &[("app", "1.0.0")]);
    let reference = registry.oci_ref("charts/app", "1.0.0");
    // Learn the chart's bytes through a first cache.
    let full = locate(&open(&work.path().join("first"), 1 << 30), &reference)
        .await
        .unwrap();

    // A real process starts the download into a second cache and is killed midway.
    let dir = work.path().join("cache");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_half_a_download_then_hangs",
            "--ignored",
            "--nocapture",
        ])
        .env("CACHE_TEST_DIR", &dir)
        .env("CACHE_TEST_BYTES", &full.path)
        .spawn()
        .unwrap();
    let temp = wait_for_temp(&dir.join("sha256"), Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    let temp = temp.expect("the child wrote a temp file");
    assert!(temp.exists());

    // Another process already running sees no entry.
    let running = ChartCache::open(CacheConfig::new(&dir));
    drop(running);
    let cache = open(&dir, 1 << 30);
    assert!(!temp.exists(), "the abandoned temp file is removed at open");
    assert!(cache.lookup(&full.digest).is_none());
    let blobs = registry.blob_gets();
    let located = locate(&cache, &reference).await.unwrap();
    assert!(!located.cache_hit);
    assert_eq!(registry.blob_gets(), blobs + 1);
    assert_eq!(
        Digest::of(&std::fs::read(&located.path).unwrap()),
        full.digest
    );
}

fn wait_for_temp(dir: &Path, timeout: Duration) -> Option<PathBuf> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(read) = std::fs::read_dir(dir) {
            for e in read.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") && e.metadata().map(|m| m.len() > 0).unwrap_or(false) {
                    return Some(e.path());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn corrupted_entry_is_downloaded_again() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (registry, _) = registry_with(work.path(), &[("app", "1.0.0")]);
    let cache = open(&work.path().join("cache"), 1 << 30);
    let reference = registry.oci_ref("charts/app", "1.0.0");
    let first = locate(&cache, &reference).await.unwrap();
    // Someone truncates the entry on disk.
    let bytes = std::fs::read(&first.path).unwrap();
    std::fs::write(&first.path, &bytes[..bytes.len() / 3]).unwrap();
    let again = locate(&cache, &reference).await.unwrap();
    assert!(!again.cache_hit);
    assert_eq!(
        Digest::of(&std::fs::read(&again.path).unwrap()),
        first.digest
    );
    assert_eq!(registry.blob_gets(), 2);
}

#[tokio::test]
async fn size_bound_evicts_least_recently_used() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (registry, _) = registry_with(
        work.path(),
        &[("one", "1.0.0"), ("two", "1.0.0"), ("three", "1.0.0")],
    );
    // Room for about two charts (helm create charts are a few KiB each).
    let probe = locate(
        &open(&work.path().join("probe"), 1 << 30),
        &registry.oci_ref("charts/one", "1.0.0"),
    )
    .await
    .unwrap();
    let size = std::fs::metadata(&probe.path).unwrap().len();
    let cache = open(&work.path().join("cache"), size * 2 + size / 2);
    let one = locate(&cache, &registry.oci_ref("charts/one", "1.0.0"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let two = locate(&cache, &registry.oci_ref("charts/two", "1.0.0"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Touch `one`: now `two` is the least recently used.
    assert!(
        locate(&cache, &registry.oci_ref("charts/one", "1.0.0"))
            .await
            .unwrap()
            .cache_hit
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let three = locate(&cache, &registry.oci_ref("charts/three", "1.0.0"))
        .await
        .unwrap();
    assert!(one.path.exists());
    assert!(!two.path.exists());
    assert!(three.path.exists());
    let stats = cache.stats();
    assert_eq!(stats.evictions, 1);
    assert!(stats.bytes <= cache.max_bytes());
}
