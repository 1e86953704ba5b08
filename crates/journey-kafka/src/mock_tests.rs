//! The whole runtime against librdkafka's in-process mock cluster: events in, commands,
//! decisions, changelog entries and dead letters out, timers firing on the wall clock, and a
//! restart that restores customer state from the changelog.
//!
//! The mock cluster speaks the Kafka protocol (transactions included) but does not implement
//! CreateTopics, so the topics are created through its own API first. It also reads committed
//! group offsets back as unset, so a restarted service consumes the input again from the
//! beginning: the restored state then recognises the replayed events as duplicates, which is
//! what this test relies on (and what protects a real deployment if offsets were ever lost).
//!
//! Over 600 lines on purpose: the scenarios share the mock-cluster setup, the readers of the
//! output topics and the service start at the top of this file, and each is one story of the
//! runtime (the main flow and a restart, an abort, changelog batching, a broker outage, a
//! fenced member) read end to end.

use crate::http::Health;
use crate::metrics::Metrics;
use crate::{run_service, CancellationToken, ServiceOptions};
use journey_spec::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use std::path::Path;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 2;

const JOURNEY: &str = "\
id: welcome
version: 1
category: transactional
trigger:
  event: signed_up
steps:
  - id: hello
    send: { channels: [email], template: welcome_1 }
  - id: pause
    wait: 1s
  - id: again
    send: { channels: [email], template: welcome_2 }
";

fn config(bootstrap: &str, dir: &Path, http_port: u16) -> Config {
    let journeys = dir.join("journeys");
    std::fs::create_dir_all(&journeys).unwrap();
    std::fs::write(journeys.join("welcome.yaml"), JOURNEY).unwrap();
    let text = format!(
        "journeys_dir: journeys
kafka:
  bootstrap_servers: {bootstrap}
  group_id: journeyd-test
  input_topics: [events]
  transactional_id: journeyd-test-0
  commit_interval_ms: 50
  # The mock cluster holds a group's rebalance until a member that stopped heartbeating times
  # out, also one replaced under its group.instance.id: 6 s instead of 45 s, as the
  # real-broker tests do.
  client:
    session.timeout.ms: \"6000\"
    heartbeat.interval.ms: \"1000\"
metrics:
  listen: 127.0.0.1:{http_port}
inspect:
  enabled: true
  token: s3cret
channels:
  email: {{ topic: actions.email, address: email, consent: opt_out, quiet_hours: false }}
"
    );
    let path = dir.join("journeyd.yaml");
    std::fs::write(&path, &text).unwrap();
    journey_spec::load_config(&path).expect("test configuration is valid")
}

/// A record read back from an output topic.
#[derive(Debug, Clone)]
struct Read {
    partition: i32,
    key: String,
    payload: Option<String>,
    headers: Vec<(String, String)>,
}

/// Logs (with `RUST_LOG`), an in-process cluster with the service's topics, a journeys
/// directory and a configuration pointing at both.
fn setup() -> (
    MockCluster<'static, DefaultProducerContext>,
    String,
    tempfile::TempDir,
    Config,
) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mock = MockCluster::new(1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    for topic in [
        "events",
        "actions.email",
        "journey.decisions",
        "events.dead_letter",
        "journeyd.state",
    ] {
        mock.create_topic(topic, PARTITIONS, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config(&bootstrap, dir.path(), http_port);
    (mock, bootstrap, dir, config)
}

/// Reads every committed record of `topic` (all partitions) until `enough` holds or `timeout`.
fn read_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    enough: impl Fn(&[Read]) -> bool,
) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline && !enough(&out) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Read {
                partition: m.partition(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                payload: m.payload().map(|p| String::from_utf8_lossy(p).into_owned()),
                headers,
            });
        }
    }
    out
}

