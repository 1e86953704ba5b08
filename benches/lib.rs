//! Benchmark support: the configuration, journeys and synthetic event streams shared by the
//! engine benches (see `benches/`).

use chrono::{DateTime, Duration, Utc};
use journey_engine::{Catalog, Event};
use journey_spec::{parse_config, parse_journey, Config, EXAMPLE_CONFIG};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::Arc;

/// A mix of journeys: the cart abandonment example of docs/journeys.md, a browse follow-up with an
/// A/B split, a transactional shipping update and a post-purchase cross-sell.
pub const JOURNEYS: &[&str] = &[
    r#"
id: cart_abandonment
version: 3
trigger:
  event: cart_updated
  where: { path: event.properties.cart_value, gte: 20 }
entry:
  reentry: { after: 7d }
  unless: { did: order_completed, within: 24h }
  holdout: 10%
exit_when:
  - event: order_completed
  - event: cart_emptied
goal:
  event: order_completed
  within: 7d
steps:
  - id: wait_an_hour
    wait: 1h
  - id: first_reminder
    send:
      channels: [push, email]
      template: cart_reminder_1
      data:
        cart_value: { path: trigger.properties.cart_value }
        campaign: spring
  - id: wait_for_click
    wait_for:
      event: message_clicked
      timeout: 1d
      on_event: end
      on_timeout: vip_check
  - id: vip_check
    branch:
      - when: { path: profile.tier, eq: vip }
        next: vip_offer
      - next: second_reminder
  - id: vip_offer
    send: { channels: [email], template: cart_vip_offer }
    next: end
  - id: second_reminder
    send: { channels: [email, sms], template: cart_reminder_2 }
"#,
    r#"
id: browse_follow_up
version: 1
priority: -1
trigger:
  event: product_viewed
  where: { path: event.properties.category, in: [tents, boots] }
entry:
  reentry: { after: 2w }
  unless: { any: [ { did: order_completed, within: 7d }, { path: profile.email, exists: false } ] }
exit_when:
  - event: order_completed
steps:
  - id: wait_a_day
    wait: 1d
  - id: ab
    split:
      - { name: a, percent: 50, next: guide }
      - { name: b, percent: 50, next: offer }
  - id: guide
    send: { channels: [email], template: buying_guide }
    next: end
  - id: offer
    send: { channels: [push, email], template: browse_offer }
"#,
    r#"
id: shipping_delay
version: 1
category: transactional
priority: 10
trigger:
  event: shipment_delayed
entry:
  reentry: always
steps:
  - id: notify
    send:
      channels: [sms, email]
      template: shipping_delay
      data:
        order_id: { path: trigger.properties.order_id }
"#,
    r#"
id: cross_sell
version: 1
trigger:
  event: order_completed
  where: { path: event.properties.category, eq: tents }
entry:
  reentry: always
  unless: { did: accessory_purchased, within: 30d }
steps:
  - id: wait_three_days
    wait: 3d
  - id: suggest
    send: { channels: [email], template: tent_accessories }
"#,
];

/// Whether the bench binary runs as a benchmark (`cargo bench` passes `--bench`) rather than as
/// a quick check under `cargo test`, which runs bench targets once without it (criterion's test
/// mode). Benches use their full populations only when measuring, so that `cargo test` stays
/// fast even though it builds them unoptimised.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The example configuration of docs/reference/configuration.md ([`journey_spec::EXAMPLE_CONFIG`]).
pub fn config() -> Config {
    parse_config(EXAMPLE_CONFIG, Path::new("bench-config.yaml"), &[])
        .expect("bench config is valid")
}

/// The compiled bench catalog.
pub fn catalog() -> Arc<Catalog> {
    let cfg = config();
    let journeys = JOURNEYS
        .iter()
        .enumerate()
        .map(|(i, text)| {
            parse_journey(text, Path::new(&format!("bench{i}.yaml")), &cfg)
                .expect("bench journey is valid")
        })
        .collect();
    Arc::new(Catalog::new(&cfg, journeys))
}

/// A deterministic pseudo-random stream of events spread over `customers` distinct customers,
/// one event every `step_ms` of virtual time.
pub struct Stream {
    x: u64,
    n: u64,
    pub customers: u64,
    pub now: DateTime<Utc>,
    step: Duration,
}

