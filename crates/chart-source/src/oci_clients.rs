//! oci-client clients shared across locates.
//!
//! A client starts with an empty connection pool and an empty registry-token cache (its TLS
//! roots come from [`crate::tls`], read once per process). The controller locates the same charts on every reconcile, so the
//! pool keeps one client per TLS setting **and credential identity**: roots are loaded once,
//! connections are kept alive, and a registry token is reused until it expires. A client's
//! token cache belongs to the one set of credentials it was built for — a token obtained
//! with one Component's Secret is never offered for another's (the key holds a salted hash
//! of the credentials, never the secret). Bounded: least recently used clients are dropped.
//!
//! Each client also remembers the manifests the registry has served to it: a private chart
//! in the shared cache is handed to a digest-pinned locate only when the registry has
//! accepted that locate's credentials for it (see `OciSource::locate`).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use oci_client::Client;
use oci_client::client::ClientConfig;

use crate::digest::Digest;
use crate::error::Result;

/// What makes two clients interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub plain_http: bool,
    pub insecure_skip_tls_verify: bool,
    /// sha256 of the CA bundle, when one is added.
    pub ca: Option<Digest>,
    /// [`crate::Credentials::identity`], or `anonymous`.
    pub identity: String,
}

/// The pool. Cheap to share (`Arc`); one per process is enough.
pub struct OciClients {
    max: usize,
    clients: Mutex<HashMap<ClientKey, Pooled>>,
}

struct Pooled {
    client: Client,
    used: Instant,
    /// `registry/repository@manifest-digest` keys the registry served to this identity.
    served: HashSet<String>,
}

/// Bounds the memory of [`Pooled::served`]; past it the set starts over (a forgotten key
/// costs one manifest `HEAD`).
const MAX_SERVED: usize = 4096;

impl std::fmt::Debug for OciClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciClients")
            .field("max", &self.max)
            .field("clients", &self.len())
            .finish()
    }
}

impl Default for OciClients {
    fn default() -> Self {
        OciClients::new(Self::DEFAULT_MAX)
    }
}

impl OciClients {
    /// Enough for every registry × credential pair of a large cluster; a client is small.
    pub const DEFAULT_MAX: usize = 128;

    pub fn new(max: usize) -> Self {
        OciClients {
            max: max.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientKey, Pooled>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Clients held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The client for `key`, built from `config()` the first time. A client that cannot be
    /// built is an error from `build_error` (oci-client would otherwise fall back silently
    /// to a default configuration — plain HTTPS without the CA).
    pub fn get(
        &self,
        key: &ClientKey,
        config: impl FnOnce() -> ClientConfig,
        build_error: impl FnOnce(oci_client::errors::OciDistributionError) -> crate::Error,
    ) -> Result<Client> {
        if let Some(pooled) = self.lock().get_mut(key) {
            pooled.used = Instant::now();
            return Ok(pooled.client.clone());
        }
        // Built outside the lock: loading the roots takes milliseconds. Two locates racing
        // for a new key both build; the second insert wins, both clients work.
        let client = Client::try_from(config()).map_err(build_error)?;
        let mut clients = self.lock();
        if clients.len() >= self.max
            && !clients.contains_key(key)
            && let Some(oldest) = clients
                .iter()
                .min_by_key(|(_, p)| p.used)
                .map(|(k, _)| k.clone())
        {
            clients.remove(&oldest);
        }
        let pooled = clients.entry(key.clone()).or_insert_with(|| Pooled {
            client: client.clone(),
            used: Instant::now(),
            served: HashSet::new(),
        });
        Ok(pooled.client.clone())
    }

    /// Whether the registry served `manifest` to the identity of `key` in this process.
    pub fn was_served(&self, key: &ClientKey, manifest: &str) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|p| p.served.contains(manifest))
    }

    /// Notes that the registry served `manifest` to the identity of `key`.
    pub fn served(&self, key: &ClientKey, manifest: &str) {
        if let Some(p) = self.lock().get_mut(key) {
            if p.served.len() >= MAX_SERVED {
                p.served.clear();
            }
            p.served.insert(manifest.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(identity: &str) -> ClientKey {
        ClientKey {
            plain_http: true,
            insecure_skip_tls_verify: false,
            ca: None,
            identity: identity.to_string(),
        }
    }

    fn never(_: oci_client::errors::OciDistributionError) -> crate::Error {
        crate::Error::config("test", "unexpected build failure")
    }

    #[test]
    fn one_client_per_key_and_bounded() {
        let pool = OciClients::new(2);
        let mut builds = 0;
        for id in ["a", "a", "b", "a", "c"] {
            pool.get(
                &key(id),
                || {
                    builds += 1;
                    ClientConfig::default()
                },
                never,
            )
            .unwrap();
        }
        assert_eq!(builds, 3, "a, b and c are built once each");
        assert_eq!(pool.len(), 2);
        // `b` was the least recently used when `c` came: `a` is still there.
        let mut rebuilt = false;
        pool.get(
            &key("a"),
            || {
                rebuilt = true;
                ClientConfig::default()
            },
            never,
        )
        .unwrap();
        assert!(!rebuilt);
    }
}
