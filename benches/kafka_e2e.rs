//! End-to-end benchmark of the Kafka runtime against a real broker on 127.0.0.1.
//!
//! The service runs in this process (`journey_kafka::run_service`, the same code `journeyd run`
//! runs), with the example journeys of `journeys/`, the channels of `deploy/journeyd.yaml`,
//! and topic names unique to this run. Three phases run one after the other on the same
//! service, so the later ones see a service that already holds its customers:
//!
//! 1. **throughput**: a backlog of `--events` events over `--customers` customers is produced
//!    before the service starts; measured is the time from the start of the service until the
//!    group's committed input offsets reach the end of the backlog and every output committed
//!    with them has been read by a `read_committed` consumer.
//! 2. **latency**: events at a steady `--rate` for `--seconds`; for each send command, the time
//!    from the produce call of the event that triggered it until a `read_committed` consumer
//!    sees the command.
//! 3. **timers**: the same steady load, a share of which enters a bench journey that waits
//!    `--timer-wait` seconds and then sends; measured is how late each send becomes visible
//!    relative to its due time (event produced + wait), the lateness of its `issued_at`, and
//!    the service's own `journeyd_timer_lateness_seconds` histogram from `/metrics`.
//!
//! Everything is bounded in time: each wait has a deadline, after which the phase reports what
//! it saw and says that it timed out.

use chrono::{DateTime, SecondsFormat, Utc};
use journey_kafka::http::Health;
use journey_kafka::metrics::Metrics;
use journey_kafka::{run_service, CancellationToken, ServiceOptions};
use journey_spec::Config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
kafka-e2e-bench: end-to-end throughput, latency and timer lateness of journeyd against a real
Kafka broker on 127.0.0.1.

usage: kafka-e2e-bench [BOOTSTRAP] [options]

  BOOTSTRAP              broker address (default $JOURNEYD_BENCH_BOOTSTRAP or 127.0.0.1:9092);
                         only 127.0.0.1 is accepted
  --events N             backlog size of the throughput phase (default 200000)
  --customers N          distinct customers (default 100000)
  --partitions N         input partitions (default 3)
  --rate N               events/s of the latency and timer phases (default 2000)
  --seconds N            duration of each steady phase (default 20)
  --timer-wait N         seconds the bench journey waits before its send (default 5)
  --timer-share F        share of the timer phase's events that start that journey (default 0.1)
  --commit-interval-ms N kafka.commit_interval_ms of the service (default: the config default)
  --client KEY=VALUE     librdkafka property for the service's clients (repeatable)
  --phases LIST          comma-separated subset of throughput,latency,timers (default all)
  --repo DIR             repository root holding journeys/ and deploy/ (default: found from
                         the current directory)
";

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    bootstrap: String,
    events: usize,
    customers: usize,
    partitions: i32,
    rate: u64,
    seconds: u64,
    timer_wait: u64,
    timer_share: f64,
    commit_interval_ms: Option<u64>,
    client: Vec<(String, String)>,
    phases: Vec<String>,
    repo: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bootstrap: std::env::var("JOURNEYD_BENCH_BOOTSTRAP")
            .unwrap_or_else(|_| "127.0.0.1:9092".to_owned()),
        events: 200_000,
        customers: 100_000,
        partitions: 3,
        rate: 2000,
        seconds: 20,
        timer_wait: 5,
        timer_share: 0.1,
        commit_interval_ms: None,
        client: Vec::new(),
        phases: vec!["throughput".into(), "latency".into(), "timers".into()],
        repo: PathBuf::new(),
    };
    let mut repo = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--events" => args.events = num(&arg, value(&arg)?)?,
            "--customers" => args.customers = num(&arg, value(&arg)?)?,
            "--partitions" => args.partitions = num(&arg, value(&arg)?)?,
            "--rate" => args.rate = num(&arg, value(&arg)?)?,
            "--seconds" => args.seconds = num(&arg, value(&arg)?)?,
            "--timer-wait" => args.timer_wait = num(&arg, value(&arg)?)?,
            "--timer-share" => args.timer_share = num(&arg, value(&arg)?)?,
            "--commit-interval-ms" => args.commit_interval_ms = Some(num(&arg, value(&arg)?)?),
            "--phases" => {
                args.phases = value(&arg)?
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect()
            }
            "--client" => {
                let v = value(&arg)?;
                let (k, v) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--client {v}: expected KEY=VALUE"))?;
                if k == "bootstrap.servers" {
                    return Err("--client bootstrap.servers: give BOOTSTRAP instead".into());
                }
                args.client.push((k.to_owned(), v.to_owned()));
            }
            "--repo" => repo = Some(PathBuf::from(value(&arg)?)),
            a if a.starts_with('-') => return Err(format!("unknown option {a}\n\n{USAGE}")),
            a => args.bootstrap = a.to_owned(),
        }
    }
    for p in &args.phases {
        if !["throughput", "latency", "timers"].contains(&p.as_str()) {
            return Err(format!("unknown phase {p}"));
        }
    }
    if args.customers == 0 || args.partitions <= 0 || args.rate == 0 || args.timer_wait == 0 {
        return Err("--customers, --partitions, --rate and --timer-wait must be positive".into());
    }
    check_local(&args.bootstrap)?;
    args.repo = match repo {
        Some(r) => r,
        None => find_repo()?,
    };
    Ok(args)
}

