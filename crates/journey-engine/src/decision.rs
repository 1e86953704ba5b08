//! The closed sets of a decision record (docs/reference/decisions.md): its kind and its
//! reason. Callers match on these rather than on their text, so a new kind or reason that a
//! caller does not handle fails to compile instead of falling into a catch-all.

use std::fmt;

/// What a decision records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecisionKind {
    Entered,
    EntrySuppressed,
    Sent,
    SkippedChannel,
    Deferred,
    NoChannel,
    Holdout,
    Split,
    Exited,
    Goal,
    Completed,
    DuplicateEvent,
    BadTimezone,
}

impl DecisionKind {
    /// Every kind, in the order of docs/reference/decisions.md.
    pub const ALL: [DecisionKind; 13] = [
        DecisionKind::Entered,
        DecisionKind::EntrySuppressed,
        DecisionKind::Sent,
        DecisionKind::SkippedChannel,
        DecisionKind::Deferred,
        DecisionKind::NoChannel,
        DecisionKind::Holdout,
        DecisionKind::Split,
        DecisionKind::Exited,
        DecisionKind::Goal,
        DecisionKind::Completed,
        DecisionKind::DuplicateEvent,
        DecisionKind::BadTimezone,
    ];

    /// The `kind` field of the JSON record.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Entered => "entered",
            DecisionKind::EntrySuppressed => "entry_suppressed",
            DecisionKind::Sent => "sent",
            DecisionKind::SkippedChannel => "skipped_channel",
            DecisionKind::Deferred => "deferred",
            DecisionKind::NoChannel => "no_channel",
            DecisionKind::Holdout => "holdout",
            DecisionKind::Split => "split",
            DecisionKind::Exited => "exited",
            DecisionKind::Goal => "goal",
            DecisionKind::Completed => "completed",
            DecisionKind::DuplicateEvent => "duplicate_event",
            DecisionKind::BadTimezone => "bad_timezone",
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no decision kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown decision kind `{0}`")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for DecisionKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        DecisionKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Why a decision went the way it did (the `reason` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `entry_suppressed`: the entry's `unless` condition held.
    Unless,
    /// `entry_suppressed`: already in the journey, or re-entry not allowed yet.
    Reentry,
    /// `entry_suppressed`: the journey is not active.
    Status,
    /// `entry_suppressed`: the event that ended the customer's instance also matches the trigger.
    EndedBySameEvent,
    /// `skipped_channel`: the channel is not configured, or the profile has no address for it.
    Unreachable,
    /// `skipped_channel`: no consent for the channel.
    NoConsent,
    /// `skipped_channel`: a frequency cap is full. Holds the reason text,
    /// `frequency_cap:<cap name>` (cap names come from the configuration).
    FrequencyCap(String),
    /// `deferred`: inside quiet hours.
    QuietHours,
    /// `exited` after `no_channel` with `if_no_channel: exit`.
    NoChannel,
    /// `bad_timezone`: the rejected value, as the profile update carried it (free text).
    BadTimezone(String),
}

impl Reason {
    /// The `reason` field of the JSON record.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Unless => "unless",
            Reason::Reentry => "reentry",
            Reason::Status => "status",
            Reason::EndedBySameEvent => "ended_by_same_event",
            Reason::Unreachable => "unreachable",
            Reason::NoConsent => "no_consent",
            Reason::FrequencyCap(text) => text,
            Reason::QuietHours => "quiet_hours",
            Reason::NoChannel => "no_channel",
            Reason::BadTimezone(value) => value,
        }
    }

    /// The reason a record's text names: one of the fixed words, a `frequency_cap:` reason, or
    /// else the rejected time zone of a `bad_timezone` decision (the only free-text reason).
    pub fn from_text(s: &str) -> Reason {
        match s {
            "unless" => Reason::Unless,
            "reentry" => Reason::Reentry,
            "status" => Reason::Status,
            "ended_by_same_event" => Reason::EndedBySameEvent,
            "unreachable" => Reason::Unreachable,
            "no_consent" => Reason::NoConsent,
            "quiet_hours" => Reason::QuietHours,
            "no_channel" => Reason::NoChannel,
            s if s.starts_with("frequency_cap:") => Reason::FrequencyCap(s.to_string()),
            s => Reason::BadTimezone(s.to_string()),
        }
    }

    /// The buffer a reason with free text holds (for reuse).
    pub(crate) fn into_text(self) -> Option<String> {
        match self {
            Reason::FrequencyCap(s) | Reason::BadTimezone(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_from_their_text() {
        for k in DecisionKind::ALL {
            assert_eq!(k.as_str().parse::<DecisionKind>(), Ok(k));
        }
        assert_eq!(
            "sending".parse::<DecisionKind>(),
            Err(UnknownKind("sending".into()))
        );
    }

    /// The kinds the schemas and test files accept (journey-spec) are exactly the engine's.
    #[test]
    fn the_contracts_list_every_kind() {
        let engine: Vec<&str> = DecisionKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(engine, journey_spec::contracts::DECISION_KINDS);
    }

    #[test]
    fn reasons_read_back_from_their_text() {
        for r in [
            Reason::Unless,
            Reason::Reentry,
            Reason::Status,
            Reason::EndedBySameEvent,
            Reason::Unreachable,
            Reason::NoConsent,
            Reason::FrequencyCap("frequency_cap:sms_daily".into()),
            Reason::QuietHours,
            Reason::NoChannel,
            Reason::BadTimezone("Mars/Olympus_Mons".into()),
        ] {
            assert_eq!(Reason::from_text(r.as_str()), r);
        }
    }
}
