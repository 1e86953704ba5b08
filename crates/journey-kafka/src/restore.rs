//! Restoring partitions' customer state from the compacted changelog.
//!
//! When this instance is assigned input partition `p`, the customers of `p` are rebuilt by
//! reading changelog partition `p` from the beginning up to its end with a separate consumer
//! that belongs to no group (so reading never disturbs the group's assignment or offsets).
//! `read_committed` makes aborted transactions invisible, so the restored state is exactly the
//! state as of the last committed transaction, which is also where the group's committed
//! offsets point: state and input position agree. The end is detected either by the
//! end-of-partition signal or by the position reaching the end offset read before starting;
//! comparing positions rather than the last record's offset matters because transaction
//! markers take offsets and are never delivered as records. Timers are rebuilt by the engine
//! when customers are imported.

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

/// How one partition's restore went.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreStats {
    /// Changelog records applied (values and tombstones).
    pub records: u64,
    /// Records that could not be decoded and were skipped.
    pub undecodable: u64,
    /// Wall-clock time until the partition was caught up.
    pub seconds: f64,
}

/// Why a restore stopped.
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

/// Restores `partitions` of the changelog `topic` into `engines` (one fresh engine per
/// partition, already present in the map). Blocks until every partition is caught up.
pub fn restore_partitions(
    props: &[(String, String)],
    topic: &str,
    partitions: &[i32],
    engines: &mut BTreeMap<i32, Engine>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<i32, RestoreStats>, RestoreError> {
    let kafka = |source| RestoreError::Kafka {
        topic: topic.to_owned(),
        source,
    };
    let started = Instant::now();
    let consumer: BaseConsumer<RestoreContext> = client_config(props)
        .create_with_context(RestoreContext)
        .map_err(kafka)?;
    let mut stats: BTreeMap<i32, RestoreStats> = BTreeMap::new();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        let (low, high) = watermarks(&consumer, topic, p, cancel).map_err(|e| match e {
            None => RestoreError::Cancelled,
            Some(e) => kafka(e),
        })?;
        stats.insert(
            p,
            RestoreStats {
                records: 0,
                undecodable: 0,
                seconds: 0.0,
            },
        );
        if high > low {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(kafka)?;
        }
    }
    if tpl.count() > 0 {
        consumer.assign(&tpl).map_err(kafka)?;
    }
    let mut last_progress = Instant::now();
    while !ends.is_empty() {
        if cancel.is_cancelled() {
            return Err(RestoreError::Cancelled);
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                let p = msg.partition();
                if let (Some(engine), Some(s)) = (engines.get_mut(&p), stats.get_mut(&p)) {
                    s.records += 1;
                    if !apply(engine, msg.key(), msg.payload()) {
                        s.undecodable += 1;
                    }
                }
                if ends.get(&p).is_some_and(|end| msg.offset() + 1 >= *end) {
                    finish(&mut ends, &mut stats, p, started);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => finish(&mut ends, &mut stats, p, started),
            Some(Err(e)) => tracing::warn!(error = %e, "changelog restore consumer"),
            None => {}
        }
        // The last records of a partition may be transaction markers: no record arrives for
        // them, but the position moves past them.
        if let Ok(positions) = consumer.position() {
            for e in positions.elements() {
                if let (Offset::Offset(pos), Some(end)) = (e.offset(), ends.get(&e.partition())) {
                    if pos >= *end {
                        finish(&mut ends, &mut stats, e.partition(), started);
                    }
                }
            }
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            tracing::info!(remaining = ?ends.keys().collect::<Vec<_>>(), "changelog restore in progress");
        }
    }
    for (p, s) in &mut stats {
        if s.seconds == 0.0 {
            s.seconds = started.elapsed().as_secs_f64();
        }
        if s.undecodable > 0 {
            tracing::error!(
                partition = p,
                undecodable = s.undecodable,
                "changelog records could not be decoded; those customers start empty"
            );
        }
    }
    Ok(stats)
}

fn finish(
    ends: &mut BTreeMap<i32, i64>,
    stats: &mut BTreeMap<i32, RestoreStats>,
    p: i32,
    started: Instant,
) {
    if ends.remove(&p).is_some() {
        if let Some(s) = stats.get_mut(&p) {
            s.seconds = started.elapsed().as_secs_f64();
        }
    }
}

/// Applies one changelog record: a value imports the customer, a tombstone removes it.
/// Returns false when the record could not be applied.
pub fn apply(engine: &mut Engine, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
    let Some(customer) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
        return false;
    };
    match value {
        Some(bytes) => match engine.import_customer(customer, bytes) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(customer, error = %e, "changelog record skipped");
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

/// Reads a partition's watermarks, retrying while the broker is unreachable. `Err(None)`
/// means cancelled.
fn watermarks(
    consumer: &BaseConsumer<RestoreContext>,
    topic: &str,
    partition: i32,
    cancel: &CancellationToken,
) -> Result<(i64, i64), Option<KafkaError>> {
    let mut attempt = 0u32;
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok(w) => return Ok(w),
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(topic, partition, error = %e, attempt, "reading changelog end offset, retrying");
                if cancel.is_cancelled() {
                    return Err(None);
                }
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            Err(e) => return Err(Some(e)),
        }
    }
}
