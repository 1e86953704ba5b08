//! Behaviour tests of the engine, one rule at a time (docs/journeys.md, docs/reference/).
//!
//! Over 600 lines on purpose: one short test per rule of the language, kept in one file so that
//! the rules read as a list; the helpers they share are in `testkit.rs`.

use crate::testkit::*;
use crate::{Catalog, DecisionKind, Engine, Reason};
use journey_spec::*;
use serde_json::json;
use std::sync::Arc;

fn contact() -> serde_json::Value {
    json!({"email": "ada@example.com", "phone": "+441234", "push_token": "tok"})
}

fn cart_journey() -> Journey {
    let mut j = journey(
        "cart_abandonment",
        "cart_updated",
        vec![
            wait("wait_an_hour", "1h"),
            send("first_reminder", &["push", "email"], "cart_reminder_1"),
        ],
    );
    j.trigger.condition = Some(cmp("event.properties.cart_value", Op::Gte, json!(20)));
    j.exit_when = vec![EventMatch {
        event: "order_completed".into(),
        condition: None,
    }];
    j
}

#[test]
fn enters_waits_and_sends_on_first_channel_left() {
    let mut s = Sim::new(vec![cart_journey()]);
    s.event(
        "c1",
        "profile_updated",
        "2026-11-23T09:00:00Z",
        json!({"email": "ada@example.com"}),
    );
    s.event(
        "c1",
        "cart_updated",
        "2026-11-23T10:00:00Z",
        json!({"cart_value": 10}),
    );
    assert!(s.take().is_empty(), "where: cart_value >= 20 does not hold");
    let e = s.event(
        "c1",
        "cart_updated",
        "2026-11-23T10:15:00Z",
        json!({"cart_value": 59.0}),
    );
    assert_eq!(s.take(), vec!["entered cart_abandonment"]);
    assert_eq!(s.engine.pending_timers(), 1);
    assert_eq!(s.engine.next_due(), Some(t("2026-11-23T11:15:00Z")));
    s.until("2026-11-23T11:14:59Z");
    assert!(s.take().is_empty());
    s.until("2026-11-23T11:15:00Z");
    assert_eq!(
        s.take(),
        vec![
            "skipped_channel cart_abandonment first_reminder push unreachable",
            "sent cart_abandonment first_reminder email",
            "completed cart_abandonment",
        ]
    );
    let cmds = s.commands();
    assert_eq!(cmds.len(), 1);
    let c = &cmds[0];
    assert_eq!(c.topic, "actions.email");
    assert_eq!(c.address, "ada@example.com");
    assert_eq!(c.trigger_event_id, e);
    assert_eq!(c.issued_at, t("2026-11-23T11:15:00Z"));
    assert_eq!(
        c.command_id,
        crate::hash::command_id("c1", "cart_abandonment", &e, "first_reminder", 0)
    );
    assert_eq!(s.engine.active_instances(), vec![]);
}

#[test]
fn timer_decisions_carry_the_trigger_event_id_and_event_ones_the_event() {
    let mut s = Sim::new(vec![cart_journey()]);
    s.event("c1", "profile_updated", "2026-11-23T09:00:00Z", contact());
    let e = s.event(
        "c1",
        "cart_updated",
        "2026-11-23T10:00:00Z",
        json!({"cart_value": 30}),
    );
    assert_eq!(s.out.decisions[0].event_id.as_deref(), Some(e.as_str()));
    s.out.decisions.clear();
    s.until("2026-11-23T11:00:00Z");
    assert!(!s.out.decisions.is_empty());
    assert!(s
        .out
        .decisions
        .iter()
        .all(|d| d.event_id.as_deref() == Some(e.as_str())));
    assert_eq!(s.out.decisions[0].at, t("2026-11-23T11:00:00Z"));
}

#[test]
fn wait_for_decisions_carry_the_matching_event_or_the_trigger_on_timeout() {
    let mut s = Sim::new(vec![wait_for_journey()]);
    s.event("a", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("b", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("a", "signup", "2026-01-01T10:00:00Z", json!({}));
    let tb = s.event("b", "signup", "2026-01-01T10:00:00Z", json!({}));
    s.out.decisions.clear();
    let click = s.event(
        "a",
        "message_clicked",
        "2026-01-01T12:00:00Z",
        json!({"campaign": "spring"}),
    );
    // The match runs the `thanks` send and completes: both decisions name the click.
    let kinds: Vec<_> = s.out.decisions.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, vec!["sent", "completed"]);
    assert!(s
        .out
        .decisions
        .iter()
        .all(|d| d.event_id.as_deref() == Some(click.as_str())));
    s.out.decisions.clear();
    s.until("2026-01-03T00:00:00Z");
    // The timeout of `b` runs `nudge`: no event is handled, so the trigger's id is carried.
    let kinds: Vec<_> = s.out.decisions.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, vec!["sent", "completed"]);
    assert!(s
        .out
        .decisions
        .iter()
        .all(|d| d.event_id.as_deref() == Some(tb.as_str())));
}

#[test]
fn exit_when_cancels_a_pending_wait() {
    let mut s = Sim::new(vec![cart_journey()]);
    s.event(
        "c1",
        "cart_updated",
        "2026-11-23T10:00:00Z",
        json!({"cart_value": 30}),
    );
    let o = s.event("c1", "order_completed", "2026-11-23T10:30:00Z", json!({}));
    let d = s.out.decisions.last().unwrap().clone();
    assert_eq!(d.kind, DecisionKind::Exited);
    assert_eq!(d.event_id.as_deref(), Some(o.as_str()));
    assert_eq!(d.step_id.as_deref(), Some("wait_an_hour"));
    assert_eq!(s.engine.pending_timers(), 0);
    s.until("2026-11-24T00:00:00Z");
    assert_eq!(
        s.take(),
        vec![
            "entered cart_abandonment",
            "exited cart_abandonment wait_an_hour"
        ]
    );
    assert!(s.commands().is_empty());
}

