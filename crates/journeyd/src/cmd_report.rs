//! `journeyd report`: a backtest of the journeys over a file of events, as one self-contained
//! HTML page (no network: styles, diagrams and charts are inlined). See docs/journeys.md,
//! "Backtest report".
//!
//! The events run through the engine exactly as in `simulate` (same virtual clock,
//! [`crate::virtual_clock`]); the report is built from the decision records:
//! - per journey: entered, held out, suppressed at entry by reason, exited, goal, completed, and
//!   the goal rate of treatment vs holdout with a 95% confidence interval of the difference;
//! - the journey's flow (the `graph --format svg` drawing) with customers per step and edge.
//!   Steps that record no decision (waits, branches) are counted along the only path through
//!   such steps between two recorded ones (or to the end), so a figure on a wait or a branch is
//!   inferred, not observed;
//! - sends per channel over time (an inline SVG chart) and per template, channel skips by
//!   reason, quiet-hour deferrals, customers held back by each frequency cap;
//! - with `--baseline-journeys DIR`, the same events through another journey set: counts side
//!   by side, the number of customers whose sends differ, and a few of them with their decisions.
//!   The engine keeps no state across customers, so those few are re-run alone.
//!
//! Bad event lines are counted and the first few listed with their line numbers; they never
//! stop the report.

use crate::cmd_test::describe_decision;
use crate::flow::{self, group_digits, xml_escape, Flow, FlowCounts};
use crate::virtual_clock::VirtualClock;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use journey_engine::DecisionKind as K;
use journey_engine::{format_time, parse_event, Catalog, Decision, Effects, Engine, Reason};
use journey_spec::{Action, Config, Journey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Bad lines listed one by one (the rest are counted).
const BAD_LINES_LISTED: usize = 10;
/// Customers whose sends differ that are shown with their decisions.
const DIFFERING_SHOWN: usize = 5;

/// Arguments of `journeyd report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Engine configuration file (its `journeys_dir` is the journey set reported on).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Events, one JSON object a line (as for `simulate`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: PathBuf,
    /// After the last event, fire the timers due up to this instant.
    #[arg(long, value_name = "RFC3339", value_parser = crate::cmd_simulate::parse_instant)]
    pub until: Option<DateTime<Utc>>,
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
    /// Another journeys directory to compare with, over the same events and configuration.
    #[arg(long, value_name = "DIR")]
    pub baseline_journeys: Option<PathBuf>,
}

