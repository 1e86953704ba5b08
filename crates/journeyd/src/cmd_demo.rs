//! `journeyd demo`: the real runtime against an in-process Kafka, fed by a generated stream of
//! customer behaviour, with every send and decision printed as it happens.
//!
//! Nothing else has to run: librdkafka's mock cluster (one broker, in this process) stands in
//! for Kafka, the topics are created on it, and `journey_kafka::run_service` runs exactly as
//! under `journeyd run` (transactions, changelog, timers, dead letters, metrics on
//! `metrics.listen`). A viewer reads the action, decision and dead-letter topics back
//! (read_committed) and prints one line per record.
//!
//! Which configuration: `--config FILE` if given; else `deploy/journeyd.yaml` under the current
//! directory (a checkout: its `journeys/` are used and watched, so edits reload live); else the
//! configuration and example journeys built into the binary. In every case the Kafka settings
//! are replaced by the in-process cluster's (and `kafka.client` is emptied: no security settings
//! apply to it).
//!
//! Time is the wall clock, as in production: journeys that wait hours or days show their
//! entries at once and their later sends only if the demo runs that long; the `ENTERED` lines
//! say what each journey waits for. The mock cluster cannot read committed offsets back, so a
//! demo always starts from empty topics.

#[path = "demo/display.rs"]
mod display;
#[path = "demo/embedded.rs"]
mod embedded;

use anyhow::Context;
use display::{FirstSteps, Summary};
use journey_kafka::http::Health;
use journey_kafka::metrics::Metrics;
use journey_kafka::{run_service, CancellationToken, ServiceOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Partitions of every topic on the in-process cluster.
const PARTITIONS: i32 = 3;

/// Arguments of `journeyd demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file (default: deploy/journeyd.yaml under the current directory, else the
    /// built-in one). Its Kafka settings are replaced by the in-process cluster's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Events produced per second.
    #[arg(long, default_value_t = 20.0, value_name = "N")]
    rate: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Number of simulated customers.
    #[arg(long, default_value_t = 50, value_name = "N")]
    customers: usize,
    /// Seed of the generated behaviour (the same seed gives the same events).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Address for /metrics, /healthz and /readyz (default: the configuration's
    /// metrics.listen).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
}

