//! In-process HTTP source benchmark, used by `scripts/bench-http` (not a test).
//!
//! `bench_http URL CHART VERSION CACHE_DIR RUNS` prints one JSON object:
//! - `firstMs`: the first locate in this process (index fetch + parse + chart download when
//!   CACHE_DIR is empty);
//! - `warmMs`: median of RUNS further locates with the index fresh in memory (no request)
//!   and the chart cached — what a controller does on every reconcile within the TTL;
//! - `revalidatedMs`: median of RUNS locates that revalidate the index with a conditional
//!   request (TTL 0 → `304 Not Modified`, no re-parse) and find the chart cached;
//! - `stats`: the HttpShared counters of the first series.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::http::{HttpLimits, HttpShared, HttpSource};
use chart_source::spec::{HttpRepository, HttpSourceSpec, TlsOptions};
use chart_source::{ChartSource, SourceAuth};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, chart, version, cache_dir, runs] = args.as_slice() else {
        eprintln!("usage: bench_http URL CHART VERSION CACHE_DIR RUNS");
        std::process::exit(2);
    };
    let runs: usize = runs.parse()?;
    let spec = HttpSourceSpec {
        repository: HttpRepository {
            name: None,
            url: url.parse()?,
        },
        chart: chart.clone(),
        version: version.clone(),
        authentication: None,
        tls: TlsOptions::default(),
        pass_credentials: false,
    };
    let cache = Arc::new(ChartCache::open(CacheConfig::new(cache_dir))?);

    let shared = Arc::new(HttpShared::new(HttpLimits::default()));
    let source = HttpSource::new(
        spec.clone(),
        SourceAuth::default(),
        cache.clone(),
        shared.clone(),
    )?;
    let t = Instant::now();
    let first = source.locate().await?;
    let first_ms = ms(t.elapsed());
    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs {
        // A new source per locate, as a reconcile builds one.
        let source = HttpSource::new(
            spec.clone(),
            SourceAuth::default(),
            cache.clone(),
            shared.clone(),
        )?;
        let t = Instant::now();
        let located = source.locate().await?;
        warm.push(ms(t.elapsed()));
        assert!(located.cache_hit && located.digest == first.digest);
    }
    let stats = shared.stats();

    let revalidating = Arc::new(HttpShared::new(HttpLimits {
        index_ttl: Duration::ZERO,
        ..HttpLimits::default()
    }));
    HttpSource::new(
        spec.clone(),
        SourceAuth::default(),
        cache.clone(),
        revalidating.clone(),
    )?
    .locate()
    .await?;
    let mut revalidated = Vec::with_capacity(runs);
    for _ in 0..runs {
        let source = HttpSource::new(
            spec.clone(),
            SourceAuth::default(),
            cache.clone(),
            revalidating.clone(),
        )?;
        let t = Instant::now();
        source.locate().await?;
        revalidated.push(ms(t.elapsed()));
    }
    let rstats = revalidating.stats();
    assert_eq!(rstats.index_parses, 1, "a 304 must not re-parse");

    println!(
        "{}",
        serde_json::json!({
            "firstMs": first_ms,
            "warmMs": median(warm),
            "revalidatedMs": median(revalidated),
            "version": first.version,
            "cacheHitFirst": first.cache_hit,
            "stats": stats,
            "revalidatingStats": rstats,
        })
    );
    Ok(())
}
