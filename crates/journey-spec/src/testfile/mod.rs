//! Journey test files (`*.test.yaml`, docs/journeys.md "Testing journeys"): the typed model and
//! its loader. A test file names the configuration and journeys it runs with, and holds test
//! cases: customers (profile, consent), timed events, and expectations about the sends and
//! decisions the engine makes.
//!
//! It lives in this crate, beside journeys and configuration, because it is read with the same
//! positioned YAML tree and checker, so every problem is reported as `FILE:LINE:COLUMN`. What
//! needs the loaded journeys (unknown journey, step, channel or template in an expectation) is
//! checked by the caller with the positions kept in the model ([`Pos`]).
//!
//! Times are absolute RFC 3339 instants (`2026-11-27T09:00:00Z`) or offsets from the test's
//! `start` (`+2h`, `+1d2h30m`).
//!
//! This module holds the model; the loader is in `load` (the file, times, test cases), `inputs`
//! (customers and events) and `expect` (expectations), the JSON Schema in `schema`.

mod expect;
mod inputs;
mod load;
mod schema;
#[cfg(test)]
mod tests;

pub use load::{load_test_file, parse_test_file, parse_time};
pub use schema::test_json_schema;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// A 1-based line and column in the test file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

/// A loaded test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    pub path: PathBuf,
    /// The configuration, resolved against the test file's directory.
    pub config: Option<Located<PathBuf>>,
    /// Journey files to load instead of the configuration's `journeys_dir`, resolved against
    /// the test file's directory.
    pub journeys: Option<Vec<Located<PathBuf>>>,
    pub tests: Vec<TestCase>,
}

/// Whether expectations must be met in the order written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Each expectation is met after the one before it (the default).
    Sequence,
    /// Each expectation is met by a distinct record, in any order.
    Set,
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub pos: Pos,
    pub start: DateTime<Utc>,
    pub customers: Vec<TestCustomer>,
    pub events: Vec<TestEvent>,
    pub order: Order,
    /// When true, a send that no `send` expectation matches fails the test.
    pub no_other_sends: bool,
    /// Timers are fired up to this instant after the last event: `until`, else 30 days after
    /// the last event, or the latest time an expectation names when that is later.
    pub until: DateTime<Utc>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct TestCustomer {
    pub id: String,
    pub pos: Pos,
    pub profile: Map<String, Value>,
    /// `(channel, granted)` in the order written.
    pub consent: Vec<(Located<String>, bool)>,
}

#[derive(Debug, Clone)]
pub struct TestEvent {
    pub pos: Pos,
    pub event_id: String,
    pub customer: String,
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

/// An inclusive time window; `at:` is a window of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum Expectation {
    Send(SendExpect),
    Decision(DecisionExpect),
    NoSend(NoSendExpect),
}

impl Expectation {
    pub fn pos(&self) -> Pos {
        match self {
            Expectation::Send(e) => e.pos,
            Expectation::Decision(e) => e.pos,
            Expectation::NoSend(e) => e.pos,
        }
    }
}

/// `send:`: a command was issued with these fields (those not given match anything).
#[derive(Debug, Clone)]
pub struct SendExpect {
    pub pos: Pos,
    pub customer: Option<Located<String>>,
    pub channel: Option<Located<String>>,
    pub template: Option<Located<String>>,
    pub journey: Option<Located<String>>,
    pub step: Option<Located<String>>,
    pub window: Option<Located<Window>>,
    /// Every key given must be in the command's data with an equal value.
    pub data: Map<String, Value>,
}

/// `decision:`: a decision record with these fields.
#[derive(Debug, Clone)]
pub struct DecisionExpect {
    pub pos: Pos,
    pub customer: Option<Located<String>>,
    pub kind: Located<String>,
    pub reason: Option<String>,
    pub journey: Option<Located<String>>,
    pub step: Option<Located<String>>,
    pub channel: Option<Located<String>>,
    pub branch: Option<String>,
    pub holdout: Option<bool>,
    pub window: Option<Located<Window>>,
}

/// `no_send:`: no command matching the filters was issued from `from` to `until` inclusive.
#[derive(Debug, Clone)]
pub struct NoSendExpect {
    pub pos: Pos,
    pub customer: Option<Located<String>>,
    pub channel: Option<Located<String>>,
    pub template: Option<Located<String>>,
    pub journey: Option<Located<String>>,
    pub window: Located<Window>,
}

/// How long after the last event a test without `until` runs (its timers fire up to then).
pub const DEFAULT_RUN_AFTER_LAST_EVENT: chrono::Duration = chrono::Duration::days(30);

/// Every decision kind the engine records (docs/reference/decisions.md).
pub use crate::contracts::DECISION_KINDS;
