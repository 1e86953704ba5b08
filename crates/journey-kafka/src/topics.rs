//! Topic setup at start: every topic the runtime reads or writes exists before the consumer
//! joins the group, so the first transaction never fails on a missing topic.
//!
//! - Input topics that are missing are created with [`DEFAULT_INPUT_PARTITIONS`] partitions (a
//!   development convenience, logged); in production they are expected to exist.
//! - Several input topics must have the same partition count: partition `p` of each holds the
//!   same customers (same key, same partitioner) and they share changelog partition `p`.
//! - Output topics (channel topics, decisions, dead letter) are created with the input's
//!   partition count.
//! - The changelog is created compacted with the input's partition count; an existing
//!   changelog with fewer partitions is an error (input partition `p` writes to changelog
//!   partition `p`).
//!
//! Replication factor -1 lets the broker apply its default.

use crate::clients::{admin_properties, client_config};
use journey_spec::Config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;

/// Partition count of an input topic that has to be created.
pub const DEFAULT_INPUT_PARTITIONS: i32 = 3;

/// Why the topics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("kafka admin client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("cannot reach the Kafka cluster at {bootstrap}: {reason}")]
    Unreachable { bootstrap: String, reason: String },
    #[error("cannot create topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("input topics must have the same partition count (they share the state changelog), found {0}")]
    InputPartitionsDiffer(String),
    #[error("state topic {topic} has {found} partitions but the input has {needed}; it needs at least as many (partition p holds the customers of input partition p)")]
    StateTooSmall {
        topic: String,
        found: usize,
        needed: usize,
    },
    #[error("topics {0:?} still missing from the cluster metadata after creation")]
    NotVisible(Vec<String>),
}

/// What must exist, given the existing topics' partition counts (pure planning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    /// Partition count of the input topics (and of the changelog).
    pub partitions: usize,
    /// Topics to create: name, partitions, compacted.
    pub create: Vec<(String, usize, bool)>,
}

