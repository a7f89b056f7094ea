//! The fuzz targets of chart-source: what each parser of untrusted input is fed, and the
//! properties checked on what it returns. The libFuzzer binaries (`fuzz/fuzz_targets/`) and
//! the ordinary test that replays the seed and regression corpora
//! (`crates/chart-source/tests/fuzz_regressions.rs`) both call these functions, so a
//! finding replays under `cargo test` with no special toolchain.
//!
//! A target returns normally on any input the code handles correctly and panics (an
//! assertion) when a property fails; a panic inside the code under test is a finding too.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use chart_source::archive::{self, ArchiveLimits};
use chart_source::http::constraint::{Constraint, parse_version};
use chart_source::http::{RepoIndex, index};
use chart_source::yaml::{self, Limits, NODE_COST};
use chart_source::{ErrorCategory, OciReference};

/// The targets, by the name of their libFuzzer binary and corpus directories.
pub const TARGETS: &[super::names::Target] = &[
    ("reference", reference),
    ("reference_registry", reference_registry),
    ("source_spec", source_spec),
    ("index", index),
    ("index_streamed", index_streamed),
    ("constraint", constraint),
    ("archive_bytes", archive_bytes),
    ("archive_entries", archive_entries),
    ("yaml", yaml),
];

/// Any text: no panic; a refusal is a `config` error naming the reference.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = OciReference::parse(text) {
        assert_eq!(e.category(), ErrorCategory::Config, "{e}");
        assert!(e.to_string().contains(text), "does not name {text:?}: {e}");
    }
}

/// An accepted reference: its registry is exactly `HOST[:PORT]`, and its `Display` form
/// parses back to the same reference. The input is read as `oci://` + text, so the fuzzer
/// spends its time past the scheme.
pub fn reference_registry(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = format!("oci://{text}");
    let Ok(r) = OciReference::parse(&text) else {
        return;
    };
    if let Err(why) = registry_is_host_and_port(r.registry(), r.host()) {
        panic!("{text:?} accepted with registry {:?}: {why}", r.registry());
    }
    let again = OciReference::parse(&r.to_string())
        .unwrap_or_else(|e| panic!("{text:?} displays as {r}, which does not parse: {e}"));
    assert_eq!(again, r, "{text:?}");
    assert_eq!(again.to_string(), r.to_string());
    assert!(r.tag().is_some() || r.digest().is_some(), "{text:?}");
}

/// The oracle for [`reference_registry`], independent of the parser: `registry` is `host`
/// or `host:PORT` (PORT 1-65535), and an HTTP client reads `https://REGISTRY/` as exactly
/// that host and port.
pub fn registry_is_host_and_port(registry: &str, host: &str) -> Result<(), String> {
    let port = match registry.strip_prefix(host) {
        Some("") => None,
        Some(rest) => {
            let digits = rest.strip_prefix(':').ok_or("text after the host")?;
            let ok = !digits.is_empty()
                && digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit());
            let port: u16 = digits
                .parse()
                .ok()
                .filter(|p| ok && *p >= 1)
                .ok_or("port is not 1-65535")?;
            Some(port)
        }
        None => return Err(format!("does not start with its host {host:?}")),
    };
    let is_ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    let is_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !(is_ipv6 || is_name) {
        return Err("host is neither a name, an IPv4 nor a bracketed IPv6 address".into());
    }
    let url = url::Url::parse(&format!("https://{registry}/"))
        .map_err(|e| format!("not a URL authority: {e}"))?;
    let url_host = url.host_str().unwrap_or_default();
    if !url_host.eq_ignore_ascii_case(host) && !is_ipv6 {
        return Err(format!("a URL reads the host as {url_host:?}"));
    }
    if url.port_or_known_default() != Some(port.unwrap_or(443)) {
        return Err(format!("a URL reads the port as {:?}", url.port()));
    }
    Ok(())
}

/// YAML (or JSON) text as a Component's `spec.config`: no panic; a refusal is `config`.
pub fn source_spec(data: &[u8]) {
    let Ok(value) = yaml::from_slice_value(data) else {
        return;
    };
    match chart_source::spec::parse_source(&value) {
        Ok(spec) => {
            let _ = spec.describe();
        }
        Err(e) => assert_eq!(e.category(), ErrorCategory::Config, "{e}"),
    }
}

/// Splits off the first line: the fuzzer's choice of chart and version (or constraint).
fn first_line(data: &[u8]) -> (&str, &[u8]) {
    let end = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let line = std::str::from_utf8(&data[..end]).unwrap_or_default();
    (line, data.get(end + 1..).unwrap_or_default())
}

