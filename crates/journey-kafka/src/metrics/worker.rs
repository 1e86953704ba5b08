//! The metrics of one stream thread. A stream thread owns a consumer, a transactional producer
//! and a set of partitions; what it sets or observes on its own (transaction commits and aborts,
//! producer and session rebuilds, the numbers of its assigned and restoring partitions) carries
//! its `worker` label, so that the threads of one instance add up instead of overwriting each
//! other. Everything else is reached through [`Deref`] to the instance's [`Metrics`].

use super::handles::{ByName, Slots};
use super::Metrics;
use crate::recovery::RebuildReason;
use crate::txn::AbortReason;
use prometheus::{Histogram, IntCounter, IntGauge};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// Labels of `journeyd_transaction_aborts_total`: every [`AbortReason`], then `fatal`.
const ABORT_LABELS: usize = 10;
const FATAL: usize = ABORT_LABELS - 1;

fn abort_index(reason: AbortReason) -> usize {
    match reason {
        AbortReason::AssignmentLost => 0,
        AbortReason::Produce => 1,
        AbortReason::Changelog => 2,
        AbortReason::SendOffsets => 3,
        AbortReason::Commit => 4,
        AbortReason::NoGroupMetadata => 5,
        AbortReason::EngineFailure => 6,
        AbortReason::Shutdown => 7,
        AbortReason::Rewind => 8,
    }
}

fn rebuild_index(reason: RebuildReason) -> usize {
    match reason {
        RebuildReason::Fenced => 0,
        RebuildReason::Fatal => 1,
        RebuildReason::RepeatedAborts => 2,
    }
}

/// The handles of one worker.
struct Handles {
    /// The `worker` label value.
    worker: String,
    commit: Histogram,
    partitions_assigned: IntGauge,
    partitions_restoring: IntGauge,
    aborts: Slots<IntCounter, ABORT_LABELS>,
    producer_recreated: Slots<IntCounter, 3>,
    sessions_restarted: ByName<OnceLock<IntCounter>>,
}

/// The metrics as one stream thread records them ([`Metrics::worker`]). Cheap to clone; the
/// instance-wide methods of [`Metrics`] are reached through `Deref`.
#[derive(Clone)]
pub struct WorkerMetrics {
    metrics: Arc<Metrics>,
    own: Arc<Handles>,
}

impl WorkerMetrics {
    pub(super) fn new(metrics: Arc<Metrics>, worker: usize) -> WorkerMetrics {
        let worker = worker.to_string();
        let f = &metrics.f;
        let own = Handles {
            commit: f.commit.with_label_values(&[&worker]),
            partitions_assigned: f.partitions_assigned.with_label_values(&[&worker]),
            partitions_restoring: f.partitions_restoring.with_label_values(&[&worker]),
            aborts: Slots::default(),
            producer_recreated: Slots::default(),
            sessions_restarted: ByName::default(),
            worker,
        };
        WorkerMetrics {
            metrics,
            own: Arc::new(own),
        }
    }

    /// The `worker` label value of this thread.
    pub fn worker_label(&self) -> &str {
        &self.own.worker
    }

    /// Observes the duration of one transaction commit.
    pub fn observe_commit(&self, seconds: f64) {
        self.own.commit.observe(seconds);
    }

    /// Counts a transaction aborted for `reason` (the producer stays usable).
    pub fn transaction_aborted(&self, reason: AbortReason) {
        self.abort(abort_index(reason), reason.label());
    }

    /// Counts a transaction ended by a fatal producer error (`reason="fatal"`).
    pub fn transaction_fatal(&self) {
        self.abort(FATAL, "fatal");
    }

    fn abort(&self, index: usize, label: &str) {
        self.own
            .aborts
            .get(index, || {
                self.metrics
                    .f
                    .aborts
                    .with_label_values(&[label, &self.own.worker])
            })
            .inc();
    }

    /// Counts a rebuilt transactional producer.
    pub fn producer_recreated(&self, reason: RebuildReason) {
        self.own
            .producer_recreated
            .get(rebuild_index(reason), || {
                self.metrics
                    .f
                    .producer_recreated
                    .with_label_values(&[reason.label(), &self.own.worker])
            })
            .inc();
    }

    /// A Kafka session failed and is built again (`reason`: what failed, e.g.
    /// `consumer_fatal`).
    pub fn session_restarted(&self, reason: &str) {
        self.own.sessions_restarted.with(reason, |c| {
            c.get_or_init(|| {
                self.metrics
                    .f
                    .sessions_restarted
                    .with_label_values(&[reason, &self.own.worker])
            })
            .inc()
        });
    }

    /// Sets the numbers of this thread's assigned and restoring partitions.
    pub fn set_partitions(&self, assigned: usize, restoring: usize) {
        self.own.partitions_assigned.set(assigned as i64);
        self.own.partitions_restoring.set(restoring as i64);
    }
}

impl Deref for WorkerMetrics {
    type Target = Metrics;

    fn deref(&self) -> &Metrics {
        &self.metrics
    }
}
