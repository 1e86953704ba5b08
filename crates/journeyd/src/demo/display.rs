//! How the demo shows what the engine does: one readable line per send command, decision and
//! dead letter, and the closing summary. Pure functions over the JSON records, so the wording is
//! tested without Kafka.

use serde_json::Value;
use std::collections::BTreeMap;

/// What each journey does right after a customer enters (e.g. `wait 1h`), shown with `ENTERED`
/// so the viewer knows why nothing follows at once.
pub type FirstSteps = BTreeMap<String, String>;

/// Describes a journey's first step for an `ENTERED` line.
pub fn first_step(journey: &journey_spec::Journey) -> String {
    use journey_spec::Action;
    match journey.steps.first().map(|s| &s.action) {
        Some(Action::Wait(d)) => format!("waits {}", duration(d.seconds)),
        Some(Action::WaitUntil(t)) => {
            format!("waits until {:02}:{:02} local time", t.hour, t.minute)
        }
        Some(Action::WaitFor(w)) => format!(
            "waits up to {} for {}",
            duration(w.timeout.seconds),
            w.event
        ),
        Some(Action::Send(s)) => format!("sends {} at once", s.template),
        Some(Action::Branch(_)) => "branches".to_string(),
        Some(Action::Split(_)) => "splits".to_string(),
        None => "does nothing".to_string(),
    }
}