#[test]
fn cancelled_timers_neither_count_nor_show_as_next_due() {
    let mut s = Sim::new(vec![cart_journey()]);
    let cart = json!({"cart_value": 30});
    s.event("c1", "cart_updated", "2026-11-23T10:00:00Z", cart.clone());
    s.event("c2", "cart_updated", "2026-11-23T10:30:00Z", cart);
    assert_eq!(s.engine.pending_timers(), 2);
    assert_eq!(s.engine.next_due(), Some(t("2026-11-23T11:00:00Z")));
    s.event("c1", "order_completed", "2026-11-23T10:40:00Z", json!({}));
    assert_eq!(s.engine.pending_timers(), 1);
    assert_eq!(s.engine.next_due(), Some(t("2026-11-23T11:30:00Z")));
    s.engine.remove_customer("c2");
    assert_eq!(s.engine.pending_timers(), 0);
    assert_eq!(s.engine.next_due(), None);
    s.out.decisions.clear();
    s.until("2026-11-24T00:00:00Z");
    assert!(s.out.decisions.is_empty());
}

#[test]
fn dedupe_ignores_a_repeated_event_id() {
    let mut s = Sim::new(vec![cart_journey()]);
    s.event_id(
        "x1",
        "c1",
        "cart_updated",
        "2026-11-23T10:00:00Z",
        json!({"cart_value": 30}),
    );
    s.out.changed.clear();
    s.event_id(
        "x1",
        "c1",
        "cart_updated",
        "2026-11-23T10:01:00Z",
        json!({"cart_value": 30}),
    );
    assert_eq!(
        s.take(),
        vec!["entered cart_abandonment", "duplicate_event"]
    );
    assert!(s.out.changed.is_empty(), "a duplicate changes nothing");
    // At least the last 32 ids are remembered; older ones fall out of the ring.
    for i in 0..32 {
        s.event_id(
            &format!("y{i}"),
            "c1",
            "noise",
            "2026-11-23T10:02:00Z",
            json!({}),
        );
    }
    s.event_id("y0", "c1", "noise", "2026-11-23T10:03:00Z", json!({}));
    assert_eq!(s.take(), vec!["duplicate_event"]);
    s.event_id("x1", "c1", "noise", "2026-11-23T10:03:00Z", json!({}));
    assert!(s.take().is_empty(), "x1 fell out of the 32-id ring");
}

#[test]
fn changed_lists_each_customer_once_per_call() {
    let mk = |id: &str| {
        journey(
            id,
            "visit",
            vec![wait("w", "1h"), send("s", &["email"], "tpl")],
        )
    };
    let mut s = Sim::new(vec![mk("a"), mk("b")]);
    s.event("c1", "visit", "2026-11-23T10:00:00Z", json!({}));
    s.event("c2", "visit", "2026-11-23T10:00:00Z", json!({}));
    s.event("c1", "noise", "2026-11-23T10:00:00Z", json!({}));
    // Each call lists the customers it changed (callers clear between calls).
    assert_eq!(s.out.changed, vec!["c1", "c2", "c1"]);
    s.out.clear();
    // One call fires the four timers of two customers: each listed once.
    s.until("2026-11-23T12:00:00Z");
    assert_eq!(s.engine.pending_timers(), 0);
    assert_eq!(s.out.changed, vec!["c1", "c2"]);
    s.out.clear();
    s.event("c2", "noise", "2026-11-23T12:00:00Z", json!({}));
    assert_eq!(s.out.changed, vec!["c2"]);
}

#[test]
fn reentry_once_always_after_and_in_flight() {
    let mk = |id: &str, r: Reentry| {
        let mut j = journey(id, "visit", vec![send("s", &["email"], "tpl")]);
        j.entry.reentry = r;
        j
    };
    let mut s = Sim::new(vec![
        mk("once", Reentry::Once),
        mk("always", Reentry::Always),
        mk("after", Reentry::After(dur("7d"))),
    ]);
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T09:00:00Z",
        json!({"email": "a@b"}),
    );
    s.event("c", "visit", "2026-01-01T10:00:00Z", json!({}));
    let first = s.take();
    assert_eq!(first.iter().filter(|d| d.starts_with("entered")).count(), 3);
    s.event("c", "visit", "2026-01-05T10:00:00Z", json!({}));
    let d = s.take();
    assert!(
        d.contains(&"entry_suppressed after reentry".to_string()),
        "{d:?}"
    );
    assert!(d.contains(&"entry_suppressed once reentry".to_string()));
    assert!(d.contains(&"entered always".to_string()));
    s.event("c", "visit", "2026-01-08T10:00:00Z", json!({}));
    let d = s.take();
    assert!(
        d.contains(&"entered after".to_string()),
        "exactly 7 days later: {d:?}"
    );
    assert!(d.contains(&"entry_suppressed once reentry".to_string()));

    // Already in the journey: suppressed with reason reentry, even with `always`.
    let mut j = journey("w", "visit", vec![wait("w", "1d")]);
    j.entry.reentry = Reentry::Always;
    let mut s = Sim::new(vec![j]);
    s.event("c", "visit", "2026-01-01T10:00:00Z", json!({}));
    s.event("c", "visit", "2026-01-01T11:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entered w", "entry_suppressed w reentry"]);
}

#[test]
fn unless_with_did_within_sees_only_earlier_events() {
    let mut j = journey("thanks", "order_completed", vec![wait("w", "1h")]);
    j.entry.unless = Some(did("order_completed", Some("24h")));
    let mut s = Sim::new(vec![j]);
    s.event("c", "order_completed", "2026-01-01T10:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entered thanks"]);
    s.event("c", "order_completed", "2026-01-01T12:00:00Z", json!({}));
    assert_eq!(
        s.take(),
        vec!["completed thanks", "entry_suppressed thanks unless"]
    );
    s.until("2026-01-02T12:00:00Z");
    s.take();
    // 24h after the 12:00 order exactly: it no longer counts, the 10:00 one neither.
    s.event("c", "order_completed", "2026-01-02T12:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entered thanks"]);
    s.until("2026-01-02T14:00:00Z");
    s.take();
    s.event("c", "order_completed", "2026-01-02T20:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entry_suppressed thanks unless"]);
}

