//! The metric families, declared once: each row of the [`families!`] table gives a family's
//! field, Prometheus type (counter, gauge or histogram with its buckets; `Vec` when it has
//! labels), name, labels and help. The table generates the [`Families`] struct with one field
//! per family, its registration, and [`METRIC_FAMILIES`], the list that the dashboard and alert
//! rules are checked against (`tests/ops_artifacts.rs`).
//!
//! A family is added by adding a row; CONTRIBUTING.md ("Adding a metric") lists what else a new
//! metric touches.

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

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

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Exposes `<name>_bucket`, `<name>_sum` and `<name>_count` series.
    Histogram,
}

/// A collector type a family row can name: how it is built from the row.
pub trait Family: Collector + Clone + Sized + 'static {
    /// Its Prometheus type.
    const KIND: Kind;
    /// Builds it; `buckets` is empty for counters and gauges. The names are constants of the
    /// table, so an invalid one is a programming error caught by the unit tests.
    fn build(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Self;
}

const VALID: &str = "the families table holds valid names, labels and buckets";

macro_rules! plain_family {
    ($ty:ty, $kind:expr) => {
        impl Family for $ty {
            const KIND: Kind = $kind;
            fn build(name: &str, help: &str, labels: &[&str], _: &[f64]) -> Self {
                assert!(labels.is_empty(), "{name}: a family with labels is a Vec");
                <$ty>::with_opts(Opts::new(name, help)).expect(VALID)
            }
        }
    };
}

macro_rules! vec_family {
    ($ty:ty, $kind:expr) => {
        impl Family for $ty {
            const KIND: Kind = $kind;
            fn build(name: &str, help: &str, labels: &[&str], _: &[f64]) -> Self {
                assert!(
                    !labels.is_empty(),
                    "{name}: a family without labels is no Vec"
                );
                <$ty>::new(Opts::new(name, help), labels).expect(VALID)
            }
        }
    };
}

plain_family!(IntCounter, Kind::Counter);
plain_family!(IntGauge, Kind::Gauge);
vec_family!(IntCounterVec, Kind::Counter);
vec_family!(IntGaugeVec, Kind::Gauge);

impl Family for Histogram {
    const KIND: Kind = Kind::Histogram;
    fn build(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Self {
        assert!(labels.is_empty(), "{name}: a family with labels is a Vec");
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())).expect(VALID)
    }
}

impl Family for HistogramVec {
    const KIND: Kind = Kind::Histogram;
    fn build(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Self {
        assert!(
            !labels.is_empty(),
            "{name}: a family without labels is no Vec"
        );
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            labels,
        )
        .expect(VALID)
    }
}

