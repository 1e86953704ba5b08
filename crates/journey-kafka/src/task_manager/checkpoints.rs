//! Checkpoints of the task manager's partitions, from committed state only: built a chunk of
//! customers per turn at commit boundaries for an active partition whose state changed (every
//! [`CHECKPOINT_INTERVAL`]), whole at revocation (after the revocation commit) and at shutdown
//! (after the last commit), and written on background threads so that the loop never waits for
//! the disk (see the parent module).
//!
//! A checkpoint built over several turns walks the engine's customer slots with a cursor
//! ([`Engine::customers_in_slots`]): no customer id is copied, and each turn scans a bounded
//! number of slots and exports a bounded number of customers, however large the partition.

use super::{unix_now, TaskManager};
use crate::checkpoint::{CheckpointWriter, CHECKPOINT_INTERVAL};
use crate::task::PartitionTask;
use crate::txn::lock;
use journey_engine::Engine;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Instant, SystemTime};

/// Customers exported per turn of the loop while building a checkpoint.
const SNAPSHOT_CUSTOMERS_PER_STEP: usize = 20_000;

/// Customer slots scanned per turn of the loop while building a checkpoint, held or empty: an
/// engine left sparse by removed customers still takes a bounded time per turn.
const SNAPSHOT_SLOTS_PER_STEP: usize = 4 * SNAPSHOT_CUSTOMERS_PER_STEP;

/// The checkpoint buffer reserved per customer: checkpoints measure 87 to 105 bytes per
/// customer (id and state), and a little more keeps the buffer from doubling near the end.
const CHECKPOINT_BYTES_PER_CUSTOMER: usize = 112;

/// A checkpoint being built, a chunk of customers per turn.
pub(super) struct Snapshot {
    pub(super) partition: i32,
    /// The changelog's end when the walk started.
    pub(super) offset: i64,
    /// The next customer slot to walk.
    pub(super) next: usize,
    /// The engine's slot count when the walk started: every customer held then is in a slot
    /// below it (one in a slot past it was added later, and the replay covers it).
    pub(super) end: usize,
    pub(super) writer: CheckpointWriter,
    pub(super) started: Instant,
}

impl TaskManager {
    /// Checkpoint work for one turn of the loop. Only call when the engines hold committed
    /// state (no transaction open, no failure pending): every customer exported here is
    /// committed.
    ///
    /// A checkpoint of a large partition is built over several turns, each at a commit
    /// boundary, so that the loop never stalls: the first turn reads the changelog's end and the
    /// engine's slot count, and each later one walks the next [`SNAPSHOT_SLOTS_PER_STEP`] slots
    /// at most, exporting [`SNAPSHOT_CUSTOMERS_PER_STEP`] customers at most, until the cursor
    /// reaches that slot count. The changelog offset recorded is the changelog's end when the
    /// walk started, so replaying from it covers every change made after: a customer exported in
    /// a later chunk has committed state (and its changes since the start are in the replay),
    /// and a customer added after the start is covered by the replay whether or not the walk
    /// visits it (it may take a slot the walk has yet to reach). A customer held throughout
    /// keeps its slot, so it is exported exactly once; one removed is not exported after its
    /// removal (the replay ends with its tombstone). The file is written and flushed on a
    /// background thread.
    pub fn checkpoint_due(&mut self) {
        self.collect_writes();
        if self.snapshot.is_none() {
            let due = lock(&self.tasks)
                .values()
                .filter(|t| {
                    t.is_active() && t.dirty && t.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
                })
                .min_by_key(|t| t.last_checkpoint)
                .map(|t| t.partition);
            let Some(p) = due else {
                return;
            };
            let Some(offset) = self.changelog_end(p) else {
                return;
            };
            let mut tasks = lock(&self.tasks);
            let Some(task) = tasks.get_mut(&p) else {
                return;
            };
            // Changes from now on make the partition due again.
            task.dirty = false;
            task.last_checkpoint = Instant::now();
            self.snapshot = Some(Snapshot {
                partition: p,
                offset,
                writer: CheckpointWriter::new(
                    task.engine.customer_count() * CHECKPOINT_BYTES_PER_CUSTOMER,
                ),
                next: 0,
                end: task.engine.slot_count(),
                started: Instant::now(),
            });
            return;
        }
        let Some(mut snapshot) = self.snapshot.take() else {
            return;
        };
        let p = snapshot.partition;
        let exported = {
            let tasks = lock(&self.tasks);
            let Some(task) = tasks.get(&p).filter(|t| t.is_active()) else {
                // Revoked or restoring again: this snapshot is abandoned.
                return;
            };
            let engine = &task.engine;
            let writer = &mut snapshot.writer;
            let from = snapshot.next;
            let to = (from + SNAPSHOT_SLOTS_PER_STEP).min(snapshot.end);
            let next = catch_unwind(AssertUnwindSafe(|| {
                export_slots(engine, writer, from..to, SNAPSHOT_CUSTOMERS_PER_STEP)
            }));
            next.map(|next| snapshot.next = next).is_ok()
        };
        if !exported {
            self.metrics.checkpoint_write_failed();
            tracing::error!(partition = p, "the engine failed exporting a checkpoint");
            self.mark_dirty(p);
            return;
        }
        if snapshot.next < snapshot.end {
            self.snapshot = Some(snapshot);
            return;
        }
        let bytes = snapshot
            .writer
            .finish(self.store.id(p), snapshot.offset, SystemTime::now());
        self.write_in_background(p, bytes, snapshot.started);
    }

