//! The processing thread: polls the group consumer, owns one engine per assigned partition,
//! fires timers, and drives the transaction.
//!
//! One thread owns every engine: a partition's customers are only ever touched from this
//! thread, which is what makes the per-partition state a plain map. The map sits behind a mutex
//! only because the rebalance callback (which runs on this same thread, inside `poll`) commits
//! the open transaction and reads the changed customers' state for the changelog; the lock is
//! never contended. Requests
//! from other threads (hot reload, inspection) arrive on a channel and are served between two
//! records, so a catalog swap is atomic with respect to record processing.
//!
//! Order of work in one turn of the loop, and why:
//! 1. serve control requests (reload, inspect);
//! 2. `poll` one record (rebalance callbacks run inside it, committing the open transaction
//!    before partitions are revoked);
//! 3. act on assignment changes *before* processing the polled record: drop revoked engines,
//!    restore newly assigned partitions from the changelog;
//! 4. process the record (or dead-letter it): its commands and decisions are produced at once,
//!    its changed customers noted in the transaction;
//! 5. fire due timers on every partition with the wall clock;
//! 6. commit when the commit interval or record budget is reached (the changed customers'
//!    changelog entries are written then, once each);
//! 7. if a transaction failed, recover: recreate the producer if it is fenced or broken, seek
//!    the consumer back to the committed offsets and restore every partition from the
//!    changelog, so state and input position agree again.

use crate::clients::{
    client_config, consumer_properties, producer_properties, restore_properties, transactional_id,
};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::offsets::{OffsetBook, TopicPartition};
use crate::records::{dead_letter_record, decode_message, Source};
use crate::restore::{restore_partitions, RestoreError};
use crate::txn::{
    classify, lock, ErrorClass, RebalanceEvent, RuntimeContext, SharedExport, Txn, TxnFailure,
    TxnProducer,
};
use crate::RuntimeError;
use chrono::Utc;
use journey_engine::{Catalog, DecisionKind, Effects, Engine};
use journey_spec::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Input records per transaction at most (besides the commit interval), bounding the work
/// redone after an abort.
pub const MAX_RECORDS_PER_TRANSACTION: usize = 5000;
/// Longest `poll` wait: timers are checked at least this often.
const MAX_POLL_WAIT: Duration = Duration::from_millis(50);
/// How often gauges of partition state are refreshed.
const STATE_REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// A partition whose timers made the engine fail this many times in a row stops firing them.
const TIMER_FAILURES_BEFORE_SUSPEND: u32 = 3;

/// A request served by the worker between two records.
pub enum Control {
    /// Swap every partition's journey set.
    Reload(Arc<Catalog>),
    /// Look up one customer in whichever partition holds it.
    Inspect(
        String,
        tokio::sync::oneshot::Sender<Option<serde_json::Value>>,
    ),
}

/// What the worker thread needs.
pub struct WorkerSetup {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub catalog: Arc<Catalog>,
    pub control: Receiver<Control>,
    pub cancel: CancellationToken,
}

/// One assigned partition number: its engine and the input topics it is assigned for.
struct Partition {
    engine: Engine,
    topics: BTreeSet<String>,
    span: tracing::Span,
    timer_failures: u32,
    /// Journeys reported with in-flight instances last time (to zero the ones that ended).
    reported_journeys: BTreeSet<String>,
}

