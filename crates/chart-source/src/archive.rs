//! Chart archive checks before a chart is handed on (sizes, paths, links, Chart.yaml,
//! dependencies).
//!
//! [`check_archive`] reads a `.tgz` once, streaming: it hashes the compressed bytes,
//! decompresses with a bound, and checks every entry the way helm's chart loader does
//! ([`helm_rules`]), so that a chart helm loads passes and a chart helm refuses is refused
//! here, with the entry named:
//! - helm's path rules: the first path component is dropped (`mychart/`, `./`), `\` is a
//!   separator in archives made on Windows, names are cleaned; absolute names, names outside
//!   the chart or starting with `..`, drive-letter names and a top-level `Chart.yaml` are
//!   refused;
//! - helm's size rules: at most 5 MiB per file, less than 100 MiB for all files together;
//!   directories and pax headers (global ones, as `git archive` writes, and per-file ones)
//!   are skipped;
//! - `Chart.yaml` present and parsed, with `name` and `version`;
//! - every dependency declared in `Chart.yaml` (apiVersion v2) or `requirements.yaml` (v1)
//!   is present under `charts/`, as a directory or a `.tgz` (a `condition` does not make it
//!   optional: nothing is fetched later).
//!
//! Stricter than helm, on purpose: links (symbolic or hard), devices and FIFOs are refused
//! (helm reads them as empty files; `helm package` never writes them), and two bounds that
//! helm does not have keep memory and time in check on hostile input — see
//! [`ArchiveLimits`]; both sit far above any chart helm can load.
//!
//! Every failure is an [`Error::Integrity`] naming the archive entry concerned.

mod helm_rules;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

pub use helm_rules::{HELM_MAX_CHART_BYTES, HELM_MAX_FILE_BYTES, SizeRefusal, chart_file_name};

/// Size bounds for a chart archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The `.tgz` itself; bounds a download (helm has no such bound).
    pub max_compressed_bytes: u64,
    /// The files' sizes must sum to less than this (helm's `MaxDecompressedChartSize`).
    pub max_total_bytes: u64,
    /// Any single file may be this large, not larger (helm's `MaxDecompressedFileSize`).
    pub max_file_bytes: u64,
    /// The decompressed tar stream, headers included: bounds the time spent on an archive
    /// of countless empty entries (helm has no such bound).
    pub max_stream_bytes: u64,
}

impl Default for ArchiveLimits {
    /// Helm's limits (5 MiB per file, less than 100 MiB in all), plus 1 GiB compressed and
    /// 1 GiB of decompressed tar stream: a chart helm can load is under 100 MiB of content,
    /// so these are reached only by an archive of about two million entries or by padding.
    fn default() -> Self {
        ArchiveLimits {
            max_compressed_bytes: 1 << 30,
            max_total_bytes: HELM_MAX_CHART_BYTES,
            max_file_bytes: HELM_MAX_FILE_BYTES,
            max_stream_bytes: 1 << 30,
        }
    }
}

/// A chart dependency as declared in `Chart.yaml` / `requirements.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Dependency {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
}

/// What the checks learnt about a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
    /// `v1` or `v2`.
    pub api_version: String,
    pub app_version: Option<String>,
    pub dependencies: Vec<Dependency>,
    /// sha256 of the archive file.
    pub digest: Digest,
    pub compressed_bytes: u64,
    /// Sum of the files' decompressed sizes.
    pub total_bytes: u64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChartYaml {
    api_version: Option<String>,
    name: Option<String>,
    version: Option<serde_json::Value>,
    app_version: Option<serde_json::Value>,
    #[serde(default)]
    dependencies: Option<Vec<Dependency>>,
}

#[derive(serde::Deserialize)]
struct RequirementsYaml {
    #[serde(default)]
    dependencies: Option<Vec<Dependency>>,
}

/// Checks the chart archive at `path` (see the module docs): entry rules while the archive
/// streams by, then Chart.yaml, then the dependencies.
pub fn check_archive(path: &Path, limits: &ArchiveLimits) -> Result<ChartMeta> {
    let refuse = Refusal { path };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let compressed_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if compressed_bytes > limits.max_compressed_bytes {
        return Err(refuse.archive(format!(
            "archive is {compressed_bytes} bytes, over the limit of {}",
            limits.max_compressed_bytes
        )));
    }
    let contents = read_entries(file, path, limits, &refuse)?;
    let chart = chart_yaml(&contents, &refuse)?;
    check_dependencies(&contents.packaged, &chart.dependencies, &refuse)?;
    Ok(ChartMeta {
        name: chart.name,
        version: chart.version,
        api_version: chart.api_version,
        app_version: chart.app_version,
        dependencies: chart.dependencies,
        digest: contents.digest,
        compressed_bytes,
        total_bytes: contents.total_bytes,
    })
}

