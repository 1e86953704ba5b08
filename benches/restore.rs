//! Restore benchmark: how fast a partition's state comes back, from a local checkpoint and from
//! the changelog alone, and how long `kill -9` → ready takes for one instance holding the
//! customers. Prints figures (benches/README.md records them); asserts nothing.
//!
//! ```text
//! cargo build --release -p journeyd -p journeyd-benches
//! target/release/restore-bench [--customers N] [BOOTSTRAP]
//! ```
//!
//! BOOTSTRAP (default `$JOURNEYD_BENCH_BOOTSTRAP` or `127.0.0.1:9092`) must be `127.0.0.1:PORT`.
//! The journeyd binary is looked for beside this one.

use journey_engine::{Effects, Engine};
use journey_kafka::checkpoint::{CheckpointStore, CheckpointWriter};
use journey_kafka::clients::restore_properties;
use journey_kafka::restore::{apply_record, Restorer};
use journey_kafka::CancellationToken;
use journeyd_benches::{catalog, config, Stream, JOURNEYS};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn main() {
    if let Err(e) = run() {
        eprintln!("restore-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut customers: u64 = 1_000_000;
    let mut bootstrap =
        std::env::var("JOURNEYD_BENCH_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--customers" => {
                customers = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--customers needs a number")?
            }
            "--help" | "-h" => {
                println!("restore-bench [--customers N] [BOOTSTRAP (127.0.0.1:PORT)]");
                return Ok(());
            }
            other => bootstrap = other.to_owned(),
        }
    }
    let (host, port) = bootstrap.rsplit_once(':').ok_or("bootstrap HOST:PORT")?;
    if host != "127.0.0.1" || port.parse::<u16>().is_err() {
        return Err(format!(
            "bootstrap {bootstrap}: only 127.0.0.1:PORT is accepted"
        ));
    }

    // 1. An engine holding `customers` customers, built by the bench's event mix.
    let started = Instant::now();
    let mut engine = Engine::new(catalog());
    let mut stream = Stream::new(customers, 20);
    let mut effects = Effects::default();
    while (engine.customer_count() as u64) < customers * 86 / 100 {
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

    // 2. Checkpoint: export, write, load.
    let dir = std::env::temp_dir().join(format!("restore-bench-{}", std::process::id()));
    let store = CheckpointStore::open(&dir, "bench", "bench.state").map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut writer = CheckpointWriter::new(held as usize * 160);
    let mut states: Vec<(String, Vec<u8>)> = Vec::with_capacity(held as usize);
    for id in engine.customer_ids() {
        if let Some(state) = engine.export_customer(id) {
            writer.customer(id, &state);
            states.push((id.to_owned(), state));
        }
    }
    let bytes = writer.finish(store.id(0), 0, SystemTime::now());
    let export_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let size = store.write(0, &bytes).map_err(|e| e.to_string())?;
    let write_s = t.elapsed().as_secs_f64();
    println!(
        "checkpoint: {size} bytes ({:.0} bytes/customer); export {:.2} s, write+fsync {:.2} s",
        size as f64 / held as f64,
        export_s,
        write_s
    );
    drop(bytes);
    drop(engine);
    let t = Instant::now();
    let mut checkpoint = store.load(0).map_err(|r| format!("load: {r:?}"))?;
    let read_s = t.elapsed().as_secs_f64();
    let mut restored = Engine::new(catalog());
    loop {
        let n = checkpoint
            .next_batch(20_000, |id, state| {
                restored
                    .import_customer(id, state)
                    .map_err(|_| journey_kafka::checkpoint::Fallback::Undecodable)
            })
            .map_err(|r| format!("import: {r:?}"))?;
        if n == 0 {
            break;
        }
    }
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "restore from local checkpoint: {} customers in {:.2} s (read+verify {:.2} s) = {:.0} customers/s",
        restored.customer_count(),
        load_s,
        read_s,
        restored.customer_count() as f64 / load_s
    );
    drop(restored);
    let _ = std::fs::remove_dir_all(&dir);

    // 3. Changelog alone: the states produced to a one-partition compacted topic, then
    // replayed with the runtime's restorer.
    let prefix = format!("restore-bench-{}", std::process::id());
    let state_topic = format!("{prefix}.state");
    let events_topic = format!("{prefix}.events");
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    create_topics(
        &rt,
        &bootstrap,
        &[(&state_topic, true), (&events_topic, false)],
    )?;
    let t = Instant::now();
    produce(&bootstrap, &state_topic, &states)?;
    println!(
        "changelog: {} records produced in {:.1} s",
        states.len(),
        t.elapsed().as_secs_f64()
    );
    drop(states);
    let mut cfg = config();
    cfg.kafka.bootstrap_servers = bootstrap.clone();
    cfg.kafka.group_id = prefix.clone();
    cfg.kafka.state_topic = state_topic.clone();
    let cancel = CancellationToken::new();
    let mut restorer =
        Restorer::new(&restore_properties(&cfg.kafka), &state_topic).map_err(|e| e.to_string())?;
    let (low, end) = restorer.watermarks(0, &cancel).map_err(|e| e.to_string())?;
    let mut engine = Engine::new(catalog());
    let t = Instant::now();
    restorer.start(0, low, end).map_err(|e| e.to_string())?;
    let mut records = 0u64;
    while restorer.is_busy() {
        let step = restorer.step(
            20_000,
            Duration::from_millis(5),
            Instant::now() + Duration::from_millis(50),
            |_, key, value| Some(apply_record(&mut engine, key, value)),
        );
        records += step.applied.values().sum::<u64>();
    }
    let replay_s = t.elapsed().as_secs_f64();
    println!(
        "restore from the changelog alone: {records} records, {} customers in {:.2} s = {:.0} customers/s",
        engine.customer_count(),
        replay_s,
        engine.customer_count() as f64 / replay_s
    );
    drop(engine);

    // 4. kill -9 → ready, one instance holding the customers.
    match journeyd_bin() {
        Some(bin) => kill_nine(&bin, &bootstrap, &prefix)?,
        None => println!("kill -9 → ready: skipped, no journeyd binary beside this one"),
    }
    delete_topics(&rt, &bootstrap, &prefix);
    Ok(())
}

fn journeyd_bin() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let bin = me.parent()?.join("journeyd");
    bin.is_file().then_some(bin)
}

