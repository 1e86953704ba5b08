//! End-to-end tests of `journeyd run` against a real Apache Kafka broker (see the `journeyd-testkit`
//! crate for how the broker is found or started). Each test drives the binary from the outside: it creates
//! its own topics, writes a configuration, produces events, starts, kills and restarts
//! processes, and reads the action, decision and dead-letter topics back with a read_committed
//! consumer. Expected commands come from `journeyd simulate` over the same events, so the
//! Kafka runtime is held to the engine's behaviour under a virtual clock.
//!
//! The journeys (tests/fixtures/kafka/journeys) wait for seconds, not hours, so their timers
//! fire during the test. Every wait has a bound; a test never hangs.

use chrono::Utc;
use journeyd_testkit::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

fn read_decisions(s: &Scenario, expected: usize, timeout: Duration) -> Vec<Value> {
    let topic = s.decisions_topic();
    s.kafka
        .read_committed_n(&[&topic], expected, timeout, Duration::from_secs(3))
        .iter()
        .map(Record::json)
        .collect()
}

fn count_by<'a>(values: impl Iterator<Item = &'a Value>, field: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in values {
        let key = v[field].as_str().unwrap_or_default().to_string();
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

const READY: Duration = Duration::from_secs(90);

/// Each worker's partitions as `/readyz` lists them once ready (`worker <i>: partitions
/// [..]` lines), waiting until every one of the `workers` owns at least one: a worker that
/// joined last may get its share in a second, cooperative rebalance round.
fn partitions_per_worker(jd: &Journeyd, workers: usize, timeout: Duration) -> Vec<Vec<i32>> {
    let deadline = Instant::now() + timeout;
    loop {
        let readyz = jd.get("/readyz");
        if let Some((200, body)) = &readyz {
            let owned: Vec<Vec<i32>> = body
                .lines()
                .filter_map(|line| line.split_once(": partitions ["))
                .map(|(_, list)| {
                    list.trim_end_matches(']')
                        .split(", ")
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().expect("a partition number"))
                        .collect()
                })
                .collect();
            if owned.len() == workers && owned.iter().all(|ps: &Vec<i32>| !ps.is_empty()) {
                return owned;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the partitions were not spread over the {workers} workers within {timeout:?} (last /readyz {readyz:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (a) + (g): the commands and decisions of `journeyd run` equal `journeyd simulate`'s over the
/// same events, and the metrics count what happened.
#[test]
fn run_matches_simulate_and_metrics_count_it() {
    let s = Scenario::new(
        "e2e_equal",
        &["welcome", "cart_reminder", "shipping_delay", "flash_sale"],
        3,
    );
    let port = free_port();
    let config = s.write_config("a", port);
    let events = flatten(&story("eq", 30, 7, true, Utc::now()));
    let (want_commands, want_decisions) = s.simulate(&config, "all", &events, far_enough(&events));
    assert!(
        want_commands.len() >= 30,
        "the story should produce commands: {want_commands:?}"
    );
    let capped = want_decisions
        .iter()
        .filter(|d| d["reason"] == "frequency_cap:sms_daily")
        .count();
    assert!(
        capped >= 1,
        "the story should hit the sms cap at least once"
    );
    assert!(
        want_decisions.iter().any(|d| d["kind"] == "goal"),
        "the story should take someone out of the cart journey by its goal"
    );

    let mut jd = s.spawn_run(&config, "run", port);
    jd.wait_ready(READY);
    // The two workers of the instance (tests/fixtures/kafka/journeyd.yaml.in) share the three
    // partitions: each owns some, none is owned twice.
    let owned = partitions_per_worker(&jd, 2, READY);
    let mut all: Vec<i32> = owned.concat();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2], "partitions per worker: {owned:?}");
    let text = jd.metrics().expect("GET /metrics");
    for (worker, partitions) in owned.iter().enumerate() {
        assert_eq!(
            metric_sum(
                &text,
                "journeyd_partitions_assigned",
                &[("worker", &worker.to_string())]
            ),
            partitions.len() as f64,
            "journeyd_partitions_assigned of worker {worker}"
        );
    }
    s.produce_events(&events);

    let got = read_commands(&s, want_commands.len(), Duration::from_secs(90));
    assert_same_commands(&got, &want_commands, "run vs simulate");

    let got_decisions = read_decisions(&s, want_decisions.len(), Duration::from_secs(30));
    assert_eq!(
        multiset(&got_decisions),
        multiset(&want_decisions),
        "decisions of run (left) and simulate (right), without their clock fields"
    );

    // (g) The counters tell the same story as the topics.
    let text = jd.metrics().expect("GET /metrics");
    for channel in CHANNELS {
        let want = want_commands
            .iter()
            .filter(|c| c["channel"] == channel)
            .count();
        assert_eq!(
            metric_sum(&text, "journeyd_commands_total", &[("channel", channel)]),
            want as f64,
            "journeyd_commands_total{{channel={channel}}}"
        );
    }
    for (kind, n) in count_by(want_decisions.iter(), "kind") {
        assert_eq!(
            metric_sum(&text, "journeyd_decisions_total", &[("kind", &kind)]),
            n as f64,
            "journeyd_decisions_total{{kind={kind}}}"
        );
    }
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_decisions_total",
            &[
                ("kind", "skipped_channel"),
                ("reason", "frequency_cap:sms_daily")
            ]
        ),
        capped as f64,
        "each capped send is one frequency_cap decision"
    );
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_events_consumed_total",
            &[("outcome", "processed")]
        ),
        events.len() as f64,
        "every event processed once"
    );
    assert_eq!(
        metric_sum(&text, "journeyd_dead_letters_total", &[]),
        0.0,
        "no dead letters"
    );
    let goals = want_decisions
        .iter()
        .filter(|d| d["kind"] == "goal")
        .count();
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_journey_goals_total",
            &[("journey", "cart_reminder")]
        ),
        goals as f64
    );
    assert_eq!(jd.get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(jd.get("/readyz").map(|r| r.0), Some(200));

    let (status, clean) = jd.terminate(Duration::from_secs(30));
    assert!(
        clean,
        "journeyd did not stop on SIGTERM within 30s ({status})"
    );
}

