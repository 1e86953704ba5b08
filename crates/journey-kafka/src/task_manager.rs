//! The task manager (Kafka Streams' `TaskManager`): owns the partition tasks and everything
//! about their life cycle: assignment, revocation, restore (from a local checkpoint, then the
//! changelog after it) and checkpoints.
//!
//! A restore never blocks the poll loop: a newly assigned partition is paused on the group
//! consumer (by the rebalance callback, before its first fetch), and [`TaskManager::step_restore`]
//! does a bounded amount of restore work per turn of the loop: a batch of checkpoint customers,
//! then a batch of changelog records. The group consumer is polled between two steps, so the
//! membership is kept however long the restore takes, and the other partitions keep
//! processing. When a partition is caught up it becomes active, readiness no longer waits for
//! it, and it is resumed.
//!
//! Checkpoints are written only from committed state: a chunk of customers per turn at commit
//! boundaries (no transaction open; the stream thread asks only then), for an active partition
//! whose state changed, every [`CHECKPOINT_INTERVAL`]; at revocation after the revocation
//! commit (on a background thread, with the revoked engine); at shutdown after the last commit.
//! The changelog offset recorded is the changelog's end as read before the walk over the
//! engine's customers started, so replaying from it never misses a change (replaying a record
//! already in the checkpoint is harmless: the last record of a customer wins). Files are written on
//! background threads, so the loop never waits for the disk.
//!
//! The checkpoint half lives in [`checkpoints`].
//!
//! The tasks sit behind a mutex only because the rebalance callback (which runs on the same
//! thread, inside `poll`) commits the open transaction and reads the changed customers' state
//! for the changelog; the lock is never contended. One task manager serves one stream thread;
//! several stream threads would each have their own, over disjoint partitions.

mod checkpoints;

use crate::checkpoint::{CheckpointStore, Fallback, CHECKPOINT_INTERVAL, MAX_CHECKPOINT_AGE};
use crate::context::SharedExport;
use crate::health::WorkerHealth;
use crate::metrics::WorkerMetrics;
use crate::offsets::TopicPartition;
use crate::restore::{apply_record, RestoreError, Restorer};
use crate::task::{panic_message, PartitionTask, Phase, Restore, TaskState};
use crate::txn::lock;
use checkpoints::Snapshot;
use journey_engine::{Catalog, Engine};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// The assigned partitions' tasks, by partition number.
pub type Tasks = Arc<Mutex<BTreeMap<i32, PartitionTask>>>;

/// Restore work per turn of the poll loop: at most this long...
const RESTORE_STEP: Duration = Duration::from_millis(50);
/// ...and at most this many changelog records...
const RESTORE_RECORDS_PER_STEP: usize = 20_000;
/// ...and this many checkpoint customers per partition.
const CHECKPOINT_CUSTOMERS_PER_STEP: usize = 20_000;
/// How long a restore step may wait for the first changelog record.
const RESTORE_WAIT: Duration = Duration::from_millis(5);

/// What the task manager needs from the session.
pub struct TaskManagerSetup {
    pub restorer: Restorer,
    pub store: CheckpointStore,
    pub catalog: Arc<Catalog>,
    pub metrics: WorkerMetrics,
    pub health: WorkerHealth,
    pub cancel: CancellationToken,
}

/// A finished checkpoint write: partition, size or error, seconds, and whether the partition
/// is still owned (its gauges are set).
pub(super) type WriteResult = (i32, std::io::Result<u64>, f64, bool);

