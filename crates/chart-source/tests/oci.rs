//! The OCI source against the real registry (docker-registry) with charts pushed by the real
//! helm: auth modes, TLS options, error categories, digest pinning, build metadata.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::oci::OciSource;
use chart_source::oci_clients::OciClients;
use chart_source::spec::{OciSourceSpec, TlsOptions};
use chart_source::{ChartSource, Credentials, Digest, ErrorCategory, OciReference, SourceAuth};
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

async fn category_of(source: &OciSource) -> (ErrorCategory, String) {
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
    assert_eq!(cat, ErrorCategory::Auth, "{msg}");
    assert!(msg.contains(&reference), "{msg}");
    assert!(!msg.contains("wrong-password-secret"), "{msg}");
    assert!(!format!("{s:?}").contains("wrong-password-secret"));

    // No credentials at all: auth, with a hint.
    let s = OciSource::new(spec(&other, true), SourceAuth::default(), cache2.clone()).unwrap();
    let (cat, msg) = category_of(&s).await;
    assert_eq!(cat, ErrorCategory::Auth, "{msg}");
    assert!(msg.contains("requires credentials"), "{msg}");

    // A bearer token the registry does not accept: auth, token not shown.
    let bearer = SourceAuth {
        credentials: Some(Credentials::bearer("tok-very-secret")),
        ca_pem: None,
        cosign_keys: None,
    };
    let s = OciSource::new(spec(&other, true), bearer, cache2).unwrap();
    let (cat, msg) = category_of(&s).await;
    assert_eq!(cat, ErrorCategory::Auth, "{msg}");
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
    assert_eq!(cat, ErrorCategory::Tls, "{msg}");
    assert!(msg.contains(&reference), "{msg}");

    // Plain HTTP against a TLS registry: not a success either.
    let err = source(&f, spec(&reference, true), SourceAuth::default())
        .locate()
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Tls, "{err}");
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
    assert_eq!(err.category(), ErrorCategory::Config);
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
    assert_eq!(cat, ErrorCategory::NotFound, "{msg}");
    assert!(msg.contains(&unknown_tag), "{msg}");

    let unknown_repo = f.registry.oci_ref("team/charts/nope", "1.0.0");
    let (cat, msg) = category_of(&source(
        &f,
        spec(&unknown_repo, true),
        SourceAuth::default(),
    ))
    .await;
    assert_eq!(cat, ErrorCategory::NotFound, "{msg}");

    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    f.registry.stop();
    let (cat, msg) = category_of(&source(&f, spec(&reference, true), SourceAuth::default())).await;
    assert_eq!(cat, ErrorCategory::Network, "{msg}");
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
    assert_eq!(cat, ErrorCategory::NotFound, "{msg}");
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
    let first = OciSource::in_pool(
        spec(&tagged, true),
        basic(&f),
        f.cache.clone(),
        pool.clone(),
    )
    .unwrap()
    .locate()
    .await
    .unwrap();
    assert!(!first.cache_hit);
    let pinned = format!("{}@{manifest}", f.registry.oci_base("team/charts/app"));
    let pinned_source = |auth: SourceAuth| {
        OciSource::in_pool(spec(&pinned, true), auth, f.cache.clone(), pool.clone()).unwrap()
    };

    // Anonymous and wrong credentials: refused by the registry, not served from the cache.
    let (cat, msg) = category_of(&pinned_source(SourceAuth::default())).await;
    assert_eq!(cat, ErrorCategory::Auth, "{msg}");
    let wrong = SourceAuth {
        credentials: Some(Credentials::basic(
            f.registry.username().unwrap(),
            "not-the-password",
        )),
        ca_pem: None,
        cosign_keys: None,
    };
    let (cat, msg) = category_of(&pinned_source(wrong)).await;
    assert_eq!(cat, ErrorCategory::Auth, "{msg}");

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

