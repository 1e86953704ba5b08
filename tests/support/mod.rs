//! Shared helpers for the black-box tests that run `journeyd` against a real Apache Kafka broker.
//!
//! Finding the broker: `JOURNEYD_TEST_BOOTSTRAP` when set (it must answer, nothing is started
//! then), else `127.0.0.1:9092` when a broker answers there, else one is started with
//! `deploy/kafka/start.sh` on free ports in the target directory, once per test binary, and
//! stopped by a watchdog shell when the test binary exits. If none can be found or started the
//! tests fail: they are never skipped.
//!
//! Each test works in a [`Scenario`]: topics, consumer group and transactional ids that start
//! with the test's name and a random suffix, so tests running at the same time on the same broker
//! do not see each other; a directory under the target directory with the configuration, the
//! journeys and the logs of every process it started (kept for diagnosis, printed on failure).

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The repository root (the tests live in `tests/`, the package in `crates/journeyd`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/kafka/`.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/kafka")
}

/// The `journeyd` binary built for this test run.
pub fn journeyd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_journeyd")
}

// -------------------------------------------------------------------------------------------
// The broker
// -------------------------------------------------------------------------------------------

/// A reachable Kafka broker.
#[derive(Debug)]
pub struct Broker {
    /// `host:port` for `bootstrap.servers`.
    pub bootstrap: String,
}

static BROKER: OnceLock<Broker> = OnceLock::new();

/// The broker every test of this binary uses (found or started on first use).
pub fn broker() -> &'static Broker {
    BROKER.get_or_init(|| match find_or_start_broker() {
        Ok(broker) => broker,
        Err(message) => panic!("no Kafka broker for the real-broker tests: {message}"),
    })
}

fn find_or_start_broker() -> Result<Broker, String> {
    if let Ok(bootstrap) = std::env::var("JOURNEYD_TEST_BOOTSTRAP") {
        let bootstrap = bootstrap.trim().to_string();
        return if broker_answers(&bootstrap, Duration::from_secs(30)) {
            Ok(Broker { bootstrap })
        } else {
            Err(format!(
                "JOURNEYD_TEST_BOOTSTRAP={bootstrap} does not answer a metadata request"
            ))
        };
    }
    let default = "127.0.0.1:9092";
    if broker_answers(default, Duration::from_secs(10)) {
        return Ok(Broker {
            bootstrap: default.to_string(),
        });
    }
    start_private_broker()
}

/// True when something accepts TCP on `bootstrap` and answers a metadata request.
fn broker_answers(bootstrap: &str, timeout: Duration) -> bool {
    let Some(addr) = bootstrap.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        return false;
    }
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    consumer.fetch_metadata(None, timeout).is_ok()
}

/// Starts a broker of our own with `deploy/kafka/start.sh` on free ports, and a watchdog that
/// stops it (with `stop.sh`) once this test process has exited.
fn start_private_broker() -> Result<Broker, String> {
    let (port, controller_port) = free_port_pair();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kafka-broker-{port}"));
    let start = repo_root().join("deploy/kafka/start.sh");
    let stop = repo_root().join("deploy/kafka/stop.sh");
    eprintln!(
        "starting a private Kafka broker on 127.0.0.1:{port} in {}",
        dir.display()
    );
    let output = Command::new("bash")
        .arg(&start)
        .args(["--port", &port.to_string()])
        .args(["--controller-port", &controller_port.to_string()])
        .arg("--dir")
        .arg(&dir)
        .arg("--fresh")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", start.display()))?;
    // The watchdog is started even when start.sh failed half-way, so a broker is never left
    // running behind the tests.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash '{stop}' --dir '{dir}' >/dev/null 2>&1",
        pid = std::process::id(),
        stop = stop.display(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["bash", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the broker watchdog: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            start.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let bootstrap = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !broker_answers(&bootstrap, Duration::from_secs(30)) {
        return Err(format!("the broker started at {bootstrap} does not answer"));
    }
    Ok(Broker { bootstrap })
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

fn free_port_pair() -> (u16, u16) {
    for _ in 0..100 {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1");
}

// -------------------------------------------------------------------------------------------
// Randomness and names
// -------------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*) for choosing kill moments and test data; the
/// seed is printed by the tests that use it so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// A seed from `JOURNEYD_TEST_SEED` or the clock.
    pub fn seed_from_env() -> u64 {
        std::env::var("JOURNEYD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi` (`hi` exclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(nanos ^ (u64::from(std::process::id()) << 32) ^ n);
    format!("{:08x}", rng.next_u64() as u32)
}

// -------------------------------------------------------------------------------------------
// Kafka clients
// -------------------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the Kafka clients of the tests")
    })
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
}

