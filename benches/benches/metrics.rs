//! Cost of counting one processed event in the metrics layer: the events-consumed counter, the
//! decisions it caused (with their lifecycle counters) and its send command. Compares the
//! handles `journey_kafka::metrics` resolves once with a `with_label_values` lookup per record
//! on the same families (how every record was counted before), alternating the two in rounds so
//! that both see the same machine load. Prints nanoseconds per event; asserts nothing.

use chrono::{TimeZone, Utc};
use journey_engine::{Decision, DecisionKind, Reason, SendCommand};
use journey_kafka::metrics::{reason_label, EventOutcome, Metrics};
use prometheus::{IntCounterVec, Opts};
use std::hint::black_box;
use std::time::Instant;

/// Events per timed round, and rounds, when measuring; `cargo test` runs a few unoptimised.
const EVENTS: usize = 200_000;
const ROUNDS: usize = 15;
const EVENTS_TEST: usize = 200;
const ROUNDS_TEST: usize = 2;

const JOURNEYS: [&str; 4] = [
    "cart_abandonment",
    "browse_followup",
    "shipping_update",
    "cross_sell",
];

fn decision(kind: DecisionKind, journey: &str, reason: Option<Reason>) -> Decision {
    Decision {
        at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        customer_id: "c-42".into(),
        journey_id: Some(journey.into()),
        journey_version: Some(1),
        step_id: Some("s".into()),
        kind,
        channel: None,
        command_id: None,
        reason,
        event_id: Some("e-1".into()),
        holdout: Some(false),
        until: None,
        branch: None,
    }
}

fn command(channel: &str, journey: &str) -> SendCommand {
    SendCommand {
        command_id: "abc".into(),
        customer_id: "c-42".into(),
        channel: channel.into(),
        topic: format!("actions.{channel}"),
        address: "ada@example.com".into(),
        template: "t".into(),
        data: serde_json::Map::new(),
        journey_id: journey.into(),
        journey_version: 1,
        step_id: "s".into(),
        trigger_event_id: "e-1".into(),
        issued_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
    }
}

/// What one event causes: three decisions of one journey (an entry, a send, a capped send) and
/// one command.
struct Caused {
    decisions: Vec<Decision>,
    commands: Vec<SendCommand>,
}

fn caused() -> Vec<Caused> {
    JOURNEYS
        .iter()
        .map(|j| Caused {
            decisions: vec![
                decision(DecisionKind::Entered, j, None),
                decision(DecisionKind::Sent, j, None),
                decision(
                    DecisionKind::SkippedChannel,
                    j,
                    Some(Reason::FrequencyCap("frequency_cap:sms_daily".into())),
                ),
            ],
            commands: vec![command("email", j)],
        })
        .collect()
}

/// The families counted per event, looked up per record as before.
struct PerRecord {
    events: IntCounterVec,
    decisions: IntCounterVec,
    entries: IntCounterVec,
    commands: IntCounterVec,
}

impl PerRecord {
    fn new() -> PerRecord {
        let vec = |name: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, "bench"), labels).expect("valid")
        };
        PerRecord {
            events: vec("events", &["topic", "outcome"]),
            decisions: vec("decisions", &["kind", "journey", "reason"]),
            entries: vec("entries", &["journey", "holdout"]),
            commands: vec("commands", &["channel", "journey"]),
        }
    }

    fn event(&self, c: &Caused) {
        self.events
            .with_label_values(&["events", EventOutcome::Processed.as_str()])
            .inc();
        for d in &c.decisions {
            let journey = d.journey_id.as_deref().unwrap_or("");
            self.decisions
                .with_label_values(&[d.kind.as_str(), journey, reason_label(d.reason.as_ref())])
                .inc();
            if d.kind == DecisionKind::Entered {
                self.entries.with_label_values(&[journey, "false"]).inc();
            }
        }
        for cmd in &c.commands {
            self.commands
                .with_label_values(&[cmd.channel.as_str(), cmd.journey_id.as_str()])
                .inc();
        }
    }
}

fn resolved_once(m: &Metrics, c: &Caused) {
    m.event_consumed("events", EventOutcome::Processed);
    m.decisions(&c.decisions);
    m.commands(&c.commands);
}

fn ns_per_event(events: usize, caused: &[Caused], f: impl Fn(&Caused)) -> f64 {
    let start = Instant::now();
    for i in 0..events {
        f(black_box(&caused[i % caused.len()]));
    }
    start.elapsed().as_nanos() as f64 / events as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (events, rounds) = if journeyd_benches::measuring() {
        (EVENTS, ROUNDS)
    } else {
        (EVENTS_TEST, ROUNDS_TEST)
    };
    let caused = caused();
    let before = PerRecord::new();
    let after = Metrics::new();
    let (mut b, mut a) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.push(ns_per_event(events, &caused, |c| before.event(c)));
        a.push(ns_per_event(events, &caused, |c| resolved_once(&after, c)));
    }
    let (b, a) = (median(b), median(a));
    println!(
        "metrics per event (1 consumed, 3 decisions, 1 entry, 1 command), median of {rounds} \
         alternating rounds of {events} events:"
    );
    println!("  with_label_values per record: {b:8.1} ns/event");
    println!("  handles resolved once:        {a:8.1} ns/event");
    println!("  ratio: {:.2}x", b / a);
}
