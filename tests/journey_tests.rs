//! Black-box tests of `journeyd test`: every example journey's test file passes, failures print
//! an expected-vs-got diff and the decisions that explain it (exit 1), invalid test files are
//! `FILE:LINE:COLUMN` errors (exit 2), and `--junit` writes JUnit XML.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn journeyd(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("journeyd runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn every_example_journey_has_a_passing_test_file() {
    let root = repo_root();
    for entry in std::fs::read_dir(root.join("journeys")).unwrap() {
        let name = entry.unwrap().file_name().to_str().unwrap().to_string();
        if let Some(stem) = name.strip_suffix(".yaml") {
            if !journey_spec::is_test_file(&name) {
                assert!(
                    root.join("journeys")
                        .join(format!("{stem}.test.yaml"))
                        .is_file(),
                    "journeys/{name} has no journeys/{stem}.test.yaml"
                );
            }
        }
    }
    let out = journeyd(&["test", "journeys"], &root);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "journeyd test journeys failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{stdout}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 30, "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// A scratch directory holding a copy of the example configuration's channels and one journey.
struct Scratch {
    dir: tempfile::TempDir,
}

const JOURNEY: &str = "\
id: nudge
version: 1
trigger: { event: signed_up }
entry: { holdout: 0% }
steps:
  - id: wait_a_bit
    wait: 1h
  - id: hello
    send: { channels: [sms, email], template: welcome }
";

/// A small configuration: email and sms, one cap, quiet hours in London.
const CONFIG: &str = include_str!("fixtures/email_sms/journeyd.yaml");

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("journeys")).unwrap();
        std::fs::write(dir.path().join("journeyd.yaml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("journeys/nudge.yaml"), JOURNEY).unwrap();
        Scratch { dir }
    }

    fn test_file(&self, body: &str) -> PathBuf {
        let path = self.dir.path().join("journeys/nudge.test.yaml");
        std::fs::write(&path, body).unwrap();
        path
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec!["test"];
        args.extend_from_slice(extra);
        journeyd(&args, self.dir.path())
    }
}

const PASSING: &str = "\
config: ../journeyd.yaml
start: 2026-11-23T10:00:00Z
tests:
  - name: sms when granted
    customers:
      - id: c-1
        profile: { email: a@example.com, phone: \"+44\" }
        consent: { sms: granted }
    events:
      - { at: +0, type: signed_up }
    expect:
      - send: { channel: sms, template: welcome, at: +1h }
";

#[test]
fn a_passing_file_exits_0_and_the_default_path_is_the_journeys_directory() {
    let s = Scratch::new();
    s.test_file(PASSING);
    let out = s.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "journeys/nudge.test.yaml\n  ok    sms when granted\n1 passed, 0 failed\n"
    );
}

#[test]
fn a_failing_test_prints_a_diff_then_the_decisions_and_exits_1() {
    let s = Scratch::new();
    // Without SMS consent (opt-in), the message goes by email.
    s.test_file(&PASSING.replace("        consent: { sms: granted }\n", ""));
    let out = s.run(&["journeys/nudge.test.yaml"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let expected = [
        "journeys/nudge.test.yaml",
        "  FAIL  sms when granted",
        "        - expected line 11: send sms welcome to c-1 at 2026-11-23T11:00:00Z",
        "        + got      2026-11-23T11:00:00Z  c-1  nudge/hello  sent email welcome",
        "        what happened:",
        "          2026-11-23T10:00:00Z  c-1  nudge  entered",
        "          2026-11-23T11:00:00Z  c-1  nudge/hello  skipped sms: no_consent",
        "          2026-11-23T11:00:00Z  c-1  nudge/hello  sent email welcome",
        "          2026-11-23T11:00:00Z  c-1  nudge  completed",
        "0 passed, 1 failed",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn invalid_files_are_positioned_errors_and_exit_2() {
    let s = Scratch::new();
    s.test_file(
        &PASSING
            .replace("template: welcome", "template: welcom")
            .replace("consent: { sms: granted }", "consent: { fax: granted }"),
    );
    let out = s.run(&["journeys/nudge.test.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr,
        "journeys/nudge.test.yaml:8:20: channel `fax` is not declared in the configuration\n\
         journeys/nudge.test.yaml:12:41: template `welcom` is sent by no loaded journey; did you \
         mean `welcome`?\n"
    );
    assert!(text(&out.stdout).contains("INVALID"));

    // A time before the first event can never be reached.
    s.test_file(&PASSING.replace("at: +1h }", "at: 2026-11-23T09:00:00Z }"));
    let out = s.run(&["journeys/nudge.test.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(
            "journeys/nudge.test.yaml:12:54: this expectation can never be met: its time \
             (2026-11-23T09:00:00Z) is before the test's first event (2026-11-23T10:00:00Z)"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn junit_xml_lists_every_test_with_its_failure() {
    let s = Scratch::new();
    let two = format!(
        "{PASSING}{}",
        "  - name: wrong channel\n    customers: [{ id: c-2, profile: { email: b@example.com } }]\n    \
         events: [{ at: +0, type: signed_up }]\n    expect:\n      - send: { channel: sms }\n"
    );
    s.test_file(&two);
    let junit = s.dir.path().join("junit.xml");
    let out = s.run(&["--junit", junit.to_str().unwrap(), "journeys"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(
            r#"<testsuites name="journeyd test" tests="2" skipped="0" failures="1" errors="0">"#
        ),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="sms when granted""#),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"1 expectation(s) not met: line 17: send sms to c-2"),
        "{xml}"
    );
    assert!(xml.contains("skipped sms: unreachable"), "{xml}");
}

#[test]
fn the_test_file_schema_is_printed() {
    let out = journeyd(&["schema", "--kind", "test"], &repo_root());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = std::fs::read(repo_root().join("deploy/journey-test.schema.json")).unwrap();
    assert!(
        file == out.stdout,
        "deploy/journey-test.schema.json is stale: run \
         `journeyd schema --kind test > deploy/journey-test.schema.json`"
    );
    for entry in std::fs::read_dir(repo_root().join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        if journey_spec::is_test_file(path.file_name().unwrap().to_str().unwrap()) {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                text.lines().next(),
                Some("# yaml-language-server: $schema=../deploy/journey-test.schema.json"),
                "{} must point editors at the test schema",
                path.display()
            );
        }
    }
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["tests"]));
    assert!(schema["$defs"]["test"]["properties"]["expect"].is_object());
}
