//! Faults on a real Apache Kafka broker: crashes of `journeyd run` at random moments with a large
//! state, the broker itself going away for 30 s, a rolling restart of three instances and a
//! scale-out and scale-in, each under a stream of events. Each test checks the outcome against
//! `journeyd simulate` over the same events (no command missing, none extra, no `command_id`
//! twice) and prints what recovery cost (time to ready, restore figures) for the operations
//! guide; the times are printed, not asserted: only generous bounds that signal a hang fail.
//!
//! Every instance has its own transactional id, `group.instance.id` (static membership, the
//! default) and `state_dir`, as a pod of the StatefulSet does. The broker and every process
//! listen on 127.0.0.1 only; the broker-outage test starts a broker of its own, so the shared
//! one is never taken away from the other tests. `JOURNEYD_TEST_FAULT_CUSTOMERS` sets the size
//! of the state of the crash test (default 200000 customers).

use chrono::{Duration as ChronoDuration, Utc};
use journeyd_testkit::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The fixture journeys the stories are written for.
const JOURNEYS: [&str; 4] = ["welcome", "cart_reminder", "shipping_delay", "flash_sale"];

/// A wait longer than this is a hang, not a slow machine.
const HANG: Duration = Duration::from_secs(120);

/// Customers that only have a profile: state to hold and restore, no journey entered (no
/// fixture journey starts on `profile_updated`). Stamped a minute before `stories_start`.
fn profiles_only(tag: &str, customers: usize, stories_start: chrono::DateTime<Utc>) -> Vec<Value> {
    let at = stories_start - ChronoDuration::minutes(1);
    (0..customers)
        .map(|i| {
            let c = format!("{tag}-p{i}");
            event(
                &format!("{c}-e1"),
                &c,
                "profile_updated",
                at,
                json!({"email": format!("{c}@example.com"), "timezone": "Europe/Paris"}),
            )
        })
        .collect()
}

/// The commands `simulate` gives for `events`, checked to be a meaningful number.
fn simulated(s: &Scenario, config: &std::path::Path, events: &[Value]) -> Vec<Value> {
    let (want, _) = s.simulate(config, "all", events, far_enough(events));
    assert!(
        want.len() >= 20,
        "the stream should produce commands, simulate gave {}",
        want.len()
    );
    want
}

/// Spawns an instance and waits until it is ready; returns it and the time that took.
fn start_ready(s: &Scenario, config: &std::path::Path, log: &str, port: u16) -> (Journeyd, f64) {
    let started = Instant::now();
    let mut jd = s.spawn_run(config, log, port);
    jd.wait_ready(HANG);
    (jd, started.elapsed().as_secs_f64())
}

/// `name` summed over the series of the instance's `/metrics` (0 when it does not answer).
fn metric(jd: &Journeyd, name: &str) -> f64 {
    jd.metrics()
        .map(|text| metric_sum(&text, name, &[]))
        .unwrap_or(0.0)
}

fn summary(label: &str, values: &[f64]) -> String {
    let max = values.iter().copied().fold(0.0, f64::max);
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let each: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
    format!(
        "{label}: [{}] s, mean {mean:.2} s, max {max:.2} s",
        each.join(", ")
    )
}

