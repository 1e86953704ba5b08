//! Prometheus metrics of the Kafka runtime: what an SRE watches.
//!
//! Every series lives in a registry owned by [`Metrics`] (not the process-wide default one), so
//! tests and embedded runs never share counters. Names follow the Prometheus conventions: the
//! `journeyd_` prefix, `_total` for counters, `_seconds` for durations in base units. The
//! families are declared once, in the table of [`families`].
//!
//! Labels are kept low-cardinality on purpose: journey ids, channel names, cap names, topics,
//! partitions and stream threads are all bounded by configuration, and the engine's decision
//! kinds and reasons are a closed set. Customer ids, event ids and anything a customer can write
//! never become a label: the free-text reason of `bad_timezone` is reported as `other` (see
//! [`reason_label`]).
//!
//! What a stream thread sets or observes on its own (its commits, aborts, producer and session
//! rebuilds, its partition counts) carries a `worker` label and is recorded through the
//! [`WorkerMetrics`] of that thread ([`Metrics::worker`]), so that several threads of one
//! instance do not overwrite each other's gauges.
//!
//! Holdout counters (`journeyd_journey_{entries,exits,goals,completions}_total{holdout}`) let
//! lift be computed in PromQL, e.g. the conversion rate of the treated group
//! `goals{holdout="false"} / entries{holdout="false"}` against the control group's.

mod families;
mod handles;
mod worker;

pub use families::{histograms, metric_names, Kind, METRIC_FAMILIES};
pub use worker::WorkerMetrics;

use families::Families;
use handles::{ByName, Slots};
use journey_engine::{Decision, DecisionKind, Reason, SendCommand};
use prometheus::core::Collector;
use prometheus::{Encoder, IntCounter, Registry, TextEncoder};
use std::sync::{Arc, OnceLock};

/// The label value for a decision reason: the engine's fixed reasons and
/// `frequency_cap:<name>` (cap names come from the configuration) pass, a missing reason is
/// `""`, and the one free-text reason (the rejected value of `bad_timezone`) is `other`, so
/// that text a customer can write never becomes a series.
pub fn reason_label(reason: Option<&Reason>) -> &str {
    match reason {
        None => "",
        Some(
            r @ (Reason::Unless
            | Reason::Reentry
            | Reason::Status
            | Reason::EndedBySameEvent
            | Reason::Unreachable
            | Reason::NoConsent
            | Reason::FrequencyCap(_)
            | Reason::QuietHours
            | Reason::NoChannel),
        ) => r.as_str(),
        Some(Reason::BadTimezone(_)) => "other",
    }
}

/// The `holdout` label of a decision: `"true"`/`"false"`, `"false"` when the engine leaves the
/// flag out.
fn holdout_label(holdout: Option<bool>) -> &'static str {
    if holdout == Some(true) {
        "true"
    } else {
        "false"
    }
}

/// What became of one consumed input record: the `outcome` label of
/// `journeyd_events_consumed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Decoded and applied to the engine.
    Processed,
    /// Sent to the dead-letter topic.
    DeadLetter,
    /// Applied, and the engine recognised an event it had seen before.
    Duplicate,
}

impl EventOutcome {
    const COUNT: usize = 3;

    /// A record applied to the engine: `Duplicate` when the engine had seen its event before.
    pub const fn applied(duplicate: bool) -> EventOutcome {
        if duplicate {
            EventOutcome::Duplicate
        } else {
            EventOutcome::Processed
        }
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Processed => "processed",
            EventOutcome::DeadLetter => "dead_letter",
            EventOutcome::Duplicate => "duplicate",
        }
    }
}

const DECISION_KINDS: usize = DecisionKind::ALL.len();

/// The lifecycle counter a decision kind feeds, if any (index into [`JourneyHandles::lifecycle`]
/// before the holdout split).
fn lifecycle_index(kind: DecisionKind) -> Option<usize> {
    match kind {
        DecisionKind::Entered => Some(0),
        DecisionKind::Exited => Some(1),
        DecisionKind::Goal => Some(2),
        DecisionKind::Completed => Some(3),
        DecisionKind::EntrySuppressed
        | DecisionKind::Sent
        | DecisionKind::SkippedChannel
        | DecisionKind::Deferred
        | DecisionKind::NoChannel
        | DecisionKind::Holdout
        | DecisionKind::Split
        | DecisionKind::DuplicateEvent
        | DecisionKind::BadTimezone => None,
    }
}

/// The handles of one journey (or of the empty journey id of decisions outside any journey).
#[derive(Default)]
struct JourneyHandles {
    /// `decisions_total{kind, journey, reason=""}`, by kind.
    decisions: Slots<IntCounter, DECISION_KINDS>,
    /// `decisions_total{kind, journey, reason}`, by reason label, then kind.
    decisions_by_reason: ByName<Slots<IntCounter, DECISION_KINDS>>,
    /// entries, exits, goals, completions (in that order) × holdout false/true.
    lifecycle: Slots<IntCounter, 8>,
    /// `commands_total{channel, journey}`, by channel.
    commands: ByName<OnceLock<IntCounter>>,
}