/// Runs sessions (consumer + producer) until cancelled. A session that fails in a way that
/// in-place recovery cannot handle is torn down (leaving the group) and started again after a
/// backoff; only errors that a new session cannot fix end the service.
pub fn run(mut setup: WorkerSetup) -> Result<(), RuntimeError> {
    let mut backoff = Duration::from_millis(500);
    loop {
        let result = Session::start(&mut setup).and_then(|mut session| {
            let result = session.run();
            tracing::info!("leaving consumer group");
            drop(session);
            tracing::info!("left consumer group");
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
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "kafka session failed; starting a new one");
                setup.health.set_running(false);
                let deadline = Instant::now() + backoff;
                while Instant::now() < deadline && !setup.cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The assigned partitions. Shared with the consumer context because the rebalance callback
/// commits the open transaction, which writes the changed customers' changelog entries read
/// from the engines. The worker never holds the lock across `poll` (where the callback runs)
/// or a commit.
type Partitions = Arc<Mutex<BTreeMap<i32, Partition>>>;

struct Session<'s> {
    setup: &'s mut WorkerSetup,
    /// Shared only so that a polled record can borrow a handle of its own while the session
    /// is used mutably (records are processed in place, not copied).
    consumer: Arc<BaseConsumer<RuntimeContext>>,
    transactional_id: String,
    partitions: Partitions,
    effects: Effects,
    /// Records on which the engine failed: dead-lettered when they come again after the
    /// rewind, so one bad record cannot loop the partition forever.
    poisoned: HashMap<(String, i32, i64), String>,
    last_report: Instant,
    /// Transactions aborted since the last successful commit. An abortable error that keeps
    /// coming back (a producer whose epoch the broker no longer accepts, for instance) is
    /// escalated to a producer rebuild instead of looping on aborts.
    aborts_since_commit: u32,
}

/// Aborts in a row, without a commit in between, after which the producer is rebuilt.
pub(crate) const ABORTS_BEFORE_REBUILD: u32 = 3;

/// Creates the transactional producer and fences older producers with the same id.
fn create_producer(config: &Config, transactional_id: &str) -> Result<TxnProducer, RuntimeError> {
    let producer: TxnProducer =
        client_config(&producer_properties(&config.kafka, transactional_id)).create()?;
    let mut attempt = 0u32;
    loop {
        match producer.init_transactions(Duration::from_secs(30)) {
            Ok(()) => return Ok(producer),
            Err(e) if classify(&e) == ErrorClass::Retry && attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "init transactions failed, retrying");
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            Err(e) => return Err(RuntimeError::Producer(e.to_string())),
        }
    }
}

impl<'s> Session<'s> {
    fn start(setup: &'s mut WorkerSetup) -> Result<Self, RuntimeError> {
        let config = Arc::clone(&setup.config);
        let transactional_id = transactional_id(&config.kafka);
        let partitions: Partitions = Arc::new(Mutex::new(BTreeMap::new()));
        let context = RuntimeContext::new(
            Arc::clone(&setup.metrics),
            Arc::clone(&setup.health),
            exporter(Arc::clone(&partitions)),
        );
        let consumer: BaseConsumer<RuntimeContext> =
            client_config(&consumer_properties(&config.kafka)).create_with_context(context)?;
        let producer = create_producer(&config, &transactional_id)?;
        *consumer.context().txn() = Some(Txn::new(
            producer,
            OffsetBook::new(),
            &config.kafka.state_topic,
        ));
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
            topics = ?topics,
            "joining consumer group"
        );
        Ok(Session {
            setup,
            consumer: Arc::new(consumer),
            transactional_id,
            partitions,
            effects: Effects::default(),
            poisoned: HashMap::new(),
            last_report: Instant::now(),
            aborts_since_commit: 0,
        })
    }

    fn run(&mut self) -> Result<(), RuntimeError> {
        self.setup.health.set_running(true);
        let result = self.process_loop();
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
                Some(Err(e)) => self.consumer_error(e),
                None => {}
            }
            // Nothing may be produced from engine state that belongs to an aborted
            // transaction, so recovery comes before the next step each time.
            if self.recover_if_needed()? {
                continue;
            }
            self.fire_timers();
            if self.recover_if_needed()? {
                continue;
            }
            self.maybe_commit();
            self.recover_if_needed()?;
            if self.last_report.elapsed() >= STATE_REPORT_INTERVAL {
                self.report_state();
            }
        }
        Ok(())
    }

    /// How long `poll` may wait: until the next timer or commit is due, at most
    /// [`MAX_POLL_WAIT`].
    fn poll_wait(&self) -> Duration {
        let mut wait = MAX_POLL_WAIT;
        let interval = Duration::from_millis(self.setup.config.kafka.commit_interval_ms);
        if let Some(deadline) = self
            .consumer
            .context()
            .txn()
            .as_ref()
            .and_then(|t| t.commit_deadline(interval))
        {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        let now = Utc::now();
        for part in lock(&self.partitions).values() {
            if part.timer_failures >= TIMER_FAILURES_BEFORE_SUSPEND {
                continue;
            }
            if let Some(due) = part.engine.next_due() {
                let until = (due - now).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until);
            }
        }
        wait
    }

    fn serve_control(&mut self) {
        loop {
            match self.setup.control.try_recv() {
                Ok(Control::Reload(catalog)) => {
                    let mut parts = lock(&self.partitions);
                    for part in parts.values_mut() {
                        part.engine.set_catalog(Arc::clone(&catalog));
                        part.timer_failures = 0;
                    }
                    self.setup.catalog = catalog;
                    tracing::info!(partitions = parts.len(), "journey set swapped");
                }
                Ok(Control::Inspect(customer, reply)) => {
                    let now = Utc::now();
                    let parts = lock(&self.partitions);
                    let found = catch_unwind(AssertUnwindSafe(|| {
                        parts
                            .values()
                            .find_map(|p| p.engine.inspect(&customer, now))
                    }))
                    .unwrap_or(None);
                    let _ = reply.send(found);
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    fn consumer_error(&self, e: KafkaError) {
        match e {
            KafkaError::PartitionEOF(_) => {}
            e => tracing::warn!(error = %e, "consumer"),
        }
    }

    /// Acts on assignment changes recorded by the rebalance callbacks.
    fn handle_rebalance(&mut self) -> Result<(), RuntimeError> {
        let events = self.consumer.context().take_events();
        if events.is_empty() {
            return Ok(());
        }
        let mut new_partitions: BTreeSet<i32> = BTreeSet::new();
        for event in events {
            match event {
                RebalanceEvent::Revoked(tps) => {
                    for (topic, p) in tps {
                        self.setup.metrics.forget_partition(&topic, p);
                        new_partitions.remove(&p);
                        let mut parts = lock(&self.partitions);
                        if let Some(part) = parts.get_mut(&p) {
                            part.topics.remove(&topic);
                            if part.topics.is_empty() {
                                parts.remove(&p);
                                self.setup.health.partition_revoked(p);
                                self.setup.metrics.set_partition_state(p, 0, 0);
                            }
                        }
                    }
                }
                RebalanceEvent::Assigned(tps) => {
                    let committed = self.committed_offsets(&tps)?;
                    let mut guard = self.consumer.context().txn();
                    let mut parts = lock(&self.partitions);
                    for ((topic, p), offset) in tps.iter().zip(committed) {
                        if let Some(txn) = guard.as_mut() {
                            txn.book.assign(topic, *p, offset);
                        }
                        let part = parts.entry(*p).or_insert_with(|| {
                            new_partitions.insert(*p);
                            Partition {
                                engine: Engine::new(Arc::clone(&self.setup.catalog)),
                                topics: BTreeSet::new(),
                                span: tracing::info_span!("partition", partition = *p),
                                timer_failures: 0,
                                reported_journeys: BTreeSet::new(),
                            }
                        });
                        part.topics.insert(topic.clone());
                    }
                }
            }
        }
        self.setup.health.set_group_joined(true);
        if !new_partitions.is_empty() {
            let list: Vec<i32> = new_partitions.into_iter().collect();
            self.restore(&list)?;
        }
        let owned: Vec<i32> = lock(&self.partitions).keys().copied().collect();
        tracing::info!("ready: partitions {owned:?} restored");
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

    /// Restores partitions (their engines are fresh) from the changelog.
    fn restore(&mut self, partitions: &[i32]) -> Result<(), RuntimeError> {
        for p in partitions {
            self.setup.health.partition_restoring(*p);
        }
        let mut engines: BTreeMap<i32, Engine> = BTreeMap::new();
        for p in partitions {
            engines.insert(*p, Engine::new(Arc::clone(&self.setup.catalog)));
        }
        let props = restore_properties(&self.setup.config.kafka);
        let topic = self.setup.config.kafka.state_topic.clone();
        let restored = catch_unwind(AssertUnwindSafe(|| {
            restore_partitions(&props, &topic, partitions, &mut engines, &self.setup.cancel)
        }))
        .map_err(|_| {
            RuntimeError::Worker("the engine failed while importing the changelog".into())
        })?;
        let stats = match restored {
            Ok(stats) => stats,
            Err(RestoreError::Cancelled) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut parts = lock(&self.partitions);
        for (p, engine) in engines {
            if let Some(part) = parts.get_mut(&p) {
                part.engine = engine;
            }
            if let Some(s) = stats.get(&p) {
                self.setup.metrics.observe_restore(p, s.seconds, s.records);
                tracing::info!(
                    partition = p,
                    records = s.records,
                    millis = (s.seconds * 1000.0) as u64,
                    "partition restored from changelog"
                );
            }
            self.setup.health.partition_ready(p);
        }
        Ok(())
    }

    /// Processes one input record inside the open transaction.
    fn process(&mut self, msg: &BorrowedMessage<'_>) {
        let p = msg.partition();
        let topic = msg.topic();
        let owned = lock(&self.partitions)
            .get(&p)
            .is_some_and(|part| part.topics.contains(topic));
        if !owned {
            // A record of a partition revoked meanwhile: the next owner processes it.
            return;
        }
        let offset = msg.offset();
        let source = Source {
            topic,
            partition: p,
            offset,
        };
        let kafka = &self.setup.config.kafka;
        let poisoned = if self.poisoned.is_empty() {
            None
        } else {
            self.poisoned.remove(&(topic.to_owned(), p, offset))
        };
        let parsed = match poisoned {
            Some(reason) => Err((String::from("engine_failure"), reason)),
            None => match catch_unwind(AssertUnwindSafe(|| {
                decode_message(&self.setup.config, msg, &self.setup.metrics)
            })) {
                Ok(parsed) => parsed.map_err(|e| (e.kind.to_owned(), e.message)),
                Err(panic) => Err((
                    String::from("engine_failure"),
                    format!("event parser failure: {}", panic_message(&panic)),
                )),
            },
        };
        let ctx = self.consumer.context();
        let result = match parsed {
            Err((kind, reason)) => {
                let dl = dead_letter_record(
                    &kafka.dead_letter_topic,
                    &source,
                    msg.key(),
                    msg.payload(),
                    &reason,
                );
                self.setup.metrics.dead_lettered(&kind);
                self.setup.metrics.event_consumed(topic, "dead_letter");
                tracing::debug!(partition = p, offset, reason, "dead-lettered input record");
                let mut guard = ctx.txn();
                let txn = guard
                    .as_mut()
                    .expect("transaction present while the session runs");
                txn.record_processed()
                    .and_then(|()| txn.produce_dead_letter(&dl))
            }
            Ok(event) => {
                let mut parts = lock(&self.partitions);
                let part = parts.get_mut(&p).expect("checked above");
                let _entered = part.span.enter();
                self.effects.clear();
                let handled = catch_unwind(AssertUnwindSafe(|| {
                    part.engine.handle(&event, Utc::now(), &mut self.effects)
                }));
                if let Err(panic) = handled {
                    let reason = format!("engine failure on this event: {}", panic_message(&panic));
                    tracing::error!(
                        partition = p,
                        offset,
                        reason,
                        "the engine failed; the record will be dead-lettered after rewinding"
                    );
                    self.poisoned
                        .insert((topic.to_owned(), p, offset), reason.clone());
                    let mut guard = ctx.txn();
                    let txn = guard
                        .as_mut()
                        .expect("transaction present while the session runs");
                    ctx.set_failure(txn.abort("engine_failure", &self.setup.metrics));
                    return;
                }
                let duplicate = self
                    .effects
                    .decisions
                    .iter()
                    .any(|d| d.kind == DecisionKind::DuplicateEvent);
                self.setup.metrics.commands(&self.effects.commands);
                self.setup.metrics.decisions(&self.effects.decisions);
                self.setup
                    .metrics
                    .event_consumed(topic, if duplicate { "duplicate" } else { "processed" });
                let source_ms = msg.timestamp().to_millis();
                let mut guard = ctx.txn();
                let txn = guard
                    .as_mut()
                    .expect("transaction present while the session runs");
                for _ in &self.effects.commands {
                    txn.command_from(source_ms);
                }
                txn.record_processed()
                    .and_then(|()| produce_effects(txn, &self.effects, &kafka.decisions_topic))
                    .and_then(|()| txn.state_changed(p, &self.effects.changed))
            }
        };
        let mut guard = ctx.txn();
        let txn = guard
            .as_mut()
            .expect("transaction present while the session runs");
        match result {
            Ok(()) => txn.book.processed(topic, p, offset),
            Err(failure) => {
                // A produce failure leaves the transaction unusable: abort it now.
                let failure = match failure {
                    TxnFailure::Aborted(reason) => txn.abort(&reason, &self.setup.metrics),
                    fatal => fatal,
                };
                ctx.set_failure(failure);
            }
        }
    }

    /// Fires due timers on every partition, through the same transactional path as events.
    fn fire_timers(&mut self) {
        let now = Utc::now();
        let ctx = self.consumer.context();
        let kafka = &self.setup.config.kafka;
        let mut parts = lock(&self.partitions);
        for (p, part) in parts.iter_mut() {
            if part.timer_failures >= TIMER_FAILURES_BEFORE_SUSPEND {
                continue;
            }
            let Some(due) = part.engine.next_due() else {
                continue;
            };
            if due > now {
                continue;
            }
            let _entered = part.span.enter();
            let lateness = (now - due).to_std().unwrap_or(Duration::ZERO);
            self.setup
                .metrics
                .observe_timer_lateness(lateness.as_secs_f64());
            self.effects.clear();
            let fired = catch_unwind(AssertUnwindSafe(|| {
                part.engine.fire_due(now, &mut self.effects)
            }));
            let mut guard = ctx.txn();
            let txn = guard
                .as_mut()
                .expect("transaction present while the session runs");
            if let Err(panic) = fired {
                part.timer_failures += 1;
                tracing::error!(
                    partition = *p,
                    failures = part.timer_failures,
                    reason = panic_message(&panic),
                    "the engine failed firing timers"
                );
                if part.timer_failures >= TIMER_FAILURES_BEFORE_SUSPEND {
                    tracing::error!(
                        partition = *p,
                        "timers of this partition are suspended until the next journey reload"
                    );
                }
                ctx.set_failure(txn.abort("engine_failure", &self.setup.metrics));
                return;
            }
            part.timer_failures = 0;
            self.setup.metrics.commands(&self.effects.commands);
            self.setup.metrics.decisions(&self.effects.decisions);
            let produced = produce_effects(txn, &self.effects, &kafka.decisions_topic)
                .and_then(|()| txn.state_changed(*p, &self.effects.changed));
            if let Err(failure) = produced {
                let failure = match failure {
                    TxnFailure::Aborted(reason) => txn.abort(&reason, &self.setup.metrics),
                    fatal => fatal,
                };
                ctx.set_failure(failure);
                return;
            }
        }
    }

    fn maybe_commit(&mut self) {
        let interval = Duration::from_millis(self.setup.config.kafka.commit_interval_ms);
        let ctx = self.consumer.context();
        let mut guard = ctx.txn();
        let Some(txn) = guard.as_mut() else { return };
        if txn.commit_due(interval, MAX_RECORDS_PER_TRANSACTION) {
            let group = self.consumer.group_metadata();
            match ctx.commit(txn, group.as_ref()) {
                Ok(_) => self.aborts_since_commit = 0,
                Err(failure) => ctx.set_failure(failure),
            }
        }
    }

    /// After a failed transaction: make state and input position agree again. Returns whether
    /// a recovery took place.
    fn recover_if_needed(&mut self) -> Result<bool, RuntimeError> {
        let Some(failure) = self.consumer.context().take_failure() else {
            return Ok(false);
        };
        tracing::warn!(
            reason = failure.reason(),
            "transaction failed; rewinding to the last commit"
        );
        self.aborts_since_commit += 1;
        let rebuild = match &failure {
            TxnFailure::Fatal(reason) if reason.to_lowercase().contains("fenced") => Some("fenced"),
            TxnFailure::Fatal(_) => Some("fatal"),
            TxnFailure::Aborted(_) if self.aborts_since_commit >= ABORTS_BEFORE_REBUILD => {
                Some("repeated_aborts")
            }
            TxnFailure::Aborted(_) => None,
        };
        if let Some(label) = rebuild {
            self.aborts_since_commit = 0;
            self.setup.metrics.producer_recreated(label);
            let producer = create_producer(&self.setup.config, &self.transactional_id)?;
            if let Some(txn) = self.consumer.context().txn().as_mut() {
                txn.replace_producer(producer);
            }
            tracing::info!("transactional producer recreated");
        }
        let rewind = match self.consumer.context().txn().as_ref() {
            Some(txn) => txn.book.rewind_list(),
            None => TopicPartitionList::new(),
        };
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
        let owned: Vec<i32> = lock(&self.partitions).keys().copied().collect();
        self.restore(&owned)?;
        tracing::info!("ready: partitions {owned:?} restored");
        Ok(true)
    }

    /// Refreshes the per-partition gauges.
    fn report_state(&mut self) {
        self.last_report = Instant::now();
        let mut parts = lock(&self.partitions);
        for (p, part) in parts.iter_mut() {
            let engine = &part.engine;
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
            for gone in part.reported_journeys.difference(&now_reported) {
                self.setup.metrics.set_active_instances(gone, *p, 0);
            }
            part.reported_journeys = now_reported;
        }
        tracing::debug!(
            micros = self.last_report.elapsed().as_micros() as u64,
            "partition state reported"
        );
    }

    /// Graceful end: commit what is open, then leave the group.
    fn shutdown(&mut self, commit: bool) {
        self.setup.health.set_running(false);
        let ctx = self.consumer.context();
        if let Some(txn) = ctx.txn().as_mut() {
            let failed = ctx.take_failure();
            if commit && failed.is_none() {
                let group = self.consumer.group_metadata();
                match ctx.commit(txn, group.as_ref()) {
                    Ok(true) => tracing::info!("committed the open transaction at shutdown"),
                    Ok(false) => {}
                    Err(f) => {
                        tracing::warn!(reason = f.reason(), "open transaction aborted at shutdown")
                    }
                }
            } else if txn.is_open() {
                let _ = txn.abort("shutdown after failure", &self.setup.metrics);
            }
            txn.flush(Duration::from_secs(10));
        }
        self.consumer.unsubscribe();
        // Dropping the consumer closes it: the revocation runs (nothing is left to commit) and
        // the group is left, so the partitions move to the other instances at once.
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        for p in lock(&self.partitions).keys() {
            self.setup.health.partition_revoked(*p);
        }
    }
}

/// Produces the send commands and decisions of one engine call inside the transaction (the
/// changed customers' changelog entries are written at commit).
fn produce_effects(
    txn: &mut Txn,
    effects: &Effects,
    decisions_topic: &str,
) -> Result<(), TxnFailure> {
    for command in &effects.commands {
        let body = command.to_json();
        txn.produce_to(
            &command.topic,
            None,
            &command.customer_id,
            Some(body.as_bytes()),
        )?;
    }
    for decision in &effects.decisions {
        let body = decision.to_json();
        txn.produce_to(
            decisions_topic,
            None,
            &decision.customer_id,
            Some(body.as_bytes()),
        )?;
    }
    Ok(())
}

/// Reads customers' state from the engines for the changelog entries written at commit.
fn exporter(partitions: Partitions) -> SharedExport {
    Box::new(move |partition, customer| {
        // The worker never holds the lock while committing or polling; a busy lock would be a
        // mistake, which must abort the transaction (then recover) rather than hang.
        let parts = match partitions.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err("engines busy".to_owned()),
        };
        let part = parts
            .get(&partition)
            .ok_or_else(|| format!("partition {partition} is not owned"))?;
        catch_unwind(AssertUnwindSafe(|| part.engine.export_customer(customer))).map_err(|panic| {
            format!(
                "engine failure exporting customer {customer}: {}",
                panic_message(&panic)
            )
        })
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_readable() {
        let p = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&p), "boom 1");
        let p = catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&p), "static");
    }
}
