//! The Kafka limit of this machine for the service's shape of work: a minimal transactional
//! consume → produce → `send_offsets_to_transaction` → commit loop over the same backlog, on the
//! same broker, with the same client properties as the service (`journey_kafka::clients`, built
//! from the same `kafka` configuration: read_committed, linger, batch and fetch sizes,
//! compression, acks, idempotence), the same commit interval and records per transaction, and the
//! same wait for outstanding deliveries before each commit. It writes one small record per input
//! event (about the size of a send command) and does nothing else: no parsing, no state, no
//! changelog. `journeyd / baseline` is the share of that limit the service reaches.

use super::*;
use journey_kafka::clients::{
    client_config as props_config, consumer_properties, producer_properties,
};
use journey_kafka::stream_thread::MAX_RECORDS_PER_TRANSACTION;
use journey_spec::KafkaConfig;
use journeyd_testkit::{input_end, TailReader};
use phases::group_reader;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::TopicPartitionList;

/// Rates of one pass over the backlog.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rates {
    /// Events per second from the start (clients created, group joined, ...).
    pub from_start: f64,
    /// Events per second from readiness (the service: ready; the baseline: its first record).
    pub from_ready: f64,
}

/// Same pause as the service's wait for outstanding deliveries (`txn.rs`, `DRAIN_STEP`).
const DRAIN_STEP: Duration = Duration::from_micros(250);
/// Same bound on a transactional call as the service's (`txn.rs`, `TXN_TIMEOUT`).
const TXN_TIMEOUT: Duration = Duration::from_secs(10);
/// Same longest `poll` wait as the service's stream thread.
const MAX_POLL_WAIT: Duration = Duration::from_millis(50);

/// The baseline's output record for one input event: a JSON object naming the event's key,
/// partition and offset, padded to `size` bytes (a send command of the example journeys is
/// 300–400 bytes).
fn output_record(buf: &mut String, key: &[u8], partition: i32, offset: i64, size: usize) {
    use std::fmt::Write;
    buf.clear();
    let key = std::str::from_utf8(key).unwrap_or("");
    let _ = write!(
        buf,
        "{{\"customer_id\":\"{key}\",\"partition\":{partition},\"offset\":{offset},\"pad\":\""
    );
    while buf.len() + 2 < size {
        buf.push('x');
    }
    buf.push_str("\"}");
}

/// Waits until every record produced so far is acknowledged, as the service does before
/// `commit_transaction` (whose own flush would poll in 100 ms steps).
fn drain(producer: &Plain) {
    let deadline = Instant::now() + TXN_TIMEOUT;
    loop {
        match producer.flush(Duration::ZERO) {
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if Instant::now() < deadline =>
            {
                thread::sleep(DRAIN_STEP)
            }
            _ => return,
        }
    }
}

