//! Black-box tests of recovery on a real Apache Kafka broker (see tests/support for the broker):
//! a restore longer than `max.poll.interval.ms` keeps the membership while the other partitions
//! process; a bad local checkpoint falls back to the changelog; `journeyd leave-group` hands a
//! stopped static member's partitions over at once; an unwritable `state_dir` fails the start.
//!
//! Every wait is bounded; nothing is retried or loosened: a failure is a bug.

use chrono::Utc;
use journey_engine::{parse_event, Catalog, Effects, Engine};
use journeyd_testkit::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(90);

/// The configuration of one instance with some `kafka.client` properties replaced.
fn config_with(s: &Scenario, instance: &str, port: u16, client: &[(&str, &str)]) -> PathBuf {
    let path = s.write_config(instance, port);
    let mut text = fs::read_to_string(&path).unwrap();
    for (key, value) in client {
        let line = format!("    {key}: \"{value}\"\n");
        let prefix = format!("    {key}: ");
        if let Some(start) = text.find(&prefix) {
            let end = start + text[start..].find('\n').unwrap() + 1;
            text.replace_range(start..end, &line);
        } else {
            let at = text.find("  client:\n").unwrap() + "  client:\n".len();
            text.insert_str(at, &line);
        }
    }
    fs::write(&path, text).unwrap();
    path
}

/// A customer's state as the engine writes it to the changelog: a profile with an e-mail.
fn customer_state(config_path: &Path) -> Vec<u8> {
    let config = journey_spec::load_config(config_path).unwrap();
    let journeys = journey_spec::load_journeys_dir(&config.journeys_dir, &config).unwrap();
    let mut engine = Engine::new(std::sync::Arc::new(Catalog::new(&config, journeys)));
    let event = json!({
        "event_id": "seed-1", "customer_id": "seed", "type": "profile_updated",
        "timestamp": Utc::now().to_rfc3339(),
        "properties": {"email": "seed@example.com", "tier": "standard", "timezone": "Europe/London"}
    });
    let event = parse_event(&serde_json::to_vec(&event).unwrap(), 65_536).unwrap();
    let mut effects = Effects::default();
    engine.handle(&event, Utc::now(), &mut effects);
    engine.export_customer("seed").unwrap()
}

/// How many changelog records this build imports in `seconds` (measured here, same profile as
/// the `journeyd` under test), so the restore below lasts well past `max.poll.interval.ms` on
/// any machine.
fn records_for(config_path: &Path, state: &[u8], seconds: f64) -> usize {
    let config = journey_spec::load_config(config_path).unwrap();
    let journeys = journey_spec::load_journeys_dir(&config.journeys_dir, &config).unwrap();
    let mut engine = Engine::new(std::sync::Arc::new(Catalog::new(&config, journeys)));
    let n = 20_000;
    let started = Instant::now();
    // As the service's restore does: the index sized up front for half the records.
    engine.reserve_customers(journey_kafka::restore::customers_expected(n as i64));
    for i in 0..n {
        engine
            .import_customer(&format!("calibrate-{i}"), state)
            .unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    ((rate * seconds) as usize).clamp(30_000, 3_000_000)
}

/// Writes `n` records (keys `bulk-<i>`, the same value) to one partition, batched.
fn bulk_produce(bootstrap: &str, topic: &str, partition: i32, n: usize, value: &[u8]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("create the bulk producer");
    for i in 0..n {
        let key = format!("bulk-{i}");
        loop {
            let record = BaseRecord::to(topic)
                .partition(partition)
                .key(&key)
                .payload(value);
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    _,
                )) => {
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("cannot produce to {topic}: {e}"),
            }
        }
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("flush the bulk records");
}

