//! HTTP plumbing shared by every HTTP chart source: one `reqwest` (rustls) client per TLS
//! configuration, requests with credentials scoped to a host (redirects followed by hand so
//! credentials never follow a redirect to another host), bounded streaming bodies, error
//! categories, and the parsed-index cache (conditional requests, TTL, LRU bound, single flight).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use url::Url;

use crate::archive::ArchiveLimits;
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::error::chain;
use crate::error::{Error, Result};
use crate::http::index::{DEFAULT_MAX_INDEX_BYTES, RepoIndex};
use crate::tls::TlsSettings;

/// Limits and cache settings of the HTTP source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest `index.yaml` accepted, in bytes (default 64 MiB).
    pub max_index_bytes: u64,
    /// How long a fetched index is used without asking the server again (default 5 min).
    /// After that, a conditional request (ETag / Last-Modified) revalidates it.
    pub index_ttl: Duration,
    /// How many repository indexes are kept in memory (least recently used dropped first).
    pub max_cached_indexes: usize,
    /// TCP + TLS connection setup (default 10 s).
    pub connect_timeout: Duration,
    /// A whole request, body included (default 120 s): a slow or endless response fails.
    pub request_timeout: Duration,
    /// Chart archive limits (the compressed limit bounds the download).
    pub archive: ArchiveLimits,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_index_bytes: DEFAULT_MAX_INDEX_BYTES,
            index_ttl: Duration::from_secs(300),
            max_cached_indexes: 64,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            archive: ArchiveLimits::default(),
        }
    }
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpStats {
    /// `index.yaml` requests sent (conditional or not).
    pub index_fetches: u64,
    /// Of those, answered `304 Not Modified` (cached index kept, TTL renewed, no parse).
    pub index_not_modified: u64,
    /// Index documents parsed.
    pub index_parses: u64,
    /// Locates served from a fresh in-memory index, with no request.
    pub index_cache_hits: u64,
    /// Chart archives downloaded.
    pub chart_downloads: u64,
    /// Indexes dropped to respect `max_cached_indexes`.
    pub index_evictions: u64,
}

#[derive(Default)]
struct Counters {
    index_fetches: AtomicU64,
    index_not_modified: AtomicU64,
    index_parses: AtomicU64,
    index_cache_hits: AtomicU64,
    chart_downloads: AtomicU64,
    index_evictions: AtomicU64,
}

struct CachedIndex {
    index: Arc<RepoIndex>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    validated_at: Instant,
}

struct Slot {
    state: tokio::sync::Mutex<Option<CachedIndex>>,
    last_used: Mutex<Instant>,
}

/// State shared by all HTTP sources of a process: HTTP clients (connection pools) and the
/// parsed-index cache. Create one and share it as `Arc<HttpShared>`.
pub struct HttpShared {
    limits: HttpLimits,
    clients: Mutex<HashMap<(bool, Option<Digest>), reqwest::Client>>,
    indexes: Mutex<HashMap<String, Arc<Slot>>>,
    counters: Counters,
}

impl std::fmt::Debug for HttpShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpShared")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for HttpShared {
    fn default() -> Self {
        HttpShared::new(HttpLimits::default())
    }
}

