//! The engine bench's workload without criterion, for profilers (`perf record`, callgrind):
//! prefills the customers, then runs rounds of events (generated in small batches outside the
//! measured function, handled inside it) and prints the rates.
//!
//! ```text
//! cargo run --release -p journeyd-benches --example engine_profile -- \
//!     [customers] [events per round] [prefill events] [rounds]
//! ```

use journey_engine::{Effects, Engine};
use journeyd_benches::{catalog, Stream};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let customers: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("customers"));
    let events: usize = args
        .next()
        .map_or(2_000_000, |a| a.parse().expect("events"));
    let prefill: u64 = args.next().map_or(2 * customers.max(500_000), |a| {
        a.parse().expect("prefill events")
    });
    let rounds: u32 = args.next().map_or(3, |a| a.parse().expect("rounds"));
    let mut engine = Engine::new(catalog());
    let mut stream = Stream::new(customers, 20);
    let mut out = Effects::default();
    for _ in 0..prefill {
        let e = stream.next_event();
        engine.fire_due(e.timestamp, &mut out);
        engine.handle(&e, e.timestamp, &mut out);
        out.clear();
    }
    println!(
        "prefilled: {} customers held (of {customers} ids) after {prefill} events, {} journeys in flight",
        engine.customer_count(),
        engine
            .active_instances()
            .iter()
            .map(|(_, n)| n)
            .sum::<usize>()
    );
    // Several rounds, each over fresh events: the best is the least disturbed by anything else
    // running on the machine.
    let mut best = f64::MAX;
    for round in 1..=rounds {
        // As in the criterion bench: small batches, generated just before they are handled.
        let mut took = 0.0;
        let mut left = events;
        let mut batch = Vec::with_capacity(BATCH);
        while left > 0 {
            let n = left.min(BATCH);
            batch.clear();
            batch.extend((0..n).map(|_| stream.next_event()));
            took += measure(&mut engine, &batch, &mut out).as_secs_f64();
            left -= n;
        }
        best = best.min(took);
        println!(
            "round {round}: {} customers held, {events} events: {:.0} events/s ({:.2} µs/event)",
            engine.customer_count(),
            events as f64 / took,
            took * 1e6 / events as f64
        );
    }
    println!(
        "best: {:.0} events/s ({:.2} µs/event)",
        events as f64 / best,
        best * 1e6 / events as f64
    );
}

/// Events generated, then handled, per measured stretch (as in `benches/engine.rs`).
const BATCH: usize = 256;

/// The measured part (a separate function so that profilers can single it out).
#[inline(never)]
fn measure(engine: &mut Engine, batch: &[journey_engine::Event], out: &mut Effects) -> Duration {
    let start = Instant::now();
    for e in batch {
        engine.fire_due(e.timestamp, out);
        engine.handle(e, e.timestamp, out);
    }
    out.clear();
    start.elapsed()
}
