//! Counts over decision records: what `simulate` prints on stderr at the end of a run (entered,
//! suppressed by reason, sends by channel, skips by reason, goals), and the per-journey figures
//! the backtest report starts from.

use journey_engine::{Decision, DecisionKind as K, Reason};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Decision counts of one run, by journey and overall.
#[derive(Debug, Default, Clone)]
pub(crate) struct Summary {
    pub entered: u64,
    pub entered_holdout: u64,
    /// `entry_suppressed` by reason.
    pub suppressed: BTreeMap<String, u64>,
    /// `sent` by channel.
    pub sends: BTreeMap<String, u64>,
    /// `skipped_channel` by reason (`no_consent`, `frequency_cap:sms_daily`, ...).
    pub skips: BTreeMap<String, u64>,
    pub deferred: u64,
    pub no_channel: u64,
    pub held_out_sends: u64,
    pub goals: u64,
    pub goals_holdout: u64,
    pub exited: u64,
    pub completed: u64,
}

impl Summary {
    pub fn add(&mut self, d: &Decision) {
        let bump = |m: &mut BTreeMap<String, u64>, k: &str| {
            if let Some(n) = m.get_mut(k) {
                *n += 1;
            } else {
                m.insert(k.to_string(), 1);
            }
        };
        let reason = d.reason.as_ref().map_or("", Reason::as_str);
        match d.kind {
            K::Entered => {
                self.entered += 1;
                if d.holdout == Some(true) {
                    self.entered_holdout += 1;
                }
            }
            K::EntrySuppressed => bump(&mut self.suppressed, reason),
            K::Sent => bump(&mut self.sends, d.channel.as_deref().unwrap_or("")),
            K::SkippedChannel => bump(&mut self.skips, reason),
            K::Deferred => self.deferred += 1,
            K::NoChannel => self.no_channel += 1,
            K::Holdout => self.held_out_sends += 1,
            K::Goal => {
                self.goals += 1;
                if d.holdout == Some(true) {
                    self.goals_holdout += 1;
                }
            }
            K::Exited => self.exited += 1,
            K::Completed => self.completed += 1,
            K::Split | K::DuplicateEvent | K::BadTimezone => {}
        }
    }

    /// The summary `simulate` prints, a few lines a person reads at a glance.
    pub fn render(&self, events: u64, bad_lines: u64) -> String {
        let list = |m: &BTreeMap<String, u64>| -> String {
            if m.is_empty() {
                return "none".to_string();
            }
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "summary: {events} events read, {bad_lines} bad lines skipped"
        );
        let _ = writeln!(
            o,
            "  entered: {} ({} held out)",
            self.entered, self.entered_holdout
        );
        let _ = writeln!(
            o,
            "  suppressed at entry: {} ({})",
            total(&self.suppressed),
            list(&self.suppressed)
        );
        let _ = writeln!(o, "  sends: {} ({})", total(&self.sends), list(&self.sends));
        let _ = writeln!(
            o,
            "  channels skipped: {} ({})",
            total(&self.skips),
            list(&self.skips)
        );
        let _ = writeln!(
            o,
            "  deferred for quiet hours: {}; no channel left: {}; held-out sends: {}",
            self.deferred, self.no_channel, self.held_out_sends
        );
        let _ = writeln!(
            o,
            "  goals: {} ({} held out); exited: {}; completed: {}",
            self.goals, self.goals_holdout, self.exited, self.completed
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn d(
        kind: &'static str,
        channel: Option<&str>,
        reason: Option<&str>,
        holdout: bool,
    ) -> Decision {
        Decision {
            at: Utc::now(),
            customer_id: "c".into(),
            journey_id: Some("j".into()),
            journey_version: Some(1),
            step_id: None,
            kind: kind.parse().expect("a decision kind"),
            channel: channel.map(Into::into),
            reason: reason.map(Reason::from_text),
            event_id: None,
            holdout: Some(holdout),
            until: None,
            branch: None,
            command_id: None,
        }
    }

    #[test]
    fn counts_and_renders() {
        let mut s = Summary::default();
        s.add(&d("entered", None, None, false));
        s.add(&d("entered", None, None, true));
        s.add(&d("entry_suppressed", None, Some("unless"), false));
        s.add(&d("sent", Some("email"), None, false));
        s.add(&d("sent", Some("email"), None, false));
        s.add(&d(
            "skipped_channel",
            Some("sms"),
            Some("frequency_cap:sms_daily"),
            false,
        ));
        s.add(&d("goal", None, None, true));
        assert_eq!(
            s.render(7, 1),
            "summary: 7 events read, 1 bad lines skipped\n  entered: 2 (1 held out)\n  \
             suppressed at entry: 1 (unless 1)\n  sends: 2 (email 2)\n  channels skipped: 1 \
             (frequency_cap:sms_daily 1)\n  deferred for quiet hours: 0; no channel left: 0; \
             held-out sends: 0\n  goals: 1 (1 held out); exited: 0; completed: 0\n"
        );
    }
}