pub struct TaskManager {
    tasks: Tasks,
    snapshot: Option<Snapshot>,
    writers: Vec<std::thread::JoinHandle<()>>,
    results: std::sync::mpsc::Sender<WriteResult>,
    done: std::sync::mpsc::Receiver<WriteResult>,
    restorer: Restorer,
    store: CheckpointStore,
    catalog: Arc<Catalog>,
    metrics: WorkerMetrics,
    health: WorkerHealth,
    cancel: CancellationToken,
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl TaskManager {
    pub fn new(setup: TaskManagerSetup) -> TaskManager {
        let (results, done) = std::sync::mpsc::channel();
        TaskManager {
            tasks: Arc::new(Mutex::new(BTreeMap::new())),
            snapshot: None,
            writers: Vec::new(),
            results,
            done,
            restorer: setup.restorer,
            store: setup.store,
            catalog: setup.catalog,
            metrics: setup.metrics,
            health: setup.health,
            cancel: setup.cancel,
        }
    }

    /// The tasks (for the stream thread's processing and for inspection).
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Reads customers' state from the engines for the changelog entries written at commit
    /// (called from the consumer context, also inside the rebalance callback).
    pub fn exporter(&self) -> SharedExport {
        let tasks = Arc::clone(&self.tasks);
        Box::new(move |partition, customer| {
            // The stream thread never holds the lock while committing or polling; a busy lock
            // would be a mistake, which must abort the transaction (then recover) rather than
            // hang.
            let tasks = match tasks.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return Err("engines busy".to_owned()),
            };
            let task = tasks
                .get(&partition)
                .ok_or_else(|| format!("partition {partition} is not owned"))?;
            catch_unwind(AssertUnwindSafe(|| task.engine.export_customer(customer))).map_err(
                |panic| {
                    format!(
                        "engine failure exporting a customer: {}",
                        panic_message(&panic)
                    )
                },
            )
        })
    }

