//! Black-box test of `journeyd demo`: it needs nothing running (the Kafka cluster is in the
//! process), prints sends and decisions as they happen, serves /metrics, stops after
//! `--duration` and closes with a summary that agrees with the lines it printed.

use journeyd_testkit::{free_port, http_get, journeyd_bin, metric_sum};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_runs_alone_prints_what_happens_and_stops_by_itself() {
    let port = free_port();
    // From a directory without deploy/journeyd.yaml, so the built-in configuration is used.
    let cwd = std::env::temp_dir();
    let mut child = Command::new(journeyd_bin())
        .args([
            "demo",
            "--duration",
            "12",
            "--customers",
            "8",
            "--rate",
            "40",
        ])
        .args(["--seed", "3", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start journeyd demo");

    // While it runs, the metrics endpoint answers and counts events.
    let started = Instant::now();
    let mut scraped = None;
    while started.elapsed() < Duration::from_secs(11) && scraped.is_none() {
        if let Some((200, text)) = http_get(port, "/metrics") {
            if metric_sum(&text, "journeyd_events_consumed_total", &[]) > 0.0 {
                scraped = Some(text);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("journeyd demo did not stop by itself after --duration 12");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "demo failed ({status}):\n{out}\n{err}");
    assert!(
        scraped.is_some(),
        "/metrics never counted a consumed event:\n{out}\n{err}"
    );

    assert!(out.contains("the built-in configuration"), "{out}");
    let sent = out.lines().filter(|l| l.contains(" SENT ")).count();
    let entered = out.lines().filter(|l| l.contains(" ENTERED ")).count();
    let dead = out.lines().filter(|l| l.contains(" DEAD ")).count();
    assert!(sent > 0, "no send printed:\n{out}");
    assert!(entered > 0, "no entry printed:\n{out}");
    // 40 events a second for 12 s: at least one malformed record (every 250th) was produced.
    assert!(dead > 0, "no dead letter printed:\n{out}");

    let summary = out
        .lines()
        .find(|l| l.trim_start().starts_with("send commands:"))
        .unwrap_or_else(|| panic!("no summary:\n{out}"));
    let total: usize = summary
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary line: {summary}"));
    assert_eq!(total, sent, "the summary counts the SENT lines printed");
}
