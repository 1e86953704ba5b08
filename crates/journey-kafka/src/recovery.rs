//! Recovery policy: what to do after a failed transaction.
//!
//! Whatever failed, the engines hold state that never reached Kafka, so every owned partition
//! is rewound to its committed offset and restored (from its checkpoint, which only ever holds
//! committed state, and the changelog after it). On top of that the producer is rebuilt when it
//! is unusable (fenced, fatal) or when transactions keep aborting without a commit in between
//! (a producer whose epoch the broker no longer accepts loops on aborts otherwise).

use crate::txn::{FatalKind, TxnFailure};

/// Aborts in a row, without a commit in between, after which the producer is rebuilt.
pub const ABORTS_BEFORE_REBUILD: u32 = 3;

/// Why the producer is rebuilt (the `reason` label of `journeyd_producer_recreated_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildReason {
    Fenced,
    Fatal,
    RepeatedAborts,
}

impl RebuildReason {
    pub fn label(self) -> &'static str {
        match self {
            RebuildReason::Fenced => "fenced",
            RebuildReason::Fatal => "fatal",
            RebuildReason::RepeatedAborts => "repeated_aborts",
        }
    }
}

/// What recovery does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Rebuild the producer first (fencing the old one), or keep it.
    pub rebuild: Option<RebuildReason>,
}

/// Decides the recovery of `failure`, the `aborts_in_a_row`-th failure since the last commit
/// (counting this one).
pub fn decide(failure: &TxnFailure, aborts_in_a_row: u32) -> Recovery {
    let rebuild = match failure {
        TxnFailure::Fatal {
            kind: FatalKind::Fenced,
            ..
        } => Some(RebuildReason::Fenced),
        TxnFailure::Fatal {
            kind: FatalKind::Other,
            ..
        } => Some(RebuildReason::Fatal),
        TxnFailure::Aborted { .. } if aborts_in_a_row >= ABORTS_BEFORE_REBUILD => {
            Some(RebuildReason::RepeatedAborts)
        }
        TxnFailure::Aborted { .. } => None,
    };
    Recovery { rebuild }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::AbortReason;

    #[test]
    fn fatal_failures_rebuild_the_producer_and_aborts_only_when_repeated() {
        let fenced = TxnFailure::Fatal {
            kind: FatalKind::Fenced,
            detail: "commit: whatever the text says".into(),
        };
        assert_eq!(decide(&fenced, 1).rebuild, Some(RebuildReason::Fenced));
        let fatal = TxnFailure::Fatal {
            kind: FatalKind::Other,
            detail: "fenced appears in this text but the kind decides".into(),
        };
        assert_eq!(decide(&fatal, 1).rebuild, Some(RebuildReason::Fatal));
        let aborted = TxnFailure::Aborted {
            reason: AbortReason::Produce,
            detail: "produce".into(),
        };
        assert_eq!(decide(&aborted, 1).rebuild, None);
        assert_eq!(decide(&aborted, ABORTS_BEFORE_REBUILD - 1).rebuild, None);
        assert_eq!(
            decide(&aborted, ABORTS_BEFORE_REBUILD).rebuild,
            Some(RebuildReason::RepeatedAborts)
        );
    }
}
