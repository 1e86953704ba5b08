//! The open transaction and the consumer context that commits it on revocation.
//!
//! One transaction spans every partition of the instance: the outputs of the records processed
//! (and timers fired) since the last commit, the changelog entries of the customers they
//! changed (written once per customer, at commit, see [`Txn::commit`]), plus the consumer
//! offsets of those records, commit together. Why the transaction lives inside the consumer
//! context: librdkafka calls the rebalance callback from inside `poll`, and when partitions are
//! revoked the open transaction must be committed *before* they are handed over (the next owner
//! restores from the changelog and resumes from the committed offsets; anything still open
//! would be lost or fenced). The callback only has the context, so the transaction is reachable
//! from there. The callback runs on the worker thread, inside `poll`, so the mutex is never
//! contended; the worker never holds it across `poll`.

use crate::http::Health;
use crate::metrics::Metrics;
use crate::offsets::{OffsetBook, TopicPartition};
use crate::records::{changelog_record, DeadLetter, OutRecord};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::statistics::Statistics;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The transactional producer (its own thread serves delivery reports).
pub type TxnProducer = ThreadedProducer<DefaultProducerContext>;

/// Reads a customer's current state for the changelog: `Ok(Some(bytes))` a value, `Ok(None)` a
/// tombstone (no state). An error means the state cannot be read now (the transaction is then
/// aborted rather than committed without it).
pub type ExportFn<'a> = dyn FnMut(i32, &str) -> Result<Option<Vec<u8>>, String> + 'a;

/// The worker's engines as the rebalance callback sees them (it must write the changelog
/// entries of the open transaction before committing it).
pub type SharedExport = Box<dyn Fn(i32, &str) -> Result<Option<Vec<u8>>, String> + Send + Sync>;

/// How long a transactional call (send offsets, commit, abort) may block.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the outstanding record count is checked while waiting for deliveries.
const DRAIN_STEP: Duration = Duration::from_micros(250);
/// Retries of a retriable commit failure (e.g. a coordinator moving) before aborting.
const COMMIT_RETRIES: u32 = 5;

/// Why the transaction could not be committed. Either way the engines hold state that never
/// reached Kafka, so the owned partitions must be restored from the changelog and the consumer
/// rewound to the committed offsets before processing continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnFailure {
    /// The transaction was aborted; the producer is still usable.
    Aborted(String),
    /// The producer is unusable (fenced by a newer instance with the same `transactional.id`,
    /// or another fatal error): it must be recreated.
    Fatal(String),
}

impl TxnFailure {
    /// Short label for logs and metrics.
    pub fn reason(&self) -> &str {
        match self {
            TxnFailure::Aborted(r) | TxnFailure::Fatal(r) => r,
        }
    }
}

/// What to do with a failed transactional call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retry,
    Abort,
    Fatal,
}

/// Classifies a transactional error the way librdkafka asks callers to (never `expect()`).
pub fn classify(err: &KafkaError) -> ErrorClass {
    match err {
        KafkaError::Transaction(e) if e.is_fatal() => ErrorClass::Fatal,
        KafkaError::Transaction(e) if e.txn_requires_abort() => ErrorClass::Abort,
        KafkaError::Transaction(e) if e.is_retriable() => ErrorClass::Retry,
        _ if err.rdkafka_error_code() == Some(RDKafkaErrorCode::Fenced)
            || err.rdkafka_error_code() == Some(RDKafkaErrorCode::ProducerFenced) =>
        {
            ErrorClass::Fatal
        }
        _ => ErrorClass::Abort,
    }
}

