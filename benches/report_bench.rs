//! `report-bench`: generates a synthetic but realistic event file for the example journeys
//! (`journeys/` with `deploy/journeyd.yaml`) and times `journeyd report` over it, printing the
//! figures (see benches/README.md, "Backtest report").
//!
//! ```text
//! cargo build --release -p journeyd -p journeyd-benches
//! target/release/report-bench [--events 1000000] [--customers 100000] [--journeyd target/release/journeyd]
//! target/release/report-bench --generate-only --events 200000 --customers 20000 --out events.jsonl
//! ```
//!
//! Each customer first gets a profile (e-mail for all, push token for 70%, phone for 50%, ads id
//! for 40%, a tier, a time zone) and some consent changes; then the events are spread evenly
//! over 14 days of virtual time, each for a random customer: cart updates and cart emptied,
//! orders (first orders, tents, accessories, filter cartridges), clicks and opens, page views,
//! support tickets, shipment delays and deliveries, returns, refunds and the warehouse's
//! `customer_inactive_90d`. The stream is in timestamp order and deterministic (fixed seed).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const CATEGORIES: [&str; 7] = [
    "tents",
    "tent_accessories",
    "water_filter_cartridges",
    "clothing",
    "jackets",
    "stoves",
    "boots",
];
const ZONES: [&str; 4] = [
    "Europe/London",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
];

