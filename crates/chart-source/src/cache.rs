//! The content-addressed chart cache shared by all sources.
//!
//! Layout under the cache directory:
//!
//! ```text
//! sha256/<hex>.tgz        one chart archive per content digest (immutable)
//! sha256/.tmp-…           downloads in progress (same directory, so the rename is atomic)
//! refs/<sha256(key)>.json reference → digest records, with the time they were resolved
//! locks/<sha256(key)>.lock cross-process lock files (std::fs::File::lock)
//! ```
//!
//! Guarantees:
//! - A download is written to a temp file in the entry's directory, its digest verified,
//!   fsynced, then renamed: a killed download never becomes an entry. A temp file is
//!   exclusively locked while it is written; [`ChartCache::open`] removes temp files whose
//!   writer is gone, and nothing ever reads a temp file.
//! - [`ChartCache::lock`] serialises work on one key: in one process through an async mutex
//!   per key (so concurrent locates of one chart share one download: the first downloads,
//!   the others wait and find the entry), across processes through a file lock.
//! - Size-bounded: after each store, least-recently-used entries are removed until the
//!   total is under `max_bytes`; an entry pinned by an in-flight locate ([`ChartCache::pin`])
//!   and the entry just stored are never evicted. Access times live in an in-memory index
//!   rebuilt from file modification times at open, and are written back to the files' mtime.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use crate::ErrorCategory;
use crate::archive::ChartMeta;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

const BLOB_DIR: &str = "sha256";
const REF_DIR: &str = "refs";
const LOCK_DIR: &str = "locks";
const TMP_PREFIX: &str = ".tmp-";
const ENTRY_SUFFIX: &str = ".tgz";

/// Where the cache lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub dir: PathBuf,
    /// Upper bound of the sum of the entries' sizes, in bytes.
    pub max_bytes: u64,
}

impl CacheConfig {
    /// 2 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CacheConfig {
            dir: dir.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// An entry in the cache: a complete, digest-verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEntry {
    pub digest: Digest,
    pub path: PathBuf,
    pub size: u64,
}

/// A reference → digest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRecord {
    pub digest: Digest,
    pub resolved_at: SystemTime,
    /// How the source served the chart. A chart served without credentials is public:
    /// any locate may take it from the cache. One served only with credentials is not
    /// handed to a locate that has not shown the source accepts its own credentials.
    pub access: Access,
}

/// How a source served a chart (see [`RefRecord::access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Access {
    /// Served to an anonymous request.
    Public,
    /// Served to a request with credentials (the default of records written before this
    /// field existed: the safe reading).
    #[default]
    Private,
}

impl RefRecord {
    /// How long ago the reference was resolved (zero if the clock went backwards).
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.resolved_at)
            .unwrap_or_default()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefFile {
    key: String,
    digest: Digest,
    resolved_at_unix: u64,
    #[serde(default)]
    access: Access,
}

/// Counters for metrics. Monotonic except `entries` and `bytes` (current size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// Lookups that found an entry.
    pub hits: u64,
    /// Downloads stored (a lookup that missed and was then filled).
    pub misses: u64,
    /// Bytes written by downloads (including rejected ones).
    pub bytes_downloaded: u64,
    /// Entries removed to stay under the size bound.
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_downloaded: AtomicU64,
    evictions: AtomicU64,
}

struct EntryInfo {
    size: u64,
    last_used: SystemTime,
}

#[derive(Default)]
struct Index {
    entries: HashMap<Digest, EntryInfo>,
    total: u64,
    pins: HashMap<Digest, usize>,
}

impl Index {
    fn insert(&mut self, digest: Digest, size: u64, last_used: SystemTime) {
        if let Some(old) = self.entries.insert(digest, EntryInfo { size, last_used }) {
            self.total = self.total.saturating_sub(old.size);
        }
        self.total += size;
    }

    fn remove(&mut self, digest: &Digest) {
        if let Some(old) = self.entries.remove(digest) {
            self.total = self.total.saturating_sub(old.size);
        }
    }
}

/// The chart cache. Share it as `Arc<ChartCache>`.
pub struct ChartCache {
    root: PathBuf,
    blobs: PathBuf,
    refs: PathBuf,
    locks: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    counters: Counters,
}

