//! Parsing of input records (`journey_engine::parse_event`, what the runtime does with every
//! record of the native format) without Kafka, for profilers: the seeded event stream of
//! `journeyd demo` (the end-to-end bench's events) is generated first, then parsed in rounds,
//! and the rate of each round is printed.
//!
//! ```text
//! cargo run --profile bench -p journeyd-benches --example parse_profile -- [events] [rounds]
//! ```
//!
//! For callgrind, `--toggle-collect=parse_profile::measure` counts only the parsing.

use chrono::Utc;
use journeyd_testkit::eventgen::{Generator, Options};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(200_000, |a| a.parse().expect("events"));
    let rounds: u32 = args.next().map_or(3, |a| a.parse().expect("rounds"));
    let options = Options {
        customer_prefix: "bench-c".into(),
        event_prefix: "bench-e".into(),
        malformed_every: 0,
    };
    let mut generator = Generator::with_options(100_000, 0x5EED, options);
    let now = Utc::now();
    let payloads: Vec<Vec<u8>> = (0..events).map(|_| generator.next(now).payload).collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    for round in 1..=rounds {
        let took = measure(&payloads).as_secs_f64();
        best = best.min(took);
        println!(
            "round {round}: {events} records ({} bytes on average): {:.0} records/s ({:.3} µs/record)",
            bytes / events.max(1),
            events as f64 / took,
            took * 1e6 / events as f64
        );
    }
    println!(
        "best: {:.0} records/s ({:.3} µs/record)",
        events as f64 / best,
        best * 1e6 / events as f64
    );
}

/// The measured part (a separate function so that profilers can single it out).
#[inline(never)]
fn measure(payloads: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    let mut valid = 0usize;
    for p in payloads {
        if let Ok(e) = journey_engine::parse_event(p, 65_536) {
            valid += std::hint::black_box(e).properties.len() + 1;
        }
    }
    assert!(valid >= payloads.len(), "every record parses");
    start.elapsed()
}
