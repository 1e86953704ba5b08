//! The engine bench's workload without criterion, for profilers (`perf record`, callgrind):
//! prefills the customers, pre-generates the measured events, then only runs the engine over
//! them and prints the rate.
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
    // Several rounds, each over fresh events: the best is the least disturbed by anything else
    // running on the machine.
    let mut best = f64::MAX;
    for round in 1..=rounds {
        let batch: Vec<_> = (0..events).map(|_| stream.next_event()).collect();
        let took = measure(&mut engine, &batch, &mut out).as_secs_f64();
        best = best.min(took);
        println!(
            "round {round}: {customers} customers, {events} events: {:.0} events/s ({:.2} µs/event)",
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

/// The measured part (a separate function so that profilers can single it out).
#[inline(never)]
fn measure(engine: &mut Engine, batch: &[journey_engine::Event], out: &mut Effects) -> Duration {
    let start = Instant::now();
    for e in batch {
        engine.fire_due(e.timestamp, out);
        engine.handle(e, e.timestamp, out);
        if out.decisions.len() > 4096 {
            out.clear();
        }
    }
    let took = start.elapsed();
    out.clear();
    took
}
