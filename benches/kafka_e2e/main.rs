//! End-to-end benchmark of the Kafka runtime against a real broker on 127.0.0.1.
//!
//! The service runs in this process (`journey_kafka::run_service`, the same code `journeyd run`
//! runs), with the example journeys of `journeys/`, the channels of `deploy/journeyd.yaml`,
//! and topic names unique to this run. Three phases run one after the other on the same
//! service, so the later ones see a service that already holds its customers:
//!
//! 0. **baseline**: the Kafka limit for this work, measured over the same backlog before the
//!    service starts (`baseline.rs`): a bare transactional consume → produce → commit loop with
//!    the service's client properties, commit interval and records per transaction. After the
//!    throughput phase the bench prints `journeyd / baseline`.
//! 1. **throughput**: a backlog of `--events` events over `--customers` customers is produced
//!    before the service starts; measured is the time from the start of the service until the
//!    group's committed input offsets reach the end of the backlog and every output committed
//!    with them has been read by a `read_committed` consumer.
//! 2. **latency**: events at each steady rate of `--latency-rates` for `--seconds`; for each send
//!    command, the time from the produce call of the event that triggered it until a
//!    `read_committed` consumer sees the command. After the throughput phase (or before the
//!    latency phase without it) the resident memory per customer is printed (`memory.rs`).
//! 3. **timers**: the same steady load, a share of which enters a bench journey that waits
//!    `--timer-wait` seconds and then sends; measured is how late each send becomes visible
//!    relative to its due time (event produced + wait), the lateness of its `issued_at`, and
//!    the service's own `journeyd_timer_lateness_seconds` histogram from `/metrics`.
//!
//! Everything is bounded in time: each wait has a deadline, after which the phase reports what
//! it saw and says that it timed out.

mod baseline;
mod cpu;
mod memory;
mod phases;

use chrono::{DateTime, Utc};
use clap::Parser;
use journey_kafka::http::Health;
use journey_kafka::metrics::Metrics;
use journey_kafka::{run_service, CancellationToken, ServiceOptions};
use journey_spec::Config;
use journeyd_testkit::eventgen::{Generated, Generator, Options, SplitMix};
use journeyd_testkit::{
    client_config, free_port, histogram, histogram_quantile, http_get, Histogram, Kafka,
};
use phases::{latency, produce_backlog, throughput, timers};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::Offset;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// End-to-end throughput, latency and timer lateness of journeyd against a real Kafka broker
/// on 127.0.0.1.
#[derive(Parser, Debug, Clone)]
#[command(name = "kafka-e2e-bench")]
struct Args {
    /// Broker address; only 127.0.0.1:PORT is accepted. Default: $JOURNEYD_BENCH_BOOTSTRAP,
    /// else the tests' broker (127.0.0.1:9092 when it answers, else a private one started with
    /// deploy/kafka/start.sh and stopped when the bench exits).
    #[arg(value_parser = parse_local)]
    bootstrap: Option<String>,
    /// Backlog size of the throughput phase.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    events: usize,
    /// Distinct customers.
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    customers: u64,
    /// Input partitions.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Events/s of the timer phase.
    #[arg(long, default_value_t = 2000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Offered loads of the latency phase, in events/s, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "2000,10000", value_name = "N,...", value_parser = clap::value_parser!(u64).range(1..))]
    latency_rates: Vec<u64>,
    /// Size in bytes of the baseline's output record per event (a send command of the example
    /// journeys is 300-400 bytes).
    #[arg(long, default_value_t = 330, value_name = "N")]
    baseline_record_bytes: usize,
    /// Duration of each steady phase, in seconds.
    #[arg(long, default_value_t = 20, value_name = "N")]
    seconds: u64,
    /// Seconds the bench journey waits before its send.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timer_wait: u64,
    /// Share of the timer phase's events that start that journey.
    #[arg(long, default_value_t = 0.1, value_name = "F")]
    timer_share: f64,
    /// kafka.commit_interval_ms of the service (default: the configuration's default).
    #[arg(long, value_name = "N")]
    commit_interval_ms: Option<u64>,
    /// Stream threads of the service (`workers`; default: the configuration's default, one per
    /// core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// librdkafka property for the service's clients (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_client)]
    client: Vec<(String, String)>,
    /// Phases to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,throughput,latency,timers"
    )]
    phases: Vec<Phase>,
    /// Repository root holding journeys/ and deploy/ (default: found from the current
    /// directory).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

