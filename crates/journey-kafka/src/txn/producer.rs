//! The transactional producer: its creation (fencing older incarnations of its
//! `transactional.id`) and its context, which reports delivery failures, client errors and
//! broker reachability from the producer's own thread.

use super::failure::{classify, ErrorClass};
use crate::clients::{client_config, producer_properties};
use journey_spec::KafkaConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use std::sync::Arc;
use std::time::Duration;

/// The transactional producer (its own thread serves delivery reports, client errors and
/// statistics).
pub type TxnProducer = ThreadedProducer<TxnProducerContext>;

/// Told whether the brokers answer (`false` on librdkafka's "all brokers down", `true` once
/// statistics show a broker up); the runtime points it at readiness.
pub type BrokerWatch = Arc<dyn Fn(bool) + Send + Sync>;

/// Told when a transactional call keeps failing and is being made again (`Some(why)`), and
/// when a commit went through again (`None`); the runtime points it at readiness, so an
/// instance whose commits are stuck is not reported ready while its input waits.
pub type StallWatch = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// The transactional producer's context. Its callbacks run on the producer's own polling
/// thread, so the brokers going away is reported even while the stream thread is blocked in a
/// transactional call (`send_offsets_to_transaction`, `commit_transaction`), when the group
/// consumer's callbacks (served only inside its `poll`) cannot run.
pub struct TxnProducerContext {
    brokers: BrokerWatch,
}

impl TxnProducerContext {
    pub fn new(brokers: BrokerWatch) -> Self {
        TxnProducerContext { brokers }
    }
}

impl ClientContext for TxnProducerContext {
    fn stats(&self, statistics: Statistics) {
        // Bootstrap entries and the internal broker appear too; only a known broker UP counts.
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        if up {
            (self.brokers)(true);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            (self.brokers)(false);
        }
        tracing::error!(error = %error, "kafka producer error: {reason}");
    }
}

impl ProducerContext for TxnProducerContext {
    type DeliveryOpaque = ();

    // Delivery failures surface in the transaction (the commit fails and is aborted).
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Why the transactional producer could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("creating the producer: {0}")]
    Create(#[source] KafkaError),
    #[error("init transactions: {0}")]
    Init(#[source] KafkaError),
}

/// Creates the transactional producer and fences older producers with the same id (which also
/// aborts a transaction a previous incarnation left open).
pub fn create_producer(
    kafka: &KafkaConfig,
    transactional_id: &str,
    brokers: BrokerWatch,
) -> Result<TxnProducer, ProducerError> {
    let producer: TxnProducer = client_config(&producer_properties(kafka, transactional_id))
        .create_with_context(TxnProducerContext::new(brokers))
        .map_err(ProducerError::Create)?;
    let mut attempt = 0u32;
    loop {
        match producer.init_transactions(Duration::from_secs(30)) {
            Ok(()) => return Ok(producer),
            Err(e) if classify(&e) == ErrorClass::Retry && attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "init transactions failed, retrying");
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            Err(e) => return Err(ProducerError::Init(e)),
        }
    }
}
