//! Unit tests of the metrics: labels, lifecycle counters, the families table.

use super::*;
use crate::recovery::RebuildReason;
use crate::txn::AbortReason;
use chrono::{TimeZone, Utc};

fn decision(kind: &str, journey: &str, reason: Option<&str>) -> Decision {
    Decision {
        at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        customer_id: "c-42".into(),
        journey_id: Some(journey.into()),
        journey_version: Some(1),
        step_id: Some("s".into()),
        kind: kind.parse().expect("a decision kind"),
        channel: None,
        command_id: None,
        reason: reason.map(Reason::from_text),
        event_id: Some("e-1".into()),
        holdout: None,
        until: None,
        branch: None,
    }
}

fn command(channel: &str, journey: &str) -> SendCommand {
    SendCommand {
        command_id: "abc".into(),
        customer_id: "c-42".into(),
        channel: channel.into(),
        topic: format!("actions.{channel}"),
        address: "ada@example.com".into(),
        template: "t".into(),
        data: serde_json::Map::new(),
        journey_id: journey.into(),
        journey_version: 1,
        step_id: "s".into(),
        trigger_event_id: "e-1".into(),
        issued_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
    }
}

/// The exposition line of one series, e.g. `name{a="b"} 3`, or None when absent.
fn series_lines(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_capped_send_is_counted_with_its_cap_name() {
    let m = Metrics::new();
    m.decisions(&[decision(
        "skipped_channel",
        "x",
        Some("frequency_cap:email_weekly"),
    )]);
    let text = m.encode_text();
    assert!(
        text.contains(
            "journeyd_decisions_total{journey=\"x\",kind=\"skipped_channel\",reason=\"frequency_cap:email_weekly\"} 1\n"
        ),
        "{text}"
    );
}

#[test]
fn decisions_without_reason_have_an_empty_reason_and_unknown_reasons_are_other() {
    let m = Metrics::new();
    m.decisions(&[
        decision("sent", "cart", None),
        decision("sent", "cart", None),
        decision("bad_timezone", "", Some("Mars/Olympus_Mons c-42")),
    ]);
    let text = m.encode_text();
    assert_eq!(
        series_lines(&text, "journeyd_decisions_total{"),
        vec![
            "journeyd_decisions_total{journey=\"\",kind=\"bad_timezone\",reason=\"other\"} 1",
            "journeyd_decisions_total{journey=\"cart\",kind=\"sent\",reason=\"\"} 2",
        ]
    );
    assert!(!text.contains("c-42"), "customer ids never appear: {text}");
}

#[test]
fn reason_labels_keep_engine_reasons_and_hide_free_text() {
    for known in [
        "unless",
        "reentry",
        "status",
        "unreachable",
        "no_consent",
        "quiet_hours",
        "no_channel",
        "frequency_cap:sms_daily",
    ] {
        assert_eq!(reason_label(Some(&Reason::from_text(known))), known);
    }
    assert_eq!(reason_label(None), "");
    let free = |s: &str| Reason::BadTimezone(s.into());
    assert_eq!(reason_label(Some(&free("Europe/Londn"))), "other");
    assert_eq!(reason_label(Some(&free("ada@example.com"))), "other");
}

#[test]
fn lifecycle_decisions_feed_the_holdout_counters() {
    let m = Metrics::new();
    let mut treated = decision("entered", "cart", None);
    treated.holdout = Some(false);
    let mut control = decision("entered", "cart", None);
    control.holdout = Some(true);
    let mut control_goal = decision("goal", "cart", None);
    control_goal.holdout = Some(true);
    // The engine may leave the flag out on exits and completions: counted as "false".
    let exited = decision("exited", "cart", None);
    let completed = decision("completed", "cart", None);
    m.decisions(&[
        treated.clone(),
        treated,
        control,
        control_goal,
        exited,
        completed,
    ]);
    let text = m.encode_text();
    assert_eq!(
        series_lines(&text, "journeyd_journey_entries_total{"),
        vec![
            "journeyd_journey_entries_total{holdout=\"false\",journey=\"cart\"} 2",
            "journeyd_journey_entries_total{holdout=\"true\",journey=\"cart\"} 1",
        ]
    );
    assert_eq!(
        series_lines(&text, "journeyd_journey_goals_total{"),
        vec!["journeyd_journey_goals_total{holdout=\"true\",journey=\"cart\"} 1"]
    );
    assert_eq!(
        series_lines(&text, "journeyd_journey_exits_total{"),
        vec!["journeyd_journey_exits_total{holdout=\"false\",journey=\"cart\"} 1"]
    );
    assert_eq!(
        series_lines(&text, "journeyd_journey_completions_total{"),
        vec!["journeyd_journey_completions_total{holdout=\"false\",journey=\"cart\"} 1"]
    );
}

#[test]
fn commands_are_counted_by_channel_and_journey() {
    let m = Metrics::new();
    m.commands(&[
        command("email", "cart"),
        command("sms", "cart"),
        command("email", "cart"),
        command("email", "welcome"),
    ]);
    let text = m.encode_text();
    assert_eq!(
        series_lines(&text, "journeyd_commands_total{"),
        vec![
            "journeyd_commands_total{channel=\"email\",journey=\"cart\"} 2",
            "journeyd_commands_total{channel=\"email\",journey=\"welcome\"} 1",
            "journeyd_commands_total{channel=\"sms\",journey=\"cart\"} 1",
        ]
    );
    assert!(!text.contains("ada@example.com"));
}

#[test]
fn events_dead_letters_reloads_and_producers_are_counted() {
    let m = Metrics::new();
    let w = m.worker(0);
    m.event_consumed("events", EventOutcome::Processed);
    m.event_consumed("events", EventOutcome::Processed);
    m.event_consumed("events", EventOutcome::DeadLetter);
    m.dead_lettered("not_json");
    m.reload(true);
    m.reload(false);
    m.reload(false);
    w.producer_recreated(RebuildReason::Fenced);
    w.transaction_aborted(AbortReason::Produce);
    w.transaction_fatal();
    m.journeys_loaded(4);
    let text = m.encode_text();
    for line in [
        "journeyd_events_consumed_total{outcome=\"processed\",topic=\"events\"} 2",
        "journeyd_events_consumed_total{outcome=\"dead_letter\",topic=\"events\"} 1",
        "journeyd_dead_letters_total{reason=\"not_json\"} 1",
        "journeyd_reloads_total{outcome=\"success\"} 1",
        "journeyd_reloads_total{outcome=\"failure\"} 2",
        "journeyd_producer_recreated_total{reason=\"fenced\",worker=\"0\"} 1",
        "journeyd_transaction_aborts_total{reason=\"produce\",worker=\"0\"} 1",
        "journeyd_transaction_aborts_total{reason=\"fatal\",worker=\"0\"} 1",
        "journeyd_journeys_loaded 4",
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line}:\n{text}"
        );
    }
}

