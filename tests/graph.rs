//! `journeyd graph` (Mermaid flowcharts of journeys) and the checked-in JSON Schema
//! `deploy/journey.schema.json`, which editors use through the first line of every example
//! journey and which must always equal the output of `journeyd schema`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn graph(journey: &Path, config: Option<&Path>, cwd: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
    command.current_dir(cwd).arg("graph").arg(journey);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.output().expect("journeyd runs")
}

fn graph_text(journey: &str) -> String {
    let root = repo_root();
    let output = graph(
        &root.join("journeys").join(journey),
        Some(&root.join("deploy/journeyd.yaml")),
        &root,
    );
    assert!(
        output.status.success(),
        "graph {journey}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn assert_has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l.trim() == line),
        "missing line {line:?} in:\n{text}"
    );
}

#[test]
fn cart_abandonment_flowchart() {
    let text = graph_text("cart_abandonment.yaml");
    assert_eq!(text.lines().next(), Some("flowchart TD"));
    for line in [
        "trigger --> entry",
        "entry --> step_wait_an_hour",
        "step_wait_an_hour --> step_first_reminder",
        "step_first_reminder --> step_wait_for_click",
        "step_wait_for_click -->|\"message_clicked\"| journey_end",
        "step_wait_for_click -->|\"timeout 1d\"| step_vip_check",
        "step_vip_check -->|\"profile.tier = vip\"| step_vip_offer",
        "step_vip_check -->|\"else\"| step_second_reminder",
        "step_vip_offer --> journey_end",
        "step_second_reminder --> journey_end",
        "journey_end(((end)))",
        "exit_when -.->|\"exited\"| journey_end",
        "goal -.->|\"goal\"| journey_end",
        "step_wait_an_hour([\"wait_an_hour<br/>wait 1h\"])",
        "step_first_reminder[\"first_reminder<br/>send cart_reminder_1<br/>channels: push › email<br/>data: cart_value, campaign\"]",
        "step_vip_check{\"vip_check<br/>branch\"}",
        "step_wait_for_click{{\"wait_for_click<br/>wait_for message_clicked<br/>timeout 1d\"}}",
    ] {
        assert_has_line(&text, line);
    }
    // Trigger condition (with `>` escaped for Mermaid), entry rules, exit and goal rules.
    assert!(
        text.contains("trigger: cart_updated where event.properties.cart_value #gt;= 20"),
        "{text}"
    );
    assert!(
        text.contains("reentry: after 7d<br/>unless did order_completed within 1d<br/>holdout 10%"),
        "{text}"
    );
    assert!(
        text.contains("exit when (anywhere):<br/>order_completed<br/>or cart_emptied"),
        "{text}"
    );
    assert!(
        text.contains(
            "goal: order_completed<br/>within 7d of entry<br/>reaching it ends the journey"
        ),
        "{text}"
    );
}

#[test]
fn splits_waits_until_and_goals_that_do_not_end_the_journey() {
    let text = graph_text("onboarding.yaml");
    for line in [
        "step_complementary_test -->|\"curated_picks 50%\"| step_complementary_curated",
        "step_complementary_test -->|\"bestsellers 50%\"| step_complementary_bestsellers",
        "step_complementary_curated --> step_wait_for_social_proof",
        "step_care_morning([\"care_morning<br/>wait_until 10:00\"])",
        "step_community_by_tier -->|\"profile.tier in [vip, gold]\"| step_early_access_invite",
        "step_ordered_again -->|\"did order_completed within 20d\"| step_wait_for_community",
    ] {
        assert_has_line(&text, line);
    }
    assert!(text.contains("recorded; the journey goes on"), "{text}");
    assert!(
        !text.contains("goal -.->"),
        "a goal with exit: false does not end the journey"
    );

    let text = graph_text("winback.yaml");
    assert_has_line(
        &text,
        "step_last_chance -.->|\"no channel: exit\"| journey_end",
    );
    assert_has_line(
        &text,
        "step_wait_for_open -->|\"message_opened for_send we_miss_you\"| step_next_morning",
    );
    assert_has_line(
        &text,
        "step_wait_for_open -->|\"timeout 5d\"| step_reason_to_return",
    );

    // A wait_for without on_timeout goes on to the following step when the time is up.
    let text = graph_text("shipping_delay.yaml");
    assert_has_line(
        &text,
        "step_wait_for_delivery -->|\"shipment_delivered\"| journey_end",
    );
    assert_has_line(
        &text,
        "step_wait_for_delivery -->|\"timeout 3d\"| step_still_late_by_tier",
    );

    let text = graph_text("replenishment.yaml");
    // A wait_for that loops on itself.
    assert_has_line(
        &text,
        "step_countdown -->|\"order_completed where event.properties.categories contains water_filter_cartridges\"| step_countdown",
    );
    assert_has_line(&text, "step_countdown -->|\"timeout 49d\"| step_morning");
}