#[test]
fn did_without_within_means_ever() {
    let mut j = journey("j", "visit", vec![wait("w", "1h")]);
    j.entry.unless = Some(did("order_completed", None));
    let mut s = Sim::new(vec![j]);
    s.event("c", "order_completed", "2020-01-01T10:00:00Z", json!({}));
    s.event("c", "visit", "2026-01-01T10:00:00Z", json!({}));
    s.event("d", "visit", "2026-01-01T10:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entry_suppressed j unless", "entered j"]);
}

#[test]
fn holdout_replaces_sends_and_is_deterministic() {
    let mut j = journey("h", "visit", vec![send("s", &["email"], "tpl")]);
    j.entry.holdout = Percent { basis_points: 5000 };
    j.goal = Some(Goal {
        event: "buy".into(),
        condition: None,
        within: None,
        exit: true,
    });
    j.steps.insert(0, wait("w", "1h"));
    let mut s = Sim::new(vec![j.clone()]);
    let mut held = 0;
    for i in 0..200 {
        let c = format!("c{i}");
        s.event(
            &c,
            "profile_updated",
            "2026-01-01T09:00:00Z",
            json!({"email": "x@y"}),
        );
        s.event(&c, "visit", "2026-01-01T10:00:00Z", json!({}));
        let expect = crate::hash::is_holdout("h", &c, 5000);
        let d = s.out.decisions.last().unwrap().clone();
        assert_eq!(d.holdout, Some(expect));
        held += expect as usize;
    }
    assert!((70..130).contains(&held), "{held}");
    s.take();
    s.until("2026-01-01T11:00:00Z");
    let cmds = s.commands();
    assert_eq!(cmds.len(), 200 - held);
    for c in &cmds {
        assert!(!crate::hash::is_holdout("h", &c.customer_id, 5000));
    }
    let d = s.take();
    assert_eq!(
        d.iter().filter(|x| x.starts_with("holdout h s H")).count(),
        held
    );
    // A goal reached by a holdout customer carries the flag.
    let held_c = (0..200)
        .map(|i| format!("c{i}"))
        .find(|c| crate::hash::is_holdout("h", c, 5000))
        .unwrap();
    let mut s = Sim::new(vec![j]);
    s.event(&held_c, "visit", "2026-01-01T10:00:00Z", json!({}));
    s.event(&held_c, "buy", "2026-01-01T10:10:00Z", json!({}));
    assert_eq!(s.take(), vec!["entered h H", "goal h w H"]);
}

#[test]
fn split_assigns_deterministically_and_records_branch() {
    let arms = vec![
        SplitArm {
            name: "a".into(),
            percent: Percent { basis_points: 3000 },
            next: next("end"),
        },
        SplitArm {
            name: "b".into(),
            percent: Percent { basis_points: 7000 },
            next: next("end"),
        },
    ];
    let j = journey("sp", "visit", vec![step("ab", Action::Split(arms))]);
    let mut s = Sim::new(vec![j]);
    let mut a = 0;
    for i in 0..300 {
        let c = format!("c{i}");
        s.event(&c, "visit", "2026-01-01T10:00:00Z", json!({}));
        let d = s.take();
        let expect = if crate::hash::split_bucket("sp", "ab", &c) < 3000 {
            "a"
        } else {
            "b"
        };
        assert_eq!(
            d,
            vec![
                "entered sp".to_string(),
                format!("split sp ab {expect}"),
                "completed sp".into()
            ]
        );
        a += (expect == "a") as usize;
    }
    assert!((60..120).contains(&a), "{a}");
}

#[test]
fn branch_takes_first_match_else_following() {
    let j = journey(
        "b",
        "visit",
        vec![
            step(
                "check",
                Action::Branch(vec![BranchCase {
                    when: Some(cmp("profile.tier", Op::Eq, json!("vip"))),
                    next: next("vip"),
                }]),
            ),
            send("std", &["email"], "std"),
            Step {
                next: Some(Next::End),
                ..send("vip", &["email"], "vip")
            },
        ],
    );
    let mut s = Sim::new(vec![j]);
    s.event(
        "v",
        "profile_updated",
        "2026-01-01T09:00:00Z",
        json!({"email": "v@x", "tier": "vip"}),
    );
    s.event(
        "n",
        "profile_updated",
        "2026-01-01T09:00:00Z",
        json!({"email": "n@x"}),
    );
    s.event("v", "visit", "2026-01-01T10:00:00Z", json!({}));
    s.event("n", "visit", "2026-01-01T10:00:00Z", json!({}));
    let t: Vec<_> = s
        .commands()
        .into_iter()
        .map(|c| (c.customer_id, c.template))
        .collect();
    // The non-VIP falls through to `std`, then to `vip` (the following step).
    assert_eq!(
        t,
        vec![
            ("v".into(), "vip".into()),
            ("n".into(), "std".into()),
            ("n".into(), "vip".into())
        ]
    );
}

fn marketing(id: &str, channels: &[&str]) -> Journey {
    journey(id, &format!("{id}_go"), vec![send("s", channels, id)])
}