/// First line `CHART VERSION`, then an `index.yaml`: parse, then resolve as `helm pull
/// --repo URL CHART --version VERSION` does. A refusal of the index is `integrity`; what
/// resolves matches the request.
pub fn index(data: &[u8]) {
    let (request, bytes) = first_line(data);
    let (chart, version) = request.split_once(' ').unwrap_or((request, ""));
    let repo = match RepoIndex::parse(bytes, "http://fuzz/index.yaml") {
        Ok(repo) => repo,
        Err(e) => {
            assert_eq!(e.category(), ErrorCategory::Integrity, "{e}");
            return;
        }
    };
    let Some(entries) = repo.chart(chart) else {
        assert!(repo.resolve(chart, version, "x").is_err());
        return;
    };
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].version.cmp_precedence(&w[1].version).is_ge()),
        "not sorted highest first"
    );
    match repo.resolve(chart, version, "x") {
        Ok(entry) => {
            let requested = version.trim();
            let exact = &*entry.raw_version == requested;
            let matches = Constraint::parse(if requested.is_empty() { "*" } else { requested })
                .is_ok_and(|c| c.matches(&entry.version));
            assert!(
                exact || matches,
                "{version:?} resolved to {}",
                entry.version
            );
        }
        Err(e) => assert!(
            matches!(
                e.category(),
                ErrorCategory::NotFound | ErrorCategory::Config
            ),
            "{e}"
        ),
    }
}

/// The index read while streaming equals a whole-document parse of the same bytes.
pub fn index_streamed(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diff) = index::streaming_agrees_with_whole_document(text) {
        panic!("{diff}");
    }
}

/// First line a constraint, each further line a version: the best match satisfies the
/// constraint and no matching version is higher.
pub fn constraint(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let Ok(c) = Constraint::parse(lines.next().unwrap_or_default()) else {
        return;
    };
    let versions: Vec<_> = lines.filter_map(|l| parse_version(l).ok()).collect();
    let best = c.best_match(&versions);
    if let Some(best) = best {
        assert!(c.matches(best));
    }
    for v in versions.iter().filter(|v| c.matches(v)) {
        let best = best.unwrap_or_else(|| panic!("{v} matches but there is no best match"));
        assert!(
            v.cmp_precedence(best).is_le(),
            "{v} matches and is above {best}"
        );
    }
    if let Some(exact) = c.exact_version() {
        assert!(c.matches(exact), "{} does not match itself", c.as_str());
    }
}

/// Small limits, so that a fuzzer-made archive hits them quickly.
fn limits() -> ArchiveLimits {
    ArchiveLimits {
        max_compressed_bytes: 1 << 20,
        max_total_bytes: 1 << 20,
        max_file_bytes: 256 << 10,
        max_stream_bytes: 4 << 20,
    }
}

/// A file of this process for archive bytes, rewritten for each input.
fn scratch_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chart-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let n = std::thread::current().id();
    dir.join(format!("{n:?}.tgz").replace(['(', ')'], ""))
}

/// Checks `bytes` as the archive `mychart-0.1.0.tgz`; a refusal is `integrity`.
fn check_bytes(bytes: &[u8]) -> Option<archive::ChartMeta> {
    let path = scratch_file();
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes));
    if written.is_err() {
        return None;
    }
    // Name and version are not checked by the archive reader (a mirrored chart or a short
    // tag is used as helm uses it; `chart_identity` reports the difference).
    let result = archive::check_archive(&path, &limits());
    let _ = std::fs::remove_file(&path);
    match &result {
        Err(e) => {
            assert_eq!(e.category(), ErrorCategory::Integrity, "{e}");
            assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
        }
        Ok(meta) => {
            assert!(meta.total_bytes <= limits().max_total_bytes);
            assert_eq!(meta.compressed_bytes, bytes.len() as u64);
        }
    }
    result.ok()
}

/// Arbitrary bytes as a chart `.tgz`.
pub fn archive_bytes(data: &[u8]) {
    check_bytes(data);
}

/// An archive entry the fuzzer chooses, from the pieces charts (and attacks) are made of.
#[derive(Debug, Arbitrary)]
struct Entry {
    path: Vec<Piece>,
    raw_path: Option<String>,
    kind: Kind,
    content: Content,
    /// The size the header claims, when it is not the content's.
    claimed_size: Option<u16>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Piece {
    Top,
    OtherTop,
    ChartYaml,
    Requirements,
    Charts,
    Sub,
    SubTgz,
    Templates,
    Dot,
    DotDot,
    Empty,
    Backslash,
}

impl Piece {
    fn text(self) -> &'static str {
        match self {
            Piece::Top => "mychart",
            Piece::OtherTop => "other",
            Piece::ChartYaml => "Chart.yaml",
            Piece::Requirements => "requirements.yaml",
            Piece::Charts => "charts",
            Piece::Sub => "sub",
            Piece::SubTgz => "sub-1.0.0.tgz",
            Piece::Templates => "templates",
            Piece::Dot => ".",
            Piece::DotDot => "..",
            Piece::Empty => "",
            Piece::Backslash => "a\\b",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Arbitrary)]
enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Fifo,
    CharDevice,
    Sparse,
    Continuous,
    PaxHeader,
    GnuLongName,
}

