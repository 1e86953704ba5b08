//! Bad input of every class, tried on the binary (`journeyd simulate` and `journeyd validate`,
//! which run the same parser, loader and engine as `journeyd run`): each gets a clear error and
//! loses nothing else. docs/reliability.md lists every class with the test that shows it.

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A configuration with the three usual channels, generous caps (so the counts below depend
/// only on the journeys) and a 4 KiB event limit.
const CONFIG: &str = r#"journeys_dir: journeys
kafka:
  max_event_bytes: 4096
channels:
  email: { topic: actions.email, address: email, consent: opt_out, quiet_hours: false }
  sms:   { topic: actions.sms,   address: phone, consent: opt_in,  quiet_hours: false }
  push:  { topic: actions.push,  address: push_token, consent: opt_out, quiet_hours: false }
frequency_caps:
  - { name: all_weekly, channels: all, max: 1000, per: 7d }
"#;

const WELCOME: &str = r#"id: welcome
version: 1
name: Welcome
trigger:
  event: signed_up
entry:
  reentry: once
steps:
  - id: hello
    send: { channels: [email], template: welcome_1 }
  - id: pause
    wait: 1d
  - id: tip
    send: { channels: [email], template: welcome_2 }
"#;

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl World {
    fn new(journeys: &[(&str, &str)]) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("journeyd.yaml"), CONFIG).unwrap();
        std::fs::create_dir(root.join("journeys")).unwrap();
        for (name, text) in journeys {
            std::fs::write(root.join("journeys").join(name), text).unwrap();
        }
        World { _dir: dir, root }
    }

    /// `journeyd simulate` over the given raw event lines; (commands, decisions, stderr, exit).
    fn simulate(&self, lines: &[Vec<u8>], until: &str) -> (Vec<Value>, Vec<Value>, String, i32) {
        let mut events = Vec::new();
        for line in lines {
            events.extend_from_slice(line);
            events.push(b'\n');
        }
        std::fs::write(self.root.join("events.jsonl"), events).unwrap();
        let out = self.journeyd(&[
            "simulate",
            "--quiet",
            "--config",
            "journeyd.yaml",
            "--events",
            "events.jsonl",
            "--until",
            until,
            "--decisions",
            "decisions.jsonl",
        ]);
        let parse = |text: &str| -> Vec<Value> {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).expect("JSON line"))
                .collect()
        };
        let decisions =
            std::fs::read_to_string(self.root.join("decisions.jsonl")).unwrap_or_default();
        (
            parse(&String::from_utf8_lossy(&out.stdout)),
            parse(&decisions),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn journeyd(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("JOURNEYD_") {
                command.env_remove(name);
            }
        }
        command
            .args(args)
            .current_dir(&self.root)
            .output()
            .expect("journeyd runs")
    }
}

fn event(id: &str, customer: &str, kind: &str, at: &str, properties: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": id, "customer_id": customer, "type": kind, "timestamp": at,
        "properties": properties,
    }))
    .unwrap()
}

