//! Prometheus metrics of the Kafka runtime: what an SRE watches.
//!
//! Every series lives in a registry owned by [`Metrics`] (not the process-wide default one), so
//! tests and embedded runs never share counters. Names follow the Prometheus conventions: the
//! `journeyd_` prefix, `_total` for counters, `_seconds` for durations in base units.
//!
//! Labels are kept low-cardinality on purpose: journey ids, channel names, cap names, topics and
//! partitions are all bounded by configuration, and the engine's decision kinds and reasons are a
//! closed set. Customer ids, event ids and anything a customer can write never become a label:
//! the free-text reason of `bad_timezone` is reported as `other` (see [`reason_label`]).
//!
//! Holdout counters (`journeyd_journey_{entries,exits,goals,completions}_total{holdout}`) let
//! lift be computed in PromQL, e.g. the conversion rate of the treated group
//! `goals{holdout="false"} / entries{holdout="false"}` against the control group's.

use journey_engine::{Decision, DecisionKind, Reason, SendCommand};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;

/// Buckets for short latencies (transaction commits, restore of small partitions): 1 ms to 10 s.
const FAST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for end-to-end and timer delays, which include the commit interval and may grow to
/// minutes under lag: 5 ms to 10 min.
const DELAY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Buckets for partition restores, which replay a changelog: 10 ms to 30 min.
const RESTORE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Every metric family the runtime exposes, with its label names, in registration order.
///
/// Dashboards and alert rules are checked against this list (`tests/ops_artifacts.rs`), so it is
/// the single place that says which series exist.
pub const METRIC_FAMILIES: &[(&str, &[&str])] = &[
    ("journeyd_build_info", &["version"]),
    ("journeyd_events_consumed_total", &["topic", "outcome"]),
    ("journeyd_dead_letters_total", &["reason"]),
    ("journeyd_uncatalogued_events_total", &["topic"]),
    ("journeyd_decisions_total", &["kind", "journey", "reason"]),
    ("journeyd_commands_total", &["channel", "journey"]),
    ("journeyd_journey_entries_total", &["journey", "holdout"]),
    ("journeyd_journey_exits_total", &["journey", "holdout"]),
    ("journeyd_journey_goals_total", &["journey", "holdout"]),
    (
        "journeyd_journey_completions_total",
        &["journey", "holdout"],
    ),
    ("journeyd_active_instances", &["journey", "partition"]),
    ("journeyd_customers", &["partition"]),
    ("journeyd_pending_timers", &["partition"]),
    ("journeyd_timer_lateness_seconds", &[]),
    ("journeyd_event_to_command_seconds", &[]),
    ("journeyd_transaction_commit_seconds", &[]),
    ("journeyd_transaction_aborts_total", &["reason"]),
    ("journeyd_consumer_lag", &["topic", "partition"]),
    ("journeyd_restore_seconds", &[]),
    ("journeyd_restore_records_total", &[]),
    ("journeyd_journeys_loaded", &[]),
    ("journeyd_reloads_total", &["outcome"]),
    ("journeyd_producer_recreated_total", &["reason"]),
    ("journeyd_kafka_sessions_restarted_total", &["reason"]),
    ("journeyd_ready", &[]),
    ("journeyd_partitions_assigned", &[]),
    ("journeyd_partitions_restoring", &[]),
    ("journeyd_restore_started_timestamp_seconds", &["partition"]),
    ("journeyd_restore_items", &["partition"]),
    ("journeyd_restore_items_target", &["partition"]),
    ("journeyd_restore_checkpoint_customers_total", &[]),
    ("journeyd_checkpoint_fallbacks_total", &["reason"]),
    (
        "journeyd_checkpoint_last_write_timestamp_seconds",
        &["partition"],
    ),
    ("journeyd_checkpoint_bytes", &["partition"]),
    ("journeyd_checkpoint_write_seconds", &[]),
    ("journeyd_checkpoint_write_failures_total", &[]),
    ("journeyd_rebalances_total", &["kind"]),
];

/// Histogram families: they expose `<name>_bucket`, `<name>_sum` and `<name>_count` series.
pub const HISTOGRAMS: &[&str] = &[
    "journeyd_timer_lateness_seconds",
    "journeyd_event_to_command_seconds",
    "journeyd_transaction_commit_seconds",
    "journeyd_restore_seconds",
    "journeyd_checkpoint_write_seconds",
];