impl Record {
    /// The payload as JSON (panics with the payload if it is not).
    pub fn json(&self) -> Value {
        let bytes = self.payload.as_deref().unwrap_or_default();
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!(
                "record {}/{}@{} is not JSON ({e}): {}",
                self.topic,
                self.partition,
                self.offset,
                String::from_utf8_lossy(bytes)
            )
        })
    }
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// A record to produce.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub key: String,
    pub payload: Vec<u8>,
    /// `None`: the partitioner chooses from the key (librdkafka's consistent_random, as the
    /// runtime expects customers keyed by id).
    pub partition: Option<i32>,
}

impl Outgoing {
    /// An event keyed by its customer id.
    pub fn event(event: &Value) -> Outgoing {
        Outgoing {
            key: event["customer_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            payload: serde_json::to_vec(event).expect("serialize event"),
            partition: None,
        }
    }
}

/// A test's Kafka names and clients.
pub struct Kafka {
    pub bootstrap: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl Kafka {
    pub fn connect(bootstrap: &str) -> Kafka {
        let _guard = runtime().enter();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("message.max.bytes", "2000000")
            .set("linger.ms", "5")
            .set("log_level", "3")
            .create()
            .expect("create the test producer");
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("log_level", "3")
            .create()
            .expect("create the test admin client");
        Kafka {
            bootstrap: bootstrap.to_string(),
            producer,
            admin,
        }
    }

    /// Creates topics (`name`, partitions, compacted); an existing topic is accepted.
    pub fn create_topics(&self, topics: &[(String, i32, bool)]) {
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(name, partitions, compacted)| {
                let t = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
                if *compacted {
                    t.set("cleanup.policy", "compact")
                } else {
                    t
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = runtime()
            .block_on(self.admin.create_topics(new.iter(), &opts))
            .expect("create topics");
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => panic!("cannot create topic {topic}: {code}"),
            }
        }
        // Wait until every topic's partitions have a leader, so the first produce and the
        // first assignment do not race the topic creation.
        let deadline = Instant::now() + Duration::from_secs(30);
        for (name, partitions, _) in topics {
            loop {
                let ready = self
                    .partition_count(name)
                    .is_some_and(|n| n == *partitions as usize);
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "topic {name} has no metadata after 30s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Partitions of `topic` with a leader, or `None` if the topic is unknown.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        let md = self
            .admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        if t.error().is_some() || t.partitions().is_empty() {
            return None;
        }
        if t.partitions().iter().any(|p| p.leader() < 0) {
            return None;
        }
        Some(t.partitions().len())
    }

    /// Produces records in order and waits for every delivery.
    pub fn produce(&self, topic: &str, records: &[Outgoing]) -> Vec<Delivered> {
        self.produce_with_headers(topic, records, &[])
    }

    /// Produces records with the same headers on each.
    pub fn produce_with_headers(
        &self,
        topic: &str,
        records: &[Outgoing],
        headers: &[(&str, &str)],
    ) -> Vec<Delivered> {
        runtime().block_on(async {
            let mut futures = Vec::with_capacity(records.len());
            for r in records {
                let mut h = OwnedHeaders::new();
                for (k, v) in headers {
                    h = h.insert(Header {
                        key: k,
                        value: Some(*v),
                    });
                }
                let mut record = FutureRecord::to(topic)
                    .key(r.key.as_bytes())
                    .payload(&r.payload)
                    .headers(h);
                if let Some(p) = r.partition {
                    record = record.partition(p);
                }
                // Sent one after the other (each send enqueues before the next is built), so
                // records of one key keep their order.
                futures.push(self.producer.send(record, Duration::from_secs(30)));
            }
            let mut delivered = Vec::with_capacity(futures.len());
            for f in futures {
                match f.await {
                    Ok(d) => delivered.push(Delivered {
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Err((e, _)) => panic!("cannot produce to {topic}: {e}"),
                }
            }
            delivered
        })
    }

    /// Reads `topics` from the beginning with `isolation.level=read_committed` (no consumer
    /// group: every partition is assigned directly) until `done` says the records read so far are
    /// enough, then keeps reading until nothing new arrives for `settle` (so duplicates that
    /// would follow are seen too), or until `timeout`. Returns what was read and whether `done`
    /// was reached.
    pub fn read_committed_until(
        &self,
        topics: &[&str],
        timeout: Duration,
        settle: Duration,
        mut done: impl FnMut(&[Record]) -> bool,
    ) -> (Vec<Record>, bool) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set(
                "group.id",
                format!("journeyd-test-reader-{}", unique_suffix()),
            )
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("log_level", "3")
            .create()
            .expect("create a read_committed consumer");
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            let n = self
                .partition_count(topic)
                .unwrap_or_else(|| panic!("topic {topic} does not exist"));
            for p in 0..n as i32 {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("add partition");
            }
        }
        consumer.assign(&tpl).expect("assign partitions");
        let start = Instant::now();
        let mut records = Vec::new();
        let mut reached = done(&records);
        let mut last_new = Instant::now();
        loop {
            if start.elapsed() >= timeout {
                break;
            }
            if reached && last_new.elapsed() >= settle {
                break;
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    records.push(Record {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                        headers,
                    });
                    last_new = Instant::now();
                    if !reached {
                        reached = done(&records);
                    }
                }
                // Partition EOF and transient errors are not failures of the reader.
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => eprintln!("test reader: {e}"),
            }
        }
        (records, reached)
    }

    /// Reads until at least `n` records are there (then settles), see
    /// [`Kafka::read_committed_until`].
    pub fn read_committed_n(
        &self,
        topics: &[&str],
        n: usize,
        timeout: Duration,
        settle: Duration,
    ) -> Vec<Record> {
        self.read_committed_until(topics, timeout, settle, |r| r.len() >= n)
            .0
    }
}

// -------------------------------------------------------------------------------------------
// Events
// -------------------------------------------------------------------------------------------

/// An event as in docs/reference/events.md.
pub fn event(
    event_id: &str,
    customer_id: &str,
    event_type: &str,
    at: chrono::DateTime<chrono::Utc>,
    properties: Value,
) -> Value {
    json!({
        "event_id": event_id,
        "customer_id": customer_id,
        "type": event_type,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "properties": properties,
    })
}

// -------------------------------------------------------------------------------------------
// Scenarios: names, configuration, processes
// -------------------------------------------------------------------------------------------

/// Channels of the test configuration (`tests/fixtures/kafka/journeyd.yaml.in`).
pub const CHANNELS: [&str; 3] = ["email", "sms", "push"];

/// One test's world: unique topic names, a directory with the configuration and journeys, and
/// the `journeyd` processes it started.
pub struct Scenario {
    pub name: String,
    /// Prefix of every topic, the group id and the transactional ids.
    pub prefix: String,
    pub dir: PathBuf,
    pub kafka: Kafka,
    logs: std::sync::Mutex<Vec<PathBuf>>,
}

impl Scenario {
    /// A scenario named after the test, with the given fixture journeys
    /// (`tests/fixtures/kafka/journeys/<name>.yaml`) copied into its journeys directory, and its
    /// topics created (`input_partitions` partitions for the input and the changelog).
    pub fn new(test_name: &str, journeys: &[&str], input_partitions: i32) -> Scenario {
        let broker = broker();
        let prefix = format!("{}-{}", test_name.replace('_', "-"), unique_suffix());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("kafka-tests")
            .join(&prefix);
        fs::create_dir_all(dir.join("journeys")).expect("create the scenario directory");
        for j in journeys {
            let from = fixtures().join("journeys").join(format!("{j}.yaml"));
            fs::copy(&from, dir.join("journeys").join(format!("{j}.yaml")))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        eprintln!(
            "scenario {test_name}: prefix {prefix}, directory {}, broker {}",
            dir.display(),
            broker.bootstrap
        );
        let scenario = Scenario {
            name: test_name.to_string(),
            prefix,
            dir,
            kafka: Kafka::connect(&broker.bootstrap),
            logs: std::sync::Mutex::new(Vec::new()),
        };
        let mut topics = vec![
            (scenario.events_topic(), input_partitions, false),
            (scenario.state_topic(), input_partitions, true),
            (scenario.dead_letter_topic(), 1, false),
            (scenario.decisions_topic(), 1, false),
        ];
        for ch in CHANNELS {
            topics.push((scenario.action_topic(ch), 1, false));
        }
        scenario.kafka.create_topics(&topics);
        scenario
    }

    pub fn events_topic(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn state_topic(&self) -> String {
        format!("{}.state", self.prefix)
    }
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }
    pub fn decisions_topic(&self) -> String {
        format!("{}.decisions", self.prefix)
    }
    pub fn action_topic(&self, channel: &str) -> String {
        format!("{}.actions.{channel}", self.prefix)
    }
    /// Every channel's action topic.
    pub fn action_topics(&self) -> Vec<String> {
        CHANNELS.iter().map(|c| self.action_topic(c)).collect()
    }
    pub fn journeys_dir(&self) -> PathBuf {
        self.dir.join("journeys")
    }

    /// Writes `config-<instance>.yaml` from the fixture template for one `journeyd run`
    /// instance (its own transactional id and metrics port). Returns its path.
    pub fn write_config(&self, instance: &str, metrics_port: u16) -> PathBuf {
        let template = fs::read_to_string(fixtures().join("journeyd.yaml.in"))
            .expect("read tests/fixtures/kafka/journeyd.yaml.in");
        let text = template
            .replace("{{bootstrap}}", &self.kafka.bootstrap)
            .replace("{{prefix}}", &self.prefix)
            .replace("{{instance}}", instance)
            .replace("{{metrics_port}}", &metrics_port.to_string());
        let path = self.dir.join(format!("config-{instance}.yaml"));
        fs::write(&path, text).expect("write the scenario configuration");
        path
    }

    /// Produces events to the input topic, keyed by customer id.
    pub fn produce_events(&self, events: &[Value]) -> Vec<Delivered> {
        let records: Vec<Outgoing> = events.iter().map(Outgoing::event).collect();
        self.kafka.produce(&self.events_topic(), &records)
    }

    /// Starts `journeyd run --config <config>`; stdout and stderr go to `<dir>/<log_name>.log`.
    pub fn spawn_run(&self, config: &Path, log_name: &str, metrics_port: u16) -> Journeyd {
        let log = self.dir.join(format!("{log_name}.log"));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the journeyd log");
        let err = file.try_clone().expect("clone the log handle");
        let child = Command::new(journeyd_bin())
            .arg("run")
            .arg("--config")
            .arg(config)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("start journeyd run");
        self.logs.lock().unwrap().push(log.clone());
        Journeyd {
            child,
            log,
            metrics_port,
        }
    }

    /// Runs `journeyd simulate` over `events` (written to `<dir>/<label>.jsonl`) with
    /// `--until`, and returns (commands, decisions), each a JSON object.
    pub fn simulate(
        &self,
        config: &Path,
        label: &str,
        events: &[Value],
        until: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<Value>, Vec<Value>) {
        let events_file = self.dir.join(format!("{label}.jsonl"));
        let decisions_file = self.dir.join(format!("{label}.decisions.jsonl"));
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).expect("serialize event"));
            text.push('\n');
        }
        fs::write(&events_file, text).expect("write the events file");
        let output = Command::new(journeyd_bin())
            .arg("simulate")
            .arg("--config")
            .arg(config)
            .arg("--events")
            .arg(&events_file)
            .arg("--until")
            .arg(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .arg("--decisions")
            .arg(&decisions_file)
            .output()
            .expect("run journeyd simulate");
        assert!(
            output.status.success(),
            "journeyd simulate failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let commands = parse_json_lines(&String::from_utf8_lossy(&output.stdout));
        let decisions = parse_json_lines(
            &fs::read_to_string(&decisions_file).expect("read the simulate decisions"),
        );
        (commands, decisions)
    }

    /// The last lines of every log of this scenario, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for log in self.logs.lock().unwrap().iter() {
            out.push_str(&format!("---- last lines of {} ----\n", log.display()));
            out.push_str(&tail(log, 30));
        }
        out
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "scenario {} failed; files in {}\n{}",
                self.name,
                self.dir.display(),
                self.diagnostics()
            );
        }
    }
}