#[test]
fn frequency_caps_are_sliding_windows_across_channels() {
    let mut s = Sim::new(vec![marketing("m", &["email"]), marketing("p", &["push"])]);
    s.event("c", "profile_updated", "2026-01-05T09:00:00Z", contact());
    // email_weekly: 3 per 7d.
    for day in 5..8 {
        s.event(
            "c",
            "m_go",
            &format!("2026-01-{day:02}T12:00:00Z"),
            json!({}),
        );
    }
    s.event("c", "m_go", "2026-01-08T12:00:00Z", json!({}));
    let d = s.take();
    assert_eq!(
        d.iter().filter(|x| x.starts_with("sent m s email")).count(),
        3
    );
    assert!(d.contains(&"skipped_channel m s email frequency_cap:email_weekly".into()));
    assert!(d.contains(&"no_channel m s".into()));
    // all_weekly (5 per 7d, every channel): two push sends fill it.
    s.event("c", "p_go", "2026-01-08T13:00:00Z", json!({}));
    s.event("c", "p_go", "2026-01-08T14:00:00Z", json!({}));
    s.event("c", "p_go", "2026-01-08T15:00:00Z", json!({}));
    let d = s.take();
    assert_eq!(
        d.iter().filter(|x| x.starts_with("sent p s push")).count(),
        2
    );
    assert!(
        d.contains(&"skipped_channel p s push frequency_cap:all_weekly".into()),
        "{d:?}"
    );
    // Exactly 7d after the first email, it no longer counts: email_weekly has room, but
    // all_weekly still holds 2 emails + 2 push + ... = 4 in (now-7d, now] -> one more allowed.
    s.event("c", "m_go", "2026-01-12T12:00:00Z", json!({}));
    let d = s.take();
    assert!(d.contains(&"sent m s email".into()), "{d:?}");
    assert_eq!(
        s.engine.inspect("c", t("2026-01-12T12:00:00Z")).unwrap()["caps"][2]["used"],
        5
    );
}

#[test]
fn cap_skip_names_first_full_cap_in_config_order() {
    let mut cfg = config();
    cfg.frequency_caps[0].max = 1; // email_weekly
    cfg.frequency_caps[2].max = 1; // all_weekly
    let mut s = Sim::with_config(&cfg, vec![marketing("m", &["email"])]);
    s.event("c", "profile_updated", "2026-01-05T09:00:00Z", contact());
    s.event("c", "m_go", "2026-01-05T10:00:00Z", json!({}));
    s.event("c", "m_go", "2026-01-05T11:00:00Z", json!({}));
    assert!(s
        .take()
        .contains(&"skipped_channel m s email frequency_cap:email_weekly".into()));
}

#[test]
fn consent_opt_in_opt_out_and_withdrawal() {
    let mut s = Sim::new(vec![marketing("m", &["sms", "email"])]);
    s.event("c", "profile_updated", "2026-01-05T09:00:00Z", contact());
    s.event("c", "m_go", "2026-01-05T10:00:00Z", json!({}));
    assert_eq!(
        s.take()[1..3],
        [
            "skipped_channel m s sms no_consent".to_string(),
            "sent m s email".into()
        ]
    );
    s.event(
        "c",
        "consent_updated",
        "2026-01-05T10:30:00Z",
        json!({"channel": "sms", "status": "granted"}),
    );
    s.event(
        "c",
        "consent_updated",
        "2026-01-05T10:30:00Z",
        json!({"channel": "email", "status": "withdrawn"}),
    );
    s.event("c", "m_go", "2026-01-05T11:00:00Z", json!({}));
    assert_eq!(s.take()[1], "sent m s sms");
    s.event("c", "m_go", "2026-01-05T12:00:00Z", json!({}));
    let d = s.take();
    assert_eq!(
        d[1..4],
        [
            "skipped_channel m s sms frequency_cap:sms_daily".to_string(),
            "skipped_channel m s email no_consent".into(),
            "no_channel m s".into()
        ]
    );
}

#[test]
fn quiet_hours_defer_and_choose_again() {
    let mut s = Sim::new(vec![marketing("m", &["push", "email"])]);
    s.event("c", "profile_updated", "2026-01-05T09:00:00Z", contact());
    s.event("c", "m_go", "2026-01-05T22:30:00Z", json!({}));
    let d = s.out.decisions.last().unwrap().clone();
    assert_eq!(d.kind, DecisionKind::Deferred);
    assert_eq!(d.reason, Some(Reason::QuietHours));
    assert_eq!(d.channel.as_deref(), Some("push"));
    assert_eq!(d.until, Some(t("2026-01-06T08:00:00Z")));
    assert!(s.commands().is_empty());
    s.take();
    // Push token removed meanwhile: the choice is made again from scratch.
    s.event(
        "c",
        "profile_updated",
        "2026-01-06T01:00:00Z",
        json!({"push_token": null}),
    );
    s.until("2026-01-06T08:00:00Z");
    assert_eq!(
        s.take(),
        vec![
            "skipped_channel m s push unreachable",
            "sent m s email",
            "completed m"
        ]
    );
    assert_eq!(s.commands()[0].issued_at, t("2026-01-06T08:00:00Z"));
}

#[test]
fn quiet_hours_use_the_customer_zone_across_dst() {
    let mut s = Sim::new(vec![marketing("m", &["push"])]);
    s.event(
        "c",
        "profile_updated",
        "2026-03-07T09:00:00Z",
        json!({"push_token": "t", "timezone": "America/New_York"}),
    );
    // 2026-03-08 02:30 UTC is 21:30 EST on the 7th: quiet. DST starts at 02:00 local on the 8th,
    // so 08:00 local on the 8th is 12:00 UTC (EDT).
    s.event("c", "m_go", "2026-03-08T02:30:00Z", json!({}));
    assert_eq!(
        s.out.decisions.last().unwrap().until,
        Some(t("2026-03-08T12:00:00Z"))
    );
    s.until("2026-03-08T12:00:00Z");
    assert_eq!(s.take().last().unwrap(), "completed m");
    // Outside quiet hours in New York (16:00 UTC = 11:00 EDT) it sends at once.
    s.event("c", "m_go", "2026-03-08T16:00:00Z", json!({}));
    assert_eq!(s.take()[1], "sent m s push");
}

#[test]
fn withdrawal_affects_a_deferred_send() {
    let mut s = Sim::new(vec![marketing("m", &["push"])]);
    s.event("c", "profile_updated", "2026-01-05T09:00:00Z", contact());
    s.event("c", "m_go", "2026-01-05T23:00:00Z", json!({}));
    s.event(
        "c",
        "consent_updated",
        "2026-01-06T02:00:00Z",
        json!({"channel": "push", "status": "withdrawn"}),
    );
    s.take();
    s.until("2026-01-06T09:00:00Z");
    assert_eq!(
        s.take(),
        vec![
            "skipped_channel m s push no_consent",
            "no_channel m s",
            "completed m"
        ]
    );
    assert!(s.commands().is_empty());
}