#[derive(Debug, Arbitrary)]
enum Content {
    Bytes(Vec<u8>),
    /// A `Chart.yaml` with these dependencies (names from [`Piece`]).
    ChartYaml {
        api_v1: bool,
        name: Option<Piece>,
        version: Option<String>,
        dependencies: Vec<Piece>,
    },
    Requirements(Vec<Piece>),
}

impl Content {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Bytes(b) => b.clone(),
            Content::ChartYaml {
                api_v1,
                name,
                version,
                dependencies,
            } => {
                let mut s = format!("apiVersion: {}\n", if *api_v1 { "v1" } else { "v2" });
                if let Some(name) = name {
                    s.push_str(&format!("name: {:?}\n", name.text()));
                }
                if let Some(version) = version {
                    s.push_str(&format!("version: {version:?}\n"));
                }
                s.push_str(&dependency_list(dependencies));
                s.into_bytes()
            }
            Content::Requirements(deps) => dependency_list(deps).into_bytes(),
        }
    }
}

fn dependency_list(deps: &[Piece]) -> String {
    let mut s = String::from("dependencies:\n");
    for d in deps {
        s.push_str(&format!("- name: {:?}\n  version: 1.0.0\n", d.text()));
    }
    s
}

/// A `.tar.gz` of `entries`, headers written byte for byte (so `..`, absolute and odd
/// names get in, as an attacker would write them).
fn build(entries: &[Entry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for e in entries {
        let name = e.name();
        let content = e.content.bytes();
        let mut header = tar::Header::new_gnu();
        let field = &mut header.as_old_mut().name;
        let n = name.len().min(field.len());
        field[..n].copy_from_slice(&name.as_bytes()[..n]);
        header.set_mode(0o644);
        header.set_size(e.claimed_size.map_or(content.len() as u64, u64::from));
        header.set_entry_type(match e.kind {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::HardLink => tar::EntryType::Link,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::CharDevice => tar::EntryType::Char,
            Kind::Sparse => tar::EntryType::GNUSparse,
            Kind::Continuous => tar::EntryType::Continuous,
            Kind::PaxHeader => tar::EntryType::XHeader,
            Kind::GnuLongName => tar::EntryType::GNULongName,
        });
        if matches!(e.kind, Kind::Symlink | Kind::HardLink) {
            let _ = header.set_link_name("../../etc/passwd");
        }
        header.set_cksum();
        if tar.append(&header, content.as_slice()).is_err() {
            break;
        }
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_default()
}

impl Entry {
    fn name(&self) -> String {
        match &self.raw_path {
            Some(raw) => raw.clone(),
            None => self
                .path
                .iter()
                .map(|p| p.text())
                .collect::<Vec<_>>()
                .join("/"),
        }
    }
}

/// A tar.gz built from fuzzer-chosen entries. An accepted archive has only files and
/// directories, no `..`, no absolute path, and one top-level directory.
pub fn archive_entries(data: &[u8]) {
    let Ok(entries) = Vec::<Entry>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(meta) = check_bytes(&build(&entries)) else {
        return;
    };
    assert!(!meta.name.is_empty());
    // The reader sees exactly the entries built unless a header lies about its size or
    // rewrites the next one's name (PAX, GNU long name, sparse maps).
    let faithful = entries.iter().all(|e| {
        let name = e.name();
        e.claimed_size.is_none()
            && name.len() < 100
            && !name.contains('\0')
            && !matches!(e.kind, Kind::PaxHeader | Kind::GnuLongName | Kind::Sparse)
    });
    if !faithful {
        return;
    }
    for e in &entries {
        let name = e.name();
        assert!(
            !matches!(
                e.kind,
                Kind::Symlink | Kind::HardLink | Kind::Fifo | Kind::CharDevice
            ),
            "accepted a {:?} entry `{name}`",
            e.kind
        );
        let path = Path::new(&name);
        assert!(
            !path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir)),
            "accepted `{name}`"
        );
        assert!(!name.starts_with('/'), "accepted `{name}`");
    }
}

/// Any text as YAML: no panic; the work (events read, nodes and bytes built) stays within
/// a budget proportional to the input; errors carry a position or are about shape.
pub fn yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let (result, stats) = yaml::from_str_value_with(text, limits);
    let n = text.len() as u64;
    assert!(
        stats.events <= 2 * n + 16,
        "{stats:?} for {n} bytes: too many events"
    );
    let budget = limits.alias_allowance + limits.alias_ratio * n;
    assert!(stats.aliased <= budget, "{stats:?} for {n} bytes");
    assert!(
        stats.materialized <= 2 * budget + 4 * NODE_COST * n,
        "{stats:?} for {n} bytes"
    );
    if let Err(e) = &result {
        assert!(
            e.line.is_some() || e.kind == yaml::ErrorKind::Syntax,
            "{e:?} has no position"
        );
    }
    let docs = yaml::documents(text);
    if let (Ok(first), Ok(docs)) = (&result, &docs) {
        assert_eq!(Some(first), docs.first().or(Some(&serde_json::Value::Null)));
    }
}