/// Entry point of `journeyd report`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let config = match journey_spec::load_config(&args.config) {
        Ok(c) => c,
        Err(ds) => return Ok(diagnostics(&ds)),
    };
    let journeys = match journey_spec::load_journeys_dir(&config.journeys_dir, &config) {
        Ok(j) => j,
        Err(ds) => return Ok(diagnostics(&ds)),
    };
    let baseline = match &args.baseline_journeys {
        Some(dir) => match journey_spec::load_journeys_dir(dir, &config) {
            Ok(j) => Some((dir.clone(), j)),
            Err(ds) => return Ok(diagnostics(&ds)),
        },
        None => None,
    };
    let started = std::time::Instant::now();
    let current = run(&config, &journeys, &args.events, args.until, None)?;
    let compared = match &baseline {
        Some((dir, baseline_journeys)) => {
            let base = run(&config, baseline_journeys, &args.events, args.until, None)?;
            let mut differing: Vec<&String> = current
                .customer_sends
                .iter()
                .filter(|(c, h)| base.customer_sends.get(*c) != Some(h))
                .map(|(c, _)| c)
                .chain(
                    base.customer_sends
                        .keys()
                        .filter(|c| !current.customer_sends.contains_key(*c)),
                )
                .collect();
            differing.sort();
            differing.dedup();
            let count = differing.len();
            let shown: HashSet<String> = differing
                .iter()
                .take(DIFFERING_SHOWN)
                .map(|c| c.to_string())
                .collect();
            let mine = run(&config, &journeys, &args.events, args.until, Some(&shown))?;
            let theirs = run(
                &config,
                baseline_journeys,
                &args.events,
                args.until,
                Some(&shown),
            )?;
            Some(Comparison {
                dir: dir.clone(),
                base,
                differing: count,
                current_records: mine.kept,
                base_records: theirs.kept,
            })
        }
        None => None,
    };
    let html = render(&args, &config, &current, compared.as_ref());
    std::fs::write(&args.out, &html)
        .with_context(|| format!("cannot write report {}", args.out.display()))?;
    eprintln!(
        "report: {} events ({} bad lines), {} customers, {} journeys in {:.1}s; wrote {} ({} bytes)",
        current.events,
        current.bad_lines,
        current.customers.len(),
        current.journeys.len(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        html.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn diagnostics(ds: &[journey_spec::Diagnostic]) -> ExitCode {
    for d in ds {
        eprintln!("{d}");
    }
    ExitCode::from(1)
}

struct Comparison {
    dir: PathBuf,
    base: Run,
    differing: usize,
    current_records: Vec<Kept>,
    base_records: Vec<Kept>,
}

/// A decision kept for display (with the template for sends).
struct Kept {
    decision: Decision,
    template: Option<String>,
}

/// Counts about one journey.
struct JourneyStats {
    id: String,
    version: u32,
    name: Option<String>,
    flow: Flow,
    /// Flow node index by key.
    index: HashMap<String, usize>,
    /// Steps that record no decision when passed (waits, `wait_for`, branches).
    silent: Vec<bool>,
    /// Outgoing (edge index, target node) per node.
    out: Vec<Vec<(usize, usize)>>,
    paths: HashMap<(usize, usize), Option<Vec<usize>>>,
    node_counts: Vec<u64>,
    edge_counts: Vec<u64>,
    entered: u64,
    entered_holdout: u64,
    suppressed: BTreeMap<String, u64>,
    exited: u64,
    goals: u64,
    goals_holdout: u64,
    completed: u64,
    sends: u64,
    held_sends: u64,
}

impl JourneyStats {
    fn new(j: &Journey) -> Self {
        let flow = flow::flow(j);
        let index: HashMap<String, usize> = flow
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.clone(), i))
            .collect();
        let mut silent = vec![false; flow.nodes.len()];
        for s in &j.steps {
            if let Some(&i) = index.get(&flow::step_key(&s.id)) {
                silent[i] = matches!(
                    s.action,
                    Action::Wait(_) | Action::WaitUntil(_) | Action::WaitFor(_) | Action::Branch(_)
                );
            }
        }
        let mut out = vec![Vec::new(); flow.nodes.len()];
        for (k, e) in flow.edges.iter().enumerate() {
            if e.dashed {
                continue;
            }
            if let (Some(&a), Some(&b)) = (index.get(&e.from), index.get(&e.to)) {
                out[a].push((k, b));
            }
        }
        JourneyStats {
            id: j.id.clone(),
            version: j.version,
            name: j.name.clone(),
            node_counts: vec![0; flow.nodes.len()],
            edge_counts: vec![0; flow.edges.len()],
            flow,
            index,
            silent,
            out,
            paths: HashMap::new(),
            entered: 0,
            entered_holdout: 0,
            suppressed: BTreeMap::new(),
            exited: 0,
            goals: 0,
            goals_holdout: 0,
            completed: 0,
            sends: 0,
            held_sends: 0,
        }
    }

    /// The edges of the shortest path from `a` to `b` through silent steps only.
    fn path(&mut self, a: usize, b: usize) -> Option<Vec<usize>> {
        if let Some(p) = self.paths.get(&(a, b)) {
            return p.clone();
        }
        let n = self.out.len();
        let mut prev: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut queue = std::collections::VecDeque::from([a]);
        seen[a] = true;
        let mut found = false;
        while let Some(x) = queue.pop_front() {
            for &(e, y) in &self.out[x] {
                if y == b {
                    prev[y] = Some((x, e));
                    found = true;
                    break;
                }
                if !seen[y] && self.silent[y] {
                    seen[y] = true;
                    prev[y] = Some((x, e));
                    queue.push_back(y);
                }
            }
            if found {
                break;
            }
        }
        let result = found.then(|| {
            let mut edges = Vec::new();
            let mut at = b;
            while let Some((p, e)) = prev[at] {
                edges.push(e);
                at = p;
                if at == a {
                    break;
                }
            }
            edges.reverse();
            edges
        });
        self.paths.insert((a, b), result.clone());
        result
    }

    /// Moves an instance from node `from` to node `to`, counting the edges and nodes passed.
    fn walk(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        match self.path(from, to) {
            Some(edges) => {
                for e in edges {
                    self.edge_counts[e] += 1;
                    let target = &self.flow.edges[e].to;
                    if let Some(&t) = self.index.get(target) {
                        self.node_counts[t] += 1;
                    }
                }
            }
            None => self.node_counts[to] += 1,
        }
    }

    fn dashed_edge(&mut self, from: &str) {
        if let Some(k) = self
            .flow
            .edges
            .iter()
            .position(|e| e.dashed && e.from == from)
        {
            self.edge_counts[k] += 1;
        }
        if let Some(&i) = self.index.get(from) {
            self.node_counts[i] += 1;
        }
    }
}

/// Everything one run over the events produced.
struct Run {
    journeys: Vec<JourneyStats>,
    by_id: HashMap<String, usize>,
    events: u64,
    bad_lines: u64,
    /// (line number, message) of the first bad lines.
    bad_listed: Vec<(usize, String)>,
    backwards: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    customers: HashSet<String>,
    /// Sends per (channel, hour since the epoch).
    sends_per_hour: BTreeMap<(String, i64), u64>,
    /// Sends per (journey, template, channel).
    templates: BTreeMap<(String, String, String), u64>,
    skips: BTreeMap<String, u64>,
    deferred: u64,
    no_channel: u64,
    /// Customers held back at least once per frequency cap.
    capped: BTreeMap<String, HashSet<String>>,
    /// Per customer: (journey, node) where each of their instances stands.
    position: HashMap<String, Vec<(u32, u32)>>,
    /// Per customer: a hash of their sends (journey, step, template, channel, time) in order.
    customer_sends: HashMap<String, u64>,
    /// Decisions of the customers asked for (only with `only`).
    kept: Vec<Kept>,
}