/// The benchmark only ever talks to a broker on this machine's loopback address.
fn check_local(bootstrap: &str) -> Result<(), String> {
    for server in bootstrap.split(',') {
        let server = server.trim();
        let host = server
            .rsplit_once(':')
            .map(|(h, port)| (h, port.parse::<u16>().is_ok()));
        match host {
            Some(("127.0.0.1", true)) => {}
            _ => {
                return Err(format!(
                    "bootstrap {server:?}: only 127.0.0.1:PORT is accepted"
                ))
            }
        }
    }
    Ok(())
}

/// The repository root: the first ancestor of the current directory (or of this source file's
/// package) holding `journeys/` and `deploy/journeyd.yaml`.
fn find_repo() -> Result<PathBuf, String> {
    let starts = [
        std::env::current_dir().map_err(|e| e.to_string())?,
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ];
    for start in starts {
        for dir in start.ancestors() {
            if dir.join("journeys").is_dir() && dir.join("deploy/journeyd.yaml").is_file() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    Err("cannot find the repository root (journeys/ and deploy/journeyd.yaml); use --repo".into())
}

/// A small deterministic generator (splitmix64): the same run produces the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The bench journey of the timer phase: a transactional send (no caps, no quiet hours) after a
/// short wait, so that the wait is the only thing between entry and send.
fn timer_journey(wait_secs: u64) -> String {
    format!(
        "id: bench_timer\n\
         version: 1\n\
         name: Benchmark timer\n\
         category: transactional\n\
         trigger:\n  event: bench_timer_start\n\
         entry:\n  reentry: always\n\
         steps:\n\
         \x20 - id: short_wait\n    wait: {wait_secs}s\n\
         \x20 - id: ping\n    send:\n      channels: [email]\n      template: bench_timer_ping\n"
    )
}

/// Event types with their weights in the mix (after a customer's first event, which is always
/// the profile that makes them reachable).
const MIX: &[(&str, u64)] = &[
    ("product_viewed", 22),
    ("page_viewed", 12),
    ("cart_updated", 14),
    ("order_completed", 10),
    ("message_opened", 5),
    ("message_clicked", 5),
    ("shipment_delayed", 6),
    ("shipment_delivered", 4),
    ("support_ticket_opened", 2),
    ("support_ticket_resolved", 3),
    ("consent_updated", 4),
    ("profile_updated", 4),
    ("cart_emptied", 3),
    ("customer_inactive_90d", 3),
    ("order_returned", 1),
];

const TIMEZONES: &[&str] = &[
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
];
const CATEGORIES: &[&str] = &[
    "tents",
    "tent_accessories",
    "sleeping_bags",
    "stoves",
    "water_filter_cartridges",
    "clothing",
];

/// Generates a realistic stream of events over a fixed population of customers.
struct Generator {
    rng: Rng,
    seen: Vec<bool>,
    orders: Vec<u16>,
    seq: u64,
    tag: String,
    mix_total: u64,
}

/// One generated event.
struct Generated {
    seq: u64,
    key: String,
    payload: String,
    timer: bool,
}

impl Generator {
    fn new(customers: usize, seed: u64, tag: &str) -> Self {
        Generator {
            rng: Rng(seed),
            seen: vec![false; customers],
            orders: vec![0; customers],
            seq: 0,
            tag: tag.to_owned(),
            mix_total: MIX.iter().map(|(_, w)| w).sum(),
        }
    }

    fn customer_id(&self, c: usize) -> String {
        format!("{}-c{c}", self.tag)
    }

    /// The next event, at wall-clock time `now`; with `timer_share`, that share of the events
    /// (for customers already known) start the bench timer journey.
    fn next(&mut self, now: DateTime<Utc>, timer_share: f64) -> Generated {
        self.seq += 1;
        let seq = self.seq;
        let n = self.seen.len();
        let mut c = self.rng.below(n as u64) as usize;
        let timer = timer_share > 0.0 && self.rng.chance(timer_share);
        if timer {
            // The journey sends by e-mail: pick a customer whose profile (with the address)
            // has been produced.
            for _ in 0..16 {
                if self.seen[c] {
                    break;
                }
                c = self.rng.below(n as u64) as usize;
            }
        }
        let customer = self.customer_id(c);
        let (kind, properties) = if !self.seen[c] {
            self.seen[c] = true;
            ("profile_updated", self.profile(c))
        } else if timer {
            ("bench_timer_start", json!({"seq": seq}))
        } else {
            let mut pick = self.rng.below(self.mix_total);
            let mut kind = MIX[0].0;
            for (k, w) in MIX {
                if pick < *w {
                    kind = k;
                    break;
                }
                pick -= w;
            }
            let props = self.properties(kind, c, seq);
            (kind, props)
        };
        let event = json!({
            "event_id": format!("{}-e{seq}", self.tag),
            "customer_id": customer,
            "type": kind,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "properties": properties,
        });
        Generated {
            seq,
            key: customer,
            payload: event.to_string(),
            timer: kind == "bench_timer_start",
        }
    }

    fn profile(&mut self, c: usize) -> Value {
        let mut p = serde_json::Map::new();
        p.insert("email".into(), json!(format!("c{c}@example.com")));
        if self.rng.chance(0.6) {
            p.insert("phone".into(), json!(format!("+44700{c:07}")));
        }
        if self.rng.chance(0.5) {
            p.insert("push_token".into(), json!(format!("tok-{c}")));
        }
        if self.rng.chance(0.4) {
            p.insert("ads_id".into(), json!(format!("ads-{c:x}")));
        }
        let tz = TIMEZONES[self.rng.below(TIMEZONES.len() as u64) as usize];
        p.insert("timezone".into(), json!(tz));
        if self.rng.chance(0.1) {
            p.insert("tier".into(), json!("vip"));
        }
        Value::Object(p)
    }

    fn properties(&mut self, kind: &str, c: usize, seq: u64) -> Value {
        let category = CATEGORIES[self.rng.below(CATEGORIES.len() as u64) as usize];
        let sku = format!("SKU-{}", self.rng.below(5000));
        match kind {
            "product_viewed" | "page_viewed" => json!({"sku": sku, "category": category}),
            "cart_updated" => json!({"cart_value": 5 + self.rng.below(300), "sku": sku}),
            "order_completed" => {
                self.orders[c] = self.orders[c].saturating_add(1);
                let mut categories = vec![category];
                if self.rng.chance(0.3) {
                    categories.push(CATEGORIES[self.rng.below(CATEGORIES.len() as u64) as usize]);
                }
                json!({
                    "order_id": format!("o-{seq}"),
                    "customer_order_number": self.orders[c],
                    "categories": categories,
                    "primary_category": category,
                    "primary_sku": sku,
                    "pack_size": 1 + self.rng.below(4),
                    "total": 10 + self.rng.below(500),
                })
            }
            "message_opened" | "message_clicked" => {
                let template = ["cart_reminder_1", "cross_sell_tent", "winback_we_miss_you"]
                    [self.rng.below(3) as usize];
                json!({"template": template})
            }
            "shipment_delayed" => json!({
                "order_id": format!("o-{}", seq.saturating_sub(self.rng.below(1000))),
                "carrier": "DPD",
                "new_eta": "2026-12-01",
                "reason": "weather",
            }),
            "shipment_delivered" | "order_returned" => {
                json!({"order_id": format!("o-{}", seq.saturating_sub(self.rng.below(1000)))})
            }
            "support_ticket_opened" | "support_ticket_resolved" => json!({
                "ticket_id": format!("t-{seq}"),
                "severity": if self.rng.chance(0.3) { "high" } else { "low" },
                "agent_name": "Sam",
            }),
            "consent_updated" => {
                let channel = ["sms", "email", "push"][self.rng.below(3) as usize];
                let status = if self.rng.chance(0.8) {
                    "granted"
                } else {
                    "withdrawn"
                };
                json!({"channel": channel, "status": status})
            }
            "profile_updated" => {
                let tz = TIMEZONES[self.rng.below(TIMEZONES.len() as u64) as usize];
                json!({"timezone": tz})
            }
            "customer_inactive_90d" => json!({
                "last_category": category,
                "days_since_last_order": 90 + self.rng.below(200),
                "lifetime_orders": self.rng.below(10),
            }),
            _ => json!({}),
        }
    }
}

/// Names of this run's topics and group.
struct Names {
    events: String,
    decisions: String,
    dead_letter: String,
    state: String,
    group: String,
    /// Channel name -> command topic.
    channels: BTreeMap<String, String>,
}

fn client(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// Creates the input topic with the requested partition count (the service creates the rest
/// with the same count).
fn create_input_topic(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        client(bootstrap, &[]).create().map_err(|e| e.to_string())?;
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .map_err(|e| e.to_string())?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(format!("creating {t}: {code}")),
        }
    }
    Ok(())
}

/// Deletes this run's topics (best effort: the broker is shared with other work).
fn delete_topics(rt: &tokio::runtime::Runtime, bootstrap: &str, topics: &[String]) {
    let Ok(admin) = client(bootstrap, &[]).create::<AdminClient<DefaultClientContext>>() else {
        return;
    };
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let _ = rt.block_on(admin.delete_topics(&names, &AdminOptions::new()));
}

type Plain = ThreadedProducer<DefaultProducerContext>;

fn event_producer(bootstrap: &str) -> Result<Plain, String> {
    client(
        bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("queue.buffering.max.messages", "1000000"),
        ],
    )
    .create()
    .map_err(|e| e.to_string())
}