/// Partition 0's changelog holds enough customers that its restore lasts several times
/// `max.poll.interval.ms` (6 s here). While it restores, events of partition 1 are processed
/// (their commands are committed while /readyz still reports partition 0 restoring), and the
/// instance stays in the group: one assignment, no revocation, no lost assignment. The
/// instance runs one worker, which owns both partitions.
#[test]
fn a_restore_longer_than_max_poll_interval_keeps_the_membership() {
    let s = Scenario::new("restore_long", &["welcome"], 2);
    let port = free_port();
    let config = config_with(
        &s,
        "a",
        port,
        &[
            ("session.timeout.ms", "6000"),
            ("max.poll.interval.ms", "6000"),
        ],
    );
    // One worker: both partitions on the same stream thread, so that partition 1 processing
    // while partition 0 restores is the bounded restore steps at work, not a second thread.
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replacen("workers: 2\n", "workers: 1\n", 1)).unwrap();
    let state = customer_state(&config);
    let records = records_for(&config, &state, 15.0);
    eprintln!("filling changelog partition 0 with {records} customers");
    bulk_produce(&s.kafka.bootstrap, &s.state_topic(), 0, records, &state);

    let mut jd = s.spawn_run(&config, "run", port);
    // Wait until partition 0 is restoring (bounded), then send events to partition 1 only.
    let deadline = Instant::now() + READY;
    loop {
        let readyz = jd.get("/readyz");
        if let Some((503, body)) = &readyz {
            if body.starts_with("restoring partitions [0]") {
                break;
            }
        }
        assert!(
            jd.is_running() && Instant::now() < deadline,
            "partition 0 never reported restoring alone (last /readyz {readyz:?}):\n{}",
            tail(&jd.log, 40)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let events: Vec<Outgoing> = (0..5)
        .flat_map(|i| {
            let customer = format!("p1-c{i}");
            [
                event(
                    &format!("p1-p{i}"),
                    &customer,
                    "profile_updated",
                    Utc::now(),
                    json!({"email": format!("{customer}@example.com")}),
                ),
                event(
                    &format!("p1-e{i}"),
                    &customer,
                    "signed_up",
                    Utc::now(),
                    json!({"source": "restore-test"}),
                ),
            ]
        })
        .map(|e| {
            let mut o = Outgoing::event(&e);
            o.partition = Some(1);
            o
        })
        .collect();
    s.kafka.produce(&s.events_topic(), &events);
    let email = s.action_topic("email");
    let (commands, all) =
        s.kafka
            .read_committed_until(&[&email], Duration::from_secs(60), Duration::ZERO, |r| {
                r.iter()
                    .filter(|r| r.json()["template"] == "welcome_1")
                    .count()
                    >= 5
            });
    assert!(
        all,
        "partition 1 did not process during the restore: {commands:?}"
    );
    let readyz = jd.get("/readyz");
    assert!(
        matches!(&readyz, Some((503, body)) if body.starts_with("restoring partitions [0] (0: ")),
        "partition 1's commands are committed while partition 0 still restores: {readyz:?}"
    );

    jd.wait_ready(Duration::from_secs(300));
    let text = jd.metrics().expect("GET /metrics");
    let restore_seconds = metric_sum(&text, "journeyd_restore_seconds_sum", &[]);
    assert!(
        restore_seconds > 6.0,
        "the restore ({restore_seconds:.1} s in all) must outlast max.poll.interval.ms for this test to mean anything"
    );
    assert_eq!(
        metric_sum(&text, "journeyd_rebalances_total", &[("kind", "assigned")]),
        1.0,
        "one assignment, never re-joined:\n{}",
        tail(&jd.log, 40)
    );
    assert_eq!(
        metric_sum(&text, "journeyd_rebalances_total", &[("kind", "revoked")])
            + metric_sum(&text, "journeyd_rebalances_total", &[("kind", "lost")]),
        0.0,
        "no partition revoked or lost:\n{}",
        tail(&jd.log, 40)
    );
    assert_eq!(metric_sum(&text, "journeyd_partitions_assigned", &[]), 2.0);
    assert_eq!(metric_sum(&text, "journeyd_partitions_restoring", &[]), 0.0);
    // The customer gauges are refreshed every few seconds.
    let all_there = jd.wait_metrics(Duration::from_secs(30), |t| {
        metric_sum(t, "journeyd_customers", &[("partition", "0")]) >= records as f64
    });
    assert!(
        all_there.is_some(),
        "every customer of partition 0 restored"
    );
    let (status, clean) = jd.terminate(Duration::from_secs(60));
    assert!(clean, "journeyd did not stop on SIGTERM ({status})");
}

/// The checkpoint files of instance `a`'s state directory.
fn checkpoints(s: &Scenario) -> Vec<PathBuf> {
    let dir = s.state_dir("a").join(&s.prefix);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "checkpoint"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A stop writes a checkpoint per partition. One cut short and one replaced by another
/// partition's are both refused on restart (counted by reason), the state comes from the
/// changelog instead, and the pending timer fires exactly once.
#[test]
fn bad_checkpoints_fall_back_to_the_changelog() {
    let s = Scenario::new("restore_bad_ckpt", &["trial_nudge"], 2);
    let port = free_port();
    let config = s.write_config("a", port);
    let mut first = s.spawn_run(&config, "run-1", port);
    first.wait_ready(READY);
    let started = Instant::now();
    let customer = "ck-c1";
    s.produce_events(&[
        event(
            "ck-e1",
            customer,
            "profile_updated",
            Utc::now(),
            json!({"email": "ck@example.com"}),
        ),
        event(
            "ck-e2",
            customer,
            "trial_started",
            Utc::now(),
            json!({"plan": "pro"}),
        ),
    ]);
    let topic = s.decisions_topic();
    let (decisions, entered) =
        s.kafka
            .read_committed_until(&[&topic], Duration::from_secs(30), Duration::ZERO, |r| {
                r.iter().any(|r| r.json()["kind"] == "entered")
            });
    assert!(entered, "no `entered` decision: {decisions:?}");
    let (status, clean) = first.terminate(Duration::from_secs(30));
    assert!(clean, "journeyd did not stop on SIGTERM ({status})");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "stopped too late for the timer to be pending ({:?})",
        started.elapsed()
    );

    let files = checkpoints(&s);
    assert_eq!(files.len(), 2, "one checkpoint per partition: {files:?}");
    let whole = fs::read(&files[0]).unwrap();
    fs::write(&files[0], &whole[..whole.len() / 2]).unwrap();
    fs::write(&files[1], &whole).unwrap();

    let mut second = s.spawn_run(&config, "run-2", port);
    second.wait_ready(READY);
    let text = second.metrics().expect("GET /metrics");
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_checkpoint_fallbacks_total",
            &[("reason", "corrupt")]
        ),
        1.0,
        "{}",
        tail(&second.log, 30)
    );
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_checkpoint_fallbacks_total",
            &[("reason", "foreign")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(&text, "journeyd_restore_checkpoint_customers_total", &[]),
        0.0
    );
    assert!(metric_sum(&text, "journeyd_restore_records_total", &[]) >= 1.0);
    let log = fs::read_to_string(&second.log).unwrap();
    assert!(
        log.contains("local checkpoint not usable"),
        "the fallback is logged as a warning"
    );

    let commands = read_commands(&s, 1, Duration::from_secs(60));
    let nudges: Vec<&Value> = commands
        .iter()
        .filter(|c| c["customer_id"] == customer && c["template"] == "trial_nudge")
        .collect();
    assert_eq!(nudges.len(), 1, "exactly one nudge: {commands:?}");

    // The next stop writes valid checkpoints again, and the next start uses them.
    let (_, clean) = second.terminate(Duration::from_secs(30));
    assert!(clean);
    let mut third = s.spawn_run(&config, "run-3", port);
    third.wait_ready(READY);
    let text = third.metrics().expect("GET /metrics");
    assert_eq!(
        metric_sum(&text, "journeyd_checkpoint_fallbacks_total", &[]),
        0.0,
        "{}",
        tail(&third.log, 30)
    );
    assert!(metric_sum(&text, "journeyd_restore_checkpoint_customers_total", &[]) >= 1.0);
    let (_, clean) = third.terminate(Duration::from_secs(30));
    assert!(clean);
}