#[test]
fn transactional_ignores_caps_and_quiet_hours_but_not_consent() {
    let mut j = marketing("tx", &["sms", "push"]);
    j.category = Category::Transactional;
    let mut cfg = config();
    cfg.frequency_caps[2].max = 0; // all_weekly always full for marketing
    let mut s = Sim::with_config(&cfg, vec![j, marketing("m", &["push"])]);
    s.event("c", "profile_updated", "2026-01-05T09:00:00Z", contact());
    s.event("c", "tx_go", "2026-01-05T23:00:00Z", json!({}));
    assert_eq!(
        s.take()[1..3],
        [
            "skipped_channel tx s sms no_consent".to_string(),
            "sent tx s push".into()
        ]
    );
    s.event("c", "tx_go", "2026-01-05T23:01:00Z", json!({}));
    assert_eq!(s.take()[2], "sent tx s push");
    assert!(s.engine.inspect("c", t("2026-01-05T23:02:00Z")).unwrap()["caps"][2]["used"] == 0);
    s.event(
        "c",
        "consent_updated",
        "2026-01-05T23:05:00Z",
        json!({"channel": "push", "status": "withdrawn"}),
    );
    s.event("c", "tx_go", "2026-01-05T23:10:00Z", json!({}));
    assert!(s
        .take()
        .contains(&"skipped_channel tx s push no_consent".into()));
    s.event("c", "m_go", "2026-01-06T12:00:00Z", json!({}));
    assert!(s
        .take()
        .contains(&"skipped_channel m s push no_consent".into()));
}

#[test]
fn goal_within_and_exit_false() {
    let mut j = journey(
        "g",
        "visit",
        vec![
            wait("w1", "1d"),
            send("s", &["email"], "t"),
            wait("w2", "30d"),
        ],
    );
    j.goal = Some(Goal {
        event: "buy".into(),
        condition: Some(cmp("event.properties.total", Op::Gt, json!(0))),
        within: Some(dur("7d")),
        exit: false,
    });
    j.exit_when = vec![EventMatch {
        event: "buy".into(),
        condition: Some(cmp("event.properties.total", Op::Gt, json!(100))),
    }];
    let mut s = Sim::new(vec![j]);
    s.event("c", "visit", "2026-01-01T00:00:00Z", json!({}));
    s.event("c", "buy", "2026-01-02T00:00:00Z", json!({"total": 0}));
    s.event("c", "buy", "2026-01-03T00:00:00Z", json!({"total": 5}));
    s.event("c", "buy", "2026-01-04T00:00:00Z", json!({"total": 6}));
    let d = s.take();
    assert_eq!(
        d.iter().filter(|x| x.starts_with("goal g")).count(),
        1,
        "{d:?}"
    );
    assert!(
        s.engine.active_instances() == vec![("g".into(), 1)],
        "exit: false keeps it in"
    );
    // Goal and exit by the same event: goal recorded, then exited.
    let mut j2 = journey("g2", "visit", vec![wait("w", "30d")]);
    j2.goal = Some(Goal {
        event: "buy".into(),
        condition: None,
        within: Some(dur("7d")),
        exit: false,
    });
    j2.exit_when = vec![EventMatch {
        event: "buy".into(),
        condition: None,
    }];
    let mut s = Sim::new(vec![j2.clone()]);
    s.event("c", "visit", "2026-01-01T00:00:00Z", json!({}));
    s.event("c", "buy", "2026-01-08T00:00:00Z", json!({}));
    assert_eq!(
        s.take(),
        vec!["entered g2", "goal g2 w", "exited g2 w"],
        "within is inclusive"
    );
    let mut s = Sim::new(vec![j2]);
    s.event("c", "visit", "2026-01-01T00:00:00Z", json!({}));
    s.event("c", "buy", "2026-01-08T00:00:01Z", json!({}));
    assert_eq!(
        s.take(),
        vec!["entered g2", "exited g2 w"],
        "after the window: no goal"
    );
}

#[test]
fn goal_with_exit_ends_alone_and_blocks_reentry_by_same_event() {
    let mut j = journey("g", "buy", vec![wait("w", "30d")]);
    j.goal = Some(Goal {
        event: "buy".into(),
        condition: None,
        within: None,
        exit: true,
    });
    let mut s = Sim::new(vec![j]);
    s.event("c", "buy", "2026-01-01T00:00:00Z", json!({}));
    s.event("c", "buy", "2026-01-02T00:00:00Z", json!({}));
    assert_eq!(
        s.take(),
        vec![
            "entered g",
            "goal g w",
            "entry_suppressed g ended_by_same_event"
        ]
    );
    assert_eq!(s.engine.pending_timers(), 0);
    s.event("c", "buy", "2026-01-03T00:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entered g"]);
}

/// The trap of a repeat-purchase journey: its `wait_for` ends the instance on the very event
/// that triggers it, so the repeat buyer is not entered again; a decision says so.
#[test]
fn wait_for_ending_on_the_trigger_event_says_why_there_is_no_reentry() {
    let wf = WaitFor {
        event: "buy".into(),
        condition: None,
        timeout: dur("30d"),
        on_event: Some(Next::End),
        on_timeout: None,
        for_send: None,
    };
    let mut j = journey(
        "again",
        "buy",
        vec![step("wait_again", Action::WaitFor(wf))],
    );
    j.entry.reentry = Reentry::Always;
    let mut s = Sim::new(vec![j]);
    s.event("c", "buy", "2026-01-01T00:00:00Z", json!({}));
    s.event("c", "buy", "2026-01-02T00:00:00Z", json!({}));
    assert_eq!(
        s.take(),
        vec![
            "entered again",
            "completed again",
            "entry_suppressed again ended_by_same_event"
        ]
    );
    // An event that ends the instance without matching the trigger says nothing more.
    let mut j = journey("other", "visit", vec![wait("w", "30d")]);
    j.exit_when = vec![EventMatch {
        event: "buy".into(),
        condition: None,
    }];
    let mut s = Sim::new(vec![j]);
    s.event("c", "visit", "2026-01-01T00:00:00Z", json!({}));
    s.event("c", "buy", "2026-01-02T00:00:00Z", json!({}));
    assert_eq!(s.take(), vec!["entered other", "exited other w"]);
}