/// `helm template rel REFERENCE_OR_TGZ` with the real helm; stdout, or helm's error.
fn helm_template(home: &Path, chart: &str) -> Result<String, String> {
    let out = test_support::helm_command(home)
        .args([
            "template",
            "rel",
            chart,
            "--plain-http",
            "--namespace",
            "apps",
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn a_mirrored_chart_and_a_short_tag_are_used_as_helm_uses_them() {
    let Some(f) = fixture(RegistryMode::Anonymous, &[("redis", "23.1.1")]) else {
        return;
    };
    // A mirror under another repository name, and a short tag in the same repository.
    f.registry
        .copy(
            "team/charts/redis",
            "23.1.1",
            "mirror/bitnami-redis",
            "23.1.1",
        )
        .unwrap();
    f.registry
        .copy("team/charts/redis", "23.1.1", "team/charts/redis", "23.1")
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let cases = [
        (
            f.registry.oci_ref("mirror/bitnami-redis", "23.1.1"),
            "bitnami-redis",
            Some("23.1.1"),
        ),
        (
            f.registry.oci_ref("team/charts/redis", "23.1"),
            "redis",
            Some("23.1"),
        ),
    ];
    for (reference, requested_name, requested_version) in cases {
        // The same reference through helm and through us.
        let by_helm = helm_template(home.path(), &reference).expect("helm renders it");
        let located = source(&f, spec(&reference, true), SourceAuth::default())
            .locate()
            .await
            .unwrap();
        let ours = helm_template(home.path(), located.path.to_str().unwrap()).unwrap();
        assert_eq!(
            ours, by_helm,
            "{reference}: the same chart, rendered the same"
        );
        assert!(by_helm.contains("helm.sh/chart: redis-23.1.1"), "{by_helm}");

        // The chart's real name and version, and the difference from the reference.
        assert_eq!(
            (located.name.as_str(), located.version.as_str()),
            ("redis", "23.1.1")
        );
        let mismatch = located
            .differs_from_reference
            .expect("a difference is reported");
        assert_eq!(mismatch.requested_name, requested_name);
        assert_eq!(mismatch.requested_version.as_deref(), requested_version);
        assert_eq!(mismatch.chart_name, "redis");
        assert_eq!(mismatch.chart_version, "23.1.1");
    }

    // The reference that names the chart exactly reports no difference.
    let exact = f.registry.oci_ref("team/charts/redis", "23.1.1");
    let located = source(&f, spec(&exact, true), SourceAuth::default())
        .locate()
        .await
        .unwrap();
    assert_eq!(located.differs_from_reference, None);
}

#[tokio::test]
async fn a_tampered_chart_blob_is_an_integrity_failure_and_nothing_is_cached() {
    let Some(f) = fixture(RegistryMode::Anonymous, &[]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // Tampered in the registry's storage, as a compromised registry or disk would: one byte
    // flipped (same size), or the blob replaced by another valid chart (another size).
    let flip_one_byte = |blob: &Path| {
        let mut bytes = std::fs::read(blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(blob, bytes).unwrap();
    };
    let other = Chart::create("app", "6.6.6")
        .package(&work.path().join("other"))
        .unwrap();
    let replace_with_other_chart = |blob: &Path| {
        std::fs::copy(&other, blob).unwrap();
    };
    type Tamper<'a> = &'a dyn Fn(&Path);
    let tampers: [(&str, Tamper); 2] = [
        ("1.0.0", &flip_one_byte),
        ("2.0.0", &replace_with_other_chart),
    ];
    for (version, tamper) in tampers {
        let tgz = Chart::create("app", version)
            .package(&work.path().join(version))
            .unwrap();
        f.registry.push(&tgz, "team/charts").unwrap();
        // helm pushes the .tgz as the chart layer: its blob is the file's sha256.
        let layer = Digest::of(&std::fs::read(&tgz).unwrap());
        tamper(&f.registry.blob_file(&layer.to_string()));
        let reference = f.registry.oci_ref("team/charts/app", version);

        // The same reference through helm: refused.
        let by_helm = helm_template(home.path(), &reference).unwrap_err();
        eprintln!("helm: {by_helm}");
        assert!(
            by_helm.contains("digest") || by_helm.contains("Content-Length"),
            "{by_helm}"
        );

        // Through us: integrity (permanent, not retried as a network failure), naming the
        // reference; nothing in the cache.
        let (category, message) =
            category_of(&source(&f, spec(&reference, true), SourceAuth::default())).await;
        assert_eq!(category, ErrorCategory::Integrity, "{message}");
        assert!(!category.is_transient());
        assert!(message.contains(&reference), "{message}");
        assert!(message.contains("does not match its digest"), "{message}");
        let left: Vec<_> = std::fs::read_dir(f.cache.dir().join("sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left in the cache: {left:?}");
    }
}

/// Docker's `identitytoken` is a refresh token for the registry's token service: a registry
/// with Basic auth only has none, which is an `auth` failure that says why (the token is
/// never sent as a bearer token); a registry that asks for nothing serves the chart without
/// any exchange.
#[tokio::test]
async fn an_identity_token_needs_the_registrys_token_service() {
    let Some(f) = fixture(RegistryMode::BasicAuth, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = f.registry.oci_ref("team/charts/app", "1.0.0");
    let auth = SourceAuth {
        credentials: Some(Credentials::identity_token("refresh-token-secret")),
        ca_pem: None,
        cosign_keys: None,
    };
    let (category, message) = category_of(&source(&f, spec(&reference, true), auth.clone())).await;
    assert_eq!(category, ErrorCategory::Auth, "{message}");
    assert!(message.contains(&reference), "{message}");
    assert!(message.contains("no token service"), "{message}");
    assert!(!message.contains("refresh-token-secret"));
    // Only the challenge probe reached the registry after the push: no pull was tried with
    // the token.
    let log = f.registry.access_log();
    let pushed = log
        .iter()
        .rposition(|e| e.method == "PUT" && e.path.ends_with("/manifests/1.0.0"))
        .unwrap();
    let after: Vec<_> = log[pushed + 1..].iter().map(|e| e.path.as_str()).collect();
    assert_eq!(after, ["/v2/"], "{log:?}");

    let Some(open) = fixture(RegistryMode::Anonymous, &[("app", "1.0.0")]) else {
        return;
    };
    let reference = open.registry.oci_ref("team/charts/app", "1.0.0");
    let located = source(&open, spec(&reference, true), auth)
        .locate()
        .await
        .unwrap();
    assert_eq!(located.name, "app");
}

/// The same identity token (a refresh token from distribution's token server, as `docker
/// login` stores it) through helm — an `identitytoken` entry in helm's registry config —
/// and through us: both exchange it at the token service and pull; a wrong one fails both.
#[tokio::test]
async fn an_identity_token_is_exchanged_at_the_registrys_token_service() {
    if !test_support::token_server_bin().exists() {
        // CI always runs scripts/dev-setup first: a missing token server there is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "token-server missing in CI (scripts/dev-setup builds it)"
        );
        eprintln!("SKIP: token-server missing (run scripts/dev-setup)");
        return;
    }
    let Some(f) = fixture(RegistryMode::Anonymous, &[]) else {
        return;
    };
    let registry = Registry::start(RegistryMode::TokenAuth).unwrap();
    let user = registry.username().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let tgz = Chart::create("app", "1.0.0").package(work.path()).unwrap();
    registry.push(&tgz, &format!("{user}/charts")).unwrap();
    let reference = registry.oci_ref(&format!("{user}/charts/app"), "1.0.0");
    let refresh = registry.refresh_token().unwrap();

    for (token, works) in [(refresh.as_str(), true), ("not-a-refresh-token", false)] {
        // helm, with the token as `docker login` stores it.
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config/registry/config.json");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        let auths = serde_json::json!({"auths": {registry.host(): {"identitytoken": token}}});
        std::fs::write(&config, auths.to_string()).unwrap();
        let out = test_support::helm_command(home.path())
            .args(["pull", &reference, "--plain-http", "-d"])
            .arg(home.path())
            .output()
            .unwrap();
        let helm_stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), works, "helm: {helm_stderr}");

        // Us, with the same token.
        let auth = SourceAuth {
            credentials: Some(Credentials::identity_token(token)),
            ca_pem: None,
            cosign_keys: None,
        };
        let result = OciSource::new(spec(&reference, true), auth, f.cache.clone())
            .unwrap()
            .locate()
            .await;
        match (result, works) {
            (Ok(located), true) => assert_eq!(located.name, "app"),
            (Err(e), false) => {
                assert_eq!(e.category(), ErrorCategory::Auth, "{e}");
                assert!(e.to_string().contains("refused the identity token"), "{e}");
                assert!(!e.to_string().contains(token), "{e}");
            }
            (other, _) => panic!("{token}: {other:?}; helm: {helm_stderr}"),
        }
    }
}