/// Every send command committed on the action topics, until `n` are read.
fn read_commands(s: &Scenario, n: usize, timeout: Duration) -> Vec<Value> {
    let topics = s.action_topics();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    s.kafka
        .read_committed_n(&refs, n, timeout, Duration::from_secs(2))
        .iter()
        .map(|r| r.json())
        .collect()
}

/// Waits until `jd` is ready with `n` partitions over its workers (the `worker <i>: partitions
/// [..]` lines of a 200 `/readyz`); whether it got there within `timeout`.
fn wait_owned(jd: &Journeyd, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some((200, body)) = jd.get("/readyz") {
            let owned: usize = body
                .lines()
                .filter_map(|line| line.split_once(": partitions ["))
                .map(|(_, list)| list.split(", ").filter(|p| *p != "]").count())
                .sum();
            if owned == n {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A static member stopped with SIGTERM keeps its partitions (session timeout 60 s here);
/// `journeyd leave-group` makes the other instance take them at once. Both instances run two
/// workers: leave-group removes both of the stopped instance's members.
#[test]
fn leave_group_hands_a_removed_instances_partitions_over_at_once() {
    let s = Scenario::new("restore_leave", &["welcome"], 4);
    let (port_a, port_b) = (free_port(), free_port());
    let session = [("session.timeout.ms", "60000")];
    let config_a = config_with(&s, "a", port_a, &session);
    let config_b = config_with(&s, "b", port_b, &session);
    let mut a = s.spawn_run(&config_a, "run-a", port_a);
    a.wait_ready(READY);
    let mut b = s.spawn_run(&config_b, "run-b", port_b);
    b.wait_ready(READY);
    let split = wait_owned(&b, 2, Duration::from_secs(60));
    assert!(
        split,
        "b took half of the partitions:\n{}",
        tail(&b.log, 30)
    );

    let (status, clean) = a.terminate(Duration::from_secs(30));
    assert!(clean, "a did not stop on SIGTERM ({status})");
    let log = fs::read_to_string(&a.log).unwrap();
    assert!(
        log.contains("staying a static member"),
        "{}",
        tail(&a.log, 20)
    );
    let handed_over_at = Instant::now();
    let out = Command::new(journeyd_bin())
        .args(["leave-group", "--config"])
        .arg(&config_a)
        .args(["--instance-id", &format!("{}-a", s.prefix)])
        .output()
        .expect("run journeyd leave-group");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "leave-group failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("left group"), "{stdout}");
    let all = wait_owned(&b, 4, Duration::from_secs(40));
    assert!(
        all,
        "b took every partition well before the 60 s session timeout ({:?} after leave-group):\n{}",
        handed_over_at.elapsed(),
        tail(&b.log, 30)
    );
    eprintln!(
        "partitions handed over {:?} after leave-group started",
        handed_over_at.elapsed()
    );
    b.wait_ready(READY);
    let (_, clean) = b.terminate(Duration::from_secs(30));
    assert!(clean);
}

/// A `state_dir` that cannot be created is a start-up error naming the path, before Kafka.
#[test]
fn an_unwritable_state_dir_fails_the_start_naming_the_path() {
    let s = Scenario::new("restore_state_dir", &["welcome"], 1);
    let port = free_port();
    let config = s.write_config("a", port);
    let blocker = s.dir.join("not-a-directory");
    fs::write(&blocker, b"a file").unwrap();
    let text = fs::read_to_string(&config).unwrap();
    let configured = "state_dir: \"state-a\"\n";
    assert!(
        text.contains(configured),
        "the fixture sets a state_dir per instance"
    );
    let text = text.replace(configured, &format!("state_dir: {}\n", blocker.display()));
    fs::write(&config, text).unwrap();
    let out = Command::new(journeyd_bin())
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run journeyd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "state_dir {} is not writable",
        blocker.join(&s.prefix).display()
    );
    assert!(
        stderr.contains(&expected) || stdout.contains(&expected),
        "expected `{expected}` in:\n{stderr}{stdout}"
    );
}