/// Hands one event to the producer, waiting while its queue is full.
fn send(producer: &Plain, topic: &str, key: &str, payload: &str) -> Result<(), KafkaError> {
    let mut record = BaseRecord::<str, str>::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// One record seen by the reader.
struct Seen {
    at: Instant,
    payload: Option<Vec<u8>>,
}

/// A `read_committed` reader of the output topics, on its own thread, from their beginning.
struct Reader {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    counts: Arc<Vec<AtomicU64>>,
    last_at: Arc<Mutex<Option<Instant>>>,
    consumer: Arc<BaseConsumer>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Reader {
    /// `keep[i]`: whether payloads of `topics[i]` are kept for analysis (the others are counted).
    fn start(
        bootstrap: &str,
        group: &str,
        topics: &[String],
        keep: Vec<bool>,
        partitions: i32,
        from: Offset,
    ) -> Result<Reader, String> {
        let consumer: BaseConsumer = client(
            bootstrap,
            &[
                ("group.id", group),
                ("isolation.level", "read_committed"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "10"),
            ],
        )
        .create()
        .map_err(|e| e.to_string())?;
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            for p in 0..partitions {
                tpl.add_partition_offset(t, p, from)
                    .map_err(|e| e.to_string())?;
            }
        }
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new(topics.iter().map(|_| AtomicU64::new(0)).collect());
        let last_at = Arc::new(Mutex::new(None));
        let index: HashMap<String, usize> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        let handle = {
            let (consumer, stop, seen, counts, last_at) = (
                Arc::clone(&consumer),
                Arc::clone(&stop),
                Arc::clone(&seen),
                Arc::clone(&counts),
                Arc::clone(&last_at),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match consumer.poll(Duration::from_millis(20)) {
                        Some(Ok(msg)) => {
                            let at = Instant::now();
                            let Some(&i) = index.get(msg.topic()) else {
                                continue;
                            };
                            counts[i].fetch_add(1, Ordering::Relaxed);
                            *last_at.lock().unwrap() = Some(at);
                            if keep[i] {
                                seen.lock().unwrap().push(Seen {
                                    at,
                                    payload: msg.payload().map(<[u8]>::to_vec),
                                });
                            }
                        }
                        Some(Err(e)) => eprintln!("reader: {e}"),
                        None => {}
                    }
                }
            })
        };
        Ok(Reader {
            stop,
            seen,
            counts,
            last_at,
            consumer,
            handle: Some(handle),
        })
    }

    fn count(&self, i: usize) -> u64 {
        self.counts[i].load(Ordering::Relaxed)
    }

    fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// True when the reader's position reached the end of every assigned partition. Only
    /// meaningful when no transaction is open on them (then the last stable offset is the end).
    fn caught_up(&self) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        let Ok(positions) = self.consumer.position() else {
            return false;
        };
        let pos: HashMap<(String, i32), i64> = positions
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect();
        for e in assignment.elements() {
            let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
            else {
                return false;
            };
            if high == 0 {
                continue;
            }
            match pos.get(&(e.topic().to_owned(), e.partition())) {
                Some(p) if *p >= high => {}
                _ => return false,
            }
        }
        true
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sum over the input partitions of the service group's committed offsets.
fn committed_total(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> Result<i64, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(5))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