/// The open transaction and the offsets it carries.
pub struct Txn {
    producer: TxnProducer,
    open: bool,
    started: Instant,
    /// Input records handled inside the transaction.
    records: usize,
    /// Records produced inside the transaction.
    produced: usize,
    /// Processed and committed input positions.
    pub book: OffsetBook,
    /// Source record timestamps (ms) of the send commands produced in this transaction, for the
    /// event-to-command latency observed once they are visible (at commit).
    command_sources: Vec<i64>,
    /// The compacted changelog topic.
    state_topic: String,
    /// Customers whose state changed in the open transaction, by input partition. Their
    /// changelog entries are written once each, at commit, with the state as of the commit: a
    /// customer with several events in one transaction is exported and written once, not once
    /// per event, and the entry still carries every effect of the transaction.
    changed: BTreeMap<i32, HashSet<String>>,
}

impl Txn {
    /// Wraps a producer on which `init_transactions` succeeded; changelog entries go to
    /// `state_topic`.
    pub fn new(producer: TxnProducer, book: OffsetBook, state_topic: &str) -> Self {
        Txn {
            producer,
            open: false,
            started: Instant::now(),
            records: 0,
            produced: 0,
            book,
            command_sources: Vec::new(),
            state_topic: state_topic.to_owned(),
            changed: BTreeMap::new(),
        }
    }

    /// Replaces the producer after a fatal error (the book is kept: it describes the consumer).
    pub fn replace_producer(&mut self, producer: TxnProducer) {
        self.producer = producer;
        self.reset();
    }

    /// True when a transaction is open with something in it.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// True when the open transaction has reached the commit interval or record budget.
    pub fn commit_due(&self, interval: Duration, max_records: usize) -> bool {
        self.open && (self.started.elapsed() >= interval || self.records >= max_records)
    }

    /// When the open transaction reaches the commit interval.
    pub fn commit_deadline(&self, interval: Duration) -> Option<Instant> {
        self.open.then(|| self.started + interval)
    }

    fn ensure_open(&mut self) -> Result<(), TxnFailure> {
        if self.open {
            return Ok(());
        }
        match self.producer.begin_transaction() {
            Ok(()) => {
                self.open = true;
                self.started = Instant::now();
                Ok(())
            }
            // Beginning is local to the producer: failing means its state is unusable.
            Err(e) => Err(TxnFailure::Fatal(format!("begin transaction: {e}"))),
        }
    }

    /// Counts one handled input record (the offset goes to the book separately).
    pub fn record_processed(&mut self) -> Result<(), TxnFailure> {
        self.ensure_open()?;
        self.records += 1;
        Ok(())
    }

    /// Remembers that a command derived from a record with timestamp `source_ms` was produced.
    pub fn command_from(&mut self, source_ms: Option<i64>) {
        if let Some(ms) = source_ms {
            self.command_sources.push(ms);
        }
    }

    /// Produces one output record inside the transaction.
    pub fn produce(&mut self, record: &OutRecord) -> Result<(), TxnFailure> {
        self.produce_to(
            &record.topic,
            record.partition,
            &record.key,
            record.payload.as_deref(),
        )
    }

    /// Produces one output record, given by parts, inside the transaction (`partition`
    /// `None`: by key; `payload` `None`: a tombstone).
    pub fn produce_to(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: &str,
        payload: Option<&[u8]>,
    ) -> Result<(), TxnFailure> {
        self.ensure_open()?;
        let mut base = BaseRecord::<str, [u8]>::to(topic).key(key);
        if let Some(p) = partition {
            base = base.partition(p);
        }
        if let Some(payload) = payload {
            base = base.payload(payload);
        }
        self.send(base)
            .map_err(|e| TxnFailure::Aborted(format!("produce to {topic}: {e}")))
    }

    /// Notes that these customers of input `partition` changed state inside the open
    /// transaction; their changelog entries are written at commit.
    pub fn state_changed(
        &mut self,
        partition: i32,
        customers: &[String],
    ) -> Result<(), TxnFailure> {
        if customers.is_empty() {
            return Ok(());
        }
        self.ensure_open()?;
        let set = self.changed.entry(partition).or_default();
        for c in customers {
            if !set.contains(c.as_str()) {
                set.insert(c.clone());
            }
        }
        Ok(())
    }