/// Every example journey can be drawn, with one node per step.
#[test]
fn every_example_journey_draws() {
    let root = repo_root();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        let file_name = path.file_name().unwrap().to_str().unwrap();
        if path.extension().is_none_or(|e| e != "yaml") || journey_spec::is_test_file(file_name) {
            continue;
        }
        seen += 1;
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = graph_text(&name);
        assert_eq!(text.lines().next(), Some("flowchart TD"), "{name}");
        let source = std::fs::read_to_string(&path).unwrap();
        for step in source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- id: "))
        {
            let node = format!("step_{step}");
            assert!(
                text.lines()
                    .any(|l| l.trim().starts_with(&format!("{node}["))
                        || l.trim().starts_with(&format!("{node}("))
                        || l.trim().starts_with(&format!("{node}{{"))),
                "{name}: no node for step {step}:\n{text}"
            );
        }
    }
    assert!(
        seen >= 6,
        "expected at least six example journeys, found {seen}"
    );
}

#[test]
fn without_a_configuration_any_channel_name_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let journey = dir.path().join("pigeon.yaml");
    std::fs::write(
        &journey,
        r#"id: pigeon
version: 1
trigger: { event: signed_up }
steps:
  - id: hello
    send: { channels: [carrier_pigeon, email], template: 'welcome' }
  - id: check
    branch:
      - when: { path: profile.nickname, eq: 'say "hi" <now>' }
        next: end
"#,
    )
    .unwrap();
    let output = graph(&journey, None, dir.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("channels: carrier_pigeon › email"), "{text}");
    // Quotes and angle brackets in labels are escaped.
    assert!(
        text.contains("profile.nickname = say #quot;hi#quot; #lt;now#gt;"),
        "{text}"
    );
    assert!(!text.contains("say \"hi\""), "{text}");
    // A branch without an else case falls through to the following step (here: the end).
    assert_has_line(&text, "step_check -->|\"no case matched\"| journey_end");
}

#[test]
fn an_invalid_journey_is_reported_and_not_drawn() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let journey = dir.path().join("broken.yaml");
    std::fs::write(
        &journey,
        "id: broken\nversion: 1\ntrigger: { event: signed_up }\nsteps:\n  - id: hello\n    send: { channels: [fax], template: welcome }\n",
    )
    .unwrap();
    let output = graph(
        &journey,
        Some(&root.join("deploy/journeyd.yaml")),
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let reported = stderr.lines().any(|line| {
        line.split_once("broken.yaml:").is_some_and(|(_, rest)| {
            let mut parts = rest.splitn(3, ':');
            parts.next() == Some("6") && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
        })
    });
    assert!(
        reported,
        "the undeclared channel on line 6 is reported: {stderr}"
    );
}

/// The schema file referenced by every example journey is exactly what `journeyd schema` prints
/// (regenerate with `journeyd schema > deploy/journey.schema.json`).
#[test]
fn schema_file_is_up_to_date() {
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::read(repo_root().join("deploy/journey.schema.json"))
        .expect("deploy/journey.schema.json exists");
    assert!(
        file == output.stdout,
        "deploy/journey.schema.json is stale: run `journeyd schema > deploy/journey.schema.json`"
    );
    for entry in std::fs::read_dir(repo_root().join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        if journey_spec::is_test_file(path.file_name().unwrap().to_str().unwrap()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../deploy/journey.schema.json"),
            "{} must point editors at the schema",
            path.display()
        );
    }
}
