//! JSON rendering of send commands and decisions, fields in the order of docs/reference/commands.md and
//! docs/reference/decisions.md, timestamps
//! as RFC 3339 UTC with `Z` and fractional seconds only when non-zero.
//!
//! Written by hand rather than derived with serde (`Serialize` with `skip_serializing_if`)
//! because the derived one is measurably slower. The records of the engine bench's workload
//! (`benches/examples/render_profile.rs`: 100,000 customers, 300,000 events, 2,185 commands and
//! 224,100 decisions), rendered `to_json` one by one, run back to back on the same machine:
//!
//! | writer | instructions per record (callgrind) | ns per record, run 1 | ns per record, run 2 |
//! |---|---|---|---|
//! | this one | 3,488 | 436 / 291 / 305 | 232 / 231 / 268 |
//! | serde, `serde_json::to_string` | 3,961 | 587 / 415 / 367 | |
//! | serde, `to_writer` into a 320/200-byte buffer | 4,059 | | 313 / 344 / 358 |
//!
//! (ns: best of 5 rounds; each run alternates the two builds over three passes, shown in order.)
//!
//! The engine bench does not render, so it cannot tell the two apart; on the records it makes
//! (0.75 per event), serde adds ~360 instructions and ~75-100 ns per event to the ~2,900
//! instructions and ~2.5 µs the engine spends on one at a million customers (callgrind: 6% more
//! for engine and rendering together), a fixed cost that wall-clock noise hides but does not
//! remove. The escaping is checked against serde_json's below.

use crate::{Decision, Reason, SendCommand};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::fmt::Write;

/// Most spare strings kept; bounds what a burst of large effects leaves behind (with
/// [`SPARE_STRING_CAP`], at most 4 MiB), while covering the records of a few thousand events
/// accumulated between two clears.
const SPARE_STRINGS: usize = 65_536;
/// Most spare data maps kept.
const SPARE_MAPS: usize = 1024;
/// Larger buffers are freed rather than kept (the engine's strings are ids and names).
const SPARE_STRING_CAP: usize = 64;

/// Buffers of cleared [`crate::Effects`] records. The engine takes its output strings and maps
/// from here, which turns most allocations of a steady stream of calls into copies.
#[derive(Default, Clone)]
pub(crate) struct Spare {
    strings: Vec<String>,
    maps: Vec<Map<String, Value>>,
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spare")
            .field("strings", &self.strings.len())
            .field("maps", &self.maps.len())
            .finish()
    }
}

impl Spare {
    pub(crate) fn put(&mut self, s: String) {
        let cap = s.capacity();
        if cap > 0 && cap <= SPARE_STRING_CAP && self.strings.len() < SPARE_STRINGS {
            self.strings.push(s);
        }
    }

    fn put_opt(&mut self, s: Option<String>) {
        if let Some(s) = s {
            self.put(s);
        }
    }

    /// An owned copy of `v`, in a reused buffer when one is spare.
    #[inline]
    pub(crate) fn string(&mut self, v: &str) -> String {
        match self.strings.pop() {
            Some(mut s) => {
                s.clear();
                s.push_str(v);
                s
            }
            None => v.to_owned(),
        }
    }

    /// An empty map, reused when one is spare.
    pub(crate) fn map(&mut self) -> Map<String, Value> {
        self.maps.pop().unwrap_or_default()
    }

    pub(crate) fn recycle_decision(&mut self, d: Decision) {
        self.put(d.customer_id);
        self.put_opt(d.journey_id);
        self.put_opt(d.step_id);
        self.put_opt(d.channel);
        self.put_opt(d.command_id);
        self.put_opt(d.reason.and_then(Reason::into_text));
        self.put_opt(d.event_id);
        self.put_opt(d.branch);
    }

    pub(crate) fn recycle_command(&mut self, c: SendCommand) {
        self.put(c.command_id);
        self.put(c.customer_id);
        self.put(c.channel);
        self.put(c.topic);
        self.put(c.address);
        self.put(c.template);
        self.put(c.journey_id);
        self.put(c.step_id);
        self.put(c.trigger_event_id);
        let mut data = c.data;
        if self.maps.len() < SPARE_MAPS && data.len() <= 64 {
            data.clear();
            self.maps.push(data);
        }
    }
}

/// Formats an engine timestamp the way every output does.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn key(out: &mut String, first: &mut bool, k: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push('"');
    out.push_str(k);
    out.push_str("\":");
}

fn str_field(out: &mut String, first: &mut bool, k: &str, v: &str) {
    key(out, first, k);
    push_str(out, v);
}

impl SendCommand {
    pub(crate) fn render(&self) -> String {
        let mut o = String::with_capacity(320);
        let f = &mut true;
        o.push('{');
        str_field(&mut o, f, "command_id", &self.command_id);
        str_field(&mut o, f, "customer_id", &self.customer_id);
        str_field(&mut o, f, "channel", &self.channel);
        str_field(&mut o, f, "address", &self.address);
        str_field(&mut o, f, "template", &self.template);
        key(&mut o, f, "data");
        o.push_str(&serde_json::to_string(&self.data).expect("a JSON map always serialises"));
        str_field(&mut o, f, "journey_id", &self.journey_id);
        key(&mut o, f, "journey_version");
        let _ = write!(o, "{}", self.journey_version);
        str_field(&mut o, f, "step_id", &self.step_id);
        str_field(&mut o, f, "trigger_event_id", &self.trigger_event_id);
        str_field(&mut o, f, "issued_at", &format_time(self.issued_at));
        o.push('}');
        o
    }
}

