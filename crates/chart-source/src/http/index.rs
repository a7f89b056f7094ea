//! A chart repository's `index.yaml`, parsed into a compact per-chart version table.
//!
//! Only the fields needed to resolve and fetch a chart are kept (version, URLs, digest,
//! created, deprecated); everything else (descriptions, maintainers, dependencies, …) is
//! parsed but not built, as the parser's events stream by, so a large index never becomes
//! a YAML tree in memory. The YAML rules and bounds are [`crate::yaml`]'s (helm's, with an
//! alias budget): one semantics, whatever the layout.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Span};
use semver::Version;
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::http::constraint::{Constraint, parse_version};
use crate::yaml::{self, Composer};

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
        let raw = read_index(text).map_err(|e| invalid(format!(": {e}")))?;
        if raw.api_version.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Integrity {
                target: source.to_string(),
                message: "index.yaml has no apiVersion: this is not a chart repository index"
                    .to_string(),
            });
        }
        let Entries { charts, skipped } = raw.entries;
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

/// What is kept of the whole index.
#[derive(Debug, Default)]
struct RawIndex {
    api_version: Option<String>,
    entries: Entries,
}

#[derive(Debug, Default, PartialEq)]
struct Entries {
    charts: HashMap<Box<str>, Vec<IndexEntry>>,
    skipped: usize,
}

/// The fields of an entry that are built; every other field is parsed (and bounded) but
/// never built.
const ENTRY_FIELDS: [&str; 5] = ["version", "urls", "digest", "created", "deprecated"];

/// Reads the index from the parser's events: the top-level mapping, `entries`, each chart's
/// list and each entry are walked as they stream by, only [`ENTRY_FIELDS`] are built, and
/// anything unusual for that walk (an anchored or aliased collection, a merge key, a flow
/// or JSON layout of any shape) is composed as a value and read by the same rules, so the
/// result is always what a whole-document parse gives.
fn read_index(text: &str) -> yaml::Result<RawIndex> {
    match read_streaming(text) {
        // A shape error is seen as soon as its entry streams by, where a whole-document
        // reading would first meet any syntax error further on (fuzzing found this): read
        // the document whole then, so the error is the same either way.
        Err(e) if e.kind == yaml::ErrorKind::Shape => read_whole(text),
        other => other,
    }
}

/// The whole-document reading, as strict as the streaming one: compose, then read.
fn read_whole(text: &str) -> yaml::Result<RawIndex> {
    let mut c = Composer::new(text, yaml::Limits::default())?.strict();
    let mut out = RawIndex::default();
    if let Some((ev, span)) = c.start_document()? {
        let value = c.node(ev, span, true)?.value.unwrap_or_default();
        index_from_value(value, &mut out)?;
    }
    Ok(out)
}

fn read_streaming(text: &str) -> yaml::Result<RawIndex> {
    let mut c = Composer::new(text, yaml::Limits::default())?.strict();
    let mut out = RawIndex::default();
    let Some((ev, span)) = c.start_document()? else {
        return Ok(out);
    };
    let Event::MappingStart(0, _) = ev else {
        let value = c.node(ev, span, true)?.value.unwrap_or_default();
        return index_from_value(value, &mut out).map(|()| out);
    };
    each_key(&mut c, &span, |c, key, ev, value_span| {
        match key {
            Key::Merge(value) => index_from_value(value, &mut out)?,
            Key::Named(name) => match name.as_str() {
                "apiVersion" => {
                    let value = c.node(ev, value_span, true)?.value.unwrap_or_default();
                    out.api_version = string_field(&value, "apiVersion")?;
                }
                "entries" => out.entries = read_entries(c, ev, value_span)?,
                _ => {
                    c.node(ev, value_span, false)?;
                }
            },
        }
        Ok(())
    })?;
    Ok(out)
}

/// A key of a block mapping walked by [`each_key`].
enum Key {
    /// `<<`: the mapping its value stands for, merged into this one.
    Merge(Value),
    Named(String),
}

