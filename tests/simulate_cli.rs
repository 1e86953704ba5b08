//! Command-line behaviour of `journeyd simulate` (docs/reference/cli.md): bad lines are reported with their
//! line number and skipped, `--until`, the virtual clock that fires timers at their due time and
//! never goes back, standard input, the `topic` field, and configuration errors.
//!
//! Each test writes a tiny configuration and journey of its own in a temporary directory, so
//! these checks do not depend on the example journeys.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CONFIG: &str = r#"journeys_dir: journeys
channels:
  email: { topic: actions.email, address: email, consent: opt_out, quiet_hours: false }
"#;

const JOURNEY: &str = r#"id: nudge
version: 1
trigger:
  event: signed_up
steps:
  - id: pause
    wait: 1h
  - id: hello
    send:
      channels: [email]
      template: hello
      data:
        plan: { path: trigger.properties.plan }
"#;

/// A temporary directory holding `journeyd.yaml` and `journeys/nudge.yaml`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_journey(JOURNEY)
    }

    fn with_journey(journey: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("journeyd.yaml"), CONFIG).unwrap();
        std::fs::create_dir(dir.path().join("journeys")).unwrap();
        std::fs::write(dir.path().join("journeys/nudge.yaml"), journey).unwrap();
        Setup { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("journeyd.yaml")
    }

    fn events(&self, lines: &[&str]) -> PathBuf {
        let path = self.dir.path().join("events.jsonl");
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        path
    }

    fn decisions(&self) -> PathBuf {
        self.dir.path().join("decisions.jsonl")
    }

    fn simulate(&self, events: &Path, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_journeyd"))
            .arg("simulate")
            .arg("--quiet")
            .arg("--config")
            .arg(self.config())
            .arg("--events")
            .arg(events)
            .arg("--decisions")
            .arg(self.decisions())
            .args(extra)
            .output()
            .expect("journeyd runs")
    }

    fn decision_lines(&self) -> Vec<Value> {
        parse_lines(&std::fs::read_to_string(self.decisions()).unwrap())
    }
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

fn stdout_commands(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_lines(std::str::from_utf8(&output.stdout).unwrap())
}

fn event(id: &str, customer: &str, kind: &str, at: &str, properties: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","customer_id":"{customer}","type":"{kind}","timestamp":"{at}","properties":{properties}}}"#
    )
}

fn profile(id: &str, customer: &str, at: &str) -> String {
    event(
        id,
        customer,
        "profile_updated",
        at,
        &format!(r#"{{"email":"{customer}@example.com"}}"#),
    )
}

#[test]
fn bad_lines_are_reported_with_their_number_and_skipped() {
    let setup = Setup::new();
    let events = setup.events(&[
        &profile("e1", "c-1", "2026-11-23T09:00:00Z"),
        "this is not json",
        "",
        r#"{"event_id":"e3","type":"signed_up","timestamp":"2026-11-23T09:30:00Z"}"#,
        &event(
            "e4",
            "c-1",
            "signed_up",
            "2026-11-23T10:00:00Z",
            r#"{"plan":"pro"}"#,
        ),
        "[1, 2, 3]",
        r#"{"event_id":"e6","customer_id":"c-1","type":"x","timestamp":"yesterday"}"#,
        "   ",
    ]);
    let output = setup.simulate(&events, &["--until", "2026-11-23T11:00:00Z"]);
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let prefix = events.display().to_string();
    assert_eq!(
        lines.len(),
        4,
        "one report per bad line, none for blank lines: {stderr}"
    );
    for (line, number) in lines.iter().zip([2, 4, 6, 7]) {
        let expected = format!("{prefix}:{number}: ");
        assert!(
            line.starts_with(&expected),
            "{line:?} should start with {expected:?}"
        );
        assert!(line.len() > expected.len(), "{line:?} should give a reason");
    }
    // The run went on past the bad lines: the good event after them started the journey.
    let commands = stdout_commands(&output);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0]["step_id"], "hello");
    assert_eq!(commands[0]["data"]["plan"], "pro");
}

#[test]
fn commands_carry_the_channel_topic_as_last_field() {
    let setup = Setup::new();
    let events = setup.events(&[
        &profile("e1", "c-1", "2026-11-23T09:00:00Z"),
        &event(
            "e2",
            "c-1",
            "signed_up",
            "2026-11-23T10:00:00Z",
            r#"{"plan":"pro"}"#,
        ),
    ]);
    let output = setup.simulate(&events, &["--until", "2026-11-23T12:00:00Z"]);
    let commands = stdout_commands(&output);
    assert_eq!(commands.len(), 1);
    let fields: Vec<&String> = commands[0].as_object().unwrap().keys().collect();
    assert_eq!(fields.last().unwrap().as_str(), "topic", "{fields:?}");
    assert_eq!(commands[0]["topic"], "actions.email");
    assert_eq!(commands[0]["address"], "c-1@example.com");
    assert_eq!(commands[0]["trigger_event_id"], "e2");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.ends_with("\"topic\":\"actions.email\"}\n"),
        "{stdout}"
    );
}

