//! Bytes of engine state per customer, measured with a counting allocator: everything the
//! engine allocates for a customer (index entry, state, dedupe ring, profile, instances, timers)
//! divided by the number of customers. Prints figures; asserts nothing.

use chrono::{DateTime, Duration, Utc};
use journey_engine::{Effects, Engine, Event};
use journeyd_benches::catalog;
use serde_json::{json, Map, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Customers when measuring; `cargo test` runs this once, unoptimised, with [`N_TEST`].
const N: usize = 200_000;
const N_TEST: usize = 2_000;

fn event(n: &mut u64, cust: usize, ty: &str, at: DateTime<Utc>, props: Value) -> Event {
    *n += 1;
    let properties: Map<String, Value> = match props {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Event {
        event_id: format!("e{n}"),
        customer_id: format!("customer-{cust:07}"),
        event_type: ty.into(),
        timestamp: at,
        properties,
    }
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let customers = if journeyd_benches::measuring() {
        N
    } else {
        N_TEST
    };
    let mut engine = Engine::new(catalog());
    let mut out = Effects::default();
    let t0 = DateTime::parse_from_rfc3339("2026-11-23T06:00:00Z")
        .expect("valid")
        .with_timezone(&Utc);
    let mut n = 0u64;
    let base = live();
    // Idle: a profile with an email address and a time zone, 40 page views (the dedupe ring
    // full), no journey ever entered.
    for c in 0..customers {
        let e = event(
            &mut n,
            c,
            "profile_updated",
            t0,
            json!({"email": format!("customer-{c:07}@example.com"), "timezone": "Europe/London"}),
        );
        engine.handle(&e, t0, &mut out);
        for _ in 0..40 {
            let e = event(&mut n, c, "page_viewed", t0, json!({}));
            engine.handle(&e, t0, &mut out);
        }
        out.clear();
    }
    let idle = live() - base;
    println!(
        "idle customer (profile email+timezone, 32 remembered event ids, no journey): {} bytes",
        idle / customers as isize
    );
    // Mid-journey: each enters cart_abandonment and waits for its first reminder (one timer,
    // one instance with the kept trigger property, last-entry time).
    let before = live();
    let at = t0 + Duration::minutes(1);
    for c in 0..customers {
        let e = event(
            &mut n,
            c,
            "cart_updated",
            at,
            json!({"cart_value": 59.0, "sku": "TENT-2"}),
        );
        engine.handle(&e, at, &mut out);
        out.clear();
    }
    let mid = live() - before;
    println!(
        "mid-journey customer (one instance waiting, one timer): {} bytes ({} more than idle)",
        (idle + mid) / customers as isize,
        mid / customers as isize
    );
    println!(
        "customers {}, timers {}, instances {:?}",
        engine.customer_count(),
        engine.pending_timers(),
        engine.active_instances()
    );
}