    /// Customers with a changelog entry still to write in the open transaction.
    pub fn pending_state(&self) -> usize {
        self.changed.values().map(HashSet::len).sum()
    }

    /// Writes the changelog entries of the customers changed in the open transaction, with
    /// their current state.
    fn write_changelog(&mut self, export: &mut ExportFn<'_>) -> Result<(), TxnFailure> {
        let changed = std::mem::take(&mut self.changed);
        let topic = self.state_topic.clone();
        for (partition, customers) in changed {
            for customer in customers {
                let state = export(partition, &customer)
                    .map_err(|e| TxnFailure::Aborted(format!("produce changelog: {e}")))?;
                let record = changelog_record(&topic, partition, &customer, state);
                self.produce(&record)?;
            }
        }
        Ok(())
    }

    /// Produces a dead-letter record inside the transaction. A dead letter that the producer
    /// refuses outright (e.g. larger than `message.max.bytes`) is reported and skipped: it
    /// carries no state, and refusing it must not stop the partition.
    pub fn produce_dead_letter(&mut self, dl: &DeadLetter) -> Result<(), TxnFailure> {
        self.ensure_open()?;
        let mut headers = OwnedHeaders::new_with_capacity(dl.headers.len());
        for (k, v) in &dl.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut base = BaseRecord::<[u8], [u8]>::to(&dl.topic).headers(headers);
        if let Some(key) = &dl.key {
            base = base.key(key.as_slice());
        }
        if let Some(payload) = &dl.payload {
            base = base.payload(payload.as_slice());
        }
        match self.send(base) {
            Ok(()) => Ok(()),
            Err(e) if classify(&e) == ErrorClass::Fatal => {
                Err(TxnFailure::Fatal(format!("produce dead letter: {e}")))
            }
            Err(e) => {
                tracing::error!(topic = %dl.topic, error = %e, "dead-letter record refused by the producer; skipped");
                Ok(())
            }
        }
    }