#[test]
fn build_info_is_one_for_this_version() {
    let text = Metrics::new().encode_text();
    let expected = format!(
        "journeyd_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&expected), "{text}");
}

#[test]
fn histograms_record_observations() {
    let m = Metrics::new();
    let w = m.worker(0);
    w.observe_commit(0.003);
    w.observe_commit(0.2);
    m.observe_timer_lateness(-1.0);
    m.observe_event_to_command(1.5);
    m.observe_restore(3, 2.0, 120);
    m.observe_restore(4, 1.0, 30);
    let text = m.encode_text();
    for line in [
        "journeyd_transaction_commit_seconds_bucket{worker=\"0\",le=\"0.005\"} 1",
        "journeyd_transaction_commit_seconds_bucket{worker=\"0\",le=\"0.25\"} 2",
        "journeyd_transaction_commit_seconds_count{worker=\"0\"} 2",
        "journeyd_timer_lateness_seconds_bucket{le=\"0.005\"} 1",
        "journeyd_timer_lateness_seconds_sum 0",
        "journeyd_event_to_command_seconds_bucket{le=\"1\"} 0",
        "journeyd_event_to_command_seconds_bucket{le=\"2.5\"} 1",
        "journeyd_restore_seconds_count 2",
        "journeyd_restore_seconds_sum 3",
        "journeyd_restore_records_total 150",
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line}:\n{text}"
        );
    }
}

#[test]
fn forget_partition_removes_only_that_partitions_series() {
    let m = Metrics::new();
    m.set_partition_state(0, 10, 3);
    m.set_partition_state(1, 20, 5);
    m.set_active_instances("cart", 0, 4);
    m.set_active_instances("welcome", 0, 2);
    m.set_active_instances("cart", 1, 7);
    m.set_consumer_lag("events", 0, 12);
    m.set_consumer_lag("events", 1, 0);
    m.forget_partition("events", 0);
    let text = m.encode_text();
    assert_eq!(
        series_lines(&text, "journeyd_active_instances{"),
        vec!["journeyd_active_instances{journey=\"cart\",partition=\"1\"} 7"]
    );
    assert_eq!(
        series_lines(&text, "journeyd_customers{"),
        vec!["journeyd_customers{partition=\"1\"} 20"]
    );
    assert_eq!(
        series_lines(&text, "journeyd_pending_timers{"),
        vec!["journeyd_pending_timers{partition=\"1\"} 5"]
    );
    assert_eq!(
        series_lines(&text, "journeyd_consumer_lag{"),
        vec!["journeyd_consumer_lag{partition=\"1\",topic=\"events\"} 0"]
    );
}