/// SIGKILL at random moments while a stream flows, with a state of many customers to restore:
/// each restarted instance is ready again (time printed), and the commands are exactly
/// simulate's.
#[test]
fn kill_nine_at_random_moments_restores_a_large_state() {
    const CRASHES: usize = 3;
    let customers: usize = std::env::var("JOURNEYD_TEST_FAULT_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let seed = seed_from_env();
    eprintln!(
        "kill_nine_at_random_moments_restores_a_large_state: seed {seed} (JOURNEYD_TEST_SEED)"
    );
    let mut rng = Rng::new(seed);
    let s = Scenario::new("faults_kill", &JOURNEYS, 3);
    let port = free_port();
    let config = s.write_config("a", port);
    let now = Utc::now();
    let state = profiles_only("kp", customers, now);
    let stream = interleave(&story("kc", 48, seed, false, now), now);
    let all: Vec<Value> = state.iter().chain(&stream).cloned().collect();
    let want = simulated(&s, &config, &all);

    // The state is a backlog the first instance works through before the stream starts.
    s.produce_events(&state);
    let (mut jd, first_ready) = start_ready(&s, &config, "run-0", port);
    let started = Instant::now();
    jd.wait_metrics(HANG * 2, |t| {
        metric_sum(t, "journeyd_events_consumed_total", &[]) >= customers as f64
    })
    .unwrap_or_else(|| panic!("{customers} profile events not consumed in {:?}", HANG * 2));
    eprintln!(
        "faults_kill: first start ready after {first_ready:.2} s; {customers} customers' profiles consumed in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let mut ready_after = Vec::new();
    let mut restored = Vec::new();
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| trickle(&s, &stream, Duration::from_secs(30)));
        for round in 1..=CRASHES {
            let pause = rng.range(500, 6000);
            std::thread::sleep(Duration::from_millis(pause));
            eprintln!("faults_kill: crash {round}: SIGKILL after {pause} ms of work");
            jd.kill9();
            let (next, secs) = start_ready(&s, &config, &format!("run-{round}"), port);
            jd = next;
            let records = metric(&jd, "journeyd_restore_records_total");
            let from_checkpoint = metric(&jd, "journeyd_restore_checkpoint_customers_total");
            let restore_secs = metric(&jd, "journeyd_restore_seconds_sum");
            eprintln!(
                "faults_kill: crash {round}: ready {secs:.2} s after the restart; {from_checkpoint} customers from checkpoints and {records} changelog records restored ({restore_secs:.2} s summed over partitions)"
            );
            ready_after.push(secs);
            restored.push(records);
        }
        producer.join().expect("the producer thread");
    });
    let got = read_commands(&s, want.len(), HANG);
    assert_same_commands(
        &got,
        &want,
        &format!("after {CRASHES} crashes with {customers} customers (seed {seed})"),
    );
    println!(
        "faults_kill: {customers} customers, {}; changelog records replayed per restart {restored:?}",
        summary("SIGKILL -> ready", &ready_after)
    );
}

