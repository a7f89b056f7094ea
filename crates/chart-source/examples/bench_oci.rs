//! In-process OCI source benchmark, used by `scripts/bench-oci` (not a test).
//!
//! `bench_oci REFERENCE MANIFEST_DIGEST CACHE_DIR RUNS` (a plain-HTTP registry; the digest is
//! what `helm push` printed) prints one JSON object:
//! - `firstMs`: the first locate in this process (client set-up, tag resolution, manifest,
//!   blob download when CACHE_DIR is empty);
//! - `warmMs`: median of RUNS further locates, each through a new source as the controller
//!   builds one per reconcile, sharing the process's client pool: one manifest `HEAD` on a
//!   kept-alive connection, the chart from the cache;
//! - `pinnedMs`: the same with the reference pinned to the manifest digest (no request).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chart_source::cache::{CacheConfig, ChartCache};
use chart_source::oci::OciSource;
use chart_source::oci_clients::OciClients;
use chart_source::spec::{OciSourceSpec, TlsOptions};
use chart_source::{ChartSource, OciReference, SourceAuth};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn series(
    reference: &OciReference,
    cache: &Arc<ChartCache>,
    pool: &Arc<OciClients>,
    runs: usize,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let located = source(reference, cache, pool)?.locate().await?;
        times.push(ms(start.elapsed()));
        if !located.cache_hit {
            return Err("a warm locate downloaded the chart".into());
        }
    }
    Ok(times)
}

fn source(
    reference: &OciReference,
    cache: &Arc<ChartCache>,
    pool: &Arc<OciClients>,
) -> chart_source::Result<OciSource> {
    let spec = OciSourceSpec {
        reference: reference.clone(),
        authentication: None,
        plain_http: true,
        tls: TlsOptions::default(),
        verify: None,
    };
    OciSource::in_pool(spec, SourceAuth::default(), cache.clone(), pool.clone())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, reference, manifest, cache_dir, runs] = args.as_slice() else {
        eprintln!("usage: bench_oci REFERENCE MANIFEST_DIGEST CACHE_DIR RUNS");
        std::process::exit(2);
    };
    let runs: usize = runs.parse()?;
    let reference = OciReference::parse(reference)?;
    let cache = Arc::new(ChartCache::open(CacheConfig::new(cache_dir))?);
    let pool = Arc::new(OciClients::default());

    let start = Instant::now();
    source(&reference, &cache, &pool)?.locate().await?;
    let first = ms(start.elapsed());
    let warm = series(&reference, &cache, &pool, runs).await?;

    let pinned = OciReference::parse(&format!("{reference}@{manifest}"))?;
    let pinned_times = series(&pinned, &cache, &pool, runs).await?;

    println!(
        "{}",
        serde_json::json!({
            "firstMs": first,
            "warmMs": median(warm),
            "pinnedMs": median(pinned_times),
        })
    );
    Ok(())
}