fn templates(commands: &[Value]) -> Vec<String> {
    commands
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["customer_id"].as_str().unwrap(),
                c["template"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn bad_event_lines_are_reported_and_the_run_goes_on() {
    let w = World::new(&[("welcome.yaml", WELCOME)]);
    let at = "2026-03-01T10:00:00Z";
    let profile = |c: &str| {
        event(
            &format!("{c}-p"),
            c,
            "profile_updated",
            at,
            json!({"email": format!("{c}@example.com")}),
        )
    };
    let mut deep = String::from(
        r#"{"event_id":"d","customer_id":"c1","type":"signed_up","timestamp":"2026-03-01T10:00:00Z","properties":{"x":"#,
    );
    deep.push_str(&"[".repeat(2_000));
    let lines: Vec<Vec<u8>> = vec![
        profile("c1"),
        // 2: invalid JSON
        b"{\"event_id\": \"x\", ".to_vec(),
        // 3: invalid UTF-8 inside a string
        b"{\"event_id\":\"e\xff\xfe\",\"customer_id\":\"c1\",\"type\":\"signed_up\",\"timestamp\":\"2026-03-01T10:00:00Z\"}".to_vec(),
        // 4: wrong type
        br#"{"event_id":"e4","customer_id":42,"type":"signed_up","timestamp":"2026-03-01T10:00:00Z"}"#.to_vec(),
        // 5: missing field
        br#"{"event_id":"e5","customer_id":"c1","type":"signed_up"}"#.to_vec(),
        // 6: huge payload (over the 4 KiB limit)
        event("e6", "c1", "signed_up", at, json!({"blob": "x".repeat(5000)})),
        // 7: deep nesting (2,000 levels, within the size limit)
        deep.into_bytes(),
        // 8: not an object
        b"[1, 2, 3]".to_vec(),
        // 9: a timestamp without an offset
        br#"{"event_id":"e9","customer_id":"c1","type":"signed_up","timestamp":"2026-03-01 10:00"}"#.to_vec(),
        // 10: the good event after all that
        event("e10", "c1", "signed_up", at, json!({})),
    ];
    let (commands, _, stderr, code) = w.simulate(&lines, "2026-03-03T00:00:00Z");
    assert_eq!(code, 0, "{stderr}");
    let expect = [
        (2, "not valid JSON"),
        (3, "not valid JSON"),
        (4, "field `customer_id` must be a string, found a number"),
        (5, "missing required field `timestamp`"),
        (6, "larger than the maximum of 4096 bytes"),
        (7, "not valid JSON: recursion limit exceeded"),
        (8, "event must be a JSON object, found an array"),
        (9, "field `timestamp` is not RFC 3339"),
    ];
    let reported: Vec<&str> = stderr.lines().collect();
    assert_eq!(reported.len(), expect.len(), "{stderr}");
    for ((line, message), got) in expect.iter().zip(&reported) {
        assert!(
            got.starts_with(&format!("events.jsonl:{line}: ")) && got.contains(message),
            "line {line}: expected `{message}`, got `{got}`"
        );
    }
    // Nothing else was lost: the valid events made their commands.
    assert_eq!(templates(&commands), ["c1 welcome_1", "c1 welcome_2"]);
}

#[test]
fn timestamps_far_in_the_past_or_future_neither_crash_nor_stall() {
    let w = World::new(&[("welcome.yaml", WELCOME)]);
    let customer = |c: &str, at: &str| {
        vec![
            event(
                &format!("{c}-p"),
                c,
                "profile_updated",
                at,
                json!({"email": format!("{c}@example.com")}),
            ),
            event(&format!("{c}-s"), c, "signed_up", at, json!({})),
        ]
    };
    let mut lines = customer("past", "0001-01-01T00:00:00Z");
    lines.extend(customer("future", "9999-12-30T00:00:00Z"));
    // Its second email would be due in the year 10000, beyond the end of the run.
    lines.extend(customer("edge", "9999-12-31T23:00:00Z"));
    let (commands, decisions, stderr, code) = w.simulate(&lines, "9999-12-31T23:59:59Z");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        templates(&commands),
        [
            "past welcome_1",
            "past welcome_2",
            "future welcome_1",
            "future welcome_2",
            "edge welcome_1"
        ]
    );
    let first = &commands[0];
    assert_eq!(
        first["issued_at"].as_str().map(|t| &t[..4]),
        Some("0001"),
        "{first}"
    );
    assert!(!decisions.is_empty());
}

#[test]
fn unknown_time_zones_are_ignored_with_a_decision() {
    let w = World::new(&[("welcome.yaml", WELCOME)]);
    let at = "2026-03-01T10:00:00Z";
    let lines = vec![
        event(
            "p1",
            "c1",
            "profile_updated",
            at,
            json!({"email": "c1@example.com", "timezone": "Mars/Olympus"}),
        ),
        event("s1", "c1", "signed_up", at, json!({})),
    ];
    let (commands, decisions, stderr, code) = w.simulate(&lines, "2026-03-01T10:00:00Z");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        decisions
            .iter()
            .any(|d| d.to_string().contains("bad_timezone")),
        "{decisions:?}"
    );
    assert_eq!(templates(&commands), ["c1 welcome_1"]);
}