/// Builds and registers one family.
fn register<F: Family>(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> F {
    let family = F::build(name, help, labels, buckets);
    registry
        .register(Box::new(family.clone()))
        .expect("journeyd metric names are unique and valid");
    family
}

/// The table syntax, one row per family:
///
/// ```text
/// field: Type(BUCKETS)? = "name" ["label", ...] "help";
/// ```
macro_rules! families {
    (@buckets) => { &[] };
    (@buckets $buckets:expr) => { $buckets };
    ($(
        $field:ident : $ty:ident $(($buckets:expr))? = $name:literal [$($label:literal),*] $help:literal;
    )*) => {
        /// Every metric family the runtime exposes, with its label names, in registration order.
        ///
        /// Dashboards and alert rules are checked against this list (`tests/ops_artifacts.rs`),
        /// so it is the single place that says which series exist.
        pub const METRIC_FAMILIES: &[(&str, &[&str])] = &[$(($name, &[$($label),*])),*];

        /// The Prometheus type of each family of [`METRIC_FAMILIES`], in the same order.
        pub(crate) const KINDS: &[Kind] = &[$(<$ty as Family>::KIND),*];

        /// The `_bucket`, `_sum` and `_count` series each family would have as a histogram, in
        /// the order of [`METRIC_FAMILIES`] (only those of histograms exist).
        const HISTOGRAM_SERIES: &[[&str; 3]] = &[$([
            concat!($name, "_bucket"),
            concat!($name, "_sum"),
            concat!($name, "_count"),
        ]),*];

        /// One registered collector per family.
        pub(crate) struct Families {
            $(pub(crate) $field: $ty,)*
        }

        impl Families {
            /// Registers every family in `registry`.
            pub(crate) fn register(registry: &Registry) -> Families {
                Families {
                    $($field: register::<$ty>(
                        registry,
                        $name,
                        $help,
                        &[$($label),*],
                        families!(@buckets $($buckets)?),
                    ),)*
                }
            }
        }
    };
}

families! {
    build_info: IntGaugeVec = "journeyd_build_info" ["version"]
        "Always 1; the version label tells which journeyd build is running.";
    events_consumed: IntCounterVec = "journeyd_events_consumed_total" ["topic", "outcome"]
        "Input records consumed, by topic and outcome (processed, dead_letter, duplicate).";
    dead_letters: IntCounterVec = "journeyd_dead_letters_total" ["reason"]
        "Input records sent to the dead-letter topic, by reason.";
    uncatalogued: IntCounterVec = "journeyd_uncatalogued_events_total" ["topic"]
        "Events processed whose type is not in the configured event catalog, by topic.";
    decisions: IntCounterVec = "journeyd_decisions_total" ["kind", "journey", "reason"]
        "Decisions recorded, by kind, journey and reason (\"\" when none).";
    commands: IntCounterVec = "journeyd_commands_total" ["channel", "journey"]
        "Send commands produced, by channel and journey.";
    entries: IntCounterVec = "journeyd_journey_entries_total" ["journey", "holdout"]
        "Customers entering a journey, by journey and holdout group.";
    exits: IntCounterVec = "journeyd_journey_exits_total" ["journey", "holdout"]
        "Customers exiting a journey early (exit_when), by journey and holdout group.";
    goals: IntCounterVec = "journeyd_journey_goals_total" ["journey", "holdout"]
        "Journey goals reached, by journey and holdout group.";
    completions: IntCounterVec = "journeyd_journey_completions_total" ["journey", "holdout"]
        "Journeys completed (end reached), by journey and holdout group.";
    active_instances: IntGaugeVec = "journeyd_active_instances" ["journey", "partition"]
        "Journey instances in flight, by journey and input partition.";
    customers: IntGaugeVec = "journeyd_customers" ["partition"]
        "Customers with state held, by input partition.";
    pending_timers: IntGaugeVec = "journeyd_pending_timers" ["partition"]
        "Timers waiting to fire, by input partition.";
    timer_lateness: Histogram(DELAY_BUCKETS) = "journeyd_timer_lateness_seconds" []
        "How long after its due time a timer fired.";
    event_to_command: Histogram(DELAY_BUCKETS) = "journeyd_event_to_command_seconds" []
        "From an event's timestamp to the send command it caused being produced.";
    commit: HistogramVec(FAST_BUCKETS) = "journeyd_transaction_commit_seconds" ["worker"]
        "Duration of a Kafka transaction commit, by stream thread.";
    aborts: IntCounterVec = "journeyd_transaction_aborts_total" ["reason", "worker"]
        "Kafka transactions aborted, by reason and stream thread.";
    consumer_lag: IntGaugeVec = "journeyd_consumer_lag" ["topic", "partition"]
        "Records between the consumer position and the end of the partition.";
    restore_seconds: Histogram(RESTORE_BUCKETS) = "journeyd_restore_seconds" []
        "Duration of a partition restore from the state changelog.";
    restore_records: IntCounter = "journeyd_restore_records_total" []
        "Changelog records read while restoring partitions.";
    journeys_loaded: IntGauge = "journeyd_journeys_loaded" []
        "Journeys in the active catalog.";
    reloads: IntCounterVec = "journeyd_reloads_total" ["outcome"]
        "Journey reloads, by outcome (success, failure).";
    producer_recreated: IntCounterVec = "journeyd_producer_recreated_total" ["reason", "worker"]
        "Transactional producers rebuilt after a fatal error, by reason and stream thread.";
    sessions_restarted: IntCounterVec = "journeyd_kafka_sessions_restarted_total" ["reason", "worker"]
        "Kafka sessions (group consumer and transactional producer) torn down and built again after a failure, by reason and stream thread.";
    ready: IntGauge = "journeyd_ready" []
        "1 when the instance is ready (readyz answers 200), else 0.";
    partitions_assigned: IntGaugeVec = "journeyd_partitions_assigned" ["worker"]
        "Input partitions assigned to this instance (restoring or processing), by stream thread.";
    partitions_restoring: IntGaugeVec = "journeyd_partitions_restoring" ["worker"]
        "Assigned partitions still restoring their state (paused, not processing), by stream thread.";
    restore_started: IntGaugeVec = "journeyd_restore_started_timestamp_seconds" ["partition"]
        "When the restore of a partition still restoring started (Unix time).";
    restore_items: IntGaugeVec = "journeyd_restore_items" ["partition"]
        "Items applied so far by a restore in progress: checkpoint customers plus changelog records.";
    restore_items_target: IntGaugeVec = "journeyd_restore_items_target" ["partition"]
        "Items a restore in progress has to apply (checkpoint customers plus changelog records to replay, an upper bound).";
    restore_checkpoint_customers: IntCounter = "journeyd_restore_checkpoint_customers_total" []
        "Customers loaded from local checkpoints while restoring partitions.";
    checkpoint_fallbacks: IntCounterVec = "journeyd_checkpoint_fallbacks_total" ["reason"]
        "Restores that could not use a local checkpoint and replayed the whole changelog, by reason.";
    checkpoint_written: IntGaugeVec = "journeyd_checkpoint_last_write_timestamp_seconds" ["partition"]
        "When the partition's local checkpoint was last written (Unix time); age = time() - this.";
    checkpoint_bytes: IntGaugeVec = "journeyd_checkpoint_bytes" ["partition"]
        "Size of the partition's last local checkpoint.";
    checkpoint_write_seconds: Histogram(FAST_BUCKETS) = "journeyd_checkpoint_write_seconds" []
        "Duration of writing one partition's local checkpoint (export, write, fsync).";
    checkpoint_write_failures: IntCounter = "journeyd_checkpoint_write_failures_total" []
        "Local checkpoints that could not be written (the previous one is kept).";
    rebalances: IntCounterVec = "journeyd_rebalances_total" ["kind"]
        "Assignment changes seen by this instance, by kind (assigned, revoked, lost).";
}

/// The histogram families of [`METRIC_FAMILIES`].
pub fn histograms() -> impl Iterator<Item = &'static str> {
    METRIC_FAMILIES
        .iter()
        .zip(KINDS)
        .filter(|(_, kind)| **kind == Kind::Histogram)
        .map(|((name, _), _)| *name)
}

/// Every series name a query may use: the families plus the `_bucket`/`_sum`/`_count` series of
/// histograms.
pub fn metric_names() -> Vec<&'static str> {
    let histogram_series = HISTOGRAM_SERIES
        .iter()
        .zip(KINDS)
        .filter(|(_, kind)| **kind == Kind::Histogram)
        .flat_map(|(series, _)| series.iter().copied());
    METRIC_FAMILIES
        .iter()
        .map(|(name, _)| *name)
        .chain(histogram_series)
        .collect()
}
