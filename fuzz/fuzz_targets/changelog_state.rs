//! The changelog (customer state) decoder: `Engine::import_customer` on arbitrary bytes, and
//! on real exported states with bytes flipped, then the imported customer used (inspected, its
//! timers fired, an event handled). An error or a working customer, never a panic or a hang.
//!
//! Input: the whole input is first imported as one changelog value. If it contains a NUL byte,
//! what precedes it is also read as JSON-lines events (the repository's scenario files are the
//! seeds), run through an engine with the example journeys; every customer's exported state is
//! then mutated by the `(offset u16 LE, xor u8)` triples that follow the NUL and imported into
//! a fresh engine.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use journey_engine::{Catalog, Effects, Engine};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The example journeys (journeys/) under the example deployment's configuration.
fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let mut config = journey_spec::load_config(&root.join("deploy/journeyd.yaml"))
                .expect("deploy/journeyd.yaml is valid");
            config.journeys_dir = root.join("journeys");
            let journeys = journey_spec::load_journeys_dir(&config.journeys_dir, &config)
                .expect("the example journeys are valid");
            Arc::new(Catalog::new(&config, journeys))
        })
        .clone()
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Imports `bytes` as `customer`'s state into `engine` and, if accepted, uses the customer.
fn import_and_use(engine: &mut Engine, customer: &str, bytes: &[u8]) {
    if engine.import_customer(customer, bytes).is_err() {
        return;
    }
    let now = start();
    let _ = engine.inspect(customer, now);
    let _ = engine.export_customer(customer);
    let mut out = Effects::default();
    if let Ok(event) = journey_engine::parse_event(
        format!(
            r#"{{"event_id":"fuzz-1","customer_id":"{customer}","type":"order_completed","timestamp":"2026-01-01T00:00:00Z","properties":{{}}}}"#
        )
        .as_bytes(),
        65_536,
    ) {
        engine.handle(&event, now, &mut out);
    }
    // Every timer, however far (bounded number of rounds: a timer chain must end).
    let far = now + Duration::days(3_650);
    for _ in 0..64 {
        match engine.next_due() {
            Some(due) if due <= far => engine.fire_due(due, &mut out),
            _ => break,
        }
        out.clear();
    }
}

fuzz_target!(|data: &[u8]| {
    let catalog = catalog();
    import_and_use(&mut Engine::new(catalog.clone()), "c-raw", data);

    let Some(split) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (events, mutations) = (&data[..split], &data[split + 1..]);
    let mut engine = Engine::new(catalog.clone());
    let mut out = Effects::default();
    let mut customers: Vec<String> = Vec::new();
    for line in events.split(|&b| b == b'\n').take(200) {
        if let Ok(event) = journey_engine::parse_event(line, 65_536) {
            engine.fire_due(event.timestamp, &mut out);
            engine.handle(&event, event.timestamp, &mut out);
            if !customers.contains(&event.customer_id) {
                customers.push(event.customer_id.clone());
            }
            out.clear();
        }
    }
    for customer in customers {
        let Some(mut bytes) = engine.export_customer(&customer) else {
            continue;
        };
        for m in mutations.chunks_exact(3) {
            if !bytes.is_empty() {
                let at = u16::from_le_bytes([m[0], m[1]]) as usize % bytes.len();
                bytes[at] ^= m[2];
            }
        }
        import_and_use(&mut Engine::new(catalog.clone()), &customer, &bytes);
    }
});