fn wait_for_journey() -> Journey {
    let wf = WaitFor {
        event: "message_clicked".into(),
        condition: Some(cmp("event.properties.campaign", Op::Eq, json!("spring"))),
        for_send: None,
        timeout: dur("1d"),
        on_event: Some(next("thanks")),
        on_timeout: Some(next("nudge")),
    };
    journey(
        "wf",
        "signup",
        vec![
            step("wait_click", Action::WaitFor(wf)),
            Step {
                next: Some(Next::End),
                ..send("thanks", &["email"], "thanks")
            },
            send("nudge", &["email"], "nudge"),
        ],
    )
}

#[test]
fn wait_for_event_and_timeout_paths() {
    let mut s = Sim::new(vec![wait_for_journey()]);
    s.event("a", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("b", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("a", "signup", "2026-01-01T10:00:00Z", json!({}));
    s.event("b", "signup", "2026-01-01T10:00:00Z", json!({}));
    s.event(
        "a",
        "message_clicked",
        "2026-01-01T11:00:00Z",
        json!({"campaign": "autumn"}),
    );
    s.event(
        "a",
        "message_clicked",
        "2026-01-01T12:00:00Z",
        json!({"campaign": "spring"}),
    );
    assert_eq!(s.engine.pending_timers(), 1);
    s.until("2026-01-03T00:00:00Z");
    let cmds: Vec<_> = s
        .commands()
        .into_iter()
        .map(|c| (c.customer_id, c.template, c.issued_at))
        .collect();
    assert_eq!(
        cmds,
        vec![
            ("a".into(), "thanks".into(), t("2026-01-01T12:00:00Z")),
            ("b".into(), "nudge".into(), t("2026-01-02T10:00:00Z")),
        ]
    );
}

/// Sends `first`, then waits for an `opened` of that very message (`for_send`): thanks on an
/// open, a nudge after a day without one.
fn for_send_journey() -> Journey {
    let wf = WaitFor {
        event: "opened".into(),
        condition: None,
        for_send: Some("first".into()),
        timeout: dur("1d"),
        on_event: Some(next("thanks")),
        on_timeout: Some(next("nudge")),
    };
    let mut j = journey(
        "fs",
        "signup",
        vec![
            send("first", &["email"], "first"),
            step("wait_open", Action::WaitFor(wf)),
            Step {
                next: Some(Next::End),
                ..send("thanks", &["email"], "thanks")
            },
            send("nudge", &["email"], "nudge"),
        ],
    );
    j.category = Category::Transactional;
    j
}

#[test]
fn sent_decisions_carry_the_command_id() {
    let mut s = Sim::new(vec![for_send_journey()]);
    s.event("a", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("a", "signup", "2026-01-01T10:00:00Z", json!({}));
    let sent: Vec<_> = s
        .out
        .decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Sent)
        .map(|d| d.command_id.clone())
        .collect();
    let cmds = s.commands();
    assert_eq!(sent, vec![Some(cmds[0].command_id.clone())]);
    assert!(s
        .out
        .decisions
        .iter()
        .filter(|d| d.kind != DecisionKind::Sent)
        .all(|d| d.command_id.is_none()));
}

#[test]
fn wait_for_for_send_matches_only_the_command_that_step_sent() {
    let mut s = Sim::new(vec![for_send_journey()]);
    for c in ["a", "b"] {
        s.event(c, "profile_updated", "2026-01-01T00:00:00Z", contact());
    }
    s.event("a", "signup", "2026-01-01T10:00:00Z", json!({}));
    s.event("b", "signup", "2026-01-01T10:00:00Z", json!({}));
    let cmds = s.commands();
    let (a_first, b_first) = (&cmds[0].command_id, &cmds[1].command_id);
    assert_eq!(
        (cmds[0].customer_id.as_str(), cmds[1].customer_id.as_str()),
        ("a", "b")
    );
    s.take();
    // Not this message: no command id, a non-string one, another customer's, an unknown one.
    for props in [
        json!({}),
        json!({"command_id": 7}),
        json!({"command_id": b_first}),
        json!({"command_id": "0000000000000000"}),
    ] {
        s.event("a", "opened", "2026-01-01T11:00:00Z", props);
    }
    assert_eq!(s.take(), Vec::<String>::new());
    assert_eq!(s.engine.pending_timers(), 2);
    // This message: a's open moves it on at once.
    s.event(
        "a",
        "opened",
        "2026-01-01T12:00:00Z",
        json!({"command_id": a_first}),
    );
    assert_eq!(s.take(), vec!["sent fs thanks email", "completed fs"]);
    s.until("2026-01-03T00:00:00Z");
    let cmds: Vec<_> = s
        .commands()
        .into_iter()
        .map(|c| (c.customer_id, c.template, c.issued_at))
        .collect();
    assert_eq!(
        cmds,
        vec![
            ("a".into(), "thanks".into(), t("2026-01-01T12:00:00Z")),
            ("b".into(), "nudge".into(), t("2026-01-02T10:00:00Z")),
        ]
    );
}

#[test]
fn wait_until_next_local_time() {
    let mut j = journey(
        "wu",
        "visit",
        vec![
            step(
                "morning",
                Action::WaitUntil(TimeOfDay {
                    hour: 9,
                    minute: 30,
                }),
            ),
            send("s", &["email"], "t"),
        ],
    );
    j.category = Category::Transactional;
    let mut s = Sim::new(vec![j]);
    s.event(
        "c",
        "profile_updated",
        "2026-07-01T00:00:00Z",
        json!({"email": "e", "timezone": "Europe/London"}),
    );
    s.event("c", "visit", "2026-07-01T10:00:00Z", json!({}));
    assert_eq!(s.engine.next_due(), Some(t("2026-07-02T08:30:00Z")));
}

#[test]
fn bad_timezone_is_ignored_with_a_decision() {
    let mut s = Sim::new(vec![]);
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T00:00:00Z",
        json!({"timezone": "Europe/Paris"}),
    );
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T00:00:00Z",
        json!({"timezone": "Mars/Olympus", "tier": "vip"}),
    );
    assert_eq!(s.take(), vec!["bad_timezone Mars/Olympus"]);
    let v = s.engine.inspect("c", t("2026-01-01T00:00:00Z")).unwrap();
    assert_eq!(v["timezone"], "Europe/Paris");
    assert_eq!(v["profile_keys"], json!(["tier", "timezone"]));
}