fn stamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("in range")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes `events` events for `customers` customers; returns the number written.
pub fn generate(path: &Path, events: u64, customers: u64) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Friday 6 November 2026, 06:00 UTC.
    let start: i64 = 1_793_944_800;
    let mut orders = vec![0u32; customers as usize];
    let mut written = 0u64;
    let mut id = 0u64;
    let mut line = |out: &mut BufWriter<std::fs::File>,
                    c: u64,
                    ty: &str,
                    t: i64,
                    props: String|
     -> std::io::Result<()> {
        id += 1;
        writeln!(
            out,
            r#"{{"event_id":"e-{id}","customer_id":"c-{c}","type":"{ty}","timestamp":"{}","properties":{props}}}"#,
            stamp(t)
        )
    };
    // Profiles during the first hour.
    let setup = customers.min(events / 4);
    for c in 0..setup {
        let t = start + (c as i64 * 3600) / setup.max(1) as i64;
        let mut p = format!(r#"{{"email":"c{c}@example.com","first_name":"C{c}""#);
        if rng.chance(70) {
            p += &format!(r#","push_token":"pt-{c}""#);
        }
        if rng.chance(50) {
            p += &format!(r#","phone":"+4477009{c:05}""#);
        }
        if rng.chance(40) {
            p += &format!(r#","ads_id":"ads-{c}""#);
        }
        let tier = match rng.below(20) {
            0 => "vip",
            1 | 2 => "gold",
            _ => "standard",
        };
        p += &format!(
            r#","tier":"{tier}","timezone":"{}"}}"#,
            ZONES[rng.below(4) as usize]
        );
        line(&mut out, c, "profile_updated", t, p)?;
        written += 1;
        if rng.chance(30) {
            line(
                &mut out,
                c,
                "consent_updated",
                t,
                r#"{"channel":"sms","status":"granted"}"#.into(),
            )?;
            written += 1;
        }
    }
    let rest = events.saturating_sub(written);
    let span: i64 = 14 * 86_400;
    for i in 0..rest {
        let t = start + 3600 + (i as i64 * span) / rest.max(1) as i64;
        let c = rng.below(customers);
        let roll = rng.below(100);
        let (ty, props) = match roll {
            0..=21 => (
                "cart_updated",
                format!(r#"{{"cart_value":{}.0}}"#, 5 + rng.below(300)),
            ),
            22..=24 => ("cart_emptied", "{}".to_string()),
            25..=34 => {
                orders[c as usize] += 1;
                let n = orders[c as usize] + rng.below(3) as u32;
                let cat = CATEGORIES[rng.below(7) as usize];
                let mut cats = vec![cat];
                if cat == "tents" && rng.chance(30) {
                    cats.push("tent_accessories");
                }
                let list = cats
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(",");
                (
                    "order_completed",
                    format!(
                        r#"{{"order_id":"o-{i}","total":{}.0,"customer_order_number":{n},"categories":[{list}],"primary_category":"{cat}","primary_sku":"SKU-{}","pack_size":{}}}"#,
                        10 + rng.below(400),
                        rng.below(50),
                        1 + rng.below(3)
                    ),
                )
            }
            35..=44 => (
                "message_clicked",
                format!(
                    r#"{{"template":"{}"}}"#,
                    [
                        "cart_reminder_1",
                        "cross_sell_tent_bundle",
                        "winback_we_miss_you"
                    ][rng.below(3) as usize]
                ),
            ),
            45..=50 => ("message_opened", "{}".to_string()),
            51..=74 => ("page_viewed", r#"{"path":"/tents"}"#.to_string()),
            75..=77 => (
                "support_ticket_opened",
                format!(r#"{{"ticket_id":"t-{i}"}}"#),
            ),
            78..=80 => (
                "support_ticket_resolved",
                format!(
                    r#"{{"ticket_id":"t-{i}","severity":"{}","agent_name":"Sam"}}"#,
                    if rng.chance(20) { "high" } else { "low" }
                ),
            ),
            81..=84 => (
                "shipment_delayed",
                format!(
                    r#"{{"order_id":"o-{}","carrier":"ParcelCo"}}"#,
                    rng.below(1000)
                ),
            ),
            85..=88 => ("shipment_delivered", "{}".to_string()),
            89..=90 => ("order_returned", "{}".to_string()),
            91 => ("order_refunded", r#"{"full_refund":true}"#.to_string()),
            92..=95 => (
                "customer_inactive_90d",
                format!(
                    r#"{{"days_since_last_order":90,"last_category":"{}","lifetime_orders":{}}}"#,
                    CATEGORIES[rng.below(7) as usize],
                    1 + rng.below(8)
                ),
            ),
            96 => (
                "consent_updated",
                r#"{"channel":"push","status":"withdrawn"}"#.to_string(),
            ),
            _ => ("search", r#"{"q":"stove"}"#.to_string()),
        };
        line(&mut out, c, ty, t, props)?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = arg(&args, "--events", 1_000_000);
    let customers: u64 = arg(&args, "--customers", 100_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("journeyd-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let events_path: PathBuf = arg(&args, "--out", dir.join("events.jsonl"));
    let t = Instant::now();
    let written = generate(&events_path, events, customers).expect("events written");
    let size = std::fs::metadata(&events_path)
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "generated {written} events for {customers} customers in {:.1}s ({:.0} MB): {}",
        t.elapsed().as_secs_f64(),
        size as f64 / 1e6,
        events_path.display()
    );
    if args.iter().any(|a| a == "--generate-only") {
        return;
    }
    let journeyd: PathBuf = arg(&args, "--journeyd", root.join("target/release/journeyd"));
    let html = dir.join("report.html");
    let t = Instant::now();
    let out = Command::new(&journeyd)
        .arg("report")
        .arg("--config")
        .arg(root.join("deploy/journeyd.yaml"))
        .arg("--events")
        .arg(&events_path)
        .arg("--out")
        .arg(&html)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", journeyd.display()));
    let elapsed = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "journeyd report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html_size = std::fs::metadata(&html).map(|m| m.len()).unwrap_or(0);
    print!("{}", String::from_utf8_lossy(&out.stderr));
    println!(
        "journeyd report: {written} events, {customers} customers: {elapsed:.2} s wall, HTML {:.2} MB ({} bytes)",
        html_size as f64 / 1e6,
        html_size
    );
    let _ = std::fs::remove_dir_all(&dir);
}
