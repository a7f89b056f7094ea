//! Chart archive checks before a chart is handed on (sizes, paths, links, Chart.yaml,
//! dependencies).
//!
//! [`check_archive`] reads a `.tgz` once, streaming: it hashes the compressed bytes,
//! decompresses with a bound, and checks every entry. Rules:
//! - compressed size, total decompressed size, per-file size and entry count are bounded
//!   ([`ArchiveLimits`], Helm's own defaults for the decompressed sizes);
//! - only regular files and directories: links (symbolic or hard), devices, FIFOs and sparse
//!   files are rejected — a chart needs none of them, and rejecting them all means no link
//!   can leave the chart;
//! - no absolute paths, no `..`; exactly one top-level directory;
//! - `<top>/Chart.yaml` present and parsed, with `name` and `version`; when `expect` is
//!   given they must match (a tag's `_` is read as `+`);
//! - every dependency declared in `Chart.yaml` (apiVersion v2) or `requirements.yaml` (v1)
//!   is present under `charts/`, as a directory or a `.tgz` (a `condition` does not make it
//!   optional: nothing is fetched later).
//!
//! Every failure is an [`Error::Integrity`] naming the archive entry concerned.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

/// Size bounds for a chart archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The `.tgz` itself.
    pub max_compressed_bytes: u64,
    /// Sum of the files' sizes once decompressed.
    pub max_total_bytes: u64,
    /// Any single file.
    pub max_file_bytes: u64,
    /// Number of tar entries (files and directories).
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    /// 20 MiB compressed, 100 MiB decompressed, 5 MiB per file (Helm's limits), 10 000 entries.
    fn default() -> Self {
        ArchiveLimits {
            max_compressed_bytes: 20 << 20,
            max_total_bytes: 100 << 20,
            max_file_bytes: 5 << 20,
            max_entries: 10_000,
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

/// Checks the chart archive at `path` (see the module docs). `expect` is the chart name and
/// version the reference asked for.
pub fn check_archive(
    path: &Path,
    limits: &ArchiveLimits,
    expect: Option<(&str, &str)>,
) -> Result<ChartMeta> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let compressed_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let fail = |entry: &str, message: String| Error::Integrity {
        target: if entry.is_empty() {
            format!("chart archive {}", path.display())
        } else {
            format!("chart archive {} entry `{entry}`", path.display())
        },
        message,
    };
    if compressed_bytes > limits.max_compressed_bytes {
        return Err(fail(
            "",
            format!(
                "archive is {compressed_bytes} bytes, over the limit of {}",
                limits.max_compressed_bytes
            ),
        ));
    }

    let hashing = HashingReader {
        inner: BufReader::new(file),
        hasher: Hasher::new(),
    };
    // Headers and padding take space too: allow 1 KiB per entry on top of the content.
    let stream_bound = limits
        .max_total_bytes
        .saturating_add(limits.max_entries.saturating_mul(1024))
        .saturating_add(64 * 1024);
    let decoder = BoundedReader {
        inner: flate2::read::GzDecoder::new(hashing),
        remaining: stream_bound,
    };
    let mut archive = tar::Archive::new(decoder);
    let not_tgz = |e: io::Error| {
        if e.kind() == io::ErrorKind::FileTooLarge {
            fail(
                "",
                format!("decompressed archive is larger than {stream_bound} bytes"),
            )
        } else {
            fail("", format!("not a gzip-compressed tar archive: {e}"))
        }
    };

    let mut top: Option<String> = None;
    let mut entries = 0u64;
    let mut total = 0u64;
    let mut chart_yaml: Option<Vec<u8>> = None;
    let mut requirements_yaml: Option<Vec<u8>> = None;
    // Direct children of `<top>/charts/`: directory names and file names.
    let mut packaged: BTreeSet<String> = BTreeSet::new();

    for entry in archive.entries().map_err(not_tgz)? {
        let mut entry = entry.map_err(not_tgz)?;
        entries += 1;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entries > limits.max_entries {
            return Err(fail(
                &raw_name,
                format!("more than {} entries", limits.max_entries),
            ));
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(fail(
                &raw_name,
                format!("links are not allowed in a chart (points to `{target}`)"),
            ));
        }
        let is_dir = kind.is_dir();
        if !(kind.is_file() || is_dir || kind == tar::EntryType::Continuous) {
            return Err(fail(
                &raw_name,
                format!("entry type {kind:?} is not allowed in a chart"),
            ));
        }

        // Path rules: relative, no `..`, under the single top-level directory.
        let entry_path = entry.path().map_err(not_tgz)?.into_owned();
        let mut parts: Vec<String> = Vec::new();
        for component in entry_path.components() {
            match component {
                Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(fail(&raw_name, "path contains `..`".into()));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(fail(&raw_name, "absolute path".into()));
                }
            }
        }
        if raw_name.starts_with('/') || raw_name.contains('\\') {
            return Err(fail(&raw_name, "absolute or backslash path".into()));
        }
        let Some(first) = parts.first() else {
            continue;
        };
        match &top {
            None => top = Some(first.clone()),
            Some(t) if t != first => {
                return Err(fail(
                    &raw_name,
                    format!("more than one top-level directory (`{t}` and `{first}`)"),
                ));
            }
            Some(_) => {}
        }
        if parts.len() == 1 && !is_dir {
            return Err(fail(
                &raw_name,
                "a file at the top level: a chart archive holds one directory".into(),
            ));
        }

        let size = entry.header().size().map_err(not_tgz)?;
        if !is_dir {
            if size > limits.max_file_bytes {
                return Err(fail(
                    &raw_name,
                    format!(
                        "file is {size} bytes, over the per-file limit of {}",
                        limits.max_file_bytes
                    ),
                ));
            }
            total = total.saturating_add(size);
            if total > limits.max_total_bytes {
                return Err(fail(
                    &raw_name,
                    format!(
                        "decompressed chart is over the limit of {} bytes",
                        limits.max_total_bytes
                    ),
                ));
            }
        }

        let rel: Vec<&str> = parts[1..].iter().map(String::as_str).collect();
        if rel.len() >= 2 && rel[0] == "charts" {
            packaged.insert(format!(
                "{}{}",
                rel[1],
                if rel.len() > 2 || is_dir { "/" } else { "" }
            ));
        }
        let keep = match rel.as_slice() {
            ["Chart.yaml"] => Some(&mut chart_yaml),
            ["requirements.yaml"] => Some(&mut requirements_yaml),
            _ => None,
        };
        match keep {
            Some(slot) if !is_dir => {
                let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                (&mut entry)
                    .take(limits.max_file_bytes)
                    .read_to_end(&mut buf)
                    .map_err(not_tgz)?;
                *slot = Some(buf);
            }
            _ => {
                // Drain so the stream (and the bound) sees the bytes.
                io::copy(
                    &mut (&mut entry).take(limits.max_file_bytes),
                    &mut io::sink(),
                )
                .map_err(not_tgz)?;
            }
        }
    }

    // Hash the rest of the file (gzip trailer, any trailing bytes).
    let mut hashing = archive.into_inner().inner.into_inner();
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::io(path, e))?;
    let digest = hashing.hasher.finish();

    let Some(top) = top else {
        return Err(fail("", "empty archive".into()));
    };
    let chart_yaml_name = format!("{top}/Chart.yaml");
    let Some(chart_yaml) = chart_yaml else {
        return Err(fail(&chart_yaml_name, "Chart.yaml is missing".into()));
    };
    let parsed: ChartYaml = crate::yaml::from_slice(&chart_yaml)
        .map_err(|e| fail(&chart_yaml_name, format!("invalid YAML: {e}")))?;
    let name = parsed
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| fail(&chart_yaml_name, "`name` is missing".into()))?;
    let version = parsed
        .version
        .as_ref()
        .and_then(crate::yaml::scalar_text)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| fail(&chart_yaml_name, "`version` is missing".into()))?;
    let api_version = parsed.api_version.unwrap_or_else(|| "v1".to_string());
    let app_version = parsed
        .app_version
        .as_ref()
        .and_then(crate::yaml::scalar_text);

    let mut dependencies = parsed.dependencies.unwrap_or_default();
    if api_version == "v1"
        && dependencies.is_empty()
        && let Some(req) = requirements_yaml
    {
        let req_name = format!("{top}/requirements.yaml");
        let parsed: RequirementsYaml = crate::yaml::from_slice(&req)
            .map_err(|e| fail(&req_name, format!("invalid YAML: {e}")))?;
        dependencies = parsed.dependencies.unwrap_or_default();
    }
    for dep in &dependencies {
        if !dependency_present(&packaged, &dep.name) {
            return Err(fail(
                &format!("{top}/charts/"),
                format!(
                    "dependency `{}`{} declared in Chart.yaml is not packaged under charts/ \
                     (run `helm dependency build` before packaging)",
                    dep.name,
                    dep.version
                        .as_deref()
                        .map(|v| format!(" {v}"))
                        .unwrap_or_default()
                ),
            ));
        }
    }

    if let Some((want_name, want_version)) = expect {
        if name != want_name {
            return Err(fail(
                &chart_yaml_name,
                format!("chart name is `{name}`, the reference asks for `{want_name}`"),
            ));
        }
        let want_version = want_version.replace('_', "+");
        if version != want_version {
            return Err(fail(
                &chart_yaml_name,
                format!("chart version is `{version}`, the reference asks for `{want_version}`"),
            ));
        }
    }

    Ok(ChartMeta {
        name,
        version,
        api_version,
        app_version,
        dependencies,
        digest,
        compressed_bytes,
        total_bytes: total,
    })
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