fn input_end(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<i64, KafkaError> {
    let mut total = 0;
    for p in 0..partitions {
        total += consumer
            .fetch_watermarks(topic, p, Duration::from_secs(5))?
            .1;
    }
    Ok(total)
}

/// A plain HTTP GET on 127.0.0.1 (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Cumulative buckets (upper bound, count) and the count of a histogram in a text exposition.
fn histogram(body: &str, name: &str) -> (Vec<(f64, f64)>, f64, f64) {
    let bucket_prefix = format!("{name}_bucket{{le=\"");
    let mut buckets = Vec::new();
    let mut count = 0.0;
    let mut sum = 0.0;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix(&bucket_prefix) {
            if let Some((le, value)) = rest.split_once("\"} ") {
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                buckets.push((le, value.trim().parse().unwrap_or(0.0)));
            }
        } else if let Some(v) = line.strip_prefix(&format!("{name}_count ")) {
            count = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix(&format!("{name}_sum ")) {
            sum = v.trim().parse().unwrap_or(0.0);
        }
    }
    (buckets, count, sum)
}

/// The quantile of a cumulative histogram, interpolated inside the bucket as Prometheus'
/// `histogram_quantile` does.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count) / in_bucket
            } else {
                0.0
            };
            return Some(prev_le + (le - prev_le) * frac);
        }
        prev_le = le;
        prev_count = count;
    }
    None
}

