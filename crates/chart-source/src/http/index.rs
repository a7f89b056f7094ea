//! A chart repository's `index.yaml`, parsed into a compact per-chart version table.
//!
//! Only the fields needed to resolve and fetch a chart are kept (version, URLs, digest,
//! created, deprecated); everything else (descriptions, maintainers, dependencies, …) is
//! skipped by serde as it is read, so a large index never becomes a YAML tree in memory.

use std::collections::HashMap;
use std::fmt;

use semver::Version;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::http::constraint::{Constraint, parse_version};

/// One chart version of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The version, parsed loosely (`v1.2` → `1.2.0`).
    pub version: Version,
    /// The version exactly as written in the index (what `helm pull --version` matches first).
    pub raw_version: Box<str>,
    /// Download URLs, absolute or relative to the repository URL. The first one is used.
    pub urls: Box<[Box<str>]>,
    /// The archive's sha256 when the index states it.
    pub digest: Option<Digest>,
    /// The index had a `digest` that is not a sha256: the entry cannot be verified.
    pub digest_invalid: bool,
    pub created: Option<Box<str>>,
    pub deprecated: bool,
}

/// A parsed index: chart name → versions, highest first.
#[derive(Debug, Default, Clone)]
pub struct RepoIndex {
    charts: HashMap<Box<str>, Vec<IndexEntry>>,
    /// Entries dropped because their version is not a semantic version (Helm drops them too).
    pub skipped: usize,
}

/// Limits on what an index may hold.
pub const DEFAULT_MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

impl RepoIndex {
    /// Parses `index.yaml` (or its JSON form). `source` names the repository in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<RepoIndex> {
        let invalid = |message: String| Error::Integrity {
            target: source.to_string(),
            message: format!("index.yaml is not a valid chart repository index{message}"),
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            invalid(format!(" at line {line}: not UTF-8"))
        })?;
        // Fast path for the block layout `helm repo index` writes: each chart's section is
        // parsed on its own, so the YAML parser's event buffer never holds more than one
        // chart. Anything unusual (or any error) falls back to parsing the whole document,
        // which also gives exact error lines.
        let raw = match parse_by_chart(text) {
            Some(raw) => raw,
            None => serde_norway::from_str::<RawIndex>(text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!(" at line {} column {}", l.line(), l.column()))
                    .unwrap_or_default();
                invalid(format!("{at}: {e}"))
            })?,
        };
        if raw.api_version.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Integrity {
                target: source.to_string(),
                message: "index.yaml has no apiVersion: this is not a chart repository index"
                    .to_string(),
            });
        }
        let Entries { charts, skipped } = raw.entries.unwrap_or_default();
        Ok(RepoIndex { charts, skipped })
    }

    /// The versions of `chart`, highest first.
    pub fn chart(&self, chart: &str) -> Option<&[IndexEntry]> {
        self.charts.get(chart).map(Vec::as_slice)
    }

    pub fn chart_count(&self) -> usize {
        self.charts.len()
    }

    pub fn entry_count(&self) -> usize {
        self.charts.values().map(Vec::len).sum()
    }

    /// Resolves `requested` (an exact version or a constraint; empty = latest stable) the
    /// way `helm pull --repo URL CHART --version V` does: an entry whose version string is
    /// exactly `requested` wins; otherwise the highest version satisfying the constraint.
    pub fn resolve(&self, chart: &str, requested: &str, source: &str) -> Result<&IndexEntry> {
        let Some(entries) = self.chart(chart) else {
            let mut names: Vec<&str> = self.charts.keys().map(|k| &**k).collect();
            names.sort_unstable();
            let similar: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| n.contains(chart) || chart.contains(*n))
                .take(5)
                .collect();
            let hint = if similar.is_empty() {
                format!("the index has {} charts", names.len())
            } else {
                format!("similar names: {}", similar.join(", "))
            };
            return Err(Error::NotFound {
                target: source.to_string(),
                message: format!("chart `{chart}` is not in the repository index ({hint})"),
            });
        };
        let requested = requested.trim();
        if !requested.is_empty()
            && let Some(exact) = entries.iter().find(|e| &*e.raw_version == requested)
        {
            return Ok(exact);
        }
        let constraint_text = if requested.is_empty() { "*" } else { requested };
        let constraint = Constraint::parse(constraint_text)
            .map_err(|e| Error::config("source.chart.version", e))?;
        // Entries are sorted highest first: the first match is the best.
        if let Some(found) = entries.iter().find(|e| constraint.matches(&e.version)) {
            return Ok(found);
        }
        Err(Error::NotFound {
            target: source.to_string(),
            message: format!(
                "no version of chart `{chart}` matches `{constraint_text}`; nearest available: {}",
                nearest_versions(entries, requested)
            ),
        })
    }
}