    /// Writes the checkpoint of every active partition whose state changed, at once (shutdown,
    /// after the last commit), and waits for every checkpoint file being written.
    pub fn checkpoint_all(&mut self) {
        self.snapshot = None;
        let dirty: Vec<i32> = lock(&self.tasks)
            .values()
            .filter(|t| t.is_active() && t.dirty)
            .map(|t| t.partition)
            .collect();
        for p in dirty {
            let Some(offset) = self.changelog_end(p) else {
                continue;
            };
            let started = Instant::now();
            let bytes = {
                let mut tasks = lock(&self.tasks);
                let Some(task) = tasks.get_mut(&p) else {
                    continue;
                };
                task.dirty = false;
                match export_all(&task.engine) {
                    Some(writer) => writer.finish(self.store.id(p), offset, SystemTime::now()),
                    None => {
                        self.metrics.checkpoint_write_failed();
                        continue;
                    }
                }
            };
            self.write_in_background(p, bytes, started);
        }
        self.wait_for_writes();
    }

    /// A revoked partition's checkpoint: its engine, holding committed state, is exported and
    /// written on a background thread.
    pub(super) fn checkpoint_revoked(&mut self, task: PartitionTask) {
        let p = task.partition;
        if !task.is_active() || !task.dirty {
            return;
        }
        let Some(offset) = self.changelog_end(p) else {
            return;
        };
        let store = self.store.clone();
        let results = self.results.clone();
        let started = Instant::now();
        let handle = std::thread::Builder::new()
            .name(format!("checkpoint-{p}"))
            .spawn(move || {
                let result = match export_all(&task.engine) {
                    Some(writer) => {
                        let bytes = writer.finish(store.id(p), offset, SystemTime::now());
                        store.write(p, &bytes)
                    }
                    None => Err(std::io::Error::other("the engine failed exporting")),
                };
                let _ = results.send((p, result, started.elapsed().as_secs_f64(), false));
            });
        match handle {
            Ok(h) => self.writers.push(h),
            Err(e) => tracing::warn!(partition = p, error = %e, "checkpoint thread not started"),
        }
    }

    pub(super) fn write_in_background(&mut self, p: i32, bytes: Vec<u8>, started: Instant) {
        let store = self.store.clone();
        let results = self.results.clone();
        let handle = std::thread::Builder::new()
            .name(format!("checkpoint-{p}"))
            .spawn(move || {
                let result = store.write(p, &bytes);
                let _ = results.send((p, result, started.elapsed().as_secs_f64(), true));
            });
        match handle {
            Ok(h) => self.writers.push(h),
            Err(e) => {
                self.metrics.checkpoint_write_failed();
                tracing::warn!(partition = p, error = %e, "checkpoint thread not started");
                self.mark_dirty(p);
            }
        }
    }

    /// Handles finished checkpoint writes.
    pub(super) fn collect_writes(&mut self) {
        self.writers.retain(|h| !h.is_finished());
        while let Ok((p, result, seconds, owned)) = self.done.try_recv() {
            match result {
                Ok(size) => {
                    if owned {
                        self.metrics
                            .checkpoint_written(p, unix_now(), size, seconds);
                    }
                    tracing::debug!(
                        partition = p,
                        bytes = size,
                        millis = (seconds * 1000.0) as u64,
                        "checkpoint written"
                    );
                }
                Err(e) => {
                    self.metrics.checkpoint_write_failed();
                    tracing::warn!(partition = p, file = %self.store.path(p).display(), error = %e, "checkpoint not written");
                    if owned {
                        self.mark_dirty(p);
                    }
                }
            }
        }
    }

    /// Waits for every checkpoint file being written (end of a session).
    pub(super) fn wait_for_writes(&mut self) {
        for h in self.writers.drain(..) {
            let _ = h.join();
        }
        self.collect_writes();
    }

    pub(super) fn mark_dirty(&self, p: i32) {
        if let Some(task) = lock(&self.tasks).get_mut(&p) {
            task.dirty = true;
        }
    }
}

