//! Cosign signatures on OCI charts (`source.verify: {provider: cosign, secretRef}`).
//!
//! Before a chart is handed to helm, its manifest digest must carry a cosign signature made
//! by one of the public keys of the Secret. Signatures are found where `cosign sign` puts
//! them: the tag `sha256-<hex>.sig` of the chart's repository (cosign's default), else the
//! OCI referrers of the manifest (artifact type `application/vnd.dev.cosign.artifact.sig.v1+json`,
//! through the registry's referrers API or the referrers tag schema). Each signature layer is
//! a simple-signing payload (`application/vnd.dev.cosign.simplesigning.v1+json`) with its
//! base64 signature in the annotation `dev.cosignproject.cosign/signature`.
//!
//! The signature check itself is the `sigstore` crate's ([`CosignVerificationKey`]); the
//! payload is read here (three fields) because sigstore's payload types come only with its
//! `cosign` feature, which brings the keyless stack (OIDC, Fulcio, Rekor, protobuf).
//! Keyless verification is refused at parse time ([`crate::spec`]).
//!
//! A verified manifest digest is recorded in the cache under a key that holds the key
//! set's fingerprint: the next locate with the same keys reads the record instead of the
//! signatures, and a changed key set verifies again.

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sigstore::crypto::{CosignVerificationKey, Signature};

use crate::ErrorCategory;
use crate::cache::{Access, ChartCache};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::OciReference;

/// The media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The artifact type of a cosign signature stored as an OCI referrer.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The `critical.type` of a cosign image signature payload.
const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// A Secret key holding a public key ends with this (Flux's convention).
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";

/// Bounds on what a registry can make us read.
const MAX_SIGNATURE_MANIFESTS: usize = 8;
const MAX_SIGNATURE_LAYERS: usize = 16;
const MAX_PAYLOAD_BYTES: i64 = 64 * 1024;

const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// One public key of the set, with the Secret key it came from.
#[derive(Clone)]
struct NamedKey {
    name: String,
    key: CosignVerificationKey,
}

/// The public keys a chart's signature may be made with. Never empty.
#[derive(Clone)]
pub struct CosignKeys {
    keys: Vec<NamedKey>,
    /// sha256 over the sorted keys' DER: equal for the same keys, whatever their names.
    fingerprint: Digest,
    /// Where the keys came from, for messages (`Secret apps/cosign-keys`).
    origin: String,
}

impl std::fmt::Debug for CosignKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignKeys")
            .field("keys", &self.describe())
            .field("fingerprint", &self.fingerprint.to_string())
            .finish()
    }
}

impl CosignKeys {
    /// The keys among `entries` (Secret key → value) whose name ends in `.pub`, each a PEM
    /// public key (ECDSA, Ed25519 or RSA, as cosign writes them). The error names the
    /// Secret key that is not a usable key, or says none was found.
    pub fn from_entries<'a>(
        origin: impl Into<String>,
        entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> std::result::Result<CosignKeys, String> {
        let mut keys = Vec::new();
        let mut ders = Vec::new();
        let mut others = Vec::new();
        for (name, value) in entries {
            if !name.ends_with(PUBLIC_KEY_SUFFIX) {
                others.push(format!("`{name}`"));
                continue;
            }
            let key = CosignVerificationKey::try_from_pem(value).map_err(|e| {
                format!("key `{name}` is not a PEM public key (`cosign generate-key-pair` writes one to cosign.pub): {e}")
            })?;
            ders.push(Digest::of(spki_der(&key)).hex().to_string());
            keys.push(NamedKey {
                name: name.to_string(),
                key,
            });
        }
        if keys.is_empty() {
            let found = if others.is_empty() {
                "none".to_string()
            } else {
                others.join(", ")
            };
            return Err(format!(
                "holds no cosign public key: expected keys named `*{PUBLIC_KEY_SUFFIX}` with a PEM public key (`cosign generate-key-pair` writes cosign.pub); found keys: {found}"
            ));
        }
        ders.sort();
        ders.dedup();
        Ok(CosignKeys {
            keys,
            fingerprint: Digest::of(ders.join("\n").as_bytes()),
            origin: origin.into(),
        })
    }

    /// Identifies the key set: the same keys give the same fingerprint.
    pub fn fingerprint(&self) -> &Digest {
        &self.fingerprint
    }

    /// `` `cosign.pub`, `team.pub` of Secret apps/keys `` — for messages.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.keys.iter().map(|k| format!("`{}`", k.name)).collect();
        format!("{} of {}", names.join(", "), self.origin)
    }
}

