//! `source.verify` (cosign) against the real registry, with charts pushed by the real helm
//! and signed by the real cosign (`tools/cosign/build`): every registry mode, and every way
//! a signature can be missing or wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::oci::OciSource;
use chart_source::spec::{OciSourceSpec, SecretRef, TlsOptions, Verification};
use chart_source::verify::{CosignKeys, signature_tag};
use chart_source::{ChartSource, Credentials, Digest, ErrorCategory, OciReference, SourceAuth};
use test_support::{Chart, CosignKey, Registry, RegistryMode};

const REPO: &str = "team/charts/app";

struct Fixture {
    registry: Registry,
    _work: tempfile::TempDir,
    cache: Arc<ChartCache>,
    /// Manifest digest of each pushed version.
    digests: Vec<(String, String)>,
}

impl Fixture {
    fn digest(&self, version: &str) -> &str {
        &self
            .digests
            .iter()
            .find(|(v, _)| v == version)
            .expect("pushed")
            .1
    }

    fn image(&self, version: &str) -> String {
        self.registry.image(REPO, self.digest(version))
    }

    fn reference(&self, version: &str) -> String {
        self.registry.oci_ref(REPO, version)
    }

    fn auth(&self, keys: &CosignKeys) -> SourceAuth {
        SourceAuth {
            credentials: self
                .registry
                .username()
                .map(|u| Credentials::basic(u, self.registry.password().unwrap())),
            ca_pem: self.registry.ca_pem(),
            cosign_keys: Some(keys.clone()),
        }
    }

    fn source(&self, reference: &str, keys: &CosignKeys) -> OciSource {
        let spec = OciSourceSpec {
            reference: OciReference::parse(reference).unwrap(),
            authentication: None,
            plain_http: !self.registry.is_tls(),
            tls: TlsOptions::default(),
            verify: Some(Verification::Cosign {
                secret_ref: SecretRef {
                    name: "keys".into(),
                    namespace: None,
                },
            }),
        };
        OciSource::new(spec, self.auth(keys), self.cache.clone()).unwrap()
    }

    /// Requests for the signature tag of `version`.
    fn signature_requests(&self, version: &str) -> usize {
        let tag = signature_tag(&self.digest(version).parse::<Digest>().unwrap());
        self.registry
            .access_log()
            .iter()
            .filter(|e| e.path.ends_with(&tag))
            .count()
    }
}

/// A registry in `mode` with `team/charts/app:<version>` pushed for each version; `None`
/// (the test skips) without helm, docker-registry or cosign.
fn fixture(mode: RegistryMode, versions: &[&str]) -> Option<Fixture> {
    if !test_support::helm_bin().exists()
        || !Path::new("/usr/bin/docker-registry").exists()
        || !test_support::cosign_bin().exists()
    {
        // CI runs scripts/dev-setup first: a missing tool there is a failure, never a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "helm, docker-registry or cosign missing in CI (scripts/dev-setup installs them)"
        );
        eprintln!("SKIP: helm, docker-registry or cosign missing (run scripts/dev-setup)");
        return None;
    }
    let registry = Registry::start(mode).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for version in versions {
        let tgz = Chart::create("app", version)
            .package(&work.path().join("pkg"))
            .unwrap();
        let digest = registry.push(&tgz, "team/charts").unwrap();
        digests.push((version.to_string(), digest));
    }
    let cache = Arc::new(ChartCache::open(CacheConfig::new(work.path().join("cache"))).unwrap());
    Some(Fixture {
        registry,
        _work: work,
        cache,
        digests,
    })
}

fn keys_of(keys: &[(&str, &CosignKey)]) -> CosignKeys {
    let pems: Vec<(String, String)> = keys
        .iter()
        .map(|(n, k)| (n.to_string(), k.public_pem().unwrap()))
        .collect();
    CosignKeys::from_entries(
        "Secret apps/keys",
        pems.iter().map(|(n, p)| (n.as_str(), p.as_bytes())),
    )
    .unwrap()
}

/// A registry in `mode` with 1.0.0 pushed and signed by a new key (`cosign.pub`).
fn signed(mode: RegistryMode) -> Option<(Fixture, CosignKeys, CosignKey)> {
    let f = fixture(mode, &["1.0.0"])?;
    let key = CosignKey::generate().unwrap();
    f.registry
        .cosign()
        .unwrap()
        .sign(&key, &f.image("1.0.0"))
        .unwrap();
    let keys = keys_of(&[("cosign.pub", &key)]);
    Some((f, keys, key))
}