    /// Swaps the journey set of every task (and of the tasks created from now on).
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) -> usize {
        let mut tasks = lock(&self.tasks);
        for task in tasks.values_mut() {
            task.engine.set_catalog(Arc::clone(&catalog));
            task.timer_failures = 0;
        }
        self.catalog = catalog;
        tasks.len()
    }

    /// Whether any partition is restoring.
    pub fn is_restoring(&self) -> bool {
        lock(&self.tasks).values().any(|t| !t.is_active())
    }

    /// Partitions were assigned: new partition numbers get a task and start restoring (they
    /// were paused and marked not ready by the rebalance callback).
    pub fn assigned(&mut self, partitions: &[TopicPartition]) -> Result<(), RestoreError> {
        let mut new = BTreeSet::new();
        {
            let mut tasks = lock(&self.tasks);
            for (topic, p) in partitions {
                let task = tasks.entry(*p).or_insert_with(|| {
                    new.insert(*p);
                    PartitionTask::new(*p, Arc::clone(&self.catalog), placeholder_restore())
                });
                task.topics.insert(topic.clone());
            }
        }
        for p in new {
            self.begin_restore(p)?;
        }
        self.report_counts();
        Ok(())
    }

    /// Partitions were revoked. A partition number with no topic left is dropped; when its
    /// state is the committed one (`committed`) and changed since its last checkpoint, a
    /// checkpoint is written first, so that getting it back later is quick.
    pub fn revoked(&mut self, partitions: &[TopicPartition], committed: bool) {
        let mut gone = Vec::new();
        {
            let mut tasks = lock(&self.tasks);
            for (topic, p) in partitions {
                self.metrics.forget_partition(topic, *p);
                if let Some(task) = tasks.get_mut(p) {
                    task.topics.remove(topic);
                    if task.topics.is_empty() {
                        gone.push(*p);
                    }
                }
            }
        }
        for p in gone {
            self.restorer.stop(p);
            if self.snapshot.as_ref().is_some_and(|s| s.partition == p) {
                self.snapshot = None;
            }
            let task = lock(&self.tasks).remove(&p);
            if let (Some(task), true) = (task, committed) {
                self.checkpoint_revoked(task);
            }
            self.health.partition_revoked(p);
            self.metrics.set_partition_state(p, 0, 0);
            self.metrics.restore_ended(p);
        }
        self.report_counts();
    }

    /// After a failed transaction: every task's engine holds state that never reached Kafka.
    /// Each one restores again (its checkpoint holds committed state only). The caller has
    /// paused and rewound the partitions.
    pub fn restore_all(&mut self) -> Result<(), RestoreError> {
        let owned: Vec<i32> = lock(&self.tasks).keys().copied().collect();
        for p in owned {
            self.begin_restore(p)?;
        }
        self.report_counts();
        Ok(())
    }

    /// The input partitions of every task, to pause or rewind them together.
    pub fn assignment(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for task in lock(&self.tasks).values() {
            for topic in &task.topics {
                tpl.add_partition(topic, task.partition);
            }
        }
        tpl
    }

    /// Starts (or restarts) the restore of partition `p` on an empty engine: from a valid
    /// checkpoint and the changelog after it, else from the whole changelog.
    fn begin_restore(&mut self, p: i32) -> Result<(), RestoreError> {
        self.restorer.stop(p);
        // A checkpoint being built walks this partition's engine by slot number; the restored
        // engine holds its customers in other slots, so that walk cannot go on (its next step
        // would not notice a restore that is already over).
        if self.snapshot.as_ref().is_some_and(|s| s.partition == p) {
            self.snapshot = None;
        }
        self.health.partition_restoring(p);
        self.metrics.restore_started(p, unix_now());
        let (low, end) = self.restorer.watermarks(p, &self.cancel)?;
        let loaded = self.store.load(p).and_then(|c| {
            let age = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
                - c.header.written_at_ms;
            let offset = c.header.changelog_offset;
            if offset > end || offset < low || age > MAX_CHECKPOINT_AGE.as_millis() as i64 {
                Err(Fallback::Stale)
            } else {
                Ok(c)
            }
        });
        let restore = match loaded {
            Ok(checkpoint) => {
                let offset = checkpoint.header.changelog_offset;
                tracing::info!(
                    partition = p,
                    customers = checkpoint.header.customers,
                    changelog_offset = offset,
                    changelog_end = end,
                    "restoring from the local checkpoint, then the changelog after it"
                );
                Restore {
                    target: checkpoint.header.customers + (end - offset).max(0) as u64,
                    phase: Phase::Checkpoint(Box::new(checkpoint)),
                    started: Instant::now(),
                    from_checkpoint: true,
                    customers: 0,
                    records: 0,
                    undecodable: 0,
                    changelog: (low, end),
                }
            }
            Err(reason) => {
                self.fallback(p, reason);
                Restore {
                    target: (end - low).max(0) as u64,
                    phase: Phase::Changelog { from: low, end },
                    started: Instant::now(),
                    from_checkpoint: false,
                    customers: 0,
                    records: 0,
                    undecodable: 0,
                    changelog: (low, end),
                }
            }
        };
        let replay = match &restore.phase {
            Phase::Changelog { from, end } => Some((*from, *end)),
            Phase::Checkpoint(_) => None,
        };
        // The customer index is sized once for what comes, instead of doubling while it fills.
        let expected = match &restore.phase {
            Phase::Checkpoint(c) => crate::restore::customers_in_checkpoint(c.header.customers),
            Phase::Changelog { from, end } => crate::restore::customers_expected(end - from),
        };
        {
            let mut tasks = lock(&self.tasks);
            if let Some(task) = tasks.get_mut(&p) {
                task.engine = Engine::new(Arc::clone(&self.catalog));
                task.engine.reserve_customers(expected);
                task.state = TaskState::Restoring(restore);
            }
        }
        if let Some((from, end)) = replay {
            self.restorer.start(p, from, end)?;
        }
        Ok(())
    }

    fn fallback(&self, p: i32, reason: Fallback) {
        self.metrics.checkpoint_fallback(reason.label());
        let path = self.store.path(p);
        match reason {
            Fallback::Missing => tracing::info!(
                partition = p,
                "no local checkpoint: restoring from the whole changelog"
            ),
            reason => tracing::warn!(
                partition = p,
                file = %path.display(),
                reason = reason.label(),
                "local checkpoint not usable: restoring from the whole changelog"
            ),
        }
    }

    /// One bounded step of restore work; partitions that caught up become active and are
    /// resumed on `consumer`.
    pub fn step_restore<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), RestoreError> {
        let deadline = Instant::now() + RESTORE_STEP;
        let mut finished: Vec<i32> = Vec::new();
        let mut replays: Vec<(i32, i64, i64)> = Vec::new();
        let mut fallbacks: Vec<(i32, Fallback)> = Vec::new();
        {
            let mut tasks = lock(&self.tasks);
            for task in tasks.values_mut() {
                let TaskState::Restoring(restore) = &mut task.state else {
                    continue;
                };
                let Phase::Checkpoint(checkpoint) = &mut restore.phase else {
                    continue;
                };
                let engine = &mut task.engine;
                let imported = catch_unwind(AssertUnwindSafe(|| {
                    checkpoint.next_batch(CHECKPOINT_CUSTOMERS_PER_STEP, |id, state| {
                        engine
                            .import_customer(id, state)
                            .map_err(|_| Fallback::Undecodable)
                    })
                }))
                .unwrap_or(Err(Fallback::Undecodable));
                match imported {
                    Ok(n) => {
                        restore.customers += n as u64;
                        self.metrics.checkpoint_customers_restored(n as u64);
                        if checkpoint.is_done() {
                            let from = checkpoint.header.changelog_offset;
                            let (_, end) = restore.changelog;
                            tracing::info!(
                                partition = task.partition,
                                customers = restore.customers,
                                millis = restore.started.elapsed().as_millis() as u64,
                                changelog_records = (end - from).max(0),
                                "local checkpoint imported, replaying the changelog after it"
                            );
                            restore.phase = Phase::Changelog { from, end };
                            replays.push((task.partition, from, end));
                        }
                    }
                    Err(reason) => fallbacks.push((task.partition, reason)),
                }
            }
        }
        for (p, reason) in fallbacks {
            // Nothing of a bad checkpoint is kept: the engine starts empty again.
            self.fallback(p, reason);
            let mut tasks = lock(&self.tasks);
            if let Some(task) = tasks.get_mut(&p) {
                task.engine = Engine::new(Arc::clone(&self.catalog));
                if let TaskState::Restoring(restore) = &mut task.state {
                    let (low, end) = restore.changelog;
                    restore.phase = Phase::Changelog { from: low, end };
                    restore.from_checkpoint = false;
                    restore.customers = 0;
                    restore.target = (end - low).max(0) as u64;
                    replays.push((p, low, end));
                }
            }
        }
        for (p, from, end) in replays {
            self.restorer.start(p, from, end)?;
        }
        if self.restorer.is_busy() {
            let mut tasks = lock(&self.tasks);
            let step = self.restorer.step(
                RESTORE_RECORDS_PER_STEP,
                RESTORE_WAIT,
                deadline,
                |p, key, value| {
                    let task = tasks.get_mut(&p).filter(|t| !t.is_active())?;
                    let engine = &mut task.engine;
                    Some(
                        catch_unwind(AssertUnwindSafe(|| apply_record(engine, key, value)))
                            .unwrap_or(false),
                    )
                },
            );
            for task in tasks.values_mut() {
                if let TaskState::Restoring(restore) = &mut task.state {
                    restore.records += step.applied.get(&task.partition).copied().unwrap_or(0);
                    restore.undecodable +=
                        step.undecodable.get(&task.partition).copied().unwrap_or(0);
                }
            }
            finished.extend(step.finished);
        }
        // A replay with nothing to read (empty changelog, or a checkpoint at its end) is done
        // as soon as it starts.
        for task in lock(&self.tasks).values() {
            if let TaskState::Restoring(Restore {
                phase: Phase::Changelog { .. },
                ..
            }) = &task.state
            {
                if !self.restorer.is_replaying(task.partition)
                    && !finished.contains(&task.partition)
                {
                    finished.push(task.partition);
                }
            }
        }
        for p in finished {
            self.activate(consumer, p);
        }
        for (p, progress) in self.progress() {
            self.health.restore_progress(p, progress);
            self.metrics
                .restore_progress(p, progress.done, progress.target);
        }
        self.report_counts();
        Ok(())
    }

    fn progress(&self) -> Vec<(i32, crate::http::RestoreProgress)> {
        lock(&self.tasks)
            .values()
            .filter_map(|t| match &t.state {
                TaskState::Restoring(r) => Some((t.partition, r.progress())),
                TaskState::Active => None,
            })
            .collect()
    }

    /// A partition caught up: it processes from now on.
    fn activate<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, p: i32) {
        let mut tasks = lock(&self.tasks);
        let Some(task) = tasks.get_mut(&p) else {
            return;
        };
        let TaskState::Restoring(restore) = std::mem::replace(&mut task.state, TaskState::Active)
        else {
            return;
        };
        let seconds = restore.started.elapsed().as_secs_f64();
        self.metrics.observe_restore(p, seconds, restore.records);
        self.metrics.restore_ended(p);
        if restore.undecodable > 0 {
            tracing::error!(
                partition = p,
                undecodable = restore.undecodable,
                "changelog records could not be decoded; those customers start empty"
            );
        }
        tracing::info!(
            partition = p,
            from_checkpoint = restore.from_checkpoint,
            checkpoint_customers = restore.customers,
            changelog_records = restore.records,
            customers = task.engine.customer_count(),
            millis = (seconds * 1000.0) as u64,
            "partition restored"
        );
        // Unless the restore came whole from a current checkpoint, one is written at the next
        // commit boundary, so that the next restore of this partition is a short one.
        let current = restore.from_checkpoint && restore.records == 0;
        task.dirty = !current;
        task.last_checkpoint = if current {
            Instant::now()
        } else {
            Instant::now()
                .checked_sub(CHECKPOINT_INTERVAL)
                .unwrap_or_else(Instant::now)
        };
        let mut tpl = TopicPartitionList::new();
        for topic in &task.topics {
            tpl.add_partition(topic, p);
        }
        drop(tasks);
        if let Err(e) = consumer.resume(&tpl) {
            tracing::error!(partition = p, error = %e, "resuming a restored partition");
        }
        self.health.partition_ready(p);
    }

    /// The changelog partition's end offset now (`None`, with a warning, when unknown).
    fn changelog_end(&mut self, p: i32) -> Option<i64> {
        match self.restorer.watermarks(p, &self.cancel) {
            Ok((_, end)) => Some(end),
            Err(e) => {
                self.metrics.checkpoint_write_failed();
                tracing::warn!(partition = p, error = %e, "checkpoint not written: changelog end unknown");
                None
            }
        }
    }

    /// Refreshes the assigned/restoring gauges.
    fn report_counts(&self) {
        let tasks = lock(&self.tasks);
        let restoring = tasks.values().filter(|t| !t.is_active()).count();
        self.metrics.set_partitions(tasks.len(), restoring);
    }

    /// Drops every task (end of a session): readiness no longer waits for them.
    pub fn clear(&mut self) {
        self.snapshot = None;
        self.wait_for_writes();
        let mut tasks = lock(&self.tasks);
        for p in tasks.keys() {
            self.health.partition_revoked(*p);
            self.metrics.restore_ended(*p);
        }
        tasks.clear();
        drop(tasks);
        self.report_counts();
    }
}

/// The restore state of a task before [`TaskManager::begin_restore`] fills it in.
fn placeholder_restore() -> Restore {
    Restore {
        phase: Phase::Changelog { from: 0, end: 0 },
        started: Instant::now(),
        from_checkpoint: false,
        customers: 0,
        records: 0,
        undecodable: 0,
        target: 0,
        changelog: (0, 0),
    }
}
