//! Replaying changelog partitions into restoring partitions' engines, a bounded batch at a time
//! (Kafka Streams' restore consumer).
//!
//! One consumer per session reads every changelog partition being replayed. It belongs to no
//! group (so reading never disturbs the group's assignment or offsets) and reads
//! `read_committed`, so aborted transactions are invisible: the restored state is exactly the
//! state as of the last committed transaction, which is also where the group's committed offsets
//! point. The poll loop calls [`Restorer::step`] once per turn with a budget, between two polls
//! of the group consumer, so a restore of any length never keeps the group consumer from
//! polling (the membership is kept, the other partitions keep processing).
//!
//! The end of a partition is the end offset read when its replay starts (for a `read_committed`
//! consumer librdkafka reports the last stable offset). It is reached when a record at
//! `end - 1` arrives, when the end-of-partition signal comes, or when the position passes it:
//! the last offsets may be transaction markers, which are never delivered as records.

use crate::clients::client_config;
use journey_engine::Engine;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The most customers a restore sizes an engine's index for up front (about 800 MB of index);
/// beyond it the index grows as it fills.
const MAX_RESERVE: usize = 1 << 27;

/// How many customers a restore sizes an engine's customer index for before replaying
/// `records` changelog records: a compacted changelog holds up to about two records per
/// customer before compaction catches up, so half of them, at most [`MAX_RESERVE`]. Sizing the
/// index once avoids its doublings while it fills, each of which reads every customer's id
/// again (docs/scaling.md, "Restore and rebalance cost").
pub fn customers_expected(records: i64) -> usize {
    usize::try_from(records.max(0) / 2)
        .unwrap_or(usize::MAX)
        .min(MAX_RESERVE)
}

/// The same for a checkpoint of `customers` customers (an exact count).
pub fn customers_in_checkpoint(customers: u64) -> usize {
    usize::try_from(customers)
        .unwrap_or(usize::MAX)
        .min(MAX_RESERVE)
}

/// The restore consumer's context: reaching the end of a partition is the expected outcome
/// here, not an error worth logging (librdkafka also reports it as a client-wide error).
struct RestoreContext;

impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!(error = %error, "changelog restore consumer: {reason}");
        }
    }
}

impl ConsumerContext for RestoreContext {}

/// Why a restore could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("changelog restore interrupted by shutdown")]
    Cancelled,
    #[error("changelog restore of {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// What one [`Restorer::step`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Records applied, per partition.
    pub applied: BTreeMap<i32, u64>,
    /// Records that could not be applied (undecodable state), per partition.
    pub undecodable: BTreeMap<i32, u64>,
    /// Partitions that reached their end offset in this step.
    pub finished: Vec<i32>,
}

/// The changelog replays in progress.
pub struct Restorer {
    consumer: BaseConsumer<RestoreContext>,
    topic: String,
    /// Partitions being replayed, with the end offset to reach.
    ends: BTreeMap<i32, i64>,
}

impl Restorer {
    /// A restore consumer on changelog `topic` with properties `props`
    /// ([`crate::clients::restore_properties`]).
    pub fn new(props: &[(String, String)], topic: &str) -> Result<Restorer, RestoreError> {
        let consumer = client_config(props)
            .create_with_context(RestoreContext)
            .map_err(|source| RestoreError::Kafka {
                topic: topic.to_owned(),
                source,
            })?;
        Ok(Restorer {
            consumer,
            topic: topic.to_owned(),
            ends: BTreeMap::new(),
        })
    }

    fn kafka(&self, source: KafkaError) -> RestoreError {
        RestoreError::Kafka {
            topic: self.topic.clone(),
            source,
        }
    }

