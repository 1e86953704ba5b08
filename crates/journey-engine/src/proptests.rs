//! Property tests over random event streams: safety rules hold for every command, output is
//! deterministic, and export/import in the middle of a stream changes nothing.

use crate::testkit::*;
use crate::{Catalog, Effects, Engine, Event, SendCommand};
use chrono::{DateTime, Duration as CDuration, Utc};
use journey_spec::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

fn journeys() -> Vec<Journey> {
    let mut cart = journey(
        "cart",
        "cart_updated",
        vec![
            wait("wait", "1h"),
            send("first", &["push", "email"], "c1"),
            step(
                "wait_click",
                Action::WaitFor(WaitFor {
                    event: "click".into(),
                    condition: None,
                    for_send: None,
                    timeout: dur("1d"),
                    on_event: Some(next("end")),
                    on_timeout: None,
                }),
            ),
            step(
                "vip_check",
                Action::Branch(vec![
                    BranchCase {
                        when: Some(cmp("profile.tier", Op::Eq, json!("vip"))),
                        next: next("vip"),
                    },
                    BranchCase {
                        when: None,
                        next: next("second"),
                    },
                ]),
            ),
            Step {
                next: Some(Next::End),
                ..send("vip", &["email"], "vip")
            },
            send("second", &["email", "sms"], "c2"),
        ],
    );
    cart.trigger.condition = Some(cmp("event.properties.cart_value", Op::Gte, json!(20)));
    cart.entry.reentry = Reentry::After(dur("1d"));
    cart.entry.unless = Some(did("order", Some("1d")));
    cart.entry.holdout = Percent { basis_points: 2000 };
    cart.exit_when = vec![EventMatch {
        event: "order".into(),
        condition: None,
    }];
    cart.goal = Some(Goal {
        event: "order".into(),
        condition: None,
        within: Some(dur("7d")),
        exit: true,
    });
    let mut promo = journey(
        "promo",
        "visit",
        vec![
            send("hello", &["sms", "push", "email"], "p1"),
            step(
                "morning",
                Action::WaitUntil(TimeOfDay {
                    hour: 9,
                    minute: 30,
                }),
            ),
            step(
                "ab",
                Action::Split(vec![
                    SplitArm {
                        name: "a".into(),
                        percent: Percent { basis_points: 5000 },
                        next: next("pa"),
                    },
                    SplitArm {
                        name: "b".into(),
                        percent: Percent { basis_points: 5000 },
                        next: next("pb"),
                    },
                ]),
            ),
            Step {
                next: Some(Next::End),
                ..send("pa", &["push", "email"], "pa")
            },
            send("pb", &["sms"], "pb"),
        ],
    );
    promo.priority = 3;
    let mut tx = journey("tx", "order", vec![send("receipt", &["sms", "email"], "r")]);
    tx.category = Category::Transactional;
    vec![cart, promo, tx]
}

const HOLDOUT: &[(&str, u32)] = &[("cart", 2000)];

#[derive(Debug, Clone)]
struct Ev {
    id: String,
    cust: String,
    ty: String,
    at: DateTime<Utc>,
    props: Value,
}

fn arb_event() -> impl Strategy<Value = (u8, u32, u8, u8, u8, u8, u8)> {
    (
        0u8..6,
        0u32..(6 * 3600),
        0u8..9,
        0u8..8,
        0u8..100,
        0u8..6,
        0u8..4,
    )
}

fn build(raw: Vec<(u8, u32, u8, u8, u8, u8, u8)>) -> Vec<Ev> {
    let mut at = t("2026-03-07T12:00:00Z");
    let mut out = Vec::new();
    for (n, (c, step, kind, a, v, b, dup)) in raw.into_iter().enumerate() {
        // A quarter of the steps keep the same instant, to exercise ties.
        if !matches!(step % 4, 0) {
            at += CDuration::seconds(step as i64);
        }
        let cust = format!("c{c}");
        let (ty, props) = match kind {
            0 | 1 => ("cart_updated", json!({"cart_value": v})),
            2 => ("order", json!({})),
            3 => ("visit", json!({})),
            4 => ("click", json!({})),
            5 | 6 => {
                let mut p = serde_json::Map::new();
                let val = |k: u8, s: &str| {
                    if matches!(k % 3, 0) {
                        Value::Null
                    } else {
                        json!(s)
                    }
                };
                p.insert("email".into(), val(a, "e@x"));
                p.insert("phone".into(), val(a / 2, "+44"));
                p.insert("push_token".into(), val(b, "tok"));
                if matches!(a % 2, 0) {
                    let tz = [
                        "Europe/London",
                        "America/New_York",
                        "Asia/Tokyo",
                        "Bad/Zone",
                        "UTC",
                    ][(v % 5) as usize];
                    p.insert("timezone".into(), json!(tz));
                }
                if matches!(b % 2, 0) {
                    p.insert(
                        "tier".into(),
                        json!(if matches!(v % 2, 0) { "vip" } else { "std" }),
                    );
                }
                ("profile_updated", Value::Object(p))
            }
            _ => (
                "consent_updated",
                json!({
                    "channel": (["email", "sms", "push"][(a % 3) as usize]),
                    "status": if matches!(b % 2, 0) { "granted" } else { "withdrawn" }
                }),
            ),
        };
        // Occasionally repeat an earlier id for the same customer.
        let id = if dup == 0 && n > 2 {
            format!("e{}", n - 2)
        } else {
            format!("e{n}")
        };
        out.push(Ev {
            id,
            cust,
            ty: ty.into(),
            at,
            props,
        });
    }
    out
}

