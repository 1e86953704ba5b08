//! Restore benchmark: how fast a partition's state comes back, from a local checkpoint and from
//! the changelog alone, and how long `kill -9` → ready takes for one instance holding the
//! customers, with where that time goes. Prints figures (benches/README.md records them);
//! asserts nothing.
//!
//! ```text
//! cargo build --release -p journeyd -p journeyd-benches
//! target/release/restore-bench [--customers N] [--phases checkpoint,changelog,kill9] [BOOTSTRAP]
//! ```
//!
//! BOOTSTRAP (default `$JOURNEYD_BENCH_BOOTSTRAP`, else the tests' broker) must be
//! `127.0.0.1:PORT`. The `journeyd` binary is the one beside this one (`JOURNEYD_BIN` to name
//! another).

use clap::Parser;
use journey_engine::{Effects, Engine};
use journey_kafka::checkpoint::{CheckpointStore, CheckpointWriter, Fallback};
use journey_kafka::clients::restore_properties;
use journey_kafka::restore::{apply_record, customers_expected, customers_in_checkpoint, Restorer};
use journey_kafka::CancellationToken;
use journeyd_benches::{bench_bootstrap, catalog, config, machine, parse_local, Stream, JOURNEYS};
use journeyd_testkit::{client_config, free_port, tail, Journeyd, Kafka};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Restore speed (local checkpoint, changelog alone) and `kill -9` → ready of one instance.
#[derive(Parser, Debug)]
#[command(name = "restore-bench")]
struct Args {
    /// Broker address; only 127.0.0.1:PORT is accepted. Default: $JOURNEYD_BENCH_BOOTSTRAP,
    /// else the tests' broker (127.0.0.1:9092 when it answers, else a private one started with
    /// deploy/kafka/start.sh and stopped when the bench exits).
    #[arg(value_parser = parse_local)]
    bootstrap: Option<String>,
    /// Customer ids of the state built (about 86 % of them end up with state).
    #[arg(long, default_value_t = 1_000_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    customers: u64,
    /// Phases to run, in this order (kill9 uses the changelog topic the changelog phase
    /// fills; it is filled without being measured when that phase is not asked for).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "checkpoint,changelog,kill9"
    )]
    phases: Vec<Phase>,
    /// librdkafka property for the restore consumer of the changelog phase and for the
    /// service's clients (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_client)]
    client: Vec<(String, String)>,
    /// Changelog records written after the checkpoint before each kill -9 (states of customers
    /// the service holds, produced straight to its changelog): the tail a restart replays
    /// after the checkpoint, as a crash some time after the last checkpoint leaves.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    tail: usize,
    /// Rounds of kill -9 and restart.
    #[arg(long, default_value_t = 3, value_name = "N")]
    rounds: u32,
}

