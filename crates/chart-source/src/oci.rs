//! OCI registry chart source, on `oci-client` (the ORAS/CNCF client).
//!
//! `locate()`:
//! 1. the manifest digest: the pinned `@sha256:` digest, or one `HEAD` (GET as fallback) of
//!    the tag's manifest;
//! 2. the cache's record `registry/repository@manifest-digest → chart digest` (a manifest
//!    digest is immutable, so the record never goes stale): when present and the chart is
//!    cached, done — no further request (a pinned reference needs none at all);
//! 3. otherwise, under the cache's lock for that manifest (single flight, cross-process):
//!    the manifest is fetched and verified, its config media type must be Helm's, the chart
//!    layer (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`, or the legacy
//!    `application/tar+gzip`) is streamed into the cache, verified against its digest;
//! 4. the archive is checked ([`crate::archive`]); a chart whose `Chart.yaml` names another
//!    chart or version than the reference (a mirror, a short tag) is used as helm uses it,
//!    and the difference is reported in [`LocatedChart::differs_from_reference`].
//!
//! Errors carry a category from the registry's answer: 401/403/`UNAUTHORIZED`/`DENIED` →
//! auth, 404/`MANIFEST_UNKNOWN`/`NAME_UNKNOWN` → not-found, refused connections, timeouts,
//! 5xx and 429 → network, certificate and handshake failures → tls, digest mismatches and
//! non-chart artifacts → integrity. Messages name the reference, never the credentials.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::archive::{ArchiveLimits, ChartMeta, check_archive_for};
use crate::cache::{Access, ChartCache};
use crate::chart_identity::Requested;
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::{Error, Result, chain};
use crate::oci_clients::{ClientKey, OciClients};
use crate::source::{ChartSource, LocatedChart, SourceAuth};
use crate::spec::OciSourceSpec;
use crate::tls::TlsSettings;

/// Helm's OCI config media type.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Helm's chart layer media type.
pub const HELM_CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The chart layer media type of Helm's early OCI support.
pub const LEGACY_CHART_LAYER_MEDIA_TYPE: &str = "application/tar+gzip";

const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A chart in an OCI registry.
pub struct OciSource {
    spec: OciSourceSpec,
    /// Where clients come from, and which one this source uses.
    clients: Arc<OciClients>,
    client_key: ClientKey,
    /// Verification against the platform roots plus `caSecretRef` ([`crate::tls`]).
    tls: TlsSettings,
    /// Taken from the pool at the first request: a digest-pinned chart already cached
    /// needs no client at all.
    client: OnceLock<Client>,
    /// Holds the secret; never printed (no `Debug` on this struct prints it). Set when the
    /// source is made, or — for an identity token — at the first request, once exchanged.
    auth: tokio::sync::OnceCell<RegistryAuth>,
    /// Docker's `identitytoken`, exchanged for [`OciSource::auth`] at the first request.
    identity_token: Option<crate::credentials::SecretString>,
    auth_description: String,
    cache: Arc<ChartCache>,
    limits: ArchiveLimits,
    /// The keys of `verify.secretRef`: the manifest must carry a cosign signature by one.
    cosign_keys: Option<crate::verify::CosignKeys>,
}

impl std::fmt::Debug for OciSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciSource")
            .field("reference", &self.spec.reference.to_string())
            .field("auth", &self.auth_description)
            .field("plain_http", &self.spec.plain_http)
            .finish_non_exhaustive()
    }
}

impl OciSource {
    /// [`OciSource::in_pool`] with a pool of its own (a source used alone).
    pub fn new(spec: OciSourceSpec, auth: SourceAuth, cache: Arc<ChartCache>) -> Result<OciSource> {
        Self::in_pool(spec, auth, cache, Arc::new(OciClients::new(1)))
    }