fn produce(bootstrap: &str, records: &[(&str, &str)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (key, payload) in records {
        producer
            .send(BaseRecord::to("events").key(*key).payload(*payload))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn json(r: &Read) -> serde_json::Value {
    serde_json::from_str(r.payload.as_deref().unwrap()).unwrap()
}

async fn start(
    config: Config,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), crate::RuntimeError>>,
    std::sync::Arc<Health>,
) {
    let shutdown = CancellationToken::new();
    let health = Health::new();
    let opts = ServiceOptions {
        config,
        config_path: None,
        metrics: Metrics::new(),
        health: health.clone(),
    };
    let handle = tokio::spawn(run_service(opts, shutdown.clone()));
    (shutdown, handle, health)
}

/// Waits (bounded) until `health` is ready; whether it got there.
fn ready_within(health: &Health, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !health.is_ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    health.is_ready()
}

fn event(id: &str, customer: &str, kind: &str, properties: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","customer_id":"{customer}","type":"{kind}","timestamp":"2026-11-23T10:00:00Z","properties":{properties}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_commands_decisions_changelog_and_dead_letters_exactly_once() {
    // `RUST_LOG=journey_kafka=debug cargo test -p journey-kafka mock_tests -- --nocapture`
    // shows the runtime's log while the test runs.
    let (_mock, bootstrap, _dir, config) = setup();
    let listen = config.metrics.listen.clone();

    let profile = event(
        "e-1",
        "c-1",
        "profile_updated",
        r#"{"email":"ada@example.com"}"#,
    );
    let signup = event("e-2", "c-1", "signed_up", "{}");
    produce(
        &bootstrap,
        &[
            ("c-1", &profile),
            ("c-1", &signup),
            ("c-2", "this is not json"),
        ],
    );

    let (shutdown, service, health) = start(config.clone()).await;
    let b = bootstrap.clone();
    let commands = tokio::task::spawn_blocking(move || {
        read_until(&b, "actions.email", Duration::from_secs(60), |r| {
            r.len() >= 2
        })
    })
    .await
    .unwrap();
    // Ready once every worker joined: one may process its partition while another still joins.
    assert!(
        ready_within(&health, Duration::from_secs(60)),
        "{:?}",
        health.readiness()
    );
    assert_eq!(commands.len(), 2, "the send and the send after the 1s wait");
    let templates: Vec<String> = commands
        .iter()
        .map(|r| json(r)["template"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(templates, ["welcome_1", "welcome_2"]);
    assert!(commands.iter().all(|r| r.key == "c-1"));
    assert_eq!(json(&commands[0])["address"], "ada@example.com");

    let b = bootstrap.clone();
    let dead = tokio::task::spawn_blocking(move || {
        read_until(&b, "events.dead_letter", Duration::from_secs(10), |r| {
            !r.is_empty()
        })
    })
    .await
    .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, "c-2");
    assert_eq!(dead[0].payload.as_deref(), Some("this is not json"));
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert!(!header("error").unwrap().is_empty());
    assert_eq!(header("source_topic").as_deref(), Some("events"));
    assert_eq!(
        header("source_offset").as_deref(),
        Some(dead[0].headers[3].1.as_str())
    );
    assert!(header("source_partition").is_some());

    let b = bootstrap.clone();
    let state = tokio::task::spawn_blocking(move || {
        read_until(&b, "journeyd.state", Duration::from_secs(5), |r| {
            !r.is_empty()
        })
    })
    .await
    .unwrap();
    assert!(!state.is_empty());
    assert!(state.iter().all(|r| r.key == "c-1"));

    // The inspection endpoint asks the processing thread, which owns the engines.
    let http = reqwest::Client::new();
    let url = |id: &str| format!("http://{listen}/customers/{id}");
    let known = http
        .get(url("c-1"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), 200);
    let view: serde_json::Value = known.json().await.unwrap();
    assert_eq!(view["customer_id"], "c-1", "{view}");
    let unknown = http
        .get(url("nobody"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    shutdown.cancel();
    service.await.unwrap().expect("graceful shutdown");

    // Restart: state comes back from the changelog. The mock cluster forgets committed
    // offsets, so the input is consumed again from the start; the restored customer knows
    // the replayed events and sends nothing twice.
    let signup_again = event("e-3", "c-1", "signed_up", "{}");
    produce(&bootstrap, &[("c-1", &signup_again)]);
    // A new group id: the mock coordinator only lets a group rebalance after the old member's
    // session timeout, which would make this test slow without testing anything more (the
    // mock keeps no group offsets anyway). The transactional id stays: the new producer fences
    // the old one, as a restarted pod would.
    let mut config = config;
    config.kafka.group_id = "journeyd-test-restart".into();
    let (shutdown, service, _health) = start(config).await;
    let b = bootstrap.clone();
    let decisions = tokio::task::spawn_blocking(move || {
        read_until(&b, "journey.decisions", Duration::from_secs(60), |r| {
            r.iter().any(|d| json(d)["event_id"] == "e-3")
        })
    })
    .await
    .unwrap();
    shutdown.cancel();
    service.await.unwrap().expect("graceful shutdown");

    let kinds: Vec<(String, String)> = decisions
        .iter()
        .map(|d| {
            let v = json(d);
            (
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["event_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("entered".into(), "e-2".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("duplicate_event".into(), "e-2".into())),
        "replayed event recognised after restore: {kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(k, e)| k == "entry_suppressed" && e == "e-3"),
        "re-entry refused because the restored state remembers the first entry: {kinds:?}"
    );
    let b = bootstrap.clone();
    let commands = tokio::task::spawn_blocking(move || {
        read_until(&b, "actions.email", Duration::from_secs(2), |_| false)
    })
    .await
    .unwrap();
    assert_eq!(commands.len(), 2, "no command was produced twice");
    assert!(commands
        .iter()
        .all(|c| c.partition == commands[0].partition));
}

/// Sum of a counter family in the registry.
fn counter_total(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().value()))
        .sum()
}

/// The recovery path of an aborted transaction: abort, rewind, restore, carry on. The mock
/// cluster keeps no record of aborted transactions, so its read_committed readers (the restore
/// consumer included) see aborted records too; whether outputs are duplicated can therefore
/// only be checked against a real broker. What is checked here: the failure is classified as
/// abortable (not fatal), counted, recovered from in place, and processing continues to a
/// graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_transaction_is_recovered_in_place() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (mock, bootstrap, _dir, config) = setup();
    let profile = event(
        "e-1",
        "c-7",
        "profile_updated",
        r#"{"email":"c7@example.com"}"#,
    );
    let signup = event("e-2", "c-7", "signed_up", "{}");
    produce(&bootstrap, &[("c-7", &profile), ("c-7", &signup)]);

    // The service's first produce request is refused permanently: its transaction can only be
    // aborted.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let opts = ServiceOptions {
        config,
        config_path: None,
        metrics: metrics.clone(),
        health: Health::new(),
    };
    let service = tokio::spawn(run_service(opts, shutdown.clone()));
    // The timer's send comes from a transaction after the recovery.
    let b = bootstrap.clone();
    let commands = tokio::task::spawn_blocking(move || {
        read_until(&b, "actions.email", Duration::from_secs(60), |r| {
            r.iter().any(|c| json(c)["template"] == "welcome_2")
        })
    })
    .await
    .unwrap();
    let aborts = counter_total(&metrics, "journeyd_transaction_aborts_total");
    let recreated = counter_total(&metrics, "journeyd_producer_recreated_total");
    shutdown.cancel();
    service
        .await
        .unwrap()
        .expect("graceful shutdown after recovery");
    assert!(aborts >= 1.0, "the injected failure aborted a transaction");
    // An abortable error keeps the producer; only aborts that keep coming back (the mock
    // sometimes refuses the producer's sequence numbers after the injected failure) rebuild it.
    assert!(
        recreated == 0.0 || aborts >= f64::from(crate::recovery::ABORTS_BEFORE_REBUILD),
        "the producer was rebuilt after only {aborts} aborts"
    );
    assert!(
        commands.iter().any(|c| json(c)["template"] == "welcome_2"),
        "processing continued after the recovery: {commands:?}"
    );
}

/// A customer with several events in one transaction gets one changelog entry, written at
/// commit, which holds the effects of all of them: after a restart from that entry alone,
/// every replayed event is recognised as already processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_changelog_entry_per_customer_and_transaction_holds_all_its_events() {
    let (_mock, bootstrap, _dir, mut config) = setup();
    // Long enough for the whole backlog to be processed inside the first transaction.
    config.kafka.commit_interval_ms = 3000;
    let mut events = vec![event(
        "v-0",
        "c-5",
        "profile_updated",
        r#"{"email":"c5@example.com"}"#,
    )];
    for i in 1..6 {
        events.push(event(&format!("v-{i}"), "c-5", "page_viewed", "{}"));
    }
    let records: Vec<(&str, &str)> = events.iter().map(|e| ("c-5", e.as_str())).collect();
    produce(&bootstrap, &records);

    let (shutdown, service, _health) = start(config.clone()).await;
    let b = bootstrap.clone();
    let state = tokio::task::spawn_blocking(move || {
        read_until(&b, "journeyd.state", Duration::from_secs(30), |r| {
            !r.is_empty()
        })
    })
    .await
    .unwrap();
    assert!(!state.is_empty(), "the transaction was committed");
    shutdown.cancel();
    service.await.unwrap().expect("graceful shutdown");
    // Everything the first run wrote to the changelog (it committed once, then nothing more).
    let b = bootstrap.clone();
    let state = tokio::task::spawn_blocking(move || {
        read_until(&b, "journeyd.state", Duration::from_secs(2), |_| false)
    })
    .await
    .unwrap();
    assert_eq!(state.len(), 1, "one entry for six events: {state:?}");
    assert_eq!(state[0].key, "c-5");
    assert!(state[0].payload.is_some());

    // Restart from that entry: the mock forgets group offsets, so all six events come again.
    let mut config = config;
    config.kafka.group_id = "journeyd-test-changelog".into();
    config.kafka.commit_interval_ms = 50;
    let (shutdown, service, _health) = start(config).await;
    let b = bootstrap.clone();
    let decisions = tokio::task::spawn_blocking(move || {
        read_until(&b, "journey.decisions", Duration::from_secs(30), |r| {
            r.iter()
                .filter(|d| json(d)["kind"] == "duplicate_event")
                .count()
                >= 6
        })
    })
    .await
    .unwrap();
    shutdown.cancel();
    service.await.unwrap().expect("graceful shutdown");
    let duplicates: Vec<String> = decisions
        .iter()
        .filter(|d| json(d)["kind"] == "duplicate_event")
        .map(|d| json(d)["event_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..6).map(|i| format!("v-{i}")).collect();
    assert_eq!(duplicates, expected, "every replayed event was known");
}

/// "Unknown member" on `send_offsets_to_transaction` (the group moved on from the member id in
/// the transaction's group metadata, e.g. after a session timeout) is abortable: the
/// transaction is aborted, the partitions rewound and restored, and processing goes on; it is
/// not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_member_on_send_offsets_aborts_and_recovers() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (mock, bootstrap, _dir, config) = setup();
    let profile = event(
        "e-1",
        "c-9",
        "profile_updated",
        r#"{"email":"c9@example.com"}"#,
    );
    let signup = event("e-2", "c-9", "signed_up", "{}");
    produce(&bootstrap, &[("c-9", &profile), ("c-9", &signup)]);
    mock.request_errors(
        RDKafkaApiKey::TxnOffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID],
    );
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let opts = ServiceOptions {
        config,
        config_path: None,
        metrics: metrics.clone(),
        health: Health::new(),
    };
    let service = tokio::spawn(run_service(opts, shutdown.clone()));
    let b = bootstrap.clone();
    let commands = tokio::task::spawn_blocking(move || {
        read_until(&b, "actions.email", Duration::from_secs(60), |r| {
            r.iter().any(|c| json(c)["template"] == "welcome_2")
        })
    })
    .await
    .unwrap();
    let send_offsets_aborts: f64 = metrics
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "journeyd_transaction_aborts_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "reason" && l.value() == "send_offsets")
        })
        .map(|m| m.get_counter().value())
        .sum();
    shutdown.cancel();
    service
        .await
        .unwrap()
        .expect("graceful shutdown after recovery");
    assert!(
        send_offsets_aborts >= 1.0,
        "the refused offsets aborted the transaction"
    );
    assert!(
        commands.iter().any(|c| json(c)["template"] == "welcome_2"),
        "processing continued after the recovery: {commands:?}"
    );
}

/// With the (only) broker down, readiness names the broker; once it is up again the service is
/// ready by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_is_reported_by_readiness_and_recovered_from() {
    let (mock, bootstrap, _dir, config) = setup();
    let signup = event("e-1", "c-3", "signed_up", "{}");
    produce(&bootstrap, &[("c-3", &signup)]);
    let (shutdown, service, health) = start(config).await;
    let wait_for = |want: &dyn Fn(&Result<(), String>) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = health.readiness();
            if want(&now) || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(wait_for(&|r| r.is_ok()), Ok(()));
    mock.broker_down(1).unwrap();
    let down = wait_for(&|r| r.as_ref().is_err_and(|e| e.contains("broker")));
    assert_eq!(down, Err("broker unreachable".to_string()));
    mock.broker_up(1).unwrap();
    assert_eq!(wait_for(&|r| r.is_ok()), Ok(()));
    shutdown.cancel();
    service.await.unwrap().expect("graceful shutdown");
}