/// Builds the integrity errors of one archive, naming the entry concerned.
struct Refusal<'a> {
    path: &'a Path,
}

impl Refusal<'_> {
    fn entry(&self, entry: &str, message: String) -> Error {
        Error::Integrity {
            target: format!("chart archive {} entry `{entry}`", self.path.display()),
            message,
        }
    }

    fn archive(&self, message: String) -> Error {
        Error::Integrity {
            target: format!("chart archive {}", self.path.display()),
            message,
        }
    }
}

/// What the entry pass keeps of an archive.
struct Contents {
    /// `Chart.yaml` and `requirements.yaml`: (entry name as written, bytes).
    chart_yaml: Option<(String, Vec<u8>)>,
    requirements_yaml: Option<(String, Vec<u8>)>,
    /// Under `charts/`: directory names (`redis/`) and file names (`redis-1.0.0.tgz`).
    packaged: BTreeSet<String>,
    /// Sum of the files' decompressed sizes.
    total_bytes: u64,
    /// sha256 of the whole archive file.
    digest: Digest,
}

/// How helm's loader treats one tar entry.
enum EntryKind {
    /// Directories and pax headers: skipped, as helm does.
    Skipped,
    /// A file of the chart.
    File,
}

/// The entry-type rules: helm's skips, and what this check refuses that helm reads as empty
/// files (links, devices, FIFOs).
fn entry_kind<R: Read>(
    entry: &tar::Entry<'_, R>,
    raw_name: &str,
) -> std::result::Result<EntryKind, String> {
    let header = entry.header();
    let kind = header.entry_type();
    // Helm skips directories (as Go's `FileInfo().IsDir()` sees them) and pax headers.
    let is_dir = kind.is_dir()
        || (header.as_old().linkflag == [0] && raw_name.ends_with('/'))
        || header.mode().is_ok_and(|m| m & 0o170_000 == 0o040_000);
    if is_dir || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
        return Ok(EntryKind::Skipped);
    }
    if kind.is_symlink() || kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        return Err(format!(
            "links are not allowed in a chart (points to `{target}`)"
        ));
    }
    if !(kind.is_file() || kind.is_gnu_sparse() || kind == tar::EntryType::Continuous) {
        return Err(format!("entry type {kind:?} is not allowed in a chart"));
    }
    Ok(EntryKind::File)
}

/// One streaming pass over the archive: hashes the compressed bytes, bounds the
/// decompressed stream, applies the entry, path and size rules, and keeps what the later
/// checks need.
fn read_entries(
    file: File,
    path: &Path,
    limits: &ArchiveLimits,
    refuse: &Refusal<'_>,
) -> Result<Contents> {
    let hashing = HashingReader {
        inner: BufReader::new(file),
        hasher: Hasher::new(),
    };
    let stream_bound = limits.max_stream_bytes;
    let decoder = BoundedReader {
        inner: flate2::read::GzDecoder::new(hashing),
        remaining: stream_bound,
    };
    let mut archive = tar::Archive::new(decoder);
    let not_tgz = |e: io::Error| {
        if e.kind() == io::ErrorKind::FileTooLarge {
            refuse.archive(format!(
                "decompressed archive is larger than {stream_bound} bytes"
            ))
        } else {
            refuse.archive(format!("not a gzip-compressed tar archive: {e}"))
        }
    };

    let mut files = 0u64;
    let mut remaining = limits.max_total_bytes;
    let mut chart_yaml = None;
    let mut requirements_yaml = None;
    let mut packaged = BTreeSet::new();
    for entry in archive.entries().map_err(not_tgz)? {
        let mut entry = entry.map_err(not_tgz)?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        match entry_kind(&entry, &raw_name).map_err(|why| refuse.entry(&raw_name, why))? {
            EntryKind::Skipped => continue,
            EntryKind::File => {}
        }
        let name =
            chart_file_name(&raw_name).map_err(|why| refuse.entry(&raw_name, why.to_string()))?;
        let size = entry.size();
        remaining = helm_rules::charge(remaining, size, limits.max_file_bytes).map_err(|why| {
            refuse.entry(
                &raw_name,
                match why {
                    SizeRefusal::File => format!(
                        "file is {size} bytes, over helm's per-file limit of {}",
                        limits.max_file_bytes
                    ),
                    SizeRefusal::Chart => format!(
                        "the chart's files reach helm's limit of {} bytes",
                        limits.max_total_bytes
                    ),
                },
            )
        })?;
        files += 1;

        if let Some(under) = name.strip_prefix("charts/") {
            match under.split_once('/') {
                Some((dir, _)) => packaged.insert(format!("{dir}/")),
                None => packaged.insert(under.to_string()),
            };
        }
        let keep = match name.as_str() {
            "Chart.yaml" => Some(&mut chart_yaml),
            "requirements.yaml" => Some(&mut requirements_yaml),
            _ => None,
        };
        match keep {
            Some(slot) => {
                let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                entry.read_to_end(&mut buf).map_err(not_tgz)?;
                *slot = Some((raw_name, buf));
            }
            None => {
                // Drain so the stream (and the bound) sees the bytes.
                io::copy(&mut entry, &mut io::sink()).map_err(not_tgz)?;
            }
        }
    }

    // Hash the rest of the file (gzip trailer, any trailing bytes).
    let mut hashing = archive.into_inner().inner.into_inner();
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::io(path, e))?;
    if files == 0 {
        return Err(refuse.archive("no files in chart archive".into()));
    }
    Ok(Contents {
        chart_yaml,
        requirements_yaml,
        packaged,
        total_bytes: limits.max_total_bytes - remaining,
        digest: hashing.hasher.finish(),
    })
}