impl Run {
    fn new(journeys: &[Journey]) -> Self {
        let stats: Vec<JourneyStats> = journeys.iter().map(JourneyStats::new).collect();
        let by_id = stats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Run {
            journeys: stats,
            by_id,
            events: 0,
            bad_lines: 0,
            bad_listed: Vec::new(),
            backwards: 0,
            first: None,
            last: None,
            customers: HashSet::new(),
            sends_per_hour: BTreeMap::new(),
            templates: BTreeMap::new(),
            skips: BTreeMap::new(),
            deferred: 0,
            no_channel: 0,
            capped: BTreeMap::new(),
            position: HashMap::new(),
            customer_sends: HashMap::new(),
            kept: Vec::new(),
        }
    }

    fn add(&mut self, effects: &Effects, keep: bool) {
        let mut commands = effects.commands.iter();
        for d in &effects.decisions {
            let command = if d.kind == K::Sent {
                commands.next()
            } else {
                None
            };
            if keep {
                self.kept.push(Kept {
                    decision: d.clone(),
                    template: command.map(|c| c.template.clone()),
                });
            }
            self.decision(d, command);
        }
    }

    fn decision(&mut self, d: &Decision, command: Option<&journey_engine::SendCommand>) {
        match d.kind {
            K::SkippedChannel => {
                let reason = d.reason.as_ref().map_or("", Reason::as_str);
                bump(&mut self.skips, reason);
                if let Some(cap) = reason.strip_prefix("frequency_cap:") {
                    match self.capped.get_mut(cap) {
                        Some(set) => {
                            if !set.contains(&d.customer_id) {
                                set.insert(d.customer_id.clone());
                            }
                        }
                        None => {
                            self.capped
                                .insert(cap.to_string(), HashSet::from([d.customer_id.clone()]));
                        }
                    }
                }
            }
            K::Deferred => self.deferred += 1,
            K::NoChannel => self.no_channel += 1,
            K::Entered
            | K::EntrySuppressed
            | K::Sent
            | K::Holdout
            | K::Split
            | K::Exited
            | K::Goal
            | K::Completed
            | K::DuplicateEvent
            | K::BadTimezone => {}
        }
        if let Some(c) = command {
            let hour = c.issued_at.timestamp().div_euclid(3600);
            let key = (c.channel.clone(), hour);
            *self.sends_per_hour.entry(key).or_insert(0) += 1;
            let tkey = (c.journey_id.clone(), c.template.clone(), c.channel.clone());
            *self.templates.entry(tkey).or_insert(0) += 1;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (
                &c.journey_id,
                &c.step_id,
                &c.template,
                &c.channel,
                c.issued_at.timestamp(),
            )
                .hash(&mut h);
            let piece = h.finish();
            match self.customer_sends.get_mut(&c.customer_id) {
                Some(acc) => *acc = acc.rotate_left(7) ^ piece,
                None => {
                    self.customer_sends.insert(c.customer_id.clone(), piece);
                }
            }
        }
        let Some(ji) = d
            .journey_id
            .as_ref()
            .and_then(|j| self.by_id.get(j))
            .copied()
        else {
            return;
        };
        let js = &mut self.journeys[ji];
        let ji = ji as u32;
        let position =
            |run: &mut HashMap<String, Vec<(u32, u32)>>, customer: &str| -> Option<u32> {
                run.get(customer)
                    .and_then(|v| v.iter().find(|(j, _)| *j == ji).map(|(_, n)| *n))
            };
        let set_position =
            |run: &mut HashMap<String, Vec<(u32, u32)>>, customer: &str, node: Option<u32>| {
                match run.get_mut(customer) {
                    Some(v) => {
                        v.retain(|(j, _)| *j != ji);
                        if let Some(n) = node {
                            v.push((ji, n));
                        }
                    }
                    None => {
                        if let Some(n) = node {
                            run.insert(customer.to_string(), vec![(ji, n)]);
                        }
                    }
                }
            };
        match d.kind {
            K::Entered => {
                js.entered += 1;
                if d.holdout == Some(true) {
                    js.entered_holdout += 1;
                }
                let (t, e) = (js.index["trigger"], js.index["entry"]);
                js.node_counts[t] += 1;
                js.node_counts[e] += 1;
                js.edge_counts[0] += 1; // trigger → entry
                js.edge_counts[1] += 1; // entry → first step
                let first = js.flow.edges[1].to.clone();
                let f = js.index[&first];
                js.node_counts[f] += 1;
                set_position(&mut self.position, &d.customer_id, Some(f as u32));
            }
            K::EntrySuppressed => bump(
                &mut js.suppressed,
                d.reason.as_ref().map_or("", Reason::as_str),
            ),
            _ => {
                let at = position(&mut self.position, &d.customer_id);
                let step = d
                    .step_id
                    .as_ref()
                    .and_then(|s| js.index.get(&flow::step_key(s)).copied());
                if let (Some(from), Some(to)) = (at, step) {
                    js.walk(from as usize, to);
                }
                let now = step.map(|s| s as u32).or(at);
                match d.kind {
                    K::Sent => js.sends += 1,
                    K::Holdout => js.held_sends += 1,
                    K::Goal => {
                        if d.holdout == Some(true) {
                            js.goals_holdout += 1;
                        } else {
                            js.goals += 1;
                        }
                    }
                    _ => {}
                }
                let ends = match d.kind {
                    K::Exited => {
                        js.exited += 1;
                        if d.reason == Some(Reason::NoChannel) {
                            if let Some(s) = &d.step_id {
                                js.dashed_edge(&flow::step_key(s));
                            }
                        } else {
                            js.dashed_edge("exit_when");
                        }
                        true
                    }
                    K::Goal => {
                        let exits = js.flow.edges.iter().any(|e| e.dashed && e.from == "goal");
                        if exits {
                            js.dashed_edge("goal");
                        } else if let Some(&g) = js.index.get("goal") {
                            js.node_counts[g] += 1;
                        }
                        exits
                    }
                    K::Completed => {
                        js.completed += 1;
                        if let Some(from) = now {
                            let end = js.index["end"];
                            js.walk(from as usize, end);
                        }
                        true
                    }
                    _ => false,
                };
                if ends {
                    if d.kind != K::Completed {
                        let end = js.index["end"];
                        js.node_counts[end] += 1;
                    }
                    set_position(&mut self.position, &d.customer_id, None);
                } else if now != at {
                    set_position(&mut self.position, &d.customer_id, now);
                }
            }
        }
    }
}

