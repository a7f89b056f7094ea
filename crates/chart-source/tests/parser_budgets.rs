//! Time and memory budgets of the parsers of untrusted input, for hostile inputs (alias
//! bombs, deep nesting, huge scalars, a gzip bomb), asserted by input size and never by
//! wall clock: the parser events read (`Stats::events`), what the YAML composer built
//! (`Stats::materialized`), and the bytes allocated, counted per thread by this binary's
//! global allocator (peak live bytes for memory, total allocated for work).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use chart_source::archive::{ArchiveLimits, check_archive};
use chart_source::http::RepoIndex;
use chart_source::http::constraint::Constraint;
use chart_source::yaml::{self, Limits, NODE_COST};
use chart_source::{ErrorCategory, OciReference};

/// Counts allocations of the current thread (tests run in parallel threads).
struct Counting;

thread_local! {
    static LIVE: Cell<u64> = const { Cell::new(0) };
    static PEAK: Cell<u64> = const { Cell::new(0) };
    static TOTAL: Cell<u64> = const { Cell::new(0) };
}

fn count_alloc(size: usize) {
    let size = size as u64;
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = TOTAL.try_with(|t| t.set(t.get() + size));
}

fn count_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size as u64)));
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_free(layout.size());
        count_alloc(new_size);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` allocated on this thread: (peak live bytes above the start, total bytes).
fn measure<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let start_live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start_live));
    let start_total = TOTAL.with(Cell::get);
    let out = f();
    let peak = PEAK.with(Cell::get) - start_live;
    let total = TOTAL.with(Cell::get) - start_total;
    (out, peak, total)
}

fn laughs(levels: usize, fan: usize) -> String {
    let mut s = String::from("l0: &l0 [lol]\n");
    for i in 1..=levels {
        let refs = vec![format!("*l{}", i - 1); fan].join(",");
        s.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    s
}

/// Hostile YAML documents, by name.
fn hostile() -> Vec<(&'static str, String)> {
    let big = "x".repeat(100_000);
    vec![
        ("billion laughs", laughs(10, 10)),
        ("deep flow mappings", "{".repeat(100_000)),
        (
            "deep flow sequences",
            format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
        ),
        (
            "deep block sequences",
            format!("{}x\n", "- ".repeat(50_000)),
        ),
        (
            "deep block mappings",
            (0..300).map(|i| format!("{}a:\n", " ".repeat(i))).collect(),
        ),
        ("huge plain scalar", format!("k: {}\n", "y".repeat(1 << 18))),
        (
            "huge quoted scalar",
            format!("k: \"{}\"\n", "\\u00e9".repeat(50_000)),
        ),
        (
            "huge scalar aliased",
            format!("a: &a \"{big}\"\nb: [{}]\n", vec!["*a"; 30_000].join(",")),
        ),
        (
            "merge-key bomb",
            (0..40).fold("m0: &m0 {x: 1}\n".to_string(), |s, i| {
                format!(
                    "{s}m{}: &m{}\n  <<: [*m{i}, *m{i}]\n  k{i}: {i}\n",
                    i + 1,
                    i + 1
                )
            }),
        ),
        (
            "many small keys",
            (0..20_000).map(|i| format!("k{i}: {i}\n")).collect(),
        ),
        (
            "many empty flow items",
            format!("[{}]", "{},".repeat(100_000)),
        ),
    ]
}

#[test]
fn yaml_work_and_memory_are_bounded_by_the_input_size() {
    let limits = Limits::default();
    for (name, text) in hostile() {
        let n = text.len() as u64;
        let ((_, stats), peak, total) = measure(|| yaml::from_str_value_with(&text, limits));
        let budget = limits.alias_allowance + limits.alias_ratio * n;
        eprintln!("{name}: {n} bytes, {stats:?}, peak {peak} B, allocated {total} B");
        assert!(stats.events <= 2 * n + 16, "{name}: {stats:?}");
        assert!(stats.aliased <= budget, "{name}: {stats:?}");
        assert!(
            stats.materialized <= 2 * budget + 4 * NODE_COST * n,
            "{name}: {stats:?}"
        );
        // Memory: what the composer accounted for, twice over at most, plus the parser's
        // own buffers (a fraction of the input), never what aliases would expand to. The
        // flow-collection cases held ~180 B per input byte before the saphyr-parser patch.
        let m = stats.materialized;
        assert!(
            peak <= 2 * m + 2 * n + 65_536,
            "{name}: peak {peak} B for {n} B"
        );
        assert!(
            total <= 8 * m + 32 * n + 65_536,
            "{name}: allocated {total} B for {n} B"
        );
    }
}

#[test]
fn the_index_reader_is_bounded_like_the_yaml_reader() {
    let limits = Limits::default();
    for (name, text) in hostile() {
        let index = format!(
            "apiVersion: v1\nentries:\n  a:\n  - version: 1.0.0\n    x:\n{}",
            {
                text.lines()
                    .map(|l| format!("      {l}\n"))
                    .collect::<String>()
            }
        );
        let n = index.len() as u64;
        let (result, peak, total) = measure(|| RepoIndex::parse(index.as_bytes(), "http://r"));
        let budget = limits.alias_allowance + limits.alias_ratio * n;
        eprintln!(
            "index with {name}: {n} bytes, {}, peak {peak} B, allocated {total} B",
            result
                .as_ref()
                .map_or_else(ToString::to_string, |i| format!(
                    "{} entries",
                    i.entry_count()
                ))
        );
        if let Err(e) = &result {
            assert_eq!(e.category(), ErrorCategory::Integrity, "{e}");
        }
        // The index keeps only a few fields per entry and skips the rest unbuilt: aliases'
        // allowance twice, and 16 B per input byte (~180 B before the saphyr-parser patch).
        let most = 2 * limits.alias_allowance + 16 * n;
        assert!(peak <= most, "{name}: peak {peak} B for {n} B");
        assert!(
            total <= 2 * budget + 32 * n,
            "{name}: allocated {total} B for {n} B"
        );
    }
}

/// `peak` and `total` stay within `per_byte` bytes per input byte (plus 4 KiB).
fn assert_costs(what: &str, n: usize, (peak, total): (u64, u64), per_byte: (u64, u64)) {
    let n = n as u64;
    assert!(
        peak <= per_byte.0 * n + 4096,
        "{what} of {n}: peak {peak} B"
    );
    assert!(
        total <= per_byte.1 * n + 4096,
        "{what} of {n}: allocated {total} B"
    );
}

#[test]
fn long_references_and_constraints_cost_their_length() {
    for n in [1_000usize, 100_000, 1_000_000] {
        let reference = format!("oci://r.io/{}:1", "a/".repeat(n / 2));
        let (result, peak, total) = measure(|| OciReference::parse(&reference));
        assert!(result.is_err());
        assert_costs("reference", n, (peak, total), (4, 8));

        let constraint = ">=1.0.0 ".repeat(n / 8);
        let (result, peak, total) = measure(|| Constraint::parse(&constraint));
        assert!(result.is_err() || n <= 1024);
        // Accepted constraints (up to 1024 bytes) hold parsed versions: ~20 B per byte.
        assert_costs("constraint", n, (peak, total), (32, 32));
    }
}

#[test]
fn a_gzip_bomb_is_refused_in_constant_memory() {
    // 20 MiB of zeros as one file (about 20 KB compressed), over the 5 MiB per-file limit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb-1.0.0.tgz");
    let file = std::fs::File::create(&path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::best(),
    ));
    let mut header = tar::Header::new_gnu();
    let size = 20u64 << 20;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        "bomb/values.yaml",
        std::io::Read::take(std::io::repeat(0), size),
    )
    .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let compressed = std::fs::metadata(&path).unwrap().len();
    let limits = ArchiveLimits::default();
    let (result, peak, total) = measure(|| check_archive(&path, &limits));
    eprintln!("gzip bomb: {compressed} B compressed, peak {peak} B, allocated {total} B");
    let err = result.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Integrity, "{err}");
    assert!(err.to_string().contains("bomb/values.yaml"), "{err}");
    assert!(peak < 1 << 20, "peak {peak} B");
    assert!(total < 4 << 20, "allocated {total} B");
}