/// Runs the stream the way `simulate` does; optionally moves every customer to a fresh engine
/// (export + import) before event `switch_at`. Returns every output line in order.
fn run(events: &[Ev], switch_at: Option<usize>, check: bool) -> Vec<String> {
    let cfg = config();
    let catalog = Arc::new(Catalog::new(&cfg, journeys()));
    let mut engine = Engine::new(catalog.clone());
    let mut out = Effects::default();
    let mut lines = Vec::new();
    let mut clock = DateTime::<Utc>::MIN_UTC;
    let mut model = Model::default();
    for (i, e) in events.iter().enumerate() {
        if Some(i) == switch_at {
            if check {
                // Round-trip every other customer in place: an import replaces the customer's
                // instances, and the counts must follow.
                for c in (0..6).step_by(2) {
                    let id = format!("c{c}");
                    if let Some(b) = engine.export_customer(&id) {
                        let before = engine.active_instances();
                        engine.import_customer(&id, &b).unwrap();
                        assert_eq!(engine.active_instances(), before);
                        assert_counts(&engine);
                    }
                }
            }
            let mut fresh = Engine::new(catalog.clone());
            for c in 0..6 {
                let id = format!("c{c}");
                if let Some(b) = engine.export_customer(&id) {
                    fresh.import_customer(&id, &b).unwrap();
                }
            }
            assert_eq!(fresh.pending_timers(), engine.pending_timers());
            assert_eq!(fresh.active_instances(), engine.active_instances());
            assert_counts(&fresh);
            engine = fresh;
        }
        engine.fire_due(e.at, &mut out);
        if check {
            model.check(&out.commands);
            assert_counts(&engine);
        }
        drain(&mut out, &mut lines);
        clock = clock.max(e.at);
        let ev = Event {
            event_id: e.id.clone(),
            customer_id: e.cust.clone(),
            event_type: e.ty.clone(),
            timestamp: e.at,
            properties: e.props.as_object().cloned().unwrap_or_default(),
        };
        engine.handle(&ev, clock, &mut out);
        if check {
            if !out
                .decisions
                .iter()
                .any(|d| d.kind == crate::DecisionKind::DuplicateEvent)
            {
                model.apply(&ev);
            }
            model.check(&out.commands);
            assert_counts(&engine);
            let v = engine.inspect(&e.cust, clock).unwrap();
            let mut ids: Vec<&str> = v["journeys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["journey_id"].as_str().unwrap())
                .collect();
            let n = ids.len();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "one instance per journey");
        }
        drain(&mut out, &mut lines);
    }
    engine.fire_due(clock + CDuration::days(3), &mut out);
    if check {
        model.check(&out.commands);
        assert_counts(&engine);
    }
    drain(&mut out, &mut lines);
    if check {
        // Forgetting customers one by one takes their instances out of the counts.
        for c in 0..6 {
            engine.remove_customer(&format!("c{c}"));
            assert_counts(&engine);
        }
        assert_eq!(engine.active_instances(), vec![]);
        assert_eq!(engine.pending_timers(), 0);
    }
    lines
}

/// The counts the engine keeps as it goes equal a count over every customer.
fn assert_counts(engine: &Engine) {
    assert_eq!(
        engine.active_instances(),
        engine.recount_active_instances(),
        "active instances"
    );
    assert_eq!(
        engine.pending_timers(),
        engine.recount_pending_timers(),
        "pending timers"
    );
}

fn drain(out: &mut Effects, lines: &mut Vec<String>) {
    lines.extend(out.commands.iter().map(|c| c.to_json()));
    lines.extend(out.decisions.iter().map(|d| d.to_json()));
    out.clear();
}

