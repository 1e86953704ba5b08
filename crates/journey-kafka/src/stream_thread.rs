//! The stream thread (Kafka Streams' `StreamThread`): the poll loop. It polls the group
//! consumer, hands each record and the due timers of each active partition to its task, drives
//! the transaction, lets the task manager restore and checkpoint between two polls, and applies
//! the recovery policy after a failed transaction.
//!
//! An instance runs `workers` stream threads (Kafka Streams' `num.stream.threads`), each with
//! its own group consumer (a member of the same group, so the group's assignor spreads the
//! partitions over them), transactional producer, restore consumer and task manager: a
//! partition belongs to exactly one of them at a time and moves between two of them exactly as
//! between two instances (revocation commit and checkpoint, then restore). A thread owns its
//! partitions' engines: their customers are only ever touched from that thread, which is what
//! makes the per-partition state a plain map. Worker 0 uses the instance's `transactional.id`
//! and `group.instance.id`, worker `i` appends `-w<i>` ([`crate::clients::worker_id`]).
//!
//! Requests from other threads (hot reload, inspection) arrive on each worker's own channel and
//! are served between two records, so a catalog swap is atomic with respect to record
//! processing; a reload is acknowledged once applied (also between two sessions, where it is
//! kept for the next one).
//!
//! Order of work in one turn of the loop, and why:
//! 1. serve control requests (reload, inspect);
//! 2. `poll` one record (rebalance callbacks run inside it, committing the open transaction
//!    before partitions are revoked, pausing newly assigned ones);
//! 3. act on assignment changes *before* processing the polled record (tasks created, their
//!    restores started; revoked tasks checkpointed and dropped);
//! 4. process the record (or dead-letter it) through its task, unless the task is restoring:
//!    then the consumer is sent back to that record, which comes again once restored;
//! 5. one bounded step of restore work ([`TaskManager::step_restore`]);
//! 6. fire due timers of every active partition through the same task path;
//! 7. commit when the commit interval or record budget is reached, then write a due checkpoint
//!    (committed state only);
//! 8. if a transaction failed, recover ([`crate::recovery`]): rebuild the producer when the
//!    policy says so, pause and rewind every partition to its committed offset and restore
//!    them all, so state and input position agree again.

mod process;

use crate::checkpoint::CheckpointStore;
use crate::clients::{
    client_config, consumer_properties, restore_properties, worker_group_instance_id,
    worker_transactional_id,
};
use crate::context::{RebalanceEvent, RuntimeContext};
use crate::health::WorkerHealth;
use crate::metrics::WorkerMetrics;
use crate::offsets::{OffsetBook, TopicPartition};
use crate::recovery::decide;
use crate::restore::{RestoreError, Restorer};
use crate::task_manager::{TaskManager, TaskManagerSetup};
use crate::txn::{create_producer, lock, AbortReason, BrokerWatch, StallWatch, Txn};
use crate::RuntimeError;
use chrono::Utc;
use journey_engine::{Catalog, Effects};
use journey_spec::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Input records per transaction at most (besides the commit interval), bounding the work
/// redone after an abort.
pub const MAX_RECORDS_PER_TRANSACTION: usize = 5000;
/// Longest `poll` wait: timers are checked at least this often.
const MAX_POLL_WAIT: Duration = Duration::from_millis(50);
/// How often gauges of partition state are refreshed.
const STATE_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// A request served by the stream thread between two records.
pub enum Control {
    /// Swap every partition's journey set; the sender is told once it is applied.
    Reload(Arc<Catalog>, tokio::sync::oneshot::Sender<()>),
    /// Look up one customer in whichever of this worker's partitions holds it.
    Inspect(
        String,
        tokio::sync::oneshot::Sender<Option<serde_json::Value>>,
    ),
}

/// What the stream thread needs.
pub struct StreamThreadSetup {
    /// This stream thread's index, 0 to `workers - 1`: its ids and its part of readiness.
    pub worker: usize,
    pub config: Arc<Config>,
    pub metrics: WorkerMetrics,
    pub health: WorkerHealth,
    pub catalog: Arc<Catalog>,
    pub store: CheckpointStore,
    pub control: Receiver<Control>,
    pub cancel: CancellationToken,
}

