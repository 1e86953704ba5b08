//! One assigned partition (Kafka Streams' `StreamTask`): its engine, its restore state, and the
//! single path through which records and timers reach the engine.

use crate::checkpoint::Checkpoint;
use crate::http::RestoreProgress;
use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use journey_engine::{Catalog, Effects, Engine, Event};
use journey_spec::Config;
use rdkafka::message::Message;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

/// A partition whose timers made the engine fail this many times in a row stops firing them
/// (until the next journey reload).
pub const TIMER_FAILURES_BEFORE_SUSPEND: u32 = 3;

/// What reaches the engine: one input event, or the wall clock for due timers.
pub enum Input<'a> {
    Event(&'a Event),
    Timers,
}

/// Why an input record did not become an event: the dead-letter reason kind (a fixed word,
/// the `reason` label of `journeyd_dead_letters_total`) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub kind: String,
    pub message: String,
}

/// Turns an input record into an event: the topic's format, the record key checked against the
/// customer id, the event catalogue ([`crate::records::decode_message`]). The one place where
/// input records are decoded.
pub fn decode_event(
    msg: &impl Message,
    config: &Config,
    metrics: &Metrics,
) -> Result<Event, Undecodable> {
    match catch_unwind(AssertUnwindSafe(|| {
        crate::records::decode_message(config, msg, metrics)
    })) {
        Ok(parsed) => parsed.map_err(|e| Undecodable {
            kind: e.kind.to_owned(),
            message: e.message,
        }),
        Err(panic) => Err(Undecodable {
            kind: "engine_failure".to_owned(),
            message: format!("event parser failure: {}", panic_message(&panic)),
        }),
    }
}

/// Where a restoring partition is.
#[derive(Debug)]
pub enum Phase {
    /// Importing a verified checkpoint, a batch per turn.
    Checkpoint(Box<Checkpoint>),
    /// Replaying the changelog from `from` to `end`.
    Changelog { from: i64, end: i64 },
}

/// A restore in progress.
#[derive(Debug)]
pub struct Restore {
    pub phase: Phase,
    pub started: Instant,
    /// Whether a checkpoint was used.
    pub from_checkpoint: bool,
    /// Checkpoint customers imported.
    pub customers: u64,
    /// Changelog records applied.
    pub records: u64,
    /// Changelog records that could not be applied.
    pub undecodable: u64,
    /// Checkpoint customers plus changelog records to replay.
    pub target: u64,
    /// The changelog partition's low and end offsets when the restore started.
    pub changelog: (i64, i64),
}

impl Restore {
    pub fn progress(&self) -> RestoreProgress {
        RestoreProgress {
            done: self.customers + self.records,
            target: self.target.max(self.customers + self.records),
        }
    }
}

/// Whether a partition processes.
#[derive(Debug)]
pub enum TaskState {
    /// Paused on the group consumer; its state is being rebuilt.
    Restoring(Restore),
    /// Processing records and timers.
    Active,
}

/// An engine call that panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFailure(pub String);

/// One assigned input partition number (the same number of every input topic, which share its
/// customers and its changelog partition).
pub struct PartitionTask {
    pub partition: i32,
    pub engine: Engine,
    /// The input topics this partition is assigned for.
    pub topics: BTreeSet<String>,
    pub state: TaskState,
    span: tracing::Span,
    pub timer_failures: u32,
    /// Journeys reported with in-flight instances last time (to zero the ones that ended).
    pub reported_journeys: BTreeSet<String>,
    /// Whether the state changed since the last checkpoint (or since the restore).
    pub dirty: bool,
    /// When the last checkpoint was written (or the restore finished).
    pub last_checkpoint: Instant,
}

impl PartitionTask {
    /// A new task with an empty engine; its restore is started by the task manager.
    pub fn new(partition: i32, catalog: Arc<Catalog>, restore: Restore) -> PartitionTask {
        PartitionTask {
            partition,
            engine: Engine::new(catalog),
            topics: BTreeSet::new(),
            state: TaskState::Restoring(restore),
            span: tracing::info_span!("partition", partition),
            timer_failures: 0,
            reported_journeys: BTreeSet::new(),
            dirty: false,
            last_checkpoint: Instant::now(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, TaskState::Active)
    }

    /// Whether timers of this task may fire.
    pub fn timers_enabled(&self) -> bool {
        self.is_active() && self.timer_failures < TIMER_FAILURES_BEFORE_SUSPEND
    }

    /// When the next timer is due, if timers may fire.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        if !self.timers_enabled() {
            return None;
        }
        self.engine.next_due()
    }

    /// The single apply path: hands one input to the engine at `now`; its effects land in
    /// `effects` (cleared first). A panicking engine call is caught and reported.
    pub fn apply(
        &mut self,
        input: Input<'_>,
        now: DateTime<Utc>,
        effects: &mut Effects,
    ) -> Result<(), EngineFailure> {
        let _entered = self.span.enter();
        effects.clear();
        let engine = &mut self.engine;
        let result = catch_unwind(AssertUnwindSafe(|| match input {
            Input::Event(event) => engine.handle(event, now, effects),
            Input::Timers => engine.fire_due(now, effects),
        }));
        match result {
            Ok(()) => {
                if !effects.changed.is_empty() {
                    self.dirty = true;
                }
                Ok(())
            }
            Err(panic) => Err(EngineFailure(panic_message(&panic))),
        }
    }
}

pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_readable() {
        let p = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&p), "boom 1");
        let p = catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&p), "static");
    }
}
