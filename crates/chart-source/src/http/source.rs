//! [`HttpSource`]: a chart in a classic Helm repository (`index.yaml` + `.tgz`).
//!
//! `locate()`:
//! 1. the repository's parsed index from [`HttpShared`] (fresh in memory, revalidated with a
//!    conditional request, or fetched and parsed);
//! 2. the version: an entry whose version string equals the request, else the highest
//!    version satisfying the Helm constraint; none → not-found listing nearby versions;
//! 3. the chart digest: the index's `digest`, or the cache's record for this entry
//!    (`chart URL + version + created`) — if that chart is cached, done, no download;
//! 4. otherwise, under the cache's lock for the entry (single flight, cross-process): the
//!    archive is streamed into the cache (size-capped), verified against the index digest
//!    when the index has one, checked ([`crate::archive`]) against the chart name and
//!    version, and the record is written.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt as _;
use reqwest::header::HeaderMap;
use url::Url;

use crate::archive::{ChartMeta, check_archive_for};
use crate::cache::Access;
use crate::cache::ChartCache;
use crate::chart_identity::Requested;
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::http::client::{HttpShared, Requester, check_status, classify, redact};
use crate::http::index::IndexEntry;
use crate::source::{ChartSource, LocatedChart, SourceAuth};
use crate::spec::HttpSourceSpec;
use crate::tls::TlsSettings;

/// A chart in an HTTP chart repository.
pub struct HttpSource {
    spec: HttpSourceSpec,
    /// The repository URL with a trailing slash (relative chart URLs resolve against it).
    repo_url: Url,
    client: reqwest::Client,
    credentials: Option<Credentials>,
    identity: String,
    cache: Arc<ChartCache>,
    shared: Arc<HttpShared>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("repository", &redact(&self.repo_url))
            .field("chart", &self.spec.chart)
            .field("version", &self.spec.version)
            .field(
                "auth",
                &self.credentials.as_ref().map(Credentials::describe),
            )
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    pub fn new(
        spec: HttpSourceSpec,
        auth: SourceAuth,
        cache: Arc<ChartCache>,
        shared: Arc<HttpShared>,
    ) -> Result<HttpSource> {
        let mut repo_url = spec.repository.url.clone();
        if !matches!(repo_url.scheme(), "http" | "https") {
            return Err(Error::config(
                "source.repository.url",
                format!(
                    "`{}`: an HTTP chart repository URL starts with http:// or https://",
                    redact(&repo_url)
                ),
            ));
        }
        if repo_url.cannot_be_a_base() || repo_url.host().is_none() {
            return Err(Error::config(
                "source.repository.url",
                format!("`{}` has no host", redact(&repo_url)),
            ));
        }
        // Credentials in the URL itself are not supported: they would leak into messages.
        if !repo_url.username().is_empty() || repo_url.password().is_some() {
            return Err(Error::config(
                "source.repository.url",
                "credentials in the URL are not accepted; use `authentication.secretRef`",
            ));
        }
        repo_url.set_query(None);
        repo_url.set_fragment(None);
        if !repo_url.path().ends_with('/') {
            let path = format!("{}/", repo_url.path());
            repo_url.set_path(&path);
        }
        let tls = TlsSettings::new(spec.tls.insecure_skip_tls_verify, auth.ca_pem.as_deref())?;
        let client = shared.client(&tls)?;
        let credentials = auth.credentials;
        let identity = format!(
            "{} tls={}{}",
            shared.identity(credentials.as_ref()),
            if tls.insecure_skip_verify() {
                "insecure"
            } else {
                "verify"
            },
            tls.ca_digest()
                .map(|d| format!(" ca={}", &d.hex()[..16]))
                .unwrap_or_default()
        );
        Ok(HttpSource {
            spec,
            repo_url,
            client,
            credentials,
            identity,
            cache,
            shared,
        })
    }