/// The runtime's metrics. Cheap to share (`Arc`); every method takes `&self` and is safe to call
/// from any thread.
pub struct Metrics {
    /// The registry holding every journeyd series; `/metrics` encodes it.
    pub registry: Registry,
    f: Families,
    /// `events_consumed_total{topic, outcome}`, by topic, then outcome.
    consumed: ByName<Slots<IntCounter, { EventOutcome::COUNT }>>,
    /// `uncatalogued_events_total{topic}`, by topic.
    uncatalogued: ByName<OnceLock<IntCounter>>,
    /// Decision, lifecycle and command counters, by journey id.
    journeys: ByName<JourneyHandles>,
}

impl Metrics {
    /// Creates the registry and registers every series, including `journeyd_build_info`.
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let f = Families::register(&registry);
        f.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Arc::new(Metrics {
            registry,
            f,
            consumed: ByName::default(),
            uncatalogued: ByName::default(),
            journeys: ByName::default(),
        })
    }

    /// The metrics as stream thread `worker` (0, 1, ...) records them: the families it sets or
    /// observes on its own carry `worker="<worker>"`, resolved here once.
    pub fn worker(self: &Arc<Self>, worker: usize) -> WorkerMetrics {
        WorkerMetrics::new(Arc::clone(self), worker)
    }

    /// One input record of `topic` consumed.
    pub fn event_consumed(&self, topic: &str, outcome: EventOutcome) {
        self.consumed.with(topic, |outcomes| {
            outcomes
                .get(outcome as usize, || {
                    self.f
                        .events_consumed
                        .with_label_values(&[topic, outcome.as_str()])
                })
                .inc()
        });
    }

    /// One record dead-lettered; `reason` is the `EventError::kind`.
    pub fn dead_lettered(&self, reason: &str) {
        self.f.dead_letters.with_label_values(&[reason]).inc();
    }

    /// One event whose type the configured event catalogue does not list was processed.
    pub fn uncatalogued_event(&self, topic: &str) {
        self.uncatalogued.with(topic, |c| {
            c.get_or_init(|| self.f.uncatalogued.with_label_values(&[topic]))
                .inc()
        });
    }

    /// Counts decisions by kind/journey/reason, and journey entries, exits, goals and
    /// completions by journey and holdout group.
    pub fn decisions(&self, decisions: &[Decision]) {
        for d in decisions {
            let journey = d.journey_id.as_deref().unwrap_or("");
            self.journeys
                .with(journey, |j| self.decision(j, journey, d));
        }
    }

    fn decision(&self, j: &JourneyHandles, journey: &str, d: &Decision) {
        let kind = d.kind;
        let resolve = |reason: &str| {
            self.f
                .decisions
                .with_label_values(&[kind.as_str(), journey, reason])
        };
        match d.reason.as_ref() {
            None => j.decisions.get(kind as usize, || resolve("")).inc(),
            reason => {
                let reason = reason_label(reason);
                j.decisions_by_reason.with(reason, |kinds| {
                    kinds.get(kind as usize, || resolve(reason)).inc()
                })
            }
        }
        let Some(family) = lifecycle_index(kind) else {
            return;
        };
        let holdout = d.holdout == Some(true);
        j.lifecycle
            .get(family * 2 + usize::from(holdout), || {
                let vec = match family {
                    0 => &self.f.entries,
                    1 => &self.f.exits,
                    2 => &self.f.goals,
                    _ => &self.f.completions,
                };
                vec.with_label_values(&[journey, holdout_label(d.holdout)])
            })
            .inc();
    }

    /// Counts produced send commands by channel and journey.
    pub fn commands(&self, commands: &[SendCommand]) {
        for c in commands {
            let journey = c.journey_id.as_str();
            self.journeys.with(journey, |j| {
                j.commands.with(&c.channel, |counter| {
                    counter
                        .get_or_init(|| {
                            self.f
                                .commands
                                .with_label_values(&[c.channel.as_str(), journey])
                        })
                        .inc()
                })
            });
        }
    }

    /// Observes the delay from an event's timestamp (or the record's timestamp) to the send
    /// command it caused being produced. Negative delays (clock skew) count as zero.
    pub fn observe_event_to_command(&self, seconds: f64) {
        self.f.event_to_command.observe(seconds.max(0.0));
    }

    /// Sets the customer and pending-timer gauges of one partition.
    pub fn set_partition_state(&self, partition: i32, customers: usize, timers: usize) {
        let p = partition.to_string();
        self.f
            .customers
            .with_label_values(&[p.as_str()])
            .set(customers as i64);
        self.f
            .pending_timers
            .with_label_values(&[p.as_str()])
            .set(timers as i64);
    }

    /// Sets the in-flight instances of one journey on one partition.
    pub fn set_active_instances(&self, journey: &str, partition: i32, n: usize) {
        let p = partition.to_string();
        self.f
            .active_instances
            .with_label_values(&[journey, p.as_str()])
            .set(n as i64);
    }

    /// Observes how late a timer fired (wall clock minus due time).
    pub fn observe_timer_lateness(&self, seconds: f64) {
        self.f.timer_lateness.observe(seconds.max(0.0));
    }

    /// Sets the consumer lag of one input partition (high watermark minus position).
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        let p = partition.to_string();
        self.f
            .consumer_lag
            .with_label_values(&[topic, p.as_str()])
            .set(lag.max(0));
    }

    /// Removes every per-partition series of a revoked partition, so that another instance now
    /// owning it is the only one reporting it (sums over instances stay right).
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let p = partition.to_string();
        let f = &self.f;
        let _ = f.consumer_lag.remove_label_values(&[topic, p.as_str()]);
        let _ = f.customers.remove_label_values(&[p.as_str()]);
        let _ = f.pending_timers.remove_label_values(&[p.as_str()]);
        let _ = f.checkpoint_written.remove_label_values(&[p.as_str()]);
        let _ = f.checkpoint_bytes.remove_label_values(&[p.as_str()]);
        self.restore_ended(partition);
        // Active instances are labelled by journey too: remove every journey's series of that
        // partition. The journeys are found in the gathered families since the vec does not
        // list its children.
        let journeys: Vec<String> = f
            .active_instances
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "partition" && l.value() == p)
            })
            .filter_map(|m| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == "journey")
                    .map(|l| l.value().to_string())
            })
            .collect();
        for journey in journeys {
            let _ = f
                .active_instances
                .remove_label_values(&[journey.as_str(), p.as_str()]);
        }
    }

    /// A partition's restore started (Unix seconds).
    pub fn restore_started(&self, partition: i32, unix_seconds: i64) {
        let p = partition.to_string();
        self.f
            .restore_started
            .with_label_values(&[&p])
            .set(unix_seconds);
    }

    /// Progress of a partition's restore.
    pub fn restore_progress(&self, partition: i32, done: u64, target: u64) {
        let p = partition.to_string();
        self.f
            .restore_items
            .with_label_values(&[&p])
            .set(done as i64);
        self.f
            .restore_items_target
            .with_label_values(&[&p])
            .set(target as i64);
    }

    /// A partition's restore ended (done or revoked): its progress series go away.
    pub fn restore_ended(&self, partition: i32) {
        let p = partition.to_string();
        let _ = self.f.restore_started.remove_label_values(&[&p]);
        let _ = self.f.restore_items.remove_label_values(&[&p]);
        let _ = self.f.restore_items_target.remove_label_values(&[&p]);
    }

    /// Customers loaded from a checkpoint.
    pub fn checkpoint_customers_restored(&self, n: u64) {
        self.f.restore_checkpoint_customers.inc_by(n);
    }

    /// A restore fell back to the full changelog; `reason` is a fixed word.
    pub fn checkpoint_fallback(&self, reason: &str) {
        self.f
            .checkpoint_fallbacks
            .with_label_values(&[reason])
            .inc();
    }

    /// A checkpoint of `partition` was written.
    pub fn checkpoint_written(&self, partition: i32, unix_seconds: i64, bytes: u64, seconds: f64) {
        let p = partition.to_string();
        self.f
            .checkpoint_written
            .with_label_values(&[&p])
            .set(unix_seconds);
        self.f
            .checkpoint_bytes
            .with_label_values(&[&p])
            .set(bytes as i64);
        self.f.checkpoint_write_seconds.observe(seconds);
    }

    /// A checkpoint could not be written.
    pub fn checkpoint_write_failed(&self) {
        self.f.checkpoint_write_failures.inc();
    }

    /// An assignment change: `assigned`, `revoked` or `lost`.
    pub fn rebalance(&self, kind: &str) {
        self.f.rebalances.with_label_values(&[kind]).inc();
    }

    /// Observes one partition restore: its duration and the changelog records read.
    pub fn observe_restore(&self, partition: i32, seconds: f64, records: u64) {
        // The partition is not a label of the histogram: restores are rare and per-partition
        // histograms would multiply series; logs carry the partition.
        let _ = partition;
        self.f.restore_seconds.observe(seconds);
        self.f.restore_records.inc_by(records);
    }

    /// Sets the number of journeys in the active catalog.
    pub fn journeys_loaded(&self, n: usize) {
        self.f.journeys_loaded.set(n as i64);
    }

    /// Counts one reload attempt (`outcome` `success` or `failure`).
    pub fn reload(&self, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.f.reloads.with_label_values(&[outcome]).inc();
    }

    /// Sets `journeyd_ready` (the HTTP server refreshes it from the health state on each scrape).
    pub fn set_ready(&self, ready: bool) {
        self.f.ready.set(i64::from(ready));
    }

    /// The text exposition (format 0.0.4) of every series.
    pub fn encode_text(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics into memory cannot fail");
        String::from_utf8(buf).expect("the text exposition is UTF-8")
    }
}

#[cfg(test)]
mod tests;