/// Walks the block mapping that starts at `span` key by key, in document order, handing
/// each key and its value's first event to `f`, which consumes the value (a merge key's
/// value is composed here). A key set twice, by merges too, is an error, as in helm's
/// strict reading of index.yaml (fuzzing found duplicate chart names read leniently).
fn each_key<'a>(
    c: &mut Composer<'a>,
    span: &Span,
    mut f: impl FnMut(&mut Composer<'a>, Key, Event<'a>, Span) -> yaml::Result<()>,
) -> yaml::Result<()> {
    c.enter(span)?;
    let mut seen = HashSet::new();
    loop {
        let (ev, key_span) = c.next_event()?;
        if matches!(ev, Event::MappingEnd) {
            break;
        }
        let merge = yaml::is_merge_key(&ev);
        let key = c.node(ev, key_span, true)?.value.unwrap_or_default();
        let (ev, value_span) = c.next_event()?;
        let key = if merge {
            let value = merged(c, ev.clone(), value_span)?;
            for name in value.as_object().into_iter().flat_map(Map::keys) {
                c.once(&mut seen, name, &value_span)?;
            }
            Key::Merge(value)
        } else {
            let name = yaml::key_string(key, &key_span)?;
            c.once(&mut seen, &name, &key_span)?;
            Key::Named(name)
        };
        f(c, key, ev, value_span)?;
    }
    c.leave();
    Ok(())
}

fn read_entries<'a>(c: &mut Composer<'a>, ev: Event<'a>, span: Span) -> yaml::Result<Entries> {
    let Event::MappingStart(0, _) = ev else {
        let value = c.node(ev, span, true)?.value.unwrap_or_default();
        return entries_from_value(value);
    };
    let mut out = Entries::default();
    each_key(c, &span, |c, key, ev, value_span| {
        let name = match key {
            Key::Merge(value) => {
                let part = entries_from_value(value)?;
                out.skipped += part.skipped;
                out.charts.extend(part.charts);
                return Ok(());
            }
            Key::Named(name) => name,
        };
        let (versions, skipped) = match ev {
            Event::SequenceStart(0, _) => {
                c.enter(&value_span)?;
                let mut entries = Vec::new();
                let mut skipped = 0;
                loop {
                    let (ev, item_span) = c.next_event()?;
                    let item = match ev {
                        Event::SequenceEnd => break,
                        Event::MappingStart(0, _) => {
                            let keep = |k: &str| ENTRY_FIELDS.contains(&k);
                            c.mapping(&item_span, true, Some(&keep))?.value
                        }
                        other => c.node(other, item_span, true)?.value,
                    };
                    match entry_from_value(item.unwrap_or_default(), &name)? {
                        Some(Some(entry)) => entries.push(entry),
                        Some(None) => skipped += 1,
                        None => {}
                    }
                }
                c.leave();
                (entries, skipped)
            }
            other => {
                let value = c.node(other, value_span, true)?.value.unwrap_or_default();
                versions_from_value(value, &name)?
            }
        };
        out.skipped += skipped;
        out.charts.insert(name.into_boxed_str(), sorted(versions));
        Ok(())
    })?;
    Ok(out)
}

/// The mapping a merge key's value (`<<: …`) stands for.
fn merged<'a>(c: &mut Composer<'a>, ev: Event<'a>, span: Span) -> yaml::Result<Value> {
    let value = c.node(ev, span, true)?.value.unwrap_or_default();
    let mut map = Map::new();
    yaml::merge_into(&mut map, value, &span)?;
    Ok(Value::Object(map))
}

fn shape(message: String) -> yaml::Error {
    yaml::Error::shape(message)
}

fn index_from_value(value: Value, out: &mut RawIndex) -> yaml::Result<()> {
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return Ok(()),
        _ => return Err(shape("the document is not a mapping".to_string())),
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" => out.api_version = string_field(&value, "apiVersion")?,
            "entries" => out.entries = entries_from_value(value)?,
            _ => {}
        }
    }
    Ok(())
}

fn entries_from_value(value: Value) -> yaml::Result<Entries> {
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return Ok(Entries::default()),
        _ => return Err(shape("`entries` is not a mapping".to_string())),
    };
    let mut out = Entries::default();
    for (name, versions) in map {
        let (versions, skipped) = versions_from_value(versions, &name)?;
        out.skipped += skipped;
        out.charts.insert(name.into_boxed_str(), sorted(versions));
    }
    Ok(out)
}

fn versions_from_value(value: Value, chart: &str) -> yaml::Result<(Vec<IndexEntry>, usize)> {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Ok((Vec::new(), 0)),
        _ => return Err(shape(format!("`entries.{chart}` is not a list"))),
    };
    let mut entries = Vec::with_capacity(items.len());
    let mut skipped = 0;
    for item in items {
        match entry_from_value(item, chart)? {
            Some(Some(entry)) => entries.push(entry),
            Some(None) => skipped += 1,
            None => {}
        }
    }
    Ok((entries, skipped))
}

