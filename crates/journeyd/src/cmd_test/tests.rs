//! Unit tests of the record descriptions.

use super::describe::describe;
use super::run::data_eq;
use super::*;
use chrono::{DateTime, Utc};
use journey_engine::Reason;
use serde_json::json;

fn decision(kind: &'static str) -> Decision {
    Decision {
        at: DateTime::parse_from_rfc3339("2026-11-23T11:15:00Z")
            .unwrap()
            .with_timezone(&Utc),
        customer_id: "c-ada".into(),
        journey_id: Some("cart_abandonment".into()),
        journey_version: Some(3),
        step_id: Some("first_reminder".into()),
        kind: kind.parse().expect("a decision kind"),
        channel: Some("sms".into()),
        reason: Some(Reason::FrequencyCap("frequency_cap:sms_daily".into())),
        event_id: None,
        holdout: Some(false),
        until: None,
        branch: None,
        command_id: None,
    }
}

#[test]
fn decisions_read_as_sentences() {
    let r = Record {
        decision: decision("skipped_channel"),
        command: None,
    };
    assert_eq!(
        describe(&r),
        "2026-11-23T11:15:00Z  c-ada  cart_abandonment/first_reminder  skipped sms: \
             frequency_cap:sms_daily"
    );
    let mut d = decision("entered");
    d.holdout = Some(true);
    assert_eq!(
        describe_decision(&d),
        "entered (held out: will receive nothing)"
    );
}

#[test]
fn numbers_in_data_compare_by_value() {
    assert!(data_eq(Some(&json!(59.0)), &json!(59)));
    assert!(!data_eq(Some(&json!("59")), &json!(59)));
    assert!(!data_eq(None, &json!(1)));
}