impl Stream {
    pub fn new(customers: u64, step_ms: i64) -> Self {
        Stream {
            x: 0x9e37_79b9_7f4a_7c15,
            n: 0,
            customers,
            now: DateTime::parse_from_rfc3339("2026-11-23T06:00:00Z")
                .expect("valid")
                .with_timezone(&Utc),
            step: Duration::milliseconds(step_ms),
        }
    }

    fn rnd(&mut self, m: u64) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x % m
    }

    /// The next event. The mix: 40% product views, 20% cart updates, 10% page views (no
    /// journey), 8% orders, 8% clicks, 6% profile updates, 4% consent updates, 4% shipment
    /// delays.
    pub fn next_event(&mut self) -> Event {
        self.n += 1;
        self.now += self.step;
        let c = self.rnd(self.customers);
        let roll = self.rnd(100);
        let (r2, r3, r4, r10) = (self.rnd(2), self.rnd(3), self.rnd(4), self.rnd(10));
        let value = self.rnd(120);
        let (ty, props): (&str, Value) = match roll {
            0..=39 => (
                "product_viewed",
                json!({"category": (["tents", "boots", "socks", "stoves"][r4 as usize])}),
            ),
            40..=59 => (
                "cart_updated",
                json!({"cart_value": value, "sku": "TENT-2"}),
            ),
            60..=69 => ("page_viewed", json!({"url": "/"})),
            70..=77 => (
                "order_completed",
                json!({"category": (["tents", "boots"][r2 as usize]), "total": 80}),
            ),
            78..=85 => ("message_clicked", json!({})),
            86..=91 => (
                "profile_updated",
                json!({
                    "email": format!("c{c}@example.com"),
                    "push_token": if r2 == 0 { Value::Null } else { json!("tok") },
                    "phone": "+44700900123",
                    "tier": if r10 == 0 { "vip" } else { "standard" },
                    "timezone": (["Europe/London", "America/New_York", "Asia/Tokyo"][r3 as usize]),
                }),
            ),
            92..=95 => (
                "consent_updated",
                json!({"channel": (["sms", "push", "email"][r3 as usize]),
                       "status": if r4 == 0 { "withdrawn" } else { "granted" }}),
            ),
            _ => (
                "shipment_delayed",
                json!({"order_id": format!("o{}", self.n)}),
            ),
        };
        let properties: Map<String, Value> = match props {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Event {
            event_id: format!("e{}", self.n),
            customer_id: format!("c{c}"),
            event_type: ty.to_string(),
            timestamp: self.now,
            properties,
        }
    }
}

/// The benchmarks only ever talk to a broker on this machine's loopback address: every server
/// of `bootstrap` must be `127.0.0.1:PORT`.
pub fn check_local(bootstrap: &str) -> Result<(), String> {
    for server in bootstrap.split(',') {
        let server = server.trim();
        let host = server
            .rsplit_once(':')
            .map(|(h, port)| (h, port.parse::<u16>().is_ok()));
        if !matches!(host, Some(("127.0.0.1", true))) {
            return Err(format!(
                "bootstrap {server:?}: only 127.0.0.1:PORT is accepted"
            ));
        }
    }
    Ok(())
}

/// A `clap` value parser for a broker address given on the command line ([`check_local`]).
pub fn parse_local(bootstrap: &str) -> Result<String, String> {
    check_local(bootstrap)?;
    Ok(bootstrap.to_owned())
}

/// The broker a benchmark uses: the one given, else `$JOURNEYD_BENCH_BOOTSTRAP`, else the
/// tests' broker (`127.0.0.1:9092` when it answers, else a private one started with
/// `deploy/kafka/start.sh`, stopped once the benchmark has exited).
pub fn bench_bootstrap(given: Option<&str>) -> Result<String, String> {
    let bootstrap = match given {
        Some(b) => b.to_owned(),
        None => match std::env::var("JOURNEYD_BENCH_BOOTSTRAP") {
            Ok(b) => b.trim().to_owned(),
            Err(_) => journeyd_testkit::broker().bootstrap.clone(),
        },
    };
    check_local(&bootstrap)?;
    Ok(bootstrap)
}

/// The machine a figure was taken on: CPUs, model and load average (benches/README.md asks for
/// it with every figure).
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} CPUs ({cpu}), loadavg {}", loadavg())
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `q` (0..=1) of sorted `values` (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}