impl HttpShared {
    pub fn new(limits: HttpLimits) -> HttpShared {
        HttpShared {
            limits,
            clients: Mutex::new(HashMap::new()),
            indexes: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    pub fn stats(&self) -> HttpStats {
        let c = &self.counters;
        HttpStats {
            index_fetches: c.index_fetches.load(Ordering::Relaxed),
            index_not_modified: c.index_not_modified.load(Ordering::Relaxed),
            index_parses: c.index_parses.load(Ordering::Relaxed),
            index_cache_hits: c.index_cache_hits.load(Ordering::Relaxed),
            chart_downloads: c.chart_downloads.load(Ordering::Relaxed),
            index_evictions: c.index_evictions.load(Ordering::Relaxed),
        }
    }

    /// Number of indexes held in memory.
    pub fn cached_indexes(&self) -> usize {
        lock(&self.indexes).len()
    }

    pub(crate) fn count_download(&self) {
        self.counters
            .chart_downloads
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A salted, one-way identity of credentials, for cache keys (never the secret).
    pub(crate) fn identity(&self, credentials: Option<&Credentials>) -> String {
        credentials.map_or_else(|| "anonymous".to_string(), Credentials::identity)
    }

    /// The client for a TLS configuration (cached: connection pools are reused).
    pub(crate) fn client(&self, tls: &TlsSettings) -> Result<reqwest::Client> {
        let key = (tls.insecure_skip_verify(), tls.ca_digest());
        if let Some(c) = lock(&self.clients).get(&key) {
            return Ok(c.clone());
        }
        let client = tls
            .reqwest_builder()
            .connect_timeout(self.limits.connect_timeout)
            .timeout(self.limits.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("helm-handler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::config(
                    "source.caSecretRef",
                    format!("cannot build an HTTP client: {}", chain(&e)),
                )
            })?;
        lock(&self.clients).insert(key, client.clone());
        Ok(client)
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut map = lock(&self.indexes);
        let now = Instant::now();
        if let Some(slot) = map.get(key) {
            *lock(&slot.last_used) = now;
            return slot.clone();
        }
        while map.len() >= self.limits.max_cached_indexes.max(1) {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| *lock(&s.last_used))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    map.remove(&k);
                    self.counters
                        .index_evictions
                        .fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
        let slot = Arc::new(Slot {
            state: tokio::sync::Mutex::new(None),
            last_used: Mutex::new(now),
        });
        map.insert(key.to_string(), slot.clone());
        slot
    }

    /// The parsed index of a repository: from memory while fresh; else revalidated with a
    /// conditional request (304: kept, no parse) or fetched and parsed. Concurrent callers
    /// for one repository share one request.
    pub(crate) async fn index(
        &self,
        req: &Requester<'_>,
        repo_url: &Url,
    ) -> Result<Arc<RepoIndex>> {
        let index_url = repo_url.join("index.yaml").map_err(|e| {
            Error::config(
                "source.repository.url",
                format!("cannot form the index URL: {e}"),
            )
        })?;
        let key = format!("{index_url} {}", req.identity);
        let slot = self.slot(&key);
        let mut state = slot.state.lock().await;
        if let Some(cached) = state.as_ref()
            && cached.validated_at.elapsed() < self.limits.index_ttl
        {
            self.counters
                .index_cache_hits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(cached.index.clone());
        }
        let mut headers = HeaderMap::new();
        if let Some(cached) = state.as_ref() {
            if let Some(etag) = &cached.etag {
                headers.insert(header::IF_NONE_MATCH, etag.clone());
            }
            if let Some(lm) = &cached.last_modified {
                headers.insert(header::IF_MODIFIED_SINCE, lm.clone());
            }
        }
        let target = redact(&index_url);
        self.counters.index_fetches.fetch_add(1, Ordering::Relaxed);
        let response = req.get(&index_url, headers).await?;
        if response.status() == StatusCode::NOT_MODIFIED
            && let Some(cached) = state.as_mut()
        {
            self.counters
                .index_not_modified
                .fetch_add(1, Ordering::Relaxed);
            cached.validated_at = Instant::now();
            return Ok(cached.index.clone());
        }
        let response = check_status(response, &target, req.auth_description()).map_err(|e| match e {
            Error::NotFound { target, message } => Error::NotFound {
                target,
                message: format!("{message}: no index.yaml here; is `source.repository.url` a chart repository?"),
            },
            other => other,
        })?;
        let etag = response.headers().get(header::ETAG).cloned();
        let last_modified = response.headers().get(header::LAST_MODIFIED).cloned();
        let body =
            read_capped(response, self.limits.max_index_bytes, &target, "index.yaml").await?;
        self.counters.index_parses.fetch_add(1, Ordering::Relaxed);
        let source = redact(repo_url);
        let index = tokio::task::spawn_blocking(move || RepoIndex::parse(&body, &source))
            .await
            .map_err(|e| Error::Integrity {
                target: target.clone(),
                message: format!("index parsing failed: {e}"),
            })??;
        let index = Arc::new(index);
        *state = Some(CachedIndex {
            index: index.clone(),
            etag,
            last_modified,
            validated_at: Instant::now(),
        });
        Ok(index)
    }
}

/// Sends GET requests for one source: its client, its credentials and the origin they
/// belong to.
pub(crate) struct Requester<'a> {
    pub client: &'a reqwest::Client,
    pub credentials: Option<&'a Credentials>,
    /// Credentials go to this origin (the repository's), and elsewhere only when
    /// `pass_credentials` is set; never after a redirect to another origin.
    pub credentials_origin: url::Origin,
    pub pass_credentials: bool,
    pub identity: String,
}

impl Requester<'_> {
    pub fn auth_description(&self) -> String {
        self.credentials
            .map(Credentials::describe)
            .unwrap_or_else(|| "anonymous".to_string())
    }