#[test]
fn data_literals_and_paths_resolved_at_send_time() {
    let mut j = journey(
        "d",
        "cart_updated",
        vec![wait("w", "1h"), send("s", &["email"], "t")],
    );
    if let Action::Send(s) = &mut j.steps[1].action {
        s.data.insert(
            "cart_value".into(),
            DataValue::Path(path("trigger.properties.cart_value")),
        );
        s.data.insert(
            "sku".into(),
            DataValue::Path(path("trigger.properties.item.sku")),
        );
        s.data.insert(
            "missing".into(),
            DataValue::Path(path("trigger.properties.nope")),
        );
        s.data
            .insert("tier".into(), DataValue::Path(path("profile.tier")));
        s.data
            .insert("campaign".into(), DataValue::Literal(json!("spring")));
    }
    let mut s = Sim::new(vec![j]);
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T00:00:00Z",
        json!({"email": "e", "tier": "gold"}),
    );
    s.event(
        "c",
        "cart_updated",
        "2026-01-01T10:00:00Z",
        json!({"cart_value": 59.0, "item": {"sku": "T"}, "big": "x"}),
    );
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T10:30:00Z",
        json!({"tier": "vip"}),
    );
    s.until("2026-01-01T11:00:00Z");
    let c = &s.commands()[0];
    assert_eq!(
        serde_json::Value::Object(c.data.clone()).to_string(),
        r#"{"cart_value":59.0,"sku":{"sku":"T"},"tier":"vip","campaign":"spring"}"#
            .replace(r#""sku":{"sku":"T"}"#, r#""sku":"T""#)
    );
}

