//! The OCI source against the real registry (docker-registry) with charts pushed by the real
//! helm: auth modes, TLS options, error categories, digest pinning, build metadata.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::oci::OciSource;
use chart_source::oci_clients::OciClients;
use chart_source::spec::{OciSourceSpec, TlsOptions};
use chart_source::{Category, ChartSource, Credentials, Digest, OciReference, SourceAuth};
use test_support::{Chart, Registry, RegistryMode};

struct Fixture {
    registry: Registry,
    _work: tempfile::TempDir,
    cache: Arc<ChartCache>,
}

/// A registry in `mode` with `charts/<name>:<version>` pushed for each chart.
fn fixture(mode: RegistryMode, charts: &[(&str, &str)]) -> Option<Fixture> {
    if !test_support::helm_bin().exists() || !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("SKIP: helm or docker-registry missing (run scripts/dev-setup)");
        return None;
    }
    let registry = Registry::start(mode).unwrap();
    let work = tempfile::tempdir().unwrap();
    for (name, version) in charts {
        let tgz = Chart::create(name, version)
            .package(&work.path().join("pkg"))
            .unwrap();
        registry.push(&tgz, "team/charts").unwrap();
    }
    let cache = Arc::new(ChartCache::open(CacheConfig::new(work.path().join("cache"))).unwrap());
    Some(Fixture {
        registry,
        _work: work,
        cache,
    })
}

fn spec(reference: &str, plain_http: bool) -> OciSourceSpec {
    OciSourceSpec {
        reference: OciReference::parse(reference).unwrap(),
        authentication: None,
        plain_http,
        tls: TlsOptions::default(),
        verify: None,
    }
}

fn source(f: &Fixture, spec: OciSourceSpec, auth: SourceAuth) -> OciSource {
    OciSource::new(spec, auth, f.cache.clone()).unwrap()
}

fn basic(f: &Fixture) -> SourceAuth {
    SourceAuth {
        credentials: Some(Credentials::basic(
            f.registry.username().unwrap(),
            f.registry.password().unwrap(),
        )),
        ca_pem: f.registry.ca_pem(),
        cosign_keys: None,
    }
}

async fn category_of(source: &OciSource) -> (Category, String) {
    let err = source.locate().await.unwrap_err();
    eprintln!("error: {err}");
    (err.category(), err.to_string())
}

#[tokio::test]
async fn anonymous_pull_then_cache_hit() {
    let Some(f) = fixture(RegistryMode::Anonymous, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    let s = source(&f, spec(&reference, true), SourceAuth::default());
    let located = s.locate().await.unwrap();
    assert_eq!(located.name, "app");
    assert_eq!(located.version, "1.0.0");
    assert!(!located.cache_hit);
    assert_eq!(
        located.digest,
        Digest::of(&std::fs::read(&located.path).unwrap())
    );
    assert!(located.path.starts_with(f.cache.dir()));
    assert_eq!(f.registry.blob_gets(), 1);
    let manifests_before = f.registry.manifest_gets();

    // Second locate: one manifest HEAD, no blob, no manifest GET.
    let again = source(&f, spec(&reference, true), SourceAuth::default())
        .locate()
        .await
        .unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.path, located.path);
    assert_eq!(f.registry.blob_gets(), 1);
    assert_eq!(f.registry.manifest_gets(), manifests_before);
    let stats = f.cache.stats();
    assert_eq!(stats.misses, 1);
    assert!(stats.hits >= 1);
    assert_eq!(s.describe(), reference);
}