#[test]
fn until_fires_timers_up_to_that_instant_only() {
    let setup = Setup::new();
    let events = setup.events(&[
        &profile("e1", "c-1", "2026-11-23T09:00:00Z"),
        &event("e2", "c-1", "signed_up", "2026-11-23T10:00:00Z", "{}"),
    ]);
    // Default: nothing beyond the last event's timestamp.
    assert!(stdout_commands(&setup.simulate(&events, &[])).is_empty());
    // A second early is still too early.
    let early = setup.simulate(&events, &["--until", "2026-11-23T10:59:59Z"]);
    assert!(stdout_commands(&early).is_empty());
    // At the due instant the send happens, stamped with the due time, not with --until.
    let on_time = setup.simulate(&events, &["--until", "2026-11-23T12:00:00+01:00"]);
    let commands = stdout_commands(&on_time);
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0]["issued_at"], "2026-11-23T11:00:00Z");
    // A missing `plan` leaves the key out of the data.
    assert_eq!(commands[0]["data"], serde_json::json!({}));
    let later = setup.simulate(&events, &["--until", "2026-11-30T00:00:00Z"]);
    assert_eq!(stdout_commands(&later), commands);
}

#[test]
fn timers_fire_at_their_due_time_and_the_clock_never_goes_back() {
    let setup = Setup::new();
    let events = setup.events(&[
        &profile("e1", "c-1", "2026-11-23T09:00:00Z"),
        &profile("e2", "c-2", "2026-11-23T09:00:00Z"),
        &event("e3", "c-1", "signed_up", "2026-11-23T10:00:00Z", "{}"),
        &event("e4", "c-2", "page_viewed", "2026-11-23T12:00:00Z", "{}"),
        // Late event, older than the clock: handled at 12:00, not at 09:30.
        &event("e5", "c-2", "signed_up", "2026-11-23T09:30:00Z", "{}"),
    ]);
    let output = setup.simulate(&events, &["--until", "2026-11-23T13:00:00Z"]);
    let commands = stdout_commands(&output);
    let summary: Vec<(String, String)> = commands
        .iter()
        .map(|c| {
            (
                c["customer_id"].as_str().unwrap().to_string(),
                c["issued_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("c-1".to_string(), "2026-11-23T11:00:00Z".to_string()),
            ("c-2".to_string(), "2026-11-23T13:00:00Z".to_string()),
        ]
    );
    let entered: Vec<(String, String)> = setup
        .decision_lines()
        .iter()
        .filter(|d| d["kind"] == "entered")
        .map(|d| {
            (
                d["customer_id"].as_str().unwrap().to_string(),
                d["at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entered,
        vec![
            ("c-1".to_string(), "2026-11-23T10:00:00Z".to_string()),
            ("c-2".to_string(), "2026-11-23T12:00:00Z".to_string()),
        ]
    );
}

#[test]
fn events_can_come_from_standard_input() {
    let setup = Setup::new();
    let lines = [
        profile("e1", "c-1", "2026-11-23T09:00:00Z"),
        event(
            "e2",
            "c-1",
            "signed_up",
            "2026-11-23T10:00:00Z",
            r#"{"plan":"pro"}"#,
        ),
        "oops".to_string(),
    ];
    let from_file = setup.simulate(
        &setup.events(&lines.iter().map(String::as_str).collect::<Vec<_>>()),
        &["--until", "2026-11-24T00:00:00Z"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args([
            "simulate",
            "--events",
            "-",
            "--until",
            "2026-11-24T00:00:00Z",
            "--config",
        ])
        .arg(setup.config())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", lines.join("\n")).as_bytes())
        .unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert!(from_stdin.status.success());
    assert_eq!(from_stdin.stdout, from_file.stdout);
    assert!(!from_stdin.stdout.is_empty());
    let stderr = String::from_utf8(from_stdin.stderr).unwrap();
    assert!(stderr.contains(":3: "), "{stderr}");
}

#[test]
fn a_missing_configuration_is_an_error() {
    let setup = Setup::new();
    let events = setup.events(&[&profile("e1", "c-1", "2026-11-23T09:00:00Z")]);
    let missing = setup.dir.path().join("nowhere.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .arg("simulate")
        .arg("--config")
        .arg(&missing)
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("nowhere.yaml"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn an_invalid_journey_is_reported_as_file_line_column() {
    let broken = JOURNEY.replace("wait: 1h", "wiat: 1h");
    let setup = Setup::with_journey(&broken);
    let events = setup.events(&[&profile("e1", "c-1", "2026-11-23T09:00:00Z")]);
    let output = setup.simulate(&events, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    // FILE:LINE:COLUMN: message, one of them pointing at the misspelt key on line 7.
    let at_line_7 = stderr.lines().any(|line| {
        let Some((_, rest)) = line.split_once("nudge.yaml:") else {
            return false;
        };
        let mut parts = rest.splitn(3, ':');
        parts.next() == Some("7")
            && parts
                .next()
                .is_some_and(|column| column.parse::<u32>().is_ok())
            && parts
                .next()
                .is_some_and(|message| message.len() > 1 && message.starts_with(' '))
    });
    assert!(at_line_7, "{stderr}");
    assert!(output.stdout.is_empty());
}
