//! The transaction and producer lifecycle (Kafka Streams' `StreamsProducer`): creating the
//! transactional producer, beginning, producing into, committing and aborting the one open
//! transaction, with typed failures.
//!
//! The producer's creation and its context are in [`producer`], the typed failures and the
//! classification of librdkafka errors in [`failure`].
//!
//! One transaction spans every partition of the stream thread (worker): the outputs of the records processed
//! (and timers fired) since the last commit, the changelog entries of the customers they
//! changed (written once per customer, at commit, see [`Txn::commit`]), plus the consumer
//! offsets of those records, commit together. The consumer context ([`crate::context`]) owns
//! the transaction because the rebalance callback must commit it before partitions are handed
//! over.

mod failure;
mod producer;

pub use failure::{classify, AbortReason, ErrorClass, FatalKind, TxnFailure};
pub use producer::{
    create_producer, BrokerWatch, ProducerError, StallWatch, TxnProducer, TxnProducerContext,
};

use crate::metrics::WorkerMetrics;
use crate::offsets::OffsetBook;
use crate::records::{changelog_record, DeadLetter, OutRecord};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Reads a customer's current state for the changelog: `Ok(Some(bytes))` a value, `Ok(None)` a
/// tombstone (no state). An error means the state cannot be read now (the transaction is then
/// aborted rather than committed without it).
pub type ExportFn<'a> = dyn FnMut(i32, &str) -> Result<Option<Vec<u8>>, String> + 'a;

/// The worker's engines as the rebalance callback sees them (it must write the changelog
/// entries of the open transaction before committing it).
pub type SharedExport = Box<dyn Fn(i32, &str) -> Result<Option<Vec<u8>>, String> + Send + Sync>;