/// (b) Bad records go to the dead-letter topic unchanged with their provenance headers, and the
/// partition keeps processing the good events after them.
#[test]
fn bad_records_are_dead_lettered_and_the_partition_goes_on() {
    let s = Scenario::new("e2e_dead_letter", &["welcome"], 1);
    let port = free_port();
    let config = s.write_config("a", port);
    let mut jd = s.spawn_run(&config, "run", port);
    jd.wait_ready(READY);

    let now = Utc::now();
    let customer = "dl-c1";
    let good = |id: &str, kind: &str, props: Value| {
        serde_json::to_vec(&event(id, customer, kind, now, props)).unwrap()
    };
    let too_large = serde_json::to_vec(&event(
        "dl-e-big",
        customer,
        "signed_up",
        now,
        json!({"padding": "x".repeat(70 * 1024)}),
    ))
    .unwrap();
    let missing_customer = serde_json::to_vec(&json!({
        "event_id": "dl-e-nocust", "type": "signed_up",
        "timestamp": now.to_rfc3339(), "properties": {}
    }))
    .unwrap();
    let payloads: Vec<(Vec<u8>, Option<&str>)> = vec![
        (
            good(
                "dl-e1",
                "profile_updated",
                json!({"email": "dl@example.com"}),
            ),
            None,
        ),
        (b"this is not json {".to_vec(), Some("not_json")),
        (missing_customer, Some("missing_field")),
        (b"[1, 2, 3]".to_vec(), Some("not_object")),
        (too_large, Some("too_large")),
        (good("dl-e2", "signed_up", json!({"source": "ad"})), None),
    ];
    let records: Vec<Outgoing> = payloads
        .iter()
        .map(|(p, _)| Outgoing {
            key: customer.to_string(),
            payload: p.clone(),
            partition: Some(0),
        })
        .collect();
    let delivered = s.kafka.produce(&s.events_topic(), &records);

    // The good event after the bad ones is processed: the welcome e-mail goes out.
    let commands = read_commands(&s, 1, Duration::from_secs(60));
    assert!(
        commands
            .iter()
            .any(|c| c["customer_id"] == customer && c["template"] == "welcome_1"),
        "the event after the bad records was not processed: {commands:?}"
    );

    let dl_topic = s.dead_letter_topic();
    let bad: Vec<usize> = (0..payloads.len())
        .filter(|i| payloads[*i].1.is_some())
        .collect();
    let dead = s.kafka.read_committed_n(
        &[&dl_topic],
        bad.len(),
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    assert_eq!(dead.len(), bad.len(), "dead letters: {dead:?}");
    for (record, i) in dead.iter().zip(&bad) {
        assert_eq!(
            record.payload.as_deref(),
            Some(payloads[*i].0.as_slice()),
            "dead letter {i} is the record unchanged"
        );
        assert!(
            !record
                .headers
                .get("error")
                .map(String::is_empty)
                .unwrap_or(true),
            "dead letter {i} has a readable error header: {:?}",
            record.headers
        );
        assert_eq!(record.headers.get("source_topic"), Some(&s.events_topic()));
        assert_eq!(
            record.headers.get("source_partition"),
            Some(&delivered[*i].partition.to_string())
        );
        assert_eq!(
            record.headers.get("source_offset"),
            Some(&delivered[*i].offset.to_string()),
            "dead letter {i}: {:?}",
            record.headers
        );
    }

    let text = jd
        .wait_metrics(Duration::from_secs(10), |t| {
            metric_sum(t, "journeyd_dead_letters_total", &[]) >= bad.len() as f64
        })
        .expect("dead letters counted in /metrics");
    for (_, reason) in &payloads {
        if let Some(reason) = reason {
            assert_eq!(
                metric_sum(&text, "journeyd_dead_letters_total", &[("reason", reason)]),
                1.0,
                "journeyd_dead_letters_total{{reason={reason}}}"
            );
        }
    }
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_events_consumed_total",
            &[("outcome", "dead_letter")]
        ),
        bad.len() as f64
    );
    assert!(jd.is_running(), "bad input must not stop the engine");
}