/// Entry point of `journeyd demo`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be a positive number of events per second"
    );
    // Kept alive until the end: the built-in files are removed when it is dropped.
    let mut extracted = None;
    let (config_path, source) = match &args.config {
        Some(path) => (path.clone(), format!("{}", path.display())),
        None if PathBuf::from("deploy/journeyd.yaml").is_file() => (
            PathBuf::from("deploy/journeyd.yaml"),
            "deploy/journeyd.yaml (this checkout)".to_string(),
        ),
        None => {
            let e = embedded::Extracted::write(&std::env::temp_dir())
                .context("cannot write the built-in configuration to the temporary directory")?;
            let path = e.config.clone();
            extracted = Some(e);
            (path, "the built-in configuration and journeys".to_string())
        }
    };
    let mut config = match journey_spec::load_config(&config_path) {
        Ok(config) => config,
        Err(diagnostics) => return Ok(report(&diagnostics)),
    };
    let journeys = match journey_spec::load_journeys_dir(&config.journeys_dir, &config) {
        Ok(journeys) => journeys,
        Err(diagnostics) => return Ok(report(&diagnostics)),
    };
    let first_steps: FirstSteps = journeys
        .iter()
        .map(|j| (j.id.clone(), display::first_step(j)))
        .collect();

    // The demo's own output is on stdout; the service logs only warnings unless RUST_LOG says
    // otherwise.
    config.log.level = "warn".to_string();
    crate::logging::init(&config.log);

    let mock = MockCluster::new(1).context("cannot start the in-process Kafka cluster")?;
    let bootstrap = mock.bootstrap_servers();
    let mut topics: Vec<String> = config.kafka.input_topics.clone();
    topics.push(config.kafka.state_topic.clone());
    topics.push(config.kafka.decisions_topic.clone());
    topics.push(config.kafka.dead_letter_topic.clone());
    let channel_topics: Vec<String> = config.channels.values().map(|c| c.topic.clone()).collect();
    topics.extend(channel_topics.iter().cloned());
    for topic in &topics {
        mock.create_topic(topic, PARTITIONS, 1)
            .with_context(|| format!("cannot create topic {topic} on the in-process cluster"))?;
    }
    config.kafka.bootstrap_servers = bootstrap.clone();
    config.kafka.transactional_id = Some("journeyd-demo".to_string());
    config.kafka.client.clear();
    // The in-process cluster starts empty each time: checkpoints of an earlier demo would only
    // be refused as stale, so each demo keeps its own, removed at the end.
    let state_dir =
        std::env::temp_dir().join(format!("journeyd-demo-state-{}", std::process::id()));
    config.state_dir = state_dir.clone();
    if let Some(listen) = &args.listen {
        config.metrics.listen = listen.clone();
    }

    println!("journeyd demo");
    println!("  Kafka:    in-process cluster at {bootstrap} ({PARTITIONS} partitions a topic)");
    println!(
        "  journeys: {} from {source}: {}",
        journeys.len(),
        journeys
            .iter()
            .map(|j| j.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  metrics:  http://{}/metrics", config.metrics.listen);
    println!(
        "  events:   {} customers, {} a second, seed {}; {}",
        args.customers,
        args.rate,
        args.seed,
        match args.duration {
            Some(s) => format!("stops after {s}s"),
            None => "Ctrl-C stops".to_string(),
        }
    );
    println!("  The clock is real: waits of hours or days are shown on the ENTERED lines.\n");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("journeyd-demo")
        .build()?;
    let input_topic = config.kafka.input_topics[0].clone();
    let mut view_topics = channel_topics;
    view_topics.push(config.kafka.decisions_topic.clone());
    view_topics.push(config.kafka.dead_letter_topic.clone());
    let decisions_topic = config.kafka.decisions_topic.clone();
    let dead_letter_topic = config.kafka.dead_letter_topic.clone();

    let code = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        let health = Health::new();
        let opts = ServiceOptions {
            config,
            config_path: Some(config_path),
            metrics: Arc::clone(&metrics),
            health: Arc::clone(&health),
        };
        let mut service = tokio::spawn(run_service(opts, shutdown.clone()));

        let summary = Arc::new(Mutex::new(Summary::default()));
        let stop_viewer = Arc::new(AtomicBool::new(false));
        let viewer = {
            let viewer = Viewer {
                bootstrap: bootstrap.clone(),
                topics: view_topics,
                decisions_topic,
                dead_letter_topic,
                first_steps,
                summary: Arc::clone(&summary),
                stop: Arc::clone(&stop_viewer),
            };
            std::thread::Builder::new()
                .name("demo-viewer".into())
                .spawn(move || viewer.run())?
        };

        let started = Instant::now();
        let deadline = args.duration.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("enable.idempotence", "true")
            .set("log_level", "3")
            .create()
            .context("cannot create the demo's event producer")?;
        let mut generator = journey_eventgen::Generator::new(args.customers, args.seed);
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
        let mut announced_ready = false;
        let mut failed = None;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = until_deadline => break,
                result = &mut service => {
                    failed = Some(match result {
                        Ok(Ok(())) => anyhow::anyhow!("the service stopped unexpectedly"),
                        Ok(Err(e)) => anyhow::Error::new(e).context("the service failed"),
                        Err(e) => anyhow::anyhow!("the service task failed: {e}"),
                    });
                    break;
                }
                _ = tick.tick() => {
                    if !announced_ready && health.is_ready() {
                        announced_ready = true;
                        println!(
                            "{} READY    engine joined the group after {:.1}s",
                            chrono::Utc::now().format("%H:%M:%S"),
                            started.elapsed().as_secs_f64()
                        );
                    }
                    let record = generator.next(chrono::Utc::now());
                    let delivery = producer
                        .send(
                            FutureRecord::to(&input_topic).key(&record.key).payload(&record.payload),
                            Duration::from_secs(10),
                        )
                        .await;
                    if let Err((e, _)) = delivery {
                        eprintln!("journeyd demo: cannot produce an event: {e}");
                        continue;
                    }
                    let mut s = summary.lock().expect("summary lock");
                    s.events += 1;
                    if record.event_type.is_none() {
                        s.malformed += 1;
                    }
                }
            }
        }

        if failed.is_none() {
            // Let the engine take in the last events before it stops.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        shutdown.cancel();
        if failed.is_none() {
            match tokio::time::timeout(Duration::from_secs(30), &mut service).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => failed = Some(anyhow::Error::new(e).context("the service failed")),
                Ok(Err(e)) => failed = Some(anyhow::anyhow!("the service task failed: {e}")),
                Err(_) => failed = Some(anyhow::anyhow!("the service did not stop within 30s")),
            }
        }
        // The last committed transaction is on its way to the viewer; give it a moment.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop_viewer.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || viewer.join()).await;

        let pending = pending_timers(&metrics.encode_text());
        let s = summary.lock().expect("summary lock").clone();
        print!("{}", s.render(started.elapsed().as_secs_f64(), pending));
        match failed {
            Some(e) => Err(e),
            None => Ok(ExitCode::SUCCESS),
        }
    });
    drop(mock);
    drop(extracted);
    let _ = std::fs::remove_dir_all(&state_dir);
    code
}

