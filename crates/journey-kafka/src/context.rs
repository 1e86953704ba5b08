//! The group consumer's context: rebalance callbacks, statistics (lag, broker reachability),
//! client errors.
//!
//! Why the transaction lives here: librdkafka calls the rebalance callback from inside `poll`,
//! and when partitions are revoked the open transaction must be committed *before* they are
//! handed over (the next owner restores from the changelog and resumes from the committed
//! offsets; anything still open would be lost or fenced). The callback only has the context, so
//! the transaction is reachable from there. The callback runs on the stream thread, inside
//! `poll`, so the mutexes are never contended; the stream thread never holds them across `poll`.
//!
//! On assignment the callback pauses the new partitions (they are restored before they
//! process, see [`crate::task_manager`]) and marks them not restored in its worker's
//! [`WorkerHealth`] in the same
//! step that marks the group joined, so `/readyz` can never answer 200 between the assignment
//! and the start of the restore.

use crate::health::WorkerHealth;
use crate::metrics::WorkerMetrics;
use crate::offsets::TopicPartition;
use crate::txn::{lock, AbortReason, Txn, TxnFailure};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

/// Reads a customer's current state for the changelog: `Ok(Some(bytes))` a value, `Ok(None)` a
/// tombstone (no state). An error means the state cannot be read now (the transaction is then
/// aborted rather than committed without it).
pub type SharedExport = Box<dyn Fn(i32, &str) -> Result<Option<Vec<u8>>, String> + Send + Sync>;

/// A change of the consumer's assignment, recorded by the rebalance callback and acted upon by
/// the task manager once `poll` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned(Vec<TopicPartition>),
    /// `committed`: the open transaction was committed (or nothing was open), so the revoked
    /// partitions' engines hold exactly their committed state (a checkpoint may be written).
    Revoked {
        partitions: Vec<TopicPartition>,
        committed: bool,
    },
}

/// The group consumer's context.
pub struct RuntimeContext {
    txn: Mutex<Txn>,
    /// Reads the engines' state for the changelog entries written at commit.
    export: SharedExport,
    events: Mutex<Vec<RebalanceEvent>>,
    failure: Mutex<Option<TxnFailure>>,
    owned: Mutex<BTreeSet<TopicPartition>>,
    metrics: WorkerMetrics,
    health: WorkerHealth,
}

impl RuntimeContext {
    /// A context around the session's transaction; `export` reads the engines' state (see
    /// [`Txn::commit`]).
    pub fn new(
        txn: Txn,
        metrics: WorkerMetrics,
        health: WorkerHealth,
        export: SharedExport,
    ) -> Self {
        RuntimeContext {
            txn: Mutex::new(txn),
            export,
            events: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            owned: Mutex::new(BTreeSet::new()),
            metrics,
            health,
        }
    }

    /// The transaction (never hold this guard across `poll`).
    pub fn txn(&self) -> MutexGuard<'_, Txn> {
        lock(&self.txn)
    }

    /// Commits the open transaction (see [`Txn::commit`]), reading the changed customers'
    /// state from the engines.
    pub fn commit(
        &self,
        txn: &mut Txn,
        group: Option<&ConsumerGroupMetadata>,
    ) -> Result<bool, TxnFailure> {
        txn.commit(group, &self.metrics, &mut |p, c| (self.export)(p, c))
    }

    /// Assignment changes recorded since the last call.
    pub fn take_events(&self) -> Vec<RebalanceEvent> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// A transaction failure that happened inside a callback, if any.
    pub fn take_failure(&self) -> Option<TxnFailure> {
        lock(&self.failure).take()
    }

    /// Whether a failure waits for recovery.
    pub fn has_failure(&self) -> bool {
        lock(&self.failure).is_some()
    }

    /// Records a failure to be handled by the stream thread.
    pub fn set_failure(&self, failure: TxnFailure) {
        let mut slot = lock(&self.failure);
        // A fatal failure wins over an abort: it needs the stronger recovery.
        if !matches!(*slot, Some(TxnFailure::Fatal { .. })) {
            *slot = Some(failure);
        }
    }

    /// Partitions were assigned: readiness waits for their restore from this very moment,
    /// and the task manager is told.
    pub fn assigned(&self, partitions: Vec<TopicPartition>) {
        let numbers: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
        // Even an empty assignment means the group was joined (more instances than
        // partitions): this instance is ready with nothing to do.
        self.health.partitions_assigned(&numbers);
        self.metrics.rebalance("assigned");
        if partitions.is_empty() {
            return;
        }
        tracing::info!(?partitions, "partitions assigned");
        lock(&self.owned).extend(partitions.iter().cloned());
        lock(&self.events).push(RebalanceEvent::Assigned(partitions));
    }

    fn revoke(&self, base_consumer: &BaseConsumer<Self>, partitions: Vec<TopicPartition>) {
        let lost = base_consumer.assignment_lost();
        self.metrics
            .rebalance(if lost { "lost" } else { "revoked" });
        let mut txn = self.txn();
        let result = if !txn.is_open() {
            Ok(false)
        } else if lost {
            // The partitions may already belong to another member: committing their offsets
            // would be fenced. Abort; the remaining partitions recover.
            Err(txn.abort(
                AbortReason::AssignmentLost,
                "assignment lost",
                &self.metrics,
            ))
        } else {
            let group = base_consumer.group_metadata();
            self.commit(&mut txn, group.as_ref())
        };
        let committed = match result {
            Ok(_) => !self.has_failure(),
            Err(failure) => {
                tracing::warn!(
                    reason = failure.detail(),
                    "transaction not committed before revocation"
                );
                self.set_failure(failure);
                false
            }
        };
        for (topic, partition) in &partitions {
            txn.book.revoke(topic, *partition);
        }
        drop(txn);
        let mut owned = lock(&self.owned);
        for tp in &partitions {
            owned.remove(tp);
        }
        drop(owned);
        lock(&self.events).push(RebalanceEvent::Revoked {
            partitions,
            committed,
        });
    }
}