impl Decision {
    pub(crate) fn render(&self) -> String {
        let mut o = String::with_capacity(200);
        let f = &mut true;
        o.push('{');
        str_field(&mut o, f, "at", &format_time(self.at));
        str_field(&mut o, f, "customer_id", &self.customer_id);
        if let Some(j) = &self.journey_id {
            str_field(&mut o, f, "journey_id", j);
        }
        if let Some(v) = self.journey_version {
            key(&mut o, f, "journey_version");
            let _ = write!(o, "{v}");
        }
        if let Some(s) = &self.step_id {
            str_field(&mut o, f, "step_id", s);
        }
        str_field(&mut o, f, "kind", self.kind.as_str());
        if let Some(c) = &self.channel {
            str_field(&mut o, f, "channel", c);
        }
        if let Some(c) = &self.command_id {
            str_field(&mut o, f, "command_id", c);
        }
        if let Some(r) = &self.reason {
            str_field(&mut o, f, "reason", r.as_str());
        }
        if let Some(e) = &self.event_id {
            str_field(&mut o, f, "event_id", e);
        }
        if let Some(u) = self.until {
            str_field(&mut o, f, "until", &format_time(u));
        }
        if let Some(b) = &self.branch {
            str_field(&mut o, f, "branch", b);
        }
        if let Some(h) = self.holdout {
            key(&mut o, f, "holdout");
            o.push_str(if h { "true" } else { "false" });
        }
        o.push('}');
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn time_format() {
        assert_eq!(
            format_time(t("2026-11-23T11:15:00+00:00")),
            "2026-11-23T11:15:00Z"
        );
        assert_eq!(
            format_time(t("2026-11-23T11:15:00.250Z")),
            "2026-11-23T11:15:00.250Z"
        );
        assert_eq!(
            format_time(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
            "2026-01-02T03:04:05Z"
        );
    }

    #[test]
    fn string_escaping_matches_serde_json() {
        for s in ["plain", "q\"b\\s", "nl\n\t\r", "\u{1}\u{1f}x", "é✓"] {
            let mut o = String::new();
            push_str(&mut o, s);
            assert_eq!(o, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn decision_json_field_order_as_in_events_md() {
        let d = Decision {
            at: t("2026-11-23T11:15:00Z"),
            customer_id: "c-42".into(),
            journey_id: Some("cart_abandonment".into()),
            journey_version: Some(3),
            step_id: Some("first_reminder".into()),
            kind: crate::DecisionKind::SkippedChannel,
            channel: Some("push".into()),
            command_id: None,
            reason: Some(Reason::NoConsent),
            event_id: Some("e-1001".into()),
            holdout: Some(false),
            until: None,
            branch: None,
        };
        assert_eq!(
            d.to_json(),
            r#"{"at":"2026-11-23T11:15:00Z","customer_id":"c-42","journey_id":"cart_abandonment","journey_version":3,"step_id":"first_reminder","kind":"skipped_channel","channel":"push","reason":"no_consent","event_id":"e-1001","holdout":false}"#
        );
        let d = Decision {
            at: t("2026-11-23T11:15:00Z"),
            customer_id: "c".into(),
            journey_id: None,
            journey_version: None,
            step_id: None,
            kind: crate::DecisionKind::DuplicateEvent,
            channel: None,
            command_id: None,
            reason: None,
            event_id: Some("e".into()),
            holdout: None,
            until: Some(t("2026-11-24T08:00:00Z")),
            branch: Some("a".into()),
        };
        assert_eq!(
            d.to_json(),
            r#"{"at":"2026-11-23T11:15:00Z","customer_id":"c","kind":"duplicate_event","event_id":"e","until":"2026-11-24T08:00:00Z","branch":"a"}"#
        );
    }

    #[test]
    fn command_json_field_order_as_in_events_md() {
        let mut data = serde_json::Map::new();
        data.insert("cart_value".into(), serde_json::json!(59.0));
        data.insert("campaign".into(), serde_json::json!("spring"));
        let c = SendCommand {
            command_id: "8f14e45fceea167a".into(),
            customer_id: "c-42".into(),
            channel: "email".into(),
            topic: "actions.email".into(),
            address: "ada@example.com".into(),
            template: "cart_reminder_1".into(),
            data,
            journey_id: "cart_abandonment".into(),
            journey_version: 3,
            step_id: "first_reminder".into(),
            trigger_event_id: "e-1001".into(),
            issued_at: t("2026-11-23T11:15:00Z"),
        };
        assert_eq!(
            c.to_json(),
            r#"{"command_id":"8f14e45fceea167a","customer_id":"c-42","channel":"email","address":"ada@example.com","template":"cart_reminder_1","data":{"cart_value":59.0,"campaign":"spring"},"journey_id":"cart_abandonment","journey_version":3,"step_id":"first_reminder","trigger_event_id":"e-1001","issued_at":"2026-11-23T11:15:00Z"}"#
        );
    }
}