fn report(diagnostics: &[journey_spec::Diagnostic]) -> ExitCode {
    for d in diagnostics {
        eprintln!("{d}");
    }
    ExitCode::from(1)
}

/// The sum of `journeyd_pending_timers` over partitions, from the text exposition.
fn pending_timers(text: &str) -> i64 {
    text.lines()
        .filter(|l| l.starts_with("journeyd_pending_timers"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as i64
}

/// Reads the output topics back and prints them.
struct Viewer {
    bootstrap: String,
    topics: Vec<String>,
    decisions_topic: String,
    dead_letter_topic: String,
    first_steps: FirstSteps,
    summary: Arc<Mutex<Summary>>,
    stop: Arc<AtomicBool>,
}

impl Viewer {
    fn run(self) {
        let consumer: BaseConsumer = match ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            // librdkafka wants a group id to assign partitions; nothing is committed to it.
            .set("group.id", "journeyd-demo-viewer")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("log_level", "3")
            .create()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("journeyd demo: cannot read the output topics: {e}");
                return;
            }
        };
        let mut tpl = TopicPartitionList::new();
        for topic in &self.topics {
            for p in 0..PARTITIONS {
                let _ = tpl.add_partition_offset(topic, p, Offset::Beginning);
            }
        }
        if let Err(e) = consumer.assign(&tpl) {
            eprintln!("journeyd demo: cannot read the output topics: {e}");
            return;
        }
        while !self.stop.load(Ordering::Relaxed) {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let topic = m.topic();
            if topic == self.dead_letter_topic {
                let headers: BTreeMap<String, String> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value =
                                    h.value.map(String::from_utf8_lossy).unwrap_or_default();
                                (h.key.to_string(), value.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                println!("{}", display::dead_letter_line(&headers));
                self.summary.lock().expect("summary lock").dead_letters += 1;
                continue;
            }
            let Some(value) = m
                .payload()
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
            else {
                continue;
            };
            if topic == self.decisions_topic {
                if let Some(line) = display::decision_line(&value, &self.first_steps) {
                    println!("{line}");
                }
                self.summary.lock().expect("summary lock").decision(&value);
            } else {
                println!("{}", display::command_line(&value));
                self.summary.lock().expect("summary lock").command(&value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_timers_are_summed_over_partitions() {
        let text = "# HELP journeyd_pending_timers x\n# TYPE journeyd_pending_timers gauge\n\
                    journeyd_pending_timers{partition=\"0\"} 3\n\
                    journeyd_pending_timers{partition=\"1\"} 4\n\
                    journeyd_customers{partition=\"0\"} 9\n";
        assert_eq!(pending_timers(text), 7);
    }
}