fn partitions_of(tpl: &rdkafka::TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for RuntimeContext {
    fn stats(&self, statistics: Statistics) {
        let owned = lock(&self.owned).clone();
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if p.consumer_lag >= 0 && owned.contains(&(topic.clone(), *partition)) {
                    self.metrics
                        .set_consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
        // Bootstrap entries and the internal broker appear too; any broker UP means reachable.
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.health.set_broker_reachable(up);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.set_broker_reachable(false);
        }
        tracing::error!(error = %error, "kafka client error: {reason}");
    }
}

impl ConsumerContext for RuntimeContext {
    fn pre_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions = partitions_of(tpl);
                tracing::info!(?partitions, "partitions revoked");
                self.revoke(base_consumer, partitions);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Nothing of a new partition is processed before its state is restored: paused
            // here, before the first fetch, resumed by the task manager.
            if tpl.count() > 0 {
                if let Err(e) = base_consumer.pause(tpl) {
                    tracing::warn!(error = %e, "pausing newly assigned partitions");
                }
            }
            self.assigned(partitions_of(tpl));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use crate::metrics::Metrics;
    use crate::offsets::OffsetBook;
    use rdkafka::ClientConfig;
    use std::sync::Arc;

    fn context(health: WorkerHealth) -> RuntimeContext {
        // A producer that never connects: nothing here talks to a broker.
        let producer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("transactional.id", "test")
            .create_with_context(crate::txn::TxnProducerContext::new(Arc::new(|_| {})))
            .unwrap();
        let txn = Txn::new(producer, OffsetBook::new(), "state");
        RuntimeContext::new(
            txn,
            Metrics::new().worker(0),
            health,
            Box::new(|_, _| Ok(None)),
        )
    }

    /// The race of issue "readyz 200 between assignment and restore": the assignment callback
    /// itself marks the partitions as restoring, so readiness can never be observed in between.
    #[test]
    fn the_assignment_callback_holds_readiness_until_restored() {
        let health = Health::new();
        health.set_running(true);
        let ctx = context(health.worker(0));
        assert_eq!(
            health.readiness(),
            Err("joining consumer group".to_string())
        );
        ctx.assigned(vec![("events".into(), 0), ("events".into(), 1)]);
        // Right after the callback, before the task manager ran at all: not ready.
        assert_eq!(
            health.readiness(),
            Err("restoring partitions [0, 1] (0: starting, 1: starting)".to_string())
        );
        assert_eq!(
            ctx.take_events(),
            [RebalanceEvent::Assigned(vec![
                ("events".into(), 0),
                ("events".into(), 1)
            ])]
        );
        health.worker(0).partition_ready(0);
        assert!(!health.is_ready());
        health.worker(0).partition_ready(1);
        assert!(health.is_ready());
        // An empty assignment joins the group and is ready at once.
        let health = Health::new();
        health.set_running(true);
        context(health.worker(0)).assigned(Vec::new());
        assert!(health.is_ready());
    }
}