impl JourneyStats {
    fn merge(&mut self, o: JourneyStats) {
        for (a, b) in self.node_counts.iter_mut().zip(o.node_counts) {
            *a += b;
        }
        for (a, b) in self.edge_counts.iter_mut().zip(o.edge_counts) {
            *a += b;
        }
        for (k, v) in o.suppressed {
            *self.suppressed.entry(k).or_insert(0) += v;
        }
        self.entered += o.entered;
        self.entered_holdout += o.entered_holdout;
        self.exited += o.exited;
        self.goals += o.goals;
        self.goals_holdout += o.goals_holdout;
        self.completed += o.completed;
        self.sends += o.sends;
        self.held_sends += o.held_sends;
    }
}

impl Run {
    /// Adds the figures of another worker (whose customers are disjoint from this one's).
    fn merge(&mut self, o: Run) {
        for (a, b) in self.journeys.iter_mut().zip(o.journeys) {
            a.merge(b);
        }
        self.events += o.events;
        self.bad_lines += o.bad_lines;
        self.bad_listed.extend(o.bad_listed);
        self.backwards += o.backwards;
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.customers.extend(o.customers);
        for (k, v) in o.sends_per_hour {
            *self.sends_per_hour.entry(k).or_insert(0) += v;
        }
        for (k, v) in o.templates {
            *self.templates.entry(k).or_insert(0) += v;
        }
        for (k, v) in o.skips {
            *self.skips.entry(k).or_insert(0) += v;
        }
        self.deferred += o.deferred;
        self.no_channel += o.no_channel;
        for (k, v) in o.capped {
            self.capped.entry(k).or_default().extend(v);
        }
        self.customer_sends.extend(o.customer_sends);
        self.kept.extend(o.kept);
    }
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    match m.get_mut(k) {
        Some(n) => *n += 1,
        None => {
            m.insert(k.to_string(), 1);
        }
    }
}