/// The `_bucket`, `_sum` and `_count` series of the histograms in [`HISTOGRAMS`].
const HISTOGRAM_SERIES: &[&str] = &[
    "journeyd_timer_lateness_seconds_bucket",
    "journeyd_timer_lateness_seconds_sum",
    "journeyd_timer_lateness_seconds_count",
    "journeyd_event_to_command_seconds_bucket",
    "journeyd_event_to_command_seconds_sum",
    "journeyd_event_to_command_seconds_count",
    "journeyd_transaction_commit_seconds_bucket",
    "journeyd_transaction_commit_seconds_sum",
    "journeyd_transaction_commit_seconds_count",
    "journeyd_restore_seconds_bucket",
    "journeyd_restore_seconds_sum",
    "journeyd_restore_seconds_count",
    "journeyd_checkpoint_write_seconds_bucket",
    "journeyd_checkpoint_write_seconds_sum",
    "journeyd_checkpoint_write_seconds_count",
];

/// Every series name a query may use: the families plus the `_bucket`/`_sum`/`_count` series of
/// histograms.
pub fn metric_names() -> Vec<&'static str> {
    METRIC_FAMILIES
        .iter()
        .map(|(name, _)| *name)
        .chain(HISTOGRAM_SERIES.iter().copied())
        .collect()
}

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

/// The runtime's metrics. Cheap to share (`Arc`); every method takes `&self` and is safe to call
/// from any thread.
pub struct Metrics {
    /// The registry holding every journeyd series; `/metrics` encodes it.
    pub registry: Registry,
    events_consumed: IntCounterVec,
    dead_letters: IntCounterVec,
    uncatalogued: IntCounterVec,
    decisions: IntCounterVec,
    commands: IntCounterVec,
    entries: IntCounterVec,
    exits: IntCounterVec,
    goals: IntCounterVec,
    completions: IntCounterVec,
    active_instances: IntGaugeVec,
    customers: IntGaugeVec,
    pending_timers: IntGaugeVec,
    timer_lateness: Histogram,
    event_to_command: Histogram,
    commit: Histogram,
    aborts: IntCounterVec,
    consumer_lag: IntGaugeVec,
    restore_seconds: Histogram,
    restore_records: IntCounter,
    journeys_loaded: IntGauge,
    reloads: IntCounterVec,
    producer_recreated: IntCounterVec,
    sessions_restarted: IntCounterVec,
    ready: IntGauge,
    partitions_assigned: IntGauge,
    partitions_restoring: IntGauge,
    restore_started: IntGaugeVec,
    restore_items: IntGaugeVec,
    restore_items_target: IntGaugeVec,
    restore_checkpoint_customers: IntCounter,
    checkpoint_fallbacks: IntCounterVec,
    checkpoint_written: IntGaugeVec,
    checkpoint_bytes: IntGaugeVec,
    checkpoint_write_seconds: Histogram,
    checkpoint_write_failures: IntCounter,
    rebalances: IntCounterVec,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(
        registry,
        IntGauge::new(name, help).expect("valid gauge options"),
    )
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).expect("valid counter options"),
    )
}

/// Registers a collector; names are fixed constants, so a failure is a programming error caught
/// by the unit tests.
fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("journeyd metric names are unique and valid");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter options");
    register(registry, c)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge options");
    register(registry, g)
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid histogram options");
    register(registry, h)
}