/// A phase of the benchmark (see the module documentation).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Checkpoint,
    Changelog,
    Kill9,
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

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("restore-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let phase = |p| args.phases.contains(&p);
    let bootstrap = if phase(Phase::Changelog) || phase(Phase::Kill9) {
        Some(bench_bootstrap(args.bootstrap.as_deref())?)
    } else {
        None
    };
    println!(
        "restore-bench: {} ids, broker {}, {}",
        args.customers,
        bootstrap.as_deref().unwrap_or("(none)"),
        machine()
    );

    // An engine holding the customers, built by the engine bench's event mix.
    let started = Instant::now();
    let mut engine = Engine::new(catalog());
    let mut stream = Stream::new(args.customers, 20);
    let mut effects = Effects::default();
    while (engine.customer_count() as u64) < args.customers * 86 / 100 {
        for _ in 0..10_000 {
            let event = stream.next_event();
            engine.fire_due(event.timestamp, &mut effects);
            effects.clear();
            engine.handle(&event, event.timestamp, &mut effects);
            effects.clear();
        }
    }
    let held = engine.customer_count() as u64;
    println!(
        "state: {held} customers built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if phase(Phase::Checkpoint) {
        checkpoint(&engine)?;
    }
    if let Some(bootstrap) = bootstrap {
        let prefix = format!("restore-bench-{}", std::process::id());
        let kafka = Kafka::connect(&bootstrap);
        let state_topic = format!("{prefix}.state");
        kafka.create_topics(&[
            (state_topic.clone(), 1, true),
            (format!("{prefix}.events"), 1, false),
        ]);
        let result = (|| -> Result<(), String> {
            let tail_states: Vec<(String, Vec<u8>)> = engine
                .customer_ids()
                .take(args.tail)
                .filter_map(|id| Some((id.to_owned(), engine.export_customer(id)?)))
                .collect();
            let t = Instant::now();
            let produced = produce_states(&bootstrap, &state_topic, &engine)?;
            println!(
                "changelog: {produced} records produced in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            drop(engine);
            if phase(Phase::Changelog) {
                changelog(args, &bootstrap, &prefix, &state_topic)?;
            }
            if phase(Phase::Kill9) {
                kill_nine(args, &bootstrap, &prefix, &state_topic, &tail_states)?;
            }
            Ok(())
        })();
        let mut topics: Vec<String> = [
            "state",
            "events",
            "dead_letter",
            "decisions",
            "actions.email",
            "actions.sms",
            "actions.push",
        ]
        .iter()
        .map(|t| format!("{prefix}.{t}"))
        .collect();
        topics.push(state_topic);
        kafka.delete_topics(&topics);
        result?;
    }
    println!("done, {}", machine());
    Ok(())
}

/// Export every customer into a checkpoint as the runtime does, write it, then read, verify and
/// import it into a fresh engine, as a restore does.
fn checkpoint(engine: &Engine) -> Result<(), String> {
    let held = engine.customer_count();
    let dir = std::env::temp_dir().join(format!("restore-bench-{}", std::process::id()));
    let store = CheckpointStore::open(&dir, "bench", "bench.state").map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut writer = CheckpointWriter::new(held * 128);
    for id in engine.customer_ids() {
        writer.customer_with(id, |buf| engine.export_customer_into(id, buf));
    }
    let bytes = writer.finish(store.id(0), 0, SystemTime::now());
    let export_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let size = store.write(0, &bytes).map_err(|e| e.to_string())?;
    let write_s = t.elapsed().as_secs_f64();
    drop(bytes);
    println!(
        "checkpoint: {size} bytes ({:.0} bytes/customer); export {export_s:.2} s ({:.0} customers/s), write+fsync {write_s:.2} s",
        size as f64 / held as f64,
        held as f64 / export_s,
    );
    let t = Instant::now();
    let mut checkpoint = store.load(0).map_err(|r| format!("load: {r:?}"))?;
    let read_s = t.elapsed().as_secs_f64();
    let mut restored = Engine::new(catalog());
    // As the runtime's restore does: the index sized once from the checkpoint's count.
    restored.reserve_customers(customers_in_checkpoint(checkpoint.header.customers));
    while checkpoint
        .next_batch(20_000, |id, state| {
            restored
                .import_customer(id, state)
                .map_err(|_| Fallback::Undecodable)
        })
        .map_err(|r| format!("import: {r:?}"))?
        > 0
    {}
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "restore from the local checkpoint: {} customers in {load_s:.2} s (read+verify {read_s:.2} s) = {:.0} customers/s",
        restored.customer_count(),
        restored.customer_count() as f64 / load_s
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Produces `records` to partition 0 of `topic`; how many.
fn produce_records(
    bootstrap: &str,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> Result<usize, String> {
    let producer: BaseProducer = client_config(
        bootstrap,
        &[("linger.ms", "20"), ("compression.type", "lz4")],
    )
    .create()
    .map_err(|e| e.to_string())?;
    for (key, value) in records {
        loop {
            let record = BaseRecord::to(topic).partition(0).key(key).payload(value);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("produce: {e}")),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| e.to_string())?;
    Ok(records.len())
}

/// Produces every customer's state to the one-partition compacted changelog `topic`.
fn produce_states(bootstrap: &str, topic: &str, engine: &Engine) -> Result<u64, String> {
    let producer: BaseProducer = client_config(
        bootstrap,
        &[
            ("linger.ms", "20"),
            ("batch.num.messages", "10000"),
            ("compression.type", "lz4"),
            ("queue.buffering.max.messages", "500000"),
        ],
    )
    .create()
    .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    let mut state = Vec::with_capacity(256);
    for id in engine.customer_ids() {
        state.clear();
        if !engine.export_customer_into(id, &mut state) {
            continue;
        }
        loop {
            let record = BaseRecord::to(topic).partition(0).key(id).payload(&state);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("produce: {e}")),
            }
        }
        n += 1;
        if n.is_multiple_of(10_000) {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| e.to_string())?;
    Ok(n)
}

/// Replays the changelog into a fresh engine with the runtime's restorer.
fn changelog(args: &Args, bootstrap: &str, prefix: &str, state_topic: &str) -> Result<(), String> {
    let mut cfg = config();
    cfg.kafka.client.extend(args.client.iter().cloned());
    cfg.kafka.bootstrap_servers = bootstrap.to_owned();
    cfg.kafka.group_id = prefix.to_owned();
    cfg.kafka.state_topic = state_topic.to_owned();
    let cancel = CancellationToken::new();
    let mut restorer =
        Restorer::new(&restore_properties(&cfg.kafka), state_topic).map_err(|e| e.to_string())?;
    let (low, end) = restorer.watermarks(0, &cancel).map_err(|e| e.to_string())?;
    let mut engine = Engine::new(catalog());
    let t = Instant::now();
    // As the runtime's restore does: the index sized for half the records up front.
    engine.reserve_customers(customers_expected(end - low));
    restorer.start(0, low, end).map_err(|e| e.to_string())?;
    let mut records = 0u64;
    // Time inside the engine (two clock reads per record, about 2 % of the whole).
    let mut engine_s = 0.0;
    while restorer.is_busy() {
        let step = restorer.step(
            20_000,
            Duration::from_millis(5),
            Instant::now() + Duration::from_millis(50),
            |_, key, value| {
                let t = Instant::now();
                let ok = apply_record(&mut engine, key, value);
                engine_s += t.elapsed().as_secs_f64();
                Some(ok)
            },
        );
        records += step.applied.values().sum::<u64>();
    }
    let replay_s = t.elapsed().as_secs_f64();
    println!(
        "restore from the changelog alone: {records} records, {} customers in {replay_s:.2} s = {:.0} customers/s (of which {engine_s:.2} s in the engine)",
        engine.customer_count(),
        engine.customer_count() as f64 / replay_s
    );
    Ok(())
}

/// The service's configuration: the example one with this run's names, the bench journeys,
/// JSON logs (read back for the timeline).
fn service_config(
    dir: &Path,
    bootstrap: &str,
    prefix: &str,
    port: u16,
    client: &[(String, String)],
) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("journeys")).map_err(|e| e.to_string())?;
    for (i, text) in JOURNEYS.iter().enumerate() {
        std::fs::write(dir.join("journeys").join(format!("bench{i}.yaml")), text)
            .map_err(|e| e.to_string())?;
    }
    let text = journey_spec::EXAMPLE_CONFIG
        .replace("127.0.0.1:9092", bootstrap)
        .replace("group_id: journeyd", &format!("group_id: {prefix}"))
        .replace("[events]", &format!("[{prefix}.events]"))
        .replace("events.dead_letter", &format!("{prefix}.dead_letter"))
        .replace("journey.decisions", &format!("{prefix}.decisions"))
        .replace("journeyd.state", &format!("{prefix}.state"))
        .replace("actions.", &format!("{prefix}.actions."))
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{port}"))
        .replace(
            "  client: {}",
            &format!(
                "  transactional_id: {prefix}-0\n  client: {{{}}}",
                client
                    .iter()
                    .map(|(k, v)| format!("{k}: {v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    let text = format!("{text}\nlog:\n  format: json\n");
    std::fs::write(dir.join("journeyd.yaml"), text).map_err(|e| e.to_string())
}

/// Polls `pred` every 20 ms; the seconds it took, or an error after `timeout`.
fn wait_for(
    what: &str,
    jd: &mut Journeyd,
    timeout: Duration,
    pred: impl Fn(&Journeyd) -> bool,
) -> Result<f64, String> {
    let t = Instant::now();
    while !pred(jd) {
        if !jd.is_running() || t.elapsed() > timeout {
            return Err(format!(
                "{what}: not within {timeout:?}; last lines of {}:\n{}",
                jd.log.display(),
                tail(&jd.log, 20)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(t.elapsed().as_secs_f64())
}

fn ready(jd: &Journeyd) -> bool {
    matches!(jd.get("/readyz"), Some((200, _)))
}

/// `journeyd run` with the changelog as its state: first start, first checkpoint, then rounds
/// of kill -9 and restart at once, each timed to `/readyz` 200 and broken down from its log.
fn kill_nine(
    args: &Args,
    bootstrap: &str,
    prefix: &str,
    state_topic: &str,
    tail_states: &[(String, Vec<u8>)],
) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("{prefix}-service"));
    let port = free_port();
    service_config(&dir, bootstrap, prefix, port, &args.client)?;
    let config = dir.join("journeyd.yaml");
    let spawn = |n: u32| Journeyd::spawn_run(&config, &dir, dir.join(format!("run-{n}.log")), port);
    let started = SystemTime::now();
    let mut jd = spawn(0);
    let first = wait_for(
        "first start ready",
        &mut jd,
        Duration::from_secs(600),
        ready,
    )?;
    println!(
        "first start (restore from the whole changelog in the service): ready after {first:.2} s"
    );
    timeline(&jd.log, started);
    let mut ready_at = SystemTime::now();
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        // A checkpoint written since this start (the restore of a tail makes one due at once),
        // then the tail after it.
        let since = ready_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let c = if args.tail == 0 {
            0.0
        } else {
            wait_for(
                "a checkpoint of this start",
                &mut jd,
                Duration::from_secs(600),
                |jd| {
                    jd.metrics().is_some_and(|body| {
                        journeyd_testkit::metric_sum(
                            &body,
                            "journeyd_checkpoint_last_write_timestamp_seconds",
                            &[],
                        ) >= since
                    })
                },
            )?
        };
        println!("  checkpoint written {c:.2} s later");
        let t = Instant::now();
        let n = produce_records(bootstrap, state_topic, tail_states)?;
        println!(
            "  {n} changelog records written after it in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(1));
        jd.kill9();
        let killed = SystemTime::now();
        let t = Instant::now();
        jd = spawn(round);
        wait_for(
            "ready after kill -9",
            &mut jd,
            Duration::from_secs(600),
            ready,
        )?;
        let secs = t.elapsed().as_secs_f64();
        ready_at = SystemTime::now();
        rounds.push(secs);
        println!("kill -9 #{round} → ready: {secs:.2} s (from the kill, restart included)");
        timeline(&jd.log, killed);
    }
    println!(
        "kill -9 → ready: {}",
        rounds
            .iter()
            .map(|s| format!("{s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (status, clean) = jd.terminate(Duration::from_secs(60));
    if !clean {
        println!("the service did not stop on SIGTERM ({status})");
    }
    println!("service logs: {}", dir.display());
    Ok(())
}

/// Where the time of a start went: the log lines that mark its steps, as seconds since `from`
/// (the kill, or the first spawn).
fn timeline(log: &Path, from: SystemTime) {
    const STEPS: [&str; 7] = [
        "journeys loaded",
        "joining consumer group",
        "partitions assigned",
        "restoring from the local checkpoint, then the changelog after it",
        "no local checkpoint: restoring from the whole changelog",
        "local checkpoint imported, replaying the changelog after it",
        "partition restored",
    ];
    let from: chrono::DateTime<chrono::Utc> = from.into();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(message) = v["message"].as_str() else {
            continue;
        };
        if !STEPS.contains(&message) {
            continue;
        }
        let Some(at) = v["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let secs = (at.with_timezone(&chrono::Utc) - from)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6;
        let detail: Vec<String> = [
            "customers",
            "checkpoint_customers",
            "changelog_records",
            "millis",
        ]
        .iter()
        .filter_map(|k| v.get(*k).map(|x| format!("{k}={x}")))
        .collect();
        println!("  {secs:>7.3} s  {message} {}", detail.join(" "));
    }
}
