//! Black-box tests of the traps a new user fell into (docs/journeys.md): a bare number as a
//! holdout, events whose timestamps go backwards, no summary after `simulate`, what `contains`
//! matches, and a repeat buyer lost without a word when an event ends an instance.

use std::path::Path;
use std::process::{Command, Output};

/// A small configuration: email and sms, one cap, quiet hours in London.
const CONFIG: &str = include_str!("fixtures/email_sms/journeyd.yaml");

fn scratch(journey: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("journeys")).unwrap();
    std::fs::write(dir.path().join("journeyd.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("journeys/j.yaml"), journey).unwrap();
    dir
}

fn journeyd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("journeyd runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

const NUDGE: &str = "\
id: nudge
version: 1
trigger: { event: signed_up }
entry: { reentry: always, holdout: 0% }
steps:
  - id: wait_a_bit
    wait: 1h
  - id: hello
    send: { channels: [sms, email], template: welcome }
";

fn event(id: &str, customer: &str, ty: &str, at: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","customer_id":"{customer}","type":"{ty}","timestamp":"{at}","properties":{{"email":"{customer}@example.com"}}}}"#
    )
}

#[test]
fn a_bare_number_holdout_is_an_error_that_suggests_both_readings() {
    let dir = scratch(&NUDGE.replace("holdout: 0%", "holdout: 0.1"));
    let out = journeyd(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "journeys/j.yaml:4:36: percentage `0.1` needs a `%` sign: write `10%` for a share of 0.1 \
         of customers, or `0.1%` if you mean 0.1 percent\n"
    );
    // A key named `percent` (split arms) may stay bare.
    let split = "\
id: ab
version: 1
trigger: { event: signed_up }
steps:
  - id: s
    split:
      - { name: a, percent: 50, next: end }
      - { name: b, percent: 50%, next: end }
";
    let dir = scratch(split);
    let out = journeyd(dir.path(), &["validate"]);
    assert_eq!(text(&out.stdout), "ok: 1 journey valid (journeys/)\n");
}

#[test]
fn backward_timestamps_are_reported_and_sort_sorts_them() {
    let dir = scratch(NUDGE);
    let events = [
        event("e1", "c-1", "profile_updated", "2026-11-23T10:00:00Z"),
        event("e2", "c-1", "signed_up", "2026-11-23T12:00:00Z"),
        // A second export, concatenated: starts earlier again.
        event("e3", "c-2", "profile_updated", "2026-11-23T09:00:00Z"),
        event("e4", "c-2", "signed_up", "2026-11-23T09:30:00Z"),
    ]
    .join("\n");
    std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
    let out = journeyd(
        dir.path(),
        &[
            "simulate",
            "--quiet",
            "--config",
            "journeyd.yaml",
            "--events",
            "events.jsonl",
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        text(&out.stderr),
        "events.jsonl:3: warning: timestamp 2026-11-23T09:00:00Z is before 2026-11-23T12:00:00Z \
         on line 2; handled at 2026-11-23T12:00:00Z (use --sort to sort the events first)\n\
         events.jsonl:4: warning: timestamp 2026-11-23T09:30:00Z is before 2026-11-23T12:00:00Z \
         on line 2; handled at 2026-11-23T12:00:00Z (use --sort to sort the events first)\n"
    );
    let late: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let c2 = late.iter().find(|c| c["customer_id"] == "c-2");
    assert!(
        c2.is_none(),
        "re-timed to 12:00, its wait ends after the run"
    );

    let out = journeyd(
        dir.path(),
        &[
            "simulate",
            "--quiet",
            "--sort",
            "--config",
            "journeyd.yaml",
            "--events",
            "events.jsonl",
        ],
    );
    assert_eq!(text(&out.stderr), "", "sorted: nothing goes backwards");
    let sorted: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let c2 = sorted
        .iter()
        .find(|c| c["customer_id"] == "c-2")
        .expect("c-2's message at 10:30");
    assert_eq!(c2["issued_at"], "2026-11-23T10:30:00Z");
}

#[test]
fn simulate_prints_a_summary_unless_quiet() {
    let dir = scratch(NUDGE);
    let events = [
        event("e1", "c-1", "profile_updated", "2026-11-23T10:00:00Z"),
        event("e2", "c-1", "signed_up", "2026-11-23T10:00:00Z"),
        event("e3", "c-3", "signed_up", "2026-11-23T10:05:00Z"),
        "not json".to_string(),
    ]
    .join("\n");
    std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
    let args = [
        "simulate",
        "--config",
        "journeyd.yaml",
        "--events",
        "events.jsonl",
        "--until",
        "2026-11-24T00:00:00Z",
    ];
    let out = journeyd(dir.path(), &args);
    let stderr = text(&out.stderr);
    let summary: Vec<&str> = stderr.lines().skip(1).collect();
    assert!(
        stderr.starts_with("events.jsonl:4: not valid JSON"),
        "{stderr}"
    );
    assert_eq!(
        summary,
        [
            "summary: 3 events read, 1 bad lines skipped",
            "  entered: 2 (0 held out)",
            "  suppressed at entry: 0 (none)",
            "  sends: 1 (email 1)",
            "  channels skipped: 3 (unreachable 3)",
            "  deferred for quiet hours: 0; no channel left: 1; held-out sends: 0",
            "  goals: 0 (0 held out); exited: 0; completed: 2",
        ],
        "{stderr}"
    );
    let mut quiet = args.to_vec();
    quiet.push("--quiet");
    let out = journeyd(dir.path(), &quiet);
    assert_eq!(text(&out.stderr).lines().count(), 1, "only the bad line");
}

#[test]
fn validate_says_how_contains_matches() {
    let journey = "\
id: tents
version: 1
trigger:
  event: order_completed
  where: { path: event.properties.categories, contains: tents }
steps:
  - { id: w, wait: 1h }
";
    let dir = scratch(journey);
    let out = journeyd(dir.path(), &["validate"]);
    assert_eq!(
        text(&out.stdout),
        "ok: 1 journey valid (journeys/)\nnote: journeys/j.yaml: `event.properties.categories` \
         contains \"tents\" is true when event.properties.categories is a list holding exactly \
         that item, or text that contains it (a substring)\n"
    );
}

#[test]
fn an_event_that_ends_an_instance_and_triggers_again_says_why_there_is_no_reentry() {
    let journey = "\
id: again
version: 1
trigger: { event: order_completed }
entry: { reentry: always }
steps:
  - id: wait_for_next
    wait_for: { event: order_completed, timeout: 30d, on_event: end }
";
    let dir = scratch(journey);
    let events = [
        event("o1", "c-1", "order_completed", "2026-11-01T10:00:00Z"),
        event("o2", "c-1", "order_completed", "2026-11-05T10:00:00Z"),
    ]
    .join("\n");
    std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
    let out = journeyd(
        dir.path(),
        &[
            "simulate",
            "--quiet",
            "--config",
            "journeyd.yaml",
            "--events",
            "events.jsonl",
            "--decisions",
            "decisions.jsonl",
        ],
    );
    assert!(out.status.success());
    let decisions = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    let last = decisions.lines().last().unwrap();
    assert_eq!(
        last,
        r#"{"at":"2026-11-05T10:00:00Z","customer_id":"c-1","journey_id":"again","journey_version":1,"kind":"entry_suppressed","reason":"ended_by_same_event","event_id":"o2"}"#
    );
}
