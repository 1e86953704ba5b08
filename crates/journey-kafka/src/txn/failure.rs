//! Why a transaction failed, typed: an abort (the producer stays usable, [`AbortReason`]) or a
//! fatal failure ([`FatalKind`]), and the classification of librdkafka errors that decides
//! between them ([`classify`]).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why a transaction was aborted (the producer stays usable). Also the `reason` label of
/// `journeyd_transaction_aborts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// The assignment was lost (session timeout): committing would be fenced.
    AssignmentLost,
    /// A record could not be handed to the producer.
    Produce,
    /// The changed customers' state could not be read for the changelog.
    Changelog,
    /// `send_offsets_to_transaction` failed.
    SendOffsets,
    /// `commit_transaction` failed.
    Commit,
    /// The consumer had no group metadata to commit offsets with.
    NoGroupMetadata,
    /// The engine failed on a record or while firing timers.
    EngineFailure,
    /// The service stops after a failure.
    Shutdown,
    /// A record fetched for a partition still restoring could not be sent back.
    Rewind,
}

impl AbortReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            AbortReason::AssignmentLost => "assignment_lost",
            AbortReason::Produce => "produce",
            AbortReason::Changelog => "changelog",
            AbortReason::SendOffsets => "send_offsets",
            AbortReason::Commit => "commit",
            AbortReason::NoGroupMetadata => "no_group_metadata",
            AbortReason::EngineFailure => "engine_failure",
            AbortReason::Shutdown => "shutdown",
            AbortReason::Rewind => "rewind",
        }
    }
}

/// Why the producer became unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FatalKind {
    /// A newer producer with the same `transactional.id` fenced this one (or its epoch is no
    /// longer accepted).
    Fenced,
    /// Any other fatal producer error (including a failed abort or begin).
    Other,
}

/// Why the transaction could not be committed. Either way the engines hold state that never
/// reached Kafka, so the owned partitions must be restored and the consumer rewound to the
/// committed offsets before processing continues (see [`crate::recovery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnFailure {
    /// The transaction was aborted; the producer is still usable.
    Aborted { reason: AbortReason, detail: String },
    /// The producer is unusable and must be recreated.
    Fatal { kind: FatalKind, detail: String },
}

impl TxnFailure {
    /// What happened, for logs.
    pub fn detail(&self) -> &str {
        match self {
            TxnFailure::Aborted { detail, .. } | TxnFailure::Fatal { detail, .. } => detail,
        }
    }

    pub(crate) fn aborted(reason: AbortReason, detail: impl Into<String>) -> Self {
        TxnFailure::Aborted {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn fatal(kind: FatalKind, detail: impl Into<String>) -> Self {
        TxnFailure::Fatal {
            kind,
            detail: detail.into(),
        }
    }
}

/// What to do with a failed transactional call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retry,
    Abort,
    Fatal(FatalKind),
}

/// Classifies a transactional error the way librdkafka asks callers to (never `expect()`), by
/// its flags and error code.
pub fn classify(err: &KafkaError) -> ErrorClass {
    let fenced = matches!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Fenced)
            | Some(RDKafkaErrorCode::ProducerFenced)
            | Some(RDKafkaErrorCode::InvalidProducerEpoch)
    );
    match err {
        KafkaError::Transaction(e) if e.is_fatal() => ErrorClass::Fatal(if fenced {
            FatalKind::Fenced
        } else {
            FatalKind::Other
        }),
        KafkaError::Transaction(e) if e.txn_requires_abort() => ErrorClass::Abort,
        KafkaError::Transaction(e) if e.is_retriable() => ErrorClass::Retry,
        _ if fenced => ErrorClass::Fatal(FatalKind::Fenced),
        // rust-rdkafka's `commit_transaction` flushes first and reports a flush that did not
        // finish in time as this; librdkafka's own commit reports the same as a retriable
        // timeout, and the commit may be made again (e.g. once the brokers are back).
        KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut) => ErrorClass::Retry,
        _ => ErrorClass::Abort,
    }
}