/// (c) Crashes at random moments neither lose nor duplicate a command: while events stream in,
/// the engine is killed with SIGKILL several times, each time after it got its partitions and
/// worked for a random while, and restarted; finally a read_committed reader of the action
/// topics sees each simulated command exactly once.
#[test]
fn kill_nine_and_restart_is_exactly_once() {
    const CRASHES: usize = 4;
    let seed = seed_from_env();
    eprintln!("kill_nine_and_restart_is_exactly_once: seed {seed} (JOURNEYD_TEST_SEED)");
    let mut rng = Rng::new(seed);
    let s = Scenario::new(
        "e2e_crash",
        &["welcome", "cart_reminder", "shipping_delay", "flash_sale"],
        3,
    );
    let port = free_port();
    let config = s.write_config("a", port);
    let stream = interleave(&story("cr", 48, seed, false, Utc::now()), Utc::now());
    let (want, _) = s.simulate(&config, "all", &stream, far_enough(&stream));

    let mut jd = s.spawn_run(&config, "run-0", port);
    jd.wait_ready(READY);
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| trickle(&s, &stream, Duration::from_secs(25)));
        for round in 1..=CRASHES {
            // Work for a random while, then crash in the middle of whatever is going on
            // (a transaction open, timers due, a commit in flight).
            let pause = rng.range(200, 2500);
            std::thread::sleep(Duration::from_millis(pause));
            eprintln!("crash {round}: SIGKILL after {pause} ms of work");
            jd.kill9();
            jd = s.spawn_run(&config, &format!("run-{round}"), port);
            // Ready means: partitions assigned and restored from the changelog.
            jd.wait_ready(READY);
        }
        producer.join().expect("the producer thread");
    });
    let got = read_commands(&s, want.len(), Duration::from_secs(120));
    assert_same_commands(
        &got,
        &want,
        &format!("after {CRASHES} crashes (seed {seed})"),
    );
}