/// `3600` → `1h`, `90` → `90s`, `259200` → `3d`.
pub fn duration(seconds: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m")];
    for (size, unit) in UNITS {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// `HH:MM:SS` of an RFC 3339 timestamp field (UTC), or of now when missing.
fn clock(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now)
        .format("%H:%M:%S")
        .to_string()
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or("?")
}

fn journey(v: &Value) -> String {
    match (v["journey_id"].as_str(), v["journey_version"].as_u64()) {
        (Some(id), Some(version)) => format!("{id} v{version}"),
        (Some(id), None) => id.to_string(),
        _ => "no journey".to_string(),
    }
}

/// `12:01:03 SENT     email cart_reminder_1 → c-17 (cart_abandonment v3)`
pub fn command_line(command: &Value) -> String {
    format!(
        "{} SENT     {} {} → {} ({})",
        clock(command, "issued_at"),
        s(command, "channel"),
        s(command, "template"),
        s(command, "customer_id"),
        journey(command)
    )
}

/// One line for a decision, or `None` for `sent` (the command line already says it).
pub fn decision_line(d: &Value, first_steps: &FirstSteps) -> Option<String> {
    let who = s(d, "customer_id");
    let j = journey(d);
    let holdout = if d["holdout"] == Value::Bool(true) {
        " [holdout]"
    } else {
        ""
    };
    let reason = d["reason"].as_str().unwrap_or("");
    let (tag, text) = match s(d, "kind") {
        "sent" => return None,
        "entered" => {
            let next = d["journey_id"]
                .as_str()
                .and_then(|id| first_steps.get(id))
                .map(|n| format!(", then {n}"))
                .unwrap_or_default();
            ("ENTERED ", format!("{who} entered {j}{holdout}{next}"))
        }
        "entry_suppressed" => ("DECIDED ", format!("{who} not entered {j}: {reason}")),
        "skipped_channel" => (
            "DECIDED ",
            format!("{who} skipped {}: {reason} ({j})", s(d, "channel")),
        ),
        "deferred" => (
            "DECIDED ",
            format!(
                "{who} send deferred until {}: {reason} ({j})",
                clock(d, "until")
            ),
        ),
        "no_channel" => ("DECIDED ", format!("{who} no channel left ({j})")),
        "holdout" => (
            "DECIDED ",
            format!("{who} in the control group, no send ({j})"),
        ),
        "split" => (
            "DECIDED ",
            format!("{who} split to branch {} ({j})", s(d, "branch")),
        ),
        "exited" => (
            "EXITED  ",
            format!("{who} left {j} on event {}", s(d, "event_id")),
        ),
        "goal" => (
            "GOAL    ",
            format!("{who} reached the goal of {j}{holdout}"),
        ),
        "completed" => ("DONE    ", format!("{who} completed {j}")),
        "duplicate_event" => (
            "DECIDED ",
            format!("{who} duplicate event {} ignored", s(d, "event_id")),
        ),
        "bad_timezone" => ("DECIDED ", format!("{who} unknown time zone ignored")),
        other => ("DECIDED ", format!("{who} {other} ({j})")),
    };
    Some(format!("{} {tag} {text}", clock(d, "at")))
}

/// `12:01:03 DEAD     events[2]@118: missing field customer_id`
pub fn dead_letter_line(headers: &BTreeMap<String, String>) -> String {
    let get = |k: &str| headers.get(k).map(String::as_str).unwrap_or("?");
    format!(
        "{} DEAD     {}[{}]@{}: {}",
        chrono::Utc::now().format("%H:%M:%S"),
        get("source_topic"),
        get("source_partition"),
        get("source_offset"),
        get("error")
    )
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub events: u64,
    pub malformed: u64,
    pub commands: BTreeMap<String, u64>,
    pub decisions: BTreeMap<String, u64>,
    pub dead_letters: u64,
}

impl Summary {
    pub fn command(&mut self, c: &Value) {
        *self
            .commands
            .entry(s(c, "channel").to_string())
            .or_default() += 1;
    }
    pub fn decision(&mut self, d: &Value) {
        *self.decisions.entry(s(d, "kind").to_string()).or_default() += 1;
    }

    /// The summary printed when the demo stops.
    pub fn render(&self, seconds: f64, pending_timers: i64) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "\nsummary after {seconds:.0}s: {} events produced ({} malformed on purpose), {} dead-lettered\n",
            self.events, self.malformed, self.dead_letters
        ));
        let total: u64 = self.commands.values().sum();
        out.push_str(&format!("  send commands: {total}"));
        for (channel, n) in &self.commands {
            out.push_str(&format!("  {channel}={n}"));
        }
        out.push('\n');
        let total: u64 = self.decisions.values().sum();
        out.push_str(&format!("  decisions: {total}"));
        for (kind, n) in &self.decisions {
            out.push_str(&format!("  {kind}={n}"));
        }
        out.push('\n');
        out.push_str(&format!(
            "  timers still pending: {pending_timers} (waits of hours and days, see the ENTERED lines)\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_command_reads_as_one_line() {
        let c = json!({"command_id": "x", "customer_id": "c-17", "channel": "email",
            "address": "a@b", "template": "cart_reminder_1", "data": {},
            "journey_id": "cart_abandonment", "journey_version": 3, "step_id": "first_reminder",
            "trigger_event_id": "e-1", "issued_at": "2026-11-23T12:01:03Z"});
        assert_eq!(
            command_line(&c),
            "12:01:03 SENT     email cart_reminder_1 → c-17 (cart_abandonment v3)"
        );
    }

    #[test]
    fn decisions_read_as_lines_and_sent_is_left_to_the_command() {
        let mut first = FirstSteps::new();
        first.insert("cart_abandonment".into(), "waits 1h".into());
        let skipped = json!({"at": "2026-11-23T12:01:03Z", "customer_id": "c-17",
            "journey_id": "cart_abandonment", "journey_version": 3, "kind": "skipped_channel",
            "channel": "push", "reason": "no_consent"});
        assert_eq!(
            decision_line(&skipped, &first).unwrap(),
            "12:01:03 DECIDED  c-17 skipped push: no_consent (cart_abandonment v3)"
        );
        let entered = json!({"at": "2026-11-23T12:01:03Z", "customer_id": "c-17",
            "journey_id": "cart_abandonment", "journey_version": 3, "kind": "entered",
            "holdout": false});
        assert_eq!(
            decision_line(&entered, &first).unwrap(),
            "12:01:03 ENTERED  c-17 entered cart_abandonment v3, then waits 1h"
        );
        let sent = json!({"at": "2026-11-23T12:01:03Z", "customer_id": "c-17", "kind": "sent"});
        assert_eq!(decision_line(&sent, &first), None);
    }

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(259_200), "3d");
        assert_eq!(duration(1_209_600), "2w");
        assert_eq!(duration(90), "90s");
        assert_eq!(duration(120), "2m");
    }

    #[test]
    fn the_summary_counts_commands_by_channel_and_decisions_by_kind() {
        let mut s = Summary {
            events: 10,
            malformed: 1,
            dead_letters: 1,
            ..Summary::default()
        };
        s.command(&json!({"channel": "email"}));
        s.command(&json!({"channel": "email"}));
        s.command(&json!({"channel": "sms"}));
        s.decision(&json!({"kind": "entered"}));
        let text = s.render(60.0, 4);
        assert!(text.contains("10 events produced (1 malformed on purpose), 1 dead-lettered"));
        assert!(text.contains("send commands: 3  email=2  sms=1"), "{text}");
        assert!(text.contains("decisions: 1  entered=1"), "{text}");
        assert!(text.contains("timers still pending: 4"), "{text}");
    }
}
