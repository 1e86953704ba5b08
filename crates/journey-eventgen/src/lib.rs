//! A seeded stream of realistic events: the behaviour of a retailer's customers, the same for a
//! seed on every platform. `journeyd demo` shows it; the black-box tests and the end-to-end
//! benchmark (through `journeyd-testkit`) produce it to a real broker.
//!
//! Each customer walks through a small story, one event at a time: a profile (addresses, tier,
//! time zone), sometimes an SMS consent, browsing, a cart, often a purchase (the first one starts
//! onboarding and removes them from retargeting audiences), sometimes a delayed shipment, clicks
//! on messages, support tickets, and now and then 90 days of silence. The next customer to act
//! is drawn at random, so stories interleave as they would on a real topic. Every few hundred
//! events one malformed record is mixed in, to show dead-lettering ([`Options::malformed_every`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// A small, specified pseudo-random generator (SplitMix64): the same seed gives the same stream
/// on every platform and version, which a library RNG does not promise.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `lo..hi` (`hi` exclusive; `lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// True with probability `p` (0.0 to 1.0).
    pub fn probability(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Where a customer is in their story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    New,
    Consent,
    Browsing(u8),
    Cart,
    Decide,
    AfterOrder,
    Engaged,
}

#[derive(Debug, Clone)]
struct Customer {
    id: String,
    number: usize,
    stage: Stage,
    orders: u32,
    has_phone: bool,
    cart_value: f64,
    categories: Vec<&'static str>,
}

/// One record for the input topic: the key (customer id) and the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Position in the stream (1, 2, ...); the event id is `Options::event_prefix` + `seq`.
    pub seq: u64,
    pub key: String,
    pub payload: Vec<u8>,
    /// The event type, or `None` for a deliberately malformed record.
    pub event_type: Option<String>,
}

/// How a [`Generator`] names things and how often it breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Customer ids are this prefix and a number from 1 (default `c-`).
    pub customer_prefix: String,
    /// Event ids are this prefix and the record's `seq` (default `demo-`).
    pub event_prefix: String,
    /// Every `malformed_every`-th record is malformed; 0: never (default 250).
    pub malformed_every: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            customer_prefix: "c-".to_string(),
            event_prefix: "demo-".to_string(),
            malformed_every: 250,
        }
    }
}

/// The stream of events.
pub struct Generator {
    rng: SplitMix,
    customers: Vec<Customer>,
    sequence: u64,
    options: Options,
}

const FIRST_NAMES: [&str; 10] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken",
];
const TIMEZONES: [&str; 5] = [
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
];
const PRODUCTS: [(&str, &str, f64); 8] = [
    ("TENT-2", "tents", 189.0),
    ("TENT-4", "tents", 329.0),
    ("FOOT-2", "tent_accessories", 24.0),
    ("PEGS-12", "tent_accessories", 9.5),
    ("FILT-3", "water_filter_cartridges", 29.0),
    ("STOVE-1", "stoves", 74.0),
    ("BAG-0C", "sleeping_bags", 119.0),
    ("LAMP-1", "lighting", 19.0),
];

impl Generator {
    /// `customers` customers (`c-1` ... `c-N`), stories drawn from `seed`, the default
    /// [`Options`].
    pub fn new(customers: usize, seed: u64) -> Generator {
        Generator::with_options(customers, seed, Options::default())
    }

    /// `customers` customers, stories drawn from `seed`, named as `options` say.
    pub fn with_options(customers: usize, seed: u64, options: Options) -> Generator {
        let customers = (1..=customers.max(1))
            .map(|i| Customer {
                id: format!("{}{i}", options.customer_prefix),
                number: i,
                stage: Stage::New,
                orders: 0,
                has_phone: false,
                cart_value: 0.0,
                categories: Vec::new(),
            })
            .collect();
        Generator {
            rng: SplitMix::new(seed),
            customers,
            sequence: 0,
            options,
        }
    }

    /// Records generated so far.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The next record, stamped `now`.
    pub fn next(&mut self, now: DateTime<Utc>) -> Generated {
        self.sequence += 1;
        let event_id = format!("{}{}", self.options.event_prefix, self.sequence);
        let every = self.options.malformed_every;
        if every > 0 && self.sequence.is_multiple_of(every) {
            return self.malformed(&event_id, now);
        }
        let index = self.rng.below(self.customers.len() as u64) as usize;
        let (event_type, properties) = self.advance(index);
        self.record(index, event_id, event_type, properties, now)
    }

    /// The next record is an event of the caller's `event_type` and `properties` for a customer
    /// who already has a profile (so an e-mail address); while nobody has one yet, the next
    /// story event instead. Lets a benchmark or a test mix its own events into the stream.
    pub fn next_of_type(
        &mut self,
        now: DateTime<Utc>,
        event_type: &str,
        properties: Value,
    ) -> Generated {
        let known = (0..16)
            .map(|_| self.rng.below(self.customers.len() as u64) as usize)
            .find(|&i| self.customers[i].stage != Stage::New);
        let Some(index) = known else {
            return self.next(now);
        };
        self.sequence += 1;
        let event_id = format!("{}{}", self.options.event_prefix, self.sequence);
        self.record(index, event_id, event_type, properties, now)
    }