/// Up to five versions near `requested`: around where it would sort when it is a version,
/// otherwise the highest ones.
fn nearest_versions(entries: &[IndexEntry], requested: &str) -> String {
    if entries.is_empty() {
        return "none".to_string();
    }
    let lower_bound = requested
        .trim_start_matches(['=', '<', '>', '~', '^', '!', ' '])
        .split([' ', ','])
        .next()
        .and_then(|v| parse_version(v).ok());
    let picked: Vec<&IndexEntry> = match lower_bound {
        Some(target) => {
            // entries are descending; find the first entry below the target.
            let pos = entries
                .iter()
                .position(|e| e.version.cmp_precedence(&target).is_lt())
                .unwrap_or(entries.len());
            let start = pos.saturating_sub(2);
            let end = (start + 5).min(entries.len());
            let start = end.saturating_sub(5);
            entries[start..end].iter().collect()
        }
        None => entries.iter().take(5).collect(),
    };
    picked
        .iter()
        .map(|e| &*e.raw_version)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a block-layout index chart by chart: the top-level keys other than `entries`,
/// then each `  NAME:` section of `entries` separately. `None` when the layout is not the
/// plain block layout or a piece does not parse (the caller then parses the whole document).
fn parse_by_chart(text: &str) -> Option<RawIndex> {
    let mut offset = 0;
    let mut entries_at = None;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "entries:" {
            entries_at = Some(offset);
            break;
        }
        offset += line.len();
    }
    let entries_at = entries_at?;
    let body_start = entries_at + text[entries_at..].find('\n')? + 1;
    // The entries section ends at the next line starting in column 0 (other than a comment).
    let mut end = text.len();
    let mut pos = body_start;
    let mut sections: Vec<(usize, usize)> = Vec::new();
    let mut indent: Option<usize> = None;
    for line in text[body_start..].split_inclusive('\n') {
        let content = line.trim_end();
        let trimmed = content.trim_start();
        let line_indent = content.len() - trimmed.len();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            if line_indent == 0 {
                end = pos;
                break;
            }
            let key_indent = *indent.get_or_insert(line_indent);
            if line_indent < key_indent || trimmed.starts_with("---") || trimmed.starts_with("...")
            {
                return None;
            }
            if line_indent == key_indent && !trimmed.starts_with('-') {
                // A chart key: `NAME:` alone on its line.
                if !trimmed.ends_with(':') || trimmed.contains(": ") {
                    return None;
                }
                if let Some(last) = sections.last_mut() {
                    last.1 = pos;
                }
                sections.push((pos, text.len()));
            } else if sections.is_empty() {
                return None;
            }
        }
        pos += line.len();
    }
    if let Some(last) = sections.last_mut() {
        last.1 = last.1.min(end);
    }
    let mut header = String::with_capacity(entries_at + (text.len() - end) + 16);
    header.push_str(&text[..entries_at]);
    header.push_str("entries:\n");
    header.push_str(&text[end..]);
    let mut raw: RawIndex = serde_norway::from_str(&header).ok()?;
    let mut all = Entries::default();
    for (start, stop) in sections {
        let part: Entries = serde_norway::from_str(&text[start..stop]).ok()?;
        all.skipped += part.skipped;
        all.charts.extend(part.charts);
    }
    raw.entries = Some(all);
    Some(raw)
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    entries: Option<Entries>,
}

#[derive(Default)]
struct Entries {
    charts: HashMap<Box<str>, Vec<IndexEntry>>,
    skipped: usize,
}