/// The SubjectPublicKeyInfo DER a key was parsed from.
fn spki_der(key: &CosignVerificationKey) -> &[u8] {
    match key {
        CosignVerificationKey::RSA_PSS_SHA256(der)
        | CosignVerificationKey::RSA_PKCS1_SHA256(der)
        | CosignVerificationKey::ECDSA_P256_SHA256_ASN1(der)
        | CosignVerificationKey::ECDSA_P384_SHA384_ASN1(der)
        | CosignVerificationKey::ECDSA_P521_SHA512_ASN1(der)
        | CosignVerificationKey::ED25519(der) => der,
    }
}

/// What a successful verification established; recorded in `status.handlerStatus`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    /// `cosign`.
    pub provider: &'static str,
    /// The manifest digest the signature is for.
    pub manifest_digest: Digest,
    /// The fingerprint of the key set ([`CosignKeys::fingerprint`]).
    pub key_set: Digest,
}

/// One cosign signature: a simple-signing payload and its signature (base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    pub payload: Vec<u8>,
    pub signature: Option<String>,
}

/// The cosign tag of the signatures of `manifest`: `sha256-<hex>.sig`.
pub fn signature_tag(manifest: &Digest) -> String {
    format!("sha256-{}.sig", manifest.hex())
}

/// Decides whether `layers` hold a signature of `manifest` made with one of `keys`: the
/// name of the key that verified, or why none did.
pub fn check_signatures(
    keys: &CosignKeys,
    manifest: &Digest,
    layers: &[SignatureLayer],
) -> std::result::Result<String, String> {
    if layers.is_empty() {
        return Err(format!(
            "no cosign signature (neither the tag `{}` nor an OCI referrer of type `{SIGNATURE_ARTIFACT_TYPE}`)",
            signature_tag(manifest)
        ));
    }
    let mut other_digests = Vec::new();
    let mut unreadable = Vec::new();
    for layer in layers {
        let Some(signature) = &layer.signature else {
            continue;
        };
        let Some(key) = keys.keys.iter().find(|k| {
            k.key
                .verify_signature(
                    Signature::Base64Encoded(signature.as_bytes()),
                    &layer.payload,
                )
                .is_ok()
        }) else {
            continue;
        };
        match signed_digest(&layer.payload) {
            Ok(d) if d == manifest.to_string() => return Ok(key.name.clone()),
            Ok(d) => other_digests.push(format!("`{}` signed {d}", key.name)),
            Err(e) => unreadable.push(format!("`{}` signed a payload that {e}", key.name)),
        }
    }
    let n = layers.len();
    Err(if !other_digests.is_empty() {
        format!(
            "the signatures are for another manifest ({}), not for {manifest}",
            other_digests.join("; ")
        )
    } else if !unreadable.is_empty() {
        unreadable.join("; ")
    } else {
        format!(
            "none of the {n} signature(s) was made by one of the keys (or a signed payload was altered)"
        )
    })
}

/// `critical.image.docker-manifest-digest` of a simple-signing payload whose
/// `critical.type` is cosign's.
fn signed_digest(payload: &[u8]) -> std::result::Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Payload {
        critical: Critical,
    }
    #[derive(serde::Deserialize)]
    struct Critical {
        image: Image,
        #[serde(rename = "type")]
        type_: String,
    }
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        docker_manifest_digest: String,
    }
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("is not a cosign simple-signing payload ({e})"))?;
    if p.critical.type_ != SIMPLE_SIGNING_TYPE {
        return Err(format!(
            "has type {:?}, expected {SIMPLE_SIGNING_TYPE:?}",
            p.critical.type_
        ));
    }
    Ok(p.critical.image.docker_manifest_digest)
}

/// What [`verify`] needs from the OCI source: the registry client, its credentials and how
/// its errors are categorised.
pub(crate) struct Registry<'a> {
    pub client: &'a Client,
    pub auth: &'a RegistryAuth,
    pub reference: &'a OciReference,
    /// Secret-free, for messages ([`crate::oci::classify`]).
    pub auth_description: &'a str,
    pub cache: &'a ChartCache,
}

impl Registry<'_> {
    fn classify(&self, e: oci_client::errors::OciDistributionError) -> Error {
        crate::oci::classify(e, &self.reference.to_string(), self.auth_description)
    }
}

