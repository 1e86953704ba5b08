//! The input contracts of `journeyd run` against a real Apache Kafka broker
//! (docs/reference/events.md): topics in the Segment and CloudEvents formats (binary mode, with
//! `ce_*` headers) are read like native ones; a record whose key is not its customer id, a
//! Segment call journeyd does not read, and an event type the catalogue does not list (with
//! `unknown_events: dead_letter`) go to the dead-letter topic with their reason, and the
//! partition goes on. The commands and decisions it emits validate against their schemas.

use chrono::Utc;
use journeyd_testkit::*;
use serde_json::{json, Value};
use std::fs;
use std::time::Duration;

const READY: Duration = Duration::from_secs(90);

#[test]
fn segment_and_cloudevents_topics_keys_and_the_catalogue() {
    let s = Scenario::new("inputs_formats", &["welcome"], 1);
    let segment_topic = format!("{}.segment", s.prefix);
    let cloud_topic = format!("{}.cloudevents", s.prefix);
    s.kafka.create_topics(&[
        (segment_topic.clone(), 1, false),
        (cloud_topic.clone(), 1, false),
    ]);
    let port = free_port();
    let config = s.write_config("a", port);
    let text = fs::read_to_string(&config).unwrap();
    let native_topics = format!("input_topics: [\"{}.events\"]", s.prefix);
    assert!(
        text.contains(&native_topics),
        "the fixture lists one input topic"
    );
    let text = text.replace(
        &native_topics,
        &format!(
            "input_topics:\n    - \"{}.events\"\n    - {{ name: \"{segment_topic}\", format: segment }}\n    - {{ name: \"{cloud_topic}\", format: cloudevents, customer_id_attribute: customerid }}",
            s.prefix
        ),
    ) + "\nevent_catalog:\n  unknown_events: dead_letter\n  events:\n    signed_up: { properties: [source] }\n";
    fs::write(&config, text).unwrap();
    let mut jd = s.spawn_run(&config, "run", port);
    jd.wait_ready(READY);

    let now = Utc::now();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let keyed = |key: &str, payload: Vec<u8>| Outgoing {
        key: key.to_string(),
        payload,
        partition: Some(0),
    };
    // Native: one customer welcomed; a record keyed by someone else, and a type the
    // catalogue lacks, dead-lettered.
    let native = [
        event(
            "n-1",
            "c-native",
            "profile_updated",
            now,
            json!({"email": "n@example.com"}),
        ),
        event("n-2", "c-native", "signed_up", now, json!({"source": "ad"})),
    ];
    let misfiled = event("n-3", "c-native", "signed_up", now, json!({}));
    let unknown = event("n-4", "c-native", "app_opened", now, json!({}));
    let mut records: Vec<Outgoing> = native.iter().map(Outgoing::event).collect();
    records.push(keyed(
        "c-someone-else",
        serde_json::to_vec(&misfiled).unwrap(),
    ));
    records.push(keyed("c-native", serde_json::to_vec(&unknown).unwrap()));
    s.kafka.produce(&s.events_topic(), &records);

    // Segment: identify + track welcome a customer; a group call is dead-lettered.
    let segment = [
        json!({"type": "identify", "userId": "c-segment", "messageId": "s-1", "timestamp": at, "traits": {"email": "s@example.com"}}),
        json!({"type": "track", "event": "signed_up", "userId": "c-segment", "messageId": "s-2", "timestamp": at, "properties": {"source": "web"}}),
        json!({"type": "group", "groupId": "g-1", "userId": "c-segment", "messageId": "s-3", "timestamp": at}),
    ];
    let records: Vec<Outgoing> = segment
        .iter()
        .map(|m| keyed("c-segment", serde_json::to_vec(m).unwrap()))
        .collect();
    s.kafka.produce(&segment_topic, &records);

    // CloudEvents in binary mode, the customer in the `customerid` extension attribute.
    for (id, ty, data) in [
        ("ce-1", "profile_updated", json!({"email": "c@example.com"})),
        ("ce-2", "signed_up", json!({"source": "crm"})),
    ] {
        s.kafka.produce_with_headers(
            &cloud_topic,
            &[keyed("c-cloud", serde_json::to_vec(&data).unwrap())],
            &[
                ("ce_specversion", "1.0"),
                ("ce_id", id),
                ("ce_source", "//crm.example.com"),
                ("ce_type", ty),
                ("ce_time", &at),
                ("ce_customerid", "c-cloud"),
                ("content-type", "application/json"),
            ],
        );
    }

    let topics = s.action_topics();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let all_commands: Vec<Value> = s
        .kafka
        .read_committed_n(&topics, 3, Duration::from_secs(60), Duration::from_secs(2))
        .iter()
        .map(Record::json)
        .collect();
    // What `run` emits validates against the published schemas (`journeyd schema --kind`).
    for c in &all_commands {
        assert_valid(journey_spec::contracts::command_schema(), c);
    }
    let decisions_topic = s.decisions_topic();
    for d in s.kafka.read_committed_n(
        &[&decisions_topic],
        6,
        Duration::from_secs(30),
        Duration::from_secs(2),
    ) {
        assert_valid(journey_spec::contracts::decision_schema(), &d.json());
    }
    let commands: Vec<&Value> = all_commands
        .iter()
        .filter(|c| c["template"] == "welcome_1")
        .collect();
    let mut welcomed: Vec<(String, String)> = commands
        .iter()
        .map(|c| {
            (
                c["customer_id"].as_str().unwrap().to_string(),
                c["data"]["source"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    welcomed.sort();
    assert_eq!(
        welcomed,
        [
            ("c-cloud".to_string(), "crm".to_string()),
            ("c-native".to_string(), "ad".to_string()),
            ("c-segment".to_string(), "web".to_string()),
        ]
    );

    let dl_topic = s.dead_letter_topic();
    let dead = s.kafka.read_committed_n(
        &[&dl_topic],
        3,
        Duration::from_secs(30),
        Duration::from_secs(2),
    );
    let mut reasons: Vec<(String, String)> = dead
        .iter()
        .map(|r| {
            (
                r.headers.get("source_topic").cloned().unwrap_or_default(),
                r.headers.get("error").cloned().unwrap_or_default(),
            )
        })
        .collect();
    reasons.sort();
    let mut want = vec![
        (
            s.events_topic(),
            r#"record key "c-someone-else" is not the event's customer_id "c-native""#.to_string(),
        ),
        (
            s.events_topic(),
            "event type `app_opened` is not in the event catalog".to_string(),
        ),
        (
            segment_topic.clone(),
            "Segment `group` calls are not supported; journeyd reads track, identify, page and screen".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(reasons, want);

    let text = jd
        .wait_metrics(Duration::from_secs(10), |t| {
            metric_sum(t, "journeyd_dead_letters_total", &[]) >= 3.0
        })
        .expect("dead letters counted in /metrics");
    for reason in ["key_mismatch", "unknown_type", "unsupported"] {
        assert_eq!(
            metric_sum(&text, "journeyd_dead_letters_total", &[("reason", reason)]),
            1.0,
            "journeyd_dead_letters_total{{reason={reason}}}"
        );
    }
    assert!(jd.is_running(), "bad input must not stop the engine");
    let (_, clean) = jd.terminate(Duration::from_secs(30));
    assert!(clean, "journeyd stops cleanly");
}

fn assert_valid(schema: Value, value: &Value) {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("urn:journeyd:x.json", schema)
        .unwrap();
    let index = compiler
        .compile("urn:journeyd:x.json", &mut schemas)
        .unwrap();
    if let Err(e) = schemas.validate(value, index) {
        panic!("not valid: {e:#}\n{value}");
    }
}