    /// GET `url`, following up to 10 redirects by hand. Credentials are attached when the
    /// URL is on the repository's origin (or `pass_credentials` allows any origin), and are
    /// dropped for good as soon as a redirect leaves the origin of the previous request.
    pub async fn get(&self, url: &Url, headers: HeaderMap) -> Result<Response> {
        let mut current = url.clone();
        let mut send_credentials = self.credentials.is_some()
            && (self.pass_credentials || current.origin() == self.credentials_origin);
        for _ in 0..=10 {
            let mut request = self.client.get(current.clone()).headers(headers.clone());
            if send_credentials {
                request = match self.credentials {
                    Some(Credentials::Basic { username, password }) => {
                        request.basic_auth(username, Some(password.expose()))
                    }
                    // A chart repository has no token service: a token is sent as it is.
                    Some(Credentials::Bearer { token } | Credentials::IdentityToken { token }) => {
                        request.bearer_auth(token.expose())
                    }
                    None => request,
                };
            }
            let response = request
                .send()
                .await
                .map_err(|e| classify(&e, &redact(&current)))?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let Some(location) = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                else {
                    return Err(Error::Network {
                        target: redact(&current),
                        message: format!("redirect ({status}) without a Location header"),
                    });
                };
                let next = current.join(location).map_err(|e| Error::Network {
                    target: redact(&current),
                    message: format!("redirect to an invalid URL: {e}"),
                })?;
                if next.origin() != current.origin() {
                    send_credentials = false;
                }
                tracing::debug!(from = %redact(&current), to = %redact(&next), "following redirect");
                current = next;
                continue;
            }
            return Ok(response);
        }
        Err(Error::Network {
            target: redact(url),
            message: "more than 10 redirects".to_string(),
        })
    }
}

/// Maps a non-success status to an error; passes a success through.
pub(crate) fn check_status(response: Response, target: &str, auth: String) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let target = target.to_string();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Auth {
            target,
            message: if auth == "anonymous" {
                format!("the server answered {status}: credentials are required (none configured)")
            } else {
                format!("the server refused the credentials ({auth}): {status}")
            },
        },
        StatusCode::NOT_FOUND | StatusCode::GONE => Error::NotFound {
            target,
            message: format!("the server answered {status}"),
        },
        s if s.is_server_error()
            || s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT =>
        {
            Error::Network {
                target,
                message: format!("the server answered {status}"),
            }
        }
        _ => Error::NotFound {
            target,
            message: format!("unexpected answer {status}"),
        },
    })
}

/// Reads a whole body, failing once it exceeds `max` bytes (checked while streaming).
pub(crate) async fn read_capped(
    response: Response,
    max: u64,
    target: &str,
    what: &str,
) -> Result<Vec<u8>> {
    let too_large = || Error::Integrity {
        target: target.to_string(),
        message: format!("{what} is larger than the limit of {max} bytes"),
    };
    let declared = response.content_length().unwrap_or(0);
    if declared > max {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| classify(&e, target))?;
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a transport error: TLS failures → tls, everything else (refused, reset, timeout,
/// DNS) → network.
pub(crate) fn classify(e: &reqwest::Error, target: &str) -> Error {
    let text = chain(e);
    let lower = text.to_ascii_lowercase();
    let target = target.to_string();
    if e.is_timeout() {
        return Error::Network {
            target,
            message: format!("timed out: {text}"),
        };
    }
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("unknownissuer")
        || lower.contains("invalid peer")
    {
        return Error::Tls {
            target,
            message: text,
        };
    }
    Error::Network {
        target,
        message: text,
    }
}

/// A URL for messages: user info removed.
pub(crate) fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}