    fn record(
        &self,
        index: usize,
        event_id: String,
        event_type: &str,
        properties: Value,
        now: DateTime<Utc>,
    ) -> Generated {
        let customer = &self.customers[index];
        let event = json!({
            "event_id": event_id,
            "customer_id": customer.id,
            "type": event_type,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "properties": properties,
        });
        Generated {
            seq: self.sequence,
            key: customer.id.clone(),
            payload: serde_json::to_vec(&event).expect("a JSON value serializes"),
            event_type: Some(event_type.to_string()),
        }
    }

    /// A record that breaks docs/reference/events.md in one of the ways producers really do.
    fn malformed(&mut self, event_id: &str, now: DateTime<Utc>) -> Generated {
        let customer = self.rng.pick(&self.customers).id.clone();
        let payload = match self.rng.below(3) {
            0 => b"{\"event_id\": \"truncated".to_vec(),
            1 => serde_json::to_vec(&json!({
                "event_id": event_id,
                "type": "product_viewed",
                "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            }))
            .expect("serialize"),
            _ => serde_json::to_vec(&json!({
                "event_id": event_id,
                "customer_id": customer,
                "type": "product_viewed",
                "timestamp": "yesterday afternoon",
            }))
            .expect("serialize"),
        };
        Generated {
            seq: self.sequence,
            key: customer,
            payload,
            event_type: None,
        }
    }

    /// Moves customer `index` one step along their story; returns the event type and
    /// properties.
    fn advance(&mut self, index: usize) -> (&'static str, Value) {
        let rng = &mut self.rng;
        let c = &mut self.customers[index];
        match c.stage {
            Stage::New => {
                let number = c.number;
                let mut profile = Map::new();
                profile.insert("first_name".into(), json!(FIRST_NAMES[number % 10]));
                profile.insert("email".into(), json!(format!("{}@example.com", c.id)));
                profile.insert("timezone".into(), json!(rng.pick(&TIMEZONES)));
                profile.insert(
                    "tier".into(),
                    json!(if rng.chance(15) { "vip" } else { "regular" }),
                );
                if rng.chance(60) {
                    profile.insert("push_token".into(), json!(format!("push-{}", c.id)));
                }
                if rng.chance(50) {
                    profile.insert("ads_id".into(), json!(format!("ads-{}", c.id)));
                }
                c.has_phone = rng.chance(55);
                if c.has_phone {
                    profile.insert("phone".into(), json!(format!("+44 7700 9{number:05}")));
                }
                c.stage = if c.has_phone {
                    Stage::Consent
                } else {
                    Stage::Browsing(0)
                };
                ("profile_updated", Value::Object(profile))
            }
            Stage::Consent => {
                c.stage = Stage::Browsing(0);
                let status = if rng.chance(70) {
                    "granted"
                } else {
                    "withdrawn"
                };
                (
                    "consent_updated",
                    json!({"channel": "sms", "status": status}),
                )
            }
            Stage::Browsing(n) => {
                let (sku, category, price) = *rng.pick(&PRODUCTS);
                if n >= 2 || rng.chance(35) {
                    c.stage = Stage::Cart;
                }
                if c.stage != Stage::Cart {
                    c.stage = Stage::Browsing(n + 1);
                }
                if !c.categories.contains(&category) {
                    c.categories.push(category);
                }
                c.cart_value = price;
                (
                    "product_viewed",
                    json!({"sku": sku, "category": category, "price": price}),
                )
            }
            Stage::Cart => {
                c.stage = Stage::Decide;
                let extra = rng.below(3) as f64 * 12.5;
                c.cart_value += extra;
                (
                    "cart_updated",
                    json!({"cart_value": c.cart_value, "items": c.categories.len()}),
                )
            }
            Stage::Decide => {
                if rng.chance(55) {
                    c.orders += 1;
                    c.stage = Stage::AfterOrder;
                    let categories = std::mem::take(&mut c.categories);
                    (
                        "order_completed",
                        json!({
                            "order_id": format!("o-{}-{}", c.id, c.orders),
                            "customer_order_number": c.orders,
                            "total": c.cart_value,
                            "categories": categories,
                        }),
                    )
                } else if rng.chance(30) {
                    c.stage = Stage::Browsing(0);
                    c.categories.clear();
                    ("cart_emptied", json!({}))
                } else {
                    // Walks away: the cart journey's reminder is what brings them back.
                    c.stage = Stage::Engaged;
                    (
                        "product_viewed",
                        json!({"sku": "LAMP-1", "category": "lighting", "price": 19.0}),
                    )
                }
            }
            Stage::AfterOrder => {
                c.stage = Stage::Engaged;
                if rng.chance(35) {
                    (
                        "shipment_delayed",
                        json!({
                            "order_id": format!("o-{}-{}", c.id, c.orders),
                            "carrier": rng.pick(&["DHL", "UPS", "Royal Mail"]),
                            "new_eta": "in 3 days",
                            "reason": "weather",
                        }),
                    )
                } else {
                    (
                        "shipment_delivered",
                        json!({"order_id": format!("o-{}-{}", c.id, c.orders)}),
                    )
                }
            }
            Stage::Engaged => {
                c.stage = Stage::Browsing(0);
                match rng.below(5) {
                    0 => (
                        "message_clicked",
                        json!({"template": "cart_reminder_1", "channel": "push"}),
                    ),
                    1 => (
                        "message_opened",
                        json!({"template": "onboarding_welcome", "channel": "email"}),
                    ),
                    2 => (
                        "support_ticket_resolved",
                        json!({"ticket_id": format!("t-{}", c.id), "topic": "delivery"}),
                    ),
                    3 => ("customer_inactive_90d", json!({})),
                    _ => (
                        "product_viewed",
                        json!({"sku": "STOVE-1", "category": "stoves", "price": 74.0}),
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let mut a = Generator::new(20, 7);
        let mut b = Generator::new(20, 7);
        for _ in 0..500 {
            assert_eq!(a.next(at()), b.next(at()));
        }
        let mut c = Generator::new(20, 8);
        let differs = (0..50).any(|_| a.next(at()) != c.next(at()));
        assert!(differs, "another seed gives another stream");
    }

    #[test]
    fn events_follow_the_event_contract_and_every_250th_is_malformed() {
        let mut g = Generator::new(5, 1);
        for n in 1..=600u64 {
            let r = g.next(at());
            let parsed = journey_engine::parse_event(&r.payload, 65536);
            if n % 250 == 0 {
                assert!(r.event_type.is_none());
                assert!(parsed.is_err(), "record {n} should be rejected");
            } else {
                let event = parsed.unwrap_or_else(|e| panic!("record {n}: {e}"));
                assert_eq!(event.customer_id, r.key);
                assert_eq!(Some(event.event_type), r.event_type);
            }
        }
    }

    #[test]
    fn every_customer_starts_with_a_profile_and_stories_reach_purchases() {
        let mut g = Generator::new(3, 42);
        let mut first: std::collections::BTreeMap<String, String> = Default::default();
        let mut types = std::collections::BTreeSet::new();
        for _ in 0..400 {
            let r = g.next(at());
            if let Some(t) = r.event_type {
                first.entry(r.key.clone()).or_insert_with(|| t.clone());
                types.insert(t);
            }
        }
        assert!(first.values().all(|t| t == "profile_updated"), "{first:?}");
        for t in ["cart_updated", "order_completed", "product_viewed"] {
            assert!(types.contains(t), "{t} never generated: {types:?}");
        }
    }

    #[test]
    fn options_name_customers_and_events_and_can_turn_malformed_records_off() {
        let options = Options {
            customer_prefix: "run7-c".into(),
            event_prefix: "run7-e".into(),
            malformed_every: 0,
        };
        let mut g = Generator::with_options(4, 9, options);
        for n in 1..=600u64 {
            let r = g.next(at());
            assert_eq!(r.seq, n);
            let event = journey_engine::parse_event(&r.payload, 65536)
                .unwrap_or_else(|e| panic!("record {n}: {e}"));
            assert!(
                event.customer_id.starts_with("run7-c"),
                "{}",
                event.customer_id
            );
            assert_eq!(event.event_id, format!("run7-e{n}"));
        }
        assert_eq!(g.sequence(), 600);
    }

    #[test]
    fn mixed_in_events_go_to_customers_with_a_profile() {
        let mut g = Generator::new(50, 5);
        let first = g.next_of_type(at(), "bench_ping", json!({"n": 1}));
        assert_eq!(
            first.event_type.as_deref(),
            Some("profile_updated"),
            "nobody has a profile yet: the story goes on"
        );
        let mut profiled = std::collections::BTreeSet::from([first.key.clone()]);
        for _ in 0..200 {
            let r = g.next(at());
            if r.event_type.as_deref() == Some("profile_updated") {
                profiled.insert(r.key.clone());
            }
        }
        for _ in 0..100 {
            let r = g.next_of_type(at(), "bench_ping", json!({"n": 2}));
            assert_eq!(r.event_type.as_deref(), Some("bench_ping"));
            assert!(profiled.contains(&r.key), "{} has no profile", r.key);
            let event = journey_engine::parse_event(&r.payload, 65536).expect("a valid event");
            assert_eq!(event.event_id, format!("demo-{}", r.seq));
        }
    }

    #[test]
    fn range_and_probability_stay_in_bounds() {
        let mut rng = SplitMix::new(3);
        for _ in 0..1000 {
            let v = rng.range(5, 9);
            assert!((5..9).contains(&v), "{v}");
        }
        assert_eq!(rng.range(4, 4), 4);
        assert!(!(0..100).any(|_| rng.probability(0.0)));
        assert!((0..100).all(|_| rng.probability(1.0)));
    }
}
