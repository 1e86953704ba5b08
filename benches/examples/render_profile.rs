//! The JSON rendering of the engine bench's records (what the runtime produces to Kafka and
//! `simulate` writes), timed on its own: runs the engine bench's workload to collect the send
//! commands and decisions of a number of events, then renders all of them `to_json` in rounds
//! and prints the rate of the best round. The engine bench does not render, so changes to the
//! rendering are measured here.
//!
//! ```text
//! cargo run --profile bench -p journeyd-benches --example render_profile -- \
//!     [customers] [events] [rounds]
//! ```

use journey_engine::{Decision, Effects, Engine, SendCommand};
use journeyd_benches::{catalog, Stream};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let customers: u64 = args
        .next()
        .map_or(100_000, |a| a.parse().expect("customers"));
    let events: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("events"));
    let rounds: u32 = args.next().map_or(5, |a| a.parse().expect("rounds"));
    let mut engine = Engine::new(catalog());
    let mut stream = Stream::new(customers, 20);
    let mut out = Effects::default();
    let mut commands = Vec::new();
    let mut decisions = Vec::new();
    for _ in 0..events {
        let e = stream.next_event();
        engine.fire_due(e.timestamp, &mut out);
        engine.handle(&e, e.timestamp, &mut out);
        commands.append(&mut out.commands);
        decisions.append(&mut out.decisions);
        out.clear();
    }
    let records = commands.len() + decisions.len();
    let mut best = f64::MAX;
    for round in 1..=rounds {
        let (took, bytes) = render(&commands, &decisions);
        best = best.min(took);
        println!(
            "round {round}: {} commands, {} decisions, {bytes} bytes: {:.0} ns/record",
            commands.len(),
            decisions.len(),
            took * 1e9 / records as f64
        );
    }
    println!("best: {:.1} ns/record", best * 1e9 / records as f64);
}

/// The measured part (a separate function so that profilers can single it out).
#[inline(never)]
fn render(commands: &[SendCommand], decisions: &[Decision]) -> (f64, usize) {
    let start = Instant::now();
    let mut bytes = 0;
    for c in commands {
        bytes += std::hint::black_box(c.to_json()).len();
    }
    for d in decisions {
        bytes += std::hint::black_box(d.to_json()).len();
    }
    (start.elapsed().as_secs_f64(), bytes)
}
