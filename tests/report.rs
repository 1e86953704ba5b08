//! Black-box tests of `journeyd report`: the HTML is self-contained and holds the counts, the
//! annotated flows and the chart; bad event lines are counted and listed, not fatal; a baseline
//! journey set is compared; and the page is opened in a real headless Chromium (Debian's
//! `chromium`, installed by `.ci/run`), which must render it without script errors with every
//! diagram and chart present.

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

/// The cart abandonment scenario's events plus two bad lines.
fn events(dir: &Path) -> PathBuf {
    let mut text =
        std::fs::read_to_string(repo_root().join("tests/scenarios/cart_abandonment/events.jsonl"))
            .unwrap();
    text.push_str("this is not an event\n{\"event_id\":\"x\"}\n");
    let path = dir.join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn report(dir: &Path, extra: &[&str]) -> String {
    let config = repo_root().join("deploy/journeyd.yaml");
    let events = events(dir);
    let out_path = dir.join("report.html");
    let mut args = vec![
        "report",
        "--config",
        config.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--until",
        "2026-11-25T12:00:00Z",
        "--out",
        out_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = journeyd(&args, dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(out_path).unwrap()
}

#[test]
fn the_report_is_self_contained_and_counts_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let html = report(dir.path(), &[]);
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Nothing is fetched: no links, no sources, no URLs other than the SVG namespace.
    for forbidden in ["<link", " src=", "@import", "url(http"] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    // Bad lines are counted and listed with their numbers.
    let n = std::fs::read_to_string(dir.path().join("events.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        html.contains("2 event lines were not valid events"),
        "bad lines counted"
    );
    assert!(html.contains(&format!("events.jsonl:{}: not valid JSON", n - 1)));
    assert!(html.contains(&format!("events.jsonl:{n}: missing required field")));
    // Per-journey counts, per the scenario's README: 6 entered (Kit held out), Gus suppressed
    // by `unless`, Ada's second cart by `reentry`.
    assert!(html.contains(
        "<tr><td><a href=\"#j-cart_abandonment\">cart_abandonment</a></td><td class=\"num\">6</td><td class=\"num\">1</td><td>reentry 1, unless 1</td>"
    ), "{}", &html[html.find("<tr><td><a href=\"#j-cart_abandonment\"").unwrap()..][..400]);
    // Every journey has its annotated flow; the chart is there.
    assert_eq!(
        html.matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"journey-flow\"")
            .count(),
        8
    );
    assert!(html.contains(">6 customers</tspan>"));
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
    assert!(html.contains("class=\"bar\""));
    // Skips and caps.
    assert!(html.contains("<td>no_consent</td>"));
}

#[test]
fn a_baseline_journey_set_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline");
    std::fs::create_dir(&baseline).unwrap();
    for entry in std::fs::read_dir(repo_root().join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if journey_spec::is_test_file(&name) {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        if name == "cart_abandonment.yaml" {
            // The baseline waited two hours instead of one.
            text = text.replace("wait: 1h", "wait: 2h");
        }
        std::fs::write(baseline.join(&name), text).unwrap();
    }
    let html = report(
        dir.path(),
        &["--baseline-journeys", baseline.to_str().unwrap()],
    );
    assert!(html.contains("<section id=\"baseline\">"));
    assert!(
        html.contains("customers get different sends"),
        "a count of them"
    );
    // Ben's reminder went at 11:00 with the current set; the baseline's would have been at
    // 12:00, after his 11:40 order.
    let section = &html[html.find("<section id=\"baseline\">").unwrap()..];
    assert!(section.contains("<h3>c-ben</h3>"), "{section}");
    assert!(section.contains("sent push cart_reminder_1"), "{section}");
}

#[test]
fn chromium_renders_the_report_without_script_errors() {
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), &[]);
    let page = dir.path().join("report.html");
    let profile = dir.path().join("chromium-profile");
    // `timeout` bounds a browser that would hang; a hang is then a failure, not a stuck run.
    let out = Command::new("timeout")
        .args([
            "120",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium must be installed (Debian package `chromium`; .ci/run installs it)");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium failed or timed out ({:?}): {log}",
        out.status.code()
    );
    assert!(
        !log.contains("Uncaught") && !log.contains("SyntaxError"),
        "script errors: {log}"
    );
    // The page's own check ran (so the script ran to the end) and found every drawing.
    assert!(
        dom.contains(r#"data-flows="8" data-charts="1">rendered: 8 flow diagrams, 1 charts</p>"#),
        "{}",
        &dom[..dom.len().min(3000)]
    );
    assert!(dom.contains("class=\"journey-flow\""));
}