impl std::fmt::Debug for ChartCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartCache")
            .field("dir", &self.root)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Held while working on one key: an in-process async mutex plus a cross-process file lock.
/// Dropping it releases both.
pub struct KeyLock {
    // Field order matters: the file lock is released before the in-process mutex.
    _file: File,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

/// Keeps an entry from being evicted while held.
pub struct Pin<'a> {
    cache: &'a ChartCache,
    digest: Digest,
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let mut index = self.cache.index();
        if let Some(n) = index.pins.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                index.pins.remove(&self.digest);
            }
        }
    }
}

impl ChartCache {
    /// Opens (creating if needed) the cache directory, removes temp files left by dead
    /// writers, indexes the entries and trims the cache to its bound.
    pub fn open(config: CacheConfig) -> Result<ChartCache> {
        let root = config.dir;
        let blobs = root.join(BLOB_DIR);
        let refs = root.join(REF_DIR);
        let locks = root.join(LOCK_DIR);
        for dir in [&root, &blobs, &refs, &locks] {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let cache = ChartCache {
            root,
            blobs,
            refs,
            locks,
            max_bytes: config.max_bytes,
            index: Mutex::new(Index::default()),
            flights: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        };
        cache.scan()?;
        cache.evict(None);
        cache.prune_records();
        Ok(cache)
    }

    /// Removes what only grows: lock files unused for a day, reference records whose chart
    /// is gone for a week, and temp records of dead writers. Best effort.
    fn prune_records(&self) {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let old = |path: &Path, age: Duration| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed > age)
        };
        if let Ok(read) = fs::read_dir(&self.locks) {
            for item in read.flatten() {
                let path = item.path();
                // A lock file removed while another process waits on it costs at worst a
                // duplicate download of identical content (the rename is atomic).
                if old(&path, DAY) {
                    remove_abandoned_temp(&path);
                }
            }
        }
        if let Ok(read) = fs::read_dir(&self.refs) {
            for item in read.flatten() {
                let path = item.path();
                let name = item.file_name();
                if name.to_string_lossy().starts_with(TMP_PREFIX) {
                    if old(&path, Duration::from_secs(3600)) {
                        let _ = fs::remove_file(&path);
                    }
                    continue;
                }
                let dangling = fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<RefFile>(&b).ok())
                    .is_none_or(|r| !self.path_of(&r.digest).exists());
                if dangling && old(&path, 7 * DAY) {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves a consistent-enough index: recover it.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn scan(&self) -> Result<()> {
        let read = fs::read_dir(&self.blobs).map_err(|e| Error::io(&self.blobs, e))?;
        let mut index = self.index();
        for item in read {
            let item = item.map_err(|e| Error::io(&self.blobs, e))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = item.path();
            if name.starts_with(TMP_PREFIX) {
                remove_abandoned_temp(&path);
                continue;
            }
            let Some(hex_digits) = name.strip_suffix(ENTRY_SUFFIX) else {
                continue;
            };
            let Ok(digest) = Digest::from_hex(hex_digits) else {
                continue;
            };
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let last_used = meta.modified().unwrap_or(UNIX_EPOCH);
            index.insert(digest, meta.len(), last_used);
        }
        Ok(())
    }

    /// Where the entry for `digest` lives (whether or not it exists).
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(format!("{}{ENTRY_SUFFIX}", digest.hex()))
    }

    /// The entry for `digest`, if present; marks it recently used. Counts a hit.
    pub fn lookup(&self, digest: &Digest) -> Option<CachedEntry> {
        let path = self.path_of(digest);
        // The file is the truth: another process may have added or evicted it.
        let meta = match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                self.index().remove(digest);
                return None;
            }
        };
        let now = SystemTime::now();
        self.index().insert(*digest, meta.len(), now);
        touch(&path, now);
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Some(CachedEntry {
            digest: *digest,
            path,
            size: meta.len(),
        })
    }

    /// Removes an entry (e.g. one found corrupted). Missing entries are fine.
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path_of(digest);
        self.index().remove(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The entry for `digest` if it is intact and passes `check` (the caller's archive
    /// checks), pinned while it is checked. `None` when it is missing or corrupted on disk —
    /// a corrupted entry is removed, so the caller downloads it again. An intact entry that
    /// fails the checks is an error: downloading it again would give the same bytes.
    pub async fn intact<F, Fut>(
        &self,
        digest: &Digest,
        check: F,
    ) -> Result<Option<(PathBuf, ChartMeta)>>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<ChartMeta>>,
    {
        let Some(entry) = self.lookup(digest) else {
            return Ok(None);
        };
        let _pin = self.pin(digest);
        match check(entry.path.clone()).await {
            Ok(meta) if meta.digest == *digest => Ok(Some((entry.path, meta))),
            Ok(_) => {
                tracing::warn!(digest = %digest, "cached chart does not match its digest: downloading again");
                self.remove(digest)?;
                Ok(None)
            }
            Err(e) if e.category() == ErrorCategory::Integrity => {
                // Corrupted on disk, or a chart that fails the checks: tell them apart.
                let path = entry.path;
                let actual = tokio::task::spawn_blocking(move || {
                    std::fs::read(&path).map(|b| Digest::of(&b))
                })
                .await
                .ok()
                .and_then(|r| r.ok());
                if actual.as_ref() == Some(digest) {
                    Err(e)
                } else {
                    tracing::warn!(digest = %digest, "cached chart is corrupted: downloading again");
                    self.remove(digest)?;
                    Ok(None)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps `digest`'s entry from eviction until the returned guard is dropped.
    pub fn pin(&self, digest: &Digest) -> Pin<'_> {
        *self.index().pins.entry(*digest).or_insert(0) += 1;
        Pin {
            cache: self,
            digest: *digest,
        }
    }

    /// Serialises work on `key` within this process (async mutex) and across processes
    /// sharing the directory (file lock). Typical use: look up, and if missing, take the
    /// lock, look up again, download.
    pub async fn lock(&self, key: &str) -> Result<KeyLock> {
        let mutex = {
            let mut flights = self
                .flights
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            flights.retain(|_, weak| weak.strong_count() > 0);
            match flights.get(key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    flights.insert(key.to_string(), Arc::downgrade(&m));
                    m
                }
            }
        };
        let guard = mutex.lock_owned().await;
        let path = self
            .locks
            .join(format!("{}.lock", Digest::of(key.as_bytes()).hex()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let file = match file.try_lock() {
            Ok(()) => file,
            Err(std::fs::TryLockError::WouldBlock) => {
                // Another process holds it: wait without blocking the runtime.
                let lock_path = path.clone();
                tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                    .await
                    .map_err(|e| Error::io(&lock_path, std::io::Error::other(e)))?
                    .map_err(|e| Error::io(&lock_path, e))?
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        };
        Ok(KeyLock {
            _file: file,
            _guard: guard,
        })
    }

    /// Starts a download into a temp file. `max_bytes` bounds its size (an integrity error
    /// naming `target` when exceeded); `target` names what is downloaded, for messages.
    pub fn writer(&self, target: &str, max_bytes: u64) -> Result<CacheWriter<'_>> {
        let name = format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.blobs.join(name);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // Marks the temp file as live for `open` in other processes.
        file.try_lock().map_err(|e| {
            Error::io(
                &path,
                match e {
                    std::fs::TryLockError::Error(e) => e,
                    std::fs::TryLockError::WouldBlock => std::io::Error::other("locked"),
                },
            )
        })?;
        Ok(CacheWriter {
            cache: self,
            file: Some(file),
            path,
            hasher: Hasher::new(),
            written: 0,
            max_bytes,
            target: target.to_string(),
        })
    }

    /// Streams `stream` into the cache (see [`ChartCache::writer`]), verifying `expected`.
    pub async fn store_stream<S>(
        &self,
        mut stream: S,
        expected: Option<&Digest>,
        max_bytes: u64,
        target: &str,
    ) -> Result<CachedEntry>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let mut writer = self.writer(target, max_bytes)?;
        while let Some(chunk) = stream.next().await {
            writer.write(&chunk?)?;
        }
        writer.commit(expected)
    }

    /// The digest recorded for `key`, if any.
    pub fn get_ref(&self, key: &str) -> Option<RefRecord> {
        let path = self.ref_path(key);
        let text = fs::read(&path).ok()?;
        let file: RefFile = serde_json::from_slice(&text).ok()?;
        if file.key != key {
            return None;
        }
        Some(RefRecord {
            digest: file.digest,
            resolved_at: UNIX_EPOCH + Duration::from_secs(file.resolved_at_unix),
            access: file.access,
        })
    }

    /// Records `key` → `digest`, resolved now (atomically replaces an older record). A key
    /// once served publicly stays public while it names the same digest.
    pub fn put_ref(&self, key: &str, digest: &Digest, access: Access) -> Result<()> {
        let path = self.ref_path(key);
        let access = match self.get_ref(key) {
            Some(old) if old.digest == *digest && old.access == Access::Public => Access::Public,
            _ => access,
        };
        let record = RefFile {
            key: key.to_string(),
            digest: *digest,
            resolved_at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            access,
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        let tmp = self.refs.join(format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }

    fn ref_path(&self, key: &str) -> PathBuf {
        self.refs
            .join(format!("{}.json", Digest::of(key.as_bytes()).hex()))
    }

    pub fn stats(&self) -> CacheStats {
        let index = self.index();
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            bytes_downloaded: self.counters.bytes_downloaded.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
            entries: index.entries.len() as u64,
            bytes: index.total,
        }
    }

    /// Removes least-recently-used entries until the total fits, sparing pinned entries
    /// and `keep`.
    fn evict(&self, keep: Option<&Digest>) {
        let mut index = self.index();
        if index.total <= self.max_bytes {
            return;
        }
        let mut candidates: Vec<(SystemTime, Digest)> = index
            .entries
            .iter()
            .filter(|(d, _)| Some(*d) != keep && !index.pins.contains_key(*d))
            .map(|(d, e)| (e.last_used, *d))
            .collect();
        candidates.sort();
        for (_, digest) in candidates {
            if index.total <= self.max_bytes {
                break;
            }
            let path = self.path_of(&digest);
            match fs::remove_file(&path) {
                Ok(()) => {
                    self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(digest = %digest, "evicted from the chart cache");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot evict cache entry");
                    continue;
                }
            }
            index.remove(&digest);
        }
    }

    fn commit_entry(&self, digest: Digest, size: u64) {
        self.index().insert(digest, size, SystemTime::now());
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.evict(Some(&digest));
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A download in progress. Dropped without [`CacheWriter::commit`], its temp file is removed.
pub struct CacheWriter<'a> {
    cache: &'a ChartCache,
    file: Option<File>,
    path: PathBuf,
    hasher: Hasher,
    written: u64,
    max_bytes: u64,
    target: String,
}

impl CacheWriter<'_> {
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.written += chunk.len() as u64;
        self.cache
            .counters
            .bytes_downloaded
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if self.written > self.max_bytes {
            return Err(Error::Integrity {
                target: self.target.clone(),
                message: format!(
                    "download is larger than the limit of {} bytes",
                    self.max_bytes
                ),
            });
        }
        self.hasher.update(chunk);
        let Some(file) = self.file.as_mut() else {
            return Err(Error::io(
                &self.path,
                std::io::Error::other("writer closed"),
            ));
        };
        file.write_all(chunk).map_err(|e| Error::io(&self.path, e))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies the digest (when `expected` is given), fsyncs and renames the temp file
    /// into place. Returns the entry.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<CachedEntry> {
        let digest = std::mem::take(&mut self.hasher).finish();
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(Error::Integrity {
                target: self.target.clone(),
                message: format!("content digest is {digest}, expected {expected}"),
            });
        }
        let Some(file) = self.file.take() else {
            return Err(Error::io(
                &self.path,
                std::io::Error::other("writer closed"),
            ));
        };
        file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        drop(file);
        let final_path = self.cache.path_of(&digest);
        fs::rename(&self.path, &final_path).map_err(|e| Error::io(&final_path, e))?;
        // The rename is done: nothing to clean up any more.
        self.path = PathBuf::new();
        if let Ok(dir) = File::open(&self.cache.blobs) {
            let _ = dir.sync_all();
        }
        self.cache.commit_entry(digest, self.written);
        Ok(CachedEntry {
            digest,
            path: final_path,
            size: self.written,
        })
    }
}

impl Drop for CacheWriter<'_> {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes a temp file unless a live writer holds its lock.
fn remove_abandoned_temp(path: &Path) {
    let Ok(file) = OpenOptions::new().write(true).open(path) else {
        return;
    };
    if file.try_lock().is_ok() {
        let _ = fs::remove_file(path);
        tracing::debug!(path = %path.display(), "removed an abandoned download");
    }
}

fn touch(path: &Path, when: SystemTime) {
    if let Ok(f) = OpenOptions::new().write(true).open(path) {
        let _ = f.set_modified(when);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, max: u64) -> ChartCache {
        ChartCache::open(CacheConfig {
            dir: dir.to_path_buf(),
            max_bytes: max,
        })
        .unwrap()
    }

    #[test]
    fn store_lookup_and_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 1 << 20);
        let mut w = c.writer("t", 100).unwrap();
        w.write(b"hello").unwrap();
        let e = w.commit(Some(&Digest::of(b"hello"))).unwrap();
        assert_eq!(fs::read(&e.path).unwrap(), b"hello");
        assert_eq!(c.lookup(&Digest::of(b"hello")).unwrap().path, e.path);

        let mut w = c.writer("t", 100).unwrap();
        w.write(b"evil").unwrap();
        let err = w.commit(Some(&Digest::of(b"good"))).unwrap_err();
        assert_eq!(err.category(), crate::ErrorCategory::Integrity);
        assert!(c.lookup(&Digest::of(b"evil")).is_none());

        let mut w = c.writer("t", 3).unwrap();
        assert!(w.write(b"toolong").is_err());
        drop(w);
        // No temp files left behind.
        let left: Vec<_> = fs::read_dir(tmp.path().join(BLOB_DIR)).unwrap().collect();
        assert_eq!(left.len(), 1);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.entries), (1, 1, 1));
    }

    #[test]
    fn abandoned_temp_is_removed_and_live_one_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 1 << 20);
        let dead = tmp.path().join(BLOB_DIR).join(".tmp-999999-0");
        fs::write(&dead, b"partial").unwrap();
        let mut live = c.writer("t", 100).unwrap();
        live.write(b"x").unwrap();
        let _c2 = cache(tmp.path(), 1 << 20);
        assert!(!dead.exists());
        assert!(live.path.exists());
    }

    #[test]
    fn lru_eviction_spares_pins() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 10);
        let put = |b: &[u8]| {
            let mut w = c.writer("t", 100).unwrap();
            w.write(b).unwrap();
            w.commit(None).unwrap().digest
        };
        let a = put(b"aaaa");
        std::thread::sleep(Duration::from_millis(20));
        let b = put(b"bbbb");
        let _pin = c.pin(&a);
        std::thread::sleep(Duration::from_millis(20));
        let cc = put(b"cccc");
        // a is older but pinned: b goes.
        assert!(c.lookup(&a).is_some());
        assert!(c.lookup(&b).is_none());
        assert!(c.lookup(&cc).is_some());
        assert_eq!(c.stats().evictions, 1);
    }

    #[test]
    fn old_locks_and_dangling_refs_are_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 1 << 20);
        c.put_ref("gone", &Digest::of(b"never stored"), Access::Public)
            .unwrap();
        c.put_ref("fresh", &Digest::of(b"never stored either"), Access::Public)
            .unwrap();
        let lock = tmp.path().join(LOCK_DIR).join("x.lock");
        fs::write(&lock, b"").unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
        for path in [lock.clone(), c.ref_path("gone")] {
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let c2 = cache(tmp.path(), 1 << 20);
        assert!(!lock.exists());
        assert!(c2.get_ref("gone").is_none());
        assert!(c2.get_ref("fresh").is_some());
    }

    #[test]
    fn refs_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path(), 10);
        assert!(c.get_ref("k").is_none());
        c.put_ref("k", &Digest::of(b"x"), Access::Public).unwrap();
        let r = c.get_ref("k").unwrap();
        assert_eq!(r.digest, Digest::of(b"x"));
        assert!(r.age() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn lock_serialises_one_key() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Arc::new(cache(tmp.path(), 10));
        let counter = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = c.clone();
            let counter = counter.clone();
            tasks.push(tokio::spawn(async move {
                let _l = c.lock("key").await.unwrap();
                let v = counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                assert_eq!(counter.load(Ordering::SeqCst), v + 1);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
}