#[test]
fn conflicting_consent_updates_apply_in_partition_order() {
    let w = World::new(&[("welcome.yaml", WELCOME)]);
    let at = "2026-03-01T10:00:00Z";
    let consent = |id: &str, c: &str, status: &str| {
        event(
            id,
            c,
            "consent_updated",
            at,
            json!({"channel": "email", "status": status}),
        )
    };
    let profile = |c: &str| {
        event(
            &format!("{c}-p"),
            c,
            "profile_updated",
            at,
            json!({"email": format!("{c}@example.com")}),
        )
    };
    // The same instant, the same batch (one transaction in `run`): the last update wins.
    let lines = vec![
        profile("granted_last"),
        consent("a1", "granted_last", "withdrawn"),
        consent("a2", "granted_last", "granted"),
        event("a3", "granted_last", "signed_up", at, json!({})),
        profile("withdrawn_last"),
        consent("b1", "withdrawn_last", "granted"),
        consent("b2", "withdrawn_last", "withdrawn"),
        event("b3", "withdrawn_last", "signed_up", at, json!({})),
    ];
    let (commands, decisions, stderr, code) = w.simulate(&lines, at);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(templates(&commands), ["granted_last welcome_1"]);
    assert!(
        decisions
            .iter()
            .any(|d| d["customer_id"] == "withdrawn_last" && d.to_string().contains("no_consent")),
        "{decisions:?}"
    );
}

#[test]
fn a_journey_of_ten_thousand_steps_validates_and_runs() {
    let mut journey = String::from("id: long\nversion: 1\nname: Long\ntrigger:\n  event: signed_up\nentry:\n  reentry: once\nsteps:\n");
    for i in 0..9_999 {
        writeln!(journey, "  - id: s{i}\n    wait: 1m").unwrap();
    }
    journey.push_str("  - id: last\n    send: { channels: [email], template: finally }\n");
    let w = World::new(&[("long.yaml", &journey)]);
    let out = w.journeyd(&["validate"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: 1 journey valid (journeys/)\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = "2026-03-01T10:00:00Z";
    let lines = vec![
        event(
            "p",
            "c1",
            "profile_updated",
            at,
            json!({"email": "c1@example.com"}),
        ),
        event("s", "c1", "signed_up", at, json!({})),
    ];
    // 9,999 minutes later (6 days 22:39).
    let (commands, _, stderr, code) = w.simulate(&lines, "2026-03-08T08:39:00Z");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(templates(&commands), ["c1 finally"]);
    assert_eq!(commands[0]["issued_at"], "2026-03-08T08:39:00Z");
}

#[test]
fn a_loop_with_a_wait_runs_one_round_per_wait() {
    let looping = r#"id: daily
version: 1
name: Daily tip until unsubscribed
trigger:
  event: subscribed
entry:
  reentry: once
exit_when:
  - event: unsubscribed
steps:
  - id: tip
    send: { channels: [email], template: tip }
  - id: pause
    wait: 1d
    next: tip
"#;
    let w = World::new(&[("daily.yaml", looping)]);
    let lines = vec![
        event(
            "p",
            "c1",
            "profile_updated",
            "2026-03-01T10:00:00Z",
            json!({"email": "c1@example.com"}),
        ),
        event("s", "c1", "subscribed", "2026-03-01T10:00:00Z", json!({})),
        event("u", "c1", "unsubscribed", "2026-03-04T12:00:00Z", json!({})),
    ];
    let (commands, _, stderr, code) = w.simulate(&lines, "2026-03-10T00:00:00Z");
    assert_eq!(code, 0, "{stderr}");
    // Days 1 to 4, then the exit stops the loop.
    assert_eq!(
        templates(&commands),
        ["c1 tip", "c1 tip", "c1 tip", "c1 tip"]
    );
}

#[test]
fn unreadable_journeys_are_reported_with_their_file() {
    // A journeys directory that is a file.
    let w = World::new(&[]);
    std::fs::remove_dir(w.root.join("journeys")).unwrap();
    std::fs::write(w.root.join("journeys"), "not a directory").unwrap();
    let out = w.journeyd(&["validate"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("journeys"), "{text}");

    // A journey file that is not UTF-8, next to a valid one: the bad file is named.
    let w = World::new(&[("welcome.yaml", WELCOME)]);
    std::fs::write(w.root.join("journeys/broken.yaml"), b"id: \xff\xfe\n").unwrap();
    let out = w.journeyd(&["validate"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("journeys/broken.yaml"), "{text}");
}