/// A histogram of the service's `/metrics` as read at one moment.
struct Snapshot {
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

impl Snapshot {
    fn read(service: &Service, name: &str) -> Snapshot {
        let (buckets, count, sum) = histogram(&service.metrics(), name);
        Snapshot {
            buckets,
            count,
            sum,
        }
    }

    /// Prints what was observed between `before` and now: count, mean, p50/p99 (interpolated
    /// within buckets) and the upper bound of the bucket holding the largest observation.
    fn print_since(service: &Service, name: &str, before: &Snapshot) {
        let after = Snapshot::read(service, name);
        let delta: Vec<(f64, f64)> = after
            .buckets
            .iter()
            .map(|(le, c)| {
                let prev = before
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |(_, p)| *p);
                (*le, c - prev)
            })
            .collect();
        let n = after.count - before.count;
        if n <= 0.0 {
            println!("  {name}: no observations in this phase");
            return;
        }
        println!(
            "  {name} (this phase, from /metrics): n={} mean={:.1} ms p50~{:.1} ms p99~{:.1} ms max<={} ms",
            n,
            (after.sum - before.sum) / n * 1000.0,
            histogram_quantile(0.5, &delta).unwrap_or(f64::NAN) * 1000.0,
            histogram_quantile(0.99, &delta).unwrap_or(f64::NAN) * 1000.0,
            delta
                .iter()
                .find(|(_, c)| *c >= n)
                .map_or("inf".to_owned(), |(le, _)| format!("{:.0}", le * 1000.0)),
        );
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn summary(label: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        println!("  {label}: no samples");
        return;
    }
    println!(
        "  {label}: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
        values.len(),
        percentile(&values, 0.50) * 1000.0,
        percentile(&values, 0.90) * 1000.0,
        percentile(&values, 0.99) * 1000.0,
        values.last().copied().unwrap_or(f64::NAN) * 1000.0,
    );
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// The service under test, running in this process.
struct Service {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), journey_kafka::RuntimeError>>>,
    metrics_port: u16,
    started: Instant,
}

impl Service {
    fn start(rt: &tokio::runtime::Runtime, config: Config, metrics_port: u16) -> Service {
        let shutdown = CancellationToken::new();
        let opts = ServiceOptions {
            config,
            config_path: None,
            metrics: Metrics::new(),
            health: Health::new(),
        };
        let started = Instant::now();
        let task = rt.spawn(run_service(opts, shutdown.clone()));
        Service {
            shutdown,
            task: Some(task),
            metrics_port,
            started,
        }
    }

    fn failed(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.failed() {
                return Err("the service stopped".into());
            }
            if matches!(http_get(self.metrics_port, "/readyz"), Some((200, _))) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err("the service did not become ready in time".into())
    }

    fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    fn stop(&mut self, rt: &tokio::runtime::Runtime) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await }) {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => eprintln!("service stopped with an error: {e}"),
                Ok(Err(e)) => eprintln!("service task failed: {e}"),
                Err(_) => eprintln!("service did not stop within 60 s"),
            }
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("JOURNEYD_BENCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(&args) {
        eprintln!("kafka-e2e-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let run_id = format!(
        "bench-{}-{}",
        Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id()
    );
    let mut config = journey_spec::load_config(&args.repo.join("deploy/journeyd.yaml"))
        .map_err(|d| format!("deploy/journeyd.yaml: {d:?}"))?;
    let names = Names {
        events: format!("{run_id}.events"),
        decisions: format!("{run_id}.decisions"),
        dead_letter: format!("{run_id}.dead_letter"),
        state: format!("{run_id}.state"),
        group: run_id.clone(),
        channels: config
            .channels
            .keys()
            .map(|ch| (ch.clone(), format!("{run_id}.actions.{ch}")))
            .collect(),
    };
    // The example journeys plus the bench's timer journey (triggered only in the timer phase).
    let journeys_dir = std::env::temp_dir().join(&run_id);
    std::fs::create_dir_all(&journeys_dir).map_err(|e| e.to_string())?;
    copy_journeys(&args.repo.join("journeys"), &journeys_dir)?;
    std::fs::write(
        journeys_dir.join("bench_timer.yaml"),
        timer_journey(args.timer_wait),
    )
    .map_err(|e| e.to_string())?;
    let metrics_port = free_port()?;
    config.journeys_dir = journeys_dir.clone();
    config.kafka.bootstrap_servers = args.bootstrap.clone();
    config.kafka.group_id = names.group.clone();
    config.kafka.transactional_id = Some(format!("{run_id}-0"));
    config.kafka.input_topics = vec![names.events.clone()];
    config.kafka.decisions_topic = names.decisions.clone();
    config.kafka.dead_letter_topic = names.dead_letter.clone();
    config.kafka.state_topic = names.state.clone();
    if let Some(ms) = args.commit_interval_ms {
        config.kafka.commit_interval_ms = ms;
    }
    for (k, v) in &args.client {
        config.kafka.client.insert(k.clone(), v.clone());
    }
    for (ch, c) in config.channels.iter_mut() {
        c.topic = names.channels[ch].clone();
    }
    config.metrics.listen = format!("127.0.0.1:{metrics_port}");
    let commit_interval_ms = config.kafka.commit_interval_ms;

    print_header(args, &run_id, commit_interval_ms);
    create_input_topic(&rt, &args.bootstrap, &names.events, args.partitions)?;
    let producer = event_producer(&args.bootstrap)?;
    let mut generator = Generator::new(args.customers, 0x5EED, &run_id);

    let do_phase = |p: &str| args.phases.iter().any(|x| x == p);
    let result = (|| -> Result<(), String> {
        if do_phase("throughput") {
            produce_backlog(args, &names, &producer, &mut generator)?;
        }
        let mut service = Service::start(&rt, config, metrics_port);
        let outcome = (|| -> Result<(), String> {
            if do_phase("throughput") {
                throughput(args, &names, &service)?;
            } else {
                service.wait_ready(Duration::from_secs(120))?;
            }
            if do_phase("latency") {
                latency(args, &names, &service, &producer, &mut generator)?;
            }
            if do_phase("timers") {
                timers(args, &names, &service, &producer, &mut generator)?;
            }
            Ok(())
        })();
        service.stop(&rt);
        outcome
    })();

    let mut topics = vec![
        names.events.clone(),
        names.decisions.clone(),
        names.dead_letter.clone(),
        names.state.clone(),
    ];
    topics.extend(names.channels.values().cloned());
    delete_topics(&rt, &args.bootstrap, &topics);
    let _ = std::fs::remove_dir_all(&journeys_dir);
    result
}

