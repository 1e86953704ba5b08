//! Offset bookkeeping for the consume → process → produce transaction.
//!
//! Two views per input partition are kept:
//! - `pending`: the next offset to consume after the records processed inside the open
//!   transaction. These go to `send_offsets_to_transaction`, so they become the group's committed
//!   offsets exactly when the outputs of those records become visible.
//! - `committed`: the next offset after the last successful commit (or the group's committed
//!   offset fetched at assignment). After an aborted transaction the consumer seeks back here, and
//!   the engines are restored from the changelog, which holds the state as of that same commit.

use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::BTreeMap;

/// An input partition: topic and partition number.
pub type TopicPartition = (String, i32);

/// Processed and committed positions of the input partitions this instance owns.
#[derive(Debug, Default, Clone)]
pub struct OffsetBook {
    pending: BTreeMap<TopicPartition, i64>,
    committed: BTreeMap<TopicPartition, Option<i64>>,
}

impl OffsetBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking a newly assigned partition whose group offset is `committed` (`None`
    /// when the group has no offset yet, i.e. consumption starts at `auto.offset.reset`).
    pub fn assign(&mut self, topic: &str, partition: i32, committed: Option<i64>) {
        self.committed
            .insert((topic.to_owned(), partition), committed);
    }

    /// Stops tracking a revoked partition.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        let key = (topic.to_owned(), partition);
        self.pending.remove(&key);
        self.committed.remove(&key);
    }

    /// Records that the record at `offset` was processed inside the open transaction.
    pub fn processed(&mut self, topic: &str, partition: i32, offset: i64) {
        let next = offset + 1;
        let entry = self
            .pending
            .entry((topic.to_owned(), partition))
            .or_insert(next);
        // Offsets only move forward inside one transaction; a stale record (which the consumer
        // never hands out after a seek) must not move the committed position back.
        if next > *entry {
            *entry = next;
        }
    }

    /// True when records were processed since the last commit.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The offsets to send with the transaction: next offset to consume per partition.
    pub fn pending_list(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in &self.pending {
            // Only fails for a logical offset conversion, never for an absolute one.
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        tpl
    }

    /// The offsets to send with a transaction: the pending position of every partition
    /// processed in it, and the (unchanged) committed position of the others when known.
    ///
    /// Sending offsets even for a transaction that only fired timers ties every transaction to
    /// the group generation (KIP-447): an instance that lost its partitions without noticing
    /// cannot commit timer output for customers that another instance now owns.
    pub fn commit_list(&self) -> TopicPartitionList {
        let mut tpl = self.pending_list();
        for ((topic, partition), committed) in &self.committed {
            if let (Some(next), false) = (
                committed,
                self.pending.contains_key(&(topic.clone(), *partition)),
            ) {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
            }
        }
        tpl
    }

    /// The transaction committed: the pending positions are now the committed ones.
    pub fn commit(&mut self) {
        for (key, next) in std::mem::take(&mut self.pending) {
            // A partition revoked meanwhile has no committed entry and stays forgotten.
            if let Some(slot) = self.committed.get_mut(&key) {
                *slot = Some(next);
            }
        }
    }

    /// The transaction aborted: the processed positions are forgotten.
    pub fn abort(&mut self) {
        self.pending.clear();
    }

    /// Where each owned partition must be rewound to after an abort: the committed offset, or
    /// the beginning when the group never committed one (`auto.offset.reset=earliest`).
    pub fn rewind_list(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), committed) in &self.committed {
            let offset = match committed {
                Some(next) => Offset::Offset(*next),
                None => Offset::Beginning,
            };
            let _ = tpl.add_partition_offset(topic, *partition, offset);
        }
        tpl
    }

    /// Committed position of one partition, if tracked and known.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.committed
            .get(&(topic.to_owned(), partition))
            .copied()
            .flatten()
    }

    /// The partitions tracked.
    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.committed.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(tpl: &TopicPartitionList) -> Vec<(String, i32, Offset)> {
        tpl.elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect()
    }

    #[test]
    fn pending_offsets_are_next_to_consume_and_move_forward_only() {
        let mut book = OffsetBook::new();
        book.assign("events", 0, None);
        book.processed("events", 0, 10);
        book.processed("events", 0, 12);
        book.processed("events", 0, 11);
        assert!(book.has_pending());
        assert_eq!(
            offsets(&book.pending_list()),
            vec![("events".to_owned(), 0, Offset::Offset(13))]
        );
    }

    #[test]
    fn commit_moves_pending_to_committed_and_abort_forgets_it() {
        let mut book = OffsetBook::new();
        book.assign("events", 0, Some(5));
        book.assign("events", 1, None);
        book.processed("events", 0, 5);
        book.commit();
        assert!(!book.has_pending());
        assert_eq!(book.committed("events", 0), Some(6));
        book.processed("events", 0, 6);
        book.processed("events", 1, 0);
        book.abort();
        assert!(!book.has_pending());
        assert_eq!(
            offsets(&book.rewind_list()),
            vec![
                ("events".to_owned(), 0, Offset::Offset(6)),
                ("events".to_owned(), 1, Offset::Beginning),
            ]
        );
    }

    #[test]
    fn commit_list_carries_pending_and_known_committed_positions() {
        let mut book = OffsetBook::new();
        book.assign("events", 0, Some(7));
        book.assign("events", 1, None);
        book.assign("events", 2, Some(3));
        assert_eq!(
            offsets(&book.commit_list()),
            vec![
                ("events".to_owned(), 0, Offset::Offset(7)),
                ("events".to_owned(), 2, Offset::Offset(3)),
            ]
        );
        book.processed("events", 2, 9);
        let mut list = offsets(&book.commit_list());
        list.sort_by_key(|(_, p, _)| *p);
        assert_eq!(
            list,
            vec![
                ("events".to_owned(), 0, Offset::Offset(7)),
                ("events".to_owned(), 2, Offset::Offset(10)),
            ]
        );
    }

    #[test]
    fn revoked_partition_is_not_resurrected_by_a_later_commit() {
        let mut book = OffsetBook::new();
        book.assign("events", 2, Some(1));
        book.processed("events", 2, 1);
        book.revoke("events", 2);
        book.commit();
        assert_eq!(book.committed("events", 2), None);
        assert_eq!(book.partitions().count(), 0);
        assert!(book.pending_list().elements().is_empty());
    }
}
