//! The record path of a stream thread's session: one input record or the due timers of a
//! partition through its task, their effects (send commands, decisions, changed customers)
//! into the open transaction, and the commit when it is due. A failure here is recorded on the
//! consumer context and handled by the session's recovery (see the parent module).

use super::{Session, MAX_RECORDS_PER_TRANSACTION};
use crate::metrics::{EventOutcome, Metrics, WorkerMetrics};
use crate::records::{dead_letter_record, Source};
use crate::task::{decode_event, Input, PartitionTask, TaskState};
use crate::txn::{lock, AbortReason, Txn, TxnFailure};
use chrono::Utc;
use journey_engine::{DecisionKind, Effects};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::Offset;
use std::sync::Arc;
use std::time::Duration;

impl Session<'_> {
    /// Processes one input record inside the open transaction.
    pub(super) fn process(&mut self, msg: &BorrowedMessage<'_>) {
        let p = msg.partition();
        let topic = msg.topic();
        let offset = msg.offset();
        let tasks = Arc::clone(self.tasks.tasks());
        let mut tasks = lock(&tasks);
        let Some(task) = tasks.get_mut(&p).filter(|t| t.topics.contains(topic)) else {
            // A record of a partition revoked meanwhile: the next owner processes it.
            return;
        };
        if !task.is_active() {
            // Fetched before the pause took effect: send the consumer back to it, it comes
            // again once the partition is restored and resumed.
            drop(tasks);
            if let Err(e) =
                self.consumer
                    .seek(topic, p, Offset::Offset(offset), Duration::from_secs(5))
            {
                tracing::warn!(partition = p, error = %e, "seeking back a record of a restoring partition");
                self.consumer.context().set_failure(TxnFailure::Aborted {
                    reason: AbortReason::Rewind,
                    detail: format!("record of restoring partition {p} not rewound: {e}"),
                });
            }
            return;
        }
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
        let decoded = match poisoned {
            Some(reason) => Err((String::from("engine_failure"), reason)),
            None => decode_event(msg, &self.setup.config, &self.setup.metrics)
                .map_err(|e| (e.kind, e.message)),
        };
        let ctx = self.consumer.context();
        let result = match decoded {
            Err((kind, reason)) => {
                let dl = dead_letter_record(
                    &kafka.dead_letter_topic,
                    &source,
                    msg.key(),
                    msg.payload(),
                    &reason,
                );
                self.setup.metrics.dead_lettered(&kind);
                self.setup
                    .metrics
                    .event_consumed(topic, EventOutcome::DeadLetter);
                tracing::debug!(partition = p, offset, reason, "dead-lettered input record");
                let mut txn = ctx.txn();
                txn.record_processed()
                    .and_then(|()| txn.produce_dead_letter(&dl))
            }
            Ok(event) => {
                if let Err(failure) =
                    task.apply(Input::Event(&event), Utc::now(), &mut self.effects)
                {
                    let reason = format!("engine failure on this event: {}", failure.0);
                    tracing::error!(
                        partition = p,
                        offset,
                        reason,
                        "the engine failed; the record will be dead-lettered after rewinding"
                    );
                    self.poisoned
                        .insert((topic.to_owned(), p, offset), reason.clone());
                    let mut txn = ctx.txn();
                    ctx.set_failure(txn.abort(
                        AbortReason::EngineFailure,
                        &reason,
                        &self.setup.metrics,
                    ));
                    return;
                }
                let duplicate = self
                    .effects
                    .decisions
                    .iter()
                    .any(|d| d.kind == DecisionKind::DuplicateEvent);
                self.setup
                    .metrics
                    .event_consumed(topic, EventOutcome::applied(duplicate));
                let mut txn = ctx.txn();
                for _ in &self.effects.commands {
                    txn.command_from(msg.timestamp().to_millis());
                }
                txn.record_processed()
                    .and_then(|()| emit(&mut txn, p, &self.effects, &self.setup.metrics, kafka))
            }
        };
        let mut txn = ctx.txn();
        match result {
            Ok(()) => txn.book.processed(topic, p, offset),
            Err(failure) => ctx.set_failure(abort_on(&mut txn, failure, &self.setup.metrics)),
        }
    }

    /// Fires due timers of every active partition, through the same task path as events.
    pub(super) fn fire_timers(&mut self) {
        let now = Utc::now();
        let ctx = self.consumer.context();
        let kafka = &self.setup.config.kafka;
        let mut tasks = lock(self.tasks.tasks());
        for (p, task) in tasks.iter_mut() {
            let Some(due) = task.next_due() else {
                continue;
            };
            if due > now {
                continue;
            }
            let lateness = (now - due).to_std().unwrap_or(Duration::ZERO);
            self.setup
                .metrics
                .observe_timer_lateness(lateness.as_secs_f64());
            let fired = task.apply(Input::Timers, now, &mut self.effects);
            let mut txn = ctx.txn();
            if let Err(failure) = fired {
                suspend_timers_after_failure(task, &failure.0);
                ctx.set_failure(txn.abort(
                    AbortReason::EngineFailure,
                    "engine failure firing timers",
                    &self.setup.metrics,
                ));
                return;
            }
            task.timer_failures = 0;
            if let Err(failure) = emit(&mut txn, *p, &self.effects, &self.setup.metrics, kafka) {
                ctx.set_failure(abort_on(&mut txn, failure, &self.setup.metrics));
                return;
            }
        }
    }

    pub(super) fn maybe_commit(&mut self) {
        let interval = Duration::from_millis(self.setup.config.kafka.commit_interval_ms);
        let ctx = self.consumer.context();
        let mut txn = ctx.txn();
        if txn.commit_due(interval, MAX_RECORDS_PER_TRANSACTION) {
            let group = self.consumer.group_metadata();
            match ctx.commit(&mut txn, group.as_ref()) {
                Ok(_) => self.aborts_since_commit = 0,
                Err(failure) => ctx.set_failure(failure),
            }
        }
    }
}

/// Produces the send commands and decisions of one engine call inside the transaction and
/// notes the changed customers (their changelog entries are written at commit).
fn emit(
    txn: &mut Txn,
    partition: i32,
    effects: &Effects,
    metrics: &Metrics,
    kafka: &journey_spec::KafkaConfig,
) -> Result<(), TxnFailure> {
    metrics.commands(&effects.commands);
    metrics.decisions(&effects.decisions);
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
            &kafka.decisions_topic,
            None,
            &decision.customer_id,
            Some(body.as_bytes()),
        )?;
    }
    txn.state_changed(partition, &effects.changed)
}

/// A produce failure leaves the transaction unusable: abort it now (a fatal one is kept as is).
fn abort_on(txn: &mut Txn, failure: TxnFailure, metrics: &WorkerMetrics) -> TxnFailure {
    match failure {
        TxnFailure::Aborted { reason, detail } => txn.abort(reason, &detail, metrics),
        fatal => fatal,
    }
}

fn suspend_timers_after_failure(task: &mut PartitionTask, reason: &str) {
    task.timer_failures += 1;
    tracing::error!(
        partition = task.partition,
        failures = task.timer_failures,
        reason,
        "the engine failed firing timers"
    );
    if !task.timers_enabled() && matches!(task.state, TaskState::Active) {
        tracing::error!(
            partition = task.partition,
            "timers of this partition are suspended until the next journey reload"
        );
    }
}