#[tokio::test]
async fn basic_auth_and_its_failures() {
    let Some(f) = fixture(RegistryMode::BasicAuth, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    let located = source(&f, spec(&reference, true), basic(&f))
        .locate()
        .await
        .unwrap();
    assert_eq!(located.name, "app");

    // Wrong password: auth, naming the reference and the user, never the password.
    let wrong = SourceAuth {
        credentials: Some(Credentials::basic(
            f.registry.username().unwrap(),
            "wrong-password-secret",
        )),
        ca_pem: None,
        cosign_keys: None,
    };
    let other = f.registry.oci_ref("team/charts/app", "1.0.0");
    let cache2 = Arc::new(ChartCache::open(CacheConfig::new(f._work.path().join("c2"))).unwrap());
    let s = OciSource::new(spec(&other, true), wrong, cache2.clone()).unwrap();
    let (cat, msg) = category_of(&s).await;
    assert_eq!(cat, Category::Auth, "{msg}");
    assert!(msg.contains(&reference), "{msg}");
    assert!(!msg.contains("wrong-password-secret"), "{msg}");
    assert!(!format!("{s:?}").contains("wrong-password-secret"));

    // No credentials at all: auth, with a hint.
    let s = OciSource::new(spec(&other, true), SourceAuth::default(), cache2.clone()).unwrap();
    let (cat, msg) = category_of(&s).await;
    assert_eq!(cat, Category::Auth, "{msg}");
    assert!(msg.contains("requires credentials"), "{msg}");

    // A bearer token the registry does not accept: auth, token not shown.
    let bearer = SourceAuth {
        credentials: Some(Credentials::bearer("tok-very-secret")),
        ca_pem: None,
        cosign_keys: None,
    };
    let s = OciSource::new(spec(&other, true), bearer, cache2).unwrap();
    let (cat, msg) = category_of(&s).await;
    assert_eq!(cat, Category::Auth, "{msg}");
    assert!(!msg.contains("tok-very-secret"), "{msg}");
}

#[tokio::test]
async fn token_as_password_with_username() {
    // Registries such as GHCR take a token as the password of a basic login: `username` +
    // `token` in the Secret become basic credentials (the resolver's mapping).
    let Some(f) = fixture(RegistryMode::BasicAuth, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    let auth = SourceAuth {
        credentials: Some(Credentials::basic(
            f.registry.username().unwrap(),
            f.registry.password().unwrap(),
        )),
        ca_pem: None,
        cosign_keys: None,
    };
    assert!(
        source(&f, spec(&reference, true), auth)
            .locate()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn tls_options() {
    let Some(f) = fixture(RegistryMode::Tls, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");

    // Without the CA: tls, naming the registry.
    let (cat, msg) = category_of(&source(&f, spec(&reference, false), SourceAuth::default())).await;
    assert_eq!(cat, Category::Tls, "{msg}");
    assert!(msg.contains(&reference), "{msg}");

    // Plain HTTP against a TLS registry: not a success either.
    let err = source(&f, spec(&reference, true), SourceAuth::default())
        .locate()
        .await
        .unwrap_err();
    assert_eq!(err.category(), Category::Tls, "{err}");
    assert!(err.to_string().contains("plainHTTP"), "{err}");

    // With caSecretRef's PEM.
    let with_ca = SourceAuth {
        credentials: None,
        ca_pem: f.registry.ca_pem(),
        cosign_keys: None,
    };
    let located = source(&f, spec(&reference, false), with_ca)
        .locate()
        .await
        .unwrap();
    assert_eq!(located.name, "app");

    // insecureSkipTLSVerify (fresh cache so it really talks to the registry).
    let cache = Arc::new(ChartCache::open(CacheConfig::new(f._work.path().join("c3"))).unwrap());
    let mut insecure = spec(&reference, false);
    insecure.tls.insecure_skip_tls_verify = true;
    let located = OciSource::new(insecure, SourceAuth::default(), cache)
        .unwrap()
        .locate()
        .await
        .unwrap();
    assert!(!located.cache_hit);

    // A CA Secret without a certificate is a config error.
    let bad = SourceAuth {
        credentials: None,
        ca_pem: Some(b"not a pem".to_vec()),
        cosign_keys: None,
    };
    let err = OciSource::new(spec(&reference, false), bad, f.cache.clone()).unwrap_err();
    assert_eq!(err.category(), Category::Config);
}

#[tokio::test]
async fn tls_with_basic_auth() {
    let Some(f) = fixture(RegistryMode::TlsBasicAuth, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    let located = source(&f, spec(&reference, false), basic(&f))
        .locate()
        .await
        .unwrap();
    assert_eq!(located.version, "1.0.0");
}

#[tokio::test]
async fn not_found_and_network() {
    let Some(mut f) = fixture(RegistryMode::Anonymous, &[("app", "1.0.0")]) else {
        return;
    };
    let unknown_tag = f.registry.oci_ref("team/charts/app", "9.9.9");
    let (cat, msg) =
        category_of(&source(&f, spec(&unknown_tag, true), SourceAuth::default())).await;
    assert_eq!(cat, Category::NotFound, "{msg}");
    assert!(msg.contains(&unknown_tag), "{msg}");

    let unknown_repo = f.registry.oci_ref("team/charts/nope", "1.0.0");
    let (cat, msg) = category_of(&source(
        &f,
        spec(&unknown_repo, true),
        SourceAuth::default(),
    ))
    .await;
    assert_eq!(cat, Category::NotFound, "{msg}");

    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    f.registry.stop();
    let (cat, msg) = category_of(&source(&f, spec(&reference, true), SourceAuth::default())).await;
    assert_eq!(cat, Category::Network, "{msg}");
    assert!(msg.contains(&reference), "{msg}");
}

#[tokio::test]
async fn digest_pinned_and_build_metadata() {
    let Some(f) = fixture(RegistryMode::Anonymous, &[]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let tgz = Chart::create("meta", "1.2.3+build.1")
        .package(work.path())
        .unwrap();
    let manifest = f.registry.push(&tgz, "a/b/c").unwrap();

    // Build metadata: both spellings of the tag.
    for tag in ["1.2.3+build.1", "1.2.3_build.1"] {
        let reference = f.registry.oci_ref("a/b/c/meta", tag);
        let located = source(&f, spec(&reference, true), SourceAuth::default())
            .locate()
            .await
            .unwrap();
        assert_eq!(located.version, "1.2.3+build.1");
    }

    // Digest-pinned, with and without a tag.
    let base = f.registry.oci_base("a/b/c/meta");
    for reference in [
        format!("{base}@{manifest}"),
        format!("{base}:1.2.3_build.1@{manifest}"),
    ] {
        let located = source(&f, spec(&reference, true), SourceAuth::default())
            .locate()
            .await
            .unwrap();
        assert_eq!(located.name, "meta");
        assert_eq!(located.digest, Digest::of(&std::fs::read(&tgz).unwrap()));
    }

    // A pinned digest that does not exist: not-found.
    let missing = format!("{base}@sha256:{}", "0".repeat(64));
    let (cat, msg) = category_of(&source(&f, spec(&missing, true), SourceAuth::default())).await;
    assert_eq!(cat, Category::NotFound, "{msg}");
}

#[tokio::test]
async fn private_chart_in_the_shared_cache_needs_the_registry_to_accept_the_credentials() {
    // The cache and the client pool are shared by every Component of the controller. A
    // chart pulled with one Component's credentials must not be handed to another
    // Component, by digest, unless the registry accepts that Component's credentials.
    let Some(f) = fixture(RegistryMode::BasicAuth, &[]) else {
        return;
    };
    let tgz = Chart::create("app", "1.0.0")
        .package(&f._work.path().join("pkg"))
        .unwrap();
    let manifest = f.registry.push(&tgz, "team/charts").unwrap();
    let pool = Arc::new(OciClients::default());
    let tagged = f.registry.oci_ref("team/charts/app", "1.0.0");
    let first = OciSource::new(spec(&tagged, true), basic(&f), f.cache.clone())
        .unwrap()
        .with_clients(pool.clone())
        .locate()
        .await
        .unwrap();
    assert!(!first.cache_hit);
    let pinned = format!("{}@{manifest}", f.registry.oci_base("team/charts/app"));
    let pinned_source = |auth: SourceAuth| {
        OciSource::new(spec(&pinned, true), auth, f.cache.clone())
            .unwrap()
            .with_clients(pool.clone())
    };

    // Anonymous and wrong credentials: refused by the registry, not served from the cache.
    let (cat, msg) = category_of(&pinned_source(SourceAuth::default())).await;
    assert_eq!(cat, Category::Auth, "{msg}");
    let wrong = SourceAuth {
        credentials: Some(Credentials::basic(
            f.registry.username().unwrap(),
            "not-the-password",
        )),
        ca_pem: None,
        cosign_keys: None,
    };
    let (cat, msg) = category_of(&pinned_source(wrong)).await;
    assert_eq!(cat, Category::Auth, "{msg}");

    // The right credentials: from the cache, no blob download; the first time with one
    // manifest request, then (same process, same credentials) with none.
    let blobs = f.registry.blob_gets();
    let hit = pinned_source(basic(&f)).locate().await.unwrap();
    assert!(hit.cache_hit);
    assert_eq!(hit.digest, first.digest);
    let requests = f.registry.access_log().len();
    let again = pinned_source(basic(&f)).locate().await.unwrap();
    assert!(again.cache_hit);
    assert_eq!(f.registry.access_log().len(), requests, "no request at all");
    assert_eq!(f.registry.blob_gets(), blobs);
    assert_eq!(pool.len(), 3, "one client per credential identity");
}