    /// Checks the TLS settings and takes the credentials; the client itself is taken from
    /// `clients`, shared with other sources (the controller's pool), at the first request.
    /// A CA bundle without a PEM certificate is a config error.
    pub fn in_pool(
        spec: OciSourceSpec,
        auth: SourceAuth,
        cache: Arc<ChartCache>,
        clients: Arc<OciClients>,
    ) -> Result<OciSource> {
        let tls = TlsSettings::new(spec.tls.insecure_skip_tls_verify, auth.ca_pem.as_deref())?;
        let client_key = ClientKey {
            plain_http: spec.plain_http,
            insecure_skip_tls_verify: tls.insecure_skip_verify(),
            ca: tls.ca_digest(),
            identity: auth
                .credentials
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), Credentials::identity),
        };
        let auth_description = auth
            .credentials
            .as_ref()
            .map_or_else(|| "anonymous".to_string(), Credentials::describe);
        let (registry_auth, identity_token) = match &auth.credentials {
            None => (Some(RegistryAuth::Anonymous), None),
            Some(Credentials::Basic { username, password }) => (
                Some(RegistryAuth::Basic(
                    username.clone(),
                    password.expose().to_string(),
                )),
                None,
            ),
            Some(Credentials::Bearer { token }) => {
                (Some(RegistryAuth::Bearer(token.expose().to_string())), None)
            }
            Some(Credentials::IdentityToken { token }) => (None, Some(token.clone())),
        };
        if spec.verify.is_some() && auth.cosign_keys.is_none() {
            return Err(Error::config(
                "source.verify.secretRef",
                "the cosign public keys were not resolved",
            ));
        }
        Ok(OciSource {
            cosign_keys: auth.cosign_keys.filter(|_| spec.verify.is_some()),
            spec,
            clients,
            client_key,
            tls,
            client: OnceLock::new(),
            auth: tokio::sync::OnceCell::new_with(registry_auth),
            identity_token,
            auth_description,
            cache,
            limits: ArchiveLimits::default(),
        })
    }

    /// The registry credentials of this source; an identity token is exchanged at the
    /// registry's token service the first time ([`crate::identity_token`]).
    async fn auth(&self) -> Result<&RegistryAuth> {
        self.auth
            .get_or_try_init(|| async {
                let Some(refresh) = &self.identity_token else {
                    return Ok(RegistryAuth::Anonymous);
                };
                let r = &self.spec.reference;
                let scheme = if self.spec.plain_http {
                    "http"
                } else {
                    "https"
                };
                let client = self
                    .tls
                    .reqwest_builder()
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| Error::Tls {
                        target: self.target(),
                        message: format!("cannot set up TLS: {}", chain(&e)),
                    })?;
                let access = crate::identity_token::exchange(
                    &client,
                    &format!("{scheme}://{}", r.registry()),
                    self.spec.plain_http,
                    r.repository(),
                    refresh,
                    &self.target(),
                )
                .await?;
                Ok(access.map_or(RegistryAuth::Anonymous, |token| {
                    RegistryAuth::Bearer(token.expose().to_string())
                }))
            })
            .await
    }

    /// The client for this source's TLS settings and credentials.
    fn client(&self) -> Result<&Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = self.clients.get(
            &self.client_key,
            || self.client_config(),
            |e| {
                if self.tls.ca_digest().is_none() {
                    Error::Tls {
                        target: self.target(),
                        message: format!("cannot set up TLS: {}", chain(&e)),
                    }
                } else {
                    Error::config(
                        "source.caSecretRef",
                        format!("key `ca.crt` cannot be used: {}", chain(&e)),
                    )
                }
            },
        )?;
        Ok(self.client.get_or_init(|| client))
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig {
            protocol: if self.spec.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            // A chart is never an image index: refuse one rather than pick a platform.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        self.tls.apply_to_oci(&mut config, self.spec.plain_http);
        config
    }

    /// Replaces the default archive limits.
    pub fn with_limits(mut self, limits: ArchiveLimits) -> Self {
        self.limits = limits;
        self
    }

    fn target(&self) -> String {
        self.spec.reference.to_string()
    }

    fn reference_by_digest(&self, digest: &Digest) -> Reference {
        let r = &self.spec.reference;
        Reference::with_digest(
            r.registry().to_string(),
            r.repository().to_string(),
            digest.to_string(),
        )
    }

    async fn manifest_digest(&self) -> Result<Digest> {
        let r = &self.spec.reference;
        if let Some(d) = r.digest() {
            return Ok(*d);
        }
        let tag = r.tag().unwrap_or("latest");
        let by_tag = Reference::with_tag(
            r.registry().to_string(),
            r.repository().to_string(),
            tag.to_string(),
        );
        let digest = self
            .client()?
            .fetch_manifest_digest(&by_tag, self.auth().await?)
            .await
            .map_err(|e| self.classify(e))?;
        digest.parse().map_err(|e| Error::Integrity {
            target: self.target(),
            message: format!(
                "the registry answered with an invalid manifest digest `{digest}`: {e}"
            ),
        })
    }

    /// A record plus a cached, intact chart for `key`: the chart, without downloading it.
    ///
    /// The cache is shared by every Component, so a chart that was served only with
    /// credentials is handed out only when the registry has accepted *these* credentials
    /// for the manifest: `authorised` (a tag was just resolved with them), or earlier in
    /// this process, or now with one manifest `HEAD`. A public chart needs no request —
    /// a digest-pinned reference then locates with the registry down.
    async fn recorded(
        &self,
        key: &str,
        manifest_digest: &Digest,
        authorised: bool,
    ) -> Result<Option<LocatedChart>> {
        let Some(record) = self.cache.get_ref(key) else {
            return Ok(None);
        };
        if !authorised
            && record.access == Access::Private
            && !self.clients.was_served(&self.client_key, key)
        {
            self.client()?
                .fetch_manifest_digest(
                    &self.reference_by_digest(manifest_digest),
                    self.auth().await?,
                )
                .await
                .map_err(|e| self.classify(e))?;
        }
        let hit = self.cached_entry(&record.digest).await?;
        if hit.is_some() {
            self.clients.served(&self.client_key, key);
        }
        Ok(hit)
    }

    async fn cached_entry(&self, digest: &Digest) -> Result<Option<LocatedChart>> {
        let found = self.cache.intact(digest, |path| self.check(path)).await?;
        Ok(found.map(|(path, meta)| self.located(path, meta, true)))
    }

    async fn check(&self, path: std::path::PathBuf) -> Result<ChartMeta> {
        check_archive_for(path, self.limits, self.target()).await
    }

    fn located(&self, path: std::path::PathBuf, meta: ChartMeta, cache_hit: bool) -> LocatedChart {
        LocatedChart::new(path, meta, &Requested::oci(&self.spec.reference), cache_hit)
    }

    fn chart_layer<'m>(&self, manifest: &'m OciImageManifest) -> Result<&'m OciDescriptor> {
        let not_a_chart = |message: String| Error::Integrity {
            target: self.target(),
            message,
        };
        if manifest.config.media_type != HELM_CONFIG_MEDIA_TYPE {
            return Err(not_a_chart(format!(
                "not a Helm chart: config media type is `{}`, expected `{HELM_CONFIG_MEDIA_TYPE}`",
                manifest.config.media_type
            )));
        }
        let mut layers = manifest.layers.iter().filter(|l| {
            l.media_type == HELM_CHART_LAYER_MEDIA_TYPE
                || l.media_type == LEGACY_CHART_LAYER_MEDIA_TYPE
        });
        match (layers.next(), layers.next()) {
            (Some(layer), None) => Ok(layer),
            (None, _) => Err(not_a_chart(format!(
                "the manifest has no chart layer (`{HELM_CHART_LAYER_MEDIA_TYPE}`)"
            ))),
            (Some(_), Some(_)) => Err(not_a_chart(
                "the manifest has more than one chart layer".into(),
            )),
        }
    }

    /// Records that the registry served manifest `key`, with chart `digest`, to this
    /// source's credentials (on disk for the cache, in memory for the identity).
    fn record(&self, key: &str, digest: &Digest) -> Result<()> {
        let anonymous = self.identity_token.is_none()
            && matches!(self.auth.get(), Some(RegistryAuth::Anonymous));
        let access = if anonymous {
            Access::Public
        } else {
            Access::Private
        };
        self.cache.put_ref(key, digest, access)?;
        self.clients.served(&self.client_key, key);
        Ok(())
    }

    /// Maps an oci-client error to our categories.
    fn classify(&self, err: OciDistributionError) -> Error {
        classify(err, &self.target(), &self.auth_description)
    }
}