/// Runs the events through a journey set; with `only`, just those customers' events, keeping
/// their decisions.
///
/// Customers are spread over one engine per available core by a hash of their id, as the
/// service spreads them over partitions: an engine keeps no state across customers, so the
/// decisions are the same. Each worker reads the whole file, finds each line's `customer_id`
/// without parsing it, and parses only its own lines (a line whose customer cannot be found
/// that way is parsed by every worker and kept by its owner). Worker 0 also follows every
/// line's timestamp, to count the events that go backwards in the file.
fn run(
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
fn quick_field<'l>(line: &'l [u8], key: &[u8]) -> Option<&'l [u8]> {
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
fn partition(customer: &[u8], workers: usize) -> usize {
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

// ---------------------------------------------------------------------------------------------
// HTML

const STYLE: &str = r#"
body { font-family: Helvetica, Arial, sans-serif; color: #1f2430; margin: 0; background: #f6f7f9; }
header { background: #1f2a44; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: #c9d3e6; font-size: 13px; }
header code { background: #2c3a5c; color: #fff; }
main { padding: 16px 32px 48px; max-width: 1280px; }
section { background: #fff; border: 1px solid #e3e6ec; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #eceef2; padding: 4px 10px; text-align: left; }
td.num, th.num { text-align: right; }
th { background: #f1f3f7; font-weight: 600; }
td.num, th.num { font-variant-numeric: tabular-nums; }
.note { color: #5b6170; font-size: 12px; }
.warn { color: #9a3412; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { background: #f6f8fc; border: 1px solid #e3e8f3; border-radius: 6px; padding: 8px 12px; min-width: 110px; }
.card b { display: block; font-size: 20px; }
.card span { font-size: 12px; color: #5b6170; }
.flow { overflow-x: auto; border: 1px solid #eceef2; border-radius: 6px; padding: 8px; background: #fcfcfd; }
.lift-pos { color: #15803d; font-weight: 600; } .lift-neg { color: #b91c1c; font-weight: 600; }
code { background: #f1f3f7; padding: 1px 4px; border-radius: 3px; }
pre { font-size: 12px; background: #f6f7f9; padding: 8px; overflow-x: auto; }
nav a { margin-right: 12px; font-size: 13px; }
"#;

/// A small check run by the browser: it counts what was drawn and says so on the page
/// (`#render-check`), so a headless browser can tell the page rendered.
const SCRIPT: &str = r#"
(function () {
  var flows = document.querySelectorAll('svg.journey-flow').length;
  var charts = document.querySelectorAll('svg.chart').length;
  var check = document.getElementById('render-check');
  check.textContent = 'rendered: ' + flows + ' flow diagrams, ' + charts + ' charts';
  check.setAttribute('data-flows', flows);
  check.setAttribute('data-charts', charts);
})();
"#;

const CHANNEL_COLOURS: [&str; 8] = [
    "#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563",
];

fn render(args: &Args, config: &Config, run: &Run, comparison: Option<&Comparison>) -> String {
    let mut o = String::with_capacity(256 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<title>journeyd backtest report</title>\n<style>");
    o.push_str(STYLE);
    o.push_str("</style></head><body>\n<header><h1>Backtest report</h1>\n");
    let range = match (run.first, run.last) {
        (Some(a), Some(b)) => format!("{} → {}", format_time(a), format_time(b)),
        _ => "no events".into(),
    };
    let _ = writeln!(
        o,
        "<p>Events <code>{}</code> · configuration <code>{}</code> · journeys <code>{}</code></p>\
         <p>{range} · {} events · {} customers · {} journeys</p></header>\n<main>",
        xml_escape(&args.events.display().to_string()),
        xml_escape(&args.config.display().to_string()),
        xml_escape(&config.journeys_dir.display().to_string()),
        group_digits(run.events),
        group_digits(run.customers.len() as u64),
        run.journeys.len()
    );
    o.push_str("<p id=\"render-check\" class=\"note\">not rendered by a browser</p>\n<nav>");
    o.push_str("<a href=\"#overview\">Overview</a><a href=\"#sends\">Sends</a>");
    o.push_str("<a href=\"#skips\">Skips and caps</a>");
    for j in &run.journeys {
        let _ = write!(o, "<a href=\"#j-{0}\">{0}</a>", xml_escape(&j.id));
    }
    if comparison.is_some() {
        o.push_str("<a href=\"#baseline\">Baseline</a>");
    }
    o.push_str("</nav>\n");
    input_section(&mut o, run);
    overview(&mut o, run);
    sends_section(&mut o, run);
    skips_section(&mut o, run);
    for j in &run.journeys {
        journey_section(&mut o, j);
    }
    if let Some(c) = comparison {
        baseline_section(&mut o, run, c);
    }
    o.push_str("</main>\n<script>");
    o.push_str(SCRIPT);
    o.push_str("</script>\n</body></html>\n");
    o
}

fn input_section(o: &mut String, run: &Run) {
    if run.bad_lines == 0 && run.backwards == 0 {
        return;
    }
    o.push_str("<section id=\"input\"><h2>Input problems</h2>\n");
    if run.bad_lines > 0 {
        let _ = writeln!(
            o,
            "<p class=\"warn\">{} event lines were not valid events and were skipped{}:</p><pre>",
            group_digits(run.bad_lines),
            if run.bad_lines as usize > run.bad_listed.len() {
                format!(" (the first {} below)", run.bad_listed.len())
            } else {
                String::new()
            }
        );
        for (_, line) in &run.bad_listed {
            let _ = writeln!(o, "{}", xml_escape(line));
        }
        o.push_str("</pre>\n");
    }
    if run.backwards > 0 {
        let _ = writeln!(
            o,
            "<p class=\"warn\">{} events have a timestamp before an earlier line's; they were \
             handled at the time reached (see <code>journeyd simulate --sort</code>).</p>",
            group_digits(run.backwards)
        );
    }
    o.push_str("</section>\n");
}

fn reasons(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "—".into();
    }
    m.iter()
        .map(|(k, v)| format!("{} {}", xml_escape(k), group_digits(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn overview(o: &mut String, run: &Run) {
    o.push_str(
        "<section id=\"overview\"><h2>Overview</h2>\n<table><tr><th>journey</th>\
                <th class=\"num\">entered</th><th class=\"num\">held out</th>\
                <th>suppressed at entry</th><th class=\"num\">exited</th>\
                <th class=\"num\">goal</th><th class=\"num\">completed</th>\
                <th class=\"num\">sends</th><th>goal rate: treatment vs holdout</th></tr>\n",
    );
    for j in &run.journeys {
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#j-{id}\">{id}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            group_digits(j.entered),
            group_digits(j.entered_holdout),
            reasons(&j.suppressed),
            group_digits(j.exited),
            group_digits(j.goals + j.goals_holdout),
            group_digits(j.completed),
            group_digits(j.sends),
            lift_text(j),
            id = xml_escape(&j.id),
        );
    }
    o.push_str(
        "</table>\n<p class=\"note\">Goal rate = goals / customers entered, per group; the \
                interval is the 95% confidence interval of the difference (normal \
                approximation).</p></section>\n",
    );
}

/// Goal rates and the difference with its 95% confidence interval.
pub(crate) fn lift(goals_t: u64, n_t: u64, goals_h: u64, n_h: u64) -> Option<(f64, f64, f64, f64)> {
    if n_t == 0 || n_h == 0 {
        return None;
    }
    let p1 = goals_t as f64 / n_t as f64;
    let p0 = goals_h as f64 / n_h as f64;
    let se = (p1 * (1.0 - p1) / n_t as f64 + p0 * (1.0 - p0) / n_h as f64).sqrt();
    let diff = p1 - p0;
    // A difference of rates lies in [-1, 1].
    Some((
        p1,
        p0,
        (diff - 1.96 * se).max(-1.0),
        (diff + 1.96 * se).min(1.0),
    ))
}

fn lift_text(j: &JourneyStats) -> String {
    let treated = j.entered - j.entered_holdout;
    match lift(j.goals, treated, j.goals_holdout, j.entered_holdout) {
        None if j.entered_holdout == 0 => "no holdout".into(),
        None => "—".into(),
        Some((p1, p0, lo, hi)) => {
            let class = if lo > 0.0 {
                "lift-pos"
            } else if hi < 0.0 {
                "lift-neg"
            } else {
                ""
            };
            format!(
                "{:.1}% vs {:.1}%: <span class=\"{class}\">{:+.1} pts [{:+.1}, {:+.1}]</span>",
                p1 * 100.0,
                p0 * 100.0,
                (p1 - p0) * 100.0,
                lo * 100.0,
                hi * 100.0
            )
        }
    }
}

fn sends_section(o: &mut String, run: &Run) {
    o.push_str("<section id=\"sends\"><h2>Sends over time</h2>\n");
    o.push_str(&sends_chart(run));
    o.push_str(
        "<h3>Per template</h3><table><tr><th>journey</th><th>template</th><th>channel</th>\
                <th class=\"num\">sends</th></tr>\n",
    );
    for ((j, t, c), n) in &run.templates {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(j),
            xml_escape(t),
            xml_escape(c),
            group_digits(*n)
        );
    }
    o.push_str("</table></section>\n");
}

/// Stacked bars of sends per channel, per day (per hour when the run spans under three days).
fn sends_chart(run: &Run) -> String {
    let channels: Vec<String> = {
        let mut v: Vec<String> = run.sends_per_hour.keys().map(|(c, _)| c.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let (Some(first), Some(last)) = (
        run.sends_per_hour.keys().map(|(_, h)| *h).min(),
        run.sends_per_hour.keys().map(|(_, h)| *h).max(),
    ) else {
        return "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"8\" y=\"24\" font-size=\"13\">No sends.</text></svg>\n".into();
    };
    let per_day = last - first >= 72;
    let bucket = |h: i64| if per_day { h.div_euclid(24) } else { h };
    let (b0, b1) = (bucket(first), bucket(last));
    let n = (b1 - b0 + 1) as usize;
    let mut stacks = vec![vec![0u64; channels.len()]; n];
    for ((c, h), v) in &run.sends_per_hour {
        let ci = channels.iter().position(|x| x == c).unwrap_or(0);
        stacks[(bucket(*h) - b0) as usize][ci] += v;
    }
    let max = stacks
        .iter()
        .map(|s| s.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, left, bottom, top) = (960.0, 300.0, 56.0, 48.0, 16.0);
    let plot_w = w - left - 16.0;
    let plot_h = h - bottom - top;
    let bar_w = plot_w / n as f64;
    let mut s = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" \
         viewBox=\"0 0 {w} {}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n",
        h + 24.0,
        h + 24.0
    );
    // Grid and y axis, up to the first round figure at or above the highest bar.
    let step = nice_step(max);
    let max = max.div_ceil(step) * step;
    let mut y = 0;
    while y <= max {
        let py = top + plot_h - plot_h * y as f64 / max as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6170\">{}</text>",
            left + plot_w,
            left - 6.0,
            py + 4.0,
            group_digits(y)
        );
        y += step;
    }
    for (i, stack) in stacks.iter().enumerate() {
        let x = left + i as f64 * bar_w;
        let mut base = top + plot_h;
        for (ci, v) in stack.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let bh = plot_h * *v as f64 / max as f64;
            base -= bh;
            let label = bucket_label(b0 + i as i64, per_day);
            let _ = writeln!(
                s,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{base:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" \
                 fill=\"{}\"><title>{label} {}: {}</title></rect>",
                x + bar_w * 0.1,
                (bar_w * 0.8).max(1.0),
                CHANNEL_COLOURS[ci % CHANNEL_COLOURS.len()],
                xml_escape(&channels[ci]),
                group_digits(*v)
            );
        }
    }
    // x labels: at most ~12.
    let every = n.div_ceil(12).max(1);
    for i in (0..n).step_by(every) {
        let x = left + i as f64 * bar_w + bar_w / 2.0;
        let _ = writeln!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5b6170\">{}</text>",
            top + plot_h + 16.0,
            bucket_label(b0 + i as i64, per_day)
        );
    }
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9ca3af\"/>",
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    // Legend.
    let mut lx = left;
    for (ci, c) in channels.iter().enumerate() {
        let total: u64 = stacks.iter().map(|st| st[ci]).sum();
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{} ({})</text>",
            h + 2.0,
            CHANNEL_COLOURS[ci % CHANNEL_COLOURS.len()],
            lx + 16.0,
            h + 12.0,
            xml_escape(c),
            group_digits(total)
        );
        lx += 40.0 + 8.0 * (c.len() + group_digits(total).len()) as f64;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6170\">sends per {} (UTC)</text>",
        left + plot_w,
        h + 12.0,
        if per_day { "day" } else { "hour" }
    );
    s.push_str("</svg>\n");
    s
}

fn nice_step(max: u64) -> u64 {
    let raw = (max as f64 / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    step.max(1.0) as u64
}

fn bucket_label(b: i64, per_day: bool) -> String {
    let secs = if per_day { b * 86_400 } else { b * 3_600 };
    match DateTime::from_timestamp(secs, 0) {
        Some(t) if per_day => t.format("%b %d").to_string(),
        Some(t) => t.format("%d %H:00").to_string(),
        None => b.to_string(),
    }
}

fn skips_section(o: &mut String, run: &Run) {
    o.push_str("<section id=\"skips\"><h2>Skips, deferrals and caps</h2>\n<div class=\"cards\">");
    let total_skips: u64 = run.skips.values().sum();
    for (n, label) in [
        (total_skips, "channels skipped"),
        (run.deferred, "deferred for quiet hours"),
        (run.no_channel, "sends with no channel left"),
    ] {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            group_digits(n)
        );
    }
    o.push_str(
        "</div>\n<h3>Channel skips by reason</h3><table><tr><th>reason</th>\
                <th class=\"num\">skips</th></tr>\n",
    );
    for (r, n) in &run.skips {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(r),
            group_digits(*n)
        );
    }
    o.push_str(
        "</table>\n<h3>Customers held back by each frequency cap</h3><table><tr>\
                <th>cap</th><th class=\"num\">customers</th></tr>\n",
    );
    if run.capped.is_empty() {
        o.push_str("<tr><td>none</td><td class=\"num\">0</td></tr>\n");
    }
    for (cap, set) in &run.capped {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(cap),
            group_digits(set.len() as u64)
        );
    }
    o.push_str("</table></section>\n");
}

fn journey_section(o: &mut String, j: &JourneyStats) {
    let _ = writeln!(
        o,
        "<section id=\"j-{0}\"><h2>{0} v{1}{2}</h2>\n<div class=\"cards\">",
        xml_escape(&j.id),
        j.version,
        j.name
            .as_ref()
            .map(|n| format!(": {}", xml_escape(n)))
            .unwrap_or_default()
    );
    for (n, label) in [
        (j.entered, "entered"),
        (j.entered_holdout, "held out"),
        (j.suppressed.values().sum(), "suppressed at entry"),
        (j.exited, "exited"),
        (j.goals + j.goals_holdout, "reached the goal"),
        (j.completed, "completed"),
        (j.sends, "sends"),
    ] {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            group_digits(n)
        );
    }
    let _ = writeln!(
        o,
        "</div>\n<p>Suppressed at entry: {}. Goal rate, treatment vs holdout: {}.</p>",
        reasons(&j.suppressed),
        lift_text(j)
    );
    let counts = FlowCounts {
        nodes: j
            .node_counts
            .iter()
            .zip(&j.flow.nodes)
            .map(|(c, n)| (n.key != "goal" && n.key != "exit_when" || *c > 0).then_some(*c))
            .collect(),
        edges: j.edge_counts.iter().map(|c| Some(*c)).collect(),
    };
    o.push_str("<div class=\"flow\">");
    o.push_str(&flow::to_svg(&j.flow, Some(&counts)));
    o.push_str(
        "</div>\n<p class=\"note\">Customers per step and edge, counted from the decision \
                records; waits and branches record nothing and are counted along the only path \
                between recorded steps.</p></section>\n",
    );
}

fn baseline_section(o: &mut String, run: &Run, c: &Comparison) {
    let _ = writeln!(
        o,
        "<section id=\"baseline\"><h2>Compared with <code>{}</code></h2>\n<table><tr>\
         <th>journey</th><th class=\"num\">entered</th><th class=\"num\">entered (baseline)</th>\
         <th class=\"num\">sends</th><th class=\"num\">sends (baseline)</th>\
         <th class=\"num\">goals</th><th class=\"num\">goals (baseline)</th>\
         <th class=\"num\">exited</th><th class=\"num\">exited (baseline)</th></tr>",
        xml_escape(&c.dir.display().to_string())
    );
    let mut ids: Vec<&String> = run.journeys.iter().map(|j| &j.id).collect();
    for j in &c.base.journeys {
        if !ids.contains(&&j.id) {
            ids.push(&j.id);
        }
    }
    fn get<'r>(r: &'r Run, id: &str) -> Option<&'r JourneyStats> {
        r.by_id.get(id).map(|&i| &r.journeys[i])
    }
    let cell = |j: Option<&JourneyStats>, f: fn(&JourneyStats) -> u64| {
        j.map_or("—".to_string(), |j| group_digits(f(j)))
    };
    for id in ids {
        let (a, b) = (get(run, id), get(&c.base, id));
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(id),
            cell(a, |j| j.entered),
            cell(b, |j| j.entered),
            cell(a, |j| j.sends),
            cell(b, |j| j.sends),
            cell(a, |j| j.goals + j.goals_holdout),
            cell(b, |j| j.goals + j.goals_holdout),
            cell(a, |j| j.exited),
            cell(b, |j| j.exited),
        );
    }
    let _ = writeln!(
        o,
        "</table>\n<p><b>{}</b> customers get different sends (journey, step, template, channel \
         or time){}.</p>",
        group_digits(c.differing as u64),
        if c.differing > DIFFERING_SHOWN {
            format!("; the first {DIFFERING_SHOWN} by customer id")
        } else {
            String::new()
        }
    );
    let mut customers: Vec<&str> = c
        .current_records
        .iter()
        .chain(&c.base_records)
        .map(|k| k.decision.customer_id.as_str())
        .collect();
    customers.sort();
    customers.dedup();
    for customer in customers {
        let _ = writeln!(
            o,
            "<h3>{}</h3><table><tr><th>current journeys</th><th>baseline</th></tr><tr>",
            xml_escape(customer)
        );
        for records in [&c.current_records, &c.base_records] {
            o.push_str("<td style=\"text-align:left;vertical-align:top\"><pre>");
            for k in records
                .iter()
                .filter(|k| k.decision.customer_id == customer)
            {
                let d = &k.decision;
                let what = match (&k.template, d.kind) {
                    (Some(t), K::Sent) => {
                        format!("sent {} {t}", d.channel.as_deref().unwrap_or(""))
                    }
                    _ => describe_decision(d),
                };
                let _ = writeln!(
                    o,
                    "{}  {}  {}",
                    format_time(d.at),
                    xml_escape(&match (&d.journey_id, &d.step_id) {
                        (Some(j), Some(s)) => format!("{j}/{s}"),
                        (Some(j), None) => j.clone(),
                        _ => "-".into(),
                    }),
                    xml_escape(&what)
                );
            }
            o.push_str("</pre></td>");
        }
        o.push_str("</tr></table>\n");
    }
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_interval_brackets_the_difference() {
        let (p1, p0, lo, hi) = lift(300, 1000, 20, 100).unwrap();
        assert!((p1 - 0.3).abs() < 1e-9 && (p0 - 0.2).abs() < 1e-9);
        assert!(lo < 0.1 && 0.1 < hi);
        assert!(lo > 0.0 - 0.1 && hi < 0.2, "{lo} {hi}");
        assert_eq!(lift(1, 10, 0, 0), None);
    }

    #[test]
    fn customer_ids_are_found_without_parsing_only_when_unambiguous() {
        let q = |l: &str| quick_field(l.as_bytes(), b"\"customer_id\"").map(|v| v.to_vec());
        assert_eq!(
            q(r#"{"event_id":"e","customer_id" : "c-42","type":"t"}"#),
            Some(b"c-42".to_vec())
        );
        assert_eq!(q(r#"{"customer_id":"a\"b"}"#), None, "escapes: parse it");
        assert_eq!(q(r#"{"customer_id":5}"#), None);
        assert_eq!(
            q(r#"{"properties":{"customer_id":"x"},"customer_id":"c"}"#),
            None,
            "twice: parse it"
        );
        assert_eq!(q("not json"), None);
        assert_eq!(partition(b"c-42", 1), 0);
        assert!(partition(b"c-42", 4) < 4);
    }

    fn decision(kind: &'static str, step: Option<&str>) -> Decision {
        Decision {
            at: DateTime::parse_from_rfc3339("2026-11-23T11:15:00Z")
                .unwrap()
                .with_timezone(&Utc),
            customer_id: "c-1".into(),
            journey_id: Some("cart_abandonment".into()),
            journey_version: Some(3),
            step_id: step.map(Into::into),
            kind: kind.parse().expect("a decision kind"),
            channel: None,
            reason: None,
            event_id: None,
            holdout: Some(false),
            until: None,
            branch: None,
            command_id: None,
        }
    }

    /// Waits and branches record nothing: they are counted along the only path between the
    /// steps that do.
    #[test]
    fn silent_steps_are_counted_along_the_path() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let config = journey_spec::load_config(&root.join("deploy/journeyd.yaml")).unwrap();
        let journeys = journey_spec::load_journeys_dir(&config.journeys_dir, &config).unwrap();
        let cart: Vec<Journey> = journeys
            .into_iter()
            .filter(|j| j.id == "cart_abandonment")
            .collect();
        let mut run = Run::new(&cart);
        run.decision(&decision("entered", None), None);
        run.decision(&decision("sent", Some("first_reminder")), None);
        run.decision(&decision("sent", Some("second_reminder")), None);
        run.decision(&decision("completed", None), None);
        let j = &run.journeys[0];
        let node = |key: &str| j.node_counts[j.index[key]];
        for key in [
            "trigger",
            "entry",
            "step:wait_an_hour",
            "step:first_reminder",
            "step:wait_for_click",
            "step:vip_check",
            "step:second_reminder",
            "end",
        ] {
            assert_eq!(node(key), 1, "{key}");
        }
        assert_eq!(node("step:vip_offer"), 0);
        let edge = |from: &str, label: Option<&str>| {
            j.flow
                .edges
                .iter()
                .position(|e| e.from == from && e.label.as_deref() == label)
                .map(|k| j.edge_counts[k])
        };
        assert_eq!(edge("step:wait_for_click", Some("timeout 1d")), Some(1));
        assert_eq!(
            edge("step:wait_for_click", Some("message_clicked")),
            Some(0)
        );
        assert_eq!(edge("step:vip_check", Some("else")), Some(1));
        assert_eq!(edge("step:second_reminder", None), Some(1), "to the end");
        assert!(run.position.get("c-1").is_none_or(Vec::is_empty));
    }

    #[test]
    fn chart_steps_are_round() {
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(100), 20);
        assert_eq!(nice_step(1234), 500);
        assert_eq!(nice_step(0), 1);
    }
}