fn kill_nine(bin: &Path, bootstrap: &str, prefix: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("{prefix}-service"));
    std::fs::create_dir_all(dir.join("journeys")).map_err(|e| e.to_string())?;
    for (i, text) in JOURNEYS.iter().enumerate() {
        std::fs::write(dir.join("journeys").join(format!("bench{i}.yaml")), text)
            .map_err(|e| e.to_string())?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
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
            &format!("  transactional_id: {prefix}-0\n  client: {{}}"),
        );
    let config = dir.join("journeyd.yaml");
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let spawn = |n: u32| -> Result<Child, String> {
        let log =
            std::fs::File::create(dir.join(format!("run-{n}.log"))).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        Command::new(bin)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(log)
            .stderr(err)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())
    };
    let wait = |what: &str, timeout: Duration, pred: &dyn Fn() -> bool| -> Result<f64, String> {
        let t = Instant::now();
        while !pred() {
            if t.elapsed() > timeout {
                return Err(format!(
                    "{what}: not within {timeout:?} (logs in {})",
                    dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let ready = || matches!(http_get(port, "/readyz"), Some((200, _)));
    let checkpointed = || {
        http_get(port, "/metrics").is_some_and(|(_, body)| {
            body.lines()
                .any(|l| l.starts_with("journeyd_checkpoint_last_write_timestamp_seconds{"))
        })
    };
    let mut child = spawn(0)?;
    let first = wait("first start ready", Duration::from_secs(600), &ready)?;
    println!("first start (restore from the changelog in the service): ready after {first:.2} s");
    let c = wait("first checkpoint", Duration::from_secs(600), &checkpointed)?;
    println!("first checkpoint written {c:.2} s after ready");
    for round in 1..=3 {
        std::thread::sleep(Duration::from_secs(2));
        let _ = child.kill();
        let _ = child.wait();
        let killed = Instant::now();
        child = spawn(round)?;
        wait("ready after kill -9", Duration::from_secs(600), &ready)?;
        println!(
            "kill -9 #{round} → ready: {:.2} s (from the kill, restart included)",
            killed.elapsed().as_secs_f64()
        );
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    println!("service logs: {}", dir.display());
    Ok(())
}

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

fn create_topics(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    topics: &[(&str, bool)],
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| e.to_string())?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, compact)| {
            let t = NewTopic::new(name, 1, TopicReplication::Fixed(1));
            if *compact {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let results = rt
        .block_on(admin.create_topics(
            new.iter(),
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

fn delete_topics(rt: &tokio::runtime::Runtime, bootstrap: &str, prefix: &str) {
    let Ok(admin) = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return;
    };
    let names: Vec<String> = [
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
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _ = rt.block_on(admin.delete_topics(&refs, &AdminOptions::new()));
}

fn produce(bootstrap: &str, topic: &str, states: &[(String, Vec<u8>)]) -> Result<(), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .map_err(|e| e.to_string())?;
    for (i, (key, value)) in states.iter().enumerate() {
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
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| e.to_string())
}