/// A phase of the benchmark (see the module documentation).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Baseline,
    Throughput,
    Latency,
    Timers,
}

impl Args {
    /// The broker address (resolved in `main`).
    fn bootstrap(&self) -> &str {
        self.bootstrap.as_deref().unwrap_or("127.0.0.1:9092")
    }
    /// The repository root (resolved in `main`).
    fn repo(&self) -> &Path {
        self.repo.as_deref().unwrap_or(Path::new("."))
    }
    fn phase(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }
}

/// The events of this run: the seeded stream of `journey_eventgen` (without malformed
/// records), into which the timer phase mixes `bench_timer_start` events.
struct Events {
    generator: Generator,
    rng: SplitMix,
}

impl Events {
    fn new(customers: u64, seed: u64, run_id: &str) -> Events {
        let options = Options {
            customer_prefix: format!("{run_id}-c"),
            event_prefix: format!("{run_id}-e"),
            malformed_every: 0,
        };
        Events {
            generator: Generator::with_options(customers as usize, seed, options),
            rng: SplitMix::new(seed ^ 0x7133),
        }
    }

    /// The next event at wall-clock time `now`; that share of them (for customers with a
    /// profile) start the bench timer journey.
    fn next(&mut self, now: DateTime<Utc>, timer_share: f64) -> Generated {
        if timer_share > 0.0 && self.rng.probability(timer_share) {
            self.generator
                .next_of_type(now, "bench_timer_start", json!({}))
        } else {
            self.generator.next(now)
        }
    }
}

/// Whether a generated event starts the bench timer journey.
fn is_timer(e: &Generated) -> bool {
    e.event_type.as_deref() == Some("bench_timer_start")
}

fn parse_client(v: &str) -> Result<(String, String), String> {
    let (k, v) = v
        .split_once('=')
        .ok_or_else(|| format!("{v}: expected KEY=VALUE"))?;
    if k == "bootstrap.servers" {
        return Err("bootstrap.servers: give BOOTSTRAP instead".into());
    }
    Ok((k.to_owned(), v.to_owned()))
}