#[test]
fn if_no_channel_exit() {
    let mut j = journey(
        "x",
        "go",
        vec![send("s", &["sms"], "t"), send("s2", &["email"], "t")],
    );
    if let Action::Send(s) = &mut j.steps[0].action {
        s.if_no_channel = IfNoChannel::Exit;
    }
    let mut s = Sim::new(vec![j]);
    s.event("c", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("c", "go", "2026-01-01T10:00:00Z", json!({}));
    assert_eq!(
        s.take(),
        vec![
            "entered x",
            "skipped_channel x s sms no_consent",
            "no_channel x s",
            "exited x s no_channel"
        ]
    );
}

#[test]
fn paused_and_draining_status() {
    let mk = |status| {
        let mut j = journey("p", "go", vec![wait("w", "1h"), send("s", &["email"], "t")]);
        j.status = status;
        j
    };
    let cfg = config();
    let mut s = Sim::new(vec![mk(Status::Active)]);
    s.event("c", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("c", "go", "2026-01-01T10:00:00Z", json!({}));
    s.take();
    s.engine
        .set_catalog(Arc::new(Catalog::new(&cfg, vec![mk(Status::Paused)])));
    s.event("d", "go", "2026-01-01T10:10:00Z", json!({}));
    assert_eq!(s.take(), vec!["entry_suppressed p status"]);
    s.until("2026-01-01T12:00:00Z");
    assert!(s.take().is_empty(), "wait ended while paused: parked");
    assert_eq!(s.engine.pending_timers(), 0);
    assert_eq!(s.engine.active_instances(), vec![("p".into(), 1)]);
    s.engine
        .set_catalog(Arc::new(Catalog::new(&cfg, vec![mk(Status::Draining)])));
    s.event("e", "go", "2026-01-01T12:30:00Z", json!({}));
    assert_eq!(
        s.take(),
        vec!["sent p s email", "completed p", "entry_suppressed p status"]
    );
    // Resumed at the engine clock when the catalog was swapped (the last `fire_due`).
    assert_eq!(s.commands()[0].issued_at, t("2026-01-01T12:00:00Z"));

    // A send reached while paused parks too, and resumes on activation.
    let mut s = Sim::new(vec![mk(Status::Active)]);
    s.event("c", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("c", "go", "2026-01-01T10:00:00Z", json!({}));
    s.engine
        .set_catalog(Arc::new(Catalog::new(&cfg, vec![mk(Status::Paused)])));
    s.until("2026-01-01T11:00:00Z");
    s.take();
    s.until("2026-01-01T13:00:00Z");
    s.engine
        .set_catalog(Arc::new(Catalog::new(&cfg, vec![mk(Status::Active)])));
    s.until("2026-01-01T13:00:00Z");
    assert_eq!(s.take(), vec!["sent p s email", "completed p"]);
}

#[test]
fn hot_reload_keeps_the_entered_version() {
    let v1 = journey(
        "r",
        "go",
        vec![wait("w", "1h"), send("s", &["email"], "v1")],
    );
    let mut v2 = journey(
        "r",
        "go",
        vec![wait("w", "1h"), send("s", &["email"], "v2")],
    );
    v2.version = 2;
    let cfg = config();
    let mut s = Sim::new(vec![v1]);
    s.event("a", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("b", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("a", "go", "2026-01-01T10:00:00Z", json!({}));
    s.engine.set_catalog(Arc::new(Catalog::new(&cfg, vec![v2])));
    s.event("b", "go", "2026-01-01T10:00:00Z", json!({}));
    s.until("2026-01-01T11:00:00Z");
    let c: Vec<_> = s
        .commands()
        .into_iter()
        .map(|c| (c.template, c.journey_version))
        .collect();
    assert_eq!(c, vec![("v1".into(), 1), ("v2".into(), 2)]);
}

#[test]
fn priority_orders_journeys_for_a_scarce_cap() {
    let mut cfg = config();
    cfg.frequency_caps[0].max = 1;
    let mut lo = journey("a_low", "go", vec![send("s", &["email"], "low")]);
    lo.priority = 1;
    let mut hi = journey("z_high", "go", vec![send("s", &["email"], "high")]);
    hi.priority = 5;
    let mut s = Sim::with_config(&cfg, vec![lo, hi]);
    s.event("c", "profile_updated", "2026-01-01T00:00:00Z", contact());
    s.event("c", "go", "2026-01-01T10:00:00Z", json!({}));
    assert_eq!(s.commands()[0].template, "high");
}

#[test]
fn export_import_round_trip_with_timers() {
    let mut s = Sim::new(vec![cart_journey(), wait_for_journey()]);
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T00:00:00Z",
        json!({"email": "e", "timezone": "Europe/London", "prefs": {"a": [1]}}),
    );
    s.event(
        "c",
        "consent_updated",
        "2026-01-01T00:00:00Z",
        json!({"channel": "sms", "status": "granted"}),
    );
    s.event(
        "c",
        "cart_updated",
        "2026-01-01T10:00:00Z",
        json!({"cart_value": 30}),
    );
    s.event("c", "signup", "2026-01-01T10:00:00Z", json!({}));
    let bytes = s.engine.export_customer("c").unwrap();
    assert_eq!(bytes[0], crate::state::FORMAT);
    let mut e2 = Engine::new(Arc::new(Catalog::new(
        &config(),
        vec![cart_journey(), wait_for_journey()],
    )));
    e2.import_customer("c", &bytes).unwrap();
    assert_eq!(e2.export_customer("c").unwrap(), bytes);
    assert_eq!(e2.customer_ids().collect::<Vec<_>>(), ["c"]);
    assert_eq!(e2.pending_timers(), 2);
    assert_eq!(e2.next_due(), s.engine.next_due());
    assert_eq!(
        e2.inspect("c", t("2026-01-01T10:00:00Z")),
        s.engine.inspect("c", t("2026-01-01T10:00:00Z"))
    );
    assert!(e2.import_customer("c", &[9, 1, 2]).is_err());
    assert!(e2.import_customer("c", &[]).is_err());
    e2.remove_customer("c");
    assert_eq!(e2.customer_count(), 0);
    assert_eq!(e2.pending_timers(), 0);
    assert_eq!(e2.customer_ids().count(), 0);
    assert_eq!(e2.export_customer("c"), None);
}

#[test]
fn idle_customer_state_is_small() {
    let mut s = Sim::new(vec![cart_journey()]);
    s.event(
        "c",
        "profile_updated",
        "2026-01-01T00:00:00Z",
        json!({"email": "ada@example.com", "timezone": "Europe/London"}),
    );
    for i in 0..40 {
        s.event(
            "c",
            "page_viewed",
            &format!("2026-01-01T00:{:02}:00Z", i),
            json!({}),
        );
    }
    let n = s.engine.customer_bytes("c").unwrap();
    assert!(n < 512, "{n} bytes");
    // Having been through a journey adds the lazily allocated part, still small.
    s.event(
        "c",
        "cart_updated",
        "2026-01-01T01:00:00Z",
        json!({"cart_value": 30}),
    );
    s.until("2026-01-01T03:00:00Z");
    assert_eq!(s.engine.active_instances(), vec![]);
    let n2 = s.engine.customer_bytes("c").unwrap();
    assert!(n2 > n && n2 < 768, "{n2} bytes");
}

#[test]
fn active_counts_follow_imports_that_replace_or_drop_instances() {
    let mut s = Sim::new(vec![cart_journey(), wait_for_journey()]);
    for c in ["a", "b"] {
        s.event(
            c,
            "cart_updated",
            "2026-01-01T10:00:00Z",
            json!({"cart_value": 30}),
        );
        s.event(c, "signup", "2026-01-01T10:00:00Z", json!({}));
    }
    let both = vec![("cart_abandonment".into(), 2), ("wf".into(), 2)];
    assert_eq!(s.engine.active_instances(), both);
    let a = s.engine.export_customer("a").unwrap();
    // Replacing a customer's state with the same state leaves the counts as they were.
    s.engine.import_customer("a", &a).unwrap();
    assert_eq!(s.engine.active_instances(), both);
    assert_eq!(s.engine.recount_active_instances(), both);
    // Replacing it with a state outside every journey takes its instances out.
    let mut idle = Sim::new(vec![cart_journey()]);
    idle.event("a", "page_viewed", "2026-01-01T10:00:00Z", json!({}));
    s.engine
        .import_customer("a", &idle.engine.export_customer("a").unwrap())
        .unwrap();
    let one_each = vec![("cart_abandonment".into(), 1), ("wf".into(), 1)];
    assert_eq!(s.engine.active_instances(), one_each);
    assert_eq!(s.engine.recount_active_instances(), one_each);
    // An engine that knows only the cart journey drops the `wf` instance on import.
    let mut other = Engine::new(Arc::new(Catalog::new(&config(), vec![cart_journey()])));
    other.import_customer("a", &a).unwrap();
    let cart_only = vec![("cart_abandonment".into(), 1)];
    assert_eq!(other.active_instances(), cart_only);
    assert_eq!(other.recount_active_instances(), cart_only);
    assert_eq!(other.pending_timers(), other.recount_pending_timers());
    other.remove_customer("a");
    assert_eq!(other.active_instances(), vec![]);
    assert_eq!(s.engine.pending_timers(), s.engine.recount_pending_timers());
}