/// Verifies that `manifest` is signed by one of `keys`, unless the cache records that it
/// was verified with these keys before. Every failure to verify is `integrity`, naming the
/// reference and the keys tried; registry failures keep their category.
pub(crate) async fn verify(
    registry: &Registry<'_>,
    keys: &CosignKeys,
    manifest: &Digest,
) -> Result<Verified> {
    let r = registry.reference;
    let record_key = format!(
        "cosign/{}/oci://{}/{}@{manifest}",
        keys.fingerprint(),
        r.registry(),
        r.repository()
    );
    let verified = Verified {
        provider: "cosign",
        manifest_digest: *manifest,
        key_set: *keys.fingerprint(),
    };
    if registry
        .cache
        .get_ref(&record_key)
        .is_some_and(|rec| rec.digest == *manifest)
    {
        return Ok(verified);
    }
    let layers = fetch_signatures(registry, manifest).await?;
    let key = check_signatures(keys, manifest, &layers).map_err(|why| Error::Integrity {
        target: r.to_string(),
        message: format!(
            "cosign verification of {manifest} failed: {why}; keys tried: {}",
            keys.describe()
        ),
    })?;
    tracing::debug!(reference = %r, %manifest, key = %key, "cosign signature verified");
    registry
        .cache
        .put_ref(&record_key, manifest, Access::Private)?;
    Ok(verified)
}