fn copy_journeys(from: &Path, to: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let name = path.file_name().expect("a file has a name");
            std::fs::copy(&path, to.join(name)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn print_header(args: &Args, run_id: &str, commit_interval_ms: u64) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("kafka-e2e-bench run {run_id}");
    println!(
        "  broker {} | {} input partitions | commit_interval_ms {} | {} CPUs ({cpu}) | loadavg {}",
        args.bootstrap,
        args.partitions,
        commit_interval_ms,
        cpus,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn produce_backlog(
    args: &Args,
    names: &Names,
    producer: &Plain,
    generator: &mut Generator,
) -> Result<(), String> {
    println!(
        "throughput: producing a backlog of {} events over {} customers",
        args.events, args.customers
    );
    let started = Instant::now();
    let now = Utc::now();
    for _ in 0..args.events {
        let e = generator.next(now, 0.0);
        send(producer, &names.events, &e.key, &e.payload).map_err(|e| e.to_string())?;
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flushing the backlog: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  backlog produced in {:.2} s ({:.0} events/s)",
        secs,
        args.events as f64 / secs
    );
    Ok(())
}

fn output_topics(names: &Names) -> Vec<String> {
    let mut topics: Vec<String> = names.channels.values().cloned().collect();
    topics.push(names.decisions.clone());
    topics.push(names.state.clone());
    topics.push(names.dead_letter.clone());
    topics
}

fn group_reader(bootstrap: &str, group: &str) -> Result<BaseConsumer, String> {
    client(
        bootstrap,
        &[("group.id", group), ("enable.auto.commit", "false")],
    )
    .create()
    .map_err(|e| e.to_string())
}

fn throughput(args: &Args, names: &Names, service: &Service) -> Result<(), String> {
    let t0 = service.started;
    service.wait_ready(Duration::from_secs(120))?;
    let ready = t0.elapsed();
    let topics = output_topics(names);
    let channels = names.channels.len();
    let keep = vec![false; topics.len()];
    let mut reader = Reader::start(
        &args.bootstrap,
        &format!("{}.reader-a", names.group),
        &topics,
        keep,
        args.partitions,
        Offset::Beginning,
    )?;
    let offsets = group_reader(&args.bootstrap, &names.group)?;
    let end = input_end(&offsets, &names.events, args.partitions).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut committed_at = None;
    let mut last_print = Instant::now();
    while Instant::now() < deadline {
        if service.failed() {
            return Err("the service stopped during the throughput phase".into());
        }
        let committed =
            committed_total(&offsets, &names.events, args.partitions).unwrap_or_default();
        if committed >= end {
            committed_at = Some(Instant::now());
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  ... {committed}/{end} committed after {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let Some(committed_at) = committed_at else {
        return Err("timed out: the backlog was not committed within 600 s".into());
    };
    let catch_deadline = Instant::now() + Duration::from_secs(120);
    while !reader.caught_up() {
        if Instant::now() > catch_deadline {
            return Err("timed out waiting for the reader to see every output".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    reader.stop();
    let visible_at = reader.last_at.lock().unwrap().unwrap_or(committed_at);
    let visible_at = visible_at.max(committed_at);
    let total = visible_at - t0;
    let processing = total.saturating_sub(ready);
    let commands: u64 = (0..channels).map(|i| reader.count(i)).sum();
    println!(
        "  service ready (group joined, empty changelog restored) after {:.2} s; input offsets all committed after {:.2} s; last output read after {:.2} s",
        ready.as_secs_f64(),
        (committed_at - t0).as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  all {} events committed and their outputs visible after {:.2} s from start: {:.0} events/s ({:.0} events/s from readiness)",
        end,
        total.as_secs_f64(),
        end as f64 / total.as_secs_f64(),
        end as f64 / processing.as_secs_f64().max(1e-9)
    );
    println!(
        "  outputs: {} commands ({}), {} decisions, {} changelog records, {} dead letters",
        commands,
        names
            .channels
            .keys()
            .enumerate()
            .map(|(i, ch)| format!("{ch} {}", reader.count(i)))
            .collect::<Vec<_>>()
            .join(", "),
        reader.count(channels),
        reader.count(channels + 1),
        reader.count(channels + 2),
    );
    let body = service.metrics();
    let (buckets, count, sum) = histogram(&body, "journeyd_transaction_commit_seconds");
    if count > 0.0 {
        println!(
            "  transactions: {} commits, mean commit {:.1} ms, p99 ~{:.1} ms",
            count,
            sum / count * 1000.0,
            histogram_quantile(0.99, &buckets).unwrap_or(f64::NAN) * 1000.0
        );
    }
    Ok(())
}

/// Produces events at a steady rate for `--seconds` on this thread; returns the produce
/// instant of each event by sequence number, and the wall-clock produce time in ms.
fn steady_load(
    args: &Args,
    names: &Names,
    producer: &Plain,
    generator: &mut Generator,
    timer_share: f64,
) -> Result<HashMap<u64, (Instant, i64)>, String> {
    let total = args.rate * args.seconds;
    let mut sent = HashMap::with_capacity(total as usize);
    let started = Instant::now();
    let mut n = 0u64;
    while n < total {
        let due = (started.elapsed().as_secs_f64() * args.rate as f64) as u64;
        let due = due.min(total);
        if n >= due {
            thread::sleep(Duration::from_micros(500));
            continue;
        }
        while n < due {
            let now = Utc::now();
            let e = generator.next(now, timer_share);
            let at = Instant::now();
            send(producer, &names.events, &e.key, &e.payload).map_err(|e| e.to_string())?;
            if timer_share == 0.0 || e.timer {
                sent.insert(e.seq, (at, now.timestamp_millis()));
            }
            n += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  produced {total} events in {secs:.2} s ({:.0} events/s)",
        total as f64 / secs
    );
    Ok(sent)
}

/// Command topics only, with payloads kept.
fn command_reader(args: &Args, names: &Names, suffix: &str) -> Result<Reader, String> {
    let topics: Vec<String> = names.channels.values().cloned().collect();
    let keep = vec![true; topics.len()];
    Reader::start(
        &args.bootstrap,
        &format!("{}.reader-{suffix}", names.group),
        &topics,
        keep,
        args.partitions,
        // Only commands of the phase's own events matter: start at the end.
        Offset::End,
    )
}

/// The sequence number in an event id of this run (`<run>-e<seq>`).
fn seq_of(event_id: &str, run: &str) -> Option<u64> {
    event_id.strip_prefix(run)?.strip_prefix("-e")?.parse().ok()
}

fn latency(
    args: &Args,
    names: &Names,
    service: &Service,
    producer: &Plain,
    generator: &mut Generator,
) -> Result<(), String> {
    println!(
        "latency: {} events/s for {} s (same mix, customers already known from the backlog)",
        args.rate, args.seconds
    );
    let reader = command_reader(args, names, "b")?;
    let e2c = "journeyd_event_to_command_seconds";
    let commit = "journeyd_transaction_commit_seconds";
    let (e2c_before, commit_before) = (
        Snapshot::read(service, e2c),
        Snapshot::read(service, commit),
    );
    let sent = steady_load(args, names, producer, generator, 0.0)?;
    settle(service, Duration::from_secs(5));
    let mut latencies = Vec::new();
    for s in reader.take_seen() {
        let Some(v) = s
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        let Some(seq) = v["trigger_event_id"]
            .as_str()
            .and_then(|id| seq_of(id, &names.group))
        else {
            continue;
        };
        if let Some((at, _)) = sent.get(&seq) {
            latencies.push(s.at.saturating_duration_since(*at).as_secs_f64());
        }
    }
    summary(
        "event produced -> command visible (read_committed)",
        latencies,
    );
    Snapshot::print_since(service, e2c, &e2c_before);
    Snapshot::print_since(service, commit, &commit_before);
    Ok(())
}

/// Lets the last events' transactions commit and their outputs reach the reader.
fn settle(service: &Service, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !service.failed() {
        thread::sleep(Duration::from_millis(50));
    }
}

fn timers(
    args: &Args,
    names: &Names,
    service: &Service,
    producer: &Plain,
    generator: &mut Generator,
) -> Result<(), String> {
    println!(
        "timers: {} events/s for {} s, {:.0}% of them start a journey waiting {} s",
        args.rate,
        args.seconds,
        args.timer_share * 100.0,
        args.timer_wait
    );
    let metric = "journeyd_timer_lateness_seconds";
    let lateness_before = Snapshot::read(service, metric);
    let reader = command_reader(args, names, "c")?;
    let sent = steady_load(args, names, producer, generator, args.timer_share)?;
    // The last timers are due `timer_wait` after the last event; give them that plus margin.
    settle(service, Duration::from_secs(args.timer_wait + 5));
    let wait = Duration::from_secs(args.timer_wait);
    let mut visible = Vec::new();
    let mut issued = Vec::new();
    for s in reader.take_seen() {
        let Some(v) = s
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        if v["template"] != "bench_timer_ping" {
            continue;
        }
        let Some(seq) = v["trigger_event_id"]
            .as_str()
            .and_then(|id| seq_of(id, &names.group))
        else {
            continue;
        };
        let Some((at, wall_ms)) = sent.get(&seq) else {
            continue;
        };
        let due = *at + wait;
        visible.push(s.at.saturating_duration_since(due).as_secs_f64());
        if let Some(issued_at) = v["issued_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let due_ms = wall_ms + wait.as_millis() as i64;
            issued.push(((issued_at.timestamp_millis() - due_ms).max(0)) as f64 / 1000.0);
        }
    }
    let started = sent.len();
    println!(
        "  {} journeys started, {} sends seen (a customer already in the journey does not enter again)",
        started,
        visible.len()
    );
    summary(
        "send visible (read_committed) - (event produced + wait)",
        visible,
    );
    summary("issued_at - (event timestamp + wait)", issued);
    Snapshot::print_since(service, metric, &lateness_before);
    Ok(())
}
