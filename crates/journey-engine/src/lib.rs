//! The deterministic core of journeyd. No I/O, no clock, no threads: time comes in as an
//! argument, effects go out as values.
//!
//! API (stable contract between the engine and its callers, `simulate` and the Kafka runtime):
//! see the items below. The rules the contracts leave open are documented in [`engine`] (event
//! handling, timers, reload), [`hash`] (command ids, holdouts, splits), [`condition`]
//! (operators), [`localtime`] (DST) and [`state`] (persisted format).

pub mod catalog;
pub mod condition;
mod decision;
pub mod engine;
mod event;
pub mod formats;
pub mod hash;
pub mod localtime;
mod output;
pub mod state;

pub use decision::{DecisionKind, Reason, UnknownKind};
pub use engine::Engine;
pub use output::format_time;

use chrono::{DateTime, Utc};
use journey_spec::{Config, Journey};

/// A behavioural event (docs/reference/events.md), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub customer_id: String,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// Why an input record is not a valid event (it goes to the dead-letter topic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    /// Low-cardinality reason for metrics: `too_large`, `not_json`, `not_object`,
    /// `missing_field`, `invalid_field`, `unsupported` (a Segment call or CloudEvents encoding
    /// journeyd does not read); the runtime adds `key_mismatch` and `unknown_type`.
    pub kind: &'static str,
    /// Readable reason (the `error` header).
    pub message: String,
}

/// Parses and validates one event (JSON object, required fields, sizes).
pub fn parse_event(bytes: &[u8], max_bytes: usize) -> Result<Event, EventError> {
    event::parse(bytes, max_bytes)
}

/// Decodes one event of any input format ([`formats`]): the record value, and its headers
/// (name, value) for formats that carry attributes there.
pub fn decode_event(
    format: formats::Format<'_>,
    bytes: &[u8],
    headers: &[(&str, &[u8])],
    max_bytes: usize,
) -> Result<Event, EventError> {
    formats::decode(format, bytes, headers, max_bytes)
}

/// A send command (docs/reference/commands.md), addressed to the channel's topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SendCommand {
    pub command_id: String,
    pub customer_id: String,
    pub channel: String,
    /// The channel's output topic (from the configuration); not part of the JSON body.
    pub topic: String,
    pub address: String,
    pub template: String,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub journey_id: String,
    pub journey_version: u32,
    pub step_id: String,
    pub trigger_event_id: String,
    pub issued_at: DateTime<Utc>,
}

impl SendCommand {
    /// The JSON body, fields in the order of docs/reference/commands.md.
    pub fn to_json(&self) -> String {
        self.render()
    }
}

/// A decision record (docs/reference/decisions.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub customer_id: String,
    pub journey_id: Option<String>,
    pub journey_version: Option<u32>,
    pub step_id: Option<String>,
    pub kind: DecisionKind,
    pub channel: Option<String>,
    /// On `sent`: the `command_id` of the send command it records.
    pub command_id: Option<String>,
    pub reason: Option<Reason>,
    pub event_id: Option<String>,
    pub holdout: Option<bool>,
    pub until: Option<DateTime<Utc>>,
    pub branch: Option<String>,
}

impl Decision {
    /// The JSON body; fields that do not apply are left out.
    pub fn to_json(&self) -> String {
        self.render()
    }
}

/// What one call to the engine produced, in order.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    pub commands: Vec<SendCommand>,
    pub decisions: Vec<Decision>,
    /// Customers whose persisted state changed, in first-change order: each once per engine
    /// call (callers clear their `Effects` between calls; one that does not gets each call's
    /// entries appended).
    pub changed: Vec<String>,
    /// Buffers of cleared effects, reused by the engine for the next ones.
    spare: output::Spare,
}

impl Effects {
    /// Empties the lists. The string and map buffers of the cleared records are kept (up to a
    /// bound) and reused by the next engine calls, so a caller that clears after producing
    /// saves most of the per-record allocation.
    pub fn clear(&mut self) {
        let spare = &mut self.spare;
        for c in self.commands.drain(..) {
            spare.recycle_command(c);
        }
        for d in self.decisions.drain(..) {
            spare.recycle_decision(d);
        }
        for s in self.changed.drain(..) {
            spare.put(s);
        }
    }
}

/// Why a persisted customer state could not be imported.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode customer state: {0}")]
pub struct StateError(pub String);

/// A compiled journey set plus the engine-wide policy. Cheap to share.
pub struct Catalog {
    inner: catalog::CatalogInner,
}

impl Catalog {
    /// Compiles validated journeys against the configuration.
    pub fn new(config: &Config, journeys: Vec<Journey>) -> Catalog {
        Catalog {
            inner: catalog::CatalogInner::new(config, journeys),
        }
    }
}

impl std::ops::Deref for Catalog {
    type Target = catalog::CatalogInner;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