/// What `Chart.yaml` (and, for apiVersion v1, `requirements.yaml`) declare.
struct ChartDeclaration {
    name: String,
    version: String,
    api_version: String,
    app_version: Option<String>,
    dependencies: Vec<Dependency>,
}

/// The metadata rules: `Chart.yaml` present and parsed, with `name` and `version`.
fn chart_yaml(contents: &Contents, refuse: &Refusal<'_>) -> Result<ChartDeclaration> {
    let Some((chart_yaml_name, chart_yaml)) = &contents.chart_yaml else {
        return Err(refuse.entry("Chart.yaml", "Chart.yaml is missing".into()));
    };
    let parsed: ChartYaml = crate::yaml::from_slice(strip_bom(chart_yaml))
        .map_err(|e| refuse.entry(chart_yaml_name, format!("invalid YAML: {e}")))?;
    let name = parsed
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| refuse.entry(chart_yaml_name, "`name` is missing".into()))?;
    let version = parsed
        .version
        .as_ref()
        .and_then(crate::yaml::scalar_text)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| refuse.entry(chart_yaml_name, "`version` is missing".into()))?;
    let api_version = parsed.api_version.unwrap_or_else(|| "v1".to_string());
    let app_version = parsed
        .app_version
        .as_ref()
        .and_then(crate::yaml::scalar_text);

    let mut dependencies = parsed.dependencies.unwrap_or_default();
    if api_version == "v1"
        && dependencies.is_empty()
        && let Some((req_name, req)) = &contents.requirements_yaml
    {
        let parsed: RequirementsYaml = crate::yaml::from_slice(strip_bom(req))
            .map_err(|e| refuse.entry(req_name, format!("invalid YAML: {e}")))?;
        dependencies = parsed.dependencies.unwrap_or_default();
    }
    Ok(ChartDeclaration {
        name,
        version,
        api_version,
        app_version,
        dependencies,
    })
}

/// The dependency rule: every declared dependency is packaged under `charts/` (nothing is
/// fetched later, so a `condition` does not make one optional).
fn check_dependencies(
    packaged: &BTreeSet<String>,
    dependencies: &[Dependency],
    refuse: &Refusal<'_>,
) -> Result<()> {
    match dependencies
        .iter()
        .find(|dep| !dependency_present(packaged, &dep.name))
    {
        None => Ok(()),
        Some(dep) => Err(refuse.entry(
            "charts/",
            format!(
                "dependency `{}`{} declared in Chart.yaml is not packaged under charts/ \
                 (run `helm dependency build` before packaging)",
                dep.name,
                dep.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// [`check_archive`] on a blocking thread (it reads and inflates the whole archive); an
/// integrity failure names `target`, the reference the chart was located for.
pub async fn check_archive_for(
    path: std::path::PathBuf,
    limits: ArchiveLimits,
    target: String,
) -> Result<ChartMeta> {
    let at = path.clone();
    let checked = tokio::task::spawn_blocking(move || check_archive(&path, &limits))
        .await
        .map_err(|e| Error::io(at, io::Error::other(e)))?;
    checked.map_err(|e| match e {
        Error::Integrity {
            target: inner,
            message,
        } => Error::Integrity {
            target,
            message: format!("{inner}: {message}"),
        },
        other => other,
    })
}

/// Helm drops a UTF-8 byte order mark at the start of every file.
fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
}

/// A dependency is packaged as `charts/<name>/…` or `charts/<name>-<version>.tgz`.
fn dependency_present(packaged: &BTreeSet<String>, name: &str) -> bool {
    packaged.iter().any(|entry| {
        if let Some(dir) = entry.strip_suffix('/') {
            return dir == name;
        }
        let Some(stem) = entry.strip_suffix(".tgz") else {
            return false;
        };
        stem == name
            || stem
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit() || c == 'v'))
    })
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Fails with `FileTooLarge` once more than `remaining` bytes were read.
struct BoundedReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for BoundedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.remaining = self
            .remaining
            .checked_sub(n as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::FileTooLarge, "decompression bound"))?;
        Ok(n)
    }
}