async fn integrity(source: &OciSource) -> String {
    let err = source.locate().await.unwrap_err();
    eprintln!("error: {err}");
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    err.to_string()
}

/// Signs 1.0.0, locates it verified, then again from the record (no signature request).
async fn signed_chart_verifies(mode: RegistryMode) {
    let Some((f, keys, _)) = signed(mode) else {
        return;
    };

    let located = f
        .source(&f.reference("1.0.0"), &keys)
        .locate()
        .await
        .unwrap();
    let verified = located.verified.expect("verified");
    assert_eq!(verified.manifest_digest.to_string(), f.digest("1.0.0"));
    assert_eq!(verified.key_set, *keys.fingerprint());
    assert_eq!(verified.provider, "cosign");
    assert_eq!(located.name, "app");
    let requests = f.signature_requests("1.0.0");
    assert!(requests >= 1);

    // The next locate (the next reconcile) reads the cache's record: no signature request.
    let again = f
        .source(&f.reference("1.0.0"), &keys)
        .locate()
        .await
        .unwrap();
    assert!(again.cache_hit);
    assert_eq!(
        again.verified.expect("verified").manifest_digest,
        verified.manifest_digest
    );
    assert_eq!(f.signature_requests("1.0.0"), requests);
}

/// Plain HTTP and TLS, anonymous and with basic auth: cosign signs, we verify.
#[tokio::test]
async fn signed_chart_verifies_in_every_registry_mode() {
    for mode in [
        RegistryMode::Anonymous,
        RegistryMode::BasicAuth,
        RegistryMode::Tls,
        RegistryMode::TlsBasicAuth,
    ] {
        eprintln!("mode {mode:?}");
        signed_chart_verifies(mode).await;
    }
}

/// Unsigned, another key, another digest's signature, a tampered payload: each is
/// `integrity`, names the reference and the keys, and downloads (and records) nothing.
#[tokio::test]
async fn every_bad_signature_is_integrity() {
    let Some(f) = fixture(
        RegistryMode::BasicAuth,
        &["1.0.0", "2.0.0", "3.0.0", "4.0.0"],
    ) else {
        return;
    };
    let ours = CosignKey::generate().unwrap();
    let stranger = CosignKey::generate().unwrap();
    let keys = keys_of(&[("cosign.pub", &ours)]);
    let cosign = f.registry.cosign().unwrap();

    // 1.0.0: unsigned.
    let message = integrity(&f.source(&f.reference("1.0.0"), &keys)).await;
    assert!(message.contains(&f.reference("1.0.0")), "{message}");
    assert!(message.contains("no cosign signature"), "{message}");
    assert!(
        message.contains(&signature_tag(&f.digest("1.0.0").parse().unwrap())),
        "{message}"
    );
    assert!(
        message.contains("`cosign.pub` of Secret apps/keys"),
        "{message}"
    );

    // 2.0.0: signed, by another key.
    cosign.sign(&stranger, &f.image("2.0.0")).unwrap();
    let message = integrity(&f.source(&f.reference("2.0.0"), &keys)).await;
    assert!(message.contains(&f.reference("2.0.0")), "{message}");
    assert!(message.contains("made by one of the keys"), "{message}");
    assert!(
        message.contains("`cosign.pub` of Secret apps/keys"),
        "{message}"
    );

    // 3.0.0 carries 1.0.0's signature: made by our key, for another digest.
    let payload = cosign.generate_payload(&f.image("1.0.0")).unwrap();
    let payload_file = cosign.scratch_file("payload-1.json", &payload).unwrap();
    let signature = cosign.sign_blob(&ours, &payload_file).unwrap();
    cosign
        .attach_signature(&f.image("3.0.0"), &payload_file, &signature)
        .unwrap();
    let message = integrity(&f.source(&f.reference("3.0.0"), &keys)).await;
    assert!(message.contains("for another manifest"), "{message}");
    assert!(message.contains(f.digest("1.0.0")), "{message}");

    // 4.0.0: its own payload, signed by our key, then altered.
    let payload = cosign.generate_payload(&f.image("4.0.0")).unwrap();
    let payload_file = cosign.scratch_file("payload-4.json", &payload).unwrap();
    let signature = cosign.sign_blob(&ours, &payload_file).unwrap();
    let text = String::from_utf8(payload).unwrap();
    let tampered = text.replace(REPO, "team/charts/evil");
    assert_ne!(tampered, text);
    let tampered_file = cosign
        .scratch_file("payload-4-tampered.json", tampered.as_bytes())
        .unwrap();
    cosign
        .attach_signature(&f.image("4.0.0"), &tampered_file, &signature)
        .unwrap();
    let message = integrity(&f.source(&f.reference("4.0.0"), &keys)).await;
    assert!(message.contains("payload was altered"), "{message}");

    // Not one chart was downloaded, nothing recorded as verified: once signed, 1.0.0
    // verifies (no failure was cached).
    let stats = f.cache.stats();
    assert_eq!((stats.bytes_downloaded, stats.entries), (0, 0), "{stats:?}");
    cosign.sign(&ours, &f.image("1.0.0")).unwrap();
    let located = f
        .source(&f.reference("1.0.0"), &keys)
        .locate()
        .await
        .unwrap();
    assert!(located.verified.is_some());
}