/// (d) A second instance joins mid-stream and the first leaves: every command exactly once.
#[test]
fn rebalance_between_two_instances_is_exactly_once() {
    let s = Scenario::new(
        "e2e_rebalance",
        &["welcome", "cart_reminder", "shipping_delay", "flash_sale"],
        4,
    );
    let (port_a, port_b) = (free_port(), free_port());
    let config_a = s.write_config("a", port_a);
    let config_b = s.write_config("b", port_b);
    let stream = interleave(&story("rb", 60, 11, false, Utc::now()), Utc::now());
    let (want, _) = s.simulate(&config_a, "all", &stream, far_enough(&stream));

    let mut a = s.spawn_run(&config_a, "run-a", port_a);
    a.wait_ready(READY);
    let mut b = std::thread::scope(|scope| {
        let producer = scope.spawn(|| trickle(&s, &stream, Duration::from_secs(15)));
        std::thread::sleep(Duration::from_secs(3));
        let mut b = s.spawn_run(&config_b, "run-b", port_b);
        b.wait_ready(READY);
        std::thread::sleep(Duration::from_secs(3));
        let (status, clean) = a.terminate(Duration::from_secs(60));
        assert!(clean, "instance a did not leave on SIGTERM ({status})");
        producer.join().expect("the producer thread");
        b
    });

    let got = read_commands(&s, want.len(), Duration::from_secs(120));
    assert_same_commands(&got, &want, "two instances with a rebalance");
    assert!(b.is_running(), "instance b stopped");
    b.wait_ready(Duration::from_secs(30));
    let text = b.metrics().expect("GET /metrics of instance b");
    assert!(
        metric_sum(&text, "journeyd_restore_records_total", &[])
            + metric_sum(&text, "journeyd_restore_checkpoint_customers_total", &[])
            >= 1.0,
        "instance b restored the partitions it took over (local checkpoint and changelog)"
    );
}

/// Writes `content` as `<journeys_dir>/<name>` in one step (rename), so the watcher never reads
/// half a file.
fn replace_journey(s: &Scenario, name: &str, content: &str) {
    let tmp = s.dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, content).expect("write the new journey");
    fs::rename(&tmp, s.journeys_dir().join(name)).expect("move the new journey in place");
}

/// Sends one `probe` event for a new customer and returns the command it produced.
fn probe(s: &Scenario, customer: &str) -> Value {
    s.produce_events(&[
        event(
            &format!("{customer}-e1"),
            customer,
            "profile_updated",
            Utc::now(),
            json!({"email": format!("{customer}@example.com")}),
        ),
        event(
            &format!("{customer}-e2"),
            customer,
            "probe",
            Utc::now(),
            json!({}),
        ),
    ]);
    let topic = s.action_topic("email");
    let (records, found) =
        s.kafka
            .read_committed_until(&[&topic], Duration::from_secs(60), Duration::ZERO, |r| {
                r.iter().any(|r| r.key_str() == customer)
            });
    assert!(found, "no command for {customer}: {records:?}");
    records
        .iter()
        .find(|r| r.key_str() == customer)
        .map(Record::json)
        .expect("found above")
}

