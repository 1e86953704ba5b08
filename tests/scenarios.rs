//! Scenario tests: every example journey in `journeys/` is exercised by a realistic event file
//! in `tests/scenarios/<name>/events.jsonl`, run through `journeyd simulate` with the example
//! configuration `deploy/journeyd.yaml` (so all example journeys are live at once, as in
//! production). The send commands (stdout) and the decision records must equal
//! `expected_commands.jsonl` and `expected_decisions.jsonl` byte for byte. What each customer is
//! meant to experience, and why, is written in `tests/scenarios/README.md`; the expected files
//! were checked line by line against it.
//!
//! An optional `until` file holds the `--until` instant of the run.
//!
//! To rewrite the expected files after an intended change, run with
//! `JOURNEYD_UPDATE_EXPECTED=1`, then read the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Output of one simulate run over a scenario.
struct Run {
    commands: String,
    decisions: String,
    stderr: String,
}

fn simulate(scenario: &Path, decisions: &Path) -> Run {
    let root = repo_root();
    let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
    command
        .arg("simulate")
        .arg("--quiet")
        .arg("--config")
        .arg(root.join("deploy/journeyd.yaml"))
        .arg("--events")
        .arg(scenario.join("events.jsonl"))
        .arg("--decisions")
        .arg(decisions);
    if let Ok(until) = std::fs::read_to_string(scenario.join("until")) {
        command.arg("--until").arg(until.trim());
    }
    let output = command.output().expect("journeyd runs");
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    assert!(
        output.status.success(),
        "simulate failed on {}: {stderr}",
        scenario.display()
    );
    Run {
        commands: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        decisions: std::fs::read_to_string(decisions).expect("decisions file written"),
        stderr,
    }
}

fn check_scenario(name: &str) {
    let dir = repo_root().join("tests/scenarios").join(name);
    assert!(
        dir.join("events.jsonl").is_file(),
        "missing {}/events.jsonl",
        dir.display()
    );
    let temp = tempfile::tempdir().unwrap();
    let run = simulate(&dir, &temp.path().join("decisions.jsonl"));
    assert_eq!(
        run.stderr, "",
        "scenario {name}: every event line must be valid"
    );

    let expected_commands = dir.join("expected_commands.jsonl");
    let expected_decisions = dir.join("expected_decisions.jsonl");
    if std::env::var_os("JOURNEYD_UPDATE_EXPECTED").is_some_and(|v| v == "1") {
        std::fs::write(&expected_commands, &run.commands).unwrap();
        std::fs::write(&expected_decisions, &run.decisions).unwrap();
        return;
    }
    let want_commands = std::fs::read_to_string(&expected_commands)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_commands.display()));
    let want_decisions = std::fs::read_to_string(&expected_decisions)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_decisions.display()));
    assert_lines_eq(name, "commands", &want_commands, &run.commands);
    assert_lines_eq(name, "decisions", &want_decisions, &run.decisions);
}

/// Byte-for-byte comparison that names the first differing line, so a failure is readable.
fn assert_lines_eq(scenario: &str, what: &str, want: &str, got: &str) {
    if want == got {
        return;
    }
    let want_lines: Vec<&str> = want.lines().collect();
    let got_lines: Vec<&str> = got.lines().collect();
    for i in 0..want_lines.len().max(got_lines.len()) {
        let w = want_lines.get(i).copied().unwrap_or("<none>");
        let g = got_lines.get(i).copied().unwrap_or("<none>");
        if w != g {
            panic!(
                "scenario {scenario}: {what} differ at line {}\n expected: {w}\n      got: {g}\n\
                 ({} expected lines, {} produced; JOURNEYD_UPDATE_EXPECTED=1 rewrites the \
                 expected files)",
                i + 1,
                want_lines.len(),
                got_lines.len()
            );
        }
    }
    panic!("scenario {scenario}: {what} differ in line endings or a trailing newline");
}

#[test]
fn cart_abandonment() {
    check_scenario("cart_abandonment");
}

#[test]
fn onboarding() {
    check_scenario("onboarding");
}

#[test]
fn cross_sell() {
    check_scenario("cross_sell");
}

#[test]
fn winback() {
    check_scenario("winback");
}

#[test]
fn replenishment() {
    check_scenario("replenishment");
}

#[test]
fn shipping_delay() {
    check_scenario("shipping_delay");
}

#[test]
fn service_recovery() {
    check_scenario("service_recovery");
}

#[test]
fn retargeting_suppression() {
    check_scenario("retargeting_suppression");
}

/// Every example journey has a scenario of its own, and every scenario is run above.
#[test]
fn every_example_journey_has_a_scenario() {
    let root = repo_root();
    let scenarios = [
        "cart_abandonment",
        "onboarding",
        "cross_sell",
        "winback",
        "replenishment",
        "shipping_delay",
        "service_recovery",
        "retargeting_suppression",
    ];
    for entry in std::fs::read_dir(root.join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        let is_test = journey_spec::is_test_file(path.file_name().unwrap().to_str().unwrap());
        if !is_test && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            assert!(
                scenarios.contains(&stem.as_str()),
                "journeys/{stem}.yaml has no scenario in tests/scenarios/"
            );
        }
    }
    for entry in std::fs::read_dir(root.join("tests/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            assert!(
                scenarios.contains(&name.as_str()),
                "scenario {name} is not run"
            );
        }
    }
}

/// Two runs over the same input give identical bytes (command ids, order, timestamps).
#[test]
fn runs_are_deterministic() {
    for name in ["cart_abandonment", "onboarding"] {
        let dir = repo_root().join("tests/scenarios").join(name);
        let temp = tempfile::tempdir().unwrap();
        let first = simulate(&dir, &temp.path().join("first.jsonl"));
        let second = simulate(&dir, &temp.path().join("second.jsonl"));
        assert!(!first.commands.is_empty(), "{name} produces commands");
        assert_eq!(
            first.commands, second.commands,
            "{name}: commands differ between runs"
        );
        assert_eq!(
            first.decisions, second.decisions,
            "{name}: decisions differ between runs"
        );
    }
}
