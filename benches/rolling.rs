//! Rolling restart benchmark: three `journeyd run` instances (the release binary) on a broker on
//! 127.0.0.1, with the example journeys of `journeys/` and the configuration of
//! `deploy/journeyd.yaml`, under a steady stream of events; the instances are restarted one at a
//! time as a StatefulSet rolling update does it (SIGTERM, wait for the exit, start again with the
//! same transactional id, `group.instance.id` and `state_dir`, wait for `/readyz` 200 before the
//! next). Optionally, then, the group is scaled 3 → 1 → 3 the way a scale-in and a scale-out do
//! (`journeyd leave-group` for the instances removed).
//!
//! Printed: the time each instance took to stop and to be ready again; event → command visible
//! latency (from the produce call of the command's `trigger_event_id` until a `read_committed`
//! consumer sees the command) p50/p99/max, for the events produced during the roll and for the
//! whole run; and the commands checked against `journeyd simulate` over the same events: none
//! missing, none extra, no `command_id` twice. Asserts nothing.
//!
//! ```text
//! cargo build --release -p journeyd -p journeyd-benches
//! target/release/rolling-restart-bench [--rate 2000] [--scale] [BOOTSTRAP]
//! ```
//!
//! Longer than 600 lines: one benchmark's whole flow (instances, stream, roll, scaling, the
//! latency split and the check against `simulate`) reads best in one file.

use chrono::{DateTime, Utc};
use clap::Parser;
use journeyd_benches::{bench_bootstrap, machine, parse_local, percentile};
use journeyd_testkit::eventgen::{Generated, Generator, Options};
use journeyd_testkit::{client_config, free_port, journeyd_bin, tail, Journeyd, Kafka, TailReader};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::Offset;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// A rolling restart (and optionally a scale-in and scale-out) of journeyd instances under a
/// steady stream, on a real Kafka broker on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "rolling-restart-bench")]
struct Args {
    /// Broker address; only 127.0.0.1:PORT is accepted. Default: $JOURNEYD_BENCH_BOOTSTRAP,
    /// else the tests' broker (127.0.0.1:9092 when it answers, else a private one started with
    /// deploy/kafka/start.sh and stopped when the bench exits).
    #[arg(value_parser = parse_local)]
    bootstrap: Option<String>,
    /// Instances.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    instances: u32,
    /// Input partitions.
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Events per second, for the whole run.
    #[arg(long, default_value_t = 2000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Distinct customers of the stream.
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    customers: usize,
    /// Seconds of steady stream before the roll, and again after it (and after each scale
    /// step).
    #[arg(long, default_value_t = 15, value_name = "N")]
    steady: u64,
    /// Rolling restarts, one after the other (each followed by a steady stretch).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rolls: u32,
    /// Also scale in to one instance and out again to all of them, after the roll.
    #[arg(long)]
    scale: bool,
    /// Repository root holding journeys/ and deploy/ (default: found from the current
    /// directory).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

/// A wait longer than this is a hang.
const HANG: Duration = Duration::from_secs(180);

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("rolling-restart-bench: {e}");
        std::process::exit(1);
    }
}

/// The repository root: the first ancestor of the current directory (or of this package)
/// holding `journeys/` and `deploy/journeyd.yaml`.
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

/// This run's names and files.
struct World {
    prefix: String,
    dir: PathBuf,
    bootstrap: String,
    partitions: i32,
    /// Per instance: configuration file and metrics port.
    instances: Vec<(PathBuf, u16)>,
}

impl World {
    fn events_topic(&self) -> String {
        format!("{}.events", self.prefix)
    }

    fn action_topics(&self) -> Vec<String> {
        ["email", "sms", "push", "ads"]
            .iter()
            .map(|c| format!("{}.actions.{c}", self.prefix))
            .collect()
    }

    /// Writes each instance's configuration: `deploy/journeyd.yaml` with this run's topic and
    /// group names, its own transactional id (hence `group.instance.id`), `state_dir` and
    /// metrics port, JSON logs.
    fn write_configs(&mut self, repo: &Path, n: u32) -> Result<(), String> {
        let template = std::fs::read_to_string(repo.join("deploy/journeyd.yaml"))
            .map_err(|e| format!("deploy/journeyd.yaml: {e}"))?;
        let journeys = repo
            .join("journeys")
            .canonicalize()
            .map_err(|e| e.to_string())?;
        let p = &self.prefix;
        for i in 0..n {
            let port = free_port();
            let text = template
                .replace(
                    "journeys_dir: ../journeys",
                    &format!(
                        "journeys_dir: {}\nstate_dir: {}",
                        journeys.display(),
                        self.dir.join(format!("state-{i}")).display()
                    ),
                )
                .replace("127.0.0.1:9092", &self.bootstrap)
                .replace("group_id: journeyd", &format!("group_id: {p}"))
                .replace("[events]", &format!("[{p}.events]"))
                .replace("events.dead_letter", &format!("{p}.dead_letter"))
                .replace("journey.decisions", &format!("{p}.decisions"))
                .replace("journeyd.state", &format!("{p}.state"))
                .replace("topic: actions.", &format!("topic: {p}.actions."))
                .replace("127.0.0.1:9464", &format!("127.0.0.1:{port}"))
                .replace(
                    "  client: {}",
                    &format!("  transactional_id: {p}-{i}\n  client: {{}}"),
                );
            let text = format!("{text}\nlog:\n  format: json\n");
            let path = self.dir.join(format!("journeyd-{i}.yaml"));
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            self.instances.push((path, port));
        }
        Ok(())
    }