/// Highest first; stable, so index order breaks ties.
fn sorted(mut versions: Vec<IndexEntry>) -> Vec<IndexEntry> {
    versions.sort_by(|a, b| b.version.cmp_precedence(&a.version));
    versions.shrink_to_fit();
    versions
}

/// A string field as helm reads it into a Go string (numbers and booleans become text).
fn string_field(value: &Value, field: &str) -> yaml::Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::Array(_) | Value::Object(_) => Err(shape(format!("`{field}` is not a string"))),
        scalar => Ok(yaml::scalar_text(scalar)),
    }
}

/// One entry: `None` for a null item (helm skips it), `Some(None)` for an entry dropped
/// because its version is missing or not a semantic version (helm drops those too).
fn entry_from_value(value: Value, chart: &str) -> yaml::Result<Option<Option<IndexEntry>>> {
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return Ok(None),
        _ => {
            return Err(shape(format!(
                "an entry of `entries.{chart}` is not a mapping"
            )));
        }
    };
    let field = |name: &str| map.get(name).unwrap_or(&Value::Null);
    let at = |name: &str| format!("entries.{chart}[].{name}");
    let urls = match field("urls") {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|u| string_field(u, &at("urls")).map(Option::unwrap_or_default))
            .collect::<yaml::Result<_>>()?,
        _ => return Err(shape(format!("`{}` is not a list", at("urls")))),
    };
    let deprecated = match field("deprecated") {
        Value::Null => false,
        Value::Bool(b) => *b,
        _ => return Err(shape(format!("`{}` is not a boolean", at("deprecated")))),
    };
    let raw = RawEntry {
        version: string_field(field("version"), &at("version"))?,
        urls,
        digest: string_field(field("digest"), &at("digest"))?,
        created: string_field(field("created"), &at("created"))?,
        deprecated,
    };
    Ok(Some(compact(raw)))
}

/// Checks that the streaming reader and a whole-document reading of `text` (compose the
/// value strictly, then read it) agree: the same index, or errors of the same kind. The unit tests
/// and the `index_streamed` fuzz target hold the streaming reader to this.
#[doc(hidden)]
pub fn streaming_agrees_with_whole_document(text: &str) -> std::result::Result<(), String> {
    // Strict like helm's reading of index.yaml: a key set twice is an error either way.
    match (read_index(text), read_whole(text)) {
        (Ok(s), Ok(w)) if s.api_version == w.api_version && s.entries == w.entries => Ok(()),
        (Err(s), Err(w)) if s.kind == w.kind => Ok(()),
        (s, w) => Err(format!("{text:?}: streamed {s:?}, whole document {w:?}")),
    }
}

