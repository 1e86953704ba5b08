//! Running one test case on a fresh engine and matching its expectations against the records.

use super::describe::{closest, describe, describe_send, show_decision, show_no_send, show_send};
use super::{Failure, Loaded, Record, TestResult};
use crate::virtual_clock::VirtualClock;
use chrono::{DateTime, Utc};
use journey_engine::DecisionKind as K;
use journey_engine::{Engine, Event, Reason};
use journey_spec::testfile::{
    DecisionExpect, Expectation, Located, NoSendExpect, Order, SendExpect, TestCase, Window,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Runs one test on a fresh engine and returns every record in the order made.
fn execute(test: &TestCase, loaded: &Loaded) -> anyhow::Result<Vec<Record>> {
    let mut clock = VirtualClock::new(Engine::new(loaded.catalog.clone()));
    let mut records: Vec<Record> = Vec::new();
    let mut sink = |effects: &journey_engine::Effects| -> anyhow::Result<()> {
        let mut commands = effects.commands.iter();
        for d in &effects.decisions {
            let command = if d.kind == K::Sent {
                commands.next().cloned()
            } else {
                None
            };
            records.push(Record {
                decision: d.clone(),
                command,
            });
        }
        Ok(())
    };
    let setup_at = test
        .events
        .first()
        .map_or(test.start, |e| e.at.min(test.start));
    let mut events: Vec<Event> = Vec::new();
    for c in &test.customers {
        if !c.profile.is_empty() {
            events.push(Event {
                event_id: format!("setup-profile-{}", c.id),
                customer_id: c.id.clone(),
                event_type: "profile_updated".into(),
                timestamp: setup_at,
                properties: c.profile.clone(),
            });
        }
        for (channel, granted) in &c.consent {
            let props = json!({
                "channel": channel.value,
                "status": if *granted { "granted" } else { "withdrawn" }
            });
            events.push(Event {
                event_id: format!("setup-consent-{}-{}", c.id, channel.value),
                customer_id: c.id.clone(),
                event_type: "consent_updated".into(),
                timestamp: setup_at,
                properties: props.as_object().cloned().unwrap_or_default(),
            });
        }
    }
    for e in &test.events {
        events.push(Event {
            event_id: e.event_id.clone(),
            customer_id: e.customer.clone(),
            event_type: e.event_type.clone(),
            timestamp: e.at,
            properties: e.properties.clone(),
        });
    }
    for event in &events {
        clock.handle(event, &mut sink)?;
    }
    clock.advance_to(test.until, &mut sink)?;
    Ok(records)
}

pub(super) fn run_test(test: &TestCase, loaded: &Loaded) -> TestResult {
    let records = match execute(test, loaded) {
        Ok(records) => records,
        Err(e) => {
            return TestResult {
                name: test.name.clone(),
                failures: vec![Failure {
                    expected: "the run to finish".into(),
                    got: vec![format!("{e:#}")],
                }],
                explanation: Vec::new(),
            }
        }
    };
    let mut used = vec![false; records.len()];
    let mut cursor = 0usize;
    let mut failures = Vec::new();
    let mut concerned: BTreeSet<String> = BTreeSet::new();
    for e in &test.expect {
        let line = e.pos().line;
        match e {
            Expectation::NoSend(n) => {
                let hits: Vec<String> = records
                    .iter()
                    .filter(|r| r.command.is_some() && no_send_hit(n, r))
                    .map(describe_send)
                    .collect();
                if !hits.is_empty() {
                    if let Some(c) = &n.customer {
                        concerned.insert(c.value.clone());
                    }
                    failures.push(Failure {
                        expected: format!("line {line}: {}", show_no_send(n)),
                        got: hits,
                    });
                }
            }
            Expectation::Send(_) | Expectation::Decision(_) => {
                let matches = |r: &Record| match e {
                    Expectation::Send(s) => send_matches(s, r),
                    Expectation::Decision(d) => decision_matches(d, r),
                    Expectation::NoSend(_) => false,
                };
                let from = if test.order == Order::Sequence {
                    cursor
                } else {
                    0
                };
                let found = (from..records.len()).find(|&i| !used[i] && matches(&records[i]));
                match found {
                    Some(i) => {
                        used[i] = true;
                        if test.order == Order::Sequence {
                            cursor = i + 1;
                        }
                    }
                    None => {
                        let (expected, customer) = match e {
                            Expectation::Send(s) => (show_send(s), s.customer.as_ref()),
                            Expectation::Decision(d) => (show_decision(d), d.customer.as_ref()),
                            Expectation::NoSend(_) => unreachable!("handled above"),
                        };
                        if let Some(c) = customer {
                            concerned.insert(c.value.clone());
                        }
                        let mut got = closest(e, &records);
                        if test.order == Order::Sequence {
                            if let Some(i) = (0..from).find(|&i| !used[i] && matches(&records[i])) {
                                got.insert(
                                    0,
                                    format!(
                                        "{} (matches, but before the expectation above it; \
                                         use `order: set` if order does not matter)",
                                        describe(&records[i])
                                    ),
                                );
                            }
                        }
                        failures.push(Failure {
                            expected: format!("line {line}: {expected}"),
                            got,
                        });
                    }
                }
            }
        }
    }
    if test.no_other_sends {
        for (i, r) in records.iter().enumerate() {
            if r.command.is_some() && !used[i] {
                concerned.insert(r.decision.customer_id.clone());
                failures.push(Failure {
                    expected: "no other sends (no_other_sends: true)".into(),
                    got: vec![describe_send(r)],
                });
            }
        }
    }
    let explanation = if failures.is_empty() {
        Vec::new()
    } else {
        records
            .iter()
            .filter(|r| concerned.is_empty() || concerned.contains(&r.decision.customer_id))
            .map(describe)
            .collect()
    };
    TestResult {
        name: test.name.clone(),
        failures,
        explanation,
    }
}

pub(super) fn in_window(w: &Option<Located<Window>>, t: DateTime<Utc>) -> bool {
    w.as_ref()
        .is_none_or(|w| w.value.from <= t && t <= w.value.to)
}

pub(super) fn eq_opt(want: &Option<Located<String>>, got: Option<&str>) -> bool {
    want.as_ref().is_none_or(|w| Some(w.value.as_str()) == got)
}

fn send_matches(s: &SendExpect, r: &Record) -> bool {
    let Some(c) = &r.command else { return false };
    eq_opt(&s.customer, Some(&c.customer_id))
        && eq_opt(&s.channel, Some(&c.channel))
        && eq_opt(&s.template, Some(&c.template))
        && eq_opt(&s.journey, Some(&c.journey_id))
        && eq_opt(&s.step, Some(&c.step_id))
        && in_window(&s.window, c.issued_at)
        && s.data.iter().all(|(k, v)| data_eq(c.data.get(k), v))
}

/// Data values compare as JSON, numbers by value (`59` equals `59.0`).
pub(super) fn data_eq(got: Option<&Value>, want: &Value) -> bool {
    match (got, want) {
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

fn decision_matches(e: &DecisionExpect, r: &Record) -> bool {
    let d = &r.decision;
    d.kind.as_str() == e.kind.value
        && eq_opt(&e.customer, Some(&d.customer_id))
        && e.reason
            .as_ref()
            .is_none_or(|x| d.reason.as_ref().map(Reason::as_str) == Some(x.as_str()))
        && eq_opt(&e.journey, d.journey_id.as_deref())
        && eq_opt(&e.step, d.step_id.as_deref())
        && eq_opt(&e.channel, d.channel.as_deref())
        && e.branch
            .as_ref()
            .is_none_or(|x| d.branch.as_ref() == Some(x))
        && e.holdout.is_none_or(|x| d.holdout == Some(x))
        && in_window(&e.window, d.at)
}

fn no_send_hit(n: &NoSendExpect, r: &Record) -> bool {
    let Some(c) = &r.command else { return false };
    eq_opt(&n.customer, Some(&c.customer_id))
        && eq_opt(&n.channel, Some(&c.channel))
        && eq_opt(&n.template, Some(&c.template))
        && eq_opt(&n.journey, Some(&c.journey_id))
        && n.window.value.from <= c.issued_at
        && c.issued_at <= n.window.value.to
}
