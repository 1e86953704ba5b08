//! Handing a removed instance's partitions over at once (`journeyd leave-group`).
//!
//! A static member that stops does not leave the group: its partitions wait for it until
//! `session.timeout.ms`, which is what a restart wants and what a scale-in does not. Kafka's
//! answer (KIP-345) is a LeaveGroup request naming the member's `group.instance.id`. librdkafka
//! has no admin call for it, but a consumer that unsubscribes (rather than closes) sends
//! LeaveGroup even as a static member. So this joins the group under the removed instance's
//! `group.instance.id` (which replaces the departed member without a rebalance and gets its
//! assignment back), then unsubscribes at once: the coordinator removes the member and the
//! remaining instances rebalance and take its partitions. Nothing is fetched into any engine
//! and nothing is committed: the offsets stay where the departed instance committed them.
//!
//! Run it only for an instance that is stopped for good: joining under a live instance's id
//! fences that instance's consumer.

use crate::clients::{assignment_strategy, client_config, STATISTICS_INTERVAL_MS};
use crate::offsets::TopicPartition;
use journey_spec::KafkaConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why the hand-over could not be done.
#[derive(Debug, thiserror::Error)]
pub enum LeaveError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(
        "group {group} not joined as {instance} within {seconds} s (is the broker reachable?)"
    )]
    NotJoined {
        group: String,
        instance: String,
        seconds: u64,
    },
}

#[derive(Default)]
struct LeaveContext {
    assigned: Mutex<Option<Vec<TopicPartition>>>,
}

impl ClientContext for LeaveContext {}

impl ConsumerContext for LeaveContext {
    fn pre_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Fetch nothing: this member only exists to leave.
            let _ = base_consumer.pause(tpl);
        }
    }

    fn post_rebalance(&self, _base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            *self.assigned.lock().unwrap_or_else(|e| e.into_inner()) = Some(partitions);
        }
    }
}

/// Consumer properties of the stand-in member: the service's group, the departed instance's
/// `group.instance.id`, the same assignor, the user's connection properties, no commits.
pub fn leave_properties(kafka: &KafkaConfig, instance_id: &str) -> Vec<(String, String)> {
    let mut props: Vec<(String, String)> = kafka
        .client
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let forced = [
        ("bootstrap.servers", kafka.bootstrap_servers.as_str()),
        ("group.id", kafka.group_id.as_str()),
        ("group.instance.id", instance_id),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("partition.assignment.strategy", assignment_strategy(kafka)),
        ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
    ];
    for (k, v) in forced {
        props.retain(|(key, _)| key != k);
        props.push((k.to_owned(), v.to_owned()));
    }
    props
}

/// Removes the static member `instance_id` from the group; returns the partitions it held
/// (now moving to the other members).
pub fn leave_group(
    kafka: &KafkaConfig,
    instance_id: &str,
    timeout: Duration,
) -> Result<Vec<TopicPartition>, LeaveError> {
    leave_group_members(kafka, &[instance_id.to_owned()], timeout)
}

/// Removes the static members `instance_ids` (e.g. every worker of a removed instance, see
/// [`crate::clients::worker_id`]) from the group together: all of them are stood in for first,
/// then all leave, so that none of their partitions is handed to another of them on the way.
/// Returns the partitions they held.
pub fn leave_group_members(
    kafka: &KafkaConfig,
    instance_ids: &[String],
    timeout: Duration,
) -> Result<Vec<TopicPartition>, LeaveError> {
    let topics: Vec<&str> = kafka.input_topics.iter().map(String::as_str).collect();
    let mut members = Vec::with_capacity(instance_ids.len());
    for id in instance_ids {
        let consumer: BaseConsumer<LeaveContext> = client_config(&leave_properties(kafka, id))
            .create_with_context(LeaveContext::default())?;
        consumer.subscribe(&topics)?;
        members.push((id, consumer));
    }
    let deadline = Instant::now() + timeout;
    let mut held = Vec::new();
    for (id, consumer) in &members {
        let assigned = loop {
            for (_, other) in &members {
                if let Some(Err(e)) = other.poll(Duration::from_millis(100 / members.len() as u64))
                {
                    tracing::debug!(error = %e, "leave-group consumer");
                }
            }
            let done = consumer
                .context()
                .assigned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(partitions) = done {
                break partitions;
            }
            if Instant::now() >= deadline {
                return Err(LeaveError::NotJoined {
                    group: kafka.group_id.clone(),
                    instance: (*id).clone(),
                    seconds: timeout.as_secs(),
                });
            }
        };
        held.extend(assigned);
    }
    // Unsubscribing (not closing) sends LeaveGroup, also for a static member.
    for (_, consumer) in &members {
        consumer.unsubscribe();
    }
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for (_, consumer) in &members {
            consumer.poll(Duration::from_millis(50));
        }
    }
    held.sort();
    held.dedup();
    Ok(held)
}