    /// The changelog partition's low and end offsets, retrying while the broker is unreachable.
    pub fn watermarks(
        &self,
        partition: i32,
        cancel: &CancellationToken,
    ) -> Result<(i64, i64), RestoreError> {
        let mut attempt = 0u32;
        loop {
            match self
                .consumer
                .fetch_watermarks(&self.topic, partition, Duration::from_secs(10))
            {
                Ok(w) => return Ok(w),
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(topic = %self.topic, partition, error = %e, attempt, "reading changelog end offset, retrying");
                    if cancel.is_cancelled() {
                        return Err(RestoreError::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                Err(e) => return Err(self.kafka(e)),
            }
        }
    }

    /// Starts replaying `partition` from offset `from` up to `end` (exclusive). Nothing to do
    /// (and `false`) when `from >= end`.
    pub fn start(&mut self, partition: i32, from: i64, end: i64) -> Result<bool, RestoreError> {
        self.stop(partition);
        if from >= end {
            return Ok(false);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Offset(from))
            .map_err(|e| self.kafka(e))?;
        self.consumer
            .incremental_assign(&tpl)
            .map_err(|e| self.kafka(e))?;
        self.ends.insert(partition, end);
        Ok(true)
    }

    /// Stops replaying `partition` (revoked, or restarted).
    pub fn stop(&mut self, partition: i32) {
        if self.ends.remove(&partition).is_none() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        if let Err(e) = self.consumer.incremental_unassign(&tpl) {
            tracing::warn!(partition, error = %e, "stopping a changelog replay");
        }
    }

    /// Whether `partition` is being replayed.
    pub fn is_replaying(&self, partition: i32) -> bool {
        self.ends.contains_key(&partition)
    }

    /// Whether any partition is being replayed.
    pub fn is_busy(&self) -> bool {
        !self.ends.is_empty()
    }

    /// Hands up to `budget` changelog records (or until `deadline`) of the partitions being
    /// replayed to `apply(partition, key, value)`, which answers whether the record could be
    /// applied (`None`: no such partition any more). Waits at most `wait` for the first record.
    pub fn step(
        &mut self,
        budget: usize,
        wait: Duration,
        deadline: Instant,
        mut apply: impl FnMut(i32, Option<&[u8]>, Option<&[u8]>) -> Option<bool>,
    ) -> Step {
        let mut step = Step::default();
        if self.ends.is_empty() {
            return step;
        }
        let mut timeout = wait;
        let mut n = 0usize;
        while n < budget && !self.ends.is_empty() {
            if n % 256 == 255 && Instant::now() >= deadline {
                break;
            }
            match self.consumer.poll(timeout) {
                Some(Ok(msg)) => {
                    n += 1;
                    let p = msg.partition();
                    let Some(end) = self.ends.get(&p).copied() else {
                        continue;
                    };
                    if let Some(ok) = apply(p, msg.key(), msg.payload()) {
                        *step.applied.entry(p).or_default() += 1;
                        if !ok {
                            *step.undecodable.entry(p).or_default() += 1;
                        }
                    }
                    if msg.offset() + 1 >= end {
                        self.finish(p, &mut step);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.finish(p, &mut step),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "changelog restore consumer");
                    break;
                }
                None => break,
            }
            timeout = Duration::ZERO;
        }
        // The last records of a partition may be transaction markers: no record arrives for
        // them, but the position moves past them.
        if let Ok(positions) = self.consumer.position() {
            for e in positions.elements() {
                if let (Offset::Offset(pos), Some(end)) =
                    (e.offset(), self.ends.get(&e.partition()))
                {
                    if pos >= *end {
                        self.finish(e.partition(), &mut step);
                    }
                }
            }
        }
        step
    }

    fn finish(&mut self, partition: i32, step: &mut Step) {
        if self.ends.contains_key(&partition) {
            self.stop(partition);
            step.finished.push(partition);
        }
    }
}

/// Applies one changelog record: a value imports the customer, a tombstone removes it.
/// Returns false when the record could not be applied.
pub fn apply_record(engine: &mut Engine, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
    let Some(customer) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
        return false;
    };
    match value {
        Some(bytes) => match engine.import_customer(customer, bytes) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "changelog record skipped");
                // The customer must not keep an older state that a later record replaced.
                engine.remove_customer(customer);
                false
            }
        },
        None => {
            engine.remove_customer(customer);
            true
        }
    }
}