    /// Hands a record to the producer, waiting while its queue is full.
    fn send<K, P>(&mut self, mut record: BaseRecord<'_, K, P>) -> Result<(), KafkaError>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.produced += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The producer's thread serves delivery reports and frees the queue; a
                    // `poll` here would always block for its whole timeout.
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Commits the open transaction: first the changelog entries of the changed customers
    /// (their state read through `export`), then the processed offsets. Returns `Ok(true)` when
    /// a transaction was committed, `Ok(false)` when none was open. On failure the transaction
    /// has been aborted (or the producer is unusable) and the caller must recover.
    pub fn commit(
        &mut self,
        group: Option<&ConsumerGroupMetadata>,
        metrics: &Metrics,
        export: &mut ExportFn<'_>,
    ) -> Result<bool, TxnFailure> {
        if !self.open {
            return Ok(false);
        }
        let started = Instant::now();
        let open_for = self.started.elapsed();
        let state_entries = self.pending_state();
        match self.write_changelog(export) {
            Ok(()) => {}
            Err(TxnFailure::Aborted(reason)) => return Err(self.abort(&reason, metrics)),
            Err(fatal) => {
                metrics.transaction_aborted("fatal");
                self.book.abort();
                self.reset();
                return Err(fatal);
            }
        }
        // Offsets go with every transaction, also one that only fired timers (see
        // `OffsetBook::commit_list`); nothing is sent before the group has any offset.
        let offsets = self.book.commit_list();
        if offsets.count() > 0 {
            let Some(group) = group else {
                return Err(self.abort("no_group_metadata", metrics));
            };
            self.retrying("send offsets", metrics, |p| {
                p.send_offsets_to_transaction(&offsets, group, TXN_TIMEOUT)
            })?;
        }
        let offsets_sent = started.elapsed();
        self.drain(TXN_TIMEOUT);
        self.retrying("commit", metrics, |p| p.commit_transaction(TXN_TIMEOUT))?;
        let seconds = started.elapsed().as_secs_f64();
        metrics.observe_commit(seconds);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for source in self.command_sources.drain(..) {
            metrics.observe_event_to_command(((now_ms - source).max(0) as f64) / 1000.0);
        }
        tracing::debug!(
            records = self.records,
            produced = self.produced,
            state_entries,
            millis = (seconds * 1000.0) as u64,
            offsets_millis = offsets_sent.as_millis() as u64,
            open_millis = open_for.as_millis() as u64,
            "committed transaction"
        );
        self.book.commit();
        self.reset();
        Ok(true)
    }

    /// Waits until every record produced so far is acknowledged (or `timeout` passes), so that
    /// the commit finds nothing outstanding.
    ///
    /// Why: rust-rdkafka's `commit_transaction` flushes first, and its flush polls in 100 ms
    /// steps as long as anything is outstanding (its `poll` always waits for the whole step),
    /// which put ~100 ms into every commit however small, blocking processing meanwhile. The
    /// delivery reports are served by the threaded producer's own thread, so checking the
    /// outstanding count every [`DRAIN_STEP`] is enough; each zero-timeout flush also makes
    /// librdkafka send what is lingering at once. A failure is left to the commit to report.
    fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.producer.flush(Duration::ZERO) {
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(DRAIN_STEP)
                }
                _ => return,
            }
        }
    }

    /// Runs a transactional call, retrying retriable errors with backoff and aborting on
    /// abortable ones.
    fn retrying(
        &mut self,
        what: &str,
        metrics: &Metrics,
        mut call: impl FnMut(&TxnProducer) -> Result<(), KafkaError>,
    ) -> Result<(), TxnFailure> {
        let mut attempt = 0;
        loop {
            match call(&self.producer) {
                Ok(()) => return Ok(()),
                Err(e) => match classify(&e) {
                    ErrorClass::Retry if attempt < COMMIT_RETRIES => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "{what} failed, retrying");
                        std::thread::sleep(Duration::from_millis(100 << attempt));
                    }
                    ErrorClass::Fatal => {
                        metrics.transaction_aborted("fatal");
                        self.book.abort();
                        self.reset();
                        return Err(TxnFailure::Fatal(format!("{what}: {e}")));
                    }
                    _ => {
                        tracing::warn!(error = %e, "{what} failed, aborting the transaction");
                        return Err(self.abort(&format!("{what}: {e}"), metrics));
                    }
                },
            }
        }
    }

    /// Aborts the open transaction (its outputs are discarded by read_committed readers).
    pub fn abort(&mut self, reason: &str, metrics: &Metrics) -> TxnFailure {
        metrics.transaction_aborted(abort_label(reason));
        self.book.abort();
        let result = if self.open {
            self.producer.abort_transaction(TXN_TIMEOUT)
        } else {
            Ok(())
        };
        self.reset();
        match result {
            Ok(()) => TxnFailure::Aborted(reason.to_owned()),
            Err(e) => TxnFailure::Fatal(format!("abort after {reason}: {e}")),
        }
    }

    fn reset(&mut self) {
        self.open = false;
        self.records = 0;
        self.produced = 0;
        self.command_sources.clear();
        self.changed.clear();
    }

    /// Waits for the producer's queue to drain (shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush at shutdown");
        }
    }
}

/// A low-cardinality label for an abort reason.
fn abort_label(reason: &str) -> &'static str {
    if reason.starts_with("assignment_lost") {
        "assignment_lost"
    } else if reason.starts_with("produce") {
        "produce"
    } else if reason.starts_with("send offsets") {
        "send_offsets"
    } else if reason.starts_with("commit") {
        "commit"
    } else if reason.starts_with("no_group_metadata") {
        "no_group_metadata"
    } else {
        "other"
    }
}

