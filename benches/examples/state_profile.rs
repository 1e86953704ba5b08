//! The restore's engine work without a broker, for profilers (`perf record`, callgrind) and for
//! before/after comparisons: builds an engine over `customers` ids with the engine bench's event
//! mix (about 86 % of the ids end up with state), then runs rounds of exporting every customer
//! into one buffer (as a checkpoint does) and importing them all into a fresh engine (as a
//! restore does), and prints the rates. The import sizes the customer index first, as the
//! runtime's restore does; `NO_RESERVE=1` leaves it growing as it fills (the old behaviour).
//!
//! First it times the two ways a periodic checkpoint has had of going over the customers: copying
//! every id into a `Vec<String>` in one go (the old way, one poll turn), and walking the engine's
//! slots with `Engine::customers_in_slots` in steps of 20,000 customers (80,000 slots at most)
//! as the runtime now does, each alone and then with every customer exported into a checkpoint
//! writer; for the walk it prints the longest step, which is what one poll turn stalls.
//!
//! ```text
//! cargo run --release -p journeyd-benches --example state_profile -- [customers] [rounds]
//! ```

use journey_engine::{Effects, Engine};
use journey_kafka::checkpoint::CheckpointWriter;
use journeyd_benches::{catalog, Stream};
use std::time::{Duration, Instant};

/// Customers and slots per step of a checkpoint's walk, as in the runtime.
const STEP_CUSTOMERS: usize = 20_000;
const STEP_SLOTS: usize = 4 * STEP_CUSTOMERS;

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
    compare_walks(&engine);
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

/// The old way of listing a checkpoint's customers against the slot walk, alone and with the
/// export.
fn compare_walks(engine: &Engine) {
    let held = engine.customer_count();
    let start = Instant::now();
    let ids: Vec<String> = engine.customer_ids().map(str::to_owned).collect();
    let collect = start.elapsed();
    let start = Instant::now();
    drop(ids);
    let dropped = start.elapsed();
    let (visited, steps, longest, walked) = walk(engine, false);
    assert_eq!(visited, held);
    println!(
        "ids of {held} customers: collected into a Vec<String> in {:.1} ms (+ {:.1} ms to drop it); \
         walked by slot in {steps} steps of {STEP_CUSTOMERS} in {:.1} ms, longest step {:.2} ms",
        ms(collect),
        ms(dropped),
        ms(walked),
        ms(longest)
    );
    let start = Instant::now();
    let ids: Vec<String> = engine.customer_ids().map(str::to_owned).collect();
    let first_turn = start.elapsed();
    let mut writer = CheckpointWriter::new(held * 112);
    for id in &ids {
        writer.customer_with(id, |buf| engine.export_customer_into(id, buf));
    }
    let old = start.elapsed();
    drop((ids, writer));
    let (_, steps, longest, new) = walk(engine, true);
    println!(
        "checkpoint export of {held} customers: old {:.1} ms (first turn {:.1} ms, then \
         {STEP_CUSTOMERS} per turn); slot walk {:.1} ms in {steps} steps, longest step {:.2} ms",
        ms(old),
        ms(first_turn),
        ms(new),
        ms(longest)
    );
}

/// One walk over every slot as a checkpoint takes it (exporting each customer into a checkpoint
/// writer when `export`): customers visited, steps, the longest step, the whole walk.
#[inline(never)]
fn walk(engine: &Engine, export: bool) -> (usize, usize, Duration, Duration) {
    let start = Instant::now();
    let mut writer = CheckpointWriter::new(if export {
        engine.customer_count() * 112
    } else {
        0
    });
    let (end, mut at, mut steps, mut visited, mut longest) =
        (engine.slot_count(), 0, 0, 0, Duration::ZERO);
    let mut id_bytes = 0;
    while at < end {
        let step = Instant::now();
        let to = (at + STEP_SLOTS).min(end);
        let mut next = to;
        for (n, (slot, id)) in engine.customers_in_slots(at..to).enumerate() {
            if n == STEP_CUSTOMERS {
                next = slot;
                break;
            }
            visited += 1;
            if export {
                writer.customer_with(id, |buf| engine.export_customer_into(id, buf));
            } else {
                id_bytes += id.len();
            }
        }
        at = next;
        steps += 1;
        longest = longest.max(step.elapsed());
    }
    let took = start.elapsed();
    std::hint::black_box((id_bytes, writer));
    (visited, steps, longest, took)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