/// The signature layers of `manifest`: from the `.sig` tag, else from its referrers.
async fn fetch_signatures(
    registry: &Registry<'_>,
    manifest: &Digest,
) -> Result<Vec<SignatureLayer>> {
    let r = registry.reference;
    let by_tag = |tag: String| Reference::with_tag(r.registry().into(), r.repository().into(), tag);
    let by_digest =
        |digest: String| Reference::with_digest(r.registry().into(), r.repository().into(), digest);
    let sig_ref = by_tag(signature_tag(manifest));
    match registry
        .client
        .pull_manifest_raw(&sig_ref, registry.auth, MANIFEST_MEDIA_TYPES)
        .await
    {
        Ok((bytes, _)) => return layers_of(registry, &sig_ref, &bytes).await,
        Err(e) => {
            let e = registry.classify(e);
            if e.category() != ErrorCategory::NotFound {
                return Err(e);
            }
        }
    }
    // No tag: the registry's referrers API, or the referrers tag schema (an empty index
    // when neither is there). A registry that answers the referrers API with anything but
    // a refusal of the credentials or a transport failure has no referrers to offer.
    let index = match registry
        .client
        .pull_referrers(
            &by_digest(manifest.to_string()),
            Some(SIGNATURE_ARTIFACT_TYPE),
        )
        .await
    {
        Ok(index) => index,
        Err(e) => {
            let e = registry.classify(e);
            if matches!(
                e.category(),
                ErrorCategory::Auth | ErrorCategory::Network | ErrorCategory::Tls
            ) {
                return Err(e);
            }
            tracing::debug!(reference = %r, error = %e, "no OCI referrers");
            return Ok(Vec::new());
        }
    };
    let mut layers = Vec::new();
    for entry in index.manifests.iter().take(MAX_SIGNATURE_MANIFESTS) {
        let at = by_digest(entry.digest.clone());
        let (bytes, _) = registry
            .client
            .pull_manifest_raw(&at, registry.auth, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(|e| registry.classify(e))?;
        layers.extend(layers_of(registry, &at, &bytes).await?);
    }
    Ok(layers)
}

/// The simple-signing layers of a signature manifest, with their payloads.
async fn layers_of(
    registry: &Registry<'_>,
    at: &Reference,
    manifest: &[u8],
) -> Result<Vec<SignatureLayer>> {
    let target = registry.reference.to_string();
    let parsed: OciImageManifest =
        serde_json::from_slice(manifest).map_err(|e| Error::Integrity {
            target: target.clone(),
            message: format!(
                "the cosign signature manifest {at} is not an OCI image manifest: {e}"
            ),
        })?;
    let descriptors: Vec<&OciDescriptor> = parsed
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
        .take(MAX_SIGNATURE_LAYERS)
        .collect();
    let mut out = Vec::with_capacity(descriptors.len());
    for layer in descriptors {
        if !(0..=MAX_PAYLOAD_BYTES).contains(&layer.size) {
            return Err(Error::Integrity {
                target,
                message: format!(
                    "a cosign payload in {at} is {} bytes, over the limit of {MAX_PAYLOAD_BYTES}",
                    layer.size
                ),
            });
        }
        let mut payload = Vec::new();
        registry
            .client
            .pull_blob(at, layer, &mut payload)
            .await
            .map_err(|e| registry.classify(e))?;
        let signature = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            .cloned();
        out.push(SignatureLayer { payload, signature });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigstore::crypto::SigningScheme;

    struct Signer {
        pem: String,
        signer: sigstore::crypto::SigStoreSigner,
    }

    fn signer(scheme: SigningScheme) -> Signer {
        let signer = scheme.create_signer().expect("key generation");
        let pem = signer
            .to_sigstore_keypair()
            .expect("key pair")
            .public_key_to_pem()
            .expect("pem");
        Signer { pem, signer }
    }

    fn keys(named: &[(&str, &Signer)]) -> CosignKeys {
        CosignKeys::from_entries(
            "Secret apps/keys",
            named.iter().map(|(n, s)| (*n, s.pem.as_bytes())),
        )
        .expect("keys")
    }

    fn payload(digest: &str, type_: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/c"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{type_}"}},"optional":null}}"#
        )
        .into_bytes()
    }

    fn signed(s: &Signer, payload: Vec<u8>) -> SignatureLayer {
        use base64::Engine as _;
        let sig = s.signer.sign(&payload).expect("sign");
        SignatureLayer {
            payload,
            signature: Some(base64::engine::general_purpose::STANDARD.encode(sig)),
        }
    }

    #[test]
    fn signatures_decide() {
        let ours = signer(SigningScheme::ECDSA_P256_SHA256_ASN1);
        let second = signer(SigningScheme::ED25519);
        let stranger = signer(SigningScheme::ECDSA_P256_SHA256_ASN1);
        let set = keys(&[("cosign.pub", &ours), ("team.pub", &second)]);
        let digest = Digest::of(b"manifest");
        let d = digest.to_string();
        let other = Digest::of(b"other").to_string();
        let mut tampered = signed(&ours, payload(&d, SIMPLE_SIGNING_TYPE));
        tampered.payload = payload(&other, SIMPLE_SIGNING_TYPE);
        let unsigned = SignatureLayer {
            payload: payload(&d, SIMPLE_SIGNING_TYPE),
            signature: None,
        };
        let table: Vec<(&str, Vec<SignatureLayer>, std::result::Result<&str, &str>)> = vec![
            (
                "first key",
                vec![signed(&ours, payload(&d, SIMPLE_SIGNING_TYPE))],
                Ok("cosign.pub"),
            ),
            (
                "second key",
                vec![signed(&second, payload(&d, SIMPLE_SIGNING_TYPE))],
                Ok("team.pub"),
            ),
            (
                "one good among bad",
                vec![
                    signed(&stranger, payload(&d, SIMPLE_SIGNING_TYPE)),
                    signed(&ours, payload(&d, SIMPLE_SIGNING_TYPE)),
                ],
                Ok("cosign.pub"),
            ),
            ("no signature", vec![], Err("no cosign signature")),
            (
                "no annotation",
                vec![unsigned],
                Err("none of the 1 signature(s)"),
            ),
            (
                "another key",
                vec![signed(&stranger, payload(&d, SIMPLE_SIGNING_TYPE))],
                Err("none of the 1 signature(s)"),
            ),
            (
                "another digest",
                vec![signed(&ours, payload(&other, SIMPLE_SIGNING_TYPE))],
                Err("for another manifest"),
            ),
            (
                "tampered payload",
                vec![tampered],
                Err("none of the 1 signature(s)"),
            ),
            (
                "not an image signature",
                vec![signed(&ours, payload(&d, "something else"))],
                Err("has type"),
            ),
            (
                "not JSON",
                vec![signed(&ours, b"hello".to_vec())],
                Err("not a cosign simple-signing payload"),
            ),
        ];
        for (name, layers, want) in table {
            let got = check_signatures(&set, &digest, &layers);
            match (want, &got) {
                (Ok(k), Ok(g)) => assert_eq!(g, k, "{name}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{name}: {g}"),
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn key_sets_parse_and_fingerprint() {
        let a = signer(SigningScheme::ECDSA_P256_SHA256_ASN1);
        let b = signer(SigningScheme::ECDSA_P256_SHA256_ASN1);
        let ab = keys(&[("a.pub", &a), ("b.pub", &b)]);
        let ba = keys(&[("x.pub", &b), ("y.pub", &a)]);
        assert_eq!(
            ab.fingerprint(),
            ba.fingerprint(),
            "names and order do not matter"
        );
        assert_ne!(ab.fingerprint(), keys(&[("a.pub", &a)]).fingerprint());
        assert!(
            ab.describe()
                .contains("`a.pub`, `b.pub` of Secret apps/keys")
        );

        let bad: Vec<(&str, &[u8], &str)> = vec![
            ("ca.crt", b"x", "holds no cosign public key"),
            ("cosign.pub", b"not pem", "key `cosign.pub` is not a PEM public key"),
            (
                "cosign.pub",
                b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
                "key `cosign.pub` is not a PEM public key",
            ),
            (
                "cosign.pub",
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "key `cosign.pub` is not a PEM public key",
            ),
        ];
        for (name, value, want) in bad {
            let err =
                CosignKeys::from_entries("Secret apps/keys", [(name, value)]).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn signature_tag_is_cosigns() {
        let d = Digest::of(b"x");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }
}