/// A changed key set verifies again: the record of the old keys does not count.
#[tokio::test]
async fn a_key_change_verifies_again() {
    let Some((f, first_keys, first)) = signed(RegistryMode::Anonymous) else {
        return;
    };
    let second = CosignKey::generate().unwrap();
    let reference = f.reference("1.0.0");
    f.source(&reference, &first_keys).locate().await.unwrap();
    let requests = f.signature_requests("1.0.0");

    // The Secret now holds only the second key: the chart's signature is not by it.
    let message = integrity(&f.source(&reference, &keys_of(&[("new.pub", &second)]))).await;
    assert!(
        message.contains("`new.pub` of Secret apps/keys"),
        "{message}"
    );
    assert!(f.signature_requests("1.0.0") > requests);

    // Both keys: verified again (a new key set, so the signature is read again).
    let requests = f.signature_requests("1.0.0");
    let both = keys_of(&[("new.pub", &second), ("old.pub", &first)]);
    let located = f.source(&reference, &both).locate().await.unwrap();
    assert_eq!(located.verified.unwrap().key_set, *both.fingerprint());
    assert!(f.signature_requests("1.0.0") > requests);
}

/// A digest-pinned chart, verified and cached, locates with the registry gone.
#[tokio::test]
async fn a_verified_pinned_chart_needs_no_registry() {
    let Some((mut f, keys, _)) = signed(RegistryMode::Anonymous) else {
        return;
    };
    let pinned = format!("{}@{}", f.reference("1.0.0"), f.digest("1.0.0"));
    let first = f.source(&pinned, &keys).locate().await.unwrap();
    f.registry.stop();
    let again = f.source(&pinned, &keys).locate().await.unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.verified, first.verified);
}

/// A signature stored as an OCI referrer (cosign's `--registry-referrers-mode=oci-1-1`;
/// docker-registry 2.8 has no referrers API, so cosign uses the referrers tag schema).
#[tokio::test]
async fn a_referrer_signature_verifies() {
    let Some(f) = fixture(RegistryMode::Anonymous, &["1.0.0"]) else {
        return;
    };
    let key = CosignKey::generate().unwrap();
    f.registry
        .cosign()
        .unwrap()
        .sign_as_referrer(&key, &f.image("1.0.0"))
        .unwrap();
    let tag = signature_tag(&f.digest("1.0.0").parse::<Digest>().unwrap());
    assert!(
        !f.registry
            .access_log()
            .iter()
            .any(|e| e.method == "PUT" && e.path.ends_with(&tag)),
        "cosign wrote no .sig tag"
    );
    let keys = keys_of(&[("cosign.pub", &key)]);
    let located = f
        .source(&f.reference("1.0.0"), &keys)
        .locate()
        .await
        .unwrap();
    assert!(located.verified.is_some());
    // Found through the referrers tag schema (`sha256-<hex>`, an index of referrers).
    let schema_tag = tag.trim_end_matches(".sig").to_string();
    assert!(
        f.registry
            .access_log()
            .iter()
            .any(|e| e.method == "GET" && e.status == 200 && e.path.ends_with(&schema_tag)),
        "{:?}",
        f.registry.access_log()
    );
}
