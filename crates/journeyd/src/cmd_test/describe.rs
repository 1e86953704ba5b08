//! How expectations and records read in a failure: the expectation, and the records closest
//! to it.

use super::run::{eq_opt, in_window};
use super::Record;
use journey_engine::DecisionKind as K;
use journey_engine::{format_time, Decision, Reason};
use journey_spec::testfile::{
    DecisionExpect, Expectation, Located, NoSendExpect, SendExpect, Window,
};
use serde_json::Value;
use std::fmt::Write as _;

/// The records closest to a failed expectation: same kind of record, most fields in common.
pub(super) fn closest(e: &Expectation, records: &[Record]) -> Vec<String> {
    let score = |r: &Record| -> Option<usize> {
        match e {
            Expectation::Send(s) => {
                let c = r.command.as_ref()?;
                if !eq_opt(&s.customer, Some(&c.customer_id)) {
                    return None;
                }
                Some(
                    [
                        eq_opt(&s.channel, Some(&c.channel)),
                        eq_opt(&s.template, Some(&c.template)),
                        eq_opt(&s.journey, Some(&c.journey_id)),
                        eq_opt(&s.step, Some(&c.step_id)),
                        in_window(&s.window, c.issued_at),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count(),
                )
            }
            Expectation::Decision(x) => {
                let d = &r.decision;
                if !eq_opt(&x.customer, Some(&d.customer_id)) || d.kind.as_str() != x.kind.value {
                    return None;
                }
                Some(
                    [
                        x.reason.as_ref().is_none_or(|v| {
                            d.reason.as_ref().map(Reason::as_str) == Some(v.as_str())
                        }),
                        eq_opt(&x.journey, d.journey_id.as_deref()),
                        eq_opt(&x.step, d.step_id.as_deref()),
                        eq_opt(&x.channel, d.channel.as_deref()),
                        in_window(&x.window, d.at),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count(),
                )
            }
            Expectation::NoSend(_) => None,
        }
    };
    let scored: Vec<(usize, &Record)> = records
        .iter()
        .filter_map(|r| score(r).map(|s| (s, r)))
        .collect();
    let Some(best) = scored.iter().map(|(s, _)| *s).max() else {
        return vec![match e {
            Expectation::Send(_) => "no send at all".to_string(),
            _ => "no decision of that kind".to_string(),
        }];
    };
    scored
        .iter()
        .filter(|(s, _)| *s == best)
        .take(3)
        .map(|(_, r)| describe(r))
        .collect()
}

fn at_text(w: &Option<Located<Window>>) -> String {
    match w {
        None => String::new(),
        Some(w) if w.value.from == w.value.to => format!(" at {}", format_time(w.value.from)),
        Some(w) => format!(
            " between {} and {}",
            format_time(w.value.from),
            format_time(w.value.to)
        ),
    }
}

fn opt(label: &str, v: &Option<Located<String>>) -> String {
    v.as_ref()
        .map(|v| format!(" {label}{}", v.value))
        .unwrap_or_default()
}

pub(super) fn show_send(s: &SendExpect) -> String {
    let mut o = "send".to_string();
    o += &opt("", &s.channel);
    o += &opt("", &s.template);
    o += &opt("to ", &s.customer);
    if s.journey.is_some() || s.step.is_some() {
        let _ = write!(
            o,
            " ({}{})",
            s.journey.as_ref().map_or("*", |j| j.value.as_str()),
            s.step
                .as_ref()
                .map(|x| format!("/{}", x.value))
                .unwrap_or_default()
        );
    }
    o += &at_text(&s.window);
    if !s.data.is_empty() {
        let _ = write!(o, " with data {}", Value::Object(s.data.clone()));
    }
    o
}

pub(super) fn show_decision(d: &DecisionExpect) -> String {
    let mut o = format!("decision {}", d.kind.value);
    o += &opt("", &d.channel);
    if let Some(r) = &d.reason {
        let _ = write!(o, " {r}");
    }
    if let Some(b) = &d.branch {
        let _ = write!(o, " arm {b}");
    }
    o += &opt("for ", &d.customer);
    o += &opt("in ", &d.journey);
    o += &opt("at step ", &d.step);
    if let Some(h) = d.holdout {
        let _ = write!(o, " (holdout {h})");
    }
    o += &at_text(&d.window);
    o
}

pub(super) fn show_no_send(n: &NoSendExpect) -> String {
    let mut o = "no send".to_string();
    o += &opt("on ", &n.channel);
    o += &opt("of ", &n.template);
    o += &opt("to ", &n.customer);
    o += &opt("from ", &n.journey);
    let _ = write!(
        o,
        " between {} and {}",
        format_time(n.window.value.from),
        format_time(n.window.value.to)
    );
    o
}

fn where_of(d: &Decision) -> String {
    match (&d.journey_id, &d.step_id) {
        (Some(j), Some(s)) => format!("{j}/{s}"),
        (Some(j), None) => j.clone(),
        _ => "-".to_string(),
    }
}

pub(super) fn describe_send(r: &Record) -> String {
    describe(r)
}

/// A record in words: `2026-11-23T11:15:00Z  c-ada  cart_abandonment/first_reminder  skipped
/// sms: frequency_cap:sms_daily`.
pub(crate) fn describe(r: &Record) -> String {
    let d = &r.decision;
    let text = match d.kind {
        K::Sent => match &r.command {
            Some(c) => format!(
                "sent {} {}{}",
                c.channel,
                c.template,
                if c.data.is_empty() {
                    String::new()
                } else {
                    format!(" {}", Value::Object(c.data.clone()))
                }
            ),
            None => format!("sent {}", d.channel.as_deref().unwrap_or("?")),
        },
        _ => describe_decision(d),
    };
    format!(
        "{}  {}  {}  {text}",
        format_time(d.at),
        d.customer_id,
        where_of(d)
    )
}

/// A decision's kind and details in words (without time, customer and place).
pub(crate) fn describe_decision(d: &Decision) -> String {
    let reason = d.reason.as_ref().map_or("", Reason::as_str);
    let channel = d.channel.as_deref().unwrap_or("");
    match d.kind {
        K::Entered if d.holdout == Some(true) => "entered (held out: will receive nothing)".into(),
        K::Entered => "entered".into(),
        K::EntrySuppressed => format!("not entered: {reason}"),
        K::Sent => format!("sent {channel}"),
        K::SkippedChannel => format!("skipped {channel}: {reason}"),
        K::Deferred => format!(
            "deferred {channel} until {} ({reason})",
            d.until.map(format_time).unwrap_or_default()
        ),
        K::NoChannel => "no channel left: nothing sent".into(),
        K::Holdout => "held out: nothing sent".into(),
        K::Split => format!("split: arm {}", d.branch.as_deref().unwrap_or("?")),
        K::Exited if !reason.is_empty() => format!("exited ({reason})"),
        K::Exited => format!("exited on event {}", d.event_id.as_deref().unwrap_or("?")),
        K::Goal => format!(
            "goal reached{}",
            if d.holdout == Some(true) {
                " (held out)"
            } else {
                ""
            }
        ),
        K::Completed => "completed".into(),
        K::DuplicateEvent => format!(
            "duplicate event {} ignored",
            d.event_id.as_deref().unwrap_or("?")
        ),
        K::BadTimezone => format!("bad time zone `{reason}`: default used"),
    }
}