/// A fatal consumer error (the broker answers a heartbeat with FENCED_INSTANCE_ID, as after a
/// broker outage longer than the session timeout) ends the session: it is rebuilt, counted, its
/// partitions restored, and processing goes on; the instance is never left running without a
/// usable consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_static_member_rebuilds_its_session_and_goes_on() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (mock, bootstrap, _dir, config) = setup();
    let profile = event(
        "e-1",
        "c-5",
        "profile_updated",
        r#"{"email":"c5@example.com"}"#,
    );
    produce(&bootstrap, &[("c-5", &profile)]);
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let health = Health::new();
    let opts = ServiceOptions {
        config,
        config_path: None,
        metrics: metrics.clone(),
        health: health.clone(),
    };
    let service = tokio::spawn(run_service(opts, shutdown.clone()));
    let restarted = || counter_total(&metrics, "journeyd_kafka_sessions_restarted_total");
    let wait_until = |done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        done()
    };
    assert!(
        wait_until(&|| health.is_ready()),
        "{:?}",
        health.readiness()
    );
    mock.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID],
    );
    assert!(
        wait_until(&|| restarted() >= 1.0),
        "the fenced consumer's session was not rebuilt: {:?}",
        health.readiness()
    );
    // The new session processes events: the signup's two sends arrive.
    let signup = event("e-2", "c-5", "signed_up", "{}");
    produce(&bootstrap, &[("c-5", &signup)]);
    let b = bootstrap.clone();
    let commands = tokio::task::spawn_blocking(move || {
        read_until(&b, "actions.email", Duration::from_secs(60), |r| {
            r.iter().any(|c| json(c)["template"] == "welcome_2")
        })
    })
    .await
    .unwrap();
    assert!(
        wait_until(&|| health.is_ready()),
        "{:?}",
        health.readiness()
    );
    shutdown.cancel();
    service
        .await
        .unwrap()
        .expect("graceful shutdown after the session was rebuilt");
    assert!(
        commands.iter().any(|c| json(c)["template"] == "welcome_2"),
        "processing continued in the new session: {commands:?}"
    );
    assert_eq!(
        metrics
            .registry
            .gather()
            .iter()
            .filter(|f| f.name() == "journeyd_kafka_sessions_restarted_total")
            .flat_map(|f| f.get_metric().iter())
            .flat_map(|m| m.get_label().iter())
            .filter(|l| l.name() == "reason")
            .map(|l| l.value().to_owned())
            .collect::<Vec<_>>(),
        ["consumer_fatal"]
    );
}