fn parse_local(bootstrap: &str) -> Result<String, String> {
    check_local(bootstrap)?;
    Ok(bootstrap.to_owned())
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

type Plain = ThreadedProducer<DefaultProducerContext>;

fn event_producer(bootstrap: &str) -> Result<Plain, String> {
    client_config(
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
fn send(producer: &Plain, topic: &str, e: &Generated) -> Result<(), KafkaError> {
    let mut record = BaseRecord::<str, [u8]>::to(topic)
        .key(&e.key)
        .payload(&e.payload);
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
    let mut args = Args::parse();
    if let Err(e) = resolve(&mut args) {
        eprintln!("kafka-e2e-bench: {e}");
        std::process::exit(2);
    }
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

/// Fills in the broker and the repository root when not given.
fn resolve(args: &mut Args) -> Result<(), String> {
    if args.bootstrap.is_none() {
        let bootstrap = match std::env::var("JOURNEYD_BENCH_BOOTSTRAP") {
            Ok(b) => b.trim().to_owned(),
            Err(_) => journeyd_testkit::broker().bootstrap.clone(),
        };
        check_local(&bootstrap)?;
        args.bootstrap = Some(bootstrap);
    }
    if args.repo.is_none() {
        args.repo = Some(find_repo()?);
    }
    Ok(())
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
    let mut config = journey_spec::load_config(&args.repo().join("deploy/journeyd.yaml"))
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
    copy_journeys(&args.repo().join("journeys"), &journeys_dir)?;
    std::fs::write(
        journeys_dir.join("bench_timer.yaml"),
        timer_journey(args.timer_wait),
    )
    .map_err(|e| e.to_string())?;
    let metrics_port = free_port();
    config.journeys_dir = journeys_dir.clone();
    // The bench journey's trigger is an event type of the bench, not of the shop's catalogue.
    if let Some(catalog) = config.event_catalog.as_mut() {
        catalog
            .events
            .insert("bench_timer_start".to_owned(), Vec::new());
    }
    config.kafka.bootstrap_servers = args.bootstrap().to_owned();
    config.kafka.group_id = names.group.clone();
    config.kafka.transactional_id = Some(format!("{run_id}-0"));
    config.kafka.input_topics = vec![names.events.clone()];
    config.kafka.decisions_topic = names.decisions.clone();
    config.kafka.dead_letter_topic = names.dead_letter.clone();
    config.kafka.state_topic = names.state.clone();
    if let Some(ms) = args.commit_interval_ms {
        config.kafka.commit_interval_ms = ms;
    }
    if let Some(n) = args.workers {
        config.workers = Some(usize::from(n));
    }
    for (k, v) in &args.client {
        config.kafka.client.insert(k.clone(), v.clone());
    }
    for (ch, c) in config.channels.iter_mut() {
        c.topic = names.channels[ch].clone();
    }
    config.metrics.listen = format!("127.0.0.1:{metrics_port}");
    let commit_interval_ms = config.kafka.commit_interval_ms;

    print_header(args, &run_id, commit_interval_ms, config.workers());
    let kafka = Kafka::connect(args.bootstrap());
    kafka.create_topics(&[(names.events.clone(), args.partitions, false)]);
    let producer = event_producer(args.bootstrap())?;
    let mut generator = Events::new(args.customers, 0x5EED, &run_id);
    let baseline_out = format!("{run_id}.baseline.out");

    let result = (|| -> Result<(), String> {
        let backlog = args.phase(Phase::Throughput) || args.phase(Phase::Baseline);
        if backlog {
            produce_backlog(args, &names, &producer, &mut generator)?;
        }
        let mut limit = None;
        if args.phase(Phase::Baseline) {
            kafka.create_topics(&[(baseline_out.clone(), args.partitions, false)]);
            let cpu = cpu::Snapshot::take();
            limit = Some(baseline::baseline(
                args,
                &config.kafka,
                &names,
                &baseline_out,
                Duration::from_millis(commit_interval_ms),
            )?);
            cpu::Snapshot::take().print_since(&cpu, "baseline");
        }
        let rss_before = memory::resident_bytes();
        let cpu = cpu::Snapshot::take();
        let mut service = Service::start(&rt, config, metrics_port);
        let outcome = (|| -> Result<(), String> {
            if args.phase(Phase::Throughput) {
                let rates = throughput(args, &names, &service)?;
                cpu::Snapshot::take().print_since(&cpu, "throughput phase");
                if let Some(limit) = limit {
                    baseline::print_ratio(rates, limit);
                }
            } else {
                service.wait_ready(Duration::from_secs(120))?;
            }
            if backlog {
                // The customers gauge is refreshed every 5 s.
                phases::settle(&service, Duration::from_secs(6));
                memory::print_per_customer(rss_before, &service.metrics());
            }
            if args.phase(Phase::Latency) {
                for &rate in &args.latency_rates {
                    latency(
                        args,
                        rate,
                        commit_interval_ms,
                        &names,
                        &service,
                        &producer,
                        &mut generator,
                    )?;
                }
            }
            if args.phase(Phase::Timers) {
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
        baseline_out,
    ];
    topics.extend(names.channels.values().cloned());
    kafka.delete_topics(&topics);
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

fn print_header(args: &Args, run_id: &str, commit_interval_ms: u64, workers: usize) {
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
        "  broker {} | {} input partitions | {workers} workers | commit_interval_ms {} | {} CPUs ({cpu}) | loadavg {}",
        args.bootstrap(),
        args.partitions,
        commit_interval_ms,
        cpus,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
