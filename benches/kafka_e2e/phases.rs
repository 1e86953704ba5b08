//! The three phases of the end-to-end benchmark (see `main.rs`) and how they print figures.

use super::*;
use journeyd_testkit::{committed_total, input_end, TailReader};

/// Prints what histogram `name` observed between `before` and now: count, mean, p50/p99
/// (interpolated within buckets) and the upper bound of the bucket holding the largest
/// observation.
pub(super) fn print_since(service: &Service, name: &str, before: &Histogram) {
    let delta = histogram(&service.metrics(), name).since(before);
    let n = delta.count;
    if n <= 0.0 {
        println!("  {name}: no observations in this phase");
        return;
    }
    println!(
        "  {name} (this phase, from /metrics): n={} mean={:.1} ms p50~{:.1} ms p99~{:.1} ms max<={} ms",
        n,
        delta.sum / n * 1000.0,
        delta.quantile(0.5).unwrap_or(f64::NAN) * 1000.0,
        delta.quantile(0.99).unwrap_or(f64::NAN) * 1000.0,
        delta
            .buckets
            .iter()
            .find(|(_, c)| *c >= n)
            .map_or("inf".to_owned(), |(le, _)| format!("{:.0}", le * 1000.0)),
    );
}

pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub(super) fn summary(label: &str, mut values: Vec<f64>) {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        println!("  {label}: no samples");
        return;
    }
    println!(
        "  {label}: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
        values.len(),
        percentile(&values, 0.50) * 1000.0,
        percentile(&values, 0.90) * 1000.0,
        percentile(&values, 0.99) * 1000.0,
        values.last().copied().unwrap_or(f64::NAN) * 1000.0,
    );
}

pub(super) fn produce_backlog(
    args: &Args,
    names: &Names,
    producer: &Plain,
    generator: &mut Events,
) -> Result<(), String> {
    println!(
        "throughput: producing a backlog of {} events over {} customers",
        args.events, args.customers
    );
    let started = Instant::now();
    let now = Utc::now();
    for _ in 0..args.events {
        let e = generator.next(now, 0.0);
        send(producer, &names.events, &e).map_err(|e| e.to_string())?;
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flushing the backlog: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  backlog produced in {:.2} s ({:.0} events/s)",
        secs,
        args.events as f64 / secs
    );
    Ok(())
}

pub(super) fn output_topics(names: &Names) -> Vec<String> {
    let mut topics: Vec<String> = names.channels.values().cloned().collect();
    topics.push(names.decisions.clone());
    topics.push(names.state.clone());
    topics.push(names.dead_letter.clone());
    topics
}

pub(super) fn group_reader(bootstrap: &str, group: &str) -> Result<BaseConsumer, String> {
    client_config(
        bootstrap,
        &[("group.id", group), ("enable.auto.commit", "false")],
    )
    .create()
    .map_err(|e| e.to_string())
}

