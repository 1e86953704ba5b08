//! Events in the formats other teams already produce (`simulate --format segment|cloudevents`,
//! docs/reference/events.md "Other formats"): every example scenario's events, converted here
//! to Segment Spec messages and to CloudEvents, give exactly the commands and decisions of the
//! native events.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A native event as Segment (or RudderStack) writes it.
fn to_segment(e: &Value) -> Value {
    let common = |call: &str| {
        json!({
            "type": call,
            "messageId": e["event_id"],
            "userId": e["customer_id"],
            "anonymousId": "anon-device-1",
            "timestamp": e["timestamp"],
            "sentAt": e["timestamp"],
            "context": { "library": { "name": "analytics.js" } },
        })
    };
    let properties = e.get("properties").cloned().unwrap_or(json!({}));
    match e["type"].as_str().unwrap() {
        "profile_updated" => {
            let mut m = common("identify");
            m["traits"] = properties;
            m
        }
        "page_viewed" => {
            let mut m = common("page");
            m["properties"] = properties;
            m
        }
        "screen_viewed" => {
            let mut m = common("screen");
            m["properties"] = properties;
            m
        }
        other => {
            let mut m = common("track");
            m["event"] = json!(other);
            m["properties"] = properties;
            m
        }
    }
}

/// A native event as a CloudEvent in JSON structured mode.
fn to_cloudevent(e: &Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": e["event_id"],
        "source": "//shop.example.com/tracking",
        "type": e["type"],
        "subject": e["customer_id"],
        "time": e["timestamp"],
        "datacontenttype": "application/json",
        "data": e.get("properties").cloned().unwrap_or(json!({})),
    })
}

/// stdout and decisions of `simulate --format FORMAT` over `events` (JSON lines).
fn simulate(scenario: &Path, format: &str, events: &str) -> (String, String) {
    let temp = tempfile::tempdir().unwrap();
    let events_file = temp.path().join("events.jsonl");
    std::fs::write(&events_file, events).unwrap();
    let decisions = temp.path().join("decisions.jsonl");
    let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
    command
        .arg("simulate")
        .arg("--quiet")
        .arg("--config")
        .arg(repo_root().join("deploy/journeyd.yaml"))
        .arg("--format")
        .arg(format)
        .arg("--events")
        .arg(&events_file)
        .arg("--decisions")
        .arg(&decisions);
    if let Ok(until) = std::fs::read_to_string(scenario.join("until")) {
        command.arg("--until").arg(until.trim());
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{format}: {stderr}");
    assert_eq!(stderr, "", "{format}: every converted line must decode");
    (
        String::from_utf8(output.stdout).unwrap(),
        std::fs::read_to_string(&decisions).unwrap(),
    )
}

#[test]
fn every_scenario_gives_the_same_output_in_every_format() {
    let mut scenarios = 0;
    for entry in std::fs::read_dir(repo_root().join("tests/scenarios")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(native) = std::fs::read_to_string(dir.join("events.jsonl")) else {
            continue;
        };
        scenarios += 1;
        let events: Vec<Value> = native
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let convert = |f: fn(&Value) -> Value| -> String {
            events.iter().map(|e| format!("{}\n", f(e))).collect()
        };
        let want = simulate(&dir, "native", &native);
        assert!(
            !want.0.is_empty() && !want.1.is_empty(),
            "{}",
            dir.display()
        );
        for (format, lines) in [
            ("segment", convert(to_segment)),
            ("cloudevents", convert(to_cloudevent)),
        ] {
            let got = simulate(&dir, format, &lines);
            assert_eq!(
                got.0,
                want.0,
                "{}: commands differ in {format}",
                dir.display()
            );
            assert_eq!(
                got.1,
                want.1,
                "{}: decisions differ in {format}",
                dir.display()
            );
        }
    }
    assert!(scenarios >= 8);
}

#[test]
fn unsupported_segment_calls_are_reported_and_skipped() {
    let lines = [
        json!({"type": "group", "groupId": "g-1", "userId": "c-1", "messageId": "m-1", "timestamp": "2026-11-23T10:00:00Z"}),
        json!({"type": "track", "event": "page_viewed", "userId": "c-1", "messageId": "m-2", "timestamp": "2026-11-23T10:00:00Z"}),
        json!({"type": "alias", "previousId": "a-1", "userId": "c-1", "messageId": "m-3", "timestamp": "2026-11-23T10:00:00Z"}),
    ];
    let temp = tempfile::tempdir().unwrap();
    let events = temp.path().join("events.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&events, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .arg("simulate")
        .arg("--quiet")
        .arg("--config")
        .arg(repo_root().join("deploy/journeyd.yaml"))
        .args(["--format", "segment", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let file = events.display();
    assert_eq!(
        stderr,
        format!(
            "{file}:1: Segment `group` calls are not supported; journeyd reads track, identify, page and screen\n\
             {file}:3: Segment `alias` calls are not supported; journeyd reads track, identify, page and screen\n"
        )
    );
}