    fn requester(&self) -> Requester<'_> {
        Requester {
            client: &self.client,
            credentials: self.credentials.as_ref(),
            credentials_origin: self.repo_url.origin(),
            pass_credentials: self.spec.pass_credentials,
            identity: self.identity.clone(),
        }
    }

    fn target(&self) -> String {
        format!("{} chart `{}`", redact(&self.repo_url), self.spec.chart)
    }

    /// The chart URL of an entry (absolute, or relative to the repository URL).
    fn chart_url(&self, entry: &IndexEntry) -> Result<Url> {
        let Some(first) = entry.urls.first() else {
            return Err(Error::Integrity {
                target: self.target(),
                message: format!("index entry {} has no download URL", entry.raw_version),
            });
        };
        self.repo_url.join(first).map_err(|e| Error::Integrity {
            target: self.target(),
            message: format!(
                "index entry {} has an invalid URL `{first}`: {e}",
                entry.raw_version
            ),
        })
    }

    async fn check(&self, path: std::path::PathBuf) -> Result<ChartMeta> {
        check_archive_for(path, self.shared.limits().archive, self.target()).await
    }

    /// The chart the index entry promised: its name and version.
    fn located(
        &self,
        path: PathBuf,
        meta: ChartMeta,
        version: &str,
        cache_hit: bool,
    ) -> LocatedChart {
        let requested = Requested {
            name: self.spec.chart.clone(),
            version: Some(version.to_string()),
        };
        LocatedChart::new(path, meta, &requested, cache_hit)
    }

    /// A cached, intact chart with `digest`, if any.
    async fn cached(&self, digest: &Digest, version: &str) -> Result<Option<LocatedChart>> {
        let found = self.cache.intact(digest, |path| self.check(path)).await?;
        Ok(found.map(|(path, meta)| self.located(path, meta, version, true)))
    }

    /// The known digest of an entry: the index's, else the cache's record.
    fn known_digest(&self, entry: &IndexEntry, key: &str) -> Option<Digest> {
        entry
            .digest
            .or_else(|| self.cache.get_ref(key).map(|r| r.digest))
    }

    async fn download(&self, url: &Url, entry: &IndexEntry) -> Result<crate::cache::CachedEntry> {
        let target = redact(url);
        let req = self.requester();
        let response = req.get(url, HeaderMap::new()).await?;
        let response = check_status(response, &target, req.auth_description())?;
        let max = self.shared.limits().archive.max_compressed_bytes;
        if response.content_length().unwrap_or(0) > max {
            return Err(Error::Integrity {
                target,
                message: format!("chart archive is larger than the limit of {max} bytes"),
            });
        }
        self.shared.count_download();
        let stream_target = target.clone();
        let stream = response
            .bytes_stream()
            .map(move |chunk| chunk.map_err(|e| classify(&e, &stream_target)));
        self.cache
            .store_stream(stream, entry.digest.as_ref(), max, &target)
            .await
            .map_err(|e| match e {
                Error::Integrity { target, message } if message.contains("expected") => {
                    Error::Integrity {
                        target,
                        message: format!(
                            "{message} (the repository index's digest for version {})",
                            entry.raw_version
                        ),
                    }
                }
                other => other,
            })
    }
}

#[async_trait::async_trait]
impl ChartSource for HttpSource {
    async fn locate(&self) -> Result<LocatedChart> {
        let req = self.requester();
        let index = self.shared.index(&req, &self.repo_url).await?;
        let entry = index.resolve(
            &self.spec.chart,
            &self.spec.version,
            &redact(&self.repo_url),
        )?;
        if entry.digest_invalid {
            return Err(Error::Integrity {
                target: self.target(),
                message: format!(
                    "the index's digest for version {} is not a sha256 digest",
                    entry.raw_version
                ),
            });
        }
        if entry.deprecated {
            tracing::warn!(chart = %self.spec.chart, version = %entry.raw_version, "chart version is deprecated");
        }
        let url = self.chart_url(entry)?;
        let version = entry.raw_version.to_string();
        let key = format!(
            "http:{} {}@{} {}",
            redact(&url),
            self.spec.chart,
            version,
            entry.created.as_deref().unwrap_or("")
        );
        if let Some(digest) = self.known_digest(entry, &key)
            && let Some(hit) = self.cached(&digest, &version).await?
        {
            return Ok(hit);
        }
        let _lock = self.cache.lock(&key).await?;
        if let Some(digest) = self.known_digest(entry, &key)
            && let Some(hit) = self.cached(&digest, &version).await?
        {
            return Ok(hit);
        }
        let stored = self.download(&url, entry).await?;
        let _pin = self.cache.pin(&stored.digest);
        let meta = self.check(stored.path.clone()).await?;
        // The index was fetched with this source's credentials: every locate of this entry
        // is authorised by its own index fetch, so the access kind is informational here.
        let access = if self.credentials.is_some() {
            Access::Private
        } else {
            Access::Public
        };
        self.cache.put_ref(&key, &stored.digest, access)?;
        tracing::debug!(chart = %self.spec.chart, version = %version, digest = %stored.digest, "chart downloaded");
        Ok(self.located(stored.path, meta, &version, false))
    }

    fn describe(&self) -> String {
        format!(
            "{} {}@{}",
            redact(&self.repo_url),
            self.spec.chart,
            self.spec.version
        )
    }
}