/// Sessions that fail in a row, none of them running for [`SESSION_STABLE`], after which the
/// service gives up and exits with an error (its supervisor restarts it).
pub const MAX_SESSION_FAILURES: u32 = 10;
/// A session that ran this long before failing counts as having recovered: the backoff and the
/// failure count start again.
const SESSION_STABLE: Duration = Duration::from_secs(60);

/// Runs sessions (consumer + producer) until cancelled. A session that fails in a way that
/// in-place recovery cannot handle (e.g. a fatal consumer error: the static member fenced after
/// its session timed out while the broker was away) is torn down and started again after a
/// backoff, readiness reporting why meanwhile; only errors that a new session cannot fix, or
/// [`MAX_SESSION_FAILURES`] failed sessions in a row, end the service.
pub fn run(mut setup: StreamThreadSetup) -> Result<(), RuntimeError> {
    let _span = tracing::info_span!("worker", worker = setup.worker).entered();
    let mut backoff = Duration::from_millis(500);
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let result = Session::start(&mut setup).and_then(|mut session| {
            let result = session.run();
            // Dropping the session closes the consumer (and the producer) before a new one
            // joins: nothing of the old member identity is left to race the new one.
            drop(session);
            tracing::info!("consumer closed");
            result
        });
        match result {
            Ok(()) => return Ok(()),
            Err(e) if setup.cancel.is_cancelled() => {
                tracing::warn!(error = %e, "stopped while recovering");
                return Ok(());
            }
            Err(e) if !e.is_retriable() => return Err(e),
            Err(e) => {
                if started.elapsed() >= SESSION_STABLE {
                    failures = 0;
                    backoff = Duration::from_millis(500);
                }
                failures += 1;
                setup.health.session_lost(&e.to_string());
                if failures >= MAX_SESSION_FAILURES {
                    tracing::error!(error = %e, failures, "kafka session failed too often in a row; giving up");
                    return Err(e);
                }
                setup.metrics.session_restarted(e.label());
                tracing::error!(error = %e, failures, retry_in_ms = backoff.as_millis() as u64, "kafka session failed; starting a new one");
                let deadline = Instant::now() + backoff;
                while Instant::now() < deadline && !setup.cancel.is_cancelled() {
                    serve_between_sessions(&mut setup);
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Control requests while no session runs: a reload is kept for the next session (and
/// acknowledged: it is applied from this worker's next record on), an inspection finds nothing
/// here (this worker holds no partition now).
fn serve_between_sessions(setup: &mut StreamThreadSetup) {
    while let Ok(request) = setup.control.try_recv() {
        match request {
            Control::Reload(catalog, applied) => {
                setup.catalog = catalog;
                let _ = applied.send(());
            }
            Control::Inspect(_, reply) => {
                let _ = reply.send(None);
            }
        }
    }
}

struct Session<'s> {
    setup: &'s mut StreamThreadSetup,
    /// Shared only so that a polled record can borrow a handle of its own while the session
    /// is used mutably (records are processed in place, not copied).
    consumer: Arc<BaseConsumer<RuntimeContext>>,
    transactional_id: String,
    tasks: TaskManager,
    effects: Effects,
    /// Records on which the engine failed: dead-lettered when they come again after the
    /// rewind, so one bad record cannot loop the partition forever.
    poisoned: HashMap<(String, i32, i64), String>,
    last_report: Instant,
    /// Transactions aborted since the last successful commit.
    aborts_since_commit: u32,
}

impl<'s> Session<'s> {
    fn start(setup: &'s mut StreamThreadSetup) -> Result<Self, RuntimeError> {
        let config = Arc::clone(&setup.config);
        let worker = setup.worker;
        let transactional_id = worker_transactional_id(&config.kafka, worker);
        let restorer = Restorer::new(
            &restore_properties(&config.kafka),
            &config.kafka.state_topic,
        )?;
        let tasks = TaskManager::new(TaskManagerSetup {
            restorer,
            store: setup.store.clone(),
            catalog: Arc::clone(&setup.catalog),
            metrics: setup.metrics.clone(),
            health: setup.health.clone(),
            cancel: setup.cancel.clone(),
        });
        let producer = create_producer(
            &config.kafka,
            &transactional_id,
            broker_watch(&setup.health),
        )?;
        let txn = Txn::new(producer, OffsetBook::new(), &config.kafka.state_topic)
            .with_stall_watch(stall_watch(&setup.health));
        let context = RuntimeContext::new(
            txn,
            setup.metrics.clone(),
            setup.health.clone(),
            tasks.exporter(),
        );
        let consumer: BaseConsumer<RuntimeContext> =
            client_config(&consumer_properties(&config.kafka, worker))
                .create_with_context(context)?;
        let topics: Vec<&str> = config
            .kafka
            .input_topics
            .iter()
            .map(String::as_str)
            .collect();
        consumer.subscribe(&topics)?;
        tracing::info!(
            group = %config.kafka.group_id,
            transactional_id = %transactional_id,
            group_instance_id = worker_group_instance_id(&config.kafka, worker).as_deref().unwrap_or("(dynamic member)"),
            topics = ?topics,
            "joining consumer group"
        );
        Ok(Session {
            setup,
            consumer: Arc::new(consumer),
            transactional_id,
            tasks,
            effects: Effects::default(),
            poisoned: HashMap::new(),
            last_report: Instant::now(),
            aborts_since_commit: 0,
        })
    }

    fn run(&mut self) -> Result<(), RuntimeError> {
        self.setup.health.session_started();
        self.setup.health.set_running(true);
        let result = self.process_loop();
        if let Err(e) = &result {
            // Not ready from this moment, with the reason, while the session is torn down.
            self.setup.health.session_lost(&e.to_string());
        }
        self.shutdown(result.is_ok());
        result
    }

    fn process_loop(&mut self) -> Result<(), RuntimeError> {
        while !self.setup.cancel.is_cancelled() {
            self.serve_control();
            let wait = self.poll_wait();
            let consumer = Arc::clone(&self.consumer);
            let polled = consumer.poll(wait);
            self.handle_rebalance()?;
            // A transaction that failed inside the rebalance callback: the polled record comes
            // again after the rewind.
            if self.recover_if_needed()? {
                continue;
            }
            match polled {
                Some(Ok(msg)) => self.process(&msg),
                Some(Err(e)) => self.consumer_error(e)?,
                None => {}
            }
            // Nothing may be produced from engine state that belongs to an aborted
            // transaction, so recovery comes before the next step each time.
            if self.recover_if_needed()? {
                continue;
            }
            match self.tasks.step_restore(&self.consumer) {
                Ok(()) => {}
                Err(RestoreError::Cancelled) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            self.fire_timers();
            if self.recover_if_needed()? {
                continue;
            }
            self.maybe_commit();
            if self.recover_if_needed()? {
                continue;
            }
            if !self.consumer.context().txn().is_open() {
                self.tasks.checkpoint_due();
            }
            if self.last_report.elapsed() >= STATE_REPORT_INTERVAL {
                self.report_state();
            }
        }
        Ok(())
    }

    /// How long `poll` may wait: not at all while restoring (restore work waits), else until
    /// the next timer or commit is due, at most [`MAX_POLL_WAIT`].
    fn poll_wait(&self) -> Duration {
        if self.tasks.is_restoring() {
            return Duration::ZERO;
        }
        let mut wait = MAX_POLL_WAIT;
        let interval = Duration::from_millis(self.setup.config.kafka.commit_interval_ms);
        if let Some(deadline) = self.consumer.context().txn().commit_deadline(interval) {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        let now = Utc::now();
        for task in lock(self.tasks.tasks()).values() {
            if let Some(due) = task.next_due() {
                let until = (due - now).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until);
            }
        }
        wait
    }

    fn serve_control(&mut self) {
        loop {
            match self.setup.control.try_recv() {
                Ok(Control::Reload(catalog, applied)) => {
                    let n = self.tasks.set_catalog(Arc::clone(&catalog));
                    self.setup.catalog = catalog;
                    let _ = applied.send(());
                    tracing::info!(partitions = n, "journey set swapped");
                }
                Ok(Control::Inspect(customer, reply)) => {
                    let now = Utc::now();
                    let tasks = lock(self.tasks.tasks());
                    let found = catch_unwind(AssertUnwindSafe(|| {
                        tasks
                            .values()
                            .filter(|t| t.is_active())
                            .find_map(|t| t.engine.inspect(&customer, now))
                    }))
                    .unwrap_or(None);
                    let _ = reply.send(found);
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    /// Acts on assignment changes recorded by the rebalance callbacks.
    fn handle_rebalance(&mut self) -> Result<(), RuntimeError> {
        for event in self.consumer.context().take_events() {
            match event {
                RebalanceEvent::Revoked {
                    partitions,
                    committed,
                } => self.tasks.revoked(&partitions, committed),
                RebalanceEvent::Assigned(partitions) => {
                    let committed = self.committed_offsets(&partitions)?;
                    {
                        let mut txn = self.consumer.context().txn();
                        for ((topic, p), offset) in partitions.iter().zip(committed) {
                            txn.book.assign(topic, *p, offset);
                        }
                    }
                    match self.tasks.assigned(&partitions) {
                        Ok(()) => {}
                        Err(RestoreError::Cancelled) => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    /// The group's committed offsets of newly assigned partitions (`None`: no offset yet).
    fn committed_offsets(&self, tps: &[TopicPartition]) -> Result<Vec<Option<i64>>, RuntimeError> {
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in tps {
            tpl.add_partition(topic, *p);
        }
        let mut attempt = 0u32;
        let result = loop {
            match self
                .consumer
                .committed_offsets(tpl.clone(), Duration::from_secs(10))
            {
                Ok(r) => break r,
                Err(e) if attempt < 5 && !self.setup.cancel.is_cancelled() => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "reading committed offsets, retrying");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                Err(e) => return Err(RuntimeError::Kafka(e)),
            }
        };
        Ok(tps
            .iter()
            .map(|(topic, p)| {
                result
                    .find_partition(topic, *p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
            })
            .collect())
    }

    /// After a failed transaction: make state and input position agree again. Returns whether
    /// a recovery took place.
    fn recover_if_needed(&mut self) -> Result<bool, RuntimeError> {
        let Some(failure) = self.consumer.context().take_failure() else {
            return Ok(false);
        };
        tracing::warn!(
            reason = failure.detail(),
            "transaction failed; rewinding to the last commit"
        );
        self.aborts_since_commit += 1;
        let recovery = decide(&failure, self.aborts_since_commit);
        if let Some(reason) = recovery.rebuild {
            self.aborts_since_commit = 0;
            self.setup.metrics.producer_recreated(reason);
            let producer = create_producer(
                &self.setup.config.kafka,
                &self.transactional_id,
                broker_watch(&self.setup.health),
            )?;
            self.consumer.context().txn().replace_producer(producer);
            tracing::info!(reason = reason.label(), "transactional producer recreated");
        }
        let assignment = self.tasks.assignment();
        if assignment.count() > 0 {
            self.consumer.pause(&assignment)?;
        }
        let rewind = self.consumer.context().txn().book.rewind_list();
        if rewind.count() > 0 {
            let result = self
                .consumer
                .seek_partitions(rewind, Duration::from_secs(10))?;
            for e in result.elements() {
                if let Err(err) = e.error() {
                    return Err(RuntimeError::Rewind(format!(
                        "{}[{}]: {err}",
                        e.topic(),
                        e.partition()
                    )));
                }
            }
        }
        let restored = self.tasks.restore_all();
        // The partitions now report their restore; the stalled transaction is over.
        self.setup.health.set_transaction_stalled(None);
        match restored {
            Ok(()) | Err(RestoreError::Cancelled) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Refreshes the per-partition gauges.
    fn report_state(&mut self) {
        self.last_report = Instant::now();
        let mut tasks = lock(self.tasks.tasks());
        for (p, task) in tasks.iter_mut() {
            if !task.is_active() {
                continue;
            }
            let engine = &task.engine;
            let counts = catch_unwind(AssertUnwindSafe(|| {
                (
                    engine.customer_count(),
                    engine.pending_timers(),
                    engine.active_instances(),
                )
            }));
            let Ok((customers, timers, active)) = counts else {
                continue;
            };
            self.setup
                .metrics
                .set_partition_state(*p, customers, timers);
            let mut now_reported = BTreeSet::new();
            for (journey, n) in active {
                self.setup.metrics.set_active_instances(&journey, *p, n);
                now_reported.insert(journey);
            }
            for gone in task.reported_journeys.difference(&now_reported) {
                self.setup.metrics.set_active_instances(gone, *p, 0);
            }
            task.reported_journeys = now_reported;
        }
    }

    /// A consumer error from `poll`. A fatal one (e.g. "static consumer fenced by other consumer
    /// with same group.instance.id") leaves the consumer unusable: the session ends so that a
    /// new one is built. Other errors are reported and librdkafka recovers from them itself.
    fn consumer_error(&self, e: KafkaError) -> Result<(), RuntimeError> {
        match e {
            KafkaError::PartitionEOF(_) => Ok(()),
            KafkaError::MessageConsumptionFatal(code) => {
                let detail = match self.consumer.client().fatal_error() {
                    Some((code, reason)) => format!("{code:?}: {reason}"),
                    None => format!("{code:?}"),
                };
                tracing::error!(error = %detail, "fatal consumer error; the kafka session is rebuilt");
                Err(RuntimeError::ConsumerFatal(detail))
            }
            e => {
                tracing::warn!(error = %e, "consumer");
                Ok(())
            }
        }
    }

    /// Graceful end: commit what is open, checkpoint, then leave the group (dynamic member) or
    /// stay a member (static member: its partitions wait for its restart until
    /// `session.timeout.ms`; `journeyd leave-group` hands them over at once, see
    /// [`crate::leave`]).
    fn shutdown(&mut self, commit: bool) {
        if commit {
            // A failed session keeps "running" with its own reason (see `Health::session_lost`).
            self.setup.health.set_running(false);
        }
        let ctx = self.consumer.context();
        let failed = ctx.take_failure();
        let mut clean = failed.is_none();
        {
            let mut txn = ctx.txn();
            if commit && failed.is_none() {
                let group = self.consumer.group_metadata();
                match ctx.commit(&mut txn, group.as_ref()) {
                    Ok(true) => tracing::info!("committed the open transaction at shutdown"),
                    Ok(false) => {}
                    Err(f) => {
                        clean = false;
                        tracing::warn!(reason = f.detail(), "open transaction aborted at shutdown")
                    }
                }
            } else if txn.is_open() {
                clean = false;
                let _ = txn.abort(
                    AbortReason::Shutdown,
                    "shutdown after failure",
                    &self.setup.metrics,
                );
            }
            txn.flush(Duration::from_secs(10));
        }
        if clean && !ctx.has_failure() {
            self.tasks.checkpoint_all();
        }
        let static_member = self.setup.config.kafka.static_membership;
        if !static_member {
            // The partitions move to the other instances at once.
            tracing::info!("leaving the consumer group");
            self.consumer.unsubscribe();
            let _ = self.consumer.poll(Duration::from_millis(100));
            self.handle_revocations_at_exit();
        } else {
            // Closing without unsubscribing: librdkafka sends no LeaveGroup for a static
            // member, which keeps its partitions until `session.timeout.ms` for its restart.
            tracing::info!(
                "staying a static member of the consumer group: the partitions wait for this instance's restart until session.timeout.ms"
            );
        }
        self.tasks.clear();
    }

    /// Revocations that `unsubscribe` caused (nothing is open any more).
    fn handle_revocations_at_exit(&mut self) {
        for event in self.consumer.context().take_events() {
            if let RebalanceEvent::Revoked {
                partitions,
                committed,
            } = event
            {
                self.tasks.revoked(&partitions, committed);
            }
        }
    }
}

/// Points the transaction's retry reports at readiness.
fn stall_watch(health: &WorkerHealth) -> StallWatch {
    let health = health.clone();
    Arc::new(move |why| health.set_transaction_stalled(why))
}

/// Points the producer's broker reports at readiness.
fn broker_watch(health: &WorkerHealth) -> BrokerWatch {
    let health = health.clone();
    Arc::new(move |reachable| health.set_broker_reachable(reachable))
}