impl Metrics {
    /// Creates the registry and registers every series, including `journeyd_build_info`.
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let r = &registry;
        let build_info = gauge_vec(
            r,
            "journeyd_build_info",
            "Always 1; the version label tells which journeyd build is running.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let m = Metrics {
            events_consumed: counter_vec(
                r,
                "journeyd_events_consumed_total",
                "Input records consumed, by topic and outcome (processed, dead_letter, duplicate).",
                &["topic", "outcome"],
            ),
            dead_letters: counter_vec(
                r,
                "journeyd_dead_letters_total",
                "Input records sent to the dead-letter topic, by reason.",
                &["reason"],
            ),
            uncatalogued: counter_vec(
                r,
                "journeyd_uncatalogued_events_total",
                "Events processed whose type is not in the configured event catalog, by topic.",
                &["topic"],
            ),
            decisions: counter_vec(
                r,
                "journeyd_decisions_total",
                "Decisions recorded, by kind, journey and reason (\"\" when none).",
                &["kind", "journey", "reason"],
            ),
            commands: counter_vec(
                r,
                "journeyd_commands_total",
                "Send commands produced, by channel and journey.",
                &["channel", "journey"],
            ),
            entries: counter_vec(
                r,
                "journeyd_journey_entries_total",
                "Customers entering a journey, by journey and holdout group.",
                &["journey", "holdout"],
            ),
            exits: counter_vec(
                r,
                "journeyd_journey_exits_total",
                "Customers exiting a journey early (exit_when), by journey and holdout group.",
                &["journey", "holdout"],
            ),
            goals: counter_vec(
                r,
                "journeyd_journey_goals_total",
                "Journey goals reached, by journey and holdout group.",
                &["journey", "holdout"],
            ),
            completions: counter_vec(
                r,
                "journeyd_journey_completions_total",
                "Journeys completed (end reached), by journey and holdout group.",
                &["journey", "holdout"],
            ),
            active_instances: gauge_vec(
                r,
                "journeyd_active_instances",
                "Journey instances in flight, by journey and input partition.",
                &["journey", "partition"],
            ),
            customers: gauge_vec(
                r,
                "journeyd_customers",
                "Customers with state held, by input partition.",
                &["partition"],
            ),
            pending_timers: gauge_vec(
                r,
                "journeyd_pending_timers",
                "Timers waiting to fire, by input partition.",
                &["partition"],
            ),
            timer_lateness: histogram(
                r,
                "journeyd_timer_lateness_seconds",
                "How long after its due time a timer fired.",
                DELAY_BUCKETS,
            ),
            event_to_command: histogram(
                r,
                "journeyd_event_to_command_seconds",
                "From an event's timestamp to the send command it caused being produced.",
                DELAY_BUCKETS,
            ),
            commit: histogram(
                r,
                "journeyd_transaction_commit_seconds",
                "Duration of a Kafka transaction commit.",
                FAST_BUCKETS,
            ),
            aborts: counter_vec(
                r,
                "journeyd_transaction_aborts_total",
                "Kafka transactions aborted, by reason.",
                &["reason"],
            ),
            consumer_lag: gauge_vec(
                r,
                "journeyd_consumer_lag",
                "Records between the consumer position and the end of the partition.",
                &["topic", "partition"],
            ),
            restore_seconds: histogram(
                r,
                "journeyd_restore_seconds",
                "Duration of a partition restore from the state changelog.",
                RESTORE_BUCKETS,
            ),
            restore_records: register(
                r,
                IntCounter::new(
                    "journeyd_restore_records_total",
                    "Changelog records read while restoring partitions.",
                )
                .expect("valid counter options"),
            ),
            journeys_loaded: register(
                r,
                IntGauge::new(
                    "journeyd_journeys_loaded",
                    "Journeys in the active catalog.",
                )
                .expect("valid gauge options"),
            ),
            reloads: counter_vec(
                r,
                "journeyd_reloads_total",
                "Journey reloads, by outcome (success, failure).",
                &["outcome"],
            ),
            producer_recreated: counter_vec(
                r,
                "journeyd_producer_recreated_total",
                "Transactional producers rebuilt after a fatal error, by reason.",
                &["reason"],
            ),
            sessions_restarted: counter_vec(
                r,
                "journeyd_kafka_sessions_restarted_total",
                "Kafka sessions (group consumer and transactional producer) torn down and built again after a failure, by reason.",
                &["reason"],
            ),
            ready: register(
                r,
                IntGauge::new(
                    "journeyd_ready",
                    "1 when the instance is ready (readyz answers 200), else 0.",
                )
                .expect("valid gauge options"),
            ),
            partitions_assigned: gauge(
                r,
                "journeyd_partitions_assigned",
                "Input partitions assigned to this instance (restoring or processing).",
            ),
            partitions_restoring: gauge(
                r,
                "journeyd_partitions_restoring",
                "Assigned partitions still restoring their state (paused, not processing).",
            ),
            restore_started: gauge_vec(
                r,
                "journeyd_restore_started_timestamp_seconds",
                "When the restore of a partition still restoring started (Unix time).",
                &["partition"],
            ),
            restore_items: gauge_vec(
                r,
                "journeyd_restore_items",
                "Items applied so far by a restore in progress: checkpoint customers plus changelog records.",
                &["partition"],
            ),
            restore_items_target: gauge_vec(
                r,
                "journeyd_restore_items_target",
                "Items a restore in progress has to apply (checkpoint customers plus changelog records to replay, an upper bound).",
                &["partition"],
            ),
            restore_checkpoint_customers: counter(
                r,
                "journeyd_restore_checkpoint_customers_total",
                "Customers loaded from local checkpoints while restoring partitions.",
            ),
            checkpoint_fallbacks: counter_vec(
                r,
                "journeyd_checkpoint_fallbacks_total",
                "Restores that could not use a local checkpoint and replayed the whole changelog, by reason.",
                &["reason"],
            ),
            checkpoint_written: gauge_vec(
                r,
                "journeyd_checkpoint_last_write_timestamp_seconds",
                "When the partition's local checkpoint was last written (Unix time); age = time() - this.",
                &["partition"],
            ),
            checkpoint_bytes: gauge_vec(
                r,
                "journeyd_checkpoint_bytes",
                "Size of the partition's last local checkpoint.",
                &["partition"],
            ),
            checkpoint_write_seconds: histogram(
                r,
                "journeyd_checkpoint_write_seconds",
                "Duration of writing one partition's local checkpoint (export, write, fsync).",
                FAST_BUCKETS,
            ),
            checkpoint_write_failures: counter(
                r,
                "journeyd_checkpoint_write_failures_total",
                "Local checkpoints that could not be written (the previous one is kept).",
            ),
            rebalances: counter_vec(
                r,
                "journeyd_rebalances_total",
                "Assignment changes seen by this instance, by kind (assigned, revoked, lost).",
                &["kind"],
            ),
            registry,
        };
        Arc::new(m)
    }

    /// One input record consumed; `outcome` is `processed`, `dead_letter` or `duplicate`.
    pub fn event_consumed(&self, topic: &str, outcome: &str) {
        self.events_consumed
            .with_label_values(&[topic, outcome])
            .inc();
    }

    /// One record dead-lettered; `reason` is the `EventError::kind`.
    pub fn dead_lettered(&self, reason: &str) {
        self.dead_letters.with_label_values(&[reason]).inc();
    }

    /// One event whose type the configured event catalogue does not list was processed.
    pub fn uncatalogued_event(&self, topic: &str) {
        self.uncatalogued.with_label_values(&[topic]).inc();
    }

    /// Counts decisions by kind/journey/reason, and journey entries, exits, goals and
    /// completions by journey and holdout group.
    pub fn decisions(&self, decisions: &[Decision]) {
        for d in decisions {
            let journey = d.journey_id.as_deref().unwrap_or("");
            let reason = reason_label(d.reason.as_ref());
            self.decisions
                .with_label_values(&[d.kind.as_str(), journey, reason])
                .inc();
            let lifecycle = match d.kind {
                DecisionKind::Entered => &self.entries,
                DecisionKind::Exited => &self.exits,
                DecisionKind::Goal => &self.goals,
                DecisionKind::Completed => &self.completions,
                DecisionKind::EntrySuppressed
                | DecisionKind::Sent
                | DecisionKind::SkippedChannel
                | DecisionKind::Deferred
                | DecisionKind::NoChannel
                | DecisionKind::Holdout
                | DecisionKind::Split
                | DecisionKind::DuplicateEvent
                | DecisionKind::BadTimezone => continue,
            };
            lifecycle
                .with_label_values(&[journey, holdout_label(d.holdout)])
                .inc();
        }
    }

    /// Counts produced send commands by channel and journey.
    pub fn commands(&self, commands: &[SendCommand]) {
        for c in commands {
            self.commands
                .with_label_values(&[c.channel.as_str(), c.journey_id.as_str()])
                .inc();
        }
    }

    /// Observes the delay from an event's timestamp (or the record's timestamp) to the send
    /// command it caused being produced. Negative delays (clock skew) count as zero.
    pub fn observe_event_to_command(&self, seconds: f64) {
        self.event_to_command.observe(seconds.max(0.0));
    }

    /// Sets the customer and pending-timer gauges of one partition.
    pub fn set_partition_state(&self, partition: i32, customers: usize, timers: usize) {
        let p = partition.to_string();
        self.customers
            .with_label_values(&[p.as_str()])
            .set(customers as i64);
        self.pending_timers
            .with_label_values(&[p.as_str()])
            .set(timers as i64);
    }

    /// Sets the in-flight instances of one journey on one partition.
    pub fn set_active_instances(&self, journey: &str, partition: i32, n: usize) {
        let p = partition.to_string();
        self.active_instances
            .with_label_values(&[journey, p.as_str()])
            .set(n as i64);
    }

    /// Observes how late a timer fired (wall clock minus due time).
    pub fn observe_timer_lateness(&self, seconds: f64) {
        self.timer_lateness.observe(seconds.max(0.0));
    }

    /// Observes the duration of one transaction commit.
    pub fn observe_commit(&self, seconds: f64) {
        self.commit.observe(seconds);
    }

    /// Counts an aborted transaction; `reason` is a short fixed word (e.g. `produce_error`,
    /// `commit_error`, `revoked`).
    pub fn transaction_aborted(&self, reason: &str) {
        self.aborts.with_label_values(&[reason]).inc();
    }

    /// Sets the consumer lag of one input partition (high watermark minus position).
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        let p = partition.to_string();
        self.consumer_lag
            .with_label_values(&[topic, p.as_str()])
            .set(lag.max(0));
    }

    /// Removes every per-partition series of a revoked partition, so that another instance now
    /// owning it is the only one reporting it (sums over instances stay right).
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let p = partition.to_string();
        let _ = self.consumer_lag.remove_label_values(&[topic, p.as_str()]);
        let _ = self.customers.remove_label_values(&[p.as_str()]);
        let _ = self.pending_timers.remove_label_values(&[p.as_str()]);
        let _ = self.checkpoint_written.remove_label_values(&[p.as_str()]);
        let _ = self.checkpoint_bytes.remove_label_values(&[p.as_str()]);
        self.restore_ended(partition);
        // Active instances are labelled by journey too: remove every journey's series of that
        // partition. The journeys are found in the gathered families since the vec does not
        // list its children.
        let journeys: Vec<String> = self
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
            let _ = self
                .active_instances
                .remove_label_values(&[journey.as_str(), p.as_str()]);
        }
    }

    /// Sets the numbers of assigned and restoring partitions.
    pub fn set_partitions(&self, assigned: usize, restoring: usize) {
        self.partitions_assigned.set(assigned as i64);
        self.partitions_restoring.set(restoring as i64);
    }

    /// A partition's restore started (Unix seconds) with `target` items to apply.
    pub fn restore_started(&self, partition: i32, unix_seconds: i64) {
        let p = partition.to_string();
        self.restore_started
            .with_label_values(&[&p])
            .set(unix_seconds);
    }

    /// Progress of a partition's restore.
    pub fn restore_progress(&self, partition: i32, done: u64, target: u64) {
        let p = partition.to_string();
        self.restore_items.with_label_values(&[&p]).set(done as i64);
        self.restore_items_target
            .with_label_values(&[&p])
            .set(target as i64);
    }

    /// A partition's restore ended (done or revoked): its progress series go away.
    pub fn restore_ended(&self, partition: i32) {
        let p = partition.to_string();
        let _ = self.restore_started.remove_label_values(&[&p]);
        let _ = self.restore_items.remove_label_values(&[&p]);
        let _ = self.restore_items_target.remove_label_values(&[&p]);
    }

    /// Customers loaded from a checkpoint.
    pub fn checkpoint_customers_restored(&self, n: u64) {
        self.restore_checkpoint_customers.inc_by(n);
    }

    /// A restore fell back to the full changelog; `reason` is a fixed word.
    pub fn checkpoint_fallback(&self, reason: &str) {
        self.checkpoint_fallbacks.with_label_values(&[reason]).inc();
    }

    /// A checkpoint of `partition` was written.
    pub fn checkpoint_written(&self, partition: i32, unix_seconds: i64, bytes: u64, seconds: f64) {
        let p = partition.to_string();
        self.checkpoint_written
            .with_label_values(&[&p])
            .set(unix_seconds);
        self.checkpoint_bytes
            .with_label_values(&[&p])
            .set(bytes as i64);
        self.checkpoint_write_seconds.observe(seconds);
    }

    /// A checkpoint could not be written.
    pub fn checkpoint_write_failed(&self) {
        self.checkpoint_write_failures.inc();
    }

    /// An assignment change: `assigned`, `revoked` or `lost`.
    pub fn rebalance(&self, kind: &str) {
        self.rebalances.with_label_values(&[kind]).inc();
    }

    /// Observes one partition restore: its duration and the changelog records read.
    pub fn observe_restore(&self, partition: i32, seconds: f64, records: u64) {
        // The partition is not a label of the histogram: restores are rare and per-partition
        // histograms would multiply series; logs carry the partition.
        let _ = partition;
        self.restore_seconds.observe(seconds);
        self.restore_records.inc_by(records);
    }

    /// Sets the number of journeys in the active catalog.
    pub fn journeys_loaded(&self, n: usize) {
        self.journeys_loaded.set(n as i64);
    }

    /// Counts one reload attempt (`outcome` `success` or `failure`).
    pub fn reload(&self, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.reloads.with_label_values(&[outcome]).inc();
    }

    /// Counts a rebuilt transactional producer; `reason` is a short fixed word (e.g. `fenced`,
    /// `fatal`).
    pub fn producer_recreated(&self, reason: &str) {
        self.producer_recreated.with_label_values(&[reason]).inc();
    }

    /// A Kafka session failed and is built again (`reason`: what failed, e.g.
    /// `consumer_fatal`).
    pub fn session_restarted(&self, reason: &str) {
        self.sessions_restarted.with_label_values(&[reason]).inc();
    }

    /// Sets `journeyd_ready` (the HTTP server refreshes it from the health state on each scrape).
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
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
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn decision(kind: &str, journey: &str, reason: Option<&str>) -> Decision {
        Decision {
            at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
            customer_id: "c-42".into(),
            journey_id: Some(journey.into()),
            journey_version: Some(1),
            step_id: Some("s".into()),
            kind: kind.parse().expect("a decision kind"),
            channel: None,
            command_id: None,
            reason: reason.map(Reason::from_text),
            event_id: Some("e-1".into()),
            holdout: None,
            until: None,
            branch: None,
        }
    }

    fn command(channel: &str, journey: &str) -> SendCommand {
        SendCommand {
            command_id: "abc".into(),
            customer_id: "c-42".into(),
            channel: channel.into(),
            topic: format!("actions.{channel}"),
            address: "ada@example.com".into(),
            template: "t".into(),
            data: serde_json::Map::new(),
            journey_id: journey.into(),
            journey_version: 1,
            step_id: "s".into(),
            trigger_event_id: "e-1".into(),
            issued_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        }
    }

    /// The exposition line of one series, e.g. `name{a="b"} 3`, or None when absent.
    fn series_lines(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_capped_send_is_counted_with_its_cap_name() {
        let m = Metrics::new();
        m.decisions(&[decision(
            "skipped_channel",
            "x",
            Some("frequency_cap:email_weekly"),
        )]);
        let text = m.encode_text();
        assert!(
            text.contains(
                "journeyd_decisions_total{journey=\"x\",kind=\"skipped_channel\",reason=\"frequency_cap:email_weekly\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn decisions_without_reason_have_an_empty_reason_and_unknown_reasons_are_other() {
        let m = Metrics::new();
        m.decisions(&[
            decision("sent", "cart", None),
            decision("sent", "cart", None),
            decision("bad_timezone", "", Some("Mars/Olympus_Mons c-42")),
        ]);
        let text = m.encode_text();
        assert_eq!(
            series_lines(&text, "journeyd_decisions_total{"),
            vec![
                "journeyd_decisions_total{journey=\"\",kind=\"bad_timezone\",reason=\"other\"} 1",
                "journeyd_decisions_total{journey=\"cart\",kind=\"sent\",reason=\"\"} 2",
            ]
        );
        assert!(!text.contains("c-42"), "customer ids never appear: {text}");
    }

    #[test]
    fn reason_labels_keep_engine_reasons_and_hide_free_text() {
        for known in [
            "unless",
            "reentry",
            "status",
            "unreachable",
            "no_consent",
            "quiet_hours",
            "no_channel",
            "frequency_cap:sms_daily",
        ] {
            assert_eq!(reason_label(Some(&Reason::from_text(known))), known);
        }
        assert_eq!(reason_label(None), "");
        let free = |s: &str| Reason::BadTimezone(s.into());
        assert_eq!(reason_label(Some(&free("Europe/Londn"))), "other");
        assert_eq!(reason_label(Some(&free("ada@example.com"))), "other");
    }

    #[test]
    fn lifecycle_decisions_feed_the_holdout_counters() {
        let m = Metrics::new();
        let mut treated = decision("entered", "cart", None);
        treated.holdout = Some(false);
        let mut control = decision("entered", "cart", None);
        control.holdout = Some(true);
        let mut control_goal = decision("goal", "cart", None);
        control_goal.holdout = Some(true);
        // The engine may leave the flag out on exits and completions: counted as "false".
        let exited = decision("exited", "cart", None);
        let completed = decision("completed", "cart", None);
        m.decisions(&[
            treated.clone(),
            treated,
            control,
            control_goal,
            exited,
            completed,
        ]);
        let text = m.encode_text();
        assert_eq!(
            series_lines(&text, "journeyd_journey_entries_total{"),
            vec![
                "journeyd_journey_entries_total{holdout=\"false\",journey=\"cart\"} 2",
                "journeyd_journey_entries_total{holdout=\"true\",journey=\"cart\"} 1",
            ]
        );
        assert_eq!(
            series_lines(&text, "journeyd_journey_goals_total{"),
            vec!["journeyd_journey_goals_total{holdout=\"true\",journey=\"cart\"} 1"]
        );
        assert_eq!(
            series_lines(&text, "journeyd_journey_exits_total{"),
            vec!["journeyd_journey_exits_total{holdout=\"false\",journey=\"cart\"} 1"]
        );
        assert_eq!(
            series_lines(&text, "journeyd_journey_completions_total{"),
            vec!["journeyd_journey_completions_total{holdout=\"false\",journey=\"cart\"} 1"]
        );
    }

    #[test]
    fn commands_are_counted_by_channel_and_journey() {
        let m = Metrics::new();
        m.commands(&[
            command("email", "cart"),
            command("sms", "cart"),
            command("email", "cart"),
            command("email", "welcome"),
        ]);
        let text = m.encode_text();
        assert_eq!(
            series_lines(&text, "journeyd_commands_total{"),
            vec![
                "journeyd_commands_total{channel=\"email\",journey=\"cart\"} 2",
                "journeyd_commands_total{channel=\"email\",journey=\"welcome\"} 1",
                "journeyd_commands_total{channel=\"sms\",journey=\"cart\"} 1",
            ]
        );
        assert!(!text.contains("ada@example.com"));
    }

    #[test]
    fn events_dead_letters_reloads_and_producers_are_counted() {
        let m = Metrics::new();
        m.event_consumed("events", "processed");
        m.event_consumed("events", "processed");
        m.event_consumed("events", "dead_letter");
        m.dead_lettered("not_json");
        m.reload(true);
        m.reload(false);
        m.reload(false);
        m.producer_recreated("fenced");
        m.transaction_aborted("produce_error");
        m.journeys_loaded(4);
        let text = m.encode_text();
        for line in [
            "journeyd_events_consumed_total{outcome=\"processed\",topic=\"events\"} 2",
            "journeyd_events_consumed_total{outcome=\"dead_letter\",topic=\"events\"} 1",
            "journeyd_dead_letters_total{reason=\"not_json\"} 1",
            "journeyd_reloads_total{outcome=\"success\"} 1",
            "journeyd_reloads_total{outcome=\"failure\"} 2",
            "journeyd_producer_recreated_total{reason=\"fenced\"} 1",
            "journeyd_transaction_aborts_total{reason=\"produce_error\"} 1",
            "journeyd_journeys_loaded 4",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line}:\n{text}"
            );
        }
    }

    #[test]
    fn build_info_is_one_for_this_version() {
        let text = Metrics::new().encode_text();
        let expected = format!(
            "journeyd_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&expected), "{text}");
    }

    #[test]
    fn histograms_record_observations() {
        let m = Metrics::new();
        m.observe_commit(0.003);
        m.observe_commit(0.2);
        m.observe_timer_lateness(-1.0);
        m.observe_event_to_command(1.5);
        m.observe_restore(3, 2.0, 120);
        m.observe_restore(4, 1.0, 30);
        let text = m.encode_text();
        for line in [
            "journeyd_transaction_commit_seconds_bucket{le=\"0.005\"} 1",
            "journeyd_transaction_commit_seconds_bucket{le=\"0.25\"} 2",
            "journeyd_transaction_commit_seconds_count 2",
            "journeyd_timer_lateness_seconds_bucket{le=\"0.005\"} 1",
            "journeyd_timer_lateness_seconds_sum 0",
            "journeyd_event_to_command_seconds_bucket{le=\"1\"} 0",
            "journeyd_event_to_command_seconds_bucket{le=\"2.5\"} 1",
            "journeyd_restore_seconds_count 2",
            "journeyd_restore_seconds_sum 3",
            "journeyd_restore_records_total 150",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line}:\n{text}"
            );
        }
    }

    #[test]
    fn forget_partition_removes_only_that_partitions_series() {
        let m = Metrics::new();
        m.set_partition_state(0, 10, 3);
        m.set_partition_state(1, 20, 5);
        m.set_active_instances("cart", 0, 4);
        m.set_active_instances("welcome", 0, 2);
        m.set_active_instances("cart", 1, 7);
        m.set_consumer_lag("events", 0, 12);
        m.set_consumer_lag("events", 1, 0);
        m.forget_partition("events", 0);
        let text = m.encode_text();
        assert_eq!(
            series_lines(&text, "journeyd_active_instances{"),
            vec!["journeyd_active_instances{journey=\"cart\",partition=\"1\"} 7"]
        );
        assert_eq!(
            series_lines(&text, "journeyd_customers{"),
            vec!["journeyd_customers{partition=\"1\"} 20"]
        );
        assert_eq!(
            series_lines(&text, "journeyd_pending_timers{"),
            vec!["journeyd_pending_timers{partition=\"1\"} 5"]
        );
        assert_eq!(
            series_lines(&text, "journeyd_consumer_lag{"),
            vec!["journeyd_consumer_lag{partition=\"1\",topic=\"events\"} 0"]
        );
    }

    #[test]
    fn every_listed_family_is_registered_with_its_labels() {
        let m = Metrics::new();
        // Touch every labelled vec once so that gather() returns it.
        m.event_consumed("events", "processed");
        m.dead_lettered("not_json");
        m.uncatalogued_event("events");
        m.decisions(&[
            decision("entered", "j", None),
            decision("exited", "j", None),
            decision("goal", "j", None),
            decision("completed", "j", None),
        ]);
        m.commands(&[command("email", "j")]);
        m.set_partition_state(0, 1, 1);
        m.set_active_instances("j", 0, 1);
        m.transaction_aborted("x");
        m.set_consumer_lag("events", 0, 1);
        m.reload(true);
        m.producer_recreated("fenced");
        m.session_restarted("consumer_fatal");
        m.restore_started(0, 1);
        m.restore_progress(0, 1, 2);
        m.checkpoint_fallback("missing");
        m.checkpoint_written(0, 1, 100, 0.01);
        m.rebalance("assigned");
        let families = m.registry.gather();
        let mut gathered: Vec<(String, Vec<String>)> = families
            .iter()
            .map(|f| {
                let labels = f.get_metric()[0]
                    .get_label()
                    .iter()
                    .map(|l| l.name().to_string())
                    .collect();
                (f.name().to_string(), labels)
            })
            .collect();
        gathered.sort();
        let mut expected: Vec<(String, Vec<String>)> = METRIC_FAMILIES
            .iter()
            .map(|(name, labels)| {
                let mut labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
                labels.sort();
                (name.to_string(), labels)
            })
            .collect();
        expected.sort();
        assert_eq!(gathered, expected);
    }

    #[test]
    fn histogram_series_match_the_histograms() {
        for h in HISTOGRAMS {
            for suffix in ["_bucket", "_sum", "_count"] {
                assert!(HISTOGRAM_SERIES.contains(&format!("{h}{suffix}").as_str()));
            }
        }
        assert_eq!(HISTOGRAM_SERIES.len(), HISTOGRAMS.len() * 3);
    }

    #[test]
    fn metric_names_include_histogram_series() {
        let names = metric_names();
        assert!(names.contains(&"journeyd_transaction_commit_seconds_bucket"));
        assert!(names.contains(&"journeyd_restore_seconds_count"));
        assert!(names.contains(&"journeyd_decisions_total"));
        assert!(!names.contains(&"journeyd_decisions_total_bucket"));
    }
}