#[test]
fn every_listed_family_is_registered_with_its_labels() {
    let m = Metrics::new();
    let w = m.worker(0);
    // Touch every labelled vec once so that gather() returns it.
    m.event_consumed("events", EventOutcome::Processed);
    m.dead_lettered("not_json");
    m.uncatalogued_event("events");
    m.decisions(&[
        decision("entered", "j", None),
        decision("exited", "j", None),
        decision("goal", "j", None),
        decision("completed", "j", None),
    ]);
    m.commands(&[command("email", "j")]);
    m.set_partition_state(0, 1, 1);
    m.set_active_instances("j", 0, 1);
    w.transaction_aborted(AbortReason::Commit);
    m.set_consumer_lag("events", 0, 1);
    m.reload(true);
    w.producer_recreated(RebuildReason::Fenced);
    w.session_restarted("consumer_fatal");
    m.restore_started(0, 1);
    m.restore_progress(0, 1, 2);
    m.checkpoint_fallback("missing");
    m.checkpoint_written(0, 1, 100, 0.01);
    m.rebalance("assigned");
    let families = m.registry.gather();
    let mut gathered: Vec<(String, Vec<String>)> = families
        .iter()
        .map(|f| {
            let labels = f.get_metric()[0]
                .get_label()
                .iter()
                .map(|l| l.name().to_string())
                .collect();
            (f.name().to_string(), labels)
        })
        .collect();
    gathered.sort();
    let mut expected: Vec<(String, Vec<String>)> = METRIC_FAMILIES
        .iter()
        .map(|(name, labels)| {
            let mut labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            labels.sort();
            (name.to_string(), labels)
        })
        .collect();
    expected.sort();
    assert_eq!(gathered, expected);
}

#[test]
fn every_histogram_family_has_its_three_series_and_only_those() {
    let names = metric_names();
    let histograms: Vec<&str> = histograms().collect();
    assert_eq!(
        histograms,
        [
            "journeyd_timer_lateness_seconds",
            "journeyd_event_to_command_seconds",
            "journeyd_transaction_commit_seconds",
            "journeyd_restore_seconds",
            "journeyd_checkpoint_write_seconds",
        ]
    );
    for h in &histograms {
        for suffix in ["_bucket", "_sum", "_count"] {
            assert!(names.contains(&format!("{h}{suffix}").as_str()));
        }
    }
    assert_eq!(names.len(), METRIC_FAMILIES.len() + histograms.len() * 3);
}

#[test]
fn metric_names_include_histogram_series() {
    let names = metric_names();
    assert!(names.contains(&"journeyd_transaction_commit_seconds_bucket"));
    assert!(names.contains(&"journeyd_restore_seconds_count"));
    assert!(names.contains(&"journeyd_decisions_total"));
    assert!(!names.contains(&"journeyd_decisions_total_bucket"));
}

#[test]
fn each_worker_sets_and_counts_its_own_series() {
    let m = Metrics::new();
    let (w0, w1) = (m.worker(0), m.worker(1));
    w0.set_partitions(3, 1);
    w1.set_partitions(2, 0);
    w1.session_restarted("kafka");
    w1.session_restarted("kafka");
    // Worker 1 setting its gauges again leaves worker 0's alone.
    w1.set_partitions(4, 2);
    let text = m.encode_text();
    assert_eq!(
        series_lines(&text, "journeyd_partitions_assigned{"),
        vec![
            "journeyd_partitions_assigned{worker=\"0\"} 3",
            "journeyd_partitions_assigned{worker=\"1\"} 4",
        ]
    );
    assert_eq!(
        series_lines(&text, "journeyd_partitions_restoring{"),
        vec![
            "journeyd_partitions_restoring{worker=\"0\"} 1",
            "journeyd_partitions_restoring{worker=\"1\"} 2",
        ]
    );
    assert_eq!(
        series_lines(&text, "journeyd_kafka_sessions_restarted_total{"),
        vec!["journeyd_kafka_sessions_restarted_total{reason=\"kafka\",worker=\"1\"} 2"]
    );
    assert_eq!(w1.worker_label(), "1");
}

#[test]
fn every_abort_reason_has_its_own_label() {
    let m = Metrics::new();
    let w = m.worker(0);
    let reasons = [
        AbortReason::AssignmentLost,
        AbortReason::Produce,
        AbortReason::Changelog,
        AbortReason::SendOffsets,
        AbortReason::Commit,
        AbortReason::NoGroupMetadata,
        AbortReason::EngineFailure,
        AbortReason::Shutdown,
        AbortReason::Rewind,
    ];
    for r in reasons {
        w.transaction_aborted(r);
    }
    w.transaction_fatal();
    let text = m.encode_text();
    for label in reasons.iter().map(|r| r.label()).chain(["fatal"]) {
        let line =
            format!("journeyd_transaction_aborts_total{{reason=\"{label}\",worker=\"0\"}} 1\n");
        assert!(text.contains(&line), "missing {line}:\n{text}");
    }
}