/// Parses JSON lines (blank lines ignored).
pub fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    out.push('\n');
    out
}

/// A running `journeyd run` process. Killed (SIGKILL) when dropped, so a failing test never
/// leaves one behind.
pub struct Journeyd {
    child: Child,
    pub log: PathBuf,
    pub metrics_port: u16,
}

impl Journeyd {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: a crash at an arbitrary moment.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit; SIGKILL after `timeout`. Returns the exit status
    /// text and whether the process stopped by itself.
    pub fn terminate(&mut self, timeout: Duration) -> (String, bool) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.to_string(), true);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill9();
        ("killed after timeout".to_string(), false)
    }

    /// `GET path` on the metrics listener: (status, body), `None` if nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics_port, path)
    }

    /// The `/metrics` text, `None` if nothing answers.
    pub fn metrics(&self) -> Option<String> {
        match self.get("/metrics") {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// Waits until `/readyz` answers 200 (panics with the log after `timeout`, or if the
    /// process exits).
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.get("/readyz") {
                return;
            }
            assert!(
                self.is_running(),
                "journeyd exited before it was ready:\n{}",
                tail(&self.log, 40)
            );
            assert!(
                Instant::now() < deadline,
                "journeyd not ready within {timeout:?} (last /readyz: {:?}):\n{}",
                self.get("/readyz"),
                tail(&self.log, 40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `/metrics` until `pred` holds for the text (`None` after `timeout`).
    pub fn wait_metrics(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(text) = self.metrics() {
                if pred(&text) {
                    return Some(text);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Journeyd {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill9();
        }
    }
}

/// A minimal HTTP/1.1 GET to 127.0.0.1:`port` (no client library needed for three endpoints).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = ("127.0.0.1", port).to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

/// The sum of every series of metric `name` whose labels include all of `labels` (0 when none
/// matches), from Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if matches {
            sum += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    sum
}

// -------------------------------------------------------------------------------------------
// Comparing outputs
// -------------------------------------------------------------------------------------------

/// A send command read from an action topic, as simulate prints it: the JSON body plus a
/// `"topic"` field with the topic it was read from.
pub fn command_with_topic(record: &Record) -> Value {
    let mut v = record.json();
    if let Value::Object(map) = &mut v {
        map.insert("topic".to_string(), Value::String(record.topic.clone()));
    }
    v
}

/// Removes the clock-dependent fields (`issued_at` of commands; `at` and `until` of decisions)
/// so outputs under the wall clock and the virtual clock compare equal.
pub fn without_clock(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        map.remove("issued_at");
        map.remove("at");
        map.remove("until");
    }
    v
}

/// Commands by `command_id`, each with the number of times it was seen; panics on a command
/// without an id.
pub fn by_command_id(commands: &[Value]) -> BTreeMap<String, (Value, usize)> {
    let mut out: BTreeMap<String, (Value, usize)> = BTreeMap::new();
    for c in commands {
        let id = c["command_id"]
            .as_str()
            .unwrap_or_else(|| panic!("command without command_id: {c}"))
            .to_string();
        out.entry(id)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((without_clock(c), 1));
    }
    out
}

/// A multiset of JSON values (as canonical strings) with their counts.
pub fn multiset(values: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in values {
        *out.entry(canonical(&without_clock(v))).or_insert(0) += 1;
    }
    out
}

/// JSON text with object keys sorted, so equal values print equally whatever their key order.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::to_value(sorted).expect("re-serialize")
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Asserts that the commands read from Kafka are exactly the simulated ones: every command id
/// once, equal in every field but `issued_at`.
pub fn assert_same_commands(kafka: &[Value], simulated: &[Value], context: &str) {
    let got = by_command_id(kafka);
    let want = by_command_id(simulated);
    let mut problems = Vec::new();
    for (id, (cmd, n)) in &got {
        if *n != 1 {
            problems.push(format!("command {id} seen {n} times: {cmd}"));
        }
        match want.get(id) {
            None => problems.push(format!("unexpected command {id}: {cmd}")),
            Some((w, _)) if canonical(w) != canonical(cmd) => problems.push(format!(
                "command {id} differs:\n  kafka:    {}\n  simulate: {}",
                canonical(cmd),
                canonical(w)
            )),
            Some(_) => {}
        }
    }
    for (id, (cmd, _)) in &want {
        if !got.contains_key(id) {
            problems.push(format!("missing command {id}: {cmd}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{context}: {} commands from Kafka, {} from simulate; {} problem(s):\n{}",
        kafka.len(),
        simulated.len(),
        problems.len(),
        problems.join("\n")
    );
}
