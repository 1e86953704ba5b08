//! Events per second through the engine on one core: a mix of four journeys over 1,000,000
//! distinct customers (and, for comparison, 10,000 customers whose state stays in cache),
//! timers firing as the virtual clock advances (as under `simulate`). Event generation is
//! outside the measured time; handling and timer firing are inside.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use journey_engine::{Effects, Engine};
use journeyd_benches::{catalog, measuring, Stream};
use std::time::{Duration, Instant};

/// Events generated, then handled, per measured stretch: like one consumer poll, small enough
/// that the events are still in cache when the engine reads them, as they are in a runtime that
/// has just parsed them (a batch larger than the cache would charge the engine with misses on
/// the events' own memory).
const BATCH: usize = 256;

fn engine_mix(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    // Under `cargo test` (criterion's test mode: one iteration each, unoptimised build) the
    // populations are scaled down; the names stay so the same benches are checked.
    let scale = if measuring() { 1 } else { 1_000 };
    for (name, customers) in [
        ("mixed_journeys_1m_customers", 1_000_000u64),
        ("mixed_journeys_10k_customers", 10_000),
    ] {
        mix(&mut group, name, customers / scale, scale == 1);
    }
    group.finish();
}

fn mix(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    customers: u64,
    full: bool,
) {
    let mut engine = Engine::new(catalog());
    // One event every 20 ms of virtual time: 1,000,000 events span about 5.5 hours.
    let mut stream = Stream::new(customers, 20);
    let mut out = Effects::default();
    // Populate the customers first so the measurement sees a full-size state.
    let prefill = if full {
        2 * customers.max(500_000)
    } else {
        2 * customers
    };
    for _ in 0..prefill {
        let e = stream.next_event();
        engine.fire_due(e.timestamp, &mut out);
        engine.handle(&e, e.timestamp, &mut out);
        out.clear();
    }
    eprintln!(
        "prefilled: {} customers, {} timers, instances {:?}",
        engine.customer_count(),
        engine.pending_timers(),
        engine.active_instances()
    );
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            let mut batch = Vec::with_capacity(BATCH);
            while left > 0 {
                let n = left.min(BATCH);
                batch.clear();
                batch.extend((0..n).map(|_| stream.next_event()));
                let start = Instant::now();
                for e in &batch {
                    engine.fire_due(e.timestamp, &mut out);
                    engine.handle(e, e.timestamp, &mut out);
                }
                // Callers serialise the effects of a batch and clear them; clearing is measured
                // (the buffers it keeps are what the next calls reuse).
                out.clear();
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });
}

criterion_group!(benches, engine_mix);
criterion_main!(benches);
