//! Unit tests of the report: the lift interval, the line scanner, the counting of silent steps,
//! the chart's scale.

use super::chart::nice_step;
use super::html::lift;
use super::read::{partition, quick_field};
use super::*;
use journey_spec::Journey;
use std::path::Path;

#[test]
fn lift_interval_brackets_the_difference() {
    let (p1, p0, lo, hi) = lift(300, 1000, 20, 100).unwrap();
    assert!((p1 - 0.3).abs() < 1e-9 && (p0 - 0.2).abs() < 1e-9);
    assert!(lo < 0.1 && 0.1 < hi);
    assert!(lo > 0.0 - 0.1 && hi < 0.2, "{lo} {hi}");
    assert_eq!(lift(1, 10, 0, 0), None);
}

#[test]
fn customer_ids_are_found_without_parsing_only_when_unambiguous() {
    let q = |l: &str| quick_field(l.as_bytes(), b"\"customer_id\"").map(|v| v.to_vec());
    assert_eq!(
        q(r#"{"event_id":"e","customer_id" : "c-42","type":"t"}"#),
        Some(b"c-42".to_vec())
    );
    assert_eq!(q(r#"{"customer_id":"a\"b"}"#), None, "escapes: parse it");
    assert_eq!(q(r#"{"customer_id":5}"#), None);
    assert_eq!(
        q(r#"{"properties":{"customer_id":"x"},"customer_id":"c"}"#),
        None,
        "twice: parse it"
    );
    assert_eq!(q("not json"), None);
    assert_eq!(partition(b"c-42", 1), 0);
    assert!(partition(b"c-42", 4) < 4);
}

fn decision(kind: &'static str, step: Option<&str>) -> Decision {
    Decision {
        at: DateTime::parse_from_rfc3339("2026-11-23T11:15:00Z")
            .unwrap()
            .with_timezone(&Utc),
        customer_id: "c-1".into(),
        journey_id: Some("cart_abandonment".into()),
        journey_version: Some(3),
        step_id: step.map(Into::into),
        kind: kind.parse().expect("a decision kind"),
        channel: None,
        reason: None,
        event_id: None,
        holdout: Some(false),
        until: None,
        branch: None,
        command_id: None,
    }
}

/// Waits and branches record nothing: they are counted along the only path between the
/// steps that do.
#[test]
fn silent_steps_are_counted_along_the_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = journey_spec::load_config(&root.join("deploy/journeyd.yaml")).unwrap();
    let journeys = journey_spec::load_journeys_dir(&config.journeys_dir, &config).unwrap();
    let cart: Vec<Journey> = journeys
        .into_iter()
        .filter(|j| j.id == "cart_abandonment")
        .collect();
    let mut run = Run::new(&cart);
    run.decision(&decision("entered", None), None);
    run.decision(&decision("sent", Some("first_reminder")), None);
    run.decision(&decision("sent", Some("second_reminder")), None);
    run.decision(&decision("completed", None), None);
    let j = &run.journeys[0];
    let node = |key: &str| j.node_counts[j.index[key]];
    for key in [
        "trigger",
        "entry",
        "step:wait_an_hour",
        "step:first_reminder",
        "step:wait_for_click",
        "step:vip_check",
        "step:second_reminder",
        "end",
    ] {
        assert_eq!(node(key), 1, "{key}");
    }
    assert_eq!(node("step:vip_offer"), 0);
    let edge = |from: &str, label: Option<&str>| {
        j.flow
            .edges
            .iter()
            .position(|e| e.from == from && e.label.as_deref() == label)
            .map(|k| j.edge_counts[k])
    };
    assert_eq!(edge("step:wait_for_click", Some("timeout 1d")), Some(1));
    assert_eq!(
        edge("step:wait_for_click", Some("message_clicked")),
        Some(0)
    );
    assert_eq!(edge("step:vip_check", Some("else")), Some(1));
    assert_eq!(edge("step:second_reminder", None), Some(1), "to the end");
    assert!(run.position.get("c-1").is_none_or(Vec::is_empty));
}

#[test]
fn chart_steps_are_round() {
    assert_eq!(nice_step(7), 2);
    assert_eq!(nice_step(100), 20);
    assert_eq!(nice_step(1234), 500);
    assert_eq!(nice_step(0), 1);
}
