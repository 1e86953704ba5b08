//! Kafka clients of the tests and benchmarks: creating and deleting topics, producing (every
//! delivery awaited), and reading topics back with `isolation.level=read_committed`.

use crate::{runtime, unique_suffix};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A client configuration for `bootstrap` with `extra` properties (librdkafka's log level
/// lowered to errors).
pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("log_level", "3");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
}

impl Record {
    /// The payload as JSON (panics with the payload if it is not).
    pub fn json(&self) -> Value {
        let bytes = self.payload.as_deref().unwrap_or_default();
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!(
                "record {}/{}@{} is not JSON ({e}): {}",
                self.topic,
                self.partition,
                self.offset,
                String::from_utf8_lossy(bytes)
            )
        })
    }
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// A record to produce.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub key: String,
    pub payload: Vec<u8>,
    /// `None`: the partitioner chooses from the key (librdkafka's consistent_random, as the
    /// runtime expects customers keyed by id).
    pub partition: Option<i32>,
}

impl Outgoing {
    /// A generated record (key and payload as generated).
    pub fn generated(record: &journey_eventgen::Generated) -> Outgoing {
        Outgoing {
            key: record.key.clone(),
            payload: record.payload.clone(),
            partition: None,
        }
    }

    /// An event keyed by its customer id.
    pub fn event(event: &Value) -> Outgoing {
        Outgoing {
            key: event["customer_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            payload: serde_json::to_vec(event).expect("serialize event"),
            partition: None,
        }
    }
}

/// A test's Kafka names and clients.
pub struct Kafka {
    pub bootstrap: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl Kafka {
    pub fn connect(bootstrap: &str) -> Kafka {
        let _guard = runtime().enter();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("message.max.bytes", "2000000")
            .set("linger.ms", "5")
            .set("log_level", "3")
            .create()
            .expect("create the test producer");
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("log_level", "3")
            .create()
            .expect("create the test admin client");
        Kafka {
            bootstrap: bootstrap.to_string(),
            producer,
            admin,
        }
    }

    /// Creates topics (`name`, partitions, compacted); an existing topic is accepted.
    pub fn create_topics(&self, topics: &[(String, i32, bool)]) {
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(name, partitions, compacted)| {
                let t = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
                if *compacted {
                    t.set("cleanup.policy", "compact")
                } else {
                    t
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = runtime()
            .block_on(self.admin.create_topics(new.iter(), &opts))
            .expect("create topics");
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => panic!("cannot create topic {topic}: {code}"),
            }
        }
        // Wait until every topic's partitions have a leader, so the first produce and the
        // first assignment do not race the topic creation.
        let deadline = Instant::now() + Duration::from_secs(30);
        for (name, partitions, _) in topics {
            loop {
                let ready = self
                    .partition_count(name)
                    .is_some_and(|n| n == *partitions as usize);
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "topic {name} has no metadata after 30s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Deletes topics (best effort: missing topics and errors are ignored).
    pub fn delete_topics(&self, topics: &[String]) {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let _ = runtime().block_on(self.admin.delete_topics(&names, &opts));
    }

    /// Partitions of `topic` with a leader, or `None` if the topic is unknown.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        let md = self
            .admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        if t.error().is_some() || t.partitions().is_empty() {
            return None;
        }
        if t.partitions().iter().any(|p| p.leader() < 0) {
            return None;
        }
        Some(t.partitions().len())
    }

    /// Produces records in order and waits for every delivery.
    pub fn produce(&self, topic: &str, records: &[Outgoing]) -> Vec<Delivered> {
        self.produce_with_headers(topic, records, &[])
    }

    /// Produces records with the same headers on each.
    pub fn produce_with_headers(
        &self,
        topic: &str,
        records: &[Outgoing],
        headers: &[(&str, &str)],
    ) -> Vec<Delivered> {
        let mut futures = Vec::with_capacity(records.len());
        for r in records {
            let mut h = OwnedHeaders::new();
            for (k, v) in headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(*v),
                });
            }
            let mut record = FutureRecord::to(topic)
                .key(r.key.as_bytes())
                .payload(&r.payload)
                .headers(h);
            if let Some(p) = r.partition {
                record = record.partition(p);
            }
            // Enqueued one after the other (waiting while the queue is full), so records of one
            // key keep their order; the deliveries are awaited together afterwards.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        futures.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        record = back;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err((e, _)) => panic!("cannot produce to {topic}: {e}"),
                }
            }
        }
        runtime().block_on(async {
            let mut delivered = Vec::with_capacity(futures.len());
            for f in futures {
                match f.await {
                    Ok(Ok(d)) => delivered.push(Delivered {
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Ok(Err((e, _))) => panic!("cannot produce to {topic}: {e}"),
                    Err(_) => panic!("the test producer was dropped while producing to {topic}"),
                }
            }
            delivered
        })
    }

    /// Reads `topics` from the beginning with `isolation.level=read_committed` (no consumer
    /// group: every partition is assigned directly) until `done` says the records read so far are
    /// enough, then keeps reading until nothing new arrives for `settle` (so duplicates that
    /// would follow are seen too), or until `timeout`. Returns what was read and whether `done`
    /// was reached.
    pub fn read_committed_until(
        &self,
        topics: &[&str],
        timeout: Duration,
        settle: Duration,
        mut done: impl FnMut(&[Record]) -> bool,
    ) -> (Vec<Record>, bool) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set(
                "group.id",
                format!("journeyd-test-reader-{}", unique_suffix()),
            )
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("log_level", "3")
            .create()
            .expect("create a read_committed consumer");
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            let n = self
                .partition_count(topic)
                .unwrap_or_else(|| panic!("topic {topic} does not exist"));
            for p in 0..n as i32 {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("add partition");
            }
        }
        consumer.assign(&tpl).expect("assign partitions");
        let start = Instant::now();
        let mut records = Vec::new();
        let mut reached = done(&records);
        let mut last_new = Instant::now();
        loop {
            if start.elapsed() >= timeout {
                break;
            }
            if reached && last_new.elapsed() >= settle {
                break;
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    records.push(Record {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                        headers,
                    });
                    last_new = Instant::now();
                    if !reached {
                        reached = done(&records);
                    }
                }
                // Partition EOF and transient errors are not failures of the reader.
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => eprintln!("test reader: {e}"),
            }
        }
        (records, reached)
    }

    /// Reads until at least `n` records are there (then settles), see
    /// [`Kafka::read_committed_until`].
    pub fn read_committed_n(
        &self,
        topics: &[&str],
        n: usize,
        timeout: Duration,
        settle: Duration,
    ) -> Vec<Record> {
        self.read_committed_until(topics, timeout, settle, |r| r.len() >= n)
            .0
    }
}