/// The fields kept from an entry.
struct RawEntry {
    version: Option<String>,
    urls: Vec<String>,
    digest: Option<String>,
    created: Option<String>,
    deprecated: bool,
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
        urls: raw.urls.into_iter().map(String::into_boxed_str).collect(),
        digest,
        digest_invalid,
        created: raw.created.map(String::into_boxed_str),
        deprecated: raw.deprecated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCategory;

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
        assert_eq!(err.category(), ErrorCategory::NotFound);
        assert!(err.to_string().contains("1.10.0"), "{err}");
        let err = v("1.5.0").unwrap_err();
        assert!(err.to_string().contains("1.10.0, 1.2.0"), "{err}");
        assert_eq!(v(">>").unwrap_err().category(), ErrorCategory::Config);
        let err = index.resolve("ngin", "1", "http://repo").unwrap_err();
        assert_eq!(err.category(), ErrorCategory::NotFound);
        assert!(err.to_string().contains("nginx"), "{err}");
    }

    #[test]
    fn malformed_index_names_the_line() {
        let bad =
            "apiVersion: v1\nentries:\n  nginx:\n  - version: 1.0.0\n    urls: [a\n  bad: : :\n";
        let err = RepoIndex::parse(bad.as_bytes(), "http://repo").unwrap_err();
        assert_eq!(err.category(), ErrorCategory::Integrity);
        let text = err.to_string();
        assert!(text.contains("line "), "{text}");
        assert!(text.contains("http://repo"), "{text}");
        let html = "<html><body>Not an index</body></html>";
        let err = RepoIndex::parse(html.as_bytes(), "http://repo").unwrap_err();
        assert_eq!(err.category(), ErrorCategory::Integrity);
    }

    #[test]
    fn scalars_that_look_like_numbers_read_as_helm_reads_them() {
        let yaml = "apiVersion: v1\nentries:\n  a:\n  - version: 1.10\n    urls: [a.tgz]\n    deprecated: false\n  - version: 2\n    urls: [b.tgz]\n  empty:\n";
        let index = RepoIndex::parse(yaml.as_bytes(), "http://repo").unwrap();
        let raw: Vec<&str> = index
            .chart("a")
            .unwrap()
            .iter()
            .map(|e| &*e.raw_version)
            .collect();
        // helm reads `version: 1.10` into a Go string through sigs.k8s.io/yaml: "1.1".
        assert_eq!(raw, ["2", "1.1"]);
        assert!(index.chart("empty").unwrap().is_empty());
        let none = RepoIndex::parse(b"apiVersion: v1\nentries:\n", "http://repo").unwrap();
        assert_eq!(none.chart_count(), 0);
        let err = RepoIndex::parse(b"apiVersion: v1\nentries: [\n", "http://repo").unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn streaming_equals_whole_document_parsing() {
        let cases: &[&str] = &[
            INDEX,
            "apiVersion: v1\nentries: {a: []}\n",
            "apiVersion: v1\nentries:\n  a: []\n",
            // An `entries:` line inside a quoted scalar is not a key (fuzzing found this).
            "apiVersion: \"2\nentries:\n e:\n\"\n",
            "apiVersion: \"2\nentries:\n e:\n\"\nentries:\n  b:\n  - {version: 1.0.0}\n",
            "apiVersion: v1\nentries:\n  a: &a\n  - {version: 1.0.0, urls: [a.tgz]}\n  b: *a\n",
            "apiVersion: v1\nx: &e {a: [{version: 2.0.0}]}\nentries: *e\n",
            "apiVersion: v1\nentries:\n  <<: {a: [{version: 3.0.0}]}\n  b:\n  - <<: {version: 1.0.0}\n    urls: [b]\n",
            "apiVersion: v1\nentries:\n  a:\n  - ~\n  - version: 1.10\n  - {version: 1.0.0, digest: 5, created: 2024-01-01}\n",
            "apiVersion: v1\nentries:\n  a: [{version: 1.0.0}]\n  a: [{version: 2.0.0}]\n",
            "{\"apiVersion\":\"v1\",\"entries\":{\"a\":[{\"version\":\"1.0.0\",\"urls\":[\"a.tgz\"]}]}}",
            "",
            "just text",
            "apiVersion: v1\nentries: [\n",
            "apiVersion: v1\nentries:\n  a:\n  - version: [1]\n",
        ];
        for text in cases {
            streaming_agrees_with_whole_document(text).unwrap();
        }
        // A chart named twice is refused, as helm's strict reading refuses it.
        for dup in [
            "apiVersion: v1\nentries:\n  a: [{version: 1.0.0}]\n  a: [{version: 2.0.0}]\n",
            "apiVersion: v1\nentries:\n  <<: {a: []}\n  a: [{version: 2.0.0}]\n",
            "apiVersion: v1\napiVersion: v2\nentries: {}\n",
        ] {
            let err = RepoIndex::parse(dup.as_bytes(), "x").unwrap_err();
            assert!(
                err.to_string().contains("already set in map"),
                "{dup:?}: {err}"
            );
        }
        // The quoted `entries:` is part of apiVersion: no charts. (Unindented continuation
        // lines, as fuzzing wrote them, are refused by the YAML 1.2 scanner; go-yaml reads
        // them as helm does below, and neither yields a chart.)
        let index = RepoIndex::parse(b"apiVersion: \"2\n entries:\n  e:\n \"\n", "x").unwrap();
        assert_eq!(index.chart_count(), 0);
        let err = RepoIndex::parse(b"apiVersion: \"2\nentries:\n e:\n\"\n", "x").unwrap_err();
        assert_eq!(err.category(), ErrorCategory::Integrity);
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn control_characters_are_refused_even_in_comments() {
        let text = "# \u{1}\napiVersion: v1\nentries:\n  a: []\n";
        let err = RepoIndex::parse(text.as_bytes(), "http://repo/index.yaml").unwrap_err();
        assert_eq!(err.category(), ErrorCategory::Integrity);
        let text = err.to_string();
        assert!(
            text.contains("control characters") && text.contains("line 1"),
            "{text}"
        );
        assert!(text.contains("http://repo/index.yaml"), "{text}");
    }

    #[test]
    fn json_index_is_accepted() {
        let json = r#"{"apiVersion":"v1","entries":{"a":[{"name":"a","version":"1.0.0","urls":["a-1.0.0.tgz"]}]}}"#;
        let index = RepoIndex::parse(json.as_bytes(), "http://repo").unwrap();
        assert_eq!(index.chart("a").unwrap().len(), 1);
    }
}