/// A change of the consumer's assignment, recorded by the rebalance callback and acted upon by
/// the worker once `poll` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

/// The group consumer's context: rebalance callbacks, statistics (lag, broker reachability),
/// errors.
pub struct RuntimeContext {
    txn: Mutex<Option<Txn>>,
    /// Reads the engines' state for the changelog entries written at commit.
    export: SharedExport,
    events: Mutex<Vec<RebalanceEvent>>,
    failure: Mutex<Option<TxnFailure>>,
    owned: Mutex<BTreeSet<TopicPartition>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Locks a mutex, going on with the data of a poisoned one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated in a way
    // that matters more than stopping; keep going with what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RuntimeContext {
    /// A context without a producer yet; `export` reads the engines' state (see
    /// [`Txn::commit`]).
    pub fn new(metrics: Arc<Metrics>, health: Arc<Health>, export: SharedExport) -> Self {
        RuntimeContext {
            txn: Mutex::new(None),
            export,
            events: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            owned: Mutex::new(BTreeSet::new()),
            metrics,
            health,
        }
    }

    /// The transaction (never hold this guard across `poll`).
    pub fn txn(&self) -> MutexGuard<'_, Option<Txn>> {
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

    /// Records a failure to be handled by the worker.
    pub fn set_failure(&self, failure: TxnFailure) {
        let mut slot = lock(&self.failure);
        // A fatal failure wins over an abort: it needs the stronger recovery.
        if !matches!(*slot, Some(TxnFailure::Fatal(_))) {
            *slot = Some(failure);
        }
    }

    fn revoke(&self, base_consumer: &BaseConsumer<Self>, partitions: Vec<TopicPartition>) {
        let lost = base_consumer.assignment_lost();
        let mut guard = self.txn();
        if let Some(txn) = guard.as_mut() {
            if txn.is_open() {
                let result = if lost {
                    // The partitions may already belong to another member: committing their
                    // offsets would be fenced. Abort; the remaining partitions recover.
                    Err(txn.abort("assignment_lost", &self.metrics))
                } else {
                    let group = base_consumer.group_metadata();
                    self.commit(txn, group.as_ref())
                };
                match result {
                    Ok(_) => tracing::debug!("committed transaction before revocation"),
                    Err(failure) => {
                        tracing::warn!(
                            reason = failure.reason(),
                            "transaction not committed before revocation"
                        );
                        self.set_failure(failure);
                    }
                }
            }
            for (topic, partition) in &partitions {
                txn.book.revoke(topic, *partition);
            }
        }
        drop(guard);
        let mut owned = lock(&self.owned);
        for tp in &partitions {
            owned.remove(tp);
        }
        drop(owned);
        lock(&self.events).push(RebalanceEvent::Revoked(partitions));
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

    fn post_rebalance(&self, _base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Even an empty assignment means the group was joined (more instances than
            // partitions): this instance is ready with nothing to do.
            self.health.set_group_joined(true);
            let partitions = partitions_of(tpl);
            if partitions.is_empty() {
                return;
            }
            tracing::info!(?partitions, "partitions assigned");
            lock(&self.owned).extend(partitions.iter().cloned());
            lock(&self.events).push(RebalanceEvent::Assigned(partitions));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_labels_are_low_cardinality() {
        assert_eq!(
            abort_label("produce to actions.email: queue full"),
            "produce"
        );
        assert_eq!(abort_label("commit: timed out"), "commit");
        assert_eq!(abort_label("assignment_lost"), "assignment_lost");
        assert_eq!(abort_label("send offsets: coordinator"), "send_offsets");
        assert_eq!(abort_label("anything else"), "other");
    }

    #[test]
    fn non_transactional_errors_abort() {
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(classify(&e), ErrorClass::Abort);
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::Fenced);
        assert_eq!(classify(&e), ErrorClass::Fatal);
    }
}