/// (e) A valid journey written into the journeys directory is picked up without a restart; an
/// invalid one is rejected and the running version stays.
#[test]
fn hot_reload_accepts_valid_and_rejects_invalid_journeys() {
    let s = Scenario::new("e2e_reload", &["reload_probe"], 1);
    let port = free_port();
    let config = s.write_config("a", port);
    let mut jd = s.spawn_run(&config, "run", port);
    jd.wait_ready(READY);

    let first = probe(&s, "rl-c1");
    assert_eq!(first["template"], "probe_v1");
    assert_eq!(first["journey_version"], 1);

    let metrics = jd.metrics().expect("GET /metrics");
    let ok_before = metric_sum(
        &metrics,
        "journeyd_reloads_total",
        &[("outcome", "success")],
    );
    let failed_before = metric_sum(
        &metrics,
        "journeyd_reloads_total",
        &[("outcome", "failure")],
    );

    let v2 = fs::read_to_string(fixtures().join("reload/reload_probe_v2.yaml")).unwrap();
    replace_journey(&s, "reload_probe.yaml", &v2);
    jd.wait_metrics(Duration::from_secs(30), |t| {
        metric_sum(t, "journeyd_reloads_total", &[("outcome", "success")]) > ok_before
    })
    .expect("journeyd_reloads_total{outcome=\"success\"} did not move after a valid change");
    let second = probe(&s, "rl-c2");
    assert_eq!(
        second["template"], "probe_v2",
        "the new version is in force"
    );
    assert_eq!(second["journey_version"], 2);

    let invalid = fs::read_to_string(fixtures().join("reload/reload_probe_invalid.yaml")).unwrap();
    replace_journey(&s, "reload_probe.yaml", &invalid);
    let text = jd
        .wait_metrics(Duration::from_secs(30), |t| {
            metric_sum(t, "journeyd_reloads_total", &[("outcome", "failure")]) > failed_before
        })
        .expect("journeyd_reloads_total{outcome=\"failure\"} did not move after an invalid change");
    assert_eq!(metric_sum(&text, "journeyd_journeys_loaded", &[]), 1.0);
    let third = probe(&s, "rl-c3");
    assert_eq!(
        third["template"], "probe_v2",
        "the rejected change left v2 in force"
    );
    assert!(
        jd.is_running(),
        "an invalid journey must not stop the engine"
    );
}

/// (f) + (g): a customer waiting on a timer when the engine stops gets the send once after the
/// restart, restored from its local checkpoint and the changelog; /readyz is 200 once the
/// restore is done.
#[test]
fn pending_timer_survives_a_restart() {
    let s = Scenario::new("e2e_restore", &["trial_nudge"], 2);
    let port = free_port();
    let config = s.write_config("a", port);
    let mut first = s.spawn_run(&config, "run-1", port);
    first.wait_ready(READY);

    let customer = "rs-c1";
    let started = Instant::now();
    s.produce_events(&[
        event(
            "rs-e1",
            customer,
            "profile_updated",
            Utc::now(),
            json!({"email": "rs@example.com"}),
        ),
        event(
            "rs-e2",
            customer,
            "trial_started",
            Utc::now(),
            json!({"plan": "pro"}),
        ),
    ]);
    // The entry is committed (decisions are written in the same transaction as the state).
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
        "the engine stopped too late for the test to mean anything ({:?})",
        started.elapsed()
    );
    let email = s.action_topic("email");
    let early = s
        .kafka
        .read_committed_n(&[&email], 1, Duration::from_secs(1), Duration::ZERO);
    assert!(early.is_empty(), "sent before the wait was over: {early:?}");

    let mut second = s.spawn_run(&config, "run-2", port);
    second.wait_ready(READY);
    let text = second.metrics().expect("GET /metrics");
    assert!(
        metric_sum(&text, "journeyd_restore_records_total", &[])
            + metric_sum(&text, "journeyd_restore_checkpoint_customers_total", &[])
            >= 1.0,
        "the customer's state was restored (local checkpoint and changelog)"
    );

    let commands = read_commands(&s, 1, Duration::from_secs(60));
    let nudges: Vec<&Value> = commands
        .iter()
        .filter(|c| c["customer_id"] == customer && c["template"] == "trial_nudge")
        .collect();
    assert_eq!(nudges.len(), 1, "exactly one nudge: {commands:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "the nudge came before its 8 s wait"
    );
    assert_eq!(second.get("/readyz").map(|r| r.0), Some(200));
    let text = second.metrics().expect("GET /metrics");
    assert_eq!(
        metric_sum(
            &text,
            "journeyd_commands_total",
            &[("journey", "trial_nudge")]
        ),
        1.0
    );
}