/// The fields kept from an entry; serde skips every other field without building it.
#[derive(Deserialize)]
struct RawEntry {
    version: Option<String>,
    urls: Option<Vec<String>>,
    digest: Option<String>,
    created: Option<String>,
    deprecated: Option<bool>,
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of chart names to lists of chart versions")
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Entries, E> {
                Ok(Entries::default())
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut out = Entries::default();
                while let Some(name) = map.next_key::<String>()? {
                    let raw: Option<Vec<Option<RawEntry>>> = map.next_value()?;
                    let mut versions = Vec::with_capacity(raw.as_ref().map_or(0, Vec::len));
                    for entry in raw.into_iter().flatten().flatten() {
                        match compact(entry) {
                            Some(e) => versions.push(e),
                            None => out.skipped += 1,
                        }
                    }
                    // Highest first; stable, so index order breaks ties.
                    versions.sort_by(|a: &IndexEntry, b: &IndexEntry| {
                        b.version.cmp_precedence(&a.version)
                    });
                    versions.shrink_to_fit();
                    out.charts.insert(name.into_boxed_str(), versions);
                }
                Ok(out)
            }
        }
        d.deserialize_any(EntriesVisitor)
    }
}

fn compact(raw: RawEntry) -> Option<IndexEntry> {
    let raw_version = raw.version?;
    let version = parse_version(&raw_version).ok()?;
    let (digest, digest_invalid) = match raw.digest.as_deref().map(str::trim) {
        None | Some("") => (None, false),
        Some(text) => {
            let parsed = match text.strip_prefix("sha256:") {
                Some(hex) => Digest::from_hex(hex),
                None => Digest::from_hex(text),
            };
            match parsed {
                Ok(d) => (Some(d), false),
                Err(_) => (None, true),
            }
        }
    };
    Some(IndexEntry {
        version,
        raw_version: raw_version.into_boxed_str(),
        urls: raw
            .urls
            .unwrap_or_default()
            .into_iter()
            .map(String::into_boxed_str)
            .collect(),
        digest,
        digest_invalid,
        created: raw.created.map(String::into_boxed_str),
        deprecated: raw.deprecated.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Category;

    const INDEX: &str = r#"apiVersion: v1
entries:
  nginx:
  - apiVersion: v2
    appVersion: 1.16.0
    created: "2026-11-23T09:00:00.000000000Z"
    description: A Helm chart for Kubernetes
    digest: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
    maintainers:
    - name: someone
      email: someone@example.com
    name: nginx
    type: application
    urls:
    - nginx-1.2.0.tgz
    version: 1.2.0
  - name: nginx
    urls: [https://other.example/nginx-1.10.0.tgz]
    version: 1.10.0
    dependencies:
    - name: common
      version: ^2
      repository: https://charts.example
  - name: nginx
    urls: [nginx-2.0.0-rc.1.tgz]
    version: 2.0.0-rc.1
  - name: nginx
    urls: [nginx-v0.9.tgz]
    version: v0.9
    deprecated: true
  - name: nginx
    urls: [bad.tgz]
    version: not-a-version
  redis:
  - name: redis
    version: 7.0.0
    urls: [redis-7.0.0.tgz]
    digest: nothex
generated: "2026-11-23T09:00:00Z"
serverInfo: {contextPath: /x}
"#;

    #[test]
    fn parses_compactly_sorted_highest_first() {
        let index = RepoIndex::parse(INDEX.as_bytes(), "http://repo").unwrap();
        let nginx = index.chart("nginx").unwrap();
        let versions: Vec<&str> = nginx.iter().map(|e| &*e.raw_version).collect();
        assert_eq!(versions, ["2.0.0-rc.1", "1.10.0", "1.2.0", "v0.9"]);
        assert_eq!(index.skipped, 1);
        assert_eq!(index.chart_count(), 2);
        assert_eq!(index.entry_count(), 5);
        assert_eq!(
            nginx[2].digest.map(|d| d.hex()).as_deref(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert!(nginx[3].deprecated);
        assert_eq!(&*nginx[2].urls[0], "nginx-1.2.0.tgz");
        assert!(index.chart("redis").unwrap()[0].digest_invalid);
    }

    #[test]
    fn resolves_like_helm() {
        let index = RepoIndex::parse(INDEX.as_bytes(), "http://repo").unwrap();
        let v = |req: &str| {
            index
                .resolve("nginx", req, "http://repo")
                .map(|e| e.raw_version.to_string())
        };
        assert_eq!(v("").unwrap(), "1.10.0");
        assert_eq!(v("1.2.0").unwrap(), "1.2.0");
        assert_eq!(v("^1").unwrap(), "1.10.0");
        assert_eq!(v("~1.2").unwrap(), "1.2.0");
        assert_eq!(v(">=1.0.0-0").unwrap(), "2.0.0-rc.1");
        assert_eq!(v("2.0.0-rc.1").unwrap(), "2.0.0-rc.1");
        assert_eq!(v("v0.9").unwrap(), "v0.9");
        assert_eq!(v("0.9.0").unwrap(), "v0.9");
        let err = v("^3").unwrap_err();
        assert_eq!(err.category(), Category::NotFound);
        assert!(err.to_string().contains("1.10.0"), "{err}");
        let err = v("1.5.0").unwrap_err();
        assert!(err.to_string().contains("1.10.0, 1.2.0"), "{err}");
        assert_eq!(v(">>").unwrap_err().category(), Category::Config);
        let err = index.resolve("ngin", "1", "http://repo").unwrap_err();
        assert_eq!(err.category(), Category::NotFound);
        assert!(err.to_string().contains("nginx"), "{err}");
    }

    #[test]
    fn malformed_index_names_the_line() {
        let bad =
            "apiVersion: v1\nentries:\n  nginx:\n  - version: 1.0.0\n    urls: [a\n  bad: : :\n";
        let err = RepoIndex::parse(bad.as_bytes(), "http://repo").unwrap_err();
        assert_eq!(err.category(), Category::Integrity);
        let text = err.to_string();
        assert!(text.contains("line "), "{text}");
        assert!(text.contains("http://repo"), "{text}");
        let html = "<html><body>Not an index</body></html>";
        let err = RepoIndex::parse(html.as_bytes(), "http://repo").unwrap_err();
        assert_eq!(err.category(), Category::Integrity);
    }

    #[test]
    fn scalars_that_look_like_numbers_stay_versions() {
        let yaml = "apiVersion: v1\nentries:\n  a:\n  - version: 1.10\n    urls: [a.tgz]\n    deprecated: false\n  - version: 2\n    urls: [b.tgz]\n  empty:\n";
        let index = RepoIndex::parse(yaml.as_bytes(), "http://repo").unwrap();
        let raw: Vec<&str> = index
            .chart("a")
            .unwrap()
            .iter()
            .map(|e| &*e.raw_version)
            .collect();
        assert_eq!(raw, ["2", "1.10"]);
        assert!(index.chart("empty").unwrap().is_empty());
        let none = RepoIndex::parse(b"apiVersion: v1\nentries:\n", "http://repo").unwrap();
        assert_eq!(none.chart_count(), 0);
        let err = RepoIndex::parse(b"apiVersion: v1\nentries: [\n", "http://repo").unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn chart_by_chart_parsing_equals_whole_document_parsing() {
        let fast = parse_by_chart(INDEX).expect("the block layout takes the fast path");
        let whole: RawIndex = serde_norway::from_str(INDEX).unwrap();
        assert_eq!(fast.api_version, whole.api_version);
        let (fast, whole) = (fast.entries.unwrap(), whole.entries.unwrap());
        assert_eq!(fast.skipped, whole.skipped);
        assert_eq!(fast.charts, whole.charts);
        // Layouts it does not handle go to the whole-document parser.
        assert!(parse_by_chart("apiVersion: v1\nentries: {a: []}\n").is_none());
        assert!(parse_by_chart("apiVersion: v1\nentries:\n  a: []\n").is_none());
        let index = RepoIndex::parse(b"apiVersion: v1\nentries:\n  a: []\n", "x").unwrap();
        assert_eq!(index.chart_count(), 1);
    }

    #[test]
    fn json_index_is_accepted() {
        let json = r#"{"apiVersion":"v1","entries":{"a":[{"name":"a","version":"1.0.0","urls":["a-1.0.0.tgz"]}]}}"#;
        let index = RepoIndex::parse(json.as_bytes(), "http://repo").unwrap();
        assert_eq!(index.chart("a").unwrap().len(), 1);
    }
}