/// How long one transactional call (send offsets, commit, abort) may block. Kept short so that
/// the stream thread is never stuck for long in one call: librdkafka reports a timed-out call
/// as retriable (`is_retriable`) and the same call is then made again, up to
/// [`COMMIT_RETRIES`] (or [`ABORT_RETRIES`]) times, which also covers a broker restart.
const TXN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outstanding record count is checked while waiting for deliveries.
const DRAIN_STEP: Duration = Duration::from_micros(250);
/// Retries of a retriable commit failure (e.g. a coordinator moving) before aborting.
const COMMIT_RETRIES: u32 = 5;
/// Retries of a retriable (e.g. timed-out) abort before the producer is given up as unusable.
const ABORT_RETRIES: u32 = 5;

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
    /// Where retried transactional calls are reported.
    stall: StallWatch,
    /// Whether a retry was reported and no commit went through since.
    stalled: bool,
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
            stall: Arc::new(|_| {}),
            stalled: false,
        }
    }

    /// Reports retried transactional calls to `watch` (see [`StallWatch`]).
    pub fn with_stall_watch(mut self, watch: StallWatch) -> Self {
        self.stall = watch;
        self
    }

    fn report_stall(&mut self, why: String) {
        self.stalled = true;
        (self.stall)(Some(&why));
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
            Err(e) => Err(TxnFailure::fatal(
                FatalKind::Other,
                format!("begin transaction: {e}"),
            )),
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
        self.send(base).map_err(|e| match classify(&e) {
            ErrorClass::Fatal(kind) => TxnFailure::fatal(kind, format!("produce to {topic}: {e}")),
            _ => TxnFailure::aborted(AbortReason::Produce, format!("produce to {topic}: {e}")),
        })
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
                let state = export(partition, &customer).map_err(|e| {
                    TxnFailure::aborted(AbortReason::Changelog, format!("changelog: {e}"))
                })?;
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
            Err(e) if matches!(classify(&e), ErrorClass::Fatal(_)) => {
                let kind = match classify(&e) {
                    ErrorClass::Fatal(kind) => kind,
                    _ => FatalKind::Other,
                };
                Err(TxnFailure::fatal(kind, format!("produce dead letter: {e}")))
            }
            // A queue that stayed full (brokers away) refuses nothing for good: the transaction
            // is aborted and the record comes again.
            Err(e @ KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => Err(
                TxnFailure::aborted(AbortReason::Produce, format!("produce dead letter: {e}")),
            ),
            Err(e) => {
                tracing::error!(topic = %dl.topic, error = %e, "dead-letter record refused by the producer; skipped");
                Ok(())
            }
        }
    }

    /// Hands a record to the producer, waiting while its queue is full, at most
    /// [`TXN_TIMEOUT`]: a queue that does not drain (brokers away, or a transaction librdkafka
    /// holds in an abortable error state, whose records are only purged by the abort) is
    /// reported as `QueueFull`, so that the transaction is aborted instead of the stream thread
    /// waiting forever without polling.
    fn send<K, P>(&mut self, mut record: BaseRecord<'_, K, P>) -> Result<(), KafkaError>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let mut full_since: Option<Instant> = None;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.produced += 1;
                    return Ok(());
                }
                Err((e @ KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if full_since.get_or_insert_with(Instant::now).elapsed() >= TXN_TIMEOUT {
                        return Err(e);
                    }
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
        metrics: &WorkerMetrics,
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
            Err(TxnFailure::Aborted { reason, detail }) => {
                return Err(self.abort(reason, &detail, metrics))
            }
            Err(fatal) => {
                metrics.transaction_fatal();
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
                return Err(self.abort(AbortReason::NoGroupMetadata, "no group metadata", metrics));
            };
            self.retrying(AbortReason::SendOffsets, metrics, |p| {
                p.send_offsets_to_transaction(&offsets, group, TXN_TIMEOUT)
            })?;
        }
        let offsets_sent = started.elapsed();
        self.drain(TXN_TIMEOUT);
        self.retrying(AbortReason::Commit, metrics, |p| {
            p.commit_transaction(TXN_TIMEOUT)
        })?;
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
        if self.stalled {
            self.stalled = false;
            (self.stall)(None);
        }
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
        what: AbortReason,
        metrics: &WorkerMetrics,
        mut call: impl FnMut(&TxnProducer) -> Result<(), KafkaError>,
    ) -> Result<(), TxnFailure> {
        let mut attempt = 0;
        loop {
            match call(&self.producer) {
                Ok(()) => return Ok(()),
                Err(e) => match classify(&e) {
                    ErrorClass::Retry if attempt < COMMIT_RETRIES => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "{} failed, retrying", what.label());
                        self.report_stall(format!("{} retrying after: {e}", what.label()));
                        std::thread::sleep(Duration::from_millis(100 << attempt));
                    }
                    ErrorClass::Fatal(kind) => {
                        metrics.transaction_fatal();
                        self.book.abort();
                        self.reset();
                        return Err(TxnFailure::fatal(kind, format!("{}: {e}", what.label())));
                    }
                    _ => {
                        tracing::warn!(error = %e, "{} failed, aborting the transaction", what.label());
                        let detail = format!("{}: {e}", what.label());
                        return Err(self.abort(what, &detail, metrics));
                    }
                },
            }
        }
    }

    /// Aborts the open transaction (its outputs are discarded by read_committed readers).
    pub fn abort(
        &mut self,
        reason: AbortReason,
        detail: &str,
        metrics: &WorkerMetrics,
    ) -> TxnFailure {
        metrics.transaction_aborted(reason);
        self.book.abort();
        let mut attempt = 0;
        let result = loop {
            if !self.open {
                break Ok(());
            }
            match self.producer.abort_transaction(TXN_TIMEOUT) {
                // A timed-out abort may be made again (librdkafka's transactional API).
                Err(e) if classify(&e) == ErrorClass::Retry && attempt < ABORT_RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "abort failed, retrying");
                    self.report_stall(format!("abort retrying after: {e}"));
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                other => break other,
            }
        };
        self.reset();
        match result {
            Ok(()) => TxnFailure::aborted(reason, detail),
            Err(e) => {
                let kind = match classify(&e) {
                    ErrorClass::Fatal(kind) => kind,
                    _ => FatalKind::Other,
                };
                TxnFailure::fatal(kind, format!("abort after {detail}: {e}"))
            }
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

/// Locks a mutex, going on with the data of a poisoned one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated in a way
    // that matters more than stopping; keep going with what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The producer's own thread reports "all brokers down" to readiness: nobody polls this
    /// producer, as nobody polls it while the stream thread is blocked in a transactional call.
    #[test]
    fn the_producer_reports_unreachable_brokers_from_its_own_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let watch: BrokerWatch = Arc::new(move |up| {
            let _ = lock(&tx).send(up);
        });
        // Nothing listens on port 1 of the loopback address.
        let _producer: TxnProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("reconnect.backoff.ms", "10")
            .create_with_context(TxnProducerContext::new(watch))
            .unwrap();
        let reported = rx.recv_timeout(Duration::from_secs(60));
        assert_eq!(reported, Ok(false));
    }

    /// A producer queue that never drains (no broker) makes `send` give up after
    /// [`TXN_TIMEOUT`] with `QueueFull` (an abortable failure) instead of waiting forever.
    #[test]
    fn a_queue_that_stays_full_is_reported_not_waited_on_forever() {
        let producer: TxnProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("queue.buffering.max.messages", "1")
            .create_with_context(TxnProducerContext::new(Arc::new(|_| {})))
            .unwrap();
        let mut txn = Txn::new(producer, OffsetBook::new(), "state");
        let record = || BaseRecord::<str, str>::to("t").key("k").payload("v");
        assert!(txn.send(record()).is_ok());
        let e = txn.send(record()).unwrap_err();
        assert_eq!(
            e,
            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
        );
        assert_eq!(classify(&e), ErrorClass::Abort);
    }

    #[test]
    fn abort_labels_are_fixed_words() {
        assert_eq!(AbortReason::AssignmentLost.label(), "assignment_lost");
        assert_eq!(AbortReason::SendOffsets.label(), "send_offsets");
        assert_eq!(AbortReason::EngineFailure.label(), "engine_failure");
    }

    #[test]
    fn errors_are_classified_by_code_not_text() {
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(classify(&e), ErrorClass::Abort);
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::Fenced);
        assert_eq!(classify(&e), ErrorClass::Fatal(FatalKind::Fenced));
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced);
        assert_eq!(classify(&e), ErrorClass::Fatal(FatalKind::Fenced));
        // A commit whose flush timed out (brokers away) is made again, not aborted.
        let e = KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut);
        assert_eq!(classify(&e), ErrorClass::Retry);
    }
}
