//! A `read_committed` reader that runs on its own thread and notes when each record arrives, and
//! the group's committed input offsets: what the end-to-end benchmark measures with.

use crate::kafka::client_config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One record seen by the reader.
pub struct Seen {
    /// When the reader received it.
    pub at: Instant,
    pub payload: Option<Vec<u8>>,
}

/// A `read_committed` reader of topics on its own thread, noting when each record arrived:
/// what a benchmark needs to measure when outputs become visible.
pub struct TailReader {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    counts: Arc<Vec<AtomicU64>>,
    last_at: Arc<Mutex<Option<Instant>>>,
    consumer: Arc<BaseConsumer>,
    handle: Option<thread::JoinHandle<()>>,
}

impl TailReader {
    /// `keep[i]`: whether payloads of `topics[i]` are kept for analysis (the others are counted).
    /// Reads `partitions` partitions of each of `topics` from `from`, as consumer group
    /// `group` (nothing is committed).
    pub fn start(
        bootstrap: &str,
        group: &str,
        topics: &[String],
        keep: Vec<bool>,
        partitions: i32,
        from: Offset,
    ) -> Result<TailReader, String> {
        let consumer: BaseConsumer = client_config(
            bootstrap,
            &[
                ("group.id", group),
                ("isolation.level", "read_committed"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "10"),
            ],
        )
        .create()
        .map_err(|e| e.to_string())?;
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            for p in 0..partitions {
                tpl.add_partition_offset(t, p, from)
                    .map_err(|e| e.to_string())?;
            }
        }
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new(topics.iter().map(|_| AtomicU64::new(0)).collect());
        let last_at = Arc::new(Mutex::new(None));
        let index: HashMap<String, usize> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        let handle = {
            let (consumer, stop, seen, counts, last_at) = (
                Arc::clone(&consumer),
                Arc::clone(&stop),
                Arc::clone(&seen),
                Arc::clone(&counts),
                Arc::clone(&last_at),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match consumer.poll(Duration::from_millis(20)) {
                        Some(Ok(msg)) => {
                            let at = Instant::now();
                            let Some(&i) = index.get(msg.topic()) else {
                                continue;
                            };
                            counts[i].fetch_add(1, Ordering::Relaxed);
                            *last_at.lock().unwrap() = Some(at);
                            if keep[i] {
                                seen.lock().unwrap().push(Seen {
                                    at,
                                    payload: msg.payload().map(<[u8]>::to_vec),
                                });
                            }
                        }
                        Some(Err(e)) => eprintln!("reader: {e}"),
                        None => {}
                    }
                }
            })
        };
        Ok(TailReader {
            stop,
            seen,
            counts,
            last_at,
            consumer,
            handle: Some(handle),
        })
    }

    /// When the last record (of any topic) arrived.
    pub fn last_at(&self) -> Option<Instant> {
        *self.last_at.lock().unwrap()
    }

    /// Records read from `topics[i]`.
    pub fn count(&self, i: usize) -> u64 {
        self.counts[i].load(Ordering::Relaxed)
    }

    /// The kept records read so far (taken: the next call returns newer ones).
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// True when the reader's position reached the end of every assigned partition. Only
    /// meaningful when no transaction is open on them (then the last stable offset is the end).
    pub fn caught_up(&self) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        let Ok(positions) = self.consumer.position() else {
            return false;
        };
        let pos: HashMap<(String, i32), i64> = positions
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect();
        for e in assignment.elements() {
            let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
            else {
                return false;
            };
            if high == 0 {
                continue;
            }
            match pos.get(&(e.topic().to_owned(), e.partition())) {
                Some(p) if *p >= high => {}
                _ => return false,
            }
        }
        true
    }

    /// Stops the reading thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for TailReader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sum over the input partitions of the service group's committed offsets.
pub fn committed_total(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> Result<i64, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(5))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

/// Sum over `partitions` partitions of `topic` of the end offsets.
pub fn input_end(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<i64, KafkaError> {
    let mut total = 0;
    for p in 0..partitions {
        total += consumer
            .fetch_watermarks(topic, p, Duration::from_secs(5))?
            .1;
    }
    Ok(total)
}