/// The broker is killed for 30 s in the middle of a stream and started again: journeyd keeps
/// running and alive, reports not ready with the reason while the broker is away, is ready again
/// by itself, and no command is lost or duplicated.
#[test]
fn broker_away_for_30s_is_reported_and_survived() {
    let own = PrivateBroker::start_new("outage")
        .unwrap_or_else(|e| panic!("no broker of its own for the outage test: {e}"));
    let broker = Broker {
        bootstrap: own.bootstrap.clone(),
        private: Some(own.clone()),
    };
    let s = Scenario::on(&broker, "faults_outage", &JOURNEYS, 3);
    let port = free_port();
    let config = s.write_config("a", port);
    let now = Utc::now();
    let stream = interleave(&story("bo", 60, 23, false, now), now);
    let want = simulated(&s, &config, &stream);
    let (mut jd, _) = start_ready(&s, &config, "run", port);

    let mut not_ready = None;
    let mut back_after = 0.0;
    std::thread::scope(|scope| {
        // Delivery waits for the broker, as an upstream producer's buffer does.
        let producer = scope.spawn(|| trickle(&s, &stream, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_secs(8));
        eprintln!("faults_outage: SIGKILL to the broker");
        own.kill9();
        let down = Instant::now();
        while down.elapsed() < Duration::from_secs(30) {
            assert!(
                jd.is_running(),
                "journeyd exited while the broker was away:\n{}",
                tail(&jd.log, 40)
            );
            assert_eq!(
                jd.get("/healthz").map(|(status, _)| status),
                Some(200),
                "journeyd is alive while the broker is away (liveness must not restart it)"
            );
            if not_ready.is_none() {
                if let Some((status, reason)) = jd.get("/readyz") {
                    if status != 200 {
                        eprintln!(
                            "faults_outage: not ready {:.2} s after the broker went away: {status} {reason}",
                            down.elapsed().as_secs_f64()
                        );
                        not_ready = Some((down.elapsed().as_secs_f64(), status, reason));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("faults_outage: starting the broker again");
        own.start()
            .unwrap_or_else(|e| panic!("the broker did not come back: {e}"));
        let up = Instant::now();
        jd.wait_ready(HANG);
        back_after = up.elapsed().as_secs_f64();
        eprintln!("faults_outage: ready {back_after:.2} s after the broker served again");
        producer.join().expect("the producer thread");
    });
    // Nothing lost or duplicated is checked first: it is the graver failure.
    let got = read_commands(&s, want.len(), HANG);
    assert_same_commands(&got, &want, "a 30 s broker outage mid-stream");
    assert!(jd.is_running(), "journeyd stopped after the outage");
    let (noticed, status, reason) =
        not_ready.expect("/readyz answered 200 during the whole 30 s the broker was away");
    assert_eq!(status, 503, "/readyz while the broker is away: {reason}");
    assert!(
        reason.contains("broker"),
        "/readyz names the broker as the reason while it is away: {reason:?}"
    );
    println!(
        "faults_outage: not ready {noticed:.2} s after the broker was killed ({reason:?}); ready {back_after:.2} s after it served again"
    );
}

/// Three instances under a steady stream, restarted one at a time as a StatefulSet update does
/// (SIGTERM, the replacement ready, then the next): no command lost or duplicated.
#[test]
fn rolling_restart_of_three_instances() {
    let s = Scenario::new("faults_roll", &JOURNEYS, 6);
    let names = ["a", "b", "c"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let configs: Vec<_> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| s.write_config(n, *p))
        .collect();
    let now = Utc::now();
    let stream = interleave(&story("rr", 90, 31, false, now), now);
    let want = simulated(&s, &configs[0], &stream);
    let mut instances: Vec<Journeyd> = names
        .iter()
        .zip(&configs)
        .zip(&ports)
        .map(|((n, c), p)| s.spawn_run(c, &format!("run-{n}-0"), *p))
        .collect();
    for jd in &mut instances {
        jd.wait_ready(HANG);
    }

    let mut stopped_after = Vec::new();
    let mut ready_after = Vec::new();
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| trickle(&s, &stream, Duration::from_secs(40)));
        std::thread::sleep(Duration::from_secs(5));
        for (i, name) in names.iter().enumerate() {
            let t = Instant::now();
            let (status, clean) = instances[i].terminate(Duration::from_secs(60));
            assert!(clean, "instance {name} did not stop on SIGTERM ({status})");
            stopped_after.push(t.elapsed().as_secs_f64());
            let (jd, secs) = start_ready(&s, &configs[i], &format!("run-{name}-1"), ports[i]);
            instances[i] = jd;
            ready_after.push(secs);
            eprintln!(
                "faults_roll: {name} stopped in {:.2} s, its replacement ready after {secs:.2} s",
                stopped_after[i]
            );
        }
        producer.join().expect("the producer thread");
    });
    let got = read_commands(&s, want.len(), HANG);
    assert_same_commands(&got, &want, "rolling restart of three instances");
    for (jd, name) in instances.iter_mut().zip(names) {
        assert!(jd.is_running(), "instance {name} stopped after the roll");
    }
    println!(
        "faults_roll: {}; {}",
        summary("SIGTERM -> stopped", &stopped_after),
        summary("restart -> ready", &ready_after)
    );
}

/// Waits until the instance holds `partitions` partitions, none restoring, and answers ready;
/// returns the seconds that took.
fn wait_holding(jd: &mut Journeyd, partitions: usize) -> f64 {
    let t = Instant::now();
    let held = jd.wait_metrics(HANG, |text| {
        metric_sum(text, "journeyd_partitions_assigned", &[]) == partitions as f64
            && metric_sum(text, "journeyd_partitions_restoring", &[]) == 0.0
    });
    assert!(
        held.is_some(),
        "instance does not hold {partitions} restored partitions after {HANG:?} (assigned {}):\n{}",
        metric(jd, "journeyd_partitions_assigned"),
        tail(&jd.log, 40)
    );
    jd.wait_ready(HANG);
    t.elapsed().as_secs_f64()
}

/// `journeyd leave-group`: hands a removed instance's partitions over at once.
fn leave_group(s: &Scenario, config: &std::path::Path, instance: &str) {
    let instance_id = format!("{}-{instance}", s.prefix);
    let output = std::process::Command::new(journeyd_bin())
        .arg("leave-group")
        .arg("--config")
        .arg(config)
        .args(["--instance-id", &instance_id, "--timeout", "60"])
        .output()
        .expect("run journeyd leave-group");
    assert!(
        output.status.success(),
        "journeyd leave-group --instance-id {instance_id} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One instance, then three (two join mid-stream), then one again (the two stop on SIGTERM and
/// are removed from the group with `journeyd leave-group`, as a scale-in does): the remaining
/// instance takes every partition back at once and no command is lost or duplicated.
#[test]
fn scale_one_to_three_to_one() {
    const PARTITIONS: usize = 6;
    let s = Scenario::new("faults_scale", &JOURNEYS, PARTITIONS as i32);
    let names = ["a", "b", "c"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let configs: Vec<_> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| s.write_config(n, *p))
        .collect();
    let now = Utc::now();
    let stream = interleave(&story("sc", 90, 37, false, now), now);
    let want = simulated(&s, &configs[0], &stream);
    let (mut a, _) = start_ready(&s, &configs[0], "run-a", ports[0]);
    wait_holding(&mut a, PARTITIONS);

    let mut scale_out = 0.0;
    let mut scale_in = 0.0;
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| trickle(&s, &stream, Duration::from_secs(40)));
        std::thread::sleep(Duration::from_secs(5));
        let t = Instant::now();
        let mut joined: Vec<Journeyd> = (1..3)
            .map(|i| s.spawn_run(&configs[i], &format!("run-{}", names[i]), ports[i]))
            .collect();
        // Every instance holds restored partitions, and all of them together every partition.
        let deadline = Instant::now() + HANG;
        loop {
            let held: Vec<f64> = std::iter::once(&a)
                .chain(&joined)
                .map(|jd| metric(jd, "journeyd_partitions_assigned"))
                .collect();
            let restoring: f64 = std::iter::once(&a)
                .chain(&joined)
                .map(|jd| metric(jd, "journeyd_partitions_restoring"))
                .sum();
            if held.iter().all(|n| *n >= 1.0)
                && held.iter().sum::<f64>() == PARTITIONS as f64
                && restoring == 0.0
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the partitions are not spread over three instances after {HANG:?}: {held:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for jd in joined.iter_mut().chain(std::iter::once(&mut a)) {
            jd.wait_ready(HANG);
        }
        scale_out = t.elapsed().as_secs_f64();
        eprintln!("faults_scale: 1 -> 3: partitions spread and restored after {scale_out:.2} s");
        std::thread::sleep(Duration::from_secs(8));
        let t = Instant::now();
        for (i, jd) in joined.iter_mut().enumerate().rev() {
            let name = names[i + 1];
            let (status, clean) = jd.terminate(Duration::from_secs(60));
            assert!(clean, "instance {name} did not stop on SIGTERM ({status})");
            leave_group(&s, &configs[i + 1], name);
        }
        wait_holding(&mut a, PARTITIONS);
        scale_in = t.elapsed().as_secs_f64();
        eprintln!("faults_scale: 3 -> 1: a holds every partition, restored, {scale_in:.2} s after the first SIGTERM");
        producer.join().expect("the producer thread");
    });
    let got = read_commands(&s, want.len(), HANG);
    assert_same_commands(&got, &want, "scale 1 -> 3 -> 1");
    assert!(a.is_running(), "instance a stopped");
    println!(
        "faults_scale: 1 -> 3: partitions spread and restored after {scale_out:.2} s; 3 -> 1 (SIGTERM + leave-group): the last instance holds every partition after {scale_in:.2} s"
    );
}