/// What the customer looked like at each moment, rebuilt from the input alone.
#[derive(Default)]
struct Model {
    profile: HashMap<String, serde_json::Map<String, Value>>,
    consent: HashMap<(String, String), bool>,
    sent: Vec<SendCommand>,
}

impl Model {
    fn apply(&mut self, e: &Event) {
        let p = self.profile.entry(e.customer_id.clone()).or_default();
        match e.event_type.as_str() {
            "profile_updated" => {
                for (k, v) in &e.properties {
                    if v.is_null() {
                        p.remove(k);
                    } else if k == "timezone" {
                        if v.as_str().unwrap().parse::<chrono_tz::Tz>().is_ok() {
                            p.insert(k.clone(), v.clone());
                        }
                    } else {
                        p.insert(k.clone(), v.clone());
                    }
                }
            }
            "consent_updated" => {
                let ch = e.properties["channel"].as_str().unwrap().to_string();
                let g = e.properties["status"] == "granted";
                self.consent.insert((e.customer_id.clone(), ch), g);
            }
            _ => {}
        }
    }

    fn check(&mut self, cmds: &[SendCommand]) {
        let cfg = config();
        for c in cmds {
            let ch = &cfg.channels[&c.channel];
            let empty = serde_json::Map::new();
            let p = self.profile.get(&c.customer_id).unwrap_or(&empty);
            assert_eq!(
                p.get(&ch.address).and_then(Value::as_str),
                Some(c.address.as_str()),
                "address"
            );
            let default = ch.consent == ConsentMode::OptOut;
            let granted = *self
                .consent
                .get(&(c.customer_id.clone(), c.channel.clone()))
                .unwrap_or(&default);
            assert!(granted, "send without consent: {c:?}");
            for (j, bp) in HOLDOUT {
                if c.journey_id == *j {
                    assert!(
                        !crate::hash::is_holdout(j, &c.customer_id, *bp),
                        "holdout got a command"
                    );
                }
            }
            let marketing = c.journey_id != "tx";
            if marketing {
                for cap in &cfg.frequency_caps {
                    let covers = |name: &str| match &cap.channels {
                        CapChannels::All => true,
                        CapChannels::List(l) => l.iter().any(|x| x == name),
                    };
                    if !covers(&c.channel) {
                        continue;
                    }
                    let from = c.issued_at - cap.per.as_chrono();
                    let n = self
                        .sent
                        .iter()
                        .filter(|s| s.customer_id == c.customer_id && covers(&s.channel))
                        .filter(|s| s.issued_at > from && s.issued_at <= c.issued_at)
                        .count();
                    assert!(n < cap.max as usize, "cap {} exceeded by {c:?}", cap.name);
                }
                if ch.quiet_hours {
                    let tz: chrono_tz::Tz = p
                        .get("timezone")
                        .and_then(Value::as_str)
                        .map(|s| s.parse().unwrap())
                        .unwrap_or(chrono_tz::UTC);
                    assert!(
                        !crate::localtime::in_window(
                            tz,
                            c.issued_at,
                            cfg.quiet_hours.start,
                            cfg.quiet_hours.end
                        ),
                        "send in quiet hours: {c:?}"
                    );
                }
                self.sent.push(c.clone());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn rules_hold_and_output_is_deterministic(
        raw in proptest::collection::vec(arb_event(), 1..250),
        split in 0usize..250,
    ) {
        let events = build(raw);
        let first = run(&events, None, true);
        let second = run(&events, None, false);
        prop_assert_eq!(&first, &second);
        let at = split % events.len();
        let moved = run(&events, Some(at), true);
        prop_assert_eq!(&first, &moved);
    }
}

#[test]
fn random_streams_do_send_something() {
    // Guards the property test against vacuity: typical streams produce commands of every kind.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let raw: Vec<_> = (0..600)
        .map(|_| {
            (
                rnd(6) as u8,
                rnd(6 * 3600) as u32,
                rnd(9) as u8,
                rnd(8) as u8,
                rnd(100) as u8,
                rnd(6) as u8,
                1 + rnd(3) as u8,
            )
        })
        .collect();
    let lines = run(&build(raw), None, true);
    let cmds = lines
        .iter()
        .filter(|l| l.starts_with("{\"command_id\""))
        .count();
    assert!(cmds > 10, "{cmds} commands");
    for kind in [
        "sent",
        "skipped_channel",
        "deferred",
        "entered",
        "completed",
        "holdout",
        "split",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("\"kind\":\"{kind}\""))),
            "{kind}"
        );
    }
}