/// Adds the customers of `engine` held in `slots` to `writer`, `max` of them at most, and
/// returns the slot to go on from (`slots.end` when every slot was walked).
fn export_slots(
    engine: &Engine,
    writer: &mut CheckpointWriter,
    slots: Range<usize>,
    max: usize,
) -> usize {
    for (exported, (slot, id)) in engine.customers_in_slots(slots.clone()).enumerate() {
        if exported == max {
            return slot;
        }
        writer.customer_with(id, |buf| engine.export_customer_into(id, buf));
    }
    slots.end
}

/// Every customer of `engine` in a checkpoint writer (`None` when the engine failed).
fn export_all(engine: &Engine) -> Option<CheckpointWriter> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut writer =
            CheckpointWriter::new(engine.customer_count() * CHECKPOINT_BYTES_PER_CUSTOMER);
        export_slots(engine, &mut writer, 0..engine.slot_count(), usize::MAX);
        writer
    }))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, CheckpointId};
    use journey_engine::{Catalog, Effects, Event};
    use journey_spec::Config;
    use std::sync::Arc;

    fn engine(customers: usize) -> Engine {
        let mut e = Engine::new(Arc::new(Catalog::new(&Config::example(), Vec::new())));
        for i in 0..customers {
            add(&mut e, &format!("c{i}"));
        }
        e
    }

    fn add(e: &mut Engine, customer: &str) {
        let event = Event {
            event_id: format!("{customer}-1"),
            customer_id: customer.into(),
            event_type: "noise".into(),
            timestamp: "2026-11-23T10:00:00Z".parse().expect("a time"),
            properties: Default::default(),
        };
        e.handle(&event, event.timestamp, &mut Effects::default());
    }

    fn id() -> CheckpointId {
        CheckpointId {
            group_id: "g".into(),
            state_topic: "s".into(),
            partition: 0,
        }
    }

    /// The customer ids in a finished checkpoint, in file order.
    fn ids(writer: CheckpointWriter) -> Vec<String> {
        let bytes = writer.finish(id(), 0, SystemTime::now());
        let mut c = Checkpoint::parse(bytes, &id()).expect("a valid checkpoint");
        let mut out = Vec::new();
        while c
            .next_batch(100, |k, _| {
                out.push(k.to_owned());
                Ok(())
            })
            .expect("reads")
            > 0
        {}
        out
    }

    #[test]
    fn a_step_bounds_the_customers_exported_and_resumes_after_them() {
        let e = engine(10);
        let mut w = CheckpointWriter::new(0);
        assert_eq!(export_slots(&e, &mut w, 0..8, 3), 3);
        assert_eq!(export_slots(&e, &mut w, 3..8, 3), 6);
        assert_eq!(export_slots(&e, &mut w, 6..8, 3), 8);
        assert_eq!(export_slots(&e, &mut w, 8..16, 3), 16);
        let expected: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        assert_eq!(ids(w), expected);
    }

    #[test]
    fn a_sparse_engine_is_walked_by_slots_not_by_customers() {
        let mut e = engine(100);
        for i in 1..99 {
            e.remove_customer(&format!("c{i}"));
        }
        let mut w = CheckpointWriter::new(0);
        let mut at = 0;
        let mut steps = 0;
        while at < e.slot_count() {
            at = export_slots(&e, &mut w, at..(at + 10).min(e.slot_count()), 5);
            steps += 1;
        }
        assert_eq!(steps, 10, "ten steps of ten slots");
        assert_eq!(ids(w), ["c0", "c99"]);
    }

    #[test]
    fn customers_held_throughout_are_exported_once_whatever_changes_between_steps() {
        let mut e = engine(20);
        let end = e.slot_count();
        let mut w = CheckpointWriter::new(0);
        let mut at = export_slots(&e, &mut w, 0..8, 4);
        assert_eq!(at, 4);
        // One removed behind the cursor, one ahead of it; their slots are reused.
        e.remove_customer("c1");
        e.remove_customer("c10");
        add(&mut e, "new1");
        add(&mut e, "new2");
        add(&mut e, "new3");
        while at < end {
            at = export_slots(&e, &mut w, at..(at + 8).min(end), 4);
        }
        let got = ids(w);
        assert!(
            !got.contains(&"c10".to_owned()),
            "removed before its slot was walked"
        );
        for i in (0..20).filter(|i| ![1, 10].contains(i)) {
            let c = format!("c{i}");
            assert_eq!(got.iter().filter(|g| **g == c).count(), 1, "{c} once");
        }
        // The new customer in a slot past the walk's end is left to the changelog replay.
        assert!(!got.contains(&"new3".to_owned()));
    }
}
