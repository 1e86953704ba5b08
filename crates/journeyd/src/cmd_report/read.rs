//! Reading the events file: one engine per core, each reading the whole file and parsing only
//! the lines of its own customers, under the virtual clock of `simulate`.

use super::{Run, BAD_LINES_LISTED};
use crate::virtual_clock::VirtualClock;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use journey_engine::{format_time, parse_event, Catalog, Effects, Engine};
use journey_spec::{Config, Journey};
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

/// Runs the events through a journey set; with `only`, just those customers' events, keeping
/// their decisions.
///
/// Customers are spread over one engine per available core by a hash of their id, as the
/// service spreads them over partitions: an engine keeps no state across customers, so the
/// decisions are the same. Each worker reads the whole file, finds each line's `customer_id`
/// without parsing it, and parses only its own lines (a line whose customer cannot be found
/// that way is parsed by every worker and kept by its owner). Worker 0 also follows every
/// line's timestamp, to count the events that go backwards in the file.
pub(super) fn run(
    config: &Config,
    journeys: &[Journey],
    events: &Path,
    until: Option<DateTime<Utc>>,
    only: Option<&HashSet<String>>,
) -> anyhow::Result<Run> {
    let catalog = Arc::new(Catalog::new(config, journeys.to_vec()));
    let workers = if only.is_some() {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    File::open(events).with_context(|| format!("cannot open events file {}", events.display()))?;
    let max_bytes = config.kafka.max_event_bytes;
    let results: Vec<anyhow::Result<Part>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|k| {
                let catalog = catalog.clone();
                scope.spawn(move || {
                    read_part(catalog, journeys, events, only, max_bytes, k, workers)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker panicked")))
            })
            .collect()
    });
    let mut parts = Vec::new();
    for r in results {
        parts.push(r?);
    }
    let latest = parts.iter().filter_map(|p| p.2).max();
    let end = until.or(latest);
    if let (Some(end), Some(latest)) = (end, latest) {
        if end < latest {
            bail!("--until {} is before the last event", format_time(end));
        }
    }
    let keep = only.is_some();
    let finished: Vec<anyhow::Result<Run>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(mut clock, mut stats, _)| {
                scope.spawn(move || -> anyhow::Result<Run> {
                    if let Some(end) = end {
                        let s = &mut stats;
                        clock.advance_to(end, &mut |effects| {
                            s.add(effects, keep);
                            Ok(())
                        })?;
                    }
                    Ok(stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker panicked")))
            })
            .collect()
    });
    let mut total: Option<Run> = None;
    for r in finished {
        let r = r?;
        match total.as_mut() {
            None => total = Some(r),
            Some(t) => t.merge(r),
        }
    }
    let mut total = total.unwrap_or_else(|| Run::new(journeys));
    total.bad_listed.sort_by_key(|(n, _)| *n);
    total.bad_listed.truncate(BAD_LINES_LISTED);
    total.kept.sort_by_key(|k| k.decision.at);
    total.last = end;
    Ok(total)
}

/// The value of the first `"KEY": "..."` string field of a JSON line, when it can be read
/// without a parser: the key appears once and the value has no escapes.
pub(super) fn quick_field<'l>(line: &'l [u8], key: &[u8]) -> Option<&'l [u8]> {
    let find = |hay: &[u8], from: usize| {
        hay[from..]
            .windows(key.len())
            .position(|w| w == key)
            .map(|p| p + from)
    };
    let at = find(line, 0)?;
    if find(line, at + 1).is_some() {
        return None;
    }
    let mut i = at + key.len();
    while line.get(i)?.is_ascii_whitespace() {
        i += 1;
    }
    if line[i] != b':' {
        return None;
    }
    i += 1;
    while line.get(i)?.is_ascii_whitespace() {
        i += 1;
    }
    if line[i] != b'"' {
        return None;
    }
    let rest = &line[i + 1..];
    let close = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    (rest[close] == b'"').then(|| &rest[..close])
}

/// The worker a customer belongs to (FNV-1a of the id).
pub(super) fn partition(customer: &[u8], workers: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in customer {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % workers as u64) as usize
}

/// What a worker has after reading: its engine, its figures, its latest event time.
type Part = (VirtualClock, Run, Option<DateTime<Utc>>);

/// One worker's pass over the file: its customers' events through its own engine.
fn read_part(
    catalog: Arc<Catalog>,
    journeys: &[Journey],
    events: &Path,
    only: Option<&HashSet<String>>,
    max_bytes: usize,
    me: usize,
    workers: usize,
) -> anyhow::Result<Part> {
    let mut clock = VirtualClock::new(Engine::new(catalog));
    let mut stats = Run::new(journeys);
    let file = File::open(events)
        .with_context(|| format!("cannot open events file {}", events.display()))?;
    let source = events.display().to_string();
    let keep = only.is_some();
    // The latest timestamp of the whole file so far (worker 0 only) and of this worker's events.
    let mut file_latest: Option<DateTime<Utc>> = None;
    let mut latest: Option<DateTime<Utc>> = None;
    let mut follow = |stats: &mut Run, t: DateTime<Utc>| match file_latest {
        Some(l) if t < l => stats.backwards += 1,
        _ => file_latest = Some(t),
    };
    crate::cmd_simulate::for_each_line(BufReader::with_capacity(1 << 20, file), |n, line| {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let hint = quick_field(line, b"\"customer_id\"");
        if let Some(c) = hint {
            if partition(c, workers) != me {
                if me == 0 {
                    let t = quick_field(line, b"\"timestamp\"")
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                    if let Some(t) = t {
                        follow(&mut stats, t.with_timezone(&Utc));
                    }
                }
                return Ok(());
            }
        }
        match parse_event(line, max_bytes) {
            Ok(event) => {
                if hint.is_none() && partition(event.customer_id.as_bytes(), workers) != me {
                    if me == 0 {
                        follow(&mut stats, event.timestamp);
                    }
                    return Ok(());
                }
                if me == 0 {
                    follow(&mut stats, event.timestamp);
                }
                if let Some(only) = only {
                    if !only.contains(&event.customer_id) {
                        return Ok(());
                    }
                }
                stats.events += 1;
                if !stats.customers.contains(&event.customer_id) {
                    stats.customers.insert(event.customer_id.clone());
                }
                latest = Some(latest.map_or(event.timestamp, |l| l.max(event.timestamp)));
                stats.first = Some(
                    stats
                        .first
                        .map_or(event.timestamp, |f| f.min(event.timestamp)),
                );
                let s = &mut stats;
                clock.handle(&event, &mut |effects: &Effects| {
                    s.add(effects, keep);
                    Ok(())
                })
            }
            Err(e) => {
                // Reported by the worker that owns the line, or by worker 0 when nobody can
                // tell who does.
                if hint.is_some() || me == 0 {
                    stats.bad_lines += 1;
                    if stats.bad_listed.len() < BAD_LINES_LISTED {
                        stats.bad_listed.push((n, format!("{source}:{n}: {e}")));
                    }
                }
                Ok(())
            }
        }
    })
    .with_context(|| format!("cannot read events from {source}"))?;
    Ok((clock, stats, latest))
}
