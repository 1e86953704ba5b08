//! The deterministic core of journeyd. No I/O, no clock, no threads: time comes in as an
//! argument, effects go out as values.
//!
//! API (stable contract between the engine and its callers, `simulate` and the Kafka runtime):
//! see the items below.

use chrono::{DateTime, Utc};
use journey_spec::{Config, Journey};
use std::sync::Arc;

/// A behavioural event (events.md), validated.
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
    /// `missing_field`, `invalid_field`.
    pub kind: &'static str,
    /// Readable reason (the `error` header).
    pub message: String,
}

/// Parses and validates one event (JSON object, required fields, sizes).
pub fn parse_event(bytes: &[u8], max_bytes: usize) -> Result<Event, EventError> {
    let _ = (bytes, max_bytes);
    unimplemented!("engine in progress")
}

/// A send command (events.md), addressed to the channel's topic.
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
    /// The JSON body, fields in the order of events.md.
    pub fn to_json(&self) -> String {
        unimplemented!("engine in progress")
    }
}

/// A decision record (events.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub customer_id: String,
    pub journey_id: Option<String>,
    pub journey_version: Option<u32>,
    pub step_id: Option<String>,
    /// `entered`, `entry_suppressed`, `sent`, `skipped_channel`, `deferred`, `no_channel`,
    /// `holdout`, `split`, `exited`, `goal`, `completed`, `duplicate_event`, `bad_timezone`.
    pub kind: &'static str,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub holdout: Option<bool>,
    pub until: Option<DateTime<Utc>>,
    pub branch: Option<String>,
}

impl Decision {
    /// The JSON body; fields that do not apply are left out.
    pub fn to_json(&self) -> String {
        unimplemented!("engine in progress")
    }
}

/// What one call to the engine produced, in order.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    pub commands: Vec<SendCommand>,
    pub decisions: Vec<Decision>,
    /// Customers whose persisted state changed (each at most once), in first-change order.
    pub changed: Vec<String>,
}

impl Effects {
    pub fn clear(&mut self) {
        self.commands.clear();
        self.decisions.clear();
        self.changed.clear();
    }
}

/// Why a persisted customer state could not be imported.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode customer state: {0}")]
pub struct StateError(pub String);

/// A compiled journey set plus the engine-wide policy. Cheap to share.
pub struct Catalog {
    _private: (),
}

impl Catalog {
    pub fn new(config: &Config, journeys: Vec<Journey>) -> Catalog {
        let _ = (config, journeys);
        unimplemented!("engine in progress")
    }
}

/// One engine owns a set of customers (all of them under `simulate`, one partition's under
/// `run`).
pub struct Engine {
    _catalog: Arc<Catalog>,
}

impl Engine {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Engine { _catalog: catalog }
    }
    /// Swaps the journey set (hot reload). Customers in flight stay on the version they entered.
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) {
        self._catalog = catalog;
    }
    /// Handles one event at engine time `now`.
    pub fn handle(&mut self, event: &Event, now: DateTime<Utc>, out: &mut Effects) {
        let _ = (event, now, out);
        unimplemented!("engine in progress")
    }
    /// Earliest pending timer, if any.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        unimplemented!("engine in progress")
    }
    /// Fires every timer due at or before `now`, in due order (ties in the order they were set).
    pub fn fire_due(&mut self, now: DateTime<Utc>, out: &mut Effects) {
        let _ = (now, out);
        unimplemented!("engine in progress")
    }
    /// The customer's persisted state (changelog value); `None` when the customer has no state
    /// (a tombstone).
    pub fn export_customer(&self, customer_id: &str) -> Option<Vec<u8>> {
        let _ = customer_id;
        unimplemented!("engine in progress")
    }
    /// Restores a customer from its changelog value and rebuilds its timers.
    pub fn import_customer(&mut self, customer_id: &str, bytes: &[u8]) -> Result<(), StateError> {
        let _ = (customer_id, bytes);
        unimplemented!("engine in progress")
    }
    /// Forgets a customer (a tombstone in the changelog, or a revoked partition).
    pub fn remove_customer(&mut self, customer_id: &str) {
        let _ = customer_id;
        unimplemented!("engine in progress")
    }
    /// Customers held.
    pub fn customer_count(&self) -> usize {
        unimplemented!("engine in progress")
    }
    /// Journey instances in flight, per journey id.
    pub fn active_instances(&self) -> Vec<(String, usize)> {
        unimplemented!("engine in progress")
    }
    /// Pending timers.
    pub fn pending_timers(&self) -> usize {
        unimplemented!("engine in progress")
    }
    /// A JSON view of one customer: journeys in flight, pending timers, cap counters, consent,
    /// profile keys (for the inspection endpoint). `now` is used for cap windows.
    pub fn inspect(&self, customer_id: &str, now: DateTime<Utc>) -> Option<serde_json::Value> {
        let _ = (customer_id, now);
        unimplemented!("engine in progress")
    }
}