pub(super) fn throughput(
    args: &Args,
    names: &Names,
    service: &Service,
) -> Result<baseline::Rates, String> {
    let t0 = service.started;
    service.wait_ready(Duration::from_secs(120))?;
    let ready = t0.elapsed();
    let topics = output_topics(names);
    let channels = names.channels.len();
    let keep = vec![false; topics.len()];
    let mut reader = TailReader::start(
        args.bootstrap(),
        &format!("{}.reader-a", names.group),
        &topics,
        keep,
        args.partitions,
        Offset::Beginning,
    )?;
    let offsets = group_reader(args.bootstrap(), &names.group)?;
    let end = input_end(&offsets, &names.events, args.partitions).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut committed_at = None;
    let mut last_print = Instant::now();
    while Instant::now() < deadline {
        if service.failed() {
            return Err("the service stopped during the throughput phase".into());
        }
        let committed =
            committed_total(&offsets, &names.events, args.partitions).unwrap_or_default();
        if committed >= end {
            committed_at = Some(Instant::now());
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  ... {committed}/{end} committed after {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let Some(committed_at) = committed_at else {
        return Err("timed out: the backlog was not committed within 600 s".into());
    };
    let catch_deadline = Instant::now() + Duration::from_secs(120);
    while !reader.caught_up() {
        if Instant::now() > catch_deadline {
            return Err("timed out waiting for the reader to see every output".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    reader.stop();
    let visible_at = reader.last_at().unwrap_or(committed_at);
    let visible_at = visible_at.max(committed_at);
    let total = visible_at - t0;
    let processing = total.saturating_sub(ready);
    let commands: u64 = (0..channels).map(|i| reader.count(i)).sum();
    println!(
        "  service ready (group joined, empty changelog restored) after {:.2} s; input offsets all committed after {:.2} s; last output read after {:.2} s",
        ready.as_secs_f64(),
        (committed_at - t0).as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  all {} events committed and their outputs visible after {:.2} s from start: {:.0} events/s ({:.0} events/s from readiness)",
        end,
        total.as_secs_f64(),
        end as f64 / total.as_secs_f64(),
        end as f64 / processing.as_secs_f64().max(1e-9)
    );
    println!(
        "  outputs: {} commands ({}), {} decisions, {} changelog records, {} dead letters",
        commands,
        names
            .channels
            .keys()
            .enumerate()
            .map(|(i, ch)| format!("{ch} {}", reader.count(i)))
            .collect::<Vec<_>>()
            .join(", "),
        reader.count(channels),
        reader.count(channels + 1),
        reader.count(channels + 2),
    );
    let body = service.metrics();
    let Histogram {
        buckets,
        count,
        sum,
        ..
    } = histogram(&body, "journeyd_transaction_commit_seconds");
    if count > 0.0 {
        println!(
            "  transactions: {} commits, mean commit {:.1} ms, p99 ~{:.1} ms",
            count,
            sum / count * 1000.0,
            histogram_quantile(0.99, &buckets).unwrap_or(f64::NAN) * 1000.0
        );
    }
    Ok(baseline::Rates {
        from_start: end as f64 / total.as_secs_f64(),
        from_ready: end as f64 / processing.as_secs_f64().max(1e-9),
    })
}

/// Produces events at a steady rate for `--seconds` on this thread; returns the produce
/// instant of each event by sequence number, and the wall-clock produce time in ms.
pub(super) fn steady_load(
    args: &Args,
    names: &Names,
    producer: &Plain,
    generator: &mut Events,
    rate: u64,
    timer_share: f64,
) -> Result<HashMap<u64, (Instant, i64)>, String> {
    let total = rate * args.seconds;
    let mut sent = HashMap::with_capacity(total as usize);
    let started = Instant::now();
    let mut n = 0u64;
    while n < total {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        let due = due.min(total);
        if n >= due {
            thread::sleep(Duration::from_micros(500));
            continue;
        }
        while n < due {
            let now = Utc::now();
            let e = generator.next(now, timer_share);
            let at = Instant::now();
            send(producer, &names.events, &e).map_err(|e| e.to_string())?;
            if timer_share == 0.0 || is_timer(&e) {
                sent.insert(e.seq, (at, now.timestamp_millis()));
            }
            n += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  produced {total} events in {secs:.2} s ({:.0} events/s)",
        total as f64 / secs
    );
    Ok(sent)
}

/// Command topics only, with payloads kept.
pub(super) fn command_reader(
    args: &Args,
    names: &Names,
    suffix: &str,
) -> Result<TailReader, String> {
    let topics: Vec<String> = names.channels.values().cloned().collect();
    let keep = vec![true; topics.len()];
    TailReader::start(
        args.bootstrap(),
        &format!("{}.reader-{suffix}", names.group),
        &topics,
        keep,
        args.partitions,
        // Only commands of the phase's own events matter: start at the end.
        Offset::End,
    )
}

/// The sequence number in an event id of this run (`<run>-e<seq>`).
pub(super) fn seq_of(event_id: &str, run: &str) -> Option<u64> {
    event_id.strip_prefix(run)?.strip_prefix("-e")?.parse().ok()
}

pub(super) fn latency(
    args: &Args,
    rate: u64,
    commit_interval_ms: u64,
    names: &Names,
    service: &Service,
    producer: &Plain,
    generator: &mut Events,
) -> Result<(), String> {
    println!(
        "latency: {} events/s for {} s (same mix, customers already known from the backlog)",
        rate, args.seconds
    );
    let reader = command_reader(args, names, &format!("b{rate}"))?;
    let e2c = "journeyd_event_to_command_seconds";
    let commit = "journeyd_transaction_commit_seconds";
    let (e2c_before, commit_before) = (
        histogram(&service.metrics(), e2c),
        histogram(&service.metrics(), commit),
    );
    let sent = steady_load(args, names, producer, generator, rate, 0.0)?;
    settle(service, Duration::from_secs(5));
    let mut latencies = Vec::new();
    for s in reader.take_seen() {
        let Some(v) = s
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        let Some(seq) = v["trigger_event_id"]
            .as_str()
            .and_then(|id| seq_of(id, &names.group))
        else {
            continue;
        };
        if let Some((at, _)) = sent.get(&seq) {
            latencies.push(s.at.saturating_duration_since(*at).as_secs_f64());
        }
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    summary(
        "event produced -> command visible (read_committed)",
        latencies,
    );
    if !sorted.is_empty() {
        println!(
            "  p99 {:.1} ms = {:.2} x the commit interval ({commit_interval_ms} ms; target at 10,000 events/s: <= 2)",
            percentile(&sorted, 0.99) * 1000.0,
            percentile(&sorted, 0.99) * 1000.0 / commit_interval_ms as f64
        );
    }
    print_since(service, e2c, &e2c_before);
    print_since(service, commit, &commit_before);
    Ok(())
}

/// Lets the last events' transactions commit and their outputs reach the reader.
pub(super) fn settle(service: &Service, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !service.failed() {
        thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn timers(
    args: &Args,
    names: &Names,
    service: &Service,
    producer: &Plain,
    generator: &mut Events,
) -> Result<(), String> {
    println!(
        "timers: {} events/s for {} s, {:.0}% of them start a journey waiting {} s",
        args.rate,
        args.seconds,
        args.timer_share * 100.0,
        args.timer_wait
    );
    let metric = "journeyd_timer_lateness_seconds";
    let lateness_before = histogram(&service.metrics(), metric);
    let reader = command_reader(args, names, "c")?;
    let sent = steady_load(
        args,
        names,
        producer,
        generator,
        args.rate,
        args.timer_share,
    )?;
    // The last timers are due `timer_wait` after the last event; give them that plus margin.
    settle(service, Duration::from_secs(args.timer_wait + 5));
    let wait = Duration::from_secs(args.timer_wait);
    let mut visible = Vec::new();
    let mut issued = Vec::new();
    for s in reader.take_seen() {
        let Some(v) = s
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        if v["template"] != "bench_timer_ping" {
            continue;
        }
        let Some(seq) = v["trigger_event_id"]
            .as_str()
            .and_then(|id| seq_of(id, &names.group))
        else {
            continue;
        };
        let Some((at, wall_ms)) = sent.get(&seq) else {
            continue;
        };
        let due = *at + wait;
        visible.push(s.at.saturating_duration_since(due).as_secs_f64());
        if let Some(issued_at) = v["issued_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let due_ms = wall_ms + wait.as_millis() as i64;
            issued.push(((issued_at.timestamp_millis() - due_ms).max(0)) as f64 / 1000.0);
        }
    }
    let started = sent.len();
    println!(
        "  {} journeys started, {} sends seen (a customer already in the journey does not enter again)",
        started,
        visible.len()
    );
    summary(
        "send visible (read_committed) - (event produced + wait)",
        visible,
    );
    summary("issued_at - (event timestamp + wait)", issued);
    print_since(service, metric, &lateness_before);
    Ok(())
}
