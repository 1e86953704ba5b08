//! Test data of the real-broker tests and how it is fed and read back: customer stories written
//! for the fixture journeys, merged into a stream, trickled into the input topic, and the
//! commands read back in `simulate`'s form.

use crate::compare::command_with_topic;
use crate::scenario::{event, Scenario};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use journey_eventgen::SplitMix;
use serde_json::{json, Value};
use std::time::Duration;

/// A customer story generator: a deterministic mix of profiles, consents, sign-ups, carts,
/// purchases, shipping delays and flash sales for `customers` customers (`<tag>-c<i>`), written
/// for the fixture journeys welcome, cart_reminder, shipping_delay and flash_sale.
///
/// Under the wall clock a timer fires when its time has come *as the engine sees it*, so where a
/// timer falls among a customer's later events can differ from `simulate`'s virtual clock when
/// processing is delayed (a crash, a rebalance, a loaded machine). The stories are written so
/// that this never changes the outcome, and the test does not depend on luck:
/// - a customer either has a cart or flash sales, never both, because the cart's second
///   reminder may use SMS and the SMS cap (one a day) would then depend on which came first;
/// - with `exits`, some carts are followed at once (5 ms later) by a purchase, which takes the
///   customer out of the cart journey (its goal) well before the first reminder (3 s later).
///   Tests that kill or move partitions leave exits out: after a crash the restored timer and
///   the not-yet-committed purchase may meet in another order, which is the wall clock's right.
pub fn story(
    tag: &str,
    customers: usize,
    seed: u64,
    exits: bool,
    base: DateTime<Utc>,
) -> Vec<Vec<Value>> {
    let mut rng = SplitMix::new(seed);
    let mut per_customer = Vec::with_capacity(customers);
    let mut t = base;
    let mut tick = || {
        t += ChronoDuration::milliseconds(5);
        t
    };
    for i in 0..customers {
        let c = format!("{tag}-c{i}");
        let mut events = Vec::new();
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("{c}-e{n}")
        };
        let mut profile = serde_json::Map::new();
        profile.insert("email".into(), json!(format!("{c}@example.com")));
        if rng.range(0, 2) == 0 {
            profile.insert("push_token".into(), json!(format!("tok-{c}")));
        }
        let has_phone = rng.range(0, 3) > 0;
        if has_phone {
            profile.insert("phone".into(), json!(format!("+4470000{i:05}")));
        }
        events.push(event(
            &id(),
            &c,
            "profile_updated",
            tick(),
            Value::Object(profile),
        ));
        if has_phone && rng.range(0, 3) > 0 {
            events.push(event(
                &id(),
                &c,
                "consent_updated",
                tick(),
                json!({"channel": "sms", "status": "granted"}),
            ));
        }
        let source = ["organic", "ad", "referral"][rng.range(0, 3) as usize];
        events.push(event(
            &id(),
            &c,
            "signed_up",
            tick(),
            json!({"source": source}),
        ));
        // 0: a cart, 1: two flash sales, 2: neither.
        let plot = rng.range(0, 3);
        if plot == 0 {
            let value = rng.range(5, 150) as f64;
            events.push(event(
                &id(),
                &c,
                "cart_updated",
                tick(),
                json!({"cart_value": value, "sku": format!("SKU-{}", rng.range(1, 50))}),
            ));
            if exits && rng.range(0, 3) == 0 {
                events.push(event(
                    &id(),
                    &c,
                    "order_completed",
                    tick(),
                    json!({"total": value}),
                ));
            }
        }
        if rng.range(0, 4) == 0 {
            events.push(event(
                &id(),
                &c,
                "shipment_delayed",
                tick(),
                json!({"order_id": format!("o-{c}"), "carrier": "DHL"}),
            ));
        }
        if plot == 1 {
            for sale in ["autumn", "winter"] {
                events.push(event(
                    &id(),
                    &c,
                    "sale_announced",
                    tick(),
                    json!({"sale": sale}),
                ));
            }
        }
        per_customer.push(events);
    }
    per_customer
}

/// Flattens customer stories into one stream (customers one after the other; each customer's
/// events keep their order, which is all the partitioning preserves anyway).
pub fn flatten(stories: &[Vec<Value>]) -> Vec<Value> {
    stories.iter().flatten().cloned().collect()
}

/// The instant after which every timer of the fixture journeys has fired.
pub fn far_enough(events: &[Value]) -> DateTime<Utc> {
    let last = events
        .iter()
        .filter_map(|e| e["timestamp"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .max()
        .expect("at least one event")
        .with_timezone(&Utc);
    last + ChronoDuration::hours(1)
}

/// Reads the action topics until `expected` commands are there (then settles), and returns them
/// in simulate's form.
pub fn read_commands(s: &Scenario, expected: usize, timeout: Duration) -> Vec<Value> {
    let topics = s.action_topics();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let records = s
        .kafka
        .read_committed_n(&topics, expected, timeout, Duration::from_secs(4));
    records.iter().map(command_with_topic).collect()
}

/// Customers' stories merged into one stream the way they happen: turn by turn, each customer's
/// next event, so every stretch of the stream has many customers mid-story. Timestamps are
/// re-stamped in stream order (5 ms apart) so the stream is ordered in time as a topic would be.
pub fn interleave(stories: &[Vec<Value>], base: DateTime<Utc>) -> Vec<Value> {
    let longest = stories.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for turn in 0..longest {
        for story in stories {
            if let Some(e) = story.get(turn) {
                let mut e = e.clone();
                let at = base + ChronoDuration::milliseconds(5 * out.len() as i64);
                e["timestamp"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                out.push(e);
            }
        }
    }
    out
}

/// Produces `events` in 50 chunks spread evenly over `over`, as a live topic would receive them.
pub fn trickle(s: &Scenario, events: &[Value], over: Duration) {
    const CHUNKS: usize = 50;
    let size = events.len().div_ceil(CHUNKS).max(1);
    for chunk in events.chunks(size) {
        s.produce_events(chunk);
        std::thread::sleep(over / CHUNKS as u32);
    }
}