#[async_trait::async_trait]
impl ChartSource for OciSource {
    /// The manifest digest, its signature when `verify` asks for one ([`crate::verify`]),
    /// then the chart.
    async fn locate(&self) -> Result<LocatedChart> {
        let manifest_digest = self.manifest_digest().await?;
        let verified = match &self.cosign_keys {
            Some(keys) => Some(
                crate::verify::verify(&self.verify_registry().await?, keys, &manifest_digest)
                    .await?,
            ),
            None => None,
        };
        let mut located = self.locate_manifest(manifest_digest).await?;
        located.verified = verified;
        Ok(located)
    }

    fn describe(&self) -> String {
        self.target()
    }
}

impl OciSource {
    async fn verify_registry(&self) -> Result<crate::verify::Registry<'_>> {
        Ok(crate::verify::Registry {
            client: self.client()?,
            auth: self.auth().await?,
            reference: &self.spec.reference,
            auth_description: &self.auth_description,
            cache: &self.cache,
        })
    }

    async fn locate_manifest(&self, manifest_digest: Digest) -> Result<LocatedChart> {
        let r = &self.spec.reference;
        let key = format!(
            "oci://{}/{}@{manifest_digest}",
            r.registry(),
            r.repository()
        );
        // A tag was just resolved with this source's credentials; a pinned digest was not.
        let authorised = r.digest().is_none();
        if let Some(hit) = self.recorded(&key, &manifest_digest, authorised).await? {
            return Ok(hit);
        }
        let _lock = self.cache.lock(&key).await?;
        // Another locate may have finished while we waited.
        if let Some(hit) = self.recorded(&key, &manifest_digest, authorised).await? {
            return Ok(hit);
        }

        let by_digest = self.reference_by_digest(&manifest_digest);
        let (bytes, _) = self
            .client()?
            .pull_manifest_raw(&by_digest, self.auth().await?, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(|e| self.classify(e))?;
        if Digest::of(&bytes) != manifest_digest {
            return Err(Error::Integrity {
                target: self.target(),
                message: format!(
                    "manifest content does not match its digest {manifest_digest} (got {})",
                    Digest::of(&bytes)
                ),
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::Integrity {
                target: self.target(),
                message: format!("not an OCI image manifest: {e}"),
            })?;
        let layer = self.chart_layer(&manifest)?;
        let layer_digest: Digest = layer.digest.parse().map_err(|e| Error::Integrity {
            target: self.target(),
            message: format!("chart layer digest `{}`: {e}", layer.digest),
        })?;
        let max = self.limits.max_compressed_bytes;
        if u64::try_from(layer.size).unwrap_or(u64::MAX) > max {
            return Err(Error::Integrity {
                target: self.target(),
                message: format!(
                    "chart layer is {} bytes, over the limit of {max}",
                    layer.size
                ),
            });
        }

        // The same chart content may be cached under another reference.
        if let Some(hit) = self.cached_entry(&layer_digest).await? {
            self.record(&key, &layer_digest)?;
            return Ok(hit);
        }
        let stream = self
            .client()?
            .pull_blob_stream(&by_digest, layer)
            .await
            .map_err(|e| self.classify(e))?;
        let target = self.target();
        let stream = stream.map(|chunk| chunk.map_err(|e| classify_download(&e, &target)));
        let entry = self
            .cache
            .store_stream(stream, Some(&layer_digest), max, &self.target())
            .await?;
        let _pin = self.cache.pin(&entry.digest);
        let meta = self.check(entry.path.clone()).await?;
        self.record(&key, &layer_digest)?;
        tracing::debug!(reference = %self.target(), digest = %entry.digest, "chart downloaded");
        Ok(self.located(entry.path, meta, false))
    }
}

/// The category of an oci-client error, with a message naming `target`.
pub fn classify(err: OciDistributionError, target: &str, auth: &str) -> Error {
    let target = target.to_string();
    let auth_message = |detail: &str| {
        if auth == "anonymous" {
            format!("{detail}: the registry requires credentials (set `authentication`)")
        } else {
            format!("{detail}: the registry refused the credentials ({auth})")
        }
    };
    match err {
        OciDistributionError::UnauthorizedError { .. } => Error::Auth {
            target,
            message: auth_message("401 Unauthorized"),
        },
        OciDistributionError::AuthenticationFailure(m) => Error::Auth {
            target,
            message: auth_message(&format!("authentication failed ({m})")),
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let detail = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let has = |c: &OciErrorCode| codes.contains(&c);
            if has(&OciErrorCode::Unauthorized) || has(&OciErrorCode::Denied) {
                Error::Auth {
                    target,
                    message: auth_message(&detail),
                }
            } else if has(&OciErrorCode::NameUnknown) {
                Error::NotFound {
                    target,
                    message: format!("repository not found in the registry ({detail})"),
                }
            } else if has(&OciErrorCode::ManifestUnknown) {
                Error::NotFound {
                    target,
                    message: format!("no such tag or digest (or no such repository) ({detail})"),
                }
            } else if has(&OciErrorCode::BlobUnknown) || has(&OciErrorCode::NotFound) {
                Error::NotFound {
                    target,
                    message: format!("not found ({detail})"),
                }
            } else if has(&OciErrorCode::Toomanyrequests) {
                Error::Network {
                    target,
                    message: format!("rate limited by the registry ({detail})"),
                }
            } else {
                Error::Integrity {
                    target,
                    message: format!("the registry refused the request ({detail})"),
                }
            }
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let message = message.chars().take(200).collect::<String>();
            match code {
                400 if message.contains("HTTP request to an HTTPS server") => Error::Tls {
                    target,
                    message: "the registry speaks TLS: remove `plainHTTP: true`".into(),
                },
                401 | 403 => Error::Auth {
                    target,
                    message: auth_message(&format!("HTTP {code}")),
                },
                404 => Error::NotFound {
                    target,
                    message: format!("HTTP 404 {message}"),
                },
                429 | 500..=599 => Error::Network {
                    target,
                    message: format!("HTTP {code} from the registry {message}"),
                },
                _ => Error::Integrity {
                    target,
                    message: format!("unexpected HTTP {code} from the registry {message}"),
                },
            }
        }
        OciDistributionError::ImageManifestNotFoundError(m) => Error::NotFound {
            target,
            message: format!("manifest not found ({m})"),
        },
        OciDistributionError::DigestError(e) => Error::Integrity {
            target,
            message: format!("content does not match its digest: {e}"),
        },
        OciDistributionError::ImageIndexParsingNoPlatformResolverError => Error::Integrity {
            target,
            message: "the reference is an image index, not a Helm chart".into(),
        },
        OciDistributionError::RequestError(e) => classify_transport(&e, target),
        OciDistributionError::IoError(e) => classify_transport(&e, target),
        other => {
            // Parsing and spec violations: the registry served something that is not a chart.
            Error::Integrity {
                target,
                message: other.to_string(),
            }
        }
    }
}

/// A failure while the chart layer streams in. oci-client verifies the layer against its
/// digest as it streams: a mismatch is the content's fault (integrity, never retried as
/// transient); anything else broke the transfer (network).
fn classify_download(err: &std::io::Error, target: &str) -> Error {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
    {
        Some(digest_error) => Error::Integrity {
            target: target.to_string(),
            message: format!("the chart layer does not match its digest: {digest_error}"),
        },
        None => Error::Network {
            target: target.to_string(),
            message: format!("chart download interrupted: {err}"),
        },
    }
}

/// Transport failures: TLS when any error in the chain speaks of certificates or the
/// handshake, network otherwise.
fn classify_transport(err: &(dyn StdError + 'static), target: String) -> Error {
    let mut chain = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        chain.push(e.to_string());
        current = e.source();
    }
    // The outermost message carries the URL (whose host may contain any word): skip it.
    let lower = chain
        .iter()
        .skip(usize::from(chain.len() > 1))
        .map(|m| m.to_lowercase())
        .collect::<Vec<_>>()
        .join(": ");
    let tls_words = [
        "certificate",
        "handshake",
        "tls",
        "invalidcontenttype",
        "corrupt message",
        "unknownissuer",
        "notvalidforname",
    ];
    // The innermost message is the most specific; keep the whole chain short.
    let detail = chain.last().cloned().unwrap_or_default();
    if tls_words.iter().any(|w| lower.contains(w)) {
        Error::Tls {
            target,
            message: format!(
                "TLS failure ({detail}); add the registry's CA with `caSecretRef`, or set \
                 `plainHTTP: true` if the registry does not speak TLS"
            ),
        }
    } else {
        let what = if lower.contains("timed out") || lower.contains("timeout") {
            "timed out"
        } else if lower.contains("refused") || lower.contains("connect") {
            "cannot connect"
        } else {
            "request failed"
        };
        Error::Network {
            target,
            message: format!("{what} ({detail})"),
        }
    }
}