/// Runs the baseline over the backlog of `names.events` and prints its rates.
pub(super) fn baseline(
    args: &Args,
    kafka_config: &KafkaConfig,
    names: &Names,
    out_topic: &str,
    commit_interval: Duration,
) -> Result<Rates, String> {
    println!(
        "baseline: transactional consume -> produce ({} bytes per event) -> send offsets -> commit, every {} ms or {} records",
        args.baseline_record_bytes,
        commit_interval.as_millis(),
        MAX_RECORDS_PER_TRANSACTION
    );
    let offsets_reader = group_reader(args.bootstrap(), &names.group)?;
    let end =
        input_end(&offsets_reader, &names.events, args.partitions).map_err(|e| e.to_string())?;
    drop(offsets_reader);
    let mut kafka = kafka_config.clone();
    kafka.group_id = format!("{}.baseline", names.group);
    let txn_id = format!("{}-baseline", names.group);
    kafka.transactional_id = Some(txn_id.clone());

    let t0 = Instant::now();
    let consumer: BaseConsumer = props_config(&consumer_properties(&kafka, 0))
        .create()
        .map_err(|e| format!("baseline consumer: {e}"))?;
    let producer: Plain = props_config(&producer_properties(&kafka, &txn_id))
        .create()
        .map_err(|e| format!("baseline producer: {e}"))?;
    producer
        .init_transactions(Duration::from_secs(30))
        .map_err(|e| format!("baseline init_transactions: {e}"))?;
    consumer
        .subscribe(&[names.events.as_str()])
        .map_err(|e| e.to_string())?;
    let reader = TailReader::start(
        args.bootstrap(),
        &format!("{}.reader-baseline", names.group),
        &[out_topic.to_owned()],
        vec![false],
        args.partitions,
        Offset::Beginning,
    )?;

    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed_total = 0i64;
    let mut open = false;
    let mut opened = Instant::now();
    let mut records = 0usize;
    let mut commits = 0u32;
    let mut commit_time = Duration::ZERO;
    let mut first_at: Option<Instant> = None;
    let mut buf = String::with_capacity(args.baseline_record_bytes + 64);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut commit = |producer: &Plain,
                      consumer: &BaseConsumer,
                      next: &BTreeMap<i32, i64>,
                      open: &mut bool,
                      records: &mut usize|
     -> Result<i64, String> {
        let started = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for (p, o) in next {
            tpl.add_partition_offset(&names.events, *p, Offset::Offset(*o))
                .map_err(|e| e.to_string())?;
        }
        let group = consumer
            .group_metadata()
            .ok_or("baseline: no group metadata")?;
        producer
            .send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)
            .map_err(|e| format!("baseline send_offsets_to_transaction: {e}"))?;
        drain(producer);
        producer
            .commit_transaction(TXN_TIMEOUT)
            .map_err(|e| format!("baseline commit_transaction: {e}"))?;
        commit_time += started.elapsed();
        commits += 1;
        *open = false;
        *records = 0;
        Ok(next.values().sum())
    };
    while committed_total < end {
        if Instant::now() > deadline {
            return Err("baseline: timed out, the backlog was not committed within 600 s".into());
        }
        let wait = if open {
            (opened + commit_interval)
                .saturating_duration_since(Instant::now())
                .min(MAX_POLL_WAIT)
        } else {
            MAX_POLL_WAIT
        };
        match consumer.poll(wait) {
            Some(Ok(msg)) => {
                first_at.get_or_insert_with(Instant::now);
                if !open {
                    producer
                        .begin_transaction()
                        .map_err(|e| format!("baseline begin_transaction: {e}"))?;
                    open = true;
                    opened = Instant::now();
                }
                let key = msg.key().unwrap_or_default();
                output_record(
                    &mut buf,
                    key,
                    msg.partition(),
                    msg.offset(),
                    args.baseline_record_bytes,
                );
                let record = BaseRecord::<[u8], str>::to(out_topic)
                    .key(key)
                    .payload(buf.as_str());
                send_record(&producer, record)?;
                next.insert(msg.partition(), msg.offset() + 1);
                records += 1;
            }
            Some(Err(e)) => return Err(format!("baseline consumer: {e}")),
            None => {}
        }
        if open && (opened.elapsed() >= commit_interval || records >= MAX_RECORDS_PER_TRANSACTION) {
            committed_total = commit(&producer, &consumer, &next, &mut open, &mut records)?;
        }
    }
    let committed_at = Instant::now();
    let catch_deadline = Instant::now() + Duration::from_secs(120);
    // One output per event: right after the last commit its markers may not be written yet
    // (the last stable offset still below them), so the count is what tells the end.
    while (reader.count(0) as i64) < end || !reader.caught_up() {
        if Instant::now() > catch_deadline {
            return Err("baseline: timed out waiting for the reader to see every output".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let visible_at = reader.last_at().unwrap_or(committed_at).max(committed_at);
    let outputs = reader.count(0);
    drop(reader);
    let total = visible_at - t0;
    let first = first_at.unwrap_or(t0) - t0;
    let rates = Rates {
        from_start: end as f64 / total.as_secs_f64(),
        from_ready: end as f64 / total.saturating_sub(first).as_secs_f64().max(1e-9),
    };
    println!(
        "  first record after {:.2} s (clients created, transactions initialised, group joined); last commit after {:.2} s; last output read after {:.2} s",
        first.as_secs_f64(),
        (committed_at - t0).as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  all {end} events committed and their {outputs} outputs visible after {:.2} s from start: {:.0} events/s ({:.0} events/s from the first record)",
        total.as_secs_f64(),
        rates.from_start,
        rates.from_ready
    );
    println!(
        "  transactions: {commits} commits, mean commit {:.1} ms",
        commit_time.as_secs_f64() * 1000.0 / f64::from(commits.max(1))
    );
    consumer.unsubscribe();
    Ok(rates)
}

/// Hands one record to the producer, waiting while its queue is full (as the service does).
fn send_record(producer: &Plain, mut record: BaseRecord<'_, [u8], str>) -> Result<(), String> {
    let full_since = Instant::now();
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if full_since.elapsed() < TXN_TIMEOUT =>
            {
                record = back;
                thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(format!("baseline produce: {e}")),
        }
    }
}

/// Prints `journeyd / baseline` for both ways of counting time.
pub(super) fn print_ratio(service: Rates, baseline: Rates) {
    println!(
        "limit: journeyd / baseline = {:.2} from start ({:.0} / {:.0} events/s), {:.2} from readiness ({:.0} / {:.0} events/s); target >= 0.70",
        service.from_start / baseline.from_start,
        service.from_start,
        baseline.from_start,
        service.from_ready / baseline.from_ready,
        service.from_ready,
        baseline.from_ready,
    );
}