/// Plans topic creation from the existing topics and their partition counts.
pub fn plan_topics(
    config: &Config,
    existing: &BTreeMap<String, usize>,
) -> Result<TopicPlan, TopicError> {
    let kafka = &config.kafka;
    let mut create = Vec::new();
    let mut counts = BTreeMap::new();
    for topic in &kafka.input_topics {
        match existing.get(topic) {
            Some(n) => {
                counts.insert(topic.clone(), *n);
            }
            None => {
                create.push((topic.clone(), DEFAULT_INPUT_PARTITIONS as usize, false));
                counts.insert(topic.clone(), DEFAULT_INPUT_PARTITIONS as usize);
            }
        }
    }
    let distinct: std::collections::BTreeSet<usize> = counts.values().copied().collect();
    if distinct.len() > 1 {
        let list = counts
            .iter()
            .map(|(t, n)| format!("{t}={n}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(TopicError::InputPartitionsDiffer(list));
    }
    let partitions = distinct
        .into_iter()
        .next()
        .unwrap_or(DEFAULT_INPUT_PARTITIONS as usize);
    let mut outputs: Vec<&str> = config.channels.values().map(|c| c.topic.as_str()).collect();
    outputs.push(&kafka.decisions_topic);
    outputs.push(&kafka.dead_letter_topic);
    for topic in outputs {
        if !existing.contains_key(topic) && !create.iter().any(|(t, _, _)| t == topic) {
            create.push((topic.to_owned(), partitions, false));
        }
    }
    match existing.get(&kafka.state_topic) {
        Some(found) if *found < partitions => {
            return Err(TopicError::StateTooSmall {
                topic: kafka.state_topic.clone(),
                found: *found,
                needed: partitions,
            })
        }
        Some(_) => {}
        None => create.push((kafka.state_topic.clone(), partitions, true)),
    }
    Ok(TopicPlan { partitions, create })
}

impl TopicError {
    /// Whether the brokers were merely unreachable or slow (down, restarting, overloaded), so
    /// that trying again later may succeed. Wrong credentials, TLS trust and configuration
    /// problems are not: they fail the start at once with their reason.
    pub fn is_transient(&self) -> bool {
        use rdkafka::error::KafkaError as K;
        match self {
            TopicError::Client(K::MetadataFetch(_) | K::AdminOp(_)) => true,
            TopicError::Unreachable { reason, .. } => {
                !crate::clients::is_definitive_connection_problem(reason)
            }
            _ => false,
        }
    }
}

/// Creates the missing topics and returns the input partition count.
pub async fn ensure_topics(config: &Config) -> Result<usize, TopicError> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(&admin_properties(&config.kafka)).create()?;
    let existing = match existing_topics(&admin).await {
        Ok(existing) => existing,
        Err(TopicError::Client(error)) => {
            // "Broker transport failure" does not say why; ask librdkafka (wrong credentials,
            // TLS trust, unsupported mechanism...).
            let kafka = config.kafka.clone();
            let why = tokio::task::block_in_place(|| {
                crate::clients::connection_problem(&kafka, Duration::from_secs(10))
            });
            return Err(match why {
                Some(reason) => TopicError::Unreachable {
                    bootstrap: kafka.bootstrap_servers,
                    reason,
                },
                None => TopicError::Client(error),
            });
        }
        Err(other) => return Err(other),
    };
    let plan = plan_topics(config, &existing)?;
    if plan.create.is_empty() {
        return Ok(plan.partitions);
    }
    let new_topics: Vec<NewTopic<'_>> = plan
        .create
        .iter()
        .map(|(name, partitions, compacted)| {
            let topic = NewTopic::new(name, *partitions as i32, TopicReplication::Fixed(-1));
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(topic) => {
                let (_, partitions, compacted) = plan
                    .create
                    .iter()
                    .find(|(t, _, _)| *t == topic)
                    .cloned()
                    .unwrap_or((topic.clone(), 0, false));
                if config.kafka.input_topics.contains(&topic) {
                    tracing::warn!(topic, partitions, "input topic was missing: created it");
                } else {
                    tracing::info!(topic, partitions, compacted, "created topic");
                }
            }
            // Another instance created it meanwhile.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    // Creation is asynchronous in the cluster: wait until the metadata shows every topic.
    let wanted: Vec<String> = plan.create.iter().map(|(t, _, _)| t.clone()).collect();
    for _ in 0..50 {
        let existing = existing_topics(&admin).await?;
        if wanted.iter().all(|t| existing.contains_key(t)) {
            return Ok(plan.partitions);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let existing = existing_topics(&admin).await?;
    Err(TopicError::NotVisible(
        wanted
            .into_iter()
            .filter(|t| !existing.contains_key(t))
            .collect(),
    ))
}

/// Names and partition counts of the cluster's topics.
async fn existing_topics(
    admin: &AdminClient<DefaultClientContext>,
) -> Result<BTreeMap<String, usize>, TopicError> {
    // Metadata requests block; keep them off the async executor threads.
    let metadata = tokio::task::block_in_place(|| {
        admin.inner().fetch_metadata(None, Duration::from_secs(10))
    })?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broker_that_is_away_is_waited_for() {
        let unreachable = |reason: &str| TopicError::Unreachable {
            bootstrap: "127.0.0.1:9092".into(),
            reason: reason.into(),
        };
        assert!(unreachable(
            "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
        )
        .is_transient());
        assert!(!unreachable("SASL authentication error: Authentication failed during authentication due to invalid credentials").is_transient());
        assert!(!unreachable("SSL handshake failed: certificate verify failed").is_transient());
        assert!(
            TopicError::Client(rdkafka::error::KafkaError::MetadataFetch(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
            ))
            .is_transient()
        );
        assert!(!TopicError::StateTooSmall {
            topic: "journeyd.state".into(),
            found: 1,
            needed: 3,
        }
        .is_transient());
    }

    fn config() -> Config {
        Config::example()
    }

    fn existing(list: &[(&str, usize)]) -> BTreeMap<String, usize> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn creates_outputs_and_compacted_changelog_with_input_partition_count() {
        let config = config();
        let plan = plan_topics(&config, &existing(&[("events", 6)])).unwrap();
        assert_eq!(plan.partitions, 6);
        assert_eq!(
            plan.create,
            vec![
                ("actions.email".to_owned(), 6, false),
                ("actions.sms".to_owned(), 6, false),
                ("actions.push".to_owned(), 6, false),
                ("journey.decisions".to_owned(), 6, false),
                ("events.dead_letter".to_owned(), 6, false),
                ("journeyd.state".to_owned(), 6, true),
            ]
        );
    }

    #[test]
    fn missing_input_is_created_with_the_default_count() {
        let config = config();
        let plan = plan_topics(&config, &BTreeMap::new()).unwrap();
        assert_eq!(plan.partitions, DEFAULT_INPUT_PARTITIONS as usize);
        assert_eq!(plan.create[0], ("events".to_owned(), 3, false));
    }

    #[test]
    fn nothing_to_create_when_everything_exists() {
        let config = config();
        let plan = plan_topics(
            &config,
            &existing(&[
                ("events", 2),
                ("actions.email", 1),
                ("actions.sms", 1),
                ("actions.push", 1),
                ("journey.decisions", 1),
                ("events.dead_letter", 1),
                ("journeyd.state", 2),
            ]),
        )
        .unwrap();
        assert!(plan.create.is_empty());
    }

    #[test]
    fn changelog_smaller_than_input_is_refused() {
        let config = config();
        let err =
            plan_topics(&config, &existing(&[("events", 6), ("journeyd.state", 3)])).unwrap_err();
        assert!(matches!(
            err,
            TopicError::StateTooSmall {
                found: 3,
                needed: 6,
                ..
            }
        ));
    }

    #[test]
    fn input_topics_with_different_counts_are_refused() {
        let mut config = config();
        config.kafka.input_topics = vec!["a".into(), "b".into()];
        let err = plan_topics(&config, &existing(&[("a", 6), ("b", 3)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input topics must have the same partition count (they share the state changelog), found a=6, b=3"
        );
    }
}
