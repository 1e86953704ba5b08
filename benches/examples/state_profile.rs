//! The restore's engine work without a broker, for profilers (`perf record`, callgrind) and for
//! before/after comparisons: builds an engine over `customers` ids with the engine bench's event
//! mix (about 86 % of the ids end up with state), then runs rounds of exporting every customer
//! into one buffer (as a checkpoint does) and importing them all into a fresh engine (as a
//! restore does), and prints the rates. The import sizes the customer index first, as the
//! runtime's restore does; `NO_RESERVE=1` leaves it growing as it fills (the old behaviour).
//!
//! ```text
//! cargo run --release -p journeyd-benches --example state_profile -- [customers] [rounds]
//! ```

use journey_engine::{Effects, Engine};
use journeyd_benches::{catalog, Stream};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let customers: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("customers"));
    let rounds: u32 = args.next().map_or(3, |a| a.parse().expect("rounds"));
    let mut engine = Engine::new(catalog());
    let mut stream = Stream::new(customers, 20);
    let mut out = Effects::default();
    while (engine.customer_count() as u64) < customers * 86 / 100 {
        let e = stream.next_event();
        engine.fire_due(e.timestamp, &mut out);
        engine.handle(&e, e.timestamp, &mut out);
        out.clear();
    }
    let held = engine.customer_count();
    let ids: Vec<String> = engine.customer_ids().map(str::to_owned).collect();
    let (mut best_export, mut best_import) = (f64::MAX, f64::MAX);
    for round in 1..=rounds {
        let (states, took) = export(&engine, &ids);
        best_export = best_export.min(took);
        let (fresh, took_in) = import(&states);
        best_import = best_import.min(took_in);
        assert_eq!(fresh.customer_count(), held);
        println!(
            "round {round}: {held} customers, {} bytes: export {:.0}/s, import {:.0}/s",
            states.0.len(),
            held as f64 / took,
            held as f64 / took_in
        );
    }
    println!(
        "best: export {:.0} customers/s ({:.2} µs each), import {:.0} customers/s ({:.2} µs each)",
        held as f64 / best_export,
        best_export * 1e6 / held as f64,
        held as f64 / best_import,
        best_import * 1e6 / held as f64
    );
}

/// Every customer's state, end to end in one buffer, with (id, end offset) per customer.
type States<'a> = (Vec<u8>, Vec<(&'a str, usize)>);

/// The measured export (a separate function so that profilers can single it out).
#[inline(never)]
fn export<'a>(engine: &Engine, ids: &'a [String]) -> (States<'a>, f64) {
    let start = Instant::now();
    let mut buf = Vec::with_capacity(ids.len() * 128);
    let mut ends = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(state) = engine.export_customer(id) {
            buf.extend_from_slice(&state);
            ends.push((id.as_str(), buf.len()));
        }
    }
    let took = start.elapsed().as_secs_f64();
    ((buf, ends), took)
}

/// The measured import.
#[inline(never)]
fn import(states: &States) -> (Engine, f64) {
    let mut engine = Engine::new(catalog());
    let start = Instant::now();
    if std::env::var_os("NO_RESERVE").is_none() {
        engine.reserve_customers(states.1.len());
    }
    let mut at = 0;
    for &(id, end) in &states.1 {
        engine
            .import_customer(id, &states.0[at..end])
            .expect("an exported state imports");
        at = end;
    }
    let took = start.elapsed().as_secs_f64();
    (engine, took)
}