    fn spawn(&self, i: usize, generation: u32) -> Journeyd {
        let (config, port) = &self.instances[i];
        Journeyd::spawn_run(
            config,
            &self.dir,
            self.dir.join(format!("run-{i}-{generation}.log")),
            *port,
        )
    }
}

fn ready(jd: &Journeyd) -> bool {
    matches!(jd.get("/readyz"), Some((200, _)))
}

/// Waits for `/readyz` 200; the seconds it took.
fn wait_ready(jd: &mut Journeyd) -> Result<f64, String> {
    let t = Instant::now();
    while !ready(jd) {
        if !jd.is_running() || t.elapsed() > HANG {
            return Err(format!(
                "instance not ready; last lines of {}:\n{}",
                jd.log.display(),
                tail(&jd.log, 20)
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(t.elapsed().as_secs_f64())
}

type Plain = ThreadedProducer<DefaultProducerContext>;

/// What the producer thread produced: per event sequence number, when it was handed to the
/// producer; and every event in order (for `simulate`).
#[derive(Default)]
struct Produced {
    at: HashMap<u64, Instant>,
    events: Vec<Value>,
}

/// Produces `rate` events/s until `stop` is set.
fn produce(
    producer: &Plain,
    topic: &str,
    generator: &mut Generator,
    rate: u64,
    stop: &AtomicBool,
    out: &Mutex<Produced>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        if n >= due {
            thread::sleep(Duration::from_micros(500));
            continue;
        }
        let mut batch = Vec::new();
        while n < due {
            let e: Generated = generator.next(Utc::now());
            let at = Instant::now();
            send(producer, topic, &e).map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(&e.payload).map_err(|e| e.to_string())?;
            batch.push((e.seq, at, v));
            n += 1;
        }
        let mut out = out.lock().map_err(|_| "poisoned")?;
        for (seq, at, v) in batch {
            out.at.insert(seq, at);
            out.events.push(v);
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "produced {n} events in {secs:.1} s ({:.0} events/s)",
        n as f64 / secs
    );
    Ok(())
}

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

fn run(args: &Args) -> Result<(), String> {
    let bootstrap = bench_bootstrap(args.bootstrap.as_deref())?;
    let repo = match &args.repo {
        Some(r) => r.clone(),
        None => find_repo()?,
    };
    let prefix = format!(
        "roll-{}-{}",
        Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id()
    );
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut world = World {
        prefix: prefix.clone(),
        dir: dir.clone(),
        bootstrap: bootstrap.clone(),
        partitions: args.partitions,
        instances: Vec::new(),
    };
    world.write_configs(&repo, args.instances)?;
    println!(
        "rolling-restart-bench {prefix}: {} instances, {} input partitions, {} events/s over {} customers, broker {bootstrap}, journeyd {}, {}",
        args.instances,
        args.partitions,
        args.rate,
        args.customers,
        journeyd_bin().display(),
        machine()
    );
    let kafka = Kafka::connect(&bootstrap);
    kafka.create_topics(&[(world.events_topic(), args.partitions, false)]);
    let result = roll(args, &world);
    let mut topics = vec![
        world.events_topic(),
        format!("{prefix}.state"),
        format!("{prefix}.dead_letter"),
        format!("{prefix}.decisions"),
    ];
    topics.extend(world.action_topics());
    kafka.delete_topics(&topics);
    println!("files: {}", dir.display());
    println!("done, {}", machine());
    result
}

/// One step of the run, for the latency split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Before,
    Roll,
    After,
    Scale,
}

fn roll(args: &Args, world: &World) -> Result<(), String> {
    // The instances, one after the other (the first creates the topics).
    let mut instances: Vec<Journeyd> = Vec::new();
    for i in 0..args.instances as usize {
        let mut jd = world.spawn(i, 0);
        let secs = wait_ready(&mut jd)?;
        println!("instance {i} ready after {secs:.2} s");
        instances.push(jd);
    }
    // The command topics, then the decisions topic.
    let mut topics = world.action_topics();
    topics.push(format!("{}.decisions", world.prefix));
    let mut reader = TailReader::start(
        &world.bootstrap,
        &format!("{}.reader", world.prefix),
        &topics,
        vec![true; topics.len()],
        world.partitions,
        Offset::Beginning,
    )?;
    let producer: Plain = client_config(
        &world.bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
        ],
    )
    .create()
    .map_err(|e| e.to_string())?;
    let mut generator = Generator::with_options(
        args.customers,
        0x5EED,
        Options {
            customer_prefix: format!("{}-c", world.prefix),
            event_prefix: format!("{}-e", world.prefix),
            malformed_every: 0,
        },
    );
    let stop = AtomicBool::new(false);
    let produced = Mutex::new(Produced::default());
    // Stage boundaries, as instants.
    let mut stages: Vec<(Instant, Stage)> = vec![(Instant::now(), Stage::Before)];
    let steady = Duration::from_secs(args.steady);
    let outcome = thread::scope(|scope| -> Result<(), String> {
        let producing = scope.spawn(|| {
            produce(
                &producer,
                &world.events_topic(),
                &mut generator,
                args.rate,
                &stop,
                &produced,
            )
        });
        let steps = (|| -> Result<(), String> {
            thread::sleep(steady);
            for roll in 1..=args.rolls {
                stages.push((Instant::now(), Stage::Roll));
                let roll_started = Instant::now();
                for (i, jd) in instances.iter_mut().enumerate() {
                    let t = Instant::now();
                    let (status, clean) = jd.terminate(Duration::from_secs(60));
                    let stopped = t.elapsed().as_secs_f64();
                    let mut next = world.spawn(i, roll);
                    let secs = wait_ready(&mut next)?;
                    *jd = next;
                    println!(
                        "roll {roll}: instance {i} stopped in {stopped:.2} s ({status}{}), ready again {secs:.2} s after its start",
                        if clean { "" } else { ", killed" }
                    );
                }
                println!(
                    "roll {roll}: {:.1} s from the first SIGTERM to the last instance ready",
                    roll_started.elapsed().as_secs_f64()
                );
                stages.push((Instant::now(), Stage::After));
                thread::sleep(steady);
            }
            if args.scale && instances.len() > 1 {
                stages.push((Instant::now(), Stage::Scale));
                scale(world, &mut instances, steady)?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        let produced_ok = producing
            .join()
            .map_err(|_| "the producer thread panicked".to_owned())?;
        steps.and(produced_ok)
    });
    outcome?;
    let produced = produced.into_inner().map_err(|_| "poisoned")?;
    // Everything in flight becomes visible: wait until the reader has seen nothing new for 5 s.
    let t = Instant::now();
    while reader
        .last_at()
        .is_none_or(|at| at.elapsed() < Duration::from_secs(5))
        && t.elapsed() < Duration::from_secs(60)
    {
        thread::sleep(Duration::from_millis(200));
    }
    reader.stop();
    let seen = reader.take_seen();
    let mut commands = Vec::with_capacity(seen.len());
    // (is a command, stage) -> latencies.
    let mut latencies: BTreeMap<(bool, Stage), Vec<f64>> = BTreeMap::new();
    let event_prefix = format!("{}-e", world.prefix);
    for s in &seen {
        let Some(v) = s
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        // A command names its trigger event; a decision (which has a `kind`), the event it
        // was made for.
        let is_command = v.get("kind").is_none();
        let event = if is_command {
            &v["trigger_event_id"]
        } else {
            &v["event_id"]
        };
        let seq = event
            .as_str()
            .and_then(|id| id.strip_prefix(&event_prefix))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(at) = seq.and_then(|seq| produced.at.get(&seq)) {
            let stage = stages
                .iter()
                .rev()
                .find(|(from, _)| from <= at)
                .map_or(Stage::Before, |(_, stage)| *stage);
            latencies
                .entry((is_command, stage))
                .or_default()
                .push(s.at.saturating_duration_since(*at).as_secs_f64());
        }
        if is_command {
            commands.push(v);
        }
    }
    for kind in [true, false] {
        let what = if kind { "command" } else { "decision" };
        let mut all = Vec::new();
        for ((is_command, stage), values) in &latencies {
            if *is_command != kind {
                continue;
            }
            let mut values = values.clone();
            all.extend_from_slice(&values);
            values.sort_by(f64::total_cmp);
            print_latency(what, &format!("{stage:?}").to_lowercase(), &values);
        }
        all.sort_by(f64::total_cmp);
        print_latency(what, "whole run", &all);
    }
    for (i, jd) in instances.iter_mut().enumerate() {
        if !jd.is_running() {
            println!("instance {i} is not running at the end");
        }
        jd.terminate(Duration::from_secs(60));
    }
    check(world, &produced.events, &commands)
}

fn print_latency(what: &str, label: &str, sorted: &[f64]) {
    if sorted.is_empty() {
        println!("event → {what} visible, {label}: no samples");
        return;
    }
    println!(
        "event → {what} visible, {label}: n={} p50={:.0} ms p99={:.0} ms max={:.0} ms",
        sorted.len(),
        percentile(sorted, 0.50) * 1000.0,
        percentile(sorted, 0.99) * 1000.0,
        sorted[sorted.len() - 1] * 1000.0
    );
}

/// Scale-in to one instance (the others stop on SIGTERM and are removed from the group with
/// `journeyd leave-group`, as a scale-in does), a steady stretch, then scale-out again.
fn scale(world: &World, instances: &mut [Journeyd], steady: Duration) -> Result<(), String> {
    let t = Instant::now();
    for i in (1..instances.len()).rev() {
        instances[i].terminate(Duration::from_secs(60));
        let output = Command::new(journeyd_bin())
            .arg("leave-group")
            .arg("--config")
            .arg(&world.instances[i].0)
            .args(["--instance-id", &format!("{}-{i}", world.prefix)])
            .args(["--timeout", "60"])
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!(
                "journeyd leave-group for instance {i}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let held = wait_holding(&instances[0], world.partitions)?;
    println!(
        "scale-in to 1: {:.2} s until instance 0 held every partition, restored ({held:.2} s after the last leave-group)",
        t.elapsed().as_secs_f64()
    );
    thread::sleep(steady);
    let t = Instant::now();
    for (i, jd) in instances.iter_mut().enumerate().skip(1) {
        *jd = world.spawn(i, 1000);
    }
    for jd in instances.iter_mut().skip(1) {
        wait_ready(jd)?;
    }
    println!(
        "scale-out to {}: every instance ready {:.2} s after the starts",
        instances.len(),
        t.elapsed().as_secs_f64()
    );
    thread::sleep(steady);
    Ok(())
}

/// Waits until the instance holds `partitions` partitions, none restoring; the seconds it
/// took.
fn wait_holding(jd: &Journeyd, partitions: i32) -> Result<f64, String> {
    let t = Instant::now();
    let metric = |text: &str, name: &str| journeyd_testkit::metric_sum(text, name, &[]);
    jd.wait_metrics(HANG, |text| {
        metric(text, "journeyd_partitions_assigned") == f64::from(partitions)
            && metric(text, "journeyd_partitions_restoring") == 0.0
    })
    .ok_or_else(|| format!("the instance does not hold {partitions} partitions"))?;
    Ok(t.elapsed().as_secs_f64())
}

/// The commands read against `journeyd simulate` over the events produced, up to the time of
/// the last event (timers due later fire in neither): missing (simulated, never read), extra
/// (read, issued by then, not simulated), duplicate `command_id`s.
fn check(world: &World, events: &[Value], commands: &[Value]) -> Result<(), String> {
    let Some(last) = events
        .iter()
        .filter_map(|e| e["timestamp"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .max()
    else {
        return Err("no events produced".into());
    };
    let last = last.with_timezone(&Utc);
    let file = world.dir.join("events.jsonl");
    let mut text = String::new();
    for e in events {
        text.push_str(&e.to_string());
        text.push('\n');
    }
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let output = Command::new(journeyd_bin())
        .arg("simulate")
        .arg("--config")
        .arg(&world.instances[0].0)
        .arg("--events")
        .arg(&file)
        .arg("--until")
        .arg(last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "journeyd simulate: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let issued_by_last = |c: &Value| {
        c["issued_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.with_timezone(&Utc) <= last)
    };
    let ids = |cs: &mut dyn Iterator<Item = &Value>| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in cs {
            if let Some(id) = c["command_id"].as_str() {
                *m.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        m
    };
    let simulated: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let want = ids(&mut simulated.iter().filter(|c| issued_by_last(c)));
    let got_all = ids(&mut commands.iter());
    let got = ids(&mut commands.iter().filter(|c| issued_by_last(c)));
    // A command counts as there whenever it was read: `run` stamps `issued_at` with its own
    // clock, which may be past the last event's time where `simulate` stamps the event's.
    let missing = want.keys().filter(|k| !got_all.contains_key(*k)).count();
    let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
    let duplicates: usize = got_all.values().map(|n| n - 1).sum();
    println!(
        "commands: {} read ({} issued by the last event's time), simulate gives {}: missing {missing}, extra {extra}, duplicate command_id {duplicates}",
        commands.len(),
        got.values().sum::<usize>(),
        want.len()
    );
    Ok(())
}
