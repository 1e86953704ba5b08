//! Checkpoints of the task manager's partitions, from committed state only: built a chunk of
//! customers per turn at commit boundaries for an active partition whose state changed (every
//! [`CHECKPOINT_INTERVAL`]), whole at revocation (after the revocation commit) and at shutdown
//! (after the last commit), and written on background threads so that the loop never waits for
//! the disk (see the parent module).

use super::{unix_now, TaskManager};
use crate::checkpoint::{CheckpointWriter, CHECKPOINT_INTERVAL};
use crate::task::PartitionTask;
use crate::txn::lock;
use journey_engine::Engine;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Instant, SystemTime};

/// Customers exported per turn of the loop while building a checkpoint.
const SNAPSHOT_CUSTOMERS_PER_STEP: usize = 20_000;

/// A checkpoint being built, a chunk of customers per turn.
pub(super) struct Snapshot {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) ids: Vec<String>,
    pub(super) next: usize,
    pub(super) writer: CheckpointWriter,
    pub(super) started: Instant,
}

impl TaskManager {
    /// Checkpoint work for one turn of the loop. Only call when the engines hold committed
    /// state (no transaction open, no failure pending): every customer exported here is
    /// committed.
    ///
    /// A checkpoint of a large partition is built over several turns, a chunk of customers per
    /// turn, each at a commit boundary, so that the loop never stalls: the changelog offset
    /// recorded is the changelog's end when the first chunk was taken, so replaying from it
    /// covers every change made to customers exported in later chunks. The file is written and
    /// flushed on a background thread.
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
            let ids: Vec<String> = task.engine.customer_ids().map(str::to_owned).collect();
            self.snapshot = Some(Snapshot {
                partition: p,
                offset,
                writer: CheckpointWriter::new(ids.len() * 160),
                ids,
                next: 0,
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
            let end = (snapshot.next + SNAPSHOT_CUSTOMERS_PER_STEP).min(snapshot.ids.len());
            let writer = &mut snapshot.writer;
            let ids = &snapshot.ids[snapshot.next..end];
            let ok = catch_unwind(AssertUnwindSafe(|| {
                for id in ids {
                    writer.customer_with(id, |buf| engine.export_customer_into(id, buf));
                }
            }))
            .is_ok();
            snapshot.next = end;
            ok
        };
        if !exported {
            self.metrics.checkpoint_write_failed();
            tracing::error!(partition = p, "the engine failed exporting a checkpoint");
            self.mark_dirty(p);
            return;
        }
        if snapshot.next < snapshot.ids.len() {
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

/// Every customer of `engine` in a checkpoint writer (`None` when the engine failed).
fn export_all(engine: &Engine) -> Option<CheckpointWriter> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut writer = CheckpointWriter::new(engine.customer_count() * 160);
        for id in engine.customer_ids() {
            writer.customer_with(id, |buf| engine.export_customer_into(id, buf));
        }
        writer
    }))
    .ok()
}
